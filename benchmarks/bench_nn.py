"""A 784-256-10 ReLU network on Fashion-MNIST: softmaxreg's MLPClassifier against PyTorch (CPU).

Both sides train the *same* network in the same process: the same initial
weights (He normal hidden layer, N(0, 0.01^2) output layer, zero biases, from
``numpy.random.default_rng(seed)`` as MLPClassifier documents), the same
per-epoch permutations of the rows, float32, SGD with momentum 0.9, batch 256,
a cosine learning-rate schedule from 0.1, and the same number of epochs. What is timed is
the training loop only (per epoch: gather the batch, forward, cross-entropy,
backward, optimizer step); data loading is outside. Test accuracy is reported
for both.

Epochs alternate between the two (ours, then PyTorch's, then ours...), so that
both see the same state of a shared machine; the reported time is the median
epoch. Run it with ``python -m benchmarks.bench_nn`` (15 epochs by default: test accuracy
0.893 with seed 0; ``--epochs N``, ``--rows N``
for a quick look on part of the data); ``make bench`` imports :func:`run`.
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


def _config(epochs):
    return dict(hidden_layer_sizes=(256,), activation="relu", optimizer="sgd", learning_rate=0.1,
                learning_rate_schedule="cosine", momentum=0.9, alpha=0.0, batch_size=256,
                max_epochs=epochs)


class Ours:
    """MLPClassifier trained one epoch per ``partial_fit`` call: the same steps as ``fit``."""

    def __init__(self, X, y, epochs, seed):
        from softmaxreg.models._mlp import MLPClassifier

        self.X, self.y, self.classes = X, y, np.unique(y)
        self.marks = []
        # the callback's "elapsed" times the training loop of the call alone (not the
        # input validation that every partial_fit call repeats)
        self.clf = MLPClassifier(**_config(epochs), dtype="float32", random_state=seed,
                                 callback=lambda info: self.marks.append(info["elapsed"]) and False)

    def epoch(self):
        self.clf.partial_fit(self.X, self.y, classes=self.classes)
        return self.marks[-1], self.clf.history_[-1]

    def accuracy(self, X, y):
        return float(self.clf.score(X, y))


class Torch:
    """The same network, initial weights, permutations and optimizer in PyTorch."""

    def __init__(self, X, y, epochs, seed):
        import torch

        from softmaxreg.nn import init
        from softmaxreg.solvers._schedules import get_schedule

        cfg = _config(epochs)
        self.rng = np.random.default_rng(seed)  # MLPClassifier's stream: weights, permutations
        w1 = init.he_normal(self.rng, (256, PIXELS), np.float32)
        w2 = init.normal(0.01)(self.rng, (10, 256), np.float32)
        self.net = torch.nn.Sequential(torch.nn.Linear(PIXELS, 256), torch.nn.ReLU(),
                                       torch.nn.Linear(256, 10))
        with torch.no_grad():
            self.net[0].weight.copy_(torch.from_numpy(w1))
            self.net[2].weight.copy_(torch.from_numpy(w2))
            self.net[0].bias.zero_()
            self.net[2].bias.zero_()
        self.opt = torch.optim.SGD(self.net.parameters(), lr=cfg["learning_rate"],
                                   momentum=cfg["momentum"])
        self.schedule = get_schedule(cfg["learning_rate_schedule"], cfg["learning_rate"], epochs)
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(y)
        self.bs, self.done = cfg["batch_size"], 0

    def epoch(self):
        import torch

        t0 = time.perf_counter()
        for group in self.opt.param_groups:
            group["lr"] = self.schedule(self.done)
        n = self.X.shape[0]
        perm = torch.from_numpy(self.rng.permutation(n))
        total = 0.0
        for lo in range(0, n, self.bs):
            idx = perm[lo:lo + self.bs]
            loss = torch.nn.functional.cross_entropy(self.net(self.X[idx]), self.y[idx])
            self.opt.zero_grad(set_to_none=False)
            loss.backward()
            self.opt.step()
            total += loss.item() * idx.numel()
        self.done += 1
        return time.perf_counter() - t0, total / n

    def accuracy(self, X, y):
        import torch

        with torch.no_grad():
            return float((self.net(torch.from_numpy(X)).argmax(1).numpy() == y).mean())


def run(epochs=15, max_rows=None, seed=0, threads=None, verbose=True):
    """Train both, epochs interleaved; return a dict (accuracies, seconds per epoch, ratio).

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
    threads = torch.get_num_threads()
    with threadpool_limits(limits=threads, user_api="blas"):
        # untimed warm-up of both: one-off costs (Numba loading its cached kernels,
        # PyTorch's first dispatches) are not per-epoch costs
        for side in (Ours, Torch):
            side(X[:1024], y[:1024], 1, seed).epoch()
        ours, theirs = Ours(X, y, epochs, seed), Torch(X, y, epochs, seed)
        t_ours, t_torch, l_ours, l_torch = [], [], [], []
        for _ in range(epochs):
            t, loss = ours.epoch()
            t_ours.append(t)
            l_ours.append(loss)
            t, loss = theirs.epoch()
            t_torch.append(t)
            l_torch.append(loss)
        acc_ours, acc_torch = ours.accuracy(Xte, yte), theirs.accuracy(Xte, yte)
    s_ours, s_torch = float(np.median(t_ours)), float(np.median(t_torch))
    result = {
        "benchmark": "nn: 784-256-10 ReLU MLP, Fashion-MNIST, SGD momentum 0.9, batch 256, float32",
        "n_train": int(X.shape[0]),
        "epochs": epochs,
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
        print(f"torch / ours = {s_torch / s_ours:.2f} (> 1: ours is faster; median of {epochs} "
              f"interleaved epochs, {X.shape[0]} rows, {threads} BLAS threads each)")
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
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
            f"{r['benchmark']}, {r['n_train']:,} training rows, {r['epochs']} epochs, {r['threads']} threads",
            "",
            "| | test accuracy | s / epoch (median) |",
            "|---|---:|---:|",
            f"| softmaxreg MLPClassifier | {r['accuracy_ours']:.4f} | {r['s_per_epoch_ours']:.3f} |",
            f"| PyTorch, same network, init and batches | {r['accuracy_torch']:.4f} | {r['s_per_epoch_torch']:.3f} |",
            f"| **PyTorch / softmaxreg per epoch** | | **{r['ratio_torch_over_ours']:.2f}x** |",
        ]
    )
