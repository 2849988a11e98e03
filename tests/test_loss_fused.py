"""The fused passes of softmaxreg._native.linear agree with LinearSoftmaxLoss's reference pass."""

import numpy as np
import pytest

pytest.importorskip("numba")
from softmaxreg.loss import LinearSoftmaxLoss  # noqa: E402
import softmaxreg._native as N  # noqa: E402
from softmaxreg._native import linear as FU  # noqa: E402


def problem(n, p, k, dtype, seed=0, probs=False, weights=False):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)).astype(dtype)
    y = rng.integers(0, k, n)
    if probs:
        y = rng.dirichlet(np.ones(k), n)
        m = min(3, n)
        y[:m] = np.eye(k)[:m]  # exact zeros: 0 log 0 = 0
    sw = rng.random(n) if weights else None
    coef = rng.standard_normal((k, p))
    intercept = rng.standard_normal(k)
    return X, y, sw, coef, intercept


def reference(X, y, sw, coef, intercept, v=None):
    """Data term (no penalty) of the loss, gradient and Hessian-vector product, by LinearSoftmaxLoss."""
    k = coef.shape[0]
    L = LinearSoftmaxLoss(X, y, n_classes=k, sample_weight=sw)
    w = L.pack(coef, intercept)
    f, g = L.loss_gradient(w)
    gc, gi = L.unpack(g)
    out = {"f": f, "G": gc, "gb": gi}
    if v is not None:
        hc, hi = L.unpack(L.hessp(w, L.pack(*v)))
        out["H"], out["hb"] = hc, hi
    return out


def weights(sw, n):
    s = np.ones(n) if sw is None else sw
    return s / s.sum()


# n chosen to exercise the 4-row tails and several gradient blocks per thread.
@pytest.mark.parametrize("n", [1, 3, 517, 2050])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("probs", [False, True])
@pytest.mark.parametrize("weighted", [False, True])
def test_loss_gradient_hessp_match_reference(n, dtype, probs, weighted):
    k, p = 7, 13
    X, y, sw, coef, intercept = problem(n, p, k, dtype, probs=probs, weights=weighted)
    rng = np.random.default_rng(1)
    v = (rng.standard_normal((k, p)), rng.standard_normal(k))
    ref = reference(X, y, sw, coef, intercept, v)
    s = weights(sw, n)
    f, G, gb = FU.linear_softmax_pass(X, y, s, coef, intercept, grad=True)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(f, ref["f"], rtol=rtol)
    np.testing.assert_allclose(G, ref["G"], rtol=rtol, atol=rtol * np.abs(ref["G"]).max())
    np.testing.assert_allclose(gb, ref["gb"], rtol=rtol, atol=rtol * np.abs(ref["gb"]).max())
    _, H, hb = FU.linear_softmax_pass(X, y, s, coef, intercept, loss=False, v_coef=v[0], v_intercept=v[1])
    np.testing.assert_allclose(H, ref["H"], rtol=rtol, atol=rtol * np.abs(ref["H"]).max())
    np.testing.assert_allclose(hb, ref["hb"], rtol=rtol, atol=rtol * np.abs(ref["hb"]).max())


@pytest.mark.parametrize("n", [1, 4, 37, 1030])
@pytest.mark.parametrize("p", [1, 15, 16, 17, 33, 64, 81, 300])
@pytest.mark.parametrize("k", [2, 5, 6, 9, 10, 13])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pass_every_tile_shape(n, p, k, dtype):
    """The logits tiles cover whole vectors of columns and a tail (p = 15, 16, 17, 33 for 8 or 16
    float32 lanes, 4 or 8 float64 ones); the gradient's strips of 2 or 4 vectors, of one vector and
    single columns (p = 33, 64, 81, 300); whole tiles of 2 or 5 classes and every count of classes
    left over by them and by the 5-class strips (k = 2, 5, 6, 9, 10, 13); a last group of fewer than
    4 rows; and the next block asked for near the end of X and of a thread's rows."""
    X, y, _, coef, intercept = problem(n, p, k, dtype, seed=n + p + k)
    coef /= np.sqrt(p)  # logits of order 1: no saturated rows, whose Hessian float32 cannot resolve
    ref = reference(X, y, None, coef, intercept, (coef[::-1].copy(), intercept[::-1].copy()))
    s = weights(None, n)
    rtol = 2e-5 if dtype == np.float32 else 1e-12
    f, G, gb = FU.linear_softmax_pass(X, y, s, coef, intercept, grad=True)
    np.testing.assert_allclose(f, ref["f"], rtol=rtol)
    np.testing.assert_allclose(G, ref["G"], rtol=rtol, atol=rtol * np.abs(ref["G"]).max())
    np.testing.assert_allclose(gb, ref["gb"], rtol=rtol, atol=rtol * np.abs(ref["gb"]).max())
    _, H, hb = FU.linear_softmax_pass(X, y, s, coef, intercept, loss=False, v_coef=coef[::-1], v_intercept=intercept[::-1])
    np.testing.assert_allclose(H, ref["H"], rtol=rtol, atol=rtol * np.abs(ref["H"]).max())
    np.testing.assert_allclose(hb, ref["hb"], rtol=rtol, atol=rtol * np.abs(ref["hb"]).max())


