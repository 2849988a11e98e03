"""Plain threads for the GIL-free kernels: each kernel is compiled serial and run on a range of the work per thread.

Why not ``prange``: Numba compiles a parallel loop's body a second time (as
a gufunc) and links it into its caller, which tripled the compile time of
the short-row kernels, and an OpenMP region leaves its workers spinning for
milliseconds after it ends, which slows whatever runs next on a machine with
few cores (the SGD epoch's threads, a BLAS call). Starting a thread costs
about a tenth of a millisecond, so small inputs run in the calling thread.
"""

from __future__ import annotations

import _thread

import numba

__all__ = ["run_threads", "thread_count", "over_ranges"]


def run_threads(work, T):
    """``[work(0), ..., work(T - 1)]``, ``work(0)`` in the calling thread and the others in threads of their own.

    A thread per call, not a pool: nothing to queue behind another caller's
    work, nothing left over after a fork. The threads are started with
    ``_thread.start_new_thread``, which returns at once, where
    ``threading.Thread.start`` waits until the new thread runs: that wait
    (the other core waking up) came before the calling thread's own share.
    Every thread is waited for before returning; the first exception raised
    in any of them is re-raised here.

    >>> run_threads(lambda t: t * t, 3)
    [0, 1, 4]
    """
    out = [None] * T
    errors = []
    done = [_thread.allocate_lock() for _ in range(1, T)]

    def run(t):
        try:
            out[t] = work(t)
        except BaseException as exc:  # noqa: BLE001 (re-raised in the calling thread)
            errors.append(exc)
        finally:
            done[t - 1].release()

    for t in range(1, T):
        done[t - 1].acquire()
        _thread.start_new_thread(run, (t,))
    try:
        out[0] = work(0)
    finally:
        for lock in done:
            lock.acquire()
    if errors:
        raise errors[0]
    return out


def thread_count(n, grain):
    """Threads for ``n`` units of work with at least ``grain`` units each: ``min(numba.get_num_threads(), n // grain)``,
    at least 1. Numba's thread count is the one setting (``NUMBA_NUM_THREADS``, ``numba.set_num_threads``).

    >>> thread_count(10, 100)
    1
    """
    return max(1, min(numba.get_num_threads(), n // max(1, grain)))


def over_ranges(n, work, grain=1):
    """``[work(start, stop) for each part]``: ``range(n)`` cut into :func:`thread_count` contiguous parts of
    nearly equal size, in order, one thread each (:func:`run_threads`).

    >>> over_ranges(10, lambda start, stop: (start, stop), grain=8)
    [(0, 10)]
    """
    T = thread_count(n, grain)
    bounds = [t * n // T for t in range(T + 1)]
    return run_threads(lambda t: work(bounds[t], bounds[t + 1]), T)
