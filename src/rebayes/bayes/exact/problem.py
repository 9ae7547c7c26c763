"""The model's arrays as the exact engine reads them, from a design and a prior set.

The model is the one of :mod:`rebayes.bayes.model`: for row s,
``theta[s] = phi @ A[s] + tau * z[study(s)]`` with ``phi = (d[group]..., beta...)``,
``A[s] = (one-hot group(s), X[s])``, ``z ~ N(0, 1)`` per trial; the binomial likelihood with the
arms at ``alpha[s] -+ theta[s] / 2`` and ``alpha[s] ~ prior.baseline`` per row, or the normal
likelihood ``y[s] ~ N(theta[s], v[s])``. Each ``d`` has the effect prior, with its location
turned towards benefit when fewer events are better (as :func:`rebayes.bayes.model.model_data`
does), each ``beta`` the covariate prior, tau the heterogeneity prior.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from rebayes.bayes.exact.densities import gaussian_surrogate, log_density
from rebayes.bayes.priors import Normal

if TYPE_CHECKING:
    from rebayes.bayes.design import Design
    from rebayes.bayes.priors import PriorSet

__all__ = ["ExactProblem", "problem_from_arrays", "problem_from_design"]


@dataclass(frozen=True, eq=False)
class ExactProblem:
    """One model's data and priors as arrays.

    Attributes
    ----------
    likelihood : {"binomial", "normal"}
    A : ndarray, shape (row, p)
        Each row's coefficients on ``phi``: the linear predictor is ``A @ phi``.
    study : ndarray of int, shape (row,)
        Each row's trial (its random effect).
    names : tuple of str
        Names of the entries of ``phi``: ``d``, or ``d[group]`` per group, then the
        covariates' names.
    priors : tuple
        The prior distribution of each entry of ``phi``.
    signs : ndarray, shape (p,)
        Each prior is evaluated at ``sign * phi`` (-1 turns an effect prior towards benefit
        when fewer events are better).
    tau_prior : distribution
    rows, studies : tuple of str
        Row and trial labels.
    events, n : ndarray of int, shape (row, 2), or None
        Binomial data, arms (control, treatment).
    baseline : Normal or None
        Prior of each row's alpha (binomial).
    y, v : ndarray, shape (row,), or None
        Normal data: estimates and their variances.
    """

    likelihood: str
    A: np.ndarray
    study: np.ndarray
    names: tuple[str, ...]
    priors: tuple[Any, ...]
    signs: np.ndarray
    tau_prior: Any
    rows: tuple[str, ...]
    studies: tuple[str, ...]
    events: np.ndarray | None = None
    n: np.ndarray | None = None
    baseline: Normal | None = None
    y: np.ndarray | None = None
    v: np.ndarray | None = None

    @property
    def p(self) -> int:
        """Number of coefficients (``d``'s and ``beta``'s)."""
        return int(self.A.shape[1])

    @property
    def n_studies(self) -> int:
        """Number of trials."""
        return len(self.studies)

    @property
    def conjugate(self) -> bool:
        """Whether every coefficient's prior is normal (normal-normal: analytic given tau)."""
        return all(isinstance(p, Normal) for p in self.priors)

    def mixed_trials(self) -> tuple[int, ...]:
        """Return the trials whose rows differ in their coefficients.

        Strata of different covariates or subgroups: such a trial's likelihood depends on more
        than one combination of ``phi``, and its shrunken effect is no single row's.
        """
        return tuple(k for k in range(self.n_studies)
                     if not np.allclose(self.A[self.study == k], self.A[self.study == k][:1]))

    def log_prior(self, phi: np.ndarray) -> np.ndarray:
        """Log prior density of coefficient vectors (last axis of ``phi``)."""
        out = np.zeros(phi.shape[:-1])
        for j, (prior, sign) in enumerate(zip(self.priors, self.signs, strict=True)):
            out = out + log_density(prior, sign * phi[..., j])
        return out

    def prior_normal(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and sd of each coefficient's normal prior (or normal stand-in)."""
        moments = [gaussian_surrogate(p)[:2] for p in self.priors]
        mean = np.array([m for m, _ in moments]) * self.signs
        sd = np.array([s for _, s in moments])
        return mean, sd


def problem_from_design(design: Design, prior: PriorSet) -> ExactProblem:
    """Return the arrays of ``design`` under ``prior``.

    ``prior`` is on the model's scale, as :func:`rebayes.bayes.model.build_model` gets it
    (see :func:`rebayes.bayes.design.prior_on_model_scale`).
    """
    n_rows = design.n_rows
    if design.separate:
        groups = np.zeros((n_rows, len(design.groups)))
        groups[np.arange(n_rows), design.group_index] = 1.0
        names = [f"d[{g}]" for g in design.groups]
    else:
        groups = np.ones((n_rows, 1))
        names = ["d"]
    A = np.column_stack([groups, np.asarray(design.X, dtype=float).reshape(n_rows, -1)])
    towards_benefit = 1.0 if design.schema.higher_is_better else -1.0
    n_d = groups.shape[1]
    priors = (prior.effect,) * n_d + (prior.covariate,) * len(design.coefs)
    signs = np.array([towards_benefit] * n_d + [1.0] * len(design.coefs))
    common: dict[str, Any] = {
        "likelihood": design.likelihood,
        "A": A,
        "study": np.asarray(design.study_index, dtype=np.int64),
        "names": (*names, *design.coefs),
        "priors": priors,
        "signs": signs,
        "tau_prior": prior.tau,
        "rows": tuple(design.rows),
        "studies": tuple(design.studies),
    }
    if design.likelihood == "binomial":
        return ExactProblem(
            **common,
            events=np.asarray(design.events, dtype=np.int64),
            n=np.asarray(design.n, dtype=np.int64),
            baseline=prior.baseline,
        )
    assert design.yi is not None and design.vi is not None
    return ExactProblem(**common, y=np.asarray(design.yi, float), v=np.asarray(design.vi, float))


def problem_from_arrays(
    *,
    effect: Any,
    tau: Any,
    y: np.ndarray | None = None,
    v: np.ndarray | None = None,
    events: np.ndarray | None = None,
    n: np.ndarray | None = None,
    baseline: Normal | None = None,
    X: np.ndarray | None = None,
    covariate: Any = None,
    study: np.ndarray | None = None,
    labels: tuple[str, ...] | None = None,
) -> ExactProblem:
    """Build a problem from plain arrays (one ``d``; optional covariate columns ``X``).

    Give ``y`` and ``v`` (normal likelihood: estimates and variances, as bayesmeta's ``y``
    and ``sigma**2``) or ``events`` and ``n`` (binomial: arrays of shape (row, 2), control
    arm first). ``study`` groups rows into trials (default: one trial per row).
    """
    normal = y is not None
    size = len(y) if y is not None else len(np.asarray(events))
    X = np.zeros((size, 0)) if X is None else np.asarray(X, dtype=float).reshape(size, -1)
    study = np.arange(size) if study is None else np.asarray(study, dtype=np.int64)
    labels = labels or tuple(f"row {i + 1}" for i in range(size))
    n_studies = int(study.max()) + 1
    coefs = tuple(f"beta[{j}]" for j in range(X.shape[1]))
    return ExactProblem(
        likelihood="normal" if normal else "binomial",
        A=np.column_stack([np.ones(size), X]),
        study=study,
        names=("d", *coefs),
        priors=(effect,) + (covariate or Normal(0.0, 1.0),) * X.shape[1],
        signs=np.ones(1 + X.shape[1]),
        tau_prior=tau,
        rows=labels,
        studies=tuple(f"study {k + 1}" for k in range(n_studies)),
        events=None if normal else np.asarray(events, dtype=np.int64),
        n=None if normal else np.asarray(n, dtype=np.int64),
        baseline=None if normal else (baseline or Normal(0.0, 2.0)),
        y=None if not normal else np.asarray(y, dtype=float),
        v=None if not normal else np.asarray(v, dtype=float),
    )
