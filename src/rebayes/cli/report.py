"""``rebayes report``: every analysis into ``reports/``."""

from __future__ import annotations

import argparse
from pathlib import Path

from rebayes.report import build_report


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` subcommand."""
    parser = subparsers.add_parser(
        "report",
        help="run every analysis and write reports/ (markdown, HTML, PNG)",
        description="Run the audit and every analysis; replace the output directory only "
        "when everything succeeded.",
    )
    parser.add_argument("--output", type=Path, default=Path("reports"), metavar="DIR")
    parser.add_argument("--data", default="ivig_rsa", metavar="NAME|DIR")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Build the report and list what was written."""
    for path in build_report(args.output, args.data):
        print(path)
    return 0
