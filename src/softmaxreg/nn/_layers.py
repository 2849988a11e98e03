"""Layers with an explicit forward and backward pass (no autograd).

Conventions
-----------
* Inputs are 2-D, ``(n_samples, n_features)``; rows are samples. A
  :class:`Linear` layer also takes a scipy.sparse matrix (a network's first layer).
* ``forward(x)`` keeps what ``backward`` needs; ``backward(grad_output)``
  takes :math:`\\partial L / \\partial \\text{out}` (same shape as the output)
  and returns :math:`\\partial L / \\partial x`. Calling a layer is calling
  ``forward``.
* Parameters and their gradients are plain NumPy arrays in two dicts,
  ``layer.params`` and ``layer.grads``, under the same names (PyTorch's
  ``layer.weight`` and ``layer.weight.grad``). ``backward`` *overwrites* the
  gradient arrays in place (PyTorch accumulates); the arrays themselves are
  never replaced, so an optimizer can hold on to them.
* A layer computes in the dtype of its parameters (float32 or float64);
  activations keep the dtype of their input. Nothing is silently upcast.

The one derivative worth reading twice is the softmax layer's. With
:math:`s = \\mathrm{softmax}(x)` the Jacobian is
:math:`J = \\mathrm{diag}(s) - s s^\\top`, which is symmetric, so the backward
pass is :math:`J^\\top g = s \\odot (g - \\langle s, g\\rangle)`: one dot
product per row, never the :math:`K \\times K` matrix. Followed by
cross-entropy with one-hot :math:`y`, whose gradient in :math:`s` is
:math:`-y / s`, the product collapses to :math:`s - y`; that is why
:class:`SoftmaxCrossEntropy` fuses the two. The weight gradient of a linear
layer :math:`o = x W^\\top + b` is then :math:`G^\\top X` with
:math:`G = (S - Y)/n`, again without any Jacobian.
"""

import abc
import numbers

import numpy as np
import scipy.sparse as sp

from softmaxreg.functional import (
    cross_entropy,
    cross_entropy_grad,
    log_softmax,
    sigmoid,
    softmax,
    softmax_vjp,
)
from softmaxreg.nn._init import get_initializer, torch_uniform, zeros

__all__ = [
    "Module",
    "Linear",
    "ReLU",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "LogSoftmax",
    "Dropout",
    "SoftmaxCrossEntropy",
    "Sequential",
]

_FLOATS = (np.float32, np.float64)


def _check_input(x, name="input"):
    """A 2-D float32/float64 array (no copy when it already is one)."""
    x = np.asarray(x)
    if x.dtype.type not in _FLOATS:
        raise ValueError(
            f"{name} has dtype {x.dtype}; layers compute in float32 or float64: "
            "pass x.astype(np.float32) or x.astype(np.float64)."
        )
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {x.shape}.")
    return x


def _check_sparse(x):
    """A scipy.sparse CSR/CSC matrix in float32/float64 (only Linear takes sparse input)."""
    if x.dtype.type not in _FLOATS:
        raise ValueError(
            f"sparse input has dtype {x.dtype}; use x.astype(np.float32) or x.astype(np.float64)."
        )
    if x.format not in ("csr", "csc"):
        x = x.tocsr()
    return x


def _check_grad(grad_output, out):
    if out is None:
        raise RuntimeError("backward called before forward: run forward on a batch first.")
    g = np.asarray(grad_output)
    if g.shape != out.shape:
        raise ValueError(
            f"grad_output has shape {g.shape} but the layer's output had shape {out.shape}; "
            "pass the gradient of the loss with respect to this layer's output."
        )
    return g


