"""What SBC simulates: the calibrated priors, the scenarios and their simulated data.

Each :class:`Scenario` fixes a prior, the data's shape and the quantities checked
(:func:`scenarios`); :func:`simulate_dataset` draws parameters from the prior and a
meta-analysis from the model (the model's -+1/2 arm coding,
:func:`rebayes.bayes.model.arm_log_odds`);
:func:`simulation_design` makes it a :class:`~rebayes.bayes.design.Design`. SBC is valid only when
the simulation draws from the prior the model is fitted with, so each scenario's baseline
prior covers its control risks (:func:`calibration_prior`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import numpy as np
from scipy import special, stats

from rebayes.bayes.design import Design
from rebayes.bayes.model import arm_log_odds
from rebayes.bayes.priors import DEFAULT_PRIOR, Normal, PriorSet, get_prior
from rebayes.bayes.settings import SamplerSettings
from rebayes.bayes.spec import AnalysisSpec

__all__ = [
    "COVERAGE_PROBS",
    "N_RANKS",
    "QUANTITIES",
    "SBC_SETTINGS",
    "SimulatedData",
    "calibration_prior",
    "Scenario",
    "get_scenario",
    "scenarios",
    "simulate_dataset",
    "simulation_design",
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
        Add a 0/1 covariate (the first half of the trials 0, the rest 1, like a two-level
        subgroup analysis) with coefficient ``beta`` drawn from ``prior.covariate``.
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

    - ``default``: ten small trials (9-47 per arm, control risks 0.3-0.8), default
      d and tau priors;
    - ``rare_events``: control risks 1-5% (:data:`RARE_CONTROL_RISKS`), 50-500 per arm;
    - ``meta_regression``: the default shape with a 0/1 covariate splitting the trials in two
      halves (a two-level subgroup analysis): d, beta and the second level's effect d + beta;
    - ``lognormal_tau2``: Turner et al.'s obstetric heterogeneity prior, tau^2 ~
      LogNormal(-3.52, 1.74);
    - ``half_cauchy``: the heavy-tailed set, tau ~ HalfCauchy(0.5);
    - ``normal``: the normal likelihood on the log RR, with the default set mapped to the log
      RR at control risk :data:`NORMAL_CONTROL_RISK` as the package maps it
      (:meth:`rebayes.bayes.priors.PriorSet.on_scale`).
    """
    base = calibration_prior()
    return {
        s.name: s
        for s in (
            Scenario("default", "10 small trials, default priors", base),
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
    """Return the :class:`~rebayes.bayes.design.Design` of a simulated meta-analysis.

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


