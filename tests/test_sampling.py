"""Sampling against exact answers, reproducibility, prior sensitivity, the fit cache."""

import math
from pathlib import Path

import arviz_stats as azs
import numpy as np
import pytest
import xarray as xr
from scipy import integrate, stats

from conftest import ivig_spec
from rebayes.bayes.design import build_design, prior_on_model_scale
from rebayes.bayes.fit import fit, fit_priors
from rebayes.bayes.priors import get_prior
from rebayes.bayes.settings import SamplerSettings
from rebayes.bayes.summary import summarize
from rebayes.bayes.trees import with_derived_groups
from rebayes.errors import RebayesError
from rebayes.store.fits import STORED_GROUPS, flush_cache, load_fit

ROOT = Path(__file__).resolve().parents[1]
OVERALL = ivig_spec("overall")
NORMAL = ivig_spec("normal_approximation")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REBAYES_CACHE", str(tmp_path / "cache"))


def exact_normal_normal(yi, vi, prior):
    """Posterior means of d and tau in the normal-normal model, by numerical integration.

    Given tau, d is conjugate: y ~ N(m0 1, diag(vi + tau^2) + s0^2 1 1'), and d | tau, y is
    normal. The tau margin is integrated with scipy's adaptive quadrature (as bayesmeta does).
    """
    m0, s0 = prior.effect.mu, prior.effect.sigma
    tau_pdf = prior.tau.frozen().pdf
    k = len(yi)

    def log_marginal(tau):
        cov = np.diag(vi + tau**2) + s0**2 * np.ones((k, k))
        return stats.multivariate_normal(np.full(k, m0), cov).logpdf(yi)

    ref = log_marginal(0.1)  # scale factor against underflow

    def weight(tau):
        return tau_pdf(tau) * math.exp(log_marginal(tau) - ref)

    def d_mean(tau):
        w = 1 / (vi + tau**2)
        return (m0 / s0**2 + (w * yi).sum()) / (1 / s0**2 + w.sum())

    def quad(f):
        parts = [(0, 0.5), (0.5, 2), (2, np.inf)]
        return sum(integrate.quad(f, a, b, limit=200, epsabs=1e-13)[0] for a, b in parts)

    norm = quad(weight)
    return {
        "d": quad(lambda t: d_mean(t) * weight(t)) / norm,
        "tau": quad(lambda t: t * weight(t)) / norm,
    }


@pytest.mark.parametrize("prior_name", ["weakly_informative", "heavy_tailed", "turner_obstetric"])
def test_normal_normal_posterior_matches_numerical_integration(prior_name):
    prior = get_prior(prior_name)
    result = fit(NORMAL, prior, cache=False)
    design = result.design
    # The normal model puts the prior on the log RR scale (at the median control risk): the
    # quadrature uses the prior the model used.
    exact = exact_normal_normal(design.yi, design.vi, prior_on_model_scale(prior, design))
    posterior = result.tree["posterior"]
    for name in ("d", "tau"):
        draws = posterior[name]
        mcse = float(azs.mcse(draws, method="mean"))
        estimate = float(draws.mean())
        assert abs(estimate - exact[name]) < 3 * mcse, (name, estimate, exact[name], mcse)


def test_same_seed_same_numbers_different_seed_different_draws():
    first = fit(OVERALL, "skeptical", cache=False).summary().to_dict()
    again = fit(OVERALL, "skeptical", cache=False).summary().to_dict()
    assert first == again
    other = fit(OVERALL, "skeptical", cache=False, seed=7)
    assert other.summary().to_dict()["pooled_rr"] != first["pooled_rr"]
    # ... but it estimates the same posterior.
    assert other.summary().pooled_rr.median == pytest.approx(first["pooled_rr"]["median"], abs=0.02)


def test_priors_move_the_posterior_where_they_should():
    fits = {
        f.prior.name: f
        for f in fit_priors(
            OVERALL,
            [
                "skeptical",
                "enthusiastic",
                "conservative_heterogeneity",
                "turner_obstetric",
                "vague",
            ],
            cache=False,
        )
    }
    d = {name: float(f.tree["posterior"]["d"].median()) for name, f in fits.items()}
    tau = {name: float(f.tree["posterior"]["tau"].median()) for name, f in fits.items()}
    # Effect priors: centred on OR 1.5 vs on OR 1 with the same spread of belief.
    assert d["enthusiastic"] > d["skeptical"] + 0.05
    assert (
        summarize(fits["enthusiastic"].tree).p_benefit > summarize(fits["skeptical"].tree).p_benefit
    )
    # Heterogeneity priors: Turner's (median tau 0.17, most mass below 0.5) vs HalfNormal(1).
    assert tau["turner_obstetric"] < tau["conservative_heterogeneity"]
    assert tau["vague"] > tau["turner_obstetric"]


