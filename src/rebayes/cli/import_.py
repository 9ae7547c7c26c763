"""``rebayes import``: one dataset folder per dichotomous outcome of a RevMan 5 file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rebayes.frequentist.revman import import_rm5


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``import`` subcommand."""
    parser = subparsers.add_parser(
        "import",
        help="RevMan 5 file (.rm5) -> one dataset folder per dichotomous outcome",
        description=(
            "Read a RevMan 5 review and write DIR/<comparison>.<outcome>/ for each dichotomous "
            "outcome: trials.csv (RevMan's subgroups as the column 'subgroup'), dataset.toml "
            "(measure, method, model, CI level, group labels, and the direction of benefit "
            "where RevMan's graph labels are its standard ones: 'Favours experimental' on the "
            "left means fewer events is better) and reported.csv (every result "
            "RevMan stored, for 'rebayes audit --data DIR/1.1'). Other outcome types are "
            "skipped with a note. A folder a previous import wrote is replaced; any other "
            "non-empty folder is refused, and nothing is written."
        ),
    )
    parser.add_argument("review", type=Path, metavar="REVIEW.rm5", help="RevMan 5 file")
    parser.add_argument("directory", type=Path, metavar="DIR", help="where to write folders")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Import the review, list the folders written and print the notes on stderr."""
    result = import_rm5(args.review, args.directory)
    for note in result.notes:
        print(f"rebayes import: note: {note}", file=sys.stderr)
    for folder in result.folders:
        print(folder)
    return 0
