"""The result cache (softmaxreg.functional._memory): a reused buffer is never one an array still views,
results are the same as in new memory, and idle memory stays within its budget and its time."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import softmaxreg.functional as F
from softmaxreg.functional import _memory

pytest.importorskip("numba")

# 65536 x 10 float32 (2.5 MiB) reaches the kernels (MIN_SIZE) and, with this min_bytes, the cache.
SMALL = 1 << 20
X32 = np.random.default_rng(0).standard_normal((1 << 16, 10)).astype(np.float32) * 4
Y = np.random.default_rng(1).integers(0, 10, 1 << 16)


@pytest.fixture(autouse=True)
def _fresh_cache():
    _memory.empty_result_cache()
    with F.result_cache(min_bytes=SMALL, max_bytes=64 << 20, decay=60.0):
        yield
    _memory.empty_result_cache()


def from_cache(a):
    """Whether ``a``'s memory belongs to a cached buffer (the end of its chain of bases)."""
    while isinstance(a, np.ndarray) and a.base is not None:
        a = a.base
    return isinstance(a, _memory._Block)


OPS = {
    "softmax": lambda x, **kw: F.softmax(x, **kw),
    "log_softmax": lambda x, **kw: F.log_softmax(x, **kw),
    "cross_entropy_grad": lambda x, **kw: F.cross_entropy_grad(x, Y[: len(x)], **kw),
}


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cached_results_are_ordinary_arrays_with_the_same_bits(op, dtype):
    x = X32.astype(dtype)
    with F.result_cache(max_bytes=0):
        expected = OPS[op](x)
    before = F.result_cache_info()
    for _ in range(3):  # a miss, then hits into a buffer that held the previous result
        got = OPS[op](x)
        assert type(got) is np.ndarray and got.dtype == dtype and got.shape == x.shape
        assert got.flags.c_contiguous and got.flags.writeable and got.flags.aligned
        assert got.ctypes.data % 64 == 0 and from_cache(got)
        np.testing.assert_array_equal(got, expected)
        del got
    info = F.result_cache_info()
    assert (info.hits - before.hits, info.misses - before.misses) == (2, 1)
    assert info.idle_arrays == 1 and info.idle_bytes == x.nbytes


def test_a_buffer_is_reused_only_after_every_view_of_it_is_gone():
    p = F.softmax(X32)
    first = p.ctypes.data
    view = p[::3, 2:]  # keeps p's buffer alive
    kept = view.copy()
    del p
    q = F.softmax(X32 * 2)
    second = q.ctypes.data
    assert second != first and not np.shares_memory(q, view)
    np.testing.assert_array_equal(view, kept)  # nobody wrote into the buffer a view still reads
    del q
    r = F.log_softmax(X32)  # q's buffer: idle, and the newest of the size
    assert r.ctypes.data == second and not np.shares_memory(r, view)
    del view
    s = F.cross_entropy_grad(X32, Y)  # now p's buffer, idle again
    assert s.ctypes.data == first
    np.testing.assert_array_equal(r, F.log_softmax(X32))


def test_an_out_that_cannot_take_the_rows_gets_a_cached_result_copied_in():
    out = np.empty((10, 1 << 16), np.float32).T  # Fortran order: the kernels write elsewhere first
    hits = F.result_cache_info().hits
    F.softmax(X32, out=out)
    np.testing.assert_array_equal(out, F.softmax(X32))
    assert F.result_cache_info().hits == hits + 1  # the second call reused the first's temporary


