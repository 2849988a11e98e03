r"""The softmax family, computed from one max-shifted helper.

For logits :math:`x \in \mathbb{R}^K` and temperature :math:`T > 0`,

.. math::

    \mathrm{softmax}(x)_i = \frac{e^{x_i/T}}{\sum_k e^{x_k/T}}
                          = \frac{e^{(x_i - m)/T}}{\sum_k e^{(x_k - m)/T}},
    \qquad m = \max_k x_k .

Subtracting the row maximum changes nothing mathematically (the factor
:math:`e^{-m/T}` cancels) but makes every exponent :math:`\le 0`, so no
exponential overflows and the largest term is exactly 1.  Writing
:math:`r = \sum_{k \ne k^*} e^{(x_k - m)/T}` for the sum of the *other* terms
(:math:`k^*` the first argmax),

.. math::

    \log \sum_k e^{x_k/T} = m/T + \operatorname{log1p}(r), \qquad
    \log\mathrm{softmax}(x)_i = (x_i - m)/T - \operatorname{log1p}(r),

and ``log1p`` keeps the log-probability of a dominant class accurate even when
:math:`r` is far below machine epsilon, where :math:`\log(1 + r)` would round to 0.

Special values (the numerics contract)
--------------------------------------
* ``-inf`` entries get probability 0; a row that is all ``-inf`` or fully
  masked by ``where`` gives softmax 0, log_softmax ``-inf`` and logsumexp ``-inf``.
* ``+inf`` entries share the row's mass equally (the limit as they grow together);
  the other entries get 0.
* a NaN poisons its own row only.
* Any finite input, up to the dtype's largest value, gives finite probabilities
  that sum to 1 within a few ulps.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import array_api_compat
import numpy as np

from ._array import as_array, compute_dtypes, get_namespace, move_axis_last, normalize_axis, quiet_fp, restore_axis

__all__ = [
    "all_finite",
    "logsumexp",
    "softmax",
    "log_softmax",
    "sigmoid",
    "log_sigmoid",
    "softmax_jacobian",
    "softmax_jvp",
    "softmax_vjp",
]

_INF = float("inf")

_KERNELS: Any = None


def fast_kernels(x: Any) -> Any:
    """The native kernels (:mod:`softmaxreg._native`) if ``x`` can take a fast path, else ``None``.

    Only NumPy float arrays of at least ``_native.MIN_SIZE`` elements do;
    ``_native`` (and Numba) is imported on the first such call, never at
    import time, and a missing Numba leaves every function on this module's
    Array API path, which is the reference the kernels are tested against.
    """
    global _KERNELS
    if _KERNELS is None:
        try:
            from softmaxreg import _native
        except ImportError:  # no Numba: the reference path does everything
            _KERNELS = False
        else:
            _KERNELS = _native
    if _KERNELS and _KERNELS.applies(x):
        return _KERNELS
    return None


def all_finite(x: Any) -> bool:
    """Whether every entry of ``x`` is finite (no NaN, no +-inf).

    The same answer as ``bool(np.all(np.isfinite(x)))``; a large NumPy float
    array is scanned by one native pass that stops at the first non-finite
    entry, without the boolean temporary of the size of ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> all_finite(np.array([[0.0, 1e308], [-2.0, 3.0]])), all_finite(np.array([1.0, np.nan]))
    (True, False)
    """
    kernels = fast_kernels(x)
    if kernels is not None:
        return bool(kernels.all_finite(x))
    xp = get_namespace(x)
    return bool(xp.all(xp.isfinite(x)))


def _reference_rows(rows: Any, temperature: float, mode: int) -> Any:
    """softmax (0) / log_softmax (1) / logsumexp (2) of NumPy rows, on the reference path."""
    xp = get_namespace(rows)
    s = shift(xp, rows, temperature=temperature)
    with quiet_fp():
        if mode == 0:
            return s.exp / (1.0 + s.rest)
        if mode == 1:
            return s.shifted - s.log_norm
        return s.offset + s.log_norm


def _fast_family(x: Any, axis: int, where: Any, temperature: float, mode: int, out: Any = None) -> Any:
    """The kernels' result for ``x`` (written into ``out`` if given), or ``None`` when ``x`` takes the reference path."""
    if where is not None:
        return None
    x = as_array(x)
    k = fast_kernels(x)
    if k is None:
        return None
    ax = normalize_axis(axis, x.ndim)
    y = k.softmax_family(x, axis=ax, temperature=temperature, mode=mode,
                         reference=lambda rows: _reference_rows(rows, temperature, mode), out=out)
    return into(out, y)


