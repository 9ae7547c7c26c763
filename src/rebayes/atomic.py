"""Write files and whole directories so that a failure leaves the previous version in place."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["atomic_path", "check_writable", "staging_directory", "write_text_atomic"]


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


def check_writable(target: Path) -> None:
    """Fail early, with one line, when ``target`` (a file or directory) cannot be written.

    Creates missing parent directories like the writers do; raises :class:`OSError` with the
    offending path when that or writing beside ``target`` is impossible.
    """
    parent = Path(target).resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.mkdtemp(dir=parent, prefix=f".{Path(target).name}.probe.")
    except OSError as exc:
        raise OSError(exc.errno, f"cannot write output {target}: {exc.strerror}",
                      str(parent)) from None
    os.rmdir(probe)


@contextmanager
def staging_directory(target: Path, keep: tuple[str, ...] = ()) -> Iterator[Path]:
    """Yield an empty directory beside ``target`` that replaces it when the block succeeds.

    On an exception the staging directory is removed and ``target`` is untouched. The swap is
    two renames on the same file system (old aside, new in place), then the old copy is
    deleted.

    Parameters
    ----------
    target : Path
        The directory to (re)create, e.g. ``reports/``.
    keep : tuple of str
        Entries of the old directory that another program writes (e.g. ``calibration``);
        they are copied into the new directory unless the block wrote its own.
    """
    check_writable(target)
    target = Path(target).resolve()
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.staging."))
    staging.chmod(0o755)  # mkdtemp makes it private; a report directory is for reading
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for name in keep:
        source = target / name
        if source.exists() and not (staging / name).exists():
            if source.is_dir():
                shutil.copytree(source, staging / name)
            else:
                shutil.copy2(source, staging / name)
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old."))
        old.rmdir()
        target.rename(old)
    staging.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
