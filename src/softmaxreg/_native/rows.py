"""The softmax family on rows of NumPy float32/float64: softmax, log_softmax and logsumexp.

These are the fast paths behind :mod:`softmaxreg.functional`; its Array API
code stays the reference (and the only path for non-NumPy arrays and for
arrays under ``MIN_SIZE``). Every kernel compiles on its first call (per
dtype and path) and is cached on disk.

Why fused kernels
-----------------
A softmax over rows of length ``K`` needs the row max, the sum of
``exp(x - max)`` and one write of the output. NumPy makes a temporary for
each of ``x - max``, ``exp(.)``, the sum and the division. Here each row is
read from memory once (the later sweeps hit the L1/L2 cache), the output is
written once. Each kernel is compiled serial and runs on a range of rows
per thread (:func:`.threads.over_ranges`; at least ``GRAIN`` elements a
thread, so small inputs stay in the calling thread).

Rows shorter than ``SMALL_K`` fill no vector, so they go by blocks of
``BLOCK`` rows with the lanes running across rows (:mod:`.blocks`): either
transposed into a classes-first scratch (for K <= ``SHUFFLE_K`` one vector
load and K shuffles per group of rows, :func:`.vec.transpose_in`), or, on
AVX-512 and for rows of 2 to 15, read row by row and transposed in
registers (:func:`register_rows`). Loops over a block's rows index slices
from 0 (``flagged[r0:r0 + nb]``, not ``flagged[r0 + r]``): an index Numba
may see as negative gets wraparound code, which LLVM turns into gathers and
byte-by-byte scatters.

Conventions
-----------
* Every kernel works on a 2-D array whose rows are the softmax axis (the
  dispatcher moves the axis last and reshapes).
* ``exp`` and ``log1p`` are those of :mod:`.mathfn`. The log-sum is
  ``logsumexp = m + log1p(rest)``, where ``rest`` is the sum of
  ``exp(x_j - m)`` over the non-maximal terms, accumulated in float64 (also
  for float32 input): accurate when one logit dominates.
* Rows with a non-finite maximum (all ``-inf``, or a ``+inf`` entry) or a
  NaN are flagged, not computed: the kernel sets ``flagged[i] = True`` and
  the dispatcher recomputes those rows with the reference path, so the
  contract on non-finite values is exactly the reference's. ``-inf``
  entries in an otherwise finite row are handled here (probability 0).
"""

from __future__ import annotations

import warnings

import numba
import numpy as np
from numba.core import types
from numba.extending import overload

from .blocks import (BLOCK, SMALL_K, REGISTER_K, _block_softmax, _block_sums, _block_terms,
                     _rows_log_softmax, _rows_softmax, _rows_sums)
from .mathfn import exp, log1p
from .threads import over_ranges
from .vec import (AVX512, FASTMATH, JIT, SHUFFLE_K, f32_as_i32, f64_as_i64, i32_as_f32, i64_as_f64, store_fence,
                  stream_copy, stream_out, transpose_in, transpose_out)

__all__ = ["MIN_SIZE", "SOFTMAX", "LOG_SOFTMAX", "LOGSUMEXP", "applies", "all_finite", "shifted_exp", "softmax_family"]

#: Elements a thread takes at least (:func:`.threads.over_ranges`): starting a thread costs about as much
#: as a kernel spends on a few hundred thousand elements.
GRAIN = 1 << 18


