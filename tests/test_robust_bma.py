"""The robust Bayesian model average: marginal likelihoods, model probabilities, calibration.

The quadrature (rebayes.bayes.robust.quadrature) is checked against integrals computed
independently: closed forms, scipy.integrate on the natural parameters for models of up to
three parameters, and plain Monte Carlo over the prior for the four- and five-parameter
selection models. The selection model's posterior is checked for calibration by
simulation-based calibration. RoBMA's published binary example needs the binomial-normal
no-bias models: rebayes.bayes.robust.binomial fits them.
"""

import math

import numpy as np
import pytest
from scipy import integrate, stats

from rebayes.bayes.priors import InverseGamma, StudentT
from rebayes.bayes.robust.averaging import LOG_RATIO_NOTE, robust_bma
from rebayes.bayes.robust.likelihood import StudyData
from rebayes.bayes.robust.models import normal_approximation, weighted_quantiles
from rebayes.bayes.robust.space import (
    PEESE_SCALE,
    RobustModel,
    RobustPriors,
    default_priors,
    model_space,
)
from rebayes.frequentist.selection import interval_probabilities

PRIORS = RobustPriors(effect=StudentT(0.0, 0.58, 4.0), tau=InverseGamma(1.77, 0.55))
# Four studies whose one-sided p values fall in each interval of (0.025, 0.05, 0.5):
# z = 2.5, 1.8, 0.5, -0.4.
SE = np.array([0.2, 0.25, 0.3, 0.22])
Y = np.array([2.5, 1.8, 0.5, -0.4]) * SE
DATA = StudyData.from_effects(Y, SE**2, PRIORS.steps)


def fit(effect, heterogeneity, bias, data=DATA, priors=PRIORS):
    return normal_approximation(RobustModel(effect, heterogeneity, bias, 1.0), data, priors)


def likelihood(mu, tau, b=0.0, bias="none"):
    """The studies' likelihood, vectorised over arrays of parameters (numpy only)."""
    mu, tau, b = (np.asarray(x, dtype=float)[..., None] for x in (mu, tau, b))
    var = SE**2 + tau**2
    shift = {"none": 0.0 * b, "PET": b * SE, "PEESE": b * SE**2}[bias]
    return np.exp((-0.5 * (Y - mu - shift) ** 2 / var - 0.5 * np.log(2 * np.pi * var))
                  .sum(-1))


T_PRIOR = stats.t(4, 0, 0.58)
IG_PRIOR = stats.invgamma(1.77, scale=0.55)


def t_pdf(mu):
    return T_PRIOR.pdf(mu)


def ig_pdf(tau):
    return IG_PRIOR.pdf(tau)


def halfcauchy_pdf(b, scale):
    return 2 / (np.pi * scale * (1 + (b / scale) ** 2))


def simpson_2d(f, x, y):
    """Simpson's rule on a dense tensor grid (x, y): an integral independent of the code's."""
    values = f(x[:, None], y[None, :])
    return integrate.simpson(integrate.simpson(values, x=y, axis=1), x=x)


def test_the_data_fill_every_interval():
    assert list(DATA.counts) == [1, 1, 1, 1]


def test_closed_form_model():
    got = fit(False, False, "none")
    assert got.log_marginal == pytest.approx(stats.norm.logpdf(Y, 0, SE).sum(), rel=1e-13)
    assert got.method == "closed form"


@pytest.mark.parametrize(("effect", "heterogeneity", "bias"), [
    (True, False, "none"), (False, True, "none"), (False, False, "PET"),
    (False, False, "PEESE"),
])
def test_one_parameter_models_match_scipy_quad(effect, heterogeneity, bias):
    if effect:
        z, _ = integrate.quad(lambda m: t_pdf(m) * likelihood(m, 0.0), -np.inf, np.inf,
                              epsabs=0, epsrel=1e-11)
    elif heterogeneity:
        z, _ = integrate.quad(lambda t: ig_pdf(t) * likelihood(0.0, t), 0, np.inf,
                              epsabs=0, epsrel=1e-11)
    else:
        scale = 1.0 if bias == "PET" else PEESE_SCALE
        z, _ = integrate.quad(lambda b: halfcauchy_pdf(b, scale)
                              * likelihood(0.0, 0.0, b, bias), 0, np.inf, epsabs=0,
                              epsrel=1e-11)
    got = fit(effect, heterogeneity, bias)
    assert got.log_marginal == pytest.approx(math.log(z), abs=1e-8)


