"""Model files: exact round trips, refusal of damaged or foreign files, atomic writes."""

import hashlib
import io
import json
import os
import zipfile

import numpy as np
import pandas as pd
import pytest

from softmaxreg.io import FORMAT_VERSION, ModelBundle, Preprocessor, load_model, save_model
from softmaxreg.io import _model_file
from softmaxreg.models import SoftmaxRegression, TemperatureScaling


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "x1": rng.normal(size=120),
        "x2": rng.normal(size=120) * 10,
        "shape": rng.choice(["round", "square"], size=120),
    })
    logits = np.c_[frame.x1, frame.x2 / 10, (frame["shape"] == "round") * 1.0]
    y = np.array(["ant", "bee", "cat"])[np.argmax(logits + rng.gumbel(size=(120, 3)), axis=1)]
    return frame, y


@pytest.fixture(scope="module")
def bundle(data):
    frame, y = data
    pre = Preprocessor(standardize=True).fit(frame)
    Z = pre.transform(frame)
    est = SoftmaxRegression(C=10.0).fit(Z, y)
    cal = TemperatureScaling(est).fit(Z, y)
    return ModelBundle(est, pre, {"method": "temperature", "temperature": cal.temperature_},
                       metadata={"data": "unit", "history": {"objective": np.array([1.0, 0.5])}},
                       data_info={"name": "unit", "target": "kind", "image_shape": None, "class_names": None})


def test_round_trip_is_exact(tmp_path, data, bundle):
    frame, y = data
    path = tmp_path / "m.srm"
    save_model(path, bundle)
    back = load_model(path)
    assert type(back.estimator) is SoftmaxRegression
    assert back.estimator.get_params() == {**bundle.estimator.get_params(), "callback": None}
    for calibrated in (False, True):
        np.testing.assert_array_equal(back.predict_proba(frame, calibrated=calibrated),
                                      bundle.predict_proba(frame, calibrated=calibrated))
    np.testing.assert_array_equal(back.predict(frame), bundle.predict(frame))
    assert back.classes_.tolist() == ["ant", "bee", "cat"] and back.classes_.dtype.kind == "U"
    assert back.calibration["temperature"] == bundle.calibration["temperature"]
    np.testing.assert_array_equal(back.metadata["history"]["objective"], [1.0, 0.5])
    assert back.data_info["target"] == "kind"
    assert back.feature_names == ["x1", "x2", "shape=round", "shape=square"]


def test_layout_is_documented_json_and_npy(tmp_path, bundle):
    path = tmp_path / "m.srm"
    save_model(path, bundle)
    with zipfile.ZipFile(path) as zf:
        meta = json.loads(zf.read("meta.json"))
        assert meta["format"] == "softmaxreg-model" and meta["format_version"] == FORMAT_VERSION
        assert meta["estimator"]["kind"] == "SoftmaxRegression"
        assert meta["classes"] == {"type": "str", "values": ["ant", "bee", "cat"]}
        assert meta["estimator"]["attributes"]["coef_"] == {"__array__": "coef_"}
        coef = np.load(io.BytesIO(zf.read("arrays/coef_.npy")), allow_pickle=False)
        np.testing.assert_array_equal(coef, bundle.estimator.coef_)
        names = zf.namelist()
        assert all(n in ("meta.json", "SHA256SUMS") or (n.startswith("arrays/") and n.endswith(".npy"))
                   for n in names)
        # format 2: SHA256SUMS lists every other member in sha256sum's layout
        sums = dict(line.split("  ")[::-1] for line in zf.read("SHA256SUMS").decode().splitlines())
        assert sorted(sums) == sorted(n for n in names if n != "SHA256SUMS")
        assert all(sums[n] == hashlib.sha256(zf.read(n)).hexdigest() for n in sums)
    assert oct(os.stat(path).st_mode & 0o777) != "0o600"  # not left with mkstemp's private mode


def test_integer_classes_and_calibrator_unwrapping(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 3))
    y = rng.integers(0, 3, size=60) * 10
    est = SoftmaxRegression().fit(X, y)
    cal = TemperatureScaling(est).fit(X, y)
    save_model(tmp_path / "m.srm", cal)
    back = load_model(tmp_path / "m.srm")
    assert back.classes_.dtype.kind == "i" and back.classes_.tolist() == [0, 10, 20]
    np.testing.assert_array_equal(back.predict_proba(X), cal.predict_proba(X))


