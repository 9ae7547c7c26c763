"""Conclusions a reader draws, and where they flip with the prior or the data variant.

A :class:`Rule` is one conclusion ("P(benefit) > 0.95", "the 95% interval lies above 1",
...); :func:`assess` judges it in every row (prior x variant) of a comparison table, with the
Monte Carlo error of each value; a :class:`Conclusion` *flips* when it holds in some rows and
not in others, and says so in a sentence or a prior x variant table. Benefit follows the
dataset's direction (:class:`rebayes.data.trials.direction.Direction`): when fewer events is
better, P(benefit) = P(RR < 1), the benefit beyond 1.1 is RR < 1/1.1 and the interval rule
asks for a pooled RR interval below 1. A meta-regression is judged by its subgroups, never by
its row average.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import pandas as pd

from rebayes.bayes.mcse import at_the_line, line_note
from rebayes.data.direction import Direction

__all__ = [
    "Conclusion",
    "DECISION",
    "MULTIPLICITY_MIN",
    "Rule",
    "assess",
    "default_rules",
    "indexed_names",
    "find_flips",
    "multiplicity_sentence",
    "probabilities_at_the_line",
]

#: The probability line conclusions are read against.
DECISION = 0.95
#: From this many probabilities read against one line, outputs carry the multiplicity sentence.
MULTIPLICITY_MIN = 4
# --- conclusions that flip -----------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A conclusion drawn from one column of the comparison table: ``column > threshold``.

    With ``sense="below"`` the conclusion is ``column < threshold`` instead.

    Attributes
    ----------
    label : str
        How the conclusion reads (``"P(benefit) > 0.95"``).
    column : str
        Table column.
    threshold : float
    mcse_column : str, optional
        Column holding the value's Monte Carlo standard error; a value within two MCSEs of
        the threshold is called out.
    digits : int
        Decimals when printing values.
    sense : {"above", "below"}
        Whether the conclusion holds above the threshold or below it.
    complement : bool
        Judge ``1 - column`` instead (P(harm) from the ``p_benefit`` column; its MCSE is the
        same): the value printed is the complement too.
    """

    label: str
    column: str
    threshold: float
    mcse_column: str | None = None
    digits: int = 3
    sense: Literal["above", "below"] = "above"
    complement: bool = False

    def value(self, record: Any) -> float:
        """Return the value this rule judges in one table row."""
        value = float(record[self.column])
        return 1.0 - value if self.complement else value

    def holds(self, value: float) -> bool:
        """Whether the conclusion holds for a value of the column."""
        return bool(value > self.threshold if self.sense == "above" else value < self.threshold)


def indexed_names(columns: Iterable[object], base: str) -> list[str]:
    """Return the ``x`` of every column named ``base[x]``, in column order.

    The comparison table names per-subgroup and per-ratio columns so
    (``p_subgroup_benefit[early]``, ``p_ratio_gt_1[late vs early]``).

    Examples
    --------
    >>> indexed_names(["p_ratio_gt_1[a vs b]", "p_ratio_gt_1_mcse[a vs b]"], "p_ratio_gt_1")
    ['a vs b']
    """
    prefix = f"{base}["
    return [str(c)[len(prefix):-1] for c in columns
            if str(c).startswith(prefix) and str(c).endswith("]")]


