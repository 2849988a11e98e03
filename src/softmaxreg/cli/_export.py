"""``softmaxreg export``: a model file as an ONNX graph (see docs/onnx.md)."""

from __future__ import annotations

import sys

from ..io import load_model, save_onnx

__all__ = ["add_export_parser", "cmd_export"]

_DESCRIPTION = """\
Write the model's prediction path (preprocessing, model, calibration) as an
ONNX graph, opset 17. Input "X": float32, one row per sample, the raw columns
in the training order, categorical columns as the codes of their levels
(printed below, and stored in the graph's metadata); outputs "label" and
"probabilities"."""


def add_export_parser(sub, common) -> None:
    """Add the ``export`` sub-command; ``common`` adds the options every command takes."""
    p = sub.add_parser("export", help="export a model to ONNX", description=_DESCRIPTION)
    p.add_argument("model", help="model file (.srm)")
    p.add_argument("-o", "--output", required=True, metavar="ONNX", help="file to write (.onnx)")
    p.add_argument("--uncalibrated", action="store_true",
                   help="leave out the stored calibration (the raw model's probabilities)")
    p.add_argument("--float32", action="store_true",
                   help="compute in float32 inside the graph (default float64, softmaxreg's own precision)")
    common(p)
    p.set_defaults(func=cmd_export)


def cmd_export(args) -> int:
    """Load ``args.model``, write ``args.output``; returns the exit status."""
    from ._commands import _check_output_dir

    out = args.output
    _check_output_dir(out)
    bundle = load_model(args.model)
    save_onnx(bundle, out, calibrated=not args.uncalibrated,
              compute_dtype="float32" if args.float32 else "float64")
    pre = bundle.preprocessor
    names = list(pre.feature_names_in_) if pre is not None else bundle.feature_names
    print(f"wrote {bundle.kind} to {out} (ONNX opset 17): input X float32 of shape (n, {len(names)}), "
          f"outputs label and probabilities ({len(bundle.classes_)} classes)", flush=True)
    if getattr(args, "quiet", False):
        return 0
    for c in (pre.columns_ if pre is not None else []):
        if c["type"] == "categorical":
            levels = ", ".join(f"{i}={v}" for i, v in enumerate(c["categories"][:20]))
            more = ", ..." if len(c["categories"]) > 20 else ""
            print(f"  column {c['name']!r} takes level codes: {levels}{more}", file=sys.stderr)
    if bundle.calibration is not None and not args.uncalibrated:
        print(f"  with {bundle.calibration['method']} calibration", file=sys.stderr)
    return 0
