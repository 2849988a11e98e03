"""Vector primitives of the native kernels: loads, stores, transposes, lane sums, written as LLVM IR.

Every kernel of :mod:`softmaxreg._native` is written against these helpers,
as PyTorch's CPU kernels are written against ``ATen/cpu/vec``. Most are
Python functions called inside an intrinsic's ``codegen`` (they take the IR
``builder``); a few are Numba intrinsics callable from compiled code.
Vectors are 512 bits wide (16 float32 or 8 float64 lanes); on a machine
without AVX-512 LLVM splits each into two 256-bit registers, so the same IR
runs everywhere, and only the calls guarded by :data:`AVX512` use AVX-512
instructions by name.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager

from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

from .cpu import AVX512

__all__ = ["AVX512", "FASTMATH", "JIT", "SHUFFLE_K", "VECTOR_BITS", "vector_loop"]

# Reassociation lets LLVM vectorise the sums and the max; IEEE semantics for inf and NaN stay
# (no "nnan"/"ninf"), which the detection of non-finite rows relies on.
FASTMATH = {"reassoc", "contract", "arcp", "nsz"}
#: Options of every compiled kernel: cached on disk, released GIL, NumPy's error model.
JIT = dict(cache=True, nogil=True, fastmath=FASTMATH, error_model="numpy")
#: Bits of the vectors of the fused linear pass (its tiles and block steps): a register's. A 4-row x 5-class
#: tile of 512-bit accumulators on a machine without AVX-512 would take 40 of its 16 vector registers.
VECTOR_BITS = 512 if AVX512 else 256


@intrinsic
def i32_as_f32(typingctx, i):
    """Reinterpret the bits of an int32 as a float32 (no conversion)."""
    sig = types.float32(types.int32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return sig, codegen


@intrinsic
def i64_as_f64(typingctx, i):
    """Reinterpret the bits of an int64 as a float64 (no conversion)."""
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@intrinsic
def f32_as_i32(typingctx, x):
    """Reinterpret the bits of a float32 as an int32."""
    sig = types.int32(types.float32)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return sig, codegen


@intrinsic
def f64_as_i64(typingctx, x):
    """Reinterpret the bits of a float64 as an int64."""
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return sig, codegen


@intrinsic
def fma(typingctx, a, b, c):
    """a * b + c rounded once (llvm.fma): an opaque call that fast-math
    reassociation cannot split or merge, which the Cody-Waite reduction needs."""
    sig = a(a, a, a)

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return sig, codegen


def scale_by_power_of_two(builder, x, n):
    """``x * 2**n`` rounded once, for a float or float vector ``x`` and int32 ``n`` (of the same lanes),
    ``n`` from about -2 (bias - 1) to 2 bias (-252 to 254 for float32, -2044 to 2046 for float64).

    On AVX-512, ``llvm.ldexp`` (one ``vscalefps``/``pd``). Elsewhere LLVM lowers ``llvm.ldexp`` to a call of
    libm's ``ldexpf``/``ldexp`` per element, so the factor is applied in two multiplications by powers of
    two built from their bits, ``2**(n >> 1)`` and ``2**(n - (n >> 1))``, both normal: the first product
    is exact (a normal number scaled by a normal power of two stays normal for these ``n`` and ``|x|``
    near 1), so only the second rounds, as ``ldexp`` does, also into the subnormal range.
    """
    ft = x.type
    lanes = ft.count if isinstance(ft, ir.VectorType) else None
    element = ft.element if lanes else ft
    single = isinstance(element, ir.FloatType)
    if AVX512:
        name = f"llvm.ldexp.{vector_suffix(ft)}.v{lanes}i32" if lanes else ("llvm.ldexp.f32.i32" if single
                                                                             else "llvm.ldexp.f64.i32")
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ft, [ft, n.type]), name)
        return builder.call(fn, [x, n])
    width, bits, bias = (32, 23, 127) if single else (64, 52, 1023)
    it = ir.IntType(width)
    if lanes:
        it = ir.VectorType(it, lanes)

    def const(v):
        return ir.Constant(it, [v] * lanes) if lanes else ir.Constant(it, v)

    if not single:
        n = builder.sext(n, it)
    half = builder.ashr(n, const(1))
    rest = builder.sub(n, half)

    def power(k):  # 2**k for a normal exponent k, from its bits
        return builder.bitcast(builder.shl(builder.add(k, const(bias)), const(bits)), ft)

    return builder.fmul(builder.fmul(x, power(half)), power(rest))


@intrinsic
def ldexp(typingctx, x, n):
    """x * 2**n rounded once, also into the subnormal range (:func:`scale_by_power_of_two`).

    It vectorises: on AVX-512 one instruction (vscalefps/pd), elsewhere two
    multiplications by powers of two built from their bits.
    """
    sig = x(x, types.int32)

    def codegen(context, builder, signature, args):
        return scale_by_power_of_two(builder, *args)

    return sig, codegen


def element_pointer(context, builder, signature, args):
    """In an intrinsic's codegen: the LLVM pointer to ``arr[idx]``, its first two arguments."""
    aryty = signature.args[0]
    ary = context.make_array(aryty)(context, builder, args[0])
    return cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]])


