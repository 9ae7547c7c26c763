"""Exact Savage-Dickey Bayes factors for d = 0 (rebayes.sensitivity.exact_bayes_factor).

References: for the normal-normal model, BF01 = p(y | d = 0) / p(y), each marginal likelihood
integrated over tau by scipy's adaptive quadrature (d given tau is normal: Röver 2020, section
2), independently of the engine; for the binomial-normal model, the posterior density of d at
0 from tests/exact_reference.py's brute force (fixed dense grids, nothing shared with the
engine).
"""

import math

import numpy as np
import pytest
from scipy import integrate, stats

import rebayes as rb
from conftest import TEST_DATA, ivig_spec
from exact_reference import binomial_reference
from rebayes.bayes.analyses import resolve_spec
from rebayes.bayes.design import build_design, prior_on_model_scale
from rebayes.bayes.exact import exact_posterior
from rebayes.bayes.priors import Normal, get_prior
from rebayes.sensitivity.exact_bayes_factor import exact_savage_dickey

HCQ = TEST_DATA / "hcq"


def _normal_normal_evidence(y, v, tau_scale, mu_sd=None):
    """p(y): mu ~ N(0, mu_sd) (None: mu = 0), tau ~ HalfNormal(tau_scale), y ~ N(mu, v + tau^2)."""

    def likelihood(tau):
        s2 = v + tau**2
        if mu_sd is None:
            return math.exp(stats.norm.logpdf(y, 0, np.sqrt(s2)).sum())
        # mu integrated out: y ~ N(0, diag(s2) + mu_sd^2 11').
        cov = np.diag(s2) + mu_sd**2
        return math.exp(stats.multivariate_normal.logpdf(y, np.zeros(len(y)), cov))

    def integrand(tau):
        return likelihood(tau) * stats.halfnorm.pdf(tau, scale=tau_scale)

    return integrate.quad(integrand, 0, 12 * tau_scale, epsabs=0, epsrel=1e-11, limit=200)[0]


def test_normal_normal_bf01_is_the_ratio_of_the_two_models_evidence():
    spec = resolve_spec("normal_approximation", str(HCQ), None, False)
    design = build_design(spec)
    prior = get_prior("weakly_informative")
    (bf,) = exact_savage_dickey(design, prior)
    scaled = prior_on_model_scale(prior, design)
    y, v = np.asarray(design.yi), np.asarray(design.vi)
    assert scaled.effect.mu == 0  # the point and the alternative differ in d alone
    h0 = _normal_normal_evidence(y, v, scaled.tau.sigma)
    h1 = _normal_normal_evidence(y, v, scaled.tau.sigma, scaled.effect.sigma)
    assert bf.bf01 == pytest.approx(h0 / h1, rel=1e-5)
    # The same from the engine's own log p(y) of the alternative.
    post = exact_posterior(design, scaled)
    assert math.log(h1) == pytest.approx(post.log_marginal_likelihood, abs=1e-6)
    assert bf.engine == "exact" and bf.bf01_low == bf.bf01_high == bf.bf01
    assert bf.effect_scale == "log RR" and bf.posterior_density_mcse == 0.0
    assert bf.verdict.endswith(f"(BF01 = {bf.bf01:.3g}, exact)")
    assert bf.to_dict()["engine"] == "exact"


def test_binomial_bf01_is_the_brute_force_density_ratio():
    design = build_design(ivig_spec("overall"), rb.load_trials("ivig_rsa"))
    (bf,) = exact_savage_dickey(design, get_prior("weakly_informative"))
    ref = binomial_reference(design.events, design.n, thresholds=(0.0,))
    # The default prior on the model's scale: d ~ N(0, 1).
    assert bf.prior_density == pytest.approx(stats.norm.pdf(0.0), rel=1e-12)
    assert bf.posterior_density == pytest.approx(ref.d_density[0.0], rel=1e-5)
    assert bf.bf01 == pytest.approx(ref.d_density[0.0] / stats.norm.pdf(0.0), rel=1e-5)
    assert bf.meaning == "no effect (d = 0, log OR)"


def test_an_oriented_prior_mean_is_used_where_fewer_events_is_better():
    # bcg: fewer TB cases is better, so the enthusiastic prior's mean turns to d < 0.
    spec = resolve_spec("overall", str(TEST_DATA / "bcg"), None, False)
    design = build_design(spec)
    prior = get_prior("enthusiastic")
    (bf,) = exact_savage_dickey(design, prior)
    effect = prior_on_model_scale(prior, design).effect
    assert isinstance(effect, Normal) and effect.mu > 0
    assert bf.prior_density == pytest.approx(stats.norm.pdf(0.0, -effect.mu, effect.sigma),
                                             rel=1e-12)


@pytest.mark.slow
def test_nuts_kernel_estimate_agrees_with_the_exact_bf01():
    from rebayes.bayes.fit import fit
    from rebayes.sensitivity.bayes_factor import savage_dickey

    spec = ivig_spec("overall")
    (nuts,) = savage_dickey(fit(spec, "weakly_informative").tree)
    (exact,) = exact_savage_dickey(build_design(spec), get_prior("weakly_informative"))
    assert nuts.engine == "nuts" and nuts.bf01_mcse > 0
    assert abs(nuts.bf01 - exact.bf01) < 3 * nuts.bf01_mcse
