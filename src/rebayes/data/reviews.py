"""Which reader a review file needs, and its import into dataset folders (one home).

Three formats carry a Cochrane review's analyses with the results RevMan stored:

- a RevMan 5 file (``.rm5``, XML): :func:`rebayes.data.revman.read_rm5`;
- a Cochrane data package (``.zip`` from RevMan Web, version 1 or 2):
  :func:`rebayes.data.cochrane_package.read_package`;
- RevMan 5's analyses export (``.csv`` with ``Comparison Number``, ``Outcome Number``,
  ``Subgroup Number``): :func:`rebayes.data.revman_csv.read_revman_csv`.

:func:`read_review` picks the reader by the file's name and first bytes; :func:`import_file`
writes one dataset folder per dichotomous analysis (``rebayes import``), and
:func:`review_spec` tells ``--data`` which names are such files (``review.zip:1.2``).
"""

from __future__ import annotations

import re
from pathlib import Path

from rebayes.data.cochrane_package import read_package
from rebayes.data.revman import ImportResult, Review, RevManError, import_review, read_rm5
from rebayes.data.revman_csv import is_revman_csv, read_revman_csv

__all__ = ["import_file", "read_review", "review_spec"]

_SPEC = re.compile(r"^(?P<path>.+\.(?:rm5|zip|csv)):(?P<number>\d+(?:\.\d+)*)$", re.IGNORECASE)


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".rm5", ".zip"):
        return suffix[1:]
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
    except OSError:
        head = b""
    if head.startswith(b"PK"):
        return "zip"
    if suffix == ".csv" and is_revman_csv(path):
        return "csv"
    return "rm5"  # the XML reader says what is wrong with anything else


def read_review(path: str | Path) -> Review:
    """Read a review from a ``.rm5`` file, a data package ``.zip`` or RevMan 5's CSV export.

    Raises
    ------
    RevManError
        No such file, or not one of the three formats (one line).
    """
    path = Path(path)
    if not path.is_file():
        raise RevManError(f"{path}: no such file")
    kind = _kind(path)
    if kind == "zip":
        return read_package(path)
    if kind == "csv":
        return read_revman_csv(path)
    if path.suffix.lower() == ".csv":
        raise RevManError(
            f"{path.name}: not a RevMan 5 analyses export (no 'Comparison Number' column); "
            f"a table of 2x2 counts is a dataset: rebayes init {path.name} DIR"
        )
    return read_rm5(path)


def import_file(path: str | Path, directory: str | Path) -> ImportResult:
    """Write one dataset folder per dichotomous analysis of a review file (any format)."""
    return import_review(read_review(path), directory)


def review_spec(text: str) -> tuple[Path, str] | None:
    """``(path, analysis number)`` when ``text`` names a review file (number ``""`` if none).

    ``review.rm5``, ``package.zip``, ``export.csv`` (RevMan's analyses export, not a trial
    table) and any of them with ``:1.2``; None for anything else (a dataset folder or name,
    a trial-table CSV).
    """
    match = _SPEC.match(text)
    if match:
        return Path(match["path"]), match["number"]
    path = Path(text)
    suffix = path.suffix.lower()
    if suffix in (".rm5", ".zip") or (suffix == ".csv" and path.is_file()
                                       and is_revman_csv(path)):
        return path, ""
    return None
