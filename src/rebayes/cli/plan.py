"""``rebayes plan --data X --n 50 100 200 400 800``: what the next trial would probably do."""

from __future__ import annotations

import argparse
from typing import Any

from rebayes.cli._common import add_engine_option
from rebayes.cli.cumulative import (
    add_tool_options,
    check_output,
    emit,
    fit_overall,
    overall_analysis,
    sampler,
)
from rebayes.errors import RebayesError

DESCRIPTION = """\
Simulate a new two-arm trial of each size (participants per arm) from the posterior
predictive distribution of the overall analysis (its true effect d + tau * eps, its control
risk one of the trials' observed control risks between 0 and 1), update the meta-analysis
with it, and print the probability that
  - the updated meta-analysis is conclusive either way: P(benefit) > 0.95 or P(harm) > 0.95
    (each side shown; where the evidence leans to harm, harm is what a trial would settle;
    P(RR < 1) and P(RR > 1) when the dataset declares no direction of benefit),
  - the new trial alone is significant at 5% (two-sided; and in the direction of benefit),
  - the updated meta-analysis rules out a benefit beyond --threshold (futility),
with the smallest size reaching 80% (Sutton et al. Stat Med 2007;26:2479-500). Seeded.

The update: with the exact engine (--engine auto, the default, or exact) the whole posterior
of (d, tau) is updated with each simulated trial by quadrature, the trials simulated from the
exact posterior's draws; with --engine nuts, from NUTS draws, by a normal approximation of the
pooled log OR with tau fixed at its posterior median. The JSON's "engine" says which.
"""

EPILOG = """\
Examples:
  rebayes plan --data tests/data/bcg --n 50 100 200 400 800
  rebayes plan --data my/ --n 100 300 1000 --sims 10000 --output plan.png
  rebayes plan --data my/ --prior skeptical --threshold 1.25 --json
"""


def register(subparsers: Any) -> None:
    """Add the ``plan`` subcommand."""
    parser = subparsers.add_parser(
        "plan",
        help="the next trial: probability of an update conclusive either way, by trial size",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_tool_options(parser)
    parser.add_argument("--n", type=int, nargs="+", default=[50, 100, 200, 400, 800],
                        metavar="N", help="participants per arm (default 50 100 200 400 800)")
    parser.add_argument("--sims", type=int, default=4000,
                        help="simulated trials per size (default 4000); the stated Monte "
                             "Carlo SE also counts the posterior draws' own error, which more "
                             "simulations do not reduce")
    parser.add_argument("--threshold", type=float, default=1.1,
                        help="futility: rule out benefit beyond this RR (default 1.1)")
    add_engine_option(parser, "the update of the meta-analysis", default="auto")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``rebayes plan``."""
    from rebayes.store.fits import flush_cache
    from rebayes.tools.planning import plan_next_trial, plan_next_trial_exact

    output = check_output(args.output)
    if args.threshold <= 1:
        raise RebayesError(f"--threshold {args.threshold:g}: give a ratio above 1 (e.g. 1.1)")
    sampler(args)  # --seed checked before any work
    overall = overall_analysis(args)
    if overall.exact:
        plan = plan_next_trial_exact(overall.design, overall.prior, args.n,
                                     threshold=args.threshold, n_sim=args.sims, seed=args.seed)
        return emit(plan, args, output)
    result = fit_overall(args, overall)
    flush_cache()
    plan = plan_next_trial(result.tree, args.n, threshold=args.threshold, n_sim=args.sims,
                           seed=args.seed)
    return emit(plan, args, output)
