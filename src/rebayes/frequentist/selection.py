"""The step-function selection model of Vevea & Hedges (1995), by maximum likelihood.

Studies are published with a probability that depends on their one-sided p value through a
step function: weight 1 for p <= steps[0] and a free weight delta_j for each further
interval (steps[j-1], steps[j]]. A study's observed estimate then has the weighted density

    f(y_i) = delta_j(i) phi(y_i; mu, v_i + tau^2) / A_i,   A_i = sum_j delta_j P_ij(mu, tau^2),

where P_ij is the probability that a study with variance v_i lands in interval j, a
difference of two normal CDFs (:func:`interval_probabilities`): the normaliser is closed
form for step weights, which also makes the Bayesian selection models' marginal likelihoods
cheap (:mod:`rebayes.bayes.robust`). Conventions are metafor's ``selmodel(type="stepfun")``
(3.8): one-sided p values ``alternative="greater"`` (large estimates significant) or
``"less"``, delta_1 = 1, the other deltas on (0, 100) through metafor's logistic map, tau^2 on
the log scale (0 below 1e-15), maximum likelihood with BFGS from the ML random-effects fit,
standard errors from the Hessian on the natural scale, and the likelihood-ratio test of
delta = 1 against that ML fit. An interval with a free weight and no study makes the weight
unidentifiable: metafor refuses such a model, and so does :func:`step_selection_model`.

References
----------
Vevea JL, Hedges LV. A general linear model for estimating effect size in the presence of
publication bias. Psychometrika 1995;60:419-35.
Hedges LV. Modeling publication selection effects in meta-analysis. Stat Sci 1992;7:246-55.
Viechtbauer W. metafor 3.8: ``selmodel``. https://wviechtb.github.io/metafor/reference/selmodel.html
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.special import chdtrc, ndtr, ndtri

from rebayes.errors import AnalysisError
from rebayes.frequentist.meta_regression import Z975, fit_meta_regression

__all__ = [
    "SelectionModel",
    "interval_index",
    "interval_probabilities",
    "one_sided_p",
    "step_selection_model",
]

Alternative = Literal["greater", "less"]
#: metafor's bounds of a step weight (delta.min, delta.max).
DELTA_MAX = 100.0


def _steps(steps: Sequence[float] | np.ndarray) -> np.ndarray:
    cut = np.unique(np.asarray(steps, dtype=float))
    if cut.size == 0 or np.any((cut <= 0) | (cut > 1)):
        raise AnalysisError(f"selection steps {list(steps)} must lie in (0, 1]")
    return cut if cut[-1] == 1 else np.append(cut, 1.0)


def one_sided_p(yi: np.ndarray, vi: np.ndarray, alternative: Alternative = "greater"
                ) -> np.ndarray:
    """One-sided p value of each study's own z test (``"greater"``: large estimates small p)."""
    z = np.asarray(yi, dtype=float) / np.sqrt(np.asarray(vi, dtype=float))
    return ndtr(-z) if alternative == "greater" else ndtr(z)


def interval_index(p: np.ndarray, steps: Sequence[float] | np.ndarray) -> np.ndarray:
    """Return the interval of each p value: the first j with p <= steps[j] (steps end at 1)."""
    cut = _steps(steps)
    return np.searchsorted(cut, np.asarray(p, dtype=float), side="left")


def interval_probabilities(mu: Any, tau2: Any, vi: np.ndarray,
                           steps: Sequence[float] | np.ndarray,
                           alternative: Alternative = "greater") -> np.ndarray:
    """P_ij: the probability that study i's p value lands in interval j, given mu and tau^2.

    Parameters
    ----------
    mu, tau2 : float or numpy.ndarray
        Mean and heterogeneity; arrays broadcast against each other (a batch of parameter
        values, e.g. a quadrature grid): shape ``S``.
    vi : numpy.ndarray
        Within-study variances (k).
    steps : sequence of float
        Cut points of the one-sided p values (1 is appended).
    alternative : {"greater", "less"}

    Returns
    -------
    numpy.ndarray
        Shape ``S + (k, J)``; each row sums to 1.
    """
    cut = _steps(steps)
    mu = np.asarray(mu, dtype=float)[..., None, None]
    sd = np.sqrt(np.asarray(tau2, dtype=float)[..., None, None] + vi[:, None])
    se = np.sqrt(vi)[:, None]
    if alternative == "greater":
        # p <= s  <=>  y >= se z_(1-s): probability 1 - Phi((se z_(1-s) - mu) / sd).
        bound = se * ndtri(1 - cut)[None, :]
        below = ndtr((mu - bound) / sd)
    else:
        bound = se * ndtri(cut)[None, :]
        below = ndtr((bound - mu) / sd)
    # below[..., j] = P(p <= steps[j]); differences give the intervals.
    first = below[..., :1]
    return np.concatenate([first, np.diff(below, axis=-1)], axis=-1)


