"""RevMan 5 import: the files' own stored results are the reference.

References
----------
- ``tests/data/Fleiss1993.rm5``: the RevMan 5.0 file R's meta package ships (Fleiss 1993,
  aspirin after myocardial infarction). RevMan stored for analysis 1.1 (M-H, Fixed OR):
  OR 0.8968655609130709 [0.8405144008917793, 0.9569947088336491], Z 3.287633061337987,
  P 0.0010103343130005407, Chi2 9.946055983220074, df 6, P(Chi2) 0.1269422521561745,
  I2 39.67458045558399%. Its analysis 1.2 is continuous (skipped).
- ``tests/data/synthetic_subgroups.rm5``: written by ``tests/data/make_synthetic_rm5.py``,
  whose stored numbers come from statsmodels' ``combine_effects`` (DerSimonian-Laird) on log
  RRs computed by hand there, not from rebayes.
"""

import math
import subprocess
import sys
import tomllib

import numpy as np
import pytest
from numpy.testing import assert_allclose

import rebayes as rb
import revman_files
from conftest import TEST_DATA
from rebayes.audit.paper import audit
from rebayes.cli import main
from rebayes.data.revman import MARKER, RevManError, import_rm5, read_rm5
from rebayes.folders import OutputDirectoryError
from rebayes.frequentist.pooling import analyze, meta_analysis

FLEISS = TEST_DATA / "Fleiss1993.rm5"
SYNTHETIC = TEST_DATA / "synthetic_subgroups.rm5"


@pytest.fixture
def fleiss(tmp_path):
    import_rm5(FLEISS, tmp_path / "fleiss")
    return tmp_path / "fleiss" / "1.1"


@pytest.fixture
def synthetic(tmp_path):
    import_rm5(SYNTHETIC, tmp_path / "synthetic")
    return tmp_path / "synthetic" / "1.1"


def test_fleiss_reads_one_dichotomous_outcome_and_skips_the_continuous_one():
    review = read_rm5(FLEISS)
    assert review.title == "Examples from Fleiss 1993"
    assert [o.number for o in review.outcomes] == ["1.1"]
    assert review.skipped == (
        "skipped outcome 1.2 'Mental Health Treatment versus Control' (continuous; only "
        "dichotomous outcomes are imported)",
    )
    outcome = review.outcomes[0]
    assert (outcome.measure, outcome.method, outcome.model, outcome.ci_level) == (
        "OR", "MH", "fixed", 0.95,
    )
    assert (outcome.treatment, outcome.control) == ("Aspirin", "Control")
    # RevMan's default labels "Favours experimental" | "Favours control": the left side (fewer
    # deaths with aspirin) is the good one.
    assert outcome.higher_is_better is False
    assert outcome.direction.source == (
        "RevMan graph labels: left 'Favours experimental', right 'Favours control'"
    )


def test_fleiss_folder_reproduces_what_revman_stored(fleiss):
    trials = rb.load_trials(fleiss)
    assert list(trials.study) == ["MRC-1", "CDP", "MRC-2", "GASP", "PARIS", "AMIS", "ISIS-2"]
    assert (trials.events_treat.sum(), trials.n_treat.sum()) == (2128, 14186)
    res = meta_analysis(trials, "MH", "OR")
    assert_allclose(
        (res.estimate, res.ci_low, res.ci_high),
        (0.8968655609130709, 0.8405144008917793, 0.9569947088336491), rtol=1e-6,
    )
    assert_allclose(abs(res.z), 3.287633061337987, rtol=1e-6)
    assert_allclose(res.p, 0.0010103343130005407, rtol=1e-5)
    assert_allclose(res.q, 9.946055983220074, rtol=1e-6)
    assert res.df == 6
    assert_allclose(res.p_q, 0.1269422521561745, rtol=1e-5)
    assert_allclose(res.i2, 39.67458045558399, rtol=1e-6)
    # analyze() takes measure/method/model from dataset.toml.
    assert_allclose(analyze(trials).overall.estimate, 0.8968655609130709, rtol=1e-6)
    rows = audit(fleiss)
    assert {r.statistic for r in rows} == {
        "counts", "effect", "z", "p", "chi2", "p_chi2", "i2", "df",
    }
    assert all(r.verdict == "reproduced" for r in rows)


