"""Learning-rate schedules: ``schedule(epoch) -> learning rate``.

A schedule is any callable that maps a 0-based epoch index to a learning
rate >= 0 (``CosineLR`` reaches 0 at its end). The classes below are the usual closed forms; each one
matches the PyTorch scheduler of the same idea (``torch.optim.lr_scheduler``)
evaluated at the same epoch:

==================  ===============================================  ==========================
class               learning rate at epoch ``e``                     PyTorch equivalent
==================  ===============================================  ==========================
``ConstantLR``      ``lr``                                           none (no scheduler)
``InverseTimeLR``   ``lr / (1 + decay * e)``                         ``LambdaLR``
``CosineLR``        ``min_lr + (lr - min_lr) (1 + cos(pi e / T)) / 2``  ``CosineAnnealingLR``
``StepLR``          ``lr * gamma ** (e // step_size)``               ``StepLR``
``ExponentialLR``   ``lr * gamma ** e``                              ``ExponentialLR``
``AdaptiveLR``      ``lr / factor ** (plateaus so far)``             ``ReduceLROnPlateau``
==================  ===============================================  ==========================

``AdaptiveLR`` is scikit-learn's ``learning_rate="adaptive"``: it depends on
the run, not on the epoch alone. A solver with a stopping rule calls its
:meth:`AdaptiveLR.on_plateau` where the rule would stop; the rate is divided
and training goes on until the rate reaches its floor.

Solvers and the neural-network optimizers call :func:`get_schedule` once and
then ask the schedule for the rate at the start of every epoch.
"""

import abc
import math
import numbers

__all__ = [
    "ConstantLR",
    "InverseTimeLR",
    "CosineLR",
    "StepLR",
    "ExponentialLR",
    "AdaptiveLR",
    "get_schedule",
    "SCHEDULE_NAMES",
]


