"""MLPClassifier with its defaults (scikit-learn's) on Fashion-MNIST, against PyTorch (CPU).

Both sides train the *same* network in the same process: 784-100-10 ReLU
(``hidden_layer_sizes=(100,)``), the same initial weights (scikit-learn's
Glorot-uniform, zero biases, from ``numpy.random.default_rng(seed)`` as
MLPClassifier documents), the same per-epoch permutations of the rows,
float32, Adam at 0.001 with batch 200 and ``alpha=1e-4`` as an L2 term
scaled by the batch (``weight_decay = alpha / 200`` for PyTorch). Training
stops by scikit-learn's rule (the training loss has not improved by
``tol=1e-4`` for more than ``n_iter_no_change=10`` epochs) or at
``max_iter=200`` epochs; PyTorch runs the same number of epochs. What is timed
is the training loop only (per epoch: gather the batch, forward,
cross-entropy, backward, optimizer step); data loading is outside. Test
accuracy is reported for both.

Epochs alternate between the two (ours, then PyTorch's, then ours...), so that
both see the same state of a shared machine; the reported time is the median
epoch. Ours is trained one ``partial_fit`` epoch at a time (the same steps as
``fit``), and the stopping rule is applied to its ``loss_curve_`` here.
Run it with ``python -m benchmarks.bench_nn`` (``--epochs N`` caps the
epochs, ``--rows N`` for a quick look on part of the data); ``make bench``
imports :func:`run`.
"""

import argparse
import os
import time

import numpy as np

PIXELS = 28 * 28


def load_fashion_mnist(max_rows=None):
    """Train and test arrays, pixels scaled to [0, 1] in float32."""
    from softmaxreg.io import load_builtin

    train = load_builtin("fashion-mnist:train", max_rows=max_rows)
    test = load_builtin("fashion-mnist:test")
    return (np.ascontiguousarray(train.X, dtype=np.float32), np.asarray(train.y, dtype=np.int64),
            np.ascontiguousarray(test.X, dtype=np.float32), np.asarray(test.y, dtype=np.int64))


HIDDEN, BATCH, ALPHA, LR, TOL, PATIENCE = 100, 200, 1e-4, 1e-3, 1e-4, 10  # MLPClassifier's defaults


class Ours:
    """MLPClassifier with its defaults, one epoch per ``partial_fit`` call: the same steps as ``fit``."""

    def __init__(self, X, y, seed):
        from softmaxreg.models import MLPClassifier

        self.X, self.y, self.classes = X, y, np.unique(y)
        self.marks = []
        # the callback's "elapsed" times the training loop of the call alone (not the
        # input validation that every partial_fit call repeats)
        self.clf = MLPClassifier(random_state=seed,
                                 callback=lambda info: self.marks.append(info["elapsed"]) and False)
        assert (self.clf.hidden_layer_sizes, self.clf.alpha, self.clf.learning_rate_init,
                self.clf.tol, self.clf.n_iter_no_change) == ((HIDDEN,), ALPHA, LR, TOL, PATIENCE)

    def epoch(self):
        self.clf.partial_fit(self.X, self.y, classes=self.classes)
        return self.marks[-1], self.clf.loss_curve_[-1]

    def accuracy(self, X, y):
        return float(self.clf.score(X, y))


def stops(losses, tol=TOL, patience=PATIENCE):
    """scikit-learn's rule on a loss curve: more than ``patience`` epochs without a gain of ``tol``."""
    best, count = np.inf, 0
    for loss in losses:
        count = count + 1 if loss > best - tol else 0
        best = min(best, loss)
    return count > patience


class Torch:
    """The same network, initial weights, permutations, optimizer and L2 term in PyTorch."""

    def __init__(self, X, y, seed):
        import torch

        from softmaxreg.nn import init

        self.rng = np.random.default_rng(seed)  # MLPClassifier's stream: weights, permutations
        w1 = init.glorot_uniform(self.rng, (HIDDEN, PIXELS), np.float32)
        w2 = init.glorot_uniform(self.rng, (10, HIDDEN), np.float32)
        self.net = torch.nn.Sequential(torch.nn.Linear(PIXELS, HIDDEN), torch.nn.ReLU(),
                                       torch.nn.Linear(HIDDEN, 10))
        with torch.no_grad():
            self.net[0].weight.copy_(torch.from_numpy(w1))
            self.net[2].weight.copy_(torch.from_numpy(w2))
            self.net[0].bias.zero_()
            self.net[2].bias.zero_()
        weights = [self.net[0].weight, self.net[2].weight]
        biases = [self.net[0].bias, self.net[2].bias]
        self.opt = torch.optim.Adam([{"params": weights}, {"params": biases}], lr=LR)
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(y)

    def epoch(self):
        import torch

        t0 = time.perf_counter()
        n = self.X.shape[0]
        perm = torch.from_numpy(self.rng.permutation(n))
        total = 0.0
        for lo in range(0, n, BATCH):
            idx = perm[lo:lo + BATCH]
            self.opt.param_groups[0]["weight_decay"] = ALPHA / idx.numel()
            loss = torch.nn.functional.cross_entropy(self.net(self.X[idx]), self.y[idx])
            self.opt.zero_grad(set_to_none=False)
            loss.backward()
            self.opt.step()
            total += loss.item() * idx.numel()
        return time.perf_counter() - t0, total / n

    def accuracy(self, X, y):
        import torch

        with torch.no_grad():
            return float((self.net(torch.from_numpy(X)).argmax(1).numpy() == y).mean())


