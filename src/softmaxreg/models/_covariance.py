r"""Covariance of the free parameters of a fitted softmax regression.

``compute_inference(loss, coef, intercept, *, cov_type, classes, feature_names,
reference_class, fit_intercept, penalty=None) -> InferenceResult``
    Coefficients, standard errors, z statistics, p-values, confidence
    intervals and the covariance of the free parameters, from a fitted
    :class:`~softmaxreg.loss.LinearSoftmaxLoss` (the training data, weights
    and coding of a fit) and the fitted ``coef`` (n_classes, n_features) and
    ``intercept`` (n_classes,).

**Free parameters and their order.**  With ``reference_class`` the row of that
class is fixed at zero and the free parameters are the other ``K - 1`` rows
(statsmodels ``MNLogit`` always takes the first class); they are listed class
by class in ``classes`` order, each class as ``intercept`` (when fitted) then
the features.  Row names are ``(class, feature)`` pairs.

**Covariance.**  Write :math:`\theta` for the free parameters,
:math:`\tilde x_i = (1, x_i)`, :math:`r_i = p_i - y_i` (fitted probabilities
minus one-hot targets, free classes only) and :math:`s_i` the sample weights,
read as *frequency* weights (an integer weight equals that many repeated rows;
:math:`n = \sum_i s_i` is the number of observations).  The observed
information of the log-likelihood is

.. math::

    I = \sum_i s_i \,\bigl(\operatorname{diag}(p_i) - p_i p_i^\top\bigr)
        \otimes \tilde x_i \tilde x_i^\top ,

block :math:`(k, l)` being :math:`\tilde X^\top \operatorname{diag}(s_i p_{ik}
(\delta_{kl} - p_{il})) \tilde X`, and the score of observation :math:`i`
is :math:`g_i = r_i \otimes \tilde x_i`.

* ``"nonrobust"``: :math:`I^{-1}` (inverse observed information);
* ``"HC0"``: the sandwich :math:`I^{-1} M I^{-1}` with
  :math:`M = \sum_i s_i g_i g_i^\top`, whose block :math:`(k, l)` is
  :math:`\tilde X^\top \operatorname{diag}(s_i r_{ik} r_{il}) \tilde X`
  (weights enter once, not squared: :math:`s_i` repeated rows contribute
  :math:`s_i` outer products);
* ``"HC1"``: what statsmodels' ``MNLogit.fit(cov_type="HC1")`` returns,
  which for discrete-choice models is the HC0 sandwich itself: statsmodels
  applies its ``n / (n - q)`` small-sample factor only to linear models, and
  its discrete models fall back to the uncorrected White matrix.  We follow
  it so that all three types equal statsmodels; a user who wants the OLS-style
  factor multiplies ``cov_params("HC0")`` by ``n / (n - q)``
  (``n = InferenceResult.n_obs``, ``q = params.size``).
* ``"cluster"`` (with ``groups``, one label per row): the cluster-robust
  sandwich :math:`c\, I^{-1} \bigl(\sum_g u_g u_g^\top\bigr) I^{-1}` with
  :math:`u_g = \sum_{i \in g} s_i g_i` the score of cluster :math:`g` and
  Stata's small-sample factor :math:`c = \frac{G}{G - 1}
  \frac{n - 1}{n - q}` (:math:`G` clusters), as statsmodels'
  ``cov_type="cluster"`` (``use_correction=True``, its default) applies it
  to ``MNLogit``.

With ``penalty=None`` and a reference class these equal statsmodels
``MNLogit`` (tested to 1e-4 relative; in practice ~1e-10).

**Penalized fits.**  With ``penalty="l2"`` and inverse strength ``C`` the
objective is :math:`C \cdot \mathrm{NLL} + \tfrac12 \lVert W \rVert^2`, and
the bread is the inverse of the *penalized* Hessian
:math:`(I + C^{-1} D)^{-1}` (:math:`D` = identity on the coefficients, zero on
the intercepts).  This is the Laplace approximation to the posterior
covariance under the prior :math:`W \sim N(0, C\,I)`; the estimates are shrunk
toward zero, so the z statistics and intervals are approximate Bayesian
statements, not unbiased frequentist tests.  With symmetric coding
(``reference_class=None``) and an intercept, the intercepts are identified
only up to a common shift: they are reported centred (summing to zero over
classes), with the covariance of that constrained parametrization (the
Moore-Penrose inverse of the Hessian, whose null space is that shift).  L1 and
elastic-net fits are refused: the objective is not differentiable at the
zeros the penalty creates.
"""

from __future__ import annotations

import numpy as np

from softmaxreg.loss import score_outer_products

from ._coding import (
    _check_reference,
    _classes,
    _design_columns,
    _display_order,
    _feature_names,
    _intercept_name,
    _label,
)
from ._identification import IdentificationError, check_identification
from ._inference_result import InferenceResult

