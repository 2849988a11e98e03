"""A cache of large result buffers, so that a loop of calls does not pay the operating system for every result.

Why
---
malloc keeps the memory of a freed array for the next one, up to a size:
glibc serves blocks below its largest mmap threshold (32 MiB on 64-bit)
from its heap and hands larger ones straight back to the operating system
when they are freed. The next large array then comes as new pages, and the
kernel zeroes each one on its first touch: one more pass over the result's
bytes, paid before the kernel that fills it can write. On the 2-core
machine this project is measured on, a 40 MB ``np.empty(...).fill(1)`` in a
loop took 6.7-7.0 ms against 1.6-1.7 ms at 31 MB (532 page faults a call
against none), and a softmax over 2^20 x 10 float32 cost up to a memory
floor more into a new array than into a reused one. On a virtual machine
whose freed memory goes back to the host, the first touch costs more still,
and varies from call to call.

What
----
The functional core's fast paths (and the prediction pass of
:mod:`softmaxreg.loss`) take their results of at least
``min_bytes`` (32 MiB by default: where malloc stops keeping freed memory)
from this cache. A result is an ordinary writeable, C-contiguous ndarray
whose memory stays the caller's for as long as any array views it; when the
last view goes, the buffer returns to the cache, and the next result of the
same byte size reuses it, pages already mapped. Idle buffers are released
after ``decay`` seconds (10 by default, as jemalloc's dirty-page decay), and
the oldest first whenever the idle total would pass ``max_bytes`` (the
smaller of 1 GiB and an eighth of physical memory, or the
``SOFTMAXREG_RESULT_CACHE_BYTES`` environment variable; 0 turns the cache
off). :func:`empty_result_cache` releases them at once. PyTorch's CUDA
allocator and jemalloc/tcmalloc keep freed memory for reuse in the same way;
this cache does it only for the large results of this library.
"""

from __future__ import annotations

import collections
import contextlib
import math
import os
import threading
import time
from typing import NamedTuple

import numpy as np

__all__ = ["ResultCacheInfo", "set_result_cache", "result_cache", "result_cache_info", "empty_result_cache"]

#: Results start on a 64-byte boundary (a cache line), as the streaming kernels prefer.
_ALIGN = 64
_MIN_BYTES = 1 << 25
_DECAY = 10.0


