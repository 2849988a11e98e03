"""``python -m benchmarks`` (``make bench``): every comparison of issue 5, one process each.

Each benchmark module's ``run()`` executes in a fresh interpreter (no state,
compiled code or allocator history shared between comparisons); its rows come
back as JSON, and the tables are printed and written to ``benchmarks/results.md``.

Options: ``--only functional,loss`` runs a subset; ``--timeout S`` bounds each
process (default 1800 s); ``--quick`` lowers the repeats.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (module, title, run() keyword arguments for --quick)
BENCHES = [
    ("bench_functional", "1. softmax family vs the memory floor and torch", {"repeat": 3}),
    ("bench_loss", "2. one loss+gradient pass of LinearSoftmaxLoss, Fashion-MNIST float32", {"repeat": 3}),
    ("bench_fit", "3. exact fit on Fashion-MNIST vs scikit-learn", {}),
    ("bench_sgd", "4. the notes' SGD recipe vs a PyTorch CPU loop", {"repeat": 1}),
    ("bench_predict", "5. predict_proba on 10^6 rows vs the memory floor", {"repeat": 3}),
    ("bench_nn", "nn: MLP training vs PyTorch (benchmarks/bench_nn.py)", {}),
    ("bench_skipgram", "skip-gram on the Lee corpus: exact full softmax vs gensim (benchmarks/bench_skipgram.py)",
     {"epochs": 1}),
    ("bench_vocab", "linear cross-entropy over a vocabulary: bounded memory vs PyTorch's naive pass and the GEMM rate "
     "(benchmarks/bench_vocab.py)", {"repeat": 1}),
    ("bench_dask", "Dask: 2-worker LocalCluster vs memory and Spark ML, out of core, dask-ml",
     {"size_gb": 0.5, "spark": False, "dask_ml": False}),
    ("bench_compile", "compilation: full compile, first fit and prediction, empty against warm cache", {}),
]

_CHILD = """
import json, sys
import benchmarks.{mod} as b
rows = b.run(**json.loads(sys.argv[1]))
print("@@ROWS@@" + json.dumps(rows, default=float))
print("@@TABLE@@" + json.dumps(b.table(rows) if hasattr(b, "table") else json.dumps(rows, indent=1, default=float)))
"""


def run_one(mod: str, kwargs: dict, timeout: float) -> tuple[str, list | None]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent), env.get("PYTHONPATH", "")])
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD.format(mod=mod), json.dumps(kwargs)],
            capture_output=True, text=True, timeout=timeout, env=env, cwd=HERE.parent,
        )
    except subprocess.TimeoutExpired:
        return f"(timed out after {timeout:.0f} s)", None
    table = rows = None
    for line in proc.stdout.splitlines():
        if line.startswith("@@ROWS@@"):
            rows = json.loads(line[8:])
        elif line.startswith("@@TABLE@@"):
            table = json.loads(line[9:])
    if table is None:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        return "(failed: " + " / ".join(tail) + ")", None
    return table, rows


def main(argv=None):
    from benchmarks._common import machine

    ap = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated names, e.g. functional,loss")
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(HERE / "results.md"))
    args = ap.parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    header = [
        "# softmaxreg benchmarks",
        "",
        f"Run {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on: {machine()}.",
        "Every ratio compares timings taken in the same process, interleaved, best of the repeats; each timed call",
        "follows an untimed call of the same candidate (the steady state of a loop).",
        "",
    ]
    sections = []
    for mod, title, quick in BENCHES:
        if only and mod.removeprefix("bench_") not in only:
            continue
        if not (HERE / f"{mod}.py").exists():
            continue
        print(f"## {title}", flush=True)
        table, _ = run_one(mod, quick if args.quick else {}, args.timeout)
        print(table + "\n", flush=True)
        sections += [f"## {title}", "", table, ""]
    Path(args.out).write_text("\n".join(header + sections))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
