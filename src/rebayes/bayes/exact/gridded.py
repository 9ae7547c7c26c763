"""Marginals and draws of a posterior integrated on grids (the binomial-normal engine).

Given tau_j, :class:`~rebayes.bayes.exact.slices.Slices` gives the density of any combination
``x = c @ phi`` at the nodes of a 1-D grid; refined (:func:`~rebayes.bayes.exact.grid.
refine_log_density`) these make a :class:`~rebayes.bayes.exact.marginals.GridMixture`. On top:

- a new trial's effect ``x + tau eps``: given tau its density is the convolution of x's with
  N(0, tau^2), by the trapezoid rule over x's fine grid when tau is at least its step
  (exponentially accurate for a Gaussian kernel that wide), else by the expansion
  ``f + tau^2 f'' / 2`` (the next term is below 1e-5 of f there);
- a trial's shrunken effect ``theta = eta + tau z``: given tau its density is
  ``L_k(theta) * (q conv N(0, tau^2))(theta)`` with ``q = p(eta | tau, y) / l_k(eta, tau)``
  (the trial's likelihood divided out of eta's conditional, then the trial's own likelihood of
  its effect), evaluated the same two ways;
- draws: tau's node nearest to each drawn tau, then ``phi`` coordinate by coordinate from the
  conditional distributions on that node's grid, each trial's ``z`` given ``phi`` and each
  row's alpha given its effect, all by inverse-CDF sampling of tabulated densities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from rebayes.bayes.exact.draws import (
    blended_inverse_cdf,
    bracket,
    inverse_cdf,
    quantile_nodes,
    sample_grid,
)
from rebayes.bayes.exact.grid import FINE, TauGrid, refine_log_density
from rebayes.bayes.exact.marginals import GridMixture, Marginal
from rebayes.bayes.exact.rows import RowLikelihoods
from rebayes.bayes.exact.settings import BeyondReach
from rebayes.bayes.exact.slices import Slices

__all__ = ["GridConditionals"]

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)
#: The standardised grid conditional densities are drawn from (step 0.2 sd).
_GRID = np.linspace(-8.0, 8.0, 81)


@dataclass(frozen=True, eq=False)
class GridConditionals:
    """The grid engine's posterior given each tau node (see the module docstring).

    Attributes
    ----------
    slices : Slices
    weight : ndarray, shape (node,)
    grid : TauGrid
    """

    slices: Slices
    weight: np.ndarray
    grid: TauGrid

    def _fine(self, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``c @ phi``'s conditional densities on fine grids: start, step, density (normalised).

        Kept per ``c``: every trial of a one-coefficient analysis asks for the same one.
        """
        memo = self.__dict__.setdefault("_fine_memo", {})
        key = np.asarray(c, dtype=float).tobytes()
        if key not in memo:
            memo[key] = self._fine_uncached(c)
        return memo[key]  # type: ignore[no-any-return]

    def _fine_uncached(self, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        centre, scale, axis, _ = self.slices.axis_log_density(c)
        fine = np.exp(refine_log_density(axis, FINE))
        step = scale * self.slices.step / FINE
        start = centre - self.slices.radius * scale
        fine /= fine.sum(axis=1, keepdims=True) * step[:, None]
        return start, step, fine

    def linear(self, c: np.ndarray, predictive: bool = False) -> Marginal:  # noqa: D102
        start, step, density = self._fine(np.asarray(c, dtype=float))
        if not predictive:
            return GridMixture.from_density(self.weight, start, step, density)
        tau = self.slices.tau
        n = density.shape[1]
        out_start, out_step = start.copy(), step.copy()
        out = np.empty_like(density)
        for j in range(len(tau)):
            if tau[j] >= step[j]:
                x = start[j] + step[j] * np.arange(n)
                out_start[j] = x[0] - 8 * tau[j]
                out_step[j] = (x[-1] - x[0] + 16 * tau[j]) / (n - 1)
                t = out_start[j] + out_step[j] * np.arange(n)
                kernel = np.exp(-0.5 * ((t[:, None] - x) / tau[j]) ** 2 - _LOG_SQRT_2PI) / tau[j]
                out[j] = kernel @ density[j] * step[j]
            else:
                out[j] = density[j] + 0.5 * tau[j] ** 2 * _second_difference(density[j], step[j])
        return GridMixture.from_density(self.weight, out_start, out_step, np.maximum(out, 0.0))

    def log_rr_contrast(self, a: np.ndarray, b: np.ndarray, base: float) -> Marginal:
        """Marginal of ``s = log expit(base + x) - log expit(base + y)``, x = a @ phi, y = b @ phi.

        The log ratio of two effects' risk ratios at control log odds ``base``, for the
        binomial likelihood (under the normal one it is ``x - y``, a :meth:`linear`
        combination, which :meth:`~rebayes.bayes.exact.ExactPosterior.risk_ratio_ratio` asks
        for instead). Given tau_j, on the plane of
        :meth:`~rebayes.bayes.exact.slices.Slices.plane_log_density` (``y`` along ``u_1``;
        at a fixed ``u_1``, ``x`` and so ``s`` increase with ``u_2``) the density of s is

            f(s) = integral of f(u_1, u_2(s, u_1)) |du_2 / ds| du_1,

        ``u_2(s, u_1)`` solving ``x = logit(e^s expit(base + y)) - base``, and
        ``dx / ds = 1 / (1 - e^s expit(base + y))``. The joint log density is refined from
        the plane's step to 1/4 of it along ``u_1`` (the trapezoid rule over u_1, exact to
        far below 1e-6 for a conditional spread down to 0.2 sd) and to 1/32 along ``u_2``
        (read by linear interpolation of the log density: a relative error below 1e-4), and
        the integral is taken at 241 values of s spanning the plane's mass.
        """
        axis, lines, log_d = self.slices.plane_log_density(np.asarray(a, dtype=float),
                                                           np.asarray(b, dtype=float))
        h = axis[1] - axis[0]
        along, across = 32, 4
        fine = refine_log_density(log_d, along) + log_d.max(axis=2, keepdims=True)
        turned = np.swapaxes(fine, 1, 2)
        fine = np.swapaxes(refine_log_density(turned, across)
                           + turned.max(axis=2, keepdims=True), 1, 2)  # (node, u_1, u_2)
        u1 = axis[0] + h / across * np.arange(fine.shape[1])
        h2 = h / along
        size = 241
        nodes = self.slices.n_nodes
        start, step = np.empty(nodes), np.empty(nodes)
        density = np.zeros((nodes, size))
        coarse_1, coarse_2 = np.meshgrid(axis, axis, indexing="ij")
        for j in range(nodes):
            y0, y1, x0, x1, x2 = lines[j]
            s = (special.log_expit(base + x0 + x1 * coarse_1 + x2 * coarse_2)
                 - special.log_expit(base + y0 + y1 * coarse_1))
            held = s[log_d[j] > log_d[j].max() - 30.0]
            lo, hi = float(held.min()), float(held.max())
            start[j], step[j] = lo, (hi - lo) / (size - 1)
            values = lo + step[j] * np.arange(size)
            log_py = special.log_expit(base + y0 + y1 * u1)  # (u_1,)
            q = np.exp(values[:, None] + log_py[None, :])  # e^s expit(base + y)
            ok = q < 1.0
            q = np.where(ok, q, 0.5)
            x = np.log(q) - np.log1p(-q) - base
            pos = ((x - x0 - x1 * u1[None, :]) / x2 - axis[0]) / h2
            k = np.clip(np.floor(pos), 0, fine.shape[2] - 2).astype(np.int64)
            t = pos - k
            inside = ok & (pos >= 0) & (pos <= fine.shape[2] - 1)
            row = np.broadcast_to(np.arange(u1.size), k.shape)
            top = fine[j].max()
            log_f = (1 - t) * fine[j][row, k] + t * fine[j][row, k + 1] - top
            jacobian = 1.0 / ((1.0 - q) * x2)
            density[j] = np.where(inside, np.exp(log_f) * jacobian, 0.0).sum(axis=1)
        return GridMixture.from_density(self.weight, start, step, density)

    def trial_effect(self, row: int) -> Marginal:  # noqa: D102
        problem = self.slices.problem
        trial = int(problem.study[row])
        if not self.slices.is_single(trial):
            raise BeyondReach(
                f"the shrunken effect of {problem.rows[row]}: its trial's strata differ in their "
                "covariates (use NUTS for it)"
            )
        a = problem.A[row]
        start, step, density = self._fine(a)
        n = density.shape[1]
        eta = start[:, None] + step[:, None] * np.arange(n)
        with np.errstate(divide="ignore"):
            log_q = np.log(density) - self.slices.trial_log_likelihood(trial, eta)
        trial_rows = np.flatnonzero(problem.study == trial)
        rows = self.slices.trials.rows
        tau = self.slices.tau
        # Where theta | tau lies: eta's spread plus tau, combined with the trial's own data.
        eta_mean = (density * eta).sum(axis=1) * step
        eta_var = (density * (eta - eta_mean[:, None]) ** 2).sum(axis=1) * step
        precision = rows.precision[trial_rows].sum()
        own = (rows.precision[trial_rows] * rows.mode[trial_rows]).sum() / max(precision, 1e-300)
        prior_var = eta_var + tau**2
        post_var = 1.0 / (1.0 / prior_var + precision)
        post_mean = post_var * (eta_mean / prior_var + precision * own)
        half = (self.slices.radius + 1.0) * np.sqrt(post_var)
        # Where tau is at least the grid's step: the trapezoid rule over eta's fine grid, all
        # nodes at once, sum_k q_k N(theta - eta_k; 0, tau^2) with q scaled by its largest
        # value (the terms it drops to 0 lie beyond e^-745 of the peak). Below it: the
        # expansion f + tau^2 (f'' + f'^2) / 2 of the log, on eta's own grid.
        wide = tau >= step
        out_start = np.where(wide, post_mean - half, start)
        out_step = np.where(wide, 2 * half / (n - 1), step)
        theta = out_start[:, None] + out_step[:, None] * np.arange(n)
        log_conv = np.empty_like(density)
        top = np.max(log_q, axis=1, keepdims=True)
        if wide.any():
            kernel = np.exp(-0.5 * ((theta[wide][:, :, None] - eta[wide][:, None, :])
                                    / tau[wide][:, None, None]) ** 2)
            with np.errstate(divide="ignore"):
                log_conv[wide] = np.log(np.matmul(
                    kernel, np.exp(log_q[wide] - top[wide])[:, :, None])[:, :, 0]) + top[wide]
        if (~wide).any():
            narrow = log_q[~wide]
            first = np.gradient(narrow, axis=1) / step[~wide][:, None]
            second = _second_difference(narrow, step[~wide][:, None])
            with np.errstate(invalid="ignore"):
                log_conv[~wide] = narrow + np.log1p(np.maximum(
                    0.5 * tau[~wide][:, None] ** 2 * (second + first**2), -0.5))
        value, _, _ = rows.evaluate(trial_rows[:, None, None], theta[None], order=0)
        log_p = np.nan_to_num(value.sum(axis=0) + log_conv, nan=-np.inf)
        out = np.exp(log_p - np.max(log_p, axis=1, keepdims=True))
        return GridMixture.from_density(self.weight, out_start, out_step, out)

    def draws(self, tau: np.ndarray, uniforms: np.ndarray) -> dict[str, np.ndarray]:  # noqa: D102
        slices = self.slices
        problem = slices.problem
        p = problem.p
        # The nearest node: v = (first + j) * step (a grid may start above tau = 0).
        grid = self.grid
        node = np.clip(np.rint(np.arcsinh(tau / grid.scale) / grid.step) - grid.first, 0,
                       grid.n - 1).astype(np.int64)
        phi = np.empty((len(tau), p))
        for j in np.unique(node):
            mine = node == j
            phi[mine] = sample_grid(slices, int(j), uniforms[mine, :p])
        out = {"phi": phi}
        eta = phi @ problem.A.T  # (draw, row)
        out.update(self._random_effects(eta, tau, uniforms[:, p:p + problem.n_studies]))
        if problem.likelihood == "binomial":
            theta = eta + tau[:, None] * out["z"][:, problem.study]
            u = uniforms[:, p + problem.n_studies:]
            out["alpha"] = self._baselines(theta, u)
        return out

    def _random_effects(self, eta: np.ndarray, tau: np.ndarray, u: np.ndarray
                        ) -> dict[str, np.ndarray]:
        """Draw each trial's z given the rows' expected effects and tau.

        By inverse CDF on a grid around the mode of its log-concave conditional density
        (centre and width from the rows' normal approximations, exact for every draw). Where
        the trial's rows share one expected effect (every analysis without strata that differ
        in covariates) its shape is tabulated on a grid of that effect and tau (nodes at their
        draws' quantiles) and interpolated (:func:`~rebayes.bayes.exact.draws.
        blended_inverse_cdf`): 17 x 17 densities instead of one per draw.
        """
        problem = self.slices.problem
        z = np.empty((len(tau), problem.n_studies))
        for k in range(problem.n_studies):
            trial_rows = np.flatnonzero(problem.study == k)
            own = eta[:, trial_rows]
            if np.all(own == own[:, :1]):
                x_nodes, t_nodes = quantile_nodes(own[:, 0], 17), quantile_nodes(tau, 17)
                kx, fx = bracket(own[:, 0], x_nodes)
                kt, ft = bracket(tau, t_nodes)
                x, t = (a.ravel() for a in np.meshgrid(x_nodes, t_nodes, indexing="ij"))
                same = np.repeat(x[:, None], len(trial_rows), axis=1)
                log_d = self._z_log_density(trial_rows, same, t,
                                            *self._z_frame(trial_rows, same, t))
                n_t = t_nodes.size
                corners = np.stack([kx * n_t + kt, kx * n_t + kt + 1,
                                    (kx + 1) * n_t + kt, (kx + 1) * n_t + kt + 1], axis=1)
                weights = np.stack([(1 - fx) * (1 - ft), (1 - fx) * ft, fx * (1 - ft), fx * ft],
                                   axis=1)
                centre, width = self._z_frame(trial_rows, own, tau)
                z[:, k] = centre + width * blended_inverse_cdf(log_d, _GRID, corners, weights,
                                                                u[:, k])
            else:
                centre, width = self._z_frame(trial_rows, own, tau)
                log_d = self._z_log_density(trial_rows, own, tau, centre, width)
                z[:, k] = inverse_cdf(log_d, centre + width * _GRID[0],
                                      width * (_GRID[1] - _GRID[0]), u[:, k], factor=1)
        return {"z": z}

    def _z_frame(self, trial_rows: np.ndarray, eta: np.ndarray, tau: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
        """Centre and width of z's conditional given the rows' ``eta`` (draw, row) and tau."""
        rows = self.slices.trials.rows
        precision = rows.precision[trial_rows][:, None]
        q = 1.0 + tau**2 * precision.sum(axis=0)
        centre = tau * (precision * (rows.mode[trial_rows][:, None] - eta.T)).sum(axis=0) / q
        return centre, np.sqrt(1.0 / q)

    def _z_log_density(self, trial_rows: np.ndarray, eta: np.ndarray, tau: np.ndarray,
                       centre: np.ndarray, width: np.ndarray) -> np.ndarray:
        """Unnormalised log conditional density of z on each case's frame (:meth:`_z_frame`)."""
        points = centre[:, None] + width[:, None] * _GRID
        theta = eta.T[:, :, None] + tau[None, :, None] * points[None]
        value, _, _ = self.slices.trials.rows.evaluate(trial_rows[:, None, None], theta, order=0)
        return np.asarray(value.sum(axis=0) - 0.5 * points**2)

    def _baselines(self, theta: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Each row's alpha given its effect, by inverse CDF around its mode.

        The mode and curvature are exact for every draw; the standardised shape is tabulated
        at 33 values of the row's effect (its draws' quantiles) and interpolated
        (:func:`~rebayes.bayes.exact.draws.blended_inverse_cdf`).
        """
        rows = self.slices.trials.rows
        assert isinstance(rows, RowLikelihoods)
        index = np.broadcast_to(np.arange(theta.shape[1]), theta.shape)
        centre, width = rows.baseline_mode(index, theta)
        out = np.empty_like(theta)
        for s in range(theta.shape[1]):
            nodes = quantile_nodes(theta[:, s], 33)
            k, frac = bracket(theta[:, s], nodes)
            row = np.full(nodes.size, s)
            node_centre, node_width = rows.baseline_mode(row, nodes)
            points = node_centre[:, None] + node_width[:, None] * _GRID
            log_d = rows.baseline_log_density(row[:, None], nodes[:, None], points)
            xi = blended_inverse_cdf(log_d, _GRID, np.stack([k, k + 1], axis=1),
                                     np.stack([1 - frac, frac], axis=1), u[:, s])
            out[:, s] = centre[:, s] + width[:, s] * xi
        return out


def _second_difference(values: np.ndarray, step: np.ndarray | float) -> np.ndarray:
    """Second differences along the last axis (the ends repeated), divided by step^2."""
    padded = np.concatenate([values[..., :1], values, values[..., -1:]], axis=-1)
    return np.asarray((padded[..., 2:] - 2 * padded[..., 1:-1] + padded[..., :-2]) / step**2)
