"""SoftmaxRegression on any Array API namespace and device (scikit-learn's ``array_api_dispatch``).

scikit-learn's convention: with ``sklearn.set_config(array_api_dispatch=True)``
(or ``config_context``), an estimator given arrays of another library (torch,
CuPy, ``array_api_strict``, ...) computes with that library on the arrays'
device, stores its fitted arrays there, and returns results of the input's
type; with dispatch off everything is converted to NumPy as before.
:func:`array_api_dispatch` wraps the estimator's entry points so that they
take the route of this module when, and only when, that applies; the NumPy
path of the estimator is untouched.

What runs where.  The loss (:class:`~softmaxreg.loss.ArrayAPILinearSoftmaxLoss`)
and the solvers keep every array on the device; the host reads scalars (the
objective, inner products, norms).  Arrays of the size of the coefficients
cross only at the ends of a fit: the random start of "sgd" (drawn by NumPy,
as in the NumPy path), a ``callback``'s ``coef``/``intercept`` (NumPy
copies), and ``summary()``/``cov_params()``, whose dense information matrix is
computed on the device and inverted on the host.  Labels that are not numbers
(strings) cannot live on a device: ``classes_`` is then a NumPy array and
``predict`` maps the device codes to labels on the host.
"""

from __future__ import annotations

import copy
import functools
import time

import array_api_compat
import numpy as np

from softmaxreg.functional import log_softmax, softmax
from softmaxreg.loss import LinearSoftmaxLoss, is_foreign_array
from softmaxreg.solvers import get_schedule, lbfgs, newton_cg, proximal, sgd

from ._fitted import refine_mle, set_fitted
from ._vocabulary import check_output_size
from ._validation import as_label_array, class_weight_to_sample_weight, encode_labels, normalize_dtype

__all__ = ["array_api_dispatch", "input_namespace", "to_numpy"]


def input_namespace(X):
    """``(xp, device)`` of ``X`` when scikit-learn's ``array_api_dispatch`` is on and ``X`` is a
    non-NumPy Array API array; None otherwise (the NumPy path).

    scikit-learn's ``get_namespace`` makes the check it makes for its own
    estimators (SciPy's ``SCIPY_ARRAY_API=1`` must be set).
    """
    import sklearn
    from sklearn.utils._array_api import get_namespace

    if not sklearn.get_config()["array_api_dispatch"] or not is_foreign_array(X):
        return None
    if array_api_compat.is_dask_array(X):  # Dask input takes the estimator's map-reduce path
        return None
    get_namespace(X)  # raises scikit-learn's error when SciPy's Array API support is off
    return array_api_compat.array_namespace(X), array_api_compat.device(X)


def to_numpy(a):
    """``a`` as a NumPy array on the host (any Array API array, or anything ``np.asarray`` takes)."""
    if a is None or isinstance(a, np.ndarray) or not array_api_compat.is_array_api_obj(a):
        return a
    from sklearn.utils._array_api import move_to

    return move_to(a, xp=np, device="cpu")


def to_namespace(a, xp, device, dtype=None):
    """``a`` (NumPy, or another namespace's array) as an array of ``xp`` on ``device``."""
    if array_api_compat.is_array_api_obj(a) and not isinstance(a, np.ndarray):
        if array_api_compat.array_namespace(a) is not xp:
            a = to_numpy(a)
        elif array_api_compat.device(a) != device:
            a = xp.asarray(to_numpy(a), device=device)
    out = xp.asarray(a, device=device)
    return out if dtype is None or out.dtype == dtype else xp.astype(out, dtype)


def fitted_on_device(model):
    """Whether the fitted arrays of ``model`` live outside NumPy."""
    return is_foreign_array(getattr(model, "coef_", None))


def host_model(model):
    """A shallow copy of a device-fitted ``model`` whose fitted arrays are NumPy (for NumPy input)."""
    clone = copy.copy(model)
    for name in ("coef_", "intercept_", "classes_"):
        setattr(clone, name, to_numpy(getattr(model, name)))
    clone._loss = None
    clone._partial_state = None
    clone._inference_cache = {}
    return clone


