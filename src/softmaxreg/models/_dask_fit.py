"""SoftmaxRegression on Dask collections: the exact fit, its inference, streaming SGD and lazy prediction.

:meth:`SoftmaxRegression.fit` sends a Dask ``X`` here.  The data are checked
in one pass (shapes, chunks, NaN per partition, the labels and the weight of
every class), optionally persisted, and the exact solvers then run on the
client over a :class:`~softmaxreg.loss.DaskLinearSoftmaxLoss`, exactly as they
run in memory over a :class:`~softmaxreg.loss.LinearSoftmaxLoss`.
"""

import copy
import sys
import time

import numpy as np
import pandas as pd

from softmaxreg.loss import DaskLinearSoftmaxLoss, LinearSoftmaxLoss
from softmaxreg.solvers import PlateauStop, get_schedule, sgd

from ._fitted import refine_mle, set_fitted
from ._identification import RANK_CHECK_MAX_COLUMNS, check_design_rank
from ._validation import (
    as_label_array,
    check_finite,
    check_label_targets,
    check_no_missing_labels,
    class_weight_to_sample_weight,
    label_codes,
    normalize_dtype,
    sorted_labels,
)

__all__ = ["DaskTrainingData", "dask_fit", "dask_partial_fit", "dask_predict", "dask_score", "is_dask_collection"]


def is_dask_collection(X):
    """Whether ``X`` is a Dask array, DataFrame or Series (False without Dask installed).

    >>> is_dask_collection([[1.0]])
    False
    """
    if "dask" not in sys.modules:
        return False
    import dask

    return dask.is_dask_collection(X)


# -- input ------------------------------------------------------------------------------


def _as_dask_X(X, dtype):
    """``(X as a 2-D dask array chunked by rows only, feature names or None)``."""
    import dask.array as da
    import dask.dataframe as dd

    names = None
    if isinstance(X, dd.DataFrame):
        # pandas' extension dtypes (nullable Float64, Int64, boolean) are numbers too; strings are not
        bad = [str(c) for c, t in X.dtypes.items() if not pd.api.types.is_numeric_dtype(t)]
        if bad:
            raise ValueError(
                f"X has non-numeric columns {bad}; encode them (or drop them) before fitting."
            )
        if all(isinstance(c, str) for c in X.columns):
            names = np.asarray(list(X.columns), dtype=object)
        if dtype is None:
            dtype = np.float32 if all(t == np.float32 for t in X.dtypes) else np.float64
        if any(isinstance(t, pd.api.extensions.ExtensionDtype) for t in X.dtypes):
            X = X.astype(dtype)  # a nullable column's missing values become NaN, which the checks name
        X = X.to_dask_array(lengths=True)
    elif isinstance(X, dd.Series):
        raise ValueError("X is a dask Series; pass a 2-D array or a DataFrame (X.to_frame()).")
    if not isinstance(X, da.Array):
        raise TypeError(f"X must be a dask.array.Array or dask.dataframe.DataFrame, got {type(X).__name__}.")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got {X.ndim} dimension(s).")
    if any(np.isnan(c) for c in X.chunks[0]):
        raise ValueError(
            "X has row chunks of unknown size; call X.compute_chunk_sizes() first."
        )
    if any(np.isnan(c) for c in X.chunks[1]):
        raise ValueError(
            "X is chunked across columns with unknown sizes and cannot be rechunked into one block "
            "of columns; give it known column chunks (e.g. X.compute_chunk_sizes())."
        )
    if not (np.issubdtype(X.dtype, np.number) or X.dtype == np.bool_):
        raise ValueError(f"X must hold numbers, got dtype {X.dtype}.")
    for axis, what in ((0, "sample(s)"), (1, "feature(s)")):
        if X.shape[axis] == 0:
            raise ValueError(f"Found array with 0 {what} (shape={X.shape}) while a minimum of 1 is required.")
    if dtype is None:
        dtype = np.float32 if X.dtype == np.float32 else np.float64
    if X.dtype != dtype:
        X = X.astype(dtype)
    if len(X.chunks[1]) != 1:
        X = X.rechunk({1: -1})
    return X, names


