"""The next trial: what a new two-arm trial of a given size would probably do.

For each size n per arm, trials are simulated from the posterior predictive distribution of
the current meta-analysis and the evidence is updated with each (Sutton AJ, Cooper NJ, Jones
DR, Lambert PC, Thompson JR, Abrams KR. Evidence-based sample size calculations based upon
updated meta-analysis. Stat Med 2007;26:2479-500). Per simulated trial:

1. a posterior draw ``(d, tau)`` of the pooled log odds ratio and the between-trial SD, and
   the new trial's true effect ``theta_new = d + tau * eps``, eps ~ N(0, 1);
2. a control risk ``p0`` drawn from the trials' observed control risks (those strictly
   between 0 and 1: a trial with no control event says the risk is low, not zero, and a new
   trial planned at risk 0 would carry no information; where no trial has one, the fit's
   control risk p0), and the treated risk ``expit(logit(p0) + theta_new)``;
3. events in each arm ~ Binomial(n, risk); the trial's log OR and its variance (Woolf; 0.5
   added to every cell when one is 0, as RevMan does; a trial with no events, or only
   events, in both arms carries no information);
4. the meta-analysis updated with the trial. Sutton et al. refit the full model for every
   simulated trial. With the exact engine (:func:`plan_next_trial_exact`, ``rebayes plan
   --engine exact|auto``, the default) so does this module, in effect: the whole (d, tau)
   posterior is updated with the trial's binomial likelihood, its baseline and random effect
   integrated out (:mod:`rebayes.bayes.exact.update`; no tau held fixed, no normal
   approximation), and the simulated trials come from the exact posterior's seeded draws.
   From NUTS draws (:func:`plan_next_trial`) the current posterior of the pooled log OR is
   approximated by a normal N(m, s^2) (its posterior mean and SD) and updated with the trial
   as a random-effects meta-analysis would weigh it, ``y ~ N(d, v + tau^2)`` with tau at its
   posterior median -- the standard fast approximation (a conjugate normal update), exact
   when the posterior is normal and tau is known.

Reported per n, as probabilities over the simulated trials:

- ``p_conclusive``: the updated meta-analysis is *conclusive either way*: it reaches
  P(benefit) > 0.95 (``p_conclusive_benefit``) or P(harm) > 0.95 (``p_conclusive_harm``).
  The two cannot happen together (P(benefit) + P(harm) = 1), so ``p_conclusive`` is their
  sum. A trial is planned to settle the question, not to show a benefit: when the evidence
  leans to harm, the harm side is what a new trial would most likely confirm;
- ``p_significant``: the new trial alone is significant at 5%, two-sided (Wald test of its
  log OR); ``p_significant_benefit``: significant and in the direction of benefit;
- ``p_futile``: the updated meta-analysis rules out a worthwhile effect, P(benefit beyond RR
  ``threshold``) < 0.05 (RR converted to the log OR at the control risk p0);

and, for each, the smallest n of the grid where it reaches 80%. Everything is seeded: the
same seed gives the same numbers.

Monte Carlo error. Each probability is an average over ``n_sim`` simulated trials, each drawn
from one posterior draw picked at random; it inherits the simulations' binomial error *and*
the posterior draws' own Monte Carlo error (a finite, autocorrelated sample of the
posterior). Its MCSE counts both (:func:`rebayes.bayes.mcse.resampled_mean_mcse`): the
simulations are grouped by the posterior draw they came from, and the per-draw residuals,
in the chains' order, give the MCSE by the effective sample size (arviz-stats), so that a
posterior with few effective draws gives a larger MCSE than ``sqrt(p (1 - p) / n_sim)``; the
reported MCSE is never below that binomial one. A probability within two MCSEs of the 80%
power line, or of 0.95 (P(benefit) now), is *at the line* and is printed so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import special, stats

from rebayes import tables
from rebayes.bayes.mcse import (
    MARK,
    at_the_line,
    line_note,
    probability_mcse,
    resampled_mean_mcse,
    with_line,
)
from rebayes.data.direction import Direction
from rebayes.display import ResultDisplay
from rebayes.errors import RebayesError
from rebayes.frequentist.effects import Z95

if TYPE_CHECKING:
    import xarray as xr
    from matplotlib.figure import Figure

    from rebayes.bayes.design import Design
    from rebayes.bayes.priors import PriorSet

#: An update of the meta-analysis with simulated trials: (events_t, events_c, n) -> P(benefit),
#: P(harm) and P(benefit beyond the threshold) after each.
TrialUpdate = Callable[[np.ndarray, np.ndarray, int], tuple[np.ndarray, np.ndarray, np.ndarray]]

__all__ = [
    "OUTCOMES",
    "PlanRow",
    "TrialPlan",
    "analytic_p_conclusive",
    "outcome_words",
    "plan_next_trial",
    "plan_next_trial_exact",
    "simulate_next_trial",
]

#: The outcomes reported per trial size, in order, with their meaning.
OUTCOMES = {
    "p_conclusive": "updated meta-analysis conclusive either way: P(benefit) or P(harm) > 0.95",
    "p_conclusive_benefit": "updated meta-analysis reaches P(benefit) > 0.95",
    "p_conclusive_harm": "updated meta-analysis reaches P(harm) > 0.95",
    "p_significant": "new trial alone significant (5%, two-sided)",
    "p_significant_benefit": "new trial significant in the direction of benefit",
    "p_futile": "updated meta-analysis: P(benefit beyond threshold) < 0.05",
}
POWER = 0.8
#: The line the updated P(benefit) or P(harm) is read against.
DECISION = 0.95


def outcome_words(direction: Direction, threshold: float = 1.1) -> dict[str, str]:
    """:data:`OUTCOMES` in the direction's words (the literal side when it is undeclared)."""
    if direction.declared:
        return dict(OUTCOMES)
    return {
        "p_conclusive": f"updated meta-analysis reaches {direction.p_name()} > 0.95",
        "p_significant": OUTCOMES["p_significant"],
        "p_significant_benefit": f"new trial significant with {direction.benefit}",
        "p_futile": f"updated meta-analysis: {direction.p_name(threshold)} < 0.05",
    }


