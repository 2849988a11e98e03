"""SoftmaxRegression against scikit-learn's optimum, its special cases, inputs and errors."""

import warnings

import numpy as np
import pandas as pd
import polars as pl
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import load_digits, load_iris, load_wine, make_classification
from sklearn.exceptions import ConvergenceWarning, DataConversionWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from softmaxreg.functional import softmax
from softmaxreg.loss import LinearSoftmaxLoss
from softmaxreg.solvers._schedules import CosineLR
from softmaxreg.models import SoftmaxRegression


def dataset(name):
    if name == "synthetic":
        X, y = make_classification(300, 8, n_informative=5, n_redundant=0, n_classes=4,
                                   random_state=0)
    elif name == "digits":
        X, y = load_digits(return_X_y=True)
        X, y = X[::4], y[::4]
    else:
        X, y = {"iris": load_iris, "wine": load_wine}[name](return_X_y=True)
    return StandardScaler().fit_transform(X), y


def sklearn_objective(model, X, y, C, l1_ratio=0.0, sample_weight=None):
    """C * sum_i s_i CE_i + penalty(W), evaluated for the model's coefficients."""
    loss = LinearSoftmaxLoss(X, np.searchsorted(model.classes_, y), sample_weight=sample_weight)
    w = loss.pack(model.coef_, model.intercept_)
    W = np.asarray(model.coef_, dtype=np.float64)
    penalty = l1_ratio * np.abs(W).sum() + 0.5 * (1 - l1_ratio) * (W**2).sum()
    return C * loss.sum_sample_weight * loss.loss(w) + penalty


class Wrapped:
    """sklearn's binary model as (2, p) symmetric coefficients, for the objective above."""

    def __init__(self, sk):
        self.classes_ = sk.classes_
        self.coef_ = np.vstack([-sk.coef_ / 2, sk.coef_ / 2])
        self.intercept_ = np.array([-sk.intercept_[0] / 2, sk.intercept_[0] / 2])


@pytest.mark.parametrize("name", ["iris", "wine", "synthetic", "digits"])
@pytest.mark.parametrize("solver", ["lbfgs", "newton-cg", "proximal"])
def test_reaches_sklearn_optimum(name, solver):
    if solver == "proximal" and name == "digits":
        pytest.skip("FISTA needs ~2000 iterations there; covered on the other data sets")
    X, y = dataset(name)
    C = 0.5
    model = SoftmaxRegression(C=C, solver=solver, tol=1e-9, max_iter=10_000).fit(X, y)
    sk = LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(X, y)
    ours, ref = sklearn_objective(model, X, y, C), sklearn_objective(sk, X, y, C)
    assert abs(ours - ref) <= 1e-6 * ref
    assert model.converged_
    # history_ is the per-sample objective: the above divided by C * n.
    assert model.history_[-1] == pytest.approx(ours / (C * len(y)), rel=1e-9)
    assert np.mean(model.predict(X) == sk.predict(X)) >= 0.99


@pytest.mark.parametrize("name, C, l1_ratio", [("iris", 1.0, 1.0), ("wine", 0.3, 0.5)])
def test_l1_and_elasticnet_reach_saga_optimum(name, C, l1_ratio):
    X, y = dataset(name)
    penalty = "l1" if l1_ratio == 1.0 else "elasticnet"
    model = SoftmaxRegression(penalty, C=C, l1_ratio=l1_ratio, tol=1e-9, max_iter=20_000).fit(X, y)
    sk = LogisticRegression(C=C, l1_ratio=l1_ratio, solver="saga", tol=1e-10,
                            max_iter=20_000).fit(X, y)
    ours = sklearn_objective(model, X, y, C, l1_ratio)
    ref = sklearn_objective(sk, X, y, C, l1_ratio)
    assert abs(ours - ref) <= 1e-6 * ref
    assert model.solver_ == "proximal" and np.any(model.coef_ == 0)


