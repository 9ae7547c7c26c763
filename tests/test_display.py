"""Results in a notebook: one-line repr, HTML table, to_dataframe() and the figure of each.

Numbers are checked against hand formulas on metafor's dat.bcg (tests/data/bcg) and, where
cited, metafor's published results for it; the README's notebook example is run as written.
"""

import re
import subprocess
import sys
from dataclasses import replace

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from numpy.testing import assert_allclose

import rebayes as rb
from conftest import ROOT, TEST_DATA
from rebayes.audit.paper import Audit, AuditRow, audit
from rebayes.bayes.settings import SamplerSettings
from rebayes.display import short_repr
from rebayes.frequentist.effects import Z95
from rebayes.frequentist.pooling import analyze, meta_analysis
from rebayes.sensitivity.comparison import compare_fits
from rebayes.sensitivity.influence import Influence, influence_table

QUICK = SamplerSettings(draws=300, tune=300, chains=2, min_ess=0)
BCG = TEST_DATA / "bcg" / "trials.csv"


def one_short_line(text: str, name: str) -> bool:
    return "\n" not in text and text.startswith(f"{name}(") and len(text) <= 200


def closes(fig) -> bool:
    """The figure is a matplotlib Figure (then closed, not left open for the next test)."""
    ok = isinstance(fig, Figure)
    plt.close(fig)
    return ok


@pytest.fixture(scope="module")
def bcg():
    return pd.read_csv(BCG)


def mh_rr_by_hand(t: pd.DataFrame) -> tuple[float, np.ndarray]:
    """Mantel-Haenszel RR and its weights: sum(a n2 / N) / sum(c n1 / N) (no zero cells here)."""
    n = t.n_treat + t.n_control
    numerator = t.events_treat * t.n_control / n
    weights = t.events_control * t.n_treat / n
    return float(numerator.sum() / weights.sum()), (100 * weights / weights.sum()).to_numpy()


# --- frequentist result ---------------------------------------------------------------------


def test_meta_result_table_is_revman_s_with_hand_computed_numbers(bcg):
    res = analyze(rb.load_trials(BCG), method="MH", model="fixed").overall
    rr, weights = mh_rr_by_hand(bcg)
    # metafor, rma.mh(measure="RR") on dat.bcg: log RR -0.4537 (README).
    assert_allclose(np.log(rr), -0.4537, atol=5e-5)
    table = res.to_dataframe()
    assert list(table.kind) == ["study"] * 13 + ["total"]
    assert list(table.study[:13]) == list(bcg.study)
    total = table.iloc[-1]
    assert_allclose(total.estimate, rr, rtol=1e-12)
    assert (total.events_treat, total.n_treat) == (bcg.events_treat.sum(), bcg.n_treat.sum())
    assert total.weight == 100
    studies = table.iloc[:13]
    assert_allclose(studies.weight, weights, rtol=1e-12)
    # Each study: log RR +- 1.959964 sqrt(1/a - 1/n1 + 1/c - 1/n2).
    log_rr = np.log(bcg.events_treat / bcg.n_treat / (bcg.events_control / bcg.n_control))
    se = np.sqrt(1 / bcg.events_treat - 1 / bcg.n_treat
                 + 1 / bcg.events_control - 1 / bcg.n_control)
    assert_allclose(studies.estimate, np.exp(log_rr), rtol=1e-12)
    assert_allclose(studies.ci_low, np.exp(log_rr - Z95 * se), rtol=1e-12)
    text = repr(res)
    assert one_short_line(text, "MetaResult")
    assert f"k=13: {rr:.2f} [" in text and "M-H fixed" in text


def test_subgroup_analysis_table_repr_html_and_forest(bcg):
    result = analyze(rb.load_trials(BCG), by="alloc", method="MH", model="fixed")
    text = repr(result)
    assert one_short_line(text, "SubgroupAnalysis")
    assert "by alloc: 3 subgroups" in text and "test for subgroup differences P=" in text
    table = result.to_dataframe()
    assert list(table.columns[:3]) == ["subgroup", "kind", "study"]
    assert list(table.kind).count("subtotal") == 3 and table.kind.iloc[-1] == "total"
    _, overall_weights = mh_rr_by_hand(bcg)
    by_study = dict(zip(bcg.study, overall_weights, strict=True))
    for level in ("random", "alternate", "systematic"):
        rows = table[table.subgroup == level]
        studies = rows[rows.kind == "study"]
        assert set(studies.study) == set(bcg.study[bcg.alloc == level])
        # RevMan prints the overall analysis' weights, and their sum on the subtotal row.
        assert_allclose(studies.weight, [by_study[s] for s in studies.study], rtol=1e-12)
        subtotal = rows[rows.kind == "subtotal"].iloc[0]
        assert_allclose(subtotal.weight, studies.weight.sum(), rtol=1e-12)
        assert_allclose(subtotal.estimate, mh_rr_by_hand(bcg[bcg.alloc == level])[0],
                        rtol=1e-12)
    html = result._repr_html_()
    assert "<table" in html and "Subtotal: alternate" in html and "Frimodt-Moller" in html
    assert closes(result.plot())
    assert closes(result.overall.plot())


