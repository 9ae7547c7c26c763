"""Random-effects options RevMan Web offers since January 2025, as pure functions of (yi, vi).

Cochrane's Statistical Methods Group recommended, and RevMan Web implemented in January 2025
(Cochrane Methods, "Random-effects meta-analysis methods for Intervention Reviews"; Cochrane
Handbook version 6.5, chapter 10):

- the between-study variance tau^2 by restricted maximum likelihood (REML) besides
  DerSimonian-Laird (DL); the Paule-Mandel (PM) estimator is here too (metafor's and meta's
  other common choice);
- a Q-profile confidence interval for tau^2 (Viechtbauer 2007, Stat Med 26:37-52);
- Hartung-Knapp-Sidik-Jonkman (HKSJ) intervals for the pooled effect (Hartung & Knapp 2001,
  Stat Med 20:3875-89; Sidik & Jonkman 2002, Stat Med 21:3153-59): the variance of the
  random-effects estimate scaled by the weighted residual sum of squares over k - 1, with a t
  distribution on k - 1 degrees of freedom. No ad hoc truncation: the Cochrane documents name
  none (``hksj_se`` can apply Knapp & Hartung's 2003 ``max(1, q)`` correction on request);
- prediction intervals with a t distribution on k - 1 degrees of freedom (Veroniki et al.
  2019, Res Synth Methods 10:23-43; R meta's default since version 8.0, October 2024), around
  the pooled estimate with the standard error its confidence interval uses;
- I^2 from tau^2: tau^2 / (tau^2 + s^2) with Higgins & Thompson's (2002) typical within-study
  variance s^2 (Cochrane Methods' addendum of May 2024), as metafor's ``rma`` reports it.

Every number equals metafor's (``rma(yi, vi, method=, test="knha")``, ``predict``,
``confint``): ``tests/test_heterogeneity.py`` records the R calls. The estimators solve their
estimating equations with :func:`scipy.optimize.brentq` (metafor iterates Fisher scoring for
REML and uses ``uniroot`` for PM: the same roots).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import chdtri, ndtr, ndtri, stdtr, stdtrit

from rebayes.errors import RebayesError

__all__ = [
    "TAU2_METHODS",
    "RandomEffects",
    "generalised_q",
    "hksj_se",
    "i2_from_tau2",
    "prediction_interval",
    "random_effects",
    "tau2_confidence_interval",
    "tau2_dl",
    "tau2_estimate",
    "tau2_pm",
    "tau2_reml",
    "typical_variance",
]

Tau2Method = Literal["DL", "REML", "PM"]
TAU2_METHODS: tuple[str, ...] = ("DL", "REML", "PM")
TAU2_LABELS = {"DL": "DerSimonian-Laird", "REML": "REML", "PM": "Paule-Mandel"}
# brentq's tolerance on tau^2: far below any printed digit (metafor stops at 1e-5 relative).
_XTOL = 1e-12


class HeterogeneityError(RebayesError):
    """A random-effects request that cannot be computed (unknown estimator, no studies)."""


def _arrays(yi: np.ndarray, vi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y, v = np.asarray(yi, dtype=float), np.asarray(vi, dtype=float)
    if y.shape != v.shape or y.ndim != 1 or len(y) == 0:
        raise HeterogeneityError("yi and vi must be equally long, non-empty vectors")
    return y, v


def generalised_q(yi: np.ndarray, vi: np.ndarray, tau2: float) -> float:
    """Cochran's Q with weights 1 / (vi + tau2), centred on the weighted mean.

    Decreasing in ``tau2``; at ``tau2 = 0`` it is the inverse-variance Q.
    """
    y, v = _arrays(yi, vi)
    w = 1 / (v + tau2)
    mu = (w * y).sum() / w.sum()
    return float((w * (y - mu) ** 2).sum())


def tau2_dl(yi: np.ndarray, vi: np.ndarray, q: float | None = None) -> float:
    """DerSimonian-Laird: max(0, (Q - (k - 1)) / (sum w - sum w^2 / sum w)).

    Parameters
    ----------
    yi, vi : array_like
    q : float, optional
        Cochran's Q to use (RevMan's "M-H, Random" centres it on the Mantel-Haenszel
        estimate); default the inverse-variance Q.
    """
    y, v = _arrays(yi, vi)
    k = len(y)
    if k < 2:
        return 0.0
    w = 1 / v
    q = generalised_q(y, v, 0.0) if q is None else q
    c = w.sum() - (w**2).sum() / w.sum()
    return max(0.0, (q - (k - 1)) / c) if c > 0 else 0.0


def _upper_bracket(f: Callable[[float], float], start: float) -> float:
    """Return a tau^2 at which the decreasing ``f`` is negative (doubling from ``start``)."""
    upper = max(start, 1e-4)
    for _ in range(200):
        if f(upper) < 0:
            return upper
        upper *= 2
    raise HeterogeneityError("could not bracket tau^2 (the estimating equation has no root)")


def _root(f: Callable[[float], float], start: float) -> float:
    """Root of a function positive at 0 and negative far out, by scipy's brentq."""
    from scipy.optimize import brentq

    upper = _upper_bracket(f, start)
    return float(brentq(f, 0.0, upper, xtol=_XTOL, rtol=4 * np.finfo(float).eps, maxiter=500))


