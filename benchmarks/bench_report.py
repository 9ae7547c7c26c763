"""Benchmark: ``rebayes report`` in fresh processes, cold and cached.

Run ``python benchmarks/bench_report.py [--repeats 3] [--data ivig_rsa] [--engine auto]`` on an
otherwise idle machine (``--data tests/data/hcq`` for 33 trials, ``tests/data/nrt.csv`` for 136
rows; ``--engine`` as the report's, default its own default). With a
private cache folder (``REBAYES_CACHE``) it times, each in a new process as a user meets it:

- cold: empty fit, summary and compiled-model caches (PyTensor's own op cache as it is on
  the machine);
- compiled: the compiled models kept, every fit sampled again;
- cached: every fit and its summaries cached (the median of ``--repeats`` runs).

For each it prints the wall time; the peak memory of the report process (exact), and of the
process with the child that compiles its models (sampled; Pss, which counts the libraries
both map once, and Rss, which counts them twice); the load average and the machine's speed.
It also prints the cache's sizes after the cold run (each NUTS fit file, each exact fit's
derived entry) and the bare import of PyMC + nutpie in a fresh process, the unit of issue 25's
targets. Targets (issue "Seconds, not minutes"): IVIG cold <= 60 s, cached <= 10 s, peak
memory <= 800 MB; issue 25: a 33-trial report from nothing <= 10 x the import (<= 1 GB), a
136-row one <= 20 x (<= 1.5 GB), a cached fit <= 2 MB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def _tree(pid: int) -> list[int]:
    """The process and all its descendants, from /proc."""
    pids, stack = [], [pid]
    while stack:
        current = stack.pop()
        pids.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue  # exited meanwhile
    return pids


def _memory(pid: int) -> tuple[int, int]:
    """Resident (Rss) and proportional (Pss) memory of one process in kB, 0 once it exited.

    Pss divides each shared page among the processes that map it: summed over a process
    tree, it counts the libraries a parent and its child both map once, where a sum of Rss
    counts them once per process.
    """
    values = {"Rss": 0, "Pss": 0}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name = line.split(":")[0]
            if name in values:
                values[name] = int(line.split()[1])
    except (OSError, ValueError):
        pass
    return values["Rss"], values["Pss"]


@dataclass(frozen=True)
class _Run:
    seconds: float
    own_mb: float   # the report process's own peak resident memory (exact: os.wait4)
    pss_mb: float   # peak Pss summed over the process and its children (sampled)
    rss_mb: float   # peak Rss summed over the same (sampled; shared libraries counted twice)


def _run(output: Path, cache: Path, report: list[str]) -> _Run:
    """Time one fresh ``rebayes report`` process and measure its memory.

    A cold report compiles the model in a child process (rebayes.bayes.compilation), so its
    memory is that of the process and of its child, sampled every 0.2 s, as two sums (Pss:
    the memory the two use; Rss: with the pages they share counted twice), beside the
    process's own exact peak.
    """
    shutil.rmtree(output, ignore_errors=True)
    env = {**os.environ, "REBAYES_CACHE": str(cache)}
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, *report, "--output", str(output)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pss = rss = 0
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        sizes = [_memory(p) for p in _tree(process.pid)]
        rss = max(rss, sum(r for r, _ in sizes))
        pss = max(pss, sum(p for _, p in sizes))
        time.sleep(0.2)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"rebayes report failed with status {status}")
    own = usage.ru_maxrss  # kB on Linux
    return _Run(elapsed, own / 1024, max(pss, own) / 1024, max(rss, own) / 1024)


def _line(label: str, runs: list[_Run], load: str) -> None:
    times = [r.seconds for r in runs]
    spread = f" ({min(times):.1f}-{max(times):.1f})" if len(runs) > 1 else ""
    print(f"{label:44}{statistics.median(times):7.1f} s{spread:14} peak: process "
          f"{max(r.own_mb for r in runs):4.0f} MB, with children {max(r.pss_mb for r in runs):4.0f}"
          f" MB Pss ({max(r.rss_mb for r in runs):4.0f} MB Rss)  n={len(runs)}  load {load}",
          flush=True)


def _load() -> str:
    """Load average, and the seconds a fixed pure-Python loop takes in a fresh process.

    The loop is the machine's speed at the time: on a shared host the same loop took 1.2 to
    2.2 s within minutes while the load average stayed under 2 (measured), so a report's
    time is read beside it.
    """
    loop = subprocess.run(
        [sys.executable, "-c", "import time\nt = time.perf_counter()\ns = 0\n"
         "for i in range(20_000_000):\n    s += i\nprint(time.perf_counter() - t)"],
        capture_output=True, text=True, check=True)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{load}; loop {float(loop.stdout):.2f} s"


def _bare_import() -> float:
    """Seconds to import PyMC and nutpie in a fresh process, less an empty one (best of 3)."""
    def run(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        return time.perf_counter() - start

    return min(run("import pymc, nutpie") for _ in range(3)) - min(run("pass") for _ in range(3))


def _sizes(cache: Path) -> None:
    """Print the sizes of the cache's fit files and derived entries."""
    for folder, what in (("fits", "NUTS fit files"), ("summaries", "derived entries")):
        files = [f.stat().st_size for f in (cache / folder).glob("*") if f.is_file()]
        if files:
            print(f"  cache: {len(files)} {what}, largest {max(files) / 1e6:.2f} MB, median "
                  f"{statistics.median(files) / 1e6:.3f} MB", flush=True)


def main() -> int:
    """Time the report cold, with compiled models, and cached; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of the cached report")
    parser.add_argument("--data", default="ivig_rsa", help="the report's --data (ivig_rsa)")
    parser.add_argument("--engine", default=None, help="the report's --engine (its default)")
    parser.add_argument("--skip-compiled", action="store_true",
                        help="skip the run with compiled models kept and fits sampled")
    args = parser.parse_args()
    report = ["-m", "rebayes", "report", "--data", args.data]
    report += ["--engine", args.engine] if args.engine else []
    work = Path(tempfile.mkdtemp(prefix="rebayes-report-"))
    cache, output = work / "cache", work / "report"
    try:
        bare = _bare_import()
        print(f"cores: {os.cpu_count()}; python {sys.version.split()[0]}; "
              f"{' '.join(report[3:])}; bare import of PyMC + nutpie {bare:.2f} s", flush=True)
        cold = _run(output, cache, report)
        _line("report, cold (no rebayes cache)", [cold], _load())
        print(f"  = {cold.seconds / bare:.1f} x the bare import", flush=True)
        _sizes(cache)
        if not args.skip_compiled:
            shutil.rmtree(cache / "fits", ignore_errors=True)
            shutil.rmtree(cache / "summaries", ignore_errors=True)
            _line("report, compiled models kept, fits sampled", [_run(output, cache, report)],
                  _load())
        runs = [_run(output, cache, report) for _ in range(args.repeats)]
        _line("report, every fit cached", runs, _load())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