def test_fit_is_cached_as_netcdf_with_every_group():
    result = fit(OVERALL, "weakly_informative", settings=SamplerSettings(draws=300, min_ess=0))
    flush_cache()
    assert result.path is not None and result.path.is_file() and not result.from_cache
    assert result.path.suffix == ".nc"
    assert set(load_fit(result.path).children) == set(STORED_GROUPS)  # the rest is recomputed
    tree = with_derived_groups(load_fit(result.path))
    groups = set(tree.children)
    assert {
        "posterior",
        "posterior_predictive",
        "prior",
        "prior_predictive",
        "log_likelihood",
        "log_prior",
        "sample_stats",
        "observed_data",
        "constant_data",
    } <= groups
    assert tree["log_likelihood"]["events"].dims == ("chain", "draw", "row", "arm")
    assert tree["posterior_predictive"]["events"].dims == ("chain", "draw", "row", "arm")
    assert {"diverging", "energy"} <= set(tree["sample_stats"].data_vars)
    assert list(tree["log_likelihood"]["row_study"].values) == list(result.design.row_study)
    assert set(tree["prior"].data_vars) >= {"d", "tau"}
    # Read back: same numbers, no sampling.
    again = fit(OVERALL, "weakly_informative", settings=SamplerSettings(draws=300, min_ess=0))
    assert again.from_cache and again.key == result.key
    assert again.summary().to_dict() == result.summary().to_dict()
    # The key covers prior, seed and variant.
    keys = {
        fit(OVERALL, p, seed=s, variant=v, settings=SamplerSettings(draws=100, min_ess=0)).key
        for p, s, v in [
            ("vague", None, None),
            ("weakly_informative", 1, None),
            ("weakly_informative", None, "itt"),
        ]
    }
    assert len(keys | {result.key}) == 4
    flush_cache()


# Pareto k > 0.7 for some arm/stratum cells is a finding about this model (the LOO section
# reports it).
@pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto")
def test_fit_tree_works_with_arviz_stats_loo_psense_and_bayes_factor():
    tree = fit(OVERALL, "weakly_informative", cache=False).tree
    loo = azs.loo(tree, var_name="events")
    assert np.isfinite(loo.elpd)
    sensitivity = azs.psense(tree, var_names=["d", "tau"], group="prior")
    assert set(sensitivity.data_vars) == {"d", "tau"}
    bf = azs.bayes_factor(tree, var_names="d", ref_vals=0)
    assert float(bf["d"].sel(bf_type="BF10")) > 0


def test_draws_are_extended_until_the_ess_target():
    settings = SamplerSettings(draws=50, tune=100, min_ess=10**6, max_draws=200)
    assert [d for d, _ in settings.attempts()] == [50, 100, 200]
    result = fit(OVERALL, "vague", cache=False, settings=settings)
    assert result.tree["posterior"].sizes["draw"] == 200
    assert result.tree.attrs["attempts"] == 3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(draws=0), "draws=0 must be a positive integer"),
        (dict(chains=1), "chains must be at least 2"),
        (dict(target_accept=1.0), "target_accept=1.0 is not in (0, 1)"),
    ],
)
def test_bad_sampler_settings(kwargs, message):
    with pytest.raises(RebayesError) as info:
        SamplerSettings(**kwargs)
    assert message in str(info.value)


def test_design_reuse_and_variant_change_keep_one_compilation():
    from rebayes.bayes.compilation import is_compiled
    from rebayes.bayes.model import structure_key

    fit(OVERALL, "vague", cache=False, variant="seed_fit+itt", settings=SamplerSettings(min_ess=0))
    assert is_compiled(build_design(OVERALL, variant="seed_fit+itt"))
    assert structure_key(build_design(OVERALL)) == structure_key(
        build_design(OVERALL, variant="seed_fit+itt")
    )


