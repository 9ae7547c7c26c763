"""Simulation-based calibration: ranks, uniformity and coverage by hand; a short SBC run."""

import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import special

from conftest import pipe_rows
from rebayes.bayes.model import structure_key
from rebayes.bayes.priors import get_prior
from rebayes.calibration.ranks import (
    compare_to_truth,
    coverage,
    interval_covers,
    rank_statistic,
    rank_uniformity,
    thin,
    true_quantities,
)
from rebayes.calibration.sbc import run_sbc
from rebayes.calibration.simulation import (
    N_RANKS,
    QUANTITIES,
    calibration_prior,
    simulate_dataset,
    simulation_design,
)

ROOT = Path(__file__).resolve().parents[1]


# --- ranks and intervals ---------------------------------------------------------------------


def test_rank_counts_draws_below_the_truth():
    draws = np.arange(99.0)  # exactly L draws: no thinning
    assert rank_statistic(41.5, draws) == 42
    assert rank_statistic(-1.0, draws) == 0
    assert rank_statistic(1000.0, draws) == N_RANKS


def test_rank_uses_evenly_thinned_draws_from_all_chains():
    # 4 chains x 495 draws, flattened chain by chain: thinning keeps positions
    # round(k * 1979 / 98), k = 0..98, about 20 apart, first and last included.
    draws = np.arange(1980.0).reshape(4, 495)
    kept = thin(draws, 99)
    assert kept.shape == (99,)
    assert kept[0] == 0 and kept[-1] == 1979
    assert np.all(np.diff(kept) >= 19) and np.all(np.diff(kept) <= 21)
    # 1000.5 lies above the kept draws at positions <= 1000: round(k * 1979 / 98) <= 1000
    # for k = 0..49, i.e. 50 of them.
    assert rank_statistic(1000.5, draws) == 50
    with pytest.raises(ValueError, match="cannot thin"):
        thin(np.arange(50.0), 99)


def test_interval_coverage_against_normal_quantiles():
    draws = np.random.default_rng(0).standard_normal(200_000)
    # Central 50%: +-0.674; central 90%: +-1.645.
    assert interval_covers(0.6, draws, 0.5) and not interval_covers(0.7, draws, 0.5)
    assert interval_covers(-1.6, draws, 0.9) and not interval_covers(-1.7, draws, 0.9)


def test_compare_to_truth_returns_ranks_and_hits_per_quantity():
    draws = {"a": np.arange(99.0), "b": np.linspace(0, 1, 990)}
    ranks, covered = compare_to_truth({"a": 10.5, "b": 0.5}, draws)
    assert ranks == {"a": 11, "b": 50}
    assert covered == {"a": (False, True), "b": (True, True)}


# --- uniformity tests -------------------------------------------------------------------------


def test_exactly_uniform_ranks_pass_every_test():
    ranks = np.tile(np.arange(N_RANKS + 1), 2)  # every rank twice
    u = rank_uniformity(ranks, bins=20)
    assert u.counts == (10,) * 20
    assert u.chi2 == 0 and u.chi2_p == 1
    # Mid-rank PITs of an exact grid are at most 0.005 from the uniform CDF.
    assert u.ks <= 0.005 + 1e-12 and u.ks_p > 0.99
    assert u.ecdf_p > 0.1


def test_random_uniform_ranks_pass_and_skewed_ranks_fail():
    rng = np.random.default_rng(20230113)
    uniform = rank_uniformity(rng.integers(0, N_RANKS + 1, size=400), bins=20)
    assert min(uniform.chi2_p, uniform.ks_p, uniform.ecdf_p) > 0.01
    # Too-narrow posteriors: ranks pile up at both ends (Talts et al. fig. 3).
    u_shaped = np.clip(np.round(rng.beta(0.5, 0.5, size=400) * 100 - 0.5), 0, 99).astype(int)
    # Biased posteriors: a slope.
    sloped = np.clip(np.round(rng.beta(1, 2, size=400) * 100 - 0.5), 0, 99).astype(int)
    for ranks in (u_shaped, sloped):
        u = rank_uniformity(ranks, bins=20)
        assert u.chi2_p < 1e-6 and u.ks_p < 1e-3 and u.ecdf_p < 1e-3


