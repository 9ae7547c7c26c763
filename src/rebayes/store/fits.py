"""Fit files on disk: where a fit is cached, writing it in the background, reading it back.

A fit is saved as NetCDF under ``<cache>/fits/<key>.nc`` (:func:`fit_path`;
:func:`rebayes.store.paths.cache_dir`: ``$REBAYES_CACHE`` or the user cache directory, the key:
:func:`rebayes.bayes.fit.fit_key`). The file holds the sampled groups only
(:data:`STORED_GROUPS`: posterior, sample statistics, observed and constant data,
zlib-compressed) with a checksum of their values; :func:`load_fit` checks it and returns
those groups, from which :func:`rebayes.bayes.trees.with_derived_groups` recomputes the
others in a few milliseconds, so a cached fit is identical to a fresh one.

Fits are written by one background thread (:func:`save_in_background`), started by the first
save, so that writing one does not hold up sampling the next; :func:`flush_cache` waits for
it. A write that fails (full disk, read-only cache) is one warning per process: the fit is in
memory, only its reuse is lost.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from rebayes import interrupt
from rebayes.atomic import atomic_path
from rebayes.store.paths import (
    entry_owner_problem,
    fits_dir,
    make_folder,
    remove_empty_folder,
    warn_unwritable,
)

__all__ = [
    "STORED_GROUPS",
    "DamagedFitError",
    "fit_path",
    "flush_cache",
    "is_fit_file",
    "load_fit",
    "read_failure",
    "save_in_background",
]


#: Groups a fit file stores; :func:`rebayes.bayes.trees.derived_groups` recomputes the others.
STORED_GROUPS = ("posterior", "sample_stats", "observed_data", "constant_data")


def fit_path(key: str) -> Path:
    """Return where the fit cache keeps the fit of this :func:`~rebayes.bayes.fit.fit_key`."""
    return fits_dir() / f"{key}.nc"


# Every NetCDF-4 (HDF5) file starts with this signature.
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def is_fit_file(path: Path) -> bool:
    """Whether ``path`` is there and starts as a fit file does (else it is refitted)."""
    try:
        with path.open("rb") as handle:
            return handle.read(len(_HDF5_SIGNATURE)) == _HDF5_SIGNATURE
    except OSError:
        return False


def _stored(tree: xr.DataTree) -> tuple[xr.DataTree, dict[str, Any]]:
    """Return the groups a fit file keeps, and their encoding (zlib with byte shuffling)."""
    stored = xr.DataTree.from_dict({name: tree[name].to_dataset() for name in STORED_GROUPS})
    stored.attrs = dict(tree.attrs)
    compress = {"zlib": True, "complevel": 4, "shuffle": True}
    encoding = {
        f"/{name}": {var: compress for var in stored[name].data_vars} for name in STORED_GROUPS
    }
    return stored, encoding


# The HDF5 library under netCDF4 is not thread-safe, and netCDF4 releases the GIL around it:
# a fit written by the cache writer while another is read crashed the process (segfault in
# the tests). Every read and write of a fit file holds this lock.
_NETCDF_LOCK = threading.Lock()


# Root attribute of a fit file: SHA-256 of its values (:func:`_content_digest`).
_DIGEST_ATTR = "rebayes_content_sha256"


def _content_digest(tree: xr.DataTree) -> str:
    """SHA-256 of every value a fit file stores: each variable's name, dims and values, attrs.

    Written into the file and compared on reading (:func:`load_fit`): damage that HDF5
    itself reads without complaint (a label, an uncompressed array) is found too.
    """

    def plain_attrs(attrs: dict[Any, Any]) -> str:
        def item(value: Any) -> Any:
            if isinstance(value, np.ndarray):
                return value.tolist()
            return value.item() if isinstance(value, np.generic) else value

        return json.dumps({str(k): item(v) for k, v in attrs.items() if k != _DIGEST_ATTR},
                          sort_keys=True, default=str)

    digest = hashlib.sha256(plain_attrs(tree.attrs).encode())
    for group in STORED_GROUPS:
        dataset = tree[group].to_dataset()
        digest.update(f"{group}:{plain_attrs(dataset.attrs)}".encode())
        for name in sorted(map(str, dataset.variables)):
            values = np.asarray(dataset[name].values)
            digest.update(json.dumps([name, list(map(str, dataset[name].dims)),
                                      list(values.shape)]).encode())
            if values.dtype.kind in "OUS":
                digest.update("\0".join(map(str, values.ravel())).encode())
            else:
                digest.update(np.ascontiguousarray(values).tobytes())
    return digest.hexdigest()


def _save_atomic(tree: xr.DataTree, path: Path) -> None:
    """Write a fit as NetCDF: to a temporary file first, then rename over the target.

    Only :data:`STORED_GROUPS` are written (:func:`load_fit` recomputes
    the rest), with their checksum.
    """
    stored, encoding = _stored(tree)
    stored.attrs[_DIGEST_ATTR] = _content_digest(stored)
    remove_empty_folder(path)
    with atomic_path(path) as tmp, _NETCDF_LOCK:
        stored.to_netcdf(tmp, engine="netcdf4", encoding=encoding)


def _save_or_warn(tree: xr.DataTree, path: Path) -> None:
    """Write a fit to the cache; a failure is one warning per process, never an error.

    HDF5 reports a full disk as ``RuntimeError('NetCDF: HDF error')``, hence any exception.
    """
    try:
        _save_atomic(tree, path)
    except Exception as exc:  # noqa: BLE001 - the fit is in memory: only its reuse is lost
        warn_unwritable(exc)


# Writing a fit takes ~35 ms with netCDF4's C library (h5netcdf, pure Python over h5py, took
# ~110 ms and held the GIL that long: 14 s of a cold report); one background writer keeps
# it off the path of the next fit. It is started by the first save, not on import: most
# processes that import this module (to read fits, or only for the names) write none. Its
# thread is joined when the interpreter exits, and flush_cache() waits for it.
_WRITER: ThreadPoolExecutor | None = None
_PENDING: list[tuple[Path, Future[None]]] = []
# A report samples in a background thread (rebayes.report.ahead) while the main thread
# releases fits: both touch the queue (and the first save starts the writer under it).
_PENDING_LOCK = threading.Lock()


def save_in_background(tree: xr.DataTree, path: Path) -> None:
    """Queue a fit to be written to ``path`` by the writer thread; :func:`flush_cache` waits.

    A cache folder that cannot be made is one warning (as a failed write is), not an error.
    """
    global _WRITER
    try:
        make_folder(path.parent)
    except OSError as exc:
        warn_unwritable(exc)
        return
    with _PENDING_LOCK:
        if _WRITER is None:
            _WRITER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rebayes-cache")
        _PENDING.append((path, _WRITER.submit(_save_or_warn, tree, path)))


def _stop_writer(deadline: float) -> bool:
    """On Ctrl-C (:func:`rebayes.interrupt.shutdown`): write what is queued until ``deadline``.

    Each queued fit is whole (sampled to the end), and writing one takes tens of
    milliseconds; what is not written by then is dropped (sampled again next time).
    """
    with _PENDING_LOCK:
        pending = [future for _, future in _PENDING]
    for future in pending:
        try:
            future.result(timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            break
        except Exception:  # noqa: BLE001 - a failed write only costs a refit
            pass
    for future in pending:
        future.cancel()
    return all(future.done() for future in pending)


interrupt.on_shutdown(interrupt.WRITER, _stop_writer)


def flush_cache() -> None:
    """Wait until every fit queued for the cache is written.

    A failed write only costs a refit later: it is one warning (a
    :class:`~rebayes.store.paths.CacheWarning`, once per process), not an error.
    """
    with _PENDING_LOCK:
        pending = list(_PENDING)
    for _, future in pending:
        future.result()
    with _PENDING_LOCK:
        # Another thread may have waited for some of them too: drop only what is still queued.
        _PENDING[:] = [item for item in _PENDING if item not in pending]


class DamagedFitError(ValueError):
    """A fit file that reads, but not as it was written (its checksum differs)."""


def load_fit(path: str | Path) -> xr.DataTree:
    """Read a saved fit's stored groups into memory, checked (the file is closed on return).

    The groups not stored are recomputed from these by
    :func:`rebayes.bayes.trees.with_derived_groups`.

    Raises
    ------
    DamagedFitError
        The file's values are not those written (checksum), it has no checksum (written by
        an older rebayes), or another user could have changed it.
    OSError, RuntimeError, ValueError
        The file cannot be read as NetCDF (HDF5 reports damage as ``RuntimeError``).
    """
    why = entry_owner_problem(os.stat(path))
    if why:
        raise DamagedFitError(f"it {why}")
    with _NETCDF_LOCK, xr.open_datatree(path, engine="netcdf4") as tree:
        stored = tree.load().copy()
    written = stored.attrs.pop(_DIGEST_ATTR, None)
    if written is None:
        raise DamagedFitError("no checksum: written by an older rebayes")
    if written != _content_digest(stored):
        raise DamagedFitError("damaged: its checksum does not match")
    return stored


def read_failure(exc: BaseException) -> str:
    """Return one line saying why a cache file was not read.

    For the note a damaged or unreadable file gets
    (:func:`rebayes.store.paths.note_unreadable`).

    Parameters
    ----------
    exc : BaseException
        What reading it raised (:func:`load_fit`).
    """
    if isinstance(exc, DamagedFitError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
