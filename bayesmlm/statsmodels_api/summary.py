"""The statsmodels entry point, printing: the summary table in statsmodels' layout."""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["MixedLMSummary"]


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
