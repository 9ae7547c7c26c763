"""Posterior predictive checks: per arm (weak here) and per trial (mixed predictive).

- :func:`ppc_table`: observed vs replicated event counts per row (trial or stratum) and arm.
  It is weak here: every row has its own baseline and every trial its own random effect,
  fitted to those very counts, so the replicated counts follow the observed ones almost
  whatever the model gets wrong.
- :func:`trial_ppc_table`: each trial's observed log OR (log RR for the normal model) against
  that of a *new* trial like it -- same arm sizes and baselines, a fresh random effect drawn
  from the fitted heterogeneity (Marshall EC, Spiegelhalter DJ. Identifying outliers in
  Bayesian hierarchical models: a simulation-based approach. Bayesian Analysis
  2007;2:409-444). A trial outside its interval is one whose effect the pooled effect and tau
  do not explain.
"""

from __future__ import annotations

import warnings

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr
from scipy import special

from rebayes.bayes.model import linear_predictor
from rebayes.checks.convergence import SAMPLE_DIMS, DiagnosticsError, without_extra_coords

__all__ = [
    "ppc_table",
    "trial_ppc_table",
]
# --- posterior predictive check --------------------------------------------------------------


def ppc_table(tree: xr.DataTree, prob: float = 0.95, inner_prob: float = 0.5) -> pd.DataFrame:
    """Observed vs replicated data per row and arm, from the ``posterior_predictive`` group.

    Parameters
    ----------
    tree : xarray.DataTree
    prob : float
        Mass of the equal-tailed replication interval.
    inner_prob : float
        Mass of the inner interval (``rep_low_inner``, ``rep_high_inner``), for plots.

    Returns
    -------
    pandas.DataFrame
        One row per analysed row (trial or stratum) and arm: ``row``, ``arm`` (``control`` /
        ``treat``; ``log_rr`` for the normal model), ``observed``, ``n`` (participants; NaN for
        log RRs), ``rep_median``, ``rep_low``, ``rep_high`` (replicated events, or log RR),
        ``p_rep_ge_obs`` = P(y_rep >= y_obs), and ``within`` (observed inside the interval).
    """
    for group in ("posterior_predictive", "observed_data"):
        if group not in tree.children:
            raise DiagnosticsError(f"the fit has no '{group}' group for a predictive check")
    observed = tree["observed_data"].to_dataset()
    replicated = tree["posterior_predictive"].to_dataset()
    name = "events" if "events" in observed else "log_rr"
    obs = without_extra_coords(observed[name])
    rep = without_extra_coords(replicated[name])
    interval = azs.eti(rep, prob=prob, dim=list(SAMPLE_DIMS))
    inner = azs.eti(rep, prob=inner_prob, dim=list(SAMPLE_DIMS))
    frame = xr.Dataset(
        {
            "observed": obs,
            "rep_median": rep.median(list(SAMPLE_DIMS)),
            "rep_low": interval.isel(ci_bound=0, drop=True),
            "rep_high": interval.isel(ci_bound=1, drop=True),
            "rep_low_inner": inner.isel(ci_bound=0, drop=True),
            "rep_high_inner": inner.isel(ci_bound=1, drop=True),
            "p_rep_ge_obs": (rep >= obs).mean(list(SAMPLE_DIMS)),
        }
    )
    if name == "events":
        frame["n"] = without_extra_coords(tree["constant_data"].to_dataset()["n"])
    out = frame.to_dataframe().reset_index()
    if "arm" not in out:
        out["arm"] = "log_rr"
    if "n" not in out:
        out["n"] = np.nan
    out["within"] = (out["observed"] >= out["rep_low"]) & (out["observed"] <= out["rep_high"])
    columns = [
        "row",
        "arm",
        "observed",
        "n",
        "rep_median",
        "rep_low",
        "rep_high",
        "rep_low_inner",
        "rep_high_inner",
        "p_rep_ge_obs",
        "within",
    ]
    return out[columns]


# Stream of the fit's seed for the trial-level check's new random effects and data (the fit
# uses 1-3, :mod:`rebayes.bayes.quantities` 4).
_TRIAL_PPC_STREAM = 5


