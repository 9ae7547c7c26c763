"""Fits answered by the exact engine: NUTS's record, computed by quadrature.

:mod:`rebayes.bayes.exact` integrates the model; this module reads a fit's record off its exact
marginals with the conventions of :mod:`rebayes.bayes.quantities` (one control risk p0, the
median observed control risk; RRs at p0; benefit on the dataset's declared side; NNT from the
risk difference at p0), so that ``rebayes fit --engine exact`` and ``--engine nuts`` print the
same record, one with Monte Carlo error and one without. It imports no PyMC, PyTensor, ArviZ
or xarray: a fresh process answers in 2-3 s, most of it importing pandas and scipy.

Within reach: analyses whose only coefficient is the pooled effect ``d`` (the overall and
normal-approximation analyses, and declared analyses without covariates). The engine itself
integrates covariates and separate subgroup effects too (:func:`rebayes.bayes.exact.reach`);
their subgroup records are read from draws for now, so ``auto`` sends them to NUTS.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

import numpy as np

from rebayes.bayes.baseline import control_risk
from rebayes.bayes.design import Design, prior_on_model_scale
from rebayes.bayes.exact import (
    ExactPosterior,
    ExactSettings,
    Marginal,
    exact_posterior,
    ratio,
    reach,
)
from rebayes.bayes.priors import PriorSet
from rebayes.bayes.records import (
    NNT,
    OR_THRESHOLDS,
    Diagnostics,
    Estimate,
    FitSummary,
    TrialEffect,
)
from rebayes.data.direction import Direction
from rebayes.errors import RebayesError

__all__ = [
    "estimate_of",
    "exact_answers",
    "exact_or_probabilities",
    "exact_reach",
    "exact_summary",
    "method_of",
    "risk_difference",
]

def estimate_of(marginal: Marginal) -> Estimate:
    """Return an exact marginal's :class:`~rebayes.bayes.records.Estimate` (95% intervals)."""
    s = marginal.summary()
    return Estimate(median=s["median"], mean=s["mean"], ci_low=s["ci_low"],
                    ci_high=s["ci_high"], hdi_low=s["hdi_low"], hdi_high=s["hdi_high"])


def exact_reach(design: Design, prior: PriorSet) -> str | None:
    """Why ``rebayes fit --engine exact`` cannot answer this analysis, or None when it can."""
    if design.coefs or design.separate:
        what = (f"covariates ({', '.join(design.coefs)})" if design.coefs
                else "one effect per subgroup")
        return (f"{design.spec.name} has {what}; the exact engine's record covers analyses "
                "with one pooled effect so far")
    return reach(design, prior_on_model_scale(prior, design))


def exact_summary(
    design: Design,
    prior: PriorSet,
    settings: ExactSettings | None = None,
    trials: bool = True,
    posterior: ExactPosterior | None = None,
) -> FitSummary:
    """Return the record of one analysis under one prior set, computed exactly.

    Parameters
    ----------
    design : Design
        The analysed rows (:func:`rebayes.bayes.design.build_design`); one pooled effect
        (:func:`exact_reach`).
    prior : PriorSet
        As the registry gives it; put on the model's scale here as for NUTS
        (:func:`rebayes.bayes.design.prior_on_model_scale`).
    settings : ExactSettings, optional
        Quadrature sizes.
    trials : bool
        Whether to compute each trial's shrunken effect (each its own marginal: most of the
        time on a large table; a batch leaves them out).
    posterior : ExactPosterior, optional
        This design's posterior under this prior on the model's scale, if already integrated.

    Returns
    -------
    FitSummary
        ``engine="exact"``; no draws, MCSE 0; ``log_marginal_likelihood`` is log p(y).

    Raises
    ------
    rebayes.bayes.exact.BeyondReach
        The analysis is beyond the exact record (:func:`exact_reach` says why).
    """
    from rebayes.bayes.exact import BeyondReach

    why = exact_reach(design, prior)
    if why is not None:
        raise BeyondReach(why)
    prior = prior_on_model_scale(prior, design)
    post = posterior if posterior is not None else exact_posterior(design, prior, settings)
    direction = Direction.from_schema(design.schema)
    binomial = design.likelihood == "binomial"
    p0 = control_risk(design.events[:, 0], design.n[:, 0], design.study_index)
    d = post.coefficient("d")
    rr = post.risk_ratio(d, p0.value)
    rd = risk_difference(rr, p0.value, binomial)
    benefit = _benefit(rr, direction.higher)
    spec = design.spec
    return FitSummary(
        analysis=spec.name,
        title=spec.title,
        prior=prior.name,
        prior_summary=prior.describe(direction, baseline=binomial, covariate=False),
        variant=design.variant,
        seed=0,
        likelihood=design.likelihood,
        effect_scale="log OR" if binomial else "log RR",
        draws=0,
        chains=0,
        typical_control_risk=Estimate(*(p0.value,) * 6),
        pooled_rr=estimate_of(rr),
        pooled_or=estimate_of(ratio(d)) if binomial else None,
        predictive_rr=estimate_of(post.risk_ratio(post.predictive(), p0.value)),
        tau=estimate_of(post.tau),
        p_benefit=benefit(1.0),
        p_rr_gt_1_1=rr.prob_greater(1.1),
        p_rr_gt_1_25=rr.prob_greater(1.25),
        p_rr_lt_1=1.0 - rr.prob_greater(1.0),
        p_harm=1.0 - benefit(1.0),
        p_benefit_beyond_1_1=benefit(1.1),
        p_benefit_beyond_1_25=benefit(1.25),
        nnt=NNT.from_risk_difference(estimate_of(rd), direction.higher_is_better),
        subgroups=(),
        ratios=(),
        trials=_trials(post, binomial) if trials else (),
        diagnostics=Diagnostics(math.nan, math.nan, math.nan, 0),
        notes=tuple(design.notes),
        direction=direction,
        control_risk=p0,
        mcse={"p_benefit": 0.0, "p_benefit_beyond_1_1": 0.0},
        intercept_at=design.intercept_at,
        engine="exact",
        method=method_of(post),
        log_marginal_likelihood=float(post.log_marginal_likelihood),
    )


