"""The result every solver returns, and the warning it gives when it runs out of iterations."""

import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning

__all__ = ["OptimizeResult", "warn_not_converged"]


@dataclass
class OptimizeResult:
    """Outcome of a solver run.

    Attributes
    ----------
    x : ndarray of shape (n_params,)
        Final coefficients (the flat layout of the loss object).
    fun : float
        Objective at ``x``.
    n_iter : int
        Iterations (epochs for ``sgd``) performed.
    converged : bool
        Whether the solver's documented stopping criterion was met.
    history : list of float
        Objective after each iteration or epoch; ``history[-1] == fun``.
    message : str
        Why the solver stopped.
    grad_norm : float
        Stationarity measure at ``x`` used by the criterion (max-abs gradient,
        or gradient mapping for the proximal solver); NaN where not computed.
    n_hessp : int
        Hessian-vector products used (``newton_cg``'s inner CG steps); 0 for
        the other solvers.

    Examples
    --------
    >>> r = OptimizeResult(x=np.zeros(2), fun=0.5, n_iter=3, converged=True)
    >>> r.n_iter, r.converged, r.history
    (3, True, [])
    """

    x: np.ndarray
    fun: float
    n_iter: int
    converged: bool
    history: list = field(default_factory=list)
    message: str = ""
    grad_norm: float = float("nan")
    n_hessp: int = 0


def warn_not_converged(result, solver):
    """Emit scikit-learn's ``ConvergenceWarning`` when ``result`` ran out of iterations.

    A run stopped on purpose by a callback is not a convergence failure.
    """
    if not result.converged and not result.message.startswith("stopped by callback"):
        warnings.warn(
            f"{solver} did not converge after {result.n_iter} iterations ({result.message}); "
            "increase max_iter, loosen tol, or scale the features.",
            ConvergenceWarning,
            stacklevel=3,
        )
