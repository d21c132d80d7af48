"""The statsmodels entry point, linear hypotheses: ``t_test`` and ``wald_test`` on the fixed effects.

statsmodels' ``MixedLMResults.t_test`` tests ``R @ fe_params = 0`` row by row (``R`` with ``k_fe``
columns) and ``wald_test`` tests all rows at once (``R`` over all parameters, or ``(R, q)``). Here the
covariance of the estimates is the fixed effects' (lme4's ``vcov``), so a Wald hypothesis may not put
weight on a variance parameter. The results carry statsmodels' ``ContrastResults`` attribute names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from bayesmlm.exceptions import ArgumentError

__all__ = ["ContrastResults", "Contrasts"]


@dataclass(frozen=True)
class ContrastResults:
    """A test of linear hypotheses, with statsmodels' ``ContrastResults`` attribute names.

    Attributes
    ----------
    effect, sd : ndarray or None
        Estimates ``R @ b - q`` and their standard errors (``t_test`` only).
    statistic : ndarray or float
        z or t statistics (``t_test``), or the Wald chi² or F statistic (``wald_test``).
    pvalue : ndarray or float
    distribution : str
        ``"norm"``, ``"t"``, ``"chi2"`` or ``"F"``.
    df_denom, df_num : float or None
        statsmodels' degrees of freedom: the t or F denominator's, the constraints for chi² (in
        ``df_denom``, as statsmodels stores it), the F numerator's.
    """

    statistic: Any
    pvalue: Any
    distribution: str
    effect: np.ndarray | None = None
    sd: np.ndarray | None = None
    df_denom: float | None = None
    df_num: float | None = None

    @property
    def tvalue(self) -> np.ndarray:
        """The z or t statistics of a ``t_test``."""
        return self.statistic

    def conf_int(self, alpha: float = 0.05) -> np.ndarray:
        """Confidence intervals of :attr:`effect`, one row per hypothesis: ``[lower, upper]``.

        Parameters
        ----------
        alpha : float
            ``1 - alpha`` is the coverage.

        Returns
        -------
        ndarray, shape (k, 2)
        """
        if self.effect is None:
            raise ArgumentError("conf_int needs a t_test (a Wald test has no single effect)")
        q = (
            sps.t.ppf(1 - alpha / 2, self.df_denom)
            if self.distribution == "t"
            else sps.norm.ppf(1 - alpha / 2)
        )
        return np.column_stack([self.effect - q * self.sd, self.effect + q * self.sd])

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """Return the ``t_test`` table as a data frame (statsmodels' columns)."""
        ci = self.conf_int(alpha)
        stat = "t" if self.distribution == "t" else "z"
        return pd.DataFrame(
            {
                "coef": self.effect,
                "std err": self.sd,
                stat: self.statistic,
                f"P>|{stat}|": self.pvalue,
                "Conf. Int. Low": ci[:, 0],
                "Conf. Int. Upp.": ci[:, 1],
            },
            index=[f"c{i}" for i in range(len(self.effect))],
        )


class Contrasts:
    """``t_test`` and ``wald_test`` of a ``MixedLMResults`` (a mixin)."""

    use_t = False  # statsmodels' MixedLM: normal reference distributions unless asked

    def _fe_estimates(self) -> tuple[np.ndarray, np.ndarray]:
        k = len(self._fe_params)
        return self._fe_params.to_numpy(), self._cov_params().to_numpy()[:k, :k]

    def t_test(self, r_matrix: Any, use_t: bool | None = None) -> ContrastResults:
        """Test each linear hypothesis ``R @ fe_params = 0``, as statsmodels' ``MixedLMResults.t_test``.

        Parameters
        ----------
        r_matrix : array_like, shape (m, k_fe)
            One hypothesis per row, over the fixed effects only (as statsmodels requires).
        use_t : bool, optional
            t reference distribution with ``df_resid`` degrees of freedom; the default (False, as
            statsmodels) uses the normal.

        Returns
        -------
        ContrastResults

        Examples
        --------
        >>> import numpy as np
        >>> import bayesmlm as bm
        >>> mdf = bm.mixedlm("Reaction ~ Days", bm.load_dataset("sleepstudy"), groups="Subject").fit()
        >>> test = mdf.t_test(np.array([[0.0, 1.0]]))
        >>> test.effect.round(4), test.sd.round(4)
        (array([10.4673]), array([0.8042]))
        """
        beta, cov = self._fe_estimates()
        R = np.atleast_2d(np.asarray(r_matrix, dtype=float))
        if R.ndim != 2 or R.shape[1] != len(beta):
            raise ArgumentError(f"r_matrix for t-test should have {len(beta)} columns (one per fixed effect)")
        effect = R @ beta
        sd = np.sqrt(np.einsum("ij,jk,ik->i", R, cov, R))
        stat = effect / sd
        use_t = self.use_t if use_t is None else bool(use_t)
        if use_t:
            df = float(self.df_resid)
            return ContrastResults(stat, 2 * sps.t.sf(np.abs(stat), df), "t", effect, sd, df_denom=df)
        return ContrastResults(stat, 2 * sps.norm.sf(np.abs(stat)), "norm", effect, sd)

    def wald_test(
        self,
        r_matrix: Any,
        cov_p: Any = None,
        invcov: Any = None,
        use_f: bool | None = None,
        df_constraints: int | None = None,
        scalar: bool | None = None,
    ) -> ContrastResults:
        """Test the joint hypothesis ``R @ params = q``, as statsmodels' ``wald_test`` (array form).

        Parameters
        ----------
        r_matrix : array_like or tuple
            ``R`` with one column per fixed effect or per parameter (the variance parameters'
            columns must then be 0), or ``(R, q)``. statsmodels' string hypotheses are not parsed.
        cov_p, invcov : None
            Other covariances are not supported.
        use_f : bool, optional
            F test with ``(m, df_resid)`` degrees of freedom; the default is the chi² test.
        df_constraints : int, optional
            The number of constraints (default: the rows of ``R``).
        scalar : bool, optional
            Accepted for statsmodels' signature: the statistic is always a float.

        Returns
        -------
        ContrastResults

        Examples
        --------
        >>> import numpy as np
        >>> import bayesmlm as bm
        >>> mdf = bm.mixedlm("Reaction ~ Days", bm.load_dataset("sleepstudy"), groups="Subject").fit()
        >>> round(mdf.wald_test(np.array([[0.0, 1.0, 0.0]])).statistic, 2)
        169.4
        """
        if cov_p is not None or invcov is not None:
            raise NotImplementedError("wald_test with cov_p or invcov is not supported")
        if isinstance(r_matrix, str) or (isinstance(r_matrix, tuple) and isinstance(r_matrix[0], str)):
            raise NotImplementedError("string hypotheses are not parsed; pass the matrix R (and q)")
        R, q = r_matrix if isinstance(r_matrix, tuple) else (r_matrix, None)
        beta, cov = self._fe_estimates()
        k = len(beta)
        R = np.atleast_2d(np.asarray(R, dtype=float))
        if R.shape[1] not in (k, len(self._params)):
            raise ArgumentError(f"r_matrix needs {k} columns (fixed effects) or {len(self._params)} (all)")
        if np.any(R[:, k:] != 0):
            raise NotImplementedError("a hypothesis on a variance parameter (no standard errors for those)")
        R = R[:, :k]
        q = np.zeros(len(R)) if q is None else np.asarray(q, dtype=float).reshape(-1)
        diff = R @ beta - q
        chi2 = float(diff @ np.linalg.solve(R @ cov @ R.T, diff))
        m = int(df_constraints) if df_constraints is not None else np.linalg.matrix_rank(R)
        if use_f:
            df = float(self.df_resid)
            return ContrastResults(chi2 / m, float(sps.f.sf(chi2 / m, m, df)), "F", df_denom=df, df_num=m)
        return ContrastResults(chi2, float(sps.chi2.sf(chi2, m)), "chi2", df_denom=m)