def test_fleiss_dataset_toml(fleiss):
    text = (fleiss / "dataset.toml").read_text(encoding="utf-8")
    meta = tomllib.loads(text)
    assert meta["title"] == (
        "Examples from Fleiss (1993): Aspirin for Preventing Death after Myocardial Infarction"
    )
    assert (meta["measure"], meta["method"], meta["model"], meta["ci_level"]) == (
        "OR", "MH", "fixed", 0.95,
    )
    # The direction, read from RevMan's standard labels, with its evidence beside it.
    assert meta["higher_is_better"] is False
    assert meta["direction_evidence"] == (
        "RevMan graph labels: left 'Favours experimental', right 'Favours control'"
    )
    assert "# Direction from RevMan's graph labels" in text
    # RevMan's outcome name is a title, not a noun: sentences quote it.
    assert meta["outcome_title"] == "Aspirin for Preventing Death after Myocardial Infarction"
    assert "outcome" not in meta
    assert meta["citation"]["text"] == "Examples from Fleiss 1993"
    schema = rb.load_trials(fleiss).attrs["schema"]
    assert schema.direction_declared and schema.higher_is_better is False
    assert schema.outcome_phrase == (
        "the outcome 'Aspirin for Preventing Death after Myocardial Infarction'"
    )


def test_synthetic_subgroups_random_effects_match_the_stored_numbers(synthetic):
    trials = rb.load_trials(synthetic)
    # The trial "Smith 2001" appears in two subgroups: two rows, as RevMan stores it.
    assert list(trials.study).count("Smith 2001") == 2
    res = analyze(trials, by="subgroup")
    assert list(res.subgroups) == ["Adults", "Children"]
    assert set(res.not_estimable) == {"Neonates"}  # its one trial is 0/14 vs 0/19
    assert res.overall.label == "IV, Random"
    # Stored total (statsmodels DL): RR 0.677559448126222 [0.4504084078657171,
    # 1.019267841647354], tau2 0.07026557703609977, Chi2 6.045173803240813, I2 33.8315%.
    total = res.overall
    assert_allclose((total.estimate, total.ci_low, total.ci_high),
                    (0.677559448126222, 0.4504084078657171, 1.019267841647354), rtol=1e-6)
    assert_allclose((total.tau2, total.q, total.i2),
                    (0.07026557703609977, 6.045173803240813, 33.83151369683361), rtol=1e-6)
    # Adults, stored: RR 0.7585916337526126, tau2 0.05633043303134739.
    adults = res.subgroups["Adults"]
    assert_allclose((adults.estimate, adults.tau2),
                    (0.7585916337526126, 0.05633043303134739), rtol=1e-6)
    # Test for subgroup differences over the two estimable subgroups, stored:
    # Q 1.4970731737717529, P 0.22112225169366534, I2 33.202997854768704%.
    assert res.test.df == 1
    assert_allclose((res.test.q, res.test.p, res.test.i2),
                    (1.4970731737717529, 0.22112225169366534, 33.202997854768704), rtol=1e-6)


def test_synthetic_children_subgroup_by_hand(synthetic):
    # Children: 5/30 vs 11/31, and 0/20 vs 4/21 with 0.5 added to each cell (0.5/21 vs 4.5/22).
    # Q = 0.83 < df = 1, so tau2 = 0 and the random-effects estimate is the IV one.
    y = np.array([math.log((5 / 30) / (11 / 31)), math.log((0.5 / 21) / (4.5 / 22))])
    v = np.array([1 / 5 - 1 / 30 + 1 / 11 - 1 / 31, 1 / 0.5 - 1 / 21 + 1 / 4.5 - 1 / 22])
    w = 1 / v
    est, se = (w * y).sum() / w.sum(), w.sum() ** -0.5
    res = analyze(rb.load_trials(synthetic), where={"subgroup": "Children"})
    assert res.overall.tau2 == 0.0
    assert_allclose(res.overall.estimate, math.exp(est), rtol=1e-12)
    assert_allclose(res.overall.ci_high, math.exp(est + 1.959964 * se), rtol=1e-12)


