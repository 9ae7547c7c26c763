"""RevMan 5.3 formulas against published references and hand calculations.

References
----------
- metafor documentation for ``dat.bcg`` (Viechtbauer 2010, J Stat Softw 36(3); the
  ``rma.mh`` / ``rma`` examples): MH log RR -0.4537 (-0.5308, -0.3766), z -11.5338;
  IV fixed log RR -0.4303, z -10.6247; DL RR 0.4896 (0.3449, 0.6950), tau^2 0.3088,
  I^2 92.1173% (Q centred on the IV estimate).
- Stephenson et al. 2010 (Hum Reprod), abstract: 16/23 vs 15/24, OR 1.37 (0.41-4.61).
- statsmodels ``StratifiedTable`` as a second implementation of the MH odds ratio (RBG).
"""

import math

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import rebayes as rb
from conftest import TEST_DATA
from rebayes.errors import AnalysisError
from rebayes.frequentist.effects import study_effects
from rebayes.frequentist.pooling import analyze, meta_analysis, subgroup_difference_test


@pytest.fixture(scope="module")
def bcg():
    return rb.load_trials(TEST_DATA / "bcg.csv")


def table(*rows):
    return pd.DataFrame(
        [dict(study=f"s{i}", events_treat=a, n_treat=n1, events_control=c, n_control=n2)
         for i, (a, n1, c, n2) in enumerate(rows)]
    )


def test_mh_rr_matches_metafor_bcg(bcg):
    res = meta_analysis(bcg, "MH", "RR")
    assert_allclose(res.log_estimate, -0.4537, atol=5e-5)
    assert_allclose(math.log(res.ci_low), -0.5308, atol=5e-5)
    assert_allclose(math.log(res.ci_high), -0.3766, atol=5e-5)
    assert_allclose(res.z, -11.5338, atol=5e-4)


def test_iv_fixed_rr_matches_metafor_bcg(bcg):
    res = meta_analysis(bcg, "IV", "RR")
    assert_allclose(res.log_estimate, -0.4303, atol=5e-5)
    assert_allclose(res.z, -10.6247, atol=5e-4)


def test_dl_matches_metafor_with_iv_centred_q(bcg):
    res = meta_analysis(bcg, "DL", "RR", heterogeneity="iv")
    assert_allclose(res.estimate, 0.4896, atol=5e-5)
    assert_allclose((res.ci_low, res.ci_high), (0.3449, 0.6950), atol=5e-5)
    assert_allclose(res.tau2, 0.3088, atol=5e-5)
    assert_allclose(res.i2, 92.1173, atol=5e-4)


def test_revman_centres_q_on_the_mh_estimate(bcg):
    # Q_MH = sum w_i (y_i - log RR_MH)^2 >= Q_IV, because the IV mean minimises the weighted
    # sum of squares; the two differ here, so the convention is observable.
    eff = study_effects(bcg)
    w = 1 / eff.vi
    q_mh = float((w * (eff.yi - (-0.45370960)) ** 2).sum())
    res = meta_analysis(bcg, "MH", "RR")
    assert_allclose(res.q, q_mh, rtol=1e-6)
    assert res.q > meta_analysis(bcg, "MH", "RR", heterogeneity="iv").q


def test_mh_or_matches_statsmodels(bcg):
    from statsmodels.stats.contingency_tables import StratifiedTable

    tables = [
        np.array([[r.events_treat, r.n_treat - r.events_treat],
                  [r.events_control, r.n_control - r.events_control]])
        for r in bcg.itertuples()
    ]
    ref = StratifiedTable(tables)
    res = meta_analysis(bcg, "MH", "OR")
    assert_allclose(res.estimate, ref.oddsratio_pooled, rtol=1e-10)
    assert_allclose(res.se, ref.logodds_pooled_se, rtol=1e-10)
    assert_allclose(meta_analysis(bcg, "MH", "RR").estimate, ref.riskratio_pooled, rtol=1e-10)


def test_stephenson_2010_odds_ratio_as_the_trial_reports():
    res = meta_analysis(table((16, 23, 15, 24)), "MH", "OR")
    assert (round(res.estimate, 2), round(res.ci_low, 2), round(res.ci_high, 2)) == (
        1.37, 0.41, 4.61,
    )


