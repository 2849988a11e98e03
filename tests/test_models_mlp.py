"""MLPClassifier: scikit-learn checks, the SGD equivalence with SoftmaxRegression,
training step for step against PyTorch, and the estimator's behaviour."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.estimator_checks import parametrize_with_checks

from softmaxreg.functional import log_softmax
from softmaxreg.models._mlp import MLPClassifier

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@parametrize_with_checks([MLPClassifier(random_state=0)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _data(n=240, p=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0.5)
    return X, np.minimum(y, k - 1)


# -- the SGD equivalence with SoftmaxRegression --------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "penalty, momentum, schedule",
    [(None, 0.0, "constant"), ("l2", 0.9, "constant"), ("l2", 0.5, "cosine"), ("l2", 0.0, "step")],
)
def test_no_hidden_layer_equals_softmax_regression_sgd(dtype, penalty, momentum, schedule):
    """hidden_layer_sizes=() + sgd + alpha = batch_size/(C n) is SoftmaxRegression(solver='sgd')."""
    from softmaxreg.models._softmax_regression import SoftmaxRegression

    # scikit-learn scales alpha by the batch's size: whole batches only when penalized
    X, y = _data(n=320 if penalty else 301)
    X = X.astype(dtype)
    C, n, bs = 0.5, X.shape[0], 64
    sr = SoftmaxRegression(penalty=penalty, C=C, solver="sgd", max_iter=6, tol=None, batch_size=bs,
                           learning_rate=0.2, learning_rate_schedule=schedule, momentum=momentum,
                           random_state=3).fit(X, y)
    mlp = MLPClassifier(hidden_layer_sizes=(), solver="sgd", alpha=bs / (C * n) if penalty else 0.0,
                        batch_size=bs, learning_rate_init=0.2, learning_rate=schedule,
                        momentum=momentum, nesterovs_momentum=False, max_iter=6, tol=None,
                        random_state=3).fit(X, y)
    assert mlp.coefs_[0].dtype == sr.coef_.dtype == dtype
    # float64: the same arithmetic up to summation order; float32: a few ulps
    tol = dict(rtol=1e-12, atol=1e-14) if dtype == np.float64 else dict(rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mlp.coefs_[0], sr.coef_.T, **tol)
    np.testing.assert_allclose(mlp.intercepts_[0], sr.intercept_, **tol)
    assert mlp.n_iter_ == sr.n_iter_ == 6
    np.testing.assert_allclose(mlp.predict_proba(X), sr.predict_proba(X), **tol)


# -- training, step for step, against PyTorch ----------------------------------------------


def _torch_replica(kw, X, y, seed, hidden, activation, dtype):
    """Train the same network in PyTorch: weights and permutations from the documented stream,
    the L2 term scaled by each batch's size (scikit-learn's alpha)."""
    from softmaxreg.nn import init

    rng = np.random.default_rng(seed)
    sizes = [X.shape[1], *hidden, int(y.max()) + 1]
    factor = 2.0 if activation == "logistic" else 6.0
    weights = [init.glorot_uniform(rng, (fo, fi), np.float64, factor=factor).astype(dtype)
               for fi, fo in zip(sizes[:-1], sizes[1:])]
    tdt = torch.float32 if dtype == np.float32 else torch.float64
    acts = {"relu": torch.nn.ReLU, "tanh": torch.nn.Tanh, "logistic": torch.nn.Sigmoid}
    mods = []
    for i, w in enumerate(weights):
        lin = torch.nn.Linear(w.shape[1], w.shape[0]).to(tdt)
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(w))
            lin.bias.zero_()
        mods.append(lin)
        if i < len(weights) - 1:
            mods.append(acts[activation]())
    net = torch.nn.Sequential(*mods)
    lins = [m for m in mods if isinstance(m, torch.nn.Linear)]
    groups = [{"params": [m.weight for m in lins], "weight_decay": 0.0},
              {"params": [m.bias for m in lins], "weight_decay": 0.0}]
    if kw["solver"] == "sgd":
        opt = torch.optim.SGD(groups, lr=kw["learning_rate_init"], momentum=kw["momentum"],
                              nesterov=kw["momentum"] > 0)
    else:
        opt = torch.optim.Adam(groups, lr=kw["learning_rate_init"])
    Xt, yt = torch.tensor(X), torch.tensor(y)
    bs = kw["batch_size"]
    for _ in range(kw["max_iter"]):
        perm = rng.permutation(X.shape[0])
        for lo in range(0, X.shape[0], bs):
            idx = torch.tensor(perm[lo:lo + bs])
            opt.param_groups[0]["weight_decay"] = kw.get("alpha", 0.0) / len(idx)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(Xt[idx]), yt[idx]).backward()
            opt.step()
    return ([m.weight.detach().numpy().T for m in lins],
            [m.bias.detach().numpy() for m in lins])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "hidden, activation, kwargs",
    [
        ((7,), "relu", dict(solver="sgd", learning_rate_init=0.3, momentum=0.9, alpha=1e-3)),
        ((6, 5), "tanh", dict(solver="sgd", learning_rate_init=0.2, momentum=0.0, alpha=0.0)),
        ((6,), "logistic", dict(solver="adam", learning_rate_init=0.01, alpha=1e-2, momentum=0.0)),
    ],
)
def test_training_matches_torch(dtype, hidden, activation, kwargs):
    X, y = _data(n=150)
    X = X.astype(dtype)
    kw = dict(batch_size=32, max_iter=3, tol=None, **kwargs)
    mlp = MLPClassifier(hidden_layer_sizes=hidden, activation=activation, random_state=7,
                        **kw).fit(X, y)
    tw, tb = _torch_replica(kw, X, y, 7, hidden, activation, dtype)
    tol = dict(rtol=1e-9, atol=1e-12) if dtype == np.float64 else dict(rtol=2e-4, atol=2e-5)
    for ours, theirs in zip(mlp.coefs_ + mlp.intercepts_, tw + tb):
        assert ours.dtype == dtype
        np.testing.assert_allclose(ours, theirs, **tol)


# -- behaviour -----------------------------------------------------------------------------


def test_digits_reaches_scikit_learns_accuracy():
    """Digits scaled to [0, 1], an unstratified 30% test split (random_state=0), the same
    arguments: at least scikit-learn's test accuracy (0.976)."""
    from sklearn.model_selection import train_test_split
    from sklearn.neural_network import MLPClassifier as SkMLP

    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = MLPClassifier(hidden_layer_sizes=(64,), random_state=0).fit(Xtr, ytr)
        theirs = SkMLP(hidden_layer_sizes=(64,), random_state=0).fit(Xtr, ytr)
    assert ours.score(Xte, yte) >= theirs.score(Xte, yte) >= 0.97
    assert ours.loss_curve_[-1] < 0.05 * ours.loss_curve_[0]
    f32 = MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, tol=None, random_state=0)
    assert f32.fit(Xtr.astype(np.float32), ytr).predict_proba(Xte).dtype == np.float32


