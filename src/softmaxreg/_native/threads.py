"""Plain threads for the kernels that run one compiled, GIL-free call per thread."""

from __future__ import annotations

import _thread

__all__ = ["run_threads"]


def run_threads(work, T):
    """``[work(0), ..., work(T - 1)]``, ``work(0)`` in the calling thread and the others in threads of their own.

    A thread per call, not a pool: nothing to queue behind another caller's
    work, nothing left over after a fork. The threads are started with
    ``_thread.start_new_thread``, which returns at once, where
    ``threading.Thread.start`` waits until the new thread runs: that wait
    (the other core waking up)
    came before the calling thread's own share. Every thread is waited for
    before returning; the first exception raised in any of them is re-raised
    here.
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
