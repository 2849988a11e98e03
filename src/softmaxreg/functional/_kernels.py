"""Numba kernels for the row-wise softmax family on NumPy float32/float64.

These are the fast paths behind :mod:`softmaxreg.functional`; the Array API
code in ``_softmax.py`` and ``_cross_entropy.py`` stays the reference (and the
only path for non-NumPy arrays and for arrays under ``MIN_SIZE``). This module
imports Numba at the top, so it is itself imported lazily, on the first call
that can use it (``_softmax.fast_kernels``); every kernel compiles on its
first call and is cached on disk (``cache=True``). Importing
:mod:`softmaxreg` never imports Numba.

Why fused kernels
-----------------
A softmax over rows of length ``K`` needs the row max, the sum of
``exp(x - max)`` and one write of the output. NumPy makes a temporary for each
of ``x - max``, ``exp(.)``, the sum and the division: five to seven passes over
memory. Here each row is read from memory once (the second and third sweeps hit
the L1/L2 cache, since a row is at most a few hundred KiB), the output is
written once, and the rows are split over the cores with ``prange``.

Rows shorter than ``SMALL_K`` fill no vector, so they go by blocks of
_BLOCK rows, transposed into a classes-first scratch where the lanes run
across rows. For K <= ``SHUFFLE_K`` a group of rows (one register of lanes)
is one vector load and K shuffles each way (:func:`_transpose_in`,
:func:`_transpose_out`): the transposes then cost about what a copy of the
block does, against one scalar load and store per element before (2^20 rows
of 10 float32: 5.9 -> 3.4 ms with a warm output). The block's max, terms and
sums then run group by group in vector IR (:func:`_block_terms`), each
group's running max and sums in registers while the loop runs over the
classes: with the loops in Numba they went through memory once per class.
Softmax, the gradient of plain labels and the cross-entropy's label logit
finish there too, while the group is in L1 (:func:`_block_softmax`,
:func:`_block_grad`, :func:`_block_label_logit`). On AVX-512, rows of 2 to 15
skip the scratch (:func:`_rows_softmax`): each group of rows (16 float32 or 8
float64) is read row by row, transposed by in-lane shuffles, computed and
written back in registers, in 0.65-0.9x the time (:func:`register_rows`).
Loops over a block's rows index slices from 0 (``special[r0:r0 + nb]``, not
``special[r0 + r]``): an index Numba may see as negative gets wraparound
code, which LLVM vectorises into gathers and byte-by-byte scatters.

``exp`` is our own (:func:`_exp32`, :func:`_exp64`): Cody-Waite range reduction
``t = n ln2 + r`` with ``|r| <= ln2 / 2`` (through explicit ``fma`` calls, which
fast-math reassociation cannot merge back into one inexact product), a
polynomial for ``exp(r)`` and the factor ``2**n`` applied by ``llvm.ldexp``
(one ``vscalefps`` on AVX-512, correctly rounded, so results in the subnormal
range underflow gradually, as ``np.exp`` does). Unlike a call into libm, it
vectorises (AVX2/AVX-512). It is accurate to about 1 ulp and is only ever
called on ``t <= 0`` (max-shifted logits). :func:`_vector_exp` is the same
function on a vector, in IR, for :func:`_block_terms`; on AVX-512 it hands
``n`` to ``vscalefps``/``pd`` as a float, with no round trip through integers.

Conventions
-----------
* Every kernel works on a 2-D array whose rows are the softmax axis (the
  dispatcher moves the axis last and reshapes); rows may be strided.
* The log-sum uses ``logsumexp = m + log1p(rest)`` where ``rest`` is the sum
  of ``exp(x_j - m)`` over the non-maximal terms, accumulated in float64 (also
  for float32 input): accurate when one logit dominates.
* Special rows (a non-finite maximum, i.e. an all ``-inf`` row or a ``+inf``
  entry, or a NaN anywhere in the row) are *flagged*, not computed: the kernel
  sets ``special[i] = True`` and the dispatcher recomputes those rows with the
  reference path, so the numerics contract on special values is exactly the
  reference's. ``-inf`` entries in an otherwise finite row are handled here
  (they get probability 0).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import numba
from llvmlite import binding as llvm_binding, ir
from numba import prange
from numba.core import cgutils, types
from numba.extending import intrinsic, overload

__all__ = ["MIN_SIZE", "applies", "softmax_family", "cross_entropy_labels", "all_finite"]

# Reassociation lets LLVM vectorise the sums and the max; we keep IEEE
# semantics for inf and NaN (no "nnan"/"ninf"), which the special-row logic
# relies on.
_FASTMATH = {"reassoc", "contract", "arcp", "nsz"}

# Numba's SSA pass flags the inlined ``_exp`` in the two branches of the
# chunked row sums (full chunks of fixed length, then the tail) with an
# internal "pedantic check" warning at compile time; the code it generates is
# correct (tested against the reference) and a single loop with a variable trip
# count runs 1.7x slower. Only that message is silenced.
warnings.filterwarnings(
    "ignore", message=r"variable '_exp_overload.*' is not in scope", category=numba.errors.NumbaIRAssumptionWarning
)
_jit = dict(cache=True, nogil=True, fastmath=_FASTMATH, error_model="numpy")


@intrinsic
def _i32_as_f32(typingctx, i):
    """Reinterpret the bits of an int32 as a float32 (no conversion)."""
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


@intrinsic
def _i64_as_f64(typingctx, i):
    """Reinterpret the bits of an int64 as a float64 (no conversion)."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@intrinsic
def _f32_as_i32(typingctx, x):
    """Reinterpret the bits of a float32 as an int32."""
    sig = types.int32(types.float32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return sig, codegen


@intrinsic
def _f64_as_i64(typingctx, x):
    """Reinterpret the bits of a float64 as an int64."""
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return sig, codegen


@intrinsic
def _fma(typingctx, a, b, c):
    """a * b + c rounded once (llvm.fma): an opaque call that fast-math
    reassociation cannot split or merge, which the Cody-Waite reduction needs."""
    sig = a(a, a, a)

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return sig, codegen


@intrinsic
def _ldexp(typingctx, x, n):
    """x * 2**n rounded once (llvm.ldexp), also into the subnormal range.

    It vectorises, and on AVX-512 it is one instruction (vscalefps/pd): 4x
    faster over the whole exp than building 2**n from its bits (measured).
    """
    sig = x(x, types.int32)

    def codegen(context, builder, signature, args):
        ft = args[0].type
        i32 = ir.IntType(32)
        fn = builder.module.declare_intrinsic("llvm.ldexp", [ft, i32], ir.FunctionType(ft, [ft, i32]))
        return builder.call(fn, args)

    return sig, codegen


def element_pointer(context, builder, signature, args):
    """In an intrinsic's codegen: the LLVM pointer to ``arr[idx]``, its first two arguments."""
    aryty = signature.args[0]
    ary = context.make_array(aryty)(context, builder, args[0])
    return cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]])


#: Rows up to this long are transposed by shuffles (:func:`_transpose_in`).
SHUFFLE_K = 16


def _cases_of_k(builder, K, body, ks=range(1, SHUFFLE_K + 1)):
    """Emit ``switch (K) { case k: body(k) }`` for k in ``ks`` (other K: nothing)."""
    end = builder.append_basic_block("k.end")
    switch = builder.switch(K, end)
    for k in ks:
        block = builder.append_basic_block(f"k.{k}")
        switch.add_case(ir.Constant(K.type, k), block)
        builder.position_at_end(block)
        body(k)
        builder.branch(end)
    builder.position_at_end(end)


def _lane_shuffle(builder, a, b, mask):
    """The vector of lanes ``mask`` of ``a`` and ``b`` end to end (``shufflevector``; ``b`` may be undef)."""
    return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(ir.IntType(32), len(mask)), mask))


def _store_nontemporal(builder, value, ptr):
    """Store ``value`` at ``ptr`` (on a 64-byte boundary) by non-temporal stores: whole cache lines written
    without reading them first (``vmovntps``/``pd``)."""
    store = builder.store(value, ptr, align=64)
    store.set_metadata("nontemporal", builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)]))


def _concat(builder, vectors):
    """One vector holding ``vectors`` (all of one type) end to end, by a tree of shuffles."""
    while len(vectors) > 1:
        if len(vectors) % 2:
            vectors = vectors + [ir.Constant(vectors[-1].type, None)]
        pairs = []
        for a, b in zip(vectors[::2], vectors[1::2]):
            wa, wb = a.type.count, b.type.count
            if wb < wa:  # widen b (a padding vector of the previous round) to a's width
                b = _lane_shuffle(builder, b, ir.Constant(b.type, None), [min(lane, wb) for lane in range(wa)])
            pairs.append(_lane_shuffle(builder, a, b, list(range(2 * wa))))
        vectors = pairs
    return vectors[0]