def default_rules(table: pd.DataFrame, direction: Direction | None = None) -> tuple[Rule, ...]:
    """Return the conclusions a reader of a meta-analysis draws, for the table's columns.

    Parameters
    ----------
    table : pandas.DataFrame
        A comparison table (or any table with some of its columns).
    direction : Direction, optional
        Which side of RR = 1 is benefit; default ``table.attrs["direction"]``, else
        undeclared (the rules then name the side RR < 1: ``P(RR < 1) > 0.95``). It sets the
        rules on the benefit beyond RR 1.1 (column ``p_benefit_beyond_1_1``; a table without
        it falls back on ``p_rr_gt_1_1`` when higher is better) and on the pooled RR's
        interval (above 1, or below 1).

    Notes
    -----
    Where the evidence leans to harm (P(benefit) below 0.5 in the median row) the harm side's
    rules come first: ``P(harm) > 0.95`` and the pooled RR's interval on the harm side of 1.

    A meta-regression with subgroups (columns ``p_subgroup_benefit[name]``) is judged by
    ``P(benefit in <subgroup>) > 0.95`` per subgroup (after ``P(harm in <subgroup>) > 0.95``
    where the subgroup leans to harm) and by its ratios, never by its row average.
    """
    direction = direction or table.attrs.get("direction") or Direction()
    beyond = "p_benefit_beyond_1_1"
    if beyond not in table.columns and direction.higher:
        beyond = "p_rr_gt_1_1"
    if direction.higher:
        interval = Rule("the 95% interval of the pooled RR lies above 1 (lower end shown)",
                        "rr_low", 1.0, digits=2)
    else:
        interval = Rule(
            "the 95% interval of the pooled RR lies below 1 (upper end shown)",
            "rr_high",
            1.0,
            digits=2,
            sense="below",
        )
    rules = [
        *_harm_rules(table, direction),
        Rule(f"{direction.p_name()} > 0.95", "p_benefit", DECISION, "p_benefit_mcse"),
        Rule(f"P({direction.beyond(1.1)}) > 0.5", beyond, 0.5, f"{beyond}_mcse"),
        interval,
        Rule(
            "the Bayes factor favours an effect (BF01 for d = 0 below 1)",
            "bf01_d",
            1.0,
            "bf01_d_mcse",
            digits=2,
            sense="below",
        ),
    ]
    subgroups = indexed_names(table.columns, "p_subgroup_benefit")
    if subgroups:
        # A meta-regression's "pooled" RR is only a row average of its subgroups (weighted by
        # their numbers of rows), and its d the reference level's effect: its conclusions are
        # the subgroups' own.
        rules = [rule for name in subgroups for rule in _subgroup_rules(table, direction, name)]
    for name in indexed_names(table.columns, "p_ratio_gt_1"):
        rules.append(Rule(f"P(RR ratio {name} > 1) > 0.95", f"p_ratio_gt_1[{name}]", DECISION,
                          f"p_ratio_gt_1_mcse[{name}]"))
    return tuple(r for r in rules if r.column in table.columns)


def _harm_rules(table: pd.DataFrame, direction: Direction) -> list[Rule]:
    """Return the harm side's conclusions, first, where the evidence leans to harm.

    Leaning to harm as :attr:`rebayes.bayes.records.FitSummary.leans_to_harm` says, in the
    median row (P(benefit) below 0.5): a reader of a harmful treatment asks whether harm is
    shown, and "P(benefit) > 0.95 under no prior" does not say it. Undeclared, the names stay
    neutral (``P(RR > 1) > 0.95``).
    """
    if "p_benefit" not in table.columns or not float(table["p_benefit"].median()) < 0.5:
        return []
    side = "harm; " if direction.declared else ""
    if direction.higher:
        interval = Rule(f"the 95% interval of the pooled RR lies below 1 ({side}upper end shown)",
                        "rr_high", 1.0, digits=2, sense="below")
    else:
        interval = Rule(f"the 95% interval of the pooled RR lies above 1 ({side}lower end shown)",
                        "rr_low", 1.0, digits=2)
    return [Rule(f"{direction.harm_name()} > 0.95", "p_benefit", DECISION, "p_benefit_mcse",
                 complement=True), interval]


def _subgroup_rules(table: pd.DataFrame, direction: Direction, name: str) -> list[Rule]:
    """Return a subgroup's conclusions, harm's first where it leans to harm.

    ``P(benefit in <name>) > 0.95``; before it ``P(harm in <name>) > 0.95`` where the
    subgroup's P(benefit) is below 0.5 in the median row (neutral names undeclared).
    """
    column, mcse = f"p_subgroup_benefit[{name}]", f"p_subgroup_benefit_mcse[{name}]"
    rules = [Rule(f"P({direction.benefit_noun} in {name}) > 0.95", column, DECISION, mcse)]
    if column in table.columns and float(table[column].median()) < 0.5:
        harm = "harm" if direction.declared else direction.harm
        rules.insert(0, Rule(f"P({harm} in {name}) > 0.95", column, DECISION, mcse,
                             complement=True))
    return rules


class Outcome(NamedTuple):
    """One row of the comparison table judged by one rule."""

    prior: str
    variant: str
    value: float
    holds: bool
    near: bool  # within two Monte Carlo standard errors of the threshold


