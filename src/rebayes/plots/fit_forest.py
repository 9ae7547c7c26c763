"""The forest plot of a Bayesian fit: observed and shrunken RRs per trial, pooled and predictive.

Reads the fit's rows and record (:class:`~rebayes.bayes.records.FitSummary`, not the fit) and
RevMan's per-study effects (:mod:`rebayes.frequentist.pooling`) and draws them with
:func:`rebayes.plots.forest.forest_plot`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from rebayes.frequentist.effects import Z95, study_effects
from rebayes.frequentist.pooling import meta_analysis
from rebayes.plots.forest import SummaryRow, forest_plot

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from rebayes.bayes.records import Estimate, FitSummary

__all__ = ["fit_forest"]


def fit_forest(rows: pd.DataFrame, s: FitSummary, title: str = "",
               trial_rrs: Mapping[str, Estimate] | None = None) -> Figure:
    """Forest plot of one fit: observed RR per analysed row, shrunken RR, pooled rows.

    Parameters
    ----------
    rows : pandas.DataFrame
        The analysed rows (:meth:`rebayes.bayes.design.Design.table`).
    s : FitSummary
        The fit's record (:meth:`rebayes.bayes.fit.Fit.summary`), with its trials' effects.
    title : str
    trial_rrs : mapping of str to Estimate, optional
        Each row's shrunken RR at its own baseline, where the record's trials are odds ratios
        (the exact engine's record: the caller reads them from the fit's draws).

    Returns
    -------
    matplotlib.figure.Figure
        Observed RR and 95% CI per analysed row (RevMan's, with its zero-cell correction) and
        the shrunken posterior RR below it; the pooled posterior RR, the predictive RR of a
        new trial and RevMan's MH fixed-effect RR for reference; subgroups under their
        posterior subtotal, as RevMan draws them.
    """
    observed = study_effects(rows.assign(study=rows["row"]))
    post = dict(trial_rrs) if trial_rrs is not None else {t.row: t.rr for t in s.trials}
    frame = pd.DataFrame(
        {
            "label": rows["row"],
            "events_treat": rows["events_treat"],
            "n_treat": rows["n_treat"],
            "events_control": rows["events_control"],
            "n_control": rows["n_control"],
        }
    )
    se = np.sqrt(observed["vi"].to_numpy())
    frame["rr"] = np.exp(observed["yi"].to_numpy())
    frame["rr_low"] = np.exp(observed["yi"].to_numpy() - Z95 * se)
    frame["rr_high"] = np.exp(observed["yi"].to_numpy() + Z95 * se)
    frame["post_rr"] = [post[r].median for r in rows["row"]]
    frame["post_low"] = [post[r].ci_low for r in rows["row"]]
    frame["post_high"] = [post[r].ci_high for r in rows["row"]]
    mh = meta_analysis(rows.assign(study=rows["row"]), measure="RR", method="MH")
    d = s.direction
    summaries = [
        SummaryRow(f"{s.pooled_kind.capitalize()} RR (posterior)", s.pooled_rr.median,
                   s.pooled_rr.ci_low,
                   s.pooled_rr.ci_high, "diamond",
                   f"{_fmt_est(s.pooled_rr)}  P({d.benefit}) {s.p_benefit:.2f}"),
        SummaryRow("Predictive RR, new trial" + (" (row average)" if s.pooled_kind != "pooled"
                                                 else ""),
                   s.predictive_rr.median, s.predictive_rr.ci_low,
                   s.predictive_rr.ci_high, "interval"),
        SummaryRow("RevMan MH, fixed (for reference)", mh.estimate, mh.ci_low, mh.ci_high,
                   "interval"),
    ]
    # Subgroups: each trial under its subgroup, with the subgroup's posterior RR as its
    # subtotal, as RevMan draws subgroups.
    subtotals = {
        g.name: SummaryRow(f"Subtotal: {g.name.replace('_', ' ')}", g.rr.median, g.rr.ci_low,
                           g.rr.ci_high, "diamond",
                           f"{_fmt_est(g.rr)}  P({d.benefit}) {g.p_benefit:.2f}")
        for g in s.subgroups
    }
    if subtotals:
        frame["group"] = list(rows["subgroup"])
    return forest_plot(
        frame,
        summaries,
        title=title,
        direction=d,
        subtotals=subtotals or None,
    )


def _fmt_est(est: Estimate) -> str:
    return f"{est.median:.2f} ({est.ci_low:.2f} to {est.ci_high:.2f})"
