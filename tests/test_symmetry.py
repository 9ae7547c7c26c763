"""The binomial model is symmetric in the arms, and very precise trials.

With the arms coded -1/2 and +1/2 (``rebayes.bayes.model.arm_log_odds``; Jackson et al. 2018, Stat
Med 37:1059), swapping the labels of the two arms mirrors the posterior of the log OR. Under
the old 0/1 coding the baseline prior acted on the control arm alone, and with rare events
both labellings said the arm called "treatment" had fewer events.
"""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import log_expit, logsumexp

import rebayes as rb
from rebayes.bayes.design import build_design, prior_on_model_scale
from rebayes.bayes.fit import fit
from rebayes.bayes.model import build_model, centred_studies
from rebayes.bayes.priors import HalfNormal, get_prior
from rebayes.bayes.settings import DIVERGENCE_TARGET_ACCEPT, SamplerSettings

TEST_DATA = Path(__file__).resolve().parent / "data"
# 12 small trials, 55 women per arm: 8 events among 660 treated, 1 among 660 controls (the
# shape of a real Cochrane analysis: MH OR > 1, yet the old model's pooled OR was 0.61).
RARE = TEST_DATA / "rare_events.csv"
FAST = SamplerSettings(draws=500, tune=500, chains=2, min_ess=0)

COMMON = """study,year,events_treat,n_treat,events_control,n_control
A,2001,30,80,22,78
B,2002,45,120,40,118
C,2003,12,40,15,42
D,2004,60,150,44,149
"""


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REBAYES_CACHE", str(tmp_path / "cache"))


def _swap_arms(path: Path, out: Path) -> Path:
    table = pd.read_csv(path)
    table[["events_treat", "n_treat", "events_control", "n_control"]] = table[
        ["events_control", "n_control", "events_treat", "n_treat"]
    ].to_numpy()
    table.to_csv(out, index=False)
    return out


def _log_or_draws(path: Path) -> np.ndarray:
    result = fit(rb.AnalysisSpec(name="symmetry", data=str(path)), settings=FAST, cache=False)
    return result.tree["posterior"]["d"].values.ravel()


@pytest.fixture
def common_table(tmp_path):
    path = tmp_path / "common.csv"
    path.write_text(COMMON, encoding="utf-8")
    return path


def test_log_density_is_mirrored_exactly_by_swapping_arms(tmp_path):
    """log p(alpha, d, z, tau | data) = log p(alpha, -d, -z, tau | swapped data), exactly."""
    prior = get_prior("weakly_informative")  # effect prior centred on 0
    designs = [
        build_design(rb.AnalysisSpec(name="s", data=str(p)))
        for p in (RARE, _swap_arms(RARE, tmp_path / "swapped.csv"))
    ]
    models = [build_model(design, prior) for design in designs]
    logps = [model.compile_logp() for model in models]
    rng = np.random.default_rng(11)
    for _ in range(5):
        point = {k: rng.normal(0, 0.8, v.shape) for k, v in models[0].initial_point().items()}
        mirrored = {**point, "d": -point["d"], "z": -point["z"]}
        assert float(logps[0](point)) == pytest.approx(float(logps[1](mirrored)), rel=1e-12)


@pytest.mark.parametrize("table", ["rare", "common"])
def test_swapping_arms_mirrors_the_log_or_posterior(table, common_table, tmp_path):
    """Pooled log OR median and 95% limits negate under swapped arms (Monte Carlo error)."""
    path = RARE if table == "rare" else common_table
    original = _log_or_draws(path)
    swapped = _log_or_draws(_swap_arms(path, tmp_path / "swapped.csv"))
    sd = original.std()
    q = np.quantile(original, [0.025, 0.5, 0.975])
    q_swapped = np.quantile(swapped, [0.975, 0.5, 0.025])
    # 2 chains x 500 draws: the median's MC error is ~0.05 sd, a 2.5% quantile's ~0.15 sd.
    assert abs(q[1] + q_swapped[1]) < 0.25 * sd
    np.testing.assert_allclose(q, -q_swapped, atol=0.5 * sd)
    assert abs((original > 0).mean() - (swapped < 0).mean()) < 0.08


def _mantel_haenszel_or(table: pd.DataFrame) -> float:
    """MH odds ratio, sum(a d / N) / sum(b c / N) (Mantel & Haenszel 1959), by hand."""
    a, c = table["events_treat"], table["events_control"]
    b, d = table["n_treat"] - a, table["n_control"] - c
    total = table["n_treat"] + table["n_control"]
    return float((a * d / total).sum() / (b * c / total).sum())


def test_rare_events_point_the_way_their_data_do():
    """8/660 treated vs 1/660 controls: more events with treatment, as the MH OR says."""
    table = pd.read_csv(RARE)
    assert (table["events_treat"].sum(), table["n_treat"].sum()) == (8, 660)
    assert (table["events_control"].sum(), table["n_control"].sum()) == (1, 660)
    assert _mantel_haenszel_or(table) > 1  # the independent reference (here 8.0)
    log_or = _log_or_draws(RARE)
    assert np.exp(np.median(log_or)) > 1
    assert (log_or > 0).mean() > 0.5


