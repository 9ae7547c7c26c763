"""The exact engine (rebayes.bayes.exact) against independent references.

References: bayesmeta's published examples (Röver C. J Stat Softw 2020;93(6), section 3:
the Crins et al. 2014 liver-transplant data), scipy.integrate over (mu, tau) for the
normal-normal model, brute-force quadrature on fixed dense grids for the binomial-normal
model (tests/exact_reference.py), the normal-normal model's closed form against the grid
engine, the model's symmetries, refinement of every rule, and NUTS fits within 3 MCSE (slow).
"""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, special, stats

import rebayes as rb
from conftest import ivig_spec
from exact_reference import binomial_reference
from rebayes.bayes.design import build_design
from rebayes.bayes.exact import (
    BeyondReach,
    ExactSettings,
    exact_posterior,
    grid_posterior,
    normal_posterior,
    posterior_of,
    problem_from_arrays,
    reach,
    risk_ratio_at,
)
from rebayes.bayes.priors import HalfCauchy, HalfNormal, LogNormalTau2, Normal
from rebayes.bayes.spec import AnalysisSpec

DATA = Path(__file__).resolve().parent / "data"
DEFAULT = rb.get_prior("weakly_informative")

# Crins et al. (2014), acute rejection: log ORs and variances from metafor 3.8.1,
#   escalc(measure="OR", ai=c(14,16,3,9,4,0), n1i=c(61,28,18,54,36,50),
#          ci=c(15,19,8,29,11,3), n2i=c(20,28,12,54,36,34))
# (Röver 2020, Table 3; the sixth study with metafor's 0.5 continuity correction).
CRINS_Y = np.array([-2.30970256076291, -0.459532329378441, -2.30258509299405,
                    -1.75785791755237, -1.25846098961001, -2.41789593950504])
CRINS_V = np.array([0.359371833839919, 0.309576023391813, 0.775, 0.207816091954023,
                    0.412159090909091, 2.33726229765834])


HALF_NORMAL = HalfNormal(0.5)


def crins(tau=HALF_NORMAL, rows=slice(None)):
    return problem_from_arrays(effect=Normal(0.0, 4.0), tau=tau, y=CRINS_Y[rows], v=CRINS_V[rows])


# --- the normal-normal model -----------------------------------------------------------------


def test_normal_normal_reproduces_bayesmeta_published_crins_example():
    # Röver (2020), section 3.3: bayesmeta(crins.es, mu.prior.mean=0, mu.prior.sd=4,
    # tau.prior=function(t) dhalfnormal(t, scale=0.5)); ma01$summary, pposterior, qposterior.
    post = normal_posterior(crins())
    tau, mu, pred = post.tau, post.coefficient("d"), post.predictive()
    # tau: bayesmeta's figures to their 7 digits.
    assert tau.median == pytest.approx(0.3445022, abs=2e-7)
    assert tau.mean == pytest.approx(0.3810562, abs=5e-7)
    assert tau.sd == pytest.approx(0.2593672, abs=5e-7)
    assert tau.hdi() == pytest.approx((0.0, 0.8607193), abs=5e-7)
    assert tau.prob_greater(1.0) == pytest.approx(0.02097488, abs=1e-8)
    assert tau.ppf(0.99) == pytest.approx(1.109186, abs=1e-6)
    assert tau.ppf(np.array([0.005, 0.995])) == pytest.approx([0.003547657, 1.205400562],
                                                             abs=5e-8)
    # mu and the prediction: bayesmeta's own integration is accurate to ~2e-4 here (its sd
    # 0.3295 is 1.6e-4 above the brute-force value, see the next test), so to 3e-4.
    assert mu.median == pytest.approx(-1.5734823, abs=3e-5)
    assert mu.mean == pytest.approx(-1.5764366, abs=3e-5)
    assert mu.sd == pytest.approx(0.3295298, abs=3e-4)
    assert mu.hdi() == pytest.approx((-2.2312306, -0.9264079), abs=1e-3)
    assert mu.prob_greater(0.0) == pytest.approx(6.187343e-05, abs=2e-6)
    assert pred.median == pytest.approx(-1.5701653, abs=1e-4)
    assert pred.sd == pytest.approx(0.5671855, abs=1e-3)
    assert pred.hdi() == pytest.approx((-2.7661319, -0.4072970), abs=2e-3)
    # Shrinkage of the first two studies (ma01$theta[, 1:2]).
    heffron, gibelli = post.trial_effect(0), post.trial_effect(1)
    assert heffron.median == pytest.approx(-1.7411356, abs=1e-3)
    assert heffron.mean == pytest.approx(-1.7778965, abs=5e-4)
    assert gibelli.median == pytest.approx(-1.2821722, abs=1e-3)
    assert gibelli.hdi() == pytest.approx((-2.0455088, -0.3089461), abs=2e-3)


