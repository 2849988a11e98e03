"""Readers that survive any file: damaged copies of real files and arbitrary bytes.

Every reader either returns or raises a ValueError (or a subclass) whose
message names the file, within a bounded time; a model file that loads
predicts exactly as the saved one did.
"""

import gzip
import hashlib
import io
import json
import struct
import time
import tracemalloc
import zipfile

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from softmaxreg.io import (
    ModelBundle,
    Preprocessor,
    load_model,
    read_csv,
    read_idx,
    read_libsvm,
    read_npz,
    read_parquet,
    save_model,
    write_idx,
    write_libsvm,
)
from softmaxreg.models import MLPClassifier, SoftmaxRegression

SECONDS = 5.0  # per read: a damaged file is refused at once, never after a long grind
FUZZ = settings(max_examples=60, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    """One real file per reader, written by the writers users use."""
    d = tmp_path_factory.mktemp("orig")
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=30), "b": rng.integers(0, 9, 30),
                          "c": rng.choice(["x", "y"], 30), "label": rng.integers(0, 3, 30)})
    frame.to_csv(d / "t.csv", index=False)
    frame.to_csv(d / "t.csv.gz", index=False)
    frame.to_parquet(d / "t.parquet")
    X = frame[["a", "b"]].to_numpy()
    np.savez(d / "t.npz", X=X, y=frame.label.to_numpy())
    np.savez_compressed(d / "z.npz", X=X, y=frame.label.to_numpy())
    write_libsvm(d / "t.svm", X, frame.label.to_numpy())
    images = rng.integers(0, 256, size=(6, 4, 4), dtype=np.uint8)
    write_idx(d / "t-idx3-ubyte", images)
    write_idx(d / "t-idx3-ubyte.gz", images, compress=True)
    pre = Preprocessor(standardize=True).fit(frame[["a", "b", "c"]])
    Z = pre.transform(frame[["a", "b", "c"]])
    est = SoftmaxRegression().fit(Z, frame.label)
    save_model(d / "m.srm", ModelBundle(est, pre, {"method": "temperature", "temperature": 1.3}))
    save_model(d / "mlp.srm", MLPClassifier(hidden_layer_sizes=(3,), random_state=0).fit(Z, frame.label))
    return {"dir": d, "frame": frame, "Z": Z}


READERS = {
    "t.csv": read_csv, "t.csv.gz": read_csv, "t.parquet": read_parquet, "t.npz": read_npz,
    "z.npz": read_npz, "t.svm": read_libsvm, "t-idx3-ubyte": read_idx, "t-idx3-ubyte.gz": read_idx,
    "m.srm": load_model, "mlp.srm": load_model,
}


def _survives(reader, path):
    """Read ``path``: the result, or None when refused with a ValueError naming the file."""
    start = time.perf_counter()
    try:
        result = reader(path)
    except ValueError as exc:
        assert str(path) in str(exc), f"{type(exc).__name__} does not name the file: {exc}"
        result = None
    assert time.perf_counter() - start < SECONDS
    return result


def _loaded_exactly(bundle, original, frame):
    """A damaged model file that still loads must be the saved model, to the bit."""
    X = frame[["a", "b", "c"]] if original.preprocessor is not None else None
    if X is None:
        return
    np.testing.assert_array_equal(bundle.predict_proba(X), original.predict_proba(X))
    assert bundle.calibration == original.calibration


