"""Frequentist meta-analysis of 2x2 tables with Review Manager 5.3's own formulas.

Reference: Deeks JJ, Higgins JPT. *Statistical algorithms in Review Manager 5* (2010), and
the Cochrane Handbook 5.1, section 9.4. Conventions RevMan follows, and this module with it:

- A study with a zero cell gets 0.5 added to all four cells, for the study's own estimate *and*
  for the Mantel-Haenszel sums (RevMan does not spare MH from the correction, although MH does
  not need it; Ades et al. 2025, Res Synth Methods, criticise exactly this).
- Studies with no events in either arm are left out of RR and OR pooling; for the OR also
  those with every participant an event in both arms.
- Cochran's Q for a Mantel-Haenszel analysis is centred on the MH estimate, with inverse-variance
  study weights; DerSimonian-Laird's tau^2 in "M-H, Random" uses that Q. metafor centres Q on
  the inverse-variance estimate; ``heterogeneity="iv"`` gives its numbers.
- I^2 = max(0, (Q - df) / Q); two-sided Z tests; 95% CI with z = 1.959964.
- Test for subgroup differences: each subgroup pooled alone, then Q between the subgroup
  estimates with weights 1 / SE^2, df = J - 1.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from rebayes.data import COUNT_COLUMNS, trial_totals
from rebayes.errors import RebayesError

__all__ = [
    "MetaResult",
    "SubgroupAnalysis",
    "SubgroupTest",
    "Z95",
    "analyze",
    "difference_test",
    "meta_analysis",
    "study_effects",
    "subgroup_difference_test",
]

Measure = Literal["RR", "OR"]
Method = Literal["MH", "IV", "DL"]
Event = Literal["live", "no_live"]

Z95 = 1.959964  # RevMan's 97.5% normal quantile
MEASURES = ("RR", "OR")
METHODS = ("MH", "IV", "DL")
EVENTS = ("live", "no_live")


class AnalysisError(RebayesError):
    """An analysis request that cannot be carried out (unknown option, empty selection)."""


@dataclass(frozen=True)
class MetaResult:
    """One pooled estimate with its heterogeneity statistics (a RevMan 'Total' row).

    Attributes
    ----------
    measure, method : str
        ``RR``/``OR`` and ``MH``/``IV``/``DL``.
    estimate, ci_low, ci_high : float
        Pooled ratio and its 95% CI (ratio scale).
    log_estimate, se : float
        Pooled log ratio and its standard error.
    z, p : float
        Z test of no effect and its two-sided p value.
    q, df, p_q, i2, tau2 : float
        Cochran's Q, its degrees of freedom and p value, I^2 (percent), DL tau^2 (0 for
        fixed-effect methods, reported anyway as RevMan's random-effects tau^2 would be).
    k : int
        Studies contributing (double-zero studies excluded).
    events_treat, n_treat, events_control, n_control : int
        Totals over the contributing studies.
    studies : pandas.DataFrame
        Per-study rows: counts, ``yi`` (log ratio), ``vi`` (its variance), ratio and CI,
        ``weight`` (percent, as in RevMan's forest plot).
    excluded : tuple of str
        Studies left out (no events in both arms, or all events in both for the OR).
    """

    measure: str
    method: str
    estimate: float
    ci_low: float
    ci_high: float
    log_estimate: float
    se: float
    z: float
    p: float
    q: float
    df: int
    p_q: float
    i2: float
    tau2: float
    k: int
    events_treat: int
    n_treat: int
    events_control: int
    n_control: int
    studies: pd.DataFrame = field(repr=False, compare=False)
    excluded: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, float | int | str | list[str]]:
        """Return the JSON-ready summary (no per-study table)."""
        keys = (
            "estimate ci_low ci_high z p q df p_q i2 tau2 k "
            "events_treat n_treat events_control n_control"
        ).split()
        out: dict[str, float | int | str | list[str]] = {
            "measure": self.measure,
            "method": self.method,
        }
        out.update({key: _plain(getattr(self, key)) for key in keys})
        out["excluded"] = list(self.excluded)
        return out

    def __str__(self) -> str:
        return (
            f"{self.method} {self.measure} {self.estimate:.2f} "
            f"[{self.ci_low:.2f}, {self.ci_high:.2f}]  Z={abs(self.z):.2f} (P={_fmt_p(self.p)})  "
            f"k={self.k}  {self.events_treat}/{self.n_treat} vs "
            f"{self.events_control}/{self.n_control}  "
            f"Chi2={self.q:.2f}, df={self.df} (P={_fmt_p(self.p_q)}); I2={self.i2:.0f}%"
            + (f"; Tau2={self.tau2:.2f}" if self.method == "DL" else "")
            + (f"  (left out, not estimable: {', '.join(self.excluded)})" if self.excluded
               else "")
        )


@dataclass(frozen=True)
class SubgroupTest:
    """Test for subgroup differences (RevMan: 'Test for subgroup differences')."""

    q: float
    df: int
    p: float
    i2: float

    def to_dict(self) -> dict[str, float | int]:
        """Return the JSON-ready fields."""
        return {"q": self.q, "df": self.df, "p": self.p, "i2": self.i2}

    def __str__(self) -> str:
        return (
            f"Test for subgroup differences: Chi2={self.q:.2f}, df={self.df} "
            f"(P={_fmt_p(self.p)}), I2={self.i2:.1f}%"
        )


@dataclass(frozen=True)
class SubgroupAnalysis:
    """An overall estimate, optional subgroup estimates and the test between them."""

    overall: MetaResult
    by: str | None = None
    subgroups: Mapping[str, MetaResult] = field(default_factory=dict)
    test: SubgroupTest | None = None
    left_out: tuple[str, ...] = ()
    description: str = ""

    def to_dict(self) -> dict[str, object]:
        """JSON layout: ``overall``, ``subgroups`` and ``test_for_subgroup_differences``."""
        out: dict[str, object] = {
            "description": self.description,
            "overall": self.overall.to_dict(),
            "subgroups": {name: res.to_dict() for name, res in self.subgroups.items()},
        }
        if self.by is not None:
            out["by"] = self.by
            out["test_for_subgroup_differences"] = self.test.to_dict() if self.test else None
            out["left_out"] = list(self.left_out)
        return out

    def __str__(self) -> str:
        lines = [self.description] if self.description else []
        for name, res in self.subgroups.items():
            lines.append(f"  {name}: {res}")
        lines.append(f"  Total: {self.overall}")
        if self.test is not None:
            lines.append(f"  {self.test}")
        if self.left_out:
            lines.append(f"  Left out (no {self.by} label): {', '.join(self.left_out)}")
        return "\n".join(lines)


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _fmt_p(p: float) -> str:
    return "<0.00001" if p < 1e-5 else f"{p:.2f}" if p >= 0.01 else f"{p:.4f}"


def _counts(studies: pd.DataFrame, event: Event) -> pd.DataFrame:
    if event not in EVENTS:
        raise AnalysisError(f"unknown event direction {event!r} (use one of {', '.join(EVENTS)})")
    table = studies[["study", *COUNT_COLUMNS]].copy()
    if event == "no_live":
        # Counting the complement swaps events and non-events in both arms.
        table["events_treat"] = table["n_treat"] - table["events_treat"]
        table["events_control"] = table["n_control"] - table["events_control"]
    return table.reset_index(drop=True)


def study_effects(
    studies: pd.DataFrame, measure: Measure = "RR", event: Event = "live"
) -> pd.DataFrame:
    """Per-study log ratio and variance, as RevMan computes them for a forest plot.

    Parameters
    ----------
    studies : pandas.DataFrame
        Rows to treat as studies (one per trial, or per stratum in a stratum-split analysis).
        Use :func:`rebayes.trial_totals` first to get one row per trial.
    measure : {"RR", "OR"}
    event : {"live", "no_live"}
        Count live births (the events column) or their complement.

    Returns
    -------
    pandas.DataFrame
        Columns ``study, events_treat, n_treat, events_control, n_control, a, b, c, d,
        corrected, estimable, yi, vi``: ``a..d`` are the (possibly 0.5-corrected) cells,
        ``yi`` the log RR or log OR, ``vi`` its variance; ``estimable`` is False for the
        studies RevMan leaves out of pooling (``yi``/``vi`` are NaN there).

    Examples
    --------
    Stephenson 2010, 16/23 vs 15/24, as the trial reports it (OR 1.37):

    >>> import pandas as pd
    >>> row = pd.DataFrame({"study": ["S"], "events_treat": [16], "n_treat": [23],
    ...                     "events_control": [15], "n_control": [24]})
    >>> round(float(np.exp(study_effects(row, "OR").yi[0])), 2)
    1.37
    """
    if measure not in MEASURES:
        raise AnalysisError(f"unknown measure {measure!r} (use one of {', '.join(MEASURES)})")
    table = _counts(studies, event)
    a = table["events_treat"].to_numpy(float)
    b = (table["n_treat"] - table["events_treat"]).to_numpy(float)
    c = table["events_control"].to_numpy(float)
    d = (table["n_control"] - table["events_control"]).to_numpy(float)
    no_events = (a == 0) & (c == 0)
    all_events = (b == 0) & (d == 0)
    estimable = ~no_events
    if measure == "OR":
        estimable &= ~all_events
    corrected = estimable & ((a == 0) | (b == 0) | (c == 0) | (d == 0))
    add = np.where(corrected, 0.5, 0.0)
    a, b, c, d = a + add, b + add, c + add, d + add
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "RR":
            yi = np.log((a / (a + b)) / (c / (c + d)))
            vi = 1 / a - 1 / (a + b) + 1 / c - 1 / (c + d)
        else:
            yi = np.log((a * d) / (b * c))
            vi = 1 / a + 1 / b + 1 / c + 1 / d
    table = table.assign(
        a=a,
        b=b,
        c=c,
        d=d,
        corrected=corrected,
        estimable=estimable,
        yi=np.where(estimable, yi, np.nan),
        vi=np.where(estimable, vi, np.nan),
    )
    return table


def _mantel_haenszel(eff: pd.DataFrame, measure: Measure) -> tuple[float, float, np.ndarray]:
    """Return (log estimate, variance, study weights) for the MH method."""
    a, b, c, d = (eff[col].to_numpy() for col in "abcd")
    n1, n2 = a + b, c + d
    n = n1 + n2
    if measure == "RR":
        # Greenland & Robins (1985) variance of the log MH risk ratio.
        r = a * n2 / n
        s = c * n1 / n
        log_est = np.log(r.sum() / s.sum())
        var = ((n1 * n2 * (a + c) - a * c * n) / n**2).sum() / (r.sum() * s.sum())
        weights = s
    else:
        # Robins, Breslow & Greenland (1986) variance of the log MH odds ratio.
        r = a * d / n
        s = b * c / n
        big_p = (a + d) / n
        big_q = (b + c) / n
        log_est = np.log(r.sum() / s.sum())
        var = (
            (big_p * r).sum() / (2 * r.sum() ** 2)
            + (big_p * s + big_q * r).sum() / (2 * r.sum() * s.sum())
            + (big_q * s).sum() / (2 * s.sum() ** 2)
        )
        weights = s
    return float(log_est), float(var), weights


def meta_analysis(
    studies: pd.DataFrame,
    method: Method = "MH",
    measure: Measure = "RR",
    event: Event = "live",
    heterogeneity: Literal["revman", "iv"] = "revman",
) -> MetaResult:
    """Pool 2x2 tables with RevMan 5.3's Mantel-Haenszel, inverse-variance or DL method.

    Parameters
    ----------
    studies : pandas.DataFrame
        One row per study with ``study`` and the four count columns.
    method : {"MH", "IV", "DL"}
        ``MH`` fixed effect (RevMan's default for dichotomous data), ``IV`` inverse-variance
        fixed effect, ``DL`` DerSimonian-Laird random effects.
    measure : {"RR", "OR"}
    event : {"live", "no_live"}
    heterogeneity : {"revman", "iv"}
        Where Cochran's Q is centred. ``revman``: on the method's own fixed-effect estimate
        (MH for ``MH`` and ``DL``, as RevMan's "M-H, Random"; IV for ``IV``). ``iv``: always
        on the inverse-variance estimate, as metafor's ``rma(method="DL")``.

    Returns
    -------
    MetaResult
    """
    if method not in METHODS:
        raise AnalysisError(f"unknown method {method!r} (use one of {', '.join(METHODS)})")
    eff = study_effects(studies, measure, event)
    used = eff[eff["estimable"]].reset_index(drop=True)
    excluded = tuple(eff.loc[~eff["estimable"], "study"])
    k = len(used)
    if k == 0:
        raise AnalysisError("no estimable study (every study has no events in either arm)")
    yi, vi = used["yi"].to_numpy(), used["vi"].to_numpy()
    w_iv = 1 / vi
    log_iv = float((w_iv * yi).sum() / w_iv.sum())
    if method == "IV":
        log_fixed, var_fixed, weights = log_iv, float(1 / w_iv.sum()), w_iv
    else:
        log_fixed, var_fixed, weights = _mantel_haenszel(used, measure)
    centre = log_iv if (heterogeneity == "iv" or method == "IV") else log_fixed
    q = float((w_iv * (yi - centre) ** 2).sum())
    df = k - 1
    i2 = _i_squared(q, df)
    c_dl = w_iv.sum() - (w_iv**2).sum() / w_iv.sum()
    tau2 = max(0.0, (q - df) / c_dl) if df > 0 else 0.0
    if method == "DL":
        weights = 1 / (vi + tau2)
        log_est = float((weights * yi).sum() / weights.sum())
        var = float(1 / weights.sum())
    else:
        log_est, var = log_fixed, var_fixed
    se = var**0.5
    z = log_est / se
    studies_out = used.assign(
        ratio=np.exp(yi),
        ci_low=np.exp(yi - Z95 * np.sqrt(vi)),
        ci_high=np.exp(yi + Z95 * np.sqrt(vi)),
        weight=100 * weights / weights.sum(),
    )
    counted = eff[eff["estimable"]]
    return MetaResult(
        measure=measure,
        method=method,
        estimate=float(np.exp(log_est)),
        ci_low=float(np.exp(log_est - Z95 * se)),
        ci_high=float(np.exp(log_est + Z95 * se)),
        log_estimate=log_est,
        se=se,
        z=float(z),
        p=float(2 * stats.norm.sf(abs(z))),
        q=q,
        df=df,
        p_q=float(stats.chi2.sf(q, df)) if df > 0 else 1.0,
        i2=i2,
        tau2=tau2,
        k=k,
        events_treat=int(counted["events_treat"].sum()),
        n_treat=int(counted["n_treat"].sum()),
        events_control=int(counted["events_control"].sum()),
        n_control=int(counted["n_control"].sum()),
        studies=studies_out,
        excluded=excluded,
    )


def _i_squared(q: float, df: int) -> float:
    """I^2 = max(0, (Q - df) / Q) in percent; 0 with no degrees of freedom.

    One study has no heterogeneity to measure (RevMan: "Not applicable"); without the df
    guard a round-off Q of 1e-30 would give I2 = 100%.
    """
    return max(0.0, (q - df) / q) * 100 if q > 0 and df > 0 else 0.0


def difference_test(
    log_estimates: Sequence[float], standard_errors: Sequence[float]
) -> SubgroupTest:
    """Q test between independent log-scale estimates, each weighted by 1 / SE^2 (RevMan 5).

    Parameters
    ----------
    log_estimates, standard_errors : sequence of float
        One pair per subgroup (at least two).

    Returns
    -------
    SubgroupTest
    """
    if len(log_estimates) < 2:
        raise AnalysisError("a test for subgroup differences needs at least two subgroups")
    y = np.asarray(log_estimates, dtype=float)
    w = 1 / np.asarray(standard_errors, dtype=float) ** 2
    mean = (w * y).sum() / w.sum()
    q = float((w * (y - mean) ** 2).sum())
    df = len(y) - 1
    return SubgroupTest(q=q, df=df, p=float(stats.chi2.sf(q, df)), i2=_i_squared(q, df))


def subgroup_difference_test(results: Mapping[str, MetaResult]) -> SubgroupTest:
    """Test for subgroup differences between separately pooled subgroups (RevMan 5).

    Parameters
    ----------
    results : mapping of str to MetaResult
        The separately pooled subgroups (at least two).

    Returns
    -------
    SubgroupTest
        :func:`difference_test` on the subgroups' log estimates and standard errors.
    """
    return difference_test(
        [r.log_estimate for r in results.values()], [r.se for r in results.values()]
    )


def _select(trials: pd.DataFrame, where: Mapping[str, str]) -> pd.DataFrame:
    selected = trials
    for column, value in where.items():
        if column not in trials.columns:
            raise AnalysisError(
                f"--where {column}={value}: no column {column!r} "
                f"(columns: {', '.join(trials.columns)})"
            )
        known = sorted(map(str, trials[column].dropna().unique()))
        if value not in known:
            raise AnalysisError(
                f"--where {column}={value}: unknown value (values: {', '.join(known)})"
            )
        selected = selected[selected[column].astype(str) == value]
    return selected


def analyze(
    trials: pd.DataFrame,
    by: str | None = None,
    where: Mapping[str, str] | None = None,
    method: Method = "MH",
    measure: Measure = "RR",
    event: Event = "live",
    heterogeneity: Literal["revman", "iv"] = "revman",
) -> SubgroupAnalysis:
    """Run a RevMan-style analysis on a trial table: overall, or split into subgroups.

    A trial's stratum rows are summed into one study unless the analysis splits or filters by
    ``stratum``, as a RevMan review enters one trial once per comparison; with
    ``by="stratum"`` the ``mixed`` rows (no primary/secondary split published) are left out
    and listed in ``left_out``.

    Parameters
    ----------
    trials : pandas.DataFrame
        A table from :func:`rebayes.load_trials`.
    by : str, optional
        Column defining subgroups (``stratum``, ``timing``, ``placebo``, or any covariate).
    where : mapping, optional
        ``{column: value}`` filters applied first (e.g. ``{"stratum": "primary"}``).
    method, measure, event, heterogeneity
        As in :func:`meta_analysis`.

    Returns
    -------
    SubgroupAnalysis
    """
    where = dict(where or {})
    uses_stratum = by == "stratum" or "stratum" in where
    table = trials if uses_stratum else trial_totals(trials)
    table = _select(table, where)
    left_out: tuple[str, ...] = ()
    if by is not None:
        if by not in table.columns:
            raise AnalysisError(
                f"--by {by}: no column {by!r} (columns: {', '.join(trials.columns)})"
            )
        unlabeled = table[by].isna() | ((table[by] == "mixed") if by == "stratum" else False)
        left_out = tuple(table.loc[unlabeled, "study"])
        table = table[~unlabeled]
    if table.empty:
        raise AnalysisError(f"no trials left after selecting {where or 'all'} by {by}")
    overall = meta_analysis(table, method, measure, event, heterogeneity)
    subgroups: dict[str, MetaResult] = {}
    test = None
    if by is not None:
        for level, rows in table.groupby(by, sort=True):
            subgroups[str(level)] = meta_analysis(rows, method, measure, event, heterogeneity)
        if len(subgroups) >= 2:
            test = subgroup_difference_test(subgroups)
    scope = ", ".join(f"{k}={v}" for k, v in where.items()) or "all trials"
    description = f"{method} {measure} of {'no ' if event == 'no_live' else ''}live birth, {scope}"
    if by is not None:
        description += f", by {by}"
    return SubgroupAnalysis(overall, by, subgroups, test, left_out, description)