def _check_positive(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a positive real number, got {value!r}.")
    value = float(value)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
    return value


def _check_nonnegative(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a real number >= 0, got {value!r}.")
    value = float(value)
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")
    return value


def _check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}.")
    return value


def _check_epoch(epoch):
    return _check_int("epoch", epoch, 0)


class _Schedule(abc.ABC):
    """Base class: validated ``learning_rate`` and a readable ``repr``."""

    def __init__(self, learning_rate):
        self.learning_rate = _check_positive("learning_rate", learning_rate)

    @abc.abstractmethod
    def __call__(self, epoch):
        """The learning rate for 0-based ``epoch``."""

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class ConstantLR(_Schedule):
    """The same learning rate at every epoch.

    .. math:: \\eta_e = \\eta

    Parameters
    ----------
    learning_rate : float
        The rate :math:`\\eta > 0`.

    Examples
    --------
    >>> ConstantLR(0.1)(0), ConstantLR(0.1)(50)
    (0.1, 0.1)
    """

    def __call__(self, epoch):
        _check_epoch(epoch)
        return self.learning_rate


class InverseTimeLR(_Schedule):
    """Inverse-time decay: the rate falls like ``1 / epoch``.

    .. math:: \\eta_e = \\frac{\\eta}{1 + d\\,e}

    The classic Robbins-Monro choice: the rates sum to infinity while their
    squares stay summable.

    Parameters
    ----------
    learning_rate : float
        Initial rate :math:`\\eta > 0`.
    decay : float, default=0.1
        Decay :math:`d \\ge 0` per epoch; ``decay=0`` is a constant rate.

    Examples
    --------
    >>> s = InverseTimeLR(1.0, decay=0.5)
    >>> [s(e) for e in range(4)]
    [1.0, 0.666..., 0.5, 0.4]
    """

    def __init__(self, learning_rate, decay=0.1):
        super().__init__(learning_rate)
        self.decay = _check_nonnegative("decay", decay)

    def __call__(self, epoch):
        return self.learning_rate / (1.0 + self.decay * _check_epoch(epoch))


class CosineLR(_Schedule):
    """Cosine annealing from ``learning_rate`` down to ``min_lr``.

    .. math::
        \\eta_e = \\eta_{\\min} + \\tfrac12 (\\eta - \\eta_{\\min})
                  \\bigl(1 + \\cos(\\pi \\min(e, T) / T)\\bigr)

    With :math:`\\eta_{\\min} = 0` this is ``lr * 0.5 * (1 + cos(pi e / T))``.
    Epochs past :math:`T` stay at :math:`\\eta_{\\min}` (PyTorch's
    ``CosineAnnealingLR`` would climb back up; a schedule that ends at the last
    epoch never sees the difference).

    Parameters
    ----------
    learning_rate : float
        Rate at epoch 0, :math:`\\eta > 0`.
    n_epochs : int
        Length :math:`T \\ge 1` of the half cosine (usually the number of
        epochs of the run).
    min_lr : float, default=0.0
        Floor :math:`0 \\le \\eta_{\\min} \\le \\eta`. Note that the last epoch
        of a run of ``T`` epochs is ``T - 1``, whose rate is still above the floor.

    Examples
    --------
    >>> s = CosineLR(1.0, n_epochs=4)
    >>> [round(s(e), 4) for e in range(5)]
    [1.0, 0.8536, 0.5, 0.1464, 0.0]
    """

    def __init__(self, learning_rate, n_epochs, min_lr=0.0):
        super().__init__(learning_rate)
        self.n_epochs = _check_int("n_epochs", n_epochs, 1)
        self.min_lr = _check_nonnegative("min_lr", min_lr)
        if self.min_lr > self.learning_rate:
            raise ValueError(
                f"min_lr={self.min_lr} must not exceed learning_rate="
                f"{self.learning_rate}; lower min_lr or raise learning_rate."
            )

    def __call__(self, epoch):
        e = min(_check_epoch(epoch), self.n_epochs)
        cos = 0.5 * (1.0 + math.cos(math.pi * e / self.n_epochs))
        return self.min_lr + (self.learning_rate - self.min_lr) * cos


class StepLR(_Schedule):
    """Multiply the rate by ``gamma`` every ``step_size`` epochs.

    .. math:: \\eta_e = \\eta\\,\\gamma^{\\lfloor e / s \\rfloor}

    Parameters
    ----------
    learning_rate : float
        Initial rate :math:`\\eta > 0`.
    step_size : int
        Epochs :math:`s \\ge 1` between two decays.
    gamma : float, default=0.1
        Factor :math:`0 < \\gamma \\le 1`.

    Examples
    --------
    >>> s = StepLR(1.0, step_size=2, gamma=0.5)
    >>> [s(e) for e in range(5)]
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    def __init__(self, learning_rate, step_size, gamma=0.1):
        super().__init__(learning_rate)
        self.step_size = _check_int("step_size", step_size, 1)
        self.gamma = _check_factor(gamma)

    def __call__(self, epoch):
        return self.learning_rate * self.gamma ** (_check_epoch(epoch) // self.step_size)


class ExponentialLR(_Schedule):
    """Multiply the rate by ``gamma`` every epoch.

    .. math:: \\eta_e = \\eta\\,\\gamma^{e}

    Parameters
    ----------
    learning_rate : float
        Initial rate :math:`\\eta > 0`.
    gamma : float, default=0.9
        Factor :math:`0 < \\gamma \\le 1` per epoch.

    Examples
    --------
    >>> s = ExponentialLR(1.0, gamma=0.5)
    >>> [s(e) for e in range(4)]
    [1.0, 0.5, 0.25, 0.125]
    """

    def __init__(self, learning_rate, gamma=0.9):
        super().__init__(learning_rate)
        self.gamma = _check_factor(gamma)

    def __call__(self, epoch):
        return self.learning_rate * self.gamma ** _check_epoch(epoch)


class AdaptiveLR(_Schedule):
    r"""Divide the rate by ``factor`` each time training stops improving.

    .. math:: \eta_e = \eta\,/\,\mathrm{factor}^{\,p_e}

    with :math:`p_e` the number of plateaus before epoch ``e``.  A plateau
    is what a stopping rule sees: ``n_iter_no_change`` epochs in a row
    without an improvement of ``tol`` (scikit-learn's ``SGDClassifier`` and
    ``MLPClassifier`` with ``learning_rate="adaptive"``).  Without such a
    rule (``tol=None``, ``partial_fit``) the rate stays ``learning_rate``.
    The instance keeps its reduced rate; :func:`get_schedule` builds a fresh
    one from the name ``"adaptive"`` for every run.

    Parameters
    ----------
    learning_rate : float
        Initial rate :math:`\eta > 0`.
    factor : float, default=5.0
        Divisor (> 1) at each plateau.
    min_lr : float, default=1e-6
        A plateau reached with the rate at or below ``min_lr`` ends training.

    Examples
    --------
    >>> s = AdaptiveLR(0.1)
    >>> s(0), s.on_plateau(), s(1), s.on_plateau(), s(2)
    (0.1, True, 0.02, True, 0.004)
    >>> AdaptiveLR(1e-6).on_plateau()
    False
    """

    def __init__(self, learning_rate, factor=5.0, min_lr=1e-6):
        super().__init__(learning_rate)
        self.factor = _check_positive("factor", factor)
        if self.factor <= 1.0:
            raise ValueError(f"factor must be > 1 so that the rate decreases, got {factor}.")
        self.min_lr = _check_nonnegative("min_lr", min_lr)
        self.plateaus = 0

    def __call__(self, epoch):
        _check_epoch(epoch)
        return self.learning_rate / self.factor**self.plateaus

    def on_plateau(self):
        """Lower the rate and return True, or return False (stop) at the floor."""
        if self.learning_rate / self.factor**self.plateaus <= self.min_lr:
            return False
        self.plateaus += 1
        return True


def _check_factor(gamma):
    gamma = _check_positive("gamma", gamma)
    if gamma > 1.0:
        raise ValueError(
            f"gamma must be in (0, 1] so that the rate decays, got {gamma}."
        )
    return gamma


class _CheckedCallable:
    """Wrap a user callable so a bad rate fails loudly at the epoch it appears."""

    def __init__(self, func):
        self.func = func

    def __call__(self, epoch):
        epoch = _check_epoch(epoch)
        lr = self.func(epoch)
        try:
            return _check_nonnegative(f"learning-rate schedule {self.func!r} at epoch {epoch}", lr)
        except ValueError as exc:
            raise ValueError(f"{exc} Return a finite rate >= 0 for every epoch.") from None

    def __repr__(self):
        return f"{type(self).__name__}({self.func!r})"


#: Names accepted by :func:`get_schedule`.
SCHEDULE_NAMES = ("constant", "inverse_time", "cosine", "step", "exponential", "adaptive")


def get_schedule(schedule, learning_rate, n_epochs=None):
    """Turn a schedule specification into a callable ``epoch -> rate``.

    Parameters
    ----------
    schedule : str, schedule instance or callable
        * a name, built with these defaults from ``learning_rate`` and
          ``n_epochs``:

          - ``"constant"``: ``ConstantLR(learning_rate)``
          - ``"inverse_time"``: ``InverseTimeLR(learning_rate, decay=0.1)``
          - ``"cosine"``: ``CosineLR(learning_rate, n_epochs)`` (needs ``n_epochs``)
          - ``"step"``: ``StepLR(learning_rate, step_size=max(1, ceil(n_epochs / 3)),
            gamma=0.1)``, i.e. two tenfold decays over the run (needs ``n_epochs``)
          - ``"exponential"``: ``ExponentialLR(learning_rate, gamma=0.9)``
          - ``"adaptive"``: ``AdaptiveLR(learning_rate)`` (divided by 5 at
            each plateau of the stopping rule)

        * an instance of one of the schedule classes: returned as it is
          (``learning_rate`` and ``n_epochs`` are then not used);
        * any other callable ``f(epoch) -> float``: wrapped so that a
          non-finite or negative rate raises ``ValueError`` (a rate of 0
          leaves the weights as they are for that epoch).
    learning_rate : float
        Base rate > 0 for named schedules.
    n_epochs : int, optional
        Number of epochs of the run; required by ``"cosine"`` and ``"step"``.

    Returns
    -------
    schedule : callable
        ``schedule(epoch) -> float`` for 0-based ``epoch``.

    Examples
    --------
    >>> s = get_schedule("step", 1.0, n_epochs=6)
    >>> [s(e) for e in range(6)]
    [1.0, 1.0, 0.1, 0.1, 0.01..., 0.01...]
    >>> get_schedule(lambda e: 0.5 / (e + 1), 1.0)(1)
    0.25
    """
    if isinstance(schedule, _Schedule):
        return schedule
    if isinstance(schedule, str):
        if schedule not in SCHEDULE_NAMES:
            raise ValueError(
                f"Unknown learning-rate schedule {schedule!r}; use one of "
                f"{', '.join(map(repr, SCHEDULE_NAMES))}, a schedule instance or a callable."
            )
        if schedule in ("cosine", "step") and n_epochs is None:
            raise ValueError(
                f"The {schedule!r} schedule needs n_epochs (the number of epochs of the run)."
            )
        if n_epochs is not None:
            n_epochs = _check_int("n_epochs", n_epochs, 1)
        if schedule == "constant":
            return ConstantLR(learning_rate)
        if schedule == "inverse_time":
            return InverseTimeLR(learning_rate)
        if schedule == "cosine":
            return CosineLR(learning_rate, n_epochs)
        if schedule == "step":
            return StepLR(learning_rate, step_size=max(1, math.ceil(n_epochs / 3)))
        if schedule == "adaptive":
            return AdaptiveLR(learning_rate)
        return ExponentialLR(learning_rate)
    if callable(schedule):
        return _CheckedCallable(schedule)
    raise ValueError(
        f"learning-rate schedule must be a name ({', '.join(map(repr, SCHEDULE_NAMES))}), "
        f"a schedule instance or a callable epoch -> rate, got {schedule!r}."
    )
