"""``rebayes audit``: the paper's reported figures against their recomputation."""

from __future__ import annotations

import argparse
from pathlib import Path

from rebayes.atomic import check_writable
from rebayes.cli._common import print_json, write_atomic
from rebayes.data import load_dataset, variant_combinations
from rebayes.paper import audit, audit_markdown


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``audit`` subcommand."""
    parser = subparsers.add_parser(
        "audit",
        help="check every figure the paper reports: reported vs recomputed, with a verdict",
        description=(
            "Recompute each figure in data/<dataset>/reported.csv from the paper's own "
            "aggregates and from the trial table, try every data variant, and give a verdict: "
            "reproduced, differs (with the likely explanation) or not_recomputable."
        ),
    )
    parser.add_argument("--data", default="ivig_rsa", metavar="NAME|DIR", help="dataset")
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
    variant = args.variant or dataset.meta.get("default_variant", "published")
    citation = dataset.meta.get("citation", {}).get("text", "")
    markdown = audit_markdown(
        rows, variant, citation, n_variants=len(variant_combinations(dataset))
    )
    if args.output is not None:
        write_atomic(args.output, markdown)
    if args.json:
        print_json([row.to_dict() for row in rows])
    else:
        print(markdown, end="")
    return 0
