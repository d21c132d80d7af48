"""Stage 4a, REML/ML: the profiled log-likelihood at given covariance parameters, group by group.

statsmodels' ``MixedLM.loglike(params, profile_fe=...)`` evaluates the (restricted) log-likelihood
of a linear mixed model at any relative covariance ``Psi = cov_re / scale`` and variance components
``vcomp / scale``, with the residual variance profiled out and, optionally, the fixed effects replaced
by their GLS estimates. :func:`profiled_loglike` computes it from each group's rows with dense
``n_i x n_i`` algebra (``V_i = Z_i Psi Z_i' + sum_k v_k w_ik w_ik' + I``), which is exact and
independent of lme4's blocked factor; at the optimum it equals the fit's log-likelihood.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["gls_fixed_effects", "profiled_loglike", "profiled_scale", "vc_cov", "vc_matrices"]


def vc_matrices(Wi: np.ndarray | Sequence[np.ndarray]) -> list[np.ndarray]:
    """Return one group's variance-component matrices, one ``(n_i, m_k)`` matrix per component.

    ``Wi`` is either such a sequence (statsmodels' ``exog_vc``: a component may have several columns,
    all sharing its variance) or an ``(n_i, k)`` array holding one column per component.

    Examples
    --------
    >>> [m.shape for m in vc_matrices(np.ones((3, 2)))]
    [(3, 1), (3, 1)]
    """
    if isinstance(Wi, np.ndarray):
        return [Wi[:, [k]] for k in range(Wi.shape[1])]
    return [np.asarray(m, dtype=float).reshape(len(m), -1) for m in Wi]


def vc_cov(Wi: np.ndarray | Sequence[np.ndarray], vcomp: np.ndarray, n: int) -> np.ndarray:
    """Return ``sum_k vcomp_k W_ik W_ik'``, the variance components' part of one group's ``V_i``.

    Examples
    --------
    >>> vc_cov([np.array([[1.0, 0.0], [0.0, 1.0]])], np.array([2.0]), 2)
    array([[2., 0.],
           [0., 2.]])
    """
    out = np.zeros((n, n))
    for v, m in zip(vcomp, vc_matrices(Wi), strict=True):
        out += v * (m @ m.T)
    return out


def _group_solves(
    X: Sequence[np.ndarray],
    Z: Sequence[np.ndarray],
    W: Sequence[np.ndarray],
    psi: np.ndarray,
    vcomp: np.ndarray,
):
    """Yield, per group, (log det V_i, the Cholesky factor of V_i)."""
    for Xi, Zi, Wi in zip(X, Z, W, strict=True):
        V = Zi @ psi @ Zi.T + vc_cov(Wi, vcomp, len(Xi)) + np.eye(len(Xi))
        chol = np.linalg.cholesky(V)
        yield 2.0 * np.log(np.diag(chol)).sum(), chol


def _solve(chol: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.linalg.solve(chol.T, np.linalg.solve(chol, b))


def gls_fixed_effects(y, X, Z, W, psi, vcomp) -> np.ndarray:
    """GLS estimates of the fixed effects at relative covariances ``psi`` and ``vcomp``.

    Parameters
    ----------
    y, X, Z, W : sequence of ndarray
        Per group: the response ``(n_i,)``, the fixed-effects design ``(n_i, p)``, the correlated
        random effects' design ``(n_i, q)`` and the variance components: an ``(n_i, k)`` array of one
        column per component, or a list of one ``(n_i, m_k)`` matrix per component (the ``m_k``
        random effects of component ``k`` share its variance, see :func:`vc_matrices`).
    psi : ndarray, shape (q, q)
        ``cov_re / scale``.
    vcomp : ndarray, shape (k,)
        ``vcomp / scale``.

    Returns
    -------
    ndarray, shape (p,)

    Examples
    --------
    >>> import numpy as np
    >>> y = [np.array([1.0, 2.0]), np.array([4.0, 5.0])]
    >>> X = [np.ones((2, 1))] * 2
    >>> Z, W = [np.ones((2, 1))] * 2, [np.zeros((2, 0))] * 2
    >>> gls_fixed_effects(y, X, Z, W, np.eye(1), np.zeros(0))
    array([3.])
    """
    p = X[0].shape[1]
    xvx, xvy = np.zeros((p, p)), np.zeros(p)
    for (_, chol), Xi, yi in zip(_group_solves(X, Z, W, psi, vcomp), X, y, strict=True):
        xvx += Xi.T @ _solve(chol, Xi)
        xvy += Xi.T @ _solve(chol, yi)
    return np.linalg.solve(xvx, xvy)


def profiled_loglike(y, X, Z, W, psi, vcomp, beta, reml: bool) -> float:
    """Return the log-likelihood with the residual variance profiled out, as statsmodels' ``loglike``.

    Parameters
    ----------
    y, X, Z, W, psi, vcomp
        As in :func:`gls_fixed_effects`.
    beta : ndarray, shape (p,)
        The fixed effects (their GLS estimates give the profile over them too).
    reml : bool
        The restricted log-likelihood (REML) or the likelihood (ML).

    Returns
    -------
    float

    Examples
    --------
    >>> import numpy as np
    >>> y = [np.array([1.0, 2.0]), np.array([4.0, 5.0])]
    >>> X, Z, W = [np.ones((2, 1))] * 2, [np.ones((2, 1))] * 2, [np.zeros((2, 0))] * 2
    >>> beta = np.array([3.0])
    >>> round(profiled_loglike(y, X, Z, W, np.eye(1), np.zeros(0), beta, reml=False), 4)  # statsmodels' too
    -6.7744
    """
    n = sum(len(yi) for yi in y)
    p = X[0].shape[1]
    logdet, qf, xvx = 0.0, 0.0, np.zeros((p, p))
    for (ld, chol), Xi, yi in zip(_group_solves(X, Z, W, psi, vcomp), X, y, strict=True):
        r = yi - Xi @ beta
        logdet += ld
        qf += r @ _solve(chol, r)
        if reml:
            xvx += Xi.T @ _solve(chol, Xi)
    m = n - p if reml else n
    out = -logdet / 2 - m * np.log(qf) / 2 - m * np.log(2 * np.pi) / 2 + m * np.log(m) / 2 - m / 2
    if reml:
        out -= np.linalg.slogdet(xvx)[1] / 2
    return float(out)


def profiled_scale(y, X, Z, W, psi, vcomp, beta, reml: bool) -> float:
    """Return the residual variance that the profiled log-likelihood implies (statsmodels' ``get_scale``).

    Parameters
    ----------
    y, X, Z, W, psi, vcomp, beta, reml
        As in :func:`profiled_loglike`.

    Returns
    -------
    float
        ``r' V^{-1} r / (n - p)`` for REML, ``/ n`` for ML.

    Examples
    --------
    >>> import numpy as np
    >>> y = [np.array([1.0, 2.0]), np.array([4.0, 5.0])]
    >>> X, Z, W = [np.ones((2, 1))] * 2, [np.ones((2, 1))] * 2, [np.zeros((2, 0))] * 2
    >>> round(profiled_scale(y, X, Z, W, np.eye(1), np.zeros(0), np.array([3.0]), reml=False), 4)
    1.0
    """
    n = sum(len(yi) for yi in y)
    qf = 0.0
    for (_, chol), Xi, yi in zip(_group_solves(X, Z, W, psi, vcomp), X, y, strict=True):
        r = yi - Xi @ beta
        qf += r @ _solve(chol, r)
    return float(qf / (n - X[0].shape[1] if reml else n))
