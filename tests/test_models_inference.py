"""Inference for softmax regression against statsmodels MNLogit, and identification checks."""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import statsmodels.api as sm

import softmaxreg.models._identification as identification
from softmaxreg.functional import softmax
from softmaxreg.loss import LinearSoftmaxLoss
from softmaxreg.models import (
    IdentificationError,
    InferenceResult,
    check_identification,
    compute_inference,
)

DATASETS = [(0, 300, 3, 3), (1, 250, 2, 4), (2, 200, 4, 3)]  # seed, n, d, K


def make_data(seed, n, d, K):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    B = rng.normal(size=(d + 1, K))
    Z = sm.add_constant(X) @ B
    P = softmax(Z)
    y = (rng.uniform(size=(n, 1)) > np.cumsum(P, axis=1)).sum(axis=1)
    assert np.unique(y).size == K
    return X, y


def newton_fit(loss, tol=1e-12):
    """Plain Newton on the loss object (the test's own optimizer)."""
    w = np.zeros(loss.n_params)
    for _ in range(100):
        g = loss.gradient(w)
        if np.max(np.abs(g)) < tol:
            break
        w = w - np.linalg.solve(loss.hessian(w), g)
    assert np.max(np.abs(loss.gradient(w))) < 1e-9
    return loss.unpack(w)


def mnlogit(X, y, cov_type="nonrobust"):
    return sm.MNLogit(y, sm.add_constant(X)).fit(
        disp=0, method="newton", maxiter=100, tol=1e-12, cov_type=cov_type
    )


def sm_rows(arr):
    """statsmodels (d + 1, K - 1) arrays in our order: class by class, intercept first."""
    return np.asarray(arr).T.ravel()


@pytest.mark.parametrize("data", DATASETS)
@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0"])
def test_matches_statsmodels_mnlogit(data, cov_type):
    X, y = make_data(*data)
    K = data[3]
    classes = np.array([f"class{k}" for k in range(K)])
    loss = LinearSoftmaxLoss(X, y, reference_class=0)
    coef, intercept = newton_fit(loss)
    res = compute_inference(
        loss, coef, intercept, cov_type=cov_type, classes=classes,
        feature_names=[f"f{j}" for j in range(X.shape[1])], reference_class="class0",
        fit_intercept=True,
    )
    ref = mnlogit(X, y, cov_type)
    np.testing.assert_allclose(res.params, sm_rows(ref.params), rtol=1e-6)
    np.testing.assert_allclose(res.bse, sm_rows(ref.bse), rtol=1e-6)
    np.testing.assert_allclose(res.pvalues, sm_rows(ref.pvalues), rtol=1e-5)
    np.testing.assert_allclose(res.zvalues, sm_rows(ref.tvalues), rtol=1e-6)
    np.testing.assert_allclose(res.conf_int(0.1), ref.conf_int(0.1).reshape(-1, 2), rtol=1e-6)
    np.testing.assert_allclose(res.cov_params, ref.cov_params(), rtol=1e-6, atol=1e-10)
    assert res.log_likelihood == pytest.approx(ref.llf, rel=1e-10)
    assert res.log_likelihood_null == pytest.approx(ref.llnull, rel=1e-10)
    assert res.pseudo_rsquared == pytest.approx(ref.prsquared, rel=1e-8)
    assert res.index[:2] == [("class1", "intercept"), ("class1", "f0")]


@pytest.mark.parametrize("data", DATASETS[:2])
def test_hc1_is_statsmodels_hc1(data):
    # statsmodels' discrete models give no small-sample factor for "HC1" (their
    # HC1 is the White matrix, as HC0); ours is the same, so all types agree.
    X, y = make_data(*data)
    loss = LinearSoftmaxLoss(X, y, reference_class=0)
    coef, intercept = newton_fit(loss)
    hc1 = compute_inference(loss, coef, intercept, cov_type="HC1")
    res = mnlogit(X, y, "HC1")
    np.testing.assert_allclose(hc1.cov_params, np.asarray(res.cov_params()), rtol=1e-6,
                               atol=1e-12)
    np.testing.assert_allclose(hc1.bse, sm_rows(res.bse), rtol=1e-6)
    assert hc1.cov_type == "HC1"


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0"])
def test_any_reference_class_by_reparametrization(cov_type):
    X, y = make_data(0, 300, 3, 3)
    ref_code = 2
    loss = LinearSoftmaxLoss(X, y, reference_class=ref_code)
    coef, intercept = newton_fit(loss)
    classes = np.array(["ant", "bee", "cow"])
    res = compute_inference(loss, coef, intercept, cov_type=cov_type, classes=classes,
                            reference_class="cow")
    # statsmodels takes the smallest label as reference: relabel cow -> 0.
    relabel = np.array([1, 2, 0])  # ant -> 1, bee -> 2, cow -> 0
    ref = mnlogit(X, relabel[y], cov_type)
    # statsmodels column j is our class with new label j + 1: ant, then bee.
    np.testing.assert_allclose(res.params, sm_rows(ref.params), rtol=1e-6)
    np.testing.assert_allclose(res.bse, sm_rows(ref.bse), rtol=1e-6)
    np.testing.assert_allclose(res.pvalues, sm_rows(ref.pvalues), rtol=1e-5)
    assert [c for c, _ in res.index[::4]] == ["ant", "bee"]
    assert res.reference_class == "cow"


