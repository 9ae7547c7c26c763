"""Benchmark: ``rebayes report --data ivig_rsa`` in fresh processes, cold and cached.

Run ``python benchmarks/bench_report.py [--repeats 3]`` on an otherwise idle machine. With a
private cache folder (``REBAYES_CACHE``) it times, each in a new process as a user meets it:

- cold: empty fit, summary and compiled-model caches (PyTensor's own op cache as it is on
  the machine);
- compiled: the compiled models kept, every fit sampled again;
- cached: every fit and its summaries cached (the median of ``--repeats`` runs).

For each it prints the wall time, the peak resident memory of the process with its child
processes (sampled) and the load average. Targets (issue "Seconds, not minutes"): cold <= 60 s,
cached <= 10 s, peak memory <= 800 MB.
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
from pathlib import Path

REPORT = ["-m", "rebayes", "report", "--data", "ivig_rsa"]


def _tree_rss(pid: int) -> int:
    """Resident memory (kB) of a process and all its descendants, from /proc."""
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            total += next(int(line.split()[1]) for line in status.splitlines()
                          if line.startswith("VmRSS:"))
            for task in Path(f"/proc/{current}/task").iterdir():
                stack += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, StopIteration, ValueError):
            continue  # exited meanwhile
    return total


def _run(output: Path, cache: Path) -> tuple[float, float]:
    """Wall time (s) and peak memory (MB) of one fresh ``rebayes report`` process.

    The peak is the largest sum, sampled every 0.2 s, of the resident memory of the process
    and of any child it runs at the time (a report compiles in a child process), or the
    process's own peak (``os.wait4``) if that is larger.
    """
    shutil.rmtree(output, ignore_errors=True)
    env = {**os.environ, "REBAYES_CACHE": str(cache)}
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, *REPORT, "--output", str(output)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        peak = max(peak, _tree_rss(process.pid))
        time.sleep(0.2)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"rebayes report failed with status {status}")
    return elapsed, max(peak, usage.ru_maxrss) / 1024  # kB on Linux


def _line(label: str, runs: list[tuple[float, float]], load: str) -> None:
    times = [t for t, _ in runs]
    spread = f" ({min(times):.1f}-{max(times):.1f})" if len(runs) > 1 else ""
    print(f"{label:44}{statistics.median(times):7.1f} s{spread:14} peak "
          f"{max(m for _, m in runs):5.0f} MB  n={len(runs)}  load {load}", flush=True)


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


def main() -> int:
    """Time the report cold, with compiled models, and cached; print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of the cached report")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rebayes-report-"))
    cache, output = work / "cache", work / "report"
    try:
        print(f"cores: {os.cpu_count()}; python {sys.version.split()[0]}")
        _line("report, cold (no rebayes cache)", [_run(output, cache)], _load())
        shutil.rmtree(cache / "fits")
        shutil.rmtree(cache / "summaries", ignore_errors=True)
        _line("report, compiled models kept, fits sampled", [_run(output, cache)], _load())
        runs = [_run(output, cache) for _ in range(args.repeats)]
        _line("report, every fit cached", runs, _load())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