@pytest.mark.parametrize(("effect", "heterogeneity", "bias"), [
    (True, True, "none"), (True, False, "PET"), (False, True, "PEESE"),
])
def test_two_parameter_models_match_dense_simpson(effect, heterogeneity, bias):
    # Simpson's rule on 2001 x 2001 points in the natural parameters (mu in [-6, 6], tau in
    # (0, 20], b = e^u with u in [-25, 9] for the half-Cauchy's long tail).
    scale = 1.0 if bias == "PET" else PEESE_SCALE
    mu = np.linspace(-6, 6, 2001)
    tau = np.linspace(1e-9, 20, 2001)
    u = np.linspace(-25, 9, 2001)
    if bias == "none":
        z = simpson_2d(lambda m, t: t_pdf(m) * ig_pdf(t) * likelihood(m, t), mu, tau)
    elif effect:
        z = simpson_2d(lambda m, v: t_pdf(m) * halfcauchy_pdf(np.exp(v), scale) * np.exp(v)
                       * likelihood(m, 0 * m, np.exp(v), bias), mu, u)
    else:
        z = simpson_2d(lambda t, v: ig_pdf(t) * halfcauchy_pdf(np.exp(v), scale) * np.exp(v)
                       * likelihood(0 * t, t, np.exp(v), bias), tau, u)
    got = fit(effect, heterogeneity, bias)
    assert got.log_marginal == pytest.approx(math.log(z), abs=2e-4)


def test_selection_model_without_effect_or_heterogeneity_matches_gauss_legendre():
    # Weights 1 >= w2 >= w3 >= w4 >= 0, uniform on that region (density 3! = 6: the
    # cumulative Dirichlet(1, 1, 1, 1)); with w2 = a, w3 = a b, w4 = a b c over the unit cube
    # the Jacobian is a^2 b. Gauss-Legendre, 60 nodes per axis.
    x, w = np.polynomial.legendre.leggauss(60)
    x, w = (x + 1) / 2, w / 2
    a, b, c = np.meshgrid(x, x, x, indexing="ij")
    weight = (w[:, None, None] * w[None, :, None] * w[None, None, :]).ravel()
    omega = np.column_stack([np.ones(a.size), a.ravel(), (a * b).ravel(), (a * b * c).ravel()])
    probs = interval_probabilities(0.0, 0.0, SE**2, PRIORS.steps)[None]
    numerator = np.prod(omega[:, DATA.group] * stats.norm.pdf(Y, 0, SE), axis=1)
    values = 6 * (a**2 * b).ravel() * numerator / np.prod(
        np.einsum("skj,sj->sk", np.broadcast_to(probs, (a.size, 4, 4)), omega), axis=1)
    z = float((weight * values).sum())
    got = fit(False, False, "selection")
    assert got.log_marginal == pytest.approx(math.log(z), abs=2e-4)


def prior_monte_carlo(effect, heterogeneity, n, seed):
    """log E_prior[likelihood] of a selection model by plain Monte Carlo, and its SE."""
    rng = np.random.default_rng(seed)
    mu = stats.t.rvs(4, 0, 0.58, size=n, random_state=rng) if effect else np.zeros(n)
    tau = (stats.invgamma.rvs(1.77, scale=0.55, size=n, random_state=rng) if heterogeneity
           else np.zeros(n))
    eta = rng.dirichlet(np.ones(4), size=n)
    omega = np.column_stack([np.ones(n), eta[:, 1:].sum(1), eta[:, 2:].sum(1), eta[:, 3]])
    values = np.empty(n)
    for start in range(0, n, 50_000):
        block = slice(start, start + 50_000)
        probs = interval_probabilities(mu[block], tau[block] ** 2, SE**2, PRIORS.steps)
        sd = np.sqrt(SE**2 + tau[block, None] ** 2)
        numerator = np.prod(omega[block][:, DATA.group]
                            * stats.norm.pdf(Y, mu[block, None], sd), axis=1)
        values[block] = numerator / np.prod(np.einsum("skj,sj->sk", probs, omega[block]),
                                            axis=1)
    mean = values.mean()
    return math.log(mean), values.std() / mean / math.sqrt(n)


