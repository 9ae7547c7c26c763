"""Per-study effects of 2x2 tables, as RevMan computes them (metafor's ``escalc``).

The risk ratio, odds ratio and risk difference with RevMan 5's zero-cell correction (0.5 added
to all four cells of a study with a zero cell; studies with no events in either arm, and for
the OR those with every participant an event in both, are not estimable), and Peto's O - E and
V. Pooling them is :mod:`rebayes.frequentist.pooling`'s concern; Deeks and Higgins,
*Statistical algorithms in Review Manager 5* (2010), is the reference for both.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from scipy.special import ndtri

from rebayes.data.trials import COUNT_COLUMNS
from rebayes.errors import AnalysisError

__all__ = ["EVENTS", "MEASURES", "Z95", "Event", "Measure", "study_effects", "z_quantile"]

MEASURES = ("RR", "OR", "RD", "PETO_OR")
EVENTS = ("events", "non_events")
Measure = Literal["RR", "OR", "RD", "PETO_OR"]
Event = Literal["events", "non_events"]

Z95 = 1.959964  # RevMan's 97.5% normal quantile


def z_quantile(ci_level: float = 0.95) -> float:
    """Return the normal quantile of a two-sided ``ci_level`` interval (1.959964 at 0.95)."""
    if not 0.5 <= ci_level < 1:
        raise AnalysisError(f"ci_level={ci_level!r} must be in [0.5, 1), e.g. 0.95")
    if abs(ci_level - 0.95) < 1e-12:
        return Z95
    return float(ndtri(0.5 + ci_level / 2))


def _counts(studies: pd.DataFrame, event: Event) -> pd.DataFrame:
    if event not in EVENTS:
        raise AnalysisError(f"unknown event direction {event!r} (use one of {', '.join(EVENTS)})")
    table = studies[["study", *COUNT_COLUMNS]].copy()
    if event == "non_events":
        # Counting the complement swaps events and non-events in both arms.
        table["events_treat"] = table["n_treat"] - table["events_treat"]
        table["events_control"] = table["n_control"] - table["events_control"]
    return table.reset_index(drop=True)


def study_effects(
    studies: pd.DataFrame,
    measure: Measure = "RR",
    event: Event = "events",
    ci_level: float = 0.95,
) -> pd.DataFrame:
    """Per-study effect and variance, as RevMan computes them for a forest plot.

    Parameters
    ----------
    studies : pandas.DataFrame
        Rows to treat as studies (one per trial, or per stratum in a stratum-split analysis).
        Use :func:`rebayes.trial_totals` first to get one row per trial.
    measure : {"RR", "OR", "RD", "PETO_OR"}
    event : {"events", "non_events"}
        Count the events column or its complement (RevMan's "swap events").
    ci_level : float
        Level of the per-study intervals.

    Returns
    -------
    pandas.DataFrame
        Columns ``study, events_treat, n_treat, events_control, n_control, a, b, c, d,
        corrected, estimable, yi, vi, effect, ci_low, ci_high``: ``a..d`` are the (possibly
        0.5-corrected) cells, ``yi`` the log RR/OR (the RD itself for the RD), ``vi`` its
        variance; ``estimable`` is False for the studies RevMan leaves out of pooling
        (``yi``/``vi`` are NaN there). For the Peto OR also ``o_minus_e`` and ``v``.

    Examples
    --------
    One trial, 16/23 vs 15/24: OR (16 x 9) / (7 x 15) = 1.37:

    >>> import pandas as pd
    >>> row = pd.DataFrame({"study": ["S"], "events_treat": [16], "n_treat": [23],
    ...                     "events_control": [15], "n_control": [24]})
    >>> round(float(np.exp(study_effects(row, "OR").yi[0])), 2)
    1.37
    """
    if measure not in MEASURES:
        raise AnalysisError(f"unknown measure {measure!r} (use one of {', '.join(MEASURES)})")
    table = _counts(studies, event)
    a0 = table["events_treat"].to_numpy(float)
    b0 = (table["n_treat"] - table["events_treat"]).to_numpy(float)
    c0 = table["events_control"].to_numpy(float)
    d0 = (table["n_control"] - table["events_control"]).to_numpy(float)
    no_events = (a0 == 0) & (c0 == 0)
    all_events = (b0 == 0) & (d0 == 0)
    extra: dict[str, np.ndarray] = {}
    if measure == "PETO_OR":
        # Peto: O - E and the hypergeometric variance V; no correction, V = 0 not estimable.
        n1, n2 = a0 + b0, c0 + d0
        n = n1 + n2
        with np.errstate(divide="ignore", invalid="ignore"):
            o_e = a0 - n1 * (a0 + c0) / n
            v = n1 * n2 * (a0 + c0) * (b0 + d0) / (n**2 * (n - 1))
            estimable = v > 0
            yi, vi = o_e / v, 1 / v
        corrected = np.zeros(len(table), bool)
        a, b, c, d = a0, b0, c0, d0
        extra = {"o_minus_e": o_e, "v": v}
    else:
        estimable = np.ones(len(table), bool)
        if measure in ("RR", "OR"):
            estimable &= ~no_events
        if measure == "OR":
            estimable &= ~all_events
        corrected = estimable & ((a0 == 0) | (b0 == 0) | (c0 == 0) | (d0 == 0))
        add = np.where(corrected, 0.5, 0.0)
        a, b, c, d = a0 + add, b0 + add, c0 + add, d0 + add
        with np.errstate(divide="ignore", invalid="ignore"):
            if measure == "RR":
                yi = np.log((a / (a + b)) / (c / (c + d)))
                vi = 1 / a - 1 / (a + b) + 1 / c - 1 / (c + d)
            elif measure == "OR":
                yi = np.log((a * d) / (b * c))
                vi = 1 / a + 1 / b + 1 / c + 1 / d
            else:
                # The RD from the raw cells; its variance from the corrected ones.
                yi = a0 / (a0 + b0) - c0 / (c0 + d0)
                vi = a * b / (a + b) ** 3 + c * d / (c + d) ** 3
    yi = np.where(estimable, yi, np.nan)
    vi = np.where(estimable, vi, np.nan)
    z = z_quantile(ci_level)
    back = (lambda x: x) if measure == "RD" else np.exp
    return table.assign(
        a=a, b=b, c=c, d=d,
        corrected=corrected,
        estimable=estimable,
        yi=yi,
        vi=vi,
        effect=back(yi),
        ci_low=back(yi - z * np.sqrt(vi)),
        ci_high=back(yi + z * np.sqrt(vi)),
        **extra,
    )
