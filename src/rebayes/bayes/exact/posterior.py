"""The exact posterior: what an exact fit knows, computed without draws.

:class:`ExactPosterior` holds the posterior as a mixture over the tau grid
(:class:`~rebayes.bayes.exact.grid.TauGrid`) of the coefficients' conditional posteriors (normal
for the normal-normal model, tabulated for the binomial one) and answers, each from its exact
marginal (:mod:`rebayes.bayes.exact.marginals`):

- each coefficient (``d``, ``d[group]``, each covariate's ``beta``), any linear combination of
  them (a subgroup's effect, a difference, an average over rows), a new trial's effect
  ``c @ phi + tau * eps`` (:meth:`ExactPosterior.predictive`), each row's shrunken effect
  (:meth:`ExactPosterior.trial_effect`) and tau: quantiles, mean, sd, HDI, P(> t);
- the risk ratio at a stated control risk p0, ``expit(logit p0 + theta) / p0`` (binomial) or
  ``exp(theta)`` (normal), a monotone map of the log odds (or risk) ratio's marginal
  (:meth:`ExactPosterior.risk_ratio`);
- ``log p(y)`` with every normalising constant (:attr:`ExactPosterior.log_marginal_likelihood`),
  so that Bayes factors between models fitted to the same rows are proper;
- seeded draws for figures (:meth:`ExactPosterior.draws`): tau by inverse-CDF sampling of its
  marginal, then the coefficients and the random effects from their conditionals.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from scipy import special

from rebayes.bayes.exact.grid import FINE, TauGrid, refine_log_density
from rebayes.bayes.exact.marginals import GridMixture, Marginal
from rebayes.bayes.exact.problem import ExactProblem

__all__ = ["Conditionals", "ExactPosterior", "tau_marginal"]


class Conditionals(Protocol):
    """What an engine knows given each node of the tau grid."""

    def linear(self, c: np.ndarray, predictive: bool = False) -> Marginal:
        """Marginal of ``c @ phi`` (+ ``tau * eps`` when ``predictive``)."""
        ...

    def trial_effect(self, row: int) -> Marginal:
        """Marginal of a row's shrunken effect."""
        ...

    def log_rr_contrast(self, a: np.ndarray, b: np.ndarray, base: float) -> Marginal:
        """Marginal of ``log(RR(a @ phi) / RR(b @ phi))`` at control log odds ``base``."""
        ...

    def draws(self, tau: np.ndarray, uniforms: np.ndarray) -> dict[str, np.ndarray]:
        """Draws of ``phi``, ``z`` (and ``alpha``) given tau draws and uniforms."""
        ...


def tau_marginal(grid: TauGrid, log_density: np.ndarray) -> GridMixture:
    """Return the marginal of tau from its log posterior density in v at the grid's nodes.

    ``log_density`` is ``log p(tau_j) + log p(y | tau_j) + log(c cosh v_j)``: the density in
    v, refined by :func:`refine_log_density`. From v = 0 it is an even function of v
    (mirrored there); a grid starting higher has a negligible density at its start.
    """
    even = grid.first == 0
    fine = refine_log_density(log_density, FINE, even=even)
    return GridMixture.from_density(
        np.ones(1), np.array([grid.v[0]]), np.array([grid.step / FINE]), np.exp(fine)[None, :],
        warp=grid.scale, support=(0.0, math.inf), even_start=even,
    )


