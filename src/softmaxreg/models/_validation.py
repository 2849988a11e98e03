"""Input and parameter checks shared by the estimators (errors say what to fix)."""

import numbers

import warnings

import numpy as np
import scipy.sparse as sp

from softmaxreg.functional import all_finite
from softmaxreg.metrics import encode_labels, label_codes, object_array, sorted_labels

__all__ = [
    "compute_dtype",
    "check_params",
    "check_finite",
    "check_l1_ratio",
    "check_sample_weight",
    "class_weight_to_sample_weight",
    "Interval",
    "Options",
    "FloatDType",
    "RandomStateLike",
    "normalize_dtype",
]


class Interval:
    """A real (or integer) parameter in ``[low, high]``; ``open_low`` excludes ``low``."""

    def __init__(self, low=None, high=None, *, open_low=False, integer=False, none_ok=False):
        self.low, self.high, self.open_low = low, high, open_low
        self.integer, self.none_ok = integer, none_ok

    def accepts(self, value):
        if value is None:
            return self.none_ok
        kind = numbers.Integral if self.integer else numbers.Real
        if isinstance(value, bool) or not isinstance(value, kind):
            return False
        if np.isnan(value):
            return False
        if self.low is not None and (value < self.low or (self.open_low and value == self.low)):
            return False
        return self.high is None or value <= self.high

    def describe(self):
        kind = "an integer" if self.integer else "a real number"
        low = "" if self.low is None else (f" > {self.low}" if self.open_low else f" >= {self.low}")
        high = "" if self.high is None else f" and <= {self.high}"
        extra = " or None" if self.none_ok else ""
        return f"{kind}{low}{high}{extra}"


class Options:
    """A parameter taking one of a fixed set of values (strings, None, booleans)."""

    def __init__(self, *values, callable_ok=False, any_hashable=False):
        self.values, self.callable_ok, self.any_hashable = values, callable_ok, any_hashable

    def accepts(self, value):
        if self.callable_ok and callable(value):
            return True
        for v in self.values:
            if value is v or (isinstance(v, str) and isinstance(value, str) and value == v):
                return True
            # NumPy booleans (np.True_) count as the Python booleans they equal.
            if isinstance(v, bool) and isinstance(value, np.bool_) and bool(value) is v:
                return True
        return False

    def describe(self):
        if not self.values:
            return "a callable"
        choices = ", ".join(repr(v) for v in self.values)
        return f"one of {choices}" + (" or a callable" if self.callable_ok else "")


class FloatDType:
    """A compute-dtype parameter: None, or anything ``np.dtype`` reads as float32/float64.

    Accepts ``"float32"``, ``np.float32``, ``np.dtype("float32")`` (and the same
    for float64).
    """

    def accepts(self, value):
        return value is None or normalize_dtype(value) is not None

    def describe(self):
        return "None, 'float32' or 'float64' (or np.float32, np.float64)"


class RandomStateLike:
    """A seed: None, a non-negative integer, a ``np.random.Generator`` or ``RandomState``."""

    def accepts(self, value):
        if value is None or isinstance(value, (np.random.Generator, np.random.RandomState)):
            return True
        return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 0

    def describe(self):
        return "None, an integer >= 0, a numpy Generator or a RandomState"


def normalize_dtype(dtype):
    """``"float32"``/``"float64"`` for any spelling of those dtypes, None otherwise.

    >>> normalize_dtype(np.float32), normalize_dtype("float64"), normalize_dtype("int8")
    ('float32', 'float64', None)
    """
    if dtype is None or isinstance(dtype, bool):
        return None
    try:
        name = np.dtype(dtype).name
    except TypeError:
        return None
    return name if name in ("float32", "float64") else None


def check_params(estimator, constraints):
    """Check ``estimator``'s parameters against a ``{name: constraint}`` table.

    A constraint is an :class:`Interval`, an :class:`Options`, a type (``dict``),
    or a tuple of those (any one may accept).

    Examples
    --------
    >>> class E:
    ...     C = -1.0
    >>> check_params(E(), {"C": Interval(0, None, open_low=True)})
    Traceback (most recent call last):
    ...
    ValueError: C must be a real number > 0, got -1.0.
    """
    for name, rule in constraints.items():
        value = getattr(estimator, name)
        rules = rule if isinstance(rule, tuple) else (rule,)
        if any(_accepts(r, value) for r in rules):
            continue
        wanted = " or ".join(_describe(r) for r in rules)
        raise ValueError(f"{name} must be {wanted}, got {value!r}.")


