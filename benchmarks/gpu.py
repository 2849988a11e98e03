"""Issue 26 on a GPU: SoftmaxRegression under array_api_dispatch against scikit-learn and PyTorch, on one device.

Fit: Fashion-MNIST (pixels / 255, C = 1) to within 1e-6 of the optimum
0.34989281 per sample, our ``SoftmaxRegression()`` (trust-region Newton-CG,
every vector on the device) against scikit-learn's
``LogisticRegression(solver="lbfgs")`` with dispatch on (SciPy's L-BFGS-B on
the host, the passes on the device), in float32 and float64.  Each fit's
objective is evaluated afterwards by the same float64 host code.  Prediction:
one ``predict_proba`` of ``predict_rows`` rows against
``torch.softmax(X @ W.T + b, dim=1)``.

Needs torch with CUDA for its real sizes, so it is not in ``make bench``'s
list; ``python -m benchmarks.gpu --device cpu --rows 2000 --predict-rows 10000``
runs it end to end on a CPU at a toy size (synthetic data when Fashion-MNIST is
not on disk), which is what the test suite's machines can check.
"""

from __future__ import annotations

import os

os.environ.setdefault("SCIPY_ARRAY_API", "1")  # scikit-learn's dispatch needs it before SciPy loads

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

F_STAR = 0.34989281


def _data(rows):
    """Fashion-MNIST (the first ``rows`` rows when given), or a synthetic 10-class set without it."""
    try:
        from ._common import fashion_mnist

        X, y, _, _ = fashion_mnist(np.float64)
        synthetic = False
    except (OSError, FileNotFoundError):
        rng = np.random.default_rng(0)
        n = rows or 60000
        centers = rng.normal(size=(10, 784))
        y = rng.integers(0, 10, n)
        X = np.clip(0.5 + 0.15 * (centers[y] + rng.normal(size=(n, 784))), 0.0, 1.0)
        synthetic = True
    if rows:
        X, y = X[:rows], y[:rows]
    return np.ascontiguousarray(X), y, synthetic


def _objective(X, y, coef, intercept):
    from softmaxreg.loss import LinearSoftmaxLoss

    loss = LinearSoftmaxLoss(X, y, n_classes=10, l2_reg_strength=1.0 / X.shape[0])
    return float(loss.loss(loss.pack(np.asarray(coef, dtype=np.float64), np.asarray(intercept, dtype=np.float64))))


def _timed(torch, device, fn):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t = time.perf_counter()
    out = fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - t, out


def run(device="cuda", rows=None, predict_rows=10**7, dtypes=("float32", "float64"), tol=1e-7):
    """Rows ``{task, dtype, candidate, seconds, objective, gap}`` for the fits and the prediction."""
    import sklearn
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.utils._array_api import move_to

    from softmaxreg import SoftmaxRegression

    device = torch.device(device)
    X, y, synthetic = _data(rows)
    f_star = None if synthetic or rows else F_STAR
    out = []
    for name in dtypes:
        dtype = getattr(torch, name)
        Xd = torch.asarray(X, dtype=dtype, device=device)
        yd = torch.asarray(y, device=device)
        candidates = {
            "softmaxreg SoftmaxRegression (newton-cg)": lambda: SoftmaxRegression(C=1.0, tol=tol, max_iter=300),
            "scikit-learn LogisticRegression (lbfgs)": lambda: LogisticRegression(C=1.0, tol=1e-8, max_iter=5000),
        }
        for label, make in candidates.items():
            with sklearn.config_context(array_api_dispatch=True), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                make().fit(Xd[:256], yd[:256])  # warm-up: kernels, allocator
                seconds, model = _timed(torch, device, lambda: make().fit(Xd, yd))
            coef = move_to(model.coef_, xp=np, device="cpu")
            intercept = move_to(model.intercept_, xp=np, device="cpu")
            f = _objective(X, y, coef, intercept)
            out.append({"task": "fit", "dtype": name, "candidate": label, "seconds": seconds, "objective": f,
                        "gap": (f - f_star) / f_star if f_star else float("nan")})
    # Prediction: the same fitted model on predict_rows rows (the training rows tiled).
    dtype = torch.float32
    reps = -(-predict_rows // X.shape[0])
    Xp = torch.asarray(X, dtype=dtype, device=device).repeat(reps, 1)[:predict_rows]
    with sklearn.config_context(array_api_dispatch=True):
        model = SoftmaxRegression(C=1.0, tol=1e-4).fit(torch.asarray(X[:5000], dtype=dtype, device=device),
                                                        torch.asarray(y[:5000], device=device))
        W, b = model.coef_, model.intercept_
        ours = lambda: model.predict_proba(Xp)  # noqa: E731
        theirs = lambda: torch.softmax(Xp @ W.T + b, dim=1)  # noqa: E731
        for label, fn in (("softmaxreg predict_proba", ours), ("torch.softmax(X @ W.T + b)", theirs)):
            fn()
            seconds = min(_timed(torch, device, fn)[0] for _ in range(3))
            out.append({"task": f"predict_proba {predict_rows} rows", "dtype": "float32", "candidate": label,
                        "seconds": seconds, "objective": float("nan"), "gap": float("nan")})
    for row in out:
        row["device"] = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        row["data"] = "synthetic" if synthetic else f"Fashion-MNIST{'' if not rows else f' (first {rows} rows)'}"
    return out


def table(rows):
    lines = [
        f"device: {rows[0]['device']}; data: {rows[0]['data']}",
        "",
        "| task | dtype | candidate | seconds | objective | gap to 0.34989281 |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    for r in rows:
        lines.append(f"| {r['task']} | {r['dtype']} | {r['candidate']} | {r['seconds']:.3f} | "
                     f"{r['objective']:.8f} | {r['gap']:.1e} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--rows", type=int, default=None, help="first rows only (a toy run)")
    ap.add_argument("--predict-rows", type=int, default=10**7)
    args = ap.parse_args(argv)
    print(table(run(device=args.device, rows=args.rows, predict_rows=args.predict_rows)))


if __name__ == "__main__":
    main()