def test_sample_weights_and_class_weight():
    X, y = dataset("iris")
    counts = np.random.default_rng(0).integers(0, 4, size=len(y))
    kw = dict(C=2.0, tol=1e-10, max_iter=1000)
    weighted = SoftmaxRegression(**kw).fit(X, y, sample_weight=counts)
    repeated = SoftmaxRegression(**kw).fit(np.repeat(X, counts, axis=0), np.repeat(y, counts))
    np.testing.assert_allclose(weighted.coef_, repeated.coef_, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(weighted.intercept_, repeated.intercept_, rtol=1e-6, atol=1e-7)
    sk = LogisticRegression(**kw).fit(X, y, sample_weight=counts)
    assert sklearn_objective(weighted, X, y, 2.0, sample_weight=counts) == pytest.approx(
        sklearn_objective(sk, X, y, 2.0, sample_weight=counts), rel=1e-6)
    # class_weight="balanced" is the same as the equivalent per-row weights.
    Xs, ys = X[20:], y[20:]
    balanced = SoftmaxRegression(class_weight="balanced", **kw).fit(Xs, ys)
    w = (len(ys) / (3 * np.bincount(ys)))[ys]
    explicit = SoftmaxRegression(**kw).fit(Xs, ys, sample_weight=w)
    np.testing.assert_allclose(balanced.coef_, explicit.coef_, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("penalty, solver", [("l2", "lbfgs"), ("l2", "newton-cg"),
                                             ("elasticnet", "proximal")])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_weights_and_no_intercept_reach_sklearn_optimum(penalty, solver, fit_intercept):
    # "balanced" counts classes by their sample weight, as scikit-learn does.
    X, y = dataset("wine")
    sw = np.random.default_rng(1).integers(1, 4, size=len(y)).astype(float)
    kw = dict(C=0.5, penalty=penalty, l1_ratio=0.5 if penalty == "elasticnet" else None,
              fit_intercept=fit_intercept, class_weight="balanced")
    model = SoftmaxRegression(solver=solver, tol=1e-10, max_iter=5000, **kw).fit(
        X, y, sample_weight=sw)
    sk = LogisticRegression(solver="lbfgs" if penalty == "l2" else "saga", tol=1e-12,
                            max_iter=20_000, **kw).fit(X, y, sample_weight=sw)
    totals = np.bincount(y, weights=sw)
    s = sw * (sw.sum() / (3 * totals))[y]
    l1_ratio = kw["l1_ratio"] or 0.0
    ours = sklearn_objective(model, X, y, 0.5, l1_ratio, sample_weight=s)
    ref = sklearn_objective(sk, X, y, 0.5, l1_ratio, sample_weight=s)
    assert abs(ours - ref) <= 1e-6 * ref
    if not fit_intercept:
        assert np.all(model.intercept_ == 0)


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("solver", ["lbfgs", "newton-cg", "sgd"])
def test_sparse_equals_dense(fmt, solver):
    X, y = dataset("wine")
    X[np.abs(X) < 0.5] = 0.0
    kw = dict(solver=solver, tol=1e-10, max_iter=30 if solver == "sgd" else 1000,
              random_state=0, batch_size=32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        dense = SoftmaxRegression(**kw).fit(X, y)
        sparse = SoftmaxRegression(**kw).fit(sp.csr_matrix(X).asformat(fmt), y)
    tol = 1e-12 if solver == "sgd" else 1e-6
    np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=tol, atol=tol)
    np.testing.assert_allclose(sparse.predict_proba(sp.csr_matrix(X)), dense.predict_proba(X),
                               rtol=1e-10, atol=1e-12)


def test_two_classes_equal_logistic_regression():
    X, y = make_classification(200, 5, n_informative=3, n_redundant=0, n_classes=2,
                               flip_y=0.1, random_state=3)
    # Reference coding against classes_[0] and no penalty: coef_[1] is LogisticRegression's.
    ref = SoftmaxRegression(penalty=None, reference_class=0, tol=1e-10, max_iter=1000).fit(X, y)
    sk = LogisticRegression(C=np.inf, tol=1e-12, max_iter=10_000).fit(X, y)
    assert ref.coef_.shape == (2, 5) and not ref.coef_[0].any() and ref.intercept_[0] == 0
    np.testing.assert_allclose(ref.coef_[1], sk.coef_[0], rtol=1e-5)
    np.testing.assert_allclose(ref.intercept_[1], sk.intercept_[0], rtol=1e-5)
    np.testing.assert_allclose(ref.predict_proba(X), sk.predict_proba(X), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ref.decision_function(X), sk.decision_function(X), rtol=1e-5,
                               atol=1e-7)
    # At the default tol too (the unpenalized fit ends with exact Newton steps), and with
    # the other class as reference the row is the negated one.
    for solver in ("lbfgs", "newton-cg"):
        default = SoftmaxRegression(penalty=None, reference_class=0, solver=solver).fit(X, y)
        np.testing.assert_allclose(default.coef_[1], sk.coef_[0], rtol=1e-6)
        flipped = SoftmaxRegression(penalty=None, reference_class=1, solver=solver).fit(X, y)
        np.testing.assert_allclose(flipped.coef_[0], -sk.coef_[0], rtol=1e-6)
        np.testing.assert_allclose(flipped.intercept_[0], -sk.intercept_[0], rtol=1e-6)
    # Symmetric coding with L2 at C: the rows are +-w/2, so w = coef_[1] - coef_[0] is
    # binary logistic regression at 2C (its penalty 0.5 |w|^2 counts |w/2|^2 twice).
    sym = SoftmaxRegression(C=0.3, tol=1e-10, max_iter=1000).fit(X, y)
    sk2 = LogisticRegression(C=0.6, tol=1e-12, max_iter=10_000).fit(X, y)
    np.testing.assert_allclose(sym.coef_[0], -sym.coef_[1], atol=1e-10)
    np.testing.assert_allclose(sym.coef_[1] - sym.coef_[0], sk2.coef_[0], rtol=1e-5)
    assert sklearn_objective(sym, X, y, 0.3) == pytest.approx(
        sklearn_objective(Wrapped(sk2), X, y, 0.3), rel=1e-8)


def test_reference_class_any_label_gives_same_probabilities():
    X, y = dataset("wine")
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    kw = dict(penalty=None, tol=1e-10, max_iter=1000)
    fits = [SoftmaxRegression(reference_class=r, **kw).fit(X[:, :2], labels)
            for r in ("setosa", "virginica")]
    np.testing.assert_allclose(fits[0].predict_proba(X[:, :2]), fits[1].predict_proba(X[:, :2]),
                               rtol=1e-6, atol=1e-9)
    assert not fits[1].coef_[2].any()
    # Changing reference is a shift of all rows: coef differences are invariant.
    np.testing.assert_allclose(fits[0].coef_ - fits[0].coef_[2], fits[1].coef_, atol=1e-5)
    with pytest.raises(ValueError, match="reference_class='dog' is not one of the classes"):
        SoftmaxRegression(reference_class="dog").fit(X, labels)


def sgd_by_hand(X, y, *, C, lr, batch, epochs, momentum, seed):
    """The documented sgd algorithm, written out (what MLPClassifier must reproduce)."""
    n, p = X.shape
    k = y.max() + 1
    rng = np.random.default_rng(seed)
    W = rng.normal(0.0, 0.01, size=(k, p))
    b = np.zeros(k)
    vW, vb = np.zeros_like(W), np.zeros_like(b)
    for _ in range(epochs):
        perm = rng.permutation(n)
        for s in range(0, n, batch):
            idx = perm[s : s + batch]
            Z = X[idx] @ W.T + b
            P = np.exp(Z - Z.max(axis=1, keepdims=True))
            P /= P.sum(axis=1, keepdims=True)
            P[np.arange(idx.size), y[idx]] -= 1
            gW = P.T @ X[idx] / idx.size + W / (C * n)
            gb = P.mean(axis=0)
            vW, vb = momentum * vW + gW, momentum * vb + gb
            W, b = W - lr * vW, b - lr * vb
    return W, b


@pytest.mark.parametrize("momentum", [0.0, 0.8])
def test_sgd_is_the_documented_algorithm(momentum):
    X, y = dataset("iris")
    model = SoftmaxRegression(solver="sgd", C=2.0, learning_rate=0.05, batch_size=16,
                              max_iter=7, tol=None, momentum=momentum, random_state=42).fit(X, y)
    W, b = sgd_by_hand(X, y, C=2.0, lr=0.05, batch=16, epochs=7, momentum=momentum, seed=42)
    np.testing.assert_allclose(model.coef_, W, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(model.intercept_, b, rtol=1e-11, atol=1e-13)
    assert model.n_iter_ == 7 and len(model.history_) == 7


def test_sgd_approaches_the_optimum():
    X, y = dataset("wine")
    full = SoftmaxRegression(C=1.0, tol=1e-10).fit(X, y)
    model = SoftmaxRegression(solver="sgd", C=1.0, learning_rate=0.1, batch_size=16,
                              learning_rate_schedule="cosine", momentum=0.9, max_iter=200,
                              tol=None, random_state=0).fit(X, y)
    assert model.history_[-1] == pytest.approx(full.history_[-1], rel=5e-3)
    assert np.mean(model.predict(X) == full.predict(X)) >= 0.97


def test_partial_fit_over_shuffled_batches_approaches_full_fit():
    # One pass over a stream of 100 shuffled batches targets fit() on the whole stream.
    X, y = make_classification(20_000, 10, n_informative=6, n_redundant=0, n_classes=3,
                               flip_y=0.05, random_state=0)
    full = SoftmaxRegression(C=0.01, tol=1e-10).fit(X, y)
    model = SoftmaxRegression(C=0.01, learning_rate=0.5, learning_rate_schedule="inverse_time",
                              batch_size=32, random_state=0)
    for chunk in np.array_split(np.random.default_rng(1).permutation(len(y)), 100):
        model.partial_fit(X[chunk], y[chunk], classes=[0, 1, 2])
    objective = LinearSoftmaxLoss(X, y, l2_reg_strength=1.0 / (0.01 * len(y)))
    ours = objective.loss(objective.pack(model.coef_, model.intercept_))
    assert ours == pytest.approx(full.history_[-1], rel=2e-2)
    assert model.n_iter_ == 100 and len(model.history_) == 100
    assert np.mean(model.predict(X) == full.predict(X)) >= 0.9


def test_partial_fit_on_all_rows_is_one_sgd_epoch():
    X, y = dataset("iris")
    kw = dict(C=1.0, learning_rate=0.05, batch_size=16, momentum=0.5, random_state=3)
    model = SoftmaxRegression(**kw)
    for _ in range(2):
        model.partial_fit(X, y)
    # Same steps by hand: zero start, shared rng, L2 over the weight seen so far (n, then 2n).
    rng = np.random.default_rng(3)
    W, b = np.zeros((3, 4)), np.zeros(3)
    vW, vb = np.zeros_like(W), np.zeros_like(b)
    for seen in (150, 300):
        perm = rng.permutation(150)
        for s in range(0, 150, 16):
            idx = perm[s : s + 16]
            Z = X[idx] @ W.T + b
            P = np.exp(Z - Z.max(axis=1, keepdims=True))
            P /= P.sum(axis=1, keepdims=True)
            P[np.arange(idx.size), y[idx]] -= 1
            vW = 0.5 * vW + P.T @ X[idx] / idx.size + W / seen
            vb = 0.5 * vb + P.mean(axis=0)
            W, b = W - 0.05 * vW, b - 0.05 * vb
    np.testing.assert_allclose(model.coef_, W, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(model.intercept_, b, rtol=1e-11, atol=1e-13)


def test_partial_fit_adds_new_classes_and_rejects_unknown_ones():
    X, y = dataset("iris")
    model = SoftmaxRegression(random_state=0)
    model.partial_fit(X[y < 2], y[y < 2])
    old = model.coef_.copy()
    assert model.classes_.tolist() == [0, 1]
    model.partial_fit(X[y == 2][:5], y[y == 2][:5])
    assert model.classes_.tolist() == [0, 1, 2] and model.coef_.shape == (3, 4)
    assert not np.allclose(model.coef_[:2], old)  # the old rows keep training
    fixed = SoftmaxRegression().partial_fit(X[:10], y[:10], classes=[0, 1])
    with pytest.raises(ValueError, match=r"labels \[2\] that are not in classes"):
        fixed.partial_fit(X[-5:], y[-5:])
    with pytest.raises(ValueError, match="only one class"):
        SoftmaxRegression().partial_fit(X[:5], y[:5])


def test_partial_fit_continues_a_fitted_model_and_accepts_random_state_objects():
    X, y = dataset("iris")
    model = SoftmaxRegression(tol=1e-8).fit(X, y)
    before = model.coef_.copy()
    model.set_params(learning_rate=1e-3).partial_fit(X[:30], y[:30])
    assert model.n_iter_ == 1
    np.testing.assert_allclose(model.coef_, before, atol=1e-2)  # a small step, not a restart
    assert not np.array_equal(model.coef_, before)
    with pytest.raises(ValueError, match="differs from the classes the model already has"):
        model.partial_fit(X[:30], y[:30], classes=[0, 1, 2, 3])
    a = SoftmaxRegression(solver="sgd", max_iter=2, tol=None,
                          random_state=np.random.RandomState(0)).fit(X, y)
    b = SoftmaxRegression(solver="sgd", max_iter=2, tol=None,
                          random_state=np.random.RandomState(0)).fit(X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)


def test_float32_is_kept_and_matches_float64():
    X, y = dataset("wine")
    X32 = np.asarray(X, dtype=np.float32)
    m32 = SoftmaxRegression(tol=1e-6).fit(X32, y)
    m64 = SoftmaxRegression(tol=1e-10).fit(X, y)
    assert m32.coef_.dtype == np.float32 and m32._loss.X is X32  # no copy of X
    np.testing.assert_allclose(m32.coef_, m64.coef_, rtol=1e-3, atol=1e-4)
    assert m32.history_[-1] == pytest.approx(m64.history_[-1], rel=1e-5)
    forced = SoftmaxRegression(dtype="float32").fit(X, y)
    assert forced.coef_.dtype == np.float32
    sgd32 = SoftmaxRegression(solver="sgd", max_iter=3, tol=None, random_state=0).fit(X32, y)
    assert sgd32.coef_.dtype == np.float32


def test_dataframes_keep_feature_names_and_any_labels():
    X, y = dataset("iris")
    names = ["sepal_l", "sepal_w", "petal_l", "petal_w"]
    labels = np.array(["a", "b", "c"], dtype=object)[y]
    ref = SoftmaxRegression().fit(X, labels)
    for frame in (pd.DataFrame(X, columns=names), pl.DataFrame(X, schema=names)):
        model = SoftmaxRegression().fit(frame, labels)
        assert model.feature_names_in_.tolist() == names
        assert model.classes_.tolist() == ["a", "b", "c"]
        np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-12)
        assert (model.predict(frame) == ref.predict(X)).all()
    for frame in (pd.DataFrame(X.astype(np.float32), columns=names),
                  pl.DataFrame(X.astype(np.float32), schema=names)):
        assert SoftmaxRegression().fit(frame, labels).coef_.dtype == np.float32
    # y as a pandas Series, and a column vector (warned about, as in scikit-learn).
    model = SoftmaxRegression().fit(X, pd.Series(labels))
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-12)
    with pytest.warns(DataConversionWarning):
        model = SoftmaxRegression().fit(X, labels.reshape(-1, 1))
    np.testing.assert_allclose(model.coef_, ref.coef_, rtol=1e-12)


@pytest.mark.parametrize("labels", [[None, 1, 2] * 10, [0.0, np.nan, 1.0] * 10,
                                    pd.Series(pd.array([None, "a", "b"] * 10, dtype="string")),
                                    pd.Series(pd.to_datetime(["2020-01-01", None, "2020-01-02"] * 10))])
def test_missing_labels_are_refused_not_made_a_class(labels):
    X = np.random.default_rng(0).normal(size=(30, 2))
    for model in (SoftmaxRegression(), SoftmaxRegression(solver="sgd", max_iter=2)):
        with pytest.raises(ValueError, match=r"missing label\(s\).*first at row [01]"):
            model.fit(X, labels)
    for classes, words in (([0, 1, None], "missing label"), ([0, 1, 1], "more than once"),
                           ([[0, 1, 2]], "1-D")):
        with pytest.raises(ValueError, match=words):
            SoftmaxRegression(solver="sgd").partial_fit(X, np.arange(30) % 3, classes=classes)


@pytest.mark.parametrize("names", [[(0, "x"), (1, "y"), (2, "z")], [2.5, "a", 1],
                                   [frozenset(), "b", (1,)], [True, "x", 3]])
def test_labels_of_any_hashable_type(names):
    X, y = dataset("iris")
    ref = SoftmaxRegression().fit(X, y)
    labels = [names[k] for k in y]  # a plain list, as a user would pass it
    model = SoftmaxRegression().fit(X, labels)
    assert sorted(map(repr, model.classes_.tolist())) == sorted(map(repr, names))
    order = [names.index(c) for c in model.classes_.tolist()]
    np.testing.assert_allclose(model.coef_, ref.coef_[order], rtol=1e-9, atol=1e-12)
    predicted = model.predict(X)
    assert predicted.shape == (len(y),)
    assert predicted.tolist() == [names[k] for k in ref.predict(X)]
    assert model.score(X, labels) == ref.score(X, y)
    # Any label can be the reference class, and partial_fit grows the classes.
    fixed = SoftmaxRegression(reference_class=names[1]).fit(X, labels)
    np.testing.assert_array_equal(fixed.coef_[model.classes_.tolist().index(names[1])], 0.0)
    online = SoftmaxRegression(random_state=0).partial_fit(X[y < 2], [labels[i] for i in
                                                                      np.flatnonzero(y < 2)])
    online.partial_fit(X, labels)
    assert online.classes_.tolist() == model.classes_.tolist()
    with pytest.raises(ValueError, match="not in classes"):
        SoftmaxRegression().partial_fit(X, labels, classes=names[:2] + ["other"])


def test_continuous_or_unhashable_labels_are_refused():
    X, y = dataset("iris")
    with pytest.raises(ValueError, match="continuous"):
        SoftmaxRegression().fit(X, np.array([0.5, 1.5, 2.7], dtype=object)[y])
    with pytest.raises(ValueError, match="continuous"):
        SoftmaxRegression().fit(X, y + 0.5)
    with pytest.raises(ValueError, match="y should be a 1d array"):
        SoftmaxRegression().fit(X, np.c_[y, y])


def test_predict_log_proba_keeps_the_tail():
    X = np.array([[-1.0], [1.0]])
    model = SoftmaxRegression(C=1e6, tol=1e-10).fit(X, [0, 1])
    far = np.array([[200.0]])
    log_p = model.predict_log_proba(far)
    assert np.all(np.isfinite(log_p)) and log_p[0, 0] < -300
    np.testing.assert_allclose(np.exp(log_p), model.predict_proba(far), rtol=1e-12)


def test_decision_function_shapes():
    X, y = dataset("iris")
    model = SoftmaxRegression().fit(X, y)
    Z = model.decision_function(X)
    assert Z.shape == (150, 3)
    np.testing.assert_allclose(Z, X @ model.coef_.T + model.intercept_, rtol=1e-12)
    binary = SoftmaxRegression().fit(X[y < 2], y[y < 2])
    d = binary.decision_function(X)
    np.testing.assert_allclose(d, X @ (binary.coef_[1] - binary.coef_[0])
                               + binary.intercept_[1] - binary.intercept_[0], rtol=1e-10)


def test_callback_and_verbose(capsys):
    X, y = dataset("iris")
    infos = []

    def callback(info):
        infos.append(info)
        return info["iteration"] == 4

    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = SoftmaxRegression(callback=callback, verbose=1, tol=1e-12).fit(X, y)
    assert [i["iteration"] for i in infos] == [1, 2, 3, 4]
    assert set(infos[0]) >= {"iteration", "objective", "elapsed", "solver"}
    assert [i["objective"] for i in infos] == model.history_[:4]
    assert model.n_iter_ == 4 and not model.converged_
    assert "iteration 4" in capsys.readouterr().out
    # the last reported coefficients are the returned model's
    np.testing.assert_allclose(infos[-1]["coef"], model.coef_)
    np.testing.assert_allclose(infos[-1]["intercept"], model.intercept_)
    epochs = []
    model = SoftmaxRegression(solver="sgd", max_iter=3, tol=None, random_state=0,
                              batch_size=150, callback=epochs.append).fit(X, y)
    assert [e["iteration"] for e in epochs] == [1, 2, 3]
    # One full batch per epoch: its accuracy is that of the weights before the step.
    assert epochs[2]["train_accuracy"] == pytest.approx(
        np.mean(SoftmaxRegression(solver="sgd", max_iter=2, tol=None, random_state=0,
                                  batch_size=150).fit(X, y).predict(X) == y))
    assert 0 <= epochs[0]["train_accuracy"] <= 1 and model.n_iter_ == 3


def test_convergence_warning_and_warm_start():
    X, y = dataset("wine")
    with pytest.warns(ConvergenceWarning):
        model = SoftmaxRegression(max_iter=2, warm_start=True).fit(X, y)
    assert not model.converged_
    model.set_params(max_iter=500, tol=1e-8).fit(X, y)
    cold = SoftmaxRegression(max_iter=500, tol=1e-8).fit(X, y)
    assert model.n_iter_ < cold.n_iter_
    assert model.history_[-1] == pytest.approx(cold.history_[-1], rel=1e-10)


def test_penalty_none_separation_is_reported():
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    y = np.array([0, 0, 1, 1])
    with pytest.raises(ValueError, match="separat"):
        SoftmaxRegression(penalty=None, reference_class=0).fit(X, y)


def test_inference_is_delegated_and_cached():
    X, y = dataset("wine")
    model = SoftmaxRegression(penalty=None, reference_class=0, tol=1e-10).fit(X[:, :2], y)
    cov = model.cov_params()
    assert cov.shape == (6, 6)
    np.testing.assert_allclose(cov, cov.T, rtol=1e-10)
    assert model.inference() is model.inference()
    assert model.summary() is not None


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_prediction_on_large_x_with_a_non_finite_entry_says_where(value):
    """predict, predict_proba, decision_function and predict_log_proba read a large dense X once (a fused
    pass, no separate finite check); an inf or NaN still makes the clear error, and huge finite features
    (logits that overflow) still get probabilities."""
    rng = np.random.default_rng(5)
    X = rng.normal(size=(6000, 48))
    y = (X[:, :3] @ rng.normal(size=(3, 4))).argmax(axis=1)
    model = SoftmaxRegression().fit(X, y)
    bad = X.copy()
    bad[4321, 17] = value
    what = "NaN" if np.isnan(value) else ("inf" if value > 0 else "-inf")
    for method in (model.predict_proba, model.predict, model.decision_function, model.predict_log_proba):
        with pytest.raises(ValueError, match=f"X contains {what} at row 4321, column 17"):
            method(bad)
    # The fused passes agree with the reference path (forced through a sparse copy of X), up to the
    # order of the sums: a logit near 0 is a cancellation, so the tolerance is relative to the largest.
    ref = model.decision_function(sp.csr_matrix(X))
    np.testing.assert_allclose(model.decision_function(X), ref, rtol=1e-12, atol=1e-14 * np.abs(ref).max())
    np.testing.assert_array_equal(model.predict(X), model.predict(sp.csr_matrix(X)))
    ref = model.predict_log_proba(sp.csr_matrix(X))
    np.testing.assert_allclose(model.predict_log_proba(X), ref, rtol=1e-12, atol=1e-14 * np.abs(ref).max())
    huge = X.copy()
    huge[10] = 1e308  # its logits overflow: the fused pass hands the row to the reference path
    with np.errstate(all="ignore"):
        P = model.predict_proba(huge)
        reference = softmax(model.decision_function(huge), axis=1)
    np.testing.assert_allclose(P[:10], model.predict_proba(X[:10]), rtol=1e-12)
    np.testing.assert_allclose(P, reference, rtol=1e-12)


BAD = [
    (lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 9, np.nan, X), y),
     "X contains NaN at row 2, column 1"),
    (lambda X, y: (np.where(np.arange(X.size).reshape(X.shape) == 4, np.inf, X), y),
     "X contains inf at row 1, column 0"),
    (lambda X, y: (X, np.zeros_like(y)), "only one class"),
    (lambda X, y: (X[:0], y[:0]), "0 sample"),
    (lambda X, y: (X, np.column_stack([y, y, y])), "1d array"),
    (lambda X, y: (X, y[:-1]), "inconsistent numbers of samples"),
    (lambda X, y: (X, y + 0.5), "Unknown label type"),
]