@dataclass(frozen=True)
class Conclusion:
    """Whether one rule holds in each row of the comparison table.

    Attributes
    ----------
    rule : Rule
    rows : tuple of Outcome
        Per row: prior, variant, value, whether the rule holds, and whether the value is
        within two Monte Carlo standard errors of the threshold.
    """

    rule: Rule
    rows: tuple[Outcome, ...]

    @property
    def _valid(self) -> list[Outcome]:
        return [r for r in self.rows if not math.isnan(r.value)]

    @property
    def flips(self) -> bool:
        """Whether the conclusion holds in some rows and not in others."""
        return len({r.holds for r in self._valid}) > 1

    @property
    def dimension(self) -> str:
        """What varies between the rows: ``prior``, ``data variant``, or both."""
        priors = {r.prior for r in self.rows}
        variants = {r.variant for r in self.rows}
        if len(variants) <= 1:
            return "prior"
        if len(priors) <= 1:
            return "data variant"
        return "prior and data variant"

    def _label(self, row: Outcome) -> str:
        return {
            "prior": row.prior,
            "data variant": row.variant,
            "prior and data variant": f"{row.prior} ({row.variant} data)",
        }[self.dimension]

    def _span(self, rows: list[Outcome]) -> str:
        d = self.rule.digits
        low, high = min(r.value for r in rows), max(r.value for r in rows)
        same = f"{low:.{d}f}" == f"{high:.{d}f}"
        return f"{low:.{d}f}" if same else f"{low:.{d}f} to {high:.{d}f}"

    def _grouped(self, rows: list[Outcome], key: str | None) -> str:
        """``name (value)`` per group of rows, flagging values near the threshold."""
        groups: dict[str, list[Outcome]] = {}
        for r in rows:
            groups.setdefault(getattr(r, key) if key else self._label(r), []).append(r)
        return ", ".join(
            f"{name} ({self._span(members)}"
            + (f", {line_note(self.rule.threshold)}" if any(m.near for m in members) else "")
            + ")"
            for name, members in groups.items()
        )

    def to_dataframe(self) -> pd.DataFrame:
        """Value per prior (rows) and data variant (columns), in the table's order."""
        frame = pd.DataFrame(self.rows)
        table = frame.pivot(index="prior", columns="variant", values="value")
        return table.loc[list(dict.fromkeys(frame["prior"])),
                         list(dict.fromkeys(frame["variant"]))]

    def sentence(self) -> str:
        """Plain words.

        E.g. ``"P(benefit) > 0.95 under weakly_informative (0.961) but not under skeptical
        (0.930)."``
        """
        label = self.rule.label[:1].upper() + self.rule.label[1:]
        rows = self._valid
        if not rows:
            return f"{label}: not available."
        yes = [r for r in rows if r.holds]
        no = [r for r in rows if not r.holds]
        if not (yes and no):
            which = "every" if yes else "no"
            near = [self._label(r) for r in rows if r.near]
            caveat = f"; {', '.join(near)} {line_note(self.rule.threshold)}" if near else ""
            return f"{label} under {which} {self.dimension} ({self._span(rows)}{caveat})."
        if self.dimension == "prior and data variant":
            # Say which of the two drives the flip when one of them alone does.
            by_prior: dict[str, set[bool]] = {}
            by_variant: dict[str, set[bool]] = {}
            for r in rows:
                by_prior.setdefault(r.prior, set()).add(r.holds)
                by_variant.setdefault(r.variant, set()).add(r.holds)
            if all(len(v) == 1 for v in by_prior.values()):
                return (
                    f"{label} under {self._grouped(yes, 'prior')} but not under "
                    f"{self._grouped(no, 'prior')}, whichever the data variant."
                )
            if all(len(v) == 1 for v in by_variant.values()):
                return (
                    f"{label} with the {self._grouped(yes, 'variant')} data but not with the "
                    f"{self._grouped(no, 'variant')} data, whichever the prior."
                )
        return f"{label} under {self._grouped(yes, None)} but not under {self._grouped(no, None)}."

    def to_dict(self) -> dict[str, Any]:
        """``{rule, column, threshold, flips, sentence, rows [{prior, variant, value, ...}]}``.

        ``column`` is ``"1 - p_benefit"`` for a rule judging the complement (P(harm)).
        """
        return {
            "rule": self.rule.label,
            "column": f"1 - {self.rule.column}" if self.rule.complement else self.rule.column,
            "threshold": self.rule.threshold,
            "flips": self.flips,
            "sentence": self.sentence(),
            "rows": [
                {
                    "prior": r.prior,
                    "variant": r.variant,
                    "value": None if math.isnan(r.value) else r.value,
                    "holds": r.holds,
                    "near_threshold": r.near,
                }
                for r in self.rows
            ],
        }


