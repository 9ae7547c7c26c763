"""R-hat, ESS and MCSE of many quantities at once: arviz-stats' estimators, batched.

arviz-stats computes these diagnostics one quantity at a time, in Python (about 2.7 ms per
quantity here), and a report checks about 4,500 quantities (107 fits of 40-50 quantities each),
which made diagnostics the largest part of a report built from nothing. The functions below
apply the same estimators to a ``(chain, draw, quantity)`` array in a few numpy calls: the same
chain splitting, rank normalisation (Blom's offset 3/8), arviz-stats' own FFT autocovariance
and quantiles, and Geyer's initial positive and monotone sequences written as a cumulative
minimum over pairs of autocorrelations instead of a loop. ``tests/test_batched.py`` checks
every function against arviz-stats itself (to 1e-9) on real fits and on simulated chains
(autocorrelated, constant, binary, odd draw counts, one chain).

References
----------
Vehtari A, Gelman A, Simpson D, Carpenter B, Bürkner P-C. Rank-normalization, folding, and
localization: an improved R-hat for assessing convergence of MCMC. Bayesian Analysis.
2021;16:667-718. doi:10.1214/20-BA1221.
Geyer CJ. Practical Markov chain Monte Carlo. Statistical Science. 1992;7:473-483.
"""

from __future__ import annotations

import math

import numpy as np
import xarray as xr
from arviz_stats.base import array_stats
from arviz_stats.validate import validate_ci_prob
from scipy import stats

__all__ = ["diagnostics", "draws_array", "ess_bulk"]

# arviz-stats' validity rule: at least 4 draws (and 2 chains for R-hat), no NaN.
_MIN_DRAWS = 4


def draws_array(data: xr.Dataset) -> np.ndarray:
    """Every scalar of ``data`` as one ``(chain, draw, quantity)`` array.

    Variable by variable, each one's other dimensions flattened in their order (C order).
    """
    return np.concatenate([
        var.values.reshape(var.sizes["chain"], var.sizes["draw"], math.prod(var.shape[2:]))
        for var in (v.transpose("chain", "draw", ...) for v in data.data_vars.values())
    ], axis=2)


def _invalid(values: np.ndarray, min_chains: int = 1) -> np.ndarray:
    """Quantities arviz-stats returns NaN for: any NaN, or too few chains or draws."""
    chains, draws = values.shape[:2]
    bad = np.isnan(values).any(axis=(0, 1))
    if chains < min_chains or draws < _MIN_DRAWS:
        bad[:] = True
    return bad


def _split(values: np.ndarray) -> np.ndarray:
    """Split each chain into its first and last half, first halves first, as arviz-stats does.

    The middle draw of an odd count is dropped.
    """
    half = values.shape[1] // 2
    return np.concatenate([values[:, :half], values[:, values.shape[1] - half:]], axis=0)


def _z_scale(values: np.ndarray) -> np.ndarray:
    """Return the normal scores of the ranks over all chains and draws, per quantity."""
    chains, draws, n = values.shape
    flat = np.ascontiguousarray(values.reshape(chains * draws, n).T)
    rank = stats.rankdata(flat, method="average", axis=1)
    offset = 3 / 8  # Blom (1958), as arviz-stats
    z = stats.norm.ppf((rank - offset) / (chains * draws - 2 * offset + 1))
    return z.T.reshape(values.shape)


def _geyer_tau(rho: np.ndarray, n_draw: int) -> np.ndarray:
    """Integrated autocorrelation time from autocorrelations ``rho`` (lag, quantity).

    arviz-stats' loop, pair by pair: pairs P_k = rho[2k] + rho[2k+1] are kept while every
    earlier pair is positive (Geyer's initial positive sequence; at most the pairs its loop
    reaches below lag n - 3), made monotone (each pair no larger than the one before: a
    cumulative minimum), and the even lag after the last pair is added when positive.
    """
    iterations = len(range(1, n_draw - 3, 2))
    n_pairs = iterations + 1
    even, odd = rho[0:2 * n_pairs:2], rho[1:2 * n_pairs:2]
    pairs = even + odd
    stops = pairs[:iterations] <= 0
    kept = np.full(rho.shape[1], iterations)
    if iterations:
        kept = np.where(stops.any(axis=0), stops.argmax(axis=0), iterations)
    monotone = np.minimum.accumulate(pairs[:iterations], axis=0)
    sums = np.concatenate([np.zeros((1, rho.shape[1])), np.cumsum(monotone, axis=0)])
    columns = np.arange(rho.shape[1])
    last_even, last_pair = even[kept, columns], pairs[kept, columns]
    # The loop stores the last pair when it is non-negative and then the even lag when
    # positive; with no pair kept, the even term is rho[0] = 1.
    tail = np.where(kept == 0, 1.0, np.where((last_pair >= 0) | (last_even > 0), last_even, 0.0))
    return -1.0 + 2.0 * sums[kept, columns] + tail


