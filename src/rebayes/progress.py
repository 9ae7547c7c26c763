"""Progress lines for the long phases of a command: loading, compiling, sampling.

A fit of a 50,000-row table spent minutes loading, compiling and sampling with nothing on
the screen. The command (:func:`reporting`, in :func:`rebayes.cli.main`) turns on one line
per phase that is still running after a few seconds (2 on a terminal, 10 in a log), and
then one a minute while it runs::

    rebayes fit: [10 s] loading the table and building the design
    rebayes fit: [70 s] sampling overall, prior weakly_informative: 35% of the draws

Phases that end sooner print nothing, so a command on a small table stays quiet. The
library marks its phases with :func:`phase`, which does nothing unless a command reports.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TextIO

__all__ = ["phase", "reporting"]

#: Seconds a phase runs before its first line: on a terminal, in a log (not a terminal).
DELAY_TERMINAL, DELAY_LOG = 2.0, 10.0
#: Seconds between two lines of one phase.
REPEAT = 60.0


@dataclass
class _Phase:
    what: str
    detail: Callable[[], str] | None
    start: float = field(default_factory=time.monotonic)
    shown: float | None = None


class _Reporter:
    """Print a line for each phase that outlasts the delay, from a thread of its own."""

    def __init__(self, command: str, stream: TextIO, delay: float) -> None:
        self.command, self.stream, self.delay = command, stream, delay
        self.phases: dict[int, _Phase] = {}
        self.lock = threading.Lock()
        self.ended = threading.Event()
        self.thread = threading.Thread(target=self._run, name="rebayes-progress", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.ended.wait(0.5):
            now = time.monotonic()
            with self.lock:
                due = [p for p in self.phases.values()
                       if now - (p.shown if p.shown is not None else p.start)
                       >= (REPEAT if p.shown is not None else self.delay)]
                for p in due:
                    p.shown = now
            for p in due:
                self._print(p, now)

    def _print(self, p: _Phase, now: float) -> None:
        try:
            detail = p.detail() if p.detail is not None else ""
        except Exception:  # noqa: BLE001 - a progress line is never worth a failure
            detail = ""
        line = f"rebayes {self.command}: [{now - p.start:.0f} s] {p.what}"
        print(line + (f": {detail}" if detail else ""), file=self.stream, flush=True)


_REPORTER: _Reporter | None = None
_IDS = itertools.count()


@contextlib.contextmanager
def reporting(command: str, stream: TextIO | None = None) -> Iterator[None]:
    """Print the progress of long phases (:func:`phase`) while the block runs."""
    global _REPORTER
    stream = stream or sys.stderr
    delay = DELAY_TERMINAL if getattr(stream, "isatty", lambda: False)() else DELAY_LOG
    previous, _REPORTER = _REPORTER, _Reporter(command, stream, delay)
    try:
        yield
    finally:
        _REPORTER.ended.set()
        _REPORTER = previous


@contextlib.contextmanager
def phase(what: str, detail: Callable[[], str] | None = None) -> Iterator[None]:
    """Mark a phase that may take long (a line if it does, while a command reports).

    Parameters
    ----------
    what : str
        What runs, for people: ``"compiling the model"``.
    detail : callable, optional
        Returns how far it is (``"35% of the draws"``), for the lines while it runs.
    """
    reporter = _REPORTER
    if reporter is None:
        yield
        return
    key = next(_IDS)
    with reporter.lock:
        reporter.phases[key] = _Phase(what, detail)
    try:
        yield
    finally:
        with reporter.lock:
            reporter.phases.pop(key, None)
