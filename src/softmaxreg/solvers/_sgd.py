"""Minibatch stochastic gradient descent with (heavy-ball) momentum."""

import math

import array_api_compat
import numpy as np

from ._proximal import soft_threshold
from ._result import OptimizeResult, warn_not_converged
from ._schedules import get_schedule

__all__ = ["PlateauStop", "sgd"]

# Most numbers of kept epoch end points (32 MiB of float64) for a deferred history.
_DEFER_MAX = 1 << 22


def sgd(
    batch_gradient,
    x0,
    *,
    n_samples,
    batch_size=256,
    max_epochs=100,
    learning_rate=0.1,
    schedule="constant",
    momentum=0.0,
    rng=None,
    objective=None,
    objectives=None,
    tol=None,
    n_iter_no_change=5,
    callback=None,
    velocity=None,
    first_epoch=0,
    l1=None,
    epoch_step=None,
    permutation=None,
):
    r"""Minibatch SGD: one shuffled pass over the rows per epoch.

    Per epoch ``e``: ``lr = schedule(e)``, ``perm = rng.permutation(n_samples)``,
    and for each consecutive block ``idx`` of ``batch_size`` entries of ``perm``

    .. math::

        g = \texttt{batch\_gradient}(x, idx), \qquad
        v \leftarrow \mu v + g, \qquad x \leftarrow x - \mathrm{lr}\, v ,

    with ``v = 0`` at the start (PyTorch's ``SGD(momentum=mu)`` convention;
    ``mu = 0`` is plain SGD).  ``x`` keeps the dtype of ``x0`` (float32 SGD
    stays float32).

    Stopping: after each epoch ``objective(x)`` is recorded.  With ``tol`` set,
    the run stops (converged) once ``n_iter_no_change`` consecutive epochs fail
    to bring the objective below ``best - tol`` (scikit-learn's SGD rule); with
    ``tol=None`` exactly ``max_epochs`` epochs run.  With the "adaptive"
    schedule (:class:`~softmaxreg.solvers.AdaptiveLR`) such a plateau divides
    the rate by 5 instead, and only a plateau at a rate of at most 1e-6 stops.  Running out of epochs with
    ``tol`` set gives a ``ConvergenceWarning``.  When nothing needs an epoch's
    value as the epoch ends (no ``tol``, no ``callback``) and ``objectives`` is
    given, the epochs' end points are kept and scored together after the last
    epoch instead: the same history, for one pass over the data per group of
    points rather than one per epoch.

    Parameters
    ----------
    batch_gradient : callable
        ``batch_gradient(x, idx) -> ndarray`` of the shape of ``x``: the
        minibatch estimate of the gradient at ``x`` on rows ``idx``.
    x0 : ndarray of shape (n_params,)
        Start point (not modified).
    n_samples : int
        Number of rows to permute.
    batch_size : int, default=256
        Rows per step; the last batch of an epoch may be smaller.
    max_epochs : int, default=100
        Number of passes.
    learning_rate : float, default=0.1
        Base rate handed to the schedule.
    schedule : str or callable, default="constant"
        A name known to :func:`~softmaxreg.solvers._schedules.get_schedule`,
        or a callable ``epoch -> rate`` used as is.
    momentum : float, default=0.0
        :math:`\mu` in ``[0, 1)``.
    rng : numpy.random.Generator, default=None
        Source of the permutations (``default_rng()`` when None).
    objective : callable, default=None
        ``objective(x) -> float`` evaluated after each epoch for the history;
        required when ``tol`` is set.
    objectives : callable, default=None
        ``objectives(xs) -> sequence of float``, ``objective`` at several
        points at once (such as :meth:`LinearSoftmaxLoss.losses`); used as
        described above while the kept points stay under ``2**22`` numbers.
    tol : float, default=None
        Improvement threshold of the stopping rule above.
    n_iter_no_change : int, default=5
        Patience of the stopping rule.
    callback : callable, default=None
        ``callback(x, fun, epoch)`` after each epoch; returning True stops.
    velocity : ndarray of shape (n_params,), default=None
        Momentum buffer to continue from (updated in place), for incremental
        training; zeros when None.
    first_epoch : int, default=0
        Epoch index handed to the schedule for the first epoch of this call.
    l1 : float or ndarray of shape (n_params,), default=None
        L1 weights :math:`\ell`: after every step the proximal map
        ``x <- soft_threshold(x, lr * l1)`` is applied (proximal SGD), which
        gives exact zeros.  ``objective`` should then include the L1 term.

    epoch_step : callable, default=None
        ``epoch_step(x, perm, lr, v)``: a fused implementation of one epoch's
        minibatch loop that updates ``x`` (and ``v``) in place exactly as the loop
        above would, or returns None without touching them when it cannot, in
        which case the loop runs. Not used with ``l1``.
    permutation : callable, default=None
        ``permutation(n_samples) -> index array``, the order of an epoch's
        rows; ``rng.permutation`` when None.  For an ``x0`` on a device, a
        function drawing the indices there (``torch.randperm(n, device=...)``)
        keeps the minibatches on the device; the indices must live where the
        ``batch_gradient`` can use them.

    Returns
    -------
    OptimizeResult
        ``n_iter`` counts epochs; ``history`` holds the objective per epoch.

    Examples
    --------
    Noise-free least squares ``f(x) = mean_i (x - t_i)^2 / 2`` with targets 1, 2, 3:
    full batches and rate 1 jump to the mean in one step.

    >>> import numpy as np
    >>> t = np.array([1.0, 2.0, 3.0])
    >>> res = sgd(lambda x, idx: x - t[idx].mean(), np.zeros(1), n_samples=3,
    ...           batch_size=3, max_epochs=2, learning_rate=1.0)
    >>> res.x.tolist(), res.n_iter
    ([2.0], 2)
    """
    if rng is None:
        rng = np.random.default_rng()
    if tol is not None and objective is None:
        raise ValueError("sgd needs an objective(x) callable when tol is set.")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}.")
    batch_size = int(batch_size)
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}.")
    rate = get_schedule(schedule, learning_rate, max(int(max_epochs), 1))
    if array_api_compat.is_array_api_obj(x0) and not array_api_compat.is_numpy_array(x0):
        xp = array_api_compat.array_namespace(x0)
        x = xp.asarray(x0, copy=True)
    else:
        xp, x = np, np.array(x0, copy=True)
    if permutation is None:
        permutation = rng.permutation
    if momentum:
        v = xp.zeros_like(x) if velocity is None else velocity
    else:
        v = None
    history = []
    # The epochs' end points, scored by ``objectives`` after the run.
    ends = [] if (objectives is not None and tol is None and callback is None
                  and math.prod(x.shape) * int(max_epochs) <= _DEFER_MAX) else None
    stop = PlateauStop(tol, n_iter_no_change, rate) if tol is not None else None
    converged = tol is None
    message = "ran max_epochs epochs" if tol is None else "maximum number of epochs reached"
    epoch = 0
    for epoch in range(1, int(max_epochs) + 1):
        lr = rate(first_epoch + epoch - 1)
        perm = permutation(n_samples)
        fused = epoch_step is not None and l1 is None and epoch_step(x, perm, lr, v) is not None
        if not fused:
            _minibatch_loop(batch_gradient, x, v, perm, batch_size, momentum, lr, l1)
        if ends is not None:
            ends.append(xp.asarray(x, copy=True))
            f = float("nan")
        else:
            f = float(objective(x)) if objective is not None else float("nan")
        history.append(f)
        if not bool(xp.all(xp.isfinite(x))):
            converged = False
            message = "diverged (non-finite coefficients); lower learning_rate"
            break
        if callback is not None and callback(x, f, epoch):
            converged, message = False, "stopped by callback"
            break
        if stop is not None and stop.update(f):
            converged, message = True, stop.message
            break
    if ends:
        history = [float(f) for f in objectives(ends)]
    result = OptimizeResult(
        x=x,
        fun=history[-1] if history else float("nan"),
        n_iter=epoch,
        converged=converged,
        history=history,
        message=message,
    )
    warn_not_converged(result, "sgd")
    return result


