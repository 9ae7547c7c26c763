"""Each row's binomial likelihood of its log odds ratio, the baseline integrated out.

For row s with control events/participants (rC, nC) and treatment (rT, nT), the model puts the
arms' log odds at ``alpha -+ theta / 2`` with ``alpha ~ N(mu_a, s_a)``
(:func:`rebayes.bayes.model.arm_log_odds`). alpha enters no other row, so

    L_s(theta) = int Bin(rC | nC, expit(a - theta/2)) Bin(rT | nT, expit(a + theta/2)) N(a) da

is a function of theta alone (binomial coefficients included), computed once per row:

- **adaptive Gauss-Hermite** in a (Liu Q, Pierce DA. A note on Gauss-Hermite quadrature.
  Biometrika 1994;81:624-9): the integrand is log-concave in a, so safeguarded Newton steps
  find its mode and the curvature there scales the nodes; its derivatives in theta are the
  integrand's expectations (Louis' identity for the second);
- **the row's normal approximation**: Newton steps in theta on ``log L_s`` give its mode and
  curvature, which centre the grids and the tables; a row whose likelihood keeps rising (no
  events in one arm and only events in the other) has no mode and a flat approximation;
- **a table** of ``log L_s`` and its slope at ``theta = m + s sinh(v)``, v in uniform steps:
  fine near the row's mode, logarithmic far from it, read back as a cubic Hermite
  interpolant in v (:meth:`RowLikelihoods.evaluate`), outside the table extended by its end
  slope (``log L_s`` is concave, so the extension bounds it from above).

``log L_s`` is concave in theta (the integrand is log-concave jointly in (a, theta) and
integrating out a keeps that: Prekopa A. Acta Sci Math 1973;34:335-43), which is what makes
the Newton steps and the trial integrals of :mod:`rebayes.bayes.exact.trials` safe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from rebayes.bayes.exact.grid import hermite_rule
from rebayes.bayes.priors import Normal

__all__ = ["NormalRowLikelihoods", "RowLikelihoods"]

#: A row mode beyond this (log odds ratio) means its likelihood has none.
UNBOUNDED = 40.0
#: A row with fewer events (or non-events) than this in an arm has a far-from-normal likelihood.
ROUGH = 5


def _log_choose(n: np.ndarray, k: np.ndarray) -> np.ndarray:
    return np.asarray(special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1))


def _binomial_kernel(k: np.ndarray, n: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``k log expit(x) + (n - k) log expit(-x)``, stable (scipy's log_expit is slower)."""
    common = np.log1p(np.exp(-np.abs(x)))
    return np.asarray(k * np.minimum(x, 0.0) + (n - k) * np.minimum(-x, 0.0) - n * common)


