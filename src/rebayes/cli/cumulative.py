"""``rebayes cumulative --data X [--order-by year]``: the pooled answer as trials arrived.

Also holds the options and output helpers the decision-tool commands share (``cumulative``,
``credibility``, ``plan``): ``--data``, ``--prior``, ``--seed``, ``--draws``, ``--json`` and
``--output FILE.png`` (written atomically; nothing is written without it).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rebayes.cli._common import (
    add_data_option,
    add_engine_option,
    add_scripts_option,
    auto_fallback,
    print_json,
)
from rebayes.errors import RebayesError
from rebayes.folders import check_writable
from rebayes.frequentist.effects import MEASURES
from rebayes.frequentist.pooling import MODELS

DESCRIPTION = """\
Add the trials one at a time in order of a numeric column (year of publication by default,
ties in table order) or of a declared covariate's levels, and after each addition, from the
second trial on, refit the Bayesian analysis (the compiled model is reused) and recompute
RevMan's pooled estimate with the dataset's measure, method and model (--measure, --method,
--model choose others). A trial is a row unless the dataset declares strata: trials that
share a first author enter each in its own year. Prints, per step, the pooled RR with its 95%
credible interval, P(benefit) in the dataset's direction (P(RR < 1) when it declares none),
and RevMan's estimate with its 95% CI; then when the probability first passed 0.95, every
later step at which it fell back below or rose above again, and whether it holds at the last
step, which is the full analysis.
"""

EPILOG = """\
Examples:
  rebayes cumulative --data tests/data/bcg
  rebayes cumulative --data tests/data/magnesium --measure RR --model random
  rebayes cumulative --data tests/data/bcg --order-by year --output cumulative.png
  rebayes cumulative --data my/ --prior skeptical --json
"""


def add_tool_options(parser: argparse.ArgumentParser) -> None:
    """Add the options the decision tools share.

    ``--data``, ``--allow-scripts``, ``--prior``, ``--seed``, ``--draws``, ``--json`` and
    ``--output``.
    """
    add_data_option(parser)
    add_scripts_option(parser)
    parser.add_argument("--prior", default="weakly_informative", metavar="NAME",
                        help="prior set (default weakly_informative)")
    parser.add_argument("--seed", type=int, default=None,
                        help="sampler seed (default: the analysis's)")
    parser.add_argument("--draws", type=int, default=1000,
                        help="draws per chain, 4 chains (default 1000)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--output", metavar="FILE.png", default=None,
                        help="write the figure there (nothing is written without it)")


def check_output(output: str | None) -> Path | None:
    """Check ``--output`` before any work is done: a .png path, or None."""
    if output is None:
        return None
    path = Path(output)
    if path.suffix.lower() != ".png":
        raise RebayesError(f"--output {output}: give a .png file name")
    if path.is_dir():
        raise RebayesError(f"--output {output}: is a directory")
    check_writable(path)
    return path


def sampler(args: argparse.Namespace) -> Any:
    """Return the :class:`rebayes.bayes.settings.SamplerSettings` of ``--draws``."""
    from rebayes.bayes.settings import SamplerSettings

    if args.seed is not None and args.seed < 0:
        raise RebayesError(f"--seed {args.seed} must be a non-negative integer")
    return SamplerSettings(draws=args.draws)


@dataclass(frozen=True)
class Overall:
    """The dataset's overall analysis as a tool command uses it (:func:`overall_analysis`)."""

    spec: Any
    design: Any
    prior: Any
    exact: bool  # whether the exact engine answers it (``--engine``)


def overall_analysis(args: argparse.Namespace, spec: Any = None) -> Overall:
    """Build the overall analysis of ``--data`` under ``--prior`` and decide its ``--engine``.

    ``spec``: the overall analysis when the caller has resolved it already.
    """
    from rebayes.bayes.analyses import resolve_spec
    from rebayes.bayes.design import build_design
    from rebayes.bayes.exact_fit import exact_answers
    from rebayes.bayes.priors import get_prior, load_prior_file

    if spec is None:
        spec = resolve_spec("overall", args.data, allow_scripts=args.allow_scripts)
    design = build_design(spec)
    prior = get_prior(args.prior, load_prior_file(spec.prior_file) if spec.prior_file else None)
    return Overall(spec, design, prior,
                   exact_answers(design, [prior], args.engine, auto_fallback()))


def fit_overall(args: argparse.Namespace, overall: Overall | None = None) -> Any:
    """Fit the dataset's overall analysis under ``--prior`` by NUTS; return the Fit.

    ``overall``: its design already built (:func:`overall_analysis`), so the table is not
    loaded again.
    """
    from rebayes.bayes.analyses import resolve_spec
    from rebayes.bayes.fit import fit

    if overall is not None:
        return fit(overall.spec, overall.prior, seed=args.seed, settings=sampler(args),
                   design=overall.design)
    spec = resolve_spec("overall", args.data, allow_scripts=args.allow_scripts)
    return fit(spec, args.prior, seed=args.seed, settings=sampler(args))


def emit(result: Any, args: argparse.Namespace, output: Path | None) -> int:
    """Print ``result`` (table or JSON) and write its figure to ``output`` if given."""
    if output is not None:
        from rebayes.atomic import atomic_path

        fig = result.plot()
        with atomic_path(output) as tmp:
            fig.savefig(tmp, format="png", dpi=150)
    if args.json:
        print_json(result.to_dict())
    else:
        print(result)
        if output is not None:
            print(f"figure: {output}")
    return 0


def register(subparsers: Any) -> None:
    """Add the ``cumulative`` subcommand."""
    parser = subparsers.add_parser(
        "cumulative",
        help="cumulative meta-analysis: the pooled answer after each trial, by year",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_tool_options(parser)
    parser.add_argument("--order-by", default="year", metavar="COLUMN",
                        help="numeric column or declared ordered covariate (default year)")
    parser.add_argument("--measure", type=str.upper, choices=MEASURES,
                        help="RevMan's measure for the frequentist column (default: the "
                        "dataset's)")
    parser.add_argument("--method", type=str.upper, choices=("MH", "IV", "PETO"),
                        help="RevMan's method (default: the dataset's)")
    parser.add_argument("--model", type=str.lower, choices=MODELS,
                        help="fixed or random effects (default: the dataset's)")
    add_engine_option(parser, "for every step")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``rebayes cumulative``."""
    from rebayes.bayes.analyses import resolve_spec
    from rebayes.data.trials import load_table
    from rebayes.tools.cumulative import cumulative_meta_analysis

    output = check_output(args.output)
    spec = resolve_spec("overall", args.data, allow_scripts=args.allow_scripts)
    trials = load_table(spec.data, spec.variant)
    result = cumulative_meta_analysis(trials, spec, args.prior, args.order_by,
                                      settings=sampler(args), seed=args.seed,
                                      method=args.method, model=args.model,
                                      measure=args.measure, engine=args.engine)
    if result.engine == "nuts":
        from rebayes.store.fits import flush_cache

        flush_cache()
    return emit(result, args, output)
