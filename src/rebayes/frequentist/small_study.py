"""Tests for small-study effects (funnel-plot asymmetry), as metafor and meta compute them.

Each test asks whether smaller (less precise) studies report systematically different effects
from larger ones. None of them tests publication bias itself: asymmetry can also come from
heterogeneity that follows study size, chance, or an artefact of the effect measure (Sterne
et al. 2011). With fewer than 10 studies they have too little power to rule asymmetry out
(:data:`MIN_STUDIES_FOR_POWER`).

- :func:`egger_test`: Egger's regression. ``model="lm"``: weighted least squares of the
  estimate on its standard error with weights 1/vi and a multiplicative dispersion, t test
  on the slope with k - 2 df (Egger et al. 1997; metafor ``regtest(model="lm")``; the radial
  form's intercept is this slope). ``model="rma"``: the same predictor in a REML
  mixed-effects meta-regression, z test (Sterne & Egger 2005; metafor's default
  ``regtest(model="rma")``). The intercept is the "limit estimate", the effect of a study of
  infinite precision (the PET estimate of Stanley & Doucouliagos 2014).
- :func:`peters_test`: the estimate regressed on 1/n (total sample size), weighted least
  squares (Peters et al. 2006). Peters et al. weight by the inverse variance of the pooled
  event proportion, 1 / (1/(a + c) + 1/(b + d)) (:func:`peters_weights`; R's meta
  ``metabias(method.bias="Peters")``); metafor's ``regtest(predictor="ninv")`` weights by
  1/vi instead. Both are available; the bias report uses Peters et al.'s.
- :func:`harbord_test`: Harbord's modified test for odds ratios: Egger's regression of the
  efficient score Z = a - (a + c) n1 / N over its variance V (Peto's O - E and V), with
  standard error 1/sqrt(V) (Harbord, Egger & Sterne 2006; R's meta default for the OR). Z and
  V need no continuity correction, and they are not correlated with each other under no
  asymmetry as the log OR and its standard error are.
- :func:`begg_test`: Begg & Mazumdar's rank correlation (Kendall's tau) between the
  standardised deviates (yi - theta_FE) / sqrt(vi - 1/sum(w)) and vi (metafor ``ranktest``:
  exact p value for k < 50 without ties, else the normal approximation).

References
----------
Egger M, Davey Smith G, Schneider M, Minder C. Bias in meta-analysis detected by a simple,
graphical test. BMJ 1997;315:629-34.
Sterne JAC, Egger M. Regression methods to detect publication and other bias in
meta-analysis. In: Rothstein HR, Sutton AJ, Borenstein M (eds). Publication Bias in
Meta-Analysis. Wiley; 2005. 99-110.
Peters JL, Sutton AJ, Jones DR, Abrams KR, Rushton L. Comparison of two methods to detect
publication bias in meta-analysis. JAMA 2006;295:676-80.
Harbord RM, Egger M, Sterne JAC. A modified test for small-study effects in meta-analyses of
controlled trials with binary endpoints. Stat Med 2006;25:3443-57.
Begg CB, Mazumdar M. Operating characteristics of a rank correlation test for publication
bias. Biometrics 1994;50:1088-101.
Sterne JAC, Sutton AJ, Ioannidis JPA, et al. Recommendations for examining and interpreting
funnel plot asymmetry in meta-analyses of randomised controlled trials. BMJ 2011;343:d4002.
Stanley TD, Doucouliagos H. Meta-regression approximations to reduce publication selection
bias. Res Synth Methods 2014;5:60-78.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy.special import stdtr, stdtrit

from rebayes.errors import AnalysisError
from rebayes.frequentist.meta_regression import fit_meta_regression

__all__ = [
    "MIN_STUDIES",
    "MIN_STUDIES_FOR_POWER",
    "RankTest",
    "RegressionTest",
    "begg_test",
    "egger_test",
    "harbord_test",
    "peters_test",
    "peters_weights",
    "weighted_regression",
]

#: Fewest studies a small-study test runs on (three points define a slope and its error).
MIN_STUDIES = 3
#: Below this many studies the tests are too weak to rule asymmetry out (Sterne et al. 2011).
MIN_STUDIES_FOR_POWER = 10


@dataclass(frozen=True)
class RegressionTest:
    """A regression test for funnel-plot asymmetry.

    Attributes
    ----------
    name : str
        ``egger``, ``egger_rma``, ``peters`` or ``harbord``.
    statistic : float
        t (``lm`` models) or z (``rma``) statistic of the asymmetry coefficient.
    df : int or None
        Degrees of freedom of the t statistic (None for a z test).
    p : float
        Two-sided p value.
    slope, slope_se : float
        The asymmetry coefficient (on the standard error, 1/n, or sqrt(V)) and its SE.
    limit_estimate, limit_ci_low, limit_ci_high : float
        The intercept: the expected effect of a study of infinite precision (the analysis
        scale: log ratio), with its 95% interval (t-based for ``lm``). NaN for Harbord's
        test, whose intercept is not an effect.
    tau2 : float
        Residual heterogeneity (``rma``), or the multiplicative dispersion phi (``lm``).
    k : int
        Studies.
    """

    name: str
    statistic: float
    df: int | None
    p: float
    slope: float
    slope_se: float
    limit_estimate: float
    limit_ci_low: float
    limit_ci_high: float
    tau2: float
    k: int

    def to_dict(self) -> dict[str, Any]:
        """JSON fields: ``statistic, df, p, limit_estimate`` first (the issue's keys)."""
        return {
            "statistic": self.statistic,
            "df": self.df,
            "p": self.p,
            "limit_estimate": self.limit_estimate,
            "limit_ci_low": self.limit_ci_low,
            "limit_ci_high": self.limit_ci_high,
            "slope": self.slope,
            "slope_se": self.slope_se,
            "k": self.k,
        }


@dataclass(frozen=True)
class RankTest:
    """Begg & Mazumdar's rank correlation test: Kendall's tau and its two-sided p value."""

    tau: float
    p: float
    k: int
    exact: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON fields ``tau, p`` (and ``k``, ``exact``)."""
        return {"tau": self.tau, "p": self.p, "k": self.k, "exact": self.exact}


def _check(yi: np.ndarray, vi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    yi = np.asarray(yi, dtype=float)
    vi = np.asarray(vi, dtype=float)
    if yi.shape != vi.shape or yi.ndim != 1:
        raise AnalysisError("estimates and variances must be vectors of one length")
    if len(yi) < MIN_STUDIES:
        raise AnalysisError(
            f"a test for small-study effects needs at least {MIN_STUDIES} studies, "
            f"not {len(yi)}"
        )
    if not (np.all(np.isfinite(yi)) and np.all(np.isfinite(vi)) and np.all(vi > 0)):
        raise AnalysisError("every study needs a finite estimate and a positive variance")
    return yi, vi


def weighted_regression(
    y: np.ndarray, X: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Weighted least squares with a multiplicative dispersion, as R's ``lm(weights=)``.

    Returns
    -------
    coef, se : numpy.ndarray
        Coefficients and standard errors ``sqrt(phi diag((X'WX)^-1))``.
    phi : float
        Residual variance ``sum(w r^2) / (k - p)``.
    df : int
        Residual degrees of freedom ``k - p``.
    """
    X = np.asarray(X, dtype=float)
    w = np.asarray(weights, dtype=float)
    k, p = X.shape
    if k <= p:
        raise AnalysisError(f"{k} studies leave no residual degrees of freedom for {p} "
                            "coefficients")
    xtwx_inv = np.linalg.inv(X.T @ (w[:, None] * X))
    coef = xtwx_inv @ (X.T @ (w * y))
    resid = y - X @ coef
    phi = float((w * resid**2).sum() / (k - p))
    return coef, np.sqrt(phi * np.diag(xtwx_inv)), phi, k - p


def _t_test(name: str, y: np.ndarray, x: np.ndarray, weights: np.ndarray,
            limit: bool = True) -> RegressionTest:
    X = np.column_stack([np.ones_like(x), x])
    if np.ptp(x) == 0:
        raise AnalysisError(f"{name}: every study has the same predictor value (no slope to "
                            "test)")
    coef, se, phi, df = weighted_regression(y, X, weights)
    t = float(coef[1] / se[1])
    q = float(stdtrit(df, 0.975))
    nan = float("nan")
    return RegressionTest(
        name=name, statistic=t, df=df, p=float(2 * stdtr(df, -abs(t))),
        slope=float(coef[1]), slope_se=float(se[1]),
        limit_estimate=float(coef[0]) if limit else nan,
        limit_ci_low=float(coef[0] - q * se[0]) if limit else nan,
        limit_ci_high=float(coef[0] + q * se[0]) if limit else nan,
        tau2=phi, k=len(y),
    )


def egger_test(yi: np.ndarray, vi: np.ndarray,
               model: Literal["lm", "rma"] = "lm") -> RegressionTest:
    """Egger's regression test: the estimate on its standard error.

    Parameters
    ----------
    yi, vi : numpy.ndarray
        Study estimates (log RR or log OR) and their variances.
    model : {"lm", "rma"}
        ``lm``: weighted least squares with multiplicative dispersion, t test (the classical
        test; metafor ``regtest(model="lm")``). ``rma``: REML mixed-effects meta-regression,
        z test (metafor's default ``regtest()``).

    Returns
    -------
    RegressionTest
        ``limit_estimate`` is the intercept (PET).

    Examples
    --------
    Magnesium after myocardial infarction (metadat's dat.egger2001, 16 trials, log OR):
    metafor's ``regtest(model="lm")`` gives t = -5.78, p = 0.00005, as this does
    (``tests/test_small_study.py``).
    """
    yi, vi = _check(yi, vi)
    sei = np.sqrt(vi)
    if model == "lm":
        return _t_test("egger", yi, sei, 1 / vi)
    if model != "rma":
        raise AnalysisError(f"unknown model {model!r} (use lm or rma)")
    if np.ptp(sei) == 0:
        raise AnalysisError("egger_rma: every study has the same standard error")
    fit = fit_meta_regression(yi, vi, np.column_stack([np.ones_like(sei), sei]), "REML")
    low, high = fit.ci(0)
    return RegressionTest(
        name="egger_rma", statistic=float(fit.z[1]), df=None, p=float(fit.p[1]),
        slope=float(fit.coef[1]), slope_se=float(fit.se[1]),
        limit_estimate=float(fit.coef[0]), limit_ci_low=low, limit_ci_high=high,
        tau2=fit.tau2, k=len(yi),
    )


def peters_weights(events_treat: np.ndarray, n_treat: np.ndarray, events_control: np.ndarray,
                   n_control: np.ndarray) -> np.ndarray:
    """Peters et al.'s (2006) weights: 1 / (1/(a + c) + 1/(b + d)), from the raw counts.

    The inverse variance of the log odds of the pooled event proportion of a study (R's meta
    ``metabias(method.bias="Peters")``); a study with no events (or no non-events) in both
    arms has none and must be left out beforehand.
    """
    a, n1, c, n2 = (np.asarray(x, dtype=float) for x in (events_treat, n_treat,
                                                          events_control, n_control))
    events, non_events = a + c, (n1 - a) + (n2 - c)
    if np.any(events == 0) or np.any(non_events == 0):
        raise AnalysisError("Peters' test: a study without events (or without non-events) in "
                            "both arms has no weight")
    return 1.0 / (1.0 / events + 1.0 / non_events)


def peters_test(yi: np.ndarray, n_total: np.ndarray, weights: np.ndarray) -> RegressionTest:
    """Peters' regression test: the estimate on 1/n, weighted least squares, t test.

    Parameters
    ----------
    yi : numpy.ndarray
        Study estimates (log OR or log RR).
    n_total : numpy.ndarray
        Total sample size of each study (both arms).
    weights : numpy.ndarray
        Regression weights: :func:`peters_weights` (Peters et al. 2006, R's meta), or 1/vi
        (metafor ``regtest(model="lm", predictor="ninv")``).

    Returns
    -------
    RegressionTest
        ``limit_estimate`` is the intercept: the effect of an infinitely large study.
    """
    n = np.asarray(n_total, dtype=float)
    yi, w = _check(yi, 1.0 / np.asarray(weights, dtype=float))
    return _t_test("peters", yi, 1.0 / n, 1.0 / w)


def harbord_test(events_treat: np.ndarray, n_treat: np.ndarray, events_control: np.ndarray,
                 n_control: np.ndarray) -> RegressionTest:
    """Harbord's modified test for small-study effects in odds ratios (score-based Egger).

    With Z = a - (a + c) n1 / N and V = n1 n2 (a + c)(b + d) / (N^2 (N - 1)) per study (no
    continuity correction), Egger's ``lm`` regression of Z/V on 1/sqrt(V): the radial
    regression of Z/sqrt(V) on sqrt(V), whose intercept is the test (Harbord et al. 2006,
    as R's meta computes it). Studies with V = 0 (no events, or only events, in both arms)
    carry no information and are left out.

    Returns
    -------
    RegressionTest
        No limit estimate (the intercept of this regression is not an effect).
    """
    a, n1, c, n2 = (np.asarray(x, dtype=float) for x in (events_treat, n_treat,
                                                          events_control, n_control))
    n = n1 + n2
    z = a - (a + c) * n1 / n
    v = n1 * n2 * (a + c) * (n - a - c) / (n**2 * (n - 1))
    keep = v > 0
    score, var = _check(z[keep] / v[keep], 1.0 / v[keep])
    return _t_test("harbord", score, np.sqrt(var), 1.0 / var, limit=False)


def begg_test(yi: np.ndarray, vi: np.ndarray) -> RankTest:
    """Begg & Mazumdar's rank correlation test (metafor ``ranktest``).

    Kendall's tau between the standardised deviates from the fixed-effect estimate and the
    variances; the exact null distribution where k < 50 and nothing is tied (as R's
    ``cor.test``), else the normal approximation with ties (tau-b).
    """
    from scipy.stats import kendalltau  # loaded on use: the frequentist command stays light

    yi, vi = _check(yi, vi)
    w = 1.0 / vi
    theta = float((w * yi).sum() / w.sum())
    deviates = (yi - theta) / np.sqrt(vi - 1.0 / w.sum())
    ties = len(np.unique(deviates)) < len(yi) or len(np.unique(vi)) < len(vi)
    exact = len(yi) < 50 and not ties
    result = kendalltau(deviates, vi, method="exact" if exact else "asymptotic")
    return RankTest(tau=float(result.statistic), p=float(result.pvalue), k=len(yi),
                    exact=exact)

