"""The collapsed density of several grouping factors: PyMC's value and gradient, its draws, its choice.

:class:`~bayesmlm.bayes.direct_blocked.BlockedDensity` integrates every factor's effects out (crossed or
nested) with the blocked factorisation; here it is held to the PyMC collapsed model's compiled ``logp`` /
``dlogp`` at random points, to a dense numpy Gaussian marginal likelihood, to itself with the rows
shuffled; its conditional draws of the effects to the dense conditional Gaussian; a fit to
``method="full"``; and ``method="auto"``'s cost model to the choices it should make.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.linalg as sl

import bayesmlm as bm
from bayesmlm.bayes.blocked import blocked_effects
from bayesmlm.bayes.collapsed import build_collapsed_model
from bayesmlm.bayes.collapsed_stats import intercept_for_stats, predictor_shift
from bayesmlm.bayes.direct_blocked import BlockedDensity, blocked_plan
from bayesmlm.design.crossprod import sparse_z


def crossed(n_subj=12, n_item=8, seed=1, reps=1):
    """Subjects × items (``x = ±0.5``), both factors with correlated intercept and slope, plus noise."""
    rng = np.random.default_rng(seed)
    s, i = (a.ravel() for a in np.meshgrid(np.arange(n_subj), np.arange(n_item), indexing="ij"))
    s, i = np.repeat(s, reps), np.repeat(i, reps)
    x = np.where((s + i) % 2 == 0, -0.5, 0.5) + 0.1 * rng.normal(size=s.size)
    bs, bi = rng.normal(size=(n_subj, 2)) * [0.6, 0.3], rng.normal(size=(n_item, 2)) * [0.4, 0.2]
    y = 10.0 + 0.5 * x + bs[s, 0] + bs[s, 1] * x + bi[i, 0] + bi[i, 1] * x + rng.normal(size=s.size)
    return pd.DataFrame(
        {
            "y": y,
            "x": x,
            "w": rng.normal(size=s.size),
            "subj": pd.Categorical([f"s{k:02d}" for k in s]),
            "item": pd.Categorical([f"i{k:02d}" for k in i]),
            "site": pd.Categorical([f"t{k % 3}" for k in s * 7 + i]),
        }
    )


CASES = [
    ("Penicillin", "diameter ~ 1 + (1 | plate) + (1 | sample)", None),
    ("crossed", "y ~ x + (1 + x | subj) + (1 + x | item)", None),
    ("crossed", "y ~ x + (1 + x | subj) + (1 + x || item)", {"sd": bm.HalfStudentT(4.0, 2.0)}),
    ("crossed", "y ~ 0 + x + (1 | subj) + (1 + x | item)", {"sigma": bm.Exponential(0.5)}),
    # a three-term block in the dense part: the kernel's general (not written-out) block loops
    ("crossed", "y ~ x + w + (1 | subj) + (1 + x + w | item)", None),
    (
        "crossed",
        "y ~ x + w + (1 + x | subj) + (1 | item) + (1 + w | site)",
        {"cor": bm.LKJ(3.0), "sd": bm.HalfNormal(2.0), "b": bm.StudentT(4.0, 0.0, 3.0)},
    ),
]


def _model(case: int | tuple) -> bm.Model:
    data, formula, priors = CASES[case] if isinstance(case, int) else case
    frame = crossed() if data == "crossed" else bm.load_dataset(data)
    return bm.Model(formula, frame, priors=priors)


def _density(m: bm.Model) -> BlockedDensity:
    st = m._standardised
    return BlockedDensity(st.design.fixed_names, m.structure, m.prior_set.scaled(st.scale), st.stats)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_value_and_gradient_are_pymcs(case):
    m = _model(case)
    st = m._standardised
    priors = m.prior_set.scaled(st.scale)
    density = _density(m)
    model = build_collapsed_model(st.design, m.structure, priors, st.stats)
    logp, dlogp = model.compile_logp(mode="FAST_COMPILE"), model.compile_dlogp(mode="FAST_COMPILE")
    start = model.initial_point()
    rng = np.random.default_rng(0)
    offsets = []
    for _ in range(4):
        x = rng.normal(size=density.ndim) * 0.5
        point, k = {}, 0
        for v in model.value_vars:  # the same coordinates, in the same order
            size = int(np.prod(start[v.name].shape))
            point[v.name] = x[k : k + size].reshape(start[v.name].shape)
            k += size
        assert k == density.ndim
        value, grad = density(x)
        expected = dlogp(point)
        np.testing.assert_allclose(grad, expected, rtol=1e-8, atol=1e-8 * np.abs(expected).max())
        offsets.append(float(logp(point)) - value)
    # the value differs from PyMC's by the LKJ normalising constants only: the same at every point
    assert np.ptp(offsets) < 1e-8


def _dense_loglik(m: bm.Model, density: BlockedDensity, x: np.ndarray) -> float:
    """The Gaussian marginal log-likelihood with V = σ²I + ZΛΛᵀZᵀ formed densely."""
    st = m._standardised
    X = np.asarray(st.design.X) - predictor_shift(st.design)
    y = np.asarray(st.design.y)
    Z = np.hstack([sparse_z(f).toarray() for f in m.structure.factors])
    T = density.cholesky_draws(x[None])[0]
    lam = sl.block_diag(
        *[
            T[o : o + f.q, o : o + f.q]
            for f, o in zip(m.structure.factors, density.term_off, strict=True)
            for _ in range(f.n_levels)
        ]
    )
    V = np.exp(2 * x[-1]) * np.eye(len(y)) + Z @ lam @ lam.T @ Z.T
    r = y - X @ x[: density.p]
    return float(-0.5 * (len(y) * np.log(2 * np.pi) + np.linalg.slogdet(V)[1] + r @ np.linalg.solve(V, r)))


def test_likelihood_is_the_dense_gaussian_and_ignores_row_order():
    """Value less prior equals the dense marginal likelihood (up to one constant); shuffled rows agree."""
    m = _model(1)
    density = _density(m)
    d = crossed()
    shuffled = bm.Model(
        CASES[1][1], d.iloc[np.random.default_rng(4).permutation(len(d))].reset_index(drop=True)
    )
    other = _density(shuffled)
    rng = np.random.default_rng(2)
    x0 = rng.normal(size=density.ndim) * 0.5
    gaps = []
    for _ in range(3):
        x = x0.copy()
        x[: density.p] = rng.normal(size=density.p)  # move only β and σ: the prior on them is known
        x[-1] = rng.normal() * 0.5
        value, grad = density(x)
        prior = _fixed_and_sigma_prior(m, x, density)
        gaps.append(value - prior - _dense_loglik(m, density, x))
        v2, g2 = other(x)
        np.testing.assert_allclose(v2, value, rtol=1e-12)
        np.testing.assert_allclose(g2, grad, rtol=1e-9, atol=1e-9 * np.abs(grad).max())
    assert np.ptp(gaps) < 1e-8  # the covariance priors' terms, the same at every point


def _fixed_and_sigma_prior(m, x, density) -> float:
    """Log prior of β and σ (with σ's log-transform Jacobian) at ``x``, from scipy."""
    from scipy import stats

    priors = m.prior_set.scaled(m._standardised.scale)
    total = 0.0
    for k, name in enumerate(density.fixed_names):
        p = dict(priors.fixed[name].params)
        total += (
            stats.norm(p["mu"], p["sigma"]).logpdf(x[k]) if priors.fixed[name].family == "Normal" else np.nan
        )
    s = dict(priors.sigma.params)
    assert priors.sigma.family == "HalfStudentT"
    sigma = np.exp(x[-1])
    total += np.log(2.0) + stats.t(s["nu"], 0.0, s["sigma"]).logpdf(sigma) + x[-1]
    return total


def test_conditional_draws_have_the_dense_conditional_mean_and_covariance():
    m = _model(1)
    st = m._standardised
    density = _density(m)
    x = np.random.default_rng(5).normal(size=density.ndim) * 0.3
    xs = np.repeat(x[None], 4000, axis=0)
    beta = intercept_for_stats(xs[:, : density.p], st.design, st.stats)
    draws = blocked_effects(density, xs, np.ascontiguousarray(beta), np.random.default_rng(0))
    b = np.hstack([d.reshape(len(xs), -1) for d in draws])
    # dense: b | y ~ N(C Zᵀ r / σ², C), C = (ZᵀZ/σ² + (ΛΛᵀσ²)⁻¹)⁻¹ with Σ = TTᵀ blockwise
    X = np.asarray(st.design.X) - predictor_shift(st.design)
    Z = np.hstack([sparse_z(f).toarray() for f in m.structure.factors])
    T = density.cholesky_draws(x[None])[0]
    cov = sl.block_diag(
        *[
            (T[o : o + f.q, o : o + f.q] @ T[o : o + f.q, o : o + f.q].T)
            for f, o in zip(m.structure.factors, density.term_off, strict=True)
            for _ in range(f.n_levels)
        ]
    )
    s2 = np.exp(2 * x[-1])
    C = np.linalg.inv(Z.T @ Z / s2 + np.linalg.inv(cov))
    mean = C @ Z.T @ (np.asarray(st.design.y) - X @ x[: density.p]) / s2
    se = np.sqrt(np.diag(C) / len(xs))
    assert np.all(np.abs(b.mean(0) - mean) < 5 * se)
    np.testing.assert_allclose(np.cov(b.T), C, atol=0.08 * np.abs(C).max())


def test_plan():
    one = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy"))
    assert blocked_plan(one.structure, one.prior_set)[0] is False
    m = _model(1)
    assert blocked_plan(m.structure, m.prior_set) == (
        True, "subj in 12 per-level 2x2 blocks, item in a dense 16x16 Schur complement"
    )  # fmt: skip


@pytest.mark.slow
def test_fit_agrees_with_full_model():
    m = bm.Model(CASES[1][1], crossed(20, 16, seed=3, reps=2))
    kw = dict(draws=1000, tune=1000, chains=4, seed=4, progressbar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        collapsed = m.fit(method="collapsed", **kw)
        full = m.fit(method="full", **kw)
    assert collapsed.info["sampler"] == "nutpie" and "Schur complement" in collapsed.info["density"]
    a, b = collapsed.summary(), full.summary()
    tol = 4 * np.hypot(a["mcse_mean"], b["mcse_mean"])
    assert (np.abs(a["mean"] - b["mean"]) < tol).all(), pd.concat([a["mean"] - b["mean"], tol], axis=1)
    assert a["rhat"].max() < 1.02  # sd(x|item) (16 items) mixes slowest: R-hat 1.011 with seed 4
    for g in ("subj", "item"):  # the group effects too
        ra, rb = collapsed.posterior[f"r_{g}"], full.posterior[f"r_{g}"]
        diff = np.abs(ra.mean(("chain", "draw")) - rb.mean(("chain", "draw")))
        assert float(diff.max()) < 4 * float(rb.std(("chain", "draw")).max()) / np.sqrt(400)


def _choice(m: bm.Model, sampler="auto", sampler_kwargs=None):
    from bayesmlm.bayes.method_cost import choose_auto

    run = dict(draws=1000, tune=1000, chains=4, cores=2)
    return choose_auto(
        m.design, m.structure, m.prior_set, sampler=sampler, sampler_kwargs=sampler_kwargs or {}, **run
    )


def test_auto_collapses_subjects_by_items_with_the_written_out_density():
    m = bm.Model(CASES[1][1], crossed(60, 40))
    way, reason = _choice(m)
    assert way == "collapsed", reason
    assert "collapsed 9 dims" in reason and "full 209 dims" in reason
    # the collapsed PyMC graph (sampler="pymc"): ms per gradient and a compilation: the full model wins
    assert _choice(m, sampler="pymc")[0] == "full"


def test_auto_leaves_a_large_dense_part_to_the_sampled_effects():
    """With 600 levels in the second factor the dense Schur complement costs more than sampling them."""
    rng = np.random.default_rng(0)
    n = 6000
    d = pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "a": pd.Categorical(rng.integers(0, 800, n)),
            "b": pd.Categorical(rng.integers(0, 600, n)),
        }
    )
    m = bm.Model("y ~ 1 + (1 | a) + (1 | b)", d)
    assert [f.group for f in m.structure.factors] == ["a", "b"]
    way, reason = _choice(m)
    assert way == "partial", reason
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = m.fit(draws=20, tune=20, chains=1, seed=1, progressbar=False)
    assert fit.info["method"] == "partially collapsed" and "cost model" in fit.info["method_reason"]
    # without nutpie's densities the partial sampler does not apply: the full model
    assert _choice(m, sampler="pymc")[0] == "full"


