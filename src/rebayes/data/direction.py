"""Which way is benefit: the direction of a dataset's outcome, and the words every output uses.

A risk ratio is treated over control risk of the counted event (``outcome``). The direction
has three states:

- **higher is better** (a cure, a healed ulcer): benefit is RR > 1;
- **lower is better** (a death, a tuberculosis case): benefit is RR < 1;
- **undeclared** (a bare CSV without ``--lower-is-better``/``--higher-is-better``, an import
  whose graph labels are not RevMan's standard ones): no side is benefit. Every output then
  speaks neutrally, of P(RR < 1) and P(RR > 1), "a lower risk of the event with treatment",
  the risk difference instead of an NNTB/NNTH, and says in one line how to declare it
  (:data:`HOW_TO_DECLARE`).

:class:`Direction` holds that choice, the labels of what is compared and where the choice came
from (``evidence``), turns draws of a ratio into probabilities, and is the one home of the words
that depend on it (:meth:`Direction.p_name`, :meth:`Direction.favours`, :meth:`Direction.sentence`,
...): a module that prints "benefit" asks it first.

Probabilities are computed on one *side* of RR = 1: the side of benefit when the direction is
declared, and RR < 1 (fewer events with treatment) when it is not, so that the numbers of an
undeclared fit are the literal P(RR < 1) its words name:

- ``p_benefit`` = P(RR > 1), or P(RR < 1) when lower is better or undeclared;
- ``p_harm`` = the other side of 1;
- ``p_benefit_beyond(r)``: P(RR > r), or P(RR < 1/r). Clinically important thresholds are
  symmetric on the ratio scale, so a benefit "beyond 1.25" is RR > 1.25 in one direction and
  RR < 0.8 in the other.

A fit stores the direction in its DataTree's attrs (:meth:`Direction.attrs`, written by
:func:`rebayes.bayes.trees.assemble_tree` from the design's schema); :meth:`Direction.of` reads
it back (undeclared, with the generic labels, for a tree that has none).

RevMan 5 stores a forest plot's two labels; :func:`direction_from_labels` reads RevMan's
standard ones ("Favours experimental" | "Favours control", "Favours [treatment]", "Control
better", ...) into a :class:`DirectionEvidence`, which ``rebayes import`` writes into
``dataset.toml`` as ``higher_is_better`` and ``direction_evidence``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import xarray as xr

    from rebayes.data.schema import DatasetSchema

__all__ = [
    "HOW_TO_DECLARE",
    "Direction",
    "DirectionEvidence",
    "direction_from_labels",
    "outcome_phrase",
]

#: The one line every neutral output adds: how to declare the direction.
HOW_TO_DECLARE = (
    "Declare the direction with higher_is_better = true (more events is better) or false "
    "(fewer is better) in dataset.toml, or with --higher-is-better / --lower-is-better."
)

_TITLED = "the outcome '"


def outcome_phrase(outcome: str = "", title: str = "") -> str:
    """Return the outcome as a noun phrase that fits "a lower risk of ...".

    A short noun when one is given (``"death"``); else a quoted title (``"the outcome
    'Aspirin for Preventing Death after Myocardial Infarction'"``: a RevMan outcome title read
    as a noun would not make a sentence); else ``"the event"``.
    """
    if outcome:
        return outcome
    if title:
        return f"{_TITLED}{title}'"
    return "the event"


# Tree attrs the direction is stored under (netCDF attributes: ints and strings, no bools).
_ATTRS = ("higher_is_better", "direction_declared", "direction_evidence", "outcome",
          "treatment", "control")


def _flag(value: Any, default: bool) -> bool:
    """Read a boolean attr that a netCDF round trip may have made an int or a string."""
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(np.asarray(value).item())


@dataclass(frozen=True)
class Direction:
    """The direction of benefit (or none), the labels of what is compared, and their words.

    Attributes
    ----------
    higher_is_better : bool or None
        True: more events with treatment is benefit (RR > 1); False: fewer is (RR < 1); None:
        undeclared (neutral words, probabilities on the side RR < 1).
    outcome : str
        The event counted, as a noun phrase that fits "a lower risk of ..." (``"tuberculosis"``,
        ``"the outcome 'Death'"``; see :attr:`rebayes.data.schema.DatasetSchema.outcome_phrase`).
    treatment, control : str
        The arms (``"BCG"``, ``"no vaccine"``).
    evidence : str
        Where a declared direction came from, when it was not written by hand
        (``"RevMan graph labels: left 'Favours experimental', right 'Favours control'"``,
        ``"--lower-is-better"``); empty otherwise.

    Examples
    --------
    >>> import numpy as np
    >>> d = Direction(higher_is_better=False, outcome="tuberculosis", treatment="BCG")
    >>> d.benefit, d.beyond(1.25), d.p_name()
    ('RR < 1', 'RR < 0.8', 'P(benefit)')
    >>> d.p_benefit(np.array([0.5, 0.7, 1.2, 0.9]))
    0.75
    >>> Direction().p_name(), Direction().harm_name()
    ('P(RR < 1)', 'P(RR > 1)')
    """

    higher_is_better: bool | None = None
    outcome: str = "the event"
    treatment: str = "treatment"
    control: str = "control"
    evidence: str = ""

    # --- where it comes from -------------------------------------------------------------

    @classmethod
    def from_schema(cls, schema: DatasetSchema) -> Direction:
        """Return the direction a dataset's schema declares (undeclared if it declares none)."""
        return cls(
            higher_is_better=schema.higher_is_better,
            outcome=schema.outcome_phrase,
            treatment=schema.treatment,
            control=schema.control,
            evidence=schema.direction_evidence,
        )

    @classmethod
    def of(cls, source: xr.DataTree | Mapping[str, Any]) -> Direction:
        """Read the direction from a fit's DataTree (or its attrs); defaults where absent."""
        # A DataTree is itself a Mapping (of its children): take its attrs first.
        attrs = getattr(source, "attrs", source)
        default = cls()
        declared = _flag(attrs.get("direction_declared"), False)
        return cls(
            higher_is_better=(
                _flag(attrs.get("higher_is_better"), False) if declared else None
            ),
            outcome=str(attrs.get("outcome") or default.outcome),
            treatment=str(attrs.get("treatment") or default.treatment),
            control=str(attrs.get("control") or default.control),
            evidence=str(attrs.get("direction_evidence") or ""),
        )

    def attrs(self) -> dict[str, Any]:
        """Attrs to stamp on a fit's DataTree (flags as 0/1: netCDF has no booleans)."""
        return {
            "higher_is_better": int(self.higher),
            "direction_declared": int(self.declared),
            "direction_evidence": self.evidence,
            "outcome": self.outcome,
            "treatment": self.treatment,
            "control": self.control,
        }

    @property
    def declared(self) -> bool:
        """Whether a side of RR = 1 is benefit (False: neutral words)."""
        return self.higher_is_better is not None

    @property
    def higher(self) -> bool:
        """The side the probabilities are computed on: RR > 1 (True) or RR < 1 (False).

        The side of benefit when declared; RR < 1 when undeclared.
        """
        return bool(self.higher_is_better)

    def flipped(self) -> Direction:
        """Return the same labels with the other side as benefit (undeclared stays undeclared)."""
        if not self.declared:
            return self
        return replace(self, higher_is_better=not self.higher_is_better)

    def complement(self) -> Direction:
        """Return the direction of the complement (non-events): the other side, "no <outcome>"."""
        if self.outcome.startswith(_TITLED):
            outcome = f"the complement of {self.outcome}"
        else:
            outcome = f"no {self.outcome.removeprefix('the ')}"
        return replace(self.flipped(), outcome=outcome)

    def declare(self, higher_is_better: bool, evidence: str = "") -> Direction:
        """Return this direction declared (``higher_is_better``), with its ``evidence``."""
        return replace(self, higher_is_better=higher_is_better, evidence=evidence)

    # --- literal sides of RR = 1 (true in every state) ----------------------------------------

    @property
    def benefit(self) -> str:
        """``"RR > 1"`` or ``"RR < 1"``: the side probabilities are computed on.

        The side of benefit when declared, ``"RR < 1"`` when undeclared: always a literal
        label, safe to print as ``P({benefit})``.
        """
        return self.beyond(1.0)

    @property
    def harm(self) -> str:
        """``"RR < 1"`` or ``"RR > 1"``: the other side."""
        return "RR < 1" if self.higher else "RR > 1"

    def margin(self, ratio: float) -> float:
        """Return the RR a benefit "beyond ``ratio``" must pass: ``ratio``, or ``1 / ratio``."""
        return ratio if self.higher else 1.0 / ratio

    def beyond(self, ratio: float) -> str:
        """``"RR > 1.1"`` or ``"RR < 0.91"``: the computed side beyond a ratio, in words."""
        if self.higher:
            return f"RR > {ratio:g}"
        return f"RR < {round(1.0 / ratio, 2):g}"

    # --- words that depend on the state -----------------------------------------------------

    def p_name(self, ratio: float = 1.0) -> str:
        """Name of P(``benefit`` side beyond ``ratio``).

        ``"P(benefit)"``, ``"P(benefit beyond RR 1.1)"`` when declared; the literal
        ``"P(RR < 1)"``, ``"P(RR < 0.91)"`` when not.
        """
        if not self.declared:
            return f"P({self.beyond(ratio)})"
        return "P(benefit)" if ratio == 1.0 else f"P(benefit beyond RR {ratio:g})"

    def harm_name(self) -> str:
        """``"P(harm)"`` when declared, ``"P(RR > 1)"`` when not."""
        return "P(harm)" if self.declared else f"P({self.harm})"

    def p_text(self, ratio: float = 1.0) -> str:
        """``"P(benefit) = P(RR < 1)"`` (declared) or ``"P(RR < 1)"``: a name with its side."""
        name = self.p_name(ratio)
        literal = f"P({self.beyond(ratio)})"
        return name if name == literal else f"{name} = {literal}"

    def harm_text(self) -> str:
        """``"P(harm) = P(RR > 1)"`` (declared) or ``"P(RR > 1)"``."""
        return f"P(harm) = P({self.harm})" if self.declared else f"P({self.harm})"

    @property
    def benefit_noun(self) -> str:
        """``"benefit"`` when declared; ``"RR < 1"`` (the computed side) when not."""
        return "benefit" if self.declared else self.benefit

    def side_phrase(self, below: bool) -> str:
        """Return ``"a lower risk of death with aspirin"`` (``below``: RR < 1), or "higher"."""
        more = "lower" if below else "higher"
        return f"a {more} risk of {self.outcome} with {self.treatment}"

    def side(self, below: bool) -> str:
        """``"RR below 1 (a lower risk of death with aspirin)"``: a side of 1 in neutral words."""
        return f"RR {'below' if below else 'above'} 1 ({self.side_phrase(below)})"

    @property
    def favours(self) -> tuple[str, str]:
        """Labels for the left (RR < 1) and right (RR > 1) of a ratio axis.

        ``favours <arm>`` when declared; ``lower risk with <treatment>`` | ``higher risk with
        <treatment>`` when not.
        """
        if not self.declared:
            return (f"lower risk with {self.treatment}", f"higher risk with {self.treatment}")
        better, worse = f"favours {self.treatment}", f"favours {self.control}"
        return (worse, better) if self.higher_is_better else (better, worse)

    @property
    def events(self) -> str:
        """What is counted, as a plural for "12 fewer ... per 1000".

        The short noun when one is given (``"death"``), ``"events (Death)"`` for a titled
        outcome, ``"events"`` otherwise.
        """
        if self.outcome == "the event":
            return "events"
        if self.outcome.startswith(_TITLED):
            return f"events ({self.outcome.removeprefix(_TITLED).removesuffix(chr(39))})"
        return self.outcome

    @property
    def ratio_label(self) -> str:
        """``"risk ratio of tuberculosis, BCG / no vaccine"``."""
        return f"risk ratio of {self.outcome}, {self.treatment} / {self.control}"

    def effect_phrase(self, harmful: bool) -> str:
        """``"increases the risk of death"``: what the treatment does to the event, in words.

        ``harmful`` picks the harm side (more deaths when fewer is better, fewer live births
        when more is better) or the benefit side.
        """
        more_events = harmful != self.higher
        return f"{'increases' if more_events else 'decreases'} the risk of {self.outcome}"

    def towards(self, log_ratio: float) -> str:
        """``"towards a lower risk of death (benefit)"``: the side a log ratio lies on.

        "(benefit)" or "(harm)" only where the direction is declared; ``""`` at 0.
        """
        if log_ratio == 0:
            return ""
        lower = log_ratio < 0
        side = "benefit" if lower != self.higher else "harm"
        named = f" ({side})" if self.declared else ""
        return f"towards a {'lower' if lower else 'higher'} risk of {self.outcome}{named}"

    @staticmethod
    def certainty(probability: float) -> str:
        """``"very probably"`` (>= 0.95), ``"probably"`` (>= 0.8) or ``"possibly"``.

        The adverb a headline puts before :meth:`effect_phrase`: "P(harm) = 0.93: X probably
        increases the risk of death".
        """
        if probability >= 0.95:
            return "very probably"
        return "probably" if probability >= 0.8 else "possibly"

    def sentence(self) -> str:
        """One sentence saying which side is benefit and why, or how to declare one."""
        if not self.declared:
            return (
                "The direction of benefit is not declared, so no side is called benefit: "
                f"P({self.benefit}) is the probability of {self.side_phrase(True)} than with "
                f"{self.control}, P({self.harm}) of {self.side_phrase(False)}. " + HOW_TO_DECLARE
            )
        more = "higher" if self.higher_is_better else "lower"
        text = (
            f"Benefit means a {more} risk of {self.outcome} with {self.treatment} than with "
            f"{self.control} ({self.benefit})"
        )
        if self.evidence:
            text += f"; from {self.evidence}"
        return text + "."

    def to_dict(self) -> dict[str, Any]:
        """``{higher_is_better, declared, benefit, evidence, outcome, treatment, control}``.

        ``higher_is_better`` and ``benefit`` are None when the direction is undeclared.
        """
        return {
            "higher_is_better": self.higher_is_better,
            "declared": self.declared,
            "benefit": self.benefit if self.declared else None,
            "evidence": self.evidence,
            "outcome": self.outcome,
            "treatment": self.treatment,
            "control": self.control,
        }

    def key(self, name: str) -> str:
        """Return a JSON/table key about benefit, literal when the direction is undeclared.

        ``p_benefit`` -> ``p_rr_lt_1``, ``p_harm`` -> ``p_rr_gt_1``, ``p_benefit_beyond_1_1`` ->
        ``p_rr_lt_0_91``, ``p_benefit_beyond_1_25`` -> ``p_rr_lt_0_8``, ``delta_p_benefit`` ->
        ``delta_p_rr_lt_1``, ``p_subgroup_benefit[a]`` -> ``p_subgroup_rr_lt_1[a]`` (MCSE
        suffixes kept); unchanged when declared or when the name is not about benefit.
        """
        if self.declared:
            return name
        for benefit, literal in _NEUTRAL_KEYS:
            if benefit in name:
                return name.replace(benefit, literal)
        return name

    def keys(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """``record`` with its keys passed through :meth:`key`."""
        return {self.key(k): v for k, v in record.items()}

    # --- probabilities from draws --------------------------------------------------------

    def is_benefit(self, rr: Any, ratio: float = 1.0) -> Any:
        """Per draw, whether ``rr`` lies on the computed side beyond ``ratio``, as 0/1."""
        hit = rr > self.margin(ratio) if self.higher else rr < self.margin(ratio)
        return hit.astype(float)

    def p_benefit(self, rr: Any, ratio: float = 1.0) -> float:
        """P(RR > ratio), or P(RR < 1/ratio) if lower is better or undeclared."""
        return float(np.mean(np.asarray(self.is_benefit(rr, ratio))))

    def p_harm(self, rr: Any) -> float:
        """P(RR < 1), or P(RR > 1) if lower is better or undeclared."""
        return float(np.mean(np.asarray(rr < 1.0 if self.higher else rr > 1.0, dtype=float)))

    def benefit_risk_difference(self, rd: float) -> float:
        """Sign a risk difference (treated minus control) so that positive is the computed side."""
        return rd if self.higher else -rd


# Benefit words in keys and their literal names on the side an undeclared direction computes
# (RR < 1), longest first so that "p_benefit_beyond_1_1" is not read as "p_benefit".
_NEUTRAL_KEYS = (
    ("p_benefit_beyond_1_25", "p_rr_lt_0_8"),
    ("p_benefit_beyond_1_1", "p_rr_lt_0_91"),
    ("p_subgroup_benefit", "p_subgroup_rr_lt_1"),
    ("p_subgroup_beyond_1_1", "p_subgroup_rr_lt_0_91"),
    ("p_benefit", "p_rr_lt_1"),
    ("p_harm", "p_rr_gt_1"),
)


# --- RevMan's graph labels ---------------------------------------------------------------------


@dataclass(frozen=True)
class DirectionEvidence:
    """A direction read from a forest plot's two labels, and why.

    Attributes
    ----------
    higher_is_better : bool
    left, right : str
        The labels as the file gives them (left: effects below the null).
    reason : str
        One line: how the labels were read.
    """

    higher_is_better: bool
    left: str
    right: str
    reason: str

    @property
    def source(self) -> str:
        """``"RevMan graph labels: left 'Favours aspirin', right 'Favours placebo'"``."""
        return f"RevMan graph labels: left {self.left!r}, right {self.right!r}"


# Words RevMan and Cochrane authors use for the arms on a forest plot's labels.
_TREATMENT_WORDS = frozenset({
    "experimental", "experiment", "treatment", "intervention", "active", "active treatment",
    "new treatment", "new intervention",
})
_CONTROL_WORDS = frozenset({
    "control", "controls", "placebo", "comparator", "comparison", "usual care",
    "standard care", "standard of care", "no treatment", "no intervention",
})
_FAVOURS = re.compile(r"^(?:favou?rs?|in favou?r of)\s+(?:the\s+)?(.+)$")
_BETTER = re.compile(r"^(?:the\s+)?(.+?)\s+(?:better|superior)$")


def _arm(label: str, treatment: str, control: str) -> str | None:
    """Which arm a standard label favours: ``"treatment"``, ``"control"`` or None."""
    text = " ".join(label.replace("[", " ").replace("]", " ").split()).lower()
    match = _FAVOURS.match(text) or _BETTER.match(text)
    if match is None:
        return None
    named = match.group(1).strip(" .")
    names = {
        "treatment": _TREATMENT_WORDS | ({treatment.lower()} if treatment else set()),
        "control": _CONTROL_WORDS | ({control.lower()} if control else set()),
    }
    found = [arm for arm, words in names.items() if named in words]
    return found[0] if len(found) == 1 else None


def direction_from_labels(
    left: str, right: str, *, treatment: str = "", control: str = ""
) -> DirectionEvidence | None:
    """Read the direction of benefit from a forest plot's two labels, if they are standard.

    RevMan draws a ratio (RR, OR, Peto OR) below 1, or a risk difference below 0, on the left:
    fewer events with the experimental arm. A left label favouring the experimental arm
    ("Favours experimental", "Favours [treatment]", "Favours aspirin", "Experimental better")
    with a right label favouring the control arm ("Favours control", "Favours placebo",
    "Control better") therefore says that fewer events is better; the mirror pair says more
    events is. Labels are compared case-insensitively, brackets ignored; ``treatment`` and
    ``control`` (the comparison's group labels) are recognised as arm names too. Anything else
    (a missing label, two labels naming the same arm, "Increased risk", an outcome's name) is not
    evidence: None, and the outputs stay neutral.

    Parameters
    ----------
    left, right : str
        The labels under the left and right of the plot (RevMan's ``GRAPH_LABEL_1`` and
        ``GRAPH_LABEL_2``).
    treatment, control : str, optional
        The arms' names (RevMan's ``GROUP_LABEL_1`` and ``GROUP_LABEL_2``).

    Returns
    -------
    DirectionEvidence or None

    Examples
    --------
    >>> direction_from_labels("Favours experimental", "Favours control").higher_is_better
    False
    >>> direction_from_labels("Favours placebo", "Favours [aspirin]",
    ...                       treatment="Aspirin").higher_is_better
    True
    >>> direction_from_labels("Increased survival", "Decreased survival") is None
    True
    """
    sides = (_arm(left, treatment, control), _arm(right, treatment, control))
    if sides == ("treatment", "control"):
        return DirectionEvidence(
            False, left, right,
            "the left label (effects below the null: fewer events with the experimental arm) "
            "favours the experimental arm, so fewer events is better",
        )
    if sides == ("control", "treatment"):
        return DirectionEvidence(
            True, left, right,
            "the right label (effects above the null: more events with the experimental arm) "
            "favours the experimental arm, so more events is better",
        )
    return None
