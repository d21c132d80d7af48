"""Stage 3, families: the Gaussian response, the family of the linear mixed model.

A family is the response distribution as one concept that both fitting stages read: here its
log-likelihood with the random effects integrated out (exact for a Gaussian response, from the
blocked factorisation: what the collapsed sampler runs NUTS on), its pointwise log-likelihood given
the effects (for PSIS-LOO), and its PyMC likelihood term. A new family (binomial, Poisson, ...) is one
more file beside this one, with the same three pieces.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.crossprod import CrossProducts
from bayesmlm.design.evaluate import Design

if TYPE_CHECKING:  # PyTensor is imported where a graph is built, so numpy callers never load it
    import pytensor.tensor as pt

__all__ = ["likelihood", "marginal_loglik", "pointwise_loglik"]


def marginal_loglik(
    theta: pt.TensorVariable,
    beta: pt.TensorVariable,
    sigma: pt.TensorVariable,
    structure: RandomStructure,
    stats: CrossProducts,
) -> pt.TensorVariable:
    """Log-likelihood with the random effects integrated out, from the cross-products alone.

    ``y ~ N(Xβ, σ² (I + Z Λ Λᵀ Zᵀ))`` with ``Λ`` the relative covariance factor from ``theta``
    (random-effect covariance ``σ² Λ Λᵀ``). With the factorisation of :func:`decompose`,
    ``log|V| = 2n log σ + log|L|²`` and the quadratic form is ``(‖y − Xβ‖² − ‖c_y − C_x β‖²) / σ²``,
    so one evaluation costs the same as the REML objective and nothing depends on the number of rows.
    This is the likelihood a collapsed sampler runs NUTS on. With prior weights (row ``i``'s residual
    variance ``σ² / w_i``) the statistics are the weighted ones and the covariance is
    ``σ² (W⁻¹ + Z Λ Λᵀ Zᵀ)``: the same formula plus ``½ Σ log w_i`` (``stats.log_weights``).

    Parameters
    ----------
    theta : pytensor vector
        Relative covariance parameters (``Λ`` entries, i.e. the random-effect Cholesky factor over σ).
    beta : pytensor vector
        Fixed effects.
    sigma : pytensor scalar
        Residual standard deviation.
    structure : RandomStructure
    stats : CrossProducts

    Returns
    -------
    pytensor scalar

    Examples
    --------
    >>> import numpy as np, pytensor.tensor as pt, bayesmlm as bm
    >>> m = bm.Model("Yield ~ 1 + (1 | Batch)", bm.load_dataset("Dyestuff"))
    >>> ll = marginal_loglik(pt.as_tensor([0.7526]), pt.as_tensor([1527.5]), pt.as_tensor(49.51),
    ...                      m.structure, m.cross_products)
    >>> round(float(ll.eval()), 2)  # lme4's ML logLik at its optimum: -163.66
    -163.66
    """
    import pytensor.tensor as pt

    from bayesmlm.linalg.blocked import decompose

    dec = decompose(theta, structure, stats)
    n = stats.n
    resid2 = stats.yty - 2.0 * pt.dot(beta, stats.xty) + pt.dot(beta, pt.dot(stats.xtx, beta))
    explained = sum(
        pt.sum((y - pt.dot(x, beta)) ** 2) for x, y in zip(dec.c1_x_rows, dec.c1_y_rows, strict=True)
    )
    if dec.cr_y is not None:
        explained = explained + pt.sum((dec.cr_y - pt.dot(dec.cr_x, beta)) ** 2)
    quad = (resid2 - explained) / sigma**2
    const = n * math.log(2.0 * math.pi) - float(getattr(stats, "log_weights", 0.0))
    return -0.5 * (const + 2.0 * n * pt.log(sigma) + dec.logdet_L + quad)


def pointwise_loglik(
    design: Design,
    structure: RandomStructure,
    fixed: np.ndarray,
    effects: list[np.ndarray],
    sigma: np.ndarray,
) -> np.ndarray:
    """Log-density of each observation given each draw's fixed and group effects: (S, n).

    This is the full model's pointwise log-likelihood (``y_i ~ N(x_iβ + z_i b, σ / √w_i)`` with prior
    weights ``w``, else ``σ``), as PSIS-LOO uses it.
    """
    X, y = np.asarray(design.X), np.asarray(design.y)
    mu = fixed @ X.T
    for f, b in zip(structure.factors, effects, strict=True):
        mu += np.einsum("nq,snq->sn", f.Z, b[:, f.codes, :])
    resid = (y[None, :] - mu) / sigma[:, None]
    if design.weights is None:
        return -0.5 * resid**2 - np.log(sigma)[:, None] - 0.5 * np.log(2 * np.pi)
    w = np.asarray(design.weights, dtype=float)[None, :]
    return -0.5 * w * resid**2 - np.log(sigma)[:, None] + 0.5 * np.log(w) - 0.5 * np.log(2 * np.pi)


def likelihood(name: str, mu, sigma, observed, dims: str = "obs", weights: np.ndarray | None = None):
    """Add the observed Gaussian response ``y ~ N(mu, sigma / √weights)`` to the current PyMC model."""
    import pymc as pm

    if weights is not None:
        import pytensor.tensor as pt

        sigma = sigma / pt.as_tensor(np.sqrt(np.asarray(weights, dtype=float)))
    return pm.Normal(name, mu=mu, sigma=sigma, observed=observed, dims=dims)
