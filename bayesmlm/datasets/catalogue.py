"""Data: the classic multilevel-model datasets bundled with bayesmlm, and their descriptions.

The data ship inside the package as CSV files and are read with
:mod:`importlib.resources`, so they work from an installed wheel and nothing is
ever downloaded.

=============  ==========================================================
name           title
=============  ==========================================================
sleepstudy     Reaction times in a sleep-deprivation study (lme4)
Oxboys         Heights of boys in Oxford (nlme)
Dyestuff       Yield of dyestuff by batch of intermediate product (lme4)
Penicillin     Variation in penicillin testing (lme4)
Pastes         Strength of a chemical paste product (lme4)
InstEval       University lecture evaluations at ETH Zurich (lme4)
BodyWeight     Body weights of rats on three diets over 64 days (nlme)
cbpp           Contagious bovine pleuropneumonia in herds (lme4; binomial)
grouseticks    Ticks on red grouse chicks (lme4; counts)
VerbAgg        Verbal aggression questionnaire (lme4; 0/1 responses)
=============  ==========================================================

Grouping columns (subjects, batches, plates, students, ...) are returned as
:class:`pandas.Categorical` with string labels, never as numbers, so they cannot
be mistaken for covariates. Integer-like labels are ordered numerically
(``"1", "2", ..., "10"``), other labels lexically. Measurements are ``float64``;
counts and codes that are used as numbers (``Days``, ``service``, ``y``) are
``int64``.

The full documentation of each dataset (meaning and type of every column, and
the source) is in ``load_dataset(name).attrs["description"]`` and is appended
below.
"""

from __future__ import annotations

import re
from importlib.resources import files

import pandas as pd

from bayesmlm.arguments import checked
from bayesmlm.datasets.entry import DTYPES
from bayesmlm.datasets.entry import Column as _Column
from bayesmlm.datasets.entry import Dataset as _Dataset
from bayesmlm.datasets.generalized import GENERALIZED
from bayesmlm.exceptions import DataError

__all__ = ["list_datasets", "load_dataset"]

_DTYPES = DTYPES
_INTEGER_LABEL = re.compile(r"-?[0-9]+")


