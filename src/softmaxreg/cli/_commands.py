"""The work behind each ``softmaxreg`` sub-command.

Each ``cmd_*`` function takes the parsed arguments and returns the exit
status. Results go to stdout; notes, warnings and the progress bar go to
stderr. Bad input raises :class:`ValueError` (or :class:`FileNotFoundError`,
:class:`RuntimeError`) with a message saying what to fix; ``main`` turns it
into one line on stderr and exit status 2.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import sys
import time
import warnings

import numpy as np
import pandas as pd

from ..io import (
    ModelBundle,
    Preprocessor,
    dataset_locations,
    find_fashion_mnist,
    is_builtin,
    load_data,
    load_model,
    save_model,
    stratified_split,
)
from ..io import atomic_write
from ..metrics import sorted_labels
from ..report import evaluate_model
from ._options import estimator_options, pop_sample_weight, summary_frame
from ._progress import TrainingProgress, format_duration
from ._tables import format_matrix as _format_matrix
from ._tables import format_table as _format_table


def format_table(rows, headers, **kw):
    kw.setdefault("stream", sys.stdout)
    return _format_table(rows, headers, **kw)


def format_matrix(matrix, labels, **kw):
    kw.setdefault("stream", sys.stdout)
    return _format_matrix(matrix, labels, **kw)

__all__ = [
    "cmd_train", "cmd_evaluate", "cmd_predict", "cmd_calibrate", "cmd_summary",
    "cmd_report", "cmd_demo", "cmd_datasets", "evaluate_model",
]

_NO_TOL = object()

#: Largest number of coefficients for which ``train`` computes standard errors
#: (the covariance is the inverse of a dense Hessian of this size).
MAX_INFERENCE_PARAMS = 2000


# ----------------------------------------------------------------- helpers
def _say(args, text: str, *, level: int = 0) -> None:
    """A note on stderr, unless --quiet (or below the verbosity level)."""
    if getattr(args, "quiet", False) or getattr(args, "verbose", 0) < level:
        return
    print(text, file=sys.stderr, flush=True)


def _out(text: str = "") -> None:
    print(text, flush=True)


def _check_labels(y, data, training: bool = True) -> None:
    if y is None:
        raise ValueError(f"{data.name!r} has no labels; give --target COL")
    where = f"the label column {data.target!r}" if data.target else "the labels"
    y = np.asarray(y)
    if y.dtype.kind == "f":
        frac = y[np.isfinite(y) & (y != np.round(y))]
        if frac.size:
            raise ValueError(
                f"{data.name!r}: {where} holds non-integer numbers (e.g. {frac[:1].tolist()[0]!r}); "
                "softmax regression needs class labels, check --target"
            )
    classes = sorted_labels(y)
    if not training:  # evaluating on one class is fine; fitting on one is not
        return
    if classes.size > max(100, y.size // 2):
        warnings.warn(f"{where} has {classes.size} distinct values in {y.size} rows; "
                      "is it the right --target?", stacklevel=2)
    if classes.size < 2:
        raise ValueError(
            f"{data.name!r}: {where} holds a single class ({classes[:1].tolist()[0]!r}); classification "
            "needs at least two, check --target"
        )


def _subset(data, rows):
    X = data.X.iloc[rows].reset_index(drop=True) if isinstance(data.X, pd.DataFrame) else data.X[rows]
    return X, data.y[rows]


def _data_info(data) -> dict:
    return {
        "name": data.name,
        "target": data.target,
        "image_shape": list(data.image_shape) if data.image_shape else None,
        "class_names": data.class_names,
    }


def _load_for_model(spec, bundle: ModelBundle, args, *, require_target=True):
    """Data for an existing model: same target column, same LibSVM width."""
    target = getattr(args, "target", None) or bundle.data_info.get("target")
    n_features = int(getattr(bundle.estimator, "n_features_in_", 0)) or None
    try:
        data = load_data(spec, target, format=getattr(args, "format", None),
                         require_target=require_target, n_features=n_features,
                         max_rows=getattr(args, "max_rows", None))
    except ValueError as exc:
        if target and require_target is False and f"no column {target!r}" in str(exc):
            data = load_data(spec, None, format=getattr(args, "format", None),
                             require_target=False, n_features=n_features, max_rows=getattr(args, "max_rows", None))
        else:
            raise
    if data.X.shape[0] == 0:
        raise ValueError(f"{data.name!r} holds no rows")
    return data


def _to_codes(y, classes, name):
    classes = np.asarray(classes)
    y = np.asarray(y)
    if classes.dtype.kind in "iu" and y.dtype.kind == "f" and np.all(y == np.round(y)):
        y = y.astype(np.int64)
    if classes.dtype.kind in "iu" and y.dtype.kind == "U":
        try:
            y = y.astype(np.int64)
        except ValueError:
            pass
    if classes.dtype.kind == "U" and y.dtype.kind != "U":
        y = y.astype(str)
    lookup = {c: i for i, c in enumerate(classes.tolist())}
    codes = np.array([lookup.get(v, -1) for v in y.tolist()], dtype=np.int64)
    unknown = codes < 0
    if unknown.any():
        examples = ", ".join(repr(v) for v in pd.unique(y[unknown])[:3].tolist())
        raise ValueError(
            f"{name}: labels {examples} were not seen in training (the model knows "
            f"{', '.join(map(str, classes.tolist()[:10]))}); use data with the training labels"
        )
    return y, codes


def _scalar_metrics(m: dict) -> dict:
    return {k: m[k] for k in ("accuracy", "log_loss", "brier", "ece")}


def _class_labels(bundle) -> list[str]:
    names = bundle.data_info.get("class_names")
    classes = bundle.classes_.tolist()
    if names and all(isinstance(c, int) and 0 <= c < len(names) for c in classes):
        return [f"{c} {names[c]}" for c in classes]
    return [str(c) for c in classes]


def _metrics_table(columns: dict[str, dict]) -> str:
    rows = []
    for key, label in (("accuracy", "accuracy"), ("log_loss", "log-loss"),
                       ("brier", "Brier score"), ("ece", "ECE (15 bins)")):
        rows.append([label] + [columns[c][key] for c in columns])
    return format_table(rows, ["metric"] + list(columns))


def _per_class_table(bundle, m) -> str:
    rows = [
        [lab, float(p), float(r), float(f), int(s)]
        for lab, p, r, f, s in zip(_class_labels(bundle), m["precision"], m["recall"], m["f1"], m["support"])
    ]
    return format_table(rows, ["class", "precision", "recall", "F1", "support"])


def warning_line(message) -> str:
    """The first line of a warning's message (what the command prints)."""
    text = str(message).strip()
    return text.splitlines()[0] if text else type(message).__name__


