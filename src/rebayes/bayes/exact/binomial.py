"""The binomial-normal model (and any model with non-normal priors) on nested grids.

No closed form is left once the likelihood is binomial, so the engine integrates everything
numerically, each integral by a rule fitted to it:

1. each row's baseline alpha, once per row, by adaptive Gauss-Hermite quadrature, tabulated
   as the row's likelihood of its log odds ratio (:mod:`rebayes.bayes.exact.rows`);
2. each trial's random effect z, by adaptive Gauss-Hermite quadrature at every point where the
   trial's likelihood is needed (:mod:`rebayes.bayes.exact.trials`);
3. the coefficients ``phi = (d..., beta...)`` given tau, by the trapezoid rule on a grid in
   standardised units around a normal approximation, re-centred where the exact conditional
   is elsewhere (:mod:`rebayes.bayes.exact.slices`);
4. tau, by the trapezoid rule in v = asinh(tau / c) (:mod:`rebayes.bayes.exact.grid`), extended
   until the posterior density at its end is negligible and refined while its step is coarse
   against the posterior's spread.

The normal approximation that places the grids is the normal-normal model with each row's
likelihood replaced by a normal at its mode (:class:`~rebayes.bayes.exact.normal.
GaussianLinear`): exact for the normal likelihood, close for binomial rows with events.

Its cost grows with the grid of the coefficients: one coefficient (``d``) is the common case;
two or three (a covariate, two or three groups) take a ball of grid points; more raise
:class:`~rebayes.bayes.exact.settings.BeyondReach`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special

from rebayes.bayes.exact.densities import log_density
from rebayes.bayes.exact.grid import MAX_TAU_NODES, TauGrid, next_grid, place_tau_grid
from rebayes.bayes.exact.gridded import GridConditionals
from rebayes.bayes.exact.normal import GaussianLinear
from rebayes.bayes.exact.posterior import ExactPosterior
from rebayes.bayes.exact.problem import ExactProblem
from rebayes.bayes.exact.rows import NormalRowLikelihoods, RowLikelihoods
from rebayes.bayes.exact.settings import BeyondReach, ExactSettings
from rebayes.bayes.exact.slices import Slices, ball_grid
from rebayes.bayes.exact.trials import TrialLikelihoods

__all__ = ["grid_posterior", "reweighted"]

#: The coefficients' grid is re-centred when the density at its rim exceeds this share of its
#: peak (log); a normal density there is exp(-(R - h)^2 / 2) = 2e-11 of its peak.
RIM = math.log(1e-8)
#: A tau node whose posterior weight is below this share of the largest (log) adds less than
#: that to any probability: :func:`reweighted` does not ask its grid to hold the posterior.
NEGLIGIBLE = math.log(1e-10)
#: A conditional posterior's variance along an axis of its frame must lie within these
#: multiples of the frame's: narrower, the grid's step is coarse against it; wider, it is
#: re-centred (the rim check catches mass it would leave out).
NARROWEST, WIDEST = 0.36, 2.25
#: Steps of the tau grid per posterior sd of v below which the grid is refined.
MIN_STEPS_PER_SD = 2.5


def _row_likelihoods(
    problem: ExactProblem, settings: ExactSettings
) -> RowLikelihoods | NormalRowLikelihoods:
    if problem.likelihood == "normal":
        assert problem.y is not None and problem.v is not None
        return NormalRowLikelihoods(problem.y, problem.v)
    assert problem.events is not None and problem.n is not None and problem.baseline
    return RowLikelihoods(problem.events, problem.n, problem.baseline,
                          settings.alpha_nodes, settings.table_step)


def _surrogate(problem: ExactProblem, rows: RowLikelihoods | NormalRowLikelihoods
               ) -> GaussianLinear:
    """Return the normal-normal model at the rows' normal approximations (places the grids)."""
    informative = rows.precision > 0
    m0, s0 = problem.prior_normal()
    return GaussianLinear(problem.A[informative], problem.study[informative],
                          problem.n_studies, rows.mode[informative],
                          rows.precision[informative], m0, s0)


