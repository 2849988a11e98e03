"""SoftmaxRegression on Dask input: the fit equals the in-memory fit, inference, lazy prediction, faults, errors."""

import os
import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
pd = pytest.importorskip("pandas")

from softmaxreg import SoftmaxRegression  # noqa: E402
from softmaxreg.loss import LinearSoftmaxLoss  # noqa: E402

TIGHT = dict(tol=1e-8, max_iter=2000)


def _data(n=400, d=4, K=3, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(dtype)
    W = rng.normal(size=(K, d))
    y = np.argmax(X @ W.T + rng.gumbel(size=(n, K)), axis=1)
    s = rng.uniform(0.2, 2.0, n)
    return X, y, s


def _dask(*arrays, chunks=100):
    return [da.from_array(a, chunks=(chunks,) + a.shape[1:]) for a in arrays]


def _objective(model, X, y, sample_weight, reference):
    """The in-memory per-sample objective of ``model``'s coefficients (L1 terms included)."""
    classes = model.classes_
    codes = np.searchsorted(classes, y)
    sw = sample_weight * (1.0 if model.class_weight is None else
                          np.asarray([_class_factor(model, classes, codes, sample_weight)[c] for c in codes]))
    S = sw.sum()
    pen = model.penalty
    l1_ratio = {"l1": 1.0, "elasticnet": model.l1_ratio}.get(pen, 0.0)
    l2 = 0.0 if pen is None else (1 - l1_ratio) / (model.C * S)
    loss = LinearSoftmaxLoss(X, codes, n_classes=classes.size, sample_weight=sw,
                             fit_intercept=model.fit_intercept, l2_reg_strength=l2, reference_class=reference)
    coef = model.coef_.astype(np.float64)
    w = loss.pack(coef, model.intercept_.astype(np.float64))
    return loss.loss(w) + l1_ratio / (model.C * S) * np.abs(coef).sum()


def _class_factor(model, classes, codes, sw):
    from softmaxreg.models._validation import class_weight_to_sample_weight

    f = class_weight_to_sample_weight(model.class_weight, classes, codes, sw)
    return {c: f[np.flatnonzero(codes == c)[0]] for c in range(classes.size)}


def _assert_same_fit(a, b, X, y, s, reference=None, coef_tol=1e-6):
    fa = _objective(a, X, y, s, reference)
    fb = _objective(b, X, y, s, reference)
    assert abs(fa - fb) <= 1e-9 * abs(fb)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=0, atol=coef_tol)
    np.testing.assert_allclose(a.intercept_, b.intercept_, rtol=0, atol=coef_tol)
    assert a.classes_.tolist() == b.classes_.tolist()


@pytest.mark.parametrize("solver", ["lbfgs", "newton-cg"])
def test_fit_on_cluster_equals_in_memory(dask_client, solver):
    X, y, s = _data()
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    Xd, sd = _dask(X, s)
    yd = da.from_array(labels, chunks=100)
    iterations = []
    model = SoftmaxRegression(solver=solver, callback=lambda info: iterations.append(info["iteration"]), **TIGHT)
    model.fit(Xd, yd, sample_weight=sd)
    ref = SoftmaxRegression(solver=solver, **TIGHT).fit(X, labels, sample_weight=s)
    _assert_same_fit(model, ref, X, labels, s)
    assert iterations == list(range(1, model.n_iter_ + 1))
    assert model.converged_ and model.n_features_in_ == 4


