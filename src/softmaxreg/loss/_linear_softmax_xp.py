r"""The softmax cross-entropy objective on any Array API namespace and device.

:class:`ArrayAPILinearSoftmaxLoss` is :class:`~softmaxreg.loss.LinearSoftmaxLoss`
written once against the Array API standard: the same objective, gradient,
Hessian-vector product, dense Hessian and class-block preconditioner, the same
flat layout of the coefficients, evaluated by the namespace of ``X`` (torch on
a CPU or a GPU, CuPy, ``array_api_strict``, NumPy through ``array_api_compat``)
on ``X``'s device.  ``LinearSoftmaxLoss(X, ...)`` returns one of these when
``X`` is an Array API array other than a NumPy array, so solvers and the
estimator see one interface.

Where things live.  Every array the loss makes or returns (logits, gradients,
products, the flat vectors) stays in ``X``'s namespace and on ``X``'s device,
in ``X``'s dtype (float32 data is computed in float32 end to end, which is what
a GPU is fast at; float64 data in float64).  Only Python floats leave it: the
objective value (one scalar per call).  The NumPy path keeps its fused kernels;
this module is the reference each of their steps is tested against.
"""

from __future__ import annotations

import math

import array_api_compat

from softmaxreg.functional import logsumexp

__all__ = ["ArrayAPILinearSoftmaxLoss", "is_foreign_array"]


def is_foreign_array(x):
    """Whether ``x`` is an Array API array that is not a NumPy array (torch, CuPy, array_api_strict, ...)."""
    if not array_api_compat.is_array_api_obj(x):
        return False
    return not array_api_compat.is_numpy_array(x)


