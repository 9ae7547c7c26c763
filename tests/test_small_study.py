"""Small-study tests, trim-and-fill and the selection model against metafor 3.8.1 and by hand.

Reference numbers were computed once with R 4.2, metafor 3.8.1, on the same per-study
estimates rebayes uses (RevMan's: 0.5 added to every cell of a study with a zero cell,
double-zero studies left out), i.e. in R

    d <- read.csv(<trials.csv>)                     # ivig: rebayes' trial totals of ivig_rsa
    d <- d[!(d$events_treat == 0 & d$events_control == 0), ]
    dat <- escalc(MEASURE, ai=events_treat, n1i=n_treat, ci=events_control, n2i=n_control,
                  data=d, add=0.5, to="only0", drop00=TRUE)

and then the calls quoted beside each number. Harbord's test is R's meta
``metabias(method.bias="Harbord")``; meta is not installed, so its reference is the same
regression done with metafor (``regtest(Z/V, sei=1/sqrt(V), model="lm")`` with meta's Z and V,
as meta's ``linregcore`` does it).
"""

import numpy as np
import pandas as pd
import pytest

import rebayes as rb
from conftest import TEST_DATA
from rebayes.data.trials import trial_totals
from rebayes.errors import AnalysisError
from rebayes.frequentist.effects import study_effects
from rebayes.frequentist.meta_regression import fit_meta_regression
from rebayes.frequentist.selection import (
    interval_index,
    interval_probabilities,
    one_sided_p,
    step_selection_model,
)
from rebayes.frequentist.small_study import (
    begg_test,
    egger_test,
    harbord_test,
    peters_test,
    peters_weights,
    weighted_regression,
)
from rebayes.frequentist.trimfill import trim_and_fill

DATASETS = {
    "ivig_rr": ("ivig_rsa", "RR"),
    "ivig_or": ("ivig_rsa", "OR"),
    "magnesium": (str(TEST_DATA / "magnesium"), "OR"),
    "bcg": (str(TEST_DATA / "bcg"), "RR"),
    "hcq": (str(TEST_DATA / "hcq"), "OR"),
}


def effects(name):
    source, measure = DATASETS[name]
    table = study_effects(trial_totals(rb.load_trials(source)), measure)
    return table[table["estimable"]].reset_index(drop=True)


def yv(name):
    e = effects(name)
    return e["yi"].to_numpy(), e["vi"].to_numpy()


