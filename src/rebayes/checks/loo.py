"""PSIS-LOO with one trial as one observation, and the comparison of analyses by it.

:func:`loo_by_trial` sums the pointwise log likelihood over a trial's arms and strata (its
baselines integrated out), so that a trial is one observation; Pareto k per trial, flagged
above 0.7. :func:`loo_compare` compares analyses fitted to the same rows.

References
----------
Vehtari A, Gelman A, Gabry J. Practical Bayesian model evaluation using leave-one-out
cross-validation and WAIC. Stat Comput. 2017;27:1413-1432. doi:10.1007/s11222-016-9696-4.
Vehtari A, Simpson D, Gelman A, Yao Y, Gabry J. Pareto smoothed importance sampling.
JMLR. 2024;25(72):1-58.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr
from scipy import special, stats

from rebayes import tables
from rebayes.bayes.model import linear_predictor
from rebayes.bayes.priors import Normal, PriorSet
from rebayes.bayes.quantities import per_tree
from rebayes.checks.convergence import SAMPLE_DIMS, DiagnosticsError
from rebayes.checks.gates import DEFAULT_THRESHOLDS, Thresholds
from rebayes.store.keys import plain

__all__ = [
    "LOOComparison",
    "TrialLOO",
    "loo_by_trial",
    "loo_compare",
    "marginal_log_likelihood",
    "prior_from_tree",
    "shared_data_groups",
]
# --- PSIS-LOO per trial ----------------------------------------------------------------------


@dataclass(frozen=True)
class TrialLOO:
    """PSIS-LOO with one observation per trial (all its arms and strata).

    Attributes
    ----------
    elpd, se, p : float
        Expected log predictive density, its standard error, effective number of parameters.
    table : pandas.DataFrame
        One row per trial (order of the analysis): ``elpd_i``, ``pareto_k``, ``high_k``.
    pareto_k_max : float
        The flag threshold.
    result : arviz_stats.utils.ELPDData
        arviz-stats' own result (pointwise), for :func:`arviz_stats.compare`.
    method : {"marginal", "conditional"}
        Whether each trial's own parameters (baselines, random effect) were integrated out of
        its likelihood (see :func:`loo_by_trial`).
    """

    elpd: float
    se: float
    p: float
    table: pd.DataFrame
    pareto_k_max: float
    result: Any = field(repr=False)
    method: str = "marginal"

    @property
    def high_k_trials(self) -> tuple[str, ...]:
        """Trials whose Pareto k exceeds the threshold (their LOO estimate is unreliable)."""
        return tuple(self.table.index[self.table["high_k"]])

    def to_dict(self) -> dict[str, Any]:
        """``{elpd, se, p, pareto_k_max, trials {name: {elpd_i, pareto_k, high_k}}}``."""
        return {
            "method": self.method,
            "elpd": plain(self.elpd),
            "se": plain(self.se),
            "p": plain(self.p),
            "pareto_k_max": self.pareto_k_max,
            "high_k_trials": list(self.high_k_trials),
            "trials": {
                str(t): {k: plain(v) for k, v in row.items()} for t, row in self.table.iterrows()
            },
        }

    def __str__(self) -> str:
        lines = [
            f"PSIS-LOO by trial ({self.method}): elpd {self.elpd:.2f} (SE {self.se:.2f}), "
            f"p_loo {self.p:.2f}",
        ]
        t = self.table
        per_trial = pd.DataFrame({
            "trial": t.index.astype(str),
            "elpd_i": [f"{v:.2f}" for v in t["elpd_i"]],
            "pareto_k": [f"{v:.2f}" for v in t["pareto_k"]],
            "": [f"k > {self.pareto_k_max:g}" if high else "" for high in t["high_k"]],
        })
        lines.append(tables.text(per_trial, align="lrrl", indent="  ", header=False))
        if self.high_k_trials:
            lines.append(
                f"  {len(self.high_k_trials)} of {len(self.table)} trials have Pareto k > "
                f"{self.pareto_k_max:g}: their leave-one-trial-out estimate is unreliable"
                + (
                    " (leaving a trial out leaves its own baselines and random effect to the "
                    "prior; the marginal method integrates them out)."
                    if self.method == "conditional"
                    else "."
                )
            )
        return "\n".join(lines)


def _per_trial_log_likelihood(tree: xr.DataTree) -> xr.Dataset:
    """Sum the pointwise log likelihood over each trial's arms and strata (dim ``trial``)."""
    if "log_likelihood" not in tree.children:
        raise DiagnosticsError("the fit has no 'log_likelihood' group for PSIS-LOO")
    ll = tree["log_likelihood"].to_dataset()
    out = {}
    for name, values in ll.data_vars.items():
        if "row_study" not in values.coords:
            raise DiagnosticsError(f"log likelihood '{name}' has no row_study coordinate")
        extra = [d for d in values.dims if d not in (*SAMPLE_DIMS, "row")]
        per_row = values.sum(extra) if extra else values
        per_trial = per_row.groupby("row_study").sum()
        # groupby sorts the trials; keep the analysis' order (first appearance).
        order = list(dict.fromkeys(np.asarray(values["row_study"].values).astype(str)))
        out[name] = per_trial.sel(row_study=order).rename(row_study="trial")
    return xr.Dataset(out)


