"""Inline SVG charts for the report: line charts, heatmaps, reliability diagrams.

Each function returns an ``<svg>`` element as a string, sized in CSS pixels
with a ``viewBox`` so it scales with the page. Text is escaped; colours come
from a small fixed palette readable in print and by colour-blind readers
(Okabe-Ito).
"""

from __future__ import annotations

import math
from html import escape

import numpy as np

__all__ = ["line_chart", "heatmap", "reliability_diagram", "nice_ticks"]

PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000"]
_FONT = 'font-family="system-ui, -apple-system, Segoe UI, sans-serif"'


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering [lo, hi] (steps 1, 2, 5 x 10^k).

    >>> nice_ticks(0, 1), nice_ticks(0.31, 0.52, 4)
    ([0.0, 0.2, 0.4, 0.6, 0.8, 1.0], [0.35, 0.4, 0.45, 0.5])
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    if hi <= lo:
        hi = lo + (abs(lo) if lo else 1.0)
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))

    def count(step):
        return math.floor(hi / step + 1e-9) - math.ceil(lo / step - 1e-9) + 1

    # the round step whose number of ticks is closest to n (ties: the coarser)
    step = min((m * mag for m in (10, 5, 2, 1)), key=lambda st: abs(count(st) - n))
    first = math.ceil(lo / step - 1e-9) * step
    ticks = []
    t = first
    while t <= hi + 1e-9 * step:
        ticks.append(round(t, 12))
        t += step
    return ticks


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e4 or a < 1e-3:
        return f"{v:.0e}"
    return f"{v:.6g}"


def _svg_open(width, height, label):
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-label="{escape(label)}" {_FONT} '
            f'font-size="12">')


def line_chart(series: dict, *, xlabel: str, ylabel: str, title: str = "", log_y: bool = False,
               width: int = 520, height: int = 300) -> str:
    """A line chart of ``{name: (x, y)}`` with axes, ticks and a legend.

    ``log_y`` plots :math:`\\log_{10} y` (labelled with the values) for curves
    that fall over orders of magnitude.
    """
    left, right, top, bottom = 64, 16, 28 if title else 12, 44
    pw, ph = width - left - right, height - top - bottom
    clean = {}
    for name, (x, y) in series.items():
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        ok = np.isfinite(x) & np.isfinite(y) & ((y > 0) if log_y else True)
        if ok.any():
            clean[name] = (x[ok], np.log10(y[ok]) if log_y else y[ok])
    parts = [_svg_open(width, height, title or ylabel)]
    if title:
        parts.append(f'<text x="{left}" y="16" font-weight="600">{escape(title)}</text>')
    if not clean:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="#666">no data</text></svg>')
        return "".join(parts)
    xs = np.concatenate([v[0] for v in clean.values()])
    ys = np.concatenate([v[1] for v in clean.values()])
    x0, x1 = float(xs.min()), float(xs.max())
    y0, y1 = float(ys.min()), float(ys.max())
    if x1 == x0:
        x1 = x0 + 1
    pad = (y1 - y0) * 0.05 or (abs(y0) * 0.05 or 0.5)
    y0, y1 = y0 - pad, y1 + pad

    def px(v):
        return left + (v - x0) / (x1 - x0) * pw

    def py(v):
        return top + (1 - (v - y0) / (y1 - y0)) * ph

    parts.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>')
    for t in nice_ticks(y0, y1, 5):
        yy = py(t)
        lab = _fmt(10 ** t) if log_y else _fmt(t)
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#e3e3e3"/>'
                     f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end" fill="#444">{lab}</text>')
    for t in nice_ticks(x0, x1, 6):
        xx = px(t)
        parts.append(f'<line x1="{xx:.1f}" x2="{xx:.1f}" y1="{top + ph}" y2="{top + ph + 4}" stroke="#888"/>'
                     f'<text x="{xx:.1f}" y="{top + ph + 17}" text-anchor="middle" fill="#444">{_fmt(t)}</text>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 6}" text-anchor="middle">{escape(xlabel)}</text>')
    parts.append(f'<text transform="translate(14 {top + ph / 2}) rotate(-90)" text-anchor="middle">'
                 f'{escape(ylabel)}{" (log scale)" if log_y else ""}</text>')
    longest = max(len(str(name)) for name in clean)
    parts.append(f'<rect x="{left + pw - 40 - 6.5 * longest:.1f}" y="{top + 2}" width="{38 + 6.5 * longest:.1f}" '
                 f'height="{16 * len(clean) + 4}" fill="#fff" fill-opacity="0.85"/>')
    for i, (name, (x, y)) in enumerate(clean.items()):
        colour = PALETTE[i % len(PALETTE)]
        pts = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in zip(x, y))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{pts}"/>')
        if len(x) <= 30:
            parts.extend(f'<circle cx="{px(a):.1f}" cy="{py(b):.1f}" r="2.5" fill="{colour}"/>'
                         for a, b in zip(x, y))
        ly = top + 14 + 16 * i
        lx = left + pw - 34 - 6.5 * longest  # legend box sized to the longest name
        parts.append(f'<line x1="{lx:.1f}" x2="{lx + 20:.1f}" y1="{ly - 4}" y2="{ly - 4}" '
                     f'stroke="{colour}" stroke-width="2"/>'
                     f'<text x="{lx + 25:.1f}" y="{ly}">{escape(str(name))}</text>')
    parts.append("</svg>")
    return "".join(parts)


