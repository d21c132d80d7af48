"""Tests for stage 2 of the pipeline: evaluating a formula on data (``make_design``)."""

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesmlm as bm
from bayesmlm.design.covariance import random_structure
from bayesmlm.design.evaluate import Design, make_design
from bayesmlm.design.levels import group_labels, level_keys
from bayesmlm.exceptions import (
    DataError,
    DroppedRowsWarning,
    FormulaError,
    RankDeficientWarning,
)

SLEEP = "Reaction ~ Days + (Days | Subject)"
SUBJECTS = "308 309 310 330 331 332 333 334 335 337 349 350 351 352 369 370 371 372".split()


@pytest.fixture
def sleep():
    """A fresh copy of sleepstudy per test (tests may add columns or NaNs)."""
    return bm.load_dataset("sleepstudy")


def quiet_design(formula, data, **kwargs) -> Design:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any unexpected warning fails the test
        return make_design(formula, data, **kwargs)


def fingerprint(df: pd.DataFrame):
    return (
        int(pd.util.hash_pandas_object(df, index=True).sum()),
        df.columns.tolist(),
        [str(t) for t in df.dtypes],
        df.index.tolist(),
    )


# --- 1. shapes on sleepstudy -----------------------------------------------------------------


def test_sleepstudy_shapes_and_names(sleep):
    d = quiet_design(SLEEP, sleep)
    assert d.y.shape == (180,)
    assert d.X.shape == (180, 2)
    assert (d.n, d.p, d.n_dropped, d.aliased) == (180, 2, 0, ())
    assert d.fixed_names == ("Intercept", "Days")
    assert d.response_name == "Reaction"
    np.testing.assert_array_equal(d.y, sleep["Reaction"].to_numpy())
    np.testing.assert_array_equal(d.X[:, 0], np.ones(180))
    np.testing.assert_array_equal(d.X[:, 1], sleep["Days"].to_numpy(dtype=float))
    assert d.rows.equals(sleep.index)


def test_sleepstudy_block_is_small_and_levels_are_numeric_strings(sleep):
    d = quiet_design(SLEEP, sleep)
    assert len(d.blocks) == 1
    (b,) = d.blocks
    assert b.group == "Subject"
    assert b.term_names == ("Intercept", "Days")
    assert b.Z.shape == (180, 2) and b.q == 2  # q columns, never n × (levels·q)
    np.testing.assert_array_equal(b.Z, d.X)
    assert b.n_levels == 18
    assert b.levels == tuple(SUBJECTS)
    assert all(isinstance(level, str) for level in b.levels)
    assert b.codes.shape == (180,)
    assert np.issubdtype(b.codes.dtype, np.integer)
    assert b.codes.min() == 0 and b.codes.max() == 17
    assert np.bincount(b.codes).tolist() == [10] * 18
    # each row's code points to that row's Subject
    labels = np.array(b.levels, dtype=object)[b.codes]
    np.testing.assert_array_equal(labels, sleep["Subject"].astype(str).to_numpy(dtype=object))


def test_no_dense_random_effects_matrix_anywhere(sleep):
    d = quiet_design(SLEEP, sleep)
    arrays = [d.y, d.X]
    for b in d.blocks:
        arrays += [b.codes, b.Z]
    assert max(a.size for a in arrays) <= 180 * 2
    for b in d.blocks:
        assert b.Z.shape[1] == b.q < b.n_levels * b.q


def test_design_arrays_are_read_only(sleep):
    d = quiet_design(SLEEP, sleep)
    for a in (d.y, d.X, d.blocks[0].Z):
        with pytest.raises(ValueError):
            a[0] = 1.0


# --- 2. several blocks -------------------------------------------------------------------------


def test_double_bar_gives_two_single_column_blocks_on_one_group(sleep):
    d = quiet_design("Reaction ~ Days + (Days || Subject)", sleep)
    assert len(d.blocks) == 2
    assert [b.group for b in d.blocks] == ["Subject", "Subject"]
    assert [b.q for b in d.blocks] == [1, 1]
    assert [b.term_names for b in d.blocks] == [("Intercept",), ("Days",)]
    np.testing.assert_array_equal(d.blocks[0].codes, d.blocks[1].codes)
    np.testing.assert_array_equal(d.blocks[1].Z[:, 0], sleep["Days"].to_numpy(dtype=float))

    rs = random_structure(d)
    assert len(rs.factors) == 1
    f = rs.factors[0]
    assert f.group == "Subject"
    assert f.block_sizes == (1, 1)
    assert f.block_labels == ("Subject", "Subject.1")
    assert f.Z.shape == (180, 2)
    assert f.n_levels == 18


