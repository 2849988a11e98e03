r"""Statistical inference for softmax regression: covariance, z-tests, identification.

Two entry points, both working on a fitted :class:`~softmaxreg.loss.LinearSoftmaxLoss`
(the training data, weights and coding of a fit) and the fitted ``coef``
(n_classes, n_features) and ``intercept`` (n_classes,):

``compute_inference(loss, coef, intercept, *, cov_type, classes, feature_names,
reference_class, fit_intercept, penalty=None) -> InferenceResult``
    Coefficients, standard errors, z statistics, p-values, confidence
    intervals and the covariance of the free parameters.

``check_identification(loss, coef=None, intercept=None, *, classes=None,
feature_names=None, reference_class=None, separation="auto", rtol=None,
require_reference=False) -> None``
    Raises :class:`IdentificationError` (a ``ValueError``) naming the classes
    and features when the maximum-likelihood estimate does not exist or is not
    unique.  ``SoftmaxRegression.fit`` calls it after a ``penalty=None`` fit;
    ``compute_inference`` calls it too before any unpenalized inference.

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

**Identification criteria** (see :func:`check_identification`).

* *Rank*: the design :math:`\tilde X` restricted to rows of positive weight
  is QR-factorized, columns in order (intercept first, then features); column
  :math:`j` depends on the earlier ones when
  :math:`|R_{jj}| \le \mathrm{rtol} \cdot \lVert \tilde X_j \rVert`, with
  ``rtol = 10 (eps_X + sqrt(max(n_rows, n_columns)) eps_64)`` by default: the
  rounding of the data in their own dtype (a relation that holds in float32
  holds to about ``eps_32``) plus the float64 error of the QR (sparse
  ``X``: in-order Cholesky of the Gram matrix, Schur complement
  ``<= rtol * ||X_j||^2``).  The message gives the dependence
  (``x3 = 1 * x1 + 1 * x2``, a constant column, a zero column).  Fewer rows
  than columns is reported at once; designs wider than ``_RANK_MAX_COLUMNS``
  are not checked (a warning says so).
* *Separation* (Albert and Anderson, 1984): the MLE exists iff no direction
  :math:`\theta \ne 0` has all margins
  :math:`m_{ik}(\theta) = \tilde x_i^\top(\theta_{y_i} - \theta_k) \ge 0`
  (:math:`k \ne y_i`; the reference row is zero) with one of them positive,
  since along such a direction the likelihood never decreases.  By Stiemke's
  theorem of the alternative, no such direction exists iff some weights
  :math:`\lambda_{ik} \ge 1` satisfy :math:`\sum_{ik} \lambda_{ik}
  \partial m_{ik} / \partial \theta = 0`: a feasibility linear program with
  one equality row per parameter (HiGHS through :func:`scipy.optimize.linprog`,
  on max-abs scaled columns).  When it is infeasible, the program
  :math:`\min \lVert \theta \rVert_1` subject to :math:`m_{ik}(\theta) \ge 0`
  and :math:`\sum_{ik} m_{ik}(\theta) \ge 1` gives a sparse separating
  direction, whose non-zero entries name the features and whose strictly
  positive margins name the classes.  Because adding rows only adds
  constraints, a random subset of rows that is *not* separable proves the
  full data are not either: problems larger than ``_LP_BUDGET`` non-zeros are
  first checked on such a subset.

Examples
--------
A tiny two-class problem whose only feature perfectly separates the classes:

>>> import numpy as np
>>> from softmaxreg.loss import LinearSoftmaxLoss
>>> from softmaxreg.models._inference import check_identification
>>> X = np.array([[-2.0], [-1.0], [1.0], [2.0]])
>>> loss = LinearSoftmaxLoss(X, np.array([0, 0, 1, 1]), reference_class=0)
>>> check_identification(loss, classes=np.array(["no", "yes"]), feature_names=["dose"],
...                      reference_class="no")
Traceback (most recent call last):
...
softmaxreg.models._inference.IdentificationError: perfect or quasi-complete separation: ...
"""

