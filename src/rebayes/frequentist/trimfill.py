"""Duval & Tweedie's trim-and-fill, as metafor's ``trimfill`` runs it on a DL random-effects model.

The method assumes that funnel-plot asymmetry comes from studies missing on one side. It
estimates how many (k0, by the L0 or R0 estimator from the signed ranks of the deviations
from the pooled estimate), trims that many of the most extreme studies on the other side,
re-estimates the centre, iterates until k0 settles, then fills in the mirror images of the
trimmed studies about the centre and pools all of them. The filled studies are imputed, not
observed: the adjusted estimate is a sensitivity analysis, not a corrected effect (Peters et
al. 2007; Sterne et al. 2011).

Conventions are metafor's (3.8): the side of the missing studies, when not given, is the
side opposite to the sign of the slope of a DL meta-regression on the standard error (a
positive slope means small studies show larger effects, so the missing studies are on the
left); ranks break ties by order of appearance after sorting the estimates; R0's k0 is
(k - the longest run of positive ranks at the end) - 1; every pooling (trimming and the final
one) uses the chosen heterogeneity estimator (``DL`` by default, as the bias report asks).

References
----------
Duval S, Tweedie R. Trim and fill: a simple funnel-plot-based method of testing and adjusting
for publication bias in meta-analysis. Biometrics 2000;56:455-63.
Duval S, Tweedie R. A nonparametric "trim and fill" method of accounting for publication
bias in meta-analysis. J Am Stat Assoc 2000;95:89-98.
Peters JL, Sutton AJ, Jones DR, Abrams KR, Rushton L. Performance of the trim and fill method
in the presence of publication bias and between-study heterogeneity. Stat Med
2007;26:4544-62.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from rebayes.errors import AnalysisError
from rebayes.frequentist.meta_regression import TauMethod, fit_meta_regression

__all__ = ["TrimFill", "trim_and_fill"]

Estimator = Literal["L0", "R0"]
Side = Literal["left", "right"]


@dataclass(frozen=True)
class TrimFill:
    """Result of trim-and-fill.

    Attributes
    ----------
    estimator : {"L0", "R0"}
    side : {"left", "right"}
        Where the missing studies were imputed (on the analysis scale: left = smaller log
        ratios).
    k0, se_k0 : int, float
        Estimated number of missing studies and its standard error.
    estimate, ci_low, ci_high : float
        Pooled effect on the analysis scale (log ratio) with the filled studies, and its 95%
        interval; equal to the unadjusted ones when k0 = 0.
    tau2 : float
        Heterogeneity with the filled studies.
    filled_yi, filled_vi : numpy.ndarray
        The imputed studies (mirror images about the trimmed centre).
    k : int
        Observed studies.
    """

    estimator: str
    side: str
    k0: int
    se_k0: float
    estimate: float
    ci_low: float
    ci_high: float
    tau2: float
    k: int
    filled_yi: np.ndarray = field(repr=False, compare=False)
    filled_vi: np.ndarray = field(repr=False, compare=False)

    def to_dict(self, ratio: bool = True) -> dict[str, Any]:
        """JSON fields ``k0, side, estimate, ci_low, ci_high`` (ratio scale by default)."""
        back = np.exp if ratio else (lambda x: x)
        return {
            "k0": self.k0,
            "side": self.side,
            "estimate": float(back(self.estimate)),
            "ci_low": float(back(self.ci_low)),
            "ci_high": float(back(self.ci_high)),
            "estimator": self.estimator,
            "se_k0": self.se_k0,
            "tau2": self.tau2,
        }


def _side(yi: np.ndarray, vi: np.ndarray, method: TauMethod) -> Side:
    """Choose the side as metafor does: opposite the small studies' excess."""
    X = np.column_stack([np.ones_like(vi), np.sqrt(vi)])
    slope = fit_meta_regression(yi, vi, X, method).coef[1]
    return "right" if slope < 0 else "left"


