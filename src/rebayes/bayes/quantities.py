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
import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import xarray as xr
from arviz_stats.base import array_stats
from scipy import special

from rebayes import tables
from rebayes.bayes.baseline import ControlRisk
from rebayes.bayes.baseline import control_risk as control_risk_of_rows
from rebayes.bayes.mcse import at_the_line, with_line
from rebayes.bayes.model import arm_risks, linear_predictor
from rebayes.data.direction import Direction

__all__ = [
    "Diagnostics",
    "Estimate",
    "FitSummary",
    "NNT",
    "SubgroupEffect",
    "SubgroupRatio",
    "TrialEffect",
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

PROB = 0.95
#: The line P(benefit), P(harm), P(benefit | subgroup) and P(RR ratio > 1) are read against,
#: and the one P(benefit beyond RR 1.1) is (a better-than-even chance of a worthwhile effect).
DECISION, BEYOND_LINE = 0.95, 0.5
SAMPLE_DIMS = ("chain", "draw")
# Stream of the fit's seed used for the new-trial draws (the fit itself uses 1-3).
_PREDICTIVE_STREAM = 4


@dataclass(frozen=True)
class Estimate:
    """Posterior summary of one quantity: median, mean, 95% equal-tailed and HDI intervals."""

    median: float
    mean: float
    ci_low: float
    ci_high: float
    hdi_low: float
    hdi_high: float

    def to_dict(self) -> dict[str, float]:
        """``{median, mean, ci_low, ci_high, hdi_low, hdi_high}``."""
        return {
            "median": self.median,
            "mean": self.mean,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "hdi_low": self.hdi_low,
            "hdi_high": self.hdi_high,
        }

    def format(self, digits: int = 2) -> str:
        """``median (ci_low to ci_high)``."""
        return f"{self.median:.{digits}f} ({self.ci_low:.{digits}f} to {self.ci_high:.{digits}f})"

    def __str__(self) -> str:
        return self.format()


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


@dataclass(frozen=True)
class NNT:
    """Number needed to treat from the risk difference at the control risk p0.

    Attributes
    ----------
    risk_difference : Estimate
        RD = treated minus control risk of the event at p0.
    value : float
        ``1 / |median RD|`` (infinite if the median RD is 0).
    kind : {"benefit", "harm"} or None
        NNT-benefit (NNTB) when the median RD lies in the direction of benefit (RD > 0 when
        higher is better, RD < 0 when lower is better), NNT-harm (NNTH) otherwise; None when
        the direction is undeclared (no NNTB or NNTH: the risk difference is given instead).
    higher_is_better : bool or None
        The direction the RD is read in (None: undeclared).
    """

    risk_difference: Estimate
    value: float
    kind: Literal["benefit", "harm"] | None
    higher_is_better: bool | None = True

    @property
    def interval(self) -> str:
        """Altman's (1998) interval: ``NNTB 5 to 40``, or ``NNTH 30 to inf to NNTB 6``.

        Undeclared direction: the risk difference per 1000 and its interval instead.
        """
        rd = self.risk_difference
        if self.higher_is_better is None:
            return (f"{1000 * rd.ci_low:+.0f} to {1000 * rd.ci_high:+.0f} per 1000")
        # The RD interval signed so that positive is benefit.
        lo, hi = (rd.ci_low, rd.ci_high) if self.higher_is_better else (-rd.ci_high, -rd.ci_low)

        def fmt(rd: float) -> str:
            return f"{1 / abs(rd):.1f}"

        if lo > 0:
            return f"NNTB {fmt(hi)} to {fmt(lo)}"
        if hi < 0:
            return f"NNTH {fmt(lo)} to {fmt(hi)}"
        return f"NNTH {fmt(lo) if lo < 0 else 'inf'} to inf to NNTB {fmt(hi) if hi > 0 else 'inf'}"

    def to_dict(self) -> dict[str, Any]:
        """``{risk_difference {...}, nnt, kind, interval}`` (``nnt``, ``kind`` None undeclared)."""
        declared = self.higher_is_better is not None
        return {
            "risk_difference": self.risk_difference.to_dict(),
            "nnt": self.value if math.isfinite(self.value) and declared else None,
            "kind": self.kind,
            "interval": self.interval,
        }

    def __str__(self) -> str:
        if self.higher_is_better is None:
            rd = self.risk_difference
            return (
                f"not given (direction undeclared); risk difference {1000 * rd.median:+.0f} "
                f"per 1000 ({self.interval})"
            )
        label = "NNTB" if self.kind == "benefit" else "NNTH"
        return f"{label} {self.value:.1f} ({self.interval})"


@dataclass(frozen=True)
class SubgroupEffect:
    """One subgroup: its pooled RR, P(benefit) and a new trial's predictive RR.

    RRs at the analysis's control risk p0, so that subgroups differ only in their effects.
    """

    name: str
    rr: Estimate
    p_benefit: float
    predictive: Estimate | None = None
    p_benefit_beyond_1_1: float = math.nan

    def to_dict(self, declared: bool = True) -> dict[str, Any]:
        """``{rr {...}, p_benefit, p_benefit_beyond_1_1, predictive_rr {...}}``.

        ``declared=False`` (no direction of benefit): the same probabilities under their
        literal names, ``p_rr_lt_1`` and ``p_rr_lt_0_91``.
        """
        names = (("p_benefit", "p_benefit_beyond_1_1") if declared
                 else ("p_rr_lt_1", "p_rr_lt_0_91"))
        out: dict[str, Any] = {"rr": self.rr.to_dict(), names[0]: self.p_benefit,
                               names[1]: self.p_benefit_beyond_1_1}
        if self.predictive is not None:
            out["predictive_rr"] = self.predictive.to_dict()
        return out


@dataclass(frozen=True)
class SubgroupRatio:
    """Ratio of two subgroups' RRs (``numerator`` over ``denominator``) and P(ratio > 1)."""

    name: str
    numerator: str
    denominator: str
    ratio: Estimate
    p_gt_1: float

    def to_dict(self) -> dict[str, Any]:
        """``{numerator, denominator, ratio {...}, p_gt_1}``."""
        return {
            "numerator": self.numerator,
            "denominator": self.denominator,
            "ratio": self.ratio.to_dict(),
            "p_gt_1": self.p_gt_1,
        }


@dataclass(frozen=True)
class TrialEffect:
    """Shrunken RR of one analysed row (trial, or trial x stratum) at its own baseline."""

    row: str
    rr: Estimate

    def to_dict(self) -> dict[str, Any]:
        """``{rr {...}}``."""
        return {"rr": self.rr.to_dict()}


@dataclass(frozen=True)
class Diagnostics:
    """The convergence verdict of a fit, as :func:`rebayes.checks.convergence.diagnose` gives it.

    The one verdict every output shows (see :mod:`rebayes.checks.gates`): the gates run over every
    posterior parameter and every reported quantity, derived ones and decision indicators
    included.

    Attributes
    ----------
    rhat_max : float
        Largest rank-normalised split R-hat.
    ess_bulk_min, ess_tail_min : float
        Smallest bulk and tail effective sample sizes.
    divergences : int
        Divergent transitions after warm-up.
    lowest_ess : str
        The quantity with the smallest bulk ESS.
    ebfmi_min : float
        Smallest E-BFMI over the chains (NaN without energy draws).
    failures : tuple of str
        One sentence per failing gate (empty when every gate passes).
    """

    rhat_max: float
    ess_bulk_min: float
    ess_tail_min: float
    divergences: int
    lowest_ess: str = ""
    ebfmi_min: float = math.nan
    failures: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether every gate passes (:class:`rebayes.checks.gates.Thresholds`)."""
        return not self.failures

    @classmethod
    def from_report(cls, report: Any) -> Diagnostics:
        """Condense a :class:`rebayes.checks.convergence.DiagnosticReport`."""
        table = report.table[~report.table["constant"]]
        lowest = str(table["ess_bulk"].idxmin()) if len(table) else ""
        return cls(
            rhat_max=float(table["rhat"].max()) if len(table) else math.nan,
            ess_bulk_min=float(table["ess_bulk"].min()) if len(table) else math.nan,
            ess_tail_min=float(table["ess_tail"].min()) if len(table) else math.nan,
            divergences=report.divergences,
            lowest_ess=lowest,
            ebfmi_min=min(report.ebfmi) if report.ebfmi else math.nan,
            failures=tuple(report.failures),
        )

    def to_dict(self) -> dict[str, Any]:
        """``{ok, rhat_max, ess_bulk_min, ess_tail_min, divergences, ebfmi_min, failures}``."""
        return {
            "ok": self.ok,
            "rhat_max": self.rhat_max,
            "ess_bulk_min": self.ess_bulk_min,
            "ess_tail_min": self.ess_tail_min,
            "divergences": self.divergences,
            "ebfmi_min": None if math.isnan(self.ebfmi_min) else self.ebfmi_min,
            "failures": list(self.failures),
        }

    def __str__(self) -> str:
        return (
            f"R-hat max {self.rhat_max:.3f}, ESS bulk min {self.ess_bulk_min:.0f} "
            f"({self.lowest_ess}), ESS tail min {self.ess_tail_min:.0f}, "
            f"divergences {self.divergences}, E-BFMI min {self.ebfmi_min:.2f}"
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
    """Weight of each subgroup in a meta-regression's row average: its share of the rows.

    Empty without subgroups. Rows outside every reported subgroup (e.g. a mixed stratum
    entered with its share) carry the remaining weight.
    """
    names = json.loads(tree.attrs.get("subgroups_json", "[]"))
    if not names or not _by_covariate(tree):
        return {}
    labels = np.asarray(_constant(tree)["row_subgroup"].values).astype(str)
    return {name: float(np.mean(labels == name)) for name in names}


def average_description(tree: xr.DataTree) -> str:
    """Say what a meta-regression's row-average RR is, with its weights ("" otherwise).

    E.g. ``"average over the 10 analysed rows, each weighing the same: early 7 rows
    (weight 0.70), late 3 rows (weight 0.30); ..."``, or, for a continuous
    covariate, ``"the effect at ablat = 33.46 degree (the mean of the 13 analysed rows); ..."``
    (the fit's ``intercept_at``, from :attr:`rebayes.bayes.design.Design.intercept_at`).
    """
    constant = _constant(tree)
    if not _by_covariate(tree):
        return ""
    labels = np.asarray(constant["row_subgroup"].values).astype(str)
    weights = average_weights(tree)
    if weights:
        counts = ", ".join(
            f"{name} {int(round(w * labels.size))} rows (weight {w:.2f})"
            for name, w in weights.items()
        )
        return (
            f"average over the {labels.size} analysed rows, each weighing the same: {counts}; "
            "a mix of the subgroups, not the overall analysis's pooled effect"
        )
    at = str(tree.attrs.get("intercept_at", ""))
    if "X" not in constant or not at:
        return (f"average over the {labels.size} analysed rows, each weighing the same; not "
                "the overall analysis's pooled effect")
    # The design centres its columns at the rows' means (rebayes.bayes.design): the row
    # average is the effect there, d.
    return f"the effect {at}; not the overall analysis's pooled effect"


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
    summary = estimate(rd)
    value = 1 / abs(summary.median) if summary.median != 0 else math.inf
    if higher_is_better is None:
        return NNT(summary, value, None, None)
    toward_benefit = summary.median > 0 if higher_is_better else summary.median < 0
    return NNT(summary, value, "benefit" if toward_benefit else "harm", higher_is_better)


def _probability(values: xr.DataArray, threshold: float, above: bool = True) -> float:
    return float((values > threshold).mean() if above else (values < threshold).mean())


# --- the summary object ---------------------------------------------------------------------


@dataclass(frozen=True)
class FitSummary:
    """Everything one fit reports; ``to_dict()`` is the ``rebayes fit --json`` record.

    RRs are risk ratios of the dataset's outcome, treatment over control; ``direction`` says
    which side of 1 is benefit. Pooled, subgroup and predictive RRs are at the typical control
    risk of each draw (see module docstring).

    Probabilities of the pooled RR. Literal, whatever the direction: ``p_rr_gt_1_1`` =
    P(RR > 1.1), ``p_rr_gt_1_25`` = P(RR > 1.25), ``p_rr_lt_1`` = P(RR < 1). On the
    direction's side (:attr:`Direction.benefit`): ``p_benefit`` = P(benefit) (P(RR > 1), or
    P(RR < 1) when lower is better), ``p_harm`` (the other side of 1), ``p_benefit_beyond_1_1``
    = P(benefit beyond RR 1.1) (P(RR > 1.1), or P(RR < 1/1.1) when lower is better) and
    ``p_benefit_beyond_1_25`` likewise with 1.25 (P(RR < 0.8) when lower is better). With an
    undeclared direction these attributes hold the side RR < 1 (P(RR < 1), P(RR > 1),
    P(RR < 0.91), P(RR < 0.8)) and print under those literal names; the JSON record then has
    no benefit keys (None) and gives the literal ``p_rr_lt_1``, ``p_rr_gt_1``,
    ``p_rr_lt_0_91``, ``p_rr_lt_0_8``.

    ``mcse`` holds the Monte Carlo standard errors of the decision probabilities (arviz-stats'
    MCSE of the mean of each indicator: ``p_benefit``, ``p_benefit_beyond_1_1``,
    ``p_rr_gt_1_1``, ``p_subgroup_benefit[name]``, ``p_ratio_gt_1[name]``); a probability
    within two of them of its line is *at the line* (:mod:`rebayes.bayes.mcse`) and is printed
    so (:meth:`decisions`).
    ``intercept_at`` says where a meta-regression's ``d`` (its row average, on which the effect
    prior acts) sits: :attr:`rebayes.bayes.design.Design.intercept_at`; empty otherwise.
    """

    analysis: str
    title: str
    prior: str
    prior_summary: str
    variant: str
    seed: int
    likelihood: str
    effect_scale: str
    draws: int
    chains: int
    typical_control_risk: Estimate
    pooled_rr: Estimate
    pooled_or: Estimate | None
    predictive_rr: Estimate
    tau: Estimate
    p_benefit: float
    p_rr_gt_1_1: float
    p_rr_gt_1_25: float
    p_rr_lt_1: float
    p_harm: float
    p_benefit_beyond_1_1: float
    p_benefit_beyond_1_25: float
    nnt: NNT
    subgroups: tuple[SubgroupEffect, ...]
    ratios: tuple[SubgroupRatio, ...]
    trials: tuple[TrialEffect, ...]
    diagnostics: Diagnostics
    notes: tuple[str, ...] = field(default=())
    direction: Direction = field(default=Direction())
    target_accept: float = 0.9
    pooled_kind: str = "pooled"
    average_note: str = ""
    control_risk: ControlRisk | None = None
    mcse: dict[str, float] = field(default_factory=dict)
    intercept_at: str = ""

    @property
    def at_control_risk(self) -> str:
        """``"at a control risk of 53.5%, the median of the 10 trials' control arms"``."""
        if self.control_risk is None:
            return f"at a control risk of {100 * self.typical_control_risk.median:.3g}%"
        return self.control_risk.sentence()

    @property
    def leans_to_harm(self) -> bool:
        """Whether the evidence points to harm: P(harm) > P(benefit).

        The pooled RR is a monotone function of the pooled effect, so this is also "the
        posterior median RR lies on the harm side of 1". Outputs then lead with harm.
        """
        return self.p_harm > self.p_benefit

    @property
    def divergences(self) -> int:
        """Divergent transitions after warm-up in the kept run."""
        return self.diagnostics.divergences

    @property
    def reliable(self) -> bool:
        """False when the fit still diverged after the sampler's remedies.

        :func:`rebayes.bayes.sampling.fit` re-runs a diverging fit at target acceptance 0.99 and
        with more draws; divergences that remain mean the sampler missed part of the
        posterior, and its intervals can be too narrow (seen: a 95% CrI 30% too narrow).
        """
        return self.diagnostics.divergences == 0

    def unreliable_message(self) -> str:
        """Return the warning line of an unreliable fit ("" when the fit is reliable)."""
        if self.reliable:
            return ""
        return (
            f"UNRELIABLE: {self.divergences} divergent transitions (target acceptance "
            f"{self.target_accept:g}, {self.chains} chains x {self.draws} draws); the sampler "
            "did not explore the whole posterior and the intervals may be too narrow"
        )

    def harm_sentence(self) -> str:
        """``"hydroxychloroquine probably increases the risk of death"``: the harm, in words."""
        d = self.direction
        return f"{d.treatment} {d.certainty(self.p_harm)} {d.effect_phrase(harmful=True)}"

    def decisions(self) -> list[tuple[str, float, float, float]]:
        """Every probability read against a line: ``(name, value, mcse, line)``.

        Names as in :meth:`to_dict` (``p_benefit``, or the literal ``p_rr_lt_1`` when the
        direction is undeclared; ``subgroups[name].p_benefit``,
        ``subgroup_ratios[name].p_gt_1``). P(harm) is 1 - P(benefit): the same MCSE.
        """
        nan = math.nan
        declared = self.direction.declared
        benefit = self.mcse.get("p_benefit", nan)
        out = [
            ("p_benefit" if declared else "p_rr_lt_1", self.p_benefit, benefit, DECISION),
            ("p_harm" if declared else "p_rr_gt_1", self.p_harm, benefit, DECISION),
            ("p_benefit_beyond_1_1" if declared else "p_rr_lt_0_91", self.p_benefit_beyond_1_1,
             self.mcse.get("p_benefit_beyond_1_1", nan), BEYOND_LINE),
        ]
        # A subgroup's P(benefit) or a ratio's P(> 1) near 0.05 is its other side near 0.95.
        out += [(f"subgroups[{g.name}].{'p_benefit' if declared else 'p_rr_lt_1'}",
                 g.p_benefit, self.mcse.get(f"p_subgroup_benefit[{g.name}]", nan),
                 _either_side(g.p_benefit)) for g in self.subgroups]
        out += [(f"subgroup_ratios[{r.name}].p_gt_1", r.p_gt_1,
                 self.mcse.get(f"p_ratio_gt_1[{r.name}]", nan), _either_side(r.p_gt_1))
                for r in self.ratios]
        return out

    def at_the_line(self) -> list[dict[str, float | str]]:
        """Return the probabilities within two MCSEs of their line: ``[{name, value, ...}]``."""
        return [{"name": name, "value": p, "mcse": mcse, "line": line}
                for name, p, mcse, line in self.decisions() if at_the_line(p, mcse, line)]

    def printed(self, digits: int = 3) -> dict[str, str]:
        """Print each of :meth:`decisions`: ``"0.946 (at the line: within 2 MCSE of 0.95)"``."""
        return {name: with_line(p, mcse, line, digits)
                for name, p, mcse, line in self.decisions()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record (the keys the issue lists, plus context)."""
        return {
            "analysis": self.analysis,
            "reliable": self.reliable,
            "divergences": self.divergences,
            "prior": self.prior,
            "prior_summary": self.prior_summary,
            "variant": self.variant,
            "seed": self.seed,
            "likelihood": self.likelihood,
            "effect_scale": self.effect_scale,
            "pooled_rr": self.pooled_rr.to_dict(),
            "pooled_kind": self.pooled_kind,
            "average_note": self.average_note,
            "intercept_at": self.intercept_at,
            "pooled_or": self.pooled_or.to_dict() if self.pooled_or is not None else None,
            "predictive_rr": self.predictive_rr.to_dict(),
            "tau": self.tau.to_dict(),
            **self._probabilities(),
            "mcse": {name: (None if math.isnan(mcse) else mcse)
                     for name, _, mcse, _ in self.decisions()},
            "at_the_line": self.at_the_line(),
            "direction": self.direction.to_dict(),
            "typical_control_risk": self.typical_control_risk.to_dict(),
            "control_risk": (self.control_risk.to_dict() if self.control_risk is not None
                             else None),
            "nnt": self.nnt.to_dict(),
            "subgroups": {s.name: s.to_dict(self.direction.declared) for s in self.subgroups},
            "subgroup_ratios": {r.name: r.to_dict() for r in self.ratios},
            "trials": {t.row: t.to_dict() for t in self.trials},
            "diagnostics": self.diagnostics.to_dict(),
            "notes": list(self.notes),
        }

    def _probabilities(self) -> dict[str, float | None]:
        """Return the JSON's probabilities: named by benefit only when a direction is declared."""
        declared = self.direction.declared
        out: dict[str, float | None] = {
            "p_benefit": self.p_benefit if declared else None,
            "p_rr_gt_1_1": self.p_rr_gt_1_1,
            "p_rr_gt_1_25": self.p_rr_gt_1_25,
            "p_rr_lt_1": self.p_rr_lt_1,
            "p_harm": self.p_harm if declared else None,
            "p_benefit_beyond_1_1": self.p_benefit_beyond_1_1 if declared else None,
            "p_benefit_beyond_1_25": self.p_benefit_beyond_1_25 if declared else None,
        }
        if not declared:
            # The same numbers under their literal names (the side RR < 1, see the class).
            out.update(p_rr_gt_1=self.p_harm, p_rr_lt_0_91=self.p_benefit_beyond_1_1,
                       p_rr_lt_0_8=self.p_benefit_beyond_1_25)
        return out

    def __str__(self) -> str:
        head = f"{self.analysis}" + (f": {self.title}" if self.title else "")
        kind = self.pooled_kind.capitalize()
        table: list[tuple[str, Estimate, int]] = [(f"{kind} RR*", self.pooled_rr, 2)]
        if self.pooled_or is not None:
            table.append((f"{kind} OR", self.pooled_or, 2))
        table += [
            ("Predictive RR (new trial)*", self.predictive_rr, 2),
            (f"tau ({self.effect_scale})", self.tau, 2),
            ("Risk difference*", self.nnt.risk_difference, 3),
        ]
        table += [(f"RR* {s.name}", s.rr, 2) for s in self.subgroups]
        table += [(f"Predictive RR* {s.name}", s.predictive, 2) for s in self.subgroups
                  if s.predictive is not None]
        table += [(f"RR ratio {r.name}", r.ratio, 2) for r in self.ratios]
        cells = tables.frame(
            ["", "median", "95% CrI", "95% HDI"],
            [(label, f"{e.median:.{n}f}", f"{e.ci_low:.{n}f} to {e.ci_high:.{n}f}",
              f"{e.hdi_low:.{n}f} to {e.hdi_high:.{n}f}") for label, e, n in table],
        )
        lines = [self.unreliable_message()] if not self.reliable else []
        lines += [
            head,
            f"prior {self.prior} ({self.prior_summary})",
            f"variant {self.variant}; {self.likelihood} likelihood ({self.effect_scale} scale); "
            f"{self.chains} chains x {self.draws} draws; seed {self.seed}",
            "",
            tables.text(cells, align="lrrr"),
            f"* {self.at_control_risk} (one control risk for every RR, the risk difference "
            "and the NNT).",
        ]
        d = self.direction
        shown = self.printed()
        benefit_name, harm_name, beyond_name = list(shown)[:3]
        benefit = (f"{d.p_text()} = {shown[benefit_name]}   "
                   f"P({d.beyond(1.1)}) = {shown[beyond_name]}   "
                   f"P({d.beyond(1.25)}) = {self.p_benefit_beyond_1_25:.3f}")
        harm = f"{d.harm_text()} = {shown[harm_name]}"
        lines += ["", d.sentence()]
        if self.leans_to_harm and d.declared:
            # The evidence points to harm: say so first, benefit second.
            lines += [f"{harm}: {self.harm_sentence()}", benefit]
        else:
            lines.append(f"{benefit}   {harm}")
        lines.append(f"NNT: {self.nnt}")
        for name, text in list(shown.items())[3:]:
            group = name[name.index("[") + 1:name.rindex("]")]
            which = "RR ratio > 1" if name.startswith("subgroup_ratios") else d.benefit
            lines.append(f"P({which} | {group}) = {text}")
        lines += ["", "Trial-specific (shrunken) RR at the trial's own baseline risk:"]
        if self.trials:
            trial_cells = tables.frame(["trial", "RR (95% CrI)"],
                                       [(t.row, t.rr.format()) for t in self.trials])
            lines.append(tables.text(trial_cells, align="ll", indent="  ", header=False))
        lines += [
            "",
            *([f"{kind} RR: {self.average_note}."] if self.average_note else []),
            f"Diagnostics: {self.diagnostics}"
            + ("" if self.diagnostics.ok else "  -- CHECK: below the usual thresholds"),
        ]
        lines += [f"Note: {note}" for note in self.notes]
        return "\n".join(lines)


def _either_side(p: float) -> float:
    """Return the line a one-sided probability is read against: 0.95, or 0.05 (its other side)."""
    return DECISION if p >= 0.5 else round(1 - DECISION, 10)


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
