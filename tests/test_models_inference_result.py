"""Model statistics and the relative-risk-ratio table against statsmodels MNLogit."""

import numpy as np
import pytest
import statsmodels.api as sm

from _inference_data import anes96, fit, generated
from softmaxreg.models import InferenceResult


STATS = ["llf", "llnull", "llr", "llr_pvalue", "prsquared", "aic", "bic", "df_model", "df_resid"]


@pytest.mark.parametrize("data", [anes96, generated])
def test_statistics_match_statsmodels(data):
    X, y = data()
    ref = sm.MNLogit(y, sm.add_constant(X)).fit(disp=0, method="newton", tol=1e-12, maxiter=100)
    model = fit(X, y, np.unique(y)[0])
    for name in STATS:
        assert getattr(model, name) == pytest.approx(getattr(ref, name), rel=1e-8, abs=1e-12), name
    assert model.nobs == ref.nobs
    # The statistics do not depend on which class is the reference.
    other = fit(X, y, np.unique(y)[-1])
    for name in STATS:
        assert getattr(other, name) == pytest.approx(getattr(model, name), rel=1e-8), name


def test_frequency_weights_are_repeated_rows():
    X, y = generated(1, 150)
    w = np.random.default_rng(2).integers(0, 4, size=y.size)
    weighted = fit(X, y, "a", sample_weight=w)
    repeated = fit(np.repeat(X, w, axis=0), np.repeat(y, w), "a")
    assert weighted.nobs == repeated.nobs == w.sum()
    for name in STATS:
        assert getattr(weighted, name) == pytest.approx(getattr(repeated, name), rel=1e-7), name


def test_summary_shows_statistics_and_relative_risk_ratios():
    X, y = generated()
    model = fit(X, y, "a")
    ref = sm.MNLogit(y, sm.add_constant(X)).fit(disp=0, method="newton", tol=1e-12)
    text = str(model.summary())
    for label in ["Log-likelihood:", "LL-Null:", "LR chi2(6):", "LLR p-value:", "AIC:", "BIC:"]:
        assert label in text
    assert f"{ref.llf:.4f}" in text and f"{ref.aic:.4f}" in text
    table = model.summary(rrr=True)
    frame = table.to_frame()
    coef = np.asarray(ref.params).T.ravel()
    bse = np.asarray(ref.bse).T.ravel()
    ci = np.asarray(ref.conf_int()).reshape(-1, 2)
    np.testing.assert_allclose(frame["rrr"], np.exp(coef), rtol=1e-7)
    np.testing.assert_allclose(frame["std err"], np.exp(coef) * bse, rtol=1e-6)
    np.testing.assert_allclose(frame.iloc[:, 4:].to_numpy(), np.exp(ci), rtol=1e-6)
    np.testing.assert_allclose(frame["z"], model.summary().to_frame()["z"])
    assert "rrr" in str(table) and "Relative-risk ratios" in str(table)


def test_statistics_without_intercept_and_from_stored_arrays():
    r = InferenceResult([1.0, 2.0], [0.5, 0.5], classes=["b", "b"], features=["x", "z"],
                        n_obs=10, log_likelihood=-5.0)
    assert (r.df_model, r.df_resid, r.aic) == (2.0, 8.0, 14.0)
    assert r.bic == pytest.approx(10 + 2 * np.log(10))
    assert r.llnull is None and r.llr is None and r.llr_pvalue is None
    back = InferenceResult.from_dict(r.to_dict())
    assert back.fit_intercept is False and back.aic == r.aic