def test_labels_out_of_range_are_refused_before_the_kernels_index_by_them():
    X, y, _, coef, intercept = problem(40, 5, 3, np.float64, seed=1)
    s = weights(None, 40)
    for bad in (-1, 3):
        y2 = y.copy()
        y2[7] = bad
        with pytest.raises(ValueError, match="class indices in \\[0, 3\\)"):
            FU.linear_softmax_pass(X, y2, s, coef, intercept, grad=True)
        with pytest.raises(ValueError, match="class indices"):
            FU.linear_softmax_losses(X, y2, s, coef[None], intercept[None])
    with pytest.raises(ValueError, match="3 columns"):
        FU.linear_softmax_pass(X, np.ones((40, 4)) / 4, s, coef, intercept)


def test_loss_only_and_gradient_by_finite_differences():
    X, y, _, coef, intercept = problem(300, 5, 4, np.float64, seed=3)
    s = weights(None, 300)
    f = lambda c: FU.linear_softmax_pass(X, y, s, c, intercept)[0]  # noqa: E731
    _, G, _ = FU.linear_softmax_pass(X, y, s, coef, intercept, grad=True)
    h = 1e-6
    E = np.zeros_like(coef)
    E[2, 3] = h
    np.testing.assert_allclose((f(coef + E) - f(coef - E)) / (2 * h), G[2, 3], rtol=1e-7)


def test_non_finite_logits_return_none():
    X, y, _, coef, intercept = problem(40, 3, 3, np.float64)
    X[5, 0] = np.inf
    assert FU.linear_softmax_pass(X, y, weights(None, 40), coef, intercept, grad=True) is None
    assert FU.predict_proba(X, coef, intercept) is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_predict_proba_matches_softmax_of_logits(dtype):
    import scipy.special as sps

    X, _, _, coef, intercept = problem(1001, 17, 5, dtype, seed=4)
    P = FU.predict_proba(X, coef, intercept)
    Z = X.astype(np.float64) @ coef.T + intercept
    rtol = 1e-4 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(P, sps.softmax(Z, axis=1), rtol=rtol, atol=1e-300)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-14)


