"""``--dask``: train, evaluate, predict and report on Parquet or Zarr data through a Dask cluster.

``--dask local:N`` starts a ``distributed.LocalCluster`` of N worker
processes (one thread each) for the command; ``--dask tcp://host:port`` (or
any scheduler address) connects to a running one. The data are read lazily
(:func:`softmaxreg.io.scan_parquet`, :func:`softmaxreg.io.scan_zarr`), the
fit runs on the cluster (:meth:`SoftmaxRegression.fit` on Dask input), and
metrics are summed partition by partition; nothing but the model and the
metrics comes back to this process.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
import uuid
import warnings

import numpy as np

from ..io import ModelBundle, load_model, save_model, scan_parquet, scan_zarr
from ._options import estimator_options, pop_sample_weight
from ._progress import TrainingProgress, format_duration

__all__ = ["add_dask_options", "with_dask"]

_BINS = 15  # the ECE's bins, as in memory


def add_dask_options(p, *, train=False) -> None:
    """The ``--dask`` option (and ``--persist`` for train) of a subcommand."""
    p.add_argument("--dask", metavar="ADDRESS",
                   help="run on Dask: local:N starts N local worker processes, tcp://HOST:PORT uses "
                        "a running scheduler; DATA is then Parquet (a file, folder or glob) or a Zarr store")
    if train:
        p.add_argument("--persist", choices=["auto", "yes", "no"], default="auto",
                       help="with --dask: keep the data in the workers' memory (auto: when it fits)")


def with_dask(in_memory, on_dask):
    """The command ``in_memory(args)``, or ``on_dask(args)`` when ``--dask`` is given."""
    def command(args):
        return on_dask(args) if getattr(args, "dask", None) else in_memory(args)

    command.__name__ = getattr(in_memory, "__name__", "command")
    return command


def _say(args, text: str) -> None:
    if not getattr(args, "quiet", False):
        print(text, file=sys.stderr, flush=True)


@contextlib.contextmanager
def dask_client(spec: str, args):
    """A ``distributed.Client`` for ``--dask SPEC``, active for the block, closed after it."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ValueError("--dask needs Dask: pip install 'softmaxreg[dask]'") from None
    cluster = None
    if spec.startswith("local"):
        _, _, count = spec.partition(":")
        try:
            n_workers = int(count) if count else os.cpu_count() or 1
        except ValueError:
            n_workers = 0
        if n_workers < 1:
            raise ValueError(f"--dask {spec!r}: write local:N with N a positive number of workers")
        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True,
                               dashboard_address=":0")
        client = Client(cluster)
    else:
        address = spec if "://" in spec else f"tcp://{spec}"
        try:
            _probe_scheduler(address)
            client = Client(address, timeout="10s")
        except (OSError, TimeoutError) as exc:
            raise OSError(
                f"cannot reach the Dask scheduler at {address} ({' '.join(str(exc).split())[:200]}); "
                "check the address, or use --dask local:N to start workers here"
            ) from None
    try:
        link = client.dashboard_link
        _say(args, f"softmaxreg: Dask cluster {client.scheduler.address}, "
                   f"{len(client.scheduler_info()['workers'])} workers, dashboard {link}")
        with client.as_current():
            yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _probe_scheduler(address, timeout=10.0):
    """Raise ``OSError`` unless a Dask scheduler answers Dask's handshake at ``address`` within ``timeout``.

    ``Client`` retries a refused port until its timeout, and against a server of
    another protocol its handshake can wait for ever (or read a reply as a
    frame length): one connection attempt, bounded as a whole, says which.
    """
    import asyncio
    import socket

    from distributed.comm import connect, parse_address
    from distributed.comm.addressing import parse_host_port

    scheme, location = parse_address(address)
    if scheme == "tcp":  # a refused or unroutable port fails here at once
        host, port = parse_host_port(location)
        with socket.create_connection((host, port), timeout=min(timeout, 5.0)):
            pass

    async def handshake():
        comm = await connect(address, timeout=timeout)
        await comm.close()

    try:
        asyncio.run(asyncio.wait_for(handshake(), timeout))
    except OSError:
        raise
    except asyncio.TimeoutError:
        raise OSError(f"no Dask handshake within {timeout:g} s: is it a Dask scheduler?") from None
    except Exception as exc:  # noqa: BLE001 (a server of another protocol fails in any way)
        raise OSError(f"the server did not answer as a Dask scheduler ({type(exc).__name__})") from None


