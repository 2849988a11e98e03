"""The end of a fit that every input path of :class:`SoftmaxRegression` shares.

NumPy, Array API and Dask fits differ in where the data and the loss live,
not in how an exact fit is finished or what it leaves on the estimator.
"""

from __future__ import annotations

from softmaxreg.solvers import newton_refine

__all__ = ["REFINE_MAX_PARAMS", "refine_mle", "set_fitted"]

# Largest number of free coefficients for the dense-Hessian Newton finish of an
# unpenalized fit (the Hessian is n_params**2 floats and costs n_free**2 Gram matrices).
REFINE_MAX_PARAMS = 1000


def refine_mle(model, solver, loss, result):
    """Finish an unpenalized lbfgs / newton-cg fit with exact Newton steps; return whether it ran.

    Maximum likelihood: the steps make the coefficients the MLE to rounding
    (what inference and statsmodels assume), however ill-conditioned the
    design, which ``tol`` alone cannot promise. They come out of ``max_iter``,
    so ``n_iter_ <= max_iter`` still; ``result`` is updated in place.
    """
    budget = model.max_iter - result.n_iter
    if not (model.penalty is None and solver in ("lbfgs", "newton-cg") and result.converged
            and budget > 0 and loss.n_params <= REFINE_MAX_PARAMS):
        return False
    refined = newton_refine(loss, result.x, max_iter=min(budget, 20))
    result.x = refined.x
    result.n_iter += refined.n_iter
    result.history = list(result.history) + refined.history
    return True


def set_fitted(model, *, classes, coef, intercept, result, solver, training):
    """Store a finished fit on ``model``; ``training`` is what :meth:`inference` reads later."""
    model.classes_ = classes
    model.coef_ = coef
    model.intercept_ = intercept
    model.n_iter_ = int(result.n_iter)
    model.history_ = list(result.history)
    model.converged_ = bool(result.converged)
    model.solver_ = solver
    model._loss = training
    model._inference_cache = {}
    model._partial_state = None
