"""Analysis of credibility (Matthews RAJ, R Soc Open Sci 2018;5:171047; Held L, R Soc Open Sci
2019;6:181534).

The paper's worked numbers could not be retrieved here, so the closed forms are checked by
their defining property: a normal-normal update of the data with the sceptical (advocacy)
prior puts the posterior 95% bound exactly at no effect. The thresholds the papers state in
words are checked too: intrinsic credibility at p < 0.013 (Matthews 2018) and p_IC < 0.05 at
p < 0.0056 (Held 2019).
"""

import math

import pytest
from scipy import stats

import rebayes as rb
from rebayes.data.direction import Direction
from rebayes.frequentist.pooling import Z95
from rebayes.tools.credibility import (
    GOLDEN,
    Credibility,
    advocacy_limit,
    analysis_of_credibility,
    sceptical_limit,
)


def posterior(theta, se, prior_mean, prior_sd):
    precision = 1 / se**2 + 1 / prior_sd**2
    mean = (theta / se**2 + prior_mean / prior_sd**2) / precision
    return mean, math.sqrt(1 / precision)


@pytest.mark.parametrize("low,high", [(1.1, 2.0), (0.3, 0.9), (1.01, 5.0), (0.05, 0.99)])
def test_sceptical_prior_puts_the_posterior_bound_at_one(low, high):
    row = analysis_of_credibility(low, high)
    lo, hi = math.log(low), math.log(high)
    theta, se = (lo + hi) / 2, (hi - lo) / (2 * Z95)
    sigma = math.log(row.sceptical_limit) / Z95
    assert sigma == pytest.approx(row.sceptical_sd, rel=1e-12)
    mean, sd = posterior(theta, se, 0.0, sigma)
    bound = mean - Z95 * sd if theta > 0 else mean + Z95 * sd
    assert abs(bound) < 1e-9
    # A wider (less sceptical) prior leaves the result significant, a narrower one does not.
    for factor, still in ((1.1, True), (0.9, False)):
        mean, sd = posterior(theta, se, 0.0, sigma * factor)
        assert (abs(mean) - Z95 * sd > 0) is still


@pytest.mark.parametrize("low,high", [(0.8, 1.5), (0.5, 1.1), (0.95, 3.0)])
def test_advocacy_prior_makes_the_posterior_bound_exactly_one(low, high):
    row = analysis_of_credibility(low, high)
    assert not row.significant and row.sceptical_limit is None
    lo, hi = math.log(low), math.log(high)
    theta, se = (lo + hi) / 2, (hi - lo) / (2 * Z95)
    al = math.log(row.advocacy_limit)
    assert math.copysign(1, al) == math.copysign(1, theta)
    # Advocacy prior: 95% of its mass between no effect and AL.
    mean, sd = posterior(theta, se, al / 2, abs(al) / (2 * Z95))
    bound = mean - Z95 * sd if theta > 0 else mean + Z95 * sd
    assert abs(bound) < 1e-9
    # A stronger advocacy prior (upper end inside AL) rescues the result, a weaker one not.
    for factor, rescued in ((0.9, True), (1.1, False)):
        a = al * factor
        mean, sd = posterior(theta, se, a / 2, abs(a) / (2 * Z95))
        assert (abs(mean) - Z95 * sd > 0) is rescued


def test_closed_forms_on_the_log_scale():
    # (u - l)^2 / (4 sqrt(ul)) with l = 0.1, u = 0.9: 0.64 / (4 * 0.3) = 0.5333...
    assert sceptical_limit(0.1, 0.9) == pytest.approx(0.64 / 1.2, rel=1e-15)
    assert sceptical_limit(-0.9, -0.1) == pytest.approx(-0.64 / 1.2, rel=1e-15)
    # -(u + l)(u - l)^2 / (2ul) with l = -0.2, u = 0.6: -(0.4)(0.64) / (-0.24)
    assert advocacy_limit(-0.2, 0.6) == pytest.approx(0.4 * 0.64 / 0.24, rel=1e-15)
    with pytest.raises(rb.RebayesError):
        sceptical_limit(-0.1, 0.2)
    with pytest.raises(rb.RebayesError):
        advocacy_limit(0.1, 0.2)


def test_intrinsic_credibility_thresholds():
    # Matthews 2018: intrinsically credible iff |Z| > 1.96 sqrt(golden ratio), p < 0.013.
    z_star = Z95 * math.sqrt(GOLDEN)
    assert 2 * stats.norm.sf(z_star) == pytest.approx(0.0127, abs=5e-5)
    for z, credible in ((z_star * 1.001, True), (z_star * 0.999, False)):
        se = 0.2
        row = analysis_of_credibility(math.exp(z * se - Z95 * se), math.exp(z * se + Z95 * se))
        assert row.intrinsically_credible is credible
    # Held 2019: p_IC = 2(1 - Phi(|Z| / sqrt 2)) is 0.05 where p = 0.0056.
    z = Z95 * math.sqrt(2)
    row = analysis_of_credibility(math.exp(0.1 * z - 0.1 * Z95), math.exp(0.1 * z + 0.1 * Z95))
    assert row.p_intrinsic == pytest.approx(0.05, abs=1e-6)
    assert row.p == pytest.approx(0.0056, abs=5e-5)


def test_sentences_and_outputs():
    rows = (analysis_of_credibility(0.6, 0.9, "Bayesian 95% CrI", "bayesian"),
            analysis_of_credibility(0.7, 1.2, "RevMan", "frequentist"))
    result = Credibility(rows, Direction(higher_is_better=False))
    sl = rows[0].sceptical_limit
    assert f"between {1 / sl:.2f} and {sl:.2f}" in result.sentence()
    assert "to conclude RR < 1" in rows[1].sentence(result.direction)
    assert result.to_dict()["rows"][1]["advocacy_limit"] == rows[1].advocacy_limit
    assert len(result.to_dataframe()) == 2
    assert "sceptical" in str(result)
    assert result.plot().axes
    assert "<table" in result._repr_html_() and repr(result).startswith("Credibility(")


def test_cli_writes_the_figure_only_when_asked(tmp_path, capsys):
    import json

    from rebayes.cli import main

    out = tmp_path / "credibility.png"
    assert main(["credibility", "--data", "ivig_rsa", "--json", "--output", str(out)]) == 0
    record = json.loads(capsys.readouterr().out)
    assert [r["source"] for r in record["rows"]] == ["bayesian", "frequentist"]
    assert out.read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["credibility.png"]
