"""The statistician's methods of :class:`SoftmaxRegression`, each a thin call into its module.

Kept apart from the estimator so that ``_softmax_regression.py`` only names
this mixin among its bases: model statistics (statsmodels' names, read off
:meth:`SoftmaxRegression.inference`), marginal effects (:mod:`._margins`),
intervals on predicted probabilities (:mod:`._prediction_intervals`), Wald
and likelihood-ratio tests (:mod:`._hypothesis`).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted

from ._array_api import inference_loss, to_numpy
from ._dask_fit import DaskTrainingData

__all__ = ["InferenceMethods"]


def _statistic(name, doc):
    def get(self):
        return getattr(self.inference(), name)

    get.__name__ = name
    get.__doc__ = doc
    return property(get)


class InferenceMethods:
    """Mixin for a fitted softmax model: ``inference(cov_type, groups)`` and what reads it.

    The estimator provides ``coef_``, ``intercept_``, ``classes_``, its
    parameters (``reference_class``, ``fit_intercept``, ``penalty``), the
    training loss ``_loss`` kept by ``fit`` and the cache ``_inference_cache``.
    """

    def inference(self, cov_type="nonrobust", groups=None):
        """Standard errors, z statistics and covariance of the fitted coefficients.

        Returns the object of :func:`softmaxreg.models.compute_inference`
        (cached per ``cov_type``); needs a model fitted with ``fit``.
        ``cov_type="cluster"`` needs ``groups``, one cluster label per training row.
        """
        check_is_fitted(self)
        key = cov_type if groups is None else None  # cluster results are not cached
        if key not in self._inference_cache and getattr(self, "_loss", None) is None:
            raise ValueError(
                "inference needs the training data of a full fit; call fit (not partial_fit) first "
                "(remove_data() keeps only the results computed before it)."
            )
        if key not in self._inference_cache:
            from ._inference import compute_inference

            # A Dask fit sums the information and the meat over its chunks first.
            dask_data = isinstance(self._loss, DaskTrainingData)
            if dask_data and groups is not None:
                raise ValueError(
                    "cov_type='cluster' is not available for a model fitted on Dask data; "
                    "use cov_type='nonrobust' or 'HC0', or fit in memory to cluster."
                )
            compute = self._loss.inference if dask_data else compute_inference
            result = compute(
                *(() if dask_data else (inference_loss(self),)),  # a device fit's loss, seen from the host
                np.asarray(to_numpy(self.coef_), dtype=np.float64),
                np.asarray(to_numpy(self.intercept_), dtype=np.float64),
                cov_type=cov_type,
                classes=to_numpy(self.classes_),
                feature_names=getattr(self, "feature_names_in_", None),
                reference_class=self.reference_class,
                fit_intercept=self.fit_intercept,
                penalty=self.penalty,
                **({} if dask_data else {"groups": groups}),
            )
            converged = getattr(self, "converged_", None)  # None: unknown (e.g. set by hand)
            result.converged = None if converged is None else bool(converged)
            if key is None:
                return self._checked_convergence(result)
            self._inference_cache[key] = result
        return self._checked_convergence(self._inference_cache[key])

    def remove_data(self):
        """Drop the model's reference to its training data, as statsmodels' ``remove_data``; returns self.

        A fitted model keeps its training loss (``X``, ``y`` and the weights) so
        that :meth:`inference` can be computed later, and pickle, joblib and
        ``copy.deepcopy`` carry those arrays with the model. After this call the
        model predicts as before and keeps the inference results already
        computed (``inference(cov_type)``, ``summary``, ``llf``, ... for those
        ``cov_type``); others, and marginal effects at the training rows, then
        need a refit.
        """
        check_is_fitted(self)
        self._loss = None
        return self

    def _checked_convergence(self, result):
        if result.converged is False:
            warnings.warn(
                f"{type(self).__name__} did not converge ({getattr(self, 'n_iter_', '?')} iterations): the "
                "standard errors are computed at a point that is not the optimum; refit with a larger "
                "max_iter (or scale the features).", ConvergenceWarning, stacklevel=3)
        return result

    def cov_params(self, cov_type="nonrobust", groups=None):
        """Covariance matrix of the free coefficients (see :meth:`inference`)."""
        return self.inference(cov_type, groups).cov_params

    def summary(self, alpha=0.05, cov_type="nonrobust", rrr=False, groups=None):
        """Coefficient table: estimate, standard error, z, p-value, confidence interval.

        Under a header of model statistics (``llf``, ``llnull``, ``llr``, ...);
        ``rrr=True`` shows relative-risk ratios ``exp(b)`` (Stata's ``mlogit, rrr``).
        """
        return self.inference(cov_type, groups).summary(alpha, rrr=rrr)

    llf = _statistic("llf", "Log-likelihood of the fit (frequency weights count as repeated rows).")
    llnull = _statistic("llnull", "Log-likelihood of the intercept-only model (None without one).")
    llr = _statistic("llr", "Likelihood-ratio chi-square against the intercept-only model.")
    llr_pvalue = _statistic("llr_pvalue", "P-value of ``llr`` on ``df_model`` degrees of freedom.")
    prsquared = _statistic("prsquared", "McFadden's pseudo R-squared ``1 - llf / llnull``.")
    aic = _statistic("aic", "Akaike's information criterion ``-2 llf + 2 q``.")
    bic = _statistic("bic", "Schwarz's criterion ``-2 llf + q log(nobs)``.")
    df_model = _statistic("df_model", "Free slope parameters ((K - 1) n_features with a reference).")
    df_resid = _statistic("df_resid", "``nobs`` less the number of free parameters.")
    nobs = _statistic("nobs", "Number of observations: the sum of the sample weights.")

    def marginal_effects(self, X=None, *, at="overall", method="dydx", dummy=False, count=False,
                         alpha=0.05, cov_type="nonrobust", groups=None):
        """Marginal effects dp_k/dx_j with delta-method standard errors.

        See :func:`softmaxreg.models.marginal_effects` (the formulas, ``at``,
        ``method``, discrete changes); needs ``penalty=None``.  Returns a
        :class:`~softmaxreg.models.MarginalEffects` that prints as a table.
        """
        from ._margins import marginal_effects

        return marginal_effects(self, X, at=at, method=method, dummy=dummy, count=count,
                                alpha=alpha, cov_type=cov_type, groups=groups)

    def predict_interval(self, X, alpha=0.05, cov_type="nonrobust", groups=None):
        """Predicted probabilities with delta-method intervals on the logit scale.

        See :func:`softmaxreg.models.predict_interval`; returns
        ``(proba, lower, upper, se_logit)``, each (n_samples, n_classes), the
        bounds inside (0, 1).  Needs ``penalty=None``.
        """
        from ._prediction_intervals import predict_interval

        return predict_interval(self, X, alpha=alpha, cov_type=cov_type, groups=groups)

    def wald_test(self, hypothesis, cov_type="nonrobust", groups=None):
        """Wald chi-square test of linear restrictions on the coefficients.

        ``hypothesis``: a string over feature and class names (``"x1 = 0"``,
        ``"[b]x1 = [c]x1, [b]x2 = 0"``), a matrix ``R`` over the rows of
        ``summary()`` (``q = 0``) or a tuple ``(R, q)``; see
        :func:`softmaxreg.models.wald_test`.  Returns a
        :class:`~softmaxreg.models.ChiSquareTest` (statistic, df, pvalue).
        """
        from ._hypothesis import wald_test

        return wald_test(self, hypothesis, cov_type=cov_type, groups=groups)

    def lr_test(self, restricted_model):
        """Likelihood-ratio test of a nested fit on the same rows against this one.

        See :func:`softmaxreg.models.lr_test`; returns a
        :class:`~softmaxreg.models.ChiSquareTest`.
        """
        from ._hypothesis import lr_test

        return lr_test(self, restricted_model)