class Module(abc.ABC):
    """Base class: ``params``/``grads`` dicts, ``train()``/``eval()`` modes.

    Subclasses implement ``forward(x)`` and ``backward(grad_output)``.
    """

    def __init__(self):
        self.params = {}
        self.grads = {}
        self.training = True

    def __call__(self, x):
        return self.forward(x)

    @abc.abstractmethod
    def forward(self, x):
        """The layer's output for input ``x``; caches what ``backward`` needs."""

    @abc.abstractmethod
    def backward(self, grad_output):
        """Gradient with respect to the input; fills ``grads`` for the parameters."""

    def train(self, mode=True):
        """Switch training mode on (``mode=True``) or off; returns ``self``."""
        self.training = bool(mode)
        return self

    def eval(self):
        """Evaluation mode (Dropout becomes the identity); returns ``self``."""
        return self.train(False)

    def named_parameters(self):
        """List of ``(name, param, grad)`` triples, in a fixed order."""
        return [(name, p, self.grads[name]) for name, p in self.params.items()]

    def parameters(self):
        """List of ``(param, grad)`` pairs, what the optimizers take."""
        return [(p, g) for _, p, g in self.named_parameters()]

    def zero_grad(self):
        """Set every gradient to zero (in place)."""
        for _, _, g in self.named_parameters():
            g.fill(0)

    def state_dict(self):
        """A copy of every parameter, by name (PyTorch's ``state_dict``)."""
        return {name: p.copy() for name, p in self.params.items()}

    def load_state_dict(self, state):
        """Copy ``state``'s arrays into the parameters, in place (names, shapes must match).

        Values are cast to each parameter's dtype; the parameter arrays stay the
        same objects, so an optimizer built on them keeps working.
        """
        params = self.params
        if set(state) != set(params):
            raise ValueError(
                f"state names {sorted(state)} do not match the parameters {sorted(params)}."
            )
        for name, value in state.items():
            value = np.asarray(value)
            if value.shape != params[name].shape:
                raise ValueError(
                    f"{name} has shape {value.shape} in the state but {params[name].shape} here."
                )
        for name, value in state.items():
            params[name][...] = value

    def __repr__(self):
        return f"{type(self).__name__}()"


class Linear(Module):
    """Affine layer ``out = x @ weight.T + bias``.

    .. math::
        o = x W^\\top + b, \\qquad
        \\frac{\\partial L}{\\partial W} = G^\\top x, \\quad
        \\frac{\\partial L}{\\partial b} = \\textstyle\\sum_i G_{i\\cdot}, \\quad
        \\frac{\\partial L}{\\partial x} = G W

    with :math:`G = \\partial L / \\partial o`, shape (n_samples, out_features).

    Parameters
    ----------
    in_features, out_features : int
        Sizes of the input and of the output.
    bias : bool, default=True
        Whether the layer has a bias.
    init : str or callable, default="torch"
        Weight initializer (see :mod:`softmaxreg.nn.init`): ``"torch"``
        (PyTorch's default, uniform in :math:`\\pm 1/\\sqrt{\\text{in}}`),
        ``"he_normal"``, ``"glorot_normal"``, ``"zeros"``, ``normal(std)`` or a
        callable ``(rng, shape, dtype) -> array``. The bias is drawn from the
        same uniform as PyTorch with ``init="torch"`` and is zero otherwise.
    dtype : {np.float64, np.float32}, default=np.float64
        Dtype of the parameters, hence of the computation.
    rng : None, int or numpy.random.Generator
        Source of the random initial weights.
    input_grad : bool, default=True
        Whether ``backward`` computes :math:`\\partial L/\\partial x`. Set it to
        False on a network's first layer to skip one matrix product per step
        (PyTorch skips it for inputs that do not require grad); ``backward``
        then returns None.

    Attributes
    ----------
    params : dict
        ``"weight"``: ndarray of shape (out_features, in_features);
        ``"bias"``: ndarray of shape (out_features,).
    grads : dict
        Gradients of the last ``backward``, same names and shapes.

    Examples
    --------
    >>> lin = Linear(2, 1, init="zeros")
    >>> lin.params["weight"][:] = [[1.0, 2.0]]
    >>> lin.params["bias"][:] = [0.5]
    >>> lin(np.array([[1.0, 1.0], [0.0, 3.0]]))
    array([[3.5],
           [6.5]])
    >>> lin.backward(np.array([[1.0], [1.0]]))
    array([[1., 2.],
           [1., 2.]])
    >>> lin.grads["weight"], lin.grads["bias"]
    (array([[1., 4.]]), array([2.]))
    """

    def __init__(self, in_features, out_features, bias=True, *, init="torch",
                 dtype=np.float64, rng=None, input_grad=True):
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}.")
        dtype = np.dtype(dtype)
        if dtype.type not in _FLOATS:
            raise ValueError(f"dtype must be float32 or float64, got {dtype}.")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.input_grad = bool(input_grad)
        rng = np.random.default_rng(rng)
        init_fn = get_initializer(init)
        shape = (self.out_features, self.in_features)
        self.params["weight"] = np.ascontiguousarray(init_fn(rng, shape, dtype), dtype=dtype)
        if self.params["weight"].shape != shape:
            raise ValueError(f"init returned shape {self.params['weight'].shape}, expected {shape}.")
        self.grads["weight"] = np.zeros(shape, dtype=dtype)
        if bias:
            if init_fn is torch_uniform:
                b = torch_uniform(rng, (self.out_features,), dtype, fan_in=self.in_features)
            else:
                b = zeros(rng, (self.out_features,), dtype)
            self.params["bias"] = b
            self.grads["bias"] = np.zeros(self.out_features, dtype=dtype)
        self._x = None

    def forward(self, x):
        x = _check_sparse(x) if sp.issparse(x) else _check_input(x)
        w = self.params["weight"]
        if x.shape[1] != self.in_features:
            raise ValueError(
                f"input has {x.shape[1]} features but this Linear layer expects {self.in_features}."
            )
        if x.dtype != w.dtype:
            raise ValueError(
                f"input dtype {x.dtype} does not match the layer's {w.dtype}: cast the input "
                f"with x.astype(np.{w.dtype}) or build the layer with dtype=np.{x.dtype}."
            )
        self._x = x
        out = np.asarray(x @ w.T)  # a sparse x gives a dense product
        if "bias" in self.params:
            out += self.params["bias"]
        return out

    def backward(self, grad_output):
        if self._x is None:
            raise RuntimeError("backward called before forward: run forward on a batch first.")
        g = np.asarray(grad_output, dtype=self._x.dtype)
        if g.shape != (self._x.shape[0], self.out_features):
            raise ValueError(
                f"grad_output has shape {g.shape}, expected {(self._x.shape[0], self.out_features)}."
            )
        if sp.issparse(self._x):
            self.grads["weight"][...] = (self._x.T @ g).T
        else:
            np.matmul(g.T, self._x, out=self.grads["weight"])
        if "bias" in self.params:
            np.sum(g, axis=0, out=self.grads["bias"])
        return g @ self.params["weight"] if self.input_grad else None

    def __repr__(self):
        dt = self.params["weight"].dtype
        return (f"Linear(in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={'bias' in self.params}, dtype={dt})")


