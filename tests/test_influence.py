"""Leave-one-trial-out influence, checked against statsmodels' MH risk ratio."""

import numpy as np
import pytest
from numpy.testing import assert_allclose
from statsmodels.stats.contingency_tables import StratifiedTable

import rebayes as rb
from rebayes.influence import leave_one_out, leave_one_out_frequentist


def mh_rr_statsmodels(totals):
    tables = [
        np.array([[r.events_treat, r.n_treat - r.events_treat],
                  [r.events_control, r.n_control - r.events_control]])
        for r in totals.itertuples()
    ]
    return StratifiedTable(tables).riskratio_pooled


def test_each_row_is_the_mh_rr_without_that_trial():
    trials = rb.load_trials()
    loo = leave_one_out_frequentist(trials).set_index("left_out")
    totals = rb.trial_totals(trials)
    assert list(loo.index[1:]) == list(totals.study)
    assert (loo.k.iloc[0], loo.k.iloc[1]) == (10, 9)
    for study in totals.study:
        expected = mh_rr_statsmodels(totals[totals.study != study])
        assert_allclose(loo.loc[study, "estimate"], expected, rtol=1e-10)
    assert_allclose(loo.loc["(none)", "estimate"], mh_rr_statsmodels(totals), rtol=1e-10)


def test_generic_leave_one_out_drops_every_stratum_of_a_trial():
    trials = rb.load_trials()
    out = leave_one_out(trials, lambda t: {"rows": len(t), "women": int(t.n_treat.sum())})
    row = out.set_index("left_out").loc["Qatar 2003"]
    assert row.rows == len(trials) - 2  # both Qatar strata go
    assert row.women == 261 - 40


@pytest.mark.parametrize("method", ["IV", "DL"])
def test_other_methods_run(method):
    assert len(leave_one_out_frequentist(rb.load_trials(), method)) == 11