@pytest.mark.parametrize("make_bad, match", BAD)
def test_bad_input_is_a_clear_error_and_keeps_the_fitted_model(make_bad, match):
    X, y = dataset("iris")
    X = X[::10].copy()
    y = y[::10].copy()
    model = SoftmaxRegression().fit(X, y)
    coef, classes = model.coef_.copy(), model.classes_.copy()
    with pytest.raises(ValueError, match=match):
        model.fit(*make_bad(X, y))
    np.testing.assert_array_equal(model.coef_, coef)
    np.testing.assert_array_equal(model.classes_, classes)
    assert model.n_features_in_ == 4


@pytest.mark.parametrize(
    "sample_weight, match",
    [(-np.ones(15), "non-negative; row 0"), (np.full(15, np.nan), "finite"),
     (np.ones(3), r"shape \(15,\)"), (np.zeros(15), "sums to zero")],
)
def test_bad_sample_weight(sample_weight, match):
    X, y = dataset("iris")
    with pytest.raises(ValueError, match=match):
        SoftmaxRegression().fit(X[::10], y[::10], sample_weight=sample_weight)


@pytest.mark.parametrize(
    "params, match",
    [({"penalty": "l3"}, "penalty must be one of"), ({"C": -1.0}, "C must be"),
     ({"l1_ratio": 2.0, "penalty": "elasticnet"}, "l1_ratio must be"),
     ({"solver": "saga"}, "solver must be one of"), ({"max_iter": 0}, "max_iter must be"),
     ({"max_iter": 2.5}, "max_iter must be an integer"), ({"tol": -1.0}, "tol must be"),
     ({"batch_size": 0}, "batch_size must be"), ({"learning_rate": 0.0}, "learning_rate must be"),
     ({"learning_rate": "cosine"}, "learning_rate_schedule='cosine'"),
     ({"learning_rate_schedule": "warp"}, "learning_rate_schedule must be"),
     ({"momentum": 1.0}, "momentum must be in"), ({"class_weight": "even"}, "class_weight must"),
     ({"class_weight": {7: 2.0}}, "class_weight has label 7"),
     ({"warm_start": "yes"}, "warm_start must be"), ({"fit_intercept": 1}, "fit_intercept must"),
     ({"reference_class": 9}, "reference_class=9 is not one of the classes"),
     ({"dtype": "float16"}, "dtype must be"), ({"random_state": "seed"}, "random_state must be"),
     ({"verbose": -1}, "verbose must be"), ({"callback": 3}, "callback must be")],
)
def test_invalid_parameters_are_named_at_fit(params, match):
    X, y = dataset("iris")
    model = SoftmaxRegression(**params)  # __init__ only stores
    assert model.get_params()[next(iter(params))] is next(iter(params.values()))
    with pytest.raises(ValueError, match=match):
        model.fit(X[::10], y[::10])


