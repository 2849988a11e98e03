"""Optimizers that update parameters in place from their gradients.

An optimizer is built from what a :class:`~softmaxreg.nn.Module` exposes:

* a module (all of its parameters),
* a list of ``(param, grad)`` pairs (``module.parameters()``), or
* a list of parameter groups, dicts ``{"params": [(param, grad), ...], **options}``
  whose options (``lr``, ``weight_decay``, ``momentum``, ...) override the
  optimizer's defaults for that group, as in PyTorch. The usual use is to keep
  weight decay off the biases.

``step()`` reads each ``grad`` array and updates its ``param`` array in place,
following PyTorch's formulas exactly (``torch.optim.SGD``/``Adam``/``AdamW``),
so both frameworks give the same iterates from the same gradients. The state
(momentum, moments) lives in the dtype of its parameter. The learning rate of
every group can be changed between steps through :meth:`Optimizer.set_lr`,
which is what a schedule (:mod:`softmaxreg.solvers._schedules`) drives.
"""

import math
import numbers

import numpy as np

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]


def _check_real(name, value, low=0.0, low_open=False, high=None, high_open=False):
    ok = not isinstance(value, bool) and isinstance(value, numbers.Real) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low)
        if high is not None:
            ok = ok and (value < high if high_open else value <= high)
    if not ok:
        lo = f"{'(' if low_open else '['}{low}"
        hi = f"{high}{')' if high_open else ']'}" if high is not None else "inf)"
        raise ValueError(f"{name} must be a finite number in {lo}, {hi}, got {value!r}.")
    return float(value)


def _pairs(params):
    """Normalize a module / (param, grad) pairs into a list of pairs."""
    if hasattr(params, "parameters") and callable(params.parameters):
        params = params.parameters()
    pairs = list(params)
    for i, pair in enumerate(pairs):
        ok = isinstance(pair, (tuple, list)) and len(pair) == 2
        if ok:
            p, g = pair
            ok = isinstance(p, np.ndarray) and isinstance(g, np.ndarray)
        if not ok:
            raise ValueError(
                f"parameter {i} is not a (param, grad) pair of NumPy arrays; pass a Module, "
                "module.parameters(), or groups {'params': module.parameters(), ...}."
            )
        if p.shape != g.shape or p.dtype != g.dtype:
            raise ValueError(
                f"parameter {i} has shape {p.shape} / dtype {p.dtype} but its gradient has "
                f"shape {g.shape} / dtype {g.dtype}; they must match."
            )
        if not p.flags.writeable:
            raise ValueError(f"parameter {i} is read-only; the optimizer updates it in place.")
    return pairs


def _buffer(state, key, like):
    """A scratch array kept in the state, so a step allocates nothing."""
    buf = state.get(key)
    if buf is None:
        buf = state[key] = np.empty_like(like)
    return buf


def _flush_subnormals(a, state):
    """Set the entries of ``a`` below the dtype's smallest normal number to zero, in place.

    A weight that only decays (a dead ReLU unit, an input that is always 0)
    shrinks geometrically into the subnormal range and sticks there once its
    step rounds to nothing; x86 then takes a slow path for every product it
    enters, which made later epochs many times slower than the first.  At
    this scale (about 1e-38 in float32) the value carries no information,
    so the optimizers flush it, as the processor's flush-to-zero mode would.
    """
    mag = np.abs(a, out=_buffer(state, "_abs", a))
    small = state.get("_small")
    if small is None:
        small = state["_small"] = np.empty(a.shape, dtype=bool)
    np.less(mag, np.finfo(a.dtype).tiny, out=small)
    np.copyto(a, 0, where=small)


# The persistent per-parameter arrays of the optimizers below (their moments).
_MOMENTS = ("m", "v")
# Flushing every step would cost a pass over the parameters; a subnormal that
# lives a few steps costs little, so every 16th step is enough.
_FLUSH_EVERY = 16


