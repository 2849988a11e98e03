"""Register tiles of the fused linear pass, in IR: the logits ``X W^T`` and the gradient update ``R^T X``.

Each tile keeps its accumulators in registers while it runs along the
columns (the logits) or down the rows (the update), and prefetches the next
block of rows of ``X`` (``llvm.prefetch``) at the rate its FMAs run, so that
the stream of ``X`` overlaps the arithmetic (:mod:`.linear`).
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from .vec import VECTOR_BITS, vector_loop, lane_sum, lanes_at, prefetch, rows_of, splat_value, vector_at, vector_fma

__all__ = ["MAX_ASKED", "DOT_CLASSES", "STRIP_CLASSES", "STRIP_VECTORS", "block_logits", "block_update"]

# The most rows one tile prefetches (_sweep); _prefetch_plan never hands out more (8 groups of 4 rows per
# block make at least 8 tile calls for the 32 rows of the next block).
MAX_ASKED = 4

#: Classes per logits tile (of four rows), classes per update strip and vectors of columns per strip: as
#: many accumulators as the vector registers hold beside the loads that feed them, 32 registers with AVX-512
#: and 16 without. A tile whose accumulators do not fit spills them to the stack at every step, which halves
#: its speed, and more when the thread's stack happens to alias the rows it loads.
DOT_CLASSES = 5 if VECTOR_BITS == 512 else 2
STRIP_CLASSES = 5
STRIP_VECTORS = 4 if VECTOR_BITS == 512 else 2



def _sweep(context, builder, X_t, p, P_t, pre, ip, npf, step, tail, between=None):
    """The column loop of a tile: ``step(j)`` for j = 0, L, 2L, ... below ``p - p mod L`` (L lanes
    of X's dtype in VECTOR_BITS), then ``between()``, then ``tail(j)`` for the last columns one at a time.

    At each step it also prefetches the same columns of rows ``ip .. ip + npf - 1``
    of ``P`` (``llvm.prefetch`` into L1, one cache line per row per step, at
    most ``MAX_ASKED`` rows; ``npf <= 0`` prefetches nothing). So the rows prefetched
    for are requested at the rate the FMAs run, not in a burst the core's
    queue of misses cannot hold.
    """
    i64 = ir.IntType(64)
    lanes = VECTOR_BITS // X_t.dtype.bitwidth
    # Row pointers by arithmetic only: a row at or past npf is never touched.
    prefetched = rows_of(context, builder, P_t, pre, ip, MAX_ASKED)
    steps = builder.udiv(p, ir.Constant(i64, lanes))
    # One copy of the loop per count of rows prefetched, behind a switch: no test inside the loop.
    count = builder.select(builder.icmp_signed(">", npf, ir.Constant(i64, MAX_ASKED)), ir.Constant(i64, MAX_ASKED), npf)
    blocks = [builder.append_basic_block(f"sweep.prefetching.{rows}") for rows in range(MAX_ASKED + 1)]
    done = builder.append_basic_block("sweep.done")
    switch = builder.switch(count, blocks[0])  # npf <= 0 prefetches nothing
    for rows, block in enumerate(blocks):
        if rows:
            switch.add_case(ir.Constant(i64, rows), block)
        builder.position_at_end(block)
        with cgutils.for_range(builder, steps) as loop:
            j = builder.mul(loop.index, ir.Constant(i64, lanes))
            prefetch(builder, [builder.gep(row, [j]) for row in prefetched[:rows]])
            step(j)
        builder.branch(done)
    builder.position_at_end(done)
    if between is not None:
        between()
    with cgutils.for_range_slice(builder, builder.mul(steps, ir.Constant(i64, lanes)), p, ir.Constant(i64, 1),
                                 inc=True) as (j, _):
        tail(j)


def _dot(context, builder, classes, xs, ws, p, X_t, P_t, pre, ip, npf):
    r"""The IR of a register tile: the ``4 x classes`` dot products ``xs[q] . ws[m]`` of ``p`` columns (row
    pointers in X's dtype), summed in X's dtype; returns them as values, ``q * classes + m``.

    Per step of one vector of columns four loads of X and ``classes`` loads of W
    feed ``4 * classes`` accumulators, while rows ``ip .. ip + npf - 1`` of ``P``
    are prefetched (:func:`_sweep`). The accumulators' lanes are then summed by
    halving, and the last ``p mod lanes`` columns added one at a time.
    """
    ft = context.get_value_type(X_t.dtype)
    lanes = VECTOR_BITS // X_t.dtype.bitwidth
    vt = ir.VectorType(ft, lanes)
    acc = [cgutils.alloca_once(builder, vt) for _ in range(4 * classes)]
    sums = [cgutils.alloca_once(builder, ft) for _ in range(4 * classes)]
    for a in acc:
        builder.store(ir.Constant(vt, [0.0] * lanes), a)

    def step(j):
        xv = [vector_at(builder, r, j, vt) for r in xs]
        for m in range(classes):
            wv = vector_at(builder, ws[m], j, vt)
            for q in range(4):
                a = acc[q * classes + m]
                builder.store(vector_fma(builder, xv[q], wv, builder.load(a)), a)

    def between():
        for a, s in zip(acc, sums):
            builder.store(lane_sum(builder, builder.load(a)), s)

    def tail(j):
        xv = [builder.load(builder.gep(r, [j])) for r in xs]
        for m in range(classes):
            wv = builder.load(builder.gep(ws[m], [j]))
            for q in range(4):
                a = sums[q * classes + m]
                builder.store(builder.fma(xv[q], wv, builder.load(a)), a)

    _sweep(context, builder, X_t, p, P_t, pre, ip, npf, step, tail, between)
    return [builder.load(s) for s in sums]


class _BlockStep:
    """The arguments of a block step ``(X, i0, nb, a, b, c, d, nxt, per, stop)`` inside its codegen: the arrays
    (``arrays``, X first, with their types in ``types``), the rows ``i0 .. i0 + nb`` of X, and the next row to
    prefetch, which each tile moves on by ``per`` (:meth:`advance`)."""

    def __init__(self, context, builder, signature, args):
        self.context, self.builder = context, builder
        at = (0, 3, 4, 5, 6)
        self.types = [signature.args[n] for n in at]
        self.arrays = [context.make_array(signature.args[n])(context, builder, args[n]) for n in at]
        self.i0, self.nb, first, self.per, self.stop = (context.cast(builder, args[n], signature.args[n], types.int64)
                                                        for n in (1, 2, 7, 8, 9))
        self.nxt = cgutils.alloca_once_value(builder, first)

    def const(self, v):
        return ir.Constant(ir.IntType(64), v)

    def item(self, aryty, ary, *idx):
        """A pointer to ``ary[idx]``."""
        return cgutils.get_item_pointer(self.context, self.builder, aryty, ary, list(idx))

    def share(self):
        """Rows the next tile prefetches: ``per``, fewer near ``stop``, never negative."""
        b = self.builder
        n = b.sub(self.stop, b.load(self.nxt))
        n = b.select(b.icmp_signed("<", self.per, n), self.per, n)
        return b.select(b.icmp_signed("<", n, self.const(0)), self.const(0), n)

    def advance(self):
        self.builder.store(self.builder.add(self.builder.load(self.nxt), self.per), self.nxt)


@intrinsic
def block_logits(typingctx, X, i0, nb, W, b, Z, Xq, nxt, per, stop):
    r"""``Z[k, q] = X[i0 + q] . W[k] + b[k]`` for q < nb (the products in X's dtype, Z and b float64),
    four rows at a time; returns the next row to prefetch.

    Each group of four rows goes through register tiles of ``DOT_CLASSES`` classes, then one
    tile per class left over (:func:`_dot`). The last group of fewer than four
    rows is copied into the padded buffer ``Xq`` (4, p), its spare rows
    repeating row ``i0``; Z's other columns keep whatever they held. Each tile
    prefetches ``per`` rows of X from the next row to prefetch, none at or past
    ``stop``, and moves that row on by ``per``.
    """
    sig = types.int64(X, i0, nb, W, b, Z, Xq, nxt, per, stop)

    def codegen(context, builder, signature, args):
        step = _BlockStep(context, builder, signature, args)
        X_t, W_t, b_t, Z_t, Xq_t = step.types
        x, w, bias, z, xq = step.arrays
        i0, nb, const, item = step.i0, step.nb, step.const, step.item
        K = builder.extract_value(w.shape, 0)
        p = builder.extract_value(x.shape, 1)

        def tile(classes, k, g, xs):
            ws = rows_of(context, builder, W_t, w, k, classes)
            sums = _dot(context, builder, classes, xs, ws, p, X_t, X_t, x, builder.load(step.nxt), step.share())
            for m in range(classes):
                for q in range(4):
                    out = item(Z_t, z, builder.add(k, const(m)), builder.add(g, const(q)))
                    builder.store(context.cast(builder, sums[q * classes + m], X_t.dtype, Z_t.dtype), out)
            step.advance()

        groups = builder.udiv(builder.add(nb, const(3)), const(4))
        with cgutils.for_range(builder, groups) as gl:
            g = builder.mul(gl.index, const(4))
            full = builder.icmp_signed("<=", builder.add(g, const(4)), nb)
            with builder.if_then(builder.not_(full)):
                for q in range(4):
                    at = builder.add(g, const(q))
                    src = builder.select(builder.icmp_signed("<", at, nb), builder.add(i0, at), i0)
                    with cgutils.for_range(builder, p) as jl:
                        value = builder.load(item(X_t, x, src, jl.index))
                        builder.store(value, item(Xq_t, xq, const(q), jl.index))
            xs = [builder.select(full, item(X_t, x, builder.add(i0, builder.add(g, const(q))), const(0)),
                                 item(Xq_t, xq, const(q), const(0))) for q in range(4)]
            whole = builder.udiv(K, const(DOT_CLASSES))
            with cgutils.for_range(builder, whole) as tl:
                tile(DOT_CLASSES, builder.mul(tl.index, const(DOT_CLASSES)), g, xs)
            with cgutils.for_range_slice(builder, builder.mul(whole, const(DOT_CLASSES)), K, const(1),
                                         inc=True) as (k, _):
                tile(1, k, g, xs)
            with cgutils.for_range(builder, K) as kl:
                bk = builder.load(item(b_t, bias, kl.index))
                for q in range(4):
                    out = item(Z_t, z, kl.index, builder.add(g, const(q)))
                    builder.store(builder.fadd(builder.load(out), bk), out)
        return builder.load(step.nxt)

    return sig, codegen


def _strip(context, builder, classes, G_t, g, k, X_t, x, i, n, R_t, r, P_t, pre, ip, npf, vectors=STRIP_VECTORS):
    r"""The IR of a strip tile: for m < ``classes``, ``G[k + m] += sum_{q < n} R[q, k + m] X[i + q]``, the
    rows added in order, R in X's dtype.

    A strip of ``vectors`` vectors of columns of the ``classes`` rows of G stays
    in registers while the loop runs down the ``n`` rows of X: per row,
    ``vectors`` loads of X and ``classes`` broadcasts of R feed
    ``classes * vectors`` FMAs, and G is loaded and stored once per strip, not
    once per row. Strips of ``vectors`` vectors, then of one vector, then the
    last ``p mod lanes`` columns one at a time. The caller keeps every row
    index in range.

    While it runs, the tile prefetches rows ``ip .. ip + npf - 1`` of ``P``
    (``llvm.prefetch`` into L1; ``npf <= 0`` prefetches nothing, and at most
    ``n`` rows are prefetched): in each strip the loop's first ``npf`` rows
    also prefetch the strip's cache lines of one row of ``P`` each, so every
    whole vector of those rows is prefetched once, spread over the strips.
    """
    i64 = ir.IntType(64)
    zero = ir.Constant(i64, 0)
    npf = builder.select(builder.icmp_signed("<", npf, zero), zero, npf)
    npf = builder.select(builder.icmp_signed(">", npf, n), n, npf)
    ft = context.get_value_type(X_t.dtype)
    lanes = VECTOR_BITS // X_t.dtype.bitwidth
    vt = ir.VectorType(ft, lanes)
    al = X_t.dtype.bitwidth // 8
    gs = rows_of(context, builder, G_t, g, k, classes)

    def strip(j, count, wide):
        """G[k + m, j : j + count * w] += ..., w = lanes if ``wide`` else 1 (``count`` 1)."""
        ty = vt if wide else ft
        at = [builder.add(j, ir.Constant(i64, v * lanes)) for v in range(count)]

        def ptr(row, o):
            return lanes_at(builder, row, o, vt) if wide else builder.gep(row, [o])

        acc = [[cgutils.alloca_once(builder, ty) for _ in at] for _ in range(classes)]
        for m in range(classes):
            for a, o in zip(acc[m], at):
                builder.store(builder.load(ptr(gs[m], o), align=al), a)

        def row_step(q, prefetching):
            if prefetching:
                ahead = cgutils.get_item_pointer(context, builder, P_t, pre, [builder.add(ip, q), zero])
                prefetch(builder, [builder.gep(ahead, [o]) for o in at])
            row = cgutils.get_item_pointer(context, builder, X_t, x, [builder.add(i, q), zero])
            xv = [builder.load(ptr(row, o), align=al) for o in at]
            for m in range(classes):
                c = builder.load(cgutils.get_item_pointer(context, builder, R_t, r,
                                                          [q, builder.add(k, ir.Constant(i64, m))]))
                if wide:
                    c = splat_value(builder, c, vt)
                for a, v in zip(acc[m], xv):
                    old = builder.load(a)
                    builder.store(vector_fma(builder, v, c, old) if wide else builder.fma(v, c, old), a)

        # In a strip of whole vectors the first npf rows prefetch, the rest do not: two loops, no
        # test inside either. Single columns prefetch nothing.
        first = npf if wide else zero
        if wide:
            with vector_loop(builder, zero, npf) as q:
                row_step(q, True)
        with vector_loop(builder, first, n) as q:
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


@intrinsic
def block_update(typingctx, X, i0, nb, R, Rx, G, gb, nxt, per, stop):
    r"""``G += R[:, :nb] X[i0 : i0 + nb]`` and ``gb += R[:, :nb].sum(1)``: a block's gradient update.

    ``R`` (K, B) float64 is dloss/dlogits classes-first; it is first copied
    transposed into ``Rx`` (B, K) in X's dtype, the update's products being in
    X's dtype, as ``G`` (K, p). Then strips of ``STRIP_CLASSES`` classes (:func:`_strip`), and
    one strip for the 1 to 4 classes left over. Each strip prefetches ``per``
    rows of X from ``nxt``, none at or past ``stop`` (the whole strips move
    ``nxt`` on by ``per`` each).
    """
    sig = types.void(X, i0, nb, R, Rx, G, gb, nxt, per, stop)

    def codegen(context, builder, signature, args):
        step = _BlockStep(context, builder, signature, args)
        X_t, R_t, Rx_t, G_t, gb_t = step.types
        x, r, rx, g, gbias = step.arrays
        i0, nb, const, item = step.i0, step.nb, step.const, step.item
        K = builder.extract_value(r.shape, 0)

        with cgutils.for_range(builder, nb) as ql:
            with cgutils.for_range(builder, K) as kl:
                value = builder.load(item(R_t, r, kl.index, ql.index))
                builder.store(context.cast(builder, value, R_t.dtype, Rx_t.dtype), item(Rx_t, rx, ql.index, kl.index))

        def strip(classes, k):
            _strip(context, builder, classes, G_t, g, k, X_t, x, i0, nb, Rx_t, rx, X_t, x, builder.load(step.nxt),
                   step.share())

        whole = builder.udiv(K, const(STRIP_CLASSES))
        with cgutils.for_range(builder, whole) as tl:
            strip(STRIP_CLASSES, builder.mul(tl.index, const(STRIP_CLASSES)))
            step.advance()
        k0 = builder.mul(whole, const(STRIP_CLASSES))
        done = builder.append_basic_block("update.rest.done")
        cases = builder.switch(builder.sub(K, k0), done)
        for left in range(1, STRIP_CLASSES):
            block = builder.append_basic_block(f"update.rest.{left}")
            cases.add_case(const(left), block)
            builder.position_at_end(block)
            strip(left, k0)
            builder.branch(done)
        builder.position_at_end(done)
        with cgutils.for_range(builder, K) as kl:
            acc = cgutils.alloca_once_value(builder, ir.Constant(ir.DoubleType(), 0.0))
            with cgutils.for_range(builder, nb) as ql:
                builder.store(builder.fadd(builder.load(acc), builder.load(item(R_t, r, kl.index, ql.index))), acc)
            out = item(gb_t, gbias, kl.index)
            builder.store(builder.fadd(builder.load(out), builder.load(acc)), out)
        return context.get_dummy_value()

    return sig, codegen
