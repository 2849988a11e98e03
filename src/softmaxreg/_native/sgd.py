r"""One epoch of minibatch SGD for :class:`LinearSoftmaxLoss`, fused and split over threads.

A batch is about 8 MFLOP (logits and gradient of 256 rows of 784 features
and 10 classes) and the next batch needs the updated weights, so the threads
must meet once per batch. They split the *features*, not the rows: the
columns fall into fixed blocks ``J_b`` (multiples of 16 columns), each thread
owns a run of blocks and, per batch,

1. computes the partial logits :math:`\sum_{j \in J_b} x_{ij} W_{kj}` of every
   row of the batch for each of its blocks (rows read through the
   permutation, never copied);
2. meets the other threads at a spin barrier (one per batch);
3. adds up the blocks' partial logits (in block order, in every thread),
   takes the softmax (the kernels' one exp, :func:`.mathfn.exp64`) and the residuals
   :math:`r_i = s'_i (p_i - y_i)`, which every thread repeats (256 x 10
   numbers: cheaper than a second barrier);
4. updates its own columns, :math:`W_{kJ} \mathrel{-}= \eta\,(\frac1B \sum_i r_{ik} x_{iJ} + \lambda W_{kJ})`,
   with the batch's rows still in its cache, and meanwhile prefetches its
   part of the next batch's rows (random rows defeat the hardware prefetcher).

A thread writes only its own columns, so nothing else needs a barrier; the
partial logits are double-buffered by batch parity, so a thread may start
the next batch while another still reads this one's. Since the blocks do
not depend on the threads, neither does the result: one thread or several
give the same bits. The threads are plain Python threads running the
compiled worker without the GIL, so all are sure to run at once (a spin
barrier inside a ``prange`` could deadlock if the threading layer ran two
chunks on one thread). A waiting thread spins with ``pause``, then yields
its core; when the machine has no free core for the partner (thread 0 had to
yield in a few batches), thread 0 takes over all blocks for the rest of the
epoch, so a loaded machine costs a few batches, not a stall at every one.

Precision as in the reference step: products in ``X``'s dtype, the softmax
in float64, the coefficients (and the momentum buffer) stored in ``X``'s
dtype after every step.

This module imports Numba at the top; it is imported lazily by its callers.
Kernels compile on first use and are cached on disk.
"""

from __future__ import annotations

import os
import platform
import sys

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from .mathfn import exp64
from .threads import run_threads
from .vec import JIT, element_pointer

__all__ = ["sgd_epoch", "default_threads"]

# Flags of different threads live this many int64 apart (128 bytes): no
# false sharing between the spinning threads.
_STRIDE = 16
# Columns per thread are a multiple of this (a 64-byte line of float32).
_ALIGN = 16
# Below this many features per thread a batch is too little work to split.
_MIN_COLUMNS = 128
# Spins (with ``pause``) before a waiting thread starts yielding its core.
_SPINS = 1000
# Batches in which thread 0 had to yield before it goes on alone. Not fewer:
# another library's OpenMP region just before (a BLAS call) may leave a
# thread spinning for a while, which costs a few such batches at an epoch's start.
_SOLO_AFTER = 8

_X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")
_yield = types.ExternalFunction("SwitchToThread" if sys.platform == "win32" else "sched_yield", types.int32())