# ----------------------------------------------------------------- training
def _hidden_sizes(args) -> tuple[int, ...]:
    sizes = []
    for item in args.hidden or []:
        for part in str(item).split(","):
            if part.strip():
                try:
                    v = int(part)
                except ValueError:
                    raise ValueError(f"--hidden takes layer widths such as 256 or 256,128, got {item!r}") from None
                if v < 1:
                    raise ValueError(f"--hidden widths must be positive, got {v}")
                sizes.append(v)
    return tuple(sizes) or (100,)


def build_estimator(args, callback=None, n_samples=None):
    """The estimator the ``train`` options describe.

    ``--C`` means the same for both models: the MLP's ``alpha`` is
    ``batch_size / (C * n_samples)``, so that its per-sample penalty (scikit-learn
    scales ``alpha`` by the batch) equals softmax regression's ``1 / (2 C n)``.
    """
    if args.model == "mlp":
        try:
            from ..models import MLPClassifier
        except ImportError:
            raise ValueError("--model mlp is not available in this installation") from None
        if args.C is not None and n_samples is None:
            raise ValueError("--C for --model mlp needs the number of training samples")
        if args.solver not in ("auto", "adam", "sgd"):
            raise ValueError(f"--model mlp trains with --solver adam (the default) or sgd, not {args.solver}")
        batch = args.batch_size or (min(200, n_samples) if n_samples else None)
        wanted = {
            "hidden_layer_sizes": _hidden_sizes(args),
            "solver": "adam" if args.solver == "auto" else args.solver,
            "max_iter": args.epochs or args.max_iter,
            "batch_size": args.batch_size,
            "learning_rate_init": args.lr,
            "learning_rate": getattr(args, "lr_schedule", None),
            "momentum": getattr(args, "momentum", None),
            "dtype": args.dtype,
            "alpha": batch / (args.C * n_samples) if args.C is not None else None,
            "random_state": args.seed,
            "callback": callback,
            "tol": None if args.tol is _NO_TOL else args.tol,
        }
        kwargs = {k: v for k, v in wanted.items() if v is not None or k == "tol" and args.tol is _NO_TOL}
        return MLPClassifier(**kwargs)
    from ..models import SoftmaxRegression

    if args.hidden:
        raise ValueError("--hidden only applies to --model mlp")
    if args.solver == "adam":
        raise ValueError("--solver adam is for --model mlp")
    kwargs = {
        "penalty": None if args.penalty == "none" else args.penalty,
        "C": 1.0 if args.C is None else args.C,
        "solver": args.solver,
        "random_state": args.seed,
        "callback": callback,
    }
    if args.l1_ratio is not None:
        kwargs["l1_ratio"] = args.l1_ratio
    if args.epochs is not None:
        if args.solver != "sgd":
            raise ValueError("--epochs is for --solver sgd; use --max-iter for the other solvers")
        kwargs["max_iter"] = args.epochs
    elif args.max_iter is not None:
        kwargs["max_iter"] = args.max_iter
    if args.tol is _NO_TOL:  # run every epoch
        kwargs["tol"] = None
    elif args.tol is not None:
        kwargs["tol"] = args.tol
    if args.batch_size is not None:
        kwargs["batch_size"] = args.batch_size
    if args.lr is not None:
        kwargs["learning_rate"] = args.lr
    schedule = getattr(args, "lr_schedule", None)
    if schedule == "invscaling":
        raise ValueError("--lr-schedule invscaling is the MLP's; softmax regression's sgd has "
                         "inverse_time (lr / (1 + 0.1 epoch))")
    if schedule is not None:
        kwargs["learning_rate_schedule"] = schedule
    if getattr(args, "momentum", None) is not None:
        kwargs["momentum"] = args.momentum
    if args.dtype is not None:
        kwargs["dtype"] = args.dtype
    return SoftmaxRegression(**kwargs)


