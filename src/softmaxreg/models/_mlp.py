"""MLPClassifier: a multilayer perceptron with a softmax output, trained with softmaxreg.nn."""

import numbers
import time
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from softmaxreg.functional import log_softmax, sigmoid, softmax
from softmaxreg.nn import SGD, Adam, Dropout, Linear, ReLU, Sequential, Sigmoid, SoftmaxCrossEntropy, Tanh
from softmaxreg.nn import init as nn_init
from softmaxreg.solvers import SCHEDULE_NAMES, get_schedule

from ._validation import Interval, Options, check_finite, check_params

__all__ = ["MLPClassifier"]

_ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}
_DEFAULT_LR = {"sgd": 0.1, "adam": 1e-3}
_PREDICT_ROWS = 8192  # rows per block at prediction time: bounds the hidden activations' memory


def _seed_dropout(net, rng):
    """Give the network's Dropout layers generators seeded by one draw from ``rng``."""
    dropouts = [layer for layer in net if isinstance(layer, Dropout)]
    if dropouts:
        seed = int(rng.integers(2**63))
        for i, layer in enumerate(dropouts):
            layer.rng = np.random.default_rng([seed, i])


class MLPClassifier(ClassifierMixin, BaseEstimator):
    r"""Multilayer perceptron classifier: hidden layers, then a softmax output.

    The network is :math:`x \to h_1 = a(W_1 x + b_1) \to \dots \to
    z = W_L h_{L-1} + b_L \to \mathrm{softmax}(z)`, with activation :math:`a`
    (ReLU, tanh or sigmoid), built from :mod:`softmaxreg.nn` layers and
    trained by minibatch SGD (with momentum) or Adam on the per-sample objective

    .. math::

        \frac1n \sum_i \bigl(\operatorname{logsumexp}(z_i) - z_{i, y_i}\bigr)
        + \frac{\alpha}{2} \sum_l \lVert W_l \rVert_F^2 ,

    whose gradient in the logits is :math:`(\mathrm{softmax}(z) - Y)/n`
    (:class:`~softmaxreg.nn.SoftmaxCrossEntropy`); biases are not penalized.

    With ``hidden_layer_sizes=()`` the network is softmax regression, and
    with ``optimizer="sgd"`` and ``alpha = 1 / (C n)`` (``0`` for
    ``penalty=None``) training follows step for step the recipe of
    ``SoftmaxRegression(solver="sgd", C=C, max_iter=max_epochs, ...)`` with
    the same ``batch_size``, ``learning_rate``, ``learning_rate_schedule``,
    ``momentum`` and ``random_state``: both give the same model.

    Initialization and random stream
    --------------------------------
    One generator, ``numpy.random.default_rng(random_state)``, is used in this
    order: the weight matrices layer by layer from input to output (hidden
    layers He-normal, :math:`N(0, 2/\text{fan\_in})`, for ReLU and
    Glorot-normal, :math:`N(0, 2/(\text{fan\_in} + \text{fan\_out}))`, for
    tanh and sigmoid; the output layer :math:`N(0, 0.01^2)`, the softmax
    regression recipe), biases zero; then, with ``early_stopping``, the
    validation split; then, with ``dropout > 0``, the seed of the dropout
    masks; then one permutation of the training rows per epoch.

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default=(256,)
        Width of each hidden layer; ``()`` for none (softmax regression).
    activation : {"relu", "tanh", "sigmoid"}, default="relu"
    optimizer : {"sgd", "adam"}, default="sgd"
        "sgd": :class:`softmaxreg.nn.SGD` (heavy-ball momentum, PyTorch's
        convention :math:`v \leftarrow \mu v + g`, :math:`W \leftarrow W - \eta v`);
        "adam": :class:`softmaxreg.nn.Adam` (betas 0.9, 0.999, eps 1e-8).
        ``alpha`` enters both as L2 weight decay on the gradient.
    learning_rate : float, default=None
        Base step size handed to the schedule; None means 0.1 for "sgd" and
        0.001 for "adam".
    learning_rate_schedule : str or callable, default="constant"
        "constant", "inverse_time", "cosine", "step", "exponential" (see
        :func:`softmaxreg.solvers._schedules.get_schedule`, with
        ``n_epochs=max_epochs``), or a callable ``epoch -> rate``
        (0-based epochs).
    momentum : float in [0, 1), default=0.0
        Momentum of "sgd" (ignored by "adam").
    alpha : float, default=0.0
        L2 penalty on the weights (weight decay), per sample as in the
        objective above.
    batch_size : int, default=256
        Rows per step; the last batch of an epoch may be smaller.
    max_epochs : int, default=10
        Passes over the training data.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows, score accuracy on them
        after each epoch, stop once it has not improved by more than ``tol``
        (0 when None) for ``n_iter_no_change`` epochs, and keep the best weights.
    validation_fraction : float in (0, 1), default=0.1
    n_iter_no_change : int, default=5
    tol : float or None, default=None
        Without early stopping: stop once the epoch's training objective has
        not decreased by more than ``tol`` for ``n_iter_no_change`` epochs
        (running out of epochs then warns, ``ConvergenceWarning``). None runs
        exactly ``max_epochs`` epochs.
    dropout : float in [0, 1), default=0.0
        Dropout probability after every hidden activation (inverted dropout,
        off at prediction time).
    dtype : {None, "float32", "float64"}, default=None
        Compute dtype; None keeps float32 input in float32 and uses float64
        otherwise. Weights, activations and optimizer state all live in it.
    random_state : int, Generator or None, default=None
    verbose : int, default=0
        Print the objective after every epoch when > 0.
    callback : callable, default=None
        ``callback(info)`` after every epoch with a dict holding ``iteration``
        (the epoch, from 1), ``objective``, ``elapsed`` (seconds), ``solver``
        (the optimizer's name), ``learning_rate``, ``train_accuracy`` (accuracy
        of the epoch's minibatches, each scored just before its step) and, with
        early stopping, ``validation_score``; returning True stops training (as
        for SoftmaxRegression).

    ``X`` may be dense or scipy.sparse (CSR/CSC); the first layer multiplies it
    as it is.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when ``X`` had string column names.
    coefs_ : list of ndarray
        ``coefs_[l]`` has shape (fan_out, fan_in), PyTorch's layout; the last
        is the output layer, (n_classes, n_last_hidden).
    intercepts_ : list of ndarray
        ``intercepts_[l]`` has shape (fan_out,).
    n_iter_ : int
        Epochs of the last ``fit`` (accumulated over ``partial_fit`` calls).
    history_ : list of float
        Objective per epoch: the size-weighted mean of the minibatch losses of
        the epoch plus the penalty at the epoch's end (the running loss that
        PyTorch loops and scikit-learn's ``loss_curve_`` report).
    validation_scores_ : list of float
        Validation accuracy per epoch (only with ``early_stopping``).
    best_validation_score_ : float
        Only with ``early_stopping``.
    converged_ : bool
        Whether the ``tol``/early-stopping criterion stopped training.

    Examples
    --------
    Two well separated clusters, a hidden layer of 8 tanh units:

    >>> import numpy as np
    >>> X = np.array([[-2.0, -1.0], [-1.5, -2.0], [2.0, 1.0], [1.0, 2.5]])
    >>> y = np.array(["left", "left", "right", "right"])
    >>> clf = MLPClassifier(hidden_layer_sizes=(8,), activation="tanh", learning_rate=0.5,
    ...                     max_epochs=50, random_state=0).fit(X, y)
    >>> clf.predict([[-3.0, -3.0], [3.0, 3.0]]).tolist()
    ['left', 'right']
    >>> [w.shape for w in clf.coefs_], clf.predict_proba(X).sum(axis=1).round(12).tolist()
    ([(8, 2), (2, 8)], [1.0, 1.0, 1.0, 1.0])
    """

    _parameter_constraints = {
        "activation": Options(*_ACTIVATIONS),
        "optimizer": Options(*_DEFAULT_LR),
        "learning_rate": Interval(0, None, open_low=True, none_ok=True),
        "learning_rate_schedule": Options(*SCHEDULE_NAMES, callable_ok=True),
        "alpha": Interval(0, None),
        "batch_size": Interval(1, None, integer=True),
        "max_epochs": Interval(1, None, integer=True),
        "early_stopping": Options(True, False),
        "validation_fraction": Interval(0, 1, open_low=True),
        "n_iter_no_change": Interval(1, None, integer=True),
        "tol": Interval(0, None, none_ok=True),
        "dtype": Options(None, "float32", "float64"),
        "verbose": Interval(0, None, integer=True),
        "callback": Options(None, callable_ok=True),
    }

    def __init__(
        self,
        hidden_layer_sizes=(256,),
        activation="relu",
        *,
        optimizer="sgd",
        learning_rate=None,
        learning_rate_schedule="constant",
        momentum=0.0,
        alpha=0.0,
        batch_size=256,
        max_epochs=10,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=5,
        tol=None,
        dropout=0.0,
        dtype=None,
        random_state=None,
        verbose=0,
        callback=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.momentum = momentum
        self.alpha = alpha
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.dropout = dropout
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose
        self.callback = callback

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    # -- fitting ---------------------------------------------------------------

    def fit(self, X, y):
        """Train from scratch on ``X`` (n_samples, n_features) and labels ``y`` (n_samples,).

        A failed fit (bad input, divergence) raises and leaves a previously
        fitted model as it was.
        """
        saved = dict(self.__dict__)
        try:
            return self._fit(X, y)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            raise

    def partial_fit(self, X, y, classes=None):
        """One epoch over ``(X, y)``, continuing from the current weights and optimizer state.

        The first call builds the network (as ``fit`` does) and fixes the
        classes: pass ``classes`` (all labels) there when a batch may lack
        some; a label outside them later is an error. The schedule is indexed
        by the number of ``partial_fit`` epochs so far. Early stopping is not
        used here.

        Examples
        --------
        >>> import numpy as np
        >>> clf = MLPClassifier(hidden_layer_sizes=(4,), random_state=0)
        >>> _ = clf.partial_fit([[0.0], [1.0]], [0, 1], classes=[0, 1, 2])
        >>> _ = clf.partial_fit([[2.0]], [2])
        >>> clf.n_iter_, clf.coefs_[-1].shape
        (2, (3, 4))
        """
        saved = dict(self.__dict__)
        # training updates the weights, optimizer state and generators in place
        snapshot = self._snapshot() if getattr(self, "_net", None) is not None else None
        try:
            return self._partial_fit(X, y, classes)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(saved)
            if snapshot is not None:
                self._restore(snapshot)
            raise

    def _fit(self, X, y):
        hidden = self._check_params()
        X, y = self._validate_Xy(X, y, reset=True)
        classes, codes = np.unique(y, return_inverse=True)
        if classes.size < 2:
            raise ValueError(
                f"y has only one class ({classes[0]!r}); a classifier needs at least two classes "
                "to fit."
            )
        rng = np.random.default_rng(self.random_state)
        net, linears = self._build(hidden, X.shape[1], classes.size, X.dtype, rng)
        X_val = codes_val = None
        if self.early_stopping:
            X, codes, X_val, codes_val = self._split(X, codes, rng)
        _seed_dropout(net, rng)
        self.classes_ = classes
        self._setup(net, linears, rng)
        self.history_ = []
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
        self.n_iter_ = 0
        self.converged_ = self._train(X, codes, self.max_epochs, X_val, codes_val)
        return self

    def _partial_fit(self, X, y, classes):
        hidden = self._check_params()
        first = not hasattr(self, "coefs_")
        X, y = self._validate_Xy(X, y, reset=first)
        if first:
            known = np.unique(np.asarray(classes) if classes is not None else y)
            if known.size < 2:
                raise ValueError(
                    f"partial_fit's first call sees only the class {known[0]!r}; pass "
                    "classes=[...] listing all labels."
                )
            rng = np.random.default_rng(self.random_state)
            net, linears = self._build(hidden, X.shape[1], known.size, X.dtype, rng)
            _seed_dropout(net, rng)
            self.classes_ = known
            self._setup(net, linears, rng)
            self.history_, self.n_iter_ = [], 0
        else:
            known = self.classes_
            if classes is not None and not np.array_equal(np.unique(np.asarray(classes)), known):
                raise ValueError(
                    f"classes={np.unique(np.asarray(classes)).tolist()} differs from the classes "
                    f"of the first partial_fit call, {known.tolist()}."
                )
            if not self._net_matches_coefs():
                self._rebuild_from_coefs(hidden)
            X = X.astype(self.coefs_[0].dtype, copy=False)
        new = np.setdiff1d(np.unique(y), known)
        if new.size:
            raise ValueError(
                f"y holds labels {new.tolist()} that are not among the classes {known.tolist()} "
                "fixed by the first partial_fit call; pass classes=[...] to it."
            )
        codes = np.searchsorted(known, y)
        self._train(X, codes, 1, None, None)
        self.converged_ = False
        return self

    # -- prediction ------------------------------------------------------------

    def decision_function(self, X):
        """Logits of the output layer, shape (n_samples, n_classes).

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
        """Class probabilities ``softmax(z)``, shape (n_samples, n_classes)."""
        return softmax(self._logits(X), axis=1)

    def predict_log_proba(self, X):
        """Log-probabilities ``log_softmax(z)`` (exact in the tails), shape (n_samples, n_classes)."""
        return log_softmax(self._logits(X), axis=1)

    # -- internals ---------------------------------------------------------------

    def _check_params(self):
        check_params(self, self._parameter_constraints)
        m = self.momentum
        if isinstance(m, bool) or not isinstance(m, numbers.Real) or not 0.0 <= m < 1.0:
            raise ValueError(f"momentum must be a real number in [0, 1), got {m!r}.")
        p = self.dropout
        if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0.0 <= p < 1.0:
            raise ValueError(f"dropout must be a real number in [0, 1), got {p!r}.")
        if self.validation_fraction >= 1:
            raise ValueError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction!r}."
            )
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
        return tuple(int(s) for s in sizes)

    def _validate_Xy(self, X, y, reset):
        dtype = {None: [np.float64, np.float32], "float32": np.float32, "float64": np.float64}
        # C order, as for SoftmaxRegression: minibatches gather whole rows.
        X, y = validate_data(self, X, y, accept_sparse=("csr", "csc"), dtype=dtype[self.dtype], order="C",
                             ensure_all_finite=False, reset=reset)
        check_finite(X, feature_names=getattr(self, "feature_names_in_", None))
        if sp.issparse(X):
            X = X.tocsr()  # minibatches gather rows
        check_classification_targets(y)
        return X, y

    def _build(self, hidden, n_features, n_classes, dtype, rng):
        """Layers in input -> output order, their weights drawn from ``rng`` in that order."""
        sizes = [n_features, *hidden, n_classes]
        hidden_init = "he_normal" if self.activation == "relu" else "glorot_normal"
        linears = [
            Linear(
                fan_in, fan_out,
                init=nn_init.normal(0.01) if i == len(hidden) else hidden_init,
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

    def _setup(self, net, linears, rng):
        """Optimizer over the network's arrays; ``coefs_``/``intercepts_`` are those arrays."""
        self.coefs_ = [lin.params["weight"] for lin in linears]
        self.intercepts_ = [lin.params["bias"] for lin in linears]
        groups = [
            {"params": [(lin.params["weight"], lin.grads["weight"]) for lin in linears],
             "weight_decay": float(self.alpha)},
            {"params": [(lin.params["bias"], lin.grads["bias"]) for lin in linears],
             "weight_decay": 0.0},
        ]
        lr = self._base_lr()
        if self.optimizer == "sgd":
            opt = SGD(groups, lr=lr, momentum=float(self.momentum))
        else:
            opt = Adam(groups, lr=lr)
        self._net, self._linears, self._opt, self._rng = net, linears, opt, rng
        self._loss_fn = SoftmaxCrossEntropy()

    def _base_lr(self):
        return _DEFAULT_LR[self.optimizer] if self.learning_rate is None else float(self.learning_rate)

    def _net_matches_coefs(self):
        linears = getattr(self, "_linears", None)
        return linears is not None and len(linears) == len(self.coefs_) and all(
            lin.params["weight"] is w and lin.params["bias"] is b
            for lin, w, b in zip(linears, self.coefs_, self.intercepts_)
        )

    def _rebuild_from_coefs(self, hidden):
        """A network around ``coefs_``/``intercepts_`` (e.g. a model read from a file).

        The optimizer state (momentum, Adam moments) starts afresh, and the
        permutations restart from ``random_state``.
        """
        coefs = [np.ascontiguousarray(w) for w in self.coefs_]
        dtype = coefs[0].dtype
        expected = [self.n_features_in_, *hidden, self.classes_.size]
        if [w.shape for w in coefs] != [(o, i) for i, o in zip(expected[:-1], expected[1:])]:
            raise ValueError(
                "coefs_ do not match hidden_layer_sizes and the data; refit the model."
            )
        rng = np.random.default_rng(self.random_state)
        net, linears = self._build(hidden, self.n_features_in_, self.classes_.size, dtype, rng)
        for lin, w, b in zip(linears, coefs, self.intercepts_):
            lin.params["weight"][...] = w
            lin.params["bias"][...] = b
        self._setup(net, linears, rng)

    def _split(self, X, codes, rng):
        n = X.shape[0]
        n_val = int(np.ceil(self.validation_fraction * n))
        if n - n_val < 1 or n_val < 1:
            raise ValueError(
                f"early_stopping holds out validation_fraction={self.validation_fraction} of "
                f"{n} rows, which leaves no rows to train or to validate on; use more data or "
                "early_stopping=False."
            )
        perm = rng.permutation(n)
        val, train = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        return X[train], codes[train], X[val], codes[val]

    def _train(self, X, codes, n_epochs, X_val, codes_val):
        """Run ``n_epochs`` epochs from the current state; return whether a criterion stopped it."""
        schedule = get_schedule(self.learning_rate_schedule, self._base_lr(), self.max_epochs)
        self._net.train()
        # overflow in a diverging run is reported by the ValueError of _epochs, not as warnings
        with np.errstate(over="ignore", invalid="ignore"):
            return self._epochs(X, codes, n_epochs, X_val, codes_val, schedule)

    def _epochs(self, X, codes, n_epochs, X_val, codes_val, schedule):
        net, opt, rng, loss_fn = self._net, self._opt, self._rng, self._loss_fn
        n, bs = X.shape[0], int(self.batch_size)
        alpha = float(self.alpha)
        tol = 0.0 if self.tol is None else float(self.tol)
        watch_loss = self.tol is not None and X_val is None
        best_loss, no_change = np.inf, 0
        best_weights = None
        start = time.perf_counter()
        stopped_by = None
        for _ in range(n_epochs):
            epoch = self.n_iter_  # 0-based index into the schedule
            lr = schedule(epoch)
            opt.set_lr(lr)
            perm = rng.permutation(n)
            total, correct = 0.0, 0
            for lo in range(0, n, bs):
                idx = perm[lo:lo + bs]
                logits, target = net(X[idx]), codes[idx]
                loss = float(loss_fn(logits, target))
                correct += int(np.count_nonzero(np.argmax(logits, axis=1) == target))
                if not np.isfinite(loss):
                    raise ValueError(
                        f"training diverged at epoch {epoch + 1} (the loss became {loss}); "
                        "lower learning_rate or scale the features."
                    )
                net.backward(loss_fn.backward())
                opt.step()
                total += loss * idx.size
            if not all(np.isfinite(p).all() for p, _ in self._all_params()):
                raise ValueError(
                    f"training diverged at epoch {epoch + 1} (non-finite weights); lower "
                    "learning_rate or scale the features."
                )
            objective = total / n
            if alpha:
                objective += 0.5 * alpha * sum(float(np.vdot(w, w)) for w in self.coefs_)
            self.n_iter_ += 1
            self.history_.append(objective)
            info = {"iteration": self.n_iter_, "objective": objective,
                    "elapsed": time.perf_counter() - start, "solver": self.optimizer,
                    "learning_rate": lr, "train_accuracy": correct / n}
            stop = False
            if X_val is not None:
                score = float(np.mean(self._net_predict_codes(X_val) == codes_val))
                net.train()
                info["validation_score"] = score
                self.validation_scores_.append(score)
                no_change = no_change + 1 if score <= self.best_validation_score_ + tol else 0
                if score > self.best_validation_score_:
                    self.best_validation_score_ = score
                    best_weights = [p.copy() for p, _ in self._all_params()]
                stop = no_change >= self.n_iter_no_change
            elif watch_loss:
                no_change = no_change + 1 if objective > best_loss - tol else 0
                best_loss = min(best_loss, objective)
                stop = no_change >= self.n_iter_no_change
            if self.verbose:
                extra = f", validation accuracy {info['validation_score']:.4f}" if X_val is not None else ""
                print(f"[MLPClassifier:{self.optimizer}] epoch {self.n_iter_}: "
                      f"objective {objective:.8g}{extra}")
            if self.callback is not None and self.callback(info):
                stopped_by = "callback"
                break
            if stop:
                stopped_by = "criterion"
                break
        if best_weights is not None:  # early stopping keeps the best epoch's weights
            for (p, _), best in zip(self._all_params(), best_weights):
                p[...] = best
        if stopped_by is None and (self.tol is not None or X_val is not None) and (
            n_epochs == self.max_epochs
        ):
            warnings.warn(
                f"MLPClassifier did not converge in max_epochs={self.max_epochs} epochs "
                "(the stopping criterion was not met); increase max_epochs or loosen tol.",
                ConvergenceWarning,
                stacklevel=4,
            )
        return stopped_by == "criterion"

    def _snapshot(self):
        """Copies of everything an epoch changes in place."""
        copy = lambda v: v.copy() if isinstance(v, np.ndarray) else v  # noqa: E731
        return {
            "params": [p.copy() for p, _ in self._all_params()],
            "opt": [[{k: copy(v) for k, v in st.items()} for st in group] for group in self._opt.state],
            "rngs": [g.bit_generator.state for g in self._generators()],
        }

    def _restore(self, snapshot):
        for (p, _), saved in zip(self._all_params(), snapshot["params"]):
            p[...] = saved
        for group, saved in zip(self._opt.state, snapshot["opt"]):
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
        X = validate_data(self, X, accept_sparse=("csr", "csc"), dtype=[np.float64, np.float32],
                          ensure_all_finite=False, reset=False)
        check_finite(X, feature_names=getattr(self, "feature_names_in_", None))
        dtype = np.asarray(self.coefs_[0]).dtype
        X = X.tocsr().astype(dtype, copy=False) if sp.issparse(X) else X.astype(dtype, copy=False)
        act = {"relu": lambda h: np.maximum(h, 0, out=h), "tanh": lambda h: np.tanh(h, out=h),
               "sigmoid": sigmoid}[self.activation]
        out = np.empty((X.shape[0], self.classes_.size), dtype=dtype)
        for lo in range(0, X.shape[0], _PREDICT_ROWS):
            h = X[lo:lo + _PREDICT_ROWS]
            for layer, (w, b) in enumerate(zip(self.coefs_, self.intercepts_)):
                h = np.asarray(h @ np.asarray(w, dtype=dtype).T)
                h += np.asarray(b, dtype=dtype)
                if layer < len(self.coefs_) - 1:
                    h = act(h)
            out[lo:lo + _PREDICT_ROWS] = h
        return out
