"""Direction of benefit: pure properties on synthetic draws, then BCG (fewer cases is better).

Reference for BCG: metafor's dat.bcg (Colditz et al. 1994, 13 trials), random-effects log RR
with DerSimonian-Laird: RR 0.4896 (95% CI 0.3449 to 0.6950), tau^2 = 0.3088
(``rma(ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg, measure="RR", method="DL")``;
Viechtbauer, metafor documentation of dat.bcg). The Bayesian binomial model pools log ORs and
reports the RR at one control risk, the median observed control risk (a few percent here, where
RR and OR nearly agree), so its median is compared with 0.49 loosely, and its interval must
exclude 1.
"""

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logit

import rebayes as rb
from conftest import TEST_DATA
from rebayes.bayes.design import build_design
from rebayes.bayes.fit import fit
from rebayes.bayes.quantities import number_needed_to_treat
from rebayes.bayes.settings import SamplerSettings
from rebayes.bayes.summary import summarize
from rebayes.data.direction import (
    HOW_TO_DECLARE,
    Direction,
    direction_from_labels,
    outcome_phrase,
)
from rebayes.data.schema import schema_of
from rebayes.plots import forest_plot
from rebayes.sensitivity.comparison import compare_fits
from rebayes.sensitivity.conclusions import Rule, assess, default_rules
from test_quantities import CHAINS, DRAWS, const, make_tree

QUICK = SamplerSettings(draws=300, tune=300, chains=2, min_ess=0)
LOWER = Direction(
    higher_is_better=False,
    outcome="tuberculosis",
    treatment="BCG",
    control="no vaccine",
)
# metafor, dat.bcg, rma(measure="RR", method="DL") (see the module docstring).
METAFOR_DL_RR, METAFOR_DL_LOW, METAFOR_DL_HIGH = 0.4896, 0.3449, 0.6950


# --- pure functions on synthetic draws ---------------------------------------------------------

log_rr_draws = st.lists(
    st.floats(-3, 3, allow_nan=False).filter(lambda x: abs(x) > 1e-9), min_size=1, max_size=200
)


@settings(max_examples=200, deadline=None)
@given(log_rr_draws, st.sampled_from([1.0, 1.1, 1.25, 2.0]))
def test_flipping_the_direction_maps_p_benefit_to_one_minus_p_benefit(log_rr, ratio):
    rr = np.exp(np.array(log_rr))
    higher, lower = Direction(higher_is_better=True), Direction(higher_is_better=False)
    # Same draws, other direction: benefit and harm swap (no draw sits exactly at RR = 1).
    assert higher.p_benefit(rr) + lower.p_benefit(rr) == pytest.approx(1.0, abs=1e-12)
    assert lower.p_benefit(rr) == higher.p_harm(rr)
    assert lower.flipped() == higher
    # Thresholds are symmetric on the ratio scale: benefit beyond r when lower is better is
    # benefit beyond r for the inverse ratio when higher is better.
    assert lower.p_benefit(rr, ratio) == higher.p_benefit(1 / rr, ratio)
    assert lower.p_benefit(rr, ratio) == float(np.mean(rr < 1 / ratio))


def test_words_follow_the_direction():
    assert (LOWER.benefit, LOWER.harm) == ("RR < 1", "RR > 1")
    assert (LOWER.beyond(1.1), LOWER.beyond(1.25)) == ("RR < 0.91", "RR < 0.8")
    assert Direction(higher_is_better=True).beyond(1.1) == "RR > 1.1"
    # The left side of a ratio axis (RR < 1) favours BCG when fewer cases is better.
    assert LOWER.favours == ("favours BCG", "favours no vaccine")
    assert Direction(higher_is_better=True).favours == ("favours control", "favours treatment")
    assert LOWER.ratio_label == "risk ratio of tuberculosis, BCG / no vaccine"
    assert LOWER.sentence().startswith("Benefit means a lower risk of tuberculosis with BCG")
    assert "not declared" in Direction().sentence()


