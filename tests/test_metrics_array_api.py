"""accuracy, log_loss and brier_score on torch and array_api_strict (device1) equal the NumPy metrics."""

import array_api_strict
import numpy as np
import pytest
import torch

from softmaxreg.functional import log_softmax
from softmaxreg.metrics import accuracy, brier_score, log_loss

DEVICE1 = array_api_strict.Device("device1")
NAMESPACES = {
    "torch": lambda a: torch.asarray(np.asarray(a)),
    "strict": lambda a: array_api_strict.asarray(np.asarray(a), device=DEVICE1),
}


@pytest.fixture(params=sorted(NAMESPACES))
def to(request):
    return NAMESPACES[request.param]


def data(n=50, k=4):
    rng = np.random.default_rng(0)
    y = rng.integers(0, k, n)
    y[:k] = np.arange(k)
    logits = rng.normal(size=(n, k)) * 3
    return y, logits, np.asarray(log_softmax(logits, axis=1)), rng.uniform(0.5, 2.0, n)


def test_metrics_on_device_arrays_equal_the_numpy_metrics(to):
    y, z, logp, w = data()
    P = np.exp(logp)
    pred = np.argmax(z, axis=1)
    for weight in (None, w):
        dw = None if weight is None else to(weight)
        assert accuracy(to(y), to(pred), sample_weight=dw) == pytest.approx(accuracy(y, pred, sample_weight=weight))
        expected = log_loss(y, P, sample_weight=weight)
        assert log_loss(to(y), to(P), sample_weight=dw) == pytest.approx(expected, rel=1e-12)
        assert log_loss(to(y), logits=to(z), sample_weight=dw) == pytest.approx(
            log_loss(y, logits=z, sample_weight=weight), rel=1e-12)
        assert log_loss(to(y), log_proba=to(logp), sample_weight=dw, normalize=False) == pytest.approx(
            log_loss(y, log_proba=logp, sample_weight=weight, normalize=False), rel=1e-12)
        assert brier_score(to(y), to(P), sample_weight=dw) == pytest.approx(
            brier_score(y, P, sample_weight=weight), rel=1e-12)


def test_labels_name_the_columns_on_the_device(to):
    y, z, _, _ = data()
    labels = np.array([10, 20, 30, 40])
    assert log_loss(to(labels[y]), logits=to(z), labels=to(labels)) == pytest.approx(
        log_loss(labels[y], logits=z, labels=labels), rel=1e-12)
    with pytest.raises(ValueError, match="pass labels"):
        log_loss(to(y[y < 3]), logits=to(z[y < 3]))


def test_special_values_are_refused_on_the_device_as_on_the_host(to):
    from softmaxreg.metrics import brier_score, log_loss

    y = to(np.array([0, 1]))
    bad = to(np.array([[np.nan, 0.5], [0.5, 0.5]]))
    for call in (lambda: log_loss(y, bad), lambda: brier_score(y, bad)):
        with pytest.raises(ValueError, match="must be finite"):
            call()
    with pytest.raises(ValueError, match="-inf in every class"):
        log_loss(y, logits=to(np.array([[-np.inf, -np.inf], [0.0, 0.0]])))
