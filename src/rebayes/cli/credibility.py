"""``rebayes credibility --data X``: the analysis of credibility (reverse-Bayes) of the result."""

from __future__ import annotations

import argparse
from typing import Any

from rebayes.cli._common import add_data_options, add_direction_options
from rebayes.cli.cumulative import check_output, emit

DESCRIPTION = """\
Matthews' Analysis of Credibility (R Soc Open Sci 2018;5:171047) of the published
(RevMan) meta-analysis: its 95% confidence interval, as dataset.toml declares the analysis
(measure, method, model), on the log scale with a normal approximation. For an interval that
excludes 1 (benefit or harm), the sceptical limit SL: a sceptic whose prior puts 95% of its
mass on ratios between 1/SL and SL is not convinced. For one that includes 1, the advocacy
limit AL on the side the estimate leans to: the prior evidence (ratios between 1 and AL)
needed for the data to show an effect there. Limits beyond any plausible ratio (above 10)
are said in words. Both intrinsic-credibility criteria are given, Matthews' (p < 0.013) and
Held's (2019; p < 0.0056), and whether they disagree.

The method is applied to the frequentist interval only, as Matthews and Held intend: a
Bayesian credible interval already holds a prior, which a reverse-Bayes prior would count
twice. No fit is needed.
"""

EPILOG = """\
Examples:
  rebayes credibility --data tests/data/bcg
  rebayes credibility --data my/ --json
  rebayes credibility --data my/ --output credibility.png
"""


def register(subparsers: Any) -> None:
    """Add the ``credibility`` subcommand."""
    parser = subparsers.add_parser(
        "credibility",
        help="analysis of credibility: the sceptical (or advocacy) limit of the RevMan CI",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_data_options(parser)
    add_direction_options(parser)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--output", metavar="FILE.png", default=None,
                        help="write the figure there (nothing is written without it)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``rebayes credibility``."""
    from rebayes.data.trials import load_table
    from rebayes.tools.credibility import dataset_credibility

    output = check_output(args.output)
    table = load_table(args.data, args.variant)
    direction = table.schema.with_direction(args.higher_is_better).direction
    return emit(dataset_credibility(table.to_frame(), direction), args, output)
