"""Stage 2, the design: the cross-products (sufficient statistics) the likelihood needs, computed once.

The first factor (the one with the most levels) has a block-diagonal ``Z₁'Z₁``: it is stored per level
as an ``(m₁, q₁, q₁)`` array, with ``Z₁'X`` and ``Z₁'y`` per level. The remaining factors, if any, are
stored densely: ``Z_R'Z_R``, ``Z_R'Z₁``, ``Z_R'X``, ``Z_R'y``. The objective is then a function of theta
and of these arrays only; its cost does not depend on the number of rows.

Prior weights (lmer's ``weights``: row ``i`` has residual variance ``σ² / w_i``) enter as the weighted
products ``X'WX``, ``Z'WX``, ``Z'Wy``, ``y'Wy``, ...: those of the rows multiplied by ``√w_i``, whose
model has residual variance ``σ²``. Its density differs from the weighted model's only by the Jacobian
``½ Σ log w_i`` (:attr:`CrossProducts.log_weights`, which the deviance subtracts as lme4 does). The
centring and scaling of :mod:`bayesmlm.design.scaling` are applied before the weights: the weighted
model in centred columns is the same model.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import scipy.sparse as sp

from bayesmlm.arguments import checked
from bayesmlm.design.covariance import FactorTerms, RandomStructure
from bayesmlm.design.evaluate import Design
from bayesmlm.design.scaling import Scaling

__all__ = ["CrossProducts", "cross_products", "log_weight_sum", "per_level_sum", "sparse_z", "with_response"]


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
    scaling : Scaling or None
        The internal parameterisation the statistics were formed in (:mod:`bayesmlm.design.scaling`):
        the products of ``X A``, ``Z_f A_f`` and ``(y - c) / s``; None for the data's own columns.
    response_shift : float
        The statistics are those of ``y - response_shift`` (the collapsed sampler centres the response,
        so that ``y'y`` of a response like ``y + 1e9`` does not cancel); a likelihood computed from them
        subtracts the shift from the intercept.
    log_weights : float
        ``Σ log w_i`` of the prior weights (0 without weights): lme4's ``ldW``, subtracted from the
        deviance and the REML criterion.
    unscaled : CrossProducts or None
        For statistics in a ``scaling`` frame formed without rows (a Dask reduction): the same in the
        user's own columns, which Satterthwaite's derivatives are taken in.
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
    scaling: Scaling | None = None
    response_shift: float = 0.0
    log_weights: float = 0.0
    unscaled: CrossProducts | None = field(default=None, repr=False)  # the user's columns' (no rows)

    @property
    def has_rest(self) -> bool:
        """Whether there is more than one grouping factor."""
        return self.ztz_rest is not None


def sparse_z(factor: FactorTerms, Z: np.ndarray | None = None) -> sp.csr_array:
    """Build the factor's sparse ``n × (levels·q)`` indicator-times-term matrix, level-major.

    ``Z`` replaces the factor's own term columns (the internal parameterisation's, say).
    """
    Z = factor.Z if Z is None else Z
    n, q = Z.shape
    cols = factor.codes[:, None] * q + np.arange(q)[None, :]
    rows = np.repeat(np.arange(n), q)
    return sp.csr_array((np.asarray(Z).reshape(-1), (rows, cols.reshape(-1))), shape=(n, factor.n_levels * q))


def per_level_sum(codes: np.ndarray, values: np.ndarray, m: int) -> np.ndarray:
    """Sum ``values`` (rows first) within each of the ``m`` levels given by ``codes``."""
    out = np.zeros((m, *values.shape[1:]))
    np.add.at(out, codes, values)
    return out


@checked
def cross_products(
    design: Design,
    structure: RandomStructure,
    shift: np.ndarray | None = None,
    scaling: Scaling | None = None,
) -> CrossProducts:
    """Compute the cross-products once; the objective never touches the rows again.

    Parameters
    ----------
    design : Design
    structure : RandomStructure
    shift : ndarray, optional
        Subtracted from every row of ``X`` first (the collapsed sampler centres the predictors).
    scaling : Scaling, optional
        Form the products of the internal parameterisation's columns (REML/ML fits in it).

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
    X, y, Zs = _columns(design, structure, scaling)
    if shift is not None:
        X = X - shift
    X, y, Zs = _weighted(getattr(design, "weights", None), X, y, Zs)
    first, rest = structure.factors[0], structure.factors[1:]
    Z1 = Zs[0]
    m1 = first.n_levels
    ztz1 = per_level_sum(first.codes, Z1[:, :, None] * Z1[:, None, :], m1)
    ztx1 = per_level_sum(first.codes, Z1[:, :, None] * X[:, None, :], m1)
    rest_blocks: tuple = (None, None, None)
    zrt = None
    if rest:
        z_rest = sp.hstack([sparse_z(f, Z) for f, Z in zip(rest, Zs[1:], strict=True)], format="csr")
        zrt = z_rest.T.tocsr()
        rest_blocks = (
            (zrt @ z_rest).toarray(),
            (zrt @ sparse_z(first, Z1)).toarray(),
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
        **_response_products(first, Z1, zrt, X, y),
        scaling=scaling,
        log_weights=log_weight_sum(getattr(design, "weights", None)),
    )


