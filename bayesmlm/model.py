"""The user-facing :class:`Model`: a thin chain of the pipeline stages.

``parse_formula`` → ``make_design`` → ``random_structure`` / ``cross_products`` → ``optimize_theta``
→ :class:`~bayesmlm.likelihood_fit.LikelihoodFit` (REML/ML), or → ``resolve_priors`` →
``build_pymc_model`` → ``sample`` → :class:`~bayesmlm.bayes_fit.Fit` (Bayesian). Each stage can be
called on its own.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import time
import warnings
from functools import cached_property
from importlib.metadata import version
from typing import Literal

import numpy as np
import pandas as pd
import pymc as pm
import pytensor
import xarray as xr

from bayesmlm.bayes_fit import Fit
from bayesmlm.bayes_model import Parameterization, build_pymc_model, choose_parameterization
from bayesmlm.collapsed import (
    add_group_effects,
    build_collapsed_model,
    centred_cross_products,
    collapsed_plan,
)
from bayesmlm.covariance import RandomStructure, random_structure
from bayesmlm.crossprod import CrossProducts, cross_products
from bayesmlm.design import Design, NaAction, make_design
from bayesmlm.diagnostics import warn_sampling
from bayesmlm.exceptions import FitError, FormulaError
from bayesmlm.formula import ModelSpec, parse_formula
from bayesmlm.likelihood_fit import LikelihoodFit
from bayesmlm.namespace import formula_namespace
from bayesmlm.optimize import optimize_theta
from bayesmlm.priors import Prior, PriorSet, resolve_priors

__all__ = ["Model", "available_samplers"]

Sampler = Literal["pymc", "nutpie"]
Method = Literal["auto", "collapsed", "full"]


def sampling_flags():
    """PyTensor settings for everything compiled to sample: numba, without fast-math.

    Numba (rather than PyTensor's C backend) is faster here and needs no BLAS. Fast-math is off
    because with it a seeded fit gave different draws the first time its functions were compiled
    than when they came from the cache (sleepstudy, seed 5: posterior mean of the fixed effects
    130.8473 vs 130.8974); without it every run is identical. It costs time: the collapsed
    likelihood's gradient on 10,000 groups takes 0.96 ms instead of 0.67 ms.
    """
    return pytensor.config.change_flags(mode="NUMBA", numba__fastmath=False)


#: posterior variables without the response's units (all others are rescaled after sampling)
UNITLESS_PREFIXES = ("cor_", "z__")
#: posterior variables in the response's units: fixed effects, sds, group effects, sigma
SCALED_PREFIXES = ("fixed", "sd_", "r_", "c__", "chol__", "sigma")


def response_scale(y: np.ndarray) -> float:
    """Return the factor the response is divided by for sampling: its standard deviation.

    NUTS starts from a unit mass matrix and jitters the start by ±1, so it adapts fastest when the
    parameters are of order one. With the response in units of its sd (and every prior rescaled to
    match, see :meth:`~bayesmlm.priors.PriorSet.scaled`) the posterior is the same distribution and the
    sampler sees the same problem whether the data are in grams or tonnes. Measured on sleepstudy
    ``(Days | Subject)``, collapsed, before this existed: minimum bulk ESS 3,048 at the original scale,
    796 with the response times 1e6, and 5.3 times the sampling time with it times 1e-6.
    """
    return float(np.std(y, ddof=1))


def rescale_idata(idata, factor: float, y: np.ndarray) -> None:
    """Put the draws of a fit to ``y / factor`` back on the response's scale, in place.

    Posterior variables in the response's units are multiplied by ``factor``; the observed response
    is replaced by ``y`` itself (not ``y / factor * factor``, which differs by rounding); the pointwise
    log-likelihood gains the Jacobian ``-log(factor)``. ``sample_stats`` (``lp``, ``energy``) are left on
    the sampler's scale: they differ by a constant, which no diagnostic depends on.
    """
    observed = idata["observed_data"].to_dataset()
    idata["observed_data"] = xr.DataTree(observed.assign(y=observed["y"].copy(data=np.asarray(y))))
    post = idata["posterior"].to_dataset()
    for name in post.data_vars:
        if name.startswith(UNITLESS_PREFIXES):
            continue
        if not name.startswith(SCALED_PREFIXES):
            raise AssertionError(f"posterior variable {name!r} is neither known unitless nor known scaled")
        post[name].values *= factor  # in place: r_g of 10,000 groups x 4,000 draws is 640 MB
    idata["posterior"] = xr.DataTree(post)
    if "log_likelihood" in idata.children:
        idata["log_likelihood"] = xr.DataTree(idata["log_likelihood"].to_dataset() - np.log(factor))


def _raise_if_interrupted(idata, draws: int, chains: int) -> None:
    """Re-raise a KeyboardInterrupt that PyMC caught: it returns the draws made so far instead.

    PyMC then keeps the chains that got furthest, so a cut-short run can come back with full-length
    chains but fewer of them; both the draws and the chains are checked. A fit from a cut-short run
    (perhaps still tuning) would look like a fit and be wrong, so none is made. Nothing on the Model is
    changed by sampling, so it can be fitted again at once.
    """
    post = idata["posterior"] if "posterior" in idata.children else None
    done = post.sizes.get("draw", 0) if post is not None else 0
    kept = post.sizes.get("chain", 0) if post is not None else 0
    if done < draws or kept < chains:
        raise KeyboardInterrupt(_interrupted(kept, chains, done, draws))


def _interrupted(kept: int, chains: int, done: int, draws: int) -> str:
    """Say how far an interrupted run got, and that the model can be fitted again."""
    if kept == 0:
        progress = " before any draw was kept (still tuning)"
    else:
        progress = f": {kept} of {chains} chains came back, with {done} of {draws} draws each"
    return (
        f"sampling was interrupted{progress}; no fit was made, and the model is "
        "unchanged: call fit() again to sample"
    )


def available_samplers() -> list[str]:
    """NUTS implementations that can be used here (``"pymc"`` always; ``"nutpie"`` when installed)."""
    out = ["pymc"]
    try:
        import nutpie  # noqa: F401
    except ImportError:
        pass
    else:
        out.append("nutpie")
    return out


def package_versions() -> dict[str, str]:
    """Versions of Python, bayesmlm and the packages a fit depends on (recorded in every fit's info)."""
    from bayesmlm import __version__

    out = {"bayesmlm": __version__, "python": platform.python_version()}
    for pkg in ("pymc", "pytensor", "arviz", "numpy", "pandas", "formulae", "nutpie"):
        try:
            out[pkg] = version(pkg)
        except Exception:  # not installed
            continue
    return out


class Model:
    """A linear mixed model written as an lme4 formula.

    Parameters
    ----------
    formula : str
        lme4 formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``.
    data : DataFrame
        The data (never modified).
    priors : dict, optional
        Overrides of the default priors, by class (``"Intercept"``, ``"b"``, ``"sd"``, ``"cor"``,
        ``"sigma"``) or by name (``"Days"``, ``"sd(Days|Subject)"``, ``"cor(Subject)"``); see
        :mod:`bayesmlm.priors` and :attr:`priors`.
    na_action : {"drop", "error"}
        What to do with rows that have a missing value in a used column.
    parameterization : {"auto", "centered", "noncentered"} or dict
        How each random block is written in the Bayesian model: chosen per block from the REML
        estimate (``"auto"``, see :func:`bayesmlm.bayes_model.choose_parameterization`), the same for all,
        or a dict from block label (``"Subject"``) to choice.
    extra_namespace : dict, optional
        Functions the formula may call besides numpy's element-wise functions (``np.log``, ``log``,
        ...) and formulae's transforms (``C``, ``scale``, ``center``, ...), e.g.
        ``{"logit": scipy.special.logit}``. Nothing else in a formula is executed (see
        :mod:`bayesmlm.namespace`).

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy"))
    >>> fit = m.fit_reml()
    >>> round(fit.loglik, 4)
    -871.8141
    """

    def __init__(
        self,
        formula: str,
        data: pd.DataFrame,
        priors: dict[str, Prior] | None = None,
        na_action: NaAction = "drop",
        parameterization: str | dict[str, Parameterization] = "auto",
        extra_namespace: dict | None = None,
    ):
        self.extra_namespace = dict(extra_namespace or {})
        formula_namespace(self.extra_namespace)  # refuses bad names or values before the formula is read
        self.spec: ModelSpec = parse_formula(formula, self.extra_namespace)
        self.na_action = na_action
        self._user_priors = dict(priors) if priors else {}
        self._parameterization_request = parameterization
        self.design: Design = make_design(
            self.spec, data, na_action=na_action, extra_namespace=self.extra_namespace
        )
        if not self.design.blocks:
            raise FormulaError(
                f"no random-effects terms in '{formula}'; add one such as (1 | group) "
                "(for a model without random effects use ordinary least squares)"
            )

    @cached_property
    def structure(self) -> RandomStructure:
        """The random-effects structure (factors in lme4's order)."""
        return random_structure(self.design)

    @cached_property
    def cross_products(self) -> CrossProducts:
        """Sufficient statistics for the REML/ML objective, computed once."""
        return cross_products(self.design, self.structure)

    @cached_property
    def _standardised(self) -> tuple[float, Design, CrossProducts | None]:
        """What the sampler sees: the response divided by :func:`response_scale`, and its statistics."""
        scale = response_scale(self.design.y)
        y = np.asarray(self.design.y) / scale
        y.setflags(write=False)
        design = dataclasses.replace(self.design, y=y)
        stats = None
        if collapsed_plan(self.structure)[0]:
            stats = centred_cross_products(design, self.structure)
        return scale, design, stats

    def _fit_likelihood(self, reml: bool, theta0: np.ndarray | None) -> LikelihoodFit:
        opt = optimize_theta(self.structure, self.cross_products, reml=reml, theta0=theta0)
        return LikelihoodFit(self.design, self.structure, self.cross_products, opt)

    def fit_reml(self, theta0: np.ndarray | None = None) -> LikelihoodFit:
        """Fit by restricted maximum likelihood (lme4's default, ``REML = TRUE``).

        Parameters
        ----------
        theta0 : ndarray, optional
            Starting relative covariance parameters (lme4's default: identity).

        Returns
        -------
        LikelihoodFit
        """
        return self._fit_likelihood(True, theta0)

    def fit_ml(self, theta0: np.ndarray | None = None) -> LikelihoodFit:
        """Fit by maximum likelihood (lme4's ``REML = FALSE``); needed to compare fixed effects.

        Parameters
        ----------
        theta0 : ndarray, optional
            Starting relative covariance parameters.

        Returns
        -------
        LikelihoodFit
        """
        return self._fit_likelihood(False, theta0)

    # -- Bayesian ---------------------------------------------------------------------------
    @property
    def data(self) -> pd.DataFrame:
        """The rows and columns the model uses (a copy)."""
        return self.design.data

    @cached_property
    def prior_set(self) -> PriorSet:
        """The resolved priors (defaults with the user's overrides)."""
        return resolve_priors(self.design, self.structure, self._user_priors)

    @property
    def priors(self) -> pd.DataFrame:
        """Table of every prior: parameter, class, distribution, and whether it is a default."""
        return self.prior_set.table()

    @cached_property
    def parameterization(self) -> dict[str, Parameterization]:
        """Centred or non-centred, per random block label."""
        labels = [label for f in self.structure.factors for label, *_ in f.blocks()]
        request = self._parameterization_request
        if isinstance(request, dict):
            unknown = sorted(set(request) - set(labels))
            if unknown:
                raise ValueError(f"unknown block(s) {unknown} in parameterization; the blocks are {labels}")
        elif request not in ("auto", "centered", "noncentered"):
            raise ValueError(
                f"parameterization must be 'auto', 'centered', 'noncentered' or a dict, not {request!r}"
            )
        if request in ("centered", "noncentered"):
            return dict.fromkeys(labels, request)
        theta = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                reml = optimize_theta(self.structure, self.cross_products, reml=True)
            theta = reml.theta if reml.converged else None
        except Exception:  # the choice falls back to non-centred; sampling does not depend on REML
            theta = None
        choice = choose_parameterization(self.structure, theta)
        if isinstance(request, dict):
            choice.update(request)
        return choice

    def build(self) -> pm.Model:
        """Build the unsampled PyMC model, to inspect or extend (see :mod:`bayesmlm.bayes_model`)."""
        return build_pymc_model(self.design, self.structure, self.prior_set, self.parameterization)

    def sample_prior_predictive(self, draws: int = 500, seed: int | None = None):
        """Draws from the prior and the prior predictive distribution (an ArviZ DataTree).

        Parameters
        ----------
        draws : int
        seed : int, optional

        Returns
        -------
        xarray.DataTree
        """
        with self.build(), sampling_flags():
            return pm.sample_prior_predictive(draws=draws, random_seed=seed)

    def fit(
        self,
        draws: int = 1000,
        tune: int = 1000,
        chains: int = 4,
        cores: int | None = None,
        seed: int | None = None,
        sampler: Sampler | None = None,
        target_accept: float = 0.8,
        progressbar: bool = True,
        log_likelihood: bool | None = None,
        method: Method = "auto",
        **sampler_kwargs,
    ) -> Fit:
        """Sample the posterior with NUTS.

        Parameters
        ----------
        draws, tune, chains : int
            Draws kept and tuning steps per chain; number of chains.
        cores : int, optional
            Chains run in parallel on up to this many cores (default: all available, at most chains).
        seed : int, optional
            Random seed; the same seed reproduces the draws exactly.
        sampler : {"pymc", "nutpie"}, optional
            NUTS implementation; the default is PyMC's own.
        target_accept : float
            NUTS target acceptance rate (raise it, e.g. to 0.95, if there are divergences).
        progressbar : bool
            Show a progress bar.
        log_likelihood : bool, optional
            Store the pointwise log-likelihood (needed by :meth:`Fit.loo`); by default when
            observations × draws is at most 50 million.
        method : {"auto", "collapsed", "full"}
            ``"collapsed"`` samples the population-level parameters against the likelihood with the
            group effects integrated out and then draws the group effects from their exact conditional
            (see :mod:`bayesmlm.collapsed`); ``"full"`` samples the ordinary model with every group
            effect a parameter. Both target the same posterior. ``"auto"`` takes the collapsed path
            where :func:`~bayesmlm.collapsed.collapsed_plan` allows it; ``fit.info["method"]`` and
            ``fit.info["method_reason"]`` record the path taken and why.
        **sampler_kwargs
            Passed to :func:`pymc.sample`.

        Returns
        -------
        Fit
        """
        sampler = sampler or "pymc"
        if sampler not in available_samplers():
            raise ValueError(f"sampler {sampler!r} is not available here; choose from {available_samplers()}")
        cores = cores or min(chains, os.cpu_count() or 1)
        if log_likelihood is None:
            log_likelihood = self.design.n * draws * chains <= 50_000_000
        if method not in ("auto", "collapsed", "full"):
            raise ValueError(f"method must be 'auto', 'collapsed' or 'full', not {method!r}")
        possible, reason = collapsed_plan(self.structure)
        if method == "collapsed" and not possible:
            raise FitError(f"the collapsed path is not available for this model: {reason}")
        collapsed = possible if method == "auto" else method == "collapsed"
        if method == "full":
            reason = "requested with method='full'"
        start = time.perf_counter()
        scale, design, stats = self._standardised
        priors = self.prior_set.scaled(scale)
        if collapsed:
            model = build_collapsed_model(design, self.structure, priors, stats)
        else:
            model = build_pymc_model(design, self.structure, priors, self.parameterization)
        kwargs = dict(
            draws=draws,
            tune=tune,
            chains=chains,
            cores=cores,
            random_seed=seed,
            progressbar=progressbar,
            nuts_sampler=sampler,
            compute_convergence_checks=False,
        )
        if sampler == "pymc":
            kwargs["target_accept"] = target_accept
            kwargs["compile_kwargs"] = {"mode": "NUMBA"}  # faster than the C backend here, and BLAS-free
        else:
            kwargs["nuts_sampler_kwargs"] = {"target_accept": target_accept}
        kwargs.update(sampler_kwargs)
        with model, warnings.catch_warnings(), sampling_flags():
            warnings.filterwarnings("ignore", message=".*[Tt]he number of samples is too small.*")
            # PyMC's initial-point function holds a Scan whose inner graph PyTensor still compiles
            # with its C backend; that one-off function needs no BLAS, so its warning is noise
            warnings.filterwarnings("ignore", message=".*could not link to a BLAS.*")
            try:
                idata = pm.sample(**kwargs)
            except ValueError as err:
                # what PyMC raises when Ctrl-C came before any chain kept a draw
                if "Not enough samples to build a trace" not in str(err):
                    raise
                raise KeyboardInterrupt(_interrupted(0, chains, 0, draws)) from err
            _raise_if_interrupted(idata, draws, chains)
            if log_likelihood and not collapsed:
                pm.compute_log_likelihood(idata, progressbar=False)
        sampling_seconds = time.perf_counter() - start
        if collapsed:
            with sampling_flags():
                add_group_effects(idata, design, self.structure, stats, seed, log_likelihood)
        rescale_idata(idata, scale, self.design.y)
        seconds = time.perf_counter() - start
        info = {
            "method": "collapsed" if collapsed else "full",
            "method_reason": reason,
            "algorithm": "NUTS",
            "sampler": sampler,
            "draws": draws,
            "tune": tune,
            "chains": chains,
            "cores": cores,
            "seed": seed,
            "target_accept": target_accept,
            "parameterization": None if collapsed else dict(self.parameterization),
            "priors": {name: str(self.prior_set[name]) for name in self.prior_set.names},
            "response_scale": scale,
            "sampler_kwargs": {k: repr(v) for k, v in sampler_kwargs.items()},
            "n_obs": self.design.n,
            "n_dropped": self.design.n_dropped,
            "seconds": round(seconds, 3),
            "sampling_seconds": round(sampling_seconds, 3),
            "group_effects_seconds": round(seconds - sampling_seconds, 3),
            "versions": package_versions(),
            "aliased": list(self.design.aliased),
        }
        fit = Fit(self, idata, info)
        checked = None
        if collapsed:
            # the group effects are exact conditional draws given each population-level draw: their
            # mixing is that of the sampled parameters, and checking 10,000s of them took 80 s
            checked = [v for v in idata["posterior"].data_vars if not v.startswith("r_")]
        info["warnings"] = warn_sampling(idata, var_names=checked, stacklevel=3, collapsed=collapsed)
        return fit

    # -- persistence helpers --------------------------------------------------------------------
    def to_dict(self) -> dict:
        """Return the settings needed to rebuild this model from its data (JSON-serialisable)."""
        categories = {
            col: [str(c) for c in self.data[col].cat.categories]
            for col in self.data.columns
            if isinstance(self.data[col].dtype, pd.CategoricalDtype)
        }
        return {
            "formula": self.spec.formula,
            "na_action": self.na_action,
            "priors": {name: [p.family, list(map(list, p.params))] for name, p in self._user_priors.items()},
            "parameterization": dict(self.parameterization),
            "categories": categories,
            "index_name": self.data.index.name,
            "extra_namespace": sorted(self.extra_namespace),  # names only: functions are not saved
        }

    @classmethod
    def from_dict(cls, settings: dict, data: pd.DataFrame, extra_namespace: dict | None = None) -> Model:
        """Rebuild a model from :meth:`to_dict` settings and its data.

        A model whose formula called user functions (``extra_namespace``) needs them again: functions
        are never saved (that would mean pickle), only their names.
        """
        needed = sorted(set(settings.get("extra_namespace", [])) - set(extra_namespace or {}))
        if needed:
            raise FitError(
                f"the formula '{settings['formula']}' calls your function(s) {needed}, which are not saved "
                "with the fit; pass them again, e.g. load_fit(path, extra_namespace={"
                + ", ".join(f"'{n}': ..." for n in needed)
                + "})"
            )
        data = data.copy()
        for col, cats in settings.get("categories", {}).items():
            data[col] = pd.Categorical(data[col].astype(str), categories=cats)
        priors = {
            name: Prior(family, tuple((k, float(v)) for k, v in params))
            for name, (family, params) in settings.get("priors", {}).items()
        }
        return cls(
            settings["formula"],
            data,
            priors=priors or None,
            na_action=settings.get("na_action", "drop"),
            parameterization=settings.get("parameterization", "auto"),
            extra_namespace=extra_namespace,
        )

    def __repr__(self) -> str:
        return f"<bayesmlm.Model {self.spec}; {self.design.n} observations>"
