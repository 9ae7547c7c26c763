"""Effects as pure functions of draws, checked by hand on small hand-made DataTrees."""

import json
import math

import numpy as np
import pytest
import xarray as xr
from scipy.special import expit, logit

from rebayes.bayes.baseline import ControlRisk
from rebayes.bayes.quantities import (
    control_risk,
    estimate,
    number_needed_to_treat,
    pooled_or,
    pooled_rr,
    predictive_rr,
    subgroup_ratios,
    subgroup_rrs,
    trial_rrs,
    typical_control_risk,
)
from rebayes.bayes.records import NNT
from rebayes.bayes.summary import summarize

CHAINS, DRAWS = 2, 50
ISSUE_KEYS = {
    "pooled_rr",
    "pooled_or",
    "predictive_rr",
    "tau",
    "p_benefit",
    "p_rr_gt_1_1",
    "p_rr_gt_1_25",
    "subgroups",
    "diagnostics",
}


def const(value, *shape):
    return np.full((CHAINS, DRAWS, *shape), value, dtype=float)


def make_tree(
    d,
    tau,
    z,
    alpha=None,
    *,
    study_index,
    beta=None,
    X=None,
    groups=None,
    group_index=None,
    row_subgroup=None,
    subgroups=(),
    ratios=(),
    events=None,
    n=None,
    diverging=0,
    seed=1,
):
    """A fit-shaped DataTree: posterior, constant_data, observed_data, sample_stats, attrs."""
    n_rows = len(study_index)
    rows = [f"r{i}" for i in range(n_rows)]
    posterior = {"tau": (("chain", "draw"), tau), "z": (("chain", "draw", "study"), z)}
    posterior["d"] = (("chain", "draw", "subgroup"), d) if groups else (("chain", "draw"), d)
    if beta is not None:
        posterior["beta"] = (("chain", "draw", "coef"), beta)
    if alpha is not None:
        posterior["alpha"] = (("chain", "draw", "row"), alpha)
    coords = {
        "row": rows,
        "study": [f"s{i}" for i in range(z.shape[-1])],
        "arm": ["control", "treat"],
    }
    if groups:
        coords["subgroup"] = list(groups)
    constant = {"study_index": ("row", np.asarray(study_index))}
    if group_index is not None:
        constant["group_index"] = ("row", np.asarray(group_index))
    if X is not None:
        constant["X"] = (("row", "coef"), np.asarray(X, float))
    n = np.full((n_rows, 2), 100) if n is None else np.asarray(n)
    events = np.full((n_rows, 2), 50) if events is None else np.asarray(events)
    constant["n"] = (("row", "arm"), n)
    observed = {}
    if alpha is None:
        constant["events"] = (("row", "arm"), events)
        observed["log_rr"] = ("row", np.zeros(n_rows))
    else:
        observed["events"] = (("row", "arm"), events)
    labels = list(row_subgroup) if row_subgroup is not None else [""] * n_rows
    constant_ds = xr.Dataset(constant, coords={**coords, "row_subgroup": ("row", labels)})
    diverging_arr = np.zeros((CHAINS, DRAWS), bool)
    diverging_arr.flat[:diverging] = True
    tree = xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset(posterior, coords=coords),
            "constant_data": constant_ds,
            "observed_data": xr.Dataset(observed, coords={"row": rows, "arm": coords["arm"]}),
            "sample_stats": xr.Dataset({"diverging": (("chain", "draw"), diverging_arr)}),
        }
    )
    tree.attrs = {
        "seed": seed,
        "analysis": "hand",
        "subgroups_json": json.dumps(list(subgroups)),
        "ratios_json": json.dumps([list(r) for r in ratios]),
    }
    return tree


def two_row_tree(**kwargs):
    # Row 0: control risk 0.5; row 1: control risk 0.6. d = log 2 in every draw. The arms are
    # coded -+1/2 (control log odds alpha - theta / 2): alpha adds half of each row's theta.
    theta = [math.log(2) + 0.5, math.log(2) - 0.5]  # tau 0.5, z = +1, -1
    alpha = np.stack([const(0.0 + theta[0] / 2), const(logit(0.6) + theta[1] / 2)], axis=-1)
    return make_tree(
        const(math.log(2)),
        kwargs.pop("tau", const(0.5)),
        np.stack([const(1.0), const(-1.0)], axis=-1),
        alpha,
        study_index=[0, 1],
        **kwargs,
    )


