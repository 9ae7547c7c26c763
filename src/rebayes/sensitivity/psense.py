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

import contextlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import arviz_stats as azs
import pandas as pd
import xarray as xr

from rebayes.bayes import quantities
from rebayes.checks.convergence import reported_quantities
from rebayes.errors import RebayesError
from rebayes.json_io import plain

__all__ = [
    "PriorSensitivity",
    "implied_prior_rr",
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


@contextlib.contextmanager
def _quiet_psense() -> Iterator[None]:
    """Silence arviz-stats' logged advice: the sentence of PriorSensitivity says it instead."""
    logger = logging.getLogger("arviz_stats.psense")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


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
    psense_tree = xr.DataTree.from_dict(
        {
            "posterior": quantities,
            "log_prior": tree["log_prior"].to_dataset(),
            "log_likelihood": tree["log_likelihood"].to_dataset(),
        }
    )
    with _quiet_psense():
        table = azs.psense_summary(psense_tree, threshold=threshold, round_to=6)
    return PriorSensitivity(table=pd.DataFrame(table), threshold=threshold)


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
    """Return the pooled RR implied by the prior, per prior draw, at the typical control risk.

    The same function of the draws as the posterior pooled RR
    (:func:`rebayes.bayes.quantities.pooled_rr`), applied to the ``prior`` group: what the prior set
    says about the RR before seeing the data.
    """
    if "prior" not in tree.children:
        raise RebayesError("the fit has no 'prior' group")
    return quantities.pooled_rr(_prior_as_posterior(tree))


