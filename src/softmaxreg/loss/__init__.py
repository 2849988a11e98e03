"""Objectives over the coefficients of a linear model (the layer solvers see)."""

from ._dask import DaskLinearSoftmaxLoss, dask_persist
from ._linear_sigmoid import LinearSigmoidLoss
from ._linear_softmax import LinearSoftmaxLoss, fused_predict
from ._linear_softmax_xp import ArrayAPILinearSoftmaxLoss, is_foreign_array
from ._scores import score_outer_products

__all__ = [
    "ArrayAPILinearSoftmaxLoss", "DaskLinearSoftmaxLoss", "LinearSigmoidLoss", "LinearSoftmaxLoss",
    "dask_persist", "fused_predict", "is_foreign_array", "score_outer_products",
]
