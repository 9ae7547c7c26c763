"""The exact record of meta-regressions and subgroup analyses: subgroup RRs and their ratios.

A ratio of two subgroups' RRs at one control risk p0, ``expit(logit p0 + x) / expit(logit p0
+ y)``, depends on both subgroups' effects x and y, not on their difference alone; the engine
integrates its density over their joint density (ExactPosterior.risk_ratio_ratio).
References, each independent of that integration: the 1-D marginal of x - y (the ratio
exceeds 1 exactly when x > y; as p0 -> 0 the ratio tends to exp(x - y)); seeded draws from
the exact posterior (coordinate-wise inverse-CDF sampling, another code path) with their
Monte Carlo error; refining every rule; NUTS fits within 3 MCSE (slow).
"""

import json
import math

import numpy as np
import pytest
from scipy import special

import rebayes as rb
from conftest import TEST_DATA
from rebayes.bayes.analyses import resolve_spec
from rebayes.bayes.design import build_design, prior_on_model_scale
from rebayes.bayes.exact import ExactSettings, exact_posterior
from rebayes.bayes.exact_fit import exact_reach, exact_summary
from rebayes.bayes.priors import get_prior
from rebayes.bayes.spec import AnalysisSpec
from rebayes.cli import main
from rebayes.sensitivity.exact_bayes_factor import exact_savage_dickey

HCQ = TEST_DATA / "hcq"  # deaths: fewer is better; chloroquine (cq) vs hydroxychloroquine
PRIOR = get_prior("weakly_informative")


@pytest.fixture(scope="module")
def drug():
    """hcq's drug meta-regression (d and a chloroquine coefficient), its posterior and rows."""
    design = build_design(resolve_spec("drug", str(HCQ), None, False))
    post = exact_posterior(design, prior_on_model_scale(PRIOR, design))
    labels = np.asarray(design.row_subgroup)
    A = post.problem.A
    return design, post, A[labels == "cq"].mean(axis=0), A[labels == "hcq"].mean(axis=0)


def test_the_ratio_exceeds_one_exactly_when_the_first_effect_is_larger(drug):
    _, post, cq, hcq = drug
    difference = post.linear(cq - hcq)
    for p0 in (0.02, 0.18, 0.6):
        ratio = post.risk_ratio_ratio(cq, hcq, p0)
        assert ratio.prob_greater(1.0) == pytest.approx(difference.prob_greater(0.0), abs=2e-6)


def test_at_a_vanishing_control_risk_the_ratio_is_the_odds_ratio_of_the_difference(drug):
    _, post, cq, hcq = drug
    ratio = post.risk_ratio_ratio(cq, hcq, 1e-8)
    probs = (0.025, 0.25, 0.5, 0.75, 0.975)
    np.testing.assert_allclose(np.log(ratio.quantiles(probs)),
                               post.linear(cq - hcq).quantiles(probs), atol=5e-5)


def test_the_ratio_matches_draws_from_the_exact_posterior(drug):
    design, post, cq, hcq = drug
    p0 = 0.18
    draws = post.draws(4, 25_000, seed=11)
    phi = np.column_stack([draws["d"].ravel(), draws["beta"].reshape(-1, 1)])
    base = special.logit(p0)
    sample = special.expit(base + phi @ cq) / special.expit(base + phi @ hcq)
    ratio = post.risk_ratio_ratio(cq, hcq, p0)
    se = sample.std() / math.sqrt(sample.size)
    assert abs(sample.mean() - ratio.mean) < 4 * se
    for q in (0.025, 0.5, 0.975):
        # The quantile's standard error: sqrt(q (1 - q) / n) / density there.
        x = float(ratio.ppf(q))
        se_q = math.sqrt(q * (1 - q) / sample.size) / float(ratio.pdf(x))
        assert abs(np.quantile(sample, q) - x) < 4 * se_q
    # The normal likelihood's effects are log RRs: the ratio is exp(x - y) at any p0.
    normal = build_design(AnalysisSpec(name="n", data=str(HCQ), covariates=("drug",),
                                       subgroup=("drug",), effect="contrast",
                                       likelihood="normal"))
    npost = exact_posterior(normal, prior_on_model_scale(PRIOR, normal))
    n_labels = np.asarray(normal.row_subgroup)
    a, b = (npost.problem.A[n_labels == g].mean(axis=0) for g in ("cq", "hcq"))
    assert npost.risk_ratio_ratio(a, b, 0.3).median == pytest.approx(
        math.exp(npost.linear(a - b).median), rel=1e-9)


def test_refining_every_rule_moves_the_ratio_by_less_than_1e_4(drug):
    design, post, cq, hcq = drug
    fine = exact_posterior(design, prior_on_model_scale(PRIOR, design),
                           ExactSettings().refined())
    a, b = post.risk_ratio_ratio(cq, hcq, 0.18), fine.risk_ratio_ratio(cq, hcq, 0.18)
    np.testing.assert_allclose(a.quantiles(), b.quantiles(), rtol=1e-4)
    assert a.prob_greater(1.2) == pytest.approx(b.prob_greater(1.2), abs=1e-4)


