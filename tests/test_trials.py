"""The trial table, its variants and the loader's validation.

Expected totals come from the trial reports and the seed paper (see data/ivig_rsa/README.md),
summed by hand in the comments, not from the loader's own output.
"""

import pandas as pd
import pytest

import rebayes as rb
from conftest import HEADER, TEST_DATA
from rebayes.data.trials import load_dataset, variant_combinations


def arm_totals(frame: pd.DataFrame) -> tuple[int, int, int, int]:
    cols = ["events_treat", "n_treat", "events_control", "n_control"]
    return tuple(int(v) for v in frame[cols].sum())


def test_published_table_shape_and_totals():
    trials = rb.load_trials("ivig_rsa")
    assert list(trials.columns) == [
        "study",
        "stratum",
        "events_treat",
        "n_treat",
        "events_control",
        "n_control",
        "year",
        "timing",
        "placebo",
        "confidence",
        "source",
    ]
    assert trials["study"].nunique() == 10
    # Post-conception trials as reported: 20+9+15+17+13+24+23 = 121 / 27+17+22+22+29+40+42 = 199
    # vs 21+5+19+15+13+21+20 = 114 / 30+17+24+19+29+40+40 = 199 (SOURCES.md section 3).
    post = trials[trials.timing == "post_conception"]
    assert arm_totals(post) == (121, 199, 114, 199)
    # Pre-conception: Coulam 18/29 v 11/32, Stephenson 1998 secondary 7/10 v 6/11,
    # Stephenson 2010 16/23 v 15/24.
    pre = trials[trials.timing == "pre_conception"]
    assert arm_totals(pre) == (41, 62, 32, 67)


@pytest.mark.parametrize(
    ("study", "expected"),
    [
        ("Jablonowska 1999", (17, 22, 15, 19)),  # 77% vs 79% of 22 vs 19 (abstract)
        ("Qatar 2003", (24, 40, 21, 40)),  # 60% vs 52.5% of 40 vs 40 (abstract)
        ("Christiansen 2002", (13, 29, 13, 29)),  # 45% in both arms of 58 (abstract)
    ],
)
def test_strata_sum_to_the_published_trial_totals(study, expected):
    totals = rb.trial_totals(rb.load_trials("ivig_rsa"))
    assert arm_totals(totals[totals.study == study]) == expected


def test_seed_fit_reproduces_the_papers_pre_conception_totals():
    trials = rb.load_trials("ivig_rsa", variant="seed_fit")
    pre = trials[trials.timing == "pre_conception"]
    assert arm_totals(pre) == (46, 74, 37, 82)  # paper abstract: 46/74 vs 37/82
    st98 = rb.trial_totals(trials).set_index("study").loc["Stephenson 1998"]
    assert (st98.events_treat, st98.n_treat, st98.events_control, st98.n_control) == (
        12,
        22,
        11,
        21,
    )


def test_itt_variant_uses_randomised_denominators():
    trials = rb.load_trials("ivig_rsa", variant="itt").set_index("study")
    assert tuple(
        trials.loc["Coulam 1995", ["events_treat", "n_treat", "events_control", "n_control"]]
    ) == (18, 47, 11, 48)
    assert tuple(
        trials.loc[
            "German RSA/IVIG Group 1994", ["events_treat", "n_treat", "events_control", "n_control"]
        ]
    ) == (20, 33, 21, 31)


@pytest.mark.parametrize(
    ("variant", "secondary", "primary"),
    [
        ("published", (6, 12, 3, 13), (7, 17, 10, 16)),
        ("christiansen2002_7_14", (7, 14, 3, 13), (6, 15, 10, 16)),
        ("christiansen2002_8_16", (8, 16, 3, 13), (5, 13, 10, 16)),
    ],
)
def test_christiansen_2002_split_variants(variant, secondary, primary):
    trials = rb.load_trials("ivig_rsa", variant=variant)
    rows = trials[trials.study == "Christiansen 2002"].set_index("stratum")
    cols = ["events_treat", "n_treat", "events_control", "n_control"]
    assert tuple(rows.loc["secondary", cols]) == secondary
    assert tuple(rows.loc["primary", cols]) == primary
    assert arm_totals(rows) == (13, 29, 13, 29)


