"""PSIS-LOO by trial against exact leave-one-trial-out and the marginal likelihood."""

import json
import math

import numpy as np
import pytest
import xarray as xr
from scipy import integrate, stats

from conftest import pipe_rows
from rebayes.checks.gates import Thresholds
from rebayes.checks.loo import (
    loo_by_trial,
    loo_compare,
    marginal_log_likelihood,
    shared_data_groups,
)
from rebayes.errors import RebayesError
from trees import CHAINS, fit_tree

# --- PSIS-LOO by trial against exact leave-one-trial-out -------------------------------------

Y = np.array([0.9, 1.3, 0.4, 0.8, 1.6, 1.1, 0.7, 1.2])
SIGMA = np.array([0.6, 0.7, 0.5, 0.8, 0.7, 0.6, 0.9, 0.6])
TRIALS = ["t2", "t2", "t1", "t1", "t4", "t4", "t3", "t3"]  # not alphabetical on purpose


def conjugate_tree(prior_sd, seed=0, draws=2000):
    """y_s ~ N(mu, sigma_s), mu ~ N(0, prior_sd): exact posterior draws, pointwise log lik."""
    precision = 1 / prior_sd**2 + np.sum(1 / SIGMA**2)
    mean = np.sum(Y / SIGMA**2) / precision
    rng = np.random.default_rng(seed)
    mu = rng.normal(mean, precision**-0.5, (CHAINS, draws))
    loglik = stats.norm.logpdf(Y, mu[..., None], SIGMA)
    coords = {"row": [f"r{i}" for i in range(len(Y))], "row_study": ("row", TRIALS)}
    return xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset({"mu": (("chain", "draw"), mu)}),
            "log_likelihood": xr.Dataset(
                {"log_rr": (("chain", "draw", "row"), loglik)}, coords=coords
            ),
            "observed_data": xr.Dataset({"log_rr": ("row", Y)}, coords=coords),
        }
    )


def exact_loo(prior_sd):
    """log p(y_t | y_-t) per trial: multivariate normal with a shared-mean covariance."""
    out = {}
    for trial in dict.fromkeys(TRIALS):
        left = np.array([t == trial for t in TRIALS])
        precision = 1 / prior_sd**2 + np.sum(1 / SIGMA[~left] ** 2)
        mean = np.sum(Y[~left] / SIGMA[~left] ** 2) / precision
        cov = np.diag(SIGMA[left] ** 2) + 1 / precision
        out[trial] = stats.multivariate_normal(np.full(left.sum(), mean), cov).logpdf(Y[left])
    return out


def test_loo_by_trial_matches_exact_leave_one_trial_out():
    # No trial-level parameters here, so the plain per-trial sum is the right likelihood.
    loo = loo_by_trial(conjugate_tree(prior_sd=1.0), marginal=False)
    exact = exact_loo(1.0)
    assert list(loo.table.index) == ["t2", "t1", "t4", "t3"]
    for trial, value in exact.items():
        assert loo.table.loc[trial, "elpd_i"] == pytest.approx(value, abs=0.03)
    assert loo.elpd == pytest.approx(sum(exact.values()), abs=0.08)
    assert (loo.table["pareto_k"] < 0.7).all() and loo.high_k_trials == ()
    record = json.loads(json.dumps(loo.to_dict(), allow_nan=False))
    assert set(record["trials"]) == set(exact)


def test_high_pareto_k_is_flagged():
    loo = loo_by_trial(conjugate_tree(prior_sd=1.0), Thresholds(pareto_k_max=-1.0), marginal=False)
    assert loo.high_k_trials == ("t2", "t1", "t4", "t3")
    assert "unreliable" in str(loo)