def test_crossed_penicillin_blocks_and_factor_order():
    pen = bm.load_dataset("Penicillin")
    d = quiet_design("diameter ~ 1 + (1|plate) + (1|sample)", pen)
    assert d.X.shape == (144, 1)
    assert [(b.group, b.n_levels, b.q) for b in d.blocks] == [("plate", 24, 1), ("sample", 6, 1)]
    assert [f.group for f in random_structure(d).factors] == ["plate", "sample"]
    # the order follows the number of levels, not the formula
    d2 = quiet_design("diameter ~ 1 + (1|sample) + (1|plate)", pen)
    assert [b.group for b in d2.blocks] == ["sample", "plate"]
    assert [f.group for f in random_structure(d2).factors] == ["plate", "sample"]


def test_nested_pastes_groups_and_interaction_labels():
    pastes = bm.load_dataset("Pastes")
    d = quiet_design("strength ~ 1 + (1|batch/cask)", pastes)
    assert [(b.group, b.n_levels) for b in d.blocks] == [("batch", 10), ("cask:batch", 30)]
    nested = d.blocks[1]
    assert "a:A" in nested.levels and "c:J" in nested.levels
    assert all(len(level.split(":")) == 2 for level in nested.levels)
    expected = (pastes["cask"].astype(str) + ":" + pastes["batch"].astype(str)).to_numpy(object)
    np.testing.assert_array_equal(np.array(nested.levels, dtype=object)[nested.codes], expected)
    assert [f.group for f in random_structure(d).factors] == ["cask:batch", "batch"]


# --- 3. formula features ---------------------------------------------------------------------


def test_categorical_fixed_effect_gives_treatment_columns():
    pastes = bm.load_dataset("Pastes")
    d = quiet_design("strength ~ batch + (1|cask:batch)", pastes)
    assert d.X.shape == (60, 10)
    assert d.fixed_names[0] == "Intercept"
    assert d.fixed_names[1:] == tuple(f"batch[{b}]" for b in "BCDEFGHIJ")
    np.testing.assert_array_equal(d.X[:, 1], (pastes["batch"] == "B").to_numpy(dtype=float))
    assert d.blocks[0].n_levels == 30


def test_c_wrapper_makes_numeric_column_categorical(sleep):
    d = quiet_design("Reaction ~ C(Days) + (1|Subject)", sleep)
    assert d.X.shape == (180, 10)  # intercept + 9 treatment contrasts for Days 0..9
    assert d.X[:, 1:].sum(axis=0).tolist() == [18.0] * 9


def test_interaction_star_expands_to_main_effects_and_product(sleep):
    rng = np.random.default_rng(0)
    data = sleep.assign(x=rng.normal(size=180), z=rng.normal(size=180))
    d = quiet_design("Reaction ~ x*z + (1|Subject)", data)
    assert d.fixed_names == ("Intercept", "x", "z", "x:z")
    np.testing.assert_allclose(d.X[:, 3], data["x"] * data["z"])


def test_scale_centres_the_column(sleep):
    d = quiet_design("Reaction ~ scale(Days) + (1|Subject)", sleep)
    assert d.fixed_names == ("Intercept", "scale(Days)")
    col = d.X[:, 1]
    assert abs(col.mean()) < 1e-12
    assert np.corrcoef(col, sleep["Days"])[0, 1] == pytest.approx(1.0)


def test_log_transform_matches_numpy(sleep):
    d = quiet_design("Reaction ~ np.log(Days + 1) + (1|Subject)", sleep)
    np.testing.assert_allclose(d.X[:, 1], np.log(sleep["Days"].to_numpy() + 1.0))


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_log_of_zero_is_a_data_error(sleep):
    with pytest.raises(DataError, match="non-finite"):
        make_design("Reaction ~ np.log(Days) + (1|Subject)", sleep)