def _accepts(rule, value):
    if isinstance(rule, type):
        return isinstance(value, rule)
    return rule.accepts(value)


def _describe(rule):
    if isinstance(rule, type):
        return f"a {rule.__name__}"
    return rule.describe()


def compute_dtype(X, dtype):
    """The ``dtype`` argument for ``validate_data`` given the estimator's ``dtype`` parameter.

    ``None`` keeps float32 input as float32 (arrays, sparse matrices, and data
    frames whose columns are all float32) and makes everything else float64.

    Examples
    --------
    >>> compute_dtype(np.zeros((2, 2), dtype=np.float32), None)
    [<class 'numpy.float64'>, <class 'numpy.float32'>]
    >>> compute_dtype(np.zeros(2), "float32")
    <class 'numpy.float32'>
    """
    dtype = normalize_dtype(dtype)
    if dtype == "float32":
        return np.float32
    if dtype == "float64":
        return np.float64
    dtypes = getattr(X, "dtypes", None)  # pandas and polars frames; arrays have .dtype
    if dtypes is not None and hasattr(dtypes, "__iter__"):
        names = [str(d).lower() for d in dtypes]
        if names and all(n == "float32" for n in names):
            return np.float32
    return [np.float64, np.float32]


def check_numeric_columns(X, name="X"):
    """Refuse a DataFrame with columns that are not numbers (text, categories, dates), naming them, before
    NumPy's conversion fails on the first cell it cannot read.

    >>> import pandas as pd
    >>> check_numeric_columns(pd.DataFrame({"a": [1.0], "s": ["x"], "d": pd.to_datetime(["2020-01-01"])}))
    Traceback (most recent call last):
    ...
    ValueError: X has non-numeric columns ['s', 'd']; encode them (e.g. softmaxreg.io.Preprocessor one-hot encodes text and categories) or drop them.
    """
    import pandas as pd

    if not isinstance(X, pd.DataFrame):
        return

    def numbers(column):
        t = column.dtype
        if pd.api.types.is_numeric_dtype(t) and not pd.api.types.is_timedelta64_dtype(t):
            return True
        if t == object:  # numbers held as Python objects convert; text does not
            converted = pd.to_numeric(column, errors="coerce")
            return not (converted.isna() & column.notna()).any()
        return False

    bad = [str(c) for j, c in enumerate(X.columns) if not numbers(X.iloc[:, j])]
    if bad:
        raise ValueError(f"{name} has non-numeric columns {bad}; encode them (e.g. softmaxreg.io.Preprocessor "
                         "one-hot encodes text and categories) or drop them.")


def check_finite(X, name="X", feature_names=None):
    """Raise a ValueError naming the first row and column of ``X`` holding NaN or inf.

    Examples
    --------
    >>> check_finite(np.array([[1.0, 2.0], [3.0, np.nan]]), feature_names=["a", "b"])
    Traceback (most recent call last):
    ...
    ValueError: X contains NaN at row 1, column 1 ('b'); impute or drop it before fitting or predicting.
    """
    if sp.issparse(X):
        data = X.data
        if np.all(np.isfinite(data)):
            return
        coo = X.tocoo()
        bad = np.flatnonzero(~np.isfinite(coo.data))
        order = np.lexsort((coo.col[bad], coo.row[bad]))[0]
        row, col = int(coo.row[bad][order]), int(coo.col[bad][order])
        value = coo.data[bad][order]
    else:
        if all_finite(X):
            return
        row, col = (int(i) for i in np.argwhere(~np.isfinite(X))[0])
        value = X[row, col]
    what = "NaN" if np.isnan(value) else ("inf" if value > 0 else "-inf")
    label = f" ({feature_names[col]!r})" if feature_names is not None else ""
    raise ValueError(
        f"{name} contains {what} at row {row}, column {col}{label}; "
        "impute or drop it before fitting or predicting."
    )