def _diverged(result, n=7):
    """The fit with ``n`` of its transitions marked divergent (a fit that still diverged)."""
    from dataclasses import replace

    stats = result.tree["sample_stats"].to_dataset()
    flags = np.zeros(stats["diverging"].shape, bool)
    flags.flat[:n] = True
    tree = result.tree.copy()
    tree["sample_stats"] = stats.assign(diverging=stats["diverging"].copy(data=flags))
    # A new Fit: a Fit's summary is computed once, from the tree it was made with; without a
    # cache path, since the summaries kept beside the cached file are the undoctored fit's.
    return replace(result, _tree=tree, path=None)


BCG = ROOT / "tests/data/bcg.csv"
QUICK = SamplerSettings(draws=200, tune=300, chains=2, min_ess=0)


def test_a_fit_that_still_diverges_is_marked_unreliable():
    import rebayes as rb

    spec = rb.AnalysisSpec(name="bcg", data=str(BCG))
    good = fit(spec, "weakly_informative", settings=QUICK, cache=False)
    assert good.summary().reliable and good.summary().to_dict()["reliable"] is True
    summary = _diverged(good).summary()
    assert not summary.reliable and summary.divergences == 7
    record = summary.to_dict()
    assert record["reliable"] is False and record["divergences"] == 7
    assert str(summary).splitlines()[0].startswith("UNRELIABLE: 7 divergent transitions")


@pytest.mark.parametrize("command", ["fit", "compare"])
def test_cli_exits_3_on_a_diverged_fit_unless_allowed(command, monkeypatch, capsys):
    import rebayes.bayes.fit
    from rebayes.cli import main

    real = rebayes.bayes.fit.fit_priors

    def fit_priors(*args, **kwargs):
        kwargs["settings"] = QUICK
        return [_diverged(f) for f in real(*args, **kwargs)]

    monkeypatch.setattr(rebayes.bayes.fit, "fit_priors", fit_priors)
    argv = [command, "--data", str(BCG), "--no-cache", "--json"]
    argv += ["--prior", "weakly_informative"] if command == "fit" else ["--engine", "nuts"]
    assert main(argv) == 3
    out, err = capsys.readouterr()
    assert "UNRELIABLE: 7 divergent transitions" in err
    if command == "fit":
        assert '"reliable": false' in out
    assert main([*argv, "--allow-divergences"]) == 0


@pytest.mark.parametrize("data", ["ivig", "ivig normal", "bcg"])
def test_raw_trace_conversion_equals_nutpies_own(data):
    """rebayes reads nutpie's Arrow trace itself: the same draws and statistics as nutpie's."""
    import nutpie

    import rebayes as rb
    from rebayes.bayes.compilation import compiled_model
    from rebayes.bayes.nuts import trace_to_tree
    from rebayes.bayes.settings import SAMPLE_STATS

    specs = {"ivig": OVERALL, "ivig normal": NORMAL,
             "bcg": rb.AnalysisSpec(name="bcg", data=str(BCG))}
    design = build_design(specs[data])
    compiled = compiled_model(design, get_prior("weakly_informative"))
    options = {"draws": 50, "tune": 30, "chains": 3, "seed": 7, "progress_bar": False}
    ours = trace_to_tree(nutpie.sample(compiled, return_raw_trace=True, **options), compiled)
    theirs = nutpie.sample(compiled, **options)
    xr.testing.assert_identical(ours["posterior"].to_dataset().drop_attrs(),
                                theirs["posterior"].to_dataset().drop_attrs())
    stats = theirs["sample_stats"].to_dataset()[list(SAMPLE_STATS)]
    xr.testing.assert_identical(ours["sample_stats"].to_dataset().drop_attrs(),
                                stats.drop_attrs())
    assert ours["posterior"].sizes == {"chain": 3, "draw": 50, **{
        dim: len(values) for dim, values in compiled.coords.items()
        if dim in ours["posterior"].dims}}


def test_the_draws_do_not_depend_on_the_threads_sampling_them():
    # The report samples on one core while its main thread works on the other.
    settings = SamplerSettings(draws=200, tune=300, min_ess=0)
    one = fit(OVERALL, "skeptical", settings=settings, cache=False, cores=1)
    two = fit(OVERALL, "skeptical", settings=settings, cache=False, cores=2)
    for name in ("d", "tau", "alpha", "z"):
        np.testing.assert_array_equal(one.tree["posterior"][name].values,
                                      two.tree["posterior"][name].values, err_msg=name)