def test_seed_reproducibility():
    X, y = _data()
    kw = dict(hidden_layer_sizes=(8, 4), dropout=0.2, max_iter=3, tol=None, batch_size=16)
    a = MLPClassifier(random_state=1, **kw).fit(X, y)
    b = MLPClassifier(random_state=1, **kw).fit(X, y)
    c = MLPClassifier(random_state=2, **kw).fit(X, y)
    for wa, wb in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(wa, wb)
    assert a.history_ == b.history_
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])
    no_dropout = MLPClassifier(random_state=1, **{**kw, "dropout": 0.0}).fit(X, y)
    assert not np.array_equal(a.coefs_[0], no_dropout.coefs_[0])  # the masks were applied
    # prediction switches dropout off: deterministic
    np.testing.assert_array_equal(a.predict_proba(X), a.predict_proba(X))


def test_init_policy():
    """scikit-learn's Glorot-uniform with hidden layers; N(0, 0.01^2) without (softmax regression)."""
    X, y = _data(n=10, p=300)
    kw = dict(max_iter=1, tol=None, learning_rate_init=1e-12, random_state=0)
    clf = MLPClassifier(hidden_layer_sizes=(400,), **kw).fit(X, y)
    assert clf.coefs_[0].std() == pytest.approx(np.sqrt(2 / 700), rel=0.02)
    assert np.abs(clf.coefs_[0]).max() <= np.sqrt(6 / 700)
    assert clf.coefs_[1].std() == pytest.approx(np.sqrt(2 / 403), rel=0.1)
    logistic = MLPClassifier(hidden_layer_sizes=(400,), activation="logistic", **kw).fit(X, y)
    assert logistic.coefs_[0].std() == pytest.approx(np.sqrt(2 / 3 / 700), rel=0.02)
    linear = MLPClassifier(hidden_layer_sizes=(), **kw).fit(X, y)
    assert linear.coefs_[0].std() == pytest.approx(0.01, rel=0.1)


