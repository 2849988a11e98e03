"""LinearSoftmaxLoss's blocked passes (many classes) against its ordinary passes, torch, and in bounded memory."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from softmaxreg.loss import LinearSoftmaxLoss


def make_data(n=60, p=5, k=9, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)).astype(dtype)
    y = rng.integers(0, k, size=n)
    y[:k] = np.arange(k)
    sw = rng.uniform(0.2, 2.0, size=n)
    return X, y, sw


CONFIGS = [
    dict(),
    dict(fit_intercept=False),
    dict(reference_class=0),
    dict(reference_class=2, l2_reg_strength=0.3),
]


def _pair(config, dtype=np.float64):
    X, y, sw = make_data(dtype=dtype)
    plain = LinearSoftmaxLoss(X, y, sample_weight=sw, blocked=False, **config)
    blocked = LinearSoftmaxLoss(X, y, sample_weight=sw, blocked=True, **config)
    assert blocked.blocked and not plain.blocked
    w = np.random.default_rng(1).normal(scale=0.5, size=plain.n_params)
    return plain, blocked, w


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_loss_gradient_and_hessp_match_the_ordinary_passes(config, dtype):
    plain, blocked, w = _pair(config, dtype)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    f0, g0 = plain.loss_gradient(w)
    f1, g1 = blocked.loss_gradient(w)
    assert f1 == pytest.approx(f0, rel=rtol)
    assert blocked.loss(w) == pytest.approx(f0, rel=rtol)
    np.testing.assert_allclose(g1, g0, rtol=rtol, atol=rtol * np.abs(g0).max())
    v = np.random.default_rng(2).normal(size=plain.n_params)
    h0 = plain.hessp(w, v)
    np.testing.assert_allclose(blocked.hessp(w, v), h0, rtol=rtol, atol=rtol * np.abs(h0).max())
    np.testing.assert_allclose(blocked.hessp(w, 2 * v), 2 * h0, rtol=rtol, atol=rtol * np.abs(h0).max())  # cached lse
    np.testing.assert_allclose(blocked.losses([w, 0 * w]), [f0, plain.loss(0 * w)], rtol=rtol)


@pytest.mark.parametrize("config", CONFIGS)
def test_minibatch_gradient_matches_the_ordinary_pass(config):
    plain, blocked, w = _pair(config)
    rows = np.array([3, 7, 7, 20, 41])
    c0, c1 = np.zeros(2), np.zeros(2)
    np.testing.assert_allclose(blocked.minibatch_gradient(w, rows, counts=c1), plain.minibatch_gradient(w, rows, counts=c0),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(c1, c0)
    assert blocked.sgd_epoch(w, np.arange(60), batch_size=8, learning_rate=0.1) is None


def test_hessp_matches_torch_hessian_vector_product():
    X, y, sw = make_data(n=20, k=6)
    loss = LinearSoftmaxLoss(X, y, sample_weight=sw, blocked=True, l2_reg_strength=0.1)
    w = np.random.default_rng(3).normal(size=loss.n_params)
    v = np.random.default_rng(4).normal(size=loss.n_params)
    Xt, yt, swt = torch.tensor(X), torch.tensor(y), torch.tensor(sw / sw.sum())

    def f(wt):
        W = wt.reshape(6, 6)
        z = Xt @ W[:, :5].T + W[:, 5]
        ce = torch.nn.functional.cross_entropy(z, yt, reduction="none")
        return (swt * ce).sum() + 0.05 * (W[:, :5] ** 2).sum()

    _, hv = torch.autograd.functional.hvp(f, torch.tensor(w), torch.tensor(v))
    np.testing.assert_allclose(loss.hessp(w, v), hv.numpy(), rtol=1e-12, atol=1e-14)


def test_blocked_needs_dense_x_and_codes():
    X, y, _ = make_data()
    with pytest.raises(ValueError, match="dense X and integer class codes"):
        LinearSoftmaxLoss(sp.csr_matrix(X), y, blocked=True)
    with pytest.raises(ValueError, match="dense X and integer class codes"):
        LinearSoftmaxLoss(X, np.eye(9)[y], blocked=True)
    assert not LinearSoftmaxLoss(X, y).blocked  # small: the ordinary passes


def test_many_classes_choose_the_blocked_passes_and_stay_bounded():
    """n x K = 2000 x 20000: the float64 logits would be 320 MB; a gradient and a Hessian product must not
    grow the peak RSS by more than the coefficient-sized arrays and a few blocks."""
    code = textwrap.dedent(
        """
        import json, resource, numpy as np
        from softmaxreg.loss import LinearSoftmaxLoss
        rng = np.random.default_rng(0)
        n, d, k = 2000, 8, 20000
        X = rng.normal(size=(n, d)).astype(np.float32)
        y = rng.integers(0, k, n)
        loss = LinearSoftmaxLoss(X, y, n_classes=k, l2_reg_strength=1e-3)
        w = rng.normal(scale=0.1, size=loss.n_params)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        f, g = loss.loss_gradient(w)
        hv = loss.hessp(w, g)
        after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({"blocked": loss.blocked, "growth": (after - before) * 1024, "f": f, "coef_bytes": w.nbytes}))
        """
    )
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["blocked"] and np.isfinite(res["f"])
    logits = 2000 * 20000 * 8
    assert res["growth"] < 8 * res["coef_bytes"] + 64 * 2**20 < logits / 2
