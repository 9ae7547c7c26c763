"""Is the evidence distorted? Small-study effects, publication bias and robust model averaging.

One call, :func:`bias_analysis`, asks of a trial table what a reviewer of a meta-analysis asks
first, with the frequentist tools a paper's bias analysis uses (so that it can be audited)
and a Bayesian answer that weighs them:

- the per-study log ratios (RevMan's, :func:`rebayes.frequentist.effects.study_effects`: 0.5
  added to every cell of a study with a zero cell; double-zero studies left out), one row per
  trial (declared strata summed);
- Egger's test (``lm`` and ``rma``), Peters', Harbord's and Begg's
  (:mod:`rebayes.frequentist.small_study`), trim-and-fill L0 and R0 on the DerSimonian-Laird
  model (:mod:`rebayes.frequentist.trimfill`), the three-parameter step-function selection
  model at one-sided p = 0.025 in the direction of benefit
  (:mod:`rebayes.frequentist.selection`);
- the robust Bayesian model average over effect x heterogeneity x (no bias, PET, PEESE,
  selection) with Bartoš et al.'s Cochrane priors (:mod:`rebayes.bayes.robust`).

With fewer than 10 studies the tests cannot rule asymmetry out (Sterne et al. 2011), and
the result says so. The tests and the robust average work on the normal approximation of the
log ratio (:data:`rebayes.bayes.robust.averaging.LOG_RATIO_NOTE`); for the OR the no-bias
models on the 2x2 tables form a second average (``bma_binomial``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from rebayes import tables
from rebayes.data.direction import Direction
from rebayes.data.schema import schema_of
from rebayes.data.trial_table import declared_schema
from rebayes.data.trials import trial_totals
from rebayes.display import ResultDisplay
from rebayes.errors import AnalysisError
from rebayes.frequentist.effects import study_effects
from rebayes.frequentist.meta_regression import fit_meta_regression
from rebayes.frequentist.selection import SelectionModel, one_sided_p, step_selection_model
from rebayes.frequentist.small_study import (
    MIN_STUDIES,
    MIN_STUDIES_FOR_POWER,
    RankTest,
    RegressionTest,
    begg_test,
    egger_test,
    harbord_test,
    peters_test,
    peters_weights,
)
from rebayes.frequentist.trimfill import TrimFill, trim_and_fill
from rebayes.store.keys import plain

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from rebayes.bayes.robust.averaging import RobustBMA
    from rebayes.bayes.robust.models import NoBiasEngine

__all__ = ["BIAS_MEASURES", "BiasAnalysis", "bias_analysis", "evidence_words"]

#: Effect measures the bias analysis works on (ratio measures with a log scale).
BIAS_MEASURES = ("RR", "OR")
#: Sterne et al.'s warning, in the output whenever k < 10.
STERNE_2011 = "Sterne JAC et al. BMJ 2011;343:d4002"


def evidence_words(bf: float) -> str:
    """Words for an inclusion Bayes factor (Lee & Wagenmakers 2013's bands, either side)."""
    if bf <= 0:
        return "decisive evidence against"
    if not np.isfinite(bf):
        return "decisive evidence for"
    strength = max(bf, 1 / bf)
    words = ("no evidence either way" if strength < 1.05 else
             "weak evidence" if strength < 3 else
             "moderate evidence" if strength < 10 else
             "strong evidence" if strength < 30 else "very strong evidence")
    if strength < 1.05:
        return words
    return f"{words} {'for' if bf > 1 else 'against'}"


@dataclass(frozen=True, repr=False)
class BiasAnalysis(ResultDisplay):
    """Small-study effects, publication-bias adjustments and the robust model average.

    Attributes
    ----------
    dataset : str
    measure : {"RR", "OR"}
    direction : Direction
    studies : pandas.DataFrame
        ``study, yi, vi, se, n, p_one_sided`` (log ratio; one-sided p in the direction of
        benefit), one row per analysed study.
    excluded : tuple of str
        Studies with no estimable ratio (no events, or only events, in both arms).
    unadjusted : dict
        DerSimonian-Laird estimate ``{estimate, ci_low, ci_high, tau2}`` (ratio scale).
    egger, egger_rma, peters, harbord : RegressionTest or None
    begg : RankTest or None
    trim_and_fill, trim_and_fill_r0 : TrimFill or None
    selection : SelectionModel or None
    bma : RobustBMA or None
    bma_binomial : RobustBMA or None
        For the OR: the four no-bias models (effect x heterogeneity) fitted to the 2x2 tables
        with the binomial-normal likelihood and averaged, as RoBMA's ``BiBMA`` does.
    skipped : mapping of str to str
        Methods not computed, with the reason.
    warnings : tuple of str
    """

    dataset: str
    measure: str
    direction: Direction
    studies: pd.DataFrame = field(repr=False)
    excluded: tuple[str, ...]
    unadjusted: Mapping[str, float]
    egger: RegressionTest | None = None
    egger_rma: RegressionTest | None = None
    peters: RegressionTest | None = None
    harbord: RegressionTest | None = None
    begg: RankTest | None = None
    trim_and_fill: TrimFill | None = None
    trim_and_fill_r0: TrimFill | None = None
    selection: SelectionModel | None = None
    bma: RobustBMA | None = None
    bma_binomial: RobustBMA | None = None
    skipped: Mapping[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()

    @property
    def k(self) -> int:
        """Studies analysed."""
        return len(self.studies)

    @property
    def sign(self) -> float:
        """+1 where benefit is a larger ratio, -1 where a smaller one."""
        return 1.0 if self.direction.higher_is_better else -1.0

    def side_meaning(self, side: str) -> str:
        """Which side a trim-and-fill ``left``/``right`` is: benefit, harm, or the ratio side."""
        below = f"{self.measure} < 1"
        ratio_side = below if side == "left" else f"{self.measure} > 1"
        if not self.direction.declared:
            return ratio_side
        harm = (side == "left") == self.direction.higher_is_better
        return f"{'harm' if harm else 'benefit'} ({ratio_side})"

    # --- JSON -----------------------------------------------------------------------------

    def _regression(self, test: RegressionTest | None) -> dict[str, Any] | None:
        if test is None:
            return None
        out = test.to_dict()
        for key in ("limit_estimate", "limit_ci_low", "limit_ci_high"):
            out[key] = float(np.exp(out[key])) if np.isfinite(out[key]) else None
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON: the tests, trim-and-fill and selection (ratio scale), the model average.

        Standard JSON: a number that does not exist (an unidentified weight's SE) is None.
        """
        tf = self.trim_and_fill
        return plain({
            "dataset": self.dataset,
            "measure": self.measure,
            "k": self.k,
            "direction": self.direction.to_dict(),
            "excluded": list(self.excluded),
            "warnings": list(self.warnings),
            "unadjusted": dict(self.unadjusted),
            "egger": self._regression(self.egger),
            "egger_rma": self._regression(self.egger_rma),
            "peters": self._regression(self.peters),
            "harbord": self._regression(self.harbord),
            "begg": self.begg.to_dict() if self.begg else None,
            "trim_and_fill": ({**tf.to_dict(), "missing_on": self.side_meaning(tf.side),
                               "r0": (self.trim_and_fill_r0.to_dict()
                                      if self.trim_and_fill_r0 else None)}
                              if tf else None),
            "selection": self.selection.to_dict() if self.selection else None,
            "bma": self.bma.to_dict() if self.bma else None,
            "bma_binomial": self.bma_binomial.to_dict() if self.bma_binomial else None,
            "skipped": dict(self.skipped),
            "studies": [{"study": r.study, "log_ratio": r.yi, "se": r.se, "n": r.n}
                        for r in self.studies.itertuples()],
        })

    # --- tables and text ------------------------------------------------------------------

    def to_dataframe(self) -> pd.DataFrame:
        """One row per method: statistic, p, the adjusted ratio and its 95% interval, a note."""
        rows: list[dict[str, Any]] = []
        m = self.measure

        def add(method: str, statistic: Any = None, p: Any = None, estimate: Any = None,
                low: Any = None, high: Any = None, note: str = "") -> None:
            rows.append({"method": method, "statistic": statistic, "p": p,
                         f"adjusted {m}": estimate, "ci_low": low, "ci_high": high,
                         "note": note})

        u = self.unadjusted
        add("random effects (DL), unadjusted", estimate=u["estimate"], low=u["ci_low"],
            high=u["ci_high"], note=f"tau² = {u['tau2']:.3g}")
        for label, test in (("Egger (lm)", self.egger), ("Egger (rma)", self.egger_rma),
                            ("Peters (1/n)", self.peters)):
            if test is not None:
                add(label, test.statistic, test.p, np.exp(test.limit_estimate),
                    np.exp(test.limit_ci_low), np.exp(test.limit_ci_high),
                    "limit estimate: a study of infinite precision" if label != "Peters (1/n)"
                    else "limit estimate: a study of infinite size")
        if self.harbord is not None:
            add("Harbord (score, OR)", self.harbord.statistic, self.harbord.p)
        if self.begg is not None:
            add("Begg (rank correlation)", self.begg.tau, self.begg.p,
                note="Kendall's tau" + (", exact p" if self.begg.exact else ""))
        for tf in (self.trim_and_fill, self.trim_and_fill_r0):
            if tf is not None:
                add(f"trim-and-fill ({tf.estimator})", tf.k0, None, np.exp(tf.estimate),
                    np.exp(tf.ci_low), np.exp(tf.ci_high),
                    f"{_studies(tf.k0)} imputed on the side of {self.side_meaning(tf.side)}")
        if self.selection is not None:
            s = self.selection
            add("selection model (p < 0.025 one-sided)", s.lrt, s.lrt_p, np.exp(s.estimate),
                np.exp(s.ci_low), np.exp(s.ci_high),
                f"relative publication probability of p > 0.025: {s.deltas[1]:.2f}"
                + (" (at its bound: not identified)" if s.at_bound else ""))
        if self.bma is not None:
            a = self.bma.averaged()
            add("robust Bayesian model average", self.bma.inclusion_bf("bias"), None,
                a["estimate"], a["ci_low"], a["ci_high"],
                "statistic: inclusion Bayes factor of publication bias; 95% CrI")
        for method, reason in self.skipped.items():
            add(method, note=f"not computed: {reason}")
        return pd.DataFrame(rows)

    def summary(self) -> str:
        """Say what the analysis finds, in a few sentences (no 'benefit' without a direction)."""
        m, parts = self.measure, []
        u = self.unadjusted
        parts.append(f"{self.k} studies; random-effects {m} {u['estimate']:.2f} "
                     f"({u['ci_low']:.2f}-{u['ci_high']:.2f}).")
        if self.egger is not None:
            parts.append(f"Egger's test: t = {self.egger.statistic:.2f}, {_p(self.egger.p)}"
                         + (" (fewer than 10 studies: a weak test)"
                            if self.k < MIN_STUDIES_FOR_POWER else "") + ".")
        tf = self.trim_and_fill
        if tf is not None and tf.k0 > 0:
            parts.append(f"Trim-and-fill imputes {_studies(tf.k0)} on the side of "
                         f"{self.side_meaning(tf.side)} and moves the pooled {m} to "
                         f"{np.exp(tf.estimate):.2f} ({np.exp(tf.ci_low):.2f}-"
                         f"{np.exp(tf.ci_high):.2f}).")
        elif tf is not None:
            parts.append("Trim-and-fill imputes no study.")
        if self.bma is not None:
            b = self.bma
            a = b.averaged()
            benefit = (f"P(benefit, {self.direction.benefit.replace('RR', m)})"
                       if self.direction.declared else
                       f"P({m} {'>' if self.sign > 0 else '<'} 1)")
            parts.append(
                f"Model averaging: {evidence_words(b.inclusion_bf('bias'))} publication bias "
                f"(BF {b.inclusion_bf('bias'):.2f}), "
                f"{evidence_words(b.inclusion_bf('effect'))} an effect "
                f"(BF {b.inclusion_bf('effect'):.2f}); averaged {m} {a['estimate']:.2f} "
                f"({a['ci_low']:.2f}-{a['ci_high']:.2f}), {benefit} = {a['p_benefit']:.2f}.")
        if self.bma_binomial is not None:
            b = self.bma_binomial
            a = b.averaged()
            parts.append(
                "Without bias models, on the 2x2 tables (binomial-normal, as RoBMA's BiBMA): "
                f"{evidence_words(b.inclusion_bf('effect'))} an effect "
                f"(BF {b.inclusion_bf('effect'):.2f}); averaged OR {a['estimate']:.2f} "
                f"({a['ci_low']:.2f}-{a['ci_high']:.2f}), mean {a['mean']:.2f}.")
        return " ".join(parts)

    def _table(self) -> pd.DataFrame:
        """:meth:`to_dataframe` as formatted cells (text and markdown)."""
        frame = self.to_dataframe()

        def fmt(value: Any, digits: str = ".3g") -> str:
            return "" if value is None or (isinstance(value, float) and np.isnan(value)) \
                else format(value, digits)

        return pd.DataFrame({
            "method": frame["method"],
            "statistic": [fmt(v) for v in frame["statistic"]],
            "p": [fmt(v, ".3f") for v in frame["p"]],
            f"adjusted {self.measure} (95%)": [
                "" if e is None or pd.isna(e) else f"{e:.2f} ({lo:.2f}-{hi:.2f})"
                for e, lo, hi in zip(frame[f"adjusted {self.measure}"], frame["ci_low"],
                                     frame["ci_high"], strict=True)],
            "note": frame["note"],
        })

    def heading(self) -> str:
        """Return the one line naming the data, the measure and the direction of benefit."""
        return (f"{self.dataset}: {self.k} studies, log {self.measure}; "
                f"{self.direction.sentence().replace('RR', self.measure)}")

    def __str__(self) -> str:
        lines = [f"Is the evidence distorted? {self.heading()}",
                 *[f"Warning: {w}" for w in self.warnings],
                 tables.text(self._table(), align="lrrrl"), "", self.summary()]
        if self.bma is not None:
            lines += ["", self.bma_text()]
        return "\n".join(lines)

    def markdown(self, figure: str | None = "funnel.png") -> str:
        """Return the analysis as a markdown page (``rebayes bias --output``), figure linked."""
        lines = ["# Is the evidence distorted?", "", self.heading(), ""]
        for warning in self.warnings:
            lines += [f"> **Warning**: {warning}", ""]
        if figure:
            lines += [f"![Contour-enhanced funnel plot]({figure})", ""]
        lines += [tables.markdown(self._table(), align="lrrrl"), "", self.summary(), ""]
        if self.bma is not None:
            b = self.bma
            lines += ["## Robust Bayesian model averaging", "",
                      f"{len(b.fits)} models; {b.likelihood_note}. Priors: {b.priors.source}; "
                      f"PET ~ half-Cauchy(0, {b.priors.pet_scale:g}), PEESE ~ "
                      f"half-Cauchy(0, {b.priors.peese_scale:.3g}), selection weights ~ "
                      "cumulative Dirichlet(1, 1, 1, 1) (RoBMA-PSMA).", "",
                      tables.markdown(self._models_table(), align="lrrrr"), "",
                      "Inclusion Bayes factors: " + ", ".join(
                          f"{c} {b.inclusion_bf(c):.3g}" for c in
                          ("effect", "heterogeneity", "bias", "PET", "PEESE", "selection")),
                      ""]
        if self.bma_binomial is not None:
            b = self.bma_binomial
            a = b.averaged()
            lines += ["## Without bias models, on the 2x2 tables", "",
                      f"{len(b.fits)} models (effect x heterogeneity), {b.likelihood_note}, "
                      "each study's baseline risk uniform (RoBMA's BiBMA): inclusion Bayes "
                      f"factors effect {b.inclusion_bf('effect'):.3g}, heterogeneity "
                      f"{b.inclusion_bf('heterogeneity'):.3g}; averaged OR {a['estimate']:.2f} "
                      f"({a['ci_low']:.2f}-{a['ci_high']:.2f}), mean {a['mean']:.2f}. Its Bayes "
                      "factors are not comparable with the robust average's, whose models "
                      "see the log ORs, not the counts.", ""]
        return "\n".join(lines)

    def bma_text(self) -> str:
        """Return the model average's table (one row per model) and its inclusion BFs as text."""
        assert self.bma is not None
        b = self.bma
        table = self._models_table()
        bfs = ", ".join(f"{c} {b.inclusion_bf(c):.3g}" for c in
                        ("effect", "heterogeneity", "bias", "PET", "PEESE", "selection"))
        return "\n".join([
            f"Robust Bayesian model averaging ({len(b.fits)} models; {b.likelihood_note}); "
            f"priors: {b.priors.source}",
            tables.text(table, align="lrrrr"),
            f"Inclusion Bayes factors: {bfs}",
        ])

    def _models_table(self) -> pd.DataFrame:
        assert self.bma is not None
        models = pd.DataFrame(self.bma.models_table())
        return pd.DataFrame({
            "model": models["model"],
            "prior": [f"{p:.3f}" for p in models["prior_probability"]],
            "posterior": [f"{p:.3f}" for p in models["posterior_probability"]],
            "log ML": [f"{v:.3f}" for v in models["log_marginal_likelihood"]],
            f"{self.measure} (median)": [f"{v:.2f}" for v in models["estimate"]],
        })

    def _short(self) -> str:
        text = f"{self.measure}, k={self.k}"
        if self.egger is not None:
            text += f": Egger p={self.egger.p:.3f}"
        if self.trim_and_fill is not None:
            tf = self.trim_and_fill
            text += f"; trim-and-fill {tf.k0} filled, {np.exp(tf.estimate):.2f}"
        if self.bma is not None:
            a = self.bma.averaged()
            text += (f"; BF bias {self.bma.inclusion_bf('bias'):.2f}, averaged "
                     f"{a['estimate']:.2f} [{a['ci_low']:.2f}, {a['ci_high']:.2f}]")
        return text

    def plot(self) -> Figure:
        """Draw the contour-enhanced funnel plot, with trim-and-fill's imputed studies."""
        from rebayes.plots.funnel import funnel_plot

        tf = self.trim_and_fill
        filled = (pd.DataFrame({"yi": tf.filled_yi, "se": np.sqrt(tf.filled_vi)})
                  if tf is not None else None)
        return funnel_plot(self.studies, self.unadjusted["estimate"], self.measure,
                           self.direction, self.dataset, filled,
                           tf.estimate if tf is not None else None)


def _studies(n: int) -> str:
    return f"{n} study" if n == 1 else f"{n} studies"


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def _measure(trials: pd.DataFrame, measure: str | None) -> str:
    if measure is None:
        declared = schema_of(trials).measure
        measure = declared if declared in BIAS_MEASURES else "OR"
    if measure not in BIAS_MEASURES:
        raise AnalysisError(f"--measure {measure}: the bias analysis works on "
                            f"{' or '.join(BIAS_MEASURES)}")
    return measure


def _attempt(skipped: dict[str, str], name: str, call: Any) -> Any:
    """Run one method; an analysis error (too few studies, an empty interval) skips it.

    So does a numerical failure on unusual data (a singular matrix, a likelihood without a
    finite maximum): the other methods still report, and the skip says why.
    """
    try:
        return call()
    except AnalysisError as exc:
        skipped[name] = str(exc)
    except (ArithmeticError, np.linalg.LinAlgError) as exc:
        skipped[name] = f"numerical failure ({exc})"
    return None


def bias_analysis(
    trials: pd.DataFrame,
    measure: str | None = None,
    *,
    bayesian: bool = True,
    subfield: str = "Cochrane",
    effect_prior: str = "bartos",
    selection_steps: Sequence[float] = (0.025,),
    no_bias_engine: NoBiasEngine | None = None,
    higher_is_better: bool | None = None,
) -> BiasAnalysis:
    """Run the whole bias analysis of a trial table.

    Parameters
    ----------
    trials : pandas.DataFrame
        From :func:`rebayes.load_trials`.
    measure : {"RR", "OR"}, optional
        Default: the dataset's measure if it is one of these, else OR.
    bayesian : bool
        Also fit the robust model average (a few seconds).
    subfield : str
        Cochrane review group of Bartoš et al.'s priors (``Cochrane``: all of them).
    effect_prior : {"bartos", "van_zwet"}
        The effect prior of the model average: Bartoš et al.'s Student-t, or van Zwet et
        al.'s signal-to-noise mixture scaled by the median study's standard error.
    selection_steps : sequence of float
        Cut points of the frequentist selection model (one-sided p, benefit direction).
    no_bias_engine : NoBiasEngine, optional
        Fits the no-bias models of the average (default: the normal approximation).
    higher_is_better : bool, optional
        Overrides the dataset's direction of benefit (the direction the bias models assume
        exaggeration favours).

    Returns
    -------
    BiasAnalysis

    Raises
    ------
    AnalysisError
        Fewer than 3 studies with an estimable ratio, or another measure than RR/OR.
    """
    measure = _measure(trials, measure)
    if bayesian:  # a bad name fails before any work
        _check_average_options(subfield, effect_prior)
    # The direction the bias models assume exaggeration favours: given, or declared.
    schema = (schema_of(trials) if higher_is_better is not None
              else declared_schema(trials, "bias_analysis"))
    direction = schema.with_direction(higher_is_better).direction
    name = str(trials.attrs.get("dataset", "trials"))
    effects = study_effects(trial_totals(trials), measure)  # type: ignore[arg-type]
    excluded = tuple(map(str, effects.loc[~effects["estimable"], "study"]))
    used = effects[effects["estimable"]].reset_index(drop=True)
    if len(used) < MIN_STUDIES:
        raise AnalysisError(
            f"{name}: a bias analysis needs at least {MIN_STUDIES} studies with an estimable "
            f"{measure}, found {len(used)}"
        )
    yi, vi = used["yi"].to_numpy(float), used["vi"].to_numpy(float)
    sign = 1.0 if direction.higher_is_better else -1.0
    alternative: Literal["greater", "less"] = "greater" if sign > 0 else "less"
    n = (used["n_treat"] + used["n_control"]).to_numpy(float)
    studies = pd.DataFrame({
        "study": used["study"].astype(str), "yi": yi, "vi": vi, "se": np.sqrt(vi), "n": n,
        "p_one_sided": one_sided_p(yi, vi, alternative),
    })
    warnings = _data_warnings(used, direction, measure)
    unadjusted = _unadjusted(yi, vi)
    skipped: dict[str, str] = {}
    counts = [used[c].to_numpy(float) for c in
              ("events_treat", "n_treat", "events_control", "n_control")]
    selection = _attempt(skipped, "selection model",
                         lambda: step_selection_model(yi, vi, tuple(selection_steps),
                                                      alternative))
    if selection is not None and selection.at_bound:
        warnings.append("the selection model's weight sits at its bound: the data cannot "
                        "estimate it (its adjusted estimate is not to be trusted)")
    bma = bma_binomial = None
    if bayesian:
        bma, bma_binomial = _model_averages(
            skipped, yi, vi, sign, measure, subfield, effect_prior, no_bias_engine, counts
        )
    return BiasAnalysis(
        dataset=name, measure=measure, direction=direction, studies=studies,
        excluded=excluded, unadjusted=unadjusted,
        **_asymmetry_tests(skipped, yi, vi, n, counts),
        selection=selection, bma=bma, bma_binomial=bma_binomial, skipped=skipped,
        warnings=tuple(warnings),
    )


def _check_average_options(subfield: str, effect_prior: str) -> None:
    """Raise for a subfield without Bartoš et al.'s priors, or an unknown effect prior."""
    from rebayes.bayes.priors import bartos_prior_set

    bartos_prior_set(subfield)
    if effect_prior not in ("bartos", "van_zwet"):
        raise AnalysisError(f"unknown effect prior {effect_prior!r} (use bartos or "
                            "van_zwet)")


def _data_warnings(used: pd.DataFrame, direction: Direction, measure: str) -> list[str]:
    """Return what limits the analysis of these studies: few, zero cells, no direction."""
    warnings = []
    if len(used) < MIN_STUDIES_FOR_POWER:
        warnings.append(
            f"only {len(used)} studies: with fewer than {MIN_STUDIES_FOR_POWER} the tests for "
            f"funnel-plot asymmetry are too weak to rule it out ({STERNE_2011})"
        )
    if used["corrected"].any():
        warnings.append(
            f"{_studies(int(used['corrected'].sum()))} with a zero cell enter with 0.5 added "
            "to each cell, which pulls small studies' log ratios towards 0"
        )
    if not direction.declared:
        warnings.append("the direction of benefit is not declared: the bias models assume "
                        f"that exaggeration favours {measure} < 1 (the side the probabilities "
                        "name)")
    return warnings


def _unadjusted(yi: np.ndarray, vi: np.ndarray) -> dict[str, float]:
    """Return the DerSimonian-Laird pooled ratio, its 95% CI and tau^2, before any adjustment."""
    dl = fit_meta_regression(yi, vi, method="DL")
    low, high = dl.ci(0)
    return {"estimate": float(np.exp(dl.coef[0])), "ci_low": float(np.exp(low)),
            "ci_high": float(np.exp(high)), "tau2": dl.tau2}


def _asymmetry_tests(
    skipped: dict[str, str], yi: np.ndarray, vi: np.ndarray, n: np.ndarray,
    counts: list[np.ndarray],
) -> dict[str, Any]:
    """Return the small-study tests and trim-and-fill by BiasAnalysis field (None: skipped)."""
    # Peters' weights need events and non-events in each study (small_study.peters_weights).
    informative = (counts[0] + counts[2] > 0) & (counts[1] - counts[0] + counts[3] - counts[2]
                                                 > 0)
    return dict(
        egger=_attempt(skipped, "Egger (lm)", lambda: egger_test(yi, vi, "lm")),
        egger_rma=_attempt(skipped, "Egger (rma)", lambda: egger_test(yi, vi, "rma")),
        peters=_attempt(skipped, "Peters", lambda: peters_test(
            yi[informative], n[informative],
            peters_weights(*(c[informative] for c in counts)))),
        harbord=_attempt(skipped, "Harbord", lambda: harbord_test(*counts)),
        begg=_attempt(skipped, "Begg", lambda: begg_test(yi, vi)),
        trim_and_fill=_attempt(skipped, "trim-and-fill (L0)",
                               lambda: trim_and_fill(yi, vi, "L0")),
        trim_and_fill_r0=_attempt(skipped, "trim-and-fill (R0)",
                                  lambda: trim_and_fill(yi, vi, "R0")),
    )


def _model_averages(
    skipped: dict[str, str], yi: np.ndarray, vi: np.ndarray, sign: float, measure: str,
    subfield: str, effect_prior: str, engine: NoBiasEngine | None, counts: list[np.ndarray],
) -> tuple[RobustBMA | None, RobustBMA | None]:
    """Return the robust Bayesian model average and, for the OR, the one on the 2x2 tables."""
    bma = _attempt(skipped, "robust Bayesian model average",
                   lambda: _robust(yi, vi, sign, measure, subfield, effect_prior, engine))
    if measure != "OR":
        return bma, None
    # The no-bias models on the 2x2 tables themselves, as RoBMA's BiBMA fits them. A
    # separate average: a marginal likelihood of the counts and one of the log ORs
    # are densities of different data, which one average may not weigh together.
    from rebayes.bayes.robust.binomial import binomial_normal_engine

    bma_binomial = _attempt(
        skipped, "model average on the 2x2 tables",
        lambda: _robust(yi, vi, sign, measure, subfield, effect_prior,
                        binomial_normal_engine(counts, sign), ("none",)))
    return bma, bma_binomial


def _robust(yi: np.ndarray, vi: np.ndarray, sign: float, measure: str, subfield: str,
            effect_prior: str, engine: NoBiasEngine | None,
            bias_kinds: tuple[str, ...] | None = None) -> RobustBMA:
    from rebayes.bayes.priors import PriorError, van_zwet_prior
    from rebayes.bayes.robust.averaging import robust_bma
    from rebayes.bayes.robust.space import default_priors

    scale = "log OR" if measure == "OR" else "log RR"
    effect = van_zwet_prior(float(np.median(np.sqrt(vi)))) if effect_prior == "van_zwet" \
        else None
    try:
        priors = default_priors(scale, subfield, effect)
    except PriorError as exc:
        raise AnalysisError(str(exc)) from None
    if bias_kinds is None:
        return robust_bma(yi, vi, sign, measure, priors, no_bias_engine=engine)
    return robust_bma(yi, vi, sign, measure, priors, no_bias_engine=engine,
                      bias_kinds=bias_kinds)