class _Activation(Module):
    """Elementwise activation: keeps its output for the backward pass."""

    def __init__(self):
        super().__init__()
        self._out = None

    def forward(self, x):
        self._out = self._f(_check_input(x))
        return self._out

    def backward(self, grad_output):
        return self._df(_check_grad(grad_output, self._out), self._out)


class ReLU(_Activation):
    """Rectified linear unit, ``max(x, 0)``; derivative 1 where the output is positive, else 0.

    Examples
    --------
    >>> r = ReLU()
    >>> r(np.array([[-1.0, 2.0]]))
    array([[0., 2.]])
    >>> r.backward(np.array([[5.0, 5.0]]))
    array([[0., 5.]])
    """

    @staticmethod
    def _f(x):
        return np.maximum(x, 0)

    @staticmethod
    def _df(g, out):
        return g * (out > 0)


class Sigmoid(_Activation):
    """Logistic sigmoid; its derivative is ``s (1 - s)`` in terms of the output.

    Examples
    --------
    >>> s = Sigmoid()
    >>> s(np.array([[0.0]]))
    array([[0.5]])
    >>> s.backward(np.array([[1.0]]))
    array([[0.25]])
    """

    @staticmethod
    def _f(x):
        return sigmoid(x)

    @staticmethod
    def _df(g, out):
        return g * out * (1 - out)


class Tanh(_Activation):
    """Hyperbolic tangent; derivative ``1 - tanh(x)^2``.

    Examples
    --------
    >>> t = Tanh()
    >>> t(np.array([[0.0]]))
    array([[0.]])
    >>> t.backward(np.array([[3.0]]))
    array([[3.]])
    """

    @staticmethod
    def _f(x):
        return np.tanh(x)

    @staticmethod
    def _df(g, out):
        return g * (1 - out * out)


class Softmax(Module):
    """Softmax over ``axis``; backward is the vector-Jacobian product.

    .. math::
        s = \\mathrm{softmax}(x), \\qquad
        \\frac{\\partial L}{\\partial x} = J^\\top g = s \\odot (g - \\langle s, g \\rangle)

    computed by :func:`softmaxreg.functional.softmax_vjp`, never forming
    :math:`J = \\mathrm{diag}(s) - s s^\\top`.

    Examples
    --------
    >>> sm = Softmax()
    >>> sm(np.array([[0.0, 0.0]]))
    array([[0.5, 0.5]])
    >>> sm.backward(np.array([[1.0, 0.0]]))  # J = [[.25, -.25], [-.25, .25]]
    array([[ 0.25, -0.25]])
    """

    def __init__(self, axis=-1):
        super().__init__()
        self.axis = axis
        self._x = self._out = None

    def forward(self, x):
        self._x = _check_input(x)
        self._out = softmax(self._x, axis=self.axis)
        return self._out

    def backward(self, grad_output):
        g = _check_grad(grad_output, self._out)
        return softmax_vjp(self._x, g, axis=self.axis)

    def __repr__(self):
        return f"Softmax(axis={self.axis})"


