"""Stage 4a, REML/ML: the parametric bootstrap of a REML/ML fit (lme4's ``bootMer``), computed once per fit.

Data sets are simulated from the fitted model (fixed effects, random effects drawn from their
estimated covariance, residual noise) and refitted the same way, each from the fit's theta; only the
response's cross-products are recomputed per replicate
(:func:`~bayesmlm.design.crossprod.with_response`).

- Replicate ``i`` of seed ``s`` is drawn from its own stream (``SeedSequence(s, spawn_key=(i,))``),
  so it is the same whatever ``n`` and however many processes refit it: the first 100 replicates of
  ``n=200`` are the replicates of ``n=100``.
- The refits are kept per fit and seed (:class:`BootstrapCache`): ``confint(method="boot")``,
  ``icc()``, ``r2()``, :func:`~bayesmlm.compare_estimates` and the plots that call them reuse them,
  and asking for more replicates refits only the new ones. Without a seed a fit draws one seed once
  and keeps it.
- :func:`bootstrap` applies any statistic of a refitted fit (as ``bootMer``'s ``FUN``) to the kept
  refits, rebuilding each replicate's data from its seed rather than refitting it.
- Long runs show a progress bar (on stderr, after 2 s) and spread the refits over the cores.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from multiprocessing import get_context

import numpy as np
import pandas as pd

from bayesmlm.arguments import checked
from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.crossprod import CrossProducts, with_response
from bayesmlm.design.names import named_parameters
from bayesmlm.draws.arrays import ParameterDraws, sd_cor_from_covariances
from bayesmlm.exceptions import ArgumentError
from bayesmlm.reml.estimates import estimates_at
from bayesmlm.reml.faces import LikelihoodFaces
from bayesmlm.reml.optimize import OptSummary, optimize_theta

__all__ = ["BootstrapCache", "BootstrapResult", "bootstrap", "named_draws"]

#: expected serial time (s) above which the refits are spread over processes (n_jobs=None)
PARALLEL_AFTER = 15.0


def named_draws(fit: LikelihoodFaces, draws: ParameterDraws) -> dict[str, np.ndarray]:
    """Name the population parameters of draws as brms does (fixed effects, sds, correlations, sigma)."""
    sds, cors = sd_cor_from_covariances(fit.structure, draws.covariances)
    return named_parameters(
        fit.structure, fit.design.fixed_names, draws.fixed, sds, cors, np.sqrt(draws.sigma2), "sd"
    )


@dataclass(frozen=True)
class _Rows:
    """The fixed-effects matrix alone: all that a refit reads of the design.

    A Design's formula objects do not unpickle in a spawned worker (formulae rebuilds them through the
    formula namespace, which refuses), so workers get this instead.
    """

    X: np.ndarray
    weights: np.ndarray | None = None  # prior weights: row i's residual sd is sigma / sqrt(w_i)

    @property
    def n(self) -> int:
        return self.X.shape[0]

    @property
    def p(self) -> int:
        return self.X.shape[1]


@dataclass(frozen=True)
class _Problem:
    """What a refit needs (picklable, sent once to each worker process)."""

    design: _Rows
    structure: RandomStructure
    stats: CrossProducts
    estimate: ParameterDraws
    theta: np.ndarray
    reml: bool
    ties: tuple[tuple[int, ...], ...] = ()  # theta entries held equal (:mod:`bayesmlm.reml.ties`)


def _simulate(problem: _Problem, seed: int, index: int) -> np.ndarray:
    design, estimate = problem.design, problem.estimate
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
    noise = np.sqrt(estimate.sigma2[0]) * rng.standard_normal(design.n)
    if design.weights is not None:
        noise = noise / np.sqrt(design.weights)
    y = (np.asarray(design.X) @ estimate.fixed[0] if design.p else np.zeros(design.n)) + noise
    for f, c in zip(problem.structure.factors, estimate.covariances, strict=True):
        w, v = np.linalg.eigh(c[0])
        root = v * np.sqrt(np.clip(w, 0.0, None))  # any square root: boundary fits have singular covariances
        y = y + np.sum(f.Z * (rng.standard_normal((f.n_levels, f.q)) @ root.T)[f.codes], axis=1)
    return y


def _refit(problem: _Problem, seed: int, index: int):
    """Simulate replicate ``index`` and refit it: (theta, objective, converged, covariances, sigma², β)."""
    stats = with_response(problem.stats, problem.design, problem.structure, _simulate(problem, seed, index))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            opt = optimize_theta(
                problem.structure, stats, reml=problem.reml, theta0=problem.theta, ties=problem.ties
            )
        est = estimates_at(opt.theta, problem.structure, stats, reml=problem.reml)
    except Exception:  # a replicate the optimiser cannot handle counts as failed, not as an error
        return None
    covs = [est.covariances[f.group] for f in problem.structure.factors]
    return opt.theta, opt.objective, opt.converged, covs, est.sigma2, est.beta


def _refit_chunk(problem: _Problem, seed: int, indices: list[int]) -> list:
    return [(i, _refit(problem, seed, i)) for i in indices]


class _Progress:
    """A one-line progress bar on stderr, shown when asked or once a run has lasted 2 s."""

    def __init__(self, total: int, show: bool | None):
        self.total, self.show, self.start, self.last = total, show, time.perf_counter(), 0.0
        self.shown = self.finished = False

    def update(self, done: int) -> None:
        now = time.perf_counter()
        visible = self.show or (self.show is None and (self.shown or now - self.start > 2.0))
        if self.finished or not visible or (now - self.last < 0.2 and done < self.total):
            return
        self.last, self.shown, self.finished = now, True, done >= self.total
        bar = "#" * int(30 * done / max(self.total, 1))
        sys.stderr.write(f"\rbootstrap: {done}/{self.total} refits [{bar:<30}] {now - self.start:.1f} s")
        if done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


class _Replicates:
    """The refits of one fit for one seed, grown on demand."""

    def __init__(self, seed: int):
        self.seed = seed
        self.results: list = []

    def __len__(self) -> int:
        return len(self.results)


class BootstrapCache:
    """The parametric-bootstrap refits of one fit, per seed (created with the fit; see the module)."""

    def __init__(self):
        self.default_seed = int(np.random.SeedSequence().entropy % 2**63)
        self._by_seed: dict[int, _Replicates] = {}

    def replicates(self, fit: LikelihoodFaces, n: int, seed: int | None, n_jobs: int | None, progress):
        """Return the first ``n`` refits for ``seed`` (the fit's own if None), refitting only missing ones."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise ArgumentError(f"the number of bootstrap replicates must be a whole number >= 0, not {n!r}")
        seed = self.default_seed if seed is None else int(seed)
        reps = self._by_seed.setdefault(seed, _Replicates(seed))
        missing = list(range(len(reps), n))
        if missing:
            fit.design.require_rows("the parametric bootstrap (n_boot > 0; icc(n_boot=0) gives the estimate)")
            reps.results.extend(_run(_problem(fit), seed, missing, n_jobs, progress))
        return reps.results[:n], seed

    def population(self, fit: LikelihoodFaces, n: int, seed: int | None = None, n_jobs=None, progress=None):
        """Refitted population parameters as :class:`ParameterDraws` (failed refits left out)."""
        results, _ = self.replicates(fit, n, seed, n_jobs, progress)
        ok = [r for r in results if r is not None]
        q = [f.q for f in fit.structure.factors]
        covs = [np.array([r[3][k] for r in ok]).reshape(len(ok), qk, qk) for k, qk in enumerate(q)]
        beta = np.array([r[5] for r in ok], dtype=float).reshape(len(ok), fit.design.p)
        return ParameterDraws(covs, np.array([r[4] for r in ok], dtype=float), beta)


def _problem(fit: LikelihoodFaces) -> _Problem:
    structure = RandomStructure(tuple(replace(f, source_blocks=()) for f in fit.structure.factors))
    weights = getattr(fit.design, "weights", None)
    rows = _Rows(np.asarray(fit.design.X, dtype=float), None if weights is None else np.asarray(weights))
    ties = getattr(getattr(fit, "opt", None), "ties", ())
    return _Problem(rows, structure, fit.stats, fit.population_draws(), fit.theta, fit.method == "REML", ties)


def _run(problem: _Problem, seed: int, indices: list[int], n_jobs: int | None, progress) -> list:
    """Refit the replicates ``indices``: here, or over processes when asked or when it would be slow."""
    bar = _Progress(len(indices), progress)
    out: dict[int, object] = {}
    jobs = 1 if n_jobs is None else max(1, int(n_jobs))
    if n_jobs is None:  # time a few refits here, then decide
        start = time.perf_counter()
        for i in indices[:5]:
            out[i] = _refit(problem, seed, i)
            bar.update(len(out))
        per = (time.perf_counter() - start) / max(len(out), 1)
        if per * (len(indices) - len(out)) > PARALLEL_AFTER:
            jobs = os.cpu_count() or 1
    rest = [i for i in indices if i not in out]
    if jobs == 1:
        for i in rest:
            out[i] = _refit(problem, seed, i)
            bar.update(len(out))
    elif rest:
        chunks = [rest[k :: jobs * 4] for k in range(min(len(rest), jobs * 4))]
        # the platform's default start method, as PyMC's parallel sampling (fork on Linux: the workers
        # inherit the compiled objective; elsewhere scripts need the ``if __name__ == "__main__"`` guard)
        with warnings.catch_warnings():  # Python 3.12 warns of fork in a threaded process, as PyMC's pools
            warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
            with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context()) as pool:
                for future in as_completed([pool.submit(_refit_chunk, problem, seed, c) for c in chunks]):
                    out.update(future.result())
                    bar.update(len(out))
    bar.update(len(indices))
    return [out[i] for i in indices]


