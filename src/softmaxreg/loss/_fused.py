r"""Fused, threaded passes over a dense ``X`` for :class:`LinearSoftmaxLoss` and prediction.

One pass streams ``X`` once: each thread takes a contiguous range of rows in
blocks of ``_ROWS``; per block it computes the logits :math:`z = W x + b`
(4-row x 5-class register tiles written in vector IR, stored classes-first),
the softmax, the rows' loss and :math:`r = s\,(p - y)` (or, for a
Hessian-vector product, the softmax JVP
:math:`r = s\,p \odot (z_V - \langle p, z_V \rangle)`) with the loops running
along the block's rows so that they vectorize, ``exp`` and ``log`` included,
and then adds :math:`\sum_i r_i x_i^\top` to its own gradient block while
the block's rows are still in L2 (strips of the block's columns held in
registers while the loop runs down its rows, also in vector IR). The tiles ask
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

import _thread

import numba
import numpy as np
from llvmlite import ir
from numba import prange
from numba.core import cgutils, types
from numba.extending import intrinsic

from softmaxreg.functional._kernels import _exp64, _lane_shuffle, _lanes_at, _log1p, _splat_value, _vector_fma

__all__ = ["MIN_ELEMENTS", "applies", "worthwhile", "linear_softmax_pass", "linear_softmax_losses", "predict", "predict_proba"]

_jit = dict(cache=True, nogil=True, fastmath={"reassoc", "contract", "arcp", "nsz"}, error_model="numpy")

# Rows per gradient block: the block's gradient is accumulated in X's dtype.
_BLOCK = 256

LOSS, GRAD, HESSP = 1, 2, 4


def _lane_sum(builder, v):
    """The sum of a vector's lanes, by halving: lanes j and j + w/2 added, w = 16, 8, ..., 2."""
    i32 = ir.IntType(32)
    w = v.type.count
    while w > 1:
        h = w // 2
        lo = _lane_shuffle(builder, v, v, list(range(h)))
        hi = _lane_shuffle(builder, v, v, list(range(h, w)))
        v = builder.fadd(lo, hi)
        w = h
    return builder.extract_element(v, ir.Constant(i32, 0))


# The most rows one tile asks for (_sweep); _asking never hands out more (8 groups of 4 rows per
# block make at least 8 tile calls for the 32 rows of the next block).
_MAX_ASKED = 4


def _rows_of(context, builder, aryty, ary, first, count):
    """Pointers to ``ary[first + r, 0]`` for r < count."""
    i64 = ir.IntType(64)
    return [cgutils.get_item_pointer(context, builder, aryty, ary, [builder.add(first, ir.Constant(i64, r)), ir.Constant(i64, 0)])
            for r in range(count)]


def _vector_at(builder, row, j, vt):
    """The vector of type ``vt`` at ``row[j]`` (an element pointer), aligned to one element."""
    align = 4 if isinstance(vt.element, ir.FloatType) else 8
    return builder.load(builder.bitcast(builder.gep(row, [j]), vt.as_pointer()), align=align)


def _prefetch(builder, pointers):
    """Ask for the cache line of each pointer, for reading, into L1 (``llvm.prefetch``, locality 3)."""
    i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                        "llvm.prefetch.p0")
    for ptr in pointers:
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])


def _sweep(context, builder, X_t, p, P_t, pre, ip, npf, step, tail, between=None):
    """The column loop of a tile: ``step(j)`` for j = 0, L, 2L, ... below ``p - p mod L`` (L lanes
    of X's dtype in 512 bits), then ``between()``, then ``tail(j)`` for the last columns one at a time.

    At each step it also asks for the same columns of rows ``ip .. ip + npf - 1``
    of ``P`` (``llvm.prefetch`` into L1, one cache line per row per step, at
    most ``_MAX_ASKED`` rows; ``npf <= 0`` asks for nothing). So the rows asked
    for are requested at the rate the FMAs run, not in a burst the core's
    queue of misses cannot hold.
    """
    i64 = ir.IntType(64)
    lanes = 512 // X_t.dtype.bitwidth
    # Row pointers by arithmetic only: a row at or past npf is never touched.
    asked = _rows_of(context, builder, P_t, pre, ip, _MAX_ASKED)
    steps = builder.udiv(p, ir.Constant(i64, lanes))
    # One copy of the loop per count of rows asked for, behind a switch: no test inside the loop.
    count = builder.select(builder.icmp_signed(">", npf, ir.Constant(i64, _MAX_ASKED)), ir.Constant(i64, _MAX_ASKED), npf)
    blocks = [builder.append_basic_block(f"sweep.asking.{rows}") for rows in range(_MAX_ASKED + 1)]
    done = builder.append_basic_block("sweep.done")
    switch = builder.switch(count, blocks[0])  # npf <= 0 asks for nothing
    for rows, block in enumerate(blocks):
        if rows:
            switch.add_case(ir.Constant(i64, rows), block)
        builder.position_at_end(block)
        with cgutils.for_range(builder, steps) as loop:
            j = builder.mul(loop.index, ir.Constant(i64, lanes))
            _prefetch(builder, [builder.gep(row, [j]) for row in asked[:rows]])
            step(j)
        builder.branch(done)
    builder.position_at_end(done)
    if between is not None:
        between()
    with cgutils.for_range_slice(builder, builder.mul(steps, ir.Constant(i64, lanes)), p, ir.Constant(i64, 1),
                                 inc=True) as (j, _):
        tail(j)


