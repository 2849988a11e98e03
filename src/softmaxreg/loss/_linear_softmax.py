"""The softmax cross-entropy objective lifted onto linear coefficients."""

import numpy as np
import scipy.linalg.lapack
import scipy.sparse as sp
from threadpoolctl import threadpool_limits

from softmaxreg.functional import logsumexp

from ._blocked import BLOCKED_MIN_BATCH_LOGITS, BLOCKED_MIN_LOGITS, blocked_minibatch_gradient, blocked_pass
from ._linear_softmax_xp import ArrayAPILinearSoftmaxLoss, check_reference_and_chunks, is_foreign_array

__all__ = ["LinearSoftmaxLoss", "block_preconditioner"]

_FUSED = None


def _fused_module():
    """The native kernels, :mod:`softmaxreg._native` (imported on first use; it imports Numba), or None without Numba."""
    global _FUSED
    if _FUSED is None:
        try:
            from softmaxreg import _native
        except ImportError:
            _FUSED = False
        else:
            _FUSED = _native
    return _FUSED or None

def fused_predict(X, coef, intercept, what="proba"):
    """Probabilities, logits or labels of ``X @ coef.T + intercept`` by one fused, threaded pass, or None.

    ``what`` is "proba" (the softmax, float64, shape (n_samples, n_classes)),
    "logits" (float64, the same shape) or "labels" (int64 index of each row's
    largest logit, shape (n_samples,)). None when the fused kernels do not
    apply (no Numba, sparse or non-contiguous ``X``, too small to be worth it)
    or a logit is not finite (always the case when ``X`` holds an inf or NaN);
    the caller then takes the reference path.
    """
    fused = _fused_module()
    if fused is None or not fused.linear_worthwhile(X):
        return None
    return fused.linear_predict(X, coef, intercept, {"proba": fused.PROBA, "logits": fused.LOGITS, "labels": fused.LABELS}[what])


# Cache the full probability matrix for repeated Hessian-vector products at
# one point only while it stays below this many float64 entries (32 MiB).
_PROBA_CACHE_MAX = 1 << 22

# :meth:`LinearSoftmaxLoss.losses` scores at most this many bytes of
# coefficients per pass over X: half of a 1 MiB L2, next to the rows' block.
_LOSSES_GROUP_BYTES = 1 << 19


