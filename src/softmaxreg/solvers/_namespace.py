"""The few helpers that let one solver run on any Array API namespace.

A solver's state (the iterate, gradients, search directions, momentum) lives
in the namespace and on the device of its start point; only Python floats
cross to the host: inner products, norms and objective values, the numbers
its stopping rules and step-size logic read.
"""

import array_api_compat
import numpy as np

__all__ = ["dot", "max_abs", "start_point"]


def start_point(x0):
    """``(xp, x)``: the namespace of ``x0`` and a fresh copy of it to iterate on.

    A NumPy (or list) start point becomes a float64 ndarray, as the solvers
    always took it; any other Array API array keeps its namespace, device and
    float dtype.
    """
    if array_api_compat.is_array_api_obj(x0) and not array_api_compat.is_numpy_array(x0):
        xp = array_api_compat.array_namespace(x0)
        return xp, xp.asarray(x0, copy=True)
    return array_api_compat.array_namespace(np.empty(0)), np.array(x0, dtype=np.float64, copy=True)


def dot(a, b):
    """Inner product of two vectors as a Python float."""
    return float(a @ b)


def max_abs(xp, a):
    """``max |a_j|`` as a Python float (0 for an empty vector)."""
    if not a.shape[0]:
        return 0.0
    return float(xp.max(xp.abs(a)))
