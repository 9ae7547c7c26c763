"""The audit establishes the paper's inconsistencies with numbers.

Hand calculations in comments use the paper's own printed figures.
"""

import math

import pytest
from scipy import stats

from rebayes.audit.paper import audit, compare, load_reported


@pytest.fixture(scope="module")
def rows():
    return {row.id: row for row in audit("ivig_rsa")}


def test_reported_table_covers_the_paper():
    figures = load_reported("ivig_rsa")
    assert len(figures) >= 20
    locations = " ".join(f.location for f in figures)
    for place in ("Abstract", "3.1", "3.3.1", "3.3.2", "Figure 2", "Figure 3", "Figure 4",
                  "Figure 5", "Figure 6"):
        assert place in locations


def test_headline_rr_is_the_rr_of_no_live_birth(rows):
    row = rows["overall_rr"]
    assert row.verdict == "differs"
    # Live birth 149/246 vs 138/250: RR = 0.60569/0.552 = 1.0973 -> the printed 0.88 is not it.
    assert row.from_paper.value == pytest.approx((149 / 246) / (138 / 250), rel=1e-9)
    # No live birth 97/246 vs 112/250: RR = 0.39431/0.448 = 0.8802,
    # SE(log RR) = sqrt(1/97 - 1/246 + 1/112 - 1/250) = 0.10570 -> CI 0.715-1.083, P = 0.227.
    se = math.sqrt(1 / 97 - 1 / 246 + 1 / 112 - 1 / 250)
    rr = (97 / 246) / (112 / 250)
    assert f"RR {rr:.3f} ({rr * math.exp(-1.959964 * se):.3f}-" in row.explanation
    assert "NO live birth" in row.explanation
    assert round(2 * stats.norm.sf(abs(math.log(rr) / se)), 2) == 0.23


@pytest.mark.parametrize(
    ("figure", "subgroups", "pooled", "pooled_p"),
    [
        # Primary 0.88 (0.71-1.07) vs secondary 1.24 (0.98-1.57); pooled 1.05 (0.90-1.22).
        ("type_p", ((0.88, 0.71, 1.07), (1.24, 0.98, 1.57)), (1.05, 0.90, 1.22), 0.53),
        # Pre 1.38 (1.03-1.86) vs post 1.00 (0.84-1.18); pooled 1.09 (0.95-1.27).
        ("timing_p", ((1.38, 1.03, 1.86), (1.00, 0.84, 1.18)), (1.09, 0.95, 1.27), 0.24),
    ],
)
def test_p_values_beside_pooled_rrs_are_subgroup_difference_tests(
    rows, figure, subgroups, pooled, pooled_p
):
    def log_se(rr, lo, hi):
        return math.log(rr), (math.log(hi) - math.log(lo)) / (2 * 1.959964)

    (y1, s1), (y2, s2) = (log_se(*g) for g in subgroups)
    z_between = (y1 - y2) / math.hypot(s1, s2)
    p_between = 2 * stats.norm.sf(abs(z_between))  # = chi2 test with 1 df
    row = rows[figure]
    assert row.verdict == "reproduced"
    assert row.from_paper.p == pytest.approx(p_between, rel=1e-9)
    y, s = log_se(*pooled)
    assert round(2 * stats.norm.sf(abs(y / s)), 2) == pooled_p
    assert f"Z-test P = {pooled_p:.2f}" in row.explanation


def test_pre_conception_reproduces_exactly_only_with_seed_fit(rows):
    for figure in ("pre_rr", "pre_counts", "n_pre_women"):
        assert "seed_fit" in rows[figure].variants_reproducing
        assert "published" not in rows[figure].variants_reproducing
        assert all(v.startswith("seed_fit") for v in rows[figure].variants_reproducing)


def test_post_conception_totals_cannot_be_rebuilt(rows):
    row = rows["post_counts"]
    assert row.verdict == "differs"
    assert row.from_trials.counts == "121/199 vs 114/199"
    assert row.variants_reproducing == ()