class LogSoftmax(Module):
    """Log-softmax over ``axis`` (shifted logits minus their logsumexp).

    .. math::
        \\ell = x - \\mathrm{logsumexp}(x), \\qquad
        \\frac{\\partial L}{\\partial x} = g - \\mathrm{softmax}(x) \\textstyle\\sum_j g_j

    Examples
    --------
    >>> ls = LogSoftmax()
    >>> ls(np.array([[0.0, 0.0]]))
    array([[-0.693..., -0.693...]])
    >>> ls.backward(np.array([[1.0, 0.0]]))
    array([[ 0.5, -0.5]])
    """

    def __init__(self, axis=-1):
        super().__init__()
        self.axis = axis
        self._out = None

    def forward(self, x):
        self._out = log_softmax(_check_input(x), axis=self.axis)
        return self._out

    def backward(self, grad_output):
        g = _check_grad(grad_output, self._out)
        return g - np.exp(self._out) * np.sum(g, axis=self.axis, keepdims=True)

    def __repr__(self):
        return f"LogSoftmax(axis={self.axis})"


class Dropout(Module):
    """Inverted dropout: in training, zero each entry with probability ``p``
    and scale the survivors by ``1 / (1 - p)``; the identity in eval mode.

    .. math:: \\text{out} = x \\odot m / (1 - p), \\quad m_{ij} \\sim \\text{Bernoulli}(1 - p)

    The backward pass multiplies by the same mask. Expected output equals the
    input, so nothing changes at evaluation time (PyTorch's convention).

    Parameters
    ----------
    p : float, default=0.5
        Drop probability in [0, 1].
    rng : None, int or numpy.random.Generator
        Seed or generator for the masks (reproducible with a seed).

    Examples
    --------
    >>> d = Dropout(0.5, rng=0)
    >>> x = np.ones((1, 6))
    >>> out = d(x)
    >>> sorted(set(out.ravel().tolist()))  # kept entries are doubled
    [0.0, 2.0]
    >>> bool(np.array_equal(d.backward(x), out))  # same mask on the way back
    True
    >>> d.eval()(x)
    array([[1., 1., 1., 1., 1., 1.]])
    """

    def __init__(self, p=0.5, *, rng=None):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not (0.0 <= p <= 1.0):
            raise ValueError(f"Dropout probability p must be in [0, 1], got {p!r}.")
        self.p = float(p)
        self.rng = np.random.default_rng(rng)
        self._mask = None

    def forward(self, x):
        x = _check_input(x)
        if not self.training or self.p == 0.0:
            self._mask = None
            return x
        keep = self.rng.random(x.shape) >= self.p  # float64 draws: same mask for either dtype
        scale = 0.0 if self.p == 1.0 else 1.0 / (1.0 - self.p)
        self._mask = keep.astype(x.dtype)
        self._mask *= x.dtype.type(scale)
        return x * self._mask

    def backward(self, grad_output):
        g = np.asarray(grad_output)
        return g if self._mask is None else g * self._mask

    def __repr__(self):
        return f"Dropout(p={self.p})"


