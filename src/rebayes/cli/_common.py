"""Options and output helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from rebayes.atomic import write_text_atomic as write_atomic
from rebayes.bayes.settings import ENGINES
from rebayes.errors import RebayesError
from rebayes.store.keys import dumps

__all__ = [
    "EXIT_GATE_FAILED",
    "add_data_option",
    "add_data_options",
    "add_direction_options", "add_scripts_option", "parse_where", "print_json", "write_atomic"]

#: Exit status of ``--strict`` (fit, compare, report) when a diagnostic gate fails.
EXIT_GATE_FAILED = 3


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--data`` and ``--variant``."""
    add_data_option(parser)
    parser.add_argument(
        "--variant",
        default=None,
        metavar="V",
        help="data variant from the dataset's variants.toml (default: the dataset's default); "
        "compose with '+'",
    )


def add_data_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--data NAME|DIR|CSV|RM5``."""
    parser.add_argument(
        "--data",
        default=None,
        metavar="NAME|DIR|CSV|RM5",
        help="a shipped dataset's name, a dataset folder (trials.csv + dataset.toml), a bare "
        "trial-table CSV (metafor's ai/n1i/ci/n2i and meta's event.e/n.e/... names are read "
        "too), or a review file: a RevMan 5 file, a Cochrane data package .zip or RevMan 5's "
        "CSV export (FILE:1.2 picks an analysis)",
    )


def add_scripts_option(parser: argparse.ArgumentParser) -> None:
    """Add ``--allow-scripts`` (run the dataset folder's untrusted model scripts)."""
    parser.add_argument(
        "--allow-scripts",
        action="store_true",
        help="run the dataset folder's models/*.py scripts this once, trusted or not (they "
        "run as you; `rebayes trust DIR` trusts them for good); without it an untrusted "
        "script is not run and its analysis is left out",
    )


def add_engine_option(parser: argparse.ArgumentParser, note: str = "",
                      default: str = "nuts") -> None:
    """Add ``--engine nuts|exact|auto`` (:mod:`rebayes.bayes.exact_fit`); ``note`` ends its help."""
    words = {"nuts": "nuts (PyMC's sampler)", "exact": "exact (quadrature: no Monte Carlo "
             "error, no PyMC; analyses with one pooled effect)",
             "auto": "auto (exact where it can, else nuts)"}
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default=default,
        help="what answers: " + ", ".join(
            words[e] + (", the default" if e == default else "") for e in ENGINES)
        + (f"; {note}" if note else ""),
    )


def auto_fallback() -> Callable[[str], None]:
    """Return ``--engine auto``'s ``on_fallback``: each reason NUTS answers, once, on stderr."""
    said: set[str] = set()

    def say(why: str) -> None:
        if why not in said:  # once, not once per prior set or variant
            said.add(why)
            print(f"--engine auto: NUTS answers ({why})", file=sys.stderr)

    return say


def print_json(payload: object) -> None:
    """Print JSON with a stable layout (sorted keys are not used: the order is meaningful)."""
    print(dumps(payload))


def parse_where(items: list[str] | None) -> dict[str, str]:
    """Parse repeated ``--where COL=VALUE`` options."""
    where: dict[str, str] = {}
    for item in items or []:
        column, sep, value = item.partition("=")
        if not sep or not column or not value:
            raise RebayesError(f"--where {item!r}: expected COLUMN=VALUE")
        where[column.strip()] = value.strip()
    return where


def add_direction_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--lower-is-better`` / ``--higher-is-better`` (override the dataset's direction)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--lower-is-better", dest="higher_is_better", action="store_false", default=None,
        help="fewer events is benefit (e.g. deaths); default: the dataset's declaration, "
        "else none (neutral words: P(RR < 1), P(RR > 1), no NNTB/NNTH)",
    )
    group.add_argument(
        "--higher-is-better", dest="higher_is_better", action="store_true", default=None,
        help="more events is benefit (e.g. cures)",
    )
