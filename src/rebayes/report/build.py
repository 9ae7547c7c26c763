"""Assemble the whole re-analysis of one dataset into an output directory.

The directory gets: ``index.html`` (one results row and key sentence per analysis, the audit
where the dataset has ``reported.csv``, links), one ``<analysis>.html`` per analysis,
``audit.html``/``audit.md`` (with ``reported.csv``), ``frequentist.html``/``frequentist.md``,
``SUMMARY.md``, ``results.json`` (every number) and ``figures/*.png``. The HTML pages are
rendered from ``templates/`` (:mod:`rebayes.report.html`) and self-contained (inline CSS, no
scripts, no CDN). Everything is built in a staging directory
first; only when every part succeeded are the files moved in, replacing only files a previous
report listed in its manifest (:func:`rebayes.atomic.staging_directory`).
"""

from __future__ import annotations

import json
import platform
import queue
import re
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from rebayes import allocator
from rebayes.atomic import check_output_directory, staging_directory
from rebayes.audit.paper import AuditRow, audit, audit_intro, audit_markdown
from rebayes.bayes.mcse import MARK
from rebayes.checks.gates import DEFAULT_THRESHOLDS
from rebayes.data.direction import Direction
from rebayes.data.schema import DatasetSchema
from rebayes.data.trial_table import TrialTable
from rebayes.data.trials import load_dataset, load_table, variant_combinations
from rebayes.errors import RebayesError
from rebayes.folders import unsafe_file_name
from rebayes.progress import phase
from rebayes.report.ahead import Ahead
from rebayes.report.bias import bias_section
from rebayes.report.frequentist import (
    analyses_of,
    frequentist_markdown,
    frequentist_page,
    frequentist_tables,
)
from rebayes.report.html import (
    Cell,
    Table,
    figure,
    markdown_table,
    render,
    render_page,
    table,
    tool_section,
)
from rebayes.sensitivity.influence import Influence

if TYPE_CHECKING:
    from rebayes.bayes.settings import SamplerSettings
    from rebayes.report.analysis import AnalysisReport

__all__ = ["BuiltReport", "build_report", "environment", "model_scripts", "prior_justification"]

PACKAGES = ("numpy", "scipy", "pandas", "pymc", "pytensor", "nutpie", "arviz-base",
            "arviz-stats", "arviz-plots", "xarray", "matplotlib")


@dataclass(frozen=True)
class BuiltReport:
    """What :func:`build_report` wrote, and whether every diagnostic gate passed."""

    files: tuple[Path, ...]
    gate_failures: tuple[str, ...] = ()
    unreliable: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether every fit of every analysis passed every gate."""
        return not self.gate_failures


def model_scripts(directory: Path) -> list[Path]:
    """Return the model scripts (``*.py``) in ``directory``, by name."""
    scripts = sorted(Path(directory).glob("*.py"))
    if not scripts:
        raise RebayesError(f"{directory}: no model scripts (*.py)")
    return scripts


def environment(data_hash: str = "") -> list[tuple[str, str]]:
    """Versions and data hash for the reproducibility table."""
    rows = [("python", platform.python_version())]
    for name in ("rebayes", *PACKAGES):
        try:
            rows.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            rows.append((name, "not installed"))
    if data_hash:
        rows.append(("data hash (SHA-256 of the trial table, after variant)", data_hash))
    return rows


# reStructuredText in a docstring: roles (:meth:`~x.y`) and literals (``x``).
_RST_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")
_RST_LITERAL = re.compile(r"``([^`]+)``")


def prior_justification(description: str) -> str:
    """Return a prior set's reasoning and sources from its docstring, as one paragraph.

    The docstring's markup is dropped for readers (``:meth:`PriorSet.on_scale``` reads
    ``PriorSet.on_scale``).
    """
    description = _RST_LITERAL.sub(r"\1", _RST_ROLE.sub(r"\1", description))
    paragraphs = [p.strip() for p in description.strip().split("\n\n") if p.strip()]
    why = [p for p in paragraphs[1:] if not p.startswith("References")]
    refs = [p.split("----------", 1)[1] for p in paragraphs if p.startswith("References")]
    text = " ".join(why or paragraphs[:1])
    if refs:
        text += " Sources: " + " ".join(r.strip() for r in refs)
    return " ".join(text.split())


def _influence_verdict(influence: Influence) -> str:
    """Say in one sentence which trials move P(benefit) (P(RR < 1)) beyond the threshold."""
    return influence.summary()


def _influence_section(table_: Influence, figures: Path, prior: str,
                       direction: Direction | None = None) -> str:
    """Render the overall analysis's leave-one-out section (``section_influence.html``)."""
    from rebayes.report.analysis import save_figure
    from rebayes.sensitivity.influence import INFLUENCE_THRESHOLD

    name = save_figure(table_.plot("Leave one trial out: overall analysis", direction),
                       figures, "overall_influence.png")
    p = (direction or table_.direction).p_name()
    rows = [
        (r.left_out, f"{r.rr_median:.2f} ({r.rr_low:.2f} to {r.rr_high:.2f})",
         Cell(f"{r.p_benefit:.3f}" + (f" {MARK}" if line else ""),
              "num fail" if r.influential else "num"),
         Cell(f"{r.delta_p_benefit:+.3f}", "num"), f"{r.tau_median:.2f}",
         f"{r.mh_rr:.2f} [{r.mh_low:.2f}, {r.mh_high:.2f}]", Cell(f"{r.mh_p:.3f}", "num"))
        for r, line in zip(table_.table.itertuples(), table_.at_the_line(), strict=True)
    ]
    return render(
        "section_influence.html",
        verdict=_influence_verdict(table_),
        prior=prior,
        exact=table_.exact,
        influence=table(("left out", "posterior RR (95% CrI)", p, "change",
                         "tau median", "RevMan MH RR [95% CI]", "MH P"), rows),
        figure=figure(f"figures/{name}",
                      f"Pooled RR and {p} without each trial; red: moves {p} by "
                      f"more than {INFLUENCE_THRESHOLD}.", alt="influence plot"),
    )


