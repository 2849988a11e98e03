r"""The delta method for functions of a fitted model's class probabilities.

Marginal effects (:mod:`._margins`) and intervals on predicted probabilities
(:mod:`._prediction_intervals`) are smooth functions :math:`f(\theta)` of the
free parameters; their covariance is :math:`J V J^\top` with :math:`V` the
parameters' covariance (any ``cov_type``) and :math:`J = \partial f /
\partial \theta`.  Both are built from the probabilities
:math:`p = \operatorname{softmax}(\tilde W \tilde x)` of a design row
:math:`\tilde x = (1, x)` and their derivative (the softmax Jacobian
:math:`\operatorname{diag}(p) - p p^\top` times :math:`\tilde x`)

.. math::

    \frac{\partial p_k}{\partial w_{ce}} = p_k (\delta_{kc} - p_c)\, \tilde x_e ,

taken over the free classes :math:`c` (the reference row is fixed at zero).

**Reference class.**  Probabilities do not depend on which class is the
reference, so neither does anything computed here.  A model fitted with
``reference_class=None`` (symmetric coding, identified only up to a common
shift of the rows) is recoded with its first class as the reference: same
probabilities, and the covariance of that identified parametrization.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from softmaxreg.functional import softmax

from ._covariance import compute_inference

__all__ = ["DeltaParts", "delta_parts", "probability_jacobian"]

# Floats held per row chunk by the per-row Jacobians.
CHUNK_FLOATS = 1 << 22


@dataclass
class DeltaParts:
    """What the delta method needs from a fitted model.

    Attributes
    ----------
    W : ndarray of shape (n_classes, n_design)
        Coefficients with the reference row zero, intercept first when fitted.
    free : ndarray of shape (n_free,)
        Indices of the free classes, in the order of the rows of ``cov``.
    cov : ndarray of shape (n_free * n_design, n_free * n_design)
        Covariance of the free parameters, class by class, intercept first.
    fit_intercept : bool
    classes : ndarray of shape (n_classes,)
    features : list of str, length n_features
    cov_type : str
    """

    W: np.ndarray
    free: np.ndarray
    cov: np.ndarray
    fit_intercept: bool
    classes: np.ndarray
    features: list
    cov_type: str

    def design(self, X):
        """Design rows ``(1, x)`` (or ``x``), float64, shape (n_rows, n_design)."""
        X = X.toarray() if sp.issparse(X) else np.asarray(X, dtype=np.float64)
        X = X.astype(np.float64, copy=False)
        return np.hstack([np.ones((X.shape[0], 1)), X]) if self.fit_intercept else X

    def proba(self, Xd):
        """Class probabilities of design rows, shape (n_rows, n_classes)."""
        return softmax(Xd @ self.W.T, axis=1)


def _penalty_message(what):
    return (
        f"{what} need the covariance of the maximum-likelihood estimate (the inverse "
        "information of the unpenalized likelihood); this model was fitted with a penalty, "
        "whose estimates are shrunk. Refit with penalty=None (and a reference_class) for them."
    )


def delta_parts(model, cov_type="nonrobust", groups=None, what="standard errors"):
    """The coefficients and covariance of a fitted unpenalized :class:`SoftmaxRegression`.

    Parameters
    ----------
    model : SoftmaxRegression
        Fitted with ``fit`` and ``penalty=None``.
    cov_type : str, default="nonrobust"
        Any type :meth:`SoftmaxRegression.inference` takes ("cluster" with ``groups``).
    groups : array_like of shape (n_samples,), default=None
    what : str
        What is being computed, for the error message of a penalized model.

    Returns
    -------
    DeltaParts
    """
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(model)
    if model.penalty is not None:
        raise ValueError(_penalty_message(what))
    loss = getattr(model, "_loss", None)
    if loss is None:
        raise ValueError(f"{what} need the training data of a full fit; call fit first.")
    coef = np.asarray(model.coef_, dtype=np.float64)
    intercept = np.asarray(model.intercept_, dtype=np.float64)
    if not model.fit_intercept:
        intercept = np.zeros_like(intercept)
    ref = loss.reference_class
    if ref is None and not hasattr(loss, "X"):  # a Dask fit keeps no rows to recode with
        raise ValueError(
            f"{what} of a model fitted on Dask data need a reference class: refit with "
            f"reference_class={model.classes_[0]!r} (or another label)."
        )
    if ref is None:
        # Symmetric coding: recode with the first class as reference (same probabilities).
        from softmaxreg.loss import LinearSoftmaxLoss

        ref = 0
        loss = LinearSoftmaxLoss(
            loss.X, loss.y, n_classes=loss.n_classes, sample_weight=loss.sample_weight,
            fit_intercept=loss.fit_intercept, reference_class=0,
        )
        coef, intercept = coef - coef[0], intercept - intercept[0]
        res = compute_inference(
            loss, coef, intercept, cov_type=cov_type, classes=model.classes_,
            feature_names=getattr(model, "feature_names_in_", None), groups=groups,
        )
    else:
        coef, intercept = coef - coef[ref], intercept - intercept[ref]
        res = model.inference(cov_type, groups)
    W = np.hstack([intercept[:, None], coef]) if model.fit_intercept else coef
    free = np.array([k for k in range(loss.n_classes) if k != ref])
    names = getattr(model, "feature_names_in_", None)
    features = ([str(v) for v in names] if names is not None
                else [f"x{j}" for j in range(coef.shape[1])])
    return DeltaParts(W, free, res.cov_params, bool(model.fit_intercept), model.classes_,
                      features, cov_type)


def probability_jacobian(P, Xd, free):
    r"""``dp_k / dw_ce = p_k (delta_kc - p_c) x_e`` for every row.

    Parameters
    ----------
    P : ndarray of shape (n_rows, n_classes)
    Xd : ndarray of shape (n_rows, n_design)
    free : ndarray of shape (n_free,)

    Returns
    -------
    ndarray of shape (n_rows, n_classes, n_free, n_design)

    Examples
    --------
    Two classes at p = (0.5, 0.5), design row (1, 2), class 1 free:
    dp_1/dw_1 = p_1 (1 - p_1) x = (0.25, 0.5), and dp_0/dw_1 is its negative.

    >>> import numpy as np
    >>> J = probability_jacobian(np.array([[0.5, 0.5]]), np.array([[1.0, 2.0]]), np.array([1]))
    >>> J[0, :, 0].tolist()
    [[-0.25, -0.5], [0.25, 0.5]]
    """
    K = P.shape[1]
    D = np.eye(K)[:, free][None] - P[:, None, free]  # (n, K, n_free): delta_kc - p_c
    return (P[:, :, None] * D)[..., None] * Xd[:, None, None, :]