def _as_dask_vector(v, X, name):
    """A 1-D dask array chunked as the rows of ``X`` (numpy input is chunked to match)."""
    import dask.array as da
    import dask.dataframe as dd

    if isinstance(v, (dd.Series, dd.DataFrame)):
        if isinstance(v, dd.DataFrame):
            if len(v.columns) != 1:
                raise ValueError(f"{name} must be one column, got {len(v.columns)}.")
            v = v[v.columns[0]]
        v = v.to_dask_array().compute_chunk_sizes()
        if v.ndim == 1 and v.shape[0] == X.shape[0] and v.chunks[0] != X.chunks[0]:
            # Dask may merge a single column's partitions; a Series lines up with X by position.
            v = v.rechunk({0: X.chunks[0]})
    if not isinstance(v, da.Array):
        v = np.asarray(v if name != "y" else as_label_array(v))
        if v.ndim != 1 or v.shape[0] != X.shape[0]:
            raise ValueError(f"{name} must have shape ({X.shape[0]},), got {v.shape}.")
        return da.from_array(v, chunks=(X.chunks[0],))
    if v.ndim == 2 and v.shape[1] == 1:
        v = v[:, 0]
    if v.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got {v.ndim} dimensions.")
    if v.shape[0] != X.shape[0]:
        raise ValueError(f"{name} has {v.shape[0]} entries but X has {X.shape[0]} rows.")
    if v.chunks[0] != X.chunks[0]:
        raise ValueError(
            f"{name} is chunked by rows {v.chunks[0]} but X by {X.chunks[0]}; give both the same "
            f"row chunks, e.g. {name}.rechunk({{0: X.chunks[0]}})."
        )
    return v


def _scan_chunk(X, y, sw):
    """One partition's facts: bad values, its labels with their total weights (runs on a worker)."""
    X = np.asarray(X)
    try:
        check_finite(X)
        bad = None
    except ValueError as exc:
        bad = str(exc)
    labels = as_label_array(np.asarray(y))
    try:
        if labels.size:
            check_no_missing_labels(labels)
            check_label_targets(labels)
    except ValueError as exc:
        bad = (bad + "; " if bad else "") + f"y: {exc}"
    s = np.ones(labels.shape[0]) if sw is None else np.asarray(sw, dtype=np.float64)
    if sw is not None and (not np.all(np.isfinite(s)) or np.any(s < 0)):
        bad = (bad + "; " if bad else "") + "sample_weight must be finite and non-negative"
    if bad is not None or not labels.size:
        return bad, X.shape[0], [], []
    uniq = sorted_labels(labels)
    codes = label_codes(labels, uniq)
    return None, X.shape[0], uniq.tolist(), np.bincount(codes, weights=s, minlength=uniq.size).tolist()


def _scan(X, y, sw):
    """Check every partition in one pass; ``(classes, weight per class)``, raising on a bad partition."""
    import dask
    from dask import delayed

    parts = zip(X.to_delayed().ravel(), y.to_delayed().ravel(),
                sw.to_delayed().ravel() if sw is not None else [None] * X.numblocks[0])
    results = dask.compute(*[delayed(_scan_chunk)(a, b, c) for a, b, c in parts])
    start = 0
    totals = {}
    for i, (bad, n, labels, weights) in enumerate(results):
        if bad is not None:
            raise ValueError(
                f"partition {i} (rows {start}..{start + n - 1}): {bad.replace('at row', 'at its row')}"
            )
        for label, weight in zip(labels, weights):
            totals[label] = totals.get(label, 0.0) + weight
        start += n
    classes = sorted_labels(as_label_array(list(totals)))
    return classes, np.array([totals[c] for c in classes.tolist()])