@dataclass(frozen=True, eq=False)
class RowLikelihoods:
    """The rows' likelihoods of theta, baselines integrated (see the module docstring).

    Attributes
    ----------
    events, n : ndarray of int, shape (row, 2)
        Arms (control, treatment).
    baseline : Normal
        Prior of each row's alpha.
    nodes : int
        Gauss-Hermite nodes in alpha.
    table_step : float
        Step of the tables in v.
    mode, scale : ndarray, shape (row,)
        Each row's normal approximation: mode and sd of ``L_s`` (for a row without a mode,
        the 0.5-corrected empirical log odds ratio and its standard error).
    precision : ndarray, shape (row,)
        ``1 / scale^2``, or 0 for a row without a mode.
    rough : ndarray of bool, shape (row,)
        Rows whose likelihood is far from normal: fewer than :data:`ROUGH` events or
        non-events in an arm, or no mode.
    """

    events: np.ndarray
    n: np.ndarray
    baseline: Normal
    nodes: int = 16
    table_step: float = 0.05
    mode: np.ndarray = field(init=False)
    scale: np.ndarray = field(init=False)
    precision: np.ndarray = field(init=False)
    rough: np.ndarray = field(init=False)
    _table: dict[str, np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        rc, rt = self.events[:, 0].astype(float), self.events[:, 1].astype(float)
        nc, nt = self.n[:, 0].astype(float), self.n[:, 1].astype(float)
        empirical = np.log((rt + 0.5) / (nt - rt + 0.5)) - np.log((rc + 0.5) / (nc - rc + 0.5))
        empirical_se = np.sqrt(
            1 / (rt + 0.5) + 1 / (nt - rt + 0.5) + 1 / (rc + 0.5) + 1 / (nc - rc + 0.5)
        )
        theta = np.clip(empirical, -10, 10)
        value, slope, curvature = self.log_likelihood(np.arange(len(rc)), theta)
        active = np.ones(len(rc), dtype=bool)
        for _ in range(60):
            rows = np.flatnonzero(active)
            if rows.size == 0:
                break
            step = np.clip(-slope[rows] / np.minimum(curvature[rows], -1e-12), -5.0, 5.0)
            # Halve a step that lowers the (concave) log likelihood.
            for _ in range(30):
                new = self.log_likelihood(rows, theta[rows] + step)
                worse = new[0] < value[rows] - 1e-12 * (1 + np.abs(value[rows]))
                if not worse.any():
                    break
                step = np.where(worse, step / 2, step)
            theta[rows] += step
            value[rows], slope[rows], curvature[rows] = new
            done = np.abs(step) < 1e-10 * (1 + np.abs(theta[rows]))
            active[rows] = ~done & (np.abs(theta[rows]) < UNBOUNDED)
        bounded = (np.abs(theta) < UNBOUNDED) & (curvature < -1e-10)
        scale = np.where(bounded, 1.0 / np.sqrt(np.where(bounded, -curvature, 1.0)), empirical_se)
        object.__setattr__(self, "mode", np.where(bounded, theta, empirical))
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "precision", np.where(bounded, 1.0 / scale**2, 0.0))
        object.__setattr__(self, "_table", {})
        counts = np.concatenate([self.events, self.n - self.events], axis=1)
        object.__setattr__(self, "rough", (counts.min(axis=1) < ROUGH) | ~bounded)

    def _counts(self, rows: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(
            np.asarray(a[rows, j], dtype=float) for a, j in
            ((self.events, 0), (self.n, 0), (self.events, 1), (self.n, 1))
        )

    def baseline_mode(self, rows: np.ndarray, theta: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Mode of alpha's conditional density given theta, and ``1 / sqrt(curvature)`` there.

        The density (binomial kernels times alpha's normal prior) is log-concave: its slope
        falls from positive to negative within ``[lo, hi]``; Newton steps, bisection when a
        step leaves the bracket, and converged points stop.
        """
        rows, theta = np.broadcast_arrays(np.asarray(rows), np.asarray(theta, dtype=float))
        shape = theta.shape
        rc, nc, rt, nt = (v.ravel() for v in self._counts(rows))
        theta = theta.ravel()
        mu, sd = self.baseline.mu, self.baseline.sigma
        precision = 1.0 / sd**2

        def score(a: np.ndarray, i: np.ndarray | slice) -> tuple[np.ndarray, np.ndarray]:
            t = theta[i] / 2
            p1, p2 = special.expit(a - t), special.expit(a + t)
            first = rc[i] - nc[i] * p1 + rt[i] - nt[i] * p2 - (a - mu) * precision
            second = -nc[i] * p1 * (1 - p1) - nt[i] * p2 * (1 - p2) - precision
            return first, second

        lo = mu - sd**2 * (nc + nt - rc - rt) - 1.0
        hi = mu + sd**2 * (rc + rt) + 1.0
        a = np.clip(special.logit((rc + rt + 0.5) / (nc + nt + 1.0)), lo, hi)
        active = np.arange(a.size)
        for _ in range(200):
            first, second = score(a[active], active)
            lo[active] = np.where(first > 0, a[active], lo[active])
            hi[active] = np.where(first < 0, a[active], hi[active])
            step = a[active] - first / second
            inside = (step >= lo[active]) & (step <= hi[active])
            new = np.where(inside, step, 0.5 * (lo[active] + hi[active]))
            done = (np.abs(new - a[active]) < 1e-11 * (1 + np.abs(new))) | (first == 0)
            a[active] = new
            active = active[~done]
            if active.size == 0:
                break
        _, second = score(a, slice(None))
        return a.reshape(shape), (1.0 / np.sqrt(-second)).reshape(shape)

    def baseline_log_density(self, rows: np.ndarray, theta: np.ndarray, a: np.ndarray
                             ) -> np.ndarray:
        """Unnormalised log density of alpha = ``a`` given theta (binomial kernels, prior)."""
        rc, nc, rt, nt = self._counts(np.asarray(rows))
        return np.asarray(
            _binomial_kernel(rc, nc, a - theta / 2) + _binomial_kernel(rt, nt, a + theta / 2)
            - 0.5 * ((a - self.baseline.mu) / self.baseline.sigma) ** 2
        )

    def log_likelihood(
        self, rows: np.ndarray, theta: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``log L_s(theta)`` and its first two derivatives, by adaptive Gauss-Hermite.

        Parameters
        ----------
        rows : ndarray of int
            Row of each evaluation (broadcast with ``theta``).
        theta : ndarray
            Log odds ratios.
        """
        rows, theta = np.broadcast_arrays(np.asarray(rows), np.asarray(theta, dtype=float))
        rc, nc, rt, nt = self._counts(rows)
        sd = self.baseline.sigma
        a, scale = self.baseline_mode(rows, theta)
        width = math.sqrt(2.0) * scale
        x, log_w = hermite_rule(self.nodes)
        nodes = a[..., None] + width[..., None] * x
        t = theta[..., None]
        x1, x2 = nodes - t / 2, nodes + t / 2
        rc_, rt_, nc_, nt_ = (v[..., None] for v in (rc, rt, nc, nt))
        log_f = self.baseline_log_density(rows[..., None], t, nodes)
        log_terms = log_w + x**2 + log_f
        peak = np.max(log_terms, axis=-1, keepdims=True)
        weights = np.exp(log_terms - peak)
        total = weights.sum(axis=-1)
        weights /= total[..., None]
        value = (
            peak[..., 0] + np.log(total) + np.log(width)
            - math.log(sd) - 0.5 * math.log(2 * math.pi)
            + _log_choose(nc, rc) + _log_choose(nt, rt)
        )
        p1, p2 = special.expit(x1), special.expit(x2)
        d_theta = 0.5 * (rt_ - nt_ * p2) - 0.5 * (rc_ - nc_ * p1)
        dd_theta = -0.25 * (nc_ * p1 * (1 - p1) + nt_ * p2 * (1 - p2))
        slope = (weights * d_theta).sum(axis=-1)
        curvature = (weights * (dd_theta + d_theta**2)).sum(axis=-1) - slope**2
        return value, slope, curvature

    def tabulate(self, lo: np.ndarray, hi: np.ndarray) -> None:
        """Tabulate every row's ``log L_s`` on ``[lo, hi]`` (per row; at least mode +- 30 sd).

        Later calls only widen the tables.
        """
        m, s = self.mode, self.scale
        lo = np.minimum(np.asarray(lo, float), m - 30 * s)
        hi = np.maximum(np.asarray(hi, float), m + 30 * s)
        if self._table:
            lo = np.minimum(lo, self._table["lo"])
            hi = np.maximum(hi, self._table["hi"])
            if (lo >= self._table["lo"]).all() and (hi <= self._table["hi"]).all():
                return
        h = self.table_step
        v_lo = np.floor(np.arcsinh((lo - m) / s) / h) * h
        v_hi = np.ceil(np.arcsinh((hi - m) / s) / h) * h
        count = np.round((v_hi - v_lo) / h).astype(np.int64) + 1
        offset = np.concatenate([[0], np.cumsum(count)[:-1]])
        row = np.repeat(np.arange(len(m)), count)
        v = v_lo[row] + h * (np.arange(count.sum()) - offset[row])
        theta = m[row] + s[row] * np.sinh(v)
        value, slope, _ = self.log_likelihood(row, theta)
        self._table.update(
            lo=lo, hi=hi, v_lo=v_lo, count=count, offset=offset, value=value,
            slope_v=slope * s[row] * np.cosh(v),
        )

    def evaluate(
        self, rows: np.ndarray, theta: np.ndarray, order: int = 2
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``log L_s(theta)`` and its first two derivatives from the tables.

        Parameters
        ----------
        rows : ndarray of int, shape broadcastable with ``theta``
        theta : ndarray
        order : int
            Derivatives wanted (0, 1 or 2; the others come back as zeros).
        """
        table = self._table
        rows = np.asarray(rows)
        theta = np.asarray(theta, dtype=float)
        # Per-row constants keep the rows' shape and broadcast: no full-size gathers.
        m, s = self.mode[rows], self.scale[rows]
        v_lo, offset = table["v_lo"][rows], table["offset"][rows]
        h = self.table_step
        v = np.arcsinh((theta - m) / s)
        pos = (v - v_lo) / h
        k = np.clip(np.floor(pos), 0, table["count"][rows] - 2).astype(np.int64)
        t = pos - k
        outside = (t < 0) | (t > 1)
        if outside.any():
            t = np.clip(t, 0.0, 1.0)
        index = offset + k
        G0, G1 = table["value"][index], table["value"][index + 1]
        D0, D1 = table["slope_v"][index] * h, table["slope_v"][index + 1] * h
        dG = G0 - G1
        t2 = t * t
        value = G0 + t2 * ((2 * t - 3) * dG + (t - 2) * D0 + (t - 1) * D1) + t * D0
        zeros = np.zeros_like(value)
        if order == 0 and not outside.any():
            return value, zeros, zeros
        dv = ((6 * t2 - 6 * t) * dG + (3 * t2 - 4 * t + 1) * D0 + (3 * t2 - 2 * t) * D1) / h
        jac = s * np.cosh(v)
        slope = dv / jac
        curvature = zeros
        if order == 2:
            dvv = ((12 * t - 6) * dG + (6 * t - 4) * D0 + (6 * t - 2) * D1) / h**2
            curvature = (dvv - dv * np.tanh(v)) / jac**2
        if outside.any():
            # Outside the table: the end's tangent in theta (concave, so an upper bound).
            v_end = np.broadcast_to(v_lo, v.shape)[outside] + h * (k + t)[outside]
            s_out = np.broadcast_to(s, v.shape)[outside]
            slope[outside] = dv[outside] / (s_out * np.cosh(v_end))
            theta_end = np.broadcast_to(m, v.shape)[outside] + s_out * np.sinh(v_end)
            value[outside] += slope[outside] * (theta[outside] - theta_end)
            if order == 2:
                curvature = np.where(outside, 0.0, curvature)
        return value, slope, curvature


@dataclass(frozen=True, eq=False)
class NormalRowLikelihoods:
    """The normal likelihood's rows, ``y[s] ~ N(theta, v[s])``.

    The same interface as :class:`RowLikelihoods`: the grid engine's normal model with
    non-normal priors.

    Attributes
    ----------
    y, v : ndarray, shape (row,)
    """

    y: np.ndarray
    v: np.ndarray

    @property
    def mode(self) -> np.ndarray:
        """Each row's mode: its estimate."""
        return self.y

    @property
    def scale(self) -> np.ndarray:
        """Each row's standard error."""
        return np.sqrt(self.v)

    @property
    def precision(self) -> np.ndarray:
        """``1 / v``."""
        return 1.0 / self.v

    @property
    def rough(self) -> np.ndarray:
        """No row is far from normal."""
        return np.zeros(len(self.y), dtype=bool)

    def tabulate(self, lo: np.ndarray, hi: np.ndarray) -> None:
        """Nothing to tabulate: the likelihood is in closed form."""

    def evaluate(
        self, rows: np.ndarray, theta: np.ndarray, order: int = 2
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``log N(y | theta, v)`` and its first two derivatives in theta.

        ``order`` as for :meth:`RowLikelihoods.evaluate`, which this mirrors.
        """
        rows = np.broadcast_to(rows, np.shape(theta))
        y, v = self.y[rows], self.v[rows]
        r = y - theta
        value = -0.5 * (r**2 / v + np.log(2 * math.pi * v))
        return value, r / v, -1.0 / v
