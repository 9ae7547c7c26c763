"""Options and output helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import json

from rebayes.atomic import write_text_atomic as write_atomic
from rebayes.errors import RebayesError

__all__ = ["EXIT_GATE_FAILED", "add_data_options", "parse_where", "print_json", "write_atomic"]

#: Exit status of ``--strict`` (fit, compare, report) when a diagnostic gate fails.
EXIT_GATE_FAILED = 3


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--data`` and ``--variant``."""
    parser.add_argument(
        "--data",
        default="ivig_rsa",
        metavar="NAME|PATH",
        help="dataset name (default: ivig_rsa) or path to a trial-table CSV",
    )
    parser.add_argument(
        "--variant",
        default=None,
        metavar="V",
        help="data variant: published (default), seed_fit, itt, ...; compose with '+'",
    )


def print_json(payload: object) -> None:
    """Print JSON with a stable layout (sorted keys are not used: the order is meaningful)."""
    print(json.dumps(payload, indent=2, ensure_ascii=False, allow_nan=False))


def parse_where(items: list[str] | None) -> dict[str, str]:
    """Parse repeated ``--where COL=VALUE`` options."""
    where: dict[str, str] = {}
    for item in items or []:
        column, sep, value = item.partition("=")
        if not sep or not column or not value:
            raise RebayesError(f"--where {item!r}: expected COLUMN=VALUE")
        where[column.strip()] = value.strip()
    return where
