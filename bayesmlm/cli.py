"""Command line: ``bayesmlm demo`` fits the sleepstudy model and writes a short report."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

__all__ = ["main"]

DEMO_FORMULA = "Reaction ~ Days + (Days | Subject)"


def _demo(out: Path) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import bayesmlm as bm
    from bayesmlm.plots import plot_shrinkage

    out.mkdir(parents=True, exist_ok=True)
    data = bm.load_dataset("sleepstudy")
    print(f"bayesmlm {bm.__version__}: sleepstudy ({len(data)} rows), {DEMO_FORMULA}\n")
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        fit = bm.Model(DEMO_FORMULA, data).fit_reml()
        null = bm.Model("Reaction ~ 1 + (1 | Subject)", data).fit_reml()
    summary = str(fit.summary())
    print(summary)
    icc_null = float(null.icc()["Subject"])
    icc_max = float(fit.icc()["Subject"])
    icc_text = (
        f"ICC (Reaction ~ 1 + (1 | Subject)): {icc_null:.4f}\n"
        f"ICC of the model above at Days = 0: {icc_max:.4f}"
    )
    print("\n" + icc_text)
    fig = plot_shrinkage(fit)
    figure = out / "shrinkage.png"
    fig.savefig(figure, dpi=110, bbox_inches="tight")
    report = out / "report.md"
    report.write_text(
        f"# bayesmlm demo: sleepstudy\n\n```\n{summary}\n```\n\n{icc_text}\n\n![shrinkage](shrinkage.png)\n"
    )
    print(f"\nWrote {report} and {figure}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the ``bayesmlm`` command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (``sys.argv[1:]`` by default).

    Returns
    -------
    int
        Exit code: 0 on success, 2 for a usage error.
    """
    parser = argparse.ArgumentParser(prog="bayesmlm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="fit the sleepstudy model and write a report")
    demo.add_argument("--out", type=Path, default=Path("bayesmlm-demo"), help="output folder")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _demo(args.out)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
