"""ONNX export (softmaxreg.io.to_onnx): onnxruntime predicts what softmaxreg predicts."""

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from softmaxreg.io import ModelBundle, Preprocessor, load_model, save_model, save_onnx, to_onnx  # noqa: E402
from softmaxreg.models import (  # noqa: E402
    MLPClassifier,
    MultiLabelLogisticRegression,
    SoftmaxRegression,
    TemperatureScaling,
    VectorScaling,
)

ATOL = 1e-5


def _run(proto, X):
    onnx.checker.check_model(proto, full_check=True)
    sess = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    assert [i.name for i in sess.get_inputs()] == ["X"]
    assert [o.name for o in sess.get_outputs()] == ["label", "probabilities"]
    label, proba = sess.run(None, {"X": np.asarray(X, dtype=np.float32)})
    assert proba.dtype == np.float32
    return label, proba


def _data(n=120, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    U = rng.normal(size=(n, d))
    X = U * np.linspace(1, 20, d) + np.linspace(-5, 5, d)  # columns of unequal scale and offset
    y = np.argmax(U @ rng.normal(size=(k, d)).T + rng.gumbel(size=(n, k)), axis=1)
    return X.astype(np.float32).astype(np.float64), y


def _check(model, X_raw, X_onnx=None, **kw):
    """onnxruntime's label and probabilities against the model's own on the same rows."""
    label, proba = _run(to_onnx(model, **kw), X_raw if X_onnx is None else X_onnx)
    if isinstance(model, ModelBundle):
        calibrated = kw.get("calibrated", True)
        ours_p = model.predict_proba(X_raw, calibrated=calibrated)
        ours_y = model.predict(X_raw, calibrated=calibrated)
    else:
        ours_p, ours_y = model.predict_proba(X_raw), model.predict(X_raw)
    np.testing.assert_allclose(proba, ours_p, rtol=0, atol=ATOL)
    if np.asarray(ours_y).dtype.kind in "iu":
        assert label.dtype == np.int64
        np.testing.assert_array_equal(label, ours_y)
    else:
        assert label.dtype == object
        assert label.tolist() == [str(v) for v in np.asarray(ours_y).tolist()]
    return label, proba


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("labels", ["int", "str"])
def test_softmax_regression_plain(k, labels):
    X, y = _data(k=k)
    if labels == "str":
        y = np.array(["cat", "dog", "emu"])[y]
    clf = SoftmaxRegression(C=10.0).fit(X, y)
    _check(clf, X)


def test_softmax_regression_no_intercept_float32_and_reference_class():
    X, y = _data(k=4, seed=1)
    clf = SoftmaxRegression(fit_intercept=False, dtype="float32").fit(X.astype(np.float32), y)
    _check(clf, X.astype(np.float32))
    ref = SoftmaxRegression(penalty=None, reference_class=2).fit(X, y)
    _check(ref, X)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid"])
@pytest.mark.parametrize("hidden", [(7,), (6, 5)])
def test_mlp_every_activation(activation, hidden):
    X, y = _data(k=3, seed=2)
    X = (X - X.mean(0)) / X.std(0)
    mlp = MLPClassifier(hidden_layer_sizes=hidden, activation=activation, random_state=0).fit(X, y)
    _check(mlp, X)


def test_mlp_dropout_is_off_and_binary_string_labels():
    X, y = _data(k=2, seed=3)
    X = (X - X.mean(0)) / X.std(0)
    mlp = MLPClassifier(hidden_layer_sizes=(8,), dropout=0.3, random_state=0).fit(X, np.array(["no", "yes"])[y])
    _check(mlp, X)
    mlp = MLPClassifier(hidden_layer_sizes=(), random_state=0).fit(X, y)  # no hidden layer
    _check(mlp, X)


@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("impute", [False, True])
def test_array_preprocessing(standardize, impute):
    X, y = _data(k=3, seed=4)
    if impute:
        X = X.copy()
        X[::7, 1] = np.nan
        X[3, 4] = np.nan
    pre = Preprocessor(standardize=standardize, impute=impute).fit(X)
    clf = SoftmaxRegression().fit(pre.transform(X), y)
    _check(ModelBundle(clf, pre), X)


def test_sparse_preprocessing_takes_dense_rows():
    X, y = _data(k=3, seed=5)
    X[np.abs(X) < 3] = 0.0
    pre = Preprocessor(standardize=True).fit(sp.csr_matrix(X))
    clf = SoftmaxRegression().fit(pre.transform(sp.csr_matrix(X)), y)
    bundle = ModelBundle(clf, pre)
    label, proba = _run(to_onnx(bundle), X)
    np.testing.assert_allclose(proba, bundle.predict_proba(sp.csr_matrix(X)), atol=ATOL)
    np.testing.assert_array_equal(label, bundle.predict(sp.csr_matrix(X)))


def _frame(n=150, seed=6, missing=False):
    rng = np.random.default_rng(seed)
    colour = rng.choice(["red", "green", "blue"], size=n)
    size = rng.normal(10, 3, size=n)
    count = rng.integers(0, 50, size=n)
    shape = rng.choice(["round", "square"], size=n)
    score = 0.4 * size - 0.1 * count + (colour == "red") * 3 + (shape == "round")
    y = np.digitize(score + rng.normal(size=n), np.quantile(score, [0.33, 0.66]))
    frame = pd.DataFrame({"size": size, "colour": colour, "count": count, "shape": shape})
    if missing:
        frame.loc[::9, "size"] = np.nan
        frame.loc[::11, "colour"] = None
    return frame, np.array(["low", "mid", "high"])[y]


def _codes(frame, pre):
    """The ONNX input: numeric columns as they are, categorical ones as level codes (NaN if missing)."""
    out = np.empty((len(frame), len(pre.columns_)), dtype=np.float32)
    for j, c in enumerate(pre.columns_):
        col = frame[c["name"]]
        if c["type"] == "numeric":
            out[:, j] = col.to_numpy(dtype=float)
        else:
            lookup = {v: i for i, v in enumerate(c["categories"])}
            out[:, j] = [np.nan if v is None or v != v else lookup.get(v, -1) for v in col.tolist()]
    return out


@pytest.mark.parametrize("standardize", [False, True])
@pytest.mark.parametrize("missing", [False, True])
@pytest.mark.parametrize("kind", ["softmax", "mlp"])
def test_frame_one_hot_imputation_standardization(standardize, missing, kind):
    frame, y = _frame(missing=missing)
    pre = Preprocessor(standardize=standardize, impute=missing).fit(frame)
    Z = pre.transform(frame)
    est = (SoftmaxRegression() if kind == "softmax"
           else MLPClassifier(hidden_layer_sizes=(6,), activation="tanh", random_state=0))
    bundle = ModelBundle(est.fit(Z, y), pre)
    proto = to_onnx(bundle)
    label, proba = _check(bundle, frame, _codes(frame, pre))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["categories"]) == {"colour": ["blue", "green", "red"], "shape": ["round", "square"]}
    assert json.loads(meta["feature_names"]) == ["size", "colour", "count", "shape"]


