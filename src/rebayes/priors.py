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

Families: ``normal`` (mu, sigma) for effect, baseline and covariate; ``half_normal`` (sigma),
``half_cauchy`` (scale) and ``lognormal_tau2`` (mu, sigma: tau squared is log-normal, as in
Turner et al. 2015) for tau. A bad entry is a one-line :class:`PriorError`.
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

from scipy import stats

from rebayes.errors import RebayesError

__all__ = [
    "DEFAULT_PRIOR",
    "HalfCauchy",
    "HalfNormal",
    "LogNormalTau2",
    "Normal",
    "PRIOR_SETS",
    "PriorError",
    "PriorSet",
    "get_prior",
    "load_prior_file",
    "resolve_priors",
]

DEFAULT_PRIOR = "weakly_informative"


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
        return stats.norm(self.mu, self.sigma)

    def __str__(self) -> str:
        return f"N({self.mu:g}, {self.sigma:g})"


@dataclass(frozen=True)
class HalfNormal:
    """Half-normal with scale sigma, for tau (Friede et al. 2017; Röver et al. 2021)."""

    sigma: float = 0.5
    family: ClassVar[str] = "half_normal"

    def __post_init__(self) -> None:
        _check_scale("half_normal", "sigma", self.sigma)

    def frozen(self) -> Any:
        """Return the scipy.stats frozen distribution of tau."""
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
        return stats.lognorm(s=self.sigma / 2, scale=math.exp(self.mu / 2))

    def __str__(self) -> str:
        return f"LogNormal({self.mu:g}, {self.sigma:g})"


TauPrior = HalfNormal | HalfCauchy | LogNormalTau2
TAU_FAMILIES: tuple[type, ...] = (HalfNormal, HalfCauchy, LogNormalTau2)
EFFECT_FAMILIES: tuple[type, ...] = (Normal,)
# Which families each slot of a prior set accepts.
SLOTS: dict[str, tuple[type, ...]] = {
    "effect": EFFECT_FAMILIES,
    "tau": TAU_FAMILIES,
    "baseline": EFFECT_FAMILIES,
    "covariate": EFFECT_FAMILIES,
}


