"""softmaxreg.nn layers: backward against central differences and PyTorch autograd."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from softmaxreg import nn

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.usefixtures("one_torch_thread")
F = torch.nn.functional

DTYPES = [np.float32, np.float64]
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}
# float32 backward vs autograd in float32: both round differently in sums of ~10 terms
RTOL = {np.float32: 2e-5, np.float64: 1e-12}
ATOL = {np.float32: 1e-6, np.float64: 1e-14}


def _make(name, dtype, rng):
    """A fresh layer of each kind, with random parameters in `dtype`."""
    if name == "Linear":
        return nn.Linear(5, 4, dtype=dtype, rng=rng)
    if name == "LinearNoBias":
        return nn.Linear(5, 4, bias=False, init="he_normal", dtype=dtype, rng=rng)
    if name == "Dropout":
        return nn.Dropout(0.3, rng=0)
    return getattr(nn, name)()


LAYERS = ["Linear", "LinearNoBias", "ReLU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "Dropout"]


def _torch_forward(name, layer, xt, dtype):
    if name.startswith("Linear"):
        w = torch.tensor(layer.params["weight"], requires_grad=True)
        b = torch.tensor(layer.params["bias"], requires_grad=True) if "bias" in layer.params else None
        return F.linear(xt, w, b), {"weight": w, "bias": b}
    if name == "Dropout":
        mask = torch.tensor(layer._mask)  # the mask our forward drew; dropout is x * mask
        return xt * mask, {}
    fn = {"ReLU": torch.relu, "Sigmoid": torch.sigmoid, "Tanh": torch.tanh,
          "Softmax": lambda t: torch.softmax(t, -1), "LogSoftmax": lambda t: torch.log_softmax(t, -1)}
    return fn[name](xt), {}


def _reseed(layer):
    if isinstance(layer, nn.Dropout):
        layer.rng = np.random.default_rng(0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", LAYERS)
def test_backward_matches_torch_autograd(name, dtype):
    rng = np.random.default_rng(1)
    layer = _make(name, dtype, rng)
    x = rng.normal(size=(7, 5)).astype(dtype)
    if name == "ReLU":
        x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink
    g = rng.normal(size=layer(x).shape).astype(dtype)
    out = layer(x)
    gx = layer.backward(g)
    assert out.dtype == dtype and gx.dtype == dtype

    xt = torch.tensor(x, requires_grad=True)
    out_t, pt = _torch_forward(name, layer, xt, dtype)
    out_t.backward(torch.tensor(g))
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=RTOL[dtype], atol=ATOL[dtype])
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=RTOL[dtype], atol=ATOL[dtype])
    for k, t in pt.items():
        if t is not None:
            assert layer.grads[k].dtype == dtype
            np.testing.assert_allclose(layer.grads[k], t.grad.numpy(),
                                       rtol=RTOL[dtype], atol=ATOL[dtype])


def _num_grad(f, a, eps):
    """Central differences of scalar f() with respect to array a (modified in place)."""
    grad = np.zeros_like(a, dtype=np.float64)
    for idx in np.ndindex(a.shape):
        old = a[idx]
        a[idx] = old + eps
        fp = f()
        a[idx] = old - eps
        fm = f()
        a[idx] = old
        grad[idx] = (fp - fm) / (2 * eps)
    return grad


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", LAYERS)
def test_backward_matches_finite_differences(name, dtype):
    """L = <g, layer(x)>; its gradient in x and in each parameter, by central differences.

    The differences are taken in float64 on a float64 copy of the layer (float32
    differences would measure rounding, not the derivative); the float32 layer's
    backward must agree with them to float32 accuracy.
    """
    rng = np.random.default_rng(2)
    layer64 = _make(name, np.float64, rng)
    layer = _make(name, dtype, np.random.default_rng(2))
    for k in layer.params:
        layer.params[k][...] = layer64.params[k]
    x = rng.normal(size=(4, 5))
    if name == "ReLU":
        x[np.abs(x) < 1e-2] = 0.5
    g = rng.normal(size=layer64(x).shape)

    def loss():
        _reseed(layer64)
        return float(np.sum(g * layer64(x)))

    num_x = _num_grad(loss, x, 1e-6)
    num_p = {k: _num_grad(loss, p, 1e-6) for k, p in layer64.params.items()}

    _reseed(layer)
    layer(x.astype(dtype))
    gx = layer.backward(g.astype(dtype))
    tol = dict(rtol=1e-6, atol=1e-8) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(gx, num_x, **tol)
    for k in layer.params:
        np.testing.assert_allclose(layer.grads[k], num_p[k], **tol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_loss_equals_softmax_then_cross_entropy(dtype):
    """(softmax(o) - Y)/n equals the Softmax layer's backward of -mean log p_y."""
    rng = np.random.default_rng(3)
    o = (3 * rng.normal(size=(9, 6))).astype(dtype)
    y = rng.integers(0, 6, size=9)
    fused = nn.SoftmaxCrossEntropy()
    loss = fused(o, y)
    grad = fused.backward()

    sm = nn.Softmax()
    p = sm(o)
    n = len(y)
    loss_two_step = -np.mean(np.log(p[np.arange(n), y]))
    dp = np.zeros_like(p)
    dp[np.arange(n), y] = -1.0 / (n * p[np.arange(n), y])
    grad_two_step = sm.backward(dp)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-15)
    assert grad.dtype == dtype
    np.testing.assert_allclose(loss, loss_two_step, **tol)
    np.testing.assert_allclose(grad, grad_two_step, **tol)
    onehot = np.eye(6, dtype=dtype)[y]
    np.testing.assert_allclose(grad, (p - onehot) / n, **tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "kwargs", [{}, {"label_smoothing": 0.1}, {"weight": "w"}, {"reduction": "sum"},
               {"ignore_index": 2}]
)
def test_fused_loss_matches_torch_cross_entropy(dtype, kwargs):
    rng = np.random.default_rng(4)
    o = rng.normal(size=(8, 4)).astype(dtype)
    y = rng.integers(0, 4, size=8)
    y[:2] = 2
    kw = dict(kwargs)
    if kw.get("weight") == "w":
        kw["weight"] = rng.uniform(0.5, 2.0, size=4).astype(dtype)
    ce = nn.SoftmaxCrossEntropy(**kw)
    loss, grad = ce(o, y), ce.backward()
    ot = torch.tensor(o, requires_grad=True)
    tkw = {k: (torch.tensor(v) if k == "weight" else v) for k, v in kw.items()}
    lt = F.cross_entropy(ot, torch.tensor(y), **tkw)
    lt.backward()
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(loss, lt.item(), **tol)
    np.testing.assert_allclose(grad, ot.grad.numpy(), **tol)


