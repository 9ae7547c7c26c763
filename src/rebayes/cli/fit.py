"""``rebayes fit [ANALYSIS] --data X``: fit one analysis under its priors, print the posterior.

The same options work when a model script is run directly (``python my_models/slope.py
--prior skeptical``), through :func:`run_script`.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rebayes import tables
from rebayes.bayes.analyses import resolve_spec
from rebayes.bayes.mcse import MARK, marked
from rebayes.bayes.spec import AnalysisSpec, load_script
from rebayes.cli._common import (
    EXIT_GATE_FAILED,
    add_data_option,
    add_direction_options,
    add_engine_option,
    add_scripts_option,
    auto_fallback,
    print_json,
)
from rebayes.errors import RebayesError
from rebayes.progress import phase

if TYPE_CHECKING:
    from rebayes.data.trial_table import TrialTable

DESCRIPTION = """\
Fit one analysis of a dataset under one or more named prior sets, and print for each: the
pooled RR (at one control risk p0, the median observed control risk of the trials, said in
the output) and OR, the predictive RR for a new trial, tau, P(benefit) and the other decision
probabilities (in the direction the dataset declares; harm first where the evidence leans to
harm), the NNT, subgroup RRs and their ratios, meta-regression slopes, trial-specific
shrunken RRs, and convergence diagnostics. The prior is stated on the outcome's ratio scale,
with the side its effect mean points to.

ANALYSIS is a model script (a .py file defining SPEC) or the name of one of the dataset's
analyses: the defaults (overall, normal_approximation, one per declared covariate), the
[[analyses]] its dataset.toml declares, and its models/ scripts if trusted (--allow-scripts,
or rebayes trust DIR). Without ANALYSIS: the overall analysis.

The model is compiled once per structure; each further prior takes well under a second.
Fits are cached (rebayes cache info), keyed by the analysed rows and every setting: the same
command twice reads the second result from the cache.

--engine exact answers by quadrature instead (no Monte Carlo error, no PyMC; analyses with
one pooled effect): the same record, each trial's shrunken effect as an odds ratio, and log
p(y). --engine auto uses it where it can and NUTS elsewhere.

A fit that diverges is re-run at target acceptance 0.99, then with more draws; one that still
diverges is printed with a first line "UNRELIABLE: ..." ("reliable": false in --json) and
the exit status is 3, unless --allow-divergences is given.
"""

EPILOG = """\
Examples:
  rebayes fit --data my.csv                           overall analysis, every built-in prior
  rebayes fit --data mydata/ --prior skeptical        one prior set
  rebayes fit latitude --data mydata/                 a declared covariate's meta-regression
  rebayes fit my_model.py --data mydata/ --prior vague skeptical --prior-file my_priors.toml
  rebayes fit --data mydata/ --variant itt            another data variant
  rebayes fit --data mydata/ --json > fit.json        machine-readable, one record per prior
  rebayes fit --data mydata/ --engine exact           exact, by quadrature (no PyMC imported)
"""


def _add_options(parser: argparse.ArgumentParser) -> None:
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--prior",
        action="extend",
        nargs="+",
        metavar="NAME",
        help="prior set(s) to fit; default: the script's priors (all built-in sets unless it "
        "names some)",
    )
    which.add_argument(
        "--all-priors",
        action="store_true",
        help="fit every built-in prior set (and those of --prior-file)",
    )
    parser.add_argument("--prior-file", metavar="TOML", help="TOML file with your own prior sets")
    parser.add_argument(
        "--variant", help="data variant from the dataset's variants.toml (join with +)"
    )
    parser.add_argument("--seed", type=int, help="sampler seed (default: the script's)")
    parser.add_argument(
        "--draws",
        type=int,
        default=1000,
        help="draws per chain, 4 chains (default 1000; re-run at target acceptance 0.99 "
        "after divergences, doubled, up to 4000, while any parameter's bulk ESS is below 1000 "
        "or a transition diverged)",
    )
    add_engine_option(parser, "every prior family; auto says on stderr when nuts answers")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 3 when a diagnostic gate fails (R-hat, ESS, divergences, E-BFMI)",
    )
    parser.add_argument(
        "--allow-divergences",
        action="store_true",
        help="exit with status 0 even when a fit still diverged after the sampler's re-runs "
        "(it is printed as UNRELIABLE either way; without this option the exit status is 3)",
    )


def register(subparsers: Any) -> None:
    """Add the ``fit`` subcommand."""
    parser = subparsers.add_parser(
        "fit",
        help="fit one analysis (a model script) under its priors",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "script", nargs="?", default=None, metavar="ANALYSIS",
        help="model script or analysis name (default: overall)",
    )
    add_data_option(parser)
    add_direction_options(parser)
    add_scripts_option(parser)
    _add_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``rebayes fit``."""
    spec = resolve_spec(args.script, args.data, args.higher_is_better, args.allow_scripts)
    return fit_and_print(spec, args)