OPTIONS = [
    dict(solver="lbfgs", C=0.3),
    dict(solver="newton-cg", C=10.0),
    dict(solver="newton-cg", penalty=None, reference_class=1),
    dict(solver="lbfgs", penalty=None, reference_class=0),
    dict(solver="proximal", penalty="l1", C=0.2),
    dict(solver="proximal", penalty="elasticnet", l1_ratio=0.5, C=0.3),
    dict(solver="lbfgs", class_weight="balanced"),
    dict(solver="newton-cg", class_weight={0: 2.0, 2: 0.5}),
    dict(solver="newton-cg", fit_intercept=False),
    dict(solver="lbfgs", reference_class=2, C=2.0),
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_every_option_equals_in_memory(options):
    # Dask's default (threaded) scheduler: the same loss, without the cluster's latency per pass.
    X, y, s = _data(n=300, seed=1)
    Xd, yd, sd = _dask(X, y, s, chunks=70)
    model = SoftmaxRegression(**options, **TIGHT).fit(Xd, yd, sample_weight=sd)
    ref = SoftmaxRegression(**options, **TIGHT).fit(X, y, sample_weight=s)
    _assert_same_fit(model, ref, X, y, s, reference=ref._reference_code(ref.classes_))
    assert model.n_iter_ == pytest.approx(ref.n_iter_, abs=2)


def test_newton_cg_preconditioner_and_many_classes():
    # Enough CG steps that the class-block preconditioner is built from the chunks.
    X, y, s = _data(n=500, d=12, K=6, seed=3)
    X[:, 0] *= 30.0
    Xd, yd = _dask(X, y, chunks=120)
    model = SoftmaxRegression(solver="newton-cg", C=100.0, **TIGHT).fit(Xd, yd)
    ref = SoftmaxRegression(solver="newton-cg", C=100.0, **TIGHT).fit(X, y)
    _assert_same_fit(model, ref, X, y, np.ones(500), coef_tol=1e-5)


def test_warm_start_and_dataframe_names():
    X, y, s = _data(n=200, seed=2)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    ddf = dd.from_pandas(frame, npartitions=3)
    ys = dd.from_pandas(pd.Series(y, name="y"), npartitions=3)
    model = SoftmaxRegression(warm_start=True, **TIGHT).fit(ddf, ys)
    assert model.feature_names_in_.tolist() == ["a", "b", "c", "d"]
    first = model.n_iter_
    model.fit(ddf, ys)
    assert model.n_iter_ < first
    ref = SoftmaxRegression(**TIGHT).fit(frame, y)
    _assert_same_fit(model, ref, X, y, np.ones(200))
    lazy = model.predict_proba(ddf)
    assert isinstance(lazy, da.Array)
    np.testing.assert_allclose(lazy.compute(), ref.predict_proba(frame), atol=1e-9)


def test_float32_chunks_stay_float32():
    X, y, _ = _data(n=300, seed=4, dtype=np.float32)
    Xd, yd = _dask(X, y, chunks=80)
    model = SoftmaxRegression(tol=1e-5).fit(Xd, yd)
    ref = SoftmaxRegression(tol=1e-5).fit(X, y)
    assert model.coef_.dtype == np.float32 and Xd.dtype == np.float32
    # float32 products sum in another grouping: the optimum agrees to float32 rounding.
    np.testing.assert_allclose(model.coef_, ref.coef_, atol=1e-4)
    lazy = model.predict_proba(Xd)  # float32 in, float32 out, as in memory
    assert lazy.dtype == lazy.compute().dtype == ref.predict_proba(X).dtype == np.float32


def test_statistics_methods_on_a_dask_fit():
    X, y, s = _data(n=300, seed=8)
    Xd, yd, sd = _dask(X, y, s, chunks=80)
    model = SoftmaxRegression(penalty=None, reference_class=0, **TIGHT).fit(Xd, yd, sample_weight=sd)
    ref = SoftmaxRegression(penalty=None, reference_class=0, **TIGHT).fit(X, y, sample_weight=s)
    a, b = model.predict_interval(X[:7]), ref.predict_interval(X[:7])
    np.testing.assert_allclose(a.lower, b.lower, atol=1e-7)
    np.testing.assert_allclose(a.upper, b.upper, atol=1e-7)
    a, b = model.marginal_effects(X), ref.marginal_effects(X)
    np.testing.assert_allclose(np.asarray(a.margeff), np.asarray(b.margeff), atol=1e-7)
    with pytest.raises(ValueError, match="need X, the rows to average"):
        model.marginal_effects()
    small = SoftmaxRegression(penalty=None, reference_class=0, **TIGHT).fit(Xd[:, :2], yd, sample_weight=sd)
    small_ref = SoftmaxRegression(penalty=None, reference_class=0, **TIGHT).fit(X[:, :2], y, sample_weight=s)
    assert model.lr_test(small).statistic == pytest.approx(ref.lr_test(small_ref).statistic, rel=1e-7)
    with pytest.raises(ValueError, match="nonrobust"):
        model.cov_params("cluster", groups=np.arange(300) % 5)
    symmetric = SoftmaxRegression(penalty=None, **TIGHT).fit(Xd, yd)
    with pytest.raises(ValueError, match="reference_class="):
        symmetric.predict_interval(X[:3])


def test_inference_on_cluster_equals_in_memory(dask_client):
    X, y, s = _data(n=300, seed=5)
    Xd, yd, sd = _dask(X, y, s, chunks=80)
    model = SoftmaxRegression(penalty=None, reference_class=0, **TIGHT).fit(Xd, yd, sample_weight=sd)
    ref = SoftmaxRegression(penalty=None, reference_class=0, **TIGHT).fit(X, y, sample_weight=s)
    for cov_type in ("nonrobust", "HC0"):
        a, b = model.cov_params(cov_type), ref.cov_params(cov_type)
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-8 * np.abs(b).max())
    a, b = model.inference("HC0"), ref.inference("HC0")
    np.testing.assert_allclose(a.bse, b.bse, rtol=1e-7)
    assert a.log_likelihood == pytest.approx(b.log_likelihood, rel=1e-10)
    assert a.log_likelihood_null == pytest.approx(b.log_likelihood_null, rel=1e-12)
    assert "Softmax regression results" in str(model.summary())