def array_api_dispatch(method):
    """Route an estimator method taking ``X`` first to this module's version under Array API dispatch.

    Input of a foreign namespace with dispatch on runs ``_NAMESPACE[name]``;
    NumPy input (or dispatch off) given to a model fitted on a device runs the
    NumPy method on a NumPy copy of the model (prediction) or refits as usual
    (``_fit``); everything else is the NumPy method itself.
    """
    name = method.__name__

    @functools.wraps(method)
    def wrapper(self, X, *args, **kwargs):
        route = input_namespace(X)
        if route is not None:
            return _NAMESPACE[name](self, X, *route, *args, **kwargs)
        if name not in ("_fit", "_partial_fit") and fitted_on_device(self):
            return method(host_model(self), X, *args, **kwargs)
        if name == "_partial_fit" and fitted_on_device(self):
            raise ValueError(
                "this model was trained on a device (Array API input); continue partial_fit with "
                "arrays of that library and sklearn.set_config(array_api_dispatch=True)."
            )
        return method(self, X, *args, **kwargs)

    return wrapper


# -- fitting ------------------------------------------------------------------------


def _work_dtype(model, X, xp, device):
    """The compute dtype: ``model.dtype``, or float32 for float32 input and float64 (where the device has it)."""
    from sklearn.utils._array_api import supported_float_dtypes

    available = supported_float_dtypes(xp, device)
    dtype = normalize_dtype(model.dtype)
    if dtype == "float64" and xp.float64 not in available:
        raise ValueError(
            f"dtype='float64' is not available on device {device!r}; use dtype='float32' (or None)."
        )
    if dtype == "float32" or (dtype is None and X.dtype == xp.float32) or xp.float64 not in available:
        return xp.float32
    return xp.float64


def _validated_X(model, X, xp, device, reset, dtype=None):
    from sklearn.utils.validation import check_is_fitted, validate_data

    if not reset:
        check_is_fitted(model)
        dtype = model.coef_.dtype if is_foreign_array(model.coef_) else None
    if dtype is None:
        dtype = X.dtype if X.dtype in (xp.float32, xp.float64) else _work_dtype(model, X, xp, device)
    return validate_data(model, X, reset=reset, dtype=dtype, ensure_all_finite=True)


def _labels(y, xp, device):
    """``(classes, codes)``: classes on the device for numeric device labels, else NumPy; codes on the device."""
    if is_foreign_array(y):
        y = to_namespace(y, xp, device)
        if y.ndim != 1:
            raise ValueError(f"y must be 1-D (n_samples,), got shape {tuple(y.shape)}.")
        if xp.isdtype(y.dtype, "real floating") and not bool(xp.all(y == xp.round(y))):
            raise ValueError("y holds continuous values; SoftmaxRegression needs class labels.")
        classes, codes = xp.unique_inverse(y)
        return classes, codes
    classes, codes = encode_labels(as_label_array(y))
    return classes, xp.asarray(codes, device=device)


def device_codes(classes, y):
    """Column index of each label of ``y`` among ``classes`` (sorted), on the device of ``y``/``classes``."""
    ref = y if is_foreign_array(y) else classes
    xp, device = array_api_compat.array_namespace(ref), array_api_compat.device(ref)
    classes, y = to_namespace(classes, xp, device), to_namespace(y, xp, device)
    hit = y[:, None] == classes[None, :]
    if not bool(xp.all(xp.any(hit, axis=1))):
        raise ValueError("y holds a label that is not one of the model's classes; calibrate on data with the "
                         "training labels.")
    return xp.argmax(xp.astype(hit, xp.int32), axis=1)


def _n(a):
    return int(a.shape[0])


def _class_multipliers(class_weight, classes, codes, sw, xp, device, n_classes):
    """Per-row class weights on the device; the per-class arithmetic (n_classes numbers) on the host."""
    if class_weight is None:
        return sw
    onehot = xp.astype(codes[:, None] == xp.arange(n_classes, device=device)[None, :], sw.dtype)
    totals = to_numpy(xp.sum(onehot * sw[:, None], axis=0)).astype(np.float64)
    per_class = class_weight_to_sample_weight(
        class_weight, to_numpy(classes), np.arange(n_classes), sample_weight=totals
    )
    return sw * xp.take(xp.asarray(per_class, dtype=sw.dtype, device=device), codes, axis=0)


