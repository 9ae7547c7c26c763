r"""Where fits are cached, how many there are, and removing them.

Fits live in ``$REBAYES_CACHE/fits/`` or, without that variable, in the user cache directory
(``platformdirs.user_cache_dir("rebayes")``: ``~/.cache/rebayes`` on Linux,
``~/Library/Caches/rebayes`` on macOS, ``%LOCALAPPDATA%\rebayes\Cache`` on Windows), never
in the source tree or the working directory. Each fit is one NetCDF file named by its key
(:func:`rebayes.bayes.sampling.fit_key`); :func:`clear_cache` removes only files with that name
pattern (and the temporary files of an interrupted write), nothing else that may share the
folder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CacheInfo",
    "cache_dir",
    "cache_info",
    "clear_cache",
    "compiled_dir",
    "summaries_dir",
    "fits_dir",
    "format_size",
]

# <32 hex digits>.nc, and the temporary file a background write leaves if killed.
_FIT_FILE = re.compile(r"[0-9a-f]{32}\.nc")
# rebayes.atomic.atomic_path's temporary files: ".<name>.<random>.tmp".
_PARTIAL_FILE = re.compile(r"\.[0-9a-f]{32}\.nc\.[A-Za-z0-9_]+\.tmp")
# Compiled models and fit summaries: <32 hex digits>.pkl, their partial writes, and the
# compile lock.
_PICKLE_FILE = re.compile(r"[0-9a-f]{32}\.pkl")
_PICKLE_PARTIAL = re.compile(r"\.[0-9a-f]{32}\.pkl\.[A-Za-z0-9_]+\.tmp")
_COMPILED_OTHER = re.compile(rf"[0-9a-f]{{32}}\.lock|{_PICKLE_PARTIAL.pattern}")


def cache_dir() -> Path:
    """Return ``$REBAYES_CACHE`` or the user cache directory for rebayes."""
    env = os.environ.get("REBAYES_CACHE")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("rebayes", appauthor=False))


def fits_dir() -> Path:
    """Return the folder of cached fits (``<cache_dir>/fits``)."""
    return cache_dir() / "fits"


def summaries_dir() -> Path:
    """Return the folder of cached fit summaries (``<cache_dir>/summaries``).

    One file per fit, names and code version (:mod:`rebayes.bayes.summaries`).
    """
    return cache_dir() / "summaries"


def compiled_dir() -> Path:
    """Return the folder of compiled models (``<cache_dir>/compiled``).

    One file per model structure and library versions (:mod:`rebayes.bayes.compilation`);
    machine-specific, so never copied between machines.
    """
    return cache_dir() / "compiled"


@dataclass(frozen=True)
class CacheInfo:
    """Cached fits and compiled models.

    Attributes
    ----------
    location : Path
        The folder of cached fits.
    fits : int
        Number of cached fits (complete files).
    size_bytes : int
        Their total size, plus any partial files of interrupted writes.
    compiled : int
        Number of compiled models (``<cache>/compiled``, one per model structure and library
        versions; :mod:`rebayes.bayes.compilation`).
    compiled_bytes : int
        Their total size, with lock and partial files.
    summaries : int
        Number of cached fit summaries (``<cache>/summaries``: :mod:`rebayes.bayes.summaries`).
    summaries_bytes : int
        Their total size, with partial files.
    """

    location: Path
    fits: int
    size_bytes: int
    compiled: int = 0
    compiled_bytes: int = 0
    summaries: int = 0
    summaries_bytes: int = 0

    def to_dict(self) -> dict[str, object]:
        """Plain-data form (for ``--json``)."""
        return {"location": str(self.location), "fits": self.fits, "size_bytes": self.size_bytes,
                "compiled_location": str(compiled_dir()), "compiled": self.compiled,
                "compiled_bytes": self.compiled_bytes,
                "summaries_location": str(summaries_dir()), "summaries": self.summaries,
                "summaries_bytes": self.summaries_bytes}

    def __str__(self) -> str:
        noun = "fit" if self.fits == 1 else "fits"
        return (f"{self.location}: {self.fits} cached {noun}, {format_size(self.size_bytes)}; "
                f"{self.compiled} compiled models, {format_size(self.compiled_bytes)}; "
                f"{self.summaries} fit summaries, {format_size(self.summaries_bytes)}")


def _own_files(
    folder: Path, complete: re.Pattern[str] = _FIT_FILE, partial: re.Pattern[str] = _PARTIAL_FILE
) -> list[tuple[Path, bool]]:
    """Files rebayes wrote in ``folder``: (path, is a complete fit or compiled model)."""
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.iterdir()):
        whole = bool(complete.fullmatch(path.name))
        if (whole or partial.fullmatch(path.name)) and path.is_file():
            out.append((path, whole))
    return out


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # removed meanwhile (another process clearing the cache)


def _compiled_files() -> list[tuple[Path, bool]]:
    return _own_files(compiled_dir(), _PICKLE_FILE, _COMPILED_OTHER)


def _summary_files() -> list[tuple[Path, bool]]:
    return _own_files(summaries_dir(), _PICKLE_FILE, _PICKLE_PARTIAL)


def cache_info() -> CacheInfo:
    """Count the cached fits and compiled models, and their sizes."""
    folder = fits_dir()
    files, compiled, summaries = _own_files(folder), _compiled_files(), _summary_files()
    return CacheInfo(folder, sum(c for _, c in files), sum(_size(p) for p, _ in files),
                     sum(c for _, c in compiled), sum(_size(p) for p, _ in compiled),
                     sum(c for _, c in summaries), sum(_size(p) for p, _ in summaries))


def _remove(files: list[tuple[Path, bool]], folder: Path) -> tuple[int, int]:
    count = size = 0
    for path, complete in files:
        freed = _size(path)
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        count += complete
        size += freed
    try:
        folder.rmdir()
    except OSError:
        pass  # missing, or holds something rebayes did not write
    return count, size


def clear_cache() -> CacheInfo:
    """Remove every cached fit, compiled model and fit summary; return what was removed.

    Only files named like fits or compiled models (and partial writes and locks of them) are
    removed, then their folders if that left them empty; any other file there stays.
    """
    folder = fits_dir()
    fits, size = _remove(_own_files(folder), folder)
    compiled, compiled_size = _remove(_compiled_files(), compiled_dir())
    summaries, summaries_size = _remove(_summary_files(), summaries_dir())
    return CacheInfo(folder, fits, size, compiled, compiled_size, summaries, summaries_size)


def format_size(size_bytes: int) -> str:
    """Return a size in bytes for people (``'12.3 MB'``, decimal units)."""
    size = float(size_bytes)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")
