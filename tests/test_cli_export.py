"""``softmaxreg export`` end to end: train and calibrate from the shell, export, run with onnxruntime."""

import json

import numpy as np
import pandas as pd
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from softmaxreg.cli import main  # noqa: E402
from softmaxreg.io import load_builtin, load_model  # noqa: E402


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Iris with a categorical column and a few missing values, as CSV."""
    d = tmp_path_factory.mktemp("export")
    rng = np.random.default_rng(0)
    frame = load_builtin("iris").X.copy()
    frame["soil"] = rng.choice(["clay", "loam", "sand"], size=len(frame))
    frame.iloc[::17, 0] = np.nan
    frame["species"] = load_builtin("iris").y
    frame.to_csv(d / "train.csv", index=False)
    return d


def _codes(frame, bundle):
    pre = bundle.preprocessor
    out = np.empty((len(frame), len(pre.columns_)), dtype=np.float32)
    for j, c in enumerate(pre.columns_):
        col = frame[c["name"]]
        if c["type"] == "numeric":
            out[:, j] = col.to_numpy(dtype=float)
        else:
            out[:, j] = [c["categories"].index(v) if isinstance(v, str) else np.nan for v in col]
    return out


@pytest.mark.parametrize("model", [["--model", "softmax"], ["--model", "mlp", "--hidden", "6"]])
def test_train_calibrate_export_predict(data, model, capsys):
    srm, onnx_path, pred = data / "m.srm", data / "m.onnx", data / "pred.csv"
    assert main(["train", str(data / "train.csv"), "--target", "species", "--standardize", "--impute",
                 "-q", "-o", str(srm), *model]) == 0
    assert main(["calibrate", str(srm), str(data / "train.csv"), "--target", "species", "-q"]) == 0
    capsys.readouterr()
    assert main(["export", str(srm), "-o", str(onnx_path)]) == 0
    captured = capsys.readouterr()
    assert "wrote" in captured.out and "input X float32 of shape (n, 5)" in captured.out
    assert "'soil' takes level codes: 0=clay, 1=loam, 2=sand" in captured.err
    assert main(["predict", str(srm), str(data / "train.csv"), "--target", "species", "--proba",
                 "-q", "-o", str(pred)]) == 0
    ours = pd.read_csv(pred)

    proto = onnx.load(str(onnx_path))
    onnx.checker.check_model(proto, full_check=True)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["categories"]) == {"soil": ["clay", "loam", "sand"]}
    assert meta["calibration"] == "temperature"
    frame = pd.read_csv(data / "train.csv")
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    label, proba = sess.run(None, {"X": _codes(frame, load_model(srm))})
    np.testing.assert_allclose(proba, ours.filter(like="proba_").to_numpy(), atol=1e-5)
    assert label.tolist() == ours["prediction"].tolist()


def test_uncalibrated_and_float32(data, capsys):
    srm = data / "plain.srm"
    assert main(["train", str(data / "train.csv"), "--target", "species", "--impute", "-q",
                 "-o", str(srm)]) == 0
    assert main(["calibrate", str(srm), str(data / "train.csv"), "--target", "species", "-q"]) == 0
    assert main(["export", str(srm), "-o", str(data / "u.onnx"), "--uncalibrated", "--float32", "-q"]) == 0
    bundle = load_model(srm)
    frame = pd.read_csv(data / "train.csv")
    sess = ort.InferenceSession(str(data / "u.onnx"), providers=["CPUExecutionProvider"])
    _, proba = sess.run(None, {"X": _codes(frame, bundle)})
    np.testing.assert_allclose(proba, bundle.predict_proba(frame, calibrated=False), atol=1e-4)


def test_errors(data, tmp_path, capsys):
    assert main(["export", str(tmp_path / "absent.srm"), "-o", str(tmp_path / "m.onnx")]) == 2
    assert "no such model file" in capsys.readouterr().err
    (tmp_path / "junk.srm").write_bytes(b"not a model")
    assert main(["export", str(tmp_path / "junk.srm"), "-o", str(tmp_path / "m.onnx")]) == 2
    assert "not a softmaxreg model file" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "junk.srm"), "-o", str(tmp_path / "no" / "m.onnx")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()