def tau2_pm(yi: np.ndarray, vi: np.ndarray) -> float:
    """Paule-Mandel: the tau^2 at which the generalised Q equals its expectation k - 1."""
    y, v = _arrays(yi, vi)
    k = len(y)
    if k < 2:
        return 0.0

    def excess(tau2: float) -> float:
        return generalised_q(y, v, tau2) - (k - 1)

    if excess(0.0) <= 0:
        return 0.0
    return _root(excess, float(np.var(y, ddof=1)))


def tau2_reml(yi: np.ndarray, vi: np.ndarray) -> float:
    """Restricted maximum likelihood: the root of the REML score, truncated at 0.

    The score of the restricted log-likelihood in tau^2, with w = 1 / (vi + tau^2), is
    proportional to sum w^2 (yi - mu)^2 - sum w + sum w^2 / sum w (Viechtbauer 2005, J Educ
    Behav Stat 30:261-93).
    """
    y, v = _arrays(yi, vi)
    if len(y) < 2:
        return 0.0

    def score(tau2: float) -> float:
        w = 1 / (v + tau2)
        mu = (w * y).sum() / w.sum()
        return float((w**2 * (y - mu) ** 2).sum() - w.sum() + (w**2).sum() / w.sum())

    if score(0.0) <= 0:
        return 0.0
    return _root(score, float(np.var(y, ddof=1)))


def tau2_estimate(
    yi: np.ndarray, vi: np.ndarray, method: Tau2Method = "DL", q: float | None = None
) -> float:
    """tau^2 by ``method`` (``DL``, ``REML`` or ``PM``); ``q`` as in :func:`tau2_dl`."""
    if method == "DL":
        return tau2_dl(yi, vi, q)
    if method == "REML":
        return tau2_reml(yi, vi)
    if method == "PM":
        return tau2_pm(yi, vi)
    raise HeterogeneityError(
        f"unknown tau2 estimator {method!r} (use one of {', '.join(TAU2_METHODS)})"
    )


def tau2_confidence_interval(
    yi: np.ndarray, vi: np.ndarray, ci_level: float = 0.95
) -> tuple[float, float]:
    """Q-profile confidence interval for tau^2 (Viechtbauer 2007; metafor's ``confint``).

    The bounds are the tau^2 at which the generalised Q equals the upper and lower
    ``(1 - ci_level) / 2`` quantiles of a chi-square on k - 1 degrees of freedom; a bound
    whose equation has no positive root is 0.

    Returns
    -------
    (float, float)
        ``(nan, nan)`` with fewer than two studies.
    """
    y, v = _arrays(yi, vi)
    k = len(y)
    if k < 2:
        return math.nan, math.nan
    alpha = 1 - ci_level
    bounds = []
    # Lower bound: Q(tau2) = the upper quantile; upper bound: Q(tau2) = the lower quantile.
    for tail in (alpha / 2, 1 - alpha / 2):
        crit = float(chdtri(k - 1, tail))

        def excess(tau2: float, crit: float = crit) -> float:
            return generalised_q(y, v, tau2) - crit

        bounds.append(0.0 if excess(0.0) <= 0 else _root(excess, float(np.var(y, ddof=1))))
    return bounds[0], bounds[1]


def typical_variance(vi: np.ndarray) -> float:
    """Higgins & Thompson's (2002) typical within-study variance.

    s^2 = (k - 1) sum w / ((sum w)^2 - sum w^2), w = 1 / vi.
    """
    v = np.asarray(vi, dtype=float)
    w = 1 / v
    denominator = w.sum() ** 2 - (w**2).sum()
    return float((len(v) - 1) * w.sum() / denominator) if denominator > 0 else math.nan


def i2_from_tau2(tau2: float, vi: np.ndarray) -> float:
    """I^2 (percent) as tau^2 / (tau^2 + s^2), s^2 the typical within-study variance."""
    if len(np.asarray(vi)) < 2 or not math.isfinite(tau2):
        return 0.0
    s2 = typical_variance(vi)
    return 100 * tau2 / (tau2 + s2) if tau2 > 0 else 0.0


def hksj_se(
    yi: np.ndarray, vi: np.ndarray, tau2: float, truncate: bool = False
) -> tuple[float, float]:
    """Return the random-effects estimate and its Hartung-Knapp-Sidik-Jonkman standard error.

    Parameters
    ----------
    yi, vi : array_like
    tau2 : float
    truncate : bool
        Knapp & Hartung's (2003) ad hoc correction: never below the standard error (scale
        factor ``max(1, q)``); off by default, as in metafor's ``test="knha"``.

    Returns
    -------
    (float, float)
        Estimate and standard error (on the analysis scale).
    """
    y, v = _arrays(yi, vi)
    k = len(y)
    w = 1 / (v + tau2)
    mu = float((w * y).sum() / w.sum())
    q = float((w * (y - mu) ** 2).sum() / (k - 1)) if k > 1 else math.nan
    if truncate:
        q = max(1.0, q)
    return mu, math.sqrt(q / w.sum())


