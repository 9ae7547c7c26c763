"""Batched power-scaling sensitivity against arviz-stats' own psense, quantity by quantity."""

import warnings

import arviz_stats as azs
import numpy as np
import pytest
import xarray as xr
from scipy import stats

from rebayes.sensitivity.psense import power_scale_sensitivity, prior_sensitivity


def _tree(seed=0, prior_sd=0.3):
    """A two-parameter normal model with exact-ish draws and awkward extra quantities."""
    rng = np.random.default_rng(seed)
    y = rng.normal(0.5, 1.0, 15)
    d = rng.normal(y.mean() * 15 / (15 + prior_sd**-2), (15 + prior_sd**-2) ** -0.5, (4, 500))
    tau = np.abs(rng.normal(0.2, 0.1, (4, 500)))
    quantities = xr.Dataset(
        {
            "d": (("chain", "draw"), d),
            "tau": (("chain", "draw"), tau),
            # a vector with named cells, ties, an indicator (a probability's draws)
            "rr": (("chain", "draw", "group"), np.exp(np.stack([d, d + tau], axis=-1)),
                   ),
            "rounded": (("chain", "draw"), np.round(d, 1)),
            "p_benefit": (("chain", "draw"), (d > 0.4).astype(float)),
        },
        coords={"group": ["pre", "post"]},
    )
    return xr.DataTree.from_dict(
        {
            "posterior": quantities,
            "log_prior": xr.Dataset({
                "d": (("chain", "draw"), stats.norm.logpdf(d, 0, prior_sd)),
                "tau": (("chain", "draw"), stats.halfnorm.logpdf(tau, scale=0.5)),
            }),
            "log_likelihood": xr.Dataset(
                {"y": (("chain", "draw", "obs"), stats.norm.logpdf(y, d[..., None], 1.0))}
            ),
        }
    )


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("component", ["prior", "likelihood"])
def test_each_quantity_equals_arviz_stats_psense(seed, component):
    tree = _tree(seed)
    reference = azs.psense(tree, group=component)
    group = tree["log_prior" if component == "prior" else "log_likelihood"].to_dataset()
    summed = sum(v.values.reshape(4, 500, -1).sum(axis=2) for v in group.data_vars.values())
    expected = np.concatenate([np.ravel(reference[v].values)
                               for v in tree["posterior"].data_vars])
    values = np.concatenate([v.transpose("chain", "draw", ...).values.reshape(4, 500, -1)
                             for v in tree["posterior"].data_vars.values()], axis=2)
    ours = power_scale_sensitivity(values, summed)
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-15)
    assert (ours > 0).all()


def test_a_constant_quantity_gives_nan_as_arviz_stats_does():
    tree = _tree()
    constant = np.ones((4, 500, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        reference = azs.psense(xr.DataTree.from_dict({
            "posterior": xr.Dataset({"c": (("chain", "draw"), constant[..., 0])}),
            "log_prior": tree["log_prior"].to_dataset(),
        }), group="prior")
    assert np.isnan(reference["c"].item())
    ours = power_scale_sensitivity(constant, tree["log_prior"]["d"].values)
    assert np.isnan(ours).all()


def test_the_table_equals_arviz_stats_psense_summary():
    tree = _tree(2, prior_sd=0.05)
    # prior_sensitivity reads d, beta and tau of a bare tree (no constant data to derive
    # the RRs from).
    reference = azs.psense_summary(tree, var_names=["d", "tau"], threshold=0.05, round_to=6)
    ours = prior_sensitivity(tree).table
    assert list(ours.index) == list(reference.index)
    np.testing.assert_allclose(ours[["prior", "likelihood"]].to_numpy(float),
                               reference[["prior", "likelihood"]].to_numpy(float), rtol=0,
                               atol=1.1e-6)
    assert list(ours["diagnosis"]) == list(reference["diagnosis"])
    # The strong prior (sd 0.05 against a likelihood sd of 0.26) drives d.
    assert ours.loc["d", "prior"] > 0.05