def fit_and_print(spec: AnalysisSpec, args: argparse.Namespace) -> int:
    """Fit ``spec`` as the options in ``args`` say and print the result.

    Returns 0; 3 when a fit still diverged after the sampler's re-runs (unless
    ``--allow-divergences``), or with ``--strict`` when a diagnostic gate fails.
    """
    if args.prior_file:
        spec = replace(spec, prior_file=args.prior_file)
    if args.seed is not None and args.seed < 0:
        raise RebayesError(f"--seed {args.seed} must be a non-negative integer")
    names = args.prior if args.prior else (None if args.all_priors else spec.priors)
    engine = getattr(args, "engine", "nuts")
    table = None
    if engine != "nuts":
        from rebayes.data.trials import load_table

        # Loaded once: a fallback to NUTS (auto) analyses the same table.
        table = load_table(spec.data, args.variant or spec.variant)
        exact = _exact_summaries(spec, names, table, engine, args.json)
        if exact is not None:
            _print(spec, *exact)
            return 0

    from rebayes.bayes.coefficients import coefficients, pooled_or_probabilities
    from rebayes.bayes.fit import fit_priors
    from rebayes.bayes.settings import SamplerSettings
    from rebayes.store.fits import flush_cache

    fits = fit_priors(
        spec,
        names,
        variant=args.variant,
        seed=args.seed,
        settings=SamplerSettings(draws=args.draws),
        cache=not args.no_cache,
        progress=True,
        trials=table,
    )
    with phase("summarising the fits and checking every reported quantity"):
        summaries = [f.summary() for f in fits]
        flush_cache()
    code = 0
    for s in summaries:
        if not s.reliable:
            print(f"{s.analysis} ({s.prior}): {s.unreliable_message()}", file=sys.stderr)
            if not getattr(args, "allow_divergences", False):
                code = EXIT_GATE_FAILED
    if getattr(args, "strict", False):
        for f in fits:
            for failure in f.summary().diagnostics.failures:
                print(f"diagnostic gate failed ({f.prior.name}): {failure}", file=sys.stderr)
                code = EXIT_GATE_FAILED
    extras = [_extras(coefficients(f.tree), pooled_or_probabilities(f.tree) if args.json else {},
                      f.design, args.json) for f in fits]
    _print(spec, summaries, args.json, extras, fits[0].design.schema.title)
    return code


def _exact_summaries(
    spec: AnalysisSpec, names: Any, table: TrialTable, engine: str, json: bool
) -> tuple[list[Any], bool, list[dict[str, Any]], str] | None:
    """Return what :func:`_print` needs from the exact engine (None: ``auto`` chose NUTS).

    ``--engine exact`` on an analysis beyond its reach is an error naming why.
    """
    from rebayes.bayes.design import build_design, prior_on_model_scale
    from rebayes.bayes.exact import exact_posterior
    from rebayes.bayes.exact_fit import (
        exact_answers,
        exact_coefficients,
        exact_or_probabilities,
        exact_summary,
    )
    from rebayes.bayes.priors import resolve_priors

    design = build_design(spec, table)
    sets = resolve_priors(names, spec.prior_file, outcome_type=design.schema.outcome_type)
    if not exact_answers(design, sets, engine, auto_fallback()):
        return None
    with phase(f"integrating {spec.name} exactly under {len(sets)} prior set(s)"):
        posts = [exact_posterior(design, prior_on_model_scale(p, design)) for p in sets]
        summaries = [exact_summary(design, p, posterior=post)
                     for p, post in zip(sets, posts, strict=True)]
    extras = [_extras(exact_coefficients(post, design), exact_or_probabilities(post), design,
                      json) for post in posts]
    return summaries, json, extras, design.schema.title


