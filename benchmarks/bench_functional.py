"""Softmax, log_softmax, cross_entropy and its gradient against the memory floor and torch.

Floor: one read of the input plus one write of the output at the copy
bandwidth (``np.copyto`` between two reused buffers) measured in the same run.
The cross-entropy's input is the logits and the labels (int64, as the peers
take them), its output a scalar: its floor is one read of both. Its
gradient's floor adds one write of the logits' size.

The ops with an output of the input's size are timed twice: returning a fresh
array (what the peers do) and writing into a reused ``out=``, as the floor's
copy does. A fresh array costs its pages' first touch (the operating system
zeroes each page before the kernel writes it), so a fresh result's floor is
``x.copy()``, timed in the same rounds: "ours / fresh copy" is the gap of a
fresh result to that floor, "out= / floor" the gap with a reused buffer. The
run also times the same copy written by both cores into a new array (a Numba
``prange`` copy): the fastest fresh result any kernel could return here.
"""

from __future__ import annotations

import numpy as np

from ._common import copy_fn, fresh_parallel_copy_fn, interleaved_best

SHAPES = [(1 << 20, 10), (65536, 1000), (2048, 32768)]


def run(dtypes=("float32", "float64"), shapes=SHAPES, repeat=7):
    import scipy.special as sps
    import torch
    import torch.nn.functional as tF

    import softmaxreg.functional as F

    rows = []
    for dt in dtypes:
        for n, k in shapes:
            rng = np.random.default_rng(0)
            x = (rng.standard_normal((n, k)) * 3).astype(dt)
            y = rng.integers(0, k, n)
            xt, yt = torch.from_numpy(x), torch.from_numpy(y)
            nb = x.nbytes
            o = np.empty_like(x)
            into = {
                "softmax": lambda: F.softmax(x, out=o),
                "log_softmax": lambda: F.log_softmax(x, out=o),
                "cross_entropy_grad": lambda: F.cross_entropy_grad(x, y, out=o),
            }
            cases = {
                "softmax": (lambda: F.softmax(x), lambda: torch.softmax(xt, -1), lambda: sps.softmax(x, axis=-1), 2 * nb),
                "log_softmax": (lambda: F.log_softmax(x), lambda: torch.log_softmax(xt, -1), lambda: sps.log_softmax(x, axis=-1), 2 * nb),
                "cross_entropy": (lambda: F.cross_entropy(x, y), lambda: tF.cross_entropy(xt, yt), None, nb + y.nbytes),
                "cross_entropy_grad": (lambda: F.cross_entropy_grad(x, y), None, None, 2 * nb + y.nbytes),
            }
            for name, (ours, theirs, sp, traffic) in cases.items():
                fns = {"floor": copy_fn(traffic), "ours": ours, "torch.softmax": lambda: torch.softmax(xt, -1)}
                if name in into:
                    fns["ours out="] = into[name]
                    fns["fresh copy"] = x.copy
                    fns["fresh 2-thread copy"] = fresh_parallel_copy_fn(x)
                if theirs is not None:
                    fns["torch"] = theirs
                if sp is not None and n * k <= (1 << 24):
                    fns["scipy"] = sp
                # The short-row shape is 6x smaller than the others: as many more repeats, so that
                # every shape's best-of spans about as long a stretch of the (noisy) machine.
                t = interleaved_best(fns, repeat * max(1, (1 << 26) // (n * k)))
                rows.append(
                    {
                        "op": name,
                        "dtype": dt,
                        "shape": f"{n}x{k}",
                        "floor_ms": 1e3 * t["floor"],
                        "ours_ms": 1e3 * t["ours"],
                        "ours_over_floor": t["ours"] / t["floor"],
                        "out_ms": 1e3 * t["ours out="] if "ours out=" in t else None,
                        "out_over_floor": t["ours out="] / t["floor"] if "ours out=" in t else None,
                        "fresh_copy_over_floor": t["fresh copy"] / t["floor"] if "fresh copy" in t else None,
                        "fresh_parallel_copy_over_floor": (t["fresh 2-thread copy"] / t["floor"]
                                                           if "fresh 2-thread copy" in t else None),
                        "ours_over_fresh_copy": t["ours"] / t["fresh copy"] if "fresh copy" in t else None,
                        "torch_over_ours": t["torch"] / t["ours"] if "torch" in t else None,
                        "torch_softmax_over_ours": t["torch.softmax"] / t["ours"],
                        "scipy_over_ours": t["scipy"] / t["ours"] if "scipy" in t else None,
                    }
                )
            del x, xt, o
    return rows


def table(rows):
    out = ["| op | dtype | shape | floor ms | ours ms | ours / floor | out= ms | out= / floor "
           "| fresh copy / floor | fresh 2-thread copy / floor | ours / fresh copy "
           "| torch same op / ours | torch.softmax / ours | scipy / ours |",
           "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    f = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    for r in rows:
        out.append(
            f"| {r['op']} | {r['dtype']} | {r['shape']} | {r['floor_ms']:.2f} | {r['ours_ms']:.2f} | "
            f"{r['ours_over_floor']:.2f} | {f(r['out_ms'])} | {f(r['out_over_floor'])} | "
            f"{f(r['fresh_copy_over_floor'])} | {f(r.get('fresh_parallel_copy_over_floor'))} | {f(r['ours_over_fresh_copy'])} | {f(r['torch_over_ours'])} | {f(r['torch_softmax_over_ours'])} | {f(r['scipy_over_ours'])} |"
        )
    return "\n".join(out)


if __name__ == "__main__":
    print(table(run()))
