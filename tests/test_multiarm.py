"""Multi-arm trials: a control arm shared by two comparisons is named, and split on request.

hcq (metadat's dat.axfors2021): ARCHAIC (NL8490) compared chloroquine and hydroxychloroquine
with one standard-of-care arm of 0 deaths in 3; ChiCTR2000030054 likewise with 0 in 12 (the
dataset's rows 25-26 and 28-29). The Cochrane Handbook (23.3.4) divides a shared group's events
and total between the comparisons.
"""

import pandas as pd
import pytest

from conftest import TEST_DATA
from rebayes.cli import main
from rebayes.data.multiarm import SplitError, shared_controls, split_shared_controls
from rebayes.data.trials import load_trials
from rebayes.frequentist.pooling import analyze


def test_hcq_shared_controls_are_found():
    trials = load_trials(TEST_DATA / "hcq")
    shared = shared_controls(trials)
    assert [(a.study, a.events, a.total, a.rows) for a in shared] == [
        ("ARCHAIC", 0, 3, (24, 25)), ("ChiCTR2000030054", 0, 12, (27, 28))]
    # NCT04335552 A/B share a registry but not a control arm (0/2 and 2/3): not flagged.
    assert "NCT04335552 A" not in {a.study for a in shared}


def test_split_divides_events_and_totals_in_whole_participants():
    table = pd.DataFrame({
        "study": ["A", "A", "A", "B"], "events_treat": [3, 4, 5, 1],
        "n_treat": [20, 21, 22, 10], "events_control": [7, 7, 7, 2],
        "n_control": [40, 40, 40, 10]})
    out = split_shared_controls(table)
    # 7/40 in three: 3/14 + 2/13 + 2/13 (by hand: 7 = 3 + 2 + 2, 40 = 14 + 13 + 13).
    assert out[["events_control", "n_control"]].values.tolist() == [
        [3, 14], [2, 13], [2, 13], [2, 10]]
    assert out["events_control"].iloc[:3].sum() == 7 and out["n_control"].iloc[:3].sum() == 40
    tiny = table.assign(n_control=[2, 2, 2, 10], events_control=[0, 0, 0, 2])
    with pytest.raises(SplitError, match="cannot be split between 3 comparisons"):
        split_shared_controls(tiny)


def test_strata_are_not_multi_arm_trials():
    # ivig_rsa declares strata: a trial's rows are its strata, never a shared control.
    assert shared_controls(load_trials("ivig_rsa")) == []


def test_analysis_names_them_and_splits_on_request(capsys):
    trials = load_trials(TEST_DATA / "hcq")
    res = analyze(trials)
    assert len(res.notes) == 1
    assert "ARCHAIC (control 0/3, 2 comparisons)" in res.notes[0]
    assert "Cochrane Handbook 23.3.4" in res.notes[0]
    split = analyze(trials, split_shared_control=True)
    # ARCHAIC's 0/3 becomes 0/2 + 0/1: the pooled control total falls by 3 (886/4290 ->
    # 886/4287); ChiCTR2000030054's rows are double zeros, left out of an OR analysis.
    assert split.overall.n_control == res.overall.n_control - 3
    assert "ARCHAIC 0/3 -> 0/2 + 0/1" in split.notes[0]
    assert "ChiCTR2000030054 0/12 -> 0/6 + 0/6" in split.notes[0]
    code = main(["frequentist", "--data", str(TEST_DATA / "hcq"), "--json"])
    assert code == 0 and '"notes"' in capsys.readouterr().out


def test_sensitivity_variant_drops_every_comparison_of_a_study(tmp_path):
    folder = tmp_path / "hcq"
    folder.mkdir()
    for name in ("trials.csv", "dataset.toml"):
        (folder / name).write_text((TEST_DATA / "hcq" / name).read_text())
    (folder / "variants.toml").write_text('[no_archaic]\ndrop = [{ study = "ARCHAIC" }]\n')
    full, dropped = load_trials(folder), load_trials(folder, "no_archaic")
    assert len(full) - len(dropped) == 2 and "ARCHAIC" not in set(dropped["study"])
