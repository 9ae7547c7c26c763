"""The prior-space map (rebayes.tools.priormap).

Checked three ways: the reweighting against exact normal-normal conjugacy (no sampler), the
map's P(benefit) against independent full refits at grid points (both the reweighted and
the refitted ones, within Monte Carlo error), and the command end to end on the BCG data
(metafor's dat.bcg, lower is better).
"""

import json
import math

import numpy as np
import pytest
from arviz_stats.base import array_stats
from scipy import stats

import rebayes as rb
from conftest import TEST_DATA
from rebayes.bayes.analyses import resolve_spec
from rebayes.bayes.fit import fit
from rebayes.bayes.priors import Normal, get_prior
from rebayes.bayes.quantities import pooled_rr
from rebayes.cli import main
from rebayes.tools.priormap import (
    K_MAX,
    PriorMap,
    default_anchors,
    importance_weights,
    prior_grid,
    prior_map,
)

BCG = str(TEST_DATA / "bcg")


def conjugate(y, se, m, s):
    """Posterior N(mean, sd) of d for y ~ N(d, se^2), d ~ N(m, s^2)."""
    precision = 1 / se**2 + 1 / s**2
    return (y / se**2 + m / s**2) / precision, math.sqrt(1 / precision)


def test_grid_holds_no_effect_and_at_least_20_by_20():
    means, sds = prior_grid()
    assert len(means) >= 20 and len(sds) >= 20
    assert 0.0 in means
    assert means[0] == pytest.approx(-math.log(3)) and means[-1] == pytest.approx(math.log(3))
    assert sds[0] == pytest.approx(0.05) and sds[-1] == pytest.approx(2.0)
    assert len(default_anchors(means, sds)) == 6


def test_reweighting_matches_normal_normal_conjugacy():
    # One trial y = 0.3 (se 0.15) and exact posterior draws under the proposal N(0, 0.5):
    # reweighted to N(m, s), P(d < 0) must equal the conjugate posterior's, within MC error.
    rng = np.random.default_rng(20240601)
    y, se, m0, s0 = 0.3, 0.15, 0.0, 0.5
    mean0, sd0 = conjugate(y, se, m0, s0)
    draws = rng.normal(mean0, sd0, 8000)
    means, sds = np.meshgrid(np.linspace(-0.6, 0.6, 7), [0.1, 0.3, 1.0, 2.0], indexing="ij")
    log_w, k = importance_weights(draws, (m0, s0), means, sds)
    w = np.exp(log_w)
    assert np.allclose(w.sum(axis=-1), 1.0)
    exact = np.vectorize(lambda m, s: stats.norm.cdf(0, *conjugate(y, se, m, s)))(means, sds)
    got = w @ (draws < 0)
    ess = 1 / (w**2).sum(axis=-1)
    ok = k < K_MAX
    assert ok.sum() >= 20
    mcse = np.sqrt(exact * (1 - exact) / ess) + 1e-3
    assert np.all(np.abs(got - exact)[ok] < 4 * mcse[ok]), np.max(np.abs(got - exact)[ok])
    # A target far in the proposal's tail is flagged (k >= 0.7): that is where the map refits.
    _, k_far = importance_weights(draws, (m0, s0), np.array([2.0]), np.array([0.05]))
    assert k_far[0] >= K_MAX


@pytest.fixture(scope="module")
def bcg_fit():
    return fit(resolve_spec("overall", BCG), "weakly_informative")


@pytest.fixture(scope="module")
def bcg_map(bcg_fit):
    # One wide anchor only: the narrow priors far from it get k >= 0.7 and are refitted, so
    # both paths are exercised.
    return prior_map(bcg_fit, ["weakly_informative"], means=[-1.0, -0.5, 0.0, 0.5, 1.0],
                     sds=[0.05, 0.2, 1.0], anchors=[(0.0, 0.5)])