def test_hand_calculation_two_studies():
    # Study 1: 10/20 vs 5/20; study 2: 6/10 vs 3/10.
    # MH RR = sum(a*n2/N) / sum(c*n1/N) = (10*20/40 + 6*10/20) / (5*20/40 + 3*10/20)
    #       = (5 + 3) / (2.5 + 1.5) = 2.0
    # Greenland-Robins: sum((n1 n2 (a+c) - a c N)/N^2) / (R S)
    #   study 1: (20*20*15 - 10*5*40)/1600 = (6000-2000)/1600 = 2.5
    #   study 2: (10*10*9 - 6*3*20)/400 = (900-360)/400 = 1.35
    #   var = 3.85 / (8 * 4) = 0.1203125
    res = meta_analysis(table((10, 20, 5, 20), (6, 10, 3, 10)), "MH", "RR")
    assert_allclose(res.estimate, 2.0, rtol=1e-12)
    assert_allclose(res.se**2, 0.1203125, rtol=1e-12)
    # Both studies have RR exactly 2: Q = 0, I2 = 0.
    assert_allclose(res.q, 0.0, atol=1e-12)
    assert res.i2 == 0.0
    # Weights are c*n1/N: 2.5 and 1.5 -> 62.5% and 37.5%.
    assert_allclose(res.studies.weight, [62.5, 37.5])


def test_zero_cell_gets_half_added_to_all_four_cells():
    # 0/10 vs 4/10 -> 0.5/11 vs 4.5/11 after correction:
    # log RR = log(0.5/4.5) = log(1/9); var = 1/0.5 - 1/11 + 1/4.5 - 1/11
    eff = study_effects(table((0, 10, 4, 10)))
    assert bool(eff.corrected[0])
    assert_allclose(eff.yi[0], math.log(1 / 9))
    assert_allclose(eff.vi[0], 2 - 2 / 11 + 1 / 4.5)


def test_double_zero_studies_are_left_out():
    res = meta_analysis(table((0, 10, 0, 12), (3, 10, 6, 10)), "MH", "RR")
    assert res.k == 1 and res.excluded == ("s0",)
    assert_allclose(res.estimate, 0.5)
    # For the OR, studies where everyone had the event in both arms are left out too.
    res_or = meta_analysis(table((10, 10, 12, 12), (3, 10, 6, 10)), "MH", "OR")
    assert res_or.excluded == ("s0",)
    with pytest.raises(AnalysisError, match="no estimable study"):
        meta_analysis(table((0, 10, 0, 12)), "MH", "RR")


def test_single_study_mh_equals_iv():
    one = table((7, 19, 4, 21))
    assert_allclose(meta_analysis(one, "MH").estimate, meta_analysis(one, "IV").estimate)
    assert_allclose(meta_analysis(one, "MH").se, meta_analysis(one, "IV").se)


def test_non_events_direction_counts_the_complement():
    # 97/246 vs 112/250 non-events = 149/246 vs 138/250 events.
    live = meta_analysis(table((149, 246, 138, 250)), "MH", "RR", "events")
    none = meta_analysis(table((149, 246, 138, 250)), "MH", "RR", "non_events")
    assert_allclose(none.estimate, (97 / 246) / (112 / 250))
    assert_allclose(live.estimate, (149 / 246) / (138 / 250))


def test_subgroup_difference_test_from_the_papers_timing_subgroups():
    # Pre 46/74 vs 37/82 and post 103/172 vs 101/168, each a single 2x2 table:
    # Q = sum w_j (y_j - ybar)^2 with w_j = 1/var_j (computed in full below).
    pre = meta_analysis(table((46, 74, 37, 82)))
    post = meta_analysis(table((103, 172, 101, 168)))
    y = np.array([math.log((46 / 74) / (37 / 82)), math.log((103 / 172) / (101 / 168))])
    v = np.array([1 / 46 - 1 / 74 + 1 / 37 - 1 / 82, 1 / 103 - 1 / 172 + 1 / 101 - 1 / 168])
    w = 1 / v
    q = float((w * (y - (w * y).sum() / w.sum()) ** 2).sum())
    test = subgroup_difference_test({"pre": pre, "post": post})
    assert_allclose(test.q, q, rtol=1e-12)
    assert test.df == 1
    assert_allclose(test.i2, 100 * (q - 1) / q)


