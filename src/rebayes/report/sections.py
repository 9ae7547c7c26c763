"""HTML sections of an analysis page: prior sensitivity and the checks of a fit.

Prior sensitivity, convergence gates, posterior predictive check and PSIS-LOO. Each function
saves its figures into the report's ``figures/`` directory, prepares the section's tables and
sentences, and renders its template (``section_sensitivity.html``,
``section_diagnostics.html``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from markupsafe import Markup

from rebayes.bayes.fit import Fit
from rebayes.bayes.mcse import MARK
from rebayes.bayes.records import EXACT_WORDS
from rebayes.checks.loo import loo_by_trial
from rebayes.checks.ppc import ppc_table, trial_ppc_table
from rebayes.report.analysis import save_fit_figure
from rebayes.report.html import (
    Cell,
    Figure,
    Table,
    figure,
    is_indicator,
    readable,
    reader_label,
    render,
    table,
)
from rebayes.sensitivity.comparison import ComparedFit, Comparison
from rebayes.sensitivity.conclusions import Conclusion, indexed_names

__all__ = ["FlipTable", "diagnostics_section", "flip_table", "sensitivity_section"]


def _fig(fit: Fit, draw, figures: Path, name: str, caption: str, inputs: object = None) -> Figure:
    """Save a figure drawn from ``fit`` (:func:`~rebayes.report.analysis.save_fit_figure`)."""
    return figure(f"figures/{save_fit_figure(fit, draw, figures, name, inputs)}", caption)


@dataclass(frozen=True)
class FlipTable:
    """A conclusion that depends on the prior or data variant: its label and value table."""

    label: str
    table: Table


def flip_table(conclusion: Conclusion) -> FlipTable:
    """Return a prior-dependent conclusion as a table: value per prior x variant, marked.

    Green where the conclusion holds, red where it does not; "≈" where the value is within
    two Monte Carlo standard errors of the threshold (the verdict there is not settled).
    """
    by_key = {(r.prior, r.variant): r for r in conclusion.rows}
    values = conclusion.to_dataframe()
    d = conclusion.rule.digits
    rows = []
    for prior in values.index:
        cells: list[object] = [prior.replace("_", " ")]
        for variant in values.columns:
            r = by_key.get((prior, variant))
            if r is None or r.value != r.value:
                cells.append("-")
                continue
            mark = f" {MARK}" if r.near else ""
            cells.append(Cell(f"{r.value:.{d}f}{mark}", "num pass" if r.holds else "num fail"))
        rows.append(cells)
    return FlipTable(conclusion.rule.label,
                     table(("prior", *[f"{v} data" for v in values.columns]), rows))


def sensitivity_section(comparison: Comparison, figures: Path) -> Markup:
    """Posteriors across priors and data variants, flips in words, psense, Bayes factors."""
    from rebayes.plots import prior_posterior_plot

    name = comparison.analysis
    t = comparison.table
    variants = list(dict.fromkeys(t["variant"])) if "variant" in t else []
    ratio_names = indexed_names(t.columns, "p_ratio_gt_1")
    subgroup_names = indexed_names(t.columns, "p_subgroup_benefit")
    d = comparison.direction
    # A meta-regression's pooled RR is a row average: its decision columns are per subgroup.
    headers = ["prior", "variant", f"{comparison.pooled_kind} RR (95% CrI)"]
    headers += ([f"P({d.benefit} in {g.replace('_', ' ')})" for g in subgroup_names]
                if subgroup_names else [f"P({d.benefit})", f"P({d.beyond(1.1)})"])
    headers += ["tau median", "predictive RR (95% PrI)"]
    headers += [f"ratio {r} (95% CrI)" for r in ratio_names]
    headers += [f"P(ratio {r} > 1)" for r in ratio_names]
    headers += ["BF01 (d = 0)", "gates"]
    rows = []
    # The table has one row per compared fit, in their order.
    for row, compared in zip(t.to_dict(orient="records"), comparison.fits, strict=True):
        cells: list[object] = [
            row["prior"], row["variant"],
            f"{row['rr_median']:.2f} ({row['rr_low']:.2f} to {row['rr_high']:.2f})",
            *([Cell(f"{row[f'p_subgroup_benefit[{g}]']:.3f}", "num") for g in subgroup_names]
              if subgroup_names else
              [Cell(f"{row['p_benefit']:.3f}", "num"),
               Cell(f"{row['p_benefit_beyond_1_1']:.3f}", "num")]),
            Cell(f"{row['tau_median']:.2f}", "num"),
            f"{row['pred_low']:.2f} to {row['pred_high']:.2f}",
        ]
        for r in ratio_names:
            # NaN: the variant has no trial in one of the ratio's cells.
            identified = row[f"ratio_median[{r}]"] == row[f"ratio_median[{r}]"]
            cells.append(f"{row[f'ratio_median[{r}]']:.2f} ({row[f'ratio_low[{r}]']:.2f} to "
                         f"{row[f'ratio_high[{r}]']:.2f})" if identified else "not identified")
        cells += [Cell(f"{row[f'p_ratio_gt_1[{r}]']:.3f}", "num")
                  if row[f"p_ratio_gt_1[{r}]"] == row[f"p_ratio_gt_1[{r}]"] else "-"
                  for r in ratio_names]
        bf = row.get("bf01_d")
        cells.append(Cell(f"{bf:.2f}" if bf is not None and bf == bf else "-", "num"))
        ok = bool(row["diagnostics_ok"])
        cells.append(Cell("exact") if compared.diagnostics.exact else
                     Cell("pass" if ok else "FAIL", "pass" if ok else "fail"))
        rows.append(cells)
    first = comparison.fits[0]
    shown_factors = [(bf, f) for f in comparison.fits if f.variant == comparison.variants[0]
                     for bf in f.bayes_factors]
    # The two comparison figures show every fit of the comparison, under its labels.
    shown = [(f.fit.key, f.prior, f.variant) for f in comparison.fits]
    return render(
        "section_sensitivity.html",
        variants=", ".join(f"{v}" for v in variants),
        comparison_table=table(headers, rows),
        flips=[flip_table(c) for c in comparison.conclusions if c.flips],
        stable=list(comparison.stable),
        conflicts=[str(c) for c in comparison.conflicts],
        multiplicity=comparison.multiplicity,
        figures=[
            _fig(first.fit, lambda: comparison.plot(kind="posteriors"), figures,
                 f"{name}_posteriors.png",
                 "Posterior densities of the pooled RR under each prior (solid) and the "
                 "RR each prior implies before seeing data (dashed), per data variant.",
                 shown),
            _fig(first.fit, comparison.plot, figures,
                 f"{name}_sensitivity.png",
                 "Pooled RR (95% CrI; thin: 95% predictive interval) under each prior and "
                 f"data variant, with P({d.benefit}).", shown),
            _fig(first.fit, lambda: prior_posterior_plot(first.fit.tree), figures,
                 f"{name}_prior_posterior.png",
                 f"Prior (dashed) and posterior (filled) of the effect and tau under the "
                 f"{first.prior} prior."),
        ],
        psense=table(("prior", "variant", "what the prior drives"),
                     [(f.prior, f.variant, readable(f.sensitivity.sentence(), d))
                      for f in comparison.fits]),
        bayes_factors=table(
            ("prior", "variant", "hypothesis", "BF01", "Monte Carlo interval", "in words"),
            [
                (f.prior, f.variant, bf.meaning, Cell(f"{bf.bf01:.2f}", "num"),
                 Cell("none (exact)") if bf.engine == "exact" else
                 Cell(f"{bf.bf01_low:.2f} to {bf.bf01_high:.2f}", "num"),
                 bf.verdict + (f" ({bf.note})" if bf.note else ""))
                for bf, f in shown_factors
            ],
        ),
        bayes_factor_note=_bayes_factor_note({bf.engine for bf, _ in shown_factors}),
    )


def _bayes_factor_note(engines: set[str]) -> str:
    """How the table's Bayes factors were computed, by the engines that answered."""
    if engines == {"exact"}:
        return ("the prior's and the posterior's densities at the null are both exact "
                "(quadrature: no Monte Carlo interval)")
    if "exact" in engines:
        return ("the prior's density at the null is exact; the posterior's is exact where "
                "the exact engine answered and elsewhere a kernel estimate with its Monte "
                "Carlo interval, and words are given only when that interval lies in one band")
    return ("the prior's density at the null is exact, the posterior's a kernel estimate with "
            "its Monte Carlo interval, and words are given only when that interval lies in one "
            "band")


