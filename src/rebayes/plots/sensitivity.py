"""Figures of how the answer moves with the prior and the data variant.

- :func:`posterior_overlay`: the posterior density of the pooled RR under each prior (solid)
  with the RR density that prior implies before seeing the data (dashed), on a log axis.
- :func:`sensitivity_plot`: forest-like rows prior x variant with the pooled RR's median
  and 95% interval (and any subgroup ratio), with P(benefit) printed.

Both take what a :class:`rebayes.sensitivity.comparison.Comparison` holds (its table, its
posterior draws), not the comparison; its ``direction`` gives the labels and the side of RR = 1
that is benefit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import matplotlib
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from arviz_stats.base import array_stats  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.ticker import FixedLocator, NullFormatter  # noqa: E402

from rebayes.bayes.mcse import MARK, line_note, marked  # noqa: E402
from rebayes.bayes.records import DECISION  # noqa: E402
from rebayes.plots.forest import ratio_ticks  # noqa: E402
from rebayes.sensitivity.conclusions import indexed_names  # noqa: E402

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes

    from rebayes.bayes.baseline import ControlRisk
    from rebayes.data.direction import Direction

__all__ = ["density_on_log_scale", "posterior_overlay", "sensitivity_plot"]

#: Per (prior, variant): the pooled-RR draws and the prior-implied RR's density (x, y).
OverlayData = Mapping[tuple[str, str], tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]]

RR_TICKS = (0.25, 0.33, 0.5, 0.67, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0)
INTERVAL = "#1f4e79"
PREDICTIVE = "#9dc3e6"


def _log_axis(ax: Axes, low: float, high: float, axis: str = "x") -> None:
    """Log-scaled ratio axis between ``low`` and ``high`` with round tick labels."""
    set_scale = ax.set_xscale if axis == "x" else ax.set_yscale
    set_lim = ax.set_xlim if axis == "x" else ax.set_ylim
    target = ax.xaxis if axis == "x" else ax.yaxis
    set_scale("log")
    set_lim(low, high)
    ticks = ratio_ticks(math.log(low), math.log(high), n=6, candidates=RR_TICKS)
    target.set_major_locator(FixedLocator(ticks))
    target.set_major_formatter(matplotlib.ticker.FixedFormatter([f"{t:g}" for t in ticks]))
    target.set_minor_formatter(NullFormatter())


def density_on_log_scale(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the KDE of log(values) against values: density per unit log RR."""
    grid, pdf, _ = array_stats.kde(np.log(values[np.isfinite(values) & (values > 0)]))
    return np.exp(grid), pdf


def posterior_overlay(
    data: OverlayData,
    p_benefit: Mapping[tuple[str, str], float],
    *,
    priors: Sequence[str],
    variants: Sequence[str],
    direction: Direction,
    analysis: str,
    pooled_kind: str,
    control_risk: ControlRisk | None,
    title: str = "",
) -> Figure:
    """Posterior pooled-RR densities under each prior (solid), prior-implied RR dashed.

    Parameters
    ----------
    data : mapping
        Per (prior, variant), in the comparison's order: the pooled-RR draws and the
        prior-implied RR's density
        (:meth:`rebayes.sensitivity.comparison.Comparison.overlay_data`).
    p_benefit : mapping
        P(benefit) per (prior, variant).
    priors, variants : sequence of str
        One colour per prior, one panel per data variant.
    direction : Direction
    analysis : str
    pooled_kind : str
        ``"pooled"``, or what the RR is in a meta-regression (its row average).
    control_risk : ControlRisk or None
        The control risk the RR is at.
    title : str
        Overrides the default title.

    Returns
    -------
    matplotlib.figure.Figure
        Log RR axis with a line at RR = 1; densities are per unit log RR, so areas compare
        across the axis. The legend gives each prior's P(benefit).
    """
    left, right = direction.favours
    p_label = f"P({direction.benefit})".replace(" ", "")
    fig, axes = plt.subplots(
        1, len(variants), figsize=(6.4 * len(variants) + 3.6, 5.0), squeeze=False, sharey=True
    )
    colors = {p: f"C{i % 10}" for i, p in enumerate(priors)}
    posteriors = {key: draws for key, (draws, _) in data.items()}
    everything = np.concatenate(list(posteriors.values()))
    low, high = np.quantile(everything, [0.0005, 0.9995])
    low, high = min(low / 1.15, 0.8), max(high * 1.15, 1.25)
    top = 0.0
    handles: list[Any] = []
    for ax, variant in zip(axes[0], variants, strict=True):
        labelled = not handles
        for prior, _ in (key for key in data if key[1] == variant):
            color = colors[prior]
            x, y = density_on_log_scale(posteriors[(prior, variant)])
            ax.plot(x, y, color=color, lw=2)
            top = max(top, float(y.max()))
            px, py = data[(prior, variant)][1]
            keep = (px >= low) & (px <= high)
            ax.plot(px[keep], py[keep], color=color, lw=1.3, ls="--", alpha=0.8)
            if labelled:
                # With one variant the legend can carry each prior's P(benefit).
                extra = (f", {p_label} = {p_benefit[(prior, variant)]:.3f}"
                         if len(variants) == 1 else "")
                handles.append(Line2D([], [], color=color, lw=2, label=f"{prior}{extra}"))
        ax.axvline(1.0, color="#444444", lw=1)
        _log_axis(ax, low, high)
        ax.set_xlabel(f"pooled {direction.ratio_label}\n(log scale)", fontsize=9)
        ax.set_title(f"{variant} data", fontsize=10)
        ax.text(0.01, 0.98, left, transform=ax.transAxes, va="top", fontsize=8, color="#666666")
        ax.text(0.99, 0.98, right, transform=ax.transAxes, va="top", ha="right", fontsize=8,
                color="#666666")
        ax.grid(axis="x", alpha=0.3)
    axes[0][0].set_ylabel("density per unit log RR")
    axes[0][0].set_ylim(0, top * 1.1)
    handles += [
        Line2D([], [], color="black", lw=2, label="posterior"),
        Line2D([], [], color="black", lw=1.3, ls="--", label="prior (implied RR)"),
    ]
    fig.legend(handles=handles, fontsize=9, frameon=False, loc="center right", title="prior set")
    p0 = (f"at control risk {control_risk.percent}" if control_risk is not None
          else "at the control risk")
    heading = title or (
        f"{analysis}: {pooled_kind} RR under each prior ({p0})\n"
        "dashed: the RR each prior implies, its mean towards benefit"
    )
    fig.suptitle(heading, fontsize=11)
    legend_width = (3.8 if len(variants) == 1 else 2.6) / fig.get_figwidth()
    fig.tight_layout(rect=(0, 0, 1 - legend_width, 0.97))
    return fig


