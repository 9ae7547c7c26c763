"""Cumulative meta-analysis: the pooled answer as the trials arrived, Bayesian and RevMan's.

Trials are added one at a time in the order of a numeric column (the year of publication by
default) or of a declared categorical covariate's levels; ties keep the table's order. After
each addition, from the second trial on, the analysis is refitted on the trials so far (the
compiled model is reused, as in :mod:`rebayes.sensitivity.influence`) and RevMan's pooled risk ratio
(Mantel-Haenszel, fixed effect, by default) is recomputed beside it. Each step's table keeps
the rows of the full table in their original order, so the last step *is* the full analysis:
the same design, the same seed, the same numbers (Lau J et al. Cumulative meta-analysis of
therapeutic trials for myocardial infarction. N Engl J Med 1992;327:248-54).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rebayes import tables
from rebayes.bayes.quantities import Estimate
from rebayes.data.direction import Direction
from rebayes.data.schema import schema_of
from rebayes.data.trials import table_hash
from rebayes.display import ResultDisplay
from rebayes.errors import RebayesError
from rebayes.frequentist.pooling import AnalysisError, analyze

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from rebayes.bayes.priors import PriorSet
    from rebayes.bayes.sampling import SamplerSettings
    from rebayes.bayes.spec import AnalysisSpec

__all__ = ["CumulativeAnalysis", "CumulativeStep", "cumulative_meta_analysis", "trial_order"]


@dataclass(frozen=True)
class CumulativeStep:
    """The pooled answer once ``added`` has joined the trials before it.

    Attributes
    ----------
    added : str
        The trial added at this step.
    order_value : str
        Its value of the ordering column.
    k : int
        Trials in the analysis.
    rr : Estimate
        Bayesian pooled RR (at the control risk p0 of the trials so far).
    p_benefit : float
        P(benefit) in the dataset's direction.
    tau_median : float
    mh_rr, mh_low, mh_high, mh_p : float
        RevMan's pooled RR, its 95% CI and p value (NaN when no trial is estimable yet).
    """

    added: str
    order_value: str
    k: int
    rr: Estimate
    p_benefit: float
    tau_median: float
    mh_rr: float
    mh_low: float
    mh_high: float
    mh_p: float

    def to_dict(self) -> dict[str, Any]:
        """Return ``{added, order_value, k, rr {...}, p_benefit, tau_median, mh {...}}``."""
        def plain(x: float) -> float | None:
            return None if np.isnan(x) else float(x)

        return {
            "added": self.added,
            "order_value": self.order_value,
            "k": self.k,
            "rr": self.rr.to_dict(),
            "p_benefit": self.p_benefit,
            "tau_median": self.tau_median,
            "mh": {"rr": plain(self.mh_rr), "ci_low": plain(self.mh_low),
                   "ci_high": plain(self.mh_high), "p": plain(self.mh_p)},
        }


@dataclass(frozen=True, repr=False)
class CumulativeAnalysis(ResultDisplay):
    """Cumulative Bayesian and RevMan meta-analysis, one step per added trial.

    Attributes
    ----------
    steps : tuple of CumulativeStep
        From the second trial on; the last step uses every trial.
    order : tuple of str
        All trials in the order they are added (the first has no step of its own).
    order_by : str
    direction : Direction
    prior, analysis : str
    frequentist_label : str
        RevMan's name of the frequentist method (``"M-H, Fixed"``).
    """

    steps: tuple[CumulativeStep, ...]
    order: tuple[str, ...]
    order_by: str
    direction: Direction
    prior: str = ""
    analysis: str = ""
    frequentist_label: str = "M-H, Fixed"

    def sentence(self) -> str:
        """When (if ever) P(benefit) first passed 0.95, and where it ended."""
        d = self.direction
        first = next((s for s in self.steps if s.p_benefit > 0.95), None)
        last = self.steps[-1]
        text = (
            f"With all {last.k} trials P({d.benefit}) = {last.p_benefit:.3f} "
            f"(pooled RR {last.rr.format()})"
        )
        if first is None:
            return text + "; it never exceeded 0.95 as the trials accumulated."
        return (
            text + f"; it first exceeded 0.95 after {first.added} ({self.order_by} "
            f"{first.order_value}, {first.k} trials)."
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON record: ``{analysis, prior, order_by, order, direction, frequentist, steps}``."""
        return {
            "analysis": self.analysis,
            "prior": self.prior,
            "order_by": self.order_by,
            "order": list(self.order),
            "direction": self.direction.to_dict(),
            "frequentist": self.frequentist_label,
            "steps": [s.to_dict() for s in self.steps],
        }

    def to_dataframe(self) -> pd.DataFrame:
        """One row per step: ``added, order_value, k, rr_*, p_benefit, tau_median, mh_*``."""
        return pd.DataFrame(
            [
                {
                    "added": s.added, "order_value": s.order_value, "k": s.k,
                    "rr_median": s.rr.median, "rr_low": s.rr.ci_low, "rr_high": s.rr.ci_high,
                    "p_benefit": s.p_benefit, "tau_median": s.tau_median,
                    "mh_rr": s.mh_rr, "mh_low": s.mh_low, "mh_high": s.mh_high, "mh_p": s.mh_p,
                }
                for s in self.steps
            ]
        )

    def __str__(self) -> str:
        d = self.direction
        t = self.to_dataframe()

        def interval(median: float, low: float, high: float) -> str:
            return f"{median:.2f} ({low:.2f} to {high:.2f})"

        # Pairs, not a dict: the order column may be named like another one (``k``).
        columns = [
            ("+ trial", t["added"]),
            (self.order_by, t["order_value"].astype(str)),
            ("k", t["k"].astype(str)),
            ("pooled RR (95% CrI)", [interval(*v) for v in
                                     zip(t["rr_median"], t["rr_low"], t["rr_high"], strict=True)]),
            (f"P({d.benefit})", [f"{v:.3f}" for v in t["p_benefit"]]),
            (f"{self.frequentist_label} RR (95% CI)", [
                interval(*v) if not np.isnan(v[0]) else "not estimable"
                for v in zip(t["mh_rr"], t["mh_low"], t["mh_high"], strict=True)
            ]),
        ]
        table = tables.frame([h for h, _ in columns],
                             zip(*(values for _, values in columns), strict=True))
        return "\n".join([
            f"Cumulative meta-analysis by {self.order_by} (prior {self.prior or '?'}; first "
            f"trial {self.order[0]})",
            tables.text(table, align="lrrrrr"),
            self.sentence(),
        ])

    def plot(self) -> Figure:
        """Pooled RR (Bayesian and RevMan) and P(benefit) after each trial."""
        from rebayes.plots.tools import cumulative_plot

        return cumulative_plot(self)

    def _short(self) -> str:
        return self.sentence()


