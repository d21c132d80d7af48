"""bayesmlm: Bayesian multilevel linear models with lme4 formulas and an lme4-exact REML/ML mode."""

from bayesmlm.datasets import list_datasets, load_dataset
from bayesmlm.exceptions import (
    BayesMLMError,
    BayesMLMWarning,
    ConvergenceWarning,
    DataError,
    DroppedRowsWarning,
    FitError,
    FormulaError,
    RankDeficientWarning,
    SingularFitWarning,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "BayesMLMError",
    "BayesMLMWarning",
    "ConvergenceWarning",
    "DataError",
    "DroppedRowsWarning",
    "FitError",
    "FormulaError",
    "RankDeficientWarning",
    "SingularFitWarning",
    "__version__",
    "list_datasets",
    "load_dataset",
]