def _codes(y, classes):
    import dask.array as da

    return da.map_blocks(label_codes, y, classes, dtype=np.intp)


# -- fit --------------------------------------------------------------------------------


class DaskTrainingData:
    """What a Dask fit keeps for :meth:`SoftmaxRegression.inference`: the loss over the training data.

    Computes the observed information and the sandwich's meat by one pass
    over the chunks each, and hands them to the in-memory inference code.
    """

    def __init__(self, loss, class_counts):
        self.loss = loss
        self.class_counts = class_counts

    @property
    def reference_class(self):
        return self.loss.reference_class

    @property
    def n_classes(self):
        return self.loss.n_classes

    def inference(self, coef, intercept, *, cov_type, classes, feature_names, reference_class,
                  fit_intercept, penalty):
        from ._inference import COV_TYPES, InferenceResult, compute_inference

        if cov_type not in COV_TYPES:
            raise ValueError(f"cov_type must be one of {COV_TYPES}, got {cov_type!r}.")
        w = self.loss.pack(coef, intercept)
        summary = _SummedLoss(self.loss, w, self.class_counts)
        result = compute_inference(
            summary, coef, intercept, cov_type="nonrobust", classes=classes,
            feature_names=feature_names, reference_class=reference_class,
            fit_intercept=fit_intercept, penalty=penalty, check=False,
        )
        if cov_type == "nonrobust":
            return result
        # The sandwich B M B with B the inverse information; compute_inference
        # reports rows per free class with the intercept first, the loss keeps it last.
        order = _display_order(self.loss.n_free, self.loss.n_features, self.loss.fit_intercept)
        M = self.loss.meat(w)[np.ix_(order, order)]
        bread = result.cov_params
        cov = bread @ M @ bread
        cov = 0.5 * (cov + cov.T)
        return InferenceResult(
            result.params, cov_params=cov, classes=result.classes, features=result.features,
            cov_type=cov_type, reference_class=result.reference_class, n_obs=result.n_obs,
            log_likelihood=result.log_likelihood, log_likelihood_null=result.log_likelihood_null,
            penalty=result.penalty, n_classes=result.n_classes,
        )


def _display_order(n_free, n_features, fit_intercept):
    d = n_features + int(fit_intercept)
    per_class = ([d - 1] + list(range(d - 1))) if fit_intercept else list(range(d))
    return np.concatenate([f * d + np.asarray(per_class, dtype=np.intp) for f in range(n_free)])


class _SummedLoss:
    """The face of a loss that the in-memory inference reads, from sums over the chunks.

    The Hessian and the loss at the fitted point come from one pass each (they
    do not change when the intercepts move together); ``y`` and
    ``sample_weight`` stand for the data by one row per class carrying that
    class's weight, which is all the null model's likelihood needs.
    """

    def __init__(self, loss, w, class_counts):
        self._loss, self._w = loss, w
        for name in ("n_classes", "n_features", "fit_intercept", "reference_class",
                     "l2_reg_strength", "sum_sample_weight", "n_free", "n_dof", "n_params"):
            setattr(self, name, getattr(loss, name))
        self.y = np.arange(loss.n_classes)
        self.sample_weight = np.asarray(class_counts, dtype=np.float64)
        self._H = self._f = None

    def pack(self, coef, intercept=None):
        return self._loss.pack(coef, intercept)

    def unpack(self, w):
        return self._loss.unpack(w)

    def hessian(self, w):
        if self._H is None:
            self._H = self._loss.hessian(self._w)
        return self._H

    def loss(self, w):
        if self._f is None:
            self._f = self._loss.loss(self._w)
        return self._f


