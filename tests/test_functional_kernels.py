"""The Numba fast paths of softmaxreg.functional agree with the Array API reference.

Every test runs a public function twice: with the kernels forced on
(``MIN_SIZE = 0``) and forced off, and compares. References beyond our own:
scipy.special, PyTorch, and float64/longdouble evaluations for accuracy.
"""

import contextlib
import ctypes
import mmap

import numpy as np
import pytest
import scipy.special as sps
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import softmaxreg.functional as F

numba = pytest.importorskip("numba")
import softmaxreg._native as N  # noqa: E402
from softmaxreg._native import blocks as KB  # noqa: E402
from softmaxreg._native import labels as KL  # noqa: E402
from softmaxreg._native import mathfn as KM  # noqa: E402
from softmaxreg._native import rows as K  # noqa: E402
from softmaxreg._native import vec as KV  # noqa: E402
from softmaxreg.functional._softmax import fast_kernels  # noqa: E402

RTOL = {np.float16: 1e-3, np.float32: 3e-6, np.float64: 1e-13}


def both(fn, *args, **kw):
    """(fast, reference) results of ``fn``."""
    old = K.MIN_SIZE
    try:
        K.MIN_SIZE = 0
        fast = fn(*args, **kw)
        K.MIN_SIZE = 1 << 62
        ref = fn(*args, **kw)
    finally:
        K.MIN_SIZE = old
    return fast, ref


def assert_same(fast, ref, dtype):
    fast, ref = np.asarray(fast), np.asarray(ref)
    assert fast.dtype == ref.dtype
    assert fast.shape == ref.shape
    # Same special values in the same places, close elsewhere.
    np.testing.assert_array_equal(np.isnan(fast), np.isnan(ref))
    np.testing.assert_array_equal(np.isposinf(fast), np.isposinf(ref))
    np.testing.assert_array_equal(np.isneginf(fast), np.isneginf(ref))
    ok = np.isfinite(ref)
    scale = np.max(np.abs(ref[ok]), initial=0.0)
    rtol = RTOL[np.dtype(dtype).type]
    # Differences of O(1) terms (p_y - 1 in a gradient) carry an absolute error of a few ulp of 1.
    atol = 4 * float(np.finfo(dtype).eps) * scale
    np.testing.assert_allclose(fast[ok].astype(np.float64), ref[ok].astype(np.float64), rtol=rtol, atol=atol)


def logits(shape, dtype, seed=0, scale=3.0):
    return (np.random.default_rng(seed).standard_normal(shape) * scale).astype(dtype)