_REGISTRY: tuple[_Dataset, ...] = (
    _Dataset(
        name="sleepstudy",
        filename="sleepstudy.csv",
        title="Reaction times in a sleep-deprivation study",
        n_rows=180,
        summary=(
            "lme4's sleepstudy: the average reaction time per day (in milliseconds) of 18 "
            "subjects in a sleep-deprivation study, observed on days 0 to 9 "
            "(10 observations per subject)."
        ),
        columns=(
            _Column("Reaction", "float", "average reaction time (ms)"),
            _Column("Days", "int", "number of days of sleep deprivation, 0-9"),
            _Column("Subject", "group", "subject identifier, 18 levels ('308', ..., '372')"),
        ),
        source=(
            "lme4 (R package), dataset sleepstudy. Belenky, G., Wesensten, N. J., Thorne, D. R., "
            "Thomas, M. L., Sing, H. C., Redmond, D. P., Russo, M. B. and Balkin, T. J. (2003). "
            "Patterns of performance degradation and restoration during sleep restriction and "
            "subsequent recovery: a sleep dose-response study. Journal of Sleep Research 12, 1-12."
        ),
    ),
    _Dataset(
        name="Oxboys",
        filename="Oxboys.csv",
        title="Heights of boys in Oxford",
        n_rows=234,
        summary=(
            "nlme's Oxboys: the heights of 26 boys from Oxford, England, each measured on "
            "9 occasions (9 observations per boy)."
        ),
        columns=(
            _Column("Subject", "group", "identifier of the boy, 26 levels ('1', ..., '26')"),
            _Column("age", "float", "standardized (centred) age, dimensionless, about -1 to 1"),
            _Column("height", "float", "height of the boy (cm)"),
            _Column("Occasion", "group", "measurement occasion, 9 levels ('1', ..., '9')"),
        ),
        source=(
            "nlme (R package), dataset Oxboys. Goldstein, H. (1987). Multilevel Models in "
            "Educational and Social Research. Oxford University Press."
        ),
    ),
    _Dataset(
        name="Dyestuff",
        filename="Dyestuff.csv",
        title="Yield of dyestuff by batch of intermediate product",
        n_rows=30,
        summary=(
            "lme4's Dyestuff: the yield of dyestuff from 5 samples (preparations) of each of "
            "6 batches of an intermediate product (one-way random-effects design)."
        ),
        columns=(
            _Column("Batch", "group", "batch of intermediate product, 6 levels ('A', ..., 'F')"),
            _Column("Yield", "float", "yield of dyestuff (grams of standard colour)"),
        ),
        source=(
            "lme4 (R package), dataset Dyestuff. Davies, O. L. (ed.) (1947). Statistical Methods "
            "in Research and Production. Oliver and Boyd."
        ),
    ),
    _Dataset(
        name="Penicillin",
        filename="Penicillin.csv",
        title="Variation in penicillin testing",
        n_rows=144,
        summary=(
            "lme4's Penicillin: 6 samples of penicillin tested on each of 24 plates; the "
            "response is the diameter of the zone of inhibited growth of the organism. "
            "plate and sample are crossed (every sample on every plate)."
        ),
        columns=(
            _Column("diameter", "float", "diameter of the zone of inhibited growth (mm)"),
            _Column("plate", "group", "assay plate, 24 levels ('a', ..., 'x')"),
            _Column("sample", "group", "penicillin sample, 6 levels ('A', ..., 'F')"),
        ),
        source=(
            "lme4 (R package), dataset Penicillin. Davies, O. L. and Goldsmith, P. L. (eds) "
            "(1972). Statistical Methods in Research and Production, 4th ed. Oliver and Boyd."
        ),
    ),
    _Dataset(
        name="Pastes",
        filename="Pastes.csv",
        title="Strength of a chemical paste product",
        n_rows=60,
        summary=(
            "lme4's Pastes: the strength of a chemical paste product, from 10 delivery "
            "batches, 3 casks per batch and 2 analyses per cask. cask is nested in batch "
            "(cask 'a' of batch 'A' is not cask 'a' of batch 'B'); sample = batch:cask "
            "identifies the 30 casks uniquely."
        ),
        columns=(
            _Column("strength", "float", "strength of the paste"),
            _Column("batch", "group", "delivery batch, 10 levels ('A', ..., 'J')"),
            _Column("cask", "group", "cask within the batch, 3 levels ('a', 'b', 'c')"),
            _Column("sample", "group", "batch:cask, 30 levels ('A:a', ..., 'J:c')"),
        ),
        source=(
            "lme4 (R package), dataset Pastes. Davies, O. L. and Goldsmith, P. L. (eds) (1972). "
            "Statistical Methods in Research and Production, 4th ed. Oliver and Boyd."
        ),
    ),
    _Dataset(
        name="InstEval",
        filename="InstEval.csv.gz",
        title="University lecture evaluations at ETH Zurich",
        n_rows=73421,
        summary=(
            "lme4's InstEval: 73,421 evaluations of university lectures by students at "
            "ETH Zurich, anonymized. Students and instructors are crossed."
        ),
        columns=(
            _Column("s", "group", "student identifier, 2972 levels"),
            _Column("d", "group", "instructor (lecturer) identifier, 1128 levels"),
            _Column(
                "studage",
                "group",
                "student's 'age' in semesters enrolled, ordinal code, 4 levels ('2' .. '8')",
            ),
            _Column(
                "lectage",
                "group",
                "how many semesters back the lecture took place, ordinal code, 6 levels",
            ),
            _Column(
                "service",
                "int",
                "1 if the lecture is a service course for another department, else 0",
            ),
            _Column("dept", "group", "department of the lecture, 14 levels"),
            _Column("y", "int", "rating of the lecture, 1 (poor) to 5 (very good)"),
        ),
        source="lme4 (R package), dataset InstEval (ETH Zurich lecture evaluations).",
    ),
    _Dataset(
        name="BodyWeight",
        filename="BodyWeight.csv",
        title="Body weights of rats on three diets over 64 days",
        n_rows=176,
        summary=(
            "nlme's BodyWeight: the body weight of 16 rats, each measured 11 times over 64 days "
            "(weekly, plus an extra measurement on day 44); 8 rats were on diet 1 and 4 each on "
            "diets 2 and 3 (a small, unbalanced growth-curve study)."
        ),
        columns=(
            _Column("weight", "float", "body weight (g)"),
            _Column("Time", "int", "day of the measurement, 1 to 64"),
            _Column("Rat", "group", "rat identifier, 16 levels ('1', ..., '16')"),
            _Column("Diet", "group", "diet, 3 levels ('1', '2', '3')"),
        ),
        source=(
            "nlme (R package), dataset BodyWeight. Crowder, M. and Hand, D. (1990). Analysis of "
            "Repeated Measures. Chapman and Hall, example 5.3; Pinheiro, J. C. and Bates, D. M. "
            "(2000). Mixed-Effects Models in S and S-PLUS. Springer."
        ),
    ),
    *GENERALIZED,
)

_BY_KEY: dict[str, _Dataset] = {ds.name.casefold(): ds for ds in _REGISTRY}


