"""Run simulation-based calibration of one scenario: :func:`run_sbc` and its result.

References
----------
Talts S, Betancourt M, Simpson D, Vehtari A, Gelman A. Validating Bayesian inference
algorithms with simulation-based calibration. arXiv:1804.06788 (2018).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from rebayes import tables
from rebayes.bayes.fit import fit
from rebayes.bayes.priors import PriorSet, get_prior
from rebayes.bayes.settings import SamplerSettings
from rebayes.calibration.ranks import (
    Coverage,
    UniformityTest,
    calibration_quantities,
    compare_to_truth,
    coverage,
    rank_uniformity,
    true_quantities,
)
from rebayes.calibration.simulation import (
    COVERAGE_PROBS,
    LABELS,
    N_RANKS,
    QUANTITIES,
    SBC_SETTINGS,
    Scenario,
    get_scenario,
    simulate_dataset,
    simulation_design,
)

__all__ = [
    "SBCResult",
    "SimulationResult",
    "run_sbc",
]
# --- running it -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SimulationResult:
    """One simulated meta-analysis and how its fit compares with the truth.

    Attributes
    ----------
    index : int
        Position in the run (0-based).
    sampler_seed : int
        Seed passed to the sampler.
    truth : mapping of str to float
        True value per quantity.
    ranks : mapping of str to int
        Rank of the truth among the L thinned draws, per quantity.
    covered : mapping of str to tuple of bool
        Whether each interval of :data:`COVERAGE_PROBS` contained the truth.
    posterior_sd : mapping of str to float
        Posterior SD per quantity (for the posterior contraction).
    ess_bulk_min : float
        Smallest bulk ESS over the quantities (thinning to L draws needs ESS >= L).
    divergences : int
        Divergent transitions in the kept fit.
    draws : int
        Draws per chain of the kept fit (> 500 when the fit was sampled longer).
    seconds : float
        Wall time of the fit.
    events, n : tuple of int
        The simulated counts, flattened (trial, arm): control, treatment per trial.
    """

    index: int
    sampler_seed: int
    truth: Mapping[str, float]
    ranks: Mapping[str, int]
    covered: Mapping[str, tuple[bool, ...]]
    posterior_sd: Mapping[str, float]
    ess_bulk_min: float
    divergences: int
    draws: int
    seconds: float
    events: tuple[int, ...] = field(default=())
    n: tuple[int, ...] = field(default=())


@dataclass(frozen=True, eq=False)
class SBCResult:
    """A whole SBC run; ``str()`` is the printed table.

    Attributes
    ----------
    simulations : tuple of SimulationResult
    prior : PriorSet
        Prior of both the simulation and the fits.
    settings : SamplerSettings
    seed : int
        Seed of the run.
    n_ranks : int
        L.
    probs : tuple of float
        Interval probabilities of ``covered``.
    seconds : float
        Wall time of the run (compilation included).
    scenario : Scenario, optional
        The setting simulated (None: the default scenario's shape).
    """

    simulations: tuple[SimulationResult, ...]
    prior: PriorSet
    settings: SamplerSettings
    seed: int
    n_ranks: int = N_RANKS
    probs: tuple[float, ...] = COVERAGE_PROBS
    seconds: float = 0.0
    scenario: Scenario | None = None

    @property
    def quantities(self) -> tuple[str, ...]:
        """Quantities checked, in report order."""
        return self.scenario.quantities if self.scenario is not None else QUANTITIES

    @property
    def n(self) -> int:
        """Number of simulations."""
        return len(self.simulations)

    def ranks(self, quantity: str) -> np.ndarray:
        """Ranks of one quantity over the simulations."""
        return np.array([s.ranks[quantity] for s in self.simulations], dtype=np.int64)

    def uniformity(self, quantity: str, bins: int | None = None) -> UniformityTest:
        """Uniformity tests of one quantity's ranks (default bins: :meth:`default_bins`)."""
        return rank_uniformity(self.ranks(quantity), self.n_ranks, bins or self.default_bins())

    def coverage(self, quantity: str, prob: float) -> Coverage:
        """Coverage of the central ``prob`` interval of one quantity."""
        j = self.probs.index(prob)
        return coverage([s.covered[quantity][j] for s in self.simulations], prob)

    def default_bins(self) -> int:
        """Most bins (up to 20) dividing L + 1 with at least 5 simulations expected per bin.

        Five per bin is the usual floor for the chi-square approximation; 20 bins of 5 ranks
        is Talts et al.'s histogram for L = 99.
        """
        divisors = [b for b in range(2, 21) if (self.n_ranks + 1) % b == 0]
        fitting = [b for b in divisors if self.n / b >= 5]
        return max(fitting, default=2)

    def contraction(self, quantity: str) -> float:
        """Posterior contraction: 1 - mean posterior variance / prior variance.

        The prior variance is that of the true values over the simulations (they are prior
        draws), so the pooled RR, whose prior has no closed form, is treated like d and tau.
        Near 0: the data say little and the posterior is the prior; near 1: the data dominate
        (Betancourt 2018, "Calibrating model-based inferences and decisions"). NaN for a tau
        prior without a variance (half-Cauchy).
        """
        if quantity == "tau" and not np.isfinite(self.prior.tau.frozen().var()):
            # A half-Cauchy tau has no prior variance: the sample variance of its draws is
            # dominated by a few huge ones, and no contraction is defined.
            return math.nan
        truth = np.array([s.truth[quantity] for s in self.simulations])
        post_var = np.mean([s.posterior_sd[quantity] ** 2 for s in self.simulations])
        return float(1 - post_var / truth.var(ddof=1))

    @property
    def divergences(self) -> int:
        """Divergent transitions over all kept fits."""
        return sum(s.divergences for s in self.simulations)

    @property
    def ess_below_l(self) -> int:
        """Simulations whose bulk ESS stayed below L (thinning not fully independent)."""
        return sum(s.ess_bulk_min < self.n_ranks for s in self.simulations)

    @property
    def extended(self) -> int:
        """Simulations sampled longer than the first attempt."""
        return sum(s.draws > self.settings.draws for s in self.simulations)

    def table(self, bins: int | None = None) -> pd.DataFrame:
        """One row per quantity: uniformity p values and interval coverage with limits."""
        records = []
        for q in self.quantities:
            u = self.uniformity(q, bins)
            record: dict[str, Any] = {
                "quantity": q,
                "n_sims": self.n,
                "bins": u.bins,
                "chi2": u.chi2,
                "chi2_p": u.chi2_p,
                "ks": u.ks,
                "ks_p": u.ks_p,
                "ecdf_p": u.ecdf_p,
                "contraction": self.contraction(q),
            }
            for p in self.probs:
                c = self.coverage(q, p)
                tag = f"cov{round(100 * p)}"
                record.update(
                    {
                        tag: c.rate,
                        f"{tag}_ci_low": c.ci_low,
                        f"{tag}_ci_high": c.ci_high,
                        f"{tag}_expected_low": c.expected_low,
                        f"{tag}_expected_high": c.expected_high,
                    }
                )
            records.append(record)
        return pd.DataFrame.from_records(records)

    def simulation_table(self) -> pd.DataFrame:
        """One row per simulation: truth, ranks, interval hits, ESS, divergences, time."""
        records = []
        for s in self.simulations:
            record: dict[str, Any] = {"sim": s.index, "sampler_seed": s.sampler_seed}
            for q in self.quantities:
                record[f"true_{q}"] = s.truth[q]
            for q in self.quantities:
                record[f"rank_{q}"] = s.ranks[q]
            for q in self.quantities:
                for p, hit in zip(self.probs, s.covered[q], strict=True):
                    record[f"in{round(100 * p)}_{q}"] = hit
            for q in self.quantities:
                record[f"sd_{q}"] = s.posterior_sd[q]
            record.update(
                ess_bulk_min=s.ess_bulk_min,
                divergences=s.divergences,
                draws=s.draws,
                seconds=s.seconds,
                events=" ".join(map(str, s.events)),
                n=" ".join(map(str, s.n)),
            )
            records.append(record)
        return pd.DataFrame.from_records(records)

    def _summary_frame(self, bins: int) -> pd.DataFrame:
        """Return the printed table: uniformity p values, contraction, coverage, formatted."""
        t = self.table(bins)
        out = pd.DataFrame({
            "": [LABELS[q] for q in t["quantity"]],
            "chi2 p": [f"{v:.3f}" for v in t["chi2_p"]],
            "KS p": [f"{v:.3f}" for v in t["ks_p"]],
            "ECDF p": [f"{v:.3f}" for v in t["ecdf_p"]],
            "contr.": [f"{v:.2f}" for v in t["contraction"]],
        })
        for p in self.probs:
            tag = f"cov{round(100 * p)}"
            out[f"{round(100 * p)}% coverage (95% CI) [expected]"] = [
                f"{r[tag]:.3f} ({r[f'{tag}_ci_low']:.3f}-{r[f'{tag}_ci_high']:.3f}) "
                f"[{r[f'{tag}_expected_low']:.3f}-{r[f'{tag}_expected_high']:.3f}]"
                for _, r in t.iterrows()
            ]
        return out

    def __str__(self) -> str:
        bins = self.default_bins()
        s = self.settings
        shape = self.scenario or get_scenario("default")
        lines = [
            f"Simulation-based calibration ({shape.name}: {shape.title}): {self.n} simulated "
            f"meta-analyses, seed {self.seed}",
            f"prior {self.prior.name}: {self.prior.summary}",
            f"{shape.n_trials} trials, {shape.arm_sizes[0]}-{shape.arm_sizes[1]} participants "
            "per arm; ranks among "
            f"L = {self.n_ranks} thinned draws; sampler {s.chains} chains x {s.draws} draws "
            f"({s.tune} tuning)",
            "",
            tables.text(self._summary_frame(bins), align="l" + "r" * (4 + len(self.probs))),
            "",
            f"chi-square on {bins} bins of {(self.n_ranks + 1) // bins} ranks; KS and ECDF "
            "(ArviZ pot_c) on the PITs (rank + 0.5) / (L + 1); contr.: posterior contraction "
            "(1 - posterior / prior variance)",
            f"divergences {self.divergences} (in {sum(x.divergences > 0 for x in self.simulations)}"
            f" fits); fits sampled longer {self.extended}; ESS below L {self.ess_below_l}; "
            f"wall time {self.seconds:.0f} s "
            f"({self.seconds / max(self.n, 1):.2f} s per simulation, compilation included)",
        ]
        return "\n".join(lines)


def _ess_bulk_min(draws: Mapping[str, xr.DataArray]) -> float:
    import arviz_stats as azs

    ess = azs.ess(xr.Dataset(dict(draws)), sample_dims=["chain", "draw"], method="bulk")
    return float(min(float(ess[v]) for v in ess.data_vars))


def run_sbc(
    n_sims: int = 200,
    *,
    seed: int = 0,
    scenario: str | Scenario = "default",
    prior: str | PriorSet | None = None,
    settings: SamplerSettings | None = None,
    n_ranks: int = N_RANKS,
    probs: Sequence[float] = COVERAGE_PROBS,
    on_simulation: Callable[[SimulationResult], None] | None = None,
) -> SBCResult:
    """Run simulation-based calibration of one :class:`Scenario`.

    Each simulation draws parameters from the scenario's prior, simulates a meta-analysis
    (:func:`simulate_dataset`), fits it with :func:`rebayes.fit` (one compiled model for all
    simulations of a likelihood; no cache) and records the ranks and interval hits of the
    scenario's quantities.

    Parameters
    ----------
    n_sims : int
        Simulated meta-analyses (Talts et al. use >= 1000; 200 detects gross miscalibration).
    seed : int
        Seed of the run: simulation ``i`` uses the ``i``-th child of
        ``numpy.random.SeedSequence(seed)`` for its data and its sampler seed, so the same seed
        gives the same numbers, and a shorter run is a prefix of a longer one.
    scenario : str or Scenario
        A name from :func:`scenarios` (default ``"default"``).
    prior : str or PriorSet, optional
        Overrides the scenario's prior (simulation and fit).
    settings : SamplerSettings, optional
        Default :data:`SBC_SETTINGS`.
    n_ranks : int
        L, thinned draws per rank.
    probs : sequence of float
        Central interval probabilities for coverage.
    on_simulation : callable, optional
        Called with each :class:`SimulationResult` as it is done (progress).

    Returns
    -------
    SBCResult

    Examples
    --------
    >>> from rebayes.calibration import run_sbc
    >>> result = run_sbc(20, seed=1, scenario="rare_events")   # doctest: +SKIP
    >>> print(result)                                           # doctest: +SKIP
    """
    shape = get_scenario(scenario)
    if prior is not None:
        shape = replace(shape, prior=get_prior(prior))
    prior = shape.prior
    spec = shape.spec
    settings = settings or SBC_SETTINGS
    min_draws = settings.chains * settings.draws
    if n_ranks > min_draws:
        raise ValueError(f"L = {n_ranks} exceeds the {min_draws} posterior draws per fit")
    started = time.perf_counter()
    children = np.random.SeedSequence(seed).spawn(n_sims)
    results = []
    for i, child in enumerate(children):
        rng = np.random.default_rng(child)
        data = simulate_dataset(rng, prior, shape.n_trials, shape.arm_sizes,
                                covariate=shape.covariate, likelihood=shape.likelihood)
        design = simulation_design(data, spec)
        sampler_seed = int(rng.integers(2**31 - 1))
        t0 = time.perf_counter()
        result = fit(spec, prior, design=design, seed=sampler_seed, settings=settings, cache=False)
        seconds = time.perf_counter() - t0
        draws = calibration_quantities(result.tree, shape.quantities)
        truth = true_quantities(data, design, shape.quantities)
        ranks, covered = compare_to_truth(truth, draws, n_ranks, probs)
        record = SimulationResult(
            index=i,
            sampler_seed=sampler_seed,
            truth=truth,
            ranks=ranks,
            covered=covered,
            posterior_sd={q: float(np.std(v.values)) for q, v in draws.items()},
            ess_bulk_min=_ess_bulk_min(draws),
            divergences=int(result.tree["sample_stats"]["diverging"].sum()),
            draws=int(result.tree["posterior"].sizes["draw"]),
            seconds=seconds,
            events=tuple(int(x) for x in data.events.ravel()),
            n=tuple(int(x) for x in data.n.ravel()),
        )
        results.append(record)
        if on_simulation is not None:
            on_simulation(record)
    return SBCResult(
        simulations=tuple(results),
        prior=prior,
        settings=settings,
        seed=seed,
        n_ranks=n_ranks,
        probs=tuple(probs),
        seconds=time.perf_counter() - started,
        scenario=shape,
    )
