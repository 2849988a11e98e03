"""Timing helpers, the memory floor and the Fashion-MNIST loader shared by the benchmarks."""

from __future__ import annotations

import gzip
import os
import platform
import time
from pathlib import Path

import numpy as np

FASHION_DIRS = [Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))]


def settle(seconds: float = 0.05) -> None:
    """Pause between two candidates so that the first one's thread pools go idle.

    OpenMP runtimes (PyTorch's intra-op pool, Numba's OpenMP layer) and
    OpenBLAS keep their workers spinning for milliseconds after a parallel
    region; on a 2-core machine those spinners would slow whichever candidate
    runs next. Every candidate gets the same pause before it is timed.
    """
    time.sleep(seconds)


def interleaved_best(fns: dict, repeat: int = 7) -> dict:
    """Best wall time of each callable, the callables run round-robin ``repeat`` times.

    Interleaving makes every candidate see the same machine state (other jobs,
    frequency), and the minimum is the least disturbed run. Each timed call
    follows :func:`settle` and then one untimed call of the same candidate:
    what is timed is a call among calls of the same kind (the steady state of
    a loop), not the first call after the machine sat idle. After 50 ms idle
    a 2-vCPU machine's second CPU has halted, and waking it (with the
    candidate's thread pool) cost any multithreaded candidate 0.3-0.5 ms on
    its next call, measured: 10-15 % of a 3 ms kernel, a cost the
    single-threaded floor never paid.
    """
    best = {k: float("inf") for k in fns}
    for f in fns.values():  # warm up: compilation, page faults, caches
        f()
    for _ in range(repeat):
        for k, f in fns.items():
            settle()
            f()
            t = time.perf_counter()
            f()
            best[k] = min(best[k], time.perf_counter() - t)
    return best


def copy_fn(nbytes: int):
    """A callable copying ``nbytes`` (np.copyto between two preallocated buffers).

    Its time is the memory floor of a kernel that reads ``nbytes / 2`` and
    writes ``nbytes / 2``: one read and one write at the copy bandwidth.
    """
    n = max(1, nbytes // 2 // 4)
    src = np.ones(n, dtype=np.float32)
    dst = np.empty_like(src)
    return lambda: np.copyto(dst, src)


def fresh_parallel_copy_fn(x: np.ndarray):
    """A callable returning a copy of ``x`` in a new array, written by every core (a Numba ``prange`` copy).

    The fastest fresh result any kernel on this machine could return: the
    floor's read and write, plus the first touch of the new array's pages,
    which the operating system takes on the cores that write them.
    """
    import numba

    @numba.njit(parallel=True, cache=False)
    def _copy(src, dst):
        n = src.shape[0]
        for c in numba.prange(64):
            dst[c * n // 64 : (c + 1) * n // 64] = src[c * n // 64 : (c + 1) * n // 64]

    flat = np.ascontiguousarray(x).reshape(-1)

    def fresh_copy():
        out = np.empty_like(flat)
        _copy(flat, out)
        return out

    fresh_copy()  # compile
    return fresh_copy


def load_idx(name: str) -> np.ndarray:
    """One IDX file of Fashion-MNIST (gzipped or not) as a uint8 array with its shape."""
    for d in FASHION_DIRS:
        for p in (d / name, d / (name + ".gz")):
            if p.exists():
                raw = gzip.open(p).read() if p.suffix == ".gz" else p.read_bytes()
                ndim = raw[3]
                shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
                return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)
    raise FileNotFoundError(f"{name} not found in {FASHION_DIRS}; install dataset-fashion-mnist or set FASHION_MNIST_DIR")


def fashion_mnist(dtype=np.float32):
    """(X_train, y_train, X_test, y_test), pixels / 255 in ``dtype``, labels int64."""
    X = load_idx("train-images-idx3-ubyte").reshape(-1, 784).astype(dtype) / dtype(255)
    y = load_idx("train-labels-idx1-ubyte").astype(np.int64)
    Xt = load_idx("t10k-images-idx3-ubyte").reshape(-1, 784).astype(dtype) / dtype(255)
    yt = load_idx("t10k-labels-idx1-ubyte").astype(np.int64)
    return np.ascontiguousarray(X), y, np.ascontiguousarray(Xt), yt


def machine() -> str:
    """One line naming the CPU and the core count."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{model}, {os.cpu_count()} cores, load average {load:.1f} at start"
