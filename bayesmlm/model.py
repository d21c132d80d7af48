"""The user-facing :class:`Model`: a thin chain of the pipeline stages.

``parse_formula`` → ``make_design`` → ``random_structure`` / ``cross_products`` → ``optimize_theta``
→ :class:`~bayesmlm.reml.fit.LikelihoodFit` (REML/ML), or → ``resolve_priors`` →
``build_pymc_model`` / ``build_collapsed_model`` → ``sample_posterior`` →
:class:`~bayesmlm.bayes.fit.Fit` (Bayesian). Each stage can be called on its own; nothing Bayesian
(PyMC, ArviZ) is imported until a Bayesian method is called.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from bayesmlm.arguments import checked, checked_methods, choice
from bayesmlm.bayes.options import (
    check_parameterization_request,
    check_priors_request,
    checked_fit_options,
    pilot_estimate,
)
from bayesmlm.design.covariance import RandomStructure, random_structure
from bayesmlm.design.crossprod import CrossProducts, cross_products
from bayesmlm.design.dask_input import is_distributed_input, refuse_distributed
from bayesmlm.design.evaluate import Design, NaAction, make_design
from bayesmlm.design.response import WEIGHTS_COLUMN
from bayesmlm.design.scaling import choose_scaling, scaling_from_moments
from bayesmlm.exceptions import ArgumentError, FitError, FormulaError
from bayesmlm.families.base import Family
from bayesmlm.families.registry import family_for
from bayesmlm.families.response_checks import warn_if_discrete
from bayesmlm.reml.fit import LikelihoodFit
from bayesmlm.reml.glmm_fit import GeneralizedLikelihoodFit, fit_glmm
from bayesmlm.reml.optimize import optimize_theta
from bayesmlm.settings import model_arguments, model_settings
from bayesmlm.spec.formula import ModelSpec, parse_formula
from bayesmlm.spec.namespace import formula_namespace

if TYPE_CHECKING:
    import pymc as pm

    from bayesmlm.bayes.collapsed_stats import Standardised
    from bayesmlm.bayes.fit import Fit
    from bayesmlm.bayes.prior_set import PriorSet
    from bayesmlm.bayes.priors import Prior
    from bayesmlm.bayes.pymc_model import Parameterization
    from bayesmlm.design.summary import ReducedStatistics

__all__ = ["Model"]

Sampler = Literal["pymc", "nutpie"]
Method = Literal["auto", "collapsed", "full"]


@checked_methods
class Model:
    """A linear or generalized linear mixed model written as an lme4 formula.

    Parameters
    ----------
    formula : str
        lme4 formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``; a binomial response as
        ``cbind(successes, failures)`` or ``p(successes, trials)``, an offset as ``offset(np.log(x))``.
    data : DataFrame, dask.dataframe.DataFrame, str or PathLike
        The data (never modified): a pandas DataFrame, or a Dask DataFrame, or a path, directory or
        glob of Parquet or CSV files (read lazily with Dask). From Dask or files, the statistics are
        computed where the data are, by the active ``distributed.Client`` if there is one, and the rows
        never come to this machine: REML/ML and the collapsed posterior work, features that need the
        rows raise :class:`~bayesmlm.RowsNeededError` (see ``docs/dask.md``; Gaussian family only).
    family : {"gaussian", "binomial", "bernoulli", "poisson", "negativebinomial"}
        The response distribution (:mod:`bayesmlm.families`); a 0/1, boolean or two-level response
        with ``"binomial"`` is Bernoulli, as in glmer.
    link : str, optional
        The link (default canonical: logit, log; ``"probit"`` or ``"cloglog"`` for binomial).
    weights : str or array_like, optional
        Prior weights (lme4's ``weights``): a column name or one number per row. Gaussian: row ``i``
        has residual variance ``σ² / w_i`` (``w > 0``; REML, ML and both Bayesian paths); other
        families: a row of weight ``w`` counts as ``w`` observations (see ``docs/formulas.md``).
    priors : dict, optional
        Overrides of the default priors, by class (``"Intercept"``, ``"b"``, ``"sd"``, ``"cor"``,
        ``"sigma"``) or by name (``"Days"``, ``"sd(Days|Subject)"``, ``"cor(Subject)"``); see
        :mod:`bayesmlm.bayes.prior_set` and :attr:`priors`.
    na_action : {"drop", "error"}
        What to do with rows that have a missing value in a used column.
    parameterization : {"auto", "centered", "noncentered"} or dict
        How each random block is written in the Bayesian model: chosen per block from the REML
        estimate (``"auto"``: :mod:`bayesmlm.bayes.centring_choice`), the same for all, or a dict from
        block label to choice (GLMMs also ``"mixed"``, per level, and ``"integrated"``, a nested pair).
    extra_namespace : dict, optional
        Functions the formula may call besides numpy's element-wise functions (``np.log``, ``log``,
        ...) and formulae's transforms (``C``, ``scale``, ``center``, ...), e.g.
        ``{"logit": scipy.special.logit}``. Nothing else in a formula is executed (see
        :mod:`bayesmlm.spec.expression`).

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy"))
    >>> round(m.fit_reml().loglik, 4)
    -871.8141
    """

    @checked
    def __init__(
        self,
        formula: str,
        data: pd.DataFrame,
        family: str = "gaussian",
        link: str | None = None,
        weights=None,
        priors: dict[str, Prior] | None = None,
        na_action: NaAction = "drop",
        parameterization: str | dict[str, Parameterization] = "auto",
        extra_namespace: dict | None = None,
    ):
        choice("na_action", na_action, ("drop", "error"))
        check_parameterization_request(parameterization)
        check_priors_request(priors)
        self.family: Family = family_for(family, link)
        self.extra_namespace = dict(extra_namespace or {})
        formula_namespace(self.extra_namespace)  # refuses bad names or values before the formula is read
        self.spec: ModelSpec = parse_formula(formula, self.extra_namespace)
        self.na_action = na_action
        self._user_priors = dict(priors) if priors else {}
        self._parameterization_request = parameterization
        #: the statistics reduced on the cluster, for a Dask DataFrame or files (else None)
        self.reduction: ReducedStatistics | None = None
        if is_distributed_input(data):
            from bayesmlm.design.summary import summarise_design

            refuse_distributed(self.family.generalized, weights)
            self._require_random_terms(self.spec.random)  # before any pass over the data
            self.design, self.reduction = summarise_design(
                self.spec, data, na_action=na_action, extra_namespace=self.extra_namespace
            )
        else:
            self.design: Design = make_design(
                self.spec, data, na_action, self.extra_namespace, weights, self.family.generalized
            )
        self.weights = WEIGHTS_COLUMN if weights is not None and not isinstance(weights, str) else weights
        self._require_random_terms(self.design.blocks)
        if self.family.generalized:
            self.family.check_response(self.design, stacklevel=2)
        elif self.design.holds_rows:
            warn_if_discrete(self.design, stacklevel=2)

    def _require_random_terms(self, terms) -> None:
        if not terms:
            raise FormulaError(
                f"no random-effects terms in '{self.spec.formula}'; add one such as (1 | group) "
                "(for a model without random effects use ordinary least squares)"
            )

    @cached_property
    def structure(self) -> RandomStructure:
        """The random-effects structure (factors in lme4's order)."""
        return random_structure(self.design)

    @cached_property
    def cross_products(self) -> CrossProducts:
        """Sufficient statistics for the REML/ML objective, computed once."""
        if self.reduction is not None:
            return self.reduction.cross_products()
        return cross_products(self.design, self.structure)

    @cached_property
    def scaled_cross_products(self) -> CrossProducts:
        """REML/ML's sufficient statistics of centred unit-spread columns (:mod:`bayesmlm.design.scaling`)."""
        if self.reduction is not None:  # centred sums from the cluster, put in the moments' frame
            scaling = scaling_from_moments(self.design, self.structure)
            return self.reduction.scaled_cross_products(scaling, unscaled=self.cross_products)
        scaling = choose_scaling(self.design, self.structure)
        return cross_products(self.design, self.structure, scaling=scaling)

    # -- REML / ML ------------------------------------------------------------------------------
    def _fit_likelihood(self, reml: bool, theta0: np.ndarray | None) -> LikelihoodFit:
        if self.family.generalized and reml:
            raise FitError(
                f"REML exists only for the Gaussian family; a {self.family.name} model is fitted by "
                "maximum likelihood: use fit_ml() (Laplace, or n_agq=k for adaptive quadrature)"
            )
        stats = self.scaled_cross_products
        opt = optimize_theta(self.structure, stats, reml=reml, theta0=theta0)
        return LikelihoodFit(self.design, self.structure, stats, opt)

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

    def fit_ml(
        self, theta0: np.ndarray | None = None, n_agq: int = 1
    ) -> LikelihoodFit | GeneralizedLikelihoodFit:
        """Fit by maximum likelihood (lme4's ``REML = FALSE``; glmer's Laplace or ``nAGQ`` for GLMMs).

        Parameters
        ----------
        theta0 : ndarray, optional
            Starting relative covariance parameters.
        n_agq : int
            Generalized families: 1 is the Laplace approximation; 2 to 25 adaptive Gauss-Hermite
            quadrature points (one scalar random effect only; see :mod:`bayesmlm.reml.glmm_fit`).

        Returns
        -------
        LikelihoodFit or GeneralizedLikelihoodFit
        """
        if self.family.generalized:
            return fit_glmm(self.design, self.structure, self.family, n_agq=n_agq, theta0=theta0)
        if n_agq != 1:
            raise ArgumentError("n_agq is for the generalized families; a Gaussian ML fit is exact")
        return self._fit_likelihood(False, theta0)

    # -- Bayesian ---------------------------------------------------------------------------
    @property
    def data(self) -> pd.DataFrame:
        """The rows and columns the model uses (a copy: editing it changes nothing in the model)."""
        return self.design.data.copy()

    @cached_property
    def prior_set(self) -> PriorSet:
        """The resolved priors (defaults with the user's overrides)."""
        from bayesmlm.bayes.prior_set import resolve_priors

        if self.family.generalized:
            from bayesmlm.bayes.glmm_priors import default_glmm_priors

            defaults = default_glmm_priors(self.design, self.structure, self.family)
            return resolve_priors(self.design, self.structure, self._user_priors, defaults)
        return resolve_priors(self.design, self.structure, self._user_priors)

    @property
    def priors(self) -> pd.DataFrame:
        """Table of every prior: parameter, class, distribution, and whether it is a default."""
        return self.prior_set.table()

    _pilot = cached_property(pilot_estimate)  # (theta, row weights) the parameterisation is chosen from

    @cached_property
    def _centring(self) -> tuple[dict[str, Parameterization], dict[str, np.ndarray]]:
        from bayesmlm.bayes.centring_choice import resolve_parameterization

        request, pilot = self._parameterization_request, lambda: self._pilot
        return resolve_parameterization(self.structure, request, pilot, self.family.generalized)

    parameterization = property(
        lambda self: self._centring[0],
        doc='Centred, non-centred or ``"mixed"`` per block label (:mod:`bayesmlm.bayes.centring_choice`).',
    )
    centred_levels = property(lambda self: self._centring[1], doc='A "mixed" block -> its centred levels.')

    @cached_property
    def _standardised(self) -> Standardised:
        """What the sampler sees: the response divided by its sd, and its statistics."""
        from bayesmlm.bayes.sample import standardise

        return standardise(self.design, self.structure, self.reduction)

    def build(self) -> pm.Model:
        """Build the unsampled PyMC model, to inspect or extend (see :mod:`bayesmlm.bayes.pymc_model`)."""
        from bayesmlm.bayes.pymc_model import build_pymc_model

        self.design.require_rows("Model.build() (the full PyMC model holds every row)")
        if self.family.generalized:
            from bayesmlm.bayes.glmm_model import build_glmm_model

            parts = (self.design, self.structure, self.family, self.prior_set, self.parameterization)
            return build_glmm_model(*parts, self.centred_levels)
        return build_pymc_model(self.design, self.structure, self.prior_set, self.parameterization)

    def sample_prior_predictive(self, draws: int = 500, seed: int | None = None):
        """Return draws from the prior and the prior predictive distribution, as an ArviZ DataTree.

        Parameters
        ----------
        draws : int
        seed : int, optional
        """
        import pymc as pm

        from bayesmlm.bayes.sample import sampling_flags

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
        sampler_kwargs: dict | None = None,
        group_effects: Literal["auto", "store", "on_demand"] = "auto",
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
            NUTS implementation; by default nutpie on a density written out where one applies (see
            "Samplers" in ``docs/bayesian.md``), else PyMC's own.
        target_accept : float
            NUTS target acceptance rate (raise it, e.g. to 0.95, if there are divergences).
        progressbar : bool
            Show a progress bar.
        log_likelihood : bool, optional
            Store the pointwise log-likelihood (needed by :meth:`Fit.loo`); by default when
            observations × draws is at most 50 million and the group effects are stored.
        method : {"auto", "collapsed", "full"}
            ``"collapsed"`` samples the population-level parameters with the group effects integrated out,
            then draws those from their exact conditional (:mod:`bayesmlm.bayes.collapsed`); ``"full"``
            samples every group effect as a parameter: the same posterior. ``"auto"`` takes the cheapest
            of collapsed, partially collapsed (the largest factor integrated out) and full by the cost model
            of :mod:`bayesmlm.bayes.method_cost`; ``fit.info["method"]``/``["method_reason"]`` say why.
        sampler_kwargs : dict, optional
            More arguments for :func:`pymc.sample` and its NUTS (``{"max_treedepth": 12}``); each key
            is checked, and the ones ``fit`` has itself (``draws``, ``random_seed``, ...) are refused.
        group_effects : {"auto", "store", "on_demand"}
            Group effects kept in the posterior, or drawn again (reproducibly) when asked; ``"auto"`` stores
            them up to 256 MB (one-factor collapsed fits: :mod:`bayesmlm.bayes.group_draws`).

        Raises
        ------
        UnknownArgumentError, ArgumentError
            For a keyword ``fit`` does not take (``fit(draw=200)``: did you mean draws?); for a value
            out of range (``draws=0``, ``chains=0``, ``target_accept=1.5``, ``group_effects="keep"``).

        Returns
        -------
        Fit
        """
        from bayesmlm.bayes.fit import Fit
        from bayesmlm.bayes.method_cost import fit_plan
        from bayesmlm.bayes.partial_centring import partial_chooser
        from bayesmlm.bayes.sample import sample_posterior

        sampler, draws, tune, chains, cores, seed, target_accept, sampler_kwargs = checked_fit_options(
            sampler, draws, tune, chains, cores, seed, target_accept, method, sampler_kwargs
        )
        settings = dict(draws=draws, tune=tune, chains=chains, cores=cores, seed=seed, sampler=sampler)
        settings |= dict(sampler_kwargs=sampler_kwargs, stacklevel=2)
        plan = fit_plan(self, method, group_effects, settings, log_likelihood)
        collapsed, partial_ok, reason, effects, log_likelihood = plan
        settings |= dict(target_accept=target_accept, progressbar=progressbar, log_likelihood=log_likelihood)
        if self.family.generalized:
            from bayesmlm.bayes.glmm_sample import sample_generalized

            return sample_generalized(self, method, **settings)
        idata, info = sample_posterior(
            self.design,
            self.structure,
            self.prior_set,
            None if collapsed else self.parameterization,
            self._standardised,
            collapsed=collapsed,
            reason=reason,
            partial_chooser=partial_chooser(self) if partial_ok else None,
            group_effects=effects,
            **settings,
        )
        return Fit(self, idata, info)

    # -- persistence helpers (bayesmlm.settings) ----------------------------------------------
    def to_dict(self) -> dict:
        """Return the settings needed to rebuild this model from its data (JSON-serialisable)."""
        return model_settings(self)

    @classmethod
    def from_dict(cls, settings: dict, data: pd.DataFrame, extra_namespace: dict | None = None) -> Model:
        """Rebuild a model from :meth:`to_dict` settings and its data (see :mod:`bayesmlm.settings`)."""
        return cls(data=data, extra_namespace=extra_namespace, **model_arguments(settings, extra_namespace))

    def __repr__(self) -> str:
        family = f"; {self.family!r}" if self.family.generalized else ""
        return f"<bayesmlm.Model {self.spec}{family}; {self.design.n} observations>"