def test_variants_compose_and_hash_differs():
    both = rb.load_trials("ivig_rsa", variant="seed_fit+itt")
    assert both.attrs["variant"] == "seed_fit+itt"
    pre = both[both.timing == "pre_conception"]
    assert arm_totals(pre) == (46, 92, 37, 98)  # Coulam 47/48 instead of 29/32
    hashes = {
        rb.load_trials("ivig_rsa", variant=v).attrs["data_hash"] for v in ("published", "seed_fit")
    }
    assert len(hashes) == 2
    assert (
        rb.load_trials("ivig_rsa").attrs["data_hash"]
        == rb.load_trials("ivig_rsa").attrs["data_hash"]
    )


def test_variant_combinations_never_join_conflicting_variants():
    names = variant_combinations(load_dataset("ivig_rsa"))
    assert names[0] == "published"
    assert "seed_fit+itt" in names
    assert not any("christiansen2002_7_14" in n and "christiansen2002_8_16" in n for n in names)
    assert len(names) == 12  # 1 + 4 singles + 5 pairs + 2 triples


def test_any_table_in_the_format_loads_and_keeps_covariates():
    bcg = rb.load_trials(TEST_DATA / "bcg.csv")
    assert len(bcg) == 13
    assert "ablat" in bcg.columns and bcg.loc[0, "ablat"] == "44"  # undeclared: kept as text
    assert "stratum" not in bcg.columns  # a bare CSV has no strata: every row is a study


ROW = "A 2000,2000,primary,pre_conception,saline,{},{},{},{},verified,x"
IVIG_TOML = (load_dataset("ivig_rsa").directory / "dataset.toml").read_text(encoding="utf-8")


def _table(*rows: str) -> str:
    return "\n".join([HEADER, *rows]) + "\n"


BAD = [
    (
        "events over total",
        _table(ROW.format(31, 29, 1, 2)),
        "trials.csv:2: events_treat=31 exceeds n_treat=29",
    ),
    (
        "negative count",
        _table(ROW.format(1, 2, -1, 2)),
        "trials.csv:2: events_control=-1 is negative",
    ),
    ("zero n", _table(ROW.format(0, 0, 1, 2)), "trials.csv:2: n_treat=0 must be positive"),
    (
        "text in a count",
        _table(ROW.format("abc", 2, 1, 2)),
        "trials.csv:2: events_treat='abc' is not a whole number",
    ),
    (
        "decimal count",
        _table(ROW.format("3.5", 5, 1, 2)),
        "trials.csv:2: events_treat='3.5' is not a whole number",
    ),
    ("empty count", _table(ROW.format("", 5, 1, 2)), "trials.csv:2: events_treat is empty"),
    (
        "unknown stratum",
        _table(ROW.replace("primary", "tertiary").format(1, 2, 1, 2)),
        "trials.csv:2: stratum='tertiary' is not one of primary, secondary, mixed",
    ),
    (
        "unknown timing",
        _table(ROW.replace("pre_conception", "during").format(1, 2, 1, 2)),
        "trials.csv:2: timing='during' is not one of pre_conception, post_conception",
    ),
    (
        "unknown placebo",
        _table(ROW.replace("saline", "water").format(1, 2, 1, 2)),
        "trials.csv:2: placebo='water' is not one of albumin, saline, multivitamin",
    ),
    (
        "duplicate study x stratum",
        _table(ROW.format(1, 2, 1, 2), ROW.format(1, 3, 1, 3)),
        "trials.csv:3: stratum='primary' repeats study 'A 2000' (first at trials.csv:2); a "
        "trial's rows must differ in stratum",
    ),
    (
        "inconsistent timing",
        _table(
            ROW.format(1, 2, 1, 2),
            ROW.replace("primary", "secondary").replace("pre_", "post_").format(1, 2, 1, 2),
        ),
        "trials.csv:3: timing='post_conception' differs from 'pre_conception' at trials.csv:2 "
        "for study "
        "'A 2000'",
    ),
    (
        "missing column",
        "study,events_treat,n_treat,events_control\nA,1,2,1\n",
        "trials.csv:1: missing required column 'n_control'",
    ),
    (
        "wrong field count",
        _table("A 2000,2000,primary,pre_conception,saline,1,2"),
        "trials.csv:2: expected 11 fields, found 7",
    ),
    ("empty file", "", "trials.csv: empty file (no header line)"),
    ("header only", HEADER + "\n", "trials.csv: no data rows"),
    (
        "unterminated quote",
        _table(ROW.format(1, 2, 1, 2) + ',"oops'),
        "trials.csv:2: malformed CSV (unexpected end of data)",
    ),
    (
        "empty study",
        _table(ROW.replace("A 2000", "").format(1, 2, 1, 2)),
        "trials.csv:2: study is empty",
    ),
]


