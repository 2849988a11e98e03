"""The statistician's commands: ``margins``, ``summary --rrr`` and ``train --formula``.

``softmaxreg margins MODEL DATA [--at mean] [--method dydx] [--dummy] [--count]``
    Marginal effects with delta-method standard errors.  A model file holds
    the coefficients but not the training rows the covariance needs, so DATA
    (normally the training data) is read, encoded as at training, and the
    model is refitted on it starting from its stored coefficients: on the
    training data that is the stored estimate again, and a note says so
    when it is not.
``softmaxreg summary MODEL --rrr``
    The stored coefficient table as relative-risk ratios ``exp(b)`` (Stata's
    ``mlogit, rrr``).
``softmaxreg train DATA --formula "y ~ x1 + np.log(x2) + C(g)" -o MODEL``
    Fits through :func:`softmaxreg.formula.fit`; the model file keeps the
    formula, so ``predict``, ``evaluate`` and ``margins`` take raw columns.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..io import ModelBundle, load_data, load_model, save_model
from ..report import evaluate_model
from ._options import estimator_options, pop_sample_weight

__all__ = ["add_margins_parser", "cmd_margins", "cmd_train_formula", "rrr_frame"]


def add_margins_parser(sub, common, data_options):
    """The ``margins`` sub-command (``common`` and ``data_options`` from ``_main``)."""
    p = sub.add_parser(
        "margins", help="marginal effects with standard errors (Stata's margins, dydx(*))",
        description="Average marginal effects dp/dx of every feature on every class probability, "
                    "with delta-method standard errors, for a model trained with --penalty none. "
                    "DATA is the training data (the covariance needs it).")
    p.add_argument("model", help="model file")
    p.add_argument("data", help="the training data")
    data_options(p)
    p.add_argument("--at", choices=["overall", "mean", "median"], default="overall",
                   help="average over the rows (default), or at the means or medians")
    p.add_argument("--method", choices=["dydx", "eyex", "dyex", "eydx"], default="dydx",
                   help="dp/dx (default), elasticities d(ln p)/d(ln x), dp/d(ln x), d(ln p)/dx")
    p.add_argument("--dummy", action="store_true", help="0/1 features: the change from 0 to 1")
    p.add_argument("--count", action="store_true",
                   help="count features: the centred unit change (p(x+1) - p(x-1)) / 2")
    p.add_argument("--cov-type", choices=["nonrobust", "HC0", "HC1"], default="nonrobust",
                   help="covariance of the coefficients")
    p.add_argument("--alpha", type=float, default=0.05, help="1 - confidence level (default 0.05)")
    common(p)
    p.set_defaults(func=cmd_margins)
    return p


def _refit_on(est, X, y):
    """``est`` refitted on (X, y) from its own coefficients; returns the largest change."""
    if type(est).__name__ != "SoftmaxRegression" or est.penalty is not None:
        raise ValueError(
            "margins needs a softmax regression trained with --penalty none: marginal-effect "
            "standard errors need the covariance of the maximum-likelihood estimate."
        )
    labels = set(np.asarray(y).tolist())
    if labels != set(est.classes_.tolist()):
        raise ValueError(
            f"DATA has classes {sorted(map(str, labels))} but the model "
            f"{sorted(map(str, est.classes_.tolist()))}; give the training data."
        )
    formula = getattr(est, "formula_", None)
    design = formula.transform(X) if formula is not None else X
    before = np.concatenate([est.coef_.ravel(), est.intercept_.ravel()])
    est.set_params(warm_start=True, callback=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(design, y)
    est.formula_ = formula
    after = np.concatenate([est.coef_.ravel(), est.intercept_.ravel()])
    return float(np.max(np.abs(after - before)) / max(1.0, float(np.max(np.abs(before)))))


def cmd_margins(args) -> int:
    from ._commands import _load_for_model, _out, _say

    bundle = load_model(args.model)
    data = _load_for_model(args.data, bundle, args)
    Z = bundle.transform(data.X, repr(data.name))
    change = _refit_on(bundle.estimator, Z, np.asarray(data.y))
    if change > 1e-6:
        _say(args, f"softmaxreg: note: {data.name} is not the data the model was trained on "
                   f"(the refit moved the coefficients by {change:.2g}, relative); the effects "
                   "are those of the refitted model.")
    me = bundle.estimator.marginal_effects(at=args.at, method=args.method, dummy=args.dummy,
                                           count=args.count, alpha=args.alpha,
                                           cov_type=args.cov_type)
    if getattr(bundle.estimator, "feature_names_in_", None) is None:
        me.features = list(bundle.feature_names)  # the encoded columns' names
        me.dummy_features = [me.features[int(f[1:])] for f in me.dummy_features]
        me.count_features = [me.features[int(f[1:])] for f in me.count_features]
    _out(str(me))
    return 0


def rrr_frame(frame):
    """A stored coefficient table (coef, std err, z, P>|z|, bounds) as relative-risk ratios."""
    out = frame.copy()
    est = np.exp(out["coef"].astype(float))
    out["std err"] = est * out["std err"].astype(float)
    for col in out.columns[-2:]:
        out[col] = np.exp(out[col].astype(float))
    out["coef"] = est
    return out.rename(columns={"coef": "rrr"})


def cmd_train_formula(args) -> int:
    """``train --formula``: the design from the formula instead of the preprocessing options."""
    from ..formula import design, fit
    from ._commands import (_check_output_dir, _data_info, _inference_record, _metrics_table,
                            _out, _say, _scalar_metrics, build_estimator)

    if args.model != "softmax":
        raise ValueError("--formula fits softmax regression; drop --model mlp.")
    if args.standardize or args.impute or args.test or args.test_size:
        raise ValueError("--formula replaces --standardize, --impute, --test and --test-size; "
                         "write transformations in the formula.")
    response = args.formula.split("~", 1)[0].strip() if "~" in args.formula else None
    if not response:
        raise ValueError(f"--formula must read 'y ~ terms', got {args.formula!r}.")
    if args.target and args.target != response:
        raise ValueError(f"--target {args.target!r} differs from the formula's {response!r}.")
    _check_output_dir(args.output)
    data = load_data(args.data, response, format=args.format, max_rows=args.max_rows)
    if not hasattr(data.X, "assign"):
        raise ValueError(f"--formula needs a table with named columns; {data.name!r} has none.")
    sample_weight = pop_sample_weight(data, getattr(args, "sample_weight", None))
    frame = data.X.assign(**{response: data.y})
    params = build_estimator(args).get_params()
    params.pop("fit_intercept", None)
    options = estimator_options(args, data.y)
    if "fit_intercept" in options:
        raise ValueError("--formula sets the intercept: write 'y ~ x - 1' to fit none; "
                         "drop --fit-intercept/--no-fit-intercept.")
    params.update(options)
    _say(args, f"softmaxreg: fitting {args.formula!r} on {data.name} ({len(frame):,} rows)")
    estimator = fit(args.formula, frame, sample_weight=sample_weight, **params)
    bundle = ModelBundle(estimator=estimator, preprocessor=None, data_info=_data_info(data))
    rows, y, _ = design(args.formula, frame)  # the rows the fit kept
    results = {"train": evaluate_model(bundle, rows, y)}
    meta = {
        "data": data.name, "n_samples": int(len(rows)), "n_features": int(rows.shape[1]),
        "n_iter": int(estimator.n_iter_), "converged": bool(estimator.converged_),
        "formula": args.formula, "metrics": {"train": _scalar_metrics(results["train"])},
        "command": "softmaxreg " + " ".join(getattr(args, "argv", []) or []),
    }
    args._feature_names = None
    inf = _inference_record(estimator, args)
    if inf is not None:
        meta["inference"] = inf
        robust = _inference_record(estimator, args, cov_type="HC0")  # summary --cov-type HC0, as for train
        if robust is not None:
            meta["inference_HC0"] = robust
    bundle.metadata = meta
    _out(f"design: {', '.join(estimator.feature_names_in_)}"
         + (" (with intercept)" if estimator.fit_intercept else ""))
    _out(_metrics_table({"train": _scalar_metrics(results["train"])}))
    save_model(args.output, bundle)
    _out(f"saved SoftmaxRegression ({args.formula}) to {args.output}")
    return 0

