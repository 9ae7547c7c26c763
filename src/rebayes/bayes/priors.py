"""Named prior sets for the random-effects meta-analysis, each with its source.

A :class:`PriorSet` says which distribution the model gives to

- ``effect`` -- the pooled treatment effect ``d`` (and each subgroup's ``d``), on the model's
  effect scale: log odds ratio for the binomial likelihood, log risk ratio for the normal one;
- ``tau`` -- the between-trial standard deviation of the treatment effect (same scale);
- ``baseline`` -- each stratum's control-arm log odds ``alpha`` (binomial likelihood only);
- ``covariate`` -- each meta-regression coefficient ``beta`` (log ratio of odds ratios).

The built-in sets are in :data:`PRIOR_SETS`; each is made by a function of the same name whose
docstring gives the source. Users add their own in a TOML file (see :func:`load_prior_file`)::

    [narrow_tau]
    description = "Default, but heterogeneity half-normal(0.25)"
    base = "weakly_informative"          # fields not given come from here
    tau = { family = "half_normal", sigma = 0.25 }
    effect = { family = "normal", mu = 0.0, sigma = 0.5 }

Families: ``normal`` (mu, sigma) for effect, baseline and covariate; ``student_t`` (mu, sigma,
nu) for the effect; ``half_normal`` (sigma), ``half_cauchy`` (scale), ``lognormal_tau2`` (mu,
sigma: tau squared is log-normal, as in Turner et al. 2015) and ``inverse_gamma`` (shape,
scale: tau itself, as in Bartoš et al. 2023) for tau. A bad entry is a one-line
:class:`PriorError`.

Empirical sets from the Cochrane database: ``bartos_cochrane`` (all review groups) and
``bartos_<subfield>`` for each Cochrane review group (:func:`bartos_prior_set`; the numbers
are in :mod:`rebayes.bayes.empirical_priors`), and van Zwet et al.'s signal-to-noise mixture
(:func:`van_zwet_prior`, a prior scaled by a standard error).
"""

from __future__ import annotations

import functools
import inspect
import math
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

from scipy.special import ndtri

from rebayes.bayes.empirical_priors import (
    BARTOS_2023,
    VAN_ZWET_2021,
    bartos_parameters,
    subfield_slug,
)
from rebayes.data.direction import Direction
from rebayes.errors import RebayesError, check_keys

__all__ = [
    "DEFAULT_PRIOR",
    "HalfCauchy",
    "HalfNormal",
    "InverseGamma",
    "LogNormalTau2",
    "Normal",
    "NormalMixture",
    "StudentT",
    "BARTOS_SETS",
    "bartos_prior_set",
    "van_zwet_prior",
    "PRIOR_SETS",
    "PriorError",
    "PriorSet",
    "SCALES",
    "get_prior",
    "load_prior_file",
    "median_control_risk",
    "OUTCOME_TYPES",
    "TURNER_BY_OUTCOME",
    "priors_for",
    "resolve_priors",
]

DEFAULT_PRIOR = "weakly_informative"

#: Effect scales a prior set can be put on: the binomial model's and the normal model's.
SCALES: tuple[str, ...] = ("log OR", "log RR")


class PriorError(RebayesError):
    """A prior set or a prior file is invalid (one-line message)."""


def _check_scale(owner: str, name: str, value: float) -> None:
    if not (isinstance(value, int | float) and not isinstance(value, bool)):
        raise PriorError(f"{owner}: {name}={value!r} is not a number")
    if not math.isfinite(value) or value <= 0:
        raise PriorError(f"{owner}: {name}={value!r} must be a positive finite number")


def _check_location(owner: str, name: str, value: float) -> None:
    if not (isinstance(value, int | float) and not isinstance(value, bool)):
        raise PriorError(f"{owner}: {name}={value!r} is not a number")
    if not math.isfinite(value):
        raise PriorError(f"{owner}: {name}={value!r} must be finite")


@dataclass(frozen=True)
class Normal:
    """Normal(mu, sigma), for the effect, the baselines and the covariate coefficients."""

    mu: float = 0.0
    sigma: float = 1.0
    family: ClassVar[str] = "normal"

    def __post_init__(self) -> None:
        _check_location("normal", "mu", self.mu)
        _check_scale("normal", "sigma", self.sigma)

    def frozen(self) -> Any:
        """Return the scipy.stats frozen distribution."""
        from scipy import stats  # loaded on use: `import rebayes` stays light

        return stats.norm(self.mu, self.sigma)

    def __str__(self) -> str:
        return f"N({self.mu:g}, {self.sigma:g})"


@dataclass(frozen=True)
class StudentT:
    """Student-t(mu, sigma, nu) for the effect: a normal with heavier tails.

    The family of Bartoš et al.'s (2023) empirical effect priors (``nu`` = 2 to 7 degrees of
    freedom): most effects are small, a few are large.
    """

    mu: float = 0.0
    sigma: float = 1.0
    nu: float = 3.0
    family: ClassVar[str] = "student_t"

    def __post_init__(self) -> None:
        _check_location("student_t", "mu", self.mu)
        _check_scale("student_t", "sigma", self.sigma)
        _check_scale("student_t", "nu", self.nu)

    def frozen(self) -> Any:
        """Return the scipy.stats frozen distribution."""
        from scipy import stats  # loaded on use: `import rebayes` stays light

        return stats.t(self.nu, self.mu, self.sigma)

    def __str__(self) -> str:
        return f"t({self.mu:g}, {self.sigma:g}, {self.nu:g} df)"


