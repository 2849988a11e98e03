"""The sandwich's meat of a :class:`LinearSoftmaxLoss`: outer products of the rows' scores, a block of rows at a time.

Used by the in-memory inference (:mod:`softmaxreg.models`) and by each chunk
of a Dask fit (:mod:`._dask`), so both form the same sums the same way.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from softmaxreg.functional import softmax

__all__ = ["score_outer_products"]

#: Floats of per-row scores and logits formed at a time (32 MB in float64): the memory beside ``X`` stays
#: bounded, however many rows.
_CHUNK_FLOATS = 1 << 22


def score_outer_products(loss, coef, intercept, groups=None):
    r""":math:`\sum_i s_i g_i g_i^\top` in the loss's flat layout (free classes, intercept last), float64.

    :math:`g_i = (p_i - y_i)_{\text{free}} \otimes \tilde x_i` is row i's score
    (:math:`\tilde x_i` the row with a trailing 1 when there is an intercept),
    :math:`s_i` its sample weight; ``coef`` (n_classes, n_features) and
    ``intercept`` (n_classes,) are the full coefficients; ``loss`` needs only
    the attributes of the data (``X``, ``y``, ``sample_weight``, the sizes).
    With ``groups``
    (cluster codes ``0..G-1``, one per row): :math:`\sum_g u_g u_g^\top`,
    :math:`u_g = \sum_{i \in g} s_i g_i`.

    Examples
    --------
    At zero coefficients with two classes and no intercept, each row's score
    for the free class is :math:`(1/2 - y_i) x_i`:

    >>> import numpy as np
    >>> from softmaxreg.loss import LinearSoftmaxLoss
    >>> loss = LinearSoftmaxLoss(np.array([[1.0], [2.0]]), np.array([0, 1]), n_classes=2, fit_intercept=False,
    ...                          reference_class=0)
    >>> score_outer_products(loss, np.zeros((2, 1)), np.zeros(2)).tolist()
    [[1.25]]
    """
    free = np.array([k for k in range(loss.n_classes) if k != loss.reference_class])
    d = loss.n_features + int(loss.fit_intercept)
    q = free.size * d
    M = np.zeros((q, q))
    U = None if groups is None else np.zeros((int(groups.max()) + 1, q))
    step = max(1, _CHUNK_FLOATS // (q + loss.n_classes))
    for start in range(0, loss.n_samples, step):
        rows = slice(start, min(start + step, loss.n_samples))
        Xc = loss.X[rows]
        Xc = Xc.toarray() if sp.issparse(Xc) else np.asarray(Xc)
        Xc = Xc.astype(np.float64, copy=False)
        Z = Xc @ coef.T
        if loss.fit_intercept:
            Z += intercept
            Xc = np.hstack([Xc, np.ones((Xc.shape[0], 1))])
        Y = _targets(loss.y[rows], loss.n_classes)
        G = ((softmax(Z, axis=1) - Y)[:, free, None] * Xc[:, None, :]).reshape(Xc.shape[0], q)
        if U is None:
            M += G.T @ (loss.sample_weight[rows][:, None] * G)
        else:
            np.add.at(U, groups[rows], loss.sample_weight[rows][:, None] * G)
    return M if U is None else U.T @ U


def _targets(y, n_classes):
    """Target probabilities of a block of rows: ``y`` itself (n, K), or the one-hot rows of labels."""
    if y.ndim == 2:
        return np.asarray(y, dtype=np.float64)
    Y = np.zeros((y.shape[0], n_classes))
    Y[np.arange(y.shape[0]), y] = 1.0
    return Y
