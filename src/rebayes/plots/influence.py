"""Leave-one-trial-out influence plot: pooled RR and P(benefit) without each trial."""

from __future__ import annotations

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from rebayes.data.direction import Direction  # noqa: E402
from rebayes.plots.forest import OBSERVED, SHRUNKEN, ratio_ticks  # noqa: E402

__all__ = ["influence_plot"]


def influence_plot(
    table: pd.DataFrame,
    threshold: float = 0.05,
    title: str = "",
    direction: Direction | None = None,
) -> Figure:
    """Plot an :func:`rebayes.sensitivity.influence.influence_table`.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows: ``(none)`` first, then each left-out trial; columns ``rr_median, rr_low,
        rr_high, p_benefit, mh_rr, mh_low, mh_high, influential``.
    threshold : float
        Band drawn around P(benefit) with all trials.
    title : str
    direction : Direction, optional
        The dataset's direction of benefit and labels (``Direction.of(fit.tree)``), for the
        axis labels; default: higher is better.

    Returns
    -------
    matplotlib.figure.Figure
    """
    direction = direction or Direction()
    n = len(table)
    y = np.arange(n)[::-1]
    fig, (ax_rr, ax_p) = plt.subplots(
        1, 2, figsize=(11, 0.38 * n + 1.8), sharey=True, gridspec_kw={"width_ratios": [3, 2]}
    )
    off = 0.15
    ax_rr.hlines(y + off, table["rr_low"], table["rr_high"], color=SHRUNKEN)
    ax_rr.plot(
        table["rr_median"], y + off, "o", color=SHRUNKEN, label="Bayesian posterior RR (95% CrI)"
    )
    ax_rr.hlines(y - off, table["mh_low"], table["mh_high"], color=OBSERVED)
    ax_rr.plot(table["mh_rr"], y - off, "s", color=OBSERVED, label="RevMan MH RR (95% CI)")
    ax_rr.axvline(1.0, color="#888888", lw=0.8)
    ax_rr.axvline(table["rr_median"].iloc[0], color=SHRUNKEN, lw=0.6, ls=":")
    ax_rr.set_xscale("log")
    low = min(table["rr_low"].min(), table["mh_low"].min(), 1.0)
    high = max(table["rr_high"].max(), table["mh_high"].max(), 1.0)
    ticks = ratio_ticks(np.log(low), np.log(high))
    ax_rr.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax_rr.minorticks_off()
    side = (f"{direction.benefit} favours {direction.treatment}" if direction.declared
            else f"{direction.benefit}: {direction.side_phrase(True)}")
    ax_rr.set_xlabel(f"Pooled {direction.ratio_label} (log scale; {side})")
    labels = ["all trials" if v == "(none)" else f"without {v}" for v in table["left_out"]]
    ax_rr.set_yticks(y, labels, fontsize=9)
    ax_rr.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize=8, frameon=False)
    base = table["p_benefit"].iloc[0]
    ax_p.axvspan(
        base - threshold,
        base + threshold,
        color="#dddddd",
        alpha=0.7,
        label=f"all trials ± {threshold}",
    )
    colors = [SHRUNKEN if flag else "#555555" for flag in table["influential"]]
    ax_p.scatter(table["p_benefit"], y, c=colors, zorder=3)
    for yy, p in zip(y, table["p_benefit"], strict=True):
        ax_p.text(p, yy + 0.25, f"{p:.3f}", ha="center", fontsize=8)
    ax_p.set_xlabel(direction.p_text())
    lo = min(table["p_benefit"].min(), base - threshold) - 0.03
    hi = min(1.0, max(table["p_benefit"].max(), base + threshold) + 0.03)
    ax_p.set_xlim(lo, hi)
    ax_p.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize=8, frameon=False)
    for ax in (ax_rr, ax_p):
        ax.spines[["top", "right"]].set_visible(False)
        ax.set_ylim(-0.7, n - 0.3)
    if title:
        fig.suptitle(title, fontsize=11, fontweight="bold", x=0.01, ha="left")
    fig.tight_layout()
    return fig
