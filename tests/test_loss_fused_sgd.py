"""The threaded SGD epoch of softmaxreg._native.sgd equals the sgd solver's reference minibatch loop."""

import numpy as np
import pytest

pytest.importorskip("numba")
from softmaxreg.loss import LinearSoftmaxLoss  # noqa: E402
from softmaxreg._native import sgd as FS  # noqa: E402


def reference_epoch(L, x0, perm, batch, lr, momentum):
    """The solver's loop over LinearSoftmaxLoss.minibatch_gradient; returns x, v and the rows predicted right."""
    x, v = x0.copy(), np.zeros_like(x0)
    right = 0
    for i in range(0, perm.size, batch):
        rows = perm[i : i + batch]
        coef, intercept = L.unpack(x.astype(np.float64))
        Z = (L.X[rows] @ coef.T.astype(L.X.dtype)).astype(np.float64) + (intercept if L.fit_intercept else 0.0)
        right += int(np.sum(np.argmax(Z, axis=1) == L.y[rows]))
        g = L.minibatch_gradient(x.astype(np.float64), rows)
        v = (momentum * v + g).astype(x0.dtype)
        x = (x - lr * v).astype(x0.dtype)
    return x, v, right


def problem(n, p, k, dtype, seed=0, weights=True, l2=0.01, fit_intercept=True):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, p)).astype(dtype)
    y = rng.integers(0, k, n)
    sw = rng.random(n) if weights else None
    L = LinearSoftmaxLoss(X, y, n_classes=k, sample_weight=sw, l2_reg_strength=l2, fit_intercept=fit_intercept)
    x0 = (rng.standard_normal(L.n_params) * 0.1).astype(dtype)
    return X, y, sw, L, x0, rng.permutation(n)


def fused(X, y, sw, L, x0, perm, batch, lr=0.1, momentum=0.0, n_threads=None, n_blocks=None):
    x, v = x0.copy(), np.zeros_like(x0)
    right = FS.sgd_epoch(X, y, sw, x, perm, n_classes=L.n_classes, fit_intercept=L.fit_intercept, batch_size=batch,
                         learning_rate=lr, l2=L.l2_reg_strength, momentum=momentum, velocity=v, n_threads=n_threads,
                         n_blocks=n_blocks)
    return x, v, right


TOL = {np.float32: 2e-5, np.float64: 1e-12}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("momentum", [0.0, 0.9])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("n_threads", [1, 2, 3])
def test_epoch_equals_the_minibatch_loop(dtype, momentum, fit_intercept, n_threads):
    # 400 features: up to 3 blocks of 128 columns or more, one per thread;
    # 203 rows in batches of 16: a short last batch and 4-row tails
    X, y, sw, L, x0, perm = problem(203, 400, 7, dtype, fit_intercept=fit_intercept)
    x, v, right = reference_epoch(L, x0, perm, 16, 0.1, momentum)
    xf, vf, rf = fused(X, y, sw, L, x0, perm, 16, momentum=momentum, n_threads=n_threads, n_blocks=n_threads)
    np.testing.assert_allclose(xf, x, rtol=TOL[dtype], atol=TOL[dtype])
    if momentum:
        np.testing.assert_allclose(vf, v, rtol=TOL[dtype], atol=TOL[dtype])
    assert rf == right


@pytest.mark.parametrize("batch", [1, 3, 7, 64, 255, 1000])
@pytest.mark.parametrize("k", [2, 5, 10, 12])
def test_odd_batches_and_class_counts(batch, k):
    X, y, sw, L, x0, perm = problem(259, 517, k, np.float64, seed=batch + k)
    x, _, right = reference_epoch(L, x0, perm, batch, 0.05, 0.0)
    for T in (1, 2, 4):
        xf, _, rf = fused(X, y, sw, L, x0, perm, batch, lr=0.05, n_threads=T, n_blocks=4)
        np.testing.assert_allclose(xf, x, rtol=1e-12, atol=1e-12)
        assert rf == right


@pytest.mark.parametrize("p", [1, 17, 129, 256, 400, 784])
def test_the_threads_do_not_change_the_bits(p):
    # the partial logits are summed over fixed column blocks, whichever thread computed them
    X, y, sw, L, x0, perm = problem(300, p, 10, np.float32, seed=p, weights=False, l2=0.0)
    for blocks in (1, 2, 3, 5):
        one = fused(X, y, sw, L, x0, perm, 32, n_threads=1, n_blocks=blocks)
        for T in (2, 3, 8):
            for a, b in zip(one, fused(X, y, sw, L, x0, perm, 32, n_threads=T, n_blocks=blocks)):
                np.testing.assert_array_equal(a, b)
    # and other blocks change only the rounding
    np.testing.assert_allclose(fused(X, y, sw, L, x0, perm, 32, n_blocks=1)[0],
                               fused(X, y, sw, L, x0, perm, 32, n_blocks=3)[0], rtol=1e-5, atol=1e-6)


def test_a_part_of_the_rows_in_any_order():
    # the permutation may repeat rows and leave some out; zero weights count for nothing
    X, y, sw, L, x0, _ = problem(150, 260, 3, np.float64, seed=4)
    sw[:20] = 0.0
    L = LinearSoftmaxLoss(X, y, n_classes=3, sample_weight=sw, l2_reg_strength=0.01)
    perm = np.random.default_rng(5).integers(0, 150, 97)
    x, _, right = reference_epoch(L, x0, perm, 10, 0.1, 0.0)
    xf, _, rf = fused(X, y, sw, L, x0, perm, 10, n_threads=2)
    np.testing.assert_allclose(xf, x, rtol=1e-12, atol=1e-12)
    assert rf == right