def test_synthetic_audit_checks_every_stored_figure(synthetic):
    rows = audit(synthetic)
    assert len(rows) == 31
    assert all(r.verdict == "reproduced" for r in rows), [
        (r.id, r.recomputed) for r in rows if r.verdict != "reproduced"
    ]
    ids = {r.id for r in rows}
    assert {"subgroup_chi2", "subgroup_p", "subgroup_i2", "total_tau2",
            "subgroup3_counts"} <= ids
    assert "subgroup3_effect" not in ids  # RevMan: not estimable


def test_synthetic_dataset_toml_declares_subgroups_and_direction(synthetic):
    meta = tomllib.loads((synthetic / "dataset.toml").read_text(encoding="utf-8"))
    assert meta["covariates"]["subgroup"]["levels"] == ["Adults", "Children", "Neonates"]
    assert meta["covariates"]["subgroup"]["kind"] == "categorical"
    # "Favours drug" on the left (fewer relapses with the drug): fewer events is better.
    assert meta["higher_is_better"] is False
    assert (meta["method"], meta["model"], meta["measure"]) == ("IV", "random", "RR")
    assert meta["citation"]["doi"] == "10.0000/synthetic.rm5"
    header = (synthetic / "trials.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == "study,events_treat,n_treat,events_control,n_control,subgroup,year"


def test_refuses_a_folder_it_did_not_write(tmp_path):
    foreign = tmp_path / "out" / "1.1"
    foreign.mkdir(parents=True)
    (foreign / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(OutputDirectoryError, match="holds no rebayes import"):
        import_rm5(FLEISS, tmp_path / "out")
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


def test_reimport_replaces_its_own_folder(tmp_path):
    import_rm5(FLEISS, tmp_path)
    (tmp_path / "1.1" / "trials.csv").write_text("stale", encoding="utf-8")
    import_rm5(FLEISS, tmp_path)
    assert (tmp_path / "1.1" / "trials.csv").read_text(encoding="utf-8").startswith("study,")
    assert (tmp_path / "1.1" / MARKER).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.1"]


def test_a_failed_write_leaves_no_partial_folder(tmp_path, monkeypatch):
    import rebayes.data.revman as revman

    real = revman.write_text_atomic

    def failing(path, text):
        if path.name == "reported.csv":
            raise OSError(28, "No space left on device", str(path))
        real(path, text)

    monkeypatch.setattr(revman, "write_text_atomic", failing)
    with pytest.raises(OSError):
        import_rm5(FLEISS, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_cli_import_notes_skipped_outcomes(tmp_path, capsys):
    code = main(["import", str(FLEISS), str(tmp_path / "out")])
    out, err = capsys.readouterr()
    assert code == 0
    assert out.strip() == str(tmp_path / "out" / "1.1")
    assert err == (
        "rebayes import: note: skipped outcome 1.2 'Mental Health Treatment versus Control' "
        "(continuous; only dichotomous outcomes are imported)\n"
        "rebayes import: note: outcome 1.1: fewer events is better (graph labels "
        "'Favours experimental' | 'Favours control')\n"
    )
    code = main(["audit", "--data", str(tmp_path / "out" / "1.1"), "--json"])
    assert code == 0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not xml at all", "bad.rm5: not a RevMan 5 file (XML error: syntax error: line 1, "
                           "column 0)"),
        ("<REVIEW/>", "bad.rm5: not a RevMan 5 file (root element <REVIEW>)"),
        ("<COCHRANE_REVIEW><ANALYSES_AND_DATA/></COCHRANE_REVIEW>",
         "bad.rm5: no dichotomous outcome to import"),
        ('<COCHRANE_REVIEW><ANALYSES_AND_DATA><COMPARISON NO="1"><DICH_OUTCOME NO="2" '
         'EFFECT_MEASURE="OR" METHOD="MH"><DICH_DATA STUDY_ID="S" EVENTS_1="x" TOTAL_1="3" '
         'EVENTS_2="1" TOTAL_2="3"/></DICH_OUTCOME></COMPARISON></ANALYSES_AND_DATA>'
         "</COCHRANE_REVIEW>",
         "bad.rm5: outcome 1.2, study 'S': EVENTS_1='x' is not a whole number"),
    ],
)
def test_bad_rm5_is_one_line(tmp_path, capsys, content, message):
    bad = tmp_path / "bad.rm5"
    bad.write_text(content, encoding="utf-8")
    code = main(["import", str(bad), str(tmp_path / "out")])
    _, err = capsys.readouterr()
    assert code == 2
    assert err == f"rebayes import: error: {message}\n"
    assert not (tmp_path / "out").exists()


def _one_outcome(tmp_path, labels, swap="NO", extra=""):
    body = (
        '<COCHRANE_REVIEW><STUDIES_AND_REFERENCES><STUDIES><INCLUDED_STUDIES>'
        '<STUDY ID="S1" NAME="Lee 2003" YEAR="2003"/></INCLUDED_STUDIES></STUDIES>'
        '</STUDIES_AND_REFERENCES><ANALYSES_AND_DATA><COMPARISON NO="2"><NAME>A vs B</NAME>'
        f'<DICH_OUTCOME NO="3" EFFECT_MEASURE="RR" METHOD="MH" RANDOM="NO" SWAP_EVENTS="{swap}"'
        f' TOTALS="YES" SUBGROUPS="NO" CI_TOTAL="95" DF="0" {extra}>'
        "<NAME>Cure</NAME><GROUP_LABEL_1>Drug A</GROUP_LABEL_1>"
        "<GROUP_LABEL_2>Drug B</GROUP_LABEL_2>"
        f"<GRAPH_LABEL_1>{labels[0]}</GRAPH_LABEL_1><GRAPH_LABEL_2>{labels[1]}</GRAPH_LABEL_2>"
        '<DICH_DATA STUDY_ID="S1" EVENTS_1="10" TOTAL_1="20" EVENTS_2="5" TOTAL_2="20"/>'
        "</DICH_OUTCOME></COMPARISON></ANALYSES_AND_DATA></COCHRANE_REVIEW>"
    )
    path = tmp_path / "one.rm5"
    path.write_text(body, encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        # RevMan's defaults: the left (fewer events with the experimental arm) is the good side.
        (("Favours [experimental]", "Favours [control]"), False),  # RevMan 5.3's defaults
        (("Favours experimental", "Favours control"), False),  # RevMan 5.0's defaults
        (("Favours Drug B", "Favours Drug A"), True),  # more cures with A drawn on the right
        (("Favours Drug A", "Favours control"), False),
        (("Favours control", "Favours experimental"), True),  # defaults swapped on purpose
        (("Experimental better", "Control better"), False),
        (("Lower", "Higher"), None),  # not RevMan's words: no direction
        (("Favours Drug A", "Favours experimental"), None),  # both name the same arm
    ],
)
def test_direction_only_from_labels_that_say_it(tmp_path, labels, expected):
    path = _one_outcome(tmp_path, labels)
    assert read_rm5(path).outcomes[0].higher_is_better is expected
    import_rm5(path, tmp_path / "out")
    meta = tomllib.loads((tmp_path / "out" / "2.3" / "dataset.toml").read_text("utf-8"))
    assert meta.get("higher_is_better") is expected
    if expected is None:
        assert "direction_evidence" not in meta
    else:
        assert meta["direction_evidence"] == (
            f"RevMan graph labels: left {labels[0]!r}, right {labels[1]!r}"
        )


