"""The records a fit reports: :class:`FitSummary` and the estimates it is made of.

Plain data with their texts and JSON (``to_dict``), whichever engine computed them: NUTS draws
(:func:`rebayes.bayes.quantities.summary_of`) or the exact engine's quadrature
(:func:`rebayes.bayes.exact_summary.exact_summary`). Nothing here needs xarray or PyMC, so
that a command answered by the exact engine starts in well under a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from rebayes import tables
from rebayes.bayes.baseline import ControlRisk
from rebayes.bayes.mcse import at_the_line, with_line
from rebayes.data.direction import Direction

__all__ = [
    "BEYOND_LINE",
    "DECISION",
    "EXACT_WORDS",
    "OR_THRESHOLDS",
    "NNT",
    "PROB",
    "Coefficient",
    "Diagnostics",
    "Estimate",
    "FitSummary",
    "SubgroupEffect",
    "SubgroupRatio",
    "TrialEffect",
]

PROB = 0.95
#: What a report says of a fit the exact engine answered, where a NUTS fit shows its gates.
EXACT_WORDS = "exact (quadrature, no Monte Carlo error)"
#: The line P(benefit), P(harm), P(benefit | subgroup) and P(RR ratio > 1) are read against,
#: and the one P(benefit beyond RR 1.1) is (a better-than-even chance of a worthwhile effect).
DECISION, BEYOND_LINE = 0.95, 0.5
#: Pooled-OR thresholds whose posterior probabilities ``rebayes fit --json`` reports.
OR_THRESHOLDS: tuple[float, ...] = (1.0, 1.25, 1.5, 2.0)


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

    @classmethod
    def from_risk_difference(cls, rd: Estimate, higher_is_better: bool | None = True) -> NNT:
        """NNT from the risk difference's summary (Altman 1998): 1 / median RD.

        ``higher_is_better`` None (undeclared): neither NNTB nor NNTH is named.
        """
        value = 1 / abs(rd.median) if rd.median != 0 else math.inf
        if higher_is_better is None:
            return cls(rd, value, None, None)
        toward_benefit = rd.median > 0 if higher_is_better else rd.median < 0
        return cls(rd, value, "benefit" if toward_benefit else "harm", higher_is_better)

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
class Coefficient:
    """One meta-regression coefficient on the ratio scale.

    Attributes
    ----------
    name : str
        The design column (a level, or a continuous covariate's name).
    scale : str
        ``"OR"`` (binomial model) or ``"RR"`` (normal model): ``exp(beta)`` is a ratio of them.
    median, ci_low, ci_high : float
        ``exp(beta)``: posterior median and 95% equal-tailed interval.
    p_towards_benefit : float
        P(the coefficient moves the effect towards benefit): P(beta > 0) when higher is
        better, P(beta < 0) when lower is or when no direction is declared.
    towards : str
        What ``p_towards_benefit`` is towards: ``"benefit"``, or ``"a lower risk"`` when the
        direction is undeclared.
    """

    name: str
    scale: str
    median: float
    ci_low: float
    ci_high: float
    p_towards_benefit: float
    towards: str = "benefit"

    @property
    def p_name(self) -> str:
        """``"P(towards benefit)"`` or ``"P(towards a lower risk)"``."""
        return f"P(towards {self.towards})"

    def to_dict(self) -> dict[str, float | str]:
        """JSON layout (``p_towards_lower_risk`` instead of ``p_towards_benefit`` undeclared)."""
        key = "p_towards_benefit" if self.towards == "benefit" else "p_towards_lower_risk"
        return {
            "scale": f"ratio of {self.scale}s per unit",
            "median": self.median,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            key: self.p_towards_benefit,
        }

    def sentence(self, unit: str = "") -> str:
        """One line: 'ablat: OR x0.97 per degree (0.95 to 0.99)'."""
        per = f" per {unit}" if unit else ""
        return (
            f"{self.name}: {self.scale} multiplied by {self.median:.3f}{per} "
            f"(95% CrI {self.ci_low:.3f} to {self.ci_high:.3f}); "
            f"{self.p_name} = {self.p_towards_benefit:.3f}"
        )


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
    """Shrunken effect of one analysed row (trial, or trial x stratum).

    ``scale`` ``"rr"``: the RR at the row's own baseline risk (NUTS, whose draws carry each
    row's baseline); ``"or"``: the shrunken odds ratio (the exact engine integrates the
    baselines out, and an RR at the row's own baseline is not one of its marginals).
    """

    row: str
    rr: Estimate
    scale: Literal["rr", "or"] = "rr"

    def to_dict(self) -> dict[str, Any]:
        """``{rr {...}}`` (``{or {...}}`` for a shrunken odds ratio)."""
        return {self.scale: self.rr.to_dict()}


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

    ``engine`` says what answered: ``"nuts"`` (draws; ``draws``, ``chains``, ``mcse`` and
    ``diagnostics`` describe them) or ``"exact"`` (quadrature,
    :func:`rebayes.bayes.exact_summary.exact_summary`: no Monte Carlo error, so ``mcse`` is 0,
    ``draws`` and ``chains`` are 0, ``method`` says how it was integrated and
    ``log_marginal_likelihood`` is log p(y)).
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
    engine: Literal["nuts", "exact"] = "nuts"
    method: str = ""
    log_marginal_likelihood: float | None = None

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

        :func:`rebayes.bayes.fit.fit` re-runs a diverging fit at target acceptance 0.99 and
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
            "seed": self.seed if self.engine == "nuts" else None,
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
            "diagnostics": self.diagnostics.to_dict() if self.engine == "nuts" else None,
            "notes": list(self.notes),
            "engine": self.engine,
            "method": self.method,
            "log_marginal_likelihood": self.log_marginal_likelihood,
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
            + (f"{self.chains} chains x {self.draws} draws; seed {self.seed}"
               if self.engine == "nuts" else "exact engine (quadrature: no Monte Carlo error)"),
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
        lines += ["", "Trial-specific (shrunken) RR at the trial's own baseline risk:"
                  if not self.trials or self.trials[0].scale == "rr" else
                  "Trial-specific (shrunken) OR (the RR at each trial's own baseline: "
                  "--engine nuts):"]
        if self.trials:
            trial_cells = tables.frame(["trial", "RR (95% CrI)"],
                                       [(t.row, t.rr.format()) for t in self.trials])
            lines.append(tables.text(trial_cells, align="ll", indent="  ", header=False))
        lines += [
            "",
            *([f"{kind} RR: {self.average_note}."] if self.average_note else []),
            f"Diagnostics: {self.diagnostics}"
            + ("" if self.diagnostics.ok else "  -- CHECK: below the usual thresholds")
            if self.engine == "nuts" else
            f"Method: {self.method}; log p(y) = {self.log_marginal_likelihood:.4f}",
        ]
        lines += [f"Note: {note}" for note in self.notes]
        return "\n".join(lines)


def _either_side(p: float) -> float:
    """Return the line a one-sided probability is read against: 0.95, or 0.05 (its other side)."""
    return DECISION if p >= 0.5 else round(1 - DECISION, 10)