def test_loo_compare_orders_analyses_as_exact_loo_does():
    # A prior far too narrow (sd 0.1 around 0) predicts left-out trials worse.
    trees = {"wide": conjugate_tree(1.0), "narrow": conjugate_tree(0.1, seed=1)}
    result = loo_compare(trees, marginal=False)
    exact = {name: sum(exact_loo(sd).values()) for name, sd in (("wide", 1.0), ("narrow", 0.1))}
    assert list(result.table.index) == ["wide", "narrow"]
    assert result.table.loc["narrow", "elpd_diff"] == pytest.approx(
        exact["narrow"] - exact["wide"], abs=0.15
    )
    assert result.table["weight"].sum() == pytest.approx(1.0)
    assert "narrow" in str(result)
    header, *rows = pipe_rows(result.to_markdown())
    assert header[0] == "Analysis" and [r[0] for r in rows] == ["wide", "narrow"]
    assert rows[0][-1] == "0 of 4"  # trials with k > 0.7
    json.dumps(result.to_dict(), allow_nan=False)


def test_shared_data_groups():
    other = conjugate_tree(1.0)
    other["observed_data"] = xr.DataTree(
        other["observed_data"].to_dataset().assign(log_rr=lambda ds: ds["log_rr"] + 1)
    )
    trees = {"a": conjugate_tree(1.0), "odd": other, "b": conjugate_tree(0.5), "c": other}
    assert shared_data_groups(trees) == [["a", "b"], ["odd", "c"]]
    assert shared_data_groups({"a": conjugate_tree(1.0), "odd": other}) == []


def test_loo_compare_refuses_different_rows():
    other = conjugate_tree(1.0)
    other["observed_data"] = xr.DataTree(
        other["observed_data"].to_dataset().assign(log_rr=lambda ds: ds["log_rr"] + 1)
    )
    with pytest.raises(RebayesError, match="same rows"):
        loo_compare({"a": conjugate_tree(1.0), "b": other}, marginal=False)
    with pytest.raises(RebayesError, match="at least two"):
        loo_compare({"a": conjugate_tree(1.0)})


# --- marginal (integrated) leave-one-trial-out -----------------------------------------------


def hierarchical_normal_tree(tau, seed=0, draws=2000):
    """log_rr_t ~ N(d + tau z_t, v_t), z_t ~ N(0, 1), d ~ N(0, 1), tau known: exact draws of d."""
    v = SIGMA**2
    total = v + tau**2  # the marginal variance of a trial's log RR given d
    precision = 1.0 + np.sum(1 / total)
    rng = np.random.default_rng(seed)
    d = rng.normal(np.sum(Y / total) / precision, precision**-0.5, (CHAINS, draws))
    rows = [f"t{i}" for i in range(len(Y))]
    coords = {"row": rows, "row_study": ("row", rows)}
    posterior = xr.Dataset(
        {
            "d": (("chain", "draw"), d),
            # tau is known; a 1e-9 jitter keeps its ESS defined for PSIS's relative efficiency.
            "tau": (("chain", "draw"), tau + 1e-9 * rng.standard_normal((CHAINS, draws))),
            "z": (("chain", "draw", "study"), rng.normal(size=(CHAINS, draws, len(Y)))),
        },
        coords={"study": rows},
    )
    theta = d[..., None]  # the fit's pointwise log likelihood conditions on z; unused here
    tree = xr.DataTree.from_dict(
        {
            "posterior": posterior,
            "log_likelihood": xr.Dataset(
                {"log_rr": (("chain", "draw", "row"), stats.norm.logpdf(Y, theta, SIGMA))},
                coords=coords,
            ),
            "constant_data": xr.Dataset(
                {"study_index": ("row", np.arange(len(Y))), "vi": ("row", v)},
                coords={**coords, "study": rows},
            ),
            "observed_data": xr.Dataset({"log_rr": ("row", Y)}, coords=coords),
        }
    )
    return tree, total


