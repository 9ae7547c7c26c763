"""``rebayes cache``: where fits are cached, how much room they take, and clearing them."""

from __future__ import annotations

import argparse

from rebayes.cli._common import print_json
from rebayes.store.paths import cache_info, clear_cache, format_size


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``cache`` subcommand with its ``info`` and ``clear`` actions."""
    parser = subparsers.add_parser(
        "cache",
        help="show or clear the fit cache",
        description=(
            "Fits are cached as NetCDF files in $REBAYES_CACHE/fits, or in the user cache "
            "directory when REBAYES_CACHE is unset, compiled models in .../compiled and "
            "what is computed from a fit (summary, diagnostics, sensitivity) in "
            ".../summaries. 'info' shows where, how many and how large; 'clear' removes all "
            "three (only files rebayes wrote)."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    info = actions.add_parser("info", help="location, number of cached fits, total size")
    info.add_argument("--json", action="store_true", help="print JSON")
    info.set_defaults(func=run_info)
    clear = actions.add_parser("clear", help="remove every cached fit")
    clear.add_argument("--json", action="store_true", help="print JSON")
    clear.set_defaults(func=run_clear)


def run_info(args: argparse.Namespace) -> int:
    """Print where the fits are, how many and their total size."""
    info = cache_info()
    if args.json:
        print_json(info.to_dict())
        return 0
    print(f"location: {info.location}")
    print(f"fits: {info.fits}")
    print(f"size: {format_size(info.size_bytes)} ({info.size_bytes} bytes)")
    print(f"compiled models: {info.compiled} ({format_size(info.compiled_bytes)})")
    print(f"fit summaries: {info.summaries} ({format_size(info.summaries_bytes)})")
    return 0


def run_clear(args: argparse.Namespace) -> int:
    """Remove the cached fits and say how much room that freed."""
    removed = clear_cache()
    if args.json:
        print_json(removed.to_dict())
        return 0
    noun = "fit" if removed.fits == 1 else "fits"
    print(
        f"removed {removed.fits} cached {noun} from {removed.location} and "
        f"{removed.compiled} compiled models and {removed.summaries} fit summaries, freed "
        f"{format_size(removed.size_bytes + removed.compiled_bytes + removed.summaries_bytes)}"
    )
    return 0