@dataclass(frozen=True, eq=False, repr=False)
class ExactPosterior:
    """The posterior of one model, integrated on a grid in tau.

    Attributes
    ----------
    problem : ExactProblem
        The data, design and priors.
    grid : TauGrid
        The tau grid the posterior was integrated on.
    log_density : ndarray, shape (node,)
        ``log p(tau_j) + log p(y | tau_j)`` plus the log Jacobian ``log(c cosh v_j)``: the
        unnormalised posterior density of v = asinh(tau / c) at the nodes.
    weight : ndarray, shape (node,)
        Each node's posterior weight (the trapezoid rule's; they sum to 1).
    log_marginal_likelihood : float
        ``log p(y)``: every parameter integrated out over its prior; binomial coefficients and
        normal constants included.
    conditionals : Conditionals
        The engine's posterior given each node.
    method : str
        How it was computed, in a phrase.
    checks : dict
        The accuracy checks the engine ran (grid sizes, the mass left at the grid's edges).
    """

    problem: ExactProblem
    grid: TauGrid
    log_density: np.ndarray
    weight: np.ndarray
    log_marginal_likelihood: float
    conditionals: Conditionals
    method: str
    checks: dict[str, Any] = field(default_factory=dict)

    @property
    def names(self) -> tuple[str, ...]:
        """Names of the coefficients: ``d`` (or ``d[group]``) and the covariates."""
        return self.problem.names

    @property
    def tau(self) -> Marginal:
        """Marginal posterior of the between-trial standard deviation tau."""
        if "_tau" not in self.__dict__:
            object.__setattr__(self, "_tau", tau_marginal(self.grid, self.log_density))
        return self.__dict__["_tau"]  # type: ignore[no-any-return]

    def _vector(self, weights: np.ndarray | Mapping[str, float] | str) -> np.ndarray:
        if isinstance(weights, str):
            weights = {weights: 1.0}
        if isinstance(weights, Mapping):
            c = np.zeros(self.problem.p)
            for name, value in weights.items():
                if name not in self.names:
                    raise KeyError(f"no coefficient {name!r} (known: {', '.join(self.names)})")
                c[self.names.index(name)] = value
            return c
        c = np.asarray(weights, dtype=float)
        if c.shape != (self.problem.p,):
            raise ValueError(f"weights need shape ({self.problem.p},), not {c.shape}")
        return c

    def coefficient(self, name: str) -> Marginal:
        """Marginal of one coefficient (``d``, ``d[group]``, or a covariate's name)."""
        return self.linear(name)

    def linear(self, weights: np.ndarray | Mapping[str, float] | str) -> Marginal:
        """Marginal of a linear combination of the coefficients.

        Parameters
        ----------
        weights : array of shape (p,), mapping of name to weight, or a name
            ``{"d": 1, "ablat": 40}`` is the effect at latitude 40; ``{"d[a]": 1, "d[b]": -1}``
            the difference of two groups' effects.
        """
        key = ("linear", tuple(self._vector(weights)))
        return self._cached(key, lambda: self.conditionals.linear(np.array(key[1])))

    def predictive(self, weights: np.ndarray | Mapping[str, float] | str | None = None) -> Marginal:
        """Return the marginal of a new trial's effect ``c @ phi + tau * eps``.

        ``weights`` gives ``c`` as for :meth:`linear`; default: the first coefficient, ``d``.
        """
        c = self._vector(weights if weights is not None else self.names[0])
        key = ("predictive", tuple(c))
        return self._cached(key, lambda: self.conditionals.linear(c, predictive=True))

    def trial_effect(self, row: int | str) -> Marginal:
        """Marginal of a row's shrunken effect ``theta[row]`` (its random effect included)."""
        index = self.problem.rows.index(row) if isinstance(row, str) else int(row)
        return self._cached(("trial", index), lambda: self.conditionals.trial_effect(index))

    def risk_ratio_ratio(
        self,
        numerator: np.ndarray | Mapping[str, float] | str,
        denominator: np.ndarray | Mapping[str, float] | str,
        control_risk: float | None = None,
    ) -> Marginal:
        """Return the marginal of the ratio of two effects' risk ratios at one control risk.

        ``RR(a @ phi) / RR(b @ phi)`` with ``a`` and ``b`` given as for :meth:`linear` (e.g.
        two subgroups' average rows). Normal likelihood: ``exp((a - b) @ phi)``, a map of a
        linear combination. Binomial: ``expit(logit p0 + a @ phi) / expit(logit p0 + b @ phi)``
        depends on both combinations, not on their difference alone; its density is
        integrated over their joint density on each tau node's plane
        (:meth:`~rebayes.bayes.exact.gridded.GridConditionals.log_rr_contrast`). It exceeds 1
        exactly when ``a @ phi > b @ phi``.
        """
        a, b = self._vector(numerator), self._vector(denominator)
        if self.problem.likelihood == "normal":
            return ratio(self.linear(a - b))
        p0 = _control_risk(control_risk)
        key = ("contrast", tuple(a), tuple(b), p0)
        return self._cached(key, lambda: ratio(
            self.conditionals.log_rr_contrast(a, b, float(special.logit(p0)))))

    def _cached(self, key: tuple[Any, ...], compute: Any) -> Marginal:
        cache = self.__dict__.setdefault("_marginals", {})
        if key not in cache:
            cache[key] = compute()
        return cache[key]  # type: ignore[no-any-return]

    def risk_ratio(self, effect: Marginal, control_risk: float | None = None) -> Marginal:
        """Return the risk ratio's marginal from a log odds ratio's (binomial) or log RR's.

        Binomial: ``RR = expit(logit p0 + theta) / p0`` at the stated control risk ``p0``
        (required); normal: ``RR = exp(theta)``. Both increase with theta, so every quantile
        and probability maps through exactly; the mean and HDI are computed on the RR scale.
        """
        if self.problem.likelihood == "normal":
            return ratio(effect)
        return risk_ratio_at(effect, _control_risk(control_risk))

    def draws(self, chains: int = 4, draws: int = 1000, seed: int = 0) -> dict[str, np.ndarray]:
        """Seeded draws from the exact posterior, for figures (inverse-CDF sampling).

        tau from its marginal's quantile function at stratified uniforms, then the
        coefficients and each trial's standardised random effect ``z`` (and, binomial, each
        row's baseline ``alpha``) from their conditionals given it. Every quantity the engine
        reports is computed exactly, not from these draws.

        Returns
        -------
        dict of str to ndarray
            ``tau`` (chain, draw); ``d`` (chain, draw) or (chain, draw, group); ``beta``
            (chain, draw, coef) when there are covariates; ``z`` (chain, draw, study);
            ``alpha`` (chain, draw, row) for the binomial model.
        """
        rng = np.random.default_rng(seed)
        total = chains * draws
        uniforms = rng.random((total, 1 + self.problem.p + self.problem.n_studies
                               + len(self.problem.rows)))
        tau = self.tau.ppf(uniforms[:, 0])
        out = self.conditionals.draws(tau, uniforms[:, 1:])
        result: dict[str, np.ndarray] = {"tau": tau.reshape(chains, draws)}
        phi = out["phi"]
        n_d = sum(1 for name in self.names if name == "d" or name.startswith("d["))
        d = phi[:, :n_d]
        result["d"] = d[:, 0].reshape(chains, draws) if n_d == 1 and self.names[0] == "d" \
            else d.reshape(chains, draws, n_d)
        if self.problem.p > n_d:
            result["beta"] = phi[:, n_d:].reshape(chains, draws, -1)
        result["z"] = out["z"].reshape(chains, draws, -1)
        if "alpha" in out:
            result["alpha"] = out["alpha"].reshape(chains, draws, -1)
        return result

    def summary(self, prob: float = 0.95) -> list[dict[str, Any]]:
        """Return one row per coefficient, the new trial's effect and tau.

        Each row: median, mean, sd, equal-tailed and highest-density intervals, and P(> 0)
        for the coefficients.
        """
        rows = []
        for name in self.names:
            m = self.coefficient(name)
            rows.append({"quantity": name, **m.summary(prob), "p_gt_0": m.prob_greater(0.0)})
        rows.append({"quantity": "predictive", **self.predictive().summary(prob)})
        rows.append({"quantity": "tau", **self.tau.summary(prob)})
        return rows

    def __repr__(self) -> str:
        d = self.coefficient(self.names[0])
        lo, med, hi = d.quantiles()
        return (
            f"ExactPosterior({self.problem.likelihood}, {len(self.problem.rows)} rows, "
            f"{self.names[0]} {med:.3f} [{lo:.3f}, {hi:.3f}], P({self.names[0]} > 0) "
            f"{d.prob_greater(0.0):.4f}, tau median {self.tau.median:.3f}, "
            f"log p(y) {self.log_marginal_likelihood:.3f})"
        )


