r"""Marginal effects of a softmax regression, with delta-method standard errors.

``marginal_effects(model, X=None, *, at="overall", method="dydx", dummy=False,
count=False, alpha=0.05, cov_type="nonrobust", groups=None) -> MarginalEffects``

**The effect.**  With :math:`p = \operatorname{softmax}(W x + b)`, the softmax
Jacobian :math:`\partial p / \partial z = \operatorname{diag}(p) - p p^\top`
and :math:`\partial z_l / \partial x_j = w_{lj}` give

.. math::

    \frac{\partial p_k}{\partial x_j} = p_k \Bigl(w_{kj} - \sum_l p_l w_{lj}\Bigr)
    = p_k\, a_{kj}, \qquad a_{kj} = \frac{\partial \log p_k}{\partial x_j},

which is unchanged when one vector is added to every row of :math:`W`: it does
not depend on the reference class.  ``method`` scales it as statsmodels'
``get_margeff`` does, row by row: "dydx" :math:`p_k a_{kj}`, "eydx"
:math:`a_{kj}`, "dyex" :math:`p_k a_{kj} x_j`, "eyex" :math:`a_{kj} x_j`.

**Discrete changes.**  ``dummy=True``: for every 0/1 feature,
:math:`g(p_k(x_j{=}1)) - g(p_k(x_j{=}0))`; ``count=True``: for every count
feature (non-negative integers, not 0/1),
:math:`\tfrac12 [g(p_k(x_j{+}1)) - g(p_k(x_j{-}1))]`, the centred change per
unit that statsmodels' ``get_margeff(count=True)`` computes; :math:`g` is the
identity ("dydx") or the log ("eydx").  Which features are 0/1 or counts is
read off the rows the effects average over (statsmodels' rule).

**Where.**  ``at="overall"``: the effect at every row, averaged with the
frequency weights (Stata's ``margins, dydx(*)``, the average marginal effect);
"mean" / "median": at one row of the (weighted) means or medians; a dict
``{feature name or index: value}``: those features set to the values in every
row, then averaged (Stata's ``margins, at(...)``).

**Standard errors.**  :math:`J V J^\top`, :math:`J` the derivative of the
(averaged) effects with respect to the free parameters, from
:math:`\partial p_k / \partial w_{ce} = p_k(\delta_{kc} - p_c)\tilde x_e` and

.. math::

    \frac{\partial a_{kj}}{\partial w_{ce}} = \delta_{je}(\delta_{kc} - p_c)
        - p_c\, \tilde x_e\, a_{cj},

and :math:`V` the covariance of the model (any ``cov_type``).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.special import ndtr, ndtri

from ._array_api import to_numpy
from ._delta import CHUNK_FLOATS, delta_parts, probability_jacobian
from ._summary import _block_lines, _ci_labels, _header_lines, _table_width
from ._validation import check_finite

__all__ = ["MarginalEffects", "marginal_effects"]

METHODS = ("dydx", "eyex", "dyex", "eydx")
_LABELS = {"dydx": "dy/dx", "eyex": "d(lny)/d(lnx)", "dyex": "dy/d(lnx)", "eydx": "d(lny)/dx"}


def _weighted_median(x, w):
    """Median of the sample where row i counts w_i times (numpy's median for unit weights)."""
    order = np.argsort(x, kind="stable")
    x, c = x[order], np.cumsum(w[order])
    half = c[-1] / 2.0
    i = int(np.searchsorted(c, half, side="left"))
    if np.isclose(c[i], half, rtol=1e-12, atol=0.0) and i + 1 < x.size:
        return 0.5 * (x[i] + x[i + 1])
    return x[i]


def _discrete_columns(X, w):
    """(0/1 columns, count columns) of the rows of positive weight, statsmodels' rules."""
    X = X[w > 0]
    integer = np.all(X % 1.0 == 0, axis=0)
    dummy = integer & (X.min(axis=0) == 0) & (X.max(axis=0) == 1)
    count = integer & (X.var(axis=0) != 0) & np.all(X >= 0, axis=0) & ~dummy
    return np.flatnonzero(dummy), np.flatnonzero(count)


def _column_index(key, features):
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        if not 0 <= key < len(features):
            raise ValueError(f"at: feature index {key} is out of range (0..{len(features) - 1}).")
        return int(key)
    if key in features:
        return features.index(key)
    raise ValueError(f"at: unknown feature {key!r}; the features are {features}.")


def _points(X, w, at, features):
    """Rows the effects are evaluated at and their weights (summing to one)."""
    if isinstance(at, dict):
        X = X.copy()
        for key, value in at.items():
            if not np.isfinite(float(value)):
                raise ValueError(f"at[{key!r}] = {value!r}: marginal effects are evaluated at finite values.")
            X[:, _column_index(key, features)] = float(value)
        return X, w / w.sum()
    if at == "overall":
        return X, w / w.sum()
    if at == "mean":
        return (w @ X / w.sum())[None, :], np.ones(1)
    if at == "median":
        keep = w > 0
        row = [_weighted_median(X[keep, j], w[keep]) for j in range(X.shape[1])]
        return np.asarray(row, dtype=np.float64)[None, :], np.ones(1)
    raise ValueError(
        f"at must be 'overall', 'mean', 'median' or a dict of feature -> value, got {at!r}."
    )


def _continuous(parts, X, w, method):
    """Weighted sums of the effects (K, d) and of their Jacobian (K, d, n_free, D)."""
    W, free, off = parts.W, parts.free, int(parts.fit_intercept)
    K, D = W.shape
    d = D - off
    F = np.zeros((K, d))
    J = np.zeros((K, d, free.size, D))
    step = max(1, CHUNK_FLOATS // (K * K * d * D))
    slopes = W[:, off:]
    dy, ex = method.startswith("dy"), method.endswith("ex")
    for start in range(0, X.shape[0], step):
        Xc, wc = X[start:start + step], w[start:start + step]
        Xd = parts.design(Xc)
        P = parts.proba(Xd)
        A = slopes[None] - (P @ slopes)[:, None, :]  # a_kj = w_kj - sum_l p_l w_lj
        dP = probability_jacobian(P, Xd, free)  # (n, K, n_free, D)
        # da_kj/dw_ce = delta_je (delta_kc - p_c) - p_c x_e a_cj
        Dkc = np.eye(K)[:, free][None] - P[:, None, free]  # (n, K, n_free)
        term = P[:, free, None, None] * A[:, free, :, None] * Xd[:, None, None, :]  # (n,c,j,e)
        dA = np.repeat(-term.transpose(0, 2, 1, 3)[:, None], K, axis=1)  # (n, K, d, c, e)
        idx = np.arange(d)
        dA[:, :, idx, :, idx + off] += Dkc[None]  # advanced indices first: (d, n, K, c)
        if dy:
            f = P[:, :, None] * A
            df = dP[:, :, None] * A[..., None, None] + P[:, :, None, None, None] * dA
        else:
            f, df = A, dA
        if ex:
            f = f * Xc[:, None, :]
            df = df * Xc[:, None, :, None, None]
        F += np.einsum("n,nkj->kj", wc, f)
        J += np.einsum("n,nkjce->kjce", wc, df)
    return F, J


def _discrete(parts, X, w, j, lo, hi, log, scale):
    """Weighted sums of scale * [g(p(x_j = hi)) - g(p(x_j = lo))] and of their Jacobian."""
    out, jac = 0.0, 0.0
    for value, sign in ((lo, -1.0), (hi, 1.0)):
        Xv = X.copy()
        Xv[:, j] = value(X[:, j])
        Xd = parts.design(Xv)
        P = parts.proba(Xd)
        dP = probability_jacobian(P, Xd, parts.free)
        if log:
            g, dg = np.log(P), dP / P[:, :, None, None]
        else:
            g, dg = P, dP
        out = out + sign * scale * (w @ g)
        jac = jac + sign * scale * np.einsum("n,nkce->kce", w, dg)
    return out, jac


def marginal_effects(model, X=None, *, at="overall", method="dydx", dummy=False, count=False,
                     alpha=0.05, cov_type="nonrobust", groups=None):
    """Marginal effects of every feature on every class probability (see the module docstring).

    Parameters
    ----------
    model : SoftmaxRegression
        Fitted with ``fit`` and ``penalty=None`` (any ``reference_class``).
    X : array_like of shape (n_rows, n_features), default=None
        Rows to average over or summarize; the training rows and their
        frequency weights when None (new rows count once each).
    at : {"overall", "mean", "median"} or dict, default="overall"
    method : {"dydx", "eyex", "dyex", "eydx"}, default="dydx"
    dummy, count : bool, default=False
        Discrete changes for 0/1 and count features.
    alpha : float, default=0.05
        Level of the intervals of the printed table.
    cov_type : str, default="nonrobust"
        Covariance of the parameters ("cluster" with ``groups``).
    groups : array_like of shape (n_samples,), default=None

    Returns
    -------
    MarginalEffects
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
    if (dummy or count) and method in ("dyex", "eyex"):
        raise ValueError(
            f"method={method!r} is an elasticity in x, not defined for discrete changes; use "
            "'dydx' or 'eydx' with dummy/count, or leave dummy and count False."
        )
    parts = delta_parts(model, cov_type, groups, what="marginal-effect standard errors")
    if X is None and not hasattr(model._loss, "X"):
        raise ValueError(
            "marginal_effects of a model fitted on Dask data need X, the rows to average "
            "over (in memory, e.g. a sample of the training data)."
        )
    if X is None:
        X, w = to_numpy(model._loss.X), np.asarray(to_numpy(model._loss.sample_weight), dtype=np.float64)
    else:
        X = model._validated(to_numpy(X))  # computed on the host, as the covariance is (a device X too)
        check_finite(X, feature_names=getattr(model, "feature_names_in_", None))
        w = np.ones(X.shape[0])
    X = X.toarray() if sp.issparse(X) else np.asarray(X)
    X = X.astype(np.float64)
    if not w.sum() > 0:
        raise ValueError("marginal_effects needs at least one row of positive weight.")
    dummies, counts = _discrete_columns(X, w)
    rows, weights = _points(X, w, at, parts.features)
    F, J = _continuous(parts, rows, weights, method)
    log = method.startswith("ey")
    discrete = {}
    if dummy:
        for j in dummies:
            discrete[j] = _discrete(parts, rows, weights, j, lambda x: 0.0 * x,
                                    lambda x: 0.0 * x + 1.0, log, 1.0)
    if count:
        for j in counts:
            discrete[j] = _discrete(parts, rows, weights, j, lambda x: x - 1.0,
                                    lambda x: x + 1.0, log, 0.5)
    for j, (f, jac) in discrete.items():
        F[:, j], J[:, j] = f, jac
    K, d = F.shape
    Jm = J.reshape(K * d, -1)  # rows class by class, features inside
    cov = Jm @ parts.cov @ Jm.T
    return MarginalEffects(
        F.T, cov=0.5 * (cov + cov.T), classes=parts.classes, features=parts.features,
        method=method, at=at, alpha=alpha, cov_type=cov_type,
        dummy_features=[parts.features[j] for j in (dummies if dummy else [])],
        count_features=[parts.features[j] for j in (counts if count else [])],
        n_obs=float(w.sum()),
    )


class MarginalEffects:
    r"""Marginal effects, their standard errors, z statistics, p-values and intervals.

    Arrays follow statsmodels' ``DiscreteMargins``: ``margeff`` and
    ``margeff_se`` have shape (n_features, n_classes); ``margeff_cov`` has
    shape (n_features * n_classes,) * 2, rows class by class (all features
    of the first class, then the next class), as ``margeff.ravel("F")``.

    ``print`` it for the table (one block per class, like ``summary()``);
    :meth:`to_frame` gives a DataFrame indexed by (class, feature).

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxreg.models import MarginalEffects
    >>> me = MarginalEffects(np.array([[0.1, -0.1]]), cov=np.diag([0.0025, 0.0025]),
    ...                      classes=["a", "b"], features=["x"])
    >>> me.zvalues.tolist()
    [[2.0, -2.0]]
    """

    def __init__(self, margeff, *, cov, classes, features, method="dydx", at="overall",
                 alpha=0.05, cov_type="nonrobust", dummy_features=(), count_features=(),
                 n_obs=None):
        self.margeff = np.asarray(margeff, dtype=np.float64)
        self.margeff_cov = np.asarray(cov, dtype=np.float64)
        self.margeff_se = np.sqrt(np.clip(np.diag(self.margeff_cov), 0, None)).reshape(
            self.margeff.shape, order="F")
        self.classes = [c.item() if isinstance(c, np.generic) else c for c in classes]
        self.features = [str(f) for f in features]
        self.method, self.at, self.alpha, self.cov_type = method, at, float(alpha), cov_type
        self.dummy_features, self.count_features = list(dummy_features), list(count_features)
        self.n_obs = n_obs

    @property
    def zvalues(self):
        """``margeff / margeff_se``, shape (n_features, n_classes)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.margeff / self.margeff_se

    @property
    def pvalues(self):
        """Two-sided normal p-values, shape (n_features, n_classes)."""
        return 2.0 * ndtr(-np.abs(self.zvalues))

    def conf_int(self, alpha=None):
        """Wald intervals, shape (n_features, 2, n_classes) as statsmodels' ``conf_int``."""
        alpha = self.alpha if alpha is None else float(alpha)
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {alpha}.")
        half = -ndtri(alpha / 2) * self.margeff_se
        return np.stack([self.margeff - half, self.margeff + half], axis=1)

    def _columns(self, alpha):
        ci = self.conf_int(alpha)
        flat = lambda a: a.ravel(order="F")  # noqa: E731  class by class
        return (flat(self.margeff), flat(self.margeff_se), flat(self.zvalues),
                flat(self.pvalues), np.column_stack([flat(ci[:, 0]), flat(ci[:, 1])]))

    def to_frame(self, alpha=None):
        """The table as a pandas DataFrame indexed by (class, feature)."""
        import pandas as pd

        alpha = self.alpha if alpha is None else alpha
        est, se, z, p, ci = self._columns(alpha)
        lo, hi = _ci_labels(alpha)
        index = pd.MultiIndex.from_tuples(
            [(c, f) for c in self.classes for f in self.features], names=["class", "feature"])
        return pd.DataFrame({_LABELS[self.method]: est, "std err": se, "z": z, "P>|z|": p,
                             lo: ci[:, 0], hi: ci[:, 1]}, index=index)

    def summary(self, alpha=None):
        """The printed table as a string."""
        alpha = self.alpha if alpha is None else alpha
        est, se, z, p, ci = self._columns(alpha)
        lo, hi = _ci_labels(alpha)
        cols = [_LABELS[self.method], "std err", "z", "P>|z|", lo, hi]
        name_w, width = _table_width(self.features, len(cols))
        at = self.at if isinstance(self.at, str) else ", ".join(
            f"{k}={v:g}" for k, v in self.at.items())
        meta = [("Method:", _LABELS[self.method]), ("At:", at[: width // 2 - 8]),
                ("Observations:", "-" if self.n_obs is None else f"{self.n_obs:g}"),
                ("Covariance type:", self.cov_type)]
        lines = _header_lines("Marginal effects", meta, width)
        rows_c = [c for c in self.classes for _ in self.features]
        rows_f = self.features * len(self.classes)
        lines += _block_lines(rows_c, rows_f, cols, est, se, z, p, ci, name_w)
        lines.append("=" * width)
        if self.dummy_features:
            lines.append(f"Discrete change from 0 to 1: {', '.join(self.dummy_features)}.")
        if self.count_features:
            lines.append("Discrete change (p(x+1) - p(x-1)) / 2: "
                         f"{', '.join(self.count_features)}.")
        return "\n".join(lines)

    def __str__(self):
        return self.summary()

    __repr__ = __str__
