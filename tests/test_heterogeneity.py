"""RevMan Web's random-effects options against metafor 3.8.1 on real data.

Every expected number below is metafor's, from (R 4.2, metafor 3.8-1, metadat 1.2-0)::

    ctl <- list(tol=1e-12, threshold=1e-14, maxiter=1000)   # tighter than the defaults
    dat <- escalc("RR", ai=tpos, bi=tneg, ci=cpos, di=cneg, data=dat.bcg)         # or
    dat <- escalc("OR", ai=xt, n1i=nt, ci=xc, n2i=nc, data=dat.damico2009)
    for (m in c("DL","REML","PM")) for (tst in c("z","t","knha")) {
      r <- rma(yi, vi, data=dat, method=m, test=tst, control=ctl); p <- predict(r)
      c(r$b, r$se, r$ci.lb, r$ci.ub, r$zval, r$pval, r$tau2, r$I2, p$pi.lb, p$pi.ub) }
    confint(rma(yi, vi, data=dat, method="REML", control=ctl), control=list(tol=1e-12))

With metafor's default tolerances (1e-5 on tau2, uniroot's 1.2e-4 in ``confint``) the
numbers agree to about 4 decimals; with the tight ones above, to 9.

``test="z"`` is RevMan's Wald-type interval and Z test; ``test="t"`` gives the prediction
interval RevMan Web computes without HKSJ (t on k - 1 df around the Wald standard error);
``test="knha"`` is HKSJ, its interval, t test and prediction interval.
"""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from conftest import TEST_DATA
from rebayes.data.trials import load_trials
from rebayes.errors import AnalysisError
from rebayes.frequentist.effects import study_effects
from rebayes.frequentist.heterogeneity import (
    generalised_q,
    hksj_se,
    i2_from_tau2,
    random_effects,
    tau2_confidence_interval,
    tau2_estimate,
)
from rebayes.frequentist.pooling import analyze, meta_analysis

# (estimate, se, ci.lb, ci.ub, zval, pval, tau2, I2, pi.lb, pi.ub) per (data, method, test).
METAFOR = {
    ("bcg", "DL", "z"): (-0.7141172221, 0.1787420895, -1.0644452801, -0.3637891641,
                         -3.9952381889, 6.462924305e-05, 0.308760262862, 92.1173468546,
                         -1.8581537527, 0.4299193086),
    ("bcg", "DL", "t"): (-0.7141172221, 0.1787420895, -1.1035627800, -0.3246716642,
                         -3.9952381889, 0.001776857932, 0.308760262862, 92.1173468546,
                         -1.9858964437, 0.5576619995),
    ("bcg", "DL", "knha"): (-0.7141172221, 0.1806966283, -1.1078213542, -0.3204130900,
                            -3.9520229495, 0.001920766767, 0.308760262862, 92.1173468546,
                            -1.9872069634, 0.5589725193),
    ("bcg", "REML", "z"): (-0.7145323422, 0.1797815161, -1.0668976388, -0.3621670455,
                           -3.9744483061, 7.054258102e-05, 0.313243258136, 92.2213845213,
                           -1.8666922179, 0.4376275336),
    ("bcg", "REML", "t"): (-0.7145323422, 0.1797815161, -1.1062426160, -0.3228220683,
                           -3.9744483061, 0.00184464721, 0.313243258136, 92.2213845213,
                           -1.9953419585, 0.5662772742),
    ("bcg", "REML", "knha"): (-0.7145323422, 0.1807917441, -1.1084437137, -0.3206209706,
                              -3.9522398865, 0.001920015096, 0.313243258136, 92.2213845213,
                              -1.9960168342, 0.5669521499),
    ("bcg", "PM", "z"): (-0.7149681535, 0.1808921915, -1.0695103340, -0.3604259730,
                         -3.9524544836, 7.735364608e-05, 0.318068452205, 92.3303379542,
                         -1.8758070825, 0.4458707755),
    ("bcg", "PM", "t"): (-0.7149681535, 0.1808921915, -1.1090983812, -0.3208379258,
                         -3.9524544836, 0.001919271831, 0.318068452205, 92.3303379542,
                         -2.0054259229, 0.5754896159),
    ("bcg", "PM", "knha"): (-0.7149681535, 0.1808921915, -1.1090983812, -0.3208379258,
                            -3.9524544836, 0.001919271831, 0.318068452205, 92.3303379542,
                            -2.0054259229, 0.5754896159),
    ("damico", "DL", "z"): (-1.2781991957, 0.1572304298, -1.5863651753, -0.9700332161,
                            -8.1294644910, 4.311910444e-16, 0.178408533580, 55.2677904785,
                            -2.1615537711, -0.3948446202),
    ("damico", "DL", "t"): (-1.2781991957, 0.1572304298, -1.6133279237, -0.9430704676,
                            -8.1294644910, 7.062251819e-07, 0.178408533580, 55.2677904785,
                            -2.2388422091, -0.3175561822),
    ("damico", "DL", "knha"): (-1.2781991957, 0.1757573926, -1.6528172102, -0.9035811811,
                               -7.2725202440, 2.729250335e-06, 0.178408533580, 55.2677904785,
                               -2.2533209275, -0.3030774639),
    ("damico", "REML", "z"): (-1.3001178223, 0.1699868734, -1.6332859721, -0.9669496725,
                              -7.6483424634, 2.035864268e-14, 0.233727549976, 61.8120083222,
                              -2.3045359497, -0.2956996950),
    ("damico", "REML", "t"): (-1.3001178223, 0.1699868734, -1.6624362665, -0.9377993782,
                              -7.6483424634, 1.491209766e-06, 0.233727549976, 61.8120083222,
                              -2.3924167513, -0.2078188934),
    ("damico", "REML", "knha"): (-1.3001178223, 0.1795017869, -1.6827168244, -0.9175188203,
                                 -7.2429241232, 2.864556854e-06, 0.233727549976,
                                 61.8120083222, -2.3993103858, -0.2009252589),
    ("damico", "PM", "z"): (-1.3185157353, 0.1826007825, -1.6764066926, -0.9606247780,
                            -7.2207562155, 5.169926252e-13, 0.294641986449, 67.1103759423,
                            -2.4409866681, -0.1960448024),
    ("damico", "PM", "t"): (-1.3185157353, 0.1826007825, -1.7077200902, -0.9293113804,
                            -7.2207562155, 2.970505169e-06, 0.294641986449, 67.1103759423,
                            -2.5391964103, -0.0978350602),
    ("damico", "PM", "knha"): (-1.3185157353, 0.1826007825, -1.7077200902, -0.9293113804,
                               -7.2207562155, 2.970505169e-06, 0.294641986449, 67.1103759423,
                               -2.5391964103, -0.0978350602),
}
# confint(): tau2 and I2 (percent) Q-profile bounds; the same for every estimator (the Q
# profile does not depend on the point estimate).
CONFINT = {
    "bcg": ((0.119718361141, 1.111479084061), (81.9205745586, 97.6780749579)),
    "damico": ((0.044089001878, 1.199461054039), (23.3908927204, 89.2549148747)),
}
MEASURE = {"bcg": "RR", "damico": "OR"}