def test_float32_end_to_end_and_dtype_option():
    X, y = _data()
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=2, tol=None, random_state=0)
    clf.fit(X.astype(np.float32), y)
    assert all(w.dtype == np.float32 for w in clf.coefs_ + clf.intercepts_)
    assert clf.predict_proba(X).dtype == np.float32
    clf.set_params(dtype="float32").fit(X, y)
    assert clf.coefs_[0].dtype == np.float32
    clf.set_params(dtype="float64").fit(X.astype(np.float32), y)
    assert clf.coefs_[0].dtype == np.float64


def test_log_proba_is_log_softmax_and_finite():
    X, y = _data()
    clf = MLPClassifier(hidden_layer_sizes=(5,), max_iter=2, tol=None, random_state=0).fit(X, y)
    Z = clf.decision_function(X * 1e4)
    lp = clf.predict_log_proba(X * 1e4)
    np.testing.assert_allclose(lp, log_softmax(Z, axis=1), rtol=1e-12)
    assert np.all(np.isfinite(lp))
    np.testing.assert_allclose(np.exp(clf.predict_log_proba(X)), clf.predict_proba(X), rtol=1e-12)


def test_binary_decision_function_is_margin():
    X, y = _data(k=2)
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, tol=None, random_state=0).fit(X, y)
    margin = clf.decision_function(X)
    assert margin.shape == (X.shape[0],)
    lp = clf.predict_log_proba(X)
    np.testing.assert_allclose(margin, lp[:, 1] - lp[:, 0], rtol=1e-10, atol=1e-12)


def test_early_stopping_keeps_best_weights():
    from sklearn.model_selection import train_test_split

    X, y = _data(n=400)
    clf = MLPClassifier(hidden_layer_sizes=(16,), early_stopping=True, n_iter_no_change=2,
                        max_iter=200, learning_rate_init=0.05, batch_size=16, random_state=0)
    clf.fit(X, y)
    assert clf.converged_ and clf.n_iter_ < 200 and clf.best_loss_ is None
    assert len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    # scikit-learn's rule: stop after more than n_iter_no_change epochs without a gain
    best = int(np.argmax(clf.validation_scores_))
    assert clf.n_iter_ - 1 - best > 2
    # the kept weights are the best epoch's: recompute the documented validation split
    from softmaxreg.nn import init

    rng = np.random.default_rng(0)
    for shape in ((16, 5), (3, 16)):
        init.glorot_uniform(rng, shape)
    seed = int(rng.integers(2**31 - 1))
    _, val = train_test_split(np.arange(400), test_size=0.1, random_state=seed, stratify=y)
    assert clf.score(X[val], y[val]) == pytest.approx(clf.best_validation_score_)


