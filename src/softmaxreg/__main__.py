"""``python -m softmaxreg``: the same as the ``softmaxreg`` command."""

import sys

from softmaxreg.cli import main

if __name__ == "__main__":
    sys.exit(main())
