"""Stage 4a, REML/ML: tied theta, several scalar random-effect terms sharing one variance.

statsmodels' variance components (``vc_formula={"cl": "0 + a + b"}``, or ``exog_vc`` matrices) give
each group ``k`` scalar random effects, independent, with ONE variance between them. In lme4 terms that
is ``(0 + a | g) + (0 + b | g)`` with the two relative scale factors constrained equal: a tie. The
optimiser (:func:`~bayesmlm.reml.optimize.optimize_theta`) then searches a reduced vector ``φ`` with

    θ_internal = E φ,        ∂f/∂φ = Eᵀ ∂f/∂θ_internal,

``E`` from :func:`tie_matrix`. Only 1×1 blocks (scalar terms) may be tied; in the internal, unit-spread
parameterisation (:mod:`bayesmlm.design.scaling`) a scalar term's theta is its user-scale theta times the
column's spread, so a tie on the user's scale is a fixed ratio between internal entries, still linear.
"""

from __future__ import annotations

import numpy as np

from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.scaling import Scaling
from bayesmlm.exceptions import ArgumentError

__all__ = ["check_ties", "free_count", "representatives", "tie_matrix"]


def _scalar_entries(structure: RandomStructure) -> dict[int, tuple[int, int]]:
    """Full-theta index -> (factor index, column in Λ) of every 1×1 block."""
    out = {}
    for k, f in enumerate(structure.factors):
        offset = f.theta_start
        for _, start, size in f.blocks():
            if size == 1:
                out[offset] = (k, start)
            offset += size * (size + 1) // 2
    return out


def check_ties(structure: RandomStructure, ties: tuple[tuple[int, ...], ...]) -> tuple[tuple[int, ...], ...]:
    """Return ``ties`` as sorted tuples, checked: disjoint groups of theta entries of scalar terms.

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", bm.load_dataset("sleepstudy"))
    >>> check_ties(m.structure, ((1, 0),))
    ((0, 1),)
    """
    scalar = _scalar_entries(structure)
    seen: set[int] = set()
    out = []
    for group in ties:
        group = tuple(sorted(int(i) for i in group))
        for i in group:
            if i not in scalar:
                raise ArgumentError(
                    f"theta entry {i} cannot be tied: only the variances of scalar terms such as "
                    "(0 + x | g) can share one value"
                )
            if i in seen:
                raise ArgumentError(f"theta entry {i} is in two ties")
            seen.add(i)
        if len(group) > 1:
            out.append(group)
    return tuple(out)


def representatives(n_theta: int, ties: tuple[tuple[int, ...], ...]) -> np.ndarray:
    """Return the full-theta index that each entry of the reduced ``φ`` stands for (a tie's first entry)."""
    tied = {i for group in ties for i in group[1:]}
    return np.array([i for i in range(n_theta) if i not in tied], dtype=np.int64)


def free_count(n_theta: int, ties: tuple[tuple[int, ...], ...]) -> int:
    """Return the number of free covariance parameters once ``ties`` hold."""
    return n_theta - sum(len(group) - 1 for group in ties)


def tie_matrix(
    structure: RandomStructure, scaling: Scaling | None, ties: tuple[tuple[int, ...], ...]
) -> np.ndarray:
    """Return ``E`` (n_theta × n_φ) with ``θ_internal = E φ`` under ``ties`` (module docstring).

    ``φ`` holds the internal theta of each tie's first entry and of every untied entry.

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", bm.load_dataset("sleepstudy"))
    >>> tie_matrix(m.structure, None, ((0, 1),))
    array([[1.],
           [1.]])
    """
    ties = check_ties(structure, ties)
    scalar = _scalar_entries(structure)
    reps = representatives(structure.n_theta, ties)
    column = {int(i): j for j, i in enumerate(reps)}
    E = np.zeros((structure.n_theta, len(reps)))
    for i in range(structure.n_theta):
        if i in column:
            E[i, column[i]] = 1.0
    for group in ties:

        def unit(i: int) -> float:  # user theta = unit × internal theta, for a scalar term
            if scaling is None:
                return 1.0
            k, c = scalar[i]
            return abs(float(scaling.z_maps[k][c, c]))

        first = unit(group[0])
        for i in group[1:]:
            E[i, column[group[0]]] = first / unit(i)
    return E
