"""LinearSoftmaxLoss on torch and array_api_strict arrays against the NumPy loss (its fused kernels)."""

import array_api_strict
import numpy as np
import pytest
import torch

from softmaxreg.loss import ArrayAPILinearSoftmaxLoss, LinearSoftmaxLoss

NAMESPACES = {
    "torch": lambda a: torch.asarray(np.asarray(a)),
    "strict": lambda a: array_api_strict.asarray(np.asarray(a)),
}

CONFIGS = [
    dict(),
    dict(fit_intercept=False),
    dict(reference_class=0),
    dict(reference_class=2, l2_reg_strength=0.3),
    dict(l2_reg_strength=0.1, chunk_size=7),
]


def make_data(n=60, p=5, k=4, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)).astype(dtype)
    y = rng.integers(0, k, size=n)
    y[:k] = np.arange(k)
    return X, y, rng.uniform(0.2, 2.0, size=n)


def host(a):
    return np.asarray(a.cpu() if isinstance(a, torch.Tensor) else a)


@pytest.fixture(params=sorted(NAMESPACES))
def to(request):
    return NAMESPACES[request.param]


def test_linear_softmax_loss_dispatches_on_foreign_arrays(to):
    X, y, _ = make_data()
    assert isinstance(LinearSoftmaxLoss(to(X), to(y)), ArrayAPILinearSoftmaxLoss)
    assert type(LinearSoftmaxLoss(X, y)) is LinearSoftmaxLoss


@pytest.mark.parametrize("config", CONFIGS)
def test_every_quantity_equals_the_numpy_loss(to, config):
    X, y, sw = make_data()
    ref = LinearSoftmaxLoss(X, y, sample_weight=sw, **config)
    loss = LinearSoftmaxLoss(to(X), to(y), sample_weight=to(sw), **config)
    rng = np.random.default_rng(1)
    w, v = rng.normal(scale=0.5, size=ref.n_params), rng.normal(size=ref.n_params)
    f, g = loss.loss_gradient(to(w))
    assert isinstance(f, float)
    assert f == pytest.approx(ref.loss(w), rel=1e-13)
    np.testing.assert_allclose(host(g), ref.gradient(w), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(host(loss.hessp(to(w), to(v))), ref.hessp(w, v), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(host(loss.hessian(to(w))), ref.hessian(w), rtol=1e-12, atol=1e-15)
    for mass in (1.0, 0.99):
        np.testing.assert_allclose(
            host(loss.preconditioner(to(w), mass=mass)(to(v))), ref.preconditioner(w, mass=mass)(v),
            rtol=1e-9, atol=1e-12,
        )
    coef, intercept = loss.unpack(g)
    np.testing.assert_allclose(host(loss.pack(coef, intercept)), host(g), atol=1e-15)
    rows = np.array([3, 1, 4, 1, 5, 9, 2, 6])
    np.testing.assert_allclose(
        host(loss.minibatch_gradient(to(w), to(rows))), ref.minibatch_gradient(w, rows), rtol=1e-12, atol=1e-15
    )


def test_probability_targets_equal_the_numpy_loss(to):
    X, y, _ = make_data(seed=2)
    Y = np.random.default_rng(3).dirichlet(np.ones(4), size=X.shape[0])
    ref = LinearSoftmaxLoss(X, Y)
    loss = LinearSoftmaxLoss(to(X), to(Y))
    w = np.random.default_rng(4).normal(size=ref.n_params)
    f, g = loss.loss_gradient(to(w))
    assert f == pytest.approx(ref.loss(w), rel=1e-13)
    np.testing.assert_allclose(host(g), ref.gradient(w), rtol=1e-12, atol=1e-15)


def test_float32_stays_float32_and_agrees_to_its_precision():
    X, y, sw = make_data(dtype=np.float32)
    ref = LinearSoftmaxLoss(X, y, sample_weight=sw, l2_reg_strength=0.1)
    loss = LinearSoftmaxLoss(torch.asarray(X), torch.asarray(y), sample_weight=torch.asarray(sw, dtype=torch.float32),
                             l2_reg_strength=0.1)
    w = np.random.default_rng(5).normal(scale=0.3, size=ref.n_params)
    f, g = loss.loss_gradient(torch.asarray(w, dtype=torch.float32))
    assert g.dtype == torch.float32
    assert f == pytest.approx(ref.loss(w), rel=1e-5)
    np.testing.assert_allclose(g.numpy(), ref.gradient(w), rtol=1e-4, atol=1e-6)


def test_gradient_matches_torch_autograd():
    X, y, sw = make_data(seed=6)
    loss = LinearSoftmaxLoss(torch.asarray(X), torch.asarray(y), sample_weight=torch.asarray(sw),
                             l2_reg_strength=0.2, reference_class=1)
    w = torch.asarray(np.random.default_rng(7).normal(size=loss.n_params), requires_grad=True)
    coef, intercept = loss.unpack(w)
    logits = torch.asarray(X) @ coef.T + intercept
    ce = torch.nn.functional.cross_entropy(logits, torch.asarray(y), reduction="none")
    sw_t = torch.asarray(sw)
    f = (sw_t * ce).sum() / sw_t.sum() + 0.1 * (coef * coef).sum()
    f.backward()
    with torch.no_grad():
        assert loss.loss(w) == pytest.approx(float(f), rel=1e-13)
        np.testing.assert_allclose(loss.gradient(w).numpy(), w.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_bad_input_is_refused_before_work(to):
    X, y, _ = make_data()
    with pytest.raises(ValueError, match="float32 or float64"):
        LinearSoftmaxLoss(to(X.astype(np.int64)), to(y))
    with pytest.raises(ValueError, match="class codes >= 0"):
        LinearSoftmaxLoss(to(X), to(y - 1))
    with pytest.raises(ValueError, match="sample_weight"):
        LinearSoftmaxLoss(to(X), to(y), sample_weight=to(-np.ones(X.shape[0])))
    loss = LinearSoftmaxLoss(to(X), to(y))
    with pytest.raises(ValueError, match="w must have shape"):
        loss.loss(to(np.zeros(3)))
