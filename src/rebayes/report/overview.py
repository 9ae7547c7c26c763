"""What the report's index leads with: what varies across analyses, priors and data variants.

A reader of many analyses under many priors needs first what differs between them (the
range of the decision probabilities, the conclusions that change), the conflicts in the
evidence that no prior removes, and a warning that many probabilities are read against one
line. A heat map whose cells all show the same value says nothing a sentence cannot; it is
replaced by that sentence (:func:`uniform_panels`). Pure functions over the report's
comparisons; ``index.html`` and ``SUMMARY.md`` render the same sentences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from rebayes.bayes.mcse import at_the_line, line_note
from rebayes.data.direction import Direction
from rebayes.sensitivity.comparison import Comparison
from rebayes.sensitivity.conclusions import multiplicity_sentence, probabilities_at_the_line
from rebayes.sensitivity.conflicts import Conflict

__all__ = ["Overview", "at_the_line_sentence", "overview", "uniform_panels"]

#: At most this many cases at the line are named; the rest are counted.
NAMED_AT_THE_LINE = 6

#: The heat map's panels: decision-table column -> what it shows.
PANELS = ("p_benefit", "p_beyond")
#: The line P(benefit) and P(harm) are read against.
DECISION = 0.95


def uniform_panels(decision: pd.DataFrame, digits: int = 2) -> dict[str, float]:
    """Return the panels of the decision heat map whose every cell shows one value.

    Parameters
    ----------
    decision : pandas.DataFrame
        :func:`rebayes.sensitivity.comparison.decision_table`.
    digits : int
        The decimals the map prints.

    Returns
    -------
    dict
        Column (``p_benefit``, ``p_beyond``) -> its one printed value, for each uniform panel.
    """
    out = {}
    for column in PANELS:
        values = decision[column].dropna().round(digits).unique()
        if len(values) == 1:
            out[column] = float(values[0])
    return out


def at_the_line_sentence(decision: pd.DataFrame, direction: Direction) -> str:
    """Return which values of P(benefit) or P(harm) are at the 0.95 line ("" if none are).

    Parameters
    ----------
    decision : pandas.DataFrame
        :func:`rebayes.sensitivity.comparison.decision_table` (with ``p_benefit_mcse``).
    direction : Direction

    Returns
    -------
    str
        ``"In 2 of the 14 cases P(benefit, RR > 1) or P(harm, RR < 1) is at the line: within
        2 MCSE of 0.95 (...)"``,
        naming each case (analysis, prior, data variant and value), at most
        :data:`NAMED_AT_THE_LINE` of them.
    """
    if "p_benefit_mcse" not in decision.columns:
        return ""
    d = direction
    cases = []
    for r in decision.itertuples():
        p, mcse = float(r.p_benefit), float(r.p_benefit_mcse)
        for name, value in ((f"P(benefit, {d.benefit})", p), (f"P(harm, {d.harm})", 1 - p)):
            if at_the_line(value, mcse, DECISION) and (d.declared or value == p):
                cases.append(f"{r.label}, {str(r.prior).replace('_', ' ')} prior, {r.variant} "
                             f"data: {name} = {value:.3f}")
    if not cases:
        return ""
    named = "; ".join(cases[:NAMED_AT_THE_LINE])
    more = f"; and {len(cases) - NAMED_AT_THE_LINE} more" if len(cases) > NAMED_AT_THE_LINE else ""
    what = (f"P(benefit, {d.benefit}) or P(harm, {d.harm})" if d.declared
            else f"P({d.benefit})")
    return (f"In {len(cases)} of the {len(decision)} cases {what} is {line_note(DECISION)} "
            f"({named}{more}): another run of the sampler could put "
            f"{'it' if len(cases) == 1 else 'them'} on either side of {DECISION:g}.")


@dataclass(frozen=True)
class Overview:
    """The index's lead: sentences on what varies, the conflicts and multiplicity.

    Attributes
    ----------
    varies : tuple of str
        The range of the decision probabilities, and the count of conclusions that change.
    flips : tuple of str
        Each conclusion that changes with the prior or data variant, named by its analysis.
    conflicts : tuple of str
        Conflicts in the evidence (:mod:`rebayes.sensitivity.conflicts`).
    multiplicity : str
        The multiplicity sentence ("" when few probabilities meet the line).
    uniform : str
        The sentence replacing a heat map whose every cell is one value ("" otherwise).
    panels : tuple of str
        The heat map's panels to draw (none: no map).
    """

    varies: tuple[str, ...]
    flips: tuple[str, ...]
    conflicts: tuple[str, ...]
    multiplicity: str
    uniform: str
    panels: tuple[str, ...]

    def markdown(self) -> list[str]:
        """Return the lead as markdown lines (``SUMMARY.md``)."""
        lines = ["## What varies", "", *(f"- {s}" for s in self.varies)]
        lines += [f"- {s}" for s in self.flips]
        lines += [f"- **Conflict in the evidence:** {s}" for s in self.conflicts]
        if self.uniform:
            lines.append(f"- {self.uniform}")
        if self.multiplicity:
            lines += ["", self.multiplicity]
        return [*lines, ""]


def _span(values: pd.Series) -> str:
    low, high = float(values.min()), float(values.max())
    return f"{low:.2f}" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f} to {high:.2f}"


def overview(
    comparisons: Sequence[Comparison],
    decision: pd.DataFrame,
    direction: Direction,
    conflicts: Sequence[Conflict] = (),
) -> Overview:
    """Return what the index leads with.

    Parameters
    ----------
    comparisons : sequence of Comparison
        One per analysis, in report order.
    decision : pandas.DataFrame
        Their :func:`~rebayes.sensitivity.comparison.decision_table`.
    direction : Direction
        The dataset's direction of benefit.
    conflicts : sequence of Conflict
        Conflicts in the evidence of the analysed table.

    Returns
    -------
    Overview
    """
    d = direction
    analyses = decision["analysis"].nunique()
    priors = decision["prior"].nunique()
    variants = decision["variant"].nunique()
    split = decision["label"].nunique() > analyses  # a meta-regression's subgroups
    where = (f"{analyses} {'analysis' if analyses == 1 else 'analyses'}"
             + (" (each subgroup of a meta-regression on its own)" if split else "")
             + f", {priors} priors and {variants} data variant{'s' if variants != 1 else ''}")
    varies = [
        f"Across {where}, P(benefit, {d.benefit}) runs from {_span(decision['p_benefit'])} and "
        f"P({d.beyond(1.1)}) from {_span(decision['p_beyond'].dropna())}."
    ]
    if (1 - decision["p_benefit"]).max() > 0.5:
        harm = 1 - decision["p_benefit"]
        varies.append(f"P(harm, {d.harm}) runs from {_span(harm)}: the evidence leans to harm "
                      f"in {int((harm > 0.5).sum())} of the {len(harm)} cases.")
    near = at_the_line_sentence(decision, d)
    if near:
        varies.append(near)
    flips = tuple(f"{c.analysis.replace('_', ' ')}: {sentence}"
                  for c in comparisons for sentence in c.flips)
    if flips:
        varies.append(f"{len(flips)} conclusion{'s' if len(flips) != 1 else ''} change with the "
                      "prior or the data variant:")
    else:
        varies.append("No conclusion changes with the prior or the data variant.")
    count = sum(probabilities_at_the_line(c.conclusions) for c in comparisons)
    parts = "their subgroups and ratios, " if split else ""
    multiplicity = multiplicity_sentence(
        count, f"across {analyses} {'analysis' if analyses == 1 else 'analyses'}, {parts}"
               f"{priors} priors and {variants} data variant{'s' if variants != 1 else ''}")
    same = uniform_panels(decision)
    names = {"p_benefit": f"P(benefit, {d.benefit})", "p_beyond": f"P({d.beyond(1.1)})"}
    uniform = ""
    if same:
        said = " and ".join(f"{names[c]} is {v:.2f}" for c, v in same.items())
        uniform = (f"{said[:1].upper()}{said[1:]} in every analysis, prior and data variant "
                   f"(to two decimals): one number, so no heat map shows "
                   f"{'it' if len(same) == 1 else 'them'}.")
    return Overview(
        varies=tuple(varies),
        flips=flips,
        conflicts=tuple(str(c) for c in conflicts),
        multiplicity=multiplicity,
        uniform=uniform,
        panels=tuple(c for c in PANELS if c not in same),
    )