def _effects(name: str) -> tuple[np.ndarray, np.ndarray]:
    folder = {"bcg": "bcg", "damico": "damico2009"}[name]
    eff = study_effects(load_trials(TEST_DATA / folder), MEASURE[name])
    eff = eff[eff["estimable"]]
    return eff["yi"].to_numpy(), eff["vi"].to_numpy()


@pytest.mark.parametrize("data", ["bcg", "damico"])
@pytest.mark.parametrize("method", ["DL", "REML", "PM"])
def test_wald_and_hksj_match_metafor(data, method):
    yi, vi = _effects(data)
    wald = random_effects(yi, vi, method, hksj=False)
    z, t = METAFOR[(data, method, "z")], METAFOR[(data, method, "t")]
    got = (wald.estimate, wald.se, wald.ci_low, wald.ci_high, wald.statistic, wald.p,
           wald.tau2, wald.i2)
    assert_allclose(got, z[:8], rtol=1e-8)
    assert wald.df is None
    # The prediction interval: t on k - 1 df around the Wald standard error (test="t").
    assert_allclose((wald.pi_low, wald.pi_high), t[8:], rtol=1e-8)
    hk = random_effects(yi, vi, method, hksj=True)
    knha = METAFOR[(data, method, "knha")]
    got = (hk.estimate, hk.se, hk.ci_low, hk.ci_high, hk.statistic, hk.p, hk.tau2, hk.i2,
           hk.pi_low, hk.pi_high)
    assert_allclose(got, knha, rtol=1e-8)
    assert hk.df == len(yi) - 1


@pytest.mark.parametrize("data", ["bcg", "damico"])
def test_q_profile_interval_and_i2_bounds_match_confint(data):
    yi, vi = _effects(data)
    (low, high), (i2_low, i2_high) = CONFINT[data]
    assert_allclose(tau2_confidence_interval(yi, vi), (low, high), rtol=1e-9)
    # metafor's I2 bounds are tau2's bounds through the typical within-study variance.
    assert_allclose([i2_from_tau2(b, vi) for b in (low, high)], (i2_low, i2_high), rtol=1e-9)
    # The bounds are where the generalised Q meets the chi-square quantiles (12 or 15 df).
    k = len(yi)
    from scipy.stats import chi2

    assert generalised_q(yi, vi, low) == pytest.approx(chi2.ppf(0.975, k - 1), rel=1e-9)
    assert generalised_q(yi, vi, high) == pytest.approx(chi2.ppf(0.025, k - 1), rel=1e-9)


def test_paule_mandel_sets_the_generalised_q_to_its_expectation():
    yi, vi = _effects("damico")
    tau2 = tau2_estimate(yi, vi, "PM")
    assert generalised_q(yi, vi, tau2) == pytest.approx(len(yi) - 1, rel=1e-10)