def _transposer(name, move, doc):
    """A transpose intrinsic ``name(src, s0, dst, d0, stride, K)`` of one group of L rows.

    L = 64 bytes / itemsize (one AVX-512 register of lanes). ``move(builder,
    src_at, dst_at, L, k)`` emits the code for K = k: ``src_at(lanes, j)`` and
    ``dst_at(lanes, j)`` are pointers to a vector of ``lanes`` elements at
    ``src[s0 + j * stride]`` (resp. ``dst[d0 + ...]``), the stride applying to
    the classes-first side. ``K`` is a run-time value; the code for each
    K <= SHUFFLE_K is emitted once, behind a switch, and other K do nothing.
    """

    def typer(typingctx, src, s0, dst, d0, stride, K):
        sig = types.void(src, s0, dst, d0, stride, K)

        def codegen(context, builder, signature, args):
            ft = context.get_value_type(src.dtype)
            L = 512 // src.dtype.bitwidth
            ps = element_pointer(context, builder, signature, args[:2])
            pd = element_pointer(context, builder, types.void(dst, d0), args[2:4])

            def at(ptr):
                def vector_at(lanes, j=0):
                    if j:
                        ptr_j = builder.gep(ptr, [builder.mul(args[4], ir.Constant(args[4].type, j))])
                    else:
                        ptr_j = ptr
                    return builder.bitcast(ptr_j, ir.VectorType(ft, lanes).as_pointer())

                return vector_at

            _cases_of_k(builder, args[5], lambda k: move(builder, at(ps), at(pd), L, k, src.dtype.bitwidth // 8))
            return context.get_dummy_value()

        return sig, codegen

    typer.__name__ = typer.__qualname__ = name
    typer.__doc__ = doc
    return intrinsic(typer)


def _columns(builder, rows, L, k):
    """The k class vectors of L rows held end to end in the vector ``rows`` (L k lanes): a shuffle each."""
    return [_lane_shuffle(builder, rows, ir.Constant(rows.type, None), [j + k * lane for lane in range(L)]) for j in range(k)]


def _rows_to_columns(builder, src_at, dst_at, L, k, align):
    """The L rows are one vector load of L k lanes and each class a shuffle of it."""
    for j, col in enumerate(_columns(builder, builder.load(src_at(L * k), align=align), L, k)):
        builder.store(col, dst_at(L, j), align=align)


def _columns_to_rows(builder, src_at, dst_at, L, k, align, stream=False):
    """The k class vectors end to end, then one shuffle into row order and one vector store.

    With ``stream`` the store is non-temporal (``vmovntps``/``pd``: whole cache
    lines written without reading them first) and the destination must start
    on a 64-byte boundary; the L k lanes are k whole lines.
    """
    every = _concat(builder, [builder.load(src_at(L, j), align=align) for j in range(k)])
    rows = _lane_shuffle(builder, every, ir.Constant(every.type, None), [(f % k) * L + f // k for f in range(L * k)])
    if stream:
        _store_nontemporal(builder, rows, dst_at(L * k))
    else:
        builder.store(rows, dst_at(L * k), align=align)


_transpose_in = _transposer(
    "_transpose_in",
    _rows_to_columns,
    """``dst[d0 + j * stride + l] = src[s0 + l * K + j]`` for j < K, l < L: L rows, classes first.

    One vector load of the L rows and a shuffle per class (LLVM lowers the
    shuffles to ``vpermt2ps``-style permutes): no scalar element moves.
    """,
)
_transpose_out = _transposer(
    "_transpose_out",
    _columns_to_rows,
    """``dst[d0 + l * K + j] = src[s0 + j * stride + l]`` for j < K, l < L: the inverse of ``_transpose_in``.""",
)
_stream_out = _transposer(
    "_stream_out",
    functools.partial(_columns_to_rows, stream=True),
    """:func:`_transpose_out` by non-temporal stores: ``dst[d0]`` must start on a 64-byte boundary.""",
)


@intrinsic
def _store_fence(typingctx):
    """A full memory fence: the non-temporal stores before it are visible to every thread after it."""

    def codegen(context, builder, signature, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return types.void(), codegen


# exp's constants, shared by the scalar form (Numba, below) and the vector
# form (IR, :func:`_vector_exp`): (lowest t, log2(e), ln 2 = C1 + C2 with C1
# exact in few bits) and the coefficients of the polynomial p(r) ~ exp(r) on
# |r| <= ln2/2, highest degree first, evaluated by Horner's rule in FMAs. Both
# keep 1 + r exact and interpolate the rest, (exp(r) - 1 - r) / r**2, at the
# Chebyshev nodes of that interval (near-minimax, fitted in 50-digit arithmetic).
# float32: degree 6, relative error < 1e-8 (a sixth of an ulp) with its
# coefficients rounded to float32: two FMA-unit operations fewer than Cephes'
# degree 7 in the form q(r) r**2 + r + 1, which was used before.
_EXP32_REDUCE = (-110.0, 1.44269504088896341, 0.693359375, -2.12194440e-4)
_EXP32_POLY = (1.392617611993558e-03, 8.363173074513711e-03, 4.1666554662050534e-02, 1.666657702559799e-01, 0.5, 1.0, 1.0)
# float64: degree 11, relative error < 2e-17.
_EXP64_REDUCE = (-760.0, 1.4426950408889634, 6.93145751953125e-1, 1.42860682030941723212e-6)
_EXP64_POLY = (2.5110049204818658e-08, 2.763265472252779e-07, 2.755724088722987e-06, 2.4801485441561313e-05,
               1.9841269890076403e-04, 1.3888888952352863e-03, 8.333333333319589e-03, 4.166666666648795e-02,
               1.666666666666668e-01, 5.000000000000019e-01, 1.0, 1.0)


@numba.njit(inline="always", **_jit)
def _exp32(t):
    """exp(t) for float32 t <= 0 (NaN propagates; t < -110 gives 0)."""
    lo, log2e, c1, c2 = _EXP32_REDUCE
    P = _EXP32_POLY
    t = np.float32(lo) if t < np.float32(lo) else t
    nf = np.floor(t * np.float32(log2e) + np.float32(0.5))
    # Cody-Waite: ln2 = C1 + C2 with C1 exact in few bits, so nf * C1 is exact.
    r = _fma(-nf, np.float32(c1), t)
    r = _fma(-nf, np.float32(c2), r)
    p = np.float32(P[0])
    for c in P[1:]:
        p = _fma(p, r, np.float32(c))
    return _ldexp(p, np.int32(nf))


@numba.njit(inline="always", **_jit)
def _exp64(t):
    """exp(t) for float64 t <= 0 (NaN propagates; t < -760 gives 0)."""
    lo, log2e, c1, c2 = _EXP64_REDUCE
    P = _EXP64_POLY
    t = lo if t < lo else t
    nf = np.floor(t * log2e + 0.5)
    r = _fma(-nf, c1, t)
    r = _fma(-nf, c2, r)
    p = P[0]
    for c in P[1:]:
        p = _fma(p, r, c)
    return _ldexp(p, np.int32(nf))


def _vector_suffix(vt):
    """The overload suffix of an LLVM intrinsic on the float vector type ``vt``: ``v16f32``, ``v8f64``, ..."""
    return f"v{vt.count}{'f32' if isinstance(vt.element, ir.FloatType) else 'f64'}"


def _vector_call(builder, name, args):
    """``llvm.<name>`` on float vectors (``fma``, ``floor``, ...), lane by lane."""
    vt = args[0].type
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vt, [a.type for a in args]), f"llvm.{name}.{_vector_suffix(vt)}")
    return builder.call(fn, args)


def _vector_fma(builder, a, b, c):
    """``a * b + c`` lane by lane, rounded once (``llvm.fma`` on a float vector)."""
    return _vector_call(builder, "fma", [a, b, c])


def _splat(vt, value):
    """The vector constant of type ``vt`` with ``value`` in every lane."""
    return ir.Constant(vt, [ir.Constant(vt.element, value)] * vt.count)


#: Whether this machine has AVX-512 (vscalefps/pd), read once at import.
_SCALEF = bool(llvm_binding.get_host_cpu_features().get("avx512f"))


def _vector_exp(builder, t):
    """:func:`_exp32` / :func:`_exp64` on a vector of float32 / float64 lanes: the same steps and constants."""
    vt = t.type
    single = isinstance(vt.element, ir.FloatType)
    lo, log2e, c1, c2 = _EXP32_REDUCE if single else _EXP64_REDUCE
    P = _EXP32_POLY if single else _EXP64_POLY
    c = lambda v: _splat(vt, v)  # noqa: E731
    t = builder.select(builder.fcmp_ordered("<", t, c(lo)), c(lo), t)
    nf = _vector_call(builder, "floor", [_vector_fma(builder, t, c(log2e), c(0.5))])
    minus_nf = builder.fneg(nf)
    r = _vector_fma(builder, minus_nf, c(c1), t)
    r = _vector_fma(builder, minus_nf, c(c2), r)
    p = c(P[0])
    for coef in P[1:]:
        p = _vector_fma(builder, p, r, c(coef))
    if _SCALEF and vt.count * (32 if single else 64) == 512:
        # vscalefps/pd takes the exponent as a float: no round trip through integers.
        name = f"llvm.x86.avx512.mask.scalef.{'ps' if single else 'pd'}.512"
        mask = ir.IntType(vt.count)
        scalef = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vt, [vt, vt, vt, mask, ir.IntType(32)]), name)
        return builder.call(scalef, [p, nf, ir.Constant(vt, None), ir.Constant(mask, -1), ir.Constant(ir.IntType(32), 4)])
    n = builder.fptosi(nf, ir.VectorType(ir.IntType(32), vt.count))
    ldexp = cgutils.get_or_insert_function(
        builder.module, ir.FunctionType(vt, [vt, n.type]), f"llvm.ldexp.{_vector_suffix(vt)}.v{vt.count}i32"
    )
    return builder.call(ldexp, [p, n])


def _exp(t):
    """exp(t) for t <= 0 in t's precision (typed by the overload below)."""
    raise NotImplementedError("only callable from Numba-compiled code")


@overload(_exp, inline="always", fastmath=_FASTMATH)
def _exp_overload(t):
    if t == types.float32:
        return lambda t: _exp32(t)
    if t == types.float64:
        return lambda t: _exp64(t)
    return None


@numba.njit(inline="always", **_jit)
def _rowmax32(xi):
    m = np.int32(-2147483648)
    for j in range(xi.shape[0]):
        b = _f32_as_i32(xi[j])
        m = max(m, b ^ ((b >> np.int32(31)) & np.int32(0x7FFFFFFF)))
    return _i32_as_f32(m ^ ((m >> np.int32(31)) & np.int32(0x7FFFFFFF)))


@numba.njit(inline="always", **_jit)
def _rowmax64(xi):
    m = np.int64(-9223372036854775808)
    for j in range(xi.shape[0]):
        b = _f64_as_i64(xi[j])
        m = max(m, b ^ ((b >> 63) & np.int64(0x7FFFFFFFFFFFFFFF)))
    return _i64_as_f64(m ^ ((m >> 63) & np.int64(0x7FFFFFFFFFFFFFFF)))


def _rowmax(xi):
    """Max of a row, vectorised through the integer order of IEEE floats.

    For non-NaN floats, mapping the bits ``b`` to ``b ^ ((b >> 31) & 0x7f..f)``
    is monotone, so an integer max (which vectorises; a float max with NaN
    semantics does not) gives the float max. A NaN with the sign bit clear maps
    above +inf (the max is then NaN); one with the sign bit set maps below -inf
    and is ignored here, but then poisons the row's sum, which flags the row.
    """
    raise NotImplementedError("only callable from Numba-compiled code")


@overload(_rowmax, inline="always", fastmath=_FASTMATH)
def _rowmax_overload(xi):
    if xi.dtype == types.float32:
        return lambda xi: _rowmax32(xi)
    if xi.dtype == types.float64:
        return lambda xi: _rowmax64(xi)
    return None


_CHUNK = 128


@numba.njit(inline="always", **_jit)
def _rest(xi, m, inv_t, out, store):
    """Sum of exp((x_j - m) * inv_t) over the non-maximal terms, in float64.

    Terms with ``x_j == m`` (exactly 1) are counted apart, so the returned
    ``rest`` (the sum of the others, plus ``ties - 1``) keeps full relative
    accuracy when it is tiny; ``1 + rest`` is the softmax denominator. With
    ``store`` (a compile-time constant at every call) the terms are written to
    ``out`` as well.

    The terms are added in ``x``'s dtype over chunks of _CHUNK (a fixed trip
    count, which LLVM vectorises fully; float64 lanes halve the width of a
    float32 loop: 1.5x slower measured) and the chunks' sums in float64: at
    most a dozen roundings in ``x``'s precision per term, whatever ``K``.
    A NaN term (t > 0 is impossible otherwise) poisons the sum.
    """
    zero = xi.dtype.type(0.0)
    one = xi.dtype.type(1.0)
    K = xi.shape[0]
    nfull = K // _CHUNK
    rest = 0.0
    ties = 0.0
    for c in range(nfull + 1):
        j0 = c * _CHUNK
        part = zero
        tp = zero
        if c < nfull:
            for jj in range(_CHUNK):
                t = (xi[j0 + jj] - m) * inv_t
                e = _exp(t)
                if store:
                    out[j0 + jj] = e
                part += e if t < 0 else (zero if t == 0 else t)
                tp += one if t == 0 else zero
        else:
            for j in range(j0, K):
                t = (xi[j] - m) * inv_t
                e = _exp(t)
                if store:
                    out[j] = e
                part += e if t < 0 else (zero if t == 0 else t)
                tp += one if t == 0 else zero
        rest += np.float64(part)
        ties += np.float64(tp)
    # Ties beyond the first add 1 each; the common case (one max) adds nothing,
    # and adding "ties - 1" unconditionally would let reassociation turn it into
    # (rest + ties) - 1, losing a tiny rest's digits.
    if ties != 1.0:
        rest += ties - 1.0
    return rest


@numba.njit(inline="always", **_jit)
def _rest_sum(xi, m, inv_t):
    """:func:`_rest` without storing the terms, for the kernels that only need the sum."""
    return _rest(xi, m, inv_t, xi, False)


@numba.njit(parallel=True, **_jit)
def softmax_rows(x, inv_t, out, special):
    """out[i] = softmax(x[i] * inv_t); flags rows with a non-finite max or a NaN."""
    inv_t = x.dtype.type(inv_t)
    for i in prange(x.shape[0]):
        xi = x[i]
        oi = out[i]
        m = _rowmax(xi)
        if not np.isfinite(m):
            special[i] = True
            continue
        rest = _rest(xi, m, inv_t, oi, True)
        special[i] = rest != rest
        scale = x.dtype.type(1.0 / (1.0 + rest))
        for j in range(oi.shape[0]):
            oi[j] *= scale


@numba.njit(parallel=True, **_jit)
def log_softmax_rows(x, inv_t, out, special):
    """out[i] = log_softmax(x[i] * inv_t) = (x - m) inv_t - log1p(rest)."""
    inv_t = x.dtype.type(inv_t)
    for i in prange(x.shape[0]):
        xi = x[i]
        oi = out[i]
        m = _rowmax(xi)
        if not np.isfinite(m):
            special[i] = True
            continue
        rest = _rest_sum(xi, m, inv_t)
        special[i] = rest != rest
        lse = x.dtype.type(np.log1p(rest))
        for j in range(oi.shape[0]):
            oi[j] = (xi[j] - m) * inv_t - lse


@numba.njit(parallel=True, **_jit)
def logsumexp_rows(x, out, special):
    """out[i] = logsumexp(x[i]) = m + log1p(rest)."""
    one = x.dtype.type(1.0)
    for i in prange(x.shape[0]):
        xi = x[i]
        m = _rowmax(xi)
        if not np.isfinite(m):
            special[i] = True
            out[i] = m
            continue
        rest = _rest_sum(xi, m, one)
        special[i] = rest != rest
        out[i] = m + x.dtype.type(np.log1p(rest))


# ---------------------------------------------------------------------------
# Short rows (K below SMALL_K): a row is too short for the vector loops above
# (a few lanes and a long remainder), so blocks of _BLOCK rows are transposed
# into a flat (K, _BLOCK) scratch and every step runs across rows instead.
# Each step is a loop of its own: with the exp, its store and the row sums'
# read-modify-write in one loop LLVM vectorised poorly (measured 2-3x slower).

SMALL_K = 48
_SMALL_CHUNK = 16  # classes whose terms are added in x's dtype before a float64 sum
_BLOCK = 128
_CHUNKS = 64  # chunks of blocks handed to the threads (load balance on a shared machine)

SOFTMAX, LOG_SOFTMAX, LOGSUMEXP = 0, 1, 2

# fdlibm's log: ln 2 split in two, and the coefficients of its polynomial in s**2.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_LG1, _LG2, _LG3, _LG4 = 6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01, 2.222219843214978396e-01
_LG5, _LG6, _LG7 = 1.818357216161805012e-01, 1.531383769920937332e-01, 1.479819860511658591e-01


@numba.njit(inline="always", **_jit)
def _log1p(r):
    """log1p(r) for float64 r >= 0 (NaN propagates), in a form that vectorises.

    libm's log1p is a call per row, the largest cost of the short-row kernels
    that need it. fdlibm's log: 1 + r = 2**k z with z in [sqrt(2)/2, sqrt(2)),
    f = z - 1 and log z = f - f**2/2 + s (f**2/2 + R(s**2)), s = f / (2 + f).
    For k = 0 f is r itself, exactly (1 + r rounded would lose a tiny r's
    digits: the dominant-class case); for k >= 1 (r > 0.41) the rounding
    error of 1 + r is added back, as fdlibm's log1p does. About 1 ulp.
    """
    u = 1.0 + r
    ix = _f64_as_i64(u)
    tmp = ix - np.int64(0x3FE6A09E667F3BCD)
    k = tmp >> 52
    z = _i64_as_f64(ix - (tmp & np.int64(-4503599627370496)))  # exponent moved to [sqrt(2)/2, sqrt(2))
    f = r if k == 0 else z - 1.0
    # For k >= 1, what rounding 1 + r lost, relative: (r - (u - 1)) / u, with
    # u - 1 (exact) through fma so that reassociation cannot fold it to 0.
    c = 0.0 if k == 0 else (r - _fma(u, 1.0, -1.0)) / u
    s = f / (2.0 + f)
    z2 = s * s
    w = z2 * z2
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z2 * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    hfsq = 0.5 * f * f
    dk = np.float64(k)
    y = dk * _LN2_HI - ((hfsq - (s * (hfsq + t2 + t1) + (dk * _LN2_LO + c))) - f)
    return y if r == r else r


def _vector_log1p(builder, r):
    """:func:`_log1p` on a vector of float64 lanes, in IR: the same steps, constants and fast-math flags.
    Rounded to float32 its results are :func:`_log1p`'s bits (checked on 65536 values over both branches,
    0, NaN and inf); float64 log_softmax through it may differ from the scratch path in the last rounding."""
    vt = r.type
    it = ir.VectorType(ir.IntType(64), vt.count)
    fm = tuple(sorted(_FASTMATH))
    c = lambda v: _splat(vt, v)  # noqa: E731
    add = lambda a, b: builder.fadd(a, b, flags=fm)  # noqa: E731
    sub = lambda a, b: builder.fsub(a, b, flags=fm)  # noqa: E731
    mul = lambda a, b: builder.fmul(a, b, flags=fm)  # noqa: E731
    div = lambda a, b: builder.fdiv(a, b, flags=fm)  # noqa: E731
    u = add(c(1.0), r)
    ix = builder.bitcast(u, it)
    tmp = builder.sub(ix, _splat(it, 0x3FE6A09E667F3BCD))
    k = builder.ashr(tmp, _splat(it, 52))
    z = builder.bitcast(builder.sub(ix, builder.and_(tmp, _splat(it, -4503599627370496))), vt)
    k0 = builder.icmp_signed("==", k, _splat(it, 0))
    f = builder.select(k0, r, sub(z, c(1.0)))
    cc = builder.select(k0, c(0.0), div(sub(r, _vector_fma(builder, u, c(1.0), c(-1.0))), u))
    s = div(f, add(c(2.0), f))
    z2 = mul(s, s)
    w = mul(z2, z2)
    t1 = mul(w, add(c(_LG2), mul(w, add(c(_LG4), mul(w, c(_LG6))))))
    t2 = mul(z2, add(c(_LG1), mul(w, add(c(_LG3), mul(w, add(c(_LG5), mul(w, c(_LG7))))))))
    hfsq = mul(mul(c(0.5), f), f)
    dk = builder.sitofp(k, vt)
    y = sub(mul(dk, c(_LN2_HI)), sub(sub(hfsq, add(mul(s, add(add(hfsq, t2), t1)), add(mul(dk, c(_LN2_LO)), cc))), f))
    return builder.select(builder.fcmp_ordered("==", r, r, flags=fm), y, r)


@numba.njit(inline="always", **_jit)
def _load_block(xf, r0, nb, K, T):
    """``T[j * _BLOCK + r] = x[r0 + r, j]`` for r < nb: a block of rows of ``xf`` (flat, C order), classes first.

    Whole groups of L rows go through :func:`_transpose_in` (K <= SHUFFLE_K),
    the rest element by element.
    """
    L = 64 // xf.itemsize
    g1 = nb - nb % L if K <= SHUFFLE_K else 0
    for g in range(0, g1, L):
        _transpose_in(xf, (r0 + g) * K, T, g, _BLOCK, K)
    blk = xf[r0 * K : (r0 + nb) * K]
    for j in range(K):
        Tj = T[j * _BLOCK : j * _BLOCK + nb]
        for r in range(g1, nb):
            Tj[r] = blk[r * K + j]


@numba.njit(inline="always", **_jit)
def _store_block(T, nb, K, ob, stream=False):
    """``ob[r * K + j] = T[j * _BLOCK + r]`` for r < nb: the inverse of :func:`_load_block` (``ob``: the block's rows, flat).

    With ``stream`` whole groups of rows are written by non-temporal stores
    (:func:`_stream_out`); ``ob`` must then start on a 64-byte boundary (a
    group's L K elements are K whole cache lines, so every group does too).
    """
    L = 64 // ob.itemsize
    g1 = nb - nb % L if K <= SHUFFLE_K else 0
    for g in range(0, g1, L):
        if stream:
            _stream_out(T, g, ob, g * K, _BLOCK, K)
        else:
            _transpose_out(T, g, ob, g * K, _BLOCK, K)
    for j in range(K):
        Tj = T[j * _BLOCK : j * _BLOCK + nb]
        for r in range(g1, nb):
            ob[r * K + j] = Tj[r]


@numba.njit(inline="always", **_jit)
def _block_rows(xf, r0, nb, K, pad):
    """(rows, first row) of block ``r0 .. r0 + nb`` as a whole block of _BLOCK rows.

    A whole block is ``xf`` itself; the last, partial one is copied into
    ``pad`` (K * _BLOCK elements) with zero rows after it. Every block then
    runs with the constant trip count _BLOCK (the padded rows are computed and
    dropped), which lets LLVM drop the loops' remainders: 10 % faster measured.
    """
    if nb == _BLOCK:
        return xf, r0
    pad[:] = 0.0
    pad[: nb * K] = xf[r0 * K : (r0 + nb) * K]
    return pad, 0


@numba.njit(inline="always", **_jit)
def _block_labels(labels, r0, nb, pad):
    """The labels of block ``r0 .. r0 + nb`` as _BLOCK int64: ``labels`` itself
    (a slice) for a whole block; for the last, partial one a copy in ``pad``
    with -1 (no class) after it, as :func:`_block_rows` pads the rows."""
    if nb == _BLOCK:
        return labels[r0 : r0 + _BLOCK]
    pad[:nb] = labels[r0 : r0 + nb]
    pad[nb:] = -1
    return pad


def _splat_value(builder, value, vt):
    """The run-time scalar ``value`` in every lane of the vector type ``vt``."""
    v = builder.insert_element(ir.Constant(vt, None), value, ir.Constant(ir.IntType(32), 0))
    return _lane_shuffle(builder, v, v, [0] * vt.count)


def _lanes_at(builder, ptr, index, vt):
    """A pointer to the vector of type ``vt`` at ``ptr[index]``."""
    return builder.bitcast(builder.gep(ptr, [index]), vt.as_pointer())


def _to_f64(builder, v):
    """The float vector ``v`` in float64 lanes."""
    dvt = ir.VectorType(ir.DoubleType(), v.type.count)
    return v if v.type == dvt else builder.fpext(v, dvt)


def _larger(builder, v, m):
    """The running max: ``v`` where it is larger than ``m``; a NaN ``v`` never replaces ``m`` (a NaN first
    entry stays the max, and a NaN elsewhere shows up as a NaN term)."""
    return builder.select(builder.fcmp_ordered(">", v, m), v, m)


def _add_term(builder, t, e, part, ties):
    """(part, ties) after class term e = exp(t): the max's own term (t = 0) is counted in ``ties``, not added
    to ``part``; a NaN t has a NaN term, which poisons the sum (and flags the row)."""
    zero, one = _splat(t.type, 0.0), _splat(t.type, 1.0)
    tie = builder.fcmp_ordered("==", t, zero)
    return builder.fadd(part, builder.select(tie, zero, e)), builder.fadd(ties, builder.select(tie, one, zero))


def _rest_total(builder, acc, ties):
    """``rest`` (float64 lanes) from the chunk sums ``acc`` and the tie count: ties with the max beyond the
    first add 1 each, added last so a tiny rest keeps its digits."""
    dvt = acc.type
    extra = builder.fsub(_to_f64(builder, ties), _splat(dvt, 1.0))
    return builder.fadd(acc, builder.select(builder.fcmp_ordered("!=", ties, _splat(ties.type, 1.0)), extra, _splat(dvt, 0.0)))


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

    inv = _splat_value(builder, args[5], vt)
    zero = _splat(vt, 0.0)

    def narrow(v):  # float64 lanes to x's dtype
        return builder.fptrunc(v, vt) if size == 4 else v

    def column(ptr, j, g):  # the vector of class j's lanes for group g
        return _lanes_at(builder, ptr, builder.add(builder.mul(j, ir.Constant(i64, _BLOCK)), g), vt)

    if finish in ("grad", "label"):
        yp = context.make_array(signature.args[6])(context, builder, args[6]).data
    if finish == "grad":
        f = _splat_value(builder, args[7], dvt)
        d = _splat_value(builder, builder.fptrunc(args[7], ft) if size == 4 else args[7], vt)
    if finish == "label":
        typ = context.make_array(signature.args[7])(context, builder, args[7]).data
        tyv = cgutils.alloca_once(builder, vt)
    mx = cgutils.alloca_once(builder, vt)
    part = cgutils.alloca_once(builder, vt)
    ties = cgutils.alloca_once(builder, vt)
    acc = cgutils.alloca_once(builder, dvt)
    with cgutils.for_range(builder, ir.Constant(i64, _BLOCK // L)) as group:
        g = builder.mul(group.index, ir.Constant(i64, L))
        builder.store(builder.load(column(Tp, ir.Constant(i64, 0), g), align=size), mx)
        with cgutils.for_range_slice(builder, ir.Constant(i64, 1), Kv, ir.Constant(i64, 1), inc=True) as (j, _):
            builder.store(_larger(builder, builder.load(column(Tp, j, g), align=size), builder.load(mx)), mx)
        mv = builder.load(mx)
        builder.store(mv, _lanes_at(builder, mp, g, vt), align=size)
        builder.store(_splat(dvt, 0.0), acc)
        builder.store(zero, ties)
        if finish in ("grad", "label"):
            yv = builder.load(_lanes_at(builder, yp, g, ir.VectorType(i64, L)), align=8)
        if finish == "label":
            builder.store(zero, tyv)
        chunk = ir.Constant(i64, _SMALL_CHUNK)
        with cgutils.for_range_slice(builder, ir.Constant(i64, 0), Kv, chunk, inc=True) as (j0, _):
            builder.store(zero, part)
            j1 = builder.add(j0, chunk)
            j1 = builder.select(builder.icmp_signed("<", j1, Kv), j1, Kv)
            with cgutils.for_range_slice(builder, j0, j1, ir.Constant(i64, 1), inc=True) as (j, _):
                tj = builder.load(column(Tp, j, g), align=size)
                t = builder.fmul(builder.fsub(tj, mv), inv)
                e = _vector_exp(builder, t)
                if finish == "label":
                    # The label's logit by a select per class (no gather); 0 for a label out of range.
                    hit = builder.icmp_signed("==", yv, _splat_value(builder, j, ir.VectorType(i64, L)))
                    builder.store(builder.select(hit, tj, builder.load(tyv)), tyv)
                elif finish != "sums":  # the loss and the log-sum need no terms
                    builder.store(e, column(Up, j, g), align=size)
                p_, t_ = _add_term(builder, t, e, builder.load(part), builder.load(ties))
                builder.store(p_, part)
                builder.store(t_, ties)
            builder.store(builder.fadd(builder.load(acc), _to_f64(builder, builder.load(part))), acc)
        total = _rest_total(builder, builder.load(acc), builder.load(ties))
        builder.store(total, _lanes_at(builder, rp, g, dvt), align=8)
        if finish == "label":  # t_y = (x_y - m) inv_t
            builder.store(builder.fmul(builder.fsub(builder.load(tyv), mv), inv), _lanes_at(builder, typ, g, vt), align=size)
        elif finish in ("softmax", "grad"):
            # Scale the group's terms while they are in L1: s = 1 / (1 + rest), or
            # a = f / (1 + rest) and the label's -f (a label out of range matches no class).
            q = narrow(builder.fdiv(f if finish == "grad" else _splat(dvt, 1.0), builder.fadd(_splat(dvt, 1.0), total)))
            with cgutils.for_range(builder, Kv) as cls:
                u = builder.fmul(builder.load(column(Up, cls.index, g), align=size), q)
                if finish == "grad":
                    hit = builder.icmp_signed("==", yv, _splat_value(builder, cls.index, ir.VectorType(i64, L)))
                    u = builder.fsub(u, builder.select(hit, d, zero))
                builder.store(u, column(Up, cls.index, g), align=size)
    return context.get_dummy_value()


@intrinsic
def _block_terms(typingctx, T, U, m, rest, K, inv_t):
    """The max ``m``, terms ``U`` and ``rest`` of a block of _BLOCK rows held classes-first in ``T``.

    For each group of L rows (one register of lanes; L = 16 float32 or 8
    float64) and in vector IR, so that the group's running max, its chunk
    sum and its tie count stay in registers while the loop runs over the K
    classes: ``m`` = max_j T_j; ``U_j`` = exp(t_j), t_j = (T_j - m) inv_t
    (:func:`_vector_exp`); ``part`` = the sum of the terms with t_j < 0 over
    chunks of _SMALL_CHUNK classes in x's dtype, each chunk's sum added to
    ``rest`` in float64; ``rest`` += ties - 1 when the max is tied. A NaN t
    poisons the sum, which flags the row; a NaN first entry makes m NaN.
    ``T``, ``U``: K * _BLOCK of x's dtype; ``m``: _BLOCK of x's dtype;
    ``rest``: _BLOCK float64.
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
    out of range; x's dtype); ``y``: _BLOCK int64 labels. What the cross-entropy of plain labels needs."""

    def codegen(context, builder, signature, args):
        return _emit_block_terms(context, builder, signature, args, "label")

    return types.void(T, U, m, rest, K, inv_t, y, ty), codegen


@intrinsic
def _block_grad(typingctx, T, U, m, rest, K, inv_t, y, f):
    """:func:`_block_terms`, then each group's terms turned in place into the cross-entropy gradient of
    plain labels: ``U_j`` = a U_j - f [y == j], a = f / (1 + rest) (in float64, rounded to x's dtype);
    ``y``: _BLOCK int64 labels (one out of range matches no class), ``f``: float64."""

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


def _unpack(builder, a, b, hi, width):
    """``vunpck{l,h}ps`` / ``vunpck{l,h}pd`` on vectors of L lanes (16 float32 or 8 float64): within each
    128-bit block, the low (high) halves of ``a`` and ``b`` interleaved ``width`` lanes at a time."""
    L = a.type.count
    n = L // 4  # lanes in a 128-bit block
    o = n // 2 if hi else 0
    return _lane_shuffle(builder, a, b, [side + n * q + o + u * width + lane for q in range(4)
                                         for u in range(n // (2 * width)) for side in (0, L) for lane in range(width)])


def _blocks128(builder, a, b, pick):
    """``vshuff32x4``/``vshuff64x2``: 128-bit blocks ``pick[0]``, ``pick[1]`` of ``a`` then ``pick[2]``,
    ``pick[3]`` of ``b``."""
    L = a.type.count
    n = L // 4
    return _lane_shuffle(builder, a, b, [L * (i >= 2) + n * p + lane for i, p in enumerate(pick) for lane in range(n)])


def _transpose_lanes(builder, vectors):
    """The L x L transpose of L vectors of L lanes (16 float32 or 8 float64): lane c of result r = lane r of
    vector c.

    Unpacks (of lanes, then for float32 of lane pairs) give each 128-bit
    block the rows of one column that fit it; two rounds of 128-bit block
    moves gather each column's four blocks. All in-lane or whole-block
    shuffles (64 for float32, 24 for float64); LLVM drops those whose results
    are not used (the columns past K).
    """
    L = len(vectors)
    n = L // 4
    B = [_unpack(builder, vectors[2 * i], vectors[2 * i + 1], hi, 1) for i in range(L // 2) for hi in (False, True)]
    if n == 4:
        B = [_unpack(builder, B[4 * i + p], B[4 * i + p + 2], hi, 2) for i in range(4) for p in (0, 1) for hi in (False, True)]
    # B[n i + c] holds, in its 128-bit block q, the n rows from n i of column n q + c.
    C = [None] * L
    for c in range(n):
        P0 = _blocks128(builder, B[c], B[n + c], (0, 1, 0, 1))
        P1 = _blocks128(builder, B[2 * n + c], B[3 * n + c], (0, 1, 0, 1))
        P2 = _blocks128(builder, B[c], B[n + c], (2, 3, 2, 3))
        P3 = _blocks128(builder, B[2 * n + c], B[3 * n + c], (2, 3, 2, 3))
        C[c], C[n + c] = _blocks128(builder, P0, P1, (0, 2, 0, 2)), _blocks128(builder, P0, P1, (1, 3, 1, 3))
        C[2 * n + c], C[3 * n + c] = _blocks128(builder, P2, P3, (0, 2, 0, 2)), _blocks128(builder, P2, P3, (1, 3, 1, 3))
    return C


def _masked_memory(builder, vt, k):
    """(load, store) of the first ``k`` lanes of a vector of type ``vt`` at a pointer (``llvm.masked.*``)."""
    i1, i32 = ir.IntType(1), ir.IntType(32)
    mt = ir.VectorType(i1, vt.count)
    mask = ir.Constant(mt, [ir.Constant(i1, int(lane < k)) for lane in range(vt.count)])
    suffix = _vector_suffix(vt) + ".p0"
    vp = vt.as_pointer()
    load = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vt, [vp, i32, mt, vt]), f"llvm.masked.load.{suffix}")
    store = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [vt, vp, i32, mt]), f"llvm.masked.store.{suffix}")
    align = ir.Constant(i32, 4)
    return (lambda ptr: builder.call(load, [ptr, align, mask, ir.Constant(vt, None)]),
            lambda v, ptr: builder.call(store, [v, ptr, align, mask]))


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
    return _lanes_at(builder, ptr, builder.add(builder.mul(g, ir.Constant(i64, k)), ir.Constant(i64, r * k + vt.count * h)), vt)


def _inside_group(r, h, k, L):
    """Whether a whole vector at part h of row r stays inside its group of L rows of k."""
    return r * k + h * L + L <= L * k


def _last_group(builder, g, L):
    """Whether the group of L rows from row ``g`` (an i64) is the last of its block (an i1)."""
    return builder.icmp_signed("==", g, ir.Constant(ir.IntType(64), _BLOCK - L))


def _group_columns(builder, px, g, k, vt, is_last):
    """The k class vectors of the group of L rows of k from row ``g`` (an i64) at ``px``: each row one
    vector load (two for float64 rows longer than 8), then L x L transposes (:func:`_transpose_lanes`).

    A whole vector from a row runs into the rows after it: past the group's
    end only for its last rows, and past the block's end only in the last
    group (``is_last``, an i1). There only the row's own lanes are read
    (masked: slow on memory, so only where it must be). In-lane shuffles
    and block moves: no index vectors and no copies, where LLVM lowers
    :func:`_columns`' shuffles of one long load to ``vpermt2ps``/``pd``,
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
                v_edge, b_edge = _masked_memory(builder, vt, lanes)[0](ptr), builder.block
            with otherwise:
                v_mid, b_mid = builder.load(ptr, align=size), builder.block
        phi = builder.phi(vt)
        phi.add_incoming(v_edge, b_edge)
        phi.add_incoming(v_mid, b_mid)
        return phi

    return [c for h, lanes in _parts_of_row(k, L) for c in _transpose_lanes(builder, [read(r, h, lanes) for r in range(L)])[:lanes]]


#: Groups of 16 rows interleaved in one pass of the register kernels: the two groups' exponentials
#: overlap (16384 rows of 10 on one core, in cache: 59 -> 51 ns per 16 rows; 4 groups 48 ns: more registers live for 6 %).
_GROUPS = 2


def _emit_rows(context, builder, signature, args, finish):
    """The IR of :func:`_rows_softmax` ("softmax"), :func:`_rows_log_softmax` ("log_softmax") and
    :func:`_rows_grad` ("grad"), arguments ``(xf, x0, ob, o0, m, rest, K, inv_t[, y, f])``, and of
    :func:`_rows_sums` ("sums"), arguments ``(xf, x0, m, rest, K, inv_t)``."""
    if finish == "sums":  # no output rows
        args = list(args[:2]) + [None, None] + list(args[2:])
        signature = types.void(*signature.args[:2], types.none, types.none, *signature.args[2:])
    dtype = signature.args[0].dtype
    if not _SCALEF:
        return context.get_dummy_value()
    i64 = ir.IntType(64)
    ft = context.get_value_type(dtype)
    size = dtype.bitwidth // 8
    L = 64 // size  # rows in a group, lanes in a vector
    vt, dvt, yt = ir.VectorType(ft, L), ir.VectorType(ir.DoubleType(), L), ir.VectorType(i64, L)
    px = element_pointer(context, builder, signature, args[:2])
    if finish != "sums":
        po = element_pointer(context, builder, types.void(*signature.args[2:4]), args[2:4])
    mp, rp = (context.make_array(signature.args[a])(context, builder, args[a]).data for a in (4, 5))
    inv = _splat_value(builder, args[7], vt)
    zero = _splat(vt, 0.0)

    def narrow(v):  # float64 lanes to x's dtype
        return builder.fptrunc(v, vt) if size == 4 else v

    if finish == "grad":
        yp = context.make_array(signature.args[8])(context, builder, args[8]).data
        f = _splat_value(builder, args[9], dvt)
        d = _splat_value(builder, builder.fptrunc(args[9], ft) if size == 4 else args[9], vt)

    def body(k):
        parts_of_row = _parts_of_row(k, L)
        masked = {lanes: _masked_memory(builder, vt, lanes) for _, lanes in parts_of_row}

        with cgutils.for_range(builder, ir.Constant(i64, _BLOCK // (L * _GROUPS))) as step:
            gs = _group_starts(builder, step.index, _GROUPS, L)
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
                builder.store(mv, _lanes_at(builder, mp, g, vt), align=size)
                mvs.append(mv)
            parts, ties, terms = [zero] * _GROUPS, [zero] * _GROUPS, [[] for _ in gs]
            for j in range(k):  # class by class, the groups side by side
                for i in range(_GROUPS):
                    t = builder.fmul(builder.fsub(cols[i][j], mvs[i]), inv)
                    e = _vector_exp(builder, t)
                    terms[i].append(e)
                    parts[i], ties[i] = _add_term(builder, t, e, parts[i], ties[i])
            outs = []
            for i, g in enumerate(gs):
                total = _rest_total(builder, builder.fadd(_splat(dvt, 0.0), _to_f64(builder, parts[i])), ties[i])
                builder.store(total, _lanes_at(builder, rp, g, dvt), align=8)
                if finish == "log_softmax":  # (x - m) inv_t - log1p(rest)
                    s = narrow(_vector_log1p(builder, total))
                    outs.append([builder.fsub(builder.fmul(builder.fsub(c, mvs[i]), inv), s) for c in cols[i]])
                elif finish != "sums":
                    q = narrow(builder.fdiv(f if finish == "grad" else _splat(dvt, 1.0), builder.fadd(_splat(dvt, 1.0), total)))
                    us = [builder.fmul(e, q) for e in terms[i]]
                    if finish == "grad":
                        yv = builder.load(_lanes_at(builder, yp, g, yt), align=8)
                        us = [builder.fsub(u, builder.select(builder.icmp_signed("==", yv, _splat(yt, j)), d, zero)) for j, u in enumerate(us)]
                    outs.append(us)
            for i, (g, is_last) in enumerate(zip(gs, last)):
                if finish == "sums":
                    break
                row_parts = [_transpose_lanes(builder, outs[i][h * L : h * L + lanes] + [ir.Constant(vt, None)] * (L - lanes))
                             for h, lanes in parts_of_row]
                for r in range(L):
                    for (h, lanes), rows in zip(parts_of_row, row_parts):
                        write(rows[r], g, r, h, lanes, is_last)

    _cases_of_k(builder, args[6], body, range(REGISTER_K[0], REGISTER_K[1] + 1))
    return context.get_dummy_value()


@intrinsic
def _rows_softmax(typingctx, xf, x0, ob, o0, m, rest, K, inv_t):
    """Softmax of the _BLOCK rows from ``xf[x0]`` (flat, C order) into ``ob[o0]``, in registers.

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
    :func:`_vector_log1p` in registers: in float32 the same bits as the scratch path's :func:`_log1p`."""

    def codegen(context, builder, signature, args):
        return _emit_rows(context, builder, signature, args, "log_softmax")

    return types.void(xf, x0, ob, o0, m, rest, K, inv_t), codegen


@intrinsic
def _rows_grad(typingctx, xf, x0, ob, o0, m, rest, K, inv_t, y, f):
    """:func:`_rows_softmax` finished as :func:`_block_grad`: the cross-entropy gradient of plain labels,
    ``a U_j - f [y == j]``, a = f / (1 + rest); ``y``: _BLOCK int64 labels, ``f``: float64."""

    def codegen(context, builder, signature, args):
        return _emit_rows(context, builder, signature, args, "grad")

    return types.void(xf, x0, ob, o0, m, rest, K, inv_t, y, f), codegen


#: Groups of L rows side by side in :func:`_rows_label_logit`, by itemsize: two float32 groups' exponentials
#: overlap (rows of 10 on one core, in cache: 0.93x the time of one group at a time, with the labels
#: compared in 32-bit lanes); float64's 8-row groups of 10 classes already fill the registers (two: 1.10x).
_LABEL_GROUPS = {4: 2, 8: 1}

#: The fewest classes, by itemsize, whose rows :func:`_rows_label_logit` reads by row loads and in-lane
#: transposes (:func:`_group_columns`) rather than by :func:`_columns`' shuffles of one long load: one
#: core, 16384 rows in cache, the kernel's time against the shuffles' was 0.74-0.93 for float64 rows of
#: 4 to 16 (0.74 at 10) and 0.65-0.96 for float32 rows of 6 to 16 (0.76 at 10); on shorter rows a whole
#: L x L transpose for a few classes costs more than the shuffles (1.0-1.17).
_ROW_LOADS_FROM = {4: 6, 8: 4}


@intrinsic
def _rows_label_logit(typingctx, xf, x0, m, rest, K, inv_t, y, ty):
    """:func:`_block_label_logit` read straight from the rows, for K <= SHUFFLE_K: the _BLOCK rows from
    ``xf[x0]`` (flat, C order), a group of L rows at a time read into its K class vectors, which stay in
    registers (code for each K, behind a switch; ``_LABEL_GROUPS`` groups side by side). From
    ``_ROW_LOADS_FROM`` classes on, by row loads and in-lane transposes (:func:`_group_columns`); below,
    by one vector load of the group and a shuffle per class (:func:`_columns`). No scratch at all: the
    loads of the next group go out between the exponentials of this one, where the transposes into
    scratch asked for the whole block first (float64 2^20 x 10 on two threads: 4.3 -> 3.6 ms, measured)."""
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
        inv = _splat_value(builder, args[5], vt)
        zero = _splat(vt, 0.0)

        G = _LABEL_GROUPS[size]

        def body(k):
            with cgutils.for_range(builder, ir.Constant(i64, _BLOCK // (L * G))) as step:
                gs = _group_starts(builder, step.index, G, L)
                cols, mvs, yvs = [], [], []
                for g in gs:
                    if k >= _ROW_LOADS_FROM[size]:
                        cols.append(_group_columns(builder, px, g, k, vt, _last_group(builder, g, L)))
                    else:
                        cols.append(_columns(builder, builder.load(_lanes_at(builder, px, builder.mul(g, ir.Constant(i64, k)), ir.VectorType(ft, L * k)), align=size), L, k))
                    mv = cols[-1][0]
                    for v in cols[-1][1:]:
                        mv = _larger(builder, v, mv)
                    builder.store(mv, _lanes_at(builder, mp, g, vt), align=size)
                    mvs.append(mv)
                    yv = builder.load(_lanes_at(builder, yp, g, yt), align=8)
                    if size == 4:
                        # 16 labels in 32-bit lanes: one compare per class, not two. A label out of range
                        # that wraps onto a class picks a t_y, but its row is flagged all the same.
                        yv = builder.trunc(yv, ct)
                    yvs.append(yv)
                accs, ties, tyvs = [_splat(dvt, 0.0)] * G, [zero] * G, [zero] * G
                for j0 in range(0, k, _SMALL_CHUNK):
                    parts = [zero] * G
                    for j in range(j0, min(k, j0 + _SMALL_CHUNK)):  # class by class, the groups side by side
                        for i in range(G):
                            t = builder.fmul(builder.fsub(cols[i][j], mvs[i]), inv)
                            parts[i], ties[i] = _add_term(builder, t, _vector_exp(builder, t), parts[i], ties[i])
                            tyvs[i] = builder.select(builder.icmp_signed("==", yvs[i], _splat(yvs[i].type, j)), cols[i][j], tyvs[i])
                    accs = [builder.fadd(a, _to_f64(builder, part)) for a, part in zip(accs, parts)]
                for i, g in enumerate(gs):
                    builder.store(_rest_total(builder, accs[i], ties[i]), _lanes_at(builder, rp, g, dvt), align=8)
                    builder.store(builder.fmul(builder.fsub(tyvs[i], mvs[i]), inv), _lanes_at(builder, typ, g, vt), align=size)

        _cases_of_k(builder, args[4], body)
        return context.get_dummy_value()

    return sig, codegen


@intrinsic
def _stream_copy(typingctx, src, dst, d0, n):
    """``dst[d0 : d0 + n] = src[:n]`` by non-temporal vector stores; ``dst[d0]`` on a 64-byte boundary and ``n``
    whole vectors (a block written by a register kernel into scratch, then streamed out)."""
    sig = types.void(src, dst, d0, n)

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        L = 512 // src.dtype.bitwidth
        vt = ir.VectorType(context.get_value_type(src.dtype), L)
        ps = context.make_array(src)(context, builder, args[0]).data
        pd = element_pointer(context, builder, types.void(dst, d0), args[1:3])
        with cgutils.for_range_slice(builder, ir.Constant(i64, 0), args[3], ir.Constant(i64, L), inc=True) as (i, _):
            v = builder.load(_lanes_at(builder, ps, i, vt), align=src.dtype.bitwidth // 8)
            _store_nontemporal(builder, v, _lanes_at(builder, pd, i, vt))
        return context.get_dummy_value()

    return sig, codegen


@numba.njit(inline="always", **_jit)
def _small_block(xf, r0, K, inv_t, T, U, m, rest):
    """Max and ``rest`` of the _BLOCK rows from ``r0`` of the flat C-ordered rows ``xf``.

    Afterwards ``T[j * _BLOCK + r]`` holds ``x[r0 + r, j]``, ``U[...]`` the
    term exp(t), t = (x - m[r]) inv_t (exactly 1 at a maximum), ``m`` the
    rows' maxima and ``rest`` (float64) the sum of the non-maximal terms plus
    ``ties - 1``, as :func:`_rest` makes it for long rows: the terms are added
    in ``x``'s dtype over chunks of _SMALL_CHUNK classes and the chunks' sums
    in float64 (:func:`_block_terms`). A NaN t poisons the sum, which flags
    the row.
    """
    _load_block(xf, r0, _BLOCK, K, T)
    _block_terms(T, U, m, rest, K, inv_t)


@numba.njit(inline="always", **_jit)
def _block_count(n, head):
    """How many blocks cover n rows: ``head`` rows first (0 <= head < _BLOCK), then blocks of _BLOCK."""
    return (head > 0) + (n - head + _BLOCK - 1) // _BLOCK


@numba.njit(inline="always", **_jit)
def _block_span(b, head, n):
    """(first row, rows) of block ``b`` of :func:`_block_count`'s blocks: the ``head`` rows, then _BLOCK at a
    time from row ``head`` (the last block partial). With ``head`` chosen so that row ``head`` of the output
    starts on a 64-byte boundary, every whole block does, and can be written by non-temporal stores."""
    if head > 0:
        if b == 0:
            return 0, head
        r0 = head + (b - 1) * _BLOCK
    else:
        r0 = b * _BLOCK
    return r0, min(_BLOCK, n - r0)


@numba.njit(inline="always", **_jit)
def _register_target(of, obuf, r0, K, whole, stream):
    """(array, offset) a register kernel writes block ``r0`` into: ``out`` itself for a whole block not
    streamed, else the scratch ``obuf`` (a partial block, or one to stream out: :func:`_flush_block`)."""
    if whole and not stream:
        return of, r0 * K
    return obuf, 0


@numba.njit(inline="always", **_jit)
def _flush_block(obuf, of, r0, nb, K, whole, stream):
    """Move a block a register kernel wrote into ``obuf`` (:func:`_register_target`) out to ``of``."""
    if not whole:
        of[r0 * K : (r0 + nb) * K] = obuf[: nb * K]
    elif stream:
        _stream_copy(obuf, of, r0 * K, _BLOCK * K)


@numba.njit(parallel=True, **_jit)
def rows_small(x, inv_t, mode, out, special, head, stream, registers):
    """softmax / log_softmax / logsumexp of short C-contiguous rows (see SMALL_K).

    ``out`` is C-contiguous, of shape (n, K), or (n, 1) for logsumexp. Blocks
    of rows start after ``head`` rows (:func:`_block_span`); with ``stream``
    the whole blocks are written by non-temporal stores (softmax and
    log_softmax, K <= SHUFFLE_K), for which row ``head`` of ``out`` must start
    on a 64-byte boundary (:func:`stream_head`). With ``registers``
    (:func:`register_rows`) each block runs in the register kernels
    (:func:`_rows_softmax`), else through the classes-first scratch; the
    results are the same bits, but for float64 log_softmax, whose last
    rounding may differ.
    """
    n, K = x.shape
    xf = x.reshape(-1)
    of = out.reshape(-1)
    inv_t = x.dtype.type(inv_t)
    nblocks = _block_count(n, head)
    nchunks = min(nblocks, _CHUNKS)
    for c in prange(nchunks):
        # Scratch allocated once per chunk of blocks, not per block.
        T = np.empty(K * _BLOCK, dtype=x.dtype)
        U = np.empty(K * _BLOCK, dtype=x.dtype)
        m = np.empty(_BLOCK, dtype=x.dtype)
        s = np.empty(_BLOCK, dtype=x.dtype)
        rest = np.empty(_BLOCK, dtype=np.float64)
        pad = np.empty(K * _BLOCK, dtype=x.dtype)
        obuf = np.empty(K * _BLOCK, dtype=x.dtype)
        for b in range(c * nblocks // nchunks, (c + 1) * nblocks // nchunks):
            r0, nb = _block_span(b, head, n)
            rows, rb = _block_rows(xf, r0, nb, K, pad)
            whole = nb == _BLOCK
            if registers:
                ob, o0 = _register_target(of, obuf, r0, K, whole, stream)
                if mode == SOFTMAX:
                    _rows_softmax(rows, rb * K, ob, o0, m, rest, K, inv_t)
                elif mode == LOG_SOFTMAX:
                    _rows_log_softmax(rows, rb * K, ob, o0, m, rest, K, inv_t)
                else:
                    _rows_sums(rows, rb * K, m, rest, K, inv_t)
            else:
                _load_block(rows, rb, _BLOCK, K, T)
                if mode == SOFTMAX:  # the terms come out already scaled
                    _block_softmax(T, U, m, rest, K, inv_t)
                else:  # the log-sum needs no terms
                    _block_sums(T, U, m, rest, K, inv_t)
            # Flags written through a slice: ``special[r0 + r]`` may be a
            # negative index to Numba, whose wraparound LLVM turns into a
            # byte-by-byte scatter (5-7 % of the whole kernel, measured).
            sp = special[r0 : r0 + nb]
            for r in range(nb):
                sp[r] = not (np.isfinite(m[r]) & (rest[r] == rest[r]))
            if mode == LOGSUMEXP:
                ol = of[r0 : r0 + nb]
                for r in range(nb):
                    ol[r] = m[r] + x.dtype.type(_log1p(rest[r]))
                continue
            if registers:
                _flush_block(obuf, of, r0, nb, K, whole, stream)
                continue
            if mode == LOG_SOFTMAX:
                for r in range(_BLOCK):
                    s[r] = x.dtype.type(_log1p(rest[r]))
                for j in range(K):
                    Tj = T[j * _BLOCK : (j + 1) * _BLOCK]
                    for r in range(_BLOCK):
                        Tj[r] = (Tj[r] - m[r]) * inv_t - s[r]
            # A partial block (the head, the last) is written to ``pad`` and copied out.
            sb = of[r0 * K : (r0 + _BLOCK) * K] if whole else pad
            _store_block(U if mode == SOFTMAX else T, _BLOCK, K, sb, stream and whole)
            if not whole:
                of[r0 * K : (r0 + nb) * K] = pad[: nb * K]
        if stream:
            _store_fence()

# ---------------------------------------------------------------------------
# Cross-entropy with integer labels.
#
# With t_k = (z_k - m) / T and L = log1p(rest), -log softmax(z/T)_k = L - t_k,
# and (module docstring of _cross_entropy) the loss of a counted row is
#     l = sum_k c_k (L - t_k),   c = (1 - eps) w_y e_y + (eps / K) w,
# its gradient (sum_k c_k) p - c, all divided by T. Ignored rows (label ==
# ignore) give 0; a label outside [0, K) flags the row (the reference raises).


@numba.njit(inline="always", **_jit)
def _coef(labels, i, w, has_w, ignore, has_ignore, K, eps):
    """(valid, y, c_y, w_y): the label's coefficient (1 - eps) w_y and weight.

    valid is 1 for a counted label, 0 for an ignored one, -1 for one out of range.
    """
    y = labels[i]
    if has_ignore and y == ignore:
        return 0, 0, 0.0, 0.0
    if y < 0 or y >= K:
        return -1, 0, 0.0, 0.0
    wy = np.float64(w[y]) if has_w else 1.0
    return 1, y, (1.0 - eps) * wy, wy


@numba.njit(inline="always", **_jit)
def _plain_row_ok(y, K, m, rest):
    """Whether a row with plain label ``y`` is computed by the kernel: label in range, finite max, no NaN
    (``rest`` is NaN then). Otherwise the row is flagged and the reference decides (and raises)."""
    return (y >= 0) & (y < K) & np.isfinite(m) & (rest == rest)


@numba.njit(parallel=True, **_jit)
def label_denominator(labels, w, has_w, ignore, has_ignore, K):
    """Sum of w_y over the non-ignored labels, and whether any label is out of range."""
    n = labels.shape[0]
    nblocks = (n + 4095) // 4096
    parts = np.zeros((nblocks, 2))
    for b in prange(nblocks):
        den = 0.0
        bad = 0.0
        for i in range(b * 4096, min(n, (b + 1) * 4096)):
            y = labels[i]
            if not (has_ignore and y == ignore):
                if y < 0 or y >= K:
                    bad += 1.0
                else:
                    den += np.float64(w[y]) if has_w else 1.0
        parts[b, 0] = den
        parts[b, 1] = bad
    return parts[:, 0].sum(), parts[:, 1].sum()


@numba.njit(parallel=True, **_jit)
def ce_labels_rows(x, labels, w, has_w, ignore, has_ignore, eps, inv_t, per_row, out, special):
    """Cross-entropy of rows with long K; returns (sum of losses, denominator).

    With ``per_row`` the loss of row i goes to ``out[i]``. Partial sums are
    kept per block of rows (float64) and added at the end.
    """
    n, K = x.shape
    epk = eps / K
    inv = x.dtype.type(inv_t)
    nblocks = (n + _BLOCK - 1) // _BLOCK
    parts = np.zeros((nblocks, 2))
    for b in prange(nblocks):
        for i in range(b * _BLOCK, min(n, (b + 1) * _BLOCK)):
            xi = x[i]
            valid, y, cy, wy = _coef(labels, i, w, has_w, ignore, has_ignore, K, eps)
            m = _rowmax(xi)
            if valid < 0 or not np.isfinite(m):
                special[i] = True
                continue
            rest = _rest_sum(xi, m, inv)
            if rest != rest:
                special[i] = True
                continue
            special[i] = False
            loss = 0.0
            if valid == 1:
                L = np.log1p(rest)
                ty = np.float64((xi[y] - m) * inv)
                loss = cy * (L - ty) if cy != 0.0 else 0.0
                if eps > 0.0:
                    acc = 0.0
                    for k in range(K):
                        wk = np.float64(w[k]) if has_w else 1.0
                        tk = np.float64((xi[k] - m) * inv)
                        acc += wk * (L - tk) if wk != 0.0 else 0.0
                    loss += epk * acc
                parts[b, 1] += wy
            parts[b, 0] += loss
            if per_row:
                out[i] = loss
    return parts[:, 0].sum(), parts[:, 1].sum()


@numba.njit(parallel=True, **_jit)
def ce_labels_small(x, labels, w, has_w, ignore, has_ignore, eps, inv_t, per_row, out, special):
    """As :func:`ce_labels_rows`, for short C-contiguous rows (see SMALL_K).

    Plain labels (no weight, no ignore_index, no smoothing) take a loop
    without branches: loss = log1p(rest) - t_y.
    """
    n, K = x.shape
    xf = x.reshape(-1)
    epk = eps / K
    inv = x.dtype.type(inv_t)
    plain = not has_w and not has_ignore and eps == 0.0
    nblocks = (n + _BLOCK - 1) // _BLOCK
    parts = np.zeros((nblocks, 2))
    nchunks = min(nblocks, _CHUNKS)
    for c in prange(nchunks):
        # Scratch allocated once per chunk of blocks, not per block.
        T = np.empty(K * _BLOCK, dtype=x.dtype)
        U = np.empty(K * _BLOCK, dtype=x.dtype)
        m = np.empty(_BLOCK, dtype=x.dtype)
        rest = np.empty(_BLOCK, dtype=np.float64)
        pad = np.empty(K * _BLOCK, dtype=x.dtype)
        tyr = np.empty(_BLOCK, dtype=x.dtype)
        yy = np.empty(_BLOCK, dtype=np.int64)
        for b in range(c * nblocks // nchunks, (c + 1) * nblocks // nchunks):
            r0 = b * _BLOCK
            nb = min(_BLOCK, n - r0)
            rows, rb = _block_rows(xf, r0, nb, K, pad)
            btotal = 0.0
            bden = 0.0
            if plain:
                # t_y comes out of the block's IR (a select per class as the
                # terms go by, not a gather from T afterwards), the terms are
                # not stored, log1p runs in the loss loop, and the labels are
                # read and the flags and losses written in place (see
                # ce_grad_labels_small): 2.5 -> 2.0 ms for 2^20 x 10 float32
                # on two threads.
                yl = _block_labels(labels, r0, nb, yy)
                if K <= SHUFFLE_K:
                    _rows_label_logit(rows, rb * K, m, rest, K, inv, yl, tyr)
                else:
                    _load_block(rows, rb, _BLOCK, K, T)
                    _block_label_logit(T, U, m, rest, K, inv, yl, tyr)
                sp = special[r0 : r0 + nb]
                ol = out[r0 : r0 + nb] if per_row else out
                for r in range(nb):
                    ok = _plain_row_ok(yl[r], K, m[r], rest[r])
                    loss = _log1p(rest[r]) - np.float64(tyr[r]) if ok else 0.0
                    sp[r] = not ok
                    if per_row:
                        ol[r] = loss
                    btotal += loss
                    bden += 1.0 if ok else 0.0
            else:
                _small_block(rows, rb, K, inv, T, U, m, rest)
                for r in range(nb):
                    rest[r] = _log1p(rest[r])  # now L = log1p(rest), NaN for a NaN row
                for r in range(nb):
                    i = r0 + r
                    valid, y, cy, wy = _coef(labels, i, w, has_w, ignore, has_ignore, K, eps)
                    if valid < 0 or not (np.isfinite(m[r]) and rest[r] == rest[r]):
                        special[i] = True
                        continue
                    special[i] = False
                    loss = 0.0
                    if valid == 1:
                        L = rest[r]
                        ty = np.float64((T[y * _BLOCK + r] - m[r]) * inv)
                        loss = cy * (L - ty) if cy != 0.0 else 0.0
                        if eps > 0.0:
                            acc = 0.0
                            for k in range(K):
                                wk = np.float64(w[k]) if has_w else 1.0
                                tk = np.float64((T[k * _BLOCK + r] - m[r]) * inv)
                                acc += wk * (L - tk) if wk != 0.0 else 0.0
                            loss += epk * acc
                        bden += wy
                    btotal += loss
                    if per_row:
                        out[i] = loss
            parts[b, 0] = btotal
            parts[b, 1] = bden
    return parts[:, 0].sum(), parts[:, 1].sum()

@numba.njit(parallel=True, **_jit)
def ce_grad_labels_rows(x, labels, w, has_w, ignore, has_ignore, eps, inv_t, scale, out, special):
    """out = scale * ((sum c) softmax(x / T) - c) / T for rows with long K."""
    n, K = x.shape
    epk = eps / K
    sw = 0.0
    for k in range(K):
        sw += np.float64(w[k]) if has_w else 1.0
    inv = x.dtype.type(inv_t)
    for i in prange(n):
        xi = x[i]
        oi = out[i]
        valid, y, cy, wy = _coef(labels, i, w, has_w, ignore, has_ignore, K, eps)
        m = _rowmax(xi)
        if valid < 0 or not np.isfinite(m):
            special[i] = True
            continue
        rest = _rest(xi, m, inv, oi, True)
        if rest != rest:
            special[i] = True
            continue
        special[i] = False
        if valid == 0:
            for k in range(K):
                oi[k] = 0.0
            continue
        f = scale * inv_t
        sc = cy + epk * sw
        a = x.dtype.type(f * sc / (1.0 + rest))
        if eps > 0.0:
            b = x.dtype.type(f * epk)
            if has_w:
                for k in range(K):
                    oi[k] = a * oi[k] - b * w[k]
            else:
                for k in range(K):
                    oi[k] = a * oi[k] - b
        else:
            for k in range(K):
                oi[k] = a * oi[k]
        oi[y] -= x.dtype.type(f * cy)


@numba.njit(parallel=True, **_jit)
def ce_grad_labels_small(x, labels, w, has_w, ignore, has_ignore, eps, inv_t, scale, out, special, head, stream,
                         registers):
    """As :func:`ce_grad_labels_rows`, for short C-contiguous rows (see SMALL_K); ``head``, ``stream`` and
    ``registers`` as in :func:`rows_small` (the register kernel takes plain labels: :func:`_rows_grad`)."""
    n, K = x.shape
    xf = x.reshape(-1)
    of = out.reshape(-1)
    epk = eps / K
    sw = 0.0
    for k in range(K):
        sw += np.float64(w[k]) if has_w else 1.0
    inv = x.dtype.type(inv_t)
    zero = x.dtype.type(0.0)
    f = scale * inv_t
    plain = not has_w and not has_ignore and eps == 0.0
    # The smoothing part of each column, f * eps / K * w_k.
    bcol = np.empty(K, dtype=x.dtype)
    for k in range(K):
        bcol[k] = x.dtype.type((np.float64(w[k]) if has_w else 1.0) * (f * epk))
    nblocks = _block_count(n, head)
    nchunks = min(nblocks, _CHUNKS)
    for c in prange(nchunks):
        # Scratch allocated once per chunk of blocks, not per block.
        T = np.empty(K * _BLOCK, dtype=x.dtype)
        U = np.empty(K * _BLOCK, dtype=x.dtype)
        m = np.empty(_BLOCK, dtype=x.dtype)
        rest = np.empty(_BLOCK, dtype=np.float64)
        pad = np.empty(K * _BLOCK, dtype=x.dtype)
        a = np.zeros(_BLOCK, dtype=x.dtype)  # zero on padded rows
        d = np.empty(_BLOCK, dtype=x.dtype)
        yy = np.empty(_BLOCK, dtype=np.int64)
        obuf = np.empty(K * _BLOCK, dtype=x.dtype)
        for b in range(c * nblocks // nchunks, (c + 1) * nblocks // nchunks):
            r0, nb = _block_span(b, head, n)
            rows, rb = _block_rows(xf, r0, nb, K, pad)
            ignored = False
            whole = nb == _BLOCK
            if plain and registers:
                yl = _block_labels(labels, r0, nb, yy)
                dst, d0 = _register_target(of, obuf, r0, K, whole, stream)
                _rows_grad(rows, rb * K, dst, d0, m, rest, K, inv, yl, f)
                sp = special[r0 : r0 + nb]
                for r in range(nb):
                    sp[r] = not _plain_row_ok(yl[r], K, m[r], rest[r])
                _flush_block(obuf, of, r0, nb, K, whole, stream)
                continue
            # A partial block (the head, the last) is written to ``pad`` and copied out.
            ob = of[r0 * K : (r0 + _BLOCK) * K] if whole else pad
            if plain:
                # The gradient whole in _block_grad's IR, group by group.
                # The labels are read in place (through a slice, so that LLVM
                # can prove its indices in range) and the flags written in
                # place: with the labels staged in scratch, the flags copied
                # out of it and a loop of its own for a U - f [y == j], the
                # kernel took 1.3-1.9x as long on rows streamed from memory.
                yl = _block_labels(labels, r0, nb, yy)
                _load_block(rows, rb, _BLOCK, K, T)
                _block_grad(T, U, m, rest, K, inv, yl, f)
                sp = special[r0 : r0 + nb]
                for r in range(nb):
                    sp[r] = not _plain_row_ok(yl[r], K, m[r], rest[r])
            else:
                _small_block(rows, rb, K, inv, T, U, m, rest)
                for r in range(nb):
                    i = r0 + r
                    valid, y, cy, wy = _coef(labels, i, w, has_w, ignore, has_ignore, K, eps)
                    special[i] = valid < 0 or not (np.isfinite(m[r]) and rest[r] == rest[r])
                    a[r] = x.dtype.type(f * (cy + epk * sw) / (1.0 + rest[r]))
                    d[r] = x.dtype.type(f * cy)
                    yy[r] = y
                    if valid == 0:
                        yy[r] = -1
                        ignored = True
                # The label's -d in the same vector loop: scalar stores into U
                # just before _store_block's vector loads of it would stall them
                # (no store-to-load forwarding from several small stores).
                for j in range(K):
                    Uj = U[j * _BLOCK : (j + 1) * _BLOCK]
                    bj = bcol[j]
                    for r in range(_BLOCK):
                        Uj[r] = a[r] * Uj[r] - (bj + (d[r] if yy[r] == j else zero))
            _store_block(U, _BLOCK, K, ob, stream and whole)
            if ignored:
                for r in range(nb):
                    if yy[r] < 0:
                        for k in range(K):
                            ob[r * K + k] = 0.0
            if not whole:
                of[r0 * K : (r0 + nb) * K] = pad[: nb * K]
        if stream:
            _store_fence()

# ---------------------------------------------------------------------------
# NumPy glue: what the functional core calls.

#: Arrays smaller than this take the reference path: there the kernels would
#: save microseconds and cost a compilation (or a cache load) per signature.
MIN_SIZE = 1 << 16

_FLOATS = (np.float16, np.float32, np.float64)


@numba.njit(inline="always", **_jit)
def _times_zero_sum(seg):
    """The sum of x * 0 over ``seg``: (+-)0 if every x is finite, NaN if one is inf or NaN.

    The fast-math flags here keep NaN and inf semantics, so ``x * 0`` is not
    folded to 0. A loop over a view of its own: indexing the flat array by
    offsets inside the ``prange`` body kept LLVM from vectorising it (10x slower).
    """
    zero = seg.dtype.type(0.0)
    acc = zero
    for i in range(seg.shape[0]):
        acc += seg[i] * zero
    return acc


@numba.njit(parallel=True, **_jit)
def _finite_chunks(xf, out):
    """out[c] = :func:`_times_zero_sum` of chunk c of the flat ``xf``: one read, no temporary."""
    n = xf.shape[0]
    C = out.shape[0]
    for c in prange(C):
        out[c] = _times_zero_sum(xf[c * n // C:(c + 1) * n // C])


def all_finite(x) -> bool:
    """Whether every entry of ``x`` (a float NumPy array) is finite: one threaded read of ``x``.

    ``np.isfinite(x).all()`` writes a boolean temporary the size of ``x`` and
    runs on one core (58 ms on a 1 GB array here, against 26 ms for a copy).

    Examples
    --------
    >>> import numpy as np
    >>> x = np.ones(1 << 16)
    >>> all_finite(x), all_finite(np.where(np.arange(x.size) == 7, np.inf, x))
    (True, False)
    """
    if x.dtype == np.float16:
        return bool(np.isfinite(x).all())
    xf = np.ascontiguousarray(x).reshape(-1)
    out = np.empty(max(1, min(64, xf.size >> 16)), dtype=x.dtype)
    _finite_chunks(xf, out)
    return bool(np.all(out == 0))


def applies(x) -> bool:
    """Whether ``x`` (already through ``as_array``) can take a fast path."""
    return type(x) is np.ndarray and x.dtype.type in _FLOATS and x.ndim >= 1 and x.size >= MIN_SIZE


def _rows(x, axis):
    """(x as C-contiguous float32/float64 rows along ``axis``, the moved shape)."""
    if x.dtype == np.float16:
        x = x.astype(np.float32)
    xm = np.moveaxis(x, axis, -1)
    return np.ascontiguousarray(xm).reshape(-1, xm.shape[-1]), xm.shape


def _result_rows(rows, x, axis, out):
    """The rows the kernel writes into: ``out``'s own memory when it can take them
    (C-contiguous, class axis last, the rows' dtype, no overlap with ``x``), else a new array."""
    if (out is not None and axis == x.ndim - 1 and out.dtype == rows.dtype and out.flags.c_contiguous
            and not np.may_share_memory(out, x)):
        return out.reshape(rows.shape)
    return np.empty(rows.shape, rows.dtype)


#: A float32 output at least this large is written by non-temporal stores
#: (short rows, :func:`stream_head`): larger than the last-level cache of the
#: machines measured (32 MiB), so its lines would leave the cache before
#: anyone read them, and a plain store reads each line before writing it.
STREAM_BYTES = 1 << 25


def stream_head(res):
    """(head, stream) for a short-row kernel writing the C-contiguous rows ``res``.

    ``stream``: whether to write whole blocks by non-temporal stores: for
    float32 rows of at most ``SHUFFLE_K`` into at least ``STREAM_BYTES``.
    There the kernel is close to bound by memory traffic, and skipping the
    read of each output line made softmax, log_softmax and the cross-entropy
    gradient on 2^20 x 10 15-25 % faster into a reused ``out=`` and 5-12 %
    into a fresh array. float64 rows are bound by the exponential's compute;
    there a streamed kernel took 0.90-1.14x the time of the plain one into
    ``out=`` and 1.19x into a fresh array, so they are not streamed. ``head``: the rows before the first row
    that starts on a 64-byte boundary (:func:`_block_span`); if none does,
    nothing is streamed.

    Examples
    --------
    >>> import numpy as np
    >>> buf = np.empty(1 << 24, dtype=np.float32)  # 64 MiB, never touched
    >>> res = buf[2 : 2 + 10 * 900_000].reshape(-1, 10)  # rows of 40 bytes, 8 bytes past buf's start
    >>> head, stream = stream_head(res)
    >>> stream, (res.ctypes.data + head * 40) % 64
    (True, 0)
    >>> stream_head(res[:1000]), stream_head(buf.view(np.float64)[:8_000_000].reshape(-1, 8))
    ((0, False), (0, False))
    """
    n, K = res.shape
    if res.dtype != np.float32 or res.nbytes < STREAM_BYTES or K > SHUFFLE_K:
        return 0, False
    row = K * res.itemsize
    for head in range(min(n, _BLOCK)):
        if (res.ctypes.data + head * row) % 64 == 0:
            return head, True
    return 0, False


def register_rows(rows, mode=SOFTMAX):
    """Whether the short-row kernels run ``rows`` (n, K) in registers (:func:`_rows_softmax`) for ``mode``
    (``SOFTMAX``, ``LOG_SOFTMAX``, ``LOGSUMEXP``; the gradient counts as ``SOFTMAX``): rows of K in
    ``REGISTER_K``, on a machine with AVX-512, except float64 logsumexp.

    float32, one core: a group of 16 rows of 10 took 51 ns in cache against
    66 ns through the scratch, and 2^20 rows of 10 streamed from memory 3.9
    against 5.1 ms; K = 8 and 12 about half the time. 16384 rows of 10 in
    cache: 0.68-0.79x the time (softmax, log_softmax, logsumexp, gradient);
    float64 0.74-0.89x. From memory on both cores (2^20 x 10, side by side)
    float64 logsumexp, which only reads, took 1.16x the scratch path's time:
    its rows are two loads each, most across a cache line, where the scratch
    path loads a group's lines whole.

    Examples
    --------
    >>> import numpy as np
    >>> register_rows(np.zeros((4, 1), np.float32)), register_rows(np.zeros((4, 16), np.float32))
    (False, False)
    >>> register_rows(np.zeros((4, 10)), LOGSUMEXP)
    False
    >>> register_rows(np.zeros((4, 10))) == register_rows(np.zeros((4, 2), np.float32), LOGSUMEXP) == _SCALEF
    True
    """
    if mode == LOGSUMEXP and rows.dtype == np.float64:
        return False
    return bool(_SCALEF and REGISTER_K[0] <= rows.shape[1] <= REGISTER_K[1])


def softmax_family(x, axis, temperature, mode, reference, out=None):
    """softmax (mode 0), log_softmax (1) or logsumexp (2) of ``x`` along ``axis``.

    ``reference(rows)`` computes the same function on a 2-D array of rows
    (class axis last) and is called on the rows the kernels flag as special.
    Returns an array in ``x``'s dtype: ``x``'s shape, or without ``axis`` for
    logsumexp. Given ``out`` (checked by the caller: ``x``'s shape and result
    dtype), the kernels write into its memory when its layout allows
    (:func:`_result_rows`) and the result is then a view of it; otherwise the
    caller copies the result in.
    """
    rows, shape = _rows(x, axis)
    n, K = rows.shape
    special = np.empty(n, dtype=np.bool_)
    if mode == LOGSUMEXP:
        res = np.empty((n, 1), dtype=rows.dtype)
        if K < SMALL_K:
            rows_small(rows, 1.0, LOGSUMEXP, res, special, 0, False, register_rows(rows, LOGSUMEXP))
        else:
            logsumexp_rows(rows, res[:, 0], special)
    else:
        res = _result_rows(rows, x, axis, out)
        if K < SMALL_K:
            rows_small(rows, 1.0 / temperature, mode, res, special, *stream_head(res), register_rows(rows, mode))
        elif mode == SOFTMAX:
            softmax_rows(rows, 1.0 / temperature, res, special)
        else:
            log_softmax_rows(rows, 1.0 / temperature, res, special)
    if special.any():
        res[special] = np.reshape(reference(rows[special]), (-1, res.shape[1]))
    if mode == LOGSUMEXP:
        y = res.reshape(shape[:-1])
    else:
        y = np.moveaxis(res.reshape(shape), -1, axis)
    return _cast(y, x.dtype)


def _cast(y, dtype):
    """Cast to the output dtype; beyond float16's range becomes +-inf, quietly."""
    if y.dtype == dtype:
        return y
    with np.errstate(over="ignore"):
        return y.astype(dtype)


def cross_entropy_labels(x, labels, axis, weight, ignore_index, eps, temperature, reduction, grad, reference, out=None):
    """Cross-entropy (or its gradient, ``grad=True``) for integer class labels.

    ``reference(rows, labels)`` returns ``(per-sample losses or unreduced
    gradient rows, denominator contributions)`` for the flagged rows (class
    axis last); it also raises the reference's errors (labels out of range).
    Returns the loss in float64 for the reductions (the caller casts) or the
    per-sample losses / gradient in ``x``'s dtype; the gradient is written
    into ``out``'s memory when its layout allows (as in :func:`softmax_family`).
    """
    rows, shape = _rows(x, axis)
    n, K = rows.shape
    labels = np.ascontiguousarray(labels, dtype=np.int64).reshape(-1)
    has_w = weight is not None
    w = np.ascontiguousarray(weight, dtype=np.float64) if has_w else np.empty(0, np.float64)
    has_ignore = ignore_index is not None
    ignore = np.int64(ignore_index) if has_ignore else np.int64(0)
    inv_t = 1.0 / temperature
    special = np.empty(n, dtype=np.bool_)
    if not grad:
        per_row = reduction == "none"
        out = np.empty(n if per_row else 1, dtype=np.float64)
        kern = ce_labels_small if K < SMALL_K else ce_labels_rows
        total, den = kern(rows, labels, w, has_w, ignore, has_ignore, eps, inv_t, per_row, out, special)
        if special.any():
            idx = np.flatnonzero(special)
            loss_s, den_s = reference(rows[idx], labels[idx])
            total += float(np.sum(loss_s, dtype=np.float64))
            den += float(den_s)
            if per_row:
                out[idx] = loss_s
        if per_row:
            return _cast(out.reshape(shape[:-1]), x.dtype)
        if reduction == "sum":
            return total
        return total / den if den > 0 else 0.0
    if has_w or has_ignore:
        den = label_denominator(labels, w, has_w, ignore, has_ignore, K)[0]
    else:
        # Every label counts 1; one out of range flags its row, and the
        # reference then raises.
        den = float(n)
    scale = 1.0 / den if reduction == "mean" and den > 0 else 1.0
    res = _result_rows(rows, x, axis, out)
    if K < SMALL_K:
        ce_grad_labels_small(rows, labels, w, has_w, ignore, has_ignore, eps, inv_t, scale, res, special,
                             *stream_head(res), register_rows(rows))
    else:
        ce_grad_labels_rows(rows, labels, w, has_w, ignore, has_ignore, eps, inv_t, scale, res, special)
    if special.any():
        idx = np.flatnonzero(special)
        g_s, den_s = reference(rows[idx], labels[idx])
        if reduction == "mean":
            # All -inf rows are not counted: the denominator may shrink.
            den_true = den - float(np.sum(_den_of(labels[idx], w, has_w, ignore, has_ignore))) + float(den_s)
            true_scale = 1.0 / den_true if den_true > 0 else 1.0
            if true_scale != scale:
                res *= rows.dtype.type(true_scale / scale)
            g_s = g_s * true_scale
        res[idx] = g_s
    return _cast(np.moveaxis(res.reshape(shape), -1, axis), x.dtype)


def _den_of(labels, w, has_w, ignore, has_ignore):
    """Denominator contributions the kernels assumed for these labels (all in range)."""
    valid = labels != ignore if has_ignore else np.ones(labels.shape, dtype=bool)
    return (w[labels[valid]] if has_w else np.ones(int(valid.sum())))
