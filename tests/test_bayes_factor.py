"""Savage-Dickey BF01 against the conjugate normal-normal model, where it is known exactly."""

import json
import math

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from rebayes.bayes.priors import PRIOR_SETS, HalfNormal, Normal, PriorSet
from rebayes.errors import RebayesError
from rebayes.sensitivity.bayes_factor import (
    INCONCLUSIVE,
    BayesFactor,
    check_one_likelihood,
    posterior_density_at,
    prior_density_at,
    savage_dickey,
)

CHAINS, DRAWS = 4, 5000


def conjugate(prior_mu, prior_sd, ys, sigmas, tau):
    """y_i ~ N(mu, sigma_i^2 + tau^2), mu ~ N(prior_mu, prior_sd^2), tau known.

    Returns the posterior mean and variance of mu and the exact BF01 for mu = 0 as the
    ratio of the two marginal likelihoods: m0 = prod N(y_i; 0, v_i), and m1 = the
    multivariate normal density of y with mean prior_mu and covariance diag(v) + prior_sd^2.
    """
    ys, v = np.asarray(ys, float), np.asarray(sigmas, float) ** 2 + tau**2
    post_var = 1 / (1 / prior_sd**2 + (1 / v).sum())
    post_mean = post_var * (prior_mu / prior_sd**2 + (ys / v).sum())
    m0 = stats.norm.logpdf(ys, 0, np.sqrt(v)).sum()
    cov = np.diag(v) + prior_sd**2
    m1 = stats.multivariate_normal.logpdf(ys, np.full(len(ys), prior_mu), cov)
    return post_mean, post_var, math.exp(m0 - m1)


def tree_of(draws, **attrs):
    dims = ("chain", "draw", *(f"dim_{i}" for i in range(draws.ndim - 2)))
    tree = xr.DataTree.from_dict({"posterior": xr.Dataset({"d": (dims, draws)})})
    tree.attrs.update(attrs)
    return tree


YS, SIGMAS, TAU = [0.30, -0.10, 0.45, 0.20, 0.05], [0.25, 0.30, 0.40, 0.20, 0.35], 0.15


@pytest.mark.parametrize(
    "prior_mu, prior_sd, seed",
    [(0.0, 1.0, 0), (0.0, 10.0, 1), (0.0, 0.2465, 2), (math.log(1.5), 0.2465, 3), (-0.4, 0.5, 4)],
)
def test_bf01_equals_the_ratio_of_marginal_likelihoods_within_mcse(prior_mu, prior_sd, seed):
    m, v, exact = conjugate(prior_mu, prior_sd, YS, SIGMAS, TAU)
    draws = np.random.default_rng(seed).normal(m, math.sqrt(v), (CHAINS, DRAWS))
    prior = PriorSet("toy", effect=Normal(prior_mu, prior_sd), tau=HalfNormal(0.5))
    (bf,) = savage_dickey(tree_of(draws), ["d"], prior=prior)
    # Savage-Dickey is exact here (Wagenmakers et al. 2010, eq. 3); the estimate is within
    # 3 MCSE of it (z is about N(0, 1) across seeds, see the calibration test below).
    assert abs(bf.bf01 - exact) < 3 * bf.bf01_mcse
    # The prior density is the analytic one, exactly.
    assert bf.prior_density == stats.norm.pdf(0.0, prior_mu, prior_sd)
    assert bf.bf01_mcse / bf.bf01 < 0.1


def test_mcse_is_calibrated_across_seeds():
    m, v, exact = conjugate(0.0, 1.0, YS, SIGMAS, TAU)
    z = []
    for seed in range(30):
        draws = np.random.default_rng(100 + seed).normal(m, math.sqrt(v), (CHAINS, 2000))
        density, mcse = posterior_density_at(draws, 0.0)
        z.append((density - stats.norm.pdf(0.0, m, math.sqrt(v))) / mcse)
    assert abs(np.mean(z)) < 0.6  # smoothing bias small next to the MCSE
    assert 0.6 < np.std(z) < 1.5


