"""Stage 4a, REML/ML: the profiled ML deviance and its intervals, as lme4's ``profile`` and ``confint``.

lme4 profiles the *ML* deviance, also for a REML fit (its ``devfun2`` refits by ML), in the
parameters it reports: each random-effects block's standard deviations and correlations, the residual
``σ``, and the fixed effects. For a parameter ``ψ_j`` held at ``x`` every other parameter is optimised
(``β`` analytically), and::

    ζ(x) = sign(x − ψ̂_j) √(dev(x) − dev_min)

The ``level`` interval is where ``|ζ| = z_{(1+level)/2}``; we find each end by root finding on the
exact profile (lme4 interpolates splines through a grid of profile points, which differs from the
roots in the fourth significant digit at most). When the profile of a standard deviation stays below
``z`` all the way to 0, the lower limit is 0; a correlation whose profile stays below ``z`` up to ±1
gets ±1. A fixed effect held at ``x`` is an offset: the cross-products of the model without its
column (:func:`offset_cross_products`) are refitted by ML (:func:`~bayesmlm.reml.optimize.optimize_theta`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats as sps
from scipy.optimize import brentq, minimize

from bayesmlm.arguments import checked
from bayesmlm.design.crossprod import CrossProducts
from bayesmlm.design.names import named_parameters
from bayesmlm.exceptions import ArgumentError, BayesMLMWarning
from bayesmlm.reml.faces import LikelihoodFaces
from bayesmlm.reml.objective import compile_at_theta

__all__ = ["Profile", "offset_cross_products", "profile", "sdcor_layout", "sdcor_of"]


def offset_cross_products(stats: CrossProducts, j: int, value: float) -> CrossProducts:
    """Cross-products of the model with fixed effect ``j`` held at ``value``: an offset, its column removed.

    Examples
    --------
    >>> import bayesmlm as bm
    >>> m = bm.Model("Reaction ~ Days + (1 | Subject)", bm.load_dataset("sleepstudy"))
    >>> offset_cross_products(m.cross_products, 1, 10.0).xtx.shape
    (1, 1)
    """
    keep = [k for k in range(stats.p) if k != j]
    xj = stats.xtx[:, j]
    changes = {
        "p": stats.p - 1,
        "xtx": stats.xtx[np.ix_(keep, keep)],
        "xty": stats.xty[keep] - value * xj[keep],
        "yty": float(stats.yty - 2 * value * stats.xty[j] + value**2 * stats.xtx[j, j]),
        "ztx1": stats.ztx1[:, :, keep],
        "zty1": stats.zty1 - value * stats.ztx1[:, :, j],
    }
    if stats.has_rest:
        changes["ztx_rest"] = stats.ztx_rest[:, keep]
        changes["zty_rest"] = stats.zty_rest - value * stats.ztx_rest[:, j]
    return replace(stats, **changes)


@dataclass(frozen=True)
class _Param:
    name: str
    kind: str  # "sd", "cor", "sigma" or "fixed"
    index: int  # position in the variance-parameter vector, or the fixed effect's column


def sdcor_layout(fit: LikelihoodFaces) -> list[_Param]:
    """lme4's order: per factor and block, the lower triangle of (sd on the diagonal, cor below) by column.

    Names come from the one naming rule (:func:`~bayesmlm.design.names.named_parameters`): each
    position is written into the sds and correlations as a code and read back by name.
    """
    structure = fit.structure
    sds = {f.group: np.zeros((1, f.q)) for f in structure.factors}
    cors = {label: np.zeros((1, size, size)) for f in structure.factors for label, _, size in f.blocks()}
    kinds = []
    for f in structure.factors:
        for label, start, size in f.blocks():
            for j in range(size):
                for i in range(j, size):
                    code = len(kinds) + 1.0
                    if i == j:
                        sds[f.group][0, start + i] = code
                        kinds.append("sd")
                    else:
                        cors[label][0, i, j] = code
                        kinds.append("cor")
    names = named_parameters(
        structure, fit.design.fixed_names, np.zeros((1, fit.design.p)), sds, cors, np.array([0.0]), "sd"
    )
    by_code = {
        int(v[0]): name for name, v in names.items() if name not in fit.design.fixed_names and v[0] > 0
    }
    out = [_Param(by_code[k + 1], kind, k) for k, kind in enumerate(kinds)]
    return [*out, _Param("sigma", "sigma", len(kinds))]


def _theta_from(fit: LikelihoodFaces, psi: np.ndarray) -> np.ndarray | None:
    """Return θ of (sds, cors, σ): per block Λ = diag(sd) chol(R) / σ; None if R is not positive definite."""
    sigma = psi[-1]
    theta = np.empty(fit.structure.n_theta)
    k = 0
    for f in fit.structure.factors:
        lam = np.zeros((f.q, f.q))
        for _, start, size in f.blocks():
            R, sd = np.eye(size), np.empty(size)
            for j in range(size):
                for i in range(j, size):
                    if i == j:
                        sd[i] = psi[k]
                    else:
                        R[i, j] = R[j, i] = psi[k]
                    k += 1
            try:
                chol = np.linalg.cholesky(R)
            except np.linalg.LinAlgError:
                return None
            lam[start : start + size, start : start + size] = sd[:, None] * chol / sigma
        theta[f.theta_slice] = lam[f.lower_index]
    return theta


def sdcor_of(fit: LikelihoodFaces, theta: np.ndarray, sigma: float) -> np.ndarray:
    """Invert :func:`_theta_from`: the (sds, cors, σ) of θ and σ."""
    out = []
    for f in fit.structure.factors:
        cov = f.covariance(theta, sigma**2)
        for _, start, size in f.blocks():
            block = cov[start : start + size, start : start + size]
            sd = np.sqrt(np.clip(np.diag(block), 0.0, None))
            for j in range(size):
                for i in range(j, size):
                    denom = sd[i] * sd[j]
                    out.append(sd[i] if i == j else (block[i, j] / denom if denom > 0 else 0.0))
    return np.array([*out, sigma])


_PARTS: dict[tuple, object] = {}


def _compiled_parts(structure, stats):
    """``θ ↦ (log|L|², r², their gradients)``, compiled once per random-effects structure."""
    import pytensor
    import pytensor.tensor as pt

    from bayesmlm.linalg.blocked import decompose, symbolic_stats

    key = (tuple(f.block_sizes for f in structure.factors), stats.p > 0)
    if key not in _PARTS:
        theta = pt.vector("theta", dtype="float64")
        sym, inputs, _ = symbolic_stats(stats, structure)
        dec = decompose(theta, structure, sym)
        outputs = [dec.logdet_L, dec.r2, pt.grad(dec.logdet_L, theta), pt.grad(dec.r2, theta)]
        _PARTS[key] = pytensor.function([theta, *inputs], outputs, on_unused_input="ignore")
    fn, values = _PARTS[key], symbolic_stats(stats, structure)[2]
    return lambda th: fn(np.asarray(th, dtype=np.float64), *values)


class _MLDeviance:
    """ML deviance of (sds, cors, σ), β profiled out (log|L|² + r²/σ² + n log 2πσ² - Σ log w); gradient."""

    def __init__(self, fit: LikelihoodFaces):
        self.fit = fit
        self.parts = _compiled_parts(fit.structure, fit.small_sample.stats)
        self.n = fit.stats.n
        self.log_weights = float(fit.stats.log_weights)  # prior weights: lme4's ldW

    def __call__(self, psi: np.ndarray) -> tuple[float, np.ndarray]:
        sigma = psi[-1]
        theta = _theta_from(self.fit, psi) if sigma > 0 else None
        if theta is None:
            return 1e300, np.zeros_like(psi)
        logdet, r2, g_logdet, g_r2 = self.parts(theta)
        s2 = sigma**2
        value = float(logdet) + float(r2) / s2 + self.n * np.log(2 * np.pi * s2) - self.log_weights
        grad_theta = np.asarray(g_logdet) + np.asarray(g_r2) / s2
        # θ depends on ψ through Λ = diag(sd) chol(R) / σ: its Jacobian by central differences of that map
        jac = np.empty((len(theta), len(psi)))
        for k in range(len(psi)):
            h = 1e-6 * max(abs(psi[k]), 1e-3)
            up, down = psi.copy(), psi.copy()
            up[k] += h
            down[k] -= h
            t_up, t_down = _theta_from(self.fit, up), _theta_from(self.fit, down)
            if t_up is None or t_down is None:  # at a correlation's edge: one-sided
                t_up, t_down, h = (t_up, theta, h / 2) if t_up is not None else (theta, t_down, h / 2)
            jac[:, k] = (t_up - t_down) / (2 * h)
        grad = jac.T @ grad_theta
        grad[-1] += -2 * float(r2) / sigma**3 + 2 * self.n / sigma
        return value, grad


@dataclass
class Profile:
    """The profiled ML deviance of each parameter, as lme4's ``profile``: points of ζ and the interval ends.

    Attributes
    ----------
    points : dict
        Parameter -> DataFrame of the evaluated ``value`` and ``zeta``, sorted by value.
    estimates : Series
        The ML estimates (ζ = 0 there).
    intervals : DataFrame
        ``lower`` and ``upper`` at :attr:`level`, one row per parameter in lme4's order.
    level : float
    """

    points: dict[str, pd.DataFrame]
    estimates: pd.Series
    intervals: pd.DataFrame
    level: float


def _search(zeta, est: float, direction: int, target: float, scale: float, bound: float) -> float:
    """Find where ``|ζ|`` reaches ``target`` beyond ``est`` in ``direction`` (``bound`` if it never does).

    Steps by the secant of ζ through the estimate (at most 4 times further each time) until ``|ζ|``
    passes ``target``, then Brent's method on the bracket.
    """
    inside, x = est, est + direction * scale
    for _ in range(30):
        at_bound = (x - bound) * direction >= 0
        x = bound if at_bound else x
        z = abs(zeta(x))
        if z >= target:
            return brentq(lambda t: abs(zeta(t)) - target, inside, x, xtol=1e-8 * scale, rtol=1e-11)
        if at_bound:
            return bound
        step = (x - est) * (target / z if z > 0 else 4.0) * 1.05
        inside, x = x, est + np.clip(step / (x - est), 1.2, 4.0) * (x - est)
    return np.nan


@checked
def profile(fit: LikelihoodFaces, level: float = 0.95, which=None, grid: int = 0) -> Profile:
    """Profile the ML deviance for each parameter and find the ``level`` interval, as lme4's ``profile``.

    Parameters
    ----------
    fit : LikelihoodFit
        A REML or ML fit (a REML fit is refitted by ML, as lme4 does).
    level : float
    which : list of str, optional
        Parameters to profile (default all: sds, correlations, sigma, fixed effects).
    grid : int
        Extra points of ζ between the interval ends, for plots.

    Returns
    -------
    Profile
    """
    if not 0 < level < 1:
        raise ArgumentError(f"level must lie in (0, 1), not {level}")
    with warnings.catch_warnings():  # the fit's own warnings were given when it was made
        warnings.simplefilter("ignore", BayesMLMWarning)
        ml = fit.refit(reml=False)
    base = ml.deviance
    target = float(sps.norm.ppf(0.5 + level / 2))
    deviance = _MLDeviance(ml)
    psi_hat = sdcor_of(ml, ml.theta, ml.sigma)
    params = [*sdcor_layout(ml), *(_Param(n, "fixed", j) for j, n in enumerate(ml.design.fixed_names))]
    names = [p.name for p in params]
    unknown = sorted(set(which or []) - set(names))
    if unknown:
        raise ArgumentError(f"unknown parameter(s) {unknown}; the parameters are {names}")
    chosen = [p for p in params if which is None or p.name in which]
    se = ml.fixed_effects["se"].to_numpy()
    theta_bounds = [(lo if np.isfinite(lo) else None, None) for lo in ml.structure.theta_lower_bounds()]
    points, rows, estimates = {}, {}, {}
    for par in chosen:
        record: list[tuple[float, float]] = []
        if par.kind == "fixed":
            est, scale = float(ml.estimates.beta[par.index]), float(se[par.index])
            bounds = (-np.inf, np.inf)

            start = {"x": ml.theta.copy()}

            def zeta(x, par=par, est=est, record=record, start=start):
                objective = compile_at_theta(
                    "ML", ml.structure, offset_cross_products(ml.small_sample.stats, par.index, x)
                )

                def fun(th):
                    out = objective(th)
                    return float(out["deviance"]), np.asarray(out["gradient"], dtype=float)

                res = minimize(
                    fun,
                    start["x"],
                    jac=True,
                    method="L-BFGS-B",
                    bounds=theta_bounds,
                    options={"ftol": 1e-14, "gtol": 1e-8, "maxiter": 500},
                )
                start["x"] = res.x
                z = np.sign(x - est) * np.sqrt(max(res.fun - base, 0.0))
                record.append((x, z))
                return z
        else:
            est = float(psi_hat[par.index])
            if par.kind == "cor":
                scale, bounds = 0.25, (-1.0, 1.0)
            else:
                scale, bounds = 0.25 * (est if est > 1e-6 * ml.sigma else ml.sigma), (0.0, np.inf)
            others = np.array([k for k in range(len(psi_hat)) if k != par.index])
            box = [(-1 + 1e-9, 1 - 1e-9) if params[k].kind == "cor" else (0.0, None) for k in others]
            start = {"x": psi_hat[others].copy()}
            scales = np.where(
                [params[k].kind == "cor" for k in others], 1.0, np.maximum(psi_hat[others], 1e-3 * ml.sigma)
            )

            def zeta(x, par=par, est=est, record=record, others=others, box=box, start=start, scales=scales):
                x_in = float(np.clip(x, -1 + 1e-9, 1 - 1e-9)) if par.kind == "cor" else float(x)
                psi = psi_hat.copy()
                psi[par.index] = x_in

                def objective(u):
                    psi[others] = u * scales
                    value, grad = deviance(psi)
                    return value, grad[others] * scales

                res = minimize(
                    objective,
                    start["x"] / scales,
                    jac=True,
                    method="L-BFGS-B",
                    bounds=[
                        (lo / s, None if hi is None else hi / s)
                        for (lo, hi), s in zip(box, scales, strict=True)
                    ],
                    options={"ftol": 1e-14, "gtol": 1e-8, "maxiter": 500},
                )
                start["x"] = res.x * scales
                z = np.sign(x_in - est) * np.sqrt(max(res.fun - base, 0.0))
                record.append((x, z))
                return z

        estimates[par.name] = est
        low = _search(zeta, est, -1, target, scale, bounds[0])
        high = _search(zeta, est, +1, target, scale, bounds[1])
        for x in (
            np.linspace(low, high, grid + 2)[1:-1] if grid and np.isfinite(low) and np.isfinite(high) else []
        ):
            zeta(x)
        record.append((est, 0.0))
        points[par.name] = pd.DataFrame(sorted(set(record)), columns=["value", "zeta"])
        rows[par.name] = {"lower": low, "upper": high}
    intervals = pd.DataFrame.from_dict(rows, orient="index")
    intervals.index.name = "parameter"
    return Profile(points, pd.Series(estimates), intervals, level)
