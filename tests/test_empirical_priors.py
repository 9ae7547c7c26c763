"""Empirical priors from Cochrane: Bartoš et al. (2023) and van Zwet et al. (2021).

The expected numbers are typed from the sources: the paper's whole-database priors (quoted in
issue 26 and BiBMA's defaults in RoBMA's manual: t(0, 0.58, 4) and InvGamma(1.77, 0.55) on the
log OR), and BayesTools 0.3.0's R/priors-informed.R (``prior_informed(name, parameter,
type)``) for the subfields checked here; van Zwet et al.'s Table 1 as quoted in code that
reproduces it (weights 0.32, 0.31, 0.30, 0.07; SNR SDs 0.61, 1.42, 2.16, 5.64).
"""

import math

import numpy as np
import pytest
from scipy import stats

from rebayes.bayes.empirical_priors import (
    BARTOS_2023,
    VAN_ZWET_2021,
    bartos_parameters,
    subfield_slug,
)
from rebayes.bayes.priors import (
    BARTOS_SETS,
    PRIOR_SETS,
    InverseGamma,
    PriorError,
    PriorSet,
    StudentT,
    bartos_prior_set,
    get_prior,
    load_prior_file,
    resolve_priors,
    van_zwet_prior,
)


@pytest.mark.parametrize(("subfield", "scale", "expected"), [
    # Bartoš et al. 2023, whole database (issue 26; RoBMA::BiBMA's defaults).
    ("Cochrane", "log OR", (0.58, 4, 1.77, 0.55)),
    ("Cochrane", "log RR", (0.32, 3, 1.51, 0.23)),
    # BayesTools prior_informed("Acute Respiratory Infections", ..., type="logOR"): the
    # priors of RoBMA's honey example.
    ("Acute Respiratory Infections", "log OR", (0.48, 3, 1.67, 0.45)),
    ("Acute Respiratory Infections", "log RR", (0.27, 3, 1.58, 0.25)),
    ("Heart", "log OR", (0.20, 2, 1.64, 0.29)),
    ("Heart", "log RR", (0.17, 3, 1.96, 0.24)),
    ("Pregnancy and Childbirth", "log OR", (0.38, 2, 1.73, 0.47)),
    ("Metabolic and Endocrine Disorders", "log RR", (0.13, 1, 1.55, 0.19)),
    ("Heart; Vascular", "log OR", (0.95, 4, 1.64, 0.83)),
    # No heterogeneity prior for childhood cancer (too few meta-analyses).
    ("Childhood Cancer", "log OR", (0.47, 4, None, None)),
])
def test_bartos_numbers_are_the_published_ones(subfield, scale, expected):
    assert bartos_parameters(subfield, scale) == expected


def test_the_table_covers_the_binary_subfields():
    # BayesTools: every medicine name but "Inflammatory Bowel Disease", "Public Health" and
    # "Upper GI and Pancreatic Diseases" has logOR and logRR priors (53 + "Cochrane").
    assert len(BARTOS_2023) == 54
    for missing in ("Inflammatory Bowel Disease", "Public Health",
                    "Upper GI and Pancreatic Diseases"):
        assert missing not in BARTOS_2023
    for name, scales in BARTOS_2023.items():
        for scale, (t_scale, df, shape, _) in scales.items():
            assert 0.1 <= t_scale <= 1.2 and 1 <= df <= 7, (name, scale)
            assert (shape is None) == (name == "Childhood Cancer")


def test_subfields_are_named_by_slug():
    assert subfield_slug("Heart; Vascular") == "heart_vascular"
    assert subfield_slug("Bone, Joint and Muscle Trauma") == "bone_joint_and_muscle_trauma"
    assert bartos_parameters("acute_respiratory_infections", "log OR") == (0.48, 3, 1.67, 0.45)
    with pytest.raises(KeyError, match="unknown Cochrane subfield"):
        bartos_parameters("astrology", "log OR")
    with pytest.raises(KeyError, match="no priors on the"):
        bartos_parameters("Cochrane", "RD")


def test_van_zwet_mixture_is_internally_consistent():
    weights = np.array(VAN_ZWET_2021["weights"])
    snr, z = np.array(VAN_ZWET_2021["snr_sd"]), np.array(VAN_ZWET_2021["z_sd"])
    assert weights.sum() == pytest.approx(1.0)
    # z = SNR + N(0, 1): each component's z SD is sqrt(SNR SD^2 + 1), to the 2 decimals given.
    np.testing.assert_allclose(np.sqrt(snr**2 + 1), z, atol=0.006)


def test_van_zwet_prior_is_the_scaled_mixture():
    prior = van_zwet_prior(0.25)
    sds = np.array(VAN_ZWET_2021["snr_sd"]) * 0.25
    x = np.array([-0.5, 0.0, 0.3, 2.0])
    expected = np.log(sum(w * stats.norm.pdf(x, 0, s)
                          for w, s in zip(VAN_ZWET_2021["weights"], sds, strict=True)))
    np.testing.assert_allclose(prior.logpdf(x), expected, rtol=1e-12)
    with pytest.raises(PriorError):
        van_zwet_prior(-1.0)