def test_mlp_round_trip(tmp_path):
    mlp = pytest.importorskip("softmaxreg.models._mlp")
    rng = np.random.default_rng(2)
    X = rng.normal(size=(80, 5))
    y = (X[:, 0] + X[:, 1] ** 2 > 1).astype(int)
    model = mlp.MLPClassifier(hidden_layer_sizes=(7, 4), max_iter=3, tol=None, random_state=0).fit(X, y)
    save_model(tmp_path / "mlp.srm", model)
    back = load_model(tmp_path / "mlp.srm").estimator
    assert type(back).__name__ == "MLPClassifier" and len(back.coefs_) == 3
    np.testing.assert_array_equal(back.predict_proba(X), model.predict_proba(X))


def _rewrite(path, out, edit_meta=None, drop=None, replace=None, resum=True):
    """A copy of a model file with edits; ``resum``: its SHA256SUMS rewritten to match, as a forger would."""
    blobs = {}
    with zipfile.ZipFile(path) as src:
        for item in src.namelist():
            if item == drop:
                continue
            blob = src.read(item)
            if item == "meta.json" and edit_meta:
                meta = json.loads(blob)
                edit_meta(meta)
                blob = json.dumps(meta).encode()
            if replace and item in replace:
                blob = replace[item]
            blobs[item] = blob
    if resum and "SHA256SUMS" in blobs:
        old = dict(line.split("  ")[::-1] for line in blobs["SHA256SUMS"].decode().splitlines())
        new = {n: hashlib.sha256(blobs[n]).hexdigest() for n in ("meta.json",) if n in blobs}
        blobs["SHA256SUMS"] = "".join(f"{new.get(n, d)}  {n}\n" for n, d in old.items()).encode()
    with zipfile.ZipFile(out, "w") as dst:
        for item, blob in blobs.items():
            dst.writestr(item, blob)


@pytest.fixture
def saved(tmp_path, bundle):
    path = tmp_path / "good.srm"
    save_model(path, bundle)
    return path


def test_refuses_truncated_and_corrupt(tmp_path, saved):
    blob = saved.read_bytes()
    (tmp_path / "trunc.srm").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="not a softmaxreg model file|corrupt or truncated"):
        load_model(tmp_path / "trunc.srm")
    flipped = bytearray(blob)
    with zipfile.ZipFile(saved) as zf:
        info = zf.getinfo("arrays/coef_.npy")
    start = info.header_offset + 30 + len(info.filename) + 5
    flipped[start] ^= 0xFF  # damage the compressed coefficients
    (tmp_path / "flip.srm").write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="corrupt|checksum"):
        load_model(tmp_path / "flip.srm")
    (tmp_path / "text.srm").write_text("hello")
    with pytest.raises(ValueError, match="not a ZIP archive"):
        load_model(tmp_path / "text.srm")
    with pytest.raises(FileNotFoundError, match="no such model file"):
        load_model(tmp_path / "absent.srm")


def test_refuses_foreign_newer_and_tampered(tmp_path, saved):
    with zipfile.ZipFile(tmp_path / "foreign.srm", "w") as zf:
        zf.writestr("word/document.xml", "<w/>")
    with pytest.raises(ValueError, match="not a softmaxreg model"):
        load_model(tmp_path / "foreign.srm")
    _rewrite(saved, tmp_path / "other.srm", edit_meta=lambda m: m.update(format="keras"))
    with pytest.raises(ValueError, match="different format name"):
        load_model(tmp_path / "other.srm")
    _rewrite(saved, tmp_path / "newer.srm",
             edit_meta=lambda m: m.update(format_version=FORMAT_VERSION + 1, softmaxreg_version="9.0"))
    with pytest.raises(ValueError, match=r"newer softmaxreg \(9.0.*upgrade"):
        load_model(tmp_path / "newer.srm")
    _rewrite(saved, tmp_path / "noarr.srm", drop="arrays/coef_.npy")
    with pytest.raises(ValueError, match="'coef_' is missing"):
        load_model(tmp_path / "noarr.srm")
    evil = io.BytesIO()
    np.save(evil, np.zeros((3, 4)), allow_pickle=False)
    _rewrite(saved, tmp_path / "swap.srm", replace={"arrays/coef_.npy": evil.getvalue()})
    with pytest.raises(ValueError, match="checksum"):
        load_model(tmp_path / "swap.srm")
    _rewrite(saved, tmp_path / "kind.srm",
             edit_meta=lambda m: m["estimator"].update(kind="os.system"))
    with pytest.raises(ValueError, match="does not know"):
        load_model(tmp_path / "kind.srm")


