"""The statsmodels entry point: ``bm.mixedlm`` / ``bm.MixedLM`` with statsmodels' API, lme4's numbers.

Code written for :func:`statsmodels.formula.api.mixedlm` runs with only the import changed::

    import bayesmlm as smf  # instead of: import statsmodels.formula.api as smf

    md = smf.mixedlm("Reaction ~ Days", data, groups=data["Subject"], re_formula="~Days")
    mdf = md.fit(method=["lbfgs"])  # REML by default, as in statsmodels
    print(mdf.summary())
    icc = mdf.cov_re.iloc[0, 0] / (mdf.cov_re.iloc[0, 0] + mdf.scale)

The statsmodels call is translated into an lme4 formula, kept as ``md.formula`` (``print(md.spec)``
shows the parsed form), and fitted by bayesmlm's lme4-exact REML/ML optimiser; ``md.fit(bayes=True)``
samples the same model with NUTS instead. The result, :class:`MixedLMResults`, has statsmodels'
attributes (``fe_params``, ``cov_re``, ``scale``, ``random_effects``, ``params``, ``summary()``...)
with statsmodels' names and shapes.

Translation (``g`` is the group column)
---------------------------------------

=============================================================  ======================================
statsmodels                                                    lme4 formula
=============================================================  ======================================
``mixedlm("y ~ x", d, groups="g")`` (or ``re_formula="1"``)    ``y ~ x + (1 | g)``
``re_formula="~x"`` (or ``"x"``, ``"1 + x"``)                  ``y ~ x + (1 + x | g)``
``re_formula="~x - 1"`` (or ``"0 + x"``, ``"~0 + x"``)         ``y ~ x + (0 + x | g)``
``re_formula="~x + z"``                                        ``y ~ x + (1 + x + z | g)``
``re_formula="1", vc_formula={"x": "0 + x"}``                  ``y ~ x + (1 | g) + (0 + x | g)``
``vc_formula={"x": "0 + x"}`` (re_formula None or ``"0"``)     ``y ~ x + (0 + x | g)``
``re_formula="1", vc_formula={"c": "0 + C(c)"}``               ``y ~ x + (1 | g) + (1 | g:c)``
``vc_formula={"cx": "0 + C(c):x"}``                            ``y ~ x + (0 + x | g:c)``
``vc_formula={"ab": "0 + a + b"}``                             ``(0 + a | g) + (0 + b | g)``, theta tied
``MixedLM(..., exog_vc={"c": {g: indicators}})``               ``(0 + c_value | g:c_slot)``
``MixedLM(..., exog_vc={"m": {g: dense matrix}})``             ``(0 + m_0 | g) + (0 + m_1 | g)``, tied
``re_formula="~x"`` and ``fit(free=...)`` with ``cov_re`` = I  ``y ~ x + (1 | g) + (0 + x | g)``
``MixedLM(endog, exog, groups, exog_re)``                      ``y ~ 0 + x1 + x2 + (0 + z1 | g)``
=============================================================  ======================================

``re_formula`` gives correlated random effects within each group (statsmodels estimates their full
covariance matrix, as lme4's ``(x | g)`` does). Each ``vc_formula`` entry is a variance component
independent of everything else: a numeric ``"0 + x"`` is an independent random slope; a categorical
``"0 + C(c)"`` (one column per level of ``c``, all sharing one variance) is a random intercept for each
``c`` within each group, written ``(1 | g:c)``. Several numeric terms, ``"0 + a + b"``, or statsmodels'
``exog_vc`` matrices (``{name: {group: matrix}}``, any columns) share one variance: scalar terms whose
relative scales are held equal (tied theta, :mod:`bayesmlm.reml.ties`), or a nested factor when every
row has at most one non-zero entry (:mod:`bayesmlm.statsmodels_api.variance_components`).
As in statsmodels, giving ``vc_formula`` without
``re_formula`` drops the default random group intercept (``re_formula="1"`` keeps it), and
``re_formula="0"`` asks for no correlated random effects at all. With ``MixedLM(endog, exog, ...)`` a
column of ones in ``exog`` or ``exog_re`` becomes the intercept ``1`` of the formula.

Names follow statsmodels: the random intercept is called after the group column when ``groups`` is a
column name (``"Subject Var"``), and ``"Group"`` when ``groups`` is a Series or array
(``"Group Var"``); ``"Group x Days Cov"`` is a covariance. Fixed-effect names are formulae's, which
differ from patsy's only for categorical terms (``"C(c)[b]"`` where patsy writes ``"C(c)[T.b]"``).

Types follow the input, as in statsmodels: a model built from numpy arrays returns ndarrays
(``params``, ``fe_params``, ``bse``, ``cov_re``, ``cov_params()``, ``conf_int()``...), one built from a
formula or from pandas ``endog``/``exog`` returns Series and DataFrames with statsmodels' labels. The
model has statsmodels' plumbing (``md.data.xnames``, ``md.exog``, ``md.exog_re``, ``md.exog_vc``,
``md.groups``, ``md.row_indices``...), the likelihood API (``md.loglike(params, profile_fe=...)``,
``md.score``, ``md.hessian``, ``md.get_distribution``) at any :class:`MixedLMParams`, the variance parameters'
standard errors from the inverse Hessian, as statsmodels computes them, and the results' ``t_test``,
``wald_test`` and ``f_test`` (matrices or text such as ``"Days = 0"``) and ``profile_re``.
``docs/statsmodels.md`` lists every attribute
of statsmodels' ``MixedLM`` and ``MixedLMResults`` and whether it matches, differs or is missing.

What differs from statsmodels
-----------------------------
* The optimiser is always lme4's profiled one; statsmodels' ``method`` names are checked and ignored.
  Where statsmodels stops short of the optimum on a boundary (it reports ``Converged: No``), this
  module returns lme4's boundary fit with a variance of exactly 0.
* Where the Hessian at the optimum is singular (some boundary fits) the variance parameters' standard
  errors are NaN; statsmodels' inversion fails there.
* ``aic`` and ``bic`` are lme4's (statsmodels gives NaN for REML fits).
* ``random_effects`` is available for boundary fits (statsmodels raises for a singular ``cov_re``).
"""

from bayesmlm.statsmodels_api.formula_api import mixedlm
from bayesmlm.statsmodels_api.model import MixedLM
from bayesmlm.statsmodels_api.params import MixedLMParams
from bayesmlm.statsmodels_api.results import MixedLMResults
from bayesmlm.statsmodels_api.summary import MixedLMSummary
from bayesmlm.statsmodels_api.vc_layout import VCSpec

__all__ = ["MixedLM", "MixedLMParams", "MixedLMResults", "MixedLMSummary", "VCSpec", "mixedlm"]
