"""Savage-Dickey Bayes factors with the exact engine's posterior density: no Monte Carlo error.

:func:`rebayes.sensitivity.bayes_factor.savage_dickey` estimates the posterior density of
``d`` at 0 from NUTS draws (a kernel estimate, with its MCSE). The exact engine gives that
density from ``d``'s exact marginal, so ``BF01 = p(d = 0 | y) / p(d = 0)`` is exact too
(Dickey 1971): the same quantity, without its Monte Carlo interval. It equals the ratio of
the two models' marginal likelihoods, ``p(y | d = 0) / p(y)``, as the engine's log p(y)
gives them (the tests check both, and an independent integration).

Within reach: the analyses :func:`rebayes.bayes.exact_fit.exact_reach` accepts, the decision
being :func:`rebayes.bayes.exact_fit.exact_answers`'s; as NUTS's, one factor per coefficient
(``d``, each ``d[subgroup]``, each covariate's ``beta``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rebayes.sensitivity.bayes_factor import BayesFactor, hypothesis_meanings, prior_density_at

if TYPE_CHECKING:
    from rebayes.bayes.design import Design
    from rebayes.bayes.exact import ExactPosterior
    from rebayes.bayes.priors import PriorSet

__all__ = ["exact_savage_dickey"]


def exact_savage_dickey(
    design: Design,
    prior: PriorSet,
    reference: float = 0.0,
    posterior: ExactPosterior | None = None,
) -> tuple[BayesFactor, ...]:
    """BF01 for each coefficient ``= reference`` from the exact posterior density.

    Parameters
    ----------
    design : Design
        An analysis within the exact record's reach (:func:`rebayes.bayes.exact_fit.exact_reach`).
    prior : PriorSet
        As the registry gives it; put on the model's scale here.
    reference : float
        The point hypothesis (0: no effect).
    posterior : ExactPosterior, optional
        This design's exact posterior under ``prior`` on the model's scale, if at hand.

    Returns
    -------
    tuple of BayesFactor
        One per coefficient, in the order of NUTS's (``d`` or ``d[subgroup]``, then
        ``beta[covariate]``); ``engine="exact"``; the interval is the point (MCSE 0).
    """
    from rebayes.bayes.design import prior_on_model_scale
    from rebayes.bayes.exact import exact_posterior

    scaled = prior_on_model_scale(prior, design)
    post = posterior if posterior is not None else exact_posterior(design, scaled)
    binomial = design.likelihood == "binomial"
    scale = "log OR" if binomial else "log RR"
    meanings = hypothesis_meanings(scale, design.spec.effect, design.intercept_at)
    higher = bool(design.schema.higher_is_better)
    out = []
    for name in post.names:
        # As NUTS labels them: d, d[subgroup], and beta[covariate].
        kind = "d" if name == "d" or name.startswith("d[") else "beta"
        label = name if kind == "d" else f"beta[{name}]"
        density = float(post.coefficient(name).pdf(reference))
        prior_density = prior_density_at(scaled, kind, reference, higher_is_better=higher)
        bf01 = density / prior_density
        out.append(BayesFactor(
            parameter=label,
            meaning=meanings[kind],
            reference=float(reference),
            bf01=bf01,
            bf01_low=bf01,
            bf01_high=bf01,
            posterior_density=density,
            posterior_density_mcse=0.0,
            prior_density=prior_density,
            likelihood=design.likelihood,
            effect_scale=scale,
            engine="exact",
        ))
    return tuple(out)