def heatmap(matrix, labels, *, title: str = "", xlabel: str = "predicted", ylabel: str = "true",
            cell: int = 40) -> str:
    """A confusion-matrix heatmap: colour by row share (recall), counts printed.

    Rows are true classes, columns predicted classes; the diagonal holds the
    correct predictions.
    """
    m = np.asarray(matrix, dtype=float)
    k = m.shape[0]
    labels = [str(s) for s in labels]
    short = [s if len(s) <= 14 else s[:13] + "…" for s in labels]
    left = 16 + 7 * max(len(s) for s in short) + 24
    top = (28 if title else 8) + 7 * max(len(s) for s in short) + 16
    width, height = left + k * cell + 16, top + k * cell + 36
    rows = m.sum(axis=1, keepdims=True)
    share = np.divide(m, rows, out=np.zeros_like(m), where=rows > 0)
    parts = [_svg_open(width, height, title or "confusion matrix")]
    if title:
        parts.append(f'<text x="8" y="16" font-weight="600">{escape(title)}</text>')
    fs = max(8, min(12, cell // 3))
    for i in range(k):
        parts.append(f'<text x="{left - 6}" y="{top + i * cell + cell / 2 + 4}" text-anchor="end">'
                     f'<title>{escape(labels[i])}</title>{escape(short[i])}</text>')
        cx = left + i * cell + cell / 2
        parts.append(f'<text transform="translate({cx + 4} {top - 6}) rotate(-60)">'
                     f'<title>{escape(labels[i])}</title>{escape(short[i])}</text>')
        for j in range(k):
            s = share[i, j]
            if i == j:
                rgb = (int(255 - s * (255 - 0)), int(255 - s * (255 - 114)), int(255 - s * (255 - 178)))
            else:
                rgb = (int(255 - s * (255 - 213)), int(255 - s * (255 - 94)), int(255 - s * (255 - 0)))
            text_col = "#fff" if s > 0.55 else "#222"
            count = int(m[i, j]) if float(m[i, j]).is_integer() else round(m[i, j], 2)
            parts.append(
                f'<rect x="{left + j * cell}" y="{top + i * cell}" width="{cell}" height="{cell}" '
                f'fill="rgb{rgb}" stroke="#fff"><title>true {escape(labels[i])}, predicted '
                f'{escape(labels[j])}: {count} ({100 * s:.1f}% of the row)</title></rect>'
            )
            if m[i, j]:
                parts.append(f'<text x="{left + j * cell + cell / 2}" y="{top + i * cell + cell / 2 + 4}" '
                             f'text-anchor="middle" font-size="{fs}" fill="{text_col}">{count}</text>')
    parts.append(f'<text x="{left + k * cell / 2}" y="{height - 8}" text-anchor="middle">{escape(xlabel)}</text>')
    parts.append(f'<text transform="translate(12 {top + k * cell / 2}) rotate(-90)" text-anchor="middle">'
                 f'{escape(ylabel)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def reliability_diagram(bins, *, title: str = "", ece: float | None = None,
                        width: int = 320, height: int = 320) -> str:
    """Accuracy against confidence per bin, with the diagonal of perfect calibration.

    ``bins`` has ``lower``, ``upper``, ``confidence``, ``accuracy`` and
    ``count`` arrays (:class:`softmaxreg.metrics.CalibrationBins`). Each bin
    is a bar of height ``accuracy`` over its range; the gap to the diagonal at
    the bin's mean confidence is drawn in orange, and a dot marks
    (confidence, accuracy).
    """
    left, right, top, bottom = 48, 12, 28 if title else 12, 44
    pw, ph = width - left - right, height - top - bottom

    def px(v):
        return left + v * pw

    def py(v):
        return top + (1 - v) * ph

    parts = [_svg_open(width, height, title or "reliability diagram")]
    if title:
        parts.append(f'<text x="{left}" y="16" font-weight="600">{escape(title)}</text>')
    parts.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fafafa" stroke="#ccc"/>')
    for t in nice_ticks(0, 1, 5):
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{py(t):.1f}" y2="{py(t):.1f}" stroke="#e3e3e3"/>'
                     f'<text x="{left - 6}" y="{py(t) + 4:.1f}" text-anchor="end" fill="#444">{_fmt(t)}</text>'
                     f'<text x="{px(t):.1f}" y="{top + ph + 16}" text-anchor="middle" fill="#444">{_fmt(t)}</text>')
    total = float(np.sum(bins.count)) or 1.0
    for lo, hi, conf, acc, cnt in zip(bins.lower, bins.upper, bins.confidence, bins.accuracy, bins.count):
        x, w = px(lo), max(px(hi) - px(lo) - 1, 1)
        parts.append(f'<rect x="{x:.1f}" y="{py(acc):.1f}" width="{w:.1f}" height="{py(0) - py(acc):.1f}" '
                     f'fill="#0072B2" fill-opacity="0.75"><title>confidence ({lo:.3f}, {hi:.3f}]: '
                     f'mean confidence {conf:.3f}, accuracy {acc:.3f}, {cnt:g} samples '
                     f'({100 * cnt / total:.1f}%)</title></rect>')
        y_a, y_c = sorted((py(acc), py(conf)))
        if y_c - y_a > 0.5:  # the gap between accuracy and confidence
            parts.append(f'<rect x="{x:.1f}" y="{y_a:.1f}" width="{w:.1f}" height="{y_c - y_a:.1f}" '
                         f'fill="#E69F00" fill-opacity="0.45" stroke="#D55E00" stroke-width="1"/>')
        parts.append(f'<circle cx="{px(conf):.1f}" cy="{py(acc):.1f}" r="2.5" fill="#222"/>')
    parts.append(f'<line x1="{px(0)}" y1="{py(0)}" x2="{px(1)}" y2="{py(1)}" stroke="#444" '
                 f'stroke-dasharray="4 3"/>')
    if ece is not None:
        parts.append(f'<text x="{left + 8}" y="{top + 16}" fill="#222">ECE {ece:.4f}</text>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 8}" text-anchor="middle">confidence (top probability)</text>')
    parts.append(f'<text transform="translate(12 {top + ph / 2}) rotate(-90)" text-anchor="middle">accuracy</text>')
    parts.append("</svg>")
    return "".join(parts)