@pytest.mark.parametrize(("effect", "heterogeneity"), [(True, False), (False, True),
                                                        (True, True)])
def test_four_and_five_parameter_selection_models_match_prior_monte_carlo(effect,
                                                                          heterogeneity):
    truth, rel_se = prior_monte_carlo(effect, heterogeneity, 400_000, seed=20230113)
    got = fit(effect, heterogeneity, "selection")
    # Monte Carlo error (a relative SE of ~0.5%) plus the quadrature's own (~0.3%).
    assert abs(got.log_marginal - truth) < 4 * rel_se + 5e-3
    assert got.log_error < 0.1


def test_prior_model_probabilities_are_robma_psmas_split():
    models = model_space(PRIORS)
    assert len(models) == 16
    assert sum(m.prior_probability for m in models) == pytest.approx(1.0)
    by_bias = {b: sum(m.prior_probability for m in models if m.bias == b)
               for b in ("none", "PET", "PEESE", "selection")}
    assert by_bias == pytest.approx({"none": 0.5, "PET": 0.125, "PEESE": 0.125,
                                     "selection": 0.25})
    assert sum(m.prior_probability for m in models if m.effect) == pytest.approx(0.5)
    assert sum(m.prior_probability for m in models if m.heterogeneity) == pytest.approx(0.5)
    no_bias = model_space(PRIORS, ("none",))
    assert [m.prior_probability for m in no_bias] == [0.25] * 4


def test_model_probabilities_and_inclusion_bayes_factors_by_definition():
    result = robust_bma(Y, SE**2, 1.0, "OR", PRIORS)
    rows = result.models_table()
    log_post = np.array([math.log(r["prior_probability"]) + r["log_marginal_likelihood"]
                         for r in rows])
    post = np.exp(log_post - log_post.max())
    post /= post.sum()
    np.testing.assert_allclose([r["posterior_probability"] for r in rows], post, rtol=1e-12)
    for component, has in (("effect", lambda r: r["effect"]),
                           ("heterogeneity", lambda r: r["heterogeneity"]),
                           ("bias", lambda r: r["bias"] != "none"),
                           ("selection", lambda r: r["bias"] == "selection")):
        inc = np.array([has(r) for r in rows])
        prior = np.array([r["prior_probability"] for r in rows])
        expected = (post[inc].sum() / post[~inc].sum()) / (prior[inc].sum() / prior[~inc].sum())
        assert result.inclusion_bf(component) == pytest.approx(expected, rel=1e-12)
    assert result.likelihood_note == LOG_RATIO_NOTE


def test_mirror_image_data_give_the_same_evidence():
    # The arms swapped (every log ratio negated) with the direction of benefit swapped too:
    # the same benefit-oriented data, so the same Bayes factors and the reciprocal ratio.
    a = robust_bma(Y, SE**2, 1.0, "OR", PRIORS)
    b = robust_bma(-Y, SE**2, -1.0, "OR", PRIORS)
    for c in ("effect", "heterogeneity", "bias"):
        assert a.inclusion_bf(c) == pytest.approx(b.inclusion_bf(c), rel=1e-9)
    assert a.averaged()["estimate"] == pytest.approx(1 / b.averaged()["estimate"], rel=1e-9)
    assert a.averaged()["p_benefit"] == pytest.approx(b.averaged()["p_benefit"], rel=1e-9)


def test_weighted_quantiles_of_a_two_point_distribution():
    # Mass 0.25 at 0 and 0.75 at 1: mid-mass cumulative probabilities 0.125 and 0.625; the
    # median interpolates between them at (0.5 - 0.125) / 0.5 = 0.75.
    assert weighted_quantiles(np.array([0.0, 1.0]), np.array([0.25, 0.75]), 0.5) == 0.75


