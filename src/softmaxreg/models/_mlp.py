"""MLPClassifier: a multilayer perceptron with a softmax output, trained with softmaxreg.nn."""

import functools
import numbers
import time
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from softmaxreg.functional import log_softmax, sigmoid, softmax
from softmaxreg.nn import SGD, Adam, Dropout, Linear, ReLU, Sequential, Sigmoid, SoftmaxCrossEntropy, Tanh
from softmaxreg.nn import init as nn_init
from softmaxreg.solvers import get_schedule

from ._mlp_params import DEPRECATED, MLP_CONSTRAINTS, SCHEDULES, resolve_deprecated
from ._validation import (check_classes, check_finite, check_no_missing_labels, check_numeric_columns, check_params,
                          check_sample_weight, class_weight_to_sample_weight, normalize_dtype)

__all__ = ["MLPClassifier"]


class _Identity(ReLU):
    """The "identity" activation: passes values and gradients through."""

    @staticmethod
    def _f(x):
        return x

    @staticmethod
    def _df(g, out):
        return g


_ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "logistic": Sigmoid, "sigmoid": Sigmoid, "identity": _Identity}
_PREDICT_ROWS = 8192  # rows per block at prediction time: bounds the hidden activations' memory
_ADAPTIVE_MIN_LR = 1e-6  # scikit-learn's floor for the "adaptive" schedule


def _seed_dropout(net, rng):
    """Give the network's Dropout layers generators seeded by one draw from ``rng``."""
    dropouts = [layer for layer in net if isinstance(layer, Dropout)]
    if dropouts:
        seed = int(rng.integers(2**63))
        for i, layer in enumerate(dropouts):
            layer.rng = np.random.default_rng([seed, i])


def _pad_rows(a, positions, n_rows):
    """``a`` (rows = classes) spread onto ``n_rows`` rows at ``positions``; zeros elsewhere."""
    out = np.zeros((n_rows,) + a.shape[1:], dtype=a.dtype)
    out[positions] = a
    return out


