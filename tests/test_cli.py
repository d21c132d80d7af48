"""The command line: ``bayesmlm demo`` and ``bayesmlm fit``, their outputs and exit codes."""

import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import pytest

import bayesmlm as bm
from bayesmlm.cli import EXIT_BAD_INPUT, EXIT_INTERRUPTED, EXIT_NO_FILE, main

SMALL = ["--draws", "200", "--chains", "2", "--seed", "3"]


def _png(path):
    data = path.read_bytes()
    return data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000


def test_demo_fits_bayes_and_reml_and_writes_report_and_figures(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), *SMALL]) == 0
    printed = capsys.readouterr().out
    assert "Linear mixed model fit by REML" in printed
    assert "sd(Days|Subject)" in printed and "cor(Intercept,Days|Subject)" in printed
    assert "ICC (posterior" in printed and "adjusted" in printed
    assert _png(out / "shrinkage.png") and _png(out / "ppc.png")
    report = (out / "report.md").read_text()
    for heading in ("## REML fit", "## Bayesian fit", "## Bayes beside REML", "## ICC"):
        assert heading in report
    assert "![ppc](ppc.png)" in report
    assert str(out / "report.md") in printed


def test_fit_a_users_csv_by_reml(tmp_path, capsys):
    path = tmp_path / "boys.csv"
    bm.load_dataset("Oxboys").to_csv(path, index=False)
    out = tmp_path / "r"
    assert main(["fit", str(path), "height ~ age + (age | Subject)", "--reml", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "boys.csv (234 rows)" in printed
    assert "parametric bootstrap" in printed
    assert _png(out / "shrinkage.png") and not (out / "ppc.png").exists()
    assert "## REML fit" in (out / "report.md").read_text()


def test_missing_or_unreadable_file_exits_3(tmp_path, capsys):
    assert main(["fit", str(tmp_path / "nope.csv"), "y ~ x + (1 | g)", "--reml"]) == EXIT_NO_FILE
    assert "no such file" in capsys.readouterr().err
    assert main(["fit", str(tmp_path), "y ~ x + (1 | g)", "--reml"]) == EXIT_NO_FILE
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("Reaction ~ Days + (Days | ", "FormulaError|formula|parenthes"),
        ("Reaction ~ Dayz + (1 | Subject)", "Dayz"),
    ],
)
def test_bad_formula_exits_4_without_writing(tmp_path, capsys, formula, message):
    import re

    path = tmp_path / "sleep.csv"
    bm.load_dataset("sleepstudy").to_csv(path, index=False)
    out = tmp_path / "never"
    assert main(["fit", str(path), formula, "--reml", "--out", str(out)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("bayesmlm: error:") and re.search(message, err)
    assert "Traceback" not in err
    assert not out.exists()


def test_usage_errors_exit_2():
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["fit", "only-a-file.csv"])
    assert exc.value.code == 2


def test_exit_code_reaches_the_shell(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "bayesmlm", "fit", str(tmp_path / "missing.csv"), "y ~ 1 + (1 | g)"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == EXIT_NO_FILE
    assert "no such file" in proc.stderr


def test_ctrl_c_exits_130_with_a_message_not_a_traceback(tmp_path, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt("sampling was interrupted after 12 of 200 draws per chain")

    monkeypatch.setattr(bm.Model, "fit", interrupted)
    code = main(["demo", "--out", str(tmp_path / "demo"), *SMALL])
    err = capsys.readouterr().err
    assert code == EXIT_INTERRUPTED == 130
    assert err.strip() == "bayesmlm: interrupted: sampling was interrupted after 12 of 200 draws per chain"