def test_tol_stopping_and_convergence_warning():
    X, y = _data()
    clf = MLPClassifier(hidden_layer_sizes=(4,), tol=10.0, n_iter_no_change=2, max_iter=50,
                        random_state=0).fit(X, y)
    # epoch 1 sets the baseline; 2, 3 and 4 fail it: more than 2 epochs without a gain
    assert clf.converged_ and clf.n_iter_ == 4
    assert clf.best_loss_ == min(clf.loss_curve_) and clf.loss_ == clf.loss_curve_[-1]
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        MLPClassifier(hidden_layer_sizes=(4,), tol=0.0, n_iter_no_change=5, max_iter=3,
                      random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, tol=None, random_state=0).fit(X, y)


def test_callback_protocol_and_stop():
    X, y = _data()
    seen = []

    def cb(info):
        seen.append(info)
        return info["iteration"] == 3

    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=10, random_state=0, callback=cb,
                        alpha=0.01).fit(X, y)
    assert clf.n_iter_ == 3 and len(seen) == 3 and not clf.converged_
    assert [s["iteration"] for s in seen] == [1, 2, 3]
    assert {"objective", "elapsed", "solver", "learning_rate", "train_accuracy"} <= set(seen[0])
    assert 0.0 <= seen[-1]["train_accuracy"] <= 1.0
    assert [s["objective"] for s in seen] == clf.history_
    assert clf.history_ is clf.loss_curve_
    # the objective is the mean minibatch loss plus the penalty over the batch size (200)
    assert clf.history_[-1] > 0.5 * 0.01 * sum(float((w**2).sum()) for w in clf.coefs_) / 200


def test_partial_fit_equals_fit_epoch_by_epoch():
    X, y = _data()
    kw = dict(hidden_layer_sizes=(6,), solver="sgd", batch_size=32, random_state=4,
              learning_rate="exponential", max_iter=3, tol=None)
    full = MLPClassifier(**kw).fit(X, y)
    inc = MLPClassifier(**kw)
    for _ in range(3):
        inc.partial_fit(X, y, classes=np.unique(y))
    assert inc.n_iter_ == 3
    for a, b in zip(full.coefs_ + full.intercepts_, inc.coefs_ + inc.intercepts_):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(full.history_, inc.history_)


def test_partial_fit_past_a_cosine_schedule():
    """Past max_iter the cosine rate is 0: partial_fit keeps going without moving."""
    X, y = _data()
    clf = MLPClassifier(hidden_layer_sizes=(3,), max_iter=2, learning_rate="cosine", solver="sgd",
                        momentum=0.0, random_state=0)
    for _ in range(3):
        clf.partial_fit(X, y)
    before = [w.copy() for w in clf.coefs_]
    clf.partial_fit(X, y)  # epoch index 3 > T = 2: rate 0, momentum 0: nothing moves
    for a, b in zip(before, clf.coefs_):
        np.testing.assert_array_equal(a, b)


def test_partial_fit_classes_errors():
    X, y = _data()
    clf = MLPClassifier(hidden_layer_sizes=(3,), random_state=0)
    clf.partial_fit(X, y % 2, classes=[0, 1])
    with pytest.raises(ValueError, match="not among the classes"):
        clf.partial_fit(X, y)
    with pytest.raises(ValueError, match="differs from the classes"):
        clf.partial_fit(X, y % 2, classes=[0, 1, 2])
    with pytest.raises(ValueError, match="fewer than two classes"):
        MLPClassifier().partial_fit(X, np.zeros(len(y)), classes=[0])
    with pytest.raises(ValueError, match="seen only one class"):
        MLPClassifier().partial_fit(X, np.zeros(len(y)))
    assert clf.n_iter_ == 1  # failed calls left it unchanged


def test_dtype_accepts_numpy_dtypes():
    X, y = _data()
    for dtype in (np.float32, np.dtype("float32"), "float32"):
        clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, dtype=dtype, random_state=0).fit(X, y)
        assert clf.coefs_[0].dtype == np.float32 and clf.predict_proba(X).dtype == np.float32


