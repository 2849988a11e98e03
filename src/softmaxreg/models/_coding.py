"""Names and coding of the free parameters of a softmax-regression fit.

Shared by identification, covariance and the tables built on them.

**Free parameters and their order.**  With ``reference_class`` the row of that
class is fixed at zero and the free parameters are the other ``K - 1`` rows
(statsmodels ``MNLogit`` always takes the first class); they are listed class
by class in ``classes`` order, each class as ``intercept`` (when fitted) then
the features.  Row names are ``(class, feature)`` pairs.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# Floats held per chunk when forming per-sample quantities (scores, rows).
_CHUNK_FLOATS = 1 << 22


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
