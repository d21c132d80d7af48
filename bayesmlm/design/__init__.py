"""Stage 2, the design: a parsed formula evaluated on data, and what the likelihood needs from it.

``evaluate`` builds the :class:`Design` (``y``, ``X``, one :class:`RandomBlock` per random term) after
the ``checks`` of the data; ``levels`` labels the groups; ``covariance`` merges the blocks of each
grouping factor into the :class:`RandomStructure` that theta parameterises; ``crossprod`` computes the
sufficient statistics once; ``names`` is the one naming rule for parameters. Nothing here fits.
"""

from bayesmlm.design.covariance import FactorTerms, RandomStructure, random_structure
from bayesmlm.design.crossprod import CrossProducts, cross_products
from bayesmlm.design.evaluate import Design, RandomBlock, make_design
from bayesmlm.design.levels import group_labels, level_keys

__all__ = [
    "CrossProducts",
    "Design",
    "FactorTerms",
    "RandomBlock",
    "RandomStructure",
    "cross_products",
    "group_labels",
    "level_keys",
    "make_design",
    "random_structure",
]
