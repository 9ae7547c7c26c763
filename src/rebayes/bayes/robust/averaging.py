"""Bayesian model averaging over the robust model space (RoBMA-PSMA, restricted).

Every model of :func:`rebayes.bayes.robust.space.model_space` is fitted
(:mod:`rebayes.bayes.robust.models`); the posterior probability of model m is proportional to
its prior probability times its marginal likelihood. From these:

- the inclusion Bayes factor of a component (effect, heterogeneity, publication bias):
  posterior odds of the models with it against those without, over the prior odds;
- the model-averaged effect: the mixture of every model's posterior of mu, with the no-effect
  models contributing their point mass at mu = 0, as RoBMA reports it; and the estimate
  conditional on an effect (the effect models only).

References
----------
Hoeting JA, Madigan D, Raftery AE, Volinsky CT. Bayesian model averaging: a tutorial. Stat Sci
1999;14:382-417.
Bartoš F, Maier M, Wagenmakers E-J, Doucouliagos H, Stanley TD. Robust Bayesian
meta-analysis: model-averaging across complementary publication bias adjustment methods. Res
Synth Methods 2023;14:99-116. doi:10.1002/jrsm.1594.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import logsumexp

from rebayes.bayes.robust.likelihood import StudyData
from rebayes.bayes.robust.models import (
    NORMAL_APPROXIMATION,
    ModelFit,
    NoBiasEngine,
    normal_approximation,
    weighted_quantiles,
)
from rebayes.bayes.robust.space import BIAS_KINDS, RobustPriors, model_space

__all__ = ["RobustBMA", "robust_bma"]

#: What the output says when the no-bias models use the normal approximation too.
LOG_RATIO_NOTE = ("all models on the normal approximation of the log ratio (for the OR, the "
                  "no-bias models on the 2x2 tables form a separate average)")


@dataclass(frozen=True)
class RobustBMA:
    """The model-averaged analysis.

    Attributes
    ----------
    fits : tuple of ModelFit
    posterior : numpy.ndarray
        Posterior model probabilities, in the order of ``fits``.
    priors : RobustPriors
    sign : float
        +1 when benefit is a larger log ratio, -1 when a smaller one: mu = sign x log ratio.
    measure : {"RR", "OR"}
    likelihood_note : str
        Which likelihood each kind of model used.
    """

    fits: tuple[ModelFit, ...]
    posterior: np.ndarray
    priors: RobustPriors
    sign: float
    measure: str
    likelihood_note: str

    def _share(self, which: Any) -> tuple[float, float]:
        mask = np.array([bool(which(f.model)) for f in self.fits])
        prior = np.array([f.model.prior_probability for f in self.fits])
        return float(self.posterior[mask].sum()), float(prior[mask].sum())

    def inclusion_bf(self, component: str) -> float:
        """Inclusion Bayes factor of ``effect``, ``heterogeneity``, ``bias`` or a bias kind."""
        tests = {
            "effect": lambda m: m.effect,
            "heterogeneity": lambda m: m.heterogeneity,
            "bias": lambda m: m.bias != "none",
        }
        which = tests.get(component, lambda m: m.bias == component)
        post, prior = self._share(which)
        if post >= 1.0:
            return float("inf")
        if post <= 0.0:
            return 0.0
        return (post / (1 - post)) / (prior / (1 - prior))

    def probability(self, component: str) -> float:
        """Posterior probability that ``component`` (as for :meth:`inclusion_bf`) is present."""
        tests = {"effect": lambda m: m.effect, "heterogeneity": lambda m: m.heterogeneity,
                 "bias": lambda m: m.bias != "none"}
        return self._share(tests.get(component, lambda m: m.bias == component))[0]

    def cdf(self, log_ratio: np.ndarray, conditional: bool = False) -> np.ndarray:
        """Model-averaged posterior CDF of the log ratio at ``log_ratio`` (right-continuous).

        The no-effect models put their mass at 0; ``conditional`` averages the effect
        models only.
        """
        x = self.sign * np.asarray(log_ratio, dtype=float)  # benefit-oriented mu
        total = np.zeros_like(x)
        mass = 0.0
        for fit, p in zip(self.fits, self.posterior, strict=True):
            if conditional and not fit.model.effect:
                continue
            mass += p
            # P(mu <= x) when mu = sign * log ratio: P(log ratio <= l) flips with the sign.
            below = fit.cdf(x) if self.sign > 0 else 1 - fit.cdf(x - 1e-12 * (x == 0))
            total += p * below
        return total / mass

    def _grid(self, conditional: bool) -> tuple[np.ndarray, np.ndarray]:
        """Return a fine grid of log ratios (0 twice, for the jump at 0) and the CDF there."""
        values, weights = [], []
        for fit, p in zip(self.fits, self.posterior, strict=True):
            if fit.model.effect:
                values.append(self.sign * fit.draws["mu"])
                weights.append(p * fit.weights)
        v, w = np.concatenate(values), np.concatenate(weights)
        lo, hi = weighted_quantiles(v, w / w.sum(), [1e-7, 1 - 1e-7])
        span = hi - lo
        grid = np.linspace(min(lo, 0.0) - 0.05 * span, max(hi, 0.0) + 0.05 * span, 6001)
        grid = np.sort(np.concatenate([grid, [0.0, 0.0]]))
        probs = self.cdf(grid, conditional)
        # The jump at 0: the first 0 takes the CDF just below it.
        zero = np.flatnonzero(grid == 0.0)[0]
        probs[zero] = self.cdf(np.array([-1e-12]), conditional)[0]
        return grid, np.maximum.accumulate(probs)

    def averaged(self, conditional: bool = False) -> dict[str, float]:
        """Model-averaged ratio (median, mean, mean of the log, 95% interval) and P(benefit).

        Parameters
        ----------
        conditional : bool
            Average over the effect models only (the estimate given an effect exists);
            default: over all models, the no-effect ones at ratio 1 (RoBMA's convention).
        """
        grid, probs = self._grid(conditional)
        low, median, high = np.interp([0.025, 0.5, 0.975],
                                      probs + np.arange(len(grid)) * 1e-15, grid)
        keep = [(f, p) for f, p in zip(self.fits, self.posterior, strict=True)
                if f.model.effect or not conditional]
        mass = sum(p for _, p in keep)
        log_mean = sum(p * float((self.sign * f.draws["mu"] * f.weights).sum())
                       for f, p in keep) / mass
        # P(benefit) = P(mu > 0): the no-effect models' mass at 0 is no benefit.
        benefit = sum(p * float(1 - f.cdf(np.array([0.0]))[0]) for f, p in keep) / mass
        # The posterior mean of the ratio itself (RoBMA's "Mean" on the OR scale).
        mean = sum(p * float((np.exp(self.sign * f.draws["mu"]) * f.weights).sum())
                   for f, p in keep) / mass
        return {
            "estimate": float(np.exp(median)),
            "mean": float(mean),
            "ci_low": float(np.exp(low)),
            "ci_high": float(np.exp(high)),
            "log_mean": float(log_mean),
            "p_benefit": float(benefit),
        }

    def averaged_tau(self) -> dict[str, float]:
        """Model-averaged tau (the fixed-effect models at 0): median and 95% interval."""
        values = np.concatenate([f.draws["tau"] for f in self.fits])
        weights = np.concatenate([p * f.weights for f, p in zip(self.fits, self.posterior,
                                                                strict=True)])
        low, median, high = weighted_quantiles(values, weights / weights.sum(),
                                               [0.025, 0.5, 0.975])
        return {"median": float(median), "ci_low": float(low), "ci_high": float(high)}

    def models_table(self) -> list[dict[str, Any]]:
        """One record per model: its components, probabilities, marginal likelihood, mu."""
        rows = []
        for fit, p in zip(self.fits, self.posterior, strict=True):
            mu = fit.summary("mu")
            rows.append({
                "model": fit.model.name,
                "effect": fit.model.effect,
                "heterogeneity": fit.model.heterogeneity,
                "bias": fit.model.bias,
                "prior_probability": fit.model.prior_probability,
                "posterior_probability": float(p),
                "log_marginal_likelihood": fit.log_marginal,
                "log_marginal_error": fit.log_error,
                "method": fit.method,
                "likelihood": fit.likelihood,
                "estimate": float(np.exp(self.sign * mu["median"])),
                "tau": fit.summary("tau")["median"],
            })
        return rows

    def to_dict(self) -> dict[str, Any]:
        """JSON: ``models``, ``inclusion_bf {effect, heterogeneity, bias}``, ``averaged``."""
        return {
            "models": self.models_table(),
            "inclusion_bf": {c: self.inclusion_bf(c)
                             for c in ("effect", "heterogeneity", "bias", "PET", "PEESE",
                                       "selection")},
            "posterior_probability": {c: self.probability(c)
                                      for c in ("effect", "heterogeneity", "bias")},
            "averaged": {**self.averaged(), "measure": self.measure,
                         "tau": self.averaged_tau()},
            "conditional": {**self.averaged(conditional=True), "measure": self.measure},
            "priors": self.priors.to_dict(),
            "likelihood": self.likelihood_note,
        }


def robust_bma(
    yi: np.ndarray,
    vi: np.ndarray,
    sign: float,
    measure: str,
    priors: RobustPriors,
    no_bias_engine: NoBiasEngine | None = None,
    bias_kinds: tuple[str, ...] = BIAS_KINDS,
) -> RobustBMA:
    """Fit the robust model space and average it.

    Parameters
    ----------
    yi, vi : numpy.ndarray
        Study log ratios (as measured: log RR or log OR) and variances.
    sign : {1.0, -1.0}
        +1 where benefit is a larger ratio (more of a good event), -1 where it is a smaller
        one (fewer deaths); the bias models assume that exaggeration favours benefit.
    measure : {"RR", "OR"}
    priors : RobustPriors
    no_bias_engine : NoBiasEngine, optional
        Fits the no-bias models (the binomial-normal engine, when it exists); default: the
        normal approximation, like the bias models.
    bias_kinds : tuple of str
        Bias components of the space (:func:`rebayes.bayes.robust.space.model_space`).

    Returns
    -------
    RobustBMA
    """
    data = StudyData.from_effects(sign * np.asarray(yi, dtype=float), vi, priors.steps)
    engine = no_bias_engine or normal_approximation
    fits = tuple(
        (engine if model.bias == "none" else normal_approximation)(model, data, priors)
        for model in model_space(priors, bias_kinds)
    )
    log_post = np.array([np.log(f.model.prior_probability) + f.log_marginal for f in fits])
    posterior = np.exp(log_post - logsumexp(log_post))
    note = (LOG_RATIO_NOTE if no_bias_engine is None and bias_kinds != ("none",) else
            NORMAL_APPROXIMATION if no_bias_engine is None else
            f"no-bias models: {fits[0].likelihood}; bias models: {NORMAL_APPROXIMATION}")
    return RobustBMA(fits, posterior, priors, float(sign), measure, note)
