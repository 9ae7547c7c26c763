"""Cumulative meta-analysis: order, RevMan's cumulative estimate, and the last step = the full fit.

References: metafor 4.x ``cumul()`` (R 4.2, metafor 3.8.1, metadat 1.2.0), numbers recorded below
with the R call that produced them.
"""

import numpy as np
import pytest
from numpy.testing import assert_allclose

import rebayes as rb
from conftest import TEST_DATA
from rebayes.bayes.settings import SamplerSettings
from rebayes.frequentist.pooling import analyze
from rebayes.tools.cumulative import (
    CumulativeAnalysis,
    CumulativeStep,
    cumulative_frequentist,
    cumulative_meta_analysis,
    trial_order,
)

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
    # The dataset's own analysis (BCG declares M-H, random RR).
    full = analyze(trials).overall
    assert cum.frequentist_label == "M-H, Random" and cum.measure == "RR"
    last = cum.steps[-1]
    assert (last.freq_estimate, last.freq_low, last.freq_high, last.freq_p) == (
        full.estimate, full.ci_low, full.ci_high, full.p)
    third = set(cum.order[:3])
    part = analyze(trials[trials.study.isin(third)]).overall
    assert cum.steps[1].freq_estimate == part.estimate


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


# --- repeated study names, the declared measure: metafor's cumul() -----------------------------

# metadat's dat.egger2001 (tests/data/magnesium), M-H odds ratio, fixed effect, by year:
#   res <- rma.mh(measure="OR", ai=ai, n1i=n1i, ci=ci, n2i=n2i, data=dat.egger2001,
#                 add=c(1/2, 1/2), to=c("only0", "only0"))
#   cumul(res, order=dat.egger2001$year)
# (to=c("only0","only0"): 0.5 added to the cells of a table with a zero in the M-H sums too, as
# RevMan does and as R's meta does by default, MH.exact=FALSE; metafor's default adds it to the
# study's own OR only, which moves steps 7 on by Bertschat's 0/22.) Rows: the trial added, OR,
# 95% CI, p. metafor's first row (Morton alone) has no step here.
MAGNESIUM_CUMUL = [
    ("Rasmussen", 0.355512, 0.164621, 0.767757, 0.008470),
    ("Smith", 0.337985, 0.169254, 0.674925, 0.002111),
    ("Abraham", 0.357682, 0.183463, 0.697342, 0.002543),
    ("Feldstedt", 0.529815, 0.312113, 0.899367, 0.018632),
    ("Shechter (1989)", 0.446717, 0.270269, 0.738361, 0.001672),
    ("Ceremuzynski", 0.436788, 0.267344, 0.713626, 0.000943),
    ("Bertschat", 0.432989, 0.266516, 0.703444, 0.000723),
    ("Singh", 0.443670, 0.285624, 0.689168, 0.000298),
    ("Pereira", 0.411289, 0.267962, 0.631280, 0.000048),
    ("Shechter (1991)", 0.368864, 0.245044, 0.555250, 0.000002),
    ("Golf", 0.374283, 0.254068, 0.551380, 0.000001),
    ("Thogersen", 0.380646, 0.263104, 0.550701, 0.000000),
    ("LIMIT-2", 0.570323, 0.455684, 0.713803, 0.000001),
    ("Shechter (1995)", 0.543899, 0.436854, 0.677172, 0.000000),
    ("ISIS-4", 1.006090, 0.947990, 1.067751, 0.841443),
]

# metadat's dat.collins1985a (tests/data/h2_bleeding: the 25 trials reporting bleeding), Peto's
# odds ratio, by year (two separate trials by Foco, 1980 and 1984):
#   dat <- dat.collins1985a[!is.na(dat.collins1985a$b.xti), ]
#   res <- rma.peto(ai=b.xti, n1i=nti, ci=b.xci, n2i=nci, data=dat)
#   cumul(res, order=dat$year)
H2_CUMUL = [
    ("La Brooy", 0.591792, 0.309920, 1.130023, 0.111931),
    ("Macklon", 0.719380, 0.391443, 1.322050, 0.288784),
    ("Nair", 0.641047, 0.362944, 1.132242, 0.125513),
    ("Pickard", 0.784592, 0.478172, 1.287372, 0.336970),
    ("Carstensen", 0.819444, 0.525974, 1.276659, 0.378719),
    ("Foco (1980)", 0.818648, 0.538758, 1.243944, 0.348561),
    ("Galmiche", 0.736085, 0.499135, 1.085521, 0.122118),
    ("Gilsanz", 0.701943, 0.478509, 1.029709, 0.070262),
    ("Meredith", 0.800751, 0.555697, 1.153871, 0.233215),
    ("Teres", 0.829714, 0.584546, 1.177710, 0.296199),
    ("Colecchia", 0.829714, 0.584546, 1.177710, 0.296199),  # 0/14 vs 0/14: not estimable
    ("Karlstrom", 0.886257, 0.634044, 1.238796, 0.479758),
    ("Arvanitakis", 0.848956, 0.610184, 1.181163, 0.331143),
    ("Hostein", 0.844521, 0.612128, 1.165141, 0.303415),
    ("Dawson", 0.804741, 0.598756, 1.081589, 0.149854),
    ("Londong", 0.728075, 0.547035, 0.969031, 0.029583),
    ("Barer", 0.796638, 0.627422, 1.011492, 0.062017),
    ("Brown", 0.811821, 0.640333, 1.029237, 0.085080),
    ("Zuckerman", 0.885601, 0.713144, 1.099763, 0.271591),
    ("Stiel", 0.855815, 0.691997, 1.058413, 0.150923),
    ("Carr-Locke", 0.872995, 0.710536, 1.072598, 0.196058),
    ("Birnie", 0.886349, 0.726594, 1.081228, 0.234133),
    ("Darle", 0.889594, 0.731215, 1.082277, 0.242186),
    ("Foco (1984)", 0.885543, 0.728644, 1.076227, 0.221838),
]