def _device_permutation(xp, device, rng):
    """Epoch orders drawn on the device where the library has a generator (torch, CuPy), else by ``rng``."""
    if array_api_compat.is_torch_namespace(xp):
        import torch

        generator = torch.Generator(device=device).manual_seed(int(rng.integers(2**62)))
        return lambda n: torch.randperm(n, generator=generator, device=device)
    if array_api_compat.is_cupy_namespace(xp):  # pragma: no cover - needs a GPU
        import cupy

        state = cupy.random.default_rng(int(rng.integers(2**62)))
        return lambda n: state.permutation(n)
    return lambda n: xp.asarray(rng.permutation(n), device=device)


def _fit(model, X, xp, device, y, sample_weight):
    from ._softmax_regression import _make_rng

    model._check_params()
    X = _validated_X(model, X, xp, device, reset=True, dtype=_work_dtype(model, X, xp, device))
    dtype = X.dtype
    classes, codes = _labels(y, xp, device)
    K = _n(classes)
    if _n(codes) != _n(X):
        raise ValueError(f"y has {_n(codes)} entries but X has {_n(X)} rows.")
    if K < 2:
        raise ValueError("y has only one class; softmax regression needs at least two classes to fit.")
    sw = (xp.ones(_n(X), dtype=dtype, device=device) if sample_weight is None
          else to_namespace(sample_weight, xp, device, dtype))
    if tuple(sw.shape) != (_n(X),):
        raise ValueError(f"sample_weight must have shape ({_n(X)},), got {tuple(sw.shape)}.")
    if not bool(xp.all(xp.isfinite(sw) & (sw >= 0))):
        raise ValueError("sample_weight must be finite and non-negative.")
    sw = _class_multipliers(model.class_weight, classes, codes, sw, xp, device, K)
    total = float(xp.sum(sw))
    if not total > 0:
        raise ValueError("all rows have zero weight (sample_weight and class_weight); nothing to fit.")
    solver = model._resolve_solver()
    host_classes = to_numpy(classes)
    reference = model._reference_code(host_classes)
    l2, l1 = model._penalty_strengths(total)
    loss = LinearSoftmaxLoss(X, codes, n_classes=K, sample_weight=sw, fit_intercept=model.fit_intercept,
                             l2_reg_strength=l2, reference_class=reference)
    rng = _make_rng(model.random_state)
    warm = None
    if model.warm_start and hasattr(model, "coef_") and tuple(model.coef_.shape) == (K, loss.n_features) \
            and np.array_equal(to_numpy(model.classes_), host_classes):
        warm = loss.pack(to_namespace(model.coef_, xp, device, dtype), to_namespace(model.intercept_, xp, device, dtype))
    if warm is not None:
        x0 = warm
    elif solver == "sgd":
        # The NumPy path's start: the same draws, so a seed means the same start.
        W0 = rng.normal(0.0, 0.01, size=(K, loss.n_features))
        x0 = loss.pack(xp.asarray(W0, dtype=dtype, device=device))
    else:
        x0 = xp.zeros(loss.n_params, dtype=dtype, device=device)
    result = _run_solver(model, solver, loss, x0, l1, rng, _device_permutation(xp, device, rng))
    if not bool(xp.all(xp.isfinite(result.x))):
        raise ValueError(
            f"{solver} produced non-finite coefficients ({result.message}); lower learning_rate or scale the features."
        )
    if model.penalty is None and solver != "sgd":
        model._check_identification(HostLoss(loss), *(to_numpy(a) for a in loss.unpack(result.x)), host_classes)
        refine_mle(model, solver, loss, result)
    coef, intercept = loss.unpack(result.x)
    set_fitted(model, classes=classes, coef=coef, intercept=intercept, result=result, solver=solver,
               training=loss)
    return model


