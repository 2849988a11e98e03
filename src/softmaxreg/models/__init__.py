"""Estimators with the scikit-learn API."""

from ._calibration import TemperatureScaling, VectorScaling
from ._multilabel import MultiLabelLogisticRegression
from ._softmax_regression import SoftmaxRegression

__all__ = [
    "MultiLabelLogisticRegression",
    "SoftmaxRegression",
    "TemperatureScaling",
    "VectorScaling",
]
