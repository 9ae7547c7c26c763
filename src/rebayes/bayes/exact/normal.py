"""The normal-normal model given tau: everything in closed form (as bayesmeta does).

With ``y = A phi + Z u + e``, ``e ~ N(0, diag(1 / w))``, ``u ~ N(0, tau^2 I)`` per trial and
``phi ~ N(m0, diag(s0^2))``, the data given tau are ``N(A m0, Sigma + A S0 A')`` with
``Sigma = diag(1 / w) + tau^2 Z Z'``, block diagonal by trial. Each block's inverse and
determinant follow from the Sherman-Morrison formula and the matrix determinant lemma, so
for a whole grid of tau values at once :class:`GaussianLinear` gives

- the conditional posterior ``phi | tau, y ~ N(m(tau), P(tau)^-1)``;
- ``log p(y | tau)`` with every constant (the marginal likelihood given tau);
- each row's shrunken effect ``theta[s] | tau, y``, normal as well.

Only tau is left to integrate (:mod:`rebayes.bayes.exact.posterior`). bayesmeta does the same
for one coefficient (Röver C. Bayesian random-effects meta-analysis using the bayesmeta R
package. J Stat Softw 2020;93(6):1-51, sections 2.4-2.8) and bmr for several (Röver C,
Friede T. Comput Methods Programs Biomed 2023;229:107303). The binomial engine uses the same
class as its normal approximation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from rebayes.bayes.exact.densities import log_density
from rebayes.bayes.exact.grid import MAX_TAU_NODES, next_grid, place_tau_grid
from rebayes.bayes.exact.marginals import Marginal, NormalMixture
from rebayes.bayes.exact.posterior import ExactPosterior
from rebayes.bayes.exact.problem import ExactProblem

__all__ = ["GaussianLinear", "NormalConditionals", "normal_posterior"]


@dataclass(frozen=True, eq=False)
class GaussianLinear:
    """The linear-Gaussian random-effects model, integrated analytically given tau.

    Attributes
    ----------
    A : ndarray, shape (row, p)
    study : ndarray of int, shape (row,)
    n_studies : int
    y : ndarray, shape (row,)
    w : ndarray, shape (row,)
        Precisions 1 / v (a row of precision 0 carries no information).
    m0, s0 : ndarray, shape (p,)
        Prior means and standard deviations of ``phi``.
    """

    A: np.ndarray
    study: np.ndarray
    n_studies: int
    y: np.ndarray
    w: np.ndarray
    m0: np.ndarray
    s0: np.ndarray
    _sums: dict[str, np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        K, p = self.n_studies, self.A.shape[1]
        w, y, A = self.w, self.y, self.A
        onehot = np.zeros((K, len(y)))
        onehot[self.study, np.arange(len(y))] = 1.0
        sums = {
            "M": np.einsum("kr,r,rp,rq->kpq", onehot, w, A, A),
            "b": onehot @ (w[:, None] * A),
            "c": onehot @ (w[:, None] * y[:, None] * A),
            "e": onehot @ (w * y),
            "q": onehot @ (w * y * y),
            "S": onehot @ w,
        }
        assert sums["M"].shape == (K, p, p)
        object.__setattr__(self, "_sums", sums)

    def shrink(self, tau: np.ndarray) -> np.ndarray:
        """Return ``g[j, k] = tau_j^2 / (1 + tau_j^2 S_k)``.

        That is trial k's random-effect variance given its data, ``phi`` and tau_j (0 at
        tau = 0).
        """
        t2 = np.asarray(tau, dtype=float)[:, None] ** 2
        return t2 / (1.0 + t2 * self._sums["S"])

    def given_tau(self, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Conditional posterior of ``phi`` and the marginal likelihood, per tau.

        Parameters
        ----------
        tau : ndarray, shape (node,)

        Returns
        -------
        mean : ndarray, shape (node, p)
        covariance : ndarray, shape (node, p, p)
        log_likelihood : ndarray, shape (node,)
            ``log p(y | tau)`` with ``phi`` integrated over its prior, constants included.
        """
        tau = np.asarray(tau, dtype=float)
        s = self._sums
        g = self.shrink(tau)
        AtA = s["M"].sum(axis=0) - np.einsum("jk,kp,kq->jpq", g, s["b"], s["b"])
        Aty = s["c"].sum(axis=0) - np.einsum("jk,kp,k->jp", g, s["b"], s["e"])
        yty = s["q"].sum() - g @ (s["e"] ** 2)
        prior_precision = 1.0 / self.s0**2
        P = AtA + np.diag(prior_precision)
        rhs = Aty + prior_precision * self.m0
        L = np.linalg.cholesky(P)
        mean = np.linalg.solve(P, rhs[..., None])[..., 0]
        identity = np.broadcast_to(np.eye(P.shape[-1]), P.shape)
        covariance = np.linalg.solve(P, identity)
        informative = self.w > 0
        log_det_sigma = -np.log(self.w[informative]).sum() + np.log1p(
            tau[:, None] ** 2 * s["S"]
        ).sum(axis=1)
        log_likelihood = (
            -0.5 * informative.sum() * math.log(2 * math.pi)
            - 0.5 * log_det_sigma
            - 0.5 * yty
            - 0.5 * float(prior_precision @ self.m0**2)
            + 0.5 * np.einsum("jp,jp->j", mean, rhs)
            - np.log(self.s0).sum()
            - np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(axis=-1)
        )
        return mean, covariance, log_likelihood

    def effects(
        self, tau: np.ndarray, mean: np.ndarray, covariance: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of each row's shrunken effect ``theta[s]`` given tau.

        Given ``phi`` and tau, trial k's random effect is normal with mean
        ``g (e_k - b_k' phi)`` and variance ``g``, so ``theta[s] = (a_s - g b_k)' phi + g e_k``
        plus that noise.

        Returns
        -------
        mean, variance : ndarray, shape (node, row)
        """
        s = self._sums
        g = self.shrink(tau)[:, self.study]  # (node, row)
        coef = self.A[None, :, :] - g[..., None] * s["b"][self.study][None]
        theta_mean = np.einsum("jrp,jp->jr", coef, mean) + g * s["e"][self.study]
        variance = np.einsum("jrp,jpq,jrq->jr", coef, covariance, coef) + g
        return theta_mean, variance

    def random_effects(
        self, tau: np.ndarray, phi: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mean and variance of each trial's random effect ``u = tau z`` given ``phi``, tau.

        Returns
        -------
        mean, variance : ndarray, shape (node, study)
        """
        s = self._sums
        g = self.shrink(tau)
        return g * (s["e"] - phi @ s["b"].T), g


@dataclass(frozen=True, eq=False)
class NormalConditionals:
    """The normal-normal posterior given each node of the tau grid.

    Attributes
    ----------
    model : GaussianLinear
    tau, weight : ndarray, shape (node,)
        The grid and the posterior weight of each node.
    mean, covariance : ndarray
        ``phi | tau, y`` per node.
    """

    model: GaussianLinear
    tau: np.ndarray
    weight: np.ndarray
    mean: np.ndarray
    covariance: np.ndarray

    def linear(self, c: np.ndarray, predictive: bool = False) -> Marginal:
        """Marginal of ``c @ phi`` (plus ``tau * eps`` for a new trial when ``predictive``)."""
        c = np.asarray(c, dtype=float)
        variance = np.einsum("p,jpq,q->j", c, self.covariance, c)
        if predictive:
            variance = variance + self.tau**2
        return NormalMixture(self.weight, self.mean @ c, np.sqrt(variance))

    def log_rr_contrast(self, a: np.ndarray, b: np.ndarray, base: float) -> Marginal:
        """Marginal of ``(a - b) @ phi``: the normal likelihood's effects are log RRs."""
        return self.linear(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))

    def trial_effect(self, row: int) -> Marginal:
        """Marginal of row ``row``'s shrunken effect ``theta[row]``."""
        mean, variance = self.model.effects(self.tau, self.mean, self.covariance)
        return NormalMixture(self.weight, mean[:, row], np.sqrt(variance[:, row]))

    def draws(self, tau: np.ndarray, uniforms: np.ndarray) -> dict[str, np.ndarray]:
        """Draws of ``phi`` and ``z`` given drawn tau values, by inverse-CDF sampling.

        Parameters
        ----------
        tau : ndarray, shape (draw,)
        uniforms : ndarray, shape (draw, at least p + study)
            Independent U(0, 1) values: ``phi`` from its conditional normal (Cholesky factor
            times normal quantiles), then each trial's ``z`` from its normal given ``phi``.
        """
        p = self.mean.shape[1]
        mean, covariance, _ = self.model.given_tau(tau)
        normal = special.ndtri(uniforms)
        phi = mean + np.einsum("jpq,jq->jp", np.linalg.cholesky(covariance), normal[:, :p])
        u_mean, u_var = self.model.random_effects(tau, phi)
        eps = normal[:, p:p + self.model.n_studies]
        u = u_mean + np.sqrt(u_var) * eps
        # z = u / tau; at tau = 0 the random effect is 0 and z keeps its N(0, 1) prior.
        positive = tau[:, None] > 0
        z = np.where(positive, u / np.where(positive, tau[:, None], 1.0), eps)
        return {"phi": phi, "z": z}


def normal_posterior(problem: ExactProblem, steps_per_sd: float = 10.0) -> ExactPosterior:
    """Return the normal-normal model's exact posterior (normal priors on the coefficients).

    ``phi`` is integrated analytically given tau (:class:`GaussianLinear`); tau on a grid
    (:func:`~rebayes.bayes.exact.grid.place_tau_grid`) placed from the exact marginal
    posterior of tau, and extended until the density at its ends is below 1e-14 of its peak
    (:func:`~rebayes.bayes.exact.grid.next_grid`).

    Parameters
    ----------
    problem : ExactProblem
        Normal likelihood, every coefficient's prior normal (``problem.conjugate``).
    steps_per_sd : float
        Grid steps per posterior standard deviation of v = asinh(tau / c).

    Returns
    -------
    ExactPosterior
    """
    assert problem.likelihood == "normal" and problem.y is not None and problem.v is not None
    assert problem.conjugate
    m0, s0 = problem.prior_normal()
    model = GaussianLinear(problem.A, problem.study, problem.n_studies, problem.y,
                           1.0 / problem.v, m0, s0)

    def log_joint(tau: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return log_density(problem.tau_prior, tau) + model.given_tau(tau)[2]

    grid = place_tau_grid(log_joint, reference=math.sqrt(float(np.median(problem.v))),
                          steps_per_sd=steps_per_sd)
    while True:
        tau = grid.tau
        mean, covariance, log_likelihood = model.given_tau(tau)
        with np.errstate(divide="ignore"):
            joint = log_density(problem.tau_prior, tau) + log_likelihood
        log_v = joint + np.log(grid.scale * np.cosh(grid.v))
        new = next_grid(grid, log_v, steps_per_sd / 2)
        if new is grid or new.n > MAX_TAU_NODES:
            break
        grid = new
    log_q = joint + grid.log_weight
    log_evidence = float(special.logsumexp(log_q))
    weight = np.exp(log_q - log_evidence)
    conditionals = NormalConditionals(model, tau, weight, mean, covariance)
    return ExactPosterior(
        problem=problem,
        grid=grid,
        log_density=log_v,
        weight=weight,
        log_marginal_likelihood=log_evidence,
        conditionals=conditionals,
        method="normal-normal: coefficients analytic given tau, tau on a grid",
        checks={"tau_nodes": grid.n, "tau_step": grid.step, "tau_scale": grid.scale,
                "edge_log_density": float(log_v[-1] - np.max(log_v))},
    )
