"""Stage 4a, REML/ML: lme4's profiled likelihood, optimised over theta, and the fit it gives.

``objective`` (the profiled deviance) → ``optimize`` (theta, with a record of how it went) →
``estimates`` (everything else at that theta) → ``fit`` (:class:`LikelihoodFit`), with ``summary``,
``lrt`` and the parametric ``bootstrap`` beside it, and the small-sample inference on a fit:
``satterthwaite`` and ``kenward_roger`` (df), ``anova`` (type III contrasts), ``ddf`` (the t and F
tables), ``profile`` and ``confint`` (intervals), ``derivatives`` (the differences they use),
``faces`` (the fit as they see it, a Protocol).
Nothing here imports :mod:`bayesmlm.bayes`.
"""