def _exact_mu_quantiles(yi, vi, prior, probs):
    """Quantiles of mu's marginal posterior in the normal-normal model, tau integrated out.

    mu ~ N(0, 1), tau ~ HalfNormal(0.5), y_i ~ N(mu, vi + tau^2): a 2-D grid over (mu, tau)
    fine enough (steps 0.002) for two-decimal quantiles.
    """
    mu = np.linspace(-1.5, 1.5, 1501)
    tau = np.linspace(1e-5, 2.5, 1500)
    m, t = np.meshgrid(mu, tau, indexing="ij")
    log_post = prior.effect.frozen().logpdf(m) + prior.tau.frozen().logpdf(t)
    for y, v in zip(yi, vi, strict=True):
        log_post = log_post + stats.norm.logpdf(y, m, np.sqrt(v + t**2))
    margin = np.exp(log_post - log_post.max()).sum(axis=1)
    return np.interp(probs, np.cumsum(margin) / margin.sum(), mu)


def test_very_precise_trials_sample_without_divergences(tmp_path):
    """Normal likelihood, three trials of >20,000 women: centred effects and a 0.99 re-run.

    Before: non-centred effects at target acceptance 0.9 diverged and gave a 95% CrI of the
    pooled log RR 20% too narrow. Reference: exact quadrature of mu's marginal posterior.
    """
    path = tmp_path / "precise.csv"
    path.write_text(
        "study,year,events_treat,n_treat,events_control,n_control\n"
        "A,2001,1200,12000,1500,12000\nB,2002,900,15000,1000,15000\n"
        "C,2003,2100,11000,2000,11000\n",
        encoding="utf-8",
    )
    spec = rb.AnalysisSpec(name="precise", data=str(path), likelihood="normal", effect="common")
    design = build_design(spec)
    # The normal model's prior is the log OR set mapped to the log RR scale.
    prior = prior_on_model_scale(get_prior("weakly_informative"), design)
    assert centred_studies(design, prior).tolist() == [1.0, 1.0, 1.0]
    result = fit(spec, prior, settings=SamplerSettings(tune=500, min_ess=0), cache=False)
    summary = result.summary()
    assert summary.diagnostics.divergences == 0 and summary.reliable
    assert result.tree.attrs["target_accept"] in (0.9, DIVERGENCE_TARGET_ACCEPT)
    draws = result.tree["posterior"]["d"].values.ravel()
    probs = [0.025, 0.5, 0.975]
    exact = _exact_mu_quantiles(design.yi, design.vi, prior, probs)
    np.testing.assert_allclose(np.quantile(draws, probs), exact, atol=0.04)
    width, exact_width = np.subtract(*np.quantile(draws, [0.975, 0.025])), exact[2] - exact[0]
    assert width == pytest.approx(exact_width, rel=0.1)


def _exact_common_effect_log_or(table: pd.DataFrame, prior, probs):
    """Quantiles of d's posterior with tau = 0: each trial's baseline integrated out exactly.

    p(d | y) is proportional to N(d | 0, 1) prod_k int N(a | 0, 2) Bin(c_k | expit(a - d / 2))
    Bin(t_k | expit(a + d / 2)) da; one grid over d and one over each trial's a (the arms
    coded -+1/2, as in the model).
    """
    d = np.linspace(-4.0, 6.0, 1001)[:, None]
    a = np.linspace(-12.0, 4.0, 1201)[None, :]
    log_post = prior.effect.frozen().logpdf(d[:, 0])

    def log_binomial(k, n, x):  # without the binomial coefficient, a constant here
        return k * log_expit(x) + (n - k) * log_expit(-x)

    for row in table.itertuples():
        inner = (
            prior.baseline.frozen().logpdf(a)
            + log_binomial(row.events_control, row.n_control, a - d / 2)
            + log_binomial(row.events_treat, row.n_treat, a + d / 2)
        )
        log_post = log_post + logsumexp(inner, axis=1)
    weights = np.exp(log_post - log_post.max())
    return np.interp(probs, np.cumsum(weights) / weights.sum(), d[:, 0])


def test_rare_event_posterior_matches_exact_quadrature_when_tau_is_near_zero():
    """With tau ~ HalfNormal(0.01) the model is a common-effect model: compare with quadrature."""
    prior = replace(get_prior("weakly_informative"), name="tiny_tau", tau=HalfNormal(0.01))
    probs = [0.05, 0.5, 0.95]
    exact = _exact_common_effect_log_or(pd.read_csv(RARE), prior, probs)
    result = fit(
        rb.AnalysisSpec(name="rare", data=str(RARE)),
        prior,
        settings=SamplerSettings(draws=1000, tune=500, chains=2, min_ess=0),
        cache=False,
    )
    draws = result.tree["posterior"]["d"].values.ravel()
    assert exact[1] > 0  # the exact posterior points the way the data do, too
    np.testing.assert_allclose(np.quantile(draws, probs), exact, atol=0.08)


def test_trials_are_centred_only_when_their_data_beat_the_expected_heterogeneity():
    """IVIG's trials (SE 0.17-0.44, DL tau 0) stay non-centred even under a vague tau prior."""
    spec = rb.resolve_spec("normal_approximation", "ivig_rsa")
    design = build_design(spec)
    for name in ("weakly_informative", "vague", "turner_obstetric"):
        assert not centred_studies(design, get_prior(name)).any(), name
    # Binomial fits are never centred.
    assert not centred_studies(
        build_design(rb.AnalysisSpec(name="s", data=str(RARE))), get_prior("vague")
    ).any()
