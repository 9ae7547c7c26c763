"""One analysis in the report: its fits under every prior, figures, and its page.

The statistics come from :mod:`rebayes.bayes.quantities` (posterior summaries),
:mod:`rebayes.frequentist.pooling`
(observed per-trial RRs and RevMan's pooled row) and, where present, :mod:`rebayes.checks`
and :mod:`rebayes.sensitivity.comparison`; this module only arranges them into the tables and
sentences that ``templates/analysis.html`` renders.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from math import nan
from pathlib import Path

import matplotlib.pyplot as plt

from rebayes.bayes.coefficients import Coefficient
from rebayes.bayes.fit import Fit
from rebayes.bayes.mcse import MARK, marked, with_line
from rebayes.bayes.records import DECISION, EXACT_WORDS, FitSummary
from rebayes.bayes.spec import AnalysisSpec
from rebayes.checks.gates import DEFAULT_THRESHOLDS as GATE
from rebayes.data.direction import Direction
from rebayes.data.schema import DatasetSchema
from rebayes.report.html import (
    Cell,
    Table,
    figure,
    markdown_table,
    readable,
    render_page,
    table,
)
from rebayes.sensitivity.comparison import Comparison

__all__ = [
    "AnalysisReport",
    "analysis_page",
    "key_sentence",
    "model_formula",
    "result_headers",
    "results_rows",
    "figure_png",
    "fit_coefficients",
    "fit_or_probabilities",
    "save_figure",
    "save_fit_figure",
]

def result_headers(direction: Direction, kind: str = "pooled") -> tuple[str, ...]:
    """Column headers of :func:`results_rows`, in the dataset's direction of benefit.

    ``kind`` is :attr:`FitSummary.pooled_kind`: a meta-regression's columns say that they
    are about its row average.
    """
    d = direction
    of = "" if kind == "pooled" else f"{kind} "
    return (
        "prior", f"{kind} RR (95% CrI)", f"P({of}{d.benefit})", f"P({of}{d.beyond(1.1)})",
        f"P({of}{d.beyond(1.25)})", "tau (95% CrI)",
        "predictive RR (95% PrI)" if not of else f"predictive RR at the {kind} (95% PrI)",
        "R-hat max", "ESS min (bulk, tail)", "divergences",
    )




@dataclass(frozen=True)
class AnalysisReport:
    """What the report shows of one analysis (one model script).

    Attributes
    ----------
    spec : AnalysisSpec
    fits : tuple of Fit
        One per prior set, in registry order; the first is the default prior's.
    comparison : Comparison, optional
        The fits under every prior and data variant with their diagnostics, power-scaling
        sensitivity and Bayes factors (:func:`rebayes.sensitivity.comparison.compare_fits`).
    figures : dict
        Figure key -> file name (relative to the report directory).
    sections : tuple of (str, str)
        Extra sections (title, rendered HTML body) added by the diagnostics and comparison
        steps (:mod:`rebayes.report.sections`, the decision tools' ``to_html``).
    gates_ok : bool
        Every diagnostic gate passed for every prior.
    """

    spec: AnalysisSpec
    fits: tuple[Fit, ...]
    comparison: Comparison | None = None
    figures: Mapping[str, str] = field(default_factory=dict)
    sections: tuple[tuple[str, str], ...] = ()
    gates_ok: bool = True
    markdown_extra: str = ""

    @property
    def summaries(self) -> dict[str, FitSummary]:
        """Prior name -> posterior summary."""
        return {f.prior.name: f.summary() for f in self.fits}

    @property
    def default(self) -> FitSummary:
        """The summary under the first (default) prior."""
        return self.fits[0].summary()


def _fmt_est(est, digits: int = 2) -> str:
    return f"{est.median:.{digits}f} ({est.ci_low:.{digits}f} to {est.ci_high:.{digits}f})"


def _gate_cell(value: float, ok: bool, fmt: str) -> Cell:
    return Cell(format(value, fmt), "num pass" if ok else "num fail")


def results_rows(
    summaries: Mapping[str, FitSummary], comparison: Comparison | None = None
) -> list[list[object]]:
    """One row per prior: pooled RR, decision probabilities, tau, predictive RR, convergence.

    With a comparison, the last column is the verdict of every diagnostic gate of that fit
    (:func:`rebayes.checks.convergence.diagnose`, derived quantities and E-BFMI included).
    """
    gates = {}
    if comparison is not None:
        first_variant = comparison.variants[0]
        gates = {f.prior: f.diagnostics for f in comparison.fits if f.variant == first_variant}
    rows: list[list[object]] = []
    for name, s in summaries.items():
        report = gates.get(name)
        verdict = (Cell(EXACT_WORDS) if s.engine == "exact" else Cell("all pass", "pass")
                   if report.ok else
                   Cell("FAIL: " + readable("; ".join(report.failures)), "fail")) if report else ""
        rows.append(
            [
                name if s.reliable else Cell(f"{name}: UNRELIABLE (divergences)", "fail"),
                _fmt_est(s.pooled_rr),
                probability_cell(*s.decisions()[0][1:]),
                probability_cell(*s.decisions()[2][1:]),
                Cell(f"{s.p_benefit_beyond_1_25:.3f}", "num"),
                _fmt_est(s.tau),
                _fmt_est(s.predictive_rr),
                *_convergence_cells(s),
                *([verdict] if gates else []),
            ]
        )
    return rows


def _convergence_cells(s: FitSummary) -> list[Cell]:
    """R-hat, the smaller ESS and divergences; an exact fit has none (no Markov chain)."""
    if s.engine == "exact":
        return [Cell("exact"), Cell("-", "num"), Cell("-", "num")]
    d = s.diagnostics
    return [
        _gate_cell(d.rhat_max, d.rhat_max <= GATE.rhat_max, ".3f"),
        _gate_cell(min(d.ess_bulk_min, d.ess_tail_min),
                   min(d.ess_bulk_min, d.ess_tail_min) >= GATE.ess_min, ".0f"),
        _gate_cell(d.divergences, d.divergences == 0, "d"),
    ]


def probability_cell(p: float, mcse: float, line: float) -> Cell:
    """Return a table's probability cell, marked ``≈`` when it is at the line."""
    return Cell(marked(p, mcse, line), "num")


def key_sentence(
    s: FitSummary,
    schema: DatasetSchema | None = None,
    coefs: Sequence[Coefficient] = (),
) -> str:
    """Return the analysis's answer in one sentence, with its probability.

    A meta-regression leads with what it estimates (the subgroup RRs and their ratio, or the
    slope per unit); its "pooled" RR is only an average over the analysed rows and is named
    so.
    """
    schema = schema or DatasetSchema()
    d = s.direction
    threshold = d.beyond(1.1)
    prior = f"Under the {s.prior.replace('_', ' ')} prior"
    if not s.reliable:
        prior = f"UNRELIABLE ({s.divergences} divergent transitions). {prior}"
    what = f"{schema.outcome_phrase} ({schema.treatment} vs {schema.control})"
    units = {c.name: c.unit for c in schema.covariates.values()}
    if coefs and not s.subgroups:
        c = coefs[0]
        # The slope, then the effect where the design centres the covariate (d).
        centre = (f"; the RR {s.intercept_at} is {s.pooled_rr.median:.2f} (95% CrI "
                  f"{s.pooled_rr.ci_low:.2f} to {s.pooled_rr.ci_high:.2f})"
                  if s.intercept_at else "")
        return (
            f"{prior}, the {c.scale} of {what} is multiplied by {c.median:.3f} per "
            f"{units.get(c.name) or 'unit'} of {c.name} (95% CrI {c.ci_low:.3f} to "
            f"{c.ci_high:.3f}); {c.p_name} = {c.p_towards_benefit:.3f}{centre}."
        )
    if s.subgroups and s.ratios:
        groups = "; ".join(
            f"{g.name.replace('_', ' ')}: RR {g.rr.median:.2f} ({g.rr.ci_low:.2f} to "
            f"{g.rr.ci_high:.2f}), "
            f"{_lean(g.p_benefit, s.direction, s.mcse.get(f'p_subgroup_benefit[{g.name}]', nan))}"
            for g in s.subgroups
        )
        r = s.ratios[0]
        return (
            f"{prior}, the risk ratio of {what} by subgroup is {groups}; the RR in "
            f"{r.numerator.replace('_', ' ')} is {r.ratio.median:.2f} times that in "
            f"{r.denominator.replace('_', ' ')} (95% CrI {r.ratio.ci_low:.2f} to "
            f"{r.ratio.ci_high:.2f}), P(ratio > 1) = {_ratio_p(s, r.name, r.p_gt_1)}."
        )
    rr = (f"the pooled risk ratio of {what} is {s.pooled_rr.median:.2f} (95% CrI "
          f"{s.pooled_rr.ci_low:.2f} to {s.pooled_rr.ci_high:.2f})")
    p_benefit, p_harm, important = list(s.printed(2).values())[:3]
    benefit = ((f"P(any benefit, {d.benefit})" if d.declared else f"P({d.benefit})")
               + f" = {p_benefit}, P({threshold}) = {important}")
    if s.leans_to_harm and d.declared:
        # The evidence points to harm: harm first, with its NNTH; benefit second.
        base = (
            f"{prior}, P(harm, {d.harm}) = {p_harm}: {s.harm_sentence()}; "
            f"{rr} {s.at_control_risk}, {s.nnt}; {benefit}"
        )
    else:
        base = f"{prior}, {rr}; {benefit}"
    if s.ratios:
        r = s.ratios[0]
        base += (
            f"; the RR in {r.numerator.replace('_', ' ')} is {r.ratio.median:.2f} times that in "
            f"{r.denominator.replace('_', ' ')} (95% CrI {r.ratio.ci_low:.2f} to "
            f"{r.ratio.ci_high:.2f}), P(ratio > 1) = {_ratio_p(s, r.name, r.p_gt_1)}"
        )
    return base + "."


def _ratio_p(s: FitSummary, name: str, p: float) -> str:
    return with_line(p, s.mcse.get(f"p_ratio_gt_1[{name}]", nan), DECISION, 2)


def _lean(p_benefit: float, direction: Direction, mcse: float = nan) -> str:
    """``"P(benefit) = 0.93"``, or ``"P(harm) = 0.74"`` where a subgroup leans to harm.

    Undeclared: the literal side, ``"P(RR < 1) = 0.93"``. Either is marked at the line when
    within two MCSEs of 0.95 (:func:`rebayes.bayes.mcse.with_line`).
    """
    if p_benefit < 0.5 and direction.declared:
        return f"P(harm) = {with_line(1 - p_benefit, mcse, DECISION, 2)}"
    return f"{direction.p_name()} = {with_line(p_benefit, mcse, DECISION, 2)}"


def _used_priors(fit: Fit) -> str:
    """Return the prior distributions this model uses, the effect on the outcome's scale.

    No beta without covariates, no alpha for the normal model (it has no baseline); the
    effect prior as the ratio it implies, on the side of benefit or harm it leans to
    (:meth:`rebayes.bayes.priors.PriorSet.describe`).
    """
    return fit.prior.describe(Direction.from_schema(fit.design.schema),
                              baseline=fit.design.likelihood != "normal",
                              covariate=bool(fit.design.coefs))


def model_formula(fit: Fit) -> str:
    """Return the model in formulas (plain text, rendered in a monospace block)."""
    spec, design = fit.spec, fit.design
    rows = "study × stratum" if spec.split_by_stratum else "trials, strata summed"
    group = "[g(s)]" if spec.effect == "separate" else ""
    xb = " + X[s]·β" if design.coefs else ""
    if spec.likelihood == "normal":
        lines = [
            "y[s] ~ Normal(θ[s], v[s])          y = observed log RR, v = RevMan variance",
            f"θ[s] = d{group}{xb} + τ·z[k(s)]",
        ]
    else:
        lines = [
            "r_C[s] ~ Binomial(n_C[s], logit⁻¹(α[s] − θ[s]/2))    control arm",
            "r_T[s] ~ Binomial(n_T[s], logit⁻¹(α[s] + θ[s]/2))    treatment arm",
            f"θ[s] = d{group}{xb} + τ·z[k(s)]        (log odds ratio; α = mean log odds of the "
            "two arms, so swapping the arms mirrors the posterior)",
        ]
    lines += [
        "z[k] ~ Normal(0, 1)                 (trial effect, shared by its strata)",
        f"priors ({fit.prior.name}): {_used_priors(fit)}",
        "",
        f"s = {design.n_rows} analysed rows ({rows}), k(s) = trial of row s "
        f"({len(design.studies)} trials)",
    ]
    if design.coefs:
        lines.append(f"X columns: {', '.join(design.coefs)}, each centred at its mean over the "
                     f"analysed rows, so d is the effect {design.intercept_at}")
    if spec.effect == "separate":
        lines.append(f"g(s) = subgroup of row s: {', '.join(design.groups)}")
    return "\n".join(lines)


# Kept with each fit (Fit.derived): a report from cached fits then reads no draws for these.
def fit_coefficients(fit: Fit) -> list[Coefficient]:
    """Return the fit's meta-regression coefficients (:meth:`rebayes.Fit.coefficients`, kept)."""
    return fit.derived("coefficients", fit.coefficients)


def fit_or_probabilities(fit: Fit) -> dict[str, float]:
    """Return P(pooled OR > t) per threshold (:meth:`rebayes.Fit.or_probabilities`, kept)."""
    return fit.derived("p_pooled_or_gt", fit.or_probabilities)


def figure_png(fig: plt.Figure) -> bytes:
    """Render a figure as the report's PNG (100 dpi) and close it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def save_figure(fig: plt.Figure, directory: Path, name: str) -> str:
    """Save a figure as PNG in ``directory`` and close it; return the file name."""
    (directory / name).write_bytes(figure_png(fig))
    return name


def save_fit_figure(
    fit: Fit,
    draw: Callable[[], plt.Figure],
    directory: Path,
    name: str,
    inputs: object = None,
) -> str:
    """Save the figure ``draw()`` makes from ``fit``, drawing it once per fit; return its name.

    The PNG is kept beside the fit (:meth:`Fit.derived`), so a report whose fits are all
    cached copies its figures rather than drawing them again: drawing and rendering them was
    60% of such a report's time (measured). ``draw`` must depend on ``fit`` (its draws, its
    names) and on ``inputs`` only: JSON-able, e.g. the keys and labels of the other fits a
    figure shows; another ``inputs`` draws it afresh.
    """
    png = fit.derived(f"figure {name}", lambda: figure_png(draw()), inputs)
    (directory / name).write_bytes(png)
    return name


def results_markdown(summaries: Mapping[str, FitSummary]) -> str:
    """Return the per-prior results table in markdown."""
    first = next(iter(summaries.values()))
    text = markdown_table(result_headers(first.direction, first.pooled_kind),
                          results_rows(summaries))
    if f" {MARK}" in text:
        text += (f"\n\n{MARK} at the line: within 2 MCSE of the line it is read against (0.95; 0.5 "
                 "for the benefit beyond 1.1).")
    return text


def analysis_page(
    report: AnalysisReport,
    environment: Sequence[tuple[str, str]],
    prior_notes: Mapping[str, str],
    nav: Sequence[tuple[str, str]] = (),
    footer: str = "",
) -> str:
    """Return one analysis page (``templates/analysis.html``) as a complete HTML document."""
    spec, first = report.spec, report.fits[0]
    schema = first.design.schema
    s = first.summary()
    coefs = fit_coefficients(first)
    coefficient_table = _coefficient_table(coefs, schema) if coefs else None
    subgroup_table = _subgroup_table(s) if s.subgroups else None
    ratio_table = _ratio_table(s) if s.ratios else None
    decision_table = _decision_table(s, first)
    forest = figure(
        report.figures["forest"],
        "Observed RR per analysed row (blue, 95% CI, RevMan's 0.5 correction) and "
        "the shrunken posterior RR at the row's own baseline risk (red, 95% CrI); "
        f"pooled and predictive rows {s.at_control_risk}.",
    ) if "forest" in report.figures else None
    headers = result_headers(s.direction, s.pooled_kind)
    return render_page(
        "analysis.html",
        f"rebayes: {spec.title or spec.name}",
        nav,
        footer,
        heading=spec.title or spec.name,
        name=spec.name,
        dataset=first.design.dataset,
        variant=first.design.variant,
        likelihood=s.likelihood,
        effect_scale=s.effect_scale,
        key_sentence=key_sentence(s, schema, coefs),
        conflicts=[str(c) for c in report.comparison.conflicts] if report.comparison else [],
        control_risk=s.at_control_risk,
        gates_ok=report.gates_ok,
        unreliable=[(name, summary.unreliable_message())
                    for name, summary in report.summaries.items() if not summary.reliable],
        formula=model_formula(first),
        design_notes=list(first.design.notes),
        outcome=schema.outcome_phrase,
        treatment=schema.treatment,
        control=schema.control,
        direction_sentence=schema.direction.sentence(),
        benefit=schema.direction.benefit,
        declared=schema.direction.declared,
        priors=table(
            ("prior set", "distributions", "why / source"),
            [(f.prior.name, _used_priors(f), prior_notes.get(f.prior.name, ""))
             for f in report.fits],
        ),
        results=table((*headers, "all gates") if report.comparison else headers,
                      results_rows(report.summaries, report.comparison)),
        gate_sentence=GATE.sentence(),
        all_exact=all(summary.engine == "exact" for summary in report.summaries.values()),
        pooled_kind=s.pooled_kind,
        average_note=s.average_note,
        prior=s.prior,
        coefficient_scale=coefs[0].scale if coefs else "",
        coefficients=coefficient_table,
        subgroups=subgroup_table,
        ratios=ratio_table,
        decision=decision_table,
        forest=forest,
        sections=list(report.sections),
        reproducibility=_reproducibility_table(first, s, environment),
    )


def _coefficient_table(coefs: list[Coefficient], schema: DatasetSchema) -> Table:
    """Return the table of covariate coefficients: ratio (95% CrI) and P(towards benefit)."""
    units = {c.name: c.unit for c in schema.covariates.values()}
    return table(
        ("coefficient", f"ratio of {coefs[0].scale}s (95% CrI)", coefs[0].p_name),
        [(c.name + (f" (per {units[c.name]})" if units.get(c.name) else ""),
          f"{c.median:.3f} ({c.ci_low:.3f} to {c.ci_high:.3f})",
          Cell(f"{c.p_towards_benefit:.3f}", "num")) for c in coefs],
    )


def _subgroup_table(s: FitSummary) -> Table:
    """Return the table of subgroups: RR (95% CrI), P(benefit) and the predictive RR."""
    return table(
        ("subgroup", "RR (95% CrI)", f"P({s.direction.benefit})",
         "predictive RR, new trial in the subgroup (95% PrI)"),
        [(g.name.replace("_", " "), _fmt_est(g.rr),
          probability_cell(g.p_benefit, s.mcse.get(f"p_subgroup_benefit[{g.name}]", nan),
                           DECISION),
          _fmt_est(g.predictive) if g.predictive is not None else "-")
         for g in s.subgroups],
    )


def _ratio_table(s: FitSummary) -> Table:
    """Return the table of subgroup contrasts: ratio of RRs (95% CrI) and P(ratio > 1)."""
    return table(
        ("contrast", "ratio of RRs (95% CrI)", "P(ratio>1)"),
        [(f"{r.numerator} vs {r.denominator}", _fmt_est(r.ratio),
          probability_cell(r.p_gt_1, s.mcse.get(f"p_ratio_gt_1[{r.name}]", nan), DECISION))
         for r in s.ratios],
    )


def _decision_table(s: FitSummary, first: Fit) -> Table:
    """Return the table of decision quantities: p0, pooled OR, risk difference, NNT, P(harm)."""
    return table(
        ("quantity", "value"),
        [
            ("control risk p0 (RRs, risk difference, NNT)",
             s.at_control_risk.removeprefix("at a control risk of ")),
            (f"{s.pooled_kind} OR",
             _fmt_est(s.pooled_or) if s.pooled_or else "n/a (log RR model)"),
            ("risk difference at p0", _fmt_est(s.nnt.risk_difference, 3)),
            ("number needed to treat (Altman 1998)", str(s.nnt)),
            (f"P({s.direction.harm})" + (" (harm)" if s.direction.declared else ""),
             with_line(*s.decisions()[1][1:])),
            *[(f"P({s.pooled_kind} OR > {t})", f"{p:.3f}")
              for t, p in fit_or_probabilities(first).items()],
        ],
    )


def _reproducibility_table(
    first: Fit, s: FitSummary, environment: Sequence[tuple[str, str]]
) -> Table:
    """Return the table of what reproduces the fit: seed, sampler settings, environment."""
    engine = (("engine", f"{EXACT_WORDS}: {s.method}; figures from {first.settings.chains} "
                         f"× {first.settings.draws} inverse-CDF draws")
              if s.engine == "exact" else
              ("sampler", f"nutpie NUTS, {s.chains} chains × {s.draws} draws after "
                          f"{first.settings.tune} tuning steps, target acceptance "
                          f"{first.settings.target_accept}"))
    return table(("item", "value"), [
        ("seed", str(first.seed)),
        engine,
        *[(k, v) for k, v in environment if "hash" not in k],  # the footer has it
    ])
