"""SoftmaxRegression under scikit-learn's array_api_dispatch: torch and array_api_strict equal the NumPy fit.

``array_api_strict`` arrays on ``Device("device1")`` refuse conversion to
NumPy, so a fit there proves that nothing in it goes through NumPy; torch
runs are counted for host transfers.  scikit-learn checks ``SCIPY_ARRAY_API=1``
in the environment when dispatch is used; the fixture sets it for the test
(SciPy itself is never handed a device array here), and the pipeline test
runs in a fresh interpreter that has it from the start, as users must.
"""

import os
import subprocess
import sys
import textwrap
import warnings

import array_api_strict
import numpy as np
import pytest
import sklearn
import torch

from softmaxreg import SoftmaxRegression

from test_solvers_array_api import count_host_transfers

DEVICE1 = array_api_strict.Device("device1")
NAMESPACES = {
    "torch": lambda a, dtype=None: torch.asarray(np.asarray(a, dtype=dtype)),
    "strict": lambda a, dtype=None: array_api_strict.asarray(np.asarray(a, dtype=dtype), device=DEVICE1),
}


def host(a):
    if isinstance(a, (torch.Tensor, array_api_strict._array_object.Array)):
        from sklearn.utils._array_api import move_to

        return move_to(a, xp=np, device="cpu")
    return np.asarray(a)


@pytest.fixture
def dispatch(monkeypatch):
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    with sklearn.config_context(array_api_dispatch=True):
        yield


@pytest.fixture(params=sorted(NAMESPACES))
def to(request):
    return NAMESPACES[request.param]


