"""Plots of what a fit produced: the coefficients and the training curve."""

from __future__ import annotations

import math

import numpy as np

from ._displays import CoefficientsDisplay, TrainingCurveDisplay, axes_for, class_names, estimator_of

__all__ = ["coefficients", "training_curve"]

_MIN_IMAGE_PIXELS = 64  # a perfect square below this (4, 9, 16 features) is tabular data, not an image


def _image_shape(model, n_features: int, image_shape):
    if image_shape is False:
        return None
    if image_shape is not None:
        shape = tuple(int(s) for s in image_shape)
        if len(shape) != 2 or shape[0] * shape[1] != n_features:
            raise ValueError(f"image_shape {image_shape!r} does not hold the {n_features} features; "
                             "give (height, width) with height * width = n_features, or False for a heat map")
        return shape
    stored = (getattr(model, "data_info", None) or {}).get("image_shape")
    if stored and len(stored) == 2 and int(np.prod(stored)) == n_features:
        return tuple(int(s) for s in stored)
    side = math.isqrt(n_features)
    if side * side == n_features and n_features >= _MIN_IMAGE_PIXELS:
        return side, side
    return None


def _feature_names(model, est, n: int):
    names = getattr(model, "feature_names", None) if hasattr(model, "preprocessor") else None
    if names is None and getattr(est, "feature_names_in_", None) is not None:
        names = [str(v) for v in est.feature_names_in_]
    return list(names) if names is not None and len(names) == n else [f"x{j}" for j in range(n)]


def coefficients(model, ax=None, *, image_shape=None, center: bool = False,
                 cmap: str = "RdBu_r") -> "matplotlib.axes.Axes":
    r"""The coefficients ``coef_`` of shape (n_classes, n_features): a heat map, or one image per class.

    Cell (k, j) is :math:`W_{kj}`, the change of class :math:`k`'s logit
    :math:`z_k = W_k \cdot x + b_k` per unit of feature :math:`j` (of the
    features the model sees: after one-hot encoding and standardization for a
    ModelBundle). The colour scale is symmetric about zero. For image data
    (``image_shape``, the bundle's stored image shape, or a perfect-square
    number of features of at least 64, such as 784 = 28 x 28) each class's row
    is drawn as a small image, the classes tiled on the one Axes.

    Parameters
    ----------
    model : fitted SoftmaxRegression, a calibrator around one, or a ModelBundle
    ax : matplotlib Axes, optional
    image_shape : (height, width), False or None, default=None
        None: detect image data as above; False: always a heat map.
    center : bool, default=False
        Subtract the mean over classes from each feature's coefficients
        (:math:`W_{kj} - \bar W_{\cdot j}`: the softmax is unchanged by a shift
        shared by all classes, and centred images read more easily).
    cmap : str, default="RdBu_r"

    Returns
    -------
    matplotlib Axes
        ``ax``, or the new figure's Axes. :meth:`CoefficientsDisplay.from_estimator` draws the
        same and returns the numbers too (``.coef``, ``.image_shape``, ``.im_``).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from softmaxreg.models import SoftmaxRegression
    >>> clf = SoftmaxRegression().fit(np.array([[0.0, 1.0], [1.0, 0.0]]), [0, 1])
    >>> ax = coefficients(clf)
    >>> disp = CoefficientsDisplay.from_estimator(clf)
    >>> disp.coef.shape, disp.image_shape
    ((2, 2), None)
    """
    return _coefficients(model, ax, image_shape=image_shape, center=center, cmap=cmap).ax_