@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0", "HC1"])
@pytest.mark.parametrize("penalty_C", [None, 0.5])
def test_frequency_weights_equal_repeated_rows(cov_type, penalty_C):
    X, y = make_data(1, 120, 2, 3)
    counts = np.random.default_rng(3).integers(0, 4, size=X.shape[0])
    l2 = 0.0 if penalty_C is None else 1.0 / (penalty_C * counts.sum())
    loss_w = LinearSoftmaxLoss(X, y, sample_weight=counts.astype(float), reference_class=1,
                               l2_reg_strength=l2)
    loss_r = LinearSoftmaxLoss(np.repeat(X, counts, 0), np.repeat(y, counts), reference_class=1,
                               l2_reg_strength=l2)
    coef, intercept = newton_fit(loss_w)
    a = compute_inference(loss_w, coef, intercept, cov_type=cov_type)
    b = compute_inference(loss_r, coef, intercept, cov_type=cov_type)
    np.testing.assert_allclose(a.cov_params, b.cov_params, rtol=1e-9, atol=1e-14)
    assert a.n_obs == b.n_obs == counts.sum()


def test_sparse_equals_dense_and_float32_design():
    X, y = make_data(2, 200, 4, 3)
    X[np.abs(X) < 0.5] = 0.0
    dense = LinearSoftmaxLoss(X, y, reference_class=0)
    coef, intercept = newton_fit(dense)
    for cov_type in ("nonrobust", "HC1"):
        a = compute_inference(dense, coef, intercept, cov_type=cov_type)
        b = compute_inference(LinearSoftmaxLoss(sp.csr_matrix(X), y, reference_class=0), coef,
                              intercept, cov_type=cov_type)
        np.testing.assert_allclose(a.cov_params, b.cov_params, rtol=1e-10, atol=1e-14)
    # float32 data: logits in float32, sums in float64; agrees to float32 accuracy.
    loss32 = LinearSoftmaxLoss(X.astype(np.float32), y, reference_class=0)
    c = compute_inference(loss32, coef, intercept, cov_type="HC0")
    d = compute_inference(dense, coef, intercept, cov_type="HC0")
    np.testing.assert_allclose(c.bse, d.bse, rtol=1e-5)
    with pytest.raises(ValueError, match="finite"):
        compute_inference(dense, np.full_like(coef, np.nan), intercept)


def _information(X, y, coef, intercept, free, C=None):
    """Observed information assembled entry by entry from its definition (test oracle)."""
    Xt = np.hstack([np.ones((X.shape[0], 1)), X])
    P = softmax(X @ coef.T + intercept)
    d = Xt.shape[1]
    H = np.zeros((len(free) * d, len(free) * d))
    for a, k in enumerate(free):
        for b, m in enumerate(free):
            w = P[:, k] * ((k == m) - P[:, m])
            H[a * d:(a + 1) * d, b * d:(b + 1) * d] = Xt.T @ (w[:, None] * Xt)
    if C is not None:
        for a in range(len(free)):
            idx = a * d + np.arange(1, d)
            H[idx, idx] += 1.0 / C
    return H


def test_l2_covariance_is_inverse_penalized_hessian():
    X, y = make_data(0, 150, 3, 3)
    C = 0.3
    loss = LinearSoftmaxLoss(X, y, reference_class=0, l2_reg_strength=1 / (C * X.shape[0]))
    coef, intercept = newton_fit(loss)
    res = compute_inference(loss, coef, intercept, penalty="l2")
    H = _information(X, y, coef, intercept, [1, 2], C=C)
    np.testing.assert_allclose(res.cov_params, np.linalg.inv(H), rtol=1e-9, atol=1e-14)
    assert res.penalty == "l2"
    assert "Laplace" in str(res.summary())


