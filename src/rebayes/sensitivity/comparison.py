"""How much the answer depends on the prior and on the data variant.

:func:`compare_posteriors` fits one analysis under several prior sets and data variants (the
compiled model is reused: only the data and hyperparameters change) and returns a
:class:`Comparison`:

- ``table``: one row per prior x variant with the pooled RR (median, 95% interval),
  P(benefit), P(benefit beyond RR 1.1), P(RR > 1.1), tau, the predictive RR interval,
  subgroup probabilities and ratios, the Savage-Dickey Bayes factor for ``d = 0`` and
  whether the convergence gates pass;
- ``psense``: power-scaling sensitivity of each fit (:mod:`rebayes.sensitivity.psense`);
- ``bayes_factor``: Savage-Dickey BF01 = p(d = 0 | y) / p(d = 0) (Wagenmakers et al. 2010),
  the prior density exact and the posterior density a kernel estimate with its Monte Carlo
  interval (:mod:`rebayes.sensitivity.bayes_factor`), and the same for each meta-regression
  coefficient (``beta = 0``: no subgroup difference); reported as BF01 only, and only among
  fits of one likelihood;
- ``flips``: plain sentences saying where a conclusion holds under some priors or variants
  and not others (:mod:`rebayes.sensitivity.conclusions`).

References
----------
Wagenmakers E-J, Lodewyckx T, Kuriyal H, Grasman R. Bayesian hypothesis testing for
psychologists: a tutorial on the Savage-Dickey method. Cogn Psychol. 2010;60:158-189.
doi:10.1016/j.cogpsych.2009.12.001.
Lee MD, Wagenmakers E-J. Bayesian Cognitive Modeling. Cambridge University Press; 2013
(evidence categories of Bayes factors, after Jeffreys 1961).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from rebayes import tables
from rebayes.bayes.priors import PriorSet
from rebayes.bayes.spec import AnalysisSpec
from rebayes.checks.convergence import DiagnosticReport
from rebayes.data.direction import Direction
from rebayes.display import ResultDisplay
from rebayes.errors import RebayesError
from rebayes.sensitivity.bayes_factor import BayesFactor, check_one_likelihood, savage_dickey
from rebayes.store.keys import plain

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from rebayes.bayes.fit import Fit
    from rebayes.bayes.records import FitSummary
    from rebayes.bayes.settings import SamplerSettings

from rebayes.sensitivity.conclusions import (
    DECISION,
    Conclusion,
    Rule,
    assess,
    indexed_names,
    multiplicity_sentence,
    probabilities_at_the_line,
)
from rebayes.sensitivity.conflicts import Conflict, evidence_conflicts
from rebayes.sensitivity.psense import PriorSensitivity, prior_sensitivity

__all__ = [
    "decision_table",
    "Comparison",
    "ComparedFit",
    "compare_fits",
    "compared_fit",
    "compare_posteriors",
]
# --- the comparison ------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ComparedFit:
    """One row of a comparison: a fit and everything computed from it.

    Attributes
    ----------
    prior, variant : str
    fit : rebayes.Fit
    summary : FitSummary
    diagnostics : DiagnosticReport
    sensitivity : PriorSensitivity
    bayes_factors : tuple of BayesFactor
    """

    prior: str
    variant: str
    fit: Fit = field(repr=False)
    summary: FitSummary = field(repr=False)
    diagnostics: DiagnosticReport = field(repr=False)
    sensitivity: PriorSensitivity = field(repr=False)
    bayes_factors: tuple[BayesFactor, ...] = ()

    @property
    def tree(self) -> xr.DataTree:
        """The fit's DataTree."""
        return self.fit.tree

    @property
    def prior_set(self) -> PriorSet:
        """The prior set of the fit."""
        return self.fit.prior

    def to_dict(self) -> dict[str, Any]:
        """Summary, diagnostics, sensitivity and Bayes factors of this fit."""
        return {
            "prior": self.prior,
            "variant": self.variant,
            "prior_summary": self.summary.prior_summary,
            "summary": self.summary.to_dict(),
            "diagnostics": self.diagnostics.to_dict(),
            "psense": self.sensitivity.to_dict(),
            "bayes_factors": [bf.to_dict() for bf in self.bayes_factors],
        }


