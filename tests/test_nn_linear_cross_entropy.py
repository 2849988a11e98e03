"""nn.LinearCrossEntropy against torch's Linear + CrossEntropyLoss, and in a network with an optimizer."""

import numpy as np
import pytest
import torch

from softmaxreg import nn

RNG = np.random.default_rng(5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    "kw",
    [{}, {"reduction": "sum"}, {"ignore_index": -1, "label_smoothing": 0.1}, {"class_weight": RNG.uniform(0.5, 2, 31)}],
)
@pytest.mark.parametrize("bias", [True, False])
def test_matches_torch_linear_and_cross_entropy(dtype, kw, bias, one_torch_thread):
    x = RNG.normal(size=(17, 6)).astype(dtype)
    y = RNG.integers(0, 31, 17)
    y[4] = -1 if "ignore_index" in kw else 3
    head = nn.LinearCrossEntropy(6, 31, bias=bias, dtype=dtype, rng=0, **kw)
    lin = torch.nn.Linear(6, 31, bias=bias, dtype=torch.float64 if dtype == np.float64 else torch.float32)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor(head.params["weight"]))
        if bias:
            lin.bias.copy_(torch.tensor(head.params["bias"]))
    tkw = {("weight" if k == "class_weight" else k): (torch.tensor(v, dtype=lin.weight.dtype) if k == "class_weight" else v)
           for k, v in kw.items()}
    xt = torch.tensor(x, requires_grad=True)
    ref = torch.nn.CrossEntropyLoss(**tkw)(lin(xt), torch.tensor(y))
    (3.0 * ref).backward()
    loss = head(x, y)
    gx = head.backward(3.0)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(loss, ref.item(), rtol=rtol)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=rtol, atol=rtol * float(xt.grad.abs().max()))
    np.testing.assert_allclose(head.grads["weight"], lin.weight.grad.numpy(), rtol=rtol,
                               atol=rtol * float(lin.weight.grad.abs().max()))
    if bias:
        np.testing.assert_allclose(head.grads["bias"], lin.bias.grad.numpy(), rtol=rtol,
                                   atol=rtol * float(lin.bias.grad.abs().max()))
    assert gx.dtype == dtype and head.grads["weight"].dtype == dtype


def test_trains_a_network_with_adam_like_linear_plus_softmax_cross_entropy():
    X = RNG.normal(size=(64, 5))
    y = RNG.integers(0, 50, 64)
    body_a, body_b = nn.Sequential(nn.Linear(5, 8, rng=1), nn.ReLU()), nn.Sequential(nn.Linear(5, 8, rng=1), nn.ReLU())
    head_a = nn.LinearCrossEntropy(8, 50, rng=2)
    head_b, ce = nn.Linear(8, 50, rng=2), nn.SoftmaxCrossEntropy()
    opt_a = nn.Adam(body_a.parameters() + head_a.parameters(), lr=0.01)
    opt_b = nn.Adam(body_b.parameters() + head_b.parameters(), lr=0.01)
    for _ in range(20):
        la = head_a(body_a(X), y)
        body_a.backward(head_a.backward())
        opt_a.step()
        lb = ce(head_b(body_b(X)), y)
        body_b.backward(head_b.backward(ce.backward()))
        opt_b.step()
        np.testing.assert_allclose(la, lb, rtol=1e-10)
    np.testing.assert_allclose(head_a.params["weight"], head_b.params["weight"], rtol=1e-8, atol=1e-12)
    classes, p = head_a.topk(body_a(X), 3)
    np.testing.assert_array_equal(classes[:, 0], np.argmax(head_b(body_b(X)), axis=1))


def test_eval_mode_computes_the_loss_only_and_bad_use_is_clear():
    head = nn.LinearCrossEntropy(3, 4, rng=0)
    x, y = RNG.normal(size=(5, 3)), np.array([0, 1, 2, 3, 0])
    loss = head.eval()(x, y)
    assert loss == pytest.approx(head.train()(x, y), rel=1e-14)
    head.eval()(x, y)
    with pytest.raises(RuntimeError, match="training mode"):
        head.backward()
    with pytest.raises(ValueError, match="labels must lie in"):
        head.train()(x, np.array([0, 1, 2, 4, 0]))
    with pytest.raises(ValueError, match="expects 3"):
        head(np.ones((5, 2)), y)
    with pytest.raises(ValueError, match="does not match"):
        head(x.astype(np.float32), y)
    with pytest.raises(ValueError, match="reduction must be"):
        nn.LinearCrossEntropy(3, 4, reduction="none")
    # the loss's options are checked when the layer is built
    with pytest.raises(ValueError, match="label_smoothing must be a number in"):
        nn.LinearCrossEntropy(3, 4, label_smoothing=2.0)
    with pytest.raises(TypeError, match="ignore_index must be an integer"):
        nn.LinearCrossEntropy(3, 4, ignore_index=1.5)
    with pytest.raises(ValueError, match="class_weight must have shape"):
        nn.LinearCrossEntropy(3, 4, class_weight=np.ones(3))


def test_class_weight_must_be_finite_and_non_negative_when_built():
    for weight in ([1.0, np.nan, 1.0, 1.0], [1.0, -1.0, 1.0, 1.0]):
        with pytest.raises(ValueError, match="finite and non-negative"):
            nn.LinearCrossEntropy(3, 4, class_weight=np.array(weight))
