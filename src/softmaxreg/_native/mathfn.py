"""The one exponential and the one logarithm of the native kernels, as scalar Numba functions and as IR on vectors.

``exp`` (:func:`exp32`, :func:`exp64`, :func:`vector_exp`): Cody-Waite range
reduction ``t = n ln2 + r`` with ``|r| <= ln2 / 2`` (through explicit
``fma`` calls, which fast-math reassociation cannot merge back into one
inexact product), a polynomial for ``exp(r)`` and the factor ``2**n``
applied by ``ldexp`` (``vscalefps``/``pd`` on AVX-512, two multiplications by
powers of two elsewhere), which rounds once, so results in the subnormal
range underflow gradually, as ``np.exp`` does.
Unlike a call into libm it vectorises. The scalar and the vector forms run
the same steps with the same constants, so they give the same bits.

``log1p`` (:func:`log1p`, :func:`vector_log1p`): fdlibm's log on
``1 + r``, with the rounding error of ``1 + r`` added back; the kernels'
log-sum is ``log1p(rest)``, accurate when one logit dominates.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import overload

from .vec import (AVX512, FASTMATH, JIT, f64_as_i64, fma, i64_as_f64, ldexp, scale_by_power_of_two, splat,
                  vector_call, vector_fma)

__all__ = ["exp", "exp32", "exp64", "vector_exp", "log1p", "vector_log1p"]


# exp's constants, shared by the scalar form (Numba, below) and the vector
# form (IR, :func:`vector_exp`): (lowest t, log2(e), ln 2 = C1 + C2 with C1
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


@numba.njit(inline="always", **JIT)
def exp32(t):
    """exp(t) for float32 t <= 0 (NaN propagates; t < -110 gives 0)."""
    lo, log2e, c1, c2 = _EXP32_REDUCE
    P = _EXP32_POLY
    t = np.float32(lo) if t < np.float32(lo) else t
    nf = np.floor(t * np.float32(log2e) + np.float32(0.5))
    # Cody-Waite: ln2 = C1 + C2 with C1 exact in few bits, so nf * C1 is exact.
    r = fma(-nf, np.float32(c1), t)
    r = fma(-nf, np.float32(c2), r)
    p = np.float32(P[0])
    for c in P[1:]:
        p = fma(p, r, np.float32(c))
    return ldexp(p, np.int32(nf))


@numba.njit(inline="always", **JIT)
def exp64(t):
    """exp(t) for float64 t <= 0 (NaN propagates; t < -760 gives 0)."""
    lo, log2e, c1, c2 = _EXP64_REDUCE
    P = _EXP64_POLY
    t = lo if t < lo else t
    nf = np.floor(t * log2e + 0.5)
    r = fma(-nf, c1, t)
    r = fma(-nf, c2, r)
    p = P[0]
    for c in P[1:]:
        p = fma(p, r, c)
    return ldexp(p, np.int32(nf))


def vector_exp(builder, t):
    """:func:`exp32` / :func:`exp64` on a vector of float32 / float64 lanes: the same steps and constants."""
    vt = t.type
    single = isinstance(vt.element, ir.FloatType)
    lo, log2e, c1, c2 = _EXP32_REDUCE if single else _EXP64_REDUCE
    P = _EXP32_POLY if single else _EXP64_POLY
    c = lambda v: splat(vt, v)  # noqa: E731
    t = builder.select(builder.fcmp_ordered("<", t, c(lo)), c(lo), t)
    nf = vector_call(builder, "floor", [vector_fma(builder, t, c(log2e), c(0.5))])
    minus_nf = builder.fneg(nf)
    r = vector_fma(builder, minus_nf, c(c1), t)
    r = vector_fma(builder, minus_nf, c(c2), r)
    p = c(P[0])
    for coef in P[1:]:
        p = vector_fma(builder, p, r, c(coef))
    if AVX512 and vt.count * (32 if single else 64) == 512:
        # vscalefps/pd takes the exponent as a float: no round trip through integers.
        name = f"llvm.x86.avx512.mask.scalef.{'ps' if single else 'pd'}.512"
        mask = ir.IntType(vt.count)
        scalef = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vt, [vt, vt, vt, mask, ir.IntType(32)]), name)
        return builder.call(scalef, [p, nf, ir.Constant(vt, None), ir.Constant(mask, -1), ir.Constant(ir.IntType(32), 4)])
    return scale_by_power_of_two(builder, p, builder.fptosi(nf, ir.VectorType(ir.IntType(32), vt.count)))


def exp(t):
    """exp(t) for t <= 0 in t's precision (typed by the overload below)."""
    raise NotImplementedError("only callable from Numba-compiled code")


@overload(exp, inline="always", fastmath=FASTMATH)
def _exp_overload(t):
    if t == types.float32:
        return lambda t: exp32(t)
    if t == types.float64:
        return lambda t: exp64(t)
    return None


