"""One model of the robust space, fitted: its marginal likelihood and posterior summaries.

:func:`normal_approximation` fits any model of the space on the studies' log ratios
(:mod:`rebayes.bayes.robust.likelihood`) by quadrature (:mod:`rebayes.bayes.robust.quadrature`).
The no-bias models can be fitted by another engine with the same signature
(:data:`NoBiasEngine`): the binomial-normal likelihood of the 2x2 tables, as RoBMA's
``BMA.glmm`` uses, once rebayes' exact quadrature engine provides its marginal likelihood.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rebayes.bayes.robust.likelihood import StudyData, log_posterior, unpack
from rebayes.bayes.robust.quadrature import integrate
from rebayes.bayes.robust.space import RobustModel, RobustPriors

__all__ = ["ModelFit", "NoBiasEngine", "cdf_quantiles", "normal_approximation",
           "weighted_quantiles"]

#: Likelihood label of the normal approximation (printed with every result).
NORMAL_APPROXIMATION = "normal approximation of the log ratio"


def weighted_quantiles(values: np.ndarray, weights: np.ndarray,
                       q: float | Sequence[float] | np.ndarray) -> np.ndarray:
    """Quantiles of a discrete distribution (values with probabilities), interpolated.

    The cumulative probability at each sorted value is taken at the middle of its own mass,
    so a quadrature grid's nodes give a continuous, unbiased quantile function.
    """
    order = np.argsort(values, kind="stable")
    v, w = np.asarray(values)[order], np.asarray(weights)[order]
    total = w.sum()
    cdf = (np.cumsum(w) - 0.5 * w) / total
    return np.interp(q, cdf, v)


@dataclass(frozen=True)
class ModelFit:
    """A fitted model of the robust space.

    Attributes
    ----------
    model : RobustModel
    log_marginal, log_error : float
        Log marginal likelihood and an estimate of its numerical error.
    method : str
        How it was computed (``closed form``, ``quadrature (15^5 nodes)``, ...).
    likelihood : str
        Which likelihood (:data:`NORMAL_APPROXIMATION`, or the binomial-normal one).
    draws : dict of str to numpy.ndarray
        Natural-scale parameters at the posterior's nodes (``mu`` benefit-oriented, ``tau``,
        ``b``, ``omega``), with their probabilities in ``weights``: posterior means are
        weighted sums over them (as accurate as the marginal likelihood).
    weights : numpy.ndarray
    mu_cdf : callable, optional
        The posterior CDF of mu at any values (between the nodes too); None for a model
        without an effect (mu = 0).
    """

    model: RobustModel
    log_marginal: float
    log_error: float
    method: str
    likelihood: str
    draws: dict[str, np.ndarray] = field(repr=False)
    weights: np.ndarray = field(repr=False)
    mu_cdf: Callable[[np.ndarray], np.ndarray] | None = field(default=None, repr=False)

    def cdf(self, values: np.ndarray) -> np.ndarray:
        """Posterior CDF of mu (benefit-oriented) at ``values``; a step at 0 without effect."""
        values = np.asarray(values, dtype=float)
        if self.mu_cdf is None:
            return (values >= 0).astype(float)
        return self.mu_cdf(values)

    def summary(self, name: str) -> dict[str, float]:
        """Posterior mean, median and 95% interval of ``mu``, ``tau`` or ``b``.

        mu's quantiles invert :meth:`cdf`; tau's and b's are the nodes' weighted quantiles.
        """
        values = self.draws[name]
        if np.ptp(values) == 0:
            value = float(values[0])
            return {"mean": value, "median": value, "ci_low": value, "ci_high": value}
        q = [0.025, 0.5, 0.975]
        if name == "mu" and self.mu_cdf is not None:
            low, median, high = cdf_quantiles(self.cdf, values, self.weights, q)
        else:
            low, median, high = weighted_quantiles(values, self.weights, q)
        return {"mean": float((values * self.weights).sum()), "median": float(median),
                "ci_low": float(low), "ci_high": float(high)}

    def omega_means(self) -> list[float]:
        """Posterior means of the selection weights (1 for the first interval)."""
        return [float(x) for x in (self.draws["omega"] * self.weights[:, None]).sum(0)]


def cdf_quantiles(cdf: Callable[[np.ndarray], np.ndarray], values: np.ndarray,
                  weights: np.ndarray, q: Sequence[float], points: int = 4001) -> np.ndarray:
    """Invert a CDF on a fine grid spanning the nodes that carry mass (monotone-clipped)."""
    lo, hi = weighted_quantiles(values, weights, [1e-7, 1 - 1e-7])
    span = hi - lo
    grid = np.linspace(lo - 0.05 * span, hi + 0.05 * span, points)
    probs = np.maximum.accumulate(cdf(grid))
    return np.interp(q, probs + np.arange(points) * 1e-15, grid)


#: Fits one model of the space to the data: the interface of a no-bias engine.
NoBiasEngine = Callable[[RobustModel, StudyData, RobustPriors], ModelFit]


def _starts(model: RobustModel, data: StudyData, n_weights: int) -> list[np.ndarray]:
    """Return starting points of the mode search: the inverse-variance mean, modest tau, b."""
    w = 1.0 / data.vi
    mean = float((w * data.yi).sum() / w.sum())
    first = {"mu": mean, "log_tau": np.log(0.2), "log_b": np.log(0.5)}
    second = {"mu": 0.0, "log_tau": np.log(0.05), "log_b": np.log(0.05)}
    out = []
    for start, ratio in ((first, 1.0), (second, -1.0)):
        names = model.parameters(n_weights)
        out.append(np.array([start.get(p, ratio) for p in names], dtype=float))
    return out


def normal_approximation(model: RobustModel, data: StudyData,
                         priors: RobustPriors) -> ModelFit:
    """Fit a model of the space on the normal approximation of the studies' log ratios.

    Parameters
    ----------
    model : RobustModel
    data : StudyData
        Benefit-oriented log ratios and variances.
    priors : RobustPriors

    Returns
    -------
    ModelFit
    """
    n_weights = len(priors.steps)
    dims = len(model.parameters(n_weights))

    def density(theta: np.ndarray) -> np.ndarray:
        return log_posterior(model, priors, data, theta)

    integral = integrate(density, _starts(model, data, n_weights))
    draws: dict[str, Any] = unpack(model, integral.nodes, n_weights)
    method = ("closed form" if dims == 0
              else f"quadrature ({integral.points}^{dims} nodes)")
    # mu is the first parameter of an effect model: its marginal is the grid's first axis.
    return ModelFit(model, integral.log_z, integral.log_error, method, NORMAL_APPROXIMATION,
                    draws, integral.weights, integral.first_cdf if model.effect else None)