def test_momentum_continues_from_the_velocity():
    X, y, sw, L, x0, perm = problem(120, 280, 4, np.float64, seed=6)
    x1, v1, _ = fused(X, y, sw, L, x0, perm, 16, momentum=0.5, n_threads=2)
    x2, v2 = x1.copy(), v1.copy()
    FS.sgd_epoch(X, y, sw, x2, perm[::-1], n_classes=4, fit_intercept=True, batch_size=16, learning_rate=0.1,
                 l2=0.01, momentum=0.5, velocity=v2, n_threads=2)
    # the same two epochs through the loop, the second starting from v1
    x, v = x1.copy(), v1.copy()
    for i in range(0, 120, 16):
        v = 0.5 * v + L.minibatch_gradient(x, perm[::-1][i : i + 16])
        x = x - 0.1 * v
    np.testing.assert_allclose(x2, x, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(v2, v, rtol=1e-12, atol=1e-12)


def test_divergence_gives_non_finite_coefficients_and_returns():
    # the threads keep meeting at their barrier while everything is NaN
    X, y, sw, L, x0, perm = problem(100, 300, 3, np.float32, seed=7)
    X *= np.float32(1e30)
    xf, _, _ = fused(X, y, sw, L, x0, perm, 8, lr=1e30, n_threads=2)
    assert not np.all(np.isfinite(xf))


def test_the_default_thread_count():
    assert 1 <= FS.default_threads() <= 4096
    X, y, sw, L, x0, perm = problem(64, 260, 3, np.float64, seed=8)
    np.testing.assert_allclose(fused(X, y, sw, L, x0, perm, 16)[0], fused(X, y, sw, L, x0, perm, 16, n_threads=1)[0],
                               rtol=1e-12, atol=1e-12)


def test_an_aborted_thread_releases_the_others():
    flags = np.zeros(3 * FS._STRIDE, dtype=np.int64)
    flags[2 * FS._STRIDE] = 1  # the abort flag of a 2-thread barrier
    assert FS._arrive_and_wait(flags, 0, 2, 1) == -1
    flags[:] = 0
    flags[FS._STRIDE] = 5  # thread 1 is ahead
    assert FS._arrive_and_wait(flags, 0, 2, 1) == 0
    assert flags[0] == 1


def test_a_failing_thread_releases_the_others(monkeypatch):
    real = FS._epoch_worker

    def worker(t, *args):
        if t == 1:
            raise RuntimeError("thread 1 failed")
        return real(t, *args)

    monkeypatch.setattr(FS, "_epoch_worker", worker)
    X, y, sw, L, x0, perm = problem(64, 300, 3, np.float64, seed=10)
    with pytest.raises(RuntimeError, match="thread 1 failed"):
        fused(X, y, sw, L, x0, perm, 16, n_threads=2, n_blocks=2)


@pytest.mark.parametrize("solo_after", [0, 1])
def test_going_on_alone_changes_nothing(monkeypatch, solo_after):
    # thread 0 takes every block from the first barrier on (as when its partner keeps missing)
    X, y, sw, L, x0, perm = problem(203, 300, 7, np.float32, seed=9)
    one = fused(X, y, sw, L, x0, perm, 16, momentum=0.9, n_threads=1)
    monkeypatch.setattr(FS, "_SOLO_AFTER", solo_after)
    two = fused(X, y, sw, L, x0, perm, 16, momentum=0.9, n_threads=2)
    for a, b in zip(one, two):
        np.testing.assert_array_equal(a, b)


def test_validates_its_inputs():
    X = np.zeros((4, 2))
    kw = dict(n_classes=2, fit_intercept=True, batch_size=2, learning_rate=0.1)
    with pytest.raises(ValueError, match="C-contiguous float64 vector of length 6"):
        FS.sgd_epoch(X, np.zeros(4, int), None, np.zeros(5), np.arange(4), **kw)
    with pytest.raises(ValueError, match="velocity"):
        FS.sgd_epoch(X, np.zeros(4, int), None, np.zeros(6), np.arange(4), momentum=0.5, **kw)
    with pytest.raises(ValueError, match="C-contiguous float32 or float64"):
        FS.sgd_epoch(np.asfortranarray(np.zeros((4, 2))), np.zeros(4, int), None, np.zeros(6), np.arange(4), **kw)
    with pytest.raises(ValueError, match="class codes in"):
        FS.sgd_epoch(X, np.array([0, 1, 2, 0]), None, np.zeros(6), np.arange(4), **kw)
    with pytest.raises(ValueError, match="row indices in"):
        FS.sgd_epoch(X, np.zeros(4, int), None, np.zeros(6), np.array([0, 4]), **kw)
    with pytest.raises(ValueError, match="row indices in"):
        FS.sgd_epoch(X, np.zeros(4, int), None, np.zeros(6), np.array([-1, 2]), **kw)
    with pytest.raises(ValueError, match="C-contiguous float32 or float64"):
        FS.sgd_epoch(X.astype(np.float16), np.zeros(4, int), None, np.zeros(6, np.float16), np.arange(4), **kw)


def test_an_empty_permutation_changes_nothing():
    X, y, sw, L, x0, _ = problem(40, 300, 3, np.float32, seed=11)
    x, v, right = fused(X, y, sw, L, x0, np.zeros(0, dtype=np.int64), 16, momentum=0.5, n_threads=2)
    np.testing.assert_array_equal(x, x0)
    assert right == 0 and not v.any()
