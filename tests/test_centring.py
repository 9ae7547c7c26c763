"""The effect prior acts on the average effect: centred covariates (issue 23, point 8).

References: the mean latitude of metafor's dat.bcg by hand; a hand-written PyMC model with the
centring written out; the exact engine (quadrature) against NUTS; the numbers issue 23 reported
for IVIG's RSA-type analysis under the old coding (P(row-average RR > 1) 0.786 under the
weakly informative prior, 0.908 under the sceptical one, from the NUTS fits of the committed
report).
"""

import dataclasses

import numpy as np
import pytest

import rebayes as rb
from conftest import TEST_DATA, ivig_spec
from rebayes.bayes.design import build_design
from rebayes.bayes.exact import exact_posterior
from rebayes.bayes.spec import AnalysisSpec

# metafor's dat.bcg: absolute latitudes of the 13 trials, in the order of tests/data/bcg.
BCG_LATITUDES = [44, 55, 42, 52, 13, 44, 19, 13, 27, 42, 18, 33, 33]
BCG_MEAN_LATITUDE = 435 / 13  # sum of the above by hand: 33.4615...


def _bcg_latitude() -> AnalysisSpec:
    return AnalysisSpec(name="ablat", data=str(TEST_DATA / "bcg"), covariates=("ablat",),
                        effect="contrast")


def test_bcg_latitude_is_centred_at_its_mean_over_the_trials():
    design = build_design(_bcg_latitude())
    assert sum(BCG_LATITUDES) == 435
    assert design.centres == pytest.approx((BCG_MEAN_LATITUDE,), abs=1e-12)
    np.testing.assert_allclose(design.X[:, 0], np.array(BCG_LATITUDES) - BCG_MEAN_LATITUDE)
    assert design.intercept_at == "at ablat = 33.46 degree (the mean of the 13 analysed rows)"


def test_categorical_coding_keeps_the_subgroup_effects_and_makes_d_their_row_average():
    # bcg's allocation: random 7 trials, alternate 2, systematic 4 (trials.csv).
    design = build_design(AnalysisSpec(name="alloc", data=str(TEST_DATA / "bcg"),
                                       covariates=("alloc",), subgroup=("alloc",),
                                       effect="contrast"))
    assert design.coefs == ("alternate", "systematic")
    assert design.centres == pytest.approx((2 / 13, 4 / 13))
    assert "allocation (random 0.54, alternate 0.15, systematic 0.31)" in design.intercept_at
    # For any (d, beta): each level's effect is d + its row of X @ beta; the row-weighted
    # average of the levels' effects is d, and level - reference is beta.
    d, beta = 0.3, np.array([-0.4, 0.9])
    mu = d + design.X @ beta
    level = np.array(design.row_subgroup)
    effect = {g: mu[level == g].mean() for g in ("random", "alternate", "systematic")}
    assert (7 * effect["random"] + 2 * effect["alternate"] + 4 * effect["systematic"]) / 13 \
        == pytest.approx(d)
    assert effect["alternate"] - effect["random"] == pytest.approx(beta[0])
    assert effect["systematic"] - effect["random"] == pytest.approx(beta[1])


def test_an_interaction_multiplies_the_centred_main_effects():
    # IVIG's seed_fit variant identifies RSA type x timing (tests/test_design.py).
    design = build_design(ivig_spec("timing_within_type"), variant="seed_fit")
    assert design.coefs == ("secondary", "pre_conception", "secondary:pre_conception")
    coded = design.X + np.asarray(design.centres)
    secondary, pre = coded[:, 0], coded[:, 1]
    assert set(secondary) == {0.0, 1.0} and set(pre) == {0.0, 1.0}
    product = (secondary - secondary.mean()) * (pre - pre.mean())
    np.testing.assert_allclose(coded[:, 2], product)
    np.testing.assert_allclose(design.X.mean(axis=0), 0.0, atol=1e-12)
    # So the timing coefficient is the pre- vs post-conception difference at the rows' mean
    # share of secondary RSA: for any beta, the rows' effects differ by beta_pre + beta_int *
    # (secondary - mean), which averages to beta_pre over the rows.
    beta = np.array([0.2, -0.5, 0.8])
    mu = design.X @ beta
    cell = {(a, b): mu[(secondary == a) & (pre == b)].mean() for a in (0, 1) for b in (0, 1)}
    share = secondary.mean()
    timing = (1 - share) * (cell[0, 1] - cell[0, 0]) + share * (cell[1, 1] - cell[1, 0])
    assert timing == pytest.approx(beta[1])
    assert design.intercept_at.endswith("interaction terms at their means over the rows")


def test_separate_effects_have_no_columns_to_centre():
    design = build_design(ivig_spec("placebo"))
    assert design.separate and design.X.shape[1] == 0
    assert design.centres == () and design.intercept_at == ""
    post = exact_posterior(design, rb.get_prior("skeptical"))
    assert post.names == ("d[albumin]", "d[saline]", "d[multivitamin]")


