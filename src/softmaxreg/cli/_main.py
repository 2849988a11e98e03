"""The ``softmaxreg`` command line: argument parsing and error reporting.

Exit status: 0 on success, 2 for bad input or usage (one line on stderr
saying what is wrong and what to do; ``--debug`` adds the traceback), 130
when interrupted with Ctrl-C (nothing half-written is left behind), 1 for an
internal error.
"""

from __future__ import annotations

import argparse
import sys
import traceback
import warnings

from . import _commands, _compile, _dask, _inference, _skipgram
from ._dask import add_dask_options, with_dask
from ._export import add_export_parser
from ._options import add_summary_options, add_train_options

__all__ = ["main", "build_parser"]

_DESCRIPTION = """\
Softmax (multinomial logistic) regression from the shell: train, evaluate,
calibrate and inspect models on CSV, Parquet, NPZ or LibSVM files, or on the
built-in data sets (fashion-mnist, digits, iris, wine)."""

_EPILOG = """\
examples:
  softmaxreg train data.csv --target species --standardize --test-size 0.2 -o model.srm
  softmaxreg evaluate model.srm test.csv
  softmaxreg calibrate model.srm validation.csv
  softmaxreg predict model.srm new.csv -o predictions.csv --proba
  softmaxreg report model.srm test.csv -o report.html
  softmaxreg export model.srm -o model.onnx
  softmaxreg train 'data/*.parquet' --target y --dask local:2 -o model.srm
  softmaxreg demo
  softmaxreg skipgram corpus.txt --vector-size 100 --window 5 --epochs 5 -o vectors.txt
"""


def _version() -> str:
    from .. import __version__

    return __version__


def _positive_float(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not v > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return v


def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text}")
    return v