@pytest.mark.parametrize(("case", "text", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_gives_one_line_naming_file_line_and_field(
    case, text, message, write_csv, monkeypatch
):
    # A dataset folder whose dataset.toml declares the IVIG labels, so they are checked.
    path = write_csv(text, "trials.csv")
    (path.parent / "dataset.toml").write_text(IVIG_TOML, encoding="utf-8")
    monkeypatch.chdir(path.parent)
    with pytest.raises(rb.DataError) as info:
        rb.load_trials(path)
    assert str(info.value) == message
    assert "\n" not in str(info.value)


def test_unknown_dataset_and_variant():
    with pytest.raises(
        rb.DataError,
        match=r"^nope: no such file or dataset \(shipped datasets: "
        r"ivig_rsa, ivig_secondary_review\)$",
    ):
        rb.load_trials("nope")
    with pytest.raises(
        rb.DataError,
        match=r"^unknown variant 'seedfit' for dataset ivig_rsa "
        r"\(known: christiansen2002_7_14, ",
    ):
        rb.load_trials("ivig_rsa", variant="seedfit")


def test_bad_variant_entries_are_reported(tmp_path):
    (tmp_path / "trials.csv").write_text(_table(ROW.format(1, 2, 1, 2)), encoding="utf-8")
    (tmp_path / "dataset.toml").write_text('strata = "stratum"\n', encoding="utf-8")
    (tmp_path / "variants.toml").write_text(
        '[a]\n[[a.set]]\nstudy = "A 2000"\nstratum = "primary"\nn_treat = 0\n'
        '[b]\n[[b.set]]\nstudy = "A 2000"\nstratum = "secondary"\nn_treat = 3\n'
        '[c]\n[[c.set]]\nstudy = "A 2000"\nstratum = "primary"\ncolour = 3\n',
        encoding="utf-8",
    )
    with pytest.raises(
        rb.DataError,
        match=r"variants.toml: \[a\] set #1: n_treat=0 must be "
        r"positive$",
    ):
        rb.load_trials(tmp_path, variant="a")
    with pytest.raises(
        rb.DataError,
        match=r"\[b\] set #1: new row study='A 2000' "
        r"stratum='secondary' needs events_treat$",
    ):
        rb.load_trials(tmp_path, variant="b")
    with pytest.raises(rb.DataError, match=r"variants.toml: unknown key 'c.set\[1\].colour' \("):
        rb.load_trials(tmp_path, variant="c")


# --- one notion of a row: repeated study names ----------------------------------------------------


def test_repeated_first_author_is_three_trials_told_apart_by_year():
    # metadat's dat.egger2001: three separate Shechter trials (1989, 1991, 1995), no strata.
    from rebayes.data.trials import row_labels, trial_ids

    trials = rb.load_trials(TEST_DATA / "magnesium")
    assert len(trials) == 16 and trials.study.nunique() == 14
    labels = row_labels(trials)
    assert [x for x in labels if x.startswith("Shechter")] == [
        "Shechter (1989)", "Shechter (1991)", "Shechter (1995)"]
    assert labels[0] == "Morton"  # names that do not repeat stay as they are
    assert len(set(trial_ids(trials))) == 16
    assert any("Shechter" in note for note in trials.attrs["notes"])


def test_repeated_name_without_a_year_is_numbered_and_strata_are_one_trial():
    from rebayes.data.trials import row_labels, trial_ids

    # dat.axfors2021: ARCHAIC compared both drugs with one control arm (two rows, no year).
    hcq = rb.load_trials(TEST_DATA / "hcq")
    labels = row_labels(hcq)
    assert [x for x in labels if x.startswith("ARCHAIC")] == ["ARCHAIC", "ARCHAIC #2"]
    assert len(set(trial_ids(hcq))) == len(hcq)
    # The shipped IVIG table declares strata: a trial's rows are one trial.
    ivig = rb.load_trials("ivig_rsa")
    assert len(set(trial_ids(ivig))) == 10 < len(ivig)
    # Rows that share a name and a year fall back on numbers.
    same_year = hcq.head(2).assign(study="X", year=[2001, 2001])
    assert row_labels(same_year) == ["X", "X #2"]
