"""MultiLabelLogisticRegression: one sigmoid per non-exclusive label."""

import time

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from softmaxreg.functional import log_sigmoid, sigmoid
from softmaxreg.loss import LinearSigmoidLoss
from softmaxreg.solvers import lbfgs, newton_cg, proximal

from ._validation import (
    FloatDType,
    Interval,
    Options,
    check_finite,
    check_l1_ratio,
    check_params,
    check_sample_weight,
    compute_dtype,
)

__all__ = ["MultiLabelLogisticRegression"]


class MultiLabelLogisticRegression(ClassifierMixin, BaseEstimator):
    r"""Independent logistic regressions for non-exclusive labels.

    Where :class:`SoftmaxRegression` makes the classes compete for one unit of
    probability, here every label ``j`` has its own sigmoid,
    :math:`P(y_j = 1 \mid x) = \sigma(w_j^\top x + b_j)`, and any number of
    labels may be on at once.  The objective is the sum over labels of
    scikit-learn's binary ``LogisticRegression`` objective with the same ``C``,

    .. math::

        \sum_j \Bigl[ C \sum_i s_i \, \mathrm{BCE}(z_{ij}, y_{ij})
        + \mathrm{penalty}(w_j) \Bigr],

    so each row of ``coef_`` equals ``LogisticRegression(C=C)`` fitted on that
    column of ``y`` (what ``OneVsRestClassifier``/``MultiOutputClassifier``
    compute one label at a time); all labels are solved jointly here.
    ``history_`` holds the per-sample objective (divided by :math:`C \sum_i s_i`).

    Parameters
    ----------
    penalty : {"l2", "l1", "elasticnet", None}, default="l2"
    C : float, default=1.0
    l1_ratio : float in [0, 1], default=None
        Elastic-net mixing; required for ``penalty="elasticnet"``. ``penalty``
        chooses the penalty (not ``l1_ratio``, as in scikit-learn 1.8 and later): any
        other value than 1 with "l1" or 0 with "l2" is ignored with a warning.
    fit_intercept : bool, default=True
    solver : {"auto", "lbfgs", "newton-cg", "proximal"}, default="auto"
        "auto": "lbfgs" for "l2"/None, "proximal" for "l1"/"elasticnet".
    max_iter : int, default=100
    tol : float, default=1e-4
        Max-abs gradient (gradient mapping for "proximal") of the per-sample objective.
    threshold : float in (0, 1), default=0.5
        ``predict`` switches a label on when its probability is at least this.
    warm_start : bool, default=False
    dtype : {None, "float32", "float64"}, default=None
    verbose : int, default=0
    callback : callable, default=None
        ``callback(info)`` per iteration, as in :class:`SoftmaxRegression`.

    Attributes
    ----------
    coef_ : ndarray of shape (n_labels, n_features)
    intercept_ : ndarray of shape (n_labels,)
    classes_ : ndarray of shape (n_labels,)
        Label names: the columns of a DataFrame ``y``, else ``0 .. n_labels - 1``.
    n_features_in_, feature_names_in_, n_iter_, history_, converged_

    Examples
    --------
    Label 0 is on for positive x, label 1 for negative x, and nothing forbids both.

    >>> import numpy as np
    >>> X = np.array([[-2.0], [-1.0], [1.0], [2.0]])
    >>> Y = np.array([[0, 1], [0, 1], [1, 0], [1, 1]])
    >>> model = MultiLabelLogisticRegression(C=10.0).fit(X, Y)
    >>> model.predict([[-3.0], [3.0]]).tolist()
    [[0, 1], [1, 0]]
    >>> model.predict_proba([[3.0]]).shape
    (1, 2)
    """

    _parameter_constraints = {
        "penalty": Options("l2", "l1", "elasticnet", None),
        "C": Interval(0, None, open_low=True),
        "l1_ratio": Interval(0, 1, none_ok=True),
        "fit_intercept": Options(True, False),
        "solver": Options("auto", "lbfgs", "newton-cg", "proximal"),
        "max_iter": Interval(1, None, integer=True),
        "tol": Interval(0, None),
        "threshold": Interval(0, 1, open_low=True),
        "warm_start": Options(True, False),
        "dtype": FloatDType(),
        "verbose": Interval(0, None, integer=True),
        "callback": Options(None, callable_ok=True),
    }

    def __init__(
        self,
        penalty="l2",
        *,
        C=1.0,
        l1_ratio=None,
        fit_intercept=True,
        solver="auto",
        max_iter=100,
        tol=1e-4,
        threshold=0.5,
        warm_start=False,
        dtype=None,
        verbose=0,
        callback=None,
    ):
        self.penalty = penalty
        self.C = C
        self.l1_ratio = l1_ratio
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.threshold = threshold
        self.warm_start = warm_start
        self.dtype = dtype
        self.verbose = verbose
        self.callback = callback

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = False
        tags.classifier_tags.multi_label = True
        return tags

    def fit(self, X, y, sample_weight=None):
        """Fit to ``X`` (n_samples, n_features) and an indicator matrix ``y`` (n_samples, n_labels)."""
        saved = dict(self.__dict__)
        try:
            return self._fit(X, y, sample_weight)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    def _fit(self, X, y, sample_weight):
        check_params(self, self._parameter_constraints)
        if self.threshold >= 1:
            raise ValueError(f"threshold must be < 1, got {self.threshold}.")
        check_l1_ratio(self.penalty, self.l1_ratio)
        names = np.asarray(y.columns, dtype=object) if hasattr(y, "columns") else None
        Y = self._check_indicator(y)
        X = validate_data(
            self, X, accept_sparse=("csr", "csc"), dtype=compute_dtype(X, self.dtype),
            ensure_all_finite=False, reset=True,
        )
        check_finite(X, feature_names=getattr(self, "feature_names_in_", None))
        if Y.shape[0] != X.shape[0]:
            raise ValueError(f"y has {Y.shape[0]} rows but X has {X.shape[0]}.")
        sw = check_sample_weight(sample_weight, X.shape[0])
        if self.fit_intercept:
            active = sw > 0
            on = Y[active].sum(axis=0)
            constant = np.flatnonzero((on == 0) | (on == active.sum()))
            if constant.size:
                j = int(constant[0])
                label = names[j] if names is not None else j
                state = "never" if on[j] == 0 else "always"
                raise ValueError(
                    f"label {label!r} is {state} on in y; its intercept would run to infinity. "
                    "Drop constant labels before fitting."
                )
        penalty_scale = 1.0 / (self.C * sw.sum())
        l2 = {"l2": penalty_scale, "elasticnet": None, "l1": 0.0, None: 0.0}[self.penalty]
        l1 = {"l1": penalty_scale, "elasticnet": None, "l2": 0.0, None: 0.0}[self.penalty]
        if self.penalty == "elasticnet":
            l2, l1 = (1 - self.l1_ratio) * penalty_scale, self.l1_ratio * penalty_scale
        solver = self.solver
        if solver == "auto":
            solver = "proximal" if l1 else "lbfgs"
        elif l1 and solver != "proximal":
            raise ValueError(
                f"penalty={self.penalty!r} needs solver='proximal' (or 'auto'), got {solver!r}."
            )
        loss = LinearSigmoidLoss(
            X, Y, sample_weight=sw, fit_intercept=self.fit_intercept, l2_reg_strength=l2
        )
        x0 = np.zeros(loss.n_params)
        if (
            self.warm_start
            and hasattr(self, "coef_")
            and self.coef_.shape == (loss.n_labels, loss.n_features)
        ):
            x0 = loss.pack(self.coef_, self.intercept_)
        start = time.perf_counter()

        def on_iteration(x, f, n_iter):
            if self.verbose:
                print(f"[MultiLabelLogisticRegression:{solver}] iteration {n_iter}: objective {f:.8g}")
            if self.callback is None:
                return False
            info = {"iteration": n_iter, "objective": float(f),
                    "elapsed": time.perf_counter() - start, "solver": solver}
            return bool(self.callback(info))

        if solver == "lbfgs":
            result = lbfgs(loss, x0, tol=self.tol, max_iter=self.max_iter, callback=on_iteration)
        elif solver == "newton-cg":
            result = newton_cg(loss, x0, tol=self.tol, max_iter=self.max_iter, callback=on_iteration)
        else:
            weights = np.zeros((loss.n_labels, loss.n_dof))
            weights[:, : loss.n_features] = l1
            result = proximal(loss, x0, l1=weights.ravel(), tol=self.tol,
                              max_iter=self.max_iter, callback=on_iteration)
        if not np.all(np.isfinite(result.x)):
            raise ValueError(f"{solver} produced non-finite coefficients; scale the features.")
        coef, intercept = loss.unpack(result.x)
        self.coef_ = np.ascontiguousarray(coef, dtype=X.dtype)
        self.intercept_ = np.ascontiguousarray(intercept, dtype=X.dtype)
        self.classes_ = names if names is not None else np.arange(Y.shape[1])
        self.n_iter_ = int(result.n_iter)
        self.history_ = list(result.history)
        self.converged_ = bool(result.converged)
        return self

    def decision_function(self, X):
        """Per-label logits, shape (n_samples, n_labels)."""
        check_is_fitted(self)
        X = validate_data(self, X, accept_sparse=("csr", "csc"), dtype=[np.float64, np.float32],
                          ensure_all_finite=False, reset=False)
        check_finite(X, feature_names=getattr(self, "feature_names_in_", None))
        Z = np.asarray(X @ self.coef_.T.astype(X.dtype, copy=False))
        return Z + self.intercept_.astype(X.dtype, copy=False) if self.fit_intercept else Z

    def predict_proba(self, X):
        """Per-label probabilities ``sigmoid(z)``, shape (n_samples, n_labels); rows need not sum to 1."""
        return sigmoid(self.decision_function(X))

    def predict_log_proba(self, X):
        """Per-label ``log_sigmoid(z)`` (exact in the tails), shape (n_samples, n_labels)."""
        return log_sigmoid(self.decision_function(X))

    def predict(self, X):
        """Indicator matrix of labels with probability >= ``threshold``, shape (n_samples, n_labels)."""
        return (self.predict_proba(X) >= self.threshold).astype(np.int64)

    @staticmethod
    def _check_indicator(y):
        if sp.issparse(y):
            y = y.toarray()
        Y = np.asarray(y)
        if Y.ndim != 2:
            raise ValueError(
                f"y must be an indicator matrix of shape (n_samples, n_labels), got shape "
                f"{Y.shape}; for exclusive classes use SoftmaxRegression."
            )
        if Y.shape[0] == 0 or Y.shape[1] == 0:
            raise ValueError(f"y is empty (shape {Y.shape}); it needs samples and labels.")
        if Y.dtype.kind not in "biuf" or not np.all(np.isin(Y, (0, 1))):
            raise ValueError("y must hold only 0 and 1 (label off / on).")
        return Y.astype(np.float64)