def test_partial_fit_adds_unseen_classes():
    """Without classes=, a new label grows the output layer; the old classes keep their rows."""
    X, y = _data()
    first = y != 1
    clf = MLPClassifier(hidden_layer_sizes=(5,), solver="sgd", random_state=0)
    clf.partial_fit(X[first], y[first])
    assert clf.classes_.tolist() == [0, 2] and clf.coefs_[-1].shape == (5, 2)
    W, b = clf.coefs_[-1].copy(), clf.intercepts_[-1].copy()
    clf.set_params(learning_rate_init=1e-12)
    clf.partial_fit(X[~first], y[~first])
    assert clf.classes_.tolist() == [0, 1, 2] and clf.coefs_[-1].shape == (5, 3)
    assert clf.n_outputs_ == 3 and clf.predict_proba(X).shape == (len(y), 3)
    np.testing.assert_allclose(clf.coefs_[-1][:, [0, 2]], W, atol=1e-9)
    np.testing.assert_allclose(clf.intercepts_[-1][[0, 2]], b, atol=1e-9)
    clf.set_params(learning_rate_init=0.1)
    for _ in range(30):
        clf.partial_fit(X, y)
    assert clf.score(X, y) > 0.8


def test_partial_fit_after_fit_adds_classes_and_never_stops_early():
    """As scikit-learn, early_stopping applies to fit only: partial_fit trains one epoch either way."""
    X, y = _data()
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, tol=None, random_state=0)
    clf.fit(X[y < 2], y[y < 2])
    clf.partial_fit(X, y)  # fit was given no classes=: the new label is added
    assert clf.classes_.tolist() == [0, 1, 2] and clf.n_iter_ == 4
    for start in ("fit", "partial_fit"):
        est = MLPClassifier(hidden_layer_sizes=(4,), early_stopping=True, max_iter=3, random_state=0)
        if start == "fit":
            est.fit(X, y)
        est.partial_fit(X, y)
        est.partial_fit(X, y)
        assert np.isfinite(est.best_loss_) and est.best_loss_ == min(est.loss_curve_[-2:])


def test_model_file_round_trip(tmp_path):
    from softmaxreg.io._model_file import load_model, save_model

    X, y = _data()
    labels = np.array(["a", "b", "c"])[y]
    clf = MLPClassifier(hidden_layer_sizes=(6, 4), activation="tanh", max_iter=3, tol=None,
                        random_state=0, dtype="float32").fit(X, labels)
    save_model(tmp_path / "m.srm", clf)
    loaded = load_model(tmp_path / "m.srm").estimator
    assert isinstance(loaded, MLPClassifier)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    loaded.partial_fit(X, labels)  # continues training from the stored weights
    assert loaded.n_iter_ == 4 and loaded.coefs_[0].dtype == np.float32


def test_failed_fit_leaves_model_unchanged():
    X, y = _data()
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, tol=None, random_state=0).fit(X, y)
    before = [w.copy() for w in clf.coefs_]
    X_bad = X.copy()
    X_bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN at row 3, column 2"):
        clf.fit(X_bad, y)
    for a, b in zip(before, clf.coefs_):
        np.testing.assert_array_equal(a, b)


