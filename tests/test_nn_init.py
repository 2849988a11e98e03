"""softmaxreg.nn initializers: the variances they promise, dtype, and the random stream."""

import numpy as np
import pytest

from softmaxreg.nn import init


@pytest.mark.parametrize(
    "fn, std",
    [(init.he_normal, np.sqrt(2 / 400)), (init.glorot_normal, np.sqrt(2 / (400 + 300))),
     (init.normal(0.01), 0.01)],
)
def test_normal_initializers_std(fn, std):
    w = fn(np.random.default_rng(0), (300, 400), np.float64)
    assert w.shape == (300, 400)
    assert abs(w.mean()) < 3 * std / np.sqrt(w.size) * 2
    assert w.std() == pytest.approx(std, rel=0.01)


def test_torch_uniform_matches_torch_bound():
    torch = pytest.importorskip("torch")
    lin = torch.nn.Linear(64, 5)
    bound = 1 / np.sqrt(64)
    assert lin.weight.abs().max().item() <= bound and lin.bias.abs().max().item() <= bound
    w = init.torch_uniform(np.random.default_rng(0), (500, 64))
    assert np.abs(w).max() <= bound and w.std() == pytest.approx(bound / np.sqrt(3), rel=0.02)


def test_same_stream_for_both_dtypes():
    """Drawn in float64 then cast: the generator ends in the same state."""
    r1, r2 = np.random.default_rng(5), np.random.default_rng(5)
    a = init.he_normal(r1, (3, 4), np.float32)
    b = init.he_normal(r2, (3, 4), np.float64)
    assert a.dtype == np.float32 and b.dtype == np.float64
    np.testing.assert_array_equal(a, b.astype(np.float32))
    assert r1.random() == r2.random()


def test_zeros_does_not_touch_rng():
    r = np.random.default_rng(1)
    init.zeros(r, (2, 2))
    assert r.random() == np.random.default_rng(1).random()


@pytest.mark.parametrize("bad", [-1.0, float("nan"), "0.1", True])
def test_normal_rejects_bad_std(bad):
    with pytest.raises(ValueError, match="std"):
        init.normal(bad)


def test_get_initializer_rejects():
    with pytest.raises(ValueError, match="Unknown initializer"):
        init.get_initializer("xavier")
    with pytest.raises(ValueError, match="callable"):
        init.get_initializer(3)