def check_out(out: Any, x: Any, name: str) -> None:
    """Raise unless ``out`` can take the result of ``name(x)``: a writeable NumPy array of ``x``'s
    shape and of the result's dtype (``x``'s float dtype), for NumPy ``x``."""
    if out is None:
        return
    x = as_array(x)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a NumPy array, got {type(out).__name__}")
    if not isinstance(x, np.ndarray):
        raise TypeError(f"out= takes NumPy input only; {name} got a {type(x).__module__}.{type(x).__name__} (drop out=)")
    want = compute_dtypes(np, x)[1]
    if out.shape != x.shape or out.dtype != want:
        raise ValueError(
            f"out has shape {out.shape} and dtype {out.dtype}; {name} of an input of shape {x.shape} and dtype "
            f"{x.dtype} needs out of shape {x.shape} and dtype {np.dtype(want)}"
        )
    if not out.flags.writeable:
        raise ValueError("out is read-only: pass a writeable array")


def into(out: Any, y: Any) -> Any:
    """``y``, or ``out`` holding ``y``: copied in, unless ``y`` already is ``out``'s memory
    (where a kernel wrote the result directly)."""
    if out is None:
        return y
    if not np.may_share_memory(y, out):
        np.copyto(out, y)
    return out


class Shifted(NamedTuple):
    """The pieces every member of the family is built from (class axis last).

    Attributes
    ----------
    shifted : array of shape (..., K)
        ``(x - m) / T``, ``-inf`` at masked and ``-inf`` entries, 0 at the maximum.
    exp : array of shape (..., K)
        ``exp(shifted)``; the (first) maximum is exactly 1.
    rest : array of shape (..., 1)
        Sum of ``exp`` over all entries but the first maximum.
    offset : array of shape (..., 1)
        ``m / T`` (``-inf`` for empty rows, ``+inf`` for rows holding ``+inf``).
    """

    shifted: Any
    exp: Any
    rest: Any
    offset: Any

    @property
    def log_norm(self) -> Any:
        """``log(sum(exp))`` = ``log1p(rest)``, shape (..., 1)."""
        xp = get_namespace(self.rest)
        return xp.log1p(self.rest)


def check_temperature(temperature: Any) -> float:
    """Validate a temperature and return it as a float.

    Raises
    ------
    ValueError
        If it is not a finite number greater than 0.
    """
    if isinstance(temperature, (bool, np.bool_, str, bytes)):
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}") from None
    if not (t > 0.0 and t < _INF):
        raise ValueError(f"temperature must be a positive finite number, got {temperature!r}")
    return t


def shift(xp: Any, x: Any, *, where: Any = None, temperature: float = 1.0) -> Shifted:
    """Max-shift ``x`` along its last axis; see :class:`Shifted`.

    ``x`` must already be in the compute dtype with the class axis last, and
    ``where`` (if given) a boolean array of the same shape.
    """
    device = array_api_compat.device(x)
    zero = xp.asarray(0.0, dtype=x.dtype, device=device)
    ninf = xp.asarray(-_INF, dtype=x.dtype, device=device)
    if where is not None:
        x = xp.where(where, x, ninf)
    n_classes = x.shape[-1]
    if n_classes == 0:
        rest = xp.zeros(x.shape[:-1] + (1,), dtype=x.dtype, device=device)
        return Shifted(x, x, rest, rest + ninf)
    with quiet_fp():
        m = xp.max(x, axis=-1, keepdims=True)
        pos_inf_row = m == _INF
        special = pos_inf_row | (m == -_INF)
        # Shift ordinary rows by their max; +-inf rows by 0 (x - inf would be NaN).
        shifted = x - xp.where(special, zero, m)
        if bool(xp.any(pos_inf_row)):
            shifted = xp.where(pos_inf_row, xp.where(x == _INF, zero, ninf), shifted)
        if temperature != 1.0:
            shifted = shifted / temperature
        e = xp.exp(shifted)
        first_max = xp.arange(n_classes, device=device) == xp.argmax(shifted, axis=-1, keepdims=True)
        rest = xp.sum(xp.where(first_max, zero, e), axis=-1, keepdims=True)
        offset = m / temperature if temperature != 1.0 else m
    return Shifted(shifted, e, rest, offset)


