"""The contour-enhanced funnel plot, with trim-and-fill's imputed studies.

Each study is drawn at its ratio (log axis) against its standard error (inverted, most
precise at the top), over shaded regions of statistical significance of the study's own two-
sided test against no effect: p < 0.01, 0.01-0.05 and 0.05-0.10 (Peters et al. 2008). Missing
studies that would fall in the non-significant (white) region point towards publication bias;
asymmetry that lies inside the significant regions points elsewhere (heterogeneity, study
quality, chance). The pooled random-effects ratio is drawn with its pseudo 95% confidence
funnel, trim-and-fill's imputed studies as open circles and its adjusted ratio as a dashed
line (Duval & Tweedie 2000), as metafor's ``funnel(trimfill(...), level=c(90, 95, 99),
shade=...)`` draws them.

References
----------
Peters JL, Sutton AJ, Jones DR, Abrams KR, Rushton L. Contour-enhanced meta-analysis funnel
plots help distinguish publication bias from other causes of asymmetry. J Clin Epidemiol
2008;61:991-6.
Sterne JAC, Egger M. Funnel plots for detecting bias in meta-analysis: guidelines on choice of
axis. J Clin Epidemiol 2001;54:1046-55.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from scipy.special import ndtri

if TYPE_CHECKING:
    import pandas as pd

    from rebayes.data.direction import Direction

__all__ = ["funnel_plot"]

# Two-sided significance levels of the contours and their shades (darker: more significant).
CONTOURS = ((0.10, "#f0f0f0", "0.05 < p < 0.10"), (0.05, "#c8c8c8", "0.01 < p < 0.05"),
            (0.01, "#969696", "p < 0.01"))
OBSERVED = "#1f4e79"
FILLED = "#b03a2e"


def funnel_plot(
    studies: pd.DataFrame,
    pooled: float,
    measure: str,
    direction: Direction,
    dataset: str,
    filled: pd.DataFrame | None = None,
    adjusted: float | None = None,
) -> Figure:
    """Draw the contour-enhanced funnel plot of a bias analysis.

    Parameters
    ----------
    studies : pandas.DataFrame
        One row per study: ``yi`` (log ratio) and ``se``
        (:attr:`rebayes.tools.bias.BiasAnalysis.studies`).
    pooled : float
        The unadjusted random-effects (DL) ratio.
    measure : str
        ``"RR"`` or ``"OR"``.
    direction : Direction
    dataset : str
        Named in the title.
    filled : pandas.DataFrame, optional
        Trim-and-fill's imputed studies, ``yi`` and ``se``.
    adjusted : float, optional
        Trim-and-fill's pooled log ratio (drawn when it imputed a study).

    Returns
    -------
    matplotlib.figure.Figure
    """
    yi, se = studies["yi"].to_numpy(), studies["se"].to_numpy()
    filled_y = filled["yi"].to_numpy() if filled is not None else np.empty(0)
    filled_se = filled["se"].to_numpy() if filled is not None else np.empty(0)
    se_max = 1.08 * float(np.max(np.concatenate([se, filled_se])))
    centre = float(np.log(pooled))
    spread = np.abs(np.concatenate([yi, filled_y, [centre]])).max()
    z95 = float(ndtri(0.975))
    reach = max(spread, abs(centre) + z95 * se_max) * 1.05

    fig = Figure(figsize=(7, 5.2))
    ax = fig.add_subplot()
    grid = np.linspace(0, se_max, 200)
    ax.fill_betweenx(grid, -reach, reach, color="#ffffff")
    for level, colour, label in CONTOURS:
        # Each darker region is drawn over the lighter one it lies in.
        z = float(ndtri(1 - level / 2))
        ax.fill_betweenx(grid, z * grid, reach, color=colour, lw=0, label=label)
        ax.fill_betweenx(grid, -reach, -z * grid, color=colour, lw=0)
    # Pseudo 95% confidence funnel about the pooled estimate.
    ax.plot(centre - z95 * grid, grid, color="black", lw=0.7, ls=":")
    ax.plot(centre + z95 * grid, grid, color="black", lw=0.7, ls=":")
    ax.axvline(centre, color="black", lw=1.0,
               label=f"random effects (DL) {measure} {np.exp(centre):.2f}")
    ax.axvline(0.0, color="grey", lw=0.6)
    ax.scatter(yi, se, s=28, color=OBSERVED, zorder=3, label=f"studies ({len(yi)})")
    if len(filled_y) and adjusted is not None:
        ax.scatter(filled_y, filled_se, s=28, facecolors="white", edgecolors=FILLED, zorder=3,
                   label=f"imputed by trim-and-fill ({len(filled_y)})")
        ax.axvline(adjusted, color=FILLED, lw=1.0, ls="--",
                   label=f"trim-and-fill {measure} {np.exp(adjusted):.2f}")
    ax.set_ylim(se_max, 0)
    ax.set_xlim(-reach, reach)
    candidates = ((0.33, 0.5, 0.67, 0.8, 1, 1.25, 1.5, 2, 3) if reach < 1.2 else
                  (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100))
    ticks = [t for t in candidates if abs(np.log(t)) <= reach]
    ax.set_xticks(np.log(ticks), [f"{t:g}" for t in ticks])
    left, right = direction.favours
    ax.set_xlabel(f"{measure} (log scale)   <- {left} | {right} ->"
                  if direction.declared else f"{measure} (log scale)")
    ax.set_ylabel(f"standard error of the log {measure}")
    ax.legend(loc="best", fontsize="x-small", framealpha=0.9)
    ax.set_title(f"Contour-enhanced funnel plot: {dataset}", fontsize=10)
    fig.tight_layout()
    return fig
