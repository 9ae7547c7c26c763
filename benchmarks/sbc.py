"""Simulation-based calibration of the model (Talts et al. 2018), scenario by scenario.

Run ``python benchmarks/sbc.py [--sims N] [--seed S] [--output DIR] [--scenario NAME ...]``.
For each scenario of :func:`rebayes.calibration.simulation.scenarios` (default: all six -- the IVIG
shape, rare events, the meta-regression, the log-normal tau^2 and half-Cauchy heterogeneity
priors, the normal likelihood) it simulates N meta-analyses from the scenario's prior, fits
each with one compiled model, and prints, per quantity, the uniformity p values of the ranks
(chi-square on binned ranks, KS and ArviZ's PIT-ECDF test) and the coverage of central 50% and
90% intervals with binomial limits, then divergences and wall time. It writes, each file
atomically (temporary file, then rename), into ``DIR/<scenario>/`` (DIR default
``reports/calibration/``):

- ``rank_histogram.png``: rank histograms with the 99% range of a bin's count under uniform
  ranks, and the PIT-ECDF difference with its 95% simultaneous band (Säilynoja et al. 2022);
- ``summary.md`` and ``summary.csv``: the printed table;
- ``simulations.csv``: per simulation the true values, ranks, interval hits, ESS, divergences
  and the simulated counts.

and ``DIR/summary.md``, one table over every scenario found in DIR.

The same seed gives the same numbers (wall times aside).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from arviz_stats.ecdf_utils import ecdf_pit  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from rebayes import tables  # noqa: E402
from rebayes.atomic import atomic_path  # noqa: E402
from rebayes.calibration.sbc import SBCResult, SimulationResult, run_sbc
from rebayes.calibration.simulation import LABELS, get_scenario, scenarios

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUTPUT = ROOT / "reports" / "calibration"
HIST_BAND = 0.99
ECDF_BAND = 0.95


def shape(result: SBCResult):  # noqa: ANN201
    """The run's scenario (a result without one is the default scenario's)."""
    return result.scenario or get_scenario("default")


def plot_ranks(result: SBCResult) -> Figure:
    """Rank histograms (top) and PIT-ECDF differences (bottom), one column per quantity."""
    bins = result.default_bins()
    width = (result.n_ranks + 1) // bins
    quantities = result.quantities
    fig, axes = plt.subplots(2, len(quantities), figsize=(4 * len(quantities), 6.2),
                             squeeze=False)
    rng = np.random.default_rng(result.seed)
    for j, q in enumerate(quantities):
        u = result.uniformity(q, bins)
        ax = axes[0, j]
        low, high = u.band(HIST_BAND)
        edges = np.arange(bins + 1) * width
        ax.bar(edges[:-1], u.counts, width=width, align="edge", color="#6f9bc9", ec="white")
        # The band goes over the bars, translucent, so that a bar leaving it shows.
        ax.fill_between([0, result.n_ranks + 1], low, high, color="0.3", alpha=0.2, lw=0)
        ax.axhline(result.n / bins, color="0.3", lw=0.8)
        ax.set_xlim(0, result.n_ranks + 1)
        ax.set_title(f"{LABELS[q]}\nchi2 p = {u.chi2_p:.2f}, KS p = {u.ks_p:.2f}", fontsize=10)
        ax.set_xlabel(f"rank among L = {result.n_ranks} posterior draws")
        if j == 0:
            ax.set_ylabel(f"simulations per bin of {width} ranks")

        ax = axes[1, j]
        pit = (result.ranks(q) + 0.5) / (result.n_ranks + 1)
        x, ecdf, lower, upper = ecdf_pit(pit, ECDF_BAND, n_simulations=1000, rng=rng)
        ax.fill_between(x, lower - x, upper - x, color="0.85", lw=0, step="post")
        ax.step(x, ecdf - x, where="post", color="#1f4e79")
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_xlim(0, 1)
        ax.set_title(f"ECDF p = {u.ecdf_p:.2f}", fontsize=10)
        ax.set_xlabel("PIT = (rank + 0.5) / (L + 1)")
        if j == 0:
            ax.set_ylabel("ECDF - uniform CDF")
    fig.suptitle(
        f"SBC, {shape(result).name}: {result.n} simulated meta-analyses "
        f"({shape(result).n_trials} trials); grey: range of "
        f"{HIST_BAND:.0%} of bins (top) and {ECDF_BAND:.0%} simultaneous band (bottom) "
        "if ranks are uniform",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def _write_atomic(path: Path, write: Callable[[str], object]) -> None:
    """Call ``write(tmp)`` on a temporary file that replaces ``path`` (rebayes.atomic)."""
    with atomic_path(path) as tmp:
        write(str(tmp))


def summary_frame(result: SBCResult, bins: int) -> pd.DataFrame:
    """The summary table's formatted cells, from ``result.table(bins)``."""
    t = result.table(bins)
    headers = ["quantity", "chi2 p", "KS p", "ECDF p", "contraction"]
    columns = [
        [LABELS[q] for q in t["quantity"]],
        [f"{v:.3f}" for v in t["chi2_p"]],
        [f"{v:.3f}" for v in t["ks_p"]],
        [f"{v:.3f}" for v in t["ecdf_p"]],
        [f"{v:.2f}" for v in t["contraction"]],
    ]
    for p in result.probs:
        tag = f"cov{round(100 * p)}"
        headers += [f"{round(100 * p)}% coverage (95% CI)", "expected"]
        columns.append([f"{r[tag]:.3f} ({r[f'{tag}_ci_low']:.3f}-{r[f'{tag}_ci_high']:.3f})"
                        for _, r in t.iterrows()])
        columns.append([f"{r[f'{tag}_expected_low']:.3f}-{r[f'{tag}_expected_high']:.3f}"
                        for _, r in t.iterrows()])
    return tables.frame(headers, zip(*columns, strict=True))


