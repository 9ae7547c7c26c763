"""Convergence gates against independent references: iid draws, broken chains."""

import json
import math

import numpy as np
import pytest
import xarray as xr

from rebayes.checks.convergence import DiagnosticReport, diagnose, reported_quantities
from rebayes.checks.gates import Thresholds
from rebayes.checks.loo import (
    loo_by_trial,
)
from rebayes.checks.ppc import ppc_table
from rebayes.errors import RebayesError
from trees import CHAINS, DRAWS, N, fit_tree


@pytest.fixture(scope="module")
def iid_report():
    return diagnose(fit_tree())


def test_iid_draws_have_ess_near_the_number_of_draws_and_rhat_near_one(iid_report):
    table = iid_report.table
    # Independent draws: ESS ~ N and R-hat ~ 1 (Vehtari et al. 2021, section 3).
    assert table["ess_bulk"].between(0.8 * N, 1.25 * N).all()
    assert table["ess_tail"].between(0.7 * N, 1.3 * N).all()
    assert (table["rhat"] < 1.01).all()
    assert iid_report.ok and all(iid_report.gates.values())
    assert iid_report.failures == ()


def test_every_parameter_and_reported_quantity_is_a_row(iid_report):
    index = set(iid_report.table.index)
    for name in (
        "d",
        "tau",
        "z[r0]",
        "alpha[r2]",
        "pooled_rr",
        "pooled_or",
        "p_benefit",
        "p_rr_gt_1_1",
        "predictive_rr",
        "risk_difference",
        "trial_rr[r1]",
    ):
        assert name in index
    assert set(iid_report.table["kind"]) == {"parameter", "derived"}


def test_p_benefit_is_the_indicator_and_its_mcse_that_of_a_probability():
    tree = fit_tree(seed=3, d_mean=0.05, d_sd=0.1)
    report = diagnose(tree)
    # Common-effect binomial model: RR > 1 exactly when d > 0, whatever the baseline.
    d = tree["posterior"]["d"].values
    p = float((d > 0).mean())
    row = report.table.loc["p_benefit"]
    assert row["mean"] == pytest.approx(p, abs=1e-12)
    # iid draws: MCSE of a proportion is sqrt(p (1 - p) / N).
    assert row["mcse_mean"] == pytest.approx(math.sqrt(p * (1 - p) / N), rel=0.15)


def test_shifted_chain_fails_the_rhat_gate():
    report = diagnose(fit_tree(shift=0.3))
    assert report.table.loc["d", "rhat"] > 1.01
    assert not report.gates["rhat"] and not report.ok
    assert report.gates["divergences"] and report.gates["ebfmi"]
    (failure,) = [f for f in report.failures if f.startswith("R-hat")]
    assert "d" in failure and "pooled_rr" in failure
    assert "FAIL" in str(report) and "**FAIL**" in report.to_markdown()


def test_injected_divergences_fail_the_divergence_gate():
    report = diagnose(fit_tree(diverging=[(0, 5), (1, 7), (3, 999)]))
    assert report.divergences == 3
    assert report.gates == {
        "rhat": True,
        "ess_bulk": True,
        "ess_tail": True,
        "divergences": False,
        "ebfmi": True,
    }
    assert "3 of 4000 transitions" in report.failures[0]


def test_ebfmi_of_iid_energy_is_two_and_of_a_random_walk_fails():
    # E-BFMI = E[(E_t - E_{t-1})^2] / Var(E): 2 for independent energies (Betancourt 2016).
    ebfmi = diagnose(fit_tree()).ebfmi
    assert len(ebfmi) == CHAINS
    assert all(1.8 < v < 2.2 for v in ebfmi)
    walk = np.cumsum(np.random.default_rng(1).normal(size=(CHAINS, DRAWS)), axis=1)
    report = diagnose(fit_tree(energy=walk))
    assert max(report.ebfmi) < 0.3 and not report.gates["ebfmi"]


def test_a_quantity_that_never_varies_passes():
    report = diagnose(fit_tree(d_mean=3.0))  # every draw has RR > 1
    row = report.table.loc["p_benefit"]
    assert row["constant"] and row["mean"] == 1.0
    assert row["rhat_ok"] and row["ess_bulk_ok"] and row["ess_tail_ok"]
    assert report.ok