def _loo_tables(analyses: Sequence[AnalysisReport]) -> list[Table]:
    """LOO comparison of the analyses fitted to the same rows (default prior), one table each.

    Computed once for these fits and kept beside the first one (:meth:`Fit.derived`).
    """
    from rebayes.checks.loo import loo_compare, shared_data_groups

    if not analyses:
        return []

    def compare() -> list[Any]:
        trees = {a.spec.name: a.fits[0].tree for a in analyses}
        return [loo_compare({name: trees[name] for name in group})
                for group in shared_data_groups(trees)]

    compared = [(a.spec.name, a.fits[0].key) for a in analyses]
    tables = []
    for result in analyses[0].fits[0].derived("loo comparisons", compare, inputs=compared):
        tables.append(table(
            ("analysis", "elpd_loo", "elpd difference", "SE of difference", "weight",
             "trials with Pareto k > 0.7"),
            [
                (str(name), Cell(f"{row['elpd']:.2f}", "num"),
                 Cell(f"{row['elpd_diff']:.2f}", "num"), Cell(f"{row['dse']:.2f}", "num"),
                 Cell(f"{row['weight']:.2f}", "num"),
                 ", ".join(result.loos[name].high_k_trials) or "none")
                for name, row in result.table.iterrows()
            ],
        ))
    return tables


def _calibration_table(folder: Path) -> Table | None:
    """Table of the SBC scenarios found in ``folder/<scenario>/summary.csv`` (None if none)."""
    from rebayes.calibration.simulation import LABELS

    rows = []
    for csv in sorted(folder.glob("*/summary.csv")):
        table_ = pd.read_csv(csv)
        for i, r in enumerate(table_.itertuples()):
            rows.append((
                csv.parent.name.replace("_", " ") if i == 0 else "",
                LABELS.get(str(r.quantity), str(r.quantity)), str(r.n_sims),
                Cell(f"{r.ecdf_p:.2f}", "num"),
                Cell(f"{r.cov50:.2f} [{r.cov50_expected_low:.2f}-{r.cov50_expected_high:.2f}]",
                     "num pass" if r.cov50_expected_low <= r.cov50 <= r.cov50_expected_high
                     else "num fail"),
                Cell(f"{r.cov90:.2f} [{r.cov90_expected_low:.2f}-{r.cov90_expected_high:.2f}]",
                     "num pass" if r.cov90_expected_low <= r.cov90 <= r.cov90_expected_high
                     else "num fail"),
            ))
    if not rows:
        return None
    return table(("scenario", "quantity", "simulations", "rank uniformity p",
                  "50% coverage", "90% coverage"), rows)


@dataclass(frozen=True)
class _ToolView:
    """What the report shows of one decision tool: its sentence, table and figure (PNG)."""

    title: str
    key: str
    sentence: str
    frame: pd.DataFrame
    png: bytes


def _decision_tools_kept(trials: TrialTable, overall: Any, settings: Any) -> bool:
    """Whether the decision tools' views are kept beside the overall default fit."""
    return bool(overall.fits[0].has_derived("decision tools", _tool_inputs(trials, settings)))


def _tool_inputs(trials: TrialTable, settings: Any) -> dict[str, str]:
    return {"rows": trials.data_hash, "settings": repr(settings)}


def _decision_tool_views(
    trials: TrialTable, overall: Any, settings: Any,
    results: list[tuple[tuple[str, str], Any]] | None = None,
) -> list[_ToolView]:
    """Return the decision tools' views, computed once per overall fit and table.

    Kept beside the overall analysis's default fit (:meth:`Fit.derived`): the tools are
    functions of that fit, of the table's rows (the cumulative analysis reads ``year``,
    which the fit may not) and of the sampler settings. ``results``: the tools' results
    computed already (:func:`_decision_tools`, in the background), to be drawn here.
    """
    from rebayes.report.analysis import figure_png

    def views() -> list[_ToolView]:
        computed = results if results is not None else _decision_tools(trials, overall, settings)
        return [
            _ToolView(title + _engine_note(result), key, result.summary(),
                      result.report_frame(), figure_png(result.plot()))
            for (title, key), result in computed
        ]

    return overall.fits[0].derived(  # type: ignore[no-any-return]
        "decision tools", views, _tool_inputs(trials, settings))


def _engine_note(result: Any) -> str:
    """Return what a tool's title adds when the exact engine answered it ("" otherwise)."""
    from rebayes.tools.planning import TrialPlan

    if getattr(result, "engine", "nuts") != "exact":
        return ""
    if isinstance(result, TrialPlan):  # exact updates of simulated trials: MC error remains
        return " (exact engine for each update; the simulated trials carry Monte Carlo error)"
    return " (exact engine: no Monte Carlo error)"


