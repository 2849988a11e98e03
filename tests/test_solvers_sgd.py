"""The sgd solver: PyTorch's SGD step for step, unbiased minibatch gradients, stopping rule."""

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

from softmaxreg.loss import LinearSoftmaxLoss
from softmaxreg.solvers import AdaptiveLR, PlateauStop, sgd


def make_problem(n=50, p=4, k=3, seed=0, **kwargs):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = rng.integers(0, k, size=n)
    return LinearSoftmaxLoss(X, y, n_classes=k, **kwargs), X, y


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_matches_torch_sgd_step_for_step(momentum):
    lam, lr, batch, epochs = 0.01, 0.3, 8, 3
    loss, X, y = make_problem(l2_reg_strength=lam)
    x0 = np.random.default_rng(1).normal(scale=0.1, size=loss.n_params)
    res = sgd(loss.minibatch_gradient, x0, n_samples=50, batch_size=batch, max_epochs=epochs,
              learning_rate=lr, momentum=momentum, rng=np.random.default_rng(7))

    W0, b0 = loss.unpack(x0)
    W = torch.tensor(W0, requires_grad=True)
    b = torch.tensor(b0, requires_grad=True)
    opt = torch.optim.SGD([W, b], lr=lr, momentum=momentum)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    rng = np.random.default_rng(7)
    for _ in range(epochs):
        perm = rng.permutation(50)
        for start in range(0, 50, batch):
            idx = torch.tensor(perm[start : start + batch])
            opt.zero_grad()
            ce = torch.nn.functional.cross_entropy(Xt[idx] @ W.T + b, yt[idx])
            (ce + 0.5 * lam * (W**2).sum()).backward()
            opt.step()
    coef, intercept = loss.unpack(res.x)
    np.testing.assert_allclose(coef, W.detach().numpy(), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(intercept, b.detach().numpy(), rtol=1e-12, atol=1e-13)


def test_minibatch_gradient_is_unbiased_with_weights():
    loss, _, _ = make_problem(sample_weight=np.random.default_rng(2).uniform(0, 3, 50),
                              l2_reg_strength=0.1)
    w = np.random.default_rng(3).normal(size=loss.n_params)
    np.testing.assert_allclose(loss.minibatch_gradient(w, np.arange(50)), loss.gradient(w),
                               rtol=1e-12, atol=1e-14)
    # Averaging over the batches of a partition of equal sizes gives the full gradient.
    batches = np.random.default_rng(4).permutation(50).reshape(5, 10)
    mean = np.mean([loss.minibatch_gradient(w, b) for b in batches], axis=0)
    np.testing.assert_allclose(mean, loss.gradient(w), rtol=1e-12, atol=1e-14)


def test_float32_start_stays_float32():
    loss, _, _ = make_problem()
    res = sgd(loss.minibatch_gradient, np.zeros(loss.n_params, np.float32), n_samples=50,
              max_epochs=2, rng=np.random.default_rng(0))
    assert res.x.dtype == np.float32


def test_tol_stops_and_max_epochs_warns():
    loss, _, _ = make_problem(l2_reg_strength=0.1)
    x0 = np.zeros(loss.n_params)
    res = sgd(loss.minibatch_gradient, x0, n_samples=50, batch_size=50, max_epochs=500,
              learning_rate=0.5, rng=np.random.default_rng(0), objective=loss.loss, tol=1e-6)
    assert res.converged and res.n_iter < 500 and len(res.history) == res.n_iter
    with pytest.warns(ConvergenceWarning):
        res = sgd(loss.minibatch_gradient, x0, n_samples=50, max_epochs=2, learning_rate=0.01,
                  rng=np.random.default_rng(0), objective=loss.loss, tol=1e-12)
    assert not res.converged
    with pytest.raises(ValueError, match="objective"):
        sgd(loss.minibatch_gradient, x0, n_samples=50, tol=1e-3)


def test_plateau_stop_is_scikit_learns_rule():
    """An epoch above best - tol adds to the count; any other resets it."""
    rule = PlateauStop(0.1, 3)
    stops = [rule.update(f) for f in (5.0, 4.0, 3.95, 3.0, 2.99, 2.98, 2.97)]
    assert stops == [False, False, False, False, False, False, True]
    # with an adaptive schedule a plateau lowers the rate instead, down to its floor
    schedule = AdaptiveLR(1.0, factor=10.0, min_lr=0.01)
    rule = PlateauStop(0.1, 1, schedule)
    stops = [rule.update(1.0) for _ in range(4)]
    assert stops == [False, False, False, True] and schedule(0) == pytest.approx(0.01)


def test_l1_steps_give_exact_zeros():
    loss, _, _ = make_problem(l2_reg_strength=0.0)
    l1 = np.full(loss.n_params, 0.05)
    res = sgd(loss.minibatch_gradient, np.zeros(loss.n_params), n_samples=50, batch_size=10,
              max_epochs=30, learning_rate=0.2, rng=np.random.default_rng(0), l1=l1)
    assert np.any(res.x == 0)


def test_history_scored_after_the_run_is_the_per_epoch_history(monkeypatch):
    """With ``objectives`` and nothing reading an epoch's value as it ends, the end points are
    scored together after the run: the same history, one call instead of one per epoch."""
    from softmaxreg.solvers import _sgd

    loss, _, _ = make_problem(l2_reg_strength=0.05)
    x0 = np.random.default_rng(8).normal(scale=0.1, size=loss.n_params)
    kw = dict(n_samples=50, batch_size=8, max_epochs=6, learning_rate=0.2, momentum=0.5)
    calls = []

    def objectives(xs):
        calls.append(len(xs))
        return loss.losses(xs)

    each = sgd(loss.minibatch_gradient, x0, objective=loss.loss, rng=np.random.default_rng(3), **kw)
    later = sgd(loss.minibatch_gradient, x0, objective=loss.loss, objectives=objectives,
                rng=np.random.default_rng(3), **kw)
    assert calls == [6]
    np.testing.assert_array_equal(later.x, each.x)
    assert later.history == pytest.approx(each.history, rel=1e-12) and later.fun == later.history[-1]
    assert len(set(later.history)) == 6  # one value per epoch, not the last one repeated
    # A callback or tol needs each value as its epoch ends: no deferral.
    seen = []
    sgd(loss.minibatch_gradient, x0, objective=loss.loss, objectives=objectives, rng=np.random.default_rng(3),
        callback=lambda x, f, epoch: seen.append(f), **kw)
    with pytest.warns(ConvergenceWarning):
        sgd(loss.minibatch_gradient, x0, objective=loss.loss, objectives=objectives, rng=np.random.default_rng(3),
            tol=1e-9, n_iter_no_change=100, **kw)
    assert calls == [6] and seen == pytest.approx(each.history, rel=1e-12)
    # Nor when the kept points would exceed the cap.
    monkeypatch.setattr(_sgd, "_DEFER_MAX", loss.n_params * 6 - 1)
    capped = sgd(loss.minibatch_gradient, x0, objective=loss.loss, objectives=objectives,
                 rng=np.random.default_rng(3), **kw)
    assert calls == [6] and capped.history == pytest.approx(each.history, rel=1e-12)
