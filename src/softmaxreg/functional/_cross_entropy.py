r"""Cross-entropy in its practical forms, and its gradient with respect to the logits.

For logits :math:`z \in \mathbb{R}^K`, temperature :math:`T` and a target
distribution :math:`q`, the cross-entropy is

.. math::

    H(q, \mathrm{softmax}(z/T)) = -\sum_k q_k \log \mathrm{softmax}(z/T)_k
    = \sum_k q_k \big(\operatorname{lse}(z/T) - z_k/T\big),

and for a one-hot target (an integer label :math:`y`) it is
:math:`\operatorname{lse}(z/T) - z_y/T` (no full log-softmax is needed).
Minimizing it over a data set is maximizing the likelihood of the labels.
Its gradient is the notes' "prediction minus truth":

.. math::

    \frac{\partial H}{\partial z} = \frac{(\textstyle\sum_k q_k)\,\mathrm{softmax}(z/T) - q}{T}.

Conventions (shared with PyTorch's ``F.cross_entropy``)
-------------------------------------------------------
Every loss is written as :math:`\ell_i = \sum_k c_{ik} (\operatorname{lse}_i - z_{ik}/T)`
with per-sample class coefficients :math:`c_{ik}`:

* integer labels: :math:`c_i = (1-\varepsilon)\, w_{y_i} e_{y_i} + \frac{\varepsilon}{K} w`
  (``weight`` :math:`w`, ``label_smoothing`` :math:`\varepsilon`); the weighted
  mean divides by :math:`\sum_i w_{y_i}` over the counted samples;
* probability targets: :math:`c_i = w \odot \big((1-\varepsilon) q_i + \varepsilon/K\big)`;
  the mean divides by the number of counted rows.

Samples whose label equals ``ignore_index`` and rows whose logits are all
``-inf`` contribute 0 and are not counted; a batch with nothing counted has
loss 0 (PyTorch returns NaN there).  Terms with :math:`c_{ik} = 0` contribute
0 even where the log-probability is ``-inf`` (:math:`0 \log 0 = 0`).
"""

from __future__ import annotations

import math
from typing import Any

import array_api_compat
import numpy as np

from ._array import as_array, compute_dtypes, get_namespace, move_axis_last, normalize_axis, quiet_fp, restore_axis
from ._softmax import cast, check_out, check_temperature, fast_kernels, into, shift, softmax

__all__ = ["cross_entropy", "cross_entropy_grad", "binary_cross_entropy", "distillation_loss"]

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def check_ignore_index(ignore_index) -> int | None:
    """``ignore_index`` as an int (or None); anything but an integer is an error, as in PyTorch."""
    if ignore_index is None:
        return None
    if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"ignore_index must be an integer class index or None, got {ignore_index!r}")
    return int(ignore_index)