def _dot_tile(classes):
    r"""The intrinsic ``tile(X, i, W, k, Z, c, P, ip, npf)``: for q < 4 and m < ``classes``,
    ``Z[k + m, c + q] = X[i + q] . W[k + m]``, summed in X's dtype and stored in Z's.

    A register tile written in vector IR: per step of one vector of columns (16
    float32 or 8 float64) four loads of X and ``classes`` loads of W feed
    ``4 * classes`` accumulators, while rows ``ip .. ip + npf - 1`` of ``P``
    are asked for (:func:`_sweep`). The accumulators' lanes are then summed by
    halving, and the last ``p mod lanes`` columns added one at a time. X and W
    have the same number of columns; the caller keeps every row index in range.
    """

    def typer(typingctx, X, i, W, k, Z, c, P, ip, npf):
        sig = types.void(X, i, W, k, Z, c, P, ip, npf)

        def codegen(context, builder, signature, args):
            X_t, _, W_t, _, Z_t, _, P_t, _, _ = signature.args
            x, w, z, pre = (context.make_array(t)(context, builder, a)
                            for t, a in ((X_t, args[0]), (W_t, args[2]), (Z_t, args[4]), (P_t, args[6])))
            i, k, c, ip, npf = (context.cast(builder, args[n], signature.args[n], types.int64) for n in (1, 3, 5, 7, 8))
            i64 = ir.IntType(64)
            ft = context.get_value_type(X_t.dtype)
            lanes = 512 // X_t.dtype.bitwidth
            vt = ir.VectorType(ft, lanes)
            xs, ws = _rows_of(context, builder, X_t, x, i, 4), _rows_of(context, builder, W_t, w, k, classes)
            acc = [cgutils.alloca_once_value(builder, ir.Constant(vt, [0.0] * lanes)) for _ in range(4 * classes)]
            sums = [cgutils.alloca_once_value(builder, ir.Constant(ft, 0.0)) for _ in range(4 * classes)]

            def step(j):
                xv = [_vector_at(builder, r, j, vt) for r in xs]
                for m in range(classes):
                    wv = _vector_at(builder, ws[m], j, vt)
                    for q in range(4):
                        a = acc[q * classes + m]
                        builder.store(_vector_fma(builder, xv[q], wv, builder.load(a)), a)

            def between():
                for a, s in zip(acc, sums):
                    builder.store(_lane_sum(builder, builder.load(a)), s)

            def tail(j):
                xv = [builder.load(builder.gep(r, [j])) for r in xs]
                for m in range(classes):
                    wv = builder.load(builder.gep(ws[m], [j]))
                    for q in range(4):
                        a = sums[q * classes + m]
                        builder.store(builder.fma(xv[q], wv, builder.load(a)), a)

            _sweep(context, builder, X_t, builder.extract_value(x.shape, 1), P_t, pre, ip, npf, step, tail, between)
            for m in range(classes):
                for q in range(4):
                    v = builder.load(sums[q * classes + m])
                    out = cgutils.get_item_pointer(context, builder, Z_t, z, [builder.add(k, ir.Constant(i64, m)),
                                                                              builder.add(c, ir.Constant(i64, q))])
                    builder.store(context.cast(builder, v, X_t.dtype, Z_t.dtype), out)
            return context.get_dummy_value()

        return sig, codegen

    typer.__name__ = typer.__qualname__ = f"_dot4x{classes}"
    return intrinsic(typer)


