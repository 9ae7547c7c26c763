"""Analysis of credibility (Matthews RAJ, R Soc Open Sci 2018;5:171047; Held L, R Soc Open Sci
2019;6:181534).

The paper's worked numbers could not be retrieved here, so the closed forms are checked by
their defining property: a normal-normal update of the data with the sceptical (advocacy)
prior puts the posterior 95% bound exactly at no effect. The thresholds the papers state in
words are checked too: intrinsic credibility at p < 0.013 (Matthews 2018) and p_IC < 0.05 at
p < 0.0056 (Held 2019). On real data the method is applied to RevMan's 95% CI (never to a
posterior interval, whose prior it would count twice), checked against the formulas by hand
on metafor's intervals.
"""

import math

import pytest
from scipy import stats

import rebayes as rb
from conftest import TEST_DATA
from rebayes.data.direction import Direction
from rebayes.frequentist.effects import Z95
from rebayes.tools.credibility import (
    GOLDEN,
    HELD_P,
    MATTHEWS_P,
    PLAUSIBLE_RATIO,
    Credibility,
    advocacy_limit,
    analysis_of_credibility,
    dataset_credibility,
    sceptical_limit,
)


def posterior(theta, se, prior_mean, prior_sd):
    precision = 1 / se**2 + 1 / prior_sd**2
    mean = (theta / se**2 + prior_mean / prior_sd**2) / precision
    return mean, math.sqrt(1 / precision)


@pytest.mark.parametrize("low,high", [(1.1, 2.0), (0.3, 0.9), (1.01, 5.0), (0.05, 0.99)])
def test_sceptical_prior_puts_the_posterior_bound_at_one(low, high):
    row = analysis_of_credibility(low, high)
    lo, hi = math.log(low), math.log(high)
    theta, se = (lo + hi) / 2, (hi - lo) / (2 * Z95)
    sigma = math.log(row.sceptical_limit) / Z95
    assert sigma == pytest.approx(row.sceptical_sd, rel=1e-12)
    mean, sd = posterior(theta, se, 0.0, sigma)
    bound = mean - Z95 * sd if theta > 0 else mean + Z95 * sd
    assert abs(bound) < 1e-9
    # A wider (less sceptical) prior leaves the result significant, a narrower one does not.
    for factor, still in ((1.1, True), (0.9, False)):
        mean, sd = posterior(theta, se, 0.0, sigma * factor)
        assert (abs(mean) - Z95 * sd > 0) is still


@pytest.mark.parametrize("low,high", [(0.8, 1.5), (0.5, 1.1), (0.95, 3.0)])
def test_advocacy_prior_makes_the_posterior_bound_exactly_one(low, high):
    row = analysis_of_credibility(low, high)
    assert not row.significant and row.sceptical_limit is None
    lo, hi = math.log(low), math.log(high)
    theta, se = (lo + hi) / 2, (hi - lo) / (2 * Z95)
    al = math.log(row.advocacy_limit)
    assert math.copysign(1, al) == math.copysign(1, theta)
    # Advocacy prior: 95% of its mass between no effect and AL.
    mean, sd = posterior(theta, se, al / 2, abs(al) / (2 * Z95))
    bound = mean - Z95 * sd if theta > 0 else mean + Z95 * sd
    assert abs(bound) < 1e-9
    # A stronger advocacy prior (upper end inside AL) rescues the result, a weaker one not.
    for factor, rescued in ((0.9, True), (1.1, False)):
        a = al * factor
        mean, sd = posterior(theta, se, a / 2, abs(a) / (2 * Z95))
        assert (abs(mean) - Z95 * sd > 0) is rescued


def test_closed_forms_on_the_log_scale():
    # (u - l)^2 / (4 sqrt(ul)) with l = 0.1, u = 0.9: 0.64 / (4 * 0.3) = 0.5333...
    assert sceptical_limit(0.1, 0.9) == pytest.approx(0.64 / 1.2, rel=1e-15)
    assert sceptical_limit(-0.9, -0.1) == pytest.approx(-0.64 / 1.2, rel=1e-15)
    # -(u + l)(u - l)^2 / (2ul) with l = -0.2, u = 0.6: -(0.4)(0.64) / (-0.24)
    assert advocacy_limit(-0.2, 0.6) == pytest.approx(0.4 * 0.64 / 0.24, rel=1e-15)
    with pytest.raises(rb.RebayesError):
        sceptical_limit(-0.1, 0.2)
    with pytest.raises(rb.RebayesError):
        advocacy_limit(0.1, 0.2)


