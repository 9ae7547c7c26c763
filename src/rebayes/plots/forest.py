"""RevMan-style forest plot: observed and shrunken per-trial RRs, pooled and predictive rows.

:func:`forest_plot` draws any table of rows; :func:`revman_forest` draws a frequentist
analysis (RevMan's own figure) and :func:`fit_forest` a Bayesian fit (observed and shrunken
RR per analysed row, posterior pooled and predictive rows, RevMan's MH row for reference).
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from rebayes.data.direction import Direction  # noqa: E402
from rebayes.errors import AnalysisError  # noqa: E402

__all__ = ["SummaryRow", "forest_plot", "revman_forest"]

OBSERVED = "#1f4e79"
SHRUNKEN = "#c0504d"
POOLED = "#222222"
#: Axis names of the ratio measures a forest plot can draw (a log axis: no RD).
MEASURE_NAMES = {"RR": ("Risk ratio", "RR"), "OR": ("Odds ratio", "OR"),
                 "PETO_OR": ("Peto odds ratio", "OR")}
# Round ratios for log-scaled RR axes.
RATIO_TICKS = (0.1, 0.2, 0.25, 0.5, 0.67, 0.8, 1.0, 1.25, 1.5, 2.0, 4.0, 5.0, 10.0, 20.0)


@dataclass(frozen=True)
class SummaryRow:
    """A pooled row under the trials: a diamond (pooled) or a bar (prediction interval)."""

    label: str
    estimate: float
    low: float
    high: float
    kind: str = "diamond"  # "diamond" or "interval"
    text: str = ""


def ratio_ticks(
    lo: float, hi: float, n: int = 7, candidates: Sequence[float] = RATIO_TICKS
) -> list[float]:
    """Round ratios inside [exp(lo), exp(hi)], at least (hi - lo) / n apart on the log scale.

    Taken from ``candidates``, 1 first (when inside), then outwards from it, so that the labels
    of a narrow axis never run into each other.
    """
    gap = (hi - lo) / n
    inside = [r for r in candidates if lo <= np.log(r) <= hi]
    kept: list[float] = [1.0] if 1.0 in inside else []
    for r in sorted(inside, key=lambda r: abs(np.log(r))):
        if all(abs(np.log(r) - np.log(k)) >= gap for k in kept):
            kept.append(r)
    return sorted(kept)


def _fmt_ci(est: float, low: float, high: float) -> str:
    if not np.isfinite(est):  # no events in either arm (or only events): RevMan's words
        return "not estimable"
    return f"{est:.2f} [{low:.2f}, {high:.2f}]"


def forest_plot(
    trials: pd.DataFrame,
    summaries: Sequence[SummaryRow] = (),
    title: str = "",
    treatment: str | None = None,
    control: str | None = None,
    favours: tuple[str, str] | None = None,
    xlim: tuple[float, float] | None = None,
    direction: Direction | None = None,
    subtotals: Mapping[str, SummaryRow] | None = None,
    measure: str = "RR",
) -> Figure:
    """Draw a forest plot on a log ratio axis.

    Parameters
    ----------
    trials : pandas.DataFrame
        One row per trial (or stratum) with ``label, events_treat, n_treat, events_control,
        n_control, rr, rr_low, rr_high``; optional ``post_rr, post_low, post_high`` (shrunken
        posterior median and 95% interval, drawn in a second colour just below the observed
        one) and ``weight`` (percent; sets the marker size).
    summaries : sequence of SummaryRow
        Pooled rows (diamonds) and prediction rows (bars) drawn below the trials.
    title : str
    treatment, control : str, optional
        Column headers for the events/total columns; default: the direction's labels.
    favours : tuple of str, optional
        Labels under the axis, left and right of RR = 1; default ``direction.favours``
        (``favours <control>`` left and ``favours <treatment>`` right when higher is better,
        the other way round when lower is better).
    xlim : tuple of float
        Axis limits (ratio scale); intervals beyond them end in an arrow.
    direction : Direction, optional
        The dataset's direction of benefit and labels (``Direction.of(fit.tree)``); default:
        higher is better, ``treatment`` / ``control``.
    subtotals : mapping of str to SummaryRow, optional
        With a ``group`` column in ``trials``: the trials are drawn group by group (in this
        mapping's order), each under its name and above its subtotal diamond, as RevMan draws
        subgroups. Rows whose group has no subtotal come last, under their own header.
    measure : {"RR", "OR", "PETO_OR"}
        The ratio the columns ``rr, rr_low, rr_high`` hold: names the axis and the column.

    Long study labels are wrapped onto two lines (and cut with an ellipsis beyond), so they
    never run into the count columns.

    Returns
    -------
    matplotlib.figure.Figure
    """
    direction = direction or Direction()
    axis_name, abbreviation = MEASURE_NAMES[measure]
    xlim = xlim or _axis_limits(trials, summaries)
    treatment = treatment or direction.treatment
    control = control or direction.control
    favours = favours or direction.favours
    layout = _layout(trials, subtotals)
    n_rows = len(layout) + len(summaries) + 1
    fig = plt.figure(figsize=(11.5, 0.42 * n_rows + 1.6))
    grid = fig.add_gridspec(1, 3, width_ratios=[3.4, 3.6, 2.6], wspace=0.02)
    text_ax, ax, est_ax = (fig.add_subplot(grid[0, i]) for i in range(3))
    y_layout = np.arange(len(layout))[::-1] + len(summaries) + 1
    y_summary = np.arange(len(summaries))[::-1] + 0.3
    has_post = {"post_rr", "post_low", "post_high"} <= set(trials.columns)
    weights = trials["weight"].to_numpy(float) if "weight" in trials else np.full(len(trials), 5)
    rows = list(trials.itertuples(index=False))
    for y, (kind, item) in zip(y_layout, layout, strict=True):
        if kind == "header":
            text_ax.text(0.0, y, str(item), va="center", fontsize=9, fontweight="bold",
                         style="italic")
        elif kind == "subtotal":
            _summary_row(ax, text_ax, est_ax, item, y, xlim, size=8.5)
        else:
            _trial_row(ax, text_ax, est_ax, rows[item], weights[item], y, xlim, has_post)
    for y, row in zip(y_summary, summaries, strict=True):
        _summary_row(ax, text_ax, est_ax, row, y, xlim)
    _column_headers(text_ax, est_ax, n_rows + 0.2, (treatment, control), abbreviation)
    _ratio_axis(ax, xlim, summaries, axis_name, favours)
    _strip_frames(text_ax, ax, est_ax, n_rows)
    if has_post:
        _posterior_legend(ax)
    if title:
        fig.suptitle(title, fontsize=11, fontweight="bold", x=0.02, ha="left")
    fig.subplots_adjust(
        left=0.02,
        right=0.99,
        top=1 - 0.75 / (0.42 * n_rows + 1.6),
        bottom=1.25 / (0.42 * n_rows + 1.6),
    )
    return fig


def _trial_row(
    ax, text_ax, est_ax, row: Any, weight: float, y: float, xlim, has_post: bool
) -> None:
    """Draw one trial: its interval(s) and marker(s), its label, counts and numbers."""
    # With a shrunken row the observed one sits just above it, the shrunken one just below.
    offset = 0.17 if has_post else 0.0
    _interval(ax, row.rr, row.rr_low, row.rr_high, y + offset, OBSERVED, xlim)
    ax.plot(row.rr, y + offset, "s", color=OBSERVED, ms=4 + 8 * np.sqrt(weight / 100))
    if has_post:
        _interval(ax, row.post_rr, row.post_low, row.post_high, y - offset, SHRUNKEN, xlim)
        ax.plot(row.post_rr, y - offset, "o", color=SHRUNKEN, ms=5)
    label, size = _fit_label(str(row.label))
    text_ax.text(0.0, y, label, va="center", fontsize=size, linespacing=0.95)
    text_ax.text(
        0.64, y, f"{row.events_treat}/{row.n_treat}", va="center", ha="right", fontsize=9
    )
    text_ax.text(
        0.95, y, f"{row.events_control}/{row.n_control}", va="center", ha="right", fontsize=9
    )
    est_ax.text(
        0.02,
        y + offset,
        _fmt_ci(row.rr, row.rr_low, row.rr_high),
        va="center",
        fontsize=9,
        color=OBSERVED,
    )
    if has_post:
        est_ax.text(
            0.02,
            y - offset,
            _fmt_ci(row.post_rr, row.post_low, row.post_high),
            va="center",
            fontsize=9,
            color=SHRUNKEN,
        )


def _column_headers(
    text_ax, est_ax, top: float, arms: tuple[str, str], abbreviation: str
) -> None:
    """Write the bold column headers: study, the two arms' counts, the estimate."""
    # Long arm names wrap: on one line they run into each other and into "Study".
    treatment, control = (textwrap.fill(a, 14, break_long_words=False) for a in arms)
    text_ax.text(0.0, top, "Study", fontweight="bold", fontsize=9, va="center")
    text_ax.text(0.64, top, treatment, fontweight="bold", fontsize=9, ha="right", va="center",
                 multialignment="right")
    text_ax.text(0.95, top, control, fontweight="bold", fontsize=9, ha="right", va="center",
                 multialignment="right")
    est_ax.text(0.02, top, f"{abbreviation} [95% interval]", fontweight="bold", fontsize=9,
                va="center")


def _ratio_axis(
    ax, xlim, summaries: Sequence[SummaryRow], axis_name: str, favours: tuple[str, str]
) -> None:
    """Set up the log ratio axis: the null line, the pooled line, round ticks, the label."""
    ax.axvline(1.0, color="#888888", lw=0.8)
    if summaries:
        ax.axvline(summaries[0].estimate, color=POOLED, lw=0.6, ls=":")
    ax.set_xscale("log")
    ax.set_xlim(*xlim)
    ticks = [t for t in _TICKS if xlim[0] <= t <= xlim[1]]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel(
        f"{axis_name} (log scale)\n\u2190 {favours[0]}    |    {favours[1]} \u2192",
        fontsize=9,
    )


def _strip_frames(text_ax, ax, est_ax, n_rows: int) -> None:
    """Give the three panels the rows' height and take off every frame but the ratio axis."""
    for a in (text_ax, ax, est_ax):
        a.set_ylim(-0.5, n_rows + 0.7)
        a.set_yticks([])
        for side in ("top", "right", "left"):
            a.spines[side].set_visible(False)
    for a in (text_ax, est_ax):
        a.set_xlim(0, 1)
        a.set_xticks([])
        a.spines["bottom"].set_visible(False)


def _posterior_legend(ax) -> None:
    """Add the legend telling observed from shrunken rows, above the ratio axis."""
    ax.plot([], [], "s", color=OBSERVED, label="observed (95% CI)")
    ax.plot([], [], "o", color=SHRUNKEN, label="shrunken posterior (95% CrI)")
    ax.legend(
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        ncol=2,
        fontsize=8,
        frameon=False,
        handletextpad=0.3,
        columnspacing=1.0,
    )


def revman_forest(
    table: pd.DataFrame,
    measure: str,
    total: SummaryRow,
    subtotals: Mapping[str, SummaryRow] | None = None,
    title: str = "",
    direction: Direction | None = None,
) -> Figure:
    """Draw RevMan's forest plot of a frequentist analysis.

    Parameters
    ----------
    table : pandas.DataFrame
        RevMan's analysis table (:func:`rebayes.frequentist.table.analysis_table`, a
        result's ``to_dataframe()``); its ``kind == "study"`` rows are drawn.
    measure : str
        ``"RR"`` or ``"OR"``.
    total : SummaryRow
        The pooled row.
    subtotals : mapping of str to SummaryRow, optional
        Per subgroup (the table's ``subgroup`` column), its subtotal diamond: the studies
        are then drawn subgroup by subgroup.
    title : str
    direction : Direction, optional
        Default: higher is better.

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    rebayes.errors.AnalysisError
        For a risk difference, which needs a linear axis.
    """
    if measure not in MEASURE_NAMES:
        raise AnalysisError(f"no forest plot of a {measure}: it needs a ratio measure")
    studies = table[table["kind"] == "study"]
    frame = pd.DataFrame(
        {
            "label": studies["study"],
            **{c: studies[c].astype(int) for c in
               ("events_treat", "n_treat", "events_control", "n_control")},
            "rr": studies["estimate"],
            "rr_low": studies["ci_low"],
            "rr_high": studies["ci_high"],
            "weight": studies["weight"],
        }
    ).reset_index(drop=True)
    if subtotals is not None:
        frame["group"] = list(studies["subgroup"])
    return forest_plot(frame, [total], title=title, direction=direction,
                       subtotals=subtotals or None, measure=measure)


_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)
#: Characters of a study label per line before it is wrapped (the count columns start there).
LABEL_WIDTH = 26