def test_normal_normal_two_randomised_studies_as_bayesmeta():
    # Röver (2020), section 3.6: ma05 (Heffron 2003 and Spada 2006 only),
    # ma05$pposterior(mu=0) = 0.9974968; scipy.integrate.dblquad over (mu, tau) (epsrel
    # 1e-11) gives 0.9975318984: bayesmeta's figure is 3.5e-5 off.
    post = normal_posterior(crins(rows=[0, 4]))
    p_benefit = 1 - post.coefficient("d").prob_greater(0.0)
    assert p_benefit == pytest.approx(0.9974968, abs=5e-5)
    assert p_benefit == pytest.approx(0.9975318984, abs=1e-9)


def _normal_normal_brute_force(y, v, mu_sd, log_tau_prior):
    """scipy.integrate.quad over mu inside quad over tau in (0, inf): the posterior's
    normaliser, P(mu > 0), E[mu], E[tau] and P(tau > 1)."""
    const = -0.5 * len(y) * np.log(2 * np.pi) - np.log(mu_sd * np.sqrt(2 * np.pi))

    opts = {"epsabs": 0.0, "epsrel": 1e-10, "limit": 400}
    centre = float(np.average(y, weights=1 / v))

    def over_mu(tau, g=lambda m: 1.0, lo=-np.inf):
        s2 = v + tau * tau
        base = const - 0.5 * float(np.log(s2).sum()) + log_tau_prior(tau)
        w, wy, wyy = float((1 / s2).sum()), float((y / s2).sum()), float((y * y / s2).sum())

        def joint(mu):
            return np.exp(base - 0.5 * (wyy - 2 * mu * wy + mu * mu * w)
                          - 0.5 * (mu / mu_sd) ** 2) * g(mu)

        if lo == -np.inf:
            return (integrate.quad(joint, -np.inf, centre, **opts)[0]
                    + integrate.quad(joint, centre, np.inf, **opts)[0])
        return integrate.quad(joint, lo, np.inf, **opts)[0]

    def over_tau(f, lo=0.0):
        return integrate.quad(f, lo, 1.0, **opts)[0] + integrate.quad(f, max(lo, 1.0), np.inf,
                                                                      **opts)[0]

    Z = over_tau(over_mu)
    return {
        "log_evidence": np.log(Z),
        "p_mu_gt_0": over_tau(lambda t: over_mu(t, lo=0.0)) / Z,
        "mu_mean": over_tau(lambda t: over_mu(t, lambda m: m)) / Z,
        "tau_mean": over_tau(lambda t: t * over_mu(t)) / Z,
        "p_tau_gt_1": integrate.quad(over_mu, 1.0, np.inf, **opts)[0] / Z,
    }


@pytest.mark.parametrize(
    ("tau_prior", "log_pdf"),
    [
        (HalfNormal(0.5), stats.halfnorm(scale=0.5).logpdf),
        (HalfCauchy(1.0), stats.halfcauchy(scale=1.0).logpdf),
        (LogNormalTau2(-2.71, 1.74), stats.lognorm(s=0.87, scale=np.exp(-1.355)).logpdf),
    ],
)
def test_normal_normal_matches_brute_force_integration(tau_prior, log_pdf):
    post = normal_posterior(crins(tau_prior))
    ref = _normal_normal_brute_force(CRINS_Y, CRINS_V, 4.0, lambda t: float(log_pdf(t)))
    assert post.log_marginal_likelihood == pytest.approx(ref["log_evidence"], abs=1e-8)
    assert post.coefficient("d").prob_greater(0.0) == pytest.approx(ref["p_mu_gt_0"], rel=1e-6)
    assert post.coefficient("d").mean == pytest.approx(ref["mu_mean"], abs=1e-8)
    assert post.tau.mean == pytest.approx(ref["tau_mean"], abs=1e-6)
    assert post.tau.prob_greater(1.0) == pytest.approx(ref["p_tau_gt_1"], abs=1e-7)


@pytest.mark.parametrize(
    "tau_prior", [HalfNormal(0.5), HalfCauchy(1.0), LogNormalTau2(-2.71, 1.74)]
)
def test_grid_engine_matches_the_closed_form_normal_normal_model(tau_prior):
    # The grid engine (used for binomial data and non-normal priors) on a normal-normal model
    # must reproduce the analytic engine: coefficients, tau, prediction and shrinkage.
    problem = crins(tau_prior)
    exact, grid = normal_posterior(problem), grid_posterior(problem)
    assert grid.log_marginal_likelihood == pytest.approx(exact.log_marginal_likelihood, abs=1e-6)
    for a, b in [(exact.coefficient("d"), grid.coefficient("d")), (exact.tau, grid.tau),
                 (exact.predictive(), grid.predictive()),
                 (exact.trial_effect(0), grid.trial_effect(0)),
                 (exact.trial_effect(5), grid.trial_effect(5))]:
        np.testing.assert_allclose(b.quantiles(), a.quantiles(), atol=1e-5)
        assert b.prob_greater(-1.5) == pytest.approx(a.prob_greater(-1.5), abs=1e-5)
        assert b.mean == pytest.approx(a.mean, abs=1e-5)