def test_intrinsic_credibility_thresholds():
    # Matthews 2018: intrinsically credible iff |Z| > 1.96 sqrt(golden ratio), p < 0.013.
    z_star = Z95 * math.sqrt(GOLDEN)
    assert 2 * stats.norm.sf(z_star) == pytest.approx(0.0127, abs=5e-5)
    for z, credible in ((z_star * 1.001, True), (z_star * 0.999, False)):
        se = 0.2
        row = analysis_of_credibility(math.exp(z * se - Z95 * se), math.exp(z * se + Z95 * se))
        assert row.intrinsically_credible is credible
    # Held 2019: p_IC = 2(1 - Phi(|Z| / sqrt 2)) is 0.05 where p = 0.0056.
    z = Z95 * math.sqrt(2)
    row = analysis_of_credibility(math.exp(0.1 * z - 0.1 * Z95), math.exp(0.1 * z + 0.1 * Z95))
    assert row.p_intrinsic == pytest.approx(0.05, abs=1e-6)
    assert row.p == pytest.approx(0.0056, abs=5e-5)


def test_sentences_and_outputs():
    rows = (analysis_of_credibility(0.6, 0.9, "RevMan", "frequentist", "OR"),
            analysis_of_credibility(0.7, 1.2, "RevMan", "frequentist", "OR"))
    lower = Direction(higher_is_better=False, outcome="death")
    result = Credibility(rows[:1], lower)
    sl = rows[0].sceptical_limit
    assert f"between {1 / sl:.2f} and {sl:.2f}" in result.summary()
    assert "shows benefit (OR < 1)" in result.summary()
    assert "to conclude benefit" in rows[1].sentence(lower)
    assert result.to_dict()["rows"][0]["sceptical_limit"] == sl
    assert len(result.to_dataframe()) == 1
    assert "sceptical" in str(result) and "Matthews" in str(result) and "Held" in str(result)
    assert result.plot().axes
    assert "<table" in result._repr_html_() and repr(result).startswith("Credibility(")


def test_a_significant_harm_gets_a_sceptical_limit_and_words_for_harm():
    # Fewer deaths is better; the interval lies above 1: harm, doubted by a sceptic as a
    # benefit would be (the limit is symmetric on the log scale).
    lower = Direction(higher_is_better=False, outcome="death")
    harm = analysis_of_credibility(1.1, 2.0, "CI", "frequentist", "OR")
    benefit = analysis_of_credibility(1 / 2.0, 1 / 1.1, "CI", "frequentist", "OR")
    assert harm.sceptical_limit == pytest.approx(benefit.sceptical_limit, rel=1e-12)
    text = harm.sentence(lower)
    assert "shows harm (OR > 1)" in text and "OR > " in text
    # l = log 1.1, u = log 2: SL = (u - l)^2 / (4 sqrt(u l)), by hand.
    lo, hi = math.log(1.1), math.log(2.0)
    by_hand = math.exp((hi - lo) ** 2 / (4 * math.sqrt(hi * lo)))
    assert harm.sceptical_limit == pytest.approx(by_hand)


def test_limits_beyond_any_plausible_ratio_are_said_in_words():
    lower = Direction(higher_is_better=False, outcome="death")
    # An interval that barely includes 1: AL = -(u + l)(u - l)^2 / (2 u l) explodes.
    near = analysis_of_credibility(0.999, 1.5, "CI", "frequentist", "OR")
    lo, hi = math.log(0.999), math.log(1.5)
    assert near.advocacy_limit == pytest.approx(math.exp(-(hi + lo) * (hi - lo) ** 2
                                                         / (2 * hi * lo)))
    assert near.advocacy_limit > 1e30
    text = near.sentence(lower)
    assert "beyond any plausible OR" in text and f"{near.advocacy_limit:.2f}" not in text
    assert Credibility((near,), lower).report_frame()["advocacy_limit"].tolist() == ["> 10"]
    assert "> 10" in str(Credibility((near,), lower))
    # A barely significant, very wide interval: its sceptical limit is beyond plausibility.
    wide = analysis_of_credibility(1.001, 50.0, "CI", "frequentist", "OR")
    assert wide.sceptical_limit > PLAUSIBLE_RATIO
    assert "no plausible prior evidence makes it credible" in wide.sentence(lower)
    assert Credibility((wide,), lower).plot().axes  # drawn to the axis's edge, no error


def test_both_intrinsic_criteria_are_named_and_their_disagreement_said():
    # p = 0.008 lies between Held's 0.0056 and Matthews' 0.013.
    z = float(stats.norm.isf(0.008 / 2))
    se = 0.1
    row = analysis_of_credibility(math.exp(z * se - Z95 * se), math.exp(z * se + Z95 * se))
    assert row.p == pytest.approx(0.008, rel=1e-9)
    assert row.matthews_credible and not row.held_credible and not row.criteria_agree
    text = row.criteria_sentence()
    assert "Matthews' criterion" in text and "Held's" in text and "they disagree" in text
    assert MATTHEWS_P == pytest.approx(0.0127, abs=5e-5) and HELD_P == pytest.approx(0.0056,
                                                                                     abs=5e-5)
    # Both met (p = 0.001) and neither (p = 0.2): no disagreement said.
    for p, both in ((0.001, True), (0.2, False)):
        z = float(stats.norm.isf(p / 2))
        r = analysis_of_credibility(math.exp(z * se - Z95 * se), math.exp(z * se + Z95 * se))
        assert r.matthews_credible is both and r.held_credible is both
        assert "disagree" not in r.criteria_sentence()


