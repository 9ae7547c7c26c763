"""Other packages' names for the columns of a 2x2 table, and how rebayes reads them.

rebayes's trial table has ``study, events_treat, n_treat, events_control, n_control``. Tables
written for R's metafor (``escalc``: ``ai, n1i, ci, n2i``, or the four cells ``ai, bi, ci,
di``) and meta (``metabin``: ``event.e, n.e, event.c, n.c``, study label ``studlab``) are
read too: :func:`resolve_columns` says which column becomes which, and which totals are sums
of two cells (``n_treat = ai + bi``). A table of effect sizes alone (metafor's ``yi, vi``,
meta's ``TE, seTE``) cannot be re-analysed from counts and is refused with what rebayes needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["ColumnMapping", "NeedsCounts", "resolve_columns"]

REQUIRED = ("study", "events_treat", "n_treat", "events_control", "n_control")

#: Each alternative naming of the counts: rebayes column -> that package's column.
_COUNT_NAMES: tuple[tuple[str, dict[str, str]], ...] = (
    ("metafor", {"events_treat": "ai", "n_treat": "n1i", "events_control": "ci",
                 "n_control": "n2i"}),
    ("meta", {"events_treat": "event.e", "n_treat": "n.e", "events_control": "event.c",
              "n_control": "n.c"}),
)
#: metafor's four cells: totals are events plus non-events.
_CELLS = {"events_treat": "ai", "events_control": "ci"}
_NON_EVENTS = {"n_treat": ("ai", "bi"), "n_control": ("ci", "di")}
#: Study label columns, in the order tried (meta's ``studlab``; metafor's datasets).
_STUDY_NAMES = ("studlab", "author", "trial")
_EFFECT_SIZES = (("yi", "vi"), ("yi", "sei"), ("TE", "seTE"))

NEEDS = (
    "rebayes needs 2x2 counts per arm: study, events_treat, n_treat, events_control, "
    "n_control (metafor's ai, n1i, ci, n2i or ai, bi, ci, di; meta's event.e, n.e, event.c, "
    "n.c)"
)


class NeedsCounts(ValueError):
    """The table holds effect sizes, not counts (the message says what rebayes needs)."""


@dataclass(frozen=True)
class ColumnMapping:
    """How a table's columns become rebayes's.

    Attributes
    ----------
    rename : dict
        rebayes column -> the table's column holding it.
    sums : dict
        rebayes total -> the two columns it is the sum of (``n_treat`` -> ``(ai, bi)``).
    source : str
        ``""`` (rebayes's own names), ``"metafor"`` or ``"meta"``.
    """

    rename: dict[str, str] = field(default_factory=dict)
    sums: dict[str, tuple[str, str]] = field(default_factory=dict)
    source: str = ""

    @property
    def consumed(self) -> set[str]:
        """The table's columns that become counts or the study (not kept as covariates)."""
        used = set(self.rename.values())
        for pair in self.sums.values():
            used.update(pair)
        return used

    def note(self) -> str:
        """One line saying which column was read as which (empty for rebayes's names)."""
        if not self.source:
            return ""
        parts = [f"{theirs} -> {ours}" for ours, theirs in self.rename.items() if ours != theirs]
        parts += [f"{a} + {b} -> {ours}" for ours, (a, b) in self.sums.items()]
        return f"{self.source}'s column names read as rebayes's: " + ", ".join(parts)


def resolve_columns(columns: Sequence[str]) -> ColumnMapping | None:
    """Say how a table's header maps to rebayes's columns.

    Parameters
    ----------
    columns : sequence of str
        The header, stripped.

    Returns
    -------
    ColumnMapping or None
        None when the header names rebayes's columns or no other package's complete set
        (the caller then reports the first missing column).

    Raises
    ------
    NeedsCounts
        A table of effect sizes and variances (``yi, vi``; ``TE, seTE``) without counts.

    Examples
    --------
    >>> mapping = resolve_columns(["study", "ai", "bi", "ci", "di"])
    >>> mapping.rename
    {'events_treat': 'ai', 'events_control': 'ci'}
    >>> mapping.sums
    {'n_treat': ('ai', 'bi'), 'n_control': ('ci', 'di')}
    """
    present = set(columns)
    if all(c in present for c in REQUIRED):
        return None
    counts: dict[str, str] | None = None
    source = ""
    sums: dict[str, tuple[str, str]] = {}
    for name, names in _COUNT_NAMES:
        if all(c in present for c in names.values()):
            counts, source = dict(names), name
            break
    if counts is None and all(c in present for c in ("ai", "bi", "ci", "di")):
        counts, source, sums = dict(_CELLS), "metafor", dict(_NON_EVENTS)
    if counts is None:
        found = next((pair for pair in _EFFECT_SIZES if set(pair) <= present), None)
        if found is not None:
            raise NeedsCounts(
                f"a table of effect sizes ({', '.join(found)}), not counts: {NEEDS}"
            )
        return None
    if "study" not in present:
        label = next((c for c in _STUDY_NAMES if c in present), None)
        if label is None:
            return None  # the caller reports the missing 'study'
        counts = {"study": label, **counts}
    return ColumnMapping(counts, sums, source)
