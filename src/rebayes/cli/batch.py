"""``rebayes batch INPUTS... --output DIR``: the overall analysis of many meta-analyses."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rebayes.cli._common import add_engine_option, add_scripts_option

DESCRIPTION = """\
Run the overall analysis (binomial model, trial random effects) of many meta-analyses under
one or more prior sets, on local worker processes or a Dask cluster, and write one summary
table (DIR/summary.csv and DIR/summary.parquet, one row per meta-analysis and prior: k,
totals per arm, pooled RR and OR, P(benefit) and the literal P(RR < 1), the direction
(higher_is_better, lower_is_better or undeclared: then P(benefit) is empty), tau,
diagnostics, RevMan's estimate, status) and one JSON per meta-analysis (DIR/results/).

INPUTS are dataset folders, CSVs and review files: RevMan 5 (.rm5), Cochrane data packages
(.zip) and RevMan 5's analyses export (.csv); each of a file's dichotomous analyses is one
meta-analysis, file.rm5:1.1 picks one. A folder's overall analysis may be declared in its
dataset.toml ([[analyses]] named overall) or, if trusted, a models/overall.py script
(--allow-scripts, or rebayes trust DIR); either is part of the rerun check. An input that
fails (a bad CSV, a single trial, only double-zero trials) is a 'failed' row with its
message; the batch goes on.

A rerun with the same inputs, priors, seed and settings skips every meta-analysis whose JSON
is up to date, so an interrupted batch resumes where it stopped. Each meta-analysis's seed is
derived from --seed and its rows: the numbers do not depend on --workers or the order.
"""

EPILOG = """\
Examples:
  rebayes batch reviews/*.rm5 --output batch/                 every dichotomous outcome
  rebayes batch data/*.csv --output batch/ --priors weakly_informative skeptical
  rebayes batch reviews/ --output batch/ --scheduler tcp://10.0.0.5:8786
"""


def register(subparsers: Any) -> None:
    """Add the ``batch`` subcommand."""
    parser = subparsers.add_parser(
        "batch",
        help="overall analysis of many meta-analyses -> one summary table",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="dataset folder, CSV, review file (.rm5, .zip, RevMan CSV export) or FILE:NUMBER",
    )
    parser.add_argument(
        "--output",
        "-o",
        required=True,
        metavar="DIR",
        help="output directory (new, empty, or a previous batch's)",
    )
    parser.add_argument(
        "--priors", nargs="+", metavar="NAME", help="prior sets (default: the default prior only)"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="local worker processes (default: the number of CPUs)",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run on an existing Dask cluster (e.g. tcp://host:8786)",
    )
    parser.add_argument("--seed", type=int, default=0, help="batch seed (default 0)")
    add_engine_option(parser, "exact records leave out the trials' shrunken effects; the "
                      "summary's engine column says which answered")
    parser.add_argument(
        "--no-bias",
        action="store_true",
        help="leave out the bias analysis (Egger, Begg, trim and fill, selection model, "
        "robust BMA: most of a task's time with --engine exact); its columns stay empty",
    )
    add_scripts_option(parser)
    parser.add_argument("--quiet", action="store_true", help="no line per finished task")
    # Shorter sampling for tests and benchmarks; not part of the documented interface.
    parser.add_argument("--draws", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--tune", type=int, default=None, help=argparse.SUPPRESS)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``rebayes batch``; exit status 0 even when some meta-analyses failed."""
    from rebayes.batch import run_batch
    from rebayes.bayes.settings import SamplerSettings

    overrides = {k: v for k, v in (("draws", args.draws), ("tune", args.tune)) if v is not None}
    settings = SamplerSettings(**overrides)

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    try:
        result = run_batch(
            args.inputs,
            args.output,
            args.priors,
            workers=args.workers,
            scheduler=args.scheduler,
            seed=args.seed,
            settings=settings,
            progress=None if args.quiet else progress,
            allow_scripts=args.allow_scripts,
            engine=args.engine,
            bias=not args.no_bias,
        )
    except KeyboardInterrupt:
        # Every finished meta-analysis has its JSON, and summary.csv lists them.
        print(
            f"rebayes batch: interrupted; finished meta-analyses are in {args.output}/results "
            "and summary.csv; run the same command again to resume",
            file=sys.stderr,
        )
        return 130
    print(
        f"{len(result.tasks)} meta-analyses: {result.fitted} run, {result.skipped} up to date, "
        f"{result.failed} failed ({result.seconds:.1f} s); {result.output / 'summary.csv'}"
    )
    return 0
