"""Plots of Bayesian and REML fits: rendering, content and agreement with the fits they show."""

import re
import warnings
from functools import cache

import matplotlib

matplotlib.use("Agg")

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection

import bayesmlm as bm
from bayesmlm.plots import (
    complete_pooling_coefficients,
    no_pooling_coefficients,
    plot_caterpillar,
    plot_compare,
    plot_groups,
    plot_icc,
    plot_pooling,
    plot_ppc,
    plot_shrinkage,
)

SLOPES = "Reaction ~ Days + (Days | Subject)"
INTERCEPTS = "Reaction ~ Days + (1 | Subject)"
N_SUBJECTS = 18


@cache
def sleep() -> pd.DataFrame:
    return bm.load_dataset("sleepstudy")


@cache
def fitted(formula: str, kind: str):
    """Bayesian (small, seeded) or REML fit of a sleepstudy model, made once per session."""
    model = bm.Model(formula, sleep())
    if kind == "reml":
        return model.fit_reml()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SamplingWarning)
        return model.fit(seed=2026, draws=200, tune=200, chains=2, progressbar=False)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(params=["bayes", "reml"])
def kind(request):
    return request.param


def subject_labels() -> list[str]:
    return sorted(sleep()["Subject"].astype(str).unique(), key=int)


def assert_png(fig, path):
    fig.savefig(path, dpi=80)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 10_000
    pixels = mpimg.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert pixels[..., :3].var() > 0  # not blank


