"""Stage 2, the design: the stand-in for rows that a model built from a Dask DataFrame does not hold.

A model built from a Dask DataFrame or from Parquet/CSV files (:mod:`bayesmlm.design.summary`) has a
:class:`~bayesmlm.design.evaluate.Design` like any other, but its row arrays (``y``, ``X``, ``rows``,
``data``, each block's ``Z`` and ``codes``) stay where the data are. Each is a :class:`NoRows`: it knows
its shape, so ``design.n``, ``design.p`` and ``block.q`` work, and ``np.column_stack`` of several gives
a wider one (so :func:`~bayesmlm.design.covariance.random_structure` builds the structure as for any
design); anything that would read a value raises :class:`~bayesmlm.RowsNeededError`, which says what
was asked for, which features need rows, and what to do instead.
"""

from __future__ import annotations

from typing import NoReturn

import numpy as np

from bayesmlm.exceptions import RowsNeededError

__all__ = ["ROW_FEATURES", "NoRows", "rows_needed"]

#: what needs the rows (said in every RowsNeededError)
ROW_FEATURES = (
    "fitted values, residuals, the posterior predictive, the pointwise log-likelihood and LOO, the "
    "parametric bootstrap (and the ICC intervals made with it), the full (uncollapsed) PyMC model, saving "
    "a fit with its data, the likelihood-ratio test's same-data check and plots of the data"
)


def rows_needed(what: str, source: str) -> RowsNeededError:
    """Return the error for a feature that needs the rows of a model built from ``source``."""
    return RowsNeededError(
        f"{what} needs the data's rows, which this model does not hold: it was built from {source}, "
        "and only the statistics that REML/ML and the collapsed posterior need were computed where the "
        f"data are. Needing the rows: {ROW_FEATURES}. Prediction for new data (predict(newdata)) works. "
        "For the rest, fit a pandas sample, e.g. Model(formula, ddf.sample(frac=0.01).compute())"
    )


class NoRows:
    """The shape of a row array whose values are not held here (see the module docstring).

    Examples
    --------
    >>> y = NoRows((1000,), "the response values", "a Dask DataFrame")
    >>> y.shape, len(y)
    ((1000,), 1000)
    >>> np.asarray(y)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bayesmlm.exceptions.RowsNeededError: the response values needs the data's rows, ...
    """

    __slots__ = ("shape", "source", "what")

    def __init__(self, shape: tuple[int, ...], what: str, source: str):
        self.shape = tuple(int(k) for k in shape)
        self.what = what
        self.source = source

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def _refuse(self, *args, **kwargs) -> NoReturn:
        raise rows_needed(self.what, self.source)

    __array__ = __getitem__ = __iter__ = __array_ufunc__ = _refuse

    def __getattr__(self, name: str):
        if name.startswith("__"):  # copy, pickle and friends probe for these
            raise AttributeError(name)
        self._refuse()

    def __array_function__(self, func, types, args, kwargs):
        """Join side by side with ``np.column_stack``/``np.hstack``; refuse every other numpy function."""
        parts = args[0] if args else ()
        if func in (np.column_stack, np.hstack) and parts and all(isinstance(p, NoRows) for p in parts):
            widths = [p.shape[1] if p.ndim == 2 else 1 for p in parts]
            return NoRows((parts[0].shape[0], sum(widths)), parts[0].what, parts[0].source)
        self._refuse()

    def __repr__(self) -> str:
        return f"<rows not held here: {self.what}, shape {self.shape}, from {self.source}>"