# regtest(dat$yi, dat$vi, model="lm"): zval, dfs, pval, est (limit estimate), ci.lb, ci.ub
EGGER_LM = {
    "ivig_rr": (2.7348932, 8, 0.02565096364, -0.3633433135, -0.7519075165, 0.02522088956),
    "ivig_or": (0.02852875091, 8, 0.9779392864, 0.2889670869, -1.436883011, 2.014817185),
    "magnesium": (-5.784621355, 14, 4.728663543e-05, 0.09961714382, 0.02725284818,
                  0.1719814395),
    "bcg": (-1.401282002, 11, 0.1887069951, -0.1909286424, -0.6753323503, 0.2934750656),
    "hcq": (0.3603151776, 16, 0.723323902, 0.08031250647, -0.02475691596, 0.1853819289),
}
# regtest(dat$yi, dat$vi, model="rma"): zval, pval, est, ci.lb, ci.ub, fit$tau2; for
# magnesium and bcg with metafor's tight convergence (rma(yi, vi, mods=~sqrt(vi),
# method="REML", control=list(threshold=1e-14)): regtest's default threshold 1e-5 stops
# Fisher scoring at tau2 = 0.0116384693 where the REML root is 0.0116387208).
EGGER_RMA = {
    "ivig_rr": (1.840003017, 0.06576779435, -0.3633433135, -0.8542202568, 0.1275336299, 0.0),
    "ivig_or": (0.0244692184, 0.9804783365, 0.2889670869, -1.421259843, 1.999194017, 0.0),
    "magnesium": (-4.66863563047, None, 0.0419173327113, None, None, 0.0116387208188),
    "bcg": (-0.803329193091, None, -0.510431874103, None, None, 0.308249111107),
    "hcq": (0.2325276574, 0.8161282083, 0.08031250647, -0.07021501664, 0.2308400296, 0.0),
}
# regtest(dat$yi, dat$vi, ni=n1+n2, model="lm", predictor="ninv"): zval, pval (metafor's
# weights 1/vi); and Peters et al.'s weights: regtest(dat$yi, sei=sqrt(1/(a+c) + 1/(b+d)),
# ni=n1+n2, model="lm", predictor="ninv") (as meta's metabias(method.bias="Peters")).
PETERS_METAFOR = {
    "ivig_rr": (0.06166299525, 0.9523439335), "ivig_or": (0.4475578215, 0.6663429014),
    "magnesium": (-3.616170821, 0.002806971753), "bcg": (-1.448469561, 0.1753843654),
    "hcq": (1.290537387, 0.2152025135),
}
PETERS_2006 = {
    "ivig_rr": (0.4868565128, 0.6394182785, 0.07222017063),
    "ivig_or": (0.4493214886, 0.665123068, 0.1474753678),
    "magnesium": (-3.970702958, 0.00139391624, 0.03372352641),
    "bcg": (-1.270189443, 0.2302268747, -0.4016102086),
    "hcq": (1.219819285, 0.2402094772, 0.0811445179),
}
# Z <- a - (a+c)*n1/N; V <- n1*n2*(a+c)*(N-a-c)/(N^2*(N-1)); regtest(Z/V, sei=1/sqrt(V),
# model="lm"): zval, dfs, pval (V = 0 studies left out, as meta does)
HARBORD = {
    "ivig_rr": (-0.1503538726, 8, 0.8842072092),
    "magnesium": (-5.694872692, 14, 5.535507583e-05),
    "bcg": (-1.256474344, 11, 0.2349719521),
    "hcq": (0.6837798842, 16, 0.5038975394),
}
# ranktest(dat$yi, dat$vi): tau, pval (exact: k < 50, no ties)
BEGG = {
    "ivig_rr": (0.4222222222, 0.1083134921), "ivig_or": (0.1111111111, 0.7274895282),
    "magnesium": (0.15, 0.4502848863), "bcg": (0.02564102564, 0.952361908),
    "hcq": (0.1241830065, 0.5008673314),
}


@pytest.mark.parametrize("name", list(EGGER_LM))
def test_egger_lm_matches_metafor(name):
    t, df, p, est, low, high = EGGER_LM[name]
    got = egger_test(*yv(name), "lm")
    assert got.df == df
    np.testing.assert_allclose(
        [got.statistic, got.p, got.limit_estimate, got.limit_ci_low, got.limit_ci_high],
        [t, p, est, low, high], rtol=1e-8)


def test_the_issue_quotes_egger_on_ivig():
    # Issue 26: "Egger's classic test on the log RR (metafor regtest(model = "lm")): t = 2.73,
    # p = 0.026".
    got = egger_test(*yv("ivig_rr"), "lm")
    assert round(got.statistic, 2) == 2.73 and round(got.p, 3) == 0.026


@pytest.mark.parametrize("name", list(EGGER_RMA))
def test_egger_rma_matches_metafor(name):
    z, p, est, low, high, tau2 = EGGER_RMA[name]
    got = egger_test(*yv(name), "rma")
    assert got.df is None
    np.testing.assert_allclose([got.statistic, got.limit_estimate], [z, est], rtol=1e-8)
    assert got.tau2 == pytest.approx(tau2, abs=1e-10)
    if p is not None:
        np.testing.assert_allclose([got.p, got.limit_ci_low, got.limit_ci_high], [p, low, high],
                                   rtol=1e-8)


@pytest.mark.parametrize("name", list(PETERS_METAFOR))
def test_peters_matches_metafor_with_both_weightings(name):
    e = effects(name)
    yi, vi = e["yi"].to_numpy(), e["vi"].to_numpy()
    n = (e["n_treat"] + e["n_control"]).to_numpy()
    t, p = PETERS_METAFOR[name]
    got = peters_test(yi, n, 1 / vi)
    np.testing.assert_allclose([got.statistic, got.p], [t, p], rtol=1e-8)
    t, p, est = PETERS_2006[name]
    w = peters_weights(e["events_treat"], e["n_treat"], e["events_control"], e["n_control"])
    got = peters_test(yi, n, w)
    np.testing.assert_allclose([got.statistic, got.p, got.limit_estimate], [t, p, est],
                               rtol=1e-8)


