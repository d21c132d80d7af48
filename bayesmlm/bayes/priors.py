"""Stage 4b, Bayes: a prior distribution as a value: a family name and its parameters.

:class:`Prior` and its helpers (:func:`Normal`, :func:`StudentT`, :func:`HalfNormal`,
:func:`HalfStudentT`, :func:`HalfCauchy`, :func:`Exponential`, :func:`LKJ`) describe a prior without
building anything: PyMC is imported only when a distribution is created from one. The defaults and how
a user's priors are matched to a model's parameters are in :mod:`bayesmlm.bayes.prior_set`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass, field

from bayesmlm.arguments import checked
from bayesmlm.exceptions import PriorError

__all__ = [
    "LKJ",
    "PRIOR_CLASSES",
    "Exponential",
    "HalfCauchy",
    "HalfNormal",
    "HalfStudentT",
    "Normal",
    "Prior",
    "StudentT",
]

#: The classes a prior can be given for, in the order of :meth:`~bayesmlm.bayes.prior_set.PriorSet.table`.
PRIOR_CLASSES = ("Intercept", "b", "sd", "cor", "sigma", "shape")

# family -> (parameter names in order, parameters that must be > 0, is the support positive?)
_FAMILIES: dict[str, tuple[tuple[str, ...], frozenset[str], bool]] = {
    "Normal": (("mu", "sigma"), frozenset({"sigma"}), False),
    "StudentT": (("nu", "mu", "sigma"), frozenset({"nu", "sigma"}), False),
    "HalfNormal": (("sigma",), frozenset({"sigma"}), True),
    "HalfStudentT": (("nu", "sigma"), frozenset({"nu", "sigma"}), True),
    "HalfCauchy": (("beta",), frozenset({"beta"}), True),
    "Exponential": (("lam",), frozenset({"lam"}), True),
    "LKJ": (("eta",), frozenset({"eta"}), False),
}


def fmt(x: float) -> str:
    """Format a prior parameter as printed: 4 significant digits."""
    return f"{x:.4g}"


def _check_number(family: str, name: str, value: object, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise PriorError(f"{family}: {name} must be a number, not {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise PriorError(f"{family}: {name} must be finite, not {x!r}")
    if positive and x <= 0:
        raise PriorError(f"{family}: {name} must be positive, not {fmt(x)}")
    return x


@dataclass(frozen=True, repr=False)
class Prior:
    """A prior distribution: a PyMC family name and its parameters.

    Build priors with the helpers :func:`Normal`, :func:`StudentT`, :func:`HalfNormal`,
    :func:`HalfStudentT`, :func:`HalfCauchy`, :func:`Exponential` and :func:`LKJ` rather than directly.

    Parameters
    ----------
    family : str
        Name of the PyMC distribution (``"Normal"``), or ``"LKJ"`` for a correlation matrix.
    params : tuple of (str, float)
        The family's parameters, in its order (``(("mu", 0.0), ("sigma", 1.0))``); a mapping is accepted
        too. Values are stored as floats.

    Raises
    ------
    PriorError
        For an unknown family, missing or unknown parameters, or invalid values (scales, ``nu`` and ``eta``
        must be positive finite numbers; locations finite).

    Examples
    --------
    >>> p = Prior("HalfStudentT", (("nu", 3), ("sigma", 20)))
    >>> p
    HalfStudentT(nu=3, sigma=20)
    >>> p.is_positive, p.params
    (True, (('nu', 3.0), ('sigma', 20.0)))
    """

    family: str
    params: tuple[tuple[str, float], ...] = field(default=())

    def __post_init__(self) -> None:
        if self.family not in _FAMILIES:
            raise PriorError(
                f"unknown prior family {self.family!r}; supported families: {', '.join(_FAMILIES)}"
            )
        names, positive, _ = _FAMILIES[self.family]
        given = dict(self.params.items()) if isinstance(self.params, Mapping) else dict(self.params)
        missing = [n for n in names if n not in given]
        unknown = [n for n in given if n not in names]
        if missing or unknown:
            raise PriorError(
                f"{self.family} takes the parameters {', '.join(names)}"
                + (f"; missing: {', '.join(missing)}" if missing else "")
                + (f"; unknown: {', '.join(map(str, unknown))}" if unknown else "")
            )
        params = tuple((n, _check_number(self.family, n, given[n], n in positive)) for n in names)
        object.__setattr__(self, "params", params)

    @property
    def kwargs(self) -> dict[str, float]:
        """The parameters as a dict of floats (``{"mu": 0.0, "sigma": 1.0}``)."""
        return dict(self.params)

    @property
    def is_positive(self) -> bool:
        """Whether the distribution lives on the positive reals (half and positive families)."""
        return _FAMILIES[self.family][2]

    @property
    def is_lkj(self) -> bool:
        """Whether this is an LKJ prior on a correlation matrix."""
        return self.family == "LKJ"

    @property
    def eta(self) -> float:
        """Shape ``eta`` of an LKJ prior (passed by the model builder to ``pm.LKJCholeskyCov``)."""
        if not self.is_lkj:
            raise AttributeError(f"{self} is not an LKJ prior and has no eta")
        return self.kwargs["eta"]

    def _not_for_lkj(self) -> None:
        if self.is_lkj:
            raise PriorError(
                f"{self} is a prior on a correlation matrix; pass its eta to pm.LKJCholeskyCov "
                "instead of creating a distribution from it"
            )

    @checked
    def dist(self, shape=None):
        """Return the unregistered PyMC distribution (``pm.<family>.dist``).

        Parameters
        ----------
        shape : int or tuple of int, optional

        Returns
        -------
        TensorVariable

        Examples
        --------
        >>> import pymc as pm
        >>> float(pm.logp(HalfNormal(1.0).dist(), 0.0).eval()).__round__(4)
        -0.2258
        """
        import pymc as pm

        self._not_for_lkj()
        return getattr(pm, self.family).dist(**self.kwargs, shape=shape)

    @checked
    def create(self, name: str, dims=None, shape=None):
        """Create the variable ``name`` with this prior in the current ``pm.Model`` context.

        Parameters
        ----------
        name : str
        dims : str or tuple of str, optional
        shape : int or tuple of int, optional

        Returns
        -------
        TensorVariable

        Examples
        --------
        >>> import pymc as pm
        >>> with pm.Model() as model:
        ...     b = Normal(0, 10).create("b", shape=3)
        >>> model.free_RVs, b.type.shape
        ([b], (3,))
        """
        import pymc as pm

        self._not_for_lkj()
        return getattr(pm, self.family)(name, **self.kwargs, dims=dims, shape=shape)

    @checked
    def scaled(self, factor: float) -> Prior:
        """Return the prior of ``x / factor`` when ``x`` has this prior (an LKJ prior is unchanged).

        Every family here is a location-scale (or scale) family, so dividing the variable divides its
        location and scale (and multiplies an exponential's rate).

        Examples
        --------
        >>> HalfStudentT(3.0, 50.0).scaled(10.0), Exponential(0.1).scaled(10.0)
        (HalfStudentT(nu=3, sigma=5), Exponential(lam=1))
        """
        if self.is_lkj:
            return self
        divided = {"mu", "sigma", "beta"}
        params = tuple(
            (n, v / factor if n in divided else v * factor if n == "lam" else v) for n, v in self.params
        )
        return Prior(self.family, params)

    def __str__(self) -> str:
        return f"{self.family}({', '.join(f'{n}={fmt(v)}' for n, v in self.params)})"

    __repr__ = __str__


@checked
def Normal(mu: float = 0.0, sigma: float = 1.0) -> Prior:
    """Build a normal prior with mean ``mu`` and standard deviation ``sigma``.

    Examples
    --------
    >>> Normal(0, 10)
    Normal(mu=0, sigma=10)
    """
    return Prior("Normal", (("mu", mu), ("sigma", sigma)))


@checked
def StudentT(nu: float, mu: float = 0.0, sigma: float = 1.0) -> Prior:
    """Build a Student-t prior with ``nu`` degrees of freedom, location ``mu`` and scale ``sigma``.

    Examples
    --------
    >>> StudentT(3, 0, 2.5)
    StudentT(nu=3, mu=0, sigma=2.5)
    """
    return Prior("StudentT", (("nu", nu), ("mu", mu), ("sigma", sigma)))


@checked
def HalfNormal(sigma: float = 1.0) -> Prior:
    """Build a half-normal prior (positive) with scale ``sigma``.

    Examples
    --------
    >>> HalfNormal(5)
    HalfNormal(sigma=5)
    """
    return Prior("HalfNormal", (("sigma", sigma),))


@checked
def HalfStudentT(nu: float = 3.0, sigma: float = 1.0) -> Prior:
    """Build a half-Student-t prior (positive) with ``nu`` degrees of freedom and scale ``sigma``.

    Examples
    --------
    >>> HalfStudentT(3, 20)
    HalfStudentT(nu=3, sigma=20)
    """
    return Prior("HalfStudentT", (("nu", nu), ("sigma", sigma)))


@checked
def HalfCauchy(beta: float = 1.0) -> Prior:
    """Build a half-Cauchy prior (positive) with scale ``beta``.

    Examples
    --------
    >>> HalfCauchy(2)
    HalfCauchy(beta=2)
    """
    return Prior("HalfCauchy", (("beta", beta),))


@checked
def Exponential(lam: float = 1.0) -> Prior:
    """Build an exponential prior (positive) with rate ``lam`` (mean ``1/lam``).

    Examples
    --------
    >>> Exponential(0.1)
    Exponential(lam=0.1)
    """
    return Prior("Exponential", (("lam", lam),))


@checked
def LKJ(eta: float = 1.0) -> Prior:
    """Build an LKJ prior on a correlation matrix (``eta = 1`` uniform; larger favours small correlations).

    Examples
    --------
    >>> LKJ(2).eta
    2.0
    """
    return Prior("LKJ", (("eta", eta),))
