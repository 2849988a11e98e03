"""Model files of a model fitted on a device, and loading a file onto a chosen namespace and device."""

import array_api_strict
import numpy as np
import pytest
import sklearn
import torch

from softmaxreg import SoftmaxRegression
from softmaxreg.io import load_model, save_model


@pytest.fixture
def dispatch(monkeypatch):
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    with sklearn.config_context(array_api_dispatch=True):
        yield


def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(60, 3)), rng.integers(0, 3, 60)


def test_a_device_model_is_saved_as_numpy_and_loads_back_on_the_host(dispatch, tmp_path):
    X, y = data()
    model = SoftmaxRegression().fit(torch.asarray(X), torch.asarray(y))
    save_model(tmp_path / "m.srm", model)
    assert isinstance(model.coef_, torch.Tensor)  # the model itself is untouched
    loaded = load_model(tmp_path / "m.srm").estimator
    assert isinstance(loaded.coef_, np.ndarray)
    np.testing.assert_array_equal(loaded.coef_, model.coef_.numpy())
    np.testing.assert_allclose(loaded.predict_proba(X), model.predict_proba(torch.asarray(X)).numpy(), atol=1e-15)


def test_load_onto_a_namespace_and_device(dispatch, tmp_path):
    X, y = data()
    model = SoftmaxRegression().fit(X, y)
    save_model(tmp_path / "m.srm", model)
    on_torch = load_model(tmp_path / "m.srm", device="cpu").estimator
    assert isinstance(on_torch.coef_, torch.Tensor) and isinstance(on_torch.classes_, torch.Tensor)
    P = on_torch.predict_proba(torch.asarray(X))
    assert isinstance(P, torch.Tensor)
    np.testing.assert_allclose(P.numpy(), model.predict_proba(X), atol=1e-12)
    device1 = array_api_strict.Device("device1")
    strict = load_model(tmp_path / "m.srm", namespace=array_api_strict, device=device1).estimator
    assert strict.coef_.device == device1
    assert strict.predict(array_api_strict.asarray(X, device=device1)).device == device1
    with pytest.raises(ValueError, match="not an importable array library"):
        load_model(tmp_path / "m.srm", namespace="no_such_array_library")
