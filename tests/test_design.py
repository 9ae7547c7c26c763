"""Designs of the shipped analyses and of other data: rows, covariates, subgroups, by hand."""

import math

import numpy as np
import pytest

import rebayes as rb
from conftest import ivig_spec
from rebayes.bayes.design import build_design
from rebayes.bayes.spec import AnalysisSpec, SpecError


def test_overall_design_sums_strata_like_trial_totals():
    design = build_design(ivig_spec("overall"))
    totals = rb.trial_totals(rb.load_trials("ivig_rsa"))
    assert design.rows == tuple(totals["study"])
    assert design.studies == design.rows
    np.testing.assert_array_equal(design.events[:, 1], totals["events_treat"])
    np.testing.assert_array_equal(design.n[:, 0], totals["n_control"])
    assert design.X.shape == (10, 0) and design.groups == ()


def test_timing_design_codes_pre_conception_as_one():
    design = build_design(ivig_spec("timing"))
    assert design.coefs == ("pre_conception",)
    coded = design.X + np.asarray(design.centres)  # the indicator before centring
    pre = {row for row, x in zip(design.rows, coded[:, 0], strict=True) if x == 1}
    # The three trials that started IVIG before conception (trials.csv, timing column).
    assert pre == {"Coulam 1995", "Stephenson 1998", "Stephenson 2010"}
    # Centred at its share of the 10 trials: d is the average of the two timings' effects
    # weighted 7:3, and the column's coefficient is still pre- against post-conception.
    assert design.centres == pytest.approx((0.3,))
    np.testing.assert_allclose(design.X[:, 0], np.where(coded[:, 0] == 1, 0.7, -0.3))
    assert design.intercept_at == ("averaged over timing of IVIG (post_conception 0.70, "
                                   "pre_conception 0.30) with the levels' shares of the 10 "
                                   "analysed rows")
    assert design.subgroups == ("post_conception", "pre_conception")
    assert design.ratios == (
        ("pre_conception vs post_conception", "pre_conception", "post_conception"),
    )


def test_rsa_type_excludes_mixed_strata_and_splits_trials():
    design = build_design(ivig_spec("rsa_type"))
    assert "mixed" not in design.row_stratum
    assert "Jablonowska 1999 (primary)" in design.rows
    assert "Jablonowska 1999 (secondary)" in design.rows
    # Strata of one trial share its random effect.
    a = design.study_index[design.rows.index("Jablonowska 1999 (primary)")]
    b = design.study_index[design.rows.index("Jablonowska 1999 (secondary)")]
    assert a == b
    assert len(design.studies) == 7
    secondary = np.array([float(s == "secondary") for s in design.row_stratum])
    np.testing.assert_allclose(design.X[:, 0], secondary - secondary.mean())
    assert any("Christiansen 1995, Coulam 1995, Perino 1997" in n for n in design.notes)


def test_rsa_type_share_uses_known_share_and_drops_unknown():
    spec = AnalysisSpec(
        "share",
        split_by_stratum=True,
        covariates="rsa_type",
        effect="contrast",
        mixed="share",
        subgroup="rsa_type",
        data="ivig_rsa",
    )
    design = build_design(spec)
    row = design.rows.index("Christiansen 1995 (mixed)")
    coded = design.X[:, 0] + design.centres[0]
    assert coded[row] == pytest.approx(0.76)  # dataset.toml: rsa_type shares
    # The centre is the rows' mean share of secondary RSA, the known share included.
    assert design.centres[0] == pytest.approx(coded.mean())
    assert abs(design.X[:, 0].mean()) < 1e-12
    assert design.row_subgroup[row] == ""  # in neither RSA-type subgroup
    assert "Coulam 1995 (mixed)" not in design.rows
    assert any("left out (share unknown): Coulam 1995, Perino 1997" in n for n in design.notes)


def test_timing_within_type_drops_the_unidentified_interaction_only_when_unidentified():
    spec = ivig_spec("timing_within_type")
    published = build_design(spec)
    # No primary-RSA stratum received IVIG before conception in the published table.
    assert published.coefs == ("secondary", "pre_conception")
    assert "primary/pre_conception" not in published.subgroups
    assert any("secondary:pre_conception" in n for n in published.notes)
    seed_fit = build_design(spec, variant="seed_fit")  # adds Stephenson 1998's primary stratum
    assert seed_fit.coefs == ("secondary", "pre_conception", "secondary:pre_conception")
    assert "primary/pre_conception" in seed_fit.subgroups
    assert [r[0] for r in seed_fit.ratios] == [
        "primary: pre_conception vs post_conception",
        "secondary: pre_conception vs post_conception",
    ]


def test_placebo_separate_groups():
    design = build_design(ivig_spec("placebo"))
    assert design.groups == ("albumin", "saline", "multivitamin")
    qatar = design.rows.index("Qatar 2003")
    assert design.groups[design.group_index[qatar]] == "multivitamin"
    assert [r[0] for r in design.ratios] == ["saline vs albumin", "multivitamin vs albumin"]


def test_normal_design_log_rr_by_hand():
    design = build_design(ivig_spec("normal_approximation"))
    row = design.rows.index("Stephenson 2010")  # 16/23 vs 15/24, no zero cell
    assert design.yi[row] == pytest.approx(math.log((16 / 23) / (15 / 24)))
    assert design.vi[row] == pytest.approx(1 / 16 - 1 / 23 + 1 / 15 - 1 / 24)


def test_design_errors_name_the_problem(write_csv):
    path = write_csv(
        "study,events_treat,n_treat,events_control,n_control,dose\nA,5,10,4,10,1\nB,6,10,5,10,2\n"
    )
    with pytest.raises(SpecError, match="covariate 'weight' is not a column of the table"):
        build_design(AnalysisSpec("x", data=str(path), effect="contrast", covariates="weight"))
    with pytest.raises(SpecError, match="strata= needs a dataset that declares a strata column"):
        build_design(AnalysisSpec("x", data=str(path), strata="primary"))
    with pytest.raises(SpecError, match="no rows in strata tertiary"):
        build_design(AnalysisSpec("x", data="ivig_rsa", strata="tertiary"))
    with pytest.raises(SpecError, match="rsa_type varies within trials: set split_by_stratum"):
        build_design(AnalysisSpec("x", data="ivig_rsa", effect="contrast", covariates="rsa_type"))
    numeric = build_design(AnalysisSpec("x", data=str(path), effect="contrast", covariates="dose"))
    assert numeric.coefs == ("dose",) and numeric.X[:, 0].tolist() == [-0.5, 0.5]
    assert numeric.centres == (1.5,) and numeric.intercept_at.startswith("at dose = 1.5 (")
