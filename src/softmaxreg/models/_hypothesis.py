r"""Wald tests of linear restrictions and likelihood-ratio tests of nested fits.

``wald_test(model, hypothesis, *, cov_type="nonrobust", groups=None) -> ChiSquareTest``
    :math:`W = (R\hat\theta - q)^\top (R V R^\top)^{-1} (R\hat\theta - q)
    \sim \chi^2_m` for :math:`m` restrictions :math:`R\theta = q` on the free
    parameters (class by class in ``classes_`` order, reference left out, each
    class as intercept then features: the rows of ``summary()``).

``lr_test(full, restricted) -> ChiSquareTest``
    :math:`2(\ell_{\mathrm{full}} - \ell_{\mathrm{restricted}}) \sim \chi^2_{df}`,
    :math:`df` the difference in free parameters, for two unpenalized fits
    on the same rows (same labels and weights).

**Hypothesis strings** (Stata's ``test`` after ``mlogit``): restrictions
separated by commas, each ``expression = expression`` over

* ``[b]x1``: feature ``x1`` in the equation of class ``b`` (the label as
  ``str`` gives it: ``[1]educ`` for integer classes);
* ``x1`` alone: ``x1`` in every free class, one restriction per class
  (``"x1 = 0"`` is the joint test that ``x1`` enters no equation);
* ``intercept`` (or ``_cons``) for the intercept, numbers, ``2*[b]x1``,
  ``+`` and ``-``.

Examples
--------
>>> from softmaxreg.models._hypothesis import parse_hypothesis
>>> R, q = parse_hypothesis("[b]x = [c]x, [b]z = 1", ["b", "c"], ["intercept", "x", "z"])
>>> R.tolist(), q.tolist()
([[0.0, 1.0, 0.0, 0.0, -1.0, 0.0], [0.0, 0.0, 1.0, 0.0, 0.0, 0.0]], [0.0, 1.0])
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
from scipy.stats import chi2

__all__ = ["ChiSquareTest", "lr_test", "parse_hypothesis", "wald_test"]

_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class ChiSquareTest:
    """A chi-square test: ``statistic``, ``df``, ``pvalue`` (and R, q for a Wald test)."""

    __test__ = False  # not a pytest class

    def __init__(self, statistic, df, kind, R=None, q=None):
        self.statistic = float(statistic)
        self.df = int(df)
        self.pvalue = float(chi2.sf(self.statistic, self.df))
        self.kind = kind
        self.R, self.q = R, q

    def __str__(self):
        return (f"{self.kind} test: chi2({self.df}) = {self.statistic:.4f}, "
                f"Prob > chi2 = {self.pvalue:.4g}")

    __repr__ = __str__


def _split_top(text, seps):
    """Split at characters of ``seps`` outside parentheses and brackets (keeping signs)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch in seps and depth == 0:
            # A sign inside a number's exponent (1e-5) is not a split.
            if ch in "+-" and re.search(r"\d[eE]$", text[start:i]):
                continue
            parts.append(text[start:i])
            start = i if ch in "+-" else i + 1
    parts.append(text[start:])
    return [p for p in parts if p.strip()]


def _terms(side, classes, features):
    """(coefficient, class label or None, feature index or None) per term of one side."""
    out = []
    for raw in _split_top(side, "+-"):
        term = raw.strip()
        sign = -1.0 if term.startswith("-") else 1.0
        term = term.lstrip("+-").strip()
        coef = 1.0
        if "*" in term and _NUMBER.match(term.split("*", 1)[0].strip()):
            number, term = term.split("*", 1)
            coef, term = float(number), term.strip()
        if _NUMBER.match(term):
            out.append((sign * coef * float(term), None, None))
            continue
        cls = None
        if term.startswith("["):
            close = term.index("]") if "]" in term else -1
            if close < 0:
                raise ValueError(f"hypothesis: unclosed '[' in {raw.strip()!r}.")
            cls, term = term[1:close].strip(), term[close + 1:].strip()
            if cls not in classes:
                raise ValueError(
                    f"hypothesis: unknown class {cls!r} in {raw.strip()!r}; the free classes "
                    f"are {classes} (the reference class has no coefficients)."
                )
        name = "intercept" if term == "_cons" and "_cons" not in features else term
        if name == "intercept" and "intercept" not in features and "(intercept)" in features:
            name = "(intercept)"
        if name not in features:
            raise ValueError(
                f"hypothesis: unknown name {term!r} in {raw.strip()!r}; the names are "
                f"{features}, optionally prefixed with a class as [class]name."
            )
        out.append((sign * coef, cls, features.index(name)))
    return out


def parse_hypothesis(hypothesis, classes, features):
    """``R`` (m, n_classes * n_features) and ``q`` (m,) from a hypothesis string.

    Parameters
    ----------
    hypothesis : str
        See the module docstring.
    classes : list of str
        Free classes (as strings), in parameter order.
    features : list of str
        Names of one class's parameters, intercept first when fitted.

    Returns
    -------
    R : ndarray of shape (n_restrictions, n_classes * n_features)
    q : ndarray of shape (n_restrictions,)
    """
    if not isinstance(hypothesis, str) or not hypothesis.strip():
        raise ValueError("hypothesis must be a non-empty string such as 'x1 = 0'.")
    d = len(features)
    rows, rhs = [], []
    for restriction in _split_top(hypothesis, ","):
        sides = _split_top(restriction, "=")
        if restriction.count("=") != 1 or len(sides) != 2:
            raise ValueError(
                f"hypothesis: {restriction.strip()!r} needs exactly one '=' (like 'x1 = 0')."
            )
        terms = [(c, k, j) for c, k, j in _terms(sides[0], classes, features)]
        terms += [(-c, k, j) for c, k, j in _terms(sides[1], classes, features)]
        expand = any(k is None and j is not None for _, k, j in terms)
        for cls in (classes if expand else [None]):
            r, const = np.zeros(len(classes) * d), 0.0
            for c, k, j in terms:
                if j is None:
                    const -= c
                else:
                    r[classes.index(k if k is not None else cls) * d + j] += c
            if not np.any(r):
                raise ValueError(f"hypothesis: {restriction.strip()!r} restricts nothing.")
            rows.append(r)
            rhs.append(const)
    return np.array(rows), np.array(rhs)