def _scan(spec, target, require_target=True):
    path = os.fspath(spec).rstrip("/")
    if path.endswith(".zarr") or os.path.exists(os.path.join(path, "zarr.json")) \
            or os.path.exists(os.path.join(path, ".zgroup")):
        return scan_zarr(path, require_target=require_target)
    if path.lower().endswith((".csv", ".tsv", ".npz", ".svm", ".libsvm", ".gz")):
        raise ValueError(f"--dask reads Parquet (a file, a folder or a glob) or a Zarr store, not {spec!r}; "
                         "convert the data or drop --dask")
    return scan_parquet(spec, target, require_target=require_target)


def _refuse(args, names):
    given = [flag for flag, attr in names if getattr(args, attr, None) not in (None, False, "softmax")]
    if given:
        raise ValueError(f"{', '.join(given)} cannot be used with --dask (give numeric, complete, "
                         "already scaled Parquet or Zarr data)")


# ----------------------------------------------------------------- partitions and metrics
_LABEL = "__softmaxreg_label__"


def _partitions(data, with_labels=True):
    """Delayed ``(features, labels or None)`` per partition, the labels read with their rows."""
    from dask import delayed

    X, y = data.X, data.y if with_labels else None
    if hasattr(X, "to_delayed") and hasattr(X, "columns"):  # a dask DataFrame
        frame = X.assign(**{_LABEL: y}) if y is not None else X
        return [delayed(_split_part, nout=2)(part, y is not None) for part in frame.to_delayed()]
    if len(X.chunks[1]) != 1:
        X = X.rechunk({1: -1})
    blocks = X.to_delayed().ravel()
    labels = y.to_delayed().ravel() if y is not None else [None] * len(blocks)
    return list(zip(blocks, labels))


def _split_part(part, labelled):
    if not labelled:
        return part, None
    return part.drop(columns=[_LABEL]), part[_LABEL].to_numpy()


def _proba(bundle, X):
    return np.asarray(bundle.predict_proba(X), dtype=np.float64)


def _part_metrics(X, y, bundle):
    """Sums for accuracy, log-loss, Brier, ECE and the confusion matrix on one partition."""
    P = _proba(bundle, X)
    classes = bundle.classes_
    index = {c: k for k, c in enumerate(classes.tolist())}
    try:
        codes = np.array([index[v] for v in np.asarray(y).tolist()], dtype=np.intp)
    except KeyError as exc:
        raise ValueError(f"the data hold label {exc.args[0]!r}, which the model does not know") from None
    n, K = P.shape
    pred = np.argmax(P, axis=1)
    right = pred == codes
    top = P[np.arange(n), pred]
    bins = np.minimum((top * _BINS).astype(np.intp), _BINS - 1)
    Y = np.zeros_like(P)
    Y[np.arange(n), codes] = 1.0
    true_p = np.clip(P[np.arange(n), codes], 1e-300, None)
    conf = np.zeros((K, K))
    np.add.at(conf, (codes, pred), 1.0)
    return {
        "n": float(n), "right": float(right.sum()), "nll": float(-np.log(true_p).sum()),
        "brier": float(((P - Y) ** 2).sum()), "conf": conf,
        "bin_top": np.bincount(bins, weights=top, minlength=_BINS),
        "bin_right": np.bincount(bins, weights=right.astype(float), minlength=_BINS),
    }


def _add(*parts):
    return {k: sum((p[k] for p in parts[1:]), parts[0][k]) for k in parts[0]}


def _dask_metrics(bundle, data):
    """accuracy, log_loss, brier, ece and the confusion matrix, summed over the partitions in a tree."""
    import dask
    from dask import delayed

    if data.y is None:
        raise ValueError(f"{data.name!r} has no labels; give --target COL")
    parts = [delayed(_part_metrics)(X, y, bundle) for X, y in _partitions(data)]
    while len(parts) > 1:
        parts = [delayed(_add)(*parts[i:i + 8]) for i in range(0, len(parts), 8)]
    (s,) = dask.compute(parts[0])
    n = s["n"]
    return {"accuracy": s["right"] / n, "log_loss": s["nll"] / n, "brier": s["brier"] / n,
            "ece": float(np.sum(np.abs(s["bin_top"] - s["bin_right"])) / n),
            "confusion": s["conf"].astype(np.int64), "n_samples": int(n)}


