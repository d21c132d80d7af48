"""Stage 4a, REML/ML: lme4's profiled likelihood, optimised over theta, and the fit it gives.

``objective`` (the profiled deviance) → ``optimize`` (theta, with a record of how it went) →
``estimates`` (everything else at that theta) → ``fit`` (:class:`LikelihoodFit`), with ``summary``,
``lrt`` and the parametric ``bootstrap`` beside it. Nothing here imports :mod:`bayesmlm.bayes`.
"""
