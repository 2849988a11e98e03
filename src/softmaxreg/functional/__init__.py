"""The numerical core: softmax and its family, their derivatives, and cross-entropy.

Every function accepts NumPy arrays and any Array API array and returns the
same kind of array on the same device; see :mod:`softmaxreg.functional._array`
for the dtype policy and :mod:`softmaxreg.functional._softmax` for the
numerics contract (special values, accuracy).
"""

from ._cross_entropy import binary_cross_entropy, cross_entropy, cross_entropy_grad, distillation_loss
from ._linear_cross_entropy import linear_cross_entropy, linear_cross_entropy_grad, linear_logsumexp, linear_topk
from ._softmax import (
    all_finite,
    log_sigmoid,
    log_softmax,
    logsumexp,
    sigmoid,
    softmax,
    softmax_jacobian,
    softmax_jvp,
    softmax_vjp,
)

__all__ = [
    "logsumexp",
    "softmax",
    "log_softmax",
    "sigmoid",
    "log_sigmoid",
    "softmax_jacobian",
    "softmax_jvp",
    "softmax_vjp",
    "cross_entropy",
    "cross_entropy_grad",
    "binary_cross_entropy",
    "distillation_loss",
    "linear_cross_entropy",
    "linear_cross_entropy_grad",
    "linear_logsumexp",
    "linear_topk",
    "all_finite",
]
