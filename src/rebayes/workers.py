"""Worker processes that each run one task at a time: a worker that dies fails only its task.

``concurrent.futures.ProcessPoolExecutor`` fails every task in flight when one of its
workers dies (``BrokenProcessPool``): a segmentation fault in a native library, the
out-of-memory killer or ``os._exit`` while analysing one input failed the innocent inputs
analysed beside it. Here each worker has a pipe of its own and is watched on its own: when
one dies, only the task it was running is affected, and a fresh worker takes its place for
the next task. That task is run once more, alone (when every other task is done and no
other worker runs, so that neither memory pressure nor a neighbour can be the cause), and
only if its worker dies again is it reported as the task that killed its worker.

Workers are long-lived (``spawn``: a clean interpreter each), so what a task leaves in its
process (compiled models) serves the next one. They ignore Ctrl-C: the parent stops them.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

__all__ = ["WorkerDeath", "run_isolated"]

# Seconds a worker may take to end once told to (then it is killed).
_END_SECONDS = 10.0


@dataclass(frozen=True)
class WorkerDeath:
    """A worker process that ended while running a task.

    Attributes
    ----------
    exitcode : int
        The process's exit code: negative for the signal that ended it (``-9``: SIGKILL).
    """

    exitcode: int

    def __str__(self) -> str:
        """``signal 9 (Killed)`` or ``exit status 3``."""
        if self.exitcode < 0:
            number = -self.exitcode
            try:
                name = signal.strsignal(signal.Signals(number)) or ""
            except ValueError:
                name = ""
            return f"signal {number}" + (f", {name}" if name else "")
        return f"exit status {self.exitcode}"


def _serve(connection: Connection, function: Callable[..., Any],
           initializer: Callable[..., None] | None, initargs: Sequence[Any]) -> None:
    """Run ``function(*args)`` for each ``args`` received and send its result back."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer(*initargs)
    while True:
        try:
            args = connection.recv()
        except EOFError:  # the parent has gone
            return
        if args is None:
            return
        connection.send(function(*args))


class _Worker:
    def __init__(self, context: Any, function: Callable[..., Any],
                 initializer: Callable[..., None] | None, initargs: Sequence[Any]) -> None:
        self.connection, child = context.Pipe()
        self.process = context.Process(target=_serve,
                                       args=(child, function, initializer, initargs),
                                       daemon=True)
        self.process.start()
        child.close()
        self.task: int | None = None

    def give(self, index: int, tasks: Sequence[Sequence[Any]]) -> None:
        self.task = index
        try:
            self.connection.send(tuple(tasks[index]))
        except OSError:
            pass  # died just now: seen on the next wait (the task is run again)

    def end(self, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.connection.send(None)
            except OSError:
                pass
        self.process.join(_END_SECONDS)
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join()
        self.connection.close()


def run_isolated(
    function: Callable[..., Any],
    tasks: Sequence[Sequence[Any]],
    workers: int,
    on_result: Callable[[int, Any], None],
    on_death: Callable[[int, WorkerDeath], None],
    *,
    initializer: Callable[..., None] | None = None,
    initargs: Sequence[Any] = (),
) -> None:
    """Run ``function(*tasks[i])`` for every ``i`` on ``workers`` processes.

    Parameters
    ----------
    function : callable
        A module-level function (workers import it by name); it should not raise: an
        exception ends its worker, as a crash does.
    tasks : sequence of argument tuples
    workers : int
        Processes running at once (at least 1).
    on_result : callable
        Called in this process with ``(i, result)`` as each task finishes.
    on_death : callable
        Called with ``(i, WorkerDeath)`` for a task whose worker died twice: once beside
        the others and once alone. Every task gets exactly one of the two calls.
    initializer, initargs
        Run once in each worker before its first task.

    Notes
    -----
    On any exception here (Ctrl-C included) every worker is killed before it propagates.
    """
    context = multiprocessing.get_context("spawn")
    queue: deque[int] = deque(range(len(tasks)))
    again: deque[int] = deque()  # tasks whose worker died: each is run once more, alone
    retried: set[int] = set()
    pool: list[_Worker] = []

    def start() -> _Worker:
        worker = _Worker(context, function, initializer, initargs)
        pool.append(worker)
        return worker

    def died(worker: _Worker) -> None:
        pool.remove(worker)
        worker.process.join(_END_SECONDS)
        death = WorkerDeath(worker.process.exitcode or 0)
        index = worker.task
        worker.end(kill=True)
        if index is None:
            return
        if index in retried:
            on_death(index, death)
        else:
            again.append(index)

    try:
        while queue or again or _busy(pool):
            for worker in [w for w in pool if w.task is None and not w.process.is_alive()]:
                pool.remove(worker)  # died idle (killed from outside): replaced below
                worker.end(kill=True)
            if queue:
                while len(pool) < min(workers, len(queue) + _busy(pool)):
                    start()
                for worker in [w for w in pool if w.task is None]:
                    if queue:
                        worker.give(queue.popleft(), tasks)
            elif again and not _busy(pool):
                # Alone: every other task is done; the rest of the pool has ended.
                index = again.popleft()
                retried.add(index)
                for worker in pool[1:]:
                    pool.remove(worker)
                    worker.end()
                (pool[0] if pool else start()).give(index, tasks)
            ready = wait([w.connection for w in pool] + [w.process.sentinel for w in pool])
            for worker in list(pool):
                if worker.connection not in ready and worker.process.sentinel not in ready:
                    continue
                try:
                    result = worker.connection.recv()
                except (EOFError, OSError):
                    died(worker)
                    continue
                finished, worker.task = worker.task, None
                assert finished is not None
                on_result(finished, result)
    except BaseException:
        for worker in pool:
            worker.end(kill=True)
        raise
    for worker in pool:
        worker.end()


def _busy(pool: list[_Worker]) -> int:
    return sum(w.task is not None for w in pool)
