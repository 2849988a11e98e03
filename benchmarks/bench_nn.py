"""A 784-256-10 ReLU network on Fashion-MNIST: softmaxreg's MLPClassifier against PyTorch (CPU).

Both sides train the *same* network in the same process: the same initial
weights (He normal hidden layer, N(0, 0.01^2) output layer, zero biases, from
``numpy.random.default_rng(seed)`` as MLPClassifier documents), the same
per-epoch permutations of the rows, float32, SGD with momentum 0.9, batch 256,
a cosine learning-rate schedule from 0.1, and the same number of epochs. What is timed is
the training loop only (per epoch: gather the batch, forward, cross-entropy,
backward, optimizer step); data loading is outside. Test accuracy is reported
for both.

Run it with ``python -m benchmarks.bench_nn`` (15 epochs by default: test accuracy
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


def train_ours(X, y, Xte, yte, epochs, seed):
    from softmaxreg.models._mlp import MLPClassifier

    marks = []
    clf = MLPClassifier(**_config(epochs), dtype="float32", random_state=seed,
                        callback=lambda info: marks.append(info["elapsed"]) and False)
    clf.fit(X, y)
    per_epoch = np.diff([0.0, *marks])
    return {"accuracy": float(clf.score(Xte, yte)), "epoch_s": per_epoch.tolist(),
            "loss": clf.history_}


def train_torch(X, y, Xte, yte, epochs, seed):
    import torch

    from softmaxreg.nn import init
    from softmaxreg.solvers._schedules import get_schedule

    cfg = _config(epochs)
    rng = np.random.default_rng(seed)  # MLPClassifier's stream: weights, then permutations
    w1 = init.he_normal(rng, (256, PIXELS), np.float32)
    w2 = init.normal(0.01)(rng, (10, 256), np.float32)
    net = torch.nn.Sequential(torch.nn.Linear(PIXELS, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    with torch.no_grad():
        net[0].weight.copy_(torch.from_numpy(w1))
        net[2].weight.copy_(torch.from_numpy(w2))
        net[0].bias.zero_()
        net[2].bias.zero_()
    opt = torch.optim.SGD(net.parameters(), lr=cfg["learning_rate"], momentum=cfg["momentum"])
    schedule = get_schedule(cfg["learning_rate_schedule"], cfg["learning_rate"], epochs)
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    n, bs = X.shape[0], cfg["batch_size"]
    per_epoch, losses = [], []
    for epoch in range(epochs):
        t0 = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = schedule(epoch)
        perm = torch.from_numpy(rng.permutation(n))
        total = 0.0
        for lo in range(0, n, bs):
            idx = perm[lo:lo + bs]
            loss = torch.nn.functional.cross_entropy(net(Xt[idx]), yt[idx])
            opt.zero_grad(set_to_none=False)
            loss.backward()
            opt.step()
            total += loss.item() * idx.numel()
        per_epoch.append(time.perf_counter() - t0)
        losses.append(total / n)
    with torch.no_grad():
        acc = (net(torch.from_numpy(Xte)).argmax(1).numpy() == yte).mean()
    return {"accuracy": float(acc), "epoch_s": per_epoch, "loss": losses}


def run(epochs=15, max_rows=None, seed=0, threads=None, verbose=True):
    """Train both, return a dict of results (accuracies, seconds per epoch, ratio).

    ``threads`` caps the BLAS threads of both sides (OpenBLAS through
    threadpoolctl, ``torch.set_num_threads``); None leaves each library's default.
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
        train_ours(X[:1024], y[:1024], Xte[:10], yte[:10], 1, seed)
        train_torch(X[:1024], y[:1024], Xte[:10], yte[:10], 1, seed)
        ours = train_ours(X, y, Xte, yte, epochs, seed)
        theirs = train_torch(X, y, Xte, yte, epochs, seed)
    # the median epoch: robust to one slow epoch on a shared machine
    s_ours, s_torch = float(np.median(ours["epoch_s"])), float(np.median(theirs["epoch_s"]))
    result = {
        "benchmark": "nn: 784-256-10 ReLU MLP, Fashion-MNIST, SGD momentum 0.9, batch 256, float32",
        "n_train": int(X.shape[0]),
        "epochs": epochs,
        "accuracy_ours": ours["accuracy"],
        "accuracy_torch": theirs["accuracy"],
        "s_per_epoch_ours": s_ours,
        "s_per_epoch_torch": s_torch,
        "ratio_torch_over_ours": s_torch / s_ours,
        "threads": threads,
        "cpu_count": os.cpu_count(),
        "epoch_s_ours": ours["epoch_s"],
        "epoch_s_torch": theirs["epoch_s"],
        "loss_ours": ours["loss"],
        "loss_torch": theirs["loss"],
    }
    if verbose:
        print(f"{'':>10} {'accuracy':>9} {'s/epoch':>9}")
        print(f"{'softmaxreg':>10} {ours['accuracy']:9.4f} {s_ours:9.3f}")
        print(f"{'torch':>10} {theirs['accuracy']:9.4f} {s_torch:9.3f}")
        print(f"torch / ours = {s_torch / s_ours:.2f} (> 1: ours is faster; median of {epochs} "
              f"epochs, {X.shape[0]} rows, {threads} BLAS threads each)")
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
