"""Inverse-variance meta-regression on (yi, vi): fixed effect, DerSimonian-Laird, ML and REML.

The small-study tests, trim-and-fill and the selection model work on per-study estimates and
their variances alone (filled studies have no counts), so they need the random-effects model
as metafor's ``rma.uni`` fits it, with moderators: :func:`fit_meta_regression`. RevMan's pooling
of 2x2 tables (Mantel-Haenszel, Peto, Q centred as RevMan does) stays in
:mod:`rebayes.frequentist.pooling`; without moderators the two agree for inverse-variance
analyses.

- ``FE``: tau^2 = 0, weighted least squares.
- ``DL``: DerSimonian & Laird's moment estimator, for a meta-regression
  tau^2 = (Q_E - (k - p)) / tr(P), P = W - W X (X'WX)^-1 X'W (Raudenbush 2009), truncated at 0.
- ``ML`` / ``REML``: the root of the (restricted) likelihood's score in tau^2, or 0 where the
  score is negative at 0 (metafor finds the same maximum by Fisher scoring).

Inference on the coefficients is by z tests with ``vcov = (X'WX)^-1``, W = 1 / (vi + tau^2),
as metafor's default ``test="z"``.

References
----------
DerSimonian R, Laird N. Meta-analysis in clinical trials. Control Clin Trials 1986;7:177-88.
Raudenbush SW. Analyzing effect sizes: random-effects models. In: Cooper H, Hedges LV,
Valentine JC (eds). The Handbook of Research Synthesis and Meta-Analysis. 2nd ed. 2009.
Viechtbauer W. Conducting meta-analyses in R with the metafor package. J Stat Softw
2010;36(3). doi:10.18637/jss.v036.i03.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.special import ndtr, ndtri

from rebayes.errors import AnalysisError

__all__ = ["Z975", "MetaRegression", "fit_meta_regression"]

#: The exact 97.5% normal quantile (metafor's ``qnorm(0.975)``; RevMan prints 1.959964).
Z975 = float(ndtri(0.975))

TauMethod = Literal["FE", "DL", "ML", "REML"]
TAU_METHODS = ("FE", "DL", "ML", "REML")


@dataclass(frozen=True)
class MetaRegression:
    """A fitted (mixed-effects) meta-regression: coefficients, their covariance, tau^2.

    Attributes
    ----------
    coef, se : numpy.ndarray
        Coefficients (the intercept first, when the design has one) and standard errors.
    vcov : numpy.ndarray
        ``(X'WX)^-1``.
    tau2 : float
        Between-study variance (0 for ``FE``).
    method : str
        ``FE``, ``DL``, ``ML`` or ``REML``.
    loglik : float
        Log likelihood (ML form, constants included) at the estimates; for ``REML`` the
        restricted log likelihood.
    k : int
        Studies.
    """

    coef: np.ndarray
    se: np.ndarray
    vcov: np.ndarray
    tau2: float
    method: str
    loglik: float
    k: int

    @property
    def z(self) -> np.ndarray:
        """Return the z statistics of the coefficients."""
        return self.coef / self.se

    @property
    def p(self) -> np.ndarray:
        """Two-sided p values of the coefficients' z tests."""
        return 2 * ndtr(-np.abs(self.z))

    def ci(self, index: int = 0, z: float = Z975) -> tuple[float, float]:
        """Wald interval of one coefficient (95% by default)."""
        return (float(self.coef[index] - z * self.se[index]),
                float(self.coef[index] + z * self.se[index]))


def _gls(yi: np.ndarray, vi: np.ndarray, X: np.ndarray,
         tau2: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted least squares at a given tau^2: (coefficients, (X'WX)^-1, weights)."""
    w = 1.0 / (vi + tau2)
    xtwx = X.T @ (w[:, None] * X)
    vcov = np.linalg.inv(xtwx)
    coef = vcov @ (X.T @ (w * yi))
    return coef, vcov, w


def _p_matrix(vi: np.ndarray, X: np.ndarray, tau2: float) -> np.ndarray:
    _, vcov, w = _gls(np.zeros_like(vi), vi, X, tau2)
    wx = w[:, None] * X
    return np.diag(w) - wx @ vcov @ wx.T


def _score(yi: np.ndarray, vi: np.ndarray, X: np.ndarray, tau2: float, reml: bool) -> float:
    """Return the derivative of the (restricted) log likelihood in tau^2."""
    if reml:
        p = _p_matrix(vi, X, tau2)
        py = p @ yi
        return float(-0.5 * np.trace(p) + 0.5 * py @ py)
    coef, _, w = _gls(yi, vi, X, tau2)
    r = yi - X @ coef
    return float(-0.5 * w.sum() + 0.5 * (w**2 * r**2).sum())


def _loglik(yi: np.ndarray, vi: np.ndarray, X: np.ndarray, tau2: float, reml: bool) -> float:
    coef, vcov, w = _gls(yi, vi, X, tau2)
    r = yi - X @ coef
    k, p = X.shape
    if not reml:
        return float(-0.5 * k * np.log(2 * np.pi) + 0.5 * np.log(w).sum()
                     - 0.5 * (w * r**2).sum())
    # metafor's restricted log likelihood (Harville's form, with its + log|X'X| / 2).
    _, logdet = np.linalg.slogdet(np.linalg.inv(vcov))
    _, logdet_x = np.linalg.slogdet(X.T @ X)
    return float(-0.5 * (k - p) * np.log(2 * np.pi) + 0.5 * np.log(w).sum()
                 - 0.5 * logdet + 0.5 * logdet_x - 0.5 * (w * r**2).sum())


def _dersimonian_laird(yi: np.ndarray, vi: np.ndarray, X: np.ndarray) -> float:
    k, p = X.shape
    if k <= p:
        return 0.0
    coef, _, w = _gls(yi, vi, X, 0.0)
    q = float((w * (yi - X @ coef) ** 2).sum())
    trace = float(np.trace(_p_matrix(vi, X, 0.0)))
    return max(0.0, (q - (k - p)) / trace) if trace > 0 else 0.0


def _likelihood_root(yi: np.ndarray, vi: np.ndarray, X: np.ndarray, reml: bool) -> float:
    """tau^2 maximising the (restricted) likelihood: 0, or the root of its score."""
    from scipy.optimize import brentq  # loaded on use: `rebayes frequentist` stays light

    if _score(yi, vi, X, 0.0, reml) <= 0:
        return 0.0
    upper = max(1.0, 10 * float(np.var(yi)) + 10 * float(vi.max()))
    while _score(yi, vi, X, upper, reml) > 0:
        upper *= 10
        if upper > 1e12:
            raise AnalysisError("the likelihood of tau^2 has no maximum (unbounded)")
    return float(brentq(lambda t: _score(yi, vi, X, t, reml), 0.0, upper, xtol=1e-14,
                        rtol=1e-13, maxiter=500))


def fit_meta_regression(
    yi: np.ndarray,
    vi: np.ndarray,
    X: np.ndarray | None = None,
    method: TauMethod = "REML",
) -> MetaRegression:
    """Fit the (mixed-effects) meta-regression ``yi ~ N(X b, vi + tau^2)``, as metafor's rma.uni.

    Parameters
    ----------
    yi, vi : numpy.ndarray
        Study estimates and their sampling variances (all positive).
    X : numpy.ndarray, optional
        Design matrix (k x p); default: an intercept only.
    method : {"FE", "DL", "ML", "REML"}
        The heterogeneity estimator.

    Returns
    -------
    MetaRegression

    Examples
    --------
    metafor's ``dat.bcg`` (``rma(yi, vi, data=escalc("RR", ...), method="DL")``: -0.7141,
    tau^2 0.3088):

    >>> import numpy as np
    >>> yi = np.array([-0.8893, -1.5854, -1.3481, -1.4416, -0.2175, -0.7861, -1.6209,
    ...                0.0120, -0.4694, -1.3713, -0.3394, 0.4459, -0.0173])
    >>> vi = np.array([0.3256, 0.1946, 0.4154, 0.0200, 0.0512, 0.0069, 0.2230, 0.0040,
    ...                0.0564, 0.0730, 0.0124, 0.5325, 0.0714])
    >>> round(float(fit_meta_regression(yi, vi, method="DL").coef[0]), 3)
    -0.714
    """
    if method not in TAU_METHODS:
        raise AnalysisError(f"unknown heterogeneity method {method!r} "
                            f"(use one of {', '.join(TAU_METHODS)})")
    yi = np.asarray(yi, dtype=float)
    vi = np.asarray(vi, dtype=float)
    X = np.ones((len(yi), 1)) if X is None else np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    k, p = X.shape
    if k < p or np.linalg.matrix_rank(X) < p:
        raise AnalysisError(f"{k} studies cannot estimate {p} coefficients")
    if method == "FE":
        tau2 = 0.0
    elif method == "DL":
        tau2 = _dersimonian_laird(yi, vi, X)
    else:
        tau2 = _likelihood_root(yi, vi, X, reml=method == "REML") if k > p else 0.0
    coef, vcov, _ = _gls(yi, vi, X, tau2)
    return MetaRegression(
        coef=coef,
        se=np.sqrt(np.diag(vcov)),
        vcov=vcov,
        tau2=tau2,
        method=method,
        loglik=_loglik(yi, vi, X, tau2, reml=method == "REML"),
        k=k,
    )
