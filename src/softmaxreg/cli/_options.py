"""The estimator options of ``train`` and the table options of ``summary``.

``train``: ``--reference-class LABEL``, ``--class-weight balanced|JSON``,
``--sample-weight COLUMN`` (frequency weights, taken out of the features) and
``--fit-intercept/--no-fit-intercept``. ``summary``: ``--cov-type``,
``--alpha`` and ``--sort``. Labels given on the command line are text; they
are matched against the data's labels by their text form.
"""

import argparse
import json

import numpy as np
import pandas as pd
from scipy.stats import norm

__all__ = ["add_train_options", "add_summary_options", "estimator_options", "pop_sample_weight",
           "summary_frame", "COV_TYPES"]

COV_TYPES = ("nonrobust", "HC0")


def add_train_options(p):
    p.add_argument("--reference-class", metavar="LABEL",
                   help="class whose coefficients are fixed at zero (statsmodels/Stata's base outcome)")
    p.add_argument("--class-weight", metavar="balanced|JSON",
                   help='"balanced", or a JSON mapping such as \'{"a": 2, "b": 1}\'')
    p.add_argument("--sample-weight", metavar="COLUMN",
                   help="column of frequency weights (not used as a feature)")
    p.add_argument("--fit-intercept", action=argparse.BooleanOptionalAction, default=None,
                   help="fit an intercept per class (default: yes)")


def add_summary_options(p):
    p.add_argument("--cov-type", choices=COV_TYPES, default="nonrobust",
                   help="covariance of the estimates: model-based (default) or HC0 sandwich")
    p.add_argument("--alpha", type=float, default=0.05, metavar="A",
                   help="confidence intervals at level 1 - A (default 0.05)")
    p.add_argument("--sort", action="store_true",
                   help="order each class's coefficients by size instead of the data's column order")


def _match_label(text, classes, option):
    matches = [c for c in classes.tolist() if str(c) == str(text)]
    if not matches:
        raise ValueError(f"{option} {text!r} is not one of the classes "
                         f"{[str(c) for c in classes.tolist()]}")
    return matches[0]


def estimator_options(args, y) -> dict:
    """Keyword arguments for the estimator from the ``train`` options (labels matched to ``y``)."""
    classes = np.unique(np.asarray(y))
    out = {}
    if getattr(args, "reference_class", None) is not None:
        out["reference_class"] = _match_label(args.reference_class, classes, "--reference-class")
    cw = getattr(args, "class_weight", None)
    if cw is not None:
        if cw == "balanced":
            out["class_weight"] = "balanced"
        else:
            try:
                mapping = json.loads(cw)
            except json.JSONDecodeError as exc:
                raise ValueError(f'--class-weight takes "balanced" or a JSON mapping like '
                                 f'\'{{"a": 2}}\'; {cw!r} is neither ({exc.msg})') from None
            if not isinstance(mapping, dict):
                raise ValueError(f"--class-weight JSON must be a mapping label -> weight, got {cw!r}")
            weights = {}
            for key, value in mapping.items():
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                    raise ValueError(f"--class-weight: the weight of {key!r} must be a number >= 0, "
                                     f"got {value!r}")
                weights[_match_label(key, classes, "--class-weight label")] = float(value)
            out["class_weight"] = weights
    if getattr(args, "fit_intercept", None) is not None:
        out["fit_intercept"] = bool(args.fit_intercept)
    if args.model == "mlp":
        flags = {"reference_class": "--reference-class",
                 "fit_intercept": "--fit-intercept" if out.get("fit_intercept") else "--no-fit-intercept"}
        for key, flag in flags.items():
            if key in out:
                raise ValueError(f"{flag} is for --model softmax")
    return out


def pop_sample_weight(data, column):
    """Take the weight ``column`` out of ``data``'s features; return its values (float64).

    For a Dask data set the column stays lazy: the fit refuses negative, NaN or
    all-zero weights, named by partition.
    """
    if column is None:
        return None
    columns = getattr(data.X, "columns", None)
    if columns is None or column not in columns:
        raise ValueError(f"--sample-weight: {data.name} has no column {column!r} "
                         f"(columns: {', '.join(map(str, data.feature_names))})")
    raw = data.X[column]
    if hasattr(raw, "compute"):
        w = raw.astype(np.float64)
    else:
        w = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=np.float64)
        bad = ~(np.isfinite(w) & (w >= 0))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise ValueError(f"--sample-weight: column {column!r} of {data.name} must hold numbers >= 0; "
                             f"row {row} has {raw.iloc[row]!r}")
        if not (w > 0).any():
            raise ValueError(f"--sample-weight: column {column!r} is zero everywhere")
    data.X = data.X.drop(columns=[column])
    data.feature_names = [n for n in data.feature_names if n != column]
    return w


def summary_frame(frame, alpha=0.05, sort=False):
    """A stored coefficient table with intervals at level ``1 - alpha`` and, with ``sort``,
    each class's rows (the intercept first) by decreasing ``|coef|``."""
    if not 0 < alpha < 1:
        raise ValueError(f"--alpha must be in (0, 1), got {alpha}")
    frame = frame.copy()
    if "std err" in frame.columns:
        lo_col = [c for c in frame.columns if str(c).startswith("[")]
        hi_col = [c for c in frame.columns if str(c).endswith("]")]
        frame = frame.drop(columns=lo_col + hi_col)
        q = norm.ppf(1 - alpha / 2)
        frame[f"[{alpha / 2:g}"] = frame["coef"] - q * frame["std err"]
        frame[f"{1 - alpha / 2:g}]"] = frame["coef"] + q * frame["std err"]
    if sort:
        key_col = "class" if "class" in frame.columns else frame.columns[0]
        feat_col = "feature" if "feature" in frame.columns else frame.columns[1]
        is_intercept = frame[feat_col].astype(str).isin(["intercept", "(intercept)"])
        order = pd.DataFrame({"cls": pd.Categorical(frame[key_col], frame[key_col].unique()),
                              "first": ~is_intercept, "size": -frame["coef"].abs()})
        frame = frame.loc[order.sort_values(["cls", "first", "size"], kind="stable").index]
    return frame
