"""Stage 4b, Bayes: writing a fit to disk: ArviZ netCDF with the data and settings, no pickle.

The file holds the fit's ``DataTree``, a ``bayesmlm_data`` group with the rows the model used (as plain
arrays, :mod:`bayesmlm.bayes.frames`), and four attributes: the format tag :data:`FORMAT`, the model's
settings (``Model.to_dict``, JSON), the fit's info (JSON) and the data's layout (JSON). It is written
atomically (a temporary file renamed over the target). :func:`bayesmlm.persistence.load_fit` reads it
back, validating every part.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pandas as pd

from bayesmlm.bayes.frames import encode_frame

__all__ = ["FORMAT", "save_fit"]

#: the format tag written into every saved fit
FORMAT = "bayesmlm-fit-2"


def save_fit(idata, settings: dict, data: pd.DataFrame, info: dict, path: str | Path) -> Path:
    """Write a fit's ``idata``, its model's ``settings`` and ``data`` (the rows used) and its ``info``.

    See :meth:`bayesmlm.Fit.save`; nothing is pickled. The file is written to a temporary file in the
    same folder and then renamed over ``path``: a save killed midway leaves the old file as it was.
    """
    import xarray as xr

    path = Path(path)
    tree = idata.copy()
    arrays, layout = encode_frame(data)
    tree["bayesmlm_data"] = xr.DataTree(xr.Dataset({k: (("row",), v) for k, v in arrays.items()}))
    tree.attrs["bayesmlm_format"] = FORMAT
    tree.attrs["bayesmlm_model"] = json.dumps(settings)
    tree.attrs["bayesmlm_info"] = json.dumps(info, default=str)
    tree.attrs["bayesmlm_data_layout"] = json.dumps(layout)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent or ".")
    os.close(handle)
    try:
        tree.to_netcdf(temporary, engine="h5netcdf")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
