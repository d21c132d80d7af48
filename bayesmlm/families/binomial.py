"""Stage 3, families: the binomial response (Bernoulli for 0/1), with logit, probit or cloglog link.

The response is ``cbind(successes, failures)`` (lme4), ``p(successes, trials)`` (bambi), a 0/1,
boolean or two-level column (Bernoulli; the second level is a success, as in glmer), or proportions
with ``weights=`` the trials (glm's convention). As R's ``binomial()`` the model reads the proportion
``y = s/n`` with weight ``wt = n × prior weight``; its log-likelihood keeps the binomial coefficient,
so log-likelihoods and AICs are glmer's. Refused with a :class:`~bayesmlm.DataError`: successes
above trials, negative or non-integer successes or trials, values outside [0, 1] without trials,
and a response with no successes or no failures. Separation gets a
:class:`~bayesmlm.SeparationWarning`.
"""

from __future__ import annotations

import numpy as np
from scipy import special

from bayesmlm.design.evaluate import Design
from bayesmlm.exceptions import DataError
from bayesmlm.families.base import Family, GLMData, observed_or_weighted
from bayesmlm.families.response_checks import check_counts, warn_separation

__all__ = ["Binomial"]

_EPS = np.finfo(float).eps


def _is_binary(y: np.ndarray) -> bool:
    return bool(np.all((y == 0) | (y == 1)))


