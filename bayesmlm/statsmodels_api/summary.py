"""The statsmodels entry point, printing: the summary table in statsmodels' layout."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from bayesmlm.exceptions import ArgumentError

__all__ = ["MixedLMSummary", "results_summary"]


def _pad(text: str, width: int, align: str) -> str:
    return text.ljust(width) if align == "l" else text.rjust(width) if align == "r" else text.center(width)


def _table_lines(
    rows: list[list[str]], headers: list[str] | None, stubs: list[str] | None, align: str, colsep: str
) -> list[str]:
    """Draw a text table as statsmodels' SimpleTable does: rule, header, rule, rows."""
    body = [list(r) for r in rows]
    kinds = ["data"] * len(body)
    if headers is not None:
        body.insert(0, list(headers))
        kinds.insert(0, "header")
    if stubs is not None:
        stub = iter(stubs)
        for row, kind in zip(body, kinds, strict=True):
            row.insert(0, "" if kind == "header" else next(stub))
    widths = [max(len(row[j]) for row in body) for j in range(len(body[0]))]
    lines = []
    for row, kind in zip(body, kinds, strict=True):
        cells = []
        for j, (cell, width) in enumerate(zip(row, widths, strict=True)):
            cell_align = "c" if kind == "header" else "l" if stubs is not None and j == 0 else align
            cells.append(_pad(cell, width, cell_align))
        lines.append(colsep.join(cells))
        if kind == "header":
            lines.append("-" * len(lines[-1]))
    return ["-" * len(lines[-1]), *lines]


class MixedLMSummary:
    """The printable summary of a :class:`MixedLMResults`, laid out as statsmodels' ``summary2``.

    Attributes
    ----------
    tables : list of DataFrame
        The model information (four columns: label, value, label, value) and the parameter table
        (formatted strings).
    title : str
    extra_txt : list of str
        Notes printed under the tables (:meth:`add_text`), as in statsmodels' ``summary2.Summary``.

    Notes
    -----
    statsmodels' ``summary_col`` takes results, not summaries: ``summary_col([res1, res2])`` works on
    :class:`MixedLMResults` (it reads ``params``, ``bse``, ``tvalues``, ``pvalues``, ``conf_int``,
    ``model.data.param_names`` and ``model.endog_names``).
    """

    def __init__(self, info: dict[str, Any], params: pd.DataFrame, title: str):
        def fmt(value: Any) -> str:
            return (f"{value:.4f}" if isinstance(value, float) else str(value)).strip()

        pairs = [[fmt(k), fmt(v)] for k, v in info.items()]
        if len(pairs) % 2:
            pairs.append(["", ""])
        half = len(pairs) // 2
        grid = [a + b for a, b in zip(pairs[:half], pairs[half:], strict=True)]
        self.tables = [pd.DataFrame(grid), params]
        self.title = title
        self.extra_txt: list[str] = []

    def add_text(self, string: str) -> None:
        """Append a note under the tables (statsmodels' ``Summary.add_text``)."""
        self.extra_txt.append(str(string))

    def add_title(self, title: str | None = None, results: Any = None) -> None:
        """Replace the title (statsmodels' ``Summary.add_title``; ``results`` is accepted and unused)."""
        if title is not None:
            self.title = str(title)

    def as_html(self) -> str:
        """Return the tables as HTML (statsmodels' ``Summary.as_html``)."""
        info, params = self.tables
        parts = [info.to_html(header=False, index=False), params.to_html()]
        text = "<br/>\n".join(t.replace("\n", "<br/>\n") for t in self.extra_txt)
        return "\n".join(parts) + "<br/>\n" + text

    def as_latex(self, label: str = "") -> str:
        """Return the tables as a LaTeX ``table`` (statsmodels' ``Summary.as_latex``)."""

        def tex(text: Any) -> str:
            out = str(text)
            for a, b in (("\\", "\\textbackslash{}"), ("_", "\\_"), ("%", "\\%"), ("&", "\\&"), ("#", "\\#")):
                out = out.replace(a, b)
            return out

        info, params = self.tables
        lines = [
            "\\begin{table}",
            f"\\caption{{{tex(self.title)}}}",
            f"\\label{{{label}}}",
            "\\begin{center}",
        ]
        lines += ["\\begin{tabular}{" + "l" * info.shape[1] + "}", "\\hline"]
        lines += [" & ".join(tex(c) for c in row) + " \\\\" for row in info.to_numpy()]
        lines += ["\\hline", "\\end{tabular}", "\\begin{tabular}{l" + "r" * params.shape[1] + "}", "\\hline"]
        lines.append(" & " + " & ".join(tex(c) for c in params.columns) + " \\\\")
        lines.append("\\hline")
        rows = zip(params.index, params.to_numpy(), strict=True)
        lines += [" & ".join(tex(c) for c in [k, *row]) + " \\\\" for k, row in rows]
        lines += ["\\hline", "\\end{tabular}", "\\end{center}", "\\end{table}"]
        lines += [tex(t) for t in self.extra_txt]
        return "\n".join(lines)

    def _layout(self, pads: list[int] | None = None, index_pads: list[int] | None = None) -> list[list[str]]:
        info, params = self.tables
        pads = pads or [0, 0]
        index_pads = index_pads or [0, 0]
        first = [list(map(str, row)) for row in info.to_numpy()]
        for row in first:
            row[0] += " " * index_pads[0]
        stubs = [str(s) + " " * index_pads[1] for s in params.index]
        rows = [list(map(str, row)) for row in params.to_numpy()]
        return [
            _table_lines(first, None, None, "l", " " * (pads[0] + 1)),
            _table_lines(rows, list(params.columns), stubs, "r", " " * (pads[1] + 1)),
        ]

    def as_text(self) -> str:
        """Return the summary as text (what ``print`` shows)."""
        lengths = [len(lines[0]) for lines in self._layout()]
        widest = max(lengths)
        pads, index_pads = [], []
        for table, length in zip(self.tables, lengths, strict=True):
            nsep = max(table.shape[1] - 1, 1)
            pad = (widest - length) // nsep
            pads.append(pad)
            index_pads.append(widest - length - nsep * pad)
        lines = [line for table in self._layout(pads, index_pads) for line in table]
        lines[0] = "=" * widest
        lines.append("=" * widest)
        title = self.title
        if len(title) < widest:
            title = " " * int(widest / 2 - len(title) / 2) + title
        return "\n".join([title, *lines, *self.extra_txt, ""])

    def __str__(self) -> str:
        return self.as_text()

    def __repr__(self) -> str:
        return self.as_text()

    def _repr_html_(self) -> str:
        text = self.as_text().replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return f"<pre>{text}</pre>"