def test_categorical_expression_inside_random_term():
    pastes = bm.load_dataset("Pastes")
    d = quiet_design("strength ~ 1 + (0 + cask | batch)", pastes)
    (b,) = d.blocks
    assert b.term_names == ("cask[a]", "cask[b]", "cask[c]")
    assert b.q == 3 and b.n_levels == 10
    np.testing.assert_array_equal(b.Z.sum(axis=1), np.ones(60))
    np.testing.assert_array_equal(b.Z[:, 2], (pastes["cask"] == "c").to_numpy(dtype=float))


# --- 4. missing values -----------------------------------------------------------------------


@pytest.fixture
def sleep_with_nan(sleep):
    df = sleep.copy()
    df["Days"] = df["Days"].astype(float)
    df.loc[[3, 50, 100], "Reaction"] = np.nan
    df.loc[[7, 120], "Days"] = np.nan
    return df


def test_missing_values_are_dropped_with_warning(sleep_with_nan):
    with pytest.warns(DroppedRowsWarning, match=r"\b5\b") as record:
        d = make_design(SLEEP, sleep_with_nan)
    assert len(record) == 1
    assert d.n == 175 and d.n_dropped == 5
    assert d.y.shape == (175,) and d.X.shape == (175, 2) and d.blocks[0].Z.shape == (175, 2)
    assert not set(d.rows) & {3, 7, 50, 100, 120}
    assert len(d.rows) == 175
    np.testing.assert_array_equal(d.y, sleep_with_nan.loc[d.rows, "Reaction"].to_numpy())
    assert d.blocks[0].codes.shape == (175,)


def test_infinite_value_counts_as_missing(sleep):
    sleep.loc[11, "Reaction"] = np.inf
    sleep.loc[12, "Reaction"] = -np.inf
    with pytest.warns(DroppedRowsWarning, match=r"\b2\b"):
        d = make_design(SLEEP, sleep)
    assert (d.n, d.n_dropped) == (178, 2)
    assert 11 not in d.rows and 12 not in d.rows
    assert np.all(np.isfinite(d.y))


def test_missing_group_label_drops_the_row(sleep):
    sleep.loc[[0, 179], "Subject"] = np.nan
    with pytest.warns(DroppedRowsWarning, match=r"\b2\b"):
        d = make_design(SLEEP, sleep)
    assert d.n == 178
    assert d.blocks[0].n_levels == 18
    assert np.bincount(d.blocks[0].codes).tolist() == [9] + [10] * 16 + [9]


def test_nan_in_unused_column_drops_nothing(sleep):
    data = sleep.assign(unused=np.nan)
    d = quiet_design(SLEEP, data)  # no DroppedRowsWarning
    assert (d.n, d.n_dropped) == (180, 0)


def test_na_action_error_raises_with_count(sleep_with_nan):
    with pytest.raises(DataError, match=r"\b5\b.*missing"):
        make_design(SLEEP, sleep_with_nan, na_action="error")


def test_invalid_na_action_raises_value_error(sleep):
    with pytest.raises(ValueError, match="na_action"):
        make_design(SLEEP, sleep, na_action="omit")


# --- 5. the caller's data frame is never modified -------------------------------------------


@pytest.mark.parametrize(
    "formula",
    [
        SLEEP,
        "Reaction ~ scale(Days) + C(Subject) + (Days || Subject)",
        "np.log(Reaction) ~ Days + (1|Subject)",
    ],
)
def test_data_frame_is_not_modified(sleep_with_nan, formula):
    before = fingerprint(sleep_with_nan)
    with pytest.warns(DroppedRowsWarning):
        make_design(formula, sleep_with_nan, na_action="drop")
    with pytest.raises(DataError):
        make_design(formula, sleep_with_nan, na_action="error")
    assert fingerprint(sleep_with_nan) == before
    assert isinstance(sleep_with_nan["Subject"].dtype, pd.CategoricalDtype)