def diagnostics_section(comparison: Comparison, figures: Path) -> Markup:
    """Convergence gates of every fit, the default fit's details, PPC and PSIS-LOO.

    A fit the exact engine answered has no Markov chain: its gate row says so, and when it is
    the default fit, the page says how it was integrated instead of its chains' details.
    """
    name = comparison.analysis
    d = comparison.direction
    first = comparison.fits[0]
    gate_names, headers = _gate_headers(comparison)
    rows = []
    for f in comparison.fits:
        if f.diagnostics.exact:  # no Markov chain: no gate applies, none fails
            rows.append([f.prior, f.variant, Cell(EXACT_WORDS),
                         *[Cell("-") for _ in gate_names[1:]]])
            continue
        details = f.diagnostics.gate_details()
        rows.append([
            f.prior, f.variant,
            *[Cell(readable(details[g], d), "pass" if f.diagnostics.gates[g] else "fail")
              for g in gate_names],
        ])
    fit = first.fit
    return render(
        "section_diagnostics.html",
        gates=table(headers, rows),
        all_exact=not gate_names,
        failures=[readable(s, d) for s in comparison.diagnostic_failures],
        declared=d.declared,
        prior=first.prior,
        variant=first.variant,
        exact=first.diagnostics.method if first.diagnostics.exact else None,
        **({} if first.diagnostics.exact else _chain_details(first, figures, name)),
        **_model_checks(fit, figures, name),
    )