class LinearSoftmaxLoss:
    r"""Mean softmax cross-entropy of a linear model, as a function of its coefficients.

    For data ``X`` (n_samples, n_features), labels ``y`` and sample weights
    ``s`` (summing to ``S``), with coefficients ``W`` (n_classes, n_features)
    and intercept ``b`` (n_classes,):

    .. math::

        z_i = W x_i + b, \qquad
        p_i = \operatorname{softmax}(z_i), \qquad
        f(W, b) = \frac{1}{S} \sum_i s_i
                  \bigl(\operatorname{logsumexp}(z_i) - z_{i, y_i}\bigr)
                  + \frac{\lambda}{2} \lVert W \rVert_F^2 .

    Gradient and Hessian, with ``Y`` the one-hot (or probability) targets and
    ``P`` the predicted probabilities:

    .. math::

        \nabla_W f = \frac{1}{S} (P - Y)^\top \operatorname{diag}(s) X + \lambda W,
        \qquad
        \nabla_b f = \frac{1}{S} (P - Y)^\top s,

    and the Hessian block between the rows of classes ``k`` and ``l`` is

    .. math::

        H_{kl} = \frac{1}{S} \sum_i s_i \, p_{ik} (\delta_{kl} - p_{il}) \,
                 \tilde x_i \tilde x_i^\top + \lambda \delta_{kl} I ,

    with :math:`\tilde x_i = (x_i, 1)` when there is an intercept (the
    penalty never touches the intercept entry).  ``hessp`` applies it to a
    direction ``V`` without forming it, through the softmax JVP
    :math:`p \odot (z_V - \langle p, z_V \rangle)` with :math:`z_V = V \tilde x`.

    **Conventions.**
    *Coefficients* are ``coef`` of shape (n_classes, n_features) and
    ``intercept`` of shape (n_classes,), logits ``X @ coef.T + intercept``, as in
    scikit-learn.  *The flat vector* ``w`` seen by solvers holds the free rows
    only, as the C-ordered ravel of an array of shape
    (n_free, n_features + fit_intercept) whose last column is the intercept;
    :meth:`unpack` and :meth:`pack` convert.  *Reference class*: with
    ``reference_class=None`` all ``n_classes`` rows are free (symmetric coding;
    the softmax is invariant to adding one vector to every row, so without a
    penalty the optimum is not unique).  With ``reference_class=r`` (a class
    code) row ``r`` is fixed at zero and ``n_free = n_classes - 1``: the
    statsmodels ``MNLogit`` parametrization (which always takes ``r = 0``).
    *Scaling*: the objective is the sample-weighted *mean* (divided by ``S``,
    the sum of sample weights), so ``l2_reg_strength = 1 / (C S)`` gives
    scikit-learn's ``C * sum_i s_i CE_i + 0.5 ||W||^2`` divided by ``C S``.  The
    observed information of the summed log-likelihood is
    ``S * hessian(w)`` (with ``l2_reg_strength=0``).
    *Precision*: the two products with ``X`` (logits, and ``R^T X`` for the
    gradient) run in the dtype of ``X``, so float32 data stays float32 and is
    never copied; the softmax, the cross-entropy, the loss sum and the
    accumulation of chunk results are float64.

    Parameters
    ----------
    X : {ndarray, scipy.sparse matrix} of shape (n_samples, n_features)
        Features, float32 or float64; CSR or CSC when sparse.  Not copied:
        the fused one-read passes need a dense X in C order (rows
        contiguous), so pass ``np.ascontiguousarray(X)`` for a
        Fortran-ordered or strided one, which otherwise takes the chunked
        NumPy path (4-5x slower per pass on Fashion-MNIST).
        :class:`~softmaxreg.SoftmaxRegression` makes that copy itself.
    y : ndarray of shape (n_samples,) or (n_samples, n_classes)
        Integer class codes ``0 .. n_classes - 1``, or a matrix of target
        probabilities (rows summing to one; one-hot is the usual case).
    n_classes : int, default=None
        Number of classes; ``y.max() + 1`` when None and ``y`` holds codes.
    sample_weight : ndarray of shape (n_samples,), default=None
        Non-negative weights; all ones when None.
    fit_intercept : bool, default=True
        Whether ``w`` holds an intercept column.
    l2_reg_strength : float, default=0.0
        :math:`\lambda` above.
    reference_class : int, default=None
        Class code whose row is fixed at zero, or None for symmetric coding.
    chunk_size : int, default=None
        Rows processed at a time; bounds the temporary memory of a pass to
        about ``chunk_size * (n_classes + n_features)`` floats.  None picks a
        size holding about four million logits per chunk.
    blocked : bool, default=None
        Whether the passes go over blocks of rows and of classes
        (:mod:`softmaxreg.loss._blocked`: the memory of a pass is a block of
        logits, whatever ``n_classes``), as for a vocabulary. None chooses them
        for dense ``X`` with integer ``y`` when ``n_samples * n_classes``
        exceeds 2**25; True asks for them (dense ``X``, integer ``y``).

    Examples
    --------
    One sample, two classes, zero coefficients: both probabilities are 1/2,
    the loss is log 2 and the intercept gradient is p - y = (0.5, -0.5).

    >>> import numpy as np
    >>> loss = LinearSoftmaxLoss(np.array([[1.0]]), np.array([1]))
    >>> w = np.zeros(loss.n_params)
    >>> f, g = loss.loss_gradient(w)
    >>> print(round(f, 6), round(np.log(2), 6))
    0.693147 0.693147
    >>> coef_grad, intercept_grad = loss.unpack(g)
    >>> coef_grad.tolist(), intercept_grad.tolist()
    ([[0.5], [-0.5]], [0.5, -0.5])
    """

    def __new__(cls, X=None, *args, **kwargs):
        # Any Array API array other than NumPy's (torch, CuPy, ...) gets the same
        # objective written against its namespace, computed on its device.
        if cls is LinearSoftmaxLoss and is_foreign_array(X):
            return ArrayAPILinearSoftmaxLoss(X, *args, **kwargs)
        return super().__new__(cls)

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
        blocked=None,
    ):
        if sp.issparse(X):
            if X.format not in ("csr", "csc"):
                raise ValueError(
                    f"sparse X must be CSR or CSC, got {X.format!r}; convert with X.tocsr()."
                )
        else:
            X = np.asarray(X)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}.")
        if X.dtype not in (np.float32, np.float64):
            raise ValueError(f"X must be float32 or float64, got {X.dtype}; cast it first.")
        n_samples, n_features = X.shape
        if n_samples == 0:
            raise ValueError("X has no rows; the loss needs at least one sample.")

        y = np.asarray(y)
        if y.ndim == 1:
            if y.shape[0] != n_samples:
                raise ValueError(f"y has {y.shape[0]} entries but X has {n_samples} rows.")
            if not np.issubdtype(y.dtype, np.integer):
                if not (np.issubdtype(y.dtype, np.floating) and np.all(y == np.round(y))):
                    raise ValueError("y must hold integer class codes 0..n_classes-1.")
                y = y.astype(np.intp)
            if y.min() < 0:
                raise ValueError("y must hold class codes >= 0.")
            if n_classes is None:
                n_classes = int(y.max()) + 1
            if y.max() >= n_classes:
                raise ValueError(f"y holds code {int(y.max())} but n_classes={n_classes}.")
            y = y.astype(np.intp, copy=False)
        elif y.ndim == 2:
            if y.shape[0] != n_samples:
                raise ValueError(f"y has {y.shape[0]} rows but X has {n_samples}.")
            if n_classes is None:
                n_classes = y.shape[1]
            if y.shape[1] != n_classes:
                raise ValueError(f"y has {y.shape[1]} columns but n_classes={n_classes}.")
            y = np.asarray(y, dtype=np.float64)
            if not np.all(np.isfinite(y)) or np.any(y < 0):
                raise ValueError("target probabilities in y must be finite and >= 0.")
        else:
            raise ValueError(f"y must be 1-D codes or a 2-D probability matrix, got shape {y.shape}.")
        n_classes = int(n_classes)
        if n_classes < 2:
            raise ValueError(f"softmax regression needs n_classes >= 2, got {n_classes}.")

        if sample_weight is None:
            sample_weight = np.ones(n_samples)
        else:
            sample_weight = np.asarray(sample_weight, dtype=np.float64)
            if sample_weight.shape != (n_samples,):
                raise ValueError(
                    f"sample_weight must have shape ({n_samples},), got {sample_weight.shape}."
                )
            if not np.all(np.isfinite(sample_weight)) or np.any(sample_weight < 0):
                raise ValueError("sample_weight must be finite and non-negative.")
        total = float(sample_weight.sum())
        if not total > 0:
            raise ValueError("sample_weight sums to zero; at least one sample needs weight > 0.")

        reference_class, chunk_size = check_reference_and_chunks(reference_class, chunk_size, n_classes, n_features)
        if sp.issparse(X) and X.format == "csc" and chunk_size < n_samples:
            X = X.tocsr()  # row slicing of CSC is quadratic

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
        self._free = np.array(
            [k for k in range(n_classes) if k != reference_class], dtype=np.intp
        )
        self._proba_cache = None
        self._fused_proba = None  # (w, P) of the fused path, or None
        self._sw = sample_weight / total  # the weights of the weighted mean
        # Whether Hessian-vector products are asked of this loss (a second-order
        # solver): only then do gradient passes keep their probabilities.
        self._second_order = False
        dense_codes = not sp.issparse(X) and y.ndim == 1
        if blocked is None:
            blocked = dense_codes and n_samples * n_classes > BLOCKED_MIN_LOGITS
        elif blocked and not dense_codes:
            raise ValueError("blocked=True needs a dense X and integer class codes y.")
        self.blocked = bool(blocked)

    # -- coefficient layout ---------------------------------------------------

    @property
    def n_free(self):
        """Number of free class rows (``n_classes``, or one fewer with a reference)."""
        return self._free.size

    @property
    def n_dof(self):
        """Parameters per class row: ``n_features + fit_intercept``."""
        return self.n_features + int(self.fit_intercept)

    @property
    def n_params(self):
        """Length of the flat coefficient vector ``w``."""
        return self.n_free * self.n_dof

    def unpack(self, w):
        """Split a flat vector into ``coef`` (n_classes, n_features) and ``intercept`` (n_classes,).

        The reference row, if any, is zero; without an intercept it is all zero.
        """
        w = np.asarray(w)
        if w.shape != (self.n_params,):
            raise ValueError(f"w must have shape ({self.n_params},), got {w.shape}.")
        free = w.reshape(self.n_free, self.n_dof)
        full = np.zeros((self.n_classes, self.n_dof), dtype=w.dtype)
        full[self._free] = free
        if self.fit_intercept:
            return full[:, :-1], full[:, -1]
        return full, np.zeros(self.n_classes, dtype=w.dtype)

    def pack(self, coef, intercept=None):
        """Flat vector ``w`` from ``coef`` and ``intercept`` (inverse of :meth:`unpack`).

        With a reference class the reference row is first subtracted from every
        row (the probabilities do not change), so any coefficients can be packed.
        """
        coef = np.asarray(coef, dtype=np.float64)
        if coef.shape != (self.n_classes, self.n_features):
            raise ValueError(
                f"coef must have shape ({self.n_classes}, {self.n_features}), got {coef.shape}."
            )
        full = np.zeros((self.n_classes, self.n_dof))
        full[:, : self.n_features] = coef
        if self.fit_intercept:
            full[:, -1] = 0.0 if intercept is None else intercept
        if self.reference_class is not None:
            full -= full[self.reference_class]
        return full[self._free].ravel()

    # -- evaluation -----------------------------------------------------------

    def loss(self, w):
        """Objective value ``f(w)`` (float)."""
        return self._pass(w, need_grad=False)[0]

    def losses(self, ws):
        """Objective values at several points, ``[f(w) for w in ws]``, as an ndarray of shape (len(ws),).

        On the fused path the data are read once per group of points (as
        many as keep their coefficients within half of L2), each block of
        rows making every point's logits while it is in cache: the epochs of
        an SGD run are scored together for about the price of one pass.
        Otherwise, and for a group with a non-finite logit, point by point.

        Examples
        --------
        >>> import numpy as np
        >>> loss = LinearSoftmaxLoss(np.array([[0.0], [1.0]]), np.array([0, 1]), n_classes=2)
        >>> ws = [np.zeros(loss.n_params), np.ones(loss.n_params)]
        >>> np.allclose(loss.losses(ws), [loss.loss(w) for w in ws])
        True
        """
        ws = [np.asarray(w, dtype=np.float64) for w in ws]
        fused = _fused_module()
        if self.blocked or fused is None or not ws or not fused.linear_worthwhile(self.X):
            return np.array([self.loss(w) for w in ws], dtype=np.float64)
        points = [self._unpack64(w) for w in ws]
        sw = self._sw
        per = max(1, _LOSSES_GROUP_BYTES // (self.n_classes * self.n_features * self.X.itemsize))
        out = np.empty(len(ws))
        for g in range(0, len(ws), per):
            group = points[g:g + per]
            data = fused.linear_softmax_losses(
                self.X, self.y, sw, np.stack([c for c, _ in group]), np.stack([b for _, b in group])
            )
            for e, (coef, _) in enumerate(group):
                out[g + e] = self.loss(ws[g + e]) if data is None else self._finish(data[e], None, None, coef, None)[0]
        return out

    def gradient(self, w):
        """Gradient of ``f`` at ``w``, ndarray of shape (n_params,)."""
        return self._pass(w, need_grad=True)[1]

    def loss_gradient(self, w):
        """``(f(w), gradient(w))`` in one pass over the data."""
        f, g, _ = self._pass(w, need_grad=True)
        return f, g

    def hessp(self, w, v):
        """Hessian of ``f`` at ``w`` times the direction ``v`` (never forms the Hessian).

        The probabilities at ``w`` are kept (when ``n_samples * n_classes``
        is at most 2**22), so that the next products at ``w`` make only the
        logits of ``v``; from the first call on, gradient passes keep theirs
        too. :meth:`loss_gradient` alone, as a first-order solver calls it,
        writes nothing but its result.
        """
        v = np.asarray(v, dtype=np.float64)
        if v.shape != (self.n_params,):
            raise ValueError(f"v must have shape ({self.n_params},), got {v.shape}.")
        self._second_order = True
        return self._pass(w, need_grad=False, v=v)[2]

    def hessian(self, w):
        """Dense Hessian of ``f`` at ``w``, ndarray of shape (n_params, n_params).

        Costs ``n_free**2`` weighted Gram matrices; meant for small problems and
        for inference.  Ordering follows the flat layout of ``w``.
        """
        coef, intercept = self._unpack64(w)
        free, d = self._free, self.n_dof
        H = np.zeros((self.n_free, d, self.n_free, d))
        for rows in self._chunks():
            Xc = self._rows(rows)
            P = self._proba(Xc, coef, intercept)[:, free]
            sw = self._sw[rows]
            Xt = Xc.toarray() if sp.issparse(Xc) else np.asarray(Xc, dtype=np.float64)
            if self.fit_intercept:
                Xt = np.hstack([Xt, np.ones((Xt.shape[0], 1))])
            for a in range(self.n_free):
                for c in range(a, self.n_free):
                    r = sw * P[:, a] * ((a == c) - P[:, c])
                    block = Xt.T @ (r[:, None] * Xt)
                    H[a, :, c, :] += block
                    if c != a:
                        H[c, :, a, :] += block.T
        if self.l2_reg_strength:
            pen = np.zeros(d)
            pen[: self.n_features] = self.l2_reg_strength
            for a in range(self.n_free):
                H[a, :, a, :] += np.diag(pen)
        return H.reshape(self.n_params, self.n_params)

    def preconditioner(self, w, *, mass=0.99):
        r"""Block-Jacobi preconditioner of :meth:`hessp` at ``w``: the inverse class blocks.

        The Hessian's diagonal blocks, one per free class ``k``,

        .. math::

            H_{kk} = \frac{1}{S} \sum_i s_i \, p_{ik} (1 - p_{ik}) \,
                     \tilde x_i \tilde x_i^\top + \lambda I ,

        keep what makes the problem ill-conditioned (each class's own weighted
        Gram matrix, tiny for directions only a few uncertain rows see) and drop
        the coupling between classes.  ``M = blockdiag_k(H_kk)`` is built once
        and applied by one batched matrix product per CG step.  For class ``k``
        only the rows carrying the fraction ``mass`` of
        :math:`\sum_i s_i p_{ik}(1-p_{ik}) \lVert \tilde x_i \rVert^2` enter its
        block: near the optimum most rows are sure about most classes, so a
        block costs a fraction of a pass over ``X``.

        In the symmetric coding (no reference class) the Hessian maps the
        directions that add one vector to every class row onto themselves,
        with curvature :math:`\lambda` on the coefficients and 0 on the
        intercept (softmax is shift-invariant).  The preconditioner treats that
        subspace exactly (divides by :math:`\lambda`, or drops it where the
        curvature is 0) and applies the blocks to the rest.

        Parameters
        ----------
        w : ndarray of shape (n_params,)
            Point whose probabilities weight the blocks.
        mass : float, default=0.99
            Fraction of each block's weight kept by the row selection; 1 keeps
            every row with a non-zero weight.

        Returns
        -------
        callable or None
            ``r -> M^{-1} r`` on flat vectors of shape (n_params,); None when the
            blocks would hold more than 2**24 numbers (wide designs: plain CG).

        Examples
        --------
        Two classes at ``w = 0``: both probabilities are 1/2, so each block is
        :math:`G/4` with :math:`G = \frac1n \sum_i \tilde x_i \tilde x_i^\top`, while
        on the directions :math:`(v, -v)` the Hessian (no penalty) is :math:`G/2`:
        the preconditioned Hessian is exactly twice the identity there.

        >>> import numpy as np
        >>> X = np.array([[0.0, 1.0], [1.0, 0.5], [2.0, -1.0], [3.0, 0.0]])
        >>> loss = LinearSoftmaxLoss(X, np.array([0, 1, 0, 1]))
        >>> w = np.zeros(loss.n_params)
        >>> M_inv = loss.preconditioner(w)
        >>> v = np.array([1.0, -2.0, 0.5, -1.0, 2.0, -0.5])
        >>> M_inv(loss.hessp(w, v)).round(12).tolist()
        [2.0, -4.0, 1.0, -2.0, 4.0, -1.0]
        """
        F, d = self.n_free, self.n_dof
        if F * d * d > 1 << 24:
            return None
        return block_preconditioner(self.class_blocks(w, mass=mass), self.n_features, self.l2_reg_strength,
                                    symmetric=self.reference_class is None)

    def class_blocks(self, w, *, mass=0.99):
        r"""The data part of the Hessian's class blocks, ndarray of shape (n_free, n_dof, n_dof).

        Block ``k`` is :math:`\frac{1}{S} \sum_{i \in R_k} s_i p_{ik}(1 - p_{ik})
        \tilde x_i \tilde x_i^\top`, where :math:`R_k` holds the rows carrying
        the fraction ``mass`` of the block's weight (see :meth:`preconditioner`,
        which adds the penalty and inverts them).  Products run in the dtype of
        ``X`` and accumulate in float64.

        >>> import numpy as np
        >>> loss = LinearSoftmaxLoss(np.array([[1.0], [2.0]]), np.array([0, 1]))
        >>> loss.class_blocks(np.zeros(loss.n_params), mass=1.0)[0].tolist()
        [[0.625, 0.375], [0.375, 0.25]]
        """
        F, d = self.n_free, self.n_dof
        blocks = np.zeros((F, d, d))
        for rows, P in self._proba_blocks(w):
            Xc = self._rows(rows)
            weight = self._sw[rows][:, None] * P * (1.0 - P)
            score = weight * (self._row_norms()[rows] + float(self.fit_intercept))[:, None]
            for k in range(F):
                keep = _heaviest(score[:, k], mass)
                for start in range(0, keep.size, self.chunk_size):
                    sub = keep[start : start + self.chunk_size]
                    blocks[k] += self._weighted_gram(Xc, sub, weight[sub, k])
        return blocks

    def _proba_blocks(self, w):
        """Yield ``(rows, P[:, free])``: all rows at once when the probabilities fit the cache size."""
        coef, intercept = self._unpack64(w)
        if self.n_samples * self.n_classes > _PROBA_CACHE_MAX:
            for rows in self._chunks():
                yield rows, self._proba(self._rows(rows), coef, intercept)[:, self._free]
            return
        P = self._fused_cached(w)
        if P is None:
            P = np.concatenate([self._proba(self._rows(r), coef, intercept) for r in self._chunks()])
        yield slice(0, self.n_samples), P[:, self._free]

    def _row_norms(self):
        """Squared Euclidean norm of every row of ``X`` (float64, computed once)."""
        if getattr(self, "_norms", None) is None:
            X = self.X
            if sp.issparse(X):
                self._norms = np.asarray(X.multiply(X).sum(axis=1), dtype=np.float64).ravel()
            else:
                self._norms = np.concatenate(
                    [np.einsum("ij,ij->i", X[r], X[r], dtype=np.float64) for r in self._chunks()]
                )
        return self._norms

    def _weighted_gram(self, Xc, rows, weight):
        """``X~[rows]^T diag(weight) X~[rows]`` in float64, with X~ = [X, 1] when there is an intercept."""
        root = np.sqrt(weight).astype(Xc.dtype)
        if sp.issparse(Xc):
            B = sp.csr_matrix(Xc[rows]).multiply(root[:, None]).tocsr()
            gram = (B.T @ B).toarray()
        else:
            B = Xc[rows]  # a copy: scaled in place
            B *= root[:, None]
            gram = np.asarray(B.T @ B, dtype=np.float64)  # B.T @ B: NumPy calls syrk
        if not self.fit_intercept:
            return gram
        d = self.n_dof
        out = np.empty((d, d))
        out[:-1, :-1] = gram
        col = np.asarray(B.T @ root, dtype=np.float64).ravel()
        out[:-1, -1] = out[-1, :-1] = col
        out[-1, -1] = float(weight.sum())
        return out

    def minibatch_gradient(self, w, rows, counts=None):
        r"""Unbiased estimate of :meth:`gradient` from the rows ``rows`` alone.

        With :math:`B` = ``len(rows)`` and weights rescaled to mean one,
        :math:`s'_i = s_i n / S`:

        .. math::

            \hat g = \frac1B \sum_{i \in \text{rows}} s'_i\, (p_i - y_i) \tilde x_i^\top
                     + \lambda W ,

        whose expectation over a uniformly drawn batch is the full gradient.
        With unit weights this is the plain batch mean.  This is the step
        direction of the ``sgd`` solver.

        ``counts``, an optional float array of length 2, is incremented by the
        sample weight of the rows predicted right (arg-max logit equals the label)
        and by the total weight of the rows: a free running training accuracy.
        """
        if self.blocked or np.size(rows) * self.n_classes > BLOCKED_MIN_BATCH_LOGITS:
            return blocked_minibatch_gradient(self, w, rows, counts)
        coef, intercept = self._unpack64(w)
        rows = np.asarray(rows)
        Xb = self.X[rows]
        Z = self._logits(Xb, coef, intercept)
        Y = self._targets(rows)
        if counts is not None:
            right = np.argmax(Z, axis=1) == np.argmax(Y, axis=1)
            counts[0] += self.sample_weight[rows] @ right
            counts[1] += self.sample_weight[rows].sum()
        R = np.exp(Z - logsumexp(Z, axis=1)[:, None]) - Y
        scale = self.n_samples / (self.sum_sample_weight * rows.size)
        R *= (scale * self.sample_weight[rows])[:, None]
        G = self._xt_dot(Xb, R)
        if self.l2_reg_strength:
            G += self.l2_reg_strength * coef
        return self._pack_free(G, R.sum(axis=0))

    def sgd_epoch(self, w, perm, *, batch_size, learning_rate, momentum=0.0, velocity=None):
        """One epoch of :meth:`minibatch_gradient` steps over ``perm``, fused; or None.

        Updates ``w`` in place exactly as the ``sgd`` solver's loop would (blocks
        of ``batch_size`` entries of ``perm``, ``v = momentum * v + g``,
        ``w -= learning_rate * v``) in one compiled pass whose batches are
        split over threads by features (:func:`softmaxreg._native.sgd_epoch`; the
        same bits for any thread count), and returns how many rows were
        predicted right before their step. Returns None, touching
        nothing, where the kernel does not apply: sparse, small or
        non-contiguous X, a reference class, probability targets, or ``w`` not
        a contiguous vector in X's dtype.
        """
        fused = _fused_module()
        if (
            fused is None
            or self.blocked
            or batch_size * self.n_classes > BLOCKED_MIN_BATCH_LOGITS
            or not fused.linear_worthwhile(self.X)
            or self.reference_class is not None
            or np.ndim(self.y) != 1
            or not isinstance(w, np.ndarray)
            or w.dtype != self.X.dtype
            or not w.flags.c_contiguous
            or (momentum and (velocity is None or velocity.dtype != w.dtype))
        ):
            return None
        return fused.sgd_epoch(
            self.X, self.y, self.sample_weight, w, perm, n_classes=self.n_classes,
            fit_intercept=self.fit_intercept, batch_size=batch_size, learning_rate=learning_rate,
            l2=self.l2_reg_strength, momentum=momentum, velocity=velocity,
        )

    # -- the pass over rows (the one place the speed work replaces) -----------

    def _pass(self, w, need_grad, v=None):
        """Stream ``X`` once in row chunks.

        Returns ``(f, grad, hessp)``; ``f`` is None when ``v`` is given (a
        Hessian-vector product needs only the probabilities), ``grad`` is None
        unless ``need_grad``, ``hessp`` is None unless ``v`` is given.
        """
        if self.blocked:
            return blocked_pass(self, w, need_grad, v)
        fused = self._fused_pass(w, need_grad, v)
        if fused is not None:
            return fused
        coef, intercept = self._unpack64(w)
        K, p = self.n_classes, self.n_features
        want_loss = v is None
        if v is not None:
            v_coef, v_int = self.unpack(v)
        total = 0.0
        G = np.zeros((K, p)) if (need_grad or v is not None) else None
        gb = np.zeros(K) if G is not None else None
        use_cache = v is not None and self.n_samples * K <= _PROBA_CACHE_MAX
        cached = self._cached_proba(w) if use_cache else None
        store = [] if (use_cache and cached is None) else None

        for ci, rows in enumerate(self._chunks()):
            Xc = self._rows(rows)
            sw = self._sw[rows]
            if cached is not None:
                P = cached[ci]
            else:
                Z = self._logits(Xc, coef, intercept)
                lse = logsumexp(Z, axis=1)
                if want_loss:
                    total += float(sw @ self._cross_entropy(Z, lse, rows))
                P = np.exp(Z - lse[:, None]) if (need_grad or v is not None) else None
                if store is not None:
                    store.append(P)
            if v is not None:
                Zv = self._logits(Xc, v_coef, v_int)
                R = P * (Zv - np.sum(P * Zv, axis=1, keepdims=True))
            elif need_grad:
                R = P - self._targets(rows)
            else:
                continue
            R *= sw[:, None]
            G += self._xt_dot(Xc, R)
            gb += R.sum(axis=0)

        if store is not None:
            self._proba_cache = _cache_entry(w, store)
        return self._finish(
            total if want_loss else None, G, gb, coef, v_coef if v is not None else None
        )

    def _finish(self, total, G, gb, coef, v_coef):
        """``(f, grad, hessp)`` from a pass's data terms: add the penalty, pack the free rows.

        ``total`` is the data loss (None when not computed), ``G``/``gb`` the
        data gradient, or the data Hessian-vector product when ``v_coef`` is
        given (None when neither was computed).
        """
        lam = self.l2_reg_strength
        f = grad = hv = None
        if total is not None:
            f = total + 0.5 * lam * float(np.sum(coef * coef)) if lam else total
        if G is not None:
            base = v_coef if v_coef is not None else coef
            if lam:
                G += lam * base
            out = self._pack_free(G, gb)
            if v_coef is not None:
                hv = out
            else:
                grad = out
        return f, grad, hv

    def _fused_pass(self, w, need_grad, v):
        """The same pass as one fused, threaded kernel (``_native.linear_softmax_pass``), or None.

        Dense C-ordered float X of at least ``_native.LINEAR_MIN_ELEMENTS`` entries
        only; X is read once (logits, softmax, row terms and the gradient
        update per row while it is in L1). Falls back (None) without Numba or
        on non-finite logits, where the reference path below decides.

        The probabilities at a point (n_samples x n_classes float64, small
        next to X) let the Hessian-vector products there skip the logits at
        ``w``: the first product at a point stores them, and once products
        have been asked for, each gradient pass stores them too (a Newton
        step's products follow the gradient at the same point). A loss used
        by a first-order solver never writes them.
        """
        fused = _fused_module()
        if fused is None or not fused.linear_worthwhile(self.X):
            return None
        coef, intercept = self._unpack64(w)
        cacheable = self.n_samples * self.n_classes <= _PROBA_CACHE_MAX
        if v is None:
            proba = None
            if cacheable and need_grad and self._second_order:
                proba = self._proba_buffer()
            res = fused.linear_softmax_pass(
                self.X, self.y, self._sw, coef, intercept, loss=True, grad=need_grad, proba=proba
            )
            if proba is not None and res is not None:
                self._fused_proba = _cache_entry(w, proba)
        else:
            v_coef, v_int = self.unpack(np.asarray(v, dtype=np.float64))
            proba = self._fused_cached(w)
            if proba is None and cacheable:
                proba = self._proba_buffer()
                if fused.linear_softmax_pass(self.X, self.y, self._sw, coef, intercept, loss=False,
                                             proba=proba) is None:
                    return None
                self._fused_proba = _cache_entry(w, proba)
            res = fused.linear_softmax_pass(
                self.X, self.y, self._sw, coef, intercept, loss=False, v_coef=v_coef, v_intercept=v_int, proba=proba
            )
        if res is None:
            return None
        total, G, gb = res
        if v is None:
            return self._finish(total, G if need_grad else None, gb, coef, None)
        return self._finish(None, G, gb, coef, v_coef)

    def _proba_buffer(self):
        """The fused path's probability array, marked invalid while a pass overwrites it."""
        cache = self._fused_proba
        self._fused_proba = None
        return np.empty((self.n_samples, self.n_classes)) if cache is None else cache[1]

    def _fused_cached(self, w):
        """The fused path's probabilities at ``w``, or None."""
        return _cached_at(self._fused_proba, w)

    # -- helpers --------------------------------------------------------------

    def _unpack64(self, w):
        w = np.asarray(w, dtype=np.float64)
        return self.unpack(w)

    def _pack_free(self, G, gb):
        if self.fit_intercept:
            G = np.hstack([G, gb[:, None]])
        return np.ascontiguousarray(G[self._free]).ravel()

    def _chunks(self):
        n, c = self.n_samples, self.chunk_size
        if c >= n:
            yield slice(0, n)
            return
        for start in range(0, n, c):
            yield slice(start, min(start + c, n))

    def _rows(self, rows):
        if rows.start == 0 and rows.stop == self.n_samples:
            return self.X
        return self.X[rows]

    def _logits(self, Xc, coef, intercept):
        # Matmul in X's dtype (float32 stays fast), result widened to float64.
        Z = Xc @ coef.T.astype(Xc.dtype, copy=False)
        Z = np.asarray(Z, dtype=np.float64)
        if self.fit_intercept:
            Z += intercept
        return Z

    def _proba(self, Xc, coef, intercept):
        Z = self._logits(Xc, coef, intercept)
        return np.exp(Z - logsumexp(Z, axis=1)[:, None])

    def _xt_dot(self, Xc, R):
        """``R.T @ Xc`` as float64 (K, p), with R (n_chunk, K) float64."""
        if sp.issparse(Xc):
            return np.asarray((Xc.T @ R).T, dtype=np.float64)
        if Xc.dtype == np.float32:
            return (R.astype(np.float32).T @ Xc).astype(np.float64)
        return R.T @ Xc

    def _cross_entropy(self, Z, lse, rows):
        y = self.y[rows]
        if y.ndim == 1:
            return lse - np.take_along_axis(Z, y[:, None], axis=1)[:, 0]
        return lse * y.sum(axis=1) - np.sum(y * Z, axis=1)

    def _targets(self, rows):
        y = self.y[rows]
        if y.ndim == 2:
            return y
        Y = np.zeros((y.shape[0], self.n_classes))
        Y[np.arange(y.shape[0]), y] = 1.0
        return Y

    def _cached_proba(self, w):
        return _cached_at(self._proba_cache, w)


def _cache_entry(w, P):
    """A probability cache ``(w', P)``, ``w'`` a float64 copy of the point ``w``."""
    return np.array(w, dtype=np.float64, copy=True), P


def _cached_at(cache, w):
    """``P`` of a ``(w', P)`` cache when ``w' == w``, else None."""
    if cache is not None and np.array_equal(cache[0], w):
        return cache[1]
    return None


def block_preconditioner(blocks, n_features, l2_reg_strength, *, symmetric):
    r"""``r -> M^{-1} r`` for the block-Jacobi preconditioner built from the class ``blocks``.

    ``blocks`` (n_free, d, d) are the data parts of the Hessian's class blocks
    (:meth:`LinearSoftmaxLoss.class_blocks`); the penalty
    :math:`\lambda` is added to the first ``n_features`` diagonal entries and
    the blocks are inverted in place.  With ``symmetric`` coding (no
    reference class) the directions that add one vector to every class row
    have curvature :math:`\lambda` on the coefficients and 0 on the
    intercept: they are divided by :math:`\lambda` or dropped, and the blocks
    act on the rest.

    >>> import numpy as np
    >>> M_inv = block_preconditioner(np.array([[[2.0]], [[4.0]]]), 1, 0.0, symmetric=False)
    >>> M_inv(np.array([2.0, 2.0])).tolist()
    [1.0, 0.5]
    """
    F, d = blocks.shape[0], blocks.shape[1]
    pen = np.zeros(d)
    pen[:n_features] = l2_reg_strength
    blocks[:, np.arange(d), np.arange(d)] += pen
    inverse = blocks  # inverted in place: one (F, d, d) array in memory
    for k in range(F):
        inverse[k] = _spd_inverse(blocks[k])
    shift_curvature = np.where(pen > 0, pen, np.inf)  # 0 curvature: drop that component

    def apply(r):
        R = np.asarray(r, dtype=np.float64).reshape(F, d)
        if symmetric:
            mean = R.mean(axis=0)
            R = R - mean
        # One BLAS thread: a threaded gemv leaves OpenBLAS's workers spinning
        # through the next fused pass, which then runs 3x slower on 2 cores.
        with threadpool_limits(limits=1, user_api="blas"):
            Z = np.matmul(inverse, R[:, :, None])[:, :, 0]
        if symmetric:
            Z -= Z.mean(axis=0)
            Z += mean / shift_curvature
        return Z.ravel()

    return apply


def _heaviest(score, mass):
    """Indices of the largest entries of ``score`` (>= 0) that hold the fraction ``mass`` of its sum."""
    total = float(score.sum())
    if not total > 0:
        return np.empty(0, dtype=np.intp)
    if mass >= 1.0:
        return np.flatnonzero(score > 0)
    order = np.argsort(score)[::-1]
    n_keep = int(np.searchsorted(np.cumsum(score[order]), mass * total)) + 1
    return np.sort(order[: min(n_keep, score.size)])


def _spd_inverse(A):
    """Inverse of a symmetric positive semi-definite matrix, with a diagonal jitter if it is singular."""
    scale = float(np.mean(np.diag(A))) or 1.0
    jitter = 0.0
    for _ in range(12):
        c, info = scipy.linalg.lapack.dpotrf(A + jitter * np.eye(A.shape[0]), lower=1, clean=1)
        if info == 0:
            inv, info = scipy.linalg.lapack.dpotri(c, lower=1)
            if info == 0:
                return np.tril(inv) + np.tril(inv, -1).T
        jitter = max(10 * jitter, 1e-12 * scale)
    return np.linalg.pinv(A, hermitian=True)