def test_mcse_accounts_for_autocorrelation():
    rng = np.random.default_rng(7)
    iid = rng.normal(size=(4, 4000))
    # AR(1), rho = 0.9. The kernel values at one point are less autocorrelated than the
    # draws themselves, but their MCSE still grows.
    ar = np.empty_like(iid)
    ar[:, 0] = iid[:, 0]
    for t in range(1, ar.shape[1]):
        ar[:, t] = 0.9 * ar[:, t - 1] + math.sqrt(1 - 0.81) * iid[:, t]
    assert posterior_density_at(ar, 0.0)[1] > 1.2 * posterior_density_at(iid, 0.0)[1]


def test_prior_density_is_oriented_as_the_model_uses_it():
    enthusiastic = PRIOR_SETS["enthusiastic"]
    mu, sd = enthusiastic.effect.mu, enthusiastic.effect.sigma
    # model_data turns the mean towards benefit: -log 1.5 where fewer events is better.
    assert prior_density_at(enthusiastic, "d", 0.1, higher_is_better=False) == stats.norm.pdf(
        0.1, -mu, sd
    )
    assert prior_density_at(enthusiastic, "d", 0.1) == stats.norm.pdf(0.1, mu, sd)
    assert prior_density_at(enthusiastic, "beta", 0.0) == stats.norm.pdf(0.0, 0.0, 1.0)


def test_prior_is_read_from_the_fit_and_on_its_scale():
    prior = PRIOR_SETS["weakly_informative"].on_scale("log RR", 0.55)
    draws = np.random.default_rng(0).normal(0.1, 0.2, (CHAINS, 1000))
    tree = tree_of(
        draws,
        prior_json=json.dumps(prior.to_dict()),
        likelihood="normal",
        effect_scale="log RR",
    )
    (bf,) = savage_dickey(tree)
    assert bf.prior_density == stats.norm.pdf(0.0, 0.0, prior.effect.sigma)
    assert prior.effect.sigma == pytest.approx(0.45)
    assert (bf.likelihood, bf.effect_scale) == ("normal", "log RR")
    assert "log RR" in bf.meaning
    with pytest.raises(RebayesError, match="prior_json"):
        savage_dickey(tree_of(draws))


def test_elements_and_far_reference():
    draws = np.random.default_rng(0).normal(0.2, 0.3, (CHAINS, 1000, 2))
    tree = tree_of(draws)
    tree["posterior"] = (
        tree["posterior"]
        .to_dataset()
        .rename({"dim_0": "subgroup"})
        .assign_coords(subgroup=["a", "b"])
    )
    prior = PRIOR_SETS["weakly_informative"]
    assert [bf.parameter for bf in savage_dickey(tree, ["d"], prior=prior)] == ["d[a]", "d[b]"]
    far = np.random.default_rng(1).normal(4.0, 0.05, (CHAINS, 1000))
    (bf,) = savage_dickey(tree_of(far), ["d"], prior=prior)
    assert "outside the posterior range" in bf.note
    assert bf.verdict.startswith("extreme evidence against")


def _bf(bf01, low, high, likelihood="binomial", scale="log OR"):
    return BayesFactor(
        "d",
        "no effect (d = 0, log OR)",
        0.0,
        bf01,
        low,
        high,
        bf01 * 0.4,
        (high - low) * 0.1,
        0.4,
        likelihood,
        scale,
    )


def test_words_only_when_the_interval_is_in_one_band():
    assert _bf(15.0, 13.0, 17.0).verdict.startswith("strong evidence for no effect")
    assert _bf(5.0, 3.5, 7.0).evidence == "moderate evidence for"
    assert _bf(0.2, 0.15, 0.25).evidence == "moderate evidence against"
    straddles = _bf(3.1, 2.6, 3.6)
    assert straddles.evidence == INCONCLUSIVE
    assert straddles.verdict.startswith(INCONCLUSIVE)
    assert _bf(1.05, 0.9, 1.2).evidence == INCONCLUSIVE
    record = _bf(5.0, 3.5, 7.0).to_dict()
    assert "bf10" not in record and record["bf01_low"] == 3.5
    assert "BF10" not in _bf(0.2, 0.15, 0.25).verdict


def test_bayes_factors_of_two_likelihoods_are_never_compared():
    binomial, normal = _bf(2.0, 1.5, 2.5), _bf(7.0, 6.0, 8.0, "normal", "log RR")
    assert check_one_likelihood([binomial, _bf(3.0, 2.5, 3.5)]) == "binomial (log OR)"
    with pytest.raises(RebayesError, match="different likelihoods"):
        check_one_likelihood([binomial, normal])
