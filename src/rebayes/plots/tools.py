"""Figures of the decision tools: absolute effects, cumulative meta-analysis, credibility, planning.

Each function takes a result's table (its ``to_dataframe()``) and the labels it needs, never
the result itself, and returns a matplotlib Figure built without pyplot (no global state is
touched; save it with ``fig.savefig``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from rebayes.data.direction import Direction

__all__ = [
    "absolute_plot",
    "credibility_plot",
    "cumulative_plot",
    "plan_plot",
]

BAYES = "#1f4e79"
FREQ = "#b03a2e"

def absolute_plot(frame: pd.DataFrame, direction: Direction) -> Figure:
    """Events per 1000: assumed control risk and treated risk (95% CrI), one row per risk.

    ``frame``: :meth:`rebayes.tools.absolute.AbsoluteEffects.to_dataframe`.
    """
    fig = Figure(figsize=(7, 0.6 * len(frame) + 1.6))
    ax = fig.add_subplot()
    y = np.arange(len(frame))[::-1]
    ax.scatter(frame["control_per_1000"], y, marker="s", color="grey",
               label=direction.control)
    ax.errorbar(
        frame["treatment_per_1000"], y,
        xerr=[frame["treatment_per_1000"] - frame["treatment_low"],
              frame["treatment_high"] - frame["treatment_per_1000"]],
        fmt="o", color=BAYES, capsize=3, label=f"{direction.treatment} (95% CrI)",
    )
    ax.set_yticks(y, [f"{r:.3f} ({lab})" for r, lab in zip(frame["control_risk"],
                                                             frame["label"], strict=True)])
    ax.set_xlabel(f"{direction.outcome} per 1000")
    ax.set_ylabel("control risk")
    ax.legend(loc="best", fontsize="small")
    ax.set_title("Absolute effects")
    fig.tight_layout()
    return fig


_TICKS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 5.0, 10.0, 20.0)


def _log_axis(ax: Any) -> None:
    """Log ratio axis with plain tick labels and a line at no effect."""
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", lw=0.8)
    lo, hi = ax.get_xlim()
    ticks = [t for t in _TICKS if lo <= t <= hi] or [1.0]
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()


def cumulative_plot(
    frame: pd.DataFrame, direction: Direction, order_by: str, measure: str,
    measure_label: str, frequentist_label: str,
) -> Figure:
    """Pooled RR after each trial (Bayesian 95% CrI and RevMan's 95% CI) and P(benefit).

    ``frame``: :meth:`rebayes.tools.cumulative.CumulativeAnalysis.to_dataframe`; the other
    arguments are its attributes. A ratio measure shares the Bayesian RR's log axis; a risk
    difference gets its own panel (linear, centred on 0).
    """
    difference = measure == "RD"
    width = [3, 2, 1] if difference else [3, 1]
    fig = Figure(figsize=(11 if difference else 9, 0.35 * len(frame) + 1.8))
    axes = fig.subplots(1, len(width), sharey=True, gridspec_kw={"width_ratios": width})
    ax, axp = axes[0], axes[-1]
    axf = axes[1] if difference else ax
    y = np.arange(len(frame))[::-1].astype(float)
    shift = 0.0 if difference else 0.12
    ax.errorbar(frame["rr_median"], y + shift,
                xerr=[frame["rr_median"] - frame["rr_low"], frame["rr_high"] - frame["rr_median"]],
                fmt="o", color=BAYES, capsize=2, label="Bayesian RR (95% CrI)")
    axf.errorbar(frame["freq_estimate"], y - shift,
                 xerr=[frame["freq_estimate"] - frame["freq_low"],
                       frame["freq_high"] - frame["freq_estimate"]],
                 fmt="s", color=FREQ, capsize=2,
                 label=f"RevMan {frequentist_label} {measure_label} (95% CI)")
    _log_axis(ax)
    left, right = direction.favours
    ratio = ("pooled RR" if difference or measure == "RR"
             else f"pooled RR (Bayesian), {measure_label} (RevMan)")
    ax.set_xlabel(f"{ratio}   <- {left} | {right} ->")
    if difference:
        axf.axvline(0.0, color="black", lw=0.8)
        axf.set_xlabel("risk difference (treated - control)")
        for a in (ax, axf):
            a.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), fontsize="small",
                     frameon=False)
    else:
        ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, fontsize="small",
                  frameon=False)
    # A repeated name already carries its year ("Shechter (1991)").
    ax.set_yticks(y, [f"+ {s}" if s.endswith(f"({o})") else f"+ {s} ({o})"
                      for s, o in zip(frame["added"], frame["order_value"], strict=True)])
    axp.plot(frame["p_benefit"], y, "o-", color=BAYES)
    axp.axvline(0.95, color="grey", ls=":", lw=0.8)
    axp.set_xlim(0, 1)
    axp.set_xlabel(f"P({direction.benefit})")
    fig.suptitle(f"Cumulative meta-analysis by {order_by}")
    fig.tight_layout()
    return fig


def credibility_plot(frame: pd.DataFrame, direction: Direction, plausible: float) -> Figure:
    """Each interval with its sceptical (or advocacy) prior interval on the ratio scale.

    ``frame``: :meth:`rebayes.tools.credibility.Credibility.to_dataframe` (a limit that
    does not apply is missing). Limits beyond any plausible ratio (``plausible``: the
    caller's :data:`rebayes.tools.credibility.PLAUSIBLE_RATIO`) are drawn to the axis's edge,
    not to absurd values.
    """
    rows = [r._replace(sceptical_limit=_given(r.sceptical_limit),
                       advocacy_limit=_given(r.advocacy_limit))
            for r in frame.itertuples(index=False)]
    fig = Figure(figsize=(7, 0.9 * len(rows) + 1.6))
    ax = fig.add_subplot()
    for i, r in enumerate(rows[::-1]):
        ax.errorbar([r.estimate], [i + 0.15], xerr=[[r.estimate - r.ci_low],
                                                     [r.ci_high - r.estimate]],
                    fmt="o", color=BAYES if r.source == "bayesian" else FREQ, capsize=3)
        edge = plausible  # a limit beyond it is drawn to it, with an arrow
        if r.sceptical_limit is not None:
            sl = min(r.sceptical_limit, edge)
            ax.plot([1 / sl, sl], [i - 0.15] * 2, color="grey", lw=4, alpha=0.6,
                    label="sceptical prior 95%")
        if r.advocacy_limit is not None:
            al = min(max(r.advocacy_limit, 1 / edge), edge)
            lo, hi = sorted((1.0, al))
            ax.plot([lo, hi], [i - 0.15] * 2, color="tab:green", lw=4, alpha=0.6,
                    label="advocacy prior 95%")
            if al != r.advocacy_limit:
                ax.annotate("beyond any plausible ratio", (al, i - 0.15), fontsize=8,
                            ha="right" if al > 1 else "left", va="bottom")
    ax.set_yticks(range(len(rows)), [r.label for r in rows[::-1]])
    _log_axis(ax)
    left, right = direction.favours
    measure = "odds ratio" if rows[0].measure == "OR" else "risk ratio"
    ax.set_xlabel(f"{measure}   <- {left} | {right} ->")
    ax.set_ylim(-0.6, len(rows) - 0.4)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    if unique:
        ax.legend(unique.values(), unique.keys(), loc="best", fontsize="small")
    ax.set_title("Analysis of credibility (reverse-Bayes)")
    fig.tight_layout()
    return fig


def _given(value: Any) -> float | None:
    """Return a table's missing limit (None or NaN) as None."""
    return None if value is None or pd.isna(value) else float(value)


def plan_plot(frame: pd.DataFrame, direction: Direction, threshold: float) -> Figure:
    """Probability of each outcome of the next trial against its size per arm.

    ``frame``: :meth:`rebayes.tools.planning.TrialPlan.to_dataframe`; ``threshold``: its
    futility ratio.
    """
    fig = Figure(figsize=(7, 4.2))
    ax = fig.add_subplot()
    d = direction
    side = "benefit's direction" if d.declared else f"the direction {d.benefit}"
    labels = {
        "p_conclusive": "meta-analysis conclusive either way",
        "p_conclusive_benefit": f"... with {d.p_name()} > 0.95",
        "p_conclusive_harm": f"... with {d.harm_name()} > 0.95",
        "p_significant_benefit": f"new trial significant, in {side}",
        "p_significant": "new trial significant (two-sided 5%)",
        "p_futile": f"meta-analysis rules out {d.beyond(threshold)}",
    }
    for key, label in labels.items():
        ax.plot(frame["n_per_arm"], frame[key], "o-", label=label)
    ax.axhline(0.8, color="grey", ls=":", lw=0.8)
    ax.set_xscale("log")
    ax.set_xticks(frame["n_per_arm"], [str(n) for n in frame["n_per_arm"]])
    ax.minorticks_off()
    ax.set_ylim(0, 1)
    ax.set_xlabel("new trial: participants per arm")
    ax.set_ylabel("probability")
    ax.legend(loc="best", fontsize="small")
    ax.set_title("The next trial (posterior predictive simulation)")
    fig.tight_layout()
    return fig
