"""Monte Carlo error where it decides: a probability *at the line*.

A posterior probability is the mean of an indicator over the draws, so it carries Monte Carlo
error, its MCSE (arviz-stats' ``mcse`` of the mean: sd / sqrt(ESS), the chains'
autocorrelation accounted for). When a probability lies within two MCSEs of the line a
conclusion is read against (0.95 for P(benefit) and P(harm), 0.5 for P(benefit beyond RR
1.1), 0.8 for a planned trial's power), another run of the sampler could put it on either
side: it is *at the line*, and every output says so (:func:`with_line`) instead of printing
a plain verdict. This module is the one home of that rule and its wording.

:func:`resampled_mean_mcse` gives the MCSE of a probability estimated by simulating from
posterior draws drawn with replacement (the planning tool's): it includes the posterior
draws' own Monte Carlo error, not only the binomial error of the simulations.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "LINE_MCSES",
    "MARK",
    "at_the_line",
    "line_note",
    "marked",
    "probability_mcse",
    "resampled_mean_mcse",
    "with_line",
]

#: A probability closer to its line than this many MCSEs is at the line.
LINE_MCSES = 2


def at_the_line(p: float, mcse: float, threshold: float) -> bool:
    """Whether ``p`` lies within two Monte Carlo standard errors of ``threshold``.

    False when ``p`` or ``mcse`` is not finite (no MCSE known: nothing to flag).

    Examples
    --------
    >>> at_the_line(0.946, 0.003, 0.95), at_the_line(0.93, 0.004, 0.95)
    (True, False)
    """
    if not (math.isfinite(p) and math.isfinite(mcse)):
        return False
    return abs(p - threshold) < LINE_MCSES * mcse


def line_note(threshold: float) -> str:
    """Return the one wording: ``"at the line: within 2 MCSE of 0.95"``."""
    return f"at the line: within {LINE_MCSES} MCSE of {threshold:g}"


def with_line(p: float, mcse: float, threshold: float, digits: int = 3) -> str:
    """Print a probability, with :func:`line_note` when it is at the line.

    Examples
    --------
    >>> with_line(0.946, 0.003, 0.95)
    '0.946 (at the line: within 2 MCSE of 0.95)'
    >>> with_line(0.93, 0.004, 0.95, digits=2)
    '0.93'
    """
    text = f"{p:.{digits}f}"
    return f"{text} ({line_note(threshold)})" if at_the_line(p, mcse, threshold) else text


#: The short mark a table cell at the line carries (its legend: :func:`line_note`).
MARK = "≈"


def marked(p: float, mcse: float, threshold: float, digits: int = 3) -> str:
    """Print a probability for a table: ``"0.946 ≈"`` when it is at the line.

    Examples
    --------
    >>> marked(0.946, 0.003, 0.95), marked(0.93, 0.004, 0.95)
    ('0.946 ≈', '0.930')
    """
    text = f"{p:.{digits}f}"
    return f"{text} {MARK}" if at_the_line(p, mcse, threshold) else text


def probability_mcse(indicator: np.ndarray) -> float:
    """MCSE of a probability from its indicator per draw, shaped ``(chain, draw)``.

    sd / sqrt(ESS of the mean) (arviz-stats); 0 when the indicator is constant (every draw
    agrees: no draw of this run falls on the other side).
    """
    values = np.asarray(indicator, dtype=float)
    if values.ndim == 1:
        values = values[np.newaxis, :]
    if values.size and np.ptp(values) == 0:
        return 0.0
    from arviz_stats.base import array_stats  # loaded with the draws, not by the exact engine

    return float(array_stats.mcse(values, method="mean"))


def resampled_mean_mcse(indicator: np.ndarray, picks: np.ndarray, n_draws: int,
                        chains: int = 1) -> float:
    """MCSE of the mean of ``indicator``, each value simulated from posterior draw ``picks[i]``.

    The estimate ``p = mean(indicator)`` has two sources of Monte Carlo error: the
    simulations' own (binomial, p(1 - p) / n_sim) and the posterior draws' (a finite,
    autocorrelated sample of the posterior). Both are counted by grouping the simulations by
    the draw they came from: per draw s, the count ``c_s`` of simulations and the sum
    ``h_s`` of their indicators, and the residual ``r_s = h_s - p c_s`` in the draws' own
    chain order. ``p`` is the ratio estimator ``sum h / sum c``, whose variance is
    ``Var(mean r) / (n_sim / n_draws)^2`` (delta method); ``Var(mean r)`` is arviz-stats'
    MCSE of the mean of ``r`` squared (sd / sqrt(ESS), the chains' autocorrelation
    accounted for). In expectation this is ``p (1 - p) / n_sim + Var(g) / ESS(g)``, with
    ``g`` the probability given one posterior draw.

    Parameters
    ----------
    indicator : array
        One value in [0, 1] per simulation.
    picks : array of int
        Per simulation, the index of its posterior draw among ``n_draws``, chain-major
        (draw ``j`` of chain ``c`` is ``c * n_draws / chains + j``).
    n_draws : int
        Posterior draws in all.
    chains : int
        Chains the draws come from (equal lengths).

    Returns
    -------
    float
        The MCSE; NaN when the chains are too short for an ESS (fewer than 4 draws each).
    """
    values = np.asarray(indicator, dtype=float).ravel()
    picks = np.asarray(picks).ravel()
    counts = np.bincount(picks, minlength=n_draws).astype(float)
    sums = np.bincount(picks, weights=values, minlength=n_draws)
    p = float(sums.sum() / counts.sum())
    residual = (sums - p * counts).reshape(chains, -1)
    per_draw = values.size / n_draws
    return probability_mcse(residual) / per_draw
