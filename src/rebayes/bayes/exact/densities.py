"""Log densities of the prior families: the exact engine's only view of a prior.

Each family of :mod:`rebayes.bayes.priors` gets one function ``(distribution, x) -> log
density`` registered with :func:`log_density_of`; a family without one falls back to its own
``frozen().logpdf`` (scipy.stats, slower to import but always right). So a new family works
at once, and one function makes it fast.

A Normal prior on the effects makes the normal-normal model conjugate given tau
(:mod:`rebayes.bayes.exact.normal`); any other effect family goes through the grid, with
:func:`gaussian_surrogate` only placing the grid.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from rebayes.bayes.priors import HalfCauchy, HalfNormal, LogNormalTau2, Normal

__all__ = ["gaussian_surrogate", "log_density", "log_density_of"]

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)

LogDensity = Callable[[Any, np.ndarray], np.ndarray]
_REGISTRY: dict[type, LogDensity] = {}


def log_density_of(family: type) -> Callable[[LogDensity], LogDensity]:
    """Register the log density of a prior family (a decorator).

    Examples
    --------
    >>> from rebayes.bayes.priors import HalfNormal
    >>> import numpy as np
    >>> float(log_density(HalfNormal(1.0), np.array(0.0)))  # log(2 / sqrt(2 pi))
    -0.2257913526447274
    """

    def register(function: LogDensity) -> LogDensity:
        _REGISTRY[family] = function
        return function

    return register


def log_density(distribution: Any, x: np.ndarray) -> np.ndarray:
    """Log density of ``distribution`` at ``x`` (``-inf`` outside its support)."""
    x = np.asarray(x, dtype=float)
    function = _REGISTRY.get(type(distribution))
    if function is None:
        with np.errstate(divide="ignore"):
            return np.asarray(distribution.frozen().logpdf(x), dtype=float)
    return function(distribution, x)


@log_density_of(Normal)
def _normal(p: Normal, x: np.ndarray) -> np.ndarray:
    return -0.5 * ((x - p.mu) / p.sigma) ** 2 - math.log(p.sigma) - _LOG_SQRT_2PI


@log_density_of(HalfNormal)
def _half_normal(p: HalfNormal, tau: np.ndarray) -> np.ndarray:
    value = math.log(2.0) - 0.5 * (tau / p.sigma) ** 2 - math.log(p.sigma) - _LOG_SQRT_2PI
    return np.where(tau >= 0, value, -np.inf)


@log_density_of(HalfCauchy)
def _half_cauchy(p: HalfCauchy, tau: np.ndarray) -> np.ndarray:
    value = math.log(2.0 / (math.pi * p.scale)) - np.log1p((tau / p.scale) ** 2)
    return np.where(tau >= 0, value, -np.inf)


@log_density_of(LogNormalTau2)
def _lognormal_tau2(p: LogNormalTau2, tau: np.ndarray) -> np.ndarray:
    # tau^2 ~ LogNormal(mu, sigma)  <=>  log tau ~ Normal(mu / 2, sigma / 2).
    m, s = p.mu / 2.0, p.sigma / 2.0
    with np.errstate(divide="ignore"):
        log_tau = np.log(np.where(tau > 0, tau, 1.0))
    value = -log_tau - math.log(s) - _LOG_SQRT_2PI - 0.5 * ((log_tau - m) / s) ** 2
    return np.where(tau > 0, value, -np.inf)


def gaussian_surrogate(distribution: Any) -> tuple[float, float, bool]:
    """Return ``(mean, sd, exact)``: a normal that stands in for an effect prior.

    ``exact`` is True for a Normal prior (the surrogate is the prior itself, and the model is
    conjugate given tau). For any other family the median and the interquartile range of
    ``frozen()`` give a normal used only to place the grid; the grid evaluates the prior
    itself.
    """
    if isinstance(distribution, Normal):
        return float(distribution.mu), float(distribution.sigma), True
    frozen = distribution.frozen()
    lo, median, hi = (float(v) for v in frozen.ppf([0.25, 0.5, 0.75]))
    return median, (hi - lo) / 1.3489795003921634, False
