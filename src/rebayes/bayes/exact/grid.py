"""Grids and rules: the heterogeneity grid, Gauss-Hermite rules, refining tabulated densities.

**The tau grid.** tau = c sinh(v) with v = 0, h, 2h, ..., V: uniform steps of c h near 0 and
of relative size h far out, so one grid serves posteriors that pile up at tau = 0 (a
half-normal prior and homogeneous trials) and long heavy tails (a half-Cauchy prior and two
trials). The posterior density in v, ``p(tau | y) c cosh v``, is an even function of v (the
priors' densities and the likelihood are even in tau, the likelihood because the random
effects are symmetric), so the trapezoid rule with half a weight at v = 0 is the trapezoid rule
of an even function on the whole line: for an integrand analytic in a strip its error falls
exponentially in 1/h (Trefethen LN, Weideman JAC. The exponentially convergent trapezoidal
rule. SIAM Rev 2014;56:385-458). :func:`place_tau_grid` picks c, h and V from an approximate
posterior of tau; the engines check the exact one and extend or refine
(:class:`TauGrid` ``.extended``, ``.refined``).

**Inner grids** are uniform in standardised units, centred and scaled by a normal
approximation of each conditional posterior: the same exponentially convergent trapezoid rule
on the real line.

**Refining a density.** A density tabulated on such a coarse grid is interpolated (its log, a
near-quadratic function, by local Lagrange polynomials of degree 5) onto a grid 8 times finer,
on which :class:`~rebayes.bayes.exact.marginals.GridMixture` integrates it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np

__all__ = [
    "EDGE",
    "FINE",
    "MAX_TAU_NODES",
    "TauGrid",
    "hermite_rule",
    "next_grid",
    "normal_rule",
    "place_tau_grid",
    "refine_log_density",
]

#: Fine points per coarse step when a tabulated density is refined.
FINE = 8
#: A log density this far below its maximum counts as zero.
LOG_FLOOR = 200.0
#: The tau grid ends where the posterior density (in v) is this far below its peak (log).
EDGE = math.log(1e-11)
#: Most nodes a tau grid may grow to.
MAX_TAU_NODES = 4000


@cache
def hermite_rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes and log weights for integrals against ``exp(-x^2)``."""
    x, w = np.polynomial.hermite.hermgauss(n)
    return x, np.log(w)


