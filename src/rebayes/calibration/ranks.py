"""Ranks of the truth among posterior draws, their uniformity, and interval coverage.

Ranks use ``L = 99`` draws thinned evenly from all chains (Talts et al. section 4: thin to
roughly independent draws); uniformity is tested by chi-square on binned ranks, KS and
ArviZ's PIT-ECDF test (Säilynoja et al. 2022); coverage is the share of central intervals
containing the truth, with its Clopper-Pearson interval and the range expected under
calibration.

References
----------
Säilynoja T, Bürkner P-C, Vehtari A. Graphical test for discrete uniformity and its
applications in goodness-of-fit evaluation and multiple sample comparison. Statistics and
Computing 32, 32 (2022). doi:10.1007/s11222-022-10090-6.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr
from scipy import stats

from rebayes.bayes.design import ARMS, Design
from rebayes.bayes.quantities import pooled_rr
from rebayes.calibration.simulation import COVERAGE_PROBS, N_RANKS, QUANTITIES, SimulatedData

__all__ = [
    "Coverage",
    "UniformityTest",
    "calibration_quantities",
    "compare_to_truth",
    "coverage",
    "interval_covers",
    "rank_statistic",
    "rank_uniformity",
    "thin",
    "true_quantities",
]
# --- quantities, truth and ranks -------------------------------------------------------------


def _scalar(draws: xr.DataArray, dim: str) -> xr.DataArray:
    """Drop a length-one parameter dimension (``group`` of d, ``coef`` of beta)."""
    return draws.isel({dim: 0}) if dim in draws.dims else draws


def calibration_quantities(
    tree: xr.DataTree, quantities: Sequence[str] = QUANTITIES
) -> dict[str, xr.DataArray]:
    """Each of ``quantities`` per draw of a fit (dims ``chain, draw``)."""
    post = tree["posterior"].to_dataset()
    d = _scalar(post["d"], "group")
    out: dict[str, xr.DataArray] = {"d": d, "tau": post["tau"]}
    if "beta" in post and post["beta"].size:
        beta = _scalar(post["beta"], "coef")
        out.update(beta=beta, d_plus_beta=d + beta)
    if "pooled_rr" in quantities:
        out["pooled_rr"] = pooled_rr(tree)
    return {q: out[q].reset_coords(drop=True) for q in quantities}


def true_quantities(
    data: SimulatedData, design: Design, quantities: Sequence[str] = QUANTITIES
) -> dict[str, float]:
    """Return the true value of each of ``quantities`` for a simulated data set.

    The parameters go through :func:`calibration_quantities` as a one-draw posterior, so the
    true pooled RR is computed by the very code that computes it from posterior draws.
    """
    rows, studies = list(design.rows), list(design.studies)
    one = ("chain", "draw")
    variables: dict[str, Any] = {
        "d": (one, [[data.d]]),
        "tau": (one, [[data.tau]]),
        "z": ((*one, "study"), data.z[None, None, :]),
        "alpha": ((*one, "row"), data.alpha[None, None, :]),
    }
    if design.coefs:
        variables["beta"] = ((*one, "coef"), [[[data.beta]]])
    posterior = xr.Dataset(variables, coords={"study": studies, "row": rows})
    # The simulated counts too: the pooled RR is stated at the data's control risk p0 (the
    # median observed control risk, rebayes.bayes.baseline), as the fit's is.
    arms = {"row": rows, "arm": list(ARMS)}
    constant = xr.Dataset({"study_index": ("row", design.study_index),
                           "n": (("row", "arm"), design.n)}, coords=arms)
    observed = xr.Dataset({"events": (("row", "arm"), design.events)}, coords=arms)
    tree = xr.DataTree.from_dict({"posterior": posterior, "constant_data": constant,
                                  "observed_data": observed})
    return {
        name: float(v.values.item())
        for name, v in calibration_quantities(tree, quantities).items()
    }


def thin(draws: np.ndarray | xr.DataArray, n_draws: int = N_RANKS) -> np.ndarray:
    """``n_draws`` draws evenly spaced over all chains (chain by chain, in order).

    Parameters
    ----------
    draws : array-like
        Posterior draws, any shape (flattened in C order: chain, then draw).
    n_draws : int
        How many to keep.

    Returns
    -------
    ndarray, shape (n_draws,)
    """
    flat = np.asarray(draws, dtype=float).ravel()
    if n_draws > flat.size:
        raise ValueError(f"cannot thin {flat.size} draws to {n_draws}")
    positions = np.round(np.linspace(0, flat.size - 1, n_draws)).astype(np.int64)
    return flat[positions]


def rank_statistic(
    true_value: float, draws: np.ndarray | xr.DataArray, n_draws: int = N_RANKS
) -> int:
    """Rank of the true value among ``n_draws`` thinned posterior draws (Talts et al.).

    The number of thinned draws below the true value: 0..n_draws, uniform if the posterior
    is right.

    Examples
    --------
    >>> import numpy as np
    >>> rank_statistic(41.5, np.arange(99.0))
    42
    """
    return int(np.sum(thin(draws, n_draws) < true_value))


def interval_covers(true_value: float, draws: np.ndarray | xr.DataArray, prob: float) -> bool:
    """Whether the central (equal-tailed) ``prob`` posterior interval contains the truth."""
    low, high = np.quantile(
        np.asarray(draws, dtype=float).ravel(), [(1 - prob) / 2, (1 + prob) / 2]
    )
    return bool(low <= true_value <= high)


def compare_to_truth(
    truth: Mapping[str, float],
    draws: Mapping[str, np.ndarray | xr.DataArray],
    n_draws: int = N_RANKS,
    probs: Sequence[float] = COVERAGE_PROBS,
) -> tuple[dict[str, int], dict[str, tuple[bool, ...]]]:
    """Ranks and interval coverage of each quantity of one simulation.

    Parameters
    ----------
    truth : mapping of str to float
        True value per quantity.
    draws : mapping of str to array-like
        Posterior draws per quantity (same keys).
    n_draws : int
        Thinned draws per rank.
    probs : sequence of float
        Central interval probabilities.

    Returns
    -------
    ranks : dict of str to int
    covered : dict of str to tuple of bool
        One flag per entry of ``probs``.
    """
    ranks = {q: rank_statistic(truth[q], draws[q], n_draws) for q in truth}
    covered = {q: tuple(interval_covers(truth[q], draws[q], p) for p in probs) for q in truth}
    return ranks, covered


# --- tests of uniformity and coverage --------------------------------------------------------


@dataclass(frozen=True)
class UniformityTest:
    """Tests that ranks 0..n_ranks are uniform.

    Attributes
    ----------
    n : int
        Simulations.
    n_ranks : int
        L: ranks run 0..L.
    counts : tuple of int
        Ranks per bin (``bins`` equal bins of (L + 1) / bins ranks).
    chi2, chi2_p : float
        Pearson's chi-square on the binned counts (``scipy.stats.chisquare``, df = bins - 1).
    ks, ks_p : float
        Kolmogorov-Smirnov statistic and p value of the PITs ``(rank + 0.5) / (L + 1)``
        against U(0, 1) (``scipy.stats.kstest``). The mid-rank PIT is off the continuous
        uniform CDF by at most 0.5 / (L + 1) = 0.005, far below the KS statistic's scale.
    ecdf_p : float
        ArviZ's PIT-ECDF uniformity test (``pot_c``: pointwise order-statistic tests with a
        Cauchy combination; Tesso et al. 2026) on the same PITs: more power than KS against
        deviations in the tails.
    """

    n: int
    n_ranks: int
    counts: tuple[int, ...]
    chi2: float
    chi2_p: float
    ks: float
    ks_p: float
    ecdf_p: float

    @property
    def bins(self) -> int:
        """Number of bins."""
        return len(self.counts)

    def band(self, prob: float = 0.99) -> tuple[float, float]:
        """Central ``prob`` range of one bin's count if ranks are uniform (Binomial(n, 1/bins))."""
        low, high = stats.binom.interval(prob, self.n, 1 / self.bins)
        return float(low), float(high)