def dask_fit(model, X, y, sample_weight=None, *, persist="auto"):
    """:meth:`SoftmaxRegression.fit` for Dask ``X``: the same solvers over a :class:`DaskLinearSoftmaxLoss`."""
    from softmaxreg.loss import dask_persist

    model._check_params()
    dtype = normalize_dtype(model.dtype)
    dtype = {"float32": np.float32, "float64": np.float64}.get(dtype)
    X, names = _as_dask_X(X, dtype)
    y = _as_dask_vector(y, X, "y")
    sw = None if sample_weight is None else _as_dask_vector(sample_weight, X, "sample_weight")
    if sw is not None:
        sw = sw.astype(np.float64)
    persisted, (X, y, sw) = dask_persist(persist, X, y, sw)
    classes, class_totals = _scan(X, y, sw)
    if classes.size < 2:
        raise ValueError(
            f"y has only one class ({classes[0]!r}); softmax regression needs at least two classes to fit."
        )
    factor = class_weight_to_sample_weight(model.class_weight, classes, np.arange(classes.size), class_totals)
    weights = class_totals * factor
    S = float(weights.sum())
    if not S > 0:
        raise ValueError("all rows have zero weight after class_weight; nothing to fit.")
    codes = _codes(y, classes)
    if model.class_weight is not None:
        import dask.array as da

        row_factor = da.map_blocks(lambda c, f: f[c], codes, factor, dtype=np.float64)
        sw = row_factor if sw is None else sw * row_factor
    solver = model._resolve_solver()
    reference = model._reference_code(classes)
    l2, l1 = model._penalty_strengths(S)
    loss = DaskLinearSoftmaxLoss(
        X, codes, n_classes=classes.size, sample_weight=sw, fit_intercept=model.fit_intercept,
        l2_reg_strength=l2, reference_class=reference, sum_sample_weight=S, persist=persisted,
    )
    work_dtype = X.dtype
    if model.penalty is None and solver != "sgd":
        # As in memory, an unpenalized MLE must be identified; the rank check needs only the design's
        # Gram matrix (one pass). Separation needs the rows themselves and is not checked here.
        n_columns = X.shape[1] + int(model.fit_intercept)
        if n_columns > RANK_CHECK_MAX_COLUMNS:
            import warnings

            warnings.warn(f"identification check skipped: {n_columns} design columns exceed "
                          f"{RANK_CHECK_MAX_COLUMNS}; collinearity is not checked.", UserWarning, stacklevel=3)
        else:
            gram, n_rows = _design_gram(X, sw, model.fit_intercept)
            check_design_rank(gram, n_rows, fit_intercept=model.fit_intercept, feature_names=names,
                              dtype=work_dtype)
    model.n_features_in_ = int(X.shape[1])
    if names is not None:
        model.feature_names_in_ = names
    elif hasattr(model, "feature_names_in_"):
        del model.feature_names_in_
    warm = model._warm_start_point(loss, classes)
    from ._softmax_regression import _make_rng

    rng = _make_rng(model.random_state)
    if solver == "sgd":
        if warm is None:
            W0 = rng.normal(0.0, 0.01, size=(classes.size, X.shape[1]))
            warm = loss.pack(W0.astype(work_dtype).astype(np.float64), np.zeros(classes.size))
        result = _streaming_sgd(model, loss, warm.astype(work_dtype), l1, rng)
    else:
        x0 = warm if warm is not None else np.zeros(loss.n_params)
        with loss.chunks_kept():
            result = model._run_solver(solver, loss, x0, l1, rng)
    if not np.all(np.isfinite(result.x)):
        raise ValueError(
            f"{solver} produced non-finite coefficients ({result.message}); lower learning_rate "
            "or scale the features."
        )
    with loss.chunks_kept():
        refine_mle(model, solver, loss, result)
    coef, intercept = loss.unpack(np.asarray(result.x, dtype=np.float64))
    set_fitted(model, classes=classes, coef=np.ascontiguousarray(coef, dtype=work_dtype),
               intercept=np.ascontiguousarray(intercept, dtype=work_dtype), result=result,
               solver=solver, training=DaskTrainingData(loss, weights))
    return model


