"""A formula, or a saved fit, never runs code: payloads tried as an attacker would, and fuzzing.

Every payload must raise FormulaError (FitError from a file) and leave no trace: no marker file, no
file content in the message, formulae's transform tables unchanged, later models unaffected.
"""

from __future__ import annotations

import json
import warnings

import h5py
import numpy as np
import pandas as pd
import pytest
from formulae.categorical import ENCODINGS
from formulae.terms import call_resolver
from formulae.transforms import TRANSFORMS
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bayesmlm as bm
from bayesmlm.spec.expression import MAX_DEPTH, MAX_LENGTH, allowed_functions, check_expression

MARKER = "bayesmlm_payload_ran"


def chr_code(text: str) -> str:
    """Python source for ``text`` without quotes (formulae's strings cannot hold any)."""
    return "+".join(f"chr({ord(c)})" for c in text)


def payloads(marker, secret) -> list[str]:
    """Terms that would run code, read ``secret`` or touch ``marker`` if anything evaluated them."""
    touch = f"__import__(chr(111)+chr(115)).system({chr_code(f'touch {marker}')})"
    return [
        # the reported ones
        f"I.__globals__.get.__class__.__call__(I.__builtins__.get('eval'), '{touch}')",
        f"float(I.__builtins__.get('open')('{secret}').read())",
        f"I.__builtins__.get('open')('{secret}').read()",
        "C.__globals__.get('TRANSFORMS').update(center=I)",
        "C.__globals__.get('TRANSFORMS').clear()",
        "np.__class__('np', Days)",
        # getattr chains and dunders
        "getattr(I, '__globals__')",
        "I.__call__(Days)",
        "np.log.__self__.lib.npyio.os.system('touch x')",
        "numpy.ctypeslib.os.system('touch x')",
        "np.lib.npyio.os.system('touch x')",
        "pd.io.common.os.system('touch x')",
        "__import__('os').system('touch x')",
        "I.__class__.__subclasses__()",
        "I.__class__.__base__.__subclasses__()",
        "I.__class__.__mro__",
        "C.__code__",
        "scale.__init__.__globals__",
        "Treatment.__init__.__globals__.get('eval')('1')",
        "I.__dict__",
        "I._private(Days)",
        "eval('1')",
        f"exec('{touch}')",
        f"open('{marker}', 'w')",
        "compile('1', 'f', 'eval')",
        "globals()",
        "vars(I)",
        "breakpoint()",
        "input()",
        # keyword tricks
        "poly(Days, __class__=1)",
        "poly(Days, _x=1)",
        # format-string tricks
        "'{0.__class__}'.format(Days)",
        "I('{0.__globals__}'.format(I))",
        # strings computed with (memory) and huge constants (time)
        "I('a' * 1000000000)",
        "I(9 ** 9 ** 9)",
        "I(Days * 10 ** 1000)",
        # bases of absurd size (poly(Days, degree=100000) took 55 s and gigabytes before failing)
        "poly(Days, 100000)",
        "poly(Days, degree=100000)",
        "bs(Days, df=5000)",
        # unicode look-alikes of allowed names (fullwidth I, Cyrillic I, fullwidth eval)
        "\uff29(Days)",
        "\u0406(Days)",
        "\uff45val('1')",
        # names a column would shadow, called as functions
        "Days(1)",
        "Subject.__class__",
        # formulae's own random-effect bar inside a function
        "I(Days | Subject)",
    ]


@pytest.fixture(scope="module")
def data():
    return bm.load_dataset("sleepstudy")


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "secret.txt"
    path.write_text("48151623")
    return path


def tables():
    return {k: id(v) for k, v in TRANSFORMS.items()}, {k: id(v) for k, v in ENCODINGS.items()}


def test_at_least_forty_payloads():
    assert len(payloads("m", "s")) >= 40


