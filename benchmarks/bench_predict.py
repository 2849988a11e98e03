"""Target 5: predict_proba on 10^6 rows against one read of X plus one write of the output.

X is 10^6 x 256 float32 (1 GB; Fashion-MNIST's 784 columns would need 3 GB on
a machine shared by several jobs), 10 classes, float64 probabilities out.
"""

from __future__ import annotations

import warnings

import numpy as np

from ._common import copy_fn, interleaved_best

N, P, K = 1_000_000, 256, 10


def run(repeat=9):
    import torch
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    import softmaxreg.functional as F
    from softmaxreg._native.linear import predict_proba
    from softmaxreg.models import SoftmaxRegression

    rng = np.random.default_rng(0)
    X = rng.random((N, P), dtype=np.float32)
    coef = rng.standard_normal((K, P)) * 0.1
    b = rng.standard_normal(K)
    W32 = coef.astype(np.float32)
    sk = LogisticRegression()
    sk.classes_, sk.coef_, sk.intercept_ = np.arange(K), W32, b.astype(np.float32)
    Xt, Wt, bt = torch.from_numpy(X), torch.from_numpy(W32), torch.from_numpy(b.astype(np.float32))
    # The estimator users call (validation, then the fused pass), with the same coefficients.
    with warnings.catch_warnings():  # one iteration: only the fitted attributes are wanted
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = SoftmaxRegression(max_iter=1).fit(X[: 20 * K], np.arange(20 * K) % K)
    model.coef_, model.intercept_ = coef, b
    out_bytes = N * K * 8
    fns = {
        "floor": copy_fn(X.nbytes + out_bytes),
        "fused": lambda: predict_proba(X, coef, b),
        "SoftmaxRegression.predict_proba": lambda: model.predict_proba(X),
        "numpy + softmaxreg.softmax": lambda: F.softmax(X @ W32.T + b, axis=1),
        "sklearn predict_proba": lambda: sk.predict_proba(X),
        "torch": lambda: torch.softmax(Xt @ Wt.T + bt, -1),
    }
    t = interleaved_best(fns, repeat)
    return [{"what": k, "ms": 1e3 * s, "over_floor": s / t["floor"], "over_fused": s / t["fused"]} for k, s in t.items()]


def table(rows):
    out = [f"| predict_proba, {N} x {P} float32, {K} classes | ms | / floor (read X + write P) | / fused |", "|---|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['what']} | {r['ms']:.1f} | {r['over_floor']:.2f} | {r['over_fused']:.2f} |")
    return "\n".join(out)


if __name__ == "__main__":
    print(table(run()))
