"""Stage 4b, Bayes: power-scaling sensitivity of the posterior to prior and likelihood (priorsense).

Kallioinen, Paananen, Bürkner & Vehtari (2023, Stat. Comput. 34: 57), as the R package priorsense and
ArviZ's ``psense`` compute it. Raising the prior (or the likelihood) to a power ``α`` changes the
posterior; importance sampling estimates the changed posterior from the draws we have, with weights
``∝ p(θ)^(α−1)`` (or ``p(y | θ)^(α−1)``) smoothed by Pareto-smoothed importance sampling (PSIS). The
sensitivity of a parameter is the derivative in ``log₂ α`` of the cumulative Jensen–Shannon distance
between its posterior and the power-scaled one, from ``α = 0.99`` and ``1.01``. As in priorsense a
value ≥ 0.05 counts as sensitive, and per parameter:

- prior and likelihood sensitive: **prior-data conflict**;
- prior sensitive, likelihood not: **strong prior / weak likelihood**;
- otherwise nothing to report.

The prior scaled is that of the population-level parameters (fixed effects, group-level sds, LKJ
correlations, sigma), each at the user's (or default) prior on its own scale, the intercept on the
centred predictors as in the model; the likelihood is the marginal one, ``p(y | β, Σ, σ)`` with the
group effects integrated out (the collapsed sampler's target).
PSIS's Pareto ``k̂`` of the weights at the stronger perturbations ``α = 0.8`` and ``1.25`` (those
the plot shows) says whether the importance-sampling estimate can be trusted (``k̂`` below
``min(1 − 1/log₁₀ S, 0.7)``, Vehtari et al. 2024).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from bayesmlm.arguments import checked
from bayesmlm.bayes.posterior import stacked_draws
from bayesmlm.bayes.prior_set import PriorSet
from bayesmlm.bayes.priors import Prior
from bayesmlm.design.names import parameter_names
from bayesmlm.exceptions import ArgumentError, FitError
from bayesmlm.families.gaussian import marginal_loglik
from bayesmlm.linalg.blocked import symbolic_stats

__all__ = ["PriorSensitivity", "log_prior_draws", "prior_sensitivity"]

#: sensitivity at or above this is reported (priorsense's default)
THRESHOLD = 0.05
#: the perturbations of the diagnostic and of the plot
DIAGNOSTIC_ALPHAS = (0.99, 1.01)
PLOT_ALPHAS = (0.8, 1.25)


def _log_density(prior: Prior, x: np.ndarray) -> np.ndarray:
    """Log density of a (non-LKJ) prior at ``x``, up to a constant, on its support."""
    k = prior.kwargs
    family = prior.family
    if family == "Normal":
        return sps.norm.logpdf(x, k["mu"], k["sigma"])
    if family == "StudentT":
        return sps.t.logpdf(x, k["nu"], k["mu"], k["sigma"])
    if family == "HalfNormal":
        return sps.halfnorm.logpdf(x, scale=k["sigma"])
    if family == "HalfStudentT":
        return np.where(x >= 0, np.log(2.0) + sps.t.logpdf(x, k["nu"], 0.0, k["sigma"]), -np.inf)
    if family == "HalfCauchy":
        return sps.halfcauchy.logpdf(x, scale=k["beta"])
    if family == "Exponential":
        return sps.expon.logpdf(x, scale=1.0 / k["lam"])
    raise FitError(f"no log density for the prior family {family!r}")  # pragma: no cover


def log_prior_draws(fit, priors: PriorSet) -> np.ndarray:
    """Return the log prior density of the population-level parameters at each draw, shape (S,).

    Parameters
    ----------
    fit : Fit
    priors : PriorSet
        The priors the fit was sampled with (``fit.model.prior_set``).

    Returns
    -------
    ndarray
        Up to a constant.
    """
    design, structure, post = fit.design, fit.structure, fit.posterior
    names = list(design.fixed_names)
    fixed = stacked_draws(post, "fixed")
    if "Intercept" in names:  # the intercept's prior is on the centred predictors (see pymc_model)
        k = names.index("Intercept")
        shift = np.where([n != "Intercept" for n in names], np.asarray(design.X).mean(axis=0), 0.0)
        fixed = fixed.copy()
        fixed[:, k] = fixed[:, k] + fixed @ shift
    total = sum(_log_density(priors.fixed[n], fixed[:, j]) for j, n in enumerate(names))
    sd_name, cor_name = parameter_names(structure)
    for f in structure.factors:
        sd = stacked_draws(post, f"sd_{f.group}")
        for label, start, size in f.blocks():
            for t in range(start, start + size):
                total = total + _log_density(priors.sd[sd_name[(label, f.term_names[t])]], sd[:, t])
            if size > 1:
                cor = stacked_draws(post, f"cor_{label}")
                eta = priors.cor[cor_name[label]].eta
                total = total + (eta - 1.0) * np.linalg.slogdet(cor)[1]
    return total + _log_density(priors.sigma, stacked_draws(post, "sigma"))


_MARGINAL: dict[tuple, object] = {}


def _log_likelihood_draws(fit) -> np.ndarray:
    """``log p(y | β, Σ, σ)`` at each draw, the group effects integrated out, shape (S,).

    The collapsed sampler's target (:func:`~bayesmlm.families.gaussian.marginal_loglik`): the group
    effects' conditional noise does not enter the weights, so the likelihood's sensitivity is that of
    the population parameters alone.
    """
    import pytensor
    import pytensor.tensor as pt

    structure, stats = fit.structure, fit.model.cross_products
    key = (tuple(f.block_sizes for f in structure.factors), stats.p > 0)
    if key not in _MARGINAL:
        theta, beta, sigma = pt.vector("theta"), pt.vector("beta"), pt.scalar("sigma")
        sym, inputs, _ = symbolic_stats(stats, structure)
        ll = marginal_loglik(theta, beta, sigma, structure, sym)
        _MARGINAL[key] = pytensor.function([theta, beta, sigma, *inputs], ll, on_unused_input="ignore")
    fn, values = _MARGINAL[key], symbolic_stats(stats, structure)[2]
    draws = fit.population_draws()
    sigma = np.sqrt(draws.sigma2)
    thetas = []
    for f, cov in zip(structure.factors, draws.covariances, strict=True):
        chol = np.linalg.cholesky(cov + 1e-12 * np.mean(np.diagonal(cov, axis1=1, axis2=2)) * np.eye(f.q))
        rows, cols = f.lower_index
        thetas.append(chol[:, rows, cols] / sigma[:, None])
    theta = np.concatenate(thetas, axis=1)
    return np.array([float(fn(t, b, s, *values)) for t, b, s in zip(theta, draws.fixed, sigma, strict=True)])


def _psis(log_ratio: np.ndarray, alpha: float) -> tuple[np.ndarray, float]:
    """PSIS-smoothed normalised weights for power-scaling by ``alpha``, and their Pareto k̂."""
    from arviz_stats.base import array_stats

    lw, khat = array_stats.psislw((alpha - 1.0) * (log_ratio - log_ratio.max()))
    w = np.exp(lw - lw.max())
    return w / w.sum(), float(khat)


@dataclass
class PriorSensitivity:
    """Power-scaling sensitivity of each population-level parameter (see the module).

    Attributes
    ----------
    summary : DataFrame
        Per parameter: ``prior`` and ``likelihood`` sensitivity, ``diagnosis``, and the Pareto ``k̂``
        of the weights at ``α = 0.8`` and ``1.25`` (``khat_prior``, ``khat_likelihood``: the larger).
    draws : DataFrame
        The posterior draws of the parameters (one row per draw), as the plot needs them.
    log_prior, log_likelihood : ndarray
        Per draw.
    khat_threshold : float
    """

    summary: pd.DataFrame
    draws: pd.DataFrame
    log_prior: np.ndarray
    log_likelihood: np.ndarray
    khat_threshold: float

    @property
    def flagged(self) -> pd.DataFrame:
        """The parameters with a diagnosis."""
        return self.summary[self.summary["diagnosis"] != ""]

    @checked
    def weights(self, component: str, alpha: float) -> tuple[np.ndarray, float]:
        """Return the importance weights, and k̂, of the posterior with ``component`` raised to ``alpha``."""
        if component not in ("prior", "likelihood"):
            raise ArgumentError(f"component must be 'prior' or 'likelihood', not {component!r}")
        return _psis(self.log_prior if component == "prior" else self.log_likelihood, alpha)

    def __repr__(self) -> str:
        flagged = self.flagged
        head = "power-scaling sensitivity (priorsense): "
        head += "no prior-data conflict or weak likelihood" if flagged.empty else f"{len(flagged)} flagged"
        return head + "\n" + self.summary.round(3).to_string()

    def _repr_html_(self) -> str:
        return f"<pre>{repr(self).splitlines()[0]}</pre>" + self.summary.round(3).to_html()


def _diagnosis(prior: float, likelihood: float, threshold: float) -> str:
    if prior >= threshold and likelihood >= threshold:
        return "prior-data conflict"
    if prior >= threshold:
        return "strong prior / weak likelihood"
    return ""


def prior_sensitivity(fit, threshold: float = THRESHOLD) -> PriorSensitivity:
    """Compute the power-scaling sensitivity of every population-level parameter of a Bayesian fit.

    Parameters
    ----------
    fit : Fit
    threshold : float
        Sensitivity from which a parameter is reported (priorsense: 0.05).

    Returns
    -------
    PriorSensitivity
    """
    from arviz_stats.base import array_stats

    draws = {k: np.asarray(v, dtype=float) for k, v in fit.parameter_draws().items()}  # (chain, draw)
    shape = next(iter(draws.values())).shape
    log_prior = log_prior_draws(fit, fit.model.prior_set)
    log_lik = _log_likelihood_draws(fit)
    n = log_prior.size
    khat_threshold = min(1.0 - 1.0 / np.log10(n), 0.7)
    rows = {}
    weights = {
        c: [_psis(v, a)[0].reshape(shape) for a in DIAGNOSTIC_ALPHAS]
        for c, v in (("prior", log_prior), ("likelihood", log_lik))
    }
    khat = {
        c: max(_psis(v, a)[1] for a in PLOT_ALPHAS)
        for c, v in (("prior", log_prior), ("likelihood", log_lik))
    }
    for name, values in draws.items():
        sens = {}
        for component, (lower, upper) in weights.items():
            sens[component] = float(
                array_stats.power_scale_sense(
                    values, lower, upper, DIAGNOSTIC_ALPHAS[0], DIAGNOSTIC_ALPHAS[1]
                )
            )
        rows[name] = {
            "prior": sens["prior"],
            "likelihood": sens["likelihood"],
            "diagnosis": _diagnosis(sens["prior"], sens["likelihood"], threshold),
            "khat_prior": khat["prior"],
            "khat_likelihood": khat["likelihood"],
        }
    summary = pd.DataFrame.from_dict(rows, orient="index")
    table = pd.DataFrame({k: v.reshape(-1) for k, v in draws.items()})
    return PriorSensitivity(summary, table, log_prior, log_lik, khat_threshold)