# Quadrature of a trial's own parameters. The random effect z ~ N(0, 1) is integrated on a
# fixed grid over +-7 SD (trapezoid rule: spectrally accurate for smooth, fast-decaying
# integrands); a row's baseline log odds on a grid of +-8 standard errors of its observed
# control log odds, where all but a negligible part of the integrand lies; the baseline integral
# is tabulated on a fine grid of treatment effects and interpolated.
Z_GRID = np.linspace(-7.0, 7.0, 281)
BASELINE_POINTS = 401
BASELINE_SPAN = 8.0
THETA_STEP = 0.02


def prior_from_tree(tree: xr.DataTree) -> PriorSet:
    """Rebuild the fit's prior set from the tree's ``prior_json`` attribute."""
    if "prior_json" not in tree.attrs:
        raise DiagnosticsError("the fit does not record its prior set (no prior_json attribute)")
    # The registry's own reader, so a set mapped to the log RR keeps its scale.
    return PriorSet.from_dict(json.loads(tree.attrs["prior_json"]))


def _baseline_integral(
    events: np.ndarray, n: np.ndarray, baseline: Normal, theta: np.ndarray
) -> np.ndarray:
    """Integrate a row's two arms over its baseline ``alpha`` (its prior), at each theta.

    Returns log of E_alpha[Bin(events_c | n_c, expit(alpha - theta / 2))
    Bin(events_t | n_t, expit(alpha + theta / 2))] (arms coded -+1/2,
    :func:`rebayes.bayes.model.arm_log_odds`). The integral runs over the control log odds
    ``c = alpha - theta / 2`` (unit Jacobian at fixed theta), which the control arm's data pin
    down whatever theta is; the baseline prior is then evaluated at ``c + theta / 2``.
    """
    (yc, yt), (nc, nt) = events, n
    # Centre the grid on the control arm's log odds (0.5 added so that 0 and n are finite).
    p = (yc + 0.5) / (nc + 1.0)
    se = 1.0 / math.sqrt(max(nc, 1) * p * (1 - p))
    c = special.logit(p) + np.linspace(-BASELINE_SPAN, BASELINE_SPAN, BASELINE_POINTS) * se
    log_c = stats.binom.logpmf(yc, nc, special.expit(c)) + np.log(c[1] - c[0])
    grid = np.arange(theta.min() - THETA_STEP, theta.max() + 2 * THETA_STEP, THETA_STEP)
    log_t = stats.binom.logpmf(yt, nt, special.expit(c[None, :] + grid[:, None]))
    log_prior = stats.norm.logpdf(c[None, :] + grid[:, None] / 2, baseline.mu, baseline.sigma)
    table = special.logsumexp(log_c[None, :] + log_prior + log_t, axis=1)
    return np.interp(theta, grid, table)