def _decision_tools(
    table: TrialTable, overall: Any, settings: Any
) -> list[tuple[tuple[str, str], Any]]:
    """Run the tools that tell a doubter more (overall analysis, default prior).

    Absolute effects per 1000, the analysis of credibility, the cumulative analysis (when
    the table has a numeric ``year``) and the next trial's chances (binomial model). Where
    the exact engine answered the overall fit, the cumulative steps and the next trial's
    updates are exact too (the engine follows the fit's, so the fit's key covers it).
    """
    from rebayes.tools.absolute import absolute_effects, absolute_effects_exact
    from rebayes.tools.credibility import dataset_credibility
    from rebayes.tools.cumulative import cumulative_meta_analysis
    from rebayes.tools.planning import plan_next_trial, plan_next_trial_exact

    fit = overall.fits[0]
    trials = table.to_frame()  # the tools below take a DataFrame (schema in its attrs)
    exact = fit.engine == "exact"
    out: list[tuple[tuple[str, str], Any]] = [
        (("Absolute effects (GRADE summary of findings)", "absolute"),
         absolute_effects_exact(fit.design, fit.prior, fit.exact) if exact
         else absolute_effects(fit.tree)),
        (("Credibility (reverse-Bayes, of RevMan's 95% CI)", "credibility"),
         dataset_credibility(trials, fit.summary().direction)),
    ]
    if "year" in trials and pd.api.types.is_numeric_dtype(trials["year"]):
        out.append((("Cumulative meta-analysis by year", "cumulative"),
                    cumulative_meta_analysis(trials, fit.spec, fit.prior, "year",
                                             settings=settings,
                                             engine="auto" if exact else "nuts")))
    if fit.design.likelihood == "binomial":
        sizes = [50, 100, 200, 400, 800, 1600]
        out.append((("The next trial: what would it settle?", "plan"),
                    plan_next_trial_exact(fit.design, fit.prior, sizes, seed=fit.seed,
                                          draws=fit.settings.draws, chains=fit.settings.chains)
                    if exact else plan_next_trial(fit.tree, sizes)))
        from rebayes.tools.priormap import prior_map, prior_map_exact

        # The default prior's heterogeneity prior only, on the full grid (exact: every point
        # integrated, so the map's P(benefit) at the default prior is the record's; else
        # about 7 NUTS fits reweighted); `rebayes priormap` maps every heterogeneity prior.
        out.append((("Prior-space map", "priormap"),
                    prior_map_exact(fit.design, fit.prior, [fit.prior]) if exact
                    else prior_map(fit, [fit.prior], trials=table)))
    return out


def _write(figures: Path, tool: _ToolView) -> str:
    """Write a decision tool's figure; return its file name."""
    name = f"overall_{tool.key}.png"
    (figures / name).write_bytes(tool.png)
    return name


def _control_risks(analyses: Sequence[AnalysisReport]) -> str:
    """Say at which control risk each analysis states its RRs, RDs and NNTs ("" if none).

    One phrase when every analysis has the same p0; else each p0 with its analyses (the
    normal model analyses only the trials with an estimable log RR, so its p0 can differ).
    """
    by_risk: dict[str, list[str]] = {}
    for a in analyses:
        by_risk.setdefault(a.default.at_control_risk, []).append(a.spec.name.replace("_", " "))
    if len(by_risk) <= 1:
        return next(iter(by_risk), "")
    return "per analysis: " + "; ".join(f"{risk} ({', '.join(names)})"
                                         for risk, names in by_risk.items())


def _with_conflicts(sentence: str, report: AnalysisReport) -> str:
    """Return a key sentence followed by the conflicts its analysis carries (if any)."""
    from rebayes.sensitivity.conflicts import conflict_note

    note = conflict_note(report.comparison.conflicts) if report.comparison else ""
    return f"{sentence} {note}" if note else sentence


def _nav(analyses: Sequence[str], audited: bool = True) -> list[tuple[str, str]]:
    audit_link = [("Audit", "audit.html")] if audited else []
    return [("Summary", "index.html"), *audit_link,
            ("RevMan tables", "frequentist.html"), *[(a, f"{a}.html") for a in analyses]]


def _audit_page(rows: Sequence[AuditRow], variant: str, nav: Sequence[tuple[str, str]],
                footer: str, schema: DatasetSchema) -> str:
    before, _, after = audit_intro(schema, variant, rows).partition(f"`{variant}`")
    return render_page(
        "audit.html", "rebayes: audit", nav, footer,
        variant=variant,
        intro_before=before,
        intro_after=after,
        audit=table(
            ("id", "where", "reported", "recomputed", "verdict", "explanation"),
            [
                (r.id, r.location, r.reported, r.recomputed, Cell(r.verdict_text, r.verdict),
                 r.explanation)
                for r in rows
            ],
        ),
    )


def _check_until(unchecked: queue.SimpleQueue[Any], stop: Callable[[], bool],
                 wait: bool = True) -> None:
    """Check fits from ``unchecked`` (``compared_fit``) until ``stop()``.

    With ``wait``, an empty queue is waited on (another thread is still filling it);
    without, it ends the checking.
    """
    from rebayes.sensitivity.comparison import compared_fit

    while not stop():
        try:
            fit = unchecked.get(timeout=0.05) if wait else unchecked.get_nowait()
        except queue.Empty:
            if wait:
                continue
            return
        compared_fit(fit)


