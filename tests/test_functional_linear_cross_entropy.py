"""Tests of softmaxreg.functional's linear cross-entropy against the materialized logits and PyTorch autograd."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from softmaxreg.functional import (
    cross_entropy,
    cross_entropy_grad,
    linear_cross_entropy,
    linear_cross_entropy_grad,
    linear_logsumexp,
    linear_topk,
    logsumexp,
    softmax,
)

RNG = np.random.default_rng(11)
N, D, K = 37, 6, 23
X = RNG.normal(size=(N, D))
WEIGHT = RNG.normal(size=(K, D))
BIAS = RNG.normal(size=K)
LABELS = RNG.integers(0, K, N)
LABELS_IGNORED = np.where(np.arange(N) % 5 == 3, -100, LABELS)
CLASS_WEIGHT = RNG.uniform(0.3, 2.0, K)
MASKED = BIAS.copy()
MASKED[[2, 9]] = -np.inf  # two classes masked out
LABELS_UNMASKED = np.where(np.isin(LABELS, [2, 9]), 0, LABELS)

# (rows, classes) blocks: one pass; classes swept with remainders in both directions; one row at a time.
BLOCKS = [None, (8, K), (8, 7), (5, 4), (1, 50)]
OPTIONS = [
    {},
    {"ignore_index": -100},
    {"label_smoothing": 0.15},
    {"class_weight": CLASS_WEIGHT, "ignore_index": -100, "label_smoothing": 0.2},
]
TOL = {np.float64: 1e-12, np.float32: 1e-5}


def _labels(kw):
    return LABELS_IGNORED if "ignore_index" in kw else LABELS


def _torch(x, w, labels, b, reduction, kw):
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = None if b is None else torch.tensor(b, requires_grad=True)
    tkw = {("weight" if k == "class_weight" else k): (torch.tensor(v, dtype=tx.dtype) if k == "class_weight" else v)
           for k, v in kw.items()}
    loss = F.cross_entropy(F.linear(tx, tw, tb), torch.tensor(labels), reduction=reduction, **tkw)
    grads = torch.autograd.grad(loss.sum(), [t for t in (tx, tw, tb) if t is not None])
    return [loss.detach().numpy()] + [g.numpy() for g in grads]


def _close(got, ref, rtol):
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.shape == ref.shape
    scale = np.max(np.abs(ref)) if ref.size else 0.0
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("kw", OPTIONS)
@pytest.mark.parametrize("block_size", BLOCKS)
@pytest.mark.parametrize("with_bias", [True, False])
def test_matches_torch_autograd(dtype, reduction, kw, block_size, with_bias, one_torch_thread):
    x, w = X.astype(dtype), WEIGHT.astype(dtype)
    b = BIAS.astype(dtype) if with_bias else None
    kw = {k: (v.astype(dtype) if isinstance(v, np.ndarray) else v) for k, v in kw.items()}
    labels = _labels(kw)
    ref = _torch(x, w, labels, b, reduction, kw)
    loss, gx, gw, gb = linear_cross_entropy_grad(x, w, labels, b, reduction=reduction, block_size=block_size, **kw)
    only = linear_cross_entropy(x, w, labels, b, reduction=reduction, block_size=block_size, **kw)
    for got in (loss, only, gx, gw) + ((gb,) if with_bias else ()):
        assert got.dtype == dtype
    rtol = TOL[dtype]
    _close(loss, ref[0], rtol)
    _close(only, ref[0], rtol)
    _close(gx, ref[1], rtol)
    _close(gw, ref[2], rtol)
    if with_bias:
        _close(gb, ref[3], rtol)
    else:
        assert gb is None


@pytest.mark.parametrize("block_size", [None, (8, 7)])
def test_matches_materialized_cross_entropy_with_sample_weights(block_size):
    z = X @ WEIGHT.T + BIAS
    s = RNG.uniform(0.0, 2.0, N)
    kw = {"ignore_index": -100, "label_smoothing": 0.1}
    per_row = cross_entropy(z, LABELS_IGNORED, reduction="none", **kw)
    rows_grad = cross_entropy_grad(z, LABELS_IGNORED, reduction="none", **kw) * s[:, None]
    den = np.sum(s * (LABELS_IGNORED != -100))
    loss, gx, gw, gb = linear_cross_entropy_grad(X, WEIGHT, LABELS_IGNORED, BIAS, sample_weight=s, block_size=block_size, **kw)
    np.testing.assert_allclose(loss, np.sum(s * per_row) / den, rtol=1e-12)
    np.testing.assert_allclose(gx, rows_grad @ WEIGHT / den, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gw, rows_grad.T @ X / den, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(gb, rows_grad.sum(axis=0) / den, rtol=1e-12, atol=1e-15)
    summed = linear_cross_entropy(X, WEIGHT, LABELS_IGNORED, BIAS, sample_weight=s, reduction="sum", block_size=block_size, **kw)
    np.testing.assert_allclose(summed, np.sum(s * per_row), rtol=1e-12)


@pytest.mark.parametrize("block_size", BLOCKS)
def test_masked_classes_get_probability_zero(block_size, one_torch_thread):
    ref = _torch(X, WEIGHT, LABELS_UNMASKED, MASKED, "mean", {})
    loss, gx, gw, gb = linear_cross_entropy_grad(X, WEIGHT, LABELS_UNMASKED, MASKED, block_size=block_size)
    for got, want in zip((loss, gx, gw, gb), ref):
        _close(got, want, 1e-12)
    assert np.all(gb[[2, 9]] == 0.0) and np.all(gw[[2, 9]] == 0.0)
    # A label on a masked class has probability 0: infinite loss, as the materialized computation says.
    assert linear_cross_entropy(X[:1], WEIGHT, np.array([2]), MASKED, block_size=block_size) == np.inf


@pytest.mark.parametrize("block_size", [None, (4, 5)])
def test_nonfinite_rows_follow_cross_entropy(block_size):
    """All-masked rows are not counted; a +inf logit shares the mass; NaN poisons its own row only."""
    w = WEIGHT[:8].copy()
    x = X[:6].copy()
    b = np.zeros(8)
    x[1] = np.nan
    x[2] = 0.0
    labels = np.array([0, 1, 2, 3, 4, 5])
    got = linear_cross_entropy(x, w, labels, b, reduction="none", block_size=block_size)
    want = cross_entropy(x @ w.T + b, labels, reduction="none")
    np.testing.assert_allclose(got, want, rtol=1e-12, equal_nan=True)
    assert np.isnan(got[1]) and np.all(np.isfinite(np.delete(got, 1)))
    # A row whose logits hit +inf (a huge weight) shares its mass among the +inf classes.
    w2 = w.copy()
    w2[3] = [1e308] * D
    x2 = np.abs(X[:6]) + 1.0
    with np.errstate(over="ignore"):
        z2 = x2 @ w2.T
    for got, want in [
        (linear_cross_entropy(x2, w2, labels, b, reduction="none", block_size=block_size),
         cross_entropy(z2, labels, reduction="none")),
        (linear_cross_entropy_grad(x2, w2, labels, b, reduction="sum", block_size=block_size)[3],
         cross_entropy_grad(z2, labels, reduction="none").sum(axis=0)),
    ]:
        np.testing.assert_allclose(got, want, rtol=1e-12)
    # Every class masked: nothing counted, loss 0 and no gradient (PyTorch gives NaN here).
    loss, gx, gw, gb = linear_cross_entropy_grad(x2, w, labels, np.full(8, -np.inf), block_size=block_size)
    assert loss == 0.0 and not gx.any() and not gw.any() and not gb.any()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("scale", [0.01, 3.0, 30.0, 3000.0])
@pytest.mark.parametrize("block_size", [None, (8, 7)])
def test_logits_of_any_scale_match_torch(dtype, scale, block_size, one_torch_thread):
    """Small and large logits (row maxima near 0 and far from it, both dtypes) give torch's loss and gradients."""
    x, w, b = (X * scale).astype(dtype), WEIGHT.astype(dtype), (BIAS * scale).astype(dtype)
    ref = _torch(x, w, LABELS, b, "mean", {"label_smoothing": 0.1})
    got = linear_cross_entropy_grad(x, w, LABELS, b, label_smoothing=0.1, block_size=block_size)
    for g, r in zip(got, ref):
        _close(g, r, TOL[dtype])


