"""Leave-one-trial-out influence, checked against statsmodels' MH risk ratio."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from statsmodels.stats.contingency_tables import StratifiedTable

import rebayes as rb
from conftest import ivig_spec
from rebayes.sensitivity.influence import leave_one_out, leave_one_out_frequentist


def mh_rr_statsmodels(totals):
    tables = [
        np.array([[r.events_treat, r.n_treat - r.events_treat],
                  [r.events_control, r.n_control - r.events_control]])
        for r in totals.itertuples()
    ]
    return StratifiedTable(tables).riskratio_pooled


def test_each_row_is_the_mh_rr_without_that_trial():
    trials = rb.load_trials("ivig_rsa")
    loo = leave_one_out_frequentist(trials).set_index("left_out")
    totals = rb.trial_totals(trials)
    assert list(loo.index[1:]) == list(totals.study)
    assert (loo.k.iloc[0], loo.k.iloc[1]) == (10, 9)
    for study in totals.study:
        expected = mh_rr_statsmodels(totals[totals.study != study])
        assert_allclose(loo.loc[study, "estimate"], expected, rtol=1e-10)
    assert_allclose(loo.loc["(none)", "estimate"], mh_rr_statsmodels(totals), rtol=1e-10)


def test_generic_leave_one_out_drops_every_stratum_of_a_trial():
    trials = rb.load_trials("ivig_rsa")
    out = leave_one_out(trials, lambda t: {"rows": len(t), "women": int(t.n_treat.sum())})
    row = out.set_index("left_out").loc["Qatar 2003"]
    assert row.rows == len(trials) - 2  # both Qatar strata go
    assert row.women == 261 - 40


@pytest.mark.parametrize("method", ["IV", "DL"])
def test_other_methods_run(method):
    assert len(leave_one_out_frequentist(rb.load_trials("ivig_rsa"), method)) == 11


def test_influence_table_flags_moves_beyond_the_threshold():
    from rebayes.sensitivity.influence import influence_table, influential_trials

    bayes = pd.DataFrame({"left_out": ["(none)", "A", "B", "C"],
                          "rr_median": 1.0, "rr_low": 0.9, "rr_high": 1.1, "tau_median": 0.1,
                          "p_benefit": [0.90, 0.96, 0.849, 0.87]})
    freq = pd.DataFrame({"left_out": ["(none)", "A", "B", "C"], "estimate": 1.0, "ci_low": 0.9,
                         "ci_high": 1.1, "p": 0.5, "i2": 0.0, "tau2": 0.0, "k": 3})
    table = influence_table(bayes, freq)
    # |0.96-0.90| = 0.06 and |0.849-0.90| = 0.051 exceed 0.05; |0.87-0.90| = 0.03 does not.
    assert influential_trials(table) == ["A", "B"]
    assert_allclose(table.table.delta_p_benefit, [0.0, 0.06, -0.051, -0.03], atol=1e-12)


def test_bayesian_refit_without_a_trial_equals_a_fit_on_the_reduced_table():
    import rebayes as rb
    from rebayes.bayes.design import build_design
    from rebayes.bayes.fit import fit
    from rebayes.bayes.settings import SamplerSettings
    from rebayes.sensitivity.influence import leave_one_out_bayesian

    spec = ivig_spec("overall")
    quick = SamplerSettings(draws=300, tune=300, chains=2, min_ess=0)
    trials = rb.load_trials("ivig_rsa")
    subset = trials[trials.study.isin(["Coulam 1995", "Perino 1997", "Qatar 2003"])]
    subset = subset.reset_index(drop=True)
    subset.attrs = dict(trials.attrs)
    loo = leave_one_out_bayesian(subset, spec, settings=quick).set_index("left_out")
    # Second path to the same number: drop the trial by hand, build the design, fit directly.
    reduced = rb.load_trials("ivig_rsa")
    reduced = reduced[reduced.study.isin(["Perino 1997", "Qatar 2003"])]
    direct = fit(spec, settings=quick, cache=False,
                 design=build_design(spec, reduced)).summary()
    assert loo.loc["Coulam 1995", "p_benefit"] == pytest.approx(direct.p_benefit, abs=1e-12)
    assert loo.loc["Coulam 1995", "rr_median"] == pytest.approx(direct.pooled_rr.median,
                                                                 rel=1e-12)
    # The full-table fit is not reused for the reduced tables (distinct cache keys).
    assert loo.loc["(none)", "rr_median"] != loo.loc["Coulam 1995", "rr_median"]


def _bcg_without(study):
    """bcg's overall analysis, its table, and the arrays of the table without ``study``."""
    from conftest import TEST_DATA
    from rebayes.bayes.analyses import resolve_spec

    folder = str(TEST_DATA / "bcg")
    trials = rb.load_trials(folder)
    kept = trials[trials.study != study]
    events = kept[["events_control", "events_treat"]].to_numpy()
    n = kept[["n_control", "n_treat"]].to_numpy()
    return resolve_spec("overall", folder, None, False), trials, events, n


def test_exact_refit_without_a_trial_is_the_brute_force_posterior():
    from scipy import special

    from exact_reference import binomial_reference
    from rebayes.sensitivity.influence import influence_table, leave_one_out_bayesian

    spec, trials, events, n = _bcg_without("Hart & Sutherland")
    loo = leave_one_out_bayesian(trials, spec, engine="exact").set_index("left_out")
    row = loo.loc["Hart & Sutherland"]
    assert row.engine == "exact" and row.p_benefit_mcse == 0.0
    # The pooled RR's median is the image of d's at p0, the median observed control risk of
    # the 12 trials left: back to d's median, where the brute force's P(d > m) is 1/2.
    p0 = np.median(events[:, 0] / n[:, 0])
    d_median = special.logit(row.rr_median * p0) - special.logit(p0)
    # Default prior on the model's scale: d ~ N(0, 1), tau ~ HalfNormal(0.5); TB cases, so
    # benefit is RR < 1, P(d < 0).
    # The reference integrates on a grid of step 0.01 in d: its P(d > t) at the three grid
    # points nearest the median, interpolated by a parabola (error O(step^3)).
    near = np.round(d_median, 2) + np.array([-0.01, 0.0, 0.01])
    ref = binomial_reference(events, n, thresholds=(0.0, *near), span=10.0, tau_max=3.0)
    assert row.p_benefit == pytest.approx(1 - ref.p_d_greater[0.0], abs=2e-6)
    parabola = np.polyfit(near, [ref.p_d_greater[t] for t in near], 2)
    assert np.polyval(parabola, d_median) == pytest.approx(0.5, abs=2e-5)
    table = influence_table(loo.reset_index(), leave_one_out_frequentist(trials))
    assert table.exact and not any(table.at_the_line())
    assert "exact engine (quadrature: no Monte Carlo error)" in table.summary()


@pytest.mark.slow
def test_nuts_refit_without_a_trial_agrees_with_the_exact_one():
    from rebayes.sensitivity.influence import leave_one_out_bayesian

    spec, trials, _, _ = _bcg_without("Hart & Sutherland")
    exact = leave_one_out_bayesian(trials, spec, engine="exact").set_index("left_out")
    nuts = leave_one_out_bayesian(trials, spec, engine="nuts").set_index("left_out")
    for study in ("(none)", "Hart & Sutherland"):
        e, s = exact.loc[study], nuts.loc[study]
        assert s.engine == "nuts" and s.p_benefit_mcse > 0
        assert abs(s.p_benefit - e.p_benefit) < 3 * s.p_benefit_mcse
        assert s.rr_median == pytest.approx(e.rr_median, rel=0.02)