@pytest.mark.parametrize("where", ["fixed", "random", "response"])
@pytest.mark.parametrize("k", range(len(payloads("m", "s"))))
def test_payload_raises_and_leaves_no_trace(data, tmp_path, secret, where, k):
    marker = tmp_path / MARKER
    term = payloads(marker, secret)[k]
    formula = {
        "fixed": f"Reaction ~ Days + {term} + (1 | Subject)",
        "random": f"Reaction ~ Days + ({term} | Subject)",
        "response": f"{term} ~ Days + (1 | Subject)",
    }[where]
    before = tables()
    with pytest.raises(bm.FormulaError) as info:
        bm.Model(formula, data)
    assert not marker.exists()
    assert "48151623" not in str(info.value)
    assert tables() == before
    assert TRANSFORMS["center"].__name__ == "Center"


def test_refusal_points_at_the_offending_part(data):
    formula = "Reaction ~ Days + I.__globals__.get('x') + (1 | Subject)"
    with pytest.raises(bm.FormulaError) as info:
        bm.Model(formula, data)
    lines = str(info.value).splitlines()
    assert "'I.__globals__.get' is not allowed" in lines[0]
    assert lines[-1].index("^") - 2 == formula.index("I.__globals__")


def test_look_alike_name_is_called_out(data):
    with pytest.raises(bm.FormulaError, match="non-ASCII letters"):
        bm.Model("Reaction ~ \u0406(Days) + (1 | Subject)", data)


def test_later_models_are_unaffected_by_a_failed_one(data):
    with pytest.raises(bm.FormulaError):
        bm.Model("Reaction ~ C.__globals__.get('TRANSFORMS').update(center=I) + (1 | Subject)", data)
    model = bm.Model("Reaction ~ center(Days) + (1 | Subject)", data)
    days = data["Days"].to_numpy(dtype=float)
    np.testing.assert_allclose(model.design.X[:, 1], days - days.mean())


