"""Data: a bundled dataset's registry entry, its columns and its plain-text description."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Literal

__all__ = ["DTYPES", "Column", "ColumnKind", "Dataset"]

ColumnKind = Literal["group", "float", "int"]

DTYPES: dict[ColumnKind, str] = {"group": "categorical", "float": "float64", "int": "int64"}


@dataclass(frozen=True)
class Column:
    """One column of a bundled dataset: name, kind and meaning."""

    name: str
    kind: ColumnKind
    doc: str


@dataclass(frozen=True)
class Dataset:
    """Registry entry of a bundled dataset."""

    name: str
    filename: str
    title: str
    n_rows: int
    summary: str
    columns: tuple[Column, ...]
    source: str

    @property
    def description(self) -> str:
        """Plain-text documentation: title, summary, one line per column, source."""
        heading = f"{self.name}: {self.title}"
        width = max(len(c.name) for c in self.columns)
        lines = [heading, "-" * len(heading), textwrap.fill(self.summary, width=88), ""]
        lines.append(f"{self.n_rows} rows, {len(self.columns)} columns:")
        for col in self.columns:
            lines.append(f"  {col.name:<{width}}  {DTYPES[col.kind]:<11}  {col.doc}")
        lines += ["", textwrap.fill(f"Source: {self.source}", width=88, subsequent_indent="  ")]
        return "\n".join(lines)