def test_direction_survives_a_netcdf_round_trip(tmp_path):
    tree = xr.DataTree.from_dict({"posterior": xr.Dataset({"d": ("draw", np.zeros(3))})})
    tree.attrs = {"analysis": "x", **LOWER.attrs()}
    path = tmp_path / "fit.nc"
    tree.to_netcdf(path, engine="netcdf4")
    with xr.open_datatree(path, engine="netcdf4") as back:
        assert Direction.of(back) == LOWER
    # A tree that says nothing gets the defaults (undeclared, generic labels).
    assert Direction.of(xr.DataTree()) == Direction()
    assert not Direction.of(xr.DataTree()).declared


def test_nnt_follows_the_direction():
    fewer = xr.DataArray(np.linspace(-0.15, -0.05, 1001))  # fewer events with treatment
    lower = number_needed_to_treat(fewer, higher_is_better=False)
    assert lower.kind == "benefit" and str(lower).startswith("NNTB 10.0")
    lo, hi = lower.risk_difference.ci_low, lower.risk_difference.ci_high
    assert lower.interval == f"NNTB {1 / -lo:.1f} to {1 / -hi:.1f}"
    higher = number_needed_to_treat(fewer, higher_is_better=True)
    assert higher.kind == "harm" and higher.interval.startswith("NNTH ")
    spanning = number_needed_to_treat(xr.DataArray(np.linspace(-0.15, 0.05, 1001)), False)
    lo, hi = spanning.risk_difference.ci_low, spanning.risk_difference.ci_high
    assert spanning.interval == f"NNTH {1 / hi:.1f} to inf to NNTB {1 / -lo:.1f}"


def hand_tree(higher_is_better):
    """Hand-made fit: d ~ N(-0.5, 0.2) (log OR), control risks 0.5 and 0.6."""
    rng = np.random.default_rng(7)
    alpha = np.stack([const(0.0), const(logit(0.6))], axis=-1)
    tree = make_tree(
        rng.normal(-0.5, 0.2, (CHAINS, DRAWS)),
        np.abs(rng.normal(0, 0.1, (CHAINS, DRAWS))),
        rng.normal(size=(CHAINS, DRAWS, 2)),
        alpha,
        study_index=[0, 1],
    )
    tree.attrs.update(dataclasses.replace(LOWER, higher_is_better=higher_is_better).attrs())
    return tree


def test_summary_of_the_same_draws_in_both_directions():
    lower, higher = summarize(hand_tree(False)), summarize(hand_tree(True))
    assert lower.pooled_rr == higher.pooled_rr  # same draws
    assert lower.p_benefit == pytest.approx(1 - higher.p_benefit)
    assert lower.p_benefit == lower.p_rr_lt_1 and lower.p_harm == higher.p_benefit
    # Literal keys keep their meaning whatever the direction.
    assert lower.p_rr_gt_1_1 == higher.p_rr_gt_1_1 == higher.p_benefit_beyond_1_1
    assert lower.p_benefit_beyond_1_25 <= lower.p_benefit_beyond_1_1 <= lower.p_benefit
    assert (lower.nnt.kind, higher.nnt.kind) == ("benefit", "harm")
    record = json.loads(json.dumps(lower.to_dict(), allow_nan=False))
    assert record["direction"] == {
        "higher_is_better": False,
        "declared": True,
        "benefit": "RR < 1",
        "evidence": "",
        "outcome": "tuberculosis",
        "treatment": "BCG",
        "control": "no vaccine",
    }
    for key in (
        "p_benefit",
        "p_harm",
        "p_benefit_beyond_1_1",
        "p_benefit_beyond_1_25",
        "p_rr_gt_1_1",
        "p_rr_gt_1_25",
        "p_rr_lt_1",
        "pooled_rr",
        "pooled_or",
        "nnt",
    ):
        assert key in record
    text = str(lower)
    assert "P(benefit) = P(RR < 1)" in text and "P(RR < 0.91)" in text
    assert "Benefit means a lower risk of tuberculosis with BCG" in text