def run(epochs=200, max_rows=None, seed=0, threads=None, verbose=True):
    """Train both, epochs interleaved, until the stopping rule or ``epochs``; return a dict.

    Epoch ``e`` of ours runs right before epoch ``e`` of PyTorch, so both see the
    same machine state (on a shared machine that matters more than anything).
    Seconds per epoch are medians over the epochs. ``threads`` caps the BLAS
    threads of both sides (OpenBLAS through threadpoolctl,
    ``torch.set_num_threads``); None leaves each library's default.
    """
    import torch
    from threadpoolctl import threadpool_limits

    X, y, Xte, yte = load_fashion_mnist(max_rows)
    if threads is not None:
        torch.set_num_threads(threads)
        # Numba's worker threads, idle or not, starve PyTorch's on a small machine otherwise
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    threads = torch.get_num_threads()
    with threadpool_limits(limits=threads, user_api="blas"):
        # untimed warm-up of both: one-off costs (Numba loading its cached kernels,
        # PyTorch's first dispatches) are not per-epoch costs
        for side in (Ours, Torch):
            side(X[:1024], y[:1024], seed).epoch()
        ours, theirs = Ours(X, y, seed), Torch(X, y, seed)
        t_ours, t_torch, l_ours, l_torch = [], [], [], []
        while len(t_ours) < epochs and not stops(l_ours):
            t, loss = ours.epoch()
            t_ours.append(t)
            l_ours.append(loss)
            t, loss = theirs.epoch()
            t_torch.append(t)
            l_torch.append(loss)
        acc_ours, acc_torch = ours.accuracy(Xte, yte), theirs.accuracy(Xte, yte)
    s_ours, s_torch = float(np.median(t_ours)), float(np.median(t_torch))
    result = {
        "benchmark": "nn: MLPClassifier defaults (784-100-10 ReLU, Adam 0.001, batch 200, alpha 1e-4), "
                     "Fashion-MNIST, float32",
        "n_train": int(X.shape[0]),
        "epochs": len(t_ours),
        "stopped_by_rule": stops(l_ours),
        "accuracy_ours": acc_ours,
        "accuracy_torch": acc_torch,
        "s_per_epoch_ours": s_ours,
        "s_per_epoch_torch": s_torch,
        "ratio_torch_over_ours": s_torch / s_ours,
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "epoch_s_ours": t_ours,
        "epoch_s_torch": t_torch,
        "loss_ours": l_ours,
        "loss_torch": l_torch,
    }
    if verbose:
        print(f"{'':>10} {'accuracy':>9} {'s/epoch':>9}")
        print(f"{'softmaxreg':>10} {acc_ours:9.4f} {s_ours:9.3f}")
        print(f"{'torch':>10} {acc_torch:9.4f} {s_torch:9.3f}")
        print(f"torch / ours = {s_torch / s_ours:.2f} (> 1: ours is faster; median of {len(t_ours)} "
              f"interleaved epochs, {X.shape[0]} rows, {threads} BLAS threads each)")
        print(f"{len(t_ours)} epochs ({'stopped by tol' if stops(l_ours) else 'epoch cap'})")
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=200, help="cap on the epochs (max_iter)")
    parser.add_argument("--rows", type=int, default=None, help="use only the first N training rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads for both sides")
    args = parser.parse_args(argv)
    run(epochs=args.epochs, max_rows=args.rows, seed=args.seed, threads=args.threads)


if __name__ == "__main__":
    main()


def table(r):
    """The Markdown table ``python -m benchmarks`` prints and writes for this comparison."""
    return "\n".join(
        [
            f"{r['benchmark']}, {r['n_train']:,} training rows, {r['epochs']} epochs "
            f"({'stopped by tol' if r.get('stopped_by_rule') else 'epoch cap'}), {r['threads']} threads",
            "",
            "| | test accuracy | s / epoch (median) |",
            "|---|---:|---:|",
            f"| softmaxreg MLPClassifier | {r['accuracy_ours']:.4f} | {r['s_per_epoch_ours']:.3f} |",
            f"| PyTorch, same network, init and batches | {r['accuracy_torch']:.4f} | {r['s_per_epoch_torch']:.3f} |",
            f"| **PyTorch / softmaxreg per epoch** | | **{r['ratio_torch_over_ours']:.2f}x** |",
        ]
    )
