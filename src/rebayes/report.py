"""Assemble the whole re-analysis into ``reports/``.

``reports/`` gets: ``index.html`` (audit, one results row and key sentence per analysis,
links), one ``<analysis>.html`` per model script, ``audit.html``/``audit.md``,
``frequentist.html``/``frequentist.md``, ``SUMMARY.md`` (for the repository page),
``results.json`` (every number) and ``figures/*.png``. The HTML is self-contained (inline CSS,
no scripts, no CDN). Everything is written into a staging directory that replaces
``reports/`` only when every part succeeded (:func:`rebayes.atomic.staging_directory`).
"""

from __future__ import annotations

import json
import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from html import escape
from importlib import metadata
from pathlib import Path

from rebayes.atomic import check_writable, staging_directory
from rebayes.data import data_root, load_dataset, load_trials, variant_combinations
from rebayes.errors import RebayesError
from rebayes.paper import AuditRow, audit, audit_markdown
from rebayes.report_frequentist import (
    frequentist_html,
    frequentist_markdown,
    frequentist_tables,
)
from rebayes.report_html import Cell, markdown_table, table
from rebayes.report_html import page as html_page

__all__ = ["ANALYSIS_ORDER", "build_report", "environment", "model_scripts"]

DEFAULT_VARIANTS = ("published", "seed_fit")
# Reading order of the analyses: the overall answer first, the sensitivity checks last.
ANALYSIS_ORDER = (
    "overall", "rsa_type", "timing", "timing_within_type", "placebo", "normal_approximation",
)
PACKAGES = ("numpy", "scipy", "pandas", "pymc", "pytensor", "nutpie", "arviz-base",
            "arviz-stats", "arviz-plots", "xarray", "matplotlib")


def model_scripts(directory: Path | None = None) -> list[Path]:
    """Return the model scripts under ``models/``, in :data:`ANALYSIS_ORDER` then by name."""
    directory = directory or data_root().parent / "models"
    scripts = sorted(directory.glob("*.py"))
    if not scripts:
        raise RebayesError(f"{directory}: no model scripts (*.py)")
    rank = {name: i for i, name in enumerate(ANALYSIS_ORDER)}
    return sorted(scripts, key=lambda p: (rank.get(p.stem, len(rank)), p.stem))


def environment(data_hash: str = "") -> list[tuple[str, str]]:
    """Versions and data hash for the reproducibility table."""
    rows = [("python", platform.python_version())]
    for name in ("rebayes", *PACKAGES):
        try:
            rows.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            rows.append((name, "not installed"))
    if data_hash:
        rows.append(("trial table hash (SHA-256, after variant)", data_hash))
    return rows


def _justification(description: str) -> str:
    """Return a prior set's reasoning and sources from its docstring, as one paragraph."""
    paragraphs = [p.strip() for p in description.strip().split("\n\n") if p.strip()]
    why = [p for p in paragraphs[1:] if not p.startswith("References")]
    refs = [p.split("----------", 1)[1] for p in paragraphs if p.startswith("References")]
    text = " ".join(why or paragraphs[:1])
    if refs:
        text += " Sources: " + " ".join(r.strip() for r in refs)
    return " ".join(text.split())


def _influence_verdict(table_: object) -> str:
    """Say in one sentence which trials move P(benefit) by more than the threshold."""
    from rebayes.influence import INFLUENCE_THRESHOLD

    base = table_["p_benefit"].iloc[0]
    moved = [r for r in table_.itertuples() if r.influential]
    if not moved:
        return (f"No single trial moves P(benefit) ({base:.3f}) by more than "
                f"{INFLUENCE_THRESHOLD} when left out.")
    lines = "; ".join(f"{r.left_out} (to {r.p_benefit:.3f}, {r.delta_p_benefit:+.3f})"
                      for r in moved)
    return (f"Leaving out a single trial moves P(benefit) from {base:.3f} by more than "
            f"{INFLUENCE_THRESHOLD} for: {lines}.")


def _influence_html(table_: object, figures: Path, prior: str) -> str:
    from rebayes.influence import INFLUENCE_THRESHOLD
    from rebayes.plots import influence_plot
    from rebayes.report_analysis import save_figure

    name = save_figure(influence_plot(table_, INFLUENCE_THRESHOLD,
                                      "Leave one trial out: overall analysis"),
                       figures, "overall_influence.png")
    verdict = _influence_verdict(table_)
    rows = [
        (r.left_out, f"{r.rr_median:.2f} ({r.rr_low:.2f} to {r.rr_high:.2f})",
         Cell(f"{r.p_benefit:.3f}", "num fail" if r.influential else "num"),
         Cell(f"{r.delta_p_benefit:+.3f}", "num"), f"{r.tau_median:.2f}",
         f"{r.mh_rr:.2f} [{r.mh_low:.2f}, {r.mh_high:.2f}]", Cell(f"{r.mh_p:.3f}", "num"))
        for r in table_.itertuples()
    ]
    return "\n".join([
        f'<div class="key">{escape(verdict)}</div>',
        f"<p>Bayesian refits use the {escape(prior)} prior and the compiled model; RevMan's MH "
        "fixed-effect estimate is recomputed beside each.</p>",
        table(("left out", "posterior RR (95% CrI)", "P(benefit)", "change", "tau median",
               "RevMan MH RR [95% CI]", "MH P"), rows),
        f'<figure><img src="figures/{name}" alt="influence plot"><figcaption>Pooled RR and '
        f"P(benefit) without each trial; red: moves P(benefit) by more than "
        f"{INFLUENCE_THRESHOLD}.</figcaption></figure>",
    ])


