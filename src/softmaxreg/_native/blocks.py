"""The IR of the short-row kernels: a block of rows, classes first or in registers, through max, exp and sums.

Rows shorter than :data:`SMALL_K` fill no vector, so the kernels of
:mod:`.rows` and :mod:`.labels` run them in blocks of :data:`BLOCK` rows
with the lanes running across rows: either transposed into a classes-first
scratch (:func:`_block_terms` and its finishes) or, on AVX-512 and for rows
of 2 to 15, read row by row and transposed in registers (:func:`_rows_softmax`
and its siblings). Both give the same bits (float64 log_softmax may differ in
the last rounding of its log-sum).

Per group of L rows (one register of lanes) the running max, the chunk sum
and the tie count stay in registers while the loop runs over the classes;
the terms are added in x's dtype over chunks of :data:`SMALL_CHUNK` classes
and the chunks' sums in float64.
"""

from __future__ import annotations

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from .mathfn import vector_exp, vector_log1p
from .vec import (AVX512, SHUFFLE_K, cases_of_k, columns, element_pointer, lanes_at, masked_memory, splat,
                  splat_value, to_f64, transpose_lanes)

#: Rows shorter than this go by blocks (:mod:`.rows`).
SMALL_K = 48
#: Classes whose terms are added in x's dtype before a float64 sum.
SMALL_CHUNK = 16
#: Rows per block.
BLOCK = 128


def _larger(builder, v, m):
    """The running max: ``v`` where it is larger than ``m``; a NaN ``v`` never replaces ``m`` (a NaN first
    entry stays the max, and a NaN elsewhere shows up as a NaN term)."""
    return builder.select(builder.fcmp_ordered(">", v, m), v, m)


def _add_term(builder, t, e, part, ties):
    """(part, ties) after class term e = exp(t): the max's own term (t = 0) is counted in ``ties``, not added
    to ``part``; a NaN t has a NaN term, which poisons the sum (and flags the row)."""
    zero, one = splat(t.type, 0.0), splat(t.type, 1.0)
    tie = builder.fcmp_ordered("==", t, zero)
    return builder.fadd(part, builder.select(tie, zero, e)), builder.fadd(ties, builder.select(tie, one, zero))


def _rest_total(builder, acc, ties):
    """``rest`` (float64 lanes) from the chunk sums ``acc`` and the tie count: ties with the max beyond the
    first add 1 each, added last so a tiny rest keeps its digits."""
    dvt = acc.type
    extra = builder.fsub(to_f64(builder, ties), splat(dvt, 1.0))
    return builder.fadd(acc, builder.select(builder.fcmp_ordered("!=", ties, splat(ties.type, 1.0)), extra, splat(dvt, 0.0)))


