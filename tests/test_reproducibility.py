"""A seeded fit gives the same draws and summary in every process: freshly compiled or from the cache."""

import os
import subprocess
import sys

SCRIPT = """
import warnings, bayesmlm as bm
warnings.simplefilter("ignore")
fit = bm.Model("Reaction ~ Days + (1 | Subject)", bm.load_dataset("sleepstudy")).fit(
    seed=5, draws=100, tune=100, chains=2, cores=1, progressbar=False
)
import hashlib
summary = hashlib.sha256(fit.summary().to_csv().encode()).hexdigest()
draws = fit.posterior["fixed"].values.tobytes().hex()[:400]
print(draws, fit.posterior["r_Subject"].values.sum().hex(), summary)
"""


def test_seeded_fit_is_identical_when_compiled_afresh_and_when_cached(tmp_path):
    """With numba's fast-math on, the first (compiling) run's draws differed from the cached runs'."""
    env = dict(os.environ)
    env["PYTENSOR_FLAGS"] = f"base_compiledir={tmp_path / 'pytensor'}"
    env["NUMBA_CACHE_DIR"] = str(tmp_path / "numba")
    runs = [
        subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
        for _ in range(2)
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr[-2000:]
    first, second = (run.stdout.strip().splitlines()[-1] for run in runs)
    assert first == second
