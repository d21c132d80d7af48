"""Stage 5, results: interval summaries of draws: the one HDI, and per-column tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from bayesmlm.exceptions import ArgumentError

__all__ = ["Table", "format_number", "hdi", "interval_table"]


def hdi(draws: np.ndarray, prob: float = 0.95, axis: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Highest-density interval: the narrowest interval of sorted draws holding ``prob`` of them.

    The same rule as ArviZ's ``hdi`` (method ``"nearest"``): with ``n`` draws the interval spans
    ``floor(prob * n)`` steps between sorted draws, and the narrowest such span is taken. Vectorised over
    every axis but ``axis``.

    Parameters
    ----------
    draws : array_like
        Draws along ``axis``.
    prob : float
        Probability mass in the interval, in (0, 1].
    axis : int
        The draws' axis.

    Returns
    -------
    low, high : ndarray
        The bounds, of the shape of ``draws`` without ``axis``.

    Examples
    --------
    >>> low, high = hdi(np.arange(100.0), prob=0.9)
    >>> float(low), float(high)
    (0.0, 90.0)
    """
    if not 0 < prob <= 1:
        raise ArgumentError(f"prob must lie in (0, 1], not {prob}")
    s = np.sort(np.moveaxis(np.asarray(draws, dtype=float), axis, 0), axis=0)
    n = s.shape[0]
    if n == 0:
        raise ArgumentError("hdi needs at least one draw")
    k = min(int(np.floor(prob * n)), n - 1)
    widths = s[k:] - s[: n - k]
    start = np.argmin(widths, axis=0)[None]
    low = np.take_along_axis(s, start, axis=0)[0]
    high = np.take_along_axis(s, start + k, axis=0)[0]
    return low, high


def interval_table(draws: np.ndarray, index, prob: float, prefix: str = "") -> pd.DataFrame:
    """Mean, sd and HDI of each column of ``draws`` (samples, k), as a table indexed by ``index``.

    Examples
    --------
    >>> t = interval_table(np.arange(10.0)[:, None] * [1, 2], ["a", "b"], prob=0.8)
    >>> t.round(2).to_dict("list")["hdi_high"]
    [8.0, 16.0]
    """
    draws = np.asarray(draws, dtype=float)
    low, high = hdi(draws, prob)
    return pd.DataFrame(
        {
            f"{prefix}mean": draws.mean(axis=0),
            f"{prefix}sd": draws.std(axis=0, ddof=1),
            f"{prefix}hdi_low": low,
            f"{prefix}hdi_high": high,
        },
        index=index,
    )


def format_number(x) -> str:
    """Format a number for a printed table: four significant digits, thousands whole with commas.

    Examples
    --------
    >>> [format_number(v) for v in (251.40510, 1.00123, 3118.2, 0.000123456, float("nan"))]
    ['251.4', '1.001', '3,118', '0.0001235', '']
    """
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return ""
    if isinstance(x, int | np.integer):
        return f"{int(x):,}"
    x = float(x)
    if abs(x) >= 1000 and abs(x) < 1e9:
        return f"{x:,.0f}"
    return f"{x:.4g}"


class Table(pd.DataFrame):
    """A DataFrame that prints rounded (four significant digits) and whole, never truncated.

    The numbers themselves are not rounded: only their display is, in a notebook (HTML) and in a
    terminal (``print``), where pandas' defaults would show every digit and cut columns at 80 or 120
    characters.
    """

    @property
    def _constructor(self):
        return Table

    def __str__(self) -> str:
        return self.to_string(float_format=format_number, line_width=None)

    __repr__ = __str__

    def _repr_html_(self) -> str:
        return self.to_html(float_format=format_number)
