"""DaskLinearSoftmaxLoss: every method sums the chunks to the in-memory LinearSoftmaxLoss."""

import numpy as np
import pytest

da = pytest.importorskip("dask.array")

from softmaxreg.loss import DaskLinearSoftmaxLoss, LinearSoftmaxLoss, dask_persist  # noqa: E402


def _problem(n=230, d=4, K=3, seed=0, dtype=np.float64, chunks=60, **kw):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(dtype)
    y = rng.integers(0, K, n)
    s = rng.uniform(0.0, 2.0, n)
    s[:chunks] = 0.0  # a chunk without weight contributes nothing
    mem = LinearSoftmaxLoss(X, y, n_classes=K, sample_weight=s, **kw)
    lazy = DaskLinearSoftmaxLoss(
        da.from_array(X, chunks=(chunks, d)), da.from_array(y, chunks=chunks), n_classes=K,
        sample_weight=da.from_array(s, chunks=chunks), **kw,
    )
    w = rng.normal(size=mem.n_params)
    v = rng.normal(size=mem.n_params)
    return mem, lazy, w, v, (X, y, s)


CASES = [
    dict(),
    dict(l2_reg_strength=0.05),
    dict(reference_class=1, l2_reg_strength=0.01),
    dict(fit_intercept=False),
]


