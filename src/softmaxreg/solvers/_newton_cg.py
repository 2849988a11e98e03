"""Trust-region Newton method with Steihaug's truncated conjugate gradient."""

import numpy as np

from ._result import OptimizeResult, warn_not_converged

__all__ = ["newton_cg"]


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
    x = np.array(x0, dtype=np.float64, copy=True)
    f, g = fun.loss_gradient(x)
    radius = float(initial_radius)
    max_cg = x.size if max_cg_iter is None else int(max_cg_iter)
    history = []
    converged = False
    message = "maximum number of iterations reached"
    n_iter = 0
    gmax = float(np.max(np.abs(g))) if g.size else 0.0
    eps = np.finfo(np.float64).eps
    while True:
        if gmax <= tol:
            converged, message = True, "max |gradient| <= tol"
            break
        if n_iter >= max_iter:
            break
        n_iter += 1
        p, Hp = _steihaug(lambda v: fun.hessp(x, v), g, radius, max_cg)
        predicted = -(g @ p + 0.5 * (p @ Hp))
        if not predicted > 0:
            converged = gmax <= np.sqrt(eps) * max(1.0, abs(f))
            message = "no descent direction from the quadratic model"
            break
        x_new = x + p
        f_new, g_new = fun.loss_gradient(x_new)
        actual = f - f_new
        rho = actual / predicted if np.isfinite(f_new) else -np.inf
        step_norm = np.linalg.norm(p)
        if rho < 0.25:
            radius = 0.25 * step_norm
        elif rho > 0.75 and step_norm >= 0.99 * radius:
            radius = min(2.0 * radius, max_radius)
        if rho > 0.15:
            small_change = abs(actual) <= 4 * eps * max(1.0, abs(f))
            x, f, g = x_new, f_new, g_new
            gmax = float(np.max(np.abs(g)))
            if small_change and gmax > tol:
                converged = True
                message = "objective no longer changes in floating point"
                history.append(float(f))
                break
        history.append(float(f))
        if callback is not None and callback(x, float(f), n_iter):
            message = "stopped by callback"
            break
        if radius <= 4 * eps * max(1.0, np.linalg.norm(x)):
            converged = gmax <= np.sqrt(eps) * max(1.0, abs(f))
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
    )
    warn_not_converged(result, "newton-cg")
    return result


def _steihaug(hessp, g, radius, max_iter):
    """Approximate ``argmin g.p + p.H.p/2`` over ``||p|| <= radius``; returns ``(p, H p)``."""
    p = np.zeros_like(g)
    Hp = np.zeros_like(g)
    r = g.copy()
    d = -r
    rr = r @ r
    g_norm = np.sqrt(rr)
    cg_tol = min(0.5, np.sqrt(g_norm)) * g_norm
    for _ in range(max_iter):
        Hd = hessp(d)
        dHd = d @ Hd
        if dHd <= 0:
            tau = _to_boundary(p, d, radius)
            return p + tau * d, Hp + tau * Hd
        alpha = rr / dHd
        p_next = p + alpha * d
        if np.linalg.norm(p_next) >= radius:
            tau = _to_boundary(p, d, radius)
            return p + tau * d, Hp + tau * Hd
        p, Hp = p_next, Hp + alpha * Hd
        r = r + alpha * Hd
        rr_next = r @ r
        if np.sqrt(rr_next) <= cg_tol:
            break
        d = -r + (rr_next / rr) * d
        rr = rr_next
    return p, Hp


def _to_boundary(p, d, radius):
    """Positive ``tau`` with ``||p + tau d|| = radius``."""
    a, b, c = d @ d, 2 * (p @ d), p @ p - radius**2
    return (-b + np.sqrt(b * b - 4 * a * c)) / (2 * a)