__all__ = ["COV_TYPES", "compute_inference"]

COV_TYPES = ("nonrobust", "HC0", "HC1", "cluster")


def _group_codes(groups, n_samples):
    """Codes ``0..G-1`` of the cluster labels, checked: one per row, at least two clusters."""
    if groups is None:
        raise ValueError('cov_type="cluster" needs groups: one cluster label per training row.')
    groups = np.asarray(groups)
    if groups.ndim != 1 or groups.shape[0] != n_samples:
        raise ValueError(
            f"groups must have one label per training row ({n_samples}), got shape {groups.shape}."
        )
    if groups.dtype.kind == "f" and not np.all(np.isfinite(groups)):
        raise ValueError("groups contains NaN or inf; give every row a cluster label.")
    _, codes = np.unique(groups, return_inverse=True)
    n_groups = int(codes.max()) + 1 if codes.size else 0
    if n_groups < 2:
        raise ValueError(f'cov_type="cluster" needs at least two clusters, got {n_groups}.')
    return codes.ravel(), n_groups


def _invert(H, null, describe):
    """Inverse of a symmetric PD matrix (Moore-Penrose when ``null`` spans its null space).

    Computed on ``D^-1 H D^-1`` with ``D = sqrt(diag(H))``, which has a unit
    diagonal, so that neither the test for singularity nor the rounding depends
    on the units of the features: a column measured in thousands is as
    identified as the same column in units. With ``null``, the inverse of the
    scaled matrix is a generalized one, and projecting it onto the complement
    of ``null`` makes it the Moore-Penrose inverse of ``H``.
    """
    H = 0.5 * (H + H.T)
    diag = np.diag(H)
    d = np.sqrt(np.where(diag > 0, diag, 1.0))
    Hs = H / np.outer(d, d)
    u = None
    if null is not None:
        u = d * null
        u /= np.linalg.norm(u)
        Hs = Hs + np.outer(u, u)  # the scaled null direction, at the scale of the unit diagonal
    evals, evecs = np.linalg.eigh(Hs)
    tol = H.shape[0] * np.finfo(np.float64).eps * max(float(evals.max()), 1e-300) * 1e2
    if evals.min() <= tol:
        raise IdentificationError(describe(evecs[:, 0], max(float(evals.min()), 0.0) / float(evals.max())))
    inv = ((evecs / evals) @ evecs.T) / np.outer(d, d)
    if null is not None:
        n = null / np.linalg.norm(null)
        inv = inv - np.outer(n, n @ inv)
        inv = inv - np.outer(inv @ n, n)
    return 0.5 * (inv + inv.T)


