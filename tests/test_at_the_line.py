"""A probability within two Monte Carlo standard errors of its line is printed "at the line".

The rule is checked by hand; the story on a hand-made fit of a harmful treatment whose outcome
is death (fewer events is better, as in metadat's dat.axfors2021, tests/data/hcq), with
probabilities and MCSEs set by hand next to 0.95.
"""

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
from scipy.special import logit

from rebayes.bayes.mcse import at_the_line, line_note, with_line
from rebayes.bayes.summary import summarize
from rebayes.data.direction import Direction
from rebayes.data.schema import DatasetSchema
from rebayes.report.analysis import key_sentence
from rebayes.sensitivity.conclusions import Rule, assess
from test_quantities import CHAINS, DRAWS, const, make_tree

DEATH = Direction(higher_is_better=False, outcome="death", treatment="hydroxychloroquine",
                  control="standard of care")
NOTE = "at the line: within 2 MCSE of 0.95"


@pytest.mark.parametrize(("p", "mcse", "line", "expected"), [
    (0.946, 0.003, 0.95, True),    # |0.946 - 0.95| = 0.004 < 2 x 0.003 = 0.006
    (0.93, 0.004, 0.95, False),    # 0.020 >= 0.008
    (0.9539, 0.002, 0.95, True),   # above the line too: 0.0039 < 0.004
    (0.955, 0.002, 0.95, False),   # 0.005 >= 0.004
    (0.81, 0.004, 0.8, False),     # 0.010 >= 0.008
    (0.806, 0.004, 0.8, True),     # 0.006 < 0.008
    (0.946, math.nan, 0.95, False),  # no MCSE known: nothing to flag
    (math.nan, 0.01, 0.95, False),
    (0.95, 0.0, 0.95, False),      # no Monte Carlo error: exactly on the line is not "near"
])
def test_the_rule_by_hand(p, mcse, line, expected):
    assert at_the_line(p, mcse, line) is expected


def test_the_one_wording():
    assert line_note(0.95) == NOTE
    assert line_note(0.8) == "at the line: within 2 MCSE of 0.8"
    assert with_line(0.946, 0.003, 0.95) == f"0.946 ({NOTE})"
    assert with_line(0.93, 0.004, 0.95) == "0.930"
    assert with_line(0.9461, 0.003, 0.95, digits=2) == f"0.95 ({NOTE})"


def _hand_fit(**changes):
    """A hand-made fit's summary, then its probabilities and MCSEs set by hand."""
    rng = np.random.default_rng(3)
    alpha = np.stack([const(0.0), const(logit(0.3))], axis=-1)
    tree = make_tree(rng.normal(0.1, 0.05, (CHAINS, DRAWS)),
                     np.abs(rng.normal(0, 0.1, (CHAINS, DRAWS))),
                     rng.normal(size=(CHAINS, DRAWS, 2)), alpha, study_index=[0, 1])
    return dataclasses.replace(summarize(tree), direction=DEATH, prior="vague", **changes)


def test_fit_text_and_json_mark_a_harm_at_the_line():
    # Deaths rise with the treatment: P(harm) = 0.947, MCSE 0.003 -> within 0.006 of 0.95.
    s = _hand_fit(p_benefit=0.053, p_harm=0.947, p_benefit_beyond_1_1=0.02,
                  mcse={"p_benefit": 0.003, "p_benefit_beyond_1_1": 0.002})
    text = str(s)
    assert f"P(harm) = P(RR > 1) = 0.947 ({NOTE})" in text
    assert "P(harm) = P(RR > 1) = 0.947:" not in text  # never the plain verdict
    assert "P(benefit) = P(RR < 1) = 0.053   " in text  # far from its own line
    record = s.to_dict()
    assert record["mcse"]["p_benefit"] == 0.003 and record["mcse"]["p_harm"] == 0.003
    assert [a["name"] for a in record["at_the_line"]] == ["p_harm"]
    assert record["at_the_line"][0]["line"] == 0.95
    json.dumps(record, allow_nan=False)
    sentence = key_sentence(s, DatasetSchema(higher_is_better=False, outcome="death"))
    assert f"P(harm, RR > 1) = 0.95 ({NOTE})" in sentence


