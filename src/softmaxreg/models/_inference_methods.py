"""The statistician's methods of :class:`SoftmaxRegression`, each a thin call into its module.

Kept apart from the estimator so that ``_softmax_regression.py`` only names
this mixin among its bases: model statistics (statsmodels' names, read off
:meth:`SoftmaxRegression.inference`), marginal effects (:mod:`._margins`),
intervals on predicted probabilities (:mod:`._prediction_intervals`), Wald
and likelihood-ratio tests (:mod:`._hypothesis`).
"""

from __future__ import annotations

__all__ = ["InferenceMethods"]


def _statistic(name, doc):
    def get(self):
        return getattr(self.inference(), name)

    get.__name__ = name
    get.__doc__ = doc
    return property(get)


class InferenceMethods:
    """Mixin for a fitted softmax model with ``inference(cov_type, groups)``."""

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