def results_summary(
    results: Any,
    yname: str | None,
    xname_fe: list[str] | None,
    xname_re: list[str] | None,
    title: str | None,
    alpha: float,
) -> MixedLMSummary:
    """Return the :class:`MixedLMSummary` of a ``MixedLMResults`` (its ``summary()``'s arguments)."""
    names = list(results._params.index)
    k_fe = len(results._fe_params)
    if xname_fe is not None:
        if len(xname_fe) != k_fe:
            raise ArgumentError(f"xname_fe should be a list of length {k_fe}")
        names[:k_fe] = list(xname_fe)
    if xname_re is not None:
        if len(xname_re) != len(names) - k_fe:
            raise ArgumentError(f"xname_re should be a list of length {len(names) - k_fe}")
        names[k_fe:] = list(xname_re)
    sizes = pd.Series(results.model._group_labels).value_counts()
    info = {
        "Model:": "MixedLM",
        "No. Observations:": str(results.nobs),
        "No. Groups:": str(results.ngroups),
        "Min. group size:": f"{sizes.min():.0f}",
        "Max. group size:": f"{sizes.max():.0f}",
        "Mean group size:": f"{sizes.mean():.1f}",
        "Dependent Variable:": yname if yname is not None else results.model.endog_names,
        "Method:": results.method,
        "Scale:": results.scale,
        "Log-Likelihood:": results.llf,
        "Converged:": "Yes" if results.converged else "No",
    }
    q = sps.norm.ppf(1 - alpha / 2)
    table = np.full((len(names), 6), np.nan)
    fe, se = results._fe_params.to_numpy(), results._bse_fe.to_numpy()
    z = fe / se
    table[:k_fe] = np.column_stack([fe, se, z, 2 * sps.norm.sf(np.abs(z)), fe - q * se, fe + q * se])
    cov = results._cov_re_values
    table[k_fe:, 0] = np.concatenate([cov[np.tril_indices(results.k_re)], results.vcomp])
    table[k_fe:, 1] = np.sqrt(results.scale) * results._bse.to_numpy()[k_fe:]  # statsmodels' column
    columns = ["Coef.", "Std.Err.", "z", "P>|z|", f"[{alpha / 2}", f"{1 - alpha / 2}]"]
    params = pd.DataFrame(
        [[f"{v:.3f}" if np.isfinite(v) else "" for v in row] for row in table],
        index=names,
        columns=columns,
    )
    return MixedLMSummary(info, params, title or "Mixed Linear Model Regression Results")