def test_l2_inference_symmetric_coding():
    X, y, s = _data(n=200, seed=6)
    Xd, yd = _dask(X, y, chunks=60)
    model = SoftmaxRegression(C=2.0, **TIGHT).fit(Xd, yd)
    ref = SoftmaxRegression(C=2.0, **TIGHT).fit(X, y)
    np.testing.assert_allclose(model.cov_params(), ref.cov_params(), atol=1e-8)
    np.testing.assert_allclose(model.cov_params("HC1"), ref.cov_params("HC1"), atol=1e-8)


def test_lazy_prediction_on_cluster(dask_client):
    X, y, _ = _data(n=300, seed=7)
    Xd, yd = _dask(X, y, chunks=80)
    model = SoftmaxRegression().fit(X, y)
    for method in ("predict", "predict_proba", "predict_log_proba", "decision_function"):
        lazy = getattr(model, method)(Xd)
        assert isinstance(lazy, da.Array) and lazy.chunks[0] == Xd.chunks[0]
        np.testing.assert_allclose(lazy.compute(), getattr(model, method)(X), atol=1e-12)
    score = model.score(Xd, yd)
    assert isinstance(score, da.Array)
    assert float(score) == pytest.approx(model.score(X, y))
    two = SoftmaxRegression().fit(X, y % 2)
    np.testing.assert_allclose(two.decision_function(Xd).compute(), two.decision_function(X), atol=1e-12)


def test_worker_killed_mid_fit(dask_client):
    X, y, s = _data(n=400, seed=8)
    Xd, yd = _dask(X, y, chunks=50)
    victim = sorted(dask_client.scheduler_info()["workers"])[0]

    async def die():  # a coroutine: the only kind Client.run may leave without waiting
        os._exit(1)

    def kill_after_second(info):
        if info["iteration"] == 2:
            dask_client.run(die, workers=[victim], wait=False)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SoftmaxRegression(solver="lbfgs", callback=kill_after_second, **TIGHT).fit(Xd, yd, persist=True)
    ref = SoftmaxRegression(solver="lbfgs", **TIGHT).fit(X, y)
    _assert_same_fit(model, ref, X, y, np.ones(400))
    dask_client.wait_for_workers(2, timeout=60)
    assert victim not in dask_client.scheduler_info()["workers"]  # it died; the nanny started another


def test_out_of_core_persist_false(dask_client):
    # X is generated by its chunks' tasks: with persist=False each pass makes it anew.
    n, d, K = 300, 4, 3
    W = np.random.default_rng(9).normal(size=(K, d))

    def block(b, block_info=None):
        start = block_info[None]["array-location"][0][0]
        rng = np.random.default_rng(start)
        return rng.normal(size=(b.shape[0], d))

    Xd = da.zeros((n, d), chunks=(75, d)).map_blocks(block, dtype=np.float64)
    X = Xd.compute(scheduler="sync")
    y = np.argmax(X @ W.T + np.random.default_rng(1).gumbel(size=(n, K)), axis=1)
    yd = da.from_array(y, chunks=75)
    model = SoftmaxRegression(**TIGHT).fit(Xd, yd, persist=False)
    assert not model._loss.loss.persisted
    ref = SoftmaxRegression(**TIGHT).fit(X, y)
    _assert_same_fit(model, ref, X, y, np.ones(n))


def test_sgd_streams_partitions_and_partial_fit():
    X, y, _ = _data(n=600, seed=10)
    Xd, yd = _dask(X, y, chunks=100)
    model = SoftmaxRegression(solver="sgd", max_iter=15, tol=None, random_state=0, learning_rate=0.2,
                              batch_size=32).fit(Xd, yd)
    ref = SoftmaxRegression(**TIGHT).fit(X, y)
    assert len(model.history_) == 15
    assert model.history_[-1] <= ref.history_[-1] + 0.02
    assert abs(model.score(X, y) - ref.score(X, y)) < 0.05
    inc = SoftmaxRegression(random_state=0, learning_rate=0.2, batch_size=32)
    for _ in range(5):
        inc.partial_fit(Xd, yd, classes=[0, 1, 2])
    assert inc.n_iter_ == 5 * Xd.numblocks[0]
    assert abs(inc.score(X, y) - ref.score(X, y)) < 0.08
    # The stopping rule counts n_iter_no_change epochs, and "adaptive" lowers the rate
    # at a plateau, as in memory: 1 + 2 epochs, then 1 + 9 plateaus of 2 (0.2 / 5**8 < 1e-6).
    for schedule, epochs in (("constant", 3), ("adaptive", 19)):
        stopped = SoftmaxRegression(solver="sgd", tol=1e3, n_iter_no_change=2, random_state=0,
                                    learning_rate=0.2, learning_rate_schedule=schedule).fit(Xd, yd)
        assert stopped.n_iter_ == epochs and stopped.converged_


