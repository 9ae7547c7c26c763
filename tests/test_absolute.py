"""Absolute effects per 1000 (GRADE summary of findings; Guyatt et al. 2013 J Clin Epidemiol
66:158): hand calculations on known posteriors, and the direction of benefit on BCG."""

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose

import rebayes as rb
from conftest import TEST_DATA
from rebayes.data.direction import Direction
from rebayes.tools.absolute import absolute_effects, absolute_effects_from_draws

QUICK = dict(draws=300, tune=300, chains=2, min_ess=0)


def test_a_point_posterior_gives_the_hand_calculation():
    # OR 0.5 at a control risk of 0.2: odds 0.25 -> 0.125, risk 0.125 / 1.125 = 1/9.
    out = absolute_effects_from_draws(np.full(100, math.log(0.5)), [("given", 0.2)])
    row = out.rows[0]
    assert row.control_per_1000 == pytest.approx(200.0)
    assert row.treatment_per_1000.median == pytest.approx(1000 / 9, rel=1e-12)
    assert row.difference_per_1000.median == pytest.approx(1000 / 9 - 200, rel=1e-12)
    assert row.treatment_per_1000.ci_low == pytest.approx(row.treatment_per_1000.ci_high)


def test_interval_ends_are_the_transformed_posterior_quantiles():
    # Half the draws at OR 0.5, half at OR 2: at p0 = 0.2 the treated risk is 1/9 or 1/3
    # (odds 0.5 -> 0.5 / 1.5), so the 2.5% and 97.5% quantiles are exactly those.
    draws = np.r_[np.full(500, math.log(0.5)), np.full(500, math.log(2.0))]
    lower_better = Direction(higher_is_better=False)
    row = absolute_effects_from_draws(draws, [("given", 0.2)], lower_better).rows[0]
    assert_allclose([row.treatment_per_1000.ci_low, row.treatment_per_1000.ci_high],
                    [1000 / 9, 1000 / 3], rtol=1e-12)
    assert_allclose([row.difference_per_1000.ci_low, row.difference_per_1000.ci_high],
                    [1000 / 9 - 200, 1000 / 3 - 200], rtol=1e-12)
    assert row.p_benefit == pytest.approx(0.5)  # fewer events is benefit: the OR 0.5 half


def test_log_rr_scale_multiplies_the_risk():
    row = absolute_effects_from_draws(np.full(10, math.log(1.5)), [("given", 0.1)],
                                      effect_scale="log RR").rows[0]
    assert row.treatment_per_1000.median == pytest.approx(150.0)


def test_a_control_risk_outside_0_1_is_a_user_error():
    with pytest.raises(rb.RebayesError, match="between 0 and 1"):
        absolute_effects_from_draws(np.zeros(3), [("given", 1.2)])


@pytest.fixture(scope="module")
def bcg_fit():
    from rebayes.bayes.settings import SamplerSettings

    spec = rb.resolve_spec("overall", TEST_DATA / "bcg")
    return rb.fit(spec, seed=1, settings=SamplerSettings(**QUICK), cache=False)


def test_bcg_fewer_tb_cases_read_as_benefit(bcg_fit):
    out = absolute_effects(bcg_fit.tree, risks=[0.01, 0.05])
    trials = rb.trial_totals(rb.load_trials(TEST_DATA / "bcg"))
    median = float(np.median(trials.events_control / trials.n_control))
    assert out.rows[0].control_risk == pytest.approx(median, rel=1e-12)
    assert [r.control_risk for r in out.rows[1:]] == [0.01, 0.05]
    for row in out.rows:
        assert row.difference_per_1000.median < 0
        assert out.reading(row) == "benefit"
        assert row.p_benefit > 0.95
    record = out.to_dict()
    assert record["rows"][0]["reading"] == "benefit"
    assert record["direction"]["higher_is_better"] is False
    assert "fewer tuberculosis" in out.summary()
    assert len(out.to_dataframe()) == 3
    assert "per 1000" in str(out)
    assert out.plot().axes
    assert "<table" in out._repr_html_() and "AbsoluteEffects(" in repr(out)


def test_cli_json_and_user_errors(tmp_path, capsys):
    import json

    from rebayes.cli import main

    bad = tmp_path / "a.pdf"
    assert main(["absolute", "--data", "ivig_rsa", "--output", str(bad)]) == 2
    assert main(["absolute", "--data", "ivig_rsa", "--risk", "1.5"]) == 2
    assert not list(tmp_path.iterdir())
    capsys.readouterr()
    assert main(["absolute", "--data", "ivig_rsa", "--risk", "0.3", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert [r["label"] for r in record["rows"]] == ["median control risk", "given"]
    assert record["direction"]["higher_is_better"] is True
    assert not list(tmp_path.iterdir())  # nothing written without --output


def test_exact_absolute_effects_map_the_exact_marginal_of_d():
    from scipy import special

    from conftest import ivig_spec
    from rebayes.bayes.fit import fit
    from rebayes.tools.absolute import absolute_effects_exact

    exact = fit(ivig_spec("overall"), "weakly_informative", engine="exact")
    post = exact.exact
    out = absolute_effects_exact(exact.design, exact.prior, post, risks=[0.2])
    assert out.engine == "exact" and out.to_dict()["engine"] == "exact"
    d = post.coefficient("d")
    for row in out.rows:
        # A monotone map of d: its quantiles are those of d, mapped (hand formula).
        p0 = row.control_risk
        for q, got in ((0.5, row.difference_per_1000.median),
                       (0.025, row.difference_per_1000.ci_low),
                       (0.975, row.difference_per_1000.ci_high)):
            want = 1000 * (special.expit(special.logit(p0) + float(d.ppf(q))) - p0)
            assert got == pytest.approx(want, abs=1e-6)
        assert row.treatment_per_1000.median == pytest.approx(
            1000 * p0 + row.difference_per_1000.median)
        # P(benefit): live birth, higher is better, so P(d > 0); the record's number.
        assert row.p_benefit == pytest.approx(d.prob_greater(0.0), abs=1e-12)
    assert out.rows[0].p_benefit == pytest.approx(exact.summary().p_benefit, abs=1e-12)
    # The same quantities from the exact posterior's 4,000 draws agree within their error.
    drawn = absolute_effects(exact.tree, risks=[0.2])
    for a, b in zip(out.rows, drawn.rows, strict=True):
        assert abs(a.difference_per_1000.median - b.difference_per_1000.median) < 3.0
        assert abs(a.p_benefit - b.p_benefit) < 4 * math.sqrt(0.25 / 4000)
