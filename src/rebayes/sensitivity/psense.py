"""Power-scaling prior sensitivity, and what each prior implies before the data.

:func:`prior_sensitivity` runs arviz-stats' psense (Kallioinen et al. 2024) on a fit's
``log_prior`` and ``log_likelihood`` groups: which quantities move when the prior, or the
likelihood, is made slightly stronger or weaker. :func:`implied_prior_rr` is the pooled RR a
prior set implies before seeing data (for the overlay plots).

References
----------
Kallioinen N, Paananen T, Bürkner P-C, Vehtari A. Detecting and diagnosing prior and
likelihood sensitivity with power-scaling. Stat Comput. 2024;34:57.
doi:10.1007/s11222-023-10366-5.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr
from arviz_stats.base import array_stats

from rebayes.bayes import quantities
from rebayes.checks.batched import draws_array
from rebayes.checks.convergence import reported_quantities, stack_quantities
from rebayes.errors import RebayesError
from rebayes.store.keys import plain

__all__ = [
    "PriorSensitivity",
    "implied_prior_rr",
    "power_scale_sensitivity",
    "prior_sensitivity",
]

PSENSE_THRESHOLD = 0.05  # Kallioinen et al. (2024): CJS distance above 0.05 is sensitive


# --- power-scaling sensitivity -------------------------------------------------------------


@dataclass(frozen=True)
class PriorSensitivity:
    """Power-scaling sensitivity of one fit (arviz-stats ``psense_summary``).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per quantity: ``prior`` and ``likelihood`` sensitivity (CJS distance per unit
        log power) and arviz-stats' ``diagnosis``.
    threshold : float
        Sensitivity above which a quantity counts as sensitive (0.05).
    """

    table: pd.DataFrame
    threshold: float = PSENSE_THRESHOLD

    @property
    def prior_sensitive(self) -> tuple[str, ...]:
        """Quantities that move when the prior is power-scaled."""
        return tuple(self.table.index[self.table["prior"] >= self.threshold])

    @property
    def likelihood_sensitive(self) -> tuple[str, ...]:
        """Quantities that move when the likelihood is power-scaled (the data inform them)."""
        return tuple(self.table.index[self.table["likelihood"] >= self.threshold])

    @property
    def weak_likelihood(self) -> tuple[str, ...]:
        """Prior-sensitive quantities that the data hardly inform (strong prior, weak data)."""
        return tuple(q for q in self.prior_sensitive if q not in self.likelihood_sensitive)

    @property
    def conflict(self) -> tuple[str, ...]:
        """Quantities sensitive to both: a possible prior-data conflict."""
        return tuple(q for q in self.prior_sensitive if q in self.likelihood_sensitive)

    def sentence(self) -> str:
        """Plain words on what the prior drives."""
        if not self.prior_sensitive:
            return (
                f"No quantity is prior-sensitive (power-scaling sensitivity < {self.threshold:g}): "
                "the data, not the prior, drive the posterior."
            )

        def listed(names: Iterable[str]) -> str:
            return ", ".join(f"{q} ({self.table.loc[q, 'prior']:.3f})" for q in names)

        parts = []
        if self.weak_likelihood:
            parts.append(
                f"prior-sensitive with a weak likelihood: {listed(self.weak_likelihood)} "
                "(the prior, not the data, shapes them)"
            )
        if self.conflict:
            parts.append(
                f"sensitive to both prior and likelihood: {listed(self.conflict)} "
                "(possible prior-data conflict)"
            )
        if len(self.prior_sensitive) < len(self.table):
            parts.append("the other quantities are not prior-sensitive")
        text = "; ".join(parts)
        return text[:1].upper() + text[1:] + "."

    def to_dict(self) -> dict[str, Any]:
        """``{threshold, quantities {name: {prior, likelihood, diagnosis}}, sentence}``."""
        return {
            "threshold": self.threshold,
            "quantities": {
                str(q): {
                    "prior": plain(row["prior"]),
                    "likelihood": plain(row["likelihood"]),
                    "diagnosis": str(row["diagnosis"]),
                }
                for q, row in self.table.iterrows()
            },
            "prior_sensitive": list(self.prior_sensitive),
            "likelihood_sensitive": list(self.likelihood_sensitive),
            "weak_likelihood": list(self.weak_likelihood),
            "conflict": list(self.conflict),
            "sentence": self.sentence(),
        }


def prior_sensitivity(tree: xr.DataTree, threshold: float = PSENSE_THRESHOLD) -> PriorSensitivity:
    """Power-scaling prior and likelihood sensitivity of the quantities people read.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit with ``posterior``, ``log_prior`` and ``log_likelihood``.
    threshold : float

    Returns
    -------
    PriorSensitivity
        For ``d``, ``beta``, ``tau``, the pooled and predictive RR and any subgroup RRs and
        ratios. The prior is power-scaled as a whole (every slot of the prior set), as
        priorsense does by default.
    """
    for group in ("posterior", "log_prior", "log_likelihood"):
        if group not in tree.children:
            raise RebayesError(f"power-scaling sensitivity needs the fit's '{group}' group")
    posterior = tree["posterior"].to_dataset()
    # Derived RRs need a fit's constant data; a bare tree is checked on its parameters.
    derived = reported_quantities(tree) if "constant_data" in tree.children else xr.Dataset()
    keep = [v for v in ("d", "beta", "tau") if v in posterior]
    wanted = ("pooled_rr", "predictive_rr", "subgroup_rr", "subgroup_ratio")
    quantities = xr.merge(
        [posterior[keep], derived[[v for v in wanted if v in derived]]], compat="override"
    )
    stacked, labels, _ = stack_quantities({"quantities": quantities})
    values = stacked["quantity"].values
    columns = {
        component: power_scale_sensitivity(values, _summed(tree[group].to_dataset()))
        for component, group in (("prior", "log_prior"), ("likelihood", "log_likelihood"))
    }
    table = pd.DataFrame(columns, index=pd.Index(labels)).round(6)
    table["diagnosis"] = [_diagnosis(p, lik, threshold) for p, lik in table.to_numpy()]
    return PriorSensitivity(table=table, threshold=threshold)


def _summed(group: xr.Dataset) -> np.ndarray:
    """Sum a log-density group over everything but chain and draw, as arviz-stats does."""
    return draws_array(group).sum(axis=2)


def _diagnosis(prior: float, likelihood: float, threshold: float) -> str:
    """arviz-stats' ``psense_summary`` diagnosis of one quantity (applied to rounded values)."""
    if prior >= threshold and likelihood >= threshold:
        return "potential prior-data conflict"
    if prior > threshold > likelihood:
        return "potential strong prior / weak likelihood"
    return "\u2713"


