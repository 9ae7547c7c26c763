"""The report's page frame, tables and figures: jinja2 templates with autoescape.

Every page and section is rendered from ``rebayes/report/templates/`` by the one
:data:`ENVIRONMENT`; Python prepares plain data (:class:`Table`, :class:`Figure`, strings)
and the templates hold the HTML. The pages are self-contained: the stylesheet
(``report.css``) is inlined, no scripts, no CDN.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import jinja2
from markupsafe import Markup

from rebayes import tables

if TYPE_CHECKING:
    import pandas as pd

    from rebayes.data.direction import Direction

__all__ = [
    "ENVIRONMENT",
    "Cell",
    "Figure",
    "Table",
    "figure",
    "is_indicator",
    "markdown_table",
    "reader_label",
    "readable",
    "render",
    "render_page",
    "table",
    "tool_section",
]

ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("rebayes.report", "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
)


@dataclass(frozen=True)
class Cell:
    """A table cell: its text and CSS class (``num``, ``pass``, ``fail``, ``num fail``...)."""

    text: object
    css: str = ""


@dataclass(frozen=True)
class Table:
    """A table ready for the ``table`` macro: header texts and rows of :class:`Cell`."""

    headers: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]

    def __html__(self) -> str:
        return render("macros.html", macro="table", args=(self,))


@dataclass(frozen=True)
class Figure:
    """An image (path relative to the page) with its caption; ``alt`` defaults to the caption."""

    src: str
    caption: str = ""
    alt: str = ""

    def __html__(self) -> str:
        return render("macros.html", macro="figure", args=(self,))


def _cell(value: object) -> Cell:
    """Return ``value`` as a :class:`Cell`: a number (int/float) gets the ``num`` class."""
    if isinstance(value, Cell):
        return value
    if isinstance(value, int | float):
        return Cell(value, "num")
    return Cell(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> Table:
    """Return a :class:`Table`; numbers (int/float) get the ``num`` class, cells keep theirs."""
    return Table(tuple(headers), tuple(tuple(_cell(v) for v in row) for row in rows))


def figure(src: str, caption: str, alt: str = "") -> Figure:
    """Return a :class:`Figure`: an image (relative path) and its caption."""
    return Figure(src, caption, alt)


def render(template: str, macro: str | None = None, args: Sequence[object] = (),
           **context: Any) -> Markup:
    """Render a template of ``report/templates`` (or one of its macros) to safe HTML."""
    loaded = ENVIRONMENT.get_template(template)
    if macro is not None:
        return Markup(getattr(loaded.module, macro)(*args))
    return Markup(loaded.render(**context))


def render_page(
    template: str,
    title: str,
    nav: Sequence[tuple[str, str]] = (),
    footer: str = "",
    **context: Any,
) -> str:
    """Return a complete HTML document: ``template`` (which extends ``base.html``) rendered.

    ``footer`` (plain text) is printed small under the body: the report puts the package
    versions and the data hash on every page.
    """
    return str(render(template, title=title, nav=list(nav), footer=footer, **context))


#: Reader names of the decision tools' table columns (their ``to_dataframe()`` keeps the
#: short names a program wants).
COLUMN_LABELS: dict[str, str] = {
    "control_per_1000": "control, per 1000",
    "treatment_per_1000": "treatment, per 1000",
    "treatment_low": "treatment, 95% low",
    "treatment_high": "treatment, 95% high",
    "difference_per_1000": "difference, per 1000",
    "difference_low": "difference, 95% low",
    "difference_high": "difference, 95% high",
    "control_risk": "control risk",
    "p_benefit": "P(benefit)",
    "p_beyond": "P(benefit beyond threshold)",
    "added": "trial added",
    "k": "trials",
    "order_value": "order",
    "rr_median": "posterior RR",
    "rr_low": "95% CrI low",
    "rr_high": "95% CrI high",
    "tau_median": "tau (median)",
    "n_per_arm": "n per arm",
    "p_conclusive": "P(updated MA conclusive either way)",
    "p_conclusive_benefit": "P(updated P(benefit) > 0.95)",
    "p_conclusive_harm": "P(updated P(harm) > 0.95)",
    "p_significant": "P(new trial significant)",
    "p_significant_benefit": "P(significant, benefit)",
    "p_futile": "P(futility)",
    "mc_se": "Monte Carlo SE",
    "ci_low": "95% low",
    "ci_high": "95% high",
    "sceptical_limit": "sceptical limit",
    "sceptical_sd": "sceptical prior SD",
    "advocacy_limit": "advocacy limit",
    "intrinsically_credible": "intrinsically credible",
    "p_intrinsic": "P (intrinsic credibility)",
    "prior_mean": "prior mean",
    "prior_mean_ratio": "prior mean (ratio)",
    "prior_sd": "prior SD",
    "tau_prior": "heterogeneity prior",
    "pareto_k": "Pareto k",
}


def _neutral_columns(direction: Direction) -> dict[str, str]:
    """Column names that speak of benefit, in the words of an undeclared direction."""
    p = direction.p_name()
    return {
        "p_benefit": p,
        "p_beyond": f"P(beyond threshold, {direction.benefit} side)",
        "p_conclusive": f"P(updated {p} > 0.95)",
        "p_significant_benefit": f"P(significant, {direction.benefit})",
    }


def column_label(name: object, direction: Direction | None = None) -> str:
    """Return the reader name of a tool-table column (``p_futile`` -> ``P(futility)``).

    With an undeclared ``direction``, columns about benefit get its literal names
    (``p_benefit`` -> ``P(RR < 1)``).
    """
    text = str(name)
    if direction is not None and not direction.declared:
        neutral = _neutral_columns(direction)
        if text in neutral:
            return neutral[text]
    return COLUMN_LABELS.get(text, text.replace("_", " "))


def tool_section(
    sentence: str,
    frame: pd.DataFrame,
    figure: str | None = None,
    direction: Direction | None = None,
) -> Markup:
    """Render a decision tool's section (``tool.html``): sentence, table, figure.

    The page gives the section its heading; the table's columns get reader names
    (:data:`COLUMN_LABELS`; literal ones for an undeclared ``direction``).

    The table is pandas' own rendering of ``frame`` (3 significant digits).
    """
    frame = frame.rename(columns=lambda c: column_label(c, direction))
    # A value a row does not have shows as a dash, not "None": na_rep covers NaN in numeric
    # columns, the loop None in object columns (numeric ones keep their float format).
    for column in frame.select_dtypes(include="object").columns:
        frame[column] = frame[column].where(frame[column].notna(), "–")
    html = frame.to_html(index=False, float_format=lambda x: f"{x:.3g}", border=0,
                         na_rep="–")
    return render("tool.html", sentence=sentence, table=Markup(html), figure=figure)


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Return a GitHub-flavoured markdown table (:func:`rebayes.tables.markdown`).

    A :class:`Cell` shows its ``text``; ``|`` in cells is escaped. A column of numbers (the
    cells :func:`table` gives the ``num`` class) is right-aligned, as on the HTML page.
    """
    cells = [[_cell(v) for v in row] for row in rows]
    align = "".join(
        "r" if all("num" in c.css.split() for c in column) else "l"
        for column in zip(*cells, strict=True)
    )
    return tables.markdown(tables.frame(headers, [[c.text for c in row] for row in cells]),
                           align=align or None)


