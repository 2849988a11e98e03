"""Trust-region Newton method with Steihaug's truncated conjugate gradient."""

import math

import array_api_compat
import numpy as np

from ._namespace import dot, max_abs, start_point
from ._result import OptimizeResult, warn_not_converged

__all__ = ["newton_cg", "newton_refine"]

# Ask the objective for a preconditioner once CG needed this many steps in an
# iteration, or ran into its cap (early iterations end on the trust-region
# boundary after a few steps, where building one would not pay), and for a
# fresh one when a preconditioned CG needed _REBUILD_AFTER or its cap (the
# Hessian has moved on). The cap matters for problems with fewer parameters
# than the thresholds, where a badly scaled Hessian keeps CG at its cap.
_PRECONDITION_AFTER = 20
_REBUILD_AFTER = 40


def newton_cg(
    fun,
    x0,
    *,
    tol=1e-4,
    max_iter=100,
    callback=None,
    initial_radius=1.0,
    max_radius=1e4,
    max_cg_iter=None,
    precondition=True,
):
    r"""Minimize a smooth objective by trust-region Newton-CG (Steihaug-Toint).

    Each iteration approximately minimizes the quadratic model
    :math:`m(p) = f + g^\top p + \tfrac12 p^\top H p` over
    :math:`\lVert p \rVert \le \Delta` by conjugate gradients on ``H p = -g``,
    using only Hessian-vector products; CG stops at the trust-region boundary,
    at negative curvature, or once
    :math:`\lVert H p + g \rVert \le \min(\tfrac12, \sqrt{\lVert g \rVert}) \lVert g \rVert`
    (superlinear local convergence).  The step is accepted when the actual
    decrease is at least 15 % of the predicted one; the radius shrinks by 4
    when that ratio is below 1/4 and doubles when it is above 3/4 and the step
    reached the boundary (Nocedal & Wright, Algorithms 4.1 and 7.2).

    With a preconditioner :math:`M \approx H` (when ``fun`` has
    ``preconditioner(x)``, returning a function that applies :math:`M^{-1}`),
    CG runs on the preconditioned system and the trust region is measured in
    the :math:`M`-norm, :math:`\lVert p \rVert_M = \sqrt{p^\top M p}`, whose
    value along the CG path follows from scalar recurrences (Gould, Lucidi,
    Roma & Toint 1999), so :math:`M` itself is never applied.  A good
    :math:`M` cuts the CG steps per iteration by the square root of the
    drop in condition number; the accepted steps and the stopping rule are
    unchanged.

    Parameters
    ----------
    fun : object with ``loss_gradient(x)`` and ``hessp(x, v)``
        The objective, e.g. a :class:`~softmaxreg.loss.LinearSoftmaxLoss`.
    x0 : ndarray of shape (n_params,)
        Start point.
    tol : float, default=1e-4
        Stop when :math:`\max_j |\partial f / \partial x_j| \le` ``tol``.
    max_iter : int, default=100
        Limit on outer (trust-region) iterations; reaching it gives a
        ``ConvergenceWarning``.
    callback : callable, default=None
        ``callback(x, fun, n_iter)`` after each iteration; returning True stops.
    initial_radius, max_radius : float
        Trust-region radius at the start and its cap.
    max_cg_iter : int, default=None
        Cap on CG steps per iteration (None: the number of parameters).
    precondition : bool, default=True
        Use ``fun.preconditioner(x)`` when ``fun`` has one (it may return None:
        plain CG).  It is asked for one after an iteration whose CG needed 20
        steps or more (or ``max_cg_iter``, if fewer), and for a fresh one after
        a preconditioned CG needed 40 (or ``max_cg_iter``); early iterations,
        which end on the trust-region boundary after a few steps, run plain CG.

    Returns
    -------
    OptimizeResult

    Examples
    --------
    A quadratic with a well-conditioned Hessian is solved in one Newton step:
    :math:`f(x) = \tfrac12 x^\top A x - b^\top x` with :math:`A = 2 I`
    and :math:`b = (2, 1)` has its minimum at :math:`A^{-1} b = (1, 0.5)`.

    >>> import numpy as np
    >>> class Quadratic:
    ...     A, b = 2.0 * np.eye(2), np.array([2.0, 1.0])
    ...     def loss_gradient(self, x):
    ...         return 0.5 * x @ self.A @ x - self.b @ x, self.A @ x - self.b
    ...     def hessp(self, x, v):
    ...         return self.A @ v
    >>> res = newton_cg(Quadratic(), np.zeros(2), tol=1e-10, initial_radius=10.0)
    >>> res.x.tolist(), res.n_iter
    ([1.0, 0.5], 1)
    """
    xp, x = start_point(x0)
    f, g = fun.loss_gradient(x)
    radius = float(initial_radius)
    max_cg = x.shape[0] if max_cg_iter is None else int(max_cg_iter)
    history = []
    converged = False
    message = "maximum number of iterations reached"
    n_iter = 0
    gmax = max_abs(xp, g)
    eps = float(xp.finfo(x.dtype).eps)
    use_pre = bool(precondition) and callable(getattr(fun, "preconditioner", None))
    M_inv, n_cg, cg_steps = None, 0, 0
    while True:
        if gmax <= tol:
            converged, message = True, "max |gradient| <= tol"
            break
        if n_iter >= max_iter:
            break
        n_iter += 1
        if use_pre and cg_steps >= min(_PRECONDITION_AFTER, max_cg) and (
                M_inv is None or cg_steps >= min(_REBUILD_AFTER, max_cg)):
            M_inv = fun.preconditioner(x)
        # The radius is measured in the norm CG uses (the M-norm once there is
        # a preconditioner; the first one reinterprets the Euclidean radius).
        p, Hp, step_norm, cg_steps = _steihaug(lambda v: fun.hessp(x, v), g, radius, max_cg, M_inv)
        n_cg += cg_steps
        predicted = -(dot(g, p) + 0.5 * dot(p, Hp))
        if not predicted > 0:
            converged = gmax <= math.sqrt(eps) * max(1.0, abs(f))
            message = "no descent direction from the quadratic model"
            break
        x_new = x + p
        f_new, g_new = fun.loss_gradient(x_new)
        actual = f - f_new
        # Near the optimum of a badly scaled problem both reductions fall to the rounding of f, and their
        # ratio is noise that would shrink the radius to nothing; the same small margin added to both
        # (Conn, Gould and Toint, Trust-Region Methods, 17.4.2) makes that ratio about 1.
        margin = 10 * eps * max(1.0, abs(f))
        rho = (actual + margin) / (predicted + margin) if math.isfinite(f_new) else -math.inf
        if rho < 0.25:
            radius = 0.25 * step_norm
        elif rho > 0.75 and step_norm >= 0.99 * radius:
            radius = min(2.0 * radius, max_radius)
        if rho > 0.15:
            small_change = abs(actual) <= 4 * eps * max(1.0, abs(f))
            x, f, g = x_new, f_new, g_new
            gmax, gmax_before = max_abs(xp, g), gmax
            # The objective no longer resolves progress; the gradient may still (a badly scaled column).
            if small_change and tol < gmax and gmax > 0.5 * gmax_before:
                converged = True
                message = "objective no longer changes in floating point"
                history.append(float(f))
                break
        history.append(float(f))
        if callback is not None and callback(x, float(f), n_iter):
            message = "stopped by callback"
            break
        if radius <= 4 * eps * max(1.0, math.sqrt(dot(x, x))):
            converged = gmax <= math.sqrt(eps) * max(1.0, abs(f))
            message = "trust region collapsed (gradient too noisy to make progress)"
            break
    if not history:
        history.append(float(f))
    result = OptimizeResult(
        x=x,
        fun=float(f),
        n_iter=n_iter,
        converged=converged,
        history=history,
        message=message,
        grad_norm=gmax,
        n_hessp=n_cg,
    )
    warn_not_converged(result, "newton-cg")
    return result