def _cjs_distance(draws: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Cumulative Jensen-Shannon distance between the draws and the reweighted draws.

    arviz-stats' ``_cjs_dist``, for every row of ``draws`` (quantity, draw) at once, with the
    same operations in the same order along each row.
    """
    order = np.argsort(draws, axis=1)
    ordered = np.take_along_axis(draws, order, axis=1)
    weights = weights[order]
    n = draws.shape[1]
    binwidth = np.diff(ordered, axis=1)
    cdf_p = np.linspace(1 / n, 1 - 1 / n, n - 1)
    cdf_q = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)[:, :-1]
    cdf_p_int = binwidth @ cdf_p
    cdf_q_int = np.einsum("ij,ij->i", cdf_q, binwidth)
    pq_numer = np.log2(cdf_p, out=np.zeros_like(cdf_p), where=cdf_p != 0)
    qp_numer = np.log2(cdf_q, out=np.zeros_like(cdf_q), where=cdf_q != 0)
    denom = 0.5 * (cdf_p + cdf_q)
    denom = np.log2(denom, out=np.zeros_like(denom), where=denom != 0)
    cjs_pq = (binwidth * (cdf_p * (pq_numer - denom))).sum(axis=1) + 0.5 / np.log(2) * (
        cdf_q_int - cdf_p_int)
    cjs_qp = (binwidth * (cdf_q * (qp_numer - denom))).sum(axis=1) + 0.5 / np.log(2) * (
        cdf_p_int - cdf_q_int)
    with np.errstate(invalid="ignore", divide="ignore"):  # a constant quantity: NaN, as theirs
        return np.sqrt((np.maximum(cjs_pq, 0) + np.maximum(cjs_qp, 0)) / (cdf_p_int + cdf_q_int))


def power_scale_sensitivity(
    values: np.ndarray, log_component: np.ndarray, alphas: tuple[float, float] = (0.99, 1.01)
) -> np.ndarray:
    """Power-scaling sensitivity of every quantity to one component (prior or likelihood).

    arviz-stats' ``psense`` (Kallioinen et al. 2024) for a ``(chain, draw, quantity)`` array
    at once: its Pareto-smoothed weights of the component raised to each power (its own
    ``power_scale_lw``), then the CJS distance of each quantity's reweighted draws from its
    draws, in both directions, as a finite-difference derivative. arviz-stats evaluates the
    distances one quantity at a time through xarray (~0.13 s a fit, the cold report's largest
    check); ``tests/test_psense.py`` checks this against it.

    Parameters
    ----------
    values : ndarray, shape (chain, draw, quantity)
    log_component : ndarray, shape (chain, draw)
        The component's log density per draw (summed over its terms).
    alphas : (float, float)
        The lower and upper power.

    Returns
    -------
    ndarray, shape (quantity,)
    """
    chains, draws, n = values.shape
    flat = np.ascontiguousarray(values.reshape(chains * draws, n).T)
    out = np.zeros(n)
    for alpha, sign in ((alphas[0], -1.0), (alphas[1], 1.0)):
        weights = np.exp(array_stats.power_scale_lw(log_component, alpha=alpha, axis=[-2, -1]))
        weights = (weights / weights.sum(axis=(0, 1))).ravel()
        cjs = np.maximum(_cjs_distance(flat, weights), _cjs_distance(-1 * flat, weights))
        out += sign * cjs / np.log2(alpha)
    return out / 2


# --- prior-implied quantities ---------------------------------------------------------------


def _prior_as_posterior(tree: xr.DataTree) -> xr.DataTree:
    """Return a tree whose ``posterior`` is the prior group, for effects.* to evaluate."""
    groups = {"posterior": tree["prior"].to_dataset()}
    for name in ("constant_data", "observed_data"):
        if name in tree.children:
            groups[name] = tree[name].to_dataset()
    out = xr.DataTree.from_dict(groups)
    out.attrs = dict(tree.attrs)
    return out


def implied_prior_rr(tree: xr.DataTree) -> xr.DataArray:
    """Return the pooled RR implied by the prior, per prior draw, at the control risk p0.

    The same function of the draws as the posterior pooled RR
    (:func:`rebayes.bayes.quantities.pooled_rr`), applied to the ``prior`` group: what the prior set
    says about the RR before seeing the data.
    """
    if "prior" not in tree.children:
        raise RebayesError("the fit has no 'prior' group")
    return quantities.pooled_rr(_prior_as_posterior(tree))


