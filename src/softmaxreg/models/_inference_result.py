r"""The result of inference: estimates, standard errors, tests and intervals."""

from __future__ import annotations

import numpy as np
from scipy.special import ndtr, ndtri
from scipy.stats import chi2

from ._summary import InferenceSummary, _ci_labels

__all__ = ["InferenceResult"]


class InferenceResult:
    r"""Estimates and their uncertainty, one row per free (class, feature) parameter.

    Built by :func:`compute_inference`, or from stored arrays (``params`` and
    ``bse``, optionally ``cov_params``) for a model loaded without its data.
    Tests and intervals are Wald ones on the normal scale:

    .. math::

        z_j = \hat\theta_j / \mathrm{se}_j, \qquad
        p_j = 2\,\Phi(-|z_j|), \qquad
        \hat\theta_j \pm \Phi^{-1}(1 - \alpha/2)\, \mathrm{se}_j .

    Parameters
    ----------
    params : array_like of shape (n_params,)
        Estimates.
    bse : array_like of shape (n_params,), default=None
        Standard errors; the square root of ``diag(cov_params)`` when None.
    cov_params : array_like of shape (n_params, n_params), default=None
        Covariance of the estimates, when known.
    classes, features : sequence of length n_params
        Class label and feature name of each row.
    cov_type : str, default="nonrobust"
    reference_class : label, default=None
    n_obs : float, default=None
        Number of observations (sum of frequency weights).
    log_likelihood : float, default=None
    log_likelihood_null : float, default=None
        Of the intercept-only model; gives McFadden's :attr:`pseudo_rsquared`.
    penalty : str, default=None
    n_classes : int, default=None
    fit_intercept : bool, default=None
        Whether one row per free class is an intercept (None: read it off the
        feature names ``"intercept"`` / ``"(intercept)"``).
    converged : bool, default=None
        Whether the fit reached its optimum (None: unknown); the summary's
        header shows it, as statsmodels' does.

    Notes
    -----
    Model statistics (Stata's ``mlogit`` header, statsmodels' ``MNLogit``
    results), with :math:`q` the number of free parameters, :math:`J` the
    number of free classes and :math:`n` the number of observations (the sum
    of the frequency weights):

    .. math::

        \mathrm{llr} = 2 (\ell - \ell_0), \quad
        R^2_{\mathrm{McF}} = 1 - \ell / \ell_0, \quad
        \mathrm{df_{model}} = q - J \,[\text{intercept}], \quad
        \mathrm{df_{resid}} = n - q, \quad
        \mathrm{AIC} = -2\ell + 2q, \quad
        \mathrm{BIC} = -2\ell + q \log n,

    :math:`\ell_0` the log-likelihood of the intercept-only model and the
    p-value of ``llr`` from :math:`\chi^2_{\mathrm{df_{model}}}`.  Without an
    intercept there is no null model: ``llnull`` and what needs it are None.

    Examples
    --------
    From stored arrays: an estimate of 2 with standard error 1 has z = 2,
    p = 2 Phi(-2) = 0.0455 and 95% interval 2 -/+ 1.96.

    >>> from softmaxreg.models import InferenceResult
    >>> r = InferenceResult([2.0], [1.0], classes=["b"], features=["x"])
    >>> float(r.zvalues[0]), round(float(r.pvalues[0]), 4)
    (2.0, 0.0455)
    >>> r.conf_int(0.05).round(3).tolist()
    [[0.04, 3.96]]
    """

    def __init__(
        self,
        params,
        bse=None,
        *,
        cov_params=None,
        classes,
        features,
        cov_type="nonrobust",
        reference_class=None,
        n_obs=None,
        log_likelihood=None,
        log_likelihood_null=None,
        penalty=None,
        n_classes=None,
        fit_intercept=None,
        converged=None,
    ):
        params = np.asarray(params, dtype=np.float64)
        if params.ndim != 1:
            raise ValueError(f"params must be 1-D, got shape {params.shape}.")
        q = params.shape[0]
        if cov_params is not None:
            cov_params = np.asarray(cov_params, dtype=np.float64)
            if cov_params.shape != (q, q):
                raise ValueError(f"cov_params must have shape ({q}, {q}), got {cov_params.shape}.")
        if bse is None:
            if cov_params is None:
                raise ValueError("give bse or cov_params.")
            bse = np.sqrt(np.clip(np.diag(cov_params), 0, None))
        bse = np.asarray(bse, dtype=np.float64)
        if bse.shape != (q,):
            raise ValueError(f"bse must have shape ({q},), got {bse.shape}.")
        if not (np.all(np.isfinite(params)) and np.all(np.isfinite(bse)) and np.all(bse > 0)):
            raise ValueError("params must be finite and bse finite and positive.")
        if len(classes) != q or len(features) != q:
            raise ValueError(f"classes and features need one entry per parameter ({q}).")
        self.params = params
        self.bse = bse
        self.cov_params = cov_params
        self.classes = list(classes)
        self.features = [str(f) for f in features]
        self.cov_type = cov_type
        self.reference_class = reference_class
        self.n_obs = n_obs
        self.log_likelihood = log_likelihood
        self.log_likelihood_null = log_likelihood_null
        self.penalty = penalty
        self.n_classes = n_classes
        if fit_intercept is None:
            fit_intercept = any(f in ("intercept", "(intercept)") for f in self.features)
        self.fit_intercept = bool(fit_intercept)
        self.converged = converged

    @property
    def index(self):
        """Row names: list of ``(class, feature)`` pairs."""
        return list(zip(self.classes, self.features))

    @property
    def pseudo_rsquared(self):
        """McFadden's pseudo R-squared ``1 - llf / llnull`` (None when unknown)."""
        if self.log_likelihood is None or not self.log_likelihood_null:
            return None
        return 1.0 - self.log_likelihood / self.log_likelihood_null

    # -- model statistics (statsmodels' names) ---------------------------------

    @property
    def nobs(self):
        """Number of observations: the sum of the frequency weights."""
        return self.n_obs

    @property
    def llf(self):
        """Log-likelihood at the estimates."""
        return self.log_likelihood

    @property
    def llnull(self):
        """Log-likelihood of the intercept-only model (None without an intercept)."""
        return self.log_likelihood_null

    @property
    def prsquared(self):
        """McFadden's pseudo R-squared (same as :attr:`pseudo_rsquared`)."""
        return self.pseudo_rsquared

    @property
    def _n_free_classes(self):
        return len(dict.fromkeys(self.classes))

    @property
    def df_model(self):
        """Free slope parameters: all free parameters less one intercept per free class."""
        return float(self.params.size - (self._n_free_classes if self.fit_intercept else 0))

    @property
    def df_resid(self):
        """``nobs`` less the number of free parameters (None when nobs is unknown)."""
        return None if self.n_obs is None else float(self.n_obs - self.params.size)

    @property
    def llr(self):
        """Likelihood-ratio chi-square against the intercept-only model, ``2 (llf - llnull)``."""
        if self.log_likelihood is None or self.log_likelihood_null is None:
            return None
        return 2.0 * (self.log_likelihood - self.log_likelihood_null)

    @property
    def llr_pvalue(self):
        """P-value of :attr:`llr` on ``df_model`` degrees of freedom."""
        llr = self.llr
        return None if llr is None else float(chi2.sf(llr, self.df_model))

    @property
    def aic(self):
        """Akaike's criterion ``-2 llf + 2 q`` (q free parameters)."""
        if self.log_likelihood is None:
            return None
        return -2.0 * self.log_likelihood + 2.0 * self.params.size

    @property
    def bic(self):
        """Schwarz's criterion ``-2 llf + q log(nobs)``."""
        if self.log_likelihood is None or self.n_obs is None:
            return None
        return -2.0 * self.log_likelihood + np.log(self.n_obs) * self.params.size

    @property
    def zvalues(self):
        """Wald statistics ``params / bse``."""
        return self.params / self.bse

    @property
    def pvalues(self):
        """Two-sided normal p-values ``2 * Phi(-|z|)`` (exact in the tail, no ``1 - cdf``)."""
        return 2.0 * ndtr(-np.abs(self.zvalues))

    def conf_int(self, alpha=0.05):
        """Wald confidence intervals, ndarray of shape (n_params, 2)."""
        alpha = float(alpha)
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {alpha}.")
        half = -ndtri(alpha / 2) * self.bse
        return np.column_stack([self.params - half, self.params + half])

    def to_frame(self, alpha=0.05, rrr=False):
        """The table as a pandas DataFrame indexed by (class, feature).

        ``rrr=True``: relative-risk ratios (see :meth:`summary`), column "rrr".
        """
        import pandas as pd

        ci = self.conf_int(alpha)
        est, se = self.params, self.bse
        if rrr:
            est, se, ci = np.exp(est), np.exp(est) * se, np.exp(ci)
        lo, hi = _ci_labels(alpha)
        index = pd.MultiIndex.from_tuples(self.index, names=["class", "feature"])
        return pd.DataFrame(
            {
                "rrr" if rrr else "coef": est,
                "std err": se,
                "z": self.zvalues,
                "P>|z|": self.pvalues,
                lo: ci[:, 0],
                hi: ci[:, 1],
            },
            index=index,
        )

    def to_dict(self):
        """Plain arrays and metadata (no pickle); :meth:`from_dict` restores the result."""
        out = {
            "params": self.params.copy(),
            "bse": self.bse.copy(),
            "classes": list(self.classes),
            "features": list(self.features),
            "cov_type": self.cov_type,
            "reference_class": self.reference_class,
            "n_obs": self.n_obs,
            "log_likelihood": self.log_likelihood,
            "log_likelihood_null": self.log_likelihood_null,
            "penalty": self.penalty,
            "n_classes": self.n_classes,
            "fit_intercept": self.fit_intercept,
        }
        if self.cov_params is not None:
            out["cov_params"] = self.cov_params.copy()
        return out

    @classmethod
    def from_dict(cls, d):
        """Rebuild from :meth:`to_dict` output (e.g. arrays stored in a model file)."""
        d = dict(d)
        return cls(
            d.pop("params"),
            d.pop("bse", None),
            cov_params=d.pop("cov_params", None),
            classes=d.pop("classes"),
            features=d.pop("features"),
            **{k: d[k] for k in ("cov_type", "reference_class", "n_obs", "log_likelihood",
                                 "log_likelihood_null", "penalty", "n_classes", "fit_intercept")
               if k in d},
        )

    def summary(self, alpha=0.05, rrr=False):
        """Coefficient table (:class:`InferenceSummary`); ``print`` it for the text.

        With ``rrr=True`` the rows are relative-risk ratios ``exp(b)`` (Stata's
        ``mlogit, rrr``): standard error ``exp(b) se`` (delta method), the same
        z and p-value, and the interval ``exp`` of the coefficient's interval.
        """
        return InferenceSummary(self, alpha, rrr=rrr)

    def __repr__(self):
        return (
            f"InferenceResult(n_params={self.params.size}, cov_type={self.cov_type!r}, "
            f"reference_class={self.reference_class!r})"
        )
