"""Cumulative meta-analysis: the pooled answer as the trials arrived, Bayesian and RevMan's.

Trials are added one at a time in the order of a numeric column (the year of publication by
default) or of a declared categorical covariate's levels; ties keep the table's order. A trial
is what the dataset says it is (:func:`rebayes.data.trials.trial_ids`): without a declared
strata column every row is a trial of its own and enters in its own year, so three trials by
one first author published in 1989, 1991 and 1995 enter as "Shechter (1989)", "Shechter
(1991)" and "Shechter (1995)", each at its place (as metafor's ``cumul(..., order=year)``
does). After each addition, from the second trial on, the analysis is refitted on the trials
so far (the compiled model is reused, as in :mod:`rebayes.sensitivity.influence`) and RevMan's
pooled estimate is recomputed beside it, with the dataset's measure, method and model unless
others are asked for. Each step's table keeps the rows of the full table in their original
order, so the last step *is* the full analysis: the same design, the same seed, the same
numbers (Lau J et al. Cumulative meta-analysis of therapeutic trials for myocardial infarction.
N Engl J Med 1992;327:248-54).

The summary sentence says when P(benefit) (P(RR < 1) when no direction is declared) first
passed 0.95, every later step at which it fell back below or rose above again, and where it
stands with every trial.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rebayes import tables
from rebayes.bayes.mcse import MARK, at_the_line, line_note, marked, with_line
from rebayes.bayes.records import Estimate
from rebayes.data.direction import Direction
from rebayes.data.schema import schema_of
from rebayes.data.trial_table import TrialTable, as_table, table_hash
from rebayes.data.trials import trial_ids
from rebayes.display import ResultDisplay
from rebayes.errors import AnalysisError, RebayesError
from rebayes.frequentist.pooling import analyze

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from rebayes.bayes.priors import PriorSet
    from rebayes.bayes.settings import SamplerSettings
    from rebayes.bayes.spec import AnalysisSpec

__all__ = [
    "THRESHOLD",
    "CumulativeAnalysis",
    "CumulativeStep",
    "cumulative_frequentist",
    "cumulative_meta_analysis",
    "trial_order",
]

#: The probability whose crossings the summary sentence follows.
THRESHOLD = 0.95


@dataclass(frozen=True)
class CumulativeStep:
    """The pooled answer once ``added`` has joined the trials before it.

    Attributes
    ----------
    added : str
        The trial added at this step (its row label: ``"Shechter (1991)"``).
    order_value : str
        Its value of the ordering column.
    k : int
        Trials in the analysis.
    rr : Estimate
        Bayesian pooled RR (at the control risk p0 of the trials so far).
    p_benefit : float
        P(benefit) in the dataset's direction (P(RR < 1) when it declares none).
    tau_median : float
    freq_estimate, freq_low, freq_high, freq_p : float
        RevMan's pooled estimate (in the analysis's measure: a ratio, or a difference for the
        RD), its CI and the p value of its Z test (NaN when no trial is estimable yet).
    p_benefit_mcse : float
        The Monte Carlo standard error of ``p_benefit`` (NaN: unknown); a step within two of
        them of 0.95 is at the line (:mod:`rebayes.bayes.mcse`).
    """

    added: str
    order_value: str
    k: int
    rr: Estimate
    p_benefit: float
    tau_median: float
    freq_estimate: float
    freq_low: float
    freq_high: float
    freq_p: float
    p_benefit_mcse: float = math.nan

    @property
    def at_the_line(self) -> bool:
        """Whether P(benefit) is within two MCSEs of :data:`THRESHOLD`."""
        return at_the_line(self.p_benefit, self.p_benefit_mcse, THRESHOLD)

    def to_dict(self) -> dict[str, Any]:
        """Return ``{added, order_value, k, rr, p_benefit, p_benefit_mcse, ..., frequentist}``."""
        def plain(x: float) -> float | None:
            return None if np.isnan(x) else float(x)

        return {
            "added": self.added,
            "order_value": self.order_value,
            "k": self.k,
            "rr": self.rr.to_dict(),
            "p_benefit": self.p_benefit,
            "p_benefit_mcse": plain(self.p_benefit_mcse),
            "at_the_line": self.at_the_line,
            "tau_median": self.tau_median,
            "frequentist": {"estimate": plain(self.freq_estimate),
                            "ci_low": plain(self.freq_low), "ci_high": plain(self.freq_high),
                            "p": plain(self.freq_p)},
        }


@dataclass(frozen=True)
class Crossing:
    """A step at which the probability crossed :data:`THRESHOLD` (up: from below to above)."""

    step: CumulativeStep
    up: bool


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
    measure : str
        The frequentist column's measure (``RR``, ``OR``, ``RD``, ``PETO_OR``).
    engine : {"nuts", "exact"}
        What answered each step (:mod:`rebayes.bayes.exact_fit`): exact steps carry no Monte
        Carlo error, so none is at the line.
    """

    steps: tuple[CumulativeStep, ...]
    order: tuple[str, ...]
    order_by: str
    direction: Direction
    prior: str = ""
    analysis: str = ""
    frequentist_label: str = "M-H, Fixed"
    measure: str = "RR"
    engine: str = "nuts"

    @property
    def measure_label(self) -> str:
        """``"RR"``, ``"OR"``, ``"RD"`` or ``"Peto OR"``."""
        return "Peto OR" if self.measure == "PETO_OR" else self.measure

    @property
    def crossings(self) -> tuple[Crossing, ...]:
        """Every step at which P(benefit) crossed :data:`THRESHOLD`, up or down, in order.

        The first trial alone has no step: the first step counts as a crossing up when it is
        above the threshold.
        """
        out = []
        above = False
        for step in self.steps:
            now = step.p_benefit > THRESHOLD
            if now != above:
                out.append(Crossing(step, now))
                above = now
        return tuple(out)

    def summary(self) -> str:
        """When P(benefit) first passed 0.95, when it fell back or rose again, where it ended."""
        d = self.direction
        name = d.p_name()
        last = self.steps[-1]
        crossings = self.crossings
        text = (
            f"With all {last.k} trials {d.p_text()} = "
            f"{with_line(last.p_benefit, last.p_benefit_mcse, THRESHOLD)} "
            f"(pooled RR {last.rr.format()})"
        )
        if not crossings:
            return text + f"; it never exceeded {THRESHOLD:g} as the trials accumulated."

        def where(c: Crossing) -> str:
            step = c.step
            # A crossing at the line may be Monte Carlo error alone: it says so.
            line = (f", {d.p_name()} {with_line(step.p_benefit, step.p_benefit_mcse, THRESHOLD)}"
                    if step.at_the_line else "")
            if step.added.endswith(f"({step.order_value})"):  # "Shechter (1991)"
                return f"{step.added[:-1]}; {step.k} trials{line})"
            return f"{step.added} ({self.order_by} {step.order_value}, {step.k} trials{line})"

        first, later = crossings[0], crossings[1:]
        text += f"; it first exceeded {THRESHOLD:g} after {where(first)}"
        # The verdict at the last step, never plain when it is at the line.
        caveat = f", {line_note(THRESHOLD)}" if last.at_the_line else ""
        if not later:
            return text + f" and stayed above it to the last step{caveat}."
        moves = ", then ".join(
            f"{'rose above' if c.up else 'fell back below'} it after {where(c)}" for c in later
        )
        holds = last.p_benefit > THRESHOLD
        return (
            text + f", then {moves}. {name} is "
            + (f"above {THRESHOLD:g} at the last step{caveat}" if holds else
               f"below {THRESHOLD:g} at the last step{caveat}: the early crossing does not hold")
            + f" ({len(later)} reversal{'s' if len(later) > 1 else ''})."
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON record.

        ``{analysis, prior, order_by, order, direction, frequentist, steps, threshold,
        crossings, holds_at_last_step, sentence}``.
        """
        return {
            "analysis": self.analysis,
            "prior": self.prior,
            "engine": self.engine,
            "order_by": self.order_by,
            "order": list(self.order),
            "direction": self.direction.to_dict(),
            "frequentist": {"analysis": self.frequentist_label, "measure": self.measure},
            "steps": [s.to_dict() for s in self.steps],
            "threshold": THRESHOLD,
            "crossings": [{"added": c.step.added, "k": c.step.k, "up": c.up,
                           "at_the_line": c.step.at_the_line} for c in self.crossings],
            "holds_at_last_step": bool(self.steps[-1].p_benefit > THRESHOLD),
            "sentence": self.summary(),
        }

    def to_dataframe(self) -> pd.DataFrame:
        """One row per step: ``added, order_value, k, rr_*, p_benefit, tau_median, freq_*``."""
        return pd.DataFrame(
            [
                {
                    "added": s.added, "order_value": s.order_value, "k": s.k,
                    "rr_median": s.rr.median, "rr_low": s.rr.ci_low, "rr_high": s.rr.ci_high,
                    "p_benefit": s.p_benefit, "tau_median": s.tau_median,
                    "freq_estimate": s.freq_estimate, "freq_low": s.freq_low,
                    "freq_high": s.freq_high, "freq_p": s.freq_p,
                }
                for s in self.steps
            ]
        )

    def report_frame(self) -> pd.DataFrame:
        """:meth:`to_dataframe` with the frequentist columns named by their analysis."""
        method = self.frequentist_label.split(",")[0]
        model = "" if self.frequentist_label.endswith("Fixed") else " random"
        return self.to_dataframe().rename(columns={
            "freq_estimate": f"RevMan {method}{model} {self.measure_label}".replace(
                "Peto Peto", "Peto"),
            "freq_low": f"{method} 95% low",
            "freq_high": f"{method} 95% high",
            "freq_p": f"{method} p",
        })

    def __str__(self) -> str:
        d = self.direction
        t = self.to_dataframe()
        digits = 3 if self.measure == "RD" else 2

        def interval(median: float, low: float, high: float, n: int = 2) -> str:
            return f"{median:.{n}f} ({low:.{n}f} to {high:.{n}f})"

        # Pairs, not a dict: the order column may be named like another one (``k``).
        columns = [
            ("+ trial", t["added"]),
            (self.order_by, t["order_value"].astype(str)),
            ("k", t["k"].astype(str)),
            ("pooled RR (95% CrI)", [interval(*v) for v in
                                     zip(t["rr_median"], t["rr_low"], t["rr_high"], strict=True)]),
            (f"P({d.benefit})", [marked(s.p_benefit, s.p_benefit_mcse, THRESHOLD)
                                 for s in self.steps]),
            (f"{self.frequentist_label} {self.measure_label} (95% CI)", [
                interval(*v, digits) if not np.isnan(v[0]) else "not estimable"
                for v in zip(t["freq_estimate"], t["freq_low"], t["freq_high"], strict=True)
            ]),
        ]
        table = tables.frame([h for h, _ in columns],
                             zip(*(values for _, values in columns), strict=True))
        lines = [
            f"Cumulative meta-analysis by {self.order_by} (prior {self.prior or '?'}; first "
            f"trial {self.order[0]}"
            + ("; exact: no Monte Carlo error)" if self.engine == "exact" else ")"),
            tables.text(table, align="lrrrrr"),
            self.summary(),
        ]
        if any(s.at_the_line for s in self.steps):
            lines.append(f"{MARK} {line_note(THRESHOLD)}: another run could put it on either side.")
        if not d.declared:
            lines.append(d.sentence())
        return "\n".join(lines)

    def plot(self) -> Figure:
        """Pooled RR (Bayesian and RevMan) and P(benefit) after each trial."""
        from rebayes.plots.tools import cumulative_plot

        return cumulative_plot(self.to_dataframe(), self.direction, self.order_by, self.measure,
                               self.measure_label, self.frequentist_label)

    def _short(self) -> str:
        return self.summary()


def trial_order(trials: pd.DataFrame, order_by: str = "year") -> list[tuple[str, str]]:
    """Return ``(trial, value)`` in the order trials are added; ties keep the table's order.

    Parameters
    ----------
    trials : pandas.DataFrame
    order_by : str
        A numeric column, or a declared categorical covariate (its levels give the order).

    Returns
    -------
    list of (str, str)
        Each trial as :func:`rebayes.data.trials.trial_ids` names it (a repeated study name
        without declared strata is a trial per row: ``"Shechter (1991)"``), with its value
        (that of its first row).

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
    first = (
        trials[[column]].assign(trial=trial_ids(trials))
        .drop_duplicates("trial")[["trial", column]].reset_index(drop=True)
    )
    if first[column].isna().any():
        missing = ", ".join(first.loc[first[column].isna(), "trial"])
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
    return [(str(s), _fmt(v)) for s, v in zip(ordered["trial"], ordered[column], strict=True)]


def _fmt(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _step_tables(
    trials: pd.DataFrame, order: list[tuple[str, str]]
) -> list[tuple[str, str, int, pd.DataFrame]]:
    """``(trial, value, k, table)`` per step from the second trial: the rows so far.

    Each table keeps the full table's rows in their order; the last is the full table itself.
    """
    ids = pd.Series(trial_ids(trials), index=trials.index)
    out = []
    for k in range(2, len(order) + 1):
        if k == len(order):
            table = trials  # the full table, untouched: the last step is the full analysis
        else:
            kept = {s for s, _ in order[:k]}
            table = trials[ids.isin(kept).to_numpy()].reset_index(drop=True)
            table.attrs = {**trials.attrs, "data_hash": table_hash(table)}
        study, value = order[k - 1]
        out.append((study, value, k, table))
    return out


def cumulative_frequentist(
    trials: pd.DataFrame,
    order_by: str = "year",
    *,
    method: str | None = None,
    model: str | None = None,
    measure: str | None = None,
) -> pd.DataFrame:
    """RevMan's pooled estimate after each trial, in order of ``order_by`` (no Bayesian fit).

    The frequentist column of :func:`cumulative_meta_analysis`, as metafor's
    ``cumul(rma.mh(...), order = year)`` or ``cumul(rma.peto(...), ...)`` computes it (which
    also starts from the first trial alone; here the first row is the second trial's step).

    Parameters
    ----------
    trials : pandas.DataFrame
    order_by : str
    method, model, measure : str, optional
        RevMan's method, model and measure; default: the dataset's.

    Returns
    -------
    pandas.DataFrame
        One row per step: ``added``, ``order_value``, ``k``, ``estimate``, ``ci_low``,
        ``ci_high`` (natural scale: a ratio, or the difference for the RD), ``p`` (NaN while
        no trial is estimable), and ``attrs["label"]`` (``"M-H, Fixed"``), ``attrs["measure"]``.

    Raises
    ------
    RebayesError
        As :func:`cumulative_meta_analysis`.
    """
    if method == "PETO" and measure is None:
        measure = "PETO_OR"  # Peto's method has one measure
    # The analysis first: an option RevMan does not offer is named before the order column.
    full = analyze(trials, method=method, measure=measure, model=model).overall  # type: ignore[arg-type]
    order = trial_order(trials, order_by)
    if len(order) < 2:
        raise RebayesError("a cumulative meta-analysis needs at least two trials")
    rows = []
    for study, value, k, table in _step_tables(trials, order):
        try:
            res = (full if table is trials else
                   analyze(table, method=method, measure=measure, model=model).overall)  # type: ignore[arg-type]
            numbers = (res.estimate, res.ci_low, res.ci_high, res.p)
        except AnalysisError:
            numbers = (np.nan,) * 4
        rows.append(dict(zip(("added", "order_value", "k", "estimate", "ci_low", "ci_high", "p"),
                             (study, value, k, *map(float, numbers)), strict=True)))
    frame = pd.DataFrame(rows)
    frame.attrs.update(label=full.label, measure=full.measure, order=[s for s, _ in order])
    return frame


def cumulative_meta_analysis(
    trials: TrialTable | pd.DataFrame,
    spec: AnalysisSpec,
    prior: str | PriorSet = "weakly_informative",
    order_by: str = "year",
    *,
    settings: SamplerSettings | None = None,
    seed: int | None = None,
    cache: bool = True,
    method: str | None = None,
    model: str | None = None,
    measure: str | None = None,
    engine: str = "nuts",
) -> CumulativeAnalysis:
    """Refit the analysis after each trial, in order of ``order_by``.

    Parameters
    ----------
    trials : TrialTable or pandas.DataFrame
        The table the analysis uses (its variant applied), from :func:`rebayes.load_table`
        (a DataFrame must carry its schema: :func:`rebayes.data.trial_table.as_table`).
    spec : AnalysisSpec
        Usually the dataset's ``overall`` analysis.
    prior : str or PriorSet
    order_by : str
        Numeric column or declared ordered covariate (default ``year``).
    settings, seed, cache
        As in :func:`rebayes.fit`.
    method, model, measure : str, optional
        RevMan's method (``MH``, ``IV``, ``PETO``), model (``fixed``, ``random``) and measure
        (``RR``, ``OR``, ``RD``, ``PETO_OR``) of the frequentist column; default: the
        dataset's (``dataset.toml``), as :func:`rebayes.frequentist.pooling.analyze`.
    engine : {"nuts", "exact", "auto"}
        ``exact``: every step by quadrature (:func:`rebayes.bayes.exact_fit.exact_summary`; an
        error for an analysis beyond its reach); ``auto``: exact where it can, else NUTS.

    Returns
    -------
    CumulativeAnalysis

    Raises
    ------
    RebayesError
        Fewer than two trials, an unknown order column, or an analysis RevMan does not
        offer (Peto's method with random effects, Peto's method with a risk ratio).
    """
    from rebayes.bayes.design import build_design

    table = as_table(trials, where="the cumulative analysis")
    trials = table.to_frame()  # the frequentist column's form (its schema in attrs)
    # The frequentist column first: a bad --measure fails before any fit.
    freq = cumulative_frequentist(trials, order_by, method=method, model=model, measure=measure)
    order = trial_order(trials, order_by)
    steps = []
    prior_name = analysis = ""
    direction = schema_of(trials).direction
    exact = _exact_prior(spec, prior, table, engine)
    for (study, value, k, rows), row in zip(_step_tables(trials, order),
                                            freq.itertuples(), strict=True):
        design = build_design(spec, table if rows is trials else table.with_rows(rows))
        if exact is not None:
            from rebayes.bayes.exact_fit import exact_summary

            s = exact_summary(design, exact, trials=False)
        else:
            from rebayes.bayes.fit import fit

            s = fit(spec, prior, seed=seed, settings=settings, cache=cache,
                    design=design).summary()
        direction, prior_name, analysis = s.direction, s.prior, s.analysis
        steps.append(CumulativeStep(study, value, k, s.pooled_rr, s.p_benefit, s.tau.median,
                                    row.estimate, row.ci_low, row.ci_high, row.p,
                                    s.mcse.get("p_benefit", math.nan)))
    return CumulativeAnalysis(tuple(steps), tuple(s for s, _ in order), order_by, direction,
                              prior_name, analysis, freq.attrs["label"], freq.attrs["measure"],
                              "exact" if exact is not None else "nuts")


def _exact_prior(spec: AnalysisSpec, prior: str | PriorSet, trials: TrialTable,
                 engine: str) -> PriorSet | None:
    """Return the prior set when the exact engine answers every step, else None (NUTS).

    Every step has the full analysis's structure on fewer trials, so the full design says
    whether the engine reaches it.
    """
    if engine == "nuts":
        return None
    from rebayes.bayes.design import build_design
    from rebayes.bayes.exact_fit import exact_answers
    from rebayes.bayes.priors import PriorSet as Prior
    from rebayes.bayes.priors import resolve_priors

    prior_set = prior if isinstance(prior, Prior) else resolve_priors([prior], spec.prior_file)[0]
    return prior_set if exact_answers(build_design(spec, trials), [prior_set], engine) else None
