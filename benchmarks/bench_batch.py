"""Benchmark: ``rebayes batch`` over simulated Cochrane-like meta-analyses.

Run ``python benchmarks/bench_batch.py [--n 200]`` on an otherwise idle machine. It simulates
``n`` meta-analyses (k uniform 2-30 trials, arm sizes log-uniform 20-2000, control risk uniform
1%-80% with trial-to-trial spread 0.3 on the logit scale, pooled log OR ~ N(0, 0.5^2),
tau ~ HalfNormal(0.3)), writes them as CSVs in a temporary folder and runs the batch with the
default sampler settings (4 chains x 1000 draws, extended while ESS < 1000) on 1 and 2 local
worker processes and on a 2-worker Dask LocalCluster. For each it prints the wall time,
meta-analyses per minute, meta-analyses per hour per worker (goal: >= 1,000), the median time
of one task inside a worker, and the compile-and-start overhead (wall time minus the tasks'
own time divided among the workers). Fits use a private temporary cache.

``--engine exact`` runs the same batch with the exact engine instead (no sampling: issue 25's
target is >= 50,000 meta-analyses per hour per core), on 1 and 2 local workers, with and
without the bias analysis (``--no-bias``), which takes most of an exact task's time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def simulate(n: int, folder: Path, seed: int = 2024) -> list[Path]:
    """Write ``n`` simulated meta-analyses as CSVs in ``folder``; return their paths."""
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        k = int(rng.integers(2, 31))
        control_risk = rng.uniform(0.01, 0.80)
        mu = rng.normal(0.0, 0.5)
        tau = abs(rng.normal(0.0, 0.3))
        n_arm = np.exp(rng.uniform(np.log(20), np.log(2000), size=(k, 2))).round().astype(int)
        logit_p0 = np.log(control_risk / (1 - control_risk)) + rng.normal(0, 0.3, size=k)
        theta = mu + tau * rng.normal(size=k)
        p_control = 1 / (1 + np.exp(-logit_p0))
        p_treat = 1 / (1 + np.exp(-(logit_p0 + theta)))
        events_treat = rng.binomial(n_arm[:, 0], p_treat)
        events_control = rng.binomial(n_arm[:, 1], p_control)
        lines = ["study,events_treat,n_treat,events_control,n_control"]
        lines += [
            f"T{j + 1},{events_treat[j]},{n_arm[j, 0]},{events_control[j]},{n_arm[j, 1]}"
            for j in range(k)
        ]
        path = folder / f"ma{i:05d}.csv"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def measure(label: str, inputs: list[Path], out: Path, workers: int, **kwargs) -> dict:
    from rebayes.batch import run_batch

    start = time.perf_counter()
    result = run_batch(inputs, out, seed=1, workers=workers, **kwargs)
    wall = time.perf_counter() - start
    ok = result.summary.drop_duplicates("id")
    task_s = [float(s) for s in ok["seconds"].dropna()]
    overhead = max(wall - sum(task_s) / workers, 0.0)
    per_min = len(inputs) / wall * 60
    row = {
        "label": label,
        "n": len(inputs),
        "wall_s": wall,
        "per_min": per_min,
        "per_hour_per_worker": per_min * 60 / workers,
        "task_median_s": statistics.median(task_s) if task_s else float("nan"),
        "overhead_s": overhead,
        "failed": result.failed,
        "gates_failed": int((ok["gates_ok"] == False).sum()),  # noqa: E712
    }
    print(
        f"{label:<28} {row['wall_s']:7.1f} s  {per_min:6.1f}/min  "
        f"{row['per_hour_per_worker']:6.0f}/h/worker  task median {row['task_median_s']:.2f} s"
        f"  start+compile ~{overhead:.0f} s  failed {result.failed}  gates failed "
        f"{row['gates_failed']}",
        flush=True,
    )
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200, help="meta-analyses (default 200)")
    parser.add_argument("--draws", type=int, default=None, help="draws per chain (default 1000)")
    parser.add_argument("--no-dask", action="store_true", help="skip the LocalCluster run")
    parser.add_argument("--engine", choices=("nuts", "exact"), default="nuts",
                        help="what answers (default nuts)")
    args = parser.parse_args(argv)

    from rebayes.bayes.settings import SamplerSettings

    settings = SamplerSettings(**({"draws": args.draws} if args.draws else {}))
    with tempfile.TemporaryDirectory(prefix="rebayes-bench-batch-") as tmp:
        tmp = Path(tmp)
        os.environ["REBAYES_CACHE"] = str(tmp / "cache")
        (tmp / "inputs").mkdir()
        inputs = simulate(args.n, tmp / "inputs")
        how = ("the exact engine" if args.engine == "exact" else
               f"{settings.chains} chains x {settings.draws} draws (+{settings.tune} tuning)")
        print(f"{args.n} simulated meta-analyses, {how}, {os.cpu_count()} CPUs", flush=True)
        measure("1 local worker", inputs, tmp / "w1", 1, settings=settings, engine=args.engine)
        measure("2 local workers", inputs, tmp / "w2", 2, settings=settings, engine=args.engine)
        if args.engine == "exact":
            measure("1 worker, --no-bias", inputs, tmp / "nb1", 1, settings=settings,
                    engine="exact", bias=False)
            measure("2 workers, --no-bias", inputs, tmp / "nb2", 2, settings=settings,
                    engine="exact", bias=False)
        if not args.no_dask and args.engine == "nuts":
            from dask.distributed import LocalCluster

            with LocalCluster(
                n_workers=2,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            ) as cluster:
                measure(
                    "Dask LocalCluster, 2 workers",
                    inputs,
                    tmp / "dask",
                    2,
                    settings=settings,
                    scheduler=cluster.scheduler_address,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
