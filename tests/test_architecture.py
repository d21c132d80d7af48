"""The house: the pipeline's layers hold (import-linter), nothing imports in a circle, ``import bayesmlm``
stays light, modules are small and say their stage, and results and plots never ask which fit they have."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "bayesmlm"
MAX_LINES = 400
#: what a module's docstring starts with, by where it lives (the stage it belongs to)
STAGE_LABELS = {
    "spec": "Stage 1",
    "design": "Stage 2",
    "linalg": "Stage 3",
    "families": "Stage 3",
    "draws": "Stage 5",
    "reml": "Stage 4a",
    "bayes": "Stage 4b",
    "plots": "Plots",
    "statsmodels_api": "The statsmodels entry point",
    "datasets": "Data",
}


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_import_linter_contracts_are_kept():
    lint = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "3 kept, 0 broken" in proc.stdout


def test_no_module_imports_in_a_circle():
    graph = grimp.build_graph("bayesmlm", exclude_type_checking_imports=True)
    names = sorted(graph.modules)
    edges = {m: graph.find_modules_directly_imported_by(m) for m in names}
    # Tarjan's strongly connected components: any component of two or more modules is a cycle
    index, low, stack, on_stack, cycles, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in names:
        if v not in index:
            visit(v)
    assert cycles == []


def run(code: str, timeout: int = 300) -> str:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=timeout
    ).stdout


def test_import_bayesmlm_loads_no_sampler_and_no_plotting():
    heavy = ("pymc", "pytensor", "arviz", "matplotlib", "xarray", "dask", "distributed", "pyarrow")
    code = f"import sys, json, bayesmlm; print(json.dumps([m for m in {heavy!r} if m in sys.modules]))"
    assert json.loads(run(code)) == []


def test_the_public_names_resolve_lazily_and_completely():
    code = (
        "import sys, json, bayesmlm as bm; names = [n for n in bm.__all__ if getattr(bm, n) is None]; "
        "print(json.dumps({'none': names, 'dir': sorted(set(bm.__all__) - set(dir(bm)))}))"
    )
    assert json.loads(run(code)) == {"none": [], "dir": []}
    with pytest.raises(AttributeError, match="no attribute 'Modle'"):
        import bayesmlm

        bayesmlm.Modle  # noqa: B018


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_are_small_and_say_their_stage(path):
    rel = path.relative_to(PACKAGE)
    lines = path.read_text().count("\n")
    if rel.parts[0] != "datasets":  # the datasets' registry holds every column's description
        assert lines <= MAX_LINES, f"{rel} has {lines} lines"
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    assert doc, f"{rel} has no module docstring"
    label = STAGE_LABELS.get(rel.parts[0]) if len(rel.parts) > 1 else None
    if label is not None:
        assert doc.startswith(label), f"{rel}: the docstring should start with {label!r}: {doc[:60]!r}"


def _source(*parts: str) -> str:
    return "\n".join(p.read_text() for part in parts for p in sorted((PACKAGE / part).rglob("*.py")))


def test_results_and_plots_never_branch_on_the_fit_class():
    text = _source("draws", "plots")
    needles = (
        "isinstance(fit, Fit)",
        "isinstance(fit, LikelihoodFit)",
        "from bayesmlm.bayes.",
        "from bayesmlm.reml.",
    )
    for needle in needles:
        assert needle not in text, needle


def test_one_hdi_and_one_covariance_product():
    everything = _source(".")
    assert "az.hdi(" not in everything
    products = [p for p in modules() if "lam @ lam.T" in p.read_text()]
    assert [p.relative_to(PACKAGE).as_posix() for p in products] == ["design/covariance.py"]


def test_one_naming_rule():
    """Parameter names are made in design/names.py only: no other module spells the sd( / cor( pattern."""
    offenders = [
        p.relative_to(PACKAGE).as_posix()
        for p in modules()
        if p.name != "names.py" and ('f"sd({' in p.read_text() or 'f"cor({' in p.read_text())
    ]
    assert offenders == []
