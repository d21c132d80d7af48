"""Command line: ``bayesmlm demo`` and ``bayesmlm fit DATA.csv FORMULA`` fit a model and write a report.

Exit codes (for scripts): 0 success; 2 usage error (bad arguments); 3 the data file cannot be read;
4 the formula or the data are not usable (the message says why); 130 interrupted (Ctrl-C); 1 anything
else (a bug: please report it with the traceback printed).
"""

from __future__ import annotations

import argparse
import sys
import traceback
import warnings
from pathlib import Path

__all__ = ["EXIT_BAD_INPUT", "EXIT_NO_FILE", "main"]

DEMO_FORMULA = "Reaction ~ Days + (Days | Subject)"
EXIT_NO_FILE = 3
EXIT_BAD_INPUT = 4
EXIT_INTERRUPTED = 130  # the shell's convention for SIGINT


class _InputFileError(Exception):
    """The data file is missing or unreadable."""


def _read_data(path: Path):
    import pandas as pd

    if not path.exists():
        raise _InputFileError(f"no such file: {path}")
    try:
        if path.suffix.lower() in (".tsv", ".tab"):
            return pd.read_csv(path, sep="\t")
        return pd.read_csv(path)
    except Exception as err:  # pandas raises many kinds for a file that is not a table
        raise _InputFileError(f"cannot read {path} as CSV: {err}") from err


def _report(data, formula: str, out: Path, title: str, reml_only: bool, sampling: dict) -> int:
    """Fit ``formula`` to ``data`` (REML, and Bayes unless ``reml_only``), print and write the report."""
    import matplotlib

    matplotlib.use("Agg")
    import bayesmlm as bm
    from bayesmlm.plots import plot_ppc, plot_shrinkage

    model = bm.Model(formula, data)  # raises FormulaError/DataError before anything is written
    out.mkdir(parents=True, exist_ok=True)
    print(f"bayesmlm {bm.__version__}: {title} ({model.design.n} rows), {formula}\n")
    sections = []
    print("Fitting by REML ...", flush=True)
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        reml = model.fit_reml()
    reml_text = str(reml.summary())
    print(reml_text)
    sections.append(f"## REML fit\n\n```\n{reml_text}\n```")
    figures = {}
    if reml_only:
        icc_text = repr(reml.icc(seed=sampling.get("seed")))
        figures["shrinkage"] = plot_shrinkage(reml)
    else:
        from bayesmlm.bayes.sample import choose_method, direct_choice

        collapsed = choose_method(model.structure, "auto")[0]
        direct = direct_choice(collapsed, "auto", {}, model.structure, model.prior_set)[0]
        how = "nutpie, nothing to compile" if direct else "compiling first"
        print(
            f"Sampling {sampling['chains']} chains x {sampling['draws']} draws with NUTS ({how}) ...",
            flush=True,
        )
        fit = model.fit(progressbar=False, **sampling)
        summary = fit.summary().round(3).to_string()
        print(
            f"\nBayesian fit ({fit.info['method']}, {fit.info['chains']} chains x {fit.info['draws']} draws):"
        )
        print(summary)
        sections.append(
            f"## Bayesian fit\n\n{fit.info['chains']} chains x {fit.info['draws']} draws "
            f"({fit.info['method']} path: {fit.info['method_reason']}).\n\n```\n{summary}\n```"
        )
        compare = bm.compare_estimates(fit, reml, n_boot=0).round(3).to_string()
        sections.append(f"## Bayes beside REML\n\n```\n{compare}\n```")
        icc_text = repr(fit.icc())
        figures["shrinkage"] = plot_shrinkage(fit)
        figures["ppc"] = plot_ppc(fit, seed=sampling.get("seed"))
    print("\n" + icc_text)
    sections.append(f"## ICC\n\n```\n{icc_text}\n```")
    for name, fig in figures.items():
        fig.savefig(out / f"{name}.png", dpi=110, bbox_inches="tight")
        sections.append(f"![{name}]({name}.png)")
    report = out / "report.md"
    report.write_text(f"# bayesmlm: {title}\n\n`{formula}`\n\n" + "\n\n".join(sections) + "\n")
    written = ", ".join(str(out / f"{name}.png") for name in figures)
    print(f"\nWrote {report} and {written}")
    return 0


def _sampling_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, help="output folder for report.md and the figures")
    parser.add_argument("--reml", action="store_true", help="REML fit only (no sampling)")
    parser.add_argument("--draws", type=int, default=1000, help="posterior draws per chain (default 1000)")
    parser.add_argument("--tune", type=int, default=None, help="tuning steps per chain (default: = draws)")
    parser.add_argument("--chains", type=int, default=4, help="chains (default 4)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")


def _compile_note() -> str:
    """Say whether the Bayesian fit will compile (a sentence for the first line the user sees)."""
    import importlib.util

    later = "the first Bayesian fit on a machine compiles the sampler (one to two minutes, once per model "
    later += "structure); later runs reuse the compiled code."
    if importlib.util.find_spec("nutpie") is None:
        return "Without nutpie, " + later
    return "A model with one grouping factor is sampled with nothing to compile; for any other model " + later


def main(argv: list[str] | None = None) -> int:
    """Run the ``bayesmlm`` command line.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (``sys.argv[1:]`` by default).

    Returns
    -------
    int
        Exit code: 0 success, 2 usage error, 3 unreadable data file, 4 bad formula or data,
        130 interrupted, 1 other.
    """
    parser = argparse.ArgumentParser(
        prog="bayesmlm",
        description="Fit Bayesian and REML multilevel models and write a report.",
        epilog="Exit codes: 0 success, 2 usage error, 3 data file missing or unreadable, "
        "4 formula or data not usable, 130 interrupted (Ctrl-C), 1 other error.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help=f"fit sleepstudy {DEMO_FORMULA} and write a report")
    _sampling_args(demo)
    fit = sub.add_parser("fit", help="fit a model to a CSV file and write a report")
    fit.add_argument("data", type=Path, help="CSV file (TSV if it ends in .tsv)")
    fit.add_argument("formula", help='lme4 formula, e.g. "y ~ x + (x | g)"')
    _sampling_args(fit)
    args = parser.parse_args(argv)
    sampling = {
        "draws": args.draws,
        "tune": args.tune or args.draws,
        "chains": args.chains,
        "seed": args.seed,
    }
    what = "REML" if args.reml else f"REML, then NUTS ({args.chains} chains x {args.draws} draws)"
    target = DEMO_FORMULA if args.command == "demo" else args.formula
    print(f"bayesmlm: fitting {target} by {what}. {_compile_note()}", flush=True)
    import bayesmlm as bm

    try:
        if args.command == "demo":
            data, formula, title = bm.load_dataset("sleepstudy"), DEMO_FORMULA, "sleepstudy"
            out = args.out or Path("bayesmlm-demo")
        else:
            data, formula, title = _read_data(args.data), args.formula, args.data.name
            out = args.out or Path(f"bayesmlm-{args.data.stem}")
        return _report(data, formula, out, title, args.reml, sampling)
    except _InputFileError as err:
        print(f"bayesmlm: error: {err}", file=sys.stderr)
        return EXIT_NO_FILE
    except (bm.BayesMLMError, ValueError) as err:
        print(f"bayesmlm: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as err:
        print(f"bayesmlm: interrupted{': ' + str(err) if str(err) else ''}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:  # a bug: show the traceback so it can be reported
        traceback.print_exc()
        return 1


if __name__ == "__main__":
    sys.exit(main())
