"""Plots that evaluate a model on labelled data: the reliability diagram and the confusion matrix."""

from __future__ import annotations

import numpy as np

from softmaxreg import metrics

from ._displays import CalibrationDisplay, ConfusionMatrixDisplay, axes_for, check_fitted, class_names

__all__ = ["calibration", "confusion_matrix"]


def _labels_of(y, n: int, name: str = "y"):
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{name} must hold one label per row of X ({n}), got shape {y.shape}")
    return y


def calibration(model, X, y, ax=None, *, n_bins: int = 10, strategy: str = "uniform",
                kind: str = "top-label", sample_weight=None) -> "matplotlib.axes.Axes":
    r"""Reliability diagram: the accuracy in each confidence bin against the bin's mean confidence.

    With probabilities :math:`p_i = \mathrm{model.predict\_proba}(X)_i`, the
    top-label diagram bins the rows by :math:`\max_k p_{ik}` and plots, for
    each non-empty bin :math:`B_m`, the mean confidence against the fraction
    of rows whose top class is the true one; a calibrated model lies on the
    diagonal. The title shows the expected calibration error
    :math:`\sum_m \frac{|B_m|}{n} |\mathrm{acc}(B_m) - \mathrm{conf}(B_m)|`.
    The points and the ECE are those of
    :func:`softmaxreg.metrics.expected_calibration_error` with the same
    arguments (``kind="classwise"``: one curve per class).

    Parameters
    ----------
    model : fitted classifier or ModelBundle
    X : array_like or DataFrame of shape (n_samples, n_features)
        Held-out features (raw features for a ModelBundle).
    y : array_like of shape (n_samples,)
        Their true labels.
    ax : matplotlib Axes, optional
        Where to draw (a new figure when None).
    n_bins : int, default=10
    strategy : {"uniform", "quantile"}, default="uniform"
    kind : {"top-label", "classwise"}, default="top-label"
    sample_weight : array_like of shape (n_samples,), optional

    Returns
    -------
    matplotlib Axes
        ``ax``, or the new figure's Axes. :meth:`CalibrationDisplay.from_estimator` draws the same
        and returns the numbers too (``.ece``, ``.bins``, ``.lines_``).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from softmaxreg.models import SoftmaxRegression
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = [0, 0, 1, 1]
    >>> model = SoftmaxRegression().fit(X, y)
    >>> calibration(model, X, y, n_bins=2).get_xlabel()
    'confidence (top probability)'
    >>> disp = CalibrationDisplay.from_estimator(model, X, y, n_bins=2)
    >>> disp.bins.accuracy.tolist()       # every top class is right: accuracy 1 in its bin
    [1.0]
    """
    return _calibration(model, X, y, ax, n_bins=n_bins, strategy=strategy, kind=kind,
                        sample_weight=sample_weight).ax_


def _calibration(model, X, y, ax=None, *, n_bins: int = 10, strategy: str = "uniform",
                 kind: str = "top-label", sample_weight=None) -> CalibrationDisplay:
    """:func:`calibration`, returning the whole :class:`CalibrationDisplay`."""
    check_fitted(model)
    proba = np.asarray(model.predict_proba(X))
    y = _labels_of(y, proba.shape[0])
    ece, bins = metrics.expected_calibration_error(
        y, proba, labels=model.classes_, n_bins=n_bins, strategy=strategy, kind=kind,
        sample_weight=sample_weight, return_bins=True)
    ax = axes_for(ax)
    ax.plot([0, 1], [0, 1], linestyle="--", color="0.6", linewidth=1, label="perfectly calibrated")
    classwise = isinstance(bins, tuple) and not isinstance(bins, metrics.CalibrationBins)
    curves = list(zip(bins, class_names(model))) if classwise else [(bins, "top label")]
    lines = [ax.plot(b.confidence, b.accuracy, marker="o", label=name)[0] for b, name in curves]
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean predicted probability" if classwise else "confidence (top probability)")
    ax.set_ylabel("observed frequency" if classwise else "accuracy")
    ax.set_title(f"Reliability (ECE = {ece:.4f})")
    ax.legend(loc="upper left", fontsize="small")
    return CalibrationDisplay(ax, ece=ece, bins=bins, lines_=lines)


def confusion_matrix(model, X, y, ax=None, *, normalize: str | None = None, sample_weight=None,
                     cmap: str = "Blues") -> "matplotlib.axes.Axes":
    r"""Confusion matrix of ``model.predict(X)`` against ``y``: cell (i, j) counts true i predicted j.

    .. math::

        C_{ij} = \sum_n s_n [y_n = \ell_i] [\hat y_n = \ell_j]

    over the model's classes :math:`\ell`, as
    :func:`softmaxreg.metrics.confusion_matrix` computes it; ``normalize``
    divides by the row sums ("true": recall on the diagonal), the column sums
    ("pred": precision) or the total ("all").

    Parameters
    ----------
    model : fitted classifier or ModelBundle
    X : array_like or DataFrame of shape (n_samples, n_features)
    y : array_like of shape (n_samples,)
    ax : matplotlib Axes, optional
    normalize : {None, "true", "pred", "all"}, default=None
    sample_weight : array_like of shape (n_samples,), optional
    cmap : str, default="Blues"

    Returns
    -------
    matplotlib Axes
        ``ax``, or the new figure's Axes. :meth:`ConfusionMatrixDisplay.from_estimator` draws the
        same and returns the numbers too (``.confusion_matrix``, ``.im_``, ``.text_``).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from softmaxreg.models import SoftmaxRegression
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = ["a", "a", "b", "b"]
    >>> model = SoftmaxRegression().fit(X, y)
    >>> confusion_matrix(model, X, y).get_ylabel()
    'true class'
    >>> ConfusionMatrixDisplay.from_estimator(model, X, y).confusion_matrix
    array([[2, 0],
           [0, 2]])
    """
    return _confusion_matrix(model, X, y, ax, normalize=normalize, sample_weight=sample_weight, cmap=cmap).ax_


def _confusion_matrix(model, X, y, ax=None, *, normalize: str | None = None, sample_weight=None,
                      cmap: str = "Blues") -> ConfusionMatrixDisplay:
    """:func:`confusion_matrix`, returning the whole :class:`ConfusionMatrixDisplay`."""
    check_fitted(model)
    pred = np.asarray(model.predict(X))
    y = _labels_of(y, pred.shape[0])
    cm = metrics.confusion_matrix(y, pred, labels=model.classes_, sample_weight=sample_weight,
                                  normalize=normalize)
    labels = class_names(model)
    ax = axes_for(ax)
    im = ax.imshow(cm, cmap=cmap, interpolation="nearest", vmin=0)
    ax.figure.colorbar(im, ax=ax)
    k = cm.shape[0]
    text = None
    if k <= 30:
        text = np.empty((k, k), dtype=object)
        threshold = (cm.max() + cm.min()) / 2.0
        for i in range(k):
            for j in range(k):
                v = cm[i, j]
                s = f"{v:.2f}" if normalize else (f"{v:g}" if cm.dtype.kind == "f" else str(v))
                text[i, j] = ax.text(j, i, s, ha="center", va="center", fontsize="small",
                                     color="white" if v > threshold else "black")
    ax.set_xticks(range(k), labels=labels, rotation=45 if k > 5 else 0, ha="right" if k > 5 else "center")
    ax.set_yticks(range(k), labels=labels)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title("Confusion matrix" + (f" (normalized over {normalize})" if normalize else ""))
    return ConfusionMatrixDisplay(ax, confusion_matrix=cm, display_labels=labels, im_=im, text_=text)
