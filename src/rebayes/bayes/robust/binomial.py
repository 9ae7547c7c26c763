"""The no-bias models of the robust space on the binomial-normal likelihood of the 2x2 tables.

RoBMA's binomial model (``BiBMA``; Bartoš, Otte et al. 2023, arXiv:2306.11468) for study i
with a_i/n1_i events under treatment and c_i/n2_i under control:

    a_i ~ Binomial(n1_i, expit(alpha_i + theta_i / 2))
    c_i ~ Binomial(n2_i, expit(alpha_i - theta_i / 2))
    expit(alpha_i) ~ Beta(1, 1)          (each study's own baseline: alpha_i ~ Logistic(0, 1))
    theta_i = mu (fixed effect) or theta_i ~ N(mu, tau^2) (random effects), mu = 0 without effect

with the robust space's priors on mu (the benefit-oriented log OR) and tau. Everything is
integrated by quadrature, nothing sampled: each study's likelihood L_i(theta) is integrated
over its baseline on a dense grid of alpha (trapezoid: the integrand is smooth and decays at
both ends) and tabulated on a grid of theta; between the grid's points the log likelihood is
its normal approximation (a quadratic in theta, exact) plus the interpolated remainder, so a
large trial's sharp likelihood is not blunted by the grid. The random effect is integrated by
40-point Gauss-Hermite quadrature; mu on a grid covering both the prior and the data's
likelihood (trapezoid weights), log tau on a grid. The marginal likelihoods are
those RoBMA estimates by bridge sampling (its honey example: inclusion BF 2.63, here 2.625;
``tests/test_robust_bma.py``).

Only the log odds ratio has this likelihood; for the log RR the no-bias models stay on the
normal approximation, as the bias models are.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import gammaln, log_expit, logsumexp

from rebayes.bayes.robust.likelihood import StudyData
from rebayes.bayes.robust.models import ModelFit, NoBiasEngine
from rebayes.bayes.robust.space import RobustModel, RobustPriors

__all__ = ["BINOMIAL_NORMAL", "binomial_normal_engine"]

#: Likelihood label of the no-bias models fitted here (printed with every result).
BINOMIAL_NORMAL = "binomial-normal likelihood of the 2x2 tables (RoBMA's BiBMA)"

_THETA = np.linspace(-15.0, 15.0, 601)  # log OR grid of the tabulated study likelihoods
_MU_POINTS = 401  # over the prior's range, and as many over the data's likelihood
_TAU = np.exp(np.linspace(np.log(1e-3), np.log(8.0), 81))  # tau grid, uniform in log tau
_HERMITE_X, _HERMITE_W = np.polynomial.hermite_e.hermegauss(40)
_HERMITE_W = _HERMITE_W / np.sqrt(2.0 * np.pi)


def _log_binom(k: float, n: float) -> float:
    return float(gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1))


def _study_log_likelihood(a: int, n1: int, c: int, n2: int) -> np.ndarray:
    """Log L_i(theta) on :data:`_THETA`: the 2x2 table's likelihood, its baseline integrated."""
    events, total = a + c, n1 + n2
    centre = float(np.log((events + 0.5) / (total - events + 0.5)))
    sd = float(np.sqrt(1.0 / (events + 0.5) + 1.0 / (total - events + 0.5)))
    alpha = np.unique(np.concatenate([np.linspace(-30.0, 30.0, 301),
                                      centre + sd * np.linspace(-12.0, 12.0, 481)]))
    th = _THETA[:, None]
    log_lik = (a * log_expit(alpha + th / 2) + (n1 - a) * log_expit(-(alpha + th / 2))
               + c * log_expit(alpha - th / 2) + (n2 - c) * log_expit(-(alpha - th / 2)))
    log_prior = log_expit(alpha) + log_expit(-alpha)  # the logistic density of alpha
    log_f = log_lik + log_prior
    # Trapezoid rule in log space: log sum of the panels' mean heights times their widths.
    width = np.diff(alpha)
    panels = np.logaddexp(log_f[:, 1:], log_f[:, :-1]) + np.log(width / 2.0)
    return logsumexp(panels, axis=1) + _log_binom(a, n1) + _log_binom(c, n2)


