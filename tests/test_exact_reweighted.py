"""One exact posterior read from another's grids under other priors (exact.binomial.reweighted).

Given tau, the likelihood of the coefficients does not depend on their priors or tau's, so
the grids of one posterior integrate another of the same data by its own prior density. The
reference is the posterior integrated from scratch under the new priors (its own grids,
placed for it), and, for a table of few trials, the brute-force quadrature of
``exact_reference`` (independent code).
"""

import math

import numpy as np
import pytest

from conftest import TEST_DATA
from rebayes.bayes.analyses import resolve_spec
from rebayes.bayes.design import build_design, prior_on_model_scale
from rebayes.bayes.exact import exact_posterior, problem_from_design
from rebayes.bayes.exact.binomial import reweighted
from rebayes.bayes.priors import HalfNormal, LogNormalTau2, Normal, get_prior

PRIOR = get_prior("weakly_informative")
PROBS = (0.025, 0.25, 0.5, 0.75, 0.975)


@pytest.fixture(scope="module")
def hcq():
    """hcq's overall analysis (33 trials, deaths: fewer is better) and its posterior."""
    design = build_design(resolve_spec("overall", str(TEST_DATA / "hcq"), None, False))
    prior = prior_on_model_scale(PRIOR, design)
    return design, prior, exact_posterior(design, prior)


@pytest.mark.parametrize("effect, tau", [
    (Normal(0.3, 0.5), None),          # another effect prior
    (Normal(0.0, 0.3), None),          # a sceptical one
    (None, HalfNormal(1.0)),           # another heterogeneity prior
    (Normal(-0.2, 1.0), HalfNormal(0.25)),
])
def test_a_reweighted_posterior_is_the_one_integrated_from_scratch(hcq, effect, tau):
    from dataclasses import replace

    design, prior, base = hcq
    other = replace(prior, effect=effect or prior.effect, tau=tau or prior.tau)
    got = reweighted(base, problem_from_design(design, other))
    assert got is not None and got.checks["reweighted"]
    ref = exact_posterior(design, other)
    for name in ("coefficient", "tau"):
        a = got.coefficient("d") if name == "coefficient" else got.tau
        b = ref.coefficient("d") if name == "coefficient" else ref.tau
        np.testing.assert_allclose(a.quantiles(PROBS), b.quantiles(PROBS), rtol=1e-5, atol=1e-6)
    assert got.coefficient("d").prob_greater(0.0) == pytest.approx(
        ref.coefficient("d").prob_greater(0.0), abs=1e-6)
    assert got.log_marginal_likelihood == pytest.approx(ref.log_marginal_likelihood, abs=1e-5)
    assert got.predictive().prob_greater(0.0) == pytest.approx(
        ref.predictive().prob_greater(0.0), abs=1e-6)


def test_grids_that_do_not_hold_the_new_posterior_are_not_used(hcq):
    from dataclasses import replace

    design, prior, base = hcq
    # d ~ N(1.5, 0.02) puts the posterior of d some 20 of the base's sds away: its grids'
    # rims are not negligible there, and the posterior is far narrower than their steps.
    far = replace(prior, effect=Normal(1.5, 0.02))
    assert reweighted(base, problem_from_design(design, far)) is None
    # A heterogeneity prior that puts tau near 5 (tau^2 ~ LogNormal(log 25, 0.2)), beyond
    # the base's tau grid (it ends near 3.4).
    wide = replace(prior, tau=LogNormalTau2(math.log(25.0), 0.2))
    assert reweighted(base, problem_from_design(design, wide)) is None


def test_other_data_are_refused(hcq):
    from dataclasses import replace

    design, prior, base = hcq
    other = problem_from_design(design, replace(prior, baseline=Normal(0.0, 5.0)))
    with pytest.raises(ValueError, match="same data"):
        reweighted(base, other)


def test_a_few_trials_reweighted_match_brute_force_quadrature():
    from dataclasses import replace

    from exact_reference import binomial_reference

    # IVIG: live births, higher is better: the model's d has the effect prior as given.
    design = build_design(resolve_spec("overall", "ivig_rsa"))
    prior = prior_on_model_scale(PRIOR, design)
    base = exact_posterior(design, prior)
    got = reweighted(base, problem_from_design(design, replace(prior, effect=Normal(0.3, 0.7))))
    assert got is not None
    ref = binomial_reference(design.events, design.n, d_mean=0.3, d_sd=0.7)
    assert got.coefficient("d").prob_greater(0.0) == pytest.approx(ref.p_d_greater[0.0],
                                                                   abs=2e-6)
