"""The softmax cross-entropy objective over a Dask array: per-chunk passes of the in-memory loss, summed in a tree."""

import contextlib
import threading
import time
import uuid

import numpy as np

from ._linear_softmax import LinearSoftmaxLoss, block_preconditioner
from ._scores import score_outer_products

__all__ = ["DaskLinearSoftmaxLoss", "dask_persist"]

# Partial results summed per node of the reduction tree.
_SPLIT_EVERY = 8
# "auto" persists X when it takes at most this share of the workers' memory.
_PERSIST_SHARE = 0.5
# Tries of one pass when a worker's connection closes under it.
_ATTEMPTS = 4

# On a worker, inside DaskLinearSoftmaxLoss.chunks_kept(): the losses built over
# the persisted chunks, one per chunk, kept from pass to pass so that the
# Hessian-vector products of a CG loop reuse the probabilities that the
# gradient pass at the same point kept (as the in-memory loss does).
_KEPT = {"session": None, "losses": {}}
_KEPT_LOCK = threading.Lock()


class DaskLinearSoftmaxLoss:
    r""":class:`LinearSoftmaxLoss` over a Dask array chunked by rows: one pass over the chunks per call.

    Each chunk :math:`c` (rows :math:`I_c`, weight :math:`S_c = \sum_{i \in I_c} s_i`)
    builds the ordinary in-memory loss, whose fused kernels return the chunk's
    weighted *mean* :math:`f_c`; the chunks' results, scaled by :math:`S_c`, are
    summed in a tree (by each worker over the persisted chunks it holds, then on
    the client; else in a tree of tasks) and divided by :math:`S = \sum_c S_c`
    on the client, which then adds the penalty once:

    .. math::

        f(W, b) = \frac{1}{S} \sum_c S_c f_c(W, b) + \frac{\lambda}{2} \lVert W \rVert_F^2,
        \qquad
        \nabla f = \frac{1}{S} \sum_c S_c \nabla f_c + \lambda (W, 0),

    and the same for :meth:`hessp`, :meth:`hessian` and the preconditioner's
    class blocks.  That is the in-memory objective to rounding: the sums only
    group the rows' terms differently.

    The flat vector ``w`` and its layout are the in-memory loss's (see its
    *Conventions*), and so are :meth:`pack`, :meth:`unpack` and the attributes
    the solvers read: a solver cannot tell the two apart.  ``w`` reaches the
    workers once per call (scattered to all of them under a
    ``distributed.Client``, else one task of the call's graph); ``X`` is never
    copied into a graph.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        Float32 or float64 features in one block of columns (chunked by rows).
    y : dask.array.Array of shape (n_samples,)
        Integer class codes ``0 .. n_classes - 1``, chunked as the rows of ``X``.
    n_classes : int
        Number of classes.
    sample_weight : dask.array.Array of shape (n_samples,), default=None
        Non-negative weights chunked as ``y``; all ones when None.
    fit_intercept : bool, default=True
    l2_reg_strength : float, default=0.0
        :math:`\lambda` above.
    reference_class : int, default=None
        Class code whose row is fixed at zero, or None for symmetric coding.
    sum_sample_weight : float, default=None
        :math:`S` when the caller already has it (else one pass computes it).
    persist : {"auto", True, False}, default="auto"
        Keep ``X``, ``y`` and the weights in the workers' memory after the first
        read (True), re-read them from their source on every pass (False), or
        persist when they take at most half of the workers' memory limits
        (of the available memory without a ``distributed.Client``).

    Examples
    --------
    Two chunks of one row each give the in-memory loss of both rows:

    >>> import numpy as np, dask.array as da
    >>> X, y = np.array([[1.0], [-2.0]]), np.array([1, 0])
    >>> dloss = DaskLinearSoftmaxLoss(da.from_array(X, chunks=1), da.from_array(y, chunks=1), n_classes=2)
    >>> w = np.array([0.5, 0.1, -0.5, 0.2])
    >>> mem = LinearSoftmaxLoss(X, y, n_classes=2)
    >>> bool(np.isclose(dloss.loss(w), mem.loss(w), rtol=1e-14))
    True
    >>> bool(np.allclose(dloss.gradient(w), mem.gradient(w), rtol=1e-14))
    True
    """

    def __init__(
        self,
        X,
        y,
        *,
        n_classes,
        sample_weight=None,
        fit_intercept=True,
        l2_reg_strength=0.0,
        reference_class=None,
        sum_sample_weight=None,
        persist="auto",
    ):
        import dask.array as da

        if not isinstance(X, da.Array) or X.ndim != 2:
            raise TypeError("X must be a 2-D dask.array.Array (n_samples, n_features).")
        if X.dtype not in (np.float32, np.float64):
            raise ValueError(f"X must be float32 or float64, got {X.dtype}; cast it with X.astype(...).")
        if persist not in ("auto", True, False):
            raise ValueError(f"persist must be 'auto', True or False, got {persist!r}.")
        if len(X.chunks[1]) != 1:
            X = X.rechunk({1: -1})
        arrays = [("y", y), ("sample_weight", sample_weight)]
        for name, arr in arrays:
            if arr is None:
                continue
            if not isinstance(arr, da.Array) or arr.ndim != 1:
                raise TypeError(f"{name} must be a 1-D dask.array.Array.")
            if arr.chunks[0] != X.chunks[0]:
                raise ValueError(
                    f"{name} is chunked by rows {arr.chunks[0]} but X by {X.chunks[0]}; give them "
                    f"the same row chunks, e.g. {name}.rechunk(X.chunks[0])."
                )
        self.n_samples, self.n_features = (int(s) for s in X.shape)
        self.n_classes = int(n_classes)
        self.fit_intercept = bool(fit_intercept)
        self.l2_reg_strength = float(l2_reg_strength)
        self.reference_class = None if reference_class is None else int(reference_class)
        # Pack/unpack and the layout are the in-memory loss's: one tiny loss holds them.
        self._layout = LinearSoftmaxLoss(
            np.zeros((1, self.n_features), dtype=X.dtype), np.zeros(1, dtype=np.intp),
            n_classes=self.n_classes, fit_intercept=self.fit_intercept,
            l2_reg_strength=self.l2_reg_strength, reference_class=self.reference_class,
        )
        self.persisted, (X, y, sample_weight) = dask_persist(persist, X, y, sample_weight)
        self.X, self.y, self.sample_weight = X, y, sample_weight
        self._parts = _partitions(X, y, sample_weight)
        self._chunk_futures = _chunk_futures(X, y, sample_weight) if self.persisted else None
        self._by_worker = None
        self._held = []  # the last pass's futures (see _pass_by_worker)
        self._session = None  # set inside chunks_kept()
        self._spec = (self.n_classes, self.fit_intercept, self.reference_class)
        if sum_sample_weight is None:
            sum_sample_weight = float(self.sample_weight.sum().compute()) if sample_weight is not None \
                else float(self.n_samples)
        self.sum_sample_weight = float(sum_sample_weight)
        if not self.sum_sample_weight > 0:
            raise ValueError("sample_weight sums to zero; at least one sample needs weight > 0.")
        self.n_passes = 0

    # -- coefficient layout (the in-memory loss's) -----------------------------

    @property
    def n_free(self):
        """Number of free class rows (``n_classes``, or one fewer with a reference)."""
        return self._layout.n_free

    @property
    def n_dof(self):
        """Parameters per class row: ``n_features + fit_intercept``."""
        return self._layout.n_dof

    @property
    def n_params(self):
        """Length of the flat coefficient vector ``w``."""
        return self._layout.n_params

    @property
    def n_chunks(self):
        """Number of row chunks (partitions) of ``X``."""
        return len(self._parts)

    def partition(self, i):
        """Partition ``i`` in memory: ``(X_i, y_i, sample_weight_i)`` (the weights None when there are none)."""
        import dask

        return dask.compute(*self._parts[i])

    def unpack(self, w):
        """``coef`` (n_classes, n_features) and ``intercept`` (n_classes,) of a flat vector."""
        return self._layout.unpack(w)

    def pack(self, coef, intercept=None):
        """Flat vector ``w`` from ``coef`` and ``intercept`` (inverse of :meth:`unpack`)."""
        return self._layout.pack(coef, intercept)

    # -- evaluation: one pass over the chunks each -------------------------------

    def loss(self, w):
        """Objective value ``f(w)`` (float)."""
        (total,) = self._map_reduce("loss", w)
        return self._finish_loss(total / self.sum_sample_weight, w)

    def gradient(self, w):
        """Gradient of ``f`` at ``w``, ndarray of shape (n_params,)."""
        return self.loss_gradient(w)[1]

    def loss_gradient(self, w):
        """``(f(w), gradient(w))`` in one pass over the chunks."""
        total, g = self._map_reduce("loss_gradient", w)
        S = self.sum_sample_weight
        return self._finish_loss(total / S, w), self._add_penalty(g / S, w)

    def losses(self, ws):
        """Objective values at several points in one pass, ndarray of shape (len(ws),)."""
        ws = np.stack([np.asarray(w, dtype=np.float64) for w in ws])
        (totals,) = self._map_reduce("losses", ws)
        return np.array([self._finish_loss(t / self.sum_sample_weight, w) for t, w in zip(totals, ws)])

    def hessp(self, w, v):
        """Hessian of ``f`` at ``w`` times the direction ``v``, ndarray of shape (n_params,)."""
        v = np.asarray(v, dtype=np.float64)
        if v.shape != (self.n_params,):
            raise ValueError(f"v must have shape ({self.n_params},), got {v.shape}.")
        (hv,) = self._map_reduce("hessp", w, v)
        return self._add_penalty(hv / self.sum_sample_weight, v)

    def hessian(self, w):
        """Dense Hessian of ``f`` at ``w``, ndarray of shape (n_params, n_params) (for inference)."""
        (H,) = self._map_reduce("hessian", w)
        H = H / self.sum_sample_weight
        if self.l2_reg_strength:
            pen = np.zeros((self.n_free, self.n_dof))
            pen[:, : self.n_features] = self.l2_reg_strength
            H[np.diag_indices_from(H)] += pen.ravel()
        return H

    def meat(self, w):
        r"""The sandwich's meat :math:`\sum_i s_i g_i g_i^\top`, ndarray of shape (n_params, n_params).

        :math:`g_i = \operatorname{vec}((p_i - y_i)_{\text{free}} \tilde x_i^\top)`
        is row ``i``'s score in the flat layout of ``w`` (not divided by ``S``).
        """
        (M,) = self._map_reduce("meat", w)
        return M

    def class_counts(self):
        """Sum of the sample weights of each class, ndarray of shape (n_classes,)."""
        (counts,) = self._map_reduce("counts", np.zeros(1))
        return counts

    def preconditioner(self, w, *, mass=0.99):
        """Block-Jacobi preconditioner of :meth:`hessp`, as :meth:`LinearSoftmaxLoss.preconditioner`.

        The class blocks are summed over the chunks, each chunk keeping its
        rows that carry the fraction ``mass`` of the block's weight; returns
        ``r -> M^{-1} r`` on flat vectors, or None when the blocks would hold
        more than 2**24 numbers.
        """
        F, d = self.n_free, self.n_dof
        if F * d * d > 1 << 24:
            return None
        (blocks,) = self._map_reduce("blocks", w, float(mass))
        return block_preconditioner(blocks / self.sum_sample_weight, self.n_features, self.l2_reg_strength,
                                    symmetric=self.reference_class is None)

    @contextlib.contextmanager
    def chunks_kept(self):
        """Within the block, each worker keeps its chunks' losses between passes.

        A Hessian-vector product at the point of the last gradient then reuses
        the probabilities that pass computed, instead of computing them again:
        a CG loop costs one product per step, as in memory.  Applies to data
        persisted under a ``distributed.Client`` (re-read chunks are new
        arrays each pass); the workers drop what they kept when the block ends.
        The solvers of :meth:`SoftmaxRegression.fit` run inside it.
        """
        client = _client()
        if client is None or self._chunk_futures is None or self._session is not None:
            yield self
            return
        self._session = uuid.uuid4().hex
        try:
            yield self
        finally:
            session, self._session = self._session, None
            with contextlib.suppress(Exception):  # a worker that left has nothing to drop
                client.run(_drop_kept, session)

    # -- internals ------------------------------------------------------------------

    def _finish_loss(self, data_loss, w):
        if not self.l2_reg_strength:
            return float(data_loss)
        coef, _ = self.unpack(np.asarray(w, dtype=np.float64))
        return float(data_loss + 0.5 * self.l2_reg_strength * float(np.sum(coef * coef)))

    def _add_penalty(self, g, base):
        if self.l2_reg_strength:
            G = g.reshape(self.n_free, self.n_dof)
            G[:, : self.n_features] += self.l2_reg_strength * np.asarray(base).reshape(G.shape)[:, : self.n_features]
        return g

    def _map_reduce(self, what, w, extra=None):
        """Run ``what`` on every chunk at ``w`` and return the tree sum of the chunks' partial results.

        A worker lost during the pass costs the recomputation of its chunks
        (Dask's lineage); a scatter or gather that meets the lost worker's
        closed connection is tried again, up to ``_ATTEMPTS`` times.
        """
        from concurrent.futures import CancelledError

        w = np.asarray(w, dtype=np.float64)
        for attempt in range(_ATTEMPTS):
            try:
                result = self._pass(what, w, extra)
            except (OSError, CancelledError):
                if attempt == _ATTEMPTS - 1:
                    raise
                time.sleep(0.5 * (attempt + 1))
                continue
            self.n_passes += 1
            return result

    def _pass(self, what, w, extra):
        import dask
        from dask import delayed

        client = _client()
        if client is not None and self._chunk_futures is not None:
            return self._pass_by_worker(client, what, w, extra)
        tag = uuid.uuid4().hex
        if client is not None:
            point = client.scatter((w, extra), broadcast=True, hash=False)
        else:
            point = delayed((w, extra), name=f"softmaxreg-point-{tag}")
        task = delayed(_chunk_partial, pure=True)
        parts = [
            task(Xc, yc, sc, point, what, self._spec, dask_key_name=f"softmaxreg-{what}-{tag}-{i}")
            for i, (Xc, yc, sc) in enumerate(self._parts)
        ]
        level = 0
        while len(parts) > 1:
            level += 1
            parts = [
                delayed(_sum_partials)(*parts[i : i + _SPLIT_EVERY],
                                       dask_key_name=f"softmaxreg-sum-{tag}-{level}-{i}")
                for i in range(0, len(parts), _SPLIT_EVERY)
            ]
        try:
            (result,) = dask.compute(parts[0])
        finally:
            if client is not None:
                client.cancel(point)
        return result

    def _pass_by_worker(self, client, what, w, extra):
        """The pass over chunks held in the workers' memory: one task per worker sums its own chunks.

        Every task costs a round trip through the scheduler (tens of
        milliseconds on a small machine, about a pass of a laptop-sized
        problem), so the chunks are grouped by the worker that holds them and
        the client adds one partial result per worker: a tree of two levels
        with no transfer of partial results between workers. A worker that
        left takes its group's task elsewhere (``allow_other_workers``) and
        the grouping is looked up again on the next pass.
        """
        tag = uuid.uuid4().hex
        point = client.scatter((w, extra), broadcast=True, hash=False)
        futures = []
        try:
            groups = self._groups(client)
            for g, (worker, chunks) in enumerate(groups.items()):
                args = [a for i in chunks for a in self._chunk_futures[i]]
                kept = None if self._session is None else (self._session, tuple(chunks))
                futures.append(client.submit(
                    _worker_partial, point, what, self._spec, kept, *args, key=f"softmaxreg-{what}-{tag}-{g}",
                    workers=None if worker is None else [worker], allow_other_workers=worker is not None,
                    pure=False,
                ))
            # The previous pass's keys are released only now, after this pass's tasks went out: the
            # client sends to the scheduler at most once per 10 ms, and a release sent at the end of a
            # pass would hold back the next pass's tasks by that much.
            self._held = [point] + futures
            parts = client.gather(futures)
        except BaseException:
            self._by_worker = None  # a worker may have left: look the chunks up again
            self._held = []
            client.cancel([point] + futures)
            raise
        return _sum_partials(*parts)

    def _groups(self, client):
        """``{worker address: [chunk indices]}`` of the chunks' holders (cached until a pass fails)."""
        if self._by_worker is None:
            from distributed import wait

            # Chunks still being loaded have no holder yet: group them once they are in memory.
            wait([f for chunk in self._chunk_futures for f in chunk if f is not None])
            holders = client.who_has([f[0] for f in self._chunk_futures])
            groups = {}
            for i, f in enumerate(self._chunk_futures):
                where = holders.get(f[0].key) or [None]
                groups.setdefault(where[0], []).append(i)
            self._by_worker = groups
        return self._by_worker