from __future__ import annotations

import warnings
import weakref

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.optimize import linprog
from scipy.special import ndtr, ndtri

from softmaxreg.functional import softmax

__all__ = [
    "IdentificationError",
    "InferenceResult",
    "InferenceSummary",
    "check_identification",
    "compute_inference",
]

COV_TYPES = ("nonrobust", "HC0", "HC1")

# Above this many non-zeros in the separation LP's constraint matrix, a random
# subset of rows is checked first (a non-separable subset settles the question).
_LP_BUDGET = 500_000
# Seconds HiGHS may spend on one of the separation LPs.
_LP_TIME_LIMIT = 60.0

# Losses whose data passed the full check (rank and separation), with the
# rtol used: a fit followed by inference for several cov_types checks once.
_VERIFIED = weakref.WeakKeyDictionary()

# Widest design (columns incl. the intercept) the identification check handles.
_RANK_MAX_COLUMNS = 2000

# Floats held per chunk when forming the per-sample scores of the sandwich.
_CHUNK_FLOATS = 1 << 22


class IdentificationError(ValueError):
    """The coefficients are not identified: the MLE does not exist or is not unique.

    Raised with a message that names the classes and features involved and
    says what to do (add a penalty, drop or merge features, choose a reference
    class).
    """


# -- names and coding -----------------------------------------------------------------


def _label(v):
    """A class label as a plain Python object (``'c'``, not ``np.str_('c')``)."""
    return v.item() if isinstance(v, np.generic) else v


def _feature_names(feature_names, n_features):
    if feature_names is None:
        return [f"x{j}" for j in range(n_features)]
    names = [str(v) for v in np.asarray(feature_names, dtype=object).tolist()]
    if len(names) != n_features:
        raise ValueError(f"feature_names has {len(names)} entries but X has {n_features} columns.")
    return names


def _intercept_name(features):
    return "(intercept)" if "intercept" in features else "intercept"


def _classes(classes, n_classes):
    if classes is None:
        return np.arange(n_classes)
    classes = np.asarray(classes)
    if classes.shape != (n_classes,):
        raise ValueError(
            f"classes must have {n_classes} entries (one per class), got {classes.shape}."
        )
    return classes


def _check_reference(loss, classes, reference_class):
    """The reference class label, checked against the loss's reference code."""
    code = loss.reference_class
    if reference_class is None:
        if code is not None:
            return _label(classes[code])
        return None
    if code is None or classes[code] != reference_class:
        raise ValueError(
            f"reference_class={reference_class!r} does not match the loss's coding "
            f"(reference code {code}); build the loss with the same reference class."
        )
    return reference_class


def _design_columns(loss, features):
    """Names of the columns of the augmented design, intercept first."""
    return ([_intercept_name(features)] if loss.fit_intercept else []) + list(features)


def _design_columns_intercept(columns):
    """Name of the intercept column among the design columns (None without one)."""
    return columns[0] if columns and columns[0] in ("intercept", "(intercept)") else None


def _display_order(n_free, n_features, fit_intercept):
    """Permutation from the loss's layout (intercept last) to intercept-first."""
    d = n_features + int(fit_intercept)
    per_class = ([d - 1] + list(range(d - 1))) if fit_intercept else list(range(d))
    return np.concatenate([f * d + np.asarray(per_class, dtype=np.intp) for f in range(n_free)])


