"""MLPClassifier's table of allowed parameter values and its deprecated parameter names."""

import numbers
import warnings

from softmaxreg.solvers import SCHEDULE_NAMES

from ._validation import FloatDType, Interval, Options, RandomStateLike

__all__ = ["DEPRECATED", "MLP_CONSTRAINTS", "SCHEDULES", "resolve_deprecated"]

DEPRECATED = "deprecated"  # default of a parameter kept only under its former name

# scikit-learn's schedules, then the epoch-indexed ones of softmaxreg.nn.get_schedule
SCHEDULES = ("constant", "invscaling", "adaptive") + tuple(s for s in SCHEDULE_NAMES if s not in ("constant", "adaptive"))

MLP_CONSTRAINTS = {
    "activation": Options("relu", "tanh", "logistic", "sigmoid", "identity"),
    "solver": Options("adam", "sgd"),
    "alpha": Interval(0, None),
    "batch_size": (Options("auto"), Interval(1, None, integer=True)),
    "learning_rate_init": Interval(0, None, open_low=True),
    "power_t": Interval(0, None),
    "max_iter": Interval(1, None, integer=True),
    "shuffle": Options(True, False),
    "random_state": RandomStateLike(),
    "tol": Interval(0, None, none_ok=True),
    "verbose": (Options(True, False), Interval(0, None, integer=True)),
    "warm_start": Options(True, False),
    "nesterovs_momentum": Options(True, False),
    "early_stopping": Options(True, False),
    "validation_fraction": Interval(0, 1, open_low=True),
    "epsilon": Interval(0, None, open_low=True),
    "n_iter_no_change": Interval(1, None, integer=True),
    "class_weight": (Options(None, "balanced"), dict),
    "dtype": FloatDType(),
    "callback": Options(None, callable_ok=True),
}


def _warn(old, new):
    warnings.warn(
        f"MLPClassifier's parameter {old!r} is deprecated and will be removed; use {new} "
        "(scikit-learn's name).", FutureWarning, stacklevel=5,
    )


def resolve_deprecated(est):
    """The settings in force: ``solver``, ``max_iter``, ``lr`` (initial rate) and ``schedule``.

    The former names win when set, with a ``FutureWarning``: ``max_epochs``
    (now ``max_iter``), ``optimizer`` (now ``solver``),
    ``learning_rate_schedule`` (now ``learning_rate``), and a number (or None)
    given as ``learning_rate``, its former meaning (now ``learning_rate_init``;
    None was 0.1 for "sgd" and 0.001 for "adam").
    """
    cfg = {"solver": est.solver, "max_iter": est.max_iter, "lr": est.learning_rate_init,
           "schedule": est.learning_rate}
    if est.max_epochs != DEPRECATED:
        _warn("max_epochs", "max_iter")
        cfg["max_iter"] = est.max_epochs
        if not Interval(1, None, integer=True).accepts(est.max_epochs):
            raise ValueError(f"max_epochs must be an integer >= 1, got {est.max_epochs!r}.")
    if est.optimizer != DEPRECATED:
        _warn("optimizer", "solver")
        if not Options("adam", "sgd").accepts(est.optimizer):
            raise ValueError(f"optimizer must be one of 'adam', 'sgd', got {est.optimizer!r}.")
        cfg["solver"] = est.optimizer
    rate = est.learning_rate
    if rate is None or (isinstance(rate, numbers.Real) and not isinstance(rate, bool)):
        _warn("learning_rate (a number)", "learning_rate_init")
        if rate is not None and not Interval(0, None, open_low=True).accepts(rate):
            raise ValueError(f"learning_rate (the initial rate) must be > 0, got {rate!r}.")
        cfg["lr"] = float(rate) if rate is not None else {"sgd": 0.1, "adam": 1e-3}[cfg["solver"]]
        cfg["schedule"] = "constant"
    if est.learning_rate_schedule != DEPRECATED:
        _warn("learning_rate_schedule", "learning_rate")
        cfg["schedule"] = est.learning_rate_schedule
    return cfg
