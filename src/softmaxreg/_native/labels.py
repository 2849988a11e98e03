"""Cross-entropy with integer labels, and its gradient, on rows of logits (loss, per-row losses, gradient).

Long rows go one row at a time (:func:`ce_labels_rows`,
:func:`ce_grad_labels_rows`); short ones by blocks of rows
(:func:`ce_labels_small`, :func:`ce_grad_labels_small`, the IR of
:mod:`.blocks`). Each is a serial kernel run on a range of rows per thread
(:func:`.rows.on_rows`, :func:`.rows.on_blocks`); the loss is summed per
block of rows and the blocks' sums added at the end, so it does not depend
on the number of threads. Rows the kernels cannot decide (a label out of range, a
non-finite max, a NaN) are flagged and recomputed by the caller's reference.
"""

from __future__ import annotations

import numba
import numpy as np

from .blocks import (BLOCK, SMALL_K, _block_grad, _block_label_logit, _rows_grad, _rows_label_logit)
from .mathfn import log1p
from .rows import (_block_count, _block_labels, _block_rows, _block_span, _cast, _flush_block, _load_block,
                   _register_target, _rest, _rest_sum, _result_rows, _rowmax, _rows, _small_block, _store_block,
                   copy_into, on_blocks, on_rows, register_rows, stream_plan)
from .vec import JIT, SHUFFLE_K, store_fence

__all__ = ["cross_entropy_labels"]

# ---------------------------------------------------------------------------
# Cross-entropy with integer labels.
#
# With t_k = (z_k - m) / T and L = log1p(rest), -log softmax(z/T)_k = L - t_k,
# and (module docstring of _cross_entropy) the loss of a counted row is
#     l = sum_k c_k (L - t_k),   c = (1 - eps) w_y e_y + (eps / K) w,
# its gradient (sum_k c_k) p - c, all divided by T. Ignored rows (label ==
# ignore) give 0; a label outside [0, K) flags the row (the reference raises).


@numba.njit(inline="always", **JIT)
def _coef(labels, i, w, has_w, ignore, has_ignore, K, eps):
    """(valid, y, c_y, w_y): the label's coefficient (1 - eps) w_y and weight.

    valid is 1 for a counted label, 0 for an ignored one, -1 for one out of range.
    """
    y = labels[i]
    if has_ignore and y == ignore:
        return 0, 0, 0.0, 0.0
    if y < 0 or y >= K:
        return -1, 0, 0.0, 0.0
    wy = np.float64(w[y]) if has_w else 1.0
    return 1, y, (1.0 - eps) * wy, wy


@numba.njit(inline="always", **JIT)
def _plain_row_ok(y, K, m, rest):
    """Whether a row with plain label ``y`` is computed by the kernel: label in range, finite max, no NaN
    (``rest`` is NaN then). Otherwise the row is flagged and the reference decides (and raises)."""
    return (y >= 0) & (y < K) & np.isfinite(m) & (rest == rest)


_DEN_BLOCK = 4096


@numba.njit(**JIT)
def _label_parts(labels, w, has_w, ignore, has_ignore, K, parts):
    """``parts[b]`` = (sum of w_y over the non-ignored labels, labels out of range) of block b of _DEN_BLOCK."""
    n = labels.shape[0]
    for b in range(parts.shape[0]):
        den = 0.0
        bad = 0.0
        for i in range(b * _DEN_BLOCK, min(n, (b + 1) * _DEN_BLOCK)):
            y = labels[i]
            if not (has_ignore and y == ignore):
                if y < 0 or y >= K:
                    bad += 1.0
                else:
                    den += np.float64(w[y]) if has_w else 1.0
        parts[b, 0] = den
        parts[b, 1] = bad


