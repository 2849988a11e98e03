"""Objectives over the coefficients of a linear model (the layer solvers see)."""

from ._linear_sigmoid import LinearSigmoidLoss
from ._linear_softmax import LinearSoftmaxLoss
from ._linear_softmax_xp import ArrayAPILinearSoftmaxLoss, is_foreign_array

__all__ = ["ArrayAPILinearSoftmaxLoss", "LinearSigmoidLoss", "LinearSoftmaxLoss", "is_foreign_array"]