# The report's diagnostics page and its comparison of analyses both ask for it: once per tree.
@per_tree
def marginal_log_likelihood(tree: xr.DataTree) -> xr.Dataset:
    """Each trial's log likelihood given the global parameters only, per posterior draw.

    ``log p(y_t | d, beta, tau) = log E_z[ prod_s p(y_s | mu_s + tau z) ]`` with, for the
    binomial model, ``p(y_s | theta) = E_a[Bin(control | a) Bin(treat | a + theta)]`` over the
    row's baseline prior: the trial's random effect ``z`` (shared by its strata) and its
    baselines ``a`` are integrated out by quadrature, because leaving a trial out leaves them
    to their priors. Trials are conditionally independent given (d, beta, tau), so PSIS-LOO on
    these terms estimates leave-one-trial-out predictive densities (Merkle, Furr &
    Rabe-Hesketh 2019, "Bayesian comparison of latent variable models: conditional versus
    marginal likelihoods", Psychometrika 84:802-829).

    Parameters
    ----------
    tree : xarray.DataTree
        A fit: ``posterior``, ``constant_data``, ``observed_data`` and, for the binomial model,
        the ``prior_json`` attribute (the baseline prior).

    Returns
    -------
    xarray.Dataset
        The observed variable's name (``events`` or ``log_rr``) with dims
        ``(chain, draw, trial)``.
    """
    posterior = tree["posterior"].to_dataset()
    constant = tree["constant_data"].to_dataset()
    observed = tree["observed_data"].to_dataset()
    mu = linear_predictor(posterior, constant, random=False).transpose(*SAMPLE_DIMS, "row")
    mu_values = mu.values
    tau = posterior["tau"].transpose(*SAMPLE_DIMS).values
    log_w = stats.norm.logpdf(Z_GRID)
    log_w -= special.logsumexp(log_w)
    binomial = "events" in observed
    baseline = prior_from_tree(tree).baseline if binomial else None
    studies = np.asarray(constant["row_study"].values).astype(str)
    trials = list(dict.fromkeys(studies))
    out = np.empty((*tau.shape, len(trials)))
    for j, trial in enumerate(trials):
        total = np.zeros((*tau.shape, Z_GRID.size))
        for s in np.flatnonzero(studies == trial):
            theta = mu_values[..., s, None] + tau[..., None] * Z_GRID
            if binomial:
                assert baseline is not None
                events = observed["events"].values[s]
                total += _baseline_integral(events, constant["n"].values[s], baseline, theta)
            else:
                y, vi = float(observed["log_rr"].values[s]), float(constant["vi"].values[s])
                total += stats.norm.logpdf(y, theta, math.sqrt(vi))
        out[..., j] = special.logsumexp(total + log_w, axis=-1)
    dims = (*SAMPLE_DIMS, "trial")
    coords = {d: posterior[d].values for d in SAMPLE_DIMS} | {"trial": trials}
    name = "events" if binomial else "log_rr"
    return xr.Dataset({name: xr.DataArray(out, dims=dims, coords=coords)})


def loo_by_trial(
    tree: xr.DataTree, thresholds: Thresholds = DEFAULT_THRESHOLDS, marginal: bool = True
) -> TrialLOO:
    """PSIS-LOO of a fit with each trial (all of its arms and strata) as one observation.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit with ``posterior`` and ``log_likelihood`` (dims ``row`` [, ``arm``], with the
        ``row_study`` coordinate), ``constant_data`` and ``observed_data``.
    thresholds : Thresholds
        ``pareto_k_max`` sets the flag.
    marginal : bool
        True (default): each trial's likelihood with its own baselines and random effect
        integrated out (:func:`marginal_log_likelihood`), importance-sampled over the global
        parameters (d, beta, tau). False: the fit's pointwise log likelihood summed over the
        trial's arms and strata; then the trial's own parameters jump from posterior to prior
        when it is left out, and PSIS is unreliable for most trials (Pareto k > 0.7 for 7 to 9
        of 10 trials in a small meta-analysis).

    Returns
    -------
    TrialLOO
    """
    posterior = tree["posterior"].to_dataset()
    if marginal:
        for group in ("log_likelihood", "constant_data", "observed_data"):
            if group not in tree.children:
                raise DiagnosticsError(f"the fit has no '{group}' group for PSIS-LOO")
        log_lik = marginal_log_likelihood(tree)
        # Relative efficiency from the parameters the weights depend on.
        posterior = posterior[[v for v in ("d", "beta", "tau") if v in posterior]]
    else:
        log_lik = _per_trial_log_likelihood(tree)
    loo_tree = xr.DataTree.from_dict({"posterior": posterior, "log_likelihood": log_lik})
    with warnings.catch_warnings():
        # arviz warns about k > 0.7; the table flags each such trial instead.
        warnings.simplefilter("ignore", UserWarning)
        result = azs.loo(loo_tree, pointwise=True)
    k = result.pareto_k.to_series()
    table = pd.DataFrame(
        {"elpd_i": result.elpd_i.to_series(), "pareto_k": k, "high_k": k > thresholds.pareto_k_max}
    )
    table.index.name = "trial"
    return TrialLOO(
        elpd=float(result.elpd),
        se=float(result.se),
        p=float(result.p),
        table=table,
        pareto_k_max=thresholds.pareto_k_max,
        result=result,
        method="marginal" if marginal else "conditional",
    )