def test_too_long_and_too_deep_formulas_are_refused_before_parsing(data):
    long = "Reaction ~ Days" + " + Days" * (MAX_LENGTH // 7) + " + (1 | Subject)"
    with pytest.raises(bm.FormulaError, match="characters long"):
        bm.Model(long, data)
    deep = "Reaction ~ " + "(" * (MAX_DEPTH + 1) + "Days" + ")" * (MAX_DEPTH + 1) + " + (1 | Subject)"
    with pytest.raises(bm.FormulaError, match="nests brackets"):
        bm.Model(deep, data)
    very_deep = "y ~ " + "I(" * 5000 + "x" + ")" * 5000
    with pytest.raises(bm.FormulaError):
        check_expression(very_deep)


def test_a_hand_built_spec_is_checked_before_evaluation(data, tmp_path):
    marker = tmp_path / MARKER
    touch = f"__import__(chr(111)+chr(115)).system({chr_code(f'touch {marker}')})"
    payload = f"I.__globals__.get.__class__.__call__(I.__builtins__.get('eval'), '{touch}')"
    spec = bm.ModelSpec("hand-made", "Reaction", f"1 + {payload}", (), frozenset({"Reaction"}))
    with pytest.raises(bm.FormulaError, match="is not allowed"):
        bm.make_design(spec, data)
    term = bm.RandomTerm(payload, ("Subject",))
    spec = bm.ModelSpec("hand-made", "Reaction", "1", (term,), frozenset({"Reaction", "Subject"}))
    with pytest.raises(bm.FormulaError, match="is not allowed"):
        bm.make_design(spec, data)
    assert not marker.exists()


# -- what users legitimately write keeps working --------------------------------------------------


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(1)
    n = 60
    return pd.DataFrame(
        {
            "y": rng.normal(size=n),
            "x": rng.uniform(1, 5, size=n),
            "f": np.repeat(["a", "b", "c"], n // 3),
            "g": np.tile([f"g{k}" for k in range(6)], n // 6),
            "my var": rng.normal(size=n),
            "np": rng.normal(size=n),  # a column named like the numpy stand-in
            "log": rng.normal(size=n),  # and one named like a numpy function
            "Sepal.Length": rng.normal(size=n),
        }
    )


@pytest.mark.parametrize(
    ("rhs", "column", "expected"),
    [
        ('C(f, Treatment("b"))', 'C(f, Treatment("b"))[a]', lambda d: (d["f"] == "a").astype(float)),
        (
            "C(f, Sum)",
            "C(f, Sum)[a]",
            lambda d: np.where(d["f"] == "a", 1.0, np.where(d["f"] == "c", -1.0, 0)),
        ),
        ("scale(x)", "scale(x)", lambda d: (d["x"] - d["x"].mean()) / d["x"].std(ddof=0)),
        ("np.log(x + 1)", "np.log(x + 1)", lambda d: np.log(d["x"] + 1)),
        ("numpy.sqrt(x)", "numpy.sqrt(x)", lambda d: np.sqrt(d["x"])),
        ("log1p(x)", "log1p(x)", lambda d: np.log1p(d["x"])),
        ("I(x ** 2)", "I(x ** 2)", lambda d: d["x"] ** 2),
        ("{x + 1}", "I(x + 1)", lambda d: d["x"] + 1),
        ('I(f == "a")', 'I(f == "a")', lambda d: (d["f"] == "a").astype(float)),
        ("I(x * 2 ** 10)", "I(x * 2 ** 10)", lambda d: d["x"] * 1024),
        ("`my var`", "my var", lambda d: d["my var"]),
        ("np", "np", lambda d: d["np"]),
        ("log", "log", lambda d: d["log"]),
        ("np.log(x) + log", "log", lambda d: d["log"]),
        ("log(x)", "log(x)", lambda d: np.log(d["x"])),
        ("Sepal.Length", "Sepal.Length", lambda d: d["Sepal.Length"]),
        ("np.where(x > 2, x, 0)", "np.where(x > 2, x, 0)", lambda d: np.where(d["x"] > 2, d["x"], 0)),
    ],
)
def test_legitimate_expressions_compute_the_right_columns(frame, rhs, column, expected):
    design = bm.make_design(f"y ~ {rhs} + (1 | g)", frame)
    X = pd.DataFrame(design.X, columns=design.fixed_names)
    np.testing.assert_allclose(X[column], np.asarray(expected(frame), dtype=float), rtol=1e-12)


def test_poly_and_extra_functions_by_name(frame):
    twice = {"twice": lambda v: 2 * v}
    design = bm.make_design("y ~ poly(x, 2) + twice(np.exp(x)) + (1 | g)", frame, extra_namespace=twice)
    assert design.fixed_names == ("Intercept", "poly(x, 2)[0]", "poly(x, 2)[1]", "twice(np.exp(x))")
    np.testing.assert_allclose(design.X[:, 3], 2 * np.exp(frame["x"]))
    with pytest.raises(bm.FormulaError, match="'twice' is not a function formulas may call"):
        bm.make_design("y ~ twice(x) + (1 | g)", frame)
    with pytest.raises(bm.FormulaError, match="starts with '_'"):
        bm.make_design("y ~ x + (1 | g)", frame, extra_namespace={"_twice": lambda v: 2 * v})


def test_encodings_passed_by_name_are_not_columns():
    assert bm.parse_formula("y ~ C(f, Sum) + (1 | g)").variables == frozenset({"y", "f", "g"})


# -- saved fits -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    data = bm.load_dataset("sleepstudy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bm.SamplingWarning)
        fit = bm.Model("Reaction ~ Days + (1 | Subject)", data).fit(
            draws=30, tune=30, chains=1, seed=1, progressbar=False
        )
    return fit.save(tmp_path_factory.mktemp("saved") / "fit.nc")


def tampered(saved, tmp_path, **attrs):
    path = tmp_path / "tampered.nc"
    path.write_bytes(saved.read_bytes())
    with h5py.File(path, "r+") as f:
        for key, value in attrs.items():
            f.attrs[key] = value
    return path


def settings_of(saved) -> dict:
    with h5py.File(saved, "r") as f:
        raw = f.attrs["bayesmlm_model"]
    return json.loads(raw.decode() if isinstance(raw, bytes) else raw)


def test_loading_a_file_with_a_code_formula_runs_nothing(saved, tmp_path):
    marker = tmp_path / MARKER
    touch = f"__import__(chr(111)+chr(115)).system({chr_code(f'touch {marker}')})"
    payload = f"I.__globals__.get.__class__.__call__(I.__builtins__.get('eval'), '{touch}')"
    settings = settings_of(saved)
    before = tables()
    for formula in [
        f"Reaction ~ Days + {payload} + (1 | Subject)",
        f"Reaction ~ Days + ({payload} | Subject)",
        f"{payload} ~ Days + (1 | Subject)",
    ]:
        path = tampered(saved, tmp_path, bayesmlm_model=json.dumps({**settings, "formula": formula}))
        with pytest.raises(bm.FitError, match="its formula is refused"):
            bm.load_fit(path)
    assert not marker.exists()
    assert tables() == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: "{not json", "not valid JSON"),
        (lambda s: json.dumps([1, 2]), "not a JSON object"),
        (lambda s: json.dumps({k: v for k, v in s.items() if k != "formula"}), "lack 'formula'"),
        (lambda s: json.dumps({**s, "formula": 3}), "'formula' has the wrong type"),
        (lambda s: json.dumps({**s, "extra": 1}), "unknown keys"),
        (lambda s: json.dumps({**s, "na_action": "exec"}), "na_action"),
        (lambda s: json.dumps({**s, "extra_namespace": ["__import__"]}), "plain names"),
        (lambda s: json.dumps({**s, "categories": {"Subject": ["a"]}}), "unknown keys"),
        (lambda s: json.dumps({**s, "parameterization": {"Subject": "eval"}}), "parameterisation"),
        (lambda s: json.dumps({**s, "priors": {"b": ["Normal", [["mu", "0"]]]}}), "prior for 'b'"),
        (lambda s: json.dumps({**s, "priors": {"b": ["system", [["mu", 0]]]}}), "cannot be rebuilt"),
        (lambda s: json.dumps({**s, "formula": "Reaction ~ nothere + (1 | Subject)"}), "cannot be rebuilt"),
    ],
)
def test_malformed_settings_are_a_fit_error(saved, tmp_path, change, message):
    path = tampered(saved, tmp_path, bayesmlm_model=change(settings_of(saved)))
    with pytest.raises(bm.FitError, match=message):
        bm.load_fit(path)


