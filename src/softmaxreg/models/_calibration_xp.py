"""Temperature scaling on device arrays: the logits, labels and every reduction stay on the device.

:func:`temperature_problem` gives the start slope and the derivative function
that :func:`softmaxreg.models._calibration.fit_temperature`'s one-dimensional
search reads (two scalars per step), for logits of any Array API namespace.
"""

from __future__ import annotations

import array_api_compat

from softmaxreg.functional import softmax, softmax_jvp

__all__ = ["temperature_problem", "device_logits"]


def device_logits(z):
    """Binary margins as two columns ``(0, z)``, the dtype float64 where the device has it."""
    from sklearn.utils._array_api import supported_float_dtypes

    xp = array_api_compat.array_namespace(z)
    device = array_api_compat.device(z)
    dtype = xp.float64 if xp.float64 in supported_float_dtypes(xp, device) else xp.float32
    z = xp.astype(z, dtype)
    if z.ndim == 1:
        z = xp.stack([xp.zeros_like(z), z], axis=1)
    return z


def temperature_problem(logits, labels, sample_weight=None):
    """``(d1_0, derivatives)``: the NLL slope at ``beta = 0`` and ``beta -> (f'(beta), f''(beta))``."""
    z = device_logits(logits)
    xp = array_api_compat.array_namespace(z)
    device = array_api_compat.device(z)
    if z.ndim != 2:
        raise ValueError(f"logits must have shape (n_samples, n_classes), got {tuple(z.shape)}.")
    if not bool(xp.all(xp.isfinite(z))):
        raise ValueError("logits must be finite.")
    y = labels if array_api_compat.is_array_api_obj(labels) and not array_api_compat.is_numpy_array(labels) \
        else xp.asarray(labels, device=device)
    n, k = int(z.shape[0]), int(z.shape[1])
    if tuple(y.shape) != (n,):
        raise ValueError(f"labels must have shape ({n},), got {tuple(y.shape)}.")
    onehot = xp.astype(y[:, None] == xp.arange(k, device=device)[None, :], z.dtype)
    if sample_weight is None:
        w = xp.full(n, 1.0 / n, dtype=z.dtype, device=device)
    else:
        w = sample_weight if array_api_compat.is_array_api_obj(sample_weight) \
            and not array_api_compat.is_numpy_array(sample_weight) else xp.asarray(sample_weight, device=device)
        w = xp.astype(w, z.dtype)
        if tuple(w.shape) != (n,) or not bool(xp.all(xp.isfinite(w) & (w >= 0))) or not float(xp.sum(w)) > 0:
            raise ValueError("sample_weight must be finite, non-negative, not all zero, one per row.")
        w = w / xp.sum(w)
    d1_0 = float(xp.sum(w * (xp.mean(z, axis=1) - xp.sum(onehot * z, axis=1))))

    def derivatives(beta):
        g = softmax(beta * z, axis=1) - onehot
        d1 = float(xp.sum(w * xp.sum(g * z, axis=1)))
        d2 = float(xp.sum(w * xp.sum(z * softmax_jvp(beta * z, z, axis=1), axis=1)))
        return d1, d2

    return d1_0, derivatives
