"""Stage 4b, Bayes: the priors of one model: auto-scaled weakly informative defaults, and overrides.

Every parameter of a model gets a prior. The defaults follow rstanarm and brms: they are scaled by the
spread of the response and of the predictors, so that they are weakly informative whatever the units of
the data, and they are computed from the rows the model uses (after missing values were dropped).
``sd(v)`` is the sample standard deviation over those rows (``ddof=1``).

=========================  ==============================================  ================================
Parameter (class)          Default prior                                   Notes
=========================  ==============================================  ================================
``Intercept``              ``Normal(mean(y), 2.5·sd(y))``                  the intercept at the means of the
                                                                           predictors (the model builder
                                                                           centres the predictors)
coefficient ``k`` (``b``)  ``Normal(0, 2.5·sd(y) / sd(x_k))``              ``2.5·sd(y)`` if ``x_k`` is
                                                                           constant
``sd(term|group)`` (sd)    ``HalfStudentT(3, sd(y) / s_k)``                ``s_k = 1`` for an intercept
                                                                           column, else ``sd(z_k)`` (1 if
                                                                           the column is constant)
``cor(group)`` (cor)       ``LKJ(2)``                                      one per correlated block of two
                                                                           or more terms
``sigma`` (sigma)          ``HalfStudentT(3, sd(y))``                      residual standard deviation
=========================  ==============================================  ================================

``LKJ(2)`` mildly favours smaller correlations: with few groups a flat ``LKJ(1)`` lets a correlation pile
up at ±1, the boundary that lme4 reports as a singular fit. A constant response has no scale, so the
defaults cannot be computed and :class:`~bayesmlm.exceptions.PriorError` is raised.

Parameter names
---------------
* fixed effects are named as in the design (``"Intercept"``, ``"Days"``);
* random-effect standard deviations are ``"sd(<term>|<group>)"``, one per column of each grouping factor
  (``"sd(Intercept|Subject)"``, ``"sd(Days|Subject)"``); if a term name occurs twice on one factor (two
  blocks with the same term) its columns are named by lme4's block labels (``"sd(Intercept|Subject.1)"``);
* correlation matrices are ``"cor(<group>)"``, or ``"cor(<block label>)"`` when a factor has several
  correlated blocks;
* the residual standard deviation is ``"sigma"``.

Overrides (:func:`resolve_priors`) are keyed by a specific name or by a class: ``"Intercept"``, ``"b"``
(every fixed effect except the intercept), ``"sd"``, ``"cor"`` or ``"sigma"``. A specific name wins over
its class. Class keys are always read as classes, so a fixed effect literally called ``b``, ``sd`` or
``cor`` can only be given a prior through the ``"b"`` class.

Examples
--------
>>> import bayesmlm as bm
>>> from bayesmlm.bayes.priors import HalfNormal, Normal
>>> m = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy"))
>>> print(resolve_priors(m.design, m.structure, {"b": Normal(0, 50), "sigma": HalfNormal(100)}))
                           class                            prior   source
Intercept              Intercept    Normal(mu=298.5, sigma=140.8)  default
Days                           b           Normal(mu=0, sigma=50)     user
sd(Intercept|Subject)         sd  HalfStudentT(nu=3, sigma=56.33)  default
sd(Days|Subject)              sd  HalfStudentT(nu=3, sigma=19.56)  default
cor(Subject)                 cor                       LKJ(eta=2)  default
sigma                      sigma            HalfNormal(sigma=100)     user
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from bayesmlm.arguments import checked
from bayesmlm.bayes.priors import LKJ, PRIOR_CLASSES, HalfStudentT, Normal, Prior
from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.evaluate import Design
from bayesmlm.design.moments import factor_moments, fixed_moments, response_moments
from bayesmlm.design.names import cor_names, sd_names
from bayesmlm.exceptions import PriorError

__all__ = ["PriorSet", "default_priors", "resolve_priors"]


@dataclass(frozen=True)
class PriorSet:
    """The resolved priors of one model.

    Attributes
    ----------
    fixed : dict of str to Prior
        Keyed by fixed-effect name (``"Intercept"`` included when the model has one).
    sd : dict of str to Prior
        Keyed ``"sd(<term>|<group>)"``, in the order of the factors and their columns.
    cor : dict of str to Prior
        Keyed ``"cor(<group>)"``; LKJ priors of the correlated blocks.
    sigma : Prior or None
        Prior of the residual standard deviation (None for a generalized family, which has none).
    source : dict of str to str
        ``"default"`` or ``"user"`` for every parameter name.
    family_params : dict of str to Prior
        Priors of a family's own parameters (the negative binomial's ``"shape"``); class = name.

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy"))
    >>> ps = default_priors(m.design, m.structure)
    >>> ps["sd(Days | Subject)"], ps.cor["cor(Subject)"].eta
    (HalfStudentT(nu=3, sigma=19.56), 2.0)
    """

    fixed: dict[str, Prior]
    sd: dict[str, Prior]
    cor: dict[str, Prior]
    sigma: Prior | None
    source: dict[str, str]
    family_params: dict[str, Prior] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        """All parameter names, in the order fixed, sd, cor, sigma (if any), the family's."""
        return [*self.fixed, *self.sd, *self.cor, *(["sigma"] if self.sigma else []), *self.family_params]

    @checked
    def scaled(self, factor: float) -> PriorSet:
        """Return the priors of the model for the response divided by ``factor`` (correlations unchanged).

        Fixed effects, standard deviations and sigma are all in the response's units.
        """
        return PriorSet(
            fixed={n: p.scaled(factor) for n, p in self.fixed.items()},
            sd={n: p.scaled(factor) for n, p in self.sd.items()},
            cor=dict(self.cor),
            sigma=self.sigma.scaled(factor) if self.sigma else None,
            source=dict(self.source),
            family_params=dict(self.family_params),
        )

    @checked
    def prior_class(self, name: str) -> str:
        """Return the class (``"Intercept"``, ``"b"``, ``"sd"``, ``"cor"`` or ``"sigma"``) of a parameter."""
        if name in self.fixed:
            return "Intercept" if name == "Intercept" else "b"
        if name in self.sd:
            return "sd"
        if name in self.cor:
            return "cor"
        if name == "sigma" and self.sigma:
            return "sigma"
        if name in self.family_params:
            return name
        raise KeyError(name)

    def __getitem__(self, name: str) -> Prior:
        """Return the prior of one parameter by name (whitespace is ignored)."""
        key = _lookup(_normalised_names(self.names), name)
        if key is None:
            raise KeyError(name)
        if key == "sigma" and self.sigma:
            return self.sigma
        return {**self.fixed, **self.sd, **self.cor, **self.family_params}[key]

    @checked
    def table(self) -> pd.DataFrame:
        """One row per parameter: its class, prior and source (``"default"`` or ``"user"``).

        Returns
        -------
        DataFrame
            Indexed by parameter name, columns ``class``, ``prior``, ``source``.

        Examples
        --------
        >>> import bayesmlm as bm
        >>> m = bm.Model("diameter ~ 1 + (1 | plate) + (1 | sample)", bm.load_dataset("Penicillin"))
        >>> default_priors(m.design, m.structure).table()["class"].tolist()
        ['Intercept', 'sd', 'sd', 'sigma']
        """
        rows = [(n, self.prior_class(n), str(self[n]), self.source.get(n, "default")) for n in self.names]
        table = pd.DataFrame(rows, columns=["parameter", "class", "prior", "source"])
        return table.set_index("parameter")

    def __str__(self) -> str:
        return self.table().rename_axis(None).to_string()