def _fit_label(label: str) -> tuple[str, float]:
    """Return the label wrapped onto at most two lines (ellipsis beyond), and its font size."""
    if len(label) <= LABEL_WIDTH:
        return label, 9.0
    lines = textwrap.wrap(label, LABEL_WIDTH + 4) or [label]
    if len(lines) > 2:
        lines = [lines[0], lines[1][: LABEL_WIDTH + 1] + "…"]
    return "\n".join(line[: LABEL_WIDTH + 4] for line in lines), 8.0


def _layout(
    trials: pd.DataFrame, subtotals: Mapping[str, SummaryRow] | None
) -> list[tuple[str, Any]]:
    """Rows top to bottom: ``("trial", position)``, or grouped: header, trials, subtotal."""
    if not subtotals or "group" not in trials:
        return [("trial", i) for i in range(len(trials))]
    groups = [str(g) for g in trials["group"]]
    order = [g for g in subtotals if g in groups]
    order += [g for g in dict.fromkeys(groups) if g not in subtotals]
    out: list[tuple[str, Any]] = []
    for g in order:
        out.append(("header", g.replace("_", " ") if g else "other rows"))
        out += [("trial", i) for i, x in enumerate(groups) if x == g]
        if g in subtotals:
            out.append(("subtotal", subtotals[g]))
    return out


