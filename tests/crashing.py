"""Task functions for worker processes that crash on purpose (tests of worker isolation).

Imported by name in spawned workers (the tests folder is on their ``sys.path``); nothing in
``src`` can reach them. Each call is logged to ``$REBAYES_TEST_CALLS`` (one line: pid and
input) so a test can count the attempts.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path
from typing import Any

from rebayes.batch import run_task

#: How an input whose file name starts with "crash" ends its worker (``$REBAYES_TEST_CRASH``).
CRASHES = {"kill": lambda: os.kill(os.getpid(), signal.SIGKILL),
           "segfault": lambda: os.kill(os.getpid(), signal.SIGSEGV),
           "exit": lambda: os._exit(3)}


def _log(what: str) -> None:
    with open(os.environ["REBAYES_TEST_CALLS"], "a", encoding="utf-8") as handle:
        handle.write(f"{os.getpid()} {what}\n")


def _in_worker() -> bool:
    """Whether this is a worker process (never crash the test run itself)."""
    import multiprocessing

    return multiprocessing.parent_process() is not None


def run_task_or_crash(task: Any, priors: Any, settings: Any, batch_seed: int) -> dict:
    """:func:`rebayes.batch.run_task`, except that a "crash*" input ends its worker."""
    _log(Path(task.id).name)
    if Path(task.id).name.startswith("crash") and _in_worker():
        CRASHES[os.environ.get("REBAYES_TEST_CRASH", "kill")]()
    return run_task(task, priors, settings, batch_seed)


def square_or_crash(x: int) -> int:
    """x squared; 13 ends its worker as ``$REBAYES_TEST_CRASH`` says (with ``$REBAYES_TEST_ONCE``
    naming a file: only the first time)."""
    _log(str(x))
    once = os.environ.get("REBAYES_TEST_ONCE")
    if x == 13 and _in_worker() and not (once and os.path.exists(once)):
        if once:
            Path(once).touch()
        CRASHES[os.environ.get("REBAYES_TEST_CRASH", "kill")]()
    return x * x
