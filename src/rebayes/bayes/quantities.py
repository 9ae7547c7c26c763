"""What a fit reports: risk ratios, decision probabilities, NNT and convergence, from draws.

Every function takes the fit's DataTree (``posterior`` + ``constant_data`` +
``observed_data``) and works per posterior draw; nothing is re-sampled except the new-trial
effect of :func:`predictive_rr`, drawn from a generator seeded with the fit's seed.

Conventions (the binomial model works on the log-odds scale):

- **Control risk** p0: one number per analysis, the median observed control-arm risk of the
  analysed trials (:mod:`rebayes.bayes.baseline`, which also says what happens when that
  median is 0 or 1), the same for every draw and for the RRs, risk differences, NNTs and
  absolute effects, and stated wherever they are shown (:func:`control_risk`).
- **Pooled effect**: the average over the analysed rows of each row's expected effect
  ``mu[s] = d[group(s)] + X[s] @ beta`` -- plain ``d`` for a common-effect model. For a
  meta-regression it is only a *row average*: each analysed row weighs the same, so each
  subgroup weighs by its number of rows (:func:`average_weights`), and it is not the overall
  analysis's pooled effect. It is reported under that name (:func:`pooled_kind`,
  :func:`average_description`); a meta-regression's answers are its subgroup RRs, their
  ratios and its slopes. The design centres its columns at their row means
  (:mod:`rebayes.bayes.design`), so this average is ``d`` itself, on which the effect prior acts.
- **Pooled RR** at p0: ``expit(logit(p0) + theta) / p0``, a monotone function of the pooled
  log OR ``theta``, so P(RR < 1) = P(theta < 0) and RR quantiles are transformed OR
  quantiles; pooled OR ``exp(theta)``. (Normal model: RR ``exp(theta)``, no OR.)
- **Subgroup RR**: the same, with theta the average expected effect of the subgroup's rows,
  at the *same* p0 for every subgroup, so that a ratio of subgroup RRs reflects the effect
  difference and not different baseline risks.
- **Trial-specific (shrunken) RR**: at each row's own baseline, ``expit(alpha + theta / 2) /
  expit(alpha - theta / 2)`` with ``theta[s]`` including the trial's random effect.
- **Predictive RR**: for a new trial, ``theta_new = pooled + tau * eps``, eps ~ N(0, 1), at p0;
  for a new trial of a subgroup (a covariate pattern), the subgroup's theta + tau * eps, with
  the same eps.
- **Benefit** follows the dataset's direction (:class:`rebayes.data.direction.Direction`, read
  from the fit's attrs): more events with treatment when higher is better, P(benefit) =
  P(pooled RR > 1); fewer when lower is better, P(benefit) = P(pooled RR < 1). Benefit
  *beyond* a ratio r is RR > r, or RR < 1/r (thresholds symmetric on the ratio scale).
- **NNT**: risk difference RD = p0 * (RR - 1) (treated minus control) at p0; NNT = 1 / |RD|,
  NNT-benefit (NNTB) when RD lies in the direction of benefit, NNT-harm (NNTH) otherwise. Its
  interval comes from RD's interval; when that includes 0 the NNT interval runs through
  infinity (Altman DG. Confidence intervals for the number needed to treat. BMJ
  1998;317:1309-12).
- Intervals: 95% equal-tailed (``ci_low``, ``ci_high``) and 95% highest-density (``hdi_*``),
  each computed on the scale reported.
"""

from __future__ import annotations

import functools
import json
import weakref
from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr
from arviz_stats.base import array_stats
from scipy import special

from rebayes.bayes import averages
from rebayes.bayes.baseline import ControlRisk
from rebayes.bayes.baseline import control_risk as control_risk_of_rows
from rebayes.bayes.model import arm_risks, linear_predictor
from rebayes.bayes.records import (
    NNT,
    PROB,
    Diagnostics,
    Estimate,
    FitSummary,
    SubgroupEffect,
    SubgroupRatio,
    TrialEffect,
)
from rebayes.data.direction import Direction

__all__ = [
    "estimate",
    "per_tree",
    "pooled_effect",
    "pooled_or",
    "average_description",
    "average_weights",
    "control_risk",
    "is_binomial",
    "pooled_kind",
    "pooled_rr",
    "predictive_rr",
    "subgroup_predictive_rrs",
    "subgroup_ratios",
    "subgroup_rrs",
    "summary_of",
    "trial_rrs",
    "typical_control_risk",
]

SAMPLE_DIMS = ("chain", "draw")
# Stream of the fit's seed used for the new-trial draws (the fit itself uses 1-3).
_PREDICTIVE_STREAM = 4


