"""``rebayes priormap --data X``: P(benefit) over a grid of effect priors, per tau prior."""

from __future__ import annotations

import argparse
import time
from typing import Any

from rebayes.cli._common import add_engine_option
from rebayes.cli.cumulative import (
    add_tool_options,
    check_output,
    emit,
    fit_overall,
    overall_analysis,
)
from rebayes.errors import RebayesError

DESCRIPTION = """\
The prior-space map of the overall analysis (P(RR < 1) stands for P(benefit) when the dataset
declares no direction): P(benefit) and P(benefit beyond --threshold)
under every effect prior d ~ N(mean, SD) of a grid (prior means over ratios 1/3 to 3, SDs
0.05 to 2 on the model's effect scale, --grid points per axis), one map per heterogeneity
prior of the dataset's prior sets (or of --tau-priors). A few anchor priors are fitted in
full and each grid point is estimated by Pareto-smoothed importance reweighting of the
anchor with the smallest Pareto k, or refitted where every k is 0.7 or more. The named
priors and the analysis of credibility's sceptical (or advocacy) prior are marked.

With the exact engine (--engine auto, the default, or exact; analyses with one pooled effect)
every grid point is integrated by quadrature instead: no anchors, no reweighting, no Monte
Carlo error. The JSON's "engine" says which answered.
"""

EPILOG = """\
Examples:
  rebayes priormap --data tests/data/bcg
  rebayes priormap --data my/ --threshold 1.25 --output priormap.png
  rebayes priormap --data my/ --tau-priors weakly_informative turner_obstetric --json
"""


def register(subparsers: Any) -> None:
    """Add the ``priormap`` subcommand."""
    parser = subparsers.add_parser(
        "priormap",
        help="prior-space map: P(benefit) over a grid of effect-prior means and SDs",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_tool_options(parser)
    parser.add_argument("--threshold", type=float, default=1.1,
                        help="clinically important ratio above 1 (default 1.1): P(RR > t), "
                        "or P(RR < 1/t) when lower is better")
    parser.add_argument("--grid", type=int, default=20,
                        help="points per axis (default 20; the means get one more when even, "
                        "so that no effect is on the grid)")
    parser.add_argument("--tau-priors", nargs="+", default=None, metavar="NAME",
                        help="prior sets whose heterogeneity priors to map (default: every "
                        "distinct one of the dataset's sets)")
    add_engine_option(parser, "every grid point", default="auto")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``rebayes priormap``."""
    from rebayes.bayes.analyses import resolve_spec
    from rebayes.bayes.priors import resolve_priors
    from rebayes.store.fits import flush_cache
    from rebayes.tools.priormap import prior_map, prior_map_exact

    started = time.perf_counter()
    if args.threshold <= 1:
        raise RebayesError(f"--threshold {args.threshold:g}: give a ratio above 1 (e.g. 1.1)")
    if args.grid < 2:
        raise RebayesError(f"--grid {args.grid}: give at least 2 points per axis")
    output = check_output(args.output)
    spec = resolve_spec("overall", args.data, allow_scripts=args.allow_scripts)
    if args.tau_priors is not None:  # an unknown name is one line, before any fit
        resolve_priors(args.tau_priors, spec.prior_file)
    overall = overall_analysis(args, spec)
    if overall.exact:
        result = prior_map_exact(overall.design, overall.prior, args.tau_priors,
                                 grid=args.grid, threshold=args.threshold)
    else:
        result = prior_map(fit_overall(args, overall), args.tau_priors, grid=args.grid,
                           threshold=args.threshold)
        flush_cache()
    status = emit(result, args, output)
    if not args.json:
        print(f"wall time {time.perf_counter() - started:.1f} s (this command)")
    return status