def _strip_tile(classes, vectors=4):
    r"""The intrinsic ``tile(G, k, X, i, n, R, P, ip, npf)``: for m < ``classes``,
    ``G[k + m] += sum_{q < n} R[q, k + m] X[i + q]``, the rows added in order, R in X's dtype.

    A strip of ``vectors`` vectors of columns of the ``classes`` rows of G stays
    in registers while the loop runs down the ``n`` rows of X: per row,
    ``vectors`` loads of X and ``classes`` broadcasts of R feed
    ``classes * vectors`` FMAs, and G is loaded and stored once per strip, not
    once per row. Strips of ``vectors`` vectors, then of one vector, then the
    last ``p mod lanes`` columns one at a time. The caller keeps every row
    index in range.

    While it runs, the tile asks for rows ``ip .. ip + npf - 1`` of ``P``
    (``llvm.prefetch`` into L1; ``npf <= 0`` asks for nothing, and at most
    ``n`` rows are asked for): in each strip the loop's first ``npf`` rows
    also ask for the strip's cache lines of one row of ``P`` each, so every
    whole vector of those rows is asked for once, spread over the strips.
    """

    def typer(typingctx, G, k, X, i, n, R, P, ip, npf):
        sig = types.void(G, k, X, i, n, R, P, ip, npf)

        def codegen(context, builder, signature, args):
            G_t, _, X_t, _, _, R_t, P_t, _, _ = signature.args
            g, x, r, pre = (context.make_array(t)(context, builder, a)
                            for t, a in ((G_t, args[0]), (X_t, args[2]), (R_t, args[5]), (P_t, args[6])))
            k, i, n, ip, npf = (context.cast(builder, args[a], signature.args[a], types.int64) for a in (1, 3, 4, 7, 8))
            i64 = ir.IntType(64)
            zero = ir.Constant(i64, 0)
            npf = builder.select(builder.icmp_signed("<", npf, zero), zero, npf)
            npf = builder.select(builder.icmp_signed(">", npf, n), n, npf)
            ft = context.get_value_type(X_t.dtype)
            lanes = 512 // X_t.dtype.bitwidth
            vt = ir.VectorType(ft, lanes)
            al = X_t.dtype.bitwidth // 8
            gs = _rows_of(context, builder, G_t, g, k, classes)

            def strip(j, count, wide):
                """G[k + m, j : j + count * w] += ..., w = lanes if ``wide`` else 1 (``count`` 1)."""
                ty = vt if wide else ft
                at = [builder.add(j, ir.Constant(i64, v * lanes)) for v in range(count)]

                def ptr(row, o):
                    return _lanes_at(builder, row, o, vt) if wide else builder.gep(row, [o])

                acc = [[cgutils.alloca_once(builder, ty) for _ in at] for _ in range(classes)]
                for m in range(classes):
                    for a, o in zip(acc[m], at):
                        builder.store(builder.load(ptr(gs[m], o), align=al), a)

                def row_step(q, asking):
                    if asking:
                        ahead = cgutils.get_item_pointer(context, builder, P_t, pre, [builder.add(ip, q), zero])
                        _prefetch(builder, [builder.gep(ahead, [o]) for o in at])
                    row = cgutils.get_item_pointer(context, builder, X_t, x, [builder.add(i, q), zero])
                    xv = [builder.load(ptr(row, o), align=al) for o in at]
                    for m in range(classes):
                        c = builder.load(cgutils.get_item_pointer(context, builder, R_t, r,
                                                                  [q, builder.add(k, ir.Constant(i64, m))]))
                        if wide:
                            c = _splat_value(builder, c, vt)
                        for a, v in zip(acc[m], xv):
                            old = builder.load(a)
                            builder.store(_vector_fma(builder, v, c, old) if wide else builder.fma(v, c, old), a)

                # In a strip of whole vectors the first npf rows ask, the rest do not: two loops, no
                # test inside either. Single columns ask for nothing.
                first = npf if wide else zero
                if wide:
                    with cgutils.for_range(builder, npf) as rows:
                        row_step(rows.index, True)
                with cgutils.for_range_slice(builder, first, n, ir.Constant(i64, 1), inc=True) as (q, _):
                    row_step(q, False)
                for m in range(classes):
                    for a, o in zip(acc[m], at):
                        builder.store(builder.load(a), ptr(gs[m], o), align=al)

            p = builder.extract_value(x.shape, 1)
            step = ir.Constant(i64, lanes * vectors)
            strips = builder.udiv(p, step)
            with cgutils.for_range(builder, strips) as loop:
                strip(builder.mul(loop.index, step), vectors, True)
            whole = builder.udiv(p, ir.Constant(i64, lanes))
            with cgutils.for_range_slice(builder, builder.mul(strips, ir.Constant(i64, vectors)), whole,
                                         ir.Constant(i64, 1), inc=True) as (s, _):
                strip(builder.mul(s, ir.Constant(i64, lanes)), 1, True)
            with cgutils.for_range_slice(builder, builder.mul(whole, ir.Constant(i64, lanes)), p, ir.Constant(i64, 1),
                                         inc=True) as (j, _):
                strip(j, 1, False)
            return context.get_dummy_value()

        return sig, codegen

    typer.__name__ = typer.__qualname__ = f"_strip{classes}"
    return intrinsic(typer)


