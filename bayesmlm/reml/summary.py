"""Stage 4a, REML/ML: the printable summary of a fit, in the layout readers of lme4 and statsmodels know."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayesmlm.reml.ddf import normalise_ddf

__all__ = ["LikelihoodSummary", "random_effects_table"]


def _num(x: float, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return ""
    return f"{x:.{digits}g}" if abs(x) >= 1e5 or (x != 0 and abs(x) < 1e-3) else f"{x:.{digits}f}"


def _table(frame: pd.DataFrame, index: bool = True) -> str:
    return frame.to_string(index=index, na_rep="", float_format=lambda v: _num(v))


def random_effects_table(varcorr: pd.DataFrame) -> pd.DataFrame:
    """Lay out the random-effects table as lme4 prints it: groups, names, variance, sd, correlations."""
    rows = []
    for grp, part in varcorr.groupby("grp", sort=False):
        variances = part[part["var2"].isna()]
        corr = part[part["var2"].notna()]
        names = list(variances["var1"]) if grp != "Residual" else [""]
        for k, (_, row) in enumerate(variances.iterrows()):
            entry = {
                "Groups": grp if k == 0 else "",
                "Name": names[k],
                "Variance": row["vcov"],
                "Std.Dev.": row["sdcor"],
            }
            for _, c in corr[corr["var2"] == names[k]].iterrows():
                entry[f"Corr({c['var1']})"] = c["sdcor"]
            rows.append(entry)
    return pd.DataFrame(rows)


class LikelihoodSummary:
    """Summary of a :class:`~bayesmlm.reml.fit.LikelihoodFit`; ``print`` it or read its tables.

    The fixed effects of a REML fit are t tests with Satterthwaite's df (as lmerTest's summary), those
    of an ML fit Wald z tests (as lme4's); ``ddf=`` chooses (``"satterthwaite"``, ``"kenward-roger"``,
    ``"asymptotic"``), and the heading says which.

    Attributes
    ----------
    fixed_effects : DataFrame
        ``estimate``, ``se``, ``df``, ``t``, ``p``, ``ci_low``, ``ci_high`` (``df`` infinite for z tests).
    random_effects : DataFrame
        Groups, names, variance, std. dev. and correlations, as lme4 prints them.
    variance_components : Series
        statsmodels' names (``Subject Var``, ``Subject x Days Cov``, ``Scale``).
    """

    def __init__(self, fit, ddf: str | None = None):
        self.fit = fit
        self.ddf = normalise_ddf(ddf or ("satterthwaite" if fit.method == "REML" else "asymptotic"))
        self.fixed_effects = fit.coef_table(self.ddf)
        self.variance_components = fit.variance_components
        self.random_effects = self._random_table()

    def _random_table(self) -> pd.DataFrame:
        return random_effects_table(self.fit.varcorr)

    def __str__(self) -> str:
        fit = self.fit
        d = fit.design
        crit = "REML criterion at convergence" if fit.method == "REML" else "deviance"
        title = "REML" if fit.method == "REML" else "maximum likelihood"
        if d.holds_rows:
            resid = fit.residuals().to_numpy() / fit.sigma
            quartiles = " ".join(f"{v:8.4f}" for v in np.quantile(resid, [0, 0.25, 0.5, 0.75, 1]))
        else:
            quartiles = "  (not available: the rows stay where the data are)"
        lines = [
            f"Linear mixed model fit by {title} [bayesmlm]",
            f"Formula: {d.spec.formula}",
            "",
            f"     AIC      BIC   logLik {crit}",
            f"{fit.aic:8.1f} {fit.bic:8.1f} {fit.loglik:8.1f} {fit.deviance:.1f}",
            f"logLik: {fit.loglik:.4f}   df: {fit.n_parameters}",
            "",
            "Scaled residuals:",
            "     Min       1Q   Median       3Q      Max",
            quartiles,
            "",
            "Random effects:",
            _table(self.random_effects, index=False),
            f"Number of obs: {fit.nobs}, groups: " + ", ".join(f"{g}, {k}" for g, k in fit.n_groups.items()),
            "",
            "Variance components (statsmodels names):",
            _table(self.variance_components.to_frame("Estimate")),
            "",
            *self._fixed_lines(),
            "",
            f"Converged: {'Yes' if fit.converged else 'No'} (largest projected gradient "
            f"{fit.opt.gradient_norm:.1e} after {fit.opt.n_evaluations} evaluations)",
        ]
        if d.n_dropped:
            lines.append(f"Rows dropped for missing values: {d.n_dropped}")
        if d.aliased:
            lines.append(f"Aliased fixed effects dropped: {', '.join(d.aliased)}")
        if fit.singular:
            lines.append("boundary (singular) fit: see the variance components above")
        return "\n".join(lines)

    def _fixed_lines(self) -> list[str]:
        if self.ddf == "asymptotic":
            heading, stat, p = "Fixed effects (Wald z tests and 95% intervals):", "z", "P>|z|"
            table = self.fixed_effects.drop(columns="df")
        else:
            how = (
                "Satterthwaite's df, as lmerTest"
                if self.ddf == "satterthwaite"
                else "Kenward-Roger df and se"
            )
            heading, stat, p = f"Fixed effects (t tests with {how}; 95% intervals):", "t", "P>|t|"
            table = self.fixed_effects
        names = {
            "estimate": "Coef.",
            "se": "Std.Err.",
            "t": stat,
            "p": p,
            "ci_low": "[0.025",
            "ci_high": "0.975]",
        }
        return [heading, _table(table.rename(columns=names))]

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return "<pre>" + str(self).replace("&", "&amp;").replace("<", "&lt;") + "</pre>"