def _prepare(x: Any, axis: int, where: Any = None):
    """Common front end: namespace, dtypes, axis, mask; returns the moved array."""
    x = as_array(x)
    xp = get_namespace(x)
    compute, out = compute_dtypes(xp, x)
    ax = normalize_axis(axis, x.ndim)
    if x.dtype != compute:
        x = xp.astype(x, compute)
    if where is not None:
        where = xp.asarray(as_array(where), device=array_api_compat.device(x))
        if not xp.isdtype(where.dtype, "bool"):
            raise ValueError(f"where must be a boolean mask, got dtype {where.dtype}")
        try:
            where = xp.broadcast_to(where, x.shape)
        except (ValueError, RuntimeError):
            raise ValueError(f"where of shape {tuple(where.shape)} does not broadcast to the logits' shape {tuple(x.shape)}") from None
        where = move_axis_last(xp, where, ax)
    return xp, move_axis_last(xp, x, ax), ax, out, where


def _finish(xp: Any, y: Any, ax: int, out: Any) -> Any:
    y = restore_axis(xp, y, ax)
    return cast(xp, y, out)


def cast(xp: Any, y: Any, dtype: Any) -> Any:
    """Cast back to the output dtype; values beyond float16's range become +-inf, quietly."""
    if y.dtype == dtype:
        return y
    with quiet_fp():
        return xp.astype(y, dtype)


def logsumexp(x: Any, axis: int = -1, *, where: Any = None, keepdims: bool = False) -> Any:
    r"""Log of the sum of exponentials along ``axis``, without overflow.

    .. math::

        \operatorname{logsumexp}(x) = \log \sum_k e^{x_k} = m + \operatorname{log1p}\Big(\sum_{k \ne k^*} e^{x_k - m}\Big),
        \qquad m = x_{k^*} = \max_k x_k .

    Parameters
    ----------
    x : array_like of shape (..., K, ...)
        Input values.
    axis : int, default=-1
        Axis to reduce.
    where : array_like of bool, optional
        Only entries where this is True take part (broadcast against ``x``).
        An empty or fully masked slice gives ``-inf``.
    keepdims : bool, default=False
        Keep the reduced axis with size 1.

    Returns
    -------
    array
        ``x``'s shape without ``axis`` (or with size 1 there), in ``x``'s float dtype.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxreg.functional import logsumexp
    >>> float(logsumexp(np.log([1.0, 2.0, 5.0])))  # log(1 + 2 + 5) = log 8
    2.0794415416798357
    >>> float(logsumexp(np.array([1000.0, 1000.0])))  # 1000 + log 2, no overflow
    1000.6931471805599
    >>> float(logsumexp(np.array([1.0, 9.0]), where=np.array([True, False])))
    1.0
    """
    fast = _fast_family(x, axis, where, 1.0, 2)
    if fast is not None:
        return np.expand_dims(fast, axis) if keepdims else fast
    xp, xm, ax, out, where = _prepare(x, axis, where)
    s = shift(xp, xm, where=where)
    with quiet_fp():
        lse = s.offset + s.log_norm
    if keepdims:
        return _finish(xp, lse, ax, out)
    return cast(xp, lse[..., 0], out)


def softmax(x: Any, axis: int = -1, *, where: Any = None, temperature: float = 1.0, out: Any = None) -> Any:
    r"""Softmax along ``axis``: a probability vector from unnormalized logits.

    .. math::

        \mathrm{softmax}(x)_i = \frac{e^{(x_i - m)/T}}{\sum_k e^{(x_k - m)/T}}, \qquad m = \max_k x_k,

    which equals :math:`e^{x_i/T} / \sum_k e^{x_k/T}`: the shift cancels but
    keeps every exponent :math:`\le 0`.  Outputs are in :math:`[0, 1]`, sum to
    1 along ``axis`` and keep the order of the logits, so the argmax is unchanged.
    A large temperature flattens the distribution toward uniform; a small one
    sharpens it toward the argmax.

    Parameters
    ----------
    x : array_like of shape (..., K, ...)
        Logits.
    axis : int, default=-1
        The class axis.
    where : array_like of bool, optional
        Entries where this is False get probability 0; a fully masked slice is all 0.
    temperature : float, default=1.0
        :math:`T > 0`; the logits are divided by it.
    out : numpy.ndarray, optional
        Where to write the result (NumPy input only): ``x``'s shape and the
        result's dtype. A fresh result costs the kernel fresh pages, which the
        operating system zeroes first; for many short rows that is about as
        long as the softmax itself, and an ``out`` reused across calls saves it.
        It may be ``x`` itself.

    Returns
    -------
    array of the same shape as ``x``
        In ``x``'s float dtype (float16/bfloat16 computed in float32); ``out`` if given.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxreg.functional import softmax
    >>> softmax(np.log([1.0, 3.0]))  # e^x = 1, 3  ->  1/4, 3/4
    array([0.25, 0.75])
    >>> softmax(np.array([1000.0, 2000.0, 3000.0]))  # the naive exp overflows to NaN
    array([0., 0., 1.])
    >>> softmax(np.log([1.0, 4.0]), temperature=2.0)  # e^(x/2) = 1, 2
    array([0.33333333, 0.66666667])
    >>> buf = np.empty(2)
    >>> softmax(np.log([1.0, 3.0]), out=buf) is buf
    True
    """
    t = check_temperature(temperature)
    check_out(out, x, "softmax")
    fast = _fast_family(x, axis, where, t, 0, out)
    if fast is not None:
        return fast
    xp, xm, ax, dtype, where = _prepare(x, axis, where)
    s = shift(xp, xm, where=where, temperature=t)
    return into(out, _finish(xp, s.exp / (1.0 + s.rest), ax, dtype))


