"""Analysis of credibility (reverse-Bayes): which prior would overturn, or rescue, the result.

Matthews' Analysis of Credibility (AnCred) turns Bayes' theorem round: instead of asking what
a prior and the data imply, it asks which prior, combined with the data, would just bring the
95% interval to the line of no effect (Matthews RAJ. Beyond 'significance': principles and
practice of the Analysis of Credibility. R Soc Open Sci 2018;5:171047; Held L. The
assessment of intrinsic credibility and a new argument for p < 0.005. R Soc Open Sci
2019;6:181534). Everything is on the log ratio scale with a normal approximation: the interval
``(L, U)`` gives ``l = log L``, ``u = log U``, the estimate ``(l + u) / 2`` and the standard
error ``(u - l) / (2 z)``, z = 1.96. (A posterior credible interval is treated the same way, as
if it came from a normal likelihood: the reverse-Bayes question is then asked of the evidence
it summarises.)

**Significant result** (``l`` and ``u`` on the same side of 0): the *sceptical prior* is
centred on no effect, N(0, sigma_S^2), and just wide enough that the posterior 95% interval
touches 0. Its 95% range ``+-SL`` is Matthews' *scepticism limit* (his eq. for the critical
prior interval)::

    SL = (u - l)^2 / (4 sqrt(u l))            (log scale; ratio scale: exp(SL))

so sigma_S = SL / z. A sceptic whose prior puts 95% of its mass on ratios between 1/exp(SL)
and exp(SL) is not convinced; the result is credible if ratios beyond that are plausible on
prior evidence. It is *intrinsically credible* (Matthews 2018) when the estimate itself lies
beyond SL, i.e. |Z| > z sqrt((1 + sqrt 5) / 2), p < 0.013. Held's (2019) version asks whether
a replication is predicted to agree: p_IC = 2 (1 - Phi(|Z| / sqrt 2)) < 0.05, i.e. p < 0.0056.

**Non-significant result** (``l < 0 < u``): the *advocacy prior* runs from no effect to the
*advocacy limit*, N(AL / 2, (AL / (2 z))^2), and is just strong enough that the posterior 95%
interval excludes 0 (Matthews 2018)::

    AL = -(u + l) (u - l)^2 / (2 u l)         (log scale; ratio scale: exp(AL))

Advocacy priors of this form whose upper end lies inside AL make the posterior interval
exclude 0; those reaching beyond it (weaker, more diffuse) do not. So the result is credible
evidence of an effect in its estimate's direction if prior evidence, independent of these
data, supports ratios between 1 and exp(AL) (Matthews 2018).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
from scipy import stats

from rebayes import tables
from rebayes.data.direction import Direction
from rebayes.display import ResultDisplay
from rebayes.errors import RebayesError
from rebayes.frequentist.pooling import Z95

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from rebayes.bayes.quantities import FitSummary
    from rebayes.frequentist.pooling import MetaResult

__all__ = [
    "Credibility",
    "CredibilityRow",
    "advocacy_limit",
    "analysis_of_credibility",
    "credibility",
    "sceptical_limit",
]

# Matthews (2018): intrinsically credible when |Z| exceeds z * sqrt(golden ratio).
GOLDEN = (1 + math.sqrt(5)) / 2


def sceptical_limit(l: float, u: float) -> float:  # noqa: E741 - Matthews' notation
    """Return SL = (u - l)^2 / (4 sqrt(u l)) on the log scale (signed as the estimate).

    Parameters
    ----------
    l, u : float
        The 95% interval on the log scale, both on one side of 0.
    """
    if l * u <= 0:
        raise RebayesError("the sceptical limit needs an interval that excludes no effect")
    return math.copysign((u - l) ** 2 / (4 * math.sqrt(u * l)), u + l)


def advocacy_limit(l: float, u: float) -> float:  # noqa: E741 - Matthews' notation
    """Return AL = -(u + l)(u - l)^2 / (2 u l) on the log scale (signed as the estimate).

    Parameters
    ----------
    l, u : float
        The 95% interval on the log scale, with l < 0 < u.
    """
    if not l < 0 < u:
        raise RebayesError("the advocacy limit needs an interval that includes no effect")
    return -(u + l) * (u - l) ** 2 / (2 * u * l)


@dataclass(frozen=True)
class CredibilityRow:
    """The analysis of credibility of one interval.

    Attributes
    ----------
    label, source : str
        What the interval is (``"Bayesian 95% CrI"``) and where it comes from
        (``"bayesian"`` or ``"frequentist"``).
    estimate, ci_low, ci_high : float
        Ratio scale; the estimate is the interval's geometric midpoint.
    z, p : float
        Normal-approximation Z and two-sided p of no effect.
    significant : bool
        The interval excludes 1.
    sceptical_limit : float or None
        Ratio scale, >= 1 (the sceptical prior's 95% range is 1/SL to SL); significant only.
    sceptical_sd : float or None
        sigma_S of the sceptical prior N(0, sigma_S^2) on the log scale.
    advocacy_limit : float or None
        Ratio scale, on the estimate's side of 1 (the advocacy prior's 95% range is from 1 to
        AL); non-significant only.
    intrinsically_credible : bool or None
        Matthews (2018): the estimate lies beyond the sceptical limit (significant only).
    p_intrinsic : float
        Held's (2019) p_IC = 2 (1 - Phi(|Z| / sqrt 2)).
    """

    label: str
    source: str
    estimate: float
    ci_low: float
    ci_high: float
    z: float
    p: float
    significant: bool
    sceptical_limit: float | None
    sceptical_sd: float | None
    advocacy_limit: float | None
    intrinsically_credible: bool | None
    p_intrinsic: float

    def sentence(self, direction: Direction | None = None) -> str:
        """Return what a sceptic (or an advocate) would have to believe, in one sentence."""
        d = direction or Direction()
        ci = f"{self.label} {self.ci_low:.2f} to {self.ci_high:.2f}"
        if self.significant and self.sceptical_limit is not None:
            sl = self.sceptical_limit
            beyond = f"RR > {sl:.2f}" if self.estimate > 1 else f"RR < {1 / sl:.2f}"
            text = (
                f"{ci}: to doubt this result one would need a prior that puts 95% of its "
                f"mass on RRs between {1 / sl:.2f} and {sl:.2f} (sceptical limit {sl:.2f}); "
                f"if {beyond} is plausible on prior evidence, the result is credible"
            )
            text += (" -- and it is intrinsically credible (the estimate lies beyond the "
                     "sceptical limit)." if self.intrinsically_credible else ".")
            return text
        al = self.advocacy_limit
        if al is None:  # an estimate of exactly 1: no prior can rescue it
            return f"{ci}: no effect at all is estimated; no advocacy prior exists."
        side = d.benefit if (al > 1) == d.higher else d.harm
        lo, hi = sorted((1.0, al))
        return (
            f"{ci} includes no effect: to conclude {side} one would need prior evidence "
            f"putting 95% of its mass on RRs between {lo:.2f} and {hi:.2f} (advocacy limit "
            f"{al:.2f}; a narrower range inside it also suffices); with independent prior "
            f"evidence supporting RRs in that range the "
            f"result becomes credible evidence of {side}; without it, it is not."
        )

    def to_dict(self) -> dict[str, Any]:
        """Every attribute, JSON-ready."""
        return {
            "label": self.label,
            "source": self.source,
            "estimate": self.estimate,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "z": self.z,
            "p": self.p,
            "significant": self.significant,
            "sceptical_limit": self.sceptical_limit,
            "sceptical_sd": self.sceptical_sd,
            "advocacy_limit": self.advocacy_limit,
            "intrinsically_credible": self.intrinsically_credible,
            "p_intrinsic": self.p_intrinsic,
        }


def analysis_of_credibility(
    ci_low: float, ci_high: float, label: str = "95% interval", source: str = ""
) -> CredibilityRow:
    """Return the sceptical (or advocacy) limit of a 95% interval for a ratio.

    Parameters
    ----------
    ci_low, ci_high : float
        The 95% interval on the ratio scale.
    label, source : str

    Returns
    -------
    CredibilityRow

    Examples
    --------
    >>> row = analysis_of_credibility(1.1, 2.0)
    >>> round(row.sceptical_limit, 3)
    1.23
    """
    if not 0 < ci_low < ci_high < math.inf:
        raise RebayesError(f"interval {ci_low!r} to {ci_high!r}: need 0 < low < high")
    lo, hi = math.log(ci_low), math.log(ci_high)
    theta, se = (lo + hi) / 2, (hi - lo) / (2 * Z95)
    z = theta / se
    p = float(2 * stats.norm.sf(abs(z)))
    p_ic = float(2 * stats.norm.sf(abs(z) / math.sqrt(2)))
    significant = lo * hi > 0
    sl = sd = al = None
    intrinsic = None
    if significant:
        sl_log = sceptical_limit(lo, hi)
        sl, sd = math.exp(abs(sl_log)), abs(sl_log) / Z95
        intrinsic = abs(theta) > abs(sl_log)
    elif theta != 0:
        al = math.exp(advocacy_limit(lo, hi))
    return CredibilityRow(label, source, math.exp(theta), ci_low, ci_high, z, p, significant,
                          sl, sd, al, intrinsic, p_ic)


@dataclass(frozen=True, repr=False)
class Credibility(ResultDisplay):
    """Analysis of credibility of the Bayesian and RevMan intervals of one analysis."""

    rows: tuple[CredibilityRow, ...]
    direction: Direction
    prior: str = ""
    analysis: str = ""

    def sentence(self) -> str:
        """Return the first row's sentence (the Bayesian interval)."""
        return self.rows[0].sentence(self.direction)

    def to_dict(self) -> dict[str, Any]:
        """JSON record: ``{analysis, prior, direction, rows: [{...}]}``."""
        return {
            "analysis": self.analysis,
            "prior": self.prior,
            "direction": self.direction.to_dict(),
            "rows": [{**r.to_dict(), "sentence": r.sentence(self.direction)}
                     for r in self.rows],
        }

    def to_dataframe(self) -> pd.DataFrame:
        """One row per interval (every attribute of :class:`CredibilityRow`)."""
        return pd.DataFrame([r.to_dict() for r in self.rows])

    def __str__(self) -> str:
        t = self.to_dataframe()

        def limit(values: pd.Series) -> list[str]:
            return [f"{v:.2f}" if pd.notna(v) else "-" for v in values]

        table = pd.DataFrame({
            "interval": t["label"],
            "RR (95%)": [f"{e:.2f} ({lo:.2f} to {hi:.2f})"
                         for e, lo, hi in zip(t["estimate"], t["ci_low"], t["ci_high"],
                                              strict=True)],
            "p": [f"{v:.4f}" for v in t["p"]],
            "sceptical": limit(t["sceptical_limit"]),
            "advocacy": limit(t["advocacy_limit"]),
            "p_IC": [f"{v:.3f}" for v in t["p_intrinsic"]],
        })
        lines = [
            f"Analysis of credibility (Matthews 2018; prior {self.prior or '?'})",
            tables.text(table, align="lrrrrr"),
        ]
        lines += [r.sentence(self.direction) for r in self.rows]
        return "\n".join(lines)

    def plot(self) -> Figure:
        """Each interval beside its sceptical or advocacy prior interval."""
        from rebayes.plots.tools import credibility_plot

        return credibility_plot(self)

    def _short(self) -> str:
        return self.sentence()


def credibility(summary: FitSummary, revman: MetaResult | None = None) -> Credibility:
    """Analysis of credibility of a fit's pooled RR (95% CrI) and, if given, RevMan's CI.

    Parameters
    ----------
    summary : FitSummary
        ``rebayes.fit(...).summary()``.
    revman : MetaResult, optional
        ``rebayes.frequentist.pooling.analyze(trials).overall`` (a ratio measure).

    Returns
    -------
    Credibility
    """
    rows = [analysis_of_credibility(summary.pooled_rr.ci_low, summary.pooled_rr.ci_high,
                                    "Bayesian 95% CrI", "bayesian")]
    if revman is not None:
        rows.append(analysis_of_credibility(revman.ci_low, revman.ci_high,
                                            f"RevMan {revman.label} 95% CI", "frequentist"))
    return Credibility(tuple(rows), summary.direction, summary.prior, summary.analysis)
