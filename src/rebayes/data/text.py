r"""What text a dataset's files may hold, and the sign of a CSV that is not comma-separated.

A downloaded table can hide characters that change what a reader sees: a NUL ends a string
in some tools, and a Unicode bidirectional override (U+202A-U+202E) or isolate
(U+2066-U+2069) makes ``A\u202eB`` display as something else. Names, labels and every other
text field of ``trials.csv``, ``reported.csv``, ``dataset.toml`` and ``variants.toml`` may
hold none of them, nor any other C0 or C1 control character (a TOML text may still hold tabs
and line breaks: notes and descriptions span lines).

A CSV written by a spreadsheet with a semicolon or tab as separator reads as one column per
line; :func:`separator_message` names that instead of the missing columns it causes.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "forbidden_character",
    "forbidden_field",
    "forbidden_toml_text",
    "separator_message",
    "toml_line",
    "toml_texts",
]

# Unicode's explicit directional formatting characters: embeddings and overrides
# (U+202A-U+202E) and isolates (U+2066-U+2069).
_BIDI = frozenset(range(0x202A, 0x202F)) | frozenset(range(0x2066, 0x206A))
_LAYOUT = frozenset("\t\n\r")


def forbidden_character(text: str, layout: bool = False) -> str | None:
    r"""Describe the first character ``text`` may not hold, or return None.

    Parameters
    ----------
    text : str
    layout : bool
        Whether tabs and line breaks are allowed (in a TOML text, not in a CSV field).

    Returns
    -------
    str or None
        ``"a control character (U+0000)"`` or ``"U+202E RIGHT-TO-LEFT OVERRIDE (it reorders
        the text as displayed)"``.

    Examples
    --------
    >>> forbidden_character("Smith\u202e 2001")
    'U+202E RIGHT-TO-LEFT OVERRIDE (it reorders the text as displayed)'
    >>> forbidden_character("Smith 2001") is None
    True
    """
    for char in text:
        code = ord(char)
        if code in _BIDI:
            return f"U+{code:04X} {unicodedata.name(char)} (it reorders the text as displayed)"
        if (code < 0x20 or 0x7F <= code <= 0x9F) and not (layout and char in _LAYOUT):
            return f"a control character (U+{code:04X})"
    return None


def forbidden_field(fields: Mapping[str, str]) -> str | None:
    """Return ``"FIELD contains ..."`` for the first field holding a forbidden character.

    Parameters
    ----------
    fields : mapping of str to str
        A CSV row (column -> text); tabs and line breaks are forbidden too.

    Returns
    -------
    str or None
        None when every field is clean.
    """
    for name, value in fields.items():
        found = forbidden_character(value)
        if found:
            return f"{name} contains {found}"
    return None


def separator_message(header: list[str]) -> str | None:
    """Say which separator a one-column CSV header seems to use (None: commas).

    Parameters
    ----------
    header : list of str
        The first row as :mod:`csv` read it with commas.

    Returns
    -------
    str or None
        ``"looks semicolon-separated (rebayes reads comma-separated CSV)"`` (or tab-).
    """
    if len(header) != 1:
        return None
    counts = {"semicolon": header[0].count(";"), "tab": header[0].count("\t")}
    name, count = max(counts.items(), key=lambda item: item[1])
    if not count:
        return None
    return f"looks {name}-separated (rebayes reads comma-separated CSV)"


def toml_texts(table: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Yield ``(key path, text)`` for every key and string value of a loaded TOML document.

    Parameters
    ----------
    table : dict, list or scalar
        What :mod:`tomllib` returned (or a part of it).
    path : str
        The dotted path of ``table`` (``covariates.alloc``); lists add ``[1]``, ``[2]``, ...
    """
    if isinstance(table, Mapping):
        for key, value in table.items():
            where = f"{path}.{key}" if path else str(key)
            yield where, str(key)
            yield from toml_texts(value, where)
    elif isinstance(table, list):
        for i, value in enumerate(table, start=1):
            yield from toml_texts(value, f"{path}[{i}]")
    elif isinstance(table, str):
        yield path, table


def toml_line(source: str, text: str) -> int | None:
    r"""Return the line of a TOML ``source`` showing the character flagged in ``text``.

    The character :func:`forbidden_character` finds may be written as itself or as an
    escape (``\u202e``, ``\U0000202E``).

    Parameters
    ----------
    source : str
        The TOML file's text.
    text : str
        The key or value that holds the character.

    Returns
    -------
    int or None
        None when ``text`` holds no such character or the source does not show it.
    """
    char = next((c for c in text if forbidden_character(c, layout=True)), None)
    if char is None:
        return None
    code = ord(char)
    lowered = source.lower()
    spots = [source.find(char), lowered.find(f"\\u{code:04x}"), lowered.find(f"\\u{code:08x}")]
    found = [at for at in spots if at >= 0]
    return source.count("\n", 0, min(found)) + 1 if found else None


def forbidden_toml_text(table: Any, source: str) -> tuple[int | None, str] | None:
    """Find the first key or string of a loaded TOML document holding a forbidden character.

    Parameters
    ----------
    table : dict
        The document as :mod:`tomllib` loaded it.
    source : str
        Its text (to name the line).

    Returns
    -------
    tuple of (int or None, str), or None
        The line (None if the source does not show it) and ``"PATH contains ..."``.
    """
    for path, text in toml_texts(table):
        found = forbidden_character(text, layout=True)
        if found:
            return toml_line(source, text), f"{path} contains {found}"
    return None
