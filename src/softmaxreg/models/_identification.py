r"""Identification of the unpenalized MLE: rank of the design, separation.

``check_identification(loss, coef=None, intercept=None, *, classes=None,
feature_names=None, reference_class=None, separation="auto", rtol=None,
require_reference=False) -> None``
    Raises :class:`IdentificationError` (a ``ValueError``) naming the classes
    and features when the maximum-likelihood estimate does not exist or is not
    unique.  ``SoftmaxRegression.fit`` calls it after a ``penalty=None`` fit;
    ``compute_inference`` calls it too before any unpenalized inference.

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
  than columns is reported at once; designs wider than ``RANK_CHECK_MAX_COLUMNS``
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
Examples
--------
A tiny two-class problem whose only feature perfectly separates the classes:

>>> import numpy as np
>>> from softmaxreg.loss import LinearSoftmaxLoss
>>> from softmaxreg.models import check_identification
>>> X = np.array([[-2.0], [-1.0], [1.0], [2.0]])
>>> loss = LinearSoftmaxLoss(X, np.array([0, 0, 1, 1]), reference_class=0)
>>> check_identification(loss, classes=np.array(["no", "yes"]), feature_names=["dose"],
...                      reference_class="no")
Traceback (most recent call last):
...
softmaxreg.models._identification.IdentificationError: perfect or quasi-complete separation: ...
"""

from __future__ import annotations

import types
import warnings
import weakref

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from scipy.optimize import linprog

from ._coding import (
    _check_reference,
    _classes,
    _dense_rows,
    _design_columns,
    _design_columns_intercept,
    _feature_names,
    _label,
    _row_chunks,
)

__all__ = ["IdentificationError", "check_identification", "check_design_rank", "RANK_CHECK_MAX_COLUMNS"]

# Above this many non-zeros in the separation LP's constraint matrix, a random
# subset of rows is checked first (a non-separable subset settles the question).
_LP_BUDGET = 500_000
# Seconds HiGHS may spend on one of the separation LPs.
_LP_TIME_LIMIT = 60.0

# Losses whose data passed the full check (rank and separation), with the
# rtol used: a fit followed by inference for several cov_types checks once.
_VERIFIED = weakref.WeakKeyDictionary()

# Widest design (columns incl. the intercept) the identification check handles.
RANK_CHECK_MAX_COLUMNS = 2000  # also read by callers that form the Gram matrix themselves


class IdentificationError(ValueError):
    """The coefficients are not identified: the MLE does not exist or is not unique.

    Raised with a message that names the classes and features involved and
    says what to do (add a penalty, drop or merge features, choose a reference
    class).
    """



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
    tends = (f"at least {n_perfect} samples get fitted probability -> 1 for their class" if n_perfect
             else "some fitted probabilities go to 0")
    return (
        f"perfect or quasi-complete separation: {what} by {by}; along this direction the "
        f"likelihood keeps increasing ({tends}), so the maximum-likelihood estimate does not exist and the "
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
    if len(columns) > RANK_CHECK_MAX_COLUMNS:
        warnings.warn(
            f"identification check skipped: {len(columns)} design columns exceed "
            f"{RANK_CHECK_MAX_COLUMNS}; collinearity and separation are not checked.",
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


def check_design_rank(gram, n_rows, *, fit_intercept, feature_names=None, dtype=np.float64):
    r"""The rank check of :func:`check_identification` from the design's Gram matrix.

    For data that arrive in chunks (a Dask fit): ``gram`` is
    :math:`\sum_i \tilde x_i \tilde x_i^\top` over the rows of positive
    weight, the design :math:`\tilde x = (1, x)` with the intercept first when
    ``fit_intercept``, and ``n_rows`` their number. The criterion is the same
    (a column whose part independent of the earlier ones is within the
    tolerance of zero), on ``G = R^T R`` as for a sparse design (the tolerance
    then applies to squared norms); the separation check needs the rows
    themselves and is not made.

    Raises
    ------
    IdentificationError
        Naming the dependent columns, as :func:`check_identification` does.
    """
    G = np.asarray(gram, dtype=np.float64)
    d = G.shape[0]
    features = _feature_names(feature_names, d - int(fit_intercept))
    coding = types.SimpleNamespace(fit_intercept=bool(fit_intercept))
    columns = _design_columns(coding, features)
    if n_rows < d:
        raise IdentificationError(
            f"the coefficients are not identified: {n_rows} samples (of positive weight) for "
            f"{d} design columns per class, so the features are linearly dependent. "
            "Fit with a penalty (penalty='l2') or use fewer features."
        )
    eps64 = np.finfo(np.float64).eps
    rtol = 10.0 * (np.finfo(dtype).eps + np.sqrt(max(n_rows, d)) * eps64)
    # On the Gram matrix the tolerance applies to squared norms (as for sparse designs above).
    R, dependent = _ordered_cholesky(G, rtol)
    if dependent:
        raise IdentificationError(_rank_message(coding, R, dependent, columns))


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