def _extras(coefficients: list[Any], or_probabilities: dict[str, float], design: Any,
            json: bool) -> dict[str, Any]:
    """Return what a record shows beside its summary: JSON keys, or the coefficients' text."""
    if json:
        return {"coefficients": coefficients, "p_pooled_or_gt": or_probabilities}
    units = {c.name: c.unit for c in design.schema.covariates.values()}
    lines = [c.sentence(units.get(c.name, "")) for c in coefficients]
    return {"text": "\nMeta-regression coefficients:\n  " + "\n  ".join(lines) if lines else ""}


def _print(spec: AnalysisSpec, summaries: list[Any], json: bool, extras: list[dict[str, Any]],
           title: str = "") -> None:
    """Print the records: one JSON record, or each summary's text and the comparison.

    ``extras``: per summary, its ``coefficients`` and ``p_pooled_or_gt`` (JSON) or the
    coefficients' ``text``.
    """
    if json:
        from rebayes.bayes.fit_record import fit_record

        print_json({
            "analysis": spec.name,
            "title": spec.title,
            "variant": summaries[0].variant,
            "engine": summaries[0].engine,
            "seed": summaries[0].to_dict()["seed"],
            "priors": {s.prior: fit_record(s, extra["coefficients"], extra["p_pooled_or_gt"])
                       for s, extra in zip(summaries, extras, strict=True)},
        })
        return
    texts = [str(s) + extra.get("text", "") for s, extra in zip(summaries, extras, strict=True)]
    print("\n\n".join([title, *texts] if title else texts))
    if len(summaries) > 1:
        print("\n" + comparison_table(summaries))


def comparison_table(summaries: list[Any]) -> str:
    """One line per prior: pooled RR, P(benefit), P(benefit beyond 1.1), tau, diagnostics."""
    d = summaries[0].direction
    table = tables.frame(
        ["prior", "pooled RR (95% CrI)", f"P({d.benefit})", f"P({d.beyond(1.1)})", "tau",
         "diagnostics"],
        [(s.prior, s.pooled_rr.format(), marked(*s.decisions()[0][1:]),
          marked(*s.decisions()[2][1:]),
          f"{s.tau.median:.2f}",
          "exact" if s.engine == "exact" else
          "ok" if s.diagnostics.ok else f"CHECK ({s.diagnostics})")
         for s in summaries],
    )
    near = any(MARK in marked(*s.decisions()[i][1:]) for s in summaries for i in (0, 2))
    return "\n".join([
        f"Sensitivity to the prior ({summaries[0].analysis}; RR {summaries[0].at_control_risk})",
        tables.text(table, align="lrrrrl"),
        *([f"{MARK} at the line: within 2 MCSE of the line it is read against (0.95; 0.5 for "
           f"P({d.beyond(1.1)}))."] if near else []),
    ])


def run_script(spec: AnalysisSpec, argv: list[str] | None = None) -> None:
    """Entry point of a model script: fit ``spec`` with ``rebayes fit``'s options, then exit.

    Parameters
    ----------
    spec : AnalysisSpec
        The script's ``SPEC``.
    argv : list of str, optional
        Command-line arguments (default ``sys.argv[1:]``).
    """
    parser = argparse.ArgumentParser(
        prog=f"python {sys.argv[0]}" if sys.argv and sys.argv[0] else "rebayes-model",
        description=f"Fit the analysis '{spec.name}'" + (f": {spec.title}" if spec.title else ""),
    )
    add_data_option(parser)
    add_direction_options(parser)
    _add_options(parser)
    args = parser.parse_args(argv)
    try:
        if args.higher_is_better is not None:
            spec = replace(spec, higher_is_better=args.higher_is_better)
        if args.data is not None:
            spec = replace(spec, data=args.data)
        elif spec.data is None and sys.argv and sys.argv[0].endswith(".py"):
            # A script in a dataset folder's models/ analyses that dataset.
            spec = replace(spec, data=load_script(sys.argv[0]).data)
        code = fit_and_print(spec, args)
    except RebayesError as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        code = 2
    sys.exit(code)