def _row_chunks(n_rows, width, min_rows=1):
    step = max(min_rows, _CHUNK_FLOATS // max(width, 1))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def _dense_rows(X, rows, fit_intercept):
    """Rows of the augmented design ``(1, x_i)`` (intercept first), float64."""
    Xc = X[rows]
    Xc = Xc.toarray() if sp.issparse(Xc) else np.asarray(Xc)
    Xc = Xc.astype(np.float64, copy=False)
    if fit_intercept:
        Xc = np.hstack([np.ones((Xc.shape[0], 1)), Xc])
    return Xc


def _targets(loss, rows):
    y = loss.y[rows]
    if y.ndim == 2:
        return np.asarray(y, dtype=np.float64)
    Y = np.zeros((y.shape[0], loss.n_classes))
    Y[np.arange(y.shape[0]), y] = 1.0
    return Y


# -- identification -----------------------------------------------------------------


def _dependent_columns(loss, rtol):
    """In-order rank check of the design (rows of positive weight).

    Returns ``(R, dependent)`` with ``R`` the triangular factor of the design
    with columns ``(intercept, features)`` (``R^T R`` is its Gram matrix) and
    ``dependent`` the indices of the columns lying (numerically) in the span
    of the earlier ones.  Dense ``X``: Householder QR over row chunks, column
    ``j`` dependent when ``|R_jj| <= rtol ||X_j||``.  Sparse ``X``: the Gram
    matrix (a sparse product) and an in-order Cholesky, column ``j``
    dependent when its Schur complement is ``<= rtol ||X_j||^2`` (relative
    residual below ``sqrt(rtol)``: forming the Gram squares the condition).
    """
    X, fit_intercept = loss.X, loss.fit_intercept
    keep = np.flatnonzero(loss.sample_weight > 0)
    d = loss.n_features + int(fit_intercept)
    if rtol is None:
        dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
        eps64 = np.finfo(np.float64).eps
        rtol = 10.0 * (np.finfo(dtype).eps + np.sqrt(max(keep.size, d)) * eps64)
    if sp.issparse(X):
        Xk = sp.csr_matrix(X)[keep].astype(np.float64)
        G = np.asarray((Xk.T @ Xk).todense())
        if fit_intercept:
            colsum = np.asarray(Xk.sum(axis=0)).ravel()
            G = np.block([[np.array([[float(keep.size)]]), colsum[None, :]], [colsum[:, None], G]])
        return _ordered_cholesky(G, rtol)
    R = np.zeros((0, d))
    for rows in _row_chunks(keep.size, d, min_rows=4 * d):
        block = _dense_rows(X, keep[rows], fit_intercept)
        R = scipy.linalg.qr(np.vstack([R, block]), mode="r", check_finite=False)[0][:d]
    if R.shape[0] < d:
        R = np.vstack([R, np.zeros((d - R.shape[0], d))])
    norms = np.linalg.norm(R, axis=0)
    diag = np.abs(np.diag(R))
    dependent = [j for j in range(d) if diag[j] <= rtol * norms[j] or norms[j] == 0]
    return R, dependent


def _ordered_cholesky(G, rtol):
    """Upper ``R`` with ``R^T R = G`` taken column by column, skipping dependent columns."""
    d = G.shape[0]
    R = np.zeros((d, d))
    independent, dependent = [], []
    for j in range(d):
        if independent:
            idx = np.asarray(independent)
            R[idx, j] = scipy.linalg.solve_triangular(
                R[np.ix_(idx, idx)], G[idx, j], trans="T", check_finite=False
            )
        schur = G[j, j] - float(R[:, j] @ R[:, j])
        if G[j, j] == 0 or schur <= rtol * G[j, j]:
            dependent.append(j)
        else:
            R[j, j] = np.sqrt(schur)
            independent.append(j)
    return R, dependent


def _format_combination(coefs, names):
    big = np.max(np.abs(coefs)) if coefs.size else 0.0
    terms = [
        f"{c:.4g} * {n}" for c, n in zip(coefs, names) if big > 0 and abs(c) > 1e-8 * big
    ]
    return " + ".join(terms).replace("+ -", "- ") if terms else "0"


def _rank_message(loss, R, dependent, columns):
    lines = []
    for j in dependent:
        name = columns[j]
        if np.linalg.norm(R[:, j]) == 0:
            lines.append(f"feature {name!r} is zero on every sample")
            continue
        earlier = [i for i in range(j) if i not in dependent]
        coefs = np.linalg.lstsq(R[:, earlier], R[:, j], rcond=None)[0]
        names = [columns[i] for i in earlier]
        big = np.max(np.abs(coefs))
        if loss.fit_intercept and np.all(np.abs(coefs[1:]) <= 1e-8 * big):
            lines.append(
                f"feature {name!r} is constant ({coefs[0]:.4g}), duplicating the intercept"
            )
        else:
            lines.append(f"{name} = {_format_combination(coefs, names)}")
    named = [columns[j] for j in dependent]
    return (
        "the coefficients are not identified: the design is rank deficient ("
        + "; ".join(lines)
        + f"). Drop or merge the feature(s) {named}, or fit with a penalty (penalty='l2')."
    )


def _margin_matrix(Xt, codes, free_index, n_classes):
    """Sparse A with (A theta)_{ik} = x_i . (theta_{y_i} - theta_k) for k != y_i.

    ``Xt`` is the (scaled, augmented) design as CSR; the non-zeros of row ``i``
    appear twice in each of its ``K - 1`` rows of ``A`` (once per free class).
    Returns ``(A, sample, own, other)``: the sample, its class and the compared
    class of every row of ``A``.
    """
    Xt = sp.csr_matrix(Xt)
    n, d = Xt.shape
    n_free = int(np.sum(free_index >= 0))
    others = np.array(
        [[k for k in range(n_classes) if k != c] for c in range(n_classes)], dtype=np.intp
    ).reshape(n_classes, n_classes - 1)
    sample = np.repeat(np.arange(n), n_classes - 1)
    own = codes[sample]
    other = others[codes].ravel()
    lengths = np.diff(Xt.indptr)
    rows, cols, vals = [], [], []
    for cls, sign in ((own, 1.0), (other, -1.0)):
        block = free_index[cls]
        pairs = np.flatnonzero(block >= 0)
        counts = lengths[sample[pairs]]
        starts = Xt.indptr[sample[pairs]]
        # Positions of the non-zeros of each pair's sample row, concatenated.
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        pos = np.repeat(starts, counts) + offsets
        rows.append(np.repeat(pairs, counts))
        cols.append(np.repeat(block[pairs], counts) * d + Xt.indices[pos])
        vals.append(sign * Xt.data[pos])
    A = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(sample.size, n_free * d),
    )
    return A, sample, own, other


