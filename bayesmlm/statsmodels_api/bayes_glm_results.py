"""The statsmodels entry point for GLMMs, results: ``BayesMixedGLMResults`` in statsmodels' shapes.

The attributes are statsmodels' (``params`` = fixed effects, log sds, random effects in that order;
``fe_mean``/``fe_sd``, ``vcp_mean``/``vcp_sd``, ``vc_mean``/``vc_sd``, ``cov_params()``,
``random_effects(term)``, ``predict(exog, linear)``, ``summary()``, ``optim_retvals``), read from the
bayesmlm fit behind them: a :class:`~bayesmlm.GeneralizedLikelihoodFit` (``fit_map``, Laplace ML) or a
:class:`~bayesmlm.GeneralizedFit` (``fit_vb``, NUTS). Nothing is re-estimated here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import OptimizeResult

from bayesmlm.design.names import sd_names
from bayesmlm.statsmodels_api.summary import _table_lines

__all__ = ["BayesMixedGLMResults", "BayesMixedGLMSummary"]


class BayesMixedGLMSummary:
    """The printable summary of :class:`BayesMixedGLMResults`, laid out as statsmodels' ``summary2``.

    Attributes
    ----------
    tables : list of DataFrame
        One table: ``Type`` (M: mean structure, V: variance structure), ``Post. Mean``, ``Post. SD``
        and, for the variance rows, ``SD``, ``SD (LB)``, ``SD (UB)`` (``exp(mean ∓ 2 sd)``, formatted).
    title : str
    extra_txt : list of str
    """

    def __init__(self, table: pd.DataFrame, title: str, extra: list[str]):
        self.tables, self.title, self.extra_txt = [table], title, list(extra)

    def as_text(self) -> str:
        """Return the summary as text (what ``print`` shows)."""
        table = self.tables[0]
        rows = [[f"{v:.4f}" if isinstance(v, float) else str(v) for v in row] for row in table.to_numpy()]
        lines = _table_lines(rows, list(table.columns), [str(i) for i in table.index], "r", " ")
        width = len(lines[0])
        lines[0] = "=" * width
        return "\n".join([self.title.center(width).rstrip(), *lines, "=" * width, *self.extra_txt, ""])

    def __str__(self) -> str:
        return self.as_text()

    __repr__ = __str__

    def _repr_html_(self) -> str:
        text = self.as_text().replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        return f"<pre>{text}</pre>"


class BayesMixedGLMResults:
    """statsmodels-shaped results of ``fit_map()`` (Laplace ML) or ``fit_vb()`` (NUTS).

    Attributes
    ----------
    fe_mean, fe_sd : ndarray
        Fixed effects and their sds (ML estimates and standard errors for ``fit_map``).
    vcp_mean, vcp_sd : ndarray
        Log standard deviation of each variance component and its sd (``fit_map``: from the Hessian
        of the deviance by the delta method, NaN where lme4 computes no Hessian (a boundary fit)).
    vc_mean, vc_sd : ndarray
        The random effects (all levels of each component in turn) and their sds (``fit_map``: the
        conditional modes and conditional sds).
    params : ndarray
        ``fe_mean``, ``vcp_mean``, ``vc_mean`` in that order, as statsmodels.
    optim_retvals : OptimizeResult or None
        ``fit_map``: lme4's optimisation as a scipy ``OptimizeResult``; ``fit_vb``: None (no optimiser).
    fit : GeneralizedFit or GeneralizedLikelihoodFit
        The bayesmlm fit behind it.
    """

    def __init__(self, model, fit):
        self.model, self.fit = model, fit
        self.bayes = hasattr(fit, "posterior")
        structure = model.bayesmlm_model.structure
        fe_var, vcp_var = (self._bayes_moments if self.bayes else self._ml_moments)(structure)
        self.fe_sd, self.vcp_sd = np.sqrt(fe_var), np.sqrt(vcp_var)
        means, sds = [], []
        for k, t in model.components:
            f = structure.factors[k]
            term = f.term_names[t]
            if self.bayes:
                part = fit.random_effects(f.group).xs(term, level="term")
                means.append(part["mean"].to_numpy())
                sds.append(part["sd"].to_numpy())
            else:
                re = fit.random_effects(f.group, conditional_sd=True)
                means.append(re[term].to_numpy())
                sds.append(re[f"{term}_sd"].to_numpy())
        self.vc_mean = np.concatenate(means).astype(float)
        self.vc_sd = np.concatenate(sds).astype(float)
        self.params = np.concatenate([self.fe_mean, self.vcp_mean, self.vc_mean])
        self.optim_retvals = None if self.bayes else self._optimize_result()

    # -- reading the fit ------------------------------------------------------------------------------
    def _bayes_moments(self, structure) -> tuple[np.ndarray, np.ndarray]:
        draws = self.fit.parameter_draws()
        names = sd_names(structure)
        fe = np.stack([np.ravel(draws[n]) for n in self.model.fep_names], axis=1)
        logs = np.stack([np.log(np.ravel(draws[names[k][t]])) for k, t in self.model.components], axis=1)
        self._draws = np.concatenate([fe, logs], axis=1)
        self.fe_mean, self.vcp_mean = fe.mean(axis=0), logs.mean(axis=0)
        return fe.var(axis=0, ddof=1), logs.var(axis=0, ddof=1)

    def _ml_moments(self, structure) -> tuple[np.ndarray, np.ndarray]:
        fit, est = self.fit, self.fit.estimates
        self.fe_mean = fit.fixed_effects["estimate"].to_numpy()
        sd = np.array(
            [np.sqrt(est.covariances[structure.factors[k].group][t, t]) for k, t in self.model.components]
        )
        with np.errstate(divide="ignore"):  # a variance at the boundary: log sd -inf
            self.vcp_mean = np.log(sd)
        # (log sd, fe) covariance by the delta method from the (θ, β) covariance; a scalar term's sd is |θ|
        k_fe, k_vcp = len(self.fe_mean), len(sd)
        self._joint = np.full((k_fe + k_vcp, k_fe + k_vcp), np.nan)
        self._joint[:k_fe, :k_fe] = est.vcov
        joint = est.theta_beta_vcov
        if joint is not None:
            n_theta = len(est.theta)
            index, scale = [], []
            for k, _ in self.model.components:
                f = structure.factors[k]
                index.append(f.theta_slice.start if f.q == 1 else -1)
                scale.append(1.0 / sd[len(index) - 1])
            for a, (i, si) in enumerate(zip(index, scale, strict=True)):
                if i < 0:
                    continue
                self._joint[k_fe + a, :k_fe] = self._joint[:k_fe, k_fe + a] = si * joint[i, n_theta:]
                for b, (j, sj) in enumerate(zip(index, scale, strict=True)):
                    if j >= 0:
                        self._joint[k_fe + a, k_fe + b] = si * sj * joint[i, j]
        return np.diag(est.vcov).copy(), np.diag(self._joint)[k_fe:].copy()

    def _optimize_result(self) -> OptimizeResult:
        opt = self.fit.opt
        return OptimizeResult(
            x=np.asarray(opt.x, dtype=float),
            fun=float(opt.objective),
            success=bool(opt.converged),
            message=str(opt.message),
            nfev=int(opt.n_evaluations),
            hess=None if opt.hessian is None else np.asarray(opt.hessian, dtype=float),
        )

    # -- statsmodels' methods ----------------------------------------------------------------------------
    def cov_params(self) -> pd.DataFrame | pd.Series:
        """Covariance of the estimates over ``model.names`` (statsmodels' types).

        ``fit_vb`` (NUTS): a Series of posterior variances, as statsmodels' variational fit returns.
        ``fit_map`` (Laplace ML): a DataFrame; the fixed effects and log sds block is the inverse
        Hessian of the deviance (×2, log sds by the delta method), the random effects' diagonal their
        conditional variances; the cross terms with the random effects are not computed (NaN).
        """
        names = self.model.names
        if self.bayes:
            return pd.Series(np.concatenate([self.fe_sd**2, self.vcp_sd**2, self.vc_sd**2]), index=names)
        k = len(self.fe_mean) + len(self.vcp_mean)
        out = np.full((len(names), len(names)), np.nan)
        out[:k, :k] = self._joint
        out[k:, k:][np.diag_indices(len(self.vc_mean))] = self.vc_sd**2
        return pd.DataFrame(out, index=names, columns=names)

    def predict(self, exog=None, linear: bool = False) -> np.ndarray:
        """Return the population-level mean (``linkinv(exog @ fe_mean)``), or the linear predictor.

        As statsmodels: from the fixed effects only, at ``fe_mean``. ``exog`` is a fixed-effects design
        matrix (columns ``model.fep_names``), or a DataFrame of new data for the formula's fixed part;
        the fitted rows if omitted.
        """
        design = self.model.bayesmlm_model.design
        if exog is None:
            X = design.X
        elif isinstance(exog, pd.DataFrame) and list(exog.columns) != self.model.fep_names:
            X = design.fixed_design(exog)
        else:
            X = np.asarray(exog, dtype=float)
        eta = np.asarray(X, dtype=float) @ self.fe_mean
        if exog is None and design.offset is not None:
            eta = eta + np.asarray(design.offset, dtype=float)
        return eta if linear else np.asarray(self.model.bayesmlm_model.family.link.linkinv(eta), dtype=float)

    def random_effects(self, term: str | None = None) -> pd.DataFrame:
        """Means and sds of the random effects (columns ``Mean``, ``SD``, index ``model.vc_names``).

        ``term`` is a key of ``vc_formulas`` (statsmodels: a name in ``model.vcp_names``): that
        component's effects only.
        """
        keep = np.ones(len(self.vc_mean), dtype=bool)
        if term is not None:
            keep = self.model.ident == self.model.vcp_names.index(term)
        names = [n for n, k in zip(self.model.vc_names, keep, strict=True) if k]
        return pd.DataFrame({"Mean": self.vc_mean[keep], "SD": self.vc_sd[keep]}, index=names)

    def summary(self) -> BayesMixedGLMSummary:
        """Summarise the fixed effects and log sds (statsmodels' table; ``.tables[0]`` the DataFrame)."""
        m = self.model
        k_fe = len(m.fep_names)
        mean = np.concatenate([self.fe_mean, self.vcp_mean])
        sd = np.concatenate([self.fe_sd, self.vcp_sd])
        table = pd.DataFrame(
            {"Type": ["M"] * k_fe + ["V"] * len(m.vcp_names), "Post. Mean": mean, "Post. SD": sd},
            index=[*m.fep_names, *m.vcp_names],
        )
        for col, value in (("SD", mean), ("SD (LB)", mean - 2 * sd), ("SD (UB)", mean + 2 * sd)):
            table[col] = ["" if i < k_fe else f"{np.exp(v):.3f}" for i, v in enumerate(value)]
        how = "NUTS posterior" if self.bayes else "Laplace maximum likelihood (glmer)"
        title = f"{m.bayesmlm_model.family.name.capitalize()} Mixed GLM Results"
        return BayesMixedGLMSummary(
            table,
            title,
            [
                "Parameter types are mean structure (M) and variance structure (V)",
                "Variance parameters are modeled as log standard deviations",
                f"Fitted by bayesmlm: {how}",
            ],
        )

    def __repr__(self) -> str:
        how = "NUTS" if self.bayes else "Laplace ML"
        return f"<bayesmlm.BayesMixedGLMResults {self.model.family} '{self.model.formula}' ({how})>"
