"""Log posterior densities of the robust model space on the normal approximation.

Each study contributes its estimate y_i (a log ratio, oriented so that benefit is positive)
with known variance v_i, and the model marginalises the study's true effect:

    no bias:   y_i ~ N(mu, v_i + tau^2)
    PET:       y_i ~ N(mu + b sqrt(v_i), v_i + tau^2)
    PEESE:     y_i ~ N(mu + b v_i, v_i + tau^2)
    selection: y_i ~ omega_j(i) N(mu, v_i + tau^2) / sum_j omega_j P_ij(mu, tau^2)

where j(i) is the interval of study i's one-sided p value and P_ij the probability of that
interval (:func:`rebayes.frequentist.selection.interval_probabilities`, closed form). The
free parameters are integrated on an unconstrained scale: mu, log tau, log b, and for the
weights the logits of the ratios omega_(m+1) / omega_m, which are independent
Beta(alpha_(m+1) + ... + alpha_J, alpha_m) under the cumulative Dirichlet prior (the
neutrality of the Dirichlet distribution). :func:`log_posterior` returns log likelihood plus
log prior plus the log Jacobian of that change of variables, so that its integral over the
unconstrained space is the model's marginal likelihood.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import betaln, expit, log_expit

from rebayes.bayes.robust.space import RobustModel, RobustPriors
from rebayes.frequentist.selection import interval_index, interval_probabilities, one_sided_p

__all__ = ["StudyData", "log_posterior", "unpack"]

#: Parameter sets evaluated at once (a block of a quadrature grid); bounds the memory.
BLOCK = 65536


@dataclass(frozen=True)
class StudyData:
    """The studies as the robust models see them.

    Attributes
    ----------
    yi, vi : numpy.ndarray
        Estimates oriented so that benefit is positive (log ratio times +1 or -1) and their
        variances.
    group : numpy.ndarray
        Interval of each study's one-sided p value (benefit direction) among the selection
        steps.
    steps : tuple of float
    """

    yi: np.ndarray
    vi: np.ndarray
    group: np.ndarray
    steps: tuple[float, ...]

    @classmethod
    def from_effects(cls, yi: np.ndarray, vi: np.ndarray,
                     steps: tuple[float, ...]) -> StudyData:
        """Build from oriented estimates and variances."""
        yi = np.asarray(yi, dtype=float)
        vi = np.asarray(vi, dtype=float)
        group = interval_index(one_sided_p(yi, vi, "greater"), steps)
        return cls(yi, vi, group, tuple(steps))

    @property
    def counts(self) -> np.ndarray:
        """Studies per p-value interval."""
        return np.bincount(self.group, minlength=len(self.steps) + 1)


def _log_halfcauchy(b: np.ndarray, scale: float) -> np.ndarray:
    return np.log(2.0 / (np.pi * scale)) - np.log1p((b / scale) ** 2)


def unpack(model: RobustModel, theta: np.ndarray, n_weights: int) -> dict[str, np.ndarray]:
    """Natural-scale parameters (mu, tau, b, omega) of unconstrained points ``theta`` (S, d)."""
    s = theta.shape[0]
    out: dict[str, np.ndarray] = {"mu": np.zeros(s), "tau": np.zeros(s), "b": np.zeros(s),
                                  "omega": np.ones((s, n_weights + 1))}
    col = 0
    if model.effect:
        out["mu"] = theta[:, col]
        col += 1
    if model.heterogeneity:
        out["tau"] = np.exp(theta[:, col])
        col += 1
    if model.bias in ("PET", "PEESE"):
        out["b"] = np.exp(theta[:, col])
        col += 1
    if model.bias == "selection":
        ratios = expit(theta[:, col:col + n_weights])
        out["omega"] = np.concatenate([np.ones((s, 1)), np.cumprod(ratios, axis=1)], axis=1)
    return out


@functools.cache
def _frozen(dist: Any) -> Any:
    """Return the object whose ``logpdf`` evaluates ``dist`` (a mixture is its own)."""
    return dist if hasattr(dist, "logpdf") else dist.frozen()


def _runs(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return the starts and lengths of the runs of equal consecutive rows of ``keys`` (S, c)."""
    if keys.shape[1] == 0:
        return np.zeros(1, dtype=int), np.array([keys.shape[0]])
    change = np.any(keys[1:] != keys[:-1], axis=1)
    starts = np.flatnonzero(np.concatenate([[True], change]))
    return starts, np.diff(np.append(starts, keys.shape[0]))