def _row(compared: ComparedFit) -> dict[str, Any]:
    """Return the comparison-table row of one fit."""
    s, diag = compared.summary, compared.diagnostics
    mcse = diag.mcse
    row: dict[str, Any] = {
        "prior": compared.prior,
        "variant": compared.variant,
        "rr_median": s.pooled_rr.median,
        "rr_low": s.pooled_rr.ci_low,
        "rr_high": s.pooled_rr.ci_high,
        "p_benefit": s.p_benefit,
        "p_benefit_mcse": mcse("p_benefit"),
        "p_benefit_beyond_1_1": s.p_benefit_beyond_1_1,
        "p_benefit_beyond_1_1_mcse": mcse("p_benefit_beyond_1_1"),
        "p_rr_gt_1_1": s.p_rr_gt_1_1,
        "p_rr_gt_1_1_mcse": mcse("p_rr_gt_1_1"),
        "tau_median": s.tau.median,
        "pred_low": s.predictive_rr.ci_low,
        "pred_high": s.predictive_rr.ci_high,
    }
    for group in s.subgroups:
        row[f"p_subgroup_benefit[{group.name}]"] = group.p_benefit
        row[f"p_subgroup_beyond_1_1[{group.name}]"] = group.p_benefit_beyond_1_1
        row[f"p_subgroup_benefit_mcse[{group.name}]"] = mcse(f"p_subgroup_benefit[{group.name}]")
    for ratio in s.ratios:
        row[f"ratio_median[{ratio.name}]"] = ratio.ratio.median
        row[f"ratio_low[{ratio.name}]"] = ratio.ratio.ci_low
        row[f"ratio_high[{ratio.name}]"] = ratio.ratio.ci_high
        row[f"p_ratio_gt_1[{ratio.name}]"] = ratio.p_gt_1
        row[f"p_ratio_gt_1_mcse[{ratio.name}]"] = mcse(f"p_ratio_gt_1[{ratio.name}]")
    by_name = {bf.parameter: bf for bf in compared.bayes_factors}
    if "d" in by_name:
        bf = by_name["d"]
        row["bf01_d"] = bf.bf01
        row["bf01_d_mcse"] = bf.bf01_mcse
        row["bf01_d_low"] = bf.bf01_low
        row["bf01_d_high"] = bf.bf01_high
    row["diagnostics_ok"] = diag.ok
    return row


