"""The statsmodels entry point, parameter objects: :class:`MixedLMParams`, statsmodels' packed layout.

statsmodels passes a mixed model's parameters around as a ``MixedLMParams``: the fixed effects,
``cov_re`` and ``vcomp`` relative to the scale, packed into one vector (the lower triangle of
``cov_re`` or of its Cholesky factor, row by row, then ``vcomp`` or its square roots) for its
optimisers. This class has the same attributes and methods, so code that builds or reads them works
with ``bm.MixedLM.loglike`` and ``result.params_object``, without statsmodels installed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["MixedLMParams"]


class MixedLMParams:
    """Fixed effects and relative covariance parameters of a linear mixed model (statsmodels' layout).

    Parameters
    ----------
    k_fe, k_re, k_vc : int
        Numbers of fixed effects, correlated random effects and variance components.

    Attributes
    ----------
    fe_params : ndarray, shape (k_fe,)
    cov_re : ndarray, shape (k_re, k_re)
        The random effects' covariance divided by the scale.
    vcomp : ndarray, shape (k_vc,)
        The variance components divided by the scale.
    k_re2, k_tot : int
        ``k_re (k_re + 1) / 2`` and ``k_fe + k_re2 + k_vc``.

    Examples
    --------
    >>> import numpy as np
    >>> p = MixedLMParams.from_components(fe_params=np.zeros(2), cov_re=np.array([[4.0, 2.0], [2.0, 2.0]]))
    >>> p.get_packed(use_sqrt=True, has_fe=False)
    array([2., 1., 1.])
    >>> MixedLMParams.from_packed(p.get_packed(True, False), 2, 2, use_sqrt=True, has_fe=False).cov_re
    array([[4., 2.],
           [2., 2.]])
    """

    def __init__(self, k_fe: int, k_re: int, k_vc: int):
        self.k_fe, self.k_re, self.k_vc = int(k_fe), int(k_re), int(k_vc)
        self.k_re2 = self.k_re * (self.k_re + 1) // 2
        self.k_tot = self.k_fe + self.k_re2 + self.k_vc
        self._ix = np.tril_indices(self.k_re)
        self.fe_params = np.zeros(self.k_fe)
        self.cov_re = np.zeros((self.k_re, self.k_re))
        self.vcomp = np.zeros(self.k_vc)

    @staticmethod
    def from_packed(params: Any, k_fe: int, k_re: int, use_sqrt: bool, has_fe: bool) -> MixedLMParams:
        """Unpack statsmodels' vector (``has_fe``: the fixed effects come first)."""
        values = np.asarray(params, dtype=float).reshape(-1)
        k_re2 = k_re * (k_re + 1) // 2
        k_vc = len(values) - k_re2 - (k_fe if has_fe else 0)
        out = MixedLMParams(k_fe, k_re, k_vc)
        start = k_fe if has_fe else 0
        if has_fe:
            out.fe_params = values[:k_fe].copy()
        tri = np.zeros((k_re, k_re))
        tri[out._ix] = values[start : start + k_re2]
        out.cov_re = tri @ tri.T if use_sqrt else tri + tri.T - np.diag(np.diag(tri))
        vc = values[start + k_re2 :]
        out.vcomp = vc**2 if use_sqrt else vc.copy()
        return out

    @staticmethod
    def from_components(
        fe_params: Any = None, cov_re: Any = None, cov_re_sqrt: Any = None, vcomp: Any = None
    ) -> MixedLMParams:
        """Build from the parts (``cov_re_sqrt``: a lower-triangular factor of ``cov_re``)."""
        fe = np.zeros(0) if fe_params is None else np.asarray(fe_params, dtype=float).reshape(-1)
        vc = np.zeros(0) if vcomp is None else np.asarray(vcomp, dtype=float).reshape(-1)
        if cov_re is None and cov_re_sqrt is not None:
            root = np.atleast_2d(np.asarray(cov_re_sqrt, dtype=float))
            cov_re = root @ root.T
        cov = np.zeros((0, 0)) if cov_re is None else np.atleast_2d(np.asarray(cov_re, dtype=float))
        out = MixedLMParams(len(fe), len(cov), len(vc))
        out.fe_params, out.cov_re, out.vcomp = fe.copy(), cov.copy(), vc.copy()
        return out

    def get_packed(self, use_sqrt: bool, has_fe: bool = False) -> np.ndarray:
        """Pack into statsmodels' vector (a Cholesky factor's triangle if ``use_sqrt``)."""
        if self.k_re and use_sqrt:
            try:
                root = np.linalg.cholesky(self.cov_re)
            except np.linalg.LinAlgError:  # statsmodels' fallback for a singular cov_re
                root = np.diag(np.sqrt(np.diag(self.cov_re)))
            tri = root[self._ix]
        else:
            tri = self.cov_re[self._ix]
        vc = np.sqrt(self.vcomp) if use_sqrt else self.vcomp
        parts = [self.fe_params] if has_fe else []
        return np.concatenate([*parts, tri, vc])

    def copy(self) -> MixedLMParams:
        """Return an independent copy."""
        return MixedLMParams.from_components(self.fe_params, self.cov_re, vcomp=self.vcomp)

    def __repr__(self) -> str:
        return f"<bayesmlm MixedLMParams: k_fe={self.k_fe}, k_re={self.k_re}, k_vc={self.k_vc}>"