def test_failed_partial_fit_leaves_weights_and_state_unchanged():
    X, y = _data()
    X = X.astype(np.float32)
    clf = MLPClassifier(hidden_layer_sizes=(32,), solver="sgd", dropout=0.1, batch_size=16,
                        random_state=0)
    clf.partial_fit(X, y)
    before = [w.copy() for w in clf.coefs_ + clf.intercepts_]
    clf.set_params(learning_rate_init=1e6)
    with pytest.raises(ValueError, match="diverged"):
        clf.partial_fit(X * 1e3, y)
    for a, b in zip(before, clf.coefs_ + clf.intercepts_):
        np.testing.assert_array_equal(a, b)
    # and training continues exactly as if the failed call had not happened
    clf.set_params(learning_rate_init=1e-3)
    clf.partial_fit(X, y)
    ref = MLPClassifier(hidden_layer_sizes=(32,), solver="sgd", dropout=0.1, batch_size=16,
                        random_state=0)
    ref.partial_fit(X, y)
    ref.partial_fit(X, y)
    for a, b in zip(ref.coefs_ + ref.intercepts_, clf.coefs_ + clf.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_divergence_is_an_error_not_nan():
    X, y = _data()
    with pytest.raises(ValueError, match="diverged"):
        MLPClassifier(hidden_layer_sizes=(32,), solver="sgd", learning_rate_init=1e6, max_iter=5,
                      random_state=0).fit((X * 1e3).astype(np.float32), y)


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(hidden_layer_sizes=(4, 0)), "hidden_layer_sizes"),
        (dict(hidden_layer_sizes="big"), "hidden_layer_sizes"),
        (dict(activation="gelu"), "activation"),
        (dict(solver="lbfgs"), "solver"),
        (dict(momentum=1.0), "momentum"),
        (dict(dropout=1.0), "dropout"),
        (dict(learning_rate_init=0.0), "learning_rate_init"),
        (dict(learning_rate="linear"), "learning_rate"),
        (dict(batch_size="big"), "batch_size"),
        (dict(beta_1=1.0), "beta_1"),
        (dict(epsilon=0.0), "epsilon"),
        (dict(class_weight="even"), "class_weight"),
        (dict(validation_fraction=1.0), "validation_fraction"),
        (dict(batch_size=0), "batch_size"),
        (dict(dtype="float16"), "dtype"),
    ],
)
def test_bad_params(params, match):
    X, y = _data(n=20)
    with pytest.raises(ValueError, match=match):
        MLPClassifier(**params).fit(X, y)


def test_one_class_and_tiny_validation_errors():
    X, y = _data(n=20)
    with pytest.raises(ValueError, match="only one class"):
        MLPClassifier().fit(X, np.zeros(20))
    with pytest.raises(ValueError, match="early_stopping"):
        MLPClassifier(early_stopping=True, validation_fraction=0.9).fit(X[:2], [0, 1])


def test_sparse_equals_dense():
    import scipy.sparse as sp

    X, y = _data()
    X[np.abs(X) < 0.8] = 0.0
    kw = dict(hidden_layer_sizes=(6,), max_iter=3, tol=None, batch_size=32, random_state=0)
    dense = MLPClassifier(**kw).fit(X, y)
    for fmt in (sp.csr_matrix, sp.csc_matrix):
        sparse = MLPClassifier(**kw).fit(fmt(X), y)
        for a, b in zip(dense.coefs_ + dense.intercepts_, sparse.coefs_ + sparse.intercepts_):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(sparse.predict_proba(fmt(X)), dense.predict_proba(X),
                                   rtol=1e-12)


def test_train_accuracy_is_the_minibatch_accuracy():
    """With a negligible step, each batch is scored by the same model: the epoch's score."""
    X, y = _data()
    seen = []
    clf = MLPClassifier(hidden_layer_sizes=(8,), learning_rate_init=1e-12, max_iter=1, tol=None, batch_size=17,
                        random_state=0, callback=seen.append).fit(X, y)
    assert seen[0]["train_accuracy"] == pytest.approx(clf.score(X, y))


# -- scikit-learn's parameters and attributes ----------------------------------------------


def test_defaults_and_attributes_are_scikit_learns():
    from sklearn.neural_network import MLPClassifier as SkMLP

    ours, theirs = MLPClassifier().get_params(), SkMLP().get_params()
    shared = set(ours) & set(theirs)
    assert set(theirs) - shared <= {"loss", "max_fun"}  # lbfgs's budget; the loss is fixed
    assert {k: ours[k] for k in shared} == {k: theirs[k] for k in shared}
    X, y = _data()
    clf = MLPClassifier(hidden_layer_sizes=(5, 4), max_iter=4, tol=None, random_state=0).fit(X, y)
    assert [w.shape for w in clf.coefs_] == [(5, 5), (5, 4), (4, 3)]
    assert (clf.n_layers_, clf.n_outputs_, clf.out_activation_) == (4, 3, "softmax")
    assert clf.t_ == 4 * len(y) and clf.n_iter_ == 4 and len(clf.loss_curve_) == 4


