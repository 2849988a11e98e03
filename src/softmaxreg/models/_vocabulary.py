r"""Prediction over many classes without the n x K logits.

With :math:`K` in the tens of thousands, ``predict`` must not build the
:math:`n \times K` logits to take their argmax, and an :math:`n \times K`
output (``predict_proba``, ``predict_log_proba``, ``decision_function``) is a
choice the caller makes knowingly. These helpers give the labels and the
:math:`k` most probable classes by :func:`~softmaxreg.functional.linear_topk`
(an online top-k over blocks of classes), and the full matrices in row chunks
once asked for.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from softmaxreg.functional import linear_topk, log_softmax, softmax

__all__ = ["LARGE_OUTPUT_ENTRIES", "MANY_CLASSES", "is_large", "check_output_size", "topk_codes", "rowwise"]

# An n_samples x n_classes float64 output above this many entries (256 MiB) is opt-in when the classes are
# a vocabulary (many of them); a few classes over many rows keep the ordinary paths.
LARGE_OUTPUT_ENTRIES = 1 << 25
MANY_CLASSES = 1024
_CHUNK_ENTRIES = 1 << 22


def is_large(n_rows: int, n_classes: int) -> bool:
    """Whether ``n_rows x n_classes`` logits over many classes are too many to build for a prediction."""
    return n_classes >= MANY_CLASSES and n_rows * n_classes > LARGE_OUTPUT_ENTRIES


def check_output_size(n_rows: int, n_classes: int, what: str, allow_large: bool) -> None:
    """Raise unless an ``(n_rows, n_classes)`` result of ``what`` is small or asked for."""
    if allow_large or not is_large(n_rows, n_classes):
        return
    gib = n_rows * n_classes * 8 / 2**30
    raise ValueError(
        f"{what} would return an array of shape ({n_rows}, {n_classes}) ({gib:.1f} GiB of float64); "
        f"use predict(X) for labels or predict_topk(X, k) for the k most probable classes and their "
        f"probabilities, pass fewer rows at a time, or pass allow_large=True to build it anyway"
    )


def _dense_chunks(X, rows):
    for start in range(0, X.shape[0], rows):
        chunk = X[start : start + rows]
        yield start, (chunk.toarray() if sp.issparse(chunk) else chunk)


def topk_codes(X, coef, intercept, k):
    """``(codes, probabilities)`` of the ``k`` most probable classes per row, each of shape (n_samples, k)."""
    if not sp.issparse(X):
        return linear_topk(X, coef, k, intercept)
    codes = np.empty((X.shape[0], k), np.intp)
    probs = np.empty((X.shape[0], k), np.result_type(X.dtype, coef.dtype))
    rows = max(1, _CHUNK_ENTRIES // max(1, X.shape[1]))
    for start, chunk in _dense_chunks(X, rows):
        codes[start : start + chunk.shape[0]], probs[start : start + chunk.shape[0]] = linear_topk(chunk, coef, k, intercept)
    return codes, probs


def rowwise(X, coef, intercept, what, dtype=np.float64):
    """``"logits"``, ``"proba"`` or ``"log_proba"`` of shape (n_samples, n_classes) in ``dtype``,
    built in row chunks (each computed in float64), so that nothing but the output has
    n_samples x n_classes entries."""
    n, k = X.shape[0], coef.shape[0]
    out = np.empty((n, k), dtype)
    rows = max(1, _CHUNK_ENTRIES // k)
    w = coef.T.astype(X.dtype, copy=False)
    for start, chunk in _dense_chunks(X, rows):
        z = np.asarray(chunk @ w, dtype=np.float64)
        z += intercept
        if what == "proba":
            softmax(z, axis=1, out=z)
        elif what == "log_proba":
            z = log_softmax(z, axis=1)
        out[start : start + chunk.shape[0]] = z
    return out
