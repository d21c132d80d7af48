"""The statsmodels entry point, linear hypotheses: ``t_test``, ``wald_test`` and ``f_test``.

statsmodels' ``MixedLMResults.t_test`` tests ``R @ fe_params = 0`` row by row (``R`` with ``k_fe``
columns); ``wald_test`` and ``f_test`` test all rows at once (``R`` over all parameters, ``(R, q)``, or
text such as ``"Days = 0"``), with ``cov_params()``: lme4's ``vcov`` for the fixed effects and the
inverse Hessian for the variance parameters. The results carry statsmodels' ``ContrastResults``
attribute names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from bayesmlm.exceptions import ArgumentError
from bayesmlm.statsmodels_api.constraints import linear_constraints

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

    @property
    def fvalue(self) -> float:
        """The F statistic of an ``f_test`` (or ``wald_test(use_f=True)``)."""
        if self.distribution != "F":
            raise ArgumentError("fvalue belongs to an F test: use f_test or wald_test(use_f=True)")
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
    """``t_test``, ``wald_test`` and ``f_test`` of a ``MixedLMResults`` (a mixin)."""

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
        """Test the joint hypothesis ``R @ params = q``, as statsmodels' ``wald_test``.

        Parameters
        ----------
        r_matrix : array_like, str or tuple
            ``R`` with one column per parameter (or per fixed effect only), ``(R, q)``, or statsmodels'
            text form over the parameter names: ``"Days = 0"``, ``"Intercept = 250, Days = 10"``
            (see :func:`~bayesmlm.statsmodels_api.constraints.linear_constraints`).
        cov_p : array_like, optional
            Another covariance of all the parameters; the default is :meth:`cov_params`.
        invcov : array_like, optional
            The inverse of ``R @ cov_p @ R.T``, if known.
        use_f : bool, optional
            F test with ``(m, df_resid)`` degrees of freedom; the default is the chi² test.
        df_constraints : int, optional
            The number of constraints (default: the rank of ``R @ cov_p @ R.T``, as statsmodels).
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
        >>> round(mdf.wald_test("Days = 0").statistic, 2)
        169.4
        """
        params = self._params.to_numpy()
        k, n = len(self._fe_params), len(params)
        if isinstance(r_matrix, str):
            R, q = linear_constraints(r_matrix, list(self._param_index))
        else:
            R, q = r_matrix if isinstance(r_matrix, tuple) else (r_matrix, None)
            R = np.atleast_2d(np.asarray(R, dtype=float))
            if R.ndim != 2 or R.shape[1] not in (k, n):
                raise ArgumentError(f"r_matrix needs {k} columns (fixed effects) or {n} (all parameters)")
            if R.shape[1] == k:
                R = np.hstack([R, np.zeros((len(R), n - k))])
            q = np.zeros(len(R)) if q is None else np.broadcast_to(np.asarray(q, dtype=float), len(R))
        diff = R @ params - q
        if invcov is None:
            cov = self._cov_params().to_numpy() if cov_p is None else np.asarray(cov_p, dtype=float)
            rcr = R @ cov @ R.T
            if np.isnan(rcr).any():
                raise NotImplementedError(
                    "a hypothesis on a variance parameter of a model with a categorical variance "
                    "component (no standard errors for those)"
                )
            invcov, m = np.linalg.pinv(rcr), float(np.linalg.matrix_rank(rcr))
        else:
            invcov, m = np.asarray(invcov, dtype=float), float(len(R))
        m = float(df_constraints) if df_constraints is not None else m
        chi2 = float(diff @ invcov @ diff)
        if use_f:
            df = float(self.df_resid)
            return ContrastResults(chi2 / m, float(sps.f.sf(chi2 / m, m, df)), "F", df_denom=df, df_num=m)
        return ContrastResults(chi2, float(sps.chi2.sf(chi2, m)), "chi2", df_denom=m)

    def f_test(self, r_matrix: Any, cov_p: Any = None, invcov: Any = None) -> ContrastResults:
        """F test of the joint hypothesis ``R @ params = q``: :meth:`wald_test` with ``use_f=True``.

        Parameters
        ----------
        r_matrix : array_like, str or tuple
            As in :meth:`wald_test`.
        cov_p, invcov : array_like, optional
            As in :meth:`wald_test`.

        Returns
        -------
        ContrastResults
            ``fvalue`` (= ``statistic``), ``pvalue``, ``df_num``, ``df_denom``.

        Examples
        --------
        >>> import bayesmlm as bm
        >>> mdf = bm.mixedlm("Reaction ~ Days", bm.load_dataset("sleepstudy"), groups="Subject").fit()
        >>> test = mdf.f_test("Days = 0")
        >>> round(test.fvalue, 2), test.df_num, test.df_denom
        (169.4, 1.0, 178.0)
        """
        return self.wald_test(r_matrix, cov_p=cov_p, invcov=invcov, use_f=True, scalar=True)