def test_ivig_rsa_type_sceptical_prior_acts_on_the_row_average():
    """Issue 23: under the old coding the sceptical prior raised P(row-average RR > 1).

    IVIG: more live births is better, so the row-average RR > 1 iff its log OR, the mean over
    the rows of d + X beta, is > 0 (the binomial RR at p0 is monotone in the log OR). Exact
    engine, no Monte Carlo error. Measured (exact): old coding 0.7838 (weakly informative),
    0.9090 (sceptical), the issue's NUTS figures 0.786 and 0.908; new coding 0.7493 and 0.6913.
    """
    design = build_design(ivig_spec("rsa_type"))
    share = design.centres[0]  # share of secondary RSA among the 10 analysed rows
    assert share == pytest.approx(6 / 10)
    old = dataclasses.replace(design, X=design.X + share)  # secondary = 1, primary = 0
    p_old, p_new = {}, {}
    for name in ("weakly_informative", "skeptical"):
        prior = rb.get_prior(name)
        # Old coding: the row average is d + 0.6 beta, d the primary-RSA effect.
        p_old[name] = exact_posterior(old, prior).linear(
            {"d": 1.0, "secondary": share}).prob_greater(0.0)
        p_new[name] = exact_posterior(design, prior).coefficient("d").prob_greater(0.0)
    # The old coding reproduces the figures (NUTS, within their Monte Carlo error).
    assert p_old["weakly_informative"] == pytest.approx(0.786, abs=0.01)
    assert p_old["skeptical"] == pytest.approx(0.908, abs=0.01)
    # New coding: the sceptical prior shrinks the average towards no effect (P towards 1/2)
    # instead of pushing it away, and moves it less.
    assert abs(p_new["skeptical"] - 0.5) < abs(p_new["weakly_informative"] - 0.5)
    assert p_new["skeptical"] < p_new["weakly_informative"]
    moved_old = abs(p_old["skeptical"] - p_old["weakly_informative"])
    moved_new = abs(p_new["skeptical"] - p_new["weakly_informative"])
    assert moved_new < moved_old / 2


def _hand_written_bcg_posterior(seed: int):
    """The binomial model on dat.bcg with latitude, written out in plain PyMC.

    The enthusiastic set: d ~ N(log 1.5, 0.2465) towards benefit, which for BCG (fewer cases
    is better) is N(-log 1.5, 0.2465) on the log OR, at the mean latitude; beta ~ N(0, 1) per
    degree; tau ~ HalfNormal(0.5); alpha ~ N(0, 2) per trial; arms at -+1/2 of theta.
    """
    import pandas as pd
    import pymc as pm

    table = pd.read_csv(TEST_DATA / "bcg" / "trials.csv")
    latitude = table["ablat"].to_numpy(float)
    centred = latitude - latitude.mean()
    k = len(table)
    with pm.Model():
        d = pm.Normal("d", -np.log(1.5), np.log(1.5) / 1.645)
        beta = pm.Normal("beta", 0.0, 1.0)
        tau = pm.HalfNormal("tau", 0.5)
        alpha = pm.Normal("alpha", 0.0, 2.0, shape=k)
        z = pm.Normal("z", 0.0, 1.0, shape=k)
        theta = d + beta * centred + tau * z
        pm.Binomial("control", n=table["n_control"].to_numpy(),
                    p=pm.math.invlogit(alpha - theta / 2),
                    observed=table["events_control"].to_numpy())
        pm.Binomial("treat", n=table["n_treat"].to_numpy(),
                    p=pm.math.invlogit(alpha + theta / 2),
                    observed=table["events_treat"].to_numpy())
        idata = pm.sample(draws=2000, tune=1000, chains=2, nuts_sampler="nutpie",
                          random_seed=seed, progressbar=False, target_accept=0.9)
    return idata.posterior


@pytest.mark.slow
def test_bcg_latitude_matches_a_hand_written_model_and_the_exact_engine():
    from arviz_stats.base import array_stats

    from rebayes.bayes.coefficients import coefficients
    from rebayes.report.analysis import key_sentence, model_formula
    from rebayes.sensitivity.bayes_factor import savage_dickey

    spec = _bcg_latitude()
    prior = rb.get_prior("enthusiastic")
    fit = rb.fit(spec, prior, cache=False)
    ours = fit.tree.posterior
    hand = _hand_written_bcg_posterior(seed=11)
    exact = exact_posterior(fit.design, fit.prior)
    for name, mine, theirs in (("d", ours["d"].values, hand["d"].values),
                               ("ablat", ours["beta"].sel(coef="ablat").values,
                                hand["beta"].values)):
        mcse = np.hypot(array_stats.mcse(mine, method="mean"),
                        array_stats.mcse(theirs, method="mean"))
        assert abs(mine.mean() - theirs.mean()) < 3 * mcse, name
        # The exact engine on the same design: its mean within 3 MCSE of the NUTS fit's.
        truth = exact.coefficient(name).mean
        assert abs(mine.mean() - truth) < 3 * array_stats.mcse(mine, method="mean"), name
        assert abs(theirs.mean() - truth) < 3 * array_stats.mcse(theirs, method="mean"), name
    # The outputs say where d sits: at the hand-computed mean latitude, 33.46 degrees.
    at = f"at ablat = {BCG_MEAN_LATITUDE:.2f} degree"
    summary = fit.summary()
    assert f"Row-average RR: the effect {at}" in str(summary)
    assert summary.to_dict()["intercept_at"].startswith(at)
    assert f"so d is the effect {at}" in model_formula(fit)
    sentence = key_sentence(summary, fit.design.schema, coefficients(fit.tree))
    assert "per degree of ablat" in sentence and f"the RR {at}" in sentence
    (bf,) = savage_dickey(fit.tree, ["d"])
    assert bf.meaning.startswith(f"no effect {at}")