def label_denominator(labels, w, has_w, ignore, has_ignore, K):
    """Sum of w_y over the non-ignored labels, and how many labels are out of range."""
    n = labels.shape[0]
    parts = np.zeros(((n + _DEN_BLOCK - 1) // _DEN_BLOCK, 2))

    _on_whole_blocks(n, 1, _DEN_BLOCK,
                     lambda r, b: _label_parts(labels[r], w, has_w, ignore, has_ignore, K, parts[b]))
    return parts[:, 0].sum(), parts[:, 1].sum()


def _on_whole_blocks(n, K, block, call):
    """``call(rows, blocks)`` on ranges of rows of K, every one but the last a whole number of ``block``
    rows (``rows`` a ``slice`` of the rows, ``blocks`` of the blocks), one per thread (:func:`.rows.on_rows`)."""
    nblocks = (n + block - 1) // block
    return on_rows(nblocks, K * block, lambda b: call(slice(b.start * block, min(n, b.stop * block)), b))


def _ce_labels(kernel, x, labels, w, has_w, ignore, has_ignore, eps, inv_t, per_row, out, flagged):
    """(sum of losses, denominator) of ``kernel`` (:func:`_ce_labels_rows` or :func:`_ce_labels_small`)
    over whole blocks of BLOCK rows in threads, the blocks' sums added at the end."""
    n = x.shape[0]
    parts = np.zeros(((n + BLOCK - 1) // BLOCK, 2))

    def work(r, b):
        o = out[r] if per_row else out
        kernel(x[r], labels[r], w, has_w, ignore, has_ignore, eps, inv_t, per_row, o, flagged[r], parts[b])

    _on_whole_blocks(n, x.shape[1], BLOCK, work)
    return parts[:, 0].sum(), parts[:, 1].sum()


def ce_labels_rows(x, labels, w, has_w, ignore, has_ignore, eps, inv_t, per_row, out, flagged):
    """Cross-entropy of rows with long K; returns (sum of losses, denominator).

    With ``per_row`` the loss of row i goes to ``out[i]``. Partial sums are
    kept per block of rows (float64) and added at the end.
    """
    return _ce_labels(_ce_labels_rows, x, labels, w, has_w, ignore, has_ignore, eps, inv_t, per_row, out, flagged)


def ce_labels_small(x, labels, w, has_w, ignore, has_ignore, eps, inv_t, per_row, out, flagged):
    """As :func:`ce_labels_rows`, for short C-contiguous rows (see SMALL_K).

    Plain labels (no weight, no ignore_index, no smoothing) take a loop
    without branches: loss = log1p(rest) - t_y.
    """
    return _ce_labels(_ce_labels_small, x, labels, w, has_w, ignore, has_ignore, eps, inv_t, per_row, out, flagged)


@numba.njit(**JIT)
def _ce_labels_rows(x, labels, w, has_w, ignore, has_ignore, eps, inv_t, per_row, out, flagged, parts):
    """:func:`ce_labels_rows` in the calling thread, the sums of block b of BLOCK rows in ``parts[b]``."""
    n, K = x.shape
    epk = eps / K
    inv = x.dtype.type(inv_t)
    nblocks = (n + BLOCK - 1) // BLOCK
    for b in range(nblocks):
        for i in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
            xi = x[i]
            valid, y, cy, wy = _coef(labels, i, w, has_w, ignore, has_ignore, K, eps)
            m = _rowmax(xi)
            if valid < 0 or not np.isfinite(m):
                flagged[i] = True
                continue
            rest = _rest_sum(xi, m, inv)
            if rest != rest:
                flagged[i] = True
                continue
            flagged[i] = False
            loss = 0.0
            if valid == 1:
                L = np.log1p(rest)
                ty = np.float64((xi[y] - m) * inv)
                loss = cy * (L - ty) if cy != 0.0 else 0.0
                if eps > 0.0:
                    acc = 0.0
                    for k in range(K):
                        wk = np.float64(w[k]) if has_w else 1.0
                        tk = np.float64((xi[k] - m) * inv)
                        acc += wk * (L - tk) if wk != 0.0 else 0.0
                    loss += epk * acc
                parts[b, 1] += wy
            parts[b, 0] += loss
            if per_row:
                out[i] = loss


@numba.njit(**JIT)
def _ce_labels_small(x, labels, w, has_w, ignore, has_ignore, eps, inv_t, per_row, out, flagged, parts):
    """:func:`ce_labels_small` in the calling thread, the sums of block b in ``parts[b]``."""
    n, K = x.shape
    xf = x.reshape(-1)
    epk = eps / K
    inv = x.dtype.type(inv_t)
    plain = not has_w and not has_ignore and eps == 0.0
    nblocks = (n + BLOCK - 1) // BLOCK
    T = np.empty(K * BLOCK, dtype=x.dtype)
    U = np.empty(K * BLOCK, dtype=x.dtype)
    m = np.empty(BLOCK, dtype=x.dtype)
    rest = np.empty(BLOCK, dtype=np.float64)
    pad = np.empty(K * BLOCK, dtype=x.dtype)
    tyr = np.empty(BLOCK, dtype=x.dtype)
    yy = np.empty(BLOCK, dtype=np.int64)
    for b in range(nblocks):
        r0 = b * BLOCK
        nb = min(BLOCK, n - r0)
        rows, rb = _block_rows(xf, r0, nb, K, pad)
        btotal = 0.0
        bden = 0.0
        if plain:
            # t_y comes out of the block's IR (a select per class as the
            # terms go by, not a gather from T afterwards), the terms are
            # not stored, log1p runs in the loss loop, and the labels are
            # read and the flags and losses written in place (see
            # ce_grad_labels_small): fewer passes over the block.
            yl = _block_labels(labels, r0, nb, yy)
            if K <= SHUFFLE_K:
                _rows_label_logit(rows, rb * K, m, rest, K, inv, yl, tyr)
            else:
                _load_block(rows, rb, BLOCK, K, T)
                _block_label_logit(T, U, m, rest, K, inv, yl, tyr)
            sp = flagged[r0 : r0 + nb]
            ol = out[r0 : r0 + nb] if per_row else out
            for r in range(nb):
                ok = _plain_row_ok(yl[r], K, m[r], rest[r])
                loss = log1p(rest[r]) - np.float64(tyr[r]) if ok else 0.0
                sp[r] = not ok
                if per_row:
                    ol[r] = loss
                btotal += loss
                bden += 1.0 if ok else 0.0
        else:
            _small_block(rows, rb, K, inv, T, U, m, rest)
            for r in range(nb):
                rest[r] = log1p(rest[r])  # now L = log1p(rest), NaN for a NaN row
            for r in range(nb):
                i = r0 + r
                valid, y, cy, wy = _coef(labels, i, w, has_w, ignore, has_ignore, K, eps)
                if valid < 0 or not (np.isfinite(m[r]) and rest[r] == rest[r]):
                    flagged[i] = True
                    continue
                flagged[i] = False
                loss = 0.0
                if valid == 1:
                    L = rest[r]
                    ty = np.float64((T[y * BLOCK + r] - m[r]) * inv)
                    loss = cy * (L - ty) if cy != 0.0 else 0.0
                    if eps > 0.0:
                        acc = 0.0
                        for k in range(K):
                            wk = np.float64(w[k]) if has_w else 1.0
                            tk = np.float64((T[k * BLOCK + r] - m[r]) * inv)
                            acc += wk * (L - tk) if wk != 0.0 else 0.0
                        loss += epk * acc
                    bden += wy
                btotal += loss
                if per_row:
                    out[i] = loss
        parts[b, 0] = btotal
        parts[b, 1] = bden

def ce_grad_labels_rows(x, labels, w, has_w, ignore, has_ignore, eps, inv_t, scale, out, flagged):
    """out = scale * ((sum c) softmax(x / T) - c) / T for rows with long K, a range of rows per thread."""
    on_rows(x.shape[0], x.shape[1], lambda r: _ce_grad_labels_rows(x[r], labels[r], w, has_w, ignore, has_ignore, eps,
                                                                   inv_t, scale, out[r], flagged[r]))


@numba.njit(**JIT)
def _ce_grad_labels_rows(x, labels, w, has_w, ignore, has_ignore, eps, inv_t, scale, out, flagged):
    """:func:`ce_grad_labels_rows` in the calling thread."""
    n, K = x.shape
    epk = eps / K
    sw = 0.0
    for k in range(K):
        sw += np.float64(w[k]) if has_w else 1.0
    inv = x.dtype.type(inv_t)
    for i in range(n):
        xi = x[i]
        oi = out[i]
        valid, y, cy, wy = _coef(labels, i, w, has_w, ignore, has_ignore, K, eps)
        m = _rowmax(xi)
        if valid < 0 or not np.isfinite(m):
            flagged[i] = True
            continue
        rest = _rest(xi, m, inv, oi, True)
        if rest != rest:
            flagged[i] = True
            continue
        flagged[i] = False
        if valid == 0:
            for k in range(K):
                oi[k] = 0.0
            continue
        f = scale * inv_t
        sc = cy + epk * sw
        a = x.dtype.type(f * sc / (1.0 + rest))
        if eps > 0.0:
            b = x.dtype.type(f * epk)
            if has_w:
                for k in range(K):
                    oi[k] = a * oi[k] - b * w[k]
            else:
                for k in range(K):
                    oi[k] = a * oi[k] - b
        else:
            for k in range(K):
                oi[k] = a * oi[k]
        oi[y] -= x.dtype.type(f * cy)


def ce_grad_labels_small(x, labels, w, has_w, ignore, has_ignore, eps, inv_t, scale, out, flagged, lead, stream,
                         registers):
    """As :func:`ce_grad_labels_rows`, for short C-contiguous rows (see SMALL_K); ``lead``, ``stream`` and
    ``registers`` as in :func:`rows_small` (the register kernel takes plain labels: :func:`_rows_grad`);
    whole blocks go to the threads (:func:`.rows.on_blocks`)."""
    on_blocks(x.shape[0], x.shape[1], lead,
              lambda r, h: _ce_grad_labels_small(x[r], labels[r], w, has_w, ignore, has_ignore, eps, inv_t, scale,
                                                 out[r], flagged[r], h, stream, registers))


@numba.njit(**JIT)
def _ce_grad_labels_small(x, labels, w, has_w, ignore, has_ignore, eps, inv_t, scale, out, flagged, lead, stream,
                          registers):
    """:func:`ce_grad_labels_small` in the calling thread."""
    n, K = x.shape
    xf = x.reshape(-1)
    of = out.reshape(-1)
    epk = eps / K
    sw = 0.0
    for k in range(K):
        sw += np.float64(w[k]) if has_w else 1.0
    inv = x.dtype.type(inv_t)
    zero = x.dtype.type(0.0)
    f = scale * inv_t
    plain = not has_w and not has_ignore and eps == 0.0
    # The smoothing part of each column, f * eps / K * w_k.
    bcol = np.empty(K, dtype=x.dtype)
    for k in range(K):
        bcol[k] = x.dtype.type((np.float64(w[k]) if has_w else 1.0) * (f * epk))
    T = np.empty(K * BLOCK, dtype=x.dtype)
    U = np.empty(K * BLOCK, dtype=x.dtype)
    m = np.empty(BLOCK, dtype=x.dtype)
    rest = np.empty(BLOCK, dtype=np.float64)
    pad = np.empty(K * BLOCK, dtype=x.dtype)
    a = np.zeros(BLOCK, dtype=x.dtype)  # zero on padded rows
    d = np.empty(BLOCK, dtype=x.dtype)
    yy = np.empty(BLOCK, dtype=np.int64)
    obuf = np.empty(K * BLOCK, dtype=x.dtype)
    for b in range(_block_count(n, lead)):
        r0, nb = _block_span(b, lead, n)
        rows, rb = _block_rows(xf, r0, nb, K, pad)
        ignored = False
        whole = nb == BLOCK
        if plain and registers:
            yl = _block_labels(labels, r0, nb, yy)
            dst, d0 = _register_target(of, obuf, r0, K, whole, stream)
            _rows_grad(rows, rb * K, dst, d0, m, rest, K, inv, yl, f)
            sp = flagged[r0 : r0 + nb]
            for r in range(nb):
                sp[r] = not _plain_row_ok(yl[r], K, m[r], rest[r])
            _flush_block(obuf, of, r0, nb, K, whole, stream)
            continue
        # A partial block (the lead, the last) is written to ``pad`` and copied out.
        ob = of[r0 * K : (r0 + BLOCK) * K] if whole else pad
        if plain:
            # The gradient whole in _block_grad's IR, group by group.
            # The labels are read in place (through a slice, so that LLVM
            # can prove its indices in range) and the flags written in
            # place: with the labels staged in scratch, the flags copied
            # out of it and a loop of its own for a U - f [y == j], the
            # kernel took 1.3-1.9x as long on rows streamed from memory.
            yl = _block_labels(labels, r0, nb, yy)
            _load_block(rows, rb, BLOCK, K, T)
            _block_grad(T, U, m, rest, K, inv, yl, f)
            sp = flagged[r0 : r0 + nb]
            for r in range(nb):
                sp[r] = not _plain_row_ok(yl[r], K, m[r], rest[r])
        else:
            _small_block(rows, rb, K, inv, T, U, m, rest)
            for r in range(nb):
                i = r0 + r
                valid, y, cy, wy = _coef(labels, i, w, has_w, ignore, has_ignore, K, eps)
                flagged[i] = valid < 0 or not (np.isfinite(m[r]) and rest[r] == rest[r])
                a[r] = x.dtype.type(f * (cy + epk * sw) / (1.0 + rest[r]))
                d[r] = x.dtype.type(f * cy)
                yy[r] = y
                if valid == 0:
                    yy[r] = -1
                    ignored = True
            # The label's -d in the same vector loop: scalar stores into U
            # just before _store_block's vector loads of it would stall them
            # (no store-to-load forwarding from several small stores).
            for j in range(K):
                Uj = U[j * BLOCK : (j + 1) * BLOCK]
                bj = bcol[j]
                for r in range(BLOCK):
                    Uj[r] = a[r] * Uj[r] - (bj + (d[r] if yy[r] == j else zero))
        _store_block(U, BLOCK, K, ob, stream and whole)
        if ignored:
            for r in range(nb):
                if yy[r] < 0:
                    for k in range(K):
                        ob[r * K + k] = 0.0
        if not whole:
            copy_into(of[r0 * K : (r0 + nb) * K], pad[: nb * K])
    if stream:
        store_fence()

def cross_entropy_labels(x, labels, *, axis, weight, ignore_index, label_smoothing, temperature, reduction, grad,
                         reference, out=None):
    """Cross-entropy (or its gradient, ``grad=True``) for integer class labels.

    ``reference(rows, labels)`` returns ``(per-sample losses or unreduced
    gradient rows, denominator contributions)`` for the flagged rows (class
    axis last); it also raises the reference's errors (labels out of range).
    Returns the loss in float64 for the reductions (the caller casts) or the
    per-sample losses / gradient in ``x``'s dtype; the gradient is written
    into ``out``'s memory when its layout allows (as in :func:`softmax_family`).
    """
    eps = label_smoothing
    rows, shape = _rows(x, axis)
    n, K = rows.shape
    labels = np.ascontiguousarray(labels, dtype=np.int64).reshape(-1)
    has_w = weight is not None
    w = np.ascontiguousarray(weight, dtype=np.float64) if has_w else np.empty(0, np.float64)
    has_ignore = ignore_index is not None
    ignore = np.int64(ignore_index) if has_ignore else np.int64(0)
    inv_t = 1.0 / temperature
    flagged = np.empty(n, dtype=np.bool_)
    if not grad:
        per_row = reduction == "none"
        out = np.empty(n if per_row else 1, dtype=np.float64)
        kern = ce_labels_small if K < SMALL_K else ce_labels_rows
        total, den = kern(rows, labels, w, has_w, ignore, has_ignore, eps, inv_t, per_row, out, flagged)
        if flagged.any():
            idx = np.flatnonzero(flagged)
            loss_s, den_s = reference(rows[idx], labels[idx])
            total += float(np.sum(loss_s, dtype=np.float64))
            den += float(den_s)
            if per_row:
                out[idx] = loss_s
        if per_row:
            return _cast(out.reshape(shape[:-1]), x.dtype)
        if reduction == "sum":
            return total
        return total / den if den > 0 else 0.0
    if has_w or has_ignore:
        den = label_denominator(labels, w, has_w, ignore, has_ignore, K)[0]
    else:
        # Every label counts 1; one out of range flags its row, and the
        # reference then raises.
        den = float(n)
    scale = 1.0 / den if reduction == "mean" and den > 0 else 1.0
    res = _result_rows(rows, x, axis, out)
    if K < SMALL_K:
        ce_grad_labels_small(rows, labels, w, has_w, ignore, has_ignore, eps, inv_t, scale, res, flagged,
                             *stream_plan(res), register_rows(rows))
    else:
        ce_grad_labels_rows(rows, labels, w, has_w, ignore, has_ignore, eps, inv_t, scale, res, flagged)
    if flagged.any():
        idx = np.flatnonzero(flagged)
        g_s, den_s = reference(rows[idx], labels[idx])
        if reduction == "mean":
            # All -inf rows are not counted: the denominator may shrink.
            den_true = den - float(np.sum(_den_of(labels[idx], w, has_w, ignore, has_ignore))) + float(den_s)
            true_scale = 1.0 / den_true if den_true > 0 else 1.0
            if true_scale != scale:
                res *= rows.dtype.type(true_scale / scale)
            g_s = g_s * true_scale
        res[idx] = g_s
    return _cast(np.moveaxis(res.reshape(shape), -1, axis), x.dtype)


def _den_of(labels, w, has_w, ignore, has_ignore):
    """Denominator contributions the kernels assumed for these labels (all in range)."""
    valid = labels != ignore if has_ignore else np.ones(labels.shape, dtype=bool)
    return (w[labels[valid]] if has_w else np.ones(int(valid.sum())))
