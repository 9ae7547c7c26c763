"""The prior-space map: P(benefit) over a grid of effect priors, for each heterogeneity prior.

Which effect prior would change the conclusion? For every prior ``d ~ N(mean, sd)`` of a grid
(prior means over ratios 1/3 to 3 and SDs 0.05 to 2 by default, 21 x 20 points, on the
model's effect scale: log OR for the binomial model, log RR for the normal one) the map gives
P(benefit) and P(benefit beyond a clinically important ratio, 1.1 by default), in the
dataset's direction, of the same pooled RR per draw the rest of the package reports
(:func:`rebayes.bayes.quantities.pooled_rr`). One map per heterogeneity prior (with the baseline and
covariate priors that go with it): by default every distinct one among the dataset's prior
sets (:func:`rebayes.bayes.priors.resolve_priors`).

A full fit per grid point would take minutes; the map refits only where it must.

1. **Proposal fits.** A few *anchor* priors spread over the grid are fitted in full
   (:func:`default_anchors`: four narrow priors along the means, two wider ones at the
   centre; the compiled model is reused, as in :mod:`rebayes.sensitivity.influence`).
2. **Importance reweighting.** Only the effect prior differs between an anchor
   ``N(m0, s0)`` and a grid prior ``N(m, s)``, so each posterior draw of the anchor gets the
   log weight ``log N(d; m, s) - log N(d; m0, s0)`` (summed over ``d``'s components when
   there are several), smoothed by Pareto-smoothed importance sampling (PSIS; Vehtari A,
   Simpson D, Gelman A, Yao Y, Gabry J. Pareto smoothed importance sampling. JMLR
   2024;25(72):1-58), with ArviZ's ``psislw``. Its Pareto k says whether the reweighted
   estimate can be trusted: below 0.7 it can (ibid., section 3), above it the variance of
   the weights is too large for the draws at hand.
3. **Refits.** Each grid point takes the anchor with the smallest k (of the two whose raw
   weights have the largest effective sample size: PSIS is the slow step); where even that
   k is 0.7 or more, the point is refitted with its own prior. The result says how many points
   were reweighted and refitted and the largest k used.

The grid's means are those of the model's prior on ``d`` itself (the axes read as the
OR or RR the prior is centred on); a named set's effect mean points towards benefit
(:func:`rebayes.bayes.model.model_data`), so where fewer events is better the enthusiastic prior
sits at OR 1/1.5, left of no effect. Each map marks the named prior sets that share its
heterogeneity prior (their effect priors on the model scale) and the analysis of
credibility's prior (Matthews RAJ. R Soc Open Sci 2018;5:171047; :mod:`rebayes.tools.credibility`),
computed from RevMan's 95% CI of the fit's rows (the OR in the binomial model, the RR in the
normal one; the dataset's method and model): for a CI that excludes no effect the
*sceptical* prior N(0, (SL / 1.96)^2), which just brings the interval to no effect; for one
that includes it the *advocacy* prior N(AL / 2, (AL / 3.92)^2), which just makes it exclude
no effect. That criterion is a two-sided 95% interval, i.e. P(benefit) = 0.975 under a normal
approximation; the map's own sceptical SD (:meth:`TauMap.sceptical_sd`) is where the
model's P(benefit) crosses 0.95, so the two differ.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from rebayes.data.direction import Direction
from rebayes.data.trial_table import TrialTable
from rebayes.display import ResultDisplay
from rebayes.errors import RebayesError
from rebayes.frequentist.effects import Z95
from rebayes.tools.credibility import CredibilityRow, credibility

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from rebayes.bayes.design import Design
    from rebayes.bayes.fit import Fit
    from rebayes.bayes.priors import PriorSet
    from rebayes.bayes.spec import AnalysisSpec

__all__ = [
    "K_MAX",
    "PriorMap",
    "PriorMark",
    "TauMap",
    "default_anchors",
    "importance_weights",
    "prior_grid",
    "prior_map",
    "prior_map_exact",
]

#: Pareto k below which a reweighted estimate is used (Vehtari et al. 2024); else refit.
K_MAX = 0.7
#: Default grid: prior means over ratios 1/3 to 3, SDs 0.05 to 2 (model scale), 20 points each.
MEAN_RANGE = math.log(3.0)
SD_RANGE = (0.05, 2.0)
DEFAULT_GRID = 20
#: PSIS is run with each grid point's this many anchors of largest raw-weight ESS.
CANDIDATES = 2
#: Radius (in sds of its normal approximation) of the grids the exact map integrates in full:
#: wider than the engine's 7.2, so that each holds the posteriors of more neighbouring priors
#: (on a 33-trial table, 20 full integrations instead of 179 for the 420 points).
WIDE_RADIUS = 12.0
# Name the grid and anchor priors carry (it keys the fit cache with the parameters).
_GRID_PRIOR = "priormap"


@dataclass(frozen=True)
class PriorMark:
    """A prior marked on a map: a named set's effect prior, or the credibility prior.

    Attributes
    ----------
    name : str
        ``"skeptical"``, or ``"sceptical limit"`` / ``"advocacy limit"`` (AnCred).
    mean, sd : float
        The effect prior N(mean, sd) on the model scale.
    kind : {"named", "credibility"}
    on_map : bool
        Whether (mean, sd) lies inside the grid's ranges.
    """

    name: str
    mean: float
    sd: float
    kind: str = "named"
    on_map: bool = True

    @property
    def label(self) -> str:
        """Reader-facing name: ``"weakly informative"``."""
        return self.name.replace("_", " ")

    def to_dict(self) -> dict[str, Any]:
        """``{name, mean, sd, kind, on_map}``."""
        return {"name": self.name, "mean": self.mean, "sd": self.sd, "kind": self.kind,
                "on_map": self.on_map}


@dataclass(frozen=True, eq=False)
class TauMap:
    """P(benefit) over the grid of effect priors under one heterogeneity prior.

    Arrays are indexed ``[mean, sd]``.

    Attributes
    ----------
    tau_prior : str
        ``"HalfNormal(0.5)"`` (on the model scale).
    base : str
        The prior set whose heterogeneity, baseline and covariate priors the map keeps.
    means, sds : numpy.ndarray
        The grid's prior means and SDs of ``d``.
    p_benefit, p_beyond : numpy.ndarray
        P(benefit) and P(benefit beyond the threshold).
    pareto_k : numpy.ndarray
        k of the anchor used (NaN where the point was refitted).
    ess : numpy.ndarray
        Effective sample size of the estimate (PSIS: r_eff / sum of squared weights).
    refitted : numpy.ndarray of bool
    anchor : numpy.ndarray of int
        Index into ``anchors`` of the proposal used (-1: refitted).
    anchors : tuple of (float, float)
        The anchor priors (mean, sd) fitted in full.
    marks : tuple of PriorMark
    engine : {"nuts", "exact"}
        ``exact``: every point integrated by quadrature (:func:`prior_map_exact`): no anchors,
        no Pareto k, no Monte Carlo error.
    """

    tau_prior: str
    base: str
    means: np.ndarray
    sds: np.ndarray
    p_benefit: np.ndarray
    p_beyond: np.ndarray
    pareto_k: np.ndarray
    ess: np.ndarray
    refitted: np.ndarray
    anchor: np.ndarray
    anchors: tuple[tuple[float, float], ...]
    marks: tuple[PriorMark, ...] = ()
    engine: str = "nuts"

    @property
    def n_reweighted(self) -> int:
        """Grid points estimated by reweighting an anchor fit (none with the exact engine)."""
        return 0 if self.engine == "exact" else int((~self.refitted).sum())

    @property
    def n_refitted(self) -> int:
        """Grid points refitted with their own prior (every anchor's k >= the cut-off)."""
        return int(self.refitted.sum())

    @property
    def max_k(self) -> float:
        """Largest Pareto k among the reweighted points (NaN if none)."""
        used = self.pareto_k[~self.refitted]
        return float(used.max()) if used.size else math.nan

    def at(self, mean: float, sd: float) -> tuple[float, float]:
        """P(benefit) and P(beyond) at the grid point nearest (mean, sd) (sd on log scale)."""
        i = int(np.argmin(np.abs(self.means - mean)))
        j = int(np.argmin(np.abs(np.log(self.sds) - math.log(sd))))
        return float(self.p_benefit[i, j]), float(self.p_beyond[i, j])

    def sceptical_sd(self, level: float = 0.95) -> float | None:
        """Return the SD of a no-effect prior below which P(benefit) falls under ``level``.

        Interpolated on log SD along the grid's column at mean 0. None when P(benefit) is
        on one side of ``level`` at every SD of the grid.
        """
        i = int(np.argmin(np.abs(self.means)))
        return _crossing(np.log(self.sds), self.p_benefit[i], level, exp=True)

    def advocacy_mean(self, sd: float, benefit_sign: int, level: float = 0.95) -> float | None:
        """Return the least enthusiastic prior mean with P > ``level`` at the SD nearest ``sd``.

        ``benefit_sign`` is +1 when benefit is a ratio above 1. None when no mean on the
        benefit side of the grid (including 0) reaches ``level``, and the mean closest to no
        effect when every one does.
        """
        j = int(np.argmin(np.abs(np.log(self.sds) - math.log(sd))))
        order = np.argsort(benefit_sign * self.means)
        side = order[benefit_sign * self.means[order] >= -1e-12]
        p = self.p_benefit[side, j]
        if not (p > level).any():
            return None
        if p[0] > level:
            return float(self.means[side[0]])
        crossed = _crossing(self.means[side], p, level)
        return crossed

    def to_dict(self) -> dict[str, Any]:
        """JSON record of the map (arrays as nested lists ``[mean][sd]``)."""
        def grid(a: np.ndarray) -> list[list[float | None]]:
            return [[None if not np.isfinite(x) else float(x) for x in row] for row in a]

        return {
            "tau_prior": self.tau_prior,
            "base": self.base,
            "means": [float(m) for m in self.means],
            "sds": [float(s) for s in self.sds],
            "p_benefit": grid(self.p_benefit),
            "p_beyond": grid(self.p_beyond),
            "pareto_k": grid(self.pareto_k),
            "ess": grid(self.ess),
            "refitted": [[bool(x) for x in row] for row in self.refitted],
            "anchors": [list(a) for a in self.anchors],
            "n_reweighted": self.n_reweighted,
            "n_refitted": self.n_refitted,
            "max_k": None if math.isnan(self.max_k) else self.max_k,
            "engine": self.engine,
            "sceptical_sd": self.sceptical_sd(),
            "marks": [m.to_dict() for m in self.marks],
        }


def _crossing(x: np.ndarray, p: np.ndarray, level: float, exp: bool = False) -> float | None:
    """Where ``p`` (along increasing x) last crosses ``level``, linearly interpolated."""
    above = p > level
    if above.all() or not above.any():
        return None
    for k in range(len(x) - 1, 0, -1):
        if above[k] != above[k - 1]:
            x0, x1, p0, p1 = x[k - 1], x[k], p[k - 1], p[k]
            t = (level - p0) / (p1 - p0) if p1 != p0 else 0.5
            value = float(x0 + t * (x1 - x0))
            return math.exp(value) if exp else value
    return None  # pragma: no cover - above is neither all nor none


@dataclass(frozen=True, eq=False, repr=False)
class PriorMap(ResultDisplay):
    """Prior-space maps of one analysis: one :class:`TauMap` per heterogeneity prior.

    Attributes
    ----------
    maps : tuple of TauMap
        The first is the input fit's heterogeneity prior.
    direction : Direction
    threshold : float
        The clinically important ratio (benefit beyond it: RR > t, or RR < 1/t).
    scale : {"log OR", "log RR"}
        The scale of ``d``, whose priors the grid holds.
    credibility : CredibilityRow
        Analysis of credibility of RevMan's 95% CI of exp(d)'s measure for the fit's rows.
    k_max : float
        Pareto k cut-off for reweighting.
    n_fits : int
        Full fits run (anchors and refits).
    seconds : float
        Wall time of :func:`prior_map`.
    prior, analysis : str
        The input fit's prior set and analysis.
    engine : {"nuts", "exact"}
        What answered (:func:`prior_map` or :func:`prior_map_exact`).
    n_integrated : int
        Exact engine: posteriors integrated in full; the other grid points were read from
        their grids by their own prior densities (no Monte Carlo error either way).
    """

    maps: tuple[TauMap, ...]
    direction: Direction
    threshold: float
    scale: str
    credibility: CredibilityRow
    k_max: float = K_MAX
    n_fits: int = 0
    seconds: float = 0.0
    prior: str = ""
    analysis: str = ""
    notes: tuple[str, ...] = field(default=())
    engine: str = "nuts"
    n_integrated: int = 0

    @property
    def ratio(self) -> str:
        """``"OR"`` or ``"RR"``: the ratio exp(d) of the axes."""
        return "OR" if self.scale == "log OR" else "RR"

    @property
    def benefit_sign(self) -> int:
        """+1 when benefit is a ratio above 1, -1 when below."""
        return 1 if self.direction.higher else -1

    @property
    def n_reweighted(self) -> int:
        """Grid points reweighted, over every map."""
        return sum(m.n_reweighted for m in self.maps)

    @property
    def n_refitted(self) -> int:
        """Grid points refitted, over every map."""
        return sum(m.n_refitted for m in self.maps)

    @property
    def max_k(self) -> float:
        """Largest Pareto k used, over every map."""
        ks = [m.max_k for m in self.maps if not math.isnan(m.max_k)]
        return max(ks) if ks else math.nan

    def summary(self) -> str:
        """How sceptical (or enthusiastic) an effect prior must be to change the answer."""
        first, d, r = self.maps[0], self.direction, self.ratio
        share = float((first.p_benefit > 0.95).mean())
        text = (
            f"Under tau ~ {first.tau_prior} ({first.base.replace('_', ' ')}), "
            f"P({d.benefit}) > 0.95 for {share:.0%} of the {first.p_benefit.size} effect "
            f"priors mapped ({r} prior means {math.exp(first.means.min()):.2f}-"
            f"{math.exp(first.means.max()):.2f}, SDs {first.sds.min():.2g}-"
            f"{first.sds.max():.2g})"
        )
        i0 = int(np.argmin(np.abs(first.means)))
        column = first.p_benefit[i0]
        sd = first.sceptical_sd()
        if sd is not None:
            text += (
                f"; a sceptical prior centred on no effect brings it below 0.95 once its SD is "
                f"under {sd:.2f} (95% of its mass on {r}s {math.exp(-Z95 * sd):.2f}-"
                f"{math.exp(Z95 * sd):.2f})"
            )
        elif (column > 0.95).all():
            text += (f"; every prior centred on no effect keeps it above 0.95, down to SD "
                     f"{first.sds.min():.2g}")
        else:
            text += "; no prior centred on no effect takes it above 0.95"
            for ref in (1.0, 0.25):
                mean = first.advocacy_mean(ref, self.benefit_sign)
                if mean is not None:
                    text += (f"; a prior of SD {ref:g} needs a mean of {r} "
                             f"{math.exp(mean):.2f} or beyond")
                else:
                    text += (f"; no prior mean up to {r} "
                             f"{math.exp(self.benefit_sign * MEAN_RANGE):.2f} does it at SD "
                             f"{ref:g}")
        return text + "."

    def to_dict(self) -> dict[str, Any]:
        """JSON record: settings, counts, the credibility prior, the sentence and every map."""
        return {
            "analysis": self.analysis,
            "prior": self.prior,
            "engine": self.engine,
            "direction": self.direction.to_dict(),
            "scale": self.scale,
            "threshold": self.threshold,
            "beyond": self.direction.beyond(self.threshold),
            "k_max": self.k_max,
            "n_fits": self.n_fits,
            "n_integrated": self.n_integrated,
            "n_reweighted": self.n_reweighted,
            "n_refitted": self.n_refitted,
            "max_k": None if math.isnan(self.max_k) else self.max_k,
            "seconds": self.seconds,
            "credibility": self.credibility.to_dict(),
            "sentence": self.summary(),
            "notes": list(self.notes),
            "maps": [m.to_dict() for m in self.maps],
        }

    def to_dataframe(self) -> pd.DataFrame:
        """One row per map and grid point.

        Columns: ``tau_prior, prior_mean, prior_sd, prior_mean_ratio, p_benefit, p_beyond,
        method`` (``reweighted``, ``refit`` or ``exact``), ``pareto_k, ess``.
        """
        rows = []
        for m in self.maps:
            for i, mean in enumerate(m.means):
                for j, sd in enumerate(m.sds):
                    rows.append({
                        "tau_prior": m.tau_prior, "prior_mean": float(mean),
                        "prior_sd": float(sd), "prior_mean_ratio": math.exp(mean),
                        "p_benefit": float(m.p_benefit[i, j]),
                        "p_beyond": float(m.p_beyond[i, j]),
                        "method": ("exact" if m.engine == "exact" else
                                   "refit" if m.refitted[i, j] else "reweighted"),
                        "pareto_k": float(m.pareto_k[i, j]), "ess": float(m.ess[i, j]),
                    })
        return pd.DataFrame(rows)

    def summary_frame(self) -> pd.DataFrame:
        """One row per map: the named priors' P(benefit), the sceptical SD, the counts."""
        d = self.direction
        rows = []
        for m in self.maps:
            named = "; ".join(
                f"{k.label} {m.at(k.mean, k.sd)[0]:.3f}" for k in m.marks
                if k.kind == "named" and k.on_map
            )
            row: dict[str, Any] = {
                "tau prior": m.tau_prior,
                f"P({d.benefit}) at named priors": named or "-",
                "sceptical SD for P < 0.95": m.sceptical_sd(),
            }
            if m.engine == "exact":  # no anchors, no reweighting, no Pareto k
                row["integrated exactly"] = int(m.p_benefit.size)
            else:
                row.update({"reweighted": m.n_reweighted, "refitted": m.n_refitted,
                            "max Pareto k": m.max_k})
            rows.append(row)
        return pd.DataFrame(rows)

    def __str__(self) -> str:
        d = self.direction
        lines = [
            f"Prior-space map (prior {self.prior or '?'}; effect priors N(mean, sd) on the "
            f"{self.scale}; P({d.benefit}) and P({d.beyond(self.threshold)}))",
            self.summary_frame().to_string(index=False, float_format=lambda x: f"{x:.3g}"),
            self._how(),
            self.credibility.sentence(self.direction),
            self.summary(),
        ]
        lines += [f"Note: {n}" for n in self.notes]
        return "\n".join(lines)

    def _how(self) -> str:
        """How the map was computed, in a line."""
        if self.engine == "exact":
            return (f"{self.n_fits} grid points integrated exactly (quadrature: no Monte Carlo "
                    f"error; {self.n_integrated} in full, the others on their grids by their "
                    f"own prior densities); {self.seconds:.1f} s")
        return (f"{self.n_reweighted} grid points reweighted (Pareto k < {self.k_max:g}, max "
                f"{self.max_k:.2f}), {self.n_refitted} refitted; {self.n_fits} full fits; "
                f"{self.seconds:.1f} s")

    def plot(self) -> Figure:
        """Draw filled contours of P(benefit) per heterogeneity prior, named priors marked."""
        from rebayes.plots.priormap import prior_map_plot

        return prior_map_plot(self.maps, self.direction, self.ratio, self.threshold, self.scale)

    def _short(self) -> str:
        return self.summary()

    def report_frame(self) -> pd.DataFrame:
        """Return the table the report shows: one row per map (the grid is in the figure)."""
        return self.summary_frame()


# --- the statistics -------------------------------------------------------------------------


def prior_grid(
    n: int = DEFAULT_GRID,
    mean_range: float = MEAN_RANGE,
    sd_range: tuple[float, float] = SD_RANGE,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the grid's prior means (evenly spaced, 0 included) and SDs (log-spaced).

    Parameters
    ----------
    n : int
        Points per axis, at least 2; the means get one more when ``n`` is even, so that the
        prior centred on no effect is on the grid.
    mean_range : float
        Means run from ``-mean_range`` to ``mean_range`` (model scale; log 3 by default).
    sd_range : (float, float)
        Smallest and largest SD.

    Examples
    --------
    >>> means, sds = prior_grid(20)
    >>> len(means), len(sds), float(means[10]), float(sds[0]), float(sds[-1])
    (21, 20, 0.0, 0.05, 2.0)
    """
    if not isinstance(n, int) or n < 2:
        raise RebayesError(f"--grid {n}: give at least 2 points per axis")
    lo, hi = sd_range
    if not (mean_range > 0 and 0 < lo < hi):
        raise RebayesError("the prior grid needs mean_range > 0 and 0 < smallest SD < largest")
    means = np.linspace(-mean_range, mean_range, n + (n % 2 == 0))
    means[len(means) // 2] = 0.0
    return means, np.geomspace(lo, hi, n)


def default_anchors(means: np.ndarray, sds: np.ndarray) -> list[tuple[float, float]]:
    """Return the proposal priors fitted in full: four narrow along the means, two wide.

    A narrow grid prior pins ``d`` near its mean whatever the data say, so only a fit whose
    own prior puts draws there can be reweighted to it: four priors of SD one eleventh of the
    means' range (0.2 on the default grid) spread along it. Wider grid priors leave ``d``
    near the data, which fits of SD ``sqrt(sd_min sd_max)`` and ``sd_max / 2`` at the centre
    cover. On the shipped datasets this leaves 0-3 of each map's 420 points to refit.
    """
    lo, hi = float(means.min()), float(means.max())
    narrow = (hi - lo) / 11
    centre = (lo + hi) / 2
    return [
        *((float(m), narrow) for m in np.linspace(lo, hi, 4)),
        (centre, float(math.sqrt(sds.min() * sds.max()))),
        (centre, float(sds.max()) / 2),
    ]


def importance_weights(
    effect_draws: np.ndarray,
    proposal: tuple[float, float],
    means: np.ndarray,
    sds: np.ndarray,
    r_eff: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """PSIS log weights and Pareto k that turn draws under one effect prior into another's.

    Parameters
    ----------
    effect_draws : numpy.ndarray
        Posterior draws of ``d``, shape ``(draws,)`` or ``(draws, components)`` (each
        component has the same prior).
    proposal : (float, float)
        The effect prior N(mean, sd) the draws were made under.
    means, sds : numpy.ndarray
        Target priors N(means[p], sds[p]), same shape (any).
    r_eff : float
        Relative efficiency of the draws (ESS / draws), for the PSIS tail length.

    Returns
    -------
    log_weights : numpy.ndarray
        Normalised log weights, shape ``means.shape + (draws,)``.
    pareto_k : numpy.ndarray
        Shape ``means.shape``.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> draws = rng.normal(0.0, 1.0, 4000)  # "posterior" = prior N(0, 1): no data
    >>> lw, k = importance_weights(draws, (0.0, 1.0), np.array([0.5]), np.array([1.0]))
    >>> round(float(np.exp(lw[0]) @ draws), 1), bool(k[0] < 0.7)
    (0.5, True)
    """
    from arviz_stats.base import array_stats

    log_ratio = _log_ratio(effect_draws, proposal, means, sds)
    # arviz_stats' psislw smooths the weights exp(-x) of its input (its LOO convention).
    log_weights, k = array_stats.psislw(-log_ratio, r_eff=r_eff, axis=-1)
    shape = np.shape(means)
    return log_weights.reshape(*shape, log_ratio.shape[-1]), np.asarray(k).reshape(shape)


def _log_ratio(
    effect_draws: np.ndarray, proposal: tuple[float, float], means: Any, sds: Any
) -> np.ndarray:
    """Return log N(d; m, s) - log N(d; m0, s0) per target prior and draw (targets, draws)."""
    d = np.asarray(effect_draws, dtype=float)
    d = d.reshape(d.shape[0], -1)
    m = np.asarray(means, dtype=float).reshape(-1, 1, 1)
    s = np.asarray(sds, dtype=float).reshape(-1, 1, 1)
    m0, s0 = proposal
    # The normal densities' 2 pi terms cancel.
    out = (-0.5 * ((d[None] - m) / s) ** 2 - np.log(s)
           + 0.5 * ((d[None] - m0) / s0) ** 2 + math.log(s0))
    return out.sum(axis=-1)


@dataclass(frozen=True)
class _Draws:
    """What a full fit contributes: d, and benefit indicators of the pooled RR, per draw."""

    d: np.ndarray
    benefit: np.ndarray
    beyond: np.ndarray
    r_eff: float


def _draws(fit: Fit, direction: Direction, threshold: float) -> _Draws:
    from arviz_stats.base import array_stats

    from rebayes.bayes.quantities import pooled_rr

    post = fit.tree["posterior"]["d"]
    extra = [dim for dim in post.dims if dim not in ("chain", "draw")]
    d = post.transpose("chain", "draw", *extra).values
    chains, draws = d.shape[:2]
    d = d.reshape(chains, draws, -1)
    rr = pooled_rr(fit.tree).transpose("chain", "draw").values.ravel()
    flat = d.reshape(chains * draws, -1)
    ess = min(float(array_stats.ess(d[..., k], method="mean")) for k in range(flat.shape[1]))
    return _Draws(flat, np.asarray(direction.is_benefit(rr), dtype=float),
                  np.asarray(direction.is_benefit(rr, threshold), dtype=float),
                  min(1.0, ess / flat.shape[0]))


def _map_one(
    fit: Fit,
    base: PriorSet,
    means: np.ndarray,
    sds: np.ndarray,
    anchors: Sequence[tuple[float, float]],
    direction: Direction,
    threshold: float,
    k_max: float,
    cache: bool,
) -> tuple[TauMap, int]:
    from rebayes.bayes.fit import fit as run_fit
    from rebayes.bayes.priors import Normal

    towards_benefit = _towards_benefit(fit)

    def full_fit(mean: float, sd: float) -> _Draws:
        # A prior set's effect mean points towards benefit (rebayes.bayes.model.model_data): give
        # it the sign that makes the model's prior on d exactly N(mean, sd).
        effect = Normal(towards_benefit * float(mean), float(sd))
        prior = replace(base, name=_GRID_PRIOR, effect=effect)
        result = run_fit(fit.spec, prior, seed=fit.seed, settings=fit.settings, cache=cache,
                         design=fit.design)
        return _draws(result, direction, threshold)

    M, S = np.meshgrid(means, sds, indexing="ij")
    fitted = [full_fit(m0, s0) for m0, s0 in anchors]
    # PSIS (the slow step) runs on each point's CANDIDATES anchors whose raw weights have
    # the largest effective sample size; of those, the point takes the smallest k.
    # Grid points are taken _CHUNK at a time: each is a (points, draws) array per step, and
    # the whole grid at once held ~100 MB (a report's peak, measured). Every row is computed
    # on its own, so the chunks change no number.
    raw_ess = np.empty((len(anchors), M.size))
    for a, draws in enumerate(fitted):
        for chunk in _chunks(M.size):
            lr = _log_ratio(draws.d, anchors[a], M.ravel()[chunk], S.ravel()[chunk])
            raw_ess[a, chunk] = np.exp(2 * logsumexp(lr, axis=-1) - logsumexp(2 * lr, axis=-1))
    rank = np.argsort(-raw_ess.reshape(len(anchors), *M.shape), axis=0)[:CANDIDATES]
    best_k = np.full(M.shape, np.inf)
    p_benefit, p_beyond = np.full(M.shape, np.nan), np.full(M.shape, np.nan)
    ess, used = np.full(M.shape, np.nan), np.full(M.shape, -1)
    for a, draws in enumerate(fitted):
        points = np.nonzero((rank == a).any(axis=0))
        for chunk in _chunks(len(points[0])):
            at = tuple(ix[chunk] for ix in points)
            log_w, k = importance_weights(draws.d, anchors[a], M[at], S[at], draws.r_eff)
            better = k < best_k[at]
            w = np.exp(log_w[better])
            idx = tuple(ix[better] for ix in at)
            best_k[idx] = k[better]
            p_benefit[idx] = np.clip(w @ draws.benefit, 0.0, 1.0)
            p_beyond[idx] = np.clip(w @ draws.beyond, 0.0, 1.0)
            ess[idx] = draws.r_eff / (w**2).sum(axis=-1)
            used[idx] = a
    refit = ~(best_k < k_max)
    for i, j in zip(*np.nonzero(refit), strict=True):
        draws = full_fit(M[i, j], S[i, j])
        p_benefit[i, j], p_beyond[i, j] = draws.benefit.mean(), draws.beyond.mean()
        ess[i, j] = draws.r_eff * draws.d.shape[0]
    pareto_k = np.where(refit, np.nan, best_k)
    tau_map = TauMap(str(base.tau), base.name, means, sds, p_benefit, p_beyond, pareto_k, ess,
                     refit, np.where(refit, -1, used), tuple(anchors))
    return tau_map, len(anchors) + int(refit.sum())


_CHUNK = 40


def _chunks(n: int) -> list[slice]:
    """Slices of ``range(n)`` of :data:`_CHUNK` items."""
    return [slice(start, start + _CHUNK) for start in range(0, n, _CHUNK)]


def _towards_benefit(fit: Fit) -> float:
    """+1, or -1 where fewer events is better: the sign a prior set's effect mean is given."""
    return 1.0 if fit.design.schema.direction.higher else -1.0


def _credibility_row(spec: AnalysisSpec, design: Design, direction: Direction,
                     table: TrialTable | None = None) -> CredibilityRow:
    """AnCred of RevMan's 95% CI of exp(d)'s measure (OR, or RR for the normal model).

    The frequentist interval of the fit's rows, with the dataset's method and model: the
    reverse-Bayes prior is combined with the likelihood, never with a posterior (whose prior
    it would count twice; :mod:`rebayes.tools.credibility`).
    """
    from rebayes.data.trials import load_table
    from rebayes.frequentist.pooling import analyze

    if table is None or table.data_hash != design.data_hash:
        table = load_table(spec.data, design.variant)
    trials = table.to_frame()  # RevMan's pooling takes a DataFrame (its schema in attrs)
    measure: Any = "OR" if design.likelihood == "binomial" else "RR"
    method: Any = "MH" if design.schema.method == "PETO" else None  # Peto: the OR only
    revman = analyze(trials, measure=measure, method=method, ci_level=0.95).overall
    return credibility(revman, direction).rows[0]


def _credibility_mark(row: CredibilityRow) -> PriorMark | None:
    if row.significant and row.sceptical_sd is not None:
        return PriorMark("sceptical limit", 0.0, row.sceptical_sd, "credibility")
    if row.advocacy_limit is not None:
        al = math.log(row.advocacy_limit)
        return PriorMark("advocacy limit", al / 2, abs(al) / (2 * Z95), "credibility")
    return None


def _inside(mean: float, sd: float, means: np.ndarray, sds: np.ndarray) -> bool:
    return bool(means.min() - 1e-12 <= mean <= means.max() + 1e-12
                and sds.min() - 1e-12 <= sd <= sds.max() + 1e-12)


def prior_map(
    fit: Fit,
    tau_priors: Iterable[str | PriorSet] | None = None,
    *,
    grid: int = DEFAULT_GRID,
    means: Sequence[float] | None = None,
    sds: Sequence[float] | None = None,
    threshold: float = 1.1,
    anchors: Sequence[tuple[float, float]] | None = None,
    k_max: float = K_MAX,
    cache: bool = True,
    trials: TrialTable | None = None,
) -> PriorMap:
    """Map P(benefit) over a grid of effect priors, for each heterogeneity prior.

    Parameters
    ----------
    fit : Fit
        A fit of the analysis (usually the overall one under the default prior): it gives
        the spec, design, seed and sampler settings of every further fit, and the rows whose
        RevMan 95% CI the credibility prior is computed from. Its tau prior's map comes first.
    tau_priors : iterable of str or PriorSet, optional
        Prior sets whose heterogeneity priors to map (each with its baseline and covariate
        priors; sets that differ only in the effect prior share a map). Default: every set
        the dataset is offered (:func:`rebayes.bayes.priors.resolve_priors`).
    grid : int
        Points per axis of the default grid (:func:`prior_grid`; at least 2).
    means, sds : sequence of float, optional
        The grid's prior means and SDs of ``d`` on the model scale (instead of ``grid``).
    threshold : float
        Clinically important ratio, above 1: P(RR > t), or P(RR < 1/t) if lower is better.
    anchors : sequence of (float, float), optional
        The effect priors (mean, sd) fitted in full as proposals (:func:`default_anchors`).
    k_max : float
        Pareto k cut-off: a point is reweighted only where its best anchor's k is below it.
    cache : bool
        Read and write the fit cache.
    trials : TrialTable, optional
        The fit's table, already loaded (:func:`rebayes.load_table`); default (or a table
        whose rows are not the fit's): load ``fit.spec.data`` under the fit's variant.

    Returns
    -------
    PriorMap

    Examples
    --------
    >>> import rebayes as rb
    >>> from rebayes.bayes.analyses import resolve_spec
    >>> result = rb.fit(resolve_spec("overall", "my/"))                # doctest: +SKIP
    >>> prior_map(result).summary()                                        # doctest: +SKIP
    """
    started = time.perf_counter()
    if not (isinstance(threshold, int | float) and math.isfinite(threshold) and threshold > 1):
        raise RebayesError(f"--threshold {threshold:g}: give a ratio above 1 (e.g. 1.1)")
    if not 0 < k_max <= 1:
        raise RebayesError(f"k_max={k_max!r}: give a Pareto k cut-off in (0, 1]")
    grid_means, grid_sds = _grid_axes(grid, means, sds)
    anchors = list(anchors) if anchors is not None else default_anchors(grid_means, grid_sds)
    if not anchors:
        raise RebayesError("give at least one anchor prior")

    design = fit.design
    groups = _tau_prior_groups(fit.spec, design, fit.prior, tau_priors)
    direction = Direction.of(fit.tree)
    towards = _towards_benefit(fit)
    cred = _credibility_row(fit.spec, design, direction, trials)
    cred_mark = _credibility_mark(cred)
    maps, n_fits, notes = [], 0, []
    for members in groups.values():
        tau_map, n = _map_one(fit, members[0], grid_means, grid_sds, anchors, direction,
                              threshold, k_max, cache)
        n_fits += n
        marks = _marks(members, towards, cred_mark, grid_means, grid_sds)
        maps.append(replace(tau_map, marks=tuple(marks)))
    if design.likelihood == "normal":
        notes.append("normal likelihood: d is the log RR; the named sets' effect and tau priors "
                     f"are mapped to it at control risk {fit.prior.control_risk:.3g} "
                     "(PriorSet.on_scale)")
    return PriorMap(
        tuple(maps), direction, float(threshold), fit.prior.scale, cred, k_max, n_fits,
        time.perf_counter() - started, fit.prior.name, fit.spec.name, tuple(notes),
    )


def prior_map_exact(
    design: Design,
    prior: PriorSet,
    tau_priors: Iterable[str | PriorSet] | None = None,
    *,
    grid: int = DEFAULT_GRID,
    means: Sequence[float] | None = None,
    sds: Sequence[float] | None = None,
    threshold: float = 1.1,
) -> PriorMap:
    """:func:`prior_map` by the exact engine: every grid point integrated by quadrature.

    No anchors and no reweighting: each effect prior of the grid gets its own exact posterior
    (:func:`rebayes.bayes.exact.exact_posterior`), so the map's probabilities carry no Monte
    Carlo error and no Pareto k. For an analysis with one pooled effect
    (:func:`rebayes.bayes.exact_fit.exact_reach`).

    Parameters
    ----------
    design : Design
        The analysis's rows (usually the overall analysis).
    prior : PriorSet
        The input prior set, as the registry gives it: its tau prior's map comes first.
    tau_priors, grid, means, sds, threshold
        As :func:`prior_map`.

    Returns
    -------
    PriorMap
        ``engine="exact"``; ``n_fits`` counts the grid points integrated.
    """
    from rebayes.bayes.baseline import control_risk
    from rebayes.bayes.design import prior_on_model_scale

    started = time.perf_counter()
    if not (isinstance(threshold, int | float) and math.isfinite(threshold) and threshold > 1):
        raise RebayesError(f"--threshold {threshold:g}: give a ratio above 1 (e.g. 1.1)")
    grid_means, grid_sds = _grid_axes(grid, means, sds)
    scaled = prior_on_model_scale(prior, design)
    direction = Direction.from_schema(design.schema)
    towards = 1.0 if direction.higher else -1.0
    cred_mark = _credibility_mark(cred := _credibility_row(design.spec, design, direction))
    p0 = control_risk(design.events[:, 0], design.n[:, 0], design.study_index).value
    maps, n_integrated = [], 0
    for members in _tau_prior_groups(design.spec, design, scaled, tau_priors).values():
        p_benefit, p_beyond, full = _exact_grid(design, members[0], grid_means, grid_sds,
                                                towards, p0, direction, threshold)
        n_integrated += full
        nan = np.full(p_benefit.shape, np.nan)
        maps.append(TauMap(
            str(members[0].tau), members[0].name, grid_means, grid_sds, p_benefit, p_beyond,
            nan, np.full(p_benefit.shape, np.inf), np.zeros(p_benefit.shape, dtype=bool),
            np.full(p_benefit.shape, -1), (),
            tuple(_marks(members, towards, cred_mark, grid_means, grid_sds)), "exact"))
    notes = []
    if design.likelihood == "normal":
        notes.append("normal likelihood: d is the log RR; the named sets' effect and tau priors "
                     f"are mapped to it at control risk {scaled.control_risk:.3g} "
                     "(PriorSet.on_scale)")
    return PriorMap(
        tuple(maps), direction, float(threshold), scaled.scale, cred, K_MAX,
        sum(m.p_benefit.size for m in maps), time.perf_counter() - started, scaled.name,
        design.spec.name, tuple(notes), "exact", n_integrated,
    )


def _exact_grid(
    design: Design, base: PriorSet, means: np.ndarray, sds: np.ndarray, towards: float,
    p0: float, direction: Direction, threshold: float,
) -> tuple[np.ndarray, np.ndarray, int]:
    """P(benefit) and P(benefit beyond ``threshold``) of the pooled RR at p0, per grid prior.

    Also returns how many posteriors were integrated in full. Given tau, the likelihood of d
    does not depend on d's prior, so a grid prior's posterior is read from the grids of a
    nearby one already integrated, by its own prior density, wherever those grids hold it
    (:func:`rebayes.bayes.exact.binomial.reweighted` checks that as the engine checks its
    own); elsewhere it is integrated in full, on grids of a wider radius
    (:data:`WIDE_RADIUS`) that hold more of its neighbours. The SDs are visited from the
    widest and the means back and forth, so that a near one is at hand.
    """
    from rebayes.bayes.exact import ExactSettings, posterior_of, problem_from_design
    from rebayes.bayes.exact.binomial import reweighted
    from rebayes.bayes.exact.gridded import GridConditionals
    from rebayes.bayes.priors import Normal

    settings = ExactSettings(inner_radius=WIDE_RADIUS)
    p_benefit = np.empty((means.size, sds.size))
    p_beyond = np.empty_like(p_benefit)
    integrated: list[tuple[Any, float, float]] = []  # (posterior, mean, sd)
    full = 0
    for turn, j in enumerate(np.argsort(sds)[::-1]):
        sd = float(sds[j])
        for i in (range(means.size) if turn % 2 == 0 else range(means.size - 1, -1, -1)):
            mean = float(means[i])
            # The sign that makes the model's prior on d exactly N(mean, sd), as prior_map.
            problem = problem_from_design(
                design, replace(base, name=_GRID_PRIOR, effect=Normal(towards * mean, sd)))
            near = sorted(integrated, key=lambda b: abs(b[1] - mean) / sd
                          + abs(math.log(b[2] / sd)))[:2]
            post = next((q for b, _, _ in near if (q := reweighted(b, problem)) is not None),
                        None)
            if post is None:
                post = posterior_of(problem, settings)
                full += 1
                if isinstance(post.conditionals, GridConditionals):
                    integrated.append((post, mean, sd))
            rr = post.risk_ratio(post.coefficient("d"), p0)
            above = rr.prob_greater(direction.margin(1.0))
            beyond = rr.prob_greater(direction.margin(threshold))
            p_benefit[i, j] = above if direction.higher else 1.0 - above
            p_beyond[i, j] = beyond if direction.higher else 1.0 - beyond
    return p_benefit, p_beyond, full


def _grid_axes(
    grid: int, means: Sequence[float] | None, sds: Sequence[float] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Return the grid's prior means and SDs: those given, else :func:`prior_grid`'s."""
    grid_means, grid_sds = prior_grid(grid)
    if means is not None:
        grid_means = np.sort(np.asarray(means, dtype=float))
    if sds is not None:
        grid_sds = np.sort(np.asarray(sds, dtype=float))
    if grid_means.size < 2 or grid_sds.size < 2 or not (grid_sds > 0).all():
        raise RebayesError("the prior grid needs at least 2 means and 2 positive SDs")
    return grid_means, grid_sds


def _tau_prior_groups(
    spec: AnalysisSpec, design: Design, prior: PriorSet,
    tau_priors: Iterable[str | PriorSet] | None,
) -> dict[Any, list[PriorSet]]:
    """Return the prior sets to map, grouped by their tau, baseline and covariate priors.

    ``prior`` is the input fit's, on the model's scale.
    """
    from rebayes.bayes.design import prior_on_model_scale
    from rebayes.bayes.priors import resolve_priors

    offered = resolve_priors(
        list(tau_priors) if tau_priors is not None else None,
        spec.prior_file, outcome_type=design.schema.outcome_type,
    )
    # The input fit's prior first; sets differing only in the effect prior share a map.
    sets = [prior, *(prior_on_model_scale(p, design) for p in offered)]
    groups: dict[Any, list[PriorSet]] = {}
    for prior in sets:
        key = (prior.tau, prior.baseline, prior.covariate)
        if prior not in groups.setdefault(key, []):
            groups[key].append(prior)
    if tau_priors is not None:  # only the maps asked for (the input fit's only if named)
        wanted = {(p.tau, p.baseline, p.covariate) for p in
                  (prior_on_model_scale(q, design) for q in offered)}
        groups = {k: v for k, v in groups.items() if k in wanted}
    return groups


def _marks(
    members: list[PriorSet],
    towards: float,
    cred_mark: PriorMark | None,
    grid_means: np.ndarray,
    grid_sds: np.ndarray,
) -> list[PriorMark]:
    """Return the marks of one map: its named effect priors, then the credibility prior."""
    marks = [
        PriorMark(p.name, towards * p.effect.mu, p.effect.sigma, "named",
                  _inside(towards * p.effect.mu, p.effect.sigma, grid_means, grid_sds))
        for p in members if p.name != _GRID_PRIOR
    ]
    if cred_mark is not None:
        marks.append(replace(cred_mark,
                             on_map=_inside(cred_mark.mean, cred_mark.sd, grid_means,
                                            grid_sds)))
    return marks
