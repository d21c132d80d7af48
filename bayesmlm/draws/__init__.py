"""Stage 5, results: NumPy functions on draw arrays, for every kind of fit.

A Bayesian fit has posterior draws; a REML/ML fit is one draw (its estimates) or a set of
parametric-bootstrap draws. Everything here takes plain arrays (and the model's design and random
structure), so it serves both, and it is tested without importing PyMC or ArviZ (the layering of
arviz-stats' ``base``). Nothing here imports :mod:`bayesmlm.reml` or :mod:`bayesmlm.bayes`.
"""
