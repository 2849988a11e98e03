"""Array-namespace and dtype policy shared by every function of the functional core.

Every public function accepts NumPy arrays, anything convertible to one
(lists, scalars), and any Array API array (torch, cupy, jax, dask through
``array-api-compat``), and returns the same kind of array on the same device.

Dtype policy
------------
* float32 stays float32 and float64 stays float64;
* float16 and bfloat16 are computed in float32 and returned in the input dtype;
* integer and boolean input is promoted to the namespace's default real
  floating dtype (float64 for NumPy, ``torch.get_default_dtype()`` for torch).
"""

from __future__ import annotations

import contextlib
from typing import Any

import array_api_compat
import numpy as np

__all__ = ["as_array", "get_namespace", "compute_dtypes", "move_axis_last", "restore_axis", "quiet_fp"]


def as_array(x: Any) -> Any:
    """Return ``x`` unchanged if it is an Array API array, else ``np.asarray(x)``."""
    if array_api_compat.is_array_api_obj(x):
        return x
    return np.asarray(x)


def get_namespace(*arrays: Any) -> Any:
    """Array API namespace of the given arrays (``None`` entries are skipped)."""
    return array_api_compat.array_namespace(*[a for a in arrays if a is not None])


def compute_dtypes(xp: Any, x: Any) -> tuple[Any, Any]:
    """Return ``(compute_dtype, output_dtype)`` for input ``x``.

    Raises
    ------
    TypeError
        For complex input: softmax is defined for real logits only.
    """
    dtype = x.dtype
    if xp.isdtype(dtype, "real floating"):
        if xp.finfo(dtype).bits < 32:
            return xp.float32, dtype
        return dtype, dtype
    if xp.isdtype(dtype, ("integral", "bool")):
        info = xp.__array_namespace_info__()
        default = info.default_dtypes(device=array_api_compat.device(x))["real floating"]
        return default, default
    raise TypeError(f"expected real-valued logits, got an array of dtype {dtype}; pass real floating or integer input")


def normalize_axis(axis: int, ndim: int) -> int:
    """Check ``axis`` against ``ndim`` and return it as a non-negative index."""
    if ndim == 0:
        raise ValueError("expected an array with at least one dimension (the class axis), got a 0-d scalar")
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"axis must be an integer (the one class axis), got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of bounds for an array with {ndim} dimensions")
    return axis % ndim


def move_axis_last(xp: Any, x: Any, axis: int) -> Any:
    """Move ``axis`` of ``x`` to the end (a view where the namespace allows)."""
    if axis == x.ndim - 1:
        return x
    return xp.moveaxis(x, axis, -1)


def restore_axis(xp: Any, x: Any, axis: int) -> Any:
    """Inverse of :func:`move_axis_last`."""
    if axis == x.ndim - 1:
        return x
    return xp.moveaxis(x, -1, axis)


@contextlib.contextmanager
def quiet_fp():
    """Silence NumPy floating-point warnings inside the functional core.

    Every special value is handled explicitly by the callers (``-inf`` rows,
    ``+inf`` entries, overflow of ``x - max`` to ``-inf`` is the right answer),
    so the warnings NumPy would raise are noise, not signals.
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        yield