# metadat's dat.hartmannboyce2018, tablets or lozenges (tests/data/nrt_lozenge: abstinence, more
# is better), M-H risk ratio, by year:
#   d <- read.csv("tests/data/nrt_lozenge/trials.csv")
#   cumul(rma.mh(measure="RR", ai=events_treat, n1i=n_treat, ci=events_control,
#                n2i=n_control, data=d), order=d$year)
NRT_CUMUL = [
    ("Dautzenberg 2001", 1.473942, 0.998960, 2.174766, 0.050616),
    ("Glover 2002", 1.566419, 1.121314, 2.188208, 0.008506),
    ("Shiffman 2002 (2 mg)", 1.706073, 1.343249, 2.166899, 0.000012),
    ("Shiffman 2002 (4 mg)", 1.866804, 1.516850, 2.297497, 0.000000),
    ("Tonnesen 2006", 1.999672, 1.634338, 2.446672, 0.000000),
    ("Piper 2009", 1.949909, 1.609077, 2.362934, 0.000000),
    ("Fraser 2014", 1.516362, 1.322595, 1.738518, 0.000000),
]


@pytest.mark.parametrize(("folder", "expected", "label", "measure"), [
    ("magnesium", MAGNESIUM_CUMUL, "M-H, Fixed", "OR"),
    ("h2_bleeding", H2_CUMUL, "Peto, Fixed", "PETO_OR"),
    ("nrt_lozenge", NRT_CUMUL, "M-H, Fixed", "RR"),
])
def test_each_row_enters_in_its_own_year_as_metafor_cumul(folder, expected, label, measure):
    trials = rb.load_trials(TEST_DATA / folder)
    steps = cumulative_frequentist(trials)
    # Every row is a trial: a first author's later trials are not pulled into his first year.
    assert list(steps["added"]) == [name for name, *_ in expected]
    assert list(steps["k"]) == list(range(2, len(trials) + 1))
    assert (steps.attrs["label"], steps.attrs["measure"]) == (label, measure)
    numbers = np.array([row[1:] for row in expected])
    assert_allclose(steps[["estimate", "ci_low", "ci_high"]].to_numpy(), numbers[:, :3],
                    rtol=2e-6)
    assert_allclose(steps["p"].to_numpy(), numbers[:, 3], atol=2e-6)


def test_magnesium_order_puts_each_shechter_trial_in_its_year():
    order = trial_order(rb.load_trials(TEST_DATA / "magnesium"))
    names = [name for name, _ in order]
    assert [(name, year) for name, year in order if name.startswith("Shechter")] == [
        ("Shechter (1989)", "1989"), ("Shechter (1991)", "1991"), ("Shechter (1995)", "1995")]
    assert names.index("Shechter (1989)") == 5 and names[-1] == "ISIS-4"


