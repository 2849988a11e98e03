"""Tests of softmaxreg.functional._cross_entropy against PyTorch, autograd and finite differences."""

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from softmaxreg.functional import (
    binary_cross_entropy,
    cross_entropy,
    cross_entropy_grad,
    distillation_loss,
    log_softmax,
    softmax,
)

RNG = np.random.default_rng(7)
N, K = 9, 5
Z = RNG.normal(size=(N, K)) * 3
Y = RNG.integers(0, K, N)
W = RNG.uniform(0.2, 3.0, K)
Q = RNG.dirichlet(np.ones(K), N)

OPTIONS = [
    {},
    {"weight": W},
    {"label_smoothing": 0.2},
    {"weight": W, "label_smoothing": 0.3},
    {"ignore_index": 2},
    {"ignore_index": 2, "weight": W, "label_smoothing": 0.1},
]


def _torch_kwargs(kw):
    return {k: (torch.tensor(v) if k == "weight" else v) for k, v in kw.items()}


def _torch_loss_and_grad(z, target, reduction, kw, temperature=1.0):
    zt = torch.tensor(z, requires_grad=True)
    loss = F.cross_entropy(zt / temperature, torch.tensor(target), reduction=reduction, **_torch_kwargs(kw))
    (grad,) = torch.autograd.grad(loss.sum(), zt)
    return loss.detach().numpy(), grad.numpy()


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("kw", OPTIONS)
def test_index_targets_match_torch(kw, reduction):
    ref, ref_grad = _torch_loss_and_grad(Z, Y, reduction, kw)
    np.testing.assert_allclose(cross_entropy(Z, Y, reduction=reduction, **kw), ref, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(cross_entropy_grad(Z, Y, reduction=reduction, **kw), ref_grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("kw", [o for o in OPTIONS if "ignore_index" not in o])
def test_probability_targets_match_torch(kw, reduction):
    ref, ref_grad = _torch_loss_and_grad(Z, Q, reduction, kw)
    np.testing.assert_allclose(cross_entropy(Z, Q, reduction=reduction, **kw), ref, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(cross_entropy_grad(Z, Q, reduction=reduction, **kw), ref_grad, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("temperature", [0.5, 4.0])
def test_temperature_matches_torch_on_scaled_logits(temperature):
    ref, ref_grad = _torch_loss_and_grad(Z, Y, "mean", {}, temperature)
    np.testing.assert_allclose(cross_entropy(Z, Y, temperature=temperature), ref, rtol=1e-13)
    np.testing.assert_allclose(cross_entropy_grad(Z, Y, temperature=temperature), ref_grad, rtol=1e-12, atol=1e-15)


def test_class_axis_and_extra_dims_match_torch():
    z = RNG.normal(size=(3, K, 4))  # torch's (N, C, d1) layout
    y = RNG.integers(0, K, (3, 4))
    ref, ref_grad = _torch_loss_and_grad(z, y, "mean", {"weight": W, "label_smoothing": 0.1})
    np.testing.assert_allclose(cross_entropy(z, y, axis=1, weight=W, label_smoothing=0.1), ref, rtol=1e-13)
    np.testing.assert_allclose(cross_entropy_grad(z, y, axis=1, weight=W, label_smoothing=0.1), ref_grad, atol=1e-15)


def test_float32_and_torch_tensors_in_and_out():
    z32 = Z.astype(np.float32)
    out = cross_entropy(z32, Y)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, F.cross_entropy(torch.tensor(Z), torch.tensor(Y)).item(), rtol=1e-6)
    zt = torch.tensor(z32)
    got = cross_entropy(zt, torch.tensor(Y), weight=torch.tensor(W, dtype=torch.float32))
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
    torch.testing.assert_close(got, F.cross_entropy(zt, torch.tensor(Y), weight=torch.tensor(W, dtype=torch.float32)))
    assert cross_entropy_grad(zt, torch.tensor(Y)).shape == zt.shape


def test_gradient_is_softmax_minus_onehot():
    # the notes: d l / d o_j = softmax(o)_j - y_j
    g = cross_entropy_grad(Z, Y, reduction="sum")
    np.testing.assert_allclose(g, softmax(Z) - np.eye(K)[Y], atol=1e-15)
    np.testing.assert_allclose(cross_entropy_grad(Z, Y, reduction="none"), g, atol=1e-15)
    np.testing.assert_allclose(cross_entropy_grad(Z, Y), g / N, atol=1e-15)


def test_maximum_likelihood_is_minimum_cross_entropy():
    # -log prod_i p(y_i | x_i) = sum_i CE_i
    nll = -np.sum(np.log(softmax(Z)[np.arange(N), Y]))
    np.testing.assert_allclose(cross_entropy(Z, Y, reduction="sum"), nll, rtol=1e-13)


def test_gradient_against_central_differences():
    kw = {"weight": W, "label_smoothing": 0.15, "temperature": 1.7}
    g = cross_entropy_grad(Z, Y, **kw)
    h = 1e-6
    fd = np.zeros_like(Z)
    for idx in np.ndindex(*Z.shape):
        e = np.zeros_like(Z)
        e[idx] = h
        fd[idx] = (cross_entropy(Z + e, Y, **kw) - cross_entropy(Z - e, Y, **kw)) / (2 * h)
    np.testing.assert_allclose(g, fd, atol=1e-9)


def test_rows_without_information_contribute_zero():
    z = np.array([[-np.inf, -np.inf, -np.inf], [0.0, 0.0, np.log(2.0)]])
    y = np.array([0, 2])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cross_entropy(z, y) == pytest.approx(np.log(2.0))  # only the second row is counted
        np.testing.assert_array_equal(cross_entropy(z, y, reduction="none"), [0.0, np.log(2.0)])
        g = cross_entropy_grad(z, y)
    np.testing.assert_array_equal(g[0], 0.0)
    assert not np.any(np.isnan(g))


def test_all_ignored_batch_has_loss_zero():
    y = np.full(N, 3)
    assert cross_entropy(Z, y, ignore_index=3) == 0.0
    assert cross_entropy(Z, y, ignore_index=3, weight=W, label_smoothing=0.2) == 0.0
    np.testing.assert_array_equal(cross_entropy_grad(Z, y, ignore_index=3), 0.0)
    assert cross_entropy(np.zeros((0, K)), np.zeros(0, dtype=int)) == 0.0


def test_zero_probability_targets_use_0_log_0_equals_0():
    z = np.array([[0.0, -np.inf, 1.0]])
    q = np.array([[0.5, 0.0, 0.5]])
    expected = -(0.5 * log_softmax(z)[0, 0] + 0.5 * log_softmax(z)[0, 2])
    assert cross_entropy(z, q) == pytest.approx(expected)
    # but putting mass on an impossible class is an infinite loss, not NaN
    assert cross_entropy(z, np.array([1])) == np.inf


def test_target_class_with_minus_inf_logit_is_infinite_loss():
    assert cross_entropy(np.array([[0.0, -np.inf]]), np.array([1])) == np.inf


def test_nan_poisons_its_own_row_only():
    z = Z.copy()
    z[1, 2] = np.nan
    per = cross_entropy(z, Y, reduction="none")
    assert np.isnan(per[1]) and np.all(np.isfinite(np.delete(per, 1)))


def test_extreme_logits_are_finite():
    z = np.array([[1e4, -1e4, 0.0], [np.finfo(np.float64).max, 0.0, -np.finfo(np.float64).max]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        per = cross_entropy(z, np.array([0, 1]), reduction="none")
        g = cross_entropy_grad(z, np.array([0, 1]))
    assert per[0] == 0.0 and per[1] == np.finfo(np.float64).max
    assert np.all(np.isfinite(g))


def test_float16_logits():
    z16 = Z.astype(np.float16)
    out = cross_entropy(z16, Y)
    assert out.dtype == np.float16
    np.testing.assert_allclose(float(out), cross_entropy(z16.astype(np.float64), Y), rtol=1e-3)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"target": np.array([0, 1])}, "shape"),
        ({"target": np.full(N, K)}, "range"),
        ({"target": Y.astype(float)}, "shape"),
        ({"target": Q, "ignore_index": 1}, "ignore_index"),
        ({"target": Y, "weight": np.ones(K + 1)}, "weight"),
        ({"target": Y, "reduction": "avg"}, "reduction"),
        ({"target": Y, "label_smoothing": 1.5}, "label_smoothing"),
        ({"target": Y, "temperature": 0.0}, "temperature"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        cross_entropy(Z, **kwargs)


# ---------------------------------------------------------------- binary cross-entropy
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_cross_entropy_matches_torch(reduction):
    x = RNG.normal(size=(6, 4)) * 10
    t = RNG.uniform(size=(6, 4))
    w = RNG.uniform(size=(6, 4))
    pw = RNG.uniform(0.5, 3, 4)
    for kw in ({}, {"weight": w}, {"pos_weight": pw}, {"weight": w, "pos_weight": pw}):
        ref = F.binary_cross_entropy_with_logits(
            torch.tensor(x), torch.tensor(t), reduction=reduction, **{k: torch.tensor(v) for k, v in kw.items()}
        )
        np.testing.assert_allclose(binary_cross_entropy(x, t, reduction=reduction, **kw), ref.numpy(), rtol=1e-13)


def test_binary_cross_entropy_tails():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = binary_cross_entropy(np.array([-1000.0, 1000.0]), np.array([1.0, 0.0]), reduction="none")
    np.testing.assert_array_equal(out, [1000.0, 1000.0])


@pytest.mark.parametrize("name", ["weight", "pos_weight"])
def test_binary_cross_entropy_weights_may_not_enlarge_the_loss(name):
    # As in PyTorch: a weight broadcasts to the logits' shape, never beyond it.
    x, t = np.zeros((2, 3)), np.ones((2, 3))
    assert binary_cross_entropy(x, t, reduction="none", **{name: np.full(3, 2.0)}).shape == (2, 3)
    with pytest.raises(ValueError, match=f"{name} of shape \\(4, 2, 3\\) does not broadcast"):
        binary_cross_entropy(x, t, reduction="none", **{name: np.ones((4, 2, 3))})
    with pytest.raises(ValueError, match="does not broadcast"):
        binary_cross_entropy(x, t, **{name: np.ones(2)})


def test_binary_cross_entropy_keeps_tiny_losses_and_infinite_logits():
    """A confident right answer costs softplus(-x) = e^-x (no cancellation to 0); an infinite logit costs
    0 when right and inf when wrong, never NaN."""
    x = np.array([40.0, 20.0, -40.0, 700.0])
    t = np.array([1.0, 1.0, 0.0, 1.0])
    np.testing.assert_allclose(binary_cross_entropy(x, t, reduction="none"), np.log1p(np.exp(-np.abs(x))),
                               rtol=1e-14)
    inf = np.array([np.inf, np.inf, -np.inf, -np.inf])
    np.testing.assert_array_equal(binary_cross_entropy(inf, np.array([1.0, 0.0, 1.0, 0.0]), reduction="none"),
                                  [0.0, np.inf, np.inf, 0.0])
    got = binary_cross_entropy(torch.tensor([40.0], dtype=torch.float64), torch.tensor([1.0], dtype=torch.float64),
                               reduction="none")
    assert float(got[0]) == pytest.approx(4.248354255291589e-18, rel=1e-12)


@pytest.mark.parametrize("weight", [[np.nan, 1.0, 1.0], [np.inf, 1.0, 1.0], [-1.0, -1.0, -1.0]])
@pytest.mark.parametrize("n", [2, 30000])  # the reference and the kernels' path
def test_bad_class_weights_are_an_error_not_a_silent_zero(weight, n):
    z, y = np.zeros((n, 3)), np.arange(n) % 3
    for f in (cross_entropy, cross_entropy_grad):
        with pytest.raises(ValueError, match="finite, non-negative"):
            f(z, y, weight=np.array(weight))


@pytest.mark.parametrize("axis", [(1,), 1.0, None, True])
def test_axis_must_be_one_integer(axis):
    with pytest.raises(TypeError, match="axis must be an integer"):
        cross_entropy(np.zeros((2, 3)), np.array([0, 1]), axis=axis)


def test_binary_is_two_class_softmax_cross_entropy():
    x = RNG.normal(size=20)
    t = RNG.integers(0, 2, 20)
    two_class = np.stack([np.zeros(20), x], axis=-1)
    np.testing.assert_allclose(binary_cross_entropy(x, t.astype(float)), cross_entropy(two_class, t), rtol=1e-14)


# ---------------------------------------------------------------- distillation
def _torch_distillation(s, t, y, temperature, alpha):
    st_, tt = torch.tensor(s), torch.tensor(t)
    soft = -(torch.softmax(tt / temperature, -1) * torch.log_softmax(st_ / temperature, -1)).sum(-1).mean()
    loss = alpha * temperature**2 * soft
    if y is not None:
        loss = loss + (1 - alpha) * F.cross_entropy(st_, torch.tensor(y))
    return loss.item()


@pytest.mark.parametrize("temperature,alpha", [(2.0, 0.5), (4.0, 0.9), (1.0, 0.0)])
def test_distillation_matches_hinton_formula(temperature, alpha):
    s, t = RNG.normal(size=(8, K)), RNG.normal(size=(8, K)) * 2
    y = RNG.integers(0, K, 8)
    got = distillation_loss(s, t, y, temperature=temperature, alpha=alpha)
    np.testing.assert_allclose(got, _torch_distillation(s, t, y, temperature, alpha), rtol=1e-13)
    got = distillation_loss(s, t, temperature=temperature, alpha=alpha)
    np.testing.assert_allclose(got, _torch_distillation(s, t, None, temperature, alpha), rtol=1e-13)


def test_distillation_soft_term_is_minimal_when_student_equals_teacher():
    t = RNG.normal(size=(4, K))
    base = distillation_loss(t, t, alpha=1.0)
    for _ in range(5):
        assert distillation_loss(t + RNG.normal(size=t.shape) * 0.1, t, alpha=1.0) >= base
    with pytest.raises(ValueError, match="alpha"):
        distillation_loss(t, t, alpha=2.0)
    with pytest.raises(ValueError, match="same shape"):
        distillation_loss(t, t[:, :2])
