"""Objectives over the coefficients of a linear model (the layer solvers see)."""

from ._linear_sigmoid import LinearSigmoidLoss
from ._linear_softmax import LinearSoftmaxLoss

__all__ = ["LinearSigmoidLoss", "LinearSoftmaxLoss"]
