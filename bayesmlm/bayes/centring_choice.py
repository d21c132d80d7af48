"""Stage 4b, Bayes: the parameterisation a ``Model`` asks for, resolved per block (and per level).

``Model(..., parameterization=...)`` is resolved here from the pilot (REML or Laplace) estimate: the
per-block data-to-prior rule (:func:`~bayesmlm.bayes.pymc_model.choose_parameterization`) and, for a
generalized model's ``"mixed"`` blocks, the per-level one (:mod:`bayesmlm.bayes.level_centring`).
"""

from __future__ import annotations

from bayesmlm.bayes.level_centring import choose_levels
from bayesmlm.bayes.pymc_model import choose_parameterization
from bayesmlm.design.covariance import RandomStructure
from bayesmlm.exceptions import ArgumentError

__all__ = ["resolve_parameterization"]


def resolve_parameterization(structure: RandomStructure, request, pilot, per_level: bool = False) -> tuple:
    """Centred, non-centred or mixed per block, from ``Model(..., parameterization=request)``.

    ``request`` is ``"auto"`` (:func:`~bayesmlm.bayes.pymc_model.choose_parameterization` at the
    estimate ``pilot()`` returns: ``(theta, row_weights)``, or Nones), ``"centered"``,
    ``"noncentered"``, or a dict from block label to choice (the other blocks chosen automatically);
    a generalized model's (``per_level``) scalar block may be ``"mixed"``: centred per level
    (:func:`~bayesmlm.bayes.level_centring.choose_levels`).
    Returns (label -> choice, label -> centred-level mask).

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("TICKS ~ YEAR + (1 | BROOD) + (1 | LOCATION)", bm.load_dataset("grouseticks"),
    ...              family="poisson")
    >>> resolve_parameterization(m.structure, "noncentered", lambda: (None, None), True)
    ({'BROOD': 'noncentered', 'LOCATION': 'noncentered'}, {})
    """
    labels = [label for f in structure.factors for label, *_ in f.blocks()]
    if isinstance(request, dict):
        unknown = sorted(set(request) - set(labels))
        if unknown:
            raise ArgumentError(f"unknown block(s) {unknown} in parameterization; the blocks are {labels}")
        if not per_level and "mixed" in request.values():
            raise ArgumentError("'mixed' (per-level centring) is for generalized families; use 'centered'")
    elif request not in ("auto", "centered", "noncentered"):
        raise ArgumentError(
            f"parameterization must be 'auto', 'centered', 'noncentered' or a dict, not {request!r}"
        )
    if request in ("centered", "noncentered"):
        return dict.fromkeys(labels, request), {}
    theta, weights = pilot()
    choice = choose_parameterization(structure, theta, weights)
    asked = request if isinstance(request, dict) else {}
    refined, masks = (
        choose_levels(structure, theta, weights, choice) if "mixed" in asked.values() else ({}, {})
    )
    for label, how in asked.items():
        choice[label] = refined.get(label, choice[label]) if how == "mixed" else how
    return choice, {label: mask for label, mask in masks.items() if asked.get(label) == "mixed"}
