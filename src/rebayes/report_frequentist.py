"""The frequentist (RevMan 5.3) tables of the re-analysis, as markdown or HTML."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape

import pandas as pd

from rebayes.frequentist import MetaResult, analyze
from rebayes.report_html import markdown_table, table

__all__ = [
    "STANDARD_ANALYSES",
    "FrequentistAnalysis",
    "FrequentistTable",
    "frequentist_html",
    "frequentist_markdown",
    "frequentist_tables",
]

HEADERS = ("", "k", "IVIG", "placebo", "RR [95% CI]", "P", "I²")


@dataclass(frozen=True)
class FrequentistAnalysis:
    """A named RevMan analysis: optional filters and an optional subgroup column."""

    title: str
    by: str | None = None
    where: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FrequentistTable:
    """One rendered analysis: its rows and the notes printed under it."""

    variant: str
    title: str
    rows: tuple[tuple[object, ...], ...]
    notes: tuple[str, ...]


# The paper's analyses (figures 2-6), in its order.
STANDARD_ANALYSES: tuple[FrequentistAnalysis, ...] = (
    FrequentistAnalysis("Overall (Figure 2)"),
    FrequentistAnalysis("Primary vs secondary RSA (Figure 3)", by="stratum"),
    FrequentistAnalysis("Pre- vs post-conception (Figure 4)", by="timing"),
    FrequentistAnalysis(
        "Primary RSA: pre vs post (Figure 5)", by="timing", where={"stratum": "primary"}
    ),
    FrequentistAnalysis(
        "Secondary RSA: pre vs post (Figure 6)", by="timing", where={"stratum": "secondary"}
    ),
    FrequentistAnalysis("Placebo type (sensitivity)", by="placebo"),
)


def _row(label: str, res: MetaResult) -> tuple[object, ...]:
    return (
        label,
        res.k,
        f"{res.events_treat}/{res.n_treat}",
        f"{res.events_control}/{res.n_control}",
        f"{res.estimate:.2f} [{res.ci_low:.2f}, {res.ci_high:.2f}]",
        f"{res.p:.3f}",
        f"{res.i2:.0f}%",
    )


def frequentist_tables(
    tables: Mapping[str, pd.DataFrame],
    analyses: Sequence[FrequentistAnalysis] = STANDARD_ANALYSES,
    method: str = "MH",
) -> list[FrequentistTable]:
    """Run each analysis on each variant's table.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Variant name -> trial table.
    analyses : sequence of FrequentistAnalysis
    method : str
        ``MH`` (the paper's method), ``IV`` or ``DL``.

    Returns
    -------
    list of FrequentistTable
    """
    out = []
    for variant, trials in tables.items():
        for analysis in analyses:
            result = analyze(trials, by=analysis.by, where=analysis.where, method=method)
            rows = [_row(name, res) for name, res in result.subgroups.items()]
            rows.append(_row("Total", result.overall))
            notes = []
            if result.test is not None:
                notes.append(f"{result.test}.")
            if result.left_out:
                notes.append(
                    f"Left out (no published {result.by} split): {', '.join(result.left_out)}."
                )
            out.append(FrequentistTable(variant, analysis.title, tuple(rows), tuple(notes)))
    return out


INTRO = (
    "Mantel-Haenszel risk ratios of live birth, IVIG vs placebo (RR > 1 favours IVIG); fixed "
    "effect, Greenland-Robins variance, Q centred on the MH estimate, as RevMan 5.3 computes "
    "them. Trials are summed over strata unless the analysis splits by RSA type."
)


def frequentist_markdown(results: Sequence[FrequentistTable]) -> str:
    """Render the tables as a markdown document."""
    out = ["# Frequentist re-analysis (RevMan 5.3 formulas)", "", INTRO, ""]
    variant = None
    for res in results:
        if res.variant != variant:
            variant = res.variant
            out += [f"## Data variant `{variant}`", ""]
        out += [f"### {res.title}", "", markdown_table(HEADERS, res.rows), ""]
        out += [*res.notes, ""] if res.notes else []
    return "\n".join(out)


def frequentist_html(results: Sequence[FrequentistTable]) -> str:
    """Render the tables as an HTML fragment."""
    out = [f"<p>{escape(INTRO)}</p>"]
    variant = None
    for res in results:
        if res.variant != variant:
            variant = res.variant
            out.append(f"<h2>Data variant <code>{escape(variant)}</code></h2>")
        out += [f"<h3>{escape(res.title)}</h3>", table(HEADERS, res.rows)]
        out += [f"<p>{escape(note)}</p>" for note in res.notes]
    return "\n".join(out)
