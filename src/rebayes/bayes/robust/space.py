"""The model space of the robust Bayesian model average: which models, which priors, how likely.

After RoBMA-PSMA (Bartoš et al. 2023, Res Synth Methods 14:99-116), restricted as rebayes'
bias analysis asks: every model crosses

- the effect: absent (mu = 0) or present (mu ~ the effect prior);
- heterogeneity: absent (tau = 0, fixed effect) or present (tau ~ the heterogeneity prior);
- publication bias: none; PET (the estimate's mean grows with its standard error,
  y_i ~ N(mu + b se_i, ...)); PEESE (with its variance, y_i ~ N(mu + b se_i^2, ...)); or a
  one-sided step-function selection model with cut points p = 0.025, 0.05 and 0.5 (the most
  detailed of RoBMA-PSMA's one-sided weight functions).

That is 2 x 2 x 4 = 16 models. Prior model probabilities are RoBMA-PSMA's: 1/2 for the
effect and for heterogeneity; publication bias absent 1/2, and the bias half split as RoBMA
splits it, half for the selection models (here the one weight function) and a quarter each
for PET and PEESE: selection 1/4, PET 1/8, PEESE 1/8.

Priors (:class:`RobustPriors`): the effect and heterogeneity priors are empirical (Bartoš et
al.'s Cochrane priors for the scale and subfield, :func:`rebayes.bayes.priors.bartos_prior_set`,
or van Zwet et al.'s signal-to-noise mixture for the effect); the bias priors are RoBMA's:
PET ~ Cauchy(0, 1) on [0, inf) (the coefficient of the standard error is unitless), PEESE ~
Cauchy(0, 5) on [0, inf) on Cohen's d, which is Cauchy(0, 5 / (pi / sqrt 3) = 2.76) on the log
OR (d = log OR sqrt 3 / pi, so b_logOR = b_d / (pi / sqrt 3)); rebayes uses the log OR's value
on the log RR too. The selection weights omega (1 for p <= 0.025, then non-increasing) follow
RoBMA's cumulative Dirichlet(1, 1, 1, 1): omega_j = sum of eta_j..eta_J for eta ~ Dirichlet.
Both bias priors point towards the direction of benefit: small studies (PET, PEESE) and
published ones (selection) are assumed to exaggerate benefit, the direction a sponsor hopes
for, so the data enter oriented so that benefit is positive.

References
----------
Bartoš F, Maier M, Wagenmakers E-J, Doucouliagos H, Stanley TD. Robust Bayesian
meta-analysis: model-averaging across complementary publication bias adjustment methods. Res
Synth Methods 2023;14:99-116. doi:10.1002/jrsm.1594.
Maier M, Bartoš F, Wagenmakers E-J. Robust Bayesian meta-analysis: addressing publication
bias with model-averaging. Psychol Methods 2023;28:107-22. doi:10.1037/met0000405.
Stanley TD, Doucouliagos H. Meta-regression approximations to reduce publication selection
bias. Res Synth Methods 2014;5:60-78.
Vevea JL, Hedges LV. A general linear model for estimating effect size in the presence of
publication bias. Psychometrika 1995;60:419-35.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from rebayes.bayes.priors import (
    EffectPrior,
    InverseGamma,
    NormalMixture,
    TauPrior,
    bartos_prior_set,
)

__all__ = [
    "BIAS_KINDS",
    "RobustModel",
    "RobustPriors",
    "default_priors",
    "model_space",
]

#: Publication-bias components, in report order.
BIAS_KINDS: tuple[str, ...] = ("none", "PET", "PEESE", "selection")
#: RoBMA-PSMA's split of the prior probability of bias (see the module docstring).
BIAS_PRIOR: dict[str, float] = {"none": 0.5, "PET": 0.125, "PEESE": 0.125, "selection": 0.25}
#: Cohen's d per log OR (Hasselblad & Hedges 1995): d = log OR sqrt(3) / pi.
LOG_OR_PER_D = math.pi / math.sqrt(3)
#: RoBMA's PET and PEESE prior scales (Cauchy on [0, inf)), PEESE moved to the log OR.
PET_SCALE = 1.0
PEESE_SCALE = 5.0 / LOG_OR_PER_D


@dataclass(frozen=True)
class RobustModel:
    """One model of the space.

    Attributes
    ----------
    effect : bool
        mu estimated (True) or 0.
    heterogeneity : bool
        tau estimated (True) or 0.
    bias : {"none", "PET", "PEESE", "selection"}
    prior_probability : float
    """

    effect: bool
    heterogeneity: bool
    bias: str
    prior_probability: float

    @property
    def name(self) -> str:
        """Short label, e.g. ``effect, random, PET`` or ``no effect, fixed, no bias``."""
        bias = "no bias" if self.bias == "none" else self.bias
        return (f"{'effect' if self.effect else 'no effect'}, "
                f"{'random' if self.heterogeneity else 'fixed'}, {bias}")

    def parameters(self, n_weights: int) -> tuple[str, ...]:
        """Names of the free parameters on the unconstrained scale, in integration order."""
        names: list[str] = []
        if self.effect:
            names.append("mu")
        if self.heterogeneity:
            names.append("log_tau")
        if self.bias in ("PET", "PEESE"):
            names.append("log_b")
        if self.bias == "selection":
            names += [f"logit_ratio_{j}" for j in range(1, n_weights + 1)]
        return tuple(names)


@dataclass(frozen=True)
class RobustPriors:
    """Priors of the model space.

    Attributes
    ----------
    effect : Normal, StudentT or NormalMixture
        Prior of mu (the benefit-oriented log ratio) in effect models.
    tau : a tau prior (inverse gamma for Bartoš et al.'s)
        Prior of tau in random-effects models.
    pet_scale, peese_scale : float
        Scales of the half-Cauchy priors of the PET and PEESE coefficients.
    steps : tuple of float
        One-sided p-value cut points of the selection model.
    omega_alpha : tuple of float
        Cumulative Dirichlet parameters of the selection weights (one per interval).
    scale : {"log OR", "log RR"}
    source : str
        Where the effect and heterogeneity priors come from (one line).
    """

    effect: EffectPrior | NormalMixture
    tau: TauPrior
    pet_scale: float = PET_SCALE
    peese_scale: float = PEESE_SCALE
    steps: tuple[float, ...] = (0.025, 0.05, 0.5)
    omega_alpha: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)
    scale: str = "log OR"
    source: str = ""
    bias_prior: dict[str, float] = field(default_factory=lambda: dict(BIAS_PRIOR))

    def __post_init__(self) -> None:
        if len(self.omega_alpha) != len(self.steps) + 1:
            raise ValueError("omega_alpha needs one entry per p-value interval "
                             f"({len(self.steps) + 1})")

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (JSON)."""
        return {
            "effect": str(self.effect),
            "tau": str(self.tau),
            "pet": f"half-Cauchy(0, {self.pet_scale:g})",
            "peese": f"half-Cauchy(0, {self.peese_scale:.3g})",
            "selection_steps": list(self.steps),
            "omega": f"cumulative Dirichlet({', '.join(f'{a:g}' for a in self.omega_alpha)})",
            "scale": self.scale,
            "source": self.source,
            "bias_prior": dict(self.bias_prior),
        }


def default_priors(scale: str = "log OR", subfield: str = "Cochrane",
                   effect: EffectPrior | NormalMixture | None = None) -> RobustPriors:
    """Bartoš et al.'s (2023) effect and tau priors for a scale and subfield, RoBMA's bias priors.

    Parameters
    ----------
    scale : {"log OR", "log RR"}
    subfield : str
        Cochrane review group (:func:`rebayes.bayes.priors.bartos_prior_set`).
    effect : optional
        Another effect prior (e.g. :func:`rebayes.bayes.priors.van_zwet_prior`).

    Returns
    -------
    RobustPriors
    """
    bartos = bartos_prior_set(subfield)
    if scale == "log OR":
        mu, tau = bartos.effect, bartos.tau
    else:
        assert bartos.log_rr is not None
        mu, tau = bartos.log_rr
    assert isinstance(tau, InverseGamma)
    source = (f"Bartoš et al. 2023 ({subfield}, {scale}): mu ~ {mu}, tau ~ {tau}"
              if effect is None else
              f"mu ~ {effect}; tau ~ {tau} (Bartoš et al. 2023, {subfield}, {scale})")
    return RobustPriors(effect=effect or mu, tau=tau, scale=scale, source=source)


def model_space(priors: RobustPriors,
                bias_kinds: tuple[str, ...] = BIAS_KINDS) -> tuple[RobustModel, ...]:
    """Return the models with their prior probabilities (they sum to 1).

    Parameters
    ----------
    priors : RobustPriors
    bias_kinds : tuple of str
        The bias components to include (default all four: 16 models); ``("none",)`` gives
        the four models of a Bayesian model-averaged meta-analysis without bias adjustment
        (RoBMA's ``BiBMA``/``BMA.glmm``). Their prior probabilities are renormalised.
    """
    unknown = sorted(set(bias_kinds) - set(BIAS_KINDS))
    if unknown or not bias_kinds:
        raise ValueError(f"bias kinds must be among {', '.join(BIAS_KINDS)}, not {unknown}")
    total = sum(priors.bias_prior[bias] for bias in bias_kinds)
    return tuple(
        RobustModel(effect, heterogeneity, bias, 0.25 * priors.bias_prior[bias] / total)
        for bias in BIAS_KINDS if bias in bias_kinds
        for heterogeneity in (False, True)
        for effect in (False, True)
    )
