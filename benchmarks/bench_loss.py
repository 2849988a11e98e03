"""Target 2: one loss-and-gradient pass of LinearSoftmaxLoss over Fashion-MNIST (float32).

Floor: one read of X (60000 x 784 float32, 188 MB) at the copy bandwidth of the
same run. Peers: the plain NumPy pass (a GEMM for the logits, the softmax, a
second GEMM that reads X again) and the same in PyTorch.
"""

from __future__ import annotations

import numpy as np

from ._common import copy_fn, fashion_mnist, interleaved_best


def numpy_pass(X, y, W, b):
    Z = X @ W.T + b
    Z -= Z.max(axis=1, keepdims=True)
    P = np.exp(Z)
    s = P.sum(axis=1, keepdims=True)
    loss = float(np.mean(np.log(s[:, 0]) - Z[np.arange(len(y)), y]))
    P /= s
    P[np.arange(len(y)), y] -= 1
    P /= len(y)
    return loss, P.T @ X, P.sum(axis=0)


def run(repeat=15):
    import torch

    from softmaxreg.loss import LinearSoftmaxLoss
    from softmaxreg._native import linear_softmax_pass

    X, y, _, _ = fashion_mnist(np.float32)
    n = X.shape[0]
    rng = np.random.default_rng(0)
    coef = rng.standard_normal((10, 784)) * 0.01
    b = np.zeros(10)
    sw = np.full(n, 1.0 / n)
    W32 = coef.astype(np.float32)
    b32 = b.astype(np.float32)
    loss = LinearSoftmaxLoss(X, y, n_classes=10, l2_reg_strength=1.0 / n)
    w = loss.pack(coef, b)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    Wt = torch.from_numpy(W32).requires_grad_(True)
    bt = torch.from_numpy(b32).requires_grad_(True)

    def torch_pass():
        Wt.grad = bt.grad = None
        torch.nn.functional.cross_entropy(Xt @ Wt.T + bt, yt).backward()

    fns = {
        "floor": copy_fn(X.nbytes),
        "fused": lambda: linear_softmax_pass(X, y, sw, coef, b, grad=True),
        "LinearSoftmaxLoss": lambda: loss.loss_gradient(w),
        "numpy": lambda: numpy_pass(X, y, W32, b32),
        "torch": torch_pass,
    }
    t = interleaved_best(fns, repeat)
    return [
        {
            "what": name,
            "ms": 1e3 * s,
            "over_floor": s / t["floor"],
            "over_fused": s / t["fused"],
        }
        for name, s in t.items()
    ]


def table(rows):
    out = ["| loss+gradient pass, Fashion-MNIST float32 | ms | / floor (one read of X) | / fused |", "|---|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {r['what']} | {r['ms']:.1f} | {r['over_floor']:.2f} | {r['over_fused']:.2f} |")
    return "\n".join(out)


if __name__ == "__main__":
    print(table(run()))
