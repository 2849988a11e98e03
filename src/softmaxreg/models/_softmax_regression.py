"""SoftmaxRegression: multinomial logistic regression with a scikit-learn interface."""

import copy
import time

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted, validate_data

from softmaxreg.functional import log_softmax, softmax
from softmaxreg.loss import LinearSoftmaxLoss, fused_predict, is_foreign_array
from softmaxreg.metrics import object_array
from softmaxreg.solvers import SCHEDULE_NAMES, get_schedule, lbfgs, newton_cg, proximal, sgd

from ._array_api import array_api_dispatch, to_numpy
from ._fitted import refine_mle, set_fitted
from ._inference_methods import InferenceMethods
from ._vocabulary import check_output_size, is_large, rowwise, topk_codes
from ._dask_fit import dask_fit, dask_partial_fit, dask_predict, dask_score, is_dask_collection
from ._validation import (
    FloatDType,
    Interval,
    Options,
    RandomStateLike,
    as_label_array,
    check_classes,
    check_finite,
    check_l1_ratio,
    check_label_targets,
    check_no_missing_labels,
    check_numeric_columns,
    check_params,
    check_sample_weight,
    class_weight_to_sample_weight,
    compute_dtype,
    encode_labels,
    label_codes,
    sorted_labels,
)

__all__ = ["SoftmaxRegression"]

_SOLVERS = ("auto", "lbfgs", "newton-cg", "sgd", "proximal")


def _same_label(a, b):
    """Label equality that never broadcasts (tuples, arrays' scalars, mixed types)."""
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _make_rng(random_state):
    """A ``numpy.random.Generator`` from None, an int, a Generator or a legacy RandomState."""
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(np.iinfo(np.int32).max))
    return np.random.default_rng(random_state)