def _normalised(name: str) -> str:
    return re.sub(r"\s+", "", name)


def _normalised_names(names) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in names:
        out.setdefault(_normalised(name), name)
    return out


def _lookup(normalised: dict[str, str], key: str) -> str | None:
    if key in normalised.values():
        return key
    return normalised.get(_normalised(key))


def default_priors(design: Design, structure: RandomStructure) -> PriorSet:
    """Compute the default, auto-scaled weakly informative priors of a model (see the module docstring).

    Parameters
    ----------
    design : Design
    structure : RandomStructure

    Returns
    -------
    PriorSet

    Raises
    ------
    PriorError
        If the response is constant (or has a single row), so that it has no scale.

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy"))
    >>> ps = default_priors(m.design, m.structure)
    >>> ps.fixed
    {'Intercept': Normal(mu=298.5, sigma=140.8), 'Days': Normal(mu=0, sigma=48.89)}
    >>> ps.sigma
    HalfStudentT(nu=3, sigma=56.33)
    """
    y = response_moments(design)
    sd_y = float(y.sd[0])
    if not (math.isfinite(sd_y) and sd_y > 0):
        raise PriorError(
            f"the response '{design.response_name}' is constant over the {y.n} rows used, so the "
            "default priors (scaled by its standard deviation) cannot be computed"
        )
    x = fixed_moments(design)
    fixed: dict[str, Prior] = {}
    for j, name in enumerate(design.fixed_names):
        if name == "Intercept":
            fixed[name] = Normal(float(y.mean[0]), 2.5 * sd_y)
        else:
            sd_x = float(x.sd[j])
            fixed[name] = Normal(0.0, 2.5 * sd_y / sd_x if sd_x > 0 else 2.5 * sd_y)
    sd: dict[str, Prior] = {}
    cor: dict[str, Prior] = {}
    for factor, names, cnames in zip(
        structure.factors, sd_names(structure), cor_names(structure), strict=True
    ):
        z = factor_moments(design, factor)
        for k, (term, name) in enumerate(zip(factor.term_names, names, strict=True)):
            s_k = 1.0 if term == "Intercept" else float(z.sd[k])
            sd[name] = HalfStudentT(3.0, sd_y / s_k if s_k > 0 else sd_y)
        for name in cnames:
            if name is not None:
                cor[name] = LKJ(2.0)
    priors = PriorSet(fixed=fixed, sd=sd, cor=cor, sigma=HalfStudentT(3.0, sd_y), source={})
    priors.source.update(dict.fromkeys(priors.names, "default"))
    return priors


