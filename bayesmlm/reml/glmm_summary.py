"""Stage 4a, REML/ML: the printable summary of a GLMM fit, in glmer's layout."""

from __future__ import annotations

import numpy as np

from bayesmlm.reml.summary import _num, _table, random_effects_table

__all__ = ["GeneralizedSummary"]


class GeneralizedSummary:
    """Summary of a :class:`~bayesmlm.reml.glmm_results.GeneralizedLikelihoodFit`; print it or read it.

    Attributes
    ----------
    fixed_effects : DataFrame
        Estimate, standard error, Wald z and p, 95% interval.
    random_effects : DataFrame
        Groups, names, variance, std. dev. and correlations, as glmer prints them.
    """

    def __init__(self, fit):
        self.fit = fit
        self.fixed_effects = fit.fixed_effects
        self.random_effects = random_effects_table(fit.varcorr)

    def __str__(self) -> str:
        fit = self.fit
        d, fam = fit.design, fit.family
        how = (
            "Laplace Approximation"
            if fit.method == "Laplace"
            else f"Adaptive Gauss-Hermite Quadrature, nAGQ = {fit.n_agq}"
        )
        family = fam.name if fam.n_dispersion == 0 else f"Negative Binomial({fit.dispersion:.4g})"
        pearson = fit.residuals("pearson").to_numpy()
        quart = np.quantile(pearson, [0, 0.25, 0.5, 0.75, 1])
        lines = [
            f"Generalized linear mixed model fit by maximum likelihood ({how}) [bayesmlm]",
            f" Family: {family}  ( {fam.link.name} )",
            f"Formula: {d.spec.formula}",
            "",
            "     AIC      BIC   logLik deviance df.resid",
            f"{fit.aic:8.1f} {fit.bic:8.1f} {fit.loglik:8.1f} {fit.deviance:8.1f} {fit.df_resid:8d}",
            f"logLik: {fit.loglik:.4f}   df: {fit.n_parameters}",
            "",
            "Scaled (Pearson) residuals:",
            "     Min       1Q   Median       3Q      Max",
            " ".join(f"{v:8.4f}" for v in quart),
            "",
            "Random effects (variances on the link scale):",
            _table(self.random_effects, index=False),
            f"Number of obs: {fit.nobs}, groups: " + ", ".join(f"{g}, {k}" for g, k in fit.n_groups.items()),
            "",
            "Fixed effects (Wald z tests and 95% intervals; standard errors from the "
            f"{fit.estimates.vcov_source}):",
            _table(
                self.fixed_effects.rename(
                    columns={
                        "estimate": "Estimate",
                        "se": "Std. Error",
                        "z": "z value",
                        "p": "Pr(>|z|)",
                        "ci_low": "[0.025",
                        "ci_high": "0.975]",
                    }
                )
            ),
            "",
            f"Converged: {'Yes' if fit.converged else 'No'} ({fit.opt.message})",
        ]
        if fam.n_dispersion:
            lines.insert(7, f"shape (theta) of the negative binomial: {_num(fit.dispersion)}")
        if d.n_dropped:
            lines.append(f"Rows dropped for missing values: {d.n_dropped}")
        if d.aliased:
            lines.append(f"Aliased fixed effects dropped: {', '.join(d.aliased)}")
        if fit.singular:
            lines.append("boundary (singular) fit: see the random effects above")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        return "<pre>" + str(self).replace("&", "&amp;").replace("<", "&lt;") + "</pre>"
