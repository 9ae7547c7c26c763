"""Frequentist meta-analysis of 2x2 tables with Review Manager 5's own formulas.

Reference: Deeks JJ, Higgins JPT. *Statistical algorithms in Review Manager 5* (2010), and
the Cochrane Handbook 5.1, section 9.4. Every binary analysis RevMan can store is here:
risk ratio (RR), odds ratio (OR) and risk difference (RD) by Mantel-Haenszel (MH) or inverse
variance (IV), the Peto odds ratio (PETO), each fixed effect or DerSimonian-Laird random
effects (not Peto, which RevMan offers fixed only). Conventions RevMan follows, and this
module with it:

- A study with a zero cell gets 0.5 added to all four cells, for the study's own estimate *and*
  for the Mantel-Haenszel sums (RevMan does not spare MH from the correction, although MH does
  not need it; Ades et al. 2025, Res Synth Methods, criticise exactly this). For the RD the
  correction only enters variances and weights; the study's RD is the raw one (as R's meta,
  which follows RevMan). Peto's method needs no correction.
- Studies with no events in either arm are left out of RR and OR pooling; for the OR (and Peto
  OR) also those with every participant an event in both arms. A study whose every participant
  had the event in both arms stays in an RR analysis: its RR is 1 up to the correction (both
  arms' risks are 1). The RD keeps every study.
- Cochran's Q for a Mantel-Haenszel analysis is centred on the MH estimate, with inverse-variance
  study weights; DerSimonian-Laird's tau^2 in "M-H, Random" uses that Q. "IV, Random" centres Q
  on the inverse-variance estimate (as metafor does). ``heterogeneity="iv"`` forces the latter.
  Peto's Q is sum(V_i (y_i - y_Peto)^2), the same form with the Peto weights V_i.
- I^2 = max(0, (Q - df) / Q); two-sided Z tests; confidence intervals with the normal
  quantile of the CI level (RevMan's 1.959964 at 95%).
- Test for subgroup differences: each subgroup pooled alone, then Q between the subgroup
  estimates with weights 1 / SE^2, df = J - 1, over the subgroups that have an estimate.

RevMan Web's random-effects options (January 2025: REML or Paule-Mandel tau^2, the Q-profile
interval for tau^2, Hartung-Knapp-Sidik-Jonkman intervals, prediction intervals, I^2 from
tau^2) live in :mod:`rebayes.frequentist.heterogeneity`; ``tau2_method`` and ``hksj`` choose
them. DerSimonian-Laird with RevMan 5's Q stays the default.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

# scipy.special's ufuncs are what scipy.stats' norm and chi2 evaluate (the same numbers), without
# loading scipy.stats (~0.3 s), so `rebayes frequentist` stays fast.
from scipy.special import chdtrc, ndtr

from rebayes.data.direction import Direction
from rebayes.data.multiarm import (
    SplitError,
    shared_control_note,
    shared_controls,
    split_shared_controls,
)
from rebayes.data.schema import DatasetSchema, schema_of
from rebayes.data.trials import row_labels, trial_totals
from rebayes.display import ResultDisplay
from rebayes.errors import AnalysisError
from rebayes.frequentist.effects import (
    MEASURES,
    Event,
    Measure,
    study_effects,
    z_quantile,
)
from rebayes.frequentist.heterogeneity import (
    TAU2_METHODS,
    RandomEffects,
    Tau2Method,
    random_effects,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from rebayes.plots.forest import SummaryRow

__all__ = [
    "MetaResult",
    "SubgroupAnalysis",
    "SubgroupTest",
    "analyze",
    "difference_test",
    "meta_analysis",
    "subgroup_difference_test",
]

Method = Literal["MH", "IV", "PETO", "DL"]
Model = Literal["fixed", "random"]

# "DL" is kept as the name of RevMan's "M-H, Random" (MH method, random-effects model).
METHODS = ("MH", "IV", "PETO", "DL")
MODELS = ("fixed", "random")
RATIO_MEASURES = ("RR", "OR", "PETO_OR")
METHOD_LABELS = {"MH": "M-H", "IV": "IV", "PETO": "Peto"}


@dataclass(frozen=True, repr=False)
class MetaResult(ResultDisplay):
    """One pooled estimate with its heterogeneity statistics (a RevMan 'Total' row).

    Attributes
    ----------
    measure, method, model : str
        ``RR``/``OR``/``RD``/``PETO_OR``; ``MH``/``IV``/``PETO`` (``DL`` when asked for by
        that name: RevMan's "M-H, Random"); ``fixed``/``random``.
    estimate, ci_low, ci_high : float
        Pooled effect and its CI on the natural scale (ratio, or difference for the RD).
    log_estimate, se : float
        Pooled effect on the analysis scale (log ratio; the difference itself for the RD) and
        its standard error.
    z, p : float
        Z test of no effect and its two-sided p value.
    q, df, p_q, i2, tau2 : float
        Cochran's Q, its degrees of freedom and p value, I^2 (percent), DL tau^2 (computed
        for fixed-effect methods too, as RevMan's random-effects tau^2 would be; 0 for Peto).
        Under a REML or Paule-Mandel tau^2, ``tau2`` is that estimate and ``i2`` is computed
        from it (RevMan Web); Q stays Cochran's.
    k : int
        Studies contributing (non-estimable studies excluded).
    events_treat, n_treat, events_control, n_control : int
        Totals over the contributing studies.
    studies : pandas.DataFrame
        Per-study rows: counts, ``yi`` (analysis scale), ``vi`` (its variance), effect and CI,
        ``weight`` (percent, as in RevMan's forest plot).
    excluded : tuple of str
        Studies left out (not estimable).
    ci_level : float
        Confidence level of every interval.
    tau2_method : str
        ``DL``, ``REML`` or ``PM`` (random effects).
    hksj : bool
        Whether the CI and test are Hartung-Knapp-Sidik-Jonkman's (then ``z`` is a t value).
    test_df : int or None
        Degrees of freedom of the t test under HKSJ (None: a Z test).
    tau2_ci_low, tau2_ci_high : float
        Q-profile interval of tau^2 (random effects; NaN otherwise).
    pi_low, pi_high : float
        Prediction interval on the natural scale (random effects, t on k - 1 df; NaN
        otherwise).

    ``repr`` is one line (``MetaResult(RR M-H fixed, k=13: 0.64 [0.60, 0.69], I²=92%)``),
    :meth:`to_dataframe` RevMan's analysis table and :meth:`forest` its forest plot.
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
    model: str = "fixed"
    ci_level: float = 0.95
    tau2_method: str = "DL"
    hksj: bool = False
    test_df: int | None = None
    tau2_ci_low: float = float("nan")
    tau2_ci_high: float = float("nan")
    pi_low: float = float("nan")
    pi_high: float = float("nan")

    @property
    def label(self) -> str:
        """RevMan's name of the analysis, e.g. ``"M-H, Random"`` (``"IV, Random, REML, HKSJ"``)."""
        method = "MH" if self.method == "DL" else self.method
        options = [self.tau2_method] if self.tau2_method != "DL" else []
        options += ["HKSJ"] if self.hksj else []
        return ", ".join([METHOD_LABELS[method], self.model.capitalize(), *options])

    @property
    def test_name(self) -> str:
        """``"Z"``, or ``"t"`` under HKSJ."""
        return "Z" if self.test_df is None else "t"

    def to_dict(self) -> dict[str, float | int | str | list[str]]:
        """Return the JSON-ready summary (no per-study table)."""
        keys = (
            "estimate ci_low ci_high z p q df p_q i2 tau2 k "
            "events_treat n_treat events_control n_control ci_level"
        ).split()
        out: dict[str, Any] = {
            "measure": self.measure,
            "method": self.method,
            "model": self.model,
        }
        out.update({key: _python_scalar(getattr(self, key)) for key in keys})
        out["excluded"] = list(self.excluded)
        if self.model == "random":
            out.update(
                tau2_method=self.tau2_method,
                hksj=self.hksj,
                test=self.test_name,
                test_df=self.test_df,
                tau2_ci=[_finite(self.tau2_ci_low), _finite(self.tau2_ci_high)],
                prediction_interval=[_finite(self.pi_low), _finite(self.pi_high)],
            )
        return out

    def __str__(self) -> str:
        digits = 3 if self.measure == "RD" else 2
        ci = f"{100 * self.ci_level:g}% CI"
        test = f"{self.test_name}={abs(self.z):.2f}" + (
            f", df={self.test_df}" if self.test_df is not None else "")
        return (
            f"{self.label} {self.measure} {self.estimate:.{digits}f} "
            f"[{self.ci_low:.{digits}f}, {self.ci_high:.{digits}f}] ({ci})  "
            f"{test} (P={_fmt_p(self.p)})  "
            f"k={self.k}  {self.events_treat}/{self.n_treat} vs "
            f"{self.events_control}/{self.n_control}  "
            f"Chi2={self.q:.2f}, df={self.df} (P={_fmt_p(self.p_q)}); I2={self.i2:.0f}%"
            + (f"; Tau2={self.tau2:.2f}" if self.model == "random" else "")
            + self._random_extras(digits)
            + (f"  (left out, not estimable: {', '.join(self.excluded)})" if self.excluded
               else "")
        )

    def _random_extras(self, digits: int) -> str:
        """RevMan Web's extra figures: tau^2's Q-profile CI and the prediction interval."""
        if self.model != "random":
            return ""
        text = ""
        if np.isfinite(self.tau2_ci_low):
            text += f" [{self.tau2_ci_low:.2f}, {self.tau2_ci_high:.2f}]"
        if np.isfinite(self.pi_low):
            text += (f"; {100 * self.ci_level:g}% PI [{self.pi_low:.{digits}f}, "
                     f"{self.pi_high:.{digits}f}]")
        return text

    def _short(self) -> str:
        digits = 3 if self.measure == "RD" else 2
        method = "MH" if self.method == "DL" else self.method
        measure = "OR" if self.measure == "PETO_OR" else self.measure
        ci = "" if abs(self.ci_level - 0.95) < 1e-12 else f" ({100 * self.ci_level:g}% CI)"
        return (
            f"{measure} {METHOD_LABELS[method]} {self.model}, k={self.k}: "
            f"{self.estimate:.{digits}f} [{self.ci_low:.{digits}f}, {self.ci_high:.{digits}f}]"
            f"{ci}, I²={self.i2:.0f}%"
            + (f", τ²={self.tau2:.3g}" if self.model == "random" else "")
        )

    def summary(self) -> str:
        """Return the pooled estimate in a line: measure, method, model, k, CI, I² (τ²)."""
        return self._short()

    def to_dataframe(self) -> pd.DataFrame:
        """Return RevMan's analysis table: one row per study, then the total.

        Returns
        -------
        pandas.DataFrame
            Columns ``kind`` (``study``, ``not estimable`` or ``total``), ``study``, the four
            count columns (as analysed: complements under ``event="non_events"``),
            ``weight`` (percent), ``estimate``, ``ci_low``, ``ci_high`` (natural scale), and
            on the total row ``z``, ``p``, ``i2`` (percent) and ``tau2``.

        Examples
        --------
        >>> import rebayes as rb
        >>> from rebayes.frequentist.pooling import analyze
        >>> analyze(rb.load_trials("tests/data/bcg")).overall.to_dataframe()  # doctest: +SKIP
        """
        from rebayes.frequentist.table import analysis_table

        return analysis_table(self)

    def plot(self, title: str = "", direction: Direction | None = None) -> Figure:
        """Draw RevMan's forest plot of this analysis (ratio measures; log axis).

        Parameters
        ----------
        title : str
        direction : Direction, optional
            Labels of the arms and which side favours which; default: higher is better.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from rebayes.plots.forest import revman_forest

        return revman_forest(self.to_dataframe(), self.measure, _forest_row(self, True),
                             title=title, direction=direction)


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


@dataclass(frozen=True, repr=False)
class SubgroupAnalysis(ResultDisplay):
    """An overall estimate, optional subgroup estimates and the test between them.

    ``subgroups`` holds the subgroups with an estimate; ``not_estimable`` maps each subgroup
    without one (every study double-zero, say) to the reason, as RevMan prints "Not
    estimable" for it and leaves it out of the test for subgroup differences. ``direction``
    (the dataset's, from :func:`analyze`) labels the forest plot. ``notes`` are sentences
    about the rows analysed (multi-arm trials whose control arm enters twice).

    ``repr`` is one line, :meth:`to_dataframe` RevMan's table (studies, subtotals, total) and
    :meth:`forest` its forest plot, subgroup by subgroup.
    """

    overall: MetaResult
    by: str | None = None
    subgroups: Mapping[str, MetaResult] = field(default_factory=dict)
    test: SubgroupTest | None = None
    left_out: tuple[str, ...] = ()
    description: str = ""
    not_estimable: Mapping[str, str] = field(default_factory=dict)
    direction: Direction = field(default=Direction(), compare=False)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        """JSON layout: ``overall``, ``subgroups`` and ``test_for_subgroup_differences``."""
        out: dict[str, object] = {
            "description": self.description,
            "overall": self.overall.to_dict(),
            "subgroups": {name: res.to_dict() for name, res in self.subgroups.items()},
        }
        if self.by is not None:
            out["by"] = self.by
            out["not_estimable"] = dict(self.not_estimable)
            out["test_for_subgroup_differences"] = self.test.to_dict() if self.test else None
            out["left_out"] = list(self.left_out)
        if self.notes:
            out["notes"] = list(self.notes)
        return out

    def __str__(self) -> str:
        lines = [self.description] if self.description else []
        for name, res in self.subgroups.items():
            lines.append(f"  {name}: {res}")
        for name, reason in self.not_estimable.items():
            lines.append(f"  {name}: not estimable ({reason})")
        lines.append(f"  Total: {self.overall}")
        if self.test is not None:
            lines.append(f"  {self.test}")
        if self.left_out:
            lines.append(f"  Left out (no {self.by} label): {', '.join(self.left_out)}")
        lines += [f"  Note: {note}" for note in self.notes]
        return "\n".join(lines)

    def _short(self) -> str:
        text = self.overall._short()
        if self.by is not None:
            n = len(self.subgroups) + len(self.not_estimable)
            text += f"; by {self.by}: {n} subgroups"
            if self.test is not None:
                text += f", test for subgroup differences P={_fmt_p(self.test.p)}"
        return text

    def summary(self) -> str:
        """Return the overall estimate and the test for subgroup differences in a line."""
        return self._short()

    def to_dataframe(self) -> pd.DataFrame:
        """Return RevMan's analysis table: studies by subgroup, subtotals, then the total.

        Returns
        -------
        pandas.DataFrame
            The columns of :meth:`MetaResult.to_dataframe`, after a ``subgroup`` column when
            the analysis is split; ``kind`` is also ``subtotal``. Study weights are those of
            the overall analysis and a subtotal's weight is their sum, as RevMan prints them;
            a subgroup with no estimable study has a subtotal row without numbers.
        """
        from rebayes.frequentist.table import analysis_table

        return analysis_table(self)

    def plot(self, title: str | None = None) -> Figure:
        """Draw RevMan's forest plot: studies under their subgroup, subtotals, the total.

        Parameters
        ----------
        title : str, optional
            Default: the analysis' description.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from rebayes.plots.forest import revman_forest

        title = self.description if title is None else title
        subtotals = ({name: _forest_row(res, False) for name, res in self.subgroups.items()}
                     if self.by is not None else None)
        return revman_forest(self.to_dataframe(), self.overall.measure,
                             _forest_row(self.overall, True), subtotals, title=title,
                             direction=self.direction)


def _forest_row(result: MetaResult, total: bool) -> SummaryRow:
    """RevMan's pooled row: ``Total (method, 95% CI)``, or a subgroup's ``Subtotal (95% CI)``."""
    from rebayes.plots.forest import SummaryRow

    ci = f"{100 * result.ci_level:g}% CI"
    return SummaryRow(f"Total ({result.label}, {ci})" if total else f"Subtotal ({ci})",
                      result.estimate, result.ci_low, result.ci_high)


def _python_scalar(value: object) -> object:
    """Return a numpy scalar as the Python one (NaN stays NaN: ``to_dict``'s callers see it)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def _finite(value: float) -> float | None:
    """JSON has no NaN: an undefined bound is null."""
    return float(value) if np.isfinite(value) else None


def _fmt_p(p: float) -> str:
    return "<0.00001" if p < 1e-5 else f"{p:.2f}" if p >= 0.01 else f"{p:.4f}"


def _options(method: str, measure: str, model: str) -> tuple[str, str, str]:
    """Check and normalise (method, measure, model); ``DL`` is MH with random effects."""
    if method not in METHODS:
        raise AnalysisError(f"unknown method {method!r} (use one of {', '.join(METHODS)})")
    if measure not in MEASURES:
        raise AnalysisError(f"unknown measure {measure!r} (use one of {', '.join(MEASURES)})")
    if model not in MODELS:
        raise AnalysisError(f"unknown model {model!r} (use one of {', '.join(MODELS)})")
    if method == "DL":
        model = "random"
    if measure == "PETO_OR" and method not in ("PETO",):
        if method != "MH":  # the default method: PETO_OR alone asks for Peto's method
            raise AnalysisError(f"measure PETO_OR needs method PETO, not {method}")
        method = "PETO"
    if method == "PETO":
        if measure not in ("OR", "PETO_OR"):
            raise AnalysisError(f"Peto's method pools odds ratios only, not {measure}")
        if model == "random":
            raise AnalysisError("Peto's method is fixed-effect only (as in RevMan)")
        measure = "PETO_OR"
    return method, measure, model


def _mantel_haenszel(eff: pd.DataFrame, measure: str) -> tuple[float, float, np.ndarray]:
    """Return (estimate on the analysis scale, variance, study weights) for the MH method."""
    a, b, c, d = (eff[col].to_numpy() for col in "abcd")
    n1, n2 = a + b, c + d
    n = n1 + n2
    if measure == "RR":
        # Greenland & Robins (1985) variance of the log MH risk ratio.
        r = a * n2 / n
        s = c * n1 / n
        est = np.log(r.sum() / s.sum())
        var = ((n1 * n2 * (a + c) - a * c * n) / n**2).sum() / (r.sum() * s.sum())
        weights = s
    elif measure == "OR":
        # Robins, Breslow & Greenland (1986) variance of the log MH odds ratio.
        r = a * d / n
        s = b * c / n
        big_p = (a + d) / n
        big_q = (b + c) / n
        est = np.log(r.sum() / s.sum())
        var = (
            (big_p * r).sum() / (2 * r.sum() ** 2)
            + (big_p * s + big_q * r).sum() / (2 * r.sum() * s.sum())
            + (big_q * s).sum() / (2 * s.sum() ** 2)
        )
        weights = s
    else:
        # MH risk difference with weights n1 n2 / N and Greenland-Robins' variance (Deeks &
        # Higgins 2010), weights and variance from the corrected cells, the RDs raw.
        weights = n1 * n2 / n
        est = (weights * eff["yi"].to_numpy()).sum() / weights.sum()
        var = (a * b * n2**3 + c * d * n1**3) / (n1 * n2 * n**2)
        var = var.sum() / weights.sum() ** 2
    return float(est), float(var), weights


def _not_estimable_reason(eff: pd.DataFrame, measure: str) -> str:
    a, c = eff["events_treat"], eff["events_control"]
    full = (a == eff["n_treat"]) & (c == eff["n_control"])
    none = (a == 0) & (c == 0)
    if full.all() and measure != "RR":
        return "every participant had the event in both arms of every study"
    if none.all():
        return "every study has no events in either arm"
    return "every study has no events in either arm or every participant an event in both"


def meta_analysis(
    studies: pd.DataFrame,
    method: Method = "MH",
    measure: Measure = "RR",
    event: Event = "events",
    heterogeneity: Literal["revman", "iv"] = "revman",
    *,
    model: Model = "fixed",
    ci_level: float = 0.95,
    tau2_method: Tau2Method = "DL",
    hksj: bool = False,
) -> MetaResult:
    """Pool 2x2 tables with RevMan 5's Mantel-Haenszel, inverse-variance or Peto method.

    Parameters
    ----------
    studies : pandas.DataFrame
        One row per study with ``study`` and the four count columns.
    method : {"MH", "IV", "PETO", "DL"}
        ``MH`` (RevMan's default for dichotomous data), ``IV`` inverse variance, ``PETO``
        Peto's O - E method (odds ratio, fixed effect); ``DL`` is ``MH`` with
        ``model="random"`` (RevMan's "M-H, Random").
    measure : {"RR", "OR", "RD", "PETO_OR"}
        ``PETO_OR`` implies ``method="PETO"``.
    event : {"events", "non_events"}
    heterogeneity : {"revman", "iv"}
        Where Cochran's Q is centred. ``revman``: on the method's own fixed-effect estimate
        (MH for ``MH``, IV for ``IV``, Peto for ``PETO``). ``iv``: always on the
        inverse-variance estimate, as metafor's ``rma(method="DL")``.
    model : {"fixed", "random"}
        ``random``: DerSimonian-Laird, tau^2 from the Q above (or ``tau2_method``'s).
    ci_level : float
        Confidence level of the intervals (0.95; RevMan offers 90, 95, 99).
    tau2_method : {"DL", "REML", "PM"}
        Estimator of tau^2 under random effects (RevMan Web: DL or REML).
    hksj : bool
        Hartung-Knapp-Sidik-Jonkman interval and t test for the random-effects estimate.

    Returns
    -------
    MetaResult
    """
    asked = method
    method, measure, model = _options(method, measure, model)  # type: ignore[assignment]
    _check_tau2_options(model, tau2_method, hksj)
    eff = study_effects(studies, measure, event, ci_level)
    used = eff[eff["estimable"]].reset_index(drop=True)
    excluded = tuple(eff.loc[~eff["estimable"], "study"])
    k = len(used)
    if k == 0:
        raise AnalysisError(f"no estimable study ({_not_estimable_reason(eff, measure)})")
    yi, vi = used["yi"].to_numpy(), used["vi"].to_numpy()
    est_iv, (est_fixed, var_fixed, weights) = _fixed_effect(used, method, measure)
    centre = est_iv if heterogeneity == "iv" else est_fixed
    q, df, i2, tau2 = _heterogeneity(yi, vi, centre, method)
    zq = z_quantile(ci_level)
    back = (lambda x: x) if measure == "RD" else np.exp
    extra: dict[str, Any] = {}
    if model == "random":
        # RevMan's DL tau^2 comes from the Q above; REML and PM from the study estimates.
        re = random_effects(yi, vi, tau2_method, hksj, ci_level,
                            tau2=tau2 if tau2_method == "DL" else None, z=zq)
        weights, est, se = re.weights, re.estimate, re.se
        ci_low, ci_high, z, p = re.ci_low, re.ci_high, re.statistic, re.p
        if tau2_method != "DL":
            tau2, i2 = re.tau2, re.i2  # RevMan Web: I^2 from tau^2
        extra = _random_effects_fields(re, tau2_method, hksj, back)
    else:
        est, se = est_fixed, var_fixed**0.5
        z = est / se
        ci_low, ci_high, p = est - zq * se, est + zq * se, float(2 * ndtr(-abs(z)))
    studies_out = used.assign(ratio=used["effect"], weight=100 * weights / weights.sum())
    return MetaResult(
        measure=measure,
        method="DL" if asked == "DL" else method,
        estimate=float(back(est)),
        ci_low=float(back(ci_low)),
        ci_high=float(back(ci_high)),
        log_estimate=est,
        se=se,
        z=float(z),
        p=p,
        q=q,
        df=df,
        p_q=float(chdtrc(df, q)) if df > 0 else 1.0,
        i2=i2,
        tau2=tau2,
        k=k,
        events_treat=int(used["events_treat"].sum()),
        n_treat=int(used["n_treat"].sum()),
        events_control=int(used["events_control"].sum()),
        n_control=int(used["n_control"].sum()),
        studies=studies_out,
        excluded=excluded,
        model=model,
        ci_level=ci_level,
        **extra,
    )


def _check_tau2_options(model: str, tau2_method: str, hksj: bool) -> None:
    """Raise AnalysisError for an unknown tau^2 estimator, or tau^2 options on a fixed model."""
    if tau2_method not in TAU2_METHODS:
        raise AnalysisError(
            f"unknown tau2 estimator {tau2_method!r} (use one of {', '.join(TAU2_METHODS)})"
        )
    if model == "fixed" and (tau2_method != "DL" or hksj):
        raise AnalysisError(
            "a tau2 estimator and HKSJ intervals belong to the random-effects model "
            "(add --model random)"
        )


def _fixed_effect(
    used: pd.DataFrame, method: str, measure: str
) -> tuple[float, tuple[float, float, np.ndarray]]:
    """Return the inverse-variance estimate and the method's (estimate, variance, weights)."""
    yi, vi = used["yi"].to_numpy(), used["vi"].to_numpy()
    w_iv = 1 / vi
    est_iv = float((w_iv * yi).sum() / w_iv.sum())
    if method in ("IV", "PETO"):
        # Peto's pooled log OR sum(O-E)/sum(V) is the IV mean of (O-E)/V with weights V.
        return est_iv, (est_iv, float(1 / w_iv.sum()), w_iv)
    return est_iv, _mantel_haenszel(used, measure)


def _heterogeneity(
    yi: np.ndarray, vi: np.ndarray, centre: float, method: str
) -> tuple[float, int, float, float]:
    """Return Cochran's Q about ``centre``, its df, I^2 and DL's tau^2 (0 for Peto)."""
    w_iv = 1 / vi
    q = float((w_iv * (yi - centre) ** 2).sum())
    df = len(yi) - 1
    c_dl = w_iv.sum() - (w_iv**2).sum() / w_iv.sum()
    tau2 = max(0.0, (q - df) / c_dl) if df > 0 and c_dl > 0 and method != "PETO" else 0.0
    return q, df, _i_squared(q, df), tau2


def _random_effects_fields(
    re: RandomEffects, tau2_method: str, hksj: bool, back: Callable[[Any], Any]
) -> dict[str, Any]:
    """Return the fields only a random-effects MetaResult has (tau^2 CI, prediction interval)."""
    return dict(
        tau2_method=tau2_method, hksj=hksj, test_df=re.df,
        tau2_ci_low=re.tau2_ci[0], tau2_ci_high=re.tau2_ci[1],
        pi_low=float(back(re.pi_low)), pi_high=float(back(re.pi_high)),
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
    """Q test between independent estimates, each weighted by 1 / SE^2 (RevMan 5).

    Parameters
    ----------
    log_estimates, standard_errors : sequence of float
        One pair per subgroup (at least two), on the analysis scale (log ratio, or RD).

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
    return SubgroupTest(q=q, df=df, p=float(chdtrc(df, q)), i2=_i_squared(q, df))


def subgroup_difference_test(results: Mapping[str, MetaResult]) -> SubgroupTest:
    """Test for subgroup differences between separately pooled subgroups (RevMan 5).

    Parameters
    ----------
    results : mapping of str to MetaResult
        The separately pooled subgroups (at least two).

    Returns
    -------
    SubgroupTest
        :func:`difference_test` on the subgroups' estimates and standard errors.
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


def _level_order(trials: pd.DataFrame, column: str) -> list[str]:
    """Subgroup order: the declared levels (RevMan's order for an import), else sorted."""
    present = [str(v) for v in trials[column].dropna().unique()]
    schema = schema_of(trials)
    declared = [
        cov for cov in (*schema.covariates.values(), *schema.columns.values())
        if cov.column == column and cov.levels
    ]
    if declared:
        order = [lv for lv in declared[0].levels if lv in present]
        return order + sorted(v for v in present if v not in order)
    return sorted(present)


def analyze(
    trials: pd.DataFrame,
    by: str | None = None,
    where: Mapping[str, str] | None = None,
    method: Method | None = None,
    measure: Measure | None = None,
    event: Event = "events",
    heterogeneity: Literal["revman", "iv"] = "revman",
    *,
    model: Model | None = None,
    ci_level: float | None = None,
    tau2_method: Tau2Method | None = None,
    hksj: bool | None = None,
    split_shared_control: bool = False,
) -> SubgroupAnalysis:
    """Run a RevMan-style analysis on a trial table: overall, or split into subgroups.

    When the dataset declares a ``strata`` column, a trial's strata rows are summed into one
    study unless the analysis splits or filters by that column, as a RevMan review enters one
    trial once per comparison; a split by it leaves out the rows of the covariate's
    ``pooled`` level (no split published) and lists them in ``left_out``. A subgroup with no
    estimable study is reported in ``not_estimable``; the test for subgroup differences
    runs over the others, as RevMan does.

    Parameters
    ----------
    trials : pandas.DataFrame
        A table from :func:`rebayes.load_trials`.
    by : str, optional
        Column (or declared covariate) defining subgroups.
    where : mapping, optional
        ``{column: value}`` filters applied first.
    method, measure, model, ci_level
        As in :func:`meta_analysis`; default: the dataset's ``method``, ``measure``,
        ``model`` and ``ci_level`` (``dataset.toml``), else MH, RR, fixed, 0.95.
    event, heterogeneity
        As in :func:`meta_analysis`.
    tau2_method, hksj
        As in :func:`meta_analysis`; default: the dataset's ``tau2`` and ``hksj`` under
        random effects (DL, no HKSJ under a fixed-effect model asked for here).
    split_shared_control : bool
        Divide a control arm shared by several comparisons of one study between them
        (Cochrane Handbook 23.3.4, :func:`rebayes.data.multiarm.split_shared_controls`).
        Either way such arms are named in ``notes``.

    Returns
    -------
    SubgroupAnalysis
    """
    schema = schema_of(trials)
    options = _pooling_options(schema, method, measure, model, ci_level, tau2_method, hksj)
    options.update(event=event, heterogeneity=heterogeneity)
    where = dict(where or {})
    column, pooled = _subgroup_column(trials, schema, by)
    table, labels = _analysed_rows(trials, schema, column, where)
    left_out: tuple[str, ...] = ()
    if column is not None:
        if column not in table.columns:
            raise AnalysisError(
                f"--by {by}: no column {by!r} (columns: {', '.join(trials.columns)})"
            )
        table, left_out = _without_unsplit_rows(table, column, pooled, labels)
    if table.empty:
        raise AnalysisError(f"no trials left after selecting {where or 'all'} by {by}")
    table, notes = _shared_control_arms(table, split_shared_control)
    if labels is not None:
        table = table.assign(study=labels.loc[table.index].to_numpy())
    overall = meta_analysis(table, **options)
    subgroups: dict[str, MetaResult] = {}
    not_estimable: dict[str, str] = {}
    test = None
    if column is not None:
        subgroups, not_estimable, test = _pool_subgroups(table, column, options)
    direction = Direction.from_schema(schema)
    if event == "non_events":
        # Counting the complement turns benefit around: fewer deaths is more survivors.
        direction = direction.complement()
    return SubgroupAnalysis(
        overall, by, subgroups, test, left_out, _description(overall, direction, where, by),
        not_estimable, direction, tuple(notes),
    )


def _pooling_options(
    schema: DatasetSchema,
    method: Method | None,
    measure: Measure | None,
    model: Model | None,
    ci_level: float | None,
    tau2_method: Tau2Method | None,
    hksj: bool | None,
) -> dict[str, Any]:
    """Return :func:`meta_analysis`'s options: those given, else the dataset's."""
    method = method or schema.method  # type: ignore[assignment]
    model = model or schema.model  # type: ignore[assignment]
    random = model == "random" or method == "DL"
    return dict(
        method=method,
        measure=measure or schema.measure,
        model=model,
        ci_level=ci_level or schema.ci_level,
        tau2_method=tau2_method or (schema.tau2 if random else "DL"),
        hksj=bool((schema.hksj and random) if hksj is None else hksj),
    )


def _subgroup_column(
    trials: pd.DataFrame, schema: DatasetSchema, by: str | None
) -> tuple[str | None, str | None]:
    """Return the column ``by`` names (a column, or a declared covariate's) and its pooled level."""
    column = by
    if by is not None and by not in trials.columns and schema.declared(by) is not None:
        column = schema.declared(by).column  # type: ignore[union-attr]
    if column is None:
        return None, None
    pooled = next(
        (c.pooled for c in (*schema.covariates.values(), *schema.columns.values())
         if c.column == column and c.pooled),
        None,
    )
    return column, pooled


def _analysed_rows(
    trials: pd.DataFrame, schema: DatasetSchema, column: str | None, where: Mapping[str, str]
) -> tuple[pd.DataFrame, pd.Series | None]:
    """Return the rows ``where`` selects, one per trial unless split by strata, and their names.

    The names (None for strata rows, which keep theirs) are the trials' labels, given once
    the shared control arms are found.
    """
    strata = schema.strata
    if strata is not None and (column == strata or strata in where):
        return _select(trials, where), None
    # One row per trial, named as everywhere else ("Shechter (1991)", "ARCHAIC #2") once
    # shared control arms, which belong to one study name, have been found.
    table = trial_totals(trials).reset_index(drop=True)
    labels = pd.Series(row_labels(table, split=False), index=table.index)
    return _select(table, where), labels


def _without_unsplit_rows(
    table: pd.DataFrame, column: str, pooled: str | None, labels: pd.Series | None
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Return the rows with a subgroup, and the names of those without (missing, or pooled)."""
    unlabeled = table[column].isna() | (table[column].astype(str) == str(pooled))
    names = table["study"] if labels is None else labels.loc[table.index]
    return table[~unlabeled], tuple(names[unlabeled])


def _shared_control_arms(
    table: pd.DataFrame, split: bool
) -> tuple[pd.DataFrame, list[str]]:
    """Return the rows, their shared control arms split if asked, and the note naming them."""
    notes: list[str] = []
    shared = shared_controls(table)
    if shared:
        notes.append(shared_control_note(shared, split))
        if split:
            try:
                table = split_shared_controls(table, shared)
            except SplitError as exc:
                raise AnalysisError(f"--split-shared-control: {exc}") from None
    return table, notes


def _pool_subgroups(
    table: pd.DataFrame, column: str, options: Mapping[str, Any]
) -> tuple[dict[str, MetaResult], dict[str, str], SubgroupTest | None]:
    """Return each subgroup's result, why others have none, and the test between them."""
    subgroups: dict[str, MetaResult] = {}
    not_estimable: dict[str, str] = {}
    for level in _level_order(table, column):
        rows = table[table[column].astype(str) == level]
        try:
            subgroups[level] = meta_analysis(rows, **options)
        except AnalysisError as exc:
            if not str(exc).startswith("no estimable study"):
                raise
            not_estimable[level] = str(exc).partition("(")[2].rstrip(")")
    test = subgroup_difference_test(subgroups) if len(subgroups) >= 2 else None
    return subgroups, not_estimable, test


def _description(
    overall: MetaResult, direction: Direction, where: Mapping[str, str], by: str | None
) -> str:
    """Return the analysis in words: method, measure, outcome, selection and split."""
    scope = ", ".join(f"{k}={v}" for k, v in where.items()) or "all trials"
    measure_name = "Peto OR" if overall.measure == "PETO_OR" else overall.measure
    description = f"{overall.label} {measure_name} of {direction.outcome}, {scope}"
    if by is not None:
        description += f", by {by}"
    return description