def test_pooled_rr_at_the_median_observed_control_risk_by_hand():
    # Observed control risks 20/100 and 60/100: p0 is their median, 0.4, whatever the draws
    # say of the baselines (one stated control risk per analysis).
    tree = two_row_tree(events=[[20, 30], [60, 70]])
    p0 = 0.4
    odds = p0 / (1 - p0) * 2  # OR 2: odds 4/3, risk 4/7
    expected = odds / (1 + odds) / p0  # (4/7) / 0.4 = 1.428571...
    np.testing.assert_allclose(typical_control_risk(tree), p0)
    assert control_risk(tree) == ControlRisk(0.4, "median", 2, 0.4)
    assert control_risk(tree).sentence() == (
        "at a control risk of 40%, the median of the 2 trials' control arms")
    np.testing.assert_allclose(pooled_rr(tree), expected)
    np.testing.assert_allclose(pooled_or(tree), 2.0)
    assert expected == pytest.approx(10 / 7)
    summary = summarize(tree)
    assert summary.control_risk.value == p0 and summary.to_dict()["control_risk"]["value"] == p0


def test_trial_rrs_use_each_rows_own_baseline_and_random_effect():
    tree = two_row_tree()
    rr = trial_rrs(tree)
    theta0, theta1 = math.log(2) + 0.5 * 1.0, math.log(2) + 0.5 * -1.0
    np.testing.assert_allclose(rr.sel(row="r0"), expit(theta0) / 0.5)
    np.testing.assert_allclose(rr.sel(row="r1"), expit(logit(0.6) + theta1) / 0.6)


def test_predictive_equals_pooled_when_tau_is_zero_and_spreads_otherwise():
    tree = two_row_tree(tau=const(0.0))
    np.testing.assert_allclose(predictive_rr(tree), pooled_rr(tree))
    wide = predictive_rr(two_row_tree(tau=const(1.0)))
    assert float(wide.std()) > 0.05
    # Same seed, same new-trial draws.
    np.testing.assert_array_equal(wide, predictive_rr(two_row_tree(tau=const(1.0))))


def test_separate_subgroups_and_their_ratio():
    # Three rows in two subgroups: a (rows 0, 1) with d_a = 0, b (row 2) with d_b = log 3.
    d = np.stack([const(0.0), const(math.log(3))], axis=-1)
    # Control risks 0.5 (p0 = 0.5): alpha = control log odds + theta / 2 (arms coded -+1/2).
    alpha = np.stack([const(0.0), const(0.0), const(math.log(3) / 2)], axis=-1)
    tree = make_tree(
        d,
        const(0.3),
        np.zeros((CHAINS, DRAWS, 3)),
        alpha,
        study_index=[0, 1, 2],
        groups=("a", "b"),
        group_index=[0, 0, 1],
        row_subgroup=["a", "a", "b"],
        subgroups=("a", "b"),
        ratios=[("b vs a", "b", "a")],
    )
    rrs = subgroup_rrs(tree)
    np.testing.assert_allclose(rrs["a"], 1.0)
    np.testing.assert_allclose(rrs["b"], 0.75 / 0.5)  # odds 1 x 3 -> risk 0.75
    name, (num, den, ratio) = next(iter(subgroup_ratios(tree).items()))
    assert (name, num, den) == ("b vs a", "b", "a")
    np.testing.assert_allclose(ratio, 1.5)
    # Pooled effect: average of the rows' expected effects, (0 + 0 + log 3) / 3: a row
    # average, named so, with a weighing 2 rows of 3.
    np.testing.assert_allclose(pooled_or(tree), 3 ** (1 / 3))
    from rebayes.bayes.quantities import average_weights, pooled_kind

    assert pooled_kind(tree) == "row-average"
    assert average_weights(tree) == pytest.approx({"a": 2 / 3, "b": 1 / 3})


