"""One control risk per analysis (rebayes.bayes.baseline): hand calculations on small tables
and on the trial tables of tests/data, read with pandas independently of the package."""

import numpy as np
import pandas as pd
import pytest

from conftest import TEST_DATA
from rebayes.bayes.baseline import ControlRisk, control_risk, trial_control_risks


def test_median_of_the_trials_with_strata_summed():
    # Trial a: 1/10 + 3/10 = 4/20 = 0.2; trial b: 2/40 = 0.05; trial c: 9/10 = 0.9.
    risks = trial_control_risks([1, 3, 2, 9], [10, 10, 40, 10], ["a", "a", "b", "c"])
    np.testing.assert_allclose(risks, [0.2, 0.05, 0.9])
    p0 = control_risk([1, 3, 2, 9], [10, 10, 40, 10], ["a", "a", "b", "c"])
    assert p0 == ControlRisk(0.2, "median", 3, 0.2)
    assert p0.sentence() == "at a control risk of 20%, the median of the 3 trials' control arms"
    # Without trial labels every row is a trial: median of 0.1, 0.3, 0.05, 0.9.
    assert control_risk([1, 3, 2, 9], [10, 10, 40, 10]).value == pytest.approx(0.2)


def test_a_median_of_0_or_1_falls_back_to_the_pooled_risk_then_to_a_corrected_one():
    pooled = control_risk([0, 0, 3], [10, 20, 30])
    assert pooled.source == "pooled" and pooled.value == pytest.approx(3 / 60)
    assert "the median trial's is 0" in pooled.sentence()
    assert control_risk([10, 20, 1], [10, 20, 30]).value == pytest.approx(31 / 60)
    none = control_risk([0, 0], [10, 20])
    assert none.source == "corrected" and none.value == pytest.approx(0.5 / 31)
    assert 0 < none.value < 1 and none.to_dict()["source"] == "corrected"


@pytest.mark.parametrize(
    ("folder", "source"),
    [("bcg", "median"), ("magnesium", "median"), ("hcq", "pooled")],
)
def test_real_tables(folder, source):
    table = pd.read_csv(TEST_DATA / folder / "trials.csv")
    risk = table["events_control"] / table["n_control"]
    p0 = control_risk(table["events_control"], table["n_control"], np.arange(len(table)))
    assert p0.source == source
    if source == "median":
        assert p0.value == pytest.approx(float(np.median(risk)), rel=1e-15)
    else:  # hydroxychloroquine: most small trials saw no control death
        assert float(np.median(risk)) == 0
        assert p0.value == pytest.approx(table["events_control"].sum()
                                         / table["n_control"].sum(), rel=1e-15)
    # metafor's dat.egger2001: median(ci / n2i) = 0.1162113412 (R 4.2).
    if folder == "magnesium":
        assert p0.value == pytest.approx(0.1162113412, rel=1e-9)
