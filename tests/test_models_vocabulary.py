"""SoftmaxRegression over many classes: predict_topk, the opt-in n x K outputs, and fits in bounded memory."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from softmaxreg import SoftmaxRegression


@pytest.fixture(scope="module")
def small_model():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 4))
    y = np.array([f"w{c}" for c in rng.integers(0, 40, 120)])
    return SoftmaxRegression(C=10.0, max_iter=50).fit(X, y), X


def test_predict_topk_matches_torch_topk_of_predict_proba(small_model):
    model, X = small_model
    labels, p = model.predict_topk(X, 5)
    values, idx = torch.tensor(model.predict_proba(X)).topk(5, dim=1)
    np.testing.assert_array_equal(labels, model.classes_[idx.numpy()])
    np.testing.assert_allclose(p, values.numpy(), rtol=1e-10)
    np.testing.assert_array_equal(labels[:, 0], model.predict(X))
    sparse_labels, sparse_p = model.predict_topk(sp.csr_matrix(X), 5)
    np.testing.assert_array_equal(sparse_labels, labels)
    np.testing.assert_allclose(sparse_p, p, rtol=1e-12)


def test_predict_topk_bad_k_and_nonfinite_rows_are_clear_errors(small_model):
    model, X = small_model
    with pytest.raises(ValueError, match=r"k must be an integer in \[1, n_classes\]"):
        model.predict_topk(X, 0)
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError):
        model.predict_topk(bad, 2)


def test_many_classes_fit_and_predict_in_bounded_memory():
    """K = 6000 classes, n = 6000 rows: the float64 logits would be 288 MB. Fitting (partial_fit, sgd, lbfgs)
    and predicting must grow the peak RSS by far less; predict_proba asks for allow_large."""
    code = textwrap.dedent(
        """
        import json, resource, warnings, numpy as np
        from softmaxreg import SoftmaxRegression
        warnings.simplefilter("ignore")
        rng = np.random.default_rng(0)
        n, d, k = 6000, 4, 6000
        X = rng.normal(size=(n, d))
        y = rng.permutation(n) % k
        def peak():
            return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        out = {}
        # Compile-time memory of the kernels a fit on few classes uses is no part of the many-class passes.
        SoftmaxRegression(solver="sgd", max_iter=1).partial_fit(X[:50], y[:50] % 3, classes=np.arange(3))
        before = peak()
        m = SoftmaxRegression(solver="sgd", max_iter=1).partial_fit(X, y, classes=np.arange(k))
        out["partial_fit"] = peak() - before
        SoftmaxRegression(solver="sgd", max_iter=1, random_state=0).fit(X, y)
        out["sgd"] = peak() - before
        m = SoftmaxRegression(solver="lbfgs", max_iter=2).fit(X, y)
        out["lbfgs"] = peak() - before
        pred = m.predict(X)
        labels, p = m.predict_topk(X, 3)
        out["predict"] = peak() - before
        out["same_top"] = bool(np.array_equal(pred, labels[:, 0]))
        out["small_agrees"] = bool(np.array_equal(m.predict(X[:40]), pred[:40]))
        out["sorted"] = bool(np.all(np.diff(p, axis=1) <= 0))
        try:
            m.predict_proba(X)
            out["proba_error"] = None
        except ValueError as e:
            out["proba_error"] = str(e)
        print(json.dumps(out))
        """
    )
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p])
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    res = json.loads(run.stdout.strip().splitlines()[-1])
    logits = 6000 * 6000 * 8
    coef = 6000 * 5 * 8
    assert res["same_top"] and res["small_agrees"] and res["sorted"]
    assert "allow_large=True" in res["proba_error"] and "predict_topk" in res["proba_error"]
    for step in ("partial_fit", "sgd", "lbfgs", "predict"):
        assert res[step] < 16 * coef + 64 * 2**20 < logits / 3, (step, res)


def test_many_classes_lbfgs_fit_matches_the_ordinary_passes_objective():
    """A fit over 1100 classes large enough to take the blocked passes reaches the objective that the
    ordinary passes compute for its coefficients, and that objective is below the start's."""
    from softmaxreg.loss import LinearSoftmaxLoss

    rng = np.random.default_rng(1)
    n, d, k = 31000, 2, 1100
    X = rng.normal(size=(n, d)).astype(np.float32)
    y = rng.integers(0, k, n)
    m = SoftmaxRegression(solver="lbfgs", max_iter=3, C=1.0).fit(X, y)
    loss = LinearSoftmaxLoss(X, y, n_classes=k, l2_reg_strength=1.0 / n, blocked=False)
    assert LinearSoftmaxLoss(X, y, n_classes=k).blocked
    w = loss.pack(m.coef_.astype(np.float64), m.intercept_.astype(np.float64))
    assert loss.loss(w) < loss.loss(np.zeros_like(w)) - 1e-3
    np.testing.assert_allclose(m.history_[-1], loss.loss(w), rtol=1e-6)
