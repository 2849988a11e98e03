r"""Cross-entropy of a linear layer over many classes, without materializing the logits.

For rows :math:`x_i \in \mathbb{R}^d`, a weight :math:`W \in \mathbb{R}^{K \times d}`
(``torch.nn.Linear``'s and ``coef_``'s layout) and a bias :math:`b`, the logits are
:math:`z_i = W x_i + b` and

.. math::

    \ell_i = \sum_k c_{ik}\big(\operatorname{lse}(z_i) - z_{ik}\big), \qquad
    G = \frac{\partial \textstyle\sum_i s_i \ell_i}{\partial Z} = \operatorname{diag}(s)\big(\operatorname{diag}(c\mathbf{1})\, P - C\big),

    \nabla_x = G W, \qquad \nabla_W = G^\top X, \qquad \nabla_b = G^\top \mathbf{1},

with :math:`P = \mathrm{softmax}(Z)`, the class coefficients :math:`c_{ik}` of
:func:`~softmaxreg.functional.cross_entropy` (label, class weight, label
smoothing) and sample weights :math:`s_i`.  At :math:`K = 10^5`--:math:`10^6`
the :math:`n \times K` logits, not the data, are the cost, so they are never
held whole: rows go in blocks, and

* when a block's full rows of logits fit the block budget, one pass computes
  them by one GEMM, the max-shifted exponentials in place (one threaded native
  pass that also adds the bias and sums the rows), :math:`G` in place and the
  two gradient products;
* otherwise the classes go in blocks too: a first sweep keeps an online
  logsumexp (running maximum :math:`m` and the sum :math:`r` of the other
  terms, rescaled when the maximum moves; docs/math.md derives it), and a
  second sweep recomputes each block's logits for the gradient (the method of
  Cut Cross-Entropy and Liger's fused linear cross-entropy).

The products run in NumPy's BLAS (float32 stays float32) and accumulate into
the gradients a slice at a time through one small scratch buffer, so the memory
beyond the inputs and the gradients is one block of logits, that buffer and a
few vectors of length :math:`n`.

The numerics contract is :func:`~softmaxreg.functional.cross_entropy`'s:
the row's maximum is subtracted before ``exp``, the logsumexp is
:math:`m + \operatorname{log1p}(r)` with :math:`r` summed without the maximum's
own term, ignored rows and rows of all ``-inf`` logits (every class masked by a
``-inf`` bias) contribute 0 and are not counted, ``-inf`` logits of masked
classes get probability 0, and a row with a ``+inf`` or NaN logit is computed by
:func:`~softmaxreg.functional.cross_entropy` itself on that one row.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._array import quiet_fp
from ._cross_entropy import check_ignore_index, cross_entropy, cross_entropy_grad
from ._softmax import fast_kernels, logsumexp, softmax

__all__ = ["linear_cross_entropy", "linear_cross_entropy_grad", "linear_logsumexp", "linear_topk"]

_REDUCTIONS = ("mean", "sum", "none")
# Logits held at once: a few hundred rows by all of K keeps the GEMMs near their peak rate (every row
# block reads the whole weight and updates the whole weight gradient) and far below n x K.
_BLOCK_BYTES = 32 * 2**20
# The temporaries of the products that accumulate into the gradients. Every product goes through NumPy's
# BLAS: scipy.linalg.blas bundles a BLAS of its own, whose thread pool would spin against NumPy's.
_PRODUCT_BYTES = 4 * 2**20
# Fewest rows per block worth a one-pass block; below it, classes are blocked too.
_MIN_ROWS = 64
_SWEEP_ROWS = 512
# Row maxima within +-this take exp without the shift (e^16 is far from overflow in float32).
_UNSHIFTED_MAX = 16.0


def _slices(rows, row_bytes):
    """Slices of ``range(rows)`` of at most ``_PRODUCT_BYTES`` in rows of ``row_bytes`` each."""
    step = max(1, _PRODUCT_BYTES // max(1, row_bytes))
    return (slice(i, min(rows, i + step)) for i in range(0, rows, step))


def _scratch(dtype, d):
    """The flat buffer of the products' temporaries (one allocation per call: fresh pages fault)."""
    return np.empty(max(_PRODUCT_BYTES // np.dtype(dtype).itemsize, d), dtype)


def _acc_at_b(c, a, b, scratch):
    """``c += a.T @ b`` in place, a slice of ``c``'s rows at a time, the product in ``scratch``."""
    # The product and the BLAS's packed copy of a's columns each stay within _PRODUCT_BYTES.
    for s in _slices(c.shape[0], max(c.shape[1], a.shape[0]) * c.itemsize):
        c[s] += np.matmul(a[:, s].T, b, out=_block(scratch, s.stop - s.start, c.shape[1]))


def _acc_ab(c, a, b, scratch):
    """``c += a @ b`` in place, a slice of ``c``'s rows at a time, the product in ``scratch``."""
    for s in _slices(c.shape[0], c.shape[1] * c.itemsize):
        c[s] += np.matmul(a[s], b, out=_block(scratch, s.stop - s.start, c.shape[1]))


def _acc_outer(c, u, v, alpha):
    """``c += alpha * outer(u, v)`` in place, a slice of ``c``'s rows at a time."""
    for s in _slices(c.shape[0], c.shape[1] * c.itemsize):
        c[s] += (alpha * u[s])[:, None] * v


def _block(buf, r, kc):
    """A C-contiguous (r, kc) view of the block buffer."""
    return buf[: r * kc].reshape(r, kc)


def _host_array(a, name):
    """``a`` as a NumPy array; a tensor that records gradients is refused with what to do."""
    if getattr(a, "requires_grad", False):
        raise TypeError(f"{name} is a tensor that requires grad; pass {name}.detach() (these functions return "
                        "the gradients themselves) or use softmaxreg.nn.LinearCrossEntropy")
    return np.asarray(a)


class _Problem:
    """Validated inputs: arrays in the compute dtype, labels, per-row and per-class coefficients."""

    def __init__(self, x, weight, labels, bias, *, reduction, ignore_index, label_smoothing, class_weight,
                 sample_weight, block_size, need_labels=True):
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction
        ignore_index = check_ignore_index(ignore_index)
        x = _host_array(x, "x")
        weight = _host_array(weight, "weight")
        if x.ndim != 2:
            raise ValueError(f"x must be a 2-D array of shape (n_samples, n_features), got shape {x.shape}")
        if weight.ndim != 2 or weight.shape[1] != x.shape[1]:
            raise ValueError(
                f"weight must have shape (n_classes, n_features) = (K, {x.shape[1]}) like torch.nn.Linear's, "
                f"got {weight.shape}"
            )
        n, k = x.shape[0], weight.shape[0]
        if k == 0:
            raise ValueError("weight has no rows: there must be at least one class")
        arrays = [x, weight] + ([_host_array(bias, "bias")] if bias is not None else [])
        for a in arrays:
            if a.dtype.kind not in "fiub":
                raise TypeError(f"expected real-valued arrays, got dtype {a.dtype}")
        dtype = np.result_type(*[a.dtype for a in arrays])
        self.out_dtype = dtype if dtype.kind == "f" else np.dtype(np.float64)
        self.dtype = np.dtype(np.float64) if dtype.kind != "f" or dtype.itemsize > 8 else np.dtype(dtype)
        if self.dtype.itemsize < 4:
            self.dtype = np.dtype(np.float32)
        # x is cast block by block (float32 data with float64 weights is not copied whole).
        self.x = x if x.dtype.kind == "f" and x.flags.c_contiguous else np.ascontiguousarray(x, dtype=self.dtype)
        self.w = np.ascontiguousarray(weight, dtype=self.dtype)
        if bias is not None:
            bias = np.asarray(bias)
            if bias.shape != (k,):
                raise ValueError(f"bias must have shape (n_classes,) = ({k},), got {bias.shape}")
            bias = np.ascontiguousarray(bias, dtype=self.dtype)
        self.b = bias
        self.n, self.k, self.d = n, k, x.shape[1]

        eps = float(label_smoothing)
        if not 0.0 <= eps <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
        self.eps = eps
        if class_weight is not None:
            class_weight = np.asarray(class_weight, dtype=self.dtype)
            if class_weight.shape != (k,):
                raise ValueError(f"class_weight must have shape (n_classes,) = ({k},), got {class_weight.shape}")
            if not np.all(np.isfinite(class_weight)) or np.any(class_weight < 0):
                raise ValueError("class_weight must be finite and non-negative")
        self.cw = class_weight
        if sample_weight is not None:
            sample_weight = np.asarray(sample_weight, dtype=self.dtype)
            if sample_weight.shape != (n,):
                raise ValueError(f"sample_weight must have shape (n_samples,) = ({n},), got {sample_weight.shape}")
            if not np.all(np.isfinite(sample_weight)) or np.any(sample_weight < 0):
                raise ValueError("sample_weight must be finite and non-negative")
        self.sw = sample_weight

        if need_labels:
            labels = np.asarray(labels)
            if labels.shape != (n,):
                raise ValueError(f"labels must have shape (n_samples,) = ({n},), got {labels.shape}")
            if labels.dtype.kind not in "iu":
                raise ValueError(f"labels must be integer class indices, got dtype {labels.dtype}")
            valid = np.ones(n, dtype=bool) if ignore_index is None else labels != int(ignore_index)
            bad = valid & ((labels < 0) | (labels >= k))
            if np.any(bad):
                first = labels[np.flatnonzero(bad)[0]]
                raise ValueError(
                    f"labels must lie in [0, {k}) (or equal ignore_index={ignore_index}); found {int(bad.sum())} "
                    f"out-of-range labels, for example {int(first)}"
                )
            self.valid = valid
            self.labels = np.where(valid, labels, 0).astype(np.intp)
            wy = np.ones(n, self.dtype) if class_weight is None else class_weight[self.labels]
            self.label_coef = (1.0 - eps) * wy  # c_{i, y_i} from the label alone
            self.wy = wy
            self.w_total = float(k) if class_weight is None else float(np.sum(class_weight))
            self.sumc = self.label_coef + eps / k * self.w_total  # sum_k c_ik for a counted row
        self.ignore_index = ignore_index

        self.rows, self.classes = self._blocks(block_size)

    def _blocks(self, block_size):
        n, k = self.n, self.k
        if block_size is not None:
            try:
                rows, classes = block_size
            except (TypeError, ValueError):
                raise ValueError(f"block_size must be a pair (rows, classes) of positive integers, got {block_size!r}") from None
            if any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in (rows, classes)) \
                    or rows < 1 or classes < 1:
                raise ValueError(f"block_size must be a pair (rows, classes) of positive integers, got {block_size!r}")
            return min(rows, max(n, 1)), min(classes, k)
        item = self.dtype.itemsize
        full_rows = _BLOCK_BYTES // (k * item)
        if full_rows >= min(_MIN_ROWS, n):
            return max(1, min(n, full_rows)), k
        rows = max(1, min(n, _SWEEP_ROWS))
        return rows, max(1, min(k, _BLOCK_BYTES // (rows * item)))

    def xrows(self, rows):
        """``x[rows]`` in the compute dtype."""
        return np.asarray(self.x[rows], dtype=self.dtype)

    def logits(self, out, rows, c0, c1, bias=True):
        """``x[rows] @ weight[c0:c1].T + bias[c0:c1]`` (without the bias if not ``bias``) into ``out``."""
        np.matmul(self.xrows(rows), self.w[c0:c1].T, out=out)
        if bias and self.b is not None:
            out += self.b[c0:c1]
        return out

    def fallback_row(self, i):
        """Row ``i`` by :func:`cross_entropy` on its materialized logits: (loss, gradient of its loss)."""
        z = self.logits(np.empty((1, self.k), self.dtype), slice(i, i + 1), 0, self.k)
        kw = dict(weight=self.cw, label_smoothing=self.eps, reduction="none")
        y = self.labels[i : i + 1]
        return cross_entropy(z, y, **kw)[0], cross_entropy_grad(z, y, **kw)[0]


def _row_max(z):
    """First argmax and maximum of each row of ``z``."""
    a = np.argmax(z, axis=1)
    return a, z[np.arange(z.shape[0]), a]


def _exp_rest(z, a):
    """``exp`` of the max-shifted block in place, and the sum of each row without its maximum's term."""
    ar = np.arange(z.shape[0])
    np.exp(z, out=z)
    z[ar, a] = 0.0
    rest = z.sum(axis=1)
    z[ar, a] = 1.0
    return rest


class _Rows:
    """Per-row results of a sweep over one block of rows: m, rest, z_y, sum_k w_k z_k."""

    def __init__(self, pb, rows, grad):
        self.pb = pb
        self.rows = rows
        r = rows.stop - rows.start
        self.m = np.full(r, -np.inf, pb.dtype)
        self.rest = np.zeros(r, pb.dtype)
        self.zy = np.zeros(r, pb.dtype)
        self.zw = np.zeros(r, pb.dtype)
        self.special = np.zeros(r, bool)  # a +inf or NaN logit: computed by the fallback
        self.grad = grad

    def absorb(self, z, c0, c1, biased):
        """Take one class block of logits ``z`` (r, c1 - c0) into the running statistics.

        ``z`` holds the logits, with the bias if ``biased``; on return it holds
        ``exp(z - m_block)`` per row, or that times ``self.scale`` per row.
        """
        pb = self.pb
        b = None if biased or pb.b is None else pb.b[c0:c1]
        kernels = fast_kernels(z)
        if b is not None and kernels is None:
            z += b
            b = None
        y = pb.labels[self.rows] if hasattr(pb, "labels") else None
        if y is not None:
            inside = (y >= c0) & (y < c1)
            idx = np.flatnonzero(inside)
            col = y[idx] - c0
            self.zy[idx] = z[idx, col] if b is None else z[idx, col] + b[col]
            if pb.eps > 0.0:
                cw = None if pb.cw is None else pb.cw[c0:c1]
                self.zw += z.sum(axis=1) if cw is None else z @ cw
                if b is not None:
                    self.zw += b.sum() if cw is None else b @ cw
        self.scale = None
        if kernels is not None:
            # One threaded pass: the bias, the row maxima, exp(z - m) in place and the sums of the rest.
            mb, rb = kernels.shifted_exp(z, b)
            self.special |= np.isnan(mb)  # a +inf or NaN logit
            ok = np.isfinite(mb)
        else:
            a, mb = _row_max(z)
            self.special |= ~(mb < np.inf)  # +inf or NaN
            ok = np.isfinite(mb)
            if np.all(ok) and mb.size and float(np.max(np.abs(mb))) <= _UNSHIFTED_MAX:
                # Maxima this close to 0 cannot overflow exp: take exp(z) without the shift's pass over the
                # block; z then holds exp(z - m) scaled by e^m per row, and the rest is divided by e^m.
                ar = np.arange(z.shape[0])
                np.exp(z, out=z)
                em = z[ar, a]
                z[ar, a] = 0.0
                rb = z.sum(axis=1) / em
                z[ar, a] = em
                self.scale = em
            else:
                shift = np.where(ok, mb, 0.0).astype(pb.dtype)
                z -= shift[:, None]
                rb = _exp_rest(z, a)
            if not np.all(ok):
                z[~ok] = 0.0
                rb[~ok] = 0.0
        with quiet_fp():
            new = ok & (mb > self.m)
            old = ok & ~new
            m = self.m
            rest = self.rest
            self.rest = np.where(new, rb + (1.0 + rest) * np.exp(m - mb), np.where(old, rest + (1.0 + rb) * np.exp(mb - m), rest))
            self.m = np.where(new, mb, m)
        return z

    def finish(self):
        """Per-row loss (0 for uncounted rows), counted mask and the factor s_i sum(c_i) / (1 + rest_i)."""
        pb = self.pb
        rows = self.rows
        normal = np.isfinite(self.m) & ~self.special
        counted = pb.valid[rows] & ~(self.m == -np.inf) | (pb.valid[rows] & self.special)
        log_norm = np.log1p(self.rest)
        with quiet_fp():
            loss = pb.sumc[rows] * log_norm - pb.label_coef[rows] * (self.zy - self.m)
            if pb.eps > 0.0:
                loss -= pb.eps / pb.k * (self.zw - self.m * pb.w_total)
        use = counted & normal
        loss = np.where(use, loss, 0.0).astype(pb.dtype)
        s = pb.sumc[rows] if pb.sw is None else pb.sumc[rows] * pb.sw[rows]
        factor = np.where(use, s / (1.0 + self.rest), 0.0).astype(pb.dtype)
        self.use = use
        return loss, counted, factor


def _label_term(pb, rows, use, c0, c1):
    """Rows (in the block) whose label lies in [c0, c1), their label columns and s_i c_{i,y_i}."""
    y = pb.labels[rows]
    idx = np.flatnonzero(use & (y >= c0) & (y < c1))
    coef = pb.label_coef[rows][idx]
    if pb.sw is not None:
        coef = coef * pb.sw[rows][idx]
    return idx, y[idx] - c0, coef


def _run(pb, grad):
    """The blocked pass: per-row losses, counted mask, and (if ``grad``) the unscaled gradients of sum_i s_i l_i."""
    n, k, d = pb.n, pb.k, pb.d
    loss = np.zeros(n, pb.dtype)
    counted = np.zeros(n, bool)
    if grad:
        gx = np.zeros((n, d), pb.dtype)
        gw = np.zeros((k, d), pb.dtype)
        gb = np.zeros(k, pb.dtype)
        smooth = np.zeros(n, pb.dtype)  # s_i eps/K for counted rows: the rank-one part of G
        sx = np.zeros(d, pb.dtype)  # smooth @ x
        scratch = _scratch(pb.dtype, d)
    buf = np.empty(pb.rows * pb.classes, pb.dtype)
    specials = []
    for r0 in range(0, n, pb.rows):
        rows = slice(r0, min(n, r0 + pb.rows))
        r = rows.stop - r0
        st = _Rows(pb, rows, grad)
        one_pass = pb.classes == k
        for c0 in range(0, k, pb.classes):
            c1 = min(k, c0 + pb.classes)
            z = pb.logits(_block(buf, r, c1 - c0), rows, c0, c1, bias=False)
            st.absorb(z, c0, c1, biased=False)
        lr, cr, factor = st.finish()
        loss[rows], counted[rows] = lr, cr
        specials.extend(r0 + np.flatnonzero(cr & st.special))
        if not grad:
            continue
        use = st.use
        live = use & (factor > 0)  # rows with a gradient (a zero sample or class weight has none)
        if pb.eps > 0.0:
            s = np.ones(r, pb.dtype) if pb.sw is None else pb.sw[rows]
            smooth[rows] = np.where(use, s * (pb.eps / k), 0.0)
        xb = pb.xrows(rows)
        if pb.eps > 0.0:
            sx += smooth[rows] @ xb
        for c0 in range(0, k, pb.classes):
            c1 = min(k, c0 + pb.classes)
            z = _block(buf, r, c1 - c0)
            if one_pass:
                # z holds exp(z - m); G = diag(factor) (z - C / factor): the row scaling goes onto the
                # (r, d) products and x instead of a pass over the block.
                fac = factor if st.scale is None else factor / st.scale
                if not np.all(live):
                    z[~live] = 0.0
                idx, col, coef = _label_term(pb, rows, live, c0, c1)
                z[idx, col] -= coef / fac[idx]
                np.matmul(z, pb.w, out=gx[rows])
                gx[rows] *= fac[:, None]
                _acc_at_b(gw[c0:c1], z, xb * fac[:, None], scratch)
                gb[c0:c1] += fac @ z
                continue
            # Recompute the block's logits; exp(z - m + log factor) is G's softmax part at once.
            pb.logits(z, rows, c0, c1)
            with quiet_fp():
                z -= np.where(live, st.m - np.log(np.where(live, factor, 1.0)), 0.0).astype(pb.dtype)[:, None]
                np.exp(z, out=z)
            if not np.all(live):
                z[~live] = 0.0
            idx, col, coef = _label_term(pb, rows, live, c0, c1)
            z[idx, col] -= coef
            _acc_ab(gx[rows], z, pb.w[c0:c1], scratch)
            _acc_at_b(gw[c0:c1], z, xb, scratch)
            gb[c0:c1] += z.sum(axis=0)
    if grad:
        if pb.eps > 0.0:
            wvec = np.ones(k, pb.dtype) if pb.cw is None else pb.cw
            _acc_outer(gx, smooth, wvec @ pb.w, -1.0)
            _acc_outer(gw, wvec, sx, -1.0)
            gb -= wvec * smooth.sum()
    for i in specials:
        li, g = pb.fallback_row(i)
        s = 1.0 if pb.sw is None else pb.sw[i]
        loss[i] = li
        if grad:
            g = (s * g).astype(pb.dtype)
            gx[i] += g @ pb.w
            _acc_at_b(gw, g[None, :], pb.xrows(slice(i, i + 1)), scratch)
            gb += g
    if not grad:
        return loss, counted
    return loss, counted, gx, gw, gb


def _reduce(pb, loss, counted):
    """The reduced loss and the factor the gradients of the sum are scaled by."""
    s = loss if pb.sw is None else loss * pb.sw
    if pb.reduction == "none":
        return s.astype(pb.out_dtype), 1.0
    total = np.sum(s)
    if pb.reduction == "sum":
        return np.asarray(total, dtype=pb.out_dtype), 1.0
    den_rows = pb.wy * counted
    if pb.sw is not None:
        den_rows = den_rows * pb.sw
    den = np.sum(den_rows)
    if not den > 0:
        return np.asarray(0.0, dtype=pb.out_dtype), 0.0
    return np.asarray(total / den, dtype=pb.out_dtype), 1.0 / den


def linear_cross_entropy(
    x: Any,
    weight: Any,
    labels: Any,
    bias: Any = None,
    *,
    reduction: str = "mean",
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    class_weight: Any = None,
    sample_weight: Any = None,
    block_size: tuple[int, int] | None = None,
) -> Any:
    r"""Cross-entropy of the linear layer ``x @ weight.T + bias``, in bounded memory.

    Equals ``cross_entropy(x @ weight.T + bias, labels, weight=class_weight, ...)``
    (and so ``torch.nn.functional.cross_entropy(F.linear(x, weight, bias), labels)``):

    .. math::

        \ell_i = \sum_k c_{ik}\big(\operatorname{lse}(z_i) - z_{ik}\big), \qquad z_i = W x_i + b,

    where the online logsumexp over blocks of classes never holds more than
    ``block_size`` logits (see the module's notes and docs/math.md).

    Parameters
    ----------
    x : array_like of shape (n_samples, n_features)
        The layer's input (NumPy; float32 stays float32).
    weight : array_like of shape (n_classes, n_features)
        The weight, laid out as ``torch.nn.Linear.weight`` and ``coef_``.
    labels : array_like of int of shape (n_samples,)
        Class indices in ``[0, n_classes)``, or ``ignore_index``.
    bias : array_like of shape (n_classes,), optional
        A ``-inf`` entry masks its class (probability 0).
    reduction : {"mean", "sum", "none"}, default="mean"
        ``"mean"`` divides by the summed weights of the counted rows, as PyTorch.
    ignore_index : int, optional
        Rows with this label contribute 0 and are not counted.
    label_smoothing : float, default=0.0
        :math:`\varepsilon`: the target becomes :math:`(1-\varepsilon)\, e_y + \varepsilon/K`.
    class_weight : array_like of shape (n_classes,), optional
        Per-class weight (``cross_entropy``'s and PyTorch's ``weight``).
    sample_weight : array_like of shape (n_samples,), optional
        Non-negative per-row weights :math:`s_i`: the sum is :math:`\sum_i s_i \ell_i` and the
        mean divides it by :math:`\sum_i s_i w_{y_i}` over the counted rows.
    block_size : (int, int), optional
        The most (rows, classes) of logits held at once; the default holds a few MB.

    Returns
    -------
    ndarray
        0-d, or of shape (n_samples,) for ``reduction="none"``.

    Raises
    ------
    ValueError
        For shapes that do not match, labels out of range, or a bad option.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxreg.functional import linear_cross_entropy
    >>> x = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> w = np.array([[np.log(3.0), 0.0], [0.0, 0.0]])  # row 0: softmax (3/4, 1/4); row 1: (1/2, 1/2)
    >>> linear_cross_entropy(x, w, np.array([0, 1]), reduction="none")  # -log(3/4), -log(1/2)
    array([0.28768207, 0.69314718])
    """
    pb = _Problem(x, weight, labels, bias, reduction=reduction, ignore_index=ignore_index,
                  label_smoothing=label_smoothing, class_weight=class_weight, sample_weight=sample_weight,
                  block_size=block_size)
    with quiet_fp():
        loss, counted = _run(pb, grad=False)
        return _reduce(pb, loss, counted)[0]


def linear_cross_entropy_grad(
    x: Any,
    weight: Any,
    labels: Any,
    bias: Any = None,
    *,
    reduction: str = "mean",
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    class_weight: Any = None,
    sample_weight: Any = None,
    block_size: tuple[int, int] | None = None,
) -> tuple[Any, Any, Any, Any]:
    r""":func:`linear_cross_entropy` and its gradients with respect to ``x``, ``weight`` and ``bias``.

    With :math:`G = \partial L / \partial Z` (for ``"mean"``, the notes' "prediction minus
    truth" :math:`(\sum_k c_{ik})\,\mathrm{softmax}(z_i) - c_i` divided by the mean's denominator),

    .. math::

        \nabla_x L = G W, \qquad \nabla_W L = G^\top X, \qquad \nabla_b L = G^\top \mathbf{1},

    computed block by block, with :math:`G`'s blocks recomputed rather than stored.
    For ``reduction="none"`` the gradients are those of the sum (PyTorch's
    ``loss.backward(torch.ones_like(loss))``).  Same parameters as :func:`linear_cross_entropy`.

    Returns
    -------
    loss : ndarray
        As :func:`linear_cross_entropy` returns it.
    grad_x : ndarray of shape (n_samples, n_features)
    grad_weight : ndarray of shape (n_classes, n_features)
    grad_bias : ndarray of shape (n_classes,), or None when ``bias`` is None

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxreg.functional import linear_cross_entropy_grad
    >>> x = np.array([[1.0, 2.0]])
    >>> w = np.zeros((2, 2))  # softmax (1/2, 1/2) whatever x is
    >>> loss, gx, gw, gb = linear_cross_entropy_grad(x, w, np.array([0]), np.zeros(2))
    >>> gb  # softmax - onehot
    array([-0.5,  0.5])
    >>> gw  # (softmax - onehot) outer x
    array([[-0.5, -1. ],
           [ 0.5,  1. ]])
    """
    pb = _Problem(x, weight, labels, bias, reduction=reduction, ignore_index=ignore_index,
                  label_smoothing=label_smoothing, class_weight=class_weight, sample_weight=sample_weight,
                  block_size=block_size)
    with quiet_fp():
        loss, counted, gx, gw, gb = _run(pb, grad=True)
        value, scale = _reduce(pb, loss, counted)
        if scale != 1.0:
            for g in (gx, gw, gb):
                g *= scale
    out = pb.out_dtype
    return value, gx.astype(out, copy=False), gw.astype(out, copy=False), (None if bias is None else gb.astype(out, copy=False))


def linear_logsumexp(x: Any, weight: Any, bias: Any = None, *, block_size: tuple[int, int] | None = None) -> Any:
    r"""``logsumexp(x @ weight.T + bias, axis=1)`` by the online sweep, in bounded memory.

    .. math::

        \operatorname{lse}(z_i) = m_i + \operatorname{log1p}(r_i), \qquad
        m_i = \max_k z_{ik}, \quad r_i = \sum_{k \ne k^*} e^{z_{ik} - m_i},

    with :math:`m_i` and :math:`r_i` updated block by block of classes (docs/math.md).
    Same parameters as :func:`linear_cross_entropy`, without labels.

    Returns
    -------
    ndarray of shape (n_samples,)

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxreg.functional import linear_logsumexp
    >>> w = np.log([[1.0], [2.0], [5.0]])
    >>> linear_logsumexp(np.ones((1, 1)), w, block_size=(1, 2))  # log(1 + 2 + 5)
    array([2.07944154])
    """
    pb = _Problem(x, weight, None, bias, reduction="mean", ignore_index=None, label_smoothing=0.0,
                  class_weight=None, sample_weight=None, block_size=block_size, need_labels=False)
    out = np.empty(pb.n, pb.dtype)
    buf = np.empty(pb.rows * pb.classes, pb.dtype)
    with quiet_fp():
        for r0 in range(0, pb.n, pb.rows):
            rows = slice(r0, min(pb.n, r0 + pb.rows))
            st = _Rows(pb, rows, False)
            for c0 in range(0, pb.k, pb.classes):
                c1 = min(pb.k, c0 + pb.classes)
                z = pb.logits(_block(buf, rows.stop - r0, c1 - c0), rows, c0, c1, bias=False)
                st.absorb(z, c0, c1, biased=False)
            out[rows] = st.m + np.log1p(st.rest)
            for j in np.flatnonzero(st.special):
                i = r0 + j
                out[i] = logsumexp(pb.logits(np.empty((1, pb.k), pb.dtype), slice(i, i + 1), 0, pb.k)[0])
    return out.astype(pb.out_dtype, copy=False)


_NO_CLASS = np.iinfo(np.intp).max  # sorts after every real class among equal logits
_PARTITION_BYTES = 4 * 2**20


def _merge_topk(best_v, best_i, z, c0):
    """Merge a block of logits ``z`` (classes ``c0 + j``) into each row's best ``k`` (sorted, largest first).

    Only entries above a row's current k-th best can enter, so after the first
    blocks few candidates remain and they are merged by one sort of all of them;
    rows still short of ``k`` finite logits, and the first block, take a partial
    sort in slices of rows (its index array is 8 bytes an entry).
    """
    r, k = best_v.shape
    kc = z.shape[1]
    t = best_v[:, -1]
    short = t == -np.inf
    rr, cc = np.nonzero(z > np.where(short, np.inf, t)[:, None])
    parts_r, parts_c = [rr], [cc]
    short_rows = np.flatnonzero(short)
    step = max(1, _PARTITION_BYTES // (8 * kc))
    kk = min(k, kc)
    for s0 in range(0, short_rows.size, step):
        sub = short_rows[s0 : s0 + step]
        zs = z[sub]
        # Every entry at least the row's kk-th largest, then the kk largest of those with equal
        # logits by smaller class (a partition alone picks among ties arbitrarily).
        thr = np.partition(zs, kc - kk, axis=1)[:, kc - kk] if kk < kc else np.full(sub.size, -np.inf)
        sr, sc = np.nonzero(zs >= thr[:, None])
        order = np.lexsort((sc, -zs[sr, sc], sr))
        sr, sc = sr[order], sc[order]
        rank = np.arange(sr.size) - np.searchsorted(sr, sr)
        parts_r.append(sub[sr[rank < kk]])
        parts_c.append(sc[rank < kk])
    rr, cc = np.concatenate(parts_r), np.concatenate(parts_c)
    if rr.size == 0:
        return best_v, best_i
    row = np.concatenate([np.repeat(np.arange(r), k), rr])
    v = np.concatenate([best_v.ravel(), z[rr, cc]])
    i = np.concatenate([best_i.ravel(), cc + c0])
    # Larger logit first, then the smaller class index.
    order = np.lexsort((i, -v, row))
    row = row[order]
    first = np.searchsorted(row, np.arange(r))
    keep = np.arange(row.size) - first[row] < k
    return v[order][keep].reshape(r, k), i[order][keep].reshape(r, k)


def linear_topk(x: Any, weight: Any, k: int, bias: Any = None, *, block_size: tuple[int, int] | None = None):
    r"""The ``k`` most probable classes of ``softmax(x @ weight.T + bias)`` per row, in bounded memory.

    A sweep over blocks of classes keeps each row's best ``k`` logits seen so far
    (merged with the block's best by a partial sort) and the online logsumexp;
    the probabilities are then :math:`e^{z_{ik} - \operatorname{lse}(z_i)}`.

    Parameters
    ----------
    x : array_like of shape (n_samples, n_features)
    weight : array_like of shape (n_classes, n_features)
    k : int
        How many classes per row, ``1 <= k <= n_classes``.
    bias : array_like of shape (n_classes,), optional
    block_size : (int, int), optional
        As in :func:`linear_cross_entropy`.

    Returns
    -------
    classes : ndarray of int of shape (n_samples, k)
        Class indices, most probable first; equal probabilities in class order, as ``argmax``
        (and so ``predict``) breaks ties.
    probabilities : ndarray of shape (n_samples, k)
        Their probabilities.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxreg.functional import linear_topk
    >>> w = np.log([[1.0], [5.0], [2.0]])  # x = 1: probabilities (1/8, 5/8, 2/8)
    >>> classes, p = linear_topk(np.ones((1, 1)), w, 2)
    >>> classes, p
    (array([[1, 2]]), array([[0.625, 0.25 ]]))
    """
    pb = _Problem(x, weight, None, bias, reduction="mean", ignore_index=None, label_smoothing=0.0,
                  class_weight=None, sample_weight=None, block_size=block_size, need_labels=False)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= pb.k:
        raise ValueError(f"k must be an integer in [1, n_classes] = [1, {pb.k}], got {k!r}")
    k = int(k)
    n = pb.n
    classes = np.zeros((n, k), np.intp)
    probs = np.zeros((n, k), pb.dtype)
    buf = np.empty(pb.rows * pb.classes, pb.dtype)
    with quiet_fp():
        for r0 in range(0, n, pb.rows):
            rows = slice(r0, min(n, r0 + pb.rows))
            r = rows.stop - r0
            st = _Rows(pb, rows, False)
            best_v = np.full((r, k), -np.inf, pb.dtype)
            best_i = np.full((r, k), _NO_CLASS, np.intp)
            for c0 in range(0, pb.k, pb.classes):
                c1 = min(pb.k, c0 + pb.classes)
                z = pb.logits(_block(buf, r, c1 - c0), rows, c0, c1)
                best_v, best_i = _merge_topk(best_v, best_i, z, c0)
                st.absorb(z, c0, c1, biased=True)
            normal = np.isfinite(st.m) & ~st.special
            lse = st.m + np.log1p(st.rest)
            p = np.exp(best_v - lse[:, None])
            p[~normal] = 0.0
            classes[rows], probs[rows] = best_i, p
            for j in np.flatnonzero(~normal):
                i = r0 + j
                z = pb.logits(np.empty((1, pb.k), pb.dtype), slice(i, i + 1), 0, pb.k)[0]
                pr = softmax(z)
                order = np.lexsort((np.arange(pb.k), -pr))[:k]
                classes[i], probs[i] = order, pr[order]
    return classes, probs.astype(pb.out_dtype, copy=False)