@dataclass
class Reanalysis:
    """Everything a report shows, computed (:func:`analyse`), before a page is written.

    Attributes
    ----------
    meta : Dataset
        The dataset as loaded (its folder, reported figures, variants).
    schema : DatasetSchema
        Its ``dataset.toml``, with a command-line direction applied.
    variants : list of str
        The data variants; the first is the audit's and the analyses'.
    tables : dict of str to TrialTable
        The trial table of each variant.
    direction : Direction
    conflicts : tuple
        Conflicts in the evidence no prior removes (:mod:`rebayes.sensitivity.conflicts`).
    analyses : list of AnalysisReport
        One per analysis, in report order, with their comparisons and sections.
    influence : Influence or None
        Leave-one-out refits of the overall analysis.
    tools : list
        The decision tools' views (absolute effects, credibility, cumulative, planning).
    audit_rows : sequence of AuditRow
        The audit of the published figures (empty without ``reported.csv``).
    freq : list
        RevMan's tables (:func:`rebayes.report.frequentist.frequentist_tables`).
    bias : BiasSection
        "Is the evidence distorted?" (:mod:`rebayes.report.bias`).
    """

    meta: Any
    schema: DatasetSchema
    variants: list[str]
    tables: dict[str, TrialTable]
    direction: Direction
    conflicts: Any
    analyses: list[AnalysisReport]
    influence: Influence | None
    tools: list[_ToolView]
    audit_rows: Sequence[AuditRow]
    freq: Any
    bias: Any


@dataclass(frozen=True)
class _Plan:
    """The analyses a report will run, on which tables and variants (:func:`_plan`)."""

    source: str | Path  # the dataset as the user named it
    meta: Any
    schema: DatasetSchema
    variants: list[str]
    tables: dict[str, TrialTable]
    specs: list[Any]
    fixed: dict[str, TrialTable]  # the tables of variants only a script fixes

    def variants_of(self, spec: Any) -> list[str | None]:
        """Return the variants an analysis is fitted on (a script fixing its variant: that one)."""
        return list(self.variants) if spec.variant is None else [None]

    def table(self, spec: Any, variant: str | None) -> TrialTable:
        """Return the table an analysis is fitted on under ``variant`` (loaded once)."""
        name = variant or spec.variant
        return self.tables[name] if name in self.tables else self.fixed[name]

    @property
    def overall_spec(self) -> Any:
        """The analysis named ``overall``, if the report has one."""
        return next((spec for spec in self.specs if spec.name == "overall"), None)


def build_report(
    output: Path,
    dataset: str | Path,
    variants: Sequence[str] | None = None,
    scripts: Sequence[Path] | None = None,
    priors: Sequence[str] | None = None,
    settings: SamplerSettings | None = None,
    progress: bool = True,
    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr),
    higher_is_better: bool | None = None,
    allow_scripts: bool = False,
    engine: str = "auto",
) -> BuiltReport:
    """Run the audit (where the dataset has ``reported.csv``) and every analysis; write the report.

    Parameters
    ----------
    output : Path
        Directory to write (only files a previous report wrote are replaced).
    dataset : str or Path
        Shipped dataset name, dataset folder or CSV.
    variants : sequence of str, optional
        Data variants for the frequentist tables and the prior x variant comparison; the
        first is the audit's and the analyses'. Default: the dataset's ``report_variants``.
    scripts : sequence of Path, optional
        Model scripts to run instead of the dataset's analyses (default: the dataset's
        analyses, :func:`rebayes.bayes.analyses.analysis_specs`).
    priors : sequence of str, optional
        Prior sets (default: each spec's own list, else every built-in set).
    settings : SamplerSettings, optional
        Sampler settings for every fit (default: the package's).
    progress : bool
        Show progress bars on stderr.
    log : callable
        Receives one line per step.
    higher_is_better : bool, optional
        Overrides the dataset's direction of benefit.
    allow_scripts : bool
        Run the dataset folder's model scripts even when not trusted (``--allow-scripts``).
    engine : {"auto", "exact", "nuts"}
        What answers each analysis's fits, per prior set (:func:`rebayes.bayes.fit.fit`):
        by default the exact engine where the analysis is within its reach and NUTS
        elsewhere, one line in ``log`` saying why NUTS answers an analysis.

    Returns
    -------
    BuiltReport
        The files written (inside ``output``) and the failing diagnostic gates, if any.
    """
    from rebayes.bayes.fit import compile_in_background

    check_output_directory(output)  # refuse a directory not ours before minutes of fitting
    plan = _plan(dataset, variants, scripts, higher_is_better, allow_scripts)
    # Compilation runs in a child process, beside the audit (rebayes.bayes.compilation).
    compile_in_background(((spec, v, plan.table(spec, v)) for spec in plan.specs
                           for v in plan.variants_of(spec)), priors, settings, engine)
    with staging_directory(output) as staging:
        figures = staging / "figures"
        figures.mkdir()
        reanalysis = analyse(plan, figures, priors, settings, progress, log, engine)
        files = write_report(reanalysis, Path(output), figures)
        for name, text in files.items():
            (staging / name).write_text(text, encoding="utf-8")
        written = [Path(output) / p.relative_to(staging) for p in sorted(staging.rglob("*"))
                   if p.is_file()]
    analyses = reanalysis.analyses
    failures = tuple(
        f"{a.spec.name}: {failure}"
        for a in analyses if a.comparison is not None
        for failure in a.comparison.diagnostic_failures
    )
    unreliable = tuple(
        f"{a.spec.name} ({name}): {s.unreliable_message()}"
        for a in analyses for name, s in a.summaries.items() if not s.reliable
    )
    return BuiltReport(tuple(written), failures, unreliable)