def _k0(centred: np.ndarray, estimator: Estimator) -> tuple[float, float]:
    k = len(centred)
    ranks = np.empty(k)
    # Ranks of |deviation|, ties broken by order (R's rank(ties.method="first")).
    ranks[np.argsort(np.abs(centred), kind="stable")] = np.arange(1, k + 1)
    signed = np.sign(centred) * ranks
    if estimator == "R0":
        # The studies ranked above the largest negative deviation form a run of positives.
        negative = -signed[signed < 0]
        k0 = (k - (negative.max() if negative.size else 0.0)) - 1
        return k0, float(np.sqrt(2 * max(0.0, k0) + 2))
    s_r = signed[signed > 0].sum()
    k0 = (4 * s_r - k * (k + 1)) / (2 * k - 1)
    var_sr = (k * (k + 1) * (2 * k + 1) + 10 * k0**3 + 27 * k0**2 + 17 * k0
              - 18 * k * k0**2 - 18 * k * k0 + 6 * k**2 * k0) / 24
    return k0, float(4 * np.sqrt(max(var_sr, 0.0)) / (2 * k - 1))


def trim_and_fill(
    yi: np.ndarray,
    vi: np.ndarray,
    estimator: Estimator = "L0",
    side: Side | None = None,
    method: TauMethod = "DL",
    max_iter: int = 100,
) -> TrimFill:
    """Run trim-and-fill (metafor ``trimfill(rma(yi, vi, method=method), estimator=...)``).

    Parameters
    ----------
    yi, vi : numpy.ndarray
        Study estimates (log ratios) and variances.
    estimator : {"L0", "R0"}
        Duval & Tweedie's estimator of the number of missing studies.
    side : {"left", "right"}, optional
        Side of the missing studies; default: chosen as metafor does (module docstring).
    method : {"DL", "REML", "ML", "FE"}
        Heterogeneity estimator of every pooling step.
    max_iter : int
        Iterations before giving up.

    Returns
    -------
    TrimFill
    """
    if estimator not in ("L0", "R0"):
        raise AnalysisError(f"unknown trim-and-fill estimator {estimator!r} (use L0 or R0)")
    yi = np.asarray(yi, dtype=float)
    vi = np.asarray(vi, dtype=float)
    k = len(yi)
    if k < 3:
        raise AnalysisError(f"trim-and-fill needs at least 3 studies, not {k}")
    side = side or _side(yi, vi, method)
    flip = -1.0 if side == "right" else 1.0
    order = np.argsort(flip * yi, kind="stable")
    y, v = flip * yi[order], vi[order]
    k0, k0_previous, se_k0, beta = 0, -1, 0.0, 0.0
    for _ in range(max_iter):
        if k0 == k0_previous:
            break
        k0_previous = k0
        beta = float(fit_meta_regression(y[: k - k0], v[: k - k0], method=method).coef[0])
        raw, se_k0 = _k0(y - beta, estimator)
        k0 = int(max(0, round(raw)))
        se_k0 = max(0.0, se_k0)
        if k0 >= k:
            raise AnalysisError("trim-and-fill estimated that every study is missing")
    else:
        raise AnalysisError(f"trim-and-fill did not converge in {max_iter} iterations")
    if k0 > 0:
        # The k0 largest are mirrored about the last trimmed centre (back on the data's side).
        filled_y = flip * (2 * beta - y[k - k0:])
        filled_v = v[k - k0:]
    else:
        filled_y = filled_v = np.empty(0)
    fit = fit_meta_regression(np.concatenate([yi, filled_y]), np.concatenate([vi, filled_v]),
                             method=method)
    low, high = fit.ci(0)
    return TrimFill(
        estimator=estimator, side=side, k0=k0, se_k0=float(se_k0),
        estimate=float(fit.coef[0]), ci_low=low, ci_high=high, tau2=fit.tau2, k=k,
        filled_yi=filled_y, filled_vi=filled_v,
    )