@intrinsic
def _load_acquire(typingctx, arr, idx):
    """``arr[idx]`` as an atomic load with acquire ordering."""
    sig = arr.dtype(arr, idx)

    def codegen(context, builder, signature, args):
        ptr = element_pointer(context, builder, signature, args)
        return builder.load_atomic(ptr, "acquire", signature.args[0].dtype.bitwidth // 8)

    return sig, codegen


@intrinsic
def _store_release(typingctx, arr, idx, val):
    """``arr[idx] = val`` as an atomic store with release ordering."""
    sig = types.void(arr, idx, arr.dtype)

    def codegen(context, builder, signature, args):
        ptr = element_pointer(context, builder, signature, args)
        builder.store_atomic(args[2], ptr, "release", signature.args[0].dtype.bitwidth // 8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _pause(typingctx):
    """The x86 spin-wait hint (``pause``); nothing elsewhere."""
    sig = types.void()

    def codegen(context, builder, signature, args):
        if _X86:
            fnty = ir.FunctionType(ir.VoidType(), [])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.x86.sse2.pause")
            builder.call(fn, [])
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(**JIT)
def _arrive_and_wait(flags, t, T, phase):
    """Announce that thread ``t`` reached ``phase``; wait until threads 0..T-1 have.

    Returns how many times this thread gave up its core while waiting, or -1
    if a thread aborted (flag ``T``).
    """
    _store_release(flags, t * _STRIDE, phase)
    yields = 0
    for u in range(T):
        spins = 0
        while _load_acquire(flags, u * _STRIDE) < phase:
            if _load_acquire(flags, T * _STRIDE) != 0:
                return -1
            if spins < _SPINS:
                _pause()
                spins += 1
            else:
                _yield()
                yields += 1
    return yields


@numba.njit(inline="always", **JIT)
def _split(t, T, p):
    """First column of thread ``t`` of ``T`` over ``p`` columns (multiples of _ALIGN)."""
    if t >= T:
        return p
    return min(p, (t * p // T + _ALIGN // 2) // _ALIGN * _ALIGN)


@intrinsic
def _prefetch_l2(typingctx, arr, idx):
    """Hint the cache line holding ``arr[idx]`` into L2 (``llvm.prefetch``, locality 2)."""
    sig = types.void(arr, idx)

    def codegen(context, builder, signature, args):
        ptr = element_pointer(context, builder, signature, args)
        i8p = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 2), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(inline="always", **JIT)
def _rank4x5(g0, g1, g2, g3, g4, R, i, k, x0, x1, x2, x3):
    """g_c += sum_q R[i + q, k + c] x_q for the 5 classes c: per vector of
    columns, 4 loads of x shared by 5 classes, and per class one load and one
    store of g for 4 FMAs."""
    dt = g0.dtype.type
    r00, r01, r02, r03 = dt(R[i, k]), dt(R[i + 1, k]), dt(R[i + 2, k]), dt(R[i + 3, k])
    r10, r11, r12, r13 = dt(R[i, k + 1]), dt(R[i + 1, k + 1]), dt(R[i + 2, k + 1]), dt(R[i + 3, k + 1])
    r20, r21, r22, r23 = dt(R[i, k + 2]), dt(R[i + 1, k + 2]), dt(R[i + 2, k + 2]), dt(R[i + 3, k + 2])
    r30, r31, r32, r33 = dt(R[i, k + 3]), dt(R[i + 1, k + 3]), dt(R[i + 2, k + 3]), dt(R[i + 3, k + 3])
    r40, r41, r42, r43 = dt(R[i, k + 4]), dt(R[i + 1, k + 4]), dt(R[i + 2, k + 4]), dt(R[i + 3, k + 4])
    for j in range(x0.shape[0]):
        u0, u1, u2, u3 = x0[j], x1[j], x2[j], x3[j]
        g0[j] += r00 * u0 + r01 * u1 + r02 * u2 + r03 * u3
        g1[j] += r10 * u0 + r11 * u1 + r12 * u2 + r13 * u3
        g2[j] += r20 * u0 + r21 * u1 + r22 * u2 + r23 * u3
        g3[j] += r30 * u0 + r31 * u1 + r32 * u2 + r33 * u3
        g4[j] += r40 * u0 + r41 * u1 + r42 * u2 + r43 * u3


@numba.njit(inline="always", **JIT)
def _rank4x1(g, R, i, k, x0, x1, x2, x3):
    """g += sum_q R[i + q, k] x_q (a class left over from the 5-class sweeps)."""
    dt = g.dtype.type
    r0, r1, r2, r3 = dt(R[i, k]), dt(R[i + 1, k]), dt(R[i + 2, k]), dt(R[i + 3, k])
    for j in range(x0.shape[0]):
        g[j] += r0 * x0[j] + r1 * x1[j] + r2 * x2[j] + r3 * x3[j]


@numba.njit(inline="always", **JIT)
def _dot4x5(x0, x1, x2, x3, w0, w1, w2, w3, w4):
    """The 20 dot products x_q . w_k (q < 4, k < 5), ordered (q, k): a register tile.

    Per vector of columns, 4 loads of x and 5 of w feed 20 FMAs, so the loop
    runs at the FMA rate instead of the load rate.
    """
    zero = x0.dtype.type(0.0)
    a00 = a01 = a02 = a03 = a04 = zero
    a10 = a11 = a12 = a13 = a14 = zero
    a20 = a21 = a22 = a23 = a24 = zero
    a30 = a31 = a32 = a33 = a34 = zero
    for j in range(x0.shape[0]):
        u0, u1, u2, u3 = x0[j], x1[j], x2[j], x3[j]
        v = w0[j]
        a00 += u0 * v
        a10 += u1 * v
        a20 += u2 * v
        a30 += u3 * v
        v = w1[j]
        a01 += u0 * v
        a11 += u1 * v
        a21 += u2 * v
        a31 += u3 * v
        v = w2[j]
        a02 += u0 * v
        a12 += u1 * v
        a22 += u2 * v
        a32 += u3 * v
        v = w3[j]
        a03 += u0 * v
        a13 += u1 * v
        a23 += u2 * v
        a33 += u3 * v
        v = w4[j]
        a04 += u0 * v
        a14 += u1 * v
        a24 += u2 * v
        a34 += u3 * v
    return (a00, a01, a02, a03, a04, a10, a11, a12, a13, a14,
            a20, a21, a22, a23, a24, a30, a31, a32, a33, a34)


@numba.njit(inline="always", **JIT)
def _dot4x1(x0, x1, x2, x3, w):
    """The 4 dot products x_q . w (the classes left over from the 5-class tiles)."""
    zero = x0.dtype.type(0.0)
    a0 = a1 = a2 = a3 = zero
    for j in range(x0.shape[0]):
        v = w[j]
        a0 += x0[j] * v
        a1 += x1[j] * v
        a2 += x2[j] * v
        a3 += x3[j] * v
    return a0, a1, a2, a3


@numba.njit(inline="always", **JIT)
def _partial_logits4(x0, x1, x2, x3, W, a, Z):
    """Z[q, k] = x_q . W[k, a:a + m] for the 4 rows x_q of length m, by 4-row x 5-class tiles (:func:`_dot4x5`)."""
    K = W.shape[0]
    m = x0.shape[0]
    k0 = 0
    while k0 + 5 <= K:
        (a00, a01, a02, a03, a04, a10, a11, a12, a13, a14,
         a20, a21, a22, a23, a24, a30, a31, a32, a33, a34) = _dot4x5(
            x0, x1, x2, x3, W[k0][a : a + m], W[k0 + 1][a : a + m], W[k0 + 2][a : a + m],
            W[k0 + 3][a : a + m], W[k0 + 4][a : a + m])
        Z[0, k0], Z[0, k0 + 1], Z[0, k0 + 2], Z[0, k0 + 3], Z[0, k0 + 4] = a00, a01, a02, a03, a04
        Z[1, k0], Z[1, k0 + 1], Z[1, k0 + 2], Z[1, k0 + 3], Z[1, k0 + 4] = a10, a11, a12, a13, a14
        Z[2, k0], Z[2, k0 + 1], Z[2, k0 + 2], Z[2, k0 + 3], Z[2, k0 + 4] = a20, a21, a22, a23, a24
        Z[3, k0], Z[3, k0 + 1], Z[3, k0 + 2], Z[3, k0 + 3], Z[3, k0 + 4] = a30, a31, a32, a33, a34
        k0 += 5
    for k in range(k0, K):
        Z[0, k], Z[1, k], Z[2, k], Z[3, k] = _dot4x1(x0, x1, x2, x3, W[k][a : a + m])


@numba.njit(inline="always", **JIT)
def _partial_rank4(x0, x1, x2, x3, R, i, G, a):
    """G[k, a:a + m] += sum_q R[i + q, k] x_q for the 4 rows x_q of length m (as the tiles of :mod:`.tiles`)."""
    K = G.shape[0]
    m = x0.shape[0]
    k0 = 0
    while k0 + 5 <= K:
        _rank4x5(G[k0][a : a + m], G[k0 + 1][a : a + m], G[k0 + 2][a : a + m], G[k0 + 3][a : a + m],
                 G[k0 + 4][a : a + m], R, i, k0, x0, x1, x2, x3)
        k0 += 5
    for k in range(k0, K):
        _rank4x1(G[k][a : a + m], R, i, k, x0, x1, x2, x3)


@numba.njit(**JIT)
def _epoch_worker(t, T, NB, X, codes, swn, x2, perm, batch, lr, l2, momentum, v2, fit_intercept, W, V, Zs, flags,
                  solo_after):
    """Thread ``t``'s share of one epoch (module docstring); returns the rows predicted right before their step.

    ``W`` (K, p) and ``V`` (K, p, or empty without momentum) are contiguous
    copies of the coefficients and velocities, shared: thread ``t`` updates
    the columns of its blocks ``t NB / T`` to ``(t + 1) NB / T``. Every
    thread keeps its own copy of the intercepts; thread 0 writes them to
    ``x2`` and ``v2`` (K, p + fit_intercept) at the end. ``Zs``
    (2, NB, batch, K) holds the blocks' partial logits, ``flags`` the barrier.

    If thread 0 finds its partner missing at the barrier (descheduled: the
    machine has fewer free cores than threads) in ``solo_after`` batches, it
    posts ``flags[_SOLO]``: the others finish that batch and leave, and
    thread 0 takes every block. The blocks, and so the result, stay the same.
    """
    n = perm.shape[0]
    p = X.shape[1]
    K = x2.shape[0]
    dt = X.dtype.type
    use_v = momentum != 0.0
    b0 = t * NB // T  # this thread's column blocks
    b1 = (t + 1) * NB // T
    c0 = _split(b0, NB, p)
    G = np.empty((K, p), dtype=X.dtype)
    b = np.zeros(K, dtype=X.dtype)
    vb = np.zeros(K, dtype=X.dtype)
    if fit_intercept:
        for k in range(K):
            b[k] = x2[k, p]
            if use_v:
                vb[k] = v2[k, p]
    R = np.zeros((batch + 3, K))
    Z4 = np.empty((4, K))
    Zb = np.empty((batch, K))
    E = np.empty(batch * K)
    gb = np.empty(K)
    line = max(1, 64 // X.itemsize)
    right = 0
    team = T
    missed = 0
    solo = T * _STRIDE + 1
    n_batches = (n + batch - 1) // batch
    for bi in range(n_batches):
        start = bi * batch
        B = min(n, start + batch) - start
        par = bi & 1
        c0, c1 = _split(b0, NB, p), _split(b1, NB, p)
        # 1. Partial logits of the batch over this thread's blocks.
        for i in range(0, B, 4):
            r0 = perm[start + i]
            r1 = perm[start + i + 1] if i + 1 < B else r0
            r2 = perm[start + i + 2] if i + 2 < B else r0
            r3 = perm[start + i + 3] if i + 3 < B else r0
            for blk in range(b0, b1):
                a0, a1 = _split(blk, NB, p), _split(blk + 1, NB, p)
                _partial_logits4(X[r0][a0:a1], X[r1][a0:a1], X[r2][a0:a1], X[r3][a0:a1], W, a0, Z4)
                for q in range(min(4, B - i)):
                    for k in range(K):
                        Zs[par, blk, i + q, k] = Z4[q, k]
        # 2. Every thread's partial logits are in.
        leaving = False
        if team > 1:
            if t == 0 and missed >= solo_after:
                _store_release(flags, solo, bi + 1)
            yields = _arrive_and_wait(flags, t, team, bi + 1)
            if yields < 0:
                return right
            missed += yields > 0
            leaving = _load_acquire(flags, solo) == bi + 1
        # 3. Logits, softmax and residuals of the whole batch (every thread alike).
        for i in range(B):
            mx = -np.inf
            for k in range(K):
                acc = 0.0
                for blk in range(NB):
                    acc += Zs[par, blk, i, k]
                z = np.float64(dt(acc)) + np.float64(b[k])
                Zb[i, k] = z
                mx = max(mx, z)
            for k in range(K):
                E[i * K + k] = Zb[i, k] - mx
        for i in range(B * K):
            E[i] = exp64(E[i])
        for k in range(K):
            gb[k] = 0.0
        for i in range(B):
            row = perm[start + i]
            tot = 0.0
            best = 0
            for k in range(K):
                tot += E[i * K + k]
                best = k if Zb[i, k] > Zb[i, best] else best
            s = swn[row]
            f = s / tot
            for k in range(K):
                R[i, k] = f * E[i * K + k]
            R[i, codes[row]] -= s
            right += best == codes[row]
            for k in range(K):
                gb[k] += R[i, k]
        for i in range(B, B + 3):
            for k in range(K):
                R[i, k] = 0.0
        # 4. The gradient on this thread's columns, and the step.
        for k in range(K):
            for j in range(c0, c1):
                G[k, j] = 0.0
        for blk in range(b0, b1):  # a block's gradient rows stay in L1
            a0, a1 = _split(blk, NB, p), _split(blk + 1, NB, p)
            for i in range(0, B, 4):
                # Rows come in random order, which the hardware cannot
                # prefetch: while this batch's rows (in cache) make the
                # gradient, prefetch the block's part of the next batch's rows.
                for a in range(start + batch + i, min(start + batch + i + 4, n)):
                    row = X[perm[a]]
                    for j in range(a0, a1, line):
                        _prefetch_l2(row, j)
                r0 = perm[start + i]
                r1 = perm[start + i + 1] if i + 1 < B else r0
                r2 = perm[start + i + 2] if i + 2 < B else r0
                r3 = perm[start + i + 3] if i + 3 < B else r0
                _partial_rank4(X[r0][a0:a1], X[r1][a0:a1], X[r2][a0:a1], X[r3][a0:a1], R, i, G, a0)
        scale = 1.0 / B
        for k in range(K):
            for j in range(c0, c1):
                g = G[k, j] * dt(scale) + dt(l2) * W[k, j]
                if use_v:
                    V[k, j] = dt(momentum) * V[k, j] + g
                    g = V[k, j]
                W[k, j] -= dt(lr) * g
            if fit_intercept:
                g = gb[k] * scale
                if use_v:
                    vb[k] = dt(momentum * vb[k] + g)
                    g = vb[k]
                b[k] = dt(b[k] - dt(lr * g))
        if leaving:
            if t > 0:
                _store_release(flags, t * _STRIDE, n_batches + 1)
                return 0
            # Thread 0 goes on alone once the others' columns of this step are in.
            if _arrive_and_wait(flags, t, team, n_batches + 1) < 0:
                return right
            team, b0, b1 = 1, 0, NB
    if t == 0 and fit_intercept:
        for k in range(K):
            x2[k, p] = b[k]
            if use_v:
                v2[k, p] = vb[k]
    return right if t == 0 else 0


def default_threads():
    """Threads an epoch uses by default: Numba's thread count (``NUMBA_NUM_THREADS``), at most the cores."""
    return max(1, min(numba.get_num_threads(), os.cpu_count() or 1))


def sgd_epoch(X, codes, sample_weight, x, perm, *, n_classes, fit_intercept, batch_size, learning_rate,
              l2=0.0, momentum=0.0, velocity=None, n_threads=None, n_blocks=None):
    r"""One fused epoch of minibatch SGD, updating the flat coefficients ``x`` in place.

    Exactly the step of :func:`softmaxreg.solvers.sgd` with
    ``LinearSoftmaxLoss.minibatch_gradient`` (symmetric coding, no L1): for
    each block ``idx`` of ``batch_size`` entries of ``perm``,

    .. math::

        g = \frac{1}{|idx|} \sum_{i \in idx} s'_i (p_i - y_i) \tilde x_i^\top + \lambda W,
        \qquad v \leftarrow \mu v + g, \qquad x \leftarrow x - \eta\, v,

    with ``s'_i = s_i n / S`` (weights rescaled to mean one) and the intercept
    unpenalized, in one compiled loop per thread, the features split over the
    threads (module docstring).

    Parameters
    ----------
    X : ndarray (n_samples, n_features), float32 or float64, C-ordered
    codes : ndarray (n_samples,) of int class codes
    sample_weight : ndarray (n_samples,) or None
    x : ndarray (n_classes * (n_features + fit_intercept),) in X's dtype
        The flat coefficients (LinearSoftmaxLoss layout, no reference class); updated in place.
    perm : ndarray of int
        The epoch's row order.
    velocity : ndarray like ``x``, optional
        Momentum buffer (updated in place); needed when ``momentum != 0``.
    n_threads : int, optional
        Threads to run (default :func:`default_threads`), at most one per
        column block.
    n_blocks : int, optional
        Column blocks whose partial logits are added up (default
        :func:`default_threads`, fewer when a block would get under 128
        features). The result depends on the blocks (by rounding) but not on
        the threads: any ``n_threads`` gives the same bits.

    Returns
    -------
    int
        How many of the epoch's rows were predicted right before their step
        (the running accuracy's numerator).

    Examples
    --------
    One step on one row from zero coefficients: p = (1/2, 1/2), y = (0, 1),
    g = (p - y) x~ = ((1/2, 1/2), (-1/2, -1/2)), so x = -0.1 g.

    >>> import numpy as np
    >>> x = np.zeros(4)
    >>> _ = sgd_epoch(np.array([[1.0]]), np.array([1]), None, x, np.array([0]),
    ...               n_classes=2, fit_intercept=True, batch_size=1, learning_rate=0.1)
    >>> x.tolist()
    [-0.05, -0.05, 0.05, 0.05]
    """
    n, p = X.shape
    if X.dtype not in (np.float32, np.float64) or not X.flags.c_contiguous:
        raise ValueError("X must be a C-contiguous float32 or float64 array")
    sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    swn = np.ascontiguousarray(sw * (n / sw.sum()))
    d = p + int(fit_intercept)
    if x.dtype != X.dtype or not x.flags.c_contiguous or x.shape != (n_classes * d,):
        raise ValueError(f"x must be a C-contiguous {X.dtype} vector of length {n_classes * d}")
    x2 = x.reshape(n_classes, d)
    if momentum != 0.0:
        if velocity is None or velocity.shape != x.shape or velocity.dtype != x.dtype:
            raise ValueError("momentum needs a velocity buffer of x's shape and dtype")
        v2 = velocity.reshape(n_classes, d)
    else:
        v2 = x2[:0]
    perm = np.ascontiguousarray(perm, dtype=np.int64)
    codes = np.ascontiguousarray(codes, dtype=np.int64)
    # The kernel does not check its indices.
    if codes.shape != (n,) or (n and not 0 <= codes.min() <= codes.max() < n_classes):
        raise ValueError(f"codes must be {n} class codes in [0, {n_classes})")
    if perm.ndim != 1 or (perm.size and not 0 <= perm.min() <= perm.max() < n):
        raise ValueError(f"perm must be a vector of row indices in [0, {n})")
    batch = max(1, min(int(batch_size), perm.shape[0]))
    NB = default_threads() if n_blocks is None else int(n_blocks)
    NB = max(1, min(NB, p // _MIN_COLUMNS))
    T = default_threads() if n_threads is None else int(n_threads)
    T = max(1, min(T, NB))
    # Contiguous copies: x2[:, :p] is a strided view, which Numba does not vectorize.
    W = np.ascontiguousarray(x2[:, :p])
    V = np.ascontiguousarray(v2[:, :p]) if momentum != 0.0 else W[:, :0]
    Zs = np.empty((2, NB, batch, n_classes))
    flags = np.zeros((T + 1) * _STRIDE, dtype=np.int64)
    args = (X, codes, swn, x2, perm, batch, float(learning_rate), float(l2), float(momentum), v2,
            bool(fit_intercept), W, V, Zs, flags, _SOLO_AFTER)
    if T == 1:
        right = _epoch_worker(0, 1, NB, *args)
    else:
        def work(t):
            try:
                return _epoch_worker(t, T, NB, *args)
            except BaseException:
                flags[T * _STRIDE] = 1  # release the threads waiting for this one
                raise

        right = run_threads(work, T)[0]
    x2[:, :p] = W
    if momentum != 0.0:
        v2[:, :p] = V
    return int(right)