# Reference intervals from metafor 3.8-1 (R 4.2), with the hand calculations of Matthews'
# and Held's formulas applied to them. RevMan's methods match metafor to ~1e-4 here: for the
# M-H OR RevMan adds 0.5 to the zero cells of one magnesium trial (Bertschat), and for M-H
# random effects it takes tau^2 from the M-H heterogeneity statistic.
#   magnesium: rma.mh(ai=events_treat, n1i=n_treat, ci=events_control, n2i=n_control,
#              data=tests/data/magnesium/trials.csv, measure="OR")
#   hcq:       rma(..., data=tests/data/hcq/trials.csv, measure="OR", method="DL", drop00=TRUE)
#   bcg:       rma(ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg, measure="RR", method="DL")
METAFOR = {
    "magnesium": (1.00610083801, 0.947994099591, 1.06776919464, 0.841175137152),
    "hcq": (1.0940710508, 0.963618686695, 1.24218374003, 0.165175312238),
    "bcg": (0.489624150464, 0.344919135222, 0.695037718225, 6.4629243047e-05),
}


def hand(low, high):
    """Matthews' and Held's quantities of a 95% CI, by their formulas."""
    lo, hi = math.log(low), math.log(high)
    theta, se = (lo + hi) / 2, (hi - lo) / (2 * 1.959963984540054)
    z = theta / se
    out = {"p": 2 * stats.norm.sf(abs(z)), "p_ic": 2 * stats.norm.sf(abs(z) / math.sqrt(2))}
    if lo * hi > 0:
        out["sl"] = math.exp((hi - lo) ** 2 / (4 * math.sqrt(hi * lo)))
    else:
        out["al"] = math.exp(-(hi + lo) * (hi - lo) ** 2 / (2 * hi * lo))
    return out


@pytest.mark.parametrize("name", ["magnesium", "hcq", "bcg"])
def test_credibility_of_the_revman_interval_on_real_data(name):
    trials = rb.load_trials(TEST_DATA / name)
    result = dataset_credibility(trials)
    (row,) = result.rows
    assert row.source == "frequentist" and row.label.startswith("RevMan M-H")
    estimate, low, high, p = METAFOR[name]
    assert (row.ci_low, row.ci_high) == pytest.approx((low, high), rel=5e-4)
    reference = hand(low, high)
    assert row.p == pytest.approx(reference["p"], rel=0.02)
    assert row.p_intrinsic == pytest.approx(reference["p_ic"], rel=0.01)
    # The limits are the hand formulas of the interval rebayes reports (exact) and agree
    # with metafor's interval to the methods' difference.
    own = hand(row.ci_low, row.ci_high)
    if "sl" in reference:
        assert row.sceptical_limit == pytest.approx(own["sl"], rel=1e-12)
        assert row.sceptical_limit == pytest.approx(reference["sl"], rel=2e-3)
        assert row.advocacy_limit is None
    else:
        assert row.advocacy_limit == pytest.approx(own["al"], rel=1e-12)
        assert row.advocacy_limit == pytest.approx(reference["al"], rel=2e-3)
        assert row.sceptical_limit is None


def test_the_story_on_real_data():
    # Hydroxychloroquine (fewer deaths is better): the interval leans to harm, and an
    # advocate of harm, not of benefit, is asked for.
    hcq = dataset_credibility(rb.load_trials(TEST_DATA / "hcq"))
    assert "leans to harm (OR > 1)" in hcq.summary() and "to conclude harm" in hcq.summary()
    assert hcq.rows[0].advocacy_limit > 1
    # BCG: significant benefit, intrinsically credible by both criteria (p = 6.5e-5).
    bcg = dataset_credibility(rb.load_trials(TEST_DATA / "bcg"))
    assert "shows benefit (RR < 1)" in bcg.summary()
    assert bcg.rows[0].matthews_credible and bcg.rows[0].held_credible
    # Magnesium's fixed-effect OR 1.006 (0.948 to 1.068): not significant, leaning to harm.
    magnesium = dataset_credibility(rb.load_trials(TEST_DATA / "magnesium"))
    assert "leans to harm" in magnesium.summary()
    assert not magnesium.rows[0].matthews_credible and not magnesium.rows[0].held_credible


def test_cli_writes_the_figure_only_when_asked(tmp_path, capsys):
    import json

    from rebayes.cli import main

    out = tmp_path / "credibility.png"
    assert main(["credibility", "--data", str(TEST_DATA / "hcq"), "--json", "--output",
                 str(out)]) == 0
    record = json.loads(capsys.readouterr().out)
    assert [r["source"] for r in record["rows"]] == ["frequentist"]
    assert record["rows"][0]["measure"] == "OR"
    assert {"matthews_credible", "held_credible", "criteria_agree"} <= set(record["rows"][0])
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["credibility.png"]
    # The analysis needs no fit: --prior is no option of it.
    with pytest.raises(SystemExit) as stop:
        main(["credibility", "--data", str(TEST_DATA / "hcq"), "--prior", "vague"])
    assert stop.value.code == 2