class Binomial(Family):
    """The binomial family; a 0/1 response makes it Bernoulli (:attr:`bernoulli`).

    Examples
    --------
    >>> import bayesmlm as bm
    >>> from bayesmlm.families.links import link_named
    >>> m = bm.Model("cbind(incidence, size - incidence) ~ period + (1 | herd)", bm.load_dataset("cbpp"),
    ...              family="binomial")
    >>> fam = m.family
    >>> data = fam.glm_data(m.design)
    >>> data.y[:3].round(3).tolist(), data.wt[:3].tolist()
    ([0.143, 0.25, 0.444], [14.0, 12.0, 9.0])
    """

    name = "binomial"
    links = ("logit", "probit", "cloglog")

    def glm_data(self, design: Design) -> GLMData:
        """Proportions and weights as R's ``binomial()$initialize`` makes them."""
        y = np.asarray(design.y, dtype=float)
        pw = np.ones_like(y) if design.weights is None else np.asarray(design.weights, dtype=float)
        if design.trials is not None:
            n = np.asarray(design.trials, dtype=float)
            with np.errstate(invalid="ignore", divide="ignore"):
                prop = np.where(n > 0, y / np.where(n > 0, n, 1.0), 0.0)
            return GLMData(prop, n, pw, n * pw, y)
        if _is_binary(y) or design.weights is None:
            return GLMData(y, np.ones_like(y), pw, pw, y)
        # proportions with the trials as weights (glm's convention): a binomial with n = weights
        return GLMData(y, pw, np.ones_like(y), pw, np.round(y * pw))

    @property
    def label(self) -> str:
        """``"binomial"``; "Bernoulli" is said where the response is 0/1."""
        return self.name

    def is_bernoulli(self, data: GLMData) -> bool:
        """Whether every row is a single trial (the response is 0/1)."""
        return bool(np.all(data.n == 1))

    def check_response(self, design: Design, stacklevel: int = 2) -> None:
        """Refuse what a binomial family cannot model; warn about separation (module docstring)."""
        response = design.response_name
        y = np.asarray(design.y, dtype=float)
        if design.trials is not None:
            n = np.asarray(design.trials, dtype=float)
            check_counts(y, "successes", response)
            check_counts(n, "trials", response)
            over = y > n
            if over.any():
                k = int(np.flatnonzero(over)[0])
                raise DataError(
                    f"the response '{response}' has more successes than trials in {int(over.sum())} "
                    f"row(s) (e.g. row {design.rows[k]!r}: {y[k]:g} successes of {n[k]:g}); in "
                    "cbind(successes, failures) the failures cannot be negative, and in "
                    "p(successes, trials) the trials must be at least the successes"
                )
            successes, failures = y, n - y
        else:
            if np.any((y < 0) | (y > 1)):
                raise DataError(
                    f"the response '{response}' has values outside [0, 1] (from {y.min():g} to "
                    f"{y.max():g}); a binomial response is 0/1, a proportion with weights=trials, or "
                    "cbind(successes, failures) / p(successes, trials) for counts of successes"
                )
            if not _is_binary(y):
                if design.weights is None:
                    raise DataError(
                        f"the response '{response}' holds proportions between 0 and 1 without their "
                        "numbers of trials; write p(successes, trials) or cbind(successes, failures), "
                        "or pass weights= the trials"
                    )
                check_counts(y * np.asarray(design.weights), "successes (response × weights)", response)
            data = self.glm_data(design)
            successes, failures = data.y * data.wt, (1 - data.y) * data.wt
        if not np.any(successes > 0) or not np.any(failures > 0):
            what = "a failure" if not np.any(successes > 0) else "a success"
            raise DataError(
                f"every observation of '{response}' is {what}: the probability of success has no "
                "finite estimate and nothing varies between groups; check the response (for a "
                "categorical response the second level is the success)"
            )
        warn_separation(design, successes, failures, stacklevel + 1)

    # -- GLM pieces -----------------------------------------------------------------------------
    def variance(self, mu, dispersion=None):
        """``μ (1 - μ)``."""
        return np.maximum(mu * (1 - mu), _EPS)

    def deviance_residuals(self, data: GLMData, mu, dispersion=None):
        """``2 wt (y log(y/μ) + (1-y) log((1-y)/(1-μ)))``."""
        y = data.y
        return (
            2
            * data.wt
            * (special.xlogy(y, y) - y * np.log(mu) + special.xlogy(1 - y, 1 - y) - (1 - y) * np.log1p(-mu))
        )

    def loglik_rows(self, data: GLMData, mu, dispersion=None):
        """R's ``binomial()$aic / -2`` per row: ``(wt/m) log dbinom(round(m y), round(m), μ)``."""
        m = data.n if np.any(data.n > 1) else data.wt
        k, size = np.round(m * data.y), np.round(m)
        log_choose = special.gammaln(size + 1) - special.gammaln(k + 1) - special.gammaln(size - k + 1)
        logpmf = log_choose + special.xlogy(k, mu) + special.xlog1py(size - k, -mu)
        with np.errstate(invalid="ignore", divide="ignore"):
            factor = np.where(m > 0, data.wt / np.where(m > 0, m, 1.0), 0.0)
        return factor * logpmf

    def clamp_mean(self, mu):
        """Keep ``μ`` inside (0, 1)."""
        return np.clip(mu, _EPS, 1 - _EPS)

    def starting_eta(self, data: GLMData):
        """R's ``mustart = (wt y + 0.5) / (wt + 1)`` through the link."""
        return self.link.linkfun((data.wt * data.y + 0.5) / (data.wt + 1))

    # -- prediction and the latent scale ----------------------------------------------------------
    def simulate(self, rng, mu, data: GLMData, dispersion=None):
        """Successes out of each row's trials."""
        return rng.binomial(np.broadcast_to(data.n.astype(np.int64), np.shape(mu)), np.clip(mu, 0, 1))

    def latent_variance(self, mean_eta, re_variance, dispersion=None):
        """Return the link's distribution-specific variance (``π²/3`` logit, 1 probit, ``π²/6`` cloglog)."""
        return np.full(np.shape(re_variance), self.link.latent_variance)

    def latent_label(self) -> str:
        """Describe the latent residual variance in words."""
        value = {"logit": "π²/3 = 3.290", "probit": "1", "cloglog": "π²/6 = 1.645"}[self.link.name]
        return f"latent scale: residual variance {value} ({self.link.name} link)"

    # -- the Bayesian likelihood ------------------------------------------------------------------
    def pymc_likelihood(self, name, eta, data: GLMData, dispersion=None):
        """``Bernoulli`` or ``Binomial`` on ``logit_p`` (logit link) or ``p = g⁻¹(η)``."""
        import pymc as pm

        prob = {"logit_p": eta} if self.link.name == "logit" else {"p": self.link.inverse_tensor(eta)}
        if self.is_bernoulli(data):
            return observed_or_weighted(name, pm.Bernoulli, prob, data)
        return observed_or_weighted(
            name, pm.Binomial, {"n": np.asarray(data.n, dtype=np.int64), **prob}, data
        )
