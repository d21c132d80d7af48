"""Stage 4b, Bayes: which way ``method="auto"`` samples a Gaussian model, from a cost model of each way.

Three ways reach the same posterior: ``"collapsed"`` (every factor's effects integrated out; NUTS on the
population-level parameters only), ``"partial"`` (the largest factor integrated out, the others' effects
sampled: :mod:`bayesmlm.bayes.partial`) and ``"full"`` (every effect a parameter: the PyMC model). For
each that applies, :func:`method_costs` estimates the sampling time as

    seconds = setup + chains × (draws + tune) × steps(d) × gradient / min(cores, chains)

with ``steps(d) = 4 d^¼`` leapfrog steps per draw (HMC's optimal step size shrinks as ``d^-¼``, Beskos et
al. 2013; 4 fits nutpie's trees on sleepstudy's collapsed posterior, d = 6) and the gradient's cost in
seconds from the sizes alone:

- collapsed, written out (:mod:`bayesmlm.bayes.direct_blocked`, :mod:`bayesmlm.bayes.direct_density`):
  ``15 µs`` per call (nutpie's callback), ``30 ns × q₁³`` per first-factor level (the loops: 4.6 µs on
  sleepstudy's 18 levels) and ``0.1 ns`` per floating-point operation of the dense part,
  ``3 q_R² m₁q₁ + 2 q_R³`` (``W M_R1ᵀ`` and ``S⁻¹W`` by BLAS, ``S⁻¹``: about 300 µs on 60 × 40 subjects ×
  items, q_R = 80); the collapsed PyMC graph (no written-out density) costs ``300 µs`` plus ``1 ns`` per
  operation and a compilation (``setup`` 20 s);
- partial: the one-factor collapsed part plus ``3 ns`` per row and sampled term (the sampled terms'
  cross-products with the integrated factor, :mod:`bayesmlm.bayes.partial_stats`, have at most that
  many pairs, each visited twice: InstEval's 89,667 pairs for 73,421 rows × 2 terms, 0.33 ms an
  evaluation in all);
- full: ``50 µs`` plus ``10 ns`` per row and term (fixed and random; 11 s of sampling on 60 × 40), and
  PyMC's compilation (``setup`` 20 s; the numba cache makes it shorter the second time, which the model
  leaves out).

The constants were read off this project's benchmarks (sleepstudy, 60 × 40 subjects × items, 1,000 and
10,000 groups × 100 rows) on a 2-core machine; the choice turns on ratios of costs that differ by
orders of magnitude, so it is insensitive to them. The smallest estimate wins, and ``fit.info
["method_reason"]`` says what each was.
"""

from __future__ import annotations

import dataclasses

from bayesmlm.bayes.collapsed_stats import collapsed_plan
from bayesmlm.bayes.prior_set import PriorSet
from bayesmlm.design.covariance import RandomStructure

__all__ = ["MethodCost", "choose_auto", "fit_path", "fit_plan", "method_costs"]

#: seconds: a call of a written-out density from nutpie; q₁³ of a first-factor level; a dense operation
CALL, LEVEL, FLOP = 15e-6, 30e-9, 0.1e-9
#: seconds: the collapsed PyMC graph's gradient overhead and cost per operation
GRAPH_CALL, GRAPH_FLOP = 300e-6, 1e-9
#: seconds per row and term visited: the partially collapsed density, the full PyMC model
PARTIAL_ROW, FULL_CALL, FULL_ROW = 3e-9, 50e-6, 10e-9
#: seconds to build and compile a PyMC model
COMPILE = 20.0


@dataclasses.dataclass(frozen=True)
class MethodCost:
    """One way of sampling: its dimension, its gradient's cost, its setup and the estimated seconds."""

    method: str  # "collapsed", "partial" or "full"
    ndim: int
    gradient_seconds: float
    setup_seconds: float
    seconds: float

    def describe(self) -> str:
        """Say the estimate in a few words: ``collapsed 11 dims, 250 µs/gradient, ~12 s``."""
        return (
            f"{self.method} {self.ndim} dims, {self.gradient_seconds * 1e6:.0f} µs/gradient, "
            f"~{self.seconds:.0f} s"
        )


def _steps(ndim: int) -> float:
    """Leapfrog steps per draw: ``4 d^¼``."""
    return 4.0 * max(ndim, 1) ** 0.25


