"""Stage 4b, Bayes: the PyMC model, its priors, NUTS, and the fit it gives.

``priors`` / ``prior_set`` (the defaults and overrides) → ``pymc_model`` (the full model, each block
centred or not) or ``collapsed`` (group effects integrated out) → ``sample`` (NUTS, the body of
``Model.fit``) → ``fit`` (:class:`Fit`), with ``posterior``, ``predict``, ``diagnostics``,
``checks``, ``compare``, ``sensitivity`` (the prior's part) and ``saved`` beside it. Nothing here
imports :mod:`bayesmlm.reml`; a new sampler goes here, beside ``sample``.
"""
