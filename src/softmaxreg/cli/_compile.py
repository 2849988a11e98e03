"""``softmaxreg compile``: every fused kernel compiled and cached ahead of use, in one process per core.

Each group below runs the kernels of one path (the softmax family on short
or long rows, the loss passes, the SGD epoch and prediction) for one dtype,
through the public functions, on inputs just large enough to take the fast
paths. Numba compiles each kernel on its first call and caches the machine
code on disk (:mod:`softmaxreg._native.cache`, which takes concurrent
writers), so later processes load it instead of compiling.
"""

from __future__ import annotations

import os
import time
import warnings

import numpy as np

__all__ = ["cmd_compile"]


def _warm_softmax_family(dtype, K):
    """The softmax family and the cross-entropy of labels on rows of K: short rows (blocks) for K < 48."""
    import softmaxreg.functional as F

    rng = np.random.default_rng(0)
    x = rng.standard_normal((8192 if K < 48 else 128, K)).astype(dtype)
    labels = rng.integers(0, K, x.shape[0])
    F.softmax(x)
    F.log_softmax(x)
    F.logsumexp(x, axis=-1)
    F.cross_entropy(x, labels)
    F.cross_entropy_grad(x, labels)


def _warm_loss_passes(dtype):
    """The fused linear passes: loss, gradient, Hessian product, losses at several points, soft targets."""
    from ..loss import LinearSoftmaxLoss

    rng = np.random.default_rng(0)
    X = rng.standard_normal((2048, 160)).astype(dtype)
    y = rng.integers(0, 5, 2048)
    loss = LinearSoftmaxLoss(X, y, n_classes=5, l2_reg_strength=1e-3)
    w = rng.standard_normal(loss.n_params) * 0.01
    loss.loss_gradient(w)
    loss.hessp(w, w)
    loss.losses([w, w])
    LinearSoftmaxLoss(X, np.eye(5)[y], n_classes=5).loss_gradient(w)


def _warm_sgd_and_prediction(dtype):
    """The fused SGD epoch and prediction (probabilities, labels, logits)."""
    from ..models import SoftmaxRegression

    rng = np.random.default_rng(0)
    X = rng.standard_normal((2048, 160)).astype(dtype)
    y = rng.integers(0, 5, 2048)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SoftmaxRegression(solver="sgd", max_iter=1, tol=None, random_state=0).fit(X, y)
    model.predict_proba(X)
    model.predict(X)
    model.decision_function(X)


#: What ``softmaxreg compile`` runs, each group once per dtype: (label, function, arguments), the
#: longest compilations first so that parallel jobs finish together.
_WARM_GROUPS = [
    ("softmax family, {}, rows of 10", _warm_softmax_family, (10,)),
    ("softmax family, {}, rows of 600", _warm_softmax_family, (600,)),
    ("loss passes, {}", _warm_loss_passes, ()),
    ("SGD epoch and prediction, {}", _warm_sgd_and_prediction, ()),
]


def _warm_tasks():
    return [(label.format(np.dtype(dtype).name), fn, (dtype, *extra))
            for label, fn, extra in _WARM_GROUPS for dtype in (np.float32, np.float64)]


def _timed(fn, args):
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def _warm_kernels(jobs=1, notes=None):
    """Run every fused kernel once, float32 and float64, on inputs just large enough to take it.

    Yields (what, seconds) as each group finishes. Numba compiles each kernel
    on its first call and caches the machine code on disk, so later
    processes load it instead of compiling. With ``jobs > 1`` this process
    and ``jobs - 1`` fresh ones take the groups in turn, longest first (each
    compilation uses one core; this process starts at once, while the others
    start their interpreters); the cache takes concurrent writers
    (:mod:`softmaxreg._native.cache`). Groups no other process could run are
    run here, and a line saying why is appended to ``notes``.
    """
    tasks = _warm_tasks()
    if jobs <= 1:
        for what, fn, args in tasks:
            yield what, _timed(fn, args)
        return
    import collections
    import concurrent.futures
    import multiprocessing
    import queue
    import threading

    pending = collections.deque(tasks)
    lock = threading.Lock()
    finished = queue.SimpleQueue()

    def take():
        with lock:
            return pending.popleft() if pending else None

    def feed(pool):
        """Hand the groups to one worker process, one at a time, until none is left."""
        while (task := take()) is not None:
            try:
                finished.put((task, pool.submit(_timed, task[1], task[2]).result()))
            except BaseException as exc:  # noqa: BLE001 (the group runs in this process instead)
                finished.put((task, exc))
                return

    failed = []

    def drain():
        while True:
            try:
                task, result = finished.get_nowait()
            except queue.Empty:
                return
            if isinstance(result, BaseException):
                failed.append((task, result))
            else:
                yield task[0], result

    try:
        # Fresh interpreters ("spawn"): a fork would copy this process's threads and Numba state.
        pool = concurrent.futures.ProcessPoolExecutor(max_workers=jobs - 1,
                                                      mp_context=multiprocessing.get_context("spawn"))
    except OSError as exc:
        failed = [(task, exc) for task in tasks]
    else:
        feeders = [threading.Thread(target=feed, args=(pool,), daemon=True) for _ in range(jobs - 1)]
        try:
            for feeder in feeders:
                feeder.start()
            while (task := take()) is not None:
                yield task[0], _timed(task[1], task[2])
                yield from drain()
            for feeder in feeders:
                feeder.join()
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        yield from drain()
    if failed and notes is not None:
        exc = failed[0][1]
        notes.append(f"no worker processes ({exc or type(exc).__name__}); {len(failed)} group(s) compiled in this "
                     "process")
    for (what, fn, args), _ in failed:
        yield what, _timed(fn, args)


def cmd_compile(args) -> int:
    """Compile the fused kernels now (and cache them) rather than on first use."""
    from ._commands import _say

    jobs = args.jobs if args.jobs else min(os.cpu_count() or 1, len(_warm_tasks()))
    total = time.perf_counter()
    busy = 0.0
    notes = []
    for what, seconds in _warm_kernels(jobs, notes):
        busy += seconds
        _say(args, f"  {what}: {seconds:.1f} s")
    for note in notes:
        _say(args, f"softmaxreg: {note}")
    wall = time.perf_counter() - total
    parallel = jobs > 1 and not notes
    _say(args, f"softmaxreg: kernels compiled and cached in {wall:.1f} s"
               + (f" ({busy:.1f} s of compilation in {jobs} processes)" if parallel else ""))
    return 0
