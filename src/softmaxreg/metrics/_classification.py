r"""Classification and calibration metrics.

Every function takes labels of any hashable type (strings, integers, tuples,
mixed objects) and optional non-negative ``sample_weight`` that acts as a
frequency weight: an integer weight ``m`` on a row gives the same value as the
row repeated ``m`` times.

**Class order.**  Probability-based metrics read the columns of ``y_proba``
in the order of ``labels``; when ``labels`` is None it is the sorted unique
values of ``y_true`` (scikit-learn's convention, and the order of a fitted
estimator's ``classes_``).  Labels that cannot be sorted (mixed types) must
be passed explicitly.

**Binary shorthand.**  With two labels, a 1-D ``y_proba`` is the probability
of the second label ``labels[1]`` (the "positive" class), as in scikit-learn.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from softmaxreg.functional import logsumexp
from softmaxreg.metrics._labels import label_index, object_array, sorted_labels

from . import _array_api as _device

__all__ = [
    "CalibrationBins",
    "PrecisionRecallFscore",
    "accuracy",
    "brier_score",
    "confusion_matrix",
    "expected_calibration_error",
    "log_loss",
    "precision_recall_fscore",
]


# -- input checks ---------------------------------------------------------------


def _column(y, name):
    """``y`` as a 1-D array; a column vector (n, 1) is accepted and raveled."""
    if hasattr(y, "to_numpy"):  # pandas / polars Series
        y = y.to_numpy()
    if isinstance(y, (list, tuple)) and any(isinstance(v, (tuple, frozenset)) for v in y):
        y = object_array(y)  # tuple labels: one label per entry, never a 2-D array
    try:
        y = np.asarray(y)
    except ValueError:  # ragged sequence of sequences
        y = object_array(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D array of labels, got shape {y.shape}; pass one label per sample."
        )
    if y.shape[0] == 0:
        raise ValueError(f"{name} is empty; metrics need at least one sample.")
    return y



def _same_length(*pairs):
    (first_name, first), *rest = pairs
    for name, arr in rest:
        if arr.shape[0] != first.shape[0]:
            raise ValueError(
                f"{name} has {arr.shape[0]} samples but {first_name} has {first.shape[0]}; "
                "they must describe the same samples."
            )


def _sample_weight(sample_weight, n):
    """Validated float64 weights (None stays None)."""
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight)
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"sample_weight must have shape ({n},), got {w.shape}.")
    if not (np.issubdtype(w.dtype, np.number) or w.dtype == bool):
        raise ValueError(f"sample_weight must be numeric, got dtype {w.dtype}.")
    w = w.astype(np.float64)
    if not np.all(np.isfinite(w)):
        bad = int(np.flatnonzero(~np.isfinite(w))[0])
        raise ValueError(f"sample_weight must be finite; entry {bad} is {w[bad]}.")
    if np.any(w < 0):
        bad = int(np.flatnonzero(w < 0)[0])
        raise ValueError(f"sample_weight must be non-negative; entry {bad} is {w[bad]}.")
    if not w.sum() > 0:
        raise ValueError("sample_weight sums to zero; at least one sample needs a positive weight.")
    return w



def _check_labels(labels):
    labels = _column(labels, "labels")
    if len({_hashable(v) for v in labels.tolist()}) != labels.shape[0]:
        raise ValueError("labels must not contain duplicates.")
    return labels


def _hashable(v):
    try:
        hash(v)
    except TypeError:
        raise ValueError(
            f"labels must be hashable, got {v!r} of type {type(v).__name__}."
        ) from None
    return v



def _encode_targets(y_true, labels, n_columns):
    """Class codes of ``y_true`` against ``labels`` (or its sorted unique values)."""
    if labels is None:
        labels = sorted_labels(y_true, mixed="raise")
        if labels.shape[0] != n_columns:
            raise ValueError(
                f"y_true holds {labels.shape[0]} distinct labels but the predictions have "
                f"{n_columns} columns; pass labels=[...] (e.g. the estimator's classes_) to say "
                "which column is which class."
            )
    else:
        labels = _check_labels(labels)
        if labels.shape[0] != n_columns:
            raise ValueError(
                f"labels has {labels.shape[0]} entries but the predictions have {n_columns} "
                "columns; give one label per column."
            )
    codes = label_index(y_true, labels)
    if np.any(codes < 0):
        bad = y_true[int(np.flatnonzero(codes < 0)[0])]
        raise ValueError(f"y_true contains {bad!r}, which is not in labels {labels.tolist()}.")
    return codes, labels


def _proba_matrix(y_proba, name="y_proba"):
    """Validated probabilities as a float (n, K) array; 1-D is the binary shorthand."""
    p = np.asarray(y_proba)
    if not np.issubdtype(p.dtype, np.floating) and not np.issubdtype(p.dtype, np.integer):
        raise ValueError(f"{name} must be numeric, got dtype {p.dtype}.")
    if not np.issubdtype(p.dtype, np.floating):
        p = p.astype(np.float64)
    if p.ndim == 1:
        p = np.stack([1 - p, p], axis=1)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(
            f"{name} must have shape (n_samples, n_classes) with n_classes >= 2, "
            f"or (n_samples,) for two classes; got {np.shape(y_proba)}."
        )
    if not np.all(np.isfinite(p)):
        i, k = np.argwhere(~np.isfinite(p))[0]
        raise ValueError(f"{name} must be finite; row {i}, column {k} is {p[i, k]}.")
    if np.any(p < 0) or np.any(p > 1):
        i, k = np.argwhere((p < 0) | (p > 1))[0]
        raise ValueError(f"{name} must lie in [0, 1]; row {i}, column {k} is {p[i, k]}.")
    tol = np.sqrt(np.finfo(p.dtype).eps) * p.shape[1]
    sums = p.sum(axis=1, dtype=np.float64)
    if np.any(np.abs(sums - 1) > tol):
        i = int(np.argmax(np.abs(sums - 1)))
        raise ValueError(
            f"the rows of {name} must sum to one; row {i} sums to {sums[i]!r}. Pass "
            "probabilities (e.g. predict_proba), or logits=/log_proba= to log_loss."
        )
    return p


def _weighted_mean(values, w):
    if w is None:
        return float(np.mean(values, dtype=np.float64))
    return float(np.dot(w, values) / w.sum())


# -- metrics ----------------------------------------------------------------------


def accuracy(y_true, y_pred, *, sample_weight=None):
    r"""Fraction of correctly predicted labels.

    .. math::

        \mathrm{accuracy} = \frac{\sum_i s_i \,[\hat y_i = y_i]}{\sum_i s_i}

    Parameters
    ----------
    y_true : array_like of shape (n_samples,)
        True labels (any hashable type).
    y_pred : array_like of shape (n_samples,)
        Predicted labels.
    sample_weight : array_like of shape (n_samples,), default=None
        Non-negative frequency weights :math:`s_i` (all ones when None).

    Returns
    -------
    float
        In [0, 1].

    Examples
    --------
    Two of three right; with weights (1, 1, 2) on the rows, 2 of 4:

    >>> from softmaxreg.metrics import accuracy
    >>> accuracy(["cat", "dog", "dog"], ["cat", "dog", "cat"])
    0.666666...
    >>> accuracy(["cat", "dog", "dog"], ["cat", "dog", "cat"], sample_weight=[1, 1, 2])
    0.5
    """
    if _device.any_device_array(y_true, y_pred):  # torch, CuPy, ...: computed on their device
        return _device.accuracy(y_true, y_pred, sample_weight=sample_weight)
    y_true = _column(y_true, "y_true")
    y_pred = _column(y_pred, "y_pred")
    _same_length(("y_true", y_true), ("y_pred", y_pred))
    w = _sample_weight(sample_weight, y_true.shape[0])
    kinds = {y_true.dtype.kind, y_pred.dtype.kind}
    if kinds <= set("biuf") or kinds == {"U"} or kinds == {"S"}:
        correct = y_true == y_pred
    else:
        labels = object_array(dict.fromkeys(_hashable(v) for v in y_true.tolist()))
        correct = label_index(y_true, labels) == label_index(y_pred, labels)
    return _weighted_mean(correct, w)


def log_loss(
    y_true,
    y_proba=None,
    *,
    log_proba=None,
    logits=None,
    labels=None,
    sample_weight=None,
    normalize=True,
):
    r"""Cross-entropy (negative log-likelihood) of the true labels.

    .. math::

        \mathrm{log\_loss} = -\frac{1}{\sum_i s_i} \sum_i s_i \log p_{i, y_i},
        \qquad \log p_{i, y_i} = z_{i, y_i} - \operatorname{logsumexp}(z_i)
        \ \text{from logits } z_i .

    Give exactly one of ``y_proba``, ``log_proba`` or ``logits``.  The
    probability path equals :func:`sklearn.metrics.log_loss`, including its
    clipping of probabilities to ``[eps, 1 - eps]`` (``eps`` of the input
    dtype), so a zero probability costs ``-log(eps)`` (36.04 in float64)
    instead of infinity.  ``log_proba`` (e.g. ``predict_log_proba``) and
    ``logits`` (``decision_function``) are exact and clip nothing: a true
    class far in the tail costs its full ``-log p``.

    Parameters
    ----------
    y_true : array_like of shape (n_samples,)
        True labels.
    y_proba : array_like of shape (n_samples, n_classes) or (n_samples,), default=None
        Predicted probabilities, rows summing to one (1-D: probability of ``labels[1]``).
    log_proba : array_like of shape (n_samples, n_classes), default=None
        Predicted log-probabilities (each row's logsumexp must be 0).
    logits : array_like of shape (n_samples, n_classes), default=None
        Unnormalized scores; ``log_softmax`` is applied.
    labels : array_like of shape (n_classes,), default=None
        Class of each column; sorted unique ``y_true`` when None.
    sample_weight : array_like of shape (n_samples,), default=None
        Non-negative frequency weights.
    normalize : bool, default=True
        Return the weighted mean; False gives the weighted sum.

    Returns
    -------
    float

    Examples
    --------
    The true classes get probabilities 1/2 and 1/4: the loss is
    (log 2 + log 4) / 2 = 1.5 log 2.

    >>> import numpy as np
    >>> from softmaxreg.metrics import log_loss
    >>> log_loss(["a", "b"], [[0.5, 0.5], [0.75, 0.25]])
    1.0397207...
    >>> float(1.5 * np.log(2))
    1.0397207...
    >>> log_loss(["a", "b"], logits=[[0.0, 0.0], [np.log(3), 0.0]])
    1.0397207...
    """
    if _device.any_device_array(y_true, y_proba, log_proba, logits):
        return _device.log_loss(y_true, y_proba, log_proba=log_proba, logits=logits, labels=labels,
                                sample_weight=sample_weight, normalize=normalize)
    given = [a is not None for a in (y_proba, log_proba, logits)]
    if sum(given) != 1:
        raise ValueError("pass exactly one of y_proba, log_proba or logits.")
    y_true = _column(y_true, "y_true")
    if y_proba is not None:
        p = _proba_matrix(y_proba)
        codes, _ = _encode_targets(y_true, labels, p.shape[1])
        _same_length(("y_true", y_true), ("y_proba", p))
        eps = np.finfo(p.dtype).eps
        # scikit-learn clips, then renormalizes each row (a no-op unless a clip bit).
        pc = np.clip(p, eps, 1 - eps).astype(np.float64)
        pc /= pc.sum(axis=1, keepdims=True)
        nll = -np.log(pc[np.arange(p.shape[0]), codes])
    else:
        name = "log_proba" if log_proba is not None else "logits"
        z = np.asarray(log_proba if log_proba is not None else logits)
        if z.ndim != 2 or z.shape[1] < 2:
            raise ValueError(f"{name} must have shape (n_samples, n_classes), got {z.shape}.")
        if not np.issubdtype(z.dtype, np.floating):
            z = z.astype(np.float64)
        _same_length(("y_true", y_true), (name, z))
        codes, _ = _encode_targets(y_true, labels, z.shape[1])
        if np.isnan(z).any() or np.isposinf(z).any():
            i, k = np.argwhere(np.isnan(z) | np.isposinf(z))[0]
            raise ValueError(f"{name} must not hold NaN or +inf; row {i}, column {k} is {z[i, k]}.")
        lse = np.asarray(logsumexp(z, axis=1), dtype=np.float64)
        if log_proba is None and np.isneginf(lse).any():
            i = int(np.flatnonzero(np.isneginf(lse))[0])
            raise ValueError(f"logits row {i} is -inf in every class: it gives no class any probability.")
        if log_proba is not None:
            tol = np.sqrt(np.finfo(z.dtype).eps) * z.shape[1]
            if np.any(np.abs(lse) > tol):
                i = int(np.argmax(np.abs(lse)))
                raise ValueError(
                    f"log_proba row {i} does not normalize (logsumexp = {lse[i]!r}); "
                    "pass logits= for unnormalized scores."
                )
            lse = np.zeros_like(lse)
        nll = lse - z[np.arange(z.shape[0]), codes].astype(np.float64)
    w = _sample_weight(sample_weight, y_true.shape[0])
    if normalize:
        return _weighted_mean(nll, w)
    return float(nll.sum() if w is None else np.dot(w, nll))


def brier_score(y_true, y_proba, *, labels=None, sample_weight=None):
    r"""Multiclass Brier score: mean squared distance to the one-hot target.

    .. math::

        \mathrm{BS} = \frac{1}{\sum_i s_i} \sum_i s_i \sum_{k=1}^{K} (p_{ik} - y_{ik})^2
        \in [0, 2]

    This is Brier's original definition, summed over the classes and **not**
    divided by K.  It equals :func:`sklearn.metrics.brier_score_loss` with
    ``scale_by_half=False``; for two classes scikit-learn's default
    (``scale_by_half="auto"``, the positive class only, range [0, 1]) is
    exactly half of this value.

    Parameters
    ----------
    y_true : array_like of shape (n_samples,)
        True labels.
    y_proba : array_like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities, rows summing to one (1-D: probability of ``labels[1]``).
    labels : array_like of shape (n_classes,), default=None
        Class of each column; sorted unique ``y_true`` when None.
    sample_weight : array_like of shape (n_samples,), default=None
        Non-negative frequency weights.

    Returns
    -------
    float

    Examples
    --------
    Row 1 is right with p = 0.8: (0.8 - 1)^2 + 0.2^2 = 0.08.  Row 2 puts
    0.5 on its true class: 0.5^2 + 0.5^2 = 0.5.  Mean 0.29.

    >>> from softmaxreg.metrics import brier_score
    >>> brier_score([0, 1], [[0.8, 0.2], [0.5, 0.5]])
    0.29
    """
    if _device.any_device_array(y_true, y_proba):
        return _device.brier_score(y_true, y_proba, labels=labels, sample_weight=sample_weight)
    y_true = _column(y_true, "y_true")
    p = _proba_matrix(y_proba)
    _same_length(("y_true", y_true), ("y_proba", p))
    codes, _ = _encode_targets(y_true, labels, p.shape[1])
    d = p.astype(np.float64, copy=True)
    d[np.arange(p.shape[0]), codes] -= 1.0
    per_sample = np.einsum("ik,ik->i", d, d)
    return _weighted_mean(per_sample, _sample_weight(sample_weight, y_true.shape[0]))


class CalibrationBins(NamedTuple):
    """Non-empty bins of a reliability diagram (one entry per bin).

    Attributes
    ----------
    lower, upper : ndarray of shape (n_nonempty_bins,)
        Bin edges; a bin holds the confidences in ``(lower, upper]`` (the
        first bin also holds ``lower`` itself).
    confidence : ndarray of shape (n_nonempty_bins,)
        Weighted mean predicted probability in the bin.
    accuracy : ndarray of shape (n_nonempty_bins,)
        Weighted fraction of the bin whose event happened (prediction correct
        for top-label, true class equal to the bin's class for classwise).
    count : ndarray of shape (n_nonempty_bins,)
        Total sample weight in the bin (the number of samples when unweighted).
    """

    lower: np.ndarray
    upper: np.ndarray
    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray


def _bin_edges(conf, w, n_bins, strategy):
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, n_bins + 1)
    # Equal mass: inverted-CDF quantiles of the (weighted) confidences, so that
    # integer weights act exactly like repeated rows.  The targets m W / M are
    # formed as (m W) / M, exact for integer masses, so that n = 300 rows in
    # 10 bins give exactly 30 per bin (np.linspace's 0.30000000000000004 would not).
    order = np.argsort(conf, kind="stable")
    mass = np.cumsum(np.ones_like(conf) if w is None else w[order])
    targets = np.arange(1, n_bins) * mass[-1] / n_bins
    idx = np.minimum(np.searchsorted(mass, targets, side="left"), conf.shape[0] - 1)
    return np.concatenate([[0.0], conf[order][idx], [1.0]])


def _calibration_bins(conf, hit, w, n_bins, strategy):
    """ECE contribution and the non-empty bins for one (confidence, event) pair."""
    edges = _bin_edges(conf, w, n_bins, strategy)
    # Right-closed bins (e_{m-1}, e_m], the first also holding 0: the assignment
    # of sklearn.calibration.calibration_curve.
    ids = np.searchsorted(edges[1:-1], conf, side="left")
    ww = np.ones_like(conf) if w is None else w
    mass = np.bincount(ids, weights=ww, minlength=n_bins)
    conf_sum = np.bincount(ids, weights=ww * conf, minlength=n_bins)
    hit_sum = np.bincount(ids, weights=ww * hit, minlength=n_bins)
    nonempty = mass > 0
    m = mass[nonempty]
    conf_mean = conf_sum[nonempty] / m
    hit_mean = hit_sum[nonempty] / m
    ece = float(np.sum(m * np.abs(hit_mean - conf_mean)) / ww.sum())
    bins = CalibrationBins(
        lower=edges[:-1][nonempty],
        upper=edges[1:][nonempty],
        confidence=conf_mean,
        accuracy=hit_mean,
        count=m,
    )
    return ece, bins


# Accepted spellings: the names of sklearn.calibration.calibration_curve and the
# descriptive ones ("equal-mass" bins, "class-wise" ECE).
_STRATEGIES = {"uniform": "uniform", "equal-width": "uniform",
               "quantile": "quantile", "equal-mass": "quantile"}
_KINDS = {"top-label": "top-label", "toplabel": "top-label", "top": "top-label",
          "classwise": "classwise", "class-wise": "classwise"}


def expected_calibration_error(
    y_true,
    y_proba,
    *,
    labels=None,
    n_bins=15,
    strategy="uniform",
    kind="top-label",
    sample_weight=None,
    return_bins=False,
):
    r"""Expected calibration error (ECE): binned gap between confidence and frequency.

    Bin the samples by a predicted probability, then compare in each bin the
    mean probability with how often the event happened:

    .. math::

        \mathrm{ECE} = \sum_{m=1}^{M} \frac{W_m}{W}
            \bigl| \mathrm{acc}(B_m) - \mathrm{conf}(B_m) \bigr|,

    with :math:`W_m` the sample weight in bin :math:`B_m`, :math:`W` the total,
    and weighted means inside each bin.

    * ``kind="top-label"`` (Guo et al., 2017): the probability is the top one,
      :math:`\max_k p_{ik}`, and the event is "the top class is the true one"
      (ties go to the first column).
    * ``kind="classwise"`` (Kull et al., 2019): for every class :math:`k`, the
      probability is :math:`p_{ik}` and the event is :math:`y_i = k`; the
      result is the mean over classes of these K calibration errors.

    Bins are right-closed, :math:`(e_{m-1}, e_m]`, the first also holding
    its left edge (the convention of
    :func:`sklearn.calibration.calibration_curve`).  ``strategy="uniform"``
    uses :math:`e_m = m / M`; ``strategy="quantile"`` (equal mass) uses the
    inverted-CDF weighted quantiles of the binned probabilities at
    :math:`m / M`, so every bin holds about :math:`W / M` (ties keep equal
    values together, which can leave bins empty; empty bins contribute nothing).

    Parameters
    ----------
    y_true : array_like of shape (n_samples,)
        True labels.
    y_proba : array_like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities, rows summing to one (1-D: probability of ``labels[1]``).
    labels : array_like of shape (n_classes,), default=None
        Class of each column; sorted unique ``y_true`` when None.
    n_bins : int, default=15
        Number of bins M.
    strategy : {"uniform", "quantile"}, default="uniform"
        Equal-width or equal-mass bins ("equal-width" and "equal-mass" are
        accepted as the same).
    kind : {"top-label", "classwise"}, default="top-label"
        Which probabilities are binned (see above); "top_label" and
        "class-wise" spell the same.
    sample_weight : array_like of shape (n_samples,), default=None
        Non-negative frequency weights.
    return_bins : bool, default=False
        Also return the non-empty bins (for reliability diagrams).

    Returns
    -------
    ece : float
        In [0, 1].
    bins : CalibrationBins or tuple of CalibrationBins
        Only when ``return_bins``: one :class:`CalibrationBins` for top-label,
        one per class (in ``labels`` order) for classwise.

    Examples
    --------
    Four samples, top probabilities 0.9, 0.9, 0.6, 0.6 with two bins: the bin
    (0.5, 1] holds all four, mean confidence 0.75; three are right, so
    accuracy 0.75 and ECE 0.  With ten bins the 0.9 pair (both right) gives
    |1 - 0.9| = 0.1 and the 0.6 pair (one right) |0.5 - 0.6| = 0.1: ECE 0.1.

    >>> from softmaxreg.metrics import expected_calibration_error
    >>> y = [0, 0, 1, 1]
    >>> p = [[0.9, 0.1], [0.9, 0.1], [0.4, 0.6], [0.6, 0.4]]
    >>> expected_calibration_error(y, p, n_bins=2)
    0.0
    >>> ece, bins = expected_calibration_error(y, p, n_bins=10, return_bins=True)
    >>> round(ece, 12), bins.confidence.tolist(), bins.accuracy.tolist(), bins.count.tolist()
    (0.1, [0.6, 0.9], [0.5, 1.0], [2.0, 2.0])
    """
    given_strategy, given_kind = strategy, kind
    strategy = _STRATEGIES.get(str(strategy).lower().replace("_", "-"))
    if strategy is None:
        raise ValueError(
            "strategy must be 'uniform' (equal width) or 'quantile' (equal mass), "
            f"got {given_strategy!r}."
        )
    kind = _KINDS.get(str(kind).lower().replace("_", "-"))
    if kind is None:
        raise ValueError(f"kind must be 'top-label' or 'classwise', got {given_kind!r}.")
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}.")
    n_bins = int(n_bins)
    y_true = _column(y_true, "y_true")
    p = _proba_matrix(y_proba).astype(np.float64)
    _same_length(("y_true", y_true), ("y_proba", p))
    codes, _ = _encode_targets(y_true, labels, p.shape[1])
    w = _sample_weight(sample_weight, y_true.shape[0])
    if kind == "top-label":
        top = np.argmax(p, axis=1)
        conf = p[np.arange(p.shape[0]), top]
        ece, bins = _calibration_bins(conf, (top == codes).astype(np.float64), w, n_bins, strategy)
    else:
        results = [
            _calibration_bins(p[:, k], (codes == k).astype(np.float64), w, n_bins, strategy)
            for k in range(p.shape[1])
        ]
        ece = float(np.mean([r[0] for r in results]))
        bins = tuple(r[1] for r in results)
    return (ece, bins) if return_bins else ece


def _pair_codes(y_true, y_pred, labels, sample_weight):
    y_true = _column(y_true, "y_true")
    y_pred = _column(y_pred, "y_pred")
    _same_length(("y_true", y_true), ("y_pred", y_pred))
    w = _sample_weight(sample_weight, y_true.shape[0])
    if labels is None:
        labels = sorted_labels(y_true, y_pred, mixed="raise")
    else:
        labels = _check_labels(labels)
    return label_index(y_true, labels), label_index(y_pred, labels), labels, w


def confusion_matrix(y_true, y_pred, *, labels=None, sample_weight=None, normalize=None):
    r"""Confusion matrix: entry (i, j) counts samples of true class i predicted as j.

    .. math::

        C_{ij} = \sum_n s_n \,[y_n = \ell_i]\,[\hat y_n = \ell_j]

    Matches :func:`sklearn.metrics.confusion_matrix`: samples whose true or
    predicted label is not in ``labels`` are left out; integer counts unless
    ``sample_weight`` has a float dtype; ``normalize`` divides by row sums
    (``"true"``), column sums (``"pred"``) or the total (``"all"``), with
    0/0 read as 0.

    Parameters
    ----------
    y_true, y_pred : array_like of shape (n_samples,)
        True and predicted labels.
    labels : array_like of shape (n_classes,), default=None
        Row/column order; the sorted union of both label sets when None.
    sample_weight : array_like of shape (n_samples,), default=None
        Non-negative frequency weights.
    normalize : {"true", "pred", "all"}, default=None
        Normalization, if any.

    Returns
    -------
    ndarray of shape (n_classes, n_classes)

    Examples
    --------
    >>> from softmaxreg.metrics import confusion_matrix
    >>> confusion_matrix(["a", "b", "b", "b"], ["a", "b", "a", "b"])
    array([[1, 0],
           [1, 2]])
    >>> confusion_matrix(["a", "b", "b", "b"], ["a", "b", "a", "b"], normalize="true")
    array([[1.        , 0.        ],
           [0.33333333, 0.66666667]])
    """
    if normalize not in (None, "true", "pred", "all"):
        raise ValueError(f"normalize must be None, 'true', 'pred' or 'all', got {normalize!r}.")
    t, p, labels, w = _pair_codes(y_true, y_pred, labels, sample_weight)
    if not np.any(t >= 0):
        raise ValueError("none of the given labels occurs in y_true; check labels=[...].")
    keep = (t >= 0) & (p >= 0)
    n = labels.shape[0]
    flat = t[keep] * n + p[keep]
    if w is None:
        cm = np.bincount(flat, minlength=n * n)
    elif np.asarray(sample_weight).dtype.kind in "biu":
        cm = np.rint(np.bincount(flat, weights=w[keep], minlength=n * n)).astype(np.int64)
    else:
        cm = np.bincount(flat, weights=w[keep], minlength=n * n)
    cm = cm.reshape(n, n)
    if normalize is not None:
        cm = cm.astype(np.float64)
        if normalize == "true":
            div = cm.sum(axis=1, keepdims=True)
        elif normalize == "pred":
            div = cm.sum(axis=0, keepdims=True)
        else:
            div = cm.sum()
        cm = np.divide(cm, div, out=np.zeros_like(cm), where=np.broadcast_to(div, cm.shape) != 0)
    return cm


class PrecisionRecallFscore(NamedTuple):
    """Per-class (or averaged) precision, recall, F-score and support.

    Attributes
    ----------
    precision, recall, fscore : ndarray of shape (n_classes,) or float
    support : ndarray of shape (n_classes,) or None
        Weighted number of true samples per class (None when averaged).
    labels : ndarray of shape (n_classes,)
        The classes, in the order of the arrays.
    """

    precision: np.ndarray | float
    recall: np.ndarray | float
    fscore: np.ndarray | float
    support: np.ndarray | None
    labels: np.ndarray


def precision_recall_fscore(
    y_true,
    y_pred,
    *,
    labels=None,
    sample_weight=None,
    beta=1.0,
    average=None,
    zero_division=0.0,
):
    r"""Precision, recall and F-beta score per class.

    With :math:`TP_k, FP_k, FN_k` the (weighted) true positives, false
    positives and false negatives of class :math:`k` (one-vs-rest):

    .. math::

        P_k = \frac{TP_k}{TP_k + FP_k}, \quad
        R_k = \frac{TP_k}{TP_k + FN_k}, \quad
        F_k = \frac{(1 + \beta^2)\, TP_k}{(1 + \beta^2)\, TP_k + \beta^2 FN_k + FP_k}.

    A ratio with a zero denominator is ``zero_division`` (no warning).  The
    values equal :func:`sklearn.metrics.precision_recall_fscore_support`.

    Parameters
    ----------
    y_true, y_pred : array_like of shape (n_samples,)
        True and predicted labels.
    labels : array_like, default=None
        Classes to report, in order; the sorted union of both label sets when None.
    sample_weight : array_like of shape (n_samples,), default=None
        Non-negative frequency weights.
    beta : float, default=1.0
        Weight of recall in the F-score (1: the F1 score).
    average : {None, "macro", "weighted", "micro"}, default=None
        None: per-class arrays.  "macro": unweighted mean over ``labels``;
        "weighted": mean weighted by support; "micro": from the summed counts.
    zero_division : float, default=0.0
        Value of a ratio whose denominator is zero; with ``np.nan`` such a
        class is left out of the "macro" and "weighted" averages, as in scikit-learn.

    Returns
    -------
    PrecisionRecallFscore

    Examples
    --------
    Class "a": predicted twice, right once (P = 1/2), one true sample found
    (R = 1), F1 = 2/3.  Class "b": predicted once and right (P = 1), two true
    samples (R = 1/2), F1 = 2/3.

    >>> from softmaxreg.metrics import precision_recall_fscore
    >>> r = precision_recall_fscore(["a", "b", "b"], ["a", "b", "a"])
    >>> r.precision.tolist(), r.recall.tolist(), r.support.tolist(), r.labels.tolist()
    ([0.5, 1.0], [1.0, 0.5], [1, 2], ['a', 'b'])
    >>> r.fscore
    array([0.66666667, 0.66666667])
    """
    if average not in (None, "macro", "weighted", "micro"):
        raise ValueError(
            f"average must be None, 'macro', 'weighted' or 'micro', got {average!r}."
        )
    beta = float(beta)
    if not (np.isfinite(beta) and beta >= 0):
        raise ValueError(f"beta must be a finite number >= 0, got {beta}.")
    t, p, labels, w = _pair_codes(y_true, y_pred, labels, sample_weight)
    n = labels.shape[0]
    ww = np.ones(t.shape[0]) if w is None else w
    hit = (t == p) & (t >= 0)
    tp = np.bincount(t[hit], weights=ww[hit], minlength=n)
    pred = np.bincount(p[p >= 0], weights=ww[p >= 0], minlength=n)
    true = np.bincount(t[t >= 0], weights=ww[t >= 0], minlength=n)
    if average == "micro":
        tp, pred, true = tp.sum(), pred.sum(), true.sum()

    def ratio(num, den):
        num, den = np.asarray(num, float), np.asarray(den, float)
        return np.divide(num, den, out=np.full(num.shape, float(zero_division)), where=den != 0)

    b2 = beta * beta
    precision = ratio(tp, pred)
    recall = ratio(tp, true)
    fscore = ratio((1 + b2) * tp, (1 + b2) * tp + b2 * (true - tp) + (pred - tp))
    support = true.astype(np.int64) if w is None and average is None else true
    if average is None:
        return PrecisionRecallFscore(precision, recall, fscore, support, labels)
    if average == "micro":
        return PrecisionRecallFscore(float(precision), float(recall), float(fscore), None, labels)
    avg_w = None if average == "macro" else true
    if avg_w is not None and avg_w.sum() == 0:
        z = float(zero_division)
        return PrecisionRecallFscore(z, z, z, None, labels)
    return PrecisionRecallFscore(
        _nanaverage(precision, avg_w), _nanaverage(recall, avg_w), _nanaverage(fscore, avg_w), None, labels,
    )


def _nanaverage(values, weights):
    """The (weighted) mean over the entries that are not NaN, as scikit-learn averages per-class scores
    (``zero_division=np.nan`` leaves a class out of the average); NaN when every entry is."""
    keep = ~np.isnan(values)
    if not keep.any():
        return float("nan")
    w = None if weights is None else np.asarray(weights, dtype=float)[keep]
    if w is not None and not w.sum() > 0:
        w = None
    return float(np.average(values[keep], weights=w))
