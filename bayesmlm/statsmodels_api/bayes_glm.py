"""The statsmodels entry point for GLMMs: ``BinomialBayesMixedGLM`` and ``PoissonBayesMixedGLM``.

Code written for :mod:`statsmodels.genmod.bayes_mixed_glm` runs with only the import changed::

    from bayesmlm import BinomialBayesMixedGLM  # instead of statsmodels.genmod.bayes_mixed_glm

    random = {"herd": "0 + C(herd)"}
    model = BinomialBayesMixedGLM.from_formula("y ~ period", random, data)
    result = model.fit_vb()  # or fit_map()
    print(result.summary())

Each ``vc_formulas`` entry is an independent variance component, as in statsmodels: ``"0 + C(g)"`` is
a random intercept per level of ``g``, ``(1 | g)``; ``"0 + C(g):x"`` an independent random slope,
``(0 + x | g)``. The results carry statsmodels' attribute names: ``fe_mean``, ``fe_sd`` (fixed effects),
``vcp_mean``, ``vcp_sd`` (the log standard deviations of the components), ``vc_mean``, ``vc_sd`` (the
random effects), ``params``, ``random_effects()``, ``predict()``, ``summary()``.

How it differs from statsmodels
-------------------------------
statsmodels approximates the posterior: ``fit_map`` by its mode with a Laplace (Hessian) sd, ``fit_vb``
by a mean-field Gaussian variational family, which ignores posterior correlations and typically
understates the variance components' uncertainty. Here ``fit_map()`` is glmer's Laplace *maximum
likelihood* fit (no priors; ``fe_sd`` the ML standard errors, ``vcp_sd`` NaN, the random effects' modes
and conditional sds), and ``fit_vb()`` samples the exact posterior with NUTS (``fe_sd``, ``vcp_sd`` posterior
sds). The fixed effects get statsmodels' ``Normal(0, fe_p)`` prior; the component sds get bayesmlm's
default ``HalfStudentT(3, 2.5)`` instead of statsmodels' log-normal with scale ``vcp_p`` (not offered).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from bayesmlm.bayes.priors import Normal
from bayesmlm.design.names import sd_names
from bayesmlm.exceptions import FormulaError
from bayesmlm.model import Model

__all__ = ["BayesMixedGLMResults", "BinomialBayesMixedGLM", "PoissonBayesMixedGLM"]

_CATEGORICAL = re.compile(r"^C\((\w+)\)$")


def component_term(name: str, formula: str) -> str:
    """Translate one ``vc_formulas`` entry into an lme4 term: ``"0 + C(g)"`` -> ``"(1 | g)"``.

    Examples
    --------
    >>> component_term("a", "0 + C(Village)"), component_term("b", "0 + C(Village):year")
    ('(1 | Village)', '(0 + year | Village)')
    """
    text = re.sub(r"\s+", "", str(formula))
    body = text[2:] if text.startswith("0+") else None
    parts = body.split(":") if body else []
    groups = [m.group(1) for p in parts if (m := _CATEGORICAL.match(p))]
    others = [p for p in parts if not _CATEGORICAL.match(p)]
    if body is None or len(groups) != 1 or len(others) > 1:
        raise FormulaError(
            f"vc_formulas[{name!r}] = {formula!r}: write a variance component as '0 + C(group)' (a "
            "random intercept per level) or '0 + C(group):x' (an independent random slope of x)"
        )
    return f"(1 | {groups[0]})" if not others else f"(0 + {others[0]} | {groups[0]})"


class _BayesMixedGLM:
    family = ""

    def __init__(self, formula: str, vc_formulas: dict, data: pd.DataFrame, fe_p: float = 2.0):
        if not isinstance(vc_formulas, dict) or not vc_formulas:
            raise FormulaError("vc_formulas must be a dict such as {'herd': '0 + C(herd)'}")
        terms = [component_term(k, v) for k, v in vc_formulas.items()]
        self.vcp_names = list(vc_formulas)
        self.formula = f"{formula} + " + " + ".join(terms)
        self.fe_p = float(fe_p)
        priors = {"Intercept": Normal(0.0, self.fe_p), "b": Normal(0.0, self.fe_p)}
        self.bayesmlm_model = Model(self.formula, data, family=self.family, priors=priors)
        self.fep_names = list(self.bayesmlm_model.design.fixed_names)

    @classmethod
    def from_formula(
        cls, formula: str, vc_formulas: dict, data: pd.DataFrame, vcp_p: float = 1.0, fe_p: float = 2.0
    ):
        """Create the model from a formula and a dict of variance components (statsmodels' signature).

        ``vcp_p`` is accepted for compatibility and not used (see the module docstring).
        """
        return cls(formula, vc_formulas, data, fe_p=fe_p)

    def fit_map(self):
        """Fit by glmer's Laplace maximum likelihood (statsmodels: the posterior mode)."""
        return BayesMixedGLMResults(self, self.bayesmlm_model.fit_ml())

    def fit_vb(self, draws: int = 1000, tune: int = 1000, chains: int = 4, seed: int | None = None, **kwargs):
        """Sample the posterior with NUTS (statsmodels: a variational approximation); see ``Model.fit``."""
        fit = self.bayesmlm_model.fit(draws=draws, tune=tune, chains=chains, seed=seed, **kwargs)
        return BayesMixedGLMResults(self, fit)


class BinomialBayesMixedGLM(_BayesMixedGLM):
    """statsmodels' ``BinomialBayesMixedGLM``: a logistic mixed model (0/1 response)."""

    family = "binomial"


class PoissonBayesMixedGLM(_BayesMixedGLM):
    """statsmodels' ``PoissonBayesMixedGLM``: a Poisson mixed model with log link."""

    family = "poisson"


class BayesMixedGLMResults:
    """statsmodels-shaped results of :meth:`~_BayesMixedGLM.fit_map` or ``fit_vb``.

    Attributes
    ----------
    fe_mean, fe_sd : ndarray
        Fixed effects and their sds (ML standard errors for ``fit_map``).
    vcp_mean, vcp_sd : ndarray
        Log standard deviation of each variance component (``vcp_sd`` NaN for ``fit_map``).
    vc_mean, vc_sd : ndarray
        The random effects (all components' levels in order) and their sds.
    params : ndarray
        ``fe_mean`` then ``vcp_mean``, as statsmodels orders them.
    fit : Fit or GeneralizedLikelihoodFit
        The bayesmlm fit behind it.
    """

    def __init__(self, model: _BayesMixedGLM, fit):
        self.model, self.fit = model, fit
        self.bayes = hasattr(fit, "posterior")
        structure = model.bayesmlm_model.structure
        if self.bayes:
            draws = fit.parameter_draws()
            self.fe_mean = np.array([draws[n].mean() for n in model.fep_names])
            self.fe_sd = np.array([draws[n].std(ddof=1) for n in model.fep_names])
            logs = [np.log(draws[n]).ravel() for n in self._sd_names()]
            self.vcp_mean = np.array([v.mean() for v in logs])
            self.vcp_sd = np.array([v.std(ddof=1) for v in logs])
        else:
            fixed = fit.fixed_effects
            self.fe_mean = fixed["estimate"].to_numpy()
            self.fe_sd = fixed["se"].to_numpy()
            covs = fit.estimates.covariances
            sd_ml = np.concatenate([np.sqrt(np.diag(covs[f.group])) for f in structure.factors])
            with np.errstate(divide="ignore"):  # a variance at the boundary: log sd -inf
                self.vcp_mean = np.log(sd_ml)
            self.vcp_sd = np.full(len(self.vcp_mean), np.nan)
        means, sds = [], []
        for f in structure.factors:  # each factor's levels, term by term
            if self.bayes:
                re = fit.random_effects(f.group)
                for t in f.term_names:
                    part = re.xs(t, level="term")
                    means.append(part["mean"].to_numpy())
                    sds.append(part["sd"].to_numpy())
            else:
                re = fit.random_effects(f.group, conditional_sd=True)
                for t in f.term_names:
                    means.append(re[t].to_numpy())
                    sds.append(re[f"{t}_sd"].to_numpy())
        self.vc_mean = np.concatenate(means).astype(float)
        self.vc_sd = np.concatenate(sds).astype(float)
        self.params = np.concatenate([self.fe_mean, self.vcp_mean])

    def _sd_names(self) -> list[str]:
        return [name for names in sd_names(self.model.bayesmlm_model.structure) for name in names]

    def predict(self, exog: pd.DataFrame | None = None, linear: bool = False) -> np.ndarray:
        """Predicted mean (probability or rate), or the linear predictor with ``linear=True``.

        Like statsmodels, from the fixed effects only (the population-level prediction).
        """
        scale = "link" if linear else "response"
        if self.bayes:
            table = self.fit.predict(exog, include_random=False, scale=scale)
            return table["mean"].to_numpy()
        return np.asarray(self.fit.predict(exog, include_random=False, scale=scale), dtype=float)

    def random_effects(self, term: str | None = None) -> pd.DataFrame:
        """Means and sds of the random effects (columns ``Mean``, ``SD``), statsmodels' layout."""
        return pd.DataFrame({"Mean": self.vc_mean, "SD": self.vc_sd})

    def summary(self) -> pd.DataFrame:
        """Return the fixed effects and log-sds with their sds, as statsmodels' summary table."""
        names = [*self.model.fep_names, *self.model.vcp_names]
        kind = ["M"] * len(self.model.fep_names) + ["V"] * len(self.model.vcp_names)
        return pd.DataFrame(
            {"Type": kind, "Post. Mean": self.params, "Post. SD": np.concatenate([self.fe_sd, self.vcp_sd])},
            index=names,
        )

    def __repr__(self) -> str:
        how = "NUTS" if self.bayes else "Laplace ML"
        return f"<bayesmlm.BayesMixedGLMResults {self.model.family} '{self.model.formula}' ({how})>"