def test_fused_loss_probability_targets_and_grad_output():
    rng = np.random.default_rng(5)
    o = rng.normal(size=(5, 3))
    q = rng.dirichlet(np.ones(3), size=5)
    ce = nn.SoftmaxCrossEntropy(reduction="none")
    loss = ce(o, q)
    up = rng.normal(size=5)
    grad = ce.backward(up)
    ot = torch.tensor(o, requires_grad=True)
    lt = F.cross_entropy(ot, torch.tensor(q), reduction="none")
    lt.backward(torch.tensor(up))
    np.testing.assert_allclose(loss, lt.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(grad, ot.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_fused_loss_extreme_logits_finite():
    o = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 0.0]], dtype=np.float32)
    ce = nn.SoftmaxCrossEntropy()
    loss = ce(o, np.array([1, 1]))
    grad = ce.backward()
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(loss, 1e4, rtol=1e-6)  # (2e4 + 0) / 2


def _torch_net(net, dtype, acts):
    mods = []
    for layer in net:
        if isinstance(layer, nn.Linear):
            lin = torch.nn.Linear(layer.in_features, layer.out_features).to(TORCH_DTYPE[dtype])
            with torch.no_grad():
                lin.weight.copy_(torch.tensor(layer.params["weight"]))
                lin.bias.copy_(torch.tensor(layer.params["bias"]))
            mods.append(lin)
        else:
            mods.append(acts[type(layer)]())
    return torch.nn.Sequential(*mods)