def check_sample_weight(sample_weight, n_samples):
    """Sample weights as float64 of shape (n_samples,): finite, non-negative, not all zero."""
    if sample_weight is None:
        return np.ones(n_samples)
    if isinstance(sample_weight, numbers.Real) and not isinstance(sample_weight, bool):
        sample_weight = np.full(n_samples, float(sample_weight))
    sw = np.asarray(sample_weight)
    if sw.dtype.kind not in "biuf":
        raise ValueError(f"sample_weight must be numeric, got dtype {sw.dtype}.")
    sw = sw.astype(np.float64)
    if sw.shape != (n_samples,):
        raise ValueError(
            f"sample_weight must have shape ({n_samples},) (one weight per row of X), "
            f"got {sw.shape}."
        )
    bad = np.flatnonzero(~np.isfinite(sw) | (sw < 0))
    if bad.size:
        raise ValueError(
            f"sample_weight must be finite and non-negative; row {bad[0]} has {sw[bad[0]]}."
        )
    with np.errstate(over="ignore"):
        total = sw.sum()
    if not total > 0:
        raise ValueError("sample_weight sums to zero; give at least one row a positive weight.")
    if not np.isfinite(total):
        raise ValueError("sample_weight sums to more than float64 can hold; rescale the weights (only their "
                         "ratios matter to the fit).")
    return sw


def class_weight_to_sample_weight(class_weight, classes, codes, sample_weight=None):
    """Per-row multipliers from ``class_weight`` (None, dict label -> weight, or "balanced").

    "balanced" gives class ``k`` the weight ``W / (n_classes * W_k)``, with
    ``W_k`` the total sample weight of class ``k`` and ``W`` that of all rows
    (with unit weights: ``n_samples / (n_classes * count_k)``).  This is
    scikit-learn's convention (``compute_class_weight`` with ``sample_weight``,
    as ``LogisticRegression`` uses it), so that integer sample weights still
    equal repeated rows.

    Examples
    --------
    Three rows of class 0 and one of class 1: the rarer class weighs three times more.

    >>> class_weight_to_sample_weight("balanced", np.array([0, 1]), np.array([0, 0, 0, 1])).tolist()
    [0.666..., 0.666..., 0.666..., 2.0]
    """
    n_classes = len(classes)
    if class_weight is None:
        return np.ones(codes.shape[0])
    if isinstance(class_weight, str) and class_weight == "balanced":
        sw = np.ones(codes.shape[0]) if sample_weight is None else np.asarray(sample_weight)
        totals = np.bincount(codes, weights=sw, minlength=n_classes)
        # A class without weight gets no rows to multiply; avoid dividing by zero.
        weights = sw.sum() / (n_classes * np.where(totals > 0, totals, 1.0))
        return weights[codes]
    if isinstance(class_weight, dict):
        weights = np.ones(n_classes)
        index = {c: k for k, c in enumerate(classes.tolist())}
        for label, value in class_weight.items():
            if label not in index:
                raise ValueError(
                    f"class_weight has label {label!r}, which is not among the classes "
                    f"{classes.tolist()}."
                )
            value = float(value)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"class_weight[{label!r}] must be finite and >= 0, got {value}.")
            weights[index[label]] = value
        return weights[codes]
    raise ValueError(f"class_weight must be None, 'balanced' or a dict, got {class_weight!r}.")


# -- labels of any hashable type ------------------------------------------------


def as_label_array(y):
    """``y`` as a 1-D array when it is a sequence of hashable labels that NumPy would split.

    A list of tuples (``[(0, "a"), (1, "b")]``) would become a 2-D array under
    ``np.asarray``, and a list mixing numbers and strings an array of strings;
    here both become 1-D object arrays holding the labels as they are.
    Anything else (arrays, Series, lists of scalars, a column vector given as
    nested lists) is returned unchanged for the usual checks.

    >>> as_label_array([(0, "a"), (1, "b")]).shape
    (2,)
    >>> as_label_array([[0], [1]])
    [[0], [1]]
    """
    if not isinstance(y, (list, tuple)) or any(isinstance(v, (list, np.ndarray)) for v in y):
        return y
    kinds = {_label_kind(v) for v in y}
    if len(kinds) > 1 or "other" in kinds:
        return object_array(y)
    return y


