"""``rebayes credibility --data X``: the analysis of credibility (reverse-Bayes) of the result."""

from __future__ import annotations

import argparse
from typing import Any

from rebayes.cli.cumulative import add_tool_options, check_output, emit, fit_overall

DESCRIPTION = """\
Matthews' Analysis of Credibility (R Soc Open Sci 2018;5:171047) of the pooled risk ratio:
for a 95% interval that excludes 1, the sceptical limit SL -- a sceptic whose prior puts 95%
of its mass on RRs between 1/SL and SL is not convinced by the data; for one that includes 1,
the advocacy limit AL -- the prior evidence (RRs between 1 and AL) needed for the data to
show an effect. Computed from the Bayesian posterior's 95% CrI of the pooled RR (the
overall analysis under --prior) and from RevMan's M-H 95% CI, on the log scale with a normal
approximation; also Held's (2019) intrinsic-credibility p value.
"""

EPILOG = """\
Examples:
  rebayes credibility --data tests/data/bcg
  rebayes credibility --data my/ --prior skeptical --json
  rebayes credibility --data my/ --output credibility.png
"""


def register(subparsers: Any) -> None:
    """Add the ``credibility`` subcommand."""
    parser = subparsers.add_parser(
        "credibility",
        help="analysis of credibility: the sceptical (or advocacy) limit of the result",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_tool_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``rebayes credibility``."""
    from rebayes.bayes.sampling import flush_cache
    from rebayes.data.trials import load_trials
    from rebayes.frequentist.pooling import analyze
    from rebayes.tools.credibility import credibility

    output = check_output(args.output)
    result = fit_overall(args)
    flush_cache()
    trials = load_trials(result.spec.data, result.spec.variant)
    revman = analyze(trials, method="MH", measure="RR").overall
    return emit(credibility(result.summary(), revman), args, output)
