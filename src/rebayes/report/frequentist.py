"""The frequentist (RevMan 5) tables of the re-analysis, as markdown or an HTML page.

Headers, columns and the explanatory sentence follow the measure, method and model the
tables were computed with: the dataset's (``dataset.toml``), or those asked for. A risk
difference is a difference (3 decimals, null 0, per 1000), Peto's odds ratio is fixed effect.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from rebayes.data.direction import HOW_TO_DECLARE
from rebayes.data.schema import DatasetSchema
from rebayes.frequentist.effects import Measure
from rebayes.frequentist.pooling import MetaResult, Method, Model, analyze
from rebayes.report.html import markdown_table, render_page, table

__all__ = [
    "MEASURE_LABELS",
    "Analysis",
    "FrequentistAnalysis",
    "analyses_of",
    "FrequentistTable",
    "frequentist_page",
    "frequentist_markdown",
    "frequentist_tables",
]

#: Reader names of RevMan's measures, their plural in sentences, and its methods.
MEASURE_LABELS = {"RR": "RR", "OR": "OR", "RD": "RD", "PETO_OR": "Peto OR"}
_MEASURE_WORDS = {
    "RR": "risk ratios",
    "OR": "odds ratios",
    "RD": "risk differences (treated minus control risk; 0.01 is 10 more per 1000)",
    "PETO_OR": "odds ratios",
}
_METHOD_WORDS = {"MH": "Mantel-Haenszel", "IV": "inverse-variance", "PETO": "Peto"}
_VARIANCE_WORDS = {
    ("MH", "RR"): "Greenland-Robins variance",
    ("MH", "RD"): "Greenland-Robins variance",
    ("MH", "OR"): "Robins-Breslow-Greenland variance",
    ("PETO", "PETO_OR"): "O - E and its hypergeometric variance",
}


@dataclass(frozen=True)
class Analysis:
    """The measure, method and model a page's tables were computed with (RevMan's names).

    Attributes
    ----------
    measure : {"RR", "OR", "RD", "PETO_OR"}
    method : {"MH", "IV", "PETO"}
    model : {"fixed", "random"}
    ci_level : float
    """

    measure: str = "RR"
    method: str = "MH"
    model: str = "fixed"
    ci_level: float = 0.95

    @classmethod
    def of(cls, result: MetaResult) -> Analysis:
        """Return the analysis a pooled result was computed with (``DL`` is M-H, random)."""
        method = "MH" if result.method == "DL" else result.method
        return cls(result.measure, method, result.model, result.ci_level)

    @property
    def label(self) -> str:
        """``"RR"``, ``"Peto OR"``, ``"RD"``."""
        return MEASURE_LABELS[self.measure]

    @property
    def is_difference(self) -> bool:
        """Whether the measure is a difference (null 0, per 1000) rather than a ratio."""
        return self.measure == "RD"


@dataclass(frozen=True)
class FrequentistAnalysis:
    """A named RevMan analysis: optional filters, subgroup column and shared-control split."""

    title: str
    by: str | None = None
    where: Mapping[str, str] = field(default_factory=dict)
    split_shared_control: bool = False


@dataclass(frozen=True)
class FrequentistTable:
    """One rendered analysis: its rows, the notes printed under it, and how it was pooled."""

    variant: str
    title: str
    rows: tuple[tuple[object, ...], ...]
    notes: tuple[str, ...]
    analysis: Analysis = field(default_factory=Analysis)


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


def _headers(schema: DatasetSchema, analysis: Analysis) -> tuple[str, ...]:
    ci = f"{100 * analysis.ci_level:g}% CI"
    effect = (f"{analysis.label} [{ci}] (per 1000)" if analysis.is_difference
              else f"{analysis.label} [{ci}]")
    tau = ("τ²",) if analysis.model == "random" else ()
    return ("", "k", schema.treatment, schema.control, effect, "P", "I²", *tau)


def _favours(schema: DatasetSchema, analysis: Analysis) -> str:
    """``RR > 1 favours BCG``; neutral when the direction is undeclared."""
    d = schema.direction
    null = "0" if analysis.is_difference else "1"
    label = analysis.label
    if not d.declared:
        return (f"{label} below {null}: {d.side_phrase(True)}; no side is called benefit, "
                "the direction is not declared")
    favours = schema.treatment if schema.higher_is_better else schema.control
    return f"{label} > {null} favours {favours}"


def _intro(schema: DatasetSchema, analysis: Analysis) -> str:
    method = _METHOD_WORDS[analysis.method]
    words = _MEASURE_WORDS[analysis.measure]
    what = (f"{method[0].upper()}{method[1:]} {words} of {schema.outcome_phrase}, "
            f"{schema.treatment} vs {schema.control} ({_favours(schema, analysis)})")
    variance = _VARIANCE_WORDS.get((analysis.method, analysis.measure),
                                   "inverse-variance weights")
    short = {"MH": "MH", "IV": "inverse-variance", "PETO": "Peto"}[analysis.method]
    if analysis.model == "random":
        model = (f"random effects (DerSimonian-Laird tau² from Q centred on the {short} "
                 f"estimate), {variance} within trials")
    elif analysis.method == "PETO":
        model = f"fixed effect (Peto's method has no other), {variance}"
    else:
        model = f"fixed effect, {variance}, Q centred on the {short} estimate"
    text = f"{what}; {model}, as RevMan 5 computes them."
    if not schema.direction.declared:
        text += " " + HOW_TO_DECLARE
    if schema.strata:
        text += " A trial's strata are summed unless the analysis splits by them."
    return text


def _effect(res: MetaResult) -> str:
    if res.measure == "RD":
        per = 1000 * res.estimate
        more = "more" if per >= 0 else "fewer"
        return (f"{res.estimate:.3f} [{res.ci_low:.3f}, {res.ci_high:.3f}] "
                f"({abs(per):.0f} {more})")
    return f"{res.estimate:.2f} [{res.ci_low:.2f}, {res.ci_high:.2f}]"


def _row(label: str, res: MetaResult) -> tuple[object, ...]:
    tau = (f"{res.tau2:.3f}",) if res.model == "random" else ()
    return (
        label,
        res.k,
        f"{res.events_treat}/{res.n_treat}",
        f"{res.events_control}/{res.n_control}",
        _effect(res),
        f"{res.p:.3f}",
        f"{res.i2:.0f}%",
        *tau,
    )


def frequentist_tables(
    tables: Mapping[str, pd.DataFrame],
    analyses: Sequence[FrequentistAnalysis] = (FrequentistAnalysis("Overall"),),
    method: Method | None = None,
    measure: Measure | None = None,
    model: Model | None = None,
) -> list[FrequentistTable]:
    """Run each analysis on each variant's table.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Variant name -> trial table.
    analyses : sequence of FrequentistAnalysis
    method, measure, model : str, optional
        RevMan's method, measure and model (default: the dataset's ``dataset.toml``).

    Returns
    -------
    list of FrequentistTable
    """
    out = []
    for variant, trials in tables.items():
        for analysis in analyses:
            result = analyze(trials, by=analysis.by, where=analysis.where, method=method,
                             measure=measure, model=model,
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
            if result.overall.excluded:
                notes.append(
                    "Not estimable (left out, as RevMan leaves them out): "
                    + ", ".join(result.overall.excluded) + "."
                )
            out.append(FrequentistTable(variant, analysis.title, tuple(rows), tuple(notes),
                                        Analysis.of(result.overall)))
    return out


def _analysis(results: Sequence[FrequentistTable], schema: DatasetSchema) -> Analysis:
    """Return the analysis the tables were computed with (the dataset's when none)."""
    if results:
        return results[0].analysis
    return Analysis(schema.measure, schema.method, schema.model, schema.ci_level)


def frequentist_markdown(results: Sequence[FrequentistTable], schema: DatasetSchema) -> str:
    """Render the tables as a markdown document."""
    analysis = _analysis(results, schema)
    out = ["# Frequentist re-analysis (RevMan 5 formulas)", "", _intro(schema, analysis), ""]
    headers = _headers(schema, analysis)
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
    analysis = _analysis(results, schema)
    headers = _headers(schema, analysis)
    variants: dict[str, list[dict[str, object]]] = {}
    for res in results:
        variants.setdefault(res.variant, []).append(
            {"title": res.title, "table": table(headers, res.rows), "notes": list(res.notes)}
        )
    return render_page("frequentist.html", "rebayes: RevMan tables", nav, footer,
                       intro=_intro(schema, analysis), variants=list(variants.items()))
