"""Stage 2, the design: the internal, well-conditioned parameterisation REML/ML is fitted in.

A linear mixed model is unchanged by an affine change of its columns: with ``X' = X A``, each factor's
``Z' = Z A_f`` and ``y' = (y - c) / s`` the model is the same, with ``β = s A β' + c e₀`` (``e₀`` the
intercept), ``Σ_f = s² A_f Σ'_f A_fᵀ`` and ``σ = s σ'``. Fitting in the primed parameterisation, where
every column is centred (when an intercept can absorb the shift) and of unit spread, makes the REML/ML
optimum the same whatever the origin and the units of a covariate or of the response: age in years or
centred, days counted from 0 or from 20, grams or tonnes, ``y`` or ``y + 1e12``. It also keeps the
sufficient statistics free of cancellation (``y'y`` of ``y + 1e8``) and of overflow (``y × 1e200``).

Which changes are exact: in ``X`` any column may be scaled, and centred if ``X`` has an intercept; in a
correlated random block ``(1 + x | g)`` the same (the block's intercept absorbs the shift, and ``Σ``
transforms as ``A Σ Aᵀ``); a block without an intercept, such as each term of ``(x || g)`` or
``(0 + x | g)``, is only scaled, since shifting it would change the model; the response is centred
only when ``X`` has an intercept.

:class:`Scaling` maps every estimate back exactly: theta (lme4's relative factor, through a Cholesky
factorisation of ``A_f Λ' Λ'ᵀ A_fᵀ`` that allows singular, boundary fits), the fixed effects and their
covariance, the random effects and their conditional covariances, and the (restricted) deviance:
``+ 2 n log s`` for ML, ``+ 2 (n - p) log s - 2 log|det A|`` for REML (lme4's REML criterion depends on
the units of ``X``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bayesmlm.design.covariance import RandomStructure
from bayesmlm.design.evaluate import Design

__all__ = ["Scaling", "choose_scaling", "psd_cholesky"]


def _is_ones(column: np.ndarray) -> bool:
    return bool(column.size) and bool(np.all(column == 1.0))


def _centre_and_scale(values: np.ndarray, centre: bool) -> tuple[float, float]:
    """Return a column's centre (0 unless ``centre``) and spread, computed without overflow.

    The column is first divided by its largest magnitude, so columns such as ``y × 1e200`` (whose
    squares overflow) or ``y × 1e-170`` (whose squares underflow) get their true spread.
    """
    values = np.asarray(values, dtype=float)
    big = float(np.max(np.abs(values))) if values.size else 0.0
    if big == 0.0 or not np.isfinite(big):
        return 0.0, 1.0
    unit = values / big
    c = float(np.mean(unit)) if centre else 0.0
    spread = float(np.sqrt(np.mean((unit - c) ** 2)))
    if spread <= 1e-12:  # constant after centring: keep its own magnitude as the unit
        spread = float(np.sqrt(np.mean(unit**2))) if not centre else 1.0
    return c * big, spread * big


def _column_map(columns: np.ndarray, intercept: int | None) -> np.ndarray:
    """Return ``A`` (k×k) with ``columns @ A`` centred (given an intercept column) and of unit spread."""
    k = columns.shape[1]
    A = np.eye(k)
    for j in range(k):
        if j == intercept:
            continue
        c, s = _centre_and_scale(columns[:, j], centre=intercept is not None)
        A[j, j] = 1.0 / s
        if intercept is not None:
            A[intercept, j] = -c / s
    return A


def psd_cholesky(M: np.ndarray) -> np.ndarray:
    """Factor a symmetric positive semi-definite ``M`` as ``L Lᵀ``, ``L`` lower triangular, ``L_jj >= 0``.

    A column whose pivot is zero to the rounding of its diagonal entry is zero, so singular (boundary)
    covariance matrices, a zero variance or a correlation of ±1, factor exactly as lme4 represents them;
    the test is relative to each diagonal entry, so columns in very different units factor alike.

    Examples
    --------
    >>> psd_cholesky(np.array([[4.0, 2.0], [2.0, 1.0]]))  # correlation 1: rank one
    array([[2., 0.],
           [1., 0.]])
    """
    q = M.shape[0]
    L = np.zeros((q, q))
    for j in range(q):
        d = M[j, j] - L[j, :j] @ L[j, :j]
        if d <= 1e-12 * M[j, j] or M[j, j] <= np.finfo(float).tiny:  # zero to the rounding of M[j, j]
            continue
        L[j, j] = np.sqrt(d)
        L[j + 1 :, j] = (M[j + 1 :, j] - L[j + 1 :, :j] @ L[j, :j]) / L[j, j]
    return L


@dataclass(frozen=True, eq=False)
class Scaling:
    """An exact affine change of a model's columns: ``X' = X A``, ``Z'_f = Z_f A_f``, ``y' = (y - c) / s``.

    Attributes
    ----------
    x_map : ndarray, shape (p, p)
    z_maps : tuple of ndarray
        Per factor (in ``structure.factors`` order), shape (q, q), block diagonal over its blocks.
    y_shift, y_scale : float
        ``c`` (0 unless ``X`` has an intercept) and ``s``.
    intercept : int or None
        Position of the intercept column of ``X``.
    """

    x_map: np.ndarray
    z_maps: tuple[np.ndarray, ...]
    y_shift: float
    y_scale: float
    intercept: int | None

    # -- the data, into the internal parameterisation ---------------------------------------------
    def x(self, X: np.ndarray) -> np.ndarray:
        """Return the fixed-effects columns in the internal parameterisation."""
        return np.asarray(X, dtype=float) @ self.x_map

    def z(self, k: int, Z: np.ndarray) -> np.ndarray:
        """Return factor ``k``'s term columns in the internal parameterisation."""
        return np.asarray(Z, dtype=float) @ self.z_maps[k]

    def y(self, y: np.ndarray) -> np.ndarray:
        """Return the response in the internal parameterisation."""
        return (np.asarray(y, dtype=float) - self.y_shift) / self.y_scale

    # -- estimates, back to the user's parameterisation ---------------------------------------------
    def theta_to_user(self, structure: RandomStructure, theta: np.ndarray) -> np.ndarray:
        """Return lme4's theta for the user's columns from the internal one (exact, boundary fits too)."""
        parts = []
        for f, A in zip(structure.factors, self.z_maps, strict=True):
            lam = f.relative_factor(theta)
            user = np.zeros_like(lam)
            for _, start, size in f.blocks():
                b = slice(start, start + size)
                ab = A[b, b] @ lam[b, b]
                user[b, b] = psd_cholesky(ab @ ab.T)
            rows, cols = f.lower_index
            parts.append(user[rows, cols])
        return np.concatenate(parts) if parts else np.zeros(0)

    def theta_to_internal(self, structure: RandomStructure, theta: np.ndarray) -> np.ndarray:
        """Return the internal theta of a user-scale theta (for starting values)."""
        parts = []
        for f, A in zip(structure.factors, self.z_maps, strict=True):
            lam = f.relative_factor(theta)
            internal = np.zeros_like(lam)
            for _, start, size in f.blocks():
                b = slice(start, start + size)
                ab = np.linalg.solve(A[b, b], lam[b, b])
                internal[b, b] = psd_cholesky(ab @ ab.T)
            rows, cols = f.lower_index
            parts.append(internal[rows, cols])
        return np.concatenate(parts) if parts else np.zeros(0)

    def beta_to_user(self, beta: np.ndarray) -> np.ndarray:
        """Return the fixed effects for the user's columns: ``s A β' + c e₀``."""
        out = self.y_scale * (self.x_map @ np.asarray(beta, dtype=float))
        if self.intercept is not None:
            out[self.intercept] += self.y_shift
        return out

    def vcov_to_user(self, vcov: np.ndarray) -> np.ndarray:
        """Return the covariance of the fixed effects for the user's columns: ``s² A V' Aᵀ``."""
        return np.float64(self.y_scale) ** 2 * self.unit_vcov(vcov)

    def unit_vcov(self, vcov: np.ndarray) -> np.ndarray:
        """Return ``A V' Aᵀ``: the fixed effects' covariance for the user's columns, in units of ``s²``."""
        out = self.x_map @ vcov @ self.x_map.T
        return (out + out.T) / 2

    def covariance_to_user(self, k: int, cov: np.ndarray) -> np.ndarray:
        """Return factor ``k``'s covariance (q×q, or a stack) for the user's columns: ``s² A Σ' Aᵀ``."""
        return np.float64(self.y_scale) ** 2 * self.unit_covariance(k, cov)

    def unit_covariance(self, k: int, cov: np.ndarray) -> np.ndarray:
        """Return ``A_f Σ' A_fᵀ``: factor ``k``'s covariance for the user's columns, in units of ``s²``."""
        A = self.z_maps[k]
        out = A @ cov @ A.T
        return (out + np.swapaxes(out, -1, -2)) / 2  # exactly symmetric, as a covariance

    def effects_to_user(self, k: int, effects: np.ndarray) -> np.ndarray:
        """Return factor ``k``'s random effects (levels × q) for the user's columns: ``s b' Aᵀ`` by row."""
        return self.y_scale * (effects @ self.z_maps[k].T)

    def deviance_to_user(self, deviance: float, n: int, p: int, reml: bool) -> float:
        """Return the ML deviance or REML criterion for the user's data, from the internal one."""
        if reml:
            log_det = float(np.linalg.slogdet(self.x_map)[1]) if p else 0.0
            return deviance + 2.0 * (n - p) * np.log(self.y_scale) - 2.0 * log_det
        return deviance + 2.0 * n * np.log(self.y_scale)


