"""Absolute effects, GRADE summary-of-findings style: events per 1000 with and without treatment.

A relative effect means little without a baseline risk. GRADE's summary-of-findings tables
apply the pooled relative effect to an assumed control risk and report, per 1000 people,
the events expected with control, with treatment, and their difference (Guyatt GH, Oxman AD,
Santesso N, et al. GRADE guidelines: 12. Preparing summary of findings tables -- binary
outcomes. J Clin Epidemiol 2013;66:158-72). We do this per posterior draw of the pooled log
odds ratio ``d`` (the binomial model's effect scale), at an assumed control risk ``p0``::

    risk_treat = expit(logit(p0) + d)          per draw
    difference = risk_treat - p0               per draw

so the treated risk and the difference carry the posterior's full uncertainty (95%
equal-tailed credible intervals); the control risk is assumed, not estimated, and has no
interval (GRADE's "assumed risk"). Applying the odds ratio (rather than a risk ratio) keeps
the treated risk inside (0, 1) at every baseline, which is why the odds ratio is the usual
choice for transporting an effect across baselines. For the normal (log RR) model the draws
are log risk ratios and ``risk_treat = min(p0 * exp(d), 1)``.

The default baseline is the fit's one control risk p0, the median observed control risk over
the trials (each trial's strata summed; :mod:`rebayes.bayes.baseline`), GRADE's usual "study
population" choice and the risk the fit's RRs and NNT are stated at; users add their own
(``--risk``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import astuple, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import special

from rebayes import tables
from rebayes.bayes.quantities import estimate
from rebayes.bayes.records import Estimate
from rebayes.data.direction import Direction
from rebayes.display import ResultDisplay
from rebayes.errors import RebayesError

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.figure import Figure

    from rebayes.bayes.baseline import ControlRisk
    from rebayes.bayes.design import Design
    from rebayes.bayes.exact import ExactPosterior
    from rebayes.bayes.priors import PriorSet

__all__ = [
    "AbsoluteEffect",
    "AbsoluteEffects",
    "absolute_effects",
    "absolute_effects_exact",
    "absolute_effects_from_draws",
    "median_control_risk",
    "observed_control_risks",
]

PER = 1000


@dataclass(frozen=True)
class AbsoluteEffect:
    """Events per 1000 at one assumed control risk.

    Attributes
    ----------
    label : str
        Where the control risk comes from (``"median control risk"``, ``"given"``).
    control_risk : float
        The assumed control risk p0 (a proportion).
    control_per_1000 : float
        ``1000 * p0`` (assumed: no interval).
    treatment_per_1000 : Estimate
        Events per 1000 with treatment.
    difference_per_1000 : Estimate
        Treatment minus control, per 1000.
    p_benefit : float
        Posterior probability that the difference lies in the direction of benefit.
    """

    label: str
    control_risk: float
    control_per_1000: float
    treatment_per_1000: Estimate
    difference_per_1000: Estimate
    p_benefit: float

    def to_dict(self) -> dict[str, Any]:
        """``{label, control_risk, control_per_1000, treatment_per_1000 {...}, ...}``."""
        return {
            "label": self.label,
            "control_risk": self.control_risk,
            "control_per_1000": self.control_per_1000,
            "treatment_per_1000": self.treatment_per_1000.to_dict(),
            "difference_per_1000": self.difference_per_1000.to_dict(),
            "p_benefit": self.p_benefit,
        }


@dataclass(frozen=True, repr=False)
class AbsoluteEffects(ResultDisplay):
    """Absolute effects at one or more control risks (a GRADE summary-of-findings row each).

    Attributes
    ----------
    rows : tuple of AbsoluteEffect
    direction : Direction
        Which sign of the difference is benefit.
    effect_scale : str
        ``"log OR"`` (binomial model) or ``"log RR"`` (normal model).
    prior : str
    analysis : str
    baseline : str
        Where the first row's control risk comes from (a phrase; "" when given by hand).
    engine : {"nuts", "exact"}
        What answered: from draws, or by quadrature (:func:`absolute_effects_exact`).
    """

    rows: tuple[AbsoluteEffect, ...]
    direction: Direction
    effect_scale: str = "log OR"
    prior: str = ""
    analysis: str = ""
    baseline: str = ""
    engine: str = "nuts"

    def reading(self, row: AbsoluteEffect) -> str:
        """``"benefit"`` or ``"harm"``: how the median difference reads in the direction.

        ``"lower risk"`` or ``"higher risk"`` when the direction is undeclared.
        """
        signed = self.direction.benefit_risk_difference(row.difference_per_1000.median)
        if not self.direction.declared:
            return "lower risk" if signed > 0 else "higher risk"
        return "benefit" if signed > 0 else "harm"

    @property
    def p_name(self) -> str:
        """``"P(benefit)"``, or ``"P(difference < 0)"`` when the direction is undeclared."""
        return "P(benefit)" if self.direction.declared else "P(difference < 0)"

    def summary(self, row: AbsoluteEffect | None = None) -> str:
        """One sentence for the first row (or ``row``), GRADE's wording."""
        row = row or self.rows[0]
        d, diff = self.direction, row.difference_per_1000
        more = "more" if diff.median > 0 else "fewer"
        where = self.baseline if row is self.rows[0] and self.baseline else row.label
        return (
            f"At a control risk of {row.control_per_1000:.0f} per 1000 ({where}), "
            f"{d.treatment} gives {row.treatment_per_1000.median:.0f} per 1000 "
            f"(95% CrI {row.treatment_per_1000.ci_low:.0f} to "
            f"{row.treatment_per_1000.ci_high:.0f}): {abs(diff.median):.0f} {more} "
            f"{d.events} per 1000 (95% CrI {diff.ci_low:+.0f} to {diff.ci_high:+.0f}), "
            f"a {self.reading(row)}; " + (
                f"P(harm) = {1 - row.p_benefit:.3f}, P(benefit) = {row.p_benefit:.3f}."
                if self.reading(row) == "harm" and d.declared
                else f"{self.p_name} = {row.p_benefit:.3f}.")
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON record: ``{analysis, prior, engine, effect_scale, direction, per, rows}``."""
        return {
            "analysis": self.analysis,
            "prior": self.prior,
            "engine": self.engine,
            "effect_scale": self.effect_scale,
            "direction": self.direction.to_dict(),
            "per": PER,
            "rows": [self.direction.keys({**r.to_dict(), "reading": self.reading(r)})
                     for r in self.rows],
        }

    def to_dataframe(self) -> pd.DataFrame:
        """One row per control risk: control, treatment and difference per 1000 with CrIs."""
        return pd.DataFrame(
            [
                {
                    "label": r.label,
                    "control_risk": r.control_risk,
                    "control_per_1000": r.control_per_1000,
                    "treatment_per_1000": r.treatment_per_1000.median,
                    "treatment_low": r.treatment_per_1000.ci_low,
                    "treatment_high": r.treatment_per_1000.ci_high,
                    "difference_per_1000": r.difference_per_1000.median,
                    "difference_low": r.difference_per_1000.ci_low,
                    "difference_high": r.difference_per_1000.ci_high,
                    "p_benefit": r.p_benefit,
                    "reading": self.reading(r),
                }
                for r in self.rows
            ]
        )

    def __str__(self) -> str:
        d = self.direction
        head = (
            f"Absolute effects per 1000 ({d.events}; {d.treatment} vs {d.control}; "
            f"prior {self.prior or '?'}; from the pooled {self.effect_scale})"
        )
        t = self.to_dataframe()
        table = tables.frame(
            ["control risk", "control", d.treatment[:18], "difference", self.p_name],
            [(f"{r.control_risk:.3f} ({r.label})", f"{r.control_per_1000:.0f}",
              f"{r.treatment_per_1000:.0f} ({r.treatment_low:.0f} to {r.treatment_high:.0f})",
              f"{r.difference_per_1000:+.0f} ({r.difference_low:+.0f} to "
              f"{r.difference_high:+.0f})", f"{r.p_benefit:.3f}")
             for r in t.itertuples()],
        )
        return "\n".join([head, tables.text(table, align="lrrrr"), d.sentence()])

    def plot(self) -> Figure:
        """Events per 1000 with control and with treatment (95% CrI), one row per risk."""
        from rebayes.plots.tools import absolute_plot

        return absolute_plot(self.to_dataframe(), self.direction)

    def _short(self) -> str:
        return self.summary()

    def report_frame(self) -> pd.DataFrame:
        """Return the table the report shows (the control risk is in the sentence)."""
        return self.to_dataframe().drop(columns=["control_risk"])


def absolute_effects_from_draws(
    effect: np.ndarray | xr.DataArray,
    control_risks: Sequence[tuple[str, float]],
    direction: Direction | None = None,
    effect_scale: str = "log OR",
    prior: str = "",
    analysis: str = "",
    baseline: str = "",
) -> AbsoluteEffects:
    """Apply draws of a pooled effect to assumed control risks.

    Parameters
    ----------
    effect : array
        Posterior draws of the pooled log OR (or log RR when ``effect_scale="log RR"``).
    control_risks : sequence of (label, risk)
        Assumed control risks, each strictly between 0 and 1.
    direction : Direction, optional
        Default: higher is better.
    effect_scale : {"log OR", "log RR"}
    prior, analysis : str
        Labels carried to the output.
    baseline : str
        Where the first control risk comes from ("the median of the 10 trials' control
        arms"), said in the sentence.

    Returns
    -------
    AbsoluteEffects

    Examples
    --------
    >>> import numpy as np
    >>> out = absolute_effects_from_draws(np.zeros(10), [("given", 0.2)])
    >>> out.rows[0].difference_per_1000.median
    0.0
    """
    direction = direction or Direction()
    draws = np.asarray(effect, dtype=float).ravel()
    rows = []
    for label, p0 in control_risks:
        _check_risk(p0)
        if effect_scale == "log OR":
            treat = special.expit(special.logit(p0) + draws)
        else:
            treat = np.minimum(p0 * np.exp(draws), 1.0)
        diff = treat - p0
        rows.append(
            AbsoluteEffect(
                label=label,
                control_risk=float(p0),
                control_per_1000=PER * float(p0),
                treatment_per_1000=estimate(PER * treat),
                difference_per_1000=estimate(PER * diff),
                p_benefit=float(np.mean(direction.benefit_risk_difference(diff) > 0)),
            )
        )
    return AbsoluteEffects(tuple(rows), direction, effect_scale, prior, analysis, baseline)


def _check_risk(p0: float) -> None:
    if not 0 < p0 < 1:
        raise RebayesError(f"control risk {p0!r} must be strictly between 0 and 1")


def _control_risks(p0: ControlRisk, risks: Sequence[float]) -> list[tuple[str, float]]:
    """Return the fit's control risk p0, labelled by where it comes from, then the given ones."""
    label = "median control risk" if p0.source == "median" else "pooled control risk"
    return [(label, p0.value), *(("given", float(r)) for r in risks)]


def absolute_effects_exact(
    design: Design, prior: PriorSet, posterior: ExactPosterior | None = None,
    risks: Sequence[float] = (),
) -> AbsoluteEffects:
    """:func:`absolute_effects` by the exact engine: every number by quadrature.

    The events per 1000 with treatment and the difference are monotone maps of the pooled
    RR's exact marginal at each control risk (:func:`rebayes.bayes.exact_fit.risk_difference`),
    so their quantiles, mean and HDI carry no Monte Carlo error, and P(benefit) is the record's.

    Parameters
    ----------
    design : Design
        An analysis with one pooled effect (the overall one).
    prior : PriorSet
    posterior : ExactPosterior, optional
        The design's exact posterior under ``prior``, if already integrated.
    risks : sequence of float
        Further assumed control risks (proportions).
    """
    from rebayes.bayes.baseline import control_risk
    from rebayes.bayes.design import prior_on_model_scale
    from rebayes.bayes.exact import exact_posterior
    from rebayes.bayes.exact_fit import estimate_of, risk_difference

    prior = prior_on_model_scale(prior, design)
    post = posterior if posterior is not None else exact_posterior(design, prior)
    direction = Direction.from_schema(design.schema)
    binomial = design.likelihood == "binomial"
    p0 = control_risk(design.events[:, 0], design.n[:, 0], design.study_index)
    d = post.coefficient("d")
    rows = []
    for name, risk in _control_risks(p0, risks):
        _check_risk(risk)
        rr = post.risk_ratio(d, risk)
        diff = estimate_of(risk_difference(rr, risk, binomial))
        per = Estimate(*(PER * v for v in astuple(diff)))
        # The treated risk is the control risk plus the difference (capped at 1 for the
        # normal model's RR, as the draws' version caps it).
        treat = Estimate(*(min(PER * risk + v, PER) for v in astuple(per)))
        benefit = rr.prob_greater(1.0) if direction.higher else 1.0 - rr.prob_greater(1.0)
        rows.append(AbsoluteEffect(name, float(risk), PER * float(risk), treat, per, benefit))
    return AbsoluteEffects(tuple(rows), direction, "log OR" if binomial else "log RR",
                           prior.name, design.spec.name, p0.describe(), engine="exact")


def observed_control_risks(tree: xr.DataTree) -> np.ndarray:
    """Observed control risk of each trial of a fit (each trial's strata summed)."""
    from rebayes.bayes.baseline import trial_control_risks

    constant = tree["constant_data"].to_dataset()
    counts = constant if "events" in constant else tree["observed_data"].to_dataset()
    return trial_control_risks(counts["events"].sel(arm="control").values,
                               constant["n"].sel(arm="control").values,
                               constant["study_index"].values)


def median_control_risk(tree: xr.DataTree) -> float:
    """Return the fit's control risk p0 (:func:`rebayes.bayes.quantities.control_risk`)."""
    from rebayes.bayes.quantities import control_risk

    return control_risk(tree).value


def absolute_effects(tree: xr.DataTree, risks: Sequence[float] = ()) -> AbsoluteEffects:
    """Absolute effects of a fit at its control risk p0 and at ``risks``.

    p0 is the one control risk the fit's RRs and NNT are stated at: the median observed
    control risk of the trials (:mod:`rebayes.bayes.baseline`).

    Parameters
    ----------
    tree : xarray.DataTree
        A fit's tree (``rebayes.fit(...).tree``).
    risks : sequence of float
        Further assumed control risks (proportions).

    Returns
    -------
    AbsoluteEffects
    """
    from rebayes.bayes.quantities import control_risk, is_binomial, pooled_effect

    p0 = control_risk(tree)
    return absolute_effects_from_draws(
        pooled_effect(tree).values,
        _control_risks(p0, risks),
        Direction.of(tree),
        "log OR" if is_binomial(tree) else "log RR",
        prior=str(tree.attrs.get("prior", "")),
        analysis=str(tree.attrs.get("analysis", "")),
        baseline=p0.describe(),
    )
