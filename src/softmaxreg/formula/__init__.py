"""Model formulas (``"y ~ x1 + np.log(x2) + C(region) + x1:x3"``) for softmax regression.

Built on ``formulaic`` (the optional extra ``softmaxreg[formula]``), imported
only when a formula is used.  :func:`fit` returns a fitted
:class:`~softmaxreg.SoftmaxRegression` whose features are the formula's terms
and which applies the same formula to new data frames.
"""

from ._formula import FormulaSpec, design, fit

__all__ = ["FormulaSpec", "design", "fit"]