def _overlap_certificate(A):
    """Stiemke's alternative: is there a weight vector lam >= 1 with A^T lam = 0?

    True proves that no direction has all margins >= 0 and one > 0 (no
    separation); False proves separation; None when HiGHS could not decide.
    This form has only ``A.shape[1]`` equality rows and is fast to decide
    either way, unlike the primal LP, which is slow to prove infeasibility.
    """
    res = linprog(
        np.zeros(A.shape[0]), A_eq=A.T.tocsr(), b_eq=np.zeros(A.shape[1]), bounds=(1, None),
        method="highs", options={"time_limit": _LP_TIME_LIMIT},
    )
    return {0: True, 2: False}.get(res.status)


def _separating_direction(A):
    """A sparse separating direction: min ||theta||_1, A theta >= 0, sum(A theta) >= 1."""
    m = A.shape[1]
    colsum = np.asarray(A.sum(axis=0)).ravel()
    # theta = u - v with u, v >= 0; minimize sum(u + v).
    A_ub = sp.vstack(
        [sp.hstack([-A, A]), sp.csr_matrix(np.concatenate([-colsum, colsum])[None, :])]
    ).tocsr()
    b_ub = np.concatenate([np.zeros(A.shape[0]), [-1.0]])
    res = linprog(
        np.ones(2 * m), A_ub=A_ub, b_ub=b_ub, bounds=(0, None), method="highs",
        options={"time_limit": _LP_TIME_LIMIT},
    )
    if res.status != 0:
        return None
    return res.x[:m] - res.x[m:]


