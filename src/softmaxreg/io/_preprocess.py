"""Turn raw features into the numeric matrix a model sees, and replay it later.

:class:`Preprocessor` learns, from the training data only,

* which columns are numeric (kept as they are) and which are categorical
  (string, category or boolean-like text: one-hot encoded, one column per
  category seen in training, named ``column=value``);
* optionally the fill values for missing entries (``impute=True``: the
  training mean for numeric columns, the most frequent value for categorical
  ones); without it, missing values are an error that names the columns;
* optionally the standardization ``(x - mean) / std`` of the numeric columns
  (``standardize=True``; one-hot columns stay 0/1; sparse input is only
  scaled, never centred, so that it stays sparse).

Its state is plain JSON (:meth:`Preprocessor.to_dict`), stored in the model
file, so ``softmaxreg predict`` takes the same raw data as ``train``.
"""

from __future__ import annotations

import collections

import numpy as np
import pandas as pd
import scipy.sparse as sp

__all__ = ["Preprocessor"]


def _rows(mask: np.ndarray, limit: int = 3) -> str:
    idx = np.flatnonzero(mask)[:limit] + 1
    more = ", ..." if mask.sum() > limit else ""
    return ", ".join(map(str, idx)) + more


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


class Preprocessor:
    """Encoding, imputation and standardization fitted on training data.

    Parameters
    ----------
    standardize : bool, default=False
        Scale numeric columns to zero mean and unit variance (the training
        statistics; a constant column keeps scale 1).
    impute : bool, default=False
        Fill missing values instead of refusing them.

    Attributes
    ----------
    kind_ : {"frame", "array", "sparse"}
        The input type it was fitted on.
    columns_ : list of dict
        Per input column: ``name``, ``type`` ("numeric" or "categorical"),
        ``categories`` (categorical only) and ``fill`` (the imputed value).
    feature_names_in_ : list of str
    feature_names_out_ : list of str
        Names of the encoded columns, e.g. ``["age", "color=blue", "color=red"]``.
    mean_, scale_ : ndarray of shape (n_features_out,)
        Standardization; 0 and 1 where a column is not standardized.

    Examples
    --------
    >>> frame = pd.DataFrame({"size": [1.0, 2.0, 3.0], "color": ["red", "blue", "red"]})
    >>> pre = Preprocessor(standardize=True).fit(frame)
    >>> pre.feature_names_out_
    ['size', 'color=blue', 'color=red']
    >>> pre.transform(frame).round(4)    # size: mean 2, std sqrt(2/3)
    array([[-1.2247,  0.    ,  1.    ],
           [ 0.    ,  1.    ,  0.    ],
           [ 1.2247,  0.    ,  1.    ]])
    """

    def __init__(self, standardize: bool = False, impute: bool = False):
        self.standardize = standardize
        self.impute = impute

    # ------------------------------------------------------------------ fit
    def fit(self, X, feature_names=None, name: str = "the data", sample_weight=None) -> "Preprocessor":
        """Learn the encoding from ``X`` (DataFrame, ndarray or sparse matrix).

        ``sample_weight`` (frequency weights, one per row) weights the
        statistics: the standardization's means and variances and the imputed
        values, so that a row of weight 2 counts as that row twice.
        """
        self.notes_: list[str] = []
        if not isinstance(X, pd.DataFrame) and not sp.issparse(X):
            try:
                X = np.asarray(X)
            except ValueError:  # ragged nested lists
                raise ValueError(f"{name}: features must be a 2-D table (rows of equal length)") from None
            if X.ndim != 2:
                raise ValueError(f"{name}: features must be a 2-D table, got {X.ndim} dimension(s)")
        if X.shape[0] == 0 or X.shape[1] == 0:
            raise ValueError(f"{name}: nothing to fit on ({X.shape[0]} rows, {X.shape[1]} columns)")
        w = self._check_weights(sample_weight, X.shape[0], name)
        if isinstance(X, pd.DataFrame):
            self.kind_ = "frame"
            self.columns_ = [self._fit_column(X[c], str(c), name, w) for c in X.columns]
            self._check_missing_frame(X, name)
        else:
            self.kind_ = "sparse" if sp.issparse(X) else "array"
            if not sp.issparse(X):
                X = np.asarray(X)
                if X.ndim != 2 or X.dtype.kind not in "biuf":
                    raise ValueError(f"{name}: features must be a 2-D numeric array")
            names = list(feature_names) if feature_names is not None else [
                f"x{j}" for j in range(X.shape[1])
            ]
            fills = self._fit_array_fill(X, names, name, w)
            self.columns_ = [
                {"name": n, "type": "numeric", "fill": f} for n, f in zip(names, fills)
            ]
        self.feature_names_in_ = [c["name"] for c in self.columns_]
        out = []
        for c in self.columns_:
            if c["type"] == "numeric":
                out.append(c["name"])
            else:
                out.extend(f"{c['name']}={v}" for v in c["categories"])
        dup = sorted(n for n, count in collections.Counter(out).items() if count > 1)
        if dup:
            raise ValueError(
                f"{name}: the encoded columns {dup} would have the same name (a one-hot column "
                "'col=value' equals another column's name); rename that column"
            )
        self.feature_names_out_ = out
        self.mean_ = np.zeros(len(out))
        self.scale_ = np.ones(len(out))
        if self.standardize:
            Z = self._encode(X, name, scale=False)
            numeric = self._numeric_mask()
            if w is not None:
                share = w / w.sum()
                mean = np.asarray(Z.T @ share).ravel()
                if sp.issparse(Z):
                    var = np.asarray(Z.multiply(Z).T @ share).ravel() - mean**2
                else:
                    var = ((Z - mean) ** 2).T @ share
            elif sp.issparse(Z):
                mean = np.asarray(Z.mean(axis=0)).ravel()
                var = np.asarray(Z.multiply(Z).mean(axis=0)).ravel() - mean**2
            else:
                mean, var = Z.mean(axis=0), Z.var(axis=0)
            std = np.sqrt(np.maximum(var, 0.0))
            std[~(std > 1e-12 * np.maximum(1.0, np.abs(mean)))] = 1.0
            self.scale_ = np.where(numeric, std, 1.0)
            if self.kind_ != "sparse":
                self.mean_ = np.where(numeric, mean, 0.0)
        return self

    def _numeric_mask(self) -> np.ndarray:
        mask = []
        for c in self.columns_:
            if c["type"] == "numeric":
                mask.append(True)
            else:
                mask.extend([False] * len(c["categories"]))
        return np.asarray(mask, dtype=bool)

    @staticmethod
    def _check_weights(sample_weight, n, name):
        if sample_weight is None:
            return None
        w = np.asarray(sample_weight, dtype=np.float64)
        if w.shape != (n,):
            raise ValueError(f"{name}: sample_weight has shape {w.shape}; expected ({n},), one per row")
        with np.errstate(over="ignore"):
            total = w.sum()
        if not (np.isfinite(w).all() and (w >= 0).all() and 0 < total < np.inf):
            raise ValueError(f"{name}: sample_weight must be finite, >= 0, not all zero, and sum to a finite number")
        return w

    def _fit_column(self, col: pd.Series, cname: str, name: str, w=None) -> dict:
        if pd.api.types.is_complex_dtype(col):
            raise ValueError(f"{name}: column {cname!r} holds complex numbers; give real features")
        if pd.api.types.is_bool_dtype(col) or pd.api.types.is_numeric_dtype(col):
            values = pd.to_numeric(col, errors="coerce").astype(float)
            spec = {"name": cname, "type": "numeric", "fill": None}
            seen = values.notna().to_numpy()
            finite = values[seen]
            if np.isinf(finite.to_numpy()).any():
                raise ValueError(
                    f"{name}: column {cname!r} holds infinite values (rows "
                    f"{_rows(np.isinf(values.to_numpy()))}); replace them"
                )
            if self.impute and finite.size:
                if w is not None and w[seen].sum() > 0:
                    spec["fill"] = float(np.average(finite.to_numpy(), weights=w[seen]))
                else:
                    spec["fill"] = float(finite.mean())
            return spec
        if pd.api.types.is_datetime64_any_dtype(col):
            raise ValueError(
                f"{name}: column {cname!r} holds dates; convert it to numbers "
                "(e.g. days since a reference date) or drop it"
            )
        present = col[col.notna()]
        if not isinstance(col.dtype, pd.CategoricalDtype) and present.size:
            parsed = pd.to_numeric(present.astype(str).str.strip(), errors="coerce")
            bad = parsed.isna().to_numpy()
            if not bad.any():
                return self._fit_column(pd.to_numeric(col, errors="coerce"), cname, name, w)
            if bad.mean() <= 0.5 and bad.sum() <= max(3, 0.05 * present.size):
                full_bad = np.zeros(len(col), dtype=bool)
                full_bad[np.flatnonzero(col.notna().to_numpy())[bad]] = True
                examples = ", ".join(repr(v) for v in present[bad].astype(str).unique()[:3])
                raise ValueError(
                    f"{name}: column {cname!r} is numeric but {_plural(int(bad.sum()), 'value')} "
                    f"cannot be read as numbers ({examples}; data rows {_rows(full_bad)}); "
                    "fix them or leave them empty"
                )
        categories = sorted(present.astype(str).unique().tolist())
        if not categories:
            raise ValueError(f"{name}: column {cname!r} is entirely empty; drop it")
        spec = {"name": cname, "type": "categorical", "categories": categories, "fill": None}
        if self.impute:
            seen = col.notna().to_numpy()
            if w is not None and w[seen].sum() > 0:  # the most frequent category, rows weighted
                spec["fill"] = str(pd.Series(w[seen]).groupby(present.astype(str).to_numpy()).sum().idxmax())
            else:
                spec["fill"] = str(present.astype(str).value_counts().idxmax())
        self.notes_.append(
            f"one-hot encoded column {cname!r} ({_plural(len(categories), 'category', 'categories')}"
            f"{': ' + ', '.join(categories[:5]) if len(categories) <= 5 else ''})"
        )
        if len(categories) > 100:
            self.notes_.append(
                f"column {cname!r} has {len(categories)} distinct values; is it an id column?"
            )
        return spec

    def _check_missing_frame(self, X: pd.DataFrame, name: str) -> None:
        missing = X.isna().sum()
        missing = missing[missing > 0]
        if missing.empty:
            return
        if not self.impute:
            cols = ", ".join(f"{c!r} ({_plural(int(n), 'row')})" for c, n in missing.items())
            raise ValueError(
                f"{name}: missing values in {cols}; fill or drop them, or pass --impute"
            )
        for c in self.columns_:
            if c["name"] in missing.index:
                if c["fill"] is None:
                    raise ValueError(f"{name}: column {c['name']!r} is entirely empty; drop it")
                self.notes_.append(
                    f"imputed {_plural(int(missing[c['name']]), 'missing value')} in "
                    f"{c['name']!r} with {c['fill']!r}"
                )

    def _fit_array_fill(self, X, names, name, w=None):
        data = X.data if sp.issparse(X) else X
        if data.dtype.kind != "f":
            return [None] * len(names)
        if np.isinf(data).any():
            raise ValueError(f"{name}: the features hold infinite values; replace them")
        nan = np.isnan(X.toarray() if sp.issparse(X) else X)
        if not nan.any():
            return [None] * len(names)
        per_col = nan.sum(axis=0)
        if not self.impute:
            cols = ", ".join(
                f"{names[j]!r} ({_plural(int(per_col[j]), 'row')})" for j in np.flatnonzero(per_col)[:5]
            )
            raise ValueError(f"{name}: missing values in {cols}; fill or drop them, or pass --impute")
        dense = X.toarray() if sp.issparse(X) else X
        with np.errstate(invalid="ignore"):
            means = np.nanmean(np.where(nan.all(axis=0), 0.0, dense), axis=0)
            if w is not None:  # each column's mean over its present rows, weighted
                total = w @ ~nan
                weighted = (np.where(nan, 0.0, dense).T @ w) / np.where(total > 0, total, 1.0)
                means = np.where(total > 0, weighted, means)
        self.notes_.append(f"imputed {int(nan.sum())} missing values with column means")
        return [float(m) if per_col[j] else None for j, m in enumerate(means)]

    # ------------------------------------------------------------ transform
    def transform(self, X, name: str = "the data"):
        """Encode ``X`` as fitted: an ndarray (or CSR matrix for sparse input).

        Columns are matched by name for DataFrames (extra columns are
        ignored, missing ones are an error); categories not seen in training
        encode as all zeros.
        """
        return self._encode(X, name, scale=True)

    def _encode(self, X, name, scale):
        if self.kind_ == "frame":
            Z = self._encode_frame(X, name)
        else:
            if isinstance(X, pd.DataFrame):
                X = X.to_numpy()
            if self.kind_ == "sparse":
                Z = sp.csr_matrix(X, dtype=np.float64)
            else:
                Z = np.asarray(X)
                if Z.dtype.kind not in "biuf":
                    raise ValueError(f"{name}: features must be numeric, got dtype {Z.dtype}")
                Z = Z.astype(np.float32 if Z.dtype == np.float32 else np.float64, copy=True)
            if Z.ndim != 2 or Z.shape[1] != len(self.columns_):
                raise ValueError(
                    f"{name}: expected {len(self.columns_)} feature columns, got "
                    f"{Z.shape[1] if Z.ndim == 2 else Z.shape}; use data laid out as in training"
                )
            self._fill_array(Z, name)
        if scale and self.standardize:
            if sp.issparse(Z):
                Z = sp.csr_matrix(Z.multiply(1.0 / self.scale_[None, :]))
            else:
                Z -= self.mean_.astype(Z.dtype)
                Z /= self.scale_.astype(Z.dtype)
        return Z

    def _fill_array(self, Z, name):
        data = Z.data if sp.issparse(Z) else Z
        if data.dtype.kind != "f":
            return
        nan = np.isnan(data)
        if not nan.any():
            return
        if sp.issparse(Z):
            cols = Z.indices[nan]
        else:
            cols = np.nonzero(nan)[1]
        fills = np.array([np.nan if c["fill"] is None else c["fill"] for c in self.columns_])
        if np.isnan(fills[cols]).any():
            bad = sorted({self.columns_[j]["name"] for j in cols if np.isnan(fills[j])})
            raise ValueError(
                f"{name}: missing values in {', '.join(map(repr, bad[:5]))}; the model was "
                "trained without --impute, so fill or drop them"
            )
        data[nan] = fills[cols]

    def _encode_frame(self, X, name):
        if not isinstance(X, pd.DataFrame):
            raise ValueError(f"{name}: this model expects a table with named columns")
        absent = [c["name"] for c in self.columns_ if c["name"] not in X.columns]
        if absent:
            raise ValueError(
                f"{name}: missing columns {', '.join(map(repr, absent[:5]))}"
                f"{' ...' if len(absent) > 5 else ''}; give the columns used in training"
            )
        blocks = []
        unseen = {}
        for c in self.columns_:
            col = X[c["name"]]
            if c["type"] == "numeric":
                if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
                    values = col.astype(float).to_numpy()
                else:
                    present = col.notna().to_numpy()
                    values = pd.to_numeric(col.astype(str).str.strip().where(col.notna()),
                                           errors="coerce").to_numpy(dtype=float)
                    bad = present & np.isnan(values)
                    if bad.any():
                        raise ValueError(
                            f"{name}: column {c['name']!r} must be numeric but data rows "
                            f"{_rows(bad)} are not numbers; fix them"
                        )
                miss = np.isnan(values)
                if miss.any():
                    if c["fill"] is None:
                        raise ValueError(
                            f"{name}: missing values in {c['name']!r} ({_plural(int(miss.sum()), 'row')}); "
                            "the model was trained without --impute, so fill or drop them"
                        )
                    values = np.where(miss, c["fill"], values)
                if np.isinf(values).any():
                    raise ValueError(f"{name}: column {c['name']!r} holds infinite values; replace them")
                blocks.append(values[:, None])
            else:
                values = col.astype(str).where(col.notna(), None)
                if values.isna().any():
                    if c["fill"] is None:
                        raise ValueError(
                            f"{name}: missing values in {c['name']!r}; the model was trained "
                            "without --impute, so fill or drop them"
                        )
                    values = values.fillna(c["fill"])
                lookup = {v: i for i, v in enumerate(c["categories"])}
                codes = values.map(lookup).fillna(-1).to_numpy(dtype=np.int64)
                if (codes < 0).any():
                    unseen[c["name"]] = int((codes < 0).sum())
                onehot = np.zeros((len(codes), len(c["categories"])))
                ok = codes >= 0
                onehot[np.flatnonzero(ok), codes[ok]] = 1.0
                blocks.append(onehot)
        self.unseen_ = unseen
        return np.hstack(blocks) if blocks else np.zeros((len(X), 0))

    # ---------------------------------------------------------- persistence
    def to_dict(self) -> dict:
        """The fitted state as JSON-compatible data (floats round-trip exactly)."""
        return {
            "standardize": bool(self.standardize),
            "impute": bool(self.impute),
            "kind": self.kind_,
            "columns": self.columns_,
            "feature_names_out": self.feature_names_out_,
            "mean": [float(v) for v in self.mean_],
            "scale": [float(v) for v in self.scale_],
        }

    @classmethod
    def from_dict(cls, state: dict) -> "Preprocessor":
        """Rebuild a fitted preprocessor from :meth:`to_dict`'s output (checked for consistency)."""
        try:
            self = cls(standardize=bool(state["standardize"]), impute=bool(state["impute"]))
            self.kind_ = state["kind"]
            if self.kind_ not in ("frame", "array", "sparse"):
                raise ValueError(f"unknown input kind {str(self.kind_)[:40]!r}")
            self.columns_ = [dict(c) for c in state["columns"]]
            width = 0
            for c in self.columns_:
                if c["type"] not in ("numeric", "categorical"):
                    raise ValueError(f"unknown column type {str(c['type'])[:40]!r}")
                if not isinstance(c["name"], str):
                    raise ValueError("a column name is not a string")
                fill = c.get("fill")
                if c["type"] == "numeric":
                    width += 1
                    if fill is not None and (isinstance(fill, bool) or not isinstance(fill, (int, float))):
                        raise ValueError(f"column {c['name']!r} has a non-numeric fill value")
                else:
                    cats = c["categories"]
                    if not (isinstance(cats, list) and cats and all(isinstance(v, str) for v in cats)):
                        raise ValueError(f"column {c['name']!r} has no list of categories")
                    if fill is not None and fill not in cats:
                        raise ValueError(f"column {c['name']!r} fills with a value that is no category")
                    width += len(cats)
            self.feature_names_in_ = [c["name"] for c in self.columns_]
            self.feature_names_out_ = [str(v) for v in state["feature_names_out"]]
            self.mean_ = np.asarray(state["mean"], dtype=np.float64)
            self.scale_ = np.asarray(state["scale"], dtype=np.float64)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed preprocessing record ({exc!r})") from None
        if not (self.mean_.shape == self.scale_.shape == (len(self.feature_names_out_),) == (width,)):
            raise ValueError("malformed preprocessing record (lengths differ)")
        if not (np.isfinite(self.mean_).all() and np.isfinite(self.scale_).all() and (self.scale_ > 0).all()):
            raise ValueError("malformed preprocessing record (non-finite mean or non-positive scale)")
        self.notes_ = []
        return self
