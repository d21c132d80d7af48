"""Stage 5, results: the population-level parameters of any fit as arrays of draws.

:class:`ParameterDraws` is what every result below the fits works on: per grouping factor the random
effects' covariance matrices, the residual variance and the fixed effects, one row per draw. A
Bayesian fit gives its posterior draws; a REML/ML fit one row (its estimates) or its parametric
bootstrap. The conversions between covariances and sds/correlations live here, once.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from bayesmlm.design.covariance import FactorTerms, RandomStructure

__all__ = ["ParameterDraws", "covariances_from_sd_cor", "sd_cor_from_covariances"]


class ParameterDraws(NamedTuple):
    """Population-level parameters, one row per draw.

    Attributes
    ----------
    covariances : list of ndarray
        Per factor (in ``structure.factors`` order), the random effects' covariances, (S, q, q).
    sigma2 : ndarray, shape (S,)
        Residual variances.
    fixed : ndarray, shape (S, p)
        Fixed effects.
    """

    covariances: list[np.ndarray]
    sigma2: np.ndarray
    fixed: np.ndarray


def covariances_from_sd_cor(
    factor: FactorTerms,
    sd: np.ndarray,
    cors: dict[str, np.ndarray],
    cholesky: bool = False,
    jitter: float = 0.0,
) -> np.ndarray:
    """Return a factor's covariance matrices (or their Cholesky factors) from sds and correlations.

    Parameters
    ----------
    factor : FactorTerms
    sd : ndarray, shape (S, q)
        The random effects' standard deviations.
    cors : dict
        Block label -> correlation matrices (S, k, k), for the blocks of two or more terms.
    cholesky : bool
        Return the lower Cholesky factor, block by block (a single term's is its sd).
    jitter : float
        Added to the diagonal of a correlated block before its Cholesky factorisation.

    Returns
    -------
    ndarray, shape (S, q, q)
        Block diagonal over the factor's blocks.
    """
    out = np.zeros((sd.shape[0], factor.q, factor.q))
    for label, start, size in factor.blocks():
        block = slice(start, start + size)
        if size == 1:
            out[:, start, start] = sd[:, start] if cholesky else sd[:, start] ** 2
            continue
        cov = cors[label] * sd[:, block, None] * sd[:, None, block]
        out[:, block, block] = np.linalg.cholesky(cov + jitter * np.eye(size)) if cholesky else cov
    return out


def sd_cor_from_covariances(
    structure: RandomStructure, covariances: list[np.ndarray]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Return the sds (group -> (S, q)) and correlations (block label -> (S, k, k)) of covariances.

    A correlation whose sds are zero is NaN (undefined), not 0.
    """
    sds, cors = {}, {}
    for f, c in zip(structure.factors, covariances, strict=True):
        sd = np.sqrt(np.clip(np.diagonal(c, axis1=1, axis2=2), 0.0, None))
        sds[f.group] = sd
        for label, start, size in f.blocks():
            if size > 1:
                block = slice(start, start + size)
                denom = sd[:, block, None] * sd[:, None, block]
                with np.errstate(invalid="ignore", divide="ignore"):
                    cors[label] = np.where(denom > 0, c[:, block, block] / denom, np.nan)
    return sds, cors
