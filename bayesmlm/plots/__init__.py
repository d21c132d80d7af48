"""Plots of fitted multilevel models: shrinkage, pooling, per-group fits, group effects, checks, ICCs.

Every function takes a fit (a Bayesian :class:`~bayesmlm.bayes.fit.Fit`, or a REML/ML
:class:`~bayesmlm.reml.fit.LikelihoodFit` where that makes sense) through the faces both show, draws
into ``ax=`` when it is given (one Axes, or a sequence of Axes for plots with several panels) and
returns the matplotlib Figure. Point estimates are posterior means for a Bayesian fit and the REML/ML
estimates (conditional modes for the group effects) for a likelihood fit.

``pooling`` (shrinkage and pooling), ``groups`` (per-group fits, caterpillar), ``checks`` (posterior
predictive), ``compare`` (ICC bands, Bayes beside REML); ``_common`` holds what they share.
"""

from bayesmlm.plots.checks import plot_ppc
from bayesmlm.plots.compare import plot_compare, plot_icc
from bayesmlm.plots.groups import plot_caterpillar, plot_groups
from bayesmlm.plots.pooling import (
    complete_pooling_coefficients,
    no_pooling_coefficients,
    plot_pooling,
    plot_shrinkage,
)

__all__ = [
    "complete_pooling_coefficients",
    "no_pooling_coefficients",
    "plot_caterpillar",
    "plot_compare",
    "plot_groups",
    "plot_icc",
    "plot_pooling",
    "plot_ppc",
    "plot_shrinkage",
]
