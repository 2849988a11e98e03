"""The self-contained HTML report (inline SVG charts, PNG images, no network)."""

from ._html import evaluate_model, render_report, write_report
from ._png import encode_png, png_data_uri
from ._svg import heatmap, line_chart, reliability_diagram

__all__ = [
    "write_report",
    "render_report",
    "evaluate_model",
    "encode_png",
    "png_data_uri",
    "line_chart",
    "heatmap",
    "reliability_diagram",
]