# -- bad input: a clear error before any fitting -------------------------------------------


def test_nan_is_reported_with_its_partition():
    X, y, _ = _data(n=200)
    X[130, 2] = np.nan
    Xd, yd = _dask(X, y, chunks=50)
    with pytest.raises(ValueError, match=r"partition 2 \(rows 100\.\.149\).*NaN at its row 30, column 2"):
        SoftmaxRegression().fit(Xd, yd)


def test_mismatched_chunks_of_X_and_y():
    X, y, _ = _data(n=200)
    with pytest.raises(ValueError, match="y is chunked by rows .* but X by"):
        SoftmaxRegression().fit(da.from_array(X, chunks=50), da.from_array(y, chunks=40))
    with pytest.raises(ValueError, match="sample_weight is chunked"):
        SoftmaxRegression().fit(da.from_array(X, chunks=50), da.from_array(y, chunks=50),
                                sample_weight=da.ones(200, chunks=100))


def test_column_chunks_are_rechunked_and_unknown_chunks_refused():
    X, y, _ = _data(n=200)
    model = SoftmaxRegression().fit(da.from_array(X, chunks=(50, 2)), da.from_array(y, chunks=50))
    np.testing.assert_allclose(model.coef_, SoftmaxRegression().fit(X, y).coef_, atol=1e-6)
    unknown = dd.from_pandas(pd.DataFrame(X), npartitions=4).to_dask_array()
    with pytest.raises(ValueError, match="unknown size"):
        SoftmaxRegression().fit(unknown, da.from_array(y, chunks=50))


def test_label_outside_classes_in_a_later_partition():
    X, y, _ = _data(n=200)
    y[190] = 7
    Xd, yd = _dask(X, y, chunks=50)
    with pytest.raises(ValueError, match=r"labels \[7\] that are not in classes"):
        SoftmaxRegression().partial_fit(Xd, yd, classes=[0, 1, 2])


def test_bad_persist_and_one_class():
    X, y, _ = _data(n=100)
    Xd, yd = _dask(X, np.zeros(100, dtype=int), chunks=50)
    with pytest.raises(ValueError, match="persist must be"):
        SoftmaxRegression().fit(Xd, yd, persist="always")
    with pytest.raises(ValueError, match="only one class"):
        SoftmaxRegression().fit(Xd, yd)


def test_empty_inputs_non_numeric_columns_and_a_list_of_labels():
    """The in-memory messages for empty data; pandas' string columns named; nullable columns taken as numbers."""
    X, y, _ = _data(n=200)
    Xd, yd = _dask(X, y, chunks=50)
    with pytest.raises(ValueError, match=r"Found array with 0 sample\(s\)"):
        SoftmaxRegression().fit(Xd[:0], yd[:0])
    with pytest.raises(ValueError, match=r"Found array with 0 feature\(s\)"):
        SoftmaxRegression().fit(Xd[:, :0], yd)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    labels = dd.from_pandas(pd.Series(y), npartitions=4)
    with pytest.raises(ValueError, match=r"non-numeric columns \['s'\]"):
        SoftmaxRegression().fit(dd.from_pandas(frame.assign(s="x"), npartitions=4), labels)
    nullable = SoftmaxRegression().fit(dd.from_pandas(frame.astype("Float64"), npartitions=4), labels)
    np.testing.assert_allclose(nullable.coef_, SoftmaxRegression().fit(X, y).coef_, atol=1e-6)
    from_list = SoftmaxRegression().fit(Xd, list(y))
    np.testing.assert_allclose(from_list.coef_, SoftmaxRegression().fit(X, y).coef_, atol=1e-6)


def test_unpenalized_fit_of_a_rank_deficient_design_is_refused_as_in_memory():
    from softmaxreg.models import IdentificationError

    X, y, _ = _data(n=200)
    X = np.c_[X, 2 * X[:, 0] - X[:, 1]]
    with pytest.raises(IdentificationError) as in_memory:
        SoftmaxRegression(penalty=None, reference_class=0).fit(X, y)
    with pytest.raises(IdentificationError) as on_dask:
        SoftmaxRegression(penalty=None, reference_class=0).fit(*_dask(X, y, chunks=50))
    assert str(on_dask.value) == str(in_memory.value)
    SoftmaxRegression(penalty="l2").fit(*_dask(X, y, chunks=50))  # a penalty identifies it


def test_missing_labels_in_a_partition_are_refused():
    X, _, _ = _data(n=200)
    labels = np.array(["a", "b", "c", "d"] * 50, dtype=object)
    labels[170] = None
    with pytest.raises(ValueError, match=r"partition 3.*missing label"):
        SoftmaxRegression().fit(*_dask(X, labels, chunks=50))