_dot4x5, _dot4x1 = _dot_tile(5), _dot_tile(1)
_strip1, _strip2, _strip3, _strip4, _strip5 = (_strip_tile(c) for c in range(1, 6))


@numba.njit(inline="always", **_jit)
def _tiles(K):
    """Tiles per group of four rows over K classes: 5-class tiles, then one per class left over."""
    return K // 5 + K % 5


@numba.njit(inline="always", **_jit)
def _asking(i0, r1, tiles):
    """``(nxt, per, stop)``: the block after the one at ``i0`` (rows ``nxt .. stop - 1``, up to ``r1``)
    is asked for while this block's ``tiles`` tile calls run, ``per`` rows in each.

    One block ahead is ~10 us of work away: far enough for any memory latency,
    near enough that the rows are still in L2 when their block starts.
    """
    nxt = i0 + _ROWS
    stop = min(nxt + _ROWS, r1)
    per = min((stop - nxt + tiles - 1) // tiles, _MAX_ASKED) if stop > nxt else 0
    return nxt, per, stop


@numba.njit(inline="always", **_jit)
def _strips(K):
    """Strip tile calls per block's gradient update over K classes: 5-class strips, then one for the rest."""
    return K // 5 + (1 if K % 5 else 0)


@numba.njit(inline="always", **_jit)
def _asking_halves(i0, r1, tiles, strips):
    """``(nxt, per, mid, uper, stop)``: the block after the one at ``i0`` (rows ``nxt .. stop - 1``, up to
    ``r1``), shared between a gradient pass's two phases: rows ``nxt .. mid - 1`` are asked for by the
    block's ``tiles`` logits tile calls, ``per`` rows in each, and rows ``mid .. stop - 1`` by its
    ``strips`` update strip calls, ``uper`` rows in each.

    The logits and the update each do ``K p`` FMAs per row, so each phase asks
    for half the rows: the stream of X then runs at one rate through the whole
    block. With the logits tiles asking for all of it (:func:`_asking`), the
    next block came in at twice the rate during the logits and not at all
    during the update; on Fashion-MNIST the halves made the pass 14 % faster
    (docs/performance.md, target 2).
    """
    nxt, _, stop = _asking(i0, r1, tiles)
    mid = nxt + max(0, stop - nxt) // 2
    per = min((mid - nxt + tiles - 1) // tiles, _MAX_ASKED)
    uper = (stop - mid + strips - 1) // strips if stop > mid else 0
    return nxt, per, mid, uper, stop


@numba.njit(inline="always", **_jit)
def _share(nxt, per, stop):
    """How many rows from ``nxt`` one tile asks for: ``per``, fewer near ``stop``, never negative."""
    return max(0, min(per, stop - nxt))


@numba.njit(inline="always", **_jit)
def _logits4t(X, i, W, b, Zt, c, Xp, nxt, per, stop):
    """Zt[k, c + q] = X[i + q] . W[k] + b[k] for q < 4, by 4-row x 5-class tiles, stored classes-first.

    Each tile asks for ``per`` rows of ``Xp`` from ``nxt`` (none past ``stop``);
    returns the next row to ask for.
    """
    K = W.shape[0]
    k0 = 0
    while k0 + 5 <= K:
        _dot4x5(X, i, W, k0, Zt, c, Xp, nxt, _share(nxt, per, stop))
        nxt += per
        k0 += 5
    for k in range(k0, K):
        _dot4x1(X, i, W, k, Zt, c, Xp, nxt, _share(nxt, per, stop))
        nxt += per
    for k in range(K):
        for q in range(4):
            Zt[k, c + q] += b[k]
    return nxt


@numba.njit(inline="always", **_jit)
def _block_logits(X, i0, nb, W, b, Zt, Xq, nxt, per, stop):
    """Zt[k, q] = X[i0 + q] . W[k] + b[k] for q < nb, four rows at a time; returns the next row to ask for.

    The last group of fewer than four rows goes through the padded buffer
    ``Xq`` (its spare rows repeat row ``i0``); Zt's other columns keep
    whatever they held. Each tile asks for ``per`` rows of X from ``nxt``,
    none past ``stop`` (:func:`_asking`).
    """
    for g in range(0, nb, 4):
        if g + 4 <= nb:
            src, base = X, i0 + g
        else:
            for q in range(4):
                Xq[q] = X[i0 + g + q] if g + q < nb else X[i0]
            src, base = Xq, 0
        nxt = _logits4t(src, base, W, b, Zt, g, X, nxt, per, stop)
    return nxt


@numba.njit(inline="always", **_jit)
def _block_softmax(Zt, nb, Pt, m, s, inv):
    """Pt = softmax of Zt's columns (classes down a column), m their max, s the sum of exp(z - m).

    A column with a non-finite logit gets s = NaN (``z * 0`` is NaN exactly
    for those) and garbage in Pt; returns how many of the first nb columns
    have one. The loops run along the rows of the block, all ``_ROWS`` of
    them (a fixed trip count), so they vectorize, exp included.
    """
    K = Zt.shape[0]
    B = Zt.shape[1]
    for q in range(B):
        m[q] = Zt[0, q]
        s[q] = 0.0
    for k in range(1, K):
        for q in range(B):
            z = Zt[k, q]
            m[q] = z if z > m[q] else m[q]
    for k in range(K):
        for q in range(B):
            z = Zt[k, q]
            e = _exp64(z - m[q])
            Pt[k, q] = e
            s[q] += e + z * 0.0
    for q in range(B):
        inv[q] = 1.0 / s[q]
    for k in range(K):
        for q in range(B):
            Pt[k, q] *= inv[q]
    bad = 0
    for q in range(nb):
        bad += not (s[q] < np.inf)
    return bad


@numba.njit(inline="always", **_jit)
def _block_terms(i0, nb, Zt, Zvt, Pt, Rt, S, codes, Y, sw, use_codes, what, P, cached):
    """Loss of rows i0 .. i0 + nb and their dloss/dlogits into Rt (classes x rows); returns (loss, bad).

    Rows with a non-finite logit add nothing (their Rt is zero) and count in
    ``bad``. With ``cached`` the probabilities come from ``P`` (a
    Hessian-vector product at the point of the last pass); otherwise, if
    ``P`` has rows, they are stored there.
    """
    K = Zt.shape[0]
    B = Zt.shape[1]
    m, s, inv, fin, d = S[0], S[1], S[2], S[3], S[4]
    bad = 0
    # The block's rows as slices, indexed from 0: an index i0 + q might be
    # negative to Numba, and its wraparound turns LLVM's vector loads into gathers.
    swb = sw[i0 : i0 + nb]
    cb = codes[i0 : i0 + nb]
    Yb = Y[i0 : i0 + nb]
    Pb = P[i0 : i0 + nb]
    if cached:
        for q in range(nb):
            for k in range(K):
                Pt[k, q] = Pb[q, k]
            fin[q] = 1.0
    else:
        bad = _block_softmax(Zt, nb, Pt, m, s, inv)
        for q in range(nb):
            fin[q] = 1.0 if s[q] < np.inf else 0.0
        if P.shape[0] > 0:
            for q in range(nb):
                for k in range(K):
                    Pb[q, k] = Pt[k, q]
    loss = 0.0
    if what & LOSS:
        # Each row's log-sum-exp, along the rows so that it vectorizes: s >= 1 (its largest term is
        # exp(0)), so log s = log1p(s - 1), s - 1 exact. ``inv`` is free once the softmax is done.
        lse = inv
        for q in range(B):
            lse[q] = m[q] + _log1p(s[q] - 1.0)
        for q in range(nb):
            if fin[q] != 0.0:
                if use_codes:
                    loss += swb[q] * (lse[q] - Zt[cb[q], q])
                else:
                    acc = 0.0
                    for k in range(K):
                        acc += Yb[q, k] * (lse[q] - Zt[k, q]) if Yb[q, k] != 0.0 else 0.0
                    loss += swb[q] * acc
    if what & GRAD:
        for k in range(K):
            for q in range(nb):
                Rt[k, q] = swb[q] * Pt[k, q]
        if use_codes:
            for q in range(nb):
                Rt[cb[q], q] -= swb[q]
        else:
            for q in range(nb):
                ysum = 0.0
                for k in range(K):
                    ysum += Yb[q, k]
                for k in range(K):
                    Rt[k, q] = Rt[k, q] * ysum - swb[q] * Yb[q, k]
    elif what & HESSP:
        for q in range(nb):
            d[q] = 0.0
        for k in range(K):
            for q in range(nb):
                d[q] += Pt[k, q] * Zvt[k, q]
        for k in range(K):
            for q in range(nb):
                Rt[k, q] = swb[q] * Pt[k, q] * (Zvt[k, q] - d[q])
    if bad:
        for q in range(nb):
            if fin[q] == 0.0:
                for k in range(K):
                    Rt[k, q] = 0.0
    for k in range(K):
        for q in range(nb, B):
            Rt[k, q] = 0.0
    return loss, bad


@numba.njit(inline="always", **_jit)
def _block_update(X, i0, nb, Rt, Rx, Gb, gb, nxt, per, stop):
    """Gb += Rt[:, :nb] X[i0 : i0 + nb] by strips of up to five classes (Rx holds Rt transposed, in
    X's dtype), gb += Rt's row sums.

    Each strip call asks for ``per`` rows of X from ``nxt``, none past ``stop``
    (:func:`_asking_halves`).
    """
    K = Rt.shape[0]
    for q in range(nb):
        for k in range(K):
            Rx[q, k] = Rt[k, q]
    k0 = 0
    while k0 + 5 <= K:
        _strip5(Gb, k0, X, i0, nb, Rx, X, nxt, _share(nxt, per, stop))
        nxt += per
        k0 += 5
    left = K - k0
    if left == 1:
        _strip1(Gb, k0, X, i0, nb, Rx, X, nxt, _share(nxt, per, stop))
    elif left == 2:
        _strip2(Gb, k0, X, i0, nb, Rx, X, nxt, _share(nxt, per, stop))
    elif left == 3:
        _strip3(Gb, k0, X, i0, nb, Rx, X, nxt, _share(nxt, per, stop))
    elif left == 4:
        _strip4(Gb, k0, X, i0, nb, Rx, X, nxt, _share(nxt, per, stop))
    for k in range(K):
        acc = 0.0
        for q in range(nb):
            acc += Rt[k, q]
        gb[k] += acc


# Rows per block: the block's logits, softmax and gradient update run in turn,
# the block's rows staying in L2 between them, the softmax vectorized along rows.
_ROWS = 32

@numba.njit(**_jit)
def _pass(X, codes, Y, sw, W, b, V, vb, what, n_threads, P):
    """One pass; returns (loss, G (T, K, p) float64, gb (T, K) float64, bad).

    Compiled serial (``n_threads`` ranges in turn) and without the GIL:
    :func:`_threaded_pass` runs one call per thread on a range of rows.

    ``codes`` (int64, n) are the labels when ``Y`` is empty, else ``Y`` (n, K)
    holds target probabilities. ``sw`` are the sample weights divided by their
    sum. ``what`` is a bit set of LOSS, GRAD, HESSP (GRAD and HESSP exclusive).
    ``bad`` counts rows whose logits are not finite (the caller falls back).
    ``P`` (n, K) receives the probabilities, or, for HESSP, supplies them
    (then the logits at W are not recomputed: 2 products per row instead of 3);
    pass an empty (0, K) array for neither.
    Each thread takes blocks of ``_ROWS`` rows (:func:`_block_logits`,
    :func:`_block_terms`, :func:`_block_update`), and its tiles ask for the
    thread's next block as they go: with a gradient or a Hessian product, the
    logits tiles for its first half and the update's strips for the second
    (:func:`_asking_halves`), else the logits tiles for all of it (:func:`_asking`).
    """
    n, p = X.shape
    K = W.shape[0]
    T = max(1, min(n_threads, n // _BLOCK))
    G = np.zeros((T, K, p))
    gb = np.zeros((T, K))
    parts = np.zeros((T, 2))
    use_codes = Y.shape[0] == 0
    accumulate = (what & (GRAD | HESSP)) != 0
    cached = (what & HESSP) != 0 and P.shape[0] == n
    sweeps = (0 if cached else 1) + (1 if what & HESSP else 0)  # logits sweeps per block
    for t in prange(T):
        r0 = t * n // T
        r1 = (t + 1) * n // T
        Zt = np.zeros((K, _ROWS))
        Zvt = np.zeros((K, _ROWS))
        Pt = np.zeros((K, _ROWS))
        Rt = np.zeros((K, _ROWS))
        Rx = np.zeros((_ROWS, K), dtype=X.dtype)
        S = np.zeros((5, _ROWS))
        Xq = np.empty((4, p), dtype=X.dtype)
        Gb = np.zeros((K, p), dtype=X.dtype)
        loss = 0.0
        bad = 0.0
        for i0 in range(r0, r1, _ROWS):
            nb = min(_ROWS, r1 - i0)
            tiles = (nb + 3) // 4 * _tiles(K) * sweeps
            if accumulate:
                nxt, per, mid, uper, stop = _asking_halves(i0, r1, tiles, _strips(K))
            else:
                nxt, per, stop = _asking(i0, r1, tiles)
                mid, uper = stop, 0
            if not cached:
                nxt = _block_logits(X, i0, nb, W, b, Zt, Xq, nxt, per, mid)
            if what & HESSP:
                nxt = _block_logits(X, i0, nb, V, vb, Zvt, Xq, nxt, per, mid)
            lb, bb = _block_terms(i0, nb, Zt, Zvt, Pt, Rt, S, codes, Y, sw, use_codes, what, P, cached)
            loss += lb
            bad += bb
            if accumulate:
                _block_update(X, i0, nb, Rt, Rx, Gb, gb[t], mid, uper, stop)
                if (i0 - r0) % _BLOCK == _BLOCK - _ROWS or i0 + _ROWS >= r1:
                    for k in range(K):
                        for j in range(p):
                            G[t, k, j] += Gb[k, j]
                            Gb[k, j] = 0.0
        parts[t, 0] = loss
        parts[t, 1] = bad
    return parts[:, 0].sum(), G, gb, parts[:, 1].sum()


@numba.njit(**_jit)
def _losses_pass(X, codes, Y, sw, W, b, K):
    """Data losses at the ``W.shape[0] // K`` points stacked in ``W``; returns (losses, bad).

    Serial and without the GIL like :func:`_pass`. Point ``e``'s coefficients
    are rows ``e K .. (e + 1) K`` of ``W`` (and of ``b``): one
    :func:`_block_logits` per block of rows makes every point's logits while
    the rows are in L1, so X is read once for all of them; its tiles ask for
    the next block as they go (:func:`_asking`).
    """
    n, p = X.shape
    M = W.shape[0]
    E = M // K
    Zt = np.zeros((M, _ROWS))
    Pt = np.zeros((K, _ROWS))
    Rt = np.zeros((K, _ROWS))
    S = np.zeros((5, _ROWS))
    Xq = np.empty((4, p), dtype=X.dtype)
    P = np.empty((0, K))
    use_codes = Y.shape[0] == 0
    out = np.zeros(E)
    bad = 0.0
    for i0 in range(0, n, _ROWS):
        nb = min(_ROWS, n - i0)
        nxt, per, stop = _asking(i0, n, (nb + 3) // 4 * _tiles(M))
        _block_logits(X, i0, nb, W, b, Zt, Xq, nxt, per, stop)
        for e in range(E):
            lb, bb = _block_terms(i0, nb, Zt[e * K:(e + 1) * K], Pt, Pt, Rt, S, codes, Y, sw, use_codes, LOSS, P,
                                  False)
            out[e] += lb
            bad += bb
    return out, bad


# What _predict writes: probabilities, logits or each row's most probable class.
PROBA, LOGITS, LABELS = 0, 1, 2


@numba.njit(parallel=True, **_jit)
def _predict(X, W, b, out, labels, what, n_threads):
    """Rows split over the threads: ``out`` = softmax(X W^T + b) (PROBA) or
    X W^T + b (LOGITS), float64, or ``labels`` = each row's first largest
    logit (LABELS). Returns the number of rows with a non-finite logit.
    Each block's tiles ask for the thread's next block as they go (:func:`_asking`).
    """
    n, p = X.shape
    K = W.shape[0]
    T = max(1, min(n_threads, n // _BLOCK))
    bad = np.zeros(T)
    for t in prange(T):
        Zt = np.zeros((K, _ROWS))
        Pt = np.zeros((K, _ROWS))
        S = np.zeros((3, _ROWS))
        Xq = np.empty((4, p), dtype=X.dtype)
        r0 = t * n // T
        r1 = (t + 1) * n // T
        for i0 in range(r0, r1, _ROWS):
            nb = min(_ROWS, r1 - i0)
            nxt, per, stop = _asking(i0, r1, (nb + 3) // 4 * _tiles(K))
            _block_logits(X, i0, nb, W, b, Zt, Xq, nxt, per, stop)
            ob = out[i0 : i0 + nb]  # indexed from 0 (see _block_terms)
            if what == PROBA:
                bad[t] += _block_softmax(Zt, nb, Pt, S[0], S[1], S[2])
                for q in range(nb):
                    for k in range(K):
                        ob[q, k] = Pt[k, q]
                continue
            for q in range(nb):
                check = 0.0  # NaN exactly when some logit of the row is inf or NaN
                for k in range(K):
                    check += Zt[k, q] * 0.0
                bad[t] += check != 0.0
            if what == LOGITS:
                for q in range(nb):
                    for k in range(K):
                        ob[q, k] = Zt[k, q]
            else:
                lb = labels[i0 : i0 + nb]
                for q in range(nb):
                    best = 0
                    for k in range(1, K):
                        best = k if Zt[k, q] > Zt[best, q] else best
                    lb[q] = best
    return bad.sum()


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
    load spans two lines. Measured on Fashion-MNIST with one thread: the pass's
    loss alone 9-16 % faster, loss and gradient 3-6 % (docs/performance.md).

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
        saves recomputing the logits (a third of a Hessian-vector product).

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
    codes, Y = _targets(y, K)
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
    f, G, gb, bad = _threaded_pass(X, codes, Y, sw, W, b, V, vb, what, proba)
    if bad:
        return None
    return f, G, gb


def run_threads(work, T):
    """``[work(0), ..., work(T - 1)]``, ``work(0)`` in the calling thread and the others in threads of their own.

    A thread per call, not a pool: nothing to queue behind another caller's
    work, nothing left over after a fork. The threads are started with
    ``_thread.start_new_thread``, which returns at once, where
    ``threading.Thread.start`` waits until the new thread runs: that wait
    (0.15-0.25 ms on this project's 2-core machine, the other core waking up)
    came before the calling thread's own share. Every thread is waited for
    before returning; the first exception raised in any of them is re-raised
    here.
    """
    out = [None] * T
    errors = []
    done = [_thread.allocate_lock() for _ in range(1, T)]

    def run(t):
        try:
            out[t] = work(t)
        except BaseException as exc:  # noqa: BLE001 (re-raised in the calling thread)
            errors.append(exc)
        finally:
            done[t - 1].release()

    for t in range(1, T):
        done[t - 1].acquire()
        _thread.start_new_thread(run, (t,))
    try:
        out[0] = work(0)
    finally:
        for lock in done:
            lock.acquire()
    if errors:
        raise errors[0]
    return out


def _targets(y, K):
    """``(codes, Y)`` for the kernels: int64 labels and an empty (0, K) ``Y``, or no codes and float64 ``Y``."""
    y = np.asarray(y)
    if y.ndim == 1:
        return np.ascontiguousarray(y, dtype=np.int64), np.empty((0, K))
    return np.empty(0, dtype=np.int64), np.ascontiguousarray(y, dtype=np.float64)


def _over_rows(kernel, X, codes, Y, sw, *args, P=None):
    """``kernel(X[r0:r1], codes[r0:r1], Y[r0:r1], sw[r0:r1], *args)`` over ``numba.get_num_threads()`` row ranges,
    one Python thread each (``P[r0:r1]`` appended when ``P`` is given); the list of their results.

    Plain threads running a nogil kernel rather than a ``prange``: an OpenMP
    region leaves its workers spinning for milliseconds after it ends, which
    on a 2-core machine slows whatever runs next (the SGD epoch kernel's
    threads, a BLAS call) by up to 3x. These threads exit when their range is done.
    """
    n = X.shape[0]
    T = max(1, min(numba.get_num_threads(), n // _BLOCK))
    bounds = [t * n // T for t in range(T + 1)]

    def cut(a, r0, r1):
        return a[r0:r1] if a.shape[0] else a

    def work(t):
        r0, r1 = bounds[t], bounds[t + 1]
        tail = (cut(P, r0, r1),) if P is not None else ()
        return kernel(X[r0:r1], cut(codes, r0, r1), cut(Y, r0, r1), sw[r0:r1], *args, *tail)

    return run_threads(work, T)


def _threaded_pass(X, codes, Y, sw, W, b, V, vb, what, P):
    """:func:`_pass` over row ranges in threads (:func:`_over_rows`), the parts summed."""
    out = _over_rows(_pass, X, codes, Y, sw, W, b, V, vb, what, 1, P=P)
    f = sum(o[0] for o in out)
    G = sum(o[1].sum(axis=0) for o in out)
    gb = sum(o[2].sum(axis=0) for o in out)
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
    codes, Y = _targets(y, K)
    sw = np.ascontiguousarray(sw, dtype=np.float64)
    out = _over_rows(_losses_pass, X, codes, Y, sw, W, b, K)
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
    bad = _predict(X, W, np.ascontiguousarray(intercept, dtype=np.float64), out, labels, what, numba.get_num_threads())
    if bad:
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