def _nav(analyses: Sequence[str]) -> list[tuple[str, str]]:
    return [("Summary", "index.html"), ("Audit", "audit.html"),
            ("RevMan tables", "frequentist.html"), *[(a, f"{a}.html") for a in analyses]]


def _audit_html(rows: Sequence[AuditRow], variant: str) -> str:
    body = [
        "<h1>Audit of the paper's reported figures</h1>",
        f"<p>Each figure recomputed from the paper's own stated totals and from the trial "
        f"table (variant <code>{escape(variant)}</code>) with RevMan 5.3's formulas; every "
        f"data variant tried. A figure is reproduced when the recomputed numbers, rounded as "
        f"the paper rounds, equal the printed ones.</p>",
        table(
            ("id", "where", "reported", "recomputed", "verdict", "explanation"),
            [
                (r.id, r.location, r.reported, r.recomputed, Cell(r.verdict, r.verdict),
                 r.explanation)
                for r in rows
            ],
        ),
    ]
    return "\n".join(body)


def build_report(
    output: Path = Path("reports"),
    dataset: str = "ivig_rsa",
    variants: Sequence[str] = DEFAULT_VARIANTS,
    scripts: Sequence[Path] | None = None,
    priors: Sequence[str] | None = None,
    settings: object | None = None,
    progress: bool = True,
    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr),
) -> list[Path]:
    """Run the audit and every analysis, and write the report.

    Parameters
    ----------
    output : Path
        Directory to (re)create.
    dataset : str
        Dataset name or directory.
    variants : sequence of str
        Data variants for the frequentist tables and the prior x variant comparison; the
        first is the audit's and the analyses'.
    scripts : sequence of Path, optional
        Model scripts (default: every script under ``models/``).
    priors : sequence of str, optional
        Prior sets (default: each spec's own list, else every built-in set).
    settings : SamplerSettings, optional
        Sampler settings for every fit (default: the package's).
    progress : bool
        Show progress bars on stderr.
    log : callable
        Receives one line per step.

    Returns
    -------
    list of Path
        The files written, inside ``output``.
    """
    from rebayes.inference import fit_priors
    from rebayes.report_analysis import (
        AnalysisReport,
        analysis_page_body,
        forest_figure,
        key_sentence,
        results_markdown,
        results_rows,
        save_figure,
    )
    from rebayes.spec import load_script

    check_writable(output)  # before minutes of fitting, not after
    meta = load_dataset(dataset)
    citation = meta.meta.get("citation", {}).get("text", "")
    tables = {v: load_trials(dataset, v) for v in variants}
    log("audit: recomputing the paper's figures")
    audit_rows = audit(dataset, variants[0])
    freq = frequentist_tables(tables)
    analyses: list[AnalysisReport] = []
    for script in scripts or model_scripts():
        spec = load_script(script)
        if spec.data == "ivig_rsa" and dataset != "ivig_rsa":
            spec = replace(spec, data=str(dataset))
        log(f"fit: {spec.name} ({script})")
        fits = fit_priors(spec, priors, variant=variants[0] if spec.variant is None else None,
                          settings=settings, progress=progress)
        analyses.append(AnalysisReport(spec=spec, fits=tuple(fits)))

    influence = None
    overall = next((a for a in analyses if a.spec.name == "overall"), None)
    if overall is not None:
        from rebayes.influence import (
            influence_table,
            leave_one_out_bayesian,
            leave_one_out_frequentist,
        )

        log("influence: refitting the overall analysis without each trial")
        trials = tables[variants[0]]
        influence = influence_table(
            leave_one_out_bayesian(trials, overall.spec, overall.fits[0].prior,
                                   settings=settings),
            leave_one_out_frequentist(trials),
        )

    env = environment(tables[variants[0]].attrs["data_hash"])
    names = [a.spec.name for a in analyses]
    nav = _nav(names)
    footer = "Reproducibility: " + "; ".join(f"{k} {v}" for k, v in env)

    def page(title: str, body: str, nav_: Sequence[tuple[str, str]]) -> str:
        return html_page(title, body, nav_, footer)

    written: list[Path] = []
    with staging_directory(output) as staging:
        figures = staging / "figures"
        figures.mkdir()
        pages: dict[str, str] = {}
        results: dict[str, object] = {}
        for i, report in enumerate(analyses):
            name = report.spec.name
            forest = save_figure(forest_figure(report.fits[0]), figures, f"{name}_forest.png")
            report = replace(report, figures={"forest": f"figures/{forest}"})
            if name == "overall" and influence is not None:
                report = replace(report, sections=(
                    *report.sections,
                    ("Influence: leave one trial out",
                     _influence_html(influence, figures, report.fits[0].prior.name)),
                ))
            analyses[i] = report
            prior_notes = {f.prior.name: _justification(f.prior.description) for f in report.fits}
            pages[f"{name}.html"] = page(
                f"rebayes: {report.spec.title or name}",
                analysis_page_body(report, env, prior_notes),
                nav,
            )
            results[name] = {
                "title": report.spec.title,
                "priors": {n: s.to_dict() for n, s in report.summaries.items()},
            }
        index = [
            "<h1>Bayesian re-analysis: IVIG for recurrent spontaneous abortion</h1>",
            f"<p>{escape(citation)}</p>",
            f"<p class=\"muted\">Generated {datetime.now(UTC):%Y-%m-%d %H:%M UTC} by rebayes "
            f"{escape(dict(env).get('rebayes', ''))}; data variant "
            f"<code>{escape(variants[0])}</code>.</p>",
            "<h2>What each analysis says</h2>",
            "<ul>" + "".join(
                f'<li><a href="{a.spec.name}.html"><strong>{escape(a.spec.title)}</strong></a>: '
                f"{escape(key_sentence(a.default))}</li>"
                for a in analyses
            ) + "</ul>",
        ]
        if influence is not None:
            index.append(f'<p><a href="overall.html">Influence</a>: '
                         f"{escape(_influence_verdict(influence))}</p>")
        for a in analyses:
            index += [
                f'<h3><a href="{a.spec.name}.html">{escape(a.spec.title)}</a></h3>',
                table(
                    ("prior", "pooled RR (95% CrI)", "P(RR>1)", "P(RR>1.1)", "P(RR>1.25)",
                     "tau (95% CrI)", "predictive RR (95% PrI)", "R-hat max", "ESS min",
                     "divergences"),
                    results_rows(a.summaries),
                ),
            ]
        counts = {v: sum(r.verdict == v for r in audit_rows)
                  for v in ("reproduced", "differs", "not_recomputable")}
        index += [
            "<h2>Audit of the paper</h2>",
            f"<p>{counts['reproduced']} figures reproduced, {counts['differs']} differ, "
            f"{counts['not_recomputable']} not recomputable. "
            '<a href="audit.html">Full audit with explanations</a>.</p>',
            table(
                ("id", "reported", "recomputed", "verdict"),
                [(r.id, r.reported, r.recomputed, Cell(r.verdict, r.verdict))
                 for r in audit_rows],
            ),
            "<h2>Reproducibility</h2>",
            table(("item", "value"), env),
        ]
        pages["index.html"] = page("rebayes: summary", "\n".join(index), nav)
        pages["audit.html"] = page("rebayes: audit", _audit_html(audit_rows, variants[0]), nav)
        pages["frequentist.html"] = page(
            "rebayes: RevMan tables",
            "<h1>Frequentist re-analysis (RevMan 5.3)</h1>" + frequentist_html(freq),
            nav,
        )
        summary_md = [
            "# rebayes: summary of the re-analysis",
            "",
            citation,
            "",
            "Open `index.html` for the full report (figures, diagnostics, every prior).",
            "",
            "## What each analysis says",
            "",
            *[f"- **{a.spec.title}**: {key_sentence(a.default)}" for a in analyses],
            "",
        ]
        if influence is not None:
            summary_md += [f"Influence (overall analysis): {_influence_verdict(influence)}", ""]
        for a in analyses:
            summary_md += [f"### {a.spec.title}", "", results_markdown(a.summaries), ""]
        summary_md += [
            "## Audit of the paper",
            "",
            f"{counts['reproduced']} reproduced, {counts['differs']} differ, "
            f"{counts['not_recomputable']} not recomputable (details: `audit.md`).",
            "",
            markdown_table(("id", "reported", "recomputed", "verdict"),
                           [(r.id, r.reported, r.recomputed, r.verdict) for r in audit_rows]),
            "",
            "## Reproducibility",
            "",
            markdown_table(("item", "value"), env),
            "",
        ]
        files = {
            **pages,
            "SUMMARY.md": "\n".join(summary_md),
            "audit.md": audit_markdown(audit_rows, variants[0], citation,
                                       n_variants=len(variant_combinations(meta))),
            "frequentist.md": frequentist_markdown(freq),
            "results.json": json.dumps(
                {
                    "analyses": results,
                    "influence": (influence.to_dict(orient="records")
                                  if influence is not None else None),
                    "audit": [r.to_dict() for r in audit_rows],
                },
                indent=2, allow_nan=False,
            ) + "\n",
        }
        for name, text in files.items():
            (staging / name).write_text(text, encoding="utf-8")
        written = [Path(output) / p.relative_to(staging) for p in sorted(staging.rglob("*"))
                   if p.is_file()]
    return written
