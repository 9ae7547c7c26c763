"""Inverse-CDF sampling from tabulated densities (draws for figures, never for numbers)."""

from __future__ import annotations

import numpy as np
from scipy import special

from rebayes.bayes.exact.grid import refine_log_density
from rebayes.bayes.exact.marginals import cumulative_integral
from rebayes.bayes.exact.slices import Slices, ball_grid

__all__ = ["blended_inverse_cdf", "bracket", "inverse_cdf", "quantile_nodes", "sample_grid"]

_FLOOR = -700.0


def inverse_cdf(log_density: np.ndarray, start: np.ndarray, step: np.ndarray,
                u: np.ndarray, factor: int = 4) -> np.ndarray:
    """Invert each row's distribution function at ``u``.

    Parameters
    ----------
    log_density : ndarray, shape (draw, n)
        Unnormalised log densities on the uniform grids ``start + step * i``.
    start, step, u : ndarray, shape (draw,)

    factor : int
        Refine the densities ``factor`` times (:func:`refine_log_density`) first; 1 for
        densities tabulated finely already.

    Returns
    -------
    ndarray, shape (draw,)
        The quantiles, the density log-linear within the cells of the (refined) grid.
    """
    if factor > 1:
        fine = np.exp(refine_log_density(log_density, factor))
    else:
        fine = np.exp(log_density - np.max(log_density, axis=1, keepdims=True))
    fine_step = np.asarray(step, dtype=float) / factor
    return np.asarray(start + fine_step * _position(_cdf(fine, fine_step), fine, u))


def _cdf(density: np.ndarray, step: np.ndarray | float) -> np.ndarray:
    """Each row's distribution function on its grid, normalised and non-decreasing."""
    cdf = cumulative_integral(density, np.broadcast_to(step, density.shape[:1]))
    return np.maximum.accumulate(cdf / cdf[:, -1:], axis=1)


def _position(cdf: np.ndarray, density: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Where each row's distribution function reaches ``u``, in grid steps from its start."""
    k = np.clip((cdf < u[:, None]).sum(axis=1) - 1, 0, cdf.shape[1] - 2)
    rows = np.arange(len(u))
    return k + _within_cell(cdf[rows, k], cdf[rows, k + 1], density[rows, k],
                            density[rows, k + 1], u)


def _within_cell(lo: np.ndarray, hi: np.ndarray, f_lo: np.ndarray, f_hi: np.ndarray,
                 u: np.ndarray) -> np.ndarray:
    """Where in its cell the distribution function reaches u, the density log-linear there.

    ``F = lo + (hi - lo) (e^{bt} - 1) / (e^b - 1)`` with ``b = log(f_hi / f_lo)``: exact for
    exponential tails, where a linear distribution function (a flat density) is off by up to
    a sixth of a cell.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        r = np.clip(np.where(hi > lo, (u - lo) / np.where(hi > lo, hi - lo, 1.0), 0.5), 0.0, 1.0)
        b = np.log(f_hi) - np.log(f_lo)
        curved = np.log1p(r * np.expm1(b)) / b
        t = np.where(np.isfinite(curved) & (np.abs(b) > 1e-8), curved, r)
    return np.clip(t, 0.0, 1.0)


def sample_grid(slices: Slices, node: int, uniforms: np.ndarray) -> np.ndarray:
    """Draw ``phi`` given tau node ``node``, one coordinate at a time.

    The first coordinate (in the node's standardised frame) from its marginal on the grid,
    each next one from its conditional given those drawn (the grid's log density linearly
    interpolated between grid lines), each by :func:`inverse_cdf`.

    Parameters
    ----------
    uniforms : ndarray, shape (draw, p)
    """
    p = slices.problem.p
    h = slices.step
    points, _, size = ball_grid(p, h, slices.radius)
    mean, chol = slices.mean[node], slices.chol[node]
    phi = mean + points @ chol.T
    log_d = slices.log_density(phi[None], np.array([node]))[0]
    half = (size - 1) // 2
    index = np.rint(points / h).astype(np.int64) + half
    tensor = np.full((size,) * p, _FLOOR)
    tensor[tuple(index.T)] = np.maximum(log_d - np.max(log_d), _FLOOR)
    draws = len(uniforms)
    start = -h * half
    u = np.empty((draws, p))
    current = np.broadcast_to(tensor, (draws, *tensor.shape))
    for i in range(p):
        axes = tuple(range(2, current.ndim))
        marginal = special.logsumexp(current, axis=axes) if axes else current  # (draw, size)
        u[:, i] = inverse_cdf(marginal, np.full(draws, start), np.full(draws, h),
                              uniforms[:, i])
        if i < p - 1:
            position = (u[:, i] - start) / h
            k = np.clip(np.floor(position).astype(np.int64), 0, size - 2)
            t = np.clip(position - k, 0.0, 1.0).reshape(-1, *([1] * (current.ndim - 2)))
            rows = np.arange(draws)
            current = (1 - t) * current[rows, k] + t * current[rows, k + 1]
    return np.asarray(mean + u @ chol.T)


def quantile_nodes(values: np.ndarray, count: int) -> np.ndarray:
    """``count`` nodes spread as ``values`` are (their quantiles), ends included, distinct."""
    nodes = np.unique(np.quantile(values, np.linspace(0.0, 1.0, count)))
    return nodes if nodes.size > 1 else np.array([nodes[0], nodes[0] + 1.0])


def bracket(values: np.ndarray, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each value's cell among sorted ``nodes``: the lower node's index and the fraction."""
    k = np.clip(np.searchsorted(nodes, values, side="right") - 1, 0, nodes.size - 2)
    frac = np.clip((values - nodes[k]) / (nodes[k + 1] - nodes[k]), 0.0, 1.0)
    return k, frac


def blended_inverse_cdf(log_density: np.ndarray, x: np.ndarray, corners: np.ndarray,
                        weights: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Standardised quantiles interpolated between conditional densities tabulated at nodes.

    A conditional density that moves smoothly with what it is conditioned on is tabulated at
    a few nodes of it, each on the same standardised grid ``x`` (its own centre and width
    taken out); a draw's standardised quantile is the weighted mean of those of the nodes
    around it (linear or bilinear interpolation), each by :func:`inverse_cdf`'s rule. The
    caller puts the draw's own centre and width back: the interpolation then only carries
    the change of shape, which is slow.

    Parameters
    ----------
    log_density : ndarray, shape (node, point)
        Unnormalised log densities on ``x`` (uniform).
    corners, weights : ndarray, shape (draw, corner)
        The nodes around each draw and their interpolation weights (summing to 1).
    u : ndarray, shape (draw,)
    """
    step = x[1] - x[0]
    density = np.exp(log_density - np.max(log_density, axis=1, keepdims=True))
    cdf = _cdf(density, step)
    # Every row shifted by twice its index is one sorted array: one search finds each draw's
    # cell in its own row, with no row copied per draw (the shift moves a value by at most
    # 1e-13, so a draw that close to a cell's edge may fall in the neighbouring cell, where
    # _within_cell puts it at the same edge).
    n = cdf.shape[1]
    offset = 2.0 * np.arange(len(cdf))
    flat = (cdf + offset[:, None]).ravel()
    out = np.zeros(len(u))
    for c in range(corners.shape[1]):
        node = corners[:, c]
        k = np.clip(np.searchsorted(flat, u + offset[node]) - node * n - 1, 0, n - 2)
        position = k + _within_cell(cdf[node, k], cdf[node, k + 1], density[node, k],
                                    density[node, k + 1], u)
        out += weights[:, c] * (x[0] + step * position)
    return out
