"""A model's settings as JSON, and back: what a saved fit stores to rebuild its model.

:func:`model_settings` is :meth:`bayesmlm.Model.to_dict`; :func:`model_arguments` turns such settings
back into the keyword arguments of :class:`~bayesmlm.Model` (without the data). Functions a formula
calls (``extra_namespace``) are saved by name only, never pickled, so they must be passed again.
"""

from __future__ import annotations

from bayesmlm.exceptions import FitError

__all__ = ["model_arguments", "model_settings"]


def model_settings(model) -> dict:
    """Return the settings needed to rebuild ``model`` (a :class:`~bayesmlm.Model`) from its data."""
    return {
        "formula": model.spec.formula,
        "na_action": model.na_action,
        "priors": {name: [p.family, list(map(list, p.params))] for name, p in model._user_priors.items()},
        "parameterization": dict(model.parameterization),
        "family": model.family.name,
        "link": model.family.link.name,
        "weights": model.weights,
        "extra_namespace": sorted(model.extra_namespace),  # names only: functions are not saved
    }


def model_arguments(settings: dict, extra_namespace: dict | None = None) -> dict:
    """Return the keyword arguments of ``Model`` (all but ``data`` and ``extra_namespace``) from settings.

    Raises
    ------
    FitError
        If the formula calls user functions that ``extra_namespace`` does not give again.
    """
    needed = sorted(set(settings.get("extra_namespace", [])) - set(extra_namespace or {}))
    if needed:
        raise FitError(
            f"the formula '{settings['formula']}' calls your function(s) {needed}, which are not saved "
            "with the fit; pass them again, e.g. load_fit(path, extra_namespace={"
            + ", ".join(f"'{n}': ..." for n in needed)
            + "})"
        )
    from bayesmlm.bayes.priors import Prior

    priors = {
        name: Prior(family, tuple((k, float(v)) for k, v in params))
        for name, (family, params) in settings.get("priors", {}).items()
    }
    return {
        "formula": settings["formula"],
        "family": settings.get("family", "gaussian"),
        "link": settings.get("link"),
        "weights": settings.get("weights"),
        "priors": priors or None,
        "na_action": settings.get("na_action", "drop"),
        "parameterization": settings.get("parameterization", "auto"),
    }
