"""Plots of fitted multilevel models: shrinkage, pooling, per-group fits, group effects, checks, ICCs.

Every function takes a fit (a Bayesian :class:`~bayesmlm.bayes.fit.Fit`, or a REML/ML
:class:`~bayesmlm.reml.fit.LikelihoodFit` where that makes sense) through the faces both show, draws
into ``ax=`` when it is given (one Axes, or a sequence of Axes for plots with several panels) and
returns the matplotlib Figure. Point estimates are posterior means for a Bayesian fit and the REML/ML
estimates (conditional modes for the group effects) for a likelihood fit.

``pooling`` (shrinkage and pooling), ``groups`` (per-group fits, caterpillar), ``checks`` (posterior
and prior predictive), ``compare`` (ICC bands, Bayes beside REML), ``effects`` (conditional effects),
``profile`` (zeta plots of a REML/ML fit), ``sensitivity`` (power-scaled posteriors); ``_common``
holds what they share.
"""

from bayesmlm.plots.checks import plot_ppc, plot_prior_predictive
from bayesmlm.plots.compare import plot_compare, plot_icc
from bayesmlm.plots.effects import conditional_effects, plot_conditional_effects
from bayesmlm.plots.groups import plot_caterpillar, plot_groups
from bayesmlm.plots.pooling import (
    complete_pooling_coefficients,
    no_pooling_coefficients,
    plot_pooling,
    plot_shrinkage,
)
from bayesmlm.plots.profile import plot_profile
from bayesmlm.plots.sensitivity import plot_prior_sensitivity

__all__ = [
    "complete_pooling_coefficients",
    "conditional_effects",
    "no_pooling_coefficients",
    "plot_caterpillar",
    "plot_compare",
    "plot_conditional_effects",
    "plot_groups",
    "plot_icc",
    "plot_pooling",
    "plot_ppc",
    "plot_prior_predictive",
    "plot_prior_sensitivity",
    "plot_profile",
    "plot_shrinkage",
]
