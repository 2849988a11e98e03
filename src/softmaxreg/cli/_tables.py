"""Tables for the terminal, drawn by ``rich``: aligned columns, a rule under the header.

Numbers are right-aligned and formatted with a shared precision per column;
text is left-aligned. On a terminal the table fits the terminal's width, the
header is bold and the rule is a box line; in a pipe or a CI log (and with
``stream=None``) the output is plain text without colour codes, ASCII when
the stream cannot encode box characters.
"""

from __future__ import annotations

import io
import math
import shutil
import sys

import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table

__all__ = ["format_table", "format_number", "format_matrix", "render"]


def _can_encode(text: str, stream) -> bool:
    enc = getattr(stream, "encoding", None) or "ascii"
    try:
        text.encode(enc)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def format_number(value, digits: int = 4) -> str:
    """A compact, fixed-precision rendering of a number for a table cell.

    >>> format_number(0.123456), format_number(12), format_number(float("nan")), format_number(1.5e-9)
    ('0.1235', '12', 'nan', '1.500e-09')
    """
    if value is None:
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}" if abs(int(value)) >= 10000 else str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        if v != 0 and (abs(v) < 10 ** -(digits - 1) or abs(v) >= 1e7):
            return f"{v:.{digits - 1}e}"
        return f"{v:.{digits}f}"
    return str(value)


_ASCII_HEAD = box.Box("    \n    \n -- \n    \n    \n    \n    \n    \n", ascii=True)
_WIDE = 100_000  # no wrapping where there is no terminal to fit


def _is_terminal(stream) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def render(renderable, stream=None) -> str:
    """``renderable`` as the text ``rich`` would write to ``stream`` (plain when it is no terminal)."""
    tty = _is_terminal(stream)
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=tty, color_system="auto" if tty else None,
                      width=shutil.get_terminal_size().columns if tty else _WIDE,
                      highlight=False, legacy_windows=False)
    console.print(renderable)
    return "\n".join(line.rstrip() for line in buf.getvalue().splitlines())


def format_table(rows, headers, *, digits: int = 4, title: str | None = None,
                 stream=None) -> str:
    """Render ``rows`` (sequences of cells) under ``headers`` as aligned text for ``stream``.

    >>> print(format_table([["accuracy", 0.91], ["log-loss", 0.2764]], ["metric", "value"],
    ...                    stream=None))
    metric     value
    ----------------
    accuracy  0.9100
    log-loss  0.2764
    """
    unicode = stream is not None and _can_encode("─", stream)
    tty = _is_terminal(stream)
    cells = [[format_number(c, digits) for c in row] for row in rows]
    numeric = [
        all(isinstance(row[j], (int, float, np.integer, np.floating)) and not isinstance(row[j], bool)
            for row in rows if j < len(row) and row[j] is not None)
        for j in range(len(headers))
    ]
    table = Table(box=box.SIMPLE_HEAD if unicode else _ASCII_HEAD, show_edge=False, pad_edge=False,
                  padding=(0, 1), collapse_padding=True, header_style="bold" if tty else "")
    for j, h in enumerate(headers):
        table.add_column(str(h), justify="right" if numeric[j] and j > 0 else "left",
                         no_wrap=j == 0)
    for row in cells:
        table.add_row(*row)
    text = render(table, stream)
    return f"{title}\n{text}" if title else text


def format_matrix(matrix, labels, *, corner: str = "true \\ pred", stream=None,
                  max_label: int = 12) -> str:
    """A confusion matrix as a table: rows are true classes, columns predicted.

    >>> print(format_matrix(np.array([[5, 1], [0, 4]]), ["cat", "dog"]))
    true \\ pred  cat  dog
    ---------------------
    cat            5    1
    dog            0    4
    """
    short = [str(s)[:max_label] for s in labels]
    rows = [[short[i]] + [int(v) if float(v).is_integer() else float(v) for v in matrix[i]]
            for i in range(len(short))]
    return format_table(rows, [corner] + short, stream=stream)


def stream_supports_unicode(stream=sys.stdout) -> bool:
    """Whether box and block characters can be written to ``stream``."""
    return _can_encode("─█", stream)
