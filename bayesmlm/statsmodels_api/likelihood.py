"""The statsmodels entry point, the likelihood's derivatives: ``score``, ``hessian``, ``get_distribution``.

statsmodels' ``MixedLM.score(params, profile_fe=True)`` is the gradient of the profiled log-likelihood
in the optimiser's parameterisation (the Cholesky factor of ``cov_re / scale`` and the square roots of
the relative variance components when ``use_sqrt``, the default); ``MixedLM.hessian(params)`` is its
Hessian over the fixed effects, ``cov_re / scale``'s lower triangle and ``vcomp / scale``, from which
statsmodels' results take the variance parameters' standard errors. :class:`LikelihoodDerivatives`
gives both (a mixin of :class:`~bayesmlm.MixedLM`, over ``_by_group`` and ``_covariances``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bayesmlm.exceptions import ArgumentError
from bayesmlm.reml.marginal import gls_fixed_effects, profiled_scale
from bayesmlm.reml.marginal_derivs import profiled_hessian, profiled_score, sqrt_jacobian
from bayesmlm.statsmodels_api.params import MixedLMParams

__all__ = ["LikelihoodDerivatives", "MixedLMDistribution"]


def _inverse(cov: np.ndarray) -> np.ndarray:
    """``cov``'s inverse, or its pseudo-inverse when singular (as statsmodels' penalised score)."""
    try:
        return np.linalg.inv(cov)
    except np.linalg.LinAlgError:
        return np.linalg.pinv(cov)


class LikelihoodDerivatives:
    """score, score_full, score_sqrt, hessian, get_scale and get_distribution (a ``MixedLM`` mixin)."""

    k_fe: int
    k_re: int
    k_re2: int
    reml: bool
    use_sqrt: bool
    vc_names: list[str]
    _by_group: Any
    _covariances: Any
    fe_pen: Any
    cov_pen: Any

    def _full_params(self, params: Any, has_fe: bool) -> MixedLMParams:
        """Return a MixedLMParams from an object with ``cov_re`` or from statsmodels' packed vector."""
        if hasattr(params, "cov_re"):
            cov, vcomp, fe = self._covariances(params)
            return MixedLMParams.from_components(fe, cov, vcomp=vcomp)
        values = np.asarray(params, dtype=float).reshape(-1)
        k = self.k_re2 + len(self.vc_names) + (self.k_fe if has_fe else 0)
        if len(values) != k:
            what = "fixed effects, " if has_fe else ""
            raise ArgumentError(
                f"params has {len(values)} values; a packed vector here holds the {what}{self.k_re2} "
                f"covariance parameters and {len(self.vc_names)} variance components (or a MixedLMParams)"
            )
        return MixedLMParams.from_packed(values, self.k_fe, self.k_re, self.use_sqrt, has_fe=has_fe)

    def score(self, params: Any, profile_fe: bool = True) -> np.ndarray:
        """Gradient of the profiled log-likelihood, as statsmodels' ``MixedLM.score``.

        Parameters
        ----------
        params : MixedLMParams-like or array_like
            An object with ``cov_re``, ``vcomp`` (and ``fe_params``), relative to the scale; or
            statsmodels' packed vector of the covariance parameters only (fixed effects then 0).
        profile_fe : bool
            Use the GLS fixed effects and return the covariance parameters' gradient only; otherwise
            the fixed effects' gradient comes first.

        Returns
        -------
        ndarray
            With respect to the Cholesky factor's lower triangle (row by row) and ``sqrt(vcomp)`` when
            :attr:`use_sqrt` (statsmodels' default), else ``cov_re``'s triangle and ``vcomp``.

        Examples
        --------
        >>> import bayesmlm as bm
        >>> md = bm.mixedlm("Reaction ~ Days", bm.load_dataset("sleepstudy"), groups="Subject")
        >>> fit = md.fit()
        >>> bool(abs(md.score(fit.params_object)[0]) < 1e-3)  # zero at the optimum
        True
        """
        p = self._full_params(params, has_fe=False)
        if profile_fe:
            y, X, Z, W = self._by_group()
            p.fe_params = gls_fixed_effects(y, X, Z, W, p.cov_re, p.vcomp)
        elif p.k_fe != self.k_fe:
            raise ArgumentError(f"profile_fe=False needs params with {self.k_fe} fe_params")
        parts = (self.score_sqrt if self.use_sqrt else self.score_full)(p, calc_fe=not profile_fe)
        return np.concatenate(parts[1:] if profile_fe else parts)

    def score_full(self, params: Any, calc_fe: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the score over ``cov_re``'s triangle and ``vcomp`` (statsmodels' ``score_full``).

        Parameters
        ----------
        params : MixedLMParams-like
            With ``fe_params``, ``cov_re`` and ``vcomp`` (relative to the scale).
        calc_fe : bool
            Compute the fixed effects' part (zeros otherwise, as statsmodels).

        Returns
        -------
        score_fe, score_re, score_vc : ndarray
            Minus the derivatives of the model's ``cov_pen`` and (with ``calc_fe``) ``fe_pen``, those
            of its last fit (None before any), as statsmodels.
        """
        score_fe, score_re, score_vc = self._score_full(params, calc_fe)
        p = self._full_params(params, has_fe=False)
        if self.cov_pen is not None:
            score_re = score_re - np.asarray(self.cov_pen.deriv(p.cov_re, _inverse(p.cov_re)), dtype=float)
        if calc_fe and self.fe_pen is not None:
            score_fe = score_fe - np.asarray(self.fe_pen.deriv(p.fe_params), dtype=float)
        return score_fe, score_re, score_vc

    def _score_full(self, params: Any, calc_fe: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`score_full` without the penalties."""
        p = self._full_params(params, has_fe=False)
        y, X, Z, W = self._by_group()
        fe = p.fe_params if p.k_fe == self.k_fe else np.zeros(self.k_fe)
        score_fe, score_cov = profiled_score(y, X, Z, W, p.cov_re, p.vcomp, fe, self.reml)
        score_fe = score_fe if calc_fe else np.zeros(self.k_fe)
        return score_fe, score_cov[: self.k_re2], score_cov[self.k_re2 :]

    def score_sqrt(self, params: Any, calc_fe: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the score over the Cholesky factor and ``sqrt(vcomp)`` (statsmodels' ``score_sqrt``).

        Parameters
        ----------
        params : MixedLMParams-like
            As in :meth:`score_full`.
        calc_fe : bool
            Compute the fixed effects' part.

        Returns
        -------
        score_fe, score_re, score_vc : ndarray
        """
        p = self._full_params(params, has_fe=False)
        if p.k_fe != self.k_fe:
            p.fe_params = np.zeros(self.k_fe)
        full = np.concatenate(self.score_full(p, calc_fe))
        out = sqrt_jacobian(p.get_packed(use_sqrt=True, has_fe=True), self.k_fe, self.k_re).T @ full
        k = self.k_fe + self.k_re2
        return out[: self.k_fe], out[self.k_fe : k], out[k:]

    def hessian(self, params: Any) -> tuple[np.ndarray, bool]:
        """Hessian of the profiled log-likelihood, as statsmodels' ``MixedLM.hessian``.

        Parameters
        ----------
        params : MixedLMParams-like or array_like
            An object with ``fe_params``, ``cov_re`` and ``vcomp`` (relative to the scale), or
            statsmodels' packed vector with the fixed effects first (in the :attr:`use_sqrt` form).

        Returns
        -------
        hess : ndarray
            Over the fixed effects, ``cov_re / scale``'s lower triangle and ``vcomp / scale`` (never the
            square-root form, as in statsmodels).
        sing : bool
            Whether ``cov_re`` is singular (statsmodels then warns).

        Examples
        --------
        >>> import bayesmlm as bm
        >>> md = bm.mixedlm("Reaction ~ Days", bm.load_dataset("sleepstudy"), groups="Subject")
        >>> hess, sing = md.hessian(md.fit().params_object)
        >>> hess.shape, sing
        ((3, 3), False)
        """
        p = self._full_params(params, has_fe=True)
        if p.k_fe != self.k_fe:
            raise ArgumentError(f"hessian needs params with {self.k_fe} fe_params")
        y, X, Z, W = self._by_group()
        hess = profiled_hessian(y, X, Z, W, p.cov_re, p.vcomp, p.fe_params, self.reml)
        sing = bool(self.k_re and np.linalg.matrix_rank(p.cov_re) < self.k_re) or bool(
            np.any(p.vcomp < 1e-10)
        )
        return hess, sing

    def information(self, params: Any) -> np.ndarray:
        """Observed information, minus :meth:`hessian` (statsmodels' ``MixedLM.information`` raises).

        Parameters
        ----------
        params : MixedLMParams-like or array_like
            As for :meth:`hessian`.

        Returns
        -------
        ndarray
            ``-hessian(params)[0]``, whose inverse at the optimum is ``cov_params()``'s source.
        """
        return -self.hessian(params)[0]

    def get_scale(self, fe_params: Any, cov_re: Any, vcomp: Any) -> float:
        """Residual variance implied by the parameters, as statsmodels' ``MixedLM.get_scale``.

        Parameters
        ----------
        fe_params : array_like
            The fixed effects.
        cov_re, vcomp : array_like
            ``cov_re / scale`` and ``vcomp / scale``.

        Returns
        -------
        float
            ``r' V^{-1} r / (n - k_fe)`` (REML) or ``/ n`` (ML).

        Examples
        --------
        >>> import bayesmlm as bm
        >>> md = bm.mixedlm("Reaction ~ Days", bm.load_dataset("sleepstudy"), groups="Subject")
        >>> po = md.fit().params_object
        >>> round(md.get_scale(po.fe_params, po.cov_re, po.vcomp), 2)
        960.46
        """
        y, X, Z, W = self._by_group()
        psi = np.asarray(cov_re, dtype=float).reshape(self.k_re, self.k_re)
        fe = np.asarray(fe_params, dtype=float).reshape(-1)
        return profiled_scale(y, X, Z, W, psi, np.asarray(vcomp, dtype=float).reshape(-1), fe, self.reml)

    def get_distribution(self, params: Any, scale: float, exog: Any = None) -> MixedLMDistribution:
        """Return a simulator of the response at ``params``, as statsmodels' ``MixedLM.get_distribution``.

        Parameters
        ----------
        params : array_like
            statsmodels' full vector (``result.params``): fixed effects, ``cov_re / scale``'s lower
            triangle, ``vcomp / scale``.
        scale : float
            The residual variance.
        exog : array_like, optional
            A fixed-effects design for the model's rows; the model's :attr:`exog` if omitted.

        Returns
        -------
        MixedLMDistribution
            ``rvs(n, rng=None)`` draws one response vector (``n`` is ignored, as in statsmodels).

        Examples
        --------
        >>> import bayesmlm as bm
        >>> md = bm.mixedlm("Reaction ~ Days", bm.load_dataset("sleepstudy"), groups="Subject")
        >>> mdf = md.fit()
        >>> md.get_distribution(mdf.params, mdf.scale).rvs(0, rng=1).shape
        (180,)
        """
        return MixedLMDistribution(self, params, scale, exog)


class MixedLMDistribution:
    """Draws responses from a fitted-shape mixed model (statsmodels' ``_mixedlm_distribution``).

    Parameters
    ----------
    model : MixedLM
    params, scale, exog
        As in :meth:`LikelihoodDerivatives.get_distribution`.

    Attributes
    ----------
    fe_params, cov_re, vcomp, scale, exog
        The fixed effects, the covariances in the data's units, the residual variance and the design.
    """

    def __init__(self, model: Any, params: Any, scale: float, exog: Any = None):
        values = np.asarray(params, dtype=float).reshape(-1)
        if len(values) != model.k_fe + model.k_re2 + len(model.vc_names):
            raise ArgumentError(
                f"params has {len(values)} values; get_distribution needs the full vector of "
                f"{model.k_fe + model.k_re2 + len(model.vc_names)} (result.params)"
            )
        po = MixedLMParams.from_packed(values, model.k_fe, model.k_re, use_sqrt=False, has_fe=True)
        self.model = model
        self.exog = model.exog if exog is None else np.asarray(exog, dtype=float)
        if self.exog.shape != model.exog.shape:
            raise ArgumentError(f"exog must have the model's shape {model.exog.shape}, not {self.exog.shape}")
        self.fe_params, self.scale = po.fe_params, float(scale)
        self.cov_re, self.vcomp = self.scale * po.cov_re, self.scale * po.vcomp

    def rvs(self, n: int = 0, rng: Any = None) -> np.ndarray:
        """Draw one response vector (statsmodels' ``rvs``; ``n`` is ignored there too).

        Parameters
        ----------
        n : int
            Ignored.
        rng : int, Generator or RandomState, optional
            Seed or generator; the same seed gives the response statsmodels draws.

        Returns
        -------
        ndarray, shape (nobs,)
        """
        rng = rng if isinstance(rng, np.random.RandomState) else np.random.default_rng(rng)
        model = self.model
        _, _, Z, W = model._by_group()
        rows = list(model.row_indices.values())
        y = self.exog @ self.fe_params
        u = rng.normal(size=(len(rows), model.k_re))  # statsmodels' order of draws, so a seed
        if model.k_re:  # gives statsmodels' response
            u = u @ np.linalg.cholesky(self.cov_re).T
        for ii, Zi, ui in zip(rows, Z, u, strict=True):
            y[ii] += Zi @ ui
        for j, v in enumerate(self.vcomp):  # statsmodels' order: component by component, then groups
            for ii, Wi in zip(rows, W, strict=True):
                y[ii] += np.sqrt(v) * Wi[j] @ rng.normal(size=Wi[j].shape[1])
        return y + np.sqrt(self.scale) * rng.normal(size=len(y))
