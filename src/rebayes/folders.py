"""Output folders: where rebayes may write, and removing only what it wrote.

Every command that writes a folder (``report``, ``batch``, ``import``, ``init``) checks its
target with :func:`check_output_folder` before any work: a missing or empty folder, or one
holding the marker file the same command left there before, may be written; a file, or a
non-empty folder without that marker, is refused with one line.

rebayes never writes a symbolic link, so a link below an output folder is someone else's:
:func:`symlink_in` finds one on a path, and :func:`unlink_inside` removes a file without ever
following one (a forged list of files to replace cannot make it delete elsewhere). The output
folder itself may be a link the user gave; only what lies below it is checked.

A folder is built aside in a staging folder (:func:`staging_folder`) that holds a lock while
its run lives; a later run removes the staging folders whose lock nobody holds
(:func:`remove_dead_staging`): their run was killed before it could clean up.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from rebayes.errors import RebayesError

try:  # POSIX; elsewhere a killed run's staging folder is left for the user to remove
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "STAGING_OWNER",
    "OutputDirectoryError",
    "check_output_folder",
    "check_writable",
    "check_writable_folder",
    "not_a_directory",
    "remove_dead_staging",
    "staging_folder",
    "symlink_in",
    "unlink_inside",
    "unsafe_file_name",
]

#: File inside a staging folder naming its run (pid, host, start) and locked while it lives.
STAGING_OWNER = ".rebayes-staging-owner"


class OutputDirectoryError(RebayesError):
    """An output folder rebayes may not write into (one-line message)."""


def not_a_directory(path: Path) -> Path | None:
    """Return ``path`` or its nearest existing ancestor when that is not a directory, else None.

    ``--output notes.txt/report`` cannot be created because ``notes.txt`` is a file: this finds
    ``notes.txt`` so that the message names it (as ``path`` names it: relative stays relative).
    """
    path = Path(path)
    for candidate in (path, *path.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
        if candidate.is_symlink():  # a dangling link: nothing can be created through it
            return candidate
    return None


def _probe(directory: Path, target: Path) -> None:
    """Check that ``directory`` exists or can be created, and can be written; or raise one line.

    A folder is created and removed in ``directory`` or, when it does not exist yet, in its
    nearest existing ancestor (where the writer will create it): the check itself leaves
    nothing behind, even when a later step fails.
    """
    blocker = not_a_directory(directory)
    if blocker == target:
        raise OutputDirectoryError(f"output {target} is not a directory")
    if blocker is not None:
        raise OutputDirectoryError(f"cannot write output {target}: {blocker} is not a directory")
    absolute = Path(os.path.abspath(directory))
    existing = next(p for p in (absolute, *absolute.parents) if p.exists())
    try:
        probe = tempfile.mkdtemp(dir=existing, prefix=f".{target.name or 'output'}.probe.")
    except OSError as exc:
        raise OSError(
            exc.errno, f"cannot write output {target}: {exc.strerror}", str(directory)
        ) from None
    os.rmdir(probe)


def check_writable(target: Path) -> None:
    """Fail early, with one line, when ``target`` (a file or directory) cannot be written.

    Creates nothing: the writers create missing parent folders themselves.

    Raises
    ------
    OutputDirectoryError
        A parent of ``target`` is a file (``--output notes.txt/report``).
    OSError
        Writing beside ``target`` is impossible (the message names the folder).
    """
    target = Path(target)
    _probe(target.parent, target)


def check_writable_folder(folder: Path) -> None:
    """Fail early, with one line, when files cannot be written into ``folder``.

    ``folder`` may exist (its files are replaced one by one, as ``rebayes compare --output``
    does) or not (the writer creates it); nothing is created here.

    Raises
    ------
    OutputDirectoryError
        ``folder`` or a parent is not a directory.
    OSError
        ``folder`` cannot be written or created.
    """
    _probe(Path(folder), Path(folder))


def check_output_folder(
    folder: Path, command: str, marker: str | None = None, ignore: str | None = None
) -> bool:
    """Check that ``command`` may write into ``folder``; say whether it holds a previous output.

    Parameters
    ----------
    folder : Path
        The output folder, as the message should name it.
    command : str
        The rebayes command writing it (``"report"``), for the message.
    marker : str, optional
        The file a previous run of ``command`` left in the folder; without one, only a missing
        or empty folder may be written (``rebayes init``).
    ignore : str, optional
        Prefix of entries that do not make the folder foreign (a killed run's staging folders).

    Returns
    -------
    bool
        True when the folder holds ``marker`` (a previous output to replace), False when it is
        missing or empty.

    Raises
    ------
    OutputDirectoryError
        ``folder`` (or a parent) is not a directory, or it is a non-empty folder without
        ``marker`` (one line).
    OSError
        ``folder`` cannot be created or written.
    """
    folder = Path(folder)
    blocker = not_a_directory(folder)
    if blocker == folder:
        raise OutputDirectoryError(f"output {folder} is not a directory")
    if not folder.exists():
        check_writable(folder)
        return False
    _probe(folder, folder)
    entries = [p for p in folder.iterdir() if not (ignore and p.name.startswith(ignore))]
    if not entries:
        return False
    if marker is None:
        raise OutputDirectoryError(
            f"output directory {folder} is not empty; refusing to write into it: give an "
            f"empty or new directory (rebayes {command} never overwrites)"
        )
    found = folder / marker
    if found.is_symlink():
        raise OutputDirectoryError(
            f"output directory {folder}: {marker} is a symbolic link (rebayes writes none); "
            "refusing to write into it"
        )
    if not found.is_file():
        raise OutputDirectoryError(
            f"output directory {folder} is not empty and holds no rebayes {command} (no "
            f"{marker}); refusing to write into it: give an empty or new directory"
        )
    return True


def unsafe_file_name(name: str) -> str | None:
    """Return why ``name`` cannot be (the start of) a file name in a folder, else None.

    A user's string that rebayes turns into a file name (an analysis named after a covariate
    of ``dataset.toml`` becomes ``<name>.html``) must stay one plain entry of its folder: no
    path separator, no leading dot (``..``, hidden files), no control character, not empty
    and not longer than 100 characters.
    """
    if not name.strip():
        return "it is empty"
    if "/" in name or "\\" in name:
        return "it holds a path separator"
    if name.startswith("."):
        return "it starts with '.'"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "it holds a control character"
    if len(name) > 100:
        return "it is longer than 100 characters"
    return None


def symlink_in(root: Path, relative: str) -> str | None:
    """Return the first part of ``relative`` below ``root`` that is a symbolic link, else None.

    Each part is looked at with :func:`os.lstat` (a link is not followed); the parts that do
    not exist yet are none. ``relative`` is a normalised relative POSIX path.
    """
    current = Path(root)
    parts = PurePosixPath(relative).parts
    for depth, part in enumerate(parts, start=1):
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            return None
        if stat.S_ISLNK(mode):
            return "/".join(parts[:depth])
        if not stat.S_ISDIR(mode):
            return None
    return None


def _open_parent(root: Path, parts: tuple[str, ...]) -> int:
    """Open the folder holding ``parts[-1]`` below ``root``, refusing any link on the way."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for part in parts[:-1]:
            child = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def unlink_inside(root: Path, relative: str) -> None:
    """Remove the file ``root/relative``, then its parent folders below ``root`` while empty.

    Nothing is removed through a symbolic link: each folder on the way is opened without
    following links (``O_NOFOLLOW``) and the entry is removed only when it is a regular file,
    so a link swapped in after any check makes this refuse instead of deleting elsewhere. A
    missing file, or a folder or file where the path expects something else, is left alone.

    Raises
    ------
    OutputDirectoryError
        A part of the path is a symbolic link.
    """
    parts = PurePosixPath(relative).parts
    refusal = OutputDirectoryError(
        f"output directory {root}: {relative} is or lies behind a symbolic link; refusing to "
        "remove it"
    )
    if not hasattr(os, "O_NOFOLLOW") or os.unlink not in os.supports_dir_fd:
        # pragma: no cover - no dir_fd (Windows): check each part, then remove by path.
        if symlink_in(root, relative) is not None:
            raise refusal
        path = Path(root, *parts)
        if path.is_file() and not path.is_symlink():
            path.unlink()
        return
    try:
        fd = _open_parent(Path(root), parts)
    except FileNotFoundError:
        return
    except OSError:  # ELOOP or ENOTDIR: a link, or a file, where a folder should be
        if symlink_in(root, relative) is None:
            return  # a file: what the path names cannot be there
        raise refusal from None
    try:
        try:
            mode = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False).st_mode
        except FileNotFoundError:
            return
        if stat.S_ISLNK(mode):
            raise refusal
        if not stat.S_ISREG(mode):
            return  # a folder of the user's where a file was: not ours to remove
        os.unlink(parts[-1], dir_fd=fd)
    finally:
        os.close(fd)
    for depth in range(len(parts) - 1, 0, -1):
        try:
            parent = _open_parent(Path(root), parts[:depth])
        except OSError:
            return
        try:
            os.rmdir(parts[depth - 1], dir_fd=parent)  # only when empty: a user's file keeps it
        except OSError:
            return
        finally:
            os.close(parent)


