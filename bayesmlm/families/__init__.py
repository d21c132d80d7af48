"""Stage 3, families: the response distribution as a concept, read by both REML/ML and the sampler.

Gaussian today (:mod:`bayesmlm.families.gaussian`); each further family (binomial, Poisson, negative
binomial) is one module here with the same pieces: the likelihood the fitting stages need and the
PyMC likelihood term.
"""