def test_idle_bytes_stay_within_max_bytes_and_the_oldest_go_first():
    nbytes = X32.nbytes
    with F.result_cache(max_bytes=2 * nbytes + nbytes // 2):
        results = [F.softmax(X32 + i) for i in range(4)]
        pointers = [r.ctypes.data for r in results]
        while results:  # returned in the order made: only the last two fit
            del results[0]
        info = F.result_cache_info()
        assert (info.idle_arrays, info.idle_bytes) == (2, 2 * nbytes)
        a, b = F.softmax(X32), F.softmax(X32)  # the newest first
        assert (a.ctypes.data, b.ctypes.data) == (pointers[3], pointers[2])
        del a, b
    F.set_result_cache(max_bytes=nbytes - 1)  # a budget smaller than one result: nothing is kept
    assert F.result_cache_info().idle_bytes == 0
    r = F.softmax(X32)
    assert not from_cache(r)


def test_results_below_min_bytes_or_with_the_cache_off_are_plain_arrays():
    before = F.result_cache_info()
    with F.result_cache(min_bytes=X32.nbytes + 1):
        assert not from_cache(F.softmax(X32))
    with F.result_cache(max_bytes=0):
        assert not from_cache(F.log_softmax(X32))
    info = F.result_cache_info()
    assert (info.hits, info.misses) == (before.hits, before.misses)


def test_idle_buffers_are_released_after_decay_and_on_demand():
    with F.result_cache(decay=0.05):
        F.softmax(X32)  # dropped at once
        deadline = time.monotonic() + 10.0
        while F.result_cache_info().idle_arrays and time.monotonic() < deadline:
            time.sleep(0.02)
        assert F.result_cache_info().idle_arrays == 0
    p = F.softmax(X32)
    del p
    assert F.result_cache_info().idle_arrays == 1
    F.empty_result_cache()
    assert F.result_cache_info()[2:4] == (0, 0)
    with F.result_cache(decay=float("inf")):  # kept until asked, then released by the new decay
        F.softmax(X32)
        F.set_result_cache(decay=0.05)
        deadline = time.monotonic() + 10.0
        while F.result_cache_info().idle_arrays and time.monotonic() < deadline:
            time.sleep(0.02)
        assert F.result_cache_info().idle_arrays == 0
    with F.result_cache(decay=0):  # keeps nothing, not even for a moment
        assert not from_cache(F.softmax(X32))
        assert F.result_cache_info().idle_arrays == 0


def test_threads_never_get_a_buffer_another_array_still_uses():
    expected = {i: F.softmax(X32 * (i + 1)) for i in range(4)}
    hits = F.result_cache_info().hits
    errors = []

    def work(i):
        live = []
        for step in range(12):
            r = F.softmax(X32 * (i + 1))
            r_bits = r.copy()
            live.append((r, r_bits))
            if len(live) > 2:
                old, old_bits = live.pop(0)
                if not np.array_equal(old, old_bits):
                    errors.append(f"thread {i}: a live result changed")
            if not np.array_equal(r, expected[i]):
                errors.append(f"thread {i}: wrong result at step {step}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert F.result_cache_info().hits > hits


def test_a_forked_child_reuses_its_own_copies():
    code = (
        "import os, numpy as np, softmaxreg.functional as F\n"
        "from softmaxreg.functional import _memory\n"
        "F.set_result_cache(min_bytes=1 << 20)\n"
        "a = _memory.empty((1 << 18,), np.float32); a[:] = 1; p = a.ctypes.data; del a\n"
        "pid = os.fork()\n"
        "if pid == 0:\n"
        "    b = _memory.empty((1 << 18,), np.float32)\n"
        "    os._exit(0 if b.ctypes.data == p and F.result_cache_info().hits == 1 else 3)\n"
        "_, status = os.waitpid(pid, 0)\n"
        "raise SystemExit(os.waitstatus_to_exitcode(status))\n"
    )
    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"max_bytes": -1}, "max_bytes must be a whole number of bytes >= 0"),
        ({"min_bytes": 1.5}, "min_bytes must be a whole number"),
        ({"decay": -1.0}, "decay must be a number of seconds >= 0"),
        ({"decay": "10"}, "decay must be a number of seconds"),
    ],
)
def test_bad_settings_say_what_to_fix_and_change_nothing(kw, message):
    before = F.result_cache_info()
    with pytest.raises(ValueError, match=message):
        F.set_result_cache(**kw)
    assert F.result_cache_info()[4:] == before[4:]


@pytest.mark.parametrize("value, message", [("lots", "whole number of bytes"), ("-5", ">= 0")])
def test_a_bad_environment_variable_says_what_to_fix(value, message):
    env = dict(os.environ, SOFTMAXREG_RESULT_CACHE_BYTES=value)
    done = subprocess.run([sys.executable, "-c", "import softmaxreg.functional"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "SOFTMAXREG_RESULT_CACHE_BYTES" in done.stderr and message in done.stderr


def test_the_environment_variable_sets_the_budget():
    env = dict(os.environ, SOFTMAXREG_RESULT_CACHE_BYTES="0")
    code = "import softmaxreg.functional as F; print(F.result_cache_info().max_bytes)"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "0", done.stderr