def _quantile(ci_level: float, df: int | None) -> float:
    upper = 0.5 + ci_level / 2
    return float(ndtri(upper)) if df is None else float(stdtrit(df, upper))


def prediction_interval(
    estimate: float, se: float, tau2: float, k: int, ci_level: float = 0.95
) -> tuple[float, float]:
    """``estimate +- t_{k-1} sqrt(tau2 + se^2)`` (Veroniki et al. 2019); NaN below 2 studies.

    Parameters
    ----------
    estimate, se : float
        Pooled estimate (analysis scale) and the standard error its interval uses (the HKSJ
        one under HKSJ).
    tau2 : float
    k : int
        Studies pooled.
    ci_level : float
    """
    if k < 2:
        return math.nan, math.nan
    half = _quantile(ci_level, k - 1) * math.sqrt(tau2 + se**2)
    return estimate - half, estimate + half


@dataclass(frozen=True)
class RandomEffects:
    """A random-effects estimate with its interval, test, tau^2 (and CI) and prediction interval.

    Attributes
    ----------
    estimate, se : float
        Pooled effect on the analysis scale and the standard error its CI uses.
    ci_low, ci_high : float
        Confidence interval (normal quantile, or t on ``df`` under HKSJ).
    statistic, p : float
        Z (or t under HKSJ) test of no effect and its two-sided p value.
    df : int or None
        Degrees of freedom of the t test (None: a Z test).
    tau2 : float
    tau2_method : str
    tau2_ci : tuple of float
        Q-profile interval.
    pi_low, pi_high : float
        Prediction interval (t on k - 1 df).
    i2 : float
        I^2 from tau^2, percent.
    hksj : bool
    weights : numpy.ndarray
        1 / (vi + tau2).
    """

    estimate: float
    se: float
    ci_low: float
    ci_high: float
    statistic: float
    p: float
    df: int | None
    tau2: float
    tau2_method: str
    tau2_ci: tuple[float, float]
    pi_low: float
    pi_high: float
    i2: float
    hksj: bool
    weights: np.ndarray


def random_effects(
    yi: np.ndarray,
    vi: np.ndarray,
    tau2_method: Tau2Method = "DL",
    hksj: bool = False,
    ci_level: float = 0.95,
    *,
    tau2: float | None = None,
    z: float | None = None,
) -> RandomEffects:
    """Pool ``yi`` with variances ``vi`` under random effects, as RevMan Web does.

    Parameters
    ----------
    yi, vi : array_like
        Study estimates on the analysis scale and their variances.
    tau2_method : {"DL", "REML", "PM"}
    hksj : bool
        Hartung-Knapp-Sidik-Jonkman interval and t test instead of the Wald-type ones.
    ci_level : float
    tau2 : float, optional
        Use this tau^2 (e.g. RevMan's DL from the Mantel-Haenszel-centred Q) instead of
        estimating it.
    z : float, optional
        The normal quantile of the Wald interval (RevMan rounds it to 1.959964 at 95%).

    Returns
    -------
    RandomEffects

    Examples
    --------
    >>> import numpy as np
    >>> re = random_effects(np.array([-0.9, -1.6, -1.4, -1.5]),
    ...                     np.array([0.36, 0.21, 0.42, 0.02]), "REML", hksj=True)
    >>> re.df
    3
    """
    y, v = _arrays(yi, vi)
    k = len(y)
    if tau2 is None:
        tau2 = tau2_estimate(y, v, tau2_method)
    w = 1 / (v + tau2)
    estimate = float((w * y).sum() / w.sum())
    df: int | None = None
    if hksj and k > 1:
        estimate, se = hksj_se(y, v, tau2)
        df = k - 1
        crit = _quantile(ci_level, df)
    else:
        se = float(1 / w.sum()) ** 0.5
        crit = _quantile(ci_level, None) if z is None else z
    statistic = estimate / se if se > 0 else math.nan
    if df is None:
        p = float(2 * ndtr(-abs(statistic)))
    else:
        p = float(2 * stdtr(df, -abs(statistic)))
    pi_low, pi_high = prediction_interval(estimate, se, tau2, k, ci_level)
    return RandomEffects(
        estimate=estimate,
        se=se,
        ci_low=estimate - crit * se,
        ci_high=estimate + crit * se,
        statistic=statistic,
        p=p,
        df=df,
        tau2=tau2,
        tau2_method=tau2_method,
        tau2_ci=tau2_confidence_interval(y, v, ci_level),
        pi_low=pi_low,
        pi_high=pi_high,
        i2=i2_from_tau2(tau2, v),
        hksj=hksj,
        weights=w,
    )