def test_swapped_events_are_imported_as_the_non_events_revman_analysed(tmp_path):
    # SWAP_EVENTS: RevMan analysed non-cures, 10/20 vs 15/20: RR = 0.5/0.75 = 2/3,
    # SE = sqrt(1/10 - 1/20 + 1/15 - 1/20) (values written into the file by hand here).
    se = math.sqrt(1 / 10 - 1 / 20 + 1 / 15 - 1 / 20)
    stored = (f'EFFECT_SIZE="{2 / 3}" CI_START="{2 / 3 * math.exp(-1.959964 * se)}" '
              f'CI_END="{2 / 3 * math.exp(1.959964 * se)}" ESTIMABLE="YES" EVENTS_1="10" '
              'TOTAL_1="20" EVENTS_2="5" TOTAL_2="20"')
    path = _one_outcome(tmp_path, ("Favours Drug A", "Favours Drug B"), "YES", stored)
    import_rm5(path, tmp_path / "out")
    folder = tmp_path / "out" / "2.3"
    trials = rb.load_trials(folder)
    assert (trials.events_treat[0], trials.events_control[0]) == (10, 15)
    assert "non-events" in (folder / "dataset.toml").read_text(encoding="utf-8")
    rows = audit(folder)
    assert {r.id: r.verdict for r in rows} == {
        "total_counts": "reproduced", "total_effect": "reproduced",
    }


