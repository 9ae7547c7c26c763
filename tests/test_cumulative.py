"""Cumulative meta-analysis: order, RevMan's cumulative MH RR, and the last step = the full fit."""

import pytest

import rebayes as rb
from conftest import TEST_DATA
from rebayes.bayes.sampling import SamplerSettings
from rebayes.frequentist.pooling import analyze
from rebayes.tools.cumulative import cumulative_meta_analysis, trial_order

QUICK = SamplerSettings(draws=300, tune=300, chains=2, min_ess=0)
BCG = TEST_DATA / "bcg"


def test_bcg_order_is_by_year_with_ties_in_table_order():
    trials = rb.load_trials(BCG)
    order = trial_order(trials, "year")
    years = [int(v) for _, v in order]
    assert years == sorted(years)
    first = trials.drop_duplicates("study")
    for year in set(years):
        same = [s for s, v in order if int(v) == year]
        assert same == [s for s in first.study if int(first.set_index("study").year[s]) == year]


def test_order_by_a_missing_or_unordered_column_is_a_user_error():
    trials = rb.load_trials(BCG)
    with pytest.raises(rb.RebayesError, match="no such column"):
        trial_order(trials, "nope")
    with pytest.raises(rb.RebayesError, match="not numeric"):
        trial_order(trials.assign(note="x"), "note")


@pytest.fixture(scope="module")
def bcg_cumulative():
    trials = rb.load_trials(BCG)
    spec = rb.resolve_spec("overall", BCG)
    return trials, spec, cumulative_meta_analysis(trials, spec, seed=3, settings=QUICK,
                                                  cache=False)


def test_each_step_is_revmans_mh_rr_of_the_trials_so_far(bcg_cumulative):
    trials, _, cum = bcg_cumulative
    assert len(cum.steps) == trials.study.nunique() - 1
    assert [s.k for s in cum.steps] == list(range(2, trials.study.nunique() + 1))
    full = analyze(trials, method="MH", measure="RR", model="fixed").overall
    last = cum.steps[-1]
    assert (last.mh_rr, last.mh_low, last.mh_high, last.mh_p) == (
        full.estimate, full.ci_low, full.ci_high, full.p)
    third = set(cum.order[:3])
    part = analyze(trials[trials.study.isin(third)], method="MH", measure="RR",
                   model="fixed").overall
    assert cum.steps[1].mh_rr == part.estimate


def test_last_bayesian_step_is_the_full_fit(bcg_cumulative):
    _, spec, cum = bcg_cumulative
    direct = rb.fit(spec, seed=3, settings=QUICK, cache=False).summary()
    last = cum.steps[-1]
    assert last.rr == direct.pooled_rr
    assert last.p_benefit == direct.p_benefit
    assert last.tau_median == direct.tau.median
    # BCG: fewer TB cases is benefit, and the full analysis shows it.
    assert cum.direction.higher_is_better is False
    assert last.p_benefit > 0.95


def test_outputs(bcg_cumulative):
    _, _, cum = bcg_cumulative
    record = cum.to_dict()
    assert record["order_by"] == "year" and len(record["steps"]) == len(cum.steps)
    assert list(cum.to_dataframe().columns[:3]) == ["added", "order_value", "k"]
    assert "Cumulative meta-analysis by year" in str(cum)
    assert cum.plot().axes
    assert "<table" in cum._repr_html_() and repr(cum).startswith("CumulativeAnalysis(")


def test_cli_unknown_order_column_is_one_line(capsys):
    from rebayes.cli import main

    assert main(["cumulative", "--data", str(BCG), "--order-by", "nope"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("rebayes cumulative: error: --order-by nope") and "\n" not in err