def _design_gram(X, sw, fit_intercept):
    """``(G, n)``: the Gram matrix of the design ``(1, x)`` (intercept first) over the rows of positive
    weight, and their number, summed over the chunks."""
    import dask
    import dask.array as da

    Z = X.astype(np.float64)
    if fit_intercept:
        Z = da.concatenate([da.ones((X.shape[0], 1), chunks=(X.chunks[0], 1)), Z], axis=1)
    n_rows = X.shape[0]
    if sw is not None:
        keep = sw > 0
        Z = Z * keep[:, None]
        n_rows = keep.sum()
    gram, n_rows = dask.compute(Z.T @ Z, n_rows)
    return gram, int(n_rows)


def _streaming_sgd(model, loss, x0, l1, rng):
    """Minibatch SGD that streams the partitions, in a new order each epoch, through the client.

    Each epoch visits every partition once (a permutation of the partitions,
    then of the rows within each); the steps are those of the in-memory
    ``sgd`` solver on that partition, with the whole data's L2 strength.  The
    objective after an epoch is one pass of ``loss``.
    """
    schedule = get_schedule(*model._schedule(), model.max_iter)
    start = time.perf_counter()
    l1_weights = model._l1_weights(loss, l1)
    x = np.array(x0, copy=True)
    velocity = np.zeros_like(x) if model.momentum else None
    history = []
    stop = PlateauStop(model.tol, model.n_iter_no_change, schedule) if model.tol is not None else None
    converged, message = model.tol is None, "ran max_epochs epochs"
    epoch = 0
    for epoch in range(1, model.max_iter + 1):
        for p in rng.permutation(loss.n_chunks):
            Xc, yc, sc = loss.partition(p)
            chunk = _chunk_loss(loss, Xc, yc, sc)
            if chunk is None:
                continue
            res = sgd(
                chunk.minibatch_gradient, x, n_samples=chunk.n_samples,
                batch_size=model._batch_rows(loss.n_samples),
                max_epochs=1, schedule=lambda e, _e=epoch: schedule(_e - 1), momentum=model.momentum,
                rng=rng, tol=None, velocity=velocity, l1=l1_weights,
            )
            x = res.x
        f = loss.loss(x) + (float(l1_weights @ np.abs(x)) if l1_weights is not None else 0.0)
        history.append(f)
        if not np.all(np.isfinite(x)):
            converged, message = False, "diverged (non-finite coefficients); lower learning_rate"
            break
        coef = intercept = None
        if model.callback is not None:
            coef, intercept = loss.unpack(np.asarray(x, dtype=np.float64))
        if model._notify(epoch, f, start, "sgd", None, coef, intercept):
            converged, message = False, "stopped by callback"
            break
        if stop is not None and stop.update(f):
            converged, message = True, stop.message
            break
    from softmaxreg.solvers import OptimizeResult

    return OptimizeResult(x=x, fun=history[-1] if history else float("nan"), n_iter=epoch,
                          converged=converged, history=history, message=message)


def _chunk_loss(loss, Xc, yc, sc):
    s = np.ones(len(yc)) if sc is None else np.asarray(sc, dtype=np.float64)
    if not len(yc) or not s.sum() > 0:
        return None
    return LinearSoftmaxLoss(
        np.ascontiguousarray(Xc), yc, n_classes=loss.n_classes, sample_weight=s,
        fit_intercept=loss.fit_intercept, l2_reg_strength=loss.l2_reg_strength,
        reference_class=loss.reference_class,
    )