def test_flip_rules_follow_the_direction():
    rules = default_rules(
        pd.DataFrame(columns=["prior", "p_benefit", "p_benefit_beyond_1_1", "rr_low", "rr_high"]),
        LOWER,
    )
    labels = [r.label for r in rules]
    assert labels == [
        "P(benefit) > 0.95",
        "P(RR < 0.91) > 0.5",
        "the 95% interval of the pooled RR lies below 1 (upper end shown)",
    ]
    interval = rules[-1]
    assert (interval.column, interval.sense) == ("rr_high", "below")
    table = pd.DataFrame({"prior": ["a", "b"], "variant": ["v", "v"], "rr_high": [0.7, 1.05]})
    (conclusion,) = assess(table, [interval])
    assert [r.holds for r in conclusion.rows] == [True, False]
    assert conclusion.sentence() == (
        "The 95% interval of the pooled RR lies below 1 (upper end shown) under a (0.70) but not "
        "under b (1.05)."
    )
    assert Rule("x", "c", 1.0).holds(1.5) and not Rule("x", "c", 1.0, sense="below").holds(1.5)


def test_harm_leaning_evidence_is_judged_on_the_harm_side_first():
    # hcq's comparison (rebayes compare --data tests/data/hcq, exact engine): death, fewer is
    # better, the drug raised mortality; P(benefit) 0.198-0.475 over six priors.
    table = pd.DataFrame({
        "prior": ["a", "b", "c"], "variant": ["v"] * 3,
        "p_benefit": [0.198, 0.03, 0.475], "p_benefit_mcse": [0.0, 0.0, 0.0],
        "rr_low": [0.81, 1.02, 0.89], "rr_high": [1.34, 1.40, 1.16],
    })
    rules = default_rules(table, LOWER)
    assert [r.label for r in rules[:3]] == [
        "P(harm) > 0.95",
        "the 95% interval of the pooled RR lies above 1 (harm; lower end shown)",
        "P(benefit) > 0.95",
    ]
    harm, interval = assess(table, rules[:2])
    assert [round(r.value, 3) for r in harm.rows] == [0.802, 0.97, 0.525]  # 1 - P(benefit)
    assert harm.sentence() == (
        "P(harm) > 0.95 under b (0.970) but not under a (0.802), c (0.525).")
    assert harm.to_dict()["column"] == "1 - p_benefit"
    assert [r.holds for r in interval.rows] == [False, True, False]
    # Higher is better: harm is RR < 1, read at the interval's upper end.
    higher = dataclasses.replace(LOWER, higher_is_better=True)
    assert [r.label for r in default_rules(table.assign(p_benefit=0.2), higher)[:2]] == [
        "P(harm) > 0.95",
        "the 95% interval of the pooled RR lies below 1 (harm; upper end shown)",
    ]
    # Undeclared: neutral names; evidence leaning to benefit: no harm rules.
    assert default_rules(table, Direction())[0].label == "P(RR > 1) > 0.95"
    assert "harm" not in default_rules(table, Direction())[1].label
    assert default_rules(table.assign(p_benefit=0.9), LOWER)[0].label == "P(benefit) > 0.95"