def test_parameter_spellings_and_schedules():
    X, y = dataset("iris")
    model = SoftmaxRegression(dtype=np.float32, fit_intercept=np.True_).fit(X, y)
    assert model.coef_.dtype == np.float32
    clone_ = clone(SoftmaxRegression(C=3.0, reference_class=1))
    assert clone_.get_params()["C"] == 3.0 and clone_.reference_class == 1
    # learning_rate may itself be a schedule: the same run as the named one.
    kw = dict(solver="sgd", max_iter=5, tol=None, random_state=0, batch_size=16)
    named = SoftmaxRegression(learning_rate=0.2, learning_rate_schedule="cosine", **kw).fit(X, y)
    given = SoftmaxRegression(learning_rate=CosineLR(0.2, n_epochs=5), **kw).fit(X, y)
    np.testing.assert_array_equal(named.coef_, given.coef_)
    with pytest.raises(ValueError, match="already a schedule"):
        SoftmaxRegression(learning_rate=CosineLR(0.2, n_epochs=5),
                          learning_rate_schedule="step", **kw).fit(X, y)


def test_bad_parameters_and_predict_input():
    X, y = dataset("iris")
    with pytest.raises(ValueError, match="C must be a real number > 0"):
        SoftmaxRegression(C=0).fit(X, y)
    with pytest.raises(ValueError, match="solver='proximal'"):
        SoftmaxRegression(penalty="l1", solver="lbfgs").fit(X, y)
    with pytest.raises(ValueError, match="needs l1_ratio"):
        SoftmaxRegression(penalty="elasticnet").fit(X, y)
    model = SoftmaxRegression().fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but SoftmaxRegression is expecting 4"):
        model.predict(X[:, :3])
    bad = X[:3].copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="row 1, column 2"):
        model.predict_proba(bad)