def estimate(values: xr.DataArray | np.ndarray) -> Estimate:
    """Summarise draws (all of them, whatever their dims) as an :class:`Estimate`."""
    flat = np.asarray(values, dtype=float).ravel()
    lo, med, hi = np.quantile(flat, [(1 - PROB) / 2, 0.5, (1 + PROB) / 2])
    hdi = array_stats.hdi(flat, PROB)
    return Estimate(
        median=float(med),
        mean=float(flat.mean()),
        ci_low=float(lo),
        ci_high=float(hi),
        hdi_low=float(hdi[0]),
        hdi_high=float(hdi[1]),
    )


# --- quantities per draw --------------------------------------------------------------------


# Per-draw quantities memoised on the tree they come from: one report asks for a fit's
# control risk some twenty times (pooled, predictive, subgroup and trial RRs, the
# risk difference, the diagnostics, the plots), at ~10 ms of xarray work each time. Keyed by
# the tree's identity (a weak reference, so the memo dies with the tree), the identities of
# its posterior, constant and observed data variables and its attributes, so that a tree
# given new draws, data or attributes is computed afresh rather than served stale.
_MEMO: dict[int, tuple[weakref.ref[xr.DataTree], tuple[Any, ...], dict[str, Any]]] = {}


def _fingerprint(tree: xr.DataTree) -> tuple[Any, ...]:
    return (
        *(
            id(variable)
            for group in ("posterior", "constant_data", "observed_data")
            if group in tree.children
            for variable in tree[group].variables.values()
        ),
        repr(sorted(tree.attrs.items())),  # the direction of benefit, the prior, the seed
    )


def _memoised[T](tree: xr.DataTree, name: str, compute: Callable[[], T]) -> T:
    """Return ``compute()``, computed once per tree (and per state of its draws) under ``name``.

    Callers must treat the result as read-only: the same object is handed to every caller.
    """
    key, fingerprint = id(tree), _fingerprint(tree)
    entry = _MEMO.get(key)
    if entry is None or entry[0]() is not tree or entry[1] != fingerprint:
        ref = weakref.ref(tree, lambda _, key=key: _MEMO.pop(key, None))  # type: ignore[misc]
        entry = (ref, fingerprint, {})
        _MEMO[key] = entry
    values = entry[2]
    if name not in values:
        values[name] = compute()
    return values[name]  # type: ignore[no-any-return]


def per_tree[T](func: Callable[[xr.DataTree], T]) -> Callable[[xr.DataTree], T]:
    """Memoise a function of one fit's tree with :func:`_memoised` (a decorator)."""
    name = f"{func.__module__}.{func.__qualname__}"

    @functools.wraps(func)
    def wrapper(tree: xr.DataTree) -> T:
        return _memoised(tree, name, lambda: func(tree))

    return wrapper


def is_binomial(tree: xr.DataTree) -> bool:
    """Whether the fit is of the binomial model (log OR scale; else the normal, log RR)."""
    return "alpha" in tree["posterior"].data_vars


def _posterior(tree: xr.DataTree) -> xr.Dataset:
    return tree["posterior"].to_dataset()


def _constant(tree: xr.DataTree) -> xr.Dataset:
    return tree["constant_data"].to_dataset()


@per_tree
def control_risk(tree: xr.DataTree) -> ControlRisk:
    """Return the control risk p0 of a fit: the median observed control risk of its trials.

    Read from the fit's counts (observed data for the binomial model, constant data for the
    normal one), each trial's rows summed (:func:`rebayes.bayes.baseline.control_risk`).
    """
    constant = _constant(tree)
    counts = constant if "events" in constant else tree["observed_data"].to_dataset()
    return control_risk_of_rows(
        counts["events"].sel(arm="control").values,
        constant["n"].sel(arm="control").values,
        constant["study_index"].values,
    )


def typical_control_risk(tree: xr.DataTree) -> xr.DataArray:
    """p0 per draw: the fit's one control risk (:func:`control_risk`), the same in every draw."""
    return xr.full_like(_posterior(tree)["tau"], control_risk(tree).value)


@per_tree
def pooled_effect(tree: xr.DataTree) -> xr.DataArray:
    """Pooled effect per draw on the model scale: mean over rows of ``mu[s]``."""
    return linear_predictor(_posterior(tree), _constant(tree), random=False).mean("row")


def _rr_at(theta: xr.DataArray, p0: xr.DataArray, binomial: bool) -> xr.DataArray:
    """RR of an effect ``theta`` (log OR or log RR) at control risk ``p0``."""
    if binomial:
        return special.expit(special.logit(p0) + theta) / p0
    return np.exp(theta)  # type: ignore[return-value]  # a DataArray in, a DataArray out


def pooled_rr(tree: xr.DataTree) -> xr.DataArray:
    """Pooled RR per draw at the control risk p0."""
    return _rr_at(pooled_effect(tree), typical_control_risk(tree), is_binomial(tree))