def test_comparison_rounds_like_the_paper():
    fig = next(f for f in load_reported("ivig_rsa") if f.id == "pre_rr")
    from rebayes.audit.paper import Recomputed

    assert compare(fig, Recomputed("x", 1.3849, 1.0302, 1.8626, 0.031)) == "exact"
    assert compare(fig, Recomputed("x", 1.378, 1.023, 1.855, 0.035)) == "last digit"
    assert compare(fig, Recomputed("x", 1.29, 0.97, 1.72, 0.08)) is None
    count = next(f for f in load_reported("ivig_rsa") if f.id == "n_primary_only")
    assert compare(count, Recomputed("x", 1.0)) is None  # counts never match "nearly"


def test_every_figure_gets_a_verdict_and_explanation(rows):
    for row in rows.values():
        assert row.verdict in ("reproduced", "differs", "not_recomputable")
        assert row.explanation


def test_verdict_counts(rows):
    verdicts = [row.verdict for row in rows.values()]
    assert (verdicts.count("reproduced"), verdicts.count("differs"),
            verdicts.count("not_recomputable")) == (16, 10, 1)


HEADER = "id,location,statistic,reported,value,ci_low,ci_high,p,counts,analysis,paper_basis,note"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("id,location,reported\nx,y,z\n", "reported.csv:1: missing required column 'statistic'"),
        (f"{HEADER}\nr1,Fig 1,rr,RR 1.2,1.2,,,\n", "reported.csv:2: expected 12 fields, found 8"),
        (f"{HEADER}\nr1,Fig 1,hr,HR 1.2,1.2,,,,,overall,,\n",
         "reported.csv:2: statistic='hr' is not one of count, rate, rr, effect, counts, z, p, "),
        (f"{HEADER}\nr1,Fig 1,rr,RR 1.2,1.2x,,,,,overall,,\n",
         "reported.csv:2: value='1.2x' is not a number"),
        (f"{HEADER}\nr1,Fig 1,rr,RR 1.2,1.2,,,,,overall,,\nr1,Fig 2,z,Z 2,2,,,,,overall,,\n",
         "reported.csv:3: id='r1' repeats line 2"),
        (f"{HEADER}\nr1,Fig 1,rr,RR 1.2,1.2,,,,,overall method=REML,,\n",
         "reported.csv:2: analysis: method='REML' is not one of MH, IV, PETO, DL"),
        (f"{HEADER}\nr1,Fig 1,counts,a,,,,,12 of 30,overall,,\n",
         "reported.csv:2: counts='12 of 30' is not 'a/n' or 'a/n vs c/m'"),
        (f'{HEADER}\nr1,"Fig 1,rr,RR 1.2,1.2,,,,,overall,,\n', "reported.csv:2: malformed CSV"),
        (f"{HEADER}\n", "reported.csv: nothing to audit (no data rows)"),
    ],
)
def test_malformed_reported_csv_is_one_line_naming_file_line_and_field(
    tmp_path, monkeypatch, body, message
):
    from rebayes.audit.paper import AuditError

    (tmp_path / "trials.csv").write_text(
        "study,events_treat,n_treat,events_control,n_control\nA,1,10,2,10\n", encoding="utf-8"
    )
    (tmp_path / "reported.csv").write_text(body, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AuditError) as info:
        audit(tmp_path)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


def test_bare_csv_has_nothing_to_audit(tmp_path, monkeypatch, capsys):
    from rebayes.cli import main

    (tmp_path / "some.csv").write_text(
        "study,events_treat,n_treat,events_control,n_control\nA,1,10,2,10\n", encoding="utf-8"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["audit", "--data", "some.csv"]) == 2
    assert capsys.readouterr().err == (
        "rebayes audit: error: some.csv: nothing to audit (a bare CSV has no reported.csv; "
        "give a dataset folder that holds one)\n"
    )
    (tmp_path / "folder").mkdir()
    (tmp_path / "some.csv").rename(tmp_path / "folder" / "trials.csv")
    assert main(["audit", "--data", "folder"]) == 2
    assert capsys.readouterr().err == (
        "rebayes audit: error: folder/reported.csv: nothing to audit (no such file)\n"
    )


