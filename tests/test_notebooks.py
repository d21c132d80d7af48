"""Every notebook in notebooks/ executes without error, and its key figures are what the text says.

The Bayesian notebooks read their sampling settings from the environment (``BAYESMLM_DRAWS``,
``BAYESMLM_CHAINS``); the tests run them with few draws and check numbers that do not depend on sampling
(REML fits, bootstrap intervals with a fixed seed). The stored outputs come from full runs.
"""

import re
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def _run(name: str) -> str:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbclient.NotebookClient(
        nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    texts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", out
            texts.append(out.get("text", "") or out.get("data", {}).get("text/plain", ""))
    return "\n".join(texts)


@pytest.fixture
def few_draws(monkeypatch):
    """Run the notebook's kernel (a subprocess that inherits os.environ) with 2 chains x 150 draws."""
    monkeypatch.setenv("BAYESMLM_DRAWS", "150")
    monkeypatch.setenv("BAYESMLM_CHAINS", "2")


def _run_small(name: str) -> str:
    text = _run(name)
    assert "NUTS: 2 chains x 150 draws after 150 tuning steps" in text  # the setting reached the kernel
    return text


@pytest.mark.slow
def test_statsmodels_tutorial_notebook_runs_and_shows_lme4_numbers():
    text = _run("statsmodels_tutorial.ipynb")
    assert "Log-Likelihood:       -871.8141" in text
    assert "Scale:                654.9410" in text
    assert "0.3949" in text
    assert "-818.9673" in text
    assert "sd(Days|Subject)" in text


@pytest.mark.slow
def test_sleepstudy_notebook(few_draws):
    text = _run_small("sleepstudy.ipynb")
    assert "ICC = 1278.3 / (1278.3 + 1958.9) = 0.3949" in text
    assert "logLik: -952.1633" in text  # null
    assert "logLik: -893.2325" in text  # random intercept
    assert "logLik: -871.8141" in text  # random intercept and slope
    assert "logLik: -883.2625" in text  # random slope only
    assert "logLik: -871.8346" in text  # uncorrelated
    assert re.search(r"adjusted\s+0\.7217", text)  # Nakagawa adjusted ICC (performance::icc: 0.722)
    assert re.search(r"conditional\s+0\.5206", text)  # performance::icc: 0.5206
    assert "1762.0033" in text  # ML AIC of (Days || Subject), the lowest
    assert "Chisq = 42.8368 on 2 df" in text
    assert "Chisq = 0.0410 on 1 df, p = 0.8395" in text


@pytest.mark.slow
def test_oxboys_notebook(few_draws):
    text = _run_small("oxboys.ipynb")
    assert "ICC = 63.32 / (63.32 + 21.73) = 0.7445" in text
    # the model statsmodels reports as "Converged: No": lme4's boundary fit
    assert "REML logLik -818.9673, converged: True, singular: True" in text
    assert "Converged:          Yes" in text
    assert "logLik: -362.0455" in text
    assert re.search(r"Subject\s+0\.9934", text)
    assert "variance of the boys' own slopes: 4.07" in text
    assert "Chisq = 12.5495 on 1 df" in text


@pytest.mark.slow
def test_schools_notebook_recovers_the_truth(few_draws):
    text = _run_small("schools.ipynb")
    # REML (and its seeded bootstrap SEs) within 2.5 standard errors of every simulated true value
    max_z = float(re.search(r"max \|REML - truth\| / REML SE = ([0-9.]+)", text).group(1))
    assert max_z < 2.5
    assert "true values inside the 95% REML intervals: 6 of 6" in text
    assert "logLik: -1977.0222" in text
    assert "Chisq = 22.3312 on 2 df" in text
    assert "AIC: random slope lower by 17.7" in text


@pytest.mark.slow
def test_variance_components_notebook(few_draws):
    text = _run_small("variance_components.ipynb")
    assert "logLik: -123.4954" in text  # Pastes
    assert "logLik: -165.4303" in text  # Penicillin
    assert re.search(r"cask:batch\s+0\.7831", text) and re.search(r"batch\s+0\.1539", text)
    assert re.search(r"plate\s+0\.1509", text) and re.search(r"sample\s+0\.7854", text)
    assert "why:  per-level blocks for cask:batch and a dense 10x10 block for batch" in text
    assert "why:  per-level blocks for plate and a dense 6x6 block for sample" in text
    assert "path: full | why: requested with method='full'" in text


@pytest.mark.slow
def test_wide_to_long_notebook(few_draws):
    text = _run_small("wide_to_long.ipynb")
    assert "melt and wide_to_long give identical tables" in text
    assert "all checks passed" in text
    assert "DroppedRowsWarning: dropped 1 of 234 rows" in text
    assert "original:          logLik -362.0455" in text
    assert "reshaped:          logLik -362.0455" in text
    assert "same posterior draws as the original: True" in text


@pytest.mark.slow
def test_small_samples_notebook(few_draws):
    text = _run_small("small_samples.ipynb")
    assert "Fixed effects (t tests with Satterthwaite's df, as lmerTest; 95% intervals):" in text
    assert "Days df: Satterthwaite 17.0000, Kenward-Roger 17.0000" in text  # lmerTest 16.99998, pbkrtest 17
    assert "t(17) [7.206, 13.729]" in text
    assert re.search(r"sigma\s+profile \[22\.898, 28\.858\]", text)  # lme4: 22.898, 28.858
    assert re.search(r"cor\(Intercept,Days\|Subject\)\s+profile \[-0\.481, 0\.685\]", text)
    assert re.search(r"marginal\s+0\.2787", text) and re.search(r"conditional\s+0\.7992", text)
    assert "ICC and R² from the kept bootstrap in" in text
    assert re.search(r"Days\s+.*prior-data conflict", text)  # the deliberately conflicting prior
    assert re.search(r"age\s+6\.5255\s+0\.3363\s+25\.0", text)  # Kenward-Roger: 25 df
    assert "singular: True; sd(age|Subject) profile interval: [0.0000, 1.8803]" in text


@pytest.mark.slow
def test_glmm_notebook(few_draws):
    text = _run_small("glmm.ipynb")
    assert "VerbAgg NUTS: 2 chains x 50 draws after 50 tuning steps" in text
    # cbpp, lme4 1.1-31 glmer: logLik -92.0266, herd variance 0.41225, intercept -1.39834 (SE 0.23121)
    assert "logLik: -92.0266" in text
    assert re.search(r"herd Intercept\s+0\.4122\s+0\.6421", text)
    assert re.search(r"Intercept\s+-1\.3983\s+0\.2312", text)
    assert "residual variance π²/3 = 3.290 (logit link)" in text
    assert "ICC = 0.4122 / (0.4122 + pi^2/3) = 0.1114" in text
    assert re.search(r"herd\s+0\.1114", text)
    assert "spread of the herd intercepts (sd, logit scale): own data 0.658, model 0.534" in text
    # VerbAgg, lme4 1.1-31 glmer: logLik -4075.70025, variances id 1.79435, item 0.24526
    assert "logLik: -4075.7002" in text
    assert re.search(r"id Intercept\s+1\.7944\s+1\.3395", text)
    assert re.search(r"item Intercept\s+0\.2453\s+0\.4952", text)
    assert re.search(r"Anger\s+0\.0574\s+0\.0168", text)
    assert "person: 1.7944 / 5.3295 = 0.3367;  item: 0.2453 / 5.3295 = 0.0460" in text
    assert re.search(r"id\s+0\.3367", text) and re.search(r"item\s+0\.0460", text)
    assert "parametric bootstrap (100)" in text