def _gate_headers(comparison: Comparison) -> tuple[list[str], list[str]]:
    """Return the gates of the comparison's NUTS fits and the gate table's headers.

    Without a NUTS fit (every fit exact), one column says what answered.
    """
    nuts = next((f for f in comparison.fits if not f.diagnostics.exact), None)
    if nuts is None:
        return [], ["prior", "variant", "engine"]
    gate_names = list(nuts.diagnostics.gates)
    return gate_names, ["prior", "variant", *[nuts.diagnostics.gate_label(g) for g in gate_names]]


def _chain_details(first: ComparedFit, figures: Path, name: str) -> dict[str, Any]:
    """Return the default NUTS fit's reported quantities, sampler facts and chain figures."""
    from rebayes.plots import rank_plot, trace_plot

    d = first.summary.direction
    fit = first.fit
    reported = first.diagnostics.reported()
    reported_table = table(
        ("quantity", "mean", "sd", "95% interval", "MCSE", "ESS bulk", "ESS tail", "R-hat"),
        [
            (reader_label(q, d), Cell(f"{r['mean']:.4g}", "num"), Cell(f"{r['sd']:.3g}", "num"),
             "-" if is_indicator(q) else f"{r['ci_low']:.3g} to {r['ci_high']:.3g}",
             Cell(f"{r['mcse_mean']:.2g}", "num"),
             Cell(f"{r['ess_bulk']:.0f}", "num" if r["ess_bulk_ok"] else "num fail"),
             Cell(f"{r['ess_tail']:.0f}", "num" if r["ess_tail_ok"] else "num fail"),
             Cell(f"{r['rhat']:.3f}", "num" if r["rhat_ok"] else "num fail"))
            for q, r in reported.iterrows()
        ],
    )
    return {
        "reported": reported_table,
        "ebfmi": ", ".join(f"{v:.2f}" for v in first.diagnostics.ebfmi),
        "divergences": first.diagnostics.divergences,
        "n_draws": first.diagnostics.n_draws,
        "chain_figures": [
            _fig(fit, lambda: rank_plot(fit.tree), figures, f"{name}_rank.png",
                 "Rank plots: each chain's ranks should be uniform."),
            _fig(fit, lambda: trace_plot(fit.tree), figures, f"{name}_trace.png",
                 "Trace plots."),
        ],
    }