def pooled_or(tree: xr.DataTree) -> xr.DataArray | None:
    """Pooled OR per draw (binomial model); None for the normal (log RR) model."""
    return np.exp(pooled_effect(tree)) if is_binomial(tree) else None  # type: ignore[return-value]


@per_tree
def _new_trial_deviation(tree: xr.DataTree) -> xr.DataArray:
    """``tau * eps`` per draw: a new trial's random effect (eps seeded with the fit's seed)."""
    post = _posterior(tree)
    rng = np.random.default_rng([int(tree.attrs.get("seed", 0)), _PREDICTIVE_STREAM])
    eps = xr.DataArray(rng.standard_normal(post["tau"].shape), dims=post["tau"].dims)
    return post["tau"] * eps


def predictive_rr(tree: xr.DataTree) -> xr.DataArray:
    """RR of a new trial per draw: ``theta_new = pooled + tau * eps`` at the typical risk."""
    theta_new = pooled_effect(tree) + _new_trial_deviation(tree)
    return _rr_at(theta_new, typical_control_risk(tree), is_binomial(tree))


def _by_covariate(tree: xr.DataTree) -> bool:
    """Whether rows differ in expected effect: covariates (``X``) or one d per subgroup."""
    constant = _constant(tree)
    return "X" in constant or "group_index" in constant


def pooled_kind(tree: xr.DataTree) -> str:
    """``"pooled"``, or ``"row-average"`` for a meta-regression or separate subgroup effects.

    See the module docstring: there the mean over rows of each row's expected effect is a mix
    of subgroups weighted by their numbers of rows, not an overall pooled effect.
    """
    return "row-average" if _by_covariate(tree) else "pooled"


def average_weights(tree: xr.DataTree) -> dict[str, float]:
    """Weight of each subgroup in a fit's row average (:mod:`rebayes.bayes.averages`)."""
    return averages.average_weights(
        np.asarray(_constant(tree)["row_subgroup"].values).astype(str).tolist(),
        json.loads(tree.attrs.get("subgroups_json", "[]")), _by_covariate(tree))


def average_description(tree: xr.DataTree) -> str:
    """Say what a fit's row-average RR is, with its weights (:mod:`rebayes.bayes.averages`)."""
    constant = _constant(tree)
    return averages.average_description(
        np.asarray(constant["row_subgroup"].values).astype(str).tolist(),
        json.loads(tree.attrs.get("subgroups_json", "[]")), _by_covariate(tree),
        "X" in constant, str(tree.attrs.get("intercept_at", "")))


@per_tree
def trial_rrs(tree: xr.DataTree) -> xr.DataArray:
    """Shrunken RR per draw and row, at the row's own baseline risk."""
    post, constant = _posterior(tree), _constant(tree)
    if is_binomial(tree):
        risks = arm_risks(post, constant)
        return risks.sel(arm="treat", drop=True) / risks.sel(arm="control", drop=True)
    return np.exp(linear_predictor(post, constant, random=True))  # type: ignore[return-value]


@per_tree
def _subgroup_thetas(tree: xr.DataTree) -> dict[str, xr.DataArray]:
    names = json.loads(tree.attrs.get("subgroups_json", "[]"))
    if not names:
        return {}
    mu = linear_predictor(_posterior(tree), _constant(tree), random=False)
    labels = np.asarray(_constant(tree)["row_subgroup"].values).astype(str)
    return {name: mu.isel(row=np.flatnonzero(labels == name)).mean("row") for name in names}


def subgroup_rrs(tree: xr.DataTree) -> dict[str, xr.DataArray]:
    """RR per draw of each reported subgroup, at the analysis's control risk p0."""
    p0, binomial = typical_control_risk(tree), is_binomial(tree)
    return {name: _rr_at(theta, p0, binomial) for name, theta in _subgroup_thetas(tree).items()}


def subgroup_predictive_rrs(tree: xr.DataTree) -> dict[str, xr.DataArray]:
    """RR per draw of a new trial in each reported subgroup (its covariate pattern).

    ``theta_new = subgroup theta + tau * eps`` at the analysis's control risk p0, with the
    eps of :func:`predictive_rr`.
    """
    p0, binomial = typical_control_risk(tree), is_binomial(tree)
    deviation = _new_trial_deviation(tree)
    return {
        name: _rr_at(theta + deviation, p0, binomial)
        for name, theta in _subgroup_thetas(tree).items()
    }


def subgroup_ratios(tree: xr.DataTree) -> dict[str, tuple[str, str, xr.DataArray]]:
    """Ratio of subgroup RRs per draw: name -> (numerator, denominator, ratio)."""
    rrs = subgroup_rrs(tree)
    return {
        name: (num, den, rrs[num] / rrs[den])
        for name, num, den in json.loads(tree.attrs.get("ratios_json", "[]"))
    }


