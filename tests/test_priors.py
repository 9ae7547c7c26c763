"""Prior registry: the named sets, their stated properties, and TOML user sets."""

import math

import pytest
from scipy import stats

from rebayes.bayes.priors import (
    DEFAULT_PRIOR,
    PRIOR_SETS,
    HalfCauchy,
    HalfNormal,
    LogNormalTau2,
    Normal,
    PriorError,
    PriorSet,
    get_prior,
    load_prior_file,
    median_control_risk,
    priors_for,
    resolve_priors,
)
from rebayes.errors import RebayesError

NAMED_SETS = [
    "weakly_informative",
    "conservative_heterogeneity",
    "heavy_tailed",
    "turner_obstetric",
    "turner_mortality",
    "turner_semi_objective",
    "turner_subjective",
    "vague",
    "skeptical",
    "enthusiastic",
    "bartos_cochrane",
]


def test_registry_holds_the_named_sets_in_order_with_sources():
    assert list(PRIOR_SETS) == NAMED_SETS
    for prior in PRIOR_SETS.values():
        assert "References" in prior.description, prior.name
        assert "doi" in prior.description.lower() or "Wiley" in prior.description, prior.name


def test_named_sets_match_their_sources():
    # Turner et al. 2015, Table IV, obstetric outcomes, pharmacological vs placebo (as in R's
    # bayesmeta::TurnerEtAlPrior).
    assert PRIOR_SETS["turner_obstetric"].tau == LogNormalTau2(-3.52, 1.74)
    # Spiegelhalter, Freedman & Parmar 1994; Spiegelhalter, Abrams & Myles 2004, 5.5: the
    # sceptical and enthusiastic priors share the SD that gives an OR of 1.5 prior mass 5%.
    sd = math.log(1.5) / stats.norm.ppf(0.95)
    assert PRIOR_SETS["skeptical"].effect == Normal(0, sd)
    assert PRIOR_SETS["enthusiastic"].effect == Normal(math.log(1.5), sd)
    assert sd == pytest.approx(0.2465, abs=5e-5)


def test_skeptical_gives_5_percent_to_an_or_beyond_1_5_either_way():
    d = PRIOR_SETS["skeptical"].effect.frozen()
    assert d.sf(math.log(1.5)) == pytest.approx(0.05, abs=1e-12)
    assert d.cdf(-math.log(1.5)) == pytest.approx(0.05, abs=1e-12)


# R bayesmeta 3.4 (cran/bayesmeta, R/bayesmeta.R, commit e7eaba2a), TurnerEtAlParameters,
# column "pharmacological vs. placebo / control" = Turner et al. 2015 Stat Med 34:984, Table IV:
# meanmat[, 1] and sdmat[, 1] (tau^2 ~ log-normal(mu, sigma)).
BAYESMETA_TURNER_PHARMA_VS_CONTROL = {
    "all-cause mortality": (-3.95, 1.34),
    "obstetric outcomes": (-3.52, 1.74),
    "cause-specific mortality / major morbidity event / composite (mortality or morbidity)": (
        -3.71,
        1.74,
    ),
    "subjective outcomes (various)": (-2.70, 1.52),
}


@pytest.mark.parametrize(
    "name, row",
    [
        ("turner_mortality", "all-cause mortality"),
        ("turner_obstetric", "obstetric outcomes"),
        (
            "turner_semi_objective",
            "cause-specific mortality / major morbidity event / composite (mortality or morbidity)",
        ),
        ("turner_subjective", "subjective outcomes (various)"),
    ],
)
def test_turner_sets_equal_bayesmeta_table(name, row):
    prior = PRIOR_SETS[name]
    mu, sigma = BAYESMETA_TURNER_PHARMA_VS_CONTROL[row]
    assert prior.tau == LogNormalTau2(mu, sigma)
    assert prior.effect == Normal(0, 1)
    assert "Table IV" in prior.description and row.split(" /")[0] in prior.description


def test_priors_for_offers_the_matching_turner_set_only():
    obstetric = priors_for("obstetric")
    assert "turner_obstetric" in obstetric and "turner_mortality" not in obstetric
    assert [n for n in priors_for("all_cause_mortality") if n.startswith("turner")] == [
        "turner_mortality"
    ]
    assert [n for n in priors_for("semi_objective") if n.startswith("turner")] == [
        "turner_semi_objective"
    ]
    assert [n for n in priors_for("subjective") if n.startswith("turner")] == ["turner_subjective"]
    generic = priors_for("unspecified")
    assert DEFAULT_PRIOR in generic and not any(n.startswith("turner") for n in generic)
    names = [p.name for p in resolve_priors(None, outcome_type="all_cause_mortality")]
    assert names == priors_for("all_cause_mortality")
    with pytest.raises(PriorError, match="unknown outcome type"):
        priors_for("surrogate")


def test_outcome_types_match_the_schema():
    from rebayes.bayes.priors import OUTCOME_TYPES
    from rebayes.data.schema import OUTCOME_TYPES as SCHEMA_TYPES

    assert set(OUTCOME_TYPES) == set(SCHEMA_TYPES)


