"""Formulas: fits equal the same design built by hand; new data; the model file keeps the formula."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from softmaxreg import SoftmaxRegression
from softmaxreg import formula as sf
from softmaxreg.io import load_model, save_model


def frame(seed=0, n=300):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "x1": rng.normal(size=n),
        "x2": rng.uniform(0.5, 5.0, size=n),
        "x3": rng.integers(0, 2, size=n).astype(float),
        "region": rng.choice(["north", "south", "east"], size=n),
    })
    z1 = 0.8 * df.x1 - 0.5 * np.log(df.x2) + 0.7 * (df.region == "south")
    z2 = -0.4 * df.x1 + 0.6 * df.x1 * df.x3
    P = np.exp(np.column_stack([np.zeros(n), z1, z2]))
    P /= P.sum(1, keepdims=True)
    df["y"] = np.array(["a", "b", "c"])[(rng.uniform(size=(n, 1)) > P.cumsum(1)).sum(1)]
    return df


FORMULA = "y ~ x1 + np.log(x2) + C(region) + x1:x3"


def by_hand(df):
    return pd.DataFrame({
        "x1": df.x1, "np.log(x2)": np.log(df.x2),
        "C(region)[T.north]": (df.region == "north").astype(float),
        "C(region)[T.south]": (df.region == "south").astype(float),
        "x1:x3": df.x1 * df.x3,
    })


def test_formula_fit_equals_design_built_by_hand():
    df = frame()
    model = sf.fit(FORMULA, df, penalty=None, reference_class="a")
    manual = SoftmaxRegression(penalty=None, reference_class="a").fit(by_hand(df), df.y)
    assert list(model.feature_names_in_) == list(by_hand(df).columns)
    np.testing.assert_allclose(model.coef_, manual.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.intercept_, manual.intercept_, rtol=1e-10, atol=1e-12)
    # Names as statsmodels' formula MNLogit gives them (patsy), same estimates.
    codes = df.assign(code=df.y.map({"a": 0, "b": 1, "c": 2}))
    ref = smf.mnlogit("code ~ x1 + np.log(x2) + C(region) + x1:x3", codes).fit(
        disp=0, method="newton", tol=1e-12)
    names = list(model.feature_names_in_)
    assert sorted(ref.params.index[1:]) == sorted(names)  # patsy puts categorical terms first
    order = ["Intercept"] + names
    np.testing.assert_allclose(model.inference().params,
                               np.asarray(ref.params.loc[order]).T.ravel(), rtol=1e-7, atol=1e-9)
    # New raw rows go through the same formula, with the training levels.
    new = df.iloc[:5].assign(region="east")
    np.testing.assert_allclose(model.predict_proba(new), manual.predict_proba(by_hand(new)),
                               rtol=1e-12)
    assert list(model.predict(df.iloc[:3])) == list(manual.predict(by_hand(df.iloc[:3])))
    me = model.marginal_effects(df.iloc[:50])
    assert "C(region)[T.south]" in me.to_frame().index.get_level_values("feature")


def test_no_intercept_weights_and_missing_rows():
    df = frame(1)
    model = sf.fit("y ~ 0 + x1 + x3", df, penalty=None, reference_class="a")
    assert model.fit_intercept is False and list(model.feature_names_in_) == ["x1", "x3"]
    w = np.random.default_rng(2).integers(1, 3, size=len(df)).astype(float)
    df.loc[3, "x1"] = np.nan
    weighted = sf.fit("y ~ x1", df, sample_weight=w, penalty=None, reference_class="a")
    keep = df.x1.notna()
    manual = SoftmaxRegression(penalty=None, reference_class="a").fit(
        df.loc[keep, ["x1"]], df.y[keep], sample_weight=w[keep])
    np.testing.assert_allclose(weighted.coef_, manual.coef_, rtol=1e-10)
    assert weighted.nobs == w[keep].sum()


def test_model_file_keeps_the_formula(tmp_path):
    df = frame(3)
    model = sf.fit(FORMULA, df, penalty=None, reference_class="a")
    save_model(tmp_path / "m.srm", model)
    loaded = load_model(tmp_path / "m.srm").estimator
    assert loaded.formula_.formula == FORMULA
    new = df.iloc[:4].assign(region="north")
    np.testing.assert_array_equal(loaded.predict_proba(new), model.predict_proba(new))


def test_bad_formulas():
    df = frame(4, 60)
    with pytest.raises(ValueError, match="one '~'"):
        sf.fit("x1 + x2", df)
    with pytest.raises(ValueError, match="must name a column"):
        sf.fit("z ~ x1", df)
    with pytest.raises(ValueError, match="fit_intercept comes from the formula"):
        sf.fit("y ~ x1", df, fit_intercept=False)
    with pytest.raises(TypeError, match="DataFrame"):
        sf.fit("y ~ x1", df.to_numpy())
    model = sf.fit("y ~ C(region)", df)
    with pytest.raises(ValueError, match="west"):
        model.predict(df.iloc[:2].assign(region="west"))


def test_repeated_index_labels_and_a_missing_column_at_prediction():
    """Rows are tracked by position (an index repeated after pd.concat is fine, as in statsmodels); a
    column the formula needs but the new data lack is named."""
    rng = np.random.default_rng(0)
    n = 80
    df = pd.DataFrame({"x1": rng.normal(size=n), "x2": rng.uniform(1, 2, n), "g": rng.choice(["u", "v"], n),
                       "y": rng.choice(["a", "b", "c"], n)}, index=[0] * 40 + [1] * 40)
    df.iloc[3, 0] = np.nan  # a dropped row, with its weight
    w = np.arange(n) + 1.0
    model = sf.fit("y ~ x1 + np.log(x2) + C(g)", df, sample_weight=w)
    fresh = sf.fit("y ~ x1 + np.log(x2) + C(g)", df.reset_index(drop=True), sample_weight=w)
    np.testing.assert_array_equal(model.coef_, fresh.coef_)
    X, y, _ = sf.design("y ~ x1", df)
    assert len(X) == n - 1 and list(X.index[:2]) == [0, 0]
    with pytest.raises(ValueError, match=r"lack the column\(s\) \['x2'\]"):
        model.predict_proba(pd.DataFrame({"x1": [0.1], "g": ["u"]}))