def risk_difference(tree: xr.DataTree) -> xr.DataArray:
    """Treated minus control event risk per draw, at the control risk p0."""
    p0 = typical_control_risk(tree)
    return p0 * (pooled_rr(tree) - 1)


def number_needed_to_treat(rd: xr.DataArray, higher_is_better: bool | None = True) -> NNT:
    """NNT from risk-difference draws (Altman 1998): 1 / median RD, interval via RD.

    Parameters
    ----------
    rd : xarray.DataArray
        Treated minus control risk per draw.
    higher_is_better : bool or None
        Whether a positive RD (more events with treatment) is benefit; False: a negative RD
        is, so that fewer events with treatment gives an NNTB; None (undeclared): neither,
        and no NNTB or NNTH is named.
    """
    return NNT.from_risk_difference(estimate(rd), higher_is_better)


def _probability(values: xr.DataArray, threshold: float, above: bool = True) -> float:
    return float((values > threshold).mean() if above else (values < threshold).mean())


def summary_of(tree: xr.DataTree, report: Any) -> FitSummary:
    """Summarise a fit (a DataTree from :func:`rebayes.fit`) with its convergence verdict.

    :func:`rebayes.bayes.summary.summarize` (``rb.summarize``) computes the verdict when it is
    not at hand; this module sits below :mod:`rebayes.checks.convergence`, which builds on its
    quantities.

    Parameters
    ----------
    tree : xarray.DataTree
    report : DiagnosticReport
        The fit's :func:`rebayes.checks.convergence.diagnose` result.

    Returns
    -------
    FitSummary
    """
    attrs = tree.attrs
    direction = Direction.of(tree)
    rr = pooled_rr(tree)
    odds = pooled_or(tree)
    pred = predictive_rr(tree)
    tau = _posterior(tree)["tau"]
    trials = trial_rrs(tree)
    subgroups = subgroup_rrs(tree)
    subgroup_predictive = subgroup_predictive_rrs(tree)
    ratios = subgroup_ratios(tree)
    rd = risk_difference(tree)
    mcse = report.table["mcse_mean"]
    return FitSummary(
        analysis=str(attrs.get("analysis", "")),
        title=str(attrs.get("title", "")),
        prior=str(attrs.get("prior", "")),
        prior_summary=str(attrs.get("prior_summary", "")),
        variant=str(attrs.get("variant", "")),
        seed=int(attrs.get("seed", 0)),
        likelihood=str(attrs.get("likelihood", "")),
        effect_scale=str(attrs.get("effect_scale", "")),
        draws=int(tau.sizes["draw"]),
        chains=int(tau.sizes["chain"]),
        typical_control_risk=estimate(typical_control_risk(tree)),
        pooled_rr=estimate(rr),
        pooled_or=estimate(odds) if odds is not None else None,
        predictive_rr=estimate(pred),
        tau=estimate(tau),
        p_benefit=direction.p_benefit(rr),
        p_rr_gt_1_1=_probability(rr, 1.1),
        p_rr_gt_1_25=_probability(rr, 1.25),
        p_rr_lt_1=_probability(rr, 1.0, above=False),
        p_harm=direction.p_harm(rr),
        p_benefit_beyond_1_1=direction.p_benefit(rr, 1.1),
        p_benefit_beyond_1_25=direction.p_benefit(rr, 1.25),
        nnt=number_needed_to_treat(rd, direction.higher_is_better),  # None: no NNTB/NNTH
        subgroups=tuple(
            SubgroupEffect(name, estimate(v), direction.p_benefit(v),
                           estimate(subgroup_predictive[name]), direction.p_benefit(v, 1.1))
            for name, v in subgroups.items()
        ),
        ratios=tuple(
            SubgroupRatio(name, num, den, estimate(v), _probability(v, 1.0))
            for name, (num, den, v) in ratios.items()
        ),
        trials=tuple(
            TrialEffect(str(row), estimate(trials.sel(row=row))) for row in trials["row"].values
        ),
        diagnostics=Diagnostics.from_report(report),
        notes=tuple(json.loads(attrs.get("notes_json", "[]"))),
        direction=direction,
        target_accept=float(attrs.get("target_accept", 0.9)),
        pooled_kind=pooled_kind(tree),
        average_note=average_description(tree),
        intercept_at=str(tree.attrs.get("intercept_at", "")),
        control_risk=control_risk(tree),
        mcse={str(name): float(value) for name, value in mcse.items()
              if str(name).startswith(("p_benefit", "p_rr_gt_1_1", "p_subgroup_benefit[",
                                       "p_ratio_gt_1["))},
    )
