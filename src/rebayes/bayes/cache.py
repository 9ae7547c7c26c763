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
    "fits_dir",
    "format_size",
]

# <32 hex digits>.nc, and the temporary file a background write leaves if killed.
_FIT_FILE = re.compile(r"[0-9a-f]{32}\.nc")
_PARTIAL_FILE = re.compile(r"\.[0-9a-f]{32}\.nc\.\d+\.\d+\.tmp")


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


def compiled_dir() -> Path:
    """Return the folder of compiled models (``<cache_dir>/compiled``).

    One file per model structure and library versions (:mod:`rebayes.bayes.compilation`);
    machine-specific, so never copied between machines.
    """
    return cache_dir() / "compiled"


@dataclass(frozen=True)
class CacheInfo:
    """Cached fits in one folder.

    Attributes
    ----------
    location : Path
        The folder of cached fits.
    fits : int
        Number of cached fits (complete files).
    size_bytes : int
        Their total size, plus any partial files of interrupted writes.
    """

    location: Path
    fits: int
    size_bytes: int

    def to_dict(self) -> dict[str, object]:
        """Plain-data form (for ``--json``)."""
        return {"location": str(self.location), "fits": self.fits, "size_bytes": self.size_bytes}

    def __str__(self) -> str:
        noun = "fit" if self.fits == 1 else "fits"
        return f"{self.location}: {self.fits} cached {noun}, {format_size(self.size_bytes)}"


def _own_files(folder: Path) -> list[tuple[Path, bool]]:
    """Files rebayes wrote in ``folder``: (path, is a complete fit)."""
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.iterdir()):
        complete = bool(_FIT_FILE.fullmatch(path.name))
        if (complete or _PARTIAL_FILE.fullmatch(path.name)) and path.is_file():
            out.append((path, complete))
    return out


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # removed meanwhile (another process clearing the cache)


def cache_info() -> CacheInfo:
    """Count the cached fits and their size."""
    folder = fits_dir()
    files = _own_files(folder)
    return CacheInfo(folder, sum(c for _, c in files), sum(_size(p) for p, _ in files))


def clear_cache() -> CacheInfo:
    """Remove every cached fit; return what was removed.

    Only files named like fits (and partial writes of them) are removed, then the ``fits``
    folder itself if that left it empty; any other file there stays.
    """
    folder = fits_dir()
    fits = size = 0
    for path, complete in _own_files(folder):
        freed = _size(path)
        try:
            path.unlink()
        except FileNotFoundError:
            continue
        fits += complete
        size += freed
    try:
        folder.rmdir()
    except OSError:
        pass  # missing, or holds something rebayes did not write
    return CacheInfo(folder, fits, size)


def format_size(size_bytes: int) -> str:
    """Return a size in bytes for people (``'12.3 MB'``, decimal units)."""
    size = float(size_bytes)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")