def _client():
    """The active ``distributed.Client``, or None (Dask's default scheduler then runs the graph)."""
    try:
        from distributed import default_client
    except ImportError:
        return None
    try:
        return default_client()
    except ValueError:
        return None


def dask_persist(persist, X, y, sample_weight=None):
    """``(persisted, (X, y, sample_weight))``: the arrays persisted in the workers' memory or as they were.

    ``persist`` is True or False, or "auto": persist when the arrays take at
    most half of the workers' memory limits together (of the memory available
    without a ``distributed.Client``).

    >>> import dask.array as da
    >>> dask_persist(False, da.zeros((4, 2)), da.zeros(4))[0]
    False
    """
    if persist not in ("auto", True, False):
        raise ValueError(f"persist must be 'auto', True or False, got {persist!r}.")
    if not _should_persist(persist, X, y, sample_weight):
        return False, (X, y, sample_weight)
    import dask

    return True, tuple(dask.persist(X, y, sample_weight))


def _should_persist(persist, X, y, sample_weight):
    if persist != "auto":
        return bool(persist)
    nbytes = X.nbytes + y.nbytes + (0 if sample_weight is None else sample_weight.nbytes)
    client = _client()
    if client is not None:
        workers = client.scheduler_info().get("workers", {})
        limits = [info.get("memory_limit") or 0 for info in workers.values()]
        if not limits or not all(limits):
            return True  # no limit set: memory is the machine's
        return nbytes <= _PERSIST_SHARE * sum(limits)
    try:
        import psutil

        available = psutil.virtual_memory().available
    except ImportError:
        return False
    return nbytes <= _PERSIST_SHARE * available