def test_seed_fit_pre_conception_subgroup_reproduces_the_paper():
    trials = rb.load_trials("ivig_rsa", variant="seed_fit")
    res = analyze(trials, by="timing").subgroups["pre_conception"]
    # Paper: 46/74 vs 37/82, RR 1.38 (1.03-1.86), P = 0.03.
    assert (res.events_treat, res.n_treat, res.events_control, res.n_control) == (46, 74, 37, 82)
    assert (round(res.estimate, 2), round(res.ci_low, 2), round(res.ci_high, 2)) == (
        1.38, 1.03, 1.86,
    )
    assert round(res.p, 2) == 0.03


def test_stratum_split_leaves_mixed_rows_out():
    res = analyze(rb.load_trials("ivig_rsa"), by="stratum")
    assert set(res.subgroups) == {"primary", "secondary"}
    assert set(res.left_out) == {"Christiansen 1995", "Coulam 1995", "Perino 1997"}
    # Secondary strata: 7+8+6+15+16+23 = 75 / 10+11+12+24+23+42 = 122 vs
    # 6+7+3+10+15+20 = 61 / 11+10+13+24+24+40 = 122.
    sec = res.subgroups["secondary"]
    assert (sec.events_treat, sec.n_treat, sec.events_control, sec.n_control) == (75, 122, 61, 122)


def test_analysis_sums_strata_unless_split_by_stratum():
    res = analyze(rb.load_trials("ivig_rsa"))
    assert res.overall.k == 10  # ten trials, not thirteen rows
    assert (res.overall.events_treat, res.overall.n_treat) == (162, 261)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"by": "colour"}, "--by colour: no column 'colour'"),
        ({"where": {"timing": "during"}}, "--where timing=during: unknown value"),
        ({"method": "REML"}, "unknown method 'REML'"),
        ({"measure": "HR"}, "unknown measure 'HR'"),
        ({"model": "bayes"}, "unknown model 'bayes'"),
        ({"method": "PETO", "measure": "RR"}, "Peto's method pools odds ratios only"),
        ({"method": "PETO", "measure": "OR", "model": "random"},
         "Peto's method is fixed-effect only"),
        ({"event": "death"}, "unknown event direction 'death'"),
    ],
)
def test_bad_analysis_requests(kwargs, message):
    with pytest.raises(AnalysisError, match=message):
        analyze(rb.load_trials("ivig_rsa"), **kwargs)


def test_iv_random_is_metafor_dl(bcg):
    # "IV, Random": Q centred on the IV estimate, as metafor's rma(method="DL").
    res = meta_analysis(bcg, "IV", "RR", model="random")
    assert res.label == "IV, Random"
    assert_allclose(res.estimate, 0.4896, atol=5e-5)
    assert_allclose((res.ci_low, res.ci_high), (0.3449, 0.6950), atol=5e-5)
    assert_allclose(res.tau2, 0.3088, atol=5e-5)
    # "M-H, Random" (the DL name kept) centres Q on the MH estimate: a larger Q and tau2.
    mh = meta_analysis(bcg, "DL", "RR")
    assert mh.label == "M-H, Random" and mh.tau2 > res.tau2


def test_peto_odds_ratio_by_hand():
    # Study 1: 10/20 vs 5/20 -> O-E = 10 - 20*15/40 = 2.5, V = 20*20*15*25/(40^2*39).
    # Study 2: 6/10 vs 3/10  -> O-E = 6 - 10*9/20 = 1.5,  V = 10*10*9*11/(20^2*19).
    v1, v2 = 20 * 20 * 15 * 25 / (40**2 * 39), 10 * 10 * 9 * 11 / (20**2 * 19)
    log_or = (2.5 + 1.5) / (v1 + v2)
    q = 2.5**2 / v1 + 1.5**2 / v2 - 4**2 / (v1 + v2)
    res = meta_analysis(table((10, 20, 5, 20), (6, 10, 3, 10)), "PETO", "OR")
    assert (res.measure, res.label) == ("PETO_OR", "Peto, Fixed")
    assert_allclose(res.log_estimate, log_or, rtol=1e-12)
    assert_allclose(res.se, (v1 + v2) ** -0.5, rtol=1e-12)
    assert_allclose(res.q, q, rtol=1e-10)
    assert_allclose(res.studies.weight, [100 * v1 / (v1 + v2), 100 * v2 / (v1 + v2)])
    # A zero cell needs no correction: 0/10 vs 3/10 -> O-E = -1.5, V = 10*10*3*17/(400*19).
    one = meta_analysis(table((0, 10, 3, 10)), "PETO", "OR")
    assert_allclose(one.log_estimate, -1.5 / (10 * 10 * 3 * 17 / (400 * 19)), rtol=1e-12)


