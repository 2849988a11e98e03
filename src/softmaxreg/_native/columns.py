r"""The row-wise steps of the fused linear pass on a classes-first block, in IR: softmax, loss, dloss/dlogits.

A block of the pass (:mod:`.linear`) holds its rows' logits classes-first:
``Z[k, q]`` is class ``k`` of the block's row ``q``, for the ``B`` rows of a
block, ``B`` a multiple of the vector's lanes. Every step here runs along the
rows a vector of float64 lanes at a time, over all ``B`` columns whatever the
number ``nb`` of rows in use, so its loops have no remainder; the columns
past ``nb`` are never read back (the loss sums the first ``nb`` rows and
dloss/dlogits is zero past them).

They are written in IR, not in Numba, because of the compile time: the pass
compiles on its first call, and Numba's typing, inlining and lowering of
these loops, with LLVM vectorizing each of them again, cost seconds of a
first fit. Here each step is a few explicit vector loops, emitted once, into
the pass that calls it.

The scratch ``S`` (5, B) holds per row: 0 the max of its logits, 1 the sum of
``exp(z - max)``, 2 its inverse (the softmax) or the log-sum-exp (the loss),
3 the row's sample weight (0 past ``nb``), 4 the softmax JVP's
:math:`\langle p, z_V \rangle`.
"""

from __future__ import annotations

from contextlib import contextmanager

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from .mathfn import vector_exp, vector_log1p
from .vec import VECTOR_BITS, lanes_at, splat, vector_fma

__all__ = ["LOSS", "GRAD", "HESSP", "columns_softmax", "columns_terms", "rows_to_columns", "columns_to_rows"]

#: What :func:`columns_terms` computes, a bit set: the loss, dloss/dlogits, or the softmax JVP (a
#: Hessian-vector product; exclusive with GRAD).
LOSS, GRAD, HESSP = 1, 2, 4

_M, _SUM, _THIRD, _W, _D = 0, 1, 2, 3, 4  # the rows of S


class _Columns:
    """Vector and element access to the float64 2-D arrays of a block (rows of unit stride) in an intrinsic."""

    def __init__(self, builder, width):
        self.builder = builder
        self.i64 = ir.IntType(64)
        self.lanes = VECTOR_BITS // 64
        self.vt = ir.VectorType(ir.DoubleType(), self.lanes)
        self.width = width  # B, the columns of every block array

    def const(self, v):
        return ir.Constant(self.i64, v)

    def _offset(self, a, k, q):
        b = self.builder
        stride = b.sdiv(b.extract_value(a.strides, 0), self.const(8))  # a row's length in memory
        return b.add(b.mul(k, stride), q)

    def vector(self, a, k, q):
        """A pointer to the vector ``a[k, q : q + lanes]``."""
        return lanes_at(self.builder, a.data, self._offset(a, k, q), self.vt)

    def element(self, a, k, q):
        """A pointer to ``a[k, q]``."""
        return self.builder.gep(a.data, [self._offset(a, k, q)])

    @contextmanager
    def groups(self):
        """A loop over the vectors of a row (``with``: yields the first column of each)."""
        b = self.builder
        with cgutils.for_range(b, b.udiv(self.width, self.const(self.lanes))) as loop:
            yield b.mul(loop.index, self.const(self.lanes))


def _block_arrays(context, builder, signature, args, count):
    return [context.make_array(t)(context, builder, a) for t, a in zip(signature.args[:count], args[:count])]


def _is_block(t):
    return isinstance(t, types.Array) and t.ndim == 2 and t.dtype == types.float64 and t.layout in "CA"


