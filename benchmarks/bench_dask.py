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
    """Install the peers when missing: pip into this environment, apt for Java and a system BLAS."""
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
    if spark:
        import ctypes.util

        # Spark's netlib layer loads the system libblas.so.3; without it every BLAS call runs in Java.
        debs = [deb for deb, missing in (("openjdk-17-jre-headless", shutil.which("java") is None),
                                         ("libopenblas0-pthread", ctypes.util.find_library("blas") is None))
                if missing]
        if debs:
            subprocess.run(["apt-get", "update", "-q"], check=True)
            subprocess.run(["apt-get", "install", "-y", "-q", *debs], check=True)


def _cluster(memory_limit="auto"):
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0",
                           memory_limit=memory_limit)
    return cluster, Client(cluster)


def fashion(rows=None, spark=True, dask_ml=True, spark_max_iter=1000):
    """Fashion-MNIST float32, ``C = 1``: in memory, on 2 Dask workers, Spark ML, dask-ml; rows of the table.

    ``rows`` keeps the first rows only (then :data:`OPTIMUM` does not apply).
    dask-ml runs on the same persisted chunks as the Dask fit; its training
    accuracy is shown next to the in-memory fit's.
    """
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
        from distributed import wait

        # The rows reach the workers once, before the clock starts, as Spark's cached DataFrame does.
        t = time.perf_counter()
        Xd, yd = client.persist([da.from_array(X, chunks=(n // 8 + 1, X.shape[1])),
                                 da.from_array(y, chunks=(n // 8 + 1,))])
        wait([Xd, yd])
        t_load = time.perf_counter() - t
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
        if dask_ml:
            ours = {"candidate": "softmaxreg (accuracy, in memory)", "seconds": None,
                    "accuracy": float(np.mean(mem.predict(X) == y))}
            theirs = _dask_ml(Xd, yd, X, y)
    finally:
        client.close()
        cluster.close()
    out.append({"candidate": "softmaxreg in memory", "rows": n, "seconds": t_mem, "objective": f_mem,
                "passes": None, "per_pass": per_pass_mem})
    out.append({"candidate": "softmaxreg on 2 Dask workers", "rows": n, "seconds": t_dask,
                "objective": model.history_[-1], "passes": passes, "per_pass": per_pass_dask,
                "note": f"rows persisted on the workers beforehand in {t_load:.1f} s"})
    if dask_ml:
        out += [ours, theirs]
    if spark:
        out.append(_spark(X, y, max_iter=spark_max_iter))
    return out


def _spark(X, y, max_iter=1000, gap=1e-6):
    r"""Spark ML's multinomial ``LogisticRegression`` in ``local[2]`` on the same data and objective.

    The rows go to Spark through a Parquet file that Spark reads itself: a
    DataFrame built from driver-side rows would embed them in every task, and
    each L-BFGS iteration would ship the whole data set again. With
    ``regParam = 1/n``, ``elasticNetParam = 0`` and ``standardization=False``
    Spark minimises the same objective as ``C = 1``,

    .. math:: \frac{1}{n} \sum_i -\log p_{y_i}(x_i) + \frac{1}{2n} \lVert W \rVert_F^2,

    so its per-iteration ``objectiveHistory`` is compared with :data:`OPTIMUM`:
    ``to_gap`` is the first iteration within ``gap`` of it and ``seconds_to_gap``
    the fit's time scaled to that iteration (Spark's iterations cost the same).
    """
    try:
        from pyspark.ml.classification import LogisticRegression
        from pyspark.ml.feature import VectorAssembler
        from pyspark.sql import SparkSession
    except ImportError:
        return {"candidate": "Spark ML local[2]", "seconds": None, "note": "pyspark not installed (setup())"}
    import pandas as pd

    n = X.shape[0]
    folder = tempfile.mkdtemp(prefix="softmaxreg-spark-")
    names = [f"x{j}" for j in range(X.shape[1])]
    frame = pd.DataFrame(X, columns=names)
    frame["label"] = y.astype(np.float64)
    frame.to_parquet(os.path.join(folder, "fashion.parquet"), index=False)
    del frame
    spark = (SparkSession.builder.master("local[2]").config("spark.driver.memory", "4g")
             .config("spark.ui.enabled", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    try:
        raw = spark.read.parquet(os.path.join(folder, "fashion.parquet")).repartition(2)
        data = VectorAssembler(inputCols=names, outputCol="features").transform(raw).select("label", "features")
        data = data.cache()
        data.count()
        lr = LogisticRegression(family="multinomial", regParam=1.0 / n, elasticNetParam=0.0,
                                standardization=False, maxIter=max_iter, tol=1e-12)
        t = time.perf_counter()
        fit = lr.fit(data)
        seconds = time.perf_counter() - t
        W = fit.coefficientMatrix.toArray()
        b = fit.interceptVector.toArray()
        history = list(fit.summary.objectiveHistory)
    finally:
        spark.stop()
        shutil.rmtree(folder, ignore_errors=True)
    from softmaxreg.loss import LinearSoftmaxLoss

    loss = LinearSoftmaxLoss(X, y, n_classes=10, l2_reg_strength=1.0 / n)
    iters = len(history) - 1
    reached = next((k for k, f in enumerate(history) if f - OPTIMUM <= gap), None)
    return {"candidate": "Spark ML local[2]", "rows": n, "seconds": seconds,
            "objective": loss.loss(loss.pack(W, b)), "passes": iters,
            "per_pass": seconds / max(iters, 1), "to_gap": reached,
            "seconds_to_gap": None if reached is None else seconds * reached / max(iters, 1)}


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
        # Random floats have no repeats: a dictionary page would only add half the column's size again.
        frame.to_parquet(os.path.join(folder, f"part-{i:05d}.parquet"), index=False, use_dictionary=["y"])
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
            print(f"out of core: one read of the files {read:.1f} s", file=sys.stderr, flush=True)
            # A worker the nanny restarts (for memory) comes back under a new address.
            workers_before = set(client.scheduler_info()["workers"])
            t = time.perf_counter()
            model = SoftmaxRegression(solver="lbfgs", tol=1e-5, max_iter=200).fit(data.X, data.y, persist=False)
            seconds = time.perf_counter() - t
            passes = model._loss.loss.n_passes
            peaks = client.run(_peak_rss)
            workers_after = set(client.scheduler_info()["workers"])
            print(f"out of core: one read {read:.1f} s, fit {seconds:.1f} s in {passes} passes, peak RSS "
                  f"{sorted(round(v / 2**20) for v in peaks.values())} MB", file=sys.stderr, flush=True)
            # Scored on the first file's rows: one partition, never a concatenation of all of them.
            Xs = data.X.partitions[0].compute().to_numpy()[:20000]
            ys = data.y.partitions[0].compute().to_numpy()[:20000]
            truth = np.argmax(Xs @ W.T + b, axis=1)
            rows.append({"candidate": "softmaxreg, persist=False", "size_gb": size_gb, "seconds": seconds,
                         "passes": passes, "per_pass": seconds / max(passes, 1), "read_once": read,
                         "peak_rss_mb": sorted(round(v / 2**20) for v in peaks.values()),
                         "workers_before": len(workers_before), "workers_after": len(workers_after),
                         "restarted": len(workers_before - workers_after),
                         "accuracy": float(np.mean(model.predict(Xs) == ys)),
                         "agree_with_truth": float(np.mean(model.predict(Xs) == truth)),
                         "coef_error": float(np.abs((model.coef_ - model.coef_.mean(0)) - (W - W.mean(0))).max())})
            if dask_ml:
                rows.append(_dask_ml(data.X.to_dask_array(lengths=True),
                                     data.y.to_dask_array(lengths=True), Xs, ys))
        finally:
            client.close()
            cluster.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def _peak_rss():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _dask_ml(X, y, Xs, ys, name="dask-ml LogisticRegression"):
    """dask-ml's ``LogisticRegression`` (its default solver, ``C = 1``) on dask arrays ``X`` (n, d) and ``y`` (n,).

    dask-ml refuses more than one constant column (it adds its own intercept),
    so columns constant on ``Xs`` (m, d), the rows scored, are checked on all
    of ``X`` and dropped; the accuracy is measured on ``Xs`` against ``ys`` (m,).
    """
    try:
        from dask_ml.linear_model import LogisticRegression
    except ImportError:
        return {"candidate": name, "note": "dask-ml not installed (setup())"}
    import dask

    lo, hi = dask.compute(X.min(axis=0), X.max(axis=0))
    keep = np.flatnonzero(np.asarray(hi) > np.asarray(lo))
    t = time.perf_counter()
    model = LogisticRegression(C=1.0, max_iter=100).fit(X[:, keep], y)
    seconds = time.perf_counter() - t
    pred = np.asarray(model.predict(Xs[:, keep]))
    return {"candidate": name, "seconds": seconds, "accuracy": float(np.mean(pred == ys)),
            "note": f"{X.shape[1] - keep.size} constant columns dropped; predicts {np.unique(pred).tolist()}"}


def run(rows=None, spark=True, size_gb=8.0, memory_limit="2GiB", dask_ml=True, install=False,
        spark_max_iter=1000):
    """Parts 1 and 3 on Fashion-MNIST, then part 2 out of core (skipped when ``size_gb`` is None); table rows."""
    if install:
        setup(spark=spark, dask_ml=dask_ml)
    out = fashion(rows=rows, spark=spark, dask_ml=dask_ml, spark_max_iter=spark_max_iter)
    if size_gb:
        out += out_of_core(size_gb=size_gb, memory_limit=memory_limit, dask_ml=dask_ml)
    return out


def table(rows):
    """A Markdown table of :func:`run`'s rows."""
    lines = ["| candidate | size | seconds | objective / accuracy | passes | s per pass | notes |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        size = f"{r['rows']} rows" if "rows" in r else (f"{r['size_gb']} GB" if "size_gb" in r else "")
        value = (f"{r['objective']:.8f} (gap {r['objective'] - OPTIMUM:+.1e})" if r.get("objective") is not None
                 else (f"accuracy {r['accuracy']:.4f}" if r.get("accuracy") is not None else ""))
        notes = r.get("note", "")
        if r.get("to_gap") is not None:
            notes = (f"within 1e-6 of the optimum at iteration {r['to_gap']} of {r['passes']}, "
                     f"{r['seconds_to_gap']:.1f} s at the measured time per iteration")
        elif "to_gap" in r:
            notes = "never within 1e-6 of the optimum"
        if "read_once" in r:
            notes = (f"one read {r['read_once']:.1f} s; peak RSS per worker {r['peak_rss_mb']} MB; "
                     f"workers {r['workers_before']} -> {r['workers_after']}, {r['restarted']} restarted; agrees with the true model on "
                     f"{r['agree_with_truth']:.3f}")
        sec = f"{r['seconds']:.2f}" if r.get("seconds") is not None else "-"
        per = f"{r['per_pass']:.3f}" if r.get("per_pass") is not None else ""
        lines.append(f"| {r['candidate']} | {size} | {sec} | {value} | {r.get('passes') or ''} | {per} | {notes} |")
    return "\n".join(lines)