def _check_kind(name: str, cls: str, prior: object, via: str | None = None) -> None:
    if not isinstance(prior, Prior):
        raise PriorError(
            f"the prior for {via or repr(name)} must be a bayesmlm prior such as bm.Normal(0, 10), "
            f"not {type(prior).__name__} {prior!r}"
        )
    if cls in ("sd", "sigma", "shape") and not prior.is_positive:
        allowed = "a positive prior (HalfStudentT, HalfNormal, HalfCauchy, Exponential)"
    elif cls == "cor" and not prior.is_lkj:
        allowed = "an LKJ prior (bm.LKJ(eta))"
    elif cls in ("Intercept", "b") and (prior.is_lkj or prior.is_positive):
        allowed = "a prior on the real line (Normal, StudentT)"
    else:
        return
    target = repr(name) if via is None else f"{name!r} (set through {via})"
    raise PriorError(f"{prior} cannot be the prior of {target}: {cls} parameters need {allowed}")


def _unknown_key_message(key: str, names: list[str], classes: list[str]) -> str:
    if key.strip() in PRIOR_CLASSES:
        msg = f"the model has no parameters of class {key.strip()!r}"
    else:
        msg = f"the model has no parameter or class {key!r}"
    msg += f"; valid names: {', '.join(names)}; valid classes: {', '.join(classes)}"
    candidates = {_normalised(c).lower(): c for c in [*names, *classes]}
    close = difflib.get_close_matches(_normalised(key).lower(), list(candidates), n=3, cutoff=0.6)
    if close:
        msg += f"; did you mean {' or '.join(repr(candidates[c]) for c in close)}?"
    return msg