def _centre_terms(model: RobustModel, priors: RobustPriors, data: StudyData, mu: np.ndarray,
                  tau: np.ndarray, log_tau: np.ndarray) -> np.ndarray:
    """Everything that depends on (mu, tau) only: normal likelihood and their priors."""
    var = data.vi[None, :] + tau[:, None] ** 2
    out = (-0.5 * (data.yi[None, :] - mu[:, None]) ** 2 / var
           - 0.5 * np.log(2 * np.pi * var)).sum(1)
    if model.effect:
        out += _frozen(priors.effect).logpdf(mu)
    if model.heterogeneity:
        out += _frozen(priors.tau).logpdf(tau) + log_tau
    return out


def _weight_terms(priors: RobustPriors, data: StudyData,
                  ratios_logit: np.ndarray) -> np.ndarray:
    """Return the selection weights' part of the likelihood numerator and their prior.

    With omega_(m+1) = omega_m expit(u_m), log omega_j is a sum of log expit(u_m) for m < j,
    so sum_i log omega_j(i) = sum_m (studies beyond interval m) log expit(u_m).
    """
    alpha = np.asarray(priors.omega_alpha, dtype=float)
    beyond = data.counts[::-1].cumsum()[::-1][1:]  # studies in intervals m + 1, m + 2, ...
    out = np.zeros(ratios_logit.shape[0])
    for m in range(len(alpha) - 1):
        u = ratios_logit[:, m]
        a, b = alpha[m + 1:].sum(), alpha[m]
        log_l, log_1ml = log_expit(u), log_expit(-u)
        # Beta(a, b) density of expit(u), times its Jacobian expit(u) expit(-u).
        out += (beyond[m] + a) * log_l + b * log_1ml - betaln(a, b)
    return out


def _block(model: RobustModel, priors: RobustPriors, data: StudyData,
           theta: np.ndarray) -> np.ndarray:
    n_weights = len(priors.steps)
    values = unpack(model, theta, n_weights)
    centre = int(model.effect) + int(model.heterogeneity)
    log_tau = theta[:, centre - 1] if model.heterogeneity else np.zeros(len(theta))
    if model.bias in ("PET", "PEESE"):
        x = np.sqrt(data.vi) if model.bias == "PET" else data.vi
        mean = values["mu"][:, None] + values["b"][:, None] * x[None, :]
        var = data.vi[None, :] + values["tau"][:, None] ** 2
        out = (-0.5 * (data.yi[None, :] - mean) ** 2 / var
               - 0.5 * np.log(2 * np.pi * var)).sum(1)
        if model.effect:
            out += _frozen(priors.effect).logpdf(values["mu"])
        if model.heterogeneity:
            out += _frozen(priors.tau).logpdf(values["tau"]) + log_tau
        scale = priors.pet_scale if model.bias == "PET" else priors.peese_scale
        return out + _log_halfcauchy(values["b"], scale) + theta[:, centre]
    # No bias or selection: the (mu, tau) part is shared by the runs of equal (mu, tau) a
    # lower-triangular grid (rebayes.bayes.robust.quadrature) produces, computed once per run.
    starts, lengths = _runs(theta[:, :centre])
    terms = _centre_terms(model, priors, data, values["mu"][starts], values["tau"][starts],
                          log_tau[starts])
    out = np.repeat(terms, lengths)
    if model.bias == "selection":
        omega = values["omega"]
        out += _weight_terms(priors, data, theta[:, centre:centre + n_weights])
        probs = interval_probabilities(values["mu"][starts], values["tau"][starts] ** 2,
                                       data.vi, data.steps, "greater")
        for run, (first, length) in enumerate(zip(starts, lengths, strict=True)):
            normaliser = omega[first:first + length] @ probs[run].T
            with np.errstate(divide="ignore"):
                out[first:first + length] -= np.log(normaliser).sum(1)
    return out


def log_posterior(model: RobustModel, priors: RobustPriors, data: StudyData,
                  theta: np.ndarray) -> np.ndarray:
    """Unnormalised log posterior of ``model`` at unconstrained points ``theta`` (S, d).

    Returns
    -------
    numpy.ndarray
        Log likelihood + log prior + log Jacobian, shape (S,); -inf where a density vanishes.
    """
    theta = np.atleast_2d(np.asarray(theta, dtype=float))
    out = np.empty(theta.shape[0])
    for start in range(0, theta.shape[0], BLOCK):
        with np.errstate(over="ignore", invalid="ignore"):
            value = _block(model, priors, data, theta[start:start + BLOCK])
        out[start:start + BLOCK] = np.where(np.isnan(value), -np.inf, value)
    return out