def _natural_categories(labels: pd.Series) -> list[str]:
    """Sort the distinct labels numerically if all are integers, else lexically."""
    unique = [str(v) for v in labels.unique()]
    if unique and all(_INTEGER_LABEL.fullmatch(v) for v in unique):
        return sorted(unique, key=lambda v: (int(v), v))
    return sorted(unique)


def _lookup(name: str) -> _Dataset:
    """Return the registry entry for ``name`` (case-insensitive) or raise DataError."""
    available = ", ".join(ds.name for ds in _REGISTRY)
    if not isinstance(name, str):
        raise DataError(
            f"Dataset name must be a string, got {type(name).__name__}. Available datasets: {available}."
        )
    try:
        return _BY_KEY[name.casefold()]
    except KeyError:
        raise DataError(
            f"Unknown dataset {name!r}. Available datasets: {available} (names are case-insensitive)."
        ) from None


@checked
def load_dataset(name: str) -> pd.DataFrame:
    """Load a dataset bundled with bayesmlm.

    Parameters
    ----------
    name : str
        Name of the dataset, case-insensitive: ``"sleepstudy"``, ``"Oxboys"``,
        ``"Dyestuff"``, ``"Penicillin"``, ``"Pastes"``, ``"InstEval"``, ``"BodyWeight"``, ``"cbpp"``,
        ``"grouseticks"`` or ``"VerbAgg"``.
        See :func:`list_datasets`.

    Returns
    -------
    pandas.DataFrame
        A new frame on every call (mutating it does not affect later loads).
        Grouping columns are :class:`pandas.Categorical` with string labels,
        measurements are ``float64`` and counts/codes ``int64``. The dataset's
        documentation (title, columns, source) is in ``df.attrs["description"]``.

    Raises
    ------
    DataError
        If ``name`` is not the name of a bundled dataset; the message lists the
        available names.

    Examples
    --------
    >>> from bayesmlm import load_dataset
    >>> df = load_dataset("sleepstudy")
    >>> df.shape
    (180, 3)
    >>> list(df["Subject"].cat.categories[:3])
    ['308', '309', '310']
    >>> print(df.attrs["description"].splitlines()[0])
    sleepstudy: Reaction times in a sleep-deprivation study
    """
    ds = _lookup(name)
    resource = files("bayesmlm.datasets").joinpath(ds.filename)
    compression = "gzip" if ds.filename.endswith(".gz") else None
    with resource.open("rb") as fh:
        # Read everything as text first so that labels such as "308" or "01" are never
        # turned into numbers, and nothing is silently read as missing.
        raw = pd.read_csv(fh, dtype=str, keep_default_na=False, compression=compression)

    expected = [c.name for c in ds.columns]
    if list(raw.columns) != expected:  # pragma: no cover - guards the bundled files
        raise DataError(f"Bundled file {ds.filename} has columns {list(raw.columns)}, expected {expected}.")

    out: dict[str, pd.Series | pd.Categorical] = {}
    for col in ds.columns:
        values = raw[col.name]
        if col.kind == "group":
            out[col.name] = pd.Categorical(values, categories=_natural_categories(values))
        else:
            out[col.name] = pd.to_numeric(values, errors="raise").astype(_DTYPES[col.kind])
    df = pd.DataFrame(out, index=pd.RangeIndex(len(raw)))
    df.attrs["description"] = ds.description
    return df


@checked
def list_datasets() -> pd.DataFrame:
    """List the datasets bundled with bayesmlm.

    The row counts are stored metadata; no data file is read.

    Returns
    -------
    pandas.DataFrame
        One row per dataset, indexed by the dataset's canonical name, with
        columns ``n_rows`` (int), ``columns`` (comma-separated column names) and
        ``title``.

    Examples
    --------
    >>> from bayesmlm import list_datasets
    >>> names = list(list_datasets().index)
    >>> len(names), names[:3], names[-3:]
    (10, ['sleepstudy', 'Oxboys', 'Dyestuff'], ['cbpp', 'grouseticks', 'VerbAgg'])
    >>> int(list_datasets().loc["InstEval", "n_rows"])
    73421
    """
    return pd.DataFrame(
        {
            "n_rows": [ds.n_rows for ds in _REGISTRY],
            "columns": [", ".join(c.name for c in ds.columns) for ds in _REGISTRY],
            "title": [ds.title for ds in _REGISTRY],
        },
        index=pd.Index([ds.name for ds in _REGISTRY], name="name"),
    )


if __doc__ is not None:  # not under python -OO
    __doc__ += "\n\n" + "\n\n".join(ds.description for ds in _REGISTRY) + "\n"