def dask_partial_fit(model, X, y, classes=None, sample_weight=None):
    """:meth:`SoftmaxRegression.partial_fit` over the partitions of Dask ``X``, in a random order.

    Each partition is one in-memory ``partial_fit`` call (so ``n_iter_`` grows
    by the number of partitions); the order comes from ``random_state``.
    """
    import dask

    dtype = normalize_dtype(model.dtype)
    dtype = {"float32": np.float32, "float64": np.float64}.get(dtype)
    X, names = _as_dask_X(X, dtype)
    y = _as_dask_vector(y, X, "y")
    sw = None if sample_weight is None else _as_dask_vector(sample_weight, X, "sample_weight")
    if classes is not None and getattr(model, "_partial_state", None) is None:
        given = set(np.asarray(as_label_array(classes)).tolist())
        found, _ = _scan(X, y, sw)
        extra = [c for c in found.tolist() if c not in given]
        if extra:
            raise ValueError(f"y holds labels {extra} that are not in classes={sorted(given, key=str)}.")
    from ._softmax_regression import _make_rng

    order = _make_rng(model.random_state).permutation(X.numblocks[0])
    Xs, ys = X.to_delayed().ravel(), y.to_delayed().ravel()
    ss = sw.to_delayed().ravel() if sw is not None else [None] * len(Xs)
    for p in order:
        Xc, yc, sc = dask.compute(Xs[p], ys[p], ss[p])
        if names is not None:
            import pandas as pd

            Xc = pd.DataFrame(Xc, columns=list(names))
        model.partial_fit(Xc, yc, classes=classes, sample_weight=sc)
    return model


# -- prediction ---------------------------------------------------------------------------


def _light(model):
    """A copy of the fitted model without its training data, to ship to the workers."""
    light = copy.copy(model)
    light._loss = None
    light._inference_cache = {}
    light._partial_state = None
    light.callback = None
    return light


def _block_method(block, model, method):
    names = getattr(model, "feature_names_in_", None)
    if names is not None:  # the columns of the DataFrame the model was fitted on
        import pandas as pd

        block = pd.DataFrame(block, columns=list(names))
    return getattr(model, method)(block)


def dask_predict(model, X, method):
    """``model.<method>(X)`` chunk by chunk, lazily: a Dask array with the row chunks of ``X``."""
    import dask.dataframe as dd
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model)
    if isinstance(X, dd.DataFrame):
        names = getattr(model, "feature_names_in_", None)
        if names is not None and list(X.columns) != list(names):
            raise ValueError(
                f"X has columns {list(X.columns)} but the model was fitted with {list(names)}."
            )
        X = X.to_dask_array()
    if X.ndim != 2 or X.shape[1] != model.n_features_in_:
        raise ValueError(f"X must have shape (n_samples, {model.n_features_in_}), got {X.shape}.")
    if X.dtype not in (np.float32, np.float64):
        X = X.astype(np.float64)
    if len(X.chunks[1]) != 1:
        X = X.rechunk({1: -1})
    light = _light(model)
    K = model.classes_.size
    if method == "predict":
        return X.map_blocks(_block_method, light, method, drop_axis=1, dtype=model.classes_.dtype,
                            meta=np.empty(0, dtype=model.classes_.dtype))
    if method == "decision_function" and K == 2:
        return X.map_blocks(_block_method, light, method, drop_axis=1, dtype=model.coef_.dtype)
    return X.map_blocks(_block_method, light, method, chunks=(X.chunks[0], (K,)), dtype=model.coef_.dtype)


def dask_score(model, X, y, sample_weight=None):
    """Weighted accuracy as a lazy 0-d Dask array (``float(...)`` computes it)."""
    import dask.array as da

    pred = dask_predict(model, X, "predict")
    if not isinstance(y, da.Array):
        y = da.from_array(as_label_array(y), chunks=(pred.chunks[0],)) if not is_dask_collection(y) \
            else y.to_dask_array().compute_chunk_sizes()
    right = da.map_blocks(lambda a, b: (np.asarray(a) == np.asarray(b)).astype(np.float64), pred,
                          y.rechunk({0: pred.chunks[0]}) if not any(np.isnan(pred.chunks[0])) else y,
                          dtype=np.float64)
    if sample_weight is None:
        return right.mean()
    if not is_dask_collection(sample_weight):
        sample_weight = da.from_array(np.asarray(sample_weight, dtype=np.float64), chunks=(right.chunks[0],))
    return (right * sample_weight).sum() / sample_weight.sum()