def test_reference_coding_matches_statsmodels_mnlogit():
    import statsmodels.api as sm

    X, y = dataset("wine")
    X = X[:, [0, 6, 9]]
    model = SoftmaxRegression(penalty=None, reference_class=0, tol=1e-10, max_iter=1000).fit(X, y)
    res = sm.MNLogit(y, sm.add_constant(X)).fit(method="newton", tol=1e-12, disp=False)
    params = np.asarray(res.params)  # (1 + n_features, n_classes - 1), constant first
    np.testing.assert_allclose(model.intercept_[1:], params[0], rtol=1e-6)
    np.testing.assert_allclose(model.coef_[1:], params[1:].T, rtol=1e-6)
    # Our history is the per-sample negative log-likelihood.
    assert model.history_[-1] == pytest.approx(-res.llf / len(y), rel=1e-10)


@pytest.mark.parametrize("penalty", ["l2", "l1"])
def test_sgd_history_is_the_same_with_and_without_a_callback(penalty):
    """Without a callback the epochs are scored after the run, all together: the same history_ as
    scoring each epoch as it ends, and its last entry is the objective at the returned model."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(6000, 48))  # large enough for the fused kernels
    y = (X[:, :4] @ rng.normal(size=(4, 5))).argmax(axis=1)
    params = dict(solver="sgd", max_iter=4, tol=None, random_state=2, penalty=penalty, C=0.5, batch_size=128)
    plain = SoftmaxRegression(**params).fit(X, y)
    infos = []
    watched = SoftmaxRegression(callback=lambda info: infos.append(info["objective"]) and False, **params).fit(X, y)
    np.testing.assert_array_equal(plain.coef_, watched.coef_)
    assert len(plain.history_) == 4 and len(set(plain.history_)) == 4
    assert plain.history_ == pytest.approx(watched.history_, rel=1e-12) and infos == watched.history_
    if penalty == "l2":
        loss = LinearSoftmaxLoss(X, y, n_classes=5, l2_reg_strength=1.0 / (0.5 * len(y)))
        assert plain.history_[-1] == pytest.approx(loss.loss(loss.pack(plain.coef_, plain.intercept_)), rel=1e-12)


def test_fused_paths_equal_the_reference_paths():
    # large enough for the fused kernels (X of >= 2**18 entries): the sgd epochs and
    # predict_proba take them; forcing the reference loop must give the same model
    from softmaxreg.loss import _linear_softmax

    rng = np.random.default_rng(3)
    X = rng.normal(size=(6000, 48))
    y = (X[:, :4] @ rng.normal(size=(4, 5))).argmax(axis=1)
    params = dict(solver="sgd", max_iter=3, tol=None, random_state=1, momentum=0.5, batch_size=64)
    fused = SoftmaxRegression(**params).fit(X, y)
    original = _linear_softmax.LinearSoftmaxLoss.sgd_epoch
    try:
        _linear_softmax.LinearSoftmaxLoss.sgd_epoch = lambda self, *a, **k: None
        loop = SoftmaxRegression(**params).fit(X, y)
    finally:
        _linear_softmax.LinearSoftmaxLoss.sgd_epoch = original
    np.testing.assert_allclose(fused.coef_, loop.coef_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fused.intercept_, loop.intercept_, rtol=1e-9, atol=1e-12)
    assert fused.history_ == pytest.approx(loop.history_, rel=1e-10)
    P = fused.predict_proba(X)
    assert P.shape == (6000, 5)
    np.testing.assert_allclose(P, softmax(X @ fused.coef_.T + fused.intercept_, axis=1), rtol=1e-12, atol=1e-15)
    X32 = X.astype(np.float32)
    m32 = SoftmaxRegression(dtype="float32", **params).fit(X32, y)
    np.testing.assert_allclose(m32.predict_proba(X32), softmax(X32.astype(np.float64) @ m32.coef_.T.astype(np.float64)
                               + m32.intercept_, axis=1), atol=1e-5)


@pytest.mark.parametrize("solver", ["auto", "lbfgs", "sgd"])
@pytest.mark.parametrize("layout", ["fortran", "strided", "frame"])
def test_any_dense_layout_fits_as_its_c_ordered_copy(monkeypatch, solver, layout):
    """Fit copies a dense X into C order once, as scikit-learn's LogisticRegression does, so a
    Fortran-ordered array, a strided view or a homogeneous DataFrame (whose values are
    Fortran-ordered) gets the fused passes and the same model, to the bit, as its C-ordered copy."""
    from softmaxreg import _native as _fused

    rng = np.random.default_rng(5)
    X = rng.normal(size=(6000, 48))  # large enough for the fused kernels
    y = (X[:, :4] @ rng.normal(size=(4, 5))).argmax(axis=1)
    other = {"fortran": lambda: np.asfortranarray(X),
             "strided": lambda: np.repeat(X, 2, axis=1)[:, ::2],
             "frame": lambda: pd.DataFrame(X)}[layout]()
    params = dict(solver=solver, max_iter=5, random_state=0, batch_size=128)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = SoftmaxRegression(**params).fit(X, y)
        seen = []
        original = _fused.linear_softmax_pass

        def watched(X, *args, **kwargs):
            seen.append(X.flags.c_contiguous)
            return original(X, *args, **kwargs)

        monkeypatch.setattr(_fused, "linear_softmax_pass", watched)
        model = SoftmaxRegression(**params).fit(other, y)
    np.testing.assert_array_equal(model.coef_, reference.coef_)
    np.testing.assert_array_equal(model.intercept_, reference.intercept_)
    if solver != "sgd":
        assert seen and all(seen)


def _sklearn_sgd_stop(history, tol, patience):
    """The epoch (1-based) at which scikit-learn's SGDClassifier rule stops on ``history``."""
    best, count = np.inf, 0
    for epoch, f in enumerate(history, start=1):
        count = count + 1 if f > best - tol else 0
        best = min(best, f)
        if count >= patience:
            return epoch
    return None