class _Problem:
    """Validated inputs of a cross-entropy call, class axis last, in the compute dtype."""

    def __init__(self, logits, target, *, axis, weight, ignore_index, label_smoothing, temperature, reduction):
        _check_reduction(reduction)
        ignore_index = check_ignore_index(ignore_index)
        self.reduction = reduction
        self.temperature = check_temperature(temperature)
        eps = float(label_smoothing)
        if not 0.0 <= eps <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
        self.eps = eps
        logits = as_array(logits)
        xp = get_namespace(logits)
        self.xp = xp
        device = array_api_compat.device(logits)
        compute, self.out_dtype = compute_dtypes(xp, logits)
        self.axis = normalize_axis(axis, logits.ndim)
        self.shape = tuple(logits.shape)
        if logits.dtype != compute:
            logits = xp.astype(logits, compute)
        self.z = move_axis_last(xp, logits, self.axis)
        k = self.z.shape[-1]
        self.n_classes = k
        batch_shape = self.shape[: self.axis] + self.shape[self.axis + 1 :]

        target = xp.asarray(as_array(target), device=device)
        self.indices = xp.isdtype(target.dtype, "integral")
        if self.indices:
            if tuple(target.shape) != batch_shape:
                raise ValueError(
                    f"integer class targets must have the logits' shape without the class axis, {batch_shape}, "
                    f"got {tuple(target.shape)}; for probability targets pass a float array of shape {self.shape}"
                )
            valid = xp.ones(batch_shape, dtype=xp.bool, device=device)
            if ignore_index is not None:
                valid = target != int(ignore_index)
            bad = valid & ((target < 0) | (target >= k))
            if bool(xp.any(bad)):
                raise ValueError(f"class targets must lie in [0, {k}) (or equal ignore_index={ignore_index}); found out-of-range labels")
            self.labels = xp.where(valid, target, xp.zeros_like(target))
            self.valid = valid
            self.q = None
        elif xp.isdtype(target.dtype, "real floating"):
            if tuple(target.shape) != self.shape:
                raise ValueError(
                    f"probability targets must have the logits' shape {self.shape}, got {tuple(target.shape)}; "
                    f"for class indices pass an integer array of shape {batch_shape}"
                )
            if ignore_index is not None:
                raise ValueError("ignore_index applies to integer class targets only; drop it or pass class indices")
            self.q = move_axis_last(xp, xp.astype(target, compute), self.axis)
            self.valid = None
            self.labels = None
        else:
            raise ValueError(f"target must be integer class indices or float probabilities, got dtype {target.dtype}")

        if weight is not None:
            weight = xp.asarray(as_array(weight), device=device)
            if tuple(weight.shape) != (k,):
                raise ValueError(f"weight must be a per-class vector of shape ({k},), got {tuple(weight.shape)}")
            weight = xp.astype(weight, compute)
            if not bool(xp.all(xp.isfinite(weight) & (weight >= 0))):
                raise ValueError("weight must hold finite, non-negative per-class weights")
        self.weight = weight
        self.s = shift(xp, self.z, temperature=self.temperature)
        # Rows with no finite logit (all -inf) carry no information: they contribute 0.
        nonempty = self.s.offset[..., 0] != -float("inf")
        self.counted = nonempty if self.valid is None else (self.valid & nonempty)

    def onehot(self):
        xp = self.xp
        ar = xp.arange(self.n_classes, device=array_api_compat.device(self.z))
        return ar == xp.expand_dims(self.labels, axis=-1)

    def coefficients(self):
        """Per-sample class coefficients c of shape (..., K), zero for uncounted rows."""
        xp = self.xp
        dtype = self.z.dtype
        k = self.n_classes
        w = self.weight
        if self.indices:
            oh = xp.astype(self.onehot(), dtype)
            wy = oh if w is None else oh * w
            c = (1.0 - self.eps) * wy
            if self.eps > 0.0:
                c = c + (self.eps / k) * (xp.ones_like(c) if w is None else w)
        else:
            q = self.q
            if self.eps > 0.0:
                q = (1.0 - self.eps) * q + self.eps / k
            c = q if w is None else q * w
        return xp.where(xp.expand_dims(self.counted, axis=-1), c, xp.zeros_like(c))

    def denominator(self):
        """What the mean divides by (PyTorch's convention)."""
        xp = self.xp
        counted = xp.astype(self.counted, self.z.dtype)
        if self.indices and self.weight is not None:
            wy = xp.sum(xp.astype(self.onehot(), self.z.dtype) * self.weight, axis=-1)
            return xp.sum(wy * counted)
        return xp.sum(counted)

    def per_sample(self):
        """Loss per sample, shape (...), 0 for uncounted rows."""
        xp = self.xp
        c = self.coefficients()
        with quiet_fp():
            nlogp = self.s.log_norm - self.s.shifted  # -log softmax(z/T) >= 0
            terms = xp.where(c != 0, c * nlogp, xp.zeros_like(c))
            return xp.sum(terms, axis=-1)

    def gradient_rows(self):
        """Gradient of each sample's loss, (sum c) softmax(z/T) - c) / T, shape (..., K)."""
        xp = self.xp
        c = self.coefficients()
        p = self.s.exp / (1.0 + self.s.rest)
        with quiet_fp():
            return (xp.sum(c, axis=-1, keepdims=True) * p - c) / self.temperature

    def reduce(self, values):
        xp = self.xp
        if self.reduction == "none":
            return values
        total = xp.sum(values)
        if self.reduction == "sum":
            return total
        den = self.denominator()
        return xp.where(den > 0, total / xp.where(den > 0, den, xp.ones_like(den)), xp.zeros_like(total))

    def cast(self, y):
        return cast(self.xp, y, self.out_dtype)


