"""The coefficients' posterior given each node of the tau grid, on grids of their own.

Given tau_j, ``phi = (d..., beta...)`` has posterior density proportional to
``prior(phi) * prod_k l_k(phi, tau_j)`` (trial likelihoods, :mod:`rebayes.bayes.exact.trials`).
Each node gets a frame from a normal approximation, ``phi = m_j + C_j u`` (``C_j`` a
Cholesky factor), and ``u`` runs over a uniform grid of step h in the ball of radius R: the
trapezoid rule in standardised units, exponentially accurate for smooth, quickly decaying
integrands.

The marginal of a combination ``c @ phi`` comes from the same ball turned so that its first
axis points along ``c`` (a Householder reflection of the frame): summing over the other axes
gives the marginal's density at the first axis's nodes, with no interpolation in p
dimensions. Most trials' rows share one coefficient vector ``a_k`` (one row, or strata with the
same covariates): their likelihood depends on ``phi`` through ``eta = a_k @ phi`` only, and is
tabulated once per node along eta (:class:`Slices` ``.trial_table``) and read back as a cubic
Hermite interpolant; a trial whose strata differ in their covariates is integrated at every
grid point.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cache

import numpy as np

from rebayes.bayes.exact.problem import ExactProblem
from rebayes.bayes.exact.settings import ExactSettings
from rebayes.bayes.exact.trials import TrialLikelihoods

__all__ = ["Slices", "ball_grid", "householder"]


@cache
def ball_grid(p: int, step: float, radius: float) -> tuple[np.ndarray, np.ndarray, int]:
    """Uniform grid points of step ``step`` within the ball of radius ``radius`` in p dims.

    Returns
    -------
    points : ndarray, shape (n, p)
    first : ndarray of int, shape (n,)
        Index of each point's first coordinate on the 1-D axis.
    size : int
        Points on the 1-D axis (odd; the axis is symmetric around 0).
    """
    half = int(round(radius / step))
    axis = step * np.arange(-half, half + 1)
    mesh = np.stack(np.meshgrid(*([axis] * p), indexing="ij"), axis=-1).reshape(-1, p)
    index = np.stack(np.meshgrid(*([np.arange(axis.size)] * p), indexing="ij"), axis=-1)
    index = index.reshape(-1, p)
    inside = (mesh**2).sum(axis=1) <= (step * half) ** 2 + 1e-9 if p > 1 else np.ones(len(mesh),
                                                                                       bool)
    return mesh[inside], index[inside, 0], axis.size


def householder(w: np.ndarray) -> np.ndarray:
    """Orthogonal matrices whose first columns are the unit vectors ``w`` (shape (..., p))."""
    p = w.shape[-1]
    e1 = np.zeros(p)
    e1[0] = 1.0
    v = w - e1
    norm2 = (v**2).sum(axis=-1, keepdims=True)
    safe = norm2 > 1e-24
    v = np.where(safe, v, 0.0) / np.sqrt(np.where(safe, norm2, 1.0))
    return np.asarray(np.eye(p) - 2.0 * v[..., :, None] * v[..., None, :])


def _hermite(start: np.ndarray, step: np.ndarray, value: np.ndarray, slope: np.ndarray,
             x: np.ndarray) -> np.ndarray:
    """Interpolate tables (value, slope) on uniform grids ``start + step * i``.

    Cubic Hermite along the last axis; beyond the ends the end's tangent (for concave
    tables).
    """
    n = value.shape[-1]
    pos = (x - start[..., None]) / step[..., None]
    k = np.clip(np.floor(pos), 0, n - 2).astype(np.int64)
    t = pos - k
    G0 = np.take_along_axis(value, k, axis=-1)
    G1 = np.take_along_axis(value, k + 1, axis=-1)
    D0 = np.take_along_axis(slope, k, axis=-1) * step[..., None]
    D1 = np.take_along_axis(slope, k + 1, axis=-1) * step[..., None]
    tc = np.clip(t, 0.0, 1.0)
    t2, t3 = tc * tc, tc * tc * tc
    out = (2 * t3 - 3 * t2 + 1) * G0 + (t3 - 2 * t2 + tc) * D0 + (-2 * t3 + 3 * t2) * G1 \
        + (t3 - t2) * D1
    below, above = t < 0, t > 1
    out = np.where(below, G0 + D0 * t, out)
    return np.where(above, G1 + D1 * (t - 1), out)


@dataclass(frozen=True, eq=False)
class Slices:
    """The conditional posteriors of ``phi`` at the tau nodes, each in its own frame.

    Attributes
    ----------
    problem : ExactProblem
    trials : TrialLikelihoods
    settings : ExactSettings
    tau : ndarray, shape (node,)
    mean : ndarray, shape (node, p)
        Centre of each node's frame.
    chol : ndarray, shape (node, p, p)
        Lower Cholesky factor of each node's frame (the covariance of a normal approximation).
    """

    problem: ExactProblem
    trials: TrialLikelihoods
    settings: ExactSettings
    tau: np.ndarray
    mean: np.ndarray
    chol: np.ndarray
    _tables: dict[str, np.ndarray] = field(init=False, repr=False)
    # Likelihoods at the frames' grid points, shared with the copies of :meth:`with_problem`.
    _kept: dict[str, np.ndarray] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        A, study = self.problem.A, self.problem.study
        multi = list(self.problem.mixed_trials())
        single = [k for k in range(self.problem.n_studies) if k not in multi]
        coefs = [A[np.flatnonzero(study == k)[0]] for k in single]
        tables: dict[str, np.ndarray] = {
            "single": np.asarray(single, dtype=np.int64),
            "coef": np.asarray(coefs, dtype=float).reshape(len(single), self.problem.p),
            "multi_rows": np.flatnonzero(np.isin(study, multi)),
        }
        object.__setattr__(self, "_tables", tables)
        object.__setattr__(self, "_kept", {})
        if single:
            self._tabulate()

    _PER_NODE = ("start", "step", "value", "slope")

    @classmethod
    def join(cls, parts: list[Slices], pick: list[tuple[int, int]]) -> Slices:
        """Slices made of nodes of others: ``pick`` lists (part, node) pairs in order."""
        first = parts[0]
        out = object.__new__(cls)
        fields_ = {
            "tau": np.array([parts[i].tau[j] for i, j in pick]),
            "mean": np.array([parts[i].mean[j] for i, j in pick]),
            "chol": np.array([parts[i].chol[j] for i, j in pick]),
        }
        for name in ("problem", "trials", "settings"):
            object.__setattr__(out, name, getattr(first, name))
        for name, value in fields_.items():
            object.__setattr__(out, name, value)
        tables = {k: v for k, v in first._tables.items() if k not in cls._PER_NODE}
        if len(tables["single"]):
            for k in cls._PER_NODE:
                tables[k] = np.array([parts[i]._tables[k][j] for i, j in pick])
        object.__setattr__(out, "_tables", tables)
        object.__setattr__(out, "_kept", {})
        return out

    def with_problem(self, problem: ExactProblem) -> Slices:
        """Return the same nodes, frames and trial tables under ``problem``'s priors.

        ``problem`` must hold the same data as this one's (rows, trials, coefficients and
        baseline prior): the tables are its likelihoods, which no other prior changes.
        """
        out = object.__new__(type(self))
        for name in ("trials", "settings", "tau", "mean", "chol", "_tables", "_kept"):
            object.__setattr__(out, name, getattr(self, name))
        object.__setattr__(out, "problem", problem)
        return out

    @property
    def step(self) -> float:
        """The grids' step in standardised units."""
        return self.settings.inner_step if self.problem.p == 1 else self.settings.ball_step

    @property
    def radius(self) -> float:
        """The grids' radius in standardised units (a whole number of steps)."""
        return self.step * int(round(self.settings.inner_radius / self.step))

    @property
    def n_nodes(self) -> int:
        """Number of tau nodes."""
        return len(self.tau)

    def _tabulate(self) -> None:
        """Tabulate each single-coefficient trial's likelihood along eta at every node."""
        t = self._tables
        a = t["coef"]  # (trial, p)
        centre = self.mean @ a.T  # (node, trial)
        spread = np.linalg.norm(np.einsum("jpq,kp->jkq", self.chol, a), axis=-1)  # |C' a|
        p = self.problem.p
        size = ball_grid(1, self.step, self.radius)[2] if p == 1 \
            else self.settings.eta_points
        half = self.radius * spread
        start = centre - half
        step = 2 * half / (size - 1)
        eta = start[..., None] + step[..., None] * np.arange(size)  # (node, trial, point)
        trial_rows = [np.flatnonzero(self.problem.study == k) for k in t["single"]]
        row_index = np.concatenate(trial_rows)
        owner = np.concatenate([np.full(len(r), i) for i, r in enumerate(trial_rows)])
        values = eta[:, owner, :].transpose(1, 0, 2).reshape(len(row_index), -1)
        tau = np.repeat(self.tau, size)
        found, log_l, slope = self.trials.log_likelihood(row_index, values, tau)
        order = np.searchsorted(found, t["single"]) if len(found) else np.array([], int)
        assert (found[order] == t["single"]).all()
        shape = (len(found), self.n_nodes, size)
        t["start"], t["step"] = start, step
        t["value"] = log_l[order].reshape(shape).transpose(1, 0, 2)
        t["slope"] = slope[order].reshape(shape).transpose(1, 0, 2)

    def trial_log_likelihood(self, trial: int, eta: np.ndarray) -> np.ndarray:
        """Return a single-coefficient trial's log likelihood at ``eta`` (shape (node, m))."""
        t = self._tables
        i = int(np.searchsorted(t["single"], trial))
        if i >= len(t["single"]) or t["single"][i] != trial:
            raise KeyError(f"trial {trial} has strata with different covariates")
        return _hermite(t["start"][:, i], t["step"][:, i], t["value"][:, i], t["slope"][:, i],
                        eta)

    def is_single(self, trial: int) -> bool:
        """Whether the trial's rows share one coefficient vector (its table exists)."""
        return bool(np.isin(trial, self._tables["single"]))

    def log_density(self, phi: np.ndarray, nodes: np.ndarray | None = None) -> np.ndarray:
        """Unnormalised log posterior density of ``phi`` given each tau node.

        Parameters
        ----------
        phi : ndarray, shape (node, point, p)
            Coefficient vectors at each tau node (``nodes`` selects which tau nodes the first
            axis stands for; default all).
        """
        return self._plus_likelihood(self.problem.log_prior(phi), phi, nodes)

    def log_likelihood(self, phi: np.ndarray, nodes: np.ndarray | None = None) -> np.ndarray:
        """``sum_k log l_k(phi, tau)``: :meth:`log_density` without the prior."""
        return self._plus_likelihood(np.zeros(phi.shape[:2]), phi, nodes)

    def _plus_likelihood(self, out: np.ndarray, phi: np.ndarray, nodes: np.ndarray | None
                         ) -> np.ndarray:
        nodes = np.arange(self.n_nodes) if nodes is None else np.asarray(nodes)
        t = self._tables
        if len(t["single"]):
            eta = np.einsum("jnp,kp->jkn", phi, t["coef"])  # (node, trial, point)
            out = out + _hermite(t["start"][nodes], t["step"][nodes], t["value"][nodes],
                                 t["slope"][nodes], eta).sum(axis=1)
        rows = t["multi_rows"]
        if len(rows):
            eta = np.einsum("jnp,rp->rjn", phi, self.problem.A[rows])
            tau = np.broadcast_to(self.tau[nodes][:, None], phi.shape[:2]).ravel()
            _, log_l, _ = self.trials.log_likelihood(rows, eta.reshape(len(rows), -1), tau)
            out = out + log_l.sum(axis=0).reshape(phi.shape[:2])
        return np.asarray(out)

    def ball(self) -> tuple[np.ndarray, np.ndarray]:
        """Each node's grid points ``phi = mean + chol @ u`` and the likelihood there.

        Returns ``phi`` (node, point, p) and :meth:`log_likelihood` at it (node, point),
        computed once and shared by the copies under other priors (:meth:`with_problem`).
        """
        if "ball" not in self._kept:
            points, _, _ = ball_grid(self.problem.p, self.step, self.radius)
            phi = self.mean[:, None, :] + np.einsum("jpq,nq->jnp", self.chol, points)
            self._kept["phi"], self._kept["ball"] = phi, self.log_likelihood(phi)
        return self._kept["phi"], self._kept["ball"]

    def ball_log_density(self, nodes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the given nodes' grid points and :meth:`log_density` there (:meth:`ball`)."""
        phi, likelihood = self.ball()
        return phi[nodes], self.problem.log_prior(phi[nodes]) + likelihood[nodes]

    def axis_frame(self, c: np.ndarray, nodes: np.ndarray | None = None
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each node's frame turned so that its first axis runs along ``c @ phi``.

        Returns
        -------
        centre, scale : ndarray, shape (node,)
            ``c @ phi = centre + scale * u_1``.
        basis : ndarray, shape (node, p, p)
            ``phi = mean + basis @ u``.
        """
        nodes = np.arange(self.n_nodes) if nodes is None else np.asarray(nodes)
        chol = self.chol[nodes]
        ctc = np.einsum("jpq,p->jq", chol, c)  # C' c
        scale = np.linalg.norm(ctc, axis=-1)
        basis = np.einsum("jpq,jqr->jpr", chol, householder(ctc / scale[:, None]))
        return self.mean[nodes] @ c, scale, basis

    def axis_log_density(self, c: np.ndarray, nodes: np.ndarray | None = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Log density of ``c @ phi`` at the 1-D grid nodes of each tau node.

        Returns
        -------
        centre, scale : ndarray, shape (node,)
        log_density : ndarray, shape (node, axis)
            Unnormalised: ``log`` of the sum over the other axes (times the step^(p-1)).
        log_evidence : ndarray, shape (node,)
            ``log int prior(phi) prod_k l_k dphi`` by the trapezoid rule.
        """
        p = self.problem.p
        h = self.step
        points, first, size = ball_grid(p, h, self.radius)
        nodes = np.arange(self.n_nodes) if nodes is None else np.asarray(nodes)
        centre, scale, basis = self.axis_frame(c, nodes)
        if p == 1 and c[0] > 0:  # the frame's own grid: its likelihood is kept
            phi, log_d = self.ball_log_density(nodes)
        else:
            phi = self.mean[nodes][:, None, :] + np.einsum("jpq,nq->jnp", basis, points)
            log_d = self.log_density(phi, nodes)
        peak = np.max(log_d, axis=1, keepdims=True)
        mass = np.exp(log_d - peak)
        indicator = np.zeros((len(points), size))
        indicator[np.arange(len(points)), first] = 1.0
        with np.errstate(divide="ignore"):
            axis = np.log(mass @ indicator) + peak + (p - 1) * math.log(h)
        log_det = np.log(np.abs(np.linalg.det(basis)))
        evidence = peak[:, 0] + np.log(mass.sum(axis=1)) + p * math.log(h) + log_det
        return centre, scale, axis, evidence

    def edge_share(self, log_density: np.ndarray) -> np.ndarray:
        """Largest density at a grid's outermost axis nodes relative to its peak (log)."""
        return np.asarray(np.maximum(log_density[:, 0], log_density[:, -1])
                          - np.max(log_density, axis=1))

    def plane_log_density(self, a: np.ndarray, b: np.ndarray, nodes: np.ndarray | None = None
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Joint log density of ``(b @ phi, a @ phi)`` on a square grid at each tau node.

        Each node's frame is turned so that its first axis ``u_1`` runs along ``b @ phi`` and
        its first two axes span ``a @ phi`` too: ``b @ phi = lines[:, 0] + lines[:, 1] u_1``
        and ``a @ phi = lines[:, 2] + lines[:, 3] u_1 + lines[:, 4] u_2`` with
        ``lines[:, 4] > 0``, so that at a fixed ``b @ phi``, ``a @ phi`` increases with
        ``u_2``. The other axes are summed over on a full cube of the grid's step and radius
        (the ball of :meth:`axis_log_density` would leave the square's corners empty).

        Returns
        -------
        axis : ndarray, shape (point,)
            The square's nodes on either axis (standardised units).
        lines : ndarray, shape (node, 5)
        log_density : ndarray, shape (node, point, point)
            Unnormalised, indexed ``[node, u_1, u_2]``.
        """
        p = self.problem.p
        if p < 2:
            raise ValueError("a plane of two combinations needs two or more coefficients")
        nodes = np.arange(self.n_nodes) if nodes is None else np.asarray(nodes)
        h = self.step
        half = int(round(self.radius / h))
        axis = h * np.arange(-half, half + 1)
        n = axis.size
        chol = self.chol[nodes]
        ctb = np.einsum("jpq,p->jq", chol, b)  # C' b
        cta = np.einsum("jpq,p->jq", chol, a)
        stack = np.concatenate([ctb[..., None], cta[..., None],
                                np.broadcast_to(np.eye(p), (len(nodes), p, p))], axis=2)
        frame = np.linalg.qr(stack)[0][..., :p]  # orthonormal; columns 0, 1 span C'b, C'a
        frame[..., 0] *= np.sign(np.einsum("jp,jp->j", frame[..., 0], ctb))[:, None]
        frame[..., 1] *= np.sign(np.einsum("jp,jp->j", frame[..., 1], cta))[:, None]
        basis = np.einsum("jpq,jqr->jpr", chol, frame)
        mean = self.mean[nodes]
        lines = np.stack([mean @ b, np.einsum("jp,jp->j", frame[..., 0], ctb), mean @ a,
                          np.einsum("jp,jp->j", frame[..., 0], cta),
                          np.einsum("jp,jp->j", frame[..., 1], cta)], axis=1)
        cube = np.stack(np.meshgrid(*([axis] * p), indexing="ij"), axis=-1).reshape(-1, p)
        out = np.empty((len(nodes), n, n))
        for j in range(len(nodes)):  # one node at a time: a cube of 3 axes is 6,859 points
            phi = mean[j] + cube @ basis[j].T
            log_d = self.log_density(phi[None], nodes[j:j + 1])[0].reshape(n, n, -1)
            peak = log_d.max()
            with np.errstate(divide="ignore"):
                out[j] = np.log(np.exp(log_d - peak).sum(axis=2)) + peak
        return axis, lines, out + (p - 2) * math.log(h)