def test_sgd_stopping_is_scikit_learns_rule_on_wine():
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    optimum = SoftmaxRegression(solver="lbfgs", tol=1e-10, max_iter=10000).fit(X, y).history_[-1]
    stops = []
    for patience, tol in ((5, 1e-4), (20, 1e-4), (5, 1e-6)):
        model = SoftmaxRegression(solver="sgd", max_iter=2000, tol=tol, n_iter_no_change=patience,
                                  batch_size=256, random_state=0).fit(X, y)
        assert model.converged_
        assert model.n_iter_ == _sklearn_sgd_stop(model.history_, tol, patience)
        stops.append(model.n_iter_)
    assert stops[0] < stops[1] < stops[2] < 2000
    # The defaults (batch_size="auto": 4 rows here, at least 50 steps an epoch) stop by
    # the same rule within 2% of the optimum, whatever the seed.
    for seed in range(3):
        model = SoftmaxRegression(solver="sgd", max_iter=2000, random_state=seed).fit(X, y)
        assert model.converged_ and model.n_iter_ < 2000
        assert model.n_iter_ == _sklearn_sgd_stop(model.history_, 1e-4, 5)
        assert model.history_[-1] <= 1.02 * optimum
    with pytest.raises(ValueError, match="n_iter_no_change"):
        SoftmaxRegression(solver="sgd", n_iter_no_change=0).fit(X, y)