def _log_or(events: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Log OR of each (..., arm) table, control arm first, as RevMan computes it.

    :func:`rebayes.frequentist.effects.study_effects` on the flattened tables: 0.5 added to
    every cell
    of a table with a zero cell; NaN where RevMan has no OR (no events, or only events, in
    both arms).
    """
    from rebayes.frequentist.effects import study_effects

    shape = events.shape[:-1]
    e, m = events.reshape(-1, 2), np.broadcast_to(n, events.shape).reshape(-1, 2)
    tables = pd.DataFrame({"study": np.arange(len(e)), "events_treat": e[:, 1],
                           "n_treat": m[:, 1], "events_control": e[:, 0],
                           "n_control": m[:, 0]})
    return study_effects(tables, "OR")["yi"].to_numpy(float).reshape(shape)


def _by_trial(values: np.ndarray, study_index: np.ndarray, n_studies: int) -> np.ndarray:
    """Sum the last-but-one (row) axis of ``values[..., row, arm]`` over each trial's rows."""
    out = np.zeros((*values.shape[:-2], n_studies, values.shape[-1]), dtype=values.dtype)
    for row, k in enumerate(study_index):
        out[..., k, :] += values[..., row, :]
    return out


def trial_ppc_table(
    tree: xr.DataTree, prob: float = 0.95, inner_prob: float = 0.5
) -> pd.DataFrame:
    """Trial-level mixed predictive check: observed vs a new similar trial's effect.

    Per posterior draw, each trial gets a fresh random effect ``z_new ~ N(0, 1)`` (so its
    effect is ``mu + tau * z_new``, not the one fitted to its own data), keeps its rows'
    baselines and arm sizes, and new data are drawn: binomial counts summed over the trial's
    rows, whose log OR is compared with the observed one (both with RevMan's 0.5 correction of
    a zero cell), or, for the normal model, log RRs ``N(theta_new, v)`` averaged over the
    trial's rows with inverse-variance weights as the observed ones are.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit (posterior, constant_data, observed_data).
    prob : float
        Mass of the equal-tailed replication interval.
    inner_prob : float
        Mass of the inner interval (``rep_low_inner``, ``rep_high_inner``), for plots.

    Returns
    -------
    pandas.DataFrame
        One row per trial: ``trial``, ``scale`` (``log OR`` or ``log RR``), ``observed``,
        ``rep_median``, ``rep_low``, ``rep_high``, ``rep_low_inner``, ``rep_high_inner``,
        ``p_value`` (two-sided mid-p:
        2 min(P(rep < obs) + P(rep = obs) / 2, its complement)) and ``within``. A trial with
        no OR (no events, or only events, in both arms) has NaN there and ``within`` True;
        replicated tables without an OR are left out of its distribution.
    """
    for group in ("posterior", "constant_data", "observed_data"):
        if group not in tree.children:
            raise DiagnosticsError(f"the fit has no '{group}' group for a predictive check")
    post = tree["posterior"].to_dataset()
    constant = tree["constant_data"].to_dataset()
    observed = tree["observed_data"].to_dataset()
    studies = [str(s) for s in post["z"]["study"].values]
    index = np.asarray(constant["study_index"].values, dtype=np.int64)
    rng = np.random.default_rng([int(tree.attrs.get("seed", 0)), _TRIAL_PPC_STREAM])
    fresh = post.assign(z=post["z"].copy(data=rng.standard_normal(post["z"].shape)))
    theta = linear_predictor(fresh, constant, random=True)  # (chain, draw, row)
    if "events" in observed:
        n = np.asarray(constant["n"].values, dtype=np.int64)
        logit_c = post["alpha"] - theta / 2
        logit_t = post["alpha"] + theta / 2
        p = special.expit(np.stack([logit_c.values, logit_t.values], axis=-1))
        events_rep = rng.binomial(np.broadcast_to(n, p.shape), p)
        rep = _log_or(_by_trial(events_rep, index, len(studies)),
                      _by_trial(n[None, None], index, len(studies)))
        obs = _log_or(_by_trial(np.asarray(observed["events"].values)[None], index, len(studies)),
                      _by_trial(n[None], index, len(studies)))[0]
        scale = "log OR"
    else:
        vi = np.asarray(constant["vi"].values, dtype=float)
        y_rep = rng.normal(theta.values, np.sqrt(vi))
        w = 1 / vi
        weights = np.zeros((len(studies), len(vi)))
        weights[index, np.arange(len(vi))] = w
        weights /= weights.sum(axis=1, keepdims=True)
        rep = y_rep @ weights.T
        obs = weights @ np.asarray(observed["log_rr"].values, dtype=float)
        scale = "log RR"
    flat = rep.reshape(-1, len(studies))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: not estimable
        low, median, high, low_inner, high_inner = np.nanquantile(
            flat,
            [(1 - prob) / 2, 0.5, (1 + prob) / 2, (1 - inner_prob) / 2, (1 + inner_prob) / 2],
            axis=0,
        )
        defined = np.isfinite(flat)
        below = ((flat < obs) & defined).sum(0) + 0.5 * ((flat == obs) & defined).sum(0)
        below = below / defined.sum(0)
    p_value = np.where(np.isfinite(obs), np.minimum(1.0, 2 * np.minimum(below, 1 - below)),
                       np.nan)
    return pd.DataFrame({
        "trial": studies,
        "scale": scale,
        "observed": obs,
        "rep_median": median,
        "rep_low": low,
        "rep_high": high,
        "rep_low_inner": low_inner,
        "rep_high_inner": high_inner,
        "p_value": p_value,
        "within": ~np.isfinite(obs) | ((obs >= low) & (obs <= high)),
    })