def test_all_rows_ignored_gives_zero():
    labels = np.full(N, -1)
    loss, gx, gw, gb = linear_cross_entropy_grad(X, WEIGHT, labels, BIAS, ignore_index=-1)
    assert loss == 0.0 and not gx.any() and not gw.any() and not gb.any()


def test_float32_matches_torch_at_a_larger_vocabulary(one_torch_thread):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(70, 16)).astype(np.float32)
    w = (rng.normal(size=(3001, 16)) * 0.3).astype(np.float32)
    b = rng.normal(size=3001).astype(np.float32)
    y = rng.integers(0, 3001, 70)
    ref = _torch(x, w, y, b, "mean", {"label_smoothing": 0.1})
    for block in (None, (32, 1000)):
        got = linear_cross_entropy_grad(x, w, y, b, label_smoothing=0.1, block_size=block)
        for g, r in zip(got, ref):
            _close(g, r, 1e-5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kw", OPTIONS)
@pytest.mark.parametrize("block_size", [(32, 3001), (32, 2100)])
def test_blocks_of_native_size_match_the_materialized_cross_entropy(dtype, kw, block_size):
    """Blocks of 32 x 3001 (one pass) or 32 x 2100 (two sweeps) logits, large enough for the threaded native
    passes (the last class block and the last 6 rows are not), with masked classes, all-masked rows, a NaN
    row, a row of +inf logits, ignored rows and sample weights up to 4."""
    rng = np.random.default_rng(5)
    n, k = 70, 3001
    x = rng.normal(size=(n, 16)).astype(dtype)
    w = (rng.normal(size=(k, 16)) * 0.5).astype(dtype)
    w[:, 0] = np.abs(w[:, 0]) + 0.1
    b = rng.normal(size=k).astype(dtype)
    b[[5, 700]] = -np.inf
    y = rng.integers(0, k, n)
    y[np.isin(y, [5, 700])] = 1
    if "ignore_index" in kw:
        y[[9, 40]] = -100
    if "class_weight" in kw:
        kw = {**kw, "class_weight": np.resize(kw["class_weight"], k).astype(dtype)}
    x[2] = np.nan
    x[[20, 31, 68]] = 0.0
    x[[20, 68], 0] = -np.inf  # every logit -inf: not counted (row 68 is in the last block)
    x[31, 0] = np.inf  # every logit +inf (a masked class's NaN)
    with np.errstate(invalid="ignore"):
        z = x.astype(np.float64) @ w.T.astype(np.float64) + b
    ref_kw = dict(kw)
    ref_kw["weight"] = ref_kw.pop("class_weight", None)
    want = cross_entropy(z, y, reduction="none", **ref_kw)
    got = linear_cross_entropy(x, w, y, b, reduction="none", block_size=block_size, **kw)
    np.testing.assert_allclose(got, want, rtol=TOL[dtype], atol=TOL[dtype], equal_nan=True)
    assert got.dtype == dtype and np.isnan(got[2]) and got[20] == got[68] == 0.0
    sel = np.isfinite(want) & np.isfinite(x).all(axis=1)
    sw = rng.uniform(0.0, 4.0, int(sel.sum())).astype(dtype)
    loss, gx, gw, gb = linear_cross_entropy_grad(x[sel], w, y[sel], b, reduction="sum", block_size=block_size,
                                                 sample_weight=sw, **kw)
    g = cross_entropy_grad(z[sel], y[sel], reduction="none", **ref_kw) * sw[:, None]
    _close(loss, want[sel] @ sw, TOL[dtype])
    _close(gb, g.sum(axis=0), TOL[dtype])
    _close(gw, g.T @ x[sel].astype(np.float64), TOL[dtype])
    _close(gx, g @ w.astype(np.float64), TOL[dtype])


@pytest.mark.parametrize("block_size", [None, (4, 5), (3, 1)])
def test_topk_matches_torch(block_size):
    b = BIAS.copy()
    b[4] = -np.inf
    classes, probs = linear_topk(X, WEIGHT, 5, b, block_size=block_size)
    p = torch.softmax(torch.tensor(X @ WEIGHT.T + b), dim=1)
    values, indices = p.topk(5, dim=1)
    np.testing.assert_array_equal(classes, indices.numpy())
    np.testing.assert_allclose(probs, values.numpy(), rtol=1e-12)
    full, pk = linear_topk(X.astype(np.float32), WEIGHT.astype(np.float32), K, block_size=block_size)
    assert pk.dtype == np.float32
    np.testing.assert_allclose(pk.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(np.take_along_axis(softmax(X @ WEIGHT.T), full, axis=1), pk, rtol=1e-5)


@pytest.mark.parametrize("block_size", [None, (4, 5), (3, 1)])
def test_logsumexp_matches_the_materialized_one(block_size):
    b = MASKED.copy()
    x = X.copy()
    x[4] = np.nan
    want = logsumexp(x @ WEIGHT.T + b, axis=1)
    got = linear_logsumexp(x, WEIGHT, b, block_size=block_size)
    np.testing.assert_allclose(got, want, rtol=1e-14, equal_nan=True)
    assert linear_logsumexp(X, WEIGHT, np.full(K, -np.inf), block_size=block_size)[0] == -np.inf


def test_float32_rows_with_float64_weight_compute_in_float64(one_torch_thread):
    got = linear_cross_entropy_grad(X.astype(np.float32), WEIGHT, LABELS, BIAS, reduction="sum", block_size=(8, 7))
    assert got[0].dtype == np.float64
    x32 = X.astype(np.float32).astype(np.float64)
    ref = _torch(x32, WEIGHT, LABELS, BIAS, "sum", {})
    for g, r in zip(got, ref):
        _close(g, r, 1e-12)


@pytest.mark.parametrize("block_size", [None, (1, 4), (3, 1), (2, 5)])
def test_topk_ties_go_to_the_smaller_class_as_argmax(block_size):
    """Equal logits: the classes in index order, whatever the blocks, so that the top 1 is argmax."""
    classes, probs = linear_topk(np.ones((2, 1)), np.zeros((6, 1)), 3, block_size=block_size)
    assert classes.tolist() == [[0, 1, 2], [0, 1, 2]]
    np.testing.assert_allclose(probs, 1 / 6)
    rng = np.random.default_rng(0)
    x = rng.integers(-1, 2, (30, 3)).astype(float)
    w = rng.integers(-1, 2, (17, 3)).astype(float)  # many ties
    z = x @ w.T
    classes, _ = linear_topk(x, w, 5, block_size=block_size)
    np.testing.assert_array_equal(classes, np.argsort(-z, axis=1, kind="stable")[:, :5])
    np.testing.assert_array_equal(classes[:, 0], np.argmax(z, axis=1))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: linear_cross_entropy(X, WEIGHT, np.full(N, K)), r"labels must lie in \[0, 23\)"),
        (lambda: linear_cross_entropy(X, WEIGHT, np.full(N, -1)), r"labels must lie in"),
        (lambda: linear_cross_entropy(X, WEIGHT[:, :3], LABELS), r"weight must have shape \(n_classes, n_features\)"),
        (lambda: linear_cross_entropy(X, WEIGHT, LABELS[:5]), r"labels must have shape \(n_samples,\)"),
        (lambda: linear_cross_entropy(X, WEIGHT, LABELS, BIAS[:3]), r"bias must have shape"),
        (lambda: linear_cross_entropy(X[0], WEIGHT, LABELS), r"x must be a 2-D array"),
        (lambda: linear_cross_entropy(X, WEIGHT, LABELS.astype(float)), r"integer class indices"),
        (lambda: linear_cross_entropy(X, WEIGHT, LABELS, reduction="avg"), r"reduction must be one of"),
        (lambda: linear_cross_entropy(X, WEIGHT, LABELS, label_smoothing=1.5), r"label_smoothing must be in"),
        (lambda: linear_cross_entropy(X, WEIGHT, LABELS, class_weight=np.ones(3)), r"class_weight must have shape"),
        (lambda: linear_cross_entropy(X, WEIGHT, LABELS, sample_weight=-np.ones(N)), r"non-negative"),
        (lambda: linear_cross_entropy(X, WEIGHT, LABELS, block_size=(0, 4)), r"block_size must be a pair"),
        (lambda: linear_cross_entropy(X, WEIGHT, LABELS, block_size=(1.5, 4)), r"block_size must be a pair"),
        (lambda: linear_topk(X, WEIGHT, 0), r"k must be an integer in \[1, n_classes\]"),
        (lambda: linear_topk(X, WEIGHT, K + 1), r"k must be an integer"),
    ],
)
def test_bad_input_is_a_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_complex_input_is_a_type_error():
    with pytest.raises(TypeError, match="real-valued"):
        linear_cross_entropy(X.astype(complex), WEIGHT, LABELS)