class SoftmaxRegression(InferenceMethods, ClassifierMixin, BaseEstimator):
    r"""Softmax (multinomial logistic) regression.

    Models :math:`P(y = k \mid x) = \operatorname{softmax}(W x + b)_k` and fits
    ``W`` (``coef_``) and ``b`` (``intercept_``) by minimizing, in
    scikit-learn's convention (so ``C`` means what it means in
    :class:`sklearn.linear_model.LogisticRegression`),

    .. math::

        C \sum_i s_i \, \mathrm{CE}_i + \mathrm{penalty}(W), \qquad
        \mathrm{CE}_i = \operatorname{logsumexp}(z_i) - z_{i, y_i},

    with :math:`s_i` the sample weights times the class weights and
    ``penalty`` :math:`\tfrac12 \lVert W \rVert_F^2` ("l2"),
    :math:`\lVert W \rVert_1` ("l1"),
    :math:`\rho \lVert W \rVert_1 + \tfrac{1 - \rho}{2} \lVert W \rVert_F^2`
    ("elasticnet", :math:`\rho` = ``l1_ratio``) or 0 (None).  The intercept is
    never penalized.  ``history_`` and the callback report the *per-sample*
    objective: the above divided by :math:`C \sum_i s_i`.

    Parameters
    ----------
    penalty : {"l2", "l1", "elasticnet", None}, default="l2"
        With None and an exact solver, ``fit`` checks that the maximum-likelihood
        estimate exists and is unique, and raises ``IdentificationError`` naming
        the class and features on separation or collinearity.
    C : float, default=1.0
        Inverse regularization strength (> 0).
    l1_ratio : float in [0, 1], default=None
        Elastic-net mixing; required for ``penalty="elasticnet"``. ``penalty``
        chooses the penalty (not ``l1_ratio``, as in scikit-learn 1.8 and later): any
        other value than 1 with "l1" or 0 with "l2" is ignored with a warning.
    fit_intercept : bool, default=True
    solver : {"auto", "lbfgs", "newton-cg", "sgd", "proximal"}, default="auto"
        "auto" is "newton-cg" (trust-region Newton with exact Hessian-vector
        products, its CG preconditioned by the inverse class blocks of the
        Hessian, :meth:`LinearSoftmaxLoss.preconditioner`: few, exact steps;
        measured fastest to tight optima) for "l2" and None, and "proximal" (FISTA) for "l1" and "elasticnet".  "sgd" is minibatch SGD (``max_iter`` epochs, see
        :func:`softmaxreg.solvers.sgd`; proximal steps for an L1 term).
    max_iter : int, default=100
        Iterations, or epochs for "sgd".
    n_iter_no_change : int, default=5
        Epochs without an improvement of ``tol`` that stop "sgd" (see ``tol``).
    tol : float, default=1e-4
        Stopping tolerance: max-abs gradient of the per-sample objective for
        "lbfgs" and "newton-cg", of the gradient mapping for "proximal", and
        the epoch improvement of the objective for "sgd" (None: run all epochs).
        For "sgd" the rule is scikit-learn's ``SGDClassifier``'s: training stops
        once ``n_iter_no_change`` consecutive epochs end with the per-sample
        objective above ``best - tol``, ``best`` the lowest objective so far
        (with the "adaptive" schedule, such a plateau first lowers the rate).
        With ``penalty=None`` (maximum likelihood) a converged "lbfgs" or
        "newton-cg" fit of at most 1000 coefficients is then finished by exact
        Newton steps (:func:`softmaxreg.solvers.newton_refine`, as statsmodels
        fits ``MNLogit``), so ``coef_`` is the MLE to rounding however
        ill-conditioned ``X`` is; those steps count in ``n_iter_`` and
        ``history_`` and come out of ``max_iter``.
    batch_size : int or "auto", default="auto"
        Rows per "sgd" step. "auto" is ``min(256, ceil(n_samples / 50))``: at
        least 50 steps per epoch, which the per-epoch stopping rule needs to
        see progress on small data sets, and the notes' 256 rows on large ones.
    learning_rate : float or callable, default=0.1
        Base "sgd" step size, which ``learning_rate_schedule`` varies over the
        epochs; or a schedule itself (a callable ``epoch -> rate``, such as
        ``softmaxreg.solvers._schedules.CosineLR(0.5, n_epochs=20)``), in which
        case ``learning_rate_schedule`` must stay "constant".
    learning_rate_schedule : str or callable, default="constant"
        "constant", "inverse_time", "cosine", "step", "exponential",
        "adaptive" (see :func:`softmaxreg.solvers.get_schedule`), or a
        callable ``epoch -> rate``.  "adaptive" is scikit-learn's: the rate
        stays ``learning_rate`` until ``n_iter_no_change`` epochs in a row
        fail to improve the objective by ``tol``, is then divided by 5, and
        training stops at such a plateau once the rate is at most 1e-6 (with
        ``tol=None`` it is the constant rate).  It averages out the noise of
        constant-rate steps: on standardized wine the objective ends about
        1% above the optimum for every seed, where "constant" lands between
        0.5% and 2.5%.
    momentum : float in [0, 1), default=0.0
        Heavy-ball momentum of "sgd" (PyTorch's convention).
    class_weight : dict, "balanced" or None, default=None
        Multiplies the sample weights per class; "balanced" uses
        ``sum(sample_weight) / (n_classes * sum of class k's sample weights)``
        (``n_samples / (n_classes * count_k)`` without sample weights), as
        scikit-learn does.
    warm_start : bool, default=False
        Start from the previous solution when the classes and features match.
    reference_class : label or None, default=None
        None: symmetric coding, all rows free (identified only through the
        penalty).  A class label: that class's row of ``coef_`` and its
        intercept are fixed at zero (statsmodels ``MNLogit`` parametrization),
        and the other rows are log-odds against it.
    dtype : {None, "float32", "float64"}, default=None
        Compute dtype (``np.float32`` and ``np.float64`` work too); None keeps
        float32 input as float32 and uses float64 otherwise.  Accumulations are
        float64 either way.
    random_state : int, Generator, RandomState or None, default=None
        Seeds "sgd" and ``partial_fit`` (initial weights and permutations)
        through ``numpy.random.default_rng`` (a legacy RandomState seeds it with
        one draw).
    verbose : int, default=0
        Print the objective after every iteration when > 0.
    callback : callable, default=None
        ``callback(info)`` after every iteration or epoch with a dict holding
        ``iteration``, ``objective`` (per-sample), ``elapsed`` (seconds) and
        ``solver``, the current ``coef`` (n_classes, n_features) and
        ``intercept`` (n_classes,) (fresh arrays), and for "sgd" and
        ``partial_fit`` also ``train_accuracy`` (weighted accuracy of the
        epoch's minibatches, each scored just before its step, as training
        loops usually report); returning True stops training (without a warning).

    Attributes
    ----------
    coef_ : ndarray of shape (n_classes, n_features)
        One row per class, also for two classes (scikit-learn keeps one row
        there; here ``coef_[1] - coef_[0]`` is that row, and with
        ``reference_class=classes_[0]`` it is simply ``coef_[1]``).
    intercept_ : ndarray of shape (n_classes,)
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when ``X`` had string column names.
    n_iter_ : int
        Iterations (epochs) of the last fit; accumulated over ``partial_fit``.
    history_ : list of float
        Per-sample objective after each iteration or epoch. For "sgd" with
        ``tol=None`` and no ``callback`` or ``verbose``, nothing needs an
        epoch's value as it ends: the epochs' end points are kept and scored
        after the last one (:meth:`LinearSoftmaxLoss.losses`): the same
        numbers for one pass over X per group of epochs (16 on
        Fashion-MNIST) instead of one per epoch.
    converged_ : bool

    Examples
    --------
    Two points, one feature, no penalty worth speaking of: each point is
    classified as itself with probability near one.

    >>> import numpy as np
    >>> X, y = np.array([[-1.0], [1.0]]), np.array(["a", "b"])
    >>> model = SoftmaxRegression(C=100.0).fit(X, y)
    >>> model.predict([[-2.0], [2.0]]).tolist()
    ['a', 'b']
    >>> model.coef_.shape, model.predict_proba([[0.0]]).round(6).tolist()
    ((2, 1), [[0.5, 0.5]])
    """

    _parameter_constraints = {
        "penalty": Options("l2", "l1", "elasticnet", None),
        "C": Interval(0, None, open_low=True),
        "l1_ratio": Interval(0, 1, none_ok=True),
        "fit_intercept": Options(True, False),
        "solver": Options(*_SOLVERS),
        "max_iter": Interval(1, None, integer=True),
        "tol": Interval(0, None, none_ok=True),
        "n_iter_no_change": Interval(1, None, integer=True),
        "batch_size": (Interval(1, None, integer=True), Options("auto")),
        "learning_rate": (Interval(0, None, open_low=True), Options(callable_ok=True)),
        "learning_rate_schedule": Options(*SCHEDULE_NAMES, callable_ok=True),
        "momentum": Interval(0, 1),
        "class_weight": (Options(None, "balanced"), dict),
        "warm_start": Options(True, False),
        "dtype": FloatDType(),
        "random_state": RandomStateLike(),
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
        n_iter_no_change=5,
        batch_size="auto",
        learning_rate=0.1,
        learning_rate_schedule="constant",
        momentum=0.0,
        class_weight=None,
        warm_start=False,
        reference_class=None,
        dtype=None,
        random_state=None,
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
        self.n_iter_no_change = n_iter_no_change
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.momentum = momentum
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.reference_class = reference_class
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose
        self.callback = callback

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.array_api_support = True
        return tags

    # -- fitting ---------------------------------------------------------------

    def fit(self, X, y, sample_weight=None, *, persist="auto"):
        """Fit the model to ``X`` (n_samples, n_features) and labels ``y`` (n_samples,).

        A failed fit raises and leaves a previously fitted model as it was.
        A Dask ``X`` (array or DataFrame) is fitted on the active
        ``distributed.Client`` or Dask's scheduler, to the same optimum
        (:mod:`softmaxreg.models._dask_fit`, docs/scale.md); ``persist``
        ("auto", True or False) says whether its chunks stay in the workers'
        memory between passes.
        """
        saved = dict(self.__dict__)
        try:
            if is_dask_collection(X):
                return dask_fit(self, X, y, sample_weight, persist=persist)
            return self._fit(X, y, sample_weight)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    @array_api_dispatch
    def _fit(self, X, y, sample_weight):
        self._check_params()
        self.__dict__.pop("formula_", None)  # a formula's spec belongs to the fit that set it
        X, y = self._validate_Xy(X, y, reset=True)
        classes, codes = encode_labels(y)
        if classes.size < 2:
            raise ValueError(
                f"y has only one class ({classes[0]!r}); softmax regression needs at least "
                "two classes to fit."
            )
        sw = check_sample_weight(sample_weight, X.shape[0])
        sw = sw * class_weight_to_sample_weight(self.class_weight, classes, codes, sw)
        if not sw.sum() > 0:
            raise ValueError("all rows have zero weight after class_weight; nothing to fit.")
        solver = self._resolve_solver()
        reference = self._reference_code(classes)
        l2, l1 = self._penalty_strengths(sw.sum())
        if solver == "sgd" and sp.issparse(X) and X.format == "csc":
            X = X.tocsr()  # minibatches slice rows
        loss = LinearSoftmaxLoss(
            X,
            codes,
            n_classes=classes.size,
            sample_weight=sw,
            fit_intercept=self.fit_intercept,
            l2_reg_strength=l2,
            reference_class=reference,
        )
        work_dtype = X.dtype
        warm = self._warm_start_point(loss, classes)
        rng = _make_rng(self.random_state)
        if solver == "sgd":
            if warm is not None:
                x0 = warm
            else:
                W0 = rng.normal(0.0, 0.01, size=(classes.size, X.shape[1]))
                x0 = loss.pack(W0.astype(work_dtype).astype(np.float64), np.zeros(classes.size))
            x0 = x0.astype(work_dtype)
        else:
            x0 = warm if warm is not None else np.zeros(loss.n_params)

        result = self._run_solver(solver, loss, x0, l1, rng)
        if not np.all(np.isfinite(result.x)):
            raise ValueError(
                f"{solver} produced non-finite coefficients ({result.message}); lower "
                "learning_rate or scale the features."
            )
        coef, intercept = loss.unpack(np.asarray(result.x, dtype=np.float64))
        # An unpenalized exact fit is the MLE, which separation or collinearity
        # makes non-existent or non-unique: say so. A fixed number of sgd epochs
        # is an early-stopped estimate that stays finite either way.
        if self.penalty is None and solver != "sgd":
            self._check_identification(loss, coef, intercept, classes)
            if refine_mle(self, solver, loss, result):
                coef, intercept = loss.unpack(np.asarray(result.x, dtype=np.float64))

        # The training data by reference (no copies), for inference; see `inference`.
        set_fitted(self, classes=classes, coef=np.ascontiguousarray(coef, dtype=work_dtype),
                   intercept=np.ascontiguousarray(intercept, dtype=work_dtype), result=result,
                   solver=solver, training=loss)
        return self

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One SGD epoch over the batch ``(X, y)``, continuing from the current state.

        True multinomial updates: the same step as ``solver="sgd"`` (minibatches
        of ``batch_size`` rows, ``learning_rate_schedule`` indexed by the number
        of ``partial_fit`` calls so far, momentum carried across calls).  The L2
        term uses the total weight seen so far, ``1 / (C * sum of all weights
        passed to partial_fit)``: the calls together approximate ``fit`` on the
        concatenation of their batches.  One pass over a data stream targets the
        objective of ``fit`` on the whole stream; ``k`` passes over the same rows
        target ``fit`` on those rows repeated ``k`` times (``C * k``).  The start
        point is zero, or the current coefficients of a model fitted with ``fit``
        (as in scikit-learn's ``SGDClassifier``).
        ``classes`` (all labels) may be given
        on the first call; without it a label first seen in a later batch is
        added as a new class with a zero row.

        Examples
        --------
        >>> import numpy as np
        >>> model = SoftmaxRegression(random_state=0, learning_rate=0.5)
        >>> _ = model.partial_fit([[0.0], [1.0]], [0, 1])
        >>> _ = model.partial_fit([[2.0]], [2])  # a new class appears
        >>> model.classes_.tolist(), model.coef_.shape
        ([0, 1, 2], (3, 1))
        """
        if classes is not None and not is_foreign_array(classes):  # every path: host, device, Dask
            classes = check_classes(classes)
        saved = dict(self.__dict__)
        try:
            if is_dask_collection(X):  # one call per partition, in a random order
                return dask_partial_fit(self, X, y, classes, sample_weight)
            return self._partial_fit(X, y, classes, sample_weight)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    @array_api_dispatch
    def _partial_fit(self, X, y, classes, sample_weight):
        self._check_params()
        if isinstance(self.class_weight, str):
            raise ValueError(
                "class_weight='balanced' needs all the data at once; pass a dict to partial_fit."
            )
        state = getattr(self, "_partial_state", None)
        fitted = hasattr(self, "coef_")
        X, y = self._validate_Xy(X, y, reset=not fitted)
        if sp.issparse(X) and X.format == "csc":
            X = X.tocsr()
        if state is None:
            if fitted:  # continue from a model fitted by fit(), as SGDClassifier does
                known = self.classes_
                coef = self.coef_.astype(np.float64)
                intercept = self.intercept_.astype(np.float64)
            else:
                known = sorted_labels(as_label_array(classes) if classes is not None else y)
                coef = np.zeros((known.size, X.shape[1]))
                intercept = np.zeros(known.size)
            state = {
                "rng": _make_rng(self.random_state),
                "epochs": 0,
                "seen_weight": 0.0,
                "velocity": None,
                "fixed_classes": classes is not None,
                "history": [],
                "dtype": self.coef_.dtype if fitted else X.dtype,
            }
        else:
            known, coef = self.classes_, self.coef_.astype(np.float64)
            intercept = self.intercept_.astype(np.float64)
            state = dict(self._partial_state)
        if classes is not None:
            given = sorted_labels(as_label_array(classes))
            if given.tolist() != known.tolist():
                raise ValueError(
                    f"classes={given.tolist()} differs from the classes the model already has, "
                    f"{known.tolist()}."
                )
        seen = set(known.tolist())
        new = [v for v in sorted_labels(y).tolist() if v not in seen]
        if new:
            if state["fixed_classes"]:
                raise ValueError(
                    f"y holds labels {new} that are not in classes={known.tolist()} "
                    "given to the first partial_fit call."
                )
            merged = sorted_labels(np.concatenate([known.astype(object), object_array(new)]))
            if known.dtype != object and merged.dtype == object:
                try:  # keep a plain dtype when the new labels are of the same kind
                    merged = sorted_labels(np.asarray(merged.tolist()))
                except (TypeError, ValueError):
                    pass
            where = label_codes(known, merged)
            grown_coef = np.zeros((merged.size, coef.shape[1]))
            grown_int = np.zeros(merged.size)
            grown_coef[where], grown_int[where] = coef, intercept
            if state["velocity"] is not None:
                state["velocity"] = None  # layout changed; restart momentum
            known, coef, intercept = merged, grown_coef, grown_int
        if known.size < 2:
            raise ValueError(
                f"partial_fit has seen only one class ({known[0]!r}); pass classes=[...] listing "
                "all labels, or a batch holding at least two classes."
            )
        codes = label_codes(y, known)
        sw = check_sample_weight(sample_weight, X.shape[0])
        sw = sw * class_weight_to_sample_weight(self.class_weight, known, codes)
        if not sw.sum() > 0:
            raise ValueError("all rows of this batch have zero weight; nothing to learn.")
        state["seen_weight"] += float(sw.sum())
        l2, l1 = self._penalty_strengths(state["seen_weight"])
        batch_l2, batch_l1 = self._penalty_strengths(float(sw.sum()))
        loss = LinearSoftmaxLoss(
            X,
            codes,
            n_classes=known.size,
            sample_weight=sw,
            fit_intercept=self.fit_intercept,
            l2_reg_strength=l2,
            reference_class=self._reference_code(known),
        )
        # The batch's objective uses the batch's own weight for the penalty.
        objective = LinearSoftmaxLoss(
            X, codes, n_classes=known.size, sample_weight=sw, fit_intercept=self.fit_intercept,
            l2_reg_strength=batch_l2, reference_class=self._reference_code(known),
        )
        dtype = state["dtype"]
        x0 = loss.pack(coef, intercept).astype(dtype)
        if self.momentum and state["velocity"] is None:
            state["velocity"] = np.zeros_like(x0)
        rate = get_schedule(*self._schedule(), self.max_iter)
        start = time.perf_counter()
        counts = np.zeros(2)
        result = sgd(
            lambda x, idx: loss.minibatch_gradient(x, idx, counts=counts),
            x0,
            n_samples=X.shape[0],
            batch_size=self._batch_rows(X.shape[0]),
            max_epochs=1,
            schedule=rate,
            momentum=self.momentum,
            rng=state["rng"],
            objective=self._objective(objective, batch_l1),
            tol=None,
            velocity=state["velocity"],
            first_epoch=state["epochs"],
            l1=self._l1_weights(loss, l1),
        )
        if not np.all(np.isfinite(result.x)):
            raise ValueError("partial_fit produced non-finite coefficients; lower learning_rate.")
        state["epochs"] += 1
        state["history"] = state["history"] + list(result.history)
        coef, intercept = loss.unpack(np.asarray(result.x, dtype=np.float64))
        self._notify(state["epochs"], result.history[-1], start, "sgd", counts[0] / counts[1], coef, intercept)
        self.classes_ = known
        self.coef_ = np.ascontiguousarray(coef, dtype=dtype)
        self.intercept_ = np.ascontiguousarray(intercept, dtype=dtype)
        self.n_iter_ = state["epochs"]
        self.history_ = state["history"]
        self.converged_ = False
        self.solver_ = "sgd"
        self._partial_state = state
        self._loss = None
        self._inference_cache = {}
        return self

    # -- prediction ------------------------------------------------------------

    @array_api_dispatch
    def decision_function(self, X, *, allow_large=False):
        """Logits ``X @ coef_.T + intercept_``, shape (n_samples, n_classes), in ``coef_``'s dtype.

        Float32 in, float32 out, as scikit-learn: a float32 model returns
        float32 logits, probabilities and log-probabilities (the softmax and
        log-softmax are computed in float64 and rounded once at the end); a
        float64 model returns float64.

        An output of more than 2**25 entries (many classes) is built only with
        ``allow_large=True``; ``predict`` and ``predict_topk`` never build it.

        For two classes, scikit-learn's convention: the 1-D margin
        ``z_1 - z_0`` of shape (n_samples,), positive for ``classes_[1]``.
        """
        if is_dask_collection(X):  # lazily, chunk by chunk, as are the methods below
            return dask_predict(self, X, "decision_function")
        Z = self._logits(X, allow_large, "decision_function")
        if Z.shape[1] == 2:
            Z = Z[:, 1] - Z[:, 0]
        return Z.astype(self.coef_.dtype, copy=False)

    @array_api_dispatch
    def predict(self, X):
        """Most probable class per row, shape (n_samples,)."""
        if is_dask_collection(X):
            return dask_predict(self, X, "predict")
        X = self._validated(X)
        if is_large(X.shape[0], self.classes_.size):  # an online argmax over blocks of classes
            check_finite(X, feature_names=getattr(self, "feature_names_in_", None))
            return self.classes_[topk_codes(X, self.coef_, self._intercept_or_zero(), 1)[0][:, 0]]
        codes = fused_predict(X, self.coef_, self._intercept_or_zero(), "labels")
        if codes is None:
            codes = np.argmax(self._checked_logits(X), axis=1)
        return self.classes_[codes]

    @array_api_dispatch
    def score(self, X, y, sample_weight=None):
        """Weighted accuracy of ``predict(X)`` against ``y`` (labels of any hashable type)."""
        from softmaxreg.metrics import accuracy

        if is_dask_collection(X):
            return dask_score(self, X, y, sample_weight)

        pred = self.predict(X)
        if isinstance(pred, np.ndarray):  # the NumPy path (dispatch off): labels of any library on the host
            y, sample_weight = to_numpy(y), to_numpy(sample_weight)
        return float(accuracy(as_label_array(y), pred, sample_weight=sample_weight))

    @array_api_dispatch
    def predict_proba(self, X, *, allow_large=False):
        """Class probabilities ``softmax(X W^T + b)``, shape (n_samples, n_classes).

        Large dense inputs take one fused pass (logits and softmax per row block,
        nothing of shape (n_samples, n_classes) but the output); the result is
        the reference path's to rounding. An output of more than 2**25 entries
        (many classes) is built only with ``allow_large=True``, in row chunks;
        :meth:`predict_topk` gives the most probable classes in bounded memory.
        """
        if is_dask_collection(X):
            return dask_predict(self, X, "predict_proba")
        X = self._validated(X)
        check_output_size(X.shape[0], self.classes_.size, "predict_proba", allow_large)
        if is_large(X.shape[0], self.classes_.size):
            check_finite(X, feature_names=getattr(self, "feature_names_in_", None))
            return rowwise(X, self.coef_, self._intercept_or_zero(), "proba", self.coef_.dtype)
        P = fused_predict(X, self.coef_, self._intercept_or_zero(), "proba")
        if P is None:
            P = softmax(self._checked_logits(X), axis=1)
        return P.astype(self.coef_.dtype, copy=False)

    @array_api_dispatch
    def predict_log_proba(self, X, *, allow_large=False):
        """Log-probabilities via ``log_softmax`` (exact in the tails), shape (n_samples, n_classes), in ``coef_``'s dtype.

        ``allow_large`` as in :meth:`predict_proba`."""
        if is_dask_collection(X):
            return dask_predict(self, X, "predict_log_proba")
        X = self._validated(X)
        check_output_size(X.shape[0], self.classes_.size, "predict_log_proba", allow_large)
        if is_large(X.shape[0], self.classes_.size):
            check_finite(X, feature_names=getattr(self, "feature_names_in_", None))
            return rowwise(X, self.coef_, self._intercept_or_zero(), "log_proba", self.coef_.dtype)
        return log_softmax(self._small_logits(X), axis=1).astype(self.coef_.dtype, copy=False)

    def predict_topk(self, X, k):
        """The ``k`` most probable classes per row and their probabilities, in bounded memory.

        An online top-k over blocks of classes
        (:func:`~softmaxreg.functional.linear_topk`): no array of shape
        (n_samples, n_classes) is built, so it serves vocabularies of any size.

        Returns
        -------
        classes : ndarray of shape (n_samples, k)
            Labels from ``classes_``, most probable first.
        probabilities : ndarray of shape (n_samples, k)
        """
        X = self._validated(X)
        check_finite(X, feature_names=getattr(self, "feature_names_in_", None))
        codes, proba = topk_codes(X, self.coef_, self._intercept_or_zero(), k)
        return self.classes_[codes], proba

    # -- internals ---------------------------------------------------------------

    def _check_params(self):
        if isinstance(self.learning_rate, str):
            raise ValueError(
                f"learning_rate must be a number > 0 or a callable, got {self.learning_rate!r}; "
                "a schedule name goes in learning_rate_schedule, e.g. "
                f"learning_rate=0.1, learning_rate_schedule={self.learning_rate!r}."
            )
        check_params(self, self._parameter_constraints)
        check_l1_ratio(self.penalty, self.l1_ratio)
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}.")
        if self.solver == "sgd" and self.tol is None:
            return
        if self.tol is None:
            raise ValueError(f"tol=None is only meaningful for solver='sgd'; got solver={self.solver!r}.")

    def _schedule(self):
        """``(schedule, base rate)`` for :func:`get_schedule` from the two parameters."""
        if callable(self.learning_rate):
            if not (isinstance(self.learning_rate_schedule, str)
                    and self.learning_rate_schedule == "constant"):
                raise ValueError(
                    "learning_rate is already a schedule (a callable); leave "
                    "learning_rate_schedule='constant' or pass a number as learning_rate."
                )
            # a fresh copy per fit: an AdaptiveLR instance keeps its lowered rate
            return copy.copy(self.learning_rate), 1.0
        return self.learning_rate_schedule, self.learning_rate

    def _batch_rows(self, n_samples):
        """Rows per "sgd" step for ``n_samples`` rows (resolves ``batch_size="auto"``)."""
        if isinstance(self.batch_size, str):
            return max(1, min(256, -(-int(n_samples) // 50)))
        return int(self.batch_size)

    def _resolve_solver(self):
        l1 = self.penalty in ("l1", "elasticnet")
        if self.solver == "auto":
            return "proximal" if l1 else "newton-cg"
        if l1 and self.solver not in ("proximal", "sgd"):
            raise ValueError(
                f"penalty={self.penalty!r} is not smooth; solver={self.solver!r} cannot handle "
                "it. Use solver='proximal' (or 'auto'), or 'sgd'."
            )
        return self.solver

    def _penalty_strengths(self, total_weight):
        """Per-sample L2 and L1 strengths: the penalty divided by ``C * sum(s)``."""
        scale = 1.0 / (self.C * total_weight)
        if self.penalty == "l2":
            return scale, 0.0
        if self.penalty == "l1":
            return 0.0, scale
        if self.penalty == "elasticnet":
            return (1.0 - self.l1_ratio) * scale, self.l1_ratio * scale
        return 0.0, 0.0

    def _reference_code(self, classes):
        if self.reference_class is None:
            return None
        matches = [k for k, c in enumerate(classes.tolist()) if _same_label(c, self.reference_class)]
        if len(matches) != 1:
            raise ValueError(
                f"reference_class={self.reference_class!r} is not one of the classes "
                f"{classes.tolist()}."
            )
        return matches[0]

    def _warm_start_point(self, loss, classes):
        if not self.warm_start or not hasattr(self, "coef_"):
            return None
        if not np.array_equal(self.classes_, classes) or self.coef_.shape[1] != loss.n_features:
            return None
        return loss.pack(self.coef_.astype(np.float64), self.intercept_.astype(np.float64))

    def _run_solver(self, solver, loss, x0, l1, rng):
        start = time.perf_counter()

        counts = np.zeros(2)  # sgd: running accuracy of the epoch's minibatches

        def on_iteration(x, f, n_iter):
            accuracy = counts[0] / counts[1] if counts[1] else None
            counts[:] = 0.0
            coef = intercept = None
            if self.callback is not None:
                coef, intercept = loss.unpack(np.asarray(x))
            return self._notify(n_iter, f, start, solver, accuracy, coef, intercept)

        if solver == "lbfgs":
            return lbfgs(loss, x0, tol=self.tol, max_iter=self.max_iter, callback=on_iteration)
        if solver == "newton-cg":
            return newton_cg(loss, x0, tol=self.tol, max_iter=self.max_iter, callback=on_iteration)
        if solver == "proximal":
            return proximal(
                loss, x0, l1=self._l1_weights(loss, l1) if l1 else 0.0, tol=self.tol,
                max_iter=self.max_iter,
                callback=on_iteration,
            )
        batch_size = self._batch_rows(loss.n_samples)

        def epoch_step(x, perm, lr, v):
            n_right = loss.sgd_epoch(
                x, perm, batch_size=batch_size, learning_rate=lr, momentum=self.momentum, velocity=v
            )
            if n_right is not None:  # the fused kernel counts rows (unweighted accuracy)
                counts[0] += n_right
                counts[1] += perm.size
            return n_right

        return sgd(
            lambda x, idx: loss.minibatch_gradient(x, idx, counts=counts),
            x0,
            epoch_step=epoch_step,
            n_samples=loss.n_samples,
            batch_size=batch_size,
            max_epochs=self.max_iter,
            schedule=get_schedule(*self._schedule(), self.max_iter),
            momentum=self.momentum,
            rng=rng,
            objective=self._objective(loss, l1),
            objectives=self._objectives(loss, l1),
            tol=self.tol,
            n_iter_no_change=self.n_iter_no_change,
            # Without a reader per epoch the history is scored after the run, all epochs in one pass.
            callback=on_iteration if (self.callback is not None or self.verbose) else None,
            l1=self._l1_weights(loss, l1),
        )

    @staticmethod
    def _l1_weights(loss, l1):
        """Per-coordinate L1 weights of the flat vector (None without L1; intercept never)."""
        if not l1:
            return None
        weights = np.zeros((loss.n_free, loss.n_dof))
        weights[:, : loss.n_features] = l1
        return weights.ravel()

    @classmethod
    def _objective(cls, loss, l1):
        """Per-sample objective including an L1 term, for the SGD history."""
        weights = cls._l1_weights(loss, l1)
        if weights is None:
            return loss.loss
        return lambda x: loss.loss(x) + float(weights @ np.abs(x))

    @classmethod
    def _objectives(cls, loss, l1):
        """:meth:`_objective` at several points at once (:meth:`LinearSoftmaxLoss.losses`)."""
        weights = cls._l1_weights(loss, l1)
        if weights is None:
            return loss.losses
        return lambda xs: loss.losses(xs) + np.array([float(weights @ np.abs(x)) for x in xs])

    def _notify(self, iteration, objective, start, solver, train_accuracy=None, coef=None, intercept=None):
        if self.verbose:
            print(f"[SoftmaxRegression:{solver}] iteration {iteration}: objective {objective:.8g}")
        if self.callback is None:
            return False
        info = {
            "iteration": int(iteration),
            "objective": float(objective),
            "elapsed": time.perf_counter() - start,
            "solver": solver,
        }
        if train_accuracy is not None:
            info["train_accuracy"] = float(train_accuracy)
        if coef is not None:
            info["coef"], info["intercept"] = coef, intercept
        return bool(self.callback(info))

    def _check_identification(self, loss, coef, intercept, classes):
        try:
            from ._inference import check_identification
        except ImportError:  # inference module not available
            return
        check_identification(
            loss,
            coef,
            intercept,
            classes=classes,
            feature_names=getattr(self, "feature_names_in_", None),
            reference_class=self.reference_class,
        )

    def _validate_Xy(self, X, y, reset):
        check_no_missing_labels(y)
        check_numeric_columns(X)
        y = as_label_array(y)
        # Dense X in C order, as scikit-learn's LogisticRegression asks: a fit reads X
        # many times, and the fused passes need rows contiguous (a Fortran-ordered X,
        # such as a homogeneous DataFrame's values, would take the reference path,
        # 4-5x slower per pass). One copy at most; a C-ordered X is used as it is.
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=("csr", "csc"),
            dtype=compute_dtype(X, self.dtype),
            order="C",
            ensure_all_finite=False,
            reset=reset,
        )
        check_finite(X, feature_names=getattr(self, "feature_names_in_", None))
        check_label_targets(y)
        return X, y

    def _logits(self, X, allow_large=True, what="decision_function"):
        X = self._validated(X)
        check_output_size(X.shape[0], self.classes_.size, what, allow_large)
        if is_large(X.shape[0], self.classes_.size):
            check_finite(X, feature_names=getattr(self, "feature_names_in_", None))
            return rowwise(X, self.coef_, self._intercept_or_zero(), "logits")
        return self._small_logits(X)

    def _small_logits(self, X):
        """float64 logits of validated X by the fused pass, or the checked reference path."""
        Z = fused_predict(X, self.coef_, self._intercept_or_zero(), "logits")
        return Z if Z is not None else self._checked_logits(X)

    def _checked_logits(self, X):
        """The reference path's logits, after :func:`check_finite`.

        The fused passes read every entry of X, and an inf or NaN in it makes a
        logit non-finite, which sends them here: so a large dense X is checked
        only when it fails, and the check then says where.
        """
        check_finite(X, feature_names=getattr(self, "feature_names_in_", None))
        return self._logits_of(X)

    def _intercept_or_zero(self):
        return self.intercept_ if self.fit_intercept else np.zeros_like(self.intercept_)

    def _validated(self, X):
        """X checked for shape and dtype; its finiteness is :meth:`_checked_logits`'s."""
        check_is_fitted(self)
        if getattr(self, "formula_", None) is not None:  # set by softmaxreg.formula.fit
            X = self.formula_.transform(X)
        check_numeric_columns(X)
        X = validate_data(
            self,
            X,
            accept_sparse=("csr", "csc"),
            dtype=[np.float64, np.float32],
            ensure_all_finite=False,
            reset=False,
        )
        return X

    def _logits_of(self, X):
        # The product runs in X's dtype; the logits are widened to float64 so that
        # probabilities near 1 keep their log-distance from 1 (as in the loss).
        Z = np.asarray(X @ self.coef_.T.astype(X.dtype, copy=False), dtype=np.float64)
        if self.fit_intercept:
            Z += self.intercept_
        return Z