def test_reweighted_and_refitted_points_agree_with_independent_refits(bcg_fit, bcg_map):
    m = bcg_map.maps[0]
    assert m.n_refitted >= 1 and m.n_reweighted >= 10
    assert np.all(m.pareto_k[~m.refitted] < K_MAX)
    direction = rb.Direction.of(bcg_fit.tree)
    base = get_prior("weakly_informative")
    checked = 0
    for i, mean in enumerate(m.means):
        for j, sd in enumerate(m.sds):
            # An independent chain: another seed, the grid point's exact prior on d (a prior
            # set's mean points towards benefit, which for BCG is a negative log OR).
            prior = rb.PriorSet("check", effect=Normal(-float(mean), float(sd)), tau=base.tau)
            ref = fit(bcg_fit.spec, prior, seed=bcg_fit.seed + 1, design=bcg_fit.design)
            rr = pooled_rr(ref.tree)
            p_ref = direction.p_benefit(rr)
            indicator = direction.is_benefit(rr).transpose("chain", "draw").values
            ess_ref = float(array_stats.ess(indicator, method="bulk")) if 0 < p_ref < 1 else 1.0
            p = float(m.p_benefit[i, j])
            var = p_ref * (1 - p_ref)
            # Monte Carlo SE of the difference (an estimate at P ~ 1 has SE ~ 0: floor 2e-3).
            se = math.sqrt(var / m.ess[i, j] + var / ess_ref) + 2e-3
            assert abs(p - p_ref) < 4 * se, (mean, sd, p, p_ref, m.pareto_k[i, j])
            checked += 1
    assert checked >= 10


def test_outputs(bcg_map):
    assert isinstance(bcg_map, PriorMap)
    d = bcg_map.to_dict()
    json.dumps(d, allow_nan=False)
    assert d["direction"]["higher_is_better"] is False
    assert d["beyond"] == "RR < 0.91"
    assert d["n_reweighted"] + d["n_refitted"] == 15
    frame = bcg_map.to_dataframe()
    assert len(frame) == 15 and set(frame["method"]) == {"reweighted", "refit"}
    # BCG's pooled RR excludes 1: the credibility prior is the sceptical one, at no effect.
    marks = {k.name: k for k in bcg_map.maps[0].marks}
    assert marks["sceptical limit"].mean == 0.0
    assert marks["weakly_informative"].sd == 1.0
    # Marks are on the scale of d: BCG's benefit is a negative log OR.
    assert bcg_map.maps[0].marks[0].mean == 0.0
    assert "P(RR < 1)" in bcg_map.summary()
    fig = bcg_map.plot()
    assert fig.axes
    assert "<table" in bcg_map._repr_html_() and repr(bcg_map).startswith("PriorMap(")
    assert len(bcg_map.report_frame()) == len(bcg_map.maps)


def test_cli_json_and_figure(tmp_path, capsys):
    out = tmp_path / "map.png"
    code = main(["priormap", "--data", BCG, "--grid", "4", "--tau-priors", "heavy_tailed",
                 "--threshold", "1.25", "--json", "--output", str(out), "--engine", "nuts"])
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert record["engine"] == "nuts"
    assert out.is_file() and out.stat().st_size > 10_000
    assert record["threshold"] == 1.25 and record["beyond"] == "RR < 0.8"
    assert record["scale"] == "log OR"
    (only,) = record["maps"]
    assert only["tau_prior"] == "HalfCauchy(0.5)"
    assert len(only["means"]) == 5 and len(only["sds"]) == 4
    assert record["n_reweighted"] + record["n_refitted"] == 20
    assert record["max_k"] is None or record["max_k"] < 0.7
    p = np.array(only["p_benefit"])
    assert p.shape == (5, 4) and np.all((0 <= p) & (p <= 1))
    assert {m["name"] for m in only["marks"]} >= {"heavy_tailed", "sceptical limit"}
    assert record["sentence"].startswith("Under tau ~ HalfCauchy(0.5)")


