"""Write files and report directories so that a failure leaves the previous version in place.

A report directory is never taken over wholesale: :func:`staging_directory` builds the new
report in a hidden staging folder, and then replaces exactly the files
the previous report listed in its manifest (:data:`REPORT_MANIFEST`). Files the user put there
(notes, ``calibration/`` from ``benchmarks/sbc.py``) are never read, moved or deleted, and a
non-empty directory without a manifest is refused before anything is computed.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from rebayes.folders import (
    STAGING_OWNER,
    OutputDirectoryError,
    check_output_folder,
    staging_folder,
    symlink_in,
    unlink_inside,
)

__all__ = [
    "MANIFEST_FORMAT",
    "REPORT_MANIFEST",
    "atomic_path",
    "check_output_directory",
    "staging_directory",
    "write_text_atomic",
]

#: File in a report directory listing every file the report wrote (paths relative to it).
REPORT_MANIFEST = ".rebayes-report.json"
#: Format tag of the manifest; a manifest with another tag is not ours to act on.
MANIFEST_FORMAT = "rebayes-report/1"
# Hidden folder inside the output directory where a report is built before it is published.
_STAGING_PREFIX = ".rebayes-staging."


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` that replaces it when the block succeeds.

    Whatever writes to the temporary path (text, a matplotlib PNG, NetCDF) leaves either the
    complete new file or, on any exception, the previous file and no partial one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; outputs are for reading
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _manifest_files(target: Path) -> tuple[str, ...]:
    """Return the files listed in ``target``'s manifest, or refuse a manifest not ours.

    Every entry must be a normalised relative path that stays inside ``target`` with no
    symbolic link on the way (rebayes writes none): a manifest listing ``link/notes.txt``,
    where ``link`` points elsewhere, would otherwise make a rebuild delete ``notes.txt`` there.
    """
    path = target / REPORT_MANIFEST
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or "not valid JSON"
        raise OutputDirectoryError(
            f"output directory {target}: cannot read {REPORT_MANIFEST} ({why}); "
            "refusing to write into it"
        ) from None
    files = payload.get("files") if isinstance(payload, dict) else None
    if (
        not isinstance(payload, dict)
        or payload.get("format") != MANIFEST_FORMAT
        or not isinstance(files, list)
        or not all(isinstance(f, str) and _is_inside(f) for f in files)
    ):
        raise OutputDirectoryError(
            f"output directory {target}: {REPORT_MANIFEST} is not a {MANIFEST_FORMAT} "
            "manifest; refusing to write into it"
        )
    for relative in files:
        _refuse_symlink(target, relative, f"{REPORT_MANIFEST} lists {relative}")
    return tuple(files)


def _is_inside(relative: str) -> bool:
    """Whether a manifest entry names a file strictly inside the directory, normalised."""
    parts = PurePosixPath(relative).parts
    return (
        bool(parts)
        and not PurePosixPath(relative).is_absolute()
        and "\\" not in relative
        and "\0" not in relative
        and PurePosixPath(relative).as_posix() == relative  # no "a//b", "./a" or "a/"
        and all(p not in ("", ".", "..") for p in parts)
        and relative != REPORT_MANIFEST
        and not parts[0].startswith(_STAGING_PREFIX)
    )


def _refuse_symlink(target: Path, relative: str, why: str) -> None:
    """Refuse a path below ``target`` that has a symbolic link on the way (one line)."""
    link = symlink_in(target, relative)
    if link is not None:
        raise OutputDirectoryError(
            f"output directory {target}: {why}, and {link} is a symbolic link (rebayes writes "
            "none); refusing to write into it"
        )


def check_output_directory(target: Path) -> tuple[str, ...]:
    """Check that a report may be written into ``target``; return the files it may replace.

    ``target`` may be missing, empty, or hold a previous report (a :data:`REPORT_MANIFEST`);
    then the files that manifest lists are returned (empty for a new directory). Call it
    before minutes of fitting, so a refusal comes first.

    Raises
    ------
    OutputDirectoryError
        ``target`` is not a directory, a non-empty directory without a rebayes manifest, or
        its manifest lists a path that is not plainly inside it (one line).
    OSError
        ``target`` cannot be created or written.
    """
    target = Path(target).resolve()
    # A staging folder left by a killed run is ours: it does not make the directory foreign.
    if not check_output_folder(target, "report", REPORT_MANIFEST, ignore=_STAGING_PREFIX):
        return ()
    return _manifest_files(target)


def _write_manifest(target: Path, files: list[str]) -> None:
    payload = {
        "format": MANIFEST_FORMAT,
        "note": "Files written by `rebayes report`; a rebuild replaces exactly these and "
        "leaves every other file alone.",
        "files": sorted(files),
    }
    write_text_atomic(target / REPORT_MANIFEST, json.dumps(payload, indent=1) + "\n")


def _publish(staging: Path, target: Path) -> None:
    """Move the staged files into ``target``, replacing and removing only listed files.

    Every file rebayes puts in ``target`` is listed in the manifest before it arrives (the
    union of old and new lists while files move), so an interrupted publish still leaves a
    directory the next run may rebuild. No file is written or removed through a symbolic
    link.
    """
    old = set(check_output_directory(target))  # again: it may have changed while fitting
    new = sorted(
        p.relative_to(staging).as_posix()
        for p in staging.rglob("*")
        if (p.is_file() or p.is_symlink()) and p.relative_to(staging).as_posix() != STAGING_OWNER
    )
    for relative in new:
        _refuse_symlink(target, relative, f"the report writes {relative}")
        dest = target / relative
        if relative not in old and (dest.exists() or dest.is_symlink()):
            raise OutputDirectoryError(
                f"output directory {target}: {relative} was not written by rebayes (not in "
                f"{REPORT_MANIFEST}); refusing to replace it"
            )
        for parent in PurePosixPath(relative).parents:
            folder = target / parent
            if folder.exists() and not folder.is_dir():
                raise OutputDirectoryError(
                    f"output directory {target}: {parent} is in the way of {relative} "
                    "(not a folder of this report); refusing to replace it"
                )
    _write_manifest(target, sorted(old | set(new)))
    for relative in new:
        dest = target / relative
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / relative, dest)
    for relative in sorted(old - set(new)):
        unlink_inside(target, relative)
    _write_manifest(target, new)


@contextmanager
def staging_directory(target: Path) -> Iterator[Path]:
    """Yield an empty directory whose files replace the previous report in ``target``.

    The block writes the whole report into the staging directory (a hidden folder inside
    ``target``). When it succeeds, each file is moved into ``target`` (a rename, atomic per
    file), files of the previous report that the new one no longer writes are removed, and
    the manifest :data:`REPORT_MANIFEST` lists the new files. Nothing else in ``target`` is
    touched. On an exception nothing in ``target`` changes (a ``target`` created for the
    report is removed again). A staging folder that a killed report left behind is removed
    (:func:`rebayes.folders.remove_dead_staging`).

    Parameters
    ----------
    target : Path
        The report directory: missing, empty, or holding a previous report.

    Raises
    ------
    OutputDirectoryError
        ``target`` holds files rebayes did not write (see :func:`check_output_directory`), or
        the new report would overwrite one of them.
    """
    target = Path(target).resolve()
    check_output_directory(target)
    created = not target.exists()
    target.mkdir(parents=True, exist_ok=True)
    published = False
    try:
        with staging_folder(target, _STAGING_PREFIX) as staging:
            staging.chmod(0o755)  # mkdtemp makes it private; a report directory is for reading
            yield staging
            _publish(staging, target)
            published = True
    finally:
        if created and not published:
            try:
                target.rmdir()  # only when still empty
            except OSError:
                pass