def _table(columns):
    from ._commands import _metrics_table

    return _metrics_table(columns)


# ----------------------------------------------------------------- commands
def cmd_train(args) -> int:
    """``softmaxreg train DATA --dask ...``: fit on the cluster and save the model."""
    from ._commands import _check_output_dir, _inference_record, build_estimator

    _refuse(args, [("--model mlp", "hidden"), ("--standardize", "standardize"), ("--impute", "impute"),
                   ("--test", "test"), ("--test-size", "test_size"), ("--max-rows", "max_rows"),
                   ("--formula", "formula")])
    if args.model != "softmax":
        raise ValueError("--model mlp cannot be used with --dask")
    _check_output_dir(args.output)
    with dask_client(args.dask, args):
        data = _scan(args.data, args.target)
        sample_weight = pop_sample_weight(data, getattr(args, "sample_weight", None))
        estimator = build_estimator(args)
        # the labels an option names are matched to the data's (a pass over y, only then)
        named = (getattr(args, "reference_class", None) is not None
                 or getattr(args, "class_weight", None) not in (None, "balanced"))
        estimator.set_params(**estimator_options(args, _labels_of(data.y) if named else np.empty(0)))
        n_rows = len(data.y)
        _say(args, f"softmaxreg: training SoftmaxRegression ({estimator.solver}) on {n_rows:,} samples x "
                   f"{len(data.feature_names):,} features, {data.X.npartitions if hasattr(data.X, 'npartitions') else data.X.numblocks[0]} partitions")
        progress = TrainingProgress(total=estimator.max_iter, unit="epoch" if estimator.solver == "sgd" else "it",
                                    label=estimator.solver, enabled=None if not args.quiet else False,
                                    verbose=0 if args.quiet else args.verbose)
        estimator.set_params(callback=progress)
        start = time.perf_counter()
        persist = {"auto": "auto", "yes": True, "no": False}[args.persist]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                estimator.fit(data.X, data.y, sample_weight=sample_weight, persist=persist)
            finally:
                progress.close()
                estimator.set_params(callback=None)
        seconds = time.perf_counter() - start
        for w in caught:
            _say(args, f"softmaxreg: warning: {str(w.message).splitlines()[0]}")
        bundle = ModelBundle(estimator=estimator, preprocessor=None,
                             data_info={"name": data.name, "target": data.target, "image_shape": None,
                                        "class_names": None})
        metrics = _dask_metrics(bundle, data)
        records = progress.records
        meta = {
            "data": data.name, "n_samples": metrics["n_samples"], "n_features": len(data.feature_names),
            "fit_seconds": round(seconds, 4), "n_iter": int(estimator.n_iter_),
            "converged": bool(estimator.converged_),
            "history": {
                "iteration": np.array([r["iteration"] for r in records], dtype=np.int64),
                "objective": np.array([r["objective"] for r in records], dtype=np.float64),
                "elapsed": np.array([r["elapsed"] for r in records], dtype=np.float64),
            },
            "metrics": {"train": {k: metrics[k] for k in ("accuracy", "log_loss", "brier", "ece")}},
            "command": "softmaxreg " + " ".join(getattr(args, "argv", []) or []),
            "dask": args.dask,
        }
        args._feature_names = list(data.feature_names)
        inference = _inference_record(estimator, args)
        if inference is not None:
            meta["inference"] = inference
        bundle.metadata = meta
    took = f"{seconds:.2f} s" if seconds < 60 else format_duration(seconds)
    status = ", converged" if estimator.converged_ else ", stopped at the iteration limit"
    print(f"trained in {took}, {estimator.n_iter_} {'epochs' if estimator.solver == 'sgd' else 'iterations'}"
          f"{status}", flush=True)
    print(_table({"train": meta["metrics"]["train"]}), flush=True)
    save_model(args.output, bundle)
    print(f"saved SoftmaxRegression to {args.output}", flush=True)
    return 0


