"""Leave-one-trial-out influence: how much each trial moves the pooled answer.

The frequentist side recomputes RevMan's MH pooled RR without each trial; the Bayesian side
refits the analysis without each trial on the already compiled model (a refit is under a
second), and :func:`influence_table` puts the two side by side in an :class:`Influence`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from rebayes.bayes.mcse import at_the_line, line_note, with_line
from rebayes.data.direction import Direction
from rebayes.data.schema import schema_of
from rebayes.data.trial_table import TrialTable, as_table, table_hash
from rebayes.data.trials import trial_ids, trial_totals
from rebayes.display import ResultDisplay
from rebayes.frequentist.pooling import Method, meta_analysis

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from rebayes.bayes.priors import PriorSet
    from rebayes.bayes.settings import SamplerSettings
    from rebayes.bayes.spec import AnalysisSpec

__all__ = [
    "INFLUENCE_THRESHOLD",
    "Influence",
    "influence_table",
    "influential_trials",
    "leave_one_out",
    "leave_one_out_bayesian",
    "leave_one_out_frequentist",
]

# A trial is "influential" when leaving it out moves P(benefit) by more than this.
INFLUENCE_THRESHOLD = 0.05
#: The line P(benefit) is read against.
DECISION = 0.95


def leave_one_out_frequentist(
    trials: TrialTable | pd.DataFrame, method: Method = "MH", measure: str = "RR"
) -> pd.DataFrame:
    """Return the pooled estimate without each trial in turn (RevMan's sensitivity analysis).

    Parameters
    ----------
    trials : TrialTable or pandas.DataFrame
        A trial table; each trial's strata are summed first.
    method : {"MH", "IV", "DL"}
    measure : {"RR", "OR"}

    Returns
    -------
    pandas.DataFrame
        One row per left-out trial plus a first row ``(none)`` with all trials: ``left_out,
        estimate, ci_low, ci_high, p, i2, tau2, k``.
    """
    schema = schema_of(trials)
    totals = trial_totals(trials, schema)
    # One row per trial, named as everywhere else ("Shechter (1991)"): each leaves alone.
    totals = totals.assign(study=trial_ids(totals, schema))
    rows = []
    for left_out in ["(none)", *totals["study"]]:
        kept = totals[totals["study"] != left_out]
        res = meta_analysis(kept, method, measure)  # type: ignore[arg-type]
        rows.append(
            dict(left_out=left_out, estimate=res.estimate, ci_low=res.ci_low,
                 ci_high=res.ci_high, p=res.p, i2=res.i2, tau2=res.tau2, k=res.k)
        )
    return pd.DataFrame(rows)


def leave_one_out(
    trials: TrialTable | pd.DataFrame,
    summarise: Callable[[Any], Mapping[str, Any]],
) -> pd.DataFrame:
    """Apply ``summarise`` to the table without each trial (all of its strata) in turn.

    Parameters
    ----------
    trials : TrialTable or pandas.DataFrame
    summarise : callable
        Table -> mapping of named numbers (e.g. a Bayesian refit returning the pooled RR
        median, P(benefit) and tau). It is given a :class:`TrialTable` of the kept rows
        (:meth:`TrialTable.with_rows`) when ``trials`` is one, else a DataFrame.

    Returns
    -------
    pandas.DataFrame
        ``left_out`` plus the summary's keys; the first row, ``(none)``, uses every trial.
    """
    frame = trials.frame if isinstance(trials, TrialTable) else trials
    rows = []
    ids = pd.Series(trial_ids(frame, schema_of(trials)), index=frame.index)
    for left_out in ["(none)", *dict.fromkeys(ids)]:
        kept = frame[(ids != left_out).to_numpy()].reset_index(drop=True)
        # A new hash, so that a cached fit of the full table is never taken for this one.
        if isinstance(trials, TrialTable):
            part: Any = trials.with_rows(kept)
        else:
            kept.attrs = {**frame.attrs, "data_hash": table_hash(kept)}
            part = kept
        rows.append({"left_out": left_out, **summarise(part)})
    return pd.DataFrame(rows)


def leave_one_out_bayesian(
    trials: TrialTable | pd.DataFrame,
    spec: AnalysisSpec,
    prior: str | PriorSet = "weakly_informative",
    settings: SamplerSettings | None = None,
    seed: int | None = None,
    engine: str = "nuts",
    on_fallback: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """Refit an analysis without each trial (the compiled model is reused for every refit).

    Parameters
    ----------
    trials : TrialTable or pandas.DataFrame
        The table the analysis uses (its variant applied), from :func:`rebayes.load_table`
        (a DataFrame must carry its schema: :func:`rebayes.data.trial_table.as_table`).
    spec : AnalysisSpec
    prior : str or PriorSet
    settings : SamplerSettings, optional
    seed : int, optional
    engine : {"nuts", "exact", "auto"}
        What answers each refit (:func:`rebayes.bayes.exact_fit.exact_answers`, decided once
        on the full table): the exact engine's refits carry no Monte Carlo error.
    on_fallback : callable, optional
        Told why, when ``engine="auto"`` leaves the refits to NUTS.

    Returns
    -------
    pandas.DataFrame
        ``left_out, rr_median, rr_low, rr_high, p_benefit, p_benefit_mcse, tau_median,
        engine``; ``p_benefit`` is P(benefit) in the dataset's direction (P(RR > 1), or
        P(RR < 1) when lower is better; :class:`rebayes.data.direction.Direction`),
        ``p_benefit_mcse`` its Monte Carlo standard error (0 for the exact engine), ``engine``
        ``"nuts"`` or ``"exact"``.
    """
    from rebayes.bayes.design import build_design
    from rebayes.bayes.exact_fit import exact_answers
    from rebayes.bayes.priors import get_prior

    table = as_table(trials, where="leave_one_out_bayesian")
    prior_set = get_prior(prior) if isinstance(prior, str) else prior
    exact = exact_answers(build_design(spec, table), [prior_set], engine, on_fallback)

    def summarise(part: TrialTable) -> dict[str, Any]:
        from rebayes.bayes.fit import fit

        design = build_design(spec, part)
        refit = fit(spec, prior_set, seed=seed, settings=settings, design=design,
                    engine="exact" if exact else "nuts")
        if exact:
            from rebayes.bayes.exact_fit import exact_summary

            # Without the trials' shrunken effects (most of an exact record's time), kept
            # in the cache under the refit's key as a NUTS refit's summary is.
            s = refit.derived("refit", lambda: exact_summary(design, refit.prior, trials=False,
                                                             posterior=refit.exact))
        else:
            s = refit.summary()
        return dict(rr_median=s.pooled_rr.median, rr_low=s.pooled_rr.ci_low,
                    rr_high=s.pooled_rr.ci_high, p_benefit=s.p_benefit,
                    p_benefit_mcse=s.mcse.get("p_benefit", math.nan),
                    tau_median=s.tau.median, engine=s.engine)

    return leave_one_out(table, summarise)


@dataclass(frozen=True, eq=False, repr=False)
class Influence(ResultDisplay):
    """Leave-one-trial-out results, Bayesian and RevMan's, side by side.

    ``repr`` names the most influential trial, :meth:`verdict` says in a sentence which
    trials move P(benefit) beyond the threshold, :meth:`plot` draws them.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per left-out trial (first row: ``(none)``, all trials): ``left_out``,
        ``rr_median``, ``rr_low``, ``rr_high``, ``p_benefit``, ``tau_median``, ``mh_rr``,
        ``mh_low``, ``mh_high``, ``mh_p``, ``i2``, ``dl_tau2``, ``k``, ``delta_p_benefit``
        (leaving the trial out minus all trials) and ``influential``; ``p_benefit_mcse`` and
        ``engine`` (what answered the refits) when :func:`leave_one_out_bayesian` gave them.
    threshold : float
        |delta P(benefit)| beyond which a trial is influential.
    direction : Direction
        Which side of RR = 1 is benefit (labels of the plot).
    """

    table: pd.DataFrame
    threshold: float = INFLUENCE_THRESHOLD
    direction: Direction = field(default=Direction())

    def _mcse(self) -> pd.Series:
        """P(benefit)'s MCSE per row (NaN for a table without them)."""
        return self.table.get("p_benefit_mcse", pd.Series(math.nan, index=self.table.index))

    def at_the_line(self) -> list[bool]:
        """Per row, whether P(benefit) is within two MCSEs of 0.95 (no MCSE column: False)."""
        return [at_the_line(float(p), float(m), DECISION)
                for p, m in zip(self.table["p_benefit"], self._mcse(), strict=True)]

    def _p(self, row: int) -> str:
        """Row ``row``'s P(benefit), with the one wording when it is at the line."""
        return with_line(float(self.table["p_benefit"].iloc[row]),
                         float(self._mcse().iloc[row]), DECISION)

    @property
    def exact(self) -> bool:
        """Whether the exact engine answered every refit (an ``engine`` column of "exact")."""
        engine = self.table.get("engine")
        return engine is not None and bool((engine == "exact").all())

    @property
    def influential(self) -> list[str]:
        """The trials whose removal moves P(benefit) by more than :attr:`threshold`."""
        return self.table.loc[self.table["influential"], "left_out"].tolist()

    def summary(self) -> str:
        """Say in one sentence which trials move P(benefit) by more than the threshold.

        P(benefit) is named by the direction (``P(RR < 1)`` when it is undeclared).
        """
        p = self.direction.p_name()
        base = self._p(0)
        moved = [(i, r) for i, r in enumerate(self.table.itertuples()) if r.influential]
        near = [r.left_out for r, line in zip(self.table.itertuples(), self.at_the_line(),
                                              strict=True) if line and r.left_out != "(none)"]
        caveat = (f" Left out in turn, {', '.join(near)} leave{'s' if len(near) == 1 else ''} "
                  f"{p} {line_note(DECISION)}." if near else "")
        if self.exact:
            caveat += " Refits by the exact engine (quadrature: no Monte Carlo error)."
        if not moved:
            return (f"No single trial moves {p} ({base}) by more than "
                    f"{self.threshold} when left out.{caveat}")
        lines = "; ".join(f"{r.left_out} (to {self._p(i)}, {r.delta_p_benefit:+.3f})"
                          for i, r in moved)
        return (f"Leaving out a single trial moves {p} from {base} by more than "
                f"{self.threshold} for: {lines}.{caveat}")

    def _short(self) -> str:
        trials = self.table.iloc[1:]
        base = self.table["p_benefit"].iloc[0]
        text = (f"{len(trials)} trials left out in turn, {self.direction.p_name()} {base:.3f} "
                "with all")
        if len(trials):
            top = trials.loc[trials["delta_p_benefit"].abs().idxmax()]
            text += (f"; most influential: {top['left_out']} (to {top['p_benefit']:.3f}, "
                     f"{top['delta_p_benefit']:+.3f})")
        return text + f"; {len(self.influential)} beyond ±{self.threshold:g}"

    def to_dataframe(self) -> pd.DataFrame:
        """Return a copy of :attr:`table`."""
        return self.table.copy()

    def to_dict(self) -> list[dict[str, Any]]:
        """JSON-ready: one record per row of :attr:`table` (literal keys when undeclared)."""
        return [self.direction.keys(r) for r in self.table.to_dict(orient="records")]

    def plot(self, title: str = "", direction: Direction | None = None) -> Figure:
        """Draw :func:`rebayes.plots.influence.influence_plot` of the table.

        Parameters
        ----------
        title : str
        direction : Direction, optional
            Default: :attr:`direction`.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from rebayes.plots.influence import influence_plot

        return influence_plot(self.table, self.threshold, title, direction or self.direction)


def influence_table(
    bayesian: pd.DataFrame,
    frequentist: pd.DataFrame,
    direction: Direction | None = None,
) -> Influence:
    """Bayesian and RevMan leave-one-out results side by side, with the change in P(benefit).

    Parameters
    ----------
    bayesian : pandas.DataFrame
        From :func:`leave_one_out_bayesian`.
    frequentist : pandas.DataFrame
        From :func:`leave_one_out_frequentist`.
    direction : Direction, optional
        The dataset's direction of benefit (labels of :meth:`Influence.plot`).

    Returns
    -------
    Influence
        Its ``table``: one row per left-out trial (first row: none), with
        ``delta_p_benefit`` (leaving the trial out minus all trials) and ``influential``
        (|delta| > 0.05).
    """
    merged = bayesian.merge(
        frequentist.rename(columns={"estimate": "mh_rr", "ci_low": "mh_low",
                                    "ci_high": "mh_high", "p": "mh_p", "tau2": "dl_tau2"}),
        on="left_out",
    )
    baseline = merged.loc[merged["left_out"] == "(none)", "p_benefit"].iloc[0]
    merged["delta_p_benefit"] = merged["p_benefit"] - baseline
    merged["influential"] = merged["delta_p_benefit"].abs() > INFLUENCE_THRESHOLD
    return Influence(merged, INFLUENCE_THRESHOLD, direction or Direction())


def influential_trials(influence: Influence) -> list[str]:
    """Return the trials whose removal moves P(benefit) by more than :data:`INFLUENCE_THRESHOLD`."""
    return influence.influential