def _emit_block_terms(context, builder, signature, args, finish=None):
    """The IR of :func:`_block_terms` (``finish`` None), :func:`_block_sums` ("sums"), :func:`_block_softmax`
    ("softmax"), :func:`_block_grad` ("grad") and :func:`_block_label_logit` ("label")."""
    T = signature.args[0]
    i64 = ir.IntType(64)
    ft = context.get_value_type(T.dtype)
    L = 512 // T.dtype.bitwidth
    vt, dvt = ir.VectorType(ft, L), ir.VectorType(ir.DoubleType(), L)
    size = T.dtype.bitwidth // 8
    Tp, Up, mp, rp = (context.make_array(a)(context, builder, v).data for a, v in zip(signature.args[:4], args[:4]))
    Kv = args[4]

    inv = splat_value(builder, args[5], vt)
    zero = splat(vt, 0.0)

    def narrow(v):  # float64 lanes to x's dtype
        return builder.fptrunc(v, vt) if size == 4 else v

    def column(ptr, j, g):  # the vector of class j's lanes for group g
        return lanes_at(builder, ptr, builder.add(builder.mul(j, ir.Constant(i64, BLOCK)), g), vt)

    if finish in ("grad", "label"):
        yp = context.make_array(signature.args[6])(context, builder, args[6]).data
    if finish == "grad":
        f = splat_value(builder, args[7], dvt)
        d = splat_value(builder, builder.fptrunc(args[7], ft) if size == 4 else args[7], vt)
    if finish == "label":
        typ = context.make_array(signature.args[7])(context, builder, args[7]).data
        tyv = cgutils.alloca_once(builder, vt)
    mx = cgutils.alloca_once(builder, vt)
    part = cgutils.alloca_once(builder, vt)
    ties = cgutils.alloca_once(builder, vt)
    acc = cgutils.alloca_once(builder, dvt)
    with cgutils.for_range(builder, ir.Constant(i64, BLOCK // L)) as group:
        g = builder.mul(group.index, ir.Constant(i64, L))
        builder.store(builder.load(column(Tp, ir.Constant(i64, 0), g), align=size), mx)
        with cgutils.for_range_slice(builder, ir.Constant(i64, 1), Kv, ir.Constant(i64, 1), inc=True) as (j, _):
            builder.store(_larger(builder, builder.load(column(Tp, j, g), align=size), builder.load(mx)), mx)
        mv = builder.load(mx)
        builder.store(mv, lanes_at(builder, mp, g, vt), align=size)
        builder.store(splat(dvt, 0.0), acc)
        builder.store(zero, ties)
        if finish in ("grad", "label"):
            yv = builder.load(lanes_at(builder, yp, g, ir.VectorType(i64, L)), align=8)
        if finish == "label":
            builder.store(zero, tyv)
        chunk = ir.Constant(i64, SMALL_CHUNK)
        with cgutils.for_range_slice(builder, ir.Constant(i64, 0), Kv, chunk, inc=True) as (j0, _):
            builder.store(zero, part)
            j1 = builder.add(j0, chunk)
            j1 = builder.select(builder.icmp_signed("<", j1, Kv), j1, Kv)
            with cgutils.for_range_slice(builder, j0, j1, ir.Constant(i64, 1), inc=True) as (j, _):
                tj = builder.load(column(Tp, j, g), align=size)
                t = builder.fmul(builder.fsub(tj, mv), inv)
                e = vector_exp(builder, t)
                if finish == "label":
                    # The label's logit by a select per class (no gather); 0 for a label out of range.
                    hit = builder.icmp_signed("==", yv, splat_value(builder, j, ir.VectorType(i64, L)))
                    builder.store(builder.select(hit, tj, builder.load(tyv)), tyv)
                elif finish != "sums":  # the loss and the log-sum need no terms
                    builder.store(e, column(Up, j, g), align=size)
                p_, t_ = _add_term(builder, t, e, builder.load(part), builder.load(ties))
                builder.store(p_, part)
                builder.store(t_, ties)
            builder.store(builder.fadd(builder.load(acc), to_f64(builder, builder.load(part))), acc)
        total = _rest_total(builder, builder.load(acc), builder.load(ties))
        builder.store(total, lanes_at(builder, rp, g, dvt), align=8)
        if finish == "label":  # t_y = (x_y - m) inv_t
            builder.store(builder.fmul(builder.fsub(builder.load(tyv), mv), inv), lanes_at(builder, typ, g, vt), align=size)
        elif finish in ("softmax", "grad"):
            # Scale the group's terms while they are in L1: s = 1 / (1 + rest), or
            # a = f / (1 + rest) and the label's -f (a label out of range matches no class).
            q = narrow(builder.fdiv(f if finish == "grad" else splat(dvt, 1.0), builder.fadd(splat(dvt, 1.0), total)))
            with cgutils.for_range(builder, Kv) as cls:
                u = builder.fmul(builder.load(column(Up, cls.index, g), align=size), q)
                if finish == "grad":
                    hit = builder.icmp_signed("==", yv, splat_value(builder, cls.index, ir.VectorType(i64, L)))
                    u = builder.fsub(u, builder.select(hit, d, zero))
                builder.store(u, column(Up, cls.index, g), align=size)
    return context.get_dummy_value()


@intrinsic
def _block_terms(typingctx, T, U, m, rest, K, inv_t):
    """The max ``m``, terms ``U`` and ``rest`` of a block of BLOCK rows held classes-first in ``T``.

    For each group of L rows (one register of lanes; L = 16 float32 or 8
    float64) and in vector IR, so that the group's running max, its chunk
    sum and its tie count stay in registers while the loop runs over the K
    classes: ``m`` = max_j T_j; ``U_j`` = exp(t_j), t_j = (T_j - m) inv_t
    (:func:`vector_exp`); ``part`` = the sum of the terms with t_j < 0 over
    chunks of SMALL_CHUNK classes in x's dtype, each chunk's sum added to
    ``rest`` in float64; ``rest`` += ties - 1 when the max is tied. A NaN t
    poisons the sum, which flags the row; a NaN first entry makes m NaN.
    ``T``, ``U``: K * BLOCK of x's dtype; ``m``: BLOCK of x's dtype;
    ``rest``: BLOCK float64.
    """
    return types.void(T, U, m, rest, K, inv_t), _emit_block_terms


@intrinsic
def _block_sums(typingctx, T, U, m, rest, K, inv_t):
    """:func:`_block_terms` without storing the terms (``U`` is not written): the max ``m`` and ``rest`` only,
    what log_softmax and logsumexp need."""

    def codegen(context, builder, signature, args):
        return _emit_block_terms(context, builder, signature, args, "sums")

    return types.void(T, U, m, rest, K, inv_t), codegen


@intrinsic
def _block_softmax(typingctx, T, U, m, rest, K, inv_t):
    """:func:`_block_terms`, then each group's terms scaled in place to the softmax: ``U_j`` *= s, s = 1 / (1 + rest)
    (in float64, rounded to x's dtype), while the group is in L1."""

    def codegen(context, builder, signature, args):
        return _emit_block_terms(context, builder, signature, args, "softmax")

    return types.void(T, U, m, rest, K, inv_t), codegen


@intrinsic
def _block_label_logit(typingctx, T, U, m, rest, K, inv_t, y, ty):
    """:func:`_block_terms` without storing the terms, and each row's ``ty`` = t_y = (T_y - m) inv_t (0 for a label
    out of range; x's dtype); ``y``: BLOCK int64 labels. What the cross-entropy of plain labels needs."""

    def codegen(context, builder, signature, args):
        return _emit_block_terms(context, builder, signature, args, "label")

    return types.void(T, U, m, rest, K, inv_t, y, ty), codegen


@intrinsic
def _block_grad(typingctx, T, U, m, rest, K, inv_t, y, f):
    """:func:`_block_terms`, then each group's terms turned in place into the cross-entropy gradient of
    plain labels: ``U_j`` = a U_j - f [y == j], a = f / (1 + rest) (in float64, rounded to x's dtype);
    ``y``: BLOCK int64 labels (one out of range matches no class), ``f``: float64."""

    def codegen(context, builder, signature, args):
        return _emit_block_terms(context, builder, signature, args, "grad")

    return types.void(T, U, m, rest, K, inv_t, y, f), codegen


# ---------------------------------------------------------------------------
# Short rows in registers (AVX-512): a group of L rows (16 float32, 8
# float64) is L row loads (two per row for float64 rows longer than 8), an
# L x L transpose by in-lane shuffles, the max, terms and sums of
# _emit_block_terms on the K class vectors held in registers, the finish, the
# transpose back and L row stores. No scratch between the steps, and no
# ``vpermt2ps``: it runs on the FMA pipes, which the exponential needs, where
# the unpacks and 128-bit block moves run on the other two.

#: Row lengths that go through the register kernels (:func:`register_rows`). At 16 a float32 row is a
#: whole vector and the scratch path's transposes cost nothing; 1 is the constant 1 / 0.
REGISTER_K = (2, SHUFFLE_K - 1)


def _group_starts(builder, step, groups, L):
    """The first rows of the ``groups`` groups of L rows that loop step ``step`` (an i64) runs side by side:
    ``(step groups + i) L`` for i < groups."""
    i64 = ir.IntType(64)
    return [builder.mul(builder.add(builder.mul(step, ir.Constant(i64, groups)), ir.Constant(i64, i)), ir.Constant(i64, L))
            for i in range(groups)]


def _parts_of_row(k, L):
    """A row of k as vectors of L lanes: one from its first element, or two for k > L (float64): part h
    from element h L, with min(L, k - h L) lanes of the row, as ``(h, lanes)``."""
    return [(h, min(L, k - h * L)) for h in range(-(-k // L))]


def _row_part_at(builder, ptr, g, r, h, k, vt):
    """A pointer to part h of row r of the group of rows of k from row ``g`` (an i64) at ``ptr``."""
    i64 = ir.IntType(64)
    return lanes_at(builder, ptr, builder.add(builder.mul(g, ir.Constant(i64, k)), ir.Constant(i64, r * k + vt.count * h)), vt)


def _inside_group(r, h, k, L):
    """Whether a whole vector at part h of row r stays inside its group of L rows of k."""
    return r * k + h * L + L <= L * k


def _last_group(builder, g, L):
    """Whether the group of L rows from row ``g`` (an i64) is the last of its block (an i1)."""
    return builder.icmp_signed("==", g, ir.Constant(ir.IntType(64), BLOCK - L))


def _group_columns(builder, px, g, k, vt, is_last):
    """The k class vectors of the group of L rows of k from row ``g`` (an i64) at ``px``: each row one
    vector load (two for float64 rows longer than 8), then L x L transposes (:func:`transpose_lanes`).

    A whole vector from a row runs into the rows after it: past the group's
    end only for its last rows, and past the block's end only in the last
    group (``is_last``, an i1). There only the row's own lanes are read
    (masked: slow on memory, so only where it must be). In-lane shuffles
    and block moves: no index vectors and no copies, where LLVM lowers
    :func:`columns`' shuffles of one long load to ``vpermt2ps``/``pd``,
    each of which overwrites a source that must first be copied (times in
    ``_ROW_LOADS_FROM``).
    """
    L = vt.count
    size = 4 if isinstance(vt.element, ir.FloatType) else 8

    def read(r, h, lanes):
        ptr = _row_part_at(builder, px, g, r, h, k, vt)
        if _inside_group(r, h, k, L):
            return builder.load(ptr, align=size)
        with builder.if_else(is_last) as (then, otherwise):
            with then:
                v_edge, b_edge = masked_memory(builder, vt, lanes)[0](ptr), builder.block
            with otherwise:
                v_mid, b_mid = builder.load(ptr, align=size), builder.block
        phi = builder.phi(vt)
        phi.add_incoming(v_edge, b_edge)
        phi.add_incoming(v_mid, b_mid)
        return phi

    return [c for h, lanes in _parts_of_row(k, L) for c in transpose_lanes(builder, [read(r, h, lanes) for r in range(L)])[:lanes]]


#: Groups of rows interleaved in one pass of the register kernels, by itemsize: two float32 groups'
#: exponentials overlap on AVX-512; two float64 groups, or two float32 ones in half-width registers (no
#: AVX-512), run out of registers, and every group repeats the code of each row length (benchmarks/history.md).
_GROUPS = {4: 2 if AVX512 else 1, 8: 1}


def _emit_rows(context, builder, signature, args, finish):
    """The IR of :func:`_rows_softmax` ("softmax"), :func:`_rows_log_softmax` ("log_softmax") and
    :func:`_rows_grad` ("grad"), arguments ``(xf, x0, ob, o0, m, rest, K, inv_t[, y, f])``, and of
    :func:`_rows_sums` ("sums"), arguments ``(xf, x0, m, rest, K, inv_t)``."""
    if finish == "sums":  # no output rows
        args = list(args[:2]) + [None, None] + list(args[2:])
        signature = types.void(*signature.args[:2], types.none, types.none, *signature.args[2:])
    dtype = signature.args[0].dtype
    if not AVX512:
        return context.get_dummy_value()
    i64 = ir.IntType(64)
    ft = context.get_value_type(dtype)
    size = dtype.bitwidth // 8
    L = 64 // size  # rows in a group, lanes in a vector
    G = _GROUPS[size]
    vt, dvt, yt = ir.VectorType(ft, L), ir.VectorType(ir.DoubleType(), L), ir.VectorType(i64, L)
    px = element_pointer(context, builder, signature, args[:2])
    if finish != "sums":
        po = element_pointer(context, builder, types.void(*signature.args[2:4]), args[2:4])
    mp, rp = (context.make_array(signature.args[a])(context, builder, args[a]).data for a in (4, 5))
    inv = splat_value(builder, args[7], vt)
    zero = splat(vt, 0.0)

    def narrow(v):  # float64 lanes to x's dtype
        return builder.fptrunc(v, vt) if size == 4 else v

    if finish == "grad":
        yp = context.make_array(signature.args[8])(context, builder, args[8]).data
        f = splat_value(builder, args[9], dvt)
        d = splat_value(builder, builder.fptrunc(args[9], ft) if size == 4 else args[9], vt)

    def body(k):
        parts_of_row = _parts_of_row(k, L)
        masked = {lanes: masked_memory(builder, vt, lanes) for _, lanes in parts_of_row}

        with cgutils.for_range(builder, ir.Constant(i64, BLOCK // (L * G))) as step:
            gs = _group_starts(builder, step.index, G, L)
            last = [_last_group(builder, g, L) for g in gs]

            def write(v, g, r, h, lanes, is_last):  # each row's tail is overwritten by the next row
                ptr = _row_part_at(builder, po, g, r, h, k, vt)
                if _inside_group(r, h, k, L):
                    builder.store(v, ptr, align=size)
                    return
                with builder.if_else(is_last) as (then, otherwise):
                    with then:
                        masked[lanes][1](v, ptr)
                    with otherwise:
                        builder.store(v, ptr, align=size)

            cols = [_group_columns(builder, px, g, k, vt, is_last) for g, is_last in zip(gs, last)]
            mvs = []
            for i, g in enumerate(gs):
                mv = cols[i][0]
                for v in cols[i][1:]:
                    mv = _larger(builder, v, mv)
                builder.store(mv, lanes_at(builder, mp, g, vt), align=size)
                mvs.append(mv)
            parts, ties, terms = [zero] * G, [zero] * G, [[] for _ in gs]
            for j in range(k):  # class by class, the groups side by side
                for i in range(G):
                    t = builder.fmul(builder.fsub(cols[i][j], mvs[i]), inv)
                    e = vector_exp(builder, t)
                    terms[i].append(e)
                    parts[i], ties[i] = _add_term(builder, t, e, parts[i], ties[i])
            outs = []
            for i, g in enumerate(gs):
                total = _rest_total(builder, builder.fadd(splat(dvt, 0.0), to_f64(builder, parts[i])), ties[i])
                builder.store(total, lanes_at(builder, rp, g, dvt), align=8)
                if finish == "log_softmax":  # (x - m) inv_t - log1p(rest)
                    s = narrow(vector_log1p(builder, total))
                    outs.append([builder.fsub(builder.fmul(builder.fsub(c, mvs[i]), inv), s) for c in cols[i]])
                elif finish != "sums":
                    q = narrow(builder.fdiv(f if finish == "grad" else splat(dvt, 1.0), builder.fadd(splat(dvt, 1.0), total)))
                    us = [builder.fmul(e, q) for e in terms[i]]
                    if finish == "grad":
                        yv = builder.load(lanes_at(builder, yp, g, yt), align=8)
                        us = [builder.fsub(u, builder.select(builder.icmp_signed("==", yv, splat(yt, j)), d, zero)) for j, u in enumerate(us)]
                    outs.append(us)
            for i, (g, is_last) in enumerate(zip(gs, last)):
                if finish == "sums":
                    break
                row_parts = [transpose_lanes(builder, outs[i][h * L : h * L + lanes] + [ir.Constant(vt, None)] * (L - lanes))
                             for h, lanes in parts_of_row]
                for r in range(L):
                    for (h, lanes), rows in zip(parts_of_row, row_parts):
                        write(rows[r], g, r, h, lanes, is_last)

    cases_of_k(builder, args[6], body, range(REGISTER_K[0], REGISTER_K[1] + 1))
    return context.get_dummy_value()


@intrinsic
def _rows_softmax(typingctx, xf, x0, ob, o0, m, rest, K, inv_t):
    """Softmax of the BLOCK rows from ``xf[x0]`` (flat, C order) into ``ob[o0]``, in registers.

    The same max ``m``, ``rest`` and terms as :func:`_block_softmax`, the same
    bits; the rows are read and written in place of the scratch's transposes.
    Only for rows of K in ``REGISTER_K`` on AVX-512 (:func:`register_rows`);
    other K or another machine: nothing is done. A row's stores run up to a
    vector past its end: the block's output must not overlap its input.
    """

    def codegen(context, builder, signature, args):
        return _emit_rows(context, builder, signature, args, "softmax")

    return types.void(xf, x0, ob, o0, m, rest, K, inv_t), codegen


@intrinsic
def _rows_sums(typingctx, xf, x0, m, rest, K, inv_t):
    """:func:`_rows_softmax` without the terms: ``m`` and ``rest`` only."""

    def codegen(context, builder, signature, args):
        return _emit_rows(context, builder, signature, args, "sums")

    return types.void(xf, x0, m, rest, K, inv_t), codegen


@intrinsic
def _rows_log_softmax(typingctx, xf, x0, ob, o0, m, rest, K, inv_t):
    """:func:`_rows_softmax` finished as log_softmax: ``ob`` = (x - m) inv_t - log1p(rest), the log-sum by
    :func:`vector_log1p` in registers: in float32 the same bits as the scratch path's :func:`log1p`."""

    def codegen(context, builder, signature, args):
        return _emit_rows(context, builder, signature, args, "log_softmax")

    return types.void(xf, x0, ob, o0, m, rest, K, inv_t), codegen


@intrinsic
def _rows_grad(typingctx, xf, x0, ob, o0, m, rest, K, inv_t, y, f):
    """:func:`_rows_softmax` finished as :func:`_block_grad`: the cross-entropy gradient of plain labels,
    ``a U_j - f [y == j]``, a = f / (1 + rest); ``y``: BLOCK int64 labels, ``f``: float64."""

    def codegen(context, builder, signature, args):
        return _emit_rows(context, builder, signature, args, "grad")

    return types.void(xf, x0, ob, o0, m, rest, K, inv_t, y, f), codegen


#: The fewest classes, by itemsize, whose rows :func:`_rows_label_logit` reads by row loads and in-lane
#: transposes (:func:`_group_columns`) rather than by :func:`columns`' shuffles of one long load: on
#: shorter rows a whole L x L transpose for a few classes costs more than the shuffles.
_ROW_LOADS_FROM = {4: 6, 8: 4}


@intrinsic
def _rows_label_logit(typingctx, xf, x0, m, rest, K, inv_t, y, ty):
    """:func:`_block_label_logit` read straight from the rows, for K <= SHUFFLE_K: the BLOCK rows from
    ``xf[x0]`` (flat, C order), a group of L rows at a time read into its K class vectors, which stay in
    registers (code for each K, behind a switch; ``_GROUPS`` groups side by side). From
    ``_ROW_LOADS_FROM`` classes on, by row loads and in-lane transposes (:func:`_group_columns`); below,
    by one vector load of the group and a shuffle per class (:func:`columns`). No scratch at all: the
    loads of the next group go out between the exponentials of this one, where transposes into scratch
    would need the whole block first."""
    sig = types.void(xf, x0, m, rest, K, inv_t, y, ty)

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        ft = context.get_value_type(xf.dtype)
        L = 512 // xf.dtype.bitwidth
        vt, dvt, yt = ir.VectorType(ft, L), ir.VectorType(ir.DoubleType(), L), ir.VectorType(i64, L)
        ct = ir.VectorType(ir.IntType(32), L)
        size = xf.dtype.bitwidth // 8
        px = element_pointer(context, builder, signature, args[:2])
        mp, rp, yp, typ = (context.make_array(signature.args[a])(context, builder, args[a]).data for a in (2, 3, 6, 7))
        inv = splat_value(builder, args[5], vt)
        zero = splat(vt, 0.0)

        G = _GROUPS[size]

        def body(k):
            with cgutils.for_range(builder, ir.Constant(i64, BLOCK // (L * G))) as step:
                gs = _group_starts(builder, step.index, G, L)
                cols, mvs, yvs = [], [], []
                for g in gs:
                    if k >= _ROW_LOADS_FROM[size]:
                        cols.append(_group_columns(builder, px, g, k, vt, _last_group(builder, g, L)))
                    else:
                        cols.append(columns(builder, builder.load(lanes_at(builder, px, builder.mul(g, ir.Constant(i64, k)), ir.VectorType(ft, L * k)), align=size), L, k))
                    mv = cols[-1][0]
                    for v in cols[-1][1:]:
                        mv = _larger(builder, v, mv)
                    builder.store(mv, lanes_at(builder, mp, g, vt), align=size)
                    mvs.append(mv)
                    yv = builder.load(lanes_at(builder, yp, g, yt), align=8)
                    if size == 4:
                        # 16 labels in 32-bit lanes: one compare per class, not two. A label out of range
                        # that wraps onto a class picks a t_y, but its row is flagged all the same.
                        yv = builder.trunc(yv, ct)
                    yvs.append(yv)
                accs, ties, tyvs = [splat(dvt, 0.0)] * G, [zero] * G, [zero] * G
                for j0 in range(0, k, SMALL_CHUNK):
                    parts = [zero] * G
                    for j in range(j0, min(k, j0 + SMALL_CHUNK)):  # class by class, the groups side by side
                        for i in range(G):
                            t = builder.fmul(builder.fsub(cols[i][j], mvs[i]), inv)
                            parts[i], ties[i] = _add_term(builder, t, vector_exp(builder, t), parts[i], ties[i])
                            tyvs[i] = builder.select(builder.icmp_signed("==", yvs[i], splat(yvs[i].type, j)), cols[i][j], tyvs[i])
                    accs = [builder.fadd(a, to_f64(builder, part)) for a, part in zip(accs, parts)]
                for i, g in enumerate(gs):
                    builder.store(_rest_total(builder, accs[i], ties[i]), lanes_at(builder, rp, g, dvt), align=8)
                    builder.store(builder.fmul(builder.fsub(tyvs[i], mvs[i]), inv), lanes_at(builder, typ, g, vt), align=size)

        cases_of_k(builder, args[4], body)
        return context.get_dummy_value()

    return sig, codegen
