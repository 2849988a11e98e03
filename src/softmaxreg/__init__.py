"""softmaxreg: softmax (multinomial logistic) regression done right.

Exact numerics, analytic gradients, fast training, calibrated probabilities.
The package is a staircase (see docs/design.md): :mod:`softmaxreg.functional`
-> :mod:`softmaxreg.loss` -> :mod:`softmaxreg.solvers` -> :mod:`softmaxreg.models`
-> io / cli / report, with :mod:`softmaxreg.nn` beside the linear tower and
:mod:`softmaxreg.metrics` beside the functional core.

>>> import numpy as np
>>> from softmaxreg import SoftmaxRegression
>>> X = np.array([[0.0], [1.0], [2.0], [3.0]]); y = np.array([0, 0, 1, 1])
>>> SoftmaxRegression(C=10.0).fit(X, y).predict(np.array([[0.2], [2.8]]))
array([0, 1])
"""

from . import functional, metrics, nn, solvers
from .loss import LinearSigmoidLoss, LinearSoftmaxLoss
from .models import (
    IdentificationError,
    InferenceResult,
    MLPClassifier,
    MultiLabelLogisticRegression,
    SkipGram,
    SoftmaxRegression,
    TemperatureScaling,
    VectorScaling,
    WordNotInVocabularyError,
)

__version__ = "0.1.0"

__all__ = [
    "functional",
    "metrics",
    "nn",
    "solvers",
    "LinearSoftmaxLoss",
    "LinearSigmoidLoss",
    "SoftmaxRegression",
    "MultiLabelLogisticRegression",
    "SkipGram",
    "WordNotInVocabularyError",
    "MLPClassifier",
    "TemperatureScaling",
    "VectorScaling",
    "IdentificationError",
    "InferenceResult",
    "__version__",
]
