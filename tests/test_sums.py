"""The reduction's algebra without Dask: sums of partitions merged in any order are the whole data's.

``bayesmlm.design.sums`` is what a Dask cluster runs per partition and per merge; here the partitions
are slices of pandas designs, so the cross-products can be set against ``cross_products`` on the rows.
"""

from __future__ import annotations

import warnings
from functools import reduce

import numpy as np
import pandas as pd
import pytest

import bayesmlm as bm
from bayesmlm.design.accumulate import level_products
from bayesmlm.design.evaluation import independent_columns
from bayesmlm.design.plain import keep_levels
from bayesmlm.design.sums import (
    cross_products_from,
    fixed_basis,
    merge_sums,
    moments_from,
    partition_sums,
    select_fixed,
)

FIELDS = ("ztz1", "ztx1", "zty1", "ztz_rest", "ztz_rest1", "ztx_rest", "zty_rest", "xtx", "xty", "yty")


def three_factors() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    n = 400
    d = pd.DataFrame({"x": rng.normal(size=n), "a": rng.integers(0, 9, n), "b": rng.integers(0, 5, n)})
    d["c"] = rng.choice(["u", "v", "w"], n)
    d["y"] = d["x"] + d["a"] * 0.3 - d["b"] * 0.2 + rng.normal(size=n)
    return d


MODELS = {
    "one factor": ("Reaction ~ Days + (Days | Subject)", lambda: bm.load_dataset("sleepstudy")),
    "crossed": ("diameter ~ 1 + (1 | plate) + (1 | sample)", lambda: bm.load_dataset("Penicillin")),
    "nested": ("strength ~ 1 + (1 | batch/cask)", lambda: bm.load_dataset("Pastes")),
    "three factors": ("y ~ x + (x | a) + (1 | b) + (1 | c)", three_factors),
}


def sums_of(model: bm.Model, rows: np.ndarray):
    d, factors = model.design, model.structure.factors
    parts = [(f.codes[rows], f.Z[rows], f.n_levels) for f in factors]
    return partition_sums(d.y[rows], d.X[rows], parts)


@pytest.mark.parametrize("name", list(MODELS))
def test_partitions_merged_in_any_order_give_the_rows_cross_products(name):
    formula, data = MODELS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.FewGroupsWarning)
        model = bm.Model(formula, data())
    reference = model.cross_products
    rng = np.random.default_rng(len(name))
    for n_parts in (1, 3, 11):
        order = rng.permutation(model.design.n)
        pieces = [sums_of(model, rows) for rows in np.array_split(order, n_parts)]
        rng.shuffle(pieces)
        # a left fold and a balanced tree: the merge is associative up to rounding
        for total in (reduce(merge_sums, pieces), _tree(pieces)):
            stats = cross_products_from(total, [f.n_levels for f in model.structure.factors])
            assert stats.n == reference.n and stats.p == reference.p
            for field in FIELDS:
                ours, theirs = getattr(stats, field), getattr(reference, field)
                if theirs is None:
                    assert ours is None, field
                    continue
                scale = max(np.max(np.abs(theirs)), 1.0)
                np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12 * scale, err_msg=field)


def _tree(pieces):
    while len(pieces) > 1:
        pieces = [reduce(merge_sums, pieces[i : i + 2]) for i in range(0, len(pieces), 2)]
    return pieces[0]


def test_an_empty_partition_changes_nothing():
    model = bm.Model(*[MODELS["one factor"][0], MODELS["one factor"][1]()])
    rows = np.arange(model.design.n)
    whole = sums_of(model, rows)
    with_empty = merge_sums(sums_of(model, rows[:0]), merge_sums(whole, sums_of(model, rows[:0])))
    np.testing.assert_array_equal(with_empty.gram, whole.gram)
    assert with_empty.y_range == whole.y_range == (model.design.y.min(), model.design.y.max())


@pytest.mark.parametrize("offset", [0.0, 1e8, -3e9])
def test_moments_and_centred_products_lose_nothing_to_a_large_offset(offset):
    """sd(y + 1e8) from sums about partition means equals sd(y): raw sums would keep ~no digits."""
    data = bm.load_dataset("sleepstudy").assign(Reaction=lambda d: d["Reaction"] + offset)
    model = bm.Model("Reaction ~ Days + (Days | Subject)", data)
    rows = np.random.default_rng(2).permutation(model.design.n)
    total = reduce(merge_sums, [sums_of(model, r) for r in np.array_split(rows, 5)])
    moments = moments_from(total, ["Subject"])
    y = model.design.y
    assert moments.y.mean[0] == pytest.approx(np.mean(y), rel=1e-14)
    assert moments.y.sd[0] == pytest.approx(np.std(y - np.mean(y), ddof=1), rel=1e-9)
    np.testing.assert_allclose(moments.x.sd, [0.0, np.std(model.design.X[:, 1], ddof=1)], rtol=1e-12)
    # in the frame centred at the means, every product keeps its digits: here X'y of the slope
    x_mean = model.design.X.mean(axis=0) * np.array([0.0, 1.0])
    stats = cross_products_from(total, [18], x_mean, 2.0, y_shift=float(np.mean(y)))
    exact = (model.design.X - x_mean).T @ (y - np.mean(y)) / 2.0
    assert stats.xty[1] == pytest.approx(exact[1], rel=1e-11)
    assert stats.yty == pytest.approx(np.sum((y - np.mean(y)) ** 2) / 4.0, rel=1e-11)
    assert abs(stats.xty[0]) < 1e-6 * abs(exact[1])  # Σ (y - ȳ) = 0


