r"""Post-hoc calibration of a fitted classifier: temperature and vector scaling.

A classifier trained to convergence on little data (or a network trained
long) is often over-confident: its top probability exceeds its accuracy.
Guo, Pleiss, Sun and Weinberger (2017, "On calibration of modern neural
networks") fit, on held-out data and with the model frozen, one scalar
:math:`T > 0` that divides every logit,

.. math::

    \hat p_i = \mathrm{softmax}(z_i / T), \qquad
    T^\star = \arg\min_{T > 0} \frac{1}{\sum_i s_i} \sum_i s_i
              \big(\operatorname{lse}(z_i / T) - z_{i y_i} / T\big),

the negative log-likelihood (NLL) of the held-out labels. Dividing by
:math:`T` never changes the arg-max, so accuracy is untouched; only the
confidence moves. *Vector scaling* generalizes it to a per-class scale and
shift, :math:`\hat p_i = \mathrm{softmax}(w \odot z_i + b)`, which can change
predictions.

Solving for T
-------------
Write :math:`\beta = 1/T`. Then :math:`f(\beta) = \mathrm{mean}_i\,
[\operatorname{lse}(\beta z_i) - \beta z_{i y_i}]` is convex (log-sum-exp of a
linear function of :math:`\beta`), with

.. math::

    f'(\beta) = \mathrm{mean}_i \big(\langle \mathrm{softmax}(\beta z_i), z_i\rangle - z_{i y_i}\big),
    \qquad
    f''(\beta) = \mathrm{mean}_i\, \mathrm{Var}_{k \sim \mathrm{softmax}(\beta z_i)}(z_{ik}) \ge 0,

i.e. :math:`f'` is the cross-entropy gradient with respect to the logits
contracted with :math:`z`, and :math:`f''` is :math:`z^\top J z` with the
softmax Jacobian :math:`J`. :func:`fit_temperature` brackets the root of
:math:`f'` and runs Newton's method safeguarded by bisection, to machine
precision in a dozen steps. (In :math:`\log T` the objective need not be
convex; in :math:`\beta` it always is.)
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize

import array_api_compat
from sklearn.exceptions import NotFittedError

from ..functional import cross_entropy, cross_entropy_grad, log_softmax, softmax, softmax_jvp
from ..loss import is_foreign_array
from ._array_api import device_codes, to_numpy
from ._calibration_xp import device_logits, temperature_problem

__all__ = ["fit_temperature", "fit_vector_scaling", "TemperatureScaling", "VectorScaling"]

_BETA_MAX = 1e6


def _check_logits_labels(logits, labels, sample_weight):
    z = np.asarray(logits, dtype=np.float64)
    if z.ndim != 2 or z.shape[1] < 2:
        raise ValueError(
            f"logits must have shape (n_samples, n_classes) with n_classes >= 2, got {z.shape}"
        )
    if not np.all(np.isfinite(z)):
        raise ValueError("logits contain NaN or infinite values; calibrate finite scores")
    y = np.asarray(labels)
    if y.shape != (z.shape[0],) or y.dtype.kind not in "iu":
        raise ValueError(
            f"labels must be integer class indices of shape ({z.shape[0]},), got "
            f"shape {y.shape} and dtype {y.dtype}"
        )
    if y.size == 0:
        raise ValueError("calibration needs at least one sample")
    if y.min() < 0 or y.max() >= z.shape[1]:
        raise ValueError(f"labels must lie in [0, {z.shape[1] - 1}]")
    if sample_weight is None:
        w = np.full(z.shape[0], 1.0 / z.shape[0])
    else:
        w = np.asarray(sample_weight, dtype=np.float64)
        if w.shape != y.shape or np.any(w < 0) or not np.all(np.isfinite(w)) or w.sum() <= 0:
            raise ValueError("sample_weight must be finite, non-negative, of shape (n_samples,), with a positive sum")
        w = w / w.sum()
    return z, y.astype(np.int64), w


def _temperature_derivatives(beta, z, y, w):
    """f'(beta) and f''(beta) of the mean NLL at inverse temperature beta."""
    g = cross_entropy_grad(beta * z, y, reduction="none")  # softmax(beta z) - onehot
    d1 = float(w @ np.sum(g * z, axis=1))
    d2 = float(w @ np.sum(z * softmax_jvp(beta * z, z), axis=1))  # z^T J z = Var_p(z)
    return d1, d2