def summary_markdown(result: SBCResult) -> str:
    """The summary table as markdown, with the run's settings."""
    s = result.settings
    bins = result.default_bins()
    lines = [
        f"# Simulation-based calibration: {shape(result).title}",
        "",
        f"Scenario `{shape(result).name}`: {result.n} meta-analyses simulated from the prior "
        f"(seed {result.seed}): {shape(result).n_trials} trials, {shape(result).arm_sizes[0]}-"
        f"{shape(result).arm_sizes[1]} participants per arm, {shape(result).likelihood} "
        f"likelihood, prior "
        f"`{result.prior.name}` ({result.prior.summary}). Each fitted with "
        f"{s.chains} chains x {s.draws} draws after {s.tune} tuning steps (sampled longer if "
        f"bulk ESS < {s.min_ess} or a transition diverged). Ranks of the true value among "
        f"L = {result.n_ranks} thinned draws (Talts et al. 2018); command: "
        f"`python benchmarks/sbc.py --sims {result.n} --seed {result.seed} "
        f"--scenario {shape(result).name}`.",
        "",
        tables.markdown(summary_frame(result, bins), align="l" + "r" * (4 + 2 * len(result.probs))),
    ]
    fits_divergent = sum(x.divergences > 0 for x in result.simulations)
    lines += [
        "",
        f"- chi2: Pearson chi-square on {bins} bins of {(result.n_ranks + 1) // bins} ranks. "
        "KS: Kolmogorov-Smirnov and ECDF: ArviZ's PIT-ECDF test (`pot_c`), both on the PITs "
        "(rank + 0.5) / (L + 1). Contraction: 1 - mean posterior variance / prior variance "
        "(prior variance: that of the true values over the simulations); near 0 the data say "
        "little beyond the prior.",
        "- Coverage: share of simulations whose central posterior interval contains the true "
        "value; 95% Clopper-Pearson CI; *expected*: central 95% range of the share if the "
        "intervals are calibrated.",
        f"- Divergent transitions: {result.divergences} (in {fits_divergent} of {result.n} "
        f"fits); fits sampled longer: {result.extended}; fits with bulk ESS below L: "
        f"{result.ess_below_l}.",
        f"- Wall time: {result.seconds:.0f} s ({result.seconds / result.n:.2f} s per "
        f"simulation, one compilation included) on {os.cpu_count()} cores.",
        "",
        "![rank histograms](rank_histogram.png)",
        "",
    ]
    return "\n".join(lines)


