"""``rebayes report``: every analysis into ``reports/``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rebayes.cli._common import (
    EXIT_GATE_FAILED,
    add_data_option,
    add_direction_options,
    add_engine_option,
    add_scripts_option,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand."""
    parser = subparsers.add_parser(
        "report",
        help="run every analysis and write reports/ (markdown, HTML, PNG)",
        description="Run the audit (where the dataset has reported.csv) and every analysis; "
        "replace only the files a previous report wrote, and only "
        "when everything succeeded.",
    )
    parser.add_argument("--output", type=Path, default=Path("reports"), metavar="DIR",
                        help="output directory (default reports/); a non-empty directory must "
                        "hold a previous rebayes report")
    add_data_option(parser)
    add_direction_options(parser)
    add_scripts_option(parser)
    parser.add_argument(
        "--models", type=Path, default=None, metavar="DIR",
        help="run these model scripts instead of the dataset's analyses (default: the "
        "default and declared analyses and the folder's trusted scripts)",
    )
    parser.add_argument("--prior", nargs="+", default=None, metavar="NAME",
                        help="prior sets (default: every built-in set)")
    add_engine_option(parser, "per analysis and prior set, the influence refits too; every "
                      "page says which answered", default="auto")
    parser.add_argument(
        "--allow-divergences", action="store_true",
        help="exit 0 even when a fit still diverged (its page marks it UNRELIABLE either way)",
    )
    parser.add_argument(
        "--strict", action="store_true",
        help="exit with status 3 when any diagnostic gate fails (the report is still written)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the report and list what was written."""
    from rebayes.bayes.compilation import start_compiler

    start_compiler()  # before the report's own imports: see its docstring
    from rebayes.report.build import build_report, model_scripts

    scripts = model_scripts(args.models) if args.models else None
    built = build_report(args.output, args.data, scripts=scripts, priors=args.prior,
                         higher_is_better=args.higher_is_better,
                         allow_scripts=args.allow_scripts, engine=args.engine)
    print(f"wrote {len(built.files)} files to {args.output}/ (open {args.output}/index.html)")
    for failure in built.gate_failures:
        print(f"diagnostic gate failed: {failure}", file=sys.stderr)
    for line in built.unreliable:
        print(f"unreliable fit: {line}", file=sys.stderr)
    if args.strict and not built.ok:
        return EXIT_GATE_FAILED
    if built.unreliable and not args.allow_divergences:
        return EXIT_GATE_FAILED
    return 0