def test_grid_engine_matches_the_closed_form_on_a_meta_regression_with_strata():
    # Normal likelihood, RSA type as a covariate that differs between a trial's strata (which
    # share its random effect): the grid's multi-row trials and turned grids for p = 2.
    from dataclasses import replace

    from rebayes.bayes.design import prior_on_model_scale
    from rebayes.bayes.exact import problem_from_design

    spec = replace(ivig_spec("rsa_type"), likelihood="normal")
    design = build_design(spec, rb.load_trials("ivig_rsa"))
    assert len(design.studies) < design.n_rows
    problem = problem_from_design(design, prior_on_model_scale(DEFAULT, design))
    exact, grid = normal_posterior(problem), grid_posterior(problem)
    assert grid.log_marginal_likelihood == pytest.approx(exact.log_marginal_likelihood, abs=1e-6)
    for name in exact.names:
        np.testing.assert_allclose(grid.coefficient(name).quantiles(),
                                   exact.coefficient(name).quantiles(), atol=1e-5)
        assert grid.coefficient(name).prob_greater(0.0) == pytest.approx(
            exact.coefficient(name).prob_greater(0.0), abs=1e-5)
    secondary = {"d": 1.0, "secondary": 1.0}
    assert grid.predictive(secondary).prob_greater(0.0) == pytest.approx(
        exact.predictive(secondary).prob_greater(0.0), abs=1e-5)
    np.testing.assert_allclose(grid.tau.quantiles(), exact.tau.quantiles(), atol=1e-5)


# --- the binomial-normal model ---------------------------------------------------------------

# Three trials: a treatment that raises the event rate, one zero cell, one larger trial.
SMALL_EVENTS = np.array([[3, 9], [0, 2], [12, 11]])
SMALL_N = np.array([[40, 41], [25, 25], [120, 118]])


def _small(events=SMALL_EVENTS, n=SMALL_N, tau=HALF_NORMAL):
    return posterior_of(problem_from_arrays(effect=Normal(0.0, 1.0), tau=tau, events=events,
                                            n=n))


def test_binomial_normal_matches_brute_force_quadrature():
    post = _small()
    ref = binomial_reference(SMALL_EVENTS, SMALL_N, thresholds=(0.0, 0.5), span=8.0,
                             tau_max=3.0)
    d = post.coefficient("d")
    assert post.log_marginal_likelihood == pytest.approx(ref.log_evidence, abs=1e-5)
    assert d.prob_greater(0.0) == pytest.approx(ref.p_d_greater[0.0], abs=2e-6)
    assert d.prob_greater(0.5) == pytest.approx(ref.p_d_greater[0.5], abs=2e-6)
    assert d.mean == pytest.approx(ref.d_mean, abs=2e-6)
    assert post.tau.prob_greater(0.2) == pytest.approx(ref.p_tau_greater[0.2], abs=2e-6)
    # The reference's prediction carries O(h) error from the step of Phi((d - t) / tau) at
    # small tau (3e-6 at h = 0.005, 1e-5 at 0.01): a looser check.
    pred = post.predictive()
    assert pred.prob_greater(0.0) == pytest.approx(ref.p_predictive_greater[0.0], abs=3e-5)
    assert pred.prob_greater(0.5) == pytest.approx(ref.p_predictive_greater[0.5], abs=3e-5)


def test_log_evidence_of_two_trials_with_a_double_zero_row():
    events, n = np.array([[0, 0], [4, 1]]), np.array([[30, 30], [50, 48]])
    post = _small(events, n, HalfNormal(1.0))
    ref = binomial_reference(events, n, tau_prior=stats.halfnorm(scale=1.0), span=10.0,
                             tau_max=6.0, d_span=(-6.0, 6.0))
    assert post.log_marginal_likelihood == pytest.approx(ref.log_evidence, abs=1e-5)
    assert post.coefficient("d").prob_greater(0.0) == pytest.approx(ref.p_d_greater[0.0],
                                                                      abs=2e-6)
    assert post.tau.prob_greater(0.2) == pytest.approx(ref.p_tau_greater[0.2], abs=2e-6)


# Rows far from normal: no events against only events (no mode), a single trial of one
# participant per arm, one event in 40, and ISIS-4's 29,000 per arm.
ROUGH_EVENTS = np.array([[0, 20], [0, 1], [1, 30], [2103, 2216]])
ROUGH_N = np.array([[20, 20], [1, 1], [40, 40], [29039, 29011]])


