"""Simulation-based calibration (SBC) of the binomial random-effects model.

SBC (Talts et al. 2018) checks the whole inference -- model code, priors, sampler and the
derived quantities -- without real data: draw parameters from the prior, simulate a data set
from them, fit it, and find the rank of the true value among L posterior draws. If the
posterior is computed correctly, the rank is uniform on 0..L for every quantity, and central
x% posterior intervals contain the true value in x% of the simulations. Ranks piling up at both
ends mean posteriors that are too narrow; a hump in the middle, too wide; a slope, bias.

What is simulated here, to look like a small meta-analysis (10 trials, 9-47 participants per
arm, control risks 0.3-0.8):

- ``d``, ``tau``: from the default prior set ``weakly_informative`` (d ~ N(0, 1),
  tau ~ HalfNormal(0.5));
- ``z`` ~ N(0, 1) per trial, so the trial effect is ``theta = d + tau * z`` (the model's
  non-centred form);
- ``alpha`` (control log odds) per trial: from N(0.27, 0.57) -- see :func:`calibration_prior`;
- participants per arm: uniform on 9..47, each arm drawn independently;
- events per arm: Binomial(n, expit(alpha - theta / 2)) and Binomial(n, expit(alpha + theta / 2))
  (control, treatment; the model's arm coding, :func:`rebayes.model.arm_log_odds`).

SBC is valid only when the simulation draws from the prior the model is fitted with. The
default baseline prior alpha ~ N(0, 2) puts control risks anywhere in 0.02-0.98, not in
0.3-0.8; truncating the simulated risks to 0.3-0.8 while fitting N(0, 2) would test a
different model. So the calibrated prior set, :func:`calibration_prior`, is the default set
with one change: alpha ~ N(0.27, 0.57), which puts 95% of control risks in 0.30-0.80 (logit
0.3 = -0.85 and logit 0.8 = 1.39 are 0.27 -/+ 1.96 x 0.57). Simulation and fit both use it, so
d, tau and the pooled RR are calibrated under the default d and tau priors on data of that
shape. Any other :class:`~rebayes.priors.PriorSet` (including the unmodified
default) can be passed to :func:`run_sbc` instead; the simulation then draws from that set.

Quantities checked (:data:`QUANTITIES`): ``d`` (pooled log OR), ``tau``, and the pooled RR at
the typical control risk, computed by :func:`rebayes.effects.pooled_rr` both from the posterior
draws and from the true parameters (as a one-draw "posterior"), so truth and estimate use the
same formula.

Ranks use ``L = 99`` draws thinned evenly from all chains (Talts et al. section 4: thin to
roughly independent draws). Thinning to L draws spaced ``N / L`` apart is enough when the
effective sample size is at least L; each simulation records its smallest bulk ESS, and the
sampler settings (:data:`SBC_SETTINGS`) sample longer when the ESS falls below L + 1. Coverage
uses all the draws.

References
----------
Talts S, Betancourt M, Simpson D, Vehtari A, Gelman A. Validating Bayesian inference
algorithms with simulation-based calibration. arXiv:1804.06788 (2018).
Säilynoja T, Bürkner P-C, Vehtari A. Graphical test for discrete uniformity and its
applications in goodness-of-fit evaluation and multiple sample comparison. Statistics and
Computing 32, 32 (2022). doi:10.1007/s11222-022-10090-6.
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
from scipy import special, stats

from rebayes.design import Design
from rebayes.effects import pooled_rr
from rebayes.inference import SamplerSettings, fit
from rebayes.model import arm_log_odds
from rebayes.priors import DEFAULT_PRIOR, Normal, PriorSet, get_prior
from rebayes.spec import AnalysisSpec

__all__ = [
    "COVERAGE_PROBS",
    "N_RANKS",
    "QUANTITIES",
    "SBC_SETTINGS",
    "Coverage",
    "SBCResult",
    "SimulatedData",
    "SimulationResult",
    "UniformityTest",
    "calibration_prior",
    "calibration_quantities",
    "compare_to_truth",
    "coverage",
    "interval_covers",
    "rank_statistic",
    "rank_uniformity",
    "Scenario",
    "get_scenario",
    "run_sbc",
    "scenarios",
    "simulate_dataset",
    "simulation_design",
    "thin",
    "true_quantities",
]

#: Quantities whose ranks and coverage are checked, in report order.
QUANTITIES: tuple[str, ...] = ("d", "tau", "pooled_rr")
#: Labels for tables and plots.
LABELS: Mapping[str, str] = {
    "d": "d (pooled effect)",
    "tau": "tau",
    "pooled_rr": "pooled RR",
    "beta": "beta (covariate)",
    "d_plus_beta": "d + beta (level 1)",
}
#: Central posterior intervals whose coverage is reported.
COVERAGE_PROBS: tuple[float, ...] = (0.5, 0.9)
#: Thinned posterior draws per rank (ranks run 0..N_RANKS); Talts et al. use 99 or 999 so that
#: L + 1 = 100 splits evenly into bins.
N_RANKS = 99
#: Simulated meta-analyses: trials and the range of participants per arm.
N_TRIALS = 10
ARM_SIZES: tuple[int, int] = (9, 47)
#: Control-risk range the calibration baseline prior covers with 95% probability.
CONTROL_RISKS: tuple[float, float] = (0.3, 0.8)

#: Sampler settings for SBC: 4 chains x 500 draws after 500 tuning steps. Shorter than a
#: reported fit (4 x 1000, ESS target 1000): a rank needs only L = 99 roughly independent
#: draws. ``min_ess = L + 1`` keeps thinning valid: a fit whose bulk ESS falls below it, or
#: that diverges, is sampled again with twice the draws (up to 2000 per chain), the rule
#: :func:`rebayes.fit` applies to every fit.
SBC_SETTINGS = SamplerSettings(draws=500, tune=500, chains=4, min_ess=N_RANKS + 1, max_draws=2000)


# --- the calibrated prior and the simulation ------------------------------------------------


def calibration_prior(
    base: str | PriorSet = DEFAULT_PRIOR, control_risks: tuple[float, float] = CONTROL_RISKS
) -> PriorSet:
    """Return the default prior set with a baseline prior matching the simulated control risks.

    alpha ~ N(m, s) with m and s chosen so that expit(alpha) falls in ``control_risks``
    (default :data:`CONTROL_RISKS`, 0.3-0.8) with 95% probability: m = 0.27, s = 0.57. d, tau
    and beta keep the priors of ``base``.

    Parameters
    ----------
    base : str or PriorSet
        The set whose effect, tau and covariate priors are kept (default: the default set).
    control_risks : (float, float)
        Central 95% range of the simulated (arm-average) risks.

    Returns
    -------
    PriorSet
        Named ``<base>+calibration_baseline``.

    Examples
    --------
    >>> from rebayes.calibration import calibration_prior
    >>> calibration_prior().summary
    'd ~ N(0, 1); tau ~ HalfNormal(0.5); alpha ~ N(0.27, 0.57); beta ~ N(0, 1)'
    """
    base = get_prior(base)
    low, high = (special.logit(p) for p in control_risks)
    # Rounded to two decimals so the prior prints as it is documented.
    mu = round(float((low + high) / 2), 2)
    sigma = round(float((high - low) / (2 * stats.norm.ppf(0.975))), 2)
    return replace(
        base,
        name=f"{base.name}+calibration_baseline",
        baseline=Normal(mu, sigma),
        description=(
            f"{base.name}, but alpha ~ N({mu:g}, {sigma:g}): 95% of control risks in "
            f"{control_risks[0]:g}-{control_risks[1]:g}, as in the simulated trials. Used for "
            "simulation-based calibration (rebayes.calibration)."
        ),
    )


@dataclass(frozen=True, eq=False)
class SimulatedData:
    """One meta-analysis simulated from the prior: true parameters and counts.

    Attributes
    ----------
    d, tau : float
        Pooled effect (log OR; log RR for the normal likelihood) and between-trial SD.
    z, alpha : ndarray, shape (trial,)
        Standardised trial effects and the arms' mean log odds.
    n, events : ndarray of int, shape (trial, arm)
        Participants and events per arm, arms ordered control, treatment.
    beta : float
        Meta-regression coefficient (0 without a covariate).
    x : ndarray, shape (trial,), optional
        The 0/1 covariate (None without one).
    yi, vi : ndarray, shape (trial,), optional
        Observed log RR and its (known) variance: normal likelihood only.
    """

    d: float
    tau: float
    z: np.ndarray
    alpha: np.ndarray
    n: np.ndarray
    events: np.ndarray
    beta: float = 0.0
    x: np.ndarray | None = None
    yi: np.ndarray | None = None
    vi: np.ndarray | None = None

    @property
    def theta(self) -> np.ndarray:
        """Each trial's true effect ``d + beta x + tau z``."""
        x = 0.0 if self.x is None else self.beta * self.x
        return self.d + x + self.tau * self.z


