"""The standardized reparametrization is exact: same objective, same optimum."""

import numpy as np
import pytest

pytest.importorskip("numba")
from softmaxreg.loss import LinearSoftmaxLoss  # noqa: E402
from softmaxreg.solvers import lbfgs  # noqa: E402
from softmaxreg.solvers._preconditioned import StandardizedSoftmaxLoss  # noqa: E402


def data(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((300, 6)) * np.array([1.0, 10.0, 0.01, 5.0, 1.0, 0.0]) + np.array([0, 50, 1, -3, 0, 2.0])
    y = rng.integers(0, 4, 300)
    return X.astype(dtype), y, rng.random(300)


@pytest.mark.parametrize("center,scale,damping", [(True, True, 0.0), (True, False, 0.0), (False, True, 0.1)])
def test_objective_gradient_hessp_are_the_original_ones_mapped(center, scale, damping):
    X, y, sw = data()
    lam = 0.05
    ref = LinearSoftmaxLoss(X, y, n_classes=4, sample_weight=sw, l2_reg_strength=lam)
    st = StandardizedSoftmaxLoss(X, y, n_classes=4, sample_weight=sw, l2_reg_strength=lam,
                                 center=center, scale=scale, damping=damping)
    rng = np.random.default_rng(1)
    coef, b = rng.standard_normal((4, 6)) * 0.1, rng.standard_normal(4)
    w = st.from_original(coef, b)
    f, g = st.loss_gradient(w)
    np.testing.assert_allclose(f, ref.loss(ref.pack(coef, b)), rtol=1e-12)
    # Chain rule: the gradient in w' is the original gradient mapped by the transpose of the map.
    gc, gb = ref.unpack(ref.gradient(ref.pack(coef, b)))
    g2 = g.reshape(4, 7)
    np.testing.assert_allclose(g2[:, -1], gb, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(g2[:, :-1], (gc - np.outer(gb, st.mean)) / st.scale, rtol=1e-9, atol=1e-12)
    # Hessian-vector product against central differences of the gradient.
    v = rng.standard_normal(w.size)
    h = 1e-6
    fd = (st.gradient(w + h * v) - st.gradient(w - h * v)) / (2 * h)
    np.testing.assert_allclose(st.hessp(w, v), fd, rtol=1e-5, atol=1e-8)


def test_optimum_maps_back_to_the_original_optimum():
    X, y, sw = data(seed=2)
    lam = 0.01
    ref = LinearSoftmaxLoss(X, y, n_classes=4, sample_weight=sw, l2_reg_strength=lam)
    r0 = lbfgs(ref, np.zeros(ref.n_params), tol=1e-10, max_iter=5000)
    st = StandardizedSoftmaxLoss(X, y, n_classes=4, sample_weight=sw, l2_reg_strength=lam)
    r1 = lbfgs(st, np.zeros(st.n_params), tol=1e-10, max_iter=5000)
    coef, b = st.to_original(r1.x)
    c0, b0 = ref.unpack(r0.x)
    np.testing.assert_allclose(ref.loss(ref.pack(coef, b)), r0.fun, rtol=1e-10)
    # Badly scaled and constant columns leave the coefficients loosely determined
    # at a finite tolerance; the logits (what the model predicts) are not.
    np.testing.assert_allclose(X @ coef.T + b, X @ c0.T + b0, rtol=1e-4, atol=1e-4)
    assert r1.n_iter < r0.n_iter  # the point of the exercise