def test_a_subgroup_leaning_to_harm_is_judged_on_the_harm_side_first():
    # hcq's drug meta-regression (exact engine, six priors): P(benefit in hcq) 0.264 to 0.553,
    # P(benefit in cq) 0.132 to 0.292; P(RR ratio cq vs hcq > 1) 0.722 to 0.827.
    table = pd.DataFrame({
        "prior": list("abcdef"), "variant": ["v"] * 6,
        "p_subgroup_benefit[hcq]": [0.279, 0.285, 0.275, 0.264, 0.313, 0.553],
        "p_subgroup_benefit[cq]": [0.159, 0.161, 0.158, 0.132, 0.174, 0.292],
        "p_ratio_gt_1[cq vs hcq]": [0.800, 0.799, 0.801, 0.827, 0.787, 0.722],
    })
    rules = default_rules(table, LOWER)
    assert [r.label for r in rules] == [
        "P(harm in hcq) > 0.95", "P(benefit in hcq) > 0.95",
        "P(harm in cq) > 0.95", "P(benefit in cq) > 0.95",
        "P(RR ratio cq vs hcq > 1) > 0.95",
    ]
    harm_cq = assess(table, [rules[2]])[0]
    assert harm_cq.sentence() == "P(harm in cq) > 0.95 under no prior (0.708 to 0.868)."
    # Undeclared: the literal side; leaning to benefit: no harm rule.
    assert default_rules(table, Direction())[0].label == "P(RR > 1 in hcq) > 0.95"
    flipped = table.assign(**{"p_subgroup_benefit[hcq]": 0.9})
    assert default_rules(flipped, LOWER)[0].label == "P(benefit in hcq) > 0.95"


def test_forest_favours_labels_follow_the_direction():
    rows = pd.DataFrame(
        {
            "label": ["t1"],
            "events_treat": [4],
            "n_treat": [123],
            "events_control": [11],
            "n_control": [139],
            "rr": [0.41],
            "rr_low": [0.13],
            "rr_high": [1.26],
        }
    )
    fig = forest_plot(rows, direction=LOWER)
    axis = next(ax for ax in fig.axes if ax.get_xscale() == "log")
    assert "\u2190 favours BCG    |    favours no vaccine \u2192" in axis.get_xlabel()
    headers = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "BCG" in headers and "no vaccine" in headers


def test_forest_wraps_long_arm_names_and_says_a_double_zero_row_is_not_estimable():
    # hcq's labels; NCT04384380 had no death in either arm: RevMan's "not estimable".
    rows = pd.DataFrame({
        "label": ["HYDRA", "NCT04384380"], "events_treat": [28, 0], "n_treat": [75, 21],
        "events_control": [29, 0], "n_control": [77, 12], "rr": [0.99, np.nan],
        "rr_low": [0.66, np.nan], "rr_high": [1.49, np.nan],
    })
    direction = dataclasses.replace(LOWER, treatment="hydroxychloroquine or chloroquine",
                                    control="standard of care or placebo")
    texts = [t.get_text() for ax in forest_plot(rows, direction=direction).axes
             for t in ax.texts]
    assert "hydroxychloroquine\nor chloroquine" in texts
    assert "standard of\ncare or\nplacebo" in texts
    assert "not estimable" in texts and "0.99 [0.66, 1.49]" in texts
    assert not any("nan" in t for t in texts)


# --- BCG, sampled briefly --------------------------------------------------------------------


@pytest.fixture(scope="module")
def bcg_fit():
    trials = rb.load_trials(TEST_DATA / "bcg.csv")
    trials.attrs["schema"] = dataclasses.replace(
        schema_of(trials),
        higher_is_better=False,
        outcome="tuberculosis",
        treatment="BCG",
        control="no vaccine",
    )
    spec = rb.AnalysisSpec(name="overall", title="BCG vs no vaccine", effect="common")
    return fit(spec, "weakly_informative", settings=QUICK, design=build_design(spec, trials))


