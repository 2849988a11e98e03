"""Tests of softmaxreg.functional._softmax against scipy.special, PyTorch, mpmath and the notes' identities."""

import warnings

import array_api_strict
import mpmath
import numpy as np
import pytest
import scipy.special as sp
import torch
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from softmaxreg.functional import (
    log_sigmoid,
    log_softmax,
    logsumexp,
    sigmoid,
    softmax,
    softmax_jacobian,
    softmax_jvp,
    softmax_vjp,
)

RNG = np.random.default_rng(20261121)
SHAPES_AXES = [((7,), -1), ((5, 4), -1), ((5, 4), 0), ((3, 4, 6), 1), ((2, 3, 4), -1), ((1, 1), 0)]
TOL = {np.float32: 2e-6, np.float64: 1e-13}

finite_rows = hnp.arrays(
    np.float64,
    hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6),
    elements=st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False),
)


# ---------------------------------------------------------------- references
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,axis", SHAPES_AXES)
def test_matches_scipy(shape, axis, dtype):
    x = (RNG.normal(size=shape) * 5).astype(dtype)
    tol = TOL[dtype]
    for ours, ref in [(softmax, sp.softmax), (log_softmax, sp.log_softmax)]:
        got = ours(x, axis=axis)
        assert got.dtype == dtype and got.shape == x.shape
        np.testing.assert_allclose(got, ref(x.astype(np.float64), axis=axis), rtol=tol, atol=tol)
    got = logsumexp(x, axis=axis)
    assert got.dtype == dtype
    np.testing.assert_allclose(got, sp.logsumexp(x.astype(np.float64), axis=axis), rtol=tol)
    np.testing.assert_allclose(
        logsumexp(x, axis=axis, keepdims=True), sp.logsumexp(x.astype(np.float64), axis=axis, keepdims=True), rtol=tol
    )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape,axis", SHAPES_AXES)
def test_matches_torch_and_returns_torch(shape, axis, dtype):
    x = torch.randn(*shape, dtype=dtype, generator=torch.Generator().manual_seed(0)) * 4
    tol = 2e-6 if dtype == torch.float32 else 1e-13
    for ours, ref in [(softmax, torch.softmax), (log_softmax, torch.log_softmax)]:
        got = ours(x, axis=axis)
        assert isinstance(got, torch.Tensor) and got.dtype == dtype
        torch.testing.assert_close(got, ref(x, dim=axis), rtol=tol, atol=tol)
    torch.testing.assert_close(logsumexp(x, axis=axis), torch.logsumexp(x, dim=axis), rtol=tol, atol=tol)


@pytest.mark.parametrize("temperature", [1.0, 0.5, 3.0])
def test_jacobian_matches_torch_autograd(temperature):
    x = RNG.normal(size=(3, 5))
    jac = softmax_jacobian(x, temperature=temperature)
    assert jac.shape == (3, 5, 5)
    for i in range(3):
        ref = torch.autograd.functional.jacobian(
            lambda t: torch.softmax(t / temperature, dim=-1), torch.tensor(x[i])
        ).numpy()
        np.testing.assert_allclose(jac[i], ref, atol=1e-14)


def test_jacobian_formula_of_the_notes():
    # D_j S_i = S_i (delta_ij - S_j)
    x = RNG.normal(size=6)
    s = softmax(x)
    jac = softmax_jacobian(x)
    expected = np.array([[s[i] * ((i == j) - s[j]) for j in range(6)] for i in range(6)])
    np.testing.assert_allclose(jac, expected, atol=1e-16)


def test_jacobian_against_central_differences():
    x = RNG.normal(size=5)
    h = 1e-6
    fd = np.stack([(softmax(x + h * e) - softmax(x - h * e)) / (2 * h) for e in np.eye(5)], axis=1)
    np.testing.assert_allclose(softmax_jacobian(x), fd, atol=1e-9)


def test_jacobian_moves_axis_to_the_end():
    x = RNG.normal(size=(4, 3))
    np.testing.assert_allclose(softmax_jacobian(x, axis=0), softmax_jacobian(x.T, axis=-1), atol=1e-16)


