"""Built-in data sets: shipped copies against scikit-learn, Fashion-MNIST lookup and download."""

import gzip
import os
import shutil
import urllib.error

import numpy as np
import pytest

from softmaxreg.io import _datasets, load_builtin, load_data, read_idx, stratified_split, write_idx
from softmaxreg.io._datasets import FASHION_MNIST_FILES, dataset_locations, download_fashion_mnist

DEBIAN = "/usr/share/datasets/fashion-mnist"
needs_debian = pytest.mark.skipif(not os.path.isdir(DEBIAN), reason="dataset-fashion-mnist not installed")


def _slice(directory, n_train=300, n_test=100):
    """The first rows of the real Fashion-MNIST files, written as IDX .gz."""
    os.makedirs(directory, exist_ok=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        for kind in ("images-idx3", "labels-idx1"):
            name = f"{prefix}-{kind}-ubyte.gz"
            write_idx(os.path.join(directory, name), read_idx(os.path.join(DEBIAN, name), max_rows=n),
                      compress=True)
    return directory


@pytest.mark.parametrize("name", ["iris", "wine", "digits"])
def test_shipped_copies_equal_scikit_learn(name):
    datasets = pytest.importorskip("sklearn.datasets")
    ref = getattr(datasets, f"load_{name}")()
    d = load_builtin(name)
    np.testing.assert_array_equal(np.asarray(d.X, dtype=float), ref.data)
    if name == "digits":
        np.testing.assert_array_equal(d.y, ref.target)
        assert d.image_shape == (8, 8)
    else:
        np.testing.assert_array_equal(d.y, np.asarray(ref.target_names)[ref.target])
        assert d.feature_names == list(ref.feature_names)


def test_fixed_splits_partition_the_data():
    full, train, test = (load_builtin(f"wine{s}") for s in ("", ":train", ":test"))
    assert train.X.shape[0] + test.X.shape[0] == full.X.shape[0]
    rows = lambda d: {tuple(r) for r in np.asarray(d.X)}  # noqa: E731
    assert not rows(train) & rows(test) and rows(train) | rows(test) == rows(full)
    for cls in np.unique(full.y):  # stratified: each class split 75/25
        assert abs(np.mean(test.y == cls) - np.mean(full.y == cls)) < 0.03
    np.testing.assert_array_equal(load_builtin("wine:test").X, test.X)  # deterministic
    with pytest.raises(ValueError, match="unknown split"):
        load_builtin("wine:valid")


def test_stratified_split_properties():
    y = np.repeat([0, 1, 2], [50, 30, 3])
    tr, te = stratified_split(y, 0.2, seed=5)
    assert np.intersect1d(tr, te).size == 0 and np.union1d(tr, te).size == y.size
    assert np.bincount(y[te]).tolist() == [10, 6, 1]


@needs_debian
def test_fashion_mnist_from_env_dir(tmp_path, monkeypatch):
    _slice(tmp_path / "fashion-mnist")
    monkeypatch.setenv("SOFTMAXREG_DATA", str(tmp_path))
    d = load_data("fashion-mnist")
    assert d.X.shape == (300, 784) and d.X.dtype == np.float32
    assert 0.0 <= d.X.min() and d.X.max() <= 1.0 and d.X.max() == 1.0
    assert d.image_shape == (28, 28) and d.class_names[9] == "Ankle boot"
    t = load_data("fashion-mnist:test", max_rows=7)
    assert t.y.tolist() == [9, 2, 1, 1, 6, 1, 4] and t.X.shape == (7, 784)
    assert dataset_locations()[0]["location"] == str(tmp_path / "fashion-mnist")


@needs_debian
def test_download_verifies_checksums(tmp_path, monkeypatch):
    monkeypatch.setattr(_datasets, "DEBIAN_PATH", str(tmp_path / "absent"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("SOFTMAXREG_DATA", raising=False)
    assert _datasets.find_fashion_mnist() is None
    # Debian's files are recompressed: the .gz MD5 differs, the content SHA-256 matches.
    target = download_fashion_mnist(base_url="file://" + DEBIAN)
    assert sorted(os.listdir(target)) == sorted(FASHION_MNIST_FILES)
    assert _datasets.find_fashion_mnist() == target
    # a tampered mirror is refused and nothing is kept
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for f in FASHION_MNIST_FILES:
        shutil.copy(os.path.join(DEBIAN, f), mirror / f)
    labels = gzip.decompress((mirror / "t10k-labels-idx1-ubyte.gz").read_bytes())
    (mirror / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels[:-1] + b"\x00"))
    fresh = tmp_path / "fresh"
    with pytest.raises(ValueError, match="checksum mismatch for downloaded t10k-labels"):
        download_fashion_mnist(str(fresh), base_url=f"file://{mirror}")
    assert "t10k-labels-idx1-ubyte.gz" not in os.listdir(fresh)
    assert not [f for f in os.listdir(fresh) if f.endswith(".part")]


def test_offline_download_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setattr(_datasets, "DEBIAN_PATH", str(tmp_path / "absent"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("SOFTMAXREG_DATA", raising=False)

    def offline(url, timeout):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(_datasets, "_urlopen", offline)
    with pytest.raises(RuntimeError, match="name resolution.*dataset-fashion-mnist.*SOFTMAXREG_DATA"):
        load_data("fashion-mnist")
    cache = tmp_path / "cache" / "softmaxreg" / "fashion-mnist"
    assert os.listdir(cache) == []  # no partial download left behind