def test_bcg_benefit_is_fewer_cases(bcg_fit):
    assert Direction.of(bcg_fit.tree) == LOWER
    s = bcg_fit.summary()
    assert s.direction == LOWER
    # Every draw has RR < 1: P(benefit) = 1 (the published CI 0.34-0.70 is far from 1).
    assert s.p_benefit > 0.99 and s.p_harm < 0.01
    assert s.p_rr_lt_1 == s.p_benefit and s.p_rr_gt_1_1 < 0.01
    assert s.p_benefit_beyond_1_1 > 0.95  # P(RR < 1/1.1)
    # Pooled RR near metafor's DL 0.49, its 95% interval excluding 1.
    assert s.pooled_rr.median == pytest.approx(METAFOR_DL_RR, rel=0.2)
    assert s.pooled_rr.ci_high < 1
    assert s.pooled_rr.ci_low < METAFOR_DL_RR < s.pooled_rr.ci_high
    # sqrt(0.3088) = 0.56 on the log RR scale; the model's tau is on the log OR scale, nearly
    # the same at these small risks.
    assert 0.3 < s.tau.median < 0.9
    # Fewer cases with BCG: a negative risk difference is a benefit (NNTB).
    assert s.nnt.risk_difference.median < 0
    assert s.nnt.kind == "benefit" and str(s.nnt).startswith("NNTB")
    record = s.to_dict()
    assert record["direction"]["benefit"] == "RR < 1" and record["nnt"]["kind"] == "benefit"


def test_bcg_flipped_direction_on_the_same_draws(bcg_fit):
    tree = bcg_fit.tree.copy()
    tree.attrs = {**tree.attrs, "higher_is_better": 1}
    lower, higher = bcg_fit.summary(), summarize(tree)
    assert higher.pooled_rr == lower.pooled_rr
    assert higher.p_benefit == pytest.approx(1 - lower.p_benefit)
    assert higher.nnt.kind == "harm"


def test_bcg_comparison_states_the_direction(bcg_fit):
    comparison = compare_fits([bcg_fit])
    assert comparison.direction == LOWER
    assert comparison.to_dict()["direction"]["higher_is_better"] is False
    sentences = " ".join(comparison.stable)
    assert "P(benefit) > 0.95 under every prior" in sentences
    assert ("The 95% interval of the pooled RR lies below 1 (upper end shown) under every prior"
            in sentences)
    text = str(comparison)
    assert "RR of tuberculosis, BCG over no vaccine (benefit: RR < 1)" in text
    assert "P(RR<1)" in text and "P(RR<0.91)" in text


def test_bcg_dataset_folder_declares_the_direction():
    # The same table read through a dataset.toml that declares lower is better.
    folder = TEST_DATA / "bcg"
    if not (folder / "dataset.toml").is_file():
        pytest.skip("no BCG dataset folder")
    trials = rb.load_trials(folder)
    spec = rb.AnalysisSpec(name="overall", effect="common")
    result = fit(spec, "weakly_informative", settings=QUICK, design=build_design(spec, trials))
    direction = Direction.from_schema(schema_of(trials))
    assert not direction.higher_is_better and direction.declared
    assert Direction.of(result.tree) == direction
    assert result.summary().p_benefit > 0.99
    assert math.isclose(result.summary().p_benefit, result.summary().p_rr_lt_1)


# --- three states: the undeclared direction's words ---------------------------------------------

UNDECLARED = Direction(outcome="death", treatment="aspirin", control="placebo")


def test_an_undeclared_direction_speaks_neutrally():
    d = UNDECLARED
    assert not d.declared and d.higher_is_better is None
    # Probabilities are computed on the side RR < 1 and named literally.
    assert (d.benefit, d.harm, d.beyond(1.1)) == ("RR < 1", "RR > 1", "RR < 0.91")
    assert (d.p_name(), d.p_name(1.1), d.harm_name()) == ("P(RR < 1)", "P(RR < 0.91)",
                                                          "P(RR > 1)")
    assert (d.p_text(), d.harm_text()) == ("P(RR < 1)", "P(RR > 1)")
    assert d.favours == ("lower risk with aspirin", "higher risk with aspirin")
    assert d.side(True) == "RR below 1 (a lower risk of death with aspirin)"
    sentence = d.sentence()
    assert "benefit" not in sentence.replace("direction of benefit", "").replace(
        "called benefit", "")
    assert sentence.endswith(HOW_TO_DECLARE)
    assert "higher_is_better = true" in HOW_TO_DECLARE and "--lower-is-better" in HOW_TO_DECLARE
    assert d.to_dict()["benefit"] is None and d.to_dict()["declared"] is False
    rr = np.array([0.5, 0.8, 1.2, 1.5, 0.9])
    assert d.p_benefit(rr) == 0.6 and d.p_harm(rr) == 0.4
    # The flip of an undeclared direction is itself (no side to swap).
    assert d.flipped() == d
    # Keys about benefit get their literal names; a declared direction keeps them.
    assert [d.key(k) for k in ("p_benefit", "p_benefit_beyond_1_1", "p_harm",
                               "p_subgroup_benefit[a]", "delta_p_benefit", "tau")] == [
        "p_rr_lt_1", "p_rr_lt_0_91", "p_rr_gt_1", "p_subgroup_rr_lt_1[a]", "delta_p_rr_lt_1",
        "tau"]
    assert LOWER.key("p_benefit") == "p_benefit"
    # Declared words are unchanged.
    assert (LOWER.p_name(), LOWER.p_text(), LOWER.harm_text()) == (
        "P(benefit)", "P(benefit) = P(RR < 1)", "P(harm) = P(RR > 1)")