def log_softmax(x: Any, axis: int = -1, *, where: Any = None, temperature: float = 1.0, out: Any = None) -> Any:
    r"""Logarithm of :func:`softmax`, computed as shifted logits minus their log-normalizer.

    .. math::

        \log\mathrm{softmax}(x)_i = \frac{x_i - m}{T} - \log \sum_k e^{(x_k - m)/T}
        = \frac{x_i - m}{T} - \operatorname{log1p}\Big(\sum_{k \ne k^*} e^{(x_k - m)/T}\Big).

    Never ``log(softmax(x))``, which turns tiny probabilities into ``-inf``
    and rounds the log-probability of a dominant class to 0.

    Parameters
    ----------
    x : array_like of shape (..., K, ...)
        Logits.
    axis : int, default=-1
        The class axis.
    where : array_like of bool, optional
        Entries where this is False get ``-inf``.
    temperature : float, default=1.0
        :math:`T > 0`.
    out : numpy.ndarray, optional
        Where to write the result, as in :func:`softmax`.

    Returns
    -------
    array of the same shape as ``x``
        ``out`` if given.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxreg.functional import log_softmax
    >>> log_softmax(np.log([1.0, 3.0]))  # log(1/4), log(3/4)
    array([-1.38629436, -0.28768207])
    >>> log_softmax(np.array([0.0, -1000.0]))  # log(softmax) would give -inf here
    array([    0., -1000.])
    >>> float(log_softmax(np.array([0.0, -40.0]))[0])  # -log1p(e^-40), not 0
    -4.248354255291589e-18
    """
    t = check_temperature(temperature)
    check_out(out, x, "log_softmax")
    fast = _fast_family(x, axis, where, t, 1, out)
    if fast is not None:
        return fast
    xp, xm, ax, dtype, where = _prepare(x, axis, where)
    s = shift(xp, xm, where=where, temperature=t)
    with quiet_fp():
        y = s.shifted - s.log_norm
    return into(out, _finish(xp, y, ax, dtype))


def sigmoid(x: Any) -> Any:
    r"""Logistic sigmoid, stable in both tails.

    .. math::

        \sigma(x) = \frac{1}{1 + e^{-x}} = \frac{e^{x}}{1 + e^{x}},

    evaluated with :math:`e^{-|x|} \le 1` so nothing overflows.  It is the
    two-class softmax: :math:`\mathrm{softmax}([w_0 x, w_1 x])_1 = \sigma((w_1 - w_0) x)`.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxreg.functional import sigmoid, softmax
    >>> sigmoid(np.array([0.0, np.log(3.0), -1000.0]))
    array([0.5 , 0.75, 0.  ])
    >>> bool(np.isclose(sigmoid(np.array(2.0 - 0.5)), softmax(np.array([0.5, 2.0]))[1]))
    True
    """
    x = as_array(x)
    xp = get_namespace(x)
    compute, out = compute_dtypes(xp, x)
    if x.dtype != compute:
        x = xp.astype(x, compute)
    with quiet_fp():
        e = xp.exp(-xp.abs(x))
        y = xp.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    return cast(xp, y, out)


