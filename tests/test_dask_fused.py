"""The one pass's fast path: one compiled loop per partition, and the levels from Parquet footers.

``bayesmlm.design.fused`` must give the general path's sums bit for bit (same rows dropped and counted,
same Gram matrix, per-level sums and R factor), and ``bayesmlm.design.parquet_levels`` the same model
as the pass over the grouping column (levels without rows removed), or step aside.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bayesmlm as bm
from bayesmlm.design import fused, plain
from bayesmlm.design.partitions import CodeLookup

pytest.importorskip("numba")
dd = pytest.importorskip("dask.dataframe")
pq = pytest.importorskip("pyarrow.parquet")


def frame(n: int = 3000, seed: int = 3) -> pd.DataFrame:
    """Integer ids with gaps, NaN and inf in several columns, a float32 and an integer predictor."""
    rng = np.random.default_rng(seed)
    ids = rng.choice(np.arange(0, 120, 3), n).astype(np.int32)
    d = pd.DataFrame(
        {
            "g": ids,
            "x": rng.normal(size=n) * 2 + 5,
            "u": rng.normal(size=n).astype(np.float32),
            "k": rng.integers(0, 9, n),
        }
    )
    d["y"] = 1 + 0.5 * d["x"] - d["u"] + 0.1 * d["k"] + (d["g"] % 7) * 0.3 + rng.normal(size=n)
    d.loc[::97, "x"] = np.nan
    d.loc[5::131, "y"] = np.inf
    d.loc[7::211, "u"] = np.nan
    d.loc[97 * 3, "y"] = np.nan  # a row bad in two columns: counted in both
    return d


def plan(d: pd.DataFrame, fixed, block, shifts) -> plain.PlainPlan:
    index = pd.Index(np.sort(d["g"].unique()))
    lookup = CodeLookup(("g",), (index,), pd.Index([]), np.arange(len(index)))
    used = tuple(sorted({"g", "y", *(c for c in fixed if c), *(c for c in block if c)}))
    ranges = tuple(c for c in used if c != "g")
    return plain.PlainPlan(used, "y", fixed, (block,), (((0,), lookup, len(index)),), ranges, shifts)


FORMS = {
    "y ~ x + (x | g)": ((None, "x"), (None, "x")),
    "y ~ x + u + k + (1 + u + x | g)": ((None, "x", "u", "k"), (None, "u", "x")),
    "y ~ 0 + x + (0 + x | g)": (("x",), ("x",)),
}


@pytest.mark.parametrize("form", list(FORMS))
def test_the_compiled_pass_gives_the_general_sums_bit_for_bit(form, monkeypatch):
    fixed, block = FORMS[form]
    d = frame()
    shift_w = np.array([1.0 if c is None else 0.9 * np.nanmean(d[c]) for c in fixed] + [4.0])
    shift_z = np.array([1.0 if c is None else 1.1 * np.nanmean(d[c]) for c in block])
    p = plan(d, fixed, block, (shift_w, (shift_z,)))
    assert fused.fused_sums(d, p) is not None  # this partition takes the compiled loop
    ours = plain.plain_partition(d, p)
    monkeypatch.setattr(plain, "fused_sums", lambda *args: None)
    ref = plain.plain_partition(d, p)
    assert ours.counts == ref.counts and ours.n_rows == ref.n_rows == len(d)
    assert ours.counts["x"] == len(range(0, len(d), 97)) and ours.counts["g"] == 0
    assert ours.ranges == ref.ranges and ours.sums.y_range == ref.sums.y_range
    a, b = ours.sums, ref.sums
    for name in ("gram", "fixed_r", "shift_w"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    for x, y in zip(a.level_zz + a.level_zw, b.level_zz + b.level_zw, strict=True):
        np.testing.assert_array_equal(x, y)
    used = [c for c in p.used if c != "g"]
    assert a.n == b.n == len(d) - int((~np.isfinite(d[used])).any(axis=1).sum())


def test_the_compiled_pass_steps_aside_or_refuses(monkeypatch):
    d = frame(200)
    fixed, block = FORMS["y ~ x + (x | g)"]
    p = plan(d, fixed, block, (np.array([1.0, 5.0, 4.0]), (np.array([1.0, 5.0]),)))
    for changed in (d.assign(g=d["g"].astype(str)), d.assign(x=d["x"].astype("Float64"))):
        assert fused.fused_sums(changed, p) is None  # strings, pandas' nullable floats: the general path
    assert (
        fused.fused_sums(
            d,
            plain.PlainPlan(
                *[getattr(p, f) for f in ("used", "response", "fixed")],
                p.blocks,
                p.factors,
                p.range_columns,
                None,
            ),
        )
        is None
    )
    unseen = d.copy()
    unseen.loc[3, "g"] = 1  # an id the first pass did not see (ids are multiples of 3)
    with pytest.raises(bm.DataError, match="g in this partition was not there in the first pass"):
        plain.plain_partition(unseen, p)


def write(d: pd.DataFrame, folder, parts: int = 3) -> None:
    for k, rows in enumerate(np.array_split(np.arange(len(d)), parts)):
        d.iloc[rows].to_parquet(folder / f"part{k}.parquet", index=False)


def fits(path, d, formula="y ~ x + u + (x | g)"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.DroppedRowsWarning)
        model, ref = bm.Model(formula, path), bm.Model(formula, d)
    return model, model.fit_reml(), ref.fit_reml()


def test_levels_from_the_parquet_footers_give_the_pandas_fit(tmp_path):
    d = frame()
    d.loc[d["g"] == 30, "x"] = np.nan  # a level with no usable row: the footers' range holds it
    write(d, tmp_path)
    model, ours, ref = fits(tmp_path / "part*.parquet", d)
    assert model.reduction.info["passes"] == "one (the levels from the Parquet metadata)"
    levels = model.structure.factors[0].levels
    assert list(levels) == list(ref.structure.factors[0].levels) and 30 not in levels and 31 not in levels
    assert len(levels) == 39  # 0, 3, ..., 117 less 30
    assert ours.loglik == pytest.approx(ref.loglik, rel=1e-10)
    np.testing.assert_allclose(ours.theta, ref.theta, rtol=1e-5, atol=1e-7)
    assert (ours.nobs, ours.info["n_dropped"]) == (ref.nobs, ref.info["n_dropped"])
    # a directory of the same files, and int64 ids: the same
    model, again, _ = fits(tmp_path, d)
    assert model.reduction.info["passes"] == "one (the levels from the Parquet metadata)"
    assert again.loglik == pytest.approx(ref.loglik, rel=1e-12)


@pytest.mark.parametrize("case", ["sparse ids", "a Dask DataFrame", "string ids", "a missing id"])
def test_the_footers_step_aside_when_they_cannot_tell(tmp_path, case):
    d = frame()
    if case == "sparse ids":  # a range ~10,000 times the ids: the grouping column is read instead
        d["g"] = d["g"].astype(np.int64) * 10_000
    if case == "string ids":
        d["g"] = "s" + d["g"].astype(str)
    if case == "a missing id":
        d["g"] = d["g"].astype("Int64")
        d.loc[11, "g"] = pd.NA
    write(d, tmp_path)
    path = dd.read_parquet(str(tmp_path / "part*.parquet")) if case == "a Dask DataFrame" else tmp_path
    model, ours, ref = fits(path, d)
    assert model.reduction.info["passes"] == "one (the grouping columns read first)"
    assert ours.loglik == pytest.approx(ref.loglik, rel=1e-10)
    assert list(model.structure.factors[0].levels) == list(ref.structure.factors[0].levels)