@intrinsic
def columns_softmax(typingctx, Z, P, S):
    r"""``P[:, q] = softmax(Z[:, q])`` for every column of a block, with the column's max in ``S[0]``, the
    sum of ``exp(z - max)`` in ``S[1]`` and its inverse in ``S[2]``.

    Per vector of columns: the max over the classes, then each class's
    ``exp(z - max)`` (:func:`.mathfn.vector_exp`, the scalar exp's bits) stored
    and added, then the products by the inverse of the sum. A column with a
    non-finite logit gets a NaN sum (``z * 0`` is NaN exactly for those) and
    garbage in P; a NaN logit never becomes the max.
    """
    if not all(_is_block(t) for t in (Z, P, S)):
        return None
    sig = types.void(Z, P, S)

    def codegen(context, builder, signature, args):
        z, p, s = _block_arrays(context, builder, signature, args, 3)
        K = builder.extract_value(z.shape, 0)
        c = _Columns(builder, builder.extract_value(z.shape, 1))
        vt = c.vt
        with c.groups() as q:
            mx = cgutils.alloca_once_value(builder, builder.load(c.vector(z, c.const(0), q), align=8))
            with cgutils.for_range_slice(builder, c.const(1), K, c.const(1), inc=True) as (k, _):
                v = builder.load(c.vector(z, k, q), align=8)
                m = builder.load(mx)
                builder.store(builder.select(builder.fcmp_ordered(">", v, m), v, m), mx)
            m = builder.load(mx)
            acc = cgutils.alloca_once_value(builder, splat(vt, 0.0))
            with cgutils.for_range(builder, K) as loop:
                v = builder.load(c.vector(z, loop.index, q), align=8)
                e = vector_exp(builder, builder.fsub(v, m))
                builder.store(e, c.vector(p, loop.index, q), align=8)
                builder.store(builder.fadd(builder.load(acc), builder.fadd(e, builder.fmul(v, splat(vt, 0.0)))), acc)
            total = builder.load(acc)
            inv = builder.fdiv(splat(vt, 1.0), total)
            with cgutils.for_range(builder, K) as loop:
                ptr = c.vector(p, loop.index, q)
                builder.store(builder.fmul(builder.load(ptr, align=8), inv), ptr, align=8)
            for row, value in ((_M, m), (_SUM, total), (_THIRD, inv)):
                builder.store(value, c.vector(s, c.const(row), q), align=8)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def columns_terms(typingctx, Z, Zv, P, R, S, target, sw, nb, what, bad):
    r"""The loss of a block's first ``nb`` rows (returned, float64) and their dloss/dlogits into ``R``.

    ``target`` is the rows' labels (int64, ``nb``) or their target
    probabilities (float64, ``nb x K``): the pass is compiled for one or the
    other. ``sw`` holds the rows' sample weights ``s`` (``nb``); ``P`` their
    probabilities and ``S`` the softmax's max and sum (:func:`columns_softmax`),
    ``Zv`` the logits at the direction of a Hessian-vector product. ``what``:

    * ``LOSS``: :math:`\sum_q s_q\,(\mathrm{lse}_q - z_{q,y_q})` over the rows
      with finite logits (with probability targets
      :math:`\sum_k t_{qk}(\mathrm{lse}_q - z_{qk})`, terms with
      :math:`t_{qk} = 0` left out, so that a -inf logit there adds nothing);
      the log-sum-exp is ``max + log1p(sum - 1)`` (``sum - 1`` is exact);
    * ``GRAD``: :math:`r_q = s_q (p_q - y_q)` (with probability targets
      :math:`s_q (p_q \sum_k t_{qk} - t_q)`);
    * ``HESSP``: :math:`r_q = s_q\, p_q \odot (z_{V,q} - \langle p_q, z_{V,q}\rangle)`.

    R is zero past ``nb`` and, when ``bad`` (the rows with a non-finite logit,
    counted by the caller) is not 0, on those rows.
    """
    codes = isinstance(target, types.Array) and target.ndim == 1 and target.dtype == types.int64
    probs = isinstance(target, types.Array) and target.ndim == 2 and target.dtype == types.float64
    if not (all(_is_block(t) for t in (Z, Zv, P, R, S)) and (codes or probs)
            and isinstance(sw, types.Array) and sw.ndim == 1 and sw.dtype == types.float64):
        return None
    sig = types.float64(Z, Zv, P, R, S, target, sw, nb, what, bad)

    def codegen(context, builder, signature, args):
        z, zv, p, r, s = _block_arrays(context, builder, signature, args, 5)
        t_ty, w_ty = signature.args[5], signature.args[6]
        tgt = context.make_array(t_ty)(context, builder, args[5])
        sw_a = context.make_array(w_ty)(context, builder, args[6])
        n_use, flags, n_bad = (context.cast(builder, args[i], signature.args[i], types.int64) for i in (7, 8, 9))
        K = builder.extract_value(z.shape, 0)
        B = builder.extract_value(z.shape, 1)
        c = _Columns(builder, B)
        vt, f64 = c.vt, ir.DoubleType()
        zero = ir.Constant(f64, 0.0)
        row = c.const  # the rows of S

        def has(bit):
            return builder.icmp_unsigned("!=", builder.and_(flags, c.const(bit)), c.const(0))

        def target_at(q, k=None):  # label q, or the target probability t[q, k]
            idx = [q] if k is None else [q, k]
            return builder.load(cgutils.get_item_pointer(context, builder, t_ty, tgt, idx))

        def load(a, k, q):
            return builder.load(c.element(a, k, q))

        # The rows' weights, 0 past nb: the vector loops below then run over all B columns.
        with cgutils.for_range(builder, B) as loop:
            q = loop.index
            ptr = c.element(s, row(_W), q)
            with builder.if_else(builder.icmp_signed("<", q, n_use)) as (inside, past):
                with inside:
                    builder.store(builder.load(cgutils.get_item_pointer(context, builder, w_ty, sw_a, [q])), ptr)
                with past:
                    builder.store(zero, ptr)

        loss = cgutils.alloca_once_value(builder, zero)
        with builder.if_then(has(LOSS)):
            with c.groups() as q:
                m = builder.load(c.vector(s, row(_M), q), align=8)
                total = builder.load(c.vector(s, row(_SUM), q), align=8)
                lse = builder.fadd(m, vector_log1p(builder, builder.fsub(total, splat(vt, 1.0))))
                builder.store(lse, c.vector(s, row(_THIRD), q), align=8)
            with cgutils.for_range(builder, n_use) as loop:
                q = loop.index
                finite = builder.fcmp_ordered("<", load(s, row(_SUM), q), ir.Constant(f64, float("inf")))
                with builder.if_then(finite):
                    lse = load(s, row(_THIRD), q)
                    w = load(s, row(_W), q)
                    if codes:
                        term = builder.fsub(lse, load(z, target_at(q), q))
                    else:
                        acc = cgutils.alloca_once_value(builder, zero)
                        with cgutils.for_range(builder, K) as kl:
                            t = target_at(q, kl.index)
                            part = builder.fmul(t, builder.fsub(lse, load(z, kl.index, q)))
                            part = builder.select(builder.fcmp_ordered("!=", t, zero), part, zero)
                            builder.store(builder.fadd(builder.load(acc), part), acc)
                        term = builder.load(acc)
                    builder.store(builder.fadd(builder.load(loss), builder.fmul(w, term)), loss)

        with builder.if_else(has(GRAD)) as (grad, other):
            with grad:
                with cgutils.for_range(builder, K) as kl:
                    with c.groups() as q:
                        w = builder.load(c.vector(s, row(_W), q), align=8)
                        pk = builder.load(c.vector(p, kl.index, q), align=8)
                        builder.store(builder.fmul(w, pk), c.vector(r, kl.index, q), align=8)
                with cgutils.for_range(builder, n_use) as loop:
                    q = loop.index
                    w = load(s, row(_W), q)
                    if codes:
                        ptr = c.element(r, target_at(q), q)
                        builder.store(builder.fsub(builder.load(ptr), w), ptr)
                    else:
                        ysum = cgutils.alloca_once_value(builder, zero)
                        with cgutils.for_range(builder, K) as kl:
                            builder.store(builder.fadd(builder.load(ysum), target_at(q, kl.index)), ysum)
                        total = builder.load(ysum)
                        with cgutils.for_range(builder, K) as kl:
                            ptr = c.element(r, kl.index, q)
                            scaled = builder.fmul(builder.load(ptr), total)
                            builder.store(builder.fsub(scaled, builder.fmul(w, target_at(q, kl.index))), ptr)
            with other:
                with builder.if_then(has(HESSP)):
                    with c.groups() as q:
                        dot = cgutils.alloca_once_value(builder, splat(vt, 0.0))
                        with cgutils.for_range(builder, K) as kl:
                            pk = builder.load(c.vector(p, kl.index, q), align=8)
                            vk = builder.load(c.vector(zv, kl.index, q), align=8)
                            builder.store(vector_fma(builder, pk, vk, builder.load(dot)), dot)
                        builder.store(builder.load(dot), c.vector(s, row(_D), q), align=8)
                    with cgutils.for_range(builder, K) as kl:
                        with c.groups() as q:
                            w = builder.load(c.vector(s, row(_W), q), align=8)
                            d = builder.load(c.vector(s, row(_D), q), align=8)
                            pk = builder.load(c.vector(p, kl.index, q), align=8)
                            vk = builder.load(c.vector(zv, kl.index, q), align=8)
                            out = builder.fmul(builder.fmul(w, pk), builder.fsub(vk, d))
                            builder.store(out, c.vector(r, kl.index, q), align=8)

        # Rows with a non-finite logit (their sum is NaN) and rows past nb add nothing.
        with builder.if_then(builder.icmp_signed("!=", n_bad, c.const(0))):
            with cgutils.for_range(builder, n_use) as loop:
                q = loop.index
                finite = builder.fcmp_ordered("<", load(s, row(_SUM), q), ir.Constant(f64, float("inf")))
                with builder.if_then(builder.not_(finite)):
                    with cgutils.for_range(builder, K) as kl:
                        builder.store(zero, c.element(r, kl.index, q))
        with cgutils.for_range(builder, K) as kl:
            with cgutils.for_range_slice(builder, n_use, B, c.const(1), inc=True) as (q, _):
                builder.store(zero, c.element(r, kl.index, q))
        return builder.load(loss)

    return sig, codegen


