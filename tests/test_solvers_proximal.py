"""The FISTA proximal solver: scikit-learn's L1 / elastic-net optimum and the KKT conditions."""

import numpy as np
import pytest
from sklearn.datasets import load_iris, load_wine, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from softmaxreg.loss import LinearSoftmaxLoss
from softmaxreg.solvers import lbfgs, proximal, soft_threshold


def dataset(name):
    if name == "synthetic":
        X, y = make_classification(200, 8, n_informative=4, n_classes=3, random_state=1)
    else:
        X, y = {"iris": load_iris, "wine": load_wine}[name](return_X_y=True)
    return StandardScaler().fit_transform(X), y


def problem(X, y, C, l1_ratio):
    scale = 1.0 / (C * len(y))
    loss = LinearSoftmaxLoss(X, y, l2_reg_strength=(1 - l1_ratio) * scale)
    weights = np.zeros((loss.n_free, loss.n_dof))
    weights[:, :-1] = l1_ratio * scale  # the intercept column is not penalized
    return loss, weights.ravel()


@pytest.mark.parametrize(
    "name, C, l1_ratio", [("iris", 1.0, 1.0), ("wine", 0.5, 1.0), ("synthetic", 1.0, 1.0),
                          ("wine", 1.0, 0.5)]
)
def test_reaches_saga_optimum(name, C, l1_ratio):
    X, y = dataset(name)
    loss, l1 = problem(X, y, C, l1_ratio)
    res = proximal(loss, np.zeros(loss.n_params), l1=l1, tol=1e-9, max_iter=20_000)
    sk = LogisticRegression(C=C, l1_ratio=l1_ratio, solver="saga", tol=1e-10,
                            max_iter=20_000).fit(X, y)
    w_sk = loss.pack(sk.coef_, sk.intercept_)
    ref = loss.loss(w_sk) + l1 @ np.abs(w_sk)
    assert res.converged
    assert res.fun == pytest.approx(loss.loss(res.x) + l1 @ np.abs(res.x), rel=1e-15)
    assert abs(res.fun - ref) <= 1e-6 * ref
    # Exact zeros where saga has (numerically) zeros.
    coef, _ = loss.unpack(res.x)
    assert np.all(coef[np.abs(sk.coef_) < 1e-8] == 0)


def test_kkt_conditions_at_solution():
    X, y = dataset("wine")
    loss, l1 = problem(X, y, 0.2, 1.0)
    res = proximal(loss, np.zeros(loss.n_params), l1=l1, tol=1e-10, max_iter=20_000)
    g = loss.gradient(res.x)
    nonzero = res.x != 0
    assert 0 < nonzero.sum() < res.x.size  # the penalty makes some, not all, zero
    # Non-zero coordinates: g + l1 sign(x) = 0; zero ones: |g| <= l1.
    np.testing.assert_allclose(g[nonzero] + l1[nonzero] * np.sign(res.x[nonzero]), 0, atol=1e-8)
    assert np.all(np.abs(g[~nonzero]) <= l1[~nonzero] + 1e-8)


def test_without_l1_matches_lbfgs():
    X, y = dataset("iris")
    loss = LinearSoftmaxLoss(X, y, l2_reg_strength=1e-2)
    res = proximal(loss, np.zeros(loss.n_params), l1=0.0, tol=1e-9, max_iter=10_000)
    ref = lbfgs(loss, np.zeros(loss.n_params), tol=1e-10)
    assert res.fun == pytest.approx(ref.fun, rel=1e-12)


def test_soft_threshold_is_the_prox_of_the_l1_norm():
    # prox_t(v) = argmin_x 0.5 (x - v)^2 + t |x|, checked on a fine grid.
    grid = np.linspace(-5, 5, 100_001)
    for v in (-3.0, -0.5, 0.0, 0.7, 2.5):
        best = grid[np.argmin(0.5 * (grid - v) ** 2 + 1.0 * np.abs(grid))]
        assert soft_threshold(np.array(v), 1.0) == pytest.approx(best, abs=1e-4)


def test_max_iter_warns_and_bad_weights_raise():
    X, y = dataset("iris")
    loss, l1 = problem(X, y, 1.0, 1.0)
    with pytest.warns(ConvergenceWarning):
        res = proximal(loss, np.zeros(loss.n_params), l1=l1, tol=1e-12, max_iter=3)
    assert res.n_iter == 3 and len(res.history) == 3
    with pytest.raises(ValueError, match="non-negative"):
        proximal(loss, np.zeros(loss.n_params), l1=-1.0)
