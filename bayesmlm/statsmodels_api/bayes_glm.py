"""The statsmodels entry point for GLMMs: ``BinomialBayesMixedGLM`` and ``PoissonBayesMixedGLM``.

Code written for :mod:`statsmodels.genmod.bayes_mixed_glm` runs with only the import changed::

    from bayesmlm import BinomialBayesMixedGLM  # instead of statsmodels.genmod.bayes_mixed_glm

    random = {"herd": "0 + C(herd)"}
    model = BinomialBayesMixedGLM.from_formula("y ~ period", random, data)
    result = model.fit_vb()  # or fit_map()
    print(result.summary())

Each ``vc_formulas`` entry is an independent variance component, as in statsmodels: ``"0 + C(g)"`` is
a random intercept per level of ``g``, ``(1 | g)``; ``"0 + C(g):x"`` an independent random slope,
``(0 + x | g)``. The model has statsmodels' ``fep_names``, ``vcp_names``, ``vc_names``, ``names``,
``ident``, ``exog``, ``exog_vc``, ``k_fep``/``k_vcp``/``k_vc`` and ``logposterior(params)``; the results
(:mod:`bayesmlm.statsmodels_api.bayes_glm_results`) its ``params``, ``fe_mean``, ``fe_sd``, ``vcp_mean``,
``vcp_sd``, ``vc_mean``, ``vc_sd``, ``cov_params()``, ``random_effects()``, ``predict()``,
``summary()`` and ``optim_retvals``, with statsmodels' types and shapes.

How it differs from statsmodels
-------------------------------
statsmodels approximates the posterior: ``fit_map`` by the mode of the joint density of the fixed
effects, log sds *and random effects* with an inverse-Hessian covariance (a joint mode, which can
collapse a variance towards zero), ``fit_vb`` by a mean-field Gaussian variational family, which ignores
posterior correlations and typically understates the uncertainty. Here ``fit_map()`` is glmer's
Laplace *maximum likelihood* fit (random effects integrated out, no priors; ``fe_sd`` the ML standard
errors, ``vcp_sd`` from the Hessian of the deviance by the delta method, the random effects' modes and
conditional sds), and ``fit_vb()`` samples the exact posterior with NUTS (posterior means and sds).
The fixed effects get statsmodels' ``Normal(0, fe_p)`` prior; the component sds get bayesmlm's
default ``HalfStudentT(3, 2.5)`` instead of statsmodels' log-normal with scale ``vcp_p``, which only
``logposterior`` uses. ``docs/statsmodels.md`` lists every attribute and whether it matches.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
from scipy import sparse

from bayesmlm.bayes.priors import Normal
from bayesmlm.exceptions import FormulaError
from bayesmlm.model import Model
from bayesmlm.statsmodels_api.bayes_glm_results import BayesMixedGLMResults

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


def _component(name: str, formula: str) -> tuple[str, str]:
    """Return the group and the term (``"Intercept"`` or the slope's variable) of one variance component."""
    term = component_term(name, formula)
    inside = term[1:-1]
    left, group = (part.strip() for part in inside.split("|"))
    return group, "Intercept" if left == "1" else left.split("+")[-1].strip()


class _BayesMixedGLM:
    family = ""

    def __init__(
        self, formula: str, vc_formulas: dict, data: pd.DataFrame, vcp_p: float = 1.0, fe_p: float = 2.0
    ):
        if not isinstance(vc_formulas, dict) or not vc_formulas:
            raise FormulaError("vc_formulas must be a dict such as {'herd': '0 + C(herd)'}")
        terms = [component_term(k, v) for k, v in vc_formulas.items()]
        self.vcp_names = list(vc_formulas)
        self.formula = f"{formula} + " + " + ".join(terms)
        self.fe_p, self.vcp_p = float(fe_p), float(vcp_p)
        priors = {"Intercept": Normal(0.0, self.fe_p), "b": Normal(0.0, self.fe_p)}
        self.bayesmlm_model = Model(self.formula, data, family=self.family, priors=priors)
        design, structure = self.bayesmlm_model.design, self.bayesmlm_model.structure
        self.fep_names = list(design.fixed_names)
        #: per component: (factor index, term index), statsmodels' order (that of ``vc_formulas``)
        groups = [f.group for f in structure.factors]
        self.components = []
        for name, fml in vc_formulas.items():
            group, term = _component(name, fml)
            k = groups.index(group)
            self.components.append((k, list(structure.factors[k].term_names).index(term)))
        self.vc_names, ident, columns = [], [], []
        for j, (k, t) in enumerate(self.components):
            f = structure.factors[k]
            term = f.term_names[t]
            suffix = "" if term == "Intercept" else f":{term}"
            self.vc_names += [f"C({f.group})[{level}]{suffix}" for level in f.levels]
            ident += [j] * f.n_levels
            z = np.asarray(f.Z[:, t], dtype=float)
            columns.append(
                sparse.csr_matrix((z, (np.arange(design.n), f.codes)), shape=(design.n, f.n_levels))
            )
        self.ident = np.asarray(ident, dtype=int)
        self.exog_vc = sparse.hstack(columns, format="csr")
        self.exog = np.asarray(design.X, dtype=float)
        self.endog = np.asarray(self.bayesmlm_model.family.glm_data(design).y, dtype=float)
        self.names = self.fep_names + self.vcp_names + self.vc_names
        self.k_fep, self.k_vcp, self.k_vc = len(self.fep_names), len(self.vcp_names), len(self.vc_names)
        self.exog_names, self.endog_names = list(self.fep_names), design.response_name
        self.k_constant = int("Intercept" in self.fep_names)

    @classmethod
    def from_formula(
        cls, formula: str, vc_formulas: dict, data: pd.DataFrame, vcp_p: float = 1.0, fe_p: float = 2.0
    ):
        """Create the model from a formula and a dict of variance components (statsmodels' signature).

        ``vcp_p`` enters :meth:`logposterior` only; the fits do not use it (see the module docstring).
        """
        return cls(formula, vc_formulas, data, vcp_p=vcp_p, fe_p=fe_p)

    def _unpack(self, vec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        vec = np.asarray(vec, dtype=float)
        a, b = self.k_fep, self.k_fep + self.k_vcp
        return vec[:a], vec[a:b], vec[b:]

    def logposterior(self, params) -> float:
        """Statsmodels' log-density ``log p(y, fe, vc, vcp)`` at ``params`` (fixed effects, log sds, effects).

        The same function as statsmodels' (its priors: ``N(0, fe_p²)`` on the fixed effects,
        ``N(0, vcp_p²)`` on the log sds, up to an additive constant), evaluated with this model's data.
        It is not the density our ``fit_vb`` samples (whose sd prior is a half-Student-t).

        Examples
        --------
        >>> import numpy as np
        >>> import bayesmlm as bm
        >>> m = bm.PoissonBayesMixedGLM.from_formula("TICKS ~ 1", {"b": "0 + C(BROOD)"},
        ...                                          bm.load_dataset("grouseticks"))
        >>> round(m.logposterior(np.zeros(len(m.names))), 3)  # statsmodels 0.15: -5978.182
        -5978.182
        """
        fep, vcp, vc = self._unpack(params)
        eta = self.exog @ fep + self.exog_vc @ vc
        design = self.bayesmlm_model.design
        if design.offset is not None:
            eta = eta + np.asarray(design.offset, dtype=float)
        family = self.bayesmlm_model.family
        ll = float(np.sum(family.loglik_rows(family.glm_data(design), family.link.linkinv(eta))))
        vcp0 = vcp[self.ident]
        ll -= 0.5 * np.sum(vc**2 / np.exp(vcp0) ** 2) + np.sum(vcp0)
        ll -= 0.5 * np.sum(vcp**2 / self.vcp_p**2)
        ll -= 0.5 * np.sum(fep**2 / self.fe_p**2)
        return float(ll)

    def predict(self, params, exog=None, linear: bool = False) -> np.ndarray:
        """Return ``linkinv(exog @ params[:k])`` (``k = exog.shape[1]``), statsmodels' model ``predict``."""
        X = self.exog if exog is None else np.asarray(exog, dtype=float)
        eta = X @ np.asarray(params, dtype=float)[: X.shape[1]]
        return eta if linear else np.asarray(self.bayesmlm_model.family.link.linkinv(eta), dtype=float)

    def fit(self, method: str = "BFGS", minim_opts: dict | None = None):
        """Return :meth:`fit_map` (as statsmodels, where ``fit`` is ``fit_map``)."""
        return self.fit_map(method, minim_opts)

    def fit_map(self, method: str = "BFGS", minim_opts: dict | None = None, scale_fe: bool = False, rng=None):
        """Fit by glmer's Laplace maximum likelihood (statsmodels: the posterior mode).

        statsmodels' arguments (the optimiser, its options, scaling, the start's seed) are accepted and
        not used: the optimisation is lme4's (see the module docstring).
        """
        return BayesMixedGLMResults(self, self.bayesmlm_model.fit_ml())

    def fit_vb(
        self,
        mean=None,
        sd=None,
        fit_method: str = "BFGS",
        minim_opts: dict | None = None,
        scale_fe: bool = False,
        verbose: bool = False,
        rng=None,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        seed: int | None = None,
        **kwargs,
    ):
        """Sample the posterior with NUTS (statsmodels: a variational approximation); see ``Model.fit``.

        statsmodels' arguments of the variational optimisation (``mean``, ``sd``, ``fit_method``,
        ``minim_opts``, ``scale_fe``, ``verbose``, ``rng``) are accepted and not used; ``draws``,
        ``tune``, ``chains``, ``seed`` and the other keywords go to :meth:`bayesmlm.Model.fit`.
        """
        fit = self.bayesmlm_model.fit(draws=draws, tune=tune, chains=chains, seed=seed, **kwargs)
        return BayesMixedGLMResults(self, fit)


class BinomialBayesMixedGLM(_BayesMixedGLM):
    """statsmodels' ``BinomialBayesMixedGLM``: a logistic mixed model (0/1 response)."""

    family = "binomial"


class PoissonBayesMixedGLM(_BayesMixedGLM):
    """statsmodels' ``PoissonBayesMixedGLM``: a Poisson mixed model with log link."""

    family = "poisson"
