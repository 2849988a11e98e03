"""Plain-text tables for the terminal: aligned columns, a rule under the header.

Numbers are right-aligned and formatted with a shared precision per column;
text is left-aligned. Box characters are used when the stream can encode
them, ASCII otherwise.
"""

from __future__ import annotations

import math
import sys

import numpy as np

__all__ = ["format_table", "format_number", "format_matrix"]


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


def format_table(rows, headers, *, digits: int = 4, title: str | None = None,
                 stream=None) -> str:
    """Render ``rows`` (sequences of cells) under ``headers`` as aligned text.

    >>> print(format_table([["accuracy", 0.91], ["log-loss", 0.2764]], ["metric", "value"],
    ...                    stream=None))
    metric    value
    --------  ------
    accuracy  0.9100
    log-loss  0.2764
    """
    stream = stream if stream is not None else None
    rule_char = "─" if stream is not None and _can_encode("─", stream) else "-"
    cells = [[format_number(c, digits) for c in row] for row in rows]
    numeric = [
        all(isinstance(row[j], (int, float, np.integer, np.floating)) and not isinstance(row[j], bool)
            for row in rows if j < len(row) and row[j] is not None)
        for j in range(len(headers))
    ]
    widths = [len(str(h)) for h in headers]
    for row in cells:
        for j, c in enumerate(row):
            widths[j] = max(widths[j], len(c))

    def line(values):
        out = []
        for j, v in enumerate(values):
            out.append(v.rjust(widths[j]) if numeric[j] and j > 0 else v.ljust(widths[j]))
        return "  ".join(out).rstrip()

    lines = []
    if title:
        lines.append(title)
    lines.append(line([str(h) for h in headers]))
    lines.append("  ".join(rule_char * w for w in widths))
    lines.extend(line(row) for row in cells)
    return "\n".join(lines)


def format_matrix(matrix, labels, *, corner: str = "true \\ pred", stream=None,
                  max_label: int = 12) -> str:
    """A confusion matrix as a table: rows are true classes, columns predicted.

    >>> print(format_matrix(np.array([[5, 1], [0, 4]]), ["cat", "dog"]))
    true \\ pred  cat  dog
    -----------  ---  ---
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