def _separation_message(theta, A, sample, own, other, classes, columns, free_index, d, scale):
    margins = A @ theta
    strict = margins > 1e-7 * max(float(margins.max()), 1e-300)
    # Features: non-zero entries of the (unscaled) direction.
    T = np.zeros((free_index.size, d))
    T[free_index >= 0] = (theta.reshape(-1, d) / scale)
    size = np.abs(T)
    used = np.flatnonzero(size.max(axis=0) > 1e-7 * size.max())
    intercept = _design_columns_intercept(columns)
    feats = [columns[j] for j in used if columns[j] != intercept]
    by = f"the features {feats}" if feats else "the intercept alone (a class without samples?)"
    if feats and intercept in [columns[j] for j in used]:
        by += " with the intercept"
    # Classes: a class in every strictly separated pair is the one set apart.
    pairs = {(int(a), int(b)) for a, b in zip(own[strict], other[strict])}
    involved = {c for pair in pairs for c in pair}
    hubs = [c for c in sorted(involved) if all(c in pair for pair in pairs)]
    # Samples whose fitted probability of their class tends to one.
    n = int(sample.max()) + 1 if sample.size else 0
    all_strict = np.bincount(sample[strict], minlength=n) == np.bincount(sample, minlength=n)
    n_perfect = int(np.sum(all_strict))
    if len(hubs) == 1:
        rest = [_label(classes[c]) for c in sorted(involved) if c != hubs[0]]
        what = f"class {_label(classes[hubs[0]])!r} is separated from {rest}"
    else:
        what = "classes " + ", ".join(
            f"{_label(classes[a])!r} / {_label(classes[b])!r}"
            for a, b in sorted({tuple(sorted(p)) for p in pairs})
        ) + " are separated"
    # The LP's vertex solution may touch the closest samples (zero margin), so
    # it cannot tell perfect from quasi-complete separation; the count is a floor.
    return (
        f"perfect or quasi-complete separation: {what} by {by}; along this direction the "
        f"likelihood keeps increasing (at least {n_perfect} samples get fitted probability "
        "-> 1 for their class), so the maximum-likelihood estimate does not exist and the "
        "coefficients diverge. Fit with a penalty (penalty='l2'), or drop or merge the "
        "named features or classes."
    )


def check_identification(
    loss,
    coef=None,
    intercept=None,
    *,
    classes=None,
    feature_names=None,
    reference_class=None,
    separation="auto",
    rtol=None,
    require_reference=False,
):
    r"""Raise :class:`IdentificationError` when the unpenalized MLE is not identified.

    Checks, in order (criteria in the module docstring):

    1. with ``require_reference`` and symmetric coding (the loss has no
       reference class and no L2 penalty): the softmax is invariant to adding
       one vector to every class row, so the coefficients are not unique;
    2. rank of the design: collinear, constant or all-zero features;
    3. separation: a direction along which the likelihood never decreases
       (perfect or quasi-complete separation), by a linear program.

    Parameters
    ----------
    loss : LinearSoftmaxLoss
        The fitted objective (its ``X``, ``y``, ``sample_weight``,
        ``fit_intercept`` and reference coding are read).
    coef, intercept : ndarray, default=None
        Fitted coefficients; accepted for the estimator's convenience, not
        needed by the criteria (which look at the data only).
    classes : array_like of shape (n_classes,), default=None
        Class labels, for the messages (codes when None).
    feature_names : array_like of shape (n_features,), default=None
        Feature names, for the messages (``x0, x1, ...`` when None).
    reference_class : label, default=None
        Reference label, checked against the loss's coding.
    separation : {"auto", True, False}, default="auto"
        Run the separation LP.  "auto" checks large problems on a random
        subset first and warns when that leaves the answer open; True then
        runs the full LP anyway.
    rtol : float, default=None
        Relative tolerance of the rank check; None gives
        ``10 (eps_X + sqrt(max(n, d)) eps_64)`` (see the module docstring).
    require_reference : bool, default=False
        Also refuse symmetric coding without a penalty (inference needs it;
        prediction does not).

    Raises
    ------
    IdentificationError
        With the classes and features involved and what to do.
    """
    if separation not in ("auto", True, False):
        raise ValueError(f"separation must be 'auto', True or False, got {separation!r}.")
    classes = _classes(classes, loss.n_classes)
    _check_reference(loss, classes, reference_class)
    features = _feature_names(feature_names, loss.n_features)
    columns = _design_columns(loss, features)
    if require_reference and loss.reference_class is None and not loss.l2_reg_strength:
        raise IdentificationError(
            "with reference_class=None (symmetric coding) and no penalty the coefficients are "
            "identified only up to a vector added to every class row. Choose a reference "
            f"class (e.g. reference_class={_label(classes[0])!r}) or fit with penalty='l2'."
        )
    if separation is not False and _VERIFIED.get(loss, ()) == (rtol,):
        return
    n_rows = int(np.count_nonzero(loss.sample_weight > 0))
    if n_rows < len(columns):
        raise IdentificationError(
            f"the coefficients are not identified: {n_rows} samples (of positive weight) for "
            f"{len(columns)} design columns per class, so the features are linearly dependent. "
            "Fit with a penalty (penalty='l2') or use fewer features."
        )
    if len(columns) > _RANK_MAX_COLUMNS:
        warnings.warn(
            f"identification check skipped: {len(columns)} design columns exceed "
            f"{_RANK_MAX_COLUMNS}; collinearity and separation are not checked.",
            UserWarning,
            stacklevel=2,
        )
        return
    R, dependent = _dependent_columns(loss, rtol)
    if dependent:
        raise IdentificationError(_rank_message(loss, R, dependent, columns))
    if separation is False:
        return
    if loss.y.ndim == 1 and not _check_separation(loss, classes, columns, force=separation is True):
        return
    _VERIFIED[loss] = (rtol,)