def test_default_fit_takes_the_blocked_density():
    m = bm.Model(CASES[0][1], bm.load_dataset("Penicillin"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = m.fit(draws=100, tune=100, chains=2, seed=2, progressbar=False)
    assert fit.info["method"] == "collapsed" and fit.info["sampler"] == "nutpie"
    assert "Schur complement" in fit.info["density"]
    post = fit.posterior
    assert post["r_plate"].shape == (2, 100, 24, 1) and post["r_sample"].shape == (2, 100, 6, 1)
    assert "log_likelihood" in fit.idata.children and "observed_data" in fit.idata.children


@pytest.mark.parametrize("case", range(len(CASES)))
def test_c_callback_is_the_python_density(case):
    """The buffer nutpie hands the C callback holds every argument: value and gradient are the same bits."""
    import ctypes

    from bayesmlm.bayes.blocked_callback import blocked_c_logp, pack_blocked

    density = _density(_model(case))
    buffer = pack_blocked(density._args, density.Q, density._constant)
    ptr = ctypes.POINTER(ctypes.c_double)
    rng = np.random.default_rng(3)
    for _ in range(3):
        x = rng.normal(size=density.ndim) * 0.5
        value, grad = density(x)
        out, logp = np.empty(density.ndim), np.empty(1)
        code = blocked_c_logp.ctypes(density.ndim, *(a.ctypes.data_as(ptr) for a in (x, out, logp, buffer)))
        assert code == 0
        assert logp[0] == value
        np.testing.assert_array_equal(out, grad)
    # far out in the tails (sds e^10..e^40, sigma e^-10..e^-40) S can fail to factor in floating point: the
    # density is then -inf (NaN gradient), nutpie's code 3 from C, and never an exception, which could not
    # leave the C callback (numba would print it and return whatever logp held)
    for big in (10.0, 20.0, 30.0, 40.0):
        x = np.zeros(density.ndim)
        x[density.p : -1], x[-1] = big, -big
        value, grad = density(x)
        code = blocked_c_logp.ctypes(density.ndim, *(a.ctypes.data_as(ptr) for a in (x, out, logp, buffer)))
        if np.isfinite(value):
            assert code == 0 and logp[0] == value
        else:
            assert value == -np.inf and np.isnan(grad).all() and code == 3


def test_cholesky_reports_a_matrix_that_is_not_positive_definite():
    from bayesmlm.bayes.dense_cholesky import cholesky_inverse

    ok, L, inv = cholesky_inverse(np.array([[4.0, 2.0], [2.0, 5.0]]))
    assert ok
    np.testing.assert_allclose(L @ L.T, [[4.0, 2.0], [2.0, 5.0]])
    np.testing.assert_allclose(inv @ [[4.0, 2.0], [2.0, 5.0]], np.eye(2), atol=1e-15)
    for bad in ([[1.0, 2.0], [2.0, 1.0]], [[np.nan, 0.0], [0.0, 1.0]], [[0.0, 0.0], [0.0, 1.0]]):
        assert not cholesky_inverse(np.array(bad))[0]


def test_compiled_blocked_samples_the_same_draws_as_the_python_callable():
    """nutpie calling the C callback from Rust and calling the density in Python: the same chains."""
    from bayesmlm.bayes.blocked import sample_blocked

    m = _model(1)
    st = m._standardised
    priors = m.prior_set.scaled(st.scale)
    run = dict(draws=60, tune=60, chains=2, cores=2, seed=4, target_accept=0.8, progressbar=False)
    args = (st.design, m.structure, priors, st.stats)
    fast = sample_blocked(*args, log_likelihood=False, compiled=True, **run)["posterior"]
    slow = sample_blocked(*args, log_likelihood=False, compiled=False, **run)["posterior"]
    assert sorted(fast.data_vars) == sorted(slow.data_vars)
    for name in fast.data_vars:
        np.testing.assert_allclose(fast[name].values, slow[name].values, rtol=1e-10, atol=1e-12)
