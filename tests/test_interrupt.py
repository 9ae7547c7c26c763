"""Ctrl-C: exit 130 with one line, the background stopped in order, nothing half-written.

The issue's probe: SIGINT 20-30 s into a cold report printed "interrupted" and then ended
with a segmentation fault (exit 139): nutpie's threads sampled on, in the report's
background thread, while the interpreter freed the compiled code they ran. And `rebayes
fit` interrupted while sampling died with a ValueError traceback: nutpie's own wait turns
Ctrl-C into the draws made so far, chains of unequal length.
"""

from __future__ import annotations

import _thread
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import rebayes as rb
from conftest import without_progress
from rebayes import interrupt
from rebayes.bayes.settings import SamplerSettings
from rebayes.report.ahead import Ahead
from rebayes.store.fits import flush_cache

DATA = Path(__file__).resolve().parent / "data"
BCG = DATA / "bcg.csv"
# Long enough to be caught sampling (tens of seconds on 13 trials).
LONG = SamplerSettings(draws=20000, tune=1000, chains=2, min_ess=0)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REBAYES_CACHE", str(tmp_path / "cache"))
    yield
    interrupt.reset()


def _spec():
    return rb.AnalysisSpec(name="bcg", data=str(BCG))


def _samplers() -> int:
    """nutpie's sampler threads (native: Python does not list them) now in this process."""
    names = []
    for task in os.listdir("/proc/self/task"):
        try:
            names.append(Path(f"/proc/self/task/{task}/comm").read_text())
        except OSError:
            continue  # ended meanwhile
    return sum(name.startswith("nutpie-worker") for name in names)


def _until(condition, seconds: float = 600.0, step: float = 0.05) -> bool:
    end = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(step)
    return True


def test_waiting_for_the_sampler_ourselves_gives_nutpies_own_draws():
    """rebayes waits for nutpie's sampler itself (to stop it on Ctrl-C): the draws are those
    of nutpie's blocking call with the same seed, so no fit's numbers change."""
    import nutpie
    import pyarrow as pa

    from rebayes.bayes.compilation import compiled_model
    from rebayes.bayes.design import build_design
    from rebayes.bayes.nuts import wait_for_sampler
    from rebayes.bayes.priors import get_prior

    design = build_design(_spec())
    model = compiled_model(design, get_prior("vague"))
    options = dict(draws=200, tune=200, chains=2, seed=5, progress_bar=False,
                   save_warmup=False, return_raw_trace=True, cores=2)
    blocking = nutpie.sample(model, **options).get_arrow_trace()[0]
    waited = wait_for_sampler(nutpie.sample(model, blocking=False, **options)).get_arrow_trace()[0]
    for ours, theirs in zip(waited, blocking, strict=True):
        for name in theirs.column_names:
            assert pa.array(ours.column(name)).equals(pa.array(theirs.column(name))), name


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
def test_ctrl_c_while_sampling_raises_and_keeps_no_partial_fit():
    rb.fit(_spec(), "vague", settings=SamplerSettings(draws=50, tune=50, chains=2, min_ess=0))
    flush_cache()
    sampling = threading.Event()

    def on_progress(done: int) -> None:
        if done > 200 and not sampling.is_set():
            assert _samplers() > 0
            sampling.set()
            _thread.interrupt_main()  # what Ctrl-C does

    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        rb.fit(_spec(), "vague", settings=LONG, on_progress=on_progress)
    assert sampling.is_set()
    assert time.monotonic() - start < 60  # not after the 20,000 draws
    flush_cache()
    assert len(list((Path(os.environ["REBAYES_CACHE"]) / "fits").glob("*.nc"))) == 1
    assert _until(lambda: _samplers() == 0, 10)  # nutpie's sampler threads ended


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="counts threads in /proc")
def test_leaving_an_ahead_block_by_an_error_stops_the_fit_it_samples():
    rb.fit(_spec(), "vague", settings=SamplerSettings(draws=50, tune=50, chains=2, min_ess=0))
    flush_cache()
    sampling = threading.Event()

    def on_progress(done: int) -> None:
        if done > 200:
            sampling.set()

    with pytest.raises(KeyboardInterrupt):
        with Ahead(limit=1) as ahead:
            job = ahead.submit(rb.fit, _spec(), "vague", settings=LONG, on_progress=on_progress)
            assert sampling.wait(600)
            raise KeyboardInterrupt
    thread = ahead.thread
    thread.join(10)
    assert not thread.is_alive()
    assert isinstance(job.exception(), interrupt.Interrupted)
    assert _until(lambda: _samplers() == 0, 10)