@dataclass(frozen=True)
class BootstrapResult:
    """A statistic on the fit and on each parametric-bootstrap replicate (lme4's ``boot`` object).

    Attributes
    ----------
    t0 : Series
        The statistic on the fit.
    t : DataFrame
        One row per replicate (NaN where a refit failed).
    seed : int
        Reproduces the replicates: ``bootstrap(fit, ..., seed=result.seed)``.
    n_failed, n_nonconverged : int
        Refits that failed, and that ended without the optimiser's convergence.
    """

    t0: pd.Series
    t: pd.DataFrame
    seed: int
    n_failed: int
    n_nonconverged: int

    @property
    def se(self) -> pd.Series:
        """Bootstrap standard errors."""
        return self.t.std(ddof=1)

    @checked
    def confint(self, level: float = 0.95) -> pd.DataFrame:
        """Percentile intervals: ``lower``, ``upper`` per statistic."""
        if not 0 < level < 1:
            raise ArgumentError(f"level must lie in (0, 1), not {level}")
        q = self.t.quantile([(1 - level) / 2, (1 + level) / 2])
        return pd.DataFrame({"lower": q.iloc[0], "upper": q.iloc[1]})

    @checked
    def summary(self, level: float = 0.95) -> pd.DataFrame:
        """Estimate, bootstrap mean, bias, se and percentile interval per statistic."""
        table = pd.DataFrame({"estimate": self.t0, "mean": self.t.mean(), "se": self.se})
        table["bias"] = table["mean"] - table["estimate"]
        return table.join(self.confint(level))

    def __repr__(self) -> str:
        head = f"parametric bootstrap: {len(self.t)} replicates (seed {self.seed}"
        head += f", {self.n_failed} failed" if self.n_failed else ""
        head += f", {self.n_nonconverged} not converged" if self.n_nonconverged else ""
        return head + ")\n" + self.summary().to_string()


