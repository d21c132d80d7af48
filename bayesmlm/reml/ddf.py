"""Stage 4a, REML/ML: t and F tests of fixed effects with small-sample degrees of freedom.

Three ways to refer a fixed effect (or a contrast ``L β``) to a distribution:

``"satterthwaite"``
    lmerTest's Satterthwaite df (:mod:`bayesmlm.reml.satterthwaite`), the standard error from
    ``vcov(β)``; REML or ML fits.
``"kenward-roger"``
    pbkrtest's Kenward–Roger df, with the standard error from the *adjusted* covariance
    (:mod:`bayesmlm.reml.kenward_roger`); REML fits only, as in pbkrtest and lmerTest.
``"asymptotic"``
    the Wald z (or χ²) test, infinite df: what lme4 prints, anti-conservative with few groups.

:class:`SmallSample` computes what the first two need once per fit; the tables here read it.
"""

from __future__ import annotations

from functools import cached_property
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats as sps

from bayesmlm.design.crossprod import CrossProducts, cross_products
from bayesmlm.exceptions import ArgumentError, FitError
from bayesmlm.reml.anova import type3_contrasts
from bayesmlm.reml.faces import LikelihoodFaces
from bayesmlm.reml.kenward_roger import KenwardRoger, kenward_roger, kr_test
from bayesmlm.reml.profile import Profile, profile
from bayesmlm.reml.satterthwaite import (
    VarparCovariance,
    satterthwaite_df,
    satterthwaite_f_test,
    varpar_covariance,
)

__all__ = ["DDF_METHODS", "SmallSample", "anova_table", "coef_table", "contrast_test", "normalise_ddf"]

DDF = Literal["satterthwaite", "kenward-roger", "asymptotic"]
DDF_METHODS = ("satterthwaite", "kenward-roger", "asymptotic")
_ALIASES = {"kr": "kenward-roger", "kenwardroger": "kenward-roger", "wald": "asymptotic", "z": "asymptotic"}


def normalise_ddf(ddf: str) -> str:
    """Return the canonical name of a df method (case, ``_`` and spaces ignored; ``"kr"`` accepted).

    Examples
    --------
    >>> normalise_ddf("Kenward_Roger"), normalise_ddf("KR"), normalise_ddf("Satterthwaite")
    ('kenward-roger', 'kenward-roger', 'satterthwaite')
    """
    if not isinstance(ddf, str):
        raise ArgumentError(f"ddf must be one of {', '.join(DDF_METHODS)}, not {ddf!r}")
    key = ddf.strip().lower().replace("_", "-").replace(" ", "-")
    key = _ALIASES.get(key.replace("-", ""), key)
    if key not in DDF_METHODS:
        raise ArgumentError(f"ddf must be one of {', '.join(DDF_METHODS)} (or 'kr'), not {ddf!r}")
    return key