@dataclass(frozen=True)
class LOOComparison:
    """PSIS-LOO (by trial) of analyses fitted to the same rows, compared by arviz-stats.

    Attributes
    ----------
    table : pandas.DataFrame
        :func:`arviz_stats.compare`'s table, best analysis first: ``rank``, ``elpd``,
        ``elpd_diff``, ``dse``, ``p``, ``weight`` (stacking), ...
    loos : dict of str to TrialLOO
    """

    table: pd.DataFrame
    loos: dict[str, TrialLOO]

    def to_dict(self) -> dict[str, Any]:
        """``{analyses {name: {rank, elpd, elpd_diff, dse, p, weight, high_k_trials}}}``."""
        out = {}
        for name, row in self.table.iterrows():
            record = {
                c: plain(row[c])
                for c in ("rank", "elpd", "se", "elpd_diff", "dse", "p", "weight")
                if c in row
            }
            record["high_k_trials"] = list(self.loos[str(name)].high_k_trials)
            out[str(name)] = record
        return {"analyses": out}

    def _frame(self, headers: tuple[str, ...], high_k: str) -> pd.DataFrame:
        """Return the formatted comparison under ``headers``; ``high_k`` formats the trials."""
        t = self.table
        cells = [
            t.index.astype(str),
            [f"{v:.2f}" for v in t["elpd"]],
            [f"{v:.2f}" for v in t["elpd_diff"]],
            [f"{v:.2f}" for v in t["dse"]],
            [f"{v:.2f}" for v in t["weight"]],
            [high_k.format(high=len(self.loos[str(n)].high_k_trials),
                           trials=len(self.loos[str(n)].table)) for n in t.index],
        ]
        return tables.frame(headers, zip(*cells, strict=True))

    def __str__(self) -> str:
        table = self._frame(("analysis", "elpd", "elpd_diff", "dse", "weight", "high k"),
                            high_k="{high}")
        return "\n".join([
            "PSIS-LOO by trial, compared (elpd_diff against the best; weights by stacking)",
            tables.text(table, align="lrrrrr", indent="  "),
        ])

    def to_markdown(self) -> str:
        """Return the comparison as a markdown table."""
        headers = ("Analysis", "elpd (LOO)", "elpd diff", "SE diff", "weight",
                   "trials with k > 0.7")
        return tables.markdown(self._frame(headers, high_k="{high} of {trials}"),
                               align="lrrrrr")


def _same_rows(a: xr.DataTree, b: xr.DataTree) -> bool:
    """Whether two fits observed the same data on the same rows."""
    da, db = a["observed_data"].to_dataset(), b["observed_data"].to_dataset()
    return set(da.data_vars) == set(db.data_vars) and all(
        da[v].dims == db[v].dims
        and list(da[v]["row"].values) == list(db[v]["row"].values)
        and np.array_equal(da[v].values, db[v].values)
        for v in da.data_vars
    )


def shared_data_groups(trees: Mapping[str, xr.DataTree]) -> list[list[str]]:
    """Group analyses fitted to the same rows and data (the ones LOO can compare).

    Parameters
    ----------
    trees : mapping of str to xarray.DataTree

    Returns
    -------
    list of list of str
        Groups of two or more analysis names, in the order first met; analyses whose data no
        other analysis shares are left out.

    Examples
    --------
    >>> groups = shared_data_groups({"overall": a, "timing": b, "by_dose": c})   # doctest: +SKIP
    >>> groups                                                                   # doctest: +SKIP
    [['overall', 'timing']]
    """
    groups: list[list[str]] = []
    for name, tree in trees.items():
        for group in groups:
            if _same_rows(trees[group[0]], tree):
                group.append(name)
                break
        else:
            groups.append([name])
    return [g for g in groups if len(g) > 1]


def loo_compare(
    trees: Mapping[str, xr.DataTree],
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    marginal: bool = True,
) -> LOOComparison:
    """Compare analyses of the same rows by PSIS-LOO with one observation per trial.

    Parameters
    ----------
    trees : mapping of str to xarray.DataTree
        Analysis name -> fit; at least two, all with the same observed data on the same rows
        (e.g. ``overall`` and a subgroup analysis that both sum a trial's strata).
    thresholds : Thresholds
    marginal : bool
        As for :func:`loo_by_trial`.

    Returns
    -------
    LOOComparison

    Raises
    ------
    DiagnosticsError
        Fewer than two analyses, or analyses fitted to different rows or data.
    """
    if len(trees) < 2:
        raise DiagnosticsError("LOO comparison needs at least two analyses")
    names = list(trees)
    first = trees[names[0]]
    for name in names[1:]:
        if not _same_rows(first, trees[name]):
            raise DiagnosticsError(
                f"analyses '{names[0]}' and '{name}' are not fitted to the same rows and data; "
                "LOO can only compare analyses of the same observations"
            )
    loos = {name: loo_by_trial(tree, thresholds, marginal) for name, tree in trees.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = azs.compare({name: loo.result for name, loo in loos.items()}, round_to="none")
    return LOOComparison(table=pd.DataFrame(table), loos=loos)