def _accuracy_probe(Z, y, classes, n=2000, seed=0):
    """accuracy(info) for the progress bar, on a fixed subsample, when the
    estimator's callback passes its current coefficients."""
    rows = np.random.default_rng(seed).permutation(Z.shape[0])[:n]
    Zs, ys = Z[rows], np.asarray(y)[rows]
    classes = np.asarray(classes)

    def probe(info):
        if info.get("train_accuracy") is not None:  # sgd scores its minibatches for free
            return info["train_accuracy"]
        coef, intercept = info.get("coef"), info.get("intercept")
        if coef is None:
            return None
        logits = Zs @ np.asarray(coef).T
        if intercept is not None:
            logits = logits + np.asarray(intercept)
        return float(np.mean(classes[np.argmax(logits, axis=1)] == ys))

    return probe


def _epoch_based(estimator) -> bool:
    return getattr(estimator, "solver", None) == "sgd" or type(estimator).__name__ == "MLPClassifier"


def _describe(estimator) -> str:
    """One line: the model and how it was fitted."""
    name = type(estimator).__name__
    if hasattr(estimator, "hidden_layer_sizes"):
        hidden = ", ".join(map(str, estimator.hidden_layer_sizes))
        return f"{name} (hidden layers {hidden}, {estimator.activation}, {estimator.solver})"
    solver = getattr(estimator, "solver_", None) or getattr(estimator, "solver", "")
    penalty = getattr(estimator, "penalty", None)
    reg = f", {penalty} penalty, C = {estimator.C:g}" if penalty else ", no penalty"
    return f"{name} ({solver}{reg})"


def _with_column_names(message, pre, estimator):
    """An estimator's message about the matrix it saw (columns ``x0, x1, ...``) in the data's column
    names; for a rank-deficient design with one-hot columns and an intercept, how to code them."""
    names = pre.feature_names_out_

    def name(m):
        j = int(m.group(2))
        return m.group(1) + (names[j] if j < len(names) else f"x{j}")

    def listed(m):
        return "feature(s) [" + re.sub(r"(')x(\d+)(?=')", name, m.group(1)) + "]"

    # the estimator's own forms only (a label such as 'x1' elsewhere in a message is left alone):
    # "feature 'x3'", "x3 = ..." and "... * x3" in a dependence, and the list after "feature(s)"
    message = re.sub(r"feature\(s\) \[([^\]]*)\]", listed, message)
    message = re.sub(r"(feature ')x(\d+)(?=')", name, message)
    message = re.sub(r"((?:^|[(;] ))x(\d+)(?= = )", name, message)
    message = re.sub(r"(\* )x(\d+)\b", name, message)
    message = message.replace("penalty='l2'", "--penalty l2")
    categorical = [c["name"] for c in pre.columns_ if c["type"] == "categorical"]
    if "not identified" in message and categorical and getattr(estimator, "fit_intercept", False):
        message += (f" The one-hot columns of {', '.join(map(repr, categorical))} sum to the intercept: "
                    "without a penalty, code them with --formula 'y ~ ... + C(column)' (which drops the "
                    "first level) or pass --no-fit-intercept.")
    return message


def _fit_with_progress(estimator, Z, y, args, label, sample_weight=None):
    is_epochs = _epoch_based(estimator)
    total = getattr(estimator, "max_iter", None)
    progress = TrainingProgress(
        total=total, unit="epoch" if is_epochs else "it", label=label,
        enabled=None if not args.quiet else False, verbose=0 if args.quiet else args.verbose,
        accuracy=_accuracy_probe(Z, y, np.unique(y)),
    )
    if "callback" in estimator.get_params():
        estimator.set_params(callback=progress)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            estimator.fit(Z, y, sample_weight=sample_weight)
        finally:
            progress.close()  # end the bar's line before anything else is printed
            if "callback" in estimator.get_params():
                estimator.set_params(callback=None)
    seconds = time.perf_counter() - start
    for text in dict.fromkeys(warning_line(w.message) for w in caught):
        print(f"softmaxreg: warning: {text}", file=sys.stderr)
    return seconds, progress.records


