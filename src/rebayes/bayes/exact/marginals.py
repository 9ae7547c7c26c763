"""One-dimensional posterior marginals, known exactly: mixtures over the heterogeneity grid.

The exact engine integrates tau on a grid (:mod:`rebayes.bayes.exact.grid`), so every
marginal it reports is a finite mixture over the grid's nodes of a distribution given tau:

- :class:`NormalMixture`: given tau the quantity is normal (the normal-normal model's effects,
  predictions and shrunken trial effects), as in bayesmeta (Röver 2020, section 2.6);
- :class:`GridMixture`: given tau it is tabulated on a fine uniform grid, its distribution
  function as a piecewise cubic with the density as slope (the binomial-normal model, tau
  itself);
- :class:`Transformed`: a monotone function of another marginal (the risk ratio at a stated
  control risk, ``exp`` of a log risk ratio): quantiles and probabilities map through the
  function, the mean and the highest-density interval are computed on the new scale.

Every marginal gives ``cdf``, ``sf``, ``pdf``, ``ppf``, ``mean``, ``sd``, ``expect``, ``hdi``
and a one-line :meth:`Marginal.summary`; :meth:`Marginal.ppf` of seeded uniforms is how the
engine draws (inverse-CDF sampling).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
from scipy import special

__all__ = ["GridMixture", "Marginal", "NormalMixture", "Transformed", "cumulative_integral"]

#: Probability of the central and highest-density intervals.
PROB = 0.95


@cache
def _hermite_nodes(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes and weights for ``E[g(Z)]``, Z ~ N(0, 1)."""
    x, w = np.polynomial.hermite.hermgauss(n)
    return x * math.sqrt(2.0), w / math.sqrt(math.pi)