def remove_dead_staging(parent: Path, prefix: str) -> list[Path]:
    """Remove the staging folders in ``parent`` left by runs that were killed; return them.

    A folder counts only when it is a real folder (not a link) named ``prefix*`` that holds
    :data:`STAGING_OWNER` as a regular file whose lock nobody holds: a live run holds it, and
    the system releases it when the run dies, however it dies (SIGKILL included). Any other
    entry is left alone. Removal does not follow links (:func:`shutil.rmtree` works through
    file descriptors here).
    """
    if fcntl is None or not Path(parent).is_dir():
        return []
    removed = []
    for entry in sorted(Path(parent).iterdir()):
        if not entry.name.startswith(prefix):
            continue
        try:
            if not stat.S_ISDIR(os.lstat(entry).st_mode):
                continue
            fd = os.open(entry / STAGING_OWNER, os.O_RDWR | os.O_NOFOLLOW)
        except OSError:  # no owner file (not ours) or a link in its place
            continue
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # held: its run is alive
                continue
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
        finally:
            os.close(fd)
    return removed


@contextmanager
def staging_folder(parent: Path, prefix: str) -> Iterator[Path]:
    """Yield a new private folder in ``parent``, locked as this run's, removed afterwards.

    Staging folders that killed runs left in ``parent`` are removed first
    (:func:`remove_dead_staging`). The new folder holds :data:`STAGING_OWNER` (pid, host and
    start time, for a person looking) locked for as long as the block runs; whoever moves
    files out of it must leave that file behind.
    """
    remove_dead_staging(parent, prefix)
    staging = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
    fd = None
    try:
        fd = os.open(staging / STAGING_OWNER, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        os.write(fd, (json.dumps(owner) + "\n").encode())
        yield staging
    finally:
        if fd is not None:
            os.close(fd)
        shutil.rmtree(staging, ignore_errors=True)