def _ess(values: np.ndarray, relative: bool = False) -> np.ndarray:
    """ESS of each quantity of (chain, draw, quantity) draws, chains as given."""
    n_chain, n_draw, _ = values.shape
    size = n_chain * n_draw
    if n_draw < 2:  # fewer than 4 draws before splitting: invalid, see _invalid
        return np.full(values.shape[2], np.nan)
    acov = array_stats.autocov(values, axis=1)
    mean_var = acov[:, 0].mean(axis=0) * n_draw / (n_draw - 1.0)
    var_plus = mean_var * (n_draw - 1.0) / n_draw
    if n_chain > 1:
        var_plus = var_plus + values.mean(axis=1).var(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1.0 - (mean_var - acov.mean(axis=0)) / var_plus
        rho[0] = 1.0
        tau = np.maximum(_geyer_tau(rho, n_draw), 1 / np.log10(size))
        ess = (1.0 if relative else size) / tau
    ess[np.isnan(rho).any(axis=0)] = np.nan
    # A constant quantity: arviz-stats returns the number of draws (even when relative).
    constant = np.ptp(values, axis=(0, 1)) < np.finfo(float).resolution
    return np.where(constant, float(size), ess)


def ess_bulk(values: np.ndarray) -> np.ndarray:
    """Bulk ESS (rank-normalised split chains) of each quantity.

    Parameters
    ----------
    values : numpy.ndarray
        Draws, shape ``(chain, draw, quantity)``.

    Returns
    -------
    numpy.ndarray
        One value per quantity, as :func:`arviz_stats.ess` with ``method="bulk"``.
    """
    out = _ess(_z_scale(_split(values)))
    out[_invalid(values)] = np.nan
    return out


def _ess_tail(values: np.ndarray, prob: float | None) -> np.ndarray:
    """Return the smaller ESS of the two tail quantiles' indicators (arviz's ``"tail"``)."""
    prob = validate_ci_prob(prob)
    low, high = sorted((prob, 1 - prob))
    # arviz-stats' quantile puts the probabilities last: (quantity, 2).
    cuts = array_stats.quantile(values.reshape(-1, values.shape[2]), [low, high], axis=0).T
    return np.minimum(*(_ess(_split((values <= cut).astype(float))) for cut in cuts))


def _rhat(values: np.ndarray) -> np.ndarray:
    n_draw = values.shape[1]
    between = n_draw * values.mean(axis=1).var(axis=0, ddof=1)
    within = values.var(axis=1, ddof=1).mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt((between / within + n_draw - 1) / n_draw)


def diagnostics(values: np.ndarray, prob: float | None = None) -> dict[str, np.ndarray]:
    """Bulk and tail ESS, rank R-hat and the MCSEs of the mean and sd of each quantity.

    Parameters
    ----------
    values : numpy.ndarray
        Draws, shape ``(chain, draw, quantity)``.
    prob : float, optional
        The tail ESS's quantiles are ``(1 - prob, prob)`` sorted; default arviz's
        ``rcParams["stats.ci_prob"]``, as :func:`arviz_stats.summary` uses.

    Returns
    -------
    dict of str to numpy.ndarray
        ``ess_bulk``, ``ess_tail``, ``r_hat``, ``mcse_mean``, ``mcse_sd``: one value per
        quantity, as :func:`arviz_stats.summary` (``kind="diagnostics"``) computes them. NaN
        where arviz-stats gives NaN: a NaN draw, fewer than 4 draws, R-hat with one chain or
        of a constant quantity.
    """
    split = _split(values)
    z = _z_scale(split)  # shared by the bulk ESS and the bulk R-hat
    folded = _z_scale(np.abs(split - np.median(split, axis=(0, 1))))
    bulk, tail = _rhat(z), _rhat(folded)
    size = values.shape[0] * values.shape[1]
    squared = (values - values.mean(axis=(0, 1))) ** 2
    evar = squared.mean(axis=(0, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        # sd (ddof 1) / sqrt(ESS of the mean), and arviz-stats' delta-method MCSE of the sd.
        mcse_mean = np.sqrt(evar * size / (size - 1) / _ess(split))
        varvar = ((squared**2).mean(axis=(0, 1)) - evar**2) / _ess(_split(squared))
        mcse_sd = np.sqrt(varvar / evar / 4)
    out = {
        "ess_bulk": _ess(z),
        "ess_tail": _ess_tail(values, prob),
        # arviz-stats takes Python's max(bulk, tail): bulk unless tail is larger.
        "r_hat": np.where(tail > bulk, tail, bulk),
        "mcse_mean": mcse_mean,
        "mcse_sd": mcse_sd,
    }
    invalid = _invalid(values)
    for value in out.values():
        value[invalid] = np.nan
    out["r_hat"][_invalid(values, min_chains=2)] = np.nan
    return out