def assess(
    table: pd.DataFrame,
    rules: Sequence[Rule] | None = None,
    direction: Direction | None = None,
) -> tuple[Conclusion, ...]:
    """Evaluate each rule in each row of a comparison table.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows prior x variant with columns ``prior``, ``variant`` (optional) and the rules'
        columns.
    rules : sequence of Rule, optional
        Default :func:`default_rules` (for ``direction``).
    direction : Direction, optional
        Which side of RR = 1 is benefit, for the default rules.

    Returns
    -------
    tuple of Conclusion
    """
    rules = default_rules(table, direction) if rules is None else tuple(rules)
    out = []
    for rule in rules:
        rows = []
        for _, record in table.iterrows():
            value = rule.value(record)
            mcse = (
                float(record[rule.mcse_column])
                if rule.mcse_column is not None and rule.mcse_column in record
                else math.nan
            )
            rows.append(
                Outcome(
                    prior=str(record["prior"]),
                    variant=str(record.get("variant", "")),
                    value=value,
                    holds=rule.holds(value),
                    near=at_the_line(value, mcse, rule.threshold),
                )
            )
        out.append(Conclusion(rule, tuple(rows)))
    return tuple(out)


def find_flips(table: pd.DataFrame, rules: Sequence[Rule] | None = None) -> tuple[str, ...]:
    """Sentences for the conclusions that hold under some rows of the table and not others.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"prior": ["weakly_informative", "skeptical"],
    ...                   "variant": ["published", "published"], "p_benefit": [0.961, 0.93]})
    >>> find_flips(t, [Rule("P(benefit) > 0.95", "p_benefit", 0.95)])[0]
    'P(benefit) > 0.95 under weakly_informative (0.961) but not under skeptical (0.930).'
    """
    return tuple(c.sentence() for c in assess(table, rules) if c.flips)




def probabilities_at_the_line(conclusions: Iterable[Conclusion]) -> int:
    """Count the probabilities judged against the 0.95 line (every rule at it, every row)."""
    return sum(len(c._valid) for c in conclusions if c.rule.threshold == DECISION)


def multiplicity_sentence(count: int, breakdown: str = "") -> str:
    """One sentence on multiplicity and repeated looks, where many probabilities meet 0.95.

    Parameters
    ----------
    count : int
        How many posterior probabilities the page reads against the 0.95 line.
    breakdown : str
        Where they come from (``"7 priors x 2 data variants"``).

    Returns
    -------
    str
        ``""`` below :data:`MULTIPLICITY_MIN` probabilities.

    References
    ----------
    Brok J, Thorlund K, Gluud C, Wetterslev J. Trial sequential analysis reveals insufficient
    information size and potentially false positive results in many meta-analyses. J Clin
    Epidemiol 2008;61:763-9. Ioannidis JPA, Trikalinos TA. Early extreme contradictory
    estimates may appear in published research: the Proteus phenomenon in molecular
    genetics research and randomized trials. J Clin Epidemiol 2005;58:543-9.

    Examples
    --------
    >>> multiplicity_sentence(14, "7 priors x 2 data variants")[:40]
    '14 posterior probabilities (7 priors x 2'
    """
    if count < MULTIPLICITY_MIN:
        return ""
    where = f" ({breakdown})" if breakdown else ""
    return (
        f"{count} posterior probabilities{where} are read here against one {DECISION:g} line: "
        "with this many looks some cross it by chance, or by the choice of prior or data, "
        "and looks repeated as evidence accumulates make a chance crossing likelier still "
        "(Brok et al. 2008, J Clin Epidemiol 61:763-9; Ioannidis & Trikalinos 2005, J Clin "
        "Epidemiol 58:543-9), so a conclusion that holds across them weighs more than any "
        "single crossing."
    )