def test_row_likelihoods_match_quadrature_over_the_baseline():
    from rebayes.bayes.exact.rows import RowLikelihoods

    rows = RowLikelihoods(ROUGH_EVENTS, ROUGH_N, Normal(0.0, 2.0))
    for r, (events, n) in enumerate(zip(ROUGH_EVENTS, ROUGH_N, strict=True)):
        for theta in (rows.mode[r] - 1.0, rows.mode[r], rows.mode[r] + 0.5, -2.0, 3.0):
            def integrand(a, theta=theta, events=events, n=n):
                return np.exp(stats.binom.logpmf(events[0], n[0], special.expit(a - theta / 2))
                              + stats.binom.logpmf(events[1], n[1], special.expit(a + theta / 2))
                              + stats.norm.logpdf(a, 0, 2))

            centre = special.logit((events.sum() + 0.5) / (n.sum() + 1))
            reference = integrate.quad(integrand, -30, 30, points=[centre], epsabs=0,
                                       epsrel=1e-12, limit=400)[0]
            value = rows.log_likelihood(np.array([r]), np.array([theta]))[0][0]
            if np.isfinite(np.log(reference)):  # ISIS-4 far from its mode underflows quad
                assert value == pytest.approx(np.log(reference), abs=1e-6)


def test_trial_integrals_match_quadrature_for_far_from_normal_rows():
    from rebayes.bayes.exact.rows import RowLikelihoods
    from rebayes.bayes.exact.trials import TrialLikelihoods

    rows = RowLikelihoods(ROUGH_EVENTS, ROUGH_N, Normal(0.0, 2.0))
    rows.tabulate(np.full(4, -400.0), np.full(4, 400.0))
    trials = TrialLikelihoods(rows, np.arange(4))
    eta, tau = np.meshgrid(np.array([-2.0, 1.0]), np.array([0.0, 0.1, 1.0, 5.0, 20.0]))
    eta, tau = eta.ravel(), tau.ravel()
    for r in range(4):
        _, log_l, _ = trials.log_likelihood(np.array([r]), eta[None, :], tau)
        for e, t, value in zip(eta, tau, log_l[0], strict=True):
            def integrand(theta, e=e, t=t, r=r):
                return np.exp(rows.log_likelihood(np.array([r]), np.array([theta]))[0][0]
                              + stats.norm.logpdf(theta, e, t))

            if t == 0:
                reference = np.exp(rows.log_likelihood(np.array([r]), np.array([e]))[0][0])
            else:
                # In theta, piece by piece between the row's mode, eta and the product's
                # peak, each +- 40 of its own width, so that no narrow peak goes unseen.
                m, s = rows.mode[r], rows.scale[r]
                peak = (m * t * t + e * s * s) / (t * t + s * s)
                width = t * s / np.hypot(t, s)
                ends = sorted({m - 40 * s, m, m + 40 * s, e - 40 * t, e, e + 40 * t,
                               peak - 40 * width, peak, peak + 40 * width})
                reference = sum(integrate.quad(integrand, a, b, epsabs=0, epsrel=1e-12,
                                               limit=400)[0] for a, b in zip(ends[:-1], ends[1:],
                                                                   strict=True))
            if reference > 1e-250:
                # Far from a row's mode (ISIS-4 at log L = -443) the table is read to 1e-7.
                tolerance = max(2e-5, 1e-7 * abs(np.log(reference)))
                assert value == pytest.approx(np.log(reference), abs=tolerance), (r, e, t)


def test_ivig_overall_analysis():
    design = build_design(ivig_spec("overall"), rb.load_trials("ivig_rsa"))
    post = exact_posterior(design, DEFAULT)
    d = post.coefficient("d")
    # tests/exact_reference.py: binomial_reference(design.events, design.n) (theta step 0.01,
    # tau step 0.005, d in [-4, 4]) gives P(d > 0) = 0.93645787, E[d] = 0.30687466 and
    # log p(y) = -60.4297211; a 3201-point theta grid with 800 Gauss-Legendre nodes gives
    # P(d > 0) = 0.93645788 and a median of 0.30700449.
    assert d.prob_greater(0.0) == pytest.approx(0.93645787, abs=2e-6)
    assert d.mean == pytest.approx(0.30687466, abs=2e-6)
    assert d.median == pytest.approx(0.3070045, abs=2e-6)
    assert post.log_marginal_likelihood == pytest.approx(-60.4297211, abs=2e-5)
    # Issue 25 quotes brms: P(benefit) 0.937 +- 0.004 (Monte Carlo). Its own grid figures
    # (0.9352, OR median 1.355) are 1.2e-3 and 0.3% off the two independent integrations
    # above, which agree to 1e-7; the report's NUTS figure is 0.929.
    assert abs(d.prob_greater(0.0) - 0.937) < 0.004
    assert np.exp(d.median) == pytest.approx(1.3593, abs=1e-4)


