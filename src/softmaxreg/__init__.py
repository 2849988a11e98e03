"""softmaxreg: softmax (multinomial logistic) regression done right.

Exact numerics, analytic gradients, fast training, calibrated probabilities.
The package is a staircase (see docs/design.md): :mod:`softmaxreg.functional`
-> :mod:`softmaxreg.loss` -> :mod:`softmaxreg.solvers` -> :mod:`softmaxreg.models`
-> io / cli / report, with :mod:`softmaxreg.nn` beside the linear tower.
"""

from . import functional

__version__ = "0.1.0"

__all__ = ["functional", "__version__"]