def test_contrast_subgroups_average_their_rows_design():
    # d = 0.2, beta = 0.5 on an indicator: subgroup "x" (X = 1) has log OR 0.7.
    alpha = np.stack([const(0.2 / 2), const(0.7 / 2)], axis=-1)  # control risks 0.5
    tree = make_tree(
        const(0.2),
        const(0.0),
        np.zeros((CHAINS, DRAWS, 2)),
        alpha,
        study_index=[0, 1],
        beta=const(0.5, 1),
        X=[[0.0], [1.0]],
        row_subgroup=["ref", "x"],
        subgroups=("ref", "x"),
    )
    rrs = subgroup_rrs(tree)
    np.testing.assert_allclose(rrs["ref"], expit(0.2) / 0.5)
    np.testing.assert_allclose(rrs["x"], expit(0.7) / 0.5)
    np.testing.assert_allclose(pooled_or(tree), math.exp(0.2 + 0.5 / 2))


def test_normal_model_reports_rr_directly_and_no_or():
    tree = make_tree(
        const(math.log(1.2)),
        const(0.0),
        np.zeros((CHAINS, DRAWS, 2)),
        study_index=[0, 1],
        events=[[30, 40], [45, 50]],
        n=[[60, 60], [90, 100]],
    )
    np.testing.assert_allclose(pooled_rr(tree), 1.2)
    assert pooled_or(tree) is None
    np.testing.assert_allclose(typical_control_risk(tree), (30 / 60 + 45 / 90) / 2)


def test_estimate_quantiles_and_hdi_by_hand():
    values = np.arange(1001) / 1000  # quantiles are exact
    e = estimate(values)
    assert (e.median, e.mean) == pytest.approx((0.5, 0.5))
    assert (e.ci_low, e.ci_high) == pytest.approx((0.025, 0.975))
    # Skewed: 96% of the draws at 0, so the 95% HDI is [0, 0] while the ETI is not.
    skewed = estimate(np.concatenate([np.zeros(960), np.arange(1, 41)]))
    assert (skewed.hdi_low, skewed.hdi_high) == (0.0, 0.0)
    assert skewed.ci_high > 0


def test_nnt_follows_altman():
    benefit = number_needed_to_treat(xr.DataArray(np.linspace(0.05, 0.15, 1001)))
    assert benefit.kind == "benefit"
    assert benefit.value == pytest.approx(10.0)
    assert benefit.interval.startswith("NNTB ") and "inf" not in benefit.interval
    spanning = number_needed_to_treat(xr.DataArray(np.linspace(-0.05, 0.15, 1001)))
    assert spanning.kind == "benefit" and spanning.value == pytest.approx(20.0)
    lo, hi = spanning.risk_difference.ci_low, spanning.risk_difference.ci_high
    assert spanning.interval == f"NNTH {1 / -lo:.1f} to inf to NNTB {1 / hi:.1f}"
    harm = number_needed_to_treat(xr.DataArray(np.linspace(-0.3, -0.1, 1001)))
    assert harm.kind == "harm" and str(harm).startswith("NNTH 5.0")
    assert isinstance(harm, NNT)


def test_summary_json_layout_and_text():
    rng = np.random.default_rng(0)
    alpha = np.stack([const(0.0), const(logit(0.6))], axis=-1)
    tree = make_tree(
        rng.normal(0.2, 0.1, (CHAINS, DRAWS)),
        np.abs(rng.normal(0, 0.2, (CHAINS, DRAWS))),
        rng.normal(size=(CHAINS, DRAWS, 2)),
        alpha + rng.normal(0, 0.05, alpha.shape),
        study_index=[0, 1],
        diverging=3,
    )
    summary = summarize(tree)
    record = summary.to_dict()
    assert ISSUE_KEYS <= set(record)
    assert set(record["pooled_rr"]) >= {"median", "mean", "ci_low", "ci_high"}
    assert set(record["diagnostics"]) == {"ok", "rhat_max", "ess_bulk_min", "ess_tail_min",
                                          "divergences", "ebfmi_min", "failures"}
    assert record["diagnostics"]["divergences"] == 3
    # The hand-made tree declares no direction: no benefit keys, the literal ones instead.
    assert record["direction"]["declared"] is False and record["direction"]["benefit"] is None
    assert record["p_benefit"] is None and record["p_harm"] is None
    assert record["nnt"]["nnt"] is None and record["nnt"]["kind"] is None
    assert record["p_rr_gt_1"] + record["p_rr_lt_1"] == pytest.approx(1.0)
    assert record["p_rr_gt_1_1"] <= record["p_rr_gt_1"]
    assert record["p_rr_lt_0_8"] <= record["p_rr_lt_0_91"] <= record["p_rr_lt_1"]
    json.dumps(record, allow_nan=False)
    text = str(summary)
    assert "at a control risk of" in text and "Pooled RR*" in text and "CHECK" in text