class Marginal:
    """A univariate posterior distribution known through its distribution function.

    Subclasses supply :meth:`cdf`, :meth:`pdf`, :meth:`expect` and :meth:`bounds`; the rest
    (quantiles, intervals, moments, drawing) follows from them.
    """

    #: Lower and upper end of the support (tau: 0 and inf).
    support: tuple[float, float] = (-math.inf, math.inf)

    def cdf(self, x: np.ndarray | float) -> np.ndarray:
        """Return P(X <= x)."""
        raise NotImplementedError

    def pdf(self, x: np.ndarray | float) -> np.ndarray:
        """Return the density at ``x``."""
        raise NotImplementedError

    def expect(self, function: Callable[[np.ndarray], np.ndarray]) -> float:
        """Return E[function(X)] (a smooth function; integrated slice by slice)."""
        raise NotImplementedError

    def bounds(self) -> tuple[float, float]:
        """Return a finite interval that holds all but a negligible part of the mass."""
        raise NotImplementedError

    def sf(self, x: np.ndarray | float) -> np.ndarray:
        """Return P(X > x)."""
        return 1.0 - self.cdf(x)

    def prob_greater(self, threshold: float) -> float:
        """Return P(X > threshold)."""
        return float(self.sf(threshold))

    @property
    def mean(self) -> float:
        """Posterior mean."""
        return self.expect(lambda x: x)

    @property
    def sd(self) -> float:
        """Posterior standard deviation."""
        mean = self.mean
        return math.sqrt(max(self.expect(lambda x: (x - mean) ** 2), 0.0))

    @property
    def median(self) -> float:
        """Posterior median."""
        return float(self.ppf(0.5))

    def ppf(self, q: np.ndarray | float) -> np.ndarray:
        """Return the quantiles at probabilities ``q`` (inverse of :meth:`cdf`).

        The quantile table (:meth:`table`) gives each start and bracket; safeguarded Newton
        steps (bisection when a step leaves the bracket) then solve ``cdf(x) = q``.
        """
        xs, F, _ = self.table()
        return self._invert(np.asarray(q, dtype=float), xs, F)

    def _invert(self, q: np.ndarray, xs: np.ndarray, F: np.ndarray) -> np.ndarray:
        """Solve ``cdf(x) = q`` from a bracketing table ``F = cdf(xs)`` (increasing)."""
        k = np.clip(np.searchsorted(F, q.ravel()), 1, len(xs) - 1)
        a, b = xs[k - 1], xs[k]
        Fa, Fb = F[k - 1], F[k]
        with np.errstate(invalid="ignore", divide="ignore"):
            x = np.where(Fb > Fa, a + (q.ravel() - Fa) / (Fb - Fa) * (b - a), (a + b) / 2)
        x = np.clip(np.nan_to_num(x, nan=0.5 * (xs[0] + xs[-1])), a, b)
        for _ in range(60):
            gap = self.cdf(x) - q.ravel()
            a = np.where(gap < 0, x, a)
            b = np.where(gap > 0, x, b)
            density = self.pdf(x)
            with np.errstate(invalid="ignore", divide="ignore"):
                step = x - gap / density
            newton = (density > 0) & (step > a) & (step < b)
            new = np.where(newton, step, 0.5 * (a + b))
            done = np.abs(new - x) <= 1e-13 * (1.0 + np.abs(x))
            x = new
            if done.all():
                break
        x = np.where(q.ravel() <= 0, self.support[0], x)
        x = np.where(q.ravel() >= 1, self.support[1], x)
        return x.reshape(q.shape)

    def table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return ``(x, cdf(x), pdf(x))`` on about 400 points spaced by probability.

        Points near the quantiles of normal scores -7 to 7 in steps of 0.035 (twice placed by
        interpolating the previous table, starting from 513 points over :meth:`bounds`), so
        that they are dense where the mass is, however wide the bounds; the distribution
        function and density are exact at them. Computed once per marginal; it starts and
        brackets every :meth:`ppf` and locates the :meth:`hdi`.
        """
        memo = self.__dict__.get("_table_memo")
        if memo is None:
            lo, hi = self.bounds()
            x = np.linspace(lo, hi, 513)
            F = np.maximum.accumulate(self.cdf(x))
            u = special.ndtr(np.linspace(-7.0, 7.0, 401))
            for _ in range(2):
                x = np.unique(np.concatenate([[lo], np.interp(u, F, x), [hi]]))
                F = np.maximum.accumulate(self.cdf(x))
            memo = (x, F, np.asarray(self.pdf(x), dtype=float))
            # A memo of a pure function of the (frozen) marginal, not state.
            object.__setattr__(self, "_table_memo", memo)
        return memo  # type: ignore[no-any-return]

    def hdi(self, prob: float = PROB) -> tuple[float, float]:
        """Highest-density (shortest) interval of probability ``prob`` (unimodal marginals).

        The interval where the density exceeds the level whose mass is ``prob``: located on
        the quantile table (:meth:`table`; the distribution function between its points the
        cubic Hermite interpolant with the density as slope), then solved exactly for
        ``cdf(hi) - cdf(lo) = prob`` and ``pdf(lo) = pdf(hi)`` (:meth:`_hdi_newton`). When the
        density falls from the support's lower end (tau with its mode at 0) the interval
        starts there and ends at ``ppf(prob)``, as bayesmeta's does.
        """
        xs, F, f = self.table()
        # Points closer than rounding (a table's bracketing ends) would overflow the spline.
        keep = np.concatenate([[True], np.diff(xs) > 1e-12 * (1.0 + np.abs(xs[1:]))]) \
            & np.isfinite(xs)
        xs, F, f = xs[keep], F[keep], f[keep]
        top = int(np.argmax(f))
        if top == 0:
            lo = self.support[0] if math.isfinite(self.support[0]) else float(xs[0])
            return float(lo), float(self.ppf(prob))
        rise_f, rise_x = np.maximum.accumulate(f[:top + 1]), xs[:top + 1]
        fall_f, fall_x = np.maximum.accumulate(f[top:][::-1]), xs[top:][::-1]

        def ends(level: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
            return np.interp(level, rise_f, rise_x), np.interp(level, fall_f, fall_x)

        low, high = 0.0, float(f[top])
        for _ in range(3):
            levels = np.linspace(low, high, 257)
            lower, upper = ends(levels)
            mass = _hermite(xs, F, f, upper) - _hermite(xs, F, f, lower)
            k = int(np.clip(np.searchsorted(-mass, -prob), 1, 256))
            low, high = float(levels[k - 1]), float(levels[k])
        start = np.array(ends(0.5 * (low + high)), dtype=float)
        solved = self._hdi_newton(start, prob, (float(xs[0]), float(xs[-1])))
        return (float(solved[0]), float(solved[1])) if solved is not None \
            else (float(start[0]), float(start[1]))

    def _hdi_newton(self, start: np.ndarray, prob: float, table: tuple[float, float]
                    ) -> np.ndarray | None:
        """Solve ``cdf(hi) - cdf(lo) = prob`` and ``log pdf(lo) = log pdf(hi)`` from ``start``.

        Newton's method with the Jacobian ``[[-f(lo), f(hi)], [(log f)'(lo),
        -(log f)'(hi)]]`` (the slopes of log f by central differences), each step halved
        until the residual falls. Returns None when it does not converge to 1e-9, or leaves
        the table.
        """
        def residual(x: np.ndarray) -> np.ndarray:
            if not (np.all(np.isfinite(x)) and table[0] <= x[0] < x[1] <= table[1]):
                return np.array([np.inf, np.inf])
            cdf, pdf = self.cdf(x), self.pdf(x)
            with np.errstate(divide="ignore", invalid="ignore"):
                return np.array([cdf[1] - cdf[0] - prob, np.log(pdf[0]) - np.log(pdf[1])])

        x = start
        r = residual(x)
        for _ in range(40):
            size = float(np.max(np.abs(r)))
            if size < 1e-12 or not np.isfinite(size):
                break
            h = 1e-6 * (x[1] - x[0])
            around = np.concatenate([x - h, x, x + h])
            with np.errstate(divide="ignore"):
                log_f = np.log(self.pdf(around))
            slope = (log_f[4:] - log_f[:2]) / (2 * h)
            f = np.exp(log_f[2:4])
            jacobian = np.array([[-f[0], f[1]], [slope[0], -slope[1]]])
            try:
                step = np.linalg.solve(jacobian, -r)
            except np.linalg.LinAlgError:
                break
            for _ in range(30):
                trial = residual(x + step)
                if np.max(np.abs(trial)) < size:
                    x, r = x + step, trial
                    break
                step = step / 2
            else:
                break
        return x if np.all(np.abs(r) < 1e-9) else None

    def quantiles(self, probs: tuple[float, ...] = (0.025, 0.5, 0.975)) -> np.ndarray:
        """Quantiles at ``probs``."""
        return self.ppf(np.asarray(probs, dtype=float))

    def summary(self, prob: float = PROB) -> dict[str, float]:
        """``{median, mean, sd, ci_low, ci_high, hdi_low, hdi_high}``."""
        lo, median, hi = self.ppf(np.array([(1 - prob) / 2, 0.5, (1 + prob) / 2]))
        hdi = self.hdi(prob)
        return {
            "median": float(median),
            "mean": self.mean,
            "sd": self.sd,
            "ci_low": float(lo),
            "ci_high": float(hi),
            "hdi_low": hdi[0],
            "hdi_high": hdi[1],
        }

    def map(
        self,
        forward: Callable[[np.ndarray], np.ndarray],
        inverse: Callable[[np.ndarray], np.ndarray],
        inverse_slope: Callable[[np.ndarray], np.ndarray],
        increasing: bool = True,
        support: tuple[float, float] = (-math.inf, math.inf),
    ) -> Transformed:
        """Return the marginal of ``forward(X)`` for a monotone ``forward``.

        Parameters
        ----------
        forward, inverse : callable
            The map and its inverse (vectorised).
        inverse_slope : callable
            Derivative of ``inverse`` (for the density on the new scale).
        increasing : bool
            Whether ``forward`` increases.
        support : tuple of float
            Support on the new scale.
        """
        return Transformed(self, forward, inverse, inverse_slope, increasing, support)

    def __repr__(self) -> str:
        s = self.summary()
        return (
            f"{type(self).__name__}(median {s['median']:.4g}, 95% CI [{s['ci_low']:.4g}, "
            f"{s['ci_high']:.4g}], mean {s['mean']:.4g}, sd {s['sd']:.4g})"
        )


@dataclass(frozen=True, repr=False)
class NormalMixture(Marginal):
    """``sum_j weight_j N(mean_j, sd_j^2)``: normal given tau, mixed over tau's grid.

    Attributes
    ----------
    weight, mean_, sd_ : ndarray, shape (node,)
        Mixture weights (summing to 1), the normal means and standard deviations per node.
    """

    weight: np.ndarray
    mean_: np.ndarray
    sd_: np.ndarray

    def _z(self, x: np.ndarray | float) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        return (x[..., None] - self.mean_) / self.sd_

    def cdf(self, x: np.ndarray | float) -> np.ndarray:  # noqa: D102
        return np.asarray(special.ndtr(self._z(x)) @ self.weight)

    def sf(self, x: np.ndarray | float) -> np.ndarray:  # noqa: D102
        return np.asarray(special.ndtr(-self._z(x)) @ self.weight)

    def pdf(self, x: np.ndarray | float) -> np.ndarray:  # noqa: D102
        z = self._z(x)
        return np.asarray((np.exp(-0.5 * z**2) / (math.sqrt(2 * math.pi) * self.sd_)) @ self.weight)

    def expect(self, function: Callable[[np.ndarray], np.ndarray]) -> float:  # noqa: D102
        x, w = _hermite_nodes(60)
        values = function(self.mean_[:, None] + self.sd_[:, None] * x)
        return float(self.weight @ (values @ w))

    @property
    def mean(self) -> float:  # noqa: D102
        return float(self.weight @ self.mean_)

    @property
    def sd(self) -> float:  # noqa: D102
        second = float(self.weight @ (self.sd_**2 + self.mean_**2))
        return math.sqrt(max(second - self.mean**2, 0.0))

    def bounds(self) -> tuple[float, float]:  # noqa: D102
        keep = self.weight > 1e-300
        return (
            float(np.min((self.mean_ - 40 * self.sd_)[keep])),
            float(np.max((self.mean_ + 40 * self.sd_)[keep])),
        )


def _hermite(xs: np.ndarray, F: np.ndarray, f: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Cubic Hermite interpolant of ``F`` (slopes ``f``) at the nodes ``xs``, read at ``x``."""
    k = np.clip(np.searchsorted(xs, x, side="right") - 1, 0, len(xs) - 2)
    h = xs[k + 1] - xs[k]
    t = np.clip((x - xs[k]) / h, 0.0, 1.0)
    t2, t3 = t * t, t * t * t
    return np.asarray((2 * t3 - 3 * t2 + 1) * F[k] + (t3 - 2 * t2 + t) * h * f[k]
                      + (-2 * t3 + 3 * t2) * F[k + 1] + (t3 - t2) * h * f[k + 1])