def _plan(dataset: str | Path, variants: Sequence[str] | None,
          scripts: Sequence[Path] | None, higher_is_better: bool | None,
          allow_scripts: bool) -> _Plan:
    """Load the dataset and its tables once; the analyses to run, checked as file names."""
    from rebayes.bayes.analyses import analysis_specs
    from rebayes.bayes.spec import load_script

    meta = load_dataset(dataset)
    schema = meta.schema
    data = meta.reference
    variants = list(variants or schema.report_variants)
    with phase("loading the table"):
        tables = {v: load_table(meta, v) for v in variants}
    specs = [load_script(s) for s in scripts] if scripts else analysis_specs(meta, allow_scripts)
    # Every analysis of the report runs on the report's dataset.
    specs = [replace(spec, data=data) for spec in specs]
    for spec in specs:  # each names files: <name>.html, figures/<name>_*.png
        why = unsafe_file_name(spec.name) or (
            "it is the name of one of the report's own pages"
            if spec.name.casefold() in ("index", "audit", "frequentist") else None)
        if why:
            raise RebayesError(
                f"analysis {spec.name!r} cannot name the report's files ({spec.name}.html, "
                f"figures/{spec.name}_*.png): {why}"
            )
    if higher_is_better is not None:
        specs = [replace(spec, higher_is_better=higher_is_better) for spec in specs]
        # The pages' words follow the direction asked for, as the fits do.
        schema = schema.with_direction(higher_is_better)
        tables = {v: t.with_direction(higher_is_better) for v, t in tables.items()}
    # A script fixing a variant the report does not show: its table, loaded once too.
    fixed = {s.variant: load_table(meta, s.variant).with_direction(higher_is_better)
             for s in specs if s.variant is not None and s.variant not in tables}
    return _Plan(dataset, meta, schema, variants, tables, specs, fixed)


def analyse(plan: _Plan, figures: Path, priors: Sequence[str] | None,
            settings: SamplerSettings | None, progress: bool,
            log: Callable[[str], None], engine: str = "nuts") -> Reanalysis:
    """Run the audit, RevMan's tables, the bias section and every analysis of a plan.

    The fits sample in a background thread, one analysis ahead of this one, which checks and
    draws the analysis before (:mod:`rebayes.report.ahead`); each analysis's figures go into
    ``figures`` as soon as it is done. The influence and decision-tool refits run in a second
    thread: queued behind the analyses they kept this thread waiting at the end; run between
    them they would delay the next one. ``engine`` answers each analysis's fits
    (:func:`rebayes.bayes.fit.fit`); why NUTS answers where ``auto`` falls back is logged once.
    """
    from rebayes.bayes.fit import fit_priors
    from rebayes.sensitivity.conflicts import evidence_conflicts

    specs, variants, trials = plan.specs, plan.variants, plan.tables[plan.variants[0]]
    direction = plan.schema.direction  # with the asked direction
    # Conflicts in the evidence no prior removes: shown with the overall analysis (else the
    # first), on its page and leading the index.
    conflicts = evidence_conflicts(trials.to_frame(), direction)
    conflicts_spec = plan.overall_spec or specs[0]

    said: set[str] = set()

    def fall_back(spec: Any) -> Callable[[str], None]:
        def say(why: str) -> None:
            if spec.name not in said:  # once, not once per prior set and variant
                said.add(spec.name)
                log(f"fit: NUTS answers {spec.name}: {why}")
        return say

    def fit_variants(spec: Any, wanted: threading.Event,
                     unchecked: queue.SimpleQueue[Any]) -> dict[str | None, list[Any]]:
        # On one core: the other is the main thread's, which checks and draws meanwhile
        # (nutpie's two threads slowed it more than they gained; the draws are the same).
        fitted = {v: fit_priors(spec, priors, variant=v, settings=settings, progress=progress,
                                on_fit=unchecked.put, cores=1, trials=plan.table(spec, v),
                                engine=engine, on_fallback=fall_back(spec))
                  for v in plan.variants_of(spec)}
        # While the main thread is busy with the analysis before, check these fits too; as
        # soon as it waits for them, hand them over (it checks the rest itself).
        _check_until(unchecked, wanted.is_set, wait=False)
        return fitted

    with Ahead(limit=1) as ahead, Ahead() as refits:
        wanted = [threading.Event() for _ in specs]
        # Each fit is checked once, by whichever thread takes it from its analysis's queue.
        unchecked: list[queue.SimpleQueue[Any]] = [queue.SimpleQueue() for _ in specs]
        jobs = [ahead.submit(fit_variants, spec, waiting, fits)
                for spec, waiting, fits in zip(specs, wanted, unchecked, strict=True)]
        audit_rows: Sequence[AuditRow] = ()
        if plan.meta.reported_path is not None:
            log("audit: recomputing the published figures")
            audit_rows = audit(plan.source, variants[0], tables=plan.tables)
        freq = frequentist_tables({v: t.to_frame() for v, t in plan.tables.items()},
                                  analyses_of(plan.schema))
        # "Is the evidence distorted?" (rebayes.report.bias): computed in the refits thread
        # while the first fits sample, or read from the cache.
        bias = bias_section(trials.to_frame(), figures, refits)
        runner = _AnalysisRunner(plan, figures, settings, ahead, refits, log,
                                 conflicts, conflicts_spec, engine)
        for spec, job, waiting, fits_queue in zip(specs, jobs, wanted, unchecked, strict=True):
            runner.run(spec, job, waiting, fits_queue)
        influence, tools = runner.finish()
    return Reanalysis(plan.meta, plan.schema, variants, plan.tables, direction, conflicts,
                      runner.analyses, influence, tools, audit_rows, freq, bias)


