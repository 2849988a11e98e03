r"""L-BFGS with the iterate on the device: the two-loop recursion and a strong-Wolfe line search.

scipy's L-BFGS-B (what :func:`~softmaxreg.solvers.lbfgs` runs for NumPy)
works on host float64 vectors, so a device fit through it would copy the
coefficients and the gradient to the host and back at every evaluation.  This
is the same method written against the Array API: the iterate, the gradient,
the correction pairs and the search direction stay in the namespace and on the
device of the start point; the host sees the objective and a few inner
products per evaluation.  Its stopping rules are scipy's: projected-gradient
(here: gradient, no bounds) max-norm at most ``tol``, or a relative decrease of
the objective at most ``ftol``.
"""

import math
from collections import deque

from ._namespace import dot, max_abs, start_point
from ._result import OptimizeResult

__all__ = ["lbfgs_namespace"]

# Wolfe constants of scipy's L-BFGS-B line search (dcsrch): sufficient decrease
# and curvature.
_C1, _C2 = 1e-3, 0.9


def lbfgs_namespace(f_and_g, x0, *, tol=1e-4, max_iter=100, callback=None, memory=20, max_ls=50):
    r"""Minimize a smooth objective by L-BFGS, every vector in ``x0``'s namespace and device.

    Each iteration takes the direction :math:`d = -H_k g` of the two-loop
    recursion over the last ``memory`` pairs :math:`(s, y)` (initial scaling
    :math:`\gamma = s^\top y / y^\top y`; the first step has length
    :math:`\min(1, 1/\lVert g \rVert_2)`, as in L-BFGS-B) and a step length
    satisfying the strong Wolfe conditions

    .. math::

        f(x + t d) \le f(x) + c_1 t\, g^\top d, \qquad
        |\nabla f(x + t d)^\top d| \le c_2 |g^\top d| ,

    found by bracketing and cubic interpolation (Nocedal & Wright, Algorithms
    3.5 and 3.6).  A pair with :math:`s^\top y \le \varepsilon\, y^\top y` is
    skipped.  Stops when :math:`\max_j |g_j| \le` ``tol`` or when
    :math:`(f_k - f_{k+1}) / \max(|f_k|, |f_{k+1}|, 1) \le 64\,\varepsilon`.

    Parameters
    ----------
    f_and_g : callable
        ``x -> (float, gradient array)``, the gradient in ``x``'s namespace.
    x0 : array of shape (n_params,)
        Start point (any Array API namespace; not modified).
    tol, max_iter, callback, memory
        As :func:`~softmaxreg.solvers.lbfgs`.
    max_ls : int, default=50
        Objective evaluations allowed per line search.

    Returns
    -------
    OptimizeResult
        ``x`` in ``x0``'s namespace and device.

    Examples
    --------
    >>> import numpy as np
    >>> res = lbfgs_namespace(lambda x: (0.5 * float(np.sum((x - 1) ** 2)), x - 1), np.zeros(3), tol=1e-10)
    >>> np.round(res.x, 6).tolist(), res.converged
    ([1.0, 1.0, 1.0], True)
    """
    xp, x = start_point(x0)
    eps = float(xp.finfo(x.dtype).eps)
    ftol = 64 * eps
    f, g = f_and_g(x)
    pairs = deque(maxlen=int(memory))  # (s, y, 1 / s.y)
    gamma = 1.0
    history = []
    converged, message = False, "maximum number of iterations reached"
    n_iter = 0
    gmax = max_abs(xp, g)
    if gmax <= tol:
        converged, message = True, "max |gradient| <= tol"
    while not converged and n_iter < max_iter:
        d = -_two_loop(g, pairs, gamma)
        gd = dot(g, d)
        if not gd < 0:  # lost descent (rounding): restart from steepest descent
            pairs.clear()
            d, gd = -g, -dot(g, g)
        t0 = min(1.0, 1.0 / math.sqrt(-gd)) if not pairs else 1.0
        step = _wolfe_search(f_and_g, x, f, g, d, gd, t0, max_ls)
        if step is None:
            message = "line search found no step satisfying the Wolfe conditions"
            converged = gmax <= math.sqrt(eps) * max(1.0, abs(f))
            break
        t, f_new, g_new = step
        n_iter += 1
        s = t * d
        y = g_new - g
        sy, yy = dot(s, y), dot(y, y)
        if sy > eps * yy:
            pairs.append((s, y, 1.0 / sy))
            gamma = sy / yy
        x, f_old, f, g = x + s, f, f_new, g_new
        history.append(float(f))
        gmax = max_abs(xp, g)
        if gmax <= tol:
            converged, message = True, "max |gradient| <= tol"
            break
        if (f_old - f) <= ftol * max(abs(f_old), abs(f), 1.0):
            converged, message = True, "relative reduction of f <= ftol"
            break
        if callback is not None and callback(x, float(f), n_iter):
            message = "stopped by callback"
            break
    if not history or history[-1] != float(f):
        history.append(float(f))
    return OptimizeResult(
        x=x, fun=float(f), n_iter=n_iter, converged=converged, history=history, message=message,
        grad_norm=gmax,
    )


