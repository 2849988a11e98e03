"""SoftmaxRegression on a 2-worker Dask LocalCluster: Fashion-MNIST against memory and Spark ML, out of core, dask-ml.

1. Fashion-MNIST (60000 x 784 float32, C = 1) on a LocalCluster of 2 worker
   processes against the in-memory fit, to the same objective; the time per
   pass against the in-memory pass; Spark ML's multinomial
   ``LogisticRegression`` in ``local[2]`` with the same objective
   (``regParam = 1/n``, ``standardization=False``).
2. Out of core: a float32 Parquet data set drawn from a known multinomial
   model (``size_gb`` on disk), fitted with ``persist=False`` on 2 workers
   limited to ``memory_limit``: passes, time per pass against one read of the
   files, each worker's peak memory, restarts.
3. dask-ml's ``LogisticRegression`` on the same multiclass data: accuracy next to ours.

Peers are installed by :func:`setup` (pyspark and dask-ml with pip into this
interpreter's environment, Debian's openjdk-17-jre-headless and
libopenblas0-pthread with apt), never by the tests.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from ._common import fashion_mnist

OPTIMUM = 0.34989281  # Fashion-MNIST, C = 1, per sample (benchmarks/results.md, section 3)


def setup(spark=True, dask_ml=True):
    """Install the peers when missing (pip into this environment; apt for Java and OpenBLAS)."""
    wanted = []
    if spark:
        try:
            import pyspark  # noqa: F401
        except ImportError:
            wanted.append("pyspark")
    if dask_ml:
        try:
            import dask_ml  # noqa: F401
        except ImportError:
            wanted.append("dask-ml")
    if wanted:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", *wanted], check=True)
    if spark and shutil.which("java") is None:
        subprocess.run(["apt-get", "install", "-y", "-q", "openjdk-17-jre-headless", "libopenblas0-pthread"],
                       check=True)


def _cluster(memory_limit="auto"):
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                           memory_limit=memory_limit)
    return cluster, Client(cluster)


def fashion(rows=None, spark=True):
    import dask.array as da

    from softmaxreg import SoftmaxRegression
    from softmaxreg.loss import LinearSoftmaxLoss

    X, y, _, _ = fashion_mnist(np.float32)
    if rows:
        X, y = X[:rows], y[:rows]
    n = X.shape[0]
    out = []
    t = time.perf_counter()
    mem = SoftmaxRegression(tol=1e-7).fit(X, y)
    t_mem = time.perf_counter() - t
    f_mem = mem.history_[-1]
    cluster, client = _cluster()
    try:
        Xd = da.from_array(X, chunks=(n // 8 + 1, X.shape[1]))
        yd = da.from_array(y, chunks=(n // 8 + 1,))
        SoftmaxRegression(max_iter=1).fit(Xd[:1000], yd[:1000])  # workers import and compile
        t = time.perf_counter()
        model = SoftmaxRegression(tol=1e-7).fit(Xd, yd, persist=True)
        t_dask = time.perf_counter() - t
        loss = model._loss.loss
        passes = loss.n_passes
        w = loss.pack(model.coef_.astype(np.float64), model.intercept_.astype(np.float64))
        reps = 5
        t = time.perf_counter()
        for _ in range(reps):
            loss.loss_gradient(w)
        per_pass_dask = (time.perf_counter() - t) / reps
        mloss = LinearSoftmaxLoss(X, y, n_classes=10, l2_reg_strength=1.0 / n)
        t = time.perf_counter()
        for _ in range(reps):
            mloss.loss_gradient(w)
        per_pass_mem = (time.perf_counter() - t) / reps
    finally:
        client.close()
        cluster.close()
    out.append({"candidate": "softmaxreg in memory", "rows": n, "seconds": t_mem, "objective": f_mem,
                "passes": None, "per_pass": per_pass_mem})
    out.append({"candidate": "softmaxreg on 2 Dask workers", "rows": n, "seconds": t_dask,
                "objective": model.history_[-1], "passes": passes, "per_pass": per_pass_dask})
    if spark:
        out.append(_spark(X, y))
    return out


def _spark(X, y):
    try:
        from pyspark.ml.classification import LogisticRegression
        from pyspark.ml.linalg import Vectors
        from pyspark.sql import SparkSession
    except ImportError:
        return {"candidate": "Spark ML local[2]", "seconds": None, "note": "pyspark not installed (setup())"}
    n = X.shape[0]
    spark = SparkSession.builder.master("local[2]").config("spark.driver.memory", "4g").getOrCreate()
    try:
        rows = [(int(t), Vectors.dense(x.astype(np.float64))) for x, t in zip(X, y)]
        frame = spark.createDataFrame(rows, ["label", "features"]).cache()
        frame.count()
        lr = LogisticRegression(family="multinomial", regParam=1.0 / n, elasticNetParam=0.0,
                                standardization=False, maxIter=1000, tol=1e-10)
        t = time.perf_counter()
        fit = lr.fit(frame)
        seconds = time.perf_counter() - t
        W = fit.coefficientMatrix.toArray()
        b = fit.interceptVector.toArray()
    finally:
        spark.stop()
    from softmaxreg.loss import LinearSoftmaxLoss

    loss = LinearSoftmaxLoss(X, y, n_classes=10, l2_reg_strength=1.0 / n)
    return {"candidate": "Spark ML local[2]", "rows": n, "seconds": seconds,
            "objective": loss.loss(loss.pack(W, b)), "passes": None, "per_pass": None}


def write_parquet(folder, size_gb, n_features=100, n_classes=10, rows_per_file=200_000, seed=0):
    """A float32 data set drawn from a known multinomial model; returns (true coef, true intercept)."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    W = rng.normal(0, 1 / np.sqrt(n_features), size=(n_classes, n_features))
    b = rng.normal(0, 0.5, size=n_classes)
    n_rows = int(size_gb * 1e9 / (4 * n_features))
    names = [f"x{j}" for j in range(n_features)]
    os.makedirs(folder, exist_ok=True)
    for i, start in enumerate(range(0, n_rows, rows_per_file)):
        m = min(rows_per_file, n_rows - start)
        X = rng.normal(size=(m, n_features)).astype(np.float32)
        y = np.argmax(X @ W.T + b + rng.gumbel(size=(m, n_classes)), axis=1)
        frame = pd.DataFrame(X, columns=names)
        frame["y"] = y.astype(np.int32)
        frame.to_parquet(os.path.join(folder, f"part-{i:05d}.parquet"), index=False)
    return W, b


