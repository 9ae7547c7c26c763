"""Benchmark: the whole bias analysis (tests, adjustments, 16-model average) per meta-analysis.

Run ``python benchmarks/bench_bias.py [--repeats N]``. For the shipped IVIG table, magnesium
(dat.egger2001, 16 trials) and hydroxychloroquine (dat.axfors2021, 18 trials), it prints

- in one process (libraries imported): the median wall and CPU time of
  ``rebayes.tools.bias.bias_analysis`` (frequentist part and the robust model average), and of
  the model average alone;
- in fresh processes: ``rebayes bias --data X --json`` (interpreter start, imports, analysis).

The target is <= 10 s per meta-analysis on the project's 2-core machine. The host may be
shared: the load average and the seconds a fixed pure-Python loop takes (the machine's speed
at the time) are printed beside the figures. Printed, never asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASETS = {
    "ivig_rsa": "ivig_rsa",
    "magnesium": str(ROOT / "tests/data/magnesium"),
    "hcq": str(ROOT / "tests/data/hcq"),
}


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _loop_seconds() -> float:
    """Seconds of a fixed pure-Python loop: how fast this host is right now."""
    start = time.perf_counter()
    total = 0
    for i in range(5_000_000):
        total += i % 7
    return time.perf_counter() - start


def _in_process(source: str, repeats: int) -> None:
    import rebayes as rb
    from rebayes.tools.bias import bias_analysis

    trials = rb.load_trials(source)
    bias_analysis(trials)  # imports and caches once
    for label, bayesian in (("whole analysis", True), ("frequentist part only", False)):
        walls, cpus = [], []
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            result = bias_analysis(trials, bayesian=bayesian)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        print(f"  {label:24} wall {statistics.median(walls):6.2f} s "
              f"(n={repeats}, {min(walls):.2f}-{max(walls):.2f})  "
              f"CPU {statistics.median(cpus):6.2f} s  k={result.k}", flush=True)


def _fresh(source: str, repeats: int) -> None:
    times = []
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "REBAYES_CACHE": cache}
        for _ in range(repeats):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "rebayes", "bias", "--data", source,
                            "--json"], check=True, stdout=subprocess.DEVNULL, env=env)
            times.append(time.perf_counter() - start)
    print(f"  {'rebayes bias (fresh)':24} wall {statistics.median(times):6.2f} s "
          f"(n={repeats}, {min(times):.2f}-{max(times):.2f})", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"load {_load()}; pure-Python loop {_loop_seconds():.2f} s", flush=True)
    for name, source in DATASETS.items():
        print(f"{name}:", flush=True)
        _in_process(source, args.repeats)
        _fresh(source, max(1, args.repeats - 1))
    print(f"load {_load()}; pure-Python loop {_loop_seconds():.2f} s", flush=True)


if __name__ == "__main__":
    main()