def rank_uniformity(
    ranks: Sequence[int] | np.ndarray, n_ranks: int = N_RANKS, bins: int = 20
) -> UniformityTest:
    """Chi-square, KS and PIT-ECDF tests of uniform ranks on 0..n_ranks.

    Parameters
    ----------
    ranks : sequence of int
    n_ranks : int
        L (the largest possible rank).
    bins : int
        Bins for the chi-square test; must divide L + 1 so every bin holds as many ranks.
        Talts et al. suggest an expected count of at least about 5 per bin.

    Returns
    -------
    UniformityTest
    """
    from arviz_stats.base import array_stats

    ranks = np.asarray(ranks, dtype=np.int64)
    if (n_ranks + 1) % bins:
        raise ValueError(f"bins={bins} does not divide the {n_ranks + 1} possible ranks")
    if ranks.size == 0 or ranks.min() < 0 or ranks.max() > n_ranks:
        raise ValueError(f"ranks must be a non-empty array of integers in 0..{n_ranks}")
    counts = np.bincount(ranks // ((n_ranks + 1) // bins), minlength=bins)
    chi2 = stats.chisquare(counts)
    pit = (ranks + 0.5) / (n_ranks + 1)
    ks = stats.kstest(pit, "uniform")
    ecdf_p = array_stats.uniformity_test(pit, method="pot_c")[0]
    return UniformityTest(
        n=int(ranks.size),
        n_ranks=n_ranks,
        counts=tuple(int(c) for c in counts),
        chi2=float(chi2.statistic),
        chi2_p=float(chi2.pvalue),
        ks=float(ks.statistic),
        ks_p=float(ks.pvalue),
        ecdf_p=float(ecdf_p),
    )


@dataclass(frozen=True)
class Coverage:
    """How often a central posterior interval contained the truth.

    Attributes
    ----------
    prob : float
        Nominal probability of the interval.
    n, covered : int
        Simulations, and how many intervals contained the true value.
    ci_low, ci_high : float
        Clopper-Pearson 95% interval of the coverage.
    expected_low, expected_high : float
        Central 95% range of the observed coverage if the intervals are calibrated
        (Binomial(n, prob) / n).
    """

    prob: float
    n: int
    covered: int
    ci_low: float
    ci_high: float
    expected_low: float
    expected_high: float

    @property
    def rate(self) -> float:
        """Observed coverage."""
        return self.covered / self.n

    @property
    def ok(self) -> bool:
        """Whether the observed coverage lies in the range expected under calibration."""
        return bool(self.expected_low <= self.rate <= self.expected_high)

    def __str__(self) -> str:
        return (
            f"{self.rate:.3f} ({self.ci_low:.3f}-{self.ci_high:.3f}); "
            f"expected {self.expected_low:.3f}-{self.expected_high:.3f}"
        )


def coverage(hits: Sequence[bool] | np.ndarray, prob: float) -> Coverage:
    """Summarise interval hits: observed coverage, its 95% CI and the calibrated range.

    Examples
    --------
    >>> str(coverage([True] * 180 + [False] * 20, 0.9))
    '0.900 (0.850-0.938); expected 0.855-0.940'
    """
    hits = np.asarray(hits, dtype=bool)
    n, k = int(hits.size), int(hits.sum())
    if n == 0:
        raise ValueError("no simulations to summarise")
    ci = stats.binomtest(k, n, prob).proportion_ci(0.95, method="exact")
    low, high = stats.binom.interval(0.95, n, prob)
    return Coverage(prob, n, k, float(ci.low), float(ci.high), float(low / n), float(high / n))