def _l1_weights(loss, l1):
    """Per-coordinate L1 weights on the loss's device (None without L1; never on the intercept)."""
    if not l1:
        return None
    xp = loss.xp
    row = xp.full(loss.n_dof, float(l1), dtype=loss.dtype, device=loss.device)
    if loss.fit_intercept:
        row = xp.concat([row[:-1], xp.zeros(1, dtype=loss.dtype, device=loss.device)])
    return xp.concat([row] * loss.n_free)


def _objective(loss, weights):
    if weights is None:
        return loss.loss
    return lambda x: loss.loss(x) + float(weights @ loss.xp.abs(x))


def _run_solver(model, solver, loss, x0, l1, rng, permutation):
    """The estimator's solver call (``SoftmaxRegression._run_solver``) with device-side counters."""
    start = time.perf_counter()
    counts = [0.0, 0.0]  # device scalars once the first minibatch has run

    def on_iteration(x, f, n_iter):
        accuracy = float(counts[0] / counts[1]) if solver == "sgd" and float(counts[1]) else None
        counts[0] = counts[1] = 0.0
        coef = intercept = None
        if model.callback is not None:
            coef, intercept = (to_numpy(a) for a in loss.unpack(x))
        return model._notify(n_iter, f, start, solver, accuracy, coef, intercept)

    if solver == "lbfgs":
        return lbfgs(loss, x0, tol=model.tol, max_iter=model.max_iter, callback=on_iteration)
    if solver == "newton-cg":
        return newton_cg(loss, x0, tol=model.tol, max_iter=model.max_iter, callback=on_iteration)
    weights = _l1_weights(loss, l1)
    if solver == "proximal":
        return proximal(loss, x0, l1=weights if weights is not None else 0.0, tol=model.tol,
                        max_iter=model.max_iter, callback=on_iteration)
    return sgd(
        lambda x, idx: loss.minibatch_gradient(x, idx, counts=counts),
        x0,
        n_samples=loss.n_samples,
        batch_size=model._batch_rows(loss.n_samples),
        max_epochs=model.max_iter,
        schedule=get_schedule(*model._schedule(), model.max_iter),
        momentum=model.momentum,
        rng=rng,
        objective=_objective(loss, weights),
        objectives=(lambda xs: [_objective(loss, weights)(x) for x in xs]),
        tol=model.tol,
        callback=on_iteration if (model.callback is not None or model.verbose) else None,
        l1=weights,
        permutation=permutation,
    )


