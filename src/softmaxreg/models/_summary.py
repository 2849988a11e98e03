"""The printable coefficient table of an inference result (statsmodels-style)."""

from __future__ import annotations

__all__ = ["InferenceSummary"]


def _ci_labels(alpha):
    return f"[{alpha / 2:g}", f"{1 - alpha / 2:g}]"


def _fmt(v, width=10):
    """Four decimals, or scientific notation where that would keep fewer than 3 digits."""
    if v == 0 or 0.01 <= abs(v) < 1e5:
        s = f"{v:.4f}"
    else:
        s = f"{v:.3e}"
    return s.rjust(width)


class InferenceSummary:
    """Printable coefficient table: one block per class, statsmodels-style.

    ``str(summary)`` (or :meth:`as_text`) is an aligned text table;
    :meth:`to_frame` the same numbers as a DataFrame indexed by
    ``(class, feature)`` with columns ``coef, std err, z, P>|z|`` and the two
    interval bounds.  The summary also reads like that table:
    ``summary["coef"]``, ``summary.loc[(1, "x0")]``, ``len(summary)`` and any
    other DataFrame attribute go to :meth:`to_frame`.
    """

    def __init__(self, result, alpha=0.05):
        alpha = float(alpha)
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {alpha}.")
        self.result = result
        self.alpha = alpha

    def to_frame(self):
        """The table as a pandas DataFrame (see the class docstring)."""
        return self.result.to_frame(self.alpha)

    def as_text(self):
        """The aligned text table (statsmodels' ``Summary.as_text``)."""
        return self.__str__()

    def __getitem__(self, key):
        return self.to_frame()[key]

    def __len__(self):
        return self.result.params.size

    def __getattr__(self, name):
        # Only reached for names the summary lacks: read them off the DataFrame.
        if name.startswith("__") or name in ("result", "alpha"):
            raise AttributeError(name)
        return getattr(self.to_frame(), name)

    def _repr_html_(self):
        return self.to_frame()._repr_html_()

    def __str__(self):
        r = self.result
        lo, hi = _ci_labels(self.alpha)
        cols = ["coef", "std err", "z", "P>|z|", lo, hi]
        ci = r.conf_int(self.alpha)
        names = [str(f) for f in r.features]
        name_w = max(12, max(len(n) for n in names) + 2)
        width = name_w + 11 * len(cols)
        rule, thin = "=" * width, "-" * width
        ref = "none (symmetric)" if r.reference_class is None else repr(r.reference_class)
        meta = [
            ("Observations:", "-" if r.n_obs is None else f"{r.n_obs:g}"),
            ("Classes:", "-" if r.n_classes is None else str(r.n_classes)),
            ("Reference class:", ref),
            ("Covariance type:", r.cov_type),
            ("Penalty:", "none" if r.penalty is None else str(r.penalty)),
            ("Log-likelihood:", "-" if r.log_likelihood is None else f"{r.log_likelihood:.4f}"),
            ("Parameters:", str(r.params.size)),
            ("Pseudo R-squ.:", "-" if r.pseudo_rsquared is None else f"{r.pseudo_rsquared:.4f}"),
        ]
        half = width // 2
        lines = ["Softmax regression results".center(width), rule]
        for i in range(0, len(meta), 2):
            left = meta[i][0] + meta[i][1].rjust(half - 2 - len(meta[i][0]))
            right = ""
            if i + 1 < len(meta):
                right = meta[i + 1][0] + meta[i + 1][1].rjust(width - half - len(meta[i + 1][0]))
            lines.append(left.ljust(half) + right)
        lines.append(rule)
        header = "".join(c.rjust(11) for c in cols)
        current = object()
        for j in range(r.params.size):
            if j == 0 or r.classes[j] != current:
                current = r.classes[j]
                if j:
                    lines.append(thin)
                lines.append(f"class = {current}"[: name_w - 1].ljust(name_w) + header)
                lines.append(thin)
            p = r.pvalues[j]
            row = [
                _fmt(r.params[j]),
                _fmt(r.bse[j]),
                f"{r.zvalues[j]:.3f}".rjust(10),
                f"{p:.3f}".rjust(10),
                _fmt(ci[j, 0]),
                _fmt(ci[j, 1]),
            ]
            lines.append(names[j].ljust(name_w) + "".join(" " + c for c in row))
        lines.append(rule)
        if r.penalty == "l2":
            lines.append(
                "Penalized fit: covariance is the inverse penalized Hessian (Laplace "
                "approximation); intervals are approximate."
            )
        return "\n".join(lines)

    def __repr__(self):
        return self.__str__()