def test_l2_symmetric_coding_centres_intercepts():
    X, y = make_data(1, 150, 2, 4)
    C = 1.0
    loss = LinearSoftmaxLoss(X, y, l2_reg_strength=1 / (C * X.shape[0]))
    coef, intercept = newton_fit_symmetric(loss)
    res = compute_inference(loss, coef, intercept + 5.0)  # any shift of the intercepts
    b = res.params[::3]
    assert b.sum() == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(b, intercept - intercept.mean(), atol=1e-12)
    null = np.zeros(res.params.size)
    null[::3] = 1.0
    np.testing.assert_allclose(res.cov_params @ null, 0.0, atol=1e-12)
    # On the sum-zero subspace, the covariance inverts the Hessian there.
    H = _information(X, y, coef, intercept, range(4), C=C)
    Pj = np.eye(H.shape[0]) - np.outer(null, null) / 4
    np.testing.assert_allclose(res.cov_params @ H @ Pj, Pj, atol=1e-9)


def newton_fit_symmetric(loss):
    """Newton with the intercept shift projected out (the Hessian is singular along it)."""
    w = np.zeros(loss.n_params)
    for _ in range(100):
        g = loss.gradient(w)
        if np.max(np.abs(g)) < 1e-12:
            break
        w = w - np.linalg.lstsq(loss.hessian(w), g, rcond=None)[0]
    return loss.unpack(w)


def test_estimator_summary_matches_statsmodels():
    from softmaxreg.models import SoftmaxRegression

    X, y = make_data(0, 300, 3, 3)
    labels = np.array(["lo", "mid", "hi"])[y]
    model = SoftmaxRegression(penalty=None, reference_class="hi", tol=1e-10, max_iter=500)
    model.fit(X, labels)
    res = model.inference("HC0")
    # sorted classes: hi, lo, mid; reference "hi" is statsmodels' first class after relabel.
    relabel = np.array([1, 2, 0])  # code of lo -> 1, mid -> 2, hi -> 0
    ref = mnlogit(X, relabel[y], "HC0")
    np.testing.assert_allclose(res.params, sm_rows(ref.params), rtol=1e-4)
    np.testing.assert_allclose(res.bse, sm_rows(ref.bse), rtol=1e-4)
    text = str(model.summary(alpha=0.05))
    for column in ("coef", "std err", "z", "P>|z|", "[0.025", "0.975]", "class = lo", "x2"):
        assert column in text


# -- identification ---------------------------------------------------------------------


def test_perfect_separation_names_class_and_feature():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 3))
    y = rng.integers(0, 2, size=90)
    y[X[:, 1] > 0.3] = 2  # class 2 exactly when x1 > 0.3
    loss = LinearSoftmaxLoss(X, y, reference_class=0)
    with pytest.raises(IdentificationError, match="separation") as err:
        check_identification(loss, classes=np.array(["a", "b", "c"]),
                             feature_names=["age", "dose", "sex"], reference_class="a")
    msg = str(err.value)
    assert "class 'c' is separated" in msg and "'dose'" in msg
    assert "'age'" not in msg and "'sex'" not in msg
    assert "penalty" in msg
    with pytest.raises(IdentificationError) as err_sparse:
        check_identification(LinearSoftmaxLoss(sp.csc_matrix(X), y, reference_class=0),
                             classes=np.array(["a", "b", "c"]),
                             feature_names=["age", "dose", "sex"])
    assert str(err_sparse.value) == msg
    coef, intercept = np.zeros((3, 3)), np.zeros(3)
    with pytest.raises(IdentificationError, match="separation"):
        compute_inference(loss, coef, intercept)


def test_quasi_separation_is_detected():
    # y = 1 whenever x > 0, both classes at x = 0: quasi-complete separation.
    x = np.array([-3.0, -2.0, -1.0, 0.0, 0.0, 1.0, 2.0, 3.0])
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    loss = LinearSoftmaxLoss(x[:, None], y, reference_class=0)
    with pytest.raises(IdentificationError, match="quasi-complete separation") as err:
        check_identification(loss, feature_names=["x"])
    assert "'x'" in str(err.value)