@dataclass(frozen=True)
class SelectionModel:
    """A fitted step-function selection model.

    Attributes
    ----------
    steps : tuple of float
        Cut points of the one-sided p values (ending at 1).
    alternative : str
        Which tail a p value is computed in (the direction selection is assumed to favour).
    estimate, se, ci_low, ci_high : float
        Adjusted pooled effect (analysis scale), its Hessian standard error and Wald 95% CI.
    tau2 : float
        Adjusted heterogeneity (0 for a fixed-effect model).
    deltas, deltas_se : tuple of float
        Relative publication probability per interval (the first is 1 by definition).
    counts : tuple of int
        Studies per interval.
    lrt, lrt_df, lrt_p : float, int, float
        Likelihood-ratio test of no selection (every delta = 1).
    loglik, loglik0 : float
        Maximised log likelihood with and without selection.
    unadjusted : float
        The ML (or fixed-effect) estimate without selection.
    at_bound : bool
        Some delta sits at its bound (0 or 100): the data cannot pin it down, and the
        adjusted estimate is not to be trusted.
    k : int
    """

    steps: tuple[float, ...]
    alternative: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    tau2: float
    deltas: tuple[float, ...]
    deltas_se: tuple[float, ...]
    counts: tuple[int, ...]
    lrt: float
    lrt_df: int
    lrt_p: float
    loglik: float
    loglik0: float
    unadjusted: float
    at_bound: bool
    k: int

    def to_dict(self, ratio: bool = True) -> dict[str, Any]:
        """JSON fields (estimate and interval on the ratio scale by default)."""
        back = np.exp if ratio else (lambda x: x)
        return {
            "steps": list(self.steps),
            "alternative": self.alternative,
            "estimate": float(back(self.estimate)),
            "ci_low": float(back(self.ci_low)),
            "ci_high": float(back(self.ci_high)),
            "unadjusted": float(back(self.unadjusted)),
            "tau2": self.tau2,
            "deltas": list(self.deltas),
            "deltas_se": list(self.deltas_se),
            "counts": list(self.counts),
            "lrt": self.lrt,
            "lrt_df": self.lrt_df,
            "lrt_p": self.lrt_p,
            "at_bound": self.at_bound,
            "k": self.k,
        }


def _unpack(par: np.ndarray, fixed_tau: bool, transformed: bool
            ) -> tuple[float, float, np.ndarray]:
    mu = float(par[0])
    if fixed_tau:
        tau2, rest = 0.0, par[1:]
    else:
        tau2 = float(np.exp(par[1])) if transformed else float(par[1])
        tau2 = 0.0 if tau2 < 10 * np.finfo(float).eps else tau2
        rest = par[2:]
    if transformed:
        deltas = DELTA_MAX / (1 + np.exp(-rest))
    else:
        deltas = np.clip(rest, 0.0, DELTA_MAX)
    return mu, tau2, np.concatenate([[1.0], deltas])


def _loglik(mu: float, tau2: float, deltas: np.ndarray, yi: np.ndarray, vi: np.ndarray,
            group: np.ndarray, steps: np.ndarray, alternative: Alternative) -> float:
    sd = np.sqrt(vi + tau2)
    probs = interval_probabilities(mu, tau2, vi, steps, alternative)
    with np.errstate(divide="ignore"):
        log_norm = np.log(probs @ deltas)
        log_w = np.log(deltas[group])
    z = (yi - mu) / sd
    return float((log_w - 0.5 * z**2 - np.log(sd) - 0.5 * np.log(2 * np.pi) - log_norm).sum())


def _hessian(f: Any, x: np.ndarray) -> np.ndarray:
    """Central-difference Hessian (steps scaled to each coordinate)."""
    n = len(x)
    h = 1e-4 * np.maximum(np.abs(x), 1e-2)
    out = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            e_i, e_j = np.zeros(n), np.zeros(n)
            e_i[i], e_j[j] = h[i], h[j]
            value = (f(x + e_i + e_j) - f(x + e_i - e_j) - f(x - e_i + e_j)
                     + f(x - e_i - e_j)) / (4 * h[i] * h[j])
            out[i, j] = out[j, i] = value
    return out