def test_marginal_loo_matches_exact_loo_of_the_hierarchical_normal_model():
    tau = 0.4
    tree, total = hierarchical_normal_tree(tau)
    loo = loo_by_trial(tree)
    assert loo.method == "marginal"
    for i, trial in enumerate(loo.table.index):
        keep = np.arange(len(Y)) != i
        precision = 1.0 + np.sum(1 / total[keep])
        mean = np.sum(Y[keep] / total[keep]) / precision
        exact = stats.norm.logpdf(Y[i], mean, math.sqrt(total[i] + 1 / precision))
        assert loo.table.loc[trial, "elpd_i"] == pytest.approx(exact, abs=0.02)
    assert loo.high_k_trials == ()


def test_marginal_likelihood_of_a_two_stratum_trial_is_bivariate_normal():
    tau = 0.5
    tree, _ = hierarchical_normal_tree(tau, draws=5)
    constant = tree["constant_data"].to_dataset()
    studies = ["a", "a", "b", "b", "c", "c", "d", "d"]  # two strata per trial share z
    constant = constant.assign_coords(row_study=("row", studies))
    tree["constant_data"] = xr.DataTree(constant)
    ll = marginal_log_likelihood(tree)["log_rr"]
    d = tree["posterior"]["d"].values
    for trial, rows in (("a", [0, 1]), ("d", [6, 7])):
        cov = np.diag(SIGMA[rows] ** 2) + tau**2
        for chain, draw in ((0, 0), (3, 4)):
            exact = stats.multivariate_normal(np.full(2, d[chain, draw]), cov).logpdf(Y[rows])
            assert float(ll.sel(trial=trial)[chain, draw]) == pytest.approx(exact, abs=1e-4)


def test_marginal_likelihood_of_a_binomial_trial_against_quadrature():
    tree = fit_tree(rows=2)
    tree.attrs["prior_json"] = json.dumps(
        {
            "name": "p",
            "effect": {"family": "normal", "mu": 0.0, "sigma": 1.0},
            "tau": {"family": "half_normal", "sigma": 0.5},
            "baseline": {"family": "normal", "mu": 0.0, "sigma": 2.0},
            "covariate": {"family": "normal", "mu": 0.0, "sigma": 1.0},
        }
    )
    observed = xr.Dataset(
        {"events": (("row", "arm"), [[11, 18], [0, 3]])},
        coords={
            "row": ["r0", "r1"],
            "row_study": ("row", ["r0", "r1"]),
            "arm": ["control", "treat"],
        },
    )
    tree["observed_data"] = xr.DataTree(observed)
    constant = tree["constant_data"].to_dataset()
    constant["n"] = xr.DataArray([[32, 29], [17, 17]], dims=("row", "arm"))
    tree["constant_data"] = xr.DataTree(constant)
    ll = marginal_log_likelihood(tree)["events"]
    post = tree["posterior"]
    for row, (yc, yt), (nc, nt) in ((0, (11, 18), (32, 29)), (1, (0, 3), (17, 17))):
        for chain, draw in ((0, 0), (2, 7)):
            d, tau = float(post["d"][chain, draw]), float(post["tau"][chain, draw])

            def integrand(a, z, yc=yc, yt=yt, nc=nc, nt=nt, d=d, tau=tau):
                theta = d + tau * z  # the model's arm coding: a -+ theta / 2
                pc = 1 / (1 + math.exp(-(a - theta / 2)))
                pt = 1 / (1 + math.exp(-(a + theta / 2)))
                return (
                    math.comb(nc, yc)
                    * pc**yc
                    * (1 - pc) ** (nc - yc)
                    * math.comb(nt, yt)
                    * pt**yt
                    * (1 - pt) ** (nt - yt)
                    * math.exp(-a * a / 8)
                    / math.sqrt(8 * math.pi)  # N(a; 0, 2)
                    * math.exp(-z * z / 2)
                    / math.sqrt(2 * math.pi)  # N(z; 0, 1)
                )

            value, _ = integrate.dblquad(integrand, -8, 8, -9, 9, epsabs=1e-14)
            got = float(ll.sel(trial=f"r{row}")[chain, draw])
            assert got == pytest.approx(math.log(value), abs=2e-3)
