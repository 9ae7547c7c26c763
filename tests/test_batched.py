"""Batched convergence diagnostics against arviz-stats' own, one quantity at a time."""

import warnings

import arviz_stats as azs
import numpy as np
import pytest
import xarray as xr

from rebayes.checks.batched import diagnostics, ess_bulk

SAMPLE_DIMS = ["chain", "draw"]


def _ar1(rng, chains, draws, n, phi):
    x = np.zeros((chains, draws, n))
    noise = rng.normal(size=(chains, draws, n))
    x[:, 0] = noise[:, 0]
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    return x


def _chains(chains, draws, seed=1):
    """Independent, autocorrelated (0.6, 0.97), anticorrelated chains and awkward columns."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([_ar1(rng, chains, draws, 5, phi) for phi in (0.0, 0.6, 0.97, -0.5)],
                       axis=2)
    x[..., 0] = 1.0                                   # constant
    x[..., 1] = (x[..., 2] > 1.5).astype(float)       # an indicator (a probability's draws)
    x[..., 3] = np.round(x[..., 3])                   # ties
    x[:, : draws // 2, 4] += 3.0                      # not converged
    x[0, :, 6] = np.nan if chains > 1 else x[0, :, 6]  # a NaN chain
    return x


def _arviz(x):
    """arviz-stats' summary diagnostics, quantity by quantity."""
    data = xr.Dataset({"q": (("chain", "draw", "i"), x)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = azs.summary(data, kind="diagnostics", sample_dims=SAMPLE_DIMS, round_to="none")
    return table


@pytest.mark.parametrize("chains, draws", [(4, 1000), (4, 999), (1, 500), (2, 7), (3, 4),
                                            (4, 3)])
def test_every_diagnostic_equals_arviz_stats(chains, draws):
    x = _chains(chains, draws)
    expected = _arviz(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        got = diagnostics(x)
        bulk = ess_bulk(x)
    for name in ("ess_bulk", "ess_tail", "r_hat", "mcse_mean", "mcse_sd"):
        np.testing.assert_allclose(got[name], expected[name].to_numpy(float), rtol=1e-9,
                                   err_msg=f"{name} ({chains} chains x {draws} draws)")
    np.testing.assert_allclose(bulk, expected["ess_bulk"].to_numpy(float), rtol=1e-9)


def test_the_cases_cover_geyers_branches():
    """The simulated chains must reach both ends of Geyer's sequence, or the test above
    proves less than it says: an early negative pair (anticorrelated chains), a long
    positive run (phi 0.97), the constant and the NaN quantity."""
    x = _chains(4, 1000)
    ess = _arviz(x)["ess_bulk"].to_numpy(float)
    assert ess[0] == 4000                  # constant: arviz returns the number of draws
    assert np.isnan(ess[6])                # NaN draws
    assert ess[10:15].max() < 200          # phi 0.97: ESS ~ 4000 (1 - 0.97) / 1.97 ~ 61
    assert ess[15:].min() > 4000           # anticorrelated: ESS above the number of draws


def test_short_chains_where_geyers_loop_ends_at_its_lag_limit():
    """Short chains run Geyer's loop to its last lag with a pair still non-negative (its
    even lag sometimes negative): the branch ordinary fits rarely reach."""
    rng = np.random.default_rng(7)
    x = np.concatenate([_ar1(rng, 4, 16, 120, 0.5), _ar1(rng, 4, 16, 120, 0.9)], axis=2)
    expected = _arviz(x)
    got = diagnostics(x)
    for name in ("ess_bulk", "ess_tail", "mcse_mean", "mcse_sd"):
        np.testing.assert_allclose(got[name], expected[name].to_numpy(float), rtol=1e-9,
                                   err_msg=name)
