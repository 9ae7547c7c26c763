"""The report's headline figure: the decision probabilities of every analysis at a glance.

:func:`decision_heatmap` draws P(benefit) and P(benefit beyond RR 1.1) for every analysis (a
meta-regression: every subgroup) under every prior and data variant, from the table of
:func:`rebayes.sensitivity.conclusions.decision_table`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from rebayes.bayes.mcse import at_the_line, line_note

if TYPE_CHECKING:
    from rebayes.data.direction import Direction

__all__ = ["decision_heatmap"]

#: Probability above which a conclusion is usually drawn; such cells get a frame.
DECISION = 0.95


def decision_heatmap(
    table: pd.DataFrame,
    direction: Direction,
    panels: Sequence[str] = ("p_benefit", "p_beyond"),
) -> Figure:
    """Heat maps of P(benefit) and P(benefit beyond RR 1.1): analyses x (variant, prior).

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`rebayes.sensitivity.conclusions.decision_table`: ``label``, ``variant``, ``prior``,
        ``p_benefit``, ``p_beyond`` (one row per analysis or subgroup, prior and variant).
    direction : Direction
        Names what benefit is (``RR > 1`` or ``RR < 1``).
    panels : sequence of {"p_benefit", "p_beyond"}
        The panels to draw (a panel whose every cell is one value says nothing a sentence
        does not: :func:`rebayes.report.overview.uniform_panels`).

    Returns
    -------
    matplotlib.figure.Figure
        One panel per entry of ``panels`` (two by default), one above the other; rows are
        analyses in report order, columns the priors grouped by data variant. Each cell
        prints its probability; cells at or above 0.95 are framed, and cells at the line
        (within 2 MCSE of 0.95, from the table's ``<panel>_mcse`` columns:
        :mod:`rebayes.bayes.mcse`) get a dashed orange frame instead, on either side of 0.95. A
        missing cell (a variant an analysis was not fitted on) is blank.
    """
    labels = list(dict.fromkeys(table["label"]))
    columns = list(dict.fromkeys(zip(table["variant"], table["prior"], strict=True)))
    variants = list(dict.fromkeys(v for v, _ in columns))
    first = (f"P(benefit: {direction.benefit})" if direction.declared
             else f"P({direction.benefit})")
    titles = {"p_benefit": first, "p_beyond": f"P({direction.beyond(1.1)})"}
    shown = [(column, titles[column]) for column in panels]
    width = 3.6 + 0.62 * len(columns)
    height = len(shown) * (0.36 * len(labels) + 0.9) + 1.0
    fig, axes = plt.subplots(len(shown), 1, figsize=(width, height), squeeze=False)
    indexed = table.set_index(["label", "variant", "prior"])
    for ax, (column, title) in zip(axes[:, 0], shown, strict=True):
        values = np.full((len(labels), len(columns)), np.nan)
        mcses = np.full_like(values, np.nan)
        for i, label in enumerate(labels):
            for j, key in enumerate(columns):
                if (label, *key) in indexed.index:
                    values[i, j] = float(indexed.loc[(label, *key), column])
                    if f"{column}_mcse" in indexed.columns:
                        mcses[i, j] = float(indexed.loc[(label, *key), f"{column}_mcse"])
        ax.imshow(values, cmap="RdBu", vmin=0.0, vmax=1.0, aspect="auto")
        for i in range(len(labels)):
            for j in range(len(columns)):
                v = values[i, j]
                if np.isnan(v):
                    continue
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7.5,
                        color="white" if abs(v - 0.5) > 0.3 else "black")
                if at_the_line(v, mcses[i, j], DECISION):
                    # Orange, not black: a dashed black frame vanishes on the dark cells.
                    ax.add_patch(Rectangle((j - 0.45, i - 0.45), 0.9, 0.9, fill=False, lw=1.8,
                                           ec="darkorange", ls="--"))
                elif v >= DECISION:
                    ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, lw=1.4,
                                           ec="black"))
        ax.set_yticks(range(len(labels)), labels, fontsize=8.5)
        ax.set_xticks(range(len(columns)), [p.replace("_", " ") for _, p in columns],
                      rotation=40, ha="right", fontsize=8)
        # Variant groups: a line between them and the variant's name on top.
        start = 0
        for variant in variants:
            count = sum(1 for v, _ in columns if v == variant)
            if start:
                ax.axvline(start - 0.5, color="black", lw=1.5)
            ax.text(start + count / 2 - 0.5, -0.7, f"{variant} data", ha="center", va="bottom",
                    fontsize=8.5, style="italic")
            start += count
        ax.set_title(title, fontsize=10, pad=18)
        ax.tick_params(length=0)
    fig.suptitle(f"Every analysis x prior x data variant\n(framed: ≥ {DECISION}; dashed orange: "
                 f"{line_note(DECISION)})", fontsize=9.5)
    fig.tight_layout()
    return fig
