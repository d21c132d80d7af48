"""Stage 4a, REML/ML: the record of how a likelihood fit was made (``LikelihoodFit.info``).

The keys are those of the Bayesian :attr:`Fit.info <bayesmlm.Fit.info>` where they apply (``n_obs``,
``n_dropped``, ``aliased``, ``seconds``, ``versions``), plus the optimiser's outcome: its message,
evaluations, gradient norm, every start it tried and the convergence checks that failed.
"""

from __future__ import annotations

from bayesmlm._version import package_versions

__all__ = ["fit_info"]


def fit_info(fit) -> dict:
    """Return how ``fit`` was made: method, optimiser outcome, rows used and dropped, package versions.

    ``fit`` is a :class:`~bayesmlm.LikelihoodFit` (not imported here: it imports this module).
    """
    return {
        "method": fit.method,
        "converged": fit.converged,
        "optimizer_message": fit.opt.message,
        "n_evaluations": fit.opt.n_evaluations,
        "gradient_norm": float(fit.opt.gradient_norm),
        "starts": list(fit.opt.starts),
        "convergence_failures": list(fit.opt.checks.failures) if fit.opt.checks is not None else [],
        "singular": fit.singular,
        "n_obs": fit.design.n,
        "n_dropped": fit.design.n_dropped,
        "aliased": list(fit.design.aliased),
        "seconds": round(fit.opt.seconds, 3),
        "versions": package_versions(),
    }
