"""Numba kernels for the row-wise softmax family on NumPy float32/float64.

These are the fast paths behind :mod:`softmaxreg.functional`; the Array API
code in ``_softmax.py`` and ``_cross_entropy.py`` stays the reference (and the
only path for non-NumPy arrays). This module imports Numba at the top, so it is
itself imported lazily, on the first call that can use it (see
:func:`load`); every kernel compiles on its first call and is cached on disk
(``cache=True``). Importing :mod:`softmaxreg` never imports Numba.

Why fused kernels
-----------------
A softmax over rows of length ``K`` needs the row max, the sum of
``exp(x - max)`` and one write of the output. NumPy makes a temporary for each
of ``x - max``, ``exp(.)``, the sum and the division: five to seven passes over
memory. Here each row is read from memory once (the second and third sweeps hit
the L1/L2 cache, since a row is at most a few hundred KiB), the output is
written once, and the rows are split over the cores with ``prange``.

``exp`` is our own (:func:`_exp32`, :func:`_exp64`): Cody-Waite range reduction
``t = n ln2 + r`` with ``|r| <= ln2 / 2``, a polynomial for ``exp(r)`` and the
factor ``2**n`` built from its bits. Unlike a call into libm, it vectorises
(AVX2/AVX-512), which is what makes the kernels memory-bound rather than
exp-bound. It is accurate to about 1 ulp and is only ever called on
``t <= 0`` (max-shifted logits); ``2**n`` is applied as two factors so that
results in the subnormal range underflow gradually, as ``np.exp`` does.

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

import numpy as np
import numba
from llvmlite import ir
from numba import prange
from numba.core import types
from numba.extending import intrinsic, overload

__all__ = [
    "softmax_rows",
    "log_softmax_rows",
    "logsumexp_rows",
    "cross_entropy_labels_rows",
    "cross_entropy_grad_labels_rows",
]

# Reassociation lets LLVM vectorise the sums and the max; we keep IEEE
# semantics for inf and NaN (no "nnan"/"ninf"), which the special-row logic
# relies on.
_FASTMATH = {"reassoc", "contract", "arcp", "nsz"}
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


@numba.njit(inline="always", **_jit)
def _exp32(t):
    """exp(t) for float32 t <= 0 (NaN propagates; t < -110 gives 0)."""
    t = np.float32(-110.0) if t < np.float32(-110.0) else t
    nf = np.floor(t * np.float32(1.44269504088896341) + np.float32(0.5))
    # Cody-Waite: ln2 = C1 + C2 with C1 exact in few bits, so nf * C1 is exact.
    r = t - nf * np.float32(0.693359375)
    r = r + nf * np.float32(2.12194440e-4)
    p = np.float32(1.9875691500e-4)
    p = p * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    p = p * (r * r) + r + np.float32(1.0)
    n = np.int32(nf)
    n1 = n >> 1
    n2 = n - n1
    s1 = _i32_as_f32((n1 + np.int32(127)) << np.int32(23))
    s2 = _i32_as_f32((n2 + np.int32(127)) << np.int32(23))
    return (p * s1) * s2


@numba.njit(inline="always", **_jit)
def _exp64(t):
    """exp(t) for float64 t <= 0 (NaN propagates; t < -760 gives 0)."""
    t = -760.0 if t < -760.0 else t
    nf = np.floor(t * 1.4426950408889634 + 0.5)
    r = t - nf * 6.93145751953125e-1
    r = r - nf * 1.42860682030941723212e-6
    # Taylor series to r**13 / 13!: the remainder is < 1e-18 on |r| <= ln2/2.
    p = 1.6059043836821613e-10
    p = p * r + 2.0876756987868100e-09
    p = p * r + 2.5052108385441720e-08
    p = p * r + 2.7557319223985888e-07
    p = p * r + 2.7557319223985893e-06
    p = p * r + 2.4801587301587302e-05
    p = p * r + 1.9841269841269841e-04
    p = p * r + 1.3888888888888889e-03
    p = p * r + 8.3333333333333332e-03
    p = p * r + 4.1666666666666664e-02
    p = p * r + 1.6666666666666666e-01
    p = p * r + 0.5
    p = p * (r * r) + r + 1.0
    n = np.int64(nf)
    n1 = n >> 1
    n2 = n - n1
    s1 = _i64_as_f64((n1 + 1023) << 52)
    s2 = _i64_as_f64((n2 + 1023) << 52)
    return (p * s1) * s2


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
def _rowmax(xi):
    """Max of a row, vectorised through the integer order of IEEE floats.

    For non-NaN floats, mapping the bits ``b`` to ``b ^ ((b >> 31) & 0x7f..f)``
    is monotone, so an integer max (which vectorises; a float max with NaN
    semantics does not) gives the float max. A NaN with the sign bit clear maps
    above +inf (the max is then NaN); one with the sign bit set maps below -inf
    and is ignored here, but then poisons the row's sum, which flags the row.
    """
    if xi.dtype == np.float32:
        m = np.int32(-2147483648)
        for j in range(xi.shape[0]):
            b = _f32_as_i32(xi[j])
            m = max(m, b ^ ((b >> np.int32(31)) & np.int32(0x7FFFFFFF)))
        return _i32_as_f32(m ^ ((m >> np.int32(31)) & np.int32(0x7FFFFFFF)))
    else:
        m = np.int64(-9223372036854775808)
        for j in range(xi.shape[0]):
            b = _f64_as_i64(xi[j])
            m = max(m, b ^ ((b >> 63) & np.int64(0x7FFFFFFFFFFFFFFF)))
        return _i64_as_f64(m ^ ((m >> 63) & np.int64(0x7FFFFFFFFFFFFFFF)))


@numba.njit(inline="always", **_jit)
def _rest(xi, m, inv_t, out, store):
    """Sum of exp((x_j - m) * inv_t) over the non-maximal terms, in float64.

    Terms with ``x_j == m`` (exactly 1) are counted apart, so the returned
    ``rest`` (the sum of the others, plus ``ties - 1``) keeps full relative
    accuracy when it is tiny; ``1 + rest`` is the softmax denominator. With
    ``store`` the terms are written to ``out`` as well.
    """
    rest = 0.0
    ties = 0
    for j in range(xi.shape[0]):
        t = (xi[j] - m) * inv_t
        e = _exp(t)
        if store:
            out[j] = e
        rest += np.float64(e) if t < 0 else 0.0
        ties += t == 0
    return rest + (ties - 1)


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
        rest = _rest(xi, m, inv_t, oi, False)
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
        rest = _rest(xi, m, one, xi, False)
        special[i] = rest != rest
        out[i] = m + x.dtype.type(np.log1p(rest))
