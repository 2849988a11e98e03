"""MultiLabelLogisticRegression against per-label scikit-learn logistic regressions."""

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from sklearn.datasets import make_multilabel_classification
from sklearn.linear_model import LogisticRegression
from sklearn.multioutput import MultiOutputClassifier
from sklearn.preprocessing import StandardScaler

from softmaxreg.loss import LinearSigmoidLoss
from softmaxreg.models import MultiLabelLogisticRegression, SoftmaxRegression


@pytest.fixture(scope="module")
def data():
    X, Y = make_multilabel_classification(200, 6, n_classes=4, random_state=0)
    return StandardScaler().fit_transform(X), Y


@pytest.mark.parametrize("solver", ["lbfgs", "newton-cg", "proximal"])
def test_matches_one_logistic_regression_per_label(data, solver):
    X, Y = data
    model = MultiLabelLogisticRegression(C=0.5, solver=solver, tol=1e-9, max_iter=5000).fit(X, Y)
    sk = MultiOutputClassifier(LogisticRegression(C=0.5, tol=1e-12, max_iter=10_000)).fit(X, Y)
    for j, est in enumerate(sk.estimators_):
        np.testing.assert_allclose(model.coef_[j], est.coef_[0], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(model.intercept_[j], est.intercept_[0], rtol=1e-5, atol=1e-6)
    proba = np.column_stack([p[:, 1] for p in sk.predict_proba(X)])
    np.testing.assert_allclose(model.predict_proba(X), proba, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(model.predict(X), sk.predict(X))
    assert model.converged_


def test_l1_matches_saga_per_label(data):
    X, Y = data
    model = MultiLabelLogisticRegression("l1", C=0.2, tol=1e-10, max_iter=20_000).fit(X, Y)
    loss = LinearSigmoidLoss(X, Y)
    for j in range(Y.shape[1]):
        sk = LogisticRegression(C=0.2, l1_ratio=1.0, solver="saga", tol=1e-10,
                                max_iter=50_000).fit(X, Y[:, j])
        ours = 0.2 * len(Y) * _bce(X, Y[:, j], model.coef_[j], model.intercept_[j]) \
            + np.abs(model.coef_[j]).sum()
        ref = 0.2 * len(Y) * _bce(X, Y[:, j], sk.coef_[0], sk.intercept_[0]) \
            + np.abs(sk.coef_[0]).sum()
        assert abs(ours - ref) <= 1e-6 * ref
    assert np.any(model.coef_ == 0) and loss.n_labels == 4


def _bce(X, y, w, b):
    z = X @ w + b
    return float(np.mean(np.logaddexp(0, z) - y * z))


def test_loss_gradient_and_hessp_match_torch(data):
    X, Y = data
    sw = np.random.default_rng(1).uniform(0.5, 2, len(Y))
    loss = LinearSigmoidLoss(X, Y, sample_weight=sw, l2_reg_strength=0.1)
    rng = np.random.default_rng(2)
    w, v = rng.normal(size=loss.n_params), rng.normal(size=loss.n_params)
    Xt, Yt, st = torch.tensor(X), torch.tensor(Y, dtype=torch.float64), torch.tensor(sw)

    def f(wt):
        full = wt.reshape(4, 7)
        Z = Xt @ full[:, :6].T + full[:, 6]
        bce = torch.nn.functional.binary_cross_entropy_with_logits(Z, Yt, reduction="none")
        return (st * bce.sum(1)).sum() / st.sum() + 0.05 * (full[:, :6] ** 2).sum()

    wt = torch.tensor(w, requires_grad=True)
    value = f(wt)
    (g,) = torch.autograd.grad(value, wt, create_graph=True)
    (hv,) = torch.autograd.grad(g @ torch.tensor(v), wt)
    f_ours, g_ours = loss.loss_gradient(w)
    assert f_ours == pytest.approx(value.item(), rel=1e-13)
    np.testing.assert_allclose(g_ours, g.detach().numpy(), rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(loss.hessp(w, v), hv.numpy(), rtol=1e-11, atol=1e-14)


def test_one_label_equals_two_class_softmax(data):
    # The notes' special case: a sigmoid is the two-class softmax with w = w1 - w0.
    X, Y = data
    multi = MultiLabelLogisticRegression(penalty=None, tol=1e-10).fit(X, Y[:, :1])
    soft = SoftmaxRegression(penalty=None, reference_class=0, tol=1e-10).fit(X, Y[:, 0])
    np.testing.assert_allclose(multi.coef_[0], soft.coef_[1], rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(multi.predict_proba(X)[:, 0], soft.predict_proba(X)[:, 1],
                               rtol=1e-6, atol=1e-9)


def test_sparse_dataframe_weights_and_log_proba(data):
    X, Y = data
    dense = MultiLabelLogisticRegression(tol=1e-10).fit(X, Y)
    sparse = MultiLabelLogisticRegression(tol=1e-10).fit(sp.csr_matrix(X), Y)
    np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=1e-7, atol=1e-9)
    frame = MultiLabelLogisticRegression(tol=1e-10).fit(
        pd.DataFrame(X, columns=list("abcdef")), pd.DataFrame(Y, columns=["w", "x", "y", "z"]))
    assert frame.classes_.tolist() == ["w", "x", "y", "z"]
    assert frame.feature_names_in_.tolist() == list("abcdef")
    counts = np.random.default_rng(0).integers(0, 3, len(Y))
    weighted = MultiLabelLogisticRegression(tol=1e-10).fit(X, Y, sample_weight=counts)
    repeated = MultiLabelLogisticRegression(tol=1e-10).fit(np.repeat(X, counts, 0),
                                                           np.repeat(Y, counts, 0))
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(np.exp(dense.predict_log_proba(X)), dense.predict_proba(X),
                               rtol=1e-12)


@pytest.mark.parametrize(
    "make_y, match",
    [(lambda Y: Y[:, 0], "indicator matrix"), (lambda Y: Y * 2, "only 0 and 1"),
     (lambda Y: np.column_stack([Y, np.zeros(len(Y))]), "label 4 is never on"),
     (lambda Y: Y[:-1], "rows but X has")],
)
def test_bad_targets(data, make_y, match):
    X, Y = data
    model = MultiLabelLogisticRegression().fit(X, Y)
    coef = model.coef_.copy()
    with pytest.raises(ValueError, match=match):
        model.fit(X, make_y(Y))
    np.testing.assert_array_equal(model.coef_, coef)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float32_in_float32_out(dtype):
    from softmaxreg.models import MultiLabelLogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 4)).astype(dtype)
    Y = (X[:, :2] + 0.5 * rng.normal(size=(80, 2)) > 0).astype(int)
    model = MultiLabelLogisticRegression().fit(X, Y)
    for method in ("decision_function", "predict_proba", "predict_log_proba"):
        assert getattr(model, method)(X).dtype == dtype, method