@pytest.mark.parametrize("name", list(HARBORD))
def test_harbord_matches_the_score_regression(name):
    e = effects(name)
    t, df, p = HARBORD[name]
    got = harbord_test(e["events_treat"], e["n_treat"], e["events_control"], e["n_control"])
    assert got.df == df
    np.testing.assert_allclose([got.statistic, got.p], [t, p], rtol=1e-8)
    assert np.isnan(got.limit_estimate)


def test_harbord_score_and_variance_by_hand():
    # One study 10/50 vs 20/50: Z = a - (a + c) n1 / N = 10 - 30 * 50 / 100 = -5,
    # V = n1 n2 (a + c)(b + d) / (N^2 (N - 1)) = 50 * 50 * 30 * 70 / (100^2 * 99) = 0.530303,
    # Peto's log OR Z / V = -9.4286. Three such studies of different sizes: the regression of
    # Z/V on 1/sqrt(V) with weights V, by the normal equations.
    a = np.array([10, 4, 30])
    n1 = np.array([50, 20, 150])
    c = np.array([20, 6, 45])
    n2 = np.array([50, 20, 150])
    n = n1 + n2
    z = a - (a + c) * n1 / n
    v = n1 * n2 * (a + c) * (n - a - c) / (n**2 * (n - 1))
    assert z[0] == -5 and v[0] == pytest.approx(50 * 50 * 30 * 70 / (100**2 * 99))
    y, x, w = z / v, 1 / np.sqrt(v), v
    sw, swx, swxx = w.sum(), (w * x).sum(), (w * x * x).sum()
    swy, swxy = (w * y).sum(), (w * x * y).sum()
    slope = (sw * swxy - swx * swy) / (sw * swxx - swx**2)
    intercept = (swy - slope * swx) / sw
    resid = y - intercept - slope * x
    phi = (w * resid**2).sum() / (3 - 2)
    se = np.sqrt(phi * sw / (sw * swxx - swx**2))
    got = harbord_test(a, n1, c, n2)
    assert got.slope == pytest.approx(slope, rel=1e-12)
    assert got.statistic == pytest.approx(slope / se, rel=1e-10)
    assert got.df == 1


@pytest.mark.parametrize("name", list(BEGG))
def test_begg_matches_metafor(name):
    tau, p = BEGG[name]
    got = begg_test(*yv(name))
    assert got.exact
    np.testing.assert_allclose([got.tau, got.p], [tau, p], rtol=1e-8)


def test_begg_with_ties_uses_the_normal_approximation_as_r():
    # y <- c(0.1, 0.3, -0.2, 0.3, 0.5, -0.1, 0.2); v <- c(0.05, 0.1, 0.2, 0.1, 0.3, 0.05, 0.15)
    # ranktest(y, v): tau 0.35909242323, p 0.276795109964 ("Cannot compute exact p-value with
    # ties").
    got = begg_test(np.array([0.1, 0.3, -0.2, 0.3, 0.5, -0.1, 0.2]),
                    np.array([0.05, 0.1, 0.2, 0.1, 0.3, 0.05, 0.15]))
    assert not got.exact
    np.testing.assert_allclose([got.tau, got.p], [0.35909242323, 0.276795109964], rtol=1e-9)


def test_weighted_regression_by_hand():
    # y = 1, 2, 4 at x = 0, 1, 2, weights 1, 2, 1: X'WX = [[4, 4], [4, 6]], X'Wy = [9, 12],
    # coefficients (0.75, 1.5); residuals 0.25, -0.25, 0.25; phi = (0.0625 + 0.125 + 0.0625)
    # / 1 = 0.25; (X'WX)^-1 = [[0.75, -0.5], [-0.5, 0.5]], SEs sqrt(0.25 * 0.75), sqrt(0.125).
    coef, se, phi, df = weighted_regression(np.array([1.0, 2.0, 4.0]),
                                            np.array([[1, 0], [1, 1], [1, 2.0]]),
                                            np.array([1.0, 2.0, 1.0]))
    np.testing.assert_allclose(coef, [0.75, 1.5])
    np.testing.assert_allclose(se, [np.sqrt(0.1875), np.sqrt(0.125)])
    assert phi == pytest.approx(0.25) and df == 1


