"""Target 3: exact L2 fit on Fashion-MNIST (pixels / 255, C = 1) against scikit-learn's fastest solver.

Objective per sample: mean cross-entropy + 0.5 / (C n) ||W||^2; its optimum is
0.34989280 (test accuracy 0.8442). scikit-learn: LogisticRegression(newton-cg)
on float64, at tol=1e-8 (the issue's reference run) and at the loosest tol that
still lands within 1e-6 of the optimum. softmaxreg: SoftmaxRegression() with the
default solver="auto" (trust-region Newton-CG, CG preconditioned by the
inverse class blocks of the Hessian) on float32 X, whose passes run in the fused
kernel with float64 accumulation; and, for the record, the same solver without
the preconditioner. Each side's objective is evaluated afterwards by the same
float64 code.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from ._common import fashion_mnist

F_STAR = 0.34989280
# The loosest scikit-learn tol (by decades) whose fit lands within 1e-6 of F_STAR: tol=1e-5 stops at
# a relative gap of 1.9e-5, tol=1e-6 at 8.4e-8 (docs/performance.md).
SKLEARN_LOOSE_TOL = 1e-6


def objective(X, y, coef, intercept):
    """Per-sample objective in float64 (reference LinearSoftmaxLoss path)."""
    from softmaxreg.loss import LinearSoftmaxLoss

    n = X.shape[0]
    loss = LinearSoftmaxLoss(X.astype(np.float64), y, n_classes=10, l2_reg_strength=1.0 / n)
    loss_np = loss.loss(loss.pack(coef, intercept))
    return float(loss_np)


def model_fit(X, y, tol=1e-7, precondition=True):
    """SoftmaxRegression() (solver="auto": newton-cg), with or without the CG preconditioner."""
    from softmaxreg.models import SoftmaxRegression
    from softmaxreg.solvers import _newton_cg

    saved = _newton_cg._PRECONDITION_AFTER
    if not precondition:
        _newton_cg._PRECONDITION_AFTER = 1 << 30
    try:
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = SoftmaxRegression(C=1.0, tol=tol, max_iter=300).fit(X, y)
        seconds = time.perf_counter() - t
    finally:
        _newton_cg._PRECONDITION_AFTER = saved
    return seconds, m.coef_.astype(np.float64), m.intercept_.astype(np.float64), str(m.n_iter_)


def sklearn_newton_cg(X, y, tol=1e-8):
    from sklearn.linear_model import LogisticRegression

    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = LogisticRegression(C=1.0, solver="newton-cg", tol=tol, max_iter=1000).fit(X.astype(np.float64), y)
    return time.perf_counter() - t, m.coef_, m.intercept_, str(int(np.max(m.n_iter_)))


def run(sklearn=True, plain=True, sklearn_loose_tol=SKLEARN_LOOSE_TOL):
    X, y, Xt, yt = fashion_mnist(np.float32)
    rows = []
    cands = [("SoftmaxRegression() (auto = preconditioned newton-cg, tol=1e-7), float32 X", lambda: model_fit(X, y))]
    if plain:
        cands.append(("same, CG without the preconditioner", lambda: model_fit(X, y, precondition=False)))
    if sklearn:
        cands.append(("scikit-learn newton-cg tol=1e-8", lambda: sklearn_newton_cg(X, y)))
        if sklearn_loose_tol:
            cands.append((f"scikit-learn newton-cg tol={sklearn_loose_tol:g}",
                          lambda: sklearn_newton_cg(X, y, tol=sklearn_loose_tol)))
    for name, fn in cands:
        s, coef, b, it = fn()
        f = objective(X, y, coef, b)
        acc = float(np.mean(np.argmax(Xt @ coef.T.astype(np.float32) + b, axis=1) == yt))
        rows.append({"what": name, "s": s, "iters": it, "objective": f, "rel_gap": (f - F_STAR) / F_STAR, "accuracy": acc})
    for r in rows[1:]:
        r["over_ours"] = r["s"] / rows[0]["s"]
    return rows


def table(rows):
    out = ["| exact fit, Fashion-MNIST, C=1 | seconds | / ours | iterations | objective | (f - f*)/f* | test accuracy |",
           "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        ratio = f"{r['over_ours']:.1f}x" if "over_ours" in r else "1.0x"
        out.append(f"| {r['what']} | {r['s']:.1f} | {ratio} | {r['iters']} | {r['objective']:.8f} | "
                   f"{r['rel_gap']:.1e} | {r['accuracy']:.4f} |")
    return "\n".join(out)


if __name__ == "__main__":
    print(table(run()))
