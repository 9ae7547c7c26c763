"""Analysis of credibility (reverse-Bayes): which prior would overturn, or rescue, the result.

Matthews' Analysis of Credibility (AnCred) turns Bayes' theorem round: instead of asking what
a prior and the data imply, it asks which prior, combined with the data, would just bring the
95% interval to the line of no effect (Matthews RAJ. Beyond 'significance': principles and
practice of the Analysis of Credibility. R Soc Open Sci 2018;5:171047; Held L. The
assessment of intrinsic credibility and a new argument for p < 0.005. R Soc Open Sci
2019;6:181534). It is applied to the **frequentist** (RevMan) 95% confidence interval, the
likelihood summary the method is built for: a Bayesian credible interval already contains a
prior, and a reverse-Bayes prior combined with it would count prior information twice.
Everything is on the log ratio scale with a normal approximation: the interval ``(L, U)``
gives ``l = log L``, ``u = log U``, the estimate ``(l + u) / 2`` and the standard error
``(u - l) / (2 z)``, z = 1.96.

**Significant result** (``l`` and ``u`` on the same side of 0), benefit or harm alike: the
*sceptical prior* is centred on no effect, N(0, sigma_S^2), and just wide enough that the
posterior 95% interval touches 0. Its 95% range ``+-SL`` is Matthews' *scepticism limit*::

    SL = (u - l)^2 / (4 sqrt(u l))            (log scale; ratio scale: exp(SL))

so sigma_S = SL / z. A sceptic whose prior puts 95% of its mass on ratios between 1/exp(SL)
and exp(SL) is not convinced; the result is credible if ratios beyond that are plausible on
prior evidence. A limit beyond any plausible ratio (above 10) means no plausible prior
evidence makes the result credible on its own.

**Non-significant result** (``l < 0 < u``): the *advocacy prior* runs from no effect to the
*advocacy limit* on the side the estimate leans to (benefit or harm), N(AL / 2, (AL / (2
z))^2), and is just strong enough that the posterior 95% interval excludes 0 (Matthews 2018)::

    AL = -(u + l) (u - l)^2 / (2 u l)         (log scale; ratio scale: exp(AL))

Advocacy priors of this form whose upper end lies inside AL make the posterior interval
exclude 0; those reaching beyond it do not. So the result is credible evidence of an effect
in its estimate's direction if prior evidence, independent of these data, supports ratios
between 1 and exp(AL). A limit beyond any plausible ratio (above 10, or below 0.1) arises
when the interval barely includes 1: prior evidence of almost any size on that side would
tip the result.

**Intrinsic credibility**, two criteria that can disagree:

- Matthews (2018): a significant result is intrinsically credible when its estimate lies
  beyond its own sceptical limit, i.e. |Z| > z sqrt((1 + sqrt 5) / 2), p < 0.013;
- Held (2019): when a replication is predicted to agree, p_IC = 2 (1 - Phi(|Z| / sqrt 2)) <
  0.05, i.e. p < 0.0056.

A p value between 0.0056 and 0.013 meets Matthews' criterion and not Held's; the output says
so.
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
from rebayes.frequentist.effects import Z95

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from rebayes.frequentist.pooling import MetaResult

__all__ = [
    "Credibility",
    "CredibilityRow",
    "HELD_P",
    "MATTHEWS_P",
    "PLAUSIBLE_RATIO",
    "advocacy_limit",
    "analysis_of_credibility",
    "credibility",
    "dataset_credibility",
    "sceptical_limit",
]

# Matthews (2018): intrinsically credible when |Z| exceeds z * sqrt(golden ratio).
GOLDEN = (1 + math.sqrt(5)) / 2
#: The p values at which the two intrinsic-credibility criteria change verdict.
MATTHEWS_P = float(2 * stats.norm.sf(Z95 * math.sqrt(GOLDEN)))  # 0.0127 (Matthews: 0.013)
HELD_P = float(2 * stats.norm.sf(Z95 * math.sqrt(2)))  # 0.0056
#: A reverse-Bayes limit beyond this ratio (or below its inverse) is beyond any plausible
#: effect, and is said in words.
PLAUSIBLE_RATIO = 10.0


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
    """The analysis of credibility of one 95% confidence interval of a ratio.

    Attributes
    ----------
    label, source : str
        What the interval is (``"RevMan M-H, Fixed OR 95% CI"``) and where it comes from
        (``"frequentist"``).
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
        Held's (2019) p_IC = 2 (1 - Phi(|Z| / sqrt 2)); intrinsically credible below 0.05.
    measure : str
        The ratio (``"OR"`` or ``"RR"``) the interval is of.
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
    measure: str = "RR"

    @property
    def held_credible(self) -> bool:
        """Held (2019): p_IC < 0.05 (p < 0.0056)."""
        return self.p_intrinsic < 0.05

    @property
    def matthews_credible(self) -> bool:
        """Matthews (2018): the estimate lies beyond its sceptical limit (p < 0.013)."""
        return bool(self.intrinsically_credible)

    @property
    def criteria_agree(self) -> bool:
        """Whether Matthews' and Held's intrinsic-credibility criteria give the same verdict."""
        return self.matthews_credible == self.held_credible

    def _side(self, direction: Direction) -> str:
        """``"benefit (OR < 1)"`` or ``"harm (OR > 1)"``: the side the estimate lies on."""
        above = self.estimate > 1
        benefit = above == direction.higher_is_better
        sign = ">" if above else "<"
        relation = f"{self.measure} {sign} 1"
        if not direction.declared:
            return relation
        return f"{'benefit' if benefit else 'harm'} ({relation})"

    def limit_sentence(self, direction: Direction | None = None) -> str:
        """Return what a sceptic (or an advocate) would have to believe, in one sentence."""
        d = direction or Direction()
        m = self.measure
        ci = f"{self.label} {self.estimate:.2f} ({self.ci_low:.2f} to {self.ci_high:.2f})"
        side = self._side(d)
        if self.significant and self.sceptical_limit is not None:
            sl = self.sceptical_limit
            if sl > PLAUSIBLE_RATIO:
                return (
                    f"{ci} shows {side}, but no plausible prior evidence makes it credible: "
                    f"the sceptical limit lies beyond any plausible {m} (above "
                    f"{PLAUSIBLE_RATIO:g}), so any sceptic doubting {m}s beyond "
                    f"{PLAUSIBLE_RATIO:g} (or below {1 / PLAUSIBLE_RATIO:g}) is not convinced."
                )
            beyond = f"{m} > {sl:.2f}" if self.estimate > 1 else f"{m} < {1 / sl:.2f}"
            return (
                f"{ci} shows {side}: to doubt it one would need a prior that puts 95% of its "
                f"mass on {m}s between {1 / sl:.2f} and {sl:.2f} (sceptical limit {sl:.2f}); if "
                f"{beyond} is plausible on prior evidence, the result is credible."
            )
        al = self.advocacy_limit
        if al is None:  # an estimate of exactly 1: no prior can rescue it
            return f"{ci}: no effect at all is estimated; no advocacy prior exists."
        if max(al, 1 / al) > PLAUSIBLE_RATIO:
            return (
                f"{ci} includes no effect and leans to {side}, with one end of the interval "
                f"close to 1: the advocacy limit lies beyond any plausible {m} (beyond "
                f"{PLAUSIBLE_RATIO:g} or {1 / PLAUSIBLE_RATIO:g}), so prior evidence of almost "
                "any size on that side, independent of these data, would make it credible "
                f"evidence of {side.split(' (')[0]}; without such evidence it is not."
            )
        lo, hi = sorted((1.0, al))
        return (
            f"{ci} includes no effect and leans to {side}: to conclude {side.split(' (')[0]} "
            f"one would need prior evidence, independent of these data, putting 95% of its "
            f"mass on {m}s between {lo:.2f} and {hi:.2f} (advocacy limit {al:.2f}; a narrower "
            "range inside it also suffices); without it the result is not credible evidence "
            f"of {side.split(' (')[0]}."
        )

    def criteria_sentence(self) -> str:
        """Return both intrinsic-credibility criteria's verdicts, and whether they agree."""

        def verdict(ok: bool) -> str:
            return "met" if ok else "not met"

        text = (
            f"Intrinsic credibility (p = {self.p:.2g}): Matthews' criterion (2018: the estimate "
            f"beyond its own sceptical limit, i.e. p < 0.013) is "
            f"{verdict(self.matthews_credible)}; Held's (2019: p_IC < 0.05, i.e. p < 0.0056; "
            f"here p_IC = {self.p_intrinsic:.3f}) is {verdict(self.held_credible)}"
        )
        if not self.criteria_agree:
            return text + (": they disagree, as they do for every p between 0.0056 and "
                           "0.013; the result is intrinsically credible by the weaker "
                           "criterion only.")
        return text + "."

    def sentence(self, direction: Direction | None = None) -> str:
        """Return the limit's sentence, then the intrinsic-credibility sentence."""
        return f"{self.limit_sentence(direction)} {self.criteria_sentence()}"

    def to_dict(self) -> dict[str, Any]:
        """Every attribute, JSON-ready, with both criteria's verdicts."""
        return {
            "label": self.label,
            "source": self.source,
            "measure": self.measure,
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
            "matthews_credible": self.matthews_credible,
            "held_credible": self.held_credible,
            "criteria_agree": self.criteria_agree,
        }