def log_weight_sum(weights: np.ndarray | None) -> float:
    """Return ``Σ log w_i`` of prior weights (lme4's ``ldW``; 0 for None)."""
    return 0.0 if weights is None else float(np.sum(np.log(np.asarray(weights, dtype=float))))


def _weighted(weights: np.ndarray | None, X: np.ndarray, y: np.ndarray, Zs: list[np.ndarray]):
    """Multiply every row by ``√w_i`` (the products are then ``X'WX``, ``Z'Wy``, ...); no weights: as is."""
    if weights is None:
        return X, y, Zs
    root = np.sqrt(np.asarray(weights, dtype=float))
    return X * root[:, None], y * root, [Z * root[:, None] for Z in Zs]


def _columns(design: Design, structure: RandomStructure, scaling: Scaling | None):
    """``X``, ``y`` and each factor's ``Z``, in the internal parameterisation if ``scaling`` is given."""
    X, y = np.asarray(design.X, dtype=float), np.asarray(design.y, dtype=float)
    Zs = [np.asarray(f.Z, dtype=float) for f in structure.factors]
    if scaling is None:
        return X, y, Zs
    return scaling.x(X), scaling.y(y), [scaling.z(k, Z) for k, Z in enumerate(Zs)]


def _response_products(first: FactorTerms, Z1: np.ndarray, zrt, X: np.ndarray, y: np.ndarray) -> dict:
    """Compute the products with the response: ``Z₁'y`` per level, ``Z_R'y``, ``X'y``, ``y'y``."""
    return {
        "zty1": per_level_sum(first.codes, Z1 * y[:, None], first.n_levels),
        "zty_rest": None if zrt is None else np.asarray(zrt @ y),
        "xty": X.T @ y,
        "yty": float(y @ y),
    }


def with_response(stats: CrossProducts, design: Design, structure: RandomStructure, y: np.ndarray):
    """Return the cross-products of the same design with another response ``y`` (only ``y`` terms change).

    Used to refit simulated responses (parametric bootstrap) without recomputing ``Z'Z`` or ``X'X``; the
    new response is put into the same parameterisation as ``stats`` (``stats.scaling``) and weighted by
    ``design.weights`` (if it has them) as the statistics are.
    """
    X = np.asarray(design.X, dtype=float)  # ``design`` may be anything with ``X`` (a bootstrap worker's)
    y_new = np.asarray(y, dtype=float)
    Zs = [np.asarray(f.Z, dtype=float) for f in structure.factors]
    if stats.scaling is not None:
        scaling = stats.scaling
        X, y_new, Zs = scaling.x(X), scaling.y(y_new), [scaling.z(k, Z) for k, Z in enumerate(Zs)]
    X, y_new, Zs = _weighted(getattr(design, "weights", None), X, y_new, Zs)
    rest = structure.factors[1:]
    zrt = None
    if rest:
        zrt = sp.hstack([sparse_z(f, Z) for f, Z in zip(rest, Zs[1:], strict=True)], format="csr").T.tocsr()
    return replace(stats, **_response_products(structure.factors[0], Zs[0], zrt, X, y_new))