def test_no_separation_on_overlapping_data_and_large_problem_subset(monkeypatch):
    X, y = make_data(0, 300, 3, 3)
    check_identification(LinearSoftmaxLoss(X, y, reference_class=0))  # overlapping classes
    monkeypatch.setattr(identification, "_LP_BUDGET", 3000)  # subset of 187 rows settles it
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_identification(LinearSoftmaxLoss(X, y, reference_class=0))
    monkeypatch.setattr(identification, "_LP_BUDGET", 40)  # 2 rows: separable, question left open
    with pytest.warns(UserWarning, match="separation check left open"):
        check_identification(LinearSoftmaxLoss(X, y, reference_class=0))
    check_identification(LinearSoftmaxLoss(X, y, reference_class=0), separation=True)
    Xs, ys = X.copy(), y.copy()
    ys[Xs[:, 0] > 1.0] = 2
    ys[(Xs[:, 0] <= 1.0) & (ys == 2)] = 1
    with pytest.raises(IdentificationError, match="class 2 is separated"):
        check_identification(LinearSoftmaxLoss(Xs, ys, reference_class=0), separation=True)


def test_collinear_constant_and_zero_features_are_named():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 3))
    y = rng.integers(0, 3, size=60)
    Xc = np.column_stack([X, X[:, 0] + 2 * X[:, 1]])
    with pytest.raises(IdentificationError, match="rank deficient") as err:
        check_identification(LinearSoftmaxLoss(Xc, y, reference_class=0),
                             feature_names=["a", "b", "c", "d"])
    assert "d = 1 * a + 2 * b" in str(err.value) and "['d']" in str(err.value)
    Xk = np.column_stack([X, np.full(60, 7.0)])
    with pytest.raises(IdentificationError, match="'k' is constant"):
        check_identification(LinearSoftmaxLoss(Xk, y, reference_class=0),
                             feature_names=["a", "b", "c", "k"])
    Xz = np.column_stack([np.zeros(60), X])
    with pytest.raises(IdentificationError, match="'z' is zero on every sample"):
        check_identification(LinearSoftmaxLoss(Xz, y, reference_class=0),
                             feature_names=["z", "a", "b", "c"])
    with pytest.raises(IdentificationError, match="rank deficient"):
        compute_inference(LinearSoftmaxLoss(Xc, y, reference_class=0), np.zeros((3, 4)),
                          np.zeros(3))


def test_symmetric_coding_without_penalty_is_refused():
    X, y = make_data(0, 100, 2, 3)
    loss = LinearSoftmaxLoss(X, y)
    check_identification(loss)  # fitting and predicting are fine
    with pytest.raises(IdentificationError, match="reference_class"):
        compute_inference(loss, np.zeros((3, 2)), np.zeros(3))


def test_l1_and_bad_arguments_are_refused():
    X, y = make_data(0, 100, 2, 3)
    loss = LinearSoftmaxLoss(X, y, reference_class=0)
    coef, intercept = newton_fit(loss)
    with pytest.raises(ValueError, match="not defined for penalty='l1'"):
        compute_inference(loss, coef, intercept, penalty="l1")
    with pytest.raises(ValueError, match="cov_type"):
        compute_inference(loss, coef, intercept, cov_type="HC3")
    with pytest.raises(ValueError, match="does not match"):
        compute_inference(loss, coef, intercept, classes=np.array(["a", "b", "c"]),
                          reference_class="b")
    with pytest.raises(ValueError, match="fit_intercept"):
        compute_inference(loss, coef, intercept, fit_intercept=False)
    with pytest.raises(ValueError, match="feature_names"):
        compute_inference(loss, coef, intercept, feature_names=["only one"])


# -- result object ----------------------------------------------------------------------


def test_summary_table_and_frame():
    X, y = make_data(0, 300, 3, 3)
    loss = LinearSoftmaxLoss(X, y, reference_class=0)
    coef, intercept = newton_fit(loss)
    res = compute_inference(loss, coef, intercept, classes=np.array(["a", "b", "c"]),
                            feature_names=["age", "dose", "weight"])
    text = str(res.summary(alpha=0.1))
    for token in ("coef", "std err", "z", "P>|z|", "[0.05", "0.95]", "class = b", "class = c",
                  "intercept", "weight", "Covariance type:", "nonrobust", "Log-likelihood:",
                  "Pseudo R-squ.:"):
        assert token in text
    lines = text.splitlines()
    table = [ln for ln in lines if ln.startswith(("intercept", "age", "dose", "weight"))]
    assert len(table) == 8 and len({len(ln) for ln in table}) == 1  # aligned
    frame = res.summary(0.1).to_frame()
    assert list(frame.columns) == ["coef", "std err", "z", "P>|z|", "[0.05", "0.95]"]
    assert frame.index.names == ["class", "feature"]
    assert frame.loc[("c", "dose"), "coef"] == pytest.approx(res.params[6])


