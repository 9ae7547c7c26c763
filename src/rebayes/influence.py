"""Leave-one-trial-out influence: how much each trial moves the pooled answer.

The frequentist side recomputes RevMan's MH pooled RR without each trial. The Bayesian side
takes any function that turns a trial table into a summary (a refit on the compiled model),
so this module stays free of sampling code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pandas as pd

from rebayes.data import trial_totals
from rebayes.frequentist import Method, meta_analysis

__all__ = ["leave_one_out", "leave_one_out_frequentist"]


def leave_one_out_frequentist(
    trials: pd.DataFrame, method: Method = "MH", measure: str = "RR"
) -> pd.DataFrame:
    """Pooled estimate without each trial in turn (RevMan's sensitivity analysis).

    Parameters
    ----------
    trials : pandas.DataFrame
        A trial table; each trial's strata are summed first.
    method : {"MH", "IV", "DL"}
    measure : {"RR", "OR"}

    Returns
    -------
    pandas.DataFrame
        One row per left-out trial plus a first row ``(none)`` with all trials: ``left_out,
        estimate, ci_low, ci_high, p, i2, tau2, k``.
    """
    totals = trial_totals(trials)
    rows = []
    for left_out in ["(none)", *totals["study"]]:
        kept = totals[totals["study"] != left_out]
        res = meta_analysis(kept, method, measure)  # type: ignore[arg-type]
        rows.append(
            dict(left_out=left_out, estimate=res.estimate, ci_low=res.ci_low,
                 ci_high=res.ci_high, p=res.p, i2=res.i2, tau2=res.tau2, k=res.k)
        )
    return pd.DataFrame(rows)


def leave_one_out(
    trials: pd.DataFrame,
    summarise: Callable[[pd.DataFrame], Mapping[str, float]],
) -> pd.DataFrame:
    """Apply ``summarise`` to the table without each trial (all of its strata) in turn.

    Parameters
    ----------
    trials : pandas.DataFrame
    summarise : callable
        Table -> mapping of named numbers (e.g. a Bayesian refit returning the pooled RR
        median, P(benefit) and tau).

    Returns
    -------
    pandas.DataFrame
        ``left_out`` plus the summary's keys; the first row, ``(none)``, uses every trial.
    """
    rows = []
    for left_out in ["(none)", *dict.fromkeys(trials["study"])]:
        kept = trials[trials["study"] != left_out]
        kept.attrs = dict(trials.attrs)
        rows.append({"left_out": left_out, **summarise(kept)})
    return pd.DataFrame(rows)