def cumulative_integral(
    values: np.ndarray, step: np.ndarray | float, even_start: bool = False
) -> np.ndarray:
    """Cumulative integral along the last axis of values on a uniform grid (4th order).

    Each panel integrates the cubic through its four neighbouring values (``(-f[i-1] +
    13 f[i] + 13 f[i+1] - f[i+2]) h / 24``); beyond the ends the values count as 0, right
    for densities whose tails the grid covers, except before the start of an even function
    (``even_start``: tau's density in v), which is mirrored.
    """
    before = values[..., 1:2] if even_start else np.zeros((*values.shape[:-1], 1))
    padded = np.concatenate(
        [before, values, np.zeros((*values.shape[:-1], 1))], axis=-1
    )
    panels = (
        -padded[..., :-3] + 13 * padded[..., 1:-2] + 13 * padded[..., 2:-1] - padded[..., 3:]
    ) / 24.0
    out = np.zeros_like(values)
    out[..., 1:] = np.cumsum(panels, axis=-1) * np.asarray(step)[..., None]
    return out


@dataclass(frozen=True, repr=False)
class GridMixture(Marginal):
    """``sum_j weight_j F_j``, each ``F_j`` tabulated on its own uniform grid.

    Node ``j``'s grid is ``w = start_j + step_j * k`` (k = 0..n-1) in the variable
    ``w = asinh(x / warp)`` when ``warp`` is set (tau: fine near 0, logarithmic far out), or
    ``w = x``. ``density`` holds each node's density in ``w`` (normalised) and ``cdf_`` its
    integral (:func:`cumulative_integral`); between grid points the distribution function is
    the cubic Hermite interpolant of ``cdf_`` with slope ``density``. With ``even_start``
    each density is an even function around the grid's start, where the support begins
    (tau's density in v at v = 0): its first point has half a trapezoid weight.
    """

    weight: np.ndarray
    start: np.ndarray
    step: np.ndarray
    density: np.ndarray
    cdf_: np.ndarray
    warp: float | None = None
    support: tuple[float, float] = (-math.inf, math.inf)
    even_start: bool = False

    @classmethod
    def from_density(
        cls,
        weight: np.ndarray,
        start: np.ndarray,
        step: np.ndarray,
        density: np.ndarray,
        warp: float | None = None,
        support: tuple[float, float] = (-math.inf, math.inf),
        even_start: bool = False,
    ) -> GridMixture:
        """Build from unnormalised densities on the grids (rows normalised here).

        Nodes whose density vanishes everywhere (or whose weight is 0) are dropped.
        """
        step = np.asarray(step, dtype=float)
        density = np.asarray(density, dtype=float)
        # The trapezoid rule: the tails are negligible at the ends (but for an even start).
        total = (density.sum(axis=1) - (0.5 * density[:, 0] if even_start else 0.0)) * step
        keep = (np.asarray(weight) > 0) & (total > 0) & np.isfinite(total)
        density = density[keep] / total[keep, None]
        cdf = cumulative_integral(density, step[keep], even_start)
        cdf /= np.maximum(cdf[:, -1:], 1e-300)
        w = np.asarray(weight, dtype=float)[keep]
        return cls(w / w.sum(), np.asarray(start, float)[keep], step[keep], density, cdf, warp,
                   support, even_start)

    def _to_w(self, x: np.ndarray) -> np.ndarray:
        return x if self.warp is None else np.arcsinh(x / self.warp)

    def _to_x(self, w: np.ndarray) -> np.ndarray:
        return w if self.warp is None else self.warp * np.sinh(w)

    def _locate(self, x: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cell index, position in the cell (0..1), and whether x is past the grid's end."""
        w = self._to_w(np.asarray(x, dtype=float))[..., None]
        n = self.density.shape[1]
        pos = (w - self.start) / self.step
        k = np.clip(np.floor(pos), 0, n - 2).astype(np.int64)
        t = np.clip(pos - k, 0.0, 1.0)
        return k, t, pos >= n - 1

    def _gather(self, table: np.ndarray, k: np.ndarray) -> np.ndarray:
        """``table[node, k[..., node]]``, read from the flat table (no index arrays built)."""
        return np.take(table, k + table.shape[1] * np.arange(table.shape[0]))

    def cdf(self, x: np.ndarray | float) -> np.ndarray:  # noqa: D102
        k, t, past = self._locate(x)
        F0, F1 = self._gather(self.cdf_, k), self._gather(self.cdf_, k + 1)
        f0, f1 = self._gather(self.density, k), self._gather(self.density, k + 1)
        h = self.step
        t2, t3 = t * t, t * t * t
        value = (
            (2 * t3 - 3 * t2 + 1) * F0
            + (t3 - 2 * t2 + t) * h * f0
            + (-2 * t3 + 3 * t2) * F1
            + (t3 - t2) * h * f1
        )
        value = np.where(past, 1.0, np.clip(value, 0.0, 1.0))
        return np.asarray(value @ self.weight)

    def pdf(self, x: np.ndarray | float) -> np.ndarray:  # noqa: D102
        x = np.asarray(x, dtype=float)
        k, t, past = self._locate(x)
        F0, F1 = self._gather(self.cdf_, k), self._gather(self.cdf_, k + 1)
        f0, f1 = self._gather(self.density, k), self._gather(self.density, k + 1)
        h = self.step
        t2 = t * t
        slope = (
            (6 * t2 - 6 * t) * F0 / h
            + (3 * t2 - 4 * t + 1) * f0
            + (-6 * t2 + 6 * t) * F1 / h
            + (3 * t2 - 2 * t) * f1
        )
        w = self._to_w(x)[..., None]
        outside = past | (w < self.start)
        density_w = np.where(outside, 0.0, np.maximum(slope, 0.0)) @ self.weight
        if self.warp is None:
            return np.asarray(density_w)
        return np.asarray(density_w / np.sqrt(x**2 + self.warp**2))

    def expect(self, function: Callable[[np.ndarray], np.ndarray]) -> float:  # noqa: D102
        n = self.density.shape[1]
        w = self.start[:, None] + self.step[:, None] * np.arange(n)
        terms = function(self._to_x(w)) * self.density
        total = terms.sum(axis=1) - (0.5 * terms[:, 0] if self.even_start else 0.0)
        return float(self.weight @ (total * self.step))

    def bounds(self) -> tuple[float, float]:  # noqa: D102
        n = self.density.shape[1]
        lo = self._to_x(self.start)
        hi = self._to_x(self.start + self.step * (n - 1))
        return float(lo.min()), float(hi.max())


@dataclass(frozen=True, repr=False)
class Transformed(Marginal):
    """The marginal of ``forward(X)`` for a monotone ``forward`` (see :meth:`Marginal.map`)."""

    base: Marginal
    forward: Callable[[np.ndarray], np.ndarray]
    inverse: Callable[[np.ndarray], np.ndarray]
    inverse_slope: Callable[[np.ndarray], np.ndarray]
    increasing: bool = True
    support: tuple[float, float] = (-math.inf, math.inf)

    def _inside(self, y: np.ndarray) -> np.ndarray:
        return (y > self.support[0]) & (y < self.support[1])

    def _x(self, y: np.ndarray) -> np.ndarray:
        inside = self._inside(y)
        safe = np.where(inside, y, 0.5 * sum(self._finite_bounds()))
        return np.asarray(self.inverse(safe))

    def _finite_bounds(self) -> tuple[float, float]:
        lo, hi = self.bounds()
        return lo, hi

    def cdf(self, y: np.ndarray | float) -> np.ndarray:  # noqa: D102
        y = np.asarray(y, dtype=float)
        x = self._x(y)
        inner = self.base.cdf(x) if self.increasing else self.base.sf(x)
        return np.where(y <= self.support[0], 0.0, np.where(y >= self.support[1], 1.0, inner))

    def sf(self, y: np.ndarray | float) -> np.ndarray:  # noqa: D102
        y = np.asarray(y, dtype=float)
        x = self._x(y)
        inner = self.base.sf(x) if self.increasing else self.base.cdf(x)
        return np.where(y <= self.support[0], 1.0, np.where(y >= self.support[1], 0.0, inner))

    def pdf(self, y: np.ndarray | float) -> np.ndarray:  # noqa: D102
        y = np.asarray(y, dtype=float)
        x = self._x(y)
        value = self.base.pdf(x) * np.abs(self.inverse_slope(np.where(self._inside(y), y, 1.0)))
        return np.where(self._inside(y), value, 0.0)

    def table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return the base's quantile table mapped forward (see :meth:`Marginal.table`)."""
        memo = self.__dict__.get("_table_memo")
        if memo is None:
            x, F, _ = self.base.table()
            with np.errstate(over="ignore"):
                y = np.asarray(self.forward(x), dtype=float)
            if not self.increasing:
                y, F = y[::-1], 1.0 - F[::-1]
            memo = (y, F, np.asarray(self.pdf(y), dtype=float))
            object.__setattr__(self, "_table_memo", memo)  # a memo, as the base's
        return memo  # type: ignore[no-any-return]

    def ppf(self, q: np.ndarray | float) -> np.ndarray:  # noqa: D102
        q = np.asarray(q, dtype=float)
        x = self.base.ppf(q if self.increasing else 1.0 - q)
        with np.errstate(over="ignore"):
            return np.asarray(self.forward(x))

    def expect(self, function: Callable[[np.ndarray], np.ndarray]) -> float:  # noqa: D102
        return self.base.expect(lambda x: function(self.forward(x)))

    def bounds(self) -> tuple[float, float]:  # noqa: D102
        lo, hi = (self.forward(np.asarray(b)) for b in self.base.bounds())
        return (float(lo), float(hi)) if self.increasing else (float(hi), float(lo))
