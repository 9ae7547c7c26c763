"""An exact ``Fit``: NUTS's tree layout with inverse-CDF draws, numbers by quadrature.

References: IVIG's overall analysis under the default prior, P(d > 0) = 0.93645787 from two
independent integrations (tests/exact_reference.py, recorded in test_exact.py); BCG's pooled
log OR integrated by brute force (:func:`exact_reference.binomial_reference`, its own grids
and rules); NUTS fits of the same designs for the tree's layout.
"""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import TEST_DATA, ivig_spec
from rebayes.bayes import fit as fit_module
from rebayes.bayes.design import build_design
from rebayes.bayes.exact_fit import exact_summary
from rebayes.bayes.fit import fit, fit_key
from rebayes.bayes.priors import DEFAULT_PRIOR, get_prior
from rebayes.bayes.settings import SamplerSettings
from rebayes.bayes.spec import AnalysisSpec
from rebayes.errors import RebayesError
from rebayes.report.build import build_report

BCG = TEST_DATA / "bcg"
QUICK = SamplerSettings(draws=200, tune=200, chains=2, min_ess=0)


def _spec(likelihood="binomial", name="pooled"):
    return AnalysisSpec(name=name, title="BCG, all trials", data=str(BCG),
                        likelihood=likelihood, split_by_stratum=False, effect="common")


def _layout(tree):
    """Each group's variables with their dims and the labels of every non-sample dim."""
    out = {}
    for group in tree.children:
        ds = tree[group].to_dataset()
        out[group] = {
            "vars": {name: var.dims for name, var in ds.data_vars.items()},
            "coords": {name: list(ds[name].values) for name in ds.coords
                       if name not in ("chain", "draw")},
            "sizes": {d: ds.sizes[d] for d in ("chain", "draw") if d in ds.sizes},
        }
    return out


@pytest.mark.parametrize("likelihood", ["binomial", "normal"])
def test_exact_tree_has_the_layout_of_a_nuts_fit(likelihood):
    spec = _spec(likelihood)
    nuts = fit(spec, settings=QUICK)
    exact = fit(spec, settings=QUICK, engine="exact")
    assert nuts.engine == "nuts" and exact.engine == "exact"
    expected = _layout(nuts.tree)
    del expected["sample_stats"]  # no sampler ran
    assert _layout(exact.tree) == expected
    assert "sample_stats" not in exact.tree.children
    assert exact.tree.attrs["engine"] == "exact" and "engine" not in nuts.tree.attrs
    # The same labels of the fit's inputs; another key (the engine is keyed); its draws are
    # never written to the cache.
    for name in ("analysis", "prior", "prior_json", "data_hash", "seed", "draws", "chains",
                 "likelihood", "effect_scale", "higher_is_better"):
        assert exact.tree.attrs[name] == nuts.tree.attrs[name], name
    assert exact.key != nuts.key and not exact.from_cache
    assert exact.path is not None and not exact.path.exists()
    prior = nuts.prior
    assert nuts.key == fit_key(nuts.design, prior, nuts.seed, QUICK)
    assert exact.key == fit_key(nuts.design, prior, nuts.seed, QUICK, engine="exact")


def test_summary_is_exact_and_the_diagnostics_say_no_chain():
    spec = ivig_spec("overall")
    exact = fit(spec, engine="exact")
    s = exact.summary()
    design = build_design(spec)
    assert s.to_dict() == exact_summary(design, get_prior(DEFAULT_PRIOR)).to_dict()
    # The recorded exact figure (two independent integrations), not anything from the draws.
    assert s.engine == "exact" and s.p_benefit == pytest.approx(0.93645787, abs=2e-6)
    report = exact.diagnostics()
    assert report.exact and report.ok and report.gates == {} and report.failures == ()
    assert report.mcse("p_benefit") == 0.0 and report.divergences == 0
    assert "no Markov chain" in str(report) and report.to_dict()["engine"] == "exact"
    assert s.reliable and s.diagnostics.ok and not repr(exact).startswith(("UNRELIABLE", "DIAG"))


@pytest.mark.parametrize("which", ["ivig", "bcg"])
def test_draws_follow_the_exact_posterior(which):
    """The draws' means of d and tau within 4 standard errors of the exact means.

    IVIG's exact E[d] is held to the brute-force reference's 0.30687466 first
    (tests/exact_reference.py, recorded in test_exact.py), so the draws meet an independent
    number. BCG's tau grid starts above tau = 0 (its posterior has no mass near 0): its draws
    once came from the wrong tau nodes, nearly the prior of d.
    """
    spec = ivig_spec("overall") if which == "ivig" else _spec()
    settings = SamplerSettings(draws=2000, chains=4)
    exact = fit(spec, settings=settings, engine="exact")
    d_exact = exact.exact.coefficient("d")
    if which == "ivig":
        assert d_exact.mean == pytest.approx(0.30687466, abs=2e-6)
    else:
        assert exact.exact.grid.first > 0
    post = exact.tree["posterior"]
    n = post.sizes["chain"] * post.sizes["draw"]
    assert n == 8000
    for name, marginal in (("d", d_exact), ("tau", exact.exact.tau)):
        draws = post[name].values.ravel()
        assert abs(draws.mean() - marginal.mean) < 4 * marginal.sd / math.sqrt(n), name
        assert draws.std() == pytest.approx(marginal.sd, rel=0.05), name
    # Seeded by the fit's seed: the same seed gives the same draws, another seed others.
    again = fit(spec, settings=settings, engine="exact")
    np.testing.assert_array_equal(again.tree["posterior"]["d"], post["d"])
    other = fit(spec, settings=settings, engine="exact", seed=7)
    assert not np.array_equal(other.tree["posterior"]["d"], post["d"])


