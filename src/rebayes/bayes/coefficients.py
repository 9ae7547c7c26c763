"""Meta-regression coefficients of a fit: each ``beta`` as a ratio of odds ratios.

In the binomial model ``theta = d + X beta + ...`` is a log odds ratio, so ``exp(beta_j)`` is
the factor by which the OR changes per unit of a continuous covariate (its slope per unit) or
between a categorical covariate's level and its reference level. For the normal likelihood the
scale is the log RR and ``exp(beta_j)`` is a ratio of RRs. Each coefficient is reported with its
median, 95% equal-tailed interval and the posterior probability that it moves the effect in the
direction of benefit the dataset declares (towards a lower risk when it declares none).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from rebayes.bayes.records import OR_THRESHOLDS
from rebayes.data.direction import Direction

__all__ = ["OR_THRESHOLDS", "Coefficient", "coefficients", "pooled_or_probabilities"]


@dataclass(frozen=True)
class Coefficient:
    """One meta-regression coefficient on the ratio scale.

    Attributes
    ----------
    name : str
        The design column (a level, or a continuous covariate's name).
    scale : str
        ``"OR"`` (binomial model) or ``"RR"`` (normal model): ``exp(beta)`` is a ratio of them.
    median, ci_low, ci_high : float
        ``exp(beta)``: posterior median and 95% equal-tailed interval.
    p_towards_benefit : float
        P(the coefficient moves the effect towards benefit): P(beta > 0) when higher is
        better, P(beta < 0) when lower is or when no direction is declared.
    towards : str
        What ``p_towards_benefit`` is towards: ``"benefit"``, or ``"a lower risk"`` when the
        direction is undeclared.
    """

    name: str
    scale: str
    median: float
    ci_low: float
    ci_high: float
    p_towards_benefit: float
    towards: str = "benefit"

    @property
    def p_name(self) -> str:
        """``"P(towards benefit)"`` or ``"P(towards a lower risk)"``."""
        return f"P(towards {self.towards})"

    def to_dict(self) -> dict[str, float | str]:
        """JSON layout (``p_towards_lower_risk`` instead of ``p_towards_benefit`` undeclared)."""
        key = "p_towards_benefit" if self.towards == "benefit" else "p_towards_lower_risk"
        return {
            "scale": f"ratio of {self.scale}s per unit",
            "median": self.median,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            key: self.p_towards_benefit,
        }

    def sentence(self, unit: str = "") -> str:
        """One line: 'ablat: OR x0.97 per degree (0.95 to 0.99)'."""
        per = f" per {unit}" if unit else ""
        return (
            f"{self.name}: {self.scale} multiplied by {self.median:.3f}{per} "
            f"(95% CrI {self.ci_low:.3f} to {self.ci_high:.3f}); "
            f"{self.p_name} = {self.p_towards_benefit:.3f}"
        )


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
