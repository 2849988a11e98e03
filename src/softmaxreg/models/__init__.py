"""Estimators with the scikit-learn API."""

from ._calibration import TemperatureScaling, VectorScaling, fit_temperature, fit_vector_scaling
from ._mlp import MLPClassifier
from ._multilabel import MultiLabelLogisticRegression
from ._skipgram import SkipGram, WordNotInVocabularyError
from ._softmax_regression import SoftmaxRegression

__all__ = [
    "MLPClassifier",
    "MultiLabelLogisticRegression",
    "SkipGram",
    "SoftmaxRegression",
    "TemperatureScaling",
    "VectorScaling",
    "WordNotInVocabularyError",
    "fit_temperature",
    "fit_vector_scaling",
]