class _AnalysisRunner:
    """Takes each analysis's fits from the sampling thread, compares and draws them."""

    def __init__(self, plan: _Plan, figures: Path, settings: SamplerSettings | None,
                 ahead: Ahead, refits: Ahead, log: Callable[[str], None], conflicts: Any,
                 conflicts_spec: Any, engine: str = "nuts") -> None:
        self.plan, self.figures, self.settings = plan, figures, settings
        # The influence refits follow the report's engine: NUTS asked is NUTS everywhere;
        # otherwise each refit is exact where it can be (auto).
        self.refit_engine = "nuts" if engine == "nuts" else "auto"
        self.ahead, self.refits, self.log = ahead, refits, log
        self.conflicts, self.conflicts_spec = conflicts, conflicts_spec
        self.trials = plan.tables[plan.variants[0]]
        self.analyses: list[AnalysisReport] = []
        self.loo_job: Any = None
        self.tools_job: Any = None

    def run(self, spec: Any, job: Any, waiting: threading.Event,
            fits_queue: queue.SimpleQueue[Any]) -> None:
        """Compare one analysis's fits, draw its figures, queue the overall one's refits."""
        from rebayes.report.analysis import (
            AnalysisReport,
            fit_coefficients,
            fit_or_probabilities,
            save_fit_figure,
        )
        from rebayes.report.sections import diagnostics_section, sensitivity_section
        from rebayes.sensitivity.comparison import compare_fits

        overall_spec = self.plan.overall_spec
        self.log(f"fit: {spec.name}")
        waiting.set()
        if spec is self.plan.specs[0] and not job.done():
            # The first analysis samples: import the plotting libraries meanwhile, not
            # when the first figure is drawn (a report from cached fits draws none).
            import arviz_plots  # noqa: F401
            import matplotlib.pyplot  # noqa: F401

        # Check the fits already sampled while the others sample (the first analysis's
        # are sampled while this thread has nothing else to do).
        _check_until(fits_queue, job.done)
        by_variant = self.ahead.take(job)
        fits = next(iter(by_variant.values()))
        if spec is overall_spec:
            from rebayes.sensitivity.influence import leave_one_out_bayesian

            # The refits keep only their summaries: no slot.
            self.loo_job = self.refits.submit(leave_one_out_bayesian, self.trials,
                                              overall_spec, fits[0].prior,
                                              settings=self.settings, engine=self.refit_engine,
                                              slot=False)
        self.log(f"compare: {spec.name} across priors and variants (diagnostics, psense, BF)")
        comparison = compare_fits(
            [f for group in by_variant.values() for f in group],
            conflicts=self.conflicts if spec is self.conflicts_spec else ())
        # What the pages need from every fit, while its draws are in memory; then the
        # draws of all but the default prior's fit (its diagnostics figures) leave memory.
        comparison.overlay_data()
        for f in fits:
            fit_coefficients(f)
            fit_or_probabilities(f)
        for f in (f for group in by_variant.values() for f in group):
            if f is not fits[0]:
                f.release()
        # Its figures now, while the next analysis samples.
        forest = save_fit_figure(fits[0], fits[0].plot, self.figures,
                                 f"{spec.name}_forest.png")
        self.analyses.append(AnalysisReport(
            spec=spec, fits=tuple(fits), comparison=comparison,
            gates_ok=comparison.diagnostics_ok,
            figures={"forest": f"figures/{forest}"},
            sections=(
                ("Prior sensitivity and data variants",
                 sensitivity_section(comparison, self.figures)),
                ("Diagnostics", diagnostics_section(comparison, self.figures)),
            ),
        ))
        allocator.release_free_memory()  # the draws just released (~60 MB at the peak)
        if spec is overall_spec and not _decision_tools_kept(self.trials, self.analyses[-1],
                                                              self.settings):
            # The tools' refits join the queue; the main thread no longer uses the
            # overall analysis's fits until it takes their results.
            self.tools_job = self.refits.submit(_decision_tools, self.trials,
                                                self.analyses[-1], self.settings, slot=False)

    def finish(self) -> tuple[Influence | None, list[_ToolView]]:
        """Return the influence table and decision tools of the overall analysis, if any."""
        overall = next((a for a in self.analyses if a.spec is self.plan.overall_spec), None)
        if overall is None or self.loo_job is None:
            return None, []
        from rebayes.sensitivity.influence import influence_table, leave_one_out_frequentist

        self.log("influence: refitting the overall analysis without each trial")
        influence = influence_table(self.refits.take(self.loo_job),
                                    leave_one_out_frequentist(self.trials),
                                    overall.default.direction)
        self.log("decision tools: absolute effects, credibility, cumulative analysis, the "
                 "next trial")
        tools = _decision_tool_views(
            self.trials, overall, self.settings,
            self.refits.take(self.tools_job) if self.tools_job is not None else None)
        return influence, tools