def write_outputs(result: SBCResult, output: Path) -> list[Path]:
    """Write the figure and the tables into ``output``, each file atomically."""
    output = Path(output)
    paths = {
        "summary.md": summary_markdown(result),
        "summary.csv": result.table().to_csv(index=False, float_format="%.6g"),
        "simulations.csv": result.simulation_table().to_csv(index=False, float_format="%.6g"),
    }
    fig = plot_ranks(result)
    try:
        png = output / "rank_histogram.png"
        _write_atomic(png, lambda tmp: fig.savefig(tmp, format="png", dpi=130))
    finally:
        plt.close(fig)
    written = [png]
    for name, text in paths.items():
        _write_atomic(output / name, lambda tmp, t=text: Path(tmp).write_text(t, encoding="utf-8"))
        written.append(output / name)
    return written


def overview_markdown(output: Path) -> str:
    """One table over every scenario whose ``summary.csv`` is in ``output/<scenario>/``."""
    known = scenarios()
    lines = [
        "# Simulation-based calibration",
        "",
        "Each scenario simulates meta-analyses from its prior, fits each with the package's "
        "model and sampler, and checks that the ranks of the true values among the posterior "
        "draws are uniform and that central 50% and 90% intervals cover the truth as often as "
        "they claim (Talts et al. 2018). p values: chi-square on binned ranks, and ArviZ's "
        "PIT-ECDF test; coverage with its expected 95% range under calibration in brackets. "
        "Command: `make sbc` (`python benchmarks/sbc.py --sims 200 --seed 20230113`).",
        "",
    ]
    rows = []
    for name, scenario in known.items():
        folder = output / name
        if not (folder / "summary.csv").is_file():
            continue
        table = pd.read_csv(folder / "summary.csv")
        sims = pd.read_csv(folder / "simulations.csv")
        divergent = int((sims["divergences"] > 0).sum())
        for i, row in enumerate(table.itertuples()):
            rows.append((
                f"[{name}]({name}/summary.md): {scenario.title}" if i == 0 else "",
                LABELS[row.quantity],
                f"{row.n_sims}",
                f"{row.chi2_p:.3f}",
                f"{row.ecdf_p:.3f}",
                f"{row.cov50:.3f} [{row.cov50_expected_low:.3f}-{row.cov50_expected_high:.3f}]",
                f"{row.cov90:.3f} [{row.cov90_expected_low:.3f}-{row.cov90_expected_high:.3f}]",
                f"{divergent}" if i == 0 else "",
            ))
    headers = ["scenario", "quantity", "sims", "chi2 p", "ECDF p", "50% coverage [expected]",
               "90% coverage [expected]", "divergent fits"]
    lines += [tables.markdown(tables.frame(headers, rows), align="llrrrrrr"), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sims", type=int, default=200, help="simulated meta-analyses (200)")
    parser.add_argument("--seed", type=int, default=20230113, help="seed of the run")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="output directory")
    parser.add_argument("--scenario", action="append", choices=list(scenarios()),
                        help="scenario to run (repeatable; default: all)")
    args = parser.parse_args(argv)
    if args.sims < 2:
        parser.error("--sims must be at least 2")
    for name in args.scenario or list(scenarios()):
        started = time.perf_counter()

        def progress(sim: SimulationResult, name: str = name, started: float = started) -> None:
            done = sim.index + 1
            if done % 25 == 0 or done == args.sims:
                elapsed = time.perf_counter() - started
                print(f"  {name}: {done}/{args.sims} simulations, {elapsed:.0f} s",
                      file=sys.stderr)

        result = run_sbc(args.sims, seed=args.seed, scenario=name, on_simulation=progress)
        print(result, end="\n\n")
        for path in write_outputs(result, args.output / name):
            print(f"wrote {path}")
    overview = args.output / "summary.md"
    _write_atomic(overview, lambda tmp: Path(tmp).write_text(overview_markdown(args.output),
                                                             encoding="utf-8"))
    print(f"wrote {overview}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