def _coefficients(model, ax=None, *, image_shape=None, center: bool = False,
                  cmap: str = "RdBu_r") -> CoefficientsDisplay:
    """:func:`coefficients`, returning the whole :class:`CoefficientsDisplay`."""
    est = estimator_of(model)
    coef = getattr(est, "coef_", None)
    if coef is None:
        raise ValueError(f"coefficients plots a linear model's coef_; a {type(est).__name__} has none "
                         "(an MLP's weights are layers of coefs_)")
    coef = np.array(coef, dtype=np.float64)
    if coef.ndim != 2:
        raise ValueError(f"coef_ must be 2-D (n_classes, n_features), got shape {coef.shape}")
    if center:
        coef -= coef.mean(axis=0, keepdims=True)
    shape = _image_shape(model, coef.shape[1], image_shape)
    labels = class_names(model)
    lim = float(np.max(np.abs(coef))) or 1.0
    ax = axes_for(ax)
    if shape is None:
        im = ax.imshow(coef, cmap=cmap, vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
        ax.set_yticks(range(coef.shape[0]), labels=labels)
        if coef.shape[1] <= 40:
            ax.set_xticks(range(coef.shape[1]), labels=_feature_names(model, est, coef.shape[1]),
                          rotation=90)
        ax.set_xlabel("feature")
        ax.set_ylabel("class")
    else:
        h, w = shape
        k = coef.shape[0]
        cols = min(k, 5)
        rows = -(-k // cols)
        mosaic = np.full((rows * (h + 1) - 1, cols * (w + 1) - 1), np.nan)
        for c in range(k):
            r0, c0 = (c // cols) * (h + 1), (c % cols) * (w + 1)
            mosaic[r0:r0 + h, c0:c0 + w] = coef[c].reshape(h, w)
            ax.text(c0 + w / 2 - 0.5, r0 - 0.5, labels[c], ha="center", va="bottom", fontsize="small")
        im = ax.imshow(mosaic, cmap=cmap, vmin=-lim, vmax=lim, interpolation="nearest")
        ax.set_axis_off()
    ax.figure.colorbar(im, ax=ax)
    ax.set_title("Coefficients" + (" (centred over classes)" if center else ""),
                 pad=14 if shape is not None else None)
    return CoefficientsDisplay(ax, coef=coef, image_shape=shape, im_=im)


def training_curve(model, ax=None, *, log: bool = False) -> "matplotlib.axes.Axes":
    r"""The objective of the fit per iteration (full-batch solvers) or epoch (SGD, MLP).

    SoftmaxRegression's ``history_`` holds the per-sample objective
    :math:`\frac{1}{\sum_i s_i}\sum_i s_i\,\mathrm{CE}_i + \frac{\mathrm{penalty}(W)}{C \sum_i s_i}`
    after each iteration or epoch; MLPClassifier's the epoch's mean minibatch
    loss plus the penalty (scikit-learn's ``loss_curve_``, which is read when
    ``history_`` is absent). An MLP trained with early stopping also shows its
    validation accuracy per epoch on a second y axis.

    Parameters
    ----------
    model : fitted SoftmaxRegression or MLPClassifier, a calibrator, or a ModelBundle
    ax : matplotlib Axes, optional
    log : bool, default=False
        Logarithmic y axis.

    Returns
    -------
    matplotlib Axes
        ``ax``, or the new figure's Axes. :meth:`TrainingCurveDisplay.from_estimator` draws the
        same and returns the numbers too (``.history``, ``.line_``, ``.validation_scores``).

    Examples
    --------
    >>> import matplotlib; matplotlib.use("Agg")
    >>> from softmaxreg.models import SoftmaxRegression
    >>> clf = SoftmaxRegression(solver="lbfgs").fit(np.array([[0.0], [1.0], [2.0]]), [0, 1, 1])
    >>> training_curve(clf).get_ylabel()
    'objective per sample'
    >>> bool(np.array_equal(TrainingCurveDisplay.from_estimator(clf).history, clf.history_))
    True
    """
    return _training_curve(model, ax, log=log).ax_


def _training_curve(model, ax=None, *, log: bool = False) -> TrainingCurveDisplay:
    """:func:`training_curve`, returning the whole :class:`TrainingCurveDisplay`."""
    est = estimator_of(model)
    history = getattr(est, "history_", None)
    if history is None:
        history = getattr(est, "loss_curve_", None)
    history = np.asarray(history if history is not None else [], dtype=np.float64)
    if history.ndim != 1 or history.size == 0:
        raise ValueError(f"the {type(est).__name__} kept no training history (history_ is empty or "
                         "missing); fit it first")
    epochs = hasattr(est, "coefs_") or getattr(est, "solver_", None) == "sgd"
    unit = "epoch" if epochs else "iteration"
    ax = axes_for(ax)
    x = np.arange(1, history.size + 1)
    line = ax.plot(x, history, marker="." if history.size <= 50 else None,
                   label=f"{type(est).__name__} objective")[0]
    if log:
        ax.set_yscale("log")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(unit)
    ax.set_ylabel("objective per sample")
    ax.set_title("Training curve")
    scores = getattr(est, "validation_scores_", None)
    scores = np.asarray(scores, dtype=np.float64) if scores is not None and len(scores) else None
    if scores is not None:
        twin = ax.twinx()
        twin.plot(np.arange(1, scores.size + 1), scores, color="tab:orange", label="validation accuracy")
        twin.set_ylabel("validation accuracy")
    return TrainingCurveDisplay(ax, history=history, line_=line, validation_scores=scores)
