"""``rebayes bias --data X``: is the evidence distorted? Small-study effects, publication bias."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rebayes.cli._common import add_data_options, add_direction_options, print_json

DESCRIPTION = """\
Ask whether what was pooled is distorted, as a reviewer of a meta-analysis asks first: the
funnel plot (contour-enhanced, with trim-and-fill's imputed studies), Egger's regression test
(weighted lm and the REML mixed-effects version), Peters' test (1/n), Harbord's score test
(log OR), Begg's rank correlation, trim-and-fill (L0 and R0, DerSimonian-Laird) and the
three-parameter step-function selection model, as metafor and meta compute them; then the
robust Bayesian model average over effect (absent/present) x heterogeneity (fixed/random) x
publication bias (none, PET, PEESE, one-sided selection at p = 0.025, 0.05, 0.5), with
Bartoš et al.'s (2023) empirical Cochrane priors for the measure and --subfield: posterior
model probabilities, inclusion Bayes factors and the model-averaged effect. With fewer than
10 studies the tests are too weak to rule asymmetry out, and the output says so.
"""

EPILOG = """\
Examples:
  rebayes bias --data tests/data/magnesium
  rebayes bias --data tests/data/bcg --json
  rebayes bias --data my/ --measure OR --subfield "Acute Respiratory Infections" --output bias/
"""


def register(subparsers: Any) -> None:
    """Add the ``bias`` subcommand."""
    parser = subparsers.add_parser(
        "bias",
        help="is the evidence distorted? funnel plot, small-study tests, trim-and-fill, "
             "selection model, robust Bayesian model averaging",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_data_options(parser)
    add_direction_options(parser)
    parser.add_argument("--measure", type=str.upper, choices=("RR", "OR"), default=None,
                        help="the log ratio analysed (default: the dataset's measure if RR or "
                             "OR, else OR)")
    parser.add_argument("--subfield", default="Cochrane", metavar="NAME",
                        help="Cochrane review group of Bartoš et al.'s priors (default "
                             "Cochrane: the whole database)")
    parser.add_argument("--effect-prior", choices=("bartos", "van_zwet"), default="bartos",
                        help="effect prior of the model average: Bartoš et al.'s Student-t "
                             "(default) or van Zwet et al.'s signal-to-noise mixture")
    parser.add_argument("--no-bayes", action="store_true",
                        help="the frequentist methods only (no model averaging)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--output", metavar="DIR", default=None,
                        help="write DIR/funnel.png and DIR/bias.md (other files are left "
                             "alone; nothing is written without it)")
    parser.set_defaults(func=run)


def _check_output(output: str | None) -> Path | None:
    """Check ``--output DIR`` before any work: a directory (made if missing), writable."""
    if output is None:
        return None
    from rebayes.folders import check_writable_folder

    path = Path(output)
    check_writable_folder(path)
    return path


def run(args: argparse.Namespace) -> int:
    """Run ``rebayes bias``."""
    from rebayes.atomic import atomic_path, write_text_atomic
    from rebayes.data.trials import load_table
    from rebayes.tools.bias import bias_analysis

    output = _check_output(args.output)
    table = load_table(args.data, args.variant)
    result = bias_analysis(table.to_frame(), args.measure, bayesian=not args.no_bayes,
                           subfield=args.subfield, effect_prior=args.effect_prior,
                           higher_is_better=args.higher_is_better)
    if output is not None:
        fig = result.plot()
        with atomic_path(output / "funnel.png") as tmp:
            fig.savefig(tmp, format="png", dpi=150)
        write_text_atomic(output / "bias.md", result.markdown("funnel.png"))
    if args.json:
        payload = result.to_dict()
        payload["data"] = {
            "dataset": table.dataset,
            "variant": table.variant,
            "data_hash": table.data_hash,
        }
        print_json(payload)
    else:
        print(result)
        if output is not None:
            print(f"written: {output / 'funnel.png'}, {output / 'bias.md'}")
    return 0
