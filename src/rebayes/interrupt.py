"""Ctrl-C: stop what runs in the background, in order, before the process exits.

A report compiles in a child process (:mod:`rebayes.bayes.compilation`), samples in a
background thread (:mod:`rebayes.report.ahead`) and writes fits from a writer thread
(:mod:`rebayes.store.fits`). Python does not wait for daemon threads at exit, and it
cannot stop the native code they run: after Ctrl-C, nutpie's sampler threads went on calling
compiled model code while the interpreter was freeing it, and the command ended with a
segmentation fault (exit 139) after printing "interrupted".

So a stop is orderly. :func:`shutdown` (the ``rebayes`` command calls it on Ctrl-C) asks
every background job to stop, then ends the compiling children, waits for the sampling
threads and lets the writer finish the fit it is writing, each within a bound. Long native
calls poll :func:`check` (the sampler every 0.25 s at most), which raises
:class:`Interrupted` once a stop is asked for: for the whole process (:func:`shutdown`) or
only for the job a thread runs (:func:`bind`, an :class:`~rebayes.report.ahead.Ahead` whose
block was left by an error). Code that ends a stopped process early checks
:func:`stop_requested`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

__all__ = [
    "Interrupted",
    "bind",
    "check",
    "on_shutdown",
    "reset",
    "separate_shutdown_steps",
    "shutdown",
    "stop_requested",
    "track",
]

#: Seconds :func:`shutdown` waits, in all, for what runs in the background.
SHUTDOWN_SECONDS = 10.0

# Stages of a shutdown, in the order they are stopped: a killed compiling child ends the
# wait of a thread that needs its model; stopped samplers queue no more fits to write.
CHILDREN, THREADS, WRITER = 0, 1, 2

_STOP = threading.Event()
_LOCAL = threading.local()
_LOCK = threading.Lock()
_STOPPERS: list[tuple[int, Callable[[float], bool]]] = []
_THREADS: list[threading.Thread] = []


class Interrupted(KeyboardInterrupt):  # noqa: N818 - a KeyboardInterrupt, named as one
    """Raised in a job asked to stop (Ctrl-C, or the block it ran for was left by an error).

    A KeyboardInterrupt, so that ``except Exception`` (a batch task, the compiling child)
    never takes it for the job's own failure.
    """


def stop_requested() -> bool:
    """Whether the process, or the job this thread runs, has been asked to stop."""
    token: threading.Event | None = getattr(_LOCAL, "token", None)
    return _STOP.is_set() or (token is not None and token.is_set())


def check() -> None:
    """Raise :class:`Interrupted` if :func:`stop_requested`."""
    if stop_requested():
        raise Interrupted()


@contextlib.contextmanager
def bind(token: threading.Event) -> Iterator[None]:
    """Make :func:`check` in this thread also stop when ``token`` is set (one job's cancel)."""
    previous = getattr(_LOCAL, "token", None)
    _LOCAL.token = token
    try:
        yield
    finally:
        _LOCAL.token = previous


def track(thread: threading.Thread) -> None:
    """Have :func:`shutdown` wait for ``thread`` (a background thread running jobs)."""
    with _LOCK:
        _THREADS[:] = [t for t in _THREADS if t.is_alive()]
        _THREADS.append(thread)


def on_shutdown(stage: int, stop: Callable[[float], bool]) -> None:
    """Register ``stop(deadline)``, called by :func:`shutdown` at ``stage``.

    ``stop`` ends what it owns by ``deadline`` (:func:`time.monotonic`) and returns whether
    it did.
    """
    with _LOCK:
        _STOPPERS.append((stage, stop))


def _join_threads(deadline: float) -> bool:
    with _LOCK:
        threads = [t for t in _THREADS if t is not threading.current_thread()]
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return not any(t.is_alive() for t in threads)


def shutdown(seconds: float = SHUTDOWN_SECONDS) -> bool:
    """Stop every background job in order; return whether all ended within ``seconds``.

    Sets the process-wide stop (:func:`check` raises from then on), then ends the compiling
    children, waits for the tracked threads and for the fit being written. A process for
    which this returns False should end with :func:`os._exit` after flushing its output:
    native code still runs in one of its threads.
    """
    _STOP.set()
    deadline = time.monotonic() + seconds
    with _LOCK:
        stoppers = sorted([*_STOPPERS, (THREADS, _join_threads)], key=lambda item: item[0])
    ended = True
    for _, stop in stoppers:
        ended = stop(deadline) and ended
    return ended


def reset() -> None:
    """Clear a stop asked for by :func:`shutdown`: for a process that goes on (a test)."""
    _STOP.clear()


@contextlib.contextmanager
def separate_shutdown_steps() -> Iterator[None]:
    """Keep the steps registered with :func:`on_shutdown` inside the block apart.

    Steps registered inside are forgotten on leaving it, so a test (or an embedding
    application) can run :func:`shutdown` on its own steps without adding to the process's.
    """
    with _LOCK:
        saved = list(_STOPPERS)
    try:
        yield
    finally:
        with _LOCK:
            _STOPPERS[:] = saved
