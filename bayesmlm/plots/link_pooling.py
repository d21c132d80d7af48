"""Plots: complete and no pooling of a generalized (GLMM) fit, on the link scale (logit, probit, log).

A GLMM's group coefficients (fixed effect + group effect) live on the link scale, so the two
comparisons the shrinkage plot draws must live there too:

- *complete pooling*: the ordinary GLM (maximum likelihood by IRLS, the model's family, link, offset
  and prior weights) of the response on the fixed-effects columns through all rows, ignoring groups;
- *no pooling*: each group's own GLM in its random-term columns, the other fixed effects (and the
  offset) held at the model's estimates, fitted to the responses with a continuity correction of
  0.5 so that a group with no (or only) successes, or only zero counts, still has a finite
  estimate: a binomial row of ``s`` successes in ``n`` trials counts as ``s + 0.5`` in ``n + 1``
  (one row: the empirical logit ``log((s + 0.5) / (n - s + 0.5))``), a count ``y`` as ``y + 0.5``
  (a group intercept alone: ``log(mean(y) + 0.5)``). Counts of a negative binomial model are fitted
  with Poisson weights (the same estimate for a group's intercept alone).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayesmlm.families.base import Family
from bayesmlm.families.registry import family_for

__all__ = ["generalized_family", "glm_coefficients", "link_adjusted_response", "scale_label"]

CONTINUITY = 0.5


def generalized_family(fit) -> Family | None:
    """Return the fit's family if it is a generalized one (binomial, Poisson, ...), else None."""
    family = getattr(fit, "family", None)
    if family is None:
        family = getattr(getattr(fit, "model", None), "family", None)
    return family if family is not None and family.generalized else None


def scale_label(fit) -> str:
    """``", logit scale"`` (the link's name) for a generalized fit, ``""`` for a Gaussian one."""
    family = generalized_family(fit)
    return "" if family is None else f", {family.link.name} scale"


def _irls_family(family: Family) -> Family:
    if family.n_dispersion:  # negative binomial: Poisson weights, same log link
        return family_for("poisson", family.link.name)
    return family


def link_adjusted_response(fit, corrected: bool) -> tuple[np.ndarray, np.ndarray]:
    """Return the response ``y`` (proportion or count) and IRLS weights, 0.5-corrected if asked."""
    family = generalized_family(fit)
    data = family.glm_data(fit.design)
    if not corrected:
        return np.asarray(data.y, dtype=float), np.asarray(data.wt, dtype=float)
    if family.name == "binomial":
        n = np.asarray(data.n, dtype=float)
        y = (np.asarray(data.observed, dtype=float) + CONTINUITY) / (n + 2 * CONTINUITY)
        return y, (n + 2 * CONTINUITY) * np.asarray(data.prior_weights, dtype=float)
    return np.asarray(data.y, dtype=float) + CONTINUITY, np.asarray(data.wt, dtype=float)


def glm_coefficients(
    family: Family, X: np.ndarray, y: np.ndarray, wt: np.ndarray, offset, max_iter: int = 100
) -> np.ndarray:
    """Maximum-likelihood GLM coefficients by IRLS (R's ``glm.fit``); NaN if ``X`` is rank-deficient.

    Examples
    --------
    >>> import numpy as np
    >>> from bayesmlm.families.registry import family_for
    >>> X = np.ones((2, 1))
    >>> glm_coefficients(family_for("poisson"), X, np.array([1.0, 3.0]), np.ones(2), 0.0).round(6).tolist()
    [0.693147]
    """
    X = np.asarray(X, dtype=float)
    p = X.shape[1]
    if p == 0 or len(y) < p or np.linalg.matrix_rank(X) < p:
        return np.full(p, np.nan)
    family = _irls_family(family)
    offset = np.broadcast_to(np.asarray(offset, dtype=float), y.shape)
    start = (wt * y + 0.5) / (wt + 1) if family.name == "binomial" else y + 0.1  # R's mustart
    eta = family.link.linkfun(start)
    beta = np.linalg.lstsq(X, eta - offset, rcond=None)[0]
    for _ in range(max_iter):
        eta = X @ beta + offset
        mu = family.link.linkinv(eta)
        d = family.link.mu_eta(eta)
        w = wt * d**2 / family.variance(mu)
        z = eta - offset + (y - mu) / d
        sw = np.sqrt(w)
        new = np.linalg.lstsq(X * sw[:, None], z * sw, rcond=None)[0]
        if not np.all(np.isfinite(new)):
            return np.full(p, np.nan)
        step = np.max(np.abs(new - beta))
        beta = new
        if step < 1e-10 * (1 + np.max(np.abs(beta))):
            break
    return beta


def glm_complete_pooling(fit) -> pd.Series:
    """Fit the ordinary GLM of the response on the fixed-effects columns, groups ignored (link scale)."""
    design = fit.design
    family = generalized_family(fit)
    y, wt = link_adjusted_response(fit, corrected=False)
    offset = 0.0 if design.offset is None else np.asarray(design.offset, dtype=float)
    beta = glm_coefficients(family, design.X, y, wt, offset)
    return pd.Series(beta, index=pd.Index(list(design.fixed_names), name="term"), name="estimate")


def glm_no_pooling(fit, factor, other_offset: np.ndarray) -> np.ndarray:
    """Each level's own GLM in the factor's random-term columns (levels x q), with the 0.5 correction."""
    design = fit.design
    family = generalized_family(fit)
    y, wt = link_adjusted_response(fit, corrected=True)
    offset = other_offset + (0.0 if design.offset is None else np.asarray(design.offset, dtype=float))
    offset = np.broadcast_to(np.asarray(offset, dtype=float), y.shape)
    out = np.full((factor.n_levels, factor.q), np.nan)
    for level in range(factor.n_levels):
        rows = factor.codes == level
        out[level] = glm_coefficients(family, factor.Z[rows], y[rows], wt[rows], offset[rows])
    return out
