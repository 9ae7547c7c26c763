"""A fit's DataTree: assembled from the sampler's draws, its derived groups recomputed.

A fit is an ArviZ DataTree with the groups the checks need (``posterior``, ``sample_stats``,
``log_likelihood``, ``log_prior``, ``prior``, ``prior_predictive``, ``posterior_predictive``,
``observed_data``, ``constant_data``). Only :data:`~rebayes.store.fits.STORED_GROUPS` come
from sampling (and are what a fit file keeps: :mod:`rebayes.store.fits`); the others are
numpy functions of those, the prior and the seed (:func:`derived_groups`), computed the
same way for a fresh fit and for one read from the cache, so the two are identical. The
tree's attributes name its inputs (:func:`provenance`) and record how it was sampled.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import xarray as xr

from rebayes.bayes.design import ARMS, Design
from rebayes.bayes.model import (
    log_prior,
    pointwise_log_likelihood,
    predictive_draws,
    prior_draws,
    unpad_posterior,
)
from rebayes.bayes.priors import PriorSet
from rebayes.bayes.settings import SAMPLE_STATS, SamplerSettings
from rebayes.data.direction import Direction
from rebayes.store.fits import STORED_GROUPS

__all__ = [
    "assemble_tree",
    "constant_data",
    "derived_groups",
    "fit_attrs",
    "observed_data",
    "provenance",
    "with_derived_groups",
]


def _row_coords(design: Design) -> dict[str, Any]:
    """Coordinates of the ``row`` dim: its label, study, stratum and reporting subgroup.

    Only ``constant_data``, ``observed_data`` and ``log_likelihood`` carry the study, stratum
    and subgroup labels (enough to group log-likelihood terms by trial for PSIS-LOO).
    """
    return {
        "row": list(design.rows),
        "row_study": ("row", list(design.row_study)),
        "row_stratum": ("row", list(design.row_stratum)),
        "row_subgroup": ("row", list(design.row_subgroup)),
    }


def constant_data(design: Design) -> xr.Dataset:
    """Return the fit's ``constant_data`` group: the design's indices, covariates and sizes.

    Study (and subgroup) index per row, the design matrix, the arm sizes and, for the normal
    model, the variances of the log RRs and the counts they came from.
    """
    data: dict[str, Any] = {"study_index": ("row", design.study_index)}
    coords: dict[str, Any] = {**_row_coords(design), "study": list(design.studies)}
    if design.separate:
        data["group_index"] = ("row", design.group_index)
        coords["subgroup"] = list(design.groups)
    if design.coefs:
        data["X"] = (("row", "coef"), design.X)
        coords["coef"] = list(design.coefs)
    data["n"] = (("row", "arm"), design.n)
    coords["arm"] = list(ARMS)
    if design.vi is not None:
        data["vi"] = ("row", design.vi)
        # The normal model observes log RRs; the counts stay available as constants.
        data["events"] = (("row", "arm"), design.events)
    return xr.Dataset(data, coords=coords)


def observed_data(design: Design) -> xr.Dataset:
    """Return the fit's ``observed_data`` group: events per arm, or log RRs (normal model)."""
    data: dict[str, Any]
    if design.likelihood == "binomial":
        data = {"events": (("row", "arm"), design.events)}
        coords = {**_row_coords(design), "arm": list(ARMS)}
    else:
        data = {"log_rr": ("row", design.yi)}
        coords = _row_coords(design)
    return xr.Dataset(data, coords=coords)


def provenance(design: Design, prior: PriorSet, key: str) -> dict[str, Any]:
    """Attributes naming a fit's inputs, stamped on every fit, sampled or read from the cache.

    Parameters
    ----------
    design : Design
    prior : PriorSet
    key : str
        The fit's key (:func:`rebayes.bayes.fit.fit_key`).

    Returns
    -------
    dict
        Analysis, title, prior (name, summary, parameters), spec, dataset, variant, the
        table's hash and the fit key.
    """
    spec = design.spec
    return {
        "analysis": spec.name,
        "title": spec.title,
        "prior": prior.name,
        "prior_summary": prior.describe(Direction.from_schema(design.schema),
                                        baseline=design.likelihood == "binomial",
                                        covariate=bool(design.coefs)),
        "prior_json": json.dumps(prior.to_dict()),
        "spec_json": json.dumps(spec.to_dict()),
        "dataset": design.dataset,
        "variant": design.variant,
        "data_hash": design.data_hash,
        "fit_key": key,
    }


