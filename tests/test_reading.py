"""The story the outputs tell a reader, on real data that is not the shipped IVIG dataset.

- hydroxychloroquine for COVID-19 (metadat's dat.axfors2021, tests/data/hcq): deaths, fewer is
  better, and the treatment harms (published: OR 1.11, 95% CI 1.02 to 1.20). Every output
  leads with harm: P(harm), the NNTH, then P(benefit); the next trial is planned to settle the
  question either way.
- BCG against tuberculosis (metafor's dat.bcg, tests/data/bcg): fewer cases is better, so the
  enthusiastic prior (Spiegelhalter's OR 1.5 towards benefit) is stated and drawn at OR 1/1.5,
  on the benefit side, in every place it appears.
- intravenous magnesium after myocardial infarction (metadat's dat.egger2001,
  tests/data/magnesium): fixed and random effects disagree and the mega-trial ISIS-4 disagrees
  with the other trials; ``compare`` says so beside "P(benefit) > 0.95 under every prior".

Fits are short (2 chains x 300 draws): the tests check the story's words and their order, and
numbers against hand calculations, not the posterior's digits.
"""

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy import stats

import rebayes as rb
from conftest import TEST_DATA
from rebayes.bayes.quantities import control_risk, pooled_effect, pooled_rr
from rebayes.bayes.settings import SamplerSettings
from rebayes.data.direction import Direction
from rebayes.report.analysis import key_sentence
from rebayes.report.overview import overview, uniform_panels
from rebayes.sensitivity.comparison import compare_posteriors, decision_table
from rebayes.sensitivity.psense import implied_prior_rr
from rebayes.tools.absolute import absolute_effects
from rebayes.tools.planning import plan_next_trial

QUICK = SamplerSettings(draws=300, tune=300, chains=2, min_ess=0)
SPIEGELHALTER_SD = math.log(1.5) / stats.norm.ppf(0.95)


# --- hydroxychloroquine: harm first --------------------------------------------------------


@pytest.fixture(scope="module")
def hcq():
    spec = rb.resolve_spec("overall", TEST_DATA / "hcq")
    return rb.fit(spec, "weakly_informative", seed=3, settings=QUICK)


def test_hcq_leads_with_harm(hcq):
    s = hcq.summary()
    assert s.leans_to_harm and s.p_harm > 0.5 and s.nnt.kind == "harm"
    sentence = key_sentence(s, hcq.design.schema)
    assert sentence.startswith(f"Under the weakly informative prior, P(harm, RR > 1) = "
                               f"{s.p_harm:.2f}: hydroxychloroquine or chloroquine ")
    assert "increases the risk of death" in sentence
    # Harm, then the NNTH with its interval, then benefit.
    assert sentence.index("P(harm") < sentence.index("NNTH") < sentence.index("P(any benefit")
    assert str(s.nnt) in sentence
    text = str(s)
    assert text.index("P(harm) = P(RR > 1)") < text.index("P(benefit) = P(RR < 1)")
    assert repr(hcq).endswith(f"P(harm: RR > 1) {s.p_harm:.3f})")


def test_hcq_states_one_control_risk_everywhere(hcq):
    table = pd.read_csv(TEST_DATA / "hcq" / "trials.csv")
    # Most small trials saw no control death: the median trial's risk is 0, so p0 is the
    # pooled control risk, all control deaths over all control patients.
    pooled = table["events_control"].sum() / table["n_control"].sum()
    s = hcq.summary()
    assert s.control_risk.value == pytest.approx(pooled, rel=1e-12)
    assert s.at_control_risk.startswith(f"at a control risk of {100 * pooled:.3g}%, the pooled")
    np.testing.assert_allclose(s.typical_control_risk.median, pooled, rtol=1e-12)
    # The RR per draw is expit(logit p0 + theta) / p0 of the pooled log OR theta.
    theta = np.asarray(pooled_effect(hcq.tree)).ravel()
    rr = np.asarray(pooled_rr(hcq.tree)).ravel()
    odds = pooled / (1 - pooled) * np.exp(theta)
    np.testing.assert_allclose(rr, odds / (1 + odds) / pooled, rtol=1e-12)
    # Absolute effects and the next trial's futility margin use the same number.
    assert absolute_effects(hcq.tree).rows[0].control_risk == pytest.approx(pooled, rel=1e-12)
    assert control_risk(hcq.tree).value == pytest.approx(pooled, rel=1e-12)


def test_hcq_plans_a_trial_that_settles_the_question_either_way(hcq):
    plan = plan_next_trial(hcq.tree, [200, 1600], n_sim=2000)
    assert plan.current["typical_control_risk"] == pytest.approx(control_risk(hcq.tree).value)
    for row in plan.rows:
        assert row.p_conclusive == pytest.approx(row.p_conclusive_benefit
                                                 + row.p_conclusive_harm)
        assert row.p_conclusive <= 1
        # The evidence leans to harm: a new trial would far more often confirm harm.
        assert row.p_conclusive_harm > row.p_conclusive_benefit
    sentence = plan.summary()
    assert sentence.startswith("P(harm) is") and "either way" in sentence
    assert "0.00" not in sentence


# --- BCG: the enthusiastic prior on the benefit side ----------------------------------------


@pytest.fixture(scope="module")
def bcg_enthusiastic():
    spec = rb.resolve_spec("overall", TEST_DATA / "bcg")
    return rb.fit(spec, "enthusiastic", seed=3, settings=QUICK)


def test_bcg_enthusiastic_prior_is_stated_on_the_benefit_side(bcg_enthusiastic):
    s = bcg_enthusiastic.summary()
    assert ("effect: OR centred on 0.67, towards a lower risk of tuberculosis (benefit); 95% "
            "of prior mass on ORs 0.41 to 1.08 (log OR ~ N(-0.405, 0.247))") in s.prior_summary
    assert s.to_dict()["prior_summary"] == s.prior_summary


