"""Tests of the bundled datasets (bayesmlm.datasets)."""

from importlib.resources import files

import numpy as np
import pandas as pd
import pytest

import bayesmlm
import bayesmlm.datasets.catalogue as datasets_module
from bayesmlm import DataError, list_datasets, load_dataset
from bayesmlm.datasets.catalogue import _natural_categories

NAMES = [
    "sleepstudy",
    "Oxboys",
    "Dyestuff",
    "Penicillin",
    "Pastes",
    "InstEval",
    "BodyWeight",
    "cbpp",
    "grouseticks",
    "VerbAgg",
]

SHAPES = {
    "sleepstudy": (180, 3),
    "Oxboys": (234, 4),
    "Dyestuff": (30, 2),
    "Penicillin": (144, 3),
    "Pastes": (60, 4),
    "InstEval": (73421, 7),
    "BodyWeight": (176, 4),
    "cbpp": (56, 4),
    "grouseticks": (403, 7),
    "VerbAgg": (7584, 9),
}

COLUMNS = {
    "sleepstudy": ["Reaction", "Days", "Subject"],
    "Oxboys": ["Subject", "age", "height", "Occasion"],
    "Dyestuff": ["Batch", "Yield"],
    "Penicillin": ["diameter", "plate", "sample"],
    "Pastes": ["strength", "batch", "cask", "sample"],
    "InstEval": ["s", "d", "studage", "lectage", "service", "dept", "y"],
    "BodyWeight": ["weight", "Time", "Rat", "Diet"],
    "cbpp": ["herd", "incidence", "size", "period"],
    "grouseticks": ["INDEX", "TICKS", "BROOD", "HEIGHT", "YEAR", "LOCATION", "cHEIGHT"],
    "VerbAgg": ["Anger", "Gender", "item", "resp", "id", "btype", "situ", "mode", "r2"],
}

# grouping column -> number of levels
GROUPS = {
    "sleepstudy": {"Subject": 18},
    "Oxboys": {"Subject": 26, "Occasion": 9},
    "Dyestuff": {"Batch": 6},
    "Penicillin": {"plate": 24, "sample": 6},
    "Pastes": {"batch": 10, "cask": 3, "sample": 30},
    "InstEval": {"s": 2972, "d": 1128, "studage": 4, "lectage": 6, "dept": 14},
    "BodyWeight": {"Rat": 16, "Diet": 3},
    "cbpp": {"herd": 15, "period": 4},
    "grouseticks": {"INDEX": 403, "BROOD": 118, "YEAR": 3, "LOCATION": 63},
    "VerbAgg": {"Gender": 2, "item": 24, "resp": 3, "id": 316, "btype": 3, "situ": 2, "mode": 2},
}

NUMERIC = {
    "sleepstudy": {"Reaction": "float64", "Days": "int64"},
    "Oxboys": {"age": "float64", "height": "float64"},
    "Dyestuff": {"Yield": "float64"},
    "Penicillin": {"diameter": "float64"},
    "Pastes": {"strength": "float64"},
    "InstEval": {"service": "int64", "y": "int64"},
    "BodyWeight": {"weight": "float64", "Time": "int64"},
    "cbpp": {"incidence": "int64", "size": "int64"},
    "grouseticks": {"TICKS": "int64", "HEIGHT": "int64", "cHEIGHT": "float64"},
    "VerbAgg": {"Anger": "int64", "r2": "int64"},
}

FILES = [
    "sleepstudy.csv",
    "Oxboys.csv",
    "Dyestuff.csv",
    "Penicillin.csv",
    "Pastes.csv",
    "InstEval.csv.gz",
    "BodyWeight.csv",
    "cbpp.csv",
    "grouseticks.csv",
    "VerbAgg.csv",
]


@pytest.fixture(scope="module")
def loaded() -> dict[str, pd.DataFrame]:
    return {name: load_dataset(name) for name in NAMES}


def _int_order(labels: pd.Index) -> list[str]:
    return sorted(labels, key=int)


def test_data_files_are_package_resources():
    root = files("bayesmlm.datasets")
    for filename in FILES:
        assert root.joinpath(filename).is_file(), filename


def test_exported_from_package():
    assert bayesmlm.load_dataset is load_dataset
    assert bayesmlm.list_datasets is list_datasets
    assert {"load_dataset", "list_datasets"} <= set(bayesmlm.__all__)