def exact_answers(
    design: Design,
    priors: Iterable[PriorSet],
    engine: str,
    on_fallback: Callable[[str], None] | None = None,
) -> bool:
    """Whether the exact engine answers ``design`` under every prior set, as ``engine`` asks.

    ``"nuts"``: no. ``"exact"``: yes, or a :class:`~rebayes.errors.RebayesError` naming why it
    cannot (:func:`exact_reach`). ``"auto"``: yes where it can, else no, with the reason passed
    to ``on_fallback`` (the command says it on stderr).
    """
    if engine == "nuts":
        return False
    why = next((w for w in (exact_reach(design, p) for p in priors) if w), None)
    if why is None:
        return True
    if engine == "exact":
        raise RebayesError(f"--engine exact: {why}; use --engine nuts or auto")
    if on_fallback is not None:
        on_fallback(why)
    return False


def exact_or_probabilities(
    posterior: ExactPosterior, thresholds: tuple[float, ...] = OR_THRESHOLDS
) -> dict[str, float]:
    """P(pooled OR > t) for each threshold, exactly (binomial model; empty for the normal one).

    As :func:`rebayes.bayes.coefficients.pooled_or_probabilities` gives them from draws.
    """
    if posterior.problem.likelihood != "binomial":
        return {}
    d = posterior.coefficient("d")
    return {f"{t:g}": float(d.prob_greater(math.log(t))) for t in thresholds}


def _benefit(rr: Marginal, higher: bool) -> Callable[[float], float]:
    """P(benefit beyond r): P(RR > r) when higher is better, else P(RR < 1/r) (undeclared too)."""
    return lambda r: rr.prob_greater(r) if higher else 1.0 - rr.prob_greater(1.0 / r)


def risk_difference(rr: Marginal, p0: float, binomial: bool) -> Marginal:
    """Return the marginal of the risk difference ``p0 (RR - 1)`` at p0 (treated - control)."""
    top = 1.0 - p0 if binomial else math.inf
    return rr.map(lambda r: p0 * (r - 1.0), lambda x: x / p0 + 1.0,
                  lambda x: np.full_like(np.asarray(x, dtype=float), 1.0 / p0),
                  support=(-p0, top))


def _trials(post: ExactPosterior, binomial: bool) -> tuple[TrialEffect, ...]:
    """Each row's shrunken effect: an OR (binomial: the baselines are integrated out) or RR."""
    scale: Literal["rr", "or"] = "or" if binomial else "rr"
    rows: Sequence[str] = post.problem.rows
    return tuple(TrialEffect(row, estimate_of(ratio(post.trial_effect(i))), scale)
                 for i, row in enumerate(rows))


def method_of(post: ExactPosterior) -> str:
    """How the posterior was integrated, in one phrase."""
    return f"{post.method}, {post.grid.n} tau nodes"
