"""Tables as text: pandas lays them out, callers only format the cells.

Every table rebayes prints or writes as markdown is a :class:`pandas.DataFrame` of cells the
caller has already formatted (``f"{x:.3f}"``: the digits are the caller's choice, never the
renderer's), rendered by pandas' ``DataFrame.to_markdown`` (through tabulate): :func:`markdown`
as a GitHub pipe table, :func:`text` as tabulate's borderless ``plain`` table for the terminal.
Both take the columns' alignment as one letter per column, as R's ``knitr::kable`` does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import pandas as pd

__all__ = ["MISSING", "frame", "markdown", "text"]

#: What a missing cell shows (as in the report's HTML tables): a dash, not "None" or "nan".
MISSING = "–"

_ALIGN = {"l": "left", "r": "right", "c": "center"}


def frame(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> pd.DataFrame:
    """Return a DataFrame of ``rows`` under ``headers`` (repeated headers allowed).

    Parameters
    ----------
    headers : sequence of str
    rows : iterable of sequences
        One value per header.

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> frame(["prior", "P(RR < 1)"], [("vague", "0.981")]).shape
    (1, 2)
    """
    return pd.DataFrame([list(row) for row in rows], columns=list(headers), dtype=object)


def _cells(table: pd.DataFrame, escape: bool) -> pd.DataFrame:
    """Every cell and header as its string; missing cells :data:`MISSING`."""

    def cell(value: object) -> str:
        if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
            return MISSING
        out = " ".join(str(value).splitlines())
        # tabulate leaves a "|" as is, and a pipe table would read it as a column border.
        return out.replace("|", "\\|") if escape else out

    return pd.DataFrame(
        [[cell(v) for v in row] for row in table.itertuples(index=False, name=None)],
        columns=[cell(c) for c in table.columns],
        dtype=object,
    )


def _colalign(align: str | None, columns: int) -> list[str]:
    """Return tabulate's ``colalign`` from one letter per column (default every column left)."""
    out = [_ALIGN[a] for a in align] if align else ["left"] * columns
    if len(out) != columns:
        raise ValueError(f"align {align!r} has {len(out)} letters for {columns} columns")
    return out


def markdown(table: pd.DataFrame, align: str | None = None) -> str:
    """Render a table as a GitHub-flavoured markdown (pipe) table.

    Parameters
    ----------
    table : pandas.DataFrame
        Formatted cells (the index is not shown). Cells are shown as they are: a string that
        looks like a number keeps its digits. ``|`` in a cell or header is escaped; a missing
        cell shows :data:`MISSING`.
    align : str, optional
        One letter per column, ``l`` (left), ``r`` (right) or ``c`` (centre), as in R's
        ``knitr::kable(align = "lrr")``; default every column left.

    Returns
    -------
    str
        The table, no trailing newline.

    Examples
    --------
    >>> print(markdown(frame(["prior", "P"], [("vague", "0.981")]), align="lr"))
    | prior   |     P |
    |:--------|------:|
    | vague   | 0.981 |
    """
    cells = _cells(table, escape=True)
    # disable_numparse: tabulate would otherwise reformat "0.500" as 0.5.
    return cells.to_markdown(
        index=False,
        tablefmt="pipe",
        disable_numparse=True,
        colalign=_colalign(align, cells.shape[1]),
    )


def text(
    table: pd.DataFrame, align: str | None = None, indent: str = "", header: bool = True
) -> str:
    """Render a table for the terminal: columns padded, no borders, the index not shown.

    Parameters
    ----------
    table : pandas.DataFrame
        Formatted cells; a missing cell shows :data:`MISSING`.
    align : str, optional
        One letter per column (``l``, ``r``, ``c``), as for :func:`markdown`.
    indent : str
        Put before every line (e.g. two spaces under a heading).
    header : bool
        Whether to show the column names (a list of label, value lines reads without them).

    Returns
    -------
    str

    Examples
    --------
    >>> print(text(frame(["prior", "P"], [("vague", "0.981"), ("turner", "0.97")]), align="lr"))
    prior        P
    vague    0.981
    turner    0.97
    """
    cells = _cells(table, escape=False)
    # pandas' to_string right-justifies every column, names included; tabulate's "plain"
    # format (through to_markdown, as pandas' docs show with tablefmt="grid") aligns each
    # column as asked, like the markdown tables.
    rendered = cells.to_markdown(
        index=False,
        tablefmt="plain",
        disable_numparse=True,
        colalign=_colalign(align, cells.shape[1]),
        headers="keys" if header else (),
    )
    return "\n".join((indent + line).rstrip() for line in rendered.splitlines())
