"""bayesmlm: Bayesian multilevel linear models with lme4 formulas and an lme4-exact REML/ML mode."""

from bayesmlm.bayes_fit import Fit, compare
from bayesmlm.datasets import list_datasets, load_dataset
from bayesmlm.design import Design, RandomBlock, make_design
from bayesmlm.estimates import compare_estimates
from bayesmlm.exceptions import (
    BayesMLMError,
    BayesMLMWarning,
    ConvergenceWarning,
    DataError,
    DroppedRowsWarning,
    FewGroupsWarning,
    FitError,
    FormulaError,
    MissingValueWarning,
    PriorError,
    RankDeficientWarning,
    SamplingWarning,
    SingularFitWarning,
)
from bayesmlm.formula import ModelSpec, RandomTerm, parse_formula
from bayesmlm.icc import ICC, interpret_icc
from bayesmlm.likelihood_fit import LikelihoodFit
from bayesmlm.lrt import LRTResult, lrt
from bayesmlm.model import Model, available_samplers
from bayesmlm.persistence import load_fit
from bayesmlm.plots import (
    complete_pooling_coefficients,
    no_pooling_coefficients,
    plot_caterpillar,
    plot_compare,
    plot_groups,
    plot_icc,
    plot_pooling,
    plot_ppc,
    plot_shrinkage,
)
from bayesmlm.priors import (
    LKJ,
    Exponential,
    HalfCauchy,
    HalfNormal,
    HalfStudentT,
    Normal,
    Prior,
    PriorSet,
    StudentT,
)
from bayesmlm.statsmodels_api import MixedLM, mixedlm

__version__ = "0.1.0.dev0"

__all__ = [
    "ICC",
    "LKJ",
    "BayesMLMError",
    "BayesMLMWarning",
    "ConvergenceWarning",
    "DataError",
    "Design",
    "DroppedRowsWarning",
    "Exponential",
    "FewGroupsWarning",
    "Fit",
    "FitError",
    "FormulaError",
    "HalfCauchy",
    "HalfNormal",
    "HalfStudentT",
    "LRTResult",
    "LikelihoodFit",
    "MissingValueWarning",
    "MixedLM",
    "Model",
    "ModelSpec",
    "Normal",
    "Prior",
    "PriorError",
    "PriorSet",
    "RandomBlock",
    "RandomTerm",
    "RankDeficientWarning",
    "SamplingWarning",
    "SingularFitWarning",
    "StudentT",
    "__version__",
    "available_samplers",
    "compare",
    "compare_estimates",
    "complete_pooling_coefficients",
    "interpret_icc",
    "list_datasets",
    "load_dataset",
    "load_fit",
    "lrt",
    "make_design",
    "mixedlm",
    "no_pooling_coefficients",
    "parse_formula",
    "plot_caterpillar",
    "plot_compare",
    "plot_groups",
    "plot_icc",
    "plot_pooling",
    "plot_ppc",
    "plot_shrinkage",
]
