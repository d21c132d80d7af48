"""The user-facing :class:`Model`: a thin chain of the pipeline stages.

``parse_formula`` → ``make_design`` → ``random_structure`` / ``cross_products`` → ``optimize_theta``
→ :class:`~bayesmlm.likelihood_fit.LikelihoodFit`. Each stage can be called on its own.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import pandas as pd

from bayesmlm.covariance import RandomStructure, random_structure
from bayesmlm.crossprod import CrossProducts, cross_products
from bayesmlm.design import Design, NaAction, make_design
from bayesmlm.exceptions import FormulaError
from bayesmlm.formula import ModelSpec, parse_formula
from bayesmlm.likelihood_fit import LikelihoodFit
from bayesmlm.optimize import optimize_theta

__all__ = ["Model"]


class Model:
    """A linear mixed model written as an lme4 formula.

    Parameters
    ----------
    formula : str
        lme4 formula, e.g. ``"Reaction ~ Days + (Days | Subject)"``.
    data : DataFrame
        The data (never modified).
    na_action : {"drop", "error"}
        What to do with rows that have a missing value in a used column.

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy"))
    >>> fit = m.fit_reml()
    >>> round(fit.loglik, 4)
    -871.8141
    """

    def __init__(self, formula: str, data: pd.DataFrame, na_action: NaAction = "drop"):
        self.spec: ModelSpec = parse_formula(formula)
        self.design: Design = make_design(self.spec, data, na_action=na_action)
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

    def __repr__(self) -> str:
        return f"<bayesmlm.Model {self.spec}; {self.design.n} observations>"
