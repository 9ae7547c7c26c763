"""``rebayes absolute --data X [--risk 0.1 0.3]``: events per 1000, GRADE style."""

from __future__ import annotations

import argparse
from typing import Any

from rebayes.cli.cumulative import add_tool_options, check_output, emit, fit_overall

DESCRIPTION = """\
Absolute effects as in a GRADE summary-of-findings table (Guyatt et al. J Clin Epidemiol
2013;66:158-72): events per 1000 with control (assumed), with treatment and the difference,
each with its 95% credible interval, at the median observed control risk of the trials and at
any control risks given with --risk. Per posterior draw of the pooled log OR d of the
overall analysis under --prior: risk with treatment = expit(logit(p0) + d).
"""

EPILOG = """\
Examples:
  rebayes absolute --data tests/data/bcg
  rebayes absolute --data my/ --risk 0.1 0.3 --json
  rebayes absolute --data my/ --prior skeptical --output absolute.png
"""


def register(subparsers: Any) -> None:
    """Add the ``absolute`` subcommand."""
    parser = subparsers.add_parser(
        "absolute",
        help="absolute effects per 1000 at typical and given control risks (GRADE)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_tool_options(parser)
    parser.add_argument("--risk", type=float, nargs="+", default=[], metavar="P",
                        help="further control risks (proportions, e.g. 0.1 0.3)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``rebayes absolute``."""
    from rebayes.errors import RebayesError
    from rebayes.store.fits import flush_cache
    from rebayes.tools.absolute import absolute_effects

    output = check_output(args.output)
    for risk in args.risk:
        if not 0 < risk < 1:
            raise RebayesError(f"--risk {risk:g}: give a proportion strictly between 0 and 1")
    result = fit_overall(args)
    flush_cache()
    return emit(absolute_effects(result.tree, args.risk), args, output)
