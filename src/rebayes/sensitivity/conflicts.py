"""Conflicts in the evidence that a reader must see before trusting one pooled answer.

A meta-analysis can give a confident answer that rests on a choice the reader never sees.
Two such conflicts are checked on the frequentist (RevMan) analysis of the trials, whatever
the priors, since no prior removes them:

- **fixed vs random effects**: the fixed-effect and random-effects pooled estimates (the
  dataset's method and measure; DerSimonian-Laird tau^2 for the random one) lie on opposite
  sides of no effect, or one is significant at 5% and the other not, or they differ by more
  than a factor of :data:`RATIO_FACTOR` on the ratio scale. Random effects weigh small trials
  more; when small trials show larger effects than large ones (small-study effects, Sterne et
  al. 2011, BMJ 343:d4002), the two models answer different questions and disagree;
- **the largest trial vs the rest**: the largest trial's own estimate lies outside the 95% CI
  of the other trials pooled (the dataset's model), or the two lie on opposite sides of no
  effect with at least one of them significant. The classic case is intravenous magnesium
  after myocardial infarction, where many small trials favoured magnesium and the
  mega-trial ISIS-4 did not (Egger M, Smith GD. BMJ 1995;310:752-4).

Each conflict found is one sentence, for ``rebayes compare``, the report's key sentences and
its index. Pure functions of the trial table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from rebayes.data.direction import Direction
from rebayes.data.schema import schema_of
from rebayes.data.trial_table import declared_schema
from rebayes.data.trials import row_labels, trial_totals
from rebayes.errors import RebayesError
from rebayes.frequentist.pooling import analyze

if TYPE_CHECKING:
    import pandas as pd

    from rebayes.frequentist.pooling import MetaResult

__all__ = [
    "Conflict",
    "RATIO_FACTOR",
    "conflict_note",
    "evidence_conflicts",
    "fixed_vs_random",
    "largest_trial_vs_rest",
]

#: Fixed- and random-effects ratios further apart than this factor are flagged.
RATIO_FACTOR = 1.5
ALPHA = 0.05


@dataclass(frozen=True)
class Conflict:
    """One conflict in the evidence: its kind, its sentence and the numbers behind it.

    Attributes
    ----------
    kind : {"fixed_vs_random", "largest_trial"}
    sentence : str
        What a reader must know, in one sentence.
    details : dict
        The estimates compared (JSON-ready).
    """

    kind: Literal["fixed_vs_random", "largest_trial"]
    sentence: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def short(self) -> str:
        """``"fixed and random effects disagree"``, ``"ISIS-4 (the largest trial) ..."``."""
        if self.kind == "fixed_vs_random":
            return "fixed and random effects disagree"
        return f"the largest trial, {self.details.get('trial', '?')}, and the rest disagree"

    def to_dict(self) -> dict[str, Any]:
        """``{kind, sentence, details}``."""
        return {"kind": self.kind, "sentence": self.sentence, "details": dict(self.details)}

    def __str__(self) -> str:
        return self.sentence


def _measure(trials: pd.DataFrame) -> tuple[str, str]:
    """Return the ratio measure and method to pool with (RD, Peto: the M-H OR)."""
    schema = schema_of(trials)
    if schema.measure in ("RD", "PETO_OR") or schema.method == "PETO":
        return "OR", "MH"
    return schema.measure, schema.method


def _text(result: MetaResult, measure: str) -> str:
    """``"OR 1.01 (0.95 to 1.07)"``."""
    return f"{measure} {result.estimate:.2f} ({result.ci_low:.2f} to {result.ci_high:.2f})"


def _significance(result: MetaResult) -> str:
    return f"P = {result.p:.2g}" if result.p < ALPHA else f"not significant, P = {result.p:.2f}"


def _reading(result: MetaResult, direction: Direction) -> str:
    """``"benefit"``, ``"harm"`` (its CI excludes 1) or ``"no clear effect"``.

    Without a declared direction: ``"below 1"`` or ``"above 1"``.
    """
    if result.ci_low <= 1 <= result.ci_high:
        return "no clear effect"
    above = result.estimate > 1
    if not direction.declared:
        return "above 1" if above else "below 1"
    return "benefit" if above == direction.higher_is_better else "harm"


def fixed_vs_random(trials: pd.DataFrame, direction: Direction | None = None) -> Conflict | None:
    """Return the fixed- vs random-effects conflict of a trial table, or None.

    Parameters
    ----------
    trials : pandas.DataFrame
        A table from :func:`rebayes.load_trials`.
    direction : Direction, optional
        Default: the dataset's.

    Returns
    -------
    Conflict or None
    """
    direction = direction or declared_schema(trials, "the conflicts").direction
    measure, method = _measure(trials)
    try:
        fixed, random = (analyze(trials, measure=measure, method=method,  # type: ignore[arg-type]
                                 model=model, ci_level=0.95).overall  # type: ignore[arg-type]
                         for model in ("fixed", "random"))
    except RebayesError:  # no estimable study: no frequentist answer to compare
        return None
    if fixed.k < 2:
        return None
    reasons = []
    opposite = (fixed.estimate - 1) * (random.estimate - 1) < 0
    if opposite:
        reasons.append("they lie on opposite sides of no effect")
    if (fixed.p < ALPHA) != (random.p < ALPHA):
        which = "random" if random.p < ALPHA else "fixed"
        reasons.append(f"only the {which}-effects estimate is significant")
    factor = float(np.exp(abs(np.log(fixed.estimate) - np.log(random.estimate))))
    if factor > RATIO_FACTOR:
        reasons.append(f"they differ by a factor of {factor:.1f}")
    if not reasons:
        return None
    weights = fixed.studies.loc[fixed.studies["estimable"], ["study", "weight"]]
    heaviest = weights.loc[weights["weight"].idxmax()]
    sentence = (
        f"Fixed and random effects disagree: the fixed-effect {_text(fixed, measure)} "
        f"({_significance(fixed)}; {heaviest['study']} alone holds "
        f"{heaviest['weight']:.0f}% of its weight) against the random-effects "
        f"{_text(random, measure)} ({_significance(random)}; tau^2 = {random.tau2:.2f}, "
        "which weighs the small trials more): " + "; ".join(reasons)
        + ". The answer depends on which model is believed, and the Bayesian analysis is a "
        "random-effects one."
    )
    details = {
        "measure": measure,
        "fixed": {"estimate": fixed.estimate, "ci_low": fixed.ci_low, "ci_high": fixed.ci_high,
                  "p": fixed.p, "label": fixed.label},
        "random": {"estimate": random.estimate, "ci_low": random.ci_low,
                   "ci_high": random.ci_high, "p": random.p, "tau2": random.tau2,
                   "label": random.label},
        "factor": factor,
        "opposite_sides": opposite,
        "reasons": reasons,
        "heaviest_trial": str(heaviest["study"]),
        "heaviest_weight_percent": float(heaviest["weight"]),
    }
    return Conflict("fixed_vs_random", sentence, details)


def largest_trial_vs_rest(
    trials: pd.DataFrame, direction: Direction | None = None
) -> Conflict | None:
    """Return the conflict between the largest trial and the other trials pooled, or None.

    The largest trial has the most participants (its strata summed); the rest are pooled
    with the dataset's method and model. Needs at least two other estimable trials.

    Parameters
    ----------
    trials : pandas.DataFrame
    direction : Direction, optional
        Default: the dataset's.

    Returns
    -------
    Conflict or None
    """
    direction = direction or declared_schema(trials, "the conflicts").direction
    measure, method = _measure(trials)
    table = trial_totals(trials).reset_index(drop=True)
    table.attrs = dict(trials.attrs)
    if len(table) < 3:
        return None
    labels = row_labels(table, split=False)
    size = (table["n_treat"] + table["n_control"]).to_numpy()
    big = int(np.argmax(size))
    parts = []
    for rows in ([big], [i for i in range(len(table)) if i != big]):
        part = table.iloc[rows]
        part.attrs = dict(table.attrs)
        try:
            parts.append(analyze(part, measure=measure, method=method,  # type: ignore[arg-type]
                                 ci_level=0.95).overall)
        except RebayesError:  # no estimable study: nothing to compare
            return None
    own, rest = parts
    if own.k < 1 or rest.k < 2:
        return None
    estimate, low, high = own.estimate, own.ci_low, own.ci_high
    outside = not rest.ci_low <= estimate <= rest.ci_high
    significant = (low > 1 or high < 1) or rest.p < ALPHA
    opposite = (estimate - 1) * (rest.estimate - 1) < 0 and significant
    if not (outside or opposite):
        return None
    name = labels[big]
    share = size[big] / size.sum()
    where = ("outside the 95% CI of" if outside else "on the other side of no effect from")
    sentence = (
        f"The largest trial and the rest disagree: {name} ({int(size[big]):,} participants, "
        f"{share:.0%} of all) gives {_text(own, measure)}, {_reading(own, direction)}, "
        f"{where} the other {rest.k} trials pooled ({rest.label} {_text(rest, measure)}, "
        f"{_reading(rest, direction)}); a pooled answer that mixes them depends on how much "
        f"weight {name} is given."
    )
    details = {
        "measure": measure,
        "trial": name,
        "participants": int(size[big]),
        "share": float(share),
        "trial_estimate": {"estimate": estimate, "ci_low": low, "ci_high": high},
        "rest": {"estimate": rest.estimate, "ci_low": rest.ci_low, "ci_high": rest.ci_high,
                 "p": rest.p, "k": rest.k, "label": rest.label},
        "outside_rest_ci": outside,
        "opposite_sides": opposite,
    }
    return Conflict("largest_trial", sentence, details)


def evidence_conflicts(
    trials: pd.DataFrame, direction: Direction | None = None
) -> tuple[Conflict, ...]:
    """Return every conflict found in a trial table (fixed vs random, largest trial vs rest).

    Parameters
    ----------
    trials : pandas.DataFrame
        A table from :func:`rebayes.load_trials` (the analysed variant).
    direction : Direction, optional
        Default: the dataset's.

    Returns
    -------
    tuple of Conflict
        Empty when the evidence shows neither conflict.
    """
    found = (fixed_vs_random(trials, direction), largest_trial_vs_rest(trials, direction))
    return tuple(c for c in found if c is not None)


def conflict_note(conflicts: Sequence[Conflict]) -> str:
    """One sentence naming the conflicts, for a key sentence (``""`` without any).

    E.g. ``"CONFLICT in the evidence: fixed and random effects disagree; the largest trial,
    ISIS-4, and the rest disagree."``
    """
    if not conflicts:
        return ""
    return "CONFLICT in the evidence: " + "; ".join(c.short for c in conflicts) + "."