class _Tables:
    """The studies' tabulated log likelihoods and their evaluation at any log ORs."""

    def __init__(self, counts: Sequence[np.ndarray]) -> None:
        a, n1, c, n2 = (np.asarray(x, dtype=float) for x in counts)
        # Each study's normal approximation (0.5 added to every cell): y_i, v_i.
        self.y = np.log((a + 0.5) * (n2 - c + 0.5) / ((n1 - a + 0.5) * (c + 0.5)))
        self.v = 1 / (a + 0.5) + 1 / (n1 - a + 0.5) + 1 / (c + 0.5) + 1 / (n2 - c + 0.5)
        table = np.array([_study_log_likelihood(*map(int, row))
                          for row in zip(a, n1, c, n2, strict=True)])
        self.remainder = table - self._quadratic(_THETA[:, None]).T

    def _quadratic(self, theta: np.ndarray) -> np.ndarray:
        return -0.5 * (theta - self.y) ** 2 / self.v

    def log_lik(self, theta: np.ndarray) -> np.ndarray:
        """Log L_i at ``theta`` (any shape) -> shape (*theta.shape, k); flat beyond the grid."""
        theta = np.clip(np.asarray(theta, dtype=float), _THETA[0], _THETA[-1])
        rest = np.stack([np.interp(theta, _THETA, row) for row in self.remainder], axis=-1)
        return self._quadratic(theta[..., None]) + rest

    def mu_window(self) -> np.ndarray:
        """Points over the fixed-effect likelihood of the log OR: its estimate +- 12 SE."""
        w = 1.0 / self.v
        centre, se = float((w * self.y).sum() / w.sum()), float(np.sqrt(1.0 / w.sum()))
        return centre + se * np.linspace(-12.0, 12.0, _MU_POINTS)

    def log_random(self, mean: np.ndarray, tau: np.ndarray) -> np.ndarray:
        """sum_i log of int N(theta | mean, tau^2) L_i(theta) dtheta, broadcast over both."""
        mean, tau = np.broadcast_arrays(np.asarray(mean, float), np.asarray(tau, float))
        theta = mean[..., None] + tau[..., None] * _HERMITE_X  # (..., q)
        per_study = logsumexp(self.log_lik(theta) + np.log(_HERMITE_W)[:, None], axis=-2)
        return per_study.sum(-1)


def _grid_cdf(grid: np.ndarray, log_mass: np.ndarray) -> tuple[np.ndarray, ...]:
    """Normalised weights of a grid's log masses and its CDF as a function."""
    weights = np.exp(log_mass - logsumexp(log_mass))
    cumulative = np.cumsum(weights) - weights / 2  # each node's mass centred on it

    def cdf(values: np.ndarray) -> np.ndarray:
        return np.interp(values, grid, cumulative, left=0.0, right=1.0)

    return weights, cdf  # type: ignore[return-value]


def binomial_normal_engine(counts: Sequence[np.ndarray], sign: float) -> NoBiasEngine:
    """Return a no-bias engine fitting the binomial-normal model to these 2x2 tables.

    Parameters
    ----------
    counts : sequence of numpy.ndarray
        ``(events_treat, n_treat, events_control, n_control)``, one entry per study, in the
        order of the log ORs given to :func:`rebayes.bayes.robust.averaging.robust_bma`.
    sign : {1.0, -1.0}
        +1 where benefit is a larger OR, -1 where a smaller one (mu = sign x log OR).

    Returns
    -------
    NoBiasEngine
        ``engine(model, data, priors) -> ModelFit`` for the models without bias.
    """
    tables = _Tables(counts)

    def engine(model: RobustModel, data: StudyData, priors: RobustPriors) -> ModelFit:
        if model.bias != "none":
            raise ValueError("the binomial-normal engine fits the no-bias models only")
        return _fit(model, priors, tables, sign)

    return engine