def test_thresholds_are_configurable():
    report = diagnose(fit_tree(), Thresholds(ess_min=2 * N))
    assert not report.gates["ess_bulk"] and not report.gates["ess_tail"]
    assert report.gate_label("ess_bulk") == "bulk ESS >= 8000"


def test_report_is_json_ready_and_readable(iid_report):
    record = json.loads(json.dumps(iid_report.to_dict(), allow_nan=False))
    assert record["ok"] is True
    assert set(record["gates"]) == {"rhat", "ess_bulk", "ess_tail", "divergences", "ebfmi"}
    assert record["quantities"]["p_benefit"]["kind"] == "derived"
    text = str(iid_report)
    assert "all gates pass" in text and "pooled_rr" in text and "alpha[r0]" not in text
    assert isinstance(iid_report, DiagnosticReport)


def test_missing_groups_are_user_errors():
    tree = fit_tree()
    bare = xr.DataTree.from_dict({"posterior": tree["posterior"].to_dataset()})
    with pytest.raises(RebayesError, match="sample_stats"):
        diagnose(bare)
    with pytest.raises(RebayesError, match="log_likelihood"):
        loo_by_trial(bare)
    with pytest.raises(RebayesError, match="posterior_predictive"):
        ppc_table(bare)


def test_reported_quantities_carry_subgroups_and_ratios():
    tree = fit_tree()
    tree["posterior"]["beta"] = xr.DataArray(
        np.random.default_rng(2).normal(0.5, 0.1, (CHAINS, DRAWS, 1)),
        dims=("chain", "draw", "coef"),
        coords={"coef": ["x"]},
    )
    constant = tree["constant_data"].to_dataset()
    constant["X"] = xr.DataArray(
        [[0.0], [1.0], [1.0]], dims=("row", "coef"), coords={"coef": ["x"]}
    )
    constant = constant.assign_coords(row_subgroup=("row", ["lo", "hi", "hi"]))
    tree["constant_data"] = xr.DataTree(constant)
    tree.attrs.update(subgroups_json='["lo", "hi"]', ratios_json='[["hi vs lo", "hi", "lo"]]')
    derived = reported_quantities(tree)
    assert list(derived["subgroup_rr"]["subgroup"].values) == ["lo", "hi"]
    assert list(derived["subgroup_ratio"]["ratio"].values) == ["hi vs lo"]
    # Same control risk in both subgroups: the RR ratio exceeds 1 exactly when beta > 0.
    beta = tree["posterior"]["beta"].values[..., 0]
    ratio = derived["subgroup_ratio"].sel(ratio="hi vs lo").values
    assert np.array_equal(ratio > 1, beta > 0)


def test_the_stacked_table_is_arviz_summary_of_each_group(iid_report):
    """All quantities are summarised at once (the diagnostics batched by
    :mod:`rebayes.checks.batched`); each row must be what ``arviz_stats.summary`` gives for
    that quantity in its own group, to rounding."""
    import warnings

    import arviz_stats as azs
    import pandas as pd

    tree = fit_tree()
    groups = {"parameter": tree["posterior"].to_dataset(), "derived": reported_quantities(tree)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = pd.concat([
            pd.DataFrame(azs.summary(data, kind="all", ci_kind="eti", ci_prob=0.95,
                                     sample_dims=["chain", "draw"], round_to="none"))
            .assign(kind=kind)
            for kind, data in groups.items()
        ])
    table = iid_report.table
    assert list(table.index) == list(expected.index)
    assert list(table["kind"]) == list(expected["kind"])
    pairs = {"mean": "mean", "sd": "sd", "ci_low": "eti95_lb", "ci_high": "eti95_ub",
             "ess_bulk": "ess_bulk", "ess_tail": "ess_tail", "rhat": "r_hat",
             "mcse_mean": "mcse_mean", "mcse_sd": "mcse_sd"}
    for ours, theirs in pairs.items():
        np.testing.assert_allclose(table[ours].to_numpy(float),
                                   expected[theirs].to_numpy(float), rtol=1e-10, err_msg=ours)