def _inference_record(estimator, args, cov_type="nonrobust") -> dict | None:
    """Standard errors etc. of a softmax model, computed while the training
    data is at hand (a loaded model no longer has it)."""
    if not hasattr(estimator, "inference") or args.no_inference:
        return None
    n_params = estimator.coef_.size + estimator.intercept_.size
    if n_params > MAX_INFERENCE_PARAMS:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            table = estimator.summary(alpha=0.05, cov_type=cov_type)
    except Exception as exc:  # inference is a bonus; training succeeded
        _say(args, f"softmaxreg: note: no standard errors ({str(exc).splitlines()[0]})", level=1)
        return None
    rec = _table_record(table)
    names = getattr(args, "_feature_names", None)
    if rec is not None and names:
        # the estimator saw an unnamed matrix: put the encoded column names back
        lookup = {f"x{j}": n for j, n in enumerate(names)}
        for col in rec["columns"]:
            values = rec["data"][col]
            if isinstance(values, list) and any(v in lookup for v in values):
                rec["data"][col] = [lookup.get(v, v) for v in values]
    return rec


def _table_record(table) -> dict | None:
    """A summary table (a DataFrame) as plain columns for the model file."""
    if isinstance(table, pd.DataFrame):
        frame = table.reset_index()
        return {
            "columns": [str(c) for c in frame.columns],
            "data": {str(c): _column_record(frame[c]) for c in frame.columns},
        }
    frame = getattr(table, "frame", None) or getattr(table, "to_frame", None)
    if callable(frame):
        return _table_record(frame())
    if isinstance(frame, pd.DataFrame):
        return _table_record(frame)
    return None


def _column_record(column):
    """A table column as stored: integers (class labels) as int64, other numbers as float64, else text
    (booleans included: True and False as the data write them)."""
    if pd.api.types.is_bool_dtype(column):
        return [str(v) for v in column.tolist()]
    if pd.api.types.is_integer_dtype(column) and not column.isna().any():
        return column.to_numpy(dtype=np.int64)
    if pd.api.types.is_numeric_dtype(column):
        return column.to_numpy(dtype=float)
    return [str(v) for v in column.tolist()]


def _record_to_frame(rec) -> pd.DataFrame:
    return pd.DataFrame({c: rec["data"][c] for c in rec["columns"]})


def _split_train_test(data, args):
    test_data = None
    if args.test is not None:
        test_data = load_data(args.test, data.target, format=args.format,
                              n_features=data.X.shape[1] if args.format == "libsvm" or str(args.test).endswith((".svm", ".libsvm", ".svmlight")) else None)
        return data, test_data
    if args.test_size:
        _check_labels(data.y, data)
        train_rows, test_rows = stratified_split(data.y, args.test_size, seed=args.seed or 0)
        if test_rows.size == 0:
            raise ValueError("--test-size leaves no test rows; use a larger fraction")
        Xt, yt = _subset(data, test_rows)
        Xr, yr = _subset(data, train_rows)
        from copy import copy

        test_data, train_data = copy(data), copy(data)
        test_data.X, test_data.y, test_data.name = Xt, yt, f"{data.name} (held-out {args.test_size:g})"
        train_data.X, train_data.y = Xr, yr
        return train_data, test_data
    if is_builtin(args.data) and args.data.lower() == "fashion-mnist":
        return data, load_data("fashion-mnist:test")
    return data, None


