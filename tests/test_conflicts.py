"""Conflicts in the evidence: fixed vs random effects, the largest trial vs the rest.

References from metafor 3.8-1 (R 4.2; RevMan's M-H random effects take tau^2 from the M-H
heterogeneity statistic and RevMan adds 0.5 to one magnesium trial's zero cells, so they
match to ~1e-3):

- magnesium (metadat's dat.egger2001, tests/data/magnesium):
  ``rma.mh(ai=events_treat, n1i=n_treat, ci=events_control, n2i=n_control, measure="OR")``
  OR 1.00610 (0.94799 to 1.06777), P = 0.84; ``rma(..., measure="OR", method="DL")`` OR
  0.48308 (0.32878 to 0.70977), P = 0.00021; without ISIS-4, ``rma.mh`` OR 0.54302 (0.43600 to
  0.67631); ISIS-4 alone, ``escalc(measure="OR")`` OR 1.05928 (0.99558 to 1.12705).
- BCG (metafor's dat.bcg, tests/data/bcg): the largest trial, TPT Madras, ``escalc(measure=
  "RR")`` RR 1.01202 (0.89457 to 1.14490); the other 12, ``rma(measure="RR", method="DL")``
  RR 0.45381 (0.32965 to 0.62472).
- hydroxychloroquine (metadat's dat.axfors2021, tests/data/hcq): ``rma(..., measure="OR",
  method="DL", drop00=TRUE)`` tau^2 = 0, so fixed and random effects agree.
"""

import pandas as pd
import pytest

import rebayes as rb
from conftest import TEST_DATA
from rebayes.data.direction import Direction
from rebayes.sensitivity.conflicts import (
    RATIO_FACTOR,
    conflict_note,
    evidence_conflicts,
    fixed_vs_random,
    largest_trial_vs_rest,
)


def test_magnesium_fixed_and_random_effects_disagree_and_isis4_is_named():
    trials = rb.load_trials(TEST_DATA / "magnesium")
    conflicts = evidence_conflicts(trials)
    assert [c.kind for c in conflicts] == ["fixed_vs_random", "largest_trial"]
    fixed_random, largest = conflicts
    d = fixed_random.details
    assert (d["fixed"]["estimate"], d["fixed"]["ci_low"], d["fixed"]["ci_high"]) == \
        pytest.approx((1.00610, 0.94799, 1.06777), rel=1e-3)
    assert (d["random"]["estimate"], d["random"]["ci_low"], d["random"]["ci_high"]) == \
        pytest.approx((0.48308, 0.32878, 0.70977), rel=2e-3)
    assert d["opposite_sides"] and d["factor"] == pytest.approx(1.00610 / 0.48308, rel=2e-3)
    assert d["factor"] > RATIO_FACTOR
    assert "only the random-effects estimate is significant" in fixed_random.sentence
    assert "ISIS-4 alone holds" in fixed_random.sentence  # the fixed effect's weight
    d = largest.details
    assert d["trial"] == "ISIS-4" and d["participants"] == 29011 + 29039
    assert (d["trial_estimate"]["estimate"], d["trial_estimate"]["ci_low"],
            d["trial_estimate"]["ci_high"]) == pytest.approx((1.05928, 0.99558, 1.12705),
                                                             rel=1e-4)
    assert (d["rest"]["estimate"], d["rest"]["ci_low"], d["rest"]["ci_high"]) == \
        pytest.approx((0.54302, 0.43600, 0.67631), rel=2e-3)
    assert d["outside_rest_ci"] and d["rest"]["k"] == 15
    assert largest.sentence.startswith("The largest trial and the rest disagree: ISIS-4")
    assert "no clear effect" in largest.sentence and "benefit" in largest.sentence
    assert conflict_note(conflicts) == (
        "CONFLICT in the evidence: fixed and random effects disagree; the largest trial, "
        "ISIS-4, and the rest disagree.")


def test_bcg_largest_trial_against_the_rest():
    trials = rb.load_trials(TEST_DATA / "bcg")
    conflict = largest_trial_vs_rest(trials)
    assert conflict is not None and conflict.details["trial"].startswith("TPT Madras")
    d = conflict.details
    assert (d["trial_estimate"]["estimate"], d["trial_estimate"]["ci_low"],
            d["trial_estimate"]["ci_high"]) == pytest.approx((1.01202, 0.89457, 1.14490),
                                                             rel=1e-4)
    assert (d["rest"]["estimate"], d["rest"]["ci_low"], d["rest"]["ci_high"]) == \
        pytest.approx((0.45381, 0.32965, 0.62472), rel=5e-3)
    # Fixed (M-H RR 0.64) and random (0.49) effects agree in side and significance and
    # differ by less than the factor.
    assert fixed_vs_random(trials) is None


def test_no_conflict_where_there_is_none():
    # Hydroxychloroquine: tau^2 = 0, and RECOVERY lies inside the others' CI.
    assert evidence_conflicts(rb.load_trials(TEST_DATA / "hcq")) == ()
    assert evidence_conflicts(rb.load_trials("ivig_rsa")) == ()
    assert conflict_note(()) == ""


def test_opposite_sides_without_a_declared_direction_use_neutral_words(tmp_path):
    # One big trial near 1.5 (harm if fewer is better), many small ones near 0.5.
    rows = [("big", 300, 2000, 200, 2000)]
    rows += [(f"s{i}", 3, 40, 9, 40) for i in range(8)]
    frame = pd.DataFrame(rows, columns=["study", "events_treat", "n_treat", "events_control",
                                        "n_control"])
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    trials = rb.load_trials(path)
    conflict = largest_trial_vs_rest(trials, Direction())
    assert conflict is not None
    assert "above 1" in conflict.sentence and "below 1" in conflict.sentence
    assert "benefit" not in conflict.sentence and "harm" not in conflict.sentence


def test_no_estimable_study_is_no_conflict_and_no_crash(tmp_path):
    path = tmp_path / "zeros.csv"
    path.write_text("study,events_treat,n_treat,events_control,n_control\n"
                    "a,0,10,0,10\nb,0,20,0,20\nc,0,30,0,30\n", encoding="utf-8")
    assert evidence_conflicts(rb.load_trials(path)) == ()