@cache
def normal_rule(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes and weights for ``E[g(Z)]``, Z ~ N(0, 1)."""
    x, w = np.polynomial.hermite.hermgauss(n)
    return x * math.sqrt(2.0), w / math.sqrt(math.pi)


@dataclass(frozen=True)
class TauGrid:
    """Nodes tau_j = scale * sinh((first + j) * step), j = 0..n-1, with their trapezoid weights.

    Attributes
    ----------
    scale : float
        c: where the grid turns from uniform in tau to uniform in log tau.
    step : float
        h, the step in v = asinh(tau / c).
    n : int
        Number of nodes.
    first : int
        Index of the first node: 0 starts at tau = 0 (with half a weight, the trapezoid rule
        of the even density); more when the posterior has no mass near 0 worth a node.
    """

    scale: float
    step: float
    n: int
    first: int = 0

    @property
    def v(self) -> np.ndarray:
        """The nodes in v = asinh(tau / scale)."""
        return self.step * (self.first + np.arange(self.n))

    @property
    def tau(self) -> np.ndarray:
        """The nodes in tau."""
        return self.scale * np.sinh(self.v)

    @property
    def log_weight(self) -> np.ndarray:
        """Log of each node's trapezoid weight in tau: ``log(c cosh(v) h)``, halved at v = 0."""
        out = np.log(self.scale * np.cosh(self.v) * self.step)
        if self.first == 0:
            out[0] -= math.log(2.0)
        return out

    def extended(self, factor: float = 1.25) -> TauGrid:
        """Return the grid reaching ``factor`` times further up in v (the same nodes, more)."""
        more = int(math.ceil((self.n - 1) * (factor - 1.0))) + 1
        return TauGrid(self.scale, self.step, self.n + more, self.first)

    def lowered(self) -> TauGrid:
        """Return the grid starting an eighth of its length (at least a node) lower, or at 0."""
        first = max(0, self.first - max(1, self.n // 8))
        return TauGrid(self.scale, self.step, self.n + self.first - first, first)

    def refined(self) -> TauGrid:
        """Return the grid with half the step (every old node is a node of it)."""
        return TauGrid(self.scale, self.step / 2, 2 * self.n - 1, 2 * self.first)


def place_tau_grid(
    log_density: Callable[[np.ndarray], np.ndarray],
    reference: float = 1.0,
    steps_per_sd: float = 6.0,
    tail: float = 1e-12,
) -> TauGrid:
    """Choose a tau grid for a posterior whose (approximate) log density is ``log_density``.

    Parameters
    ----------
    log_density : callable
        Vectorised unnormalised log density of tau (an approximation is enough: the engines
        check the exact posterior on the grid and extend or refine it).
    reference : float
        A typical heterogeneity on the model's scale; the scan covers 1e-6 to 1e4 times it.
    steps_per_sd : float
        Grid steps per posterior standard deviation of v.
    tail : float
        Upper-tail probability left beyond the last node.

    Returns
    -------
    TauGrid
        scale c = the 25% quantile of tau (at least 1e-4 of the median) when the posterior
        density at tau = 0 is within exp(-30) of its peak, else a tenth of the ``tail``
        quantile (the posterior's log density is smooth in log tau, not in tau near 0: the
        log-normal prior); step h = sd(v) / ``steps_per_sd`` (between 0.01 and 0.25); from
        the ``tail`` quantile (or 0) to the ``1 - tail`` quantile.
    """
    tau = reference * np.geomspace(1e-6, 1e4, 1201)
    log_mass = np.asarray(log_density(tau), dtype=float) + np.log(tau)  # density in log tau
    log_mass = np.where(np.isfinite(log_mass), log_mass, -np.inf)
    peak = np.max(log_mass)
    mass = np.exp(log_mass - peak)
    cumulative = np.cumsum(mass) / mass.sum()
    median = float(np.interp(0.5, cumulative, tau))
    lower = float(np.interp(tail, cumulative, tau))
    density = log_mass - np.log(tau)
    if density[0] - np.max(density) > -30.0:
        # Mass down to tau = 0: uniform steps near 0 up to the lower quartile.
        scale = max(float(np.interp(0.25, cumulative, tau)), 1e-4 * median)
    else:
        # No mass near 0 (a prior vanishing there, or data against homogeneity): steps
        # uniform in log tau over the whole posterior, where its log density is smooth.
        scale = max(lower / 10.0, float(tau[0]))
    reached = cumulative[-2] >= 1.0 - tail
    upper = float(np.interp(1.0 - tail, cumulative, tau)) if reached else float(tau[-1])
    v = np.arcsinh(tau / scale)
    # density in v: p(tau) c cosh v = p(tau) sqrt(tau^2 + c^2); log_mass holds p(tau) tau.
    log_v = log_mass - np.log(tau) + 0.5 * np.log(tau**2 + scale**2)
    dv = np.gradient(v)
    weight = np.exp(log_v - np.max(log_v)) * dv
    weight /= weight.sum()
    mean = float(weight @ v)
    sd_v = math.sqrt(max(float(weight @ (v - mean) ** 2), 1e-12))
    step = min(max(sd_v / steps_per_sd, 0.01), 0.25)
    end = math.asinh(upper / scale) + 2 * step
    first = int(math.floor(math.asinh(lower / scale) / step)) - 2
    first = first if first > 2 else 0
    return TauGrid(scale, step, int(math.ceil(end / step)) + 1 - first, first)


def next_grid(grid: TauGrid, log_v: np.ndarray, min_steps_per_sd: float) -> TauGrid:
    """Return ``grid`` if it holds the posterior ``log_v``, else a longer, lower or finer one.

    ``log_v`` is the posterior's log density in v at the grid's nodes.

    The posterior must have fallen below :data:`EDGE` of its peak at the grid's ends (at the
    upper end, and at the lower one unless the grid starts at 0), and the step must be below
    ``1 / min_steps_per_sd`` of the posterior sd of v.
    """
    peak = np.max(log_v)
    if log_v[-1] - peak > EDGE:
        return grid.extended()
    if grid.first > 0 and log_v[0] - peak > EDGE:
        return grid.lowered()
    w = np.exp(log_v - peak)
    if grid.first == 0:
        w[0] /= 2
    w /= w.sum()
    mean = float(w @ grid.v)
    sd = math.sqrt(max(float(w @ (grid.v - mean) ** 2), 0.0))
    return grid.refined() if grid.step > sd / min_steps_per_sd else grid


@cache
def _lagrange_matrix(n: int, factor: int, order: int = 6) -> np.ndarray:
    """Matrix taking values at 0..n-1 to values at 0, 1/factor, ..., n-1 (local Lagrange)."""
    fine = np.arange((n - 1) * factor + 1) / factor
    size = min(order, n)
    first = np.clip(np.floor(fine).astype(int) - (size // 2 - 1), 0, max(n - size, 0))
    offsets = np.arange(size)
    diff = fine[:, None] - (first[:, None] + offsets)  # (fine, stencil)
    out = np.zeros((len(fine), n))
    for j in range(size):
        others = offsets != j
        weight = np.prod(diff[:, others], axis=1) / np.prod(j - offsets[others])
        np.add.at(out, (np.arange(len(fine)), first + j), weight)
    return out


def refine_log_density(log_density: np.ndarray, factor: int = FINE,
                       even: bool = False) -> np.ndarray:
    """Interpolate log densities on a coarse uniform grid (last axis) onto a finer one.

    Parameters
    ----------
    log_density : ndarray, shape (..., n)
        Unnormalised log densities; values more than :data:`LOG_FLOOR` below a row's maximum
        are floored there.
    factor : int
        Fine steps per coarse step.
    even : bool
        The row is an even function of the grid variable around its first node (tau's density
        in v around v = 0): interpolate its mirrored extension.

    Returns
    -------
    ndarray, shape (..., (n - 1) * factor + 1)
        The fine log densities, each row shifted so that its maximum is 0. Between two coarse
        nodes the interpolant may exceed the larger of them by at most 0.5 (a density's peak
        between nodes exceeds them by far less), which stops overshoot where the density falls
        off steeply.
    """
    values = np.asarray(log_density, dtype=float)
    peak = np.max(values, axis=-1, keepdims=True)
    values = np.maximum(np.nan_to_num(values - peak, nan=-LOG_FLOOR, neginf=-LOG_FLOOR),
                        -LOG_FLOOR)
    n = values.shape[-1]
    if even:
        values = np.concatenate([values[..., :0:-1], values], axis=-1)
    fine = values @ _lagrange_matrix(values.shape[-1], factor).T
    upper = np.maximum(values[..., :-1], values[..., 1:]) + 0.5
    cell = np.minimum(np.arange(fine.shape[-1]) // factor, values.shape[-1] - 2)
    fine = np.minimum(fine, upper[..., cell])
    if even:
        fine = fine[..., (n - 1) * factor:]
    return np.asarray(fine - np.max(fine, axis=-1, keepdims=True))