def write_report(reanalysis: Reanalysis, output: Path, figures: Path) -> dict[str, str]:
    """Return the report's pages and files (name -> text) for a computed re-analysis.

    Figures the pages need beyond the analyses' own (the decision heat map, the influence
    and decision tools' figures) are drawn into ``figures``. ``output`` is where the report
    will be: a related report (``links``) and the calibration study are linked only where
    they exist there.
    """
    from rebayes.plots import decision_heatmap
    from rebayes.report.analysis import save_figure
    from rebayes.report.overview import overview
    from rebayes.sensitivity.comparison import decision_table

    r = reanalysis
    meta, schema, variants, tables = r.meta, r.schema, r.variants, r.tables
    direction, conflicts, analyses = r.direction, r.conflicts, list(r.analyses)
    influence, audit_rows, freq, bias = r.influence, r.audit_rows, r.freq, r.bias
    citation = schema.citation.get("text", "")
    env = environment(tables[variants[0]].data_hash)
    names = [a.spec.name for a in analyses]
    nav = _nav(names, audited=bool(audit_rows))
    # Every page's footer carries the versions and the data hash, once; the pages'
    # reproducibility tables list the rest.
    footer = "Reproducibility: " + "; ".join(f"{k} {v}" for k, v in env)
    pages, results = _analysis_pages(r, analyses, env, nav, footer, figures)
    comparisons = [a.comparison for a in analyses if a.comparison]
    decisions = decision_table(comparisons)
    lead = overview(comparisons, decisions, direction, conflicts)
    # A map whose every cell shows one value is said in a sentence instead.
    headline = save_figure(
        decision_heatmap(decisions, direction, lead.panels),
        figures, "decision_heatmap.png") if lead.panels else None
    control_risk = _control_risks(analyses)
    counts = {v: sum(row.verdict == v for row in audit_rows)
              for v in ("reproduced", "differs", "not_recomputable")}
    pages["index.html"] = _index_page(r, analyses, lead, headline, control_risk, counts,
                                      env, nav, footer, output)
    if audit_rows:
        pages["audit.html"] = _audit_page(audit_rows, variants[0], nav, footer, schema)
    pages["frequentist.html"] = frequentist_page(freq, schema, nav, footer)
    summary_md = _summary_markdown(r, analyses, lead, control_risk, counts, env)
    files = {
        **pages,
        "SUMMARY.md": summary_md,
        "frequentist.md": frequentist_markdown(freq, schema),
        "results.json": json.dumps(
            {
                "dataset": {**schema.to_dict(), "variants": variants},
                "analyses": results,
                "influence": (influence.to_dict()
                              if influence is not None else None),
                "audit": [r.to_dict() for r in audit_rows],
                "bias": bias.record,
            },
            indent=2, allow_nan=False,
        ) + "\n",
    }
    if audit_rows:
        files["audit.md"] = audit_markdown(audit_rows, variants[0], citation,
                                           n_variants=len(variant_combinations(meta)),
                                           schema=schema)
    return files



def _index_page(r: Reanalysis, analyses: Sequence[AnalysisReport], lead: Any,
                headline: str | None, control_risk: str, counts: dict[str, int],
                env: Sequence[tuple[str, str]], nav: Sequence[tuple[str, str]], footer: str,
                output: Path) -> str:
    """Return index.html: the lead, the heat map, every analysis's row and sentence, audit."""
    from rebayes.report.analysis import (
        fit_coefficients,
        key_sentence,
        result_headers,
        results_rows,
    )
    from rebayes.report.sections import flip_table

    schema, direction, variants, tables = r.schema, r.direction, r.variants, r.tables
    influence, tools, audit_rows, bias = r.influence, r.tools, r.audit_rows, r.bias
    citation = schema.citation.get("text", "")
    versions = [(k, v) for k, v in env if "hash" not in k]
    # reports/calibration/ is benchmarks/sbc.py's (never touched here); the index links it.
    calibration = Path(output) / "calibration" / "summary.md"
    has_calibration = calibration.is_file()
    overall_forest = next((a.figures["forest"].removeprefix("figures/") for a in analyses
                           if a.spec.name == "overall"), None)
    notes = (*schema.notes, *tables[variants[0]].notes)
    # A related report is linked only where it exists (no dead links).
    links = [x for x in schema.links if (Path(output) / x["href"]).is_file()]
    return render_page(
        "index.html", "rebayes: summary", nav, footer,
        heading=schema.title,
        citation=citation,
        notes=list(notes),
        direction_sentence=direction.sentence(),
        control_risk=control_risk,
        lead=lead,
        links=links,
        rebayes_version=dict(env).get("rebayes", ""),
        variant=variants[0],
        sensitivity_variants=", ".join(variants[1:]) or "none",
        headline=figure(
            f"figures/{headline}",
            "The decision probabilities of every analysis (a meta-regression: every "
            "subgroup, never its row average) under every prior and data variant; framed "
            "cells are at or above 0.95; dashed orange frames mark cells at the line (within 2 "
            "MCSE of 0.95): another run could put them on either side.") if headline else None,
        overall_forest=figure(
            f"figures/{overall_forest}",
            "The overall analysis: observed and shrunken trial RRs, the pooled and "
            "predictive RR, RevMan's M-H estimate.") if overall_forest else None,
        analyses=[
            {
                "name": a.spec.name,
                "title": a.spec.title,
                "sentence": _with_conflicts(
                    key_sentence(a.default, schema, fit_coefficients(a.fits[0])), a),
                "results": table(
                    (*result_headers(a.default.direction, a.default.pooled_kind),
                     "all gates"),
                    results_rows(a.summaries, a.comparison)),
                "flips": ([flip_table(c) for c in a.comparison.conclusions if c.flips]
                          if a.comparison is not None and a.comparison.flips else []),
            }
            for a in analyses
        ],
        influence=_influence_verdict(influence) if influence is not None else None,
        tools=[(tool.title, tool.sentence) for tool in tools],
        failing=", ".join(a.spec.name for a in analyses if not a.gates_ok),
        gate_sentence=DEFAULT_THRESHOLDS.sentence(),
        loo_tables=_loo_tables(analyses),
        has_calibration=has_calibration,
        calibration=_calibration_table(calibration.parent) if has_calibration else None,
        audit=table(
            ("id", "reported", "recomputed", "verdict"),
            [(r.id, r.reported, r.recomputed, Cell(r.verdict, r.verdict))
             for r in audit_rows],
        ) if audit_rows else None,
        audit_counts=counts,
        versions=table(("item", "value"), versions),
        bias=bias,
    )