@pytest.mark.parametrize("dtype", DTYPES)
def test_network_gradient_matches_torch(dtype):
    """Every parameter gradient of a 3-layer net + fused loss, against autograd."""
    rng = np.random.default_rng(6)
    net = nn.Sequential(
        nn.Linear(6, 8, dtype=dtype, rng=rng), nn.ReLU(),
        nn.Linear(8, 7, init="glorot_normal", dtype=dtype, rng=rng), nn.Tanh(),
        nn.Linear(7, 5, dtype=dtype, rng=rng), nn.Sigmoid(),
        nn.Linear(5, 3, dtype=dtype, rng=rng),
    )
    acts = {nn.ReLU: torch.nn.ReLU, nn.Tanh: torch.nn.Tanh, nn.Sigmoid: torch.nn.Sigmoid}
    tnet = _torch_net(net, dtype, acts)
    x = rng.normal(size=(11, 6)).astype(dtype)
    y = rng.integers(0, 3, size=11)
    ce = nn.SoftmaxCrossEntropy()
    loss = ce(net(x), y)
    gx = net.backward(ce.backward())
    xt = torch.tensor(x, requires_grad=True)
    lt = F.cross_entropy(tnet(xt), torch.tensor(y))
    lt.backward()
    tol = dict(rtol=1e-4, atol=1e-6) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-14)
    np.testing.assert_allclose(loss, lt.item(), **tol)
    np.testing.assert_allclose(gx, xt.grad.numpy(), **tol)
    tgrads = {k: v.grad.numpy() for k, v in tnet.named_parameters()}
    assert set(tgrads) == set(net.grads)
    for k, g in net.grads.items():
        assert g.dtype == dtype
        np.testing.assert_allclose(g, tgrads[k], **tol)


def test_first_layer_input_grad_off():
    rng = np.random.default_rng(7)
    net = nn.Sequential(nn.Linear(3, 4, rng=rng, input_grad=False), nn.ReLU(), nn.Linear(4, 2, rng=rng))
    ref = nn.Sequential(nn.Linear(3, 4, rng=0), nn.ReLU(), nn.Linear(4, 2, rng=0))
    for k in net.params:
        ref.params[k][...] = net.params[k]
    x = rng.normal(size=(5, 3))
    g = rng.normal(size=(5, 2))
    net(x), ref(x)
    assert net.backward(g) is None
    ref.backward(g)
    for k in net.grads:
        np.testing.assert_array_equal(net.grads[k], ref.grads[k])


def test_params_are_plain_arrays_updated_in_place():
    lin = nn.Linear(3, 2, rng=0)
    w, gw = lin.params["weight"], lin.grads["weight"]
    assert type(w) is np.ndarray and w.shape == (2, 3) and lin.params["bias"].shape == (2,)
    lin(np.ones((4, 3)))
    lin.backward(np.ones((4, 2)))
    assert lin.grads["weight"] is gw  # overwritten in place, never replaced
    np.testing.assert_array_equal(gw, np.full((2, 3), 4.0))
    lin.backward(np.ones((4, 2)))  # overwrite, not accumulate
    np.testing.assert_array_equal(gw, np.full((2, 3), 4.0))
    lin.zero_grad()
    assert not gw.any()
    net = nn.Sequential(lin, nn.ReLU())
    assert net.params["0.weight"] is w and net.grads["0.weight"] is gw


def test_seed_reproducibility():
    def build(seed):
        return nn.Sequential(nn.Linear(4, 6, init="he_normal", rng=seed), nn.Dropout(0.5, rng=seed),
                             nn.Linear(6, 2, rng=seed + 1))
    x = np.random.default_rng(0).normal(size=(3, 4))
    a, b, c = build(1), build(1), build(2)
    np.testing.assert_array_equal(a(x), b(x))
    assert not np.array_equal(a(x), c(x))
    for k in a.params:
        np.testing.assert_array_equal(a.params[k], b.params[k])


def test_float32_and_float64_same_init():
    a = nn.Linear(5, 3, init="he_normal", dtype=np.float32, rng=0)
    b = nn.Linear(5, 3, init="he_normal", dtype=np.float64, rng=0)
    assert a.params["weight"].dtype == np.float32
    np.testing.assert_array_equal(a.params["weight"], b.params["weight"].astype(np.float32))


def test_torch_default_init_bounds():
    lin = nn.Linear(100, 50, rng=0)
    assert np.abs(lin.params["weight"]).max() <= 0.1 and np.abs(lin.params["bias"]).max() <= 0.1
    assert np.abs(lin.params["weight"]).max() > 0.09  # really spans the interval