def _partial_fit(model, X, xp, device, y, classes=None, sample_weight=None):
    from ._softmax_regression import _make_rng

    model._check_params()
    if isinstance(model.class_weight, str):
        raise ValueError("class_weight='balanced' needs all the data at once; pass a dict to partial_fit.")
    fitted = hasattr(model, "coef_")
    state = getattr(model, "_partial_state", None)
    X = _validated_X(model, X, xp, device, reset=not fitted,
                     dtype=None if fitted else _work_dtype(model, X, xp, device))
    dtype = X.dtype
    batch_classes, batch_codes = _labels(y, xp, device)
    if state is None:
        if fitted:
            known = model.classes_
        elif classes is not None and is_foreign_array(classes):
            known = _labels(classes, xp, device)[0]
        elif classes is not None:
            known = encode_labels(np.asarray(as_label_array(classes)))[0]
            if is_foreign_array(batch_classes) and known.dtype.kind in "iuf":
                # numeric labels live on the device, as fit keeps them
                known = xp.asarray(known, dtype=batch_classes.dtype, device=device)
        else:
            known = batch_classes
        state = {"rng": _make_rng(model.random_state), "epochs": 0, "seen_weight": 0.0, "velocity": None,
                 "history": []}
        coef = (to_namespace(model.coef_, xp, device, dtype) if fitted
                else xp.zeros((_n(known), _n(X[0, :])), dtype=dtype, device=device))
        intercept = (to_namespace(model.intercept_, xp, device, dtype) if fitted
                     else xp.zeros(_n(known), dtype=dtype, device=device))
    else:
        known, coef, intercept = model.classes_, model.coef_, model.intercept_
        state = dict(state)
    host_known, host_batch = to_numpy(known), to_numpy(batch_classes)
    index = {c: k for k, c in enumerate(host_known.tolist())}
    missing = [c for c in host_batch.tolist() if c not in index]
    if missing:
        raise ValueError(
            f"y holds labels {missing} that are not among the classes {host_known.tolist()}; on an "
            "Array API device pass classes=[...] (all labels) to the first partial_fit call."
        )
    if _n(known) < 2:
        raise ValueError("partial_fit has seen only one class; pass classes=[...] listing all labels.")
    # Batch codes -> codes among the known classes (a table of n_classes entries).
    table = xp.asarray([index[c] for c in host_batch.tolist()], dtype=batch_codes.dtype, device=device)
    codes = xp.take(table, batch_codes, axis=0)
    sw = (xp.ones(_n(X), dtype=dtype, device=device) if sample_weight is None
          else to_namespace(sample_weight, xp, device, dtype))
    sw = _class_multipliers(model.class_weight, known, codes, sw, xp, device, _n(known))
    batch_total = float(xp.sum(sw))
    if not batch_total > 0:
        raise ValueError("all rows of this batch have zero weight; nothing to learn.")
    state["seen_weight"] += batch_total
    l2, l1 = model._penalty_strengths(state["seen_weight"])
    batch_l2, batch_l1 = model._penalty_strengths(batch_total)
    reference = model._reference_code(host_known)
    common = dict(n_classes=_n(known), sample_weight=sw, fit_intercept=model.fit_intercept, reference_class=reference)
    loss = LinearSoftmaxLoss(X, codes, l2_reg_strength=l2, **common)
    objective = LinearSoftmaxLoss(X, codes, l2_reg_strength=batch_l2, **common)
    x0 = loss.pack(coef, intercept)
    if model.momentum and state["velocity"] is None:
        state["velocity"] = xp.zeros_like(x0)
    counts = [0.0, 0.0]
    start = time.perf_counter()
    result = sgd(
        lambda x, idx: loss.minibatch_gradient(x, idx, counts=counts),
        x0,
        n_samples=loss.n_samples,
        batch_size=model._batch_rows(loss.n_samples),
        max_epochs=1,
        schedule=get_schedule(*model._schedule(), model.max_iter),
        momentum=model.momentum,
        rng=state["rng"],
        objective=_objective(objective, _l1_weights(loss, batch_l1)),
        tol=None,
        velocity=state["velocity"],
        first_epoch=state["epochs"],
        l1=_l1_weights(loss, l1),
        permutation=_device_permutation(xp, device, state["rng"]),
    )
    if not bool(xp.all(xp.isfinite(result.x))):
        raise ValueError("partial_fit produced non-finite coefficients; lower learning_rate.")
    state["epochs"] += 1
    state["history"] = state["history"] + list(result.history)
    coef, intercept = loss.unpack(result.x)
    accuracy = float(counts[0] / counts[1]) if float(counts[1]) else None
    model._notify(state["epochs"], result.history[-1], start, "sgd", accuracy,
                  *((to_numpy(coef), to_numpy(intercept)) if model.callback is not None else (None, None)))
    model.classes_ = known
    model.coef_, model.intercept_ = coef, intercept
    model.n_iter_ = state["epochs"]
    model.history_ = state["history"]
    model.converged_ = False
    model.solver_ = "sgd"
    model._partial_state = state
    model._loss = None
    model._inference_cache = {}
    return model


# -- prediction -------------------------------------------------------------------------


def _logits(model, X, xp, device):
    X = _validated_X(model, X, xp, device, reset=False)
    coef = to_namespace(model.coef_, xp, device, X.dtype)
    Z = X @ coef.T
    if model.fit_intercept:
        Z = Z + to_namespace(model.intercept_, xp, device, X.dtype)
    return Z


def _decision_function(model, X, xp, device, *, allow_large=False):
    check_output_size(X.shape[0], model.classes_.shape[0], "decision_function", allow_large)
    Z = _logits(model, X, xp, device)
    return Z[:, 1] - Z[:, 0] if Z.shape[1] == 2 else Z