def train_model(args, data, test_data=None, *, label=None) -> tuple[ModelBundle, dict]:
    """Fit the estimator the options describe on ``data``; returns the bundle
    and the metrics on train (and test) data."""
    _check_labels(data.y, data)
    weight_column = getattr(args, "sample_weight", None)
    sample_weight = pop_sample_weight(data, weight_column)
    if (weight_column is not None and test_data is not None and isinstance(test_data.X, pd.DataFrame)
            and weight_column in test_data.X.columns):
        pop_sample_weight(test_data, weight_column)  # evaluated unweighted, as the features
    pre = Preprocessor(standardize=args.standardize, impute=args.impute).fit(
        data.X, data.feature_names, name=repr(data.name), sample_weight=sample_weight)
    for note in pre.notes_:
        _say(args, f"softmaxreg: {note}")
    Z = pre.transform(data.X, repr(data.name))
    estimator = build_estimator(args, n_samples=Z.shape[0])
    estimator.set_params(**estimator_options(args, data.y))
    label = label or (estimator.solver if args.model == "softmax" else "mlp")
    _say(args, f"softmaxreg: training {type(estimator).__name__} ({label}) on "
               f"{Z.shape[0]:,} samples x {Z.shape[1]:,} features, {np.unique(data.y).size} classes")
    try:
        seconds, records = _fit_with_progress(estimator, Z, data.y, args, label, sample_weight)
    except ValueError as exc:
        raise ValueError(_with_column_names(str(exc), pre, estimator)) from None
    bundle = ModelBundle(estimator=estimator, preprocessor=pre, data_info=_data_info(data))
    results = {"train": evaluate_model(bundle, Z, data.y)}
    if test_data is not None:
        _check_labels(test_data.y, test_data, training=False)
        Zt = pre.transform(test_data.X, repr(test_data.name))
        yt, _ = _to_codes(test_data.y, estimator.classes_, repr(test_data.name))
        results["test"] = evaluate_model(bundle, Zt, yt)
    meta = {
        "data": data.name,
        "n_samples": int(Z.shape[0]),
        "n_features": int(Z.shape[1]),
        "fit_seconds": round(seconds, 4),
        "n_iter": int(getattr(estimator, "n_iter_", len(records))),
        "converged": bool(getattr(estimator, "converged_", True)),
        "history": {
            "iteration": np.array([r["iteration"] for r in records], dtype=np.int64),
            "objective": np.array([r["objective"] for r in records], dtype=np.float64),
            "elapsed": np.array([r["elapsed"] for r in records], dtype=np.float64),
        },
        "metrics": {"train": _scalar_metrics(results["train"])},
        "command": "softmaxreg " + " ".join(getattr(args, "argv", []) or []),
    }
    if "test" in results:
        meta["metrics"]["test"] = _scalar_metrics(results["test"])
        meta["test_data"] = test_data.name
    if args.model == "softmax":
        args._feature_names = pre.feature_names_out_
        inf = _inference_record(estimator, args)
        if inf is not None:
            meta["inference"] = inf
            robust = _inference_record(estimator, args, cov_type="HC0")
            if robust is not None:
                meta["inference_HC0"] = robust
    bundle.metadata = meta
    return bundle, results


def cmd_train(args) -> int:
    if getattr(args, "formula", None):
        from ._inference import cmd_train_formula

        return cmd_train_formula(args)
    out_path = args.output
    _check_output_dir(out_path)
    data = load_data(args.data, args.target, format=args.format, max_rows=args.max_rows)
    data, test_data = _split_train_test(data, args)
    bundle, results = train_model(args, data, test_data)
    est = bundle.estimator
    meta = bundle.metadata
    epochs = _epoch_based(est)
    if meta["converged"]:
        status = ", converged"
    elif epochs and getattr(est, "tol", None) is None:
        status = ""  # ran the epochs asked for; there was no stopping rule
    else:
        status = ", stopped at the iteration limit"
    secs = meta["fit_seconds"]
    took = f"{secs:.2f} s" if secs < 60 else format_duration(secs)
    _out(f"trained in {took}, {meta['n_iter']} {'epochs' if epochs else 'iterations'}{status}")
    columns = {"train": _scalar_metrics(results["train"])}
    if "test" in results:
        columns["test"] = _scalar_metrics(results["test"])
    _out(_metrics_table(columns))
    save_model(out_path, bundle)
    _out(f"saved {type(est).__name__} to {out_path}")
    return 0


def _check_output_dir(path) -> None:
    if os.fspath(path) == "-":  # only predict writes to stdout; a binary file there would be garbage
        raise ValueError("-o - (standard output) is for predict's CSV; give this command a file name")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot write {path!r}: the folder {directory!r} does not exist")


# ----------------------------------------------------------------- evaluate
def _warn_unseen(args, bundle):
    """Say how many rows hold categories the training data did not (they encode as all zeros)."""
    unseen = getattr(bundle.preprocessor, "unseen_", None) or {}
    for col, n in unseen.items():
        _say(args, f"softmaxreg: warning: {n} rows of {col!r} hold categories not seen in training (encoded as all zeros)")


