"""A new trial added to the exact posterior (rebayes.bayes.exact.update) and the exact plan.

Reference: the posterior of the table with the new trial as one more row, by
tests/exact_reference.py's brute force (fixed dense grids, nothing shared with the engine):
the update must be that posterior, not a normal approximation of it with tau held fixed.
"""

import json

import numpy as np
import pytest

import rebayes as rb
from conftest import TEST_DATA, ivig_spec
from exact_reference import binomial_reference
from rebayes.bayes.analyses import resolve_spec
from rebayes.bayes.design import build_design
from rebayes.bayes.exact import exact_posterior
from rebayes.bayes.exact.update import predictive_weights, updated_probabilities
from rebayes.bayes.priors import get_prior
from rebayes.cli import main
from rebayes.tools.planning import plan_next_trial_exact

# A trial of 400 per arm, larger than any of IVIG's (the update moves the posterior most).
NEW_EVENTS, NEW_N = np.array([[200, 230]]), np.array([[400, 400]])


def test_one_new_trial_gives_the_posterior_of_the_table_with_it():
    design = build_design(ivig_spec("overall"), rb.load_trials("ivig_rsa"))
    post = exact_posterior(design, get_prior("weakly_informative"))
    weights = predictive_weights(post, (0.0, 0.2))
    updated = updated_probabilities(weights, np.vstack([NEW_EVENTS, NEW_EVENTS]),
                                    np.vstack([NEW_N, NEW_N]))
    # The default prior on the model's scale is the reference's: d ~ N(0, 1),
    # tau ~ HalfNormal(0.5), alpha ~ N(0, 2).
    # Steps of 0.005 in theta and 0.0025 in tau: at 0.01 and 0.005 the reference's own
    # P(d > 0.2) is 9e-6 off for this table (its posterior sd is 0.12).
    ref = binomial_reference(np.vstack([design.events, NEW_EVENTS]),
                             np.vstack([design.n, NEW_N]), thresholds=(0.0, 0.2),
                             theta_step=0.005, tau_step=0.0025, span=8.0, tau_max=2.5,
                             d_span=(-2.0, 3.0))
    assert updated[0.0] == pytest.approx([ref.p_d_greater[0.0]] * 2, abs=2e-6)
    assert updated[0.2] == pytest.approx([ref.p_d_greater[0.2]] * 2, abs=2e-6)
    # It moved: P(d > 0) was 0.936458 (test_exact.py).
    assert updated[0.0][0] - 0.936458 > 0.03


def test_the_exact_plan_of_a_harmful_treatment(capsys):
    # hcq: deaths, fewer is better, and the evidence leans to harm.
    spec = resolve_spec("overall", str(TEST_DATA / "hcq"), None, False)
    design = build_design(spec)
    prior = get_prior("weakly_informative")
    plan = plan_next_trial_exact(design, prior, [100, 400], n_sim=400, seed=3)
    d = exact_posterior(design, prior).coefficient("d")
    assert plan.engine == "exact" and plan.current["p_benefit_mcse"] == 0.0
    assert plan.current["p_benefit"] == pytest.approx(1 - d.prob_greater(0.0), abs=1e-12)
    assert plan.rows[1].p_conclusive_harm >= plan.rows[0].p_conclusive_harm
    assert plan.rows[0].p_conclusive_benefit == 0.0
    assert "normal approximation" not in plan.summary()
    again = plan_next_trial_exact(design, prior, [100, 400], n_sim=400, seed=3)
    assert again.to_dict() == plan.to_dict()
    code = main(["plan", "--data", str(TEST_DATA / "hcq"), "--n", "100", "400", "--sims",
                 "400", "--seed", "3", "--json"])
    record = json.loads(capsys.readouterr().out)
    assert code == 0 and record["engine"] == "exact" and record["rows"] == plan.to_dict()["rows"]
