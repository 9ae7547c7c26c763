"""Prior registry: the sets the issue names, their stated properties, and TOML user sets."""

import math

import pytest
from scipy import stats

from rebayes.errors import RebayesError
from rebayes.priors import (
    PRIOR_SETS,
    HalfCauchy,
    HalfNormal,
    LogNormalTau2,
    Normal,
    PriorError,
    PriorSet,
    get_prior,
    load_prior_file,
    resolve_priors,
)

ISSUE_SETS = [
    "weakly_informative",
    "conservative_heterogeneity",
    "heavy_tailed",
    "turner_obstetric",
    "vague",
    "skeptical",
    "enthusiastic",
]


def test_registry_holds_the_issue_sets_in_order_with_sources():
    assert list(PRIOR_SETS) == ISSUE_SETS
    for prior in PRIOR_SETS.values():
        assert "References" in prior.description, prior.name
        assert "doi" in prior.description.lower() or "Wiley" in prior.description, prior.name


def test_issue_parameters():
    # Issue 3, section 2, field by field.
    wi = PRIOR_SETS["weakly_informative"]
    assert (wi.effect, wi.tau, wi.baseline, wi.covariate) == (
        Normal(0, 1),
        HalfNormal(0.5),
        Normal(0, 2),
        Normal(0, 1),
    )
    assert PRIOR_SETS["conservative_heterogeneity"].tau == HalfNormal(1.0)
    assert PRIOR_SETS["heavy_tailed"].tau == HalfCauchy(0.5)
    assert PRIOR_SETS["turner_obstetric"].tau == LogNormalTau2(-3.52, 1.74)
    vague = PRIOR_SETS["vague"]
    assert (vague.effect, vague.tau, vague.baseline) == (
        Normal(0, 10),
        HalfNormal(5),
        Normal(0, 10),
    )
    assert PRIOR_SETS["skeptical"].effect == Normal(0, 0.354)
    assert PRIOR_SETS["enthusiastic"].effect == Normal(math.log(1.5), 0.246)


def test_skeptical_puts_95_percent_on_or_between_half_and_two():
    d = PRIOR_SETS["skeptical"].effect.frozen()
    mass = d.cdf(math.log(2)) - d.cdf(math.log(0.5))
    assert mass == pytest.approx(0.95, abs=0.001)


def test_enthusiastic_gives_5_percent_to_no_benefit():
    assert PRIOR_SETS["enthusiastic"].effect.frozen().cdf(0.0) == pytest.approx(0.05, abs=0.001)


def test_turner_prior_is_lognormal_on_tau_squared():
    tau = PRIOR_SETS["turner_obstetric"].tau.frozen()
    tau2 = stats.lognorm(s=1.74, scale=math.exp(-3.52))  # Turner 2015 Table IV, on tau^2
    for t in (0.05, 0.17, 0.5, 1.0):
        assert tau.cdf(t) == pytest.approx(tau2.cdf(t * t), rel=1e-12)
    assert tau.median() == pytest.approx(math.exp(-3.52 / 2))


def test_half_families_match_scipy():
    assert HalfNormal(0.5).frozen().logpdf(0.3) == pytest.approx(
        math.log(2) + stats.norm(0, 0.5).logpdf(0.3)
    )
    assert HalfCauchy(0.5).frozen().logpdf(0.3) == pytest.approx(
        math.log(2 / (math.pi * 0.5 * (1 + (0.3 / 0.5) ** 2)))
    )


def test_summary_and_to_dict():
    prior = get_prior("turner_obstetric")
    assert (
        prior.summary
        == "d ~ N(0, 1); tau^2 ~ LogNormal(-3.52, 1.74); alpha ~ N(0, 2); beta ~ N(0, 1)"
    )
    record = prior.to_dict()
    assert record["tau"] == {"family": "lognormal_tau2", "mu": -3.52, "sigma": 1.74}


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: HalfNormal(-0.5), "half_normal: sigma=-0.5 must be a positive finite number"),
        (lambda: Normal(0, 0), "normal: sigma=0 must be a positive finite number"),
        (lambda: HalfCauchy(math.inf), "half_cauchy: scale=inf must be a positive finite number"),
        (lambda: Normal(math.nan, 1), "normal: mu=nan must be finite"),
        (lambda: PriorSet("x", effect=HalfNormal(1), tau=HalfNormal(1)), "effect must be one of"),
        (lambda: PriorSet("x", effect=Normal(), tau=Normal()), "tau must be one of"),
    ],
)
def test_bad_distributions_are_one_line_errors(make, message):
    with pytest.raises(PriorError) as info:
        make()
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_unknown_prior_name():
    with pytest.raises(PriorError, match=r"unknown prior set 'flat' \(known: weakly_informative"):
        get_prior("flat")


def test_user_prior_file(tmp_path):
    path = tmp_path / "priors.toml"
    path.write_text(
        """
[narrow_tau]
description = "Default with tau ~ HalfNormal(0.25)"
tau = { family = "half_normal", sigma = 0.25 }

[sceptic_cauchy]
base = "skeptical"
tau = { family = "half_cauchy", scale = 0.3 }
covariate = { family = "normal", mu = 0.0, sigma = 0.5 }
""",
        encoding="utf-8",
    )
    found = load_prior_file(path)
    assert found["narrow_tau"].tau == HalfNormal(0.25)
    assert found["narrow_tau"].effect == Normal(0, 1)  # from the default base
    assert found["sceptic_cauchy"].effect == Normal(0, 0.354)
    assert found["sceptic_cauchy"].covariate == Normal(0, 0.5)
    assert get_prior("narrow_tau", found).description.startswith("Default with")
    names = [p.name for p in resolve_priors(None, path)]
    assert names == [*PRIOR_SETS, "narrow_tau", "sceptic_cauchy"]
    assert [p.name for p in resolve_priors(["sceptic_cauchy"], path)] == ["sceptic_cauchy"]


@pytest.mark.parametrize(
    "body, message",
    [
        ('[p]\ntau = { family = "half_normal", sigma = -1 }', "[p] tau: half_normal: sigma=-1"),
        ('[p]\ntau = { family = "gamma", shape = 2 }', "[p] tau: unknown family 'gamma'"),
        ('[p]\neffect = { family = "half_normal", sigma = 1 }', "effect: unknown family"),
        ('[p]\ntau = { family = "half_normal", scale = 1 }', "unknown parameter 'scale'"),
        ('[p]\nbase = "nope"', "unknown base prior set 'nope'"),
        ("[p]\nheterogeneity = 1", "unknown field 'heterogeneity'"),
        ("[p]\ntau = 0.5", "tau: expected a table"),
        ("[p\n", "not valid TOML"),
    ],
)
def test_bad_prior_files_are_one_line_errors(tmp_path, body, message):
    path = tmp_path / "bad.toml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(RebayesError) as info:
        load_prior_file(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_missing_prior_file(tmp_path):
    with pytest.raises(PriorError, match="no such prior file"):
        load_prior_file(tmp_path / "none.toml")


def test_duplicate_prior_in_list():
    with pytest.raises(PriorError, match="listed twice"):
        resolve_priors(["vague", "vague"])
