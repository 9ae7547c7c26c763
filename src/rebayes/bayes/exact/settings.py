"""The exact engine's knobs, and what it says when a model is beyond its reach."""

from __future__ import annotations

from dataclasses import dataclass, replace

from rebayes.errors import RebayesError

__all__ = ["BeyondReach", "ExactSettings"]


class BeyondReach(RebayesError):
    """The model has more coefficients than the grid engine integrates well: use NUTS."""


@dataclass(frozen=True)
class ExactSettings:
    """Quadrature sizes of the exact engine.

    The defaults give probabilities to about 1e-6 on the tables tested (tests/test_exact.py
    halves every step and doubles every rule and compares); :meth:`refined` is that check.

    Attributes
    ----------
    alpha_nodes : int
        Gauss-Hermite nodes for each row's baseline (binomial).
    table_step : float
        Step (in v) of each row's likelihood table (binomial).
    z_nodes : int
        Gauss-Hermite nodes for each trial's random effect.
    z_rough_nodes : int
        Gauss-Hermite nodes where a trial's likelihood is far from normal (a row of few
        events) and narrow against tau.
    z_sinh_step : float
        Step of the sinh rule that takes over where a trial's likelihood has no mode (no
        events in one arm, only events in the other) and tau is not 0.
    inner_step : float
        Step of the coefficients' grid (one coefficient), in standard deviations of its
        normal approximation.
    ball_step : float
        The same for two or more coefficients (a ball of grid points: a coarser step keeps
        its size down, and the trapezoid rule stays exponentially accurate).
    inner_radius : float
        Half-width of those grids, in the same units (a ball of this radius for p >= 2).
    eta_points : int
        Points of each trial's likelihood table along its expected effect (p >= 2).
    tau_steps_per_sd : float
        Steps of the tau grid per posterior sd of v = asinh(tau / c).
    max_coefficients : int
        Most coefficients (``d``'s and ``beta``'s) the grid integrates; more raise
        :class:`BeyondReach` (the normal-normal model with normal priors has no limit).
    """

    alpha_nodes: int = 24
    table_step: float = 0.05
    z_nodes: int = 8
    z_rough_nodes: int = 16
    z_sinh_step: float = 0.15
    inner_step: float = 0.6
    ball_step: float = 0.8
    inner_radius: float = 7.2
    eta_points: int = 65
    tau_steps_per_sd: float = 4.0
    max_coefficients: int = 3

    def refined(self) -> ExactSettings:
        """Every step halved and every rule doubled: the refinement check's settings."""
        return replace(
            self,
            alpha_nodes=2 * self.alpha_nodes,
            table_step=self.table_step / 2,
            z_nodes=2 * self.z_nodes,
            z_rough_nodes=2 * self.z_rough_nodes,
            z_sinh_step=self.z_sinh_step / 2,
            inner_step=self.inner_step / 2,
            ball_step=self.ball_step / 2,
            inner_radius=self.inner_radius + 1.2,
            eta_points=2 * self.eta_points - 1,
            tau_steps_per_sd=2 * self.tau_steps_per_sd,
        )