def test_random_effects_total_is_metafor_s_dersimonian_laird():
    # metafor's rma(measure="RR", method="DL") on dat.bcg (README): 0.4896 (0.3449-0.6950),
    # tau^2 0.3088; metafor weights and centres Q by inverse variance (RevMan's "IV, Random").
    result = analyze(rb.load_trials(BCG), method="IV", model="random")
    total = result.to_dataframe().iloc[-1]
    assert_allclose([total.estimate, total.ci_low, total.ci_high], [0.4896, 0.3449, 0.6950],
                    atol=1e-4)
    assert_allclose(total.tau2, 0.3088, atol=1e-4)
    assert "RR IV random, k=13: 0.49 [0.34, 0.70], I²=92%, τ²=0.309" in repr(result)


def test_html_escapes_what_users_wrote():
    trials = pd.DataFrame({"study": ["<script>x</script>", "B & C"], "events_treat": [3, 4],
                           "n_treat": [20, 20], "events_control": [5, 6],
                           "n_control": [20, 20]})
    html = meta_analysis(trials)._repr_html_()
    assert "&lt;script&gt;" in html and "<script>" not in html and "B &amp; C" in html


def test_short_repr_stays_on_one_line():
    assert short_repr("X", "a\n  b") == "X(a b)"
    long = short_repr("X", "y" * 500)
    assert len(long) == len("X()") + 160 and long.endswith("…)")