def data(n=120, p=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    y = rng.integers(0, k, n)
    return X, y, rng.uniform(0.5, 2.0, n)


OPTIONS = [
    dict(solver="lbfgs"),
    dict(solver="newton-cg"),
    dict(solver="newton-cg", fit_intercept=False, C=0.3),
    dict(solver="lbfgs", class_weight="balanced", reference_class=2),
    dict(solver="newton-cg", class_weight={0: 2.0, 1: 0.5}),
    dict(solver="newton-cg", penalty=None, reference_class=0),
    dict(solver="proximal", penalty="l1", tol=1e-8),
    dict(solver="proximal", penalty="elasticnet", l1_ratio=0.5, tol=1e-8),
    dict(solver="sgd", tol=None, max_iter=4, batch_size=32, momentum=0.5, learning_rate=0.2),
    dict(solver="sgd", penalty="l1", tol=None, max_iter=3, batch_size=32, learning_rate=0.1),
]


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_fit_equals_the_numpy_fit(dispatch, to, options):
    X, y, sw = data()
    kw = dict(tol=1e-10, max_iter=3000, random_state=0)
    kw.update(options)
    with sklearn.config_context(array_api_dispatch=False):
        expected = SoftmaxRegression(**kw).fit(X, y, sample_weight=sw)
    model = SoftmaxRegression(**kw).fit(to(X), to(y), sample_weight=to(sw))
    Xd = to(X)
    for name in ("coef_", "intercept_", "classes_"):
        value = getattr(model, name)
        assert type(value) is type(Xd) and value.device == Xd.device, name
    P = model.predict_proba(Xd)
    assert type(P) is type(Xd) and P.device == Xd.device and P.dtype == Xd.dtype
    if options["solver"] == "sgd" and isinstance(Xd, torch.Tensor):
        # torch draws the minibatches with its own generator, on the device: another
        # sequence of steps, so only the same neighbourhood of the optimum.
        assert model.history_[-1] == pytest.approx(expected.history_[-1], rel=2e-2)
        return
    assert model.history_[-1] == pytest.approx(expected.history_[-1], rel=1e-10)
    np.testing.assert_allclose(host(model.coef_), expected.coef_, atol=1e-6)
    np.testing.assert_allclose(host(P), expected.predict_proba(X), atol=1e-6)


def test_every_method_answers_in_the_input_type(dispatch, to):
    X, y, _ = data(k=3)
    model = SoftmaxRegression().fit(to(X), to(y))
    Xd = to(X)
    expected = SoftmaxRegression().fit(X, y)
    outputs = {
        "predict": model.predict(Xd),
        "predict_proba": model.predict_proba(Xd),
        "predict_log_proba": model.predict_log_proba(Xd),
        "decision_function": model.decision_function(Xd),
    }
    for name, out in outputs.items():
        assert type(out) is type(Xd) and out.device == Xd.device, name
        np.testing.assert_allclose(host(out), getattr(expected, name)(X), rtol=1e-7, atol=1e-9)
    assert model.score(Xd, to(y)) == pytest.approx(expected.score(X, y))
    assert isinstance(model.n_iter_, int) and model.n_features_in_ == X.shape[1]
    two = SoftmaxRegression().fit(to(X), to(y % 2))
    assert tuple(two.decision_function(Xd).shape) == (X.shape[0],)


def test_float32_stays_float32_and_matches_the_numpy_float32_fit(dispatch):
    X, y, _ = data()
    X32 = X.astype(np.float32)
    for solver in ("lbfgs", "newton-cg"):
        expected = SoftmaxRegression(solver=solver).fit(X32, y)
        model = SoftmaxRegression(solver=solver).fit(torch.asarray(X32), torch.asarray(y))
        assert model.coef_.dtype == torch.float32
        assert model.predict_proba(torch.asarray(X32)).dtype == torch.float32
        assert model.history_[-1] == pytest.approx(expected.history_[-1], rel=1e-5)
    model = SoftmaxRegression(dtype="float32").fit(torch.asarray(X), torch.asarray(y))
    assert model.coef_.dtype == torch.float32


def test_float64_on_a_device_without_it_is_refused(dispatch, monkeypatch):
    import sklearn.utils._array_api as sk_array_api

    X, y, _ = data()
    monkeypatch.setattr(sk_array_api, "supported_float_dtypes", lambda xp, device=None: (xp.float32,))
    with pytest.raises(ValueError, match="dtype='float64' is not available"):
        SoftmaxRegression(dtype="float64").fit(torch.asarray(X), torch.asarray(y))
    model = SoftmaxRegression().fit(torch.asarray(X), torch.asarray(y))
    assert model.coef_.dtype == torch.float32


def test_string_labels_stay_on_the_host(dispatch):
    X, y, _ = data()
    labels = np.array(["ant", "bee", "cat"])[y]
    model = SoftmaxRegression().fit(torch.asarray(X), labels)
    assert isinstance(model.classes_, np.ndarray) and isinstance(model.coef_, torch.Tensor)
    np.testing.assert_array_equal(model.predict(torch.asarray(X)), SoftmaxRegression().fit(X, labels).predict(X))


def test_dispatch_off_converts_to_numpy_as_before(to):
    X, y, _ = data()
    model = SoftmaxRegression().fit(torch.asarray(X), torch.asarray(y))
    assert isinstance(model.coef_, np.ndarray)
    assert isinstance(model.predict_proba(torch.asarray(X)), np.ndarray)


def test_a_device_model_predicts_numpy_input_on_the_host(dispatch):
    X, y, _ = data()
    model = SoftmaxRegression().fit(torch.asarray(X), torch.asarray(y))
    P = model.predict_proba(X)
    assert isinstance(P, np.ndarray)
    np.testing.assert_allclose(P, model.predict_proba(torch.asarray(X)).numpy(), atol=1e-12)


def test_partial_fit_runs_on_the_device_and_equals_numpy(dispatch, to):
    X, y, _ = data()
    kw = dict(random_state=0, batch_size=200, learning_rate=0.3, momentum=0.5)
    expected = SoftmaxRegression(**kw)
    model = SoftmaxRegression(**kw)
    for half in (slice(0, 60), slice(60, 120)):
        with sklearn.config_context(array_api_dispatch=False):
            expected.partial_fit(X[half], y[half], classes=[0, 1, 2])
        model.partial_fit(to(X[half]), to(y[half]), classes=to(np.arange(3)))
    assert type(model.coef_) is type(to(X))
    np.testing.assert_allclose(host(model.coef_), expected.coef_, rtol=1e-10, atol=1e-12)


def test_summary_and_cov_params_equal_the_numpy_fit(dispatch, to):
    X, y, _ = data()
    kw = dict(penalty=None, reference_class=0)
    expected = SoftmaxRegression(**kw).fit(X, y)
    model = SoftmaxRegression(**kw).fit(to(X), to(y))
    np.testing.assert_allclose(model.cov_params(), expected.cov_params(), rtol=1e-8)
    np.testing.assert_allclose(model.cov_params("HC0"), expected.cov_params("HC0"), rtol=1e-7)
    assert str(model.summary()) == str(expected.summary())


def test_no_array_larger_than_a_scalar_reaches_the_host_during_a_fit(dispatch):
    X, y, _ = data()
    Xd, yd = torch.asarray(X), torch.asarray(y)
    for options in (dict(solver="lbfgs"), dict(solver="newton-cg"), dict(solver="proximal", penalty="l1"),
                    dict(solver="sgd", max_iter=3, tol=None, batch_size=32)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with count_host_transfers() as sizes:
                SoftmaxRegression(**options).fit(Xd, yd)
        # Scalars, plus the n_classes labels read once to resolve the reference class.
        assert sizes and max(sizes) <= 3, (options, max(sizes))


def test_pipeline_with_standard_scaler_runs_with_dispatch_on(tmp_path):
    # SciPy reads SCIPY_ARRAY_API when it is imported: a fresh interpreter.
    script = textwrap.dedent("""
        import numpy as np, sklearn, torch
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler
        from softmaxreg import SoftmaxRegression
        rng = np.random.default_rng(0)
        X = rng.normal(size=(90, 3)) * [1.0, 10.0, 100.0]
        y = rng.integers(0, 3, 90)
        with sklearn.config_context(array_api_dispatch=True):
            pipe = make_pipeline(StandardScaler(), SoftmaxRegression()).fit(torch.asarray(X), torch.asarray(y))
            P = pipe.predict_proba(torch.asarray(X))
            assert isinstance(P, torch.Tensor) and isinstance(pipe[-1].coef_, torch.Tensor)
        ref = make_pipeline(StandardScaler(), SoftmaxRegression()).fit(X, y)
        assert np.allclose(P.numpy(), ref.predict_proba(X), atol=1e-8)
        print("ok")
    """)
    env = dict(os.environ, SCIPY_ARRAY_API="1", OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_temperature_scaling_runs_on_the_device_and_equals_numpy(dispatch, to):
    from softmaxreg.models import TemperatureScaling

    X, y, _ = data(n=200)
    expected = TemperatureScaling(SoftmaxRegression(C=100.0).fit(X[:100], y[:100])).fit(X[100:], y[100:])
    model = SoftmaxRegression(C=100.0).fit(to(X[:100]), to(y[:100]))
    calibrated = TemperatureScaling(model).fit(to(X[100:]), to(y[100:]))
    assert calibrated.temperature_ == pytest.approx(expected.temperature_, rel=1e-9)
    P = calibrated.predict_proba(to(X))
    assert type(P) is type(to(X)) and P.device == to(X).device
    np.testing.assert_allclose(host(P), expected.predict_proba(X), atol=1e-9)
    assert type(calibrated.predict(to(X))) is type(to(X))
    assert calibrated.score(to(X), to(y)) == pytest.approx(expected.score(X, y))


def test_dispatch_off_scores_tensors_on_the_host():
    """As scikit-learn: with dispatch off a torch X and y are converted, score included."""
    X, y, _ = data()
    for dtype in (torch.float64, torch.float32):
        Xt, yt = torch.asarray(X).to(dtype), torch.asarray(y)
        model = SoftmaxRegression().fit(Xt, yt)
        assert model.score(Xt, yt) == pytest.approx(SoftmaxRegression().fit(X.astype(Xt.numpy().dtype), y).score(X, y))


@pytest.mark.parametrize("classes", [[0, 1, 2], np.arange(3), "device"])
def test_partial_fit_classes_of_any_kind_keep_numeric_labels_on_the_device(dispatch, to, classes):
    X, y, _ = data()
    given = to(np.arange(3)) if isinstance(classes, str) else classes
    model = SoftmaxRegression(random_state=0).partial_fit(to(X), to(y), classes=given)
    assert type(model.classes_) is type(to(X)) and type(model.predict(to(X))) is type(to(X))
    assert host(model.classes_).tolist() == [0, 1, 2]


def test_temperature_scaling_keeps_float32_on_the_device(dispatch):
    from softmaxreg.models import TemperatureScaling

    X, y, _ = data(n=200)
    Xt = torch.asarray(X, dtype=torch.float32)
    calibrated = TemperatureScaling(SoftmaxRegression().fit(Xt, torch.asarray(y))).fit(Xt, torch.asarray(y))
    for method in ("predict_proba", "predict_log_proba", "decision_function"):
        assert getattr(calibrated, method)(Xt).dtype == torch.float32, method
    np.testing.assert_allclose(calibrated.predict_proba(Xt).numpy().sum(axis=1), 1.0, rtol=1e-6)


def test_intervals_and_margins_take_device_rows(dispatch):
    """Inference is computed on the host (as summary): device rows are accepted and give host results."""
    X, y, _ = data()
    model = SoftmaxRegression(penalty=None, reference_class=0).fit(torch.asarray(X), torch.asarray(y))
    expected = SoftmaxRegression(penalty=None, reference_class=0).fit(X, y)
    got, want = model.predict_interval(torch.asarray(X[:5])), expected.predict_interval(X[:5])
    np.testing.assert_allclose(got.lower, want.lower, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(model.marginal_effects(torch.asarray(X[:20])).margeff,
                               expected.marginal_effects(X[:20]).margeff, rtol=1e-8, atol=1e-12)
