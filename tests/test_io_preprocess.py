"""Preprocessor: one-hot encoding and standardization against scikit-learn, errors, persistence."""

import json

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from softmaxreg.io import Preprocessor


@pytest.fixture
def frame():
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "x": rng.normal(3.0, 2.0, size=40),
        "city": rng.choice(["oslo", "lima", "pune"], size=40),
        "n": rng.integers(0, 5, size=40),
        "flag": rng.choice([True, False], size=40),
    })


def test_matches_scikit_learn_encoders(frame):
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    pre = Preprocessor(standardize=True).fit(frame)
    Z = pre.transform(frame)
    numeric = frame[["x", "n", "flag"]].astype(float).to_numpy()
    ref_num = preprocessing.StandardScaler().fit_transform(numeric)
    ref_cat = preprocessing.OneHotEncoder(sparse_output=False).fit_transform(frame[["city"]])
    assert pre.feature_names_out_ == ["x", "city=lima", "city=oslo", "city=pune", "n", "flag"]
    np.testing.assert_allclose(Z[:, [0, 4, 5]], ref_num, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(Z[:, 1:4], ref_cat)
    assert pre.notes_ and "one-hot encoded column 'city' (3 categories" in pre.notes_[0]


def test_state_survives_json(frame):
    pre = Preprocessor(standardize=True).fit(frame)
    back = Preprocessor.from_dict(json.loads(json.dumps(pre.to_dict())))
    np.testing.assert_array_equal(back.transform(frame), pre.transform(frame))  # bit for bit


def test_columns_matched_by_name_and_unseen_categories(frame):
    pre = Preprocessor().fit(frame)
    shuffled = frame[["flag", "n", "city", "x"]].assign(extra=1)
    np.testing.assert_array_equal(pre.transform(shuffled), pre.transform(frame))
    new = frame.head(2).assign(city=["paris", "oslo"])
    Z = pre.transform(new)
    assert Z[0, 1:4].tolist() == [0, 0, 0] and Z[1, 1:4].tolist() == [0, 1, 0]
    assert pre.unseen_ == {"city": 1}
    with pytest.raises(ValueError, match="missing columns 'city'"):
        pre.transform(frame.drop(columns=["city"]))


def test_missing_values_named_or_imputed(frame):
    holes = frame.copy()
    holes.loc[[1, 5], "x"] = np.nan
    holes.loc[3, "city"] = None
    with pytest.raises(ValueError, match=r"missing values in 'x' \(2 rows\), 'city' \(1 row\).*--impute"):
        Preprocessor().fit(holes)
    pre = Preprocessor(impute=True).fit(holes)
    Z = pre.transform(holes)
    assert Z[1, 0] == pytest.approx(holes["x"].mean())
    mode = holes["city"].value_counts().idxmax()
    assert pre.feature_names_out_[1 + int(np.argmax(Z[3, 1:4]))] == f"city={mode}"
    with pytest.raises(ValueError, match="trained without --impute"):
        Preprocessor().fit(frame).transform(holes)


def test_garbage_in_numeric_column_is_an_error():
    bad = pd.DataFrame({"v": ["1.5", "2", "oops", "4", "5", "6", "7"], "w": range(7)})
    with pytest.raises(ValueError, match=r"column 'v' is numeric but 1 value cannot be read.*'oops'.*rows 3"):
        Preprocessor().fit(bad)
    numbers_as_text = pd.DataFrame({"v": ["1.5", "2", "3"]})
    assert Preprocessor().fit(numbers_as_text).columns_[0]["type"] == "numeric"


def test_arrays_and_sparse():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 4)) * [1, 10, 100, 0]
    pre = Preprocessor(standardize=True).fit(X)
    Z = pre.transform(X)
    np.testing.assert_allclose(Z[:, :3].std(axis=0), 1.0, rtol=1e-12)
    assert np.all(Z[:, 3] == 0)  # a constant column keeps scale 1
    S = sp.random(30, 4, density=0.4, random_state=2, format="csr")
    pre = Preprocessor(standardize=True).fit(S)
    Zs = pre.transform(S)
    assert sp.issparse(Zs) and Zs.nnz == S.nnz  # scaled, never centred
    np.testing.assert_allclose(Zs.toarray().std(axis=0), 1.0, rtol=1e-10)
    with pytest.raises(ValueError, match="expected 4 feature columns, got 3"):
        pre.transform(S[:, :3])
    X32 = X.astype(np.float32)
    assert Preprocessor().fit(X32).transform(X32).dtype == np.float32
    with pytest.raises(ValueError, match="infinite"):
        Preprocessor().fit(np.array([[1.0], [np.inf]]))


@pytest.mark.parametrize("kind", ["frame", "array", "sparse"])
def test_sample_weight_counts_rows(kind):
    """Frequency weights give the statistics (means, scales, imputed values) of the repeated rows."""
    rng = np.random.default_rng(0)
    n = 60
    frame = pd.DataFrame({"a": rng.normal(size=n), "b": 3 * rng.normal(size=n) + 1,
                          "c": rng.choice(["red", "green", "blue"], n)})
    w = rng.integers(0, 4, n)
    if kind == "frame":
        frame.loc[[2, 5], "a"] = np.nan
        frame.loc[[1, 8, 9], "c"] = None
        X = frame
    elif kind == "array":
        X = frame[["a", "b"]].to_numpy(copy=True)
        X[[2, 5], 0] = np.nan
    else:
        X = sp.csr_matrix(np.where(rng.random((n, 2)) < 0.5, 0.0, frame[["a", "b"]].to_numpy()))
    rows = np.repeat(np.arange(n), w)
    repeated = X.iloc[rows] if kind == "frame" else X[rows]
    weighted = Preprocessor(standardize=True, impute=kind != "sparse").fit(X, sample_weight=w)
    plain = Preprocessor(standardize=True, impute=kind != "sparse").fit(repeated)
    np.testing.assert_allclose(weighted.mean_, plain.mean_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(weighted.scale_, plain.scale_, rtol=1e-12)
    for a, b in zip(weighted.columns_, plain.columns_):
        if isinstance(a["fill"], float):
            assert a["fill"] == pytest.approx(b["fill"], rel=1e-12)
        else:
            assert a == b
    with pytest.raises(ValueError, match="one per row"):
        Preprocessor().fit(X, sample_weight=w[:-1])
    with pytest.raises(ValueError, match="not all zero"):
        Preprocessor().fit(X, sample_weight=-w)


def test_encoded_names_that_collide_are_an_error():
    frame = pd.DataFrame({"color": ["red", "blue", "red"], "color=red": [1.0, 2.0, 3.0]})
    with pytest.raises(ValueError, match=r"'color=red'.*same name.*rename"):
        Preprocessor().fit(frame)


def test_lists_complex_and_empty_inputs():
    assert Preprocessor().fit([[1, 2], [3, 4]]).feature_names_out_ == ["x0", "x1"]
    for bad, words in (([[1, 2], [3]], "rows of equal length"), (pd.DataFrame({"d": [1 + 1j, 2]}), "complex"),
                       (pd.DataFrame({"d": []}), "nothing to fit on")):
        with pytest.raises(ValueError, match=words):
            Preprocessor().fit(bad)