def _damaged(blob: bytes, rng, n: int):
    """Truncations at spread offsets, single bit flips and random byte runs of ``blob``."""
    for cut in np.unique(np.linspace(0, len(blob) - 1, num=min(n, len(blob))).astype(int)):
        yield blob[:cut]
    for pos in rng.integers(0, len(blob), size=n):
        flipped = bytearray(blob)
        flipped[pos] ^= 1 << int(rng.integers(8))
        yield bytes(flipped)
    for pos in rng.integers(0, len(blob), size=n // 4):
        junk = bytearray(blob)
        junk[pos:pos + 8] = rng.integers(0, 256, size=len(junk[pos:pos + 8]), dtype=np.uint8).tobytes()
        yield bytes(junk)


@pytest.mark.parametrize("name", sorted(READERS))
def test_truncated_and_bit_flipped_copies(originals, name, tmp_path):
    src = originals["dir"] / name
    blob = src.read_bytes()
    reader = READERS[name]
    original = reader(src)
    rng = np.random.default_rng(sum(map(ord, name)))
    path = tmp_path / name
    n = 40 if name.endswith((".parquet", ".srm")) else 60
    for damaged in _damaged(blob, rng, n):
        path.write_bytes(damaged)
        result = _survives(reader, path)
        if result is not None and name.endswith(".srm"):
            _loaded_exactly(result, original, originals["frame"])


@pytest.mark.parametrize("name", sorted(READERS))
@FUZZ
@given(data=st.binary(max_size=600))
def test_arbitrary_bytes(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    _survives(READERS[name], path)


@pytest.mark.parametrize("name", ["m.srm", "t.npz", "t-idx3-ubyte.gz", "t.csv"])
@FUZZ
@given(edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1,
                      max_size=6))
def test_hypothesis_edits_of_real_files(originals, tmp_path, name, edits):
    blob = bytearray((originals["dir"] / name).read_bytes())
    for where, value in edits:
        blob[int(where * len(blob))] = value
    path = tmp_path / name
    path.write_bytes(bytes(blob))
    result = _survives(READERS[name], path)
    if result is not None and name == "m.srm":
        _loaded_exactly(result, load_model(originals["dir"] / name), originals["frame"])


@FUZZ
@given(text=st.text(alphabet=st.sampled_from(list("0123456789 :.-+eEnaif#qid\n\t")), max_size=300))
def test_libsvm_text(tmp_path, text):
    path = tmp_path / "f.svm"
    path.write_text(text)
    result = _survives(read_libsvm, path)
    if result is not None:
        assert np.isfinite(result.X.data).all() and np.isfinite(result.y).all()


# ------------------------------------------------------------------ huge claims
def _peak_bytes(fn):
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def _huge_npy(shape=(10**12,)):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return buf.getvalue() + b"\0" * 64


def test_model_file_claiming_a_huge_array_is_refused_before_allocating(originals, tmp_path):
    src = originals["dir"] / "m.srm"
    blob = _huge_npy()
    with zipfile.ZipFile(src) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    meta = json.loads(members["meta.json"])
    meta["arrays"]["coef_"].update(shape=[10**12], sha256=hashlib.sha256(blob).hexdigest())
    members["arrays/coef_.npy"] = blob
    members.pop("SHA256SUMS")
    meta["format_version"] = 1  # an old-format file: no SHA256SUMS to catch the edit
    members["meta.json"] = json.dumps(meta).encode()
    path = tmp_path / "huge.srm"
    with zipfile.ZipFile(path, "w") as zf:
        for n, b in members.items():
            zf.writestr(n, b)

    def load():
        with pytest.raises(ValueError, match=r"claims an array of shape \(1000000000000,\)"):
            load_model(path)

    assert _peak_bytes(load) < 20 * 2**20


def test_zip_member_claiming_more_than_it_can_hold(originals, tmp_path):
    blob = bytearray((originals["dir"] / "m.srm").read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(blob))) as zf:
        names = zf.namelist()
    # the central directory's uncompressed size of meta.json (offset 24 of its entry)
    at = blob.index(b"PK\x01\x02")
    while blob[at + 46:at + 46 + len("meta.json")] != b"meta.json":
        at = blob.index(b"PK\x01\x02", at + 4)
    struct.pack_into("<I", blob, at + 24, 0xFFFFFFF0)
    path = tmp_path / "lying.srm"
    path.write_bytes(bytes(blob))
    assert "meta.json" in names

    def load():
        with pytest.raises(ValueError, match="compressed bytes can hold|corrupt"):
            load_model(path)

    assert _peak_bytes(load) < 20 * 2**20


def test_npz_and_idx_claiming_huge_arrays(tmp_path):
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as zf:
        zf.writestr("X.npy", _huge_npy((10**6, 10**6)))
    assert _peak_bytes(lambda: pytest.raises(ValueError, read_npz, tmp_path / "huge.npz")) < 20 * 2**20
    header = bytes([0, 0, 0x08, 3]) + struct.pack(">3I", 2**32 - 1, 2**32 - 1, 2**32 - 1)
    (tmp_path / "huge-idx3-ubyte").write_bytes(header + b"\0" * 100)
    (tmp_path / "huge-idx3-ubyte.gz").write_bytes(gzip.compress(header + b"\0" * 100))
    for name in ("huge-idx3-ubyte", "huge-idx3-ubyte.gz"):
        def read(name=name):
            with pytest.raises(ValueError, match="header announces shape"):
                read_idx(tmp_path / name)
        assert _peak_bytes(read) < 20 * 2**20
