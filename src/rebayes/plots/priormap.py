"""Figure of a prior-space map: P(benefit) over the effect priors' mean and SD.

Takes the maps (:class:`rebayes.tools.priormap.TauMap`, one per heterogeneity prior) and the
labels, not the :class:`~rebayes.tools.priormap.PriorMap`, and returns a matplotlib Figure
built without pyplot (no global state is touched; save it with ``fig.savefig``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from matplotlib import colormaps
from matplotlib.colors import BoundaryNorm
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

if TYPE_CHECKING:
    from rebayes.data.direction import Direction
    from rebayes.tools.priormap import TauMap

__all__ = ["prior_map_plot"]

_LEVELS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.975, 0.99, 1.0)
_RATIO_TICKS = (1 / 3, 0.4, 0.5, 0.67, 0.8, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0)
_SD_TICKS = (0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


def prior_map_plot(
    maps: Sequence[TauMap], direction: Direction, ratio: str, threshold: float, scale: str
) -> Figure:
    """Draw P(benefit) over prior mean (as a ratio) and SD, filled contours, a panel per map.

    Lines at P = 0.95 (solid) and 0.5 (dashed), and at P(benefit beyond the threshold) =
    0.5 (dotted); the named priors sharing the panel's heterogeneity prior are marked and
    labelled, and so is the analysis of credibility's prior (star).

    Parameters
    ----------
    maps : sequence of TauMap
        One panel each (:attr:`rebayes.tools.priormap.PriorMap.maps`).
    direction : Direction
    ratio : str
        ``"OR"`` or ``"RR"``: the ratio exp(d) of the x axis.
    threshold : float
        The ratio P(benefit beyond it) is drawn for.
    scale : str
        The scale of d (``"log OR"``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    n = len(maps)
    cols = min(n, 2)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(6.2 * cols, 4.8 * rows + 0.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    d, r = direction, ratio
    cmap = colormaps["RdYlBu"]
    norm = BoundaryNorm(_LEVELS, cmap.N)
    filled = None
    for ax, m in zip(axes, maps, strict=False):
        x, y = np.exp(m.means), m.sds
        # Weights sum to 1 only up to rounding: keep P = 1 inside the top level.
        filled = ax.contourf(x, y, np.clip(m.p_benefit, 0, 1).T, levels=_LEVELS, cmap=cmap,
                             norm=norm)
        lines = ax.contour(x, y, m.p_benefit.T, levels=[0.5, 0.95], colors="black",
                           linestyles=["dashed", "solid"], linewidths=[1.0, 1.6])
        ax.clabel(lines, fmt={0.5: "0.5", 0.95: "0.95"}, fontsize="small")
        if (m.p_beyond > 0.5).any() and (m.p_beyond < 0.5).any():
            beyond = ax.contour(x, y, m.p_beyond.T, levels=[0.5], colors="#444444",
                                linestyles="dotted", linewidths=1.2)
            ax.clabel(beyond, fmt={0.5: f"P({d.beyond(threshold)}) 0.5"},
                      fontsize="x-small")
        if m.refitted.any():
            ax.scatter(x[np.nonzero(m.refitted)[0]], y[np.nonzero(m.refitted)[1]],
                       marker=".", s=6, color="white", label="refitted")
        off = []
        for mark in m.marks:
            if not mark.on_map:
                off.append(f"{mark.label} N({mark.mean:.2g}, {mark.sd:.2g})")
                continue
            star = mark.kind == "credibility"
            ax.scatter(math.exp(mark.mean), mark.sd, marker="*" if star else "o",
                       s=120 if star else 40, color="white", edgecolors="black", zorder=3)
            ax.annotate(mark.label, (math.exp(mark.mean), mark.sd), xytext=(5, 4),
                        textcoords="offset points", fontsize="small", zorder=4,
                        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "alpha": 0.7,
                              "lw": 0})
        ax.set_xscale("log")
        ax.set_yscale("log")
        ticks = [t for t in _RATIO_TICKS if x.min() * 0.999 <= t <= x.max() * 1.001]
        ax.set_xticks(ticks, [f"{t:.2g}" for t in ticks])
        ax.xaxis.set_minor_locator(NullLocator())
        sd_ticks = [t for t in _SD_TICKS if y.min() * 0.999 <= t <= y.max() * 1.001]
        ax.set_yticks(sd_ticks, [f"{t:g}" for t in sd_ticks])
        ax.yaxis.set_minor_locator(NullLocator())
        ax.set_xlabel(f"prior mean, as {r} (exp of the mean of d)")
        ax.set_ylabel(f"prior SD of d ({scale})")
        title = f"tau ~ {m.tau_prior}"
        if m.n_refitted:
            title += f" ({m.n_refitted} point{'s' if m.n_refitted > 1 else ''} refitted)"
        ax.set_title(title, fontsize="medium")
        if off:
            ax.text(0.01, 0.01, "off the map: " + "; ".join(off), transform=ax.transAxes,
                    fontsize="x-small", va="bottom")
    for ax in axes[n:]:
        ax.set_visible(False)
    if filled is not None:
        bar = fig.colorbar(filled, ax=axes[:n].tolist(), shrink=0.9)
        bar.set_label(f"P({d.benefit}) = P(benefit)" if d.declared else f"P({d.benefit})")
    fig.suptitle(f"Prior-space map: {d.p_name()} under effect priors N(mean, SD) on the "
                 f"{scale}")
    return fig