def test_dropout_modes_and_statistics():
    d = nn.Dropout(0.25, rng=0)
    x = np.ones((200, 100), dtype=np.float32)
    out = d(x)
    assert out.dtype == np.float32
    kept = out != 0
    assert abs(kept.mean() - 0.75) < 0.01
    np.testing.assert_allclose(out[kept], 1 / 0.75, rtol=1e-6)
    assert abs(out.mean() - 1.0) < 0.02  # unbiased
    np.testing.assert_array_equal(d.backward(x), out)
    d.eval()
    assert d(x) is x and d.backward(x) is x
    np.testing.assert_array_equal(nn.Dropout(1.0, rng=0)(x), 0)
    np.testing.assert_array_equal(nn.Dropout(0.0)(x), x)


def test_sequential_train_eval_propagates():
    net = nn.Sequential(nn.Linear(2, 2, rng=0), nn.Dropout(0.5, rng=0))
    net.eval()
    assert not net[1].training and not net.training
    net.train()
    assert net[1].training


def test_softmax_layers_extreme_inputs_finite():
    x = np.array([[1e4, -1e4, 0.0]], dtype=np.float32)
    for layer in (nn.Softmax(), nn.LogSoftmax(), nn.Sigmoid(), nn.Tanh()):
        out = layer(x)
        gx = layer.backward(np.ones_like(out))
        assert np.all(np.isfinite(out)) and np.all(np.isfinite(gx)), layer


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: nn.Linear(3, 2)(np.ones((2, 4))), "expects 3"),
        (lambda: nn.Linear(3, 2, dtype=np.float32)(np.ones((2, 3))), "does not match"),
        (lambda: nn.Linear(3, 2)(np.ones(3)), "must be 2-D"),
        (lambda: nn.ReLU()(np.ones((2, 3), dtype=int)), "float32 or float64"),
        (lambda: nn.Linear(0, 2), "positive integer"),
        (lambda: nn.Linear(2, 2, dtype=np.int64), "float32 or float64"),
        (lambda: nn.Linear(2, 2, init="orthogonal"), "Unknown initializer"),
        (lambda: nn.Dropout(1.5), "in \\[0, 1\\]"),
        (lambda: nn.Sequential(nn.ReLU(), "relu"), "Module instances"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_backward_misuse():
    with pytest.raises(RuntimeError, match="before forward"):
        nn.ReLU().backward(np.ones((1, 1)))
    with pytest.raises(RuntimeError, match="before forward"):
        nn.SoftmaxCrossEntropy().backward()
    r = nn.ReLU()
    r(np.ones((2, 3)))
    with pytest.raises(ValueError, match="shape"):
        r.backward(np.ones((3, 2)))
    lin = nn.Linear(3, 2)
    lin(np.ones((2, 3)))
    with pytest.raises(ValueError, match="shape"):
        lin.backward(np.ones((2, 3)))


def test_fused_loss_fast_path_agrees_with_functional():
    """Integer labels with default keywords take one log_softmax; same numbers as functional."""
    from softmaxreg.functional import cross_entropy, cross_entropy_grad

    rng = np.random.default_rng(8)
    for dtype in DTYPES:
        o = (5 * rng.normal(size=(33, 7))).astype(dtype)
        y = rng.integers(0, 7, size=33)
        ce = nn.SoftmaxCrossEntropy()
        loss, grad = ce(o, y), ce.backward()
        tol = dict(rtol=1e-6, atol=1e-7) if dtype == np.float32 else dict(rtol=1e-14, atol=1e-16)
        np.testing.assert_allclose(loss, cross_entropy(o, y), **tol)
        np.testing.assert_allclose(grad, cross_entropy_grad(o, y), **tol)
        assert grad.dtype == dtype


def test_fused_loss_minus_inf_row_uses_functional_conventions():
    from softmaxreg.functional import cross_entropy, cross_entropy_grad

    o = np.array([[0.0, 1.0, -np.inf], [-np.inf, -np.inf, -np.inf]])
    y = np.array([1, 0])
    ce = nn.SoftmaxCrossEntropy()
    loss = ce(o, y)
    assert np.isfinite(loss)
    np.testing.assert_allclose(loss, cross_entropy(o, y))
    np.testing.assert_array_equal(ce.backward(), cross_entropy_grad(o, y))


def test_fused_loss_rejects_bad_labels():
    ce = nn.SoftmaxCrossEntropy()
    with pytest.raises(ValueError, match="labels"):
        ce(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError):
        ce(np.zeros((2, 3)), np.array([-1, 0]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_sparse_input_equals_dense(dtype):
    import scipy.sparse as sp

    rng = np.random.default_rng(9)
    x = rng.normal(size=(6, 5)).astype(dtype)
    x[np.abs(x) < 0.7] = 0
    g = rng.normal(size=(6, 3)).astype(dtype)
    a = nn.Linear(5, 3, dtype=dtype, rng=0)
    b = nn.Linear(5, 3, dtype=dtype, rng=0)
    out_a, out_b = a(x), b(sp.csr_matrix(x))
    assert type(out_b) is np.ndarray and out_b.dtype == dtype
    np.testing.assert_allclose(out_b, out_a, rtol=1e-6)
    np.testing.assert_allclose(b.backward(g), a.backward(g), rtol=1e-6)
    np.testing.assert_allclose(b.grads["weight"], a.grads["weight"], rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="dtype"):
        a(sp.csr_matrix(x.astype(int)))


def test_state_dict_round_trip_and_from_torch():
    net = nn.Sequential(nn.Linear(3, 4, rng=0), nn.Tanh(), nn.Linear(4, 2, rng=1))
    w = net.params["0.weight"]
    state = net.state_dict()
    assert state["0.weight"] is not w  # a copy
    tnet = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).double()
    net.load_state_dict({k: v.detach().numpy() for k, v in tnet.state_dict().items()})
    assert net.params["0.weight"] is w  # loaded in place
    x = np.random.default_rng(0).normal(size=(5, 3))
    np.testing.assert_allclose(net(x), tnet(torch.tensor(x)).detach().numpy(), rtol=1e-12)
    net.load_state_dict(state)
    np.testing.assert_array_equal(net.params["2.bias"], state["2.bias"])
    with pytest.raises(ValueError, match="do not match"):
        net.load_state_dict({"0.weight": state["0.weight"]})
    with pytest.raises(ValueError, match="shape"):
        net.load_state_dict({**state, "2.bias": np.zeros(3)})

_rows = arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(2, 6)),
               elements=st.floats(-50, 50))


