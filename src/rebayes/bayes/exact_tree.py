"""The DataTree of a fit the exact engine answered: inverse-CDF draws in NUTS's layout.

Every number an exact fit reports is computed by quadrature
(:func:`rebayes.bayes.exact_fit.exact_summary`); the figures, PSIS-LOO, power-scaling
sensitivity and the predictive checks read draws. :func:`exact_tree` gives them seeded draws
from the exact posterior (:meth:`rebayes.bayes.exact.ExactPosterior.draws`) in exactly the
variables, dims and coords a NUTS fit of the same design has (:func:`rebayes.bayes.model.
unpad_posterior`), with the same derived groups (:func:`rebayes.bayes.trees.derived_groups`).
No sampler ran, so the tree has no ``sample_stats``; its attributes say ``engine = "exact"``
and the method.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from rebayes.bayes.design import Design
from rebayes.bayes.exact import ExactPosterior
from rebayes.bayes.exact_fit import method_of
from rebayes.bayes.priors import PriorSet
from rebayes.bayes.settings import SamplerSettings
from rebayes.bayes.trees import constant_data, fit_attrs, observed_data, with_derived_groups

__all__ = ["exact_tree"]


def _posterior(draws: dict[str, np.ndarray], design: Design) -> xr.Dataset:
    """Label the engine's draws as :func:`rebayes.bayes.model.unpad_posterior` labels NUTS's."""
    chains, n = draws["tau"].shape
    sample = {"chain": np.arange(chains), "draw": np.arange(n)}
    out: dict[str, xr.DataArray] = {}
    if design.separate:
        out["d"] = xr.DataArray(draws["d"], dims=("chain", "draw", "subgroup"),
                                coords={**sample, "subgroup": list(design.groups)})
    else:
        out["d"] = xr.DataArray(draws["d"], dims=("chain", "draw"), coords=sample)
    if design.coefs:
        out["beta"] = xr.DataArray(draws["beta"], dims=("chain", "draw", "coef"),
                                   coords={**sample, "coef": list(design.coefs)})
    out["tau"] = xr.DataArray(draws["tau"], dims=("chain", "draw"), coords=sample)
    out["z"] = xr.DataArray(draws["z"], dims=("chain", "draw", "study"),
                            coords={**sample, "study": list(design.studies)})
    if "alpha" in draws:
        out["alpha"] = xr.DataArray(draws["alpha"], dims=("chain", "draw", "row"),
                                    coords={**sample, "row": list(design.rows)})
    posterior = xr.Dataset(out)
    posterior.attrs = {"sample_dims": ["chain", "draw"]}
    return posterior


def exact_tree(
    posterior: ExactPosterior,
    design: Design,
    prior: PriorSet,
    seed: int,
    settings: SamplerSettings,
    key: str = "",
) -> xr.DataTree:
    """Return an exact fit's DataTree: ``settings.chains`` x ``settings.draws`` seeded draws.

    Parameters
    ----------
    posterior : ExactPosterior
        The design's exact posterior under ``prior`` (on the model's scale).
    design : Design
    prior : PriorSet
        On the model's scale (:func:`rebayes.bayes.design.prior_on_model_scale`).
    seed : int
        Seeds the draws (and, as for NUTS, the derived groups' streams).
    settings : SamplerSettings
        Its ``chains`` and ``draws`` shape the draws; nothing else of it applies.
    key : str
        The fit's key.

    Returns
    -------
    xarray.DataTree
        ``posterior`` (the variables, dims and coords of a NUTS fit of ``design``), the
        derived groups, ``observed_data`` and ``constant_data``; no ``sample_stats``.
    """
    draws = posterior.draws(settings.chains, settings.draws, seed)
    tree = xr.DataTree.from_dict({
        "posterior": _posterior(draws, design),
        "observed_data": observed_data(design),
        "constant_data": constant_data(design),
    })
    run: dict[str, Any] = {"draws": settings.draws, "chains": settings.chains,
                           "engine": "exact", "method": method_of(posterior)}
    tree.attrs = fit_attrs(design, prior, seed, key, run)
    return with_derived_groups(tree)
