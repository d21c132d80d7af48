"""Stage 4a, REML/ML: lme4's profiled deviance as a compiled function of theta and the cross-products.

With ``r²`` the penalised residual sum of squares of the blocked factorisation
(:func:`bayesmlm.linalg.blocked.decompose`), the profiled deviances (``sigma`` and ``beta``
profiled out) are::

    ML:    log|L|² + n (1 + log(2π r² / n))
    REML:  log|L|² + log|R_X|² + (n − p) (1 + log(2π r² / (n − p)))

:func:`profiled_deviance` is the objective; :func:`compile_at_theta` compiles it (or the whole
factorisation) once per random-effects structure.
"""

from __future__ import annotations

import math

import numpy as np
import pytensor
import pytensor.tensor as pt

from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.crossprod import CrossProducts
from bayesmlm.linalg.blocked import SymbolicStats, decompose, symbolic_stats

__all__ = ["compile_at_theta", "profiled_deviance"]

_COMPILED: dict[tuple, tuple[list[str], object]] = {}


def _graph_outputs(kind: str, theta, structure, sym: SymbolicStats) -> dict[str, pt.TensorVariable]:
    if kind == "decomposition":
        dec = decompose(theta, structure, sym)._asdict()
        return {k: v for k, v in dec.items() if v is not None and not isinstance(v, list)}
    dev = profiled_deviance(theta, structure, sym, reml=(kind == "REML"))
    return {"deviance": dev, "gradient": pt.grad(dev, theta)}


def compile_at_theta(kind: str, structure: RandomStructure, stats: CrossProducts):
    """Compile the objective or the factorisation into a function of theta alone.

    The compiled function takes the cross-products as inputs, so it depends only on the shape of
    the random-effects structure; it is compiled once per structure and process and reused.

    Parameters
    ----------
    kind : {"REML", "ML", "decomposition"}
        The REML criterion or ML deviance with its gradient, or every :class:`Decomposition` output.
    structure : RandomStructure
    stats : CrossProducts

    Returns
    -------
    callable
        ``f(theta)`` returning a dict of output name to value.
    """
    key = (kind, tuple(f.block_sizes for f in structure.factors), stats.p > 0)
    if key not in _COMPILED:
        theta = pt.vector("theta", dtype="float64")
        sym, inputs, _ = symbolic_stats(stats, structure)
        outputs = _graph_outputs(kind, theta, structure, sym)
        fn = pytensor.function([theta, *inputs], list(outputs.values()), on_unused_input="ignore")
        _COMPILED[key] = (list(outputs), fn)
    names, fn = _COMPILED[key]
    values = symbolic_stats(stats, structure)[2]

    def evaluate(x: np.ndarray) -> dict[str, np.ndarray]:
        out = fn(np.asarray(x, dtype=np.float64), *values)
        return dict(zip(names, out, strict=True))

    return evaluate


def profiled_deviance(
    theta: pt.TensorVariable, structure: RandomStructure, stats: CrossProducts, reml: bool = True
) -> pt.TensorVariable:
    """lme4's profiled deviance (ML) or REML criterion at ``theta``: ``-2 ×`` the (restricted) log-likelihood.

    Parameters
    ----------
    theta : pytensor vector
    structure : RandomStructure
    stats : CrossProducts
    reml : bool
        REML criterion if true, ML deviance otherwise.

    Returns
    -------
    pytensor scalar

    Examples
    --------
    >>> import numpy as np, pytensor.tensor as pt, bayesmlm as bm
    >>> from bayesmlm.design import cross_products, make_design, random_structure
    >>> d = make_design("Yield ~ 1 + (1 | Batch)", bm.load_dataset("Dyestuff"))
    >>> s = random_structure(d)
    >>> theta = pt.vector("theta")
    >>> dev = profiled_deviance(theta, s, cross_products(d, s), reml=True)
    >>> round(float(dev.eval({theta: np.array([0.848327])})), 2)  # lme4's REML criterion: 319.65
    319.65
    """
    dec = decompose(theta, structure, stats)
    n, p = stats.n, pt.as_tensor(stats.xtx).shape[0]
    dof = n - p if reml else n
    dev = dec.logdet_L + dof * (1.0 + pt.log(2.0 * math.pi * dec.r2 / dof))
    if reml:
        dev = dev + dec.logdet_RX
    return dev