def test_swapping_the_arms_mirrors_the_posterior():
    # The arms are coded -+1/2 (rebayes.bayes.model.arm_log_odds): swapping them turns
    # theta into -theta, so P(d > t) becomes P(d < -t) exactly.
    a = _small()
    b = _small(SMALL_EVENTS[:, ::-1], SMALL_N[:, ::-1])
    for t in (0.0, 0.3, -0.4):
        assert b.coefficient("d").prob_greater(-t) == pytest.approx(
            1 - a.coefficient("d").prob_greater(t), abs=1e-9)
    assert b.log_marginal_likelihood == pytest.approx(a.log_marginal_likelihood, abs=1e-9)
    assert b.tau.median == pytest.approx(a.tau.median, abs=1e-9)


def _csv_design(tmp_path, rows, higher_is_better, name="t"):
    path = tmp_path / f"{name}.csv"
    lines = ["study,events_treat,n_treat,events_control,n_control"]
    lines += [f"{s},{et},{nt},{ec},{nc}" for s, et, nt, ec, nc in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    spec = AnalysisSpec(name="overall", data=str(path), higher_is_better=higher_is_better)
    return build_design(spec)


def test_a_prior_towards_benefit_is_turned_when_fewer_events_are_better(tmp_path):
    # An enthusiastic prior (d ~ N(log 1.5, 0.2465)) expects benefit: OR 1.5 when more events
    # are better, OR 1 / 1.5 when fewer are (rebayes.bayes.model.model_data). A harmful
    # treatment read with fewer events better, and the same table with the arms swapped read
    # with more events better, are the same question: mirrored posteriors.
    rows = [("A", 12, 100, 8, 100), ("B", 30, 210, 22, 205), ("B", 5, 40, 2, 41)]
    harmful = _csv_design(tmp_path, rows, higher_is_better=False, name="harm")
    swapped = _csv_design(tmp_path, [(s, ec, nc, et, nt) for s, et, nt, ec, nc in rows],
                          higher_is_better=True, name="swap")
    assert len(harmful.studies) == 3  # a repeated study name without strata: its own trial
    prior = rb.get_prior("enthusiastic")
    a, b = exact_posterior(harmful, prior), exact_posterior(swapped, prior)
    for t in (0.0, 0.2, 0.5):
        assert a.coefficient("d").prob_greater(t) == pytest.approx(
            1 - b.coefficient("d").prob_greater(-t), abs=1e-9)
    # The prior pulled towards benefit (lower d): P(harm) is lower than under a neutral prior.
    neutral = exact_posterior(harmful, rb.get_prior("skeptical"))
    assert a.coefficient("d").prob_greater(0.0) < neutral.coefficient("d").prob_greater(0.0)


# --- refinement: halving every step and doubling every rule ----------------------------------

REFINED = ExactSettings().refined()


def _probabilities(post):
    d, tau = post.coefficient(post.names[0]), post.tau
    return np.r_[
        [d.prob_greater(t) for t in (-0.3, 0.0, 0.2)],
        [tau.prob_greater(t) for t in (0.1, 0.3)],
        post.predictive().prob_greater(0.0),
        d.cdf(d.quantiles()),  # the quantiles' probabilities under the refined posterior
    ]


def _refinement_gap(design_or_problem, prior=DEFAULT):
    if isinstance(design_or_problem, tuple):
        events, n, tau = design_or_problem
        make = lambda s: posterior_of(problem_from_arrays(  # noqa: E731
            effect=Normal(0.0, 1.0), tau=tau, events=events, n=n), s)
    else:
        make = lambda s: exact_posterior(design_or_problem, prior, s)  # noqa: E731
    coarse, fine = make(ExactSettings()), make(REFINED)
    a = _probabilities(coarse)
    b = np.r_[_probabilities(fine)[:6], fine.coefficient(fine.names[0]).cdf(
        coarse.coefficient(coarse.names[0]).quantiles())]
    return np.abs(a - b).max(), abs(coarse.log_marginal_likelihood
                                    - fine.log_marginal_likelihood)


@pytest.mark.parametrize(
    "table",
    [
        # double-zero and single-zero rows (rare events)
        (np.array([[0, 0], [0, 1], [2, 0], [1, 3]]), np.array([[50, 50], [80, 82], [60, 61],
                                                              [200, 190]]), HalfNormal(0.5)),
        # homogeneous trials: the posterior of tau piles up at 0
        (np.array([[20, 25], [21, 26], [19, 24], [40, 50]]),
         np.array([[100, 100], [100, 100], [100, 100], [200, 200]]), HalfCauchy(0.5)),
        # an empirical log-normal prior (no mass at tau = 0) and a huge trial (ISIS-4's size)
        (np.array([[2103, 2216], [23, 9], [7, 2]]),
         np.array([[29039, 29011], [135, 135], [200, 200]]), LogNormalTau2(-2.71, 1.74)),
    ],
    ids=["rare-events", "homogeneous", "lognormal-mega-trial"],
)
def test_refining_every_rule_changes_probabilities_by_less_than_1e_5(table):
    gap, log_evidence_gap = _refinement_gap(table)
    assert gap < 1e-5
    assert log_evidence_gap < 1e-4


def test_refinement_on_ivig_and_a_meta_regression():
    design = build_design(ivig_spec("overall"), rb.load_trials("ivig_rsa"))
    assert _refinement_gap(design)[0] < 1e-5
    timing = build_design(ivig_spec("timing"), rb.load_trials("ivig_rsa"))
    assert _refinement_gap(timing)[0] < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize("folder", ["rosiglitazone", "magnesium", "hcq", "bcg"])
def test_refinement_on_real_tables(folder):
    design = build_design(AnalysisSpec(name="overall", data=str(DATA / folder)))
    gap, log_evidence_gap = _refinement_gap(design)
    assert gap < 1e-5
    assert log_evidence_gap < 2e-4


# --- covariates and groups -------------------------------------------------------------------


def test_meta_regression_on_latitude_and_its_reach():
    design = build_design(AnalysisSpec(name="lat", data=str(DATA / "bcg"), covariates=("ablat",),
                                       effect="contrast"))
    post = exact_posterior(design, DEFAULT)
    assert post.names == ("d", "ablat")
    slope = post.coefficient("ablat")
    # BCG protects more far from the equator (fewer cases is better): the slope is negative.
    assert slope.prob_greater(0.0) < 0.01
    # The design centres latitude at the trials' mean, so d is the effect there and the
    # effect at latitude 40 is d + (40 - mean) beta, a linear combination.
    assert design.centres == pytest.approx((33.46153846153846,))
    shift = 40.0 - design.centres[0]
    at_40 = post.linear({"d": 1.0, "ablat": shift})
    # Near the mean latitude BCG protects (d < 0); at 40 degrees more so.
    assert at_40.median < post.coefficient("d").median < 0
    draws = post.draws(2, 500, seed=3)
    assert draws["beta"].shape == (2, 500, 1)
    mc = draws["d"] + shift * draws["beta"][..., 0]
    assert abs(mc.mean() - at_40.mean) < 4 * at_40.sd / np.sqrt(mc.size) * 3
    four = build_design(AnalysisSpec(name="all", data=str(DATA / "bcg"),
                                     covariates=("ablat", "alloc"), effect="contrast"))
    assert "at most 3" in reach(four, DEFAULT)
    assert reach(design, DEFAULT) is None
    with pytest.raises(BeyondReach, match="4 coefficients"):
        exact_posterior(four, DEFAULT)


def test_separate_effects_per_group():
    design = build_design(AnalysisSpec(name="sep", data=str(DATA / "bcg"), subgroup=("alloc",),
                                       effect="separate"))
    post = exact_posterior(design, DEFAULT)
    assert post.names == ("d[random]", "d[alternate]", "d[systematic]")
    difference = post.linear({"d[random]": 1.0, "d[alternate]": -1.0})
    assert 0.0 < difference.prob_greater(0.0) < 1.0
    assert post.draws(1, 200, seed=1)["d"].shape == (1, 200, 3)


def test_a_trial_whose_strata_differ_in_covariates_has_no_exact_shrunken_effect():
    design = build_design(ivig_spec("rsa_type"), rb.load_trials("ivig_rsa"))
    post = exact_posterior(design, DEFAULT)
    split = [i for i, s in enumerate(design.row_study) if design.row_study.count(s) == 2]
    with pytest.raises(BeyondReach, match="strata differ"):
        post.trial_effect(split[0])
    whole = next(i for i, s in enumerate(design.row_study) if design.row_study.count(s) == 1)
    assert 0 < post.trial_effect(whole).prob_greater(0.0) < 1


# --- what the result gives -------------------------------------------------------------------


def test_risk_ratio_at_a_stated_control_risk_is_a_monotone_map_of_the_log_odds_ratio():
    post = _small()
    d = post.coefficient("d")
    p0 = 0.2
    rr = post.risk_ratio(d, control_risk=p0)
    assert rr.prob_greater(1.0) == pytest.approx(d.prob_greater(0.0), abs=1e-12)
    expected = special.expit(special.logit(p0) + d.quantiles()) / p0
    np.testing.assert_allclose(rr.quantiles(), expected, rtol=1e-10)
    # The mean on the RR scale by quadrature of the log OR's density.
    mean = integrate.quad(lambda t: special.expit(special.logit(p0) + t) / p0 * d.pdf(t),
                          -6, 6, limit=200)[0]
    assert rr.mean == pytest.approx(mean, abs=1e-6)
    lo, hi = rr.hdi()
    assert rr.cdf(hi) - rr.cdf(lo) == pytest.approx(0.95, abs=1e-8)
    assert rr.pdf(lo) == pytest.approx(rr.pdf(hi), rel=1e-3)  # the HDI's ends: equal density
    assert risk_ratio_at(d, p0).median == pytest.approx(rr.median)
    with pytest.raises(ValueError, match="control risk"):
        post.risk_ratio(d)


def test_draws_are_seeded_and_follow_the_exact_marginals():
    post = _small()
    a, b = post.draws(4, 1000, seed=7), post.draws(4, 1000, seed=7)
    assert set(a) == {"tau", "d", "z", "alpha"}
    assert a["z"].shape == (4, 1000, 3) and a["alpha"].shape == (4, 1000, 3)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert (a["tau"] >= 0).all()
    d = post.coefficient("d")
    n = a["d"].size
    assert abs(a["d"].mean() - d.mean) < 4 * d.sd / np.sqrt(n)
    assert abs((a["d"] > 0).mean() - d.prob_greater(0.0)) < 4 * np.sqrt(0.25 / n)
    assert abs((a["tau"] > 0.2).mean() - post.tau.prob_greater(0.2)) < 4 * np.sqrt(0.25 / n)
    # Each trial's effect from the draws against its exact shrunken marginal.
    theta = a["d"] + a["tau"] * a["z"][..., 1]
    exact = post.trial_effect(1)
    assert abs(theta.mean() - exact.mean) < 4 * exact.sd / np.sqrt(n)


def test_the_package_imports_numpy_and_scipy_only():
    code = (
        "import sys, rebayes.bayes.exact; "
        "print([m for m in ('pymc', 'pytensor', 'arviz', 'arviz_base', 'xarray', 'nutpie') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_normal_likelihood_from_a_design_matches_brute_force():
    from rebayes.bayes.design import prior_on_model_scale

    spec = AnalysisSpec(name="n", data=str(DATA / "bcg"), likelihood="normal")
    design = build_design(spec)
    prior = prior_on_model_scale(DEFAULT, design)
    post = exact_posterior(design, prior)
    # Fewer cases is better: the turned effect prior keeps its mean 0.
    tau_log_pdf = stats.halfnorm(scale=prior.tau.sigma).logpdf
    ref = _normal_normal_brute_force(design.yi, design.vi, prior.effect.sigma,
                                     lambda t: float(tau_log_pdf(t)))
    assert post.log_marginal_likelihood == pytest.approx(ref["log_evidence"], abs=1e-8)
    assert post.coefficient("d").prob_greater(0.0) == pytest.approx(ref["p_mu_gt_0"], rel=1e-6)
    assert post.tau.mean == pytest.approx(ref["tau_mean"], abs=1e-6)


def test_a_user_prior_family_without_a_registered_density_works_through_scipy():
    # A new family needs no engine code: its frozen() scipy distribution gives the density.
    class Logistic(Normal):
        def frozen(self):
            return stats.logistic(self.mu, self.sigma)

    problem = problem_from_arrays(effect=Logistic(0.0, 1.0), tau=HalfNormal(0.5),
                                  events=SMALL_EVENTS, n=SMALL_N)
    object.__setattr__(problem, "priors", (Logistic(0.0, 1.0),))
    post = grid_posterior(problem)
    normal = _small()
    # A logistic prior of scale 1 is wider than N(0, 1): d moves further towards the data.
    assert post.coefficient("d").mean > normal.coefficient("d").mean


# --- against NUTS (slow) ---------------------------------------------------------------------


def _nuts_z_scores(design, spec, prior=DEFAULT):
    """(exact, NUTS, MCSE) for every coefficient's mean and P(> 0), and tau's median."""
    from arviz_stats.base import array_stats

    fit = rb.fit(spec, prior, design=design, cache=False)
    posterior = fit.tree.posterior
    exact = exact_posterior(design, fit.prior)
    checks = []
    for name in exact.names:
        draws = (posterior["d"] if name in ("d",) else posterior["d"].sel(subgroup=name[2:-1])
                 if name.startswith("d[") else posterior["beta"].sel(coef=name)).values
        m = exact.coefficient(name)
        checks.append((m.mean, draws.mean(), float(array_stats.mcse(draws, method="mean"))))
        # An indicator that is constant over the draws has an estimated MCSE of 0: its
        # error is at least that of independent draws at the exact probability.
        ind = (draws > 0).astype(float)
        p = m.prob_greater(0.0)
        floor = np.sqrt(p * (1 - p) / ind.size)
        checks.append((p, ind.mean(), max(float(array_stats.mcse(ind, method="mean")), floor)))
    tau = posterior["tau"].values
    checks.append((exact.tau.median, np.median(tau),
                   float(array_stats.mcse(tau, method="quantile", prob=0.5))))
    return checks


def _nuts_agrees(design, spec, prior=DEFAULT, z=3.0):
    return [(a, b, s) for a, b, s in _nuts_z_scores(design, spec, prior)
            if abs(a - b) > z * s + 1e-12]


@pytest.mark.slow
@pytest.mark.parametrize("folder", ["bcg", "rosiglitazone", "magnesium", "hcq"])
def test_nuts_agrees_within_3_mcse_on_real_tables(folder):
    spec = AnalysisSpec(name="overall", data=str(DATA / folder))
    assert _nuts_agrees(build_design(spec), spec) == []


@pytest.mark.slow
@pytest.mark.parametrize("script", ["overall.py", "timing.py", "rsa_type.py"])
def test_nuts_agrees_within_3_mcse_on_ivig(script):
    spec = ivig_spec(script.removesuffix(".py"))
    design = build_design(spec, rb.load_trials("ivig_rsa"))
    assert _nuts_agrees(design, spec) == []


@pytest.mark.slow
def test_nuts_agrees_on_a_latitude_meta_regression():
    spec = AnalysisSpec(name="lat", data=str(DATA / "bcg"), covariates=("ablat",),
                        effect="contrast")
    assert _nuts_agrees(build_design(spec), spec) == []


def _simulated_tables(n, seed=2024):
    """Cochrane-like tables, as benchmarks/bench_batch.py's generator draws them."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        k = int(rng.integers(2, 31))
        control_risk = rng.uniform(0.01, 0.80)
        mu = rng.normal(0.0, 0.5)
        tau = abs(rng.normal(0.0, 0.3))
        n_arm = np.exp(rng.uniform(np.log(20), np.log(2000), size=(k, 2))).round().astype(int)
        logit_p0 = np.log(control_risk / (1 - control_risk)) + rng.normal(0, 0.3, size=k)
        theta = mu + tau * rng.normal(size=k)
        events_treat = rng.binomial(n_arm[:, 0], special.expit(logit_p0 + theta))
        events_control = rng.binomial(n_arm[:, 1], special.expit(logit_p0))
        yield [(f"T{j + 1}", events_treat[j], n_arm[j, 0], events_control[j], n_arm[j, 1])
               for j in range(k)]


@pytest.mark.slow
def test_nuts_agrees_within_3_mcse_on_50_simulated_cochrane_like_tables(tmp_path):
    # No set of 50 real tables ships with the tests: these are benchmarks/bench_batch.py's
    # simulated Cochrane-like meta-analyses (2-30 trials, arms of 20-2000, control risk
    # 1-80%). NUTS's error against the exact answer, in its own MCSE, must look like a
    # standard normal: no bias, spread about 1, at most 3% beyond 3 MCSE (MCSE is itself
    # estimated: measured 4 of 149, z 3.2-3.7, where the brute force of
    # tests/exact_reference.py agrees with the exact engine to 1e-6; see the next test),
    # none beyond 4.5.
    z = []
    for i, rows in enumerate(_simulated_tables(50)):
        design = _csv_design(tmp_path, rows, higher_is_better=True, name=f"t{i}")
        spec = AnalysisSpec(name="overall", data=str(tmp_path / f"t{i}.csv"),
                            higher_is_better=True)
        z += [(b - a) / s for a, b, s in _nuts_z_scores(design, spec) if s > 0]
    z = np.array(z)
    assert len(z) >= 145
    assert abs(z.mean()) < 0.3
    assert 0.7 < np.sqrt((z**2).mean()) < 1.3
    assert (np.abs(z) > 3).mean() <= 0.03
    assert np.abs(z).max() < 4.5


@pytest.mark.slow
@pytest.mark.parametrize("index", [19, 38])
def test_where_nuts_strays_the_brute_force_agrees_with_the_exact_engine(tmp_path, index):
    # Tables 19 and 38 of the previous test: NUTS's d mean was 3.3 and 3.7 MCSE off.
    rows = list(_simulated_tables(index + 1))[index]
    design = _csv_design(tmp_path, rows, higher_is_better=True)
    post = exact_posterior(design, DEFAULT)
    d = post.coefficient("d")
    lo = np.floor((d.mean - 10 * d.sd) * 100) / 100
    hi = np.ceil((d.mean + 10 * d.sd) * 100) / 100
    ref = binomial_reference(design.events, design.n, d_span=(lo, hi), theta_step=0.005,
                             tau_max=3.0, tau_step=0.0025, tau_thresholds=(0.3,))
    assert d.mean == pytest.approx(ref.d_mean, abs=1e-6)
    assert d.prob_greater(0.0) == pytest.approx(ref.p_d_greater[0.0], abs=1e-6)
    assert post.tau.prob_greater(0.3) == pytest.approx(ref.p_tau_greater[0.3], abs=1e-5)
    assert post.log_marginal_likelihood == pytest.approx(ref.log_evidence, abs=1e-5)