def _steihaug(hessp, g, radius, max_iter, M_inv=None):
    """Approximate ``argmin g.p + p.H.p/2`` over ``||p||_M <= radius``.

    Returns ``(p, H p, ||p||_M, number of Hessian-vector products)``.  Without ``M_inv``
    the norm is Euclidean (M = I).  ``pMp``, ``pMd`` and ``dMd`` are the
    M-inner products of the iterate ``p`` and the direction ``d``, kept by
    recurrences so that ``M`` is never needed, only ``M^{-1}``.  The vectors
    stay in ``g``'s namespace and device; only their inner products are read.
    """
    xp = array_api_compat.array_namespace(g)
    precond = M_inv if M_inv is not None else (lambda r: r)
    p = xp.zeros_like(g)
    Hp = xp.zeros_like(g)
    r = g
    z = precond(r)
    d = -z
    rz = dot(r, z)
    g_norm = math.sqrt(dot(r, r))
    cg_tol = min(0.5, math.sqrt(g_norm)) * g_norm
    if not rz > 0:  # g lies where M^{-1} vanishes (a direction of zero curvature): no step
        return p, Hp, 0.0, 0
    pMp, pMd, dMd = 0.0, 0.0, rz
    for k in range(max_iter):
        Hd = hessp(d)
        dHd = dot(d, Hd)
        if dHd <= 0:
            tau = _to_boundary(pMp, pMd, dMd, radius)
            return p + tau * d, Hp + tau * Hd, radius, k + 1
        alpha = rz / dHd
        pMp_next = pMp + 2 * alpha * pMd + alpha * alpha * dMd
        if pMp_next >= radius * radius:
            tau = _to_boundary(pMp, pMd, dMd, radius)
            return p + tau * d, Hp + tau * Hd, radius, k + 1
        p, Hp, pMp = p + alpha * d, Hp + alpha * Hd, pMp_next
        r = r + alpha * Hd
        if math.sqrt(dot(r, r)) <= cg_tol:
            return p, Hp, math.sqrt(pMp), k + 1
        z = precond(r)
        rz_next = dot(r, z)
        beta = rz_next / rz
        pMd = beta * (pMd + alpha * dMd)
        dMd = rz_next + beta * beta * dMd
        d = -z + beta * d
        rz = rz_next
    return p, Hp, math.sqrt(pMp), max_iter