class SmallSample:
    """What the small-sample df of one fit need, computed on first use and kept.

    Attributes
    ----------
    varpar : VarparCovariance
        Satterthwaite's pieces (Hessian of the deviance, Jacobian of ``vcov(β)``).
    kenward_roger : KenwardRoger
        The adjusted covariance of β̂ (REML fits only).
    """

    def __init__(self, fit: LikelihoodFaces):
        self._fit = fit
        self._profiles: dict[tuple[float, int], Profile] = {}

    def _untied(self, what: str) -> None:
        """Refuse ``what`` for a fit with tied theta (its derivatives treat every entry as free)."""
        if getattr(getattr(self._fit, "opt", None), "ties", ()):
            raise NotImplementedError(
                f"{what} of a fit whose variance components share one variance across several terms "
                "(tied theta) is not supported; use asymptotic tests (ddf='asymptotic') or "
                "confint(method='boot')"
            )

    def profile(self, level: float = 0.95, grid: int = 0) -> Profile:
        """Profile the ML deviance of every parameter (:func:`~bayesmlm.reml.profile.profile`), kept."""
        key = (float(level), int(grid))
        self._untied("profiling")
        if key not in self._profiles:
            self._profiles[key] = profile(self._fit, level, grid=grid)
        return self._profiles[key]

    @cached_property
    def stats(self) -> CrossProducts:
        """The fit's cross-products in the user's own columns (the derivatives are taken at the user's θ).

        The fit itself is made in centred, unit-spread columns (:mod:`bayesmlm.design.scaling`); a
        model reduced from a Dask DataFrame carries its unscaled statistics beside them.
        """
        fit = self._fit
        if fit.stats.scaling is None:
            return fit.stats
        if fit.stats.unscaled is not None:  # reduced from a Dask DataFrame: no rows to form them from
            return fit.stats.unscaled
        return cross_products(fit.design, fit.structure)

    @cached_property
    def varpar(self) -> VarparCovariance:
        """LmerTest's ``vcov_varpar`` and ``Jac_list`` at this fit's estimates."""
        self._untied("Satterthwaite's df")
        fit = self._fit
        return varpar_covariance(fit.structure, self.stats, fit.theta, fit.sigma, reml=fit.method == "REML")

    @cached_property
    def kenward_roger(self) -> KenwardRoger:
        """Pbkrtest's ``vcovAdj`` at this fit's estimates."""
        self._untied("Kenward-Roger's adjustment")
        fit = self._fit
        if fit.method != "REML":
            raise FitError(
                "Kenward-Roger is defined for REML fits only (as in pbkrtest); use "
                "fit.refit(reml=True) for it, or ddf='satterthwaite', which works for ML fits too"
            )
        weights = getattr(fit.design, "weights", None)
        return kenward_roger(fit.design.X, fit.structure, fit.theta, fit.sigma**2, weights)


def _contrast_matrix(fit: LikelihoodFaces, L) -> np.ndarray:
    """Return a user's contrast (vector, matrix, dict or DataFrame) as a matrix on the fixed effects."""
    names = list(fit.design.fixed_names)
    if isinstance(L, dict):
        unknown = sorted(set(L) - set(names))
        if unknown:
            raise ArgumentError(
                f"the contrast names {unknown}, which are not fixed effects; they are {names}"
            )
        L = np.array([[float(L.get(n, 0.0)) for n in names]])
    elif isinstance(L, pd.DataFrame | pd.Series):
        frame = L.to_frame().T if isinstance(L, pd.Series) else L
        unknown = sorted(set(map(str, frame.columns)) - set(names))
        if unknown:
            raise ArgumentError(
                f"the contrast has columns {unknown}, which are not fixed effects; they are {names}"
            )
        L = frame.reindex(columns=names, fill_value=0.0).to_numpy(dtype=float)
    L = np.atleast_2d(np.asarray(L, dtype=float))
    if L.ndim != 2 or L.shape[1] != len(names):
        raise ArgumentError(
            f"a contrast needs one weight per fixed effect ({len(names)}: {names}); got shape {L.shape}"
        )
    if not np.all(np.isfinite(L)) or not np.any(L):
        raise ArgumentError("a contrast must be finite and not all zero")
    return L


def _t_rows(fit: LikelihoodFaces, L: np.ndarray, ddf: str, level: float, index) -> pd.DataFrame:
    beta = np.asarray(fit.estimates.beta, dtype=float)
    estimate = L @ beta
    if ddf == "kenward-roger":
        kr = fit.small_sample.kenward_roger
        se = np.sqrt(np.einsum("ri,ij,rj->r", L, kr.phi_adjusted, L))
        df = np.array([kr_test(kr, row, beta)["den_df"] for row in L])
    else:
        est = fit.estimates  # the unit-scale vcov stays finite for responses of extreme magnitude
        unit = est.vcov if est.unit_vcov is None else est.unit_vcov
        se = est.scale * np.sqrt(np.einsum("ri,ij,rj->r", L, unit, L))
        if ddf == "satterthwaite":
            df = satterthwaite_df(fit.small_sample.varpar, fit.estimates.vcov, L)
        else:
            df = np.full(len(L), np.inf)
    t = estimate / se
    q = sps.t.ppf(0.5 + level / 2, df)
    return pd.DataFrame(
        {
            "estimate": estimate,
            "se": se,
            "df": df,
            "t": t,
            "p": 2 * sps.t.sf(np.abs(t), df),
            "ci_low": estimate - q * se,
            "ci_high": estimate + q * se,
        },
        index=index,
    )