def _predict(model, X, xp, device):
    codes = xp.argmax(_logits(model, X, xp, device), axis=1)
    if is_foreign_array(model.classes_):
        return xp.take(to_namespace(model.classes_, xp, device), codes, axis=0)
    return model.classes_[to_numpy(codes)]  # labels that are not numbers live on the host


def _predict_proba(model, X, xp, device, *, allow_large=False):
    check_output_size(X.shape[0], model.classes_.shape[0], "predict_proba", allow_large)
    return softmax(_logits(model, X, xp, device), axis=1)


def _predict_log_proba(model, X, xp, device, *, allow_large=False):
    check_output_size(X.shape[0], model.classes_.shape[0], "predict_log_proba", allow_large)
    return log_softmax(_logits(model, X, xp, device), axis=1)


def _score(model, X, xp, device, y, sample_weight=None):
    predicted = _predict(model, X, xp, device)
    if is_foreign_array(predicted):
        right = xp.astype(predicted == to_namespace(y, xp, device, predicted.dtype), xp.float64
                          if xp.float64 in _floats(xp, device) else xp.float32)
    else:
        right = xp.asarray(predicted == np.asarray(to_numpy(y)), dtype=xp.float32, device=device)
    if sample_weight is None:
        return float(xp.mean(right))
    sw = to_namespace(sample_weight, xp, device, right.dtype)
    return float(xp.sum(sw * right) / xp.sum(sw))


def _floats(xp, device):
    from sklearn.utils._array_api import supported_float_dtypes

    return supported_float_dtypes(xp, device)


_NAMESPACE = {
    "_fit": _fit,
    "_partial_fit": _partial_fit,
    "decision_function": _decision_function,
    "predict": _predict,
    "predict_proba": _predict_proba,
    "predict_log_proba": _predict_log_proba,
    "score": _score,
}


# -- inference --------------------------------------------------------------------------


class HostLoss:
    """A device loss seen from the host, for the statistics code (NumPy in, NumPy out).

    The dense Hessian (the information matrix) and the objective are computed
    on the device by the wrapped :class:`~softmaxreg.loss.ArrayAPILinearSoftmaxLoss`
    and only the result comes back; ``X``, ``y`` and the sample weights are
    copied to the host on first use, for the identification checks and the
    sandwich covariance, which read the rows.
    """

    def __init__(self, loss):
        self._device_loss = loss
        for name in ("n_samples", "n_features", "n_classes", "fit_intercept", "l2_reg_strength",
                     "reference_class", "sum_sample_weight", "n_free", "n_dof", "n_params", "chunk_size"):
            setattr(self, name, getattr(loss, name))
        self._host = {}

    def _copy(self, name):
        if name not in self._host:
            self._host[name] = to_numpy(getattr(self._device_loss, name))
        return self._host[name]

    X = property(lambda self: self._copy("X"))
    y = property(lambda self: self._copy("y").astype(np.intp))
    sample_weight = property(lambda self: self._copy("sample_weight").astype(np.float64))

    def _device(self, a):
        loss = self._device_loss
        return to_namespace(np.asarray(a, dtype=np.float64), loss.xp, loss.device, loss.dtype)

    def pack(self, coef, intercept=None):
        return to_numpy(self._device_loss.pack(self._device(coef), None if intercept is None else self._device(intercept))).astype(np.float64)

    def unpack(self, w):
        return tuple(to_numpy(a).astype(np.float64) for a in self._device_loss.unpack(self._device(w)))

    def loss(self, w):
        return self._device_loss.loss(self._device(w))

    def gradient(self, w):
        return to_numpy(self._device_loss.gradient(self._device(w))).astype(np.float64)

    def loss_gradient(self, w):
        f, g = self._device_loss.loss_gradient(self._device(w))
        return f, to_numpy(g).astype(np.float64)

    def hessian(self, w):
        return to_numpy(self._device_loss.hessian(self._device(w))).astype(np.float64)


def inference_loss(model):
    """The loss :func:`compute_inference` should see: the model's own, or its host view for a device fit."""
    loss = model._loss
    if loss is not None and is_foreign_array(getattr(loss, "X", None)):
        return HostLoss(loss)
    return loss