def out_of_core(size_gb=8.0, memory_limit="2GiB", dask_ml=True):
    from softmaxreg import SoftmaxRegression
    from softmaxreg.io import scan_parquet

    folder = tempfile.mkdtemp(prefix="softmaxreg-ooc-")
    rows = []
    try:
        W, b = write_parquet(folder, size_gb)
        cluster, client = _cluster(memory_limit)
        try:
            data = scan_parquet(os.path.join(folder, "*.parquet"), target="y")
            t = time.perf_counter()
            data.X.sum().compute()
            read = time.perf_counter() - t
            restarts_before = sum(1 for _ in client.scheduler_info()["workers"])
            t = time.perf_counter()
            model = SoftmaxRegression(solver="lbfgs", tol=1e-5, max_iter=200).fit(data.X, data.y, persist=False)
            seconds = time.perf_counter() - t
            passes = model._loss.loss.n_passes
            peaks = client.run(_peak_rss)
            workers = len(client.scheduler_info()["workers"])
            Xs = data.X.head(20000, npartitions=-1).to_numpy()
            ys = data.y.head(20000, npartitions=-1).to_numpy()
            truth = np.argmax(Xs @ W.T + b, axis=1)
            rows.append({"candidate": "softmaxreg, persist=False", "size_gb": size_gb, "seconds": seconds,
                         "passes": passes, "per_pass": seconds / max(passes, 1), "read_once": read,
                         "peak_rss_mb": sorted(round(v / 2**20) for v in peaks.values()),
                         "workers_after": workers, "workers_before": restarts_before,
                         "accuracy": float(np.mean(model.predict(Xs) == ys)),
                         "agree_with_truth": float(np.mean(model.predict(Xs) == truth)),
                         "coef_error": float(np.abs((model.coef_ - model.coef_.mean(0)) - (W - W.mean(0))).max())})
            if dask_ml:
                rows.append(_dask_ml(data, Xs, ys))
        finally:
            client.close()
            cluster.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def _peak_rss():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _dask_ml(data, Xs, ys):
    try:
        from dask_ml.linear_model import LogisticRegression
    except ImportError:
        return {"candidate": "dask-ml LogisticRegression", "note": "dask-ml not installed (setup())"}
    X = data.X.to_dask_array(lengths=True)
    y = data.y.to_dask_array(lengths=True)
    t = time.perf_counter()
    model = LogisticRegression(C=1.0, max_iter=100).fit(X, y)
    seconds = time.perf_counter() - t
    return {"candidate": "dask-ml LogisticRegression", "seconds": seconds,
            "accuracy": float(np.mean(np.asarray(model.predict(Xs)) == ys))}


def run(rows=None, spark=True, size_gb=8.0, memory_limit="2GiB", dask_ml=True, install=False):
    if install:
        setup(spark=spark, dask_ml=dask_ml)
    out = fashion(rows=rows, spark=spark)
    out += out_of_core(size_gb=size_gb, memory_limit=memory_limit, dask_ml=dask_ml)
    return out


def table(rows):
    lines = ["| candidate | size | seconds | objective / accuracy | passes | s per pass | notes |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        size = f"{r['rows']} rows" if "rows" in r else (f"{r['size_gb']} GB" if "size_gb" in r else "")
        value = (f"{r['objective']:.8f} (gap {r['objective'] - OPTIMUM:+.1e})" if r.get("objective") is not None
                 else (f"accuracy {r['accuracy']:.4f}" if r.get("accuracy") is not None else ""))
        notes = r.get("note", "")
        if "read_once" in r:
            notes = (f"one read {r['read_once']:.1f} s; peak RSS per worker {r['peak_rss_mb']} MB; "
                     f"workers {r['workers_before']} -> {r['workers_after']}; agrees with the true model on "
                     f"{r['agree_with_truth']:.3f}")
        sec = f"{r['seconds']:.2f}" if r.get("seconds") is not None else "-"
        per = f"{r['per_pass']:.3f}" if r.get("per_pass") is not None else ""
        lines.append(f"| {r['candidate']} | {size} | {sec} | {value} | {r.get('passes') or ''} | {per} | {notes} |")
    return "\n".join(lines)