def test_accuracy_against_extended_precision():
    mpmath.mp.dps = 50
    x = RNG.normal(size=(20, 7)) * 10
    x[0] = [0.0, -40.0, -45.0, -50.0, -60.0, -70.0, -80.0]  # dominant class: log-probability ~ -4e-18
    for row in x:
        terms = [mpmath.exp(mpmath.mpf(v)) for v in row]
        total = mpmath.fsum(terms)
        lse = float(mpmath.log(total))
        assert abs(logsumexp(row) - lse) <= 1e-12 * abs(lse) + 1e-300
        ref_p = np.array([float(t / total) for t in terms])
        ref_logp = np.array([float(mpmath.log(t / total)) for t in terms])
        np.testing.assert_allclose(softmax(row), ref_p, rtol=1e-12, atol=0)
        np.testing.assert_allclose(log_softmax(row), ref_logp, rtol=1e-12, atol=0)


def test_float32_accuracy_on_well_scaled_data():
    x = RNG.normal(size=(1000, 10)).astype(np.float32) * 3
    ref = sp.softmax(x.astype(np.float64), axis=-1)
    np.testing.assert_allclose(softmax(x), ref, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(log_softmax(x), sp.log_softmax(x.astype(np.float64), axis=-1), rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- properties
@given(finite_rows)
def test_properties(x):
    p = softmax(x)
    assert np.all(np.isfinite(p)) and np.all(p >= 0)
    np.testing.assert_allclose(p.sum(axis=-1), 1.0, rtol=0, atol=8 * np.finfo(np.float64).eps * x.shape[-1])
    # shift invariance
    np.testing.assert_allclose(softmax(x + 123.25), p, atol=1e-12)
    # order preservation
    order = np.argsort(x, axis=-1, kind="stable")
    assert np.all(np.diff(np.take_along_axis(p, order, axis=-1), axis=-1) >= 0)
    # log_softmax is log of softmax where the latter is representable
    np.testing.assert_allclose(np.exp(log_softmax(x)), p, atol=1e-12)


@given(finite_rows)
def test_moving_the_axis_changes_nothing(x):
    if x.ndim < 2:
        return
    np.testing.assert_allclose(np.moveaxis(softmax(x, axis=0), 0, -1), softmax(np.moveaxis(x, 0, -1)), atol=1e-15)
    np.testing.assert_allclose(logsumexp(x, axis=0), logsumexp(np.moveaxis(x, 0, -1)), rtol=1e-14, atol=1e-12)


@given(hnp.arrays(np.float64, st.integers(1, 6), elements=st.floats(-30, 30)), st.floats(0.1, 10))
def test_jacobian_properties(x, temperature):
    jac = softmax_jacobian(x, temperature=temperature)
    np.testing.assert_allclose(jac, jac.T, atol=1e-15)
    np.testing.assert_allclose(jac.sum(axis=-1), 0.0, atol=1e-14)
    assert np.linalg.eigvalsh(jac).min() >= -1e-14
    v = np.linspace(-1, 2, x.shape[-1])
    np.testing.assert_allclose(softmax_jvp(x, v, temperature=temperature), jac @ v, atol=1e-14)
    np.testing.assert_allclose(softmax_vjp(x, v, temperature=temperature), jac.T @ v, atol=1e-14)


def test_jvp_vjp_with_batches_and_axis():
    x = RNG.normal(size=(4, 3, 5))
    v = RNG.normal(size=(4, 3, 5))
    jac = softmax_jacobian(x, axis=1)  # (4, 5, 3, 3)
    expected = np.einsum("aikl,ali->aki", jac, v)
    np.testing.assert_allclose(softmax_jvp(x, v, axis=1), expected, atol=1e-15)
    np.testing.assert_allclose(softmax_vjp(x, v, axis=1), expected, atol=1e-15)
    with pytest.raises(ValueError, match="shape"):
        softmax_jvp(x, v[:, :2], axis=1)


# ---------------------------------------------------------------- the notes' identities
def test_two_class_softmax_is_sigmoid_of_the_difference():
    w0, w1 = RNG.normal(size=4), RNG.normal(size=4)
    x = RNG.normal(size=(50, 4))
    p = softmax(np.stack([x @ w0, x @ w1], axis=-1))
    np.testing.assert_allclose(p[:, 1], sigmoid(x @ (w1 - w0)), atol=1e-15)
    np.testing.assert_allclose(np.log(p[:, 1]), log_sigmoid(x @ (w1 - w0)), atol=1e-13)


def test_temperature_divides_the_logits():
    x = RNG.normal(size=(3, 4))
    for t in (0.25, 1.0, 7.0):
        np.testing.assert_allclose(softmax(x, temperature=t), sp.softmax(x / t, axis=-1), atol=1e-15)
        np.testing.assert_allclose(log_softmax(x, temperature=t), sp.log_softmax(x / t, axis=-1), atol=1e-14)
    # large temperature -> uniform, small -> one-hot of the argmax
    np.testing.assert_allclose(softmax(x, temperature=1e9), 0.25, atol=1e-8)
    np.testing.assert_allclose(softmax(x, temperature=1e-9), np.eye(4)[x.argmax(-1)], atol=0)
    for bad in (0.0, -1.0, np.inf, np.nan, "hot"):
        with pytest.raises(ValueError, match="temperature"):
            softmax(x, temperature=bad)


# ---------------------------------------------------------------- extreme inputs
def _no_warnings(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args, **kwargs)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_extremes_are_finite_and_exact(dtype):
    big = np.finfo(dtype).max
    x = np.array([[big, -big, 0.0], [1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [big, big, -big]], dtype=dtype)
    p = _no_warnings(softmax, x)
    assert p.dtype == dtype
    np.testing.assert_array_equal(p[:2], [[1, 0, 0], [1, 0, 0]])
    np.testing.assert_allclose(p[2], 1 / 3, rtol=1e-3)
    np.testing.assert_allclose(p[3], [0.5, 0.5, 0], rtol=1e-3)
    lp = _no_warnings(log_softmax, x)
    assert np.all(lp[:, 0] <= 0) and not np.any(np.isnan(lp))
    lse = _no_warnings(logsumexp, x)
    assert np.all(np.isfinite(lse[1:3]))
    assert lse[0] == big


def test_special_values_contract():
    x = np.array(
        [
            [-np.inf, -np.inf, -np.inf],  # all -inf
            [np.inf, 1.0, np.inf],  # +inf share the mass
            [np.nan, 1.0, 2.0],  # NaN poisons its own row
            [0.0, -np.inf, np.log(3.0)],  # -inf gets 0
        ]
    )
    p = _no_warnings(softmax, x)
    np.testing.assert_array_equal(p[0], [0, 0, 0])
    np.testing.assert_array_equal(p[1], [0.5, 0, 0.5])
    assert np.all(np.isnan(p[2]))
    np.testing.assert_allclose(p[3], [0.25, 0, 0.75])
    lp = _no_warnings(log_softmax, x)
    np.testing.assert_array_equal(lp[0], [-np.inf] * 3)
    np.testing.assert_allclose(lp[1], [-np.log(2), -np.inf, -np.log(2)])
    assert np.all(np.isnan(lp[2])) and lp[3, 1] == -np.inf
    lse = _no_warnings(logsumexp, x)
    assert lse[0] == -np.inf and lse[1] == np.inf and np.isnan(lse[2])
    np.testing.assert_allclose(lse[3], np.log(4.0))


def test_where_masks_entries_and_rows():
    x = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    where = np.array([[True, False, True], [False, False, False]])
    p = _no_warnings(softmax, x, where=where)
    np.testing.assert_allclose(p[0], sp.softmax([1.0, -np.inf, 3.0]))
    np.testing.assert_array_equal(p[1], 0.0)
    lp = _no_warnings(log_softmax, x, where=where)
    assert lp[0, 1] == -np.inf and np.all(lp[1] == -np.inf)
    lse = _no_warnings(logsumexp, x, where=where)
    np.testing.assert_allclose(lse[0], np.logaddexp(1.0, 3.0))
    assert lse[1] == -np.inf
    # broadcasting mask along the class axis
    np.testing.assert_allclose(softmax(x, where=np.array([True, True, False]))[:, 2], 0.0)
    with pytest.raises(ValueError, match="boolean"):
        softmax(x, where=np.ones(3))
    with pytest.raises(ValueError, match="broadcast"):
        softmax(x, where=np.ones(4, dtype=bool))


def test_float16_computed_in_float32_and_returned_in_float16():
    x = RNG.normal(size=(10, 30)).astype(np.float16) * 8
    p = softmax(x)
    assert p.dtype == np.float16
    np.testing.assert_allclose(p.astype(np.float64), sp.softmax(x.astype(np.float64), axis=-1), atol=1e-3)
    xt = torch.tensor(x.astype(np.float32)).to(torch.bfloat16)
    assert softmax(xt).dtype == torch.bfloat16


def test_integer_input_promoted_to_default_float():
    assert softmax(np.array([1, 2, 3])).dtype == np.float64
    assert softmax(torch.tensor([1, 2, 3])).dtype == torch.get_default_dtype()
    assert softmax([1.0, 2.0]).dtype == np.float64


def test_empty_arrays():
    assert softmax(np.zeros((0, 4))).shape == (0, 4)
    assert log_softmax(np.zeros((3, 0))).shape == (3, 0)
    np.testing.assert_array_equal(logsumexp(np.zeros((2, 0))), [-np.inf, -np.inf])
    assert logsumexp(np.zeros((0, 4))).shape == (0,)


def test_scalar_and_bad_axis_are_clear_errors():
    with pytest.raises(ValueError, match="dimension"):
        softmax(np.float64(1.0))
    with pytest.raises(ValueError, match="out of bounds"):
        softmax(np.zeros((2, 3)), axis=2)
    with pytest.raises(TypeError, match="real"):
        softmax(np.zeros(3, dtype=complex))


def test_array_api_strict_namespace():
    x = array_api_strict.asarray([[1.0, 2.0, 3.0], [0.0, 0.0, -float("inf")]])
    p = softmax(x)
    assert type(p) is type(x)
    np.testing.assert_allclose(np.asarray(p), sp.softmax(np.asarray(x), axis=-1))
    lse = logsumexp(x, where=array_api_strict.asarray([True, False, True]))
    np.testing.assert_allclose(np.asarray(lse), [np.logaddexp(1.0, 3.0), 0.0])
    v = array_api_strict.asarray([[1.0, -1.0, 0.5], [2.0, 0.0, 1.0]])
    np.testing.assert_allclose(np.asarray(softmax_jvp(x, v)), np.asarray(softmax_vjp(x, v)))


# ---------------------------------------------------------------- sigmoids
def test_sigmoids_match_scipy_and_are_stable():
    x = np.concatenate([np.linspace(-50, 50, 101), [-1e4, 1e4, -np.inf, np.inf, -1000.0, 1000.0]])
    np.testing.assert_allclose(_no_warnings(sigmoid, x), sp.expit(x), rtol=1e-15)
    np.testing.assert_allclose(_no_warnings(log_sigmoid, x), sp.log_expit(x), rtol=1e-15)
    assert log_sigmoid(-1000.0) == -1000.0
    assert log_sigmoid(np.float32(-1000.0)).dtype == np.float32
    assert np.isnan(sigmoid(np.nan))
    xt = torch.linspace(-30, 30, 61, dtype=torch.float64)
    torch.testing.assert_close(sigmoid(xt), torch.sigmoid(xt))
    torch.testing.assert_close(log_sigmoid(xt), torch.nn.functional.logsigmoid(xt))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 4), (2000, 37), (70_001,)])
def test_all_finite_equals_numpy_for_every_special_value_and_position(dtype, shape):
    from softmaxreg.functional import all_finite

    rng = np.random.default_rng(0)
    x = rng.normal(size=shape).astype(dtype)
    assert all_finite(x) is True
    flat = x.reshape(-1)
    for position in (0, flat.size // 2, flat.size - 1):
        for bad in (np.nan, np.inf, -np.inf):
            y = flat.copy()
            y[position] = bad
            assert all_finite(y.reshape(shape)) is False
    assert all_finite(np.asfortranarray(x.reshape(shape))) is True
    assert all_finite(torch.from_numpy(x)) is True
    assert all_finite(array_api_strict.asarray(np.where(x > 0, np.inf, x))) is False
