"""The Display objects the plot functions return, and what they share."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["CalibrationDisplay", "CoefficientsDisplay", "ConfusionMatrixDisplay", "TrainingCurveDisplay"]


def require_matplotlib():
    """matplotlib.pyplot, or an ImportError naming the extra to install."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("softmaxreg.plot needs matplotlib: pip install softmaxreg[plot]") from None
    return plt


def axes_for(ax, **subplots):
    """``ax`` checked, or a fresh Axes on a new figure."""
    plt = require_matplotlib()
    if ax is None:
        _, ax = plt.subplots(**subplots)
        return ax
    from matplotlib.axes import Axes

    if not isinstance(ax, Axes):
        raise TypeError(f"ax must be a matplotlib Axes or None, got {type(ax).__name__}")
    return ax


def estimator_of(model):
    """The fitted estimator inside a bundle or calibrator (the model itself otherwise)."""
    inner = getattr(model, "estimator", None)
    est = inner if inner is not None and hasattr(model, "classes_") else model
    if not hasattr(est, "classes_"):
        raise ValueError(f"the {type(est).__name__} is not fitted; call fit before plotting it")
    return est


def check_fitted(model):
    if not hasattr(model, "classes_") or not hasattr(model, "predict_proba"):
        raise ValueError(
            f"expected a fitted classifier with classes_ and predict_proba, got a {type(model).__name__}; "
            "call fit first"
        )
    return model


def class_names(model) -> list[str]:
    names = (getattr(model, "data_info", None) or {}).get("class_names")
    classes = np.asarray(model.classes_)
    if names and all(isinstance(c, (int, np.integer)) and 0 <= c < len(names) for c in classes.tolist()):
        return [str(names[c]) for c in classes.tolist()]
    return [str(c) for c in classes.tolist()]


@dataclass
class _Display:
    ax_: object
    figure_: object = field(init=False)

    def __post_init__(self):
        self.figure_ = self.ax_.figure


@dataclass
class CalibrationDisplay(_Display):
    """A reliability diagram.

    Attributes
    ----------
    ax_, figure_ : matplotlib Axes and Figure
    ece : float
        The expected calibration error the title shows.
    bins : CalibrationBins or tuple of CalibrationBins
        The plotted points: ``bins.confidence`` (x) against ``bins.accuracy`` (y),
        from :func:`softmaxreg.metrics.expected_calibration_error`.
    lines_ : list of Line2D
        One per curve (top-label: one; classwise: one per class).
    """

    ece: float = 0.0
    bins: object = None
    lines_: list = field(default_factory=list)

    @classmethod
    def from_estimator(cls, model, X, y, *, ax=None, **kwargs) -> "CalibrationDisplay":
        """Draw :func:`softmaxreg.plot.calibration` (same keywords) and return the display."""
        from ._evaluation import _calibration

        return _calibration(model, X, y, ax, **kwargs)


@dataclass
class ConfusionMatrixDisplay(_Display):
    """A confusion matrix drawn as an image.

    Attributes
    ----------
    ax_, figure_ : matplotlib Axes and Figure
    confusion_matrix : ndarray of shape (n_classes, n_classes)
        Rows: true class; columns: predicted class
        (:func:`softmaxreg.metrics.confusion_matrix`).
    display_labels : list of str
    im_ : AxesImage
    text_ : ndarray of Text or None
        The cell annotations (None when there are more than 30 classes).
    """

    confusion_matrix: np.ndarray = None
    display_labels: list = None
    im_: object = None
    text_: object = None

    @classmethod
    def from_estimator(cls, model, X, y, *, ax=None, **kwargs) -> "ConfusionMatrixDisplay":
        """Draw :func:`softmaxreg.plot.confusion_matrix` (same keywords) and return the display."""
        from ._evaluation import _confusion_matrix

        return _confusion_matrix(model, X, y, ax, **kwargs)


@dataclass
class CoefficientsDisplay(_Display):
    """Coefficients as a heat map (class by feature) or as one image per class.

    Attributes
    ----------
    ax_, figure_ : matplotlib Axes and Figure
    coef : ndarray of shape (n_classes, n_features)
        The plotted values.
    image_shape : tuple of int or None
        The shape of each class's image, None for a heat map.
    im_ : AxesImage
    """

    coef: np.ndarray = None
    image_shape: tuple | None = None
    im_: object = None

    @classmethod
    def from_estimator(cls, model, *, ax=None, **kwargs) -> "CoefficientsDisplay":
        """Draw :func:`softmaxreg.plot.coefficients` (same keywords) and return the display."""
        from ._fit import _coefficients

        return _coefficients(model, ax, **kwargs)


@dataclass
class TrainingCurveDisplay(_Display):
    """The fit's objective per iteration or epoch.

    Attributes
    ----------
    ax_, figure_ : matplotlib Axes and Figure
    history : ndarray of shape (n_iter,)
        The plotted objective (the estimator's ``history_``).
    line_ : Line2D
    validation_scores : ndarray or None
        Validation accuracy per epoch (an MLP with early stopping), on a second y axis.
    """

    history: np.ndarray = None
    line_: object = None
    validation_scores: np.ndarray | None = None

    @classmethod
    def from_estimator(cls, model, *, ax=None, **kwargs) -> "TrainingCurveDisplay":
        """Draw :func:`softmaxreg.plot.training_curve` (same keywords) and return the display."""
        from ._fit import _training_curve

        return _training_curve(model, ax, **kwargs)