@dataclass(frozen=True, eq=False, repr=False)
class Comparison(ResultDisplay):
    """One analysis under several priors and data variants.

    ``repr`` is one line (the range of the pooled RR and of P(benefit) over the fits, how
    many conclusions flip), :meth:`to_dataframe` the table with reader column names and
    :meth:`plot` the sensitivity figure.

    Attributes
    ----------
    analysis, title : str
    priors, variants : tuple of str
        In the order fitted.
    table : pandas.DataFrame
        One row per prior x variant: ``prior``, ``variant``, ``rr_median``, ``rr_low``,
        ``rr_high`` (pooled RR at the control risk p0), ``p_benefit`` (P(benefit):
        P(RR > 1), or P(RR < 1) when lower is better) and its ``p_benefit_mcse``,
        ``p_benefit_beyond_1_1`` (P(RR > 1.1), or P(RR < 1/1.1)) and its MCSE,
        ``p_rr_gt_1_1`` (literally P(RR > 1.1); and MCSE), ``tau_median``, ``pred_low``,
        ``pred_high`` (95% predictive RR interval), per subgroup ratio
        ``ratio_median[name]``, ``ratio_low[name]``, ``ratio_high[name]``,
        ``p_ratio_gt_1[name]`` and its ``p_ratio_gt_1_mcse[name]``, then ``bf01_d``,
        ``bf01_d_mcse``, ``bf01_d_low``, ``bf01_d_high`` (Savage-Dickey BF01 for d = 0 and
        its Monte Carlo interval; only when d is a scalar) and ``diagnostics_ok``.
    fits : tuple of ComparedFit
        The rows' fits, in table order.
    conclusions : tuple of Conclusion
        Each rule evaluated in each row.
    direction : Direction
        Which side of RR = 1 is benefit, and the labels of outcome and arms.
    conflicts : tuple of Conflict
        Conflicts in the evidence that no prior removes (fixed vs random effects, the largest
        trial vs the rest; :mod:`rebayes.sensitivity.conflicts`), led with in every output.
    """

    analysis: str
    title: str
    priors: tuple[str, ...]
    variants: tuple[str, ...]
    table: pd.DataFrame
    fits: tuple[ComparedFit, ...]
    conclusions: tuple[Conclusion, ...]
    direction: Direction = field(default=Direction())
    conflicts: tuple[Conflict, ...] = ()

    @property
    def multiplicity(self) -> str:
        """The multiplicity sentence for the probabilities read against 0.95 ("" if few)."""
        count = probabilities_at_the_line(self.conclusions)
        rules = sum(1 for c in self.conclusions if c.rule.threshold == DECISION)
        parts = [_count(len(self.priors), "prior"), _count(len(self.variants), "data variant")]
        if rules > 1:
            parts.append(f"{rules} probabilities each")
        return multiplicity_sentence(count, " x ".join(parts))

    @property
    def flips(self) -> tuple[str, ...]:
        """Sentences for conclusions that change with the prior or the data variant."""
        return tuple(c.sentence() for c in self.conclusions if c.flips)

    @property
    def stable(self) -> tuple[str, ...]:
        """Sentences for conclusions that hold (or fail) under every prior and variant."""
        return tuple(c.sentence() for c in self.conclusions if not c.flips)

    @property
    def psense(self) -> dict[tuple[str, str], PriorSensitivity]:
        """(prior, variant) -> power-scaling sensitivity of that fit."""
        return {(f.prior, f.variant): f.sensitivity for f in self.fits}

    @property
    def bayes_factor(self) -> dict[tuple[str, str], tuple[BayesFactor, ...]]:
        """(prior, variant) -> Savage-Dickey Bayes factors of that fit."""
        return {(f.prior, f.variant): f.bayes_factors for f in self.fits}

    @property
    def pooled_kind(self) -> str:
        """``"pooled"``, or ``"row-average"`` for a meta-regression (its fits' own word)."""
        return self.fits[0].summary.pooled_kind if self.fits else "pooled"

    @property
    def diagnostics_ok(self) -> bool:
        """Whether every fit passes every convergence gate."""
        return all(f.diagnostics.ok for f in self.fits)

    @property
    def diagnostic_failures(self) -> tuple[str, ...]:
        """``"prior / variant: gate fails: ..."`` for every failing gate of every fit."""
        return tuple(
            f"{f.prior} / {f.variant}: {failure}"
            for f in self.fits
            for failure in f.diagnostics.failures
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: table rows, flips, stable conclusions and each fit's details."""
        # Keys about benefit get their literal names when no direction is declared.
        records = [
            {self.direction.key(k): plain(v) for k, v in row.items()}
            for row in self.table.to_dict(orient="records")
        ]
        return {
            "analysis": self.analysis,
            "title": self.title,
            "direction": self.direction.to_dict(),
            "priors": list(self.priors),
            "effect_priors": self.effect_priors(),
            "variants": list(self.variants),
            "table": records,
            "conflicts": [c.to_dict() for c in self.conflicts],
            "flips": list(self.flips),
            "stable": list(self.stable),
            "multiplicity": self.multiplicity,
            "conclusions": [c.to_dict() for c in self.conclusions],
            "diagnostics_ok": self.diagnostics_ok,
            "diagnostic_failures": list(self.diagnostic_failures),
            "fits": [f.to_dict() for f in self.fits],
        }

    def _ratio_names(self) -> list[str]:
        prefix = "ratio_median["
        return [c[len(prefix) : -1] for c in self.table.columns if c.startswith(prefix)]

    def _cells(self, row: pd.Series) -> list[str]:
        """Format the cells of one table row (shared by __str__ and to_markdown)."""
        cells = [
            str(row["prior"]),
            str(row["variant"]),
            f"{row['rr_median']:.2f} ({row['rr_low']:.2f} to {row['rr_high']:.2f})",
            f"{row['p_benefit']:.3f}",
            f"{row[self._beyond_column]:.3f}",
            f"{row['tau_median']:.2f}",
            f"{row['pred_low']:.2f} to {row['pred_high']:.2f}",
        ]
        for name in self._ratio_names():
            cells.append(
                f"{row[f'ratio_median[{name}]']:.2f} ({row[f'ratio_low[{name}]']:.2f} to "
                f"{row[f'ratio_high[{name}]']:.2f}); P(>1) {row[f'p_ratio_gt_1[{name}]']:.3f}"
            )
        if "bf01_d" in self.table:
            cells.append(
                f"{row['bf01_d']:.2f} ({row['bf01_d_low']:.2f} to {row['bf01_d_high']:.2f})"
            )
        exact = any(f.diagnostics.engine == "exact" for f in self.fits
                    if (f.prior, f.variant) == (row["prior"], row["variant"]))
        cells.append("exact" if exact else "ok" if row["diagnostics_ok"] else "FAIL")
        return cells

    @property
    def _beyond_column(self) -> str:
        """The column of P(benefit beyond RR 1.1) (older tables: ``p_rr_gt_1_1``)."""
        if "p_benefit_beyond_1_1" in self.table:
            return "p_benefit_beyond_1_1"
        return "p_rr_gt_1_1"

    def _headers(self) -> list[str]:
        d = self.direction
        return [
            "prior",
            "variant",
            "pooled RR (95% CrI)",
            f"P({d.benefit})".replace(" ", ""),
            f"P({d.beyond(1.1)})".replace(" ", ""),
            "tau",
            "predictive RR 95%",
            *[f"RR ratio {name}" for name in self._ratio_names()],
            *([f"BF01 (d=0, {self._effect_scale})"] if "bf01_d" in self.table else []),
            "diagnostics",
        ]

    @property
    def _effect_scale(self) -> str:
        """The one effect scale of the fits' Bayes factors (``log OR`` or ``log RR``)."""
        scales = {bf.effect_scale for f in self.fits for bf in f.bayes_factors}
        return next(iter(scales)) if len(scales) == 1 else "log OR"

    def effect_priors(self) -> dict[str, str]:
        """Prior name -> its effect prior as the ratio it implies, on the side it points to."""
        return {f.prior: f.prior_set.effect_description(self.direction) for f in self.fits}

    def _at(self) -> str:
        """``"at a control risk of 53.5%, the median of the 10 trials' control arms"``."""
        return self.fits[0].summary.at_control_risk if self.fits else "at the control risk"

    def _what(self) -> str:
        """``RR of tuberculosis, BCG over no vaccine (benefit: RR < 1)``."""
        d = self.direction
        benefit = f"benefit: {d.benefit}" if d.declared else "no direction of benefit declared"
        return f"RR of {d.outcome}, {d.treatment} over {d.control} ({benefit})"

    def _formatted(self, fail: str = "FAIL") -> pd.DataFrame:
        """Return :attr:`table` as formatted cells under the printed headers.

        ``fail`` is what a row whose diagnostics fail shows (``**FAIL**`` in markdown).
        """
        rows = [self._cells(r) for _, r in self.table.iterrows()]
        for cells in rows:
            if cells[-1] == "FAIL":
                cells[-1] = fail
        return tables.frame(self._headers(), rows)

    def _align(self) -> str:
        """Prior and variant left, the numbers right."""
        return "ll" + "r" * (len(self._headers()) - 2)

    def __str__(self) -> str:
        lines = [
            f"{self.analysis}" + (f": {self.title}" if self.title else ""),
            f"Posterior across priors and data variants ({self._what()}, {self._at()}; tau "
            "on the model's effect scale)",
            self.direction.sentence(),
            "",
            tables.text(self._formatted(), align=self._align()),
            "",
            "Effect priors, on the outcome's scale:",
            *(f"  {name}: {text}" for name, text in self.effect_priors().items()),
        ]
        if self.conflicts:
            lines += ["", "CONFLICTS in the evidence (RevMan's analysis; no prior removes them):"]
            lines += [f"  - {c}" for c in self.conflicts]
        lines += ["", "Conclusions:"]
        lines += [f"  - {s}" for s in (*self.flips, *self.stable)]
        if self.multiplicity:
            lines += [f"  - {self.multiplicity}"]
        lines += ["", "Prior sensitivity (power-scaling) and Bayes factors:"]
        for f in self.fits:
            lines.append(f"  {f.prior} / {f.variant}: {f.sensitivity.sentence()}")
            lines += [f"      {bf}" for bf in f.bayes_factors]
        if not self.diagnostics_ok:
            lines += ["", "Diagnostics FAIL:"] + [f"  - {x}" for x in self.diagnostic_failures]
        return "\n".join(lines)

    def _short(self) -> str:
        t = self.table
        flips = len(self.flips)
        return (
            ("DIAGNOSTICS FAIL; " if not self.diagnostics_ok else "")
            + f"{self.analysis}: {_count(len(self.priors), 'prior')} x "
            f"{_count(len(self.variants), 'variant')}, "
            f"pooled RR {t['rr_median'].min():.2f} to {t['rr_median'].max():.2f}, "
            f"P({self.direction.benefit}) {t['p_benefit'].min():.3f} to "
            f"{t['p_benefit'].max():.3f}; "
            + (f"{flips} conclusions flip" if flips else "no conclusion flips")
            + (f"; {_count(len(self.conflicts), 'CONFLICT')} in the evidence"
               if self.conflicts else "")
        )

    def summary(self) -> str:
        """Return the conclusions in words: those that flip with the prior or data first."""
        return " ".join([*self.flips, *self.stable]) or self._short()

    def to_dataframe(self) -> pd.DataFrame:
        """Return :attr:`table` with the column names a reader knows (as in the report).

        Returns
        -------
        pandas.DataFrame
            ``prior``, ``variant``, ``pooled RR``, ``RR 2.5%``, ``RR 97.5%``, ``P(RR < 1)``
            (the dataset's direction of benefit), ``P(RR < 0.91)``, ``tau``, ``predictive RR
            2.5%`` and ``97.5%``, per subgroup and ratio its probabilities and ratio, the
            Bayes factor and ``diagnostics ok``; MCSE columns follow their probability. The
            literal ``P(RR > 1.1)`` is kept only where it differs from P(benefit beyond 1.1).
        """
        names: dict[str, str] = {}
        for column in self.table.columns:
            name = self._reader_name(column)
            # When higher is better, P(RR > 1.1) *is* P(benefit beyond 1.1): keep one column.
            if name not in names.values():
                names[column] = name
        return self.table[list(names)].rename(columns=names)

    def _reader_name(self, column: str) -> str:
        """Return the report's name of a :attr:`table` column."""
        d = self.direction
        match = re.fullmatch(r"(.+)\[(.+)\]", column)
        base, group = match.groups() if match else (column, "")
        names = {
            "rr_median": "pooled RR",
            "rr_low": "RR 2.5%",
            "rr_high": "RR 97.5%",
            "p_benefit": f"P({d.benefit})",
            "p_benefit_beyond_1_1": f"P({d.beyond(1.1)})",
            "p_rr_gt_1_1": "P(RR > 1.1)",
            "tau_median": f"tau ({self._effect_scale})",
            "pred_low": "predictive RR 2.5%",
            "pred_high": "predictive RR 97.5%",
            "p_subgroup_benefit": f"P({d.benefit} | {group})",
            "p_subgroup_beyond_1_1": f"P({d.beyond(1.1)} | {group})",
            "ratio_median": f"RR ratio {group}",
            "ratio_low": f"RR ratio {group} 2.5%",
            "ratio_high": f"RR ratio {group} 97.5%",
            "p_ratio_gt_1": f"P(RR ratio > 1 | {group})",
            "bf01_d": "BF01 (d = 0)",
            "bf01_d_low": "BF01 low",
            "bf01_d_high": "BF01 high",
            "diagnostics_ok": "diagnostics ok",
        }
        if base.endswith("_mcse"):
            return "MCSE " + self._reader_name(
                base.removesuffix("_mcse") + (f"[{group}]" if group else ""))
        return names.get(base, column)

    def plot(self, title: str = "", kind: str = "sensitivity") -> Figure:
        """Draw the comparison's figure.

        Parameters
        ----------
        title : str
            Overrides the default title.
        kind : {"sensitivity", "posteriors"}
            ``sensitivity``: the pooled RR per prior x variant
            (:func:`rebayes.plots.sensitivity.sensitivity_plot`); ``posteriors``: its
            posterior density under each prior over the density each prior implies
            (:func:`rebayes.plots.sensitivity.posterior_overlay`).

        Returns
        -------
        matplotlib.figure.Figure
        """
        from rebayes.plots.sensitivity import posterior_overlay, sensitivity_plot

        if kind == "sensitivity":
            return sensitivity_plot(self.table, self.direction, self.analysis, self.pooled_kind,
                                    title)
        if kind != "posteriors":
            raise ValueError(f"kind={kind!r}: 'sensitivity' or 'posteriors'")
        return posterior_overlay(
            self.overlay_data(), {(f.prior, f.variant): f.summary.p_benefit for f in self.fits},
            priors=self.priors, variants=self.variants, direction=self.direction,
            analysis=self.analysis, pooled_kind=self.pooled_kind,
            control_risk=self.fits[0].summary.control_risk, title=title)

    def overlay_data(
        self,
    ) -> dict[tuple[str, str], tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]]:
        """Return what ``plot(kind="posteriors")`` draws, per (prior, variant).

        The pooled-RR draws and the prior-implied RR's density of each fit, kept with the fit
        (:meth:`rebayes.Fit.derived`): a report asks for them once, while the draws are in
        memory, and a report from cached fits reads no fit file for them.
        """
        return {
            (f.prior, f.variant): (
                f.fit.derived("pooled_rr_draws", partial(_pooled_draws, f.fit)),
                f.fit.derived("implied_prior_rr_density", partial(_implied_density, f.fit)),
            )
            for f in self.fits
        }

    def to_markdown(self) -> str:
        """Table, conclusions, sensitivity and Bayes factors as markdown."""
        lines = [
            tables.markdown(self._formatted(fail="**FAIL**"), align=self._align()),
            "",
            f"RR: {self.direction.ratio_label} {self._at()}; "
            f"{self.direction.sentence()} CrI: equal-tailed credible interval; BF01: "
            f"Savage-Dickey Bayes factor for d = 0 on the {self._effect_scale} scale (> 1 "
            "favours no effect), with its Monte Carlo interval (+- 2 MCSE); evidence words "
            "only when the whole interval lies in one band.",
            "",
        ]
        if self.conflicts:
            lines += ["**Conflicts in the evidence (no prior removes them):**", ""]
            lines += [f"- {c}" for c in self.conflicts]
            lines.append("")
        if self.flips:
            lines += ["**Conclusions that change with the prior or data variant:**", ""]
            lines += [f"- {s}" for s in self.flips]
            lines.append("")
        if self.stable:
            lines += ["**Conclusions that do not change:**", ""]
            lines += [f"- {s}" for s in self.stable]
            lines.append("")
        if self.multiplicity:
            lines += [self.multiplicity, ""]
        lines += [
            "**Prior sensitivity (power-scaling, Kallioinen et al. 2024) and Bayes factors:**",
            "",
        ]
        for f in self.fits:
            bfs = "; ".join(str(bf) for bf in f.bayes_factors)
            lines.append(f"- *{f.prior} / {f.variant}*: {f.sensitivity.sentence()} {bfs}")
        return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def decision_table(comparisons: Sequence[Comparison]) -> pd.DataFrame:
    """P(benefit) and P(benefit beyond RR 1.1) of every analysis, prior and data variant.

    Parameters
    ----------
    comparisons : sequence of Comparison
        One per analysis, in the order to show.

    Returns
    -------
    pandas.DataFrame
        ``label`` (the analysis's name; for a meta-regression or separate subgroup effects,
        one row per subgroup, ``"<name>: <subgroup>"``, never its row average), ``analysis``,
        ``variant``, ``prior``, ``p_benefit``, ``p_beyond`` and their Monte Carlo standard
        errors ``p_benefit_mcse``, ``p_beyond_mcse`` (NaN where none is computed: a
        subgroup's benefit beyond RR 1.1).
    """
    records = []
    for c in comparisons:
        title = c.analysis.replace("_", " ")
        t = c.table
        subgroups = indexed_names(t.columns, "p_subgroup_benefit")
        for row in t.to_dict(orient="records"):
            if subgroups:
                for g in subgroups:
                    records.append({
                        "label": f"{title}: {g.replace('_', ' ')}", "analysis": c.analysis,
                        "variant": row["variant"], "prior": row["prior"],
                        "p_benefit": row[f"p_subgroup_benefit[{g}]"],
                        "p_beyond": row.get(f"p_subgroup_beyond_1_1[{g}]", math.nan),
                        "p_benefit_mcse": row.get(f"p_subgroup_benefit_mcse[{g}]", math.nan),
                        "p_beyond_mcse": math.nan,
                    })
            else:
                records.append({
                    "label": title, "analysis": c.analysis, "variant": row["variant"],
                    "prior": row["prior"], "p_benefit": row["p_benefit"],
                    "p_beyond": row["p_benefit_beyond_1_1"],
                    "p_benefit_mcse": row.get("p_benefit_mcse", math.nan),
                    "p_beyond_mcse": row.get("p_benefit_beyond_1_1_mcse", math.nan),
                })
    return pd.DataFrame.from_records(
        records, columns=["label", "analysis", "variant", "prior", "p_benefit", "p_beyond",
                          "p_benefit_mcse", "p_beyond_mcse"])


