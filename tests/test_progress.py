"""Long phases of a command print a progress line; short ones print nothing.

The issue's probe: a fit of a 50,000-row table ran for minutes (loading, compiling,
sampling) without a line. Here the phases are made to last (a slow design, a model not
compiled yet, many draws) and the delay before the first line is shortened.
"""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pytest

from rebayes import progress
from rebayes.bayes import compilation, fit
from rebayes.cli import main

BCG = Path(__file__).resolve().parent / "data" / "bcg.csv"
LINE = re.compile(r"rebayes fit: \[\d+ s\] (.+)")


@pytest.fixture
def quick(monkeypatch):
    monkeypatch.setattr(progress, "DELAY_LOG", 0.6)
    monkeypatch.setattr(progress, "REPEAT", 1.5)


def test_a_phase_that_lasts_prints_a_line_and_then_one_a_while_and_a_short_one_none(quick):
    stream = io.StringIO()
    with progress.reporting("fit", stream):
        with progress.phase("a short phase"):
            pass
        with progress.phase("sampling", lambda: "35% of the draws"):
            time.sleep(3.5)
    time.sleep(0.6)  # the reporter has ended: nothing more comes
    lines = stream.getvalue().splitlines()
    # The first after the delay, then one every REPEAT seconds (the timing is a thread's).
    assert 2 <= len(lines) <= 3, lines
    assert {LINE.fullmatch(line).group(1) for line in lines} == {"sampling: 35% of the draws"}
    assert int(re.search(r"\[(\d+) s\]", lines[0]).group(1)) >= 1


def test_outside_a_command_a_phase_prints_nothing(capsys):
    with progress.phase("compiling"):
        time.sleep(0.1)
    assert capsys.readouterr().err == ""


def test_a_fit_announces_loading_compiling_and_sampling_when_they_last(
        quick, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("REBAYES_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(compilation, "_COMPILED", {})  # compiled in this process afresh
    real = fit.build_design

    def slow_design(*args, **kwargs):  # as a 50,000-row table's design takes seconds
        time.sleep(1.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(fit, "build_design", slow_design)
    assert main(["fit", "--data", str(BCG), "--prior", "vague", "--draws", "4000"]) == 0
    out, err = capsys.readouterr()
    phases = [LINE.fullmatch(line).group(1) for line in err.splitlines()]
    assert phases[0] == "loading the table and building the design"
    assert "compiling the model (once per model structure on this machine)" in phases
    assert any(re.fullmatch(r"sampling overall, prior vague: \d+% of the draws", p)
               for p in phases)
    assert "prior vague" in out