def choose_scaling(design: Design, structure: RandomStructure) -> Scaling:
    """Centre and scale every column the model allows (see the module docstring).

    Examples
    --------
    >>> import bayesmlm as bm
    >>> d = bm.load_dataset("sleepstudy")
    >>> d["Days"] = d["Days"] + 20
    >>> m = bm.Model("Reaction ~ Days + (Days | Subject)", d)
    >>> s = choose_scaling(m.design, m.structure)
    >>> Z = s.z(0, m.structure.factors[0].Z)
    >>> round(float(Z[:, 1].mean()), 12), round(float(Z[:, 1].std()), 12)
    (0.0, 1.0)
    """
    X = np.asarray(design.X, dtype=float)
    intercept = next(
        (j for j, name in enumerate(design.fixed_names) if name == "Intercept" and _is_ones(X[:, j])), None
    )
    x_map = _column_map(X, intercept)
    z_maps = []
    for f in structure.factors:
        A = np.eye(f.q)
        for _, start, size in f.blocks():
            b = slice(start, start + size)
            Zb = f.Z[:, b]
            block_intercept = next(
                (j for j in range(size) if f.term_names[start + j] == "Intercept" and _is_ones(Zb[:, j])),
                None,
            )
            A[b, b] = _column_map(Zb, block_intercept)
        z_maps.append(A)
    y_shift, y_scale = _centre_and_scale(design.y, centre=intercept is not None)
    return Scaling(x_map, tuple(z_maps), y_shift, y_scale, intercept)


