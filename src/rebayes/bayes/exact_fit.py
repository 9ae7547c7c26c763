"""Fits answered by the exact engine: NUTS's record, computed by quadrature.

:mod:`rebayes.bayes.exact` integrates the model; this module reads a fit's record off its exact
marginals with the conventions of :mod:`rebayes.bayes.quantities` (one control risk p0, the
median observed control risk; RRs at p0; benefit on the dataset's declared side; NNT from the
risk difference at p0), so that ``rebayes fit --engine exact`` and ``--engine nuts`` print the
same record, one with Monte Carlo error and one without. It imports no PyMC, PyTensor, ArviZ
or xarray: a fresh process answers in 2-3 s, most of it importing pandas and scipy.

Within reach: every analysis the engine integrates (:func:`rebayes.bayes.exact.reach`: at
most three coefficients, or the normal-normal model with normal priors), covariates and
separate subgroup effects included, except a meta-regression in which one trial's strata
differ in their covariates (its shrunken effect is not one of the engine's marginals). A
meta-regression's record is NUTS's (:mod:`rebayes.bayes.quantities`): the row-average effect
(:mod:`rebayes.bayes.averages`), each subgroup's RR and a new trial's in it, at the same p0,
and the ratios of subgroups' RRs, whose marginals the engine integrates over the plane of the
two subgroups' effects (:meth:`rebayes.bayes.exact.ExactPosterior.risk_ratio_ratio`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

import numpy as np

from rebayes.bayes.averages import average_description
from rebayes.bayes.baseline import control_risk
from rebayes.bayes.design import Design, prior_on_model_scale
from rebayes.bayes.exact import (
    ExactPosterior,
    ExactSettings,
    Marginal,
    exact_posterior,
    problem_from_design,
    ratio,
    reach,
)
from rebayes.bayes.priors import PriorSet
from rebayes.bayes.records import (
    NNT,
    OR_THRESHOLDS,
    Coefficient,
    Diagnostics,
    Estimate,
    FitSummary,
    SubgroupEffect,
    SubgroupRatio,
    TrialEffect,
)
from rebayes.data.direction import Direction
from rebayes.errors import RebayesError

__all__ = [
    "estimate_of",
    "exact_answers",
    "exact_coefficients",
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
    scaled = prior_on_model_scale(prior, design)
    why = reach(design, scaled)
    if why is not None:
        return why
    mixed = problem_from_design(design, scaled).mixed_trials()
    if mixed:
        return (f"the strata of {design.studies[mixed[0]]} differ in their covariates or "
                "subgroups, and such a trial's shrunken effect is beyond the exact record")
    return None


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
        The analysed rows (:func:`rebayes.bayes.design.build_design`), within the exact
        record's reach (:func:`exact_reach`).
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
    A = post.problem.A
    # The mean over rows of each row's expected effect: d itself without covariates.
    average = A.mean(axis=0)
    pooled = post.linear(average)
    rr = post.risk_ratio(pooled, p0.value)
    rd = risk_difference(rr, p0.value, binomial)
    benefit = _benefit(rr, direction.higher)
    by_covariate = bool(design.coefs) or design.separate
    labels = np.asarray(design.row_subgroup).astype(str)
    rows_of = {name: A[labels == name].mean(axis=0) for name in design.subgroups
               if (labels == name).any()}
    subgroups = tuple(_subgroup(post, name, c, p0.value, direction.higher)
                      for name, c in rows_of.items())
    ratios = tuple(
        _ratio(post, name, num, den, rows_of, p0.value) for name, num, den in design.ratios
        if num in rows_of and den in rows_of
    )
    spec = design.spec
    mcse = {"p_benefit": 0.0, "p_benefit_beyond_1_1": 0.0}
    mcse.update({f"p_subgroup_benefit[{g.name}]": 0.0 for g in subgroups})
    mcse.update({f"p_ratio_gt_1[{r.name}]": 0.0 for r in ratios})
    return FitSummary(
        analysis=spec.name,
        title=spec.title,
        prior=prior.name,
        prior_summary=prior.describe(direction, baseline=binomial, covariate=bool(design.coefs)),
        variant=design.variant,
        seed=0,
        likelihood=design.likelihood,
        effect_scale="log OR" if binomial else "log RR",
        draws=0,
        chains=0,
        typical_control_risk=Estimate(*(p0.value,) * 6),
        pooled_rr=estimate_of(rr),
        pooled_or=estimate_of(ratio(pooled)) if binomial else None,
        predictive_rr=estimate_of(post.risk_ratio(post.predictive(average), p0.value)),
        tau=estimate_of(post.tau),
        p_benefit=benefit(1.0),
        p_rr_gt_1_1=rr.prob_greater(1.1),
        p_rr_gt_1_25=rr.prob_greater(1.25),
        p_rr_lt_1=1.0 - rr.prob_greater(1.0),
        p_harm=1.0 - benefit(1.0),
        p_benefit_beyond_1_1=benefit(1.1),
        p_benefit_beyond_1_25=benefit(1.25),
        nnt=NNT.from_risk_difference(estimate_of(rd), direction.higher_is_better),
        subgroups=subgroups,
        ratios=ratios,
        trials=_trials(post, binomial) if trials else (),
        diagnostics=Diagnostics(math.nan, math.nan, math.nan, 0),
        notes=tuple(design.notes),
        direction=direction,
        pooled_kind="row-average" if by_covariate else "pooled",
        average_note=average_description(labels.tolist(), design.subgroups, by_covariate,
                                         bool(design.coefs), design.intercept_at),
        control_risk=p0,
        mcse=mcse,
        intercept_at=design.intercept_at,
        engine="exact",
        method=method_of(post),
        log_marginal_likelihood=float(post.log_marginal_likelihood),
    )


def _subgroup(post: ExactPosterior, name: str, c: np.ndarray, p0: float,
              higher: bool) -> SubgroupEffect:
    """One subgroup's RR at p0 (its rows' average expected effect ``c @ phi``) and a new trial's."""
    rr = post.risk_ratio(post.linear(c), p0)
    benefit = _benefit(rr, higher)
    return SubgroupEffect(name, estimate_of(rr), benefit(1.0),
                          estimate_of(post.risk_ratio(post.predictive(c), p0)), benefit(1.1))


