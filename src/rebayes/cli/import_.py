"""``rebayes import``: one dataset folder per dichotomous analysis of a review file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rebayes.data.reviews import import_file


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``import`` subcommand."""
    parser = subparsers.add_parser(
        "import",
        help="RevMan 5 file, Cochrane data package or RevMan CSV export -> one dataset "
        "folder per dichotomous analysis",
        description=(
            "Read a review and write DIR/<comparison>.<outcome>/ for each dichotomous "
            "analysis: trials.csv (RevMan's subgroups as the column 'subgroup', risk-of-bias "
            "judgements as rob_* columns), dataset.toml (measure, method, model, tau2 and "
            "HKSJ, CI level, group labels, and the direction of benefit where RevMan's graph "
            "labels are standard ones: 'Favours experimental' on the left means fewer events "
            "is better; sensitivity analyses), variants.toml (studies at low risk of bias) and "
            "reported.csv (every result RevMan stored, for 'rebayes audit --data DIR/1.1'). "
            "REVIEW is a RevMan 5 file (.rm5), a Cochrane data package (.zip from RevMan "
            "Web, version 1 or 2) or RevMan 5's analyses export (.csv). Other outcome types "
            "are skipped with a note. Folder names come from RevMan's numbers only (a file "
            "whose numbers are not numbers, or that numbers two analyses alike, is refused). "
            "A folder a previous import wrote is replaced when it holds nothing else; any "
            "other non-empty folder is refused, and nothing is written."
        ),
    )
    parser.add_argument("review", type=Path, metavar="REVIEW",
                        help="a .rm5 file, a data package .zip or a RevMan 5 .csv export")
    parser.add_argument("directory", type=Path, metavar="DIR", help="where to write folders")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Import the review, list the folders written and print the notes on stderr."""
    result = import_file(args.review, args.directory)
    for note in result.notes:
        print(f"rebayes import: note: {note}", file=sys.stderr)
    for folder in result.folders:
        print(folder)
    return 0
