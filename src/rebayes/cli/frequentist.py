"""``rebayes frequentist``: RevMan 5.3 analyses of a trial table."""

from __future__ import annotations

import argparse

from rebayes.cli._common import add_data_options, parse_where, print_json
from rebayes.data import load_trials
from rebayes.frequentist import EVENTS, MEASURES, METHODS, analyze


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``frequentist`` subcommand."""
    parser = subparsers.add_parser(
        "frequentist",
        help="RevMan 5.3 meta-analysis: MH/IV/DL, RR/OR, subgroups, heterogeneity",
        description=(
            "Pool the trial table as Review Manager 5.3 would: Mantel-Haenszel (MH), "
            "inverse-variance fixed effect (IV) or DerSimonian-Laird random effects (DL; Q "
            "centred on the MH estimate, as RevMan's 'M-H, Random'). A trial's strata are summed "
            "unless the analysis splits or filters by stratum."
        ),
    )
    add_data_options(parser)
    parser.add_argument("--by", metavar="COL", help="subgroups by column (stratum, timing, ...)")
    parser.add_argument(
        "--where", action="append", metavar="COL=VALUE", help="filter rows first (repeatable)"
    )
    parser.add_argument("--method", default="MH", type=str.upper, choices=METHODS)
    parser.add_argument("--measure", default="RR", type=str.upper, choices=MEASURES)
    parser.add_argument(
        "--event", default="live", choices=EVENTS, help="count live births or their complement"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the analysis and print it."""
    trials = load_trials(args.data, args.variant)
    result = analyze(
        trials,
        by=args.by,
        where=parse_where(args.where),
        method=args.method,
        measure=args.measure,
        event=args.event,
    )
    if args.json:
        payload = result.to_dict()
        payload["data"] = {
            "dataset": trials.attrs["dataset"],
            "variant": trials.attrs["variant"],
            "data_hash": trials.attrs["data_hash"],
        }
        print_json(payload)
    else:
        print(f"{trials.attrs['dataset']} ({trials.attrs['variant']}): {result}")
    return 0