def test_meta_regression_matches_metafor_on_bcg():
    # escalc("RR", ...) on dat.bcg; rma(yi, vi, method=...,
    # control=list(threshold=1e-12)): beta, se, tau2, logLik
    yi, vi = yv("bcg")
    reml = fit_meta_regression(yi, vi, method="REML")
    np.testing.assert_allclose([reml.coef[0], reml.se[0], reml.tau2, reml.loglik],
                               [-0.714532342158, 0.179781516105, 0.313243258136,
                                -12.2023714155], rtol=1e-9)
    ml = fit_meta_regression(yi, vi, method="ML")
    np.testing.assert_allclose([ml.coef[0], ml.se[0], ml.tau2, ml.loglik],
                               [-0.711199135474, 0.171896808777, 0.280028137269,
                                -12.6650763483], rtol=1e-8)
    # rma(yi, vi, mods=sqrt(vi), method="DL"): beta, tau2 (trim-and-fill's side rule)
    dl = fit_meta_regression(yi, vi, np.column_stack([np.ones_like(vi), np.sqrt(vi)]), "DL")
    np.testing.assert_allclose([*dl.coef, dl.tau2],
                               [-0.506349038745, -0.777952227425, 0.286058028636], rtol=1e-9)


def test_too_few_studies_and_equal_precision_are_one_line_errors():
    with pytest.raises(AnalysisError, match="at least 3 studies"):
        egger_test(np.array([0.1, 0.2]), np.array([0.1, 0.2]))
    with pytest.raises(AnalysisError, match="same standard error"):
        egger_test(np.array([0.1, 0.2, 0.3]), np.array([0.1, 0.1, 0.1]), "rma")
    with pytest.raises(AnalysisError, match="same predictor"):
        egger_test(np.array([0.1, 0.2, 0.3]), np.array([0.1, 0.1, 0.1]), "lm")


# --- trim-and-fill ---------------------------------------------------------------------------

# trimfill(rma(yi, vi, data=dat, method="DL"), estimator=EST): k0, side, beta, ci.lb, ci.ub,
# tau2, se.k0, and the filled studies' yi (tail(tf$yi, tf$k0)) and vi.
TRIMFILL = {
    ("ivig_rr", "L0"): (3, "left", 0.02531629061, -0.1133334069, 0.1639659881, 0.008016004489,
                        2.105692822, [-0.2010194204, -0.5393452257, -0.5424751187],
                        [0.1186147186, 0.1934640523, 0.08073188784]),
    ("ivig_rr", "R0"): (2, "left", 0.03655892825, -0.1065946899, 0.1797125464, 0.009202385871,
                        2.449489743, [-0.5198728485, -0.5230027415],
                        [0.1934640523, 0.08073188784]),
    ("ivig_or", "L0"): (0, "left", 0.3098386316, -0.05069325485, 0.6703705179, 0.0,
                        1.939128985, [], []),
    ("magnesium", "L0"): (7, "right", -0.3654580426, -0.7107352642, -0.02018082097,
                          0.2270839904, 2.445217621,
                          [0.5529672153, 0.6396043139, 0.6421983491, 0.9320529683,
                           1.399424386, 1.569538917, 1.76878449],
                          [2.759891599, 0.6530889951, 1.425, 0.3295212783, 0.6095334686,
                           1.231318681, 1.149629086]),
    ("magnesium", "R0"): (7, "right", -0.3654580426, -0.7107352642, -0.02018082097,
                          0.2270839904, 4.0, None, None),
    ("bcg", "L0"): (1, "right", -0.656073213, -0.9960552345, -0.3160911915, 0.3081321533,
                    2.452798643, [0.3095103249], [0.2230172476]),
    ("bcg", "R0"): (0, "right", -0.7141172221, -1.06444528, -0.3637891641, 0.3087602629,
                    1.414213562, [], []),
    ("hcq", "L0"): (1, "left", 0.08737816629, -0.03950085308, 0.2142571857, 0.0, 2.757611573,
                    [-1.771153816], [3.085714286]),
    ("hcq", "R0"): (1, "left", 0.08737816629, -0.03950085308, 0.2142571857, 0.0, 2.0,
                    [-1.771153816], [3.085714286]),
}


