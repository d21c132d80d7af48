"""Stage 4b, Bayes: the per-parameter sampling diagnostics (R-hat, bulk and tail ESS, MCSE) as a table.

:func:`diagnostics_table` gives the numbers as a :class:`pandas.DataFrame`; the checks that turn them
into warnings with advice are in :mod:`bayesmlm.bayes.checks`.

The input is what ``pymc.sample`` returns in PyMC 6: an :class:`xarray.DataTree` with a
``posterior`` group and, usually, a ``sample_stats`` group. Both PyMC's own NUTS sampler
(``diverging``, ``tree_depth``, ``reached_max_treedepth``) and nutpie (``diverging``, ``depth``,
``maxdepth_reached``) are understood. R-hat, ESS and MCSE come from ArviZ 1.x (:func:`arviz.rhat`,
:func:`arviz.ess`, :func:`arviz.mcse`).

Parameters whose draws are constant (for example the diagonal of a correlation matrix, always 1)
have no defined R-hat or ESS; they are reported as NaN in the table and never produce a warning.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from bayesmlm.exceptions import ArgumentError

__all__ = [
    "MAX_LISTED",
    "SAMPLE_DIMS",
    "compute_table",
    "diagnostics_table",
    "first_present",
    "posterior_of",
    "sample_group",
]

SAMPLE_DIMS = ("chain", "draw")
TABLE_COLUMNS = ["rhat", "ess_bulk", "ess_tail", "mcse_mean"]
MAX_LISTED = 5

# Draws whose range is below this fraction of their largest magnitude count as constant: this catches
# exact copies and values such as a correlation matrix's diagonal, which round-off makes 1 +- 1e-16.
_CONSTANT_RTOL = 1e-10


# ---------------------------------------------------------------------------------------------------------
# Access to the groups of a DataTree
# ---------------------------------------------------------------------------------------------------------


def sample_group(idata: xr.DataTree | xr.Dataset, name: str) -> xr.Dataset | None:
    """Return group ``name`` as a Dataset, or None if it is absent.

    A bare Dataset is taken to be the posterior (it has no sample stats).
    """
    if isinstance(idata, xr.Dataset):
        return idata if name == "posterior" else None
    if isinstance(idata, xr.DataTree):
        if name in idata.children:
            return idata[name].to_dataset()
        return None
    raise TypeError(
        f"Expected the xarray.DataTree returned by pymc.sample (or a posterior xarray.Dataset), "
        f"got {type(idata).__name__}."
    )


def posterior_of(idata: xr.DataTree | xr.Dataset) -> xr.Dataset:
    """Return the posterior group (a Dataset passed in is taken to be the posterior itself)."""
    posterior = sample_group(idata, "posterior")
    if posterior is None:
        raise ArgumentError("The sampling result has no 'posterior' group; pass the result of pymc.sample.")
    missing = [d for d in SAMPLE_DIMS if d not in posterior.dims]
    if missing:
        raise ArgumentError(
            f"The posterior has no {' or '.join(repr(d) for d in missing)} dimension; "
            f"sampling diagnostics need draws arranged by chain and draw."
        )
    return posterior


def first_present(ds: xr.Dataset | None, names: Sequence[str]) -> xr.DataArray | None:
    """Return the first of ``names`` that ``ds`` holds (sample-stats names differ between samplers)."""
    if ds is None:
        return None
    for name in names:
        if name in ds.data_vars:
            return ds[name]
    return None


def _select_variables(posterior: xr.Dataset, var_names: str | Sequence[str] | None) -> list[str]:
    """Names of the numeric posterior variables to diagnose, checked against the posterior."""
    if var_names is None:
        names = list(posterior.data_vars)
    else:
        names = [var_names] if isinstance(var_names, str) else list(var_names)
        unknown = [n for n in names if n not in posterior.data_vars]
        if unknown:
            raise ArgumentError(
                f"Not in the posterior: {', '.join(map(repr, unknown))}. "
                f"Available: {', '.join(map(repr, posterior.data_vars))}."
            )
    return [
        n
        for n in names
        if all(d in posterior[n].dims for d in SAMPLE_DIMS)
        and (np.issubdtype(posterior[n].dtype, np.number) or posterior[n].dtype == bool)
    ]


# ---------------------------------------------------------------------------------------------------------
# Per-parameter diagnostics
# ---------------------------------------------------------------------------------------------------------


def _labels(name: str, da: xr.DataArray, extra_dims: list[str]) -> list[str]:
    """``name[a, b]`` labels in C order over ``extra_dims``, using coordinate values where present."""
    if not extra_dims:
        return [name]
    axes = []
    for dim in extra_dims:
        if dim in da.coords:
            axes.append([str(v) for v in da.coords[dim].values])
        else:
            axes.append([str(i) for i in range(da.sizes[dim])])
    grids = np.meshgrid(*[np.asarray(a, dtype=object) for a in axes], indexing="ij")
    flat = [g.reshape(-1) for g in grids]
    return [f"{name}[{', '.join(parts)}]" for parts in zip(*flat, strict=True)]


def compute_table(idata: xr.DataTree | xr.Dataset, var_names: str | Sequence[str] | None) -> pd.DataFrame:
    """Diagnostics table with an extra boolean ``constant`` column."""
    posterior = posterior_of(idata)
    names = _select_variables(posterior, var_names)
    index_name = "parameter"
    if not names:
        return pd.DataFrame(
            {c: pd.Series(dtype=float) for c in TABLE_COLUMNS} | {"constant": pd.Series(dtype=bool)},
            index=pd.Index([], name=index_name, dtype=object),
        )
    ds = posterior[names].astype(float)
    # ArviZ computes R-hat/ESS of constant draws as 0/0; those parameters are blanked out below.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        stats = {
            "rhat": az.rhat(ds),
            "ess_bulk": az.ess(ds, method="bulk"),
            "ess_tail": az.ess(ds, method="tail"),
            "mcse_mean": az.mcse(ds, method="mean"),
        }
    labels: list[str] = []
    columns: dict[str, list[np.ndarray]] = {c: [] for c in [*TABLE_COLUMNS, "constant"]}
    for name in names:
        da = ds[name]
        extra = [d for d in da.dims if d not in SAMPLE_DIMS]
        draws = da.transpose(*SAMPLE_DIMS, *extra).values.reshape(da.sizes["chain"] * da.sizes["draw"], -1)
        if draws.shape[1] == 0:
            continue
        labels.extend(_labels(name, da, extra))
        finite = np.isfinite(draws).all(axis=0)
        with np.errstate(invalid="ignore"):
            spread = np.ptp(draws, axis=0)
            scale = np.max(np.abs(draws), axis=0)
        constant = finite & (spread <= _CONSTANT_RTOL * scale)
        for col, stat in stats.items():
            values = np.asarray(stat[name].transpose(*extra).values, dtype=float).reshape(-1)
            values = np.where(constant, 0.0 if col == "mcse_mean" else np.nan, values)
            columns[col].append(values)
        columns["constant"].append(constant)
    data = {c: np.concatenate(v) if v else np.array([]) for c, v in columns.items()}
    return pd.DataFrame(data, index=pd.Index(labels, name=index_name, dtype=object))


def diagnostics_table(
    idata: xr.DataTree | xr.Dataset, var_names: str | Sequence[str] | None = None
) -> pd.DataFrame:
    """Convergence diagnostics per scalar parameter: R-hat, bulk and tail ESS, MCSE of the mean.

    Parameters
    ----------
    idata : xarray.DataTree
        The result of ``pymc.sample`` (PyMC 6); only its ``posterior`` group is used. A posterior
        :class:`xarray.Dataset` with ``chain`` and ``draw`` dimensions is accepted too.
    var_names : str or sequence of str, optional
        Posterior variables to include (default: all numeric ones).

    Returns
    -------
    pandas.DataFrame
        One row per scalar parameter, array-valued variables flattened in C order with their
        coordinate labels (``sd_Subject[Days]``, ``corr[0, 1]``); columns ``rhat`` (rank-normalised
        split R-hat, :func:`arviz.rhat`), ``ess_bulk`` and ``ess_tail`` (:func:`arviz.ess`) and
        ``mcse_mean`` (:func:`arviz.mcse`). Parameters whose draws are constant have NaN R-hat and
        ESS (they are undefined) and zero MCSE.

    Raises
    ------
    ValueError
        If there is no posterior with ``chain`` and ``draw`` dimensions, or ``var_names`` names a
        variable that is not in it.

    See Also
    --------
    check_sampling : Sentences describing the problems these numbers reveal.

    Examples
    --------
    >>> import arviz as az
    >>> import numpy as np
    >>> from bayesmlm.bayes.diagnostics import diagnostics_table
    >>> rng = np.random.default_rng(0)
    >>> idata = az.from_dict(
    ...     {"posterior": {"mu": rng.normal(size=(4, 500)), "sd_Subject": rng.gamma(2.0, size=(4, 500, 2))}},
    ...     coords={"term": ["Intercept", "Days"]},
    ...     dims={"sd_Subject": ["term"]},
    ... )
    >>> table = diagnostics_table(idata)
    >>> list(table.index)
    ['mu', 'sd_Subject[Intercept]', 'sd_Subject[Days]']
    >>> list(table.columns)
    ['rhat', 'ess_bulk', 'ess_tail', 'mcse_mean']
    >>> bool((table["rhat"] < 1.01).all() and (table["ess_bulk"] > 1000).all())
    True
    """
    return compute_table(idata, var_names)[TABLE_COLUMNS]
