r"""accuracy, log_loss and brier_score on device arrays (torch, CuPy, array_api_strict, ...).

The NumPy metrics take labels of any hashable type; an array on a device holds
numbers, so here ``y_true`` holds numeric labels whose sorted unique values
(or ``labels``) name the columns of the probability matrix.  Every
reduction runs in the arrays' namespace and on their device; the result is a
Python float (the one number that crosses to the host), as in scikit-learn's
Array API metrics.  Same formulas as :mod:`softmaxreg.metrics._classification`.
"""

from __future__ import annotations

import array_api_compat

from softmaxreg.functional import log_softmax

__all__ = ["any_device_array", "accuracy", "log_loss", "brier_score"]


def any_device_array(*arrays):
    """Whether any argument is an Array API array other than NumPy's."""
    return any(
        array_api_compat.is_array_api_obj(a) and not array_api_compat.is_numpy_array(a) for a in arrays
        if a is not None
    )


def _namespace(*arrays):
    arrays = [a for a in arrays if array_api_compat.is_array_api_obj(a)]
    xp = array_api_compat.array_namespace(*arrays)
    device = array_api_compat.device(arrays[0])
    return xp, device


def _as(xp, a, device, dtype=None):
    if a is None:
        return None
    out = a if array_api_compat.is_array_api_obj(a) else xp.asarray(a, device=device)
    return out if dtype is None or out.dtype == dtype else xp.astype(out, dtype)


def _float(xp, a):
    return a.dtype if xp.isdtype(a.dtype, "real floating") else xp.float32


def _weighted_mean(xp, values, w):
    if w is None:
        return float(xp.mean(values))
    w = xp.astype(w, values.dtype)
    if not bool(xp.all(xp.isfinite(w) & (w >= 0))) or not float(xp.sum(w)) > 0:
        raise ValueError("sample_weight must be finite, non-negative and not all zero.")
    return float(xp.sum(w * values) / xp.sum(w))


def _codes(xp, y_true, labels, n_columns, device):
    """Column index of each label of ``y_true`` (sorted unique ``y_true``, or ``labels``)."""
    if labels is None:
        classes, codes = xp.unique_inverse(y_true)
        if int(classes.shape[0]) != n_columns:
            raise ValueError(
                f"y_true holds {int(classes.shape[0])} distinct labels but the predictions have {n_columns} "
                "columns; pass labels=[...] naming each column."
            )
        return codes
    labels = _as(xp, labels, device, y_true.dtype)
    if int(labels.shape[0]) != n_columns:
        raise ValueError(f"labels has {int(labels.shape[0])} entries but the predictions have {n_columns} columns.")
    hit = y_true[:, None] == labels[None, :]
    if not bool(xp.all(xp.any(hit, axis=1))):
        raise ValueError("y_true holds a label that is not in labels.")
    return xp.argmax(xp.astype(hit, xp.int32), axis=1)


def accuracy(y_true, y_pred, *, sample_weight=None):
    """Weighted fraction of ``y_pred == y_true`` (see :func:`softmaxreg.metrics.accuracy`)."""
    xp, device = _namespace(y_true, y_pred, sample_weight)
    y_true, y_pred = _as(xp, y_true, device), _as(xp, y_pred, device)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true has shape {tuple(y_true.shape)} but y_pred has {tuple(y_pred.shape)}.")
    dtype = xp.float64 if xp.float64 in _floats(xp, device) else xp.float32
    return _weighted_mean(xp, xp.astype(y_true == y_pred, dtype), _as(xp, sample_weight, device))


def log_loss(y_true, y_proba=None, *, log_proba=None, logits=None, labels=None, sample_weight=None,
             normalize=True):
    """Cross-entropy of the true labels (see :func:`softmaxreg.metrics.log_loss`), on the device."""
    if sum(a is not None for a in (y_proba, log_proba, logits)) != 1:
        raise ValueError("pass exactly one of y_proba, log_proba or logits.")
    xp, device = _namespace(y_true, y_proba, log_proba, logits)
    y_true = _as(xp, y_true, device)
    if y_proba is not None:
        p = _checked_proba(xp, _as(xp, y_proba, device))
        eps = float(xp.finfo(p.dtype).eps)
        pc = xp.clip(p, min=eps, max=1 - eps)
        logp = xp.log(pc / xp.sum(pc, axis=1, keepdims=True))
    else:
        z = _as(xp, log_proba if log_proba is not None else logits, device)
        z = xp.astype(z, _float(xp, z))
        if bool(xp.any(xp.isnan(z) | (z == float("inf")))):
            raise ValueError("the log-probabilities or logits must not hold NaN or +inf.")
        logp = z if log_proba is not None else log_softmax(z, axis=1)
        if log_proba is None and bool(xp.any(xp.all(z == -float("inf"), axis=1))):
            raise ValueError("a logits row is -inf in every class: it gives no class any probability.")
    codes = _codes(xp, y_true, labels, int(logp.shape[1]), device)
    onehot = xp.astype(codes[:, None] == xp.arange(int(logp.shape[1]), device=device)[None, :], logp.dtype)
    nll = -xp.sum(xp.where(onehot > 0, logp, xp.zeros_like(logp)), axis=1)
    w = _as(xp, sample_weight, device)
    if normalize:
        return _weighted_mean(xp, nll, w)
    return float(xp.sum(nll if w is None else xp.astype(w, nll.dtype) * nll))


def brier_score(y_true, y_proba, *, labels=None, sample_weight=None):
    """Mean squared distance of ``y_proba`` to the one-hot target (see :func:`softmaxreg.metrics.brier_score`)."""
    xp, device = _namespace(y_true, y_proba)
    y_true = _as(xp, y_true, device)
    p = _checked_proba(xp, _as(xp, y_proba, device))
    codes = _codes(xp, y_true, labels, int(p.shape[1]), device)
    onehot = xp.astype(codes[:, None] == xp.arange(int(p.shape[1]), device=device)[None, :], p.dtype)
    d = p - onehot
    return _weighted_mean(xp, xp.sum(d * d, axis=1), _as(xp, sample_weight, device))


def _checked_proba(xp, p):
    """Probabilities in a float dtype of the namespace; NaN or inf is an error, as on the host."""
    p = xp.astype(p, _float(xp, p))
    if not bool(xp.all(xp.isfinite(p))):
        raise ValueError("y_proba must be finite; it holds NaN or inf.")
    return p


def _floats(xp, device):
    from sklearn.utils._array_api import supported_float_dtypes

    return supported_float_dtypes(xp, device)
