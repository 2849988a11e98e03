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


def _header_lines(title, meta, width):
    """The title, a rule and ``meta`` (label, value) pairs two to a line."""
    rule = "=" * width
    half = width // 2
    lines = [title.center(width), rule]
    for i in range(0, len(meta), 2):
        left = meta[i][0] + meta[i][1].rjust(half - 2 - len(meta[i][0]))
        right = ""
        if i + 1 < len(meta):
            right = meta[i + 1][0] + meta[i + 1][1].rjust(width - half - len(meta[i + 1][0]))
        lines.append(left.ljust(half) + right)
    lines.append(rule)
    return lines


def _table_width(names, n_columns):
    name_w = max(12, max((len(str(n)) for n in names), default=0) + 2)
    return name_w, name_w + 11 * n_columns


def _block_lines(classes, names, columns, est, se, z, p, ci, name_w):
    """One block per class of ``estimate, std err, z, P>|z|, lo, hi`` rows."""
    thin = "-" * (name_w + 11 * len(columns))
    header = "".join(c.rjust(11) for c in columns)
    lines, current = [], object()
    for j in range(len(est)):
        if j == 0 or classes[j] != current:
            current = classes[j]
            if j:
                lines.append(thin)
            lines.append(f"class = {current}"[: name_w - 1].ljust(name_w) + header)
            lines.append(thin)
        row = [
            _fmt(est[j]),
            _fmt(se[j]),
            f"{z[j]:.3f}".rjust(10),
            f"{p[j]:.3f}".rjust(10),
            _fmt(ci[j, 0]),
            _fmt(ci[j, 1]),
        ]
        lines.append(str(names[j]).ljust(name_w) + "".join(" " + c for c in row))
    return lines


def _stat(v, fmt="{:.4f}"):
    return "-" if v is None else fmt.format(v)


class InferenceSummary:
    """Printable coefficient table: one block per class, statsmodels-style.

    ``str(summary)`` (or :meth:`as_text`) is an aligned text table under a
    header of model statistics (log-likelihoods, LR chi-square and its
    p-value, pseudo R-squared, AIC, BIC); :meth:`to_frame` the same numbers
    as a DataFrame indexed by ``(class, feature)`` with columns
    ``coef, std err, z, P>|z|`` (``rrr`` in place of ``coef`` with
    ``rrr=True``: relative-risk ratios ``exp(b)``, standard errors
    ``exp(b) se``, exponentiated intervals, as Stata's ``mlogit, rrr``) and
    the two interval bounds.  The summary also reads like that table:
    ``summary["coef"]``, ``summary.loc[(1, "x0")]``, ``len(summary)`` and any
    other DataFrame attribute go to :meth:`to_frame`.
    """

    def __init__(self, result, alpha=0.05, rrr=False):
        alpha = float(alpha)
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must lie in (0, 1), got {alpha}.")
        self.result = result
        self.alpha = alpha
        self.rrr = bool(rrr)

    def to_frame(self):
        """The table as a pandas DataFrame (see the class docstring)."""
        return self.result.to_frame(self.alpha, rrr=self.rrr)

    def as_text(self):
        """The aligned text table (statsmodels' ``Summary.as_text``)."""
        return self.__str__()

    def __getitem__(self, key):
        return self.to_frame()[key]

    def __len__(self):
        return self.result.params.size

    def __getattr__(self, name):
        # Only reached for names the summary lacks: read them off the DataFrame.
        if name.startswith("__") or name in ("result", "alpha", "rrr"):
            raise AttributeError(name)
        return getattr(self.to_frame(), name)

    def _repr_html_(self):
        return self.to_frame()._repr_html_()

    def __str__(self):
        import numpy as np

        r = self.result
        lo, hi = _ci_labels(self.alpha)
        cols = ["rrr" if self.rrr else "coef", "std err", "z", "P>|z|", lo, hi]
        est, se, ci = r.params, r.bse, r.conf_int(self.alpha)
        if self.rrr:
            est, se, ci = np.exp(est), np.exp(est) * se, np.exp(ci)
        name_w, width = _table_width(r.features, len(cols))
        ref = "none (symmetric)" if r.reference_class is None else repr(r.reference_class)
        meta = [
            ("Observations:", _stat(r.n_obs, "{:g}")),
            ("Classes:", _stat(r.n_classes, "{}")),
            ("Reference class:", ref),
            ("Covariance type:", r.cov_type),
            ("Penalty:", "none" if r.penalty is None else str(r.penalty)),
            ("Parameters:", str(r.params.size)),
            ("Log-likelihood:", _stat(r.llf)),
            ("LL-Null:", _stat(r.llnull)),
            ("LR chi2" + ("" if r.llr is None else f"({r.df_model:g})") + ":", _stat(r.llr)),
            ("LLR p-value:", _stat(r.llr_pvalue, "{:.4g}")),
            ("Pseudo R-squ.:", _stat(r.pseudo_rsquared)),
            ("Df residuals:", _stat(r.df_resid, "{:g}")),
            ("AIC:", _stat(r.aic)),
            ("BIC:", _stat(r.bic)),
        ]
        if getattr(r, "converged", None) is not None:
            meta.append(("Converged:", "yes" if r.converged else "no"))
        lines = _header_lines("Softmax regression results", meta, width)
        lines += _block_lines(r.classes, r.features, cols, est, se, r.zvalues, r.pvalues, ci,
                              name_w)
        lines.append("=" * width)
        if self.rrr:
            lines.append("Relative-risk ratios exp(b) against the reference class; std err by "
                         "the delta method, exp(b) * se.")
        if getattr(r, "converged", None) is False:
            lines.append("The fit did not converge: these estimates are not the optimum and their standard "
                         "errors do not hold; refit with a larger max_iter.")
        if r.penalty == "l2":
            lines.append(
                "Penalized fit: covariance is the inverse penalized Hessian (Laplace "
                "approximation); intervals are approximate."
            )
        return "\n".join(lines)

    def __repr__(self):
        return self.__str__()