def _as_series(value, names: list[str] | None = None) -> pd.Series:
    if isinstance(value, pd.Series):
        return value.astype(float)
    if isinstance(value, dict):
        return pd.Series({k: float(np.asarray(v).reshape(-1)[0]) for k, v in value.items()})
    arr = np.atleast_1d(np.asarray(value, dtype=float)).ravel()
    return pd.Series(
        arr, index=names or (["statistic"] if arr.size == 1 else [f"t{i + 1}" for i in range(arr.size)])
    )


@checked
def bootstrap(
    fit: LikelihoodFaces,
    statistic=None,
    n: int = 200,
    seed: int | None = None,
    n_jobs: int | None = None,
    progress: bool | None = None,
) -> BootstrapResult:
    """Parametric bootstrap of a REML/ML fit, as lme4's ``bootMer``.

    Parameters
    ----------
    fit : LikelihoodFit
    statistic : callable, optional
        ``statistic(replicate_fit)`` returning a number, an array, a dict or a Series; each
        ``replicate_fit`` is a :class:`~bayesmlm.LikelihoodFit` of one simulated data set. By default the
        population parameters (fixed effects, sds, correlations, sigma) under brms' names.
    n : int
        Replicates.
    seed : int, optional
        The fit's own seed (drawn once per fit) if omitted; see :attr:`BootstrapResult.seed`.
    n_jobs : int, optional
        Processes for the refits: 1 refits in this process; the default uses every core when the
        refits would take more than 15 s here.
    progress : bool, optional
        Show a progress bar (default: once a run has lasted 2 s).

    Returns
    -------
    BootstrapResult

    Examples
    --------
    >>> import bayesmlm as bm
    >>> fit = bm.Model("Yield ~ 1 + (1 | Batch)", bm.load_dataset("Dyestuff")).fit_reml()
    >>> boot = bm.bootstrap(fit, lambda f: f.sigma, n=20, seed=1)
    >>> boot.t.shape, round(float(boot.t0.iloc[0]), 2)
    ((20, 1), 49.51)
    """
    cache: BootstrapCache = fit.bootstrap_cache
    results, seed = cache.replicates(fit, n, seed, n_jobs, progress)
    if statistic is None:
        draws = cache.population(fit, n, seed)
        named = named_draws(fit, draws)
        point = {
            k: float(np.asarray(v).reshape(-1)[0])
            for k, v in named_draws(fit, fit.population_draws()).items()
        }
        ok = np.array([r is not None for r in results], dtype=bool)
        t = pd.DataFrame(np.nan, index=pd.RangeIndex(len(results), name="replicate"), columns=list(point))
        for k, v in named.items():
            t.loc[ok, k] = np.asarray(v, dtype=float).reshape(-1)
        t0 = pd.Series(point)
    else:
        t0 = _as_series(statistic(fit))
        problem = _problem(fit)
        rows = []
        for i, r in enumerate(results):
            if r is None:
                rows.append(pd.Series(np.nan, index=t0.index))
                continue
            stats = with_response(fit.stats, fit.design, fit.structure, _simulate(problem, seed, i))
            opt = OptSummary(
                fit.method, fit.theta, r[0], r[1], 0, 0, 0.0, bool(r[2]), "bootstrap replicate", 0.0
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                replicate = type(fit)(
                    replace(fit.design, y=_simulate(problem, seed, i)), fit.structure, stats, opt
                )
            rows.append(_as_series(statistic(replicate), list(t0.index)))
        t = pd.DataFrame(rows, index=pd.RangeIndex(len(results), name="replicate"))
    n_failed = sum(r is None for r in results)
    n_nonconverged = sum(1 for r in results if r is not None and not r[2])
    return BootstrapResult(t0, t, seed, n_failed, n_nonconverged)