def wald_test(model, hypothesis, *, cov_type="nonrobust", groups=None):
    """Wald chi-square test of ``R theta = q`` (see the module docstring).

    Parameters
    ----------
    model : SoftmaxRegression
        Fitted with ``fit`` and ``penalty=None`` and a reference class.
    hypothesis : str, or array_like of shape (m, n_params), or tuple (R, q)
        A hypothesis string, a restriction matrix ``R`` (then ``q = 0``), or ``(R, q)``.
    cov_type : str, default="nonrobust"
    groups : array_like, default=None
        For ``cov_type="cluster"``.

    Returns
    -------
    ChiSquareTest
    """
    if model.penalty is not None:
        raise ValueError(
            "wald_test needs the covariance of the maximum-likelihood estimate; this model "
            "was fitted with a penalty. Refit with penalty=None (and a reference_class)."
        )
    res = model.inference(cov_type, groups)
    theta, V = res.params, res.cov_params
    if isinstance(hypothesis, str):
        free = [str(c) for c in dict.fromkeys(res.classes)]
        d = len(res.features) // len(free)
        R, q = parse_hypothesis(hypothesis, free, res.features[:d])
    else:
        if isinstance(hypothesis, tuple) and len(hypothesis) == 2:
            R, q = hypothesis
        else:
            R, q = hypothesis, None
        R = np.atleast_2d(np.asarray(R, dtype=np.float64))
        q = np.zeros(R.shape[0]) if q is None else np.atleast_1d(np.asarray(q, dtype=np.float64))
        if R.shape[1] != theta.size or q.shape != (R.shape[0],):
            raise ValueError(
                f"R must have shape (m, {theta.size}) (one column per free parameter, the rows "
                f"of summary()) and q shape (m,); got {R.shape} and {q.shape}."
            )
    if np.linalg.matrix_rank(R) < R.shape[0]:
        raise ValueError(
            "the restrictions are linearly dependent (one follows from the others); drop the "
            "redundant ones."
        )
    diff = R @ theta - q
    statistic = diff @ np.linalg.solve(R @ V @ R.T, diff)
    return ChiSquareTest(statistic, R.shape[0], "Wald", R, q)


def _class_totals(model):
    """Weighted count of each class in the training rows (all a Dask fit keeps of them)."""
    loss = model._loss
    if not hasattr(loss, "y"):
        return np.asarray(loss.class_counts, dtype=np.float64)
    return np.bincount(np.asarray(loss.y), weights=np.asarray(loss.sample_weight, dtype=np.float64),
                       minlength=model.classes_.size)


def _same_rows(a, b):
    if hasattr(a._loss, "y") and hasattr(b._loss, "y"):
        return _fingerprint(a) == _fingerprint(b)
    ta, tb = _class_totals(a), _class_totals(b)  # a Dask fit: compare what it kept
    return ta.shape == tb.shape and np.allclose(ta, tb, rtol=1e-12, atol=0)


def _fingerprint(model):
    loss = model._loss
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(model.classes_[np.asarray(loss.y)]).astype(str).tobytes())
    h.update(np.ascontiguousarray(loss.sample_weight, dtype=np.float64).tobytes())
    return h.hexdigest()


def lr_test(full, restricted):
    """Likelihood-ratio test of a restricted fit against the full one (module docstring).

    Parameters
    ----------
    full, restricted : SoftmaxRegression
        Both fitted with ``fit`` and ``penalty=None`` on the same rows; the
        restricted model has fewer free parameters (its features a subset).

    Returns
    -------
    ChiSquareTest
    """
    for name, m in (("full", full), ("restricted", restricted)):
        if getattr(m, "penalty", "l2") is not None or getattr(m, "_loss", None) is None:
            raise ValueError(
                f"lr_test needs two maximum-likelihood fits; the {name} model is penalized or "
                "not fitted with fit. Refit with penalty=None."
            )
    a, b = full.inference(), restricted.inference()
    if a.nobs != b.nobs or not _same_rows(full, restricted):
        raise ValueError(
            f"lr_test: the models were fitted on different rows (nobs {a.nobs:g} and "
            f"{b.nobs:g}, or different labels or weights); a likelihood-ratio test compares "
            "fits of the same observations."
        )
    df = a.params.size - b.params.size
    if df <= 0:
        raise ValueError(
            f"lr_test: the restricted model has {b.params.size} free parameters, the full one "
            f"{a.params.size}; pass the larger model first, the nested one second."
        )
    names_a = getattr(full, "feature_names_in_", None)
    names_b = getattr(restricted, "feature_names_in_", None)
    if names_a is not None and names_b is not None and not set(names_b) <= set(names_a):
        raise ValueError(
            f"lr_test: the restricted model's features {sorted(set(names_b) - set(names_a))} "
            "are not in the full model; the models are not nested."
        )
    statistic = 2.0 * (a.llf - b.llf)
    return ChiSquareTest(max(statistic, 0.0), df, "Likelihood-ratio")
