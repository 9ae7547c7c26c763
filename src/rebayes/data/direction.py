"""Which way is benefit: the direction of a dataset's outcome, carried by every fit.

A risk ratio is treated over control risk of the counted event (``outcome``). When more
events is the good direction (a cure, a healed ulcer) benefit is RR > 1; when fewer is (a
death, a tuberculosis case) benefit is RR < 1. :class:`Direction` holds that choice and the
dataset's labels, and turns draws of a ratio into the direction-aware probabilities every
report quotes:

- ``p_benefit`` = P(benefit) = P(RR > 1), or P(RR < 1) when lower is better;
- ``p_harm`` = P(RR < 1), or P(RR > 1) when lower is better;
- ``p_benefit_beyond(r)`` = P(benefit beyond a ratio ``r``): P(RR > r), or P(RR < 1/r) when
  lower is better. Clinically important thresholds are symmetric on the ratio scale, so a
  benefit "beyond 1.25" is RR > 1.25 in one direction and RR < 0.8 in the other.

A fit stores the direction in its DataTree's attrs (:meth:`Direction.attrs`, written by
:func:`rebayes.bayes.sampling.assemble_tree` from the design's schema); :meth:`Direction.of` reads
it back, defaulting to higher is better with the generic labels for a tree that has none.
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

__all__ = ["Direction", "LabelEvidence", "direction_from_labels"]

# Tree attrs the direction is stored under (netCDF attributes: ints and strings, no bools).
_ATTRS = ("higher_is_better", "direction_declared", "outcome", "treatment", "control")


def _flag(value: Any, default: bool) -> bool:
    """Read a boolean attr that a netCDF round trip may have made an int or a string."""
    if value is None:
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(np.asarray(value).item())


@dataclass(frozen=True)
class Direction:
    """The direction of benefit and the labels of what is compared.

    Attributes
    ----------
    higher_is_better : bool
        True: more events with treatment is benefit (RR > 1); False: fewer is (RR < 1).
    declared : bool
        False when ``higher_is_better`` is a default nobody set (reports say so).
    outcome : str
        The event counted (``"tuberculosis"``).
    treatment, control : str
        The arms (``"BCG"``, ``"no vaccine"``).

    Examples
    --------
    >>> import numpy as np
    >>> d = Direction(higher_is_better=False, outcome="tuberculosis", treatment="BCG")
    >>> d.benefit, d.beyond(1.25)
    ('RR < 1', 'RR < 0.8')
    >>> d.p_benefit(np.array([0.5, 0.7, 1.2, 0.9]))
    0.75
    """

    higher_is_better: bool = True
    declared: bool = False
    outcome: str = "event"
    treatment: str = "treatment"
    control: str = "control"

    # --- where it comes from -------------------------------------------------------------

    @classmethod
    def from_schema(cls, schema: DatasetSchema) -> Direction:
        """Return the direction a dataset's schema declares (or defaults to)."""
        return cls(
            higher_is_better=bool(schema.higher_is_better),
            declared=bool(schema.direction_declared),
            outcome=schema.outcome,
            treatment=schema.treatment,
            control=schema.control,
        )

    @classmethod
    def of(cls, source: xr.DataTree | Mapping[str, Any]) -> Direction:
        """Read the direction from a fit's DataTree (or its attrs); defaults where absent."""
        # A DataTree is itself a Mapping (of its children): take its attrs first.
        attrs = getattr(source, "attrs", source)
        default = cls()
        return cls(
            higher_is_better=_flag(attrs.get("higher_is_better"), default.higher_is_better),
            declared=_flag(attrs.get("direction_declared"), default.declared),
            outcome=str(attrs.get("outcome") or default.outcome),
            treatment=str(attrs.get("treatment") or default.treatment),
            control=str(attrs.get("control") or default.control),
        )

    def attrs(self) -> dict[str, Any]:
        """Attrs to stamp on a fit's DataTree (flags as 0/1: netCDF has no booleans)."""
        return {
            "higher_is_better": int(self.higher_is_better),
            "direction_declared": int(self.declared),
            "outcome": self.outcome,
            "treatment": self.treatment,
            "control": self.control,
        }

    def flipped(self) -> Direction:
        """Return the same labels with the other direction of benefit."""
        return replace(self, higher_is_better=not self.higher_is_better)

    # --- words ---------------------------------------------------------------------------

    @property
    def benefit(self) -> str:
        """``"RR > 1"`` or ``"RR < 1"``: what benefit means on the ratio scale."""
        return self.beyond(1.0)

    @property
    def harm(self) -> str:
        """``"RR < 1"`` or ``"RR > 1"``."""
        return "RR < 1" if self.higher_is_better else "RR > 1"

    def margin(self, ratio: float) -> float:
        """Return the RR a benefit "beyond ``ratio``" must pass: ``ratio``, or ``1 / ratio``."""
        return ratio if self.higher_is_better else 1.0 / ratio

    def beyond(self, ratio: float) -> str:
        """``"RR > 1.1"`` or ``"RR < 0.91"``: benefit beyond a ratio, in words."""
        if self.higher_is_better:
            return f"RR > {ratio:g}"
        return f"RR < {round(1.0 / ratio, 2):g}"

    @property
    def favours(self) -> tuple[str, str]:
        """Labels for the left (RR < 1) and right (RR > 1) of a ratio axis."""
        better, worse = f"favours {self.treatment}", f"favours {self.control}"
        return (worse, better) if self.higher_is_better else (better, worse)

    @property
    def ratio_label(self) -> str:
        """``"risk ratio of tuberculosis, BCG / no vaccine"``."""
        return f"risk ratio of {self.outcome}, {self.treatment} / {self.control}"

    def sentence(self) -> str:
        """One sentence saying which direction is benefit and whether it was declared."""
        more = "higher" if self.higher_is_better else "lower"
        text = (
            f"Benefit means a {more} risk of {self.outcome} with {self.treatment} than with "
            f"{self.control} ({self.benefit})"
        )
        if not self.declared:
            text += " (not declared: the default)"
        return text + "."

    def effect_phrase(self, harmful: bool) -> str:
        """``"increases the risk of death"``: what the treatment does to the event, in words.

        ``harmful`` picks the harm side (more deaths when fewer is better, fewer live births
        when more is better) or the benefit side.
        """
        more_events = harmful != self.higher_is_better
        return f"{'increases' if more_events else 'decreases'} the risk of {self.outcome}"

    def towards(self, log_ratio: float) -> str:
        """``"towards a lower risk of death (benefit)"``: the side a log ratio lies on.

        "(benefit)" or "(harm)" only where the direction is declared; ``""`` at 0.
        """
        if log_ratio == 0:
            return ""
        lower = log_ratio < 0
        side = "benefit" if lower != self.higher_is_better else "harm"
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

    def to_dict(self) -> dict[str, Any]:
        """``{higher_is_better, declared, benefit, outcome, treatment, control}`` (JSON)."""
        return {
            "higher_is_better": self.higher_is_better,
            "declared": self.declared,
            "benefit": self.benefit,
            "outcome": self.outcome,
            "treatment": self.treatment,
            "control": self.control,
        }

    # --- probabilities from draws --------------------------------------------------------

    def is_benefit(self, rr: Any, ratio: float = 1.0) -> Any:
        """Per draw, whether ``rr`` is a benefit beyond ``ratio`` (1: any benefit), as 0/1."""
        hit = rr > self.margin(ratio) if self.higher_is_better else rr < self.margin(ratio)
        return hit.astype(float)

    def p_benefit(self, rr: Any, ratio: float = 1.0) -> float:
        """P(benefit beyond ``ratio``): P(RR > ratio), or P(RR < 1/ratio) if lower is better."""
        return float(np.mean(np.asarray(self.is_benefit(rr, ratio))))

    def p_harm(self, rr: Any) -> float:
        """P(harm): P(RR < 1), or P(RR > 1) if lower is better."""
        return self.flipped().p_benefit(rr)

    def benefit_risk_difference(self, rd: float) -> float:
        """Sign a risk difference (treated minus control) so that positive is benefit."""
        return rd if self.higher_is_better else -rd