def test_registry_names_every_subfield_and_keeps_both_scales():
    assert PRIOR_SETS["bartos_cochrane"] is BARTOS_SETS["bartos_cochrane"]
    assert len(BARTOS_SETS) == 54
    heart = get_prior("bartos_heart")
    assert (heart.effect, heart.tau) == (StudentT(0, 0.20, 2), InverseGamma(1.64, 0.29))
    # The normal (log RR) model uses Bartoš' own log RR priors, not the mapped log OR ones.
    on_rr = heart.on_scale("log RR", 0.3)
    assert (on_rr.effect, on_rr.tau) == (StudentT(0, 0.17, 3), InverseGamma(1.96, 0.24))
    assert on_rr.covariate.sigma == pytest.approx(0.7)
    assert "own log RR" in on_rr.summary
    childhood = bartos_prior_set("Childhood Cancer")
    assert childhood.tau == InverseGamma(1.77, 0.55)  # the whole database's, said so:
    assert "no heterogeneity prior for Childhood Cancer" in childhood.description
    with pytest.raises(PriorError, match="unknown Cochrane subfield"):
        bartos_prior_set("astrology")
    assert resolve_priors(["bartos_heart"])[0] is heart


def test_to_dict_round_trip_keeps_the_log_rr_pair():
    prior = get_prior("bartos_stroke")
    again = PriorSet.from_dict(prior.to_dict())
    assert again.to_dict() == prior.to_dict()
    assert again.log_rr == (StudentT(0, 0.13, 2), InverseGamma(1.52, 0.15))


def test_a_mapped_log_or_set_scales_the_new_families():
    # k tau ~ InvGamma(shape, k scale); k d ~ t(k mu, k sigma, nu).
    prior = PriorSet("p", effect=StudentT(0.1, 0.5, 4), tau=InverseGamma(2.0, 0.4))
    mapped = prior.on_scale("log RR", 0.25)
    e, t = mapped.effect, mapped.tau
    assert (e.mu, e.sigma, e.nu) == (pytest.approx(0.075), pytest.approx(0.375), 4)
    assert isinstance(t, InverseGamma) and (t.shape, t.scale) == (2.0, pytest.approx(0.3))
    # The scaled tau's median is k times the original's (scipy's own quantiles).
    assert mapped.tau.frozen().median() == pytest.approx(0.75 * prior.tau.frozen().median())


def test_prior_file_takes_student_t_and_inverse_gamma(tmp_path):
    path = tmp_path / "priors.toml"
    path.write_text(
        '[heavy]\neffect = { family = "student_t", mu = 0.0, sigma = 0.5, nu = 3 }\n'
        'tau = { family = "inverse_gamma", shape = 2.0, scale = 0.3 }\n'
        '[cochrane_tau]\nbase = "bartos_cochrane"\n'
        'tau = { family = "half_normal", sigma = 0.5 }\n'
        '[cochrane]\nbase = "bartos_cochrane"\n', encoding="utf-8")
    sets = load_prior_file(path)
    assert sets["heavy"].effect == StudentT(0.0, 0.5, 3.0)
    assert sets["heavy"].tau == InverseGamma(2.0, 0.3)
    assert sets["heavy"].summary.startswith("d ~ t(0, 0.5, 3 df); tau ~ InvGamma(2, 0.3)")
    # A new tau drops the base's own log RR pair (it describes the base's tau); none keeps it.
    assert sets["cochrane_tau"].log_rr is None
    assert sets["cochrane"].log_rr == get_prior("bartos_cochrane").log_rr


@pytest.mark.parametrize(("entry", "message"), [
    ('effect = { family = "student_t", mu = 0, sigma = 1, nu = -2 }',
     "effect: student_t: nu=-2 must be a positive finite number"),
    ('tau = { family = "inverse_gamma", shape = 0, scale = 1 }',
     "tau: inverse_gamma: shape=0 must be a positive finite number"),
    ('tau = { family = "student_t", mu = 0, sigma = 1, nu = 3 }',
     "tau: unknown family 'student_t' (known: half_normal, half_cauchy, lognormal_tau2, "
     "inverse_gamma)"),
    ('baseline = { family = "student_t", mu = 0, sigma = 1, nu = 3 }',
     "baseline: unknown family 'student_t' (known: normal)"),
])
def test_prior_file_errors_are_one_line(tmp_path, entry, message):
    path = tmp_path / "bad.toml"
    path.write_text(f"[p]\n{entry}\n", encoding="utf-8")
    with pytest.raises(PriorError) as info:
        load_prior_file(path)
    assert str(info.value) == f"{path}: [p] {message}"


def test_prior_file_unknown_parameter_names_the_known_ones(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text('[p]\ntau = { family = "inverse_gamma", shape = 1, rate = 1 }\n',
                    encoding="utf-8")
    with pytest.raises(PriorError) as info:
        load_prior_file(path)
    assert str(info.value) == f"{path}: unknown key 'p.tau.rate' (known: scale, shape)"


def test_inverse_gamma_density_is_on_tau():
    # InvGamma(1.77, 0.55) at tau = 0.3: 0.55^1.77 / Gamma(1.77) 0.3^-2.77 exp(-0.55 / 0.3).
    tau = 0.3
    by_hand = (0.55**1.77 / math.gamma(1.77) * tau ** (-2.77) * math.exp(-0.55 / tau))
    assert InverseGamma(1.77, 0.55).frozen().pdf(tau) == pytest.approx(by_hand, rel=1e-12)