def test_fit_text_is_plain_away_from_the_line_and_marks_the_beyond_line():
    s = _hand_fit(p_benefit=0.03, p_harm=0.97, p_benefit_beyond_1_1=0.49,
                  mcse={"p_benefit": 0.003, "p_benefit_beyond_1_1": 0.008})
    text = str(s)
    assert "P(harm) = P(RR > 1) = 0.970:" in text and "0.970 (at the line" not in text
    assert "P(RR < 0.91) = 0.490 (at the line: within 2 MCSE of 0.5)" in text
    assert [a["name"] for a in s.to_dict()["at_the_line"]] == ["p_benefit_beyond_1_1"]


def test_undeclared_direction_names_the_literal_side():
    s = dataclasses.replace(_hand_fit(), direction=Direction(), p_benefit=0.951, p_harm=0.049,
                            mcse={"p_benefit": 0.002})
    assert f"P(RR < 1) = 0.951 ({NOTE})" in str(s)
    assert [a["name"] for a in s.to_dict()["at_the_line"]] == ["p_rr_lt_1"]


def test_conclusions_table_uses_the_same_rule():
    rule = Rule("P(benefit) > 0.95", "p_benefit", 0.95, "p_benefit_mcse")
    t = pd.DataFrame({"prior": ["a", "b", "c"], "variant": ["v"] * 3,
                      "p_benefit": [0.946, 0.93, 0.9539],
                      "p_benefit_mcse": [0.003, 0.004, 0.002]})
    (conclusion,) = assess(t, [rule])
    assert [r.near for r in conclusion.rows] == [True, False, True]
    assert f"a (0.946, {NOTE})" in conclusion.sentence()


def _decisions(rows):
    return pd.DataFrame.from_records(rows, columns=[
        "label", "analysis", "variant", "prior", "p_benefit", "p_beyond", "p_benefit_mcse",
        "p_beyond_mcse"])


def test_the_index_lead_names_the_cases_at_the_line():
    from rebayes.report.overview import at_the_line_sentence

    decisions = _decisions([
        ("overall", "overall", "published", "vague", 0.052, 0.01, 0.002, 0.001),  # harm 0.948
        ("overall", "overall", "published", "skeptical", 0.90, 0.30, 0.004, 0.005),
        ("by dose", "by_dose", "published", "vague", 0.9539, 0.6, 0.002, 0.01),
    ])
    sentence = at_the_line_sentence(decisions, DEATH)
    assert sentence.startswith("In 2 of the 3 cases P(benefit, RR < 1) or P(harm, RR > 1) is "
                               f"{NOTE} (overall, vague prior, published data: P(harm, RR > 1) "
                               "= 0.948; by dose, vague prior, published data: P(benefit, "
                               "RR < 1) = 0.954)")
    assert at_the_line_sentence(decisions.iloc[[1]], DEATH) == ""


def test_the_heat_map_frames_cells_at_the_line_with_dashes():
    from rebayes.plots.heatmap import decision_heatmap

    decisions = _decisions([
        ("overall", "overall", "published", "vague", 0.946, 0.3, 0.003, 0.01),   # at the line
        ("overall", "overall", "published", "skeptical", 0.97, 0.3, 0.001, 0.01),  # framed
        ("overall", "overall", "published", "flat", 0.93, 0.3, 0.004, 0.01),     # neither
    ])
    fig = decision_heatmap(decisions, DEATH, panels=("p_benefit",))
    frames = [(round(p.get_x() + 0.5), p.get_linestyle()) for p in fig.axes[0].patches]
    assert sorted(frames) == [(0, "--"), (1, "solid")]
    assert NOTE in fig.get_suptitle()


def test_a_cumulative_crossing_at_the_line_says_so():
    from rebayes.bayes.records import Estimate
    from rebayes.tools.cumulative import CumulativeAnalysis, CumulativeStep

    rr = Estimate(0.8, 0.8, 0.6, 1.1, 0.6, 1.1)
    # Fewer deaths is better. It crosses 0.95 at T3 by 0.002 with an MCSE of 0.004 (at the
    # line), then at T5 clearly (0.99, MCSE 0.001), after falling back at T4 (0.90).
    values = [(0.90, 0.004), (0.952, 0.004), (0.90, 0.004), (0.99, 0.001)]
    steps = tuple(CumulativeStep(f"T{k}", str(1980 + k), k, rr, p, 0.1, 0.8, 0.6, 1.1, 0.2, m)
                  for k, (p, m) in enumerate(values, start=2))
    cum = CumulativeAnalysis(steps, tuple(f"T{k}" for k in range(1, 6)), "year", DEATH)
    text = cum.summary()
    assert (f"it first exceeded 0.95 after T3 (year 1983, 3 trials, P(benefit) 0.952 ({NOTE}))"
            in text)
    assert "rose above it after T5 (year 1985, 5 trials)." in text  # 0.99: a plain crossing
    assert "above 0.95 at the last step (2 reversals)" in text
    record = cum.to_dict()
    assert [c["at_the_line"] for c in record["crossings"]] == [True, False, False]
    assert record["steps"][1]["p_benefit_mcse"] == 0.004
    printed = str(cum)
    assert "0.952 ≈" in printed and "0.990 ≈" not in printed and f"≈ {NOTE}" in printed
    # Ending at the line: the last step's verdict says so.
    last = dataclasses.replace(steps[-1], p_benefit=0.953, p_benefit_mcse=0.002)
    ends = CumulativeAnalysis((*steps[:-1], last), cum.order, "year", DEATH).summary()
    assert f"above 0.95 at the last step, {NOTE} (2 reversals)" in ends


