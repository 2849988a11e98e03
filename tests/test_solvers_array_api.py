"""The solvers on torch and array_api_strict (on a non-CPU device) equal their NumPy runs.

A strict array on ``Device("device1")`` refuses every conversion to NumPy, so
a run there proves the solver's vectors never go through the host; the torch
runs count every transfer to the host and check that none is larger than a
scalar.
"""

import contextlib
import warnings

import array_api_strict
import numpy as np
import pytest
import torch

from softmaxreg.loss import LinearSoftmaxLoss
from softmaxreg.solvers import lbfgs, lbfgs_namespace, newton_cg, newton_refine, proximal, sgd

DEVICE1 = array_api_strict.Device("device1")
NAMESPACES = {
    "torch": lambda a, dtype=None: torch.asarray(np.asarray(a, dtype=dtype)),
    "strict": lambda a, dtype=None: array_api_strict.asarray(np.asarray(a, dtype=dtype), device=DEVICE1),
}


def host(a):
    if isinstance(a, torch.Tensor):
        return a.numpy()
    if isinstance(a, np.ndarray):
        return a
    return np.asarray(array_api_strict.asarray(a, device=array_api_strict.Device("CPU_DEVICE")))


def problem(to, n=80, p=4, k=3, l2=0.05, dtype=np.float64, **config):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, p)).astype(dtype)
    y = rng.integers(0, k, n)
    sw = rng.uniform(0.5, 2.0, n)
    ref = LinearSoftmaxLoss(X, y, n_classes=k, sample_weight=sw, l2_reg_strength=l2, **config)
    loss = LinearSoftmaxLoss(to(X), to(y), n_classes=k, sample_weight=to(sw, dtype), l2_reg_strength=l2, **config)
    return ref, loss, to(np.zeros(ref.n_params), dtype)


@contextlib.contextmanager
def count_host_transfers():
    """Record the number of elements of every torch tensor read by the host (NumPy, Python numbers, lists)."""
    sizes = []
    names = ["numpy", "__array__", "tolist", "item", "cpu", "__float__", "__int__", "__bool__", "__index__",
             "__dlpack__"]
    saved = {name: getattr(torch.Tensor, name) for name in names}

    def wrap(name, method):
        def counted(self, *args, **kwargs):
            sizes.append(self.numel())
            return method(self, *args, **kwargs)
        return counted

    for name, method in saved.items():
        setattr(torch.Tensor, name, wrap(name, method))
    try:
        yield sizes
    finally:
        for name, method in saved.items():
            setattr(torch.Tensor, name, method)


@pytest.fixture(params=sorted(NAMESPACES))
def to(request):
    return NAMESPACES[request.param]


@pytest.mark.parametrize("solver", [lbfgs, newton_cg])
@pytest.mark.parametrize("config", [dict(), dict(reference_class=1), dict(fit_intercept=False)])
def test_smooth_solvers_reach_the_numpy_optimum(to, solver, config):
    ref, loss, x0 = problem(to, **config)
    r0 = solver(ref, np.zeros(ref.n_params), tol=1e-10, max_iter=500)
    r1 = solver(loss, x0, tol=1e-10, max_iter=500)
    assert type(r1.x) is type(x0) and r1.x.device == x0.device
    assert r1.converged
    assert r1.fun == pytest.approx(r0.fun, rel=1e-10)
    np.testing.assert_allclose(host(r1.x), r0.x, atol=1e-7)


def test_newton_cg_takes_the_same_steps_as_numpy(to):
    ref, loss, x0 = problem(to)
    r0 = newton_cg(ref, np.zeros(ref.n_params), tol=1e-8)
    r1 = newton_cg(loss, x0, tol=1e-8)
    assert r1.n_iter == r0.n_iter and r1.n_hessp == r0.n_hessp
    np.testing.assert_allclose(r1.history, r0.history, rtol=1e-12)


def test_float32_fits_reach_the_numpy_optimum_to_float32_precision():
    ref, loss, x0 = problem(NAMESPACES["torch"], dtype=np.float32)
    for solver in (lbfgs, newton_cg):
        r0 = solver(ref, np.zeros(ref.n_params), tol=1e-4)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            r1 = solver(loss, x0, tol=1e-4)
        assert r1.x.dtype == torch.float32
        assert r1.fun == pytest.approx(r0.fun, rel=1e-5)


def test_proximal_reaches_the_numpy_optimum(to):
    ref, loss, x0 = problem(to)
    l1 = np.full(ref.n_params, 0.01)
    l1[ref.n_dof - 1 :: ref.n_dof] = 0.0
    r0 = proximal(ref, np.zeros(ref.n_params), l1=l1, tol=1e-9, max_iter=20000)
    r1 = proximal(loss, x0, l1=to(l1), tol=1e-9, max_iter=20000)
    assert r1.converged and r1.fun == pytest.approx(r0.fun, rel=1e-10)
    np.testing.assert_array_equal(host(r1.x) == 0, r0.x == 0)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_with_the_same_minibatches_equals_numpy(to, momentum):
    ref, loss, x0 = problem(to)
    perms = [np.random.default_rng(e).permutation(ref.n_samples) for e in range(4)]
    numpy_order, device_order = iter(perms), iter(perms)
    kw = dict(n_samples=ref.n_samples, batch_size=16, max_epochs=4, momentum=momentum, learning_rate=0.2)
    r0 = sgd(ref.minibatch_gradient, np.zeros(ref.n_params), permutation=lambda n: next(numpy_order), **kw)
    r1 = sgd(loss.minibatch_gradient, x0, permutation=lambda n: to(next(device_order)), **kw)
    np.testing.assert_allclose(host(r1.x), r0.x, rtol=1e-12, atol=1e-15)


def test_newton_refine_runs_on_the_device(to):
    ref, loss, x0 = problem(to, l2=0.0, reference_class=0)
    start = lbfgs(loss, x0, tol=1e-5).x
    refined = newton_refine(loss, start)
    exact = newton_refine(ref, host(start))
    assert refined.converged and type(refined.x) is type(x0)
    np.testing.assert_allclose(host(refined.x), exact.x, rtol=1e-9, atol=1e-11)


def test_lbfgs_namespace_on_numpy_matches_scipy():
    ref, _, _ = problem(NAMESPACES["torch"])
    r0 = lbfgs(ref, np.zeros(ref.n_params), tol=1e-10)
    r1 = lbfgs_namespace(ref.loss_gradient, np.zeros(ref.n_params), tol=1e-10)
    assert r1.converged and r1.fun == pytest.approx(r0.fun, rel=1e-12)


@pytest.mark.parametrize("run", [
    lambda loss, x0: lbfgs(loss, x0, tol=1e-8),
    lambda loss, x0: newton_cg(loss, x0, tol=1e-8),
    lambda loss, x0: proximal(loss, x0, l1=0.01, tol=1e-6),
    lambda loss, x0: sgd(loss.minibatch_gradient, x0, n_samples=loss.n_samples, batch_size=16, max_epochs=3,
                         momentum=0.5, objective=loss.loss, tol=1e-9,
                         permutation=lambda n: torch.randperm(n, generator=torch.Generator().manual_seed(0))),
], ids=["lbfgs", "newton-cg", "proximal", "sgd"])
def test_only_scalars_cross_to_the_host_inside_the_solver(run):
    _, loss, x0 = problem(NAMESPACES["torch"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with count_host_transfers() as sizes:
            result = run(loss, x0)
    assert sizes, "the counter saw nothing: it is not wired"
    assert max(sizes) == 1
    assert isinstance(result.x, torch.Tensor)
