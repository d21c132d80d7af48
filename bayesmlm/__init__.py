"""bayesmlm: Bayesian multilevel linear models with lme4 formulas and an lme4-exact REML/ML mode.

The public API, in pipeline order. Every stage can be called on its own, as lme4 exports its modular
stages: ``parse_formula`` → ``make_design`` → ``random_structure`` / ``cross_products`` →
``optimize_theta`` → ``LikelihoodFit`` (REML/ML), or ``resolve_priors`` → ``build_pymc_model`` /
``build_collapsed_model`` → ``sample_posterior`` → ``Fit`` (Bayes); then the results (ICC,
``compare_estimates``, ``lrt``) and the plots. :class:`Model` chains them.

``import bayesmlm`` loads none of PyMC, PyTensor, ArviZ or matplotlib: each name below is imported
from its module on first use (a Bayesian fit loads PyMC, a plot matplotlib).
"""

from __future__ import annotations

import importlib

from bayesmlm._version import __version__
from bayesmlm.exceptions import (
    ArgumentError,
    BayesMLMError,
    BayesMLMWarning,
    ConvergenceWarning,
    DataError,
    DroppedRowsWarning,
    FamilyWarning,
    FewGroupsWarning,
    FitError,
    FormulaError,
    GroupEffectsNotStoredError,
    MissingValueWarning,
    PriorError,
    RankDeficientWarning,
    RowsNeededError,
    SamplingWarning,
    SeparationWarning,
    SingularFitWarning,
    UnknownArgumentError,
)

#: public name -> the module it lives in, stage by stage
_API: dict[str, str] = {
    # data
    "list_datasets": "bayesmlm.datasets.catalogue",
    "load_dataset": "bayesmlm.datasets.catalogue",
    # 1. specification
    "ModelSpec": "bayesmlm.spec.formula",
    "RandomTerm": "bayesmlm.spec.formula",
    "parse_formula": "bayesmlm.spec.formula",
    # 2. design
    "Design": "bayesmlm.design.evaluate",
    "RandomBlock": "bayesmlm.design.evaluate",
    "make_design": "bayesmlm.design.evaluate",
    "random_structure": "bayesmlm.design.covariance",
    "cross_products": "bayesmlm.design.crossprod",
    # the model that chains the stages
    "Model": "bayesmlm.model",
    "available_samplers": "bayesmlm.bayes.options",
    # 4a. REML / ML
    "optimize_theta": "bayesmlm.reml.optimize",
    "LikelihoodFit": "bayesmlm.reml.fit",
    "LRTResult": "bayesmlm.reml.lrt",
    "lrt": "bayesmlm.reml.lrt",
    "bootstrap": "bayesmlm.reml.bootstrap",
    "BootstrapResult": "bayesmlm.reml.bootstrap",
    "Profile": "bayesmlm.reml.profile",
    "profile": "bayesmlm.reml.profile",
    # 4b. Bayes
    "Prior": "bayesmlm.bayes.priors",
    "Normal": "bayesmlm.bayes.priors",
    "StudentT": "bayesmlm.bayes.priors",
    "HalfNormal": "bayesmlm.bayes.priors",
    "HalfStudentT": "bayesmlm.bayes.priors",
    "HalfCauchy": "bayesmlm.bayes.priors",
    "Exponential": "bayesmlm.bayes.priors",
    "LKJ": "bayesmlm.bayes.priors",
    "PriorSet": "bayesmlm.bayes.prior_set",
    "resolve_priors": "bayesmlm.bayes.prior_set",
    "build_pymc_model": "bayesmlm.bayes.pymc_model",
    "build_collapsed_model": "bayesmlm.bayes.collapsed",
    "sample_posterior": "bayesmlm.bayes.sample",
    "Fit": "bayesmlm.bayes.fit",
    "compare": "bayesmlm.bayes.compare",
    "load_fit": "bayesmlm.persistence",
    "PriorSensitivity": "bayesmlm.bayes.sensitivity",
    # 5. results
    "ICC": "bayesmlm.draws.icc",
    "interpret_icc": "bayesmlm.draws.icc",
    "R2": "bayesmlm.draws.r2",
    "r2": "bayesmlm.draws.r2",
    "compare_estimates": "bayesmlm.reml_vs_bayes",
    "report": "bayesmlm.report",
    "Report": "bayesmlm.report",
    # 6. plots
    "complete_pooling_coefficients": "bayesmlm.plots.pooling",
    "no_pooling_coefficients": "bayesmlm.plots.pooling",
    "plot_shrinkage": "bayesmlm.plots.pooling",
    "plot_pooling": "bayesmlm.plots.pooling",
    "plot_groups": "bayesmlm.plots.groups",
    "plot_caterpillar": "bayesmlm.plots.groups",
    "plot_ppc": "bayesmlm.plots.checks",
    "plot_rootogram": "bayesmlm.plots.discrete",
    "plot_calibration": "bayesmlm.plots.discrete",
    "plot_icc": "bayesmlm.plots.compare",
    "plot_compare": "bayesmlm.plots.compare",
    "plot_prior_predictive": "bayesmlm.plots.checks",
    "plot_conditional_effects": "bayesmlm.plots.effects",
    "conditional_effects": "bayesmlm.plots.effects",
    "plot_profile": "bayesmlm.plots.profile",
    "plot_prior_sensitivity": "bayesmlm.plots.sensitivity",
    # the statsmodels entry point
    "MixedLM": "bayesmlm.statsmodels_api.model",
    "mixedlm": "bayesmlm.statsmodels_api.formula_api",
    "BinomialBayesMixedGLM": "bayesmlm.statsmodels_api.bayes_glm",
    "PoissonBayesMixedGLM": "bayesmlm.statsmodels_api.bayes_glm",
}

__all__ = [
    "ArgumentError",
    "BayesMLMError",
    "BayesMLMWarning",
    "ConvergenceWarning",
    "DataError",
    "DroppedRowsWarning",
    "FamilyWarning",
    "FewGroupsWarning",
    "FitError",
    "FormulaError",
    "MissingValueWarning",
    "PriorError",
    "RankDeficientWarning",
    "GroupEffectsNotStoredError",
    "RowsNeededError",
    "SamplingWarning",
    "SeparationWarning",
    "SingularFitWarning",
    "UnknownArgumentError",
    "__version__",
    *_API,
]


def __getattr__(name: str):
    """Import a public name from its stage's module on first use (PEP 562)."""
    module = _API.get(name)
    if module is None:
        raise AttributeError(f"module 'bayesmlm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))