def _frames(surrogate: GaussianLinear, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, covariance, _ = surrogate.given_tau(tau)
    return mean, np.linalg.cholesky(covariance)


def _tabulate_rows(problem: ExactProblem, rows: RowLikelihoods | NormalRowLikelihoods,
                   tau: np.ndarray, mean: np.ndarray, chol: np.ndarray, radius: float) -> None:
    """Make the rows' tables cover every effect the grids will ask for."""
    centre = mean @ problem.A.T  # (node, row)
    spread = np.linalg.norm(np.einsum("jpq,rp->jrq", chol, problem.A), axis=-1)
    reach = (radius + 1.0) * spread + 8.0 * np.minimum(tau[:, None], rows.scale)
    rows.tabulate((centre - reach).min(axis=0), (centre + reach).max(axis=0))


def _moments(slices: Slices, nodes: np.ndarray, kept: bool = False
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return conditional moments, rim density and evidence at the given tau nodes.

    That is: the exact conditional mean and covariance of phi, the log density at the rim of
    each grid relative to its peak, and ``log int prior * likelihood dphi`` (the trapezoid rule
    on the grid). ``kept``: read the likelihood the slices keep at their grid points
    (:meth:`Slices.ball`) instead of evaluating it at the nodes asked.
    """
    p = slices.problem.p
    points, _, _ = ball_grid(p, slices.step, slices.radius)
    chol = slices.chol[nodes]
    if kept:
        phi, log_d = slices.ball_log_density(nodes)
    else:
        phi = slices.mean[nodes][:, None, :] + np.einsum("jpq,nq->jnp", chol, points)
        log_d = slices.log_density(phi, nodes)
    peak = np.max(log_d, axis=1, keepdims=True)
    w = np.exp(log_d - peak)
    total = w.sum(axis=1, keepdims=True)
    evidence = (peak + np.log(total))[:, 0] + p * math.log(slices.step) + np.log(
        np.abs(np.linalg.det(chol)))
    w /= total
    mean = np.einsum("jn,jnp->jp", w, phi)
    centred = phi - mean[:, None, :]
    covariance = np.einsum("jn,jnp,jnq->jpq", w, centred, centred)
    norm = np.sqrt((points**2).sum(axis=1))
    rim = norm > slices.radius - slices.step - 1e-9
    edge = np.max(np.where(rim, log_d, -np.inf), axis=1) - peak[:, 0]
    return mean, covariance, edge, evidence


def _variance_ratio(chol: np.ndarray, covariance: np.ndarray) -> np.ndarray:
    """Eigenvalues of each covariance in units of its frame ``chol`` (node, p), ascending."""
    return np.asarray(np.linalg.eigvalsh(np.linalg.solve(chol, np.linalg.solve(
        chol, covariance).transpose(0, 2, 1))))


def _tau_log_density(problem: ExactProblem, grid: TauGrid, evidence: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Return ``log p(tau_j, y)`` at the grid's nodes and the log posterior density in v."""
    with np.errstate(divide="ignore"):
        joint = log_density(problem.tau_prior, grid.tau) + evidence
    return joint, joint + np.log(grid.scale * np.cosh(grid.v))


def _build_slices(problem: ExactProblem, rows: RowLikelihoods | NormalRowLikelihoods,
                  trials: TrialLikelihoods, settings: ExactSettings, surrogate: GaussianLinear,
                  tau: np.ndarray) -> tuple[Slices, int, np.ndarray]:
    """Return slices framed by the normal approximation, re-centred where needed.

    A node is re-centred (at most three times) where the exact conditional posterior is
    elsewhere. Returns the slices, the number of re-centrings and each node's
    ``log int prior(phi) prod_k l_k dphi``.
    """
    mean, chol = _frames(surrogate, tau)
    step = settings.inner_step if problem.p == 1 else settings.ball_step
    radius = step * int(round(settings.inner_radius / step))
    _tabulate_rows(problem, rows, tau, mean, chol, radius)
    slices = Slices(problem, trials, settings, tau, mean, chol)
    recentred = 0
    todo = np.arange(len(tau))
    evidence = np.empty(len(tau))
    for attempt in range(4):
        exact_mean, exact_cov, edge, evidence[todo] = _moments(slices, todo)
        frame_chol = slices.chol[todo]
        shift = np.linalg.solve(frame_chol, (exact_mean - slices.mean[todo])[..., None])[..., 0]
        ratio = _variance_ratio(frame_chol, exact_cov)
        off = (
            (np.linalg.norm(shift, axis=1) > 0.5)
            | (ratio.min(axis=1) < NARROWEST) | (ratio.max(axis=1) > WIDEST)
            | (edge > RIM)
        )
        if not off.any() or attempt == 3:
            break
        recentred += int(off.sum())
        todo = todo[off]
        widen = np.where(edge[off] > RIM, 1.5, 1.0)[:, None, None]
        new_mean, new_chol = exact_mean[off], np.linalg.cholesky(exact_cov[off]) * widen
        _tabulate_rows(problem, rows, tau[todo], new_mean, new_chol, radius)
        redone = Slices(problem, trials, settings, tau[todo], new_mean, new_chol)
        where = {int(j): i for i, j in enumerate(todo)}
        slices = Slices.join([slices, redone],
                             [(1, where[j]) if j in where else (0, j) for j in range(len(tau))])
    return slices, recentred, evidence


def grid_posterior(problem: ExactProblem, settings: ExactSettings | None = None) -> ExactPosterior:
    """Return the exact posterior of a binomial-normal model (or one with non-normal priors).

    Parameters
    ----------
    problem : ExactProblem
    settings : ExactSettings, optional

    Returns
    -------
    ExactPosterior

    Raises
    ------
    BeyondReach
        More coefficients than ``settings.max_coefficients``.
    """
    settings = settings or ExactSettings()
    if problem.p > settings.max_coefficients:
        raise BeyondReach(
            f"{problem.p} coefficients ({', '.join(problem.names)}): the exact engine "
            f"integrates at most {settings.max_coefficients}; use NUTS"
        )
    rows = _row_likelihoods(problem, settings)
    trials = TrialLikelihoods(rows, problem.study, settings.z_nodes,
                              rough_nodes=settings.z_rough_nodes,
                              sinh_step=settings.z_sinh_step)
    surrogate = _surrogate(problem, rows)

    def approximate(tau: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return log_density(problem.tau_prior, tau) + surrogate.given_tau(tau)[2]

    grid = place_tau_grid(approximate, reference=float(np.median(rows.scale)),
                          steps_per_sd=settings.tau_steps_per_sd)
    # Nodes are computed once: a longer, lower or finer grid only adds nodes.
    done: dict[int, tuple[int, int, float]] = {}
    parts: list[Slices] = []
    recentred = 0
    unit = grid.step / 2**12
    for _ in range(16):
        keys = np.rint(grid.v / unit).astype(np.int64)
        new = np.flatnonzero([k not in done for k in keys])
        if len(new):
            part, count, evidence = _build_slices(problem, rows, trials, settings, surrogate,
                                                  grid.tau[new])
            recentred += count
            for j, (i, value) in enumerate(zip(new, evidence, strict=True)):
                done[int(keys[i])] = (len(parts), j, float(value))
            parts.append(part)
        evidence = np.array([done[int(k)][2] for k in keys])
        joint, log_v = _tau_log_density(problem, grid, evidence)
        following = next_grid(grid, log_v, MIN_STEPS_PER_SD)
        if following is grid or following.n > MAX_TAU_NODES:
            break
        grid = following
    slices = Slices.join(parts, [done[int(k)][:2] for k in keys])
    return _assemble(slices, grid, joint, log_v, {"recentred": recentred})


def _assemble(slices: Slices, grid: TauGrid, joint: np.ndarray, log_v: np.ndarray,
              checks: dict[str, Any]) -> ExactPosterior:
    """Return the posterior from its slices and tau grid (``joint``: log p(tau_j, y))."""
    problem = slices.problem
    log_q = joint + grid.log_weight
    log_evidence = float(special.logsumexp(log_q))
    weight = np.exp(log_q - log_evidence)
    return ExactPosterior(
        problem=problem,
        grid=grid,
        log_density=log_v,
        weight=weight,
        log_marginal_likelihood=log_evidence,
        conditionals=GridConditionals(slices, weight, grid),
        method=f"{problem.likelihood}-normal: nested quadrature, "
               f"{problem.p} coefficient{'s' if problem.p > 1 else ''} on a grid given tau",
        checks={"tau_nodes": grid.n, "tau_step": grid.step, "tau_scale": grid.scale,
                "edge_log_density": float(log_v[-1] - np.max(log_v)),
                **checks, "settings": slices.settings},
    )


def _same_data(a: ExactProblem, b: ExactProblem) -> bool:
    """Whether two problems hold the same likelihood (they may differ in phi's and tau's priors)."""
    arrays = ("A", "study", "events", "n", "y", "v")
    return (a.likelihood == b.likelihood and a.baseline == b.baseline
            and all(np.array_equal(getattr(a, k), getattr(b, k)) if getattr(a, k) is not None
                    else getattr(b, k) is None for k in arrays))


def reweighted(posterior: ExactPosterior, problem: ExactProblem) -> ExactPosterior | None:
    """Return the posterior of the same data under other priors, on ``posterior``'s grids.

    Other priors of phi and tau: the baseline prior is part of the rows' likelihoods.

    Given tau, each trial's likelihood of phi does not depend on the priors of phi or tau, so
    the grids that integrate one posterior integrate another of the same data by its own
    prior density, with no new likelihood evaluated, as long as they still hold it. That is
    checked as :func:`grid_posterior` checks its own grids: at every tau node of weight above
    :data:`NEGLIGIBLE` the conditional density at the coefficients' rim is below :data:`RIM`
    of its peak and its variance along no axis below :data:`NARROWEST` of the frame's (0.6 of
    its sd: the trapezoid rule keeps its accuracy), and the tau grid holds the new tau
    posterior (its ends negligible, its step fine:
    :func:`~rebayes.bayes.exact.grid.next_grid`). Where they do not, ``None``: compute it
    with :func:`grid_posterior`.

    Parameters
    ----------
    posterior : ExactPosterior
        Of the nested grids (not the normal-normal model's closed form).
    problem : ExactProblem
        The same data as ``posterior.problem`` (same rows, trials, coefficients and baseline
        prior), under other priors of phi and tau.

    Returns
    -------
    ExactPosterior or None
    """
    conditionals = posterior.conditionals
    if not isinstance(conditionals, GridConditionals):
        raise ValueError("reweighting needs a posterior on the nested grids")
    if not _same_data(posterior.problem, problem):
        raise ValueError("reweighting needs the same data and baseline prior")
    slices = conditionals.slices.with_problem(problem)
    _, covariance, edge, evidence = _moments(slices, np.arange(slices.n_nodes), kept=True)
    ratio = _variance_ratio(slices.chol, covariance)
    grid = posterior.grid
    joint, log_v = _tau_log_density(problem, grid, evidence)
    log_q = joint + grid.log_weight
    held = log_q - np.max(log_q) > NEGLIGIBLE
    if (ratio.min(axis=1)[held] < NARROWEST).any() or (edge[held] > RIM).any():
        return None
    if not np.isfinite(np.max(log_v)) or next_grid(grid, log_v, MIN_STEPS_PER_SD) is not grid:
        return None
    return _assemble(slices, grid, joint, log_v, {"recentred": 0, "reweighted": True})