class Optimizer:
    """Base class: parameter groups, defaults, per-parameter state.

    Subclasses define ``defaults`` (validated by ``_check_options``) and
    ``_update(p, g, state, group)``.  Every few steps the parameters and their
    moment estimates are flushed to zero below the dtype's smallest normal
    number (see ``_flush_subnormals``).
    """

    def __init__(self, params, **defaults):
        self.defaults = self._check_options(defaults)
        if hasattr(params, "parameters") and callable(params.parameters):
            params = params.parameters()
        params = list(params)
        if params and isinstance(params[0], dict):
            groups = params
        else:
            groups = [{"params": params}]
        self.param_groups = []
        for group in groups:
            unknown = set(group) - {"params"} - set(self.defaults)
            if unknown:
                raise ValueError(
                    f"unknown option(s) {sorted(unknown)} in a parameter group of "
                    f"{type(self).__name__}; allowed: {sorted(self.defaults)}."
                )
            options = self._check_options({**self.defaults, **{k: v for k, v in group.items()
                                                                if k != "params"}})
            self.param_groups.append({"params": _pairs(group["params"]), **options})
        if not any(g["params"] for g in self.param_groups):
            raise ValueError(f"{type(self).__name__} got an empty parameter list.")
        self.state = [[{} for _ in g["params"]] for g in self.param_groups]

    def set_lr(self, lr):
        """Set the learning rate of every parameter group."""
        lr = _check_real("lr", lr)
        for group in self.param_groups:
            group["lr"] = lr

    def zero_grad(self):
        """Zero every gradient array (not needed after Module.backward, which overwrites)."""
        for group in self.param_groups:
            for _, g in group["params"]:
                g.fill(0)

    def step(self):
        """Update every parameter in place from its current gradient."""
        self._n_steps = getattr(self, "_n_steps", 0) + 1
        flush = self._n_steps % _FLUSH_EVERY == 0
        for group, states in zip(self.param_groups, self.state):
            for (p, g), state in zip(group["params"], states):
                self._update(p, g, state, group)
                if flush and p.dtype.kind == "f":
                    _flush_subnormals(p, state)
                    for key in _MOMENTS:
                        if isinstance(state.get(key), np.ndarray):
                            _flush_subnormals(state[key], state)


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, as ``torch.optim.SGD``.

    .. math::
        d = g + \\lambda p, \\qquad
        v \\leftarrow \\mu v + d, \\qquad
        p \\leftarrow p - \\eta\\, (d + \\mu v \\text{ if nesterov else } v)

    with :math:`v = 0` before the first step (so the first step is
    :math:`p - \\eta d`), :math:`\\eta` = ``lr``, :math:`\\mu` = ``momentum``,
    :math:`\\lambda` = ``weight_decay`` (an L2 penalty
    :math:`\\tfrac\\lambda2\\|p\\|^2` added to the loss). ``momentum=0`` is
    plain SGD, :math:`p \\leftarrow p - \\eta d`.

    Parameters
    ----------
    params : Module, list of (param, grad) pairs, or list of group dicts
    lr : float
        Learning rate >= 0 (0 leaves the parameters as they are, as in PyTorch).
    momentum : float, default=0.0
        In [0, 1).
    weight_decay : float, default=0.0
        >= 0.
    nesterov : bool, default=False
        Nesterov momentum (needs ``momentum > 0``).

    Examples
    --------
    >>> p, g = np.array([1.0]), np.array([0.5])
    >>> opt = SGD([(p, g)], lr=0.1, momentum=0.9)
    >>> opt.step(); p          # v = 0.5, p = 1 - 0.1 * 0.5
    array([0.95])
    >>> opt.step(); p          # v = 0.9 * 0.5 + 0.5 = 0.95
    array([0.855])
    """

    def __init__(self, params, lr, momentum=0.0, weight_decay=0.0, nesterov=False):
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay,
                         nesterov=nesterov)

    @staticmethod
    def _check_options(o):
        o["lr"] = _check_real("lr", o["lr"])
        o["momentum"] = _check_real("momentum", o["momentum"], high=1.0, high_open=True)
        o["weight_decay"] = _check_real("weight_decay", o["weight_decay"])
        o["nesterov"] = bool(o["nesterov"])
        if o["nesterov"] and o["momentum"] == 0.0:
            raise ValueError("nesterov=True needs momentum > 0.")
        return o

    @staticmethod
    def _update(p, g, state, group):
        lr, mu, wd = group["lr"], group["momentum"], group["weight_decay"]
        t = p.dtype.type
        d = g
        if wd:
            d = np.multiply(p, t(wd), out=_buffer(state, "d", p))
            d += g
        if mu:
            v = state.get("v")
            if v is None:
                v = state["v"] = d.copy()          # torch: buf = d on the first step
            else:
                v *= t(mu)
                v += d
            if group["nesterov"]:
                n = np.multiply(v, t(mu), out=_buffer(state, "n", p))
                n += d
                d = n
            else:
                d = v
        p -= np.multiply(d, t(lr), out=_buffer(state, "s", p))


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction, as ``torch.optim.Adam``.

    .. math::
        d &= g + \\lambda p \\quad (\\text{L2 into the gradient; with }
            \\texttt{decoupled\\_weight\\_decay}: p \\leftarrow p (1 - \\eta\\lambda),\\ d = g) \\\\
        m &\\leftarrow \\beta_1 m + (1 - \\beta_1) d, \\qquad
        v \\leftarrow \\beta_2 v + (1 - \\beta_2) d^2 \\\\
        p &\\leftarrow p - \\frac{\\eta}{1 - \\beta_1^t}\\,
            \\frac{m}{\\sqrt{v}/\\sqrt{1 - \\beta_2^t} + \\epsilon}

    at step :math:`t = 1, 2, \\dots`, with :math:`m = v = 0` at the start. The
    decoupled form is AdamW (Loshchilov & Hutter 2019, ``torch.optim.AdamW``).

    Parameters
    ----------
    params : Module, list of (param, grad) pairs, or list of group dicts
    lr : float, default=1e-3
    betas : (float, float), default=(0.9, 0.999)
    eps : float, default=1e-8
    weight_decay : float, default=0.0
    decoupled_weight_decay : bool, default=False

    Examples
    --------
    >>> p, g = np.array([1.0]), np.array([0.5])
    >>> opt = Adam([(p, g)], lr=0.1)
    >>> opt.step(); p.round(6)   # first step moves by lr * g / |g| = lr
    array([0.9])
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 decoupled_weight_decay=False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         decoupled_weight_decay=decoupled_weight_decay)

    @staticmethod
    def _check_options(o):
        o["lr"] = _check_real("lr", o["lr"])
        betas = o["betas"]
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}.")
        o["betas"] = tuple(_check_real(f"betas[{i}]", b, high=1.0, high_open=True)
                           for i, b in enumerate(betas))
        o["eps"] = _check_real("eps", o["eps"])
        o["weight_decay"] = _check_real("weight_decay", o["weight_decay"])
        o["decoupled_weight_decay"] = bool(o["decoupled_weight_decay"])
        return o

    @staticmethod
    def _update(p, g, state, group):
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        t = p.dtype.type
        if not state:
            state.update(step=0, m=np.zeros_like(p), v=np.zeros_like(p))
        state["step"] += 1
        m, v, tmp = state["m"], state["v"], _buffer(state, "tmp", p)
        d = g
        if wd and group["decoupled_weight_decay"]:
            p *= t(1.0 - lr * wd)
        elif wd:
            d = np.multiply(p, t(wd), out=_buffer(state, "d", p))
            d += g
        # m = b1 m + (1 - b1) d  (torch's lerp), v = b2 v + (1 - b2) d^2
        m *= t(b1)
        np.multiply(d, t(1.0 - b1), out=tmp)
        m += tmp
        v *= t(b2)
        np.multiply(d, d, out=tmp)
        tmp *= t(1.0 - b2)
        v += tmp
        step = state["step"]
        bias1 = 1.0 - b1 ** step
        bias2_sqrt = math.sqrt(1.0 - b2 ** step)
        np.sqrt(v, out=tmp)
        tmp /= t(bias2_sqrt)
        tmp += t(eps)
        np.divide(m, tmp, out=tmp)
        tmp *= t(lr / bias1)
        p -= tmp


class AdamW(Adam):
    """Adam with decoupled weight decay, as ``torch.optim.AdamW`` (same defaults).

    .. math:: p \\leftarrow p (1 - \\eta \\lambda), \\text{ then the Adam step on } g.

    Examples
    --------
    >>> p, g = np.array([1.0]), np.array([0.0])
    >>> AdamW([(p, g)], lr=0.1, weight_decay=0.5).step(); p   # only the decay acts
    array([0.95])
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         decoupled_weight_decay=True)
