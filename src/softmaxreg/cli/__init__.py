"""The ``softmaxreg`` command (also ``python -m softmaxreg``); see ``docs/cli.md``."""

from ._main import build_parser, main

__all__ = ["main", "build_parser"]