def test_frame_unseen_level_and_missing_without_imputation():
    frame, y = _frame()
    pre = Preprocessor().fit(frame)
    bundle = ModelBundle(SoftmaxRegression().fit(pre.transform(frame), y), pre)
    codes = _codes(frame, pre)[:4]
    codes[0, 1] = -1.0  # no level: encodes as all zeros, as an unseen level does
    new = frame.iloc[:4].copy()
    new.loc[new.index[0], "colour"] = "purple"
    label, proba = _run(to_onnx(bundle), codes)
    np.testing.assert_allclose(proba, bundle.predict_proba(new), atol=ATOL)
    codes[1, 0] = np.nan  # softmaxreg refuses it; the graph makes the row NaN, never a guess
    _, proba = _run(to_onnx(bundle), codes)
    assert np.isnan(proba[1]).all() and np.isfinite(proba[[0, 2, 3]]).all()


@pytest.mark.parametrize("k", [2, 4])
@pytest.mark.parametrize("method", ["temperature", "vector"])
@pytest.mark.parametrize("kind", ["softmax", "mlp"])
def test_calibration(k, method, kind):
    X, y = _data(k=k, seed=7)
    X = (X - X.mean(0)) / X.std(0)
    est = (SoftmaxRegression(C=100.0) if kind == "softmax"
           else MLPClassifier(hidden_layer_sizes=(5,), random_state=0)).fit(X[:80], y[:80])
    cal = (TemperatureScaling(est) if method == "temperature" else VectorScaling(est)).fit(X[80:], y[80:])
    _check(cal, X)
    # the same through a model file, calibrated and not
    bundle = ModelBundle(est, None, calibration=(
        {"method": "temperature", "temperature": cal.temperature_} if method == "temperature"
        else {"method": "vector", "scale": cal.scale_, "shift": cal.shift_}))
    _check(bundle, X)
    _check(bundle, X, calibrated=False)


def test_through_a_model_file_and_save_onnx(tmp_path):
    frame, y = _frame(missing=True)
    pre = Preprocessor(standardize=True, impute=True).fit(frame)
    est = SoftmaxRegression().fit(pre.transform(frame), y)
    save_model(tmp_path / "m.srm", est, preprocessor=pre,
               calibration={"method": "temperature", "temperature": 1.7})
    bundle = load_model(tmp_path / "m.srm")
    save_onnx(bundle, tmp_path / "m.onnx")
    proto = onnx.load(str(tmp_path / "m.onnx"))
    label, proba = _run(proto, _codes(frame, pre))
    np.testing.assert_allclose(proba, bundle.predict_proba(frame), atol=ATOL)
    assert label.tolist() == bundle.predict(frame).tolist()
    assert [p.version for p in proto.opset_import if p.domain == ""] == [17]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.srm"]  # no temporary left


def test_float32_graph_is_close():
    X, y = _data(k=3, seed=8)
    clf = SoftmaxRegression().fit(X, y)
    label, proba = _run(to_onnx(clf, compute_dtype="float32"), X)
    np.testing.assert_allclose(proba, clf.predict_proba(X), atol=1e-4)
    init_types = {t.data_type for t in to_onnx(clf, compute_dtype="float32").graph.initializer}
    assert onnx.TensorProto.DOUBLE not in init_types


def test_bad_input():
    X, y = _data()
    with pytest.raises(ValueError, match="not fitted"):
        to_onnx(SoftmaxRegression())
    with pytest.raises(ValueError, match="cannot export a MultiLabelLogisticRegression"):
        to_onnx(MultiLabelLogisticRegression().fit(X, np.column_stack([y == 0, y == 1])))
    with pytest.raises(ValueError, match="compute_dtype"):
        to_onnx(SoftmaxRegression().fit(X, y), compute_dtype="float16")


def test_missing_onnx_names_the_extra(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install softmaxreg\[onnx\]"):
        to_onnx(SoftmaxRegression().fit(*_data()))
