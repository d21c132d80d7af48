"""Stage 2, the design: the covariance structure of the random effects, factors, terms and theta.

All random terms on one grouping factor are merged into one :class:`FactorTerms` whose random effects
per level have covariance ``sigma² Λ Λ'``, with ``Λ`` lower triangular and block diagonal (one block per
term: a correlated block ``(x | g)`` is a full lower triangle, each term of ``(x || g)`` its own 1×1 block).
The free entries of all the ``Λ`` form lme4's relative covariance parameter ``theta`` (each block's
lower triangle column by column; diagonal entries bounded below by 0). The same object drives the
profiled REML/ML objective and, in the Bayesian model, the Cholesky factors of the LKJ priors.

Factors are ordered by decreasing number of levels, as lme4 orders its terms.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from bayesmlm.arguments import checked
from bayesmlm.design.evaluate import Design, RandomBlock
from bayesmlm.design.levels import level_keys
from bayesmlm.exceptions import ArgumentError

__all__ = ["FactorTerms", "RandomStructure", "random_structure"]


@dataclass(frozen=True, eq=False)
class FactorTerms:
    """All random terms on one grouping factor.

    Attributes
    ----------
    group : str
        The factor's name (``"Subject"``).
    levels : tuple of str
    codes : ndarray of int, shape (n,)
    Z : ndarray, shape (n, q)
        Columns of all its terms side by side.
    term_names : tuple of str
        Names of the ``q`` columns.
    block_sizes : tuple of int
        Size of each term's block (``(2,)`` for ``(Days | Subject)``, ``(1, 1)`` for ``(Days || Subject)``).
    block_labels : tuple of str
        lme4's label of each block in ``VarCorr``: ``"Subject"``, then ``"Subject.1"`` ...
    theta_start : int
        Position of this factor's first parameter in the full ``theta``.
    source_blocks : tuple of RandomBlock
        The design's blocks merged into this factor, in order.
    """

    group: str
    levels: tuple[str, ...]
    codes: np.ndarray
    Z: np.ndarray
    term_names: tuple[str, ...]
    block_sizes: tuple[int, ...]
    block_labels: tuple[str, ...]
    theta_start: int
    source_blocks: tuple[RandomBlock, ...] = ()

    @property
    def q(self) -> int:
        """Random effects per level."""
        return int(sum(self.block_sizes))

    @property
    def n_levels(self) -> int:
        """Number of levels."""
        return len(self.levels)

    @cached_property
    def lower_index(self) -> tuple[np.ndarray, np.ndarray]:
        """Row and column of each free entry of ``Λ``, in theta order."""
        rows, cols = [], []
        start = 0
        for size in self.block_sizes:
            for j in range(size):
                for i in range(j, size):
                    rows.append(start + i)
                    cols.append(start + j)
            start += size
        return np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64)

    @property
    def n_theta(self) -> int:
        """Number of free entries of ``Λ``."""
        return len(self.lower_index[0])

    @property
    def theta_slice(self) -> slice:
        """Slice of the full ``theta`` that belongs to this factor."""
        return slice(self.theta_start, self.theta_start + self.n_theta)

    @property
    def is_diagonal_entry(self) -> np.ndarray:
        """Which entries of this factor's theta lie on the diagonal of ``Λ``."""
        rows, cols = self.lower_index
        return rows == cols

    def relative_factor(self, theta: np.ndarray) -> np.ndarray:
        """``Λ`` (q×q) from the full ``theta`` vector."""
        lam = np.zeros((self.q, self.q))
        rows, cols = self.lower_index
        lam[rows, cols] = np.asarray(theta)[self.theta_slice]
        return lam

    def covariance(self, theta: np.ndarray, sigma2: float) -> np.ndarray:
        """Return the random effects' covariance ``σ² Λ Λᵀ`` (q×q) at ``theta`` and ``sigma2``.

        The one place this product is formed; REML estimates, ICCs, plots and the statsmodels
        face all take it from here.
        """
        lam = self.relative_factor(theta)
        return sigma2 * (lam @ lam.T)

    def evaluate(self, newdata: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Evaluate this factor's terms on new rows.

        Returns
        -------
        Z : ndarray, shape (n, q)
            The term columns (stateful transforms keep their fitted values).
        codes : ndarray of int
            Each row's level index; ``n_levels`` for a level not seen in fitting.
        unseen : ndarray of bool
            Rows whose level was not seen in fitting.
        """
        Z = np.column_stack(
            [
                np.asarray(np.asarray(b.expr_matrix.evaluate_new_data(newdata)), dtype=float)
                for b in self.source_blocks
            ]
        )
        keys = level_keys(newdata, self.source_blocks[0].term.factor)
        index = {lev: i for i, lev in enumerate(self.levels)}
        codes = np.array([index.get(k, self.n_levels) for k in keys], dtype=np.int64)
        unseen = codes == self.n_levels
        return Z, codes, unseen

    def unseen_levels(self, newdata: pd.DataFrame) -> list[str]:
        """Labels in ``newdata`` of levels not seen in fitting."""
        keys = level_keys(newdata, self.source_blocks[0].term.factor)
        return sorted(set(keys) - set(self.levels))

    def blocks(self):
        """Yield ``(label, start, size)`` for each block."""
        start = 0
        for label, size in zip(self.block_labels, self.block_sizes, strict=True):
            yield label, start, size
            start += size


@dataclass(frozen=True, eq=False)
class RandomStructure:
    """The random-effects structure of a model: its factors, in lme4's order."""

    factors: tuple[FactorTerms, ...]

    @property
    def n_theta(self) -> int:
        """Length of ``theta``."""
        return sum(f.n_theta for f in self.factors)

    def theta_lower_bounds(self) -> np.ndarray:
        """0 for diagonal entries of ``Λ``, ``-inf`` for off-diagonal ones."""
        return np.concatenate([np.where(f.is_diagonal_entry, 0.0, -np.inf) for f in self.factors])

    def theta_initial(self) -> np.ndarray:
        """lme4's starting value: identity ``Λ``."""
        return np.concatenate([f.is_diagonal_entry.astype(float) for f in self.factors])

    def factor(self, group: str | None = None) -> FactorTerms:
        """Return the factor named ``group`` (which may be omitted when there is only one).

        Raises
        ------
        ValueError
            If the group is unknown, or omitted while the model has several factors.
        """
        groups = [f.group for f in self.factors]
        if group is None:
            if len(groups) > 1:
                raise ArgumentError(f"the model has several grouping factors; pass group= one of {groups}")
            group = groups[0]
        for f in self.factors:
            if f.group == group:
                return f
        raise ArgumentError(f"unknown grouping factor {group!r}; the model has {groups}")


@checked
def random_structure(design: Design) -> RandomStructure:
    """Group a design's random blocks by factor, in lme4's order (decreasing number of levels).

    Parameters
    ----------
    design : Design

    Returns
    -------
    RandomStructure

    Examples
    --------
    >>> import bayesmlm as bm
    >>> from bayesmlm.design import make_design
    >>> d = make_design("Reaction ~ Days + (Days || Subject)", bm.load_dataset("sleepstudy"))
    >>> f = random_structure(d).factors[0]
    >>> f.group, f.block_sizes, f.block_labels
    ('Subject', (1, 1), ('Subject', 'Subject.1'))
    """
    by_group: dict[str, list] = {}
    for block in design.blocks:
        by_group.setdefault(block.group, []).append(block)
    ordered = sorted(by_group.values(), key=lambda bl: -bl[0].n_levels)
    factors = []
    start = 0
    for blocks in ordered:
        first = blocks[0]
        labels = tuple(first.group if k == 0 else f"{first.group}.{k}" for k in range(len(blocks)))
        factor = FactorTerms(
            group=first.group,
            levels=first.levels,
            codes=first.codes,
            Z=np.column_stack([b.Z for b in blocks]),
            term_names=tuple(name for b in blocks for name in b.term_names),
            block_sizes=tuple(b.q for b in blocks),
            block_labels=labels,
            theta_start=start,
            source_blocks=tuple(blocks),
        )
        start += factor.n_theta
        factors.append(factor)
    return RandomStructure(tuple(factors))