def _ratio(post: ExactPosterior, name: str, numerator: str, denominator: str,
           rows_of: dict[str, np.ndarray], p0: float) -> SubgroupRatio:
    """Return the ratio of two subgroups' RRs at p0 and P(ratio > 1), exactly."""
    r = post.risk_ratio_ratio(rows_of[numerator], rows_of[denominator], p0)
    return SubgroupRatio(name, numerator, denominator, estimate_of(r), r.prob_greater(1.0))


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

    As :func:`rebayes.bayes.coefficients.pooled_or_probabilities` gives them from draws: the
    pooled OR is that of the row-average effect (``d`` without covariates).
    """
    if posterior.problem.likelihood != "binomial":
        return {}
    pooled = posterior.linear(posterior.problem.A.mean(axis=0))
    return {f"{t:g}": float(pooled.prob_greater(math.log(t))) for t in thresholds}


def exact_coefficients(posterior: ExactPosterior, design: Design) -> list[Coefficient]:
    """Each covariate's coefficient on the ratio scale, from its exact marginal.

    As :func:`rebayes.bayes.coefficients.coefficients` gives them from draws: ``exp(beta)``'s
    median and 95% interval, and P(towards benefit) (towards a lower risk undeclared).
    """
    direction = Direction.from_schema(design.schema)
    towards = "benefit" if direction.declared else "a lower risk"
    scale = "RR" if design.likelihood == "normal" else "OR"
    out = []
    for name in design.coefs:
        beta = posterior.coefficient(name)
        low, mid, high = np.exp(beta.quantiles())
        above = beta.prob_greater(0.0)
        out.append(Coefficient(name, scale, float(mid), float(low), float(high),
                               above if direction.higher else 1.0 - above, towards))
    return out


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
