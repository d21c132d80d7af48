"""Exceptions and warnings raised by bayesmlm.

Every error a user can cause raises a named subclass of :class:`BayesMLMError`
with a message that says what went wrong and what to do about it.
"""


class BayesMLMError(Exception):
    """Base class of all errors raised by bayesmlm."""


class FormulaError(BayesMLMError, ValueError):
    """A model formula cannot be parsed or refers to something that does not exist."""


class DataError(BayesMLMError, ValueError):
    """The data cannot be used with the model (missing values, wrong types, too few rows)."""


class FitError(BayesMLMError, RuntimeError):
    """A fit could not be carried out."""


class ArgumentError(BayesMLMError, ValueError):
    """An argument has a value out of its range or not among its choices (``draws=0``, ``kind="bogus"``)."""


class UnknownArgumentError(BayesMLMError, TypeError):
    """A function got a keyword it does not take (``fit(draw=200)``); the message says what was meant."""


class RowsNeededError(BayesMLMError, RuntimeError):
    """A feature needs the data's rows, which a model built from a Dask DataFrame or files does not hold.

    Such a model keeps only the statistics reduced on the cluster (see ``docs/dask.md``).
    """


class GroupEffectsNotStoredError(BayesMLMError, RuntimeError):
    """A feature needs every draw of every group effect, which an on-demand fit does not store.

    A fit with ``group_effects="on_demand"`` draws them only when asked (see ``docs/dask.md``); refit
    with ``group_effects="store"``, or ask for some levels' draws: ``fit.group_effect_draws(levels=...)``.
    """


class BayesMLMWarning(UserWarning):
    """Base class of all warnings issued by bayesmlm."""


class DroppedRowsWarning(BayesMLMWarning):
    """Rows were dropped from the data (missing values)."""


class RankDeficientWarning(BayesMLMWarning):
    """Fixed-effect columns were aliased and dropped."""


class SingularFitWarning(BayesMLMWarning):
    """A variance component is estimated on the boundary (zero variance or perfect correlation)."""


class ConvergenceWarning(BayesMLMWarning):
    """An optimiser or sampler did not converge."""


class PriorError(BayesMLMError, ValueError):
    """A prior is invalid, of the wrong kind for its parameter, or names a parameter that does not exist."""


class SamplingWarning(BayesMLMWarning):
    """NUTS sampling showed trouble: divergences, high R-hat, low ESS or tree-depth saturation."""


class FewGroupsWarning(BayesMLMWarning):
    """A grouping factor has fewer than 5 levels, so its variance is estimated from very few groups."""


class MissingValueWarning(BayesMLMWarning):
    """Rows of new data have missing values, so their predictions are NaN."""


class FamilyWarning(BayesMLMWarning):
    """The response looks like another family's (0/1 or counts fitted as Gaussian, 0/1 as Poisson)."""


class SeparationWarning(BayesMLMWarning):
    """Complete or quasi-complete separation: some fixed effects have no finite ML estimate."""
