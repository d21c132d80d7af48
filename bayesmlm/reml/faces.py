"""Stage 4a, REML/ML: what the small-sample modules read from a fit (a typing Protocol).

:mod:`~bayesmlm.reml.ddf`, :mod:`~bayesmlm.reml.profile`, :mod:`~bayesmlm.reml.confint` and
:mod:`~bayesmlm.reml.bootstrap` work on a :class:`~bayesmlm.reml.fit.LikelihoodFit`, which imports
them; they name it by this Protocol so that no import runs in a circle, not even for type checking.
"""

from __future__ import annotations

from typing import Any, Protocol

import pandas as pd

from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.crossprod import CrossProducts
from bayesmlm.design.evaluate import Design
from bayesmlm.draws.arrays import ParameterDraws
from bayesmlm.reml.estimates import Estimates
from bayesmlm.reml.optimize import OptSummary

__all__ = ["LikelihoodFaces"]


class LikelihoodFaces(Protocol):
    """A REML/ML fit as the small-sample modules see it (:class:`~bayesmlm.reml.fit.LikelihoodFit`)."""

    design: Design
    structure: RandomStructure
    stats: CrossProducts
    opt: OptSummary
    method: str
    theta: Any
    estimates: Estimates
    bootstrap_cache: Any  # bootstrap.BootstrapCache
    small_sample: Any  # ddf.SmallSample

    @property
    def sigma(self) -> float:
        """Residual standard deviation."""

    @property
    def fixed_effects(self) -> pd.DataFrame:
        """Fixed effects: estimate, se, z, p, ci_low, ci_high."""

    def population_draws(self) -> ParameterDraws:
        """Return the estimates as one draw."""

    def refit(self, reml: bool) -> LikelihoodFaces:
        """Refit the same model by REML or ML."""