def fit_temperature(logits, labels, sample_weight=None, *, tol: float = 1e-12,
                    max_iter: int = 100) -> float:
    r"""The temperature :math:`T > 0` minimizing the NLL of ``softmax(logits / T)``.

    Parameters
    ----------
    logits : array_like of shape (n_samples, n_classes)
        Held-out scores of a frozen model.
    labels : array_like of int, shape (n_samples,)
        Class indices into the columns of ``logits``.
    sample_weight : array_like of shape (n_samples,), optional
    tol : float, default=1e-12
        Stop when the bracket on :math:`\beta = 1/T` is this small relative to
        :math:`\beta`, or the derivative vanishes to rounding.
    max_iter : int, default=100

    Returns
    -------
    float
        :math:`T^\star`. When the logits already rank every label first and
        confidence can only help (:math:`f' < 0` for all :math:`\beta`), the
        infimum is at :math:`T \to 0`; the result is then the first
        :math:`T = 2^{-j}` at which the derivative vanishes in floating point
        (capped at :math:`T = 10^{-6}`), where the probabilities are one-hot
        to rounding.

    Examples
    --------
    Four samples with logits :math:`(0, 2)` and label 1 in three of them: the
    NLL is minimal when :math:`\sigma(2/T) = 3/4`, i.e. :math:`T = 2 / \log 3`:

    >>> z = np.array([[0.0, 2.0]] * 4)
    >>> T = fit_temperature(z, np.array([1, 1, 1, 0]))
    >>> print(f"{T:.12f} {2 / np.log(3):.12f}")
    1.820478453253 1.820478453253
    """
    if is_foreign_array(logits):  # torch, CuPy, ...: the sums run on their device
        d1_0, derivatives = temperature_problem(logits, labels, sample_weight)
    else:
        z, y, w = _check_logits_labels(logits, labels, sample_weight)
        d1_0 = float(w @ (z.mean(axis=1) - z[np.arange(len(y)), y]))

        def derivatives(beta):
            return _temperature_derivatives(beta, z, y, w)
    if d1_0 >= 0.0:
        raise ValueError(
            "the logits are no better than uniform on these labels (their NLL grows "
            "with any confidence): no finite temperature fits; check that the labels "
            "match the model's classes"
        )
    lo, hi = 0.0, 1.0
    d1, d2 = derivatives(hi)
    while d1 < 0.0:
        lo, hi = hi, 2.0 * hi
        if hi > _BETA_MAX:
            return 1.0 / _BETA_MAX
        d1, d2 = derivatives(hi)
    beta = hi
    for _ in range(max_iter):
        if d1 > 0.0:
            hi = beta
        else:
            lo = beta
        if hi - lo <= tol * hi or d1 == 0.0:
            break
        step = beta - d1 / d2 if d2 > 0.0 else np.nan
        beta = step if lo < step < hi else 0.5 * (lo + hi)
        d1, d2 = derivatives(beta)
    return float(1.0 / beta)


def fit_vector_scaling(logits, labels, sample_weight=None, *, l2: float = 0.0,
                       max_iter: int = 1000):
    r"""Per-class scale and shift minimizing the NLL of ``softmax(w * logits + b)``.

    The objective, :math:`\mathrm{mean}_i\, \ell(w \odot z_i + b, y_i) +
    \tfrac{\lambda}{2}\|w - 1\|^2`, is convex in :math:`(w, b)`; it is solved
    with L-BFGS from :math:`(w, b) = (1, 0)` using the analytic gradient
    :math:`\partial/\partial w = \mathrm{mean}_i\, g_i \odot z_i`,
    :math:`\partial/\partial b = \mathrm{mean}_i\, g_i` with
    :math:`g_i = \mathrm{softmax}(w \odot z_i + b) - e_{y_i}`. The shift has one
    redundant direction (adding a constant to every class); it is pinned by
    centring ``b``.

    Returns
    -------
    w, b : ndarray of shape (n_classes,)
    """
    z, y, sw = _check_logits_labels(logits, labels, sample_weight)
    k = z.shape[1]

    def fun(theta):
        wv, b = theta[:k], theta[k:]
        a = wv * z + b
        per = cross_entropy(a, y, reduction="none")
        g = cross_entropy_grad(a, y, reduction="none") * sw[:, None]
        loss = float(sw @ per) + 0.5 * l2 * float(np.sum((wv - 1.0) ** 2))
        grad = np.concatenate([np.sum(g * z, axis=0) + l2 * (wv - 1.0), np.sum(g, axis=0)])
        return loss, grad

    theta0 = np.concatenate([np.ones(k), np.zeros(k)])
    res = minimize(fun, theta0, jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter, "gtol": 1e-10, "ftol": 1e-15})
    wv, b = res.x[:k], res.x[k:]
    return wv.copy(), b - b.mean()