def _fast_labels(logits, target, axis, weight, ignore_index, label_smoothing, temperature, reduction, grad, out=None):
    """The kernels' cross-entropy (or gradient) for integer labels, or ``None``.

    Only clearly valid calls take the fast path; anything else (and every error
    message) is left to :class:`_Problem`. Rows the kernels flag (non-finite
    maximum, NaN, out-of-range label) are computed here by :class:`_Problem`.
    """
    logits = as_array(logits)
    k = fast_kernels(logits)
    if k is None or reduction not in _REDUCTIONS:
        return None
    try:
        ignore_index = check_ignore_index(ignore_index)
    except TypeError:
        return None  # _Problem words the error
    target = as_array(target)
    if type(target) is not np.ndarray or target.dtype.kind not in "iu":
        return None
    if not (isinstance(axis, int) and -logits.ndim <= axis < logits.ndim):
        return None
    ax = axis % logits.ndim
    n_classes = logits.shape[ax]
    if tuple(target.shape) != logits.shape[:ax] + logits.shape[ax + 1 :]:
        return None
    if weight is not None:
        weight = as_array(weight)
        if type(weight) is not np.ndarray or weight.shape != (n_classes,) or weight.dtype.kind not in "fiu":
            return None
        if not (np.isfinite(weight).all() and (weight >= 0).all()):
            return None  # _Problem words the error
    try:
        eps = float(label_smoothing)
        t = check_temperature(temperature)
    except (TypeError, ValueError):
        return None
    if not 0.0 <= eps <= 1.0:
        return None

    def reference(rows, labels):
        pb = _Problem(
            rows, labels, axis=-1, weight=weight, ignore_index=ignore_index,
            label_smoothing=eps, temperature=t, reduction="none",
        )
        if grad:
            return pb.gradient_rows(), pb.denominator()
        return pb.per_sample(), pb.denominator()

    with quiet_fp():
        y = k.cross_entropy_labels(logits, target, axis=ax, weight=weight, ignore_index=ignore_index,
                                   label_smoothing=eps, temperature=t, reduction=reduction, grad=grad,
                                   reference=reference, out=out)
    if not grad and reduction != "none":
        out_dtype = compute_dtypes(np, logits)[1]
        return np.asarray(y, dtype=out_dtype)
    return into(out, y)


def cross_entropy(
    logits: Any,
    target: Any,
    *,
    axis: int = -1,
    weight: Any = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    temperature: float = 1.0,
    reduction: str = "mean",
) -> Any:
    r"""Cross-entropy between targets and ``softmax(logits / temperature)``.

    .. math::

        \ell_i = \sum_k c_{ik}\big(\operatorname{lse}(z_i/T) - z_{ik}/T\big),
        \qquad \text{one-hot, unweighted: } \ell_i = \operatorname{lse}(z_i) - z_{i y_i},

    with :math:`c_{ik}` built from the target, ``weight`` and ``label_smoothing``
    as in the module's conventions (which match ``torch.nn.functional.cross_entropy``).

    Parameters
    ----------
    logits : array_like of shape (..., K, ...)
        Unnormalized scores; ``axis`` is the class axis.
    target : array_like
        Either integer class indices of ``logits``' shape without ``axis``, or
        class probabilities (soft targets) of ``logits``' shape.
    axis : int, default=-1
        The class axis.
    weight : array_like of shape (K,), optional
        Per-class weight, finite and non-negative (anything else is a ValueError).
    ignore_index : int, optional
        Samples with this label contribute 0 and are not counted (index targets only).
    label_smoothing : float, default=0.0
        :math:`\varepsilon \in [0, 1]`: the target becomes :math:`(1-\varepsilon) q + \varepsilon/K`.
    temperature : float, default=1.0
        :math:`T > 0`; the logits are divided by it.
    reduction : {"mean", "sum", "none"}, default="mean"
        ``"mean"`` divides by the summed weights of the counted samples
        (index targets) or by the number of counted rows (probability targets).

    Returns
    -------
    array
        A 0-d array, or the per-sample losses (``logits``' shape without ``axis``)
        for ``reduction="none"``.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxreg.functional import cross_entropy
    >>> logits = np.log([[1.0, 3.0], [1.0, 1.0]])  # softmax rows (1/4, 3/4) and (1/2, 1/2)
    >>> cross_entropy(logits, np.array([1, 0]), reduction="none")  # -log(3/4), -log(1/2)
    array([0.28768207, 0.69314718])
    >>> float(cross_entropy(logits, np.array([1, 0]), ignore_index=0))  # only the first row counts
    0.2876820724517809
    >>> cross_entropy(logits, np.array([[0.0, 1.0], [0.5, 0.5]]), reduction="none")  # soft targets
    array([0.28768207, 0.69314718])
    """
    fast = _fast_labels(logits, target, axis, weight, ignore_index, label_smoothing, temperature, reduction, False)
    if fast is not None:
        return fast
    pb = _Problem(
        logits, target, axis=axis, weight=weight, ignore_index=ignore_index,
        label_smoothing=label_smoothing, temperature=temperature, reduction=reduction,
    )
    return pb.cast(pb.reduce(pb.per_sample()))


