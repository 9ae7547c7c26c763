"""The one exception family a user sees: every message is a single line saying what to fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["AnalysisError", "RebayesError", "RebayesWarning", "check_keys", "unknown_key_message"]


class RebayesError(ValueError):
    """Base of all errors caused by user input (data, priors, specs, names, paths)."""


class AnalysisError(RebayesError):
    """An analysis request that cannot be carried out (unknown option, empty selection)."""


class RebayesWarning(UserWarning):
    """A one-line note to the user: what was left out, and how to have it.

    The command prints it as ``rebayes COMMAND: MESSAGE``.
    """



class DataNote(RebayesWarning):
    """Something rebayes assumed while reading a user's file (one line, not an error).

    The command prints each once on stderr as ``rebayes COMMAND: note: ...``.
    """


def unknown_key_message(where: str, key: str, known: Iterable[str], path: str = "") -> str:
    """Return the one-line message for a key a file does not know, with the closest known key.

    Parameters
    ----------
    where : str
        The file, as messages name it (``x/dataset.toml``).
    key : str
        The unknown key.
    known : iterable of str
        The keys valid at that place.
    path : str
        Where the key sits (``covariates.alloc.``), put before it in the message.

    Returns
    -------
    str
        ``x/dataset.toml: unknown key 'measur' (did you mean 'measure'?)``; without a close
        match the known keys are listed instead.

    Examples
    --------
    >>> unknown_key_message("x/dataset.toml", "measur", ["measure", "method"])
    "x/dataset.toml: unknown key 'measur' (did you mean 'measure'?)"
    """
    names = sorted(known)
    close = difflib.get_close_matches(key, names, n=1)
    hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(names) or 'none'}"
    return f"{where}: unknown key '{path}{key}' ({hint})"


def check_keys(
    table: Mapping[str, Any],
    known: Iterable[str],
    where: str,
    path: str = "",
    error: type[RebayesError] = RebayesError,
) -> None:
    """Raise ``error`` naming the first key of ``table`` (in file order) that is not known.

    Parameters
    ----------
    table : mapping
        A table as :mod:`tomllib` loaded it.
    known : iterable of str
        The keys valid in it.
    where, path : str
        See :func:`unknown_key_message`.
    error : type
        The exception class to raise (the caller's own error family).
    """
    valid = set(known)
    for key in table:
        if key not in valid:
            raise error(unknown_key_message(where, str(key), valid, path))