def _two_loop(g, pairs, gamma):
    """``H g`` for the inverse-Hessian approximation of the stored pairs; the coefficients stay on the device."""
    q = g
    alphas = []
    for s, y, rho in reversed(pairs):
        a = rho * (s @ q)
        q = q - a * y
        alphas.append(a)
    r = gamma * q
    for (s, y, rho), a in zip(pairs, reversed(alphas)):
        b = rho * (y @ r)
        r = r + (a - b) * s
    return r


def _wolfe_search(f_and_g, x, f0, g0, d, gd0, t, max_ls):
    """A step ``(t, f, g)`` along ``d`` meeting the strong Wolfe conditions, or None."""
    t_prev, f_prev, gd_prev = 0.0, f0, gd0
    for i in range(max_ls):
        f, g = f_and_g(x + t * d)
        if not math.isfinite(f):
            t = 0.5 * (t_prev + t)  # stepped out of the domain of finite values: come back
            continue
        gd = dot(g, d)
        if f > f0 + _C1 * t * gd0 or (i > 0 and f >= f_prev):
            return _zoom(f_and_g, x, f0, gd0, d, t_prev, f_prev, gd_prev, t, f, gd, max_ls - i - 1)
        if abs(gd) <= -_C2 * gd0:
            return t, f, g
        if gd >= 0:
            return _zoom(f_and_g, x, f0, gd0, d, t, f, gd, t_prev, f_prev, gd_prev, max_ls - i - 1)
        t_prev, f_prev, gd_prev = t, f, gd
        t = 2.0 * t
    return None


def _zoom(f_and_g, x, f0, gd0, d, t_lo, f_lo, gd_lo, t_hi, f_hi, gd_hi, budget):
    """Shrink the bracket ``[t_lo, t_hi]`` (``t_lo`` the best so far) to a strong-Wolfe step."""
    for _ in range(max(budget, 0)):
        t = _cubic_min(t_lo, f_lo, gd_lo, t_hi, f_hi, gd_hi)
        f, g = f_and_g(x + t * d)
        if not math.isfinite(f):
            t_hi, f_hi, gd_hi = t, math.inf, math.nan
            continue
        gd = dot(g, d)
        if f > f0 + _C1 * t * gd0 or f >= f_lo:
            t_hi, f_hi, gd_hi = t, f, gd
        else:
            if abs(gd) <= -_C2 * gd0:
                return t, f, g
            if gd * (t_hi - t_lo) >= 0:
                t_hi, f_hi, gd_hi = t_lo, f_lo, gd_lo
            t_lo, f_lo, gd_lo = t, f, gd
        if abs(t_hi - t_lo) <= 1e-16 * max(abs(t_lo), 1.0):
            break
    if f_lo < f0 and t_lo > 0:
        # The bracket collapsed on a point of sufficient decrease whose slope is
        # rounding noise: take it (L-BFGS-B does the same at its tolerance).
        f, g = f_and_g(x + t_lo * d)
        return t_lo, f, g
    return None


def _cubic_min(a, fa, ga, b, fb, gb):
    """Minimizer of the cubic through ``(a, fa, ga)`` and ``(b, fb, gb)``, kept inside the bracket."""
    lo, hi = min(a, b), max(a, b)
    if math.isfinite(fb) and math.isfinite(gb):
        d1 = ga + gb - 3 * (fa - fb) / (a - b)
        rad = d1 * d1 - ga * gb
        if rad >= 0:
            d2 = math.copysign(math.sqrt(rad), b - a)
            denom = gb - ga + 2 * d2
            if denom != 0:
                t = b - (b - a) * (gb + d2 - d1) / denom
                margin = 0.1 * (hi - lo)
                if lo + margin <= t <= hi - margin:
                    return t
    return 0.5 * (a + b)