_LABELS = {
    "pooled_rr": "pooled RR",
    "pooled_or": "pooled OR",
    "predictive_rr": "predictive RR (new trial)",
    "risk_difference": "risk difference",
    "p_benefit": "P(benefit) indicator",
    "p_benefit_beyond_1_1": "P(benefit beyond RR 1.1) indicator",
    "p_benefit_beyond_1_25": "P(benefit beyond RR 1.25) indicator",
    "p_rr_gt_1_1": "P(RR > 1.1) indicator",
    "typical_control_risk": "control risk p0",
    "tau": "τ",
    "d": "d (pooled, or row-average, log effect)",
}
_INDEXED = {
    "subgroup_rr": "RR in {}",
    "p_subgroup_benefit": "P(benefit in {}) indicator",
    "subgroup_ratio": "RR ratio {}",
    "ratio": "RR ratio {}",
    "p_ratio_gt_1": "P(RR ratio {} > 1) indicator",
    "trial_rr": "RR in {}",
    "beta": "β[{}]",
    "d": "d[{}]",
}
_TOKEN = re.compile(r"\b([a-z_][a-z0-9_]*)(?:\[([^\]]+)\])?")


_BENEFIT_RATIOS = {"p_benefit": 1.0, "p_benefit_beyond_1_1": 1.1, "p_benefit_beyond_1_25": 1.25}


def reader_label(name: str, direction: Direction | None = None) -> str:
    """Return the reader-facing name of a reported quantity (``subgroup_rr[a]`` -> ``RR in a``).

    Names that are not internal quantity names come back unchanged. With an undeclared
    ``direction`` the benefit indicators get their literal names (``P(RR < 1) indicator``).
    """
    match = _TOKEN.fullmatch(name.strip())
    if not match:
        return name
    base, index = match.groups()
    neutral = direction is not None and not direction.declared
    if index is not None and base in _INDEXED:
        if neutral and base == "p_subgroup_benefit":
            assert direction is not None
            return f"P({direction.benefit} in {index.replace('_', ' ')}) indicator"
        return _INDEXED[base].format(index.replace("_", " "))
    if index is None and neutral and base in _BENEFIT_RATIOS:
        assert direction is not None
        return f"P({direction.beyond(_BENEFIT_RATIOS[base])}) indicator"
    if index is None and base in _LABELS:
        return _LABELS[base]
    return name


def readable(text: str, direction: Direction | None = None) -> str:
    """Replace the internal quantity names inside a sentence with reader-facing ones."""

    def swap(match: re.Match[str]) -> str:
        whole = match.group(0)
        label = reader_label(whole, direction)
        # A bare word that merely looks like a name (e.g. "d" inside prose) stays unless indexed.
        if label == whole or (match.group(2) is None and match.group(1) in ("d", "tau")):
            return whole
        return label

    return _TOKEN.sub(swap, text)


def is_indicator(name: str) -> bool:
    """Whether a reported quantity is a 0/1 indicator (its interval says nothing)."""
    return name.startswith("p_")
