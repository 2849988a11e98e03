"""Wald and likelihood-ratio tests against statsmodels MNLogit and refits."""

import numpy as np
import pytest
import statsmodels.api as sm
from scipy.stats import chi2

from _inference_data import fit, generated, mnlogit
from softmaxreg import SoftmaxRegression

FEATURES = ["logpopul", "selfLR", "age", "educ", "income"]


@pytest.fixture(scope="module")
def anes():
    d = sm.datasets.anes96.load_pandas().data
    X, y = d[FEATURES], d["PID"].astype(int)
    return X, y, fit(X, y, 0), mnlogit(X, y)


def sm_row(ref, entries):
    """A row of R in statsmodels' parameter order from {(class, name): coef}.

    Its params are (exog names) x (classes 1..6, columns numbered 0..5).
    """
    params = ref.params
    r = np.zeros(params.size)
    for (cls, name), c in entries.items():
        r[(cls - 1) * params.shape[0] + params.index.get_loc(name)] = c
    return r


def test_wald_strings_match_statsmodels(anes):
    X, y, model, ref = anes
    free = range(1, 7)
    cases = {
        "selfLR = 0": ([sm_row(ref, {(k, "selfLR"): 1}) for k in free], np.zeros(6)),
        "[1]educ = [2]educ, [3]age = 0.01": (
            [sm_row(ref, {(1, "educ"): 1, (2, "educ"): -1}), sm_row(ref, {(3, "age"): 1})],
            np.array([0.0, 0.01])),
        "2*[6]income - [5]income = intercept": (
            [sm_row(ref, {(6, "income"): 2, (5, "income"): -1, (k, "const"): -1}) for k in free],
            np.zeros(6)),
    }
    for text, (R, q) in cases.items():
        ours = model.wald_test(text)
        theirs = ref.wald_test((np.array(R), q), scalar=True)
        assert ours.statistic == pytest.approx(float(theirs.statistic), rel=1e-8), text
        assert ours.pvalue == pytest.approx(float(theirs.pvalue), rel=1e-6, abs=1e-300), text
        assert ours.df == len(R)
        # The same restrictions as a matrix over summary()'s rows (our order is statsmodels').
        assert model.wald_test((np.array(R), q)).statistic == pytest.approx(ours.statistic)
    robust = mnlogit(X, y, cov_type="HC0").wald_test(np.array(cases["selfLR = 0"][0]), scalar=True)
    assert model.wald_test("selfLR = 0", cov_type="HC0").statistic == pytest.approx(
        float(robust.statistic), rel=1e-8)
    assert "chi2(6)" in str(model.wald_test("selfLR = 0"))


def test_lr_test_matches_refits_and_detects_other_rows(anes):
    X, y, model, ref = anes
    small = fit(X[["selfLR", "educ"]], y, 0)
    ref_small = mnlogit(X[["selfLR", "educ"]], y)
    res = model.lr_test(small)
    assert res.statistic == pytest.approx(2 * (ref.llf - ref_small.llf), rel=1e-8)
    assert res.df == 18 and res.pvalue == pytest.approx(chi2.sf(res.statistic, 18), rel=1e-10)
    with pytest.raises(ValueError, match="different rows"):
        model.lr_test(fit(X[["selfLR", "educ"]][:-1], y[:-1], 0))
    shuffled = y.to_numpy().copy()
    shuffled[[0, 1]] = shuffled[[1, 0]] if shuffled[0] != shuffled[1] else (0, 6)
    with pytest.raises(ValueError, match="different rows"):
        model.lr_test(fit(X[["selfLR", "educ"]], shuffled, 0))
    with pytest.raises(ValueError, match="larger model first"):
        small.lr_test(model)
    with pytest.raises(ValueError, match="not nested"):
        fit(X[["selfLR", "educ", "age"]], y, 0).lr_test(fit(X[["income", "educ"]], y, 0))


def test_weighted_lr_test_is_repeated_rows():
    X, y = generated(13, 150)
    w = np.random.default_rng(14).integers(1, 4, size=y.size)
    a = fit(X, y, "a", sample_weight=w).lr_test(fit(X[:, :2], y, "a", sample_weight=w))
    Xr, yr = np.repeat(X, w, axis=0), np.repeat(y, w)
    b = fit(Xr, yr, "a").lr_test(fit(Xr[:, :2], yr, "a"))
    assert a.statistic == pytest.approx(b.statistic, rel=1e-7)
    with pytest.raises(ValueError, match="different rows"):
        fit(X, y, "a", sample_weight=w).lr_test(fit(X[:, :2], y, "a"))


def test_bad_hypotheses(anes):
    X, y, model, _ = anes
    with pytest.raises(ValueError, match="unknown name 'selfRL'"):
        model.wald_test("selfRL = 0")
    with pytest.raises(ValueError, match="unknown class '9'"):
        model.wald_test("[9]educ = 0")
    with pytest.raises(ValueError, match="reference class"):
        model.wald_test("[0]educ = 0")
    with pytest.raises(ValueError, match="exactly one '='"):
        model.wald_test("educ")
    with pytest.raises(ValueError, match="linearly dependent"):
        model.wald_test("[1]educ = 0, 2*[1]educ = 0")
    with pytest.raises(ValueError, match="shape"):
        model.wald_test(np.ones((1, 3)))
    penalized = SoftmaxRegression().fit(X, y)
    with pytest.raises(ValueError, match="penalty=None"):
        penalized.wald_test("educ = 0")
    with pytest.raises(ValueError, match="penalty=None"):
        model.lr_test(penalized)
