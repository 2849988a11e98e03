"""Independent sigmoid (binary) cross-entropies of a linear model, one per label."""

import numpy as np
import scipy.sparse as sp

from softmaxreg.functional import binary_cross_entropy, sigmoid

__all__ = ["LinearSigmoidLoss"]


class LinearSigmoidLoss:
    r"""Sum over labels of sample-weighted mean binary cross-entropies.

    For an indicator (or probability) matrix ``Y`` of shape (n_samples, n_labels)
    and coefficients ``W`` (n_labels, n_features), ``b`` (n_labels,):

    .. math::

        z_{ij} = w_j^\top x_i + b_j, \qquad
        f(W, b) = \frac1S \sum_i s_i \sum_j \mathrm{BCE}(z_{ij}, y_{ij})
                  + \frac{\lambda}{2} \lVert W \rVert_F^2 ,

    :math:`\nabla_W f = \tfrac1S (\sigma(Z) - Y)^\top \mathrm{diag}(s) X + \lambda W`, and
    the Hessian is block diagonal over labels,
    :math:`H_{jj} = \tfrac1S \sum_i s_i \sigma(z_{ij})(1 - \sigma(z_{ij})) \tilde x_i \tilde x_i^\top
    + \lambda I`: the labels are independent logistic regressions fitted at once.

    **Conventions** as :class:`LinearSoftmaxLoss`: flat ``w`` is the C-ordered
    ravel of (n_labels, n_features + fit_intercept) with the intercept last,
    the objective is a weighted mean (``l2_reg_strength = 1 / (C S)`` gives
    scikit-learn's ``LogisticRegression`` per label), logits are computed in
    the dtype of ``X`` and everything else in float64.

    Examples
    --------
    Zero coefficients: every label has probability 1/2, so the loss is
    ``n_labels * log 2`` and the intercept gradient is ``1/2 - mean(Y)``.

    >>> import numpy as np
    >>> loss = LinearSigmoidLoss(np.ones((2, 1)), np.array([[1, 0], [1, 1]]))
    >>> f, g = loss.loss_gradient(np.zeros(loss.n_params))
    >>> print(round(f, 6), round(2 * float(np.log(2)), 6))
    1.386294 1.386294
    >>> g.reshape(2, 2)[:, 1].tolist()
    [-0.5, 0.0]
    """

    def __init__(self, X, Y, *, sample_weight=None, fit_intercept=True, l2_reg_strength=0.0):
        if not sp.issparse(X):
            X = np.asarray(X)
        if X.ndim != 2 or X.dtype not in (np.float32, np.float64):
            raise ValueError("X must be a 2-D float32 or float64 array.")
        Y = np.asarray(Y, dtype=np.float64)
        if Y.ndim != 2 or Y.shape[0] != X.shape[0]:
            raise ValueError(f"Y must have shape ({X.shape[0]}, n_labels), got {Y.shape}.")
        n = X.shape[0]
        sw = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if sw.shape != (n,) or not np.all(np.isfinite(sw)) or np.any(sw < 0) or not sw.sum() > 0:
            raise ValueError("sample_weight must be finite, non-negative, one per row, not all zero.")
        self.X, self.Y, self.sample_weight = X, Y, sw
        self.sum_sample_weight = float(sw.sum())
        self.n_samples, self.n_features = X.shape
        self.n_labels = Y.shape[1]
        self.fit_intercept = bool(fit_intercept)
        self.l2_reg_strength = float(l2_reg_strength)

    @property
    def n_dof(self):
        return self.n_features + int(self.fit_intercept)

    @property
    def n_params(self):
        return self.n_labels * self.n_dof

    def unpack(self, w):
        """``coef`` (n_labels, n_features) and ``intercept`` (n_labels,) from flat ``w``."""
        full = np.asarray(w).reshape(self.n_labels, self.n_dof)
        if self.fit_intercept:
            return full[:, :-1], full[:, -1]
        return full, np.zeros(self.n_labels, dtype=full.dtype)

    def pack(self, coef, intercept=None):
        """Flat ``w`` from ``coef`` and ``intercept``."""
        coef = np.asarray(coef, dtype=np.float64)
        if not self.fit_intercept:
            return coef.ravel().copy()
        b = np.zeros(self.n_labels) if intercept is None else intercept
        return np.hstack([coef, np.asarray(b, dtype=np.float64)[:, None]]).ravel()

    def _logits(self, coef, intercept):
        Z = np.asarray(self.X @ coef.T.astype(self.X.dtype, copy=False), dtype=np.float64)
        return Z + intercept if self.fit_intercept else Z

    def _pack_grad(self, R, base):
        s = (self.sample_weight / self.sum_sample_weight)[:, None]
        R = R * s
        if sp.issparse(self.X):
            G = np.asarray((self.X.T @ R).T, dtype=np.float64)
        else:
            G = np.asarray(R.T.astype(self.X.dtype) @ self.X, dtype=np.float64)
        if self.l2_reg_strength:
            G += self.l2_reg_strength * base
        if self.fit_intercept:
            G = np.hstack([G, R.sum(axis=0)[:, None]])
        return G.ravel()

    def loss(self, w):
        return self.loss_gradient(w, need_grad=False)[0]

    def gradient(self, w):
        return self.loss_gradient(w)[1]

    def loss_gradient(self, w, need_grad=True):
        """``(f(w), gradient(w))``; the gradient is None when ``need_grad`` is False."""
        coef, intercept = self.unpack(np.asarray(w, dtype=np.float64))
        Z = self._logits(coef, intercept)
        per_row = binary_cross_entropy(Z, self.Y, reduction="none").sum(axis=1)
        f = float(self.sample_weight @ per_row) / self.sum_sample_weight
        f += 0.5 * self.l2_reg_strength * float(np.sum(coef * coef))
        if not need_grad:
            return f, None
        return f, self._pack_grad(sigmoid(Z) - self.Y, coef)

    def hessp(self, w, v):
        """Hessian of ``f`` at ``w`` times ``v`` (never formed)."""
        coef, intercept = self.unpack(np.asarray(w, dtype=np.float64))
        vc, vb = self.unpack(np.asarray(v, dtype=np.float64))
        P = sigmoid(self._logits(coef, intercept))
        Zv = self._logits(vc, vb)
        return self._pack_grad(P * (1.0 - P) * Zv, vc)
