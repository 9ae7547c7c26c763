"""Benchmark: the exact engine (rebayes.bayes.exact) against the targets of issue 25.

Run ``python benchmarks/bench_exact.py [--tables 200] [--repeats 5]`` on an otherwise idle
machine. Every time is also printed as a ratio to the bare import of PyMC + nutpie measured in
a fresh process in the same run, so that runs on machines of different speed (or load)
compare. It measures, each in a fresh process:

- ``rebayes fit --engine exact`` (IVIG under its three priors; hcq under one), the whole
  command; target <= 1 s;
- the bare import of PyMC + nutpie (the reference), and of ``rebayes.bayes.exact``
  (``python -X importtime``: the package's own modules, and in total with what
  ``import rebayes`` loads);
- one exact fit in-process, first call and median of ``--repeats`` calls, with P(d > 0), the
  95% interval and tau's median read from it: IVIG's overall analysis (10 rows), hcq (33 rows,
  tests/data/hcq) and a simulated table of 136 rows; targets: <= 50 ms for 10-30 trials;
- meta-regressions and separate effects (2 and 3 coefficients): the fit and every
  coefficient's marginal; more than 3 coefficients are beyond the engine's reach;
- the throughput on ``--tables`` simulated Cochrane-like meta-analyses (the generator of
  benchmarks/bench_batch.py: 2-30 trials, arms of 20-2000, control risk 1-80%), one process:
  read the CSV, build the design, fit, read P(d > 0) and the intervals; target >= 50,000
  meta-analyses per hour per core (~70 ms each).
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
sys.path.insert(0, str(ROOT / "benchmarks"))


def fresh(code: str) -> float:
    """Wall time of ``python -c code`` in a fresh process, less an empty interpreter's."""

    def run(body: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", body], check=True, capture_output=True)
        return time.perf_counter() - start

    empty = min(run("pass") for _ in range(3))
    return min(run(code) for _ in range(3)) - empty


def import_times() -> tuple[float, float]:
    """(own modules, total) import time of rebayes.bayes.exact from ``-X importtime``."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import rebayes.bayes.exact"],
                         check=True, capture_output=True, text=True).stderr
    own = total = 0.0
    for line in out.splitlines():
        parts = line.split("|")
        if len(parts) != 3 or not parts[0].startswith("import time:"):
            continue
        try:
            self_us, cumulative = float(parts[0].split(":")[1]), float(parts[1])
        except ValueError:
            continue
        name = parts[2].strip()
        if name.startswith("rebayes.bayes.exact"):
            own += self_us
        if name == "rebayes.bayes.exact":
            total = cumulative
    return own / 1e6, total / 1e6


def simulated_design(rows: int, seed: int = 136):
    """One simulated table of ``rows`` trials (bench_batch's generator's distributions)."""
    import numpy as np

    from rebayes.bayes.design import build_design
    from rebayes.bayes.spec import AnalysisSpec

    rng = np.random.default_rng(seed)
    n_arm = np.exp(rng.uniform(np.log(20), np.log(2000), size=(rows, 2))).round().astype(int)
    logit_p0 = np.log(0.2 / 0.8) + rng.normal(0, 0.3, size=rows)
    theta = -0.2 + 0.2 * rng.normal(size=rows)
    events_treat = rng.binomial(n_arm[:, 0], 1 / (1 + np.exp(-(logit_p0 + theta))))
    events_control = rng.binomial(n_arm[:, 1], 1 / (1 + np.exp(-logit_p0)))
    folder = Path(tempfile.mkdtemp(prefix="rebayes-bench-exact-"))
    lines = ["study,events_treat,n_treat,events_control,n_control"]
    lines += [f"T{j + 1},{events_treat[j]},{n_arm[j, 0]},{events_control[j]},{n_arm[j, 1]}"
              for j in range(rows)]
    (folder / "t.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return build_design(AnalysisSpec(name="overall", data=str(folder / "t.csv")))


def read_answers(post) -> None:
    d = post.coefficient("d")
    d.prob_greater(0.0)
    d.quantiles()
    post.tau.median  # noqa: B018 - computed for the timing


def time_fit(design, prior, repeats: int) -> tuple[float, float, float]:
    from rebayes.bayes.exact import exact_posterior

    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        post = exact_posterior(design, prior)
        read_answers(post)
        times.append(time.perf_counter() - start)
    return times[0], statistics.median(times[1:]), post.coefficient("d").prob_greater(0.0)


def throughput(n: int) -> tuple[float, int]:
    """Seconds per table over ``n`` simulated tables (read, design, fit, answers)."""
    import bench_batch

    import rebayes as rb
    from rebayes.bayes.design import build_design
    from rebayes.bayes.exact import BeyondReach, exact_posterior
    from rebayes.bayes.spec import AnalysisSpec

    prior = rb.get_prior("weakly_informative")
    with tempfile.TemporaryDirectory(prefix="rebayes-bench-exact-") as tmp:
        paths = bench_batch.simulate(n, Path(tmp))
        failed = 0
        start = time.perf_counter()
        for path in paths:
            try:
                design = build_design(AnalysisSpec(name="overall", data=str(path)))
                read_answers(exact_posterior(design, prior))
            except BeyondReach:
                failed += 1
        return (time.perf_counter() - start) / n, failed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=200, help="simulated tables (200)")
    parser.add_argument("--repeats", type=int, default=5, help="repeats per fit (5)")
    args = parser.parse_args(argv)
    os.environ.setdefault("REBAYES_CACHE", tempfile.mkdtemp(prefix="rebayes-bench-cache-"))

    reference = fresh("import pymc, nutpie")
    print(f"{os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.1f}", flush=True)
    print(f"reference: bare import of PyMC + nutpie, fresh process  {reference:7.3f} s  (1.000)")
    own, total = import_times()
    print(f"import rebayes.bayes.exact: own modules {own * 1e3:6.1f} ms ({own / reference:.4f}),"
          f" in all {total * 1e3:6.1f} ms ({total / reference:.3f})")
    fit_import = fresh("import rebayes.bayes.exact, rebayes.bayes.design")
    print(f"import exact engine + design (pandas), fresh process    {fit_import:7.3f} s "
          f"({fit_import / reference:.3f})", flush=True)

    for label, argv in (("IVIG, 3 priors", "['fit', '--data', 'ivig_rsa', '--engine', 'exact']"),
                        ("hcq (33 rows), 1 prior",
                         f"['fit', '--data', {str(ROOT / 'tests/data/hcq')!r}, '--engine', "
                         "'exact', '--prior', 'weakly_informative']")):
        command = fresh(f"import rebayes.cli, io, contextlib\n"
                        f"with contextlib.redirect_stdout(io.StringIO()):\n"
                        f"    rebayes.cli.main({argv})")
        print(f"rebayes fit --engine exact, {label:<22}, fresh process {command:7.3f} s "
              f"({command / reference:.3f}; target <= 1 s)", flush=True)

    import rebayes as rb
    from rebayes.bayes.design import build_design
    from rebayes.bayes.spec import AnalysisSpec

    prior = rb.get_prior("weakly_informative")
    designs = {
        "IVIG overall (10 rows)": build_design(AnalysisSpec(name="overall", data="ivig_rsa")),
        "hcq (33 rows)": build_design(AnalysisSpec(name="overall",
                                                   data=str(ROOT / "tests/data/hcq"))),
        "simulated (136 rows)": simulated_design(136),
    }
    for label, design in designs.items():
        first, median, p = time_fit(design, prior, args.repeats)
        print(f"one exact fit, {label:<24} first {first * 1e3:7.1f} ms ({first / reference:.4f})"
              f"  median {median * 1e3:7.1f} ms ({median / reference:.4f})  P(d > 0) {p:.5f}",
              flush=True)
    bcg = str(ROOT / "tests/data/bcg")
    from rebayes.bayes.analyses import resolve_spec

    covariate_designs = {
        "p=2 bcg latitude (slope)": build_design(AnalysisSpec(
            name="lat", data=bcg, covariates=("ablat",), effect="contrast")),
        "p=2 IVIG timing (2 levels)": build_design(resolve_spec("timing", "ivig_rsa")),
        "p=2 IVIG RSA type (strata)": build_design(resolve_spec("rsa_type", "ivig_rsa")),
        "p=3 bcg allocation (3 levels)": build_design(AnalysisSpec(
            name="alloc", data=bcg, covariates=("alloc",), effect="contrast")),
        "p=3 bcg separate (3 groups)": build_design(AnalysisSpec(
            name="sep", data=bcg, subgroup=("alloc",), effect="separate")),
    }
    for label, design in covariate_designs.items():
        from rebayes.bayes.exact import exact_posterior

        start = time.perf_counter()
        post = exact_posterior(design, prior)
        for name in post.names:
            post.coefficient(name).quantiles()
        post.tau.median  # noqa: B018 - computed for the timing
        took = time.perf_counter() - start
        print(f"fit and every coefficient's marginal, {label:<30} {took * 1e3:8.1f} ms "
              f"({took / reference:.4f})", flush=True)
    per_table, failed = throughput(args.tables)
    print(f"throughput, {args.tables} simulated tables, one process: {per_table * 1e3:.1f} ms "
          f"per table ({per_table / reference:.4f}), {3600 / per_table:,.0f} per hour per core"
          f" (target 50,000){'; beyond reach: ' + str(failed) if failed else ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