@pytest.mark.parametrize(("name", "estimator"), list(TRIMFILL))
def test_trim_and_fill_matches_metafor(name, estimator):
    k0, side, est, low, high, tau2, se_k0, filled_y, filled_v = TRIMFILL[(name, estimator)]
    got = trim_and_fill(*yv(name), estimator)
    assert (got.k0, got.side) == (k0, side)
    np.testing.assert_allclose([got.estimate, got.ci_low, got.ci_high, got.se_k0],
                               [est, low, high, se_k0], rtol=1e-8)
    assert got.tau2 == pytest.approx(tau2, abs=1e-10)
    if filled_y is not None:
        np.testing.assert_allclose(got.filled_yi, filled_y, rtol=1e-8)
        np.testing.assert_allclose(got.filled_vi, filled_v, rtol=1e-8)


def test_trim_and_fill_l0_by_hand():
    # Five studies of equal variance, mean 0: y = -0.25, -0.05, 0.05, 0.10, 0.15. Ranks of
    # |y - 0| (ties by order after sorting y): -0.05 -> 1, 0.05 -> 2, 0.10 -> 3, 0.15 -> 4,
    # -0.25 -> 5; S_r (positive ranks) = 2 + 3 + 4 = 9; L0 = (4 S_r - k(k + 1)) / (2k - 1)
    # = (36 - 30) / 9 = 0.67 -> 1. Trim the largest: the mean of the other four is -0.0375;
    # deviations -0.2125, -0.0125, 0.0875, 0.1375, 0.1875: S_r = 2 + 3 + 4 = 9 again, k0 = 1.
    # Fill 2 (-0.0375) - 0.15 = -0.225; with equal variances the pooled mean of the six is
    # their plain mean, -0.225 / 6 = -0.0375, whatever tau^2.
    y = np.array([-0.25, -0.05, 0.05, 0.10, 0.15])
    got = trim_and_fill(y, np.full(5, 0.01), "L0", side="left")
    assert got.k0 == 1
    np.testing.assert_allclose(got.filled_yi, [-0.225])
    assert got.estimate == pytest.approx(-0.0375, abs=1e-12)


# --- the selection model -----------------------------------------------------------------------

# selmodel(rma(yi, vi, data=dat, method="ML"), type="stepfun", steps=STEPS,
#          alternative=ALT): beta, se, tau2, delta[2], se.delta[2], LRT, LRTp, ll, ptable$k
SELECTION = {
    ("magnesium", 0.025): ("less", -0.3828044695, 0.3171331777, 0.1091707486, 0.2433141112,
                           0.2768120216, 1.681212188, 0.1947634591, -18.84398472, (6, 10)),
    ("magnesium", 0.05): ("less", -0.7080324484, 0.3563474461, 0.2399404761, 0.8800469057,
                          0.8231275738, 0.01865355708, 0.8913643467, -19.67526404, (6, 10)),
    ("bcg", 0.025): ("less", -0.6205636233, 0.2613226596, 0.2912394546, 0.6355361093,
                     0.5866273313, 0.2424994835, 0.6224066559, -12.54382661, (8, 5)),
    ("bcg", 0.05): ("less", -0.7315970864, 0.2425694451, 0.2764116846, 1.11357298,
                    1.017782512, 0.0138407796, 0.9063474875, -12.65815596, (8, 5)),
}


