"""Softmax over a vocabulary: linear cross-entropy (loss and all gradients) without the n x K logits.

Bar 1: n = 8192, d = 256, K = 32768, float32. Ours (``linear_cross_entropy_grad``)
against PyTorch's naive ``cross_entropy(x @ W.T + b, y)`` with ``backward()``
(target: at most 0.6x its time) and against NumPy's float32 GEMM rate (the
three products, 6 n d K flops, at no less than 70% of one ``np.matmul`` of the
logits' shape). Memory: the peak RSS of a fresh process against its resident size
just before the call, less the gradients the call returns (target: at most 64 MB).

Bar 2: K = 10^6, d = 128, n = 4096, float32 (naive logits: 16 GB): ours in
bounded memory, its time against the GEMM floor (8 n d K flops: the blocked
pass computes the logits twice).

Every candidate runs in its own fresh interpreter (the peak RSS is a process's
high-water mark); the GEMM rate is measured in the same run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

_CHILD = r"""
import json, resource, sys, time
import numpy as np
mode, n, d, k, repeat = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
rng = np.random.default_rng(0)
x = rng.standard_normal((n, d), dtype=np.float32)
w = rng.standard_normal((k, d), dtype=np.float32)
w *= 0.05  # in place: no temporary to raise the high-water mark before the call
b = np.zeros(k, np.float32)
y = rng.integers(0, k, n)
def rss():
    # the peak resident size so far
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
def current():
    # the resident size now: the peak's baseline (set-up temporaries freed before the call do not count)
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()
if mode == "ours":
    from softmaxreg.functional import linear_cross_entropy_grad
    # imports and first-call set-up, the native kernels' included (a block of 512 x 512 logits takes them)
    linear_cross_entropy_grad(x[:512], w[:512], y[:512] % 512, b[:512])
    before = current()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        loss, gx, gw, gb = linear_cross_entropy_grad(x, w, y, b)
        times.append(time.perf_counter() - t)
        out_bytes = gx.nbytes + gw.nbytes + gb.nbytes
        del gx, gw, gb
    print(json.dumps({"seconds": min(times), "growth": rss() - before, "out_bytes": out_bytes, "loss": float(loss)}))
elif mode == "torch":
    import torch
    import torch.nn.functional as F
    tx, tw, tb, ty = (torch.from_numpy(a) for a in (x, w, b, y))
    def once():
        xx, ww, bb = (t.clone().requires_grad_(True) for t in (tx, tw, tb))
        loss = F.cross_entropy(xx @ ww.T + bb, ty)
        loss.backward()
        return loss, xx.grad, ww.grad, bb.grad
    xx = tx[:64].clone().requires_grad_(True)
    F.cross_entropy(xx @ tw[:256].T, ty[:64] % 256).backward()
    before = current()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        loss, gx, gw, gb = once()
        times.append(time.perf_counter() - t)
        out_bytes = (gx.numel() + gw.numel() + gb.numel()) * 4
        del gx, gw, gb
    print(json.dumps({"seconds": min(times), "growth": rss() - before, "out_bytes": out_bytes, "loss": float(loss),
                      "threads": torch.get_num_threads()}))
elif mode == "gemm":
    # NumPy's float32 GEMM rate on blocks of the logits' shape (a few hundred rows by all of K, or by 8192 classes).
    rows = max(1, min(n, (16 * 2**20) // (4 * min(k, 8192))))
    kc = min(k, 8192)
    out = np.empty((rows, kc), np.float32)
    np.matmul(x[:rows], w[:kc].T, out=out)
    best = float("inf")
    for _ in range(max(3, repeat)):
        t = time.perf_counter()
        for r0 in range(0, min(n, 8 * rows), rows):
            np.matmul(x[r0 : r0 + rows], w[:kc].T, out=out)
        best = min(best, time.perf_counter() - t)
    flops = 2.0 * min(n, 8 * rows) * d * kc
    print(json.dumps({"gflops": flops / best / 1e9}))
"""


def _child(mode, n, d, k, repeat, timeout=1800):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent / "src"), str(HERE.parent), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-c", _CHILD, mode, str(n), str(d), str(k), str(repeat)],
                          capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{mode} failed: {proc.stderr.strip().splitlines()[-3:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(repeat: int = 2, bar1=(8192, 256, 32768), bar2=(4096, 128, 10**6), torch_reference: bool = True):
    """Rows of bar 1 and bar 2 (sizes ``(n, d, K)``; pass ``bar2=None`` to skip it)."""
    rows = []
    for name, size, with_torch, products in (("bar 1", bar1, torch_reference, 6), ("bar 2", bar2, False, 8)):
        if size is None:
            continue
        n, d, k = size
        gemm = _child("gemm", n, d, k, repeat)["gflops"]
        ours = _child("ours", n, d, k, repeat)
        ref = _child("torch", n, d, k, repeat) if with_torch else None
        rows.append({
            "bar": name, "n": n, "d": d, "K": k,
            "ours_s": ours["seconds"],
            "ours_extra_mb": (ours["growth"] - ours["out_bytes"]) / 2**20,
            "logits_mb": n * k * 4 / 2**20,
            "torch_s": None if ref is None else ref["seconds"],
            "torch_extra_mb": None if ref is None else (ref["growth"] - ref["out_bytes"]) / 2**20,
            "ours_over_torch": None if ref is None else ours["seconds"] / ref["seconds"],
            "numpy_gemm_gflops": gemm,
            "ours_gflops": products * n * d * k / ours["seconds"] / 1e9,
            "gemm_floor_s": products * n * d * k / (gemm * 1e9),
            "loss_ours": ours["loss"], "loss_torch": None if ref is None else ref["loss"],
        })
    return rows


def table(rows):
    def f(v, fmt):
        return "-" if v is None else format(v, fmt)

    lines = [
        "| bar | n x d x K | ours s | torch naive s | ours / torch | ours MB above inputs+grads | torch MB above | "
        "logits MB | NumPy GEMM GFLOP/s | ours GFLOP/s (products) | ours / GEMM rate | GEMM floor s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['bar']} | {r['n']}x{r['d']}x{r['K']} | {r['ours_s']:.2f} | {f(r['torch_s'], '.2f')} | "
            f"{f(r['ours_over_torch'], '.2f')} | {r['ours_extra_mb']:.1f} | {f(r['torch_extra_mb'], '.0f')} | "
            f"{r['logits_mb']:.0f} | {r['numpy_gemm_gflops']:.1f} | {r['ours_gflops']:.1f} | "
            f"{r['ours_gflops'] / r['numpy_gemm_gflops']:.2f} | {r['gemm_floor_s']:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--no-bar2", action="store_true")
    ap.add_argument("--no-torch", action="store_true")
    a = ap.parse_args()
    print(table(run(repeat=a.repeat, bar2=None if a.no_bar2 else (4096, 128, 10**6), torch_reference=not a.no_torch)))
