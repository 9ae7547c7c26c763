"""Figure of a paper's audit: how many reported figures each verdict holds.

Takes the counts (``{verdict: number}``), not the audit, and returns a matplotlib Figure built
without pyplot (no global state is touched; save it with ``fig.savefig``).
"""

from __future__ import annotations

from collections.abc import Mapping

from matplotlib.figure import Figure

__all__ = ["verdict_plot"]

# Reproduced reads as settled, differs as a warning, not recomputable as neither.
_COLOURS = {"reproduced": "#1f4e79", "differs": "#b03a2e", "not_recomputable": "grey"}


def verdict_plot(counts: Mapping[str, int], title: str = "") -> Figure:
    """Draw one horizontal bar per verdict: how many of the reported figures hold it.

    Parameters
    ----------
    counts : mapping of str to int
        Figures per verdict (:attr:`rebayes.audit.paper.Audit.counts`), in display order.
    title : str

    Returns
    -------
    matplotlib.figure.Figure
    """
    fig = Figure(figsize=(6, 0.5 * len(counts) + 1.4))
    ax = fig.add_subplot()
    names = list(counts)[::-1]
    values = [counts[n] for n in names]
    bars = ax.barh([n.replace("_", " ") for n in names], values,
                   color=[_COLOURS.get(n, "grey") for n in names])
    ax.bar_label(bars, padding=3)
    ax.set_xlabel("reported figures")
    ax.set_xlim(0, max([*values, 1]) * 1.15)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