def _default_max_bytes() -> int:
    env = os.environ.get("SOFTMAXREG_RESULT_CACHE_BYTES")
    if env is not None:
        try:
            value = int(env)
        except ValueError:
            raise ValueError(
                f"SOFTMAXREG_RESULT_CACHE_BYTES must be a whole number of bytes (0 turns the cache off), got {env!r}"
            ) from None
        if value < 0:
            raise ValueError(f"SOFTMAXREG_RESULT_CACHE_BYTES must be >= 0 (0 turns the cache off), got {value}")
        return value
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        physical = 8 << 30
    return int(min(1 << 30, physical // 8))


def aligned_bytes(nbytes: int) -> np.ndarray:
    """``nbytes`` bytes of new memory (uint8, uninitialised) that start on a 64-byte boundary: a view
    of a buffer ``_ALIGN`` bytes longer.

    >>> aligned_bytes(100).ctypes.data % 64, aligned_bytes(100).nbytes
    (0, 100)
    """
    raw = np.empty(nbytes + _ALIGN, np.uint8)
    start = -raw.ctypes.data % _ALIGN
    return raw[start : start + nbytes]


class ResultCacheInfo(NamedTuple):
    """What :func:`result_cache_info` reports: counters since start (or the last fork) and the settings."""

    hits: int
    misses: int
    idle_arrays: int
    idle_bytes: int
    max_bytes: int
    min_bytes: int
    decay: float


class _Block:
    """The owner of one cached buffer for as long as any array views it.

    Arrays made from it (``np.asarray``) keep it alive; when the last one
    goes, its finalizer hands the buffer back. The finalizer takes no lock:
    it may run in the middle of any other call, the cache's own included, so
    it only appends to a deque (atomic) that the cache drains under its lock.
    """

    __slots__ = ("_buf", "_returned")

    def __init__(self, buf, returned):
        self._buf, self._returned = buf, returned

    @property
    def __array_interface__(self):
        return self._buf.__array_interface__

    def __del__(self):
        self._returned.append((self._buf.nbytes, self._buf))


class _ResultCache:
    def __init__(self):
        self._returned = collections.deque()  # (nbytes, buf) from finalizers, not yet idle
        self._idle = []  # (time returned, nbytes, buf), oldest first
        self._idle_bytes = 0
        self._live = 0  # handed out and not yet drained back
        self._hits = self._misses = 0
        self.max_bytes = _default_max_bytes()
        self.min_bytes = _MIN_BYTES
        self.decay = _DECAY
        self._after_fork()

    def _after_fork(self):
        """New lock and no sweeping thread: a forked child has only the thread that forked, and a lock
        another thread held at the fork would stay held. Its buffers are its own copies, still reusable."""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._janitor = None

    # -- under the lock ---------------------------------------------------
    def _drain(self, now):
        while self._returned:
            nbytes, buf = self._returned.popleft()
            self._live = max(0, self._live - 1)
            self._idle.append((now, nbytes, buf))
            self._idle_bytes += nbytes
        self._shrink(self.max_bytes)

    def _shrink(self, limit, older_than=None):
        keep = []
        for entry in reversed(self._idle):  # newest first: they stay while the budget lasts
            t, nbytes, _ = entry
            if nbytes <= limit and (older_than is None or t > older_than):
                keep.append(entry)
                limit -= nbytes
            else:
                self._idle_bytes -= nbytes
        keep.reverse()
        self._idle = keep

    # -- public operations --------------------------------------------------
    def empty(self, shape, dtype):
        dtype = np.dtype(dtype)
        nbytes = math.prod(shape) * dtype.itemsize  # np.prod of a tuple costs 3 us on every call
        if nbytes < self.min_bytes or nbytes > self.max_bytes or self.decay <= 0:
            return np.empty(shape, dtype)
        with self._lock:
            self._drain(time.monotonic())
            buf = None
            for i in range(len(self._idle) - 1, -1, -1):
                if self._idle[i][1] == nbytes:
                    buf = self._idle.pop(i)[2]
                    self._idle_bytes -= nbytes
                    self._hits += 1
                    break
            else:
                self._misses += 1
            self._live += 1
            self._start_janitor()
        if buf is None:
            buf = aligned_bytes(nbytes)
        block = _Block(buf, self._returned)
        return np.asarray(block).view(dtype).reshape(shape)

    def configure(self, max_bytes=None, min_bytes=None, decay=None):
        for name, value in (("max_bytes", max_bytes), ("min_bytes", min_bytes)):
            if value is not None and (not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 0):
                raise ValueError(f"{name} must be a whole number of bytes >= 0, got {value!r}")
        if decay is not None and not (isinstance(decay, (int, float)) and not isinstance(decay, bool) and decay >= 0):
            raise ValueError(f"decay must be a number of seconds >= 0 (0 keeps nothing), got {decay!r}")
        with self._lock:
            old = {"max_bytes": self.max_bytes, "min_bytes": self.min_bytes, "decay": self.decay}
            if max_bytes is not None:
                self.max_bytes = int(max_bytes)
            if min_bytes is not None:
                self.min_bytes = int(min_bytes)
            if decay is not None:
                self.decay = float(decay)
            self._drain(time.monotonic())
            if self.decay <= 0:
                self._shrink(0)
            if self._idle or self._live:
                self._start_janitor()
        self._wake.set()
        return old

    def clear(self):
        with self._lock:
            self._drain(time.monotonic())
            self._shrink(0)

    def info(self):
        with self._lock:
            self._drain(time.monotonic())
            return ResultCacheInfo(self._hits, self._misses, len(self._idle), self._idle_bytes,
                                   self.max_bytes, self.min_bytes, self.decay)

    # -- decay ----------------------------------------------------------------
    def _start_janitor(self):
        if self._janitor is None and math.isfinite(self.decay):
            self._janitor = threading.Thread(target=self._sweep, name="softmaxreg-result-cache", daemon=True)
            self._janitor.start()

    def _sweep(self):
        """Release idle buffers ``decay`` seconds after their return; stop once nothing is idle or handed out."""
        while True:
            with self._lock:
                now = time.monotonic()
                self._drain(now)
                self._shrink(self.max_bytes, older_than=now - self.decay)
                if not self._idle and not self._live or not math.isfinite(self.decay):
                    self._janitor = None
                    return
                wait = self._idle[0][0] + self.decay - now if self._idle else self.decay
                self._wake.clear()
            self._wake.wait(min(max(wait, 0.01), 60.0))


_cache = _ResultCache()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_cache._after_fork)


def empty(shape, dtype):
    """An uninitialised C-contiguous array of ``shape`` and ``dtype``, large ones from the result cache.

    As ``np.empty``: below ``min_bytes``, or with the cache off, it is
    ``np.empty`` itself.
    """
    return _cache.empty(shape, dtype)


def set_result_cache(*, max_bytes=None, min_bytes=None, decay=None):
    """Set how the cache of large results behaves; returns the previous settings.

    Parameters
    ----------
    max_bytes : int, optional
        Most bytes kept idle; the oldest idle buffers go first. 0 turns the
        cache off (results are then plain ``np.empty`` arrays).
    min_bytes : int, optional
        Smallest result taken from the cache (32 MiB by default: below it,
        malloc already reuses freed memory).
    decay : float, optional
        Seconds an idle buffer is kept; 0 keeps none, ``inf`` keeps them until
        :func:`empty_result_cache` or the ``max_bytes`` budget frees them.

    Returns
    -------
    dict
        ``{"max_bytes": ..., "min_bytes": ..., "decay": ...}`` before the call,
        so that ``set_result_cache(**old)`` restores them.

    Examples
    --------
    >>> old = set_result_cache(max_bytes=0)  # every result in new memory
    >>> result_cache_info().max_bytes
    0
    >>> _ = set_result_cache(**old)
    """
    return _cache.configure(max_bytes=max_bytes, min_bytes=min_bytes, decay=decay)


@contextlib.contextmanager
def result_cache(*, max_bytes=None, min_bytes=None, decay=None):
    """:func:`set_result_cache` for the length of a ``with`` block.

    Examples
    --------
    A result's memory is reused by the next result of the same byte size once
    no array views it any more, and never while one does:

    >>> import numpy as np
    >>> import softmaxreg.functional as F
    >>> x = np.zeros((1 << 16, 10), dtype=np.float32)  # 2.5 MiB
    >>> with result_cache(min_bytes=1 << 20):
    ...     p = F.softmax(x)
    ...     first = p.ctypes.data
    ...     q = F.softmax(x)  # p is alive: new memory
    ...     del p
    ...     r = F.log_softmax(x)  # p's buffer, pages already mapped
    ...     (q.ctypes.data != first, r.ctypes.data == first, float(q[0, 0]), float(r[0, 0] + np.log(10)))
    (True, True, 0.1, 0.0)
    """
    old = set_result_cache(max_bytes=max_bytes, min_bytes=min_bytes, decay=decay)
    try:
        yield
    finally:
        set_result_cache(**old)


def result_cache_info() -> ResultCacheInfo:
    """Counters and settings of the result cache (``hits``: results that reused a buffer)."""
    return _cache.info()


def empty_result_cache() -> None:
    """Release every idle buffer now; results still in use are not touched."""
    _cache.clear()