@pytest.mark.parametrize(("name", "step"), list(SELECTION))
def test_selection_model_matches_metafor(name, step):
    alt, est, se, tau2, delta, se_delta, lrt, lrt_p, ll, counts = SELECTION[(name, step)]
    got = step_selection_model(*yv(name), (step,), alt)
    # metafor's optimiser stops within ~1e-6 of the maximum (BFGS, reltol 1e-8).
    np.testing.assert_allclose([got.estimate, got.tau2, got.deltas[1], got.lrt, got.loglik],
                               [est, tau2, delta, lrt, ll], rtol=2e-5, atol=1e-7)
    np.testing.assert_allclose([got.se, got.deltas_se[1], got.lrt_p], [se, se_delta, lrt_p],
                               rtol=5e-4)
    assert got.counts == counts and not got.at_bound


def test_selection_model_on_ivig_reaches_metafors_maximum():
    # IVIG (log RR, benefit = larger RR, alternative="greater"), steps 0.025: one study with
    # p <= 0.025. metafor's random-effects fit stops at tau2 = 1.2e-6 with ll 1.958644205; its
    # Nelder-Mead fit (control=list(optmethod="Nelder-Mead", reltol=1e-14)) and the
    # fixed-effect selmodel(rma(..., method="FE"), ...) reach tau2 = 0 and ll 1.95873302135:
    # beta 0.052342673092, se 0.0778497829552, delta 0.397464155191, LRT 0.440563210236.
    got = step_selection_model(*yv("ivig_rr"), (0.025,), "greater")
    assert got.loglik >= 1.958644205
    np.testing.assert_allclose([got.estimate, got.deltas[1], got.lrt, got.loglik],
                               [0.052342673092, 0.397464155191, 0.440563210236,
                                1.95873302135], rtol=1e-5)
    assert got.se == pytest.approx(0.0778497829552, rel=1e-3)
    assert got.counts == (1, 9) and got.tau2 < 1e-8


def test_selection_model_flags_an_unidentified_weight():
    # Hydroxychloroquine (a harmful treatment, benefit = fewer deaths): no trial is
    # significant in the direction of benefit (ptable 0 / 18 in metafor, whose delta then runs
    # to its bound 100 with se 1206): the weight cannot be estimated.
    got = step_selection_model(*yv("hcq"), (0.025,), "less")
    assert got.counts == (0, 18) and got.at_bound


def test_empty_interval_is_refused_as_metafor_does():
    # metafor: "One or more intervals do not contain any observed p-values".
    with pytest.raises(AnalysisError, match="holds no study"):
        step_selection_model(*yv("bcg"), (0.025, 0.05, 0.5), "less")


def test_interval_probabilities_by_hand():
    # One study, v = 0.04 (se 0.2), mu = 0.3, tau2 = 0.05: sd = sqrt(0.09) = 0.3. One-sided
    # ("greater") p <= 0.025 <=> y >= 0.2 * 1.959964 = 0.391993: probability
    # 1 - Phi((0.391993 - 0.3) / 0.3) = 1 - Phi(0.306643) = 0.379558 (tables: Phi(0.3066) = 0.6204).
    from scipy import stats

    probs = interval_probabilities(0.3, 0.05, np.array([0.04]), (0.025, 0.5))
    bound = 0.2 * stats.norm.ppf(0.975)
    first = stats.norm.sf((bound - 0.3) / 0.3)
    second = stats.norm.sf((0.0 - 0.3) / 0.3) - first  # 0.025 < p <= 0.5 <=> 0 <= y < bound
    assert probs.shape == (1, 3)
    np.testing.assert_allclose(probs[0], [first, second, 1 - first - second], rtol=1e-12)
    assert first == pytest.approx(0.379558, abs=1e-6)


def test_p_values_and_intervals():
    p = one_sided_p(np.array([0.5, -0.5]), np.array([0.04, 0.04]))
    np.testing.assert_allclose(p, [0.00620966532, 0.99379033468], rtol=1e-9)  # Phi(-2.5)
    assert list(interval_index(np.array([0.01, 0.025, 0.03, 0.6]), (0.025, 0.05, 0.5))) == [
        0, 0, 1, 3]


def test_repeated_study_names_stay_separate_studies():
    # dat.egger2001 has three trials by Shechter (1989, 1991, 1995): 16 studies, not 14.
    table = pd.read_csv(TEST_DATA / "magnesium" / "trials.csv")
    assert (table["study"] == "Shechter").sum() == 3
    assert len(effects("magnesium")) == 16
