r"""Fused, threaded passes over a dense ``X`` for :class:`LinearSoftmaxLoss` and prediction.

One pass streams ``X`` once: each thread takes a contiguous range of rows in
blocks of ``_ROWS``; per block it computes the logits :math:`z = W x + b`
(register tiles of 4 rows and several classes, in vector IR, stored classes-first),
the softmax, the rows' loss and :math:`r = s\,(p - y)` (or, for a
Hessian-vector product, the softmax JVP
:math:`r = s\,p \odot (z_V - \langle p, z_V \rangle)`) with the loops running
along the block's rows so that they vectorize, ``exp`` and ``log`` included,
and then adds :math:`\sum_i r_i x_i^\top` to its own gradient block while
the block's rows are still in L2 (strips of the block's columns held in
registers while the loop runs down its rows, also in vector IR). The tiles prefetch
for the thread's next block as they run, a cache line per row per step of
columns (the logits tiles for its first half, the update's strips for the
second), so that the stream of ``X`` runs under the FMAs at one rate. Nothing
of size ``n x K`` is ever written: the pass reads ``X`` once and writes ``K x p`` numbers per thread.
NumPy needs a GEMM for the logits, five temporaries for the softmax and a
second GEMM that reads ``X`` again.

The same blocks serve the loss at several points at once
(:func:`linear_softmax_losses`: every point's logits from each block) and
prediction (:func:`predict`: probabilities, logits or labels).

Precision: products run in ``X``'s dtype (float32 stays float32, as in the
reference pass), the softmax and the loss in float64, and the gradient is
accumulated in ``X``'s dtype over blocks of ``_BLOCK`` rows, then in float64.

This module imports Numba at the top; it is imported lazily by its callers.
Kernels compile on first use and are cached on disk.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from .columns import GRAD, HESSP, LOSS, columns_softmax, columns_terms, columns_to_rows, rows_to_columns
from .threads import over_ranges
from .tiles import DOT_CLASSES, MAX_ASKED, STRIP_CLASSES, block_logits, block_update
from .vec import JIT

__all__ = ["MIN_ELEMENTS", "PROBA", "LOGITS", "LABELS", "applies", "worthwhile", "linear_softmax_pass",
           "linear_softmax_losses", "predict", "predict_proba"]

# Rows per gradient block: the block's gradient is accumulated in X's dtype.
_BLOCK = 256
# Rows per block: the block's logits, softmax and gradient update run in turn,
# the block's rows staying in L2 between them, the softmax vectorized along rows.
_ROWS = 32

@numba.njit(inline="always", **JIT)
def _tiles(K):
    """Tiles per group of four rows over K classes: tiles of DOT_CLASSES classes, then one per class left over."""
    return K // DOT_CLASSES + K % DOT_CLASSES


@numba.njit(inline="always", **JIT)
def _prefetch_plan(i0, r1, tiles):
    """``(nxt, per, stop)``: the block after the one at ``i0`` (rows ``nxt .. stop - 1``, up to ``r1``)
    is prefetched while this block's ``tiles`` tile calls run, ``per`` rows in each.

    One block ahead is far enough for any memory latency and near enough that
    the rows are still in L2 when their block starts.
    """
    nxt = i0 + _ROWS
    stop = min(nxt + _ROWS, r1)
    per = min((stop - nxt + tiles - 1) // tiles, MAX_ASKED) if stop > nxt else 0
    return nxt, per, stop


@numba.njit(inline="always", **JIT)
def _strips(K):
    """Strip tile calls per block's gradient update over K classes: STRIP_CLASSES-class strips, then one for the
    rest."""
    return K // STRIP_CLASSES + (1 if K % STRIP_CLASSES else 0)


@numba.njit(inline="always", **JIT)
def _prefetch_halves(i0, r1, tiles, strips):
    """``(nxt, per, mid, uper, stop)``: the block after the one at ``i0`` (rows ``nxt .. stop - 1``, up to
    ``r1``), shared between a gradient pass's two phases: rows ``nxt .. mid - 1`` are prefetched by the
    block's ``tiles`` logits tile calls, ``per`` rows in each, and rows ``mid .. stop - 1`` by its
    ``strips`` update strip calls, ``uper`` rows in each.

    The logits and the update each do ``K p`` FMAs per row, so each phase prefetches
    for half the rows: the stream of X then runs at one rate through the whole
    block. With the logits tiles prefetching all of it (:func:`_prefetch_plan`), the
    next block came in at twice the rate during the logits and not at all
    during the update.
    """
    nxt, _, stop = _prefetch_plan(i0, r1, tiles)
    mid = nxt + max(0, stop - nxt) // 2
    per = min((mid - nxt + tiles - 1) // tiles, MAX_ASKED)
    uper = (stop - mid + strips - 1) // strips if stop > mid else 0
    return nxt, per, mid, uper, stop


@numba.njit(inline="always", **JIT)
def _block_softmax(Zt, nb, Pt, S):
    """Pt = softmax of Zt's columns, S[0] their max, S[1] the sum of exp(z - max) (:func:`.columns.columns_softmax`);
    returns how many of the first nb columns have a non-finite logit (their sum is NaN)."""
    columns_softmax(Zt, Pt, S)
    s = S[1]
    bad = 0
    for q in range(nb):
        bad += not (s[q] < np.inf)
    return bad


@numba.njit(inline="always", **JIT)
def _block_terms(i0, nb, Zt, Zvt, Pt, Rt, S, target, sw, what, P, cached):
    """Loss of rows i0 .. i0 + nb and their dloss/dlogits into Rt (classes x rows); returns (loss, bad).

    Rows with a non-finite logit add nothing (their Rt is zero) and count in
    ``bad``. With ``cached`` the probabilities come from ``P`` (a
    Hessian-vector product at the point of the last pass); otherwise, if
    ``P`` has rows, they are stored there. ``target`` holds the labels or the
    target probabilities of every row (:func:`.columns.columns_terms`).
    """
    # The block's rows as slices, indexed from 0: an index i0 + q might be
    # negative to Numba, and its wraparound turns LLVM's vector loads into gathers.
    Pb = P[i0 : i0 + nb]
    bad = 0
    if cached:
        rows_to_columns(Pb, Pt)
    else:
        bad = _block_softmax(Zt, nb, Pt, S)
        if P.shape[0] > 0:
            columns_to_rows(Pt, Pb)
    loss = columns_terms(Zt, Zvt, Pt, Rt, S, target[i0 : i0 + nb], sw[i0 : i0 + nb], nb, what, bad)
    return loss, bad


@numba.njit(**JIT)
def _pass(X, target, sw, W, b, V, vb, what, P, G, gb, T4, S, Rx, Xq, Gb):
    """One pass over the rows of ``X``; adds the gradient (or Hessian-vector product) to ``G`` (K, p) and
    ``gb`` (K,), float64, and returns (loss, bad).

    Compiled serial and without the GIL: :func:`_threaded_pass` runs one call
    per thread on a range of rows. The caller allocates every buffer
    (:func:`_workspace`), so the kernel compiles no allocator.

    ``target`` is the labels (int64, n) or the target probabilities (float64,
    n x K): the pass is compiled for one or the other, as it is first used. ``sw`` are the sample weights divided by their
    sum. ``what`` is a bit set of LOSS, GRAD, HESSP (GRAD and HESSP exclusive).
    ``bad`` counts rows whose logits are not finite (the caller falls back).
    ``P`` (n, K) receives the probabilities, or, for HESSP without LOSS, supplies
    them (then the logits at W are not recomputed: 2 products per row instead of 3);
    pass an empty (0, K) array for neither.
    Blocks of ``_ROWS`` rows go through :func:`.tiles.block_logits`,
    :func:`_block_terms` and :func:`.tiles.block_update`, and the tiles prefetch
    the next block as they go: with a gradient or a Hessian product, the
    logits tiles for its first half and the update's strips for the second
    (:func:`_prefetch_halves`), else the logits tiles for all of it (:func:`_prefetch_plan`).
    """
    n, p = X.shape
    K = W.shape[0]
    accumulate = (what & (GRAD | HESSP)) != 0
    # The loss needs the softmax's row sums, which cached probabilities do not carry.
    cached = (what & HESSP) != 0 and (what & LOSS) == 0 and P.shape[0] == n
    sweeps = (0 if cached else 1) + (1 if what & HESSP else 0)  # logits sweeps per block
    Zt, Zvt, Pt, Rt = T4[0], T4[1], T4[2], T4[3]
    loss = 0.0
    bad = 0
    for i0 in range(0, n, _ROWS):
        nb = min(_ROWS, n - i0)
        tiles = (nb + 3) // 4 * _tiles(K) * sweeps
        if accumulate:
            nxt, per, mid, uper, stop = _prefetch_halves(i0, n, tiles, _strips(K))
        else:
            nxt, per, stop = _prefetch_plan(i0, n, tiles)
            mid, uper = stop, 0
        for sweep in range(sweeps):  # the logits at W, then at V (at V only, with cached probabilities)
            at_v = cached or sweep == 1
            nxt = block_logits(X, i0, nb, V if at_v else W, vb if at_v else b, Zvt if at_v else Zt, Xq, nxt, per,
                               mid)
        lb, bb = _block_terms(i0, nb, Zt, Zvt, Pt, Rt, S, target, sw, what, P, cached)
        loss += lb
        bad += bb
        if accumulate:
            block_update(X, i0, nb, Rt, Rx, Gb, gb, mid, uper, stop)
            if i0 % _BLOCK == _BLOCK - _ROWS or i0 + _ROWS >= n:
                for k in range(K):
                    for j in range(p):
                        G[k, j] += Gb[k, j]
                        Gb[k, j] = 0.0
    return loss, bad


@numba.njit(**JIT)
def _losses_pass(X, target, sw, W, b, K, out, Zt, Pt, Rt, S, Xq, P):
    """Adds to ``out[e]`` the data loss at each of the ``W.shape[0] // K`` points stacked in ``W``;
    returns the number of rows with a non-finite logit.

    Serial and without the GIL like :func:`_pass`, its buffers the caller's
    (``Zt`` of shape (W.shape[0], _ROWS), ``P`` empty). Point ``e``'s
    coefficients are rows ``e K .. (e + 1) K`` of ``W`` (and of ``b``): one
    :func:`.tiles.block_logits` per block of rows makes every point's logits while
    the rows are in L1, so X is read once for all of them; its tiles prefetch
    the next block as they go (:func:`_prefetch_plan`).
    """
    n = X.shape[0]
    M = W.shape[0]
    E = M // K
    bad = 0
    for i0 in range(0, n, _ROWS):
        nb = min(_ROWS, n - i0)
        nxt, per, stop = _prefetch_plan(i0, n, (nb + 3) // 4 * _tiles(M))
        block_logits(X, i0, nb, W, b, Zt, Xq, nxt, per, stop)
        for e in range(E):
            lb, bb = _block_terms(i0, nb, Zt[e * K:(e + 1) * K], Pt, Pt, Rt, S, target, sw, LOSS, P, False)
            out[e] += lb
            bad += bb
    return bad


# What _predict writes: probabilities, logits or each row's most probable class.
PROBA, LOGITS, LABELS = 0, 1, 2


@numba.njit(**JIT)
def _predict(X, W, b, out, labels, what, Zt, Pt, S, Xq):
    """``out`` = softmax(X W^T + b) (PROBA) or X W^T + b (LOGITS), float64, or ``labels`` = each row's
    first largest logit (LABELS). Returns the number of rows with a non-finite logit.

    Serial and without the GIL like :func:`_pass` (:func:`predict` runs one
    call per thread on a range of rows, with buffers of its own: ``Zt`` and ``Pt``
    of shape (K, _ROWS), ``S`` (5, _ROWS), ``Xq`` (4, p)). Each block's tiles
    prefetch the next block as they go (:func:`_prefetch_plan`).
    """
    n = X.shape[0]
    K = W.shape[0]
    bad = 0
    for i0 in range(0, n, _ROWS):
        nb = min(_ROWS, n - i0)
        nxt, per, stop = _prefetch_plan(i0, n, (nb + 3) // 4 * _tiles(K))
        block_logits(X, i0, nb, W, b, Zt, Xq, nxt, per, stop)
        ob = out[i0 : i0 + nb]  # indexed from 0 (see _block_terms)
        if what == PROBA:
            bad += _block_softmax(Zt, nb, Pt, S)
            columns_to_rows(Pt, ob)
            continue
        for q in range(nb):
            check = 0.0  # NaN exactly when some logit of the row is inf or NaN
            for k in range(K):
                check += Zt[k, q] * 0.0
            bad += check != 0.0
        if what == LOGITS:
            columns_to_rows(Zt, ob)
        else:
            lb = labels[i0 : i0 + nb]
            for q in range(nb):
                best = 0
                for k in range(1, K):
                    best = k if Zt[k, q] > Zt[best, q] else best
                lb[q] = best
    return bad


def applies(X) -> bool:
    """Whether the fused kernels can run on ``X``: a dense C-ordered float32/float64 ndarray."""
    return type(X) is np.ndarray and X.ndim == 2 and X.dtype in (np.float32, np.float64) and X.flags.c_contiguous


#: Below this many entries of X a pass takes well under a millisecond either
#: way, and the reference path spares a compilation (or a cache load).
MIN_ELEMENTS = 1 << 18


def worthwhile(X) -> bool:
    """Whether a caller should route a pass over ``X`` to the fused kernels."""
    return applies(X) and X.size >= MIN_ELEMENTS


def _tile_copy(a, dtype):
    """A C-ordered copy of ``a`` in ``dtype`` whose data start on a 64-byte boundary.

    The tiles load W (and V) a vector of 64 bytes at a time: from a boundary, and
    with rows a whole number of cache lines long (784 float32 are 49), no such
    load spans two lines. Alignment is for speed only: any address gives the same bits.

    >>> _tile_copy(np.ones((2, 3)), np.float32).ctypes.data % 64
    0
    """
    a = np.asarray(a)
    dtype = np.dtype(dtype)
    nbytes = a.size * dtype.itemsize
    if nbytes == 0:
        return np.empty(a.shape, dtype=dtype)
    raw = np.empty(nbytes + 64, np.uint8)
    start = -raw.ctypes.data % 64
    out = raw[start : start + nbytes].view(dtype).reshape(a.shape)
    out[...] = a
    return out


def linear_softmax_pass(X, y, sw, coef, intercept, *, loss=True, grad=False, v_coef=None, v_intercept=None,
                        proba=None):
    """Loss, gradient or Hessian-vector product of the mean cross-entropy, in one pass.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32 or float64, C-ordered
    y : ndarray of shape (n_samples,) of int codes, or (n_samples, n_classes) probabilities
    sw : ndarray of shape (n_samples,)
        Sample weights divided by their sum (so the loss is a weighted mean).
    coef : ndarray of shape (n_classes, n_features); intercept : (n_classes,)
    loss, grad : bool
        What to compute; ``v_coef`` (and ``v_intercept``) given means the
        Hessian-vector product instead of the gradient.
    proba : ndarray of shape (n_samples, n_classes), float64, optional
        Without ``v_coef``: filled with the probabilities at ``coef``. With
        ``v_coef``: the probabilities at ``coef`` from an earlier pass, which
        saves recomputing the logits (a third of a Hessian-vector product);
        with ``loss`` too, the logits are recomputed (the loss needs them) and
        ``proba`` is filled again.

    Returns
    -------
    (f, G, gb) or None
        ``f`` the data term of the loss (no penalty), ``G`` of shape
        (n_classes, n_features) and ``gb`` of shape (n_classes,) the gradient
        (or Hessian-vector product) of the data term, float64; ``None`` if some
        logit is not finite (the caller's reference path then decides).

    Examples
    --------
    Two samples (x = 1 with label 0, x = 2 with label 1), weights 1/2, zero
    coefficients: every probability is 1/2 and the loss is log 2. The rows'
    ``s (p - y)`` are (-1/4, 1/4) and (1/4, -1/4), so the gradient is
    ``1 * (-1/4, 1/4) + 2 * (1/4, -1/4) = (1/4, -1/4)`` and the intercept's is 0.

    >>> import numpy as np
    >>> X = np.array([[1.0], [2.0]])
    >>> f, G, gb = linear_softmax_pass(X, np.array([0, 1]), np.array([0.5, 0.5]),
    ...                                np.zeros((2, 1)), np.zeros(2), grad=True)
    >>> bool(np.isclose(f, np.log(2))), G.tolist(), gb.tolist()
    (True, [[0.25], [-0.25]], [0.0, 0.0])
    """
    K = coef.shape[0]
    W = _tile_copy(coef, X.dtype)
    b = np.ascontiguousarray(intercept, dtype=np.float64)
    target = _target(y, K)
    what = LOSS if loss else 0
    if v_coef is not None:
        what |= HESSP
        V = _tile_copy(v_coef, X.dtype)
        vb = np.ascontiguousarray(np.zeros(K) if v_intercept is None else v_intercept, dtype=np.float64)
    else:
        if grad:
            what |= GRAD
        V = W[:0]
        vb = b[:0]
    sw = np.ascontiguousarray(sw, dtype=np.float64)
    if proba is None:
        proba = np.empty((0, K))
    elif proba.shape != (X.shape[0], K) or proba.dtype != np.float64 or not proba.flags.c_contiguous:
        raise ValueError(f"proba must be a C-contiguous float64 array of shape {(X.shape[0], K)}")
    f, G, gb, bad = _threaded_pass(X, target, sw, W, b, V, vb, what, proba)
    if bad:
        return None
    return f, G, gb


def _target(y, K):
    """The kernels' ``target``: int64 labels in ``[0, K)`` (the kernels index by them unchecked), or float64
    target probabilities (n, K)."""
    y = np.asarray(y)
    if y.ndim == 1:
        y = np.ascontiguousarray(y, dtype=np.int64)
        if y.size and not (0 <= y.min() and y.max() < K):
            raise ValueError(f"labels must be class indices in [0, {K}), got values from {y.min()} to {y.max()}")
        return y
    if y.shape[1:] != (K,):
        raise ValueError(f"target probabilities must have {K} columns, got shape {y.shape}")
    return np.ascontiguousarray(y, dtype=np.float64)


def _over_rows(n, work):
    """``[work(rows) for rows in ranges]``: ``n`` rows cut into contiguous ``slice`` ranges, none under
    ``_BLOCK`` rows, one thread each (:func:`.threads.over_ranges`). An input with no rows (an unused
    one) stays empty when sliced."""
    return over_ranges(n, lambda start, stop: work(slice(start, stop)), _BLOCK)


class _Workspace(NamedTuple):
    """A thread's buffers for the kernels, allocated here so that no kernel compiles an allocator."""

    T4: np.ndarray  # (4, K, _ROWS): a block's logits, logits at V, probabilities, dloss/dlogits
    S: np.ndarray  # (5, _ROWS): the softmax's row statistics
    Rx: np.ndarray  # (_ROWS, K) in X's dtype: dloss/dlogits transposed for the update
    Xq: np.ndarray  # (4, p) in X's dtype: the last rows of a range, padded to a group of four
    Gb: np.ndarray  # (K, p) in X's dtype: the gradient of the current _BLOCK rows


def _workspace(K, p, dtype, grad=True):
    """Zeroed buffers for ``K`` classes, ``p`` features and X of ``dtype``; without ``grad`` (prediction,
    losses) the gradient's buffers are empty."""
    k, q = (K, p) if grad else (0, 0)
    return _Workspace(np.zeros((4, K, _ROWS)), np.zeros((5, _ROWS)), np.zeros((_ROWS, k), dtype),
                      np.zeros((4, p), dtype), np.zeros((k, q), dtype))


def _pass_rows(X, target, sw, W, b, V, vb, what, P):
    """:func:`_pass` on one range of rows with fresh buffers: (loss, G, gb, bad)."""
    K, p = W.shape
    G, gb = np.zeros((K, p)), np.zeros(K)
    w = _workspace(K, p, X.dtype)
    loss, bad = _pass(X, target, sw, W, b, V, vb, what, P, G, gb, w.T4, w.S, w.Rx, w.Xq, w.Gb)
    return loss, G, gb, bad


def _threaded_pass(X, target, sw, W, b, V, vb, what, P):
    """:func:`_pass` over row ranges in threads (:func:`_over_rows`), the parts summed."""
    out = _over_rows(X.shape[0], lambda r: _pass_rows(X[r], target[r], sw[r], W, b, V, vb, what, P[r]))
    f = sum(o[0] for o in out)
    G = sum(o[1] for o in out)
    gb = sum(o[2] for o in out)
    return f, G, gb, sum(o[3] for o in out)


def linear_softmax_losses(X, y, sw, coefs, intercepts):
    r"""The data term of the mean cross-entropy at several points, reading ``X`` once for all of them.

    Parameters
    ----------
    X, y, sw
        As for :func:`linear_softmax_pass`.
    coefs : ndarray of shape (n_points, n_classes, n_features)
    intercepts : ndarray of shape (n_points, n_classes)

    Returns
    -------
    ndarray of shape (n_points,) or None
        :math:`\sum_i s_i \,\mathrm{CE}(W_e x_i + b_e, y_i)` for each point
        ``e``, float64; ``None`` if some logit is not finite.

    Examples
    --------
    At zero coefficients every probability is 1/2 (loss log 2); with the
    second class's coefficient 1 on ``x = 0`` and ``x = 1`` (labels 0, 1) the
    rows' losses are log 2 and log(1 + e^-1).

    >>> import numpy as np
    >>> X = np.array([[0.0], [1.0]])
    >>> coefs = np.array([[[0.0], [0.0]], [[0.0], [1.0]]])
    >>> f = linear_softmax_losses(X, np.array([0, 1]), np.array([0.5, 0.5]), coefs, np.zeros((2, 2)))
    >>> np.allclose(f, [np.log(2), (np.log(2) + np.log1p(np.exp(-1))) / 2])
    True
    """
    E, K, p = coefs.shape
    W = _tile_copy(coefs.reshape(E * K, p), X.dtype)
    b = np.ascontiguousarray(intercepts.reshape(E * K), dtype=np.float64)
    target = _target(y, K)
    sw = np.ascontiguousarray(sw, dtype=np.float64)

    def losses(r):
        f = np.zeros(E)
        w = _workspace(K, p, X.dtype, grad=False)
        Zt = np.zeros((E * K, _ROWS))  # every point's logits of a block
        bad = _losses_pass(X[r], target[r], sw[r], W, b, K, f, Zt, w.T4[2], w.T4[3], w.S, w.Xq,
                           np.empty((0, K)))
        return f, bad

    out = _over_rows(X.shape[0], losses)
    if sum(o[1] for o in out):
        return None
    return sum(o[0] for o in out)


def predict(X, coef, intercept, what=PROBA):
    """Probabilities, logits or labels of a linear softmax model in one fused pass, or None.

    ``what`` is PROBA (``softmax(X @ coef.T + intercept)``, float64), LOGITS
    (``X @ coef.T + intercept``, float64; the products in ``X``'s dtype, as
    the reference path) or LABELS (int64 index of each row's first largest
    logit, as ``np.argmax``). None if some logit is not finite: an inf or NaN
    in ``X`` always makes one, so the caller can check ``X`` only then.

    Examples
    --------
    >>> import numpy as np
    >>> X, coef = np.array([[np.log(3.0)], [-1.0]]), np.array([[0.0], [1.0]])
    >>> predict(X, coef, np.zeros(2))
    array([[0.25      , 0.75      ],
           [0.73105858, 0.26894142]])
    >>> predict(X, coef, np.zeros(2), LABELS).tolist(), predict(X, coef, np.zeros(2), LOGITS)[1].tolist()
    ([1, 0], [0.0, -1.0])
    """
    W = _tile_copy(coef, X.dtype)
    n, K = X.shape[0], W.shape[0]
    out = np.empty((n, K) if what != LABELS else (0, K), np.float64)
    labels = np.empty(n if what == LABELS else 0, dtype=np.int64)
    b = np.ascontiguousarray(intercept, dtype=np.float64)

    def rows(r):
        w = _workspace(K, X.shape[1], X.dtype, grad=False)
        return _predict(X[r], W, b, out[r], labels[r], what, w.T4[0], w.T4[2], w.S, w.Xq)

    if sum(_over_rows(n, rows)):
        return None
    return labels if what == LABELS else out


def predict_proba(X, coef, intercept):
    """``softmax(X @ coef.T + intercept)`` in float64, or None if a logit is not finite (:func:`predict`).

    Examples
    --------
    >>> import numpy as np
    >>> predict_proba(np.array([[np.log(3.0)]]), np.array([[0.0], [1.0]]), np.zeros(2))
    array([[0.25, 0.75]])
    """
    return predict(X, coef, intercept, PROBA)