# --- from a forest plot's graph labels ------------------------------------------------------

# RevMan draws fewer events with the experimental intervention on the left. Authors keep
# RevMan's default pair ("Favours [experimental]" | "Favours [control]") whatever the outcome,
# so the default says nothing; the generic words swapped do.
_EXPERIMENTAL = {"experimental", "intervention", "treatment"}
_CONTROL = {"control", "placebo", "comparator"}


@dataclass(frozen=True)
class LabelEvidence:
    """What a forest plot's graph labels say about the direction of benefit.

    Attributes
    ----------
    higher_is_better : bool
    left, right : str
        The labels, as given.
    reason : str
        One sentence saying how the labels were read.
    """

    higher_is_better: bool
    left: str
    right: str
    reason: str


def _favoured(label: str) -> str:
    text = " ".join(label.strip().lower().split())
    text = re.sub(r"^favou?rs\s+", "", text) if text.startswith("favo") else text
    return text.strip("[] ")


def direction_from_labels(left: str, right: str) -> LabelEvidence | None:
    """Read the direction of benefit from a forest plot's left and right graph labels.

    Only standard labels are read: "Favours ..." naming the experimental or the control
    group in generic words. RevMan's default order (experimental left, control right) is
    kept by authors whatever the outcome and says nothing; the swapped order says that more
    events is better.

    Parameters
    ----------
    left, right : str
        The labels under the left (effects below 1) and right side of the plot.

    Returns
    -------
    LabelEvidence or None
        None when the labels do not say (RevMan's defaults, or non-standard wording).

    Examples
    --------
    >>> direction_from_labels("Favours control", "Favours experimental").higher_is_better
    True
    >>> direction_from_labels("Favours [experimental]", "Favours [control]") is None
    True
    """
    a, b = _favoured(left), _favoured(right)
    if a in _CONTROL and b in _EXPERIMENTAL:
        return LabelEvidence(
            True, left, right,
            f"{left!r} on the left, where fewer events with the experimental arm are drawn",
        )
    return None