def _sensitivity(fit: Fit) -> PriorSensitivity:
    return prior_sensitivity(fit.tree)


def _bayes_factors(fit: Fit) -> tuple[BayesFactor, ...]:
    if fit.engine == "exact":  # the density at d = 0 from the exact marginal: no MC interval
        from rebayes.sensitivity.exact_bayes_factor import exact_savage_dickey

        return exact_savage_dickey(fit.design, fit.prior, posterior=fit.exact)
    return savage_dickey(fit.tree)


def compared_fit(fit: Fit) -> ComparedFit:
    """Return what :func:`compare_fits` needs of one fit: summary, gates, psense, BFs.

    Each is computed once and kept with the fit (:meth:`rebayes.Fit.derived`): a cached fit
    then needs none of its draws here, and a report computes them ahead, beside sampling.
    """
    return ComparedFit(
        prior=fit.prior.name,
        variant=fit.design.variant,
        fit=fit,
        summary=fit.summary(),
        diagnostics=fit.diagnostics(),
        sensitivity=fit.derived("sensitivity", partial(_sensitivity, fit)),
        bayes_factors=fit.derived("bayes_factors", partial(_bayes_factors, fit)),
    )


def compare_fits(
    fits: Sequence[Fit],
    rules: Sequence[Rule] | None = None,
    conflicts: Sequence[Conflict] = (),
) -> Comparison:
    """Build a :class:`Comparison` from fits already made (one analysis, any priors/variants).

    Parameters
    ----------
    fits : sequence of rebayes.Fit
        Fits of the same analysis.
    rules : sequence of Rule, optional
        Conclusions to check; default :func:`default_rules`.
    conflicts : sequence of Conflict
        Conflicts in the evidence (:func:`rebayes.sensitivity.conflicts.evidence_conflicts`
        of the analysed table), shown first.

    Returns
    -------
    Comparison
    """
    if not fits:
        raise RebayesError("nothing to compare: no fits")
    names = {f.spec.name for f in fits}
    if len(names) > 1:
        raise RebayesError(f"compare one analysis at a time, not {', '.join(sorted(names))}")
    compared = [compared_fit(f) for f in fits]
    check_one_likelihood(bf for c in compared for bf in c.bayes_factors)
    directions = {f.summary().direction for f in fits}  # read without the draws
    if len(directions) > 1:
        raise RebayesError(
            "the fits disagree on the direction of benefit or its labels: "
            + "; ".join(sorted(d.sentence() for d in directions))
        )
    (direction,) = directions
    table = pd.DataFrame([_row(c) for c in compared])
    table.attrs["direction"] = direction
    spec = fits[0].spec
    return Comparison(
        analysis=spec.name,
        title=spec.title,
        priors=tuple(dict.fromkeys(c.prior for c in compared)),
        variants=tuple(dict.fromkeys(c.variant for c in compared)),
        table=table,
        fits=tuple(compared),
        conclusions=assess(table, rules, direction),
        direction=direction,
        conflicts=tuple(conflicts),
    )