def legend_labels(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


def fixed_means(fit) -> pd.Series:
    if isinstance(fit, bm.Fit):
        return fit.posterior["fixed"].mean(("chain", "draw")).to_series()
    return fit.fixed_effects["estimate"]


def group_coefficients(fit) -> pd.DataFrame:
    if isinstance(fit, bm.Fit):
        return fit.random_effects()["coef_mean"].unstack("term")
    return fit.coefficients()


# -- rendering ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("plot", [plot_shrinkage, plot_groups, plot_pooling, plot_caterpillar])
def test_every_plot_renders_a_non_blank_png(plot, kind, tmp_path):
    fig = plot(fitted(SLOPES, kind))
    assert_png(fig, tmp_path / f"{plot.__name__}_{kind}.png")


def test_ppc_renders_a_non_blank_png(tmp_path):
    assert_png(plot_ppc(fitted(SLOPES, "bayes"), seed=1), tmp_path / "ppc.png")


# -- pooling estimates ----------------------------------------------------------------------------------
def test_complete_pooling_is_one_regression_through_all_rows(kind):
    slope, intercept = np.polyfit(sleep()["Days"], sleep()["Reaction"], 1)
    ols = complete_pooling_coefficients(fitted(SLOPES, kind))
    assert list(ols.index) == ["Intercept", "Days"]
    assert ols.to_numpy() == pytest.approx([intercept, slope])


def test_no_pooling_of_a_bayesian_fit_is_per_subject_least_squares():
    own = no_pooling_coefficients(fitted(SLOPES, "bayes"))
    assert list(own.index) == subject_labels()
    rows = sleep()[sleep()["Subject"].astype(str) == "337"]
    slope, intercept = np.polyfit(rows["Days"], rows["Reaction"], 1)
    assert own.loc["337"].to_numpy() == pytest.approx([intercept, slope])


def test_no_pooling_intercepts_hold_the_slope_at_its_posterior_mean():
    fit = fitted(INTERCEPTS, "bayes")
    days = float(fit.posterior["fixed"].sel(fixed_term="Days").mean())
    data = sleep().assign(rest=lambda d: d["Reaction"] - days * d["Days"])
    expected = data.groupby(data["Subject"].astype(str))["rest"].mean()
    own = no_pooling_coefficients(fit)["Intercept"]
    assert own.to_numpy() == pytest.approx(expected.loc[own.index].to_numpy())


# -- shrinkage ------------------------------------------------------------------------------------------
def test_shrinkage_2d_draws_each_pooling_and_the_population_ellipse(kind):
    fit = fitted(SLOPES, kind)
    fig = plot_shrinkage(fit)
    ax = fig.axes[0]
    assert len(fig.axes) == 1
    assert len(ax.texts) == N_SUBJECTS  # one arrow per subject
    assert len(ax.patches) == 1  # the ellipse
    assert ax.get_xlabel() == "Intercept (coefficient per Subject)"
    assert ax.get_ylabel() == "Days (coefficient per Subject)"
    assert "Subject" in ax.get_title()
    assert legend_labels(ax) == [
        "no pooling (own data)",
        "partial pooling (model)",
        "population (fixed effects)",
        "complete pooling (OLS, all data)",
        "95% of Subjects (population)",
    ]
    own, pooled, population, complete = (c.get_offsets() for c in ax.collections[:4])
    assert len(own) == len(pooled) == N_SUBJECTS
    coefs = group_coefficients(fit).loc[subject_labels(), ["Intercept", "Days"]].to_numpy()
    assert np.asarray(pooled) == pytest.approx(coefs)
    beta = fixed_means(fit)[["Intercept", "Days"]].to_numpy()
    assert np.asarray(population)[0] == pytest.approx(beta)
    assert np.asarray(ax.patches[0].center) == pytest.approx(beta)
    slope, intercept = np.polyfit(sleep()["Days"], sleep()["Reaction"], 1)
    assert np.asarray(complete)[0] == pytest.approx([intercept, slope])
    # partial pooling pulls the subjects towards the population
    spread_own = np.abs(np.asarray(own) - beta).mean(axis=0)
    spread_pooled = np.abs(np.asarray(pooled) - beta).mean(axis=0)
    assert np.all(spread_pooled < spread_own)


def test_shrinkage_ellipse_of_a_bayesian_fit_uses_the_posterior_mean_covariance():
    fit = fitted(SLOPES, "bayes")
    ellipse = plot_shrinkage(fit).axes[0].patches[0]
    sd = fit.posterior["sd_Subject"].values.reshape(-1, 2)
    cor = fit.posterior["cor_Subject"].values.reshape(-1, 2, 2)[:, 1, 0]
    cov = np.array(
        [
            [np.mean(sd[:, 0] ** 2), np.mean(cor * sd[:, 0] * sd[:, 1])],
            [np.mean(cor * sd[:, 0] * sd[:, 1]), np.mean(sd[:, 1] ** 2)],
        ]
    )
    axes = 2 * np.sqrt(5.991 * np.linalg.eigvalsh(cov))
    assert sorted([ellipse.width, ellipse.height]) == pytest.approx(sorted(axes))


def test_shrinkage_1d_one_row_per_subject_and_pooling_lines(kind):
    fit = fitted(INTERCEPTS, kind)
    fig = plot_shrinkage(fit)
    ax = fig.axes[0]
    assert len(ax.texts) == N_SUBJECTS  # one joining arrow per subject
    assert ax.get_ylabel() == "Subject"
    assert ax.get_xlabel() == "Intercept (coefficient per Subject)"
    assert sorted(t.get_text() for t in ax.get_yticklabels()) == sorted(subject_labels())
    assert "complete pooling (OLS, all data)" in legend_labels(ax)
    own, pooled = (np.asarray(c.get_offsets()) for c in ax.collections[:2])
    assert np.all(np.diff(own[:, 0]) >= 0)  # rows sorted by the no-pooling estimate
    assert np.array_equal(own[:, 1], np.arange(N_SUBJECTS))
    population_line, complete_line = ax.lines
    assert population_line.get_xdata()[0] == pytest.approx(fixed_means(fit)["Intercept"])
    ols = np.polyfit(sleep()["Days"], sleep()["Reaction"], 1)
    assert complete_line.get_xdata()[0] == pytest.approx(ols[1])
    center = population_line.get_xdata()[0]
    assert np.std(pooled[:, 0] - center) < np.std(own[:, 0] - center)


def test_shrinkage_draws_into_the_given_axes():
    fig, (left, right) = plt.subplots(1, 2)
    assert plot_shrinkage(fitted(SLOPES, "bayes"), ax=right) is fig
    assert len(right.texts) == N_SUBJECTS
    assert len(left.texts) == 0


# -- posterior predictive check -------------------------------------------------------------------------
@pytest.mark.parametrize("statistic", ["mean", "sd", "min", "max"])
def test_ppc_group_statistic_and_p_value_match_a_direct_computation(statistic):
    fit = fitted(SLOPES, "bayes")
    fig = plot_ppc(fit, n_draws=30, statistic=statistic, seed=5)
    dens, stat = fig.axes
    assert len(fig.axes) == 2
    data = sleep()
    how = {"sd": "std"}.get(statistic, statistic)
    observed = data.groupby(data["Subject"].astype(str))["Reaction"].agg(how).std()
    (line,) = stat.lines
    assert line.get_xdata()[0] == pytest.approx(observed)
    new = data.assign(Subject=data["Subject"].astype(str) + "-unseen")  # every Subject drawn anew
    y_rep = fit.predict(new, kind="response", return_draws=True, seed=5)
    codes = data["Subject"].astype(str).to_numpy()
    replicated = pd.DataFrame(y_rep.T).groupby(codes).agg(how).std().to_numpy()
    p = np.mean(replicated >= observed)
    shown = float(re.search(r"p = ([0-9.]+)", stat.get_title()).group(1))
    assert shown == pytest.approx(p, abs=0.005 + 1e-12)  # shown to 2 decimals
    assert stat.get_title().startswith(f"Subject-level {statistic}")
    assert stat.get_xlabel() == (
        f"sd across Subject of per-Subject {statistic} of Reaction\n"
        "(replicated with new Subject levels drawn from the population)"
    )
    (histogram,) = stat.patches  # one step-filled histogram of every replicated value
    xs = histogram.get_xy()[:, 0]
    assert [xs.min(), xs.max()] == pytest.approx([replicated.min(), replicated.max()])
    assert len(dens.lines) == 31  # 30 replicated data sets + the observed one


def test_ppc_group_statistic_is_not_reproduced_by_construction():
    """Replicated from the fitted group effects, the spread of group means matched the data's by
    construction (p = 0.48, 0.51, 0.50 on three data sets); with new groups its replicates vary as the
    population does, several times more."""
    fit = fitted(SLOPES, "bayes")
    data = sleep()
    codes = data["Subject"].astype(str).to_numpy()

    def spreads(y_rep):
        return pd.DataFrame(y_rep.T).groupby(codes).mean().std().to_numpy()

    conditional = spreads(fit.predict(kind="response", return_draws=True, seed=3))
    population = spreads(
        fit.predict(data.assign(Subject=codes + "-unseen"), kind="response", return_draws=True, seed=3)
    )
    assert population.std() > 3 * conditional.std()


def test_ppc_panels_labels_and_legends():
    fig = plot_ppc(fitted(SLOPES, "bayes"), n_draws=12, seed=1)
    dens, stat = fig.axes
    assert dens.get_xlabel() == "Reaction"
    assert dens.get_ylabel() == "density"
    assert dens.get_title() == "Reaction: observed vs 12 replicated data sets"
    assert legend_labels(dens) == ["replicated", "observed"]
    assert legend_labels(stat) == ["replicated", "observed"]
    observed = dens.lines[-1]
    assert observed.get_linewidth() > dens.lines[0].get_linewidth()
    grid, density = observed.get_xdata(), observed.get_ydata()
    assert np.trapezoid(density, grid) == pytest.approx(1, abs=0.02)


def test_ppc_draws_into_two_given_axes():
    fig, axes = plt.subplots(2, 1)
    assert plot_ppc(fitted(INTERCEPTS, "bayes"), n_draws=5, seed=2, ax=axes) is fig
    assert len(axes[0].lines) == 6
    assert axes[1].get_title().startswith("Subject-level mean")


def test_ppc_rejects_a_likelihood_fit_and_unknown_statistics():
    with pytest.raises(TypeError, match="Bayesian Fit"):
        plot_ppc(fitted(SLOPES, "reml"))
    with pytest.raises(ValueError, match="statistic must be one of"):
        plot_ppc(fitted(SLOPES, "bayes"), statistic="median")


# -- one panel per group --------------------------------------------------------------------------------
def test_groups_one_panel_per_subject_with_its_data(kind):
    fig = plot_groups(fitted(SLOPES, kind))
    axes = fig.axes
    assert len(axes) == N_SUBJECTS
    assert [a.get_title() for a in axes] == subject_labels()
    for a in axes:
        assert len(a.collections[0].get_offsets()) == 10  # the subject's ten days
        assert len(a.lines) == 1
    assert axes[-1].get_xlabel() == "Days"
    assert axes[0].get_ylabel() == "Reaction"
    assert "Subject" in fig.get_suptitle()
    labels = legend_labels(axes[0])
    assert labels == (["data", "95% HDI", "fitted"] if kind == "bayes" else ["data", "fitted"])
    bands = [c for a in axes for c in a.collections if isinstance(c, PolyCollection)]
    assert len(bands) == (N_SUBJECTS if kind == "bayes" else 0)


def test_groups_reml_lines_are_the_model_predictions():
    fit = fitted(SLOPES, "reml")
    fig = plot_groups(fit, groups=["335", "308"])
    assert [a.get_title() for a in fig.axes] == ["335", "308"]
    line = fig.axes[1].lines[0]
    newdata = pd.DataFrame({"Days": line.get_xdata(), "Subject": "308"})
    assert line.get_ydata() == pytest.approx(fit.predict(newdata).to_numpy())


def test_groups_bayes_line_and_band_come_from_the_mean_response_draws():
    fit = fitted(SLOPES, "bayes")
    fig = plot_groups(fit, groups=1, prob=0.9)
    (ax,) = fig.axes
    assert ax.get_title() == "308"
    line = ax.lines[0]
    newdata = pd.DataFrame({"Days": line.get_xdata(), "Subject": "308"})
    draws = fit.predict(newdata, return_draws=True)
    assert line.get_ydata() == pytest.approx(draws.mean(axis=0))
    band = next(c for c in ax.collections if isinstance(c, PolyCollection))
    edge = band.get_paths()[0].vertices[:, 1]
    inside = np.mean((draws >= edge.min()) & (draws <= edge.max()))
    assert inside > 0.9
    width = edge.max() - edge.min()
    assert 0 < width < np.ptp(draws)
    assert legend_labels(ax)[1] == "90% HDI"


def test_groups_first_n_given_axes_and_errors():
    fit = fitted(SLOPES, "reml")
    assert [a.get_title() for a in plot_groups(fit, groups=4, ncols=2).axes] == subject_labels()[:4]
    fig, axes = plt.subplots(1, 3)
    assert plot_groups(fit, groups=["309", "310", "330"], ax=axes) is fig
    assert [a.get_title() for a in axes] == ["309", "310", "330"]
    with pytest.raises(ValueError, match="unknown level"):
        plot_groups(fit, groups=["999"])
    with pytest.raises(ValueError, match="3 panels"):
        plot_groups(fit, groups=3, ax=axes[:2])
    with pytest.raises(ValueError, match="not a numeric predictor"):
        plot_groups(fit, x="Subject")
    null = bm.Model("Reaction ~ 1 + (1 | Subject)", sleep()).fit_reml()
    with pytest.raises(ValueError, match="no numeric predictor"):
        plot_groups(null)


# -- pooling panels -------------------------------------------------------------------------------------
def test_pooling_three_panels_with_one_line_then_one_per_subject(kind):
    fit = fitted(SLOPES, kind)
    fig = plot_pooling(fit)
    axes = fig.axes
    assert [a.get_title() for a in axes] == ["complete pooling", "no pooling", "partial pooling (model)"]
    assert [len(a.lines) for a in axes] == [1, N_SUBJECTS, N_SUBJECTS]
    assert all(a.get_xlabel() == "Days" and a.get_ylabel() == "Reaction" for a in axes)
    assert all(len(a.collections[0].get_offsets()) == 180 for a in axes)
    assert "Subject" in fig.get_suptitle()
    assert legend_labels(axes[0]) == ["data", "OLS, all data"]
    # the complete-pooling line is the overall regression
    slope, intercept = np.polyfit(sleep()["Days"], sleep()["Reaction"], 1)
    line = axes[0].lines[0]
    assert line.get_ydata() == pytest.approx(intercept + slope * line.get_xdata())
    # the no-pooling line of subject 309 is its own regression, the partial-pooling one the model's
    own = no_pooling_coefficients(fit).loc["309"]
    days = axes[1].lines[1].get_xdata()
    assert axes[1].lines[1].get_ydata() == pytest.approx(own["Intercept"] + own["Days"] * days)
    coef = group_coefficients(fit).loc["309"]
    assert axes[2].lines[1].get_ydata() == pytest.approx(coef["Intercept"] + coef["Days"] * days)
    # data coloured by subject in the last two panels
    assert len(np.unique(axes[1].collections[0].get_facecolors(), axis=0)) == N_SUBJECTS


def test_pooling_1d_model_gives_parallel_no_pooling_lines():
    fig = plot_pooling(fitted(INTERCEPTS, "bayes"))
    slopes = {round(np.polyfit(line.get_xdata(), line.get_ydata(), 1)[0], 8) for line in fig.axes[1].lines}
    assert len(slopes) == 1
    assert len(fig.axes[2].lines) == N_SUBJECTS


def test_pooling_draws_into_three_given_axes():
    fig, axes = plt.subplots(3, 1)
    assert plot_pooling(fitted(SLOPES, "reml"), x="Days", ax=axes) is fig
    assert [len(a.lines) for a in axes] == [1, N_SUBJECTS, N_SUBJECTS]
    assert fig.get_suptitle() == ""  # a figure the caller made is not retitled


# -- caterpillar ----------------------------------------------------------------------------------------
def test_caterpillar_reml_sorted_modes_with_conditional_sd_intervals():
    fit = fitted(SLOPES, "reml")
    fig = plot_caterpillar(fit, term="Days")
    ax = fig.axes[0]
    table = fit.random_effects(conditional_sd=True).sort_values("Days")
    assert [t.get_text() for t in ax.get_yticklabels()] == list(table.index)
    container = ax.containers[0]
    assert container[0].get_xdata() == pytest.approx(table["Days"].to_numpy())
    segments = container.lines[2][0].get_segments()
    lows = np.array([s[0][0] for s in segments])
    assert lows == pytest.approx((table["Days"] - 1.959964 * table["Days_sd"]).to_numpy(), abs=1e-4)
    assert ax.get_ylabel() == "Subject"
    assert ax.get_xlabel().startswith("Days")
    assert "Subject" in ax.get_title() and "1.96 conditional sd" in ax.get_title()
    (zero,) = ax.lines[:1]
    assert zero.get_xdata()[0] == 0


def test_caterpillar_bayes_uses_the_posterior_hdi():
    fit = fitted(SLOPES, "bayes")
    fig = plot_caterpillar(fit, prob=0.9)
    ax = fig.axes[0]
    table = fit.random_effects(prob=0.9).xs("Intercept", level="term").sort_values("mean")
    assert [t.get_text() for t in ax.get_yticklabels()] == list(table.index)
    assert len(ax.get_yticklabels()) == N_SUBJECTS
    segments = ax.containers[0].lines[2][0].get_segments()
    assert np.array([[s[0][0], s[1][0]] for s in segments]) == pytest.approx(
        table[["hdi_low", "hdi_high"]].to_numpy()
    )
    assert "90% HDI" in ax.get_title()


def test_caterpillar_given_axes_and_unknown_term():
    fig, ax = plt.subplots()
    assert plot_caterpillar(fitted(INTERCEPTS, "reml"), ax=ax) is fig
    assert len(ax.get_yticklabels()) == N_SUBJECTS
    with pytest.raises(ValueError, match="no random term 'Days'"):
        plot_caterpillar(fitted(INTERCEPTS, "reml"), term="Days")


# -- ICC and Bayes beside REML ----------------------------------------------------------------------------
def test_icc_plot_one_panel_per_icc_with_bands_and_estimate(kind, tmp_path):
    fit = fitted(SLOPES, kind)
    icc = fit.icc(n_boot=30, seed=1) if kind == "reml" else fit.icc()
    fig = plot_icc(icc)
    assert [a.get_title().split(":")[0] for a in fig.axes] == ["Subject", "adjusted", "conditional"]
    for a, name in zip(fig.axes, ["Subject", "adjusted", "conditional"], strict=True):
        assert a.get_xlabel() == "ICC" and a.get_xlim() == (0.0, 1.0)
        estimate = [ln.get_xdata()[0] for ln in a.get_lines()]
        assert estimate == pytest.approx([icc[name]])
        assert len(a.containers) == 1 and len(a.containers[0]) == 40  # histogram of draws / replicates
        assert len(a.patches) == 40 + 4 + 1  # the bars, the four bands, the interval
        assert f"{icc[name]:.3f}" in a.get_title()
    labels = legend_labels(fig.axes[-1])
    assert labels[:4] == ["negligible", "moderate", "substantial", "very strong"]
    assert "Days = 0" in fig._suptitle.get_text()
    assert_png(fig, tmp_path / "icc.png")


def test_icc_plot_of_a_reml_point_estimate_and_given_axes():
    fig, ax = plt.subplots()
    out = plot_icc(fitted(INTERCEPTS, "reml"), n_boot=0, ax=[ax])
    assert out is fig and ax.get_title().startswith("Subject")
    assert len(ax.containers) == 0 and len(ax.patches) == 4  # only the bands: no replicates, no interval


def test_compare_plot_one_panel_per_parameter_with_both_intervals(tmp_path):
    bayes, reml = fitted(SLOPES, "bayes"), fitted(SLOPES, "reml")
    table = bm.compare_estimates(bayes, reml, n_boot=20, seed=1)
    fig = plot_compare(table=table)
    assert [a.get_title() for a in fig.axes] == list(table.index)
    for a, name in zip(fig.axes, table.index, strict=True):
        points = {
            ln.get_label(): ln.get_xdata()[0] for ln in a.get_lines() if ln.get_label() in ("Bayes", "REML")
        }
        assert points["Bayes"] == pytest.approx(table.loc[name, "median"])
        assert points["REML"] == pytest.approx(table.loc[name, "reml"])
        assert [t.get_text() for t in a.get_yticklabels()] == ["Bayes", "REML"]
    assert_png(fig, tmp_path / "compare.png")
    with pytest.raises(ValueError, match="needs fit and reml_fit"):
        plot_compare(bayes)


def test_arviz_plots_work_on_the_fits_data(tmp_path):
    import arviz as az

    fit = fitted(SLOPES, "bayes")
    fit.posterior_predictive(seed=1)
    forest = az.plot_forest(fit.idata, var_names=["fixed", "sd_Subject", "cor_Subject", "sigma"])
    trace = az.plot_trace_dist(fit.idata, var_names=["sigma"])
    ppc = az.plot_ppc_dist(fit.idata, num_samples=20)
    for pc, name in ((forest, "forest"), (trace, "trace"), (ppc, "ppc")):
        pc.savefig(tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000