def test_chi_square_by_hand():
    # 4 bins of 25 ranks, counts 10, 20, 30, 40: expected 25 each,
    # chi2 = (225 + 25 + 25 + 225) / 25 = 20 on 3 df.
    ranks = np.repeat([0, 25, 50, 75], [10, 20, 30, 40])
    u = rank_uniformity(ranks, bins=4)
    assert u.counts == (10, 20, 30, 40)
    assert u.chi2 == pytest.approx(20.0)
    # Survival of chi2 with 3 df at x: erfc(sqrt(x/2)) + sqrt(2x/pi) exp(-x/2).
    x = 20.0
    p = math.erfc(math.sqrt(x / 2)) + math.sqrt(2 * x / math.pi) * math.exp(-x / 2)
    assert u.chi2_p == pytest.approx(p, rel=1e-9)


def test_uniformity_rejects_bad_input():
    with pytest.raises(ValueError, match="does not divide"):
        rank_uniformity([1, 2, 3], bins=7)
    with pytest.raises(ValueError, match="integers in 0..99"):
        rank_uniformity([1, 100])


def test_coverage_limits():
    c = coverage([True] * 180 + [False] * 20, 0.9)
    assert c.rate == 0.9 and c.ok
    # Normal approximation of Binomial(200, 0.9) / 200: 0.9 -/+ 1.96 sqrt(0.09 / 200) = 0.858-0.942;
    # the exact central range is 171-188 successes.
    assert (c.expected_low, c.expected_high) == (171 / 200, 188 / 200)
    assert c.ci_low < 0.9 < c.ci_high
    assert not coverage([True] * 160 + [False] * 40, 0.9).ok  # 80%: too narrow intervals
    assert not coverage([True] * 199 + [False] * 1, 0.9).ok  # 99.5%: too wide
    assert coverage([True] * 100 + [False] * 100, 0.5).ok


def test_a_right_posterior_is_calibrated_and_a_narrow_one_is_not():
    """The SBC pipeline without a sampler: the exact posterior of a normal mean.

    y ~ N(mu, 1), mu ~ N(0, 1): the posterior is N(y / 2, 1/2). Draws from it must give
    uniform ranks and nominal coverage; draws with half its SD must not.
    """
    rng = np.random.default_rng(7)
    right, narrow = [], []
    for _ in range(400):
        mu = rng.standard_normal()
        y = mu + rng.standard_normal()
        post = y / 2 + math.sqrt(0.5) * rng.standard_normal(990)
        narrow_post = y / 2 + 0.5 * math.sqrt(0.5) * rng.standard_normal(990)
        right.append(compare_to_truth({"mu": mu}, {"mu": post}))
        narrow.append(compare_to_truth({"mu": mu}, {"mu": narrow_post}))
    for results, calibrated in ((right, True), (narrow, False)):
        ranks = [r["mu"] for r, _ in results]
        hits90 = [c["mu"][1] for _, c in results]
        u = rank_uniformity(ranks)
        assert (u.chi2_p > 0.01) is calibrated
        assert coverage(hits90, 0.9).ok is calibrated


# --- simulation -------------------------------------------------------------------------------


def test_calibration_prior_puts_95_percent_of_control_risks_in_0_3_to_0_8():
    prior = calibration_prior()
    default = get_prior("weakly_informative")
    assert (prior.effect, prior.tau, prior.covariate) == (
        default.effect,
        default.tau,
        default.covariate,
    )
    alpha = prior.baseline.frozen()
    share = alpha.cdf(special.logit(0.8)) - alpha.cdf(special.logit(0.3))
    assert share == pytest.approx(0.95, abs=0.002)


def test_simulated_data_have_the_ivig_shape_and_are_reproducible():
    prior = calibration_prior()
    a = simulate_dataset(np.random.default_rng(5), prior)
    b = simulate_dataset(np.random.default_rng(5), prior)
    assert np.array_equal(a.events, b.events) and a.d == b.d
    assert a.n.shape == (10, 2) and a.n.min() >= 9 and a.n.max() <= 47
    assert np.all((a.events >= 0) & (a.events <= a.n))
    many = np.concatenate([simulate_dataset(np.random.default_rng(i), prior).n for i in range(50)])
    assert many.min() == 9 and many.max() == 47
    design = simulation_design(a)
    assert design.n_rows == 10 and design.likelihood == "binomial"
    # The same padded shape as the IVIG analyses: one compiled model for all.
    assert structure_key(design).rows == 16


def test_true_pooled_rr_by_hand():
    data = simulate_dataset(np.random.default_rng(1), calibration_prior())
    truth = true_quantities(data, simulation_design(data))
    # The control risk p0 is the simulated data's median observed control risk (one trial
    # per row here), as the fit's is; RR = expit(logit(p0) + d) / p0.
    p0 = np.median(data.events[:, 0] / data.n[:, 0])
    assert 0 < p0 < 1
    assert truth["pooled_rr"] == pytest.approx(special.expit(special.logit(p0) + data.d) / p0)
    assert truth["d"] == data.d and truth["tau"] == data.tau