def layout_of(saved) -> dict:
    with h5py.File(saved, "r") as f:
        raw = f.attrs["bayesmlm_data_layout"]
    return json.loads(raw.decode() if isinstance(raw, bytes) else raw)


def _with_column(layout: dict, k: int, **changes) -> str:
    columns = [dict(c) for c in layout["columns"]]
    columns[k] = {**columns[k], **changes}
    return json.dumps({**layout, "columns": columns})


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda lay: "[]", "not a JSON object"),
        (lambda lay: json.dumps({**lay, "n_rows": "many"}), "n_rows"),
        (lambda lay: json.dumps({**lay, "index": []}), "lacks its columns or index"),
        (lambda lay: _with_column(lay, 0, dtype="object_unsafe"), "unknown kind"),
        (lambda lay: _with_column(lay, 0, kind="pickle"), "unknown kind"),
        (lambda lay: _with_column(lay, 0, key="nothere"), "lack the array"),
        (lambda lay: json.dumps({**lay, "n_rows": 3}), "has shape"),
    ],
)
def test_malformed_data_layout_is_a_fit_error(saved, tmp_path, change, message):
    path = tampered(saved, tmp_path, bayesmlm_data_layout=change(layout_of(saved)))
    with pytest.raises(bm.FitError, match=message):
        bm.load_fit(path)