# fdlibm's log: ln 2 split in two, and the coefficients of its polynomial in s**2.
_LN2_HI = 6.93147180369123816490e-01
_LN2_LO = 1.90821492927058770002e-10
_LG1, _LG2, _LG3, _LG4 = 6.666666666666735130e-01, 3.999999999940941908e-01, 2.857142874366239149e-01, 2.222219843214978396e-01
_LG5, _LG6, _LG7 = 1.818357216161805012e-01, 1.531383769920937332e-01, 1.479819860511658591e-01


@numba.njit(inline="always", **JIT)
def log1p(r):
    """log1p(r) for float64 r >= 0 (NaN propagates), in a form that vectorises.

    libm's log1p is a call per row, the largest cost of the short-row kernels
    that need it. fdlibm's log: 1 + r = 2**k z with z in [sqrt(2)/2, sqrt(2)),
    f = z - 1 and log z = f - f**2/2 + s (f**2/2 + R(s**2)), s = f / (2 + f).
    For k = 0 f is r itself, exactly (1 + r rounded would lose a tiny r's
    digits: the dominant-class case); for k >= 1 (r > 0.41) the rounding
    error of 1 + r is added back, as fdlibm's log1p does. About 1 ulp.
    """
    u = 1.0 + r
    ix = f64_as_i64(u)
    tmp = ix - np.int64(0x3FE6A09E667F3BCD)
    k = tmp >> 52
    z = i64_as_f64(ix - (tmp & np.int64(-4503599627370496)))  # exponent moved to [sqrt(2)/2, sqrt(2))
    f = r if k == 0 else z - 1.0
    # For k >= 1, what rounding 1 + r lost, relative: (r - (u - 1)) / u, with
    # u - 1 (exact) through fma so that reassociation cannot fold it to 0.
    c = 0.0 if k == 0 else (r - fma(u, 1.0, -1.0)) / u
    s = f / (2.0 + f)
    z2 = s * s
    w = z2 * z2
    t1 = w * (_LG2 + w * (_LG4 + w * _LG6))
    t2 = z2 * (_LG1 + w * (_LG3 + w * (_LG5 + w * _LG7)))
    hfsq = 0.5 * f * f
    dk = np.float64(k)
    y = dk * _LN2_HI - ((hfsq - (s * (hfsq + t2 + t1) + (dk * _LN2_LO + c))) - f)
    return y if r == r else r


def vector_log1p(builder, r):
    """:func:`log1p` on a vector of float64 lanes, in IR: the same steps, constants and fast-math flags.
    Rounded to float32 its results are :func:`log1p`'s bits (checked on 65536 values over both branches,
    0, NaN and inf); float64 log_softmax through it may differ from the scratch path in the last rounding."""
    vt = r.type
    it = ir.VectorType(ir.IntType(64), vt.count)
    fm = tuple(sorted(FASTMATH))
    c = lambda v: splat(vt, v)  # noqa: E731
    add = lambda a, b: builder.fadd(a, b, flags=fm)  # noqa: E731
    sub = lambda a, b: builder.fsub(a, b, flags=fm)  # noqa: E731
    mul = lambda a, b: builder.fmul(a, b, flags=fm)  # noqa: E731
    div = lambda a, b: builder.fdiv(a, b, flags=fm)  # noqa: E731
    u = add(c(1.0), r)
    ix = builder.bitcast(u, it)
    tmp = builder.sub(ix, splat(it, 0x3FE6A09E667F3BCD))
    k = builder.ashr(tmp, splat(it, 52))
    z = builder.bitcast(builder.sub(ix, builder.and_(tmp, splat(it, -4503599627370496))), vt)
    k0 = builder.icmp_signed("==", k, splat(it, 0))
    f = builder.select(k0, r, sub(z, c(1.0)))
    cc = builder.select(k0, c(0.0), div(sub(r, vector_fma(builder, u, c(1.0), c(-1.0))), u))
    s = div(f, add(c(2.0), f))
    z2 = mul(s, s)
    w = mul(z2, z2)
    t1 = mul(w, add(c(_LG2), mul(w, add(c(_LG4), mul(w, c(_LG6))))))
    t2 = mul(z2, add(c(_LG1), mul(w, add(c(_LG3), mul(w, add(c(_LG5), mul(w, c(_LG7))))))))
    hfsq = mul(mul(c(0.5), f), f)
    dk = builder.sitofp(k, vt)
    y = sub(mul(dk, c(_LN2_HI)), sub(sub(hfsq, add(mul(s, add(add(hfsq, t2), t1)), add(mul(dk, c(_LN2_LO)), cc))), f))
    return builder.select(builder.fcmp_ordered("==", r, r, flags=fm), y, r)