def test_no_heterogeneity_hksj_can_be_narrower_than_wald():
    """hcq (metadat's dat.axfors2021): tau2 is 0 under every estimator, and the HKSJ interval
    is narrower than the Wald one (metafor, same escalc with drop00=TRUE: Wald se 0.0647793861,
    knha se 0.0407210795, CI [0.0039916800, 0.1758196156]). No ad hoc correction is applied
    unless asked: Knapp & Hartung's max(1, q) gives back the Wald standard error."""
    eff = study_effects(load_trials(TEST_DATA / "hcq"), "OR")
    eff = eff[eff["estimable"]]
    yi, vi = eff["yi"].to_numpy(), eff["vi"].to_numpy()
    for method in ("DL", "REML", "PM"):
        assert tau2_estimate(yi, vi, method) == 0.0
    hk = random_effects(yi, vi, "REML", hksj=True)
    assert_allclose((hk.se, hk.ci_low, hk.ci_high), (0.0407210795, 0.0039916800, 0.1758196156),
                    rtol=1e-8)
    wald = random_effects(yi, vi, "REML")
    assert wald.se == pytest.approx(0.0647793861, rel=1e-8)
    assert hk.ci_high - hk.ci_low < wald.ci_high - wald.ci_low
    assert hksj_se(yi, vi, 0.0, truncate=True)[1] == pytest.approx(wald.se, rel=1e-12)
    assert tau2_confidence_interval(yi, vi) == (0.0, 0.0)


def test_analyze_reports_revman_web_numbers_on_the_natural_scale():
    """IV, Random, REML, HKSJ on BCG: the metafor knha row above, exponentiated."""
    res = analyze(load_trials(TEST_DATA / "bcg"), method="IV", model="random",
                  tau2_method="REML", hksj=True).overall
    knha = METAFOR[("bcg", "REML", "knha")]
    assert_allclose((res.log_estimate, res.se, res.z, res.p, res.tau2, res.i2),
                    (knha[0], knha[1], knha[4], knha[5], knha[6], knha[7]), rtol=1e-8)
    assert_allclose((res.ci_low, res.ci_high, res.pi_low, res.pi_high),
                    np.exp([knha[2], knha[3], knha[8], knha[9]]), rtol=1e-8)
    assert_allclose((res.tau2_ci_low, res.tau2_ci_high), CONFINT["bcg"][0], rtol=1e-9)
    assert (res.test_df, res.test_name, res.label) == (12, "t", "IV, Random, REML, HKSJ")
    # Cochran's Q is still the inverse-variance one (RevMan prints both).
    assert res.q == pytest.approx(152.2330, abs=5e-4)  # metafor: QE = 152.2330 (df = 12)
    assert "t=3.95, df=12" in str(res) and "95% PI [0.14, 1.76]" in str(res)
    assert res.to_dict()["prediction_interval"] == pytest.approx([res.pi_low, res.pi_high])


def test_default_dersimonian_laird_is_unchanged_and_fixed_effect_refuses_the_options():
    trials = load_trials(TEST_DATA / "bcg")
    dl = meta_analysis(trials, "MH", "RR", model="random")
    # RevMan's "M-H, Random": tau2 from the MH-centred Q (larger than metafor's IV one).
    assert dl.tau2_method == "DL" and dl.tau2 > METAFOR[("bcg", "DL", "z")][6]
    assert dl.i2 == pytest.approx(100 * (dl.q - dl.df) / dl.q)
    with pytest.raises(AnalysisError, match="random-effects model"):
        meta_analysis(trials, "MH", "RR", model="fixed", tau2_method="REML")
    with pytest.raises(AnalysisError, match="random-effects model"):
        meta_analysis(trials, "MH", "RR", model="fixed", hksj=True)
    with pytest.raises(AnalysisError, match="unknown tau2 estimator"):
        meta_analysis(trials, "MH", "RR", model="random", tau2_method="SJ")  # type: ignore[arg-type]


def test_single_study_has_no_prediction_interval():
    one = pd.DataFrame({"study": ["A"], "events_treat": [3], "n_treat": [20],
                        "events_control": [6], "n_control": [21]})
    res = meta_analysis(one, "IV", "RR", model="random", tau2_method="REML", hksj=False)
    assert res.tau2 == 0.0 and np.isnan(res.pi_low) and np.isnan(res.tau2_ci_low)
    assert res.to_dict()["prediction_interval"] == [None, None]


def test_command_options_give_metafors_numbers(capsys):
    """--tau2 REML --hksj implies random effects; the JSON carries the metafor knha figures."""
    import json

    from rebayes.cli import main

    code = main(["frequentist", "--data", str(TEST_DATA / "bcg"), "--method", "IV",
                 "--tau2", "reml", "--hksj", "--json"])
    assert code == 0
    overall = json.loads(capsys.readouterr().out)["overall"]
    knha = METAFOR[("bcg", "REML", "knha")]
    assert (overall["model"], overall["tau2_method"], overall["test"]) == ("random", "REML", "t")
    assert overall["test_df"] == 12 and overall["hksj"] is True
    assert_allclose(overall["prediction_interval"], np.exp(knha[8:]), rtol=1e-8)
    assert_allclose(overall["tau2_ci"], CONFINT["bcg"][0], rtol=1e-9)
    assert_allclose([overall["ci_low"], overall["ci_high"]], np.exp(knha[2:4]), rtol=1e-8)
