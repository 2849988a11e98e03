"""The HTML report: one self-contained file, readable offline.

Everything is inline: CSS in a ``<style>`` element, charts as SVG, images as
``data:`` PNG URIs, and one small script that only records, in the page
itself, whether every image decoded (``#render-check``; the browser test
reads it). Nothing is fetched from the network.

Sections: headline metrics; training curves; confusion-matrix heatmap;
reliability diagrams before and after calibration; per-class precision,
recall and F1; each class's weights drawn as an image (image data) or the
coefficient table, with standard errors when stored (tabular data); the
model's parameters and provenance.
"""

from __future__ import annotations

import datetime as _dt
import os
from html import escape

import numpy as np
import pandas as pd

from ..io import ModelBundle, atomic_write
from ..metrics import (
    accuracy,
    brier_score,
    confusion_matrix,
    expected_calibration_error,
    log_loss,
    precision_recall_fscore,
)
from ._png import diverging_rgb, png_data_uri
from ._svg import heatmap, line_chart, reliability_diagram

__all__ = ["write_report", "render_report", "evaluate_model"]


def evaluate_model(bundle: ModelBundle, Z, y, *, calibrated=True, n_bins=15) -> dict:
    """Metrics of ``bundle`` on already-transformed features ``Z`` with labels ``y``.

    Returns
    -------
    dict
        ``accuracy``, ``log_loss``, ``brier``, ``ece`` (top-label, 15 equal-width
        bins), ``bins`` (the reliability diagram's bins), ``confusion``
        (rows true, columns predicted, in ``classes_`` order), per-class
        ``precision``, ``recall``, ``f1`` and ``support``, and the ``proba``
        and ``pred`` arrays.
    """
    classes = bundle.classes_
    proba = bundle.predict_proba(Z, calibrated=calibrated, transformed=True)
    pred = classes[np.argmax(proba, axis=1)]
    ece, bins = expected_calibration_error(y, proba, labels=classes, n_bins=n_bins, return_bins=True)
    prf = precision_recall_fscore(y, pred, labels=classes)
    return {
        "accuracy": float(accuracy(y, pred)),
        "log_loss": float(log_loss(y, proba, labels=classes)),
        "brier": float(brier_score(y, proba, labels=classes)),
        "ece": float(ece),
        "bins": bins,
        "confusion": np.asarray(confusion_matrix(y, pred, labels=classes)),
        "precision": np.asarray(prf.precision), "recall": np.asarray(prf.recall),
        "f1": np.asarray(prf.fscore), "support": np.asarray(prf.support),
        "proba": proba, "pred": pred,
    }


_CSS = """
:root { color-scheme: light; --fg:#1d1d1f; --muted:#5f6368; --line:#e0e0e0; --accent:#0072B2; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--fg); background:#fff; }
main { max-width:1120px; margin:0 auto; padding:24px 28px 48px; }
h1 { font-size:26px; margin:0 0 4px; } h2 { font-size:19px; margin:36px 0 8px; border-bottom:1px solid var(--line); padding-bottom:4px; }
.sub { color:var(--muted); margin:0 0 16px; }
.cards { display:flex; flex-wrap:wrap; gap:12px; margin:16px 0; }
.card { border:1px solid var(--line); border-radius:8px; padding:10px 16px; min-width:150px; }
.card .v { font-size:24px; font-weight:600; font-variant-numeric:tabular-nums; }
.card .k { color:var(--muted); font-size:13px; }
.card .d { color:var(--muted); font-size:12px; }
.row { display:flex; flex-wrap:wrap; gap:24px; align-items:flex-start; }
table { border-collapse:collapse; font-variant-numeric:tabular-nums; font-size:14px; }
th, td { padding:4px 10px; border-bottom:1px solid var(--line); text-align:right; }
th.t, td.t { text-align:left; }
th { font-weight:600; background:#f6f6f6; }
td .bar { display:inline-block; height:8px; background:var(--accent); opacity:.55; border-radius:2px; vertical-align:middle; margin-right:6px; }
.weights { display:grid; grid-template-columns:repeat(auto-fill, minmax(120px, 1fr)); gap:14px; }
.weights figure { margin:0; text-align:center; }
.weights img { width:112px; height:112px; image-rendering:pixelated; border:1px solid var(--line); }
.weights figcaption { font-size:13px; }
h3 { font-size:16px; margin:24px 0 4px; }
.note { color:var(--muted); font-size:13px; max-width:820px; }
.scroll { display:inline-block; max-width:100%; max-height:520px; overflow:auto; border:1px solid var(--line); }
code { font-size:13px; background:#f3f3f3; padding:1px 4px; border-radius:3px; }
.legend img { width:160px; height:12px; vertical-align:middle; border:1px solid var(--line); }
"""