def test_aliased_columns_are_found_from_the_sums_as_from_the_rows():
    rng = np.random.default_rng(3)
    n = 300
    x1, x2 = rng.normal(size=n) + 1e4, rng.normal(size=n)
    X = np.column_stack([np.ones(n), x1, x2, 2 * x1 - x2 + 1, x2 * 0, rng.normal(size=n)])
    codes = rng.integers(0, 6, n)
    total = partition_sums(rng.normal(size=n), X, [(codes, np.ones((n, 1)), 6)])
    assert independent_columns(fixed_basis(total)) == independent_columns(X) == [0, 1, 2, 5]
    kept = select_fixed(total, [0, 1, 2, 5])
    np.testing.assert_allclose(
        kept.gram[1:5, 1:5],
        (X[:, [0, 1, 2, 5]] - kept.shift_w[:4]).T @ (X[:, [0, 1, 2, 5]] - kept.shift_w[:4]),
        rtol=1e-9,
        atol=1e-6,
    )


def test_the_compiled_per_level_loop_gives_bincounts_bits():
    """The numba loop (packed per-level sums, zero columns skipped) and weighted bincount agree exactly."""
    pytest.importorskip("numba")
    rng = np.random.default_rng(5)
    n, m = 5000, 37
    codes = rng.integers(0, m - 1, n)  # the last level has no rows
    z = np.column_stack([np.zeros(n), rng.normal(size=n) + 1e3, rng.normal(size=n)])
    w = np.column_stack([rng.normal(size=n), np.zeros(n), rng.normal(size=n) * 1e-3])
    fast = level_products(codes, z, w, m, use_compiled=True)
    slow = level_products(codes, z, w, m, use_compiled=False)
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(a, b)
    zz, zw = slow
    level = codes == 3
    assert zz[3, 0, 0] == level.sum() and zz[-1].sum() == 0.0
    assert zz[3, 2, 3] == pytest.approx(np.sum(z[level, 1] * z[level, 2]), rel=1e-12)
    assert zw[3, 2, 2] == pytest.approx(np.sum(z[level, 1] * w[level, 2]), rel=1e-12)


def test_removing_levels_without_rows_leaves_the_sums_of_the_others():
    """keep_levels: the sums as if the empty levels never existed, crossed pairs recoded in order."""
    data = three_factors()
    model = bm.Model("y ~ x + (1 | a) + (1 | b)", data)
    d, (fa, fb) = model.design, model.structure.factors
    # the same rows with two more, empty, levels of each factor, at codes 0 and 5 (a) / 2 (b)
    grow_a = np.insert(np.arange(fa.n_levels), [0, 4], -1)
    grow_b = np.insert(np.arange(fb.n_levels), [2], -1)
    code_a = np.flatnonzero(grow_a >= 0)[fa.codes]
    code_b = np.flatnonzero(grow_b >= 0)[fb.codes]
    big = partition_sums(d.y, d.X, [(code_a, fa.Z, len(grow_a)), (code_b, fb.Z, len(grow_b))])
    small = partition_sums(d.y, d.X, [(fa.codes, fa.Z, fa.n_levels), (fb.codes, fb.Z, fb.n_levels)])
    kept = keep_levels(big, [grow_a >= 0, grow_b >= 0])
    for x, y in zip([*kept.level_zz, *kept.level_zw], [*small.level_zz, *small.level_zw], strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(kept.pairs[0].keys, small.pairs[0].keys)
    np.testing.assert_array_equal(kept.pairs[0].values, small.pairs[0].values)


def test_the_r_factor_of_x_has_p_rows_whatever_the_rows():
    rng = np.random.default_rng(4)
    for n in (3, 50, 4000):
        X = np.column_stack([np.ones(n), rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)])
        s = partition_sums(rng.normal(size=n), X, [(rng.integers(0, 5, n), X[:, :1], 5)])
        assert s.fixed_r.shape == (min(n, 4), 4)
        np.testing.assert_allclose(s.fixed_r.T @ s.fixed_r, X.T @ X, rtol=1e-10)