def simulate_dataset(
    rng: np.random.Generator,
    prior: PriorSet,
    n_trials: int = N_TRIALS,
    arm_sizes: tuple[int, int] = ARM_SIZES,
    *,
    covariate: bool = False,
    likelihood: str = "binomial",
) -> SimulatedData:
    """Draw parameters from ``prior`` and a meta-analysis from the model.

    Parameters
    ----------
    rng : numpy.random.Generator
    prior : PriorSet
        The prior the fit will use (SBC needs the same one).
    n_trials : int
        Trials, one row each.
    arm_sizes : (int, int)
        Smallest and largest number of participants per arm (inclusive), drawn uniformly.
    covariate : bool
        Add a 0/1 covariate (the first half of the trials 0, the rest 1, like the IVIG
        timing subgroups) with coefficient ``beta`` drawn from ``prior.covariate``.
    likelihood : {"binomial", "normal"}
        ``normal``: the observed log RR is drawn as N(theta, vi), with vi the delta-method
        variance of a log RR at the trial's arm sizes and control risk expit(alpha) (the
        model treats vi as known, so any realistic values calibrate it); the counts are the
        expected ones, kept only so that the design has them.

    Returns
    -------
    SimulatedData
    """
    d = float(prior.effect.frozen().rvs(random_state=rng))
    tau = float(prior.tau.frozen().rvs(random_state=rng))
    # Extra draws come after the original ones, so the default scenario's data are unchanged.
    beta = float(prior.covariate.frozen().rvs(random_state=rng)) if covariate else 0.0
    z = rng.standard_normal(n_trials)
    alpha = np.asarray(prior.baseline.frozen().rvs(size=n_trials, random_state=rng), dtype=float)
    n = rng.integers(arm_sizes[0], arm_sizes[1] + 1, size=(n_trials, 2))
    x = (np.arange(n_trials) >= n_trials // 2).astype(float) if covariate else None
    data = SimulatedData(d, tau, z, alpha, n.astype(np.int64), np.zeros_like(n), beta, x)
    if likelihood == "normal":
        p0 = special.expit(alpha)
        vi = (1 - p0) / p0 * (1 / n[:, 0] + 1 / n[:, 1])
        yi = data.theta + np.sqrt(vi) * rng.standard_normal(n_trials)
        expected = np.round(n * p0[:, None]).astype(np.int64)
        return replace(data, events=expected, yi=yi, vi=vi)
    logit_p = np.column_stack(arm_log_odds(alpha, data.theta))  # the model's -+1/2 coding
    events = rng.binomial(n, special.expit(logit_p))
    return replace(data, events=events.astype(np.int64))


SPEC = AnalysisSpec(
    name="sbc",
    title="Simulation-based calibration: common effect, binomial, one row per trial",
    data="simulated",
)


@dataclass(frozen=True)
class Scenario:
    """One calibration setting: the prior, the data's shape and the quantities checked.

    Attributes
    ----------
    name : str
        Key in :func:`scenarios` (``benchmarks/sbc.py --scenario NAME``).
    title : str
        One line for tables.
    prior : PriorSet
        Prior of simulation and fit.
    likelihood : {"binomial", "normal"}
    covariate : bool
        Meta-regression on a 0/1 covariate (``beta``).
    n_trials : int
    arm_sizes : (int, int)
    quantities : tuple of str
        Keys of :data:`LABELS` whose ranks and coverage are checked.
    """

    name: str
    title: str
    prior: PriorSet
    likelihood: str = "binomial"
    covariate: bool = False
    n_trials: int = N_TRIALS
    arm_sizes: tuple[int, int] = ARM_SIZES
    quantities: tuple[str, ...] = QUANTITIES

    @property
    def spec(self) -> AnalysisSpec:
        """The analysis each simulation is fitted with."""
        if self.likelihood == "normal":
            return replace(SPEC, title="SBC: common effect, normal likelihood", likelihood="normal")
        if self.covariate:
            return replace(SPEC, title="SBC: meta-regression on a 0/1 covariate",
                           covariates=("x",), effect="contrast")
        return SPEC


#: Control risks of the rare-event scenario, and its arms (larger, as rare-event trials are).
RARE_CONTROL_RISKS: tuple[float, float] = (0.01, 0.05)
RARE_ARM_SIZES: tuple[int, int] = (50, 500)
#: Typical control risk at which the normal scenario's log OR priors are put on the log RR.
NORMAL_CONTROL_RISK = 0.55


def scenarios() -> dict[str, Scenario]:
    """Return the calibrated settings, by name (``default`` first).

    - ``default``: the IVIG shape (10 trials, 9-47 per arm, control risks 0.3-0.8), default
      d and tau priors;
    - ``rare_events``: control risks 1-5% (:data:`RARE_CONTROL_RISKS`), 50-500 per arm;
    - ``meta_regression``: the default shape with a 0/1 covariate splitting the trials in two
      halves (like the IVIG timing analysis): d, beta and the second level's effect d + beta;
    - ``lognormal_tau2``: Turner et al.'s obstetric heterogeneity prior, tau^2 ~
      LogNormal(-3.52, 1.74);
    - ``half_cauchy``: the heavy-tailed set, tau ~ HalfCauchy(0.5);
    - ``normal``: the normal likelihood on the log RR, with the default set mapped to the log
      RR at control risk :data:`NORMAL_CONTROL_RISK` as the package maps it
      (:meth:`rebayes.priors.PriorSet.on_scale`).
    """
    base = calibration_prior()
    return {
        s.name: s
        for s in (
            Scenario("default", "IVIG shape, default priors", base),
            Scenario(
                "rare_events",
                "rare events: control risks 1-5%, 50-500 per arm",
                calibration_prior(control_risks=RARE_CONTROL_RISKS),
                arm_sizes=RARE_ARM_SIZES,
            ),
            Scenario(
                "meta_regression",
                "meta-regression on a 0/1 covariate (5 + 5 trials)",
                base,
                covariate=True,
                quantities=("d", "beta", "d_plus_beta", "tau"),
            ),
            Scenario(
                "lognormal_tau2",
                "tau^2 ~ LogNormal(-3.52, 1.74) (Turner et al. 2015, obstetric)",
                calibration_prior("turner_obstetric"),
            ),
            Scenario(
                "half_cauchy",
                "tau ~ HalfCauchy(0.5) (heavy_tailed)",
                calibration_prior("heavy_tailed"),
            ),
            Scenario(
                "normal",
                f"normal likelihood on the log RR (priors mapped at p0 = {NORMAL_CONTROL_RISK})",
                base.on_scale("log RR", NORMAL_CONTROL_RISK),
                likelihood="normal",
                quantities=("d", "tau"),
            ),
        )
    }


def get_scenario(scenario: str | Scenario) -> Scenario:
    """Return a :class:`Scenario` by name (or itself)."""
    if isinstance(scenario, Scenario):
        return scenario
    known = scenarios()
    if scenario not in known:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(known)}")
    return known[scenario]