def on_rows(n, K, call):
    """``call(rows)`` for ``rows`` a ``slice`` of ``range(n)``, one per thread, each of at least ``GRAIN``
    elements of rows of ``K`` (:func:`.threads.over_ranges`); the results in order."""
    return over_ranges(n, lambda start, stop: call(slice(start, stop)), GRAIN // max(1, K))


# Numba's SSA pass flags the inlined ``exp`` in the two branches of the chunked row sums (full chunks of
# fixed length, then the tail) with an internal "pedantic check" warning at compile time; the code is
# correct (tested against the reference). Only that message is silenced.
warnings.filterwarnings(
    "ignore", message=r"variable '_exp_overload.*' is not in scope", category=numba.errors.NumbaIRAssumptionWarning
)

@numba.njit(inline="always", **JIT)
def _rowmax32(xi):
    m = np.int32(-2147483648)
    for j in range(xi.shape[0]):
        b = f32_as_i32(xi[j])
        m = max(m, b ^ ((b >> np.int32(31)) & np.int32(0x7FFFFFFF)))
    return i32_as_f32(m ^ ((m >> np.int32(31)) & np.int32(0x7FFFFFFF)))


@numba.njit(inline="always", **JIT)
def _rowmax64(xi):
    m = np.int64(-9223372036854775808)
    for j in range(xi.shape[0]):
        b = f64_as_i64(xi[j])
        m = max(m, b ^ ((b >> 63) & np.int64(0x7FFFFFFFFFFFFFFF)))
    return i64_as_f64(m ^ ((m >> 63) & np.int64(0x7FFFFFFFFFFFFFFF)))


def _rowmax(xi):
    """Max of a row, vectorised through the integer order of IEEE floats.

    For non-NaN floats, mapping the bits ``b`` to ``b ^ ((b >> 31) & 0x7f..f)``
    is monotone, so an integer max (which vectorises; a float max with NaN
    semantics does not) gives the float max. A NaN with the sign bit clear maps
    above +inf (the max is then NaN); one with the sign bit set maps below -inf
    and is ignored here, but then poisons the row's sum, which flags the row.
    """
    raise NotImplementedError("only callable from Numba-compiled code")


@overload(_rowmax, inline="always", fastmath=FASTMATH)
def _rowmax_overload(xi):
    if xi.dtype == types.float32:
        return lambda xi: _rowmax32(xi)
    if xi.dtype == types.float64:
        return lambda xi: _rowmax64(xi)
    return None


_CHUNK = 128


@numba.njit(inline="always", **JIT)
def _rest(xi, m, inv_t, out, store):
    """Sum of exp((x_j - m) * inv_t) over the non-maximal terms, in float64.

    Terms with ``x_j == m`` (exactly 1) are counted apart, so the returned
    ``rest`` (the sum of the others, plus ``ties - 1``) keeps full relative
    accuracy when it is tiny; ``1 + rest`` is the softmax denominator. With
    ``store`` (a compile-time constant at every call) the terms are written to
    ``out`` as well.

    The terms are added in ``x``'s dtype over chunks of _CHUNK (a fixed trip
    count, which LLVM vectorises fully; float64 lanes would halve the width
    of a float32 loop) and the chunks' sums in float64: at
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
                e = exp(t)
                if store:
                    out[j0 + jj] = e
                part += e if t < 0 else (zero if t == 0 else t)
                tp += one if t == 0 else zero
        else:
            for j in range(j0, K):
                t = (xi[j] - m) * inv_t
                e = exp(t)
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


@numba.njit(inline="always", **JIT)
def _rest_sum(xi, m, inv_t):
    """:func:`_rest` without storing the terms, for the kernels that only need the sum."""
    return _rest(xi, m, inv_t, xi, False)


SOFTMAX, LOG_SOFTMAX, LOGSUMEXP = 0, 1, 2


@numba.njit(**JIT)
def family_rows(x, inv_t, mode, out, flagged):
    """Long rows, one at a time: ``out[i]`` = softmax(x[i] * inv_t) (``mode`` SOFTMAX), log_softmax
    = (x - m) inv_t - log1p(rest) (LOG_SOFTMAX), or ``out[i, 0]`` = logsumexp(x[i]) = m + log1p(rest)
    (LOGSUMEXP, ``inv_t`` 1, ``out`` of shape (n, 1)); flags rows with a non-finite max or a NaN.

    One kernel for the three: most of a kernel's compilation is shared code.
    """
    inv_t = x.dtype.type(inv_t)
    for i in range(x.shape[0]):
        xi = x[i]
        oi = out[i]
        m = _rowmax(xi)
        if not np.isfinite(m):
            flagged[i] = True
            if mode == LOGSUMEXP:
                oi[0] = m
            continue
        if mode == SOFTMAX:
            rest = _rest(xi, m, inv_t, oi, True)
            flagged[i] = rest != rest
            scale = x.dtype.type(1.0 / (1.0 + rest))
            for j in range(oi.shape[0]):
                oi[j] *= scale
            continue
        rest = _rest_sum(xi, m, inv_t)
        flagged[i] = rest != rest
        if mode == LOGSUMEXP:
            oi[0] = m + x.dtype.type(np.log1p(rest))
            continue
        lse = x.dtype.type(np.log1p(rest))
        for j in range(oi.shape[0]):
            oi[j] = (xi[j] - m) * inv_t - lse


@numba.njit(**JIT)
def _shifted_exp_rows(z, bias, m, rest):
    """In place ``z[i] = exp(z[i] + bias - m[i])`` with ``m[i]`` the row's max, and its ``rest``.

    An empty ``bias`` adds nothing. A row whose max is not finite, or that holds
    a NaN, is set to 0 with ``rest`` 0 and ``m`` -inf (every entry -inf) or NaN.
    """
    zero = z.dtype.type(0.0)
    one = z.dtype.type(1.0)
    add = bias.shape[0] > 0
    for i in range(z.shape[0]):
        zi = z[i]
        if add:
            for j in range(zi.shape[0]):
                zi[j] += bias[j]
        mi = _rowmax(zi)
        r = np.nan
        if np.isfinite(mi):
            r = _rest(zi, mi, one, zi, True)
        if r == r:
            m[i] = mi
            rest[i] = r
            continue
        masked = mi == -np.inf
        for j in range(zi.shape[0]):
            masked = masked and zi[j] == zi[j]
            zi[j] = zero
        m[i] = -np.inf if masked else np.nan
        rest[i] = 0.0


def shifted_exp(z, bias=None):
    """``z <- exp(z + bias - m)`` in place, row by row, on the cores; returns ``(m, rest)``.

    ``m`` is each row's maximum of ``z + bias`` and ``rest`` the sum of the
    row's non-maximal terms (float64, so ``m + log1p(rest)`` is its
    logsumexp). A row of ``-inf`` only gets ``m = -inf``; a row with a ``+inf``
    or NaN gets ``m = NaN``; both are set to 0 with ``rest = 0``, for the
    caller to treat as :func:`family_rows` flags them. ``z`` is a
    C-contiguous float32/float64 array of rows; ``bias``, if given, one row
    of ``z``'s dtype.

    Examples
    --------
    >>> import numpy as np
    >>> z = np.vstack([np.log([1.0, 4.0, 2.0]), np.full(3, -np.inf)])
    >>> m, rest = shifted_exp(z)
    >>> z[0], m[0] == np.log(4.0), rest[0], m[1]
    (array([0.25, 1.  , 0.5 ]), np.True_, np.float64(0.75), np.float64(-inf))
    """
    b = np.empty(0, z.dtype) if bias is None else bias
    m = np.empty(z.shape[0], z.dtype)
    rest = np.empty(z.shape[0], np.float64)
    on_rows(z.shape[0], z.shape[1], lambda r: _shifted_exp_rows(z[r], b, m[r], rest[r]))
    return m, rest


# ---------------------------------------------------------------------------
# Short rows (K below SMALL_K): a row is too short for the vector loops above
# (a few lanes and a long remainder), so blocks of BLOCK rows are transposed
# into a flat (K, BLOCK) scratch and every step runs across rows instead.
# Each step is a loop of its own: with the exp, its store and the row sums'
# read-modify-write in one loop LLVM vectorises poorly.


@numba.njit(inline="always", **JIT)
def _load_block(xf, r0, nb, K, T):
    """``T[j * BLOCK + r] = x[r0 + r, j]`` for r < nb: a block of rows of ``xf`` (flat, C order), classes first.

    Whole groups of L rows go through :func:`transpose_in` (K <= SHUFFLE_K),
    the rest element by element.
    """
    L = 64 // xf.itemsize
    g1 = nb - nb % L if K <= SHUFFLE_K else 0
    for g in range(0, g1, L):
        transpose_in(xf, (r0 + g) * K, T, g, BLOCK, K)
    blk = xf[r0 * K : (r0 + nb) * K]
    for j in range(K):
        Tj = T[j * BLOCK : j * BLOCK + nb]
        for r in range(g1, nb):
            Tj[r] = blk[r * K + j]


@numba.njit(inline="always", **JIT)
def _store_block(T, nb, K, ob, stream=False):
    """``ob[r * K + j] = T[j * BLOCK + r]`` for r < nb: the inverse of :func:`_load_block` (``ob``: the block's rows, flat).

    With ``stream`` whole groups of rows are written by non-temporal stores
    (:func:`stream_out`); ``ob`` must then start on a 64-byte boundary (a
    group's L K elements are K whole cache lines, so every group does too).
    """
    L = 64 // ob.itemsize
    g1 = nb - nb % L if K <= SHUFFLE_K else 0
    for g in range(0, g1, L):
        if stream:
            stream_out(T, g, ob, g * K, BLOCK, K)
        else:
            transpose_out(T, g, ob, g * K, BLOCK, K)
    for j in range(K):
        Tj = T[j * BLOCK : j * BLOCK + nb]
        for r in range(g1, nb):
            ob[r * K + j] = Tj[r]


@numba.njit(inline="always", **JIT)
def copy_into(dst, src):
    """``dst[:n] = src``, ``n = len(src)``, element by element: a slice assignment would also compile
    NumPy's shape check and the formatting of its message, seconds of compilation for nothing."""
    for i in range(src.shape[0]):
        dst[i] = src[i]


@numba.njit(inline="always", **JIT)
def _block_rows(xf, r0, nb, K, pad):
    """(rows, first row) of block ``r0 .. r0 + nb`` as a whole block of BLOCK rows.

    A whole block is ``xf`` itself; the last, partial one is copied into
    ``pad`` (K * BLOCK elements) with zero rows after it. Every block then
    runs with the constant trip count BLOCK (the padded rows are computed and
    dropped), which lets LLVM drop the loops' remainders.
    """
    if nb == BLOCK:
        return xf, r0
    pad[:] = 0.0
    copy_into(pad, xf[r0 * K : (r0 + nb) * K])
    return pad, 0


@numba.njit(inline="always", **JIT)
def _block_labels(labels, r0, nb, pad):
    """The labels of block ``r0 .. r0 + nb`` as BLOCK int64: ``labels`` itself
    (a slice) for a whole block; for the last, partial one a copy in ``pad``
    with -1 (no class) after it, as :func:`_block_rows` pads the rows."""
    if nb == BLOCK:
        return labels[r0 : r0 + BLOCK]
    copy_into(pad, labels[r0 : r0 + nb])
    pad[nb:] = -1
    return pad


@numba.njit(inline="always", **JIT)
def _small_block(xf, r0, K, inv_t, T, U, m, rest):
    """Max and ``rest`` of the BLOCK rows from ``r0`` of the flat C-ordered rows ``xf``.

    Afterwards ``T[j * BLOCK + r]`` holds ``x[r0 + r, j]``, ``U[...]`` the
    term exp(t), t = (x - m[r]) inv_t (exactly 1 at a maximum), ``m`` the
    rows' maxima and ``rest`` (float64) the sum of the non-maximal terms plus
    ``ties - 1``, as :func:`_rest` makes it for long rows: the terms are added
    in ``x``'s dtype over chunks of SMALL_CHUNK classes and the chunks' sums
    in float64 (:func:`_block_terms`). A NaN t poisons the sum, which flags
    the row.
    """
    _load_block(xf, r0, BLOCK, K, T)
    _block_terms(T, U, m, rest, K, inv_t)


def block_count(n, lead):
    """How many blocks cover n rows: ``lead`` rows first (0 <= lead < BLOCK), then blocks of BLOCK."""
    return (lead > 0) + (n - lead + BLOCK - 1) // BLOCK


def block_span(b, lead, n):
    """(first row, rows) of block ``b`` of :func:`block_count`'s blocks: the ``lead`` rows, then BLOCK at a
    time from row ``lead`` (the last block partial). With ``lead`` chosen so that row ``lead`` of the output
    starts on a 64-byte boundary, every whole block does, and can be written by non-temporal stores."""
    if lead > 0:
        if b == 0:
            return 0, lead
        r0 = lead + (b - 1) * BLOCK
    else:
        r0 = b * BLOCK
    return r0, min(BLOCK, n - r0)


# The same two in the kernels, and in :func:`on_blocks`, which hands whole blocks to the threads.
_block_count = numba.njit(inline="always", **JIT)(block_count)
_block_span = numba.njit(inline="always", **JIT)(block_span)


@numba.njit(inline="always", **JIT)
def _register_target(of, obuf, r0, K, whole, stream):
    """(array, offset) a register kernel writes block ``r0`` into: ``out`` itself for a whole block not
    streamed, else the scratch ``obuf`` (a partial block, or one to stream out: :func:`_flush_block`)."""
    if whole and not stream:
        return of, r0 * K
    return obuf, 0


@numba.njit(inline="always", **JIT)
def _flush_block(obuf, of, r0, nb, K, whole, stream):
    """Move a block a register kernel wrote into ``obuf`` (:func:`_register_target`) out to ``of``."""
    if not whole:
        copy_into(of[r0 * K : (r0 + nb) * K], obuf[: nb * K])
    elif stream:
        stream_copy(obuf, of, r0 * K, BLOCK * K)


@numba.njit(**JIT)
def _rows_small(x, inv_t, mode, out, flagged, lead, stream, registers):
    """:func:`rows_small` in the calling thread."""
    n, K = x.shape
    xf = x.reshape(-1)
    of = out.reshape(-1)
    inv_t = x.dtype.type(inv_t)
    T = np.empty(K * BLOCK, dtype=x.dtype)
    U = np.empty(K * BLOCK, dtype=x.dtype)
    m = np.empty(BLOCK, dtype=x.dtype)
    s = np.empty(BLOCK, dtype=x.dtype)
    rest = np.empty(BLOCK, dtype=np.float64)
    pad = np.empty(K * BLOCK, dtype=x.dtype)
    obuf = np.empty(K * BLOCK, dtype=x.dtype)
    for b in range(_block_count(n, lead)):
        r0, nb = _block_span(b, lead, n)
        rows, rb = _block_rows(xf, r0, nb, K, pad)
        whole = nb == BLOCK
        if registers:
            ob, o0 = _register_target(of, obuf, r0, K, whole, stream)
            if mode == SOFTMAX:
                _rows_softmax(rows, rb * K, ob, o0, m, rest, K, inv_t)
            elif mode == LOG_SOFTMAX:
                _rows_log_softmax(rows, rb * K, ob, o0, m, rest, K, inv_t)
            else:
                _rows_sums(rows, rb * K, m, rest, K, inv_t)
        else:
            _load_block(rows, rb, BLOCK, K, T)
            if mode == SOFTMAX:  # the terms come out already scaled
                _block_softmax(T, U, m, rest, K, inv_t)
            else:  # the log-sum needs no terms
                _block_sums(T, U, m, rest, K, inv_t)
        # Flags written through a slice: ``flagged[r0 + r]`` may be a
        # negative index to Numba, whose wraparound LLVM turns into a
        # byte-by-byte scatter.
        sp = flagged[r0 : r0 + nb]
        for r in range(nb):
            sp[r] = not (np.isfinite(m[r]) & (rest[r] == rest[r]))
        if mode == LOGSUMEXP:
            ol = of[r0 : r0 + nb]
            for r in range(nb):
                ol[r] = m[r] + x.dtype.type(log1p(rest[r]))
            continue
        if registers:
            _flush_block(obuf, of, r0, nb, K, whole, stream)
            continue
        if mode == LOG_SOFTMAX:
            for r in range(BLOCK):
                s[r] = x.dtype.type(log1p(rest[r]))
            for j in range(K):
                Tj = T[j * BLOCK : (j + 1) * BLOCK]
                for r in range(BLOCK):
                    Tj[r] = (Tj[r] - m[r]) * inv_t - s[r]
        # A partial block (the lead, the last) is written to ``pad`` and copied out.
        sb = of[r0 * K : (r0 + BLOCK) * K] if whole else pad
        _store_block(U if mode == SOFTMAX else T, BLOCK, K, sb, stream and whole)
        if not whole:
            copy_into(of[r0 * K : (r0 + nb) * K], pad[: nb * K])
    if stream:
        store_fence()


def on_blocks(n, K, lead, call):
    """``call(rows, lead)`` on ranges of whole blocks of :func:`block_span` (``rows`` a ``slice``, ``lead``
    that of its first block: ``lead`` for the first range, 0 for the others, which start on a block), one
    per thread (:func:`on_rows`'s grain); the results in order."""

    def work(b0, b1):
        return call(slice(block_span(b0, lead, n)[0], min(n, block_span(b1, lead, n)[0])), lead if b0 == 0 else 0)

    return over_ranges(block_count(n, lead), work, GRAIN // (BLOCK * max(1, K)))


def rows_small(x, inv_t, mode, out, flagged, lead, stream, registers):
    """softmax / log_softmax / logsumexp of short C-contiguous rows (see SMALL_K).

    ``out`` is C-contiguous, of shape (n, K), or (n, 1) for logsumexp. Blocks
    of rows start after ``lead`` rows (:func:`block_span`); with ``stream``
    the whole blocks are written by non-temporal stores (softmax and
    log_softmax, K <= SHUFFLE_K), for which row ``lead`` of ``out`` must start
    on a 64-byte boundary (:func:`stream_plan`). With ``registers``
    (:func:`register_rows`) each block runs in the register kernels
    (:func:`_rows_softmax`), else through the classes-first scratch; the
    results are the same bits, but for float64 log_softmax, whose last
    rounding may differ. Whole blocks go to the threads (:func:`on_blocks`).
    """
    on_blocks(x.shape[0], x.shape[1], lead,
              lambda r, h: _rows_small(x[r], inv_t, mode, out[r], flagged[r], h, stream, registers))

# ---------------------------------------------------------------------------
# NumPy glue: what the functional core calls.

#: Arrays smaller than this take the reference path: there the kernels would
#: save microseconds and cost a compilation (or a cache load) per signature.
MIN_SIZE = 1 << 16

_FLOATS = (np.float16, np.float32, np.float64)


@numba.njit(inline="always", **JIT)
def _times_zero_sum(seg):
    """The sum of x * 0 over ``seg``: (+-)0 if every x is finite, NaN if one is inf or NaN.

    The fast-math flags here keep NaN and inf semantics, so ``x * 0`` is not
    folded to 0. A loop over a view of its own: indexing the flat array by
    offsets inside the chunk loop keeps LLVM from vectorising it.
    """
    zero = seg.dtype.type(0.0)
    acc = zero
    for i in range(seg.shape[0]):
        acc += seg[i] * zero
    return acc


@numba.njit(**JIT)
def _finite_chunks(xf, out):
    """out[c] = :func:`_times_zero_sum` of chunk c of the flat ``xf``: one read, no temporary."""
    n = xf.shape[0]
    C = out.shape[0]
    for c in range(C):
        out[c] = _times_zero_sum(xf[c * n // C:(c + 1) * n // C])


def all_finite(x) -> bool:
    """Whether every entry of ``x`` (a float NumPy array) is finite: one threaded read of ``x``.

    ``np.isfinite(x).all()`` writes a boolean temporary the size of ``x`` and
    runs on one core.

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
    C = out.shape[0]
    over_ranges(C, lambda c0, c1: _finite_chunks(xf[c0 * xf.size // C : c1 * xf.size // C], out[c0:c1]),
                max(1, GRAIN * C // max(1, xf.size)))
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
#: (short rows, :func:`stream_plan`): larger than a usual last-level cache,
#: so its lines would leave the cache before
#: anyone read them, and a plain store reads each line before writing it.
STREAM_BYTES = 1 << 25


def stream_plan(res):
    """(lead, stream) for a short-row kernel writing the C-contiguous rows ``res``.

    ``stream``: whether to write whole blocks by non-temporal stores: for
    float32 rows of at most ``SHUFFLE_K`` into at least ``STREAM_BYTES``.
    There the kernel is close to bound by memory traffic, and skipping the
    read of each output line saves a pass over it. float64 rows are bound by
    the exponential's compute, so they are not streamed. ``lead``: the rows before the first row
    that starts on a 64-byte boundary (:func:`block_span`); if none does,
    nothing is streamed.

    Examples
    --------
    >>> import numpy as np
    >>> buf = np.empty(1 << 24, dtype=np.float32)  # 64 MiB, never touched
    >>> res = buf[2 : 2 + 10 * 900_000].reshape(-1, 10)  # rows of 40 bytes, 8 bytes past buf's start
    >>> lead, stream = stream_plan(res)
    >>> stream, (res.ctypes.data + lead * 40) % 64
    (True, 0)
    >>> stream_plan(res[:1000]), stream_plan(buf.view(np.float64)[:8_000_000].reshape(-1, 8))
    ((0, False), (0, False))
    """
    n, K = res.shape
    if res.dtype != np.float32 or res.nbytes < STREAM_BYTES or K > SHUFFLE_K:
        return 0, False
    row = K * res.itemsize
    for lead in range(min(n, BLOCK)):
        if (res.ctypes.data + lead * row) % 64 == 0:
            return lead, True
    return 0, False


def register_rows(rows, mode=SOFTMAX):
    """Whether the short-row kernels run ``rows`` (n, K) in registers (:func:`_rows_softmax`) for ``mode``
    (``SOFTMAX``, ``LOG_SOFTMAX``, ``LOGSUMEXP``; the gradient counts as ``SOFTMAX``): rows of K in
    ``REGISTER_K``, on a machine with AVX-512, except float64 logsumexp.

    In registers a block skips the scratch's two transposes. float64
    logsumexp, which only reads, stays on the scratch path: its rows are two
    loads each, most across a cache line, where the scratch path loads a
    group's lines whole.

    Examples
    --------
    >>> import numpy as np
    >>> register_rows(np.zeros((4, 1), np.float32)), register_rows(np.zeros((4, 16), np.float32))
    (False, False)
    >>> register_rows(np.zeros((4, 10)), LOGSUMEXP)
    False
    >>> register_rows(np.zeros((4, 10))) == register_rows(np.zeros((4, 2), np.float32), LOGSUMEXP) == AVX512
    True
    """
    if mode == LOGSUMEXP and rows.dtype == np.float64:
        return False
    return bool(AVX512 and REGISTER_K[0] <= rows.shape[1] <= REGISTER_K[1])


def softmax_family(x, *, axis, temperature, mode, reference, out=None):
    """softmax (mode 0), log_softmax (1) or logsumexp (2) of ``x`` along ``axis``.

    ``reference(rows)`` computes the same function on a 2-D array of rows
    (class axis last) and is called on the rows the kernels flag as flagged.
    Returns an array in ``x``'s dtype: ``x``'s shape, or without ``axis`` for
    logsumexp. Given ``out`` (checked by the caller: ``x``'s shape and result
    dtype), the kernels write into its memory when its layout allows
    (:func:`_result_rows`) and the result is then a view of it; otherwise the
    caller copies the result in.
    """
    rows, shape = _rows(x, axis)
    n, K = rows.shape
    flagged = np.empty(n, dtype=np.bool_)
    if mode == LOGSUMEXP:
        res = np.empty((n, 1), dtype=rows.dtype)
        if K < SMALL_K:
            rows_small(rows, 1.0, LOGSUMEXP, res, flagged, 0, False, register_rows(rows, LOGSUMEXP))
        else:
            on_rows(n, K, lambda r: family_rows(rows[r], 1.0, LOGSUMEXP, res[r], flagged[r]))
    else:
        res = _result_rows(rows, x, axis, out)
        if K < SMALL_K:
            rows_small(rows, 1.0 / temperature, mode, res, flagged, *stream_plan(res), register_rows(rows, mode))
        else:
            on_rows(n, K, lambda r: family_rows(rows[r], 1.0 / temperature, mode, res[r], flagged[r]))
    if flagged.any():
        res[flagged] = np.reshape(reference(rows[flagged]), (-1, res.shape[1]))
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