Z_ONE_SIDED_95 = float(stats.norm.ppf(0.95))
NORMAL_UPDATE = "normal update of the pooled log OR (random effects)"
EXACT_UPDATE = ("exact update of the (d, tau) posterior with each simulated trial (quadrature), "
                "the trials simulated from the exact posterior's draws")


@dataclass(frozen=True)
class PlanRow:
    """Probabilities of each outcome for one trial size (see :data:`OUTCOMES`)."""

    n_per_arm: int
    p_conclusive: float
    p_conclusive_benefit: float
    p_conclusive_harm: float
    p_significant: float
    p_significant_benefit: float
    p_futile: float
    mc_se: float
    mcse: dict[str, float] = field(default_factory=dict)
    mc_se_simulation: float = float("nan")

    def at_the_line(self, outcome: str, line: float = 0.8) -> bool:
        """Whether the outcome's probability is within two MCSEs of ``line`` (80% power)."""
        return at_the_line(getattr(self, outcome), self.mcse.get(outcome, self.mc_se), line)

    def to_dict(self) -> dict[str, Any]:
        """Return ``{n_per_arm, p_conclusive, ..., mc_se, mc_se_simulation, mcse {...}}``.

        ``mc_se`` is the largest MCSE of the row, posterior draws' error included;
        ``mc_se_simulation`` the largest binomial one (the simulations' alone); ``mcse`` the
        MCSE of each probability.
        """
        return {
            "n_per_arm": self.n_per_arm,
            "p_conclusive": self.p_conclusive,
            "p_conclusive_benefit": self.p_conclusive_benefit,
            "p_conclusive_harm": self.p_conclusive_harm,
            "p_significant": self.p_significant,
            "p_significant_benefit": self.p_significant_benefit,
            "p_futile": self.p_futile,
            "mc_se": self.mc_se,
            "mc_se_simulation": self.mc_se_simulation,
            "mcse": dict(self.mcse),
        }