def test_other_measure_and_model_on_request():
    trials = rb.load_trials(TEST_DATA / "magnesium")
    # metafor: rma.mh(measure="RR", ..., add=c(1/2,1/2), to=c("only0","only0")) on
    # dat.egger2001 (RevMan's zero-cell convention, see above): RR 1.005630 [0.951813, 1.062489].
    rr = cumulative_frequentist(trials, measure="RR")
    assert rr.attrs["label"] == "M-H, Fixed" and rr.attrs["measure"] == "RR"
    assert_allclose(rr.iloc[-1][["estimate", "ci_low", "ci_high"]].to_numpy(float),
                    [1.005630, 0.951813, 1.062489], rtol=2e-6)
    # metafor: rma(measure="OR", ..., method="DL") on dat.egger2001: OR 0.483075
    # [0.328784, 0.709772], tau2 0.223883 (Q centred on the IV estimate; RevMan's M-H random
    # centres it on the M-H estimate, hence the looser tolerance).
    dl = cumulative_frequentist(trials, method="IV", model="random")
    assert dl.attrs["label"] == "IV, Random"
    assert_allclose(dl.iloc[-1][["estimate", "ci_low", "ci_high"]].to_numpy(float),
                    [0.483075, 0.328784, 0.709772], rtol=1e-6)
    with pytest.raises(rb.RebayesError, match="fixed-effect only"):
        cumulative_frequentist(trials, method="PETO", model="random")
    with pytest.raises(rb.RebayesError, match="odds ratios only"):
        cumulative_frequentist(trials, method="PETO", measure="RR")


def _analysis(p_values, direction):
    """A cumulative analysis whose steps have these P(benefit) values (no fit needed)."""
    from rebayes.bayes.records import Estimate

    rr = Estimate(0.8, 0.8, 0.6, 1.1, 0.6, 1.1)
    steps = tuple(
        CumulativeStep(f"T{k}", str(1980 + k), k, rr, p, 0.1, 0.8, 0.6, 1.1, 0.2)
        for k, p in enumerate(p_values, start=2)
    )
    return CumulativeAnalysis(steps, tuple(f"T{k}" for k in range(1, len(steps) + 2)), "year",
                              direction)


def test_sentence_reports_reversals_and_whether_the_crossing_holds():
    from rebayes.data.direction import Direction

    lower = Direction(higher_is_better=False, outcome="death", treatment="magnesium")
    # Crosses at T3, falls back at T5, rises at T6, falls back at T8 and ends below.
    cum = _analysis([0.90, 0.96, 0.97, 0.93, 0.99, 0.98, 0.80], lower)
    assert [(c.step.added, c.up) for c in cum.crossings] == [
        ("T3", True), ("T5", False), ("T6", True), ("T8", False)]
    text = cum.summary()
    assert "it first exceeded 0.95 after T3 (year 1983, 3 trials)" in text
    assert ("then fell back below it after T5 (year 1985, 5 trials), then rose above it after "
            "T6 (year 1986, 6 trials), then fell back below it after T8 (year 1988, 8 trials)"
            ) in text
    assert "below 0.95 at the last step: the early crossing does not hold (3 reversals)" in text
    assert cum.to_dict()["holds_at_last_step"] is False
    assert len(cum.to_dict()["crossings"]) == 4
    # Crosses once and stays: no reversal.
    stays = _analysis([0.5, 0.96, 0.99], lower)
    assert stays.summary().endswith("after T3 (year 1983, 3 trials) and stayed above it to "
                                     "the last step.")
    never = _analysis([0.5, 0.6], lower)
    assert never.summary().endswith("it never exceeded 0.95 as the trials accumulated.")
    # Undeclared: the probability is named literally, never "benefit".
    neutral = _analysis([0.96, 0.5], Direction())
    assert "P(RR < 1)" in neutral.summary() and "benefit" not in neutral.summary()


def test_cli_measure_options_and_bad_combinations(capsys):
    from rebayes.cli import main

    code = main(["cumulative", "--data", str(TEST_DATA / "magnesium"), "--method", "PETO",
                 "--model", "random"])
    err = capsys.readouterr().err
    assert code == 2
    assert err == ("rebayes cumulative: error: Peto's method is fixed-effect only "
                   "(as in RevMan)\n")


def test_the_exact_engine_answers_every_step(capsys):
    import json

    from rebayes.cli import main

    assert main(["cumulative", "--data", str(BCG), "--engine", "exact", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["engine"] == "exact" and len(record["steps"]) == 12
    last = record["steps"][-1]
    # tests/exact_reference.py, binomial_reference(events, n) of the 13 BCG trials (the
    # default prior; fewer cases is better): P(d > 0) = 0.00041138007, so P(benefit) =
    # P(RR < 1) = 0.99958862 once every trial is in.
    assert last["k"] == 13 and last["p_benefit"] == pytest.approx(0.99958862, abs=2e-6)
    assert not any(s["at_the_line"] for s in record["steps"])
    assert all(s["p_benefit_mcse"] is None or s["p_benefit_mcse"] == 0 for s in record["steps"])
    # RevMan's column does not depend on the engine: MH RR of the first two trials.
    first_two = rb.load_trials(BCG).query("study in ['Aronson', 'Ferguson & Simes']")
    assert record["steps"][0]["frequentist"]["estimate"] == pytest.approx(
        analyze(first_two).overall.estimate, rel=1e-12)