def simulation_design(data: SimulatedData, spec: AnalysisSpec = SPEC) -> Design:
    """Return the :class:`~rebayes.design.Design` of a simulated meta-analysis (row per trial).

    Ten trials fit in one padded shape (rows are padded to a multiple of 16), so every
    simulated data set of a likelihood reuses one compiled model (a covariate column fits in
    the padded coefficient vector too).
    """
    k = len(data.alpha)
    names = tuple(f"sim{i + 1:02d}" for i in range(k))
    covariate = data.x is not None and bool(spec.covariates)
    return Design(
        spec=spec,
        dataset="simulated",
        variant="simulated",
        data_hash="",
        rows=names,
        row_study=names,
        row_stratum=("mixed",) * k,
        studies=names,
        study_index=np.arange(k, dtype=np.int64),
        events=data.events,
        n=data.n,
        yi=data.yi if spec.likelihood == "normal" else None,
        vi=data.vi if spec.likelihood == "normal" else None,
        coefs=("x",) if covariate else (),
        X=data.x[:, None] if covariate and data.x is not None else np.zeros((k, 0)),
        groups=(),
        group_index=np.zeros(k, dtype=np.int64),
        row_subgroup=("",) * k,
        subgroups=(),
        ratios=(),
        notes=(),
    )


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
    constant = xr.Dataset({"study_index": ("row", design.study_index)}, coords={"row": rows})
    tree = xr.DataTree.from_dict({"posterior": posterior, "constant_data": constant})
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
            f"{'':12}{'chi2 p':>8}{'KS p':>8}{'ECDF p':>8}{'contr.':>8}   "
            + "".join(
                f"{f'{round(100 * p)}% coverage (95% CI) [expected]':>42}" for p in self.probs
            ),
        ]
        for q in self.quantities:
            u = self.uniformity(q, bins)
            cells = ""
            for p in self.probs:
                c = self.coverage(q, p)
                cells += (
                    f"{c.rate:>12.3f} ({c.ci_low:.3f}-{c.ci_high:.3f}) "
                    f"[{c.expected_low:.3f}-{c.expected_high:.3f}]"
                )
            lines.append(
                f"{LABELS[q]:12}{u.chi2_p:>8.3f}{u.ks_p:>8.3f}{u.ecdf_p:>8.3f}"
                f"{self.contraction(q):>8.2f}   {cells}"
            )
        lines += [
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