# RoBMA's binary vignette ("Informed Bayesian Model-Averaged Meta-Analysis with Binary
# Outcomes", RoBMA 3.x, MedicineBiBMA): honey vs no treatment, adverse events 5/35 vs 0/39
# (Paul 2007) and 2/40 vs 0/40 (Shadkam 2010); BiBMA with prior_informed("Acute Respiratory
# Infections", type = "logOR") effect and heterogeneity priors: inclusion BF for the effect
# 2.63, model-averaged OR 3.39 [0.84, 15.14].
HONEY = ([5, 2], [35, 40], [0, 0], [39, 40])


def test_robma_honey_example():
    # The no-bias models on the 2x2 tables (rebayes.bayes.robust.binomial), as BiBMA fits them.
    from rebayes.bayes.robust.binomial import binomial_normal_engine

    a, n1, c, n2 = HONEY
    y = np.log((np.array(a) + 0.5) * (np.array(n2) - np.array(c) + 0.5)
               / ((np.array(n1) - np.array(a) + 0.5) * (np.array(c) + 0.5)))
    v = sum(1 / (np.array(x) + 0.5) for x in (a, np.subtract(n1, a), c, np.subtract(n2, c)))
    priors = default_priors("log OR", "Acute Respiratory Infections")
    engine = binomial_normal_engine([np.array(x) for x in HONEY], 1.0)
    result = robust_bma(y, v, 1.0, "OR", priors, no_bias_engine=engine, bias_kinds=("none",))
    averaged = result.averaged()
    assert result.inclusion_bf("effect") == pytest.approx(2.63, abs=0.05)
    # RoBMA's summary gives the posterior mean of the OR (its 3.39 is MCMC's, +- ~1%).
    assert averaged["mean"] == pytest.approx(3.39, rel=0.03)
    assert averaged["ci_low"] == pytest.approx(0.84, rel=0.05)
    assert averaged["ci_high"] == pytest.approx(15.14, rel=0.05)
    assert "binomial-normal" in result.likelihood_note


def test_binomial_engine_marginal_likelihood_equals_direct_integration():
    # log p(counts | no effect, fixed) = sum_i log int Bin(a|n1, expit(t)) Bin(c|n2, expit(t))
    # dLogistic(t): by scipy.integrate.quad per study, against the engine's grid.
    from rebayes.bayes.robust.binomial import binomial_normal_engine
    from rebayes.bayes.robust.space import RobustModel

    tables = ([5, 2, 30, 0], [35, 40, 120, 12], [0, 0, 41, 3], [39, 40, 118, 11])
    total = 0.0
    for a, n1, c, n2 in zip(*tables, strict=True):
        def f(t, a=a, n1=n1, c=c, n2=n2):
            p = 1 / (1 + math.exp(-t))
            return (stats.binom.pmf(a, n1, p) * stats.binom.pmf(c, n2, p)
                    * stats.logistic.pdf(t))
        total += math.log(integrate.quad(f, -40, 40, points=[0.0], limit=200)[0])
    engine = binomial_normal_engine([np.array(x) for x in tables], 1.0)
    priors = default_priors("log OR", "Acute Respiratory Infections")
    fit = engine(RobustModel(False, False, "none", 0.25), None, priors)
    assert fit.log_marginal == pytest.approx(total, abs=1e-4)