def test_data_frame_with_categorical_groups_is_not_modified():
    pastes = bm.load_dataset("Pastes")
    pastes.loc[5, "strength"] = np.nan
    cats = [pastes[c].cat.categories.tolist() for c in ("batch", "cask")]
    before = fingerprint(pastes)
    with pytest.warns(DroppedRowsWarning):
        make_design("strength ~ cask + (1|batch/cask)", pastes)
    assert fingerprint(pastes) == before
    assert [pastes[c].cat.categories.tolist() for c in ("batch", "cask")] == cats


# --- 6. aliased fixed-effect columns ---------------------------------------------------------


def test_aliased_column_is_dropped_with_warning(sleep):
    data = sleep.assign(Days2=2 * sleep["Days"])
    with pytest.warns(RankDeficientWarning, match="Days2"):
        d = make_design("Reaction ~ Days + Days2 + (1|Subject)", data)
    assert d.X.shape == (180, 2)
    assert d.fixed_names == ("Intercept", "Days")
    assert d.aliased == ("Days2",)
    np.testing.assert_array_equal(d.X[:, 1], sleep["Days"].to_numpy(dtype=float))


def test_constant_zero_column_is_dropped(sleep):
    data = sleep.assign(zero=0.0)
    with pytest.warns(RankDeficientWarning, match="zero"):
        d = make_design("Reaction ~ Days + zero + (1|Subject)", data)
    assert d.fixed_names == ("Intercept", "Days")
    assert d.aliased == ("zero",)


# --- 7. unknown columns ----------------------------------------------------------------------


def test_unknown_fixed_column_lists_columns_and_suggests(sleep):
    with pytest.raises(FormulaError) as info:
        make_design("Reaction ~ Dayz + (1|Subject)", sleep)
    msg = str(info.value)
    assert "'Dayz'" in msg
    assert "Reaction, Days, Subject" in msg
    assert "did you mean 'Days'" in msg


def test_unknown_grouping_column_suggests(sleep):
    with pytest.raises(FormulaError, match="did you mean 'Subject'") as info:
        make_design("Reaction ~ Days + (1|Subjet)", sleep)
    assert "'Subjet'" in str(info.value)


# --- 8. grouping columns of different dtypes ----------------------------------------------------


def _subject_as(sleep, kind):
    as_int = sleep["Subject"].astype(str).astype(np.int64)
    return {
        "int": as_int,
        "float": as_int.astype(float),
        "str": sleep["Subject"].astype(str).astype(object),
        "string": sleep["Subject"].astype("string"),
        "category": sleep["Subject"],
        "int_category": as_int.astype("category"),
        "nullable_int": as_int.astype("Int64"),
        "object_float": as_int.astype(float).astype(object),
    }[kind]


@pytest.mark.parametrize(
    "kind",
    ["int", "float", "str", "string", "category", "int_category", "nullable_int", "object_float"],
)
def test_group_dtype_does_not_change_codes_or_levels(sleep, kind):
    reference = quiet_design(SLEEP, sleep).blocks[0]
    data = sleep.assign(Subject=_subject_as(sleep, kind))
    b = quiet_design(SLEEP, data).blocks[0]
    assert b.levels == reference.levels == tuple(SUBJECTS)
    np.testing.assert_array_equal(b.codes, reference.codes)


def test_bool_group_has_two_levels(sleep):
    data = sleep.assign(late=sleep["Days"] >= 5)
    with pytest.warns(bm.FewGroupsWarning, match="'late' has only 2 levels"):
        b = make_design("Reaction ~ Days + (1|late)", data).blocks[0]
    assert b.levels == ("False", "True")
    np.testing.assert_array_equal(b.codes, (sleep["Days"] >= 5).to_numpy(dtype=np.int64))


def test_categorical_group_keeps_category_order_and_drops_unused():
    df = pd.DataFrame(
        {
            "y": [1.0, 2.0, 3.0, 4.0],
            "g": pd.Categorical(["b", "a", "c", "a"], categories=["c", "z", "b", "a"]),
        }
    )
    with pytest.warns(bm.FewGroupsWarning, match="'g' has only 3 levels"):
        b = make_design("y ~ 1 + (1|g)", df).blocks[0]
    assert b.levels == ("c", "b", "a")
    assert b.codes.tolist() == [1, 2, 0, 2]


# --- 9. level_keys / group_labels ------------------------------------------------------------


