"""Options and output helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from rebayes.errors import RebayesError


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


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same directory and a rename.

    A failure leaves any previous file untouched and no partial file behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def parse_where(items: list[str] | None) -> dict[str, str]:
    """Parse repeated ``--where COL=VALUE`` options."""
    where: dict[str, str] = {}
    for item in items or []:
        column, sep, value = item.partition("=")
        if not sep or not column or not value:
            raise RebayesError(f"--where {item!r}: expected COLUMN=VALUE")
        where[column.strip()] = value.strip()
    return where