def calibration_logits(estimator, X):
    """Scores whose softmax is the estimator's predict_proba: float64 NumPy, or on the device
    for a device estimator."""
    return _logits_and_dtype(estimator, X)[0]


def _logits_and_dtype(estimator, X):
    """The float64 scores and the dtype the estimator gave them in (float32 in, float32 out)."""
    raw = estimator.decision_function(X) if hasattr(estimator, "decision_function") \
        else estimator.predict_log_proba(X)  # log-probabilities are logits up to a per-row constant
    if is_foreign_array(raw):
        return device_logits(raw), raw.dtype
    raw = np.asarray(raw)
    dtype = np.float32 if raw.dtype == np.float32 else np.float64
    z = raw.astype(np.float64, copy=False)
    if z.ndim == 1:  # binary margin z: softmax([0, z]) = (1 - sigmoid(z), sigmoid(z))
        z = np.column_stack([np.zeros_like(z), z])
    return z, dtype


def _in_dtype(z, dtype):
    """Scores back in the estimator's dtype (float32 in, float32 out), on the host or the device."""
    if is_foreign_array(z):
        return array_api_compat.array_namespace(z).astype(z, dtype)
    return z.astype(dtype, copy=False)


class _PrefitCalibrator:
    """Shared machinery: wraps a fitted classifier, maps labels to columns."""

    _param_names = ("estimator",)

    def get_params(self, deep: bool = False) -> dict:
        return {name: getattr(self, name) for name in self._param_names}

    def set_params(self, **params):
        for key, value in params.items():
            if key not in self._param_names:
                raise ValueError(f"invalid parameter {key!r} for {type(self).__name__}")
            setattr(self, key, value)
        return self

    def _encode(self, y) -> np.ndarray:
        if is_foreign_array(y) or is_foreign_array(self.estimator.classes_):
            return device_codes(self.estimator.classes_, y)
        classes = np.asarray(self.estimator.classes_)
        y = np.asarray(y)
        idx = np.searchsorted(classes, y) if classes.dtype.kind != "O" else None
        if idx is None or np.any(idx >= len(classes)) or np.any(classes[np.minimum(idx, len(classes) - 1)] != y):
            lookup = {c: i for i, c in enumerate(classes.tolist())}
            try:
                idx = np.array([lookup[v] for v in y.tolist()], dtype=np.int64)
            except KeyError as exc:
                raise ValueError(
                    f"label {exc.args[0]!r} is not one of the model's classes "
                    f"{classes.tolist()}; calibrate on data with the training labels"
                ) from None
        return idx.astype(np.int64)

    def _check_fitted(self, attribute):
        if not hasattr(self, attribute):
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                                 "held-out labelled data before using it.")

    def _prepare_fit(self, X, y):
        if not hasattr(self.estimator, "classes_"):
            raise ValueError("calibration needs a fitted estimator; call fit on it first")
        z = calibration_logits(self.estimator, X)
        self.classes_ = self.estimator.classes_
        if not is_foreign_array(self.classes_):
            self.classes_ = np.asarray(self.classes_)
        return z, self._encode(y)

    def predict_proba(self, X) -> np.ndarray:
        """Calibrated class probabilities, shape (n_samples, n_classes), in the estimator's dtype."""
        z = self.decision_function(X)  # float32 in, float32 out; the softmax runs in float64
        if is_foreign_array(z):
            return _in_dtype(softmax(device_logits(z)), z.dtype)
        return softmax(z.astype(np.float64)).astype(z.dtype, copy=False)

    def predict_log_proba(self, X) -> np.ndarray:
        """Calibrated log-probabilities (computed by log_softmax, never log of softmax)."""
        z = self.decision_function(X)
        if is_foreign_array(z):
            return _in_dtype(log_softmax(device_logits(z)), z.dtype)
        return log_softmax(z.astype(np.float64)).astype(z.dtype, copy=False)

    def predict(self, X) -> np.ndarray:
        """The class with the largest calibrated score."""
        z = self.decision_function(X)
        if is_foreign_array(z) and is_foreign_array(self.classes_):
            xp = array_api_compat.array_namespace(z)
            return xp.take(self.classes_, xp.argmax(z, axis=1), axis=0)
        return self.classes_[np.argmax(to_numpy(z), axis=1)]

    def score(self, X, y) -> float:
        """Accuracy of :meth:`predict`."""
        from softmaxreg.metrics import accuracy

        return float(accuracy(y, self.predict(X)))


