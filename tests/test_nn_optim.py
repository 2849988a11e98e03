"""softmaxreg.nn optimizers against torch.optim, step by step on the same gradients."""

import numpy as np
import pytest

from softmaxreg import nn

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DTYPES = [np.float32, np.float64]


def _run_both(make_ours, make_torch, dtype, n_steps=25, groups=False):
    """Apply the same gradient sequence to our optimizer and to torch's; return both paths."""
    rng = np.random.default_rng(0)
    p0 = [rng.normal(size=(4, 3)).astype(dtype), rng.normal(size=(3,)).astype(dtype)]
    ours = [p.copy() for p in p0]
    grads = [np.zeros_like(p) for p in p0]
    theirs = [torch.nn.Parameter(torch.tensor(p)) for p in p0]
    if groups:  # weight decay on the matrix only
        opt = make_ours([{"params": [(ours[0], grads[0])]},
                         {"params": [(ours[1], grads[1])], "weight_decay": 0.0}])
        topt = make_torch([{"params": [theirs[0]]}, {"params": [theirs[1]], "weight_decay": 0.0}])
    else:
        opt = make_ours(list(zip(ours, grads)))
        topt = make_torch(theirs)
    for step in range(n_steps):
        for g, t in zip(grads, theirs):
            g[...] = rng.normal(size=g.shape)
            t.grad = torch.tensor(g.copy())
        opt.step()
        topt.step()
        if step == 10:  # a schedule changes the rate mid-run
            opt.set_lr(0.05)
            for group in topt.param_groups:
                group["lr"] = 0.05
    return ours, [t.detach().numpy() for t in theirs]


def _close(ours, theirs, dtype):
    tol = dict(rtol=2e-5, atol=2e-6) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-13)
    for a, b in zip(ours, theirs):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, **tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"momentum": 0.9},
        {"momentum": 0.5, "weight_decay": 0.1},
        {"momentum": 0.9, "nesterov": True},
        {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01},
        {"weight_decay": 0.3},
    ],
)
def test_sgd_matches_torch(dtype, kw):
    ours, theirs = _run_both(lambda p: nn.SGD(p, lr=0.1, **kw),
                             lambda p: torch.optim.SGD(p, lr=0.1, **kw), dtype)
    _close(ours, theirs, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"betas": (0.8, 0.99), "eps": 1e-6},
        {"weight_decay": 0.1},
    ],
)
def test_adam_matches_torch(dtype, kw):
    ours, theirs = _run_both(lambda p: nn.Adam(p, lr=0.01, **kw),
                             lambda p: torch.optim.Adam(p, lr=0.01, **kw), dtype)
    _close(ours, theirs, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_adam_decoupled_matches_torch_adamw(dtype):
    ours, theirs = _run_both(
        lambda p: nn.Adam(p, lr=0.01, weight_decay=0.2, decoupled_weight_decay=True),
        lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.2), dtype)
    _close(ours, theirs, dtype)
    ours, theirs = _run_both(lambda p: nn.AdamW(p, lr=0.01),
                             lambda p: torch.optim.AdamW(p, lr=0.01), dtype)
    _close(ours, theirs, dtype)


def test_param_groups_match_torch():
    ours, theirs = _run_both(lambda p: nn.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.5),
                             lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, weight_decay=0.5),
                             np.float64, groups=True)
    _close(ours, theirs, np.float64)


def test_sgd_recipe_by_hand():
    """v = mu v + (g + lam p); p -= lr v, written out for two steps."""
    p, g = np.array([2.0]), np.array([1.0])
    opt = nn.SGD([(p, g)], lr=0.5, momentum=0.5, weight_decay=0.25)
    opt.step()  # d = 1 + 0.5 = 1.5, v = 1.5, p = 2 - 0.75
    np.testing.assert_allclose(p, [1.25])
    opt.step()  # d = 1 + 0.3125 = 1.3125, v = 0.75 + 1.3125 = 2.0625, p = 1.25 - 1.03125
    np.testing.assert_allclose(p, [0.21875])


def test_optimizer_takes_module_and_trains():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    for make in (lambda m: nn.SGD(m, lr=0.5, momentum=0.9), lambda m: nn.Adam(m, lr=0.05)):
        net = nn.Sequential(nn.Linear(3, 16, rng=0), nn.Tanh(), nn.Linear(16, 3, rng=1))
        opt, ce = make(net), nn.SoftmaxCrossEntropy()
        first = ce(net(X), y)
        for _ in range(100):
            ce(net(X), y)
            net.backward(ce.backward())
            opt.step()
        assert ce(net(X), y) < 0.3 * first


def test_step_allocates_nothing_new():
    p, g = np.ones(3), np.ones(3)
    opt = nn.Adam([(p, g)], weight_decay=0.1)
    opt.step()
    bufs = {k: id(v) for k, v in opt.state[0][0].items() if isinstance(v, np.ndarray)}
    opt.step()
    assert bufs == {k: id(v) for k, v in opt.state[0][0].items() if isinstance(v, np.ndarray)}


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda pr: nn.SGD(pr, lr=-0.1), "lr must be"),
        (lambda pr: nn.SGD(pr, lr=float("nan")), "lr must be"),
        (lambda pr: nn.SGD(pr, lr=0.1, momentum=1.0), "momentum"),
        (lambda pr: nn.SGD(pr, lr=0.1, weight_decay=-1), "weight_decay"),
        (lambda pr: nn.SGD(pr, lr=0.1, nesterov=True), "nesterov"),
        (lambda pr: nn.Adam(pr, betas=(0.9,)), "betas"),
        (lambda pr: nn.Adam(pr, betas=(0.9, 1.0)), "betas\\[1\\]"),
        (lambda pr: nn.SGD([], lr=0.1), "empty"),
        (lambda pr: nn.SGD([np.ones(3)], lr=0.1), "pair"),
        (lambda pr: nn.SGD([(np.ones(3), np.ones(2))], lr=0.1), "must match"),
        (lambda pr: nn.SGD([{"params": pr, "betas": (0.9, 0.9)}], lr=0.1), "unknown option"),
    ],
)
def test_bad_options_raise(make, match):
    pairs = [(np.ones(3), np.ones(3))]
    with pytest.raises(ValueError, match=match):
        make(pairs)


@pytest.mark.parametrize("make", [lambda ps: nn.SGD(ps, lr=0.5, momentum=0.9, weight_decay=0.5),
                                  lambda ps: nn.Adam(ps, lr=1e-3, weight_decay=1e-3)])
def test_decaying_weights_do_not_stick_in_the_subnormal_range(make):
    """Weights with no gradient but their decay shrink towards 0; none may stay subnormal (every
    product with a subnormal takes the processor's slow path)."""
    p = np.geomspace(1e-30, 1.0, 64).astype(np.float32)
    g = np.zeros_like(p)
    opt = make([(p, g)])
    tiny = np.finfo(np.float32).tiny
    for _ in range(4000):
        opt.step()
    assert not np.any((p != 0) & (np.abs(p) < tiny))
    assert np.any(p == 0)  # some did pass through the subnormal range
    for state in opt.state[0]:
        for key in ("m", "v"):
            if key in state:
                a = state[key]
                assert not np.any((a != 0) & (np.abs(a) < tiny))
