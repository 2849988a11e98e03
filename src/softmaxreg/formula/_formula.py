r"""Formulas on formulaic: the design of a data frame, a fit, and the spec that redoes it.

``design(formula, data) -> (X, y, spec)``: the right-hand side materialized
by formulaic (statsmodels' and patsy's column names: ``np.log(x2)``,
``C(region)[T.b]``, ``x1:x3``), without its intercept column, which the
estimator's ``fit_intercept`` takes over (``"y ~ x - 1"`` or ``"y ~ 0 + x"``
fit without one); ``y`` is the column named on the left, as labels.  Rows
with a missing value in a used column are dropped (formulaic's default), and
so are their labels and weights.

``spec.transform(data)`` applies the same formula to new rows with the
levels and states learnt from the training data (a level missing from new
data still gets its column; an unseen level is an error), so ``predict`` on a
data frame of raw columns gives the design the model was fitted on.
"""

from __future__ import annotations

import json
import warnings

import numpy as np

__all__ = ["FormulaSpec", "design", "fit"]

_INTERCEPT = "Intercept"


def _formulaic():
    try:
        import formulaic
    except ImportError:
        raise ImportError(
            "formulas need the optional package formulaic: pip install 'softmaxreg[formula]'."
        ) from None
    return formulaic


def _split(formula):
    if not isinstance(formula, str) or formula.count("~") != 1:
        raise ValueError(
            f"formula must be a string 'y ~ terms' with one '~', got {formula!r}."
        )
    lhs, rhs = (part.strip() for part in formula.split("~"))
    if not lhs or not rhs:
        raise ValueError(f"formula {formula!r} needs a response on the left and terms on the right.")
    return lhs, rhs


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


class FormulaSpec:
    """What applies a fitted formula to new data: the formula and formulaic's learnt state.

    Parameters
    ----------
    formula : str
        ``"y ~ terms"``.
    model_spec : formulaic.ModelSpec
        The right-hand side's spec from the training data.

    Attributes
    ----------
    response : str
        The left-hand side (a column of the data).
    feature_names : list of str
        Design columns, intercept excluded.
    fit_intercept : bool
        Whether the formula has an intercept.
    """

    def __init__(self, formula, model_spec, columns=None):
        self.formula = formula
        self.response, _ = _split(formula)
        self.model_spec = model_spec
        columns = list(model_spec.column_names if columns is None else columns)
        self.fit_intercept = _INTERCEPT in columns
        self.feature_names = [c for c in columns if c != _INTERCEPT]
        self.columns = columns

    def transform(self, data):
        """The design of new rows, DataFrame of shape (n_rows, n_features), float64.

        ``data`` is anything with columns (a pandas DataFrame, a dict of
        arrays); something else (an array) is taken to be the design already,
        and so is a frame whose columns are exactly the design's.
        """
        columns = getattr(data, "columns", None)
        if columns is None and not isinstance(data, dict):
            return data
        if columns is not None and list(map(str, columns)) == self.feature_names:
            return data
        import pandas as pd

        frame = data if columns is not None else pd.DataFrame(data)
        absent = sorted(set(getattr(self.model_spec, "required_variables", ())) - set(map(str, frame.columns)))
        if absent:
            raise ValueError(f"the data lack the column(s) {absent} that the formula {self.formula!r} uses.")
        from formulaic.errors import DataMismatchWarning

        with warnings.catch_warnings():
            # formulaic turns a level unseen in training into NaN and then into the
            # base level's row of zeros: a silent wrong answer, so refuse it.
            warnings.simplefilter("error", DataMismatchWarning)
            try:
                matrix = self.model_spec.get_model_matrix(frame, na_action="raise")
            except DataMismatchWarning as exc:
                raise ValueError(f"the data do not fit the formula's training levels: {exc}") from None
        missing = [c for c in self.feature_names if c not in matrix.columns]
        if missing:
            raise ValueError(f"the formula gave no columns {missing} on these data.")
        return matrix[self.feature_names].astype(np.float64)

    def to_dict(self):
        """Plain JSON values: the formula and the learnt levels (for the model file)."""
        encoder = {}
        for factor, (kind, state) in self.model_spec.encoder_state.items():
            kept = {}
            if "categories" in state:
                kept["categories"] = [_plain(v) for v in state["categories"]]
            encoder[str(factor)] = [kind.value, kept]
        out = {"formula": self.formula, "rhs": str(self.model_spec.formula),
               "encoder_state": encoder, "transform_state": self.model_spec.transform_state,
               "columns": self.columns}
        try:
            json.dumps(out)
        except TypeError:
            raise ValueError(
                "this formula uses a stateful transform whose state cannot be stored as JSON; "
                "transform the column before the formula."
            ) from None
        return out

    @classmethod
    def from_dict(cls, d):
        """Rebuild from :meth:`to_dict` (the design columns are the stored ones)."""
        formulaic = _formulaic()
        from formulaic.parser.types import Factor

        encoder = {k: (Factor.Kind(kind), dict(state)) for k, (kind, state) in
                   d["encoder_state"].items()}
        spec = formulaic.ModelSpec(formula=d["rhs"], encoder_state=encoder,
                                   transform_state=dict(d.get("transform_state") or {}))
        return cls(d["formula"], spec, columns=[str(c) for c in d["columns"]])

    def __repr__(self):
        return f"FormulaSpec({self.formula!r})"


