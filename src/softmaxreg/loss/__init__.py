"""Objectives over the coefficients of a linear model (the layer solvers see)."""

from ._dask import DaskLinearSoftmaxLoss, dask_persist
from ._linear_sigmoid import LinearSigmoidLoss
from ._linear_softmax import LinearSoftmaxLoss

__all__ = ["DaskLinearSoftmaxLoss", "dask_persist", "LinearSigmoidLoss", "LinearSoftmaxLoss"]