def scaling_from_moments(design: Design, structure: RandomStructure) -> Scaling:
    """Return :func:`choose_scaling`'s centring and scaling of ``X`` and ``y``, computed from moments.

    For a design without rows (reduced on a Dask cluster) the columns' means and sds come from the
    reduction. The group-effect columns are left as they are (identity maps). The statistics of such a
    design are formed in this frame from the centred partition sums
    (:meth:`~bayesmlm.design.summary.ReducedStatistics.scaled_cross_products`), so a response around
    1e6 keeps its digits as it does on the pandas path (its logLik was off by 0.24 before).
    """
    from bayesmlm.design.moments import fixed_moments, response_moments

    x, y = fixed_moments(design), response_moments(design)
    names = list(design.fixed_names)
    intercept = names.index("Intercept") if "Intercept" in names else None
    A = np.eye(len(names))
    for j in range(len(names)):
        if j == intercept:
            continue
        sd = float(x.sd[j]) if x.sd[j] > 0 else (abs(float(x.mean[j])) or 1.0)
        A[j, j] = 1.0 / sd
        if intercept is not None:
            A[intercept, j] = -float(x.mean[j]) / sd
    y_shift = float(y.mean[0]) if intercept is not None else 0.0
    y_scale = float(y.sd[0]) if y.sd[0] > 0 else 1.0
    z_maps = tuple(np.eye(f.q) for f in structure.factors)
    return Scaling(A, z_maps, y_shift, y_scale, intercept)
