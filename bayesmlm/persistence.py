"""Loading a saved Bayesian fit: every part of the file validated before the model is rebuilt.

A saved fit (written by :func:`bayesmlm.bayes.saved.save_fit`) is an ArviZ ``DataTree`` written with
h5netcdf (no pickle) plus three attributes (the format tag, the model's settings and the fit's info,
both JSON) and a ``bayesmlm_data`` group with the rows the model used. Loading sits above the model
(it rebuilds a :class:`~bayesmlm.Model`), saving beside the fit. A file is data from whoever wrote
it, so :func:`load_fit` trusts nothing in it: the settings must be JSON of the expected keys and
types, the formula passes the same grammar check as a formula typed by the user
(:mod:`bayesmlm.spec.expression`) before anything evaluates it, and every posterior variable must
have the shape the rebuilt model implies. Anything else is a :class:`~bayesmlm.FitError`; a file can
never make the loader run code.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bayesmlm.arguments import checked
from bayesmlm.bayes.frames import decode_frame
from bayesmlm.bayes.saved import FORMAT
from bayesmlm.exceptions import BayesMLMError, FitError
from bayesmlm.families.registry import FAMILIES
from bayesmlm.spec.formula import parse_formula

if TYPE_CHECKING:
    from bayesmlm.bayes.fit import Fit
    from bayesmlm.model import Model

__all__ = ["load_fit", "validated_settings"]

#: keys of the saved model settings and the JSON types each must have
_SETTINGS: dict[str, tuple[type, ...]] = {
    "formula": (str,),
    "na_action": (str,),
    "priors": (dict,),
    "parameterization": (dict,),
    "extra_namespace": (list,),
}
#: keys added later (a file written before them has the default: a Gaussian model without weights)
_OPTIONAL: dict[str, tuple[type, ...]] = {"family": (str,), "link": (str,), "weights": (str, type(None))}


def _malformed(path: Path, what: str) -> FitError:
    return FitError(f"{path} is not a valid saved bayesmlm fit: {what}")


def _json_attr(tree, key: str, path: Path) -> dict:
    raw = tree.attrs.get(key)
    if not isinstance(raw, str):
        raise _malformed(path, f"its attribute {key!r} is missing or not text")
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as err:
        raise _malformed(path, f"its attribute {key!r} is not valid JSON ({err})") from None
    if not isinstance(value, dict):
        raise _malformed(path, f"its attribute {key!r} is not a JSON object")
    return value


def _strings(value: object) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _parameter(item: object) -> bool:
    """Whether a saved prior parameter is ``[name, number]``."""
    if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
        return False
    return isinstance(item[1], int | float) and not isinstance(item[1], bool)


def validated_settings(settings: dict, path: Path) -> dict:
    """Check a saved model's settings: keys, JSON types, and a formula within the grammar.

    Raises
    ------
    FitError
        Naming the first thing that is wrong. The formula is only parsed (and checked) here: nothing
        in it is evaluated.
    """
    for key, types in _SETTINGS.items():
        if key not in settings:
            raise _malformed(path, f"the model settings lack {key!r}")
        if not isinstance(settings[key], types):
            raise _malformed(path, f"the model setting {key!r} has the wrong type")
    for key, types in _OPTIONAL.items():
        if key in settings and not isinstance(settings[key], types):
            raise _malformed(path, f"the model setting {key!r} has the wrong type")
    if settings.get("family", "gaussian") not in FAMILIES:
        raise _malformed(path, f"its family {settings['family']!r} is not one of {', '.join(FAMILIES)}")
    unknown = sorted(set(settings) - set(_SETTINGS) - set(_OPTIONAL))
    if unknown:
        raise _malformed(path, f"the model settings have unknown keys {unknown}")
    if settings["na_action"] not in ("drop", "error"):
        raise _malformed(path, f"na_action {settings['na_action']!r} is not 'drop' or 'error'")
    names = settings["extra_namespace"]
    if not _strings(names) or not all(n.isidentifier() and not n.startswith("_") for n in names):
        raise _malformed(path, "the names of the user's functions are not plain names")
    allowed = ("centered", "noncentered", "mixed", "integrated")
    if not all(v in allowed for v in settings["parameterization"].values()):
        raise _malformed(path, f"a block's parameterisation is not one of {allowed}")
    for name, prior in settings["priors"].items():
        ok = isinstance(prior, list) and len(prior) == 2 and isinstance(prior[0], str)
        ok = ok and isinstance(prior[1], list) and all(_parameter(p) for p in prior[1])
        if not ok:
            raise _malformed(path, f"the prior for {name!r} is not [family, [[parameter, value], ...]]")
    try:
        parse_formula(settings["formula"], names)
    except BayesMLMError as err:
        raise _malformed(path, f"its formula is refused: {err}") from None
    return settings


def _expected_shapes(model: Model, group_effects: bool = True) -> dict[str, tuple[int, ...]]:
    """Shape of each population-level and (if ``group_effects``) group-level posterior variable, per draw."""
    shapes: dict[str, tuple[int, ...]] = {"fixed": (model.design.p,)}
    if not model.family.generalized:
        shapes["sigma"] = ()
    elif model.family.n_dispersion:
        shapes[model.family.dispersion_name] = ()
    for f in model.structure.factors:
        shapes[f"sd_{f.group}"] = (f.q,)
        if group_effects:
            shapes[f"r_{f.group}"] = (f.n_levels, f.q)
        for label, _, size in f.blocks():
            if size > 1:
                shapes[f"cor_{label}"] = (size, size)
    return shapes


def _check_draws(idata, model: Model, info: dict, path: Path) -> None:
    if "posterior" not in idata.children:
        raise _malformed(path, "it has no posterior group")
    post = idata["posterior"].to_dataset()
    on_demand = info.get("group_effects", "store") == "on_demand"
    seed = info.get("group_effects_seed")
    if on_demand and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
        raise _malformed(path, "its group effects are drawn on demand but group_effects_seed is not a seed")
    if on_demand and (model.family.generalized or len(model.structure.factors) != 1):
        raise _malformed(path, "its group effects are drawn on demand, which needs one grouping factor")
    for name, shape in _expected_shapes(model, group_effects=not on_demand).items():
        if name not in post.data_vars:
            raise _malformed(path, f"its posterior lacks {name!r}")
        da = post[name]
        if da.dims[:2] != ("chain", "draw") or da.shape[2:] != shape or 0 in da.shape[:2]:
            raise _malformed(
                path,
                f"posterior {name!r} has dims {da.dims} and shape {da.shape}; the model implies "
                f"(chain, draw) followed by {shape}",
            )
        if not name.startswith("r_") and not np.all(np.isfinite(np.asarray(da.values, dtype=float))):
            raise _malformed(path, f"posterior {name!r} has non-finite draws")
    for group in ("observed_data", "log_likelihood"):
        if group in idata.children:
            y = idata[group].to_dataset().get("y")
            if y is None or y.shape[-1] != model.design.n:
                raise _malformed(path, f"its {group} does not have one value per observation")


@checked
def load_fit(path: str | Path, extra_namespace: dict | None = None) -> Fit:
    """Load a fit saved with :meth:`Fit.save`, checking everything in the file first.

    Parameters
    ----------
    path : str or Path
    extra_namespace : dict, optional
        The functions the model's formula called through ``Model(..., extra_namespace=...)``: only
        their names are saved, never the functions.

    Returns
    -------
    Fit

    Raises
    ------
    FitError
        If the file is not a saved bayesmlm fit, is malformed (settings, formula, data or draws), or its
        formula needs functions not given.
    """
    import xarray as xr

    from bayesmlm.bayes.fit import Fit
    from bayesmlm.model import Model

    path = Path(path)
    if not path.exists():
        raise FitError(f"no such file: {path}")
    try:
        with xr.open_datatree(path, engine="h5netcdf") as opened:
            tree = opened.load()  # read whole, so the file is closed (and can be overwritten) at once
    except Exception as err:  # h5netcdf/xarray raise many kinds for a file of the wrong format
        raise FitError(f"{path} is not a saved bayesmlm fit ({type(err).__name__}: {err})") from err
    written = tree.attrs.get("bayesmlm_format")
    if isinstance(written, str) and written.startswith("bayesmlm-fit-") and written != FORMAT:
        raise FitError(f"{path} was saved by another version of bayesmlm ({written}, not {FORMAT}); refit")
    if written != FORMAT or "bayesmlm_data" not in tree.children:
        raise FitError(f"{path} is not a saved bayesmlm fit (no bayesmlm metadata)")
    settings = validated_settings(_json_attr(tree, "bayesmlm_model", path), path)
    info = _json_attr(tree, "bayesmlm_info", path)
    layout = _json_attr(tree, "bayesmlm_data_layout", path)
    arrays = {k: np.asarray(v.values) for k, v in tree["bayesmlm_data"].to_dataset().data_vars.items()}
    try:
        frame = decode_frame(arrays, layout)
    except FitError as err:
        raise _malformed(path, str(err)) from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = Model.from_dict(settings, frame, extra_namespace=extra_namespace)
    except FitError:
        raise
    except BayesMLMError as err:
        raise _malformed(path, f"its model cannot be rebuilt from its data ({err})") from None
    idata = tree.copy()
    del idata["bayesmlm_data"]
    for key in ("bayesmlm_format", "bayesmlm_model", "bayesmlm_info", "bayesmlm_data_layout"):
        idata.attrs.pop(key, None)
    _check_draws(idata, model, info, path)
    if model.family.generalized:
        from bayesmlm.bayes.glmm_fit import GeneralizedFit

        return GeneralizedFit(model, idata, info)
    return Fit(model, idata, info)
