"""Marginal effects against statsmodels' get_margeff (MNLogit, and Logit where MNLogit fails)."""

import itertools

import numpy as np
import pytest
import statsmodels.api as sm

from _inference_data import anes96, fit, generated, mnlogit
from softmaxreg import SoftmaxRegression

AT = ["overall", "mean", "median"]
METHODS = ["dydx", "eyex", "dyex", "eydx"]


def sm_supports(at, method, discrete):
    """The combinations statsmodels' get_margeff accepts (it refuses the others)."""
    return not discrete or (method in ("dydx", "eydx") and at != "median")


@pytest.mark.parametrize("data", [anes96, generated])
@pytest.mark.parametrize("at", AT)
@pytest.mark.parametrize("method", ["dydx", "eydx"])
def test_matches_statsmodels_mnlogit(data, at, method):
    # statsmodels 0.15's MNLogit get_margeff runs for these; its "ex" methods and its
    # dummy/count changes fail there on a broadcasting error (checked below on Logit).
    X, y = data()
    ref = mnlogit(X, y).get_margeff(at=at, method=method)
    me = fit(X, y, np.unique(y)[0]).marginal_effects(at=at, method=method)
    np.testing.assert_allclose(me.margeff, ref.margeff, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(me.margeff_se, ref.margeff_se, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(me.margeff_cov, ref.margeff_cov, rtol=1e-7, atol=1e-14)
    np.testing.assert_allclose(me.pvalues, ref.pvalues, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(me.conf_int(), ref.conf_int(), rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize(("at", "method", "dummy", "count"),
                         [c for c in itertools.product(AT, METHODS, [False, True], [False, True])
                          if sm_supports(c[0], c[1], c[2] or c[3])])
def test_two_classes_match_statsmodels_logit_for_every_combination(at, method, dummy, count):
    X, y = generated(3)
    keep = y != "c"
    X, y = X[keep], (y[keep] == "b").astype(int)  # a 0/1 feature (x1) and a count (x2)
    ref = sm.Logit(y, sm.add_constant(X)).fit(disp=0, method="newton", tol=1e-12)
    ref = ref.get_margeff(at=at, method=method, dummy=dummy, count=count)
    me = fit(X, y, 0).marginal_effects(at=at, method=method, dummy=dummy, count=count)
    np.testing.assert_allclose(me.margeff[:, 1], ref.margeff, rtol=1e-8, atol=1e-12)
    if method.startswith("dy"):  # the two probabilities move in opposite directions
        np.testing.assert_allclose(me.margeff[:, 0], -ref.margeff, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(me.margeff_se[:, 1], ref.margeff_se, rtol=1e-8, atol=1e-12)
    assert me.dummy_features == (["x1"] if dummy else [])
    assert me.count_features == (["x2"] if count else [])


def test_at_given_values_match_statsmodels_atexog():
    X, y = generated(3)
    keep = y != "c"
    X, y = X[keep], (y[keep] == "b").astype(int)
    ref = sm.Logit(y, sm.add_constant(X)).fit(disp=0, method="newton", tol=1e-12)
    ref = ref.get_margeff(at="overall", atexog={1: 0.5, 3: 2.0})
    me = fit(X, y, 0).marginal_effects(at={0: 0.5, "x2": 2.0})
    np.testing.assert_allclose(me.margeff[:, 1], ref.margeff, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(me.margeff_se[:, 1], ref.margeff_se, rtol=1e-8, atol=1e-12)


def _reference_effects(model, X, w, method, dummy, count, theta=None):
    """The definitions, written out: averaged effects (n_features, n_classes)."""
    W = np.column_stack([model.intercept_, model.coef_]) if theta is None else theta
    K, d = W.shape[0], X.shape[1]

    def proba(Z):
        L = np.column_stack([np.ones(len(Z)), Z]) @ W.T
        E = np.exp(L - L.max(1, keepdims=True))
        return E / E.sum(1, keepdims=True)

    P = proba(X)
    out = np.zeros((d, K))
    for j in range(d):
        col = X[:, j]
        is_dummy = set(np.unique(col)) == {0.0, 1.0}
        is_count = not is_dummy and np.all(col % 1 == 0) and np.all(col >= 0)
        g = np.log if method.startswith("ey") else (lambda p: p)
        if dummy and is_dummy or count and is_count:
            lo, hi = X.copy(), X.copy()
            lo[:, j], hi[:, j] = (0, 1) if is_dummy else (col - 1, col + 1)
            eff = (g(proba(hi)) - g(proba(lo))) * (1 if is_dummy else 0.5)
        else:
            a = W[:, 1 + j][None] - P @ W[:, 1 + j][:, None]  # dlog p_k / dx_j
            eff = a * (P if method.startswith("dy") else 1) * (col[:, None] if method.endswith("ex") else 1)
        out[j] = w @ eff / w.sum()
    return out


@pytest.mark.parametrize(("data", "method", "dummy", "count"),
                         [("generated", "dyex", False, False), ("generated", "eyex", False, False),
                          ("generated", "dydx", True, True), ("generated", "eydx", True, True),
                          ("anes96", "dydx", False, True), ("anes96", "eyex", False, False)])
def test_many_classes_against_the_definitions_and_numerical_jacobian(data, method, dummy, count):
    X, y = generated(5, 300) if data == "generated" else anes96()
    model = fit(X, y, np.unique(y)[0])
    me = model.marginal_effects(method=method, dummy=dummy, count=count)
    w = np.ones(len(y))
    np.testing.assert_allclose(me.margeff, _reference_effects(model, X, w, method, dummy, count),
                               rtol=1e-10, atol=1e-13)
    # Delta method with a central-difference Jacobian over the free rows (b, c).
    theta0 = np.column_stack([model.intercept_, model.coef_])
    theta0 = theta0 - theta0[0]
    q = theta0[1:].size
    Jac = np.zeros((me.margeff.size, q))
    for i in range(q):
        for sign in (1, -1):
            t = theta0.copy()
            t[1:].flat[i] += sign * 1e-6
            Jac[:, i] += sign * _reference_effects(model, X, w, method, dummy, count, t).ravel("F")
    Jac /= 2e-6
    se = np.sqrt(np.diag(Jac @ model.cov_params() @ Jac.T)).reshape(me.margeff.shape, order="F")
    np.testing.assert_allclose(me.margeff_se, se, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("at", ["overall", "mean", {"x0": 1.0}])
def test_same_for_every_reference_class(at):
    X, y = generated(6, 250)
    base = fit(X, y, "a").marginal_effects(at=at, dummy=True, count=True)
    for reference in ["b", "c", None]:
        other = fit(X, y, reference).marginal_effects(at=at, dummy=True, count=True)
        np.testing.assert_allclose(other.margeff, base.margeff, rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(other.margeff_se, base.margeff_se, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("at", AT)
def test_frequency_weights_are_repeated_rows(at):
    X, y = generated(7, 150)
    w = np.random.default_rng(8).integers(0, 4, size=y.size)
    a = fit(X, y, "a", sample_weight=w).marginal_effects(at=at, method="eydx", dummy=True)
    b = fit(np.repeat(X, w, axis=0), np.repeat(y, w), "a").marginal_effects(
        at=at, method="eydx", dummy=True)
    np.testing.assert_allclose(a.margeff, b.margeff, rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(a.margeff_se, b.margeff_se, rtol=1e-6, atol=1e-10)
    assert a.n_obs == b.n_obs == w.sum()


def test_robust_covariance_matches_statsmodels_and_table():
    X, y = anes96()
    ref = mnlogit(X, y, cov_type="HC0").get_margeff()
    model = fit(X, y, 1)
    me = model.marginal_effects(cov_type="HC0")
    np.testing.assert_allclose(me.margeff_se, ref.margeff_se, rtol=1e-8)
    groups = np.arange(y.size) % 30
    clustered = model.marginal_effects(cov_type="cluster", groups=groups)
    assert not np.allclose(clustered.margeff_se, me.margeff_se)
    frame = me.to_frame()
    assert list(frame.columns[:4]) == ["dy/dx", "std err", "z", "P>|z|"]
    assert frame.shape == (5 * 7, 6) and frame.index[0] == (0, "x0")
    np.testing.assert_allclose(frame["dy/dx"].to_numpy(), me.margeff.ravel("F"))
    text = str(me)
    assert "Marginal effects" in text and "class = 6" in text


def test_new_rows_and_bad_input():
    X, y = generated(9, 200)
    model = fit(X, y, "a")
    me = model.marginal_effects(X[:20], at="mean")
    assert me.margeff.shape == (3, 3) and me.n_obs == 20
    np.testing.assert_allclose(me.margeff.sum(axis=1), 0, atol=1e-12)  # probabilities sum to one
    with pytest.raises(ValueError, match="penalty=None"):
        SoftmaxRegression(C=1.0).fit(X, y).marginal_effects()
    with pytest.raises(ValueError, match="method must be"):
        model.marginal_effects(method="dx")
    with pytest.raises(ValueError, match="elasticity"):
        model.marginal_effects(method="eyex", dummy=True)
    with pytest.raises(ValueError, match="unknown feature"):
        model.marginal_effects(at={"nope": 1})
    with pytest.raises(ValueError, match="at must be"):
        model.marginal_effects(at="zero")
