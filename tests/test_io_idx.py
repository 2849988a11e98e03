"""IDX reader/writer: round trips, the real Fashion-MNIST headers, refusal of damaged files."""

import gzip
import os
import struct

import numpy as np
import pytest

from softmaxreg.io import read_idx, write_idx

DEBIAN = "/usr/share/datasets/fashion-mnist"


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("compress", [False, True])
def test_round_trip(tmp_path, dtype, compress):
    rng = np.random.default_rng(0)
    a = (rng.normal(size=(5, 3, 2)) * 50).astype(dtype)
    path = tmp_path / "a.idx"
    write_idx(path, a, compress=compress)
    b = read_idx(path)
    assert b.dtype == np.dtype(dtype) and b.dtype.isnative
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(read_idx(path, max_rows=2), a[:2])


def test_byte_layout_is_big_endian(tmp_path):
    path = tmp_path / "x"
    write_idx(path, np.array([1, 258], dtype=np.int32))
    assert open(path, "rb").read() == bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 2) + struct.pack(">ii", 1, 258)


def test_refuses_damaged_files(tmp_path):
    path = tmp_path / "t.gz"
    write_idx(path, np.zeros((4, 2, 2), dtype=np.uint8), compress=True)
    raw = gzip.decompress(path.read_bytes())
    (tmp_path / "short").write_bytes(raw[:-3])
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "short")
    (tmp_path / "magic").write_bytes(b"\x01" + raw[1:])
    with pytest.raises(ValueError, match="magic"):
        read_idx(tmp_path / "magic")
    (tmp_path / "code").write_bytes(raw[:2] + b"\x07" + raw[3:])
    with pytest.raises(ValueError, match="type code"):
        read_idx(tmp_path / "code")
    (tmp_path / "cut.gz").write_bytes(path.read_bytes()[:20])
    with pytest.raises(ValueError, match="download it again"):
        read_idx(tmp_path / "cut.gz")


@pytest.mark.skipif(not os.path.isdir(DEBIAN), reason="Debian package dataset-fashion-mnist not installed")
def test_real_fashion_mnist_files():
    labels = read_idx(os.path.join(DEBIAN, "t10k-labels-idx1-ubyte.gz"))
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    assert np.bincount(labels).tolist() == [1000] * 10  # the test set is balanced
    assert labels[:5].tolist() == [9, 2, 1, 1, 6]  # ankle boot, pullover, trouser, trouser, shirt
    images = read_idx(os.path.join(DEBIAN, "t10k-images-idx3-ubyte.gz"), max_rows=3)
    assert images.shape == (3, 28, 28) and images.dtype == np.uint8 and images.max() > 200