def test_from_stored_arrays_round_trip():
    X, y = make_data(1, 250, 2, 4)
    loss = LinearSoftmaxLoss(X, y, reference_class=0)
    coef, intercept = newton_fit(loss)
    res = compute_inference(loss, coef, intercept, cov_type="HC1")
    back = InferenceResult.from_dict(res.to_dict())
    np.testing.assert_array_equal(back.params, res.params)
    np.testing.assert_array_equal(back.pvalues, res.pvalues)
    np.testing.assert_array_equal(back.cov_params, res.cov_params)
    assert str(back.summary()) == str(res.summary())
    bare = InferenceResult(res.params, res.bse, classes=res.classes, features=res.features)
    np.testing.assert_allclose(bare.conf_int(), res.conf_int())
    assert bare.cov_params is None
    with pytest.raises(ValueError, match="positive"):
        InferenceResult([1.0], [0.0], classes=["a"], features=["x"])


def test_rank_check_sparse_and_short_designs():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(80, 4))
    X[rng.uniform(size=X.shape) < 0.5] = 0.0
    y = rng.integers(0, 3, size=80)
    Xc = np.column_stack([X, X[:, 1] - 0.5 * X[:, 3], np.ones(80)])
    names = ["a", "b", "c", "d", "e", "k"]
    messages = []
    for design in (Xc, sp.csr_matrix(Xc), sp.csc_matrix(Xc)):
        with pytest.raises(IdentificationError, match="rank deficient") as err:
            check_identification(LinearSoftmaxLoss(design, y, reference_class=0),
                                 feature_names=names)
        messages.append(str(err.value))
    assert "e = 1 * b - 0.5 * d" in messages[0] and "'k' is constant" in messages[0]
    assert messages[1] == messages[2] == messages[0]
    check_identification(LinearSoftmaxLoss(sp.csr_matrix(X), y, reference_class=0))
    with pytest.raises(IdentificationError, match="3 samples .* for 5 design columns"):
        check_identification(LinearSoftmaxLoss(X[:3], np.array([0, 1, 2]), reference_class=0))


def test_rank_tolerance_follows_the_data_dtype():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(500, 3))
    y = rng.integers(0, 3, size=500)
    # Nearly collinear but identified: relative residual 1e-4.
    near = np.column_stack([X, X[:, 0] + X[:, 1] + 1e-4 * rng.normal(size=500)])
    for dtype in (np.float64, np.float32):
        check_identification(LinearSoftmaxLoss(near.astype(dtype), y, reference_class=0))
    # Collinear up to float32 rounding: flagged for float32 data.
    exact32 = np.column_stack([X, X[:, 0] + X[:, 1]]).astype(np.float32)
    exact32[:, 3] = exact32[:, 0] + exact32[:, 1]
    with pytest.raises(IdentificationError, match="x3 = 1 \\* x0 \\+ 1 \\* x1"):
        check_identification(LinearSoftmaxLoss(exact32, y, reference_class=0))


@pytest.mark.parametrize("solver", ["lbfgs", "newton-cg"])
@pytest.mark.parametrize("cov_type", ["nonrobust", "HC0", "HC1"])
def test_default_fit_matches_statsmodels_on_unscaled_data(solver, cov_type):
    # Unscaled wine columns make the Hessian ill-conditioned: a gradient of 1e-4
    # (the default tol) is percent-level error in the coefficients.  The Newton
    # finish of an unpenalized fit brings the estimate to the MLE regardless.
    from sklearn.datasets import load_wine

    from softmaxreg.models import SoftmaxRegression

    X, y = load_wine(return_X_y=True)
    X = X[:, [0, 6, 9]]
    model = SoftmaxRegression(penalty=None, reference_class=0, solver=solver).fit(X, y)
    res = mnlogit(X, y, cov_type)
    np.testing.assert_allclose(model.intercept_[1:], np.asarray(res.params)[0], rtol=1e-6)
    np.testing.assert_allclose(model.coef_[1:], np.asarray(res.params)[1:].T, rtol=1e-6)
    result = model.inference(cov_type)
    np.testing.assert_allclose(result.bse, sm_rows(res.bse), rtol=1e-4)
    np.testing.assert_allclose(result.pvalues, sm_rows(res.pvalues), rtol=1e-4, atol=1e-12)
    assert model.converged_


