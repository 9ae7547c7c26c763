"""JSON as rebayes writes it: standard (no NaN), stable, and hashable.

One home for the three things every JSON output needs: :func:`plain` turns numpy scalars into
Python numbers and NaN or infinities into ``null`` (standard JSON has no NaN), :func:`dumps`
writes the result (UTF-8 text, order kept: the order of a record is meaningful), and
:func:`stable_hash` keys caches and batch records by their content.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import numpy as np

__all__ = ["dumps", "plain", "stable_hash"]


def plain(value: Any) -> Any:
    """Return ``value`` with numpy scalars as Python ones and NaN/infinities as None.

    Dicts, lists and tuples are converted recursively (tuples become lists).

    Examples
    --------
    >>> plain({"a": np.float64("nan"), "b": [np.int64(2), 0.5]})
    {'a': None, 'b': [2, 0.5]}
    """
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value


def dumps(payload: Any, indent: int | None = 2) -> str:
    """Return standard JSON text of ``payload`` (after :func:`plain`), keys in given order."""
    return json.dumps(plain(payload), indent=indent, ensure_ascii=False, allow_nan=False)


def stable_hash(payload: Any, length: int = 32) -> str:
    """SHA-256 (hex, first ``length`` characters) of ``payload`` as sorted-key JSON.

    Values JSON cannot hold (paths, dates) enter by their ``str``.
    """
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]