class MLPClassifier(ClassifierMixin, BaseEstimator):
    r"""Multilayer perceptron classifier: hidden layers, then a softmax output.

    The parameters, their defaults and the fitted attributes are those of
    :class:`sklearn.neural_network.MLPClassifier` (the "adam" and "sgd"
    solvers), plus ``class_weight``, ``dropout``, ``dtype``, more
    learning-rate schedules and a ``callback``.

    The network is :math:`x \to h_1 = a(x W_1 + b_1) \to \dots \to
    z = h_{L-1} W_L + b_L \to \mathrm{softmax}(z)`, with activation :math:`a`,
    built from :mod:`softmaxreg.nn` layers. Each minibatch :math:`B` (with
    sample weights :math:`s_i`, 1 by default, times the class weights) takes
    one optimizer step on scikit-learn's minibatch objective

    .. math::

        \frac{1}{S_B} \sum_{i \in B} s_i \bigl(\operatorname{logsumexp}(z_i) - z_{i, y_i}\bigr)
        + \frac{\alpha}{2 S_B} \sum_l \lVert W_l \rVert_F^2 ,
        \qquad S_B = \sum_{i \in B} s_i ,

    whose gradient in the logits is :math:`s_i(\mathrm{softmax}(z_i) - e_{y_i})/S_B`;
    biases are not penalized. The L2 term is scaled by the batch's weight, as
    scikit-learn does, so ``alpha`` means the same in both libraries.

    With ``hidden_layer_sizes=()`` the network is softmax regression: with
    ``solver="sgd"``, ``nesterovs_momentum=False``, ``alpha = batch_size /
    (C n)`` (``n`` a multiple of ``batch_size``; ``0`` for ``penalty=None``)
    and ``tol=None``, training follows step for step
    ``SoftmaxRegression(solver="sgd", C=C, max_iter=max_iter, tol=None)`` with
    the same ``batch_size``, rate, schedule, ``momentum`` and ``random_state``.

    Stopping (scikit-learn's rule)
    ------------------------------
    After each epoch, ``loss_`` (the mean of the epoch's minibatch objectives,
    weighted by batch size) is compared with ``best_loss_``; with
    ``early_stopping`` the accuracy on the held-out rows is compared with
    ``best_validation_score_`` instead. An epoch that does not improve it by
    more than ``tol`` counts as no change; after more than ``n_iter_no_change``
    such epochs in a row training stops (with ``learning_rate="adaptive"`` the
    rate is divided by 5 instead, until it falls below 1e-6). Running through
    ``max_iter`` epochs without stopping warns (``ConvergenceWarning``).
    ``tol=None`` runs exactly ``max_iter`` epochs and never warns.

    Initialization and random stream
    --------------------------------
    One generator, ``numpy.random.default_rng(random_state)``, is used in this
    order: the weight matrices layer by layer from input to output
    (scikit-learn's Glorot-uniform, :math:`U(-b, b)` with
    :math:`b = \sqrt{6/(\text{fan\_in} + \text{fan\_out})}`, 2 instead of 6
    for "logistic"; without hidden layers the softmax regression recipe
    :math:`N(0, 0.01^2)`), biases zero; then, with ``early_stopping``, the seed
    of the (stratified) validation split; then, with ``dropout > 0``, the seed
    of the dropout masks; then, with ``shuffle``, one permutation of the
    training rows per epoch.

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default=(100,)
        Width of each hidden layer; ``()`` for none (softmax regression).
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
        "sigmoid" is accepted as another name of "logistic".
    solver : {"adam", "sgd"}, default="adam"
        "adam": :class:`softmaxreg.nn.Adam` with ``beta_1``, ``beta_2`` and
        ``epsilon`` (PyTorch's update); "sgd": :class:`softmaxreg.nn.SGD` with
        ``momentum`` (Nesterov's with ``nesterovs_momentum``). The L2 term of
        ``alpha`` enters the gradient for both.
    alpha : float, default=1e-4
        Strength of the L2 penalty on the weights, scaled as above.
    batch_size : int or "auto", default="auto"
        Rows per step, ``min(200, n_samples)`` for "auto"; the last batch of an
        epoch may be smaller.
    learning_rate : str or callable, default="constant"
        The schedule of the step size, from ``learning_rate_init``:
        scikit-learn's "constant", "invscaling" (``learning_rate_init /
        (t_ + 1) ** power_t`` at the start of each epoch, ``t_`` the samples
        seen) and "adaptive" (divided by 5 where the stopping rule would stop);
        the epoch-indexed "inverse_time", "cosine", "step" and "exponential"
        of :func:`softmaxreg.nn.get_schedule` (over ``max_iter`` epochs); a
        schedule instance; or a callable ``epoch -> rate`` (0-based epochs).
        Unlike scikit-learn, the schedule drives "adam" as well as "sgd".
    learning_rate_init : float, default=1e-3
    power_t : float, default=0.5
        Exponent of "invscaling".
    max_iter : int, default=200
        Maximum number of epochs.
    shuffle : bool, default=True
        Draw a permutation of the rows every epoch; False takes them in order.
    random_state : int, Generator or None, default=None
    tol : float or None, default=1e-4
    verbose : bool or int, default=False
        Print the loss (and validation score) after every epoch.
    warm_start : bool, default=False
        ``fit`` continues from the current weights (with a fresh optimizer
        state, as scikit-learn) when the classes are the same.
    momentum : float in [0, 1), default=0.9
        Momentum of "sgd".
    nesterovs_momentum : bool, default=True
    early_stopping : bool, default=False
        Hold out a stratified ``validation_fraction`` of the rows, stop on
        their accuracy (above) and keep the best epoch's weights.
    validation_fraction : float in (0, 1), default=0.1
    beta_1, beta_2 : float in [0, 1), default=0.9, 0.999
    epsilon : float, default=1e-8
    n_iter_no_change : int, default=10
    class_weight : dict, "balanced" or None, default=None
        Multiplies the sample weights, as in :class:`SoftmaxRegression`
        ("balanced": ``sum(s) / (n_classes * sum of class k's s)``).
    dropout : float in [0, 1), default=0.0
        Dropout probability after every hidden activation (inverted dropout,
        off at prediction time).
    dtype : {None, "float32", "float64"}, default=None
        Compute dtype; None keeps float32 input in float32 and uses float64
        otherwise. Weights, activations, optimizer state and the outputs of
        ``predict_proba``/``decision_function`` all live in it.
    callback : callable, default=None
        ``callback(info)`` after every epoch with a dict holding ``iteration``
        (the epoch, from 1), ``objective`` (``loss_``), ``elapsed`` (seconds),
        ``solver``, ``learning_rate``, ``train_accuracy`` (weighted accuracy
        of the epoch's minibatches, each scored just before its step) and,
        with early stopping, ``validation_score``; returning True stops.
    max_epochs, optimizer, learning_rate_schedule : deprecated
        The former names of ``max_iter``, ``solver`` and ``learning_rate``
        (and a float ``learning_rate`` the former name of
        ``learning_rate_init``): still honoured, with a ``FutureWarning``;
        they will be removed.

    ``X`` may be dense or scipy.sparse (CSR/CSC); the first layer multiplies it
    as it is.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when ``X`` had string column names.
    coefs_ : list of ndarray
        ``coefs_[l]`` has shape (fan_in, fan_out), scikit-learn's layout; the
        last is (n_last_hidden, n_classes).
    intercepts_ : list of ndarray
        ``intercepts_[l]`` has shape (fan_out,).
    loss_ : float
        ``loss_curve_[-1]``.
    loss_curve_ : list of float
        The training objective per epoch (the mean of the minibatch
        objectives above, weighted by batch size). ``history_`` is the same list.
    best_loss_ : float or None
        The smallest ``loss_`` (None with ``early_stopping``).
    validation_scores_ : list of float or None
        Validation accuracy per epoch (None without ``early_stopping``).
    best_validation_score_ : float or None
    n_iter_ : int
        Epochs of the last ``fit`` (accumulated over ``partial_fit`` calls).
    t_ : int
        Training samples seen.
    n_layers_ : int
        ``len(hidden_layer_sizes) + 2``.
    n_outputs_ : int
        ``n_classes`` (the output is always a softmax, also for two classes,
        where scikit-learn has one logistic output).
    out_activation_ : str
        "softmax".
    converged_ : bool
        Whether the stopping rule stopped training.

    Examples
    --------
    Two well separated clusters, a hidden layer of 8 tanh units:

    >>> import numpy as np
    >>> X = np.array([[-2.0, -1.0], [-1.5, -2.0], [2.0, 1.0], [1.0, 2.5]])
    >>> y = np.array(["left", "left", "right", "right"])
    >>> clf = MLPClassifier(hidden_layer_sizes=(8,), activation="tanh", learning_rate_init=0.05,
    ...                     max_iter=50, random_state=0).fit(X, y)
    >>> clf.predict([[-3.0, -3.0], [3.0, 3.0]]).tolist()
    ['left', 'right']
    >>> [w.shape for w in clf.coefs_], clf.predict_proba(X).sum(axis=1).round(12).tolist()
    ([(2, 8), (8, 2)], [1.0, 1.0, 1.0, 1.0])
    """

    _parameter_constraints = MLP_CONSTRAINTS

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=1e-4,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=1e-3,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        class_weight=None,
        dropout=0.0,
        dtype=None,
        callback=None,
        max_epochs=DEPRECATED,
        optimizer=DEPRECATED,
        learning_rate_schedule=DEPRECATED,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.class_weight = class_weight
        self.dropout = dropout
        self.dtype = dtype
        self.callback = callback
        self.max_epochs = max_epochs
        self.optimizer = optimizer
        self.learning_rate_schedule = learning_rate_schedule

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # -- fitting ---------------------------------------------------------------

    def fit(self, X, y, sample_weight=None):
        """Train on ``X`` (n_samples, n_features) and labels ``y`` (n_samples,).

        ``sample_weight`` (n_samples,), optional, weighs each row's loss (it is
        multiplied by ``class_weight``). From scratch unless ``warm_start``.
        A failed fit (bad input, divergence) raises and leaves a previously
        fitted model as it was.
        """
        saved = dict(self.__dict__)
        snapshot = self._snapshot() if getattr(self, "_net", None) is not None else None
        try:
            return self._fit(X, y, sample_weight)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            if snapshot is not None:
                self._restore(snapshot)
            raise

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over ``(X, y)``, continuing from the current weights and optimizer state.

        The first call builds the network (as ``fit`` does). When it is given
        ``classes`` (all labels), those are the classes for good and a label
        outside them later is an error. Without ``classes``, the classes are
        those seen so far (after ``fit``, those of its ``y``), and a later batch
        with a new label adds it: the output layer grows by one row of weights
        per new class (drawn as the output layer's initial weights, bias 0, zero
        optimizer state) and ``classes_`` stays sorted. The schedule is indexed
        by the number of epochs so far; there is no early stopping (as in
        scikit-learn, ``early_stopping`` applies to ``fit`` only), and
        ``class_weight`` must be a dict or None.

        Examples
        --------
        >>> import numpy as np
        >>> clf = MLPClassifier(hidden_layer_sizes=(4,), random_state=0)
        >>> _ = clf.partial_fit([[0.0], [1.0]], [0, 1])
        >>> _ = clf.partial_fit([[2.0]], [2])   # a new class: the output layer grows
        >>> clf.n_iter_, clf.classes_.tolist(), clf.coefs_[-1].shape
        (2, [0, 1, 2], (4, 3))
        """
        saved = dict(self.__dict__)
        # training updates the weights, optimizer state and generators in place
        snapshot = self._snapshot() if getattr(self, "_net", None) is not None else None
        try:
            return self._partial_fit(X, y, classes, sample_weight)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            if snapshot is not None:
                self._restore(snapshot)
            raise

    def _fit(self, X, y, sample_weight):
        hidden, cfg = self._check_params()
        warm = self.warm_start and hasattr(self, "coefs_")
        X, y = self._validate_Xy(X, y, reset=not warm)
        classes, codes = np.unique(y, return_inverse=True)
        if classes.size < 2:
            raise ValueError(
                f"y has only one class ({classes[0]!r}); a classifier needs at least two classes "
                "to fit."
            )
        sw = self._weights(sample_weight, X, classes, codes)
        if warm:
            if not np.array_equal(classes, self.classes_):
                raise ValueError(
                    f"warm_start needs y to have the classes of the previous fit, "
                    f"{self.classes_.tolist()}; got {classes.tolist()}."
                )
            X = X.astype(self.coefs_[0].dtype, copy=False)
            rng = np.random.default_rng(self.random_state)
            self._rebuild_from_coefs(hidden, rng, cfg)  # a fresh optimizer, as scikit-learn
        else:
            rng = np.random.default_rng(self.random_state)
            net, linears = self._build(hidden, X.shape[1], classes.size, X.dtype, rng)
            self.classes_ = classes
            self._classes_fixed = False  # a later partial_fit may add classes
            self._setup(net, linears, rng, cfg)
            self.loss_curve_ = self.history_ = []
            self.t_ = 0
        X_val = codes_val = sw_val = None
        if self.early_stopping:
            X, codes, sw, X_val, codes_val, sw_val = self._split(X, codes, sw, rng)
        _seed_dropout(self._net, rng)
        self._start_run(self.early_stopping)
        self.n_iter_ = 0
        self.converged_ = self._train(X, codes, sw, cfg, (X_val, codes_val, sw_val))
        return self

    def _partial_fit(self, X, y, classes, sample_weight):
        hidden, cfg = self._check_params()
        if isinstance(self.class_weight, str):
            raise ValueError(
                "class_weight='balanced' needs all the data at once; pass a dict to partial_fit."
            )
        first = not hasattr(self, "coefs_")
        if classes is not None:
            classes = check_classes(classes)
        X, y = self._validate_Xy(X, y, reset=first)
        if first:
            known = np.unique(np.asarray(classes) if classes is not None else y)
            if known.size < 2 and classes is not None:
                raise ValueError(
                    f"classes={known.tolist()} lists fewer than two classes; a classifier needs "
                    "at least two."
                )
            if known.size < 2:  # as SoftmaxRegression (and scikit-learn): no one-class model to grow from
                raise ValueError(
                    f"partial_fit has seen only one class ({known[0]!r}); pass classes=[...] listing "
                    "all labels, or a batch holding at least two classes."
                )
            rng = np.random.default_rng(self.random_state)
            net, linears = self._build(hidden, X.shape[1], max(known.size, 1), X.dtype, rng)
            _seed_dropout(net, rng)
            self.classes_ = known
            self._classes_fixed = classes is not None
            self._setup(net, linears, rng, cfg)
            self.loss_curve_ = self.history_ = []
            self.n_iter_ = self.t_ = 0
            self._start_run(early_stopping=False)
        else:
            known = self.classes_
            if classes is not None and not np.array_equal(np.unique(np.asarray(classes)), known):
                raise ValueError(
                    f"classes={np.unique(np.asarray(classes)).tolist()} differs from the classes "
                    f"of the first partial_fit call, {known.tolist()}."
                )
            if not self._net_matches_coefs():
                self._rebuild_from_coefs(hidden, np.random.default_rng(self.random_state), cfg)
            if not hasattr(self, "_stop_state"):
                self._start_run(early_stopping=False)
            X = X.astype(self.coefs_[0].dtype, copy=False)
        new = np.setdiff1d(np.unique(y), known)
        if new.size:
            fixed = getattr(self, "_classes_fixed", None)  # None: read from a file, which does not say
            if fixed is not False:
                how = ("given to the first partial_fit call as classes=[...]" if fixed else
                       "of a model read from a file (which keeps its classes; refit to add some)")
                raise ValueError(
                    f"y holds labels {new.tolist()} that are not among the classes {known.tolist()} {how}."
                )
            self._grow_classes(new, cfg)
        codes = np.searchsorted(self.classes_, y)
        sw = self._weights(sample_weight, X, self.classes_, codes)
        self._train(X, codes, sw, cfg, (None, None, None), incremental=True)
        self.converged_ = False
        return self

    # -- prediction ------------------------------------------------------------

    def decision_function(self, X):
        """Logits of the output layer, shape (n_samples, n_classes), in the model's dtype.

        For two classes, scikit-learn's convention: the 1-D margin
        ``z_1 - z_0`` of shape (n_samples,), positive for ``classes_[1]``.
        """
        Z = self._logits(X)
        if Z.shape[1] == 2:
            return Z[:, 1] - Z[:, 0]
        return Z

    def predict(self, X):
        """Most probable class per row, shape (n_samples,)."""
        codes = np.argmax(self._logits(X), axis=1)
        return self.classes_[codes]

    def predict_proba(self, X):
        """Class probabilities ``softmax(z)``, shape (n_samples, n_classes), in the model's dtype."""
        return softmax(self._logits(X), axis=1)

    def predict_log_proba(self, X):
        """Log-probabilities ``log_softmax(z)`` (exact in the tails), shape (n_samples, n_classes)."""
        return log_softmax(self._logits(X), axis=1)

    # -- internals ---------------------------------------------------------------

    def _check_params(self):
        """Hidden sizes and the settings in force (deprecated names resolved, with a warning)."""
        cfg = resolve_deprecated(self)
        check_params(self, self._parameter_constraints)
        for name, value in (("momentum", self.momentum), ("dropout", self.dropout),
                            ("beta_1", self.beta_1), ("beta_2", self.beta_2)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be a real number in [0, 1), got {value!r}.")
        if self.validation_fraction >= 1:
            raise ValueError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction!r}."
            )
        sched = cfg["schedule"]
        if isinstance(sched, str) and sched not in SCHEDULES:
            raise ValueError(f"learning_rate must be one of {SCHEDULES} or a callable, got {sched!r}.")
        if not isinstance(sched, str) and not callable(sched):
            raise ValueError(f"learning_rate must be one of {SCHEDULES} or a callable, got {sched!r}.")
        sizes = self.hidden_layer_sizes
        if isinstance(sizes, numbers.Integral) and not isinstance(sizes, bool):
            sizes = (sizes,)
        try:
            sizes = tuple(sizes)
        except TypeError:
            sizes = None
        if sizes is None or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in sizes
        ):
            raise ValueError(
                "hidden_layer_sizes must be a positive integer or a sequence of positive "
                f"integers (() for no hidden layer), got {self.hidden_layer_sizes!r}."
            )
        return tuple(int(s) for s in sizes), cfg

    def _validate_Xy(self, X, y, reset):
        check_no_missing_labels(y)
        check_numeric_columns(X)
        dtype = {None: [np.float64, np.float32], "float32": np.float32, "float64": np.float64}
        # C order, as for SoftmaxRegression: minibatches gather whole rows.
        X, y = validate_data(self, X, y, accept_sparse=("csr", "csc"), dtype=dtype[normalize_dtype(self.dtype)],
                             order="C",
                             ensure_all_finite=False, reset=reset)
        check_finite(X, feature_names=getattr(self, "feature_names_in_", None))
        if sp.issparse(X):
            X = X.tocsr()  # minibatches gather rows
        check_classification_targets(y)
        return X, y

    def _weights(self, sample_weight, X, classes, codes):
        """Row weights (sample weights times class weights) in X's dtype, or None for all ones."""
        if sample_weight is None and self.class_weight is None:
            return None
        sw = check_sample_weight(sample_weight, X.shape[0])
        sw = sw * class_weight_to_sample_weight(self.class_weight, classes, codes, sw)
        if not np.any(sw > 0):
            raise ValueError("all rows have zero weight (sample_weight times class_weight); nothing to fit.")
        return sw.astype(X.dtype)

    def _build(self, hidden, n_features, n_classes, dtype, rng):
        """Layers in input -> output order, their weights drawn from ``rng`` in that order."""
        sizes = [n_features, *hidden, n_classes]
        init = self._weight_init(bool(hidden))
        linears = [
            Linear(
                fan_in, fan_out,
                init=init,
                dtype=dtype, rng=rng,
                input_grad=i > 0,  # nothing needs d loss / d X
            )
            for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]))
        ]
        layers = []
        for lin in linears[:-1]:
            layers += [lin, _ACTIVATIONS[self.activation]()]
            if self.dropout > 0:
                layers.append(Dropout(self.dropout))
        layers.append(linears[-1])
        return Sequential(*layers), linears

    def _weight_init(self, has_hidden):
        if not has_hidden:
            return nn_init.normal(0.01)
        factor = 2.0 if self.activation in ("logistic", "sigmoid") else 6.0
        return functools.partial(nn_init.glorot_uniform, factor=factor)

    def _setup(self, net, linears, rng, cfg):
        """Optimizer over the network's arrays; ``coefs_``/``intercepts_`` are views of them."""
        self._net, self._linears, self._rng = net, linears, rng
        self._expose()
        self._opt = self._make_optimizer(cfg)
        self._loss_fn = SoftmaxCrossEntropy()

    def _expose(self):
        # the transposed views give scikit-learn's (fan_in, fan_out) layout on PyTorch's arrays
        self.coefs_ = [lin.params["weight"].T for lin in self._linears]
        self.intercepts_ = [lin.params["bias"] for lin in self._linears]
        self.n_layers_ = len(self._linears) + 1
        self.n_outputs_ = self._linears[-1].out_features
        self.out_activation_ = "softmax"

    def _make_optimizer(self, cfg):
        groups = [
            {"params": [(lin.params["weight"], lin.grads["weight"]) for lin in self._linears],
             "weight_decay": 0.0},  # alpha / S_B, set per batch
            {"params": [(lin.params["bias"], lin.grads["bias"]) for lin in self._linears],
             "weight_decay": 0.0},
        ]
        lr = cfg["lr"]
        if cfg["solver"] == "sgd":
            m = float(self.momentum)
            return SGD(groups, lr=lr, momentum=m, nesterov=bool(self.nesterovs_momentum) and m > 0)
        return Adam(groups, lr=lr, betas=(float(self.beta_1), float(self.beta_2)), eps=float(self.epsilon))

    def _net_matches_coefs(self):
        linears = getattr(self, "_linears", None)
        return linears is not None and len(linears) == len(self.coefs_) and all(
            w.base is lin.params["weight"] and b is lin.params["bias"]
            for lin, w, b in zip(linears, self.coefs_, self.intercepts_)
        )

    def _rebuild_from_coefs(self, hidden, rng, cfg):
        """A network around ``coefs_``/``intercepts_`` (e.g. a model read from a file).

        The optimizer state (momentum, Adam moments) starts afresh, and the
        permutations restart from ``random_state``.
        """
        coefs = [np.asarray(w) for w in self.coefs_]
        dtype = coefs[0].dtype
        expected = [self.n_features_in_, *hidden, self.classes_.size]
        if [w.shape for w in coefs] != list(zip(expected[:-1], expected[1:])):
            raise ValueError(
                "coefs_ do not match hidden_layer_sizes and the data; refit the model."
            )
        net, linears = self._build(hidden, self.n_features_in_, self.classes_.size, dtype, rng)
        for lin, w, b in zip(linears, coefs, self.intercepts_):
            lin.params["weight"][...] = w.T
            lin.params["bias"][...] = b
        self._setup(net, linears, rng, cfg)

    def _grow_classes(self, new, cfg):
        """Add the labels ``new`` to ``classes_``: new output rows, the old ones moved into place."""
        classes = np.union1d(self.classes_, new)
        old = np.searchsorted(classes, self.classes_)
        last = self._linears[-1]
        fresh = Linear(last.in_features, classes.size, init=self._weight_init(len(self._linears) > 1),
                       dtype=last.params["weight"].dtype, rng=self._rng, input_grad=last.input_grad)
        fresh.params["weight"][old] = last.params["weight"]
        fresh.params["bias"][old] = last.params["bias"]
        for i, layer in enumerate(self._net.layers):
            if layer is last:
                self._net.layers[i] = fresh
        self._linears[-1] = fresh
        states = self._opt.state
        self.classes_ = classes
        self._expose()
        self._opt = self._make_optimizer(cfg)
        # optimizer state: the old rows keep theirs, the new rows start from zero
        for g, group in enumerate(states):
            for j, st in enumerate(group):
                grown = {k: _pad_rows(v, old, classes.size) if (isinstance(v, np.ndarray) and j == len(group) - 1)
                         else v for k, v in st.items()}
                self._opt.state[g][j].update(grown)

    def _split(self, X, codes, sw, rng):
        n = X.shape[0]
        seed = int(rng.integers(2**31 - 1))
        arrays = [np.arange(n)]
        try:
            train, val = train_test_split(*arrays, test_size=self.validation_fraction,
                                          random_state=seed, stratify=codes)
        except ValueError as exc:
            raise ValueError(
                f"early_stopping holds out a stratified validation_fraction={self.validation_fraction} "
                f"of {n} rows, which fails ({exc}); use more data, a larger validation_fraction "
                "or early_stopping=False."
            ) from None
        train, val = np.sort(train), np.sort(val)
        part = (lambda a, i: None if a is None else a[i])  # noqa: E731
        return X[train], codes[train], part(sw, train), X[val], codes[val], part(sw, val)

    def _start_run(self, early_stopping):
        """The stopping rule's state at the start of a fit (kept across partial_fit calls, which
        never stop early)."""
        self._stop_state = {"no_change": 0, "lr_scale": 1.0}
        self.best_loss_ = None if early_stopping else np.inf
        self.validation_scores_ = [] if early_stopping else None
        self.best_validation_score_ = -np.inf if early_stopping else None

    def _rate(self, cfg, epoch):
        sched, lr0 = cfg["schedule"], cfg["lr"]
        if sched == "invscaling":
            return lr0 / (self.t_ + 1) ** float(self.power_t)
        if sched == "adaptive":
            return lr0 * self._stop_state["lr_scale"]
        return get_schedule(sched, lr0, cfg["max_iter"])(epoch)

    def _train(self, X, codes, sw, cfg, validation, incremental=False):
        """Up to ``max_iter`` epochs (one if ``incremental``); return whether the rule stopped them."""
        self._net.train()
        # overflow in a diverging run is reported by the ValueError of _epochs, not as warnings
        with np.errstate(over="ignore", invalid="ignore"):
            return self._epochs(X, codes, sw, cfg, validation, incremental)

    def _batch_step(self, Xb, cb, wb, alpha, decay):
        """One optimizer step on a minibatch; returns (objective, weighted count of correct)."""
        logits = self._net(Xb)
        if wb is None:
            s = float(cb.size)
            loss = float(self._loss_fn(logits, cb))
            grad = self._loss_fn.backward()
            correct = float(np.count_nonzero(np.argmax(logits, axis=1) == cb))
        else:
            s = float(wb.sum())
            if s <= 0:  # nothing to learn from this batch
                return 0.0, 0.0
            logp = log_softmax(logits, axis=1)
            rows = np.arange(cb.size)
            loss = float(-np.dot(wb, logp[rows, cb]) / s)
            grad = np.exp(logp)
            grad[rows, cb] -= 1
            grad *= (wb / logits.dtype.type(s))[:, None]
            correct = float(wb[np.argmax(logits, axis=1) == cb].sum())
        if alpha:
            loss += 0.5 * alpha * sum(float(np.vdot(w, w)) for w in self.coefs_) / s
        decay["weight_decay"] = alpha / s
        self._net.backward(grad)
        self._opt.step()
        return loss, correct

    def _epochs(self, X, codes, sw, cfg, validation, incremental):
        X_val, codes_val, sw_val = validation
        n_epochs = 1 if incremental else cfg["max_iter"]
        net, rng = self._net, self._rng
        n = X.shape[0]
        bs = min(200, n) if self.batch_size == "auto" else min(int(self.batch_size), n)
        alpha = float(self.alpha)
        decay = self._opt.param_groups[0]
        tol = None if self.tol is None else float(self.tol)
        state = self._stop_state
        total_weight = float(n if sw is None else sw.sum())
        start = time.perf_counter()
        stopped_by = None
        solver = cfg["solver"]
        for _ in range(n_epochs):
            epoch = self.n_iter_  # 0-based index into the schedule
            lr = self._rate(cfg, epoch)
            self._opt.set_lr(lr)
            order = rng.permutation(n) if self.shuffle else np.arange(n)
            total, correct = 0.0, 0.0
            for lo in range(0, n, bs):
                idx = order[lo:lo + bs]
                loss, right = self._batch_step(X[idx], codes[idx], None if sw is None else sw[idx],
                                               alpha, decay)
                if not np.isfinite(loss):
                    raise ValueError(
                        f"training diverged at epoch {epoch + 1} (the loss became {loss}); "
                        "lower learning_rate_init or scale the features."
                    )
                total += loss * idx.size
                correct += right
            if not all(np.isfinite(p).all() for p, _ in self._all_params()):
                raise ValueError(
                    f"training diverged at epoch {epoch + 1} (non-finite weights); lower "
                    "learning_rate_init or scale the features."
                )
            self.loss_ = total / n
            self.n_iter_ += 1
            self.t_ += n
            self.loss_curve_.append(self.loss_)
            info = {"iteration": self.n_iter_, "objective": self.loss_,
                    "elapsed": time.perf_counter() - start, "solver": solver,
                    "learning_rate": lr, "train_accuracy": correct / total_weight}
            if X_val is not None:
                pred = self._net_predict_codes(X_val) == codes_val
                score = float(np.average(pred, weights=sw_val))
                net.train()
                info["validation_score"] = score
                self.validation_scores_.append(score)
                worse = tol is not None and score < self.best_validation_score_ + tol
                if score > self.best_validation_score_:
                    self.best_validation_score_ = score
                    self._best = [p.copy() for p, _ in self._all_params()]
            else:
                # a partial_fit after an early-stopping fit starts the training loss's record afresh
                best = np.inf if self.best_loss_ is None else self.best_loss_
                worse = tol is not None and self.loss_ > best - tol
                self.best_loss_ = min(best, self.loss_)
            state["no_change"] = state["no_change"] + 1 if worse else 0
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
                if X_val is not None:
                    print(f"Validation score: {info['validation_score']:f}")
            if self.callback is not None and self.callback(info):
                stopped_by = "callback"
                break
            if not incremental and state["no_change"] > self.n_iter_no_change:
                if cfg["schedule"] == "adaptive" and lr > _ADAPTIVE_MIN_LR:
                    state["lr_scale"] /= 5.0
                    state["no_change"] = 0
                    if self.verbose:
                        print(f"Setting learning rate to {lr / 5.0:f}")
                else:
                    stopped_by = "criterion"
                    break
        if X_val is not None and getattr(self, "_best", None) is not None:
            for (p, _), best in zip(self._all_params(), self._best):
                p[...] = best  # early stopping keeps the best epoch's weights
            del self._best
        if stopped_by is None and tol is not None and not incremental:
            warnings.warn(
                f"MLPClassifier: the maximum number of epochs, max_iter={cfg['max_iter']}, was "
                "reached and the optimization has not converged yet; increase max_iter or loosen tol.",
                ConvergenceWarning,
                stacklevel=4,
            )
        return stopped_by == "criterion"

    def _snapshot(self):
        """Copies of everything an epoch changes in place."""
        copy = lambda v: v.copy() if isinstance(v, np.ndarray) else v  # noqa: E731
        return {
            "linears": list(self._linears),
            "layers": list(self._net.layers),
            "params": [p.copy() for p, _ in self._all_params()],
            "opt": self._opt,
            "opt_state": [[{k: copy(v) for k, v in st.items()} for st in group] for group in self._opt.state],
            "rngs": [g.bit_generator.state for g in self._generators()],
        }

    def _restore(self, snapshot):
        self._linears[:] = snapshot["linears"]
        self._net.layers[:] = snapshot["layers"]
        for (p, _), saved in zip(self._all_params(), snapshot["params"]):
            p[...] = saved
        self._opt = snapshot["opt"]
        for group, saved in zip(self._opt.state, snapshot["opt_state"]):
            for st, st_saved in zip(group, saved):
                st.clear()
                st.update(st_saved)
        for g, state in zip(self._generators(), snapshot["rngs"]):
            g.bit_generator.state = state

    def _generators(self):
        return [self._rng] + [layer.rng for layer in self._net if isinstance(layer, Dropout)]

    def _all_params(self):
        return [(lin.params[k], lin.grads[k]) for lin in self._linears for k in ("weight", "bias")]

    def _net_predict_codes(self, X):
        self._net.eval()
        return np.concatenate([
            np.argmax(self._net(X[lo:lo + _PREDICT_ROWS]), axis=1)
            for lo in range(0, X.shape[0], _PREDICT_ROWS)
        ]) if X.shape[0] else np.zeros(0, dtype=np.intp)

    def _logits(self, X):
        """Forward pass from ``coefs_``/``intercepts_`` alone (works for a model read from a file)."""
        check_is_fitted(self, "coefs_")
        check_numeric_columns(X)
        X = validate_data(self, X, accept_sparse=("csr", "csc"), dtype=[np.float64, np.float32],
                          ensure_all_finite=False, reset=False)
        check_finite(X, feature_names=getattr(self, "feature_names_in_", None))
        dtype = np.asarray(self.coefs_[0]).dtype
        X = X.tocsr().astype(dtype, copy=False) if sp.issparse(X) else X.astype(dtype, copy=False)
        act = {"relu": lambda h: np.maximum(h, 0, out=h), "tanh": lambda h: np.tanh(h, out=h),
               "logistic": sigmoid, "sigmoid": sigmoid, "identity": lambda h: h}[self.activation]
        out = np.empty((X.shape[0], self.classes_.size), dtype=dtype)
        for lo in range(0, X.shape[0], _PREDICT_ROWS):
            h = X[lo:lo + _PREDICT_ROWS]
            for layer, (w, b) in enumerate(zip(self.coefs_, self.intercepts_)):
                h = np.asarray(h @ np.asarray(w, dtype=dtype))
                h += np.asarray(b, dtype=dtype)
                if layer < len(self.coefs_) - 1:
                    h = act(h)
            out[lo:lo + _PREDICT_ROWS] = h
        return out