@pytest.mark.parametrize("kw", CASES, ids=str)
def test_methods_equal_in_memory(kw):
    mem, lazy, w, v, _ = _problem(**kw)
    assert lazy.n_params == mem.n_params and lazy.sum_sample_weight == pytest.approx(mem.sum_sample_weight)
    f, g = lazy.loss_gradient(w)
    f0, g0 = mem.loss_gradient(w)
    assert f == pytest.approx(f0, rel=1e-13)
    np.testing.assert_allclose(g, g0, rtol=1e-12, atol=1e-14)
    assert lazy.loss(w) == pytest.approx(f0, rel=1e-13)
    np.testing.assert_allclose(lazy.gradient(w), g0, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(lazy.hessp(w, v), mem.hessp(w, v), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(lazy.hessian(w), mem.hessian(w), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(lazy.losses([w, v]), mem.losses([w, v]), rtol=1e-13)
    M, M0 = lazy.preconditioner(w, mass=1.0), mem.preconditioner(w, mass=1.0)
    np.testing.assert_allclose(M(v), M0(v), rtol=1e-9, atol=1e-12)
    for a, b in zip(lazy.unpack(w), mem.unpack(w)):
        np.testing.assert_array_equal(a, b)


def test_gradient_by_central_differences():
    _, lazy, w, v, _ = _problem(l2_reg_strength=0.1, seed=3)
    h = 1e-6
    slope = (lazy.loss(w + h * v) - lazy.loss(w - h * v)) / (2 * h)
    assert slope == pytest.approx(lazy.gradient(w) @ v, rel=1e-6)


@pytest.mark.parametrize("kw", [dict(), dict(reference_class=1), dict(fit_intercept=False)])
@pytest.mark.parametrize("rows_at_a_time", [None, 1, 7])
def test_meat_is_the_sum_of_score_outer_products(kw, rows_at_a_time, monkeypatch):
    """Whatever the block of rows the chunks form their scores in (here down to one row)."""
    if rows_at_a_time is not None:
        import softmaxreg.loss._scores as scores

        q = (3 - ("reference_class" in kw)) * (4 + kw.get("fit_intercept", True))
        monkeypatch.setattr(scores, "_CHUNK_FLOATS", (q + 3) * rows_at_a_time)
    mem, lazy, w, _, (X, y, s) = _problem(seed=4, **kw)
    coef, b = mem.unpack(w)
    Z = X @ coef.T + b
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    R = (P - np.eye(3)[y])[:, [k for k in range(3) if k != kw.get("reference_class")]]
    Xt = np.hstack([X, np.ones((X.shape[0], 1))]) if kw.get("fit_intercept", True) else X
    G = (R[:, :, None] * Xt[:, None, :]).reshape(X.shape[0], -1)
    np.testing.assert_allclose(lazy.meat(w), G.T @ (s[:, None] * G), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lazy.class_counts(), np.bincount(y, weights=s, minlength=3))


def test_float32_chunks_and_persist_choices():
    mem, lazy, w, _, _ = _problem(dtype=np.float32, seed=5)
    assert lazy.X.dtype == np.float32
    assert lazy.loss(w) == pytest.approx(mem.loss(w), rel=1e-6)
    X, y = da.ones((10, 2), chunks=5), da.zeros(10, chunks=5, dtype=int)
    assert dask_persist(False, X, y)[0] is False
    assert dask_persist(True, X, y)[0] is True
    assert dask_persist("auto", X, y)[0] is True  # tiny: fits in memory
    with pytest.raises(ValueError, match="persist must be"):
        dask_persist("yes", X, y)


def test_on_the_cluster(dask_client):
    mem, lazy, w, v, _ = _problem(seed=6, chunks=40, l2_reg_strength=0.02)
    f, g = lazy.loss_gradient(w)
    assert f == pytest.approx(mem.loss(w), rel=1e-13)
    np.testing.assert_allclose(g, mem.gradient(w), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(lazy.hessp(w, v), mem.hessp(w, v), rtol=1e-12, atol=1e-14)
    assert lazy.n_chunks == 6 and lazy.n_passes == 2


def test_bad_input():
    X = da.ones((10, 2), chunks=5)
    with pytest.raises(TypeError, match="dask.array"):
        DaskLinearSoftmaxLoss(np.ones((10, 2)), da.zeros(10, chunks=5), n_classes=2)
    with pytest.raises(ValueError, match="float32 or float64"):
        DaskLinearSoftmaxLoss(X.astype(int), da.zeros(10, chunks=5), n_classes=2)
    with pytest.raises(ValueError, match="y is chunked by rows"):
        DaskLinearSoftmaxLoss(X, da.zeros(10, chunks=4, dtype=int), n_classes=2)
    with pytest.raises(ValueError, match="sums to zero"):
        DaskLinearSoftmaxLoss(X, da.zeros(10, chunks=5, dtype=int), n_classes=2,
                              sample_weight=da.zeros(10, chunks=5))
    loss = DaskLinearSoftmaxLoss(da.ones((10, 2), chunks=(5, 1)), da.zeros(10, chunks=5, dtype=int), n_classes=2)
    assert len(loss.X.chunks[1]) == 1  # column blocks joined into one
    with pytest.raises(ValueError, match="v must have shape"):
        loss.hessp(np.zeros(loss.n_params), np.zeros(2))


def test_persisted_chunks_take_one_task_per_worker_and_equal_in_memory(dask_client):
    """On a cluster, chunks held in the workers' memory are summed where they lie: one task per worker."""
    from distributed import get_task_stream

    rng = np.random.default_rng(4)
    X, y, s = rng.normal(size=(300, 5)), rng.integers(0, 4, 300), rng.uniform(0.5, 2.0, 300)
    mem = LinearSoftmaxLoss(X, y, n_classes=4, sample_weight=s, l2_reg_strength=0.1)
    lazy = DaskLinearSoftmaxLoss(da.from_array(X, chunks=(50, 5)), da.from_array(y, chunks=50), n_classes=4,
                                 sample_weight=da.from_array(s, chunks=50), l2_reg_strength=0.1, persist=True)
    assert lazy.persisted and lazy.n_chunks == 6
    w, v = rng.normal(size=mem.n_params), rng.normal(size=mem.n_params)
    with get_task_stream() as ts:
        f, g = lazy.loss_gradient(w)
    names = [t["key"] for t in ts.data if str(t["key"]).startswith("softmaxreg-loss_gradient")]
    assert 1 <= len(names) <= len(dask_client.scheduler_info()["workers"])
    f0, g0 = mem.loss_gradient(w)
    assert f == pytest.approx(f0, rel=1e-13) and np.allclose(g, g0, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(lazy.hessp(w, v), mem.hessp(w, v), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(lazy.losses([w, v]), mem.losses([w, v]), rtol=1e-13)


def _kept_on_workers(client):
    import softmaxreg.loss._dask as module

    return client.run(lambda: len(module._KEPT["losses"]))


def test_chunks_kept_between_passes_give_the_in_memory_results_and_are_dropped_after(dask_client):
    """Inside chunks_kept() the workers reuse their chunks' losses; every product still equals memory's."""
    rng = np.random.default_rng(9)
    X, y = rng.normal(size=(240, 4)).astype(np.float32), rng.integers(0, 3, 240)
    mem = LinearSoftmaxLoss(X, y, n_classes=3, l2_reg_strength=0.05)
    lazy = DaskLinearSoftmaxLoss(da.from_array(X, chunks=(40, 4)), da.from_array(y, chunks=40), n_classes=3,
                                 l2_reg_strength=0.05, persist=True)
    w1, w2, v = (rng.normal(size=mem.n_params) for _ in range(3))
    with lazy.chunks_kept():
        # Products at a point, then a gradient elsewhere, then products there: no stale probabilities.
        for w in (w1, w2, w1):
            np.testing.assert_allclose(lazy.hessp(w, v), mem.hessp(w, v), rtol=1e-5, atol=1e-6)
            f, g = lazy.loss_gradient(w)
            f0, g0 = mem.loss_gradient(w)
            assert f == pytest.approx(f0, rel=1e-6)
            np.testing.assert_allclose(g, g0, rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(lazy.hessp(w, 2 * v), mem.hessp(w, 2 * v), rtol=1e-5, atol=1e-6)
        assert sum(_kept_on_workers(dask_client).values()) == lazy.n_chunks
    assert sum(_kept_on_workers(dask_client).values()) == 0


def test_fit_leaves_nothing_kept_on_the_workers(dask_client):
    from softmaxreg import SoftmaxRegression

    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(200, 3)), rng.integers(0, 3, 200)
    model = SoftmaxRegression(solver="newton-cg", tol=1e-8).fit(
        da.from_array(X, chunks=(50, 3)), da.from_array(y, chunks=50), persist=True)
    assert sum(_kept_on_workers(dask_client).values()) == 0
    np.testing.assert_allclose(model.coef_, SoftmaxRegression(solver="newton-cg", tol=1e-8).fit(X, y).coef_,
                               atol=1e-6)