def test_honey_on_the_normal_approximation_matches_direct_integration():
    # What rebayes says today about RoBMA's example, checked by scipy: the four no-bias
    # models on the log ORs with 0.5 added (2.6565, var 2.2399; 1.6601, var 2.4507), ARI
    # priors t(0, 0.48, 3) and InvGamma(1.67, 0.45).
    y = np.array([math.log(5.5 * 39.5 / (30.5 * 0.5)), math.log(2.5 * 40.5 / (38.5 * 0.5))])
    v = np.array([1 / 5.5 + 1 / 30.5 + 1 / 0.5 + 1 / 39.5, 1 / 2.5 + 1 / 38.5 + 2 + 1 / 40.5])
    priors = default_priors("log OR", "Acute Respiratory Infections")
    assert (priors.effect, priors.tau) == (StudentT(0, 0.48, 3), InverseGamma(1.67, 0.45))

    def lik(mu, tau):
        mu, tau = np.asarray(mu, dtype=float)[..., None], np.asarray(tau, dtype=float)[..., None]
        var = v + tau**2
        return np.exp((-0.5 * (y - mu) ** 2 / var - 0.5 * np.log(2 * np.pi * var)).sum(-1))

    t = stats.t(3, 0, 0.48)
    ig = stats.invgamma(1.67, scale=0.45)
    mu, tau = np.linspace(-20, 20, 2001), np.linspace(1e-9, 40, 2001)
    z = {
        (False, False): float(lik(0.0, 0.0)),
        (True, False): integrate.quad(lambda m: t.pdf(m) * lik(m, 0.0), -np.inf, np.inf)[0],
        (False, True): integrate.quad(lambda s: ig.pdf(s) * lik(0.0, s), 0, np.inf)[0],
        (True, True): simpson_2d(lambda m, s: t.pdf(m) * ig.pdf(s) * lik(m, s), mu, tau),
    }
    bf = (z[True, False] + z[True, True]) / (z[False, False] + z[False, True])
    result = robust_bma(y, v, 1.0, "OR", priors, bias_kinds=("none",))
    assert result.inclusion_bf("effect") == pytest.approx(bf, rel=2e-3)
    assert result.inclusion_bf("effect") == pytest.approx(1.38, abs=0.01)


# --- simulation-based calibration of the selection model ----------------------------------


def simulate_published(rng, mu, tau, omega, se_pool, k):
    """k published studies under step-function selection: each drawn study is kept with the
    probability omega of its one-sided p value's interval (omega_1 = 1 is the largest)."""
    ys, ses = [], []
    while len(ys) < k:
        se = rng.choice(se_pool)
        y = rng.normal(rng.normal(mu, tau), se)
        p = stats.norm.sf(y / se)
        j = int(np.searchsorted(np.array([0.025, 0.05, 0.5, 1.0]), p, side="left"))
        if rng.uniform() < omega[j]:
            ys.append(y)
            ses.append(se)
    return np.array(ys), np.array(ses) ** 2


def sbc_ranks(n_sims, seed, heterogeneity):
    rng = np.random.default_rng(seed)
    se_pool = np.array([0.15, 0.25, 0.35, 0.5, 0.7])
    pit = []
    model = RobustModel(True, heterogeneity, "selection", 1.0)
    for _ in range(n_sims):
        mu = float(stats.t.rvs(4, 0, 0.58, random_state=rng))
        tau = float(stats.invgamma.rvs(1.77, scale=0.55, random_state=rng)) if heterogeneity \
            else 0.0
        eta = rng.dirichlet(np.ones(4))
        omega = np.array([1.0, eta[1:].sum(), eta[2:].sum(), eta[3]])
        y, v = simulate_published(rng, mu, tau, omega, se_pool, 12)
        result = normal_approximation(model, StudyData.from_effects(y, v, PRIORS.steps),
                                      PRIORS)
        pit.append(float(result.cdf(np.array([mu]))[0]))
    return np.array(pit)


def test_selection_model_is_calibrated_small():
    # Posterior CDF of the true mu at itself (the continuous SBC rank) is uniform when the
    # posterior is right; 24 fixed-effect selection models here, 200 random-effects ones in
    # the slow test.
    pit = sbc_ranks(24, seed=20230113, heterogeneity=False)
    assert stats.kstest(pit, "uniform").pvalue > 0.001
    assert 0.6 <= np.mean((pit > 0.05) & (pit < 0.95)) <= 1.0


@pytest.mark.slow
def test_selection_model_is_calibrated():
    pit = sbc_ranks(200, seed=7, heterogeneity=True)
    assert stats.kstest(pit, "uniform").pvalue > 0.01
    # Central 90% and 50% intervals cover within their binomial 99% ranges.
    assert 0.85 <= np.mean((pit > 0.05) & (pit < 0.95)) <= 0.95
    assert 0.40 <= np.mean((pit > 0.25) & (pit < 0.75)) <= 0.60