def test_group_labels_orders_numbers_numerically():
    for values in ([10, 2, 1, 2], [10.0, 2.0, 1.0, 2.0], ["10", "2", "1", "2"]):
        codes, levels = group_labels(pd.DataFrame({"g": values}), ("g",))
        assert levels == ("1", "2", "10"), values
        assert codes.tolist() == [2, 1, 0, 1]


def test_group_labels_on_interaction_factor():
    df = pd.DataFrame({"a": ["y", "x", "x", "y", "x"], "b": [10, 2, 10, 2, 2]})
    codes, levels = group_labels(df, ("a", "b"))
    assert levels == ("x:2", "x:10", "y:2", "y:10")
    assert codes.tolist() == [3, 0, 1, 2, 0]


def test_level_keys_agree_with_group_labels():
    df = pd.DataFrame({"a": ["y", "x", "x", "y"], "b": [10.0, 2.0, 10.0, 2.5]})
    keys = level_keys(df, ("a", "b"))
    assert keys.tolist() == ["y:10", "x:2", "x:10", "y:2.5"]
    codes, levels = group_labels(df, ("a", "b"))
    assert [levels[c] for c in codes] == keys.tolist()


# --- 10. bad data ----------------------------------------------------------------------------


@pytest.mark.parametrize("data", [None, {"Reaction": [1.0], "Days": [0], "Subject": ["a"]}])
def test_non_data_frame_raises_data_error(data):
    with pytest.raises(DataError, match="DataFrame"):
        make_design(SLEEP, data)


def test_all_missing_response_leaves_no_rows(sleep):
    data = sleep.assign(Reaction=np.nan)
    with pytest.warns(DroppedRowsWarning, match="180"):
        with pytest.raises(DataError, match="no rows"):
            make_design(SLEEP, data)


def test_empty_data_frame_raises_data_error(sleep):
    with pytest.raises(DataError, match="no rows"):
        make_design(SLEEP, sleep.iloc[:0])


@pytest.mark.parametrize("labels", [["a", "b", "c"], ["a", "b"], ["a"]])
def test_categorical_response_raises_data_error(sleep, labels):
    # a one-level string response used to become a silent column of ones
    data = sleep.assign(s=np.resize(np.array(labels, dtype=object), 180))
    with pytest.raises(DataError, match="'s' must be numeric"):
        make_design("s ~ Days + (1|Subject)", data)


# --- 11. fixed_design on new data ------------------------------------------------------------


def test_fixed_design_reuses_training_scale(sleep):
    d = quiet_design("Reaction ~ scale(Days) + (1|Subject)", sleep)
    new = pd.DataFrame({"Days": [0, 9, 4.5]})
    X_new = d.fixed_design(new)
    assert X_new.shape == (3, 2)
    assert X_new[0, 1] == pytest.approx(d.X[sleep["Days"].to_numpy() == 0, 1][0])
    assert X_new[1, 1] == pytest.approx(d.X[sleep["Days"].to_numpy() == 9, 1][0])
    assert X_new[2, 1] == pytest.approx(0.0)  # the training mean of Days is 4.5
    # on the training data it reproduces X
    np.testing.assert_allclose(d.fixed_design(sleep), d.X)


def test_fixed_design_drops_aliased_columns_and_keeps_categories(sleep):
    data = sleep.assign(Days2=2 * sleep["Days"])
    with pytest.warns(RankDeficientWarning):
        d = make_design("Reaction ~ Days + Days2 + (1|Subject)", data)
    X_new = d.fixed_design(pd.DataFrame({"Days": [1.0, 3.0], "Days2": [2.0, 6.0]}))
    np.testing.assert_array_equal(X_new, [[1.0, 1.0], [1.0, 3.0]])

    pastes = bm.load_dataset("Pastes")
    dp = quiet_design("strength ~ batch + (1|cask:batch)", pastes)
    X_new = dp.fixed_design(pd.DataFrame({"batch": ["C", "A"]}))
    assert X_new.shape == (2, 10)
    np.testing.assert_array_equal(X_new[0], dp.X[(pastes["batch"] == "C").to_numpy()][0])
    np.testing.assert_array_equal(X_new[1], [1.0] + [0.0] * 9)