def _interval_panel(
    ax: Axes,
    y: np.ndarray,
    median: np.ndarray,
    low: np.ndarray,
    high: np.ndarray,
    pred: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    if pred is not None:
        ax.hlines(y, pred[0], pred[1], color=PREDICTIVE, lw=1.5, zorder=1)
    ax.hlines(y, low, high, color=INTERVAL, lw=2.5, zorder=2)
    ax.scatter(median, y, color=INTERVAL, marker="s", s=30, zorder=3)
    ax.axvline(1.0, color="#444444", lw=1)
    ax.grid(axis="x", alpha=0.3)


def sensitivity_plot(
    table: pd.DataFrame, direction: Direction, analysis: str, pooled_kind: str,
    title: str = "",
) -> Figure:
    """Forest-like plot of the pooled RR (and subgroup ratios) per prior x data variant.

    Parameters
    ----------
    table : pandas.DataFrame
        :attr:`rebayes.sensitivity.comparison.Comparison.table`: one row per prior x variant.
    direction : Direction
    analysis : str
    pooled_kind : str
    title : str
        Overrides the default title.

    Returns
    -------
    matplotlib.figure.Figure
        One row per prior x variant: median and 95% credible interval (dark), 95% predictive
        interval for a new trial (light); the numbers and P(benefit) are printed at the right.
        A second panel shows each subgroup ratio when the analysis has one.
    """
    p_label = f"P({direction.benefit})".replace(" ", "")
    ratio_names = indexed_names(table.columns, "ratio_median")
    n = len(table)
    y = np.arange(n)[::-1].astype(float)
    panels = 1 + len(ratio_names)
    widths = [4.6] * panels + [2.2 + 0.8 * len(ratio_names)]
    height = 0.42 * n + 1.6
    fig = plt.figure(figsize=(2.8 + sum(widths), height))
    grid = fig.add_gridspec(1, panels + 1, width_ratios=widths, wspace=0.08)
    axes = [fig.add_subplot(grid[0, i]) for i in range(panels + 1)]
    text_ax = axes[-1]

    _pooled_panel(axes[0], table, direction, pooled_kind, y)
    for i, name in enumerate(ratio_names, start=1):
        number = f"#{i}: " if len(ratio_names) > 1 else ""
        _ratio_panel(axes[i], table, y, name, number)
    variants = table["variant"].tolist()
    for ax in axes[:-1]:
        ax.set_ylim(-0.7, n - 0.3)
        # A rule between the blocks of one data variant and the next.
        for i in range(1, n):
            if variants[i] != variants[i - 1]:
                ax.axhline(y[i] + 0.5, color="#bbbbbb", lw=0.8)

    _number_columns(text_ax, table, y, ratio_names, widths[-1], p_label)
    heading = title or (
        f"{analysis}: sensitivity of the posterior to the prior and the data "
        f"({p_label} > 0.95 in bold; {MARK} {line_note(DECISION)})"
    )
    fig.suptitle(heading, fontsize=11)
    # Margins in inches, whatever the number of rows.
    fig.subplots_adjust(
        left=2.8 / fig.get_figwidth(), right=0.98, top=1 - 0.75 / height, bottom=0.6 / height
    )
    return fig


def _pooled_panel(
    ax: Axes, table: pd.DataFrame, direction: Direction, kind: str, y: np.ndarray
) -> None:
    """Draw the pooled RR panel: one row per prior x variant, named on the left."""
    rr_low = min(table["rr_low"].min(), table["pred_low"].min())
    rr_high = max(table["rr_high"].max(), table["pred_high"].max())
    _interval_panel(
        ax,
        y,
        table["rr_median"].to_numpy(),
        table["rr_low"].to_numpy(),
        table["rr_high"].to_numpy(),
        (table["pred_low"].to_numpy(), table["pred_high"].to_numpy()),
    )
    _log_axis(ax, min(rr_low / 1.1, 0.8), max(rr_high * 1.1, 1.25))
    left, right = direction.favours
    ax.set_xlabel(f"{kind} RR of {direction.outcome} (log scale)\n< {left} | {right} >")
    ax.set_title(f"{kind} RR: 95% CrI (dark), 95% predictive (light)", fontsize=9)
    labels = (
        table["prior"]
        if table["variant"].nunique() == 1
        else table["prior"] + " | " + table["variant"]
    )
    ax.set_yticks(y, labels, fontsize=9)


def _ratio_panel(
    ax: Axes, table: pd.DataFrame, y: np.ndarray, name: str, number: str
) -> None:
    """Draw the panel of one subgroup ratio (``number`` tells several apart in the title)."""
    med, lo, hi = (table[f"ratio_{k}[{name}]"].to_numpy() for k in ("median", "low", "high"))
    # A ratio a data variant cannot identify (no trial in one of its cells) is NaN in
    # that variant's rows: draw the rows that have it and mark the others.
    have = ~np.isnan(med)
    _interval_panel(ax, y[have], med[have], lo[have], hi[have])
    for yy in y[~have]:
        ax.text(
            1.0, yy, "not identified", fontsize=8, color="#777777", ha="center", va="center"
        )
    low_lim = np.nanmin(lo) / 1.1 if have.any() else 0.8
    high_lim = np.nanmax(hi) * 1.1 if have.any() else 1.25
    _log_axis(ax, min(low_lim, 0.8), max(high_lim, 1.25))
    ax.set_yticks(y, [""] * len(table))
    ax.set_xlabel("ratio of subgroup RRs (log scale)")
    ax.set_title(f"{number}RR ratio {name}", fontsize=9)


def _number_columns(
    text_ax: Axes,
    table: pd.DataFrame,
    y: np.ndarray,
    ratio_names: list[str],
    width: float,
    p_label: str,
) -> None:
    """Write the numbers at the right: RR (95% CrI), P(benefit), each P(ratio > 1)."""
    n = len(table)
    text_ax.set_ylim(-0.7, n - 0.3)
    text_ax.axis("off")
    # Text columns at fixed offsets in inches: RR (95% CrI), P(benefit), one P(ratio>1) per
    # ratio.
    inches = [0.0, 1.45, *(2.25 + 0.8 * i for i in range(len(ratio_names)))]
    columns = [x / width for x in inches]
    ratio_headers = (
        ["P(ratio>1)"]
        if len(ratio_names) == 1
        else [f"P(#{i}>1)" for i in range(1, len(ratio_names) + 1)]
    )
    for x, header in zip(columns, ["RR (95% CrI)", p_label, *ratio_headers], strict=True):
        text_ax.text(x, n - 0.3, header, fontsize=9, weight="bold", va="bottom")
    for yi, (_, row) in zip(y, table.iterrows(), strict=True):
        cells = [f"{row['rr_median']:.2f} ({row['rr_low']:.2f}-{row['rr_high']:.2f})"]
        cells.append(marked(row["p_benefit"], row.get("p_benefit_mcse", math.nan), DECISION))
        for name in ratio_names:
            p = row[f"p_ratio_gt_1[{name}]"]
            cells.append("" if math.isnan(p) else f"{p:.3f}")
        for j, (x, cell) in enumerate(zip(columns, cells, strict=True)):
            bold = j == 1 and row["p_benefit"] > DECISION
            text_ax.text(x, yi, cell, fontsize=9, va="center", weight="bold" if bold else "normal")
