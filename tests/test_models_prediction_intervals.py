"""Intervals on predicted probabilities: the delta method written out, and coverage by simulation."""

import numpy as np
import pytest
from scipy.special import expit

from _inference_data import fit, generated
from softmaxreg import SoftmaxRegression


def test_equals_delta_method_written_out():
    X, y = generated(10, 300)
    model = fit(X, y, "b")
    Xnew = X[:7] + 0.3
    proba, lower, upper, se = model.predict_interval(Xnew, alpha=0.1)
    np.testing.assert_allclose(proba, model.predict_proba(Xnew), rtol=1e-12)
    # Gradient of logit(p_k) in the free parameters by central differences.
    W0 = np.column_stack([model.intercept_, model.coef_])
    W0 = W0 - W0[1]
    free = [0, 2]
    V = model.cov_params()

    def logit_p(theta):
        W = W0.copy()
        W[free] = theta.reshape(2, -1)
        L = np.column_stack([np.ones(len(Xnew)), Xnew]) @ W.T
        P = np.exp(L - L.max(1, keepdims=True))
        P /= P.sum(1, keepdims=True)
        return np.log(P / (1 - P))

    theta = W0[free].ravel()
    G = np.stack([(logit_p(theta + h) - logit_p(theta - h)) / 2e-6
                  for h in 1e-6 * np.eye(theta.size)], axis=-1)
    se_ref = np.sqrt(np.einsum("nkq,qr,nkr->nk", G, V, G))
    np.testing.assert_allclose(se, se_ref, rtol=1e-6)
    eta = np.log(proba / (1 - proba))
    np.testing.assert_allclose(lower, expit(eta - 1.6448536269514722 * se_ref), rtol=1e-6)
    np.testing.assert_allclose(upper, expit(eta + 1.6448536269514722 * se_ref), rtol=1e-6)
    assert np.all((0 < lower) & (lower < proba) & (proba < upper) & (upper < 1))
    # The same for every reference class, and for symmetric coding.
    for reference in ["a", None]:
        other = fit(X, y, reference).predict_interval(Xnew, alpha=0.1)
        np.testing.assert_allclose(other.lower, lower, rtol=1e-6)
        np.testing.assert_allclose(other.upper, upper, rtol=1e-6)


def test_coverage_near_nominal_by_parametric_bootstrap():
    # Data drawn again and again from one fitted model (the parametric bootstrap):
    # each refit's 90% intervals should cover that model's probabilities ~90% of the time.
    rng = np.random.default_rng(11)
    X = rng.normal(size=(250, 2))
    truth = SoftmaxRegression(penalty=None, reference_class=0).fit(
        X, (X @ [1.0, -1.0] + rng.logistic(size=250) > 0).astype(int) + (X[:, 0] > 1))
    P = truth.predict_proba(X)
    points = X[:6]
    covered, total = 0, 0
    for _ in range(60):
        y = (rng.uniform(size=(250, 1)) > np.cumsum(P, axis=1)).sum(axis=1)
        refit = SoftmaxRegression(penalty=None, reference_class=0).fit(X, y)
        _, lo, hi, _ = refit.predict_interval(points, alpha=0.1)
        p0 = truth.predict_proba(points)
        covered += np.sum((lo <= p0) & (p0 <= hi))
        total += p0.size
    assert 0.85 <= covered / total <= 0.95, covered / total


def test_bad_input():
    X, y = generated(12, 150)
    with pytest.raises(ValueError, match="penalty=None"):
        SoftmaxRegression().fit(X, y).predict_interval(X)
    with pytest.raises(ValueError, match="alpha"):
        fit(X, y, "a").predict_interval(X, alpha=1.5)
