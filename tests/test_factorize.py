"""The NumPy/LAPACK blocked factorisation behind REML/ML: its gradient and its two coupling forms.

The lme4 reference tests check the optimum; these check the objective everywhere else: the exact
gradient against central differences at arbitrary theta, and the sparse coupling of crossed factors
against the dense one (they must give the same deviance and gradient, whichever the cost rule picks).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import bayesmlm as bm
from bayesmlm.linalg.coupling import DenseCoupling, SparseCoupling, coupling_blocks
from bayesmlm.linalg.system import blocked_system
from bayesmlm.reml.objective import deviance_and_gradient


def _crossed(seed: int = 3) -> pd.DataFrame:
    """30 subjects x 12 items, incomplete (each subject sees 8 items), slopes on both factors."""
    rng = np.random.default_rng(seed)
    rows = [(s, i) for s in range(30) for i in rng.choice(12, 8, replace=False)]
    s, i = np.array(rows).T
    x = rng.normal(size=s.size)
    y = (
        1
        + 0.5 * x
        + rng.normal(0, 0.7, 30)[s]
        + rng.normal(0, 0.4, 12)[i] * (1 + x)
        + rng.normal(size=s.size)
    )
    return pd.DataFrame({"y": y, "x": x, "subj": [f"s{k}" for k in s], "item": [f"i{k}" for k in i]})


CASES = {
    "sleepstudy correlated": ("Reaction ~ Days + (Days | Subject)", bm.load_dataset("sleepstudy")),
    "Penicillin crossed": ("diameter ~ 1 + (1 | plate) + (1 | sample)", bm.load_dataset("Penicillin")),
    "crossed slopes": ("y ~ x + (1 + x | subj) + (1 + x | item)", _crossed()),
    "three factors": (
        "y ~ x + (1 | subj) + (x || item) + (1 | grp)",
        _crossed().assign(grp=lambda d: d.subj.str[-1]),
    ),
}


@pytest.fixture(scope="module", params=list(CASES))
def system(request):
    formula, data = CASES[request.param]
    model = bm.Model(formula, data)
    stats = model.scaled_cross_products
    return model.structure, blocked_system(model.structure, stats), stats


def _thetas(structure, n: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    base = structure.theta_initial()
    return [
        np.where(base > 0, rng.uniform(0.2, 2.0, base.size), rng.normal(0, 0.6, base.size)) for _ in range(n)
    ]


@pytest.mark.parametrize("reml", [True, False])
def test_gradient_matches_central_differences(system, reml):
    structure, sys_, _ = system
    for theta in _thetas(structure):
        _, grad = deviance_and_gradient(theta, sys_, reml)
        h = 1e-6
        numeric = np.array(
            [
                (
                    deviance_and_gradient(theta + h * e, sys_, reml)[0]
                    - deviance_and_gradient(theta - h * e, sys_, reml)[0]
                )
                / (2 * h)
                for e in np.eye(theta.size)
            ]
        )
        np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-5)


def test_sparse_and_dense_coupling_agree(system):
    structure, sys_, stats = system
    G = coupling_blocks(stats.ztz_rest1, stats.ztx1, stats.zty1)
    forms = [dataclasses.replace(sys_, coupling=c) for c in (DenseCoupling(G), SparseCoupling(G))]
    for theta in _thetas(structure):
        for reml in (True, False):
            (fd, gd), (fs, gs) = (deviance_and_gradient(theta, f, reml) for f in forms)
            assert fs == pytest.approx(fd, rel=1e-12, abs=1e-9)
            np.testing.assert_allclose(gs, gd, rtol=1e-9, atol=1e-9)


def test_insteval_layout_is_sparse_and_small():
    """InstEval: students block-diagonal, the 1,128 lecturers + 14 departments + X + y dense, their
    coupling to the students sparse (each student meets a few lecturers)."""
    data = bm.load_dataset("InstEval")
    model = bm.Model("y ~ service + (1|s) + (1|d) + (1|dept)", data)
    sys_ = blocked_system(model.structure, model.scaled_cross_products)
    assert sys_.first.group == "s" and sys_.first.levels == 2972
    assert sys_.n_trailing == 1128 + 14 + 2 + 1
    assert isinstance(sys_.coupling, SparseCoupling)
    stats = model.scaled_cross_products
    dense = dataclasses.replace(
        sys_, coupling=DenseCoupling(coupling_blocks(stats.ztz_rest1, stats.ztx1, stats.zty1))
    )
    theta = np.array([0.28, 0.44, 0.07])
    (fs, gs), (fd, gd) = deviance_and_gradient(theta, sys_, True), deviance_and_gradient(theta, dense, True)
    assert fs == pytest.approx(fd, rel=1e-12)
    np.testing.assert_allclose(gs, gd, rtol=1e-8, atol=1e-8)