def test_object_arrays_need_no_pickle_and_mixed_ones_are_refused(tmp_path, bundle):
    est = bundle.estimator
    est.classes_ = est.classes_.astype(object)  # as scikit-learn often stores string classes
    try:
        save_model(tmp_path / "o.srm", bundle)
        assert load_model(tmp_path / "o.srm").classes_.dtype.kind == "U"
        est.extra_ = np.array([1, "a"], dtype=object)
        with pytest.raises(ValueError, match="needs pickle"):
            save_model(tmp_path / "p.srm", bundle)
    finally:
        est.classes_ = est.classes_.astype(str)
        vars(est).pop("extra_", None)


def test_interrupted_write_keeps_the_previous_file(tmp_path, saved, bundle, monkeypatch):
    before = saved.read_bytes()

    class Boom(KeyboardInterrupt):
        pass

    real = zipfile.ZipFile.writestr

    def failing(self, name, data, *a, **k):
        if name.startswith("arrays/"):
            raise Boom()
        return real(self, name, data, *a, **k)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", failing)
    with pytest.raises(Boom):
        save_model(saved, bundle)
    assert saved.read_bytes() == before
    assert sorted(os.listdir(saved.parent)) == ["good.srm"]  # no temporary file left


def test_save_refuses_unfitted_and_unknown(tmp_path, bundle):
    with pytest.raises(ValueError, match="not fitted"):
        save_model(tmp_path / "u.srm", SoftmaxRegression())

    class Other:
        classes_ = np.array([0, 1])

    with pytest.raises(ValueError, match="cannot save a Other"):
        save_model(tmp_path / "u.srm", Other())
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_model(tmp_path / "no" / "dir.srm", bundle)
    assert _model_file.ESTIMATOR_KINDS["SoftmaxRegression"][1] == "SoftmaxRegression"


def test_format_1_files_still_load_and_format_2_checks_meta(tmp_path, saved, data):
    frame, _ = data
    _rewrite(saved, tmp_path / "v1.srm", drop="SHA256SUMS", edit_meta=lambda m: m.update(format_version=1))
    old = load_model(tmp_path / "v1.srm")
    np.testing.assert_array_equal(old.predict_proba(frame), load_model(saved).predict_proba(frame))
    _rewrite(saved, tmp_path / "nosums.srm", drop="SHA256SUMS")
    with pytest.raises(ValueError, match="SHA256SUMS member is missing"):
        load_model(tmp_path / "nosums.srm")
    _rewrite(saved, tmp_path / "edited.srm", resum=False,
             edit_meta=lambda m: m["calibration"]["__dict__"].update(temperature=0.5))
    with pytest.raises(ValueError, match="meta.json fails its checksum"):
        load_model(tmp_path / "edited.srm")
    _rewrite(saved, tmp_path / "badcal.srm", edit_meta=lambda m: m["calibration"]["__dict__"].update(temperature=-1.0))
    with pytest.raises(ValueError, match="temperature is not a positive number"):
        load_model(tmp_path / "badcal.srm")
    _rewrite(saved, tmp_path / "badpre.srm",
             edit_meta=lambda m: m["preprocessing"].update(mean=[0.0]))
    with pytest.raises(ValueError, match="malformed preprocessing record"):
        load_model(tmp_path / "badpre.srm")


@pytest.mark.parametrize("weights", [{0: 3.0, 2: 0.5}, {np.int64(1): 2}, {1.5: 1.0, "b": 2.0}])
def test_dicts_with_non_string_keys_round_trip(tmp_path, weights):
    """A class_weight keyed by integer labels (as scikit-learn's) is stored and read back."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 2))
    y = np.arange(60) % 3
    est = SoftmaxRegression(class_weight=weights if 1.5 not in weights else None).fit(X, y)
    save_model(tmp_path / "m.srm", est, metadata={"mapping": weights})
    back = load_model(tmp_path / "m.srm")
    assert back.metadata["mapping"] == {(k.item() if hasattr(k, "item") else k): v for k, v in weights.items()}
    assert back.estimator.get_params()["class_weight"] == est.get_params()["class_weight"]
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
