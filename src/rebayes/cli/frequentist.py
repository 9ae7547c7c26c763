"""``rebayes frequentist``: RevMan 5 analyses of a trial table."""

from __future__ import annotations

import argparse

from rebayes.cli._common import add_data_options, parse_where, print_json
from rebayes.data.trials import load_table
from rebayes.errors import RebayesError
from rebayes.frequentist.effects import EVENTS, MEASURES
from rebayes.frequentist.heterogeneity import TAU2_METHODS
from rebayes.frequentist.pooling import METHODS, MODELS, analyze


def _ci_level(text: str) -> float:
    """``--ci 99`` (percent) or ``--ci 0.99`` -> 0.99."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (e.g. 95)") from None
    level = value / 100 if value > 1 else value
    if not 0.5 <= level < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a confidence level in [50, 100)")
    return level


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``frequentist`` subcommand."""
    parser = subparsers.add_parser(
        "frequentist",
        help="RevMan 5 meta-analysis: MH/IV/Peto, RR/OR/RD, fixed/random, subgroups",
        description=(
            "Pool the trial table as Review Manager 5 would: Mantel-Haenszel (MH), inverse "
            "variance (IV) or Peto (PETO), fixed effect or DerSimonian-Laird random effects "
            "(Q centred on the MH estimate for 'M-H, Random', on the IV estimate for 'IV, "
            "Random'); --method DL is 'M-H, Random'. RevMan Web's random-effects options: "
            "--tau2 REML (or PM), --hksj (Hartung-Knapp-Sidik-Jonkman interval, t test), "
            "with a Q-profile CI for tau2 and a prediction interval (t on k-1 df) printed for "
            "every random-effects analysis. Defaults come from the dataset's dataset.toml "
            "(measure, method, model, tau2, hksj, ci_level). A trial's strata are summed "
            "unless the analysis splits or filters by the strata column. A control arm "
            "shared by two comparisons of one study (a multi-arm trial) is named; "
            "--split-shared-control divides it between them (Cochrane Handbook 23.3.4)."
        ),
    )
    add_data_options(parser)
    parser.add_argument("--by", metavar="COL", help="subgroups by column or covariate")
    parser.add_argument(
        "--where", action="append", metavar="COL=VALUE", help="filter rows first (repeatable)"
    )
    parser.add_argument(
        "--method", type=str.upper, choices=METHODS, help="default: the dataset's method"
    )
    parser.add_argument(
        "--model", type=str.lower, choices=MODELS, help="default: the dataset's model"
    )
    parser.add_argument(
        "--measure", type=str.upper, choices=MEASURES, help="default: the dataset's measure"
    )
    parser.add_argument(
        "--ci", type=_ci_level, metavar="LEVEL",
        help="confidence level in percent, e.g. 99 (default: the dataset's ci_level, 95)",
    )
    parser.add_argument(
        "--tau2", type=str.upper, choices=TAU2_METHODS, metavar="DL|REML|PM",
        help="random-effects estimator of tau2 (implies --model random; default: the "
        "dataset's tau2, DerSimonian-Laird)",
    )
    parser.add_argument(
        "--hksj", action="store_true", default=None,
        help="Hartung-Knapp-Sidik-Jonkman interval and t test for the random-effects "
        "estimate (implies --model random)",
    )
    parser.add_argument(
        "--split-shared-control", action="store_true",
        help="divide a multi-arm trial's shared control arm between its comparisons",
    )
    parser.add_argument(
        "--event", default="events", choices=EVENTS,
        help="count the events column (default) or its complement",
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the analysis and print it."""
    table = load_table(args.data, args.variant)
    if args.method == "DL" and args.model == "fixed":
        raise RebayesError("--method DL is 'M-H, Random': it takes no --model fixed")
    measure = args.measure
    if args.method == "PETO" and measure is None:
        measure = "PETO_OR"  # Peto's method has one measure
    model = args.model
    if args.tau2 is not None or args.hksj:
        if model == "fixed":
            raise RebayesError("--tau2 and --hksj belong to the random-effects model, "
                               "not --model fixed")
        model = "random"
    result = analyze(
        table.to_frame(),
        by=args.by,
        where=parse_where(args.where),
        method=args.method,
        measure=measure,
        event=args.event,
        model=model,
        ci_level=args.ci,
        tau2_method=args.tau2,
        hksj=args.hksj,
        split_shared_control=args.split_shared_control,
    )
    if args.json:
        payload = result.to_dict()
        payload["data"] = {
            "dataset": table.dataset,
            "variant": table.variant,
            "data_hash": table.data_hash,
        }
        print_json(payload)
    else:
        title = table.schema.title or table.dataset
        print(f"{title} ({table.variant}): {result}")
    return 0
