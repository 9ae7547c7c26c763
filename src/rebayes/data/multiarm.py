"""Multi-arm trials: a control arm shared by two or more comparisons, and its split.

A review that compares several experimental arms of one trial with the same control arm
enters that control arm once per comparison (RevMan shows the study twice, with the same
control events and total): its participants are counted twice in the pooled estimate, and
the comparisons are correlated. The Cochrane Handbook (version 6.5, section 23.3.4) lists
the remedies; the simplest keeps every comparison and splits the shared control group between
them, "both the number of events and the total number of patients" divided up.

:func:`shared_controls` finds such arms in a trial table (rows with the same study name and
the same control events and total); :func:`split_shared_controls` divides each between its
comparisons in whole participants, as evenly as the counts allow (a remainder goes to the
first comparisons, events never exceeding the total). A dataset that declares ``strata``
has repeated study names by design (a trial's strata are different participants) and no
shared arms.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import pandas as pd

from rebayes.data.schema import schema_of
from rebayes.errors import RebayesError

__all__ = [
    "SharedControl",
    "SplitError",
    "shared_control_note",
    "shared_controls",
    "split_shared_controls",
]

HANDBOOK = "Cochrane Handbook 23.3.4"


class SplitError(RebayesError):
    """A shared control arm too small to split between its comparisons."""


@dataclass(frozen=True)
class SharedControl:
    """A control arm that enters several comparisons of one study.

    Attributes
    ----------
    study : str
    events, total : int
        The control arm's counts (the same in every comparison).
    rows : tuple of int
        Positions of the comparisons in the table (0-based, in table order).
    """

    study: str
    events: int
    total: int
    rows: tuple[int, ...]

    @property
    def comparisons(self) -> int:
        """How many comparisons share the arm."""
        return len(self.rows)

    def shares(self) -> list[tuple[int, int]]:
        """``(events, total)`` of each comparison's part of the arm, in row order."""
        m = self.comparisons
        return [
            (self.events // m + (j < self.events % m), self.total // m + (j < self.total % m))
            for j in range(m)
        ]


def shared_controls(trials: pd.DataFrame) -> list[SharedControl]:
    """Find control arms shared by two or more rows of one study.

    Parameters
    ----------
    trials : pandas.DataFrame
        A trial table (``study``, ``events_control``, ``n_control``).

    Returns
    -------
    list of SharedControl
        In order of first appearance; empty when the dataset declares strata.
    """
    if schema_of(trials).strata is not None or trials.empty:
        return []
    groups: dict[tuple[str, int, int], list[int]] = defaultdict(list)
    keys = zip(trials["study"].astype(str), trials["events_control"], trials["n_control"],
               strict=True)
    for position, (study, events, total) in enumerate(keys):
        groups[(study, int(events), int(total))].append(position)
    return [
        SharedControl(study, events, total, tuple(rows))
        for (study, events, total), rows in groups.items()
        if len(rows) > 1
    ]


def split_shared_controls(
    trials: pd.DataFrame, shared: list[SharedControl] | None = None
) -> pd.DataFrame:
    """Divide each shared control arm's events and total between its comparisons.

    Parameters
    ----------
    trials : pandas.DataFrame
    shared : list of SharedControl, optional
        Default: :func:`shared_controls` of ``trials``.

    Returns
    -------
    pandas.DataFrame
        A copy with the split counts (same rows, same ``attrs``).

    Raises
    ------
    SplitError
        A shared arm with fewer participants than comparisons.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"study": ["A", "A"], "events_treat": [3, 4], "n_treat": [20, 21],
    ...                   "events_control": [5, 5], "n_control": [41, 41]})
    >>> split_shared_controls(t)[["events_control", "n_control"]].values.tolist()
    [[3, 21], [2, 20]]
    """
    shared = shared_controls(trials) if shared is None else shared
    out = trials.copy()
    out.attrs = dict(trials.attrs)
    events = out.columns.get_loc("events_control")
    totals = out.columns.get_loc("n_control")
    for arm in shared:
        if arm.total < arm.comparisons:
            raise SplitError(
                f"study {arm.study!r}: a control arm of {arm.total} cannot be split between "
                f"{arm.comparisons} comparisons"
            )
        for row, (e, n) in zip(arm.rows, arm.shares(), strict=True):
            out.iloc[row, events] = e
            out.iloc[row, totals] = n
    return out


def shared_control_note(shared: list[SharedControl], split: bool) -> str:
    """One sentence naming the shared arms, and what was (or can be) done about them."""
    if split:
        parts = [
            f"{a.study} {a.events}/{a.total} -> "
            + " + ".join(f"{e}/{n}" for e, n in a.shares())
            for a in shared
        ]
        return (f"Shared control arms split between their comparisons ({HANDBOOK}): "
                + "; ".join(parts) + ".")
    names = ", ".join(f"{a.study} (control {a.events}/{a.total}, {a.comparisons} comparisons)"
                      for a in shared)
    return (
        f"Multi-arm trials: {names} enter with one control arm in several comparisons, so its "
        f"participants are counted more than once; the {HANDBOOK} splits a shared control "
        "between the comparisons (rebayes frequentist --split-shared-control)."
    )
