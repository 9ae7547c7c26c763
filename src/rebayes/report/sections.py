"""HTML sections of an analysis page: prior sensitivity and the checks of a fit.

Prior sensitivity, convergence gates, posterior predictive check and PSIS-LOO. Each function
saves its figures into the report's ``figures/`` directory and returns HTML.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from rebayes.checks.loo import loo_by_trial
from rebayes.checks.ppc import ppc_table, trial_ppc_table
from rebayes.report.analysis import save_figure
from rebayes.report.html import Cell, figure, is_indicator, readable, reader_label, table
from rebayes.sensitivity.comparison import Comparison
from rebayes.sensitivity.conclusions import Conclusion

__all__ = ["diagnostics_section", "sensitivity_section"]


def _fig(fig, figures: Path, name: str, caption: str) -> str:
    return figure(f"figures/{save_figure(fig, figures, name)}", caption)


def flip_table(conclusion: Conclusion) -> str:
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
            mark = " ≈" if r.near else ""
            cells.append(Cell(f"{r.value:.{d}f}{mark}", "num pass" if r.holds else "num fail"))
        rows.append(cells)
    return (f"<p><strong>{escape(conclusion.rule.label)}</strong>: holds in green cells, not "
            "in red; ≈ within Monte Carlo error of the threshold.</p>"
            + table(("prior", *[f"{v} data" for v in values.columns]), rows))


def sensitivity_section(comparison: Comparison, figures: Path) -> str:
    """Posteriors across priors and data variants, flips in words, psense, Bayes factors."""
    from rebayes.plots import posterior_overlay, prior_posterior_plot, sensitivity_plot

    name = comparison.analysis
    t = comparison.table
    variants = list(dict.fromkeys(t["variant"])) if "variant" in t else []
    ratio_names = [c[len("p_ratio_gt_1["):-1] for c in t.columns
                   if c.startswith("p_ratio_gt_1[") and not c.startswith("p_ratio_gt_1_mcse")]
    subgroup_names = [c[len("p_subgroup_benefit["):-1] for c in t.columns
                      if c.startswith("p_subgroup_benefit[")]
    d = comparison.direction
    # A meta-regression's pooled RR is a row average: its decision columns are per subgroup.
    kind = "row-average" if subgroup_names else "pooled"
    headers = ["prior", "variant", f"{kind} RR (95% CrI)"]
    headers += ([f"P({d.benefit} in {g.replace('_', ' ')})" for g in subgroup_names]
                if subgroup_names else [f"P({d.benefit})", f"P({d.beyond(1.1)})"])
    headers += ["tau median", "predictive RR (95% PrI)"]
    headers += [f"ratio {r} (95% CrI)" for r in ratio_names]
    headers += [f"P(ratio {r} > 1)" for r in ratio_names]
    headers += ["BF01 (d = 0)", "gates"]
    rows = []
    for row in t.to_dict(orient="records"):
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
        cells.append(Cell("pass" if ok else "FAIL", "pass" if ok else "fail"))
        rows.append(cells)
    flips = comparison.flips
    parts = [
        f"<p>Every prior set, on every data variant the report shows "
        f"({escape(', '.join(f'{v}' for v in variants))}). "
        "A conclusion <em>flips</em> when it holds under some rows and not others.</p>",
        table(headers, rows),
    ]
    if flips:
        parts.append('<div class="warn"><strong>Conclusions that depend on the prior or the '
                     "data variant</strong></div>"
                     + "".join(flip_table(c) for c in comparison.conclusions if c.flips))
    if comparison.stable:
        parts.append("<p><strong>Conclusions that hold under every prior and variant:</strong>"
                     "</p><ul>" + "".join(f"<li>{escape(s)}</li>" for s in comparison.stable)
                     + "</ul>")
    parts.append(_fig(posterior_overlay(comparison), figures, f"{name}_posteriors.png",
                      "Posterior densities of the pooled RR under each prior (solid) and the "
                      "RR each prior implies before seeing data (dashed), per data variant."))
    parts.append(_fig(sensitivity_plot(comparison), figures, f"{name}_sensitivity.png",
                      "Pooled RR (95% CrI; thin: 95% predictive interval) under each prior and "
                      "data variant, with P(RR > 1)."))
    first = comparison.fits[0]
    parts.append(_fig(prior_posterior_plot(first.fit.tree), figures,
                      f"{name}_prior_posterior.png",
                      f"Prior (dashed) and posterior (filled) of the effect and tau under the "
                      f"{first.prior} prior."))
    psense_rows = [
        (f.prior, f.variant, readable(f.sensitivity.sentence()))
        for f in comparison.fits
    ]
    parts += [
        "<h3>Power-scaling sensitivity (arviz-stats <code>psense</code>)</h3>",
        "<p>How much each quantity moves when the prior (or the likelihood) is raised to a "
        "power near 1; above 0.05 a quantity is called sensitive (Kallioinen et al. 2024).</p>",
        table(("prior", "variant", "what the prior drives"), psense_rows),
        "<h3>Savage-Dickey Bayes factors</h3>",
        table(
            ("prior", "variant", "hypothesis", "BF01", "Monte Carlo interval", "in words"),
            [
                (f.prior, f.variant, bf.meaning, Cell(f"{bf.bf01:.2f}", "num"),
                 Cell(f"{bf.bf01_low:.2f} to {bf.bf01_high:.2f}", "num"),
                 bf.verdict + (f" ({bf.note})" if bf.note else ""))
                for f in comparison.fits if f.variant == comparison.variants[0]
                for bf in f.bayes_factors
            ],
        ),
        "<p class=\"muted\">BF01 &gt; 1 favours the point hypothesis (BF01 throughout; the "
        "prior's density at the null is exact, the posterior's a kernel estimate with its "
        "Monte Carlo interval, and words are given only when that interval lies in one band). "
        "A Bayes factor depends "
        "on the prior's width (a vague prior favours 'no effect' by construction: Lindley's "
        "paradox), so read it beside the posterior probabilities above.</p>",
    ]
    return "\n".join(parts)


def diagnostics_section(comparison: Comparison, figures: Path) -> str:
    """Convergence gates of every fit, the default fit's details, PPC and PSIS-LOO."""
    from rebayes.plots import pareto_k_plot, ppc_plot, rank_plot, trace_plot, trial_ppc_plot

    name = comparison.analysis
    first = comparison.fits[0]
    gate_names = list(first.diagnostics.gates)
    headers = ["prior", "variant", *[first.diagnostics.gate_label(g) for g in gate_names]]
    rows = []
    for f in comparison.fits:
        details = f.diagnostics.gate_details()
        rows.append([
            f.prior, f.variant,
            *[Cell(details[g], "pass" if f.diagnostics.gates[g] else "fail") for g in gate_names],
        ])
    failures = comparison.diagnostic_failures
    parts = [
        "<p>Gates (Vehtari et al. 2021) over every posterior parameter and every reported "
        "quantity, derived ones included (pooled RR, P(benefit) as an indicator, predictive and "
        "subgroup RRs, ratios, trial RRs). Green passes, red fails.</p>",
        table(headers, rows),
    ]
    if failures:
        parts.append('<div class="failbox"><strong>Failing gates:</strong><ul>'
                     + "".join(f"<li>{escape(readable(s))}</li>" for s in failures)
                     + "</ul></div>")
    reported = first.diagnostics.reported()
    parts += [
        f"<h3>Reported quantities ({escape(first.prior)} prior, {escape(first.variant)})</h3>",
        table(
            ("quantity", "mean", "sd", "95% interval", "MCSE", "ESS bulk", "ESS tail", "R-hat"),
            [
                (reader_label(q), Cell(f"{r['mean']:.4g}", "num"), Cell(f"{r['sd']:.3g}", "num"),
                 "-" if is_indicator(q) else f"{r['ci_low']:.3g} to {r['ci_high']:.3g}",
                 Cell(f"{r['mcse_mean']:.2g}", "num"),
                 Cell(f"{r['ess_bulk']:.0f}", "num" if r["ess_bulk_ok"] else "num fail"),
                 Cell(f"{r['ess_tail']:.0f}", "num" if r["ess_tail_ok"] else "num fail"),
                 Cell(f"{r['rhat']:.3f}", "num" if r["rhat_ok"] else "num fail"))
                for q, r in reported.iterrows()
            ],
        ),
        f"<p>E-BFMI per chain: {', '.join(f'{v:.2f}' for v in first.diagnostics.ebfmi)}; "
        f"divergent transitions: {first.diagnostics.divergences} of "
        f"{first.diagnostics.n_draws}.</p>",
    ]
    tree = first.fit.tree
    parts.append(_fig(rank_plot(tree), figures, f"{name}_rank.png",
                      "Rank plots: each chain's ranks should be uniform."))
    parts.append(_fig(trace_plot(tree), figures, f"{name}_trace.png", "Trace plots."))
    ppc = ppc_table(tree)
    outside = ppc.loc[~ppc["within"]]
    sentence = (
        f"{len(ppc) - len(outside)} of {len(ppc)} observed arm counts lie inside their 95% "
        "posterior predictive interval"
        + (f"; outside: {', '.join(f'{r.row} ({r.arm})' for r in outside.itertuples())}."
           if len(outside) else ".")
    )
    trial = trial_ppc_table(tree)
    misfits = trial.loc[~trial["within"]]
    scale = trial["scale"].iloc[0]
    outside_trials = ", ".join(f"{r.trial} (p = {r.p_value:.3f})" for r in misfits.itertuples())
    trial_sentence = (
        f"{len(trial) - len(misfits)} of {len(trial)} trials' observed {scale} lie inside the "
        f"95% range of a new trial like them"
        + (f"; outside: {outside_trials}." if len(misfits) else ".")
        + f" About {0.05 * len(trial):.1f} of {len(trial)} would lie outside by chance."
    )
    parts += [
        "<h3>Posterior predictive check</h3>",
        f"<p>{escape(sentence)} This arm-level check is weak: every row has its own "
        "baseline and every trial its own random effect, both fitted to these very counts, "
        "so replicated counts follow the observed ones almost whatever the model gets "
        "wrong. The trial-level check below is the one that can fail.</p>",
        _fig(ppc_plot(tree), figures, f"{name}_ppc.png",
             "Observed events per arm (points) against replicated data (95% and 50% "
             "intervals); red: outside the 95% interval."),
        "<h3>Trial-level check (mixed predictive)</h3>",
        "<p>Each trial's observed effect against that of a new trial like it: the same arm "
        "sizes and baselines, but a fresh random effect drawn from the fitted pooled effect "
        "and heterogeneity rather than the one fitted to the trial's own data (Marshall & "
        "Spiegelhalter 2007, Bayesian Analysis 2:409-444). A trial outside its range has an "
        f"effect the model's heterogeneity does not explain. {escape(trial_sentence)}</p>",
        _fig(trial_ppc_plot(tree), figures, f"{name}_trial_ppc.png",
             f"Observed {scale.split()[1]} per trial (points) against a new similar trial's "
             "(95% and 50% ranges); red: outside the 95% range."),
    ]
    loo = loo_by_trial(tree)
    high = loo.high_k_trials
    parts += [
        "<h3>PSIS-LOO by trial</h3>",
        f"<p>elpd_loo = {loo.elpd:.2f} (SE {loo.se:.2f}), p_loo = {loo.p:.2f}; one observation "
        f"per trial, its own baselines and random effect integrated out ({escape(loo.method)} "
        "likelihood). "
        + (f"Pareto k above {loo.pareto_k_max}: {escape(', '.join(high))}."
           if high else f"Every trial has Pareto k below {loo.pareto_k_max}.")
        + "</p>",
        table(("trial", "elpd_i", "Pareto k"),
              [(trial, Cell(f"{r['elpd_i']:.2f}", "num"),
                Cell(f"{r['pareto_k']:.2f}", "num fail" if r["high_k"] else "num"))
               for trial, r in loo.table.iterrows()]),
        _fig(pareto_k_plot(loo, f"Pareto k by trial: {name}"), figures,
             f"{name}_pareto_k.png", "Pareto k per trial; above 0.7 the LOO estimate of that "
             "trial is unreliable."),
    ]
    return "\n".join(parts)