# --- what a hostile or odd file can make an import do ----------------------------------------


def tree(root, skip=()):
    """Every path under ``root`` (links not followed), relative, except under ``skip``."""
    return sorted(
        p.relative_to(root).as_posix() for p in root.rglob("*")
        if not any(p.is_relative_to(root / s) for s in skip)
    )


NOT_A_NUMBER = "is not a number (RevMan numbers them 1, 2, 3, ...)"


@pytest.mark.parametrize(
    "number",
    ["../../escape", "..", ".", "", " ", "1/2", "1\\2", "1.2", "-1", "+1", "1e3", "\u0661",
     "1234567", "x" * 300, "ABSOLUTE"],
)
def test_a_comparison_number_that_is_not_a_number_is_refused_and_nothing_is_written(
    tmp_path, number
):
    # COMPARISON NO becomes part of a folder name: anything but digits could place a folder
    # anywhere (an absolute path, "..", a separator), so it is refused before any writing.
    if number == "ABSOLUTE":
        number = str(tmp_path / "absolute")
    path = tmp_path / "hostile.rm5"
    path.write_text(revman_files.one_outcome(c_no=number), encoding="utf-8")
    (tmp_path / "a" / "b" / "out").mkdir(parents=True)
    before = tree(tmp_path)
    with pytest.raises(RevManError) as raised:
        import_rm5(path, tmp_path / "a" / "b" / "out")
    assert str(raised.value) == f"hostile.rm5: COMPARISON NO={number!r} {NOT_A_NUMBER}"
    assert tree(tmp_path) == before


def test_a_nul_in_a_number_cannot_even_be_read(tmp_path):
    # XML 1.0 has no NUL character, not even as a reference: the parser refuses the file.
    path = tmp_path / "nul.rm5"
    path.write_text(revman_files.one_outcome(c_no="1&#0;"), encoding="utf-8")
    with pytest.raises(RevManError, match=r"^nul\.rm5: not a RevMan 5 file \(XML error: "
                                          "reference to invalid character number"):
        read_rm5(path)


@pytest.mark.parametrize("number", ["../1", "/1", "1/2", "", "1.1"])
def test_an_outcome_number_that_is_not_a_number_is_refused(tmp_path, number):
    path = tmp_path / "hostile.rm5"
    path.write_text(revman_files.one_outcome(c_no="3", o_no=number), encoding="utf-8")
    with pytest.raises(RevManError) as raised:
        import_rm5(path, tmp_path / "out")
    assert str(raised.value) == (
        f"hostile.rm5: comparison 3: DICH_OUTCOME NO={number!r} {NOT_A_NUMBER}"
    )
    assert not (tmp_path / "out").exists()