class TemperatureScaling(_PrefitCalibrator):
    r"""Temperature scaling of a fitted classifier (Guo et al., 2017).

    ``predict_proba(X) = softmax(estimator.decision_function(X) / T)`` with
    :math:`T` fitted by :func:`fit_temperature` on held-out data. Predictions
    and accuracy are those of the wrapped estimator.

    Parameters
    ----------
    estimator : fitted classifier
        Must have ``classes_`` and ``decision_function`` (or ``predict_log_proba``).

    Attributes
    ----------
    temperature_ : float
    classes_ : ndarray of shape (n_classes,)

    Examples
    --------
    >>> class Fixed:                      # a frozen "model" returning stored logits
    ...     classes_ = np.array(["no", "yes"])
    ...     def decision_function(self, X):
    ...         return np.asarray(X, dtype=float)
    >>> X = np.array([[0.0, 2.0]] * 4)
    >>> cal = TemperatureScaling(Fixed()).fit(X, ["yes", "yes", "yes", "no"])
    >>> cal.predict_proba(X[:1]).round(6)   # calibrated: P(yes) = 3/4
    array([[0.25, 0.75]])
    """

    def __init__(self, estimator):
        self.estimator = estimator

    def fit(self, X, y, sample_weight=None) -> "TemperatureScaling":
        """Fit :math:`T` on held-out ``(X, y)``; the estimator is not refitted."""
        z, idx = self._prepare_fit(X, y)
        self.temperature_ = fit_temperature(z, idx, sample_weight)
        return self

    def decision_function(self, X) -> np.ndarray:
        """Scaled logits ``z / T``, shape (n_samples, n_classes)."""
        self._check_fitted("temperature_")
        z, dtype = _logits_and_dtype(self.estimator, X)
        return _in_dtype(z / self.temperature_, dtype)


class VectorScaling(_PrefitCalibrator):
    r"""Vector scaling: ``softmax(w * z + b)`` with per-class ``w`` and ``b``.

    Parameters
    ----------
    estimator : fitted classifier
    l2 : float, default=0.0
        Penalty :math:`\tfrac{\lambda}{2}\|w - 1\|^2` pulling the scales toward 1
        (useful with few held-out samples per class).

    Attributes
    ----------
    scale_, shift_ : ndarray of shape (n_classes,)
    classes_ : ndarray of shape (n_classes,)
    """

    _param_names = ("estimator", "l2")

    def __init__(self, estimator, l2: float = 0.0):
        self.estimator = estimator
        self.l2 = l2

    def fit(self, X, y, sample_weight=None) -> "VectorScaling":
        """Fit the scales and shifts on held-out ``(X, y)``."""
        if not (np.isfinite(self.l2) and self.l2 >= 0):
            raise ValueError(f"l2 must be a non-negative number, got {self.l2!r}")
        z, idx = self._prepare_fit(X, y)
        self.scale_, self.shift_ = fit_vector_scaling(z, idx, sample_weight, l2=self.l2)
        return self

    def decision_function(self, X) -> np.ndarray:
        """Calibrated logits ``w * z + b``, shape (n_samples, n_classes)."""
        self._check_fitted("scale_")
        z, dtype = _logits_and_dtype(self.estimator, X)
        return _in_dtype(z * self.scale_ + self.shift_, dtype)
