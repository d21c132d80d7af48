"""Stage 2, the design: one naming rule for every parameter, whatever kind of fit reports it.

brms' names for summaries and priors (``sd(Days|Subject)``, ``cor(Intercept,Days|Subject)``,
``sigma``), statsmodels' for variances (``Subject Var``, ``Subject x Days Cov``, ``Scale``) and lme4's
for theta (``Subject.Intercept``). A REML estimate and a posterior draw are named by the same code.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from bayesmlm.design.covariance import RandomStructure

__all__ = [
    "cor_names",
    "named_parameters",
    "parameter_names",
    "sd_names",
    "statsmodels_name",
    "statsmodels_variances",
    "theta_names",
]


def sd_names(structure: RandomStructure) -> tuple[tuple[str, ...], ...]:
    """Names of the random-effect standard deviations: per factor, one per column.

    Parameters
    ----------
    structure : RandomStructure

    Returns
    -------
    tuple of tuple of str
        In the order of ``structure.factors`` and of each factor's columns.

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("Reaction ~ Days + (Days || Subject)", bm.load_dataset("sleepstudy"))
    >>> sd_names(m.structure)
    (('sd(Intercept|Subject)', 'sd(Days|Subject)'),)
    """
    out = []
    used: set[str] = set()
    for factor in structure.factors:
        labels = [label for label, _, size in factor.blocks() for _ in range(size)]
        names = []
        for term, label in zip(factor.term_names, labels, strict=True):
            repeated = factor.term_names.count(term) > 1
            name = f"sd({term}|{label if repeated else factor.group})"
            k = 2
            base = name
            while name in used:  # only if block labels clash with another factor's name
                name, k = f"{base}#{k}", k + 1
            used.add(name)
            names.append(name)
        out.append(tuple(names))
    return tuple(out)


def cor_names(structure: RandomStructure) -> tuple[tuple[str | None, ...], ...]:
    """Names of the correlation matrices: per factor, one per block (``None`` for blocks of size 1).

    Parameters
    ----------
    structure : RandomStructure

    Returns
    -------
    tuple of tuple of (str or None)

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy"))
    >>> cor_names(m.structure)
    (('cor(Subject)',),)
    """
    out = []
    used: set[str] = set()
    for factor in structure.factors:
        n_correlated = sum(size >= 2 for size in factor.block_sizes)
        names: list[str | None] = []
        for label, _, size in factor.blocks():
            if size < 2:
                names.append(None)
                continue
            name = f"cor({label if n_correlated > 1 else factor.group})"
            k = 2
            base = name
            while name in used:
                name, k = f"{base}#{k}", k + 1
            used.add(name)
            names.append(name)
        out.append(tuple(names))
    return tuple(out)


def parameter_names(structure: RandomStructure) -> tuple[dict[tuple[str, str], str], dict[str, str]]:
    """Prior/summary names of each block's sds, keyed ``(block label, term)``, and correlations, by label.

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("Reaction ~ Days + (Days || Subject)", bm.load_dataset("sleepstudy"))
    >>> parameter_names(m.structure)
    ({('Subject', 'Intercept'): 'sd(Intercept|Subject)', ('Subject.1', 'Days'): 'sd(Days|Subject)'}, {})
    """
    sd_name: dict[tuple[str, str], str] = {}
    cor_name: dict[str, str] = {}
    for f, sds, cors in zip(structure.factors, sd_names(structure), cor_names(structure), strict=True):
        k = 0
        for (label, start, size), cor in zip(f.blocks(), cors, strict=True):
            for t in f.term_names[start : start + size]:
                sd_name[(label, t)] = sds[k]
                k += 1
            if cor is not None:
                cor_name[label] = cor
    return sd_name, cor_name


def statsmodels_name(structure: RandomStructure, group: str, term: str) -> str:
    """Name of a random term as statsmodels prints it: the group for an intercept, else the term.

    With several grouping factors, non-intercept terms are prefixed by their group (``"g:x"``).
    """
    if term == "Intercept":
        return group
    return term if len(structure.factors) == 1 else f"{group}:{term}"


def statsmodels_variances(structure: RandomStructure, varcorr) -> dict[str, float]:
    """Name the variances and covariances of an lme4-style ``varcorr`` table as statsmodels does.

    ``Subject Var``, ``Subject x Days Cov``, ``Days Var`` and ``Scale`` for the residual variance.
    """
    group_of = {label: f.group for f in structure.factors for label, *_ in f.blocks()}
    out = {}
    for row in varcorr.itertuples(index=False):
        if row.grp == "Residual":
            out["Scale"] = row.vcov
        elif not isinstance(row.var2, str):  # a variance: var2 is missing
            out[f"{statsmodels_name(structure, group_of[row.grp], row.var1)} Var"] = row.vcov
        else:
            first = statsmodels_name(structure, group_of[row.grp], row.var1)
            out[f"{first} x {statsmodels_name(structure, group_of[row.grp], row.var2)} Cov"] = row.vcov
    return out


def theta_names(structure: RandomStructure) -> list[str]:
    """Name each theta entry like lme4's ``getME(m, "theta")``: ``"Subject.Intercept"``."""
    names = []
    for f in structure.factors:
        rows, cols = f.lower_index
        for i, j in zip(rows, cols, strict=True):
            if i == j:
                names.append(f"{f.group}.{f.term_names[i]}")
            else:
                names.append(f"{f.group}.{f.term_names[i]}.{f.term_names[j]}")
    return names


