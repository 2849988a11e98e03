"""Compilation: the full ahead-of-use compile, and the first fit and prediction in a fresh process.

Each measurement runs in a new interpreter. "cold" points Numba's cache
(``NUMBA_CACHE_DIR``) at an empty directory, so every kernel the call needs
is compiled; "warm" runs the same call in another new process on the cache
the cold one filled, so it only loads machine code. The fit is
``SoftmaxRegression().fit`` on Fashion-MNIST (float32, the default solver),
the prediction ``predict_proba`` on its test set. The full compile is
``softmaxreg compile`` on an empty cache, in one process per core (its
default) and in one process (``--jobs 1``: the compilation's own cost).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_FIT = """
import json, sys, time, warnings
import numpy as np
from benchmarks._common import fashion_mnist
X, y, Xt, yt = fashion_mnist(np.float32)
from softmaxreg import SoftmaxRegression
t0 = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    model = SoftmaxRegression(max_iter=int(sys.argv[1])).fit(X, y)
t1 = time.perf_counter()
model.predict_proba(Xt)
t2 = time.perf_counter()
print("@@" + json.dumps({"fit": t1 - t0, "predict": t2 - t1}))
"""


def _child(code, args, cache_dir, timeout):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir))
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "src"), env.get("PYTHONPATH", "")])
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, *code, *args], capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=timeout)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else "child failed")
    for line in proc.stdout.splitlines():
        if line.startswith("@@"):
            return json.loads(line[2:]), wall
    return {}, wall


def run(max_iter=100, timeout=1800, compile_all=True):
    rows = []
    with tempfile.TemporaryDirectory() as cold_fit:
        if compile_all:
            for jobs, what in ((None, f"softmaxreg compile ({os.cpu_count()} cores)"),
                               (1, "softmaxreg compile --jobs 1")):
                with tempfile.TemporaryDirectory() as cache:
                    args = [] if jobs is None else ["--jobs", str(jobs)]
                    _, cold = _child(["-m", "softmaxreg", "compile", "--quiet", *args], [], cache, timeout)
                    _, warm = _child(["-m", "softmaxreg", "compile", "--quiet", *args], [], cache, timeout)
                rows.append({"what": what, "cold_s": cold, "warm_s": warm})
        cold, _ = _child(["-c", _FIT], [str(max_iter)], cold_fit, timeout)
        warm, _ = _child(["-c", _FIT], [str(max_iter)], cold_fit, timeout)
        for what in ("fit", "predict"):
            rows.append({"what": f"first {what} in a fresh process, Fashion-MNIST float32",
                         "cold_s": cold[what], "warm_s": warm[what]})
    return rows


def table(rows):
    out = ["| what | empty cache s | warm cache s | difference s |", "|---|---:|---:|---:|"]
    for r in rows:
        warm = r["warm_s"]
        diff = "-" if warm is None else f"{r['cold_s'] - warm:.1f}"
        out.append(f"| {r['what']} | {r['cold_s']:.1f} | {'-' if warm is None else f'{warm:.1f}'} | {diff} |")
    return "\n".join(out)


if __name__ == "__main__":
    print(table(run()))