def test_mh_risk_difference_by_hand():
    # RD 10/20 - 5/20 = 0.25 (w = 20*20/40 = 10) and 6/10 - 3/10 = 0.3 (w = 10*10/20 = 5):
    # RD_MH = (10*0.25 + 5*0.3)/15 = 4/15.
    # Var = sum((a b n2^3 + c d n1^3)/(n1 n2 N^2)) / (sum w)^2
    #     = ((10*10*20^3 + 5*15*20^3)/(20*20*40^2) + (6*4*10^3 + 3*7*10^3)/(10*10*20^2)) / 15^2
    #     = (2.1875 + 1.125) / 225.
    res = meta_analysis(table((10, 20, 5, 20), (6, 10, 3, 10)), "MH", "RD")
    assert_allclose(res.estimate, 4 / 15, rtol=1e-12)
    assert_allclose(res.se**2, 3.3125 / 225, rtol=1e-12)
    assert_allclose(res.ci_low, 4 / 15 - 1.959964 * math.sqrt(3.3125 / 225), rtol=1e-12)
    # IV: weights 1 / (p1 q1/n1 + p2 q2/n2): 1/(0.25/20 + 0.1875/20) and 1/(0.024 + 0.021).
    w = np.array([1 / (0.25 / 20 + 0.1875 / 20), 1 / (0.24 / 10 + 0.21 / 10)])
    iv = meta_analysis(table((10, 20, 5, 20), (6, 10, 3, 10)), "IV", "RD")
    assert_allclose(iv.estimate, (w * [0.25, 0.3]).sum() / w.sum(), rtol=1e-12)
    # The RD keeps double-zero studies (RD = 0; variance from the 0.5-corrected cells).
    dz = meta_analysis(table((0, 10, 0, 12), (3, 10, 6, 10)), "IV", "RD")
    assert dz.k == 2 and dz.excluded == ()


def test_ci_level_99():
    # 16/23 vs 15/24: log OR = log(16*9/(7*15)), SE = sqrt(1/16 + 1/7 + 1/15 + 1/9);
    # the 99% interval uses z = 2.5758293035489.
    log_or = math.log(16 * 9 / (7 * 15))
    se = math.sqrt(1 / 16 + 1 / 7 + 1 / 15 + 1 / 9)
    res = meta_analysis(table((16, 23, 15, 24)), "MH", "OR", ci_level=0.99)
    assert_allclose(res.ci_low, math.exp(log_or - 2.5758293035489 * se), rtol=1e-10)
    assert_allclose(res.studies.ci_high, [math.exp(log_or + 2.5758293035489 * se)])


def test_subgroup_without_an_estimable_study_is_reported_not_aborted():
    trials = table((10, 20, 5, 20), (6, 10, 3, 10), (0, 14, 0, 19), (4, 12, 8, 12))
    trials["group"] = ["a", "a", "b", "c"]
    res = analyze(trials, by="group")
    assert list(res.subgroups) == ["a", "c"]
    assert res.not_estimable == {"b": "every study has no events in either arm"}
    assert res.test.df == 1  # between a and c only
    assert "b: not estimable (every study has no events in either arm)" in str(res)


def test_all_events_in_both_arms():
    # RR: the study stays (both risks are 1); 0.5 is added to every cell, as RevMan 5 does for
    # any zero cell (meta's RR.Cochrane): RR = (10.5/11)/(12.5/13).
    res = meta_analysis(table((10, 10, 12, 12)), "MH", "RR")
    assert res.k == 1
    assert_allclose(res.estimate, (10.5 / 11) / (12.5 / 13), rtol=1e-12)
    # Equal arms: exactly 1.
    assert_allclose(meta_analysis(table((10, 10, 10, 10)), "MH", "RR").estimate, 1.0)
    # OR: not estimable, and the message says why.
    with pytest.raises(AnalysisError, match=r"^no estimable study \(every participant had the "
                       r"event in both arms of every study\)$"):
        meta_analysis(table((10, 10, 12, 12)), "MH", "OR")


def test_description_uses_the_dataset_outcome():
    res = analyze(rb.load_trials(TEST_DATA / "bcg.csv"), event="non_events")
    assert res.description.startswith("M-H, Fixed RR of no event, all trials")