@settings(max_examples=40, deadline=None)
@given(_rows, st.integers(0, 2**32 - 1))
def test_softmax_backward_properties(x, seed):
    """J = diag(s) - s s^T: J^T g has zero row sums and equals J g; a constant g gives 0."""
    g = np.random.default_rng(seed).normal(size=x.shape)
    sm = nn.Softmax()
    s = sm(x)
    gx = sm.backward(g)
    np.testing.assert_allclose(gx.sum(axis=1), 0.0, atol=1e-12)
    J = np.einsum("ij,jk->ijk", s, np.eye(x.shape[1])) - s[:, :, None] * s[:, None, :]
    np.testing.assert_allclose(gx, np.einsum("ijk,ij->ik", J, g), atol=1e-12)
    np.testing.assert_allclose(sm.backward(np.ones_like(x)), 0.0, atol=1e-12)
    # shift invariance carries over to the backward pass
    sm2 = nn.Softmax()
    sm2(x + 7.0)
    np.testing.assert_allclose(sm2.backward(g), gx, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(_rows, st.integers(0, 2**32 - 1))
def test_fused_gradient_rows_sum_to_zero(x, seed):
    """(softmax(o) - onehot)/n: every row sums to 0 and lies in [-1/n, 1/n]."""
    y = np.random.default_rng(seed).integers(0, x.shape[1], size=x.shape[0])
    ce = nn.SoftmaxCrossEntropy()
    loss = ce(x, y)
    g = ce.backward()
    n = x.shape[0]
    assert loss >= 0
    np.testing.assert_allclose(g.sum(axis=1), 0.0, atol=1e-15)
    assert np.all(g >= -1 / n - 1e-15) and np.all(g <= 1 / n + 1e-15)
