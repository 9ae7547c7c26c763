"""The next trial: posterior predictive simulation of a new trial and the updated evidence.

Reference: at tau = 0 the probability that the updated meta-analysis reaches P(benefit) >
0.95 has the closed form of the normal-approximation power calculation for an updated
fixed-effect meta-analysis (Sutton et al. Stat Med 2007;26:2479-500), averaged over the
current posterior; the simulation must match it within Monte Carlo error.
"""

import numpy as np
import pytest
from scipy import special

import rebayes as rb
from conftest import TEST_DATA
from rebayes.data.direction import Direction
from rebayes.tools.planning import analytic_p_conclusive, plan_next_trial, simulate_next_trial


@pytest.fixture(scope="module")
def posterior_draws():
    rng = np.random.default_rng(11)
    return rng.normal(0.1, 0.15, 100_000)


@pytest.mark.parametrize("n", [400, 1000])
@pytest.mark.parametrize("higher_is_better", [True, False])
def test_simulation_matches_the_closed_form_at_tau_0(posterior_draws, n, higher_is_better):
    effect = posterior_draws if higher_is_better else -posterior_draws
    plan = simulate_next_trial(effect, np.zeros_like(effect), [0.4], [n], n_sim=20_000,
                               seed=7, direction=Direction(higher_is_better=higher_is_better))
    mean, sd = plan.current["mean"], plan.current["sd"]
    # The new trial's variance at the expected risks (Woolf).
    p_t = special.expit(special.logit(0.4) + mean)
    v = (1 / p_t + 1 / (1 - p_t) + 1 / 0.4 + 1 / 0.6) / n
    row = plan.rows[0]
    # Each side against its closed form: P(harm) > 0.95 is P(benefit) > 0.95 for the
    # other direction.
    benefit = analytic_p_conclusive(mean, sd, v, higher_is_better)
    harm = analytic_p_conclusive(mean, sd, v, not higher_is_better)
    assert abs(row.p_conclusive_benefit - benefit) < 3.5 * row.mc_se
    assert abs(row.p_conclusive_harm - harm) < 3.5 * row.mc_se
    # Conclusive either way: the two sides exclude each other and sum to at most 1.
    assert row.p_conclusive == pytest.approx(row.p_conclusive_benefit + row.p_conclusive_harm)
    assert row.p_conclusive <= 1


def test_seeded_and_reproducible(posterior_draws):
    tau = np.full_like(posterior_draws, 0.1)
    args = (posterior_draws, tau, [0.2, 0.4, 0.5], [50, 200])
    a = simulate_next_trial(*args, n_sim=2000, seed=3)
    b = simulate_next_trial(*args, n_sim=2000, seed=3)
    c = simulate_next_trial(*args, n_sim=2000, seed=4)
    assert a.to_dict() == b.to_dict()
    assert a.to_dict()["rows"] != c.to_dict()["rows"]


def test_bigger_trials_are_more_often_significant(posterior_draws):
    plan = simulate_next_trial(posterior_draws + 0.3, np.full_like(posterior_draws, 0.05),
                               [0.3], [50, 200, 800, 3200], n_sim=4000, seed=1,
                               direction=Direction(higher_is_better=True))
    sig = [r.p_significant for r in plan.rows]
    assert sig == sorted(sig)
    assert all(r.p_significant_benefit <= r.p_significant for r in plan.rows)
    assert plan.n_for_80["p_significant"] in (800, 3200)
    assert plan.n_for_80["p_futile"] is None


def test_user_errors(posterior_draws):
    tau = np.zeros_like(posterior_draws)
    with pytest.raises(rb.RebayesError, match="at least 2"):
        simulate_next_trial(posterior_draws, tau, [0.3], [1])
    with pytest.raises(rb.RebayesError, match="not a risk"):
        simulate_next_trial(posterior_draws, tau, [0.95], [10], threshold=1.1,
                            direction=Direction(higher_is_better=True))