def _summary_row(ax, text_ax, est_ax, row: SummaryRow, y: float, xlim, size: float = 9) -> None:
    """Draw a pooled row: diamond (or bar), its label and its numbers, in bold."""
    if row.kind == "diamond":
        ax.fill([row.low, row.estimate, row.high, row.estimate],
                [y, y + 0.25, y, y - 0.25], color=POOLED)
    else:
        _interval(ax, row.estimate, row.low, row.high, y, POOLED, xlim, lw=3)
    text_ax.text(0.0, y, row.label, va="center", fontsize=size, fontweight="bold")
    est_ax.text(0.02, y, row.text or _fmt_ci(row.estimate, row.low, row.high), va="center",
                fontsize=size, fontweight="bold")


def _axis_limits(
    trials: pd.DataFrame, summaries: Sequence[SummaryRow]
) -> tuple[float, float]:
    """Log-axis limits that hold the point estimates and the pooled intervals.

    From the tick below the smallest to the tick above the largest of the trials' estimates
    and the summary rows' intervals (never narrower than 0.5-2, never wider than 0.01-100);
    a trial's wider interval is drawn with an arrow.
    """
    values = [v for c in ("rr", "post_rr") if c in trials for v in trials[c]]
    values += [v for row in summaries for v in (row.estimate, row.low, row.high)]
    finite = [v for v in values if np.isfinite(v) and v > 0] or [1.0]
    low, high = min(min(finite), 0.5), max(max(finite), 2.0)
    lower = max((t for t in _TICKS if t <= low), default=_TICKS[0])
    upper = min((t for t in _TICKS if t >= high), default=_TICKS[-1])
    return lower, upper


def _interval(ax, est, low, high, y, color, xlim, lw=1.4):
    lo, hi = max(low, xlim[0]), min(high, xlim[1])
    ax.plot([lo, hi], [y, y], color=color, lw=lw)
    if low < xlim[0]:
        ax.annotate(
            "",
            (xlim[0], y),
            (xlim[0] * 1.6, y),
            arrowprops=dict(arrowstyle="->", color=color, lw=lw),
        )
    if high > xlim[1]:
        ax.annotate(
            "",
            (xlim[1], y),
            (xlim[1] / 1.6, y),
            arrowprops=dict(arrowstyle="->", color=color, lw=lw),
        )