def assemble_tree(
    raw: xr.DataTree,
    design: Design,
    prior: PriorSet,
    seed: int,
    settings: SamplerSettings,
    key: str = "",
) -> xr.DataTree:
    """Build the saved DataTree from nutpie's output: relabel, then add the derived groups.

    The compiled model is padded and may come from another design of the same shape, so the
    padding is stripped and the coordinates are taken from ``design``. The attrs carry the
    dataset's direction of benefit and labels (``higher_is_better``, ``direction_declared``,
    ``outcome``, ``treatment``, ``control``; see :class:`rebayes.data.direction.Direction`).
    """
    posterior = unpad_posterior(raw["posterior"].to_dataset(), design)
    posterior.attrs = {"sample_dims": ["chain", "draw"]}
    stats = raw["sample_stats"].to_dataset()[list(SAMPLE_STATS)]
    stats.attrs = {
        k: v for k, v in raw["sample_stats"].attrs.items() if isinstance(v, str | int | float)
    }
    tree = xr.DataTree.from_dict(
        {
            "posterior": posterior,
            "sample_stats": stats,
            "observed_data": observed_data(design),
            "constant_data": constant_data(design),
        }
    )
    tree.attrs = fit_attrs(design, prior, seed, key, {
        "draws": int(posterior.sizes["draw"]),
        "tune": settings.tune,
        "chains": settings.chains,
        "target_accept": float(raw.attrs.get("target_accept", settings.target_accept)),
        "attempts": int(raw.attrs.get("attempt", 1)),
    })
    return with_derived_groups(tree)


def fit_attrs(
    design: Design, prior: PriorSet, seed: int, key: str, run: dict[str, Any]
) -> dict[str, Any]:
    """Return a fit tree's attributes: its inputs, ``run`` (how it was computed), the model.

    Parameters
    ----------
    design : Design
    prior : PriorSet
    seed : int
    key : str
        The fit's key.
    run : dict
        What produced the draws: the sampler's draws, tuning and chains (NUTS), or the engine
        and its method (the exact engine).
    """
    return {
        **provenance(design, prior, key),
        "likelihood": design.likelihood,
        "effect_scale": "log OR" if design.likelihood == "binomial" else "log RR",
        "effect": design.spec.effect,
        "seed": seed,
        **run,
        "subgroups_json": json.dumps(list(design.subgroups)),
        "ratios_json": json.dumps([list(r) for r in design.ratios]),
        "notes_json": json.dumps(list(design.notes)),
        "intercept_at": design.intercept_at,
        **Direction.from_schema(design.schema).attrs(),
    }


def derived_groups(tree: xr.DataTree) -> dict[str, xr.Dataset]:
    """Compute the groups not stored: from the stored ones, the tree's prior and its seed.

    Log likelihood and log prior per draw, prior draws and the prior and posterior
    predictive draws, each from its own numpy stream seeded by ``(seed, stream)``: pure
    functions of the stored groups, so a fit read from the cache gets exactly the numbers the
    fresh fit had.
    """
    from rebayes.checks.loo import prior_from_tree

    posterior = tree["posterior"].to_dataset()
    constant = tree["constant_data"].to_dataset()
    observed = tree["observed_data"].to_dataset()
    # The prior as the model used it: its effect mean turned towards benefit.
    prior = prior_from_tree(tree).oriented(Direction.of(tree).higher_is_better)
    seed = int(tree.attrs["seed"])
    rng_prior, rng_prior_pred, rng_post_pred = (
        np.random.default_rng([seed, stream]) for stream in (1, 2, 3)
    )
    row_coords = {
        name: constant.coords[name] for name in ("row", "row_study", "row_stratum", "row_subgroup")
    }
    prior_ds = prior_draws(posterior, prior, rng_prior)
    return {
        "log_likelihood": pointwise_log_likelihood(posterior, constant, observed).assign_coords(
            row_coords
        ),
        "log_prior": log_prior(posterior, prior),
        "prior": prior_ds,
        "prior_predictive": predictive_draws(prior_ds, constant, rng_prior_pred),
        "posterior_predictive": predictive_draws(posterior, constant, rng_post_pred),
    }


def with_derived_groups(tree: xr.DataTree) -> xr.DataTree:
    """Return the stored groups of ``tree`` with :func:`derived_groups` added, in ArviZ order.

    A fit the exact engine answered has no ``sample_stats`` (no sampler ran); it stays without.
    """
    groups = {name: tree[name].to_dataset() for name in STORED_GROUPS if name in tree.children}
    groups.update(derived_groups(tree))
    order = ("posterior", "sample_stats", "log_likelihood", "log_prior", "prior",
             "prior_predictive", "posterior_predictive", "observed_data", "constant_data")
    out = xr.DataTree.from_dict({name: groups[name] for name in order if name in groups})
    out.attrs = dict(tree.attrs)
    return out