def cmd_evaluate(args) -> int:
    bundle = load_model(args.model)
    data = _load_for_model(args.data, bundle, args)
    _check_labels(data.y, data, training=False)
    Z = bundle.transform(data.X, repr(data.name))
    _warn_unseen(args, bundle)
    y, _ = _to_codes(data.y, bundle.classes_, repr(data.name))
    m = evaluate_model(bundle, Z, y, calibrated=True)
    columns = {}
    if bundle.calibration is not None:
        columns["uncalibrated"] = _scalar_metrics(evaluate_model(bundle, Z, y, calibrated=False))
        columns["calibrated"] = _scalar_metrics(m)
    else:
        columns["value"] = _scalar_metrics(m)
    if args.json:
        _out(json.dumps({
            "data": data.name, "n_samples": int(Z.shape[0]), "metrics": columns,
            "classes": [str(c) for c in bundle.classes_],
            "confusion_matrix": m["confusion"].tolist(),
            "precision": m["precision"].tolist(), "recall": m["recall"].tolist(),
            "f1": m["f1"].tolist(), "support": m["support"].tolist(),
        }, indent=1))
        return 0
    _out(f"{data.name}: {Z.shape[0]:,} samples, {len(bundle.classes_)} classes")
    _out(_metrics_table(columns))
    _out()
    _out("confusion matrix (rows: true class, columns: predicted)")
    _out(format_matrix(m["confusion"], [str(c) for c in bundle.classes_]))
    _out()
    _out(_per_class_table(bundle, m))
    return 0


# ----------------------------------------------------------------- predict
_PREDICTION_SUFFIXES = {".csv": "csv", ".csv.gz": "csv", ".tsv": "tsv", ".tsv.gz": "tsv", ".parquet": "parquet",
                        ".pq": "parquet", ".npz": "npz"}