def test_sgd_adaptive_schedule_divides_the_rate_at_each_plateau():
    """scikit-learn's "adaptive": a plateau divides the rate by 5; one below 1e-6 stops."""
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    optimum = SoftmaxRegression(solver="lbfgs", tol=1e-10, max_iter=10000).fit(X, y).history_[-1]
    model = SoftmaxRegression(solver="sgd", max_iter=2000, learning_rate_schedule="adaptive",
                              random_state=0).fit(X, y)
    assert model.converged_ and model.history_[-1] <= 1.02 * optimum
    # The run goes on past the first plateau, and each stretch of patience lowers the rate.
    first = _sklearn_sgd_stop(model.history_, 1e-4, 5)
    assert first < model.n_iter_ < 2000
    # A tolerance nothing meets: after the first epoch (an improvement on +inf) every
    # epoch adds to a plateau, and the rate falls from 0.1 past 1e-6 in 8 divisions
    # (0.1 / 5**8 = 2.6e-7): 1 + 9 plateaus of 2 epochs.
    hopeless = SoftmaxRegression(solver="sgd", max_iter=2000, learning_rate_schedule="adaptive",
                                 tol=1e3, n_iter_no_change=2, random_state=0).fit(X, y)
    assert hopeless.n_iter_ == 19
    constant = SoftmaxRegression(solver="sgd", max_iter=2000, tol=1e3, n_iter_no_change=2,
                                 random_state=0).fit(X, y)
    assert constant.n_iter_ == 3
    # Without a stopping rule the rate never changes: the constant schedule's run.
    kw = dict(solver="sgd", max_iter=30, tol=None, random_state=0)
    np.testing.assert_array_equal(
        SoftmaxRegression(learning_rate_schedule="adaptive", **kw).fit(X, y).coef_,
        SoftmaxRegression(**kw).fit(X, y).coef_)


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float32_in_float32_out(dtype, n_classes):
    """A float32 model returns float32 scores and probabilities (scikit-learn's rule)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 5)).astype(dtype)
    y = np.arange(120) % n_classes
    model = SoftmaxRegression().fit(X, y)
    ref = SoftmaxRegression().fit(X.astype(np.float64), y) if dtype == np.float32 else model
    for method in ("decision_function", "predict_proba", "predict_log_proba"):
        for Xin in (X, X.astype(np.float64)):
            out = getattr(model, method)(Xin)
            assert out.dtype == dtype, method
        np.testing.assert_allclose(out, getattr(ref, method)(X.astype(np.float64)),
                                   rtol=1e-4, atol=1e-5)


def test_non_numeric_columns_and_overflowing_weights_are_named():
    X = np.random.default_rng(0).normal(size=(30, 2))
    frame = pd.DataFrame(X, columns=["a", "b"])
    y = np.arange(30) % 3
    for bad in (frame.assign(s="x"), frame.assign(d=pd.Timestamp("2020-01-01")),
                frame.assign(c=pd.Categorical(["u"] * 30))):
        with pytest.raises(ValueError, match=r"non-numeric columns \['[sdc]'\]"):
            SoftmaxRegression().fit(bad, y)
    model = SoftmaxRegression().fit(frame.assign(flag=True), y)  # booleans are numbers
    with pytest.raises(ValueError, match=r"non-numeric columns \['s'\]"):
        model.predict(frame.assign(flag=True, s="x"))
    with pytest.raises(ValueError, match="more than float64 can hold"):
        SoftmaxRegression().fit(X, y, sample_weight=np.full(30, 1e308))


def test_object_columns_of_numbers_are_numbers():
    X = np.random.default_rng(0).normal(size=(30, 2))
    frame = pd.DataFrame(X, columns=["a", "b"]).astype(object)
    np.testing.assert_allclose(SoftmaxRegression().fit(frame, np.arange(30) % 3).coef_,
                               SoftmaxRegression().fit(X, np.arange(30) % 3).coef_)


@pytest.mark.parametrize("penalty, l1_ratio", [("l2", 1.0), (None, 0.5), ("l1", 0.5)])
def test_l1_ratio_that_disagrees_with_the_penalty_warns(penalty, l1_ratio):
    # scikit-learn 1.8 picks the penalty from l1_ratio alone; here penalty picks it, so say so.
    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)[:, :3]  # not separable: penalty=None has an estimate
    with pytest.warns(UserWarning, match="no effect with penalty"):
        SoftmaxRegression(penalty, C=10.0, l1_ratio=l1_ratio, max_iter=50).fit(X, y)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        SoftmaxRegression("l1", C=10.0, l1_ratio=1.0, solver="proximal", max_iter=50).fit(X, y)
    assert not [w for w in caught if "no effect" in str(w.message)]