def test_import_rebayes_loads_no_pymc_matplotlib_or_jinja2():
    code = ("import sys, rebayes; print(sorted(m for m in ('pymc', 'matplotlib', 'jinja2') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


# --- fit and comparison (BCG, quick sampler) ------------------------------------------------


@pytest.fixture(scope="module")
def fits():
    spec = rb.AnalysisSpec("overall", data=str(BCG))
    return rb.fit_priors(spec, ["weakly_informative", "skeptical"], settings=QUICK)


def test_fit_repr_dataframe_html_and_forest(fits):
    fit = fits[0]
    s = fit.summary()
    text = repr(fit)
    assert one_short_line(text, "Fit")
    assert "overall, prior weakly_informative, 13 rows" in text
    rr = s.pooled_rr
    assert f"pooled RR {rr.median:.2f} [{rr.ci_low:.2f}, {rr.ci_high:.2f}]" in text
    assert f"P(RR < 1) {s.p_benefit:.3f}" in text  # BCG: fewer tuberculosis cases is benefit
    assert ("DIAGNOSTICS FAIL" in text) == (s.reliable and not s.diagnostics.ok)
    table = fit.to_dataframe()
    assert {"pooled RR", "pooled OR", "predictive RR (new trial)", "tau (log OR)",
            "P(RR < 1)", "P(RR < 0.91)", "P(RR < 0.8)", "P(RR > 1)"} <= set(table.index)
    assert list(table.columns) == ["estimate", "ci_low", "ci_high", "hdi_low", "hdi_high",
                                   "mean"]
    assert table.loc["pooled RR", "estimate"] == rr.median
    assert table.loc["tau (log OR)", "ci_high"] == s.tau.ci_high
    assert_allclose(table.loc["P(RR < 1)", "estimate"] + table.loc["P(RR > 1)", "estimate"],
                    1.0, atol=1e-12)
    html = fit._repr_html_()
    assert "<table" in html and "pooled RR" in html and "P(RR &lt; 1)" in html
    assert closes(fit.plot())


def test_a_fit_that_diverged_never_reads_like_a_plain_result(fits):
    fit = replace(fits[0])  # a copy without the memoised summary
    s = fits[0].summary()
    diverged = replace(s, diagnostics=replace(s.diagnostics, divergences=7))
    object.__setattr__(fit, "_derived", {"summary": diverged})
    assert repr(fit).startswith("Fit(UNRELIABLE: 7 divergent transitions; overall")
    assert "UNRELIABLE" in fit._repr_html_()


def test_comparison_repr_dataframe_html_and_plot(fits):
    comparison = compare_fits(fits)
    text = repr(comparison)
    assert one_short_line(text, "Comparison")
    assert "overall: 2 priors x 1 variant," in text
    low, high = comparison.table.rr_median.min(), comparison.table.rr_median.max()
    assert f"pooled RR {low:.2f} to {high:.2f}" in text
    table = comparison.to_dataframe()
    assert list(table.prior) == ["weakly_informative", "skeptical"]
    # Lower is better: P(RR < 0.91) and the literal P(RR > 1.1) are different columns.
    assert {"pooled RR", "RR 2.5%", "RR 97.5%", "P(RR < 1)", "MCSE P(RR < 1)",
            "P(RR < 0.91)", "P(RR > 1.1)", "tau (log OR)", "diagnostics ok"} <= set(table)
    assert_allclose(table["P(RR < 1)"], [f.summary().p_benefit for f in fits], atol=1e-12)
    assert table.columns.is_unique
    html = comparison._repr_html_()
    assert "<table" in html and "weakly_informative" in html
    assert closes(comparison.plot())


def test_readme_notebook_example_runs_as_written(monkeypatch):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("### In a notebook", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) < 10
    # As written, but with the quick sampler (the default takes ~40 s).
    monkeypatch.setattr("rebayes.bayes.fit.SamplerSettings", lambda: QUICK)
    monkeypatch.chdir(ROOT)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    plt.close("all")
    assert [f.prior.name for f in namespace["fits"]] == [
        "weakly_informative", "skeptical", "enthusiastic"]
    assert repr(namespace["revman"]).startswith("SubgroupAnalysis(RR M-H random, k=13: 0.49")


# --- audit and influence --------------------------------------------------------------------


def test_audit_is_a_sequence_of_rows_with_counts():
    result = audit(TEST_DATA / "rosiglitazone")
    assert isinstance(result, Audit)
    assert repr(result) == ("Audit(rosiglitazone, variant published: 3 figures, 3 reproduced, "
                            "0 differ, 0 not recomputable)")
    assert len(result) == 3 and isinstance(result[0], AuditRow)
    assert [r.id for r in result] == ["n_trials", "mi_counts", "mi_or"]
    assert result[1:] == result.rows[1:]
    table = result.to_dataframe()
    assert list(table.index) == ["n_trials", "mi_counts", "mi_or"]
    assert list(table.columns) == ["location", "statistic", "reported", "recomputed",
                                   "verdict", "basis", "variants_reproducing", "explanation"]
    # Nissen & Wolski's Peto OR 1.43 (1.03-1.98): sum(O - E) / sum(V) over the 42 trials.
    t = pd.read_csv(TEST_DATA / "rosiglitazone" / "trials.csv")
    n1, n2, events = t.n_treat, t.n_control, t.events_treat + t.events_control
    n = n1 + n2
    o_e = t.events_treat - n1 * events / n
    v = n1 * n2 * events * (n - events) / (n**2 * (n - 1))
    peto_or = np.exp(o_e.sum() / v.sum())
    assert f"{peto_or:.2f}" == "1.43"
    assert f"Peto OR {peto_or:.4f} (" in table.loc["mi_or", "recomputed"]
    assert "<table" in result._repr_html_()


def influence_example() -> Influence:
    bayes = pd.DataFrame({"left_out": ["(none)", "A", "B", "C"],
                          "rr_median": [0.8, 0.7, 0.9, 0.82], "rr_low": 0.5, "rr_high": 1.2,
                          "tau_median": 0.1, "p_benefit": [0.90, 0.96, 0.849, 0.87]})
    freq = pd.DataFrame({"left_out": ["(none)", "A", "B", "C"], "estimate": 0.8, "ci_low": 0.6,
                         "ci_high": 1.1, "p": 0.2, "i2": 0.0, "tau2": 0.0, "k": [3, 2, 2, 2]})
    return influence_table(bayes, freq)


def test_influence_names_the_most_influential_trial():
    result = influence_example()
    text = repr(result)
    assert one_short_line(text, "Influence")
    # |0.96 - 0.90| = 0.06 is the largest move; A and B pass 0.05.
    assert "most influential: A (to 0.960, +0.060)" in text and "2 beyond ±0.05" in text
    assert result.influential == ["A", "B"]
    assert "A (to 0.960, +0.060); B (to 0.849, -0.051)" in result.summary()
    table = result.to_dataframe()
    assert list(table.left_out) == ["(none)", "A", "B", "C"]
    assert {"mh_rr", "delta_p_benefit", "influential"} <= set(table)
    assert "<table" in result._repr_html_()
    assert result.to_dict()[1]["left_out"] == "A"
    assert closes(result.plot())


# --- the vocabulary every result shares (rebayes.results.Result) ----------------------------


def _cumulative(fits):
    from rebayes.tools.cumulative import cumulative_meta_analysis

    trials = rb.load_trials(BCG)
    return cumulative_meta_analysis(trials, rb.AnalysisSpec("overall", data=str(BCG)),
                                    engine="exact")


def _prior_map(fits):
    from rebayes.tools.priormap import prior_map

    # Wide priors near one anchor: reweighted from its draws (k < 1), one further fit.
    return prior_map(fits[0], ["weakly_informative"], means=[-0.2, 0.0], sds=[1.0, 2.0],
                     anchors=[(0.0, 2.0)], k_max=1.0, cache=False)


def _absolute(fits):
    from rebayes.tools.absolute import absolute_effects_from_draws

    return absolute_effects_from_draws(np.full(100, np.log(0.5)), [("given", 0.2)])


def _bias(fits):
    from rebayes.tools.bias import bias_analysis

    return bias_analysis(rb.load_trials("ivig_rsa"), bayesian=False)


def _credibility(fits):
    from rebayes.tools.credibility import dataset_credibility

    return dataset_credibility(rb.load_trials(BCG))


def _plan(fits):
    from rebayes.tools.planning import plan_next_trial

    return plan_next_trial(fits[0].tree, [100, 1000], n_sim=500, seed=1)


# name: (build from the module's fits, (a path into to_dict(), an independent number, its
# tolerance) or None)
RESULTS = {
    # metafor, rma(measure="RR", method="DL") on dat.bcg: 0.4896 (README).
    "MetaResult": (lambda fits: analyze(rb.load_trials(BCG), method="IV", model="random").overall,
                   (("estimate",), 0.4896, 5e-5)),
    "SubgroupAnalysis": (lambda fits: analyze(rb.load_trials(BCG), by="alloc", method="IV",
                                              model="random"),
                         (("overall", "estimate"), 0.4896, 5e-5)),
    "Fit": (lambda fits: fits[0], None),
    "Comparison": (lambda fits: compare_fits(fits), None),
    # Nissen & Wolski's table: its three figures reproduced (test_audit_is_a_sequence_...).
    "Audit": (lambda fits: audit(TEST_DATA / "rosiglitazone"),
              (("counts", "reproduced"), 3, 0)),
    # Leaving out A moves P(RR < 1) (no direction declared) from 0.90 to 0.96, by hand.
    "Influence": (lambda fits: influence_example(), ((1, "delta_p_rr_lt_1"), 0.06, 1e-12)),
    # OR 0.5 at a control risk of 0.2: 1000 / 9 treated per 1000 (test_absolute).
    "AbsoluteEffects": (_absolute,
                        (("rows", 0, "treatment_per_1000", "median"), 1000 / 9, 1e-9)),
    # Egger's test on ivig_rsa, t = 2.73 (the number, test_bias).
    "BiasAnalysis": (_bias, (("egger", "statistic"), 2.73, 5e-3)),
    # metafor's interval of the DL RR on dat.bcg, to the methods' difference (test_credibility).
    "Credibility": (_credibility, (("rows", 0, "ci_low"), 0.344919135222, 2e-4)),
    # dat.bcg's 13 trials, all in by the last step.
    "CumulativeAnalysis": (_cumulative, (("steps", -1, "k"), 13, 0)),
    "TrialPlan": (_plan, None),
    "PriorMap": (_prior_map, None),
}


@pytest.mark.parametrize("name", RESULTS)
def test_every_result_offers_the_same_vocabulary(name, fits):
    from rebayes.results import Result
    from rebayes.store.keys import dumps

    build, reference = RESULTS[name]
    result = build(fits)
    assert type(result).__name__ == name
    assert isinstance(result, Result)
    table = result.to_dataframe()
    assert isinstance(table, pd.DataFrame) and not table.empty
    record = result.to_dict()
    text = dumps(record)
    assert text.startswith(("{", "["))
    if reference is not None:
        path, expected, tolerance = reference
        value = record
        for key in path:
            value = value[key]
        assert value == pytest.approx(expected, abs=tolerance)
    assert one_short_line(repr(result), name)
    summary = result.summary()
    assert str(summary).strip() if name == "Fit" else (isinstance(summary, str) and summary)
    assert "<table" in result._repr_html_()
    assert closes(result.plot())
