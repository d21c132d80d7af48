"""Stage 4b, Bayes: the parameterisation a ``Model`` asks for, resolved per block (and per level).

``Model(..., parameterization=...)`` is resolved here from the pilot (REML or Laplace) estimate: the
per-block data-to-prior rule (:func:`~bayesmlm.bayes.pymc_model.choose_parameterization`) and, for a
generalized model's ``"mixed"`` blocks, the per-level one (:mod:`bayesmlm.bayes.level_centring`).
"""

from __future__ import annotations

from bayesmlm.bayes.block_centring import choose_parameterization
from bayesmlm.bayes.integrated_nesting import INTEGRATED, choose_integrated, integrated_pairs
from bayesmlm.bayes.level_centring import choose_levels
from bayesmlm.design.covariance import RandomStructure
from bayesmlm.exceptions import ArgumentError

__all__ = ["resolve_parameterization"]


def resolve_parameterization(structure: RandomStructure, request, pilot, per_level: bool = False) -> tuple:
    """Centred, non-centred or mixed per block, from ``Model(..., parameterization=request)``.

    ``request`` is ``"auto"`` (:func:`~bayesmlm.bayes.pymc_model.choose_parameterization` at the
    estimate ``pilot()`` returns: ``(theta, row_weights)``, or Nones), ``"centered"``,
    ``"noncentered"``, or a dict from block label to choice (the other blocks chosen automatically);
    a generalized model's (``per_level``) scalar block may be ``"mixed"``: centred per level
    (:func:`~bayesmlm.bayes.level_centring.choose_levels`), and the outer block of a nested pair of
    intercepts ``"integrated"`` (:mod:`bayesmlm.bayes.integrated_nesting`), which ``"auto"`` chooses for
    such a pair when its inner block has a level with ``ρ > 1``.
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
        if not per_level and {"mixed", INTEGRATED} & set(request.values()):
            raise ArgumentError(
                "'mixed' (per-level centring) or 'integrated' (a nested pair) is for generalized families; "
                "use 'centered' or 'noncentered'"
            )
        pairs = integrated_pairs(structure)
        wrong = sorted(label for label, how in request.items() if how == INTEGRATED and label not in pairs)
        if wrong:
            raise ArgumentError(
                f"'integrated' is for a (1 | outer) block that one (1 | inner) factor nests in; {wrong} "
                f"is not (such blocks here: {sorted(pairs) or 'none'})"
            )
    elif request not in ("auto", "centered", "noncentered"):
        raise ArgumentError(
            f"parameterization must be 'auto', 'centered', 'noncentered' or a dict, not {request!r}"
        )
    if request in ("centered", "noncentered"):
        return dict.fromkeys(labels, request), {}
    theta, weights = pilot()
    choice = choose_parameterization(structure, theta, weights)
    asked = request if isinstance(request, dict) else {}
    integrated_masks: dict = {}
    if per_level:  # a nested pair of intercepts: the outer integrated out (bayes/integrated_nesting.py)
        choice, integrated_masks = choose_integrated(structure, theta, weights, choice, fixed=_fixed(asked))
    refined, masks = (
        choose_levels(structure, theta, weights, choice) if "mixed" in asked.values() else ({}, {})
    )
    for label, how in asked.items():
        choice[label] = refined.get(label, choice[label]) if how == "mixed" else how
    masks = {label: mask for label, mask in masks.items() if asked.get(label) == "mixed"}
    return choice, {**integrated_masks, **masks}


def _fixed(asked: dict) -> set:
    """Return the labels the user chose, except an ``"integrated"`` outer (its inner is chosen here)."""
    return {label for label, how in asked.items() if how != INTEGRATED}
