"""Inverse-CDF sampling from tabulated densities (draws for figures, never for numbers)."""

from __future__ import annotations

import numpy as np
from scipy import special

from rebayes.bayes.exact.grid import refine_log_density
from rebayes.bayes.exact.marginals import cumulative_integral
from rebayes.bayes.exact.slices import Slices, ball_grid

__all__ = ["inverse_cdf", "sample_grid"]

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
        The quantiles, linear within the cells of the (refined) grid.
    """
    if factor > 1:
        fine = np.exp(refine_log_density(log_density, factor))
    else:
        fine = np.exp(log_density - np.max(log_density, axis=1, keepdims=True))
    fine_step = np.asarray(step, dtype=float) / factor
    cdf = cumulative_integral(fine, fine_step)
    cdf /= cdf[:, -1:]
    cdf = np.maximum.accumulate(cdf, axis=1)
    k = np.clip((cdf < u[:, None]).sum(axis=1) - 1, 0, cdf.shape[1] - 2)
    rows = np.arange(len(u))
    lo, hi = cdf[rows, k], cdf[rows, k + 1]
    frac = np.where(hi > lo, (u - lo) / np.where(hi > lo, hi - lo, 1.0), 0.5)
    return np.asarray(start + fine_step * (k + np.clip(frac, 0.0, 1.0)))


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