def step_selection_model(
    yi: np.ndarray,
    vi: np.ndarray,
    steps: Sequence[float] = (0.025,),
    alternative: Alternative = "greater",
    random: bool = True,
) -> SelectionModel:
    """Fit the step-function selection model by maximum likelihood.

    As metafor's ``selmodel(rma(yi, vi, method="ML"), type="stepfun", steps=...,
    alternative=...)``.

    Parameters
    ----------
    yi, vi : numpy.ndarray
        Study estimates (log ratios) and variances.
    steps : sequence of float
        Cut points of the one-sided p values; default 0.025 (a study significant at the
        two-sided 5% level in the favoured direction), the three-parameter selection model.
    alternative : {"greater", "less"}
        The direction selection is assumed to favour: ``"greater"`` where large estimates are
        the "positive" findings.
    random : bool
        Random effects (tau^2 estimated) or a fixed-effect model (tau^2 = 0).

    Returns
    -------
    SelectionModel

    Raises
    ------
    AnalysisError
        Fewer studies than parameters, or an interval beyond the first with no study.
    """
    from scipy.optimize import minimize  # loaded on use: importing rebayes stays light

    yi = np.asarray(yi, dtype=float)
    vi = np.asarray(vi, dtype=float)
    if alternative not in ("greater", "less"):
        raise AnalysisError(f"unknown alternative {alternative!r} (use greater or less)")
    cut = _steps(steps)
    k, n_delta = len(yi), len(cut) - 1
    if k < 2 + int(random) + n_delta:
        raise AnalysisError(f"a selection model with {n_delta} step(s) needs more than "
                            f"{1 + int(random) + n_delta} studies, not {k}")
    group = interval_index(one_sided_p(yi, vi, alternative), cut)
    counts = np.bincount(group, minlength=len(cut))
    empty = [j for j in range(1, len(cut)) if counts[j] == 0]
    if empty:
        low = 0.0 if empty[0] == 0 else cut[empty[0] - 1]
        raise AnalysisError(f"the selection model's interval {low:g} < p <= {cut[empty[0]]:g} "
                            "holds no study, so its weight cannot be estimated")
    base = fit_meta_regression(yi, vi, method="ML" if random else "FE")
    fixed_tau = not random

    def negative(par: np.ndarray, transformed: bool = True) -> float:
        mu, tau2, deltas = _unpack(par, fixed_tau, transformed)
        value = -_loglik(mu, tau2, deltas, yi, vi, group, cut, alternative)
        return value if np.isfinite(value) else 1e100

    start = [float(base.coef[0])]
    if random:
        start.append(float(np.log(base.tau2 + 0.001)))
    start += [float(np.log(1.0 / (DELTA_MAX - 1.0)))] * n_delta
    fit = minimize(negative, np.asarray(start), method="BFGS",
                   options={"gtol": 1e-8, "maxiter": 2000})
    mu, tau2, deltas = _unpack(fit.x, fixed_tau, transformed=True)
    loglik = -negative(fit.x)
    natural = np.concatenate([[mu], [tau2] if random else [], deltas[1:]])
    hessian = _hessian(lambda x: negative(x, transformed=False), natural)
    try:
        cov = np.linalg.inv(hessian)
        se = np.sqrt(np.where(np.diag(cov) > 0, np.diag(cov), np.nan))
    except np.linalg.LinAlgError:
        se = np.full(len(natural), np.nan)
    se_mu = float(se[0])
    deltas_se = (float("nan"), *map(float, se[1 + int(random):]))
    lrt = max(0.0, 2 * (loglik - base.loglik))
    at_bound = bool(np.any(deltas[1:] <= 1e-4) or np.any(deltas[1:] >= DELTA_MAX - 1e-2))
    return SelectionModel(
        steps=tuple(float(s) for s in cut), alternative=alternative,
        estimate=mu, se=se_mu, ci_low=mu - Z975 * se_mu, ci_high=mu + Z975 * se_mu,
        tau2=tau2, deltas=tuple(float(d) for d in deltas), deltas_se=deltas_se,
        counts=tuple(int(c) for c in counts), lrt=lrt, lrt_df=n_delta,
        lrt_p=float(chdtrc(n_delta, lrt)), loglik=loglik, loglik0=base.loglik,
        unadjusted=float(base.coef[0]), at_bound=at_bound, k=k,
    )

