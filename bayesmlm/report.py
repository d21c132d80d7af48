"""Results: the paper-ready table of one or more fits, as Markdown, LaTeX or HTML.

Above both fitting stages (like :mod:`bayesmlm.reml_vs_bayes`): for a REML/ML fit the estimates with
the chosen confidence intervals (profile, Wald or bootstrap: :meth:`LikelihoodFit.confint
<bayesmlm.LikelihoodFit.confint>`) and, for the fixed effects, the small-sample df and p value
(:meth:`~bayesmlm.LikelihoodFit.coef_table`); for a Bayesian fit the posterior median, HDI, R-hat and
bulk ESS. Several fits of the same model sit side by side, Bayes beside REML; parameters are named by
the one naming rule, so the rows line up. The caption says how every number was made.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from bayesmlm.arguments import checked
from bayesmlm.bayes.fit import Fit
from bayesmlm.exceptions import ArgumentError
from bayesmlm.reml.fit import LikelihoodFit

__all__ = ["Report", "report"]

Format = Literal["markdown", "latex", "html"]
FORMATS = ("markdown", "latex", "html")


def _number(x: float, digits: int) -> str:
    if x is None or not np.isfinite(x):
        return "" if x is None or np.isnan(x) else ("∞" if x > 0 else "−∞")
    return (
        f"{x:.{digits}g}"
        if abs(x) >= 10 ** (digits + 2) or (x != 0 and abs(x) < 10**-digits)
        else f"{x:.{digits}f}"
    )


def _p_value(p: float, digits: int) -> str:
    if not np.isfinite(p):
        return ""
    return f"< {10**-digits:.{digits}f}" if p < 10**-digits else f"{p:.{digits}f}"


def _likelihood_columns(fit: LikelihoodFit, ci: str, ddf: str, prob: float, digits: int, n_boot, seed):
    intervals = fit.confint(ci, level=prob, n_boot=n_boot, seed=seed)
    tests = fit.coef_table(ddf)
    label = fit.method
    cols = pd.DataFrame(index=intervals.index)
    cols["estimate"] = [_number(v, digits) for v in intervals["estimate"]]
    cols[f"{prob:.0%} CI"] = [
        f"[{_number(lo, digits)}, {_number(hi, digits)}]" if np.isfinite(lo) or np.isfinite(hi) else ""
        for lo, hi in zip(intervals["lower"], intervals["upper"], strict=True)
    ]
    cols["df"] = [_number(tests.loc[n, "df"], 1) if n in tests.index else "" for n in cols.index]
    cols["p"] = [_p_value(tests.loc[n, "p"], digits) if n in tests.index else "" for n in cols.index]
    ddf_text = {
        "satterthwaite": "Satterthwaite",
        "kenward-roger": "Kenward–Roger",
        "asymptotic": "z (asymptotic)",
    }
    how = intervals.attrs.get("method", ci)
    note = f"{label} estimates; {prob:.0%} CI: {how}; df and p: t tests with {ddf_text.get(ddf, ddf)} df"
    return cols, note


def _bayes_columns(fit: Fit, prob: float, digits: int):
    summary = fit.summary(prob)
    draws = fit.parameter_draws()
    cols = pd.DataFrame(index=summary.index)
    cols["posterior median"] = [_number(float(np.median(draws[n])), digits) for n in cols.index]
    cols[f"{prob:.0%} HDI"] = [
        f"[{_number(lo, digits)}, {_number(hi, digits)}]"
        for lo, hi in zip(summary["hdi_low"], summary["hdi_high"], strict=True)
    ]
    cols["R-hat"] = [f"{v:.3f}" for v in summary["rhat"]]
    cols["bulk ESS"] = [f"{v:.0f}" for v in summary["ess_bulk"]]
    info = fit.info
    note = (
        f"posterior median, {prob:.0%} HDI, R-hat and bulk ESS from {info.get('chains')} chains × "
        f"{info.get('draws')} draws ({info.get('sampler', 'NUTS')})"
    )
    return cols, note


def _order(index: Sequence[str], fixed: Sequence[str]) -> list[str]:
    """Order the rows: fixed effects first, then the group-level sds and correlations, then sigma."""
    rest = [n for n in index if n not in fixed and n != "sigma"]
    return [n for n in fixed if n in index] + rest + (["sigma"] if "sigma" in index else [])


@dataclass(frozen=True)
class Report:
    """A results table: the formatted cells, the caption, and the text in one format.

    Attributes
    ----------
    table : DataFrame
        Formatted cells (strings), one row per parameter.
    caption : str
        How each number was made.
    format : str
    text : str
        The table in ``format``; ``str(report)`` gives it.
    """

    table: pd.DataFrame
    caption: str
    format: str
    text: str

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text

    def _repr_markdown_(self) -> str:
        return _markdown(self.table, self.caption) if self.format != "html" else self.text

    def _repr_html_(self) -> str:
        return _html(self.table, self.caption)


def _markdown(table: pd.DataFrame, caption: str) -> str:
    header = ["parameter", *table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * len(table.columns)) + "|"]
    for name, row in table.iterrows():
        cells = [f"`{name}`", *row.tolist()]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + f"\n\n{caption}\n"


def _latex_escape(text: str) -> str:
    out = str(text)
    for a, b in (
        ("\\", r"\textbackslash{}"),
        ("&", r"\&"),
        ("%", r"\%"),
        ("_", r"\_"),
        ("#", r"\#"),
        ("|", r"$|$"),
        ("−", "-"),
        ("∞", r"$\infty$"),
        ("×", r"$\times$"),
        ("–", "--"),
    ):
        out = out.replace(a, b)
    return out.replace("< ", "$<$ ")


def _latex(table: pd.DataFrame, caption: str) -> str:
    cols = "l" + "r" * len(table.columns)
    lines = [
        r"\begin{table}",
        r"\centering",
        rf"\begin{{tabular}}{{{cols}}}",
        r"\toprule",
        " & ".join(["Parameter", *map(_latex_escape, table.columns)]) + r" \\",
        r"\midrule",
    ]
    for name, row in table.iterrows():
        lines.append(" & ".join([_latex_escape(name), *map(_latex_escape, row.tolist())]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", rf"\caption{{{_latex_escape(caption)}}}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def _html(table: pd.DataFrame, caption: str) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in ["parameter", *table.columns])
    body = "".join(
        "<tr>"
        + f"<td><code>{html.escape(name)}</code></td>"
        + "".join(f"<td>{html.escape(v)}</td>" for v in row)
        + "</tr>"
        for name, row in table.iterrows()
    )
    return (
        f"<table>\n<caption>{html.escape(caption)}</caption>\n<thead><tr>{head}</tr></thead>\n"
        f"<tbody>{body}</tbody>\n</table>\n"
    )


@checked
def report(
    fits,
    format: Format = "markdown",
    ci: Literal["profile", "wald", "boot"] = "profile",
    ddf: str = "satterthwaite",
    prob: float = 0.95,
    digits: int = 3,
    n_boot: int = 200,
    seed: int | None = None,
) -> Report:
    """Make a paper-ready table of one fit, or of several fits of the same model side by side.

    Parameters
    ----------
    fits : Fit, LikelihoodFit, sequence or dict of them
        A dict labels the fits (``{"REML": reml, "Bayes": fit}``); otherwise they are labelled by kind.
    format : {"markdown", "latex", "html"}
    ci : {"profile", "wald", "boot"}
        The REML/ML intervals (:meth:`LikelihoodFit.confint <bayesmlm.LikelihoodFit.confint>`).
    ddf : {"satterthwaite", "kenward-roger", "asymptotic"}
        The df of the REML/ML fixed-effect tests.
    prob : float
        Confidence level and HDI probability.
    digits : int
        Decimals.
    n_boot, seed
        For ``ci="boot"`` (the fit's cached bootstrap).

    Returns
    -------
    Report
        ``str(report)`` is the table; in a notebook it renders.

    Examples
    --------
    >>> import bayesmlm as bm
    >>> fit = bm.Model("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy")).fit_reml()
    >>> print(bm.report(fit, ci="wald").text.splitlines()[2])
    | `Intercept` | 251.405 | [238.029, 264.781] | 17.0 | < 0.001 |
    """
    if format not in FORMATS:
        raise ArgumentError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    if isinstance(fits, Fit | LikelihoodFit):
        fits = [fits]
    items = list(fits.items()) if isinstance(fits, Mapping) else [(None, f) for f in fits]
    if not items:
        raise ArgumentError("report needs at least one fit")
    parts, notes, formula = [], [], None
    for label, fit in items:
        if not isinstance(fit, Fit | LikelihoodFit):
            raise TypeError(f"report takes Bayesian Fits and LikelihoodFits, not {type(fit).__name__}")
        if formula is not None and fit.design.spec.formula != formula:
            raise ArgumentError(
                f"the fits are of different models ('{formula}' and '{fit.design.spec.formula}'); "
                "report one model's fits together, or make one report per model"
            )
        formula = fit.design.spec.formula
        if isinstance(fit, LikelihoodFit):
            cols, note = _likelihood_columns(fit, ci, ddf, prob, digits, n_boot, seed)
        else:
            cols, note = _bayes_columns(fit, prob, digits)
        if label is not None or len(items) > 1:
            name = label or ("Bayes" if isinstance(fit, Fit) else fit.method)
            cols.columns = [f"{name}: {c}" for c in cols.columns]
            note = f"{name}: {note}"
        parts.append(cols)
        notes.append(note)
    table = pd.concat(parts, axis=1).fillna("")
    first = items[0][1]
    table = table.loc[_order(list(table.index), list(first.design.fixed_names))]
    groups = ", ".join(f"{f.n_levels} levels of {f.group}" for f in first.structure.factors)
    caption = f"{formula}; {first.design.n} observations, {groups}. " + ". ".join(notes) + "."
    render = {"markdown": _markdown, "latex": _latex, "html": _html}[format]
    return Report(table, caption, format, render(table, caption))