@pytest.mark.parametrize("name", NAMES)
def test_shape_and_columns(loaded, name):
    df = loaded[name]
    assert isinstance(df, pd.DataFrame)
    assert df.shape == SHAPES[name]
    assert list(df.columns) == COLUMNS[name]
    assert isinstance(df.index, pd.RangeIndex)
    assert not df.isna().any().any()


@pytest.mark.parametrize("name", NAMES)
def test_group_columns_are_string_categoricals(loaded, name):
    df = loaded[name]
    for col, n_levels in GROUPS[name].items():
        assert isinstance(df[col].dtype, pd.CategoricalDtype), col
        cats = df[col].cat.categories
        assert len(cats) == n_levels, col
        assert all(isinstance(c, str) for c in cats), col
        # every category is used, and the categories are in natural order
        assert set(df[col].astype(str)) == set(cats), col
        assert list(cats) == _natural_categories(pd.Series(list(cats))), col
    # the grouping columns are exactly the categorical ones
    categorical = [c for c in df.columns if isinstance(df[c].dtype, pd.CategoricalDtype)]
    assert sorted(categorical) == sorted(GROUPS[name])


@pytest.mark.parametrize("name", NAMES)
def test_numeric_columns_are_numeric(loaded, name):
    df = loaded[name]
    for col, dtype in NUMERIC[name].items():
        assert pd.api.types.is_numeric_dtype(df[col]), col
        assert str(df[col].dtype) == dtype, col
    assert set(NUMERIC[name]) | set(GROUPS[name]) == set(df.columns)


def test_sleepstudy_subject_labels(loaded):
    subject = loaded["sleepstudy"]["Subject"]
    cats = list(subject.cat.categories)
    assert cats[:2] == ["308", "309"]
    assert cats[-1] == "372"
    assert cats == _int_order(subject.cat.categories)
    assert (subject.value_counts() == 10).all()


def test_sleepstudy_values(loaded):
    df = loaded["sleepstudy"]
    assert sorted(df["Days"].unique()) == list(range(10))
    assert df["Reaction"].mean() == pytest.approx(298.5079, abs=1e-4)
    first = df.iloc[0]
    assert (first["Subject"], first["Days"]) == ("308", 0)
    assert first["Reaction"] == pytest.approx(249.56)


def test_oxboys_labels_in_numeric_order(loaded):
    df = loaded["Oxboys"]
    subject = list(df["Subject"].cat.categories)
    assert subject[:3] == ["1", "2", "3"]
    assert len(subject) == 26
    assert subject == [str(i) for i in range(1, 27)]  # "10" after "9", not after "1"
    assert list(df["Occasion"].cat.categories) == [str(i) for i in range(1, 10)]
    assert (df.groupby("Subject", observed=True).size() == 9).all()
    assert df["age"].between(-1.0, 1.01).all()


def test_dyestuff_batch_means(loaded):
    df = loaded["Dyestuff"]
    means = df.groupby("Batch", observed=True)["Yield"].mean()
    expected = {"A": 1505.0, "B": 1528.0, "C": 1564.0, "D": 1498.0, "E": 1600.0, "F": 1470.0}
    assert means.to_dict() == expected
    assert df["Yield"].mean() == pytest.approx(1527.5)


def test_penicillin_is_fully_crossed(loaded):
    df = loaded["Penicillin"]
    counts = pd.crosstab(df["plate"], df["sample"])
    assert counts.shape == (24, 6)
    assert (counts.to_numpy() == 1).all()
    assert list(df["plate"].cat.categories) == list("abcdefghijklmnopqrstuvwx")


def test_pastes_sample_is_batch_by_cask(loaded):
    df = loaded["Pastes"]
    combined = df["batch"].astype(str) + ":" + df["cask"].astype(str)
    assert (combined == df["sample"].astype(str)).all()
    assert (df.groupby("sample", observed=True).size() == 2).all()