def trial_order(trials: pd.DataFrame, order_by: str = "year") -> list[tuple[str, str]]:
    """Return ``(study, value)`` in the order trials are added; ties keep the table's order.

    Parameters
    ----------
    trials : pandas.DataFrame
    order_by : str
        A numeric column, or a declared categorical covariate (its levels give the order).

    Raises
    ------
    RebayesError
        Unknown column, a missing value, or a column with no order.
    """
    schema = schema_of(trials)
    declared = schema.declared(order_by)
    column = declared.column if declared is not None else order_by
    if column not in trials.columns:
        raise RebayesError(
            f"--order-by {order_by}: no such column (columns: {', '.join(trials.columns)})"
        )
    first = trials.drop_duplicates("study")[["study", column]].reset_index(drop=True)
    if first[column].isna().any():
        missing = ", ".join(first.loc[first[column].isna(), "study"])
        raise RebayesError(f"--order-by {order_by}: no value for {missing}")
    if pd.api.types.is_numeric_dtype(first[column]):
        key = first[column].astype(float)
    elif declared is not None and declared.levels:
        rank = {str(level): i for i, level in enumerate(declared.levels)}
        key = first[column].astype(str).map(lambda v: rank.get(v, len(rank)))
    else:
        raise RebayesError(
            f"--order-by {order_by}: not numeric and not a declared covariate with levels"
        )
    ordered = first.iloc[np.argsort(key.to_numpy(), kind="stable")]
    return [(str(s), _fmt(v)) for s, v in zip(ordered["study"], ordered[column], strict=True)]


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def cumulative_meta_analysis(
    trials: pd.DataFrame,
    spec: AnalysisSpec,
    prior: str | PriorSet = "weakly_informative",
    order_by: str = "year",
    *,
    settings: SamplerSettings | None = None,
    seed: int | None = None,
    cache: bool = True,
    method: str = "MH",
    model: str = "fixed",
) -> CumulativeAnalysis:
    """Refit the analysis after each trial, in order of ``order_by``.

    Parameters
    ----------
    trials : pandas.DataFrame
        The table the analysis uses (its variant applied), from :func:`rebayes.load_trials`.
    spec : AnalysisSpec
        Usually the dataset's ``overall`` analysis.
    prior : str or PriorSet
    order_by : str
        Numeric column or declared ordered covariate (default ``year``).
    settings, seed, cache
        As in :func:`rebayes.fit`.
    method, model : str
        RevMan's method for the frequentist column (default M-H, fixed; RR throughout).

    Returns
    -------
    CumulativeAnalysis
    """
    from rebayes.bayes.design import build_design
    from rebayes.bayes.sampling import fit

    order = trial_order(trials, order_by)
    if len(order) < 2:
        raise RebayesError("a cumulative meta-analysis needs at least two trials")
    steps = []
    label = ""
    prior_name = analysis = ""
    direction = Direction()
    for k in range(2, len(order) + 1):
        kept = {s for s, _ in order[:k]}
        if k == len(order):
            table = trials  # the full table, untouched: the last step is the full analysis
        else:
            table = trials[trials["study"].astype(str).isin(kept)].reset_index(drop=True)
            table.attrs = {**trials.attrs, "data_hash": table_hash(table)}
        result = fit(spec, prior, seed=seed, settings=settings, cache=cache,
                     design=build_design(spec, table))
        s = result.summary()
        direction, prior_name, analysis = s.direction, s.prior, s.analysis
        try:
            mh = analyze(table, method=method, measure="RR", model=model).overall  # type: ignore[arg-type]
            label = mh.label
            freq = (mh.estimate, mh.ci_low, mh.ci_high, mh.p)
        except AnalysisError:
            freq = (np.nan,) * 4
        study, value = order[k - 1]
        steps.append(CumulativeStep(study, value, k, s.pooled_rr, s.p_benefit, s.tau.median,
                                    *map(float, freq)))
    return CumulativeAnalysis(tuple(steps), tuple(s for s, _ in order), order_by, direction,
                              prior_name, analysis, label or "M-H, Fixed")
