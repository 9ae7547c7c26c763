"""A worker that dies fails only its own task; that task is tried once more, alone.

The issue's probe: a task that killed its worker process also failed an innocent task
(``BrokenProcessPool``). The crashing tasks here end their worker on purpose
(``tests/crashing.py``: SIGKILL, SIGSEGV, ``os._exit``); the expected results are the
squares, and the batch rows those of the same inputs run without the crash.
"""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import pandas as pd
import pytest

import crashing
from rebayes import batch
from rebayes.bayes.settings import SamplerSettings
from rebayes.workers import WorkerDeath, run_isolated

DATA = Path(__file__).resolve().parent / "data"
SMALL = SamplerSettings(draws=200, tune=200, min_ess=0)


@pytest.fixture
def calls(tmp_path, monkeypatch) -> Path:
    """The log of every call the workers make (crashing._log)."""
    path = tmp_path / "calls.txt"
    path.touch()
    monkeypatch.setenv("REBAYES_TEST_CALLS", str(path))
    return path


def _run(tasks, workers=3):
    events: list[tuple[str, int, object]] = []
    run_isolated(crashing.square_or_crash, [(x,) for x in tasks], workers,
                 lambda i, result: events.append(("result", tasks[i], result)),
                 lambda i, death: events.append(("death", tasks[i], death)))
    return events


def _attempts(calls: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in calls.read_text().splitlines():
        what = line.split(" ", 1)[1]
        counts[what] = counts.get(what, 0) + 1
    return counts


@pytest.mark.parametrize(("crash", "exitcode", "words"), [
    ("kill", -signal.SIGKILL, "signal 9, Killed"),
    ("segfault", -signal.SIGSEGV, "signal 11, Segmentation fault"),
    ("exit", 3, "exit status 3"),
])
def test_only_the_crashing_task_fails_after_a_second_try_alone(
        calls, monkeypatch, crash, exitcode, words):
    monkeypatch.setenv("REBAYES_TEST_CRASH", crash)
    tasks = list(range(10, 20))
    events = _run(tasks)
    results = {x: r for kind, x, r in events if kind == "result"}
    assert results == {x: x * x for x in tasks if x != 13}  # every innocent task, once
    deaths = [(x, r) for kind, x, r in events if kind == "death"]
    assert deaths == [(13, WorkerDeath(exitcode))]
    assert str(deaths[0][1]) == words
    # Tried twice; the second time alone, after every other task had finished.
    assert _attempts(calls) == {str(x): 2 if x == 13 else 1 for x in tasks}
    assert events[-1][0] == "death"


def test_a_task_whose_worker_died_once_succeeds_when_tried_again(calls, monkeypatch, tmp_path):
    monkeypatch.setenv("REBAYES_TEST_ONCE", str(tmp_path / "crashed-once"))
    events = _run([12, 13, 14], workers=2)
    assert sorted(x for kind, x, _ in events if kind == "result") == [12, 13, 14]
    assert ("result", 13, 169) in events
    assert _attempts(calls)["13"] == 2


def test_a_batch_with_an_input_that_kills_its_worker_fails_only_that_input(
        calls, monkeypatch, tmp_path):
    """End to end: the innocent inputs' rows are those of a batch without the crash."""
    crash = tmp_path / "crash_bcg.csv"
    shutil.copy(DATA / "bcg.csv", crash)
    monkeypatch.setattr(batch, "run_task", crashing.run_task_or_crash)
    inputs = [str(DATA / "bcg.csv"), str(crash), str(DATA / "rare_events.csv")]
    result = batch.run_batch(inputs, tmp_path / "out", workers=2, seed=7, settings=SMALL)
    rows = result.summary.set_index("id")
    assert rows.loc[str(crash), "status"] == "failed"
    assert rows.loc[str(crash), "message"] == (
        f"worker process died (signal 9, Killed) while analysing {crash}")
    assert result.failed == 1 and result.fitted == 3
    assert _attempts(calls) == {"bcg.csv": 1, "crash_bcg.csv": 2, "rare_events.csv": 1}
    # The innocent rows hold what their tasks give when run here, without any crash.
    from rebayes.bayes.priors import DEFAULT_PRIOR, resolve_priors

    priors = resolve_priors([DEFAULT_PRIOR])  # the batch's default
    for task in batch.prepare_tasks(batch.expand_inputs(inputs[::2]), priors, 7, SMALL):
        alone = batch.summary_table([crashing.run_task(task, priors, SMALL, 7)])
        columns = ["status", "pooled_rr", "pooled_rr_low", "pooled_rr_high", "p_benefit", "tau"]
        # A bare CSV declares no direction: its P(benefit) is missing (None in a one-row
        # table, NaN beside the other rows), the same either way.
        def values(row: pd.Series) -> list:
            return [None if pd.isna(v) else v for v in row]

        assert values(rows.loc[task.id, columns]) == values(
            alone.set_index("id").loc[task.id, columns])
    # A rerun tries the crashed input again (it may have been the machine's fault).
    record = (tmp_path / "out" / "results" / (batch.safe_name(str(crash)) + ".json"))
    assert '"retry": true' in record.read_text()