def _fraction(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction, got {text!r}") from None
    if not 0.0 <= v < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return v


def _common(p: argparse.ArgumentParser, top: bool = False) -> None:
    """Options accepted both before and after the sub-command."""
    default = (lambda v: v) if top else (lambda v: argparse.SUPPRESS)
    p.add_argument("-q", "--quiet", action="store_true", default=default(False),
                   help="print only results (no notes, no progress bar)")
    p.add_argument("-v", "--verbose", action="count", default=default(0),
                   help="more output: one line per iteration instead of a bar")
    p.add_argument("--debug", action="store_true", default=default(False),
                   help="show the traceback of an error")


def _data_options(p, target=True):
    if target:
        p.add_argument("--target", metavar="COL",
                       help="label column (default: a column named target/label/class/y)")
    p.add_argument("--format", choices=["csv", "tsv", "parquet", "npz", "libsvm"],
                   help="file format (default: from the file name)")
    p.add_argument("--max-rows", type=_positive_int, metavar="N",
                   help="use only the first N rows")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="softmaxreg", description=_DESCRIPTION, epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"softmaxreg {_version()}")
    _common(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("train", help="fit a model and save it",
                       description="Fit softmax regression (or a small MLP) and save it to a model file.")
    p.add_argument("data", help="training data: a file or a built-in data set name")
    _data_options(p)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--test", metavar="DATA", help="evaluate on this data after training")
    g.add_argument("--test-size", type=_fraction, metavar="F",
                   help="hold out this stratified fraction of the data for testing")
    p.add_argument("-o", "--output", required=True, metavar="MODEL", help="model file to write (.srm)")
    p.add_argument("--model", choices=["softmax", "mlp"], default="softmax",
                   help="softmax regression (default) or a multilayer perceptron")
    p.add_argument("--hidden", action="append", metavar="N[,N...]",
                   help="hidden layer widths for --model mlp (default 100)")
    p.add_argument("--solver", choices=["auto", "lbfgs", "newton-cg", "sgd", "proximal", "adam"], default="auto",
                   help="optimizer (default: newton-cg for L2, proximal for L1; adam for --model mlp)")
    p.add_argument("--penalty", choices=["l2", "l1", "elasticnet", "none"], default="l2")
    p.add_argument("--C", type=_positive_float, metavar="C", help="inverse regularization strength (default 1)")
    p.add_argument("--l1-ratio", type=float, metavar="R", help="elastic-net mixing in [0, 1]")
    p.add_argument("--epochs", type=_positive_int, metavar="N", help="epochs for --solver sgd and --model mlp")
    p.add_argument("--max-iter", type=_positive_int, metavar="N", help="iteration limit")
    p.add_argument("--tol", type=_positive_float, metavar="TOL", help="stopping tolerance")
    p.add_argument("--batch-size", type=_positive_int, metavar="N", help="minibatch size for sgd (default min(256, ceil(n / 50))) and the MLP (default min(200, n))")
    p.add_argument("--lr", type=_positive_float, metavar="RATE", help="learning rate for sgd (default 0.1) and the MLP's initial rate (default 0.001)")
    p.add_argument("--lr-schedule", choices=["constant", "adaptive", "invscaling", "inverse_time", "cosine",
                                             "step", "exponential"],
                   help="learning-rate schedule for sgd and the MLP (default constant; adaptive divides "
                        "the rate by 5 where the stopping rule would stop)")
    p.add_argument("--momentum", type=_fraction, metavar="MU",
                   help="momentum for sgd (default 0) and the MLP's sgd (default 0.9), in [0, 1)")
    p.add_argument("--dtype", choices=["float32", "float64"], help="compute precision")
    p.add_argument("--standardize", action="store_true",
                   help="scale numeric columns to zero mean, unit variance (stored with the model)")
    p.add_argument("--impute", action="store_true",
                   help="fill missing values (mean / most frequent) instead of refusing them")
    p.add_argument("--seed", type=int, default=0, help="random seed (splits, sgd)")
    p.add_argument("--no-inference", action="store_true",
                   help="skip computing standard errors for 'summary'")
    add_train_options(p)
    p.add_argument("--formula", metavar="'Y ~ TERMS'",
                   help="fit the design of a formula (formulaic, e.g. 'y ~ x1 + np.log(x2) + C(g)')")
    add_dask_options(p, train=True)
    _common(p)
    p.set_defaults(func=with_dask(_commands.cmd_train, _dask.cmd_train))

    p = sub.add_parser("evaluate", help="accuracy, log-loss, Brier, ECE, confusion matrix",
                       description="Evaluate a model on labelled data.")
    p.add_argument("model", help="model file")
    p.add_argument("data", help="labelled data: a file or a built-in data set name")
    _data_options(p)
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    add_dask_options(p)
    _common(p)
    p.set_defaults(func=with_dask(_commands.cmd_evaluate, _dask.cmd_evaluate))

    p = sub.add_parser("predict", help="predict classes (and probabilities)",
                       description="Write one prediction per row (CSV, Parquet or NPZ by suffix; '-' for stdout).")
    p.add_argument("model")
    p.add_argument("data")
    _data_options(p)
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="output file, or - for stdout")
    p.add_argument("--proba", action="store_true", help="also write each class's probability")
    add_dask_options(p)
    _common(p)
    p.set_defaults(func=with_dask(_commands.cmd_predict, _dask.cmd_predict))

    p = sub.add_parser("calibrate", help="fit a temperature on held-out data",
                       description="Fit temperature scaling (Guo et al. 2017) or vector scaling on held-out "
                                   "data by minimizing the log-loss, and store it in the model.")
    p.add_argument("model")
    p.add_argument("data", help="held-out labelled data (not the training data)")
    _data_options(p)
    p.add_argument("--method", choices=["temperature", "vector"], default="temperature")
    p.add_argument("--l2", type=float, default=0.0, help="vector scaling: penalty pulling scales to 1")
    p.add_argument("-o", "--output", metavar="MODEL", help="write here instead of updating MODEL")
    _common(p)
    p.set_defaults(func=_commands.cmd_calibrate)

    p = sub.add_parser("summary", help="coefficient table with standard errors",
                       description="Coefficients with standard errors, z, p-values and 95% intervals.")
    p.add_argument("model")
    p.add_argument("--max-rows", type=_positive_int, metavar="N",
                   help="without standard errors: the first N coefficients per class (largest with --sort)")
    add_summary_options(p)
    p.add_argument("--rrr", action="store_true",
                   help="relative-risk ratios exp(coef) with exponentiated intervals (Stata's rrr)")
    _common(p)
    p.set_defaults(func=_commands.cmd_summary)

    _inference.add_margins_parser(sub, _common, _data_options)

    p = sub.add_parser("report", help="write a self-contained HTML report",
                       description="One HTML file (no network needed to view it): training curves, "
                                   "confusion matrix, reliability diagrams, per-class metrics, weights.")
    p.add_argument("model")
    p.add_argument("data", help="labelled evaluation data")
    _data_options(p)
    p.add_argument("-o", "--output", default="report.html", metavar="HTML")
    add_dask_options(p)
    _common(p)
    p.set_defaults(func=with_dask(_commands.cmd_report, _dask.cmd_report))

    add_export_parser(sub, _common)

    p = sub.add_parser("demo", help="Fashion-MNIST end to end",
                       description="Train on Fashion-MNIST with the notes' minibatch-SGD recipe and "
                                   "the exact solver, calibrate, print test accuracy, write report.html.")
    p.add_argument("-o", "--output", default="report.html", metavar="HTML")
    p.add_argument("--save", metavar="MODEL", help="also save the calibrated exact model")
    p.add_argument("--quick", action="store_true", help="a fifth of the data, for a fast look")
    p.add_argument("--solver", choices=["newton-cg", "lbfgs"], default="newton-cg",
                   help="full-batch solver for the exact optimum (default newton-cg)")
    p.add_argument("--max-iter", type=_positive_int, metavar="N",
                   help="iteration limit of that solver (default 100 for newton-cg, 1000 for lbfgs)")
    p.add_argument("--no-report", action="store_true")
    _common(p)
    p.set_defaults(func=_commands.cmd_demo)

    p = sub.add_parser("compile", help="compile and cache the fast kernels ahead of use",
                       description="Compile the Numba kernels (softmax family, loss passes, SGD epoch, "
                                   "prediction) for float32 and float64 and cache them on disk, so that "
                                   "no later call waits for a compilation. make's install step runs it.")
    p.add_argument("--jobs", "-j", type=_positive_int, metavar="N",
                   help="compile in N processes at once (default: one per core)")
    _common(p)
    p.set_defaults(func=_compile.cmd_compile)

    p = sub.add_parser("datasets", help="list the built-in data sets and where they are")
    _common(p)
    p.set_defaults(func=_commands.cmd_datasets)

    _skipgram.add_parser(sub, _common, _positive_int, _positive_float)
    return parser


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    if isinstance(exc, KeyError) and text.startswith("'"):
        text = text.strip("'")
    return " ".join(text.split()) or type(exc).__name__


def _show_warning(message, category, filename, lineno, file=None, line=None):
    print(f"softmaxreg: warning: {_commands.warning_line(message)}", file=sys.stderr)


def main(argv=None) -> int:
    """Run the command line; returns the exit status (the entry point exits with it)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    args.argv = argv
    shown = warnings.showwarning
    if not args.debug:  # warnings as one line each, like errors
        warnings.showwarning = _show_warning
    try:
        return _run(args)
    finally:
        warnings.showwarning = shown


def _run(args) -> int:
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("\nsoftmaxreg: interrupted; no file was left half-written", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `softmaxreg predict ... -o - | head`
        return 0
    except (ValueError, OSError, RuntimeError) as exc:  # bad input, unreadable or unwritable files
        if args.debug:
            traceback.print_exc()
        print(f"softmaxreg: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:  # a bug: say so, briefly
        if args.debug:
            traceback.print_exc()
        print(f"softmaxreg: internal error: {type(exc).__name__}: {_one_line(exc)} "
              "(rerun with --debug for the traceback and please report it)", file=sys.stderr)
        return 1