def _partitions(X, y, sample_weight):
    """The delayed row chunks ``[(X_c, y_c, s_c), ...]`` (``s_c`` None without weights)."""
    Xs = X.to_delayed().ravel().tolist()
    ys = y.to_delayed().ravel().tolist()
    ss = sample_weight.to_delayed().ravel().tolist() if sample_weight is not None else [None] * len(Xs)
    return list(zip(Xs, ys, ss))


def _chunk_futures(X, y, sample_weight):
    """``[(X_c, y_c, s_c), ...]`` as the futures of persisted arrays, or None when they are not all futures
    (persisted without a ``distributed.Client``)."""
    try:
        from distributed import futures_of
    except ImportError:
        return None
    from dask.core import flatten

    columns = []
    for a in (X, y, sample_weight):
        if a is None:
            columns.append(None)
            continue
        keys = list(flatten(a.__dask_keys__()))  # row chunks in order (X has one block of columns)
        held = {f.key: f for f in futures_of(a)}
        if not keys or any(k not in held for k in keys):
            return None
        columns.append([held[k] for k in keys])
    n = len(columns[0])
    return [(columns[0][i], columns[1][i], None if columns[2] is None else columns[2][i]) for i in range(n)]


def _worker_partial(point, what, spec, kept, *arrays):
    """The sum of :func:`_chunk_partial` over the chunks ``arrays = (X_0, y_0, s_0, X_1, ...)`` (on a worker).

    ``kept`` is ``(session, chunk indices)`` inside :meth:`DaskLinearSoftmaxLoss.chunks_kept`, else None.
    """
    parts = []
    for j in range(0, len(arrays), 3):
        key = None if kept is None else (kept[0], kept[1][j // 3])
        parts.append(_chunk_partial(*arrays[j : j + 3], point, what, spec, kept=key))
    return _sum_partials(*parts)


def _drop_kept(session):
    """Forget the chunk losses of ``session`` (run on every worker when a fit ends)."""
    with _KEPT_LOCK:
        if _KEPT["session"] == session:
            _KEPT["session"], _KEPT["losses"] = None, {}


def _chunk_loss(X, y, s, spec, kept):
    """The in-memory loss over one chunk; kept on the worker under ``kept = (session, chunk)`` when given."""
    n_classes, fit_intercept, reference_class = spec

    def build():
        return LinearSoftmaxLoss(
            X, y, n_classes=n_classes, sample_weight=s, fit_intercept=fit_intercept,
            reference_class=reference_class,
        )

    if kept is None:
        return build()
    session, chunk = kept
    with _KEPT_LOCK:
        if _KEPT["session"] != session:  # a new fit: what an earlier one left is dropped
            _KEPT["session"], _KEPT["losses"] = session, {}
        entry = _KEPT["losses"].get(chunk)
    # The same persisted array as last pass, else (recomputed after a fault) a fresh loss.
    if entry is not None and entry[0] is X:
        return entry[1]
    loss = build()
    with _KEPT_LOCK:
        if _KEPT["session"] == session:
            _KEPT["losses"][chunk] = (X, loss)
    return loss


def _chunk_partial(X, y, sw, point, what, spec, kept=None):
    """One chunk's partial results, as a tuple of arrays, scaled by the chunk's weight (runs on a worker)."""
    w, extra = point
    n_classes, fit_intercept, reference_class = spec
    source = X
    X = np.ascontiguousarray(X)
    y = np.asarray(y)
    n = X.shape[0]
    s = np.ones(n) if sw is None else np.asarray(sw, dtype=np.float64)
    S = float(s.sum())
    if what == "counts":
        return (np.bincount(y.astype(np.intp), weights=s, minlength=n_classes).astype(np.float64),)
    if n == 0 or not S > 0:
        return _zeros(what, w, extra, n_classes, X.shape[1], fit_intercept, reference_class)
    loss = _chunk_loss(X, y, s, spec, None if kept is None or X is not source else kept)
    if what == "loss":
        return (S * loss.loss(w),)
    if what == "loss_gradient":
        f, g = loss.loss_gradient(w)
        return (S * f, S * g)
    if what == "losses":
        return (S * loss.losses(list(w)),)
    if what == "hessp":
        return (S * loss.hessp(w, extra),)
    if what == "hessian":
        return (S * loss.hessian(w),)
    if what == "meat":
        return (_chunk_meat(loss, w),)
    if what == "blocks":
        return (_chunk_blocks(loss, w, extra),)
    raise ValueError(f"unknown chunk operation {what!r}")


def _zeros(what, w, extra, n_classes, n_features, fit_intercept, reference_class):
    n_free = n_classes - (reference_class is not None)
    d = n_features + int(fit_intercept)
    q = n_free * d
    if what == "loss":
        return (0.0,)
    if what == "loss_gradient":
        return (0.0, np.zeros(q))
    if what == "losses":
        return (np.zeros(len(w)),)
    if what == "hessp":
        return (np.zeros(q),)
    if what in ("hessian", "meat"):
        return (np.zeros((q, q)),)
    return (np.zeros((n_free, d, d)),)


def _sum_partials(*parts):
    """Elementwise sum of tuples of partial results."""
    return tuple(sum(values[1:], values[0]) for values in zip(*parts))


def _chunk_meat(loss, w):
    return score_outer_products(loss, *loss.unpack(np.asarray(w, dtype=np.float64)))


def _chunk_blocks(loss, w, mass):
    return loss.sum_sample_weight * loss.class_blocks(w, mass=mass)