def with_special_rows(x):
    """Row 0 all -inf, row 1 one +inf, row 2 two +inf, row 3 a NaN, row 4 some -inf."""
    x = x.copy()
    k = x.shape[-1]
    x[0] = -np.inf
    x[1, k // 2] = np.inf
    x[2, 0] = np.inf
    x[2, -1] = np.inf
    x[3, k - 1] = np.nan
    x[4, : max(1, k // 2)] = -np.inf
    x[5] = np.finfo(x.dtype).max
    x[6, 0] = -np.finfo(x.dtype).max
    x[6, -1] = np.finfo(x.dtype).max
    return x


def test_fast_path_is_taken_for_large_numpy_arrays_only():
    assert fast_kernels(np.zeros((K.MIN_SIZE, 1), np.float32)) is N
    assert fast_kernels(np.zeros((4, 4), np.float32)) is None
    assert fast_kernels(np.zeros((K.MIN_SIZE, 1), np.int64)) is None


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
# Row lengths from one class to a few hundred: short rows, around powers of two (vector widths, chunk
# sizes) and between them; the kernels must match the reference whatever their internal blocking.
@pytest.mark.parametrize("k", [1, 2, 10, 47, 48, 128, 256, 300])
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
def test_family_matches_reference(name, k, dtype):
    x = with_special_rows(logits((131, k), dtype)) if k > 1 else logits((131, k), dtype)
    assert_same(*both(getattr(F, name), x), dtype)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "logsumexp"])
@pytest.mark.parametrize("layout", ["F", "strided", "axis0", "3d"])
def test_family_layouts(name, layout):
    x = logits((70, 33), np.float32, seed=1)
    axis = -1
    if layout == "F":
        x = np.asfortranarray(x)
    elif layout == "strided":
        x = logits((70, 66), np.float32, seed=1)[:, ::2]
    elif layout == "axis0":
        axis = 0
    else:
        x = logits((5, 33, 14), np.float32, seed=1)
        axis = 1
    fast, ref = both(getattr(F, name), x, axis=axis)
    assert_same(fast, ref, np.float32)


@pytest.mark.parametrize("temperature", [0.25, 3.0])
@pytest.mark.parametrize("k", [10, 100])
def test_temperature(temperature, k):
    x = with_special_rows(logits((90, k), np.float64))
    assert_same(*both(F.softmax, x, temperature=temperature), np.float64)
    assert_same(*both(F.log_softmax, x, temperature=temperature), np.float64)


@pytest.mark.parametrize("k", [10, 1000])
def test_against_scipy_and_torch(k):
    torch = pytest.importorskip("torch")
    x = logits((257, k), np.float32, seed=2, scale=10.0)
    old, K.MIN_SIZE = K.MIN_SIZE, 0
    try:
        p, lp, lse = F.softmax(x), F.log_softmax(x), F.logsumexp(x)
    finally:
        K.MIN_SIZE = old
    x64 = x.astype(np.float64)
    # float32: the rounding of x - max alone moves exp(x - max) by up to ulp(|x - max|) relative.
    np.testing.assert_allclose(p, sps.softmax(x64, axis=-1), rtol=5e-6, atol=1e-30)
    # scipy's log(sum) loses the tiny log-probabilities of a dominant class: absolute tolerance.
    np.testing.assert_allclose(lp, sps.log_softmax(x64, axis=-1), rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(lse, sps.logsumexp(x64, axis=-1), rtol=2e-7)
    np.testing.assert_allclose(p, torch.softmax(torch.from_numpy(x), -1).numpy(), rtol=1e-5, atol=1e-30)


@pytest.mark.parametrize("k", [10, 1000])
def test_float64_accuracy_against_longdouble(k):
    """float64 within 1e-12 relative of an extended-precision evaluation."""
    x = logits((64, k), np.float64, seed=3, scale=20.0)
    old, K.MIN_SIZE = K.MIN_SIZE, 0
    try:
        lp = F.log_softmax(x)
        p = F.softmax(x)
    finally:
        K.MIN_SIZE = old
    xl = x.astype(np.longdouble)
    m = xl.max(axis=-1, keepdims=True)
    e = np.exp(xl - m)
    # log1p of the sum of the non-max terms: log(1 + r) would lose r's low digits.
    np.put_along_axis(e, np.argmax(x, axis=-1)[:, None], 0.0, axis=-1)
    ref = (xl - m) - np.log1p(e.sum(axis=-1, keepdims=True))  # (x - m) first: exact for the max
    np.testing.assert_allclose(lp, ref.astype(np.float64), rtol=1e-12)
    np.testing.assert_allclose(p, np.exp(ref).astype(np.float64), rtol=1e-12, atol=0)


def test_dominant_class_keeps_its_tiny_log_probability():
    # log_softmax([0, -40]) = -log1p(e^-40): not 0 (the log1p of the non-max terms).
    x = np.zeros((K.MIN_SIZE, 2))
    x[:, 1] = -40.0
    out = F.log_softmax(x)
    np.testing.assert_allclose(out[:, 0], -np.log1p(np.exp(-40.0)), rtol=1e-15)
    x32 = x.astype(np.float32)
    np.testing.assert_allclose(F.log_softmax(x32)[:, 0], -np.log1p(np.exp(-40.0)), rtol=1e-6)


@numba.njit
def _exp_all(t, out):
    for i in range(t.shape[0]):
        out[i] = KM.exp(t[i])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_ulp_error(dtype):
    """The vectorised exp is within 2 ulp of exp, and underflows like np.exp."""
    kern = _exp_all
    lo = -104.0 if dtype == np.float32 else -745.0
    t = np.concatenate([np.linspace(lo, 0.0, 200001), -np.logspace(-30, 0, 2001), [0.0, -np.inf]]).astype(dtype)
    out = np.empty_like(t)
    kern(t, out)
    ref = np.exp(t.astype(np.longdouble))
    normal = ref >= np.finfo(dtype).tiny
    ulp = np.abs(out[normal] - ref[normal]) / np.spacing(ref[normal].astype(dtype))
    assert ulp.max() <= 2.0
    assert out[-1] == 0.0 and out[-2] == 1.0
    # Subnormal results underflow gradually (to within one subnormal step).
    sub = ~normal
    assert np.all(np.abs(out[sub] - ref[sub].astype(dtype)) <= 2 * np.finfo(dtype).smallest_subnormal)


@numba.njit
def _log1p_all(r, out):
    for i in range(r.shape[0]):
        out[i] = KM.log1p(r[i])


def test_log1p_ulp_error():
    """The vectorised log1p of the short-row kernels is within 2 ulp of np.log1p on [0, SMALL_K)."""
    edge = np.sqrt(2.0) - 1.0  # where the reduction switches from f = r to f = z - 1
    r = np.concatenate(
        [
            [0.0, 5e-324, 1e-310, 1e-300, 1e-20],
            np.logspace(-30, np.log10(KB.SMALL_K), 200001),
            np.linspace(edge - 1e-6, edge + 1e-6, 2001),
            np.linspace(0.0, KB.SMALL_K, 100001),
        ]
    )
    out = np.empty_like(r)
    _log1p_all(r, out)
    ref = np.log1p(r.astype(np.longdouble))
    ulp = np.abs(out - ref) / np.spacing(ref.astype(np.float64))
    assert ulp[r > 0].max() <= 2.0
    assert out[0] == 0.0 and out[1] == 5e-324
    nan = np.array([np.nan])
    _log1p_all(nan, nan)
    assert np.isnan(nan[0])


@numba.njit
def _terms_all(t, one):
    """exp(t) for t <= 0 through the short-row kernels' vector IR exp (_block_terms): class 0 is
    the max (0), class 1 holds t, block by block."""
    B = KB.BLOCK
    n = t.shape[0]
    T = np.zeros(2 * B, dtype=t.dtype)
    U = np.empty(2 * B, dtype=t.dtype)
    m = np.empty(B, dtype=t.dtype)
    rest = np.empty(B)
    out = np.empty(n, dtype=t.dtype)
    sums = np.empty(n)
    for r0 in range(0, n, B):
        nb = min(B, n - r0)
        T[B : B + nb] = t[r0 : r0 + nb]
        T[B + nb :] = -1.0
        KB._block_terms(T, U, m, rest, 2, one)
        out[r0 : r0 + nb] = U[B : B + nb]
        sums[r0 : r0 + nb] = rest[:nb]
    return out, sums


@pytest.mark.parametrize("scalef", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vector_exp_ulp_error(dtype, scalef, monkeypatch):
    """The vector exp of the short-row kernels (vector IR) is within 2 ulp of exp and underflows like np.exp;
    the rows' rest is exp(t), or 1 for a tie (t = 0), or NaN for a NaN t. Both ways of applying 2**n:
    AVX-512's vscalef (where the machine has it) and llvm.ldexp (everywhere else)."""
    monkeypatch.setattr(KM, "AVX512", scalef and KV.AVX512)
    terms_all = numba.njit(_terms_all.py_func)  # compiled afresh, under that setting
    lo = -104.0 if dtype == np.float32 else -745.0
    t = np.concatenate([np.linspace(lo, 0.0, 200001), -np.logspace(-30, 0, 2001), [0.0, -np.inf, -1e30, np.nan]]).astype(dtype)
    out, rest = terms_all(t, dtype(1.0))
    ref = np.exp(t[:-1].astype(np.longdouble))
    normal = ref >= np.finfo(dtype).tiny
    ulp = np.abs(out[:-1][normal] - ref[normal]) / np.spacing(ref[normal].astype(dtype))
    assert ulp.max() <= 2.0
    assert out[-4] == 1.0 and out[-3] == 0.0 and out[-2] == 0.0 and np.isnan(out[-1])
    sub = ~normal
    assert np.all(np.abs(out[:-1][sub] - ref[sub].astype(dtype)) <= 2 * np.finfo(dtype).smallest_subnormal)
    np.testing.assert_array_equal(rest[:-4], out[:-4].astype(np.float64))
    assert rest[-4] == 1.0 and rest[-3] == 0.0 and rest[-2] == 0.0 and np.isnan(rest[-1])


@pytest.mark.parametrize("k", [2, 10, 16, 17, 33, KB.SMALL_K - 1])
def test_short_rows_nan_anywhere_gives_a_nan_row(k):
    """A NaN first, inside or last in a short row: that row's outputs are NaN (as the reference's), the others finite."""
    for j in (0, k // 2, k - 1):
        x = logits((KB.BLOCK + 5, k), np.float32, seed=j)
        x[3, j] = np.nan
        for name in ("softmax", "log_softmax", "logsumexp"):
            fast, ref = both(getattr(F, name), x)
            assert_same(fast, ref, np.float32)
            assert np.all(np.isnan(fast[3])) and np.all(np.isfinite(np.delete(fast, 3, axis=0)))


_load_block, _store_block, _BLOCK = K._load_block, K._store_block, KB.BLOCK


@numba.njit
def _through_blocks(xf, n, k, T, out):
    """x -> T (classes first, block by block) -> out, by the kernels' block transposes."""
    for r0 in range(0, n, _BLOCK):
        nb = min(_BLOCK, n - r0)
        _load_block(xf, r0, nb, k, T)
        _store_block(T, nb, k, out[r0 * k : (r0 + nb) * k])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_block_transposes_every_k(dtype):
    """The shuffle transposes (K <= SHUFFLE_K) and the scalar ones agree with NumPy's, at every offset."""
    B = KB.BLOCK
    n = 2 * B + 21  # a whole block, then a partial one with a group of rows left over
    for k in range(1, KV.SHUFFLE_K + 3):
        x = np.arange(n * k, dtype=dtype).reshape(n, k) + 0.5
        T = np.full(k * B, np.nan, dtype)
        out = np.full(n * k, np.nan, dtype)
        _through_blocks(x.reshape(-1), n, k, T, out)
        np.testing.assert_array_equal(out.reshape(n, k), x)
        # The last block's layout in T: classes first, row r of the block at T[j * B + r].
        last = n - (n - 1) % B - 1
        np.testing.assert_array_equal(T.reshape(k, B)[:, : n - last], x[last:].T)


def _offset_rows(n, k, dtype, shift):
    """An (n, k) C-contiguous array of NaN starting ``shift`` elements past a 64-byte boundary."""
    item = np.dtype(dtype).itemsize
    buf = np.full(n * k + 64, np.nan, dtype)
    start = (-buf.ctypes.data // item) % (64 // item) + shift
    return buf[start : start + n * k].reshape(n, k)


@pytest.mark.parametrize("k", list(range(1, KV.SHUFFLE_K + 1)) + [17, 33])
def test_streamed_and_register_blocks_write_the_same_bits_at_every_alignment(k, monkeypatch):
    """Non-temporal stores (float32 rows <= SHUFFLE_K into a large output) and the register kernels
    (float32 rows of K in REGISTER_K on AVX-512) give the same bits as the scratch path's plain
    stores, wherever the output starts: the head rows, whole blocks from a 64-byte boundary and a
    partial last block, for softmax, log_softmax and the cross-entropy gradient (plain labels, and
    weights with an ignored label), special rows included (also in the last rows of a block, where
    the register kernels' row vectors stop at the block's end)."""
    monkeypatch.setattr(K, "STREAM_BYTES", 0)
    B = KB.BLOCK
    n = 3 * B + 37
    x = _special_at(logits((n, k), np.float32, seed=k), [0, B - 1, B, 2 * B + 5, 3 * B - 2, n - 1] if k > 1 else [])
    y = np.random.default_rng(k).integers(0, k, n)
    w = np.random.default_rng(k).random(k)
    ones = np.empty(0)
    special = np.empty(n, np.bool_)

    def run(kernel, out, stream, registers):
        head, streams = K.stream_plan(out) if stream else (0, False)
        kernel(out, head, streams, registers)
        return out.copy(), special.copy()

    kernels = {
        "softmax": lambda out, h, st, reg: K.rows_small(x, 1.0, K.SOFTMAX, out, special, h, st, reg),
        "log_softmax": lambda out, h, st, reg: K.rows_small(x, 0.5, K.LOG_SOFTMAX, out, special, h, st, reg),
        "grad": lambda out, h, st, reg: KL.ce_grad_labels_small(x, y, ones, False, np.int64(0), False, 0.0, 1.0,
                                                                1.0 / n, out, special, h, st, reg),
        "grad weighted": lambda out, h, st, reg: KL.ce_grad_labels_small(x, y, w, True, np.int64(1), True, 0.1, 1.0,
                                                                         1.0, out, special, h, st, reg),
    }
    streamed_once = False
    registers = K.register_rows(x)
    assert registers == (KV.AVX512 and KB.REGISTER_K[0] <= k <= KB.REGISTER_K[1])
    for name, kernel in kernels.items():
        want, want_special = run(kernel, _offset_rows(n, k, np.float32, 0), stream=False, registers=False)
        for reg in {False, registers}:
            for shift in range(16):
                out = _offset_rows(n, k, np.float32, shift)
                streamed_once |= K.stream_plan(out)[1]
                got, got_special = run(kernel, out, stream=True, registers=reg)
                msg = f"{name}, output {4 * shift} bytes past a line, registers {reg}"
                np.testing.assert_array_equal(got, want, err_msg=msg)
                np.testing.assert_array_equal(got_special, want_special, err_msg=msg)
    assert streamed_once == (k <= KV.SHUFFLE_K)


@contextlib.contextmanager
def _before_a_guard_page(values):
    """A copy of the array ``values`` whose last element ends where an unreadable page begins: any read
    past its end faults (the test process dies, which fails the test)."""
    page = mmap.PAGESIZE
    size = -(-values.nbytes // page) * page
    buf = mmap.mmap(-1, size + page)
    base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
    assert libc.mprotect(base + size, page, 0) == 0  # PROT_NONE
    try:
        x = np.frombuffer(buf, values.dtype, values.size, size - values.nbytes).reshape(values.shape)
        x[...] = values
        yield x
    finally:
        libc.mprotect(base + size, page, mmap.PROT_READ | mmap.PROT_WRITE)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("extra", [0, 19])
@pytest.mark.parametrize("k", range(1, KV.SHUFFLE_K + 2))
def test_register_rows_equal_the_scratch_path_and_touch_nothing_outside_their_rows(k, extra, dtype):
    """The register kernels against the scratch path: whole blocks read straight from x and written
    straight into out (unstreamed), and a partial last block (``extra`` rows). The same bits in
    float32, and for float64 softmax and logsumexp; float64 log_softmax and gradient may round
    differently (the last ulp; a gradient's cancelling label term, to a few ulp of 1 / n). x ends at an
    unreadable page, so a row vector read past its last block faults; the output sits inside a larger
    buffer whose guard elements must stay untouched."""
    B = KB.BLOCK
    n = 2 * B + extra
    values = _special_at(logits((n, k), dtype, seed=40 + k), [B - 1, B, 2 * B - 1] if k > 1 else [])
    with _before_a_guard_page(values) as x:
        _compare_register_rows(x, k)


def _compare_register_rows(x, k):
    """Each short-row kernel on ``x`` with the register kernels (where they apply) and without."""
    n = x.shape[0]
    dtype = x.dtype.type
    y = np.random.default_rng(k).integers(0, k, n)
    special = np.empty(n, np.bool_)
    registers = K.register_rows(x)

    def run(kernel, reg, width):
        buf = np.full(n * width + 64, -7.0, dtype)
        out = buf[16 : 16 + n * width].reshape(n, width)
        kernel(out, reg)
        assert (buf[:16] == -7.0).all() and (buf[16 + n * width :] == -7.0).all()
        return out.copy(), special.copy()

    kernels = {
        "softmax": (lambda out, reg: K.rows_small(x, 2.0, K.SOFTMAX, out, special, 0, False, reg), k),
        "log_softmax": (lambda out, reg: K.rows_small(x, 1.0, K.LOG_SOFTMAX, out, special, 0, False, reg), k),
        "logsumexp": (lambda out, reg: K.rows_small(x, 1.0, K.LOGSUMEXP, out, special, 0, False, reg), 1),
        "grad": (lambda out, reg: KL.ce_grad_labels_small(x, y, np.empty(0), False, np.int64(0), False, 0.0, 0.5,
                                                         1.0 / n, out, special, 0, False, reg), k),
    }
    for name, (kernel, width) in kernels.items():
        want, want_special = run(kernel, False, width)
        got, got_special = run(kernel, registers, width)
        np.testing.assert_array_equal(got_special, want_special, err_msg=name)
        if dtype == np.float32 or name in ("softmax", "logsumexp"):
            np.testing.assert_array_equal(got, want, err_msg=name)
        else:  # the flagged rows are the reference's to fill
            assert_same(got[~want_special], want[~want_special], dtype)
    assert registers == (KV.AVX512 and KB.REGISTER_K[0] <= k <= KB.REGISTER_K[1])


@pytest.mark.parametrize("k", [2, 3, 10])
def test_register_log_softmax_takes_the_scratch_paths_log_sum_over_its_whole_range(k):
    """log_softmax in registers takes log1p(rest) by its own vector code (_vector_log1p): the same bits as
    the scratch path's _log1p for rest from 0 (exp underflows) through the tiny rests of one dominant
    class, both branches around sqrt(2) - 1, to k - 1 (all tied)."""
    n = 1 << 14
    gap = np.linspace(0.0, 110.0, n, dtype=np.float32)
    x = np.zeros((n, k), np.float32)
    x[:, 1:] = -gap[:, None] * np.linspace(1.0, 1.5, k - 1, dtype=np.float32)
    special = np.empty(n, np.bool_)
    want, got = np.empty_like(x), np.empty_like(x)
    K.rows_small(x, 1.0, K.LOG_SOFTMAX, want, special, 0, False, False)
    K.rows_small(x, 1.0, K.LOG_SOFTMAX, got, special, 0, False, K.register_rows(x))
    np.testing.assert_array_equal(got, want)
    np.testing.assert_allclose(got, sps.log_softmax(x.astype(np.float64), axis=1), rtol=1e-6, atol=1e-6)


def test_stream_plan_streams_only_large_float32_short_rows_it_can_align(monkeypatch):
    """stream_plan: a lead of fewer than _BLOCK rows after which a row starts on a 64-byte boundary, or
    no streaming (float64, rows longer than SHUFFLE_K, under STREAM_BYTES, or no row ever aligned)."""
    monkeypatch.setattr(K, "STREAM_BYTES", 1000 * 4)
    for k in range(1, KV.SHUFFLE_K + 1):
        for shift in range(16):
            head, stream = K.stream_plan(_offset_rows(1000, k, np.float32, shift))
            aligned = [h for h in range(KB.BLOCK) if (4 * (shift + h * k)) % 64 == 0]
            assert stream == bool(aligned)
            assert head == (aligned[0] if aligned else 0)
    assert K.stream_plan(_offset_rows(1000, KV.SHUFFLE_K + 1, np.float32, 0)) == (0, False)
    assert K.stream_plan(_offset_rows(99, 10, np.float32, 0)) == (0, False)  # 3960 bytes, under the threshold
    assert K.stream_plan(_offset_rows(1000, 10, np.float64, 0)) == (0, False)


@pytest.mark.parametrize("name", ["softmax", "log_softmax", "cross_entropy_grad"])
def test_streamed_out_and_fresh_results_match_the_reference(name, monkeypatch):
    """Through the public functions, with streaming on for any size: ``out=`` at an offset from a
    cache line and a fresh result both equal the unstreamed result bit for bit, and the reference."""
    x = _special_at(logits((K.MIN_SIZE // 10 + 301, 10), np.float32, seed=5), [0, 1, 700, 6000])
    args = (np.random.default_rng(5).integers(0, 10, x.shape[0]),) if name == "cross_entropy_grad" else ()
    fn = getattr(F, name)
    plain = fn(x, *args)
    monkeypatch.setattr(K, "STREAM_BYTES", 0)
    out = _offset_rows(*x.shape, np.float32, 2)  # 8 bytes past a line: row 3 starts on one
    assert K.stream_plan(out)[1]
    assert fn(x, *args, out=out) is out
    np.testing.assert_array_equal(out, plain)
    np.testing.assert_array_equal(fn(x, *args), plain)
    assert_same(*both(fn, x, *args), np.float32)


def _special_at(x, rows):
    """Special rows (as in with_special_rows) at the given row indices."""
    x = x.copy()
    k = x.shape[-1]
    kinds = [
        lambda v: v.fill(-np.inf),
        lambda v: v.__setitem__(k // 2, np.inf),
        lambda v: v.__setitem__(k - 1, np.nan),
        lambda v: v.__setitem__(slice(0, max(1, k // 2)), -np.inf),
        lambda v: v.fill(np.finfo(x.dtype).max),
        lambda v: v.__setitem__(0, v[-1]),  # a tie with the max when it sits last
    ]
    for n, i in enumerate(rows):
        kinds[n % len(kinds)](x[i])
    return x


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_short_rows_every_length_around_block_boundaries(dtype):
    """Every K of the short-row kernels, n not a multiple of the block, special rows at block edges."""
    B = KB.BLOCK
    n = 2 * B + 37
    edges = [0, B - 1, B, B + 1, 2 * B - 1, 2 * B, n - 2, n - 1]
    rng = np.random.default_rng(11)
    for k in range(1, KB.SMALL_K + 2):
        x = _special_at(logits((n, k), dtype, seed=k), edges if k > 1 else [])
        for name in ("softmax", "log_softmax", "logsumexp"):
            assert_same(*both(getattr(F, name), x), dtype)
        assert_same(*both(F.softmax, x, temperature=0.5), dtype)
        y = rng.integers(0, k, n)
        w = rng.random(k)
        for fn in (F.cross_entropy, F.cross_entropy_grad):
            assert_same(*both(fn, x, y, reduction="none"), dtype)
            assert_same(*both(fn, x, y), dtype)
            assert_same(*both(fn, x, y, weight=w, ignore_index=0, label_smoothing=0.1), dtype)


CE_KWARGS = [
    {},
    {"reduction": "sum"},
    {"reduction": "none"},
    {"ignore_index": 2},
    {"ignore_index": -100, "reduction": "none"},
    {"weight": True},
    {"weight": True, "ignore_index": 1, "reduction": "mean"},
    {"label_smoothing": 0.2},
    {"label_smoothing": 0.1, "weight": True, "temperature": 2.0, "reduction": "sum"},
    {"temperature": 0.5, "reduction": "none"},
]


@pytest.mark.parametrize("kw", CE_KWARGS)
@pytest.mark.parametrize("k", [10, 200])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("special", [False, True])
def test_cross_entropy_matches_reference(kw, k, dtype, special):
    rng = np.random.default_rng(4)
    x = logits((150, k), dtype, seed=5)
    if special:
        x = with_special_rows(x)
    y = rng.integers(0, k, 150)
    y[7] = kw.get("ignore_index", 0)
    kw = dict(kw)
    if kw.get("weight") is True:
        kw["weight"] = rng.random(k)
        kw["weight"][3] = 0.0
    for fn in (F.cross_entropy, F.cross_entropy_grad):
        assert_same(*both(fn, x, y, **kw), dtype)


def test_cross_entropy_all_counted_rows_empty():
    # Every row all -inf: nothing counted, loss 0 and gradient 0 (the reference's convention).
    x = np.full((40, 10), -np.inf)
    y = np.zeros(40, dtype=np.int64)
    for fn in (F.cross_entropy, F.cross_entropy_grad):
        fast, ref = both(fn, x, y)
        np.testing.assert_array_equal(fast, ref)


def test_cross_entropy_mean_denominator_skips_empty_rows():
    x = logits((100, 10), np.float64, seed=6)
    x[:30] = -np.inf
    y = np.arange(100) % 10
    for fn in (F.cross_entropy, F.cross_entropy_grad):
        assert_same(*both(fn, x, y), np.float64)


@pytest.mark.parametrize("k", [10, 200])
def test_cross_entropy_against_torch(k):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(7)
    x = logits((300, k), np.float64, seed=8)
    y = rng.integers(0, k, 300)
    w = rng.random(k)
    old, K.MIN_SIZE = K.MIN_SIZE, 0
    try:
        loss = F.cross_entropy(x, y, weight=w, label_smoothing=0.1)
        grad = F.cross_entropy_grad(x, y, weight=w, label_smoothing=0.1)
    finally:
        K.MIN_SIZE = old
    xt = torch.from_numpy(x).requires_grad_(True)
    lt = torch.nn.functional.cross_entropy(xt, torch.from_numpy(y), weight=torch.from_numpy(w), label_smoothing=0.1)
    lt.backward()
    np.testing.assert_allclose(loss, lt.item(), rtol=1e-12)
    np.testing.assert_allclose(grad, xt.grad.numpy(), rtol=1e-10, atol=1e-17)


@pytest.mark.parametrize("k", [1, 2, 10, 16, 17, 30])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_plain_labels_every_class_over_whole_and_partial_blocks(k, dtype):
    """Plain labels on short rows (the label's logit picked in the block's IR, one select per class):
    every class as a label, in whole blocks and in the last, partial one, per row and reduced."""
    n = 2 * KB.BLOCK + 37
    x = logits((n, k), dtype, seed=k)
    y = np.arange(n) % k
    for fn in (F.cross_entropy, F.cross_entropy_grad):
        for reduction in ("none", "mean", "sum"):
            assert_same(*both(fn, x, y, reduction=reduction), dtype)


@numba.njit
def _label_logits_two_ways(x, y, inv_t):
    """(m, rest, t_y) of the whole blocks of ``x`` by the label kernel read straight from the rows (row 0)
    and by the scratch path (row 1): a block transposed into scratch, then :func:`_block_label_logit`."""
    B = KB.BLOCK
    n, k = x.shape
    xf = x.reshape(-1)
    whole = n // B * B
    m = np.empty((2, whole), x.dtype)
    rest = np.empty((2, whole))
    ty = np.empty((2, whole), x.dtype)
    T = np.empty(k * B, x.dtype)
    U = np.empty(k * B, x.dtype)
    for r0 in range(0, whole, B):
        KB._rows_label_logit(xf, r0 * k, m[0, r0 : r0 + B], rest[0, r0 : r0 + B], k, inv_t, y[r0 : r0 + B], ty[0, r0 : r0 + B])
        K._load_block(xf, r0, B, k, T)
        KB._block_label_logit(T, U, m[1, r0 : r0 + B], rest[1, r0 : r0 + B], k, inv_t, y[r0 : r0 + B], ty[1, r0 : r0 + B])
    return m, rest, ty


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_label_kernel_equals_the_scratch_path_and_reads_nothing_past_the_rows(dtype):
    """The label kernel of plain labels, for every row length it takes (both ways of reading a group's
    rows: one long load and shuffles, or row loads and in-lane transposes, see _ROW_LOADS_FROM), has the
    same bits as the scratch path: the max, the rest and the label's logit, with special rows and labels
    out of range (-1, k). x ends at an unreadable page, so a row vector read past the last block faults."""
    B = KB.BLOCK
    for k in range(1, KV.SHUFFLE_K + 1):
        values = _special_at(logits((2 * B, k), dtype, seed=60 + k), [3, B - 1, B, 2 * B - 1] if k > 1 else [])
        y = np.random.default_rng(k).integers(-1, k + 1, 2 * B)
        with _before_a_guard_page(values) as x:
            m, rest, ty = _label_logits_two_ways(x, y, dtype(0.5))
            fast, ref = both(F.cross_entropy, x, np.clip(y, 0, k - 1), reduction="none")
        for name, got in (("m", m), ("rest", rest), ("t_y", ty)):
            np.testing.assert_array_equal(got[0], got[1], err_msg=f"{name}, rows of {k}")
        assert_same(fast, ref, dtype)


@pytest.mark.parametrize(("n", "row", "label"), [(50, 20, 10), (2 * KB.BLOCK + 37, 5, -1), (2 * KB.BLOCK + 37, KB.BLOCK + 3, 10),
                                                  (2 * KB.BLOCK + 37, 2 * KB.BLOCK + 30, -1),
                                                  (2 * KB.BLOCK + 37, 17, 2**32 + 3), (2 * KB.BLOCK + 37, 40, -(2**32) + 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_out_of_range_label_raises_on_fast_path(n, row, label, dtype):
    """A label out of range, in a whole block or the last, partial one, is flagged in the kernels, and
    the reference raises; also one that wraps onto a class in 32 bits (the float32 kernel compares the
    labels in 32-bit lanes)."""
    x = logits((n, 10), dtype)
    y = np.zeros(n, dtype=np.int64)
    y[row] = label
    old, K.MIN_SIZE = K.MIN_SIZE, 0
    try:
        for fn in (F.cross_entropy, F.cross_entropy_grad):
            with pytest.raises(ValueError, match="class targets must lie in"):
                fn(x, y)
    finally:
        K.MIN_SIZE = old


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dominant_label_keeps_a_tiny_loss_exact(dtype):
    """Label on a dominant logit: the loss is log1p(sum of the other terms), tiny but kept to the
    dtype's relative precision (the max's own term is left out of the sum, never added then subtracted)."""
    n, k = KB.BLOCK + 9, 10
    gap = np.linspace(5.0, 60.0 if dtype == np.float32 else 600.0, n)
    x = np.zeros((n, k), dtype)
    x[:, 3] = gap
    y = np.full(n, 3)
    fast, ref = both(F.cross_entropy, x, y, reduction="none")
    want = np.log1p((k - 1) * np.exp(-x[:, 3].astype(np.longdouble))).astype(np.float64)
    np.testing.assert_allclose(fast.astype(np.float64), want, rtol=4 * float(np.finfo(dtype).eps))
    assert np.all(fast > 0)


@settings(max_examples=30, deadline=None)
@given(
    x=hnp.arrays(
        np.float32,
        hnp.array_shapes(min_dims=2, max_dims=2, min_side=1, max_side=60),
        elements=st.one_of(
            st.floats(-1e4, 1e4, width=32),
            st.sampled_from([-np.inf, np.inf, np.nan, 3.4e38, -3.4e38]),
        ),
    )
)
def test_property_fast_equals_reference(x):
    for name in ("softmax", "log_softmax", "logsumexp"):
        assert_same(*both(getattr(F, name), x), np.float32)
    y = np.zeros(x.shape[0], dtype=np.int64)
    assert_same(*both(F.cross_entropy, x, y, reduction="none"), np.float32)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("where", ["first", "chunk edge", "last"])
def test_all_finite_finds_any_non_finite_entry(dtype, value, where):
    """all_finite agrees with np.isfinite(x).all(), wherever the one bad entry sits (chunks of 2**16)."""
    n = (1 << 18) + 37
    x = np.random.default_rng(0).standard_normal(n).astype(dtype) * 1e3
    assert K.all_finite(x) and K.all_finite(x.reshape(-1, 1)) and K.all_finite(np.full(n, np.finfo(dtype).max))
    i = {"first": 0, "chunk edge": n // 4, "last": n - 1}[where]
    x[i] = value
    assert not K.all_finite(x)
    assert not K.all_finite(x[::-1])  # not contiguous: checked on a copy
    assert bool(np.isfinite(x).all()) is False


def test_check_finite_takes_the_kernel_and_names_the_entry():
    from softmaxreg.models._validation import check_finite

    X = np.zeros((4096, 70), dtype=np.float32)
    assert fast_kernels(X) is not None
    check_finite(X)
    X[3001, 65] = -np.inf
    with pytest.raises(ValueError, match="X contains -inf at row 3001, column 65"):
        check_finite(X)


# ---------------------------------------------------------------- out=

OUT_LAYOUTS = ["C", "F", "inplace", "axis0", "float16", "small"]


def _out_case(layout, dtype):
    """(logits, out, axis) for one layout of out=; ``small`` stays under MIN_SIZE (the reference path)."""
    n = 16 if layout == "small" else K.MIN_SIZE // 10 + 37
    x = with_special_rows(logits((n, 10), np.float16 if layout == "float16" else dtype, seed=3))
    if layout == "F":
        return x, np.asfortranarray(np.zeros_like(x)), -1
    if layout == "inplace":
        return x, x, -1
    if layout == "axis0":
        x = np.ascontiguousarray(x.T)
        return x, np.zeros_like(x), 0
    return x, np.zeros_like(x), -1


@pytest.mark.parametrize("layout", OUT_LAYOUTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["softmax", "log_softmax", "cross_entropy_grad"])
def test_out_gets_the_same_result_in_place(name, dtype, layout):
    """out= returns out itself, holding exactly the result without out=: written where the kernel
    can (C order, class axis last), through a copy otherwise (F order, another axis, out is x, float16)."""
    x, out, axis = _out_case(layout, dtype)
    args = (np.random.default_rng(0).integers(0, x.shape[axis], x.shape[1 - axis % 2]),) if name == "cross_entropy_grad" else ()
    kw = {"axis": axis}
    want = getattr(F, name)(x.copy(), *args, **kw)
    got = getattr(F, name)(x, *args, out=out, **kw)
    assert got is out
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_out_is_checked_with_a_message_that_says_what_to_fix(name):
    import torch

    fn = getattr(F, name)
    x = logits((K.MIN_SIZE // 10 + 1, 10), np.float32)
    with pytest.raises(ValueError, match=r"needs out of shape \(6554, 10\) and dtype float32"):
        fn(x, out=np.empty((6554, 10), np.float64))
    with pytest.raises(ValueError, match="needs out of shape"):
        fn(x, out=np.empty((10, 6554), np.float32))
    with pytest.raises(TypeError, match="out must be a NumPy array"):
        fn(x, out=[0.0] * x.size)
    frozen = np.empty_like(x)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        fn(x, out=frozen)
    with pytest.raises(TypeError, match="NumPy input only"):
        fn(torch.from_numpy(x), out=np.empty_like(x))
    # Nothing was written into out before the error.
    out = np.full((10, 6554), 7.0, np.float32)
    with pytest.raises(ValueError):
        fn(x, out=out)
    assert np.all(out == 7.0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_one_exp_underflows_gradually_as_np_exp(dtype):
    """The exp every kernel uses (scalar form here; the vector form is checked against it above) agrees with
    np.exp over the whole range of t <= 0, the subnormal results and the flush to 0 included."""
    tiny, sub = np.finfo(dtype).tiny, np.finfo(dtype).smallest_subnormal
    lo = -110.0 if dtype == np.float32 else -760.0
    t = np.concatenate([np.linspace(lo, 0.0, 400001), [-np.inf, 0.0]]).astype(dtype)
    out = np.empty_like(t)
    _exp_all(t, out)
    want = np.exp(t)
    normal = want >= tiny
    ulp = np.abs(out[normal] - want[normal]) / np.spacing(want[normal])
    assert ulp.max() <= 2.0
    assert np.any((want > 0) & ~normal)  # the range has subnormal results
    assert np.all(np.abs(out[~normal] - want[~normal]) <= 2 * sub)  # within two subnormal steps
    assert out[-2] == 0.0 and out[-1] == 1.0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [3, 7, 300, 3001])
@pytest.mark.parametrize("with_bias", [False, True])
def test_shifted_exp_matches_the_reference(dtype, k, with_bias):
    """exp(z + b - m) in place, the row max m and the rest (so that m + log1p(rest) is the logsumexp);
    rows of -inf only, rows with +inf or NaN, and ties, by their documented values."""
    rng = np.random.default_rng(k)
    z = (rng.normal(size=(9, k)) * 5).astype(dtype)
    b = (rng.normal(size=k) * 2).astype(dtype) if with_bias else None
    z[3] = -np.inf
    z[4, 0] = np.inf
    z[5, -1] = np.nan
    z[6, -1] = -np.inf
    z[7] = 1.5  # without a bias, all tied: rest = k - 1
    if b is not None:
        b[0] = -np.inf  # a masked class
    with np.errstate(invalid="ignore"):  # +inf plus a masked class's -inf
        zb = z.astype(np.float64) + (0.0 if b is None else b.astype(np.float64))
        want_m = zb.max(axis=1)
    got = z.copy()
    m, rest = N.shifted_exp(got, b)
    assert m.dtype == dtype and rest.dtype == np.float64
    finite = [0, 1, 2, 6, 7, 8]
    np.testing.assert_array_equal(m[finite], want_m[finite].astype(dtype))
    want = np.exp(zb[finite] - m[finite, None].astype(np.float64))
    rtol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(got[finite], want, rtol=rtol, atol=1e-300)
    lse = m[finite] + np.log1p(rest[finite])
    np.testing.assert_allclose(lse, sps.logsumexp(zb[finite], axis=1), rtol=rtol)
    if b is None:
        assert rest[7] == k - 1
    assert m[3] == -np.inf and np.isnan(m[4]) and np.isnan(m[5])
    assert not got[[3, 4, 5]].any() and not rest[[3, 4, 5]].any()