def test_on_scale_log_rr_scales_by_one_minus_p0():
    base = PRIOR_SETS["turner_obstetric"]
    assert base.on_scale("log OR") is base
    rr = base.on_scale("log RR", 0.55)
    assert rr.effect.mu == 0 and rr.effect.sigma == pytest.approx(0.45)
    assert rr.scale == "log RR" and rr.control_risk == 0.55
    # tau_RR = 0.45 tau_OR: every quantile of tau scales by 0.45.
    for q in (0.1, 0.5, 0.9):
        assert rr.tau.frozen().ppf(q) == pytest.approx(0.45 * base.tau.frozen().ppf(q))
    hn = PRIOR_SETS["weakly_informative"].on_scale("log RR", 0.2)
    assert hn.tau.sigma == pytest.approx(0.4) and hn.covariate.sigma == pytest.approx(0.8)
    assert hn.baseline == Normal(0, 2)
    assert "log RR scale at control risk 0.2" in hn.summary
    assert hn.to_dict()["scale"] == "log RR" and "scale" not in base.to_dict()
    # The approximation it rests on: d log RR / d log OR = 1 - p0 at OR = 1 (Zhang & Yu 1998).
    p0, h = 0.55, 1e-6
    p1 = 1 / (1 + math.exp(-(math.log(p0 / (1 - p0)) + h)))
    assert math.log(p1 / p0) / h == pytest.approx(1 - p0, rel=1e-5)
    # N(0, 1) on the log RR put 27% of its mass on RR > 1 / p0; the mapped prior 9%.
    limit = -math.log(p0)
    assert stats.norm(0, 1).sf(limit) == pytest.approx(0.275, abs=0.001)
    assert PRIOR_SETS[DEFAULT_PRIOR].on_scale("log RR", p0).effect.frozen().sf(limit) < 0.1


@pytest.mark.parametrize("p0", [None, 0.0, 1.0, 1.5])
def test_on_scale_needs_a_control_risk_in_0_1(p0):
    with pytest.raises(PriorError, match="typical control risk"):
        PRIOR_SETS[DEFAULT_PRIOR].on_scale("log RR", p0)


def test_median_control_risk():
    assert median_control_risk([1, 5, 9], [10, 10, 10]) == pytest.approx(0.5)
    assert median_control_risk([0, 0], [10, 20]) == pytest.approx(0.5 / 20)
    assert median_control_risk([3, 0], [10, 0]) == pytest.approx(0.3)


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


def test_oriented_turns_the_effect_mean_towards_benefit_only_when_fewer_is_better():
    enthusiastic = get_prior("enthusiastic")
    assert enthusiastic.oriented(True) is enthusiastic
    turned = enthusiastic.oriented(False)
    assert turned.effect == Normal(-math.log(1.5), enthusiastic.effect.sigma)
    assert turned.tau == enthusiastic.tau and turned.name == "enthusiastic"
    sceptical = get_prior("skeptical")
    assert sceptical.oriented(False) is sceptical  # centred on no effect: nothing to turn


def test_effect_prior_is_stated_as_the_ratio_it_implies_on_the_benefit_side():
    from rebayes.data.direction import Direction

    deaths = Direction(higher_is_better=False, outcome="death")
    births = Direction(higher_is_better=True, outcome="live birth")
    sd = math.log(1.5) / stats.norm.ppf(0.95)
    z = stats.norm.ppf(0.975)
    # exp(-log 1.5 -+ 1.96 sd) = 0.41 and 1.08 by hand; exp(log 1.5 -+ 1.96 sd) = 0.93, 2.43.
    assert (round(math.exp(-math.log(1.5) - z * sd), 2),
            round(math.exp(-math.log(1.5) + z * sd), 2)) == (0.41, 1.08)
    text = get_prior("enthusiastic").describe(deaths)
    assert text.startswith("effect: OR centred on 0.67, towards a lower risk of death "
                           "(benefit); 95% of prior mass on ORs 0.41 to 1.08 (log OR ~ "
                           "N(-0.405, 0.247)); tau ~ HalfNormal(0.5); alpha ~ N(0, 2)")
    assert get_prior("enthusiastic").effect_description(births).startswith(
        "OR centred on 1.5, towards a higher risk of live birth (benefit); 95% of prior mass "
        "on ORs 0.93 to 2.43")
    assert get_prior("skeptical").effect_description(deaths).startswith(
        "OR centred on 1 (no effect); 95% of prior mass on ORs 0.62 to 1.62")
    # Undeclared direction: the side is named, benefit is not.
    assert "(benefit)" not in get_prior("enthusiastic").effect_description(Direction())
    # The normal model's sets speak of the RR, and say at which control risk they were mapped.
    rr = get_prior("enthusiastic").on_scale("log RR", 0.55).describe(deaths, baseline=False,
                                                                      covariate=False)
    assert rr.startswith("effect: RR centred on 0.83") and "alpha" not in rr
    assert rr.endswith("[log RR scale at control risk 0.55: log OR priors x 0.45]")


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
    assert found["sceptic_cauchy"].effect == PRIOR_SETS["skeptical"].effect
    assert found["sceptic_cauchy"].covariate == Normal(0, 0.5)
    assert get_prior("narrow_tau", found).description.startswith("Default with")
    names = [p.name for p in resolve_priors(None, path)]
    # Without the outcome type: the sets offered before outcome types existed.
    assert names == [*priors_for("obstetric"), "narrow_tau", "sceptic_cauchy"]
    assert [p.name for p in resolve_priors(["sceptic_cauchy"], path)] == ["sceptic_cauchy"]


@pytest.mark.parametrize(
    "body, message",
    [
        ('[p]\ntau = { family = "half_normal", sigma = -1 }', "[p] tau: half_normal: sigma=-1"),
        ('[p]\ntau = { family = "gamma", shape = 2 }', "[p] tau: unknown family 'gamma'"),
        ('[p]\neffect = { family = "half_normal", sigma = 1 }', "effect: unknown family"),
        ('[p]\ntau = { family = "half_normal", scale = 1 }',
         "unknown key 'p.tau.scale' (known: sigma)"),
        ('[p]\nbase = "nope"', "unknown base prior set 'nope'"),
        ("[p]\nheterogeneity = 1", "unknown key 'p.heterogeneity'"),
        ("[p]\ntua = 1", "unknown key 'p.tua' (did you mean 'tau'?)"),
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
