"""Benchmark: every IVIG analysis under every built-in prior, from a cold process.

Run ``python benchmarks/bench_fit.py`` (or ``make bench``) on an otherwise idle machine. It
prints, per analysis and prior, the wall time of the fit, and then

- cold time: from a fresh process (imports excluded, reported separately) to the first fit;
- warm time per further prior (a different prior on an already compiled structure);
- the full set (all analyses x all priors) cold, cache writes included;
- ESS per second of sampling, minimum bulk/tail ESS over every reported quantity, and the
  number of divergences;
- ratios to reference figures measured on the same 2-core machine, 4 chains x 1000 draws of
  this model on the 10 trials: brms 83 s cold and 3.6 s per further prior;
  ``pm.sample(nuts_sampler="nutpie")`` 14 s cold and 6 s per further prior.

Fits go to a temporary cache directory, so nothing is read from an earlier run.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

T_START = time.perf_counter()
import nutpie  # noqa: E402, F401  (imported here so the cold time below is compile + sample)
import pymc  # noqa: E402, F401

import rebayes as rb  # noqa: E402
from rebayes.bayes.compilation import is_compiled  # noqa: E402
from rebayes.bayes.design import build_design  # noqa: E402
from rebayes.bayes.fit import fit  # noqa: E402
from rebayes.bayes.model import structure_key  # noqa: E402
from rebayes.bayes.summary import summarize  # noqa: E402
from rebayes.store.fits import flush_cache  # noqa: E402

IMPORT_S = time.perf_counter() - T_START

BRMS = {"cold": 83.0, "warm": 3.6}
PM_NUTPIE = {"cold": 14.0, "warm": 6.0}
ANALYSES = (
    "overall",
    "rsa_type",
    "timing",
    "timing_within_type",
    "placebo",
    "normal_approximation",
)


def main() -> int:
    """Run the benchmark and print its figures."""
    os.environ["REBAYES_CACHE"] = tempfile.mkdtemp(prefix="rebayes-bench-")
    priors = list(rb.PRIOR_SETS)
    rows = []
    structures = set()  # the model structures compiled in this process
    t_all = time.perf_counter()
    for analysis in ANALYSES:
        spec = rb.resolve_spec(analysis, "ivig_rsa")
        design = build_design(spec)
        structures.add(structure_key(design))
        for prior in priors:
            compiles = not is_compiled(design)
            t0 = time.perf_counter()
            result = fit(spec, prior, design=design)
            seconds = time.perf_counter() - t0
            summary = summarize(result.tree)
            stats = result.tree["sample_stats"]
            rows.append(
                dict(
                    analysis=spec.name,
                    prior=prior,
                    seconds=seconds,
                    compiled=compiles,
                    draws=int(stats.sizes["draw"]),
                    ess_bulk=summary.diagnostics.ess_bulk_min,
                    ess_tail=summary.diagnostics.ess_tail_min,
                    rhat=summary.diagnostics.rhat_max,
                    divergences=summary.diagnostics.divergences,
                    lowest=summary.diagnostics.lowest_ess,
                )
            )
            r = rows[-1]
            print(
                f"{spec.name:22}{prior:28}{seconds:7.2f} s{' (compile)' if compiles else '':11}"
                f"draws {r['draws']:5d}  ESS bulk {r['ess_bulk']:6.0f} ({r['lowest']})  "
                f"tail {r['ess_tail']:6.0f}  R-hat {r['rhat']:.3f}  div {r['divergences']}",
                flush=True,
            )
    flush_cache()
    total = time.perf_counter() - t_all

    cold = rows[0]["seconds"]
    warm = [r["seconds"] for r in rows if not r["compiled"]]
    warm_median = statistics.median(warm)
    compiles = [r["seconds"] for r in rows if r["compiled"]]
    ess_per_s = [r["ess_bulk"] / r["seconds"] for r in rows if not r["compiled"]]
    print()
    print(f"imports (rebayes, PyMC, nutpie)          {IMPORT_S:6.1f} s")
    print(
        f"cold: first fit (compile + sample)       {cold:6.1f} s   "
        f"(brms/rebayes = {BRMS['cold'] / cold:.1f}; "
        f"pm.sample+nutpie/rebayes = {PM_NUTPIE['cold'] / cold:.1f})"
    )
    print(
        f"compilations                             {len(compiles):6d}    "
        f"(structures: {len(structures)})"
    )
    print(
        f"warm: per further prior, median          {warm_median:6.2f} s   "
        f"(max {max(warm):.2f} s; brms/rebayes = {BRMS['warm'] / warm_median:.1f}; "
        f"pm.sample+nutpie/rebayes = {PM_NUTPIE['warm'] / warm_median:.1f})"
    )
    print(
        f"full set cold: {len(ANALYSES)} analyses x {len(priors)} priors "
        f"= {len(rows)} fits  {total:6.1f} s   (+ imports {IMPORT_S:.1f} s)"
    )
    print(
        f"ESS bulk min per second of fit (warm)    {statistics.median(ess_per_s):6.0f}"
        "   (median over fits: smallest ESS of any reported quantity / wall time of the fit)"
    )
    print(f"ESS bulk min over every reported qty     {min(r['ess_bulk'] for r in rows):6.0f}")
    print(f"ESS tail min                             {min(r['ess_tail'] for r in rows):6.0f}")
    print(f"R-hat max                                {max(r['rhat'] for r in rows):6.3f}")
    print(f"divergences, all fits                    {sum(r['divergences'] for r in rows):6d}")
    extended = [f"{r['analysis']}/{r['prior']}" for r in rows if r["draws"] > 1000]
    print(f"fits extended beyond 1000 draws          {len(extended):6d}  {', '.join(extended)}")
    print(f"cores: {os.cpu_count()}; python {sys.version.split()[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
