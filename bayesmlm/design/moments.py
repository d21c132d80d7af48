"""Stage 2, the design: the mean and standard deviation of every design column over the rows used.

The default priors are scaled by these (``sd(y)``, ``sd(x_k)``, ``sd(z_k)``), the sampler centres the
predictors at their means, and REML/ML's well-conditioned internal parameterisation centres and scales
by them. A design with rows computes them from the rows, exactly as those callers always did (the same
numpy reductions, so the same bits); a design built from a Dask DataFrame carries them from the
reduction (:mod:`bayesmlm.design.sums`), computed from centred sums so that a response such as
``y + 1e8`` loses nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["ColumnMoments", "DesignMoments", "factor_moments", "fixed_moments", "response_moments"]


@dataclass(frozen=True, eq=False)
class ColumnMoments:
    """Count, means and standard deviations (``ddof=1``; 0 with fewer than two rows) of some columns.

    Examples
    --------
    >>> m = ColumnMoments.of(np.array([[1.0, 10.0], [3.0, 10.0]]))
    >>> m.n, m.mean.tolist(), m.sd.tolist()
    (2, [2.0, 10.0], [1.4142135623730951, 0.0])
    """

    n: int
    mean: np.ndarray
    sd: np.ndarray

    @classmethod
    def of(cls, values: np.ndarray) -> ColumnMoments:
        """Moments of the columns of ``values`` (a 1-d array is one column)."""
        v = np.asarray(values, dtype=float)
        v = v.reshape(len(v), -1)
        n, k = v.shape
        mean = v.mean(axis=0) if n else np.full(k, np.nan)
        # one column at a time, as the default priors always computed them (np.std of a column)
        sd = np.array([float(np.std(v[:, j], ddof=1)) if n > 1 else 0.0 for j in range(k)])
        return cls(n, mean, sd)

    @classmethod
    def from_sums(cls, n: float, total: np.ndarray, centred: np.ndarray, shift: np.ndarray) -> ColumnMoments:
        """Moments from sums about ``shift``: ``total = Σ(v - shift)``, ``centred = Σ(v - shift)²``."""
        n = round(float(n))
        total = np.asarray(total, dtype=float)
        mean = np.asarray(shift, dtype=float) + total / n if n else np.full(total.shape, np.nan)
        squares = np.maximum(np.asarray(centred, dtype=float) - total**2 / max(n, 1), 0.0)
        sd = np.sqrt(squares / (n - 1)) if n > 1 else np.zeros(total.shape)
        return cls(n, mean, sd)

    def take(self, columns) -> ColumnMoments:
        """Return the moments of some of the columns."""
        columns = np.asarray(columns, dtype=np.int64)
        return ColumnMoments(self.n, self.mean[columns], self.sd[columns])


@dataclass(frozen=True, eq=False)
class DesignMoments:
    """The moments a design carries when it has no rows: response, fixed columns, each factor's terms.

    Attributes
    ----------
    y, x : ColumnMoments
        The response and the fixed-effect columns (those kept after aliased ones were dropped).
    z : dict of str to ColumnMoments
        Per grouping factor, its term columns in the order of the factor's ``term_names``.
    y_range : tuple of float
        Smallest and largest response value.
    x_covariance : ndarray, shape (p, p)
        Covariance of the fixed-effect columns over the rows (divided by ``n``).
    z_products : dict of str to ndarray
        Per grouping factor, ``ZᵀZ / n`` of its term columns (the ICC averages over rows with it).
    """

    y: ColumnMoments
    x: ColumnMoments
    z: dict[str, ColumnMoments]
    y_range: tuple[float, float]
    x_covariance: np.ndarray
    z_products: dict[str, np.ndarray]


def response_moments(design) -> ColumnMoments:
    """Moments of the response over the rows used (``design``: a :class:`~bayesmlm.design.Design`)."""
    if design.moments is not None:
        return design.moments.y
    return ColumnMoments.of(design.y)


def fixed_moments(design) -> ColumnMoments:
    """Moments of the fixed-effect columns over the rows used."""
    if design.moments is not None:
        return design.moments.x
    return ColumnMoments.of(design.X)


def factor_moments(design, factor) -> ColumnMoments:
    """Moments of one grouping factor's term columns (``factor``: a :class:`~bayesmlm.design.FactorTerms`)."""
    if design.moments is not None:
        return design.moments.z[factor.group]
    return ColumnMoments.of(factor.Z)