def _three_row_regression(tau):
    # Rows: two of subgroup "ref" (X = 0), one of "x" (X = 1); d = 0.2, beta = 0.5, every
    # control risk 0.5 (alpha carries half of each row's theta).
    alpha = np.stack([const(0.1), const(0.1), const(0.35)], axis=-1)
    return make_tree(
        const(0.2),
        const(tau),
        np.zeros((CHAINS, DRAWS, 3)),
        alpha,
        study_index=[0, 1, 2],
        beta=const(0.5, 1),
        X=[[0.0], [0.0], [1.0]],
        row_subgroup=["ref", "ref", "x"],
        subgroups=("ref", "x"),
        seed=7,
    )


def test_meta_regression_average_is_named_with_its_row_weights():
    from rebayes.bayes.quantities import average_description, average_weights, pooled_kind

    tree = _three_row_regression(0.0)
    # Each row weighs the same: "ref" has 2 of 3 rows, "x" 1 of 3.
    assert average_weights(tree) == pytest.approx({"ref": 2 / 3, "x": 1 / 3})
    assert pooled_kind(tree) == "row-average"
    note = average_description(tree)
    assert "ref 2 rows (weight 0.67), x 1 rows (weight 0.33)" in note
    assert "not the overall analysis" in note
    # The row average of the log ORs: 0.2 + 0.5 / 3.
    np.testing.assert_allclose(pooled_or(tree), math.exp(0.2 + 0.5 / 3))
    s = summarize(tree)
    assert s.pooled_kind == "row-average" and s.to_dict()["average_note"] == note
    assert "Row-average RR*" in str(s)
    # A common-effect fit keeps its plain name.
    assert pooled_kind(two_row_tree()) == "pooled" and average_description(two_row_tree()) == ""


def test_continuous_meta_regression_average_is_d_at_the_mean_covariate(write_csv):
    from rebayes.bayes.design import build_design
    from rebayes.bayes.quantities import average_description
    from rebayes.bayes.spec import AnalysisSpec

    path = write_csv("study,events_treat,n_treat,events_control,n_control,dose\n"
                     "A,5,10,4,10,20\nB,6,10,5,10,50\n")
    design = build_design(AnalysisSpec("x", data=str(path), effect="contrast", covariates="dose"))
    alpha = np.stack([const(0.0), const(0.0)], axis=-1)
    tree = make_tree(const(0.2), const(0.0), np.zeros((CHAINS, DRAWS, 2)), alpha,
                     study_index=[0, 1], beta=const(0.5, 1), X=design.X.tolist())
    tree.attrs["intercept_at"] = design.intercept_at
    # Mean dose over the rows: (20 + 50) / 2 = 35; the design centres the column there.
    assert average_description(tree).startswith(
        "the effect at dose = 35 (the mean of the 2 analysed rows);")
    # The row average of the log ORs, 0.2 + 0.5 * (-15 + 15) / 2, is d itself.
    np.testing.assert_allclose(pooled_or(tree), math.exp(0.2))
    assert summarize(tree).intercept_at == "at dose = 35 (the mean of the 2 analysed rows)"


def test_subgroup_predictive_rr_by_hand():
    from rebayes.bayes.quantities import subgroup_predictive_rrs

    tree = _three_row_regression(0.3)
    pred = subgroup_predictive_rrs(tree)
    # theta_new = subgroup log OR + tau * eps, eps from the fit's seed and stream 4 (the
    # predictive RR's); RR at the typical control risk p0 = 0.5.
    eps = np.random.default_rng([7, 4]).standard_normal((CHAINS, DRAWS))
    for name, log_or in (("ref", 0.2), ("x", 0.7)):
        np.testing.assert_allclose(pred[name], expit(log_or + 0.3 * eps) / 0.5)
    s = summarize(tree)
    by_name = {g.name: g for g in s.subgroups}
    assert by_name["x"].predictive.ci_low < by_name["x"].rr.ci_low
    assert s.to_dict()["subgroups"]["x"]["predictive_rr"]["median"] == pytest.approx(
        by_name["x"].predictive.median)