#: Rows up to this long are transposed by shuffles (:func:`transpose_in`).
SHUFFLE_K = 16


def cases_of_k(builder, K, body, ks=range(1, SHUFFLE_K + 1)):
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


def lane_shuffle(builder, a, b, mask):
    """The vector of lanes ``mask`` of ``a`` and ``b`` end to end (``shufflevector``; ``b`` may be undef)."""
    return builder.shuffle_vector(a, b, ir.Constant(ir.VectorType(ir.IntType(32), len(mask)), mask))


def store_nontemporal(builder, value, ptr):
    """Store ``value`` at ``ptr`` (on a 64-byte boundary) by non-temporal stores: whole cache lines written
    without reading them first (``vmovntps``/``pd``)."""
    store = builder.store(value, ptr, align=64)
    store.set_metadata("nontemporal", builder.module.add_metadata([ir.Constant(ir.IntType(32), 1)]))


def concat(builder, vectors):
    """One vector holding ``vectors`` (all of one type) end to end, by a tree of shuffles."""
    while len(vectors) > 1:
        if len(vectors) % 2:
            vectors = vectors + [ir.Constant(vectors[-1].type, None)]
        pairs = []
        for a, b in zip(vectors[::2], vectors[1::2]):
            wa, wb = a.type.count, b.type.count
            if wb < wa:  # widen b (a padding vector of the previous round) to a's width
                b = lane_shuffle(builder, b, ir.Constant(b.type, None), [min(lane, wb) for lane in range(wa)])
            pairs.append(lane_shuffle(builder, a, b, list(range(2 * wa))))
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

            cases_of_k(builder, args[5], lambda k: move(builder, at(ps), at(pd), L, k, src.dtype.bitwidth // 8))
            return context.get_dummy_value()

        return sig, codegen

    typer.__name__ = typer.__qualname__ = name
    typer.__doc__ = doc
    return intrinsic(typer)


def columns(builder, rows, L, k):
    """The k class vectors of L rows held end to end in the vector ``rows`` (L k lanes): a shuffle each."""
    return [lane_shuffle(builder, rows, ir.Constant(rows.type, None), [j + k * lane for lane in range(L)]) for j in range(k)]


def _rows_to_columns(builder, src_at, dst_at, L, k, align):
    """The L rows are one vector load of L k lanes and each class a shuffle of it."""
    for j, col in enumerate(columns(builder, builder.load(src_at(L * k), align=align), L, k)):
        builder.store(col, dst_at(L, j), align=align)


def _columns_to_rows(builder, src_at, dst_at, L, k, align, stream=False):
    """The k class vectors end to end, then one shuffle into row order and one vector store.

    With ``stream`` the store is non-temporal (``vmovntps``/``pd``: whole cache
    lines written without reading them first) and the destination must start
    on a 64-byte boundary; the L k lanes are k whole lines.
    """
    every = concat(builder, [builder.load(src_at(L, j), align=align) for j in range(k)])
    rows = lane_shuffle(builder, every, ir.Constant(every.type, None), [(f % k) * L + f // k for f in range(L * k)])
    if stream:
        store_nontemporal(builder, rows, dst_at(L * k))
    else:
        builder.store(rows, dst_at(L * k), align=align)


transpose_in = _transposer(
    "transpose_in",
    _rows_to_columns,
    """``dst[d0 + j * stride + l] = src[s0 + l * K + j]`` for j < K, l < L: L rows, classes first.

    One vector load of the L rows and a shuffle per class (LLVM lowers the
    shuffles to ``vpermt2ps``-style permutes): no scalar element moves.
    """,
)
transpose_out = _transposer(
    "transpose_out",
    _columns_to_rows,
    """``dst[d0 + l * K + j] = src[s0 + j * stride + l]`` for j < K, l < L: the inverse of ``transpose_in``.""",
)
stream_out = _transposer(
    "stream_out",
    functools.partial(_columns_to_rows, stream=True),
    """:func:`transpose_out` by non-temporal stores: ``dst[d0]`` must start on a 64-byte boundary.""",
)


@intrinsic
def store_fence(typingctx):
    """A full memory fence: the non-temporal stores before it are visible to every thread after it."""

    def codegen(context, builder, signature, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return types.void(), codegen


def vector_suffix(vt):
    """The overload suffix of an LLVM intrinsic on the float vector type ``vt``: ``v16f32``, ``v8f64``, ..."""
    return f"v{vt.count}{'f32' if isinstance(vt.element, ir.FloatType) else 'f64'}"


def vector_call(builder, name, args):
    """``llvm.<name>`` on float vectors (``fma``, ``floor``, ...), lane by lane."""
    vt = args[0].type
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vt, [a.type for a in args]), f"llvm.{name}.{vector_suffix(vt)}")
    return builder.call(fn, args)


def vector_fma(builder, a, b, c):
    """``a * b + c`` lane by lane, rounded once (``llvm.fma`` on a float vector)."""
    return vector_call(builder, "fma", [a, b, c])


def splat(vt, value):
    """The vector constant of type ``vt`` with ``value`` in every lane."""
    return ir.Constant(vt, [ir.Constant(vt.element, value)] * vt.count)


def splat_value(builder, value, vt):
    """The run-time scalar ``value`` in every lane of the vector type ``vt``."""
    v = builder.insert_element(ir.Constant(vt, None), value, ir.Constant(ir.IntType(32), 0))
    return lane_shuffle(builder, v, v, [0] * vt.count)


def lanes_at(builder, ptr, index, vt):
    """A pointer to the vector of type ``vt`` at ``ptr[index]``."""
    return builder.bitcast(builder.gep(ptr, [index]), vt.as_pointer())


def to_f64(builder, v):
    """The float vector ``v`` in float64 lanes."""
    dvt = ir.VectorType(ir.DoubleType(), v.type.count)
    return v if v.type == dvt else builder.fpext(v, dvt)


def _unpack(builder, a, b, hi, width):
    """``vunpck{l,h}ps`` / ``vunpck{l,h}pd`` on vectors of L lanes (16 float32 or 8 float64): within each
    128-bit block, the low (high) halves of ``a`` and ``b`` interleaved ``width`` lanes at a time."""
    L = a.type.count
    n = L // 4  # lanes in a 128-bit block
    o = n // 2 if hi else 0
    return lane_shuffle(builder, a, b, [side + n * q + o + u * width + lane for q in range(4)
                                         for u in range(n // (2 * width)) for side in (0, L) for lane in range(width)])


def _blocks128(builder, a, b, pick):
    """``vshuff32x4``/``vshuff64x2``: 128-bit blocks ``pick[0]``, ``pick[1]`` of ``a`` then ``pick[2]``,
    ``pick[3]`` of ``b``."""
    L = a.type.count
    n = L // 4
    return lane_shuffle(builder, a, b, [L * (i >= 2) + n * p + lane for i, p in enumerate(pick) for lane in range(n)])


def transpose_lanes(builder, vectors):
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


def masked_memory(builder, vt, k):
    """(load, store) of the first ``k`` lanes of a vector of type ``vt`` at a pointer (``llvm.masked.*``)."""
    i1, i32 = ir.IntType(1), ir.IntType(32)
    mt = ir.VectorType(i1, vt.count)
    mask = ir.Constant(mt, [ir.Constant(i1, int(lane < k)) for lane in range(vt.count)])
    suffix = vector_suffix(vt) + ".p0"
    vp = vt.as_pointer()
    load = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vt, [vp, i32, mt, vt]), f"llvm.masked.load.{suffix}")
    store = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [vt, vp, i32, mt]), f"llvm.masked.store.{suffix}")
    align = ir.Constant(i32, 4)
    return (lambda ptr: builder.call(load, [ptr, align, mask, ir.Constant(vt, None)]),
            lambda v, ptr: builder.call(store, [v, ptr, align, mask]))


@intrinsic
def stream_copy(typingctx, src, dst, d0, n):
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
            v = builder.load(lanes_at(builder, ps, i, vt), align=src.dtype.bitwidth // 8)
            store_nontemporal(builder, v, lanes_at(builder, pd, i, vt))
        return context.get_dummy_value()

    return sig, codegen


def lane_sum(builder, v):
    """The sum of a vector's lanes, by halving: lanes j and j + w/2 added, w = 16, 8, ..., 2."""
    i32 = ir.IntType(32)
    w = v.type.count
    while w > 1:
        h = w // 2
        lo = lane_shuffle(builder, v, v, list(range(h)))
        hi = lane_shuffle(builder, v, v, list(range(h, w)))
        v = builder.fadd(lo, hi)
        w = h
    return builder.extract_element(v, ir.Constant(i32, 0))


def rows_of(context, builder, aryty, ary, first, count):
    """Pointers to ``ary[first + r, 0]`` for r < count."""
    i64 = ir.IntType(64)
    return [cgutils.get_item_pointer(context, builder, aryty, ary, [builder.add(first, ir.Constant(i64, r)), ir.Constant(i64, 0)])
            for r in range(count)]


def vector_at(builder, row, j, vt):
    """The vector of type ``vt`` at ``row[j]`` (an element pointer), aligned to one element."""
    align = 4 if isinstance(vt.element, ir.FloatType) else 8
    return builder.load(builder.bitcast(builder.gep(row, [j]), vt.as_pointer()), align=align)


def prefetch(builder, pointers):
    """Prefetch the cache line of each pointer, for reading, into L1 (``llvm.prefetch``, locality 3)."""
    i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32]),
                                        "llvm.prefetch.p0")
    for ptr in pointers:
        builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])