def cross_entropy_grad(
    logits: Any,
    target: Any,
    *,
    axis: int = -1,
    weight: Any = None,
    ignore_index: int | None = None,
    label_smoothing: float = 0.0,
    temperature: float = 1.0,
    reduction: str = "mean",
    out: Any = None,
) -> Any:
    r"""Gradient of :func:`cross_entropy` with respect to the logits.

    .. math::

        \frac{\partial \ell_i}{\partial z_i} = \frac{(\textstyle\sum_k c_{ik})\,\mathrm{softmax}(z_i/T) - c_i}{T},

    which for a one-hot target is the notes' :math:`\mathrm{softmax}(z) - y`.
    With ``reduction="mean"`` every row is divided by the same denominator as the
    loss; with ``"sum"`` it is not; with ``"none"`` row :math:`i` holds the
    gradient of :math:`\ell_i` (so the three agree up to that scalar).  Same
    parameters as :func:`cross_entropy`, and ``out`` (a NumPy array of the
    logits' shape and float dtype to write the gradient into, as in
    :func:`~softmaxreg.functional.softmax`).

    Returns
    -------
    array of ``logits``' shape
        ``out`` if given.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxreg.functional import cross_entropy_grad
    >>> cross_entropy_grad(np.log([[1.0, 3.0]]), np.array([1]))  # softmax - onehot
    array([[ 0.25, -0.25]])
    """
    check_out(out, logits, "cross_entropy_grad")
    fast = _fast_labels(logits, target, axis, weight, ignore_index, label_smoothing, temperature, reduction, True, out)
    if fast is not None:
        return fast
    pb = _Problem(
        logits, target, axis=axis, weight=weight, ignore_index=ignore_index,
        label_smoothing=label_smoothing, temperature=temperature, reduction=reduction,
    )
    xp = pb.xp
    g = pb.gradient_rows()
    if pb.reduction == "mean":
        den = pb.denominator()
        g = g / xp.where(den > 0, den, xp.ones_like(den))
    return into(out, pb.cast(restore_axis(xp, g, pb.axis)))


def _weights_like(xp, w, name, shape, dtype, device):
    """``w`` as an array of ``dtype`` that broadcasts to ``shape`` without enlarging it (as PyTorch requires)."""
    w = xp.astype(xp.asarray(as_array(w), device=device), dtype)
    shape = tuple(shape)
    try:
        fits = np.broadcast_shapes(tuple(w.shape), shape) == shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{name} of shape {tuple(w.shape)} does not broadcast to the logits' shape {shape}")
    return w