def _model_checks(fit: Fit, figures: Path, name: str) -> dict[str, Any]:
    """Return the default fit's posterior predictive checks and PSIS-LOO by trial."""
    from rebayes.plots import pareto_k_plot, ppc_plot, trial_ppc_plot

    ppc = fit.derived("ppc_table", lambda: ppc_table(fit.tree))
    outside = ppc.loc[~ppc["within"]]
    sentence = (
        f"{len(ppc) - len(outside)} of {len(ppc)} observed arm counts lie inside their 95% "
        "posterior predictive interval"
        + (f"; outside: {', '.join(f'{r.row} ({r.arm})' for r in outside.itertuples())}."
           if len(outside) else ".")
    )
    trial = fit.derived("trial_ppc_table", lambda: trial_ppc_table(fit.tree))
    misfits = trial.loc[~trial["within"]]
    scale = trial["scale"].iloc[0]
    outside_trials = ", ".join(f"{r.trial} (p = {r.p_value:.3f})" for r in misfits.itertuples())
    trial_sentence = (
        f"{len(trial) - len(misfits)} of {len(trial)} trials' observed {scale} lie inside the "
        f"95% range of a new trial like them"
        + (f"; outside: {outside_trials}." if len(misfits) else ".")
        + f" About {0.05 * len(trial):.1f} of {len(trial)} would lie outside by chance."
    )
    loo = fit.derived("loo_by_trial", lambda: loo_by_trial(fit.tree))
    return dict(
        ppc_sentence=sentence,
        ppc_figure=_fig(fit, lambda: ppc_plot(fit.tree), figures, f"{name}_ppc.png",
                        "Observed events per arm (points) against replicated data (95% and 50% "
                        "intervals); red: outside the 95% interval."),
        trial_sentence=trial_sentence,
        trial_figure=_fig(fit, lambda: trial_ppc_plot(fit.tree, table=trial), figures,
                          f"{name}_trial_ppc.png",
                          f"Observed {scale.split()[1]} per trial (points) against a new "
                          "similar trial's (95% and 50% ranges); red: outside the 95% range."),
        loo_sentence=(
            f"elpd_loo = {loo.elpd:.2f} (SE {loo.se:.2f}), p_loo = {loo.p:.2f}; one "
            "observation per trial, its own baselines and random effect integrated out "
            f"({loo.method} likelihood). "
            + (f"Pareto k above {loo.pareto_k_max}: {', '.join(loo.high_k_trials)}."
               if loo.high_k_trials else
               f"Every trial has Pareto k below {loo.pareto_k_max}.")
        ),
        loo_table=table(("trial", "elpd_i", "Pareto k"),
                        [(trial, Cell(f"{r['elpd_i']:.2f}", "num"),
                          Cell(f"{r['pareto_k']:.2f}", "num fail" if r["high_k"] else "num"))
                         for trial, r in loo.table.iterrows()]),
        loo_figure=_fig(fit, lambda: pareto_k_plot(loo, f"Pareto k by trial: {name}"), figures,
                        f"{name}_pareto_k.png", "Pareto k per trial; above 0.7 the LOO estimate "
                        "of that trial is unreliable."),
    )