def test_bcg_enthusiastic_prior_draws_and_density_are_the_model_s(bcg_enthusiastic):
    tree = bcg_enthusiastic.tree
    d = np.asarray(tree["prior"]["d"]).ravel()
    # The prior group is drawn from N(-log 1.5, sd): a z test of its mean.
    assert abs(d.mean() + math.log(1.5)) < 4 * SPIEGELHALTER_SD / math.sqrt(d.size)
    # Its log density (power-scaling) is that of N(-log 1.5, sd) at the posterior draws.
    posterior_d = np.asarray(tree["posterior"]["d"])
    np.testing.assert_allclose(
        np.asarray(tree["log_prior"]["d"]),
        stats.norm.logpdf(posterior_d, -math.log(1.5), SPIEGELHALTER_SD), rtol=1e-12)
    # So the RR the prior implies lies on the benefit side: below 1 in 95% of the draws.
    implied = np.asarray(implied_prior_rr(tree)).ravel()
    assert np.mean(implied < 1) == pytest.approx(0.95, abs=0.02)


def test_bcg_enthusiastic_prior_is_drawn_on_the_benefit_side(bcg_enthusiastic):
    from rebayes.plots import prior_posterior_plot
    from rebayes.sensitivity.comparison import compare_fits

    fig = prior_posterior_plot(bcg_enthusiastic.tree)
    panel = fig.axes[0]
    (prior_line,) = [line for line in panel.get_lines() if line.get_linestyle() == "--"]
    x, y = prior_line.get_data()
    assert x[np.argmax(y)] == pytest.approx(-math.log(1.5), abs=0.02)  # log OR 1/1.5
    labels = [t.get_text() for t in panel.texts]
    assert "< favours BCG" in labels and "favours no vaccine >" in labels
    title = " ".join(fig.texts[0].get_text().split())  # the suptitle, unwrapped
    assert "OR centred on 0.67, towards a lower risk of tuberculosis (benefit)" in title
    plt.close(fig)
    comparison = compare_fits([bcg_enthusiastic])
    (draws, (grid, density)), = comparison.overlay_data().values()
    assert grid[np.argmax(density)] < 1  # the implied prior RR peaks below 1
    fig = comparison.plot(kind="posteriors")
    assert "favours BCG" in [t.get_text() for t in fig.axes[0].texts]
    plt.close(fig)


# --- magnesium: conflicts and multiplicity ---------------------------------------------------


@pytest.fixture(scope="module")
def magnesium():
    spec = rb.resolve_spec("overall", TEST_DATA / "magnesium")
    return compare_posteriors(
        spec, ["weakly_informative", "skeptical", "enthusiastic", "vague"], settings=QUICK)


def test_magnesium_compare_flags_the_conflicts_beside_a_stable_conclusion(magnesium):
    assert "P(benefit) > 0.95 under every prior" in " ".join(magnesium.stable)
    assert [c.kind for c in magnesium.conflicts] == ["fixed_vs_random", "largest_trial"]
    text = str(magnesium)
    conflicts = text.index("CONFLICTS in the evidence")
    assert conflicts < text.index("Conclusions:")
    assert "ISIS-4" in text[conflicts:text.index("Conclusions:")]
    assert "Fixed and random effects disagree" in text
    record = magnesium.to_dict()
    assert [c["kind"] for c in record["conflicts"]] == ["fixed_vs_random", "largest_trial"]
    assert "ISIS-4" in magnesium.to_markdown()
    assert "CONFLICT" in repr(magnesium)
    # Every prior stated on the outcome's scale, the enthusiastic one on the benefit side.
    assert ("  enthusiastic: OR centred on 0.67, towards a lower risk of death (benefit)"
            in text)
    assert record["effect_priors"]["skeptical"].startswith("OR centred on 1 (no effect)")


def test_magnesium_multiplicity_sentence_counts_what_is_read_against_the_line(magnesium):
    # 4 priors x 1 variant x one probability (P(benefit) > 0.95) each.
    sentence = magnesium.multiplicity
    assert sentence.startswith("4 posterior probabilities (4 priors x 1 data variant) are "
                               "read here against one 0.95 line")
    assert "Brok et al. 2008, J Clin Epidemiol 61:763-9" in sentence
    assert "Ioannidis & Trikalinos 2005, J Clin Epidemiol 58:543-9" in sentence
    assert sentence in str(magnesium) and sentence in magnesium.to_dict()["multiplicity"]


def test_magnesium_index_leads_with_what_varies(magnesium):
    decisions = decision_table([magnesium])
    lead = overview([magnesium], decisions, magnesium.direction, magnesium.conflicts)
    assert lead.varies[0].startswith("Across 1 analysis")
    assert any("ISIS-4" in c for c in lead.conflicts)
    assert lead.multiplicity.startswith("4 posterior probabilities")
    assert "## What varies" in lead.markdown()


def test_a_uniform_heat_map_is_replaced_by_a_sentence():
    table = pd.DataFrame({"label": ["overall", "overall", "timing"],
                          "analysis": ["overall", "overall", "timing"],
                          "variant": ["published"] * 3,
                          "prior": ["a", "b", "a"],
                          "p_benefit": [0.9981, 1.0, 0.9996],
                          "p_beyond": [0.93, 0.99, 0.97]})
    assert uniform_panels(table) == {"p_benefit": 1.0}
    lead = overview([], table, Direction(higher_is_better=False))
    assert lead.panels == ("p_beyond",)
    assert lead.uniform.startswith("P(benefit, RR < 1) is 1.00 in every analysis, prior and "
                                   "data variant")