@dataclass(frozen=True)
class NormalMixture:
    """A mixture of zero-mean normals: van Zwet et al.'s (2021) prior of an effect.

    Used by the model-averaged bias analysis (:mod:`rebayes.bayes.robust`) only; the PyMC
    model has no mixture family. Built by :func:`van_zwet_prior`.
    """

    weights: tuple[float, ...]
    sigmas: tuple[float, ...]
    family: ClassVar[str] = "normal_mixture"

    def __post_init__(self) -> None:
        if len(self.weights) != len(self.sigmas) or not self.weights:
            raise PriorError("normal_mixture: give one sigma per weight")
        for w in self.weights:
            _check_scale("normal_mixture", "weight", w)
        for sigma in self.sigmas:
            _check_scale("normal_mixture", "sigma", sigma)
        if abs(sum(self.weights) - 1) > 1e-9:
            raise PriorError(f"normal_mixture: weights sum to {sum(self.weights):g}, not 1")

    def logpdf(self, x: Any) -> Any:
        """Log density at ``x`` (array-like)."""
        import numpy as np
        from scipy.special import logsumexp

        x = np.asarray(x, dtype=float)[..., None]
        sigma = np.asarray(self.sigmas)
        terms = (np.log(self.weights) - np.log(sigma) - 0.5 * np.log(2 * np.pi)
                 - 0.5 * (x / sigma) ** 2)
        return logsumexp(terms, axis=-1)

    def __str__(self) -> str:
        parts = ", ".join(f"{w:g} N(0, {s:.3g})" for w, s in zip(self.weights, self.sigmas,
                                                                    strict=True))
        return f"mixture({parts})"


@dataclass(frozen=True)
class HalfNormal:
    """Half-normal with scale sigma, for tau (Friede et al. 2017; Röver et al. 2021)."""

    sigma: float = 0.5
    family: ClassVar[str] = "half_normal"

    def __post_init__(self) -> None:
        _check_scale("half_normal", "sigma", self.sigma)

    def frozen(self) -> Any:
        """Return the scipy.stats frozen distribution of tau."""
        from scipy import stats  # loaded on use: `import rebayes` stays light

        return stats.halfnorm(scale=self.sigma)

    def __str__(self) -> str:
        return f"HalfNormal({self.sigma:g})"


@dataclass(frozen=True)
class HalfCauchy:
    """Half-Cauchy with the given scale, for tau (Gelman 2006)."""

    scale: float = 0.5
    family: ClassVar[str] = "half_cauchy"

    def __post_init__(self) -> None:
        _check_scale("half_cauchy", "scale", self.scale)

    def frozen(self) -> Any:
        """Return the scipy.stats frozen distribution of tau."""
        from scipy import stats  # loaded on use: `import rebayes` stays light

        return stats.halfcauchy(scale=self.scale)

    def __str__(self) -> str:
        return f"HalfCauchy({self.scale:g})"


@dataclass(frozen=True)
class LogNormalTau2:
    """tau squared ~ LogNormal(mu, sigma), the form of Turner et al.'s (2015) priors.

    Equivalently log tau ~ Normal(mu / 2, sigma / 2), which is how the model uses it.
    """

    mu: float = -3.52
    sigma: float = 1.74
    family: ClassVar[str] = "lognormal_tau2"

    def __post_init__(self) -> None:
        _check_location("lognormal_tau2", "mu", self.mu)
        _check_scale("lognormal_tau2", "sigma", self.sigma)

    def frozen(self) -> Any:
        """Return the scipy.stats frozen distribution of tau (not of tau squared)."""
        from scipy import stats  # loaded on use: `import rebayes` stays light

        return stats.lognorm(s=self.sigma / 2, scale=math.exp(self.mu / 2))

    def __str__(self) -> str:
        return f"LogNormal({self.mu:g}, {self.sigma:g})"


@dataclass(frozen=True)
class InverseGamma:
    """tau ~ InvGamma(shape, scale): the family of Bartoš et al.'s (2023) heterogeneity priors.

    On tau itself (the between-study standard deviation), as RoBMA and BayesTools use it; the
    density vanishes at tau = 0, so it rules out exact homogeneity (the model-averaged bias
    analysis adds a fixed-effect model for that).
    """

    shape: float = 1.77
    scale: float = 0.55
    family: ClassVar[str] = "inverse_gamma"

    def __post_init__(self) -> None:
        _check_scale("inverse_gamma", "shape", self.shape)
        _check_scale("inverse_gamma", "scale", self.scale)

    def frozen(self) -> Any:
        """Return the scipy.stats frozen distribution of tau."""
        from scipy import stats  # loaded on use: `import rebayes` stays light

        return stats.invgamma(self.shape, scale=self.scale)

    def __str__(self) -> str:
        return f"InvGamma({self.shape:g}, {self.scale:g})"


TauPrior = HalfNormal | HalfCauchy | LogNormalTau2 | InverseGamma
EffectPrior = Normal | StudentT
# Any: each family class carries a ``family`` name (a ClassVar) that ``type`` does not declare.
TAU_FAMILIES: tuple[Any, ...] = (HalfNormal, HalfCauchy, LogNormalTau2, InverseGamma)
EFFECT_FAMILIES: tuple[Any, ...] = (Normal, StudentT)
# Which families each slot of a prior set accepts.
SLOTS: dict[str, tuple[Any, ...]] = {
    "effect": EFFECT_FAMILIES,
    "tau": TAU_FAMILIES,
    "baseline": (Normal,),
    "covariate": (Normal,),
}