def check_reference_and_chunks(reference_class, chunk_size, n_classes, n_features):
    """``reference_class`` as a class code (or None) and ``chunk_size`` as a row count, checked.

    The default chunk holds about 2**22 entries of the widest per-row array.
    """
    if reference_class is not None:
        reference_class = int(reference_class)
        if not 0 <= reference_class < n_classes:
            raise ValueError(
                f"reference_class must be a class code in 0..{n_classes - 1}, got {reference_class}."
            )
    if chunk_size is None:
        chunk_size = max(1, (1 << 22) // max(n_classes, n_features, 1))
    chunk_size = int(chunk_size)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer, got {chunk_size}.")
    return reference_class, chunk_size


class ArrayAPILinearSoftmaxLoss:
    r"""Mean softmax cross-entropy of a linear model, in the namespace and on the device of ``X``.

    The objective, its derivatives and the conventions (flat layout, reference
    class, scaling by the sum of sample weights) are those of
    :class:`~softmaxreg.loss.LinearSoftmaxLoss`:

    .. math::

        f(W, b) = \frac{1}{S} \sum_i s_i
                  \bigl(\operatorname{logsumexp}(z_i) - z_{i, y_i}\bigr)
                  + \frac{\lambda}{2} \lVert W \rVert_F^2, \qquad z_i = W x_i + b,

    .. math::

        \nabla_W f = \frac{1}{S} (P - Y)^\top \operatorname{diag}(s) X + \lambda W, \qquad
        H v = \frac1S \tilde X^\top \operatorname{diag}(s)\,
              \bigl(P \odot (Z_v - \langle P, Z_v \rangle)\bigr) + \lambda V .

    Parameters
    ----------
    X : array of shape (n_samples, n_features)
        Features, float32 or float64, any Array API namespace; every
        computation runs in its namespace, on its device, in its dtype.
    y : array of shape (n_samples,) or (n_samples, n_classes)
        Integer class codes ``0 .. n_classes - 1`` or target probabilities, in
        ``X``'s namespace (moved to ``X``'s device if needed).
    n_classes : int, default=None
        Number of classes; ``max(y) + 1`` when None and ``y`` holds codes.
    sample_weight : array of shape (n_samples,), default=None
        Non-negative weights; ones when None.
    fit_intercept : bool, default=True
    l2_reg_strength : float, default=0.0
    reference_class : int, default=None
        Class code whose row is fixed at zero, or None for symmetric coding.
    chunk_size : int, default=None
        Rows per pass step; None picks about four million logits per chunk.

    Examples
    --------
    One sample, two classes, zero coefficients: the loss is log 2, the
    intercept gradient p - y = (0.5, -0.5).  (NumPy through ``array_api_compat``
    here; a torch tensor or a CuPy array works the same way.)

    >>> import numpy as np
    >>> loss = ArrayAPILinearSoftmaxLoss(np.array([[1.0]]), np.array([1]))
    >>> f, g = loss.loss_gradient(np.zeros(loss.n_params))
    >>> round(f, 6), np.asarray(g).tolist()
    (0.693147, [0.5, 0.5, -0.5, -0.5])
    """

    def __init__(
        self,
        X,
        y,
        *,
        n_classes=None,
        sample_weight=None,
        fit_intercept=True,
        l2_reg_strength=0.0,
        reference_class=None,
        chunk_size=None,
    ):
        xp = array_api_compat.array_namespace(X)
        device = array_api_compat.device(X)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {tuple(X.shape)}.")
        if X.dtype not in (xp.float32, xp.float64):
            raise ValueError(f"X must be float32 or float64, got {X.dtype}; cast it first.")
        n_samples, n_features = (int(s) for s in X.shape)
        if n_samples == 0:
            raise ValueError("X has no rows; the loss needs at least one sample.")
        dtype = X.dtype
        y = _to_namespace(xp, y, device)
        if y.ndim == 1:
            if y.shape[0] != n_samples:
                raise ValueError(f"y has {y.shape[0]} entries but X has {n_samples} rows.")
            if not xp.isdtype(y.dtype, "integral"):
                if not (xp.isdtype(y.dtype, "real floating") and bool(xp.all(y == xp.round(y)))):
                    raise ValueError("y must hold integer class codes 0..n_classes-1.")
                y = xp.astype(y, xp.int64)
            low, high = int(xp.min(y)), int(xp.max(y))
            if low < 0:
                raise ValueError("y must hold class codes >= 0.")
            if n_classes is None:
                n_classes = high + 1
            if high >= n_classes:
                raise ValueError(f"y holds code {high} but n_classes={n_classes}.")
        elif y.ndim == 2:
            if y.shape[0] != n_samples:
                raise ValueError(f"y has {y.shape[0]} rows but X has {n_samples}.")
            if n_classes is None:
                n_classes = int(y.shape[1])
            if y.shape[1] != n_classes:
                raise ValueError(f"y has {y.shape[1]} columns but n_classes={n_classes}.")
            y = xp.astype(y, dtype)
            if not bool(xp.all(xp.isfinite(y))) or bool(xp.any(y < 0)):
                raise ValueError("target probabilities in y must be finite and >= 0.")
        else:
            raise ValueError(f"y must be 1-D codes or a 2-D probability matrix, got shape {tuple(y.shape)}.")
        n_classes = int(n_classes)
        if n_classes < 2:
            raise ValueError(f"softmax regression needs n_classes >= 2, got {n_classes}.")
        if sample_weight is None:
            sample_weight = xp.ones(n_samples, dtype=dtype, device=device)
        else:
            sample_weight = xp.astype(_to_namespace(xp, sample_weight, device), dtype)
            if tuple(sample_weight.shape) != (n_samples,):
                raise ValueError(
                    f"sample_weight must have shape ({n_samples},), got {tuple(sample_weight.shape)}."
                )
            if not bool(xp.all(xp.isfinite(sample_weight))) or bool(xp.any(sample_weight < 0)):
                raise ValueError("sample_weight must be finite and non-negative.")
        total = float(xp.sum(sample_weight))
        if not total > 0:
            raise ValueError("sample_weight sums to zero; at least one sample needs weight > 0.")
        reference_class, chunk_size = check_reference_and_chunks(reference_class, chunk_size, n_classes, n_features)

        self.xp = xp
        self.device = device
        self.dtype = dtype
        self.X = X
        self.y = y
        self.n_samples = n_samples
        self.n_features = n_features
        self.n_classes = n_classes
        self.sample_weight = sample_weight
        self.sum_sample_weight = total
        self.fit_intercept = bool(fit_intercept)
        self.l2_reg_strength = float(l2_reg_strength)
        self.reference_class = reference_class
        self.chunk_size = chunk_size
        self._sw = sample_weight / total
        self._class_codes = xp.arange(n_classes, device=device)
        self._proba_at = None  # (w, [P per chunk]) of the last Hessian-vector product's point

    # -- coefficient layout ---------------------------------------------------

    @property
    def n_free(self):
        """Number of free class rows (``n_classes``, or one fewer with a reference)."""
        return self.n_classes - (self.reference_class is not None)

    @property
    def n_dof(self):
        """Parameters per free class row: ``n_features`` plus one for the intercept."""
        return self.n_features + int(self.fit_intercept)

    @property
    def n_params(self):
        """Length of the flat coefficient vector ``w``."""
        return self.n_free * self.n_dof

    def asarray(self, w):
        """``w`` as an array of the loss's namespace, device and dtype (no copy when it already is)."""
        return _to_namespace(self.xp, w, self.device, self.dtype)

    def unpack(self, w):
        """Split a flat vector into ``coef`` (n_classes, n_features) and ``intercept`` (n_classes,)."""
        xp = self.xp
        w = self.asarray(w)
        if tuple(w.shape) != (self.n_params,):
            raise ValueError(f"w must have shape ({self.n_params},), got {tuple(w.shape)}.")
        full = self._insert_reference(xp.reshape(w, (self.n_free, self.n_dof)))
        if self.fit_intercept:
            return full[:, :-1], full[:, -1]
        return full, xp.zeros(self.n_classes, dtype=w.dtype, device=self.device)

    def pack(self, coef, intercept=None):
        """Flat ``w`` from ``coef`` and ``intercept``; a reference row is first subtracted from every row."""
        xp = self.xp
        coef = self.asarray(coef)
        if tuple(coef.shape) != (self.n_classes, self.n_features):
            raise ValueError(
                f"coef must have shape ({self.n_classes}, {self.n_features}), got {tuple(coef.shape)}."
            )
        if self.fit_intercept:
            b = (xp.zeros(self.n_classes, dtype=self.dtype, device=self.device) if intercept is None
                 else self.asarray(intercept))
            full = xp.concat([coef, b[:, None]], axis=1)
        else:
            full = coef
        if self.reference_class is not None:
            r = self.reference_class
            full = full - full[r:r + 1, :]
        return xp.reshape(self._drop_reference(full), (-1,))

    def _insert_reference(self, free):
        """(n_free, m) rows -> (n_classes, m) with the reference row zero."""
        r = self.reference_class
        if r is None:
            return free
        zero = self.xp.zeros((1, free.shape[1]), dtype=free.dtype, device=self.device)
        return self.xp.concat([free[:r, :], zero, free[r:, :]], axis=0)

    def _drop_reference(self, full):
        r = self.reference_class
        if r is None:
            return full
        return self.xp.concat([full[:r, ...], full[r + 1:, ...]], axis=0)

    # -- evaluation -----------------------------------------------------------

    def loss(self, w):
        """Objective value ``f(w)`` (a Python float: the one number that leaves the device)."""
        return self._pass(w, need_loss=True, need_grad=False)[0]

    def losses(self, ws):
        """``[f(w) for w in ws]`` as a list of floats."""
        return [self.loss(w) for w in ws]

    def gradient(self, w):
        """Gradient of ``f`` at ``w``, array of shape (n_params,) on the loss's device."""
        return self._pass(w, need_loss=False, need_grad=True)[1]

    def loss_gradient(self, w):
        """``(f(w), gradient(w))`` in one pass over the data; ``f`` a float, the gradient on the device."""
        f, g = self._pass(w, need_loss=True, need_grad=True)
        return f, g

    def hessp(self, w, v):
        """Hessian of ``f`` at ``w`` times ``v`` (never forms the Hessian).

        The probabilities at ``w`` are kept on the device (when ``n_samples *
        n_classes`` is at most 2**22) for the next products at the same point.
        """
        xp = self.xp
        w, v = self.asarray(w), self.asarray(v)
        if tuple(v.shape) != (self.n_params,):
            raise ValueError(f"v must have shape ({self.n_params},), got {tuple(v.shape)}.")
        coef, intercept = self.unpack(w)
        v_coef, v_int = self.unpack(v)
        cached = self._cached_proba(w)
        store = [] if cached is None and self.n_samples * self.n_classes <= 1 << 22 else None
        G = xp.zeros((self.n_classes, self.n_features), dtype=self.dtype, device=self.device)
        gb = xp.zeros(self.n_classes, dtype=self.dtype, device=self.device)
        for ci, (start, stop) in enumerate(self._chunks()):
            Xc = self.X[start:stop, :]
            if cached is not None:
                P = cached[ci]
            else:
                P = self._proba(Xc, coef, intercept)
                if store is not None:
                    store.append(P)
            Zv = self._logits(Xc, v_coef, v_int)
            R = P * (Zv - xp.sum(P * Zv, axis=1, keepdims=True))
            R = R * self._sw[start:stop, None]
            G = G + R.T @ Xc
            gb = gb + xp.sum(R, axis=0)
        if store is not None:
            self._proba_at = (w, store)
        if self.l2_reg_strength:
            G = G + self.l2_reg_strength * v_coef
        return self._pack_free(G, gb)

    def hessian(self, w):
        r"""Dense Hessian of ``f`` at ``w``, array of shape (n_params, n_params), on the device.

        With :math:`B_i = (p_{ia} \tilde x_i)_{a}` (the free classes' rows
        stacked), :math:`H = \frac1S \sum_i s_i \bigl(\operatorname{blockdiag}_a
        (p_{ia} \tilde x_i \tilde x_i^\top) - B_i B_i^\top\bigr) + \lambda I`
        (no penalty on the intercept entries): one product of
        ``(n_params, chunk) @ (chunk, n_params)`` per row chunk.
        """
        xp = self.xp
        coef, intercept = self.unpack(w)
        F, d = self.n_free, self.n_dof
        H = xp.zeros((F * d, F * d), dtype=self.dtype, device=self.device)
        for start, stop in self._chunks(width=F * d):
            Xt = self._augmented(self.X[start:stop, :])
            P = self._drop_reference(self._proba(self.X[start:stop, :], coef, intercept).T).T
            sw = self._sw[start:stop]
            B = xp.reshape((P * xp.sqrt(sw)[:, None])[:, :, None] * Xt[:, None, :], (stop - start, F * d))
            H = H - B.T @ B
            diag = [Xt.T @ ((sw * P[:, a])[:, None] * Xt) for a in range(F)]
            H = H + _block_diag(xp, diag)
        if self.l2_reg_strength:
            H = H + _diag(xp, xp.concat([self._penalty_row()] * F))
        return H

    def preconditioner(self, w, *, mass=0.99):
        r"""Block-Jacobi preconditioner of :meth:`hessp` at ``w`` (the inverse class blocks).

        The same operator as :meth:`LinearSoftmaxLoss.preconditioner`: the
        Hessian's diagonal blocks
        :math:`H_{kk} = \frac1S \sum_i s_i p_{ik}(1 - p_{ik}) \tilde x_i \tilde x_i^\top + \lambda I`,
        each over the rows carrying the fraction ``mass`` of its weight, inverted
        on the device (by an eigendecomposition, dropping null directions); the
        directions adding one vector to every class row are treated exactly in
        the symmetric coding.  Returns ``r -> M^{-1} r`` on flat device arrays,
        or None when the blocks would hold more than 2**24 numbers.
        """
        xp = self.xp
        F, d = self.n_free, self.n_dof
        if F * d * d > 1 << 24:
            return None
        coef, intercept = self.unpack(w)
        # The row weights of every block (n_samples, n_free) first: the rows kept
        # for a class are the heaviest over all rows, not per chunk.
        weights, scores = [], []
        for start, stop in self._chunks():
            Xt = self._augmented(self.X[start:stop, :])
            P = self._drop_reference(self._proba(self.X[start:stop, :], coef, intercept).T).T
            weights.append(self._sw[start:stop, None] * P * (1.0 - P))
            scores.append(weights[-1] * xp.sum(Xt * Xt, axis=1)[:, None])
        weight = xp.concat(weights, axis=0)
        weight = weight * _heaviest_mask(xp, xp.concat(scores, axis=0), mass)
        blocks = xp.zeros((F, d, d), dtype=self.dtype, device=self.device)
        for start, stop in self._chunks():
            Xt = self._augmented(self.X[start:stop, :])
            wc = weight[start:stop, :]
            blocks = blocks + xp.stack([Xt.T @ (wc[:, k:k + 1] * Xt) for k in range(F)])
        pen = self._penalty_row()
        blocks = blocks + _diag(xp, pen)[None, :, :]
        evals, evecs = xp.linalg.eigh(blocks)
        top = xp.max(evals, axis=1, keepdims=True)
        keep = evals > d * xp.finfo(self.dtype).eps * top
        inv_evals = xp.where(keep, 1.0 / xp.where(keep, evals, xp.ones_like(evals)), xp.zeros_like(evals))
        inverse = (evecs * inv_evals[:, None, :]) @ xp.matrix_transpose(evecs)
        symmetric = self.reference_class is None
        inf = xp.asarray(math.inf, dtype=self.dtype, device=self.device)
        shift_curvature = xp.where(pen > 0, pen, inf)

        def apply(r):
            R = xp.reshape(self.asarray(r), (F, d))
            if symmetric:
                mean = xp.mean(R, axis=0)
                R = R - mean
            Z = (inverse @ R[:, :, None])[:, :, 0]
            if symmetric:
                Z = Z - xp.mean(Z, axis=0) + mean / shift_curvature
            return xp.reshape(Z, (-1,))

        return apply

    def minibatch_gradient(self, w, rows, counts=None):
        r"""Unbiased estimate of :meth:`gradient` from the rows ``rows`` (an index array on the device).

        :math:`\hat g = \frac1B \sum_{i \in \text{rows}} s'_i (p_i - y_i) \tilde x_i^\top + \lambda W`
        with :math:`s'_i = s_i n / S`, as :meth:`LinearSoftmaxLoss.minibatch_gradient`.
        ``counts``, an optional list of two numbers, gets the weight of the rows
        predicted right and the rows' total weight added (device scalars: no
        transfer per batch).
        """
        xp = self.xp
        coef, intercept = self.unpack(w)
        Xb = xp.take(self.X, rows, axis=0)
        Z = self._logits(Xb, coef, intercept)
        Y = self._targets(xp.take(self.y, rows, axis=0))
        swb = xp.take(self.sample_weight, rows, axis=0)
        if counts is not None:
            right = xp.astype(xp.argmax(Z, axis=1) == xp.argmax(Y, axis=1), self.dtype)
            counts[0] = counts[0] + xp.sum(swb * right)
            counts[1] = counts[1] + xp.sum(swb)
        R = xp.exp(Z - logsumexp(Z, axis=1)[:, None]) - Y
        scale = self.n_samples / (self.sum_sample_weight * int(rows.shape[0]))
        R = R * (scale * swb)[:, None]
        G = R.T @ Xb
        if self.l2_reg_strength:
            G = G + self.l2_reg_strength * coef
        return self._pack_free(G, xp.sum(R, axis=0))

    def sgd_epoch(self, w, perm, **kwargs):
        """None: the fused SGD epoch is NumPy's; the solver's minibatch loop runs instead."""
        return None

    # -- the pass over rows -----------------------------------------------------

    def _pass(self, w, need_loss, need_grad):
        xp = self.xp
        w = self.asarray(w)
        coef, intercept = self.unpack(w)
        total = xp.zeros((), dtype=self.dtype, device=self.device)
        G = xp.zeros((self.n_classes, self.n_features), dtype=self.dtype, device=self.device)
        gb = xp.zeros(self.n_classes, dtype=self.dtype, device=self.device)
        for start, stop in self._chunks():
            Xc = self.X[start:stop, :]
            sw = self._sw[start:stop]
            Z = self._logits(Xc, coef, intercept)
            lse = logsumexp(Z, axis=1)
            Y = self._targets(self.y[start:stop, ...])
            if need_loss:
                ce = lse * xp.sum(Y, axis=1) - xp.sum(Y * Z, axis=1)
                total = total + xp.sum(sw * ce)
            if need_grad:
                R = (xp.exp(Z - lse[:, None]) - Y) * sw[:, None]
                G = G + R.T @ Xc
                gb = gb + xp.sum(R, axis=0)
        f = grad = None
        lam = self.l2_reg_strength
        if need_loss:
            f = float(total + 0.5 * lam * xp.sum(coef * coef)) if lam else float(total)
        if need_grad:
            if lam:
                G = G + lam * coef
            grad = self._pack_free(G, gb)
        return f, grad

    # -- helpers ----------------------------------------------------------------

    def _chunks(self, width=0):
        n = self.n_samples
        c = self.chunk_size if not width else max(1, min(self.chunk_size, (1 << 22) // max(width, 1)))
        for start in range(0, n, c):
            yield start, min(start + c, n)

    def _logits(self, Xc, coef, intercept):
        Z = Xc @ coef.T
        if self.fit_intercept:
            Z = Z + intercept
        return Z

    def _proba(self, Xc, coef, intercept):
        Z = self._logits(Xc, coef, intercept)
        return self.xp.exp(Z - logsumexp(Z, axis=1)[:, None])

    def _targets(self, y):
        if y.ndim == 2:
            return y
        return self.xp.astype(y[:, None] == self._class_codes[None, :], self.dtype)

    def _augmented(self, Xc):
        if not self.fit_intercept:
            return Xc
        ones = self.xp.ones((Xc.shape[0], 1), dtype=self.dtype, device=self.device)
        return self.xp.concat([Xc, ones], axis=1)

    def _penalty_row(self):
        """The L2 weight of each of the ``n_dof`` entries of a class row (0 on the intercept)."""
        xp = self.xp
        pen = xp.full(self.n_features, self.l2_reg_strength, dtype=self.dtype, device=self.device)
        if self.fit_intercept:
            pen = xp.concat([pen, xp.zeros(1, dtype=self.dtype, device=self.device)])
        return pen

    def _pack_free(self, G, gb):
        xp = self.xp
        if self.fit_intercept:
            G = xp.concat([G, gb[:, None]], axis=1)
        return xp.reshape(self._drop_reference(G), (-1,))

    def _cached_proba(self, w):
        cache = self._proba_at
        if cache is None:
            return None
        w0, P = cache
        if w0 is w or (w0.shape == w.shape and bool(self.xp.all(w0 == w))):
            return P
        return None


def _to_namespace(xp, a, device, dtype=None):
    """``a`` (any array or sequence) as an array of ``xp`` on ``device``; a foreign array goes through the host."""
    if array_api_compat.is_array_api_obj(a) and array_api_compat.array_namespace(a) is not xp:
        from sklearn.utils._array_api import move_to

        a = move_to(a, xp=xp, device=device)
    if array_api_compat.is_array_api_obj(a) and array_api_compat.device(a) == device:
        return a if dtype is None or a.dtype == dtype else xp.astype(a, dtype)
    return xp.asarray(a, dtype=dtype, device=device)


def _block_diag(xp, blocks):
    """Block-diagonal matrix of equal square blocks."""
    F, d = len(blocks), int(blocks[0].shape[0])
    zero = xp.zeros((d, d), dtype=blocks[0].dtype, device=array_api_compat.device(blocks[0]))
    return xp.concat([xp.concat([blocks[a] if a == c else zero for c in range(F)], axis=1) for a in range(F)], axis=0)


def _diag(xp, v):
    """Diagonal matrix with diagonal ``v`` (the standard has no ``diag``)."""
    n = int(v.shape[0])
    return xp.eye(n, dtype=v.dtype, device=array_api_compat.device(v)) * v[None, :]


def _heaviest_mask(xp, score, mass):
    """0/1 mask per column of ``score`` (n, F) keeping its largest entries that hold ``mass`` of the column sum."""
    if mass >= 1.0:
        return xp.astype(score > 0, score.dtype)
    ranked = xp.flip(xp.sort(score, axis=0), axis=0)
    cum = xp.cumulative_sum(ranked, axis=0)
    total = cum[-1:, :]
    n_keep = xp.sum(xp.astype(cum < mass * total, xp.int64), axis=0) + 1
    n_keep = xp.minimum(n_keep, xp.asarray(score.shape[0], dtype=xp.int64, device=array_api_compat.device(score)))
    position = xp.arange(score.shape[0], device=array_api_compat.device(score))[:, None]
    inf = xp.asarray(math.inf, dtype=score.dtype, device=array_api_compat.device(score))
    threshold = xp.min(xp.where(position < n_keep[None, :], ranked, inf), axis=0, keepdims=True)
    return xp.astype((score >= threshold) & (score > 0), score.dtype)