def test_category_codes_out_of_range_are_a_fit_error(saved, tmp_path):
    layout = layout_of(saved)
    k = next(i for i, c in enumerate(layout["columns"]) if c["kind"] == "category")
    short = _with_column(layout, k, categories=layout["columns"][k]["categories"][:2])
    with pytest.raises(bm.FitError, match="do not fit its categories"):
        bm.load_fit(tampered(saved, tmp_path, bayesmlm_data_layout=short))


def test_malformed_info_is_a_fit_error(saved, tmp_path):
    with pytest.raises(bm.FitError, match="bayesmlm_info"):
        bm.load_fit(tampered(saved, tmp_path, bayesmlm_info="[1]"))


def test_draws_of_the_wrong_shape_are_a_fit_error(saved, tmp_path):
    import arviz as az
    import xarray as xr

    tree = az.from_netcdf(saved)
    post = tree["posterior"].to_dataset()
    chains, draws = post.sizes["chain"], post.sizes["draw"]
    post["sd_Subject"] = (("chain", "draw", "extra"), np.ones((chains, draws, 3)))
    tree["posterior"] = xr.DataTree(post)
    path = tmp_path / "shape.nc"
    tree.to_netcdf(path, engine="h5netcdf")
    with pytest.raises(bm.FitError, match="'sd_Subject' has dims"):
        bm.load_fit(path)
    del post["sigma"]
    tree["posterior"] = xr.DataTree(post)
    tree.to_netcdf(path, engine="h5netcdf")
    with pytest.raises(bm.FitError, match="lacks 'sigma'"):
        bm.load_fit(path)


# -- fuzzing: nothing outside the grammar is ever evaluated -----------------------------------------

NAMES = ["Days", "Subject", "x", "I", "C", "np", "numpy", "log", "eval", "open", "os", "getattr", "Sum"]
ATTRS = ["log", "sqrt", "lib", "__class__", "__globals__", "get", "_x", "os", "system", "__call__"]

atoms = st.one_of(
    st.sampled_from(NAMES),
    st.builds(lambda a, b: f"{a}.{b}", st.sampled_from(NAMES), st.sampled_from(ATTRS)),
    st.integers(-1000, 10**6).map(str),
    st.sampled_from(["'a'", '"__class__"', "1.5", "True", "None", "`Days`"]),
)


def _combine(children):
    return st.one_of(
        st.builds(
            lambda a, op, b: f"{a} {op} {b}",
            children,
            st.sampled_from(["+", "-", "*", "/", "**", "==", "<"]),
            children,
        ),
        st.builds(lambda f, a: f"{f}({a})", st.sampled_from(NAMES + [f"np.{a}" for a in ATTRS]), children),
        st.builds(lambda f, a, b: f"{f}({a}, {b})", st.sampled_from(NAMES), children, children),
        st.builds(
            lambda f, k, a: f"{f}(Days, {k}={a})",
            st.sampled_from(["poly", "C", "I"]),
            st.sampled_from(["degree", "_k", "__class__"]),
            children,
        ),
        st.builds(lambda a: f"({a})", children),
        st.builds(lambda a, b: f"{a}.{b}", children, st.sampled_from(ATTRS)),
    )


expressions = st.recursive(atoms, _combine, max_leaves=8)


@pytest.fixture
def resolved_names(monkeypatch):
    """Record every function name formulae resolves (its only way from a name to an object)."""
    names: list[str] = []
    original = call_resolver.get_function_from_module

    def spy(name, env):
        names.append(name)
        return original(name, env)

    monkeypatch.setattr(call_resolver, "get_function_from_module", spy)
    return names