@dataclass(frozen=True)
class PriorSet:
    """A named, frozen set of priors for one fit.

    Attributes
    ----------
    name : str
        Registry name (``weakly_informative``).
    effect : Normal or StudentT
        Prior of the pooled effect ``d`` (log OR in the binomial model, log RR in the normal).
    tau : HalfNormal, HalfCauchy, LogNormalTau2 or InverseGamma
        Prior of the between-trial standard deviation.
    baseline : Normal
        Prior of each stratum's control log odds ``alpha``.
    covariate : Normal
        Prior of each meta-regression coefficient ``beta``.
    description : str
        What the set is and where it comes from.
    scale : {"log OR", "log RR"}
        The effect scale ``effect``, ``tau`` and ``covariate`` are on. Every built-in and user
        set is stated on the log OR scale; :meth:`on_scale` maps it to the log RR.
    control_risk : float or None
        The typical control risk p0 the log RR version was mapped at (None on the log OR).
    log_rr : tuple of (effect, tau), optional
        The set's own log RR effect and tau priors, where its source publishes them
        (Bartoš et al. 2023 fit both scales): :meth:`on_scale` then uses these instead of
        mapping the log OR ones.
    """

    name: str
    effect: EffectPrior
    tau: TauPrior
    baseline: Normal = field(default_factory=lambda: Normal(0.0, 2.0))
    covariate: Normal = field(default_factory=lambda: Normal(0.0, 1.0))
    description: str = ""
    scale: str = "log OR"
    control_risk: float | None = None
    log_rr: tuple[EffectPrior, TauPrior] | None = None

    def __post_init__(self) -> None:
        for slot, allowed in SLOTS.items():
            value = getattr(self, slot)
            if not isinstance(value, allowed):
                names = ", ".join(f.family for f in allowed)
                raise PriorError(
                    f"prior set '{self.name}': {slot} must be one of {names}, "
                    f"not {type(value).__name__}"
                )
        if self.scale not in SCALES:
            raise PriorError(
                f"prior set '{self.name}': scale {self.scale!r} is not one of {', '.join(SCALES)}"
            )
        if self.scale == "log RR" and self.control_risk is None:
            raise PriorError(f"prior set '{self.name}': a log RR prior needs its control_risk")
        if self.log_rr is not None and not (
            isinstance(self.log_rr[0], EFFECT_FAMILIES) and isinstance(self.log_rr[1],
                                                                        TAU_FAMILIES)
        ):
            raise PriorError(f"prior set '{self.name}': log_rr must be (effect, tau) priors")

    @property
    def summary(self) -> str:
        """One line: ``d ~ N(0, 1); tau ~ HalfNormal(0.5); alpha ~ N(0, 2); beta ~ N(0, 1)``.

        A set mapped to the log RR scale says so and names its control risk:
        ``d ~ N(0, 0.45); ... [log RR scale at control risk 0.55: log OR priors x 0.45]``.
        """
        tau = "tau^2" if isinstance(self.tau, LogNormalTau2) else "tau"
        line = (
            f"d ~ {self.effect}; {tau} ~ {self.tau}; alpha ~ {self.baseline}; "
            f"beta ~ {self.covariate}"
        )
        if self.scale == "log RR" and self.log_rr is not None:
            assert self.control_risk is not None
            line += (
                f" [log RR scale: the set's own log RR effect and tau priors; beta at control "
                f"risk {self.control_risk:.3g}: log OR prior x {1 - self.control_risk:.3g}]"
            )
        elif self.scale == "log RR":
            assert self.control_risk is not None
            line += (
                f" [log RR scale at control risk {self.control_risk:.3g}: log OR priors x "
                f"{1 - self.control_risk:.3g}]"
            )
        return line

    def oriented(self, higher_is_better: bool | None) -> PriorSet:
        """Return the set as the model uses it: the effect prior's mean turned towards benefit.

        A set's effect mean is stated towards benefit (the enthusiastic prior expects a
        benefit of OR 1.5): where fewer events is better the model gives ``d`` the mean
        ``-mu`` (OR 1/1.5). Every use of the effect prior -- the model, its prior draws and
        log density, Bayes factors and figures -- goes through this method, once;
        descriptions (:meth:`effect_description`) take the set as stated and orient it
        themselves.

        Examples
        --------
        >>> get_prior("enthusiastic").oriented(False).effect.mu < 0
        True
        """
        if higher_is_better or self.effect.mu == 0:
            return self
        # Normal or Student-t: both are located at mu, so the mirror is the same family.
        return replace(self, effect=replace(self.effect, mu=-self.effect.mu))

    def effect_description(self, direction: Direction) -> str:
        """Return the effect prior on the outcome's ratio scale, naming the side it leans to.

        E.g. ``"OR centred on 0.67, towards a lower risk of death (benefit); 95% of prior mass
        on ORs 0.41 to 1.10 (log OR ~ N(-0.405, 0.247))"``: the ratio the prior's mean implies
        and its central 95% range (exp of mean -+ 1.96 SD), the direction the mean points to
        for this dataset, and the parameters on the model's log scale in parentheses.
        """
        effect = self.oriented(direction.higher_is_better).effect
        ratio = "OR" if self.scale == "log OR" else "RR"
        z = float(ndtri(0.975))
        low, high = (math.exp(effect.mu - z * effect.sigma),
                     math.exp(effect.mu + z * effect.sigma))
        centre = _ratio_text(math.exp(effect.mu))
        where = f", {direction.towards(effect.mu)}" if effect.mu else " (no effect)"
        return (
            f"{ratio} centred on {centre}{where}; 95% of prior mass "
            f"on {ratio}s {_ratio_text(low)} to {_ratio_text(high)} ({self.scale} ~ "
            f"N({effect.mu:.3g}, {effect.sigma:.3g}))"
        )

    def describe(
        self, direction: Direction, *, baseline: bool = True, covariate: bool = True
    ) -> str:
        """One line stating the set on the outcome's scale (the effect) and the model's.

        ``"effect: OR centred on 1 (no effect) ...; tau ~ HalfNormal(0.5); alpha ~ N(0, 2);
        beta ~ N(0, 1)"``; ``baseline`` and ``covariate`` say whether the model uses alpha
        (the binomial model) and beta (a meta-regression). A set mapped to the log RR says
        at which control risk, as :attr:`summary` does.
        """
        tau = "tau^2" if isinstance(self.tau, LogNormalTau2) else "tau"
        parts = [f"effect: {self.effect_description(direction)}", f"{tau} ~ {self.tau}"]
        if baseline:
            parts.append(f"alpha ~ {self.baseline}")
        if covariate:
            parts.append(f"beta ~ {self.covariate}")
        line = "; ".join(parts)
        if self.scale == "log RR":
            assert self.control_risk is not None
            line += (
                f" [log RR scale at control risk {self.control_risk:.3g}: log OR priors x "
                f"{1 - self.control_risk:.3g}]"
            )
        return line

    def on_scale(self, scale: str, typical_control_risk: float | None = None) -> PriorSet:
        """Return this set with the meaning it has on another effect scale.

        The built-in sets are stated for the log odds ratio. On the log risk ratio the same
        numbers mean much larger effects when events are common: at a control risk p0 the
        treatment risk is at most 1, so log RR <= -log p0, and N(0, 1) on the log RR at
        p0 = 0.55 puts 27% of its mass on impossible RRs above 1 / p0. This maps the set by
        the first-order (delta-method) relation between the two scales at p0: with
        logit p1 = logit p0 + d,

            log RR = log(p1 / p0) = (1 - p0) d + O(d^2),

        so every log OR scale parameter (the effect's mean and SD, tau, and the
        meta-regression coefficients) is multiplied by k = 1 - p0; for tau^2 ~ LogNormal(mu,
        sigma) that is mu + 2 log k. The approximation is exact as d -> 0 and good for the
        modest effects and heterogeneity these priors expect; it does not bound the log RR
        (it makes impossible RRs rare, not impossible). The baseline prior (log odds of the
        control arm) is not an effect and is kept. A set that carries its own log RR priors
        (``log_rr``: Bartoš et al. fitted both scales to the Cochrane database) takes those
        for the effect and tau instead of the mapped ones.

        Parameters
        ----------
        scale : {"log OR", "log RR"}
            The model's effect scale: ``"log OR"`` (binomial likelihood) returns the set as
            it is; ``"log RR"`` (normal likelihood) maps it.
        typical_control_risk : float, optional
            p0 in (0, 1), required for ``"log RR"``: the dataset's median observed control
            risk (:func:`median_control_risk`).

        Returns
        -------
        PriorSet
            Same name; ``scale`` and ``control_risk`` set, and the summary says both.

        References
        ----------
        Zhang J, Yu KF. What's the relative risk? A method of correcting the odds ratio in
        cohort studies of common outcomes. JAMA. 1998;280:1690-1691.
        doi:10.1001/jama.280.19.1690 (RR = OR / (1 - p0 + p0 OR), whose derivative in log OR
        at OR = 1 is 1 - p0).

        Examples
        --------
        >>> from rebayes.bayes.priors import get_prior
        >>> rr = get_prior("weakly_informative").on_scale("log RR", 0.55)
        >>> round(rr.effect.sigma, 3), round(rr.tau.sigma, 4)
        (0.45, 0.225)
        """
        if scale not in SCALES:
            raise PriorError(f"unknown effect scale {scale!r} (known: {', '.join(SCALES)})")
        if self.scale != "log OR":
            raise PriorError(f"prior set '{self.name}' is already on the {self.scale} scale")
        if scale == "log OR":
            return self
        p0 = typical_control_risk
        if p0 is None or not (isinstance(p0, int | float) and 0 < p0 < 1):
            raise PriorError(
                f"prior set '{self.name}': the log RR scale needs a typical control risk in "
                f"(0, 1), not {p0!r}"
            )
        k = 1.0 - float(p0)
        effect, tau = self.log_rr or (_scaled_effect(self.effect, k), _scaled_tau(self.tau, k))
        return replace(
            self,
            effect=effect,
            tau=tau,
            covariate=Normal(self.covariate.mu * k, self.covariate.sigma * k),
            scale="log RR",
            control_risk=float(p0),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON/TOML friendly); it also keys the fit cache.

        ``scale`` and ``control_risk`` appear only for a set mapped to the log RR, so a log
        OR set keeps the form (and the cache key) it always had.
        """
        out: dict[str, Any] = {"name": self.name}
        for slot in SLOTS:
            dist = getattr(self, slot)
            params = {f.name: getattr(dist, f.name) for f in fields(dist)}
            out[slot] = {"family": dist.family, **params}
        if self.scale != "log OR":
            out["scale"] = self.scale
            out["control_risk"] = self.control_risk
        if self.log_rr is not None:
            out["log_rr"] = {slot: {"family": dist.family, **{f.name: getattr(dist, f.name)
                                                             for f in fields(dist)}}
                             for slot, dist in zip(("effect", "tau"), self.log_rr,
                                                   strict=True)}
        return out

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> PriorSet:
        """Rebuild a set from :meth:`to_dict` (e.g. a fit's ``prior_json`` attribute)."""
        name = str(record.get("name", "prior"))
        slots = {
            slot: _parse_distribution(f"prior set '{name}'", slot, record[slot])
            for slot in SLOTS
            if slot in record
        }
        extra: dict[str, Any] = {}
        if "scale" in record:
            extra = {"scale": record["scale"], "control_risk": record.get("control_risk")}
        if "log_rr" in record:
            extra["log_rr"] = (
                _parse_distribution(f"prior set '{name}' log_rr", "effect",
                                    record["log_rr"]["effect"]),
                _parse_distribution(f"prior set '{name}' log_rr", "tau",
                                    record["log_rr"]["tau"]),
            )
        return cls(name=name, **slots, **extra)

    def __str__(self) -> str:
        first = self.description.strip().splitlines()[0] if self.description.strip() else ""
        return f"{self.name}: {self.summary}" + (f"\n  {first}" if first else "")


def _scaled_effect(effect: EffectPrior, k: float) -> EffectPrior:
    """Return the prior of k * d (k > 0), in the same family."""
    return replace(effect, mu=effect.mu * k, sigma=effect.sigma * k)


def _ratio_text(value: float) -> str:
    """Format a ratio for words: ``0.67``, ``1``, ``1.5``; far ones as ``3e-09``."""
    if 0.01 <= value < 100:
        return f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{value:.1g}"


def _scaled_tau(tau: TauPrior, k: float) -> TauPrior:
    """Return the prior of k * tau (k > 0), in the same family."""
    if isinstance(tau, HalfNormal):
        return HalfNormal(tau.sigma * k)
    if isinstance(tau, HalfCauchy):
        return HalfCauchy(tau.scale * k)
    if isinstance(tau, InverseGamma):
        # k tau ~ InvGamma(shape, k scale).
        return InverseGamma(tau.shape, tau.scale * k)
    # (k tau)^2 = k^2 tau^2: log tau^2 shifts by 2 log k, its SD is unchanged.
    return LogNormalTau2(tau.mu + 2 * math.log(k), tau.sigma)


def median_control_risk(events_control: Any, n_control: Any) -> float:
    """Return the typical control risk p0 for :meth:`PriorSet.on_scale`: the median risk.

    Parameters
    ----------
    events_control, n_control : array-like
        Control-arm events and participants per row (rows with no participants are left out).

    Returns
    -------
    float
        The median of ``events_control / n_control``, clipped to [0.5 / n, 1 - 0.5 / n] of the
        largest arm so that the log RR mapping's factor 1 - p0 stays positive.
    """
    import numpy as np

    events = np.asarray(events_control, dtype=float).ravel()
    n = np.asarray(n_control, dtype=float).ravel()
    keep = n > 0
    if not keep.any():
        raise PriorError("no control-arm participants: the typical control risk is undefined")
    risk = float(np.median(events[keep] / n[keep]))
    half = 0.5 / float(n[keep].max())
    return min(max(risk, half), 1.0 - half)


_BUILTIN: dict[str, PriorSet] = {}


def _builtin(factory: Callable[[], PriorSet]) -> Callable[[], PriorSet]:
    """Register a built-in prior set; its docstring becomes the set's description."""
    made = factory()
    name = made.name
    _BUILTIN[name] = replace(made, description=inspect.cleandoc(factory.__doc__ or ""))

    @functools.wraps(factory)
    def registered() -> PriorSet:
        return _BUILTIN[name]

    return registered


@_builtin
def weakly_informative() -> PriorSet:
    """Default: d ~ N(0, 1), tau ~ HalfNormal(0.5), alpha ~ N(0, 2), beta ~ N(0, 1).

    N(0, 1) on the log OR puts 95% prior mass on ORs between 0.14 and 7.1: it rules out only
    implausibly large effects. HalfNormal(0.5) on tau is the weakly informative heterogeneity
    prior recommended for meta-analyses of few trials on the log-OR/log-RR scale: it gives
    95% prior mass to tau < 0.98 ("fairly high" heterogeneity).

    References
    ----------
    Friede T, Röver C, Wandel S, Neuenschwander B. Meta-analysis of few small studies in orphan
    diseases. Res Synth Methods. 2017;8:79-91. doi:10.1002/jrsm.1217.
    Röver C, Bender R, Dias S, Schmid CH, Schmidli H, Sturtz S, Weber S, Friede T. On weakly
    informative prior distributions for the heterogeneity parameter in Bayesian random-effects
    meta-analysis. Res Synth Methods. 2021;12:448-474. doi:10.1002/jrsm.1475.
    """
    return PriorSet("weakly_informative", effect=Normal(0.0, 1.0), tau=HalfNormal(0.5))


@_builtin
def conservative_heterogeneity() -> PriorSet:
    """As the default, but tau ~ HalfNormal(1.0): more prior weight on large heterogeneity.

    The "conservative" scale of Friede et al. (2017) and Röver et al. (2021); it widens the
    predictive interval and pulls trial estimates less towards the pooled effect.

    References
    ----------
    Friede T, Röver C, Wandel S, Neuenschwander B. Res Synth Methods. 2017;8:79-91.
    doi:10.1002/jrsm.1217.
    Röver C, et al. Res Synth Methods. 2021;12:448-474. doi:10.1002/jrsm.1475.
    """
    return PriorSet("conservative_heterogeneity", effect=Normal(0.0, 1.0), tau=HalfNormal(1.0))


@_builtin
def heavy_tailed() -> PriorSet:
    """As the default, but tau ~ HalfCauchy(0.5): heavy tail, little shrinkage of large tau.

    References
    ----------
    Gelman A. Prior distributions for variance parameters in hierarchical models. Bayesian
    Analysis. 2006;1:515-534. doi:10.1214/06-BA117A.
    Röver C, et al. Res Synth Methods. 2021;12:448-474. doi:10.1002/jrsm.1475.
    """
    return PriorSet("heavy_tailed", effect=Normal(0.0, 1.0), tau=HalfCauchy(0.5))


def _turner(name: str, mu: float, sigma: float) -> PriorSet:
    return PriorSet(name, effect=Normal(0.0, 1.0), tau=LogNormalTau2(mu, sigma))


@_builtin
def turner_obstetric() -> PriorSet:
    """Empirical heterogeneity prior, obstetric outcomes: tau^2 ~ LogNormal(-3.52, 1.74).

    Turner et al. (2015), Table IV, row "obstetric outcomes", column "pharmacological vs.
    placebo / control": predictive distribution of tau^2 (log OR scale) from meta-analyses
    in the Cochrane Database of Systematic Reviews. Median tau = exp(-3.52 / 2) = 0.17.
    Effect, baseline and covariate priors as the default. For datasets declaring
    ``outcome_type = "obstetric"``. On the normal (log RR) model it is mapped to the log RR
    scale at the dataset's typical control risk (:meth:`PriorSet.on_scale`): Turner et al.
    derived it for the log OR only.

    References
    ----------
    Turner RM, Jackson D, Wei Y, Thompson SG, Higgins JPT. Predictive distributions for
    between-study heterogeneity and simple methods for their application in Bayesian
    meta-analysis. Stat Med. 2015;34:984-998. doi:10.1002/sim.6381.
    Values as in R bayesmeta 3.4, ``TurnerEtAlParameters`` (Röver C. J Stat Softw.
    2020;93(6):1-51. doi:10.18637/jss.v093.i06).
    """
    return _turner("turner_obstetric", -3.52, 1.74)


@_builtin
def turner_mortality() -> PriorSet:
    """Empirical heterogeneity prior, all-cause mortality: tau^2 ~ LogNormal(-3.95, 1.34).

    Turner et al. (2015), Table IV, row "all-cause mortality", column "pharmacological vs.
    placebo / control" (log OR scale). Median tau = exp(-3.95 / 2) = 0.14. Effect, baseline
    and covariate priors as the default. For datasets declaring
    ``outcome_type = "all_cause_mortality"``; mapped to the log RR like the other sets.

    References
    ----------
    Turner RM, Jackson D, Wei Y, Thompson SG, Higgins JPT. Predictive distributions for
    between-study heterogeneity and simple methods for their application in Bayesian
    meta-analysis. Stat Med. 2015;34:984-998. doi:10.1002/sim.6381.
    Values as in R bayesmeta 3.4, ``TurnerEtAlParameters`` (Röver C. J Stat Softw.
    2020;93(6):1-51. doi:10.18637/jss.v093.i06).
    """
    return _turner("turner_mortality", -3.95, 1.34)


@_builtin
def turner_semi_objective() -> PriorSet:
    """Empirical heterogeneity prior, semi-objective outcomes: tau^2 ~ LogNormal(-3.71, 1.74).

    Turner et al. (2015), Table IV, row "cause-specific mortality / major morbidity event /
    composite (mortality or morbidity)", column "pharmacological vs. placebo / control" (log
    OR scale). Table IV splits the semi-objective outcomes into six rows that share
    sigma = 1.74 and differ in mu (obstetric -3.52, cause-specific mortality / major
    morbidity -3.71, resource use -2.34, surgical / device success -2.14, withdrawals -2.99,
    internal / structure-related -2.71); this set takes the row of the prototypical
    semi-objective outcome, an adjudicated clinical event. A dataset whose outcome is one of
    the other rows should give that row in a prior file (obstetric outcomes have their own
    set). Median tau = exp(-3.71 / 2) = 0.16. For ``outcome_type = "semi_objective"``.

    References
    ----------
    Turner RM, Jackson D, Wei Y, Thompson SG, Higgins JPT. Predictive distributions for
    between-study heterogeneity and simple methods for their application in Bayesian
    meta-analysis. Stat Med. 2015;34:984-998. doi:10.1002/sim.6381.
    Values as in R bayesmeta 3.4, ``TurnerEtAlParameters`` (Röver C. J Stat Softw.
    2020;93(6):1-51. doi:10.18637/jss.v093.i06).
    """
    return _turner("turner_semi_objective", -3.71, 1.74)


@_builtin
def turner_subjective() -> PriorSet:
    """Empirical heterogeneity prior, subjective outcomes: tau^2 ~ LogNormal(-2.70, 1.52).

    Turner et al. (2015), Table IV, row "subjective outcomes (various)", column
    "pharmacological vs. placebo / control" (log OR scale). Median tau = exp(-2.70 / 2) =
    0.26: subjectively assessed outcomes are more heterogeneous. The other subjective rows
    of Table IV (pain, quality of life, mental health, ...) have mu from -2.29 to -1.77 and
    sigma 1.51-1.54. For ``outcome_type = "subjective"``.

    References
    ----------
    Turner RM, Jackson D, Wei Y, Thompson SG, Higgins JPT. Predictive distributions for
    between-study heterogeneity and simple methods for their application in Bayesian
    meta-analysis. Stat Med. 2015;34:984-998. doi:10.1002/sim.6381.
    Values as in R bayesmeta 3.4, ``TurnerEtAlParameters`` (Röver C. J Stat Softw.
    2020;93(6):1-51. doi:10.18637/jss.v093.i06).
    """
    return _turner("turner_subjective", -2.70, 1.52)


@_builtin
def vague() -> PriorSet:
    """Nearly flat: d ~ N(0, 10), tau ~ HalfNormal(5), alpha ~ N(0, 10), beta ~ N(0, 1).

    What "non-informative" analyses often use; with ten small trials the tau prior still
    matters (Lambert et al. 2005), which is why it is a sensitivity analysis, not the default.

    References
    ----------
    Lambert PC, Sutton AJ, Burton PR, Abrams KR, Jones DR. How vague is vague? A simulation
    study of the impact of the use of vague prior distributions in MCMC using WinBUGS.
    Stat Med. 2005;24:2401-2428. doi:10.1002/sim.2112.
    """
    return PriorSet(
        "vague", effect=Normal(0.0, 10.0), tau=HalfNormal(5.0), baseline=Normal(0.0, 10.0)
    )


# Spiegelhalter et al.'s pair: the enthusiastic prior is centred on the clinically hoped-for
# effect (OR 1.5) with 5% probability of no benefit; the sceptical prior is centred on no
# effect with the same SD, so 5% probability of an effect at least that large.
_SPIEGELHALTER_SD = math.log(1.5) / float(ndtri(0.95))  # 0.2465 (ndtri = norm.ppf, bit for bit)


@_builtin
def skeptical() -> PriorSet:
    """Sceptical: d ~ N(0, log(1.5) / 1.645 = 0.2465), P(OR > 1.5) = 0.05; tau HalfNormal(0.5).

    Spiegelhalter et al.'s sceptical prior: centred on no effect, with the SD of the paired
    enthusiastic prior, so that a benefit at least as large as the hoped-for OR of 1.5 has
    prior probability 5% (and likewise a harm of OR 1 / 1.5). 95% of its mass lies on ORs
    between 0.62 and 1.62. Earlier versions used SD 0.354 (95% of ORs in 0.5-2), which
    is not Spiegelhalter's construction.

    References
    ----------
    Spiegelhalter DJ, Freedman LS, Parmar MKB. Bayesian approaches to randomized trials.
    J R Stat Soc A. 1994;157:357-416. doi:10.2307/2983527.
    Spiegelhalter DJ, Abrams KR, Myles JP. Bayesian Approaches to Clinical Trials and
    Health-Care Evaluation. Wiley; 2004. Section 5.5.
    """
    return PriorSet("skeptical", effect=Normal(0.0, _SPIEGELHALTER_SD), tau=HalfNormal(0.5))


@_builtin
def enthusiastic() -> PriorSet:
    """Enthusiastic: d ~ N(log 1.5, 0.2465), 5% prior probability of no benefit; tau HN(0.5).

    Centred on the OR of 1.5 an advocate expects, with P(OR < 1) = Phi(-log 1.5 / 0.2465)
    = 0.05 exactly (SD = log(1.5) / 1.645; the sceptical prior has the same SD). Its mean
    points towards benefit: where fewer events is better it expects OR 1/1.5 = 0.67, with 5%
    prior probability of OR > 1.

    References
    ----------
    Spiegelhalter DJ, Freedman LS, Parmar MKB. J R Stat Soc A. 1994;157:357-416.
    doi:10.2307/2983527.
    Spiegelhalter DJ, Abrams KR, Myles JP. Bayesian Approaches to Clinical Trials and
    Health-Care Evaluation. Wiley; 2004. Section 5.5.
    """
    return PriorSet(
        "enthusiastic", effect=Normal(math.log(1.5), _SPIEGELHALTER_SD), tau=HalfNormal(0.5)
    )


def _bartos(subfield: str) -> PriorSet:
    """Build the Bartoš et al. (2023) set of one Cochrane subfield (both scales)."""
    sets = {}
    notes = []
    for scale in ("log OR", "log RR"):
        t_scale, df, shape, ig_scale = bartos_parameters(subfield, scale)
        if shape is None or ig_scale is None:
            # No heterogeneity prior for this subfield: the whole database's.
            _, _, shape, ig_scale = bartos_parameters("Cochrane", scale)
            notes.append(scale)
        assert shape is not None and ig_scale is not None  # the whole database has both
        sets[scale] = (StudentT(0.0, float(t_scale), float(df)),
                       InverseGamma(float(shape), float(ig_scale)))
    name = "bartos_" + subfield_slug(subfield)
    effect, tau = sets["log OR"]
    fallback = (f" Bartoš et al. give no heterogeneity prior for {subfield}: tau takes the "
                "whole database's." if notes else "")
    description = (
        f"Empirical priors for {subfield}: d ~ {effect}, tau ~ {tau} on the log OR; "
        f"d ~ {sets['log RR'][0]}, tau ~ {sets['log RR'][1]} on the log RR.{fallback}\n\n"
        "Bartoš et al. (2023) fitted Student-t effect and inverse-gamma heterogeneity (tau, "
        "the between-study SD) distributions to the binary-outcome meta-analyses of the "
        "Cochrane Database of Systematic Reviews, per review group and overall, on the log "
        "OR and the log RR scale; the normal (log RR) model uses their log RR priors, not a "
        "mapping of the log OR ones. Baseline and covariate priors as the default.\n\n"
        "References\n----------\n"
        "Bartoš F, Otte WM, Gronau QF, Timmers B, Ly A, Wagenmakers E-J. Empirical prior "
        "distributions for Bayesian meta-analyses of binary and time-to-event outcomes. Res "
        "Synth Methods 2023. arXiv:2306.11468, doi:10.48550/arXiv.2306.11468. Values of "
        "BayesTools 0.3.0 prior_informed()."
    )
    return PriorSet(name, effect=effect, tau=tau, description=description,
                    log_rr=sets["log RR"])


#: Every Bartoš et al. (2023) set by registry name (``bartos_<subfield>``); ``bartos_cochrane``
#: (the whole database) is also a built-in set.
BARTOS_SETS: Mapping[str, PriorSet] = MappingProxyType(
    {p.name: p for p in map(_bartos, BARTOS_2023)}
)
_BUILTIN["bartos_cochrane"] = BARTOS_SETS["bartos_cochrane"]


def bartos_prior_set(subfield: str = "Cochrane") -> PriorSet:
    """Return Bartoš et al.'s (2023) empirical prior set of a Cochrane subfield.

    Parameters
    ----------
    subfield : str
        A review group as BayesTools spells it (``"Acute Respiratory Infections"``), its slug
        (``acute_respiratory_infections``), or ``"Cochrane"`` for the whole database.

    Returns
    -------
    PriorSet
        ``bartos_<slug>``: Student-t effect and inverse-gamma tau on the log OR, with the log
        RR pair in ``log_rr``.

    Examples
    --------
    >>> str(bartos_prior_set().effect), str(bartos_prior_set().tau)
    ('t(0, 0.58, 4 df)', 'InvGamma(1.77, 0.55)')
    """
    name = "bartos_" + subfield_slug(subfield)
    if name not in BARTOS_SETS:
        known = ", ".join(sorted(n.removeprefix("bartos_") for n in BARTOS_SETS))
        raise PriorError(f"unknown Cochrane subfield {subfield!r} (known: {known})")
    return BARTOS_SETS[name]


def van_zwet_prior(unit_se: float) -> NormalMixture:
    """Return van Zwet et al.'s (2021) effect prior for a study of standard error ``unit_se``.

    The signal-to-noise ratio of Cochrane trials, beta / s, is a mixture of zero-mean normals
    (:data:`rebayes.bayes.empirical_priors.VAN_ZWET_2021`); the prior of beta is that mixture
    with every SD multiplied by s. The model-averaged bias analysis takes s to be the median
    standard error of the meta-analysis' trials, the scale van Zwet's corpus was collected
    on (one trial), not the pooled estimate's, which would make the prior narrower the more
    trials were pooled.

    Parameters
    ----------
    unit_se : float
        The standard error the SNR is relative to (on the log ratio scale).

    Returns
    -------
    NormalMixture
    """
    _check_scale("van_zwet_prior", "unit_se", unit_se)
    return NormalMixture(tuple(VAN_ZWET_2021["weights"]),
                         tuple(float(sd) * unit_se for sd in VAN_ZWET_2021["snr_sd"]))


#: Built-in prior sets by name, in the order they are reported.
PRIOR_SETS: Mapping[str, PriorSet] = MappingProxyType(_BUILTIN)

#: The Turner et al. (2015) set for each declared ``outcome_type`` (DatasetSchema).
TURNER_BY_OUTCOME: Mapping[str, str] = MappingProxyType(
    {
        "all_cause_mortality": "turner_mortality",
        "semi_objective": "turner_semi_objective",
        "subjective": "turner_subjective",
        "obstetric": "turner_obstetric",
    }
)
#: Outcome types :func:`priors_for` knows (those of ``dataset.toml``).
OUTCOME_TYPES: tuple[str, ...] = (*TURNER_BY_OUTCOME, "unspecified")
# Sets that fit any outcome, in report order; the matching Turner set goes after heavy_tailed.
_GENERIC = ("weakly_informative", "conservative_heterogeneity", "heavy_tailed")
_EFFECT_SENSITIVITY = ("vague", "skeptical", "enthusiastic")


def priors_for(outcome_type: str) -> list[str]:
    """Names of the built-in prior sets that fit a dataset's declared outcome type.

    Every outcome gets the generic heterogeneity priors and the effect-prior sensitivity
    sets; an outcome type Turner et al. (2015) tabulate gets its own empirical tau prior
    (and no other outcome's). ``"unspecified"`` gets the generic sets only.

    Parameters
    ----------
    outcome_type : {"all_cause_mortality", "semi_objective", "subjective", "obstetric", \
"unspecified"}
        ``DatasetSchema.outcome_type``.

    Returns
    -------
    list of str

    Examples
    --------
    >>> from rebayes.bayes.priors import priors_for
    >>> priors_for("obstetric")  # doctest: +NORMALIZE_WHITESPACE
    ['weakly_informative', 'conservative_heterogeneity', 'heavy_tailed', 'turner_obstetric',
     'vague', 'skeptical', 'enthusiastic']
    """
    if outcome_type not in OUTCOME_TYPES:
        raise PriorError(
            f"unknown outcome type {outcome_type!r} (known: {', '.join(OUTCOME_TYPES)})"
        )
    turner = TURNER_BY_OUTCOME.get(outcome_type)
    return [*_GENERIC, *([turner] if turner else []), *_EFFECT_SENSITIVITY]


_FAMILIES: dict[str, Any] = {cls.family: cls for cls in (*EFFECT_FAMILIES, *TAU_FAMILIES)}


def _parse_distribution(
    where: str, slot: str, entry: Any, file: str | None = None, table: str = ""
) -> Any:
    """Turn ``{family = "half_normal", sigma = 0.5}`` into a distribution object.

    An unknown key's message names ``file`` (default ``where``) and the key's path from
    ``table`` (``narrow_tau.``).
    """
    if not isinstance(entry, Mapping):
        raise PriorError(f'{where} {slot}: expected a table like {{ family = "normal", ... }}')
    entry = dict(entry)
    family = entry.pop("family", None)
    allowed = SLOTS[slot]
    known = ", ".join(cls.family for cls in allowed)
    if family not in _FAMILIES or _FAMILIES[family] not in allowed:
        raise PriorError(f"{where} {slot}: unknown family {family!r} (known: {known})")
    cls = _FAMILIES[family]
    params = {f.name for f in fields(cls)}
    check_keys(entry, params, file or where, f"{table}{slot}.", PriorError)
    try:
        return cls(**entry)
    except PriorError as exc:
        raise PriorError(f"{where} {slot}: {exc}") from None


def load_prior_file(path: str | Path) -> dict[str, PriorSet]:
    """Read user prior sets from a TOML file (format in the module docstring).

    Parameters
    ----------
    path : str or Path
        The TOML file. Each top-level table is one prior set.

    Returns
    -------
    dict of str to PriorSet

    Raises
    ------
    PriorError
        One line naming the file, the set and the field.
    """
    path = Path(path)
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PriorError(f"{path}: no such prior file") from None
    except tomllib.TOMLDecodeError as exc:
        raise PriorError(f"{path}: not valid TOML: {exc}") from None
    found: dict[str, PriorSet] = {}
    for name, entry in table.items():
        where = f"{path}: [{name}]"
        if not isinstance(entry, Mapping):
            raise PriorError(f"{where}: expected a table of effect/tau/baseline/covariate")
        check_keys(entry, (*SLOTS, "base", "description"), str(path), f"{name}.", PriorError)
        entry = dict(entry)
        base_name = entry.pop("base", DEFAULT_PRIOR)
        base = found.get(base_name) or PRIOR_SETS.get(base_name) or BARTOS_SETS.get(base_name)
        if base is None:
            raise PriorError(f"{where}: unknown base prior set {base_name!r}")
        description = entry.pop("description", f"User prior set from {path} (base: {base_name}).")
        slots = {
            slot: _parse_distribution(where, slot, value, str(path), f"{name}.")
            for slot, value in entry.items()
        }
        # A base's own log RR priors describe its effect and tau: a new effect or tau drops them.
        native = None if {"effect", "tau"} & set(slots) else base.log_rr
        found[name] = replace(base, name=name, description=str(description), log_rr=native,
                              **slots)
    return found


def get_prior(name: str | PriorSet, extra: Mapping[str, PriorSet] | None = None) -> PriorSet:
    """Look a prior set up by name among the built-ins and ``extra`` (user) sets.

    Parameters
    ----------
    name : str or PriorSet
        A registry name, or a PriorSet (returned as is).
    extra : mapping, optional
        User sets, e.g. from :func:`load_prior_file`; they shadow built-ins of the same name.

    Returns
    -------
    PriorSet

    Examples
    --------
    >>> from rebayes.bayes.priors import get_prior
    >>> get_prior("skeptical").summary
    'd ~ N(0, 0.246505); tau ~ HalfNormal(0.5); alpha ~ N(0, 2); beta ~ N(0, 1)'
    """
    if isinstance(name, PriorSet):
        return name
    known = {**PRIOR_SETS, **(extra or {})}
    if name not in known and name in BARTOS_SETS:
        return BARTOS_SETS[name]
    if name not in known:
        raise PriorError(f"unknown prior set '{name}' (known: {', '.join(known)})")
    return known[name]


# What ``resolve_priors(None)`` gave before the outcome-specific Turner sets existed; kept
# for callers that do not say the dataset's outcome type.
_LEGACY_DEFAULT = (*_GENERIC, "turner_obstetric", *_EFFECT_SENSITIVITY)


def resolve_priors(
    names: Iterable[str | PriorSet] | None,
    prior_file: str | Path | None = None,
    outcome_type: str | None = None,
) -> list[PriorSet]:
    """Resolve prior names (None = the dataset's built-in sets and every user set).

    Parameters
    ----------
    names : iterable of str or PriorSet, or None
        The sets to use, in order. None means the built-in sets that fit ``outcome_type``
        (:func:`priors_for`), then all sets in ``prior_file``.
    prior_file : str or Path, optional
        TOML file with user sets.
    outcome_type : str, optional
        The dataset's ``DatasetSchema.outcome_type``, used when ``names`` is None. Not given:
        the sets offered before outcome types existed (the generic sets and
        ``turner_obstetric``), for backward compatibility; pass it.

    Returns
    -------
    list of PriorSet
    """
    extra = load_prior_file(prior_file) if prior_file is not None else {}
    if names is None:
        builtin = priors_for(outcome_type) if outcome_type is not None else _LEGACY_DEFAULT
        return [
            *(PRIOR_SETS[k] for k in builtin),
            *(v for k, v in extra.items() if k not in PRIOR_SETS),
        ]
    resolved = [get_prior(name, extra) for name in names]
    seen: set[str] = set()
    for prior in resolved:
        if prior.name in seen:
            raise PriorError(f"prior set '{prior.name}' is listed twice")
        seen.add(prior.name)
    return resolved
