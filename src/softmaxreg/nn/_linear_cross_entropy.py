"""A fused last layer for a large output vocabulary: Linear followed by softmax cross-entropy.

``Linear(in, K)`` then :class:`~softmaxreg.nn.SoftmaxCrossEntropy` holds the
:math:`n \\times K` logits and their gradient; at :math:`K = 10^5` those, not
the network, fill the memory. :class:`LinearCrossEntropy` computes the same
loss and gradients by :func:`~softmaxreg.functional.linear_cross_entropy_grad`,
which never holds more than a block of them.
"""

import numbers

import numpy as np

from softmaxreg.functional import linear_cross_entropy, linear_cross_entropy_grad, linear_topk
from softmaxreg.nn._init import get_initializer, torch_uniform, zeros
from softmaxreg.nn._layers import Module, _check_input

__all__ = ["LinearCrossEntropy"]

_FLOATS = (np.float32, np.float64)


class LinearCrossEntropy(Module):
    """``SoftmaxCrossEntropy()(Linear(in_features, n_classes)(x), target)``, fused, in bounded memory.

    .. math::
        L = \\frac{1}{\\sum_i w_{y_i}} \\sum_i \\ell_i, \\quad
        \\ell_i = \\operatorname{lse}(W x_i + b) - (W x_i + b)_{y_i}, \\qquad
        \\frac{\\partial L}{\\partial W} = G^\\top X, \\quad
        \\frac{\\partial L}{\\partial b} = G^\\top \\mathbf 1, \\quad
        \\frac{\\partial L}{\\partial X} = G W,

    with :math:`G = (\\mathrm{softmax}(XW^\\top + b) - Y)/n` (for the plain mean)
    computed and consumed block by block (docs/math.md). In training mode
    ``forward(x, target)`` returns the loss and computes the gradients in the same
    pass; ``backward(grad_output=1.0)`` writes them into ``grads`` (scaled by the
    scalar ``grad_output``) and returns :math:`\\partial L/\\partial x`. In
    evaluation mode ``forward`` computes the loss only.

    Parameters
    ----------
    in_features, n_classes : int
        Input size and number of classes (the vocabulary).
    bias : bool, default=True
    init : str or callable, default="torch"
        Weight initializer, as :class:`~softmaxreg.nn.Linear`'s.
    dtype : {np.float64, np.float32}, default=np.float64
    rng : None, int or numpy.random.Generator
    ignore_index : int, optional
    label_smoothing : float, default=0.0
    class_weight : array_like of shape (n_classes,), optional
        PyTorch's ``weight`` of ``CrossEntropyLoss``.
    reduction : {"mean", "sum"}, default="mean"

    Attributes
    ----------
    params, grads : dict
        ``"weight"`` of shape (n_classes, in_features) and ``"bias"`` of shape (n_classes,).

    Examples
    --------
    >>> head = LinearCrossEntropy(2, 3, init="zeros")  # uniform probabilities: loss log 3
    >>> x = np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> round(float(head(x, np.array([0, 2]))), 6)
    1.098612
    >>> head.backward()  # G W with W = 0
    array([[0., 0.],
           [0., 0.]])
    >>> head.grads["bias"]  # (2 rows x 1/3 - label counts [1, 0, 1]) / 2
    array([-0.16666667,  0.33333333, -0.16666667])
    """

    def __init__(self, in_features, n_classes, bias=True, *, init="torch", dtype=np.float64, rng=None,
                 ignore_index=None, label_smoothing=0.0, class_weight=None, reduction="mean"):
        super().__init__()
        for name, v in (("in_features", in_features), ("n_classes", n_classes)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}.")
        dtype = np.dtype(dtype)
        if dtype.type not in _FLOATS:
            raise ValueError(f"dtype must be float32 or float64, got {dtype}.")
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum' (a fused head returns a scalar loss), got {reduction!r}.")
        self.in_features, self.n_classes = int(in_features), int(n_classes)
        # the loss's options are checked here, not at the first forward, as the layer's shape is
        if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, numbers.Real) \
                or not 0.0 <= float(label_smoothing) <= 1.0:
            raise ValueError(f"label_smoothing must be a number in [0, 1], got {label_smoothing!r}.")
        if ignore_index is not None and (isinstance(ignore_index, bool)
                                         or not isinstance(ignore_index, numbers.Integral)):
            raise TypeError(f"ignore_index must be an integer class index or None, got {ignore_index!r}.")
        if class_weight is not None and np.shape(class_weight) != (self.n_classes,):
            raise ValueError(f"class_weight must have shape (n_classes,) = ({self.n_classes},), "
                             f"got {np.shape(class_weight)}.")
        if class_weight is not None and not np.all(np.isfinite(class_weight) & (np.asarray(class_weight) >= 0)):
            raise ValueError("class_weight must be finite and non-negative.")
        rng = np.random.default_rng(rng)
        init_fn = get_initializer(init)
        shape = (self.n_classes, self.in_features)
        self.params["weight"] = np.ascontiguousarray(init_fn(rng, shape, dtype), dtype=dtype)
        self.grads["weight"] = np.zeros(shape, dtype=dtype)
        if bias:
            b = (torch_uniform(rng, (self.n_classes,), dtype, fan_in=self.in_features) if init_fn is torch_uniform
                 else zeros(rng, (self.n_classes,), dtype))
            self.params["bias"] = b
            self.grads["bias"] = np.zeros(self.n_classes, dtype=dtype)
        self.kwargs = dict(ignore_index=ignore_index, label_smoothing=label_smoothing,
                           class_weight=class_weight, reduction=reduction)
        self._saved = None

    def __call__(self, x, target):
        return self.forward(x, target)

    def forward(self, x, target):
        x = _check_input(x)
        w = self.params["weight"]
        if x.shape[1] != self.in_features:
            raise ValueError(f"input has {x.shape[1]} features but this layer expects {self.in_features}.")
        if x.dtype != w.dtype:
            raise ValueError(
                f"input dtype {x.dtype} does not match the layer's {w.dtype}: cast the input "
                f"with x.astype(np.{w.dtype}) or build the layer with dtype=np.{x.dtype}."
            )
        args = (x, w, np.asarray(target), self.params.get("bias"))
        if not self.training:
            self._saved = None
            return linear_cross_entropy(*args, **self.kwargs)
        loss, gx, gw, gb = linear_cross_entropy_grad(*args, **self.kwargs)
        self._saved = (gx, gw, gb)
        return loss

    def backward(self, grad_output=1.0):
        if self._saved is None:
            raise RuntimeError("backward needs a forward in training mode first: compute the loss with train() on.")
        if np.ndim(grad_output) != 0:
            raise ValueError("grad_output must be a scalar: the layer's loss is reduced to one number.")
        gx, gw, gb = self._saved
        scale = gw.dtype.type(grad_output)
        np.multiply(gw, scale, out=self.grads["weight"])
        if gb is not None:
            np.multiply(gb, scale, out=self.grads["bias"])
        return gx * scale if scale != 1 else gx

    def topk(self, x, k):
        """The ``k`` most probable classes of each row and their probabilities, in bounded memory."""
        x = _check_input(x)
        return linear_topk(x, self.params["weight"], k, self.params.get("bias"))

    def __repr__(self):
        return (f"LinearCrossEntropy(in_features={self.in_features}, n_classes={self.n_classes}, "
                f"bias={'bias' in self.params}, dtype={self.params['weight'].dtype})")
