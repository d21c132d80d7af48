"""The shrinkage plot of a REML fit and the ICC of the null models."""

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

import bayesmlm as bm
from bayesmlm.plots import no_pooling_coefficients, plot_shrinkage
from tests.conftest import reference_fit


def test_no_pooling_coefficients_are_per_subject_least_squares(sleepstudy):
    fit = reference_fit("sleep_max", "REML")
    own = no_pooling_coefficients(fit)
    rows = sleepstudy[sleepstudy["Subject"] == "308"]
    slope, intercept = np.polyfit(rows["Days"], rows["Reaction"], 1)
    assert own.loc["308", "Days"] == pytest.approx(slope)
    assert own.loc["308", "Intercept"] == pytest.approx(intercept)


def test_shrinkage_plot_2d_draws_one_arrow_per_group(tmp_path):
    fit = reference_fit("sleep_max", "REML")
    fig = plot_shrinkage(fit)
    ax = fig.axes[0]
    assert len(ax.texts) == 18  # arrows
    assert ax.get_xlabel().startswith("Intercept")
    assert ax.get_ylabel().startswith("Days")
    assert len(ax.patches) == 1  # the population ellipse
    fig.savefig(tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 10_000


def test_shrinkage_plot_1d_and_given_axes(tmp_path):
    import matplotlib.pyplot as plt

    fit = reference_fit("dyestuff", "REML")
    fig, ax = plt.subplots()
    assert plot_shrinkage(fit, ax=ax) is fig
    assert len(ax.texts) == 6
    assert ax.get_ylabel() == "Batch"
    # partial pooling pulls every batch towards the overall mean
    own = no_pooling_coefficients(fit)["Intercept"]
    pooled = fit.coefficients()["Intercept"]
    mean = fit.fixed_effects.loc["Intercept", "estimate"]
    assert np.all(np.abs(pooled - mean) < np.abs(own - mean))


def test_icc_of_null_models_matches_the_tutorials():
    assert float(reference_fit("sleep_null", "REML").icc(n_boot=0)["Subject"]) == pytest.approx(
        0.3949, abs=5e-5
    )
    assert float(reference_fit("oxboys_null", "REML").icc(n_boot=0)["Subject"]) == pytest.approx(
        0.7445, abs=5e-5
    )
    shares = reference_fit("penicillin_crossed", "REML").icc(n_boot=0).summary["estimate"]
    assert set(shares.index) == {"plate", "sample"}
    assert shares.sum() < 1


def test_public_api_names():
    for name in ["Model", "load_dataset", "list_datasets", "lrt", "parse_formula", "FormulaError"]:
        assert hasattr(bm, name)
