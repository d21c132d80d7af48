"""The documentation in docs/ builds with Sphinx without a single warning, and what it shows is true.

CI runs this with the rest of the suite (``python -m pytest -q``): a docstring that Sphinx cannot
render, a page missing from the table of contents, a broken cross-reference or a stale example fails.
The build is the one a person runs (``python -m sphinx -W --keep-going -b html docs <out>``).
"""

import doctest
import re
import subprocess
import sys
import warnings
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bayesmlm as bm

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = [
    "index",
    "install",
    "formulas",
    "priors",
    "bayesian",
    "reml_vs_bayes",
    "small_samples",
    "icc",
    "plots",
    "performance",
    "dask",
    "statsmodels",
    "architecture",
    "api",
]


@pytest.fixture(scope="module")
def html_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docs_html")
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-E", "-q", "-b", "html", DOCS, out]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    # -q: stderr holds exactly the warnings, each naming the file and object it came from
    assert proc.returncode == 0, f"sphinx-build -W failed:\n{proc.stderr}{proc.stdout[-2000:]}"
    return out


def page(html_dir: Path, name: str) -> str:
    return (html_dir / f"{name}.html").read_text(encoding="utf-8")


class _Tables(HTMLParser):
    """Every table of a page: rows of cells, each cell as (text, [texts of its <code> elements])."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[list[list[tuple[str, list[str]]]]] = []
        self._cell: list[str] | None = None
        self._codes: list[str] = []
        self._code: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell, self._codes = [], []
        elif tag == "code" and self._cell is not None:
            self._code = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            text = " ".join("".join(self._cell).split())
            self.tables[-1][-1].append((text, self._codes))
            self._cell = None
        elif tag == "code" and self._code is not None:
            self._codes.append(" ".join("".join(self._code).split()))
            self._code = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._code is not None:
            self._code.append(data)


def tables(html: str):
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def test_every_page_is_built(html_dir):
    for name in PAGES:
        assert (html_dir / f"{name}.html").is_file(), name
    index = page(html_dir, "index")
    for name in PAGES[1:]:
        assert f'href="{name}.html"' in index, f"index.html does not link to {name}.html"
    assert "brms" in page(html_dir, "formulas")
    assert "REML" in page(html_dir, "reml_vs_bayes")


def test_api_reference_documents_the_public_objects(html_dir):
    api = page(html_dir, "api")
    for target in [
        "bayesmlm.Model",
        "bayesmlm.Model.fit",
        "bayesmlm.Model.fit_reml",
        "bayesmlm.Fit",
        "bayesmlm.Fit.summary",
        "bayesmlm.LikelihoodFit",
        "bayesmlm.LikelihoodFit.varcorr",
        "bayesmlm.lrt",
        "bayesmlm.LRTResult",
        "bayesmlm.compare",
        "bayesmlm.compare_estimates",
        "bayesmlm.load_fit",
        "bayesmlm.load_dataset",
        "bayesmlm.list_datasets",
        "bayesmlm.mixedlm",
        "bayesmlm.MixedLM",
        "bayesmlm.parse_formula",
        "module-bayesmlm.bayes.priors",
        "bayesmlm.bayes.priors.Normal",
        "bayesmlm.bayes.priors.HalfStudentT",
        "bayesmlm.bayes.priors.LKJ",
        "bayesmlm.bayes.prior_set.PriorSet",
        "bayesmlm.datasets.simulate.simulate",
        "module-bayesmlm.bayes.collapsed",
        "bayesmlm.bayes.collapsed.collapsed_plan",
        "module-bayesmlm.bayes.checks",
        "bayesmlm.bayes.checks.check_sampling",
        "module-bayesmlm.draws.icc",
        "module-bayesmlm.plots.pooling",
        "module-bayesmlm.exceptions",
        "bayesmlm.exceptions.FormulaError",
        "bayesmlm.exceptions.PriorError",
        "bayesmlm.exceptions.SamplingWarning",
        "bayesmlm.exceptions.RowsNeededError",
        "module-bayesmlm.design.summary",
        "bayesmlm.design.summary.summarise_design",
        "module-bayesmlm.design.sums",
    ]:
        assert f'id="{target}"' in api, f"api.html has no entry for {target}"
    # napoleon turned the numpy sections into fields
    assert "Parameters" in api and "Returns" in api and "Examples" in api


def test_install_page_has_the_readme_set_up_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    setup = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", setup, re.S)
    assert len(commands) == 2
    install = (DOCS / "install.md").read_text(encoding="utf-8")
    for command in commands:
        assert f"```bash\n{command}\n```" in install, command
    assert 'pip install -e ".[nutpie]"' in install


def _syntax_table(html_dir):
    """Rows of the formula-syntax table as {column header: cell}."""
    for table in tables(page(html_dir, "formulas")):
        header = [text for text, _ in table[0]]
        if header[1].startswith("bayesmlm"):
            return [dict(zip(header, row, strict=True)) for row in table[1:]]
    raise AssertionError("formulas.html has no table with a bayesmlm column")


# what each row of the table means, as bayesmlm expands it
EXPANDED = {
    "random intercept": "y ~ x + (1 | g)",
    "correlated intercept and slope": "y ~ x + (x | g)",
    "uncorrelated intercept and slope": "y ~ x + (1 | g) + (0 + x | g)",
    "slope only": "y ~ x + (0 + x | g)",
    "nested: b within a": "y ~ x + (1 | a) + (1 | b:a)",
    "crossed": "y ~ x + (1 | a) + (1 | b)",
    "one factor per combination of a and b": "y ~ x + (1 | a:b)",
}


def test_formula_table_bayesmlm_column_parses_to_what_the_row_says(html_dir):
    rows = _syntax_table(html_dir)
    assert [row["random effects"][0] for row in rows] == list(EXPANDED)
    for row in rows:
        label = row["random effects"][0]
        bayesmlm_cell = next(cell for header, cell in row.items() if header.startswith("bayesmlm"))
        (code,) = bayesmlm_cell[1]
        spec = bm.parse_formula(f"y ~ x + {code}")
        assert str(spec) == EXPANDED[label], label
        # bambi writes the same, except where the table says it differs
        bambi_text, bambi_codes = row["bambi"]
        if label == "correlated intercept and slope":
            assert bambi_text.startswith("not possible")
        elif label == "uncorrelated intercept and slope":
            assert bambi_codes == ["(x | g)"]
        else:
            assert bambi_codes == [code], label


def _data() -> pd.DataFrame:
    rng = np.random.default_rng(2026)
    n = 240
    d = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "g": rng.integers(0, 8, n).astype(str),
            "a": rng.integers(0, 5, n).astype(str),
            "b": rng.integers(0, 4, n).astype(str),
        }
    )
    effect_a = dict(zip("01234", rng.normal(size=5), strict=True))
    effect_b = dict(zip("0123", rng.normal(size=4), strict=True))
    slope_g = d["g"].astype(int) * 0.2
    d["y"] = (1 + slope_g) * d["x"] + d["a"].map(effect_a) + d["b"].map(effect_b) + rng.normal(size=n)
    return d


def test_formula_table_statsmodels_column_is_the_same_model(html_dir):
    """Each statsmodels call, run through bm.mixedlm, fits the model of its row's bayesmlm formula."""
    d = _data()
    for row in _syntax_table(html_dir):
        label = row["random effects"][0]
        (arguments,) = row[next(h for h in row if h.startswith("statsmodels"))][1]
        md = eval(f'bm.mixedlm("y ~ x", d, {arguments})', {"bm": bm, "np": np, "d": d})
        expected = bm.parse_formula(EXPANDED[label])
        if md.spec == expected:
            continue
        # the same model under other factor names (statsmodels' single "Group", or b:a written a:b)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours = bm.Model(EXPANDED[label], d).fit_reml().loglik
            theirs = md.fit().llf
        assert theirs == pytest.approx(ours, abs=1e-6), f"{label}: {md.formula}"


def _pycon_blocks(name: str) -> str:
    text = (DOCS / f"{name}.md").read_text(encoding="utf-8")
    return "\n".join(re.findall(r"```pycon\n(.*?)```", text, re.S))


@pytest.mark.parametrize("name", ["priors", "reml_vs_bayes"])
def test_page_examples_run_and_print_what_the_page_shows(name):
    source = _pycon_blocks(name)
    assert ">>>" in source
    test = doctest.DocTestParser().get_doctest(source, {}, f"docs/{name}.md", str(DOCS / f"{name}.md"), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = runner.run(test, out=lambda s: print(s, end=""))
    assert result.failed == 0, f"{result.failed} example(s) of docs/{name}.md failed (output above)"
