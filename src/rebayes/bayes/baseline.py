"""The one control risk p0 an analysis states its risk ratios, risk differences and NNTs at.

A binomial meta-analysis pools log odds ratios; a risk ratio, a risk difference, a number
needed to treat and the events per 1000 of a summary-of-findings table all need a control
risk as well. rebayes uses one number per analysis for all of them, and says which:

- the **median observed control-arm risk of the analysed trials** (each trial's strata summed;
  rows of a repeated study name without declared strata are trials of their own), GRADE's
  usual "study population" baseline (Guyatt GH et al. GRADE guidelines: 12. J Clin Epidemiol
  2013;66:158-72);
- where the median trial saw no control event (or only events), the **pooled control risk**,
  all control events over all control participants, since a risk of 0 or 1 has no risk ratio;
- where even that is 0 or 1, the pooled risk with 0.5 added to the events and 1 to the
  participants (RevMan's continuity correction for a single arm), so that p0 is always a risk
  strictly between 0 and 1.

The number is fixed by the data, not estimated: per posterior draw the pooled risk ratio is
``expit(logit p0 + theta) / p0`` with ``theta`` the pooled log odds ratio, a monotone function of
``theta``, so every probability of the RR is a probability of ``theta``
(:mod:`rebayes.bayes.quantities`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = ["ControlRisk", "control_risk", "trial_control_risks"]

Source = Literal["median", "pooled", "corrected"]


@dataclass(frozen=True)
class ControlRisk:
    """The control risk p0 an analysis is stated at, and where it comes from.

    Attributes
    ----------
    value : float
        p0, strictly between 0 and 1.
    source : {"median", "pooled", "corrected"}
        The median trial's observed control risk; the pooled control risk (the median trial
        had a risk of 0 or 1); the pooled risk with 0.5 added (no control event, or only
        events, at all).
    n_trials : int
        Trials it is computed over.
    median : float
        The median trial's observed control risk (``value`` when ``source`` is "median").

    Examples
    --------
    >>> ControlRisk(0.535, "median", 10, 0.535).sentence()
    "at a control risk of 53.5%, the median of the 10 trials' control arms"
    """

    value: float
    source: Source = "median"
    n_trials: int = 0
    median: float = float("nan")

    @property
    def percent(self) -> str:
        """``"53.5%"``: p0 in percent with three significant digits."""
        return f"{100 * self.value:.3g}%"

    def describe(self) -> str:
        """Where p0 comes from: ``"the median of the 10 trials' control arms"``."""
        if self.source == "median":
            return f"the median of the {self.n_trials} trials' control arms"
        if self.source == "pooled":
            return (f"the pooled control risk of the {self.n_trials} trials (all control events "
                    f"over all control participants; the median trial's is {self.median:g})")
        return (f"the pooled control risk of the {self.n_trials} trials with 0.5 added to the "
                "events (the control arms have no events, or only events)")

    def sentence(self) -> str:
        """``"at a control risk of 53.5%, the median of the 10 trials' control arms"``."""
        return f"at a control risk of {self.percent}, {self.describe()}"

    def to_dict(self) -> dict[str, Any]:
        """``{value, source, n_trials, description}`` (JSON)."""
        return {"value": self.value, "source": self.source, "n_trials": self.n_trials,
                "median_trial": None if np.isnan(self.median) else self.median,
                "description": self.sentence()}


def _per_trial(values: Any, trial: Any) -> np.ndarray:
    """Sum ``values`` per trial, trials in order of first appearance."""
    values = np.asarray(values, dtype=float).ravel()
    _, first, index = np.unique(np.asarray(trial).ravel(), return_index=True,
                                return_inverse=True)
    sums = np.bincount(index.ravel(), weights=values)
    return sums[np.argsort(first)]  # type: ignore[no-any-return]


def trial_control_risks(events_control: Any, n_control: Any, trial: Any = None) -> np.ndarray:
    """Observed control-arm risk of each trial (its rows summed), in order of appearance.

    Parameters
    ----------
    events_control, n_control : array-like
        Control-arm events and participants per row.
    trial : array-like, optional
        The trial each row belongs to (any labels; default: every row a trial). Trials with no
        control participants are left out.

    Returns
    -------
    numpy.ndarray

    Examples
    --------
    >>> trial_control_risks([1, 3, 2], [10, 10, 40], ["a", "a", "b"])
    array([0.2 , 0.05])
    """
    events = np.asarray(events_control, dtype=float).ravel()
    n = np.asarray(n_control, dtype=float).ravel()
    if trial is not None:
        events, n = _per_trial(events, trial), _per_trial(n, trial)
    keep = n > 0
    return events[keep] / n[keep]  # type: ignore[no-any-return]


def control_risk(events_control: Any, n_control: Any, trial: Any = None) -> ControlRisk:
    """Return the control risk p0 of the analysed rows (see the module docstring).

    Parameters
    ----------
    events_control, n_control : array-like
        Control-arm events and participants per row.
    trial : array-like, optional
        The trial of each row (default: every row a trial).

    Returns
    -------
    ControlRisk

    Examples
    --------
    >>> control_risk([2, 5, 9], [10, 10, 10]).value
    0.5
    >>> control_risk([0, 0, 1], [10, 10, 10]).source
    'pooled'
    """
    risks = trial_control_risks(events_control, n_control, trial)
    n_trials = int(risks.size)
    median = float(np.median(risks)) if n_trials else np.nan
    if 0 < median < 1:
        return ControlRisk(median, "median", n_trials, median)
    events = float(np.sum(np.asarray(events_control, dtype=float)))
    n = float(np.sum(np.asarray(n_control, dtype=float)))
    if n > 0 and 0 < events < n:
        return ControlRisk(events / n, "pooled", n_trials, median)
    return ControlRisk((events + 0.5) / (n + 1.0), "corrected", n_trials, median)
