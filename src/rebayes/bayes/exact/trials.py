"""Each trial's likelihood given its rows' expected effects and tau.

Its random effect is integrated out.

Trial k's rows share one standardised random effect z ~ N(0, 1), so given each row's expected
effect ``eta[s] = A[s] @ phi`` and tau

    l_k = int prod_{s in k} L_s(eta[s] + tau z) N(z; 0, 1) dz,

with ``L_s`` the row's likelihood of its effect (:class:`~rebayes.bayes.exact.rows.
RowLikelihoods`, baseline integrated). The integrand is log-concave in z, and the integral is
taken by adaptive Gauss-Hermite quadrature (Liu & Pierce 1994): the rows' normal
approximations give a start, Newton steps on the log integrand (slopes and curvatures from the
rows' tables) its mode, the curvature there the scale of the nodes. At tau = 0 the rule gives
``prod L_s(eta[s])`` exactly; when the rows' likelihoods are much wider than tau the integrand
is nearly the N(0, 1) density and when they are much narrower it is nearly their product:
both are nearly normal around the mode the rule is centred on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from rebayes.bayes.exact.grid import hermite_rule
from rebayes.bayes.exact.rows import NormalRowLikelihoods, RowLikelihoods

__all__ = ["TrialLikelihoods"]

#: What each rule is applied to: rows (column), each row's trial, the sum over a trial's rows,
#: the rows' expected effects and tau.
_Args = tuple[np.ndarray, np.ndarray, Any, np.ndarray, np.ndarray]

#: Largest (row x point x node) block evaluated at once.
_BLOCK = 1_500_000
#: The sinh rule for a flat-sided integrand reaches at least z* +- sd sinh(3.5) = +- 16 sd.
SINH_REACH = 3.5
#: tau^2 times a trial's precision from which its likelihood is narrow against tau (more nodes
#: for far-from-normal trials), and below which it is wide (EASY_NODES nodes, one Newton step).
WIDE = 0.25
EASY = 0.02
#: ... and from which its likelihood is so narrow that the sinh rule takes over.
VERY_WIDE = 4.0
EASY_NODES = 5


@dataclass(frozen=True, eq=False)
class TrialLikelihoods:
    """Trial likelihoods ``l_k(eta, tau)`` by adaptive Gauss-Hermite quadrature in z.

    Attributes
    ----------
    rows : RowLikelihoods
        The rows' likelihoods (tabulated over the effects the caller will ask for).
    study : ndarray of int, shape (row,)
        Each row's trial.
    nodes : int
        Gauss-Hermite nodes in z.
    newton : int
        Newton steps towards the integrand's mode.
    rough_nodes : int
        Gauss-Hermite nodes where a trial's likelihood is far from normal and narrow against
        tau (a row of few events).
    sinh_step : float
        Step of the sinh rule (``z = z* + sd sinh(v)``) for a trial whose likelihood has no
        mode (a flat side: no events in one arm and only events in the other), or is far
        from normal and much narrower than tau.
    """

    rows: RowLikelihoods | NormalRowLikelihoods
    study: np.ndarray
    nodes: int = 10
    newton: int = 2
    rough_nodes: int = 16
    sinh_step: float = 0.15

    def log_likelihood(
        self, row_index: np.ndarray, eta: np.ndarray, tau: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Log likelihood of the trials of the rows ``row_index`` at each point.

        Parameters
        ----------
        row_index : ndarray of int, shape (r,)
            Rows taking part, whole trials (every row of each trial involved).
        eta : ndarray, shape (r, point)
            Each row's expected effect at each point.
        tau : ndarray, shape (point,)

        Returns
        -------
        trials : ndarray of int, shape (t,)
            The trials, in order of first appearance in ``row_index``.
        log_l : ndarray, shape (t, point)
            ``log l_k``, constants included.
        slope : ndarray, shape (t, point)
            ``d log l_k / d eta`` when every row of trial k moves together (the sum over its
            rows of ``E[d log L_s / d theta]`` under the integrand).
        """
        row_index = np.asarray(row_index, dtype=np.int64)
        trials, local = np.unique(self.study[row_index], return_inverse=True)
        order = np.argsort([np.flatnonzero(self.study[row_index] == t)[0] for t in trials])
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        trials, local = trials[order], rank[local]
        # Rows sorted by trial, so that a trial's sum over its rows is one np.add.reduceat.
        by_trial = np.argsort(local, kind="stable")
        row_index, local, eta = row_index[by_trial], local[by_trial], eta[by_trial]
        starts = np.flatnonzero(np.r_[True, local[1:] != local[:-1]])
        points = eta.shape[1]
        size = max(1, _BLOCK // max(1, len(row_index) * self.nodes))
        log_l = np.empty((len(trials), points))
        slope = np.empty((len(trials), points))
        for start in range(0, points, size):
            block = slice(start, min(points, start + size))
            log_l[:, block], slope[:, block] = self._block(
                row_index, local, starts, eta[:, block], np.asarray(tau)[block]
            )
        return trials, log_l, slope

    def _block(
        self,
        row_index: np.ndarray,
        local: np.ndarray,
        starts: np.ndarray,
        eta: np.ndarray,
        tau: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        rows = self.rows
        one_each = len(starts) == len(row_index)

        def per_trial(values: np.ndarray) -> np.ndarray:
            return values if one_each else np.add.reduceat(values, starts, axis=0)

        precision = rows.precision[row_index][:, None]
        spread = tau**2 * per_trial(np.broadcast_to(precision, eta.shape))  # tau^2 sum P
        # A trial with a row of few events or none is far from normal: when tau is wide
        # against its likelihood, Gauss-Hermite nodes miss its long flat side (a sinh rule);
        # when tau is narrow against it, the integrand is nearly N(0, 1) times a gentle slope
        # (a few nodes at the normal approximation's centre do).
        rough = rows.rough[row_index]
        trial_rough = rough if one_each else np.maximum.reduceat(rough, starts)
        flat = per_trial(np.broadcast_to(precision == 0, eta.shape).astype(float)) > 0
        hard = trial_rough[:, None] & ((spread >= WIDE) | (flat & (tau > 0)))
        # Start: the rows' normal approximations give a normal integrand in z.
        q = 1.0 + spread
        z = tau * per_trial(precision * (rows.mode[row_index][:, None] - eta)) / q
        if not one_each:
            args = (row_index[:, None], local, per_trial, eta, tau)
            z, curvature = self._newton(*args, z, -q, self.newton)
            log_l, slope = self._hermite(args, z, curvature, self.nodes)
            for k in np.flatnonzero(hard.any(axis=1)):
                cols = np.flatnonzero(hard[k])
                mine = np.flatnonzero(local == k)
                sub = (row_index[mine][:, None], np.zeros(len(mine), dtype=np.int64),
                       lambda values: values.sum(axis=0, keepdims=True),
                       eta[np.ix_(mine, cols)], tau[cols])
                log_l[k, cols], slope[k, cols] = (a[0] for a in self._sinh_rule(
                    sub, z[k, cols][None], curvature[k, cols][None], pairs=False))
            return log_l, slope
        # One row per trial: every (row, point) pair on its own, each by the rule it needs.
        log_l, slope = np.empty(eta.shape), np.empty(eta.shape)
        flat_hard = hard & (flat | (spread >= VERY_WIDE))
        rough_wide = hard & ~flat_hard
        easy = (spread < EASY) & ~flat & ~hard
        normal = ~easy & ~hard
        for kind in (easy, normal, rough_wide, flat_hard):
            r, p = np.nonzero(kind)
            if not len(r):
                continue
            args = (row_index[r][:, None], np.arange(len(r)), lambda values: values,
                    eta[r, p][:, None], tau[p][:, None])
            start, curvature = z[r, p][:, None], -q[r, p][:, None]
            if kind is easy:
                # One Newton step: far from a row's mode its slope is not its normal
                # approximation's, and the start would be off centre.
                start, curvature = self._newton(*args, start, curvature, 1)
                out = self._hermite(args, start, curvature, EASY_NODES)
            elif kind is normal:
                start, curvature = self._newton(*args, start, curvature, self.newton)
                out = self._hermite(args, start, curvature, self.nodes)
            elif kind is rough_wide:
                start, curvature = self._newton(*args, start, curvature, self.newton + 1)
                out = self._hermite(args, start, curvature, self.rough_nodes)
            else:
                start, curvature = self._newton(*args, start, curvature, self.newton)
                out = self._sinh_rule(args, start, curvature)
            log_l[r, p], slope[r, p] = out[0][:, 0], out[1][:, 0]
        return log_l, slope

    def _hermite(self, args: _Args, z: np.ndarray, curvature: np.ndarray,
                 nodes: int) -> tuple[np.ndarray, np.ndarray]:
        """Return ``log l`` and its slope by Gauss-Hermite nodes at ``z``, scaled by curvature."""
        x, log_w = hermite_rule(nodes)
        return self._rule(*args, z, 1.0 / np.sqrt(-curvature), np.sqrt(2.0) * x,
                          log_w + x**2 + 0.5 * math.log(2.0))

    def _sinh_rule(self, args: _Args, z: np.ndarray, curvature: np.ndarray,
                   pairs: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """Return ``log l`` and its slope by the sinh rule, after more Newton steps.

        The steps find the mode of a far-from-normal integrand. The rule reaches SINH_REACH sd
        from the mode and at least 12 in z (a flat side extends as far as N(0, 1) does);
        points needing a longer reach are taken in groups of similar length, so that a few
        narrow integrands do not lengthen every rule.
        """
        z, curvature = self._newton(*args, z, curvature, 4)
        sd = 1.0 / np.sqrt(-curvature)
        reach = np.maximum(SINH_REACH, np.arcsinh(12.0 / sd))
        half = 8 * np.ceil(reach / self.sinh_step / 8).astype(np.int64)
        if not pairs:
            half = np.full_like(half, half.max())
        if len(np.unique(half)) == 1:
            v = self.sinh_step * np.arange(-half.flat[0], half.flat[0] + 1)
            return self._rule(*args, z, sd, np.sinh(v), np.log(self.sinh_step * np.cosh(v)))
        rows_col, local, per_trial, eta, tau = args
        log_l, slope = np.empty(z.shape), np.empty(z.shape)
        for size in np.unique(half):
            # Pairs (one row each, as the caller groups them): a subset of the points.
            pick = np.flatnonzero(half.ravel() == size)
            v = self.sinh_step * np.arange(-size, size + 1)
            sub = (rows_col[pick], np.arange(len(pick)), per_trial, eta[pick], tau[pick])
            log_l.flat[pick], slope.flat[pick] = (a.ravel() for a in self._rule(
                *sub, z[pick], sd[pick], np.sinh(v), np.log(self.sinh_step * np.cosh(v))))
        return log_l, slope

    def _newton(self, rows_col: np.ndarray, local: np.ndarray, per_trial: Any,
                eta: np.ndarray, tau: np.ndarray, z: np.ndarray, curvature: np.ndarray,
                steps: int) -> tuple[np.ndarray, np.ndarray]:
        """Return z and the curvature after Newton steps towards the integrand's mode.

        Each step is at most 3 sd long.
        """
        for _ in range(steps):
            _, first, second = self.rows.evaluate(rows_col, eta + tau * z[local])
            gradient = tau * per_trial(first) - z
            curvature = np.minimum(tau**2 * per_trial(second), 0.0) - 1.0
            step = -gradient / curvature
            limit = 3.0 / np.sqrt(-curvature)
            z = z + np.clip(step, -limit, limit)
        return z, curvature

    def _rule(self, rows_col: np.ndarray, local: np.ndarray, per_trial: Any, eta: np.ndarray,
              tau: np.ndarray, centre: np.ndarray, sd: np.ndarray, offsets: np.ndarray,
              log_weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return ``log l`` and its slope by the rule ``z = centre + sd * offsets``.

        The weights are ``sd * exp(log_weights)``.
        """
        nodes = centre[..., None] + sd[..., None] * offsets  # (trial, point, node)
        theta = eta[..., None] + np.asarray(tau)[..., None] * nodes[local]
        value, first, _ = self.rows.evaluate(rows_col[..., None], theta, order=1)
        log_terms = log_weights + per_trial(value) - 0.5 * nodes**2
        peak = np.max(log_terms, axis=-1, keepdims=True)
        weights = np.exp(log_terms - peak)
        total = weights.sum(axis=-1)
        log_l = peak[..., 0] + np.log(total) + np.log(sd) - 0.5 * math.log(2 * math.pi)
        weights /= total[..., None]
        return log_l, (weights * per_trial(first)).sum(axis=-1)
