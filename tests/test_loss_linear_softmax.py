"""LinearSoftmaxLoss against finite differences, torch autograd and its own invariants."""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from softmaxreg.loss import LinearSoftmaxLoss


def make_data(n=40, p=5, k=4, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)).astype(dtype)
    y = rng.integers(0, k, size=n)
    y[:k] = np.arange(k)
    sw = rng.uniform(0.2, 2.0, size=n)
    return X, y, sw


CONFIGS = [
    dict(),
    dict(fit_intercept=False),
    dict(reference_class=0),
    dict(reference_class=2, l2_reg_strength=0.3),
    dict(l2_reg_strength=0.1, chunk_size=7),
]


def random_w(loss, seed=1, scale=0.5):
    return np.random.default_rng(seed).normal(scale=scale, size=loss.n_params)


@pytest.mark.parametrize("config", CONFIGS)
def test_gradient_matches_central_differences(config):
    X, y, sw = make_data()
    loss = LinearSoftmaxLoss(X, y, sample_weight=sw, **config)
    w = random_w(loss)
    f, g = loss.loss_gradient(w)
    assert f == pytest.approx(loss.loss(w), rel=1e-14)
    np.testing.assert_allclose(g, loss.gradient(w), rtol=1e-14)
    h = 1e-6
    eye = np.eye(loss.n_params)
    fd = np.array([(loss.loss(w + h * e) - loss.loss(w - h * e)) / (2 * h) for e in eye])
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("config", CONFIGS)
def test_hessp_matches_least_squares_slope_of_gradient(config):
    # Plain differences of the gradient are fragile; fit a slope over several steps.
    X, y, sw = make_data(seed=3)
    loss = LinearSoftmaxLoss(X, y, sample_weight=sw, **config)
    rng = np.random.default_rng(4)
    w = random_w(loss)
    for _ in range(3):
        v = rng.normal(size=loss.n_params)
        v /= np.linalg.norm(v)
        hs = np.linspace(-1e-3, 1e-3, 11)
        G = np.array([loss.gradient(w + h * v) for h in hs])
        # The linear coefficient of a cubic fit: the h**3 term cannot leak into it.
        slope = np.polyfit(hs, G, deg=3)[2]
        np.testing.assert_allclose(loss.hessp(w, v), slope, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("config", CONFIGS)
def test_dense_hessian_agrees_with_hessp_and_is_psd(config):
    X, y, sw = make_data(n=30, p=3, k=3, seed=5)
    loss = LinearSoftmaxLoss(X, y, sample_weight=sw, **config)
    w = random_w(loss)
    H = loss.hessian(w)
    np.testing.assert_allclose(H, H.T, atol=1e-14)
    cols = np.column_stack([loss.hessp(w, e) for e in np.eye(loss.n_params)])
    np.testing.assert_allclose(H, cols, rtol=1e-12, atol=1e-14)
    assert np.linalg.eigvalsh(H).min() > -1e-12


def torch_objective(X, y, sw, k, fit_intercept, lam, reference_class):
    Xt = torch.tensor(X, dtype=torch.float64)
    yt = torch.tensor(y)
    st = torch.tensor(sw, dtype=torch.float64)
    p = X.shape[1]
    free = [c for c in range(k) if c != reference_class]
    d = p + int(fit_intercept)

    def f(w):
        rows = w.reshape(len(free), d)
        full = torch.zeros(k, d, dtype=torch.float64)
        full = full.index_copy(0, torch.tensor(free), rows)
        Z = Xt @ full[:, :p].T
        if fit_intercept:
            Z = Z + full[:, p]
        ce = torch.nn.functional.cross_entropy(Z, yt, reduction="none")
        return (st * ce).sum() / st.sum() + 0.5 * lam * (full[:, :p] ** 2).sum()

    return f


@pytest.mark.parametrize("config", CONFIGS)
def test_value_gradient_hessian_match_torch_autograd(config):
    X, y, sw = make_data(n=25, p=3, k=3, seed=7)
    loss = LinearSoftmaxLoss(X, y, sample_weight=sw, **config)
    w = random_w(loss)
    f = torch_objective(
        X, y, sw, 3, config.get("fit_intercept", True), config.get("l2_reg_strength", 0.0),
        config.get("reference_class"),
    )
    wt = torch.tensor(w, requires_grad=True)
    value = f(wt)
    (grad,) = torch.autograd.grad(value, wt)
    H = torch.autograd.functional.hessian(f, torch.tensor(w))
    assert loss.loss(w) == pytest.approx(value.item(), rel=1e-13)
    np.testing.assert_allclose(loss.gradient(w), grad.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(loss.hessian(w), H.numpy(), rtol=1e-11, atol=1e-14)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("chunk_size", [None, 6])
def test_sparse_equals_dense(fmt, chunk_size):
    X, y, sw = make_data(seed=8)
    X[np.abs(X) < 0.8] = 0.0
    dense = LinearSoftmaxLoss(X, y, sample_weight=sw, l2_reg_strength=0.1)
    sparse = LinearSoftmaxLoss(
        sp.csr_matrix(X).asformat(fmt), y, sample_weight=sw, l2_reg_strength=0.1,
        chunk_size=chunk_size,
    )
    w = random_w(dense)
    v = np.random.default_rng(9).normal(size=dense.n_params)
    fd, gd = dense.loss_gradient(w)
    fs, gs = sparse.loss_gradient(w)
    assert fs == pytest.approx(fd, rel=1e-13)
    np.testing.assert_allclose(gs, gd, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(sparse.hessp(w, v), dense.hessp(w, v), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(sparse.hessian(w), dense.hessian(w), rtol=1e-12, atol=1e-15)


def test_chunking_changes_nothing():
    X, y, sw = make_data(n=53, seed=10)
    full = LinearSoftmaxLoss(X, y, sample_weight=sw)
    w = random_w(full)
    v = np.random.default_rng(2).normal(size=full.n_params)
    for chunk in (1, 5, 52, 53, 1000):
        part = LinearSoftmaxLoss(X, y, sample_weight=sw, chunk_size=chunk)
        assert part.loss(w) == pytest.approx(full.loss(w), rel=1e-13)
        np.testing.assert_allclose(part.gradient(w), full.gradient(w), rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(part.hessp(w, v), full.hessp(w, v), rtol=1e-12, atol=1e-15)


def test_integer_sample_weights_equal_repeated_rows():
    X, y, _ = make_data(n=20, seed=11)
    counts = np.random.default_rng(12).integers(0, 4, size=20)
    counts[:4] = 1
    weighted = LinearSoftmaxLoss(X, y, sample_weight=counts, l2_reg_strength=0.05)
    repeated = LinearSoftmaxLoss(np.repeat(X, counts, axis=0), np.repeat(y, counts), n_classes=4,
                                 l2_reg_strength=0.05)
    w = random_w(weighted)
    v = np.random.default_rng(13).normal(size=weighted.n_params)
    assert weighted.loss(w) == pytest.approx(repeated.loss(w), rel=1e-13)
    np.testing.assert_allclose(weighted.gradient(w), repeated.gradient(w), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(weighted.hessp(w, v), repeated.hessp(w, v), rtol=1e-12, atol=1e-15)


def test_one_hot_matrix_target_equals_codes():
    X, y, sw = make_data(seed=14)
    codes = LinearSoftmaxLoss(X, y, sample_weight=sw)
    onehot = LinearSoftmaxLoss(X, np.eye(4)[y], sample_weight=sw)
    w = random_w(codes)
    assert onehot.loss(w) == pytest.approx(codes.loss(w), rel=1e-13)
    np.testing.assert_allclose(onehot.gradient(w), codes.gradient(w), rtol=1e-12, atol=1e-15)


def test_soft_targets_gradient():
    X, _, _ = make_data(seed=15)
    T = np.random.default_rng(16).dirichlet(np.ones(4), size=X.shape[0])
    loss = LinearSoftmaxLoss(X, T)
    w = random_w(loss)
    h = 1e-6
    fd = np.array([(loss.loss(w + h * e) - loss.loss(w - h * e)) / (2 * h)
                   for e in np.eye(loss.n_params)])
    np.testing.assert_allclose(loss.gradient(w), fd, rtol=1e-6, atol=1e-8)


def test_float32_features_are_not_copied_and_match_float64():
    X, y, sw = make_data(seed=17, dtype=np.float32)
    loss32 = LinearSoftmaxLoss(X, y, sample_weight=sw)
    loss64 = LinearSoftmaxLoss(X.astype(np.float64), y, sample_weight=sw)
    assert loss32.X is X
    w = random_w(loss32)
    f32, g32 = loss32.loss_gradient(w)
    assert isinstance(f32, float) and g32.dtype == np.float64
    assert f32 == pytest.approx(loss64.loss(w), rel=1e-6)
    np.testing.assert_allclose(g32, loss64.gradient(w), rtol=1e-5, atol=1e-6)


def test_pack_unpack_roundtrip_and_reference_row():
    X, y, _ = make_data(seed=18)
    loss = LinearSoftmaxLoss(X, y, reference_class=1)
    w = random_w(loss)
    coef, intercept = loss.unpack(w)
    assert coef.shape == (4, 5) and intercept.shape == (4,)
    assert not coef[1].any() and intercept[1] == 0
    np.testing.assert_array_equal(loss.pack(coef, intercept), w)
    # Shifting every row by one vector changes neither the probabilities nor the packed w.
    np.testing.assert_allclose(loss.pack(coef + 3.0, intercept - 1.0), w, atol=1e-14)


def test_extreme_logits_stay_finite():
    X = np.array([[1.0], [-1.0]])
    loss = LinearSoftmaxLoss(X, np.array([0, 1]))
    w = loss.pack(np.array([[-1e4], [1e4]]), np.zeros(2))
    f, g = loss.loss_gradient(w)
    assert f == pytest.approx(2e4)  # both samples wrong by a margin of 2e4
    assert np.all(np.isfinite(g))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(y=np.array([0, 1, 5])), "n_classes"),
        (dict(y=np.array([0, 1])), "entries"),
        (dict(y=np.array([0, 1, -1])), ">= 0"),
        (dict(sample_weight=np.array([1.0, -1.0, 1.0])), "non-negative"),
        (dict(sample_weight=np.zeros(3)), "sums to zero"),
        (dict(reference_class=7), "reference_class"),
        (dict(chunk_size=0), "chunk_size"),
    ],
)
def test_bad_input_messages(kwargs, match):
    args = dict(X=np.ones((3, 2)), y=np.array([0, 1, 2]), n_classes=3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        LinearSoftmaxLoss(args.pop("X"), args.pop("y"), **args)


def test_shift_invariance_and_zero_class_sum_of_gradient():
    # Symmetric coding, no penalty: adding one vector to every class row changes
    # nothing, so the gradient (and every Hessian-vector product) sums to zero over classes.
    X, y, sw = make_data(seed=19)
    loss = LinearSoftmaxLoss(X, y, sample_weight=sw)
    w = random_w(loss)
    coef, intercept = loss.unpack(w)
    shift = np.random.default_rng(20).normal(size=5)
    shifted = loss.pack(coef + shift, intercept + 0.7)
    assert loss.loss(shifted) == pytest.approx(loss.loss(w), rel=1e-13)
    G = loss.gradient(w).reshape(4, 6)
    np.testing.assert_allclose(G.sum(axis=0), 0, atol=1e-15)
    v = np.random.default_rng(21).normal(size=loss.n_params)
    np.testing.assert_allclose(loss.hessp(w, v).reshape(4, 6).sum(axis=0), 0, atol=1e-14)
    # ...and the shift direction is in the Hessian's null space.
    null = np.tile(np.append(shift, 1.0), 4)
    np.testing.assert_allclose(loss.hessp(w, null), 0, atol=1e-14)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 30), p=st.integers(1, 4), k=st.integers(2, 5), chunk=st.integers(1, 31),
    intercept=st.booleans(), reference=st.booleans(), seed=st.integers(0, 2**16),
)
def test_any_shape_and_chunking_agree_with_one_pass(n, p, k, chunk, intercept, reference, seed):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = rng.integers(0, k, size=n)
    sw = rng.uniform(0.1, 2.0, size=n)
    kw = dict(n_classes=k, sample_weight=sw, fit_intercept=intercept, l2_reg_strength=0.1,
              reference_class=k - 1 if reference else None)
    one = LinearSoftmaxLoss(X, y, **kw)
    chunked = LinearSoftmaxLoss(X, y, chunk_size=chunk, **kw)
    w = rng.normal(scale=3.0, size=one.n_params)
    v = rng.normal(size=one.n_params)
    f, g = chunked.loss_gradient(w)
    assert np.isfinite(f) and f > 0
    assert f == pytest.approx(one.loss(w), rel=1e-12)
    np.testing.assert_allclose(g, one.gradient(w), rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(chunked.hessp(w, v), one.hessp(w, v), rtol=1e-10, atol=1e-13)
    # The quadratic form of the Hessian is non-negative (the loss is convex).
    assert v @ one.hessp(w, v) >= -1e-12


# -- preconditioner -----------------------------------------------------------


def block_inverse_reference(loss, w, r):
    """M^{-1} r from the dense Hessian's class blocks, the shift subspace handled exactly."""
    F, d = loss.n_free, loss.n_dof
    H = loss.hessian(w).reshape(F, d, F, d)
    R = r.reshape(F, d)
    symmetric = loss.reference_class is None
    if symmetric:
        mean = R.mean(axis=0)
        R = R - mean
    Z = np.stack([np.linalg.solve(H[k, :, k, :], R[k]) for k in range(F)])
    if symmetric:
        Z -= Z.mean(axis=0)
        pen = np.zeros(d)
        pen[: loss.n_features] = loss.l2_reg_strength
        Z += np.divide(mean, pen, out=np.zeros(d), where=pen > 0)
    return Z.ravel()


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("chunked_proba", [False, True])
def test_preconditioner_is_the_inverse_class_blocks(config, chunked_proba, monkeypatch):
    if chunked_proba:  # probabilities streamed chunk by chunk, as for data too large to cache them
        monkeypatch.setattr("softmaxreg.loss._linear_softmax._PROBA_CACHE_MAX", 0)
    X, y, sw = make_data(n=60, p=4, k=3, seed=7)
    loss = LinearSoftmaxLoss(X, y, sample_weight=sw, **config)
    w = random_w(loss)
    M_inv = loss.preconditioner(w, mass=1.0)
    rng = np.random.default_rng(8)
    for _ in range(3):
        r = rng.normal(size=loss.n_params)
        np.testing.assert_allclose(M_inv(r), block_inverse_reference(loss, w, r), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("config", CONFIGS)
def test_class_blocks_are_the_hessians_diagonal_blocks_without_penalty(config):
    X, y, sw = make_data(n=50, p=3, k=3, seed=12)
    loss = LinearSoftmaxLoss(X, y, sample_weight=sw, **config)
    w = random_w(loss)
    F, d = loss.n_free, loss.n_dof
    H = loss.hessian(w).reshape(F, d, F, d)
    pen = np.zeros(d)
    pen[: loss.n_features] = loss.l2_reg_strength
    blocks = loss.class_blocks(w, mass=1.0)
    assert blocks.shape == (F, d, d)
    for k in range(F):
        np.testing.assert_allclose(blocks[k] + np.diag(pen), H[k, :, k, :], rtol=1e-10, atol=1e-13)


def test_preconditioner_symmetric_positive_definite_with_row_selection():
    X, y, sw = make_data(n=200, p=5, k=4, seed=9)
    loss = LinearSoftmaxLoss(X, y, sample_weight=sw, l2_reg_strength=0.01)
    w = random_w(loss, scale=2.0)
    full, part = loss.preconditioner(w, mass=1.0), loss.preconditioner(w, mass=0.5)
    rng = np.random.default_rng(10)
    U = rng.normal(size=(5, loss.n_params))
    A = np.array([[u @ part(v) for v in U] for u in U])
    np.testing.assert_allclose(A, A.T, rtol=1e-10)
    assert np.linalg.eigvalsh(A).min() > 0
    assert not np.allclose(part(U[0]), full(U[0]))  # the selection really dropped rows


def test_preconditioner_tightens_the_spectrum_of_an_ill_conditioned_hessian():
    rng = np.random.default_rng(11)
    X = rng.normal(size=(400, 6)) * np.logspace(-2, 2, 6) + 3.0  # badly scaled, not centered
    y = rng.integers(0, 3, size=400)
    loss = LinearSoftmaxLoss(X, y, l2_reg_strength=1e-6, reference_class=0)
    w = random_w(loss, scale=0.01)
    H = loss.hessian(w)
    M_inv = loss.preconditioner(w)
    PH = np.column_stack([M_inv(h) for h in H.T])
    before = np.linalg.cond(H)
    after = np.abs(np.linalg.eigvals(PH))
    assert after.max() / after.min() < before / 1000


def test_preconditioner_sparse_and_float32_agree_with_dense():
    X, y, sw = make_data(n=80, p=6, k=3, seed=12)
    X[np.abs(X) < 0.8] = 0.0
    dense = LinearSoftmaxLoss(X, y, sample_weight=sw, l2_reg_strength=0.05)
    w = random_w(dense)
    r = np.random.default_rng(13).normal(size=dense.n_params)
    expected = dense.preconditioner(w, mass=1.0)(r)
    for X_other, rtol in [(sp.csr_matrix(X), 1e-10), (sp.csc_matrix(X), 1e-10), (X.astype(np.float32), 1e-4)]:
        other = LinearSoftmaxLoss(X_other, y, sample_weight=sw, l2_reg_strength=0.05)
        np.testing.assert_allclose(other.preconditioner(w, mass=1.0)(r), expected, rtol=rtol, atol=1e-8)


def test_preconditioner_declines_wide_designs():
    X = np.zeros((3, 1300))
    loss = LinearSoftmaxLoss(X, np.array([0, 1, 9]), n_classes=10)
    assert loss.preconditioner(np.zeros(loss.n_params)) is None


def test_preconditioner_survives_singular_blocks():
    # A column of zeros and no penalty: every class block is singular.
    X, y, _ = make_data(n=50, p=4, k=3, seed=14)
    X[:, 1] = 0.0
    loss = LinearSoftmaxLoss(X, y)
    w = random_w(loss)
    r = np.random.default_rng(15).normal(size=loss.n_params)
    z = loss.preconditioner(w)(r)
    assert np.all(np.isfinite(z))
    assert r @ z > 0
