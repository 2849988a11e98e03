"""Learning-rate schedules against torch.optim.lr_scheduler and their closed forms."""

import math

import numpy as np
import pytest

from softmaxreg.solvers._schedules import (
    SCHEDULE_NAMES,
    AdaptiveLR,
    ConstantLR,
    CosineLR,
    ExponentialLR,
    InverseTimeLR,
    StepLR,
    get_schedule,
)

torch = pytest.importorskip("torch")


def _torch_rates(make_scheduler, lr, n_epochs):
    """Rates PyTorch's scheduler gives for epochs 0 .. n_epochs - 1."""
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=lr)
    sched = make_scheduler(opt)
    rates = []
    for _ in range(n_epochs):
        rates.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return np.array(rates)


def _ours(schedule, n_epochs):
    return np.array([schedule(e) for e in range(n_epochs)])


@pytest.mark.parametrize("lr", [0.5, 0.013])
def test_step_matches_torch(lr):
    ours = _ours(StepLR(lr, step_size=3, gamma=0.3), 11)
    ref = _torch_rates(lambda o: torch.optim.lr_scheduler.StepLR(o, 3, gamma=0.3), lr, 11)
    np.testing.assert_allclose(ours, ref, rtol=1e-12)


def test_exponential_matches_torch():
    ours = _ours(ExponentialLR(0.2, gamma=0.85), 12)
    ref = _torch_rates(lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.85), 0.2, 12)
    np.testing.assert_allclose(ours, ref, rtol=1e-12)


@pytest.mark.parametrize("min_lr", [0.0, 0.01])
def test_cosine_matches_torch(min_lr):
    T = 7
    ours = _ours(CosineLR(0.1, n_epochs=T, min_lr=min_lr), T + 1)
    ref = _torch_rates(
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=T, eta_min=min_lr), 0.1, T + 1
    )
    np.testing.assert_allclose(ours, ref, rtol=1e-10, atol=1e-15)
    assert ours[-1] == pytest.approx(min_lr)
    # past T the rate stays at the floor
    assert CosineLR(0.1, n_epochs=T, min_lr=min_lr)(T + 3) == pytest.approx(min_lr)


def test_cosine_brief_formula():
    s = CosineLR(0.3, n_epochs=10)
    for e in range(10):
        assert s(e) == pytest.approx(0.3 * 0.5 * (1 + math.cos(math.pi * e / 10)), rel=1e-14)


def test_inverse_time_matches_torch_lambda():
    ours = _ours(InverseTimeLR(0.4, decay=0.25), 9)
    ref = _torch_rates(
        lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda e: 1.0 / (1.0 + 0.25 * e)), 0.4, 9
    )
    np.testing.assert_allclose(ours, ref, rtol=1e-12)


def test_constant():
    s = ConstantLR(0.07)
    assert all(s(e) == 0.07 for e in range(20))


@pytest.mark.parametrize("name", SCHEDULE_NAMES)
def test_get_schedule_names(name):
    s = get_schedule(name, 0.5, n_epochs=9)
    rates = _ours(s, 9)
    assert rates[0] == pytest.approx(0.5)
    assert np.all(rates > 0) and np.all(np.diff(rates) <= 0)  # non-increasing
    assert isinstance(s(np.int64(2)), float)


def test_get_schedule_step_default_two_decays():
    s = get_schedule("step", 1.0, n_epochs=10)
    assert s.step_size == 4
    np.testing.assert_allclose(_ours(s, 10), [1] * 4 + [0.1] * 4 + [0.01] * 2)


def test_get_schedule_instance_and_callable():
    inst = StepLR(0.1, step_size=2)
    assert get_schedule(inst, 99.0, 3) is inst
    s = get_schedule(lambda e: 0.1 * 0.5**e, 1.0)
    assert s(3) == pytest.approx(0.0125)


@pytest.mark.parametrize(
    "spec, lr, n_epochs, match",
    [
        ("linear", 0.1, 5, "Unknown learning-rate schedule"),
        ("cosine", 0.1, None, "needs n_epochs"),
        ("step", 0.1, None, "needs n_epochs"),
        ("constant", -0.1, 5, "learning_rate must be a finite number > 0"),
        ("constant", float("nan"), 5, "learning_rate"),
        ("constant", 0.1, 0, "n_epochs must be an integer >= 1"),
        (3.0, 0.1, 5, "must be a name"),
    ],
)
def test_get_schedule_rejects(spec, lr, n_epochs, match):
    with pytest.raises(ValueError, match=match):
        get_schedule(spec, lr, n_epochs)


def test_bad_callable_output_raises_at_call():
    s = get_schedule(lambda e: 0.1 if e < 2 else float("nan"), 1.0)
    assert s(1) == 0.1
    assert get_schedule(lambda e: 0.0, 1.0)(4) == 0.0  # a zero rate is a valid no-op
    with pytest.raises(ValueError, match="epoch 2"):
        s(2)
    with pytest.raises(ValueError, match="finite rate >= 0"):
        get_schedule(lambda e: -1.0, 1.0)(0)


def test_adaptive_divides_by_five_per_plateau_down_to_the_floor():
    """scikit-learn's rule: divide by 5 while the rate is above 1e-6, then stop."""
    s = get_schedule("adaptive", 0.1)
    assert isinstance(s, AdaptiveLR) and s(0) == s(7) == 0.1
    lowered = []
    while s.on_plateau():
        lowered.append(s(0))
    np.testing.assert_allclose(lowered, 0.1 / 5.0 ** np.arange(1, 9), rtol=1e-15)
    assert lowered[-2] > 1e-6 >= lowered[-1]
    # every name builds a fresh schedule: one run's plateaus do not leak into the next
    assert get_schedule("adaptive", 0.1)(0) == 0.1
    # Compare with PyTorch's ReduceLROnPlateau (factor 1/5, patience 0, threshold 0):
    # a non-improving metric lowers the rate once per plateau.
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.3)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.2, patience=0, threshold=0.0)
    ours = AdaptiveLR(0.3, min_lr=0.0)
    for _ in range(4):
        plateau.step(1.0)
    ours.on_plateau(), ours.on_plateau(), ours.on_plateau()
    assert ours(0) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-12)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: StepLR(0.1, step_size=0), "step_size"),
        (lambda: StepLR(0.1, step_size=2.5), "step_size"),
        (lambda: StepLR(0.1, step_size=2, gamma=1.5), "gamma must be in"),
        (lambda: ExponentialLR(0.1, gamma=0.0), "gamma"),
        (lambda: InverseTimeLR(0.1, decay=-1), "decay"),
        (lambda: CosineLR(0.1, n_epochs=5, min_lr=0.2), "min_lr"),
        (lambda: ConstantLR(True), "learning_rate"),
        (lambda: AdaptiveLR(0.1, factor=1.0), "factor must be > 1"),
        (lambda: AdaptiveLR(0.1, min_lr=-1.0), "min_lr"),
    ],
)
def test_constructors_reject(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("epoch", [-1, 1.5, True, "3"])
def test_bad_epoch(epoch):
    with pytest.raises(ValueError, match="epoch"):
        ConstantLR(0.1)(epoch)
