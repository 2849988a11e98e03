"""The native kernels: Numba code with hand-written LLVM IR for NumPy float32/float64, beneath functional and loss.

Laid out by idea, as PyTorch's CPU kernels are over ``ATen/cpu/vec``:

==============  =================================================================
``cpu``         which vector instructions to use (``SOFTMAXREG_DISABLE_AVX512``)
``cache``       Numba's disk cache: stale after any edit here, safe to share
``vec``         vector primitives in IR: loads, stores, transposes, lane sums
``mathfn``      the one ``exp`` and the one ``log1p`` of every kernel
``blocks``      the IR of short rows: a block of rows through max, exp and sums
``rows``        the softmax family on rows (softmax, log_softmax, logsumexp)
``labels``      cross-entropy with integer labels and its gradient
``tiles``       the register tiles of the fused linear pass (IR)
``columns``     the fused linear pass's row-wise steps on a block: softmax, loss, dloss/dlogits (IR)
``linear``      the fused linear-softmax pass: loss, gradient, Hessian product, prediction
``sgd``         one epoch of minibatch SGD, the features split over threads
``threads``     the serial kernels run on a range of the work per thread
==============  =================================================================

:mod:`softmaxreg.functional` and :mod:`softmaxreg.loss` call only the entry
points exported here. Importing this package imports Numba, so its callers
import it on first use; every kernel compiles on its first call (per dtype
and path) and is cached on disk. The reference paths (plain NumPy / Array
API) are the specification: every kernel is tested against them bit for bit.
"""

from __future__ import annotations

from .cpu import AVX512, DISABLE_AVX512
from . import cache as _cache  # noqa: F401 (before any kernel is defined: see the module)
from .labels import cross_entropy_labels
from .linear import LABELS, LOGITS, PROBA, linear_softmax_losses, linear_softmax_pass
from .linear import MIN_ELEMENTS as LINEAR_MIN_ELEMENTS
from .linear import applies as linear_applies
from .linear import predict as linear_predict
from .linear import worthwhile as linear_worthwhile
from .rows import LOG_SOFTMAX, LOGSUMEXP, MIN_SIZE, SOFTMAX, all_finite, applies, shifted_exp, softmax_family
from .sgd import default_threads, sgd_epoch

_cache.lock_package_index_writes()

__all__ = [
    "AVX512",
    "DISABLE_AVX512",
    "MIN_SIZE",
    "SOFTMAX",
    "LOG_SOFTMAX",
    "LOGSUMEXP",
    "applies",
    "all_finite",
    "shifted_exp",
    "softmax_family",
    "cross_entropy_labels",
    "LINEAR_MIN_ELEMENTS",
    "PROBA",
    "LOGITS",
    "LABELS",
    "linear_applies",
    "linear_worthwhile",
    "linear_softmax_pass",
    "linear_softmax_losses",
    "linear_predict",
    "sgd_epoch",
    "default_threads",
]