def test_insteval_codes(loaded):
    df = loaded["InstEval"]
    assert set(df["service"].unique()) == {0, 1}
    assert set(df["y"].unique()) == {1, 2, 3, 4, 5}
    assert list(df["studage"].cat.categories) == ["2", "4", "6", "8"]
    assert list(df["lectage"].cat.categories) == [str(i) for i in range(1, 7)]
    dept = list(df["dept"].cat.categories)
    assert dept == _int_order(df["dept"].cat.categories)
    assert dept[:3] == ["1", "2", "3"]
    for col in ("s", "d"):
        cats = df[col].cat.categories
        assert list(cats) == _int_order(cats), col


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("SLEEPSTUDY", "sleepstudy"),
        ("oxboys", "Oxboys"),
        ("dyestuff", "Dyestuff"),
        ("PeNiCiLLiN", "Penicillin"),
        ("pastes", "Pastes"),
        ("insteval", "InstEval"),
    ],
)
def test_names_are_case_insensitive(loaded, alias, canonical):
    pd.testing.assert_frame_equal(load_dataset(alias), loaded[canonical])


@pytest.mark.parametrize("bad", ["nosuchdata", "sleep", "", "sleepstudy.csv"])
def test_unknown_name_raises_data_error_listing_names(bad):
    with pytest.raises(DataError) as excinfo:
        load_dataset(bad)
    message = str(excinfo.value)
    assert repr(bad) in message
    for name in NAMES:
        assert name in message
    assert isinstance(excinfo.value, ValueError)


def test_non_string_name_raises_data_error():
    with pytest.raises(DataError, match="sleepstudy"):
        load_dataset(42)  # type: ignore[arg-type]


def test_each_call_returns_a_fresh_frame():
    first = load_dataset("sleepstudy")
    original = first.copy(deep=True)
    second = load_dataset("sleepstudy")
    assert first is not second
    assert not np.shares_memory(first["Reaction"].to_numpy(), second["Reaction"].to_numpy())

    first.loc[0, "Reaction"] = -1.0
    first["Days"] = 99
    first["Subject"] = first["Subject"].cat.rename_categories(lambda c: "S" + c)
    first["extra"] = 1
    first.iloc[1:3, 0] = np.nan
    first.attrs["description"] = "changed"

    again = load_dataset("sleepstudy")
    pd.testing.assert_frame_equal(again, original)
    assert again.attrs["description"] == original.attrs["description"] != "changed"
    pd.testing.assert_frame_equal(second, original)


@pytest.mark.parametrize("name", NAMES)
def test_description_attr(loaded, name):
    description = loaded[name].attrs["description"]
    assert isinstance(description, str)
    title = list_datasets().loc[name, "title"]
    assert description.startswith(f"{name}: {title}")
    assert "Source:" in description
    column_lines = [line.split()[0] for line in description.splitlines() if line.startswith("  ")]
    assert COLUMNS[name] == [c for c in column_lines if c in COLUMNS[name]]
    assert f"{SHAPES[name][0]} rows" in description


def test_module_docstring_documents_every_dataset():
    doc = datasets_module.__doc__
    if doc is None:  # python -OO
        pytest.skip("docstrings stripped")
    for name in NAMES:
        assert f"{name}: " in doc
    assert "Belenky" in doc and "Goldstein" in doc and "Davies" in doc


def test_list_datasets_matches_loaded_data(loaded):
    table = list_datasets()
    assert list(table.index) == NAMES
    assert list(table.columns) == ["n_rows", "columns", "title"]
    for name, row in table.iterrows():
        df = loaded[name]
        assert row["n_rows"] == len(df), name
        assert [c.strip() for c in row["columns"].split(",")] == list(df.columns), name
        assert isinstance(row["title"], str) and row["title"], name


def test_list_datasets_does_not_read_files(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("list_datasets must not open data files")

    monkeypatch.setattr(datasets_module, "files", boom)
    monkeypatch.setattr(pd, "read_csv", boom)
    table = list_datasets()
    assert table.loc["InstEval", "n_rows"] == 73421
    with pytest.raises(AssertionError, match="must not open"):
        load_dataset("Dyestuff")  # the patch is effective for loading


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (["10", "2", "1", "308"], ["1", "2", "10", "308"]),
        (["b", "A", "a"], ["A", "a", "b"]),
        (["10", "2", "x"], ["10", "2", "x"]),  # not all integers: lexical
        (["A:b", "A:a", "B:a"], ["A:a", "A:b", "B:a"]),
        (["3", "3", "1"], ["1", "3"]),
    ],
)
def test_natural_categories(labels, expected):
    assert _natural_categories(pd.Series(labels)) == expected
