"""``rebayes init CSV DIR``: a dataset folder to edit, from a bare CSV."""

from __future__ import annotations

import argparse
from typing import Any

from rebayes.cli._common import add_direction_options


def register(subparsers: Any) -> None:
    """Add the ``init`` subcommand."""
    parser = subparsers.add_parser(
        "init",
        help="make a dataset folder (trials.csv, commented dataset.toml) from a CSV",
        description="Validate CSV, copy it to DIR/trials.csv, and write DIR/dataset.toml (the "
        "direction of benefit, labels and each extra column's kind, guessed from its values, "
        "marked CHECK where you should look; commented [[analyses]] examples). The folder "
        "gets the default analyses: overall, one per declared covariate, and the normal "
        "approximation. DIR must not exist or be empty.",
    )
    parser.add_argument("csv", metavar="CSV")
    parser.add_argument("directory", metavar="DIR")
    add_direction_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Write the folder and list what was written."""
    from rebayes.data.scaffold import init_dataset

    files = init_dataset(args.csv, args.directory, args.higher_is_better)
    print(f"wrote {len(files)} files to {args.directory}/: edit dataset.toml (lines marked "
          f"CHECK), then: rebayes report --data {args.directory}")
    return 0
