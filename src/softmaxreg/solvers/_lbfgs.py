"""Limited-memory BFGS over a smooth loss object."""

import array_api_compat
import numpy as np
from scipy.optimize import minimize

from ._lbfgs_xp import lbfgs_namespace
from ._result import OptimizeResult, warn_not_converged

__all__ = ["lbfgs"]


def lbfgs(fun, x0, *, tol=1e-4, max_iter=100, callback=None, memory=20):
    r"""Minimize a smooth objective with L-BFGS (scipy's L-BFGS-B, no bounds).

    A start point that is an Array API array other than NumPy's (torch, CuPy,
    ...) runs :func:`~softmaxreg.solvers.lbfgs_namespace` instead, the same
    method with every vector on that array's device.

    Parameters
    ----------
    fun : object with ``loss_gradient(x) -> (float, ndarray)``, or a callable doing that
        The objective, e.g. a :class:`~softmaxreg.loss.LinearSoftmaxLoss`.
    x0 : ndarray of shape (n_params,)
        Start point.
    tol : float, default=1e-4
        Stop when :math:`\max_j |\partial f / \partial x_j| \le` ``tol``.  The
        loss objects are per-sample means, so ``tol`` is scale-free in the
        number of samples.  The run also counts as converged when a step
        changes ``f`` by less than a few machine epsilons relative (no further
        progress is possible in floating point).
    max_iter : int, default=100
        Iteration limit; reaching it gives a ``ConvergenceWarning``.
    callback : callable, default=None
        ``callback(x, fun, n_iter)`` after each iteration; returning True stops.
    memory : int, default=20
        Number of correction pairs kept.

    Returns
    -------
    OptimizeResult

    Examples
    --------
    The quadratic :math:`f(x) = \tfrac12 \lVert x - 1 \rVert^2` has its minimum at ones.

    >>> import numpy as np
    >>> res = lbfgs(lambda x: (0.5 * np.sum((x - 1) ** 2), x - 1), np.zeros(3), tol=1e-10)
    >>> np.round(res.x, 6).tolist(), res.converged
    ([1.0, 1.0, 1.0], True)
    """
    f_and_g = fun.loss_gradient if hasattr(fun, "loss_gradient") else fun
    if array_api_compat.is_array_api_obj(x0) and not array_api_compat.is_numpy_array(x0):
        result = lbfgs_namespace(f_and_g, x0, tol=tol, max_iter=max_iter, callback=callback, memory=memory)
        warn_not_converged(result, "lbfgs")
        return result
    x0 = np.asarray(x0, dtype=np.float64)
    history = []
    stopped = []

    def on_iteration(intermediate_result):
        history.append(float(intermediate_result.fun))
        if callback is not None and callback(intermediate_result.x, history[-1], len(history)):
            stopped.append(True)
            raise StopIteration

    res = minimize(
        f_and_g,
        x0,
        method="L-BFGS-B",
        jac=True,
        callback=on_iteration,
        options={
            "maxiter": int(max_iter),
            "maxcor": int(memory),
            "gtol": float(tol),
            "ftol": 64 * np.finfo(np.float64).eps,
            "maxls": 50,
        },
    )
    grad_norm = float(np.max(np.abs(res.jac))) if np.size(res.jac) else 0.0
    if stopped:
        message, converged = "stopped by callback", False
    else:
        message, converged = str(res.message), bool(res.status == 0)
    if not history or history[-1] != float(res.fun):
        history.append(float(res.fun))
    result = OptimizeResult(
        x=np.asarray(res.x),
        fun=float(res.fun),
        n_iter=int(res.nit),
        converged=converged,
        history=history,
        message=message,
        grad_norm=grad_norm,
    )
    warn_not_converged(result, "lbfgs")
    return result
