"""Estimators with the scikit-learn API."""

from ._calibration import TemperatureScaling, VectorScaling
from ._mlp import MLPClassifier
from ._multilabel import MultiLabelLogisticRegression
from ._softmax_regression import SoftmaxRegression

__all__ = [
    "MLPClassifier",
    "MultiLabelLogisticRegression",
    "SoftmaxRegression",
    "TemperatureScaling",
    "VectorScaling",
]
