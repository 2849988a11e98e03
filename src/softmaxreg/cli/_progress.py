"""A progress bar for training, drawn by ``rich`` on stderr only when it is a terminal.

The estimators call ``callback(info)`` after every iteration (full-batch
solvers) or epoch (SGD) with at least ``iteration``, ``objective`` and
``elapsed``. :class:`TrainingProgress` is such a callback: it redraws one
line, at most ten times a second, showing the count (against the maximum),
the per-sample objective, the training accuracy when it can be computed, the
elapsed time and the rate::

    lbfgs ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 212/1000 it  loss 0.4212  acc 0.8561  0:07  29.8 it/s

The bar fills the terminal's width, in colour. Without a terminal (a pipe, a CI log) or with ``--quiet`` it draws nothing;
with ``-v`` it prints one plain line per iteration instead, which also suits
logs. It records every call, so the training curve can be stored with the
model even when nothing is drawn.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

__all__ = ["TrainingProgress", "format_duration"]


def format_duration(seconds: float) -> str:
    """``m:ss`` (or ``h:mm:ss``) for a duration in seconds.

    >>> format_duration(7.4), format_duration(75), format_duration(3725)
    ('0:07', '1:15', '1:02:05')
    """
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class TrainingProgress:
    """Training callback that draws a progress bar and keeps the history.

    Parameters
    ----------
    total : int or None
        Maximum number of iterations (epochs); the bar is proportional to it.
    unit : str
        "it" for iterations, "epoch" for epochs.
    label : str
        Shown first (e.g. the solver name).
    stream : file, default=sys.stderr
    enabled : bool or None
        Draw the bar; None means "when ``stream`` is a terminal".
    verbose : int
        With ``verbose >= 1`` every call prints a line instead of a bar.
    accuracy : callable, optional
        ``accuracy(info) -> float or None``: training accuracy for the bar
        (estimators that pass their current coefficients make this possible).

    Attributes
    ----------
    records : list of dict
        ``iteration``, ``objective``, ``elapsed`` (and ``accuracy`` when known)
        per call.
    """

    _min_interval = 0.1

    def __init__(self, total=None, unit="it", label="", stream=None, enabled=None,
                 verbose=0, accuracy=None):
        self.total = total
        self.unit = unit
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            isatty = getattr(self.stream, "isatty", None)
            enabled = bool(isatty and isatty())
        self.enabled = enabled and verbose < 1
        self.verbose = verbose
        self.accuracy = accuracy
        self.records: list[dict] = []
        self._last_draw = 0.0
        self._start = time.perf_counter()
        self._bar = None
        self._task = None

    def _progress(self):
        """The rich display, started on the first draw."""
        if self._bar is None:
            console = Console(file=self.stream, force_terminal=True, highlight=False)
            columns = [TextColumn("{task.description}")] if self.label else []
            if self.total:
                columns.append(BarColumn(bar_width=None))
            columns.append(TextColumn("{task.fields[stats]}"))
            self._bar = Progress(*columns, console=console, auto_refresh=False, transient=False,
                                 expand=True)
            self._task = self._bar.add_task(self.label, total=self.total or None, stats="")
            self._bar.start()
        return self._bar

    def __call__(self, info: dict) -> bool:
        rec = {
            "iteration": int(info.get("iteration", len(self.records) + 1)),
            "objective": float(info.get("objective", np.nan)),
            "elapsed": float(info.get("elapsed", time.perf_counter() - self._start)),
        }
        if "words_per_second" in info:  # word-vector training reports its rate in words
            rec["words_per_second"] = float(info["words_per_second"])
        now = time.perf_counter()
        due = now - self._last_draw >= self._min_interval
        if self.accuracy is not None and (self.verbose or (self.enabled and due)):
            acc = self.accuracy(info)
            if acc is not None:
                rec["accuracy"] = float(acc)
        self.records.append(rec)
        if self.verbose >= 1:
            self.stream.write(self._text(rec, bar=False) + "\n")
            self.stream.flush()
        elif self.enabled and due:
            self._draw(rec)
            self._last_draw = now
        return False

    def _text(self, rec: dict, bar: bool) -> str:
        """The counts, loss, accuracy, time and rate (with the label when no bar is drawn)."""
        it, el = rec["iteration"], rec["elapsed"]
        parts = [self.label] if self.label and not bar else []
        count = f"{it}/{self.total}" if self.total else f"{it}"
        parts.append(f"{count} {self.unit}")
        parts.append(f"loss {rec['objective']:.4f}")
        if "accuracy" in rec:
            parts.append(f"acc {rec['accuracy']:.4f}")
        parts.append(format_duration(el))
        if "words_per_second" in rec:
            parts.append(f"{rec['words_per_second']:,.0f} words/s")
        elif el > 0:
            rate = it / el
            parts.append(f"{rate:.1f} {self.unit}/s" if rate >= 1 else f"{el / max(it, 1):.1f} s/{self.unit}")
        return "  ".join(parts)

    def _draw(self, rec: dict) -> None:
        bar = self._progress()
        completed = min(rec["iteration"], self.total) if self.total else rec["iteration"]
        bar.update(self._task, completed=completed, stats=self._text(rec, bar=True))
        bar.refresh()

    def close(self) -> None:
        """Draw the final state and end the line (when drawing at all)."""
        if self.enabled and self.records:
            self._draw(self.records[-1])
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
