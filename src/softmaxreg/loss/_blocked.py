r"""The passes of :class:`~softmaxreg.loss.LinearSoftmaxLoss` for many classes, in bounded memory.

With :math:`K` in the tens of thousands and more, a row chunk of logits,
probabilities and targets is the cost of a pass, not ``X``. These passes hold
no more than a block of rows by a block of classes of them:

* the loss and its gradient are
  :func:`~softmaxreg.functional.linear_cross_entropy_grad` with the loss's
  normalized sample weights :math:`s_i / S` and ``reduction="sum"``;
* the Hessian-vector product

  .. math::

      H v = \frac{1}{S} \sum_i s_i \bigl(p_i \odot (z^V_i - \langle p_i, z^V_i \rangle)\bigr) \tilde x_i^\top,
      \qquad z^V_i = V \tilde x_i,

  needs each row's logsumexp (one sweep of
  :func:`~softmaxreg.functional.linear_logsumexp`, kept for the next products at the
  same point, :math:`n` numbers), then one sweep over class blocks for
  :math:`\langle p_i, z^V_i \rangle` and one for the product, both recomputing
  :math:`p` and :math:`z^V` block by block;
* a minibatch gradient is the first pass on the batch's rows.

The products run in the coefficients' dtype (float64), on blocks of ``X``
cast as they are read, so float32 data is never copied whole.
"""

from __future__ import annotations

import numpy as np

from softmaxreg.functional import linear_cross_entropy, linear_cross_entropy_grad, linear_logsumexp, linear_topk

__all__ = ["blocked_pass", "blocked_minibatch_gradient", "BLOCKED_MIN_LOGITS", "BLOCKED_MIN_BATCH_LOGITS"]

# A loss whose n_samples x n_classes float64 logits would pass this many entries (256 MiB) takes these passes,
BLOCKED_MIN_LOGITS = 1 << 25
# and a minibatch whose batch_size x n_classes logits would pass this many (32 MiB) takes the blocked gradient.
BLOCKED_MIN_BATCH_LOGITS = 1 << 22
_BLOCK_BYTES = 8 * 2**20


def _intercept(loss, intercept):
    return intercept if loss.fit_intercept else None


def blocked_pass(loss, w, need_grad, v=None):
    """``(f, grad, hessp)`` of ``loss`` at ``w``, as ``LinearSoftmaxLoss._pass`` returns them."""
    coef, intercept = loss._unpack64(w)
    b = _intercept(loss, intercept)
    if v is None:
        if need_grad:
            total, _, gw, gb = linear_cross_entropy_grad(loss.X, coef, loss.y, b, sample_weight=loss._sw, reduction="sum")
            if gb is None:
                gb = np.zeros(loss.n_classes)
            return loss._finish(float(total), gw, gb, coef, None)
        total = linear_cross_entropy(loss.X, coef, loss.y, b, sample_weight=loss._sw, reduction="sum")
        return loss._finish(float(total), None, None, coef, None)
    v_coef, v_int = loss.unpack(np.asarray(v, dtype=np.float64))
    cache = getattr(loss, "_blocked_lse", None)
    if cache is not None and np.array_equal(cache[0], w):
        lse = cache[1]
    else:
        lse = linear_logsumexp(loss.X, coef, b)
        loss._blocked_lse = (np.array(w, dtype=np.float64, copy=True), lse)
    G, gb = _hessp_data(loss.X, coef, b, v_coef, _intercept(loss, v_int), lse, loss._sw)
    return loss._finish(None, G, gb, coef, v_coef)


def _hessp_data(X, coef, b, v_coef, v_b, lse, sw):
    """The data term of the Hessian-vector product, ``(G, gb)``, by two sweeps over class blocks."""
    n, k = X.shape[0], coef.shape[0]
    rows = max(1, min(n, 256))
    classes = max(1, min(k, _BLOCK_BYTES // (8 * rows)))
    G = np.zeros_like(coef)
    gb = np.zeros(k)
    for r0 in range(0, n, rows):
        sl = slice(r0, min(n, r0 + rows))
        xb = np.asarray(X[sl], dtype=np.float64)

        def blocks():
            for c0 in range(0, k, classes):
                c1 = min(k, c0 + classes)
                z = xb @ coef[c0:c1].T
                zv = xb @ v_coef[c0:c1].T
                if b is not None:
                    z += b[c0:c1]
                if v_b is not None:
                    zv += v_b[c0:c1]
                z -= lse[sl, None]
                np.exp(z, out=z)
                yield c0, c1, z, zv

        mean = np.zeros(sl.stop - r0)
        for _, _, p, zv in blocks():
            mean += np.einsum("ij,ij->i", p, zv)
        for c0, c1, p, zv in blocks():
            zv -= mean[:, None]
            p *= zv
            p *= sw[sl, None]
            G[c0:c1] += p.T @ xb
            gb[c0:c1] += p.sum(axis=0)
    return G, gb


def blocked_minibatch_gradient(loss, w, rows, counts=None):
    """``LinearSoftmaxLoss.minibatch_gradient`` by :func:`~softmaxreg.functional.linear_cross_entropy_grad`."""
    coef, intercept = loss._unpack64(w)
    b = _intercept(loss, intercept)
    rows = np.asarray(rows)
    Xb = np.asarray(loss.X[rows])
    y = loss.y[rows]
    if counts is not None:
        top, _ = linear_topk(Xb, coef, 1, b)
        counts[0] += loss.sample_weight[rows] @ (top[:, 0] == y)
        counts[1] += loss.sample_weight[rows].sum()
    scale = loss.n_samples / (loss.sum_sample_weight * rows.size)
    _, _, G, gb = linear_cross_entropy_grad(Xb, coef, y, b, sample_weight=scale * loss.sample_weight[rows], reduction="sum")
    if gb is None:
        gb = np.zeros(loss.n_classes)
    if loss.l2_reg_strength:
        G += loss.l2_reg_strength * coef
    return loss._pack_free(G, gb)