def _kept_as_written(module):
    """The ``llvm.loop`` metadata of a loop LLVM must neither unroll nor vectorize (a fresh, self-referencing
    loop ID, as LLVM requires)."""
    unroll = module.add_metadata([ir.MetaDataString(module, "llvm.loop.unroll.disable")])
    width = module.add_metadata([ir.MetaDataString(module, "llvm.loop.vectorize.width"), ir.Constant(ir.IntType(32), 1)])
    loop_id = ir.values.MDValue(module, [], name=str(len(module.metadata)))
    loop_id.operands = (loop_id, unroll, width)
    return loop_id


@contextmanager
def vector_loop(builder, start, stop):
    """``for i in range(start, stop)`` (int64), yielding ``i``, for a body already written in vectors: LLVM is
    told to keep the loop as written. Unrolled and interleaved again, the update strips' row loops carried
    several times their code (and its compile time) for no speed."""
    i64 = ir.IntType(64)
    cond = builder.append_basic_block("vloop.cond")
    body = builder.append_basic_block("vloop.body")
    end = builder.append_basic_block("vloop.end")
    entry = builder.basic_block
    builder.branch(cond)
    with builder.goto_block(cond):
        index = builder.phi(i64, name="vloop.index")
        builder.cbranch(builder.icmp_signed("<", index, stop), body, end)
    with builder.goto_block(body):
        yield index
        latch = builder.basic_block
        nxt = builder.add(index, ir.Constant(i64, 1))
        builder.branch(cond).set_metadata("llvm.loop", _kept_as_written(builder.module))
    index.add_incoming(start, entry)
    index.add_incoming(nxt, latch)
    builder.position_at_end(end)