def test_non_integer_ignore_index_and_grad_tensors_are_type_errors():
    """As PyTorch: ignore_index is an int (1.5 is not read as 1); a tensor that records gradients is refused
    with what to do rather than failing inside the conversion."""
    for value in (1.5, True, "1"):
        with pytest.raises(TypeError, match="ignore_index must be an integer"):
            linear_cross_entropy(X, WEIGHT, LABELS, ignore_index=value)
        with pytest.raises(TypeError, match="ignore_index must be an integer"):
            cross_entropy(X @ WEIGHT.T, LABELS, ignore_index=value)
    assert linear_cross_entropy(X, WEIGHT, LABELS, ignore_index=np.int64(2)) == pytest.approx(
        float(cross_entropy(X @ WEIGHT.T, LABELS, ignore_index=2)), rel=1e-12)
    with pytest.raises(TypeError, match="requires grad.*detach"):
        linear_cross_entropy(torch.tensor(X, requires_grad=True), WEIGHT, LABELS)


def test_large_vocabulary_runs_in_bounded_memory():
    """K = 200000: the logits would take 16 * 200000 * 4 bytes = 12.8 MB per 16 rows; with n = 512 rows they
    would be 410 MB. The pass must grow the peak RSS by far less (gradients of weight included: 200000 x 8)."""
    code = textwrap.dedent(
        """
        import json, resource, numpy as np
        from softmaxreg.functional import linear_cross_entropy_grad, linear_topk
        rng = np.random.default_rng(0)
        n, d, k = 512, 8, 200_000
        x = rng.normal(size=(n, d)).astype(np.float32)
        w = rng.normal(size=(k, d)).astype(np.float32)
        b = np.zeros(k, np.float32)
        y = rng.integers(0, k, n)
        linear_cross_entropy_grad(x[:2], w[:10], y[:2] % 10)  # imports and first-call allocations
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        loss, gx, gw, gb = linear_cross_entropy_grad(x, w, y, b)
        classes, p = linear_topk(x, w, 3, b)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"growth_kb": after - before, "loss": float(loss), "grad_bytes": gw.nbytes + gb.nbytes + gx.nbytes,
                          "finite": bool(np.isfinite(gw).all())}))
        """
    )
    import os

    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    logits_bytes = 512 * 200_000 * 4
    growth = res["growth_kb"] * 1024
    assert res["finite"] and np.isfinite(res["loss"])
    # The gradients themselves (6.4 MB here) plus one block of logits and vectors: far below the logits' 410 MB.
    assert growth < res["grad_bytes"] + 48 * 2**20 < logits_bytes / 5