def binary_cross_entropy(
    logits: Any,
    target: Any,
    *,
    weight: Any = None,
    pos_weight: Any = None,
    reduction: str = "mean",
) -> Any:
    r"""Binary cross-entropy from logits, elementwise and stable for any logit.

    .. math::

        \ell = -w\,\big[p\, t \log\sigma(x) + (1 - t)\log(1 - \sigma(x))\big]
             = w\,\big[p\, t\, \operatorname{softplus}(-x) + (1 - t)\operatorname{softplus}(x)\big],

    with :math:`\operatorname{softplus}(x) = \max(x, 0) + \operatorname{log1p}(e^{-|x|})`,
    ``pos_weight`` :math:`p` (per label, default 1) and ``weight`` :math:`w`
    (broadcast elementwise), as ``torch.nn.functional.binary_cross_entropy_with_logits``.
    These are the notes' "several logistic regressions" for non-exclusive classes.

    Parameters
    ----------
    logits : array_like
        Scores :math:`x`.
    target : array_like of the same shape
        Targets :math:`t \in [0, 1]`.
    weight, pos_weight : array_like, optional
        Broadcast against ``logits``.
    reduction : {"mean", "sum", "none"}, default="mean"
        ``"mean"`` averages over all elements.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxreg.functional import binary_cross_entropy
    >>> binary_cross_entropy(np.array([0.0, 1000.0, -1000.0]), np.array([1.0, 1.0, 1.0]), reduction="none")
    array([6.93147181e-01, 0.00000000e+00, 1.00000000e+03])
    """
    _check_reduction(reduction)
    x = as_array(logits)
    xp = get_namespace(x)
    compute, out = compute_dtypes(xp, x)
    device = array_api_compat.device(x)
    x = xp.astype(x, compute) if x.dtype != compute else x
    t = xp.astype(xp.asarray(as_array(target), device=device), compute)
    if tuple(t.shape) != tuple(x.shape):
        raise ValueError(f"target must have the logits' shape {tuple(x.shape)}, got {tuple(t.shape)}")
    with quiet_fp():
        zero = xp.zeros_like(x)
        tail = xp.log1p(xp.exp(-xp.abs(x)))
        sp_pos = xp.maximum(x, zero) + tail  # softplus(x)
        # softplus(-x) on its own: softplus(x) - x cancels to 0 once softplus(-x) < eps * x (x > 37)
        sp_neg = xp.maximum(-x, zero) + tail
        # A term whose target weight is 0 is absent, even where its softplus is infinite (x = +-inf):
        # 0 * inf would make a certain, right prediction NaN.
        pos_term = xp.where(t == 0, zero, t * sp_neg)
        if pos_weight is not None:
            pos_term = pos_term * _weights_like(xp, pos_weight, "pos_weight", x.shape, compute, device)
        loss = pos_term + xp.where(t == 1, zero, (1.0 - t) * sp_pos)
        if weight is not None:
            loss = loss * _weights_like(xp, weight, "weight", x.shape, compute, device)
    if reduction == "sum":
        loss = xp.sum(loss)
    elif reduction == "mean":
        loss = xp.mean(loss) if math.prod(loss.shape) else xp.asarray(0.0, dtype=compute, device=device)
    return cast(xp, loss, out)


def distillation_loss(
    student_logits: Any,
    teacher_logits: Any,
    target: Any = None,
    *,
    temperature: float = 2.0,
    alpha: float = 0.5,
    axis: int = -1,
    reduction: str = "mean",
) -> Any:
    r"""Knowledge-distillation loss (Hinton, Vinyals and Dean, 2015).

    .. math::

        L = \alpha\, T^2\, H\big(\mathrm{softmax}(t/T),\ \mathrm{softmax}(s/T)\big)
            + (1 - \alpha)\, H\big(y,\ \mathrm{softmax}(s)\big),

    for student logits :math:`s`, teacher logits :math:`t` and hard labels
    :math:`y`.  The :math:`T^2` keeps the soft term's gradient on the scale of
    the hard term's as :math:`T` grows.  Without ``target`` only the soft term
    :math:`\alpha T^2 H(\cdot,\cdot)` is returned (pass ``alpha=1`` for the plain soft loss).

    Parameters
    ----------
    student_logits, teacher_logits : array_like of the same shape (..., K, ...)
    target : array_like, optional
        Hard targets (indices or probabilities) for the second term.
    temperature : float, default=2.0
    alpha : float, default=0.5
        Weight of the soft term, in [0, 1].
    axis : int, default=-1
    reduction : {"mean", "sum", "none"}, default="mean"

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxreg.functional import distillation_loss
    >>> z = np.log([[1.0, 3.0]])
    >>> # teacher == student at T = 1: soft term = entropy of (1/4, 3/4)
    >>> round(float(distillation_loss(z, z, temperature=1.0, alpha=1.0)), 6)
    0.562335
    """
    t = check_temperature(temperature)
    a = float(alpha)
    if not 0.0 <= a <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    s = as_array(student_logits)
    tl = as_array(teacher_logits)
    if tuple(s.shape) != tuple(tl.shape):
        raise ValueError(f"student and teacher logits must have the same shape, got {tuple(s.shape)} and {tuple(tl.shape)}")
    soft_target = softmax(tl, axis=axis, temperature=t)
    xp = get_namespace(s)
    soft_target = xp.asarray(soft_target, device=array_api_compat.device(s))
    if xp.isdtype(s.dtype, "real floating") and soft_target.dtype != s.dtype:
        soft_target = xp.astype(soft_target, s.dtype)
    loss = a * t * t * cross_entropy(s, soft_target, axis=axis, temperature=t, reduction=reduction)
    if target is not None and a < 1.0:
        loss = loss + (1.0 - a) * cross_entropy(s, target, axis=axis, reduction=reduction)
    return loss
