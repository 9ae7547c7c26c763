"""``rebayes trust DIR``: let a dataset folder's model scripts run, as they are now."""

from __future__ import annotations

import argparse
from typing import Any

from rebayes.errors import RebayesError

DESCRIPTION = """\
A dataset folder's models/*.py scripts are Python: they run as you. rebayes runs them only
for the shipped datasets, with --allow-scripts (that command only), or after this command has
recorded each script's SHA-256 for the folder. A script that changes afterwards, or a new
one, is not trusted until you run rebayes trust DIR again. Read the scripts first.

Without trust, a command leaves the scripts' analyses out and says so in one line; the
default analyses and those declared in dataset.toml ([[analyses]]) need no trust.
"""

EPILOG = """\
Examples:
  rebayes trust my/                  trust my/models/*.py as they are now
  rebayes trust --list               trusted folders, and which scripts changed since
  rebayes trust --revoke my/         forget my/
"""


def register(subparsers: Any) -> None:
    """Add the ``trust`` subcommand."""
    parser = subparsers.add_parser(
        "trust",
        help="let a dataset folder's model scripts (models/*.py) run, as they are now",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("directory", nargs="?", metavar="DIR", help="a dataset folder")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--list", action="store_true", help="list the trusted folders")
    which.add_argument("--revoke", action="store_true", help="forget the trust given to DIR")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Trust, revoke or list."""
    from rebayes.data.trust import revoke, trust_file, trust_folder, trusted_folders

    if args.list:
        if args.directory is not None:
            raise RebayesError("--list takes no DIR")
        folders = trusted_folders()
        if not folders:
            print(f"no trusted folders ({trust_file()})")
        for folder, scripts in folders.items():
            states = ", ".join(f"{name} ({state})" for name, state in scripts.items())
            print(f"{folder}: {states}")
        return 0
    if args.directory is None:
        raise RebayesError("give a dataset folder: rebayes trust DIR (or --list)")
    if args.revoke:
        revoke(args.directory)
        print(f"{args.directory}: its model scripts no longer run without --allow-scripts")
        return 0
    trusted = trust_folder(args.directory)
    print(
        f"trusted {len(trusted)} model script{'s' if len(trusted) != 1 else ''} of "
        f"{args.directory}: {', '.join(p.name for p in trusted)} (recorded in {trust_file()}; "
        "a script that changes needs rebayes trust again)"
    )
    return 0
