"""The result of Bayesian sampling: posterior summaries, group effects, predictions, LOO, persistence.

A :class:`Fit` holds the ArviZ 1.x ``DataTree`` (posterior, sample_stats, observed data, and the
pointwise log-likelihood) with coordinates named by the real level labels and term names, the
:class:`~bayesmlm.model.Model` it came from, and ``info``: a record of how the fit was made.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from bayesmlm.bayes_model import parameter_names, term_dim
from bayesmlm.design import level_keys
from bayesmlm.diagnostics import diagnostics_table
from bayesmlm.exceptions import DataError, FitError

if TYPE_CHECKING:
    from bayesmlm.model import Model

__all__ = ["Fit", "compare", "covariance_draws", "named_parameters", "stacked_draws"]

NewLevels = Literal["population", "error"]


def _flat(da: xr.DataArray) -> np.ndarray:
    """Draws as (chain, draw, ...) numpy."""
    return np.asarray(da.transpose("chain", "draw", ...).values)


def stacked_draws(posterior: xr.Dataset, name: str) -> np.ndarray:
    """Draws of a posterior variable with chains and draws merged: (samples, ...)."""
    a = _flat(posterior[name])
    return a.reshape(a.shape[0] * a.shape[1], *a.shape[2:])


def covariance_draws(
    posterior: xr.Dataset, factor, cholesky: bool = False, jitter: float = 0.0
) -> np.ndarray:
    """Return a factor's random-effect covariance (or its Cholesky factor) per draw, from ``sd_*``, ``cor_*``.

    Parameters
    ----------
    posterior : Dataset
    factor : FactorTerms
    cholesky : bool
        Return the lower Cholesky factor, block by block (a single term's is its sd).
    jitter : float
        Added to the diagonal of a correlated block before its Cholesky factorisation.

    Returns
    -------
    ndarray, shape (samples, q, q)
        Block diagonal over the factor's blocks.
    """
    sd = stacked_draws(posterior, f"sd_{factor.group}")  # (S, q)
    out = np.zeros((sd.shape[0], factor.q, factor.q))
    for label, start, size in factor.blocks():
        block = slice(start, start + size)
        if size == 1:
            out[:, start, start] = sd[:, start] if cholesky else sd[:, start] ** 2
            continue
        cov = stacked_draws(posterior, f"cor_{label}") * sd[:, block, None] * sd[:, None, block]
        out[:, block, block] = np.linalg.cholesky(cov + jitter * np.eye(size)) if cholesky else cov
    return out


def _summarise(draws: dict[str, np.ndarray], prob: float) -> pd.DataFrame:
    """mean, sd, HDI, R-hat, ESS and MCSE of scalar parameters given as (chain, draw) arrays."""
    ds = xr.Dataset({k: (("chain", "draw"), v) for k, v in draws.items()})
    hdi = az.hdi(ds, prob=prob)
    ess_bulk, ess_tail = az.ess(ds, method="bulk"), az.ess(ds, method="tail")
    rhat, mcse = az.rhat(ds), az.mcse(ds)
    rows = {}
    for k, v in draws.items():
        rows[k] = {
            "mean": float(v.mean()),
            "sd": float(v.std(ddof=1)),
            "hdi_low": float(hdi[k].sel(ci_bound="lower")),
            "hdi_high": float(hdi[k].sel(ci_bound="upper")),
            "rhat": float(rhat[k]),
            "ess_bulk": float(ess_bulk[k]),
            "ess_tail": float(ess_tail[k]),
            "mcse_mean": float(mcse[k]),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def named_parameters(
    structure,
    fixed_names,
    fixed: np.ndarray,
    sds: dict[str, np.ndarray],
    cors: dict[str, np.ndarray],
    sigma: np.ndarray,
    scale: Literal["sd", "var"] = "sd",
) -> dict[str, np.ndarray]:
    """Name population-level parameters as brms does (and statsmodels' variances with ``scale="var"``).

    Parameters
    ----------
    structure : RandomStructure
    fixed_names : sequence of str
    fixed : ndarray, shape (..., p)
    sds : dict
        Group -> random-effect sds, shape (..., q).
    cors : dict
        Block label -> correlation matrices, shape (..., k, k), for blocks of two or more terms.
    sigma : ndarray, shape (...)
    scale : {"sd", "var"}

    Returns
    -------
    dict
        Name -> array of the leading shape (draws, or a single estimate).
    """
    out: dict[str, np.ndarray] = {}
    for k, name in enumerate(fixed_names):
        out[name] = fixed[..., k]
    sd_names, cor_names = parameter_names(structure)
    by_term: dict[tuple[str, str], np.ndarray] = {}
    for f in structure.factors:
        sd = sds[f.group]
        for label, start, size in f.blocks():
            for k in range(start, start + size):
                by_term[(label, f.term_names[k])] = sd[..., k]
                out[sd_names[(label, f.term_names[k])]] = sd[..., k]
    for f in structure.factors:
        for label, start, size in f.blocks():
            if size < 2:
                continue
            terms = f.term_names[start : start + size]
            suffix = cor_names[label][4:-1]  # "cor(<group>)" -> "<group>"
            for j in range(size):
                for i in range(j + 1, size):
                    out[f"cor({terms[j]},{terms[i]}|{suffix})"] = cors[label][..., i, j]
    out["sigma"] = sigma
    if scale == "var":
        sm_name = structure.statsmodels_name
        for f in structure.factors:
            for label, start, size in f.blocks():
                terms = f.term_names[start : start + size]
                for t in terms:
                    out[f"{sm_name(f.group, t)} Var"] = by_term[(label, t)] ** 2
                for j in range(size):
                    for i in range(j + 1, size):
                        cov = cors[label][..., i, j] * by_term[(label, terms[i])] * by_term[(label, terms[j])]
                        out[f"{sm_name(f.group, terms[j])} x {sm_name(f.group, terms[i])} Cov"] = cov
        out["Scale"] = sigma**2
    return out


class Fit:
    """A Bayesian fit of a linear mixed model (from :meth:`bayesmlm.Model.fit`).

    Attributes
    ----------
    model : Model
    idata : xarray.DataTree
        ArviZ data: ``posterior``, ``sample_stats``, ``observed_data``, ``log_likelihood``.
    info : dict
        Sampler, draws, chains, seed, parameterisation per block, timings and package versions.
    """

    def __init__(self, model: Model, idata, info: dict):
        self.model = model
        self.idata = idata
        self.info = info

    # -- draws --------------------------------------------------------------------------------
    @property
    def posterior(self) -> xr.Dataset:
        """The posterior group as an xarray Dataset."""
        return self.idata["posterior"].to_dataset()

    def parameter_draws(self, scale: Literal["sd", "var"] = "sd") -> dict[str, np.ndarray]:
        """Draws (chain, draw) of every population-level parameter under brms' names.

        With ``scale="var"``, variances and covariances under statsmodels' names are added.
        """
        post = self.posterior
        structure = self.model.structure
        cors = {
            label: _flat(post[f"cor_{label}"])
            for f in structure.factors
            for label, _, size in f.blocks()
            if size > 1
        }
        return named_parameters(
            structure,
            self.model.design.fixed_names,
            _flat(post["fixed"]),
            {f.group: _flat(post[f"sd_{f.group}"]) for f in structure.factors},
            cors,
            _flat(post["sigma"]),
            scale,
        )

    def summary(self, prob: float = 0.95, scale: Literal["sd", "var"] = "sd") -> pd.DataFrame:
        """Posterior summary of the population-level parameters, rows named as brms names them.

        Parameters
        ----------
        prob : float
            Probability mass of the highest-density interval.
        scale : {"sd", "var"}
            ``"var"`` adds variances and covariances under statsmodels' names (``Subject Var``,
            ``Subject x Days Cov``, ``Scale``) to sit beside statsmodels or REML output.

        Returns
        -------
        DataFrame
            Columns mean, sd, hdi_low, hdi_high, rhat, ess_bulk, ess_tail, mcse_mean.
        """
        return _summarise(self.parameter_draws(scale), prob)

    def diagnostics(self) -> pd.DataFrame:
        """R-hat, bulk and tail ESS and MCSE of every sampled quantity."""
        return diagnostics_table(self.idata)

    # -- variance shares ------------------------------------------------------------------------
    def icc(self, at: dict | None = None, prob: float = 0.95):
        """Posterior distribution of the intraclass correlations.

        Per grouping factor, its share of the variance where the random-slope covariates are ``at``
        (default 0); for models with random slopes also the adjusted and conditional ICCs of
        Nakagawa et al. (2017). See :mod:`bayesmlm.icc`.

        Parameters
        ----------
        at : dict, optional
            Random-slope covariate values, e.g. ``{"Days": 5}``.
        prob : float
            HDI probability.

        Returns
        -------
        ICC
            ``icc["Subject"]`` is the posterior median; ``icc.summary`` has mean, median, HDI and the
            interpretation band; ``icc.draws`` one row per posterior draw.
        """
        from bayesmlm.icc import compute_icc

        return compute_icc(self, at=at, prob=prob)

    def variance_decomposition(self, prob: float = 0.95) -> pd.DataFrame:
        """Each variance component's share of the total (see :func:`bayesmlm.icc.variance_decomposition`)."""
        from bayesmlm.icc import variance_decomposition

        return variance_decomposition(self, prob=prob)

    # -- group effects ------------------------------------------------------------------------
    def random_effects(self, group: str | None = None, prob: float = 0.95) -> pd.DataFrame:
        """Each level's deviations and group-specific coefficients (fixed + random).

        Parameters
        ----------
        group : str, optional
            Grouping factor (needed when the model has several).
        prob : float
            HDI probability.

        Returns
        -------
        DataFrame
            Indexed by (level, term); columns ``mean, sd, hdi_low, hdi_high`` for the deviation and
            ``coef_mean, coef_sd, coef_hdi_low, coef_hdi_high`` for fixed effect + deviation.
        """
        f = self.model.structure.factor(group)
        r = self.posterior[f"r_{f.group}"]
        fixed = self.posterior["fixed"]
        names = list(self.model.design.fixed_names)
        coef = r.copy()
        for t in f.term_names:
            if t in names:
                coef.loc[{term_dim(f.group): t}] = r.sel({term_dim(f.group): t}) + fixed.sel(fixed_term=t)

        def table(da: xr.DataArray, prefix: str) -> pd.DataFrame:
            hdi = az.hdi(da, prob=prob)
            frame = pd.DataFrame(
                {
                    f"{prefix}mean": da.mean(("chain", "draw")).values.reshape(-1),
                    f"{prefix}sd": da.std(("chain", "draw"), ddof=1).values.reshape(-1),
                    f"{prefix}hdi_low": hdi.sel(ci_bound="lower").values.reshape(-1),
                    f"{prefix}hdi_high": hdi.sel(ci_bound="upper").values.reshape(-1),
                },
                index=pd.MultiIndex.from_product(
                    [list(f.levels), list(f.term_names)], names=[f.group, "term"]
                ),
            )
            return frame

        return pd.concat([table(r, ""), table(coef, "coef_")], axis=1)

    # -- prediction -------------------------------------------------------------------------
    def _stacked(self, name: str) -> np.ndarray:
        """Draws of a posterior variable with chains and draws merged: (samples, ...)."""
        return stacked_draws(self.posterior, name)

    def _mean_draws(
        self, newdata: pd.DataFrame | None, include_random: bool, new_levels: NewLevels, seed
    ) -> np.ndarray:
        design = self.model.design
        rng = np.random.default_rng(seed)
        fixed = self._stacked("fixed")  # (S, p)
        if newdata is None:
            X = np.asarray(design.X)
        else:
            missing = design.check_newdata(newdata)
            if missing.any():
                complete = self._mean_draws(newdata.loc[~missing], include_random, new_levels, seed)
                out = np.full((complete.shape[0], len(newdata)), np.nan)
                out[:, ~missing] = complete
                return out
            X = design.fixed_design(newdata)
        mu = fixed @ X.T  # (S, n)
        if not include_random:
            return mu
        for f in self.model.structure.factors:
            r = self._stacked(f"r_{f.group}")  # (S, m, q)
            if newdata is None:
                codes, Z = f.codes, np.asarray(f.Z)
                unseen_rows = np.zeros(len(codes), dtype=bool)
            else:
                Z, codes, unseen_rows = f.evaluate(newdata)
                if unseen_rows.any() and new_levels == "error":
                    unseen = f.unseen_levels(newdata)[:10]
                    raise DataError(
                        f"newdata has level(s) of {f.group} not seen in fitting: {unseen}; "
                        "use new_levels='population' to draw them from the population distribution"
                    )
                codes = np.where(unseen_rows, 0, codes)  # replaced below by population draws
            effect = np.einsum("nq,snq->sn", Z, r[:, codes, :])
            if unseen_rows.any():
                keys = level_keys(newdata, f.source_blocks[0].term.factor)
                new = self._new_level_effects(f, keys, unseen_rows, rng)  # (S, n_unseen_rows, q)
                effect[:, unseen_rows] = np.einsum("nq,snq->sn", Z[unseen_rows], new)
            mu = mu + effect
        return mu

    def _new_level_effects(self, f, keys, unseen_rows, rng) -> np.ndarray:
        """Draw effects of unseen levels from the population distribution, one draw per level and sample."""
        chol = covariance_draws(self.posterior, f, cholesky=True, jitter=1e-12)
        S, q = chol.shape[:2]
        levels = sorted({k for k, u in zip(keys, unseen_rows, strict=True) if u})
        z = rng.standard_normal((S, len(levels), q))
        per_level = np.einsum("sij,slj->sli", chol, z)
        position = {lev: i for i, lev in enumerate(levels)}
        rows = [position[k] for k, u in zip(keys, unseen_rows, strict=True) if u]
        return per_level[:, rows, :]

    def _interval_table(self, draws: np.ndarray, index, prob: float) -> pd.DataFrame:
        da = xr.DataArray(draws[None], dims=("chain", "draw", "obs"))
        hdi = az.hdi(da, prob=prob)
        return pd.DataFrame(
            {
                "mean": draws.mean(axis=0),
                "sd": draws.std(axis=0, ddof=1),
                "hdi_low": hdi.sel(ci_bound="lower").values,
                "hdi_high": hdi.sel(ci_bound="upper").values,
            },
            index=index,
        )

    def fitted(self, prob: float = 0.95) -> pd.DataFrame:
        """Posterior of the mean response for the fitted rows: mean, sd and HDI per row."""
        return self._interval_table(
            self._mean_draws(None, True, "population", None), self.model.design.rows, prob
        )

    def predict(
        self,
        newdata: pd.DataFrame | None = None,
        include_random: bool = True,
        new_levels: NewLevels = "population",
        kind: Literal["mean", "response"] = "mean",
        prob: float = 0.95,
        return_draws: bool = False,
        seed: int | None = None,
    ):
        """Predict the mean (or new observations) for new data, with intervals or draws.

        Parameters
        ----------
        newdata : DataFrame, optional
            Rows to predict (the fitted rows if omitted).
        include_random : bool
            Include the group effects (else population-level predictions).
        new_levels : {"population", "error"}
            An unseen level's effects are drawn from the population distribution, or raise DataError.
        kind : {"mean", "response"}
            The expected response, or a new observation (adds residual noise).
        prob : float
            HDI probability.
        return_draws : bool
            Return the draws, shape (samples, rows), instead of a summary table.
        seed : int, optional
            Seed for new-level effects and residual noise.

        Returns
        -------
        DataFrame or ndarray
        """
        if new_levels not in ("population", "error"):
            raise ValueError(f"new_levels must be 'population' or 'error', not {new_levels!r}")
        draws = self._mean_draws(newdata, include_random, new_levels, seed)
        if kind == "response":
            rng = np.random.default_rng(None if seed is None else seed + 1)
            draws = draws + rng.standard_normal(draws.shape) * self._stacked("sigma")[:, None]
        if return_draws:
            return draws
        index = self.model.design.rows if newdata is None else newdata.index
        return self._interval_table(draws, index, prob)

    def posterior_predictive(self, seed: int | None = None) -> xr.DataArray:
        """Draw replicated data sets ``y_rep`` (chain, draw, obs); also stored as ``posterior_predictive``."""
        draws = self.predict(kind="response", return_draws=True, seed=seed)
        n_chain, n_draw = self.posterior.sizes["chain"], self.posterior.sizes["draw"]
        da = xr.DataArray(
            draws.reshape(n_chain, n_draw, -1),
            dims=("chain", "draw", "obs"),
            coords={"chain": self.posterior["chain"], "draw": self.posterior["draw"]},
            name="y",
        )
        self.idata["posterior_predictive"] = xr.DataTree(xr.Dataset({"y": da}))
        return da

    # -- model comparison -------------------------------------------------------------------
    def loo(self):
        """PSIS-LOO cross-validation (ArviZ's ``loo``) from the pointwise log-likelihood."""
        if "log_likelihood" not in self.idata.children:
            raise FitError("this fit has no log_likelihood group; refit with log_likelihood=True")
        return az.loo(self.idata)

    # -- persistence --------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Save the fit (ArviZ netCDF with the data and settings needed to rebuild the model; no pickle).

        Parameters
        ----------
        path : str or Path
            File to write (``.nc`` is customary).

        Returns
        -------
        Path
        """
        from bayesmlm.persistence import save_fit

        return save_fit(self, path)

    def __repr__(self) -> str:
        return (
            f"<bayesmlm.Fit {self.model.spec.formula}: {self.info.get('chains')} chains x "
            f"{self.info.get('draws')} draws ({self.info.get('sampler')})>"
        )


def compare(fits, ic: str = "loo"):
    """Compare Bayesian fits by PSIS-LOO (ArviZ's ``compare``).

    Parameters
    ----------
    fits : list of Fit or dict of name -> Fit
        Fits of models to the same observations; a list is named by the formulas.
    ic : str
        Information criterion; only ``"loo"`` is supported.

    Returns
    -------
    DataFrame
        ArviZ's comparison table, best model first.
    """
    if ic != "loo":
        raise ValueError("only ic='loo' is supported")
    named = fits if isinstance(fits, dict) else {f.model.spec.formula: f for f in fits}
    if len(named) < 2:
        raise ValueError("compare needs at least two fits")
    n_obs = {f.model.design.n for f in named.values()}
    if len(n_obs) != 1:
        raise DataError(
            f"the fits use different numbers of observations ({sorted(n_obs)}); refit on the same rows"
        )
    for name, f in named.items():
        if "log_likelihood" not in f.idata.children:
            raise FitError(f"fit {name!r} has no log_likelihood group; refit with log_likelihood=True")
    return az.compare({name: f.idata for name, f in named.items()})