@dataclass(frozen=True, repr=False)
class TrialPlan(ResultDisplay):
    """Probabilities of the next trial's outcomes against its size.

    Attributes
    ----------
    rows : tuple of PlanRow
    n_for_80 : dict
        Outcome -> the smallest n of the grid with probability >= 0.8 (None: not reached).
    direction : Direction
    threshold : float
        The futility ratio (benefit beyond it is "worthwhile").
    current : dict
        The normal approximation used: ``mean``, ``sd`` (pooled log OR), ``tau`` (posterior
        median), ``p_benefit`` now (from the draws) and ``p_benefit_normal`` (under the
        normal approximation), ``typical_control_risk``, ``threshold_log_or``.
    n_sim, seed : int
    prior, analysis : str
    """

    rows: tuple[PlanRow, ...]
    n_for_80: dict[str, int | None]
    direction: Direction
    threshold: float
    current: dict[str, float]
    n_sim: int
    seed: int
    prior: str = ""
    analysis: str = ""
    method: str = field(default=NORMAL_UPDATE)
    engine: str = "nuts"

    def summary(self) -> str:
        """Return the headline: the trial size that settles the question either way.

        It says where the evidence stands now (harm first when it leans to harm), then the
        smallest size of the grid with an 80% chance of a conclusive update, with each
        side's share; when no size reaches 80%, the largest size's chance and why in words.
        """
        d = self.direction
        p_benefit = self.current["p_benefit"]
        p_harm = 1.0 - p_benefit
        mcse = self.current.get("p_benefit_mcse", math.nan)
        if p_harm > p_benefit:
            now = (f"P(harm) is {with_line(p_harm, mcse, DECISION)} now "
                   f"(P({d.benefit}) {p_benefit:.3f})")
        else:
            now = f"P({d.benefit}) is {with_line(p_benefit, mcse, DECISION)} now"
        if self.engine == "nuts":
            now += (f", {self.current['p_benefit_normal']:.3f} for P(benefit) under the "
                    "normal approximation the update uses")
        if max(p_benefit, p_harm) > 0.95:
            # Conclusive already: what a new trial would do is keep it so, or unsettle it.
            side = "P(harm)" if p_harm > p_benefit else "P(benefit)"
            top = self.rows[-1]
            keep = top.p_conclusive_harm if p_harm > p_benefit else top.p_conclusive_benefit
            verdict = f"{side} > 0.95" + (
                f", {line_note(DECISION)}"
                if at_the_line(max(p_benefit, p_harm), mcse, DECISION) else "")
            return (f"{now}: the meta-analysis is conclusive already ({verdict}). By the "
                    f"model's own predictions (a new trial like the old ones), a trial of "
                    f"{top.n_per_arm} per arm would keep it so with probability "
                    f"{_probability(keep)} and leave {side} at or below 0.95 with probability "
                    f"{_probability(1 - keep)}.")
        n = self.n_for_80["p_conclusive"]
        row = self._row(n) if n is not None else self.rows[-1]
        sides = (f"P(harm) > 0.95 with probability {_probability(row.p_conclusive_harm)}, "
                 f"P(benefit) > 0.95 with probability "
                 f"{_probability(row.p_conclusive_benefit)}")
        conclusive = _probability(row.p_conclusive, row.mcse.get("p_conclusive", row.mc_se))
        if n is not None:
            return (f"{now}; a new trial of {n} per arm (the smallest size of the grid reaching "
                    f"80%) settles the question either way with probability "
                    f"{conclusive} ({sides}).")
        why = (f": with tau about {self.current['tau']:.2f}, one new trial weighs at most about "
               "1/tau^2 in the update, however large it is" if self.current["tau"] >= 0.05
               else "")
        return (f"{now}; no trial size of the grid settles the question either way with 80% "
                f"probability: one of {row.n_per_arm} per arm does so with probability "
                f"{conclusive} ({sides}){why}.")

    def _row(self, n: int) -> PlanRow:
        return next(r for r in self.rows if r.n_per_arm == n)

    def to_dict(self) -> dict[str, Any]:
        """JSON record: ``{analysis, prior, direction, threshold, current, ..., rows}``."""
        return {
            "analysis": self.analysis,
            "prior": self.prior,
            "direction": self.direction.to_dict(),
            "threshold": self.threshold,
            "method": self.method,
            "engine": self.engine,
            "current": dict(self.current),
            "n_sim": self.n_sim,
            "seed": self.seed,
            "outcomes": outcome_words(self.direction, self.threshold),
            "n_for_80": dict(self.n_for_80),
            "rows": [r.to_dict() for r in self.rows],
        }

    def to_dataframe(self) -> pd.DataFrame:
        """One row per trial size: the probabilities and the row's largest MCSE ``mc_se``."""
        return pd.DataFrame([r.to_dict() for r in self.rows]).drop(
            columns=["mcse", "mc_se_simulation"])

    def __str__(self) -> str:
        d = self.direction
        table = tables.frame(
            ["n/arm", "MA conclusive", f"{d.p_name()}>0.95", f"{d.harm_name()}>0.95",
             "trial sig.", f"sig. {d.benefit_noun}", f"rules out {d.beyond(self.threshold)}"],
            [(f"{r.n_per_arm}",
              *(f"{getattr(r, key):.3f}" + (f" {MARK}" if r.at_the_line(key) else "")
                for key in OUTCOMES)) for r in self.rows],
        )
        lines = [
            f"The next trial ({self.n_sim} simulated trials per size; seed {self.seed}; "
            f"prior {self.prior or '?'}; {self.method})",
            tables.text(table, align="rrrrrrr"),
        ]
        reached = ", ".join(f"{k}: {v if v is not None else 'not reached'}"
                            for k, v in self.n_for_80.items())
        lines += [f"n per arm for 80%: {reached}", self.summary(),
                  f"Monte Carlo SE at most {max(r.mc_se for r in self.rows):.3f}, the posterior "
                  "draws' own error included (the simulations' alone: at most "
                  f"{max(r.mc_se_simulation for r in self.rows):.3f})."]
        if any(r.at_the_line(key) for r in self.rows for key in OUTCOMES):
            lines.append(f"{MARK} {line_note(POWER)} (80% power): more simulations or draws could "
                         "put it on either side.")
        return "\n".join(lines)

    def plot(self) -> Figure:
        """Probability of each outcome against the trial size."""
        from rebayes.plots.tools import plan_plot

        return plan_plot(self.to_dataframe(), self.direction, self.threshold)

    def _short(self) -> str:
        return self.summary()

    def report_frame(self) -> pd.DataFrame:
        """Return the table the report shows: :meth:`to_dataframe` itself."""
        return self.to_dataframe()