_CHECK_SCRIPT = """
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (im) { return !(im.complete && im.naturalWidth > 0); });
  var el = document.getElementById("render-check");
  el.setAttribute("data-images", String(imgs.length));
  el.setAttribute("data-broken", String(bad.length));
  el.setAttribute("data-svgs", String(document.querySelectorAll("svg").length));
  el.setAttribute("data-status", bad.length ? "broken-images" : "ok");
});
"""


def _fmt(v, digits=4):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "–"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    return f"{float(v):.{digits}f}"


def _table(headers, rows, bars=(), css_class="") -> str:
    """An HTML table; numbers right-aligned (``bars``: columns in [0, 1] get a bar), text left."""
    numeric = [bool(rows) and all(isinstance(r[j], (int, float, np.integer, np.floating)) for r in rows)
               for j in range(len(headers))]
    head = "".join(f'<th{"" if numeric[j] else " class=t"}>{escape(str(h))}</th>'
                   for j, h in enumerate(headers))
    out = [f'<table class="{css_class}">' if css_class else "<table>", f"<thead><tr>{head}</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>")
        for j, cell in enumerate(row):
            if isinstance(cell, (float, np.floating)) and j in bars and np.isfinite(cell):
                out.append(f'<td><span class="bar" style="width:{max(0.0, min(1.0, float(cell))) * 60:.0f}px">'
                           f'</span>{_fmt(cell)}</td>')
            elif isinstance(cell, (float, np.floating, int, np.integer)):
                out.append(f"<td>{_fmt(cell)}</td>")
            else:
                out.append(f"<td class=t>{escape(str(cell))}</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _class_labels(bundle) -> list[str]:
    names = bundle.data_info.get("class_names") if bundle.data_info else None
    classes = bundle.classes_.tolist()
    if names and all(isinstance(c, int) and 0 <= c < len(names) for c in classes):
        return [names[c] for c in classes]
    return [str(c) for c in classes]


def _history_series(hist) -> tuple | None:
    if not hist:
        return None
    it = np.asarray(hist.get("iteration", []), dtype=float)
    obj = np.asarray(hist.get("objective", []), dtype=float)
    if it.size == 0 or obj.size != it.size:
        return None
    return it, obj


def _training_section(bundle, extra_histories) -> str:
    meta = bundle.metadata or {}
    est = bundle.estimator
    charts = []
    main = _history_series(meta.get("history"))
    if main is None and getattr(est, "history_", None):
        h = np.asarray(est.history_, dtype=float)
        main = (np.arange(1, h.size + 1), h)
    solver = getattr(est, "solver_", getattr(est, "solver", ""))
    unit = "epoch" if solver == "sgd" or type(est).__name__ == "MLPClassifier" else "iteration"
    if main is not None:
        shift = main[1].min()
        log_ok = main[1].size > 2 and (main[1].max() / max(main[1].min(), 1e-300)) > 20
        charts.append(line_chart({f"{type(est).__name__} ({solver})": main}, xlabel=unit,
                                 ylabel="objective per sample", title="Training objective",
                                 log_y=bool(log_ok and shift > 0)))
        if main[1].size > 3:
            gap = main[1] - main[1].min()
            ok = gap > 0
            if ok.sum() > 2:
                charts.append(line_chart({"objective − final": (main[0][ok], gap[ok])}, xlabel=unit,
                                         ylabel="distance to final objective", title="Convergence",
                                         log_y=True))
    for name, hist in (extra_histories or {}).items():
        s = _history_series(hist)
        if s is not None:
            charts.append(line_chart({name: s}, xlabel="epoch", ylabel="objective per sample",
                                     title=f"Training objective: {name}"))
    if not charts:
        return ""
    facts = []
    if "fit_seconds" in meta:
        facts.append(f"fit in {meta['fit_seconds']:.2f} s")
    if "n_iter" in meta:
        facts.append(f"{meta['n_iter']} {unit}s")
    if "converged" in meta:
        facts.append("converged" if meta["converged"] else "stopped at the iteration limit")
    return ("<h2>Training</h2>" + (f'<p class="sub">{escape(", ".join(facts))}</p>' if facts else "")
            + '<div class="row">' + "".join(charts) + "</div>"
            + '<p class="note">The objective is the per-sample penalized cross-entropy the solver minimizes '
              "(for SGD, measured once per epoch).</p>")


def _weight_images(coef, shape, labels, caption) -> str:
    centred = coef - coef.mean(axis=0, keepdims=True)  # softmax is invariant to a shared shift
    lim = float(np.quantile(np.abs(centred), 0.995)) or 1.0
    figs = []
    for k, lab in enumerate(labels):
        img = diverging_rgb(centred[k].reshape(shape), lim)
        figs.append(f'<figure><img alt="weights of class {escape(lab)}" src="{png_data_uri(img)}">'
                    f"<figcaption>{escape(lab)}</figcaption></figure>")
    legend = diverging_rgb(np.linspace(-lim, lim, 64)[None, :].repeat(4, axis=0), lim)
    return (f'<p class="note">{caption} <span class="legend">−{lim:.3g} <img alt="colour scale" '
            f'src="{png_data_uri(legend)}"> +{lim:.3g}</span></p>'
            f'<div class="weights">{"".join(figs)}</div>')


def _weights_section(bundle, extra_weights=None) -> str:
    est = bundle.estimator
    shape = (bundle.data_info or {}).get("image_shape")
    coef = getattr(est, "coef_", None)
    if coef is None:
        return ""
    coef = np.asarray(coef, dtype=float)
    labels = _class_labels(bundle)
    if shape and int(np.prod(shape)) == coef.shape[1] and (bundle.preprocessor is None
                                                          or not bundle.preprocessor.standardize
                                                          or bundle.preprocessor.kind_ != "frame"):
        scale = 1.0
        if bundle.preprocessor is not None and bundle.preprocessor.standardize:
            scale = bundle.preprocessor.scale_  # back to weights on raw pixels
        parts = ["<h2>Learned weights</h2>", _weight_images(
            coef / scale, shape, labels,
            "Each class's weight per pixel, minus the mean over classes (the softmax is unchanged by "
            "a shift shared by all classes). Red pixels raise the class's score, blue ones lower it.")]
        for name, other in (extra_weights or {}).items():
            other = np.asarray(other, dtype=float)
            if other.shape == coef.shape:
                parts.append(f"<h3>{escape(name)}</h3>")
                parts.append(_weight_images(other / scale, shape, labels, f"The same for {escape(name)}."))
        return "".join(parts)
    rec = (bundle.metadata or {}).get("inference")
    if rec is not None:
        frame = pd.DataFrame({c: rec["data"][c] for c in rec["columns"]})
        rows = frame.values.tolist()
        return ("<h2>Coefficients</h2><p class=\"note\">Estimates with standard errors, z statistics, "
                "p-values and 95% confidence intervals (computed at training time).</p>"
                f'<div class="scroll">{_table(list(frame.columns), rows)}</div>')
    names = bundle.feature_names
    headers = ["feature"] + labels
    rows = [["(intercept)"] + [float(v) for v in np.asarray(est.intercept_, dtype=float)]]
    rows += [[names[j] if j < len(names) else f"x{j}"] + [float(v) for v in coef[:, j]]
             for j in range(coef.shape[1])]
    return ("<h2>Coefficients</h2><p class=\"note\">One column per class (no standard errors were "
            "stored with this model).</p>" + f'<div class="scroll">{_table(headers, rows)}</div>')


def render_report(bundle: ModelBundle, data, *, extra_histories=None, extra_weights=None,
                  title=None) -> str:
    """The report's HTML for ``bundle`` evaluated on the labelled ``data``.

    ``extra_histories`` maps a name to another run's history (``iteration``
    and ``objective`` arrays) to plot; ``extra_weights`` maps a name to
    another model's ``coef_`` to draw beside this one's (image data).
    """
    Z = bundle.transform(data.X, repr(data.name))
    y = np.asarray(data.y)
    classes = bundle.classes_
    if classes.dtype.kind in "iu" and y.dtype.kind == "U":
        y = y.astype(classes.dtype)
    elif classes.dtype.kind == "U" and y.dtype.kind != "U":
        y = y.astype(str)
    unknown = ~np.isin(y, classes)
    if unknown.any():
        raise ValueError(f"{data.name!r}: labels {np.unique(y[unknown])[:3].tolist()} were not seen in "
                         "training; report on data with the training labels")
    calibrated = bundle.calibration is not None
    raw = evaluate_model(bundle, Z, y, calibrated=False)
    cal = evaluate_model(bundle, Z, y, calibrated=True) if calibrated else None
    best = cal or raw
    labels = _class_labels(bundle)
    est = bundle.estimator
    title = title or f"softmaxreg report: {type(est).__name__} on {data.name}"
    created = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")

    def card(key, label, digits=4):
        diff = ""
        if cal is not None and key != "accuracy":
            diff = f'<div class="d">uncalibrated {_fmt(raw[key], digits)}</div>'
        return (f'<div class="card"><div class="k">{label}</div><div class="v">{_fmt(best[key], digits)}</div>'
                f"{diff}</div>")

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="sub">{escape(type(est).__name__)} with {len(classes)} classes and '
        f"{Z.shape[1]:,} features, evaluated on {escape(str(data.name))} ({Z.shape[0]:,} samples); "
        f"trained on {escape(str((bundle.metadata or {}).get('data', '?')))}. Generated {created}.</p>",
        '<div class="cards">', card("accuracy", "accuracy"), card("log_loss", "log-loss"),
        card("brier", "Brier score"), card("ece", "ECE (15 bins)"),
    ]
    if calibrated:
        c = bundle.calibration
        text = f"T = {c['temperature']:.4f}" if c["method"] == "temperature" else "vector scaling"
        parts.append(f'<div class="card"><div class="k">calibration</div><div class="v">{escape(text)}</div>'
                     f'<div class="d">{escape(c["method"])} scaling</div></div>')
    parts.append("</div>")
    parts.append(_training_section(bundle, extra_histories))
    parts.append("<h2>Confusion matrix</h2>")
    parts.append('<p class="note">Rows are true classes, columns predicted ones; colour is the share of '
                 "the row (blue on the diagonal: recall; orange off it: the confusions).</p>")
    cell = 44 if len(classes) <= 12 else max(14, 520 // len(classes))
    parts.append(heatmap(best["confusion"], labels, cell=cell))
    parts.append("<h2>Calibration</h2>")
    rel = [reliability_diagram(raw["bins"], title="before calibration" if calibrated else "reliability",
                               ece=raw["ece"])]
    if calibrated:
        rel.append(reliability_diagram(cal["bins"], title="after calibration", ece=cal["ece"]))
    parts.append('<div class="row">' + "".join(rel) + "</div>")
    parts.append('<p class="note">Bars: accuracy of the samples whose top probability falls in each bin; '
                 "dots: (mean confidence, accuracy); dashed: perfect calibration; orange: the gap that "
                 "ECE averages. " + ("" if calibrated else "This model is not calibrated: run "
                 "<code>softmaxreg calibrate MODEL HELD_OUT_DATA</code> to fit a temperature.") + "</p>")
    parts.append("<h2>Per-class metrics</h2>")
    rows = [[lab, float(p), float(r), float(f), int(s)]
            for lab, p, r, f, s in zip(labels, best["precision"], best["recall"], best["f1"], best["support"])]
    rows.append(["macro average", float(np.mean(best["precision"])), float(np.mean(best["recall"])),
                 float(np.mean(best["f1"])), int(np.sum(best["support"]))])
    parts.append(_table(["class", "precision", "recall", "F1", "support"], rows, bars=(1, 2, 3)))
    parts.append(_weights_section(bundle, extra_weights))
    params = {k: v for k, v in est.get_params().items() if not callable(v)}
    prow = [[k, "None" if v is None else str(v)] for k, v in params.items()]
    parts.append("<h2>Model</h2>")
    parts.append(_table(["parameter", "value"], prow, css_class="kv"))
    if bundle.preprocessor is not None:
        pre = bundle.preprocessor
        enc = [c["name"] for c in pre.columns_ if c["type"] == "categorical"]
        parts.append(f'<p class="note">Preprocessing: {"standardized numeric columns; " if pre.standardize else ""}'
                     f'{"one-hot encoded " + escape(", ".join(enc)) + "; " if enc else ""}'
                     f'{"missing values imputed; " if pre.impute else ""}stored with the model.</p>')
    if bundle.path:
        parts.append(f'<p class="note">Model file: <code>{escape(os.path.basename(bundle.path))}</code></p>')
    parts.append('<div id="render-check" data-status="pending" hidden></div>')
    parts.append(f"<script>{_CHECK_SCRIPT}</script>")
    parts.append("</main></body></html>")
    return "\n".join(p for p in parts if p)


def write_report(bundle: ModelBundle, data, path, *, extra_histories=None, extra_weights=None,
                 title=None) -> str:
    """Render the report and write it atomically to ``path``; returns the path."""
    html = render_report(bundle, data, extra_histories=extra_histories, extra_weights=extra_weights,
                         title=title)
    path = os.fspath(path)
    atomic_write(path, lambda fh: fh.write(html.encode("utf-8")))
    return path