def _to_boundary(pMp, pMd, dMd, radius):
    """Positive ``tau`` with ``||p + tau d||_M = radius``, from the M-inner products."""
    a, b, c = dMd, 2 * pMd, pMp - radius**2
    return (-b + math.sqrt(max(b * b - 4 * a * c, 0.0))) / (2 * a)


def newton_refine(fun, x0, *, max_iter=20, xtol=1e-10):
    r"""Finish a minimization with exact Newton steps on the dense Hessian.

    For a point ``x0`` already near the minimum (a converged L-BFGS or
    trust-region run), each step solves :math:`H \delta = -g` exactly through
    the eigendecomposition of :math:`H` (eigenvalues below
    :math:`n\,\varepsilon\,\lambda_{\max}` are dropped, so a rank-deficient
    :math:`H`, as in the symmetric softmax coding without penalty, gives the
    minimum-norm step), then halves the step until the objective does not rise
    beyond rounding.  It stops once the accepted step is below ``xtol``
    relative, :math:`\max_j |\delta_j| / (1 + |x_j|) \le` ``xtol``.  Near the
    minimum Newton's method converges quadratically, so this pins the minimizer
    down to rounding whatever the conditioning of the problem, which a
    gradient tolerance cannot do (a gradient of ``tol`` moves the minimizer by
    about ``tol / lambda_min``).  This is how statsmodels fits ``MNLogit``.

    Parameters
    ----------
    fun : object with ``loss_gradient(x)`` and ``hessian(x)``
        The objective, e.g. a :class:`~softmaxreg.loss.LinearSoftmaxLoss`.
    x0 : ndarray of shape (n_params,)
        Start point, close to the minimum.
    max_iter : int, default=20
        Limit on Newton steps.
    xtol : float, default=1e-10
        Relative step size at which to stop.

    Returns
    -------
    OptimizeResult
        ``converged`` says whether the step criterion was met; no warning is
        given (the start point is already an accepted answer).

    Examples
    --------
    :math:`f(x) = \cosh(x_0 - 1) + (x_1 + 2)^4 / 4 + x_1^2 / 2` from near its minimum:

    >>> import numpy as np
    >>> class F:
    ...     def loss_gradient(self, x):
    ...         f = np.cosh(x[0] - 1) + (x[1] + 2) ** 4 / 4 + x[1] ** 2 / 2
    ...         return f, np.array([np.sinh(x[0] - 1), (x[1] + 2) ** 3 + x[1]])
    ...     def hessian(self, x):
    ...         return np.diag([np.cosh(x[0] - 1), 3 * (x[1] + 2) ** 2 + 1])
    >>> res = newton_refine(F(), np.array([1.1, -1.0]))
    >>> res.converged, round(float(res.x[0]), 12)
    (True, 1.0)
    >>> bool(abs(F().loss_gradient(res.x)[1][1]) < 1e-14)
    True
    """
    xp, x = start_point(x0)
    f, g = fun.loss_gradient(x)
    eps = float(xp.finfo(x.dtype).eps)
    history = []
    converged = False
    message = "maximum number of Newton steps reached"
    n_iter = 0
    while n_iter < max_iter:
        H = fun.hessian(x)
        lam, V = xp.linalg.eigh(0.5 * (H + H.T))
        top = float(lam[-1]) if lam.shape[0] else 0.0
        if not top > 0:
            message = "Hessian is not positive definite"
            break
        step = -_pseudo_solve(xp, lam, V, g, x.shape[0] * eps * top)
        if not bool(xp.all(xp.isfinite(step))):
            message = "non-finite Newton step"
            break
        gmax = max_abs(xp, g)
        t, accepted = 1.0, False
        for _ in range(10):
            f_new, g_new = fun.loss_gradient(x + t * step)
            slack = 8 * eps * max(1.0, abs(f))
            if math.isfinite(f_new) and (
                f_new <= f + slack
                or (f_new <= f + 8 * slack and max_abs(xp, g_new) < gmax)
            ):
                accepted = True
                break
            t *= 0.5
        if not accepted:
            # No step helps: the point is a minimizer up to rounding.
            converged, message = True, "no further decrease in floating point"
            break
        n_iter += 1
        size = float(xp.max(xp.abs(t * step) / (1.0 + xp.abs(x))))
        x, f, g = x + t * step, f_new, g_new
        history.append(float(f))
        if size <= xtol:
            converged, message = True, "relative Newton step <= xtol"
            break
    return OptimizeResult(
        x=x,
        fun=float(f),
        n_iter=n_iter,
        converged=converged,
        history=history,
        message=message,
        grad_norm=max_abs(xp, g),
    )


def _pseudo_solve(xp, lam, V, g, cutoff):
    """``V diag(1/lam) V^T g`` over the eigenvalues above ``cutoff`` (the others dropped)."""
    if array_api_compat.is_numpy_namespace(xp):
        keep = lam > cutoff
        return V[:, keep] @ ((V[:, keep].T @ g) / lam[keep])
    keep = lam > cutoff
    inv = xp.where(keep, 1.0 / xp.where(keep, lam, xp.ones_like(lam)), xp.zeros_like(lam))
    return V @ ((V.T @ g) * inv)