def _probability(p: float, mcse: float = math.nan, line: float = POWER) -> str:
    """``"0.53"``; ``"below 0.01"`` rather than a bare ``"0.00"`` that reads as a verdict.

    With its MCSE, a probability at the ``line`` says so (:func:`rebayes.bayes.mcse.with_line`).
    """
    return with_line(p, mcse, line, 2) if p >= 0.005 else "below 0.01"


def _threshold_log_or(p0: float, ratio: float, direction: Direction) -> float:
    """Return the log OR equal, at control risk p0, to a benefit of ``ratio`` (RR scale)."""
    target = p0 * direction.margin(ratio)
    if not 0 < target < 1:
        raise RebayesError(
            f"a risk ratio of {direction.margin(ratio):g} at control risk {p0:.3f} is not a risk"
        )
    return float(special.logit(target) - special.logit(p0))


def _trial_log_or(events_t: np.ndarray, events_c: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    """Woolf log OR and variance per trial (0.5 added to all cells when one is 0)."""
    a, c = events_t.astype(float), events_c.astype(float)
    b, d = n - a, n - c
    zero = (a == 0) | (b == 0) | (c == 0) | (d == 0)
    a, b, c, d = (np.where(zero, x + 0.5, x) for x in (a, b, c, d))
    y = np.log(a * d / (b * c))
    v = 1 / a + 1 / b + 1 / c + 1 / d
    # No events, or only events, in both arms: no information about the odds ratio.
    empty = ((events_t == 0) & (events_c == 0)) | ((events_t == n) & (events_c == n))
    return np.where(empty, 0.0, y), np.where(empty, np.inf, v)


def simulate_next_trial(
    effect: np.ndarray,
    tau: np.ndarray,
    control_risks: Sequence[float] | np.ndarray,
    n_per_arm: Sequence[int],
    *,
    direction: Direction | None = None,
    typical_control_risk: float | None = None,
    threshold: float = 1.1,
    n_sim: int = 4000,
    seed: int = 0,
    prior: str = "",
    analysis: str = "",
    chains: int = 1,
    update: TrialUpdate | None = None,
    now: dict[str, float] | None = None,
) -> TrialPlan:
    """Simulate the next trial from the posterior predictive and update the meta-analysis.

    Parameters
    ----------
    effect, tau : array
        Joint posterior draws of the pooled log OR and tau (same length).
    control_risks : sequence of float
        Control risks a new trial may have (the trials' observed control risks).
    n_per_arm : sequence of int
        Trial sizes to evaluate.
    direction : Direction, optional
        Default: higher is better.
    typical_control_risk : float, optional
        Where the futility threshold is converted to a log OR (default: median control risk;
        :func:`plan_next_trial` gives the fit's control risk p0).
    threshold : float
        Futility: the updated P(benefit beyond this RR) < 0.05.
    n_sim : int
        Simulated trials per size (the simulations' own Monte Carlo SE <= 0.5 / sqrt(n_sim);
        the posterior draws' error comes on top, see the module docstring).
    seed : int
        The same seed gives the same numbers; every size uses the same draws of (d, tau, eps,
        p0), so the curves are smooth in n.
    chains : int
        Chains the draws come from, chain after chain, in the sampler's order (their
        autocorrelation sets the posterior draws' share of the Monte Carlo error).
    update : callable, optional
        The update of the meta-analysis with the simulated trials (:data:`TrialUpdate`);
        default the normal update of the module docstring. Given, the plan is the exact
        engine's (:func:`plan_next_trial_exact`).
    now : dict, optional
        ``p_benefit`` and ``p_benefit_mcse`` now, when known better than from the draws
        (the exact engine's, MCSE 0).

    Returns
    -------
    TrialPlan
    """
    direction = direction or Direction()
    effect = np.asarray(effect, dtype=float).ravel()
    tau = np.asarray(tau, dtype=float).ravel()
    risks = np.clip(np.asarray(control_risks, dtype=float).ravel(), 1e-6, 1 - 1e-6)
    _check_plan_inputs(effect, tau, n_per_arm, n_sim, chains)
    sizes = sorted({int(n) for n in n_per_arm})
    mean, sd = float(effect.mean()), float(effect.std(ddof=1))
    tau_hat = float(np.median(tau))
    p_typical = float(np.median(risks) if typical_control_risk is None else typical_control_risk)
    thr = _threshold_log_or(p_typical, threshold, direction)
    sign = 1.0 if direction.higher else -1.0
    p_now = direction.p_benefit(np.exp(effect))  # OR > 1 exactly when RR > 1
    now_benefit = (effect > 0) if direction.higher else (effect < 0)
    p_now_mcse = probability_mcse(now_benefit.reshape(chains, -1))
    p_now_normal = float(stats.norm.sf(-sign * mean / sd))
    if now is not None:
        p_now, p_now_mcse = now["p_benefit"], now["p_benefit_mcse"]
    current = {"mean": mean, "sd": sd, "tau": tau_hat, "p_benefit": p_now,
               "p_benefit_mcse": p_now_mcse, "p_benefit_normal": p_now_normal,
               "typical_control_risk": p_typical, "threshold_log_or": thr}

    rows = []
    for n in sizes:
        indicators, pick = _simulated_outcomes(n, effect, tau, risks, current, sign, n_sim, seed,
                                               update)
        rows.append(_plan_row(n, indicators, pick, effect.size, chains, n_sim))
    n_for_80 = {
        key: next((r.n_per_arm for r in rows if getattr(r, key) >= POWER), None)
        for key in OUTCOMES
    }
    exact = update is not None
    return TrialPlan(tuple(rows), n_for_80, direction, threshold, current, n_sim, seed,
                     prior, analysis, EXACT_UPDATE if exact else NORMAL_UPDATE,
                     "exact" if exact else "nuts")


def _check_plan_inputs(
    effect: np.ndarray, tau: np.ndarray, n_per_arm: Sequence[int], n_sim: int, chains: int
) -> None:
    """Raise RebayesError for draws, trial sizes, simulations or chains a plan cannot use."""
    if effect.size != tau.size or effect.size < 2:
        raise RebayesError("need matching posterior draws of the effect and tau")
    if not n_per_arm or any(int(n) < 2 for n in n_per_arm):
        raise RebayesError("--n: give trial sizes of at least 2 per arm")
    if n_sim < 100:
        raise RebayesError(f"--sims {n_sim}: use at least 100 simulated trials")
    if chains < 1 or effect.size % chains:
        raise RebayesError(f"{effect.size} posterior draws do not split into {chains} chains")


def _simulated_outcomes(
    n: int,
    effect: np.ndarray,
    tau: np.ndarray,
    risks: np.ndarray,
    current: dict[str, float],
    sign: float,
    n_sim: int,
    seed: int,
    update: TrialUpdate | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Return each outcome's indicator per simulated trial of ``n`` per arm, and the draws used.

    ``current`` holds the posterior's normal summary (``mean``, ``sd``), ``tau`` and the
    futility threshold's log OR, which the trial's update is computed with; ``update``, when
    given, updates the meta-analysis instead (the exact engine).
    """
    mean, sd, tau_hat = current["mean"], current["sd"], current["tau"]
    rng = np.random.default_rng([seed, 0])  # the same (d, tau, eps, p0) for every n
    pick = rng.integers(effect.size, size=n_sim)
    theta = effect[pick] + tau[pick] * rng.standard_normal(n_sim)
    p0 = risks[rng.integers(risks.size, size=n_sim)]
    p_treat = special.expit(special.logit(p0) + theta)
    counts = np.random.default_rng([seed, 1, n])
    events_t = counts.binomial(n, p_treat)
    events_c = counts.binomial(n, p0)
    y, v = _trial_log_or(events_t, events_c, n)
    if update is not None:
        p_benefit, p_harm, p_beyond = update(events_t, events_c, n)
    else:
        w_trial = 1 / (v + tau_hat**2)
        post_prec = 1 / sd**2 + w_trial
        post_mean = (mean / sd**2 + y * w_trial) / post_prec
        post_sd = 1 / np.sqrt(post_prec)
        p_benefit = stats.norm.sf(-sign * post_mean / post_sd)
        p_harm = stats.norm.sf(sign * post_mean / post_sd)
        p_beyond = stats.norm.sf(sign * (current["threshold_log_or"] - post_mean) / post_sd)
    wald = np.where(np.isfinite(v), y / np.sqrt(v), 0.0)
    significant = np.abs(wald) > Z95
    indicators = {
        # exclusive: both cannot exceed 0.95
        "p_conclusive": (p_benefit > 0.95) | (p_harm > 0.95),
        "p_conclusive_benefit": p_benefit > 0.95,
        "p_conclusive_harm": p_harm > 0.95,
        "p_significant": significant,
        "p_significant_benefit": significant & (sign * wald > 0),
        "p_futile": p_beyond < 0.05,
    }
    return indicators, pick


def _plan_row(
    n: int,
    indicators: dict[str, np.ndarray],
    pick: np.ndarray,
    n_draws: int,
    chains: int,
    n_sim: int,
) -> PlanRow:
    """Return the row of one trial size: each outcome's probability and its Monte Carlo SE."""
    probs = {key: float(np.mean(x)) for key, x in indicators.items()}
    probs["p_conclusive"] = probs["p_conclusive_benefit"] + probs["p_conclusive_harm"]
    binomial = {key: float(np.sqrt(p * (1 - p) / n_sim)) for key, p in probs.items()}
    mcse = {}
    for key, x in indicators.items():
        total = resampled_mean_mcse(x, pick, n_draws, chains)
        # Never below the simulations' own error (an ESS estimate is itself noisy).
        mcse[key] = max(total, binomial[key]) if np.isfinite(total) else binomial[key]
    return PlanRow(n, **probs, mc_se=max(mcse.values()), mcse=mcse,
                   mc_se_simulation=max(binomial.values()))


def analytic_p_conclusive(mean: float, sd: float, v: float, higher_is_better: bool = True) -> float:
    """Closed-form P(updated fixed-effect meta-analysis reaches P(benefit) > 0.95).

    The normal-approximation power calculation for an updated fixed-effect meta-analysis
    (Sutton et al. 2007), averaged over the current posterior N(mean, sd^2) of the effect:
    with tau = 0 the new trial's estimate is y ~ N(mean, sd^2 + v) before it is run, and the
    updated P(benefit) exceeds 0.95 exactly when y passes
    ``y* = v (z_0.95 sqrt(1/sd^2 + 1/v) - mean / sd^2)`` (higher is better; mirrored
    otherwise).

    Parameters
    ----------
    mean, sd : float
        Current posterior of the pooled log OR (normal).
    v : float
        The new trial's log OR variance.
    higher_is_better : bool
    """
    sign = 1.0 if higher_is_better else -1.0
    m = sign * mean
    y_star = v * (Z_ONE_SIDED_95 * np.sqrt(1 / sd**2 + 1 / v) - m / sd**2)
    return float(stats.norm.sf((y_star - m) / np.sqrt(sd**2 + v)))


def plan_next_trial(
    tree: xr.DataTree,
    n_per_arm: Sequence[int],
    *,
    threshold: float = 1.1,
    n_sim: int = 4000,
    seed: int | None = None,
) -> TrialPlan:
    """Simulate the next trial for a fit (the binomial model's pooled log OR).

    Parameters
    ----------
    tree : xarray.DataTree
        A fit's tree.
    n_per_arm : sequence of int
    threshold : float
        Futility ratio (default 1.1).
    n_sim : int
    seed : int, optional
        Default: the fit's seed.

    Returns
    -------
    TrialPlan
    """
    from rebayes.bayes.quantities import control_risk, is_binomial, pooled_effect
    from rebayes.tools.absolute import observed_control_risks

    if not is_binomial(tree):
        raise RebayesError("plan needs the binomial model (the overall analysis), not log RRs")
    effect = pooled_effect(tree).transpose("chain", "draw").values
    tau = tree["posterior"]["tau"].transpose("chain", "draw").values
    p0 = control_risk(tree).value
    risks = observed_control_risks(tree)
    risks = risks[(risks > 0) & (risks < 1)]
    return simulate_next_trial(
        effect, tau, risks if risks.size else [p0], n_per_arm,
        direction=Direction.of(tree),
        typical_control_risk=p0,
        threshold=threshold, n_sim=n_sim,
        seed=int(tree.attrs.get("seed", 0)) if seed is None else seed,
        prior=str(tree.attrs.get("prior", "")), analysis=str(tree.attrs.get("analysis", "")),
        chains=effect.shape[0],
    )


def plan_next_trial_exact(
    design: Design,
    prior: PriorSet,
    n_per_arm: Sequence[int],
    *,
    threshold: float = 1.1,
    n_sim: int = 4000,
    seed: int | None = None,
    draws: int = 1000,
    chains: int = 4,
) -> TrialPlan:
    """Simulate the next trial and update the exact (d, tau) posterior with each.

    As :func:`plan_next_trial`, with the exact engine: the simulated trials come from seeded
    draws of the exact posterior (independent: their share of the Monte Carlo error is that
    of ``chains * draws`` independent draws) and each update is exact
    (:mod:`rebayes.bayes.exact.update`); P(benefit) now is exact (MCSE 0).

    Parameters
    ----------
    design : Design
        The overall analysis (binomial model, one pooled effect).
    prior : PriorSet
        As the registry gives it.
    n_per_arm : sequence of int
    threshold : float
        Futility ratio (default 1.1).
    n_sim : int
    seed : int, optional
        Default: the analysis's seed.
    draws, chains : int
        The exact posterior's draws the trials are simulated from.

    Returns
    -------
    TrialPlan
        ``engine="exact"``.
    """
    from rebayes.bayes.baseline import control_risk, trial_control_risks
    from rebayes.bayes.design import prior_on_model_scale
    from rebayes.bayes.exact import exact_posterior
    from rebayes.bayes.exact.update import predictive_weights, updated_probabilities

    if design.likelihood != "binomial":
        raise RebayesError("plan needs the binomial model (the overall analysis), not log RRs")
    seed = design.spec.seed if seed is None else seed
    post = exact_posterior(design, prior_on_model_scale(prior, design))
    direction = Direction.from_schema(design.schema)
    p0 = control_risk(design.events[:, 0], design.n[:, 0], design.study_index).value
    risks = trial_control_risks(design.events[:, 0], design.n[:, 0], design.study_index)
    risks = risks[(risks > 0) & (risks < 1)]
    thr = _threshold_log_or(p0, threshold, direction)
    # A step small against the largest trial's standard error of its log OR (~2 / sqrt(n)).
    step = min(0.01, 0.3 / math.sqrt(max(n_per_arm)))
    weights = predictive_weights(post, (0.0, thr), step)
    higher = direction.higher

    def update(events_t: np.ndarray, events_c: np.ndarray, n: int
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        above = updated_probabilities(weights, np.column_stack([events_c, events_t]),
                                      np.full((events_t.size, 2), n))
        benefit = above[0.0] if higher else 1.0 - above[0.0]
        beyond = above[thr] if higher else 1.0 - above[thr]
        return benefit, 1.0 - benefit, beyond

    sample = post.draws(chains=chains, draws=draws, seed=seed)
    d_now = post.coefficient("d").prob_greater(0.0)
    return simulate_next_trial(
        sample["d"], sample["tau"], risks if risks.size else [p0], n_per_arm,
        direction=direction, typical_control_risk=p0, threshold=threshold, n_sim=n_sim,
        seed=seed, prior=prior.name, analysis=design.spec.name, chains=chains, update=update,
        now={"p_benefit": d_now if higher else 1.0 - d_now, "p_benefit_mcse": 0.0},
    )
