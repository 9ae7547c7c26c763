"""One count of a trial table: its columns, its range, its parsing, and the table's error.

The lowest layer of :mod:`rebayes.data`: the trial-table loader and the review readers
(:mod:`rebayes.data.revman`, ...) both read counts with :func:`parse_count`, so a count is
refused with the same message whichever file it came from.
"""

from __future__ import annotations

import math
import re
from typing import Any

from rebayes.errors import RebayesError

__all__ = ["COUNT_COLUMNS", "MAX_COUNT", "DataError", "parse_count"]

COUNT_COLUMNS: tuple[str, ...] = ("events_treat", "n_treat", "events_control", "n_control")
#: Largest count accepted: beyond it a count is a typing error, and products of counts would
#: overflow 64-bit integers in the MH sums (10^9 x 10^9 < 2^63).
MAX_COUNT = 10**9


class DataError(RebayesError):
    """A trial table, a variant file or a dataset name is invalid (one-line message)."""


def parse_count(loc: str, name: str, raw: Any) -> int:
    """Parse one count exactly (no float on the way for whole numbers), or refuse it.

    Parameters
    ----------
    loc : str
        Where the value is, for the message (``trials.csv:7``).
    name : str
        The field (``events_treat``).
    raw : int or str
        The value; ``"12.0"`` is accepted (pandas writes an integer column that once held a
        missing value so).

    Returns
    -------
    int
        The count, from 0 to :data:`MAX_COUNT`.

    Raises
    ------
    DataError
        ``{loc}: {name}=... is not a whole number``, ``... is negative`` or ``... exceeds the
        largest count accepted (10^9)``.
    """
    if isinstance(raw, bool):
        raise DataError(f"{loc}: {name}={raw!r} is not a whole number")
    if isinstance(raw, int):
        value = raw
    else:
        text = str(raw).strip()
        if text == "":
            raise DataError(f"{loc}: {name} is empty")
        if re.fullmatch(r"[+-]?[0-9]+", text):
            if len(text.lstrip("+-").lstrip("0")) > 10:  # int() refuses over 4300 digits
                why = "is negative" if text.startswith("-") else (
                    "exceeds the largest count accepted (10^9)")
                raise DataError(f"{loc}: {name}={_shown(text)} {why}")
            value = int(text)
        else:
            # "12.0" is how pandas writes an integer column that once held a missing value.
            try:
                number = float(text)
            except ValueError:
                raise DataError(f"{loc}: {name}={text!r} is not a whole number") from None
            if not math.isfinite(number) or not number.is_integer():
                raise DataError(f"{loc}: {name}={text!r} is not a whole number") from None
            if abs(number) > MAX_COUNT:
                raise DataError(
                    f"{loc}: {name}={_shown(text)} exceeds the largest count accepted (10^9)"
                ) from None
            value = int(number)
    if value < 0:
        raise DataError(f"{loc}: {name}={value} is negative")
    if value > MAX_COUNT:
        raise DataError(f"{loc}: {name}={_shown(str(value))} exceeds the largest count accepted "
                        "(10^9)")
    return value


def _shown(text: str) -> str:
    """Return a number as typed, cut when long (thousands of digits still make one line)."""
    return text if len(text) <= 20 else f"{text[:12]}... ({len(text)} digits)"
