"""Weight initializers for :class:`~softmaxreg.nn.Linear`.

Every initializer has the signature ``init(rng, shape, dtype) -> ndarray``
with ``shape = (fan_out, fan_in)`` for a weight and ``(fan_out,)`` for a bias
(PyTorch's layout). Values are drawn in float64 from ``rng`` (a
``numpy.random.Generator``) and then cast to ``dtype``, so a float32 and a
float64 network built from the same seed hold the same numbers up to rounding,
and the random stream advances the same way whatever the dtype.

====================  ======================================================
name                  distribution of each weight
====================  ======================================================
``"he_normal"``       :math:`N(0, 2 / \\text{fan\\_in})`  (He et al. 2015, for ReLU)
``"glorot_normal"``   :math:`N(0, 2 / (\\text{fan\\_in} + \\text{fan\\_out}))` (Glorot & Bengio 2010, tanh/sigmoid)
``"glorot_uniform"``  :math:`U(-b, b)`, :math:`b = \\sqrt{6 / (\\text{fan\\_in} + \\text{fan\\_out})}`
                      (scikit-learn's MLP init; ``glorot_uniform(..., factor=2)`` is its logistic one)
``"torch"``           :math:`U(-1/\\sqrt{\\text{fan\\_in}}, 1/\\sqrt{\\text{fan\\_in}})`, PyTorch's
                      ``nn.Linear`` default (``kaiming_uniform_(a=sqrt(5))``)
``normal(std)``       :math:`N(0, \\text{std}^2)`; the softmax-regression recipe uses ``std=0.01``
``"zeros"``           0
====================  ======================================================
"""

import math
import numbers

import numpy as np

__all__ = ["he_normal", "glorot_normal", "glorot_uniform", "torch_uniform", "normal", "zeros", "get_initializer"]


def _fans(shape):
    if len(shape) == 1:
        # a bias: PyTorch bounds it by the fan-in of its weight, which the caller passes.
        raise ValueError("fan-based initializers need a 2-d (fan_out, fan_in) shape.")
    fan_out, fan_in = shape
    return fan_in, fan_out


def he_normal(rng, shape, dtype=np.float64):
    """He (Kaiming) normal init for ReLU layers: std = sqrt(2 / fan_in).

    Keeps the second moment of the pre-activations constant through ReLU layers.

    Examples
    --------
    >>> w = he_normal(np.random.default_rng(0), (4000, 50))
    >>> round(float(w.std()), 2), round(float(np.sqrt(2 / 50)), 2)
    (0.2, 0.2)
    """
    fan_in, _ = _fans(shape)
    return rng.normal(0.0, math.sqrt(2.0 / fan_in), size=shape).astype(dtype, copy=False)


def glorot_normal(rng, shape, dtype=np.float64):
    """Glorot (Xavier) normal init: std = sqrt(2 / (fan_in + fan_out)).

    Examples
    --------
    >>> w = glorot_normal(np.random.default_rng(0), (150, 50), np.float32)
    >>> w.dtype, round(float(w.std()), 2)
    (dtype('float32'), 0.1)
    """
    fan_in, fan_out = _fans(shape)
    std = math.sqrt(2.0 / (fan_in + fan_out))
    return rng.normal(0.0, std, size=shape).astype(dtype, copy=False)


def glorot_uniform(rng, shape, dtype=np.float64, factor=6.0):
    """Glorot (Xavier) uniform init: U(-b, b) with b = sqrt(factor / (fan_in + fan_out)).

    ``factor=6`` is Glorot & Bengio's and scikit-learn's MLP init (its
    logistic layers use ``factor=2``); the variance is ``b**2 / 3``.

    Examples
    --------
    >>> w = glorot_uniform(np.random.default_rng(0), (100, 50))
    >>> bool(np.abs(w).max() <= np.sqrt(6 / 150)), round(float(w.std()), 2), round(float(np.sqrt(2 / 150)), 2)
    (True, 0.12, 0.12)
    """
    fan_in, fan_out = _fans(shape)
    bound = math.sqrt(float(factor) / (fan_in + fan_out))
    return rng.uniform(-bound, bound, size=shape).astype(dtype, copy=False)


def torch_uniform(rng, shape, dtype=np.float64, fan_in=None):
    """PyTorch's default ``nn.Linear`` init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

    For a bias, pass ``fan_in`` (the weight's number of inputs).

    Examples
    --------
    >>> w = torch_uniform(np.random.default_rng(0), (3, 4))
    >>> bool(np.all(np.abs(w) <= 0.5))
    True
    """
    if fan_in is None:
        fan_in, _ = _fans(shape)
    bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return rng.uniform(-bound, bound, size=shape).astype(dtype, copy=False)


def normal(std):
    """Return an initializer drawing N(0, std^2) weights.

    Examples
    --------
    >>> w = normal(0.01)(np.random.default_rng(0), (2, 3))
    >>> w.shape, bool(np.all(np.abs(w) < 0.05))
    ((2, 3), True)
    """
    if isinstance(std, bool) or not isinstance(std, numbers.Real) or not (
        math.isfinite(std) and std >= 0
    ):
        raise ValueError(f"std must be a finite number >= 0, got {std!r}.")
    std = float(std)

    def init(rng, shape, dtype=np.float64):
        return rng.normal(0.0, std, size=shape).astype(dtype, copy=False)

    init.__name__ = f"normal({std})"
    return init


def zeros(rng, shape, dtype=np.float64):
    """All zeros (``rng`` is not used, so the random stream does not move).

    Examples
    --------
    >>> zeros(None, (2,), np.float32)
    array([0., 0.], dtype=float32)
    """
    return np.zeros(shape, dtype=dtype)


_NAMED = {
    "he_normal": he_normal,
    "glorot_normal": glorot_normal,
    "glorot_uniform": glorot_uniform,
    "torch": torch_uniform,
    "zeros": zeros,
}


def get_initializer(init):
    """Resolve a name in ``{"he_normal", "glorot_normal", "glorot_uniform", "torch", "zeros"}`` or a callable.

    Examples
    --------
    >>> get_initializer("he_normal") is he_normal
    True
    """
    if isinstance(init, str):
        if init not in _NAMED:
            raise ValueError(
                f"Unknown initializer {init!r}; use one of {sorted(_NAMED)}, "
                "normal(std) or a callable (rng, shape, dtype) -> array."
            )
        return _NAMED[init]
    if callable(init):
        return init
    raise ValueError(
        f"init must be a name in {sorted(_NAMED)} or a callable (rng, shape, dtype) -> array, "
        f"got {init!r}."
    )