def test_shutdown_ends_a_compiling_child_and_the_jobs_in_order():
    from rebayes.bayes import compilation

    with interrupt.separate_shutdown_steps():
        child = compilation.spawn_compiler()
        order: list[str] = []
        interrupt.on_shutdown(interrupt.WRITER, lambda deadline: order.append("writer") or True)
        interrupt.on_shutdown(interrupt.CHILDREN,
                              lambda deadline: order.append(
                                  f"child ended: {child.poll() is not None}") or True)
        assert interrupt.shutdown(seconds=10)
    assert order == ["child ended: True", "writer"]  # killed and waited for, first
    with pytest.raises(interrupt.Interrupted):
        interrupt.check()
    interrupt.reset()
    interrupt.check()


# --- the command, in a process of its own ----------------------------------------------------


def _descendants(pid: int) -> list[int]:
    psutil = pytest.importorskip("psutil")
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _interrupt(command: list[str], cache: Path, ready, tmp_path: Path) -> tuple[int, str, list]:
    """Run ``rebayes COMMAND``, send SIGINT once ``ready(process, stderr so far)``.

    Returns the exit status, stderr and the descendants seen while it ran.
    """
    env = {**os.environ, "REBAYES_CACHE": str(cache)}
    err = tmp_path / "stderr.txt"
    with open(err, "w") as handle:
        process = subprocess.Popen([sys.executable, "-m", "rebayes", *command], env=env,
                                   stdout=subprocess.DEVNULL, stderr=handle, cwd=tmp_path)
    seen: set[int] = set()

    def moment() -> bool:
        seen.update(_descendants(process.pid))
        return process.poll() is not None or ready(process, err.read_text())

    assert _until(moment, 900, step=0.02), "the moment never came"
    assert process.poll() is None, "the command ended before the moment: " + err.read_text()
    process.send_signal(signal.SIGINT)
    process.wait(120)
    return process.returncode, without_progress(err.read_text()), sorted(seen)


def _assert_stopped(code: int, err: str, children: list[int], command: str) -> None:
    assert code == 130, err
    assert err.endswith(f"rebayes {command}: interrupted\n"), err
    assert "Traceback" not in err and "Error" not in err, err
    psutil = pytest.importorskip("psutil")
    assert not [pid for pid in children if psutil.pid_exists(pid)
                and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]


def _compiled(cache: Path) -> bool:
    return any((cache / "compiled").glob("*.pkl"))


def test_the_fit_command_interrupted_while_sampling_exits_130_with_one_line(tmp_path):
    """Fast variant (in the default run): today a ValueError traceback, exit 1."""
    cache = tmp_path / "cache"
    marks: dict[str, float] = {}

    def sampling(process, err) -> bool:
        # The model is compiled in this process; sampling starts right after it is stored.
        if _compiled(cache):
            marks.setdefault("compiled", time.monotonic())
        return time.monotonic() - marks.get("compiled", float("inf")) > 1.5

    code, err, children = _interrupt(
        ["fit", "--data", str(BCG), "--prior", "vague", "--draws", "20000"], cache,
        sampling, tmp_path)
    _assert_stopped(code, err, children, "fit")
    assert err == "rebayes fit: interrupted\n"
    assert not list((cache / "fits").glob("*.nc"))  # no partial fit kept


def _previous_report(folder: Path) -> dict[str, bytes]:
    """A folder holding a previous report (manifest and two files); returns its contents."""
    from rebayes.atomic import MANIFEST_FORMAT, REPORT_MANIFEST

    folder.mkdir()
    (folder / "index.html").write_text("<p>the previous report</p>\n")
    (folder / "notes.txt").write_text("the user's own notes\n")
    (folder / REPORT_MANIFEST).write_text(
        f'{{"format": "{MANIFEST_FORMAT}", "files": ["index.html"]}}\n')
    return _contents(folder)


def _contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>"
            for p in sorted(folder.rglob("*"))}


@pytest.mark.slow  # three cold reports, each interrupted (~1-2 min)
@pytest.mark.parametrize("moment", ["compiling in the child", "sampling", "writing fits"])
def test_a_cold_report_interrupted_exits_130_and_leaves_the_previous_report(tmp_path, moment):
    cache = tmp_path / "cache"
    out = tmp_path / "report"
    before = _previous_report(out)

    marks: dict[str, float] = {}

    def ready(process, err) -> bool:
        now = time.monotonic()
        if moment == "compiling in the child":
            # The child has imported PyMC (~2 s) and compiles the first structure.
            if _descendants(process.pid):
                marks.setdefault("child", now)
            return now - marks.get("child", float("inf")) > 2.5
        if moment == "sampling":
            return _compiled(cache) and "fit: overall" in err
        return any((cache / "fits").glob("*.nc"))

    # NUTS: under auto every bcg analysis is exact, and nothing would compile or sample.
    code, err, children = _interrupt(
        ["report", "--data", str(DATA / "bcg"), "--output", str(out), "--engine", "nuts"],
        cache, ready, tmp_path)
    _assert_stopped(code, err, children, "report")
    if moment == "compiling in the child":
        assert children  # there was a child to stop
    assert _contents(out) == before  # no staging folder left, nothing replaced


