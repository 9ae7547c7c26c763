"""Draws from tabulated conditionals: quantiles interpolated between nodes, against scipy."""

from __future__ import annotations

import numpy as np
from scipy import stats

from rebayes.bayes.exact.draws import blended_inverse_cdf, bracket, quantile_nodes

X = np.linspace(-8.0, 8.0, 81)


def test_a_conditional_whose_shape_changes_is_drawn_at_scipys_quantiles():
    # Skew-normal densities whose shape a runs over [0, 4]: tabulated at 33 nodes, drawn
    # anywhere between them; scipy's quantile function is the reference.
    rng = np.random.default_rng(5)
    a = rng.uniform(0.0, 4.0, 4000)
    u = rng.uniform(0.001, 0.999, 4000)
    nodes = quantile_nodes(a, 33)
    k, frac = bracket(a, nodes)
    log_d = stats.skewnorm(nodes[:, None]).logpdf(X[None, :])
    out = blended_inverse_cdf(log_d, X, np.stack([k, k + 1], 1), np.stack([1 - frac, frac], 1), u)
    exact = stats.skewnorm(a).ppf(u)
    # The grid's step is 0.2; a flat density within each cell was off by up to 0.032.
    assert np.max(np.abs(out - exact)) < 0.012
    assert np.mean(np.abs(out - exact)) < 0.0006


def test_bilinear_blending_of_a_location_and_scale_family_is_exact_up_to_the_grid():
    rng = np.random.default_rng(6)
    m, s = rng.uniform(-1, 1, 3000), rng.uniform(0.5, 1.5, 3000)
    u = rng.uniform(0.001, 0.999, 3000)
    m_nodes, s_nodes = quantile_nodes(m, 9), quantile_nodes(s, 9)
    km, fm = bracket(m, m_nodes)
    ks, fs = bracket(s, s_nodes)
    grid_m, grid_s = (g.ravel() for g in np.meshgrid(m_nodes, s_nodes, indexing="ij"))
    log_d = stats.norm(grid_m[:, None], grid_s[:, None]).logpdf(X[None, :])
    n = s_nodes.size
    corners = np.stack([km * n + ks, km * n + ks + 1, (km + 1) * n + ks, (km + 1) * n + ks + 1], 1)
    weights = np.stack([(1 - fm) * (1 - fs), (1 - fm) * fs, fm * (1 - fs), fm * fs], 1)
    out = blended_inverse_cdf(log_d, X, corners, weights, u)
    # m + s z(u) is bilinear in (m, s): only the within-cell rule of the grid is left.
    error = np.abs(out - stats.norm(m, s).ppf(u))
    assert error.max() < 0.005  # 0.017 with a flat density within each cell


def test_nodes_and_brackets():
    nodes = quantile_nodes(np.array([2.0, 2.0, 2.0]), 5)
    assert nodes.tolist() == [2.0, 3.0]  # one value: a cell of width 1 around it
    k, frac = bracket(np.array([0.0, 1.5, 9.0]), np.array([0.0, 1.0, 2.0, 3.0]))
    assert k.tolist() == [0, 1, 2] and frac.tolist() == [0.0, 0.5, 1.0]