def test_three_separate_subgroup_effects():
    design = build_design(AnalysisSpec(name="sep", data=str(TEST_DATA / "bcg"),
                                       subgroup=("alloc",), effect="separate"))
    post = exact_posterior(design, prior_on_model_scale(PRIOR, design))
    record = exact_summary(design, PRIOR)
    assert [g.name for g in record.subgroups] == ["random", "alternate", "systematic"]
    assert [r.name for r in record.ratios] == ["alternate vs random", "systematic vs random"]
    for r in record.ratios:
        difference = post.linear({f"d[{r.numerator}]": 1.0, f"d[{r.denominator}]": -1.0})
        assert r.p_gt_1 == pytest.approx(difference.prob_greater(0.0), abs=2e-6)
    # Each subgroup's RR at p0 is a monotone map of its own d.
    p0 = record.control_risk.value
    random = post.coefficient("d[random]").median
    assert record.subgroups[0].rr.median == pytest.approx(
        special.expit(special.logit(p0) + random) / p0, rel=1e-9)
    assert record.pooled_kind == "row-average"
    assert record.average_note.startswith("average over the 13 analysed rows")


def test_a_trial_whose_strata_fall_in_different_subgroups_is_left_to_nuts():
    # IVIG's primary and secondary strata as separate subgroup effects: Jablonowska 1999 has
    # both, so its shrunken effect is no single row's (no exact marginal for it).
    split = AnalysisSpec(name="sep", data="ivig_rsa", split_by_stratum=True,
                         strata=("primary", "secondary"), subgroup="rsa_type",
                         effect="separate")
    assert exact_reach(build_design(split), PRIOR).startswith(
        "the strata of Jablonowska 1999 differ in their covariates or subgroups")


def test_the_exact_record_of_a_meta_regression(drug):
    design, post, cq, hcq = drug
    record = exact_summary(design, PRIOR, trials=False, posterior=post)
    assert record.engine == "exact" and record.pooled_kind == "row-average"
    assert "hcq 28 rows (weight 0.85), cq 5 rows (weight 0.15)" in record.average_note
    (ratio,) = record.ratios
    assert (ratio.name, ratio.numerator, ratio.denominator) == ("cq vs hcq", "cq", "hcq")
    assert ratio.p_gt_1 == pytest.approx(post.linear(cq - hcq).prob_greater(0.0), abs=2e-6)
    # Fewer deaths is better: a subgroup's P(benefit) is P(RR < 1), its d's P(< 0).
    hcq_d = post.linear(hcq)
    assert record.subgroups[0].p_benefit == pytest.approx(1 - hcq_d.prob_greater(0.0),
                                                          abs=1e-9)
    # The row average is d (the covariate is centred at the rows' mean).
    assert record.pooled_or.median == pytest.approx(math.exp(post.coefficient("d").median))
    assert record.mcse["p_ratio_gt_1[cq vs hcq]"] == 0.0
    assert exact_reach(design, PRIOR) is None


def test_exact_bayes_factors_for_every_coefficient(drug):
    design, post, _, _ = drug
    factors = exact_savage_dickey(design, PRIOR, posterior=post)
    assert [f.parameter for f in factors] == ["d", "beta[cq]"]
    beta = factors[1]
    # N(0, 1) prior on beta: its density at 0 is 1 / sqrt(2 pi).
    assert beta.prior_density == pytest.approx(1 / math.sqrt(2 * math.pi))
    assert beta.bf01 == pytest.approx(post.coefficient("cq").pdf(0.0) * math.sqrt(2 * math.pi))
    assert "no difference between subgroups" in beta.meaning


def test_fit_prints_the_exact_subgroup_record(capsys):
    code = main(["fit", "drug", "--data", str(HCQ), "--engine", "exact",
                 "--prior", "weakly_informative", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    record = json.loads(out)
    assert record["engine"] == "exact"
    rec = record["priors"]["weakly_informative"]
    assert set(rec["subgroups"]) == {"hcq", "cq"}
    assert rec["subgroup_ratios"]["cq vs hcq"]["p_gt_1"] == pytest.approx(0.8002, abs=5e-4)


@pytest.mark.slow
def test_nuts_agrees_with_the_exact_subgroup_record():
    from arviz_stats.base import array_stats

    from rebayes.bayes.quantities import subgroup_ratios, subgroup_rrs

    spec = resolve_spec("drug", str(HCQ), None, False)
    fit = rb.fit(spec, PRIOR, cache=False)
    exact = exact_summary(build_design(spec), PRIOR, trials=False)
    ratio = subgroup_ratios(fit.tree)["cq vs hcq"][2].values
    rrs = subgroup_rrs(fit.tree)
    checks = [(exact.ratios[0].ratio.median, ratio, 0.5),
              (exact.subgroups[0].rr.median, rrs["hcq"].values, 0.5),
              (exact.subgroups[1].rr.median, rrs["cq"].values, 0.5)]
    for value, draws, prob in checks:
        mcse = float(array_stats.mcse(draws, method="quantile", prob=prob))
        assert abs(np.quantile(draws, prob) - value) < 3 * mcse
    p = (ratio > 1).astype(float)
    mcse = max(float(array_stats.mcse(p, method="mean")),
               math.sqrt(exact.ratios[0].p_gt_1 * (1 - exact.ratios[0].p_gt_1) / p.size))
    assert abs(p.mean() - exact.ratios[0].p_gt_1) < 3 * mcse