def log_sigmoid(x: Any) -> Any:
    r"""Logarithm of the sigmoid, stable in both tails.

    .. math::

        \log\sigma(x) = -\log(1 + e^{-x}) = \min(x, 0) - \operatorname{log1p}(e^{-|x|}).

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxreg.functional import log_sigmoid
    >>> log_sigmoid(np.array([-1000.0, 0.0, 1000.0]))  # -1000, -log 2, 0
    array([-1.00000000e+03, -6.93147181e-01, -0.00000000e+00])
    """
    x = as_array(x)
    xp = get_namespace(x)
    compute, out = compute_dtypes(xp, x)
    if x.dtype != compute:
        x = xp.astype(x, compute)
    with quiet_fp():
        y = xp.minimum(x, xp.zeros_like(x)) - xp.log1p(xp.exp(-xp.abs(x)))
    return cast(xp, y, out)


def softmax_jacobian(x: Any, axis: int = -1, *, temperature: float = 1.0) -> Any:
    r"""Jacobian of :func:`softmax` along ``axis``.

    With :math:`S = \mathrm{softmax}(x / T)`,

    .. math::

        D_j S_i = \frac{\partial S_i}{\partial x_j} = \frac{S_i(\delta_{ij} - S_j)}{T},
        \qquad J = \frac{\operatorname{diag}(S) - S S^\top}{T}.

    ``J`` is symmetric, its rows sum to 0 (shifting all logits changes
    nothing) and it is positive semidefinite.  Use :func:`softmax_jvp` /
    :func:`softmax_vjp` to apply it without forming it.

    Returns
    -------
    array of shape (..., K, K)
        ``...`` are the other axes of ``x`` in order; the last two index
        :math:`(i, j)`.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxreg.functional import softmax_jacobian
    >>> softmax_jacobian(np.log([1.0, 3.0]))  # S = (1/4, 3/4)
    array([[ 0.1875, -0.1875],
           [-0.1875,  0.1875]])
    """
    t = check_temperature(temperature)
    xp, xm, ax, out, _ = _prepare(x, axis)
    s = shift(xp, xm, temperature=t)
    p = s.exp / (1.0 + s.rest)
    k = p.shape[-1]
    eye = xp.eye(k, dtype=p.dtype, device=array_api_compat.device(p))
    col = xp.expand_dims(p, axis=-1)
    jac = (col * eye - col * xp.expand_dims(p, axis=-2)) / t
    return cast(xp, jac, out)


def _apply_jacobian(x: Any, v: Any, axis: int, temperature: float, name: str) -> Any:
    t = check_temperature(temperature)
    xp, xm, ax, out, _ = _prepare(x, axis)
    v = xp.asarray(as_array(v), device=array_api_compat.device(xm))
    if tuple(v.shape) != tuple(restore_axis(xp, xm, ax).shape):
        raise ValueError(f"{name} must have the logits' shape {tuple(restore_axis(xp, xm, ax).shape)}, got {tuple(v.shape)}")
    v = move_axis_last(xp, xp.astype(v, xm.dtype), ax)
    s = shift(xp, xm, temperature=t)
    p = s.exp / (1.0 + s.rest)
    y = p * (v - xp.sum(p * v, axis=-1, keepdims=True)) / t
    return _finish(xp, y, ax, out)


def softmax_jvp(x: Any, v: Any, axis: int = -1, *, temperature: float = 1.0) -> Any:
    r"""Jacobian-vector product :math:`J v` of softmax, without forming :math:`J`.

    .. math::

        J v = \frac{S \odot (v - \langle S, v \rangle)}{T}.

    Parameters
    ----------
    x : array_like of shape (..., K, ...)
        Logits.
    v : array_like of the same shape
        Tangent.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxreg.functional import softmax_jvp
    >>> softmax_jvp(np.log([1.0, 3.0]), np.array([1.0, 0.0]))  # first column of J
    array([ 0.1875, -0.1875])
    """
    return _apply_jacobian(x, v, axis, temperature, "v")


def softmax_vjp(x: Any, g: Any, axis: int = -1, *, temperature: float = 1.0) -> Any:
    r"""Vector-Jacobian product :math:`J^\top g` of softmax (backpropagation through softmax).

    :math:`J` is symmetric, so this is the same formula as :func:`softmax_jvp`:

    .. math::

        J^\top g = \frac{S \odot (g - \langle S, g \rangle)}{T}.

    Examples
    --------
    >>> import numpy as np
    >>> from softmaxreg.functional import softmax_vjp
    >>> softmax_vjp(np.log([1.0, 3.0]), np.array([1.0, 1.0]))  # constant g: no change
    array([0., 0.])
    """
    return _apply_jacobian(x, g, axis, temperature, "g")