def coef_table(fit: LikelihoodFaces, ddf: DDF = "satterthwaite", level: float = 0.95) -> pd.DataFrame:
    """One t test per fixed effect, as lmerTest's ``summary(m, ddf=...)`` coefficient table.

    Parameters
    ----------
    fit : LikelihoodFit
    ddf : {"satterthwaite", "kenward-roger", "asymptotic"}
    level : float
        Confidence level of the intervals (t quantiles at the df; normal for ``"asymptotic"``).

    Returns
    -------
    DataFrame
        Indexed by term; ``estimate``, ``se``, ``df``, ``t``, ``p``, ``ci_low``, ``ci_high``.
    """
    if not 0 < level < 1:
        raise ArgumentError(f"level must lie in (0, 1), not {level}")
    ddf = normalise_ddf(ddf)
    names = pd.Index(fit.design.fixed_names, name="term")
    return _t_rows(fit, np.eye(len(names)), ddf, level, names)


def contrast_test(fit: LikelihoodFaces, L, ddf: DDF = "satterthwaite", rhs=None) -> dict[str, float]:
    """Test ``L β = rhs`` (0 by default) by an F test: ``F``, ``num_df``, ``den_df``, ``p``.

    Satterthwaite's F is lmerTest's ``contestMD``, Kenward–Roger's pbkrtest's scaled F, the
    asymptotic one the Wald χ²/q with infinite denominator df.
    """
    ddf = normalise_ddf(ddf)
    L = _contrast_matrix(fit, L)
    beta = np.asarray(fit.estimates.beta, dtype=float)
    if rhs is not None:
        rhs = np.broadcast_to(np.asarray(rhs, dtype=float), (len(L),))
    if ddf == "kenward-roger":
        out = kr_test(fit.small_sample.kenward_roger, L, beta, rhs)
        return {k: out[k] for k in ("F", "num_df", "den_df", "p")}
    if ddf == "satterthwaite":
        f_value, q, den = satterthwaite_f_test(fit.small_sample.varpar, fit.estimates.vcov, beta, L, rhs)
    else:
        diff = L @ beta - (0.0 if rhs is None else rhs)
        q = int(np.linalg.matrix_rank(L))
        f_value = float(diff @ np.linalg.pinv(L @ fit.estimates.vcov @ L.T) @ diff) / q
        den = np.inf
    p = float(sps.f.sf(f_value, q, den)) if np.isfinite(den) else float(sps.chi2.sf(q * f_value, q))
    return {"F": f_value, "num_df": q, "den_df": float(den), "p": p}


def contrast_table(
    fit: LikelihoodFaces, L, ddf: DDF = "satterthwaite", joint: bool = True, rhs=None, level: float = 0.95
) -> pd.DataFrame:
    """Test a user's contrasts jointly (one F test) or one t test per row (``LikelihoodFit.contrast``)."""
    if joint:
        return pd.DataFrame([contrast_test(fit, L, ddf, rhs)], index=pd.Index(["contrast"], name="test"))
    matrix = _contrast_matrix(fit, L)
    ddf = normalise_ddf(ddf)
    index = L.index if isinstance(L, pd.DataFrame) else pd.RangeIndex(len(matrix), name="contrast")
    table = _t_rows(fit, matrix, ddf, level, index)
    if rhs is not None:
        shift = np.broadcast_to(np.asarray(rhs, dtype=float), (len(matrix),))
        table["t"] = (table["estimate"] - shift) / table["se"]
        table["p"] = 2 * sps.t.sf(np.abs(table["t"]), table["df"])
    return table


def anova_table(fit: LikelihoodFaces, ddf: DDF = "satterthwaite", type: int | str = 3) -> pd.DataFrame:
    """Type III F tests of the fixed terms, as lmerTest's ``anova(m, ddf=...)``.

    Returns
    -------
    DataFrame
        Indexed by term; ``F``, ``num_df``, ``den_df``, ``p``.
    """
    if str(type).upper() not in ("3", "III"):
        raise ArgumentError(f"only type III tests are implemented (type=3), not type={type!r}")
    rows = {term: contrast_test(fit, L, ddf) for term, L in type3_contrasts(fit.design).items() if len(L)}
    table = pd.DataFrame.from_dict(rows, orient="index", columns=["F", "num_df", "den_df", "p"])
    table.index.name = "term"
    return table.astype({"num_df": int})
