r"""Confidence intervals for predicted class probabilities (delta method on the logit scale).

For a row :math:`x` with probabilities :math:`p = \operatorname{softmax}(\tilde W \tilde x)`,
each :math:`p_k` is mapped to :math:`\eta_k = \log(p_k / (1 - p_k))`, whose
gradient in the free parameters is, from
:math:`\partial p_k / \partial w_{ce} = p_k(\delta_{kc} - p_c) \tilde x_e`,

.. math::

    \frac{\partial \eta_k}{\partial w_{ce}} = \frac{(\delta_{kc} - p_c)\, \tilde x_e}{1 - p_k} ;

with :math:`V` the parameters' covariance, :math:`\mathrm{se}(\eta_k) =
\sqrt{g_k^\top V g_k}` and the interval is
:math:`\operatorname{expit}(\eta_k \pm z_{1-\alpha/2}\, \mathrm{se}(\eta_k))`:
inside :math:`(0, 1)` always, and asymmetric near 0 and 1 where a symmetric
interval on :math:`p_k` would cross them (Stata's ``predict ..., stdp`` then
``invlogit``).  Like the probabilities, the intervals do not depend on the
reference class.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, ndtri

from ._array_api import to_numpy
from ._delta import CHUNK_FLOATS, delta_parts
from ._validation import check_finite

__all__ = ["ProbabilityInterval", "predict_interval"]


class ProbabilityInterval(NamedTuple):
    """Predicted probabilities and their interval, each of shape (n_samples, n_classes).

    ``se_logit`` is the standard error of ``log(p / (1 - p))``.
    """

    proba: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    se_logit: np.ndarray


def predict_interval(model, X, alpha=0.05, cov_type="nonrobust", groups=None):
    """Probabilities with ``1 - alpha`` delta-method intervals (see the module docstring).

    Parameters
    ----------
    model : SoftmaxRegression
        Fitted with ``fit`` and ``penalty=None``.
    X : array_like of shape (n_samples, n_features)
    alpha : float, default=0.05
    cov_type : str, default="nonrobust"
        Covariance of the parameters ("cluster" with ``groups``).
    groups : array_like of shape (n_train,), default=None

    Returns
    -------
    ProbabilityInterval
        ``(proba, lower, upper, se_logit)``.
    """
    alpha = float(alpha)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}.")
    parts = delta_parts(model, cov_type, groups, what="prediction intervals")
    X = model._validated(to_numpy(X))  # computed on the host, as the covariance is (a device X too)
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    check_finite(X, feature_names=getattr(model, "feature_names_in_", None))
    W, free, V = parts.W, parts.free, parts.cov
    K, D = W.shape
    n = X.shape[0]
    P, se = np.empty((n, K)), np.empty((n, K))
    eta = np.empty((n, K))
    step = max(1, CHUNK_FLOATS // (K * free.size * D))
    for start in range(0, n, step):
        rows = slice(start, min(start + step, n))
        Xd = parts.design(X[rows])
        Pc = parts.proba(Xd)
        rest = Pc.sum(axis=1, keepdims=True) - Pc  # 1 - p_k without cancellation
        rest = np.maximum(rest, np.finfo(np.float64).tiny)
        Dkc = np.eye(K)[:, free][None] - Pc[:, None, free]  # (n, K, n_free)
        G = ((Dkc / rest[:, :, None])[..., None] * Xd[:, None, None, :]).reshape(
            Xd.shape[0], K, -1)
        P[rows] = Pc
        se[rows] = np.sqrt(np.maximum(np.einsum("nkq,qr,nkr->nk", G, V, G), 0.0))
        eta[rows] = np.log(np.maximum(Pc, np.finfo(np.float64).tiny)) - np.log(rest)
    half = -ndtri(alpha / 2) * se
    return ProbabilityInterval(P, expit(eta - half), expit(eta + half), se)
