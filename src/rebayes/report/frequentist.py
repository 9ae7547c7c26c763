"""The frequentist (RevMan 5.3) tables of the re-analysis, as markdown or an HTML page."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from rebayes.data.schema import DatasetSchema
from rebayes.frequentist.pooling import MetaResult, Method, analyze
from rebayes.report.html import markdown_table, render_page, table

__all__ = [
    "FrequentistAnalysis",
    "analyses_of",
    "FrequentistTable",
    "frequentist_page",
    "frequentist_markdown",
    "frequentist_tables",
]



@dataclass(frozen=True)
class FrequentistAnalysis:
    """A named RevMan analysis: optional filters, subgroup column and shared-control split."""

    title: str
    by: str | None = None
    where: Mapping[str, str] = field(default_factory=dict)
    split_shared_control: bool = False


@dataclass(frozen=True)
class FrequentistTable:
    """One rendered analysis: its rows and the notes printed under it."""

    variant: str
    title: str
    rows: tuple[tuple[object, ...], ...]
    notes: tuple[str, ...]


def analyses_of(schema: DatasetSchema) -> tuple[FrequentistAnalysis, ...]:
    """Return the RevMan analyses to tabulate: the dataset's list, else overall and per covariate.

    Parameters
    ----------
    schema : DatasetSchema

    Returns
    -------
    tuple of FrequentistAnalysis
    """
    if schema.frequentist:
        return tuple(
            FrequentistAnalysis(a["title"], a.get("by"), dict(a.get("where", {})),
                                bool(a.get("split_shared_control", False)))
            for a in schema.frequentist
        )
    return (
        FrequentistAnalysis("Overall"),
        *(
            FrequentistAnalysis(f"Subgroups by {c.title}", by=c.column)
            for c in schema.covariates.values()
            if c.kind == "categorical" and c.analyse
        ),
    )


def _headers(schema: DatasetSchema) -> tuple[str, ...]:
    return ("", "k", schema.treatment, schema.control, "RR [95% CI]", "P", "I²")


def _intro(schema: DatasetSchema) -> str:
    favours = schema.treatment if schema.higher_is_better else schema.control
    return (
        f"Mantel-Haenszel risk ratios of {schema.outcome}, {schema.treatment} vs "
        f"{schema.control} (RR > 1 favours {favours}); fixed effect, Greenland-Robins variance, "
        "Q centred on the MH estimate, as RevMan 5 computes them."
        + (" A trial's strata are summed unless the analysis splits by them." if schema.strata
           else "")
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
    analyses: Sequence[FrequentistAnalysis] = (FrequentistAnalysis("Overall"),),
    method: Method = "MH",
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
            result = analyze(trials, by=analysis.by, where=analysis.where, method=method,
                             split_shared_control=analysis.split_shared_control)
            rows = [_row(name, res) for name, res in result.subgroups.items()]
            rows.append(_row("Total", result.overall))
            notes = []
            if result.test is not None:
                notes.append(f"{result.test}.")
            if result.left_out:
                notes.append(
                    f"Left out (in no {result.by} subgroup): {', '.join(result.left_out)}."
                )
            notes += result.notes
            out.append(FrequentistTable(variant, analysis.title, tuple(rows), tuple(notes)))
    return out


def frequentist_markdown(results: Sequence[FrequentistTable], schema: DatasetSchema) -> str:
    """Render the tables as a markdown document."""
    out = ["# Frequentist re-analysis (RevMan 5 formulas)", "", _intro(schema), ""]
    headers = _headers(schema)
    variant = None
    for res in results:
        if res.variant != variant:
            variant = res.variant
            out += [f"## Data variant `{variant}`", ""]
        out += [f"### {res.title}", "", markdown_table(headers, res.rows), ""]
        out += [*res.notes, ""] if res.notes else []
    return "\n".join(out)


def frequentist_page(
    results: Sequence[FrequentistTable],
    schema: DatasetSchema,
    nav: Sequence[tuple[str, str]] = (),
    footer: str = "",
) -> str:
    """Render the tables as the report's page (``templates/frequentist.html``)."""
    headers = _headers(schema)
    variants: dict[str, list[dict[str, object]]] = {}
    for res in results:
        variants.setdefault(res.variant, []).append(
            {"title": res.title, "table": table(headers, res.rows), "notes": list(res.notes)}
        )
    return render_page("frequentist.html", "rebayes: RevMan tables", nav, footer,
                       intro=_intro(schema), variants=list(variants.items()))