def compare_posteriors(
    spec: AnalysisSpec,
    priors: Iterable[str | PriorSet] | None = None,
    variants: Iterable[str | None] | None = None,
    *,
    seed: int | None = None,
    settings: SamplerSettings | None = None,
    cache: bool = True,
    progress: bool = False,
    rules: Sequence[Rule] | None = None,
    engine: str = "nuts",
    on_fallback: Callable[[str], None] | None = None,
) -> Comparison:
    """Fit one analysis under several priors and data variants and compare the posteriors.

    Parameters
    ----------
    spec : AnalysisSpec
    priors : iterable of str or PriorSet, optional
        Default: the spec's priors (every built-in set unless it names some).
    variants : iterable of str, optional
        Data variants (``published``, ``a``, ``a+b``, ...); default: the spec's own.
    seed : int, optional
        Default ``spec.seed``; the same seed for every fit.
    settings : rebayes.SamplerSettings, optional
    cache : bool
        Read and write the fit cache.
    progress : bool
        Show a progress bar per variant.
    rules : sequence of Rule, optional
        Conclusions to check for flips; default :func:`default_rules`.
    engine : {"nuts", "exact", "auto"}
        What answers each fit (:func:`rebayes.bayes.fit.fit`): per prior set and variant, the
        exact engine where ``exact`` or ``auto`` asks for it and it can answer.
    on_fallback : callable, optional
        With ``engine="auto"``: called with the reason when NUTS answers instead.

    Returns
    -------
    Comparison

    Examples
    --------
    >>> import rebayes as rb
    >>> from rebayes.sensitivity.comparison import compare_posteriors
    >>> spec = rb.load_script("models/timing.py")                              # doctest: +SKIP
    >>> cmp = compare_posteriors(spec, ["weakly_informative", "skeptical"])    # doctest: +SKIP
    >>> print(cmp.flips)                                                       # doctest: +SKIP
    """
    from rebayes.bayes.fit import fit_priors
    from rebayes.store.fits import flush_cache

    prior_list = list(priors) if priors is not None else spec.priors
    variant_list = list(variants) if variants is not None else [spec.variant]
    if not variant_list:
        raise RebayesError("no data variant to compare (give at least one)")
    from rebayes.data.trials import load_table

    # Each variant's table loaded once, for its fits and the conflicts (a spec naming no
    # dataset fails in fit_priors, as it always did).
    tables = {v: load_table(spec.data, v or spec.variant) if spec.data is not None else None
              for v in variant_list}
    fits: list[Fit] = []
    for variant in variant_list:
        fits += fit_priors(
            spec,
            prior_list,
            variant=variant,
            seed=seed,
            settings=settings,
            cache=cache,
            progress=progress,
            trials=tables[variant],
            engine=engine,
            on_fallback=on_fallback,
        )
    if cache:
        flush_cache()
    trials = tables[variant_list[0]]
    assert trials is not None  # fit_priors raised for a spec naming no dataset
    return compare_fits(fits, rules, evidence_conflicts(trials.to_frame(),
                                                        fits[0].summary().direction))


def _pooled_draws(fit: Fit) -> np.ndarray:
    from rebayes.bayes.quantities import pooled_rr

    return np.asarray(pooled_rr(fit.tree)).ravel()


def _implied_density(fit: Fit) -> tuple[np.ndarray, np.ndarray]:
    from rebayes.plots.sensitivity import density_on_log_scale
    from rebayes.sensitivity.psense import implied_prior_rr

    return density_on_log_scale(np.asarray(implied_prior_rr(fit.tree)).ravel())