@checked
def resolve_priors(
    design: Design,
    structure: RandomStructure,
    priors: Mapping | None = None,
    defaults: PriorSet | None = None,
) -> PriorSet:
    """Return the default priors with the user's overrides applied.

    Parameters
    ----------
    design : Design
    structure : RandomStructure
    priors : dict, optional
        Maps a class (``"Intercept"``, ``"b"``, ``"sd"``, ``"cor"``, ``"sigma"``) or a parameter name
        (``"Days"``, ``"sd(Days|Subject)"``, ``"cor(Subject)"``) to a :class:`Prior`. A name wins over its
        class whatever the order of the dict; whitespace in names is ignored.
    defaults : PriorSet, optional
        The defaults to override (:func:`default_priors` by default; a generalized family's from
        :func:`bayesmlm.bayes.glmm_priors.default_glmm_priors`).

    Returns
    -------
    PriorSet

    Raises
    ------
    PriorError
        For an unknown key (the message lists the valid names and classes), a value that is not a
        :class:`Prior`, or a prior of the wrong kind (sd and sigma need positive priors, cor an LKJ prior,
        fixed effects a prior on the real line).

    Examples
    --------
    >>> import bayesmlm as bm
    >>> from bayesmlm.bayes.priors import HalfNormal
    >>> m = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy"))
    >>> ps = resolve_priors(m.design, m.structure, {"sd": HalfNormal(30), "sd(Days|Subject)": HalfNormal(10)})
    >>> ps.sd, ps.source["sd(Intercept|Subject)"]
    ({'sd(Intercept|Subject)': HalfNormal(sigma=30), 'sd(Days|Subject)': HalfNormal(sigma=10)}, 'user')
    """
    defaults = default_priors(design, structure) if defaults is None else defaults
    if priors is None:
        return defaults
    if not isinstance(priors, Mapping):
        raise PriorError(
            f"priors must be a dict mapping parameter names or classes to priors, not {type(priors).__name__}"
        )
    names = defaults.names
    members = {cls: [n for n in names if defaults.prior_class(n) == cls] for cls in PRIOR_CLASSES}
    classes = [cls for cls in PRIOR_CLASSES if members[cls]]
    normalised = _normalised_names(names)

    by_class: dict[str, Prior] = {}
    by_name: dict[str, Prior] = {}
    for key, prior in priors.items():
        if not isinstance(key, str):
            raise PriorError(f"prior keys must be strings (parameter names or classes), not {key!r}")
        if key.strip() in classes:
            if key.strip() in by_class:
                raise PriorError(f"the class {key.strip()!r} is given more than once in priors")
            by_class[key.strip()] = prior
            continue
        name = _lookup(normalised, key)
        if name is None:
            raise PriorError(_unknown_key_message(key, names, classes))
        if name in by_name:
            raise PriorError(f"the parameter {name!r} is given more than once in priors")
        by_name[name] = prior

    resolved = {n: defaults[n] for n in names}
    source = dict(defaults.source)
    for cls, prior in by_class.items():
        for n in members[cls]:
            _check_kind(n, cls, prior, f"class {cls!r}")
            resolved[n] = prior
            source[n] = "user"
    for n, prior in by_name.items():
        _check_kind(n, defaults.prior_class(n), prior)
        resolved[n] = prior
        source[n] = "user"
    return PriorSet(
        fixed={n: resolved[n] for n in defaults.fixed},
        sd={n: resolved[n] for n in defaults.sd},
        cor={n: resolved[n] for n in defaults.cor},
        sigma=resolved["sigma"] if defaults.sigma else None,
        source=source,
        family_params={n: resolved[n] for n in defaults.family_params},
    )