def ratio(effect: Marginal) -> Marginal:
    """Return the marginal of ``exp(theta)`` (an odds ratio, or a risk ratio from a log RR)."""
    return effect.map(np.exp, np.log, lambda r: 1.0 / r, support=(0.0, math.inf))


def risk_ratio_at(effect: Marginal, control_risk: float) -> Marginal:
    """Return the marginal of ``expit(logit p0 + theta) / p0`` for a log odds ratio."""
    p0 = _control_risk(control_risk)
    base = special.logit(p0)

    def forward(theta: np.ndarray) -> np.ndarray:
        return np.asarray(special.expit(base + theta) / p0)

    def inverse(rr: np.ndarray) -> np.ndarray:
        return np.asarray(special.logit(rr * p0) - base)

    def slope(rr: np.ndarray) -> np.ndarray:
        return np.asarray(1.0 / (rr * (1.0 - rr * p0)))

    return effect.map(forward, inverse, slope, support=(0.0, 1.0 / p0))


def _control_risk(control_risk: float | None) -> float:
    """Return the binomial model's control risk p0, checked: given, and in (0, 1)."""
    if control_risk is None:
        raise ValueError("the binomial model's risk ratio needs a control risk p0")
    p0 = float(control_risk)
    if not 0.0 < p0 < 1.0:
        raise ValueError(f"control risk {p0!r} is not in (0, 1)")
    return p0