def _transposer(to_rows):
    def typer(typingctx, src, dst):
        if not all(isinstance(t, types.Array) and t.ndim == 2 and t.dtype == types.float64 for t in (src, dst)):
            return None
        sig = types.void(src, dst)

        def codegen(context, builder, signature, args):
            a, b = _block_arrays(context, builder, signature, args, 2)
            if to_rows:
                (cols, rows), (cols_t, rows_t) = (a, b), signature.args
            else:
                (rows, cols), (rows_t, cols_t) = (a, b), signature.args
            n = builder.extract_value(rows.shape, 0)
            K = builder.extract_value(rows.shape, 1)
            with cgutils.for_range(builder, n) as ql:
                with cgutils.for_range(builder, K) as kl:
                    at_row = cgutils.get_item_pointer(context, builder, rows_t, rows, [ql.index, kl.index])
                    at_col = cgutils.get_item_pointer(context, builder, cols_t, cols, [kl.index, ql.index])
                    src_ptr, dst_ptr = (at_col, at_row) if to_rows else (at_row, at_col)
                    builder.store(builder.load(src_ptr), dst_ptr)
            return context.get_dummy_value()

        return sig, codegen

    return typer


def _named(typer, name, doc):
    typer.__name__ = typer.__qualname__ = name
    typer.__doc__ = doc
    return intrinsic(typer)


rows_to_columns = _named(_transposer(False), "rows_to_columns",
                         "``cols[k, q] = rows[q, k]`` for the ``n`` rows (n x K) of ``rows``: a block's probabilities.")
columns_to_rows = _named(_transposer(True), "columns_to_rows",
                         "``rows[q, k] = cols[k, q]`` for the ``n`` rows (n x K) of ``rows`` (its second argument).")
