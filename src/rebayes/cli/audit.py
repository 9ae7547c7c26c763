"""``rebayes audit``: the published figures against their recomputation."""

from __future__ import annotations

import argparse
from pathlib import Path

from rebayes.audit.paper import audit, audit_markdown
from rebayes.cli._common import print_json, write_atomic
from rebayes.data.trials import load_dataset, variant_combinations
from rebayes.folders import check_writable


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``audit`` subcommand."""
    parser = subparsers.add_parser(
        "audit",
        help="check every published figure: reported vs recomputed, with a verdict",
        description=(
            "Recompute each figure in the dataset folder's reported.csv from the paper's own "
            "aggregates and from the trial table, try every data variant, and give a verdict: "
            "reproduced, differs (with the likely explanation) or not_recomputable. A folder "
            "written by 'rebayes import' holds every figure RevMan stored in the .rm5 file."
        ),
    )
    parser.add_argument(
        "--data", default=None, metavar="NAME|DIR",
        help="dataset: a shipped name or a folder holding trials.csv and reported.csv",
    )
    parser.add_argument("--variant", default=None, metavar="V", help="data variant to report")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument(
        "--output", type=Path, metavar="FILE", help="also write the markdown audit to FILE"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the audit and print it."""
    if args.output is not None:
        check_writable(args.output)
    rows = audit(args.data, args.variant)
    dataset = load_dataset(args.data)
    variant = args.variant or dataset.schema.default_variant
    citation = dataset.schema.citation.get("text", "")
    markdown = audit_markdown(
        rows, variant, citation, n_variants=len(variant_combinations(dataset)),
        schema=dataset.schema,
    )
    if args.output is not None:
        write_atomic(args.output, markdown)
    if args.json:
        print_json([row.to_dict() for row in rows])
    else:
        print(markdown, end="")
    return 0