def test_deprecated_names_still_work_with_a_future_warning():
    X, y = _data()
    new = MLPClassifier(hidden_layer_sizes=(4,), solver="sgd", learning_rate_init=0.1,
                        learning_rate="cosine", max_iter=3, tol=None, random_state=0).fit(X, y)
    with pytest.warns(FutureWarning, match="max_epochs"):
        old = MLPClassifier(hidden_layer_sizes=(4,), optimizer="sgd", learning_rate=0.1,
                            learning_rate_schedule="cosine", max_epochs=3, tol=None,
                            random_state=0).fit(X, y)
    for a, b in zip(new.coefs_ + new.intercepts_, old.coefs_ + old.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_sample_weight_equals_repeated_rows_and_class_weight():
    X, y = _data(n=60)
    w = np.random.default_rng(0).integers(0, 3, size=60)
    kw = dict(hidden_layer_sizes=(4,), batch_size="auto", max_iter=5, tol=None, random_state=0)
    weighted = MLPClassifier(**kw).fit(X, y, sample_weight=w)  # one batch: the order is moot
    repeated = MLPClassifier(**kw).fit(np.repeat(X, w, axis=0), np.repeat(y, w))
    for a, b in zip(weighted.coefs_ + weighted.intercepts_, repeated.coefs_ + repeated.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
    by_class = MLPClassifier(class_weight={0: 2.0}, **kw).fit(X, y)
    by_rows = MLPClassifier(**kw).fit(X, y, sample_weight=np.where(y == 0, 2.0, 1.0))
    for a, b in zip(by_class.coefs_, by_rows.coefs_):
        np.testing.assert_array_equal(a, b)
    MLPClassifier(class_weight="balanced", **kw).fit(X, y)
    with pytest.raises(ValueError, match="balanced"):
        MLPClassifier(class_weight="balanced", **kw).partial_fit(X, y)


def test_warm_start_continues():
    X, y = _data()
    kw = dict(hidden_layer_sizes=(4,), solver="sgd", learning_rate_init=0.1, max_iter=2, tol=None,
              random_state=0)
    clf = MLPClassifier(warm_start=True, **kw).fit(X, y)
    first = [w.copy() for w in clf.coefs_]
    clf.fit(X, y)
    assert len(clf.loss_curve_) == 4 and clf.n_iter_ == 2
    assert not np.array_equal(first[0], clf.coefs_[0])
    with pytest.raises(ValueError, match="warm_start"):
        clf.fit(X, y % 2)


def test_invscaling_and_adaptive_rates():
    X, y = _data()
    rates = []
    MLPClassifier(hidden_layer_sizes=(4,), solver="sgd", learning_rate="invscaling", max_iter=3,
                  tol=None, random_state=0, callback=lambda i: rates.append(i["learning_rate"])).fit(X, y)
    n = len(y)
    np.testing.assert_allclose(rates, [1e-3, 1e-3 / (n + 1) ** 0.5, 1e-3 / (2 * n + 1) ** 0.5])
    rates.clear()
    clf = MLPClassifier(hidden_layer_sizes=(4,), solver="sgd", learning_rate="adaptive",
                        learning_rate_init=1e-4, tol=100.0, n_iter_no_change=1, max_iter=50,
                        random_state=0, callback=lambda i: rates.append(i["learning_rate"]))
    clf.fit(X, y)
    # the rate drops fivefold every time the rule fires, and training stops below 1e-6
    assert clf.converged_
    assert sorted(set(rates), reverse=True) == pytest.approx([1e-4, 2e-5, 4e-6, 8e-7])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float32_in_float32_out(dtype):
    X, y = _data()
    clf = MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, tol=None, random_state=0)
    clf.fit(X.astype(dtype), y)
    for method in ("decision_function", "predict_proba", "predict_log_proba"):
        for Xin in (X.astype(np.float32), X):
            assert getattr(clf, method)(Xin).dtype == dtype, method