def test_verdicts_say_what_a_figure_was_reproduced_from():
    rows = {r.id: r for r in audit("ivig_rsa")}
    # rate_ivig: 149/246 from the paper's own subgroup totals (46/74 + 103/172).
    assert rows["rate_ivig"].basis == "consistent with the publication's own totals"
    # n_trials: 10, recomputed only from the trial table.
    assert rows["n_trials"].basis == "reproduced from the trial reports (our reconstruction)"
    assert rows["overall_rr"].basis == ""  # differs
    assert "matches the RR of NO live birth" in rows["overall_rr"].explanation


# --- other datasets: trials counted as the dataset defines them, the declared measure -------


def test_trials_are_counted_as_the_dataset_defines_them(tmp_path):
    import shutil

    from conftest import TEST_DATA

    # dat.egger2001: 16 trials, three of them by Shechter (1989, 1991, 1995); Egger, Davey
    # Smith & Altman (2001) count 16 trials. No strata declared: every row is a trial.
    folder = tmp_path / "magnesium"
    shutil.copytree(TEST_DATA / "magnesium", folder)
    (folder / "reported.csv").write_text(
        "id,location,statistic,reported,value,ci_low,ci_high,p,counts,analysis,paper_basis,"
        "note\ntrials,Chapter 11,count,16 trials,16,,,,,n_trials,,\n", encoding="utf-8")
    (row,) = audit(folder)
    assert (row.recomputed, row.verdict) == ("16", "reproduced")
    assert row.basis == "reproduced from the trial table"  # no paper-specific words
    # The shipped IVIG table declares strata: its 10 trials span more rows.
    ivig = {r.id: r for r in audit("ivig_rsa")}
    assert ivig["n_trials"].recomputed == "10"


def test_a_risk_difference_is_audited_as_a_difference():
    from conftest import TEST_DATA

    # Hine et al. 1989 (tests/data/lidocaine): "risk difference, 0.029; 95% confidence
    # interval, +0.004 to +0.055"; metafor rma(measure="RD", method="FE") on dat.hine1989:
    # 0.029444 [0.003831, 0.055058].
    rows = {r.id: r for r in audit(TEST_DATA / "lidocaine")}
    assert rows["trials"].verdict == "reproduced" and rows["trials"].recomputed == "6"
    rd = rows["rd"]
    assert rd.verdict == "reproduced"
    assert rd.recomputed.startswith("RD 0.0294 (0.0038-0.0551)")
    assert rd.from_trials.measure == "RD"


def test_the_audit_page_speaks_of_the_dataset_not_the_shipped_paper():
    from conftest import TEST_DATA
    from rebayes.audit.paper import audit_intro, audit_markdown
    from rebayes.data.trials import load_dataset

    found = load_dataset(TEST_DATA / "lidocaine")
    rows = audit(TEST_DATA / "lidocaine")
    intro = audit_intro(found.schema, "published", rows)
    assert intro == (
        "Each figure recomputed from the trial table (variant `published`) with RevMan 5's "
        "formulas; every data variant tried. A figure is reproduced when the recomputed "
        "numbers, rounded as the publication rounds, equal the printed ones."
    )
    markdown = audit_markdown(rows, "published", schema=found.schema)
    assert "the published analysis: IV, Fixed RD" in markdown
    for words in ("RevMan 5.3", "the paper", "our reconstruction", "trial reports"):
        assert words not in intro + markdown
    # The shipped dataset keeps its own words, from its dataset.toml.
    ivig = load_dataset("ivig_rsa")
    intro = audit_intro(ivig.schema, "published", audit("ivig_rsa"))
    assert intro == (
        "Each figure recomputed from the publication's own stated totals and from the trial "
        "table (variant `published`) with RevMan 5.3's formulas; every data variant tried. A "
        "figure is reproduced when the recomputed numbers, rounded as the paper rounds, equal "
        "the printed ones."
    )