def test_engines_decide_per_prior(monkeypatch):
    # Latitude and a three-level allocation: 4 coefficients, beyond the grid.
    spec = AnalysisSpec(name="both", data=str(BCG), covariates=("ablat", "alloc"),
                        split_by_stratum=False, effect="contrast")
    with pytest.raises(RebayesError, match="--engine exact: 4 coefficients"):
        fit(spec, settings=QUICK, engine="exact")
    said = []

    # auto: NUTS answers, and says why (stopped before compiling: only the decision is tested).
    def no_sampling(*args, **kwargs):
        raise RuntimeError("NUTS was asked")

    monkeypatch.setattr(fit_module, "compiled_model", no_sampling)
    with pytest.raises(RuntimeError, match="NUTS was asked"):
        fit(spec, settings=QUICK, engine="auto", on_fallback=said.append, cache=False)
    assert said and "4 coefficients (d, ablat, alternate, systematic)" in said[0]


def _script(folder: Path, name: str, likelihood: str) -> Path:
    path = folder / f"{name}.py"
    path.write_text(
        "import rebayes as rb\n"
        f"SPEC = rb.AnalysisSpec(name={name!r}, title={name!r}, likelihood={likelihood!r},\n"
        "                        split_by_stratum=False, effect='common')\n",
        encoding="utf-8")
    return path


def test_exact_report_runs_without_nuts_and_says_so(tmp_path, monkeypatch):
    def no_sampling(*args, **kwargs):
        raise AssertionError("NUTS sampled in an exact report")

    monkeypatch.setattr(fit_module, "run_nuts", no_sampling)
    monkeypatch.setattr(fit_module, "compiled_model", no_sampling)
    scripts = [_script(tmp_path, "pooled", "binomial"),
               _script(tmp_path, "normal_approximation", "normal")]
    # A meta-regression on the three-level allocation: 3 coefficients, two RR ratios.
    (tmp_path / "allocation.py").write_text(
        "import rebayes as rb\n"
        "SPEC = rb.AnalysisSpec(name='allocation', title='allocation', covariates=('alloc',),\n"
        "                        subgroup=('alloc',), split_by_stratum=False,\n"
        "                        effect='contrast')\n", encoding="utf-8")
    scripts.append(tmp_path / "allocation.py")
    out = tmp_path / "report"
    built = build_report(out, BCG, scripts=scripts, priors=["weakly_informative", "skeptical"],
                         settings=QUICK, progress=False, log=lambda _: None, engine="exact")
    assert built.ok and not built.unreliable
    words = "exact (quadrature, no Monte Carlo error)"
    for page in ("index.html", "pooled.html", "normal_approximation.html", "allocation.html"):
        text = (out / page).read_text(encoding="utf-8")
        assert words in text, page
        if page != "index.html":
            assert "no convergence gate applies" in text and "Gates (Vehtari" not in text
    allocation = (out / "allocation.html").read_text(encoding="utf-8")
    assert "Meta-regression coefficients" in allocation and "systematic vs random" in allocation
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    for name in ("pooled", "normal_approximation"):
        for record in results["analyses"][name]["priors"].values():
            assert record["engine"] == "exact" and record["mcse"]["p_benefit"] == 0.0
    # The exact figure, not a Monte Carlo estimate: BCG's P(RR < 1) under the default prior.
    record = results["analyses"]["pooled"]["priors"]["weakly_informative"]
    spec = _spec()
    assert record["p_benefit"] == exact_summary(build_design(spec),
                                                get_prior("weakly_informative")).p_benefit
    # The meta-regression's ratios are the exact record's too.
    record = results["analyses"]["allocation"]["priors"]["skeptical"]
    assert record["engine"] == "exact"
    alloc = AnalysisSpec(name="allocation", data=str(BCG), covariates=("alloc",),
                         subgroup=("alloc",), split_by_stratum=False, effect="contrast")
    exact = exact_summary(build_design(alloc), get_prior("skeptical"), trials=False)
    assert [record["subgroup_ratios"][r.name]["p_gt_1"] for r in exact.ratios] == [
        r.p_gt_1 for r in exact.ratios]


def test_an_exact_fit_keeps_what_is_derived_and_makes_its_draws_again(monkeypatch):
    from rebayes.bayes import exact_fit

    spec = _spec()
    first = fit(spec, settings=QUICK, engine="exact")
    summary = first.summary()
    draws = first.tree.posterior["d"].values.copy()
    first.release()
    assert not first.draws_loaded
    np.testing.assert_array_equal(first.tree.posterior["d"].values, draws)  # seeded

    # A later process reads the record from the cache: nothing is integrated for it again.
    def refuse(*args, **kwargs):
        raise AssertionError("the cached summary was computed again")

    monkeypatch.setattr(exact_fit, "exact_summary", refuse)
    again = fit(spec, settings=QUICK, engine="exact")
    assert repr(again.summary()) == repr(summary)  # (NaN diagnostics: no ==)
    assert not again.draws_loaded and not again.path.exists()