def test_numbers_are_read_as_numbers(tmp_path):
    # "02" and "003" are the numbers 2 and 3: the folder is 2.3, as RevMan would show it.
    path = tmp_path / "zeros.rm5"
    path.write_text(revman_files.one_outcome(c_no="02", o_no="003"), encoding="utf-8")
    assert [f.name for f in import_rm5(path, tmp_path / "out").folders] == ["2.3"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["2.3"]


@pytest.mark.parametrize(("first", "second"), [("1", "1"), ("1", "01")])
def test_two_outcomes_with_one_number_are_refused_not_merged(tmp_path, first, second):
    # Before, the second silently replaced the first (one folder, the last outcome's rows).
    rows2 = (("S1", 1, 20, 5, 20), ("S2", 4, 30, 8, 31))
    path = tmp_path / "twice.rm5"
    path.write_text(revman_files.review(
        (("1", ((first, revman_files.ROWS), (second, rows2))),)
    ), encoding="utf-8")
    with pytest.raises(RevManError) as raised:
        import_rm5(path, tmp_path / "out")
    assert str(raised.value) == (
        "twice.rm5: two dichotomous outcomes are numbered 1.1 (RevMan numbers each outcome of "
        "a comparison once)"
    )
    assert not (tmp_path / "out").exists()


def _escaping_review():
    # A usable outcome 1.1 and a second comparison whose number climbs out of the cache:
    # <cache>/imports/<digest>/../../../escape.1 is the folder holding the cache.
    return revman_files.review((
        ("1", (("1", revman_files.ROWS),)),
        ("../../../escape", (("1", revman_files.ROWS),)),
    ))


@pytest.mark.parametrize("command", ["frequentist", "audit"])
def test_a_read_only_command_on_a_hostile_rm5_writes_nothing_outside_the_cache(
    tmp_path, monkeypatch, capsys, command
):
    work, downloads = tmp_path / "work", tmp_path / "downloads"
    work.mkdir()
    downloads.mkdir()
    (downloads / "hostile.rm5").write_text(_escaping_review(), encoding="utf-8")
    monkeypatch.setenv("REBAYES_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(work)
    before = tree(tmp_path, skip=["cache"])
    code = main([command, "--data", "../downloads/hostile.rm5:1.1"])
    _, err = capsys.readouterr()
    assert code == 2
    assert err == (
        f"rebayes {command}: error: hostile.rm5: COMPARISON NO='../../../escape' "
        f"{NOT_A_NUMBER}\n"
    )
    assert tree(tmp_path, skip=["cache"]) == before


@pytest.mark.parametrize(
    "argv",
    [
        ["frequentist"],
        ["audit"],
        ["fit", "--prior", "weakly_informative", "--draws", "200"],
    ],
    ids=["frequentist", "audit", "fit"],
)
def test_a_read_only_command_on_an_rm5_writes_nowhere_but_the_cache(
    tmp_path, monkeypatch, capsys, argv
):
    # The session's fit cache (conftest) lies outside tmp_path: the import of the file, the
    # compiled model and the fit go there, and nothing appears beside the file or in the
    # working directory.
    work, downloads = tmp_path / "work", tmp_path / "downloads"
    work.mkdir()
    downloads.mkdir()
    (downloads / "review.rm5").write_bytes(SYNTHETIC.read_bytes())
    monkeypatch.chdir(work)
    before = tree(tmp_path)
    code = main([argv[0], "--data", "../downloads/review.rm5", *argv[1:]])
    out, _ = capsys.readouterr()
    assert code == 0 and out
    assert tree(tmp_path) == before


@pytest.mark.parametrize("command", ["frequentist", "audit", "fit"])
def test_errors_in_an_rm5_name_the_users_file_not_the_cache(
    tmp_path, monkeypatch, capsys, command
):
    # A study with no ID and no name reaches the imported trials.csv as an empty name; the
    # loader's message names the file and outcome the user gave, as `rebayes import` lays it
    # out (review.rm5:1.1/trials.csv), not <cache>/imports/<digest>/1.1/trials.csv.
    rows = (("", 10, 20, 5, 20), ("S2", 4, 30, 8, 31))
    (tmp_path / "nameless.rm5").write_text(revman_files.one_outcome(rows=rows),
                                           encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code = main([command, "--data", "nameless.rm5"])
    _, err = capsys.readouterr()
    assert code == 2
    assert err == f"rebayes {command}: error: nameless.rm5:1.1/trials.csv:2: study is empty\n"


@pytest.mark.parametrize(
    ("count", "shown"),
    [
        ("1000000001", "1000000001"),
        # A float would round it to ...568: the message shows the file's digits.
        ("12345678901234567", "12345678901234567"),
        ("12345678901234567.0", "12345678901234567"),
        ("9" * 400, "999999999999... (400 digits)"),  # float('9'*400) is inf: once a crash
    ],
)
def test_rm5_counts_above_a_billion_are_refused_with_their_exact_digits(tmp_path, count,
                                                                          shown):
    rows = (("S1", count, count, 5, 20), ("S2", 4, 30, 8, 31))
    path = tmp_path / "huge.rm5"
    path.write_text(revman_files.one_outcome(rows=rows), encoding="utf-8")
    with pytest.raises(RevManError) as raised:
        read_rm5(path)
    assert str(raised.value) == (
        f"huge.rm5: outcome 1.1, study 'Lee 2003': EVENTS_1={shown} exceeds the largest count "
        "accepted (10^9)"
    )


def test_rm5_counts_are_read_exactly(tmp_path):
    # 10^9 is the largest count accepted (rebayes.data.trials.MAX_COUNT); "12.0" is 12.
    rows = (("S1", "999999999", "1000000000", "12.0", "20"), ("S2", 4, 30, 8, 31))
    path = tmp_path / "big.rm5"
    path.write_text(revman_files.one_outcome(rows=rows), encoding="utf-8")
    import_rm5(path, tmp_path / "out")
    trials = rb.load_trials(tmp_path / "out" / "1.1")
    assert trials.loc[0, ["events_treat", "n_treat", "events_control", "n_control"]].tolist() \
        == [999999999, 1000000000, 12, 20]


def test_reimport_refuses_a_folder_holding_a_users_file(tmp_path):
    # A previous import's folder is replaced whole: a file the user added would go with it.
    import_rm5(FLEISS, tmp_path)
    (tmp_path / "1.1" / "variants.toml").write_text("[mine]\n", encoding="utf-8")
    with pytest.raises(OutputDirectoryError) as raised:
        import_rm5(FLEISS, tmp_path)
    assert str(raised.value) == (
        f"output directory {tmp_path / '1.1'} holds variants.toml, which rebayes import did "
        "not write; refusing to replace it: move them away or import into a new directory"
    )
    assert (tmp_path / "1.1" / "variants.toml").read_text(encoding="utf-8") == "[mine]\n"


def test_import_refuses_an_outcome_folder_that_is_a_symlink(tmp_path):
    import_rm5(FLEISS, tmp_path / "elsewhere")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "1.1").symlink_to(tmp_path / "elsewhere" / "1.1")
    before = tree(tmp_path)
    with pytest.raises(OutputDirectoryError) as raised:
        import_rm5(FLEISS, tmp_path / "out")
    assert str(raised.value) == (
        f"output {tmp_path / 'out' / '1.1'} is a symbolic link (an import writes real "
        "folders); refusing to replace it"
    )
    assert tree(tmp_path) == before


def test_a_killed_imports_staging_folder_is_removed_by_the_next_import(tmp_path):
    # A staging folder whose run died (its lock released) goes; one without the lock file is
    # not provably rebayes' and stays.
    script = (
        "import os, signal, sys\n"
        "from pathlib import Path\n"
        "from rebayes.folders import staging_folder\n"
        "with staging_folder(Path(sys.argv[1]), '.1.1.import.') as s:\n"
        "    (s / 'trials.csv').write_text('half')\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=False, timeout=60)
    (tmp_path / ".1.1.import.foreign").mkdir()
    assert len(list(tmp_path.glob(".1.1.import.*"))) == 2
    import_rm5(FLEISS, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".1.1.import.foreign", "1.1"]
    assert sorted(p.name for p in (tmp_path / "1.1").iterdir()) == [
        MARKER, "dataset.toml", "reported.csv", "trials.csv"]


def test_a_file_name_with_a_line_break_cannot_add_keys_to_dataset_toml(tmp_path):
    # The name is written into dataset.toml's first comment: quoted, its line break escaped.
    import tomllib

    from rebayes.data.revman import import_rm5

    evil = tmp_path / 'x.rm5\nhigher_is_better = true\nmeasure = "OR"\n#.rm5'
    evil.write_bytes((TEST_DATA / "Fleiss1993.rm5").read_bytes())
    import_rm5(evil, tmp_path / "out")
    text = (tmp_path / "out" / "1.1" / "dataset.toml").read_text(encoding="utf-8")
    toml = tomllib.loads(text)  # one of each key, as the file itself says
    assert toml["higher_is_better"] is False and text.count("\nhigher_is_better =") == 1
    assert text.splitlines()[0].startswith('# Written by `rebayes import` from "x.rm5\\n')
