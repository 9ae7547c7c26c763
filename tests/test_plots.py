"""Figures: each returns a matplotlib Figure with the panels, labels and titles it promises."""

import numpy as np
import pytest
import xarray as xr
from matplotlib.figure import Figure

from conftest import ivig_spec
from rebayes.bayes.priors import get_prior
from rebayes.bayes.settings import SamplerSettings
from rebayes.checks.loo import loo_by_trial
from rebayes.plots import (
    pareto_k_plot,
    ppc_plot,
    prior_from_tree,
    prior_posterior_plot,
    rank_plot,
    trace_plot,
)
from rebayes.sensitivity.comparison import compare_posteriors

QUICK = SamplerSettings(draws=300, tune=300, chains=2, min_ess=0)


@pytest.fixture(scope="module")
def comparison():
    spec = ivig_spec("timing")
    return compare_posteriors(
        spec, ["weakly_informative", "skeptical"], ["published", "seed_fit"], settings=QUICK
    )


@pytest.fixture(scope="module")
def tree(comparison):
    return comparison.fits[0].tree


def saved(fig, tmp_path, name):
    assert isinstance(fig, Figure)
    path = tmp_path / f"{name}.png"
    fig.savefig(path, dpi=60)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = fig.get_size_inches()
    assert 5 <= width <= 25 and 2 <= height <= 25  # readable at 100% zoom, not a poster
    return fig


def titles(fig):
    return [ax.get_title() for ax in fig.axes]


def test_rank_plot(tree, tmp_path):
    fig = saved(rank_plot(tree), tmp_path, "rank")
    assert "Rank plots" in fig.get_suptitle() and "timing" in fig.get_suptitle()
    assert len([ax for ax in fig.axes if ax.get_xlabel()]) == 4  # d, beta, tau, pooled_rr


def _rank_p_values(fig):
    """The multi-chain test's p of each panel ("p=0.14(α=0.01)")."""
    return [float(t.get_text().split("(")[0].removeprefix("p="))
            for ax in fig.axes for t in ax.texts if t.get_text().startswith("p=")]


def test_rank_plot_tests_the_chains_on_thinned_draws(tree):
    # Chains of one converged fit agree (each p >= 0.01 on thinned draws); shifting one chain's
    # d by 1 (about 3 posterior SDs) makes them disagree.
    assert min(_rank_p_values(rank_plot(tree, ["d", "tau"]))) >= 0.01
    posterior = tree["posterior"].to_dataset()
    shifted = tree.copy()
    shifted["posterior"] = posterior.assign(d=posterior["d"] + xr.DataArray([0.0, 1.0],
                                                                           dims="chain"))
    assert _rank_p_values(rank_plot(shifted, ["d"]))[0] < 0.01


def test_trace_plot_has_units(tree, tmp_path):
    fig = saved(trace_plot(tree, ["d", "tau"]), tmp_path, "trace")
    labels = {ax.get_xlabel() for ax in fig.axes} | {ax.get_ylabel() for ax in fig.axes}
    assert "d (log OR)" in labels and "tau (log OR scale)" in labels


def test_ppc_plot_has_one_panel_per_arm_and_every_trial(tree, tmp_path):
    fig = saved(ppc_plot(tree), tmp_path, "ppc")
    # The arms and the outcome are named from the fit's attrs (the dataset's labels).
    assert titles(fig) == [f"{tree.attrs['control']} arm", f"{tree.attrs['treatment']} arm"]
    rows = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert rows == list(tree["observed_data"]["row"].values)
    assert fig.axes[0].get_xlabel() == (
        f"participants with {tree.attrs['outcome']} / participants in the arm"
    )


def test_ppc_plot_of_the_normal_model(tmp_path):
    rng = np.random.default_rng(0)
    coords = {"row": ["a", "b", "c"], "row_study": ("row", ["a", "b", "c"])}
    tree = xr.DataTree.from_dict(
        {
            "posterior_predictive": xr.Dataset(
                {"log_rr": (("chain", "draw", "row"), rng.normal(0, 0.3, (2, 200, 3)))},
                coords=coords,
            ),
            "observed_data": xr.Dataset({"log_rr": ("row", [0.1, -0.2, 2.0])}, coords=coords),
        }
    )
    fig = saved(ppc_plot(tree), tmp_path, "ppc_normal")
    assert titles(fig) == ["log RR per row"]


def test_prior_posterior_plot(tree, tmp_path):
    assert prior_from_tree(tree).to_dict() == get_prior("weakly_informative").to_dict()
    fig = saved(prior_posterior_plot(tree), tmp_path, "prior_posterior")
    assert [t for t in titles(fig) if t] == ["d", "beta[pre_conception]", "tau"]
    assert "Prior vs posterior" in fig.get_suptitle()


def test_pareto_k_plot(tree, tmp_path):
    loo = loo_by_trial(tree)
    fig = saved(pareto_k_plot(loo, "timing"), tmp_path, "pareto_k")
    names = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert names == [str(t) for t in loo.table.index]


def test_posterior_overlay_has_a_panel_per_variant(comparison, tmp_path):
    fig = saved(comparison.plot(kind="posteriors"), tmp_path, "overlay")
    assert titles(fig) == ["published data", "seed_fit data"]
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    solid = [line for line in ax.get_lines() if line.get_linestyle() == "-"]
    dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert len(dashed) == 2 and len(solid) == 3  # two posteriors and the RR = 1 line


def test_sensitivity_plot_rows_and_ratio_panel(comparison, tmp_path):
    fig = saved(comparison.plot(), tmp_path, "sensitivity")
    rows = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert rows == [
        "weakly_informative | published", "skeptical | published",
        "weakly_informative | seed_fit", "skeptical | seed_fit",
    ]
    assert any("RR ratio pre_conception vs post_conception" in t for t in titles(fig))
    texts = [t.get_text() for t in fig.axes[-1].texts]
    assert "P(RR>1)" in texts
    p, mcse = comparison.table[["p_benefit", "p_benefit_mcse"]].iloc[0]
    # Within two Monte Carlo SEs of 0.95 the value is marked at the line.
    assert f"{p:.3f}" + (" ≈" if abs(p - 0.95) < 2 * mcse else "") in texts