def _fit(model: RobustModel, priors: RobustPriors, tables: _Tables, sign: float) -> ModelFit:
    effect_prior = priors.effect if hasattr(priors.effect, "logpdf") else priors.effect.frozen()
    tau_prior = priors.tau.frozen()
    log_tau_jacobian = np.log(_TAU)  # d tau = tau d(log tau)
    d_log_tau = float(np.log(_TAU[1] / _TAU[0]))
    if not model.effect and not model.heterogeneity:
        log_z = float(tables.log_lik(np.array(0.0)).sum())
        draws = {"mu": np.zeros(1), "tau": np.zeros(1)}
        return _model_fit(model, log_z, "closed form", draws, np.ones(1), None)
    if not model.effect:
        log_mass = (tables.log_random(np.zeros_like(_TAU), _TAU) + tau_prior.logpdf(_TAU)
                    + log_tau_jacobian + np.log(d_log_tau))
        weights, _ = _grid_cdf(_TAU, log_mass)
        draws = {"mu": np.zeros(len(_TAU)), "tau": _TAU}
        return _model_fit(model, float(logsumexp(log_mass)),
                          f"quadrature ({len(_TAU)} tau nodes)", draws, weights, None)
    mu = _mu_grid(tables, sign)
    width = np.diff(mu, prepend=mu[0], append=mu[-1])  # trapezoid weights: half of each
    width = (width[:-1] + width[1:]) / 2               # neighbouring panel
    log_prior_mu = effect_prior.logpdf(mu) + np.log(width)
    if not model.heterogeneity:
        log_mass = tables.log_lik(sign * mu).sum(-1) + log_prior_mu
        weights, cdf = _grid_cdf(mu, log_mass)
        draws = {"mu": mu, "tau": np.zeros(len(mu))}
        return _model_fit(model, float(logsumexp(log_mass)),
                          f"quadrature ({len(mu)} mu nodes)", draws, weights, cdf)
    log_joint = np.stack([tables.log_random(sign * mu, np.full_like(mu, t)) for t in _TAU],
                         axis=1)  # (mu, tau)
    log_joint += (log_prior_mu[:, None] + tau_prior.logpdf(_TAU)[None, :]
                  + log_tau_jacobian[None, :] + np.log(d_log_tau))
    log_z = float(logsumexp(log_joint))
    _, cdf = _grid_cdf(mu, logsumexp(log_joint, axis=1))
    grid_mu, grid_tau = np.meshgrid(mu, _TAU, indexing="ij")
    weights = np.exp(log_joint - log_z).ravel()
    draws = {"mu": grid_mu.ravel(), "tau": grid_tau.ravel()}
    return _model_fit(model, log_z, f"quadrature ({len(mu)} x {len(_TAU)} nodes)", draws,
                      weights, cdf)


def _mu_grid(tables: _Tables, sign: float) -> np.ndarray:
    """Mu over the whole tabulated range and densely over the data's likelihood."""
    window = np.clip(sign * tables.mu_window(), _THETA[0], _THETA[-1])
    return np.unique(np.concatenate([np.linspace(_THETA[0], _THETA[-1], _MU_POINTS), window]))


def _model_fit(model: RobustModel, log_z: float, method: str, draws: dict[str, np.ndarray],
               weights: np.ndarray, cdf: object) -> ModelFit:
    n = len(weights)
    full = {"b": np.zeros(n), "omega": np.ones((n, 1)), **draws}
    return ModelFit(model, log_z, 0.0, method, BINOMIAL_NORMAL, full, weights,
                    cdf)  # type: ignore[arg-type]
