"""The kernels run on ranges of rows in plain threads (softmaxreg._native.threads): the split changes nothing.

Every kernel result is compared bit for bit between one range (the calling
thread) and many uneven ones, on inputs small enough for a test: the
minimum work per thread is lowered to nothing and the thread count raised.
"""

import numpy as np
import pytest

pytest.importorskip("numba")
import softmaxreg.functional as F  # noqa: E402
from softmaxreg._native import blocks as KB  # noqa: E402
from softmaxreg._native import rows as K  # noqa: E402
from softmaxreg._native import threads  # noqa: E402


def test_run_threads_returns_every_result_in_order():
    assert threads.run_threads(lambda t: t * t, 4) == [0, 1, 4, 9]
    assert threads.run_threads(lambda t: "alone", 1) == ["alone"]


@pytest.mark.parametrize("failing", [0, 2])
def test_run_threads_waits_for_every_thread_then_re_raises(failing):
    import threading
    import time

    finished = []
    lock = threading.Lock()

    def work(t):
        if t == failing:
            raise ValueError(f"thread {t} failed")
        time.sleep(0.05)
        with lock:
            finished.append(t)
        return t

    with pytest.raises(ValueError, match=f"thread {failing} failed"):
        threads.run_threads(work, 3)
    assert sorted(finished) == [t for t in range(3) if t != failing]


@pytest.mark.parametrize("n, grain", [(0, 1), (1, 1), (10, 3), (1000, 1), (1000, 400), (7, 100)])
def test_over_ranges_covers_the_range_once_in_order(n, grain, monkeypatch):
    monkeypatch.setattr(threads.numba, "get_num_threads", lambda: 4)
    parts = threads.over_ranges(n, lambda start, stop: (start, stop), grain)
    assert parts[0][0] == 0 and parts[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
    assert len(parts) == max(1, min(4, n // grain))


def _calls(x, y, w):
    return {
        "softmax": lambda: F.softmax(x, axis=-1),
        "log_softmax": lambda: F.log_softmax(x, axis=-1, temperature=0.7),
        "logsumexp": lambda: F.logsumexp(x, axis=-1),
        "cross_entropy": lambda: F.cross_entropy(x, y),
        "cross_entropy none": lambda: F.cross_entropy(x, y, reduction="none"),
        "cross_entropy weighted": lambda: F.cross_entropy(x, y, weight=w, ignore_index=1, label_smoothing=0.1),
        "cross_entropy_grad": lambda: F.cross_entropy_grad(x, y),
        "cross_entropy_grad weighted": lambda: F.cross_entropy_grad(x, y, weight=w, ignore_index=1,
                                                                    label_smoothing=0.1),
        "shifted_exp": lambda: (lambda z: (z, *K.shifted_exp(z)))(x.astype(x.dtype, copy=True)),
        "all_finite": lambda: K.all_finite(x),
    }


def _arrays(result):
    return tuple(np.asarray(r) for r in (result if isinstance(result, tuple) else (result,)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [3, 10, 16, 47, 100])
def test_results_do_not_depend_on_how_many_threads_share_the_rows(k, dtype, monkeypatch):
    n = 3 * KB.BLOCK + 45
    rng = np.random.default_rng(k)
    x = (3 * rng.standard_normal((n, k))).astype(dtype)
    x[[5, KB.BLOCK, n - 1]] = [[np.nan], [-np.inf], [np.inf]]  # rows the reference decides
    y = rng.integers(0, k, n)
    w = rng.random(k)
    monkeypatch.setattr(K, "MIN_SIZE", 0)
    monkeypatch.setattr(threads, "thread_count", lambda n, grain: 1)
    one = {name: _arrays(call()) for name, call in _calls(x, y, w).items()}
    for T in (2, 3, 7):
        monkeypatch.setattr(threads, "thread_count", lambda n, grain, T=T: min(T, max(1, n)))
        for name, call in _calls(x, y, w).items():
            for want, got in zip(one[name], _arrays(call()), strict=True):
                np.testing.assert_array_equal(got, want, err_msg=f"{name}, {T} threads")


def test_streamed_blocks_after_a_head_split_over_threads_equal_one_thread(monkeypatch):
    """The first range keeps the head rows before the first 64-byte boundary, the others start on a whole
    block, so every thread's whole blocks can be written by non-temporal stores."""
    monkeypatch.setattr(K, "STREAM_BYTES", 0)
    monkeypatch.setattr(K, "MIN_SIZE", 0)
    n, k = 5 * KB.BLOCK + 3, 10
    x = np.random.default_rng(0).standard_normal((n, k)).astype(np.float32)
    buf = np.empty(n * k + 16, np.float32)
    start = (-buf.ctypes.data // 4) % 16 + 2  # rows start 8 bytes past a cache line
    out = buf[start : start + n * k].reshape(n, k)
    lead, stream = K.stream_plan(out)
    assert stream and lead > 0
    monkeypatch.setattr(threads, "thread_count", lambda n, grain: 1)
    want = F.softmax(x, axis=-1)
    monkeypatch.setattr(threads, "thread_count", lambda n, grain: min(4, n))
    got = F.softmax(x, axis=-1, out=out)
    assert np.shares_memory(got, out)
    np.testing.assert_array_equal(got, want)
