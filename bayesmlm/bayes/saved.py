"""Stage 4b, Bayes: writing a fit to disk: ArviZ netCDF with the data and settings, no pickle.

The file holds the fit's ``DataTree``, a ``bayesmlm_data`` group with the rows the model used, and three
attributes: the format tag :data:`FORMAT`, the model's settings (``Model.to_dict``, JSON) and the fit's
info (JSON). :func:`bayesmlm.persistence.load_fit` reads it back, validating every part.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

__all__ = ["FORMAT", "save_fit"]

#: the format tag written into every saved fit
FORMAT = "bayesmlm-fit-1"


def save_fit(idata, settings: dict, data: pd.DataFrame, info: dict, path: str | Path) -> Path:
    """Write a fit's ``idata``, its model's ``settings`` and ``data`` (the rows used) and its ``info``.

    See :meth:`bayesmlm.Fit.save`; nothing is pickled.
    """
    import xarray as xr

    path = Path(path)
    tree = idata.copy()
    data = data.reset_index(drop=False)
    for col in data.columns:
        if isinstance(data[col].dtype, pd.CategoricalDtype) or data[col].dtype == object:
            data[col] = data[col].astype(str)
        elif pd.api.types.is_string_dtype(data[col].dtype):
            data[col] = data[col].astype(str)
    tree["bayesmlm_data"] = xr.DataTree(xr.Dataset.from_dataframe(data.set_index(data.columns[0])))
    tree.attrs["bayesmlm_format"] = FORMAT
    tree.attrs["bayesmlm_model"] = json.dumps(settings)
    tree.attrs["bayesmlm_info"] = json.dumps(info, default=str)
    tree.to_netcdf(path, engine="h5netcdf")
    return path