@pytest.mark.parametrize("shape", [(10, 784), (3, 5), (0, 4), (7,), (1, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tile_copy_is_an_aligned_c_ordered_copy(shape, dtype):
    a = np.asfortranarray(np.random.default_rng(3).standard_normal(shape))
    out = FU._tile_copy(a, dtype)
    assert out.dtype == dtype and out.shape == a.shape and out.flags.c_contiguous and out.flags.writeable
    assert out.size == 0 or out.ctypes.data % 64 == 0
    np.testing.assert_array_equal(out, a.astype(dtype))
    assert not np.shares_memory(out, a)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_pass_and_prediction_do_not_depend_on_where_coef_lies(dtype):
    """W copied onto a 64-byte boundary: the same bits whatever coef's own offset and order."""
    X, y, _, coef, intercept = problem(1030, 33, 10, dtype, seed=4)
    s = weights(None, 1030)
    buf = np.empty(coef.size + 3)
    shifted = buf[3:].reshape(coef.shape)  # 24 bytes past malloc's alignment
    shifted[...] = coef
    for c in (shifted, np.asfortranarray(coef)):
        for a, b in zip(FU.linear_softmax_pass(X, y, s, c, intercept, grad=True),
                        FU.linear_softmax_pass(X, y, s, coef, intercept, grad=True)):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(FU.predict_proba(X, c, intercept), FU.predict_proba(X, coef, intercept))


def test_applies_only_to_dense_c_ordered_floats():
    import scipy.sparse as sp

    X = np.zeros((4, 3))
    assert FU.applies(X) and FU.applies(X.astype(np.float32))
    assert not FU.applies(np.asfortranarray(np.zeros((4, 3))))
    assert not FU.applies(sp.csr_matrix(X))
    assert not FU.applies(X.astype(np.int64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_hessp_with_cached_probabilities_is_the_same(dtype):
    X, y, _, coef, intercept = problem(517, 9, 6, dtype, seed=11)
    s = weights(None, 517)
    P = np.empty((517, 6))
    FU.linear_softmax_pass(X, y, s, coef, intercept, grad=True, proba=P)
    import scipy.special as sps

    np.testing.assert_allclose(P, sps.softmax(X.astype(np.float64) @ coef.T + intercept, axis=1), rtol=1e-4)
    v = np.random.default_rng(2).standard_normal((6, 9))
    plain = FU.linear_softmax_pass(X, y, s, coef, intercept, loss=False, v_coef=v, v_intercept=None)
    cached = FU.linear_softmax_pass(X, y, s, coef, intercept, loss=False, v_coef=v, v_intercept=None, proba=P)
    np.testing.assert_allclose(cached[1], plain[1], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(cached[2], plain[2], rtol=1e-12, atol=1e-15)
    # With the loss asked for too, the loss is the one at coef (the probabilities alone cannot give it).
    both = FU.linear_softmax_pass(X, y, s, coef, intercept, loss=True, v_coef=v, v_intercept=None, proba=P)
    assert both[0] == pytest.approx(FU.linear_softmax_pass(X, y, s, coef, intercept)[0], rel=1e-12)
    np.testing.assert_allclose(both[1], plain[1], rtol=1e-12, atol=1e-15)
    with pytest.raises(ValueError, match="proba must be"):
        FU.linear_softmax_pass(X, y, s, coef, intercept, proba=np.empty((3, 6)))


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("reference_class", [None, 2])
@pytest.mark.parametrize("probs", [False, True])
def test_linear_softmax_loss_routes_to_the_fused_pass(monkeypatch, fit_intercept, reference_class, probs):
    """LinearSoftmaxLoss gives the same numbers with the fused pass on and off."""
    X, y, sw, coef, intercept = problem(301, 8, 5, np.float32, seed=12, probs=probs, weights=True)
    kw = dict(n_classes=5, sample_weight=sw, fit_intercept=fit_intercept, l2_reg_strength=0.03,
              reference_class=reference_class)
    rng = np.random.default_rng(13)

    def evaluate(min_elements):
        monkeypatch.setattr(FU, "MIN_ELEMENTS", min_elements)
        L = LinearSoftmaxLoss(X, y, **kw)
        w = rng.standard_normal(L.n_params)
        v = rng.standard_normal(L.n_params)
        calls = []
        real = N.linear_softmax_pass
        monkeypatch.setattr(N, "linear_softmax_pass", lambda *a, **k: calls.append(1) or real(*a, **k))
        out = (L.loss(w), *L.loss_gradient(w), L.hessp(w, v))
        monkeypatch.setattr(N, "linear_softmax_pass", real)
        return out, len(calls)

    rng = np.random.default_rng(13)
    fused, n_fused = evaluate(0)
    rng = np.random.default_rng(13)
    ref, n_ref = evaluate(1 << 62)
    assert n_fused == 4 and n_ref == 0  # loss, gradient, the probabilities at w, the product
    for a, b in zip(fused, ref):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * np.max(np.abs(b)))


def test_linear_softmax_loss_keeps_probabilities_only_for_hessian_products(monkeypatch):
    """A first-order user's gradient passes write no probabilities; once Hessian products are asked
    for, the first one at a point stores them, the gradient passes store them too, and the products
    at that point read them (one pass each). The numbers are those of the reference path."""
    X, y, sw, _, _ = problem(301, 8, 5, np.float32, seed=16, weights=True)
    kw = dict(n_classes=5, sample_weight=sw, l2_reg_strength=0.03)
    rng = np.random.default_rng(17)
    w1, w2, v = (rng.standard_normal(LinearSoftmaxLoss(X, y, **kw).n_params) for _ in range(3))
    monkeypatch.setattr(FU, "MIN_ELEMENTS", 1 << 62)
    R = LinearSoftmaxLoss(X, y, **kw)
    ref = [R.loss_gradient(w1)[1], R.hessp(w1, v), R.hessp(w1, 2 * v), R.loss_gradient(w2)[1], R.hessp(w2, v)]

    monkeypatch.setattr(FU, "MIN_ELEMENTS", 0)
    L = LinearSoftmaxLoss(X, y, **kw)
    calls = []
    real = FU.linear_softmax_pass

    def spy(*a, **k):
        calls.append(("hessp" if k.get("v_coef") is not None else "grad" if k.get("grad") else "proba",
                      k.get("proba") is not None))
        return real(*a, **k)

    monkeypatch.setattr(N, "linear_softmax_pass", spy)
    got = [L.loss_gradient(w1)[1]]
    assert calls == [("grad", False)]  # no probabilities written for a first-order solver
    calls.clear()
    got += [L.hessp(w1, v), L.hessp(w1, 2 * v)]
    assert calls == [("proba", True), ("hessp", True), ("hessp", True)]
    calls.clear()
    got += [L.loss_gradient(w2)[1], L.hessp(w2, v)]
    assert calls == [("grad", True), ("hessp", True)]
    for a, b in zip(got, ref):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6 * np.max(np.abs(b)))


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("reference_class", [None, 2])
@pytest.mark.parametrize("group_bytes", [1, 1 << 19])
def test_linear_softmax_loss_losses_equal_loss_point_by_point(monkeypatch, fit_intercept, reference_class,
                                                              group_bytes):
    """LinearSoftmaxLoss.losses, fused (one point or several per pass) and not, is [loss(w) for w in ws]."""
    from softmaxreg.loss import _linear_softmax

    X, y, sw, _, _ = problem(301, 8, 5, np.float32, seed=14, weights=True)
    L = LinearSoftmaxLoss(X, y, n_classes=5, sample_weight=sw, fit_intercept=fit_intercept, l2_reg_strength=0.03,
                          reference_class=reference_class)
    ws = list(np.random.default_rng(15).standard_normal((5, L.n_params)))
    monkeypatch.setattr(_linear_softmax, "_LOSSES_GROUP_BYTES", group_bytes)
    monkeypatch.setattr(FU, "MIN_ELEMENTS", 1 << 62)
    ref = [L.loss(w) for w in ws]
    np.testing.assert_array_equal(L.losses(ws), ref)
    monkeypatch.setattr(FU, "MIN_ELEMENTS", 0)
    calls = []
    real = N.linear_softmax_losses
    monkeypatch.setattr(N, "linear_softmax_losses", lambda *a, **k: calls.append(a[3].shape[0]) or real(*a, **k))
    np.testing.assert_allclose(L.losses(ws), ref, rtol=1e-5)
    assert calls == ([1] * 5 if group_bytes == 1 else [5])
    assert L.losses([]).shape == (0,)
    # A point whose logits overflow sends its group to the reference path, which decides.
    big = ws[:2] + [np.full(L.n_params, 1e38)]
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(np.isnan(L.losses(big)), np.isnan([L.loss(w) for w in big]))


@pytest.mark.parametrize("n", [1, 3, 4, 37, 1030])
@pytest.mark.parametrize("p", [1, 15, 16, 300])
@pytest.mark.parametrize("k", [2, 5, 10, 13])
def test_predict_proba_every_shape_near_the_end_of_x(n, p, k):
    """The rows asked for ahead (in pieces between the tiles) run past the last row and past a
    thread's range on these shapes; the probabilities are those of scipy's softmax all the same."""
    import scipy.special as sps

    X, _, _, coef, intercept = problem(n, p, k, np.float32, seed=n + p + k)
    P = FU.predict_proba(X, coef, intercept)
    np.testing.assert_allclose(P, sps.softmax(X.astype(np.float64) @ coef.T + intercept, axis=1), rtol=2e-4,
                               atol=1e-30)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [3, 1030])
def test_predict_logits_and_labels_match_the_reference(dtype, n):
    """The LOGITS and LABELS modes of the prediction pass: X @ coef.T + intercept (products in X's dtype)
    and np.argmax of those logits, first index on ties; None on a non-finite logit."""
    X, _, _, coef, intercept = problem(n, 37, 7, dtype, seed=9)
    Z = FU.predict(X, coef, intercept, FU.LOGITS)
    ref = (X @ coef.T.astype(dtype)).astype(np.float64) + intercept
    np.testing.assert_allclose(Z, ref, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)
    labels = FU.predict(X, coef, intercept, FU.LABELS)
    assert labels.dtype == np.int64 and labels.shape == (n,)
    np.testing.assert_array_equal(labels, np.argmax(Z, axis=1))
    tied = np.zeros_like(coef)  # every logit equal: the first class, as np.argmax
    assert (FU.predict(X, tied, np.zeros(7), FU.LABELS) == 0).all()
    X[n - 1, 3] = np.nan
    assert FU.predict(X, coef, intercept, FU.LOGITS) is None and FU.predict(X, coef, intercept, FU.LABELS) is None


@pytest.mark.parametrize("n", [33, 1027])
def test_predict_proba_extreme_logits(n):
    """Logits of +-1e4 (probabilities that underflow to 0 and denormals) match scipy's softmax."""
    import scipy.special as sps

    X, _, _, coef, intercept = problem(n, 6, 10, np.float64, seed=6)
    coef *= 3e3
    Z = X @ coef.T + intercept
    P = FU.predict_proba(X, coef, intercept)
    # Each logit carries a rounding error of about |z| eps whatever the order of its sum, and
    # exp passes it on as a relative error of the probability.
    rtol = 8 * np.abs(Z).max() * np.finfo(np.float64).eps
    np.testing.assert_allclose(P, sps.softmax(Z, axis=1), rtol=rtol, atol=1e-300)
    assert np.abs(Z).max() > 1e4 and (P == 0).any()


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("row", [0, 37, 70])
def test_a_non_finite_logit_anywhere_in_a_block_returns_none(value, row):
    """One row whose logits are all -inf, or +inf, or NaN, in any block position, is caught."""
    X, y, _, coef, intercept = problem(71, 3, 4, np.float64, seed=8)
    coef[:, 0] = -np.abs(coef[:, 0]) - 0.1  # x = +inf gives -inf for every class
    X[row, 0] = value
    s = weights(None, 71)
    assert FU.linear_softmax_pass(X, y, s, coef, intercept, grad=True) is None
    assert FU.linear_softmax_pass(X, y, s, coef, intercept) is None
    assert FU.predict_proba(X, coef, intercept) is None


@pytest.mark.parametrize("n", [1, 5, 517, 2050])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("probs", [False, True])
def test_losses_at_several_points_equal_one_pass_each(n, dtype, probs):
    """linear_softmax_losses gives every point's loss as its own pass does (the same blocks and sums; a
    class may fall in another register tile, which rounds float32 logits differently)."""
    k, p, E = 7, 13, 4
    X, y, sw, _, _ = problem(n, p, k, dtype, probs=probs, weights=True)
    rng = np.random.default_rng(5)
    coefs, intercepts = rng.standard_normal((E, k, p)), rng.standard_normal((E, k))
    s = weights(sw, n)
    f = FU.linear_softmax_losses(X, y, s, coefs, intercepts)
    assert f.shape == (E,)
    one = [FU.linear_softmax_pass(X, y, s, c, b)[0] for c, b in zip(coefs, intercepts)]
    np.testing.assert_allclose(f, one, rtol=1e-6 if dtype == np.float32 else 1e-13)
    np.testing.assert_allclose(f, [reference(X, y, sw, c, b)["f"] for c, b in zip(coefs, intercepts)],
                               rtol=1e-5 if dtype == np.float32 else 1e-12)


def test_losses_with_a_non_finite_logit_return_none():
    X, y, _, coef, intercept = problem(70, 3, 3, np.float64)
    coefs = np.stack([coef, coef])
    coefs[1, 0, 0] = np.inf
    assert FU.linear_softmax_losses(X, y, weights(None, 70), coefs, np.stack([intercept] * 2)) is None
