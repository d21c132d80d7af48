"""Stage 3, families: the family named in ``Model(..., family=, link=)``, with its default link.

``"gaussian"`` (identity link) is the linear mixed model of :mod:`bayesmlm.families.gaussian`;
``"binomial"`` and ``"bernoulli"`` (logit; probit and cloglog allowed), ``"poisson"`` (log) and
``"negativebinomial"`` (log) are the generalized families. The Gaussian family's object here only
names it (its fits take their own path: :mod:`bayesmlm.reml.optimize`, :mod:`bayesmlm.bayes.sample`).
"""

from __future__ import annotations

from bayesmlm.exceptions import ArgumentError
from bayesmlm.families.base import Family
from bayesmlm.families.binomial import Binomial
from bayesmlm.families.links import link_named
from bayesmlm.families.negative_binomial import NegativeBinomial
from bayesmlm.families.poisson import Poisson

__all__ = ["FAMILIES", "Gaussian", "family_for"]


class Gaussian(Family):
    """The Gaussian family of the linear mixed model (identity link), as a name beside the others."""

    name = "gaussian"
    links = ("identity",)
    generalized = False


#: family name -> (class, links allowed; the first is the default)
FAMILIES: dict[str, tuple[type[Family], tuple[str, ...]]] = {
    "gaussian": (Gaussian, Gaussian.links),
    "binomial": (Binomial, Binomial.links),
    "bernoulli": (Binomial, Binomial.links),
    "poisson": (Poisson, Poisson.links),
    "negativebinomial": (NegativeBinomial, NegativeBinomial.links),
}
_ALIASES = {
    "negative_binomial": "negativebinomial",
    "negbinomial": "negativebinomial",
    "nb": "negativebinomial",
}


def family_for(family: str, link: str | None = None) -> Family:
    """Return the family object for a name and link.

    Raises
    ------
    ValueError
        For an unknown family, or a link the family does not have; the message lists the choices.

    Examples
    --------
    >>> family_for("binomial", "probit"), family_for("poisson"), family_for("gaussian").generalized
    (binomial(link=probit), poisson(link=log), False)
    """
    if not isinstance(family, str):
        raise ArgumentError(f"family must be a name such as 'binomial', not {type(family).__name__}")
    key = _ALIASES.get(family.lower(), family.lower())
    if key not in FAMILIES:
        raise ArgumentError(f"unknown family {family!r}; the families are {', '.join(FAMILIES)}")
    cls, links = FAMILIES[key]
    link = links[0] if link is None else link
    if link not in links:
        raise ArgumentError(f"the {key} family has the link(s) {', '.join(links)}, not {link!r}")
    return cls(link_named(link))