class SoftmaxCrossEntropy(Module):
    """Softmax followed by cross-entropy, fused: the loss of a classifier's logits.

    .. math::
        L = \\frac1n \\sum_i \\bigl(\\mathrm{logsumexp}(o_i) - o_{i, y_i}\\bigr),
        \\qquad
        \\frac{\\partial L}{\\partial o} = \\frac{\\mathrm{softmax}(o) - Y}{n}

    with :math:`Y` the one-hot targets (or target probabilities). Fusing gives
    the short gradient and avoids :math:`\\log` of a softmax that underflowed.
    ``forward(logits, target)`` returns the loss; ``backward()`` returns
    :math:`\\partial L/\\partial o` (times ``grad_output`` if given). Computed by
    :func:`softmaxreg.functional.cross_entropy` and
    :func:`~softmaxreg.functional.cross_entropy_grad`, whose keywords
    (``weight``, ``ignore_index``, ``label_smoothing``, ``reduction``) this
    layer passes on and which match ``torch.nn.CrossEntropyLoss``.

    Examples
    --------
    >>> ce = SoftmaxCrossEntropy()
    >>> logits = np.array([[0.0, 0.0], [0.0, 0.0]])
    >>> round(float(ce(logits, np.array([0, 1]))), 6)  # log 2
    0.693147
    >>> ce.backward()  # (softmax - onehot) / n
    array([[-0.25,  0.25],
           [ 0.25, -0.25]])
    """

    def __init__(self, *, weight=None, ignore_index=None, label_smoothing=0.0, reduction="mean"):
        super().__init__()
        self.kwargs = dict(weight=weight, ignore_index=ignore_index,
                           label_smoothing=label_smoothing, reduction=reduction)
        # integer labels with the default keywords: one log_softmax serves loss and gradient
        self._plain = weight is None and ignore_index is None and label_smoothing == 0.0 and (
            reduction == "mean")
        self._logits = self._target = self._logp = None

    def __call__(self, logits, target):
        return self.forward(logits, target)

    def forward(self, logits, target):
        self._logits = _check_input(logits, "logits")
        self._target = np.asarray(target)
        self._logp = None
        n, k = self._logits.shape
        t = self._target
        if self._plain and t.shape == (n,) and t.dtype.kind in "iu" and n > 0:
            if t.min() < 0 or t.max() >= k:
                raise ValueError(
                    f"target holds labels outside [0, {k}) for {k} classes; labels must be "
                    "class indices 0 .. n_classes - 1."
                )
            logp = log_softmax(self._logits, axis=-1)
            loss = -np.mean(logp[np.arange(n), t])
            if np.isfinite(loss):  # rows of -inf logits etc.: the general path's conventions
                self._logp = logp
                return loss
        return cross_entropy(self._logits, self._target, **self.kwargs)

    def backward(self, grad_output=1.0):
        if self._logits is None:
            raise RuntimeError("backward called before forward: compute the loss first.")
        if self._logp is not None:
            n = self._logp.shape[0]
            grad = np.exp(self._logp)  # softmax(o) - onehot(y), over n
            grad[np.arange(n), self._target] -= 1
            grad /= grad.dtype.type(n)
        else:
            grad = cross_entropy_grad(self._logits, self._target, **self.kwargs)
        if np.ndim(grad_output) == 0 and grad_output == 1.0:
            return grad
        g = np.asarray(grad_output, dtype=grad.dtype)
        # reduction="none": one upstream value per sample
        return grad * (g[:, None] if g.ndim == 1 else g)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items() if v not in (None, 0.0, "mean"))
        return f"SoftmaxCrossEntropy({args})"


class Sequential(Module):
    """A chain of layers: ``forward`` runs them in order, ``backward`` in reverse.

    ``params``/``grads`` are flat dicts named ``"<index>.<name>"`` (as in
    PyTorch's ``state_dict``) that refer to the layers' own arrays.

    Examples
    --------
    >>> net = Sequential(Linear(3, 4, rng=0), ReLU(), Linear(4, 2, rng=1))
    >>> list(net.params)
    ['0.weight', '0.bias', '2.weight', '2.bias']
    >>> net(np.zeros((5, 3))).shape
    (5, 2)
    >>> net.backward(np.ones((5, 2))).shape
    (5, 3)
    """

    def __init__(self, *layers):
        self.layers = list(layers)
        for i, layer in enumerate(self.layers):
            if not isinstance(layer, Module):
                raise ValueError(f"Sequential takes Module instances; item {i} is {layer!r}.")
        self.training = True

    @property
    def params(self):
        return {f"{i}.{k}": v for i, l in enumerate(self.layers) for k, v in l.params.items()}

    @property
    def grads(self):
        return {f"{i}.{k}": v for i, l in enumerate(self.layers) for k, v in l.grads.items()}

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_output):
        g = grad_output
        for layer in reversed(self.layers):
            if g is None:
                raise RuntimeError(
                    f"{layer!r} got no gradient: only the first layer may have input_grad=False."
                )
            g = layer.backward(g)
        return g

    def train(self, mode=True):
        self.training = bool(mode)
        for layer in self.layers:
            layer.train(mode)
        return self

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self):
        inner = "".join(f"\n  ({i}): {l!r}" for i, l in enumerate(self.layers))
        return f"Sequential({inner}\n)"