def analysis_of_credibility(
    ci_low: float, ci_high: float, label: str = "95% interval", source: str = "",
    measure: str = "RR",
) -> CredibilityRow:
    """Return the sceptical (or advocacy) limit of a 95% confidence interval for a ratio.

    Parameters
    ----------
    ci_low, ci_high : float
        The 95% interval on the ratio scale.
    label, source : str
    measure : str
        The ratio's name in sentences (``"OR"``, ``"RR"``).

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
                          sl, sd, al, intrinsic, p_ic, measure)


@dataclass(frozen=True, repr=False)
class Credibility(ResultDisplay):
    """Analysis of credibility of a meta-analysis's frequentist (RevMan) 95% CI.

    Attributes
    ----------
    rows : tuple of CredibilityRow
        One per interval (the dataset's declared RevMan analysis).
    direction : Direction
    analysis : str
    """

    rows: tuple[CredibilityRow, ...]
    direction: Direction
    analysis: str = ""

    def summary(self) -> str:
        """Return the first row's sentences (limit, then both intrinsic criteria)."""
        return self.rows[0].sentence(self.direction)

    def to_dict(self) -> dict[str, Any]:
        """JSON record: ``{analysis, direction, method, rows: [{...}]}``."""
        return {
            "analysis": self.analysis,
            "direction": self.direction.to_dict(),
            "method": "Matthews 2018 (R Soc Open Sci 5:171047) and Held 2019 (R Soc Open Sci "
                      "6:181534), on the frequentist 95% CI",
            "rows": [{**r.to_dict(), "sentence": r.sentence(self.direction)}
                     for r in self.rows],
        }

    def to_dataframe(self) -> pd.DataFrame:
        """One row per interval (every attribute of :class:`CredibilityRow`)."""
        return pd.DataFrame([r.to_dict() for r in self.rows])

    def report_frame(self) -> pd.DataFrame:
        """Return the table the report shows: limits in words where beyond plausibility."""
        frame = self.to_dataframe()[["label", "estimate", "ci_low", "ci_high", "p",
                                     "sceptical_limit", "advocacy_limit", "p_intrinsic",
                                     "matthews_credible", "held_credible"]]
        for column in ("sceptical_limit", "advocacy_limit"):
            frame[column] = [_limit_text(v) for v in frame[column]]
        return frame

    def __str__(self) -> str:
        t = self.to_dataframe()
        table = pd.DataFrame({
            "interval": t["label"],
            "ratio (95% CI)": [f"{e:.2f} ({lo:.2f} to {hi:.2f})"
                               for e, lo, hi in zip(t["estimate"], t["ci_low"], t["ci_high"],
                                                    strict=True)],
            "p": [f"{v:.4f}" for v in t["p"]],
            "sceptical": [_limit_text(v) for v in t["sceptical_limit"]],
            "advocacy": [_limit_text(v) for v in t["advocacy_limit"]],
            "p_IC": [f"{v:.3f}" for v in t["p_intrinsic"]],
            "Matthews": ["yes" if v else "no" for v in t["matthews_credible"]],
            "Held": ["yes" if v else "no" for v in t["held_credible"]],
        })
        lines = [
            "Analysis of credibility of the frequentist 95% CI (Matthews 2018; Held 2019)",
            tables.text(table, align="lrrrrrll"),
        ]
        lines += [r.sentence(self.direction) for r in self.rows]
        return "\n".join(lines)

    def plot(self) -> Figure:
        """Each interval beside its sceptical or advocacy prior interval."""
        from rebayes.plots.tools import credibility_plot

        return credibility_plot(self.to_dataframe(), self.direction, PLAUSIBLE_RATIO)

    def _short(self) -> str:
        return self.rows[0].limit_sentence(self.direction)


def _limit_text(value: Any) -> str:
    """Format a limit for a table: ``1.23``; ``-`` if absent; ``> 10``, ``< 0.1`` if implausible."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if value > PLAUSIBLE_RATIO:
        return f"> {PLAUSIBLE_RATIO:g}"
    if value < 1 / PLAUSIBLE_RATIO:
        return f"< {1 / PLAUSIBLE_RATIO:g}"
    return f"{value:.2f}"


def credibility(
    revman: MetaResult, direction: Direction | None = None, analysis: str = ""
) -> Credibility:
    """Analysis of credibility of a RevMan analysis's 95% CI (a ratio measure).

    Parameters
    ----------
    revman : MetaResult
        ``rebayes.frequentist.pooling.analyze(trials, ci_level=0.95).overall``: its 95% CI is
        the likelihood summary the reverse-Bayes prior is combined with.
    direction : Direction, optional
        Which side of 1 is benefit (default: higher is better, undeclared).
    analysis : str
        A label carried to the output.

    Returns
    -------
    Credibility
    """
    if revman.measure == "RD":
        raise RebayesError("the analysis of credibility needs a ratio (RR or OR), not the RD")
    measure = "OR" if revman.measure in ("OR", "PETO_OR") else "RR"
    label = f"RevMan {revman.label} {measure} 95% CI"
    row = analysis_of_credibility(revman.ci_low, revman.ci_high, label, "frequentist", measure)
    return Credibility((row,), direction or Direction(), analysis)


def dataset_credibility(trials: pd.DataFrame, direction: Direction | None = None) -> Credibility:
    """Analysis of credibility of a dataset's published RevMan analysis (its 95% CI).

    The analysis ``dataset.toml`` declares (method, model; its measure, or the OR where it
    declares the risk difference, which has no log scale), at the 95% level whatever the
    dataset's ``ci_level``.

    Parameters
    ----------
    trials : pandas.DataFrame
        A table from :func:`rebayes.load_trials`.
    direction : Direction, optional
        Default: the dataset's.

    Returns
    -------
    Credibility
    """
    from rebayes.data.schema import schema_of
    from rebayes.data.trial_table import declared_schema
    from rebayes.frequentist.pooling import analyze

    schema = schema_of(trials)
    measure = "OR" if schema.measure == "RD" else schema.measure
    revman = analyze(trials, measure=measure, ci_level=0.95).overall  # type: ignore[arg-type]
    direction = direction or declared_schema(trials, "dataset_credibility").direction
    return credibility(revman, direction, "overall")
