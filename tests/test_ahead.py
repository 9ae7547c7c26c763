"""The report's background queue: order, the slot limit, errors and cancellation."""

import threading
import time

import pytest

from rebayes.report.ahead import Ahead


def _until(condition, seconds: float = 10.0) -> bool:
    """Wait for ``condition()`` (the background thread runs on its own time)."""
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def test_jobs_run_one_at_a_time_in_order_and_results_come_back():
    started: list[int] = []

    def job(i: int) -> int:
        started.append(i)
        return i * i

    with Ahead(limit=3) as ahead:
        futures = [ahead.submit(job, i) for i in range(5)]
        assert [ahead.take(f) for f in futures] == [0, 1, 4, 9, 16]
    assert started == [0, 1, 2, 3, 4]


def test_at_most_limit_slot_holders_start_before_they_are_taken():
    started: list[int] = []
    with Ahead(limit=2) as ahead:
        futures = [ahead.submit(started.append, i) for i in range(4)]
        assert _until(lambda: started == [0, 1])
        time.sleep(0.2)
        assert started == [0, 1]          # the third waits for a slot
        ahead.take(futures[0])
        assert _until(lambda: started == [0, 1, 2])
        time.sleep(0.2)
        assert started == [0, 1, 2]
        for f in futures[1:]:
            ahead.take(f)
        assert started == [0, 1, 2, 3]


def test_a_job_without_a_slot_runs_in_turn_even_when_the_slots_are_full():
    started: list[str] = []
    with Ahead(limit=1) as ahead:
        first = ahead.submit(started.append, "fit")
        free = ahead.submit(started.append, "summary", slot=False)
        blocked = ahead.submit(started.append, "next fit")
        assert _until(lambda: started == ["fit", "summary"])
        time.sleep(0.2)
        # The slot is held by "fit" until taken; "summary" needs none, "next fit" waits.
        assert started == ["fit", "summary"]
        ahead.take(first)
        ahead.take(free)
        ahead.take(blocked)
        assert started == ["fit", "summary", "next fit"]


def test_an_error_in_a_job_is_raised_by_take_and_later_jobs_still_run():
    def fail() -> None:
        raise ValueError("data.csv, row 3, field n_treat: not a count")

    with Ahead(limit=1) as ahead:
        bad = ahead.submit(fail)
        good = ahead.submit(lambda: "ok")
        with pytest.raises(ValueError, match="row 3, field n_treat"):
            ahead.take(bad)
        assert ahead.take(good) == "ok"


def test_leaving_the_block_cancels_what_has_not_started():
    begun, release = threading.Event(), threading.Event()
    ran: list[int] = []
    with Ahead(limit=1) as ahead:
        running = ahead.submit(lambda: (begun.set(), release.wait(5), ran.append(0)))
        waiting = ahead.submit(ran.append, 1)
        assert begun.wait(5)
        release.set()
    # The running job finished; the one waiting for a slot never started.
    assert ran == [0]
    assert running.done() and waiting.cancelled()


def test_an_error_in_the_block_does_not_wait_for_the_running_job():
    release = threading.Event()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        with Ahead(limit=1) as ahead:
            ahead.submit(release.wait, 30)
            raise KeyboardInterrupt
    # Ctrl-C during a report returns at once, not after the fit being sampled.
    assert time.monotonic() - start < 5
    release.set()
