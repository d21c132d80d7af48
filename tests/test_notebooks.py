"""Every notebook in notebooks/ executes without error, and its key figures are what the text says."""

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


@pytest.mark.slow
def test_statsmodels_tutorial_notebook_runs_and_shows_lme4_numbers():
    text = _run("statsmodels_tutorial.ipynb")
    assert "Log-Likelihood:       -871.8141" in text
    assert "Scale:                654.9410" in text
    assert "0.3949" in text
    assert "-818.9673" in text
    assert "sd(Days|Subject)" in text