def _analysis_pages(r: Reanalysis, analyses: list[AnalysisReport],
                    env: Sequence[tuple[str, str]], nav: Sequence[tuple[str, str]],
                    footer: str, figures: Path) -> tuple[dict[str, str], dict[str, object]]:
    """Return each analysis's page and results.json record.

    The overall analysis's page gains the influence and decision-tool sections (their
    figures drawn into ``figures``); ``analyses`` is updated with it.
    """
    from rebayes.bayes.fit_record import fit_record
    from rebayes.report.analysis import analysis_page, fit_coefficients, fit_or_probabilities

    influence, tools = r.influence, r.tools
    pages: dict[str, str] = {}
    results: dict[str, object] = {}
    for i, report in enumerate(analyses):
        name = report.spec.name
        compared = report.comparison
        assert compared is not None  # every analysis of a report is compared
        if name == "overall" and influence is not None:
            report = replace(report, sections=(
                *report.sections,
                ("Influence: leave one trial out",
                 _influence_section(influence, figures, report.fits[0].prior.name,
                                    report.default.direction)),
                *[(tool.title, tool_section(
                    tool.sentence, tool.frame, f"figures/{_write(figures, tool)}",
                    report.default.direction))
                  for tool in tools],
            ))
        analyses[i] = report
        prior_notes = {f.prior.name: prior_justification(f.prior.description) for f in report.fits}
        pages[f"{name}.html"] = analysis_page(report, env, prior_notes, nav, footer)
        results[name] = {
            "title": report.spec.title,
            "priors": {
                f.prior.name: fit_record(report.summaries[f.prior.name], fit_coefficients(f),
                                         fit_or_probabilities(f))
                for f in report.fits
            },
            "comparison": compared.to_dict(),
        }
    return pages, results


def _summary_markdown(r: Reanalysis, analyses: Sequence[AnalysisReport], lead: Any,
                      control_risk: str, counts: dict[str, int],
                      env: Sequence[tuple[str, str]]) -> str:
    """Return SUMMARY.md: the lead, each analysis's sentence and table, audit, versions."""
    from rebayes.report.analysis import fit_coefficients, key_sentence, results_markdown

    schema, direction, influence, bias, audit_rows = (r.schema, r.direction, r.influence,
                                                      r.bias, r.audit_rows)
    citation = schema.citation.get("text", "")
    summary_md = [
        f"# rebayes: {schema.title}",
        "",
        citation,
        "",
        direction.sentence(),
        "",
        f"Risk ratios, risk differences and NNTs are stated {control_risk}.",
        "",
        "Open `index.html` for the full report (figures, diagnostics, every prior).",
        "",
        *lead.markdown(),
        "## What each analysis says",
        "",
        *[f"- **{a.spec.title}**: "
          + _with_conflicts(key_sentence(a.default, schema, fit_coefficients(a.fits[0])), a)
          for a in analyses],
        "",
    ]
    if influence is not None:
        summary_md += [f"Influence (overall analysis): {_influence_verdict(influence)}", ""]
    summary_md += bias.markdown
    for a in analyses:
        summary_md += [f"### {a.spec.title}", "", results_markdown(a.summaries), ""]
    if audit_rows:
        summary_md += [
            "## Audit of the published figures",
            "",
            f"{counts['reproduced']} reproduced, {counts['differs']} differ, "
            f"{counts['not_recomputable']} not recomputable (details: `audit.md`).",
            "",
            markdown_table(("id", "reported", "recomputed", "verdict"),
                           [(r.id, r.reported, r.recomputed, r.verdict) for r in audit_rows]),
            "",
        ]
    summary_md += [
        "## Reproducibility",
        "",
        markdown_table(("item", "value"), env),
        "",
    ]
    return "\n".join(summary_md)
