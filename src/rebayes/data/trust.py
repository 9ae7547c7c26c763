r"""Which model scripts of a dataset folder may run: shipped, allowed, or trusted by hash.

A dataset folder's ``models/*.py`` are Python: importing one runs it as the user. A folder
someone downloaded must not run code unasked, so a script there runs only when

- the folder is one of the shipped datasets (``rebayes/data/datasets/``), or
- the command was given ``--allow-scripts`` (``allow_scripts=True`` from Python), or
- ``rebayes trust DIR`` recorded the script's SHA-256 for that folder, and the script still
  has that hash (an edited or a new script needs ``rebayes trust DIR`` again).

Trust is recorded in ``trusted-scripts.json`` in ``$REBAYES_CONFIG`` or, without that
variable, the user config directory (``platformdirs.user_config_dir("rebayes")``:
``~/.config/rebayes`` on Linux, ``~/Library/Application Support/rebayes`` on macOS,
``%LOCALAPPDATA%\rebayes`` on Windows), written atomically. An unreadable file trusts nothing.
An untrusted script is never imported, not even to read its analysis's name.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rebayes.atomic import write_text_atomic
from rebayes.data.trials import data_root
from rebayes.errors import RebayesError

__all__ = [
    "ScriptTrust",
    "TrustError",
    "config_dir",
    "model_scripts",
    "revoke",
    "script_trust",
    "trust_file",
    "trust_folder",
    "trusted_folders",
    "untrusted_error",
    "untrusted_note",
]

#: The file in :func:`config_dir` that holds the trusted scripts' hashes.
TRUST_FILE = "trusted-scripts.json"
_FORMAT = "rebayes-trust/1"


class TrustError(RebayesError):
    """``rebayes trust``: a folder without scripts, or one that is not trusted (one line)."""


@dataclass(frozen=True)
class ScriptTrust:
    """The model scripts of one dataset folder, split by whether they may run.

    Attributes
    ----------
    directory : Path
        The dataset folder as the user named it.
    trusted : tuple of Path
        Scripts that may run (shipped, allowed, or trusted with their current hash).
    untrusted : tuple of Path
        Scripts that must not run.
    changed : tuple of Path
        Those of ``untrusted`` that were trusted with another content.
    """

    directory: Path
    trusted: tuple[Path, ...] = ()
    untrusted: tuple[Path, ...] = ()
    changed: tuple[Path, ...] = ()


def config_dir() -> Path:
    """Return ``$REBAYES_CONFIG`` or the user config directory for rebayes."""
    env = os.environ.get("REBAYES_CONFIG")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_config_dir("rebayes", appauthor=False))


def trust_file() -> Path:
    """Return the file that records trusted scripts (``<config_dir>/trusted-scripts.json``)."""
    return config_dir() / TRUST_FILE


def model_scripts(directory: str | Path) -> list[Path]:
    """Return the model scripts of a dataset folder (``DIR/models/*.py``), sorted by name."""
    models = Path(directory) / "models"
    return sorted(p for p in models.glob("*.py") if p.is_file()) if models.is_dir() else []


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _key(directory: str | Path) -> str:
    return str(Path(directory).resolve())


def _is_shipped(directory: Path) -> bool:
    return Path(directory).resolve().parent == data_root().resolve()


def _read() -> dict[str, dict[str, str]]:
    """Return the recorded folders and their scripts' hashes (unreadable: trusts nothing)."""
    try:
        record = json.loads(trust_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    folders = record.get("folders") if isinstance(record, dict) else None
    if not isinstance(folders, dict):
        return {}
    return {
        str(folder): {str(k): str(v) for k, v in scripts.items()}
        for folder, scripts in folders.items()
        if isinstance(scripts, dict)
    }


def _write(folders: dict[str, dict[str, str]]) -> None:
    payload: dict[str, Any] = {"format": _FORMAT, "folders": dict(sorted(folders.items()))}
    write_text_atomic(trust_file(), json.dumps(payload, indent=2) + "\n")


def script_trust(directory: str | Path, allow_scripts: bool = False) -> ScriptTrust:
    """Split a dataset folder's model scripts into those that may run and those that may not.

    Parameters
    ----------
    directory : str or Path
        A dataset folder.
    allow_scripts : bool
        The user's ``--allow-scripts``: every script may run.

    Returns
    -------
    ScriptTrust
    """
    directory = Path(directory)
    scripts = model_scripts(directory)
    if not scripts or allow_scripts or _is_shipped(directory):
        return ScriptTrust(directory, tuple(scripts))
    recorded = _read().get(_key(directory), {})
    trusted, untrusted, changed = [], [], []
    for path in scripts:
        digest = recorded.get(path.name)
        if digest is not None and digest == _digest(path):
            trusted.append(path)
            continue
        untrusted.append(path)
        if digest is not None:
            changed.append(path)
    return ScriptTrust(directory, tuple(trusted), tuple(untrusted), tuple(changed))


def _how(directory: Path) -> str:
    return f"run with --allow-scripts, or trust the folder: rebayes trust {directory}"


def untrusted_note(trust: ScriptTrust) -> str:
    """Return the one line saying which scripts did not run and how to let them.

    Examples
    --------
    >>> from pathlib import Path
    >>> untrusted_note(ScriptTrust(Path("dl"), untrusted=(Path("dl/models/a.py"),)))
    'not running 1 untrusted model script of dl: a.py (run with --allow-scripts, or trust the folder: rebayes trust dl)'
    """  # noqa: E501
    names = ", ".join(
        p.name + (" (changed since trusted)" if p in trust.changed else "")
        for p in trust.untrusted
    )
    count = len(trust.untrusted)
    return (
        f"not running {count} untrusted model script{'s' if count != 1 else ''} of "
        f"{trust.directory}: {names} ({_how(trust.directory)})"
    )


def untrusted_error(name: str, trust: ScriptTrust) -> str | None:
    """Return the one-line error for an analysis name only an untrusted script provides.

    Parameters
    ----------
    name : str
        The analysis asked for.
    trust : ScriptTrust

    Returns
    -------
    str or None
        None when no untrusted script is called ``name``.
    """
    path = next((p for p in trust.untrusted if p.stem == name), None)
    if path is None:
        return None
    changed = " (changed since trusted)" if path in trust.changed else ""
    return f"{name}: {path} is an untrusted model script{changed}; {_how(trust.directory)}"


def trust_folder(directory: str | Path) -> list[Path]:
    """Record the SHA-256 of every model script of a folder as trusted (``rebayes trust DIR``).

    Parameters
    ----------
    directory : str or Path
        A dataset folder with ``models/*.py``.

    Returns
    -------
    list of Path
        The scripts now trusted (earlier records of the folder are replaced).

    Raises
    ------
    TrustError
        No such folder, or no model script in it.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise TrustError(f"{directory}: no such folder")
    scripts = model_scripts(directory)
    if not scripts:
        raise TrustError(f"{directory}: no model scripts to trust (none in {directory / 'models'})")
    folders = _read()
    folders[_key(directory)] = {p.name: _digest(p) for p in scripts}
    _write(folders)
    return scripts


def revoke(directory: str | Path) -> None:
    """Forget the trust recorded for a folder (``rebayes trust --revoke DIR``).

    Raises
    ------
    TrustError
        The folder has no record.
    """
    folders = _read()
    if folders.pop(_key(directory), None) is None:
        raise TrustError(f"{directory}: not trusted (nothing to revoke)")
    _write(folders)


def trusted_folders() -> dict[str, dict[str, str]]:
    """Return each trusted folder's scripts and their state now: trusted, changed or missing.

    Returns
    -------
    dict of str to dict of str to str
        Folder -> script name -> ``"trusted"``, ``"changed"`` (not trusted) or ``"missing"``;
        a script added since is listed as ``"new"`` (not trusted).
    """
    out: dict[str, dict[str, str]] = {}
    for folder, recorded in _read().items():
        now = {p.name: p for p in model_scripts(folder)}
        states = {
            name: "missing" if name not in now
            else "trusted" if _digest(now[name]) == digest else "changed"
            for name, digest in recorded.items()
        }
        states.update({name: "new" for name in now if name not in recorded})
        out[folder] = dict(sorted(states.items()))
    return out