def test_bcg_plan_from_a_fit():
    from rebayes.bayes.settings import SamplerSettings

    spec = rb.resolve_spec("overall", TEST_DATA / "bcg")
    fit = rb.fit(spec, seed=2, settings=SamplerSettings(draws=300, tune=300, chains=2,
                                                        min_ess=0), cache=False)
    plan = plan_next_trial(fit.tree, [100, 1000], n_sim=1000)
    assert plan.direction.higher_is_better is False
    assert plan.current["threshold_log_or"] < 0  # RR < 1/1.1 is benefit beyond 1.1
    assert plan.seed == fit.seed
    record = plan.to_dict()
    assert [r["n_per_arm"] for r in record["rows"]] == [100, 1000]
    assert set(record["n_for_80"]) == {"p_conclusive", "p_conclusive_benefit",
                                       "p_conclusive_harm", "p_significant",
                                       "p_significant_benefit", "p_futile"}
    assert "n per arm for 80%" in str(plan)
    assert len(plan.to_dataframe()) == 2
    assert plan.plot().axes
    assert "<table" in plan._repr_html_() and repr(plan).startswith("TrialPlan(")


def test_cli_json(capsys):
    import json

    from rebayes.cli import main

    assert main(["plan", "--data", "ivig_rsa", "--threshold", "0.9"]) == 2
    capsys.readouterr()
    assert main(["plan", "--data", "ivig_rsa", "--n", "50", "100", "--sims", "500",
                 "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert [r["n_per_arm"] for r in record["rows"]] == [50, 100]
    assert record["n_sim"] == 500


def test_the_sentence_leads_with_the_side_the_evidence_is_on():
    rng = np.random.default_rng(5)
    lower = Direction(higher_is_better=False, outcome="death")
    # Fewer deaths is better; the pooled log OR lies above 0 (harm) with P about 0.84.
    harm = simulate_next_trial(rng.normal(0.1, 0.1, 20_000), np.full(20_000, 0.2), [0.2],
                               [100, 400], direction=lower, n_sim=2000, seed=1)
    text = harm.summary()
    assert text.startswith("P(harm) is 0.8") and "either way" in text
    assert "P(harm) > 0.95 with probability" in text and "0.00" not in text
    assert "with tau about 0.20" in text  # no size reaches 80%: the heterogeneity says why
    # Conclusive already (P(benefit) about 1): the sentence says so, and what a trial would do.
    settled = simulate_next_trial(rng.normal(-0.7, 0.1, 20_000), np.full(20_000, 0.1), [0.2],
                                  [100, 400], direction=lower, n_sim=2000, seed=1)
    text = settled.summary()
    assert "conclusive already (P(benefit) > 0.95)" in text
    row = settled.rows[-1]
    assert f"keep it so with probability {row.p_conclusive_benefit:.2f}" in text


# --- Monte Carlo error: the posterior draws' own, not only the simulations' ------------------

def _two_point_plan(signs, chains):
    """Each draw decides the trial: log OR +3 or -3, tau 0, 2000 per arm at control risk 0.5.

    A trial from a +3 draw (treated risk 0.95) moves the updated meta-analysis to P(benefit)
    about 1, from a -3 draw to P(harm) about 1, so the indicator of "P(benefit) > 0.95" is
    the draw's sign: its probability given the draw, g, is 0 or 1.
    """
    effect = 3.0 * np.asarray(signs, dtype=float)
    return simulate_next_trial(effect, np.zeros_like(effect), [0.5], [2000], n_sim=4000,
                               seed=2, chains=chains, direction=Direction(higher_is_better=True))


def test_planning_mcse_counts_the_posterior_draws_error():
    rng = np.random.default_rng(8)
    draws, chains, repeat = 4000, 4, 10
    independent = np.where(rng.random(draws) < 0.5, 1, -1)
    # The same number of draws, but each of 400 independent ones repeated 10 times in a row
    # (a chain that sticks): 400 effective draws.
    sticky = np.repeat(np.where(rng.random(draws // repeat) < 0.5, 1, -1), repeat)
    for signs, k in ((independent, 1), (sticky, repeat)):
        row = _two_point_plan(signs, chains).rows[0]
        assert row.p_conclusive == 1.0 and row.mcse["p_conclusive"] == 0.0  # every draw decides
        q = float(np.mean(signs > 0))
        assert row.p_conclusive_benefit == pytest.approx(q, abs=0.05)
        # By hand: Var(p) = p (1 - p) / n_sim (the simulations) + Var(g) / ESS (the draws),
        # with Var(g) = q (1 - q) and ESS = draws / k.
        p = row.p_conclusive_benefit
        binomial = np.sqrt(p * (1 - p) / 4000)
        expected = np.sqrt(binomial**2 + q * (1 - q) * k / draws)
        assert row.mcse["p_conclusive_benefit"] == pytest.approx(expected, rel=0.2)
        assert row.mcse["p_conclusive_benefit"] >= binomial
        assert row.mc_se_simulation == pytest.approx(binomial)
        assert row.mc_se >= row.mc_se_simulation
    # The sticky chain's error grows as the square root of its repeat factor, on the draws' part:
    # sqrt((1 + 10) / (1 + 1)) = 2.35 in all, with as many simulations as draws.
    ratio = (_two_point_plan(sticky, chains).rows[0].mcse["p_conclusive_benefit"]
             / _two_point_plan(independent, chains).rows[0].mcse["p_conclusive_benefit"])
    assert ratio == pytest.approx(np.sqrt(11 / 2), rel=0.2)


def test_draws_that_do_not_split_into_chains_are_refused():
    with pytest.raises(rb.RebayesError, match="do not split into 3 chains"):
        _two_point_plan(np.ones(100), chains=3)


def test_planning_probabilities_at_the_line_say_so():
    from rebayes.tools.planning import PlanRow, TrialPlan

    lower = Direction(higher_is_better=False, outcome="death")
    keys = dict(p_conclusive_benefit=0.41, p_conclusive_harm=0.40, p_significant=0.5,
                p_significant_benefit=0.1, p_futile=0.2)
    rows = (PlanRow(100, p_conclusive=0.60, **keys, mc_se=0.01, mcse={"p_conclusive": 0.01}),
            PlanRow(400, p_conclusive=0.81, **keys, mc_se=0.01, mcse={"p_conclusive": 0.01}))
    current = {"mean": -0.3, "sd": 0.2, "tau": 0.01, "p_benefit": 0.946, "p_benefit_mcse": 0.003,
               "p_benefit_normal": 0.93, "typical_control_risk": 0.2, "threshold_log_or": -0.1}
    plan = TrialPlan(rows, {"p_conclusive": 400}, lower, 1.1, current, 4000, 1)
    sentence = plan.summary()
    # 0.946 is 0.004 from 0.95, within 2 x 0.003; 0.81 is 0.01 from 0.8, within 2 x 0.01.
    assert "P(RR < 1) is 0.946 (at the line: within 2 MCSE of 0.95) now" in sentence
    assert "with probability 0.81 (at the line: within 2 MCSE of 0.8)" in sentence
    text = str(plan)
    assert "0.810 ≈" in text and "0.600 ≈" not in text
    assert "≈ at the line: within 2 MCSE of 0.8" in text
    # Conclusive already, but only by a hair: the verdict says it is at the line.
    settled = TrialPlan(rows, {"p_conclusive": 400}, lower, 1.1,
                        {**current, "p_benefit": 0.953}, 4000, 1).summary()
    assert ("conclusive already (P(benefit) > 0.95, at the line: within 2 MCSE of 0.95)"
            in settled)
    assert "leave P(benefit) at or below 0.95 with probability" in settled