def _label_kind(v):
    if isinstance(v, (numbers.Number, np.bool_)):
        return "number"
    if isinstance(v, (str, np.str_)):
        return "str"
    return "other"


def check_no_missing_labels(y, name="y"):
    """Refuse missing labels (None, NaN, NaT, pandas' NA) before anything converts ``y``.

    A missing value is no class: taken as one (None sorts as a label of its own)
    it would be predicted back, and pandas' NA cannot even be compared.

    >>> check_no_missing_labels(["a", None, "b"])
    Traceback (most recent call last):
    ...
    ValueError: y holds 1 missing label(s) (None, NaN, NaT or NA), first at row 1; drop or label those rows.
    """
    import pandas as pd

    if sp.issparse(y):
        return
    values = y if hasattr(y, "isna") else np.asarray(y, dtype=object) if isinstance(y, (list, tuple)) else y
    try:
        missing = np.asarray(pd.isna(values), dtype=bool)
    except (TypeError, ValueError):  # something pandas cannot look into: the usual checks decide
        return
    if missing.ndim == 1 and missing.any():
        rows = np.flatnonzero(missing)
        raise ValueError(f"{name} holds {rows.size} missing label(s) (None, NaN, NaT or NA), first at row "
                         f"{rows[0]}; drop or label those rows.")


def check_classes(classes):
    """``classes=`` of ``partial_fit`` as a 1-D array of distinct labels, none missing."""
    check_no_missing_labels(classes, "classes")
    arr = as_label_array(classes)
    arr = np.asarray(arr) if not isinstance(arr, np.ndarray) else arr
    if arr.ndim != 1:
        raise ValueError(f"classes must be a 1-D list of labels, got shape {arr.shape}.")
    if len(set(arr.tolist())) != arr.shape[0]:
        raise ValueError(f"classes lists a label more than once: {arr.tolist()}.")
    return arr


def check_label_targets(y):
    """Accept class labels of any hashable type; reject continuous or multi-output ``y``.

    scikit-learn's ``check_classification_targets`` refuses object arrays of
    tuples or of mixed types (mixed int/str labels); those are valid class
    labels here as long as each is hashable and none is missing
    (:func:`check_no_missing_labels` runs first).  Object
    arrays holding only numbers are checked as numbers, so ``[0.5, 1.7]`` is
    still refused as continuous.
    """
    from sklearn.utils.multiclass import check_classification_targets

    y = np.asarray(y) if not sp.issparse(y) else y
    if isinstance(y, np.ndarray) and y.dtype == object and y.ndim == 1:
        values = y.tolist()
        kinds = {_label_kind(v) for v in values}
        if kinds == {"number"}:
            check_classification_targets(np.asarray(values))
            return
        if kinds == {"str"}:
            check_classification_targets(y)
            return
        for i, v in enumerate(values):
            try:
                hash(v)
            except TypeError:
                raise ValueError(
                    f"y[{i}] = {v!r} is not hashable; class labels must be hashable "
                    "(numbers, strings, tuples, ...)."
                ) from None
            if isinstance(v, float) and v != v:
                raise ValueError(f"y[{i}] is NaN; drop or label the row before fitting.")
        return
    check_classification_targets(y)


def check_l1_ratio(penalty, l1_ratio):
    """Refuse ``penalty="elasticnet"`` without ``l1_ratio``; warn when ``l1_ratio`` disagrees with another penalty.

    scikit-learn 1.8 and later pick L1 or elastic net from ``l1_ratio`` alone;
    here ``penalty`` picks them, so code written for those versions would
    otherwise silently fit another model.
    """
    if penalty == "elasticnet" and l1_ratio is None:
        raise ValueError("penalty='elasticnet' needs l1_ratio in [0, 1].")
    same = {"l1": 1.0, "l2": 0.0}.get(penalty)  # the l1_ratio that agrees with penalty, if any
    if penalty != "elasticnet" and l1_ratio is not None and l1_ratio != same:
        warnings.warn(
            f"l1_ratio={l1_ratio!r} has no effect with penalty={penalty!r}: the penalty is chosen by penalty "
            "(penalty='l1', or penalty='elasticnet' with l1_ratio in [0, 1]).", UserWarning, stacklevel=3)
