"""The exact engine: posteriors by quadrature instead of sampling.

For the models of :mod:`rebayes.bayes.model` with few coefficients, every posterior quantity
is an integral of low dimension once each row's baseline and each trial's random effect are
integrated one at a time; this package computes them by quadrature, with no Monte Carlo error:

- :func:`exact_posterior`: from a :class:`~rebayes.bayes.design.Design` and a
  :class:`~rebayes.bayes.priors.PriorSet` (the same inputs as the PyMC model) to an
  :class:`ExactPosterior`;
- :mod:`~rebayes.bayes.exact.normal`: the normal-normal model, coefficients analytic given tau
  (as bayesmeta);
- :mod:`~rebayes.bayes.exact.binomial`: the binomial-normal model (and non-normal priors) on
  nested grids: rows (:mod:`~rebayes.bayes.exact.rows`), trials
  (:mod:`~rebayes.bayes.exact.trials`), coefficients given tau
  (:mod:`~rebayes.bayes.exact.slices`), tau (:mod:`~rebayes.bayes.exact.grid`);
- :mod:`~rebayes.bayes.exact.marginals`: the exact one-dimensional marginals every answer is
  read from.

It imports numpy and scipy only (no PyMC, PyTensor, ArviZ or xarray). The method and its
accuracy: ``docs/exact-engine.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rebayes.bayes.exact.binomial import grid_posterior
from rebayes.bayes.exact.marginals import GridMixture, Marginal, NormalMixture
from rebayes.bayes.exact.normal import normal_posterior
from rebayes.bayes.exact.posterior import ExactPosterior, ratio, risk_ratio_at
from rebayes.bayes.exact.problem import ExactProblem, problem_from_arrays, problem_from_design
from rebayes.bayes.exact.settings import BeyondReach, ExactSettings

if TYPE_CHECKING:
    from rebayes.bayes.design import Design
    from rebayes.bayes.priors import PriorSet

__all__ = [
    "BeyondReach",
    "ExactPosterior",
    "ExactProblem",
    "ExactSettings",
    "GridMixture",
    "Marginal",
    "NormalMixture",
    "exact_posterior",
    "posterior_of",
    "problem_from_arrays",
    "problem_from_design",
    "ratio",
    "reach",
    "risk_ratio_at",
]


def posterior_of(problem: ExactProblem, settings: ExactSettings | None = None) -> ExactPosterior:
    """Return the exact posterior of a problem.

    Analytic given tau for the normal-normal model with normal priors, nested grids otherwise
    (:func:`grid_posterior`).

    Raises
    ------
    BeyondReach
        The model has more coefficients than the grid handles (``settings.max_coefficients``).
    """
    if problem.likelihood == "normal" and problem.conjugate:
        return normal_posterior(problem)
    return grid_posterior(problem, settings)


def exact_posterior(
    design: Design, prior: PriorSet, settings: ExactSettings | None = None
) -> ExactPosterior:
    """Return the exact posterior of an analysis.

    Parameters
    ----------
    design : Design
        The analysed rows (:func:`rebayes.bayes.design.build_design`).
    prior : PriorSet
        On the model's scale, as :func:`rebayes.bayes.model.build_model` gets it
        (:func:`rebayes.bayes.design.prior_on_model_scale` maps a log OR set for the normal
        likelihood).
    settings : ExactSettings, optional
        Quadrature sizes.

    Returns
    -------
    ExactPosterior

    Raises
    ------
    BeyondReach
        Too many coefficients for the grid (the caller falls back to NUTS).

    Examples
    --------
    >>> import rebayes as rb
    >>> from rebayes.bayes.exact import exact_posterior
    >>> design = rb.build_design(rb.resolve_spec("overall", "my_review/"))  # doctest: +SKIP
    >>> post = exact_posterior(design, rb.get_prior("weakly_informative"))  # doctest: +SKIP
    >>> post.coefficient("d").prob_greater(0.0)  # P(d > 0)  # doctest: +SKIP
    """
    return posterior_of(problem_from_design(design, prior), settings)


def reach(design: Design, prior: PriorSet, settings: ExactSettings | None = None) -> str | None:
    """Why the exact engine cannot fit this analysis, or None when it can."""
    settings = settings or ExactSettings()
    problem = problem_from_design(design, prior)
    if problem.likelihood == "normal" and problem.conjugate:
        return None
    if problem.p > settings.max_coefficients:
        return (f"{problem.p} coefficients ({', '.join(problem.names)}); the exact engine "
                f"integrates at most {settings.max_coefficients}")
    return None
