"""Meta-regression coefficients of a fit: each ``beta`` as a ratio of odds ratios.

In the binomial model ``theta = d + X beta + ...`` is a log odds ratio, so ``exp(beta_j)`` is
the factor by which the OR changes per unit of a continuous covariate (its slope per unit) or
between a categorical covariate's level and its reference level. For the normal likelihood the
scale is the log RR and ``exp(beta_j)`` is a ratio of RRs. Each coefficient is reported with its
median, 95% equal-tailed interval and the posterior probability that it moves the effect in the
direction of benefit the dataset declares (towards a lower risk when it declares none).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from rebayes.bayes.records import OR_THRESHOLDS, Coefficient
from rebayes.data.direction import Direction

__all__ = ["OR_THRESHOLDS", "Coefficient", "coefficients", "pooled_or_probabilities"]


def coefficients(tree: xr.DataTree) -> list[Coefficient]:
    """Summarise the posterior of ``beta`` (empty when the model has no covariates).

    Parameters
    ----------
    tree : xarray.DataTree
        A fit (``Fit.tree``).

    Returns
    -------
    list of Coefficient
    """
    posterior = tree["posterior"].to_dataset()
    if "beta" not in posterior:
        return []
    direction = Direction.of(tree)
    higher = direction.higher
    towards = "benefit" if direction.declared else "a lower risk"
    scale = "RR" if str(tree.attrs.get("likelihood", "binomial")) == "normal" else "OR"
    out = []
    beta = posterior["beta"]
    for name in beta["coef"].values:
        draws = beta.sel(coef=name).values.ravel()
        low, mid, high = np.exp(np.quantile(draws, [0.025, 0.5, 0.975]))
        p = float(np.mean(draws > 0)) if higher else float(np.mean(draws < 0))
        out.append(Coefficient(str(name), scale, float(mid), float(low), float(high), p, towards))
    return out


def pooled_or_probabilities(
    tree: xr.DataTree, thresholds: tuple[float, ...] = OR_THRESHOLDS
) -> dict[str, float]:
    """P(pooled OR > t) for each threshold (binomial model; empty for the normal model).

    The pooled OR is the model's own scale (``exp(d)``), so these need no control risk; a
    published pooled OR (e.g. "1.69 (0.72-3.96)") is compared with them directly.
    """
    from rebayes.bayes.quantities import pooled_or

    odds = pooled_or(tree)
    if odds is None:
        return {}
    draws = np.asarray(odds).ravel()
    return {f"{t:g}": float(np.mean(draws > t)) for t in thresholds}