def test_fuzz_only_grammar_is_evaluated(data, resolved_names):
    """Generated expressions, in and out of the grammar: every function formulae resolves while fitting
    one is an allowed name, nothing is resolved for a refused one, and formulae's tables never change."""
    allowed = allowed_functions()
    counts = {"accepted": 0, "evaluated": 0, "refused": 0, "resolved": 0}

    @settings(max_examples=1000, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
    @given(expr=expressions)
    def check(expr):
        resolved_names.clear()
        before = tables()
        try:
            columns = check_expression(f"Reaction ~ {expr}")
        except bm.FormulaError:
            accepted = False
        else:
            accepted = True
            assert not any(name.startswith("_") or "__" in name for name in columns)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                bm.make_design(f"Reaction ~ {expr} + (1 | Subject)", data)
                counts["evaluated"] += 1
            except bm.BayesMLMError:
                pass
        assert all(name in allowed for name in resolved_names), resolved_names
        counts["resolved"] += bool(resolved_names)
        assert tables() == before
        counts["accepted" if accepted else "refused"] += 1
        if not accepted:
            assert resolved_names == []

    check()
    assert counts["accepted"] >= 100 and counts["refused"] >= 100, counts
    assert counts["evaluated"] >= 20 and counts["resolved"] >= 10, counts  # the spy saw real calls


def test_statsmodels_entry_point_formulas_are_checked(data, tmp_path):
    marker = tmp_path / MARKER
    touch = f"__import__(chr(111)+chr(115)).system({chr_code(f'touch {marker}')})"
    payload = f"I.__globals__.get.__class__.__call__(I.__builtins__.get('eval'), '{touch}')"
    with pytest.raises(bm.FormulaError, match="is not allowed"):
        bm.mixedlm(f"Reaction ~ Days + {payload}", data, groups=data["Subject"])
    with pytest.raises(bm.FormulaError, match="is not allowed"):
        bm.mixedlm("Reaction ~ Days", data, groups=data["Subject"], re_formula=f"~{payload}")
    with pytest.raises(bm.FormulaError, match="is not allowed"):
        bm.mixedlm("Reaction ~ Days", data, groups=data["Subject"], vc_formula={"v": f"0 + {payload}"}).fit()
    assert not marker.exists()


def test_statsmodels_eval_env_is_only_an_explicit_dict_of_functions(data, tmp_path):
    import os
    import subprocess

    marker = tmp_path / MARKER
    with pytest.raises(bm.ArgumentError, match=r"frame depth.*eval_env=\{'name': function\}"):
        bm.mixedlm("Reaction ~ Days", data, groups="Subject", eval_env=1)  # statsmodels' caller frame
    with pytest.raises(bm.ArgumentError, match="frame depth"):
        bm.mixedlm("Reaction ~ Days", data, groups="Subject", eval_env=True)
    with pytest.raises(bm.ArgumentError, match="must be a dict"):
        bm.mixedlm("Reaction ~ Days", data, groups="Subject", eval_env="os")
    refused = [
        ({"os": os}, "eval_env\\['os'\\] must be a function, not module"),
        ({"sp": subprocess}, "must be a function, not module"),
        ({"x": 3}, "must be a function, not int"),
        ({"__import__": __import__}, "starts with '_'"),
        ({"_f": len}, "starts with '_'"),
        ({"a b": len}, "not a valid name"),
        ({"class": len}, "not a valid name"),
    ]
    for env, message in refused:
        with pytest.raises(bm.FormulaError, match=message):
            bm.mixedlm("Reaction ~ Days", data, groups="Subject", eval_env=env)
        with pytest.raises(bm.FormulaError, match=message.replace("eval_env", "extra_namespace")):
            bm.mixedlm("Reaction ~ Days", data, groups="Subject", extra_namespace=env)
    # a function passed in does not open the rest: attribute access on it is still refused
    touch = f"__import__(chr(111)+chr(115)).system({chr_code(f'touch {marker}')})"
    for term in ["sq.__globals__", "sq.__class__.__call__(sq, 1)", touch, "os.system('true')"]:
        with pytest.raises(bm.FormulaError):
            bm.mixedlm(f"Reaction ~ {term}", data, groups="Subject", eval_env={"sq": np.square}).fit()
    assert not marker.exists()
    with pytest.raises(bm.ArgumentError, match="not both"):
        bm.mixedlm("Reaction ~ Days", data, groups="Subject", eval_env={}, extra_namespace={})