@pytest.mark.parametrize(("argv", "message"), [
    (["--threshold", "0.9"], "--threshold 0.9: give a ratio above 1 (e.g. 1.1)"),
    (["--threshold", "-1"], "--threshold -1: give a ratio above 1 (e.g. 1.1)"),
    (["--grid", "1"], "--grid 1: give at least 2 points per axis"),
    (["--output", "map.pdf"], "--output map.pdf: give a .png file name"),
    (["--tau-priors", "nope"], "unknown prior set 'nope' (known: weakly_informative, "),
])
def test_bad_input_is_one_line(argv, message, capsys):
    code = main(["priormap", "--data", BCG, *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"rebayes priormap: error: {message}")
    assert err.count("\n") == 1


def test_library_rejects_bad_settings(bcg_fit):
    with pytest.raises(rb.RebayesError, match="ratio above 1"):
        prior_map(bcg_fit, threshold=1.0)
    with pytest.raises(rb.RebayesError, match="at least 2 points"):
        prior_map(bcg_fit, grid=1)


@pytest.mark.slow
def test_ivig_default_grid_against_refits():
    """The default 21 x 20 grid and anchors on IVIG, checked at 12 points by full refits."""
    result = fit(resolve_spec("overall", "ivig_rsa"), "weakly_informative")
    pm = prior_map(result, ["weakly_informative"])
    m = pm.maps[0]
    assert m.p_benefit.shape == (21, 20)
    direction = rb.Direction.of(result.tree)
    rng = np.random.default_rng(7)
    points = [(int(i), int(j)) for i, j in zip(rng.integers(0, 21, 12), rng.integers(0, 20, 12),
                                               strict=True)]
    for i, j in points:
        prior = rb.PriorSet("check", effect=Normal(float(m.means[i]), float(m.sds[j])),
                            tau=result.prior.tau)
        ref = fit(result.spec, prior, seed=result.seed + 1, design=result.design)
        p_ref = direction.p_benefit(pooled_rr(ref.tree))
        var = p_ref * (1 - p_ref)
        se = math.sqrt(var / m.ess[i, j] + var / 1000) + 2e-3
        assert abs(m.p_benefit[i, j] - p_ref) < 4 * se


def test_exact_map_is_the_brute_force_posterior_at_a_grid_point(capsys):
    from exact_reference import binomial_reference
    from rebayes.bayes.design import build_design
    from rebayes.tools.priormap import prior_map_exact

    # IVIG: live births, higher is better, so the model's d ~ N(mean, sd) as mapped.
    spec = resolve_spec("overall", "ivig_rsa")
    design = build_design(spec)
    result = prior_map_exact(design, get_prior("weakly_informative"), ["weakly_informative"],
                             means=[-0.2, 0.0, 0.3], sds=[0.1, 0.4])
    (only,) = result.maps
    assert result.engine == "exact" and only.engine == "exact" and result.n_fits == 6
    assert only.n_reweighted == only.n_refitted == 0 and math.isnan(result.max_k)
    # d ~ N(0.3, 0.4), tau ~ HalfNormal(0.5), alpha ~ N(0, 2): P(RR > 1) = P(d > 0).
    ref = binomial_reference(design.events, design.n, d_mean=0.3, d_sd=0.4)
    assert only.p_benefit[2, 1] == pytest.approx(ref.p_d_greater[0.0], abs=2e-6)
    assert only.p_benefit[0, 0] < only.p_benefit[1, 0] < only.p_benefit[2, 0]
    assert (only.p_beyond < only.p_benefit).all()
    assert "integrated exactly" in str(result)
    code = main(["priormap", "--data", "ivig_rsa", "--grid", "2", "--tau-priors",
                 "weakly_informative", "--json"])
    record = json.loads(capsys.readouterr().out)
    assert code == 0 and record["engine"] == "exact" and record["maps"][0]["engine"] == "exact"
    assert record["n_reweighted"] == record["n_refitted"] == 0