def test_influence_marks_a_left_out_probability_at_the_line():
    from rebayes.sensitivity.influence import influence_table

    # Leaving out A moves P(benefit) from 0.90 to 0.952 (MCSE 0.004: at the line), B to 0.87.
    bayes = pd.DataFrame({"left_out": ["(none)", "A", "B"], "rr_median": 1.0, "rr_low": 0.9,
                          "rr_high": 1.1, "tau_median": 0.1, "p_benefit": [0.90, 0.952, 0.87],
                          "p_benefit_mcse": [0.004, 0.004, 0.004]})
    freq = pd.DataFrame({"left_out": ["(none)", "A", "B"], "estimate": 1.0, "ci_low": 0.9,
                         "ci_high": 1.1, "p": 0.5, "i2": 0.0, "tau2": 0.0, "k": 2})
    influence = influence_table(bayes, freq, DEATH)
    assert influence.at_the_line() == [False, True, False]
    verdict = influence.summary()
    assert f"for: A (to 0.952 ({NOTE}), +0.052)." in verdict  # B moves it by 0.03 only
    assert f"Left out in turn, A leaves P(benefit) {NOTE}." in verdict


def test_a_subgroup_leaning_to_harm_is_at_the_line_of_0_05():
    from rebayes.bayes.records import Estimate, SubgroupEffect

    rr = Estimate(1.2, 1.2, 1.0, 1.4, 1.0, 1.4)
    s = _hand_fit(subgroups=(SubgroupEffect("early", rr, 0.052),
                             SubgroupEffect("late", rr, 0.30)),
                  mcse={"p_subgroup_benefit[early]": 0.002, "p_subgroup_benefit[late]": 0.002})
    # P(benefit | early) = 0.052 is 0.002 from 0.05: its P(harm) 0.948 is within 2 MCSE of 0.95.
    assert "P(RR < 1 | early) = 0.052 (at the line: within 2 MCSE of 0.05)" in str(s)
    assert "P(RR < 1 | late) = 0.300\n" in str(s) + "\n"
    assert [a["name"] for a in s.to_dict()["at_the_line"]] == ["subgroups[early].p_benefit"]


def test_the_results_table_marks_values_at_the_line():
    from rebayes.report.analysis import results_markdown

    near = _hand_fit(p_benefit=0.946, p_harm=0.054, mcse={"p_benefit": 0.003})
    far = _hand_fit(p_benefit=0.90, p_harm=0.10, mcse={"p_benefit": 0.003})
    text = results_markdown({"vague": near, "skeptical": far})
    assert "0.946 ≈" in text and "0.900 ≈" not in text
    assert text.endswith("≈ at the line: within 2 MCSE of the line it is read against (0.95; "
                         "0.5 for the benefit beyond 1.1).")
    assert "≈" not in results_markdown({"skeptical": far})


def test_fit_prior_table_marks_values_at_the_line():
    from rebayes.bayes.mcse import marked
    from rebayes.cli.fit import comparison_table

    assert marked(0.946, 0.003, 0.95) == "0.946 ≈" and marked(0.93, 0.004, 0.95) == "0.930"
    near = _hand_fit(p_benefit=0.946, p_harm=0.054, mcse={"p_benefit": 0.003})
    far = dataclasses.replace(near, prior="skeptical", p_benefit=0.90, p_harm=0.10)
    text = comparison_table([near, far])
    assert "0.946 ≈" in text and "0.900 ≈" not in text
    assert text.endswith("≈ at the line: within 2 MCSE of the line it is read against (0.95; "
                         "0.5 for P(RR < 0.91)).")
    assert "≈" not in comparison_table([far])