def _prediction_format(path: str) -> str:
    """The format ``-o PATH`` asks for by its suffix; an unknown suffix is refused before any work."""
    if path == "-":
        return "csv"
    lower = path.lower()
    for suffix in sorted(_PREDICTION_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return _PREDICTION_SUFFIXES[suffix]
    raise ValueError(f"-o {path!r}: predictions are written as {', '.join(_PREDICTION_SUFFIXES)}; "
                     "name the file with one of these suffixes (or -o - for CSV on stdout)")


def _write_predictions(frame: pd.DataFrame, path: str) -> None:
    if path == "-":
        frame.to_csv(sys.stdout, index=False)
        return
    _check_output_dir(path)
    fmt = _prediction_format(path)

    def write(fh):
        if fmt == "parquet":
            frame.to_parquet(fh, index=False)
        elif fmt == "npz":
            # labels as fixed-width text (as model files keep classes): an object array needs pickle
            np.savez(fh, **{c: frame[c].to_numpy() if pd.api.types.is_numeric_dtype(frame[c])
                            or pd.api.types.is_bool_dtype(frame[c]) else frame[c].to_numpy(dtype=str)
                            for c in frame.columns})
        else:
            text = frame.to_csv(index=False, float_format="%.17g", sep="\t" if fmt == "tsv" else ",")
            data = text.encode("utf-8")
            if path.lower().endswith(".gz"):
                data = gzip.compress(data, mtime=0)
            fh.write(data)

    atomic_write(path, write)


def cmd_predict(args) -> int:
    _prediction_format(args.output)
    bundle = load_model(args.model)
    data = _load_for_model(args.data, bundle, args, require_target=False)
    Z = bundle.transform(data.X, repr(data.name))
    proba = bundle.predict_proba(Z, transformed=True)
    classes = bundle.classes_
    frame = pd.DataFrame({"prediction": classes[np.argmax(proba, axis=1)]})
    if args.proba:
        for j, c in enumerate(classes):
            frame[f"proba_{c}"] = proba[:, j]
    _warn_unseen(args, bundle)
    _write_predictions(frame, args.output)
    if args.output != "-":
        _say(args, f"softmaxreg: wrote {len(frame):,} predictions to {args.output}")
    return 0


# ----------------------------------------------------------------- calibrate
def cmd_calibrate(args) -> int:
    from ..models import calibration_logits, fit_temperature, fit_vector_scaling

    bundle = load_model(args.model)
    data = _load_for_model(args.data, bundle, args)
    _check_labels(data.y, data, training=False)
    Z = bundle.transform(data.X, repr(data.name))
    y, codes = _to_codes(data.y, bundle.classes_, repr(data.name))
    before = evaluate_model(bundle, Z, y, calibrated=False)
    logits = calibration_logits(bundle.estimator, Z)
    if args.method == "temperature":
        T = fit_temperature(logits, codes)
        bundle.calibration = {"method": "temperature", "temperature": T}
        detail = f"temperature T = {T:.6g}"
    else:
        w, b = fit_vector_scaling(logits, codes, l2=args.l2)
        bundle.calibration = {"method": "vector", "scale": w, "shift": b}
        detail = f"vector scaling, scales {np.array2string(w, precision=3, max_line_width=200)}"
    after = evaluate_model(bundle, Z, y, calibrated=True)
    bundle.metadata = {**bundle.metadata, "calibration_data": data.name,
                       "calibration_samples": int(Z.shape[0]),
                       "calibration_metrics": {"before": _scalar_metrics(before), "after": _scalar_metrics(after)}}
    out_path = args.output or args.model
    _check_output_dir(out_path)
    _out(f"calibrated on {data.name} ({Z.shape[0]:,} samples): {detail}")
    _out(_metrics_table({"before": _scalar_metrics(before), "after": _scalar_metrics(after)}))
    save_model(out_path, bundle)
    _out(f"saved calibrated model to {out_path}")
    return 0


# ----------------------------------------------------------------- summary
def cmd_summary(args) -> int:
    bundle = load_model(args.model)
    est, meta = bundle.estimator, bundle.metadata
    _out(f"{_describe(est)}, "
         f"{len(bundle.classes_)} classes, {len(bundle.feature_names)} features, "
         f"trained on {meta.get('data', '?')} ({meta.get('n_samples', '?')} samples)")
    if bundle.calibration:
        cal = bundle.calibration
        _out("calibration: " + (f"temperature T = {cal['temperature']:.6g}" if cal["method"] == "temperature"
                                else "vector scaling"))
    cov_type = getattr(args, "cov_type", "nonrobust")
    alpha, by_size = getattr(args, "alpha", 0.05), getattr(args, "sort", False)
    rrr = getattr(args, "rrr", False)
    rec = meta.get("inference" if cov_type == "nonrobust" else f"inference_{cov_type}")
    if rec is None and cov_type != "nonrobust" and meta.get("inference") is not None:
        raise ValueError(f"this model file stores no {cov_type} standard errors; train it again "
                         "with this version to have them")
    if rrr and rec is None:
        raise ValueError("--rrr needs the standard errors stored at training (penalty none or l2)")
    if rec is not None:
        frame = summary_frame(_record_to_frame(rec), alpha=alpha, sort=by_size)
        if rrr:
            from ._inference import rrr_frame

            frame = rrr_frame(frame)
        _out(f"coefficients with standard errors ({cov_type}), z statistics, p-values and "
             f"{100 * (1 - alpha):g}% intervals" + (" as relative-risk ratios exp(coef)" if rrr else ""))
        _out(format_table(frame.values.tolist(), list(frame.columns)))
        return 0
    if hasattr(est, "coefs_"):  # a network: its layers instead of a coefficient table
        rows = []
        sizes = [est.coefs_[0].shape[0]] + [w.shape[1] for w in est.coefs_]  # (fan_in, fan_out)
        for i, (w, b) in enumerate(zip(est.coefs_, est.intercepts_)):
            kind = "output" if i == len(est.coefs_) - 1 else f"hidden {i + 1}"
            rows.append([kind, f"{sizes[i]} -> {sizes[i + 1]}", int(w.size + b.size),
                         float(np.sqrt(np.sum(np.asarray(w, dtype=float) ** 2))),
                         float(np.max(np.abs(w)))])
        _out("layers (a network has no per-feature coefficients with standard errors)")
        _out(format_table(rows, ["layer", "shape", "parameters", "weight norm", "max |weight|"]))
        return 0
    if not hasattr(est, "coef_"):
        raise ValueError(f"summary shows a coefficient table; a {type(est).__name__} has none")
    why = ("the model has more coefficients than standard errors are computed for"
           if est.coef_.size + est.intercept_.size > MAX_INFERENCE_PARAMS
           else "no standard errors were stored with this model")
    _out(f"coefficients ({why})")
    names = bundle.feature_names
    limit = args.max_rows or 10
    rows = []
    for k, c in enumerate(bundle.classes_):
        if getattr(est, "fit_intercept", True):
            rows.append([str(c), "(intercept)", float(est.intercept_[k])])
        order = np.argsort(-np.abs(est.coef_[k]), kind="stable") if by_size else np.arange(est.coef_.shape[1])
        for j in order[: limit]:
            rows.append([str(c), names[j] if j < len(names) else f"x{j}", float(est.coef_[k, j])])
    _out(format_table(rows, ["class", "feature", "coef"]))
    return 0


# ----------------------------------------------------------------- report
def cmd_report(args) -> int:
    from ..report import write_report

    bundle = load_model(args.model)
    data = _load_for_model(args.data, bundle, args)
    _check_labels(data.y, data, training=False)
    _check_output_dir(args.output)
    write_report(bundle, data, args.output)
    _say(args, f"softmaxreg: wrote the report to {args.output}")
    return 0


# ----------------------------------------------------------------- datasets
def cmd_datasets(args) -> int:
    rows = [[d["name"], d["description"], d["location"]] for d in dataset_locations()]
    _out(format_table(rows, ["name", "description", "found at"]))
    _out()
    _out("Use a name wherever a data file goes, e.g. 'softmaxreg train iris:train -o iris.srm';")
    _out("':train' and ':test' select a split (Fashion-MNIST's official one, else a fixed 75/25 split).")
    _out("Fashion-MNIST is searched in $SOFTMAXREG_DATA, the user cache and /usr/share/datasets/fashion-mnist.")
    return 0


# ----------------------------------------------------------------- demo
#: Published test accuracy of logistic regression on Fashion-MNIST (the
#: benchmark table the notes cite).
PUBLISHED_ACCURACY = 0.842
_SOLVER_NAMES = {"newton-cg": "Newton-CG", "lbfgs": "L-BFGS"}


def cmd_demo(args) -> int:
    """Fashion-MNIST end to end: the notes' minibatch-SGD recipe and the exact
    solver, calibration on held-out training data, the test table, a report."""
    from types import SimpleNamespace

    from ..models import TemperatureScaling

    rows = 12000 if args.quick else None
    _say(args, "softmaxreg demo: Fashion-MNIST, softmax regression on 784 pixels scaled to [0, 1]")
    train = load_data("fashion-mnist:train", max_rows=rows)
    test = load_data("fashion-mnist:test", max_rows=rows and 2000)
    fit_rows, cal_rows = stratified_split(train.y, 1 / 12, seed=0)
    cal_X, cal_y = train.X[cal_rows], train.y[cal_rows]
    train.X, train.y = train.X[fit_rows], train.y[fit_rows]
    _say(args, f"  {train.X.shape[0]:,} images to train, {cal_y.size:,} held out to calibrate, "
               f"{test.y.size:,} to test (files in {find_fashion_mnist()})")
    base = dict(target=None, format=None, standardize=False, impute=False, model="softmax",
                hidden=None, l1_ratio=None, tol=None, dtype=None, max_iter=None, epochs=None,
                batch_size=None, lr=None, C=1.0, penalty="l2", solver="auto", seed=0,
                quiet=args.quiet, verbose=args.verbose, no_inference=True, argv=["demo"])
    # Both runs minimize the same objective (L2, C = 1: a per-sample penalty of
    # ||W||^2 / (2 n), negligible at this n), so the SGD row shows how close the
    # notes' 10 epochs get to the exact optimum.
    sgd_args = SimpleNamespace(**{**base, "solver": "sgd", "epochs": 10, "tol": _NO_TOL,
                                  "batch_size": 256, "lr": 0.1, "dtype": "float32"})
    # Newton-CG (trust region) reaches the optimum to the tolerance in about ten
    # Newton steps here, faster and closer than L-BFGS's ~450 iterations.
    exact_args = SimpleNamespace(**{**base, "solver": args.solver, "C": 1.0,
                                    "max_iter": args.max_iter or (100 if args.solver == "newton-cg" else 1000)})
    table, bundles = [], {}
    for key, label, run_args in (
        ("sgd", "minibatch SGD (batch 256, lr 0.1, 10 epochs)", sgd_args),
        ("exact", f"exact optimum ({_SOLVER_NAMES[args.solver]}, C = 1)", exact_args),
    ):
        _say(args, f"- {label}")
        bundle, results = train_model(run_args, train, test, label=run_args.solver)
        bundles[key] = bundle
        m = results["test"]
        table.append([label, m["accuracy"], m["log_loss"], m["ece"], f"{bundle.metadata['fit_seconds']:.1f}"])
    exact = bundles["exact"]
    cal = TemperatureScaling(exact.estimator).fit(exact.transform(cal_X), cal_y)
    exact.calibration = {"method": "temperature", "temperature": float(cal.temperature_)}
    Zt = exact.transform(test.X)
    m = evaluate_model(exact, Zt, test.y, calibrated=True)
    table.append([f"exact + temperature scaling (T = {cal.temperature_:.3f})",
                  m["accuracy"], m["log_loss"], m["ece"], None])
    _out()
    _out(f"Fashion-MNIST test set ({test.y.size:,} images)")
    _out(format_table(table, ["model", "accuracy", "log-loss", "ECE", "fit seconds"]))
    _out(f"published test accuracy of logistic regression: {PUBLISHED_ACCURACY:.3f}")
    if not args.no_report:
        from ..report import write_report

        out = args.output
        _check_output_dir(out)
        write_report(exact, test, out,
                     extra_histories={"minibatch SGD (per epoch)": bundles["sgd"].metadata["history"]},
                     extra_weights={"minibatch SGD after 10 epochs (smoother: it stops far from the "
                                    "optimum, where weak regularization lets single pixels matter)":
                                    bundles["sgd"].estimator.coef_},
                     title="softmaxreg demo: Fashion-MNIST")
        _out(f"wrote {out}")
    if args.save:
        save_model(args.save, exact)
        _out(f"saved the calibrated exact model to {args.save}")
    return 0