class PlateauStop:
    """scikit-learn's SGD stopping rule, fed one objective value per epoch.

    An epoch whose objective ``f`` is above ``best - tol`` (``best`` the
    lowest value so far) counts as no improvement; ``n_iter_no_change`` of
    them in a row make a plateau.  At a plateau a ``schedule`` with an
    ``on_plateau()`` method (:class:`~softmaxreg.solvers.AdaptiveLR`) may
    lower its rate and training goes on; otherwise training stops.

    Parameters
    ----------
    tol : float
        Improvement an epoch must bring.
    n_iter_no_change : int
        Epochs without improvement that make a plateau.
    schedule : callable, default=None
        The run's schedule, asked to lower its rate at a plateau.

    Examples
    --------
    >>> rule = PlateauStop(0.1, 2)
    >>> [rule.update(f) for f in (1.0, 0.5, 0.45, 0.42)]
    [False, False, False, True]
    """

    def __init__(self, tol, n_iter_no_change, schedule=None):
        self.tol, self.n_iter_no_change = float(tol), int(n_iter_no_change)
        self.on_plateau = getattr(schedule, "on_plateau", None)
        self.best, self.no_change = np.inf, 0
        self.message = f"objective improved by less than tol for {self.n_iter_no_change} epochs"

    def update(self, f):
        """Record epoch objective ``f``; return whether training should stop."""
        self.no_change = self.no_change + 1 if f > self.best - self.tol else 0
        self.best = min(self.best, f)
        if self.no_change < self.n_iter_no_change:
            return False
        if self.on_plateau is not None and self.on_plateau():
            self.no_change = 0
            return False
        return True


def _minibatch_loop(batch_gradient, x, v, perm, batch_size, momentum, lr, l1):
    """One epoch of steps over consecutive blocks of ``perm``, updating ``x`` and ``v`` in place."""
    n = int(perm.shape[0])
    for start in range(0, n, batch_size):
        g = batch_gradient(x, perm[start : min(start + batch_size, n)])
        if v is not None:
            v *= momentum
            v += g
            g = v
        step = lr * g
        if step.dtype != x.dtype:
            step = array_api_compat.array_namespace(x).astype(step, x.dtype)
        x -= step
        if l1 is not None:
            x[...] = soft_threshold(x, lr * l1)