def named_parameters(
    structure,
    fixed_names,
    fixed: np.ndarray,
    sds: dict[str, np.ndarray],
    cors: dict[str, np.ndarray],
    sigma: np.ndarray,
    scale: Literal["sd", "var"] = "sd",
) -> dict[str, np.ndarray]:
    """Name population-level parameters as brms does (and statsmodels' variances with ``scale="var"``).

    Parameters
    ----------
    structure : RandomStructure
    fixed_names : sequence of str
    fixed : ndarray, shape (..., p)
    sds : dict
        Group -> random-effect sds, shape (..., q).
    cors : dict
        Block label -> correlation matrices, shape (..., k, k), for blocks of two or more terms.
    sigma : ndarray, shape (...), or None
        The residual sd (None for a generalized family, which has none: no ``sigma``/``Scale``).
    scale : {"sd", "var"}

    Returns
    -------
    dict
        Name -> array of the leading shape (draws, or a single estimate).
    """
    out: dict[str, np.ndarray] = {}
    for k, name in enumerate(fixed_names):
        out[name] = fixed[..., k]
    sd_names, cor_names = parameter_names(structure)
    by_term: dict[tuple[str, str], np.ndarray] = {}
    for f in structure.factors:
        sd = sds[f.group]
        for label, start, size in f.blocks():
            for k in range(start, start + size):
                by_term[(label, f.term_names[k])] = sd[..., k]
                out[sd_names[(label, f.term_names[k])]] = sd[..., k]
    for f in structure.factors:
        for label, start, size in f.blocks():
            if size < 2:
                continue
            terms = f.term_names[start : start + size]
            suffix = cor_names[label][4:-1]  # "cor(<group>)" -> "<group>"
            for j in range(size):
                for i in range(j + 1, size):
                    out[f"cor({terms[j]},{terms[i]}|{suffix})"] = cors[label][..., i, j]
    if sigma is not None:
        out["sigma"] = sigma
    if scale == "var":
        for f in structure.factors:
            for label, start, size in f.blocks():
                terms = f.term_names[start : start + size]
                for t in terms:
                    out[f"{statsmodels_name(structure, f.group, t)} Var"] = by_term[(label, t)] ** 2
                for j in range(size):
                    for i in range(j + 1, size):
                        cov = cors[label][..., i, j] * by_term[(label, terms[i])] * by_term[(label, terms[j])]
                        first, second = (statsmodels_name(structure, f.group, terms[k]) for k in (j, i))
                        out[f"{first} x {second} Cov"] = cov
        if sigma is not None:
            out["Scale"] = sigma**2
    return out
