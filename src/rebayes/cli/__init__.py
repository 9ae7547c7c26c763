"""The ``rebayes`` command: a thin layer over the package, one module per subcommand.

Each subcommand module defines ``register(subparsers)`` (adds its parser and sets
``func``) and a ``run(args) -> int``. Errors a user can fix (bad data, unknown names) are
printed as one line on stderr with exit status 2; nothing is written in that case. A note
the library gives as a :class:`rebayes.errors.RebayesWarning` (model scripts left out) is
one line on stderr too, ``rebayes COMMAND: MESSAGE``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from rebayes import allocator, interrupt, progress
from rebayes.errors import DataNote, RebayesError, RebayesWarning

# Order = order in --help, which follows the workflow a user goes through.
SUBCOMMANDS = (
    "import", "init", "audit", "frequentist", "bias", "fit", "compare",
    "absolute", "cumulative", "credibility", "priormap", "plan", "report", "cache", "batch",
    "trust",
)
# "import" is a Python keyword: its module is import_.
_MODULES = {"import": "import_"}

EPILOG = """\
Workflow:
  rebayes import review.rm5 review/       one dataset folder per dichotomous outcome
                                          (also a RevMan Web data package .zip or a
                                          RevMan 5 analyses export .csv)
  rebayes init my.csv my/                 or: a dataset folder from a CSV (edit dataset.toml)
  rebayes audit --data review/1.1         published figures vs recomputed, with verdicts
  rebayes frequentist --data my/ --by C   RevMan 5 tables (MH/IV/Peto, RR/OR/RD) for any split
  rebayes bias --data my/                 is it distorted? funnel plot, tests, bias models
  rebayes fit --data my/                  overall analysis under every prior (P(benefit), ...)
  rebayes compare C --data my/            one analysis across priors and data variants
  rebayes report --data my/ --output R/   everything -> R/ (HTML, markdown, PNG)
  rebayes trust my/                       let my/models/*.py run (scripts run as you)

Data: --data takes a shipped dataset's name, a dataset folder (trials.csv + dataset.toml:
rebayes init writes one), a bare CSV with columns study,events_treat,n_treat,events_control,
n_control (plus optional covariates; metafor's and meta's column names are read too), or
a review file: a RevMan 5 file, a Cochrane data package .zip or a RevMan 5 CSV export, with
:1.2 to pick an analysis (rebayes import splits it into folders); --variant picks a data
variant from the folder's variants.toml (compose with '+'). A folder's models/*.py scripts
run only if trusted (rebayes trust DIR, or --allow-scripts).
"""


def _requested(argv: list[str] | None) -> tuple[str, ...]:
    """Return the subcommands to register: the one named on the command line, else all of them.

    Each subcommand module imports what it runs (``audit`` loads scipy.stats, ``fit`` PyMC's
    neighbours); registering only the requested one keeps a light command light.
    """
    args = sys.argv[1:] if argv is None else argv
    first = next((a for a in args if not a.startswith("-")), None)
    return (first,) if first in SUBCOMMANDS else SUBCOMMANDS


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """Return the argument parser with its subcommands registered.

    With ``argv``, only the subcommand it names is registered (all of them when it names
    none, e.g. for ``--help``); without, every available one.
    """
    parser = argparse.ArgumentParser(
        prog="rebayes",
        description="Audit a published meta-analysis and re-analyse it in Bayesian terms.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _requested(argv) if argv is not None else SUBCOMMANDS:
        try:
            module = importlib.import_module(f"rebayes.cli.{_MODULES.get(name, name)}")
        except ModuleNotFoundError as exc:
            if exc.name != f"rebayes.cli.{_MODULES.get(name, name)}":
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the ``rebayes`` command and return its exit status."""
    # The command draws figures into files only; the library never picks a backend (a
    # notebook keeps its own), but the command owns its process (and its allocator).
    os.environ.setdefault("MPLBACKEND", "Agg")
    allocator.limit_arenas()  # before any thread starts
    interrupt.reset()  # a command run again in the same process (tests) starts unstopped
    argv = sys.argv[1:] if argv is None else argv
    try:
        # Registering a subcommand imports what it runs: seconds, in which Ctrl-C may come.
        parser = build_parser(argv)
        args = parser.parse_args(argv)
    except KeyboardInterrupt:
        named = _requested(argv)
        return _interrupted(named[0] if len(named) == 1 else "")
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    with _cache_warnings_in_one_line(args.command):
        try:
            with progress.reporting(args.command), _notes_as_lines(args.command):
                # the progress reporter ends before any last line below
                return int(args.func(args) or 0)
        except RebayesError as exc:
            print(f"rebayes {args.command}: error: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            # Unwritable output directory, missing script file, full disk: one line, no
            # traceback.
            where = f": {exc.filename}" if exc.filename else ""
            print(f"rebayes {args.command}: error: {exc.strerror or exc}{where}",
                  file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return _interrupted(args.command)


@contextlib.contextmanager
def _cache_warnings_in_one_line(command: str) -> Iterator[None]:
    """Print the cache's notes and warnings as ``rebayes COMMAND: note: ...`` (one line).

    :mod:`rebayes.store.paths` issues them as warnings (a library user sees Python's usual
    two lines, and may filter them); other warnings are shown as usual.
    """
    from rebayes.store.paths import CacheNote, CacheWarning

    original = warnings.showwarning

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: TextIO | None = None, line: str | None = None) -> None:
        if not issubclass(category, CacheWarning):
            original(message, category, filename, lineno, file, line)
            return
        label = "note" if issubclass(category, CacheNote) else "warning"
        print(f"rebayes {command}: {label}: {message}", file=sys.stderr, flush=True)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = original


def _interrupted(command: str) -> int:
    """Say that Ctrl-C stopped the command, stop what runs in the background; return 130.

    What was being written is discarded (staging folders, atomic files). The background
    work is stopped in order (:mod:`rebayes.interrupt`); a second Ctrl-C meanwhile is
    ignored (the stop is bounded). When something could not be stopped in time, the process
    ends here, without the interpreter's finalisation, which would free code that thread
    may still run.
    """
    print(f"{' '.join(['rebayes', command]).strip()}: interrupted", file=sys.stderr)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main_thread else None
    try:
        ended = interrupt.shutdown()
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)
    if not ended:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
    return 130


@contextmanager
def _notes_as_lines(command: str) -> Iterator[None]:
    """Print the library's notes (:class:`RebayesWarning`) as ``rebayes COMMAND: MESSAGE``.

    What the loader assumed (:class:`DataNote`: metafor's column names, ...) reads
    ``rebayes COMMAND: note: MESSAGE``, once per message.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("once", DataNote)
        shown = warnings.showwarning

        def show(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
            if issubclass(category, RebayesWarning):
                note = "note: " if issubclass(category, DataNote) else ""
                print(f"rebayes {command}: {note}{message}", file=sys.stderr)
            else:
                shown(message, category, *args, **kwargs)

        warnings.showwarning = show
        yield


if __name__ == "__main__":
    sys.exit(main())
