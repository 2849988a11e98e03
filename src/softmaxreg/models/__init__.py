"""Estimators with the scikit-learn API."""

from ._calibration import TemperatureScaling, VectorScaling, calibration_logits, fit_temperature, fit_vector_scaling
from ._mlp import MLPClassifier
from ._multilabel import MultiLabelLogisticRegression
from ._softmax_regression import SoftmaxRegression

__all__ = [
    "MLPClassifier",
    "MultiLabelLogisticRegression",
    "SoftmaxRegression",
    "TemperatureScaling",
    "VectorScaling",
    "calibration_logits",
    "fit_temperature",
    "fit_vector_scaling",
]