def compute_inference(
    loss,
    coef,
    intercept,
    *,
    cov_type="nonrobust",
    classes=None,
    feature_names=None,
    reference_class=None,
    fit_intercept=None,
    penalty=None,
    check=True,
    groups=None,
):
    r"""Coefficients, standard errors, z-tests and covariance of a fitted model.

    See the module docstring for the formulas (observed information, HC0/HC1
    sandwich with frequency weights, the meaning under an L2 penalty).

    Parameters
    ----------
    loss : LinearSoftmaxLoss
        The objective of the fit: data, sample weights (frequency weights),
        intercept, reference coding and L2 strength ``1 / (C * sum(s))``.
    coef : ndarray of shape (n_classes, n_features)
        Fitted coefficients (any reference row is subtracted first).
    intercept : ndarray of shape (n_classes,)
        Fitted intercepts (ignored without an intercept).
    cov_type : {"nonrobust", "HC0", "HC1", "cluster"}, default="nonrobust"
        Inverse observed information, or the sandwich; "HC1" is statsmodels'
        ``MNLogit`` "HC1", which equals its "HC0"; "cluster" the
        cluster-robust sandwich over ``groups`` (see the module docstring).
    classes : array_like of shape (n_classes,), default=None
        Class labels (codes ``0..K-1`` when None).
    feature_names : array_like of shape (n_features,), default=None
        Feature names (``x0, x1, ...`` when None).
    reference_class : label, default=None
        Must match the loss's reference code (None: read it from the loss).
    fit_intercept : bool, default=None
        Must match the loss (None: read it from the loss).
    penalty : {None, "l2", "l1", "elasticnet"}, default=None
        The estimator's penalty.  The L2 strength is read from the loss;
        "l1" and "elasticnet" are refused (pass them so they can be).
    check : bool, default=True
        Run :func:`check_identification` first when there is no penalty.
    groups : array_like of shape (n_samples,), default=None
        Cluster label of every training row; required by ``cov_type="cluster"``.

    Returns
    -------
    InferenceResult

    Raises
    ------
    IdentificationError
        Symmetric coding without a penalty, collinear features, separation,
        or a singular information matrix.
    """
    if cov_type not in COV_TYPES:
        raise ValueError(f"cov_type must be one of {COV_TYPES}, got {cov_type!r}.")
    if groups is not None and cov_type != "cluster":
        raise ValueError(f'groups is used only with cov_type="cluster", not {cov_type!r}.')
    codes = _group_codes(groups, loss.n_samples) if cov_type == "cluster" else None
    if penalty in ("l1", "elasticnet"):
        raise ValueError(
            f"inference is not defined for penalty={penalty!r}: the L1 term is not "
            "differentiable at the zeros it creates. Refit with penalty=None (and a "
            "reference_class) or penalty='l2'."
        )
    if penalty not in (None, "l2"):
        raise ValueError(f"penalty must be None, 'l2', 'l1' or 'elasticnet', got {penalty!r}.")
    if fit_intercept is not None and bool(fit_intercept) != loss.fit_intercept:
        raise ValueError(
            f"fit_intercept={fit_intercept} but the loss was built with "
            f"fit_intercept={loss.fit_intercept}."
        )
    classes = _classes(classes, loss.n_classes)
    reference_class = _check_reference(loss, classes, reference_class)
    features = _feature_names(feature_names, loss.n_features)
    coef = np.asarray(coef, dtype=np.float64)
    intercept = (
        np.zeros(loss.n_classes) if intercept is None else np.asarray(intercept, dtype=np.float64)
    )
    lam = float(loss.l2_reg_strength)
    if penalty is None and lam > 0:
        penalty = "l2"
    symmetric = loss.reference_class is None
    if lam == 0:
        if symmetric:
            check_identification(
                loss, classes=classes, feature_names=features, require_reference=True,
                separation=False,
            )
        if check:
            check_identification(
                loss, classes=classes, feature_names=features, reference_class=reference_class
            )

    S = float(loss.sum_sample_weight)
    w = loss.pack(coef, intercept)
    if not np.all(np.isfinite(w)):
        raise ValueError("coef and intercept must be finite.")
    free = np.array([k for k in range(loss.n_classes) if k != loss.reference_class])
    d = loss.n_features + int(loss.fit_intercept)
    layout_cols = features + ([_intercept_name(features)] if loss.fit_intercept else [])
    null = None
    if symmetric and loss.fit_intercept:
        null = np.zeros(w.size)
        null[d - 1 :: d] = 1.0 / np.sqrt(free.size)
        # Report the centred intercepts (sum zero): the same probabilities.
        w = w.copy()
        w[d - 1 :: d] -= w[d - 1 :: d].mean()

    def describe(v, ratio):
        V = np.abs(v.reshape(free.size, d))
        k, j = np.unravel_index(np.argmax(V), V.shape)
        return (
            f"the information matrix is singular (condition ratio {ratio:.2e}); the weakest "
            f"direction loads most on class {_label(classes[free[k]])!r}, "
            f"feature {layout_cols[j]!r}. "
            "Check for separation or collinearity, drop or merge that feature, or fit with "
            "penalty='l2'."
        )

    H = S * loss.hessian(w)  # observed information (+ 1/C on penalized entries)
    bread = _invert(H, null, describe)
    q = w.size - (0 if null is None else 1)
    if cov_type == "nonrobust":
        cov = bread
    else:
        W_coef, b = loss.unpack(w)
        cov = bread @ score_outer_products(loss, W_coef, b, None if codes is None else codes[0]) @ bread
        if codes is not None:
            n_groups = codes[1]
            cov *= n_groups / (n_groups - 1.0) * (S - 1.0) / (S - q)
        cov = 0.5 * (cov + cov.T)

    order = _display_order(free.size, loss.n_features, loss.fit_intercept)
    params = w[order]
    cov = cov[np.ix_(order, order)]
    row_classes = [_label(classes[k]) for k in free for _ in range(d)]
    row_features = [_design_columns(loss, features)[j] for _ in free for j in range(d)]
    W_coef, _ = loss.unpack(w)
    log_lik = -S * (loss.loss(w) - 0.5 * lam * float(np.sum(W_coef * W_coef)))
    return InferenceResult(
        params,
        cov_params=cov,
        classes=row_classes,
        features=row_features,
        cov_type=cov_type,
        reference_class=reference_class,
        n_obs=S,
        log_likelihood=log_lik,
        log_likelihood_null=_null_log_likelihood(loss) if loss.fit_intercept else None,
        penalty=penalty,
        n_classes=loss.n_classes,
        fit_intercept=loss.fit_intercept,
    )


def _null_log_likelihood(loss):
    """Log-likelihood of the intercept-only model: sum_i s_i log(pi_{y_i}), pi the class shares."""
    if loss.y.ndim == 1:
        counts = np.bincount(loss.y, weights=loss.sample_weight, minlength=loss.n_classes)
    else:
        counts = loss.sample_weight @ np.asarray(loss.y, dtype=np.float64)
    share = counts / counts.sum()
    seen = counts > 0
    return float(np.sum(counts[seen] * np.log(share[seen])))
