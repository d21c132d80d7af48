"""Stage 2, the design: the cross-products (sufficient statistics) the likelihood needs, computed once.

The first factor (the one with the most levels) has a block-diagonal ``Z₁'Z₁``: it is stored per level
as an ``(m₁, q₁, q₁)`` array, with ``Z₁'X`` and ``Z₁'y`` per level. The remaining factors, if any, are
stored densely: ``Z_R'Z_R``, ``Z_R'Z₁``, ``Z_R'X``, ``Z_R'y``. The objective is then a function of theta
and of these arrays only; its cost does not depend on the number of rows.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp

from bayesmlm.design.covariance import FactorTerms, RandomStructure
from bayesmlm.design.evaluate import Design

__all__ = ["CrossProducts", "cross_products", "per_level_sum", "sparse_z", "with_response"]


@dataclass(frozen=True, eq=False)
class CrossProducts:
    """Sufficient statistics of a linear mixed model for a given random structure.

    Attributes
    ----------
    n, p : int
        Rows and fixed-effect columns.
    ztz1, ztx1, zty1 : ndarray
        Per level of the first factor: ``(m₁, q₁, q₁)``, ``(m₁, q₁, p)``, ``(m₁, q₁)``.
    ztz_rest, ztz_rest1, ztx_rest, zty_rest : ndarray or None
        Dense blocks for the other factors: ``(q_R, q_R)``, ``(q_R, m₁q₁)``, ``(q_R, p)``, ``(q_R,)``.
    xtx, xty, yty : ndarray
        ``X'X``, ``X'y``, ``y'y``.
    """

    n: int
    p: int
    ztz1: np.ndarray
    ztx1: np.ndarray
    zty1: np.ndarray
    ztz_rest: np.ndarray | None
    ztz_rest1: np.ndarray | None
    ztx_rest: np.ndarray | None
    zty_rest: np.ndarray | None
    xtx: np.ndarray
    xty: np.ndarray
    yty: float

    @property
    def has_rest(self) -> bool:
        """Whether there is more than one grouping factor."""
        return self.ztz_rest is not None


def sparse_z(factor: FactorTerms) -> sp.csr_array:
    """Build the factor's sparse ``n × (levels·q)`` indicator-times-term matrix, level-major."""
    n, q = factor.Z.shape
    cols = factor.codes[:, None] * q + np.arange(q)[None, :]
    rows = np.repeat(np.arange(n), q)
    return sp.csr_array((factor.Z.reshape(-1), (rows, cols.reshape(-1))), shape=(n, factor.n_levels * q))


def per_level_sum(codes: np.ndarray, values: np.ndarray, m: int) -> np.ndarray:
    """Sum ``values`` (rows first) within each of the ``m`` levels given by ``codes``."""
    out = np.zeros((m, *values.shape[1:]))
    np.add.at(out, codes, values)
    return out


def cross_products(
    design: Design, structure: RandomStructure, shift: np.ndarray | None = None
) -> CrossProducts:
    """Compute the cross-products once; the objective never touches the rows again.

    Parameters
    ----------
    design : Design
    structure : RandomStructure
    shift : ndarray, optional
        Subtracted from every row of ``X`` first (the collapsed sampler centres the predictors).

    Returns
    -------
    CrossProducts

    Examples
    --------
    >>> import bayesmlm as bm
    >>> from bayesmlm.design import make_design, random_structure
    >>> d = make_design("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy"))
    >>> cross_products(d, random_structure(d)).ztz1.shape
    (18, 2, 2)
    """
    X, y = np.asarray(design.X), np.asarray(design.y)
    if shift is not None:
        X = X - shift
    first, rest = structure.factors[0], structure.factors[1:]
    Z1 = first.Z
    m1 = first.n_levels
    ztz1 = per_level_sum(first.codes, Z1[:, :, None] * Z1[:, None, :], m1)
    ztx1 = per_level_sum(first.codes, Z1[:, :, None] * X[:, None, :], m1)
    rest_blocks: tuple = (None, None, None)
    zrt = None
    if rest:
        z_rest = sp.hstack([sparse_z(f) for f in rest], format="csr")
        zrt = z_rest.T.tocsr()
        rest_blocks = (
            (zrt @ z_rest).toarray(),
            (zrt @ sparse_z(first)).toarray(),
            np.asarray(zrt @ X),
        )
    return CrossProducts(
        n=design.n,
        p=design.p,
        ztz1=ztz1,
        ztx1=ztx1,
        ztz_rest=rest_blocks[0],
        ztz_rest1=rest_blocks[1],
        ztx_rest=rest_blocks[2],
        xtx=X.T @ X,
        **_response_products(first, zrt, X, y),
    )


def _response_products(first: FactorTerms, zrt, X: np.ndarray, y: np.ndarray) -> dict:
    """Compute the products with the response: ``Z₁'y`` per level, ``Z_R'y``, ``X'y``, ``y'y``."""
    return {
        "zty1": per_level_sum(first.codes, first.Z * y[:, None], first.n_levels),
        "zty_rest": None if zrt is None else np.asarray(zrt @ y),
        "xty": X.T @ y,
        "yty": float(y @ y),
    }


def with_response(stats: CrossProducts, design: Design, structure: RandomStructure, y: np.ndarray):
    """Return the cross-products of the same design with another response ``y`` (only ``y`` terms change).

    Used to refit simulated responses (parametric bootstrap) without recomputing ``Z'Z`` or ``X'X``.
    """
    rest = structure.factors[1:]
    zrt = sp.hstack([sparse_z(f) for f in rest], format="csr").T.tocsr() if rest else None
    return replace(stats, **_response_products(structure.factors[0], zrt, np.asarray(design.X), y))
