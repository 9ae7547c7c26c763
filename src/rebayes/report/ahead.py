"""Work done ahead of its use, in one background thread.

A report samples its next fits there while the main thread checks and draws the last ones.
Sampling runs in nutpie's own threads, without Python's GIL, while a report's checks and
figures are Python that keeps one core busy: on two cores, doing both at once is what brings
the shipped dataset's cold report near a minute (docs/performance.md). Jobs
run one at a time, so the fits, their seeds and their numbers are those of a serial run. A
job that holds a slot (the default) keeps it until the main thread takes its result: at most
``limit`` of them are started and not yet taken, which bounds the draws held in memory.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from functools import partial
from types import TracebackType
from typing import Any

from rebayes import interrupt

__all__ = ["Ahead"]


class Ahead:
    """Run jobs one at a time, in order, in a background thread, ``limit`` slot-holders ahead.

    Use as a context manager; on leaving it, jobs not started are cancelled and the running
    one is waited for, unless the block is left by an exception: then the running job is
    asked to stop (:func:`rebayes.interrupt.check` raises in its thread: a fit being sampled
    is cancelled within a fraction of a second) and not waited for;
    :func:`rebayes.interrupt.shutdown` waits for it.

    Parameters
    ----------
    limit : int
        Slot-holding jobs that may be started (running or finished) before the main thread
        takes them.

    Examples
    --------
    >>> with Ahead(limit=1) as ahead:
    ...     jobs = [ahead.submit(pow, 2, n) for n in range(3)]
    ...     [ahead.take(job) for job in jobs]
    [1, 2, 4]
    """

    def __init__(self, limit: int = 1) -> None:
        self._queue: deque[tuple[Future[Any], Callable[[], Any], bool]] = deque()
        self._holding: set[Future[Any]] = set()
        self._limit = limit
        self._closed = False
        self._cancel = threading.Event()
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="rebayes-ahead", daemon=True)
        self._thread.start()
        interrupt.track(self._thread)

    @property
    def thread(self) -> threading.Thread:
        """The thread that runs the submitted jobs (ends when the object is closed)."""
        return self._thread

    def submit[T](self, function: Callable[..., T], /, *args: Any, slot: bool = True,
                  **kwargs: Any) -> Future[T]:
        """Queue ``function(*args, **kwargs)``.

        Parameters
        ----------
        function : callable
        *args, **kwargs
            Its arguments.
        slot : bool
            Whether the job holds a slot until taken (jobs whose results are large); one that
            does not starts as soon as the jobs before it have.
        """
        future: Future[T] = Future()
        with self._changed:
            self._queue.append((future, partial(function, *args, **kwargs), slot))
            self._changed.notify_all()
        return future

    def take[T](self, job: Future[T]) -> T:
        """Wait for a job and return its result (or raise its exception); free its slot."""
        try:
            return job.result()
        finally:
            with self._changed:
                self._holding.discard(job)
                self._changed.notify_all()

    def _next(self) -> tuple[Future[Any], Callable[[], Any]] | None:
        """Wait until the next job may start and return it; None once closed."""
        with self._changed:
            while True:
                if self._closed:
                    for future, _, _ in self._queue:
                        future.cancel()
                    return None
                if self._queue:
                    future, function, slot = self._queue[0]
                    if not slot or len(self._holding) < self._limit:
                        self._queue.popleft()
                        if slot:
                            self._holding.add(future)
                        return future, function
                self._changed.wait()

    def _run(self) -> None:
        with interrupt.bind(self._cancel):
            while (job := self._next()) is not None:
                future, function = job
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    future.set_result(function())
                except BaseException as error:  # handed to the main thread by take()
                    future.set_exception(error)

    def __enter__(self) -> Ahead:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        with self._changed:
            self._closed = True
            if kind is not None:
                self._cancel.set()
            self._changed.notify_all()
        if kind is None:
            self._thread.join()
        # On an error (Ctrl-C included) the running job is told to stop, not waited for: a
        # job between two checks may take seconds (rebayes.interrupt.shutdown waits for it).