def design(formula, data):
    """Design matrix, labels and spec of ``formula`` on ``data``.

    Parameters
    ----------
    formula : str
        ``"y ~ x1 + np.log(x2) + C(region) + x1:x3"``.
    data : pandas.DataFrame
        Holds the response and every variable of the formula.

    Returns
    -------
    X : pandas.DataFrame of shape (n_rows, n_features)
        The terms' columns (no intercept), rows with missing values dropped.
    y : ndarray of shape (n_rows,)
    spec : FormulaSpec

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"y": ["a", "b", "a", "b"], "x": [1.0, 2.0, 4.0, 8.0],
    ...                    "g": ["u", "v", "w", "u"]})
    >>> X, y, spec = design("y ~ np.log2(x) + C(g)", df)
    >>> list(X.columns), X["np.log2(x)"].tolist(), spec.fit_intercept
    (['np.log2(x)', 'C(g)[T.v]', 'C(g)[T.w]'], [0.0, 1.0, 2.0, 3.0], True)
    """
    X, y, spec, _ = _design(formula, data)
    return X, y, spec


def _design(formula, data):
    """:func:`design`, and the positions in ``data`` of the rows kept."""
    formulaic = _formulaic()
    lhs, rhs = _split(formula)
    columns = getattr(data, "columns", None)
    if columns is None:
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}.")
    if lhs not in columns:
        raise ValueError(
            f"the left side of the formula, {lhs!r}, must name a column of the data "
            f"(columns: {list(columns)})."
        )
    # Rows are tracked by position: the data's own index may repeat labels (after pd.concat).
    matrix = formulaic.model_matrix(rhs, data.reset_index(drop=True))
    spec = FormulaSpec(formula, matrix.model_spec)
    rows = np.asarray(matrix.index, dtype=np.intp)
    y = np.asarray(data[lhs])[rows]
    if any(v is None or (isinstance(v, float) and np.isnan(v)) for v in y.tolist()):
        raise ValueError(f"the response {lhs!r} has missing values; drop those rows first.")
    X = matrix[spec.feature_names].astype(np.float64)
    X.index = data.index[rows]
    return X, y, spec, rows


def fit(formula, data, *, sample_weight=None, **params):
    """Fit a :class:`~softmaxreg.SoftmaxRegression` to the design of a formula.

    Parameters
    ----------
    formula : str
        ``"y ~ terms"`` in formulaic's (patsy's) grammar.
    data : pandas.DataFrame
    sample_weight : array_like of shape (n_rows_of_data,), default=None
        One weight per row of ``data`` (rows dropped for missing values lose theirs).
    **params
        Estimator parameters (``penalty=None``, ``reference_class``, ...);
        ``fit_intercept`` comes from the formula.

    Returns
    -------
    SoftmaxRegression
        Fitted, with ``feature_names_in_`` the terms and ``formula_`` the
        :class:`FormulaSpec` that ``predict``, ``predict_proba``,
        ``marginal_effects``, ... apply to a data frame of raw columns.
    """
    from softmaxreg.models import SoftmaxRegression

    X, y, spec, rows = _design(formula, data)
    if "fit_intercept" in params and bool(params["fit_intercept"]) != spec.fit_intercept:
        raise ValueError(
            "fit_intercept comes from the formula (write '- 1' or '0 +' to drop the intercept); "
            "do not pass it."
        )
    params["fit_intercept"] = spec.fit_intercept
    if sample_weight is not None:
        sample_weight = np.asarray(sample_weight, dtype=np.float64)
        if sample_weight.shape != (len(data),):
            raise ValueError(
                f"sample_weight must have one entry per row of data ({len(data)}), "
                f"got shape {sample_weight.shape}."
            )
        sample_weight = sample_weight[rows]
    model = SoftmaxRegression(**params)
    model.fit(X, y, sample_weight=sample_weight)
    model.formula_ = spec
    return model
