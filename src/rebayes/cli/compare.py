"""``rebayes compare [ANALYSIS] --data X``: one analysis under several priors and data variants."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from rebayes.atomic import atomic_path
from rebayes.bayes.analyses import resolve_spec
from rebayes.checks.gates import DEFAULT_THRESHOLDS
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
from rebayes.folders import check_writable_folder, unsafe_file_name

DESCRIPTION = f"""\
Fit one analysis of a dataset (a model script, or an analysis name: overall by default) under
several prior sets and data variants and compare the posteriors: one table (rows prior x
variant: pooled RR median and 95% interval, P(benefit) (P(RR < 1) when the dataset declares
no direction), P(RR > 1.1), tau, the predictive RR
interval for a new trial, subgroup ratios where the analysis has them, the Savage-Dickey
Bayes factor for d = 0, convergence), the conclusions that change with the prior or the
data ("P(benefit) > 0.95 under A but not under B"), and per fit the power-scaling prior
sensitivity (arviz-stats psense). Every effect prior is stated on the outcome's ratio scale,
with the side it points to. Conflicts in the evidence that no prior removes are printed
above the conclusions: fixed and random effects that disagree, and a largest trial that
disagrees with the rest (RevMan's analysis of the trials). Where many probabilities meet the
0.95 line, one sentence on multiplicity and repeated looks says how many.

Each fit is checked against the convergence gates ({DEFAULT_THRESHOLDS.sentence()});
--strict makes a failing check exit with status 3.
"""

EPILOG = """\
Examples:
  rebayes compare --data my.csv                            overall, every built-in prior set
  rebayes compare --data mydata/ --priors weakly_informative skeptical vague
  rebayes compare latitude --data mydata/ --variants published itt
  rebayes compare --data mydata/ --output figures/         PNG: posterior overlay + sensitivity
  rebayes compare --data mydata/ --json --strict           JSON; exit 3 if a diagnostic fails

Exit status: 0 ok, 2 user error (one line on stderr), 3 a diagnostic gate failed (--strict)
or a fit still diverged after the sampler's re-runs (unless --allow-divergences).
"""


EXIT_DIAGNOSTICS = EXIT_GATE_FAILED


def register(subparsers: Any) -> None:
    """Add the ``compare`` subcommand."""
    parser = subparsers.add_parser(
        "compare",
        help="posteriors of one analysis across priors and data variants",
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
    parser.add_argument(
        "--priors",
        "--prior",
        dest="priors",
        action="extend",
        nargs="+",
        metavar="NAME",
        help="prior sets to compare (default: the script's, i.e. every built-in set unless "
        "it names some)",
    )
    parser.add_argument("--prior-file", metavar="TOML", help="TOML file with your own prior sets")
    parser.add_argument(
        "--variants",
        "--variant",
        dest="variants",
        action="extend",
        nargs="+",
        metavar="V",
        help="data variants to compare (names from the dataset's variants.toml; join with +); "
        "default: the script's",
    )
    parser.add_argument("--seed", type=int, help="sampler seed (default: the script's)")
    parser.add_argument(
        "--draws",
        type=int,
        default=1000,
        help="draws per chain, 4 chains (default 1000; extended while ESS < 1000)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    parser.add_argument(
        "--output",
        metavar="DIR",
        help="write <analysis>_posteriors.png and <analysis>_sensitivity.png into DIR",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help=f"exit with status {EXIT_DIAGNOSTICS} when any convergence check fails",
    )
    parser.add_argument(
        "--allow-divergences",
        action="store_true",
        help=f"exit with status 0 even when a fit still diverged after the sampler's re-runs "
        f"(without this option the exit status is {EXIT_DIAGNOSTICS})",
    )
    parser.add_argument("--no-cache", action="store_true", help="neither read nor write the cache")
    add_engine_option(parser, "per prior set and variant; the table's diagnostics column says "
                      "which answered", default="auto")
    parser.set_defaults(func=run)


def _save_png_atomic(figure: Any, path: Path) -> None:
    """Write a figure as PNG through a temporary file and a rename (no partial files)."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)


def _check_output(directory: str) -> Path:
    """Check the output directory before any sampling (it is created when figures are saved)."""
    path = Path(directory)
    check_writable_folder(path)
    return path


def run(args: argparse.Namespace) -> int:
    """Run ``rebayes compare``."""
    from rebayes.bayes.settings import SamplerSettings
    from rebayes.sensitivity.comparison import compare_posteriors

    spec = resolve_spec(args.script, args.data, args.higher_is_better, args.allow_scripts)
    if args.prior_file:
        spec = replace(spec, prior_file=args.prior_file)
    if args.seed is not None and args.seed < 0:
        raise RebayesError(f"--seed {args.seed} must be a non-negative integer")
    if args.draws < 1:
        raise RebayesError(f"--draws {args.draws} must be a positive integer")
    output = _check_output(args.output) if args.output else None
    why = unsafe_file_name(spec.name) if output is not None else None
    if why:
        raise RebayesError(
            f"analysis {spec.name!r} cannot name the output files ({spec.name}_posteriors.png): "
            f"{why}"
        )
    comparison = compare_posteriors(
        spec,
        args.priors,
        args.variants,
        seed=args.seed,
        settings=SamplerSettings(draws=args.draws),
        cache=not args.no_cache,
        progress=not args.json,
        engine=args.engine,
        on_fallback=auto_fallback(),
    )
    written = []
    if output is not None:
        import matplotlib.pyplot as plt

        for suffix in ("posteriors", "sensitivity"):
            figure = comparison.plot(kind=suffix)
            target = output / f"{comparison.analysis}_{suffix}.png"
            _save_png_atomic(figure, target)
            plt.close(figure)
            written.append(str(target))
    if args.json:
        payload = comparison.to_dict()
        payload["figures"] = written
        print_json(payload)
    else:
        print(comparison)
        for path in written:
            print(f"wrote {path}")
    unreliable = [f for f in comparison.fits if not f.summary.reliable]
    for f in unreliable:
        print(
            f"rebayes compare: {f.prior} / {f.variant}: {f.summary.unreliable_message()}",
            file=sys.stderr,
        )
    if args.strict and not comparison.diagnostics_ok:
        for failure in comparison.diagnostic_failures:
            print(f"rebayes compare: diagnostic check failed: {failure}", file=sys.stderr)
        return EXIT_DIAGNOSTICS
    if unreliable and not getattr(args, "allow_divergences", False):
        # A fit that still diverges is not a result: fail unless asked not to.
        return EXIT_DIAGNOSTICS
    return 0