@dataclass(frozen=True)
class PriorSet:
    """A named, frozen set of priors for one fit.

    Attributes
    ----------
    name : str
        Registry name (``weakly_informative``).
    effect : Normal
        Prior of the pooled effect ``d`` (log OR in the binomial model, log RR in the normal).
    tau : HalfNormal, HalfCauchy or LogNormalTau2
        Prior of the between-trial standard deviation.
    baseline : Normal
        Prior of each stratum's control log odds ``alpha``.
    covariate : Normal
        Prior of each meta-regression coefficient ``beta``.
    description : str
        What the set is and where it comes from.
    """

    name: str
    effect: Normal
    tau: TauPrior
    baseline: Normal = field(default_factory=lambda: Normal(0.0, 2.0))
    covariate: Normal = field(default_factory=lambda: Normal(0.0, 1.0))
    description: str = ""

    def __post_init__(self) -> None:
        for slot, allowed in SLOTS.items():
            value = getattr(self, slot)
            if not isinstance(value, allowed):
                names = ", ".join(f.family for f in allowed)
                raise PriorError(
                    f"prior set '{self.name}': {slot} must be one of {names}, "
                    f"not {type(value).__name__}"
                )

    @property
    def summary(self) -> str:
        """One line: ``d ~ N(0, 1); tau ~ HalfNormal(0.5); alpha ~ N(0, 2); beta ~ N(0, 1)``."""
        tau = "tau^2" if isinstance(self.tau, LogNormalTau2) else "tau"
        return (
            f"d ~ {self.effect}; {tau} ~ {self.tau}; alpha ~ {self.baseline}; "
            f"beta ~ {self.covariate}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON/TOML friendly); it also keys the fit cache."""
        out: dict[str, Any] = {"name": self.name}
        for slot in SLOTS:
            dist = getattr(self, slot)
            params = {f.name: getattr(dist, f.name) for f in fields(dist)}
            out[slot] = {"family": dist.family, **params}
        return out

    def __str__(self) -> str:
        first = self.description.strip().splitlines()[0] if self.description.strip() else ""
        return f"{self.name}: {self.summary}" + (f"\n  {first}" if first else "")


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


@_builtin
def turner_obstetric() -> PriorSet:
    """Empirical heterogeneity prior: tau^2 ~ LogNormal(mu=-3.52, sigma=1.74).

    Turner et al. (2015), Table IV: predictive distribution of tau^2 (log OR scale) for
    obstetric outcomes in pharmacological vs placebo/control comparisons, from the Cochrane
    Database of Systematic Reviews. Median tau = exp(-3.52 / 2) = 0.17. Effect, baseline and
    covariate priors as the default. In the normal (log RR) model it is used on the log RR
    scale, which Turner et al. did not derive it for.

    References
    ----------
    Turner RM, Jackson D, Wei Y, Thompson SG, Higgins JPT. Predictive distributions for
    between-study heterogeneity and simple methods for their application in Bayesian
    meta-analysis. Stat Med. 2015;34:984-998. doi:10.1002/sim.6381.
    """
    return PriorSet("turner_obstetric", effect=Normal(0.0, 1.0), tau=LogNormalTau2(-3.52, 1.74))


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


@_builtin
def skeptical() -> PriorSet:
    """Sceptical: d ~ N(0, 0.354), 95% prior mass on ORs between 0.5 and 2; tau HalfNormal(0.5).

    A prior centred on no effect that a sceptic would hold: large effects in either direction
    are unlikely (exp(1.96 x 0.354) = 2.0).

    References
    ----------
    Spiegelhalter DJ, Freedman LS, Parmar MKB. Bayesian approaches to randomized trials.
    J R Stat Soc A. 1994;157:357-416. doi:10.2307/2983527.
    Spiegelhalter DJ, Abrams KR, Myles JP. Bayesian Approaches to Clinical Trials and
    Health-Care Evaluation. Wiley; 2004. Section 5.5.
    """
    return PriorSet("skeptical", effect=Normal(0.0, 0.354), tau=HalfNormal(0.5))


@_builtin
def enthusiastic() -> PriorSet:
    """Enthusiastic: d ~ N(log 1.5, 0.246), 5% prior probability of no benefit; tau HN(0.5).

    Centred on the OR of 1.5 an advocate expects, with P(OR < 1) = Phi(-log 1.5 / 0.246)
    = 0.05.

    References
    ----------
    Spiegelhalter DJ, Freedman LS, Parmar MKB. J R Stat Soc A. 1994;157:357-416.
    doi:10.2307/2983527.
    Spiegelhalter DJ, Abrams KR, Myles JP. Bayesian Approaches to Clinical Trials and
    Health-Care Evaluation. Wiley; 2004. Section 5.5.
    """
    return PriorSet("enthusiastic", effect=Normal(math.log(1.5), 0.246), tau=HalfNormal(0.5))


#: Built-in prior sets by name, in the order they are reported.
PRIOR_SETS: Mapping[str, PriorSet] = MappingProxyType(_BUILTIN)

_FAMILIES: dict[str, type] = {cls.family: cls for cls in (*EFFECT_FAMILIES, *TAU_FAMILIES)}


def _parse_distribution(where: str, slot: str, entry: Any) -> Any:
    """Turn ``{family = "half_normal", sigma = 0.5}`` into a distribution object."""
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
    unknown = sorted(set(entry) - params)
    if unknown:
        raise PriorError(
            f"{where} {slot}: unknown parameter '{unknown[0]}' for {family} "
            f"(takes {', '.join(sorted(params))})"
        )
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
        entry = dict(entry)
        base_name = entry.pop("base", DEFAULT_PRIOR)
        base = found.get(base_name) or PRIOR_SETS.get(base_name)
        if base is None:
            raise PriorError(f"{where}: unknown base prior set {base_name!r}")
        description = entry.pop("description", f"User prior set from {path} (base: {base_name}).")
        unknown = sorted(set(entry) - set(SLOTS))
        if unknown:
            raise PriorError(
                f"{where}: unknown field '{unknown[0]}' (use {', '.join(SLOTS)}, base, description)"
            )
        slots = {slot: _parse_distribution(where, slot, value) for slot, value in entry.items()}
        found[name] = replace(base, name=name, description=str(description), **slots)
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
    >>> from rebayes.priors import get_prior
    >>> get_prior("skeptical").summary
    'd ~ N(0, 0.354); tau ~ HalfNormal(0.5); alpha ~ N(0, 2); beta ~ N(0, 1)'
    """
    if isinstance(name, PriorSet):
        return name
    known = {**PRIOR_SETS, **(extra or {})}
    if name not in known:
        raise PriorError(f"unknown prior set '{name}' (known: {', '.join(known)})")
    return known[name]


def resolve_priors(
    names: Iterable[str | PriorSet] | None, prior_file: str | Path | None = None
) -> list[PriorSet]:
    """Resolve prior names (None = every built-in and user set) into prior sets.

    Parameters
    ----------
    names : iterable of str or PriorSet, or None
        The sets to use, in order; None means all built-ins, then all sets in ``prior_file``.
    prior_file : str or Path, optional
        TOML file with user sets.

    Returns
    -------
    list of PriorSet
    """
    extra = load_prior_file(prior_file) if prior_file is not None else {}
    if names is None:
        return [*PRIOR_SETS.values(), *(v for k, v in extra.items() if k not in PRIOR_SETS)]
    resolved = [get_prior(name, extra) for name in names]
    seen: set[str] = set()
    for prior in resolved:
        if prior.name in seen:
            raise PriorError(f"prior set '{prior.name}' is listed twice")
        seen.add(prior.name)
    return resolved
