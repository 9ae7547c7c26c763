"""Benchmark: start-up and compile figures, each measured in fresh processes.

Run ``python benchmarks/bench_speed.py [--repeats N] [--cold-repeats M]``. Every figure is the
median wall time of separate ``python`` processes (nothing is shared in memory), so it
includes the interpreter's start and every import. The machine may be shared: the load
average is printed next to each figure, and medians over repeats damp the noise, not remove
it. Printed, never asserted.

- ``import pymc, nutpie``: the floor any fit pays;
- ``rebayes fit`` first-ever: empty rebayes cache and an empty PyTensor compile directory
  (``PYTENSOR_FLAGS=base_compiledir=...``), as on a new machine;
- compiling the structure alone (``load_or_compile`` in a process that has imported PyMC),
  first-ever and with PyTensor's op cache filled;
- ``rebayes fit`` cold: empty rebayes cache (no compiled model, no fit), PyTensor's own
  per-operation cache as earlier runs left it;
- ``rebayes fit`` warm: the compiled model on disk, the fit cache empty (so it samples);
- ``rebayes fit`` cached: the fit read from the cache;
- the cached fit's file size; ``rebayes frequentist`` and ``import rebayes``.
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

ROOT = Path(__file__).resolve().parents[1]
FIT = ["-m", "rebayes", "fit", "overall", "--data", "ivig_rsa", "--prior", "skeptical", "--json"]
FREQUENTIST = ["-m", "rebayes", "frequentist", "--data", str(ROOT / "tests/data/bcg")]


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _run(args: list[str], env: dict[str, str] | None = None) -> float:
    """Wall time of one fresh ``python <args>`` process."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, *args],
        check=True,
        stdout=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    return time.perf_counter() - start


def _line(label: str, times: list[float], loads: list[str]) -> None:
    spread = f"{min(times):.2f}-{max(times):.2f}" if len(times) > 1 else ""
    print(
        f"{label:48}{statistics.median(times):7.2f} s  (n={len(times)} {spread})"
        f"  load {loads[0]} .. {loads[-1]}",
        flush=True,
    )


# Times load_or_compile alone (empty rebayes cache: it compiles) after importing PyMC.
_COMPILE = """
import time, pymc, nutpie, nutpie.compile_pymc
from rebayes.bayes.compilation import load_or_compile
from rebayes.bayes.design import build_design
from rebayes.bayes.priors import get_prior
from rebayes.bayes.analyses import resolve_spec
design = build_design(resolve_spec("overall", "ivig_rsa"))
start = time.perf_counter()
load_or_compile(design, get_prior("skeptical"))
print(time.perf_counter() - start)
"""


def _compile_seconds(env: dict[str, str]) -> float:
    """Seconds one fresh process spends compiling the IVIG binomial structure."""
    out = subprocess.run([sys.executable, "-c", _COMPILE], check=True, capture_output=True,
                         text=True, env={**os.environ, **env})
    return float(out.stdout.split()[-1])


def _measure(label: str, repeats: int, run, prepare=None) -> float:
    times, loads = [], []
    for _ in range(repeats):
        if prepare is not None:
            prepare()
        loads.append(_load())
        times.append(run())
    loads.append(_load())
    _line(label, times, loads)
    return statistics.median(times)


def main() -> int:
    """Run every measurement and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="processes per cheap figure")
    parser.add_argument("--cold-repeats", type=int, default=2, help="processes per compilation")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="rebayes-speed-"))
    warm_cache = work / "warm"
    try:
        print(f"cores: {os.cpu_count()}; python {sys.version.split()[0]}; load average "
              f"(1, 5, 15 min) shown per figure; medians of fresh processes")
        bare = _measure(
            "import pymc, nutpie", args.repeats, lambda: _run(["-c", "import pymc, nutpie"])
        )
        counter = iter(range(10**6))

        def first_ever() -> float:
            i = next(counter)
            pytensor = work / f"pytensor{i}"
            return _run(FIT, {"REBAYES_CACHE": str(work / f"first{i}"),
                              "PYTENSOR_FLAGS": f"base_compiledir={pytensor}"})

        _measure("rebayes fit, first-ever (no cache at all)", args.cold_repeats, first_ever)

        def first_compile() -> float:
            # The compilation alone, in a process that has imported PyMC and nutpie already.
            i = next(counter)
            return _compile_seconds({"REBAYES_CACHE": str(work / f"first{i}"),
                                     "PYTENSOR_FLAGS": f"base_compiledir={work / f'pt{i}'}"})

        _measure("compiling the structure, first-ever (no cache)", args.cold_repeats,
                 first_compile)
        _measure("compiling the structure, PyTensor's op cache filled", args.cold_repeats,
                 lambda: _compile_seconds({"REBAYES_CACHE": str(work / f"c{next(counter)}")}))

        def cold() -> float:
            return _run(FIT, {"REBAYES_CACHE": str(work / f"cold{next(counter)}")})

        cold_s = _measure("rebayes fit, cold (compile + sample)", args.cold_repeats, cold)
        # Fill the compile cache once, then time fits that load it but must sample.
        _run(FIT, {"REBAYES_CACHE": str(warm_cache)})

        def clear_fits() -> None:
            shutil.rmtree(warm_cache / "fits", ignore_errors=True)

        warm_s = _measure(
            "rebayes fit, warm (compiled model on disk)",
            args.repeats,
            lambda: _run(FIT, {"REBAYES_CACHE": str(warm_cache)}),
            prepare=clear_fits,
        )
        _run(FIT, {"REBAYES_CACHE": str(warm_cache)})
        _measure(
            "rebayes fit, fit read from the cache",
            args.repeats,
            lambda: _run(FIT, {"REBAYES_CACHE": str(warm_cache)}),
        )
        sizes = [p.stat().st_size for p in (warm_cache / "fits").glob("*.nc")]
        compiled = [p.stat().st_size for p in (warm_cache / "compiled").glob("*.pkl")]
        print(f"{'cached fit file (4 chains x 1000 draws)':48}{max(sizes) / 1e6:7.2f} MB")
        print(f"{'compiled model file':48}{max(compiled) / 1e6:7.2f} MB")
        _measure("rebayes frequentist --data tests/data/bcg", args.repeats,
                 lambda: _run(FREQUENTIST))
        _measure("import rebayes", args.repeats, lambda: _run(["-c", "import rebayes"]))
        print()
        print(f"warm fit / bare import: {warm_s / bare:.2f} (target <= 2); "
              f"cold fit / warm fit: {cold_s / warm_s:.1f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