@pytest.mark.parametrize("scale", [1e-3, 1e5, 1e7])
@pytest.mark.parametrize("reference_class", [0, 2])
def test_a_column_in_other_units_changes_nothing_but_its_own_row(scale, reference_class):
    # The same model with one column measured in other units (a population count next to a share):
    # the fit converges to the same likelihood and the standard errors are rescaled exactly, as
    # statsmodels' are; neither the solver's stopping nor the test for a singular information matrix
    # may depend on the units.
    from softmaxreg.models import SoftmaxRegression

    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 3))
    y = rng.integers(0, 3, 300)
    ref = SoftmaxRegression(penalty=None, reference_class=reference_class).fit(X, y)
    model = SoftmaxRegression(penalty=None, reference_class=reference_class).fit(X * [scale, 1, 1], y)
    assert model.converged_
    res, ref_res = model.inference(), ref.inference()
    unit = np.tile([1.0, 1.0 / scale, 1.0, 1.0], res.bse.size // 4)
    np.testing.assert_allclose(res.bse, ref_res.bse * unit, rtol=1e-6)
    assert res.llf == pytest.approx(ref_res.llf, rel=1e-10)


def test_summary_reads_like_its_table():
    from softmaxreg.models import SoftmaxRegression

    X, y = make_data(0, 300, 3, 3)
    model = SoftmaxRegression(penalty=None, reference_class=0).fit(X, y)
    table = model.summary()
    frame = table.to_frame()
    assert len(table) == len(frame) == 8 and table.shape == (8, 6)
    assert list(table.columns) == ["coef", "std err", "z", "P>|z|", "[0.025", "0.975]"]
    np.testing.assert_array_equal(table["coef"].to_numpy(), frame["coef"].to_numpy())
    assert table.loc[(1, "x0"), "coef"] == model.coef_[1, 0]
    assert table.as_text() == str(table)
    res = mnlogit(X, y)
    np.testing.assert_allclose(table["std err"].to_numpy(), sm_rows(res.bse), rtol=1e-6)
    np.testing.assert_allclose(table["P>|z|"].to_numpy(), sm_rows(res.pvalues), rtol=1e-6)
    np.testing.assert_allclose(table[["[0.025", "0.975]"]].to_numpy(),
                               np.asarray(res.conf_int()).reshape(-1, 2), rtol=1e-6)


def test_unconverged_fit_is_flagged_in_inference_and_summary():
    """As statsmodels' header does, the summary says whether the fit converged; standard errors of a fit
    that stopped early come with a ConvergenceWarning."""
    from sklearn.exceptions import ConvergenceWarning

    from softmaxreg import SoftmaxRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3)) * [1, 10, 100] + 5
    y = rng.integers(0, 3, 200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        stopped = SoftmaxRegression(penalty=None, reference_class=0, max_iter=1).fit(X, y)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        text = str(stopped.summary())
    assert "Converged:" in text and "not the optimum" in text
    done = SoftmaxRegression(penalty=None, reference_class=0, tol=1e-8).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        text = str(done.summary())
    assert "not the optimum" not in text and "Converged:" in text


def test_effects_and_intervals_refuse_non_finite_rows():
    from softmaxreg import SoftmaxRegression

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(90, 3)), np.arange(90) % 3
    model = SoftmaxRegression(penalty=None, reference_class=0).fit(X, y)
    with pytest.raises(ValueError, match="NaN at row 0"):
        model.marginal_effects(np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match="NaN at row 0"):
        model.predict_interval(np.full((2, 3), np.nan))
    with pytest.raises(ValueError, match=r"at\['x0'\] = inf"):
        model.marginal_effects(at={"x0": np.inf})


def test_remove_data_drops_the_training_rows_and_keeps_computed_results():
    import pickle

    from softmaxreg.models import SoftmaxRegression

    X, y = make_data(0, 2000, 5, 3)
    model = SoftmaxRegression(penalty=None, reference_class=0).fit(X, y)
    table = model.inference().bse.copy()
    assert len(pickle.dumps(model)) > X.nbytes  # the training rows travel with a fitted model
    assert model.remove_data() is model
    small = pickle.loads(pickle.dumps(model))
    assert len(pickle.dumps(model)) < X.nbytes / 4
    np.testing.assert_array_equal(small.inference().bse, table)
    assert str(small.summary()) == str(model.summary())
    assert small.llf == model.llf
    np.testing.assert_array_equal(small.predict_proba(X), model.predict_proba(X))
    with pytest.raises(ValueError, match="remove_data"):
        small.inference("HC0")
