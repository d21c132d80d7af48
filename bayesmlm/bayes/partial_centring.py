"""Stage 4b, Bayes: centred or non-centred for the factors the partially collapsed sampler samples.

The full model's rule (:func:`~bayesmlm.bayes.pymc_model.choose_parameterization`) compares each level's
own data with the random effects' spread: ``Λᵀ Z_jᵀ Z_j Λ``. With several factors that overstates what a
level knows when another factor competes for the same rows: InstEval's 14 departments have 2,500 to
9,500 ratings each, but a department's effect is told apart from its lecturers' (each lecturer is in
one department) only through the spread of ~80 lecturer effects, and centring it gave effective sample
sizes of 43 in 600 draws. Here the ratio is the exact one at the REML estimate: with the largest factor
integrated out and every other effect's uncertainty included, ``1 / var(u) − 1`` for each effect ``u``
on the relative scale (prior variance 1), from the diagonal of ``S⁻¹`` of the REML factorisation
(:func:`~bayesmlm.linalg.factorize.factorize`), where ``S`` is the trailing block of the mixed-model
equations. A block is centred when the median ratio of its levels exceeds the full model's threshold.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import lapack

from bayesmlm.bayes.block_centring import CENTRED_RATIO
from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.crossprod import CrossProducts
from bayesmlm.linalg.factorize import factorize
from bayesmlm.linalg.system import blocked_system

__all__ = ["information_ratios", "partial_parameterization"]


def information_ratios(structure: RandomStructure, stats: CrossProducts, theta: np.ndarray) -> dict:
    """Return, per block label of the non-first factors, each level's data-to-prior precision ratio.

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("diameter ~ 1 + (1 | plate) + (1 | sample)", bm.load_dataset("Penicillin"))
    >>> r = information_ratios(m.structure, m.cross_products, m.fit_reml().theta)
    >>> r["sample"].shape, bool(r["sample"].min() > 4)
    ((6,), True)
    """
    system = blocked_system(structure, stats)
    factor = factorize(np.asarray(theta, dtype=float), system)
    if factor.L is None:
        raise ValueError("the mixed-model equations are singular at theta")
    k = system.n_rest
    inv, info = lapack.dtrtri(np.asfortranarray(np.tril(factor.L[:k, :k])), lower=1)
    if info != 0:
        raise ValueError("the mixed-model equations are singular at theta")
    var = np.einsum("ij,ij->j", inv, inv)  # diag(S⁻¹) = column sums of (L⁻¹)²
    ratio = 1.0 / var - 1.0
    out = {}
    for f, layout in zip(structure.factors[1:], system.rest, strict=True):
        block = ratio[layout.start : layout.stop].reshape(f.n_levels, f.q)
        for label, start, size in f.blocks():
            out[label] = block[:, start : start + size].min(axis=1)
    return out


def partial_parameterization(
    structure: RandomStructure, stats: CrossProducts, theta: np.ndarray | None, chosen: dict
) -> dict:
    """Return ``chosen`` with the non-first factors' blocks decided by :func:`information_ratios`.

    Without a REML estimate (``theta`` None) or on a singular system, ``chosen`` is returned as it is.
    """
    if theta is None:
        return dict(chosen)
    try:
        ratios = information_ratios(structure, stats, theta)
    except ValueError:
        return dict(chosen)
    out = dict(chosen)
    for label, r in ratios.items():
        out[label] = "centered" if float(np.median(r)) > CENTRED_RATIO else "noncentered"
    return out


def partial_chooser(model):
    """Return a function giving a ``Model``'s parameterisation for the partially collapsed sampler.

    The blocks the user named (``parameterization="centered"`` or a dict) stay as asked; the others of
    the sampled factors are decided by :func:`partial_parameterization` at the pilot REML estimate
    (``model._pilot``, the fit the full model's choice was made from). Called only when that sampler runs.
    """

    def choose() -> dict:
        chosen = dict(model.parameterization)
        request = model._parameterization_request
        if request in ("centered", "noncentered"):
            return chosen
        theta = model._pilot[0]
        out = partial_parameterization(model.structure, model.cross_products, theta, chosen)
        asked = request if isinstance(request, dict) else {}
        return {label: asked.get(label, how) for label, how in out.items()}

    return choose