def method_costs(
    n: int,
    p: int,
    structure: RandomStructure,
    *,
    written_out: bool,
    partial: bool,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    cores: int = 2,
) -> list[MethodCost]:
    """Estimate each applicable way's sampling time (:mod:`this module's <bayesmlm.bayes.method_cost>` model).

    Parameters
    ----------
    n, p : int
        Rows and fixed-effect columns.
    structure : RandomStructure
    written_out : bool
        Whether the collapsed density is written out (nutpie runs it) rather than a PyMC graph.
    partial : bool
        Whether the partially collapsed sampler applies.

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy"))
    >>> [c.method for c in method_costs(m.design.n, m.design.p, m.structure, written_out=True, partial=False)]
    ['collapsed', 'full']
    """
    first, rest = structure.factors[0], structure.factors[1:]
    n_cov = sum(f.n_theta for f in structure.factors)
    small = p + n_cov + 1
    n1 = first.n_levels * first.q
    q_r = sum(f.n_levels * f.q for f in rest)
    levels = first.n_levels * first.q**3
    flops = 3 * q_r * q_r * n1 + 2 * q_r**3
    iterations = chains * (draws + tune) / max(1, min(cores, chains))

    def cost(method, ndim, gradient, setup):
        return MethodCost(method, ndim, gradient, setup, setup + iterations * _steps(ndim) * gradient)

    out = []
    if written_out:
        out.append(cost("collapsed", small, CALL + LEVEL * levels + FLOP * flops, 0.0))
    else:
        out.append(cost("collapsed", small, GRAPH_CALL + GRAPH_FLOP * (levels + flops), COMPILE))
    if partial and rest:
        rest_terms = sum(f.q for f in rest)
        out.append(cost("partial", small + q_r, CALL + LEVEL * levels + PARTIAL_ROW * n * rest_terms, 0.0))
    terms = p + sum(f.q for f in structure.factors)
    effects = sum(f.n_levels * f.q for f in structure.factors)
    out.append(cost("full", small + effects, FULL_CALL + FULL_ROW * n * terms, COMPILE))
    return out


def choose_auto(
    design,
    structure: RandomStructure,
    priors: PriorSet,
    *,
    sampler: str,
    sampler_kwargs: dict,
    draws: int,
    tune: int,
    chains: int,
    cores: int,
) -> tuple[str, str]:
    """Return the way ``method="auto"`` samples (``"collapsed"``, ``"partial"`` or ``"full"``) and why.

    The written-out densities run only with ``sampler`` ``"auto"`` or ``"nutpie"`` and no PyMC options.
    A design without rows (from a Dask DataFrame) can only be collapsed.
    """
    nutpie_ok = sampler in ("auto", "nutpie") and not sampler_kwargs
    written_out, partial = False, False
    if nutpie_ok:
        if len(structure.factors) > 1:
            from bayesmlm.bayes.blocked import blocked_available as available
        else:
            from bayesmlm.bayes.direct import direct_available as available
        written_out = available(structure, priors)[0]
        if len(structure.factors) > 1 and design.holds_rows:
            from bayesmlm.bayes.partial import partial_available

            partial = partial_available(design, structure, priors)[0]
    if not design.holds_rows:  # the full model needs the rows: it raises RowsNeededError when it is left
        possible, why = collapsed_plan(structure)
        return ("collapsed" if possible else "full"), f"no rows (a design from a Dask DataFrame): {why}"
    run = dict(draws=draws, tune=tune, chains=chains, cores=cores)
    costs = method_costs(design.n, design.p, structure, written_out=written_out, partial=partial, **run)
    best = min(costs, key=lambda c: c.seconds)
    estimates = "; ".join(c.describe() for c in costs)
    possible, plan = collapsed_plan(structure)
    why = f"{plan}; " if best.method == "collapsed" and possible else ""
    return best.method, f"{why}the cheapest by the cost model (bayesmlm.bayes.method_cost): {estimates}"


def fit_path(model, method: str, settings: dict) -> tuple[bool, bool, str]:
    """Return whether :meth:`bayesmlm.Model.fit` collapses, whether it may partially collapse, and why.

    ``method="auto"`` asks :func:`choose_auto`; ``"collapsed"`` and ``"full"`` are taken as asked
    (:func:`bayesmlm.bayes.sample.choose_method`). ``settings`` are ``fit``'s checked options.
    """
    from bayesmlm.bayes.collapsed_stats import choose_method

    if method != "auto":
        collapsed, reason = choose_method(model.structure, method)
        return collapsed, False, reason
    keys = ("sampler", "sampler_kwargs", "draws", "tune", "chains", "cores")
    way, reason = choose_auto(
        model.design, model.structure, model.prior_set, **{k: settings[k] for k in keys}
    )
    return way == "collapsed", way == "partial", reason


def fit_plan(model, method: str, group_effects: str, settings: dict, log_likelihood: bool | None) -> tuple:
    """Decide a fit's path, how it keeps its group effects, and whether it stores the log-likelihood.

    Returns ``(collapsed, partial, reason, (mode, why), log_likelihood)``: the path from
    :func:`~bayesmlm.bayes.method_cost.fit_path` (never collapsed for a generalized family; ``partial``:
    the cost model prefers the partially collapsed sampler), the group effects' keeping from
    :func:`~bayesmlm.bayes.group_draws.choose_group_effects`, and the log-likelihood: by default stored
    where the design holds its rows, observations x draws are at most 50 million and the group effects
    are stored. ``settings`` are ``fit``'s checked options. A Gaussian model that is not collapsed needs
    its rows (:class:`~bayesmlm.RowsNeededError` for one from a Dask DataFrame).
    """
    from bayesmlm.bayes.group_draws import choose_group_effects

    generalized = model.family.generalized
    n_draws = settings["draws"] * settings["chains"]
    collapsed, partial, reason = (False, False, "") if generalized else fit_path(model, method, settings)
    if not generalized and not collapsed:
        model.design.require_rows(f"the full model, with every group effect a parameter ({reason})")
    effects = choose_group_effects(group_effects, model.structure, n_draws, collapsed, log_likelihood)
    if log_likelihood is None:
        design = model.design
        log_likelihood = effects[0] == "store" and design.holds_rows and design.n * n_draws <= 50_000_000
    return collapsed, partial, reason, effects, log_likelihood
