r"""Where fits are cached, how many there are, and removing them.

Fits live in ``$REBAYES_CACHE/fits/`` or, without that variable, in the user cache directory
(``platformdirs.user_cache_dir("rebayes")``: ``~/.cache/rebayes`` on Linux,
``~/Library/Caches/rebayes`` on macOS, ``%LOCALAPPDATA%\rebayes\Cache`` on Windows), never
in the source tree or the working directory. Each fit is one NetCDF file named by its key
(:func:`rebayes.bayes.fit.fit_key`); :func:`clear_cache` removes only files with that name
pattern (and the temporary files of an interrupted write), nothing else that may share the
folder.

The cache holds code: compiled models are machine code and summaries are pickles, both run
when they are loaded. Whoever can write the cache could run code as the user, so, as ssh
does for its keys, rebayes creates the cache and its folders private (mode 0700) and refuses
(:class:`UnsafeCacheError`, one line) to read or write one that another user could change:
the cache folder, or one of its folders, that the user does not own or that the group or
others may write, or a folder above it that someone other than the user or root owns or
that the group or others may write without the sticky bit (``/tmp`` is fine). The check
follows symbolic links and runs once per folder and process, before anything is read from
it; each file is checked again as it is opened (:func:`read_entry`). On Windows, where
these modes do not exist, nothing is checked.

An entry that cannot be read back as written is a miss: the caller computes it again and
replaces it, with one note (:class:`CacheNote`). Compiled models and summaries carry a
SHA-256 of their bytes (:func:`write_entry`), so damage never reaches the unpickler; a fit
file carries one of its values (:mod:`rebayes.store.fits`). A cache that cannot be
written (full disk, read-only) costs only the reuse: the command prints its result and one
warning (:class:`CacheWarning`, once per process).
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import stat
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

from rebayes.atomic import atomic_path
from rebayes.errors import RebayesError

__all__ = [
    "CacheInfo",
    "CacheNote",
    "CacheWarning",
    "UnsafeCacheError",
    "cache_dir",
    "cache_folder",
    "cache_info",
    "clear_cache",
    "compiled_dir",
    "entry_owner_problem",
    "summaries_dir",
    "fits_dir",
    "format_size",
    "make_folder",
    "note_unreadable",
    "read_entry",
    "remove_empty_folder",
    "warn_unwritable",
    "write_entry",
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


class UnsafeCacheError(RebayesError):
    """The cache folder could be changed by another user: it is not used (one line)."""


class CacheWarning(Warning):  # noqa: N818 - a warning category, named as the others
    """The cache could not be written: the result is right, it is not kept for later runs.

    Not a RuntimeWarning: code that silences those for a while (numerics in a background
    thread) must not swallow it.
    """


class CacheNote(CacheWarning):
    """A cache entry could not be read: it is computed again and replaced."""


def fits_dir() -> Path:
    """Return the folder of cached fits (``<cache_dir>/fits``), checked (module docstring)."""
    return cache_folder("fits")


def summaries_dir() -> Path:
    """Return the folder of cached fit summaries (``<cache_dir>/summaries``), checked.

    One file per fit, names and code version (:mod:`rebayes.store.derived`).
    """
    return cache_folder("summaries")


def compiled_dir() -> Path:
    """Return the folder of compiled models (``<cache_dir>/compiled``), checked.

    One file per model structure and library versions (:mod:`rebayes.bayes.compilation`);
    machine-specific, so never copied between machines.
    """
    return cache_folder("compiled")


def cache_folder(name: str) -> Path:
    """Return ``<cache_dir>/<name>`` once it and the cache folder are found safe.

    Either may be missing (:func:`make_folder` creates them private).

    Raises
    ------
    UnsafeCacheError
        Another user could change what is in it (module docstring).
    """
    root = cache_dir()
    _check_private(root)
    folder = root / name
    _check_private(folder)
    return folder


def make_folder(folder: Path) -> None:
    """Create a cache folder and the cache folder above it, private (mode 0700), if missing."""
    root = cache_dir()
    for path in (root, folder):
        if not path.is_dir():
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            _check_private(path)


# Folders found safe in this process (real paths), not checked again.
_SAFE: set[str] = set()


def _check_private(folder: Path) -> None:
    """Refuse a cache folder another user could change (see the module docstring)."""
    if not hasattr(os, "getuid"):
        return  # Windows: no owner and mode bits to check
    real = os.path.realpath(folder)
    if real in _SAFE or not os.path.lexists(folder):
        return
    try:
        info = os.stat(real)
    except OSError as exc:
        raise UnsafeCacheError(f"cache folder {folder}: {exc.strerror}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise UnsafeCacheError(f"cache folder {folder} is not a folder")
    why = _unsafe_owner_or_mode(info)
    if why:
        remedy = (f"run 'chmod go-w {folder}' or set REBAYES_CACHE to another folder"
                  if info.st_uid == os.getuid() else "set REBAYES_CACHE to a folder of your own")
        raise UnsafeCacheError(f"cache folder {folder} {why}; {_REFUSAL}: {remedy}")
    for above in Path(real).parents:
        info = os.stat(above)
        if info.st_uid not in (os.getuid(), 0):
            why = f"is owned by another user (uid {info.st_uid})"
        elif info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
            why = f"is writable by {'others' if info.st_mode & 0o002 else 'its group'}"
        else:
            continue
        raise UnsafeCacheError(f"cache folder {folder}: {above} {why}; {_REFUSAL}: set "
                               "REBAYES_CACHE to a folder only you can change")
    _SAFE.add(real)


_REFUSAL = "refusing to use it (it holds code rebayes runs)"


def _unsafe_owner_or_mode(info: os.stat_result) -> str:
    """Why a cache folder or file could be changed by another user ('' if it cannot)."""
    if info.st_uid != os.getuid():
        return f"is owned by another user (uid {info.st_uid})"
    if info.st_mode & 0o022:
        return f"is writable by {'others' if info.st_mode & 0o002 else 'its group'}"
    return ""


def entry_owner_problem(info: os.stat_result) -> str:
    """Why a cache file (its ``os.stat``) could have been changed by another user, or ''."""
    return _unsafe_owner_or_mode(info) if hasattr(os, "getuid") else ""


# --- entries: bytes with their checksum ------------------------------------------------------

# A compiled model or summary file: this tag, the SHA-256 of the payload, the payload.
_ENTRY_TAG = b"rebayes-cache-entry/1\n"
_DIGEST_SIZE = 32


def read_entry(path: Path, what: str) -> bytes | None:
    """Return the payload stored at ``path`` by :func:`write_entry`, or None.

    None when there is no such file, and also, with one :class:`CacheNote` naming ``what``
    it is, when the file is damaged (its checksum does not match), was not written by
    :func:`write_entry`, or could be changed by another user: the caller computes it again.
    """
    try:
        with open(path, "rb") as handle:
            why = entry_owner_problem(os.fstat(handle.fileno()))
            blob = b"" if why else handle.read()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        why = "a folder, not a file"
    except OSError as exc:
        why = exc.strerror or str(exc)
    else:
        why = (f"it {why}" if why else "" if blob.startswith(_ENTRY_TAG)
               else "not a rebayes cache entry")
    head = len(_ENTRY_TAG) + _DIGEST_SIZE
    if not why and hashlib.sha256(blob[head:]).digest() != blob[len(_ENTRY_TAG):head]:
        why = "damaged: its checksum does not match"
    if why:
        note_unreadable(path, what, why)
        return None
    return blob[head:]


def write_entry(path: Path, payload: bytes) -> bool:
    """Store ``payload`` at ``path`` with its checksum, atomically; whether it was written.

    A failure (full disk, read-only cache) is one :class:`CacheWarning` per process
    (:func:`warn_unwritable`), never an error: the caller has its result.
    """
    try:
        make_folder(path.parent)
        remove_empty_folder(path)
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                handle.write(_ENTRY_TAG)
                handle.write(hashlib.sha256(payload).digest())
                handle.write(payload)
    except OSError as exc:
        warn_unwritable(exc)
        return False
    return True


def remove_empty_folder(path: Path) -> None:
    """Remove an empty folder (not a link to one) where an entry is to be written.

    Anything else in the way stays: the write then fails (:func:`warn_unwritable`).
    """
    if path.is_dir() and not path.is_symlink():
        try:
            path.rmdir()
        except OSError:
            pass


def note_unreadable(path: Path, what: str, why: str) -> None:
    """Say, in one line, that a cache entry is not used and is computed again."""
    warnings.warn(f"{what} {path} not used ({why}); computing it again", CacheNote,
                  stacklevel=3)


def _nearly_full(folder: Path) -> bool:
    """Whether the disk holding ``folder`` has less room left than a large fit file needs."""
    try:
        return shutil.disk_usage(folder).free < 16_000_000
    except OSError:
        return False


_WARNED: list[BaseException] = []
_WARNED_LOCK = threading.Lock()


def warn_unwritable(exc: BaseException) -> None:
    """Say once per process that the cache cannot be written (the results are right)."""
    with _WARNED_LOCK:
        if _WARNED:
            return
        _WARNED.append(exc)
    warnings.warn(f"cannot write the cache {cache_dir()} ({_why_unwritable(exc)}); results "
                  "are not kept for later runs", CacheWarning, stacklevel=3)


def _why_unwritable(exc: BaseException) -> str:
    """Say why the cache could not be written, in a few words.

    netCDF reports a full disk as "Permission denied" or "NetCDF: HDF error": the file
    system is asked, after the plain causes.
    """
    code = exc.errno if isinstance(exc, OSError) else None
    if code in (errno.ENOSPC, errno.EDQUOT):
        return "the disk is full"
    if code == errno.EROFS or _read_only(cache_dir()):
        return "read-only file system"
    if _nearly_full(cache_dir()):
        return "the disk is full"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    return str(exc) or type(exc).__name__


def _read_only(folder: Path) -> bool:
    """Whether ``folder`` is on a file system mounted read-only (POSIX; else False)."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        return False


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
        Number of cached fit summaries (``<cache>/summaries``: :mod:`rebayes.store.derived`).
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