def _labels_of(y):
    """The distinct labels of a Dask column (one pass), for matching the options' labels."""
    import dask.array as da

    return np.asarray((y.unique() if hasattr(y, "unique") else da.unique(y)).compute())


def _model_for_dask(args):
    bundle = load_model(args.model)
    if not hasattr(bundle.estimator, "coef_"):
        raise ValueError("--dask works with softmax regression models; this model has no coef_")
    return bundle


def cmd_evaluate(args) -> int:
    """``softmaxreg evaluate MODEL DATA --dask ...``: metrics summed over the partitions."""
    import json

    bundle = _model_for_dask(args)
    target = getattr(args, "target", None) or bundle.data_info.get("target")
    with dask_client(args.dask, args):
        data = _scan(args.data, target)
        m = _dask_metrics(bundle, data)
    columns = {"value": {k: m[k] for k in ("accuracy", "log_loss", "brier", "ece")}}
    if args.json:
        print(json.dumps({"data": data.name, "n_samples": m["n_samples"], "metrics": columns,
                          "classes": [str(c) for c in bundle.classes_],
                          "confusion_matrix": m["confusion"].tolist()}, indent=1))
        return 0
    from ._commands import format_matrix

    print(f"{data.name}: {m['n_samples']:,} samples, {len(bundle.classes_)} classes")
    print(_table(columns))
    print()
    print("confusion matrix (rows: true class, columns: predicted)")
    print(format_matrix(m["confusion"], [str(c) for c in bundle.classes_]))
    return 0


def cmd_predict(args) -> int:
    """``softmaxreg predict MODEL DATA --dask ... -o OUT.parquet``: a Parquet folder written by the workers."""
    import dask.dataframe as dd
    from dask import delayed

    out = args.output
    if out == "-" or not out.lower().rstrip("/").endswith((".parquet", ".pq")):
        raise ValueError("with --dask, predictions are written as Parquet: give -o NAME.parquet")
    from ._commands import _check_output_dir

    _check_output_dir(out)
    bundle = _model_for_dask(args)
    classes = bundle.classes_
    with dask_client(args.dask, args):
        data = _scan(args.data, None, require_target=False)
        meta = _prediction_frame(np.zeros((0, classes.size)), classes, args.proba)
        frames = [delayed(_part_predictions)(X, bundle, args.proba) for X, _ in _partitions(data, False)]
        predictions = dd.from_delayed(frames, meta=meta, verify_meta=False)
        tmp = f"{out.rstrip('/')}.tmp-{uuid.uuid4().hex[:8]}"
        try:
            predictions.to_parquet(tmp, write_index=False)
            if os.path.isdir(out):
                shutil.rmtree(out)
            elif os.path.exists(out):
                os.remove(out)
            os.replace(tmp, out)
        finally:
            if os.path.exists(tmp):
                shutil.rmtree(tmp, ignore_errors=True)
    _say(args, f"softmaxreg: wrote the predictions to {out} (a Parquet folder)")
    return 0


def _prediction_frame(P, classes, with_proba):
    import pandas as pd

    table = pd.DataFrame({"prediction": classes[np.argmax(P, axis=1)]})
    if with_proba:
        for j, c in enumerate(classes):
            table[f"proba_{c}"] = P[:, j]
    return table


def _part_predictions(X, bundle, with_proba):
    return _prediction_frame(_proba(bundle, X), bundle.classes_, with_proba)


def cmd_report(args) -> int:
    """``softmaxreg report MODEL DATA --dask ...``: the data are read by the workers and collected for the report."""
    from ..report import write_report
    from ._commands import _check_output_dir

    bundle = _model_for_dask(args)
    _check_output_dir(args.output)
    target = getattr(args, "target", None) or bundle.data_info.get("target")
    with dask_client(args.dask, args):
        data = _scan(args.data, target)
        import dask

        X, y = dask.compute(data.X, data.y)
    import pandas as pd

    data.X = X if isinstance(X, pd.DataFrame) else np.asarray(X)
    data.y = np.asarray(y)
    write_report(bundle, data, args.output)
    _say(args, f"softmaxreg: wrote the report to {args.output}")
    return 0
