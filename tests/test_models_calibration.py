"""Temperature and vector scaling: exact optima, recovery of a known temperature, ECE."""

import numpy as np
import pytest
from scipy.optimize import minimize, minimize_scalar
from scipy.special import log_softmax as sp_log_softmax

from softmaxreg.metrics import expected_calibration_error
from softmaxreg.models._calibration import (
    TemperatureScaling,
    VectorScaling,
    fit_temperature,
    fit_vector_scaling,
)


def _nll(z, y, w=None):
    per = -sp_log_softmax(z, axis=1)[np.arange(len(y)), y]
    return float(np.average(per, weights=w))


def _ece(proba, y):
    return expected_calibration_error(y, proba, labels=np.arange(proba.shape[1]), n_bins=15)


def _overconfident(n=20000, k=5, true_t=3.0, seed=0):
    """Labels drawn from softmax(z); the model reports z * true_t (too sharp)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, k)) * 1.5
    p = np.exp(sp_log_softmax(z, axis=1))
    y = (p.cumsum(axis=1) > rng.random((n, 1))).argmax(axis=1)
    return z * true_t, y


def test_recovers_known_temperature_and_lowers_ece():
    logits, y = _overconfident(true_t=3.0)
    T = fit_temperature(logits, y)
    assert abs(T - 3.0) < 0.1  # sampling noise at n = 20000
    before = np.exp(sp_log_softmax(logits, axis=1))
    after = np.exp(sp_log_softmax(logits / T, axis=1))
    assert _ece(after, y) < 0.3 * _ece(before, y)
    assert _ece(after, y) < 0.02
    assert _nll(logits / T, y) < _nll(logits, y)


def test_matches_brute_force_minimizer():
    logits, y = _overconfident(n=3000, k=4, true_t=0.5, seed=1)  # under-confident
    T = fit_temperature(logits, y)
    ref = minimize_scalar(lambda t: _nll(logits / t, y), bounds=(0.05, 20), method="bounded",
                          options={"xatol": 1e-10})
    assert T == pytest.approx(ref.x, rel=1e-6)
    assert T < 1.0
    # first-order condition at T: d/dbeta NLL(beta z) = 0
    p = np.exp(sp_log_softmax(logits / T, axis=1))
    d1 = np.mean(np.sum(p * logits, axis=1) - logits[np.arange(len(y)), y])
    assert abs(d1) < 1e-10 * np.abs(logits).mean()


def test_stationary_point_by_torch_autograd():
    torch = pytest.importorskip("torch")
    logits, y = _overconfident(n=2000, k=6, true_t=2.0, seed=7)
    T = fit_temperature(logits, y)
    t = torch.tensor(T, dtype=torch.float64, requires_grad=True)
    nll = torch.nn.functional.cross_entropy(torch.from_numpy(logits) / t, torch.from_numpy(y))
    (grad,) = torch.autograd.grad(nll, t)
    assert abs(grad.item()) < 1e-10


def test_sample_weight_equals_repetition():
    logits, y = _overconfident(n=400, k=3, seed=2)
    w = np.random.default_rng(3).integers(0, 4, size=len(y))
    rep = np.repeat(np.arange(len(y)), w)
    assert fit_temperature(logits, y, w) == pytest.approx(fit_temperature(logits[rep], y[rep]), rel=1e-10)


def test_separable_logits_cap_temperature():
    z = np.array([[0.0, 5.0], [5.0, 0.0]])
    T = fit_temperature(z, np.array([1, 0]))
    assert T <= 0.125
    assert _nll(z / T, np.array([1, 0])) < 1e-15  # one-hot to rounding


@pytest.mark.parametrize(
    "logits, labels, match",
    [
        (np.zeros((3, 1)), np.array([0, 0, 0]), "n_classes >= 2"),
        (np.array([[0.0, np.nan]]), np.array([0]), "NaN"),
        (np.zeros((2, 2)), np.array([0, 2]), r"\[0, 1\]"),
        (np.zeros((2, 2)), np.array([0.0, 1.0]), "integer"),
        (np.array([[0.0, 1.0], [0.0, 1.0]]), np.array([0, 0]), "no better than uniform"),
    ],
)
def test_bad_input(logits, labels, match):
    with pytest.raises(ValueError, match=match):
        fit_temperature(logits, labels)


def test_vector_scaling_optimum_and_gradient():
    logits, y = _overconfident(n=2000, k=3, seed=4)
    logits = logits + np.array([0.0, 1.0, -1.0])  # a class bias that only a shift can fix
    w, b = fit_vector_scaling(logits, y)

    def obj(theta):
        return _nll(theta[:3] * logits + theta[3:], y)

    ref = minimize(obj, np.r_[np.ones(3), np.zeros(3)], method="BFGS", options={"gtol": 1e-9})
    assert obj(np.r_[w, b]) == pytest.approx(ref.fun, abs=1e-8)
    assert obj(np.r_[w, b]) <= _nll(logits / fit_temperature(logits, y), y) + 1e-12
    assert abs(b.sum()) < 1e-12


def test_wrappers_around_a_real_classifier():
    sklearn = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(5)
    X = rng.normal(size=(1500, 6))
    beta = rng.normal(size=(6, 3))
    y = np.array(["a", "b", "c"])[(np.exp(X @ beta).cumsum(1) / np.exp(X @ beta).sum(1, keepdims=True)
                                   > rng.random((1500, 1))).argmax(1)]
    clf = sklearn.LogisticRegression(C=1e4, max_iter=2000).fit(X[:100], y[:100])  # few samples: over-confident
    cal = TemperatureScaling(clf).fit(X[100:800], y[100:800])
    assert cal.temperature_ > 1.0
    Xt, yt = X[800:], y[800:]
    np.testing.assert_array_equal(cal.predict(Xt), clf.predict(Xt))  # arg-max unchanged
    p = cal.predict_proba(Xt)
    np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-12)
    idx = np.searchsorted(cal.classes_, yt)
    assert _nll(np.log(p), idx) < _nll(np.log(clf.predict_proba(Xt)), idx)
    np.testing.assert_allclose(cal.predict_log_proba(Xt), np.log(p), rtol=1e-10, atol=1e-12)
    vs = VectorScaling(clf).fit(X[100:800], y[100:800])
    assert vs.predict_proba(Xt).shape == (700, 3)
    with pytest.raises(ValueError, match="not one of the model's classes"):
        TemperatureScaling(clf).fit(X[:5], ["a", "b", "z", "a", "b"])
    with pytest.raises(ValueError, match="fitted"):
        TemperatureScaling(sklearn.LogisticRegression()).fit(X[:5], y[:5])


def test_binary_margin_is_expanded():
    class Margin:
        classes_ = np.array([0, 1])

        def decision_function(self, X):
            return np.asarray(X, dtype=float).ravel()

    X = np.array([[2.0]] * 4)
    cal = TemperatureScaling(Margin()).fit(X, [1, 1, 1, 0])
    assert cal.temperature_ == pytest.approx(2 / np.log(3), rel=1e-12)
    np.testing.assert_allclose(cal.predict_proba(X[:1]), [[0.25, 0.75]], rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", ["temperature", "vector"])
def test_float32_in_float32_out(dtype, make):
    from softmaxreg.models import SoftmaxRegression, TemperatureScaling, VectorScaling

    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 4)).astype(dtype)
    y = np.arange(90) % 3
    model = SoftmaxRegression().fit(X, y)
    cal = (TemperatureScaling(model) if make == "temperature" else VectorScaling(model)).fit(X, y)
    for method in ("decision_function", "predict_proba", "predict_log_proba"):
        out = getattr(cal, method)(X.astype(np.float64))
        assert out.dtype == dtype, method
    np.testing.assert_allclose(np.exp(cal.predict_log_proba(X)), cal.predict_proba(X),
                               rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_a_calibrator_used_before_fit_says_so():
    from sklearn.exceptions import NotFittedError

    from softmaxreg.models import SoftmaxRegression, TemperatureScaling, VectorScaling

    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = SoftmaxRegression().fit(X, [0, 0, 1, 1])
    for calibrator in (TemperatureScaling(model), VectorScaling(model)):
        for method in ("predict", "predict_proba", "decision_function"):
            with pytest.raises(NotFittedError, match="not fitted yet"):
                getattr(calibrator, method)(X)