def test_a_long_outcome_title_is_quoted_in_sentences():
    title = "Aspirin for Preventing Death after Myocardial Infarction"
    assert outcome_phrase("", title) == f"the outcome '{title}'"
    assert outcome_phrase("death", title) == "death"
    assert outcome_phrase() == "the event"
    d = Direction(higher_is_better=False, outcome=outcome_phrase("", title),
                  treatment="Aspirin", control="Control")
    assert d.sentence().startswith(
        f"Benefit means a lower risk of the outcome '{title}' with Aspirin than with Control")
    assert f"risk of {title}" not in d.sentence()
    assert d.events == f"events ({title})"
    assert Direction().events == "events" and LOWER.events == "tuberculosis"
    assert d.complement().outcome == f"the complement of the outcome '{title}'"
    assert LOWER.complement().outcome == "no tuberculosis"
    assert LOWER.complement().higher_is_better is True


@pytest.mark.parametrize(
    ("left", "right", "higher"),
    [
        ("Favours experimental", "Favours control", False),  # RevMan 5.0's defaults
        ("Favours [experimental]", "Favours [control]", False),  # RevMan 5.3's defaults
        ("FAVOURS INTERVENTION", "favours placebo", False),  # case-insensitive
        ("Favors treatment", "Favors control", False),  # American spelling
        ("Favours aspirin", "Favours placebo", False),  # the comparison's own arm names
        ("Favours [Aspirin]", "Favours [Control]", False),
        ("Favours control", "Favours experimental", True),  # a good event (more is better)
        ("Control better", "Experimental better", True),
        ("Experimental better", "Control better", False),
        ("Favours placebo", "Favours aspirin", True),
        ("Increased survival", "Decreased survival", None),  # not RevMan's words
        ("Favours experimental", "Favours experimental", None),  # one arm twice
        ("", "Favours control", None),  # a label missing
        ("Favours aspirin", "Favours clopidogrel", None),  # unknown arm names
    ],
)
def test_direction_from_revman_labels(left, right, higher):
    found = direction_from_labels(left, right, treatment="Aspirin", control="Control")
    if higher is None:
        assert found is None
        return
    assert found.higher_is_better is higher
    assert (found.left, found.right) == (left, right)
    assert found.source == f"RevMan graph labels: left {left!r}, right {right!r}"
    assert ("more events is better" if higher else "fewer events is better") in found.reason


def test_a_command_line_direction_names_itself():
    from rebayes.data.schema import DatasetSchema

    bare = DatasetSchema.defaults()
    lower = bare.with_direction(False)
    assert lower.higher_is_better is False and lower.direction_evidence == "--lower-is-better"
    assert lower.direction.sentence().endswith("(RR < 1); from --lower-is-better.")
    # Nothing asked, or the direction already declared: the schema itself.
    assert bare.with_direction(None) is bare and lower.with_direction(False) is lower