# --- a short SBC run (samples: slow) ----------------------------------------------------------


@pytest.fixture(scope="module")
def short_run():
    return run_sbc(20, seed=11)


@pytest.mark.slow
def test_short_sbc_run_shows_no_gross_miscalibration(short_run):
    assert short_run.n == 20
    for q in QUANTITIES:
        assert short_run.coverage(q, 0.9).ok, q
        assert short_run.uniformity(q).chi2_p > 0.001, q
    assert short_run.coverage("d", 0.5).ok
    assert short_run.ess_below_l == 0
    # A handful of divergences could happen; many would mean a broken geometry.
    assert short_run.divergences < 20 * 4 * 500 * 0.01


@pytest.mark.slow
def test_sbc_run_is_reproducible_and_prefix_stable(short_run):
    again = run_sbc(3, seed=11)
    assert [s.ranks for s in again.simulations] == [s.ranks for s in short_run.simulations[:3]]
    assert [s.truth for s in again.simulations] == [s.truth for s in short_run.simulations[:3]]


@pytest.mark.slow
def test_sbc_script_writes_its_outputs(short_run, tmp_path):
    spec = importlib.util.spec_from_file_location("sbc_script", ROOT / "benchmarks/sbc.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    written = script.write_outputs(short_run, tmp_path / "out")
    names = sorted(p.name for p in written)
    assert names == ["rank_histogram.png", "simulations.csv", "summary.csv", "summary.md"]
    assert (tmp_path / "out/rank_histogram.png").read_bytes()[:4] == b"\x89PNG"
    summary = pd.read_csv(tmp_path / "out/summary.csv")
    assert list(summary["quantity"]) == list(QUANTITIES)
    sims = pd.read_csv(tmp_path / "out/simulations.csv")
    assert len(sims) == 20 and list(sims["rank_d"]) == list(short_run.ranks("d"))
    assert not list((tmp_path / "out").glob(".*tmp"))


def _result(truths, sds):
    from rebayes.calibration.sbc import SBCResult, SimulationResult
    from rebayes.calibration.simulation import SBC_SETTINGS

    sims = tuple(
        SimulationResult(
            index=i,
            sampler_seed=i,
            truth={"d": t},
            ranks={"d": i % 100},
            covered={"d": (True, True)},
            posterior_sd={"d": sd},
            ess_bulk_min=500.0,
            divergences=0,
            draws=500,
            seconds=0.1,
        )
        for i, (t, sd) in enumerate(zip(truths, sds, strict=True))
    )
    return SBCResult(sims, calibration_prior(), SBC_SETTINGS, seed=0)


def test_contraction_and_bins_by_hand():
    # True values -1, 0, 1: variance 1 (ddof 1); posterior SD 0.5 everywhere: 1 - 0.25 = 0.75.
    assert _result([-1.0, 0.0, 1.0], [0.5] * 3).contraction("d") == pytest.approx(0.75)
    # 20 bins of 5 ranks at 200 simulations (10 per bin); 4 bins of 25 at 20 (5 per bin).
    assert _result([0.0] * 200, [1.0] * 200).default_bins() == 20
    assert _result([0.0] * 20, [1.0] * 20).default_bins() == 4


def test_summary_tables_show_each_quantity_and_coverage(tmp_path):
    from rebayes.calibration.sbc import SBCResult, SimulationResult
    from rebayes.calibration.simulation import LABELS, SBC_SETTINGS

    # 40 made-up simulations: every 4th misses the 50% interval, every 8th the 90% one.
    sims = tuple(
        SimulationResult(
            index=i, sampler_seed=i, truth=dict.fromkeys(QUANTITIES, float(i % 5)),
            ranks=dict.fromkeys(QUANTITIES, (37 * i) % 100),
            covered=dict.fromkeys(QUANTITIES, (i % 4 != 0, i % 8 != 0)),
            posterior_sd=dict.fromkeys(QUANTITIES, 0.5), ess_bulk_min=500.0,
            divergences=int(i == 3), draws=500, seconds=0.1,
        )
        for i in range(40)
    )
    result = SBCResult(sims, calibration_prior(), SBC_SETTINGS, seed=0, seconds=4.0)
    lines = str(result).splitlines()
    header = next(line for line in lines if "chi2 p" in line)
    assert header.split()[:4] == ["chi2", "p", "KS", "p"]
    for q in QUANTITIES:
        (row,) = [line for line in lines if line.startswith(LABELS[q] + " ")]
        # 30 of 40 in the 50% interval, 35 of 40 in the 90% one.
        assert "0.750 (" in row and "0.875 (" in row
    spec = importlib.util.spec_from_file_location("sbc_script", ROOT / "benchmarks/sbc.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    header, *rows = pipe_rows(script.summary_markdown(result))
    assert header == ["quantity", "chi2 p", "KS p", "ECDF p", "contraction",
                      "50% coverage (95% CI)", "expected", "90% coverage (95% CI)", "expected"]
    assert [r[0] for r in rows] == [LABELS[q] for q in QUANTITIES]
    assert all(r[5].startswith("0.750 (") and r[7].startswith("0.875 (") for r in rows)
    script.write_outputs(result, tmp_path / "default")
    header, *rows = pipe_rows(script.overview_markdown(tmp_path))
    assert header[:3] == ["scenario", "quantity", "sims"] and header[-1] == "divergent fits"
    assert rows[0][0].startswith("[default](default/summary.md)") and rows[0][-1] == "1"
    assert [r[1] for r in rows] == [LABELS[q] for q in QUANTITIES] and rows[1][0] == ""


# --- the other scenarios ------------------------------------------------------------------


def test_scenarios_cover_what_the_package_claims():
    from rebayes.calibration.simulation import scenarios

    known = scenarios()
    assert list(known) == [
        "default", "rare_events", "meta_regression", "lognormal_tau2", "half_cauchy", "normal",
    ]
    # Rare events: 95% of the simulated (arm-average) risks in 1-5%.
    alpha = known["rare_events"].prior.baseline.frozen()
    share = alpha.cdf(special.logit(0.05)) - alpha.cdf(special.logit(0.01))
    assert share == pytest.approx(0.95, abs=0.005)
    assert str(known["lognormal_tau2"].prior.tau) == "LogNormal(-3.52, 1.74)"
    assert str(known["half_cauchy"].prior.tau) == "HalfCauchy(0.5)"
    # The normal scenario fits the default set as the package maps it to the log RR at
    # p0 = 0.55: every log OR scale multiplied by 1 - p0 = 0.45.
    normal = known["normal"].prior
    assert normal.scale == "log RR"
    assert normal.effect.sigma == pytest.approx(0.45) and normal.tau.sigma == pytest.approx(0.225)


def test_meta_regression_scenario_simulates_two_halves_and_its_truth():
    from rebayes.calibration.simulation import get_scenario

    scenario = get_scenario("meta_regression")
    data = simulate_dataset(np.random.default_rng(3), scenario.prior, covariate=True)
    assert list(data.x) == [0.0] * 5 + [1.0] * 5
    design = simulation_design(data, scenario.spec)
    assert design.coefs == ("x",) and design.X[:, 0].tolist() == list(data.x)
    truth = true_quantities(data, design, scenario.quantities)
    assert truth["d_plus_beta"] == pytest.approx(data.d + data.beta)
    assert truth["beta"] == data.beta
    # theta = d + beta x + tau z, by hand.
    assert np.allclose(data.theta, data.d + data.beta * data.x + data.tau * data.z)


def test_normal_scenario_draws_log_rr_around_theta_with_known_variance():
    from rebayes.calibration.simulation import get_scenario

    scenario = get_scenario("normal")
    many = [simulate_dataset(np.random.default_rng(i), scenario.prior, likelihood="normal")
            for i in range(400)]
    # Standardised residuals (yi - theta) / sqrt(vi) are N(0, 1).
    resid = np.concatenate([(s.yi - s.theta) / np.sqrt(s.vi) for s in many])
    assert abs(resid.mean()) < 0.05 and resid.std() == pytest.approx(1.0, abs=0.05)
    one = many[0]
    p0 = special.expit(one.alpha)
    assert np.allclose(one.vi, (1 - p0) / p0 * (1 / one.n[:, 0] + 1 / one.n[:, 1]))
    design = simulation_design(one, scenario.spec)
    assert design.likelihood == "normal" and np.array_equal(design.yi, one.yi)


def test_default_scenario_data_unchanged_by_the_scenario_options():
    # The extra draws of other scenarios come after the default ones: the committed default
    # SBC run stays reproducible.
    prior = calibration_prior()
    plain = simulate_dataset(np.random.default_rng(9), prior)
    again = simulate_dataset(np.random.default_rng(9), prior, covariate=False)
    assert np.array_equal(plain.events, again.events) and plain.x is None
