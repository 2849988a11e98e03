"""Plots of a fitted model on matplotlib (an optional extra: ``pip install softmaxreg[plot]``).

Each function draws on ``ax`` (a new figure when None) and returns that
Axes. Each has a Display class whose ``from_estimator``, in the manner of
scikit-learn's ``*Display.from_estimator``, draws the same plot and returns
the display: the Axes as ``.ax_``, the Figure as ``.figure_``, and the
numbers it plotted (the confusion matrix, the calibration bins, the
coefficients, the history), so a notebook can restyle the plot or reuse the
numbers.

* :func:`calibration` -- reliability diagram with the expected calibration error;
* :func:`confusion_matrix` -- counts or rates, true class by predicted class;
* :func:`coefficients` -- a heat map of ``coef_``, or one image per class for image data;
* :func:`training_curve` -- the objective per iteration or epoch of the fit.

``model`` is a fitted SoftmaxRegression or MLPClassifier, a TemperatureScaling /
VectorScaling around one, or a :class:`~softmaxreg.io.ModelBundle` (which
takes raw features and applies its preprocessing and calibration).
matplotlib is imported on the first call, not on import. The HTML report
(``softmaxreg.report``) draws its own inline SVG and does not use this package.
"""

from ._displays import CalibrationDisplay, CoefficientsDisplay, ConfusionMatrixDisplay, TrainingCurveDisplay
from ._evaluation import calibration, confusion_matrix
from ._fit import coefficients, training_curve

__all__ = [
    "CalibrationDisplay",
    "CoefficientsDisplay",
    "ConfusionMatrixDisplay",
    "TrainingCurveDisplay",
    "calibration",
    "coefficients",
    "confusion_matrix",
    "training_curve",
]