def _check_separation(loss, classes, columns, force):
    """True when the data are proven non-separable, False when left open; raises if separated."""
    keep = np.flatnonzero(loss.sample_weight > 0)
    K = loss.n_classes
    d = loss.n_features + int(loss.fit_intercept)
    free_index = np.full(K, -1, dtype=np.intp)
    free = [k for k in range(K) if k != loss.reference_class]
    free_index[free] = np.arange(len(free))
    codes_all = loss.y[keep]
    # Columns scaled to max-abs one (scaling does not change feasibility).
    Xk = loss.X[keep] if keep.size < loss.n_samples else loss.X
    if sp.issparse(Xk):
        Xk = sp.csr_matrix(Xk, dtype=np.float64)
        scale = np.asarray(abs(Xk).max(axis=0).todense()).ravel()
    else:
        scale = np.abs(Xk).max(axis=0).astype(np.float64)
    scale[scale == 0] = 1.0
    Xk = sp.csr_matrix(Xk, dtype=np.float64) @ sp.diags(1.0 / scale)
    if loss.fit_intercept:
        Xk = sp.hstack([np.ones((keep.size, 1)), Xk], format="csr")
        scale = np.concatenate([[1.0], scale])

    def margins(rows):
        return _margin_matrix(Xk[rows], codes_all[rows], free_index, K)

    row_nnz = Xk.nnz / keep.size
    nnz = int(2 * Xk.nnz * (K - 1))
    if nnz > _LP_BUDGET:
        m = int(min(keep.size, max(1, _LP_BUDGET // (2 * (K - 1) * row_nnz))))
        subset = np.sort(np.random.default_rng(0).choice(keep.size, size=m, replace=False))
        if _overlap_certificate(margins(subset)[0]):
            return True  # a non-separable subset proves the full data non-separable
        if not force:
            warnings.warn(
                f"separation check left open: a random subset of {m} rows is separable and "
                f"the full problem ({nnz} non-zeros) is above the budget; pass "
                "separation=True to check all rows.",
                UserWarning,
                stacklevel=3,
            )
            return False
    A, sample, own, other = margins(np.arange(keep.size))
    overlap = _overlap_certificate(A)
    if overlap:
        return True
    if overlap is None:
        warnings.warn(
            "the separation check was inconclusive (the LP solver stopped); the fit may "
            "still be (quasi-)separated.",
            UserWarning,
            stacklevel=3,
        )
        return False
    theta = _separating_direction(A)
    if theta is None:
        raise IdentificationError(
            "perfect or quasi-complete separation: some linear combination of the features "
            "predicts part of the classes perfectly, so the maximum-likelihood estimate does "
            "not exist and the coefficients diverge (the features involved could not be "
            "isolated in time). Fit with a penalty (penalty='l2')."
        )
    raise IdentificationError(
        _separation_message(theta, A, sample, own, other, classes, columns, free_index, d, scale)
    )


# -- covariance -------------------------------------------------------------------------


def _meat(loss, coef, intercept):
    """sum_i s_i g_i g_i^T in the loss's flat layout (free classes, intercept last)."""
    free = np.array([k for k in range(loss.n_classes) if k != loss.reference_class])
    d = loss.n_features + int(loss.fit_intercept)
    q = free.size * d
    M = np.zeros((q, q))
    for rows in _row_chunks(loss.n_samples, q + loss.n_classes):
        Xc = loss.X[rows]
        Xc = Xc.toarray() if sp.issparse(Xc) else np.asarray(Xc)
        Xc = Xc.astype(np.float64, copy=False)
        Z = Xc @ coef.T
        if loss.fit_intercept:
            Z += intercept
            Xc = np.hstack([Xc, np.ones((Xc.shape[0], 1))])
        Rres = (softmax(Z, axis=1) - _targets(loss, rows))[:, free]
        G = (Rres[:, :, None] * Xc[:, None, :]).reshape(Xc.shape[0], q)
        M += G.T @ (loss.sample_weight[rows][:, None] * G)
    return M


def _invert(H, null, describe):
    """Inverse of a symmetric PD matrix (Moore-Penrose when ``null`` spans its null space)."""
    H = 0.5 * (H + H.T)
    top = float(np.max(np.abs(np.diag(H)))) if H.size else 1.0
    if null is not None:
        H = H + top * np.outer(null, null)
    evals, evecs = np.linalg.eigh(H)
    tol = H.shape[0] * np.finfo(np.float64).eps * max(float(evals.max()), 1e-300) * 1e2
    if evals.min() <= tol:
        v = evecs[:, 0]
        raise IdentificationError(describe(v, evals.min() / evals.max()))
    inv = (evecs / evals) @ evecs.T
    if null is not None:
        inv -= np.outer(null, null) / top
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
    cov_type : {"nonrobust", "HC0", "HC1"}, default="nonrobust"
        Inverse observed information, or the sandwich; "HC1" is statsmodels'
        ``MNLogit`` "HC1", which equals its "HC0" (see the module docstring).
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
        cov = bread @ _meat(loss, W_coef, b) @ bread
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


# -- results ----------------------------------------------------------------------------


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

    Examples
    --------
    From stored arrays: an estimate of 2 with standard error 1 has z = 2,
    p = 2 Phi(-2) = 0.0455 and 95% interval 2 -/+ 1.96.

    >>> from softmaxreg.models._inference import InferenceResult
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

    def to_frame(self, alpha=0.05):
        """The table as a pandas DataFrame indexed by (class, feature)."""
        import pandas as pd

        ci = self.conf_int(alpha)
        lo, hi = _ci_labels(alpha)
        index = pd.MultiIndex.from_tuples(self.index, names=["class", "feature"])
        return pd.DataFrame(
            {
                "coef": self.params,
                "std err": self.bse,
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
                                 "log_likelihood_null", "penalty", "n_classes") if k in d},
        )

    def summary(self, alpha=0.05):
        """Coefficient table (:class:`InferenceSummary`); ``print`` it for the text."""
        return InferenceSummary(self, alpha)

    def __repr__(self):
        return (
            f"InferenceResult(n_params={self.params.size}, cov_type={self.cov_type!r}, "
            f"reference_class={self.reference_class!r})"
        )


def _ci_labels(alpha):
    return f"[{alpha / 2:g}", f"{1 - alpha / 2:g}]"


def _fmt(v, width=10):
    """Four decimals, or scientific notation where that would keep fewer than 3 digits."""
    if v == 0 or 0.01 <= abs(v) < 1e5:
        s = f"{v:.4f}"
    else:
        s = f"{v:.3e}"
    return s.rjust(width)


class InferenceSummary:
    """Printable coefficient table: one block per class, statsmodels-style.

    ``str(summary)`` (or :meth:`as_text`) is an aligned text table;
    :meth:`to_frame` the same numbers as a DataFrame indexed by
    ``(class, feature)`` with columns ``coef, std err, z, P>|z|`` and the two
    interval bounds.  The summary also reads like that table:
    ``summary["coef"]``, ``summary.loc[(1, "x0")]``, ``len(summary)`` and any
    other DataFrame attribute go to :meth:`to_frame`.
    """

    def __init__(self, result, alpha=0.05):
        alpha = float(alpha)
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {alpha}.")
        self.result = result
        self.alpha = alpha

    def to_frame(self):
        """The table as a pandas DataFrame (see the class docstring)."""
        return self.result.to_frame(self.alpha)

    def as_text(self):
        """The aligned text table (statsmodels' ``Summary.as_text``)."""
        return self.__str__()

    def __getitem__(self, key):
        return self.to_frame()[key]

    def __len__(self):
        return self.result.params.size

    def __getattr__(self, name):
        # Only reached for names the summary lacks: read them off the DataFrame.
        if name.startswith("__") or name in ("result", "alpha"):
            raise AttributeError(name)
        return getattr(self.to_frame(), name)

    def _repr_html_(self):
        return self.to_frame()._repr_html_()

    def __str__(self):
        r = self.result
        lo, hi = _ci_labels(self.alpha)
        cols = ["coef", "std err", "z", "P>|z|", lo, hi]
        ci = r.conf_int(self.alpha)
        names = [str(f) for f in r.features]
        name_w = max(12, max(len(n) for n in names) + 2)
        width = name_w + 11 * len(cols)
        rule, thin = "=" * width, "-" * width
        ref = "none (symmetric)" if r.reference_class is None else repr(r.reference_class)
        meta = [
            ("Observations:", "-" if r.n_obs is None else f"{r.n_obs:g}"),
            ("Classes:", "-" if r.n_classes is None else str(r.n_classes)),
            ("Reference class:", ref),
            ("Covariance type:", r.cov_type),
            ("Penalty:", "none" if r.penalty is None else str(r.penalty)),
            ("Log-likelihood:", "-" if r.log_likelihood is None else f"{r.log_likelihood:.4f}"),
            ("Parameters:", str(r.params.size)),
            ("Pseudo R-squ.:", "-" if r.pseudo_rsquared is None else f"{r.pseudo_rsquared:.4f}"),
        ]
        half = width // 2
        lines = ["Softmax regression results".center(width), rule]
        for i in range(0, len(meta), 2):
            left = meta[i][0] + meta[i][1].rjust(half - 2 - len(meta[i][0]))
            right = ""
            if i + 1 < len(meta):
                right = meta[i + 1][0] + meta[i + 1][1].rjust(width - half - len(meta[i + 1][0]))
            lines.append(left.ljust(half) + right)
        lines.append(rule)
        header = "".join(c.rjust(11) for c in cols)
        current = object()
        for j in range(r.params.size):
            if j == 0 or r.classes[j] != current:
                current = r.classes[j]
                if j:
                    lines.append(thin)
                lines.append(f"class = {current}"[: name_w - 1].ljust(name_w) + header)
                lines.append(thin)
            p = r.pvalues[j]
            row = [
                _fmt(r.params[j]),
                _fmt(r.bse[j]),
                f"{r.zvalues[j]:.3f}".rjust(10),
                f"{p:.3f}".rjust(10),
                _fmt(ci[j, 0]),
                _fmt(ci[j, 1]),
            ]
            lines.append(names[j].ljust(name_w) + "".join(" " + c for c in row))
        lines.append(rule)
        if r.penalty == "l2":
            lines.append(
                "Penalized fit: covariance is the inverse penalized Hessian (Laplace "
                "approximation); intervals are approximate."
            )
        return "\n".join(lines)

    def __repr__(self):
        return self.__str__()
