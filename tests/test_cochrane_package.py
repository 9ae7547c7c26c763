"""Cochrane data packages and RevMan 5's CSV export: read, imported, audited.

Fixtures (``tests/data/revman``):

- ``Fleiss1993.zip``: a real data package (version 1) from R meta's extdata: one dichotomous
  analysis (aspirin after myocardial infarction, Fleiss 1993) and one continuous;
- ``Fleiss93_CR.csv``: the same review as RevMan 5's analyses export (meta's extdata);
- ``nrt2018.zip`` (version 1) and ``damico2009.zip`` (version 2): built by
  ``make_packages.R`` from two Cochrane reviews in metadat, every stored result computed by
  metafor (rma.mh; rma with method="REML", test="knha", predict, confint).

The stored results are the independent reference: an import reproduces them only if the
counts, the analysis settings and the formulas all agree with RevMan's (metafor's).
"""

import io
import zipfile

import pandas as pd
import pytest

from conftest import TEST_DATA
from rebayes.audit.paper import audit, load_reported
from rebayes.cli import main
from rebayes.data import cochrane_package
from rebayes.data.cochrane_package import read_package
from rebayes.data.reviews import import_file, read_review
from rebayes.data.revman import RevManError, read_rm5
from rebayes.data.revman_csv import read_revman_csv
from rebayes.data.trials import load_trials
from rebayes.frequentist.pooling import analyze

REVMAN = TEST_DATA / "revman"
FLEISS_ZIP, FLEISS_CSV = REVMAN / "Fleiss1993.zip", REVMAN / "Fleiss93_CR.csv"
NRT, DAMICO = REVMAN / "nrt2018.zip", REVMAN / "damico2009.zip"
COUNTS = ["study", "events_treat", "n_treat", "events_control", "n_control"]


def _table(rows) -> list[tuple]:
    return sorted((r.study, r.events_treat, r.n_treat, r.events_control, r.n_control)
                  for r in rows)


# --- the Fleiss files: both formats, every stored figure ---------------------------------


def test_fleiss_package_and_csv_hold_the_rm5_tables():
    """The three exports of one review (meta's extdata) give one 2x2 table."""
    rm5 = read_rm5(TEST_DATA / "Fleiss1993.rm5").outcomes[0]
    package = read_package(FLEISS_ZIP)
    export = read_revman_csv(FLEISS_CSV)
    assert [o.number for o in package.outcomes] == [o.number for o in export.outcomes] == ["1.1"]
    for review in (package, export):
        outcome = review.outcomes[0]
        assert _table(outcome.rows) == _table(rm5.rows)
        assert (outcome.measure, outcome.method, outcome.model) == ("OR", "MH", "fixed")
        assert len(review.skipped) == 1 and "1.2" in review.skipped[0]
        assert "continuous" in review.skipped[0]
    assert package.software == "RevMan Web (data package version 1)"
    # Stored: OR 0.8969 [0.8405, 0.9570], Chi2 9.95 (metafor: rma.mh(measure="OR", ...) on
    # the seven trials gives exp(b) = 0.896865561, QE = 9.946055983).
    stored = package.outcomes[0].overall
    assert stored.effect == pytest.approx(0.896865561, abs=1e-6)
    assert stored.chi2 == pytest.approx(9.946055983, abs=1e-6)


@pytest.mark.parametrize(("source", "figures"), [(FLEISS_ZIP, 22), (FLEISS_CSV, 30)])
def test_fleiss_audit_reproduces_every_stored_figure(source, figures, tmp_path):
    result = import_file(source, tmp_path / "review")
    folder = result.folders[0]
    reported = load_reported(folder)
    assert len(reported) == figures
    stats = {f.statistic for f in reported}
    assert {"counts", "effect", "z", "p", "chi2", "p_chi2", "i2", "df", "study_effect",
            "weight"} <= stats
    if source == FLEISS_CSV:
        assert "study_se" in stats  # the CSV stores each study's SE too
    result = audit(folder)
    assert result.counts == {"reproduced": figures, "differs": 0, "not_recomputable": 0}
    # ISIS-2's weight, 72.9% of the M-H analysis (metafor weights(rma.mh): 72.879840).
    isis = next(r for r in result if r.id.startswith("study") and "ISIS-2" in r.location
                and r.statistic == "weight")
    assert isis.from_trials.value == pytest.approx(72.879840, abs=1e-5)


def test_a_changed_count_makes_the_audit_differ(tmp_path):
    """The audit can fail: one event moved in ISIS-2 changes the pooled figures."""
    folder = import_file(FLEISS_ZIP, tmp_path / "review").folders[0]
    trials = folder / "trials.csv"
    trials.write_text(trials.read_text().replace("1570,8587", "1571,8587"))
    verdicts = {r.id: r.verdict for r in audit(folder)}
    assert verdicts["total_effect"] == "differs" and verdicts["total_counts"] == "differs"


def test_data_option_reads_packages_and_exports():
    for spec in (str(FLEISS_ZIP), f"{FLEISS_ZIP}:1.1", str(FLEISS_CSV), f"{FLEISS_CSV}:1.1"):
        trials = load_trials(spec)
        assert len(trials) == 7 and int(trials["events_treat"].sum()) == 2128
    with pytest.raises(RevManError, match="not a RevMan 5 analyses export"):
        read_review(TEST_DATA / "bcg.csv")
    assert len(load_trials(TEST_DATA / "bcg.csv")) == 13  # a trial table stays one


# --- a version 1 package with subgroups and a multi-arm trial (NRT, CD000146) -------------


def test_nrt_package_subgroups_direction_and_published_estimate(tmp_path):
    review = read_package(NRT)
    outcome = review.outcomes[0]
    assert outcome.subgroups[:3] == ("gum", "patch", "inhalator") and len(outcome.subgroups) == 11
    # Version 1 has no label columns: the SVG forest plot's "Favours control | Favours NRT"
    # says more abstinence (the event) is better.
    assert outcome.graph_labels == ("Favours control", "Favours NRT")
    assert outcome.higher_is_better is True
    folder = import_file(NRT, tmp_path / "nrt").folders[0]
    trials = load_trials(folder)
    assert trials.attrs["schema"].higher_is_better is True
    overall = analyze(trials).overall
    # Hartmann-Boyce et al. 2018, Analysis 1.1: RR 1.55 (95% CI 1.49 to 1.61), 133 studies.
    assert (round(overall.estimate, 2), round(overall.ci_low, 2), round(overall.ci_high, 2)) == (
        1.55, 1.49, 1.61)
    assert overall.k == 136  # 133 studies, 136 comparisons
    result = audit(folder)
    assert result.counts["reproduced"] == len(result) and len(result) > 300


def test_nrt_multi_arm_trial_is_named_and_split(tmp_path, capsys):
    code = main(["import", str(NRT), str(tmp_path / "nrt")])
    err = capsys.readouterr().err
    assert code == 0
    # Moolchan 2005 compared gum and patch with one control arm of 2/40 (metadat's
    # dat.hartmannboyce2018 rows 35 and 88); Piper 2009's three controls differ (the review
    # split that arm itself) and are not flagged.
    assert "multi-arm Moolchan 2005 (control 2/40 in 2 comparisons)" in err
    assert "Piper" not in err
    folder = tmp_path / "nrt" / "1.1"
    text = (folder / "dataset.toml").read_text()
    assert 'title = "Overall, shared control split"' in text
    assert "split_shared_control = true" in text
    code = main(["frequentist", "--data", str(folder), "--split-shared-control"])
    out = capsys.readouterr().out
    assert "Moolchan 2005 2/40 -> 1/20 + 1/20" in out
    # Split: 3313 control events of 31682 (from 3315/31722: one arm of 2/40 counted once).
    assert "5574/32918 vs 3313/31682" in out


# --- a version 2 package: RevMan Web's random-effects options, risk of bias --------------


def test_damico_package_reads_revman_web_settings():
    outcome = read_package(DAMICO).outcomes[0]
    assert read_package(DAMICO).software == "RevMan Web (data package version 2)"
    assert (outcome.model, outcome.tau2_method, outcome.hksj) == ("random", "REML", True)
    assert outcome.graph_labels == ("Favours antibiotics", "Favours no prophylaxis")
    assert outcome.higher_is_better is False  # fewer infections with antibiotics is benefit
    # metafor: rma(yi, vi, method="REML", test="knha"); predict(); confint() (make_packages.R)
    assert outcome.overall.tau2_ci == pytest.approx((0.044089001878, 1.199461054039))
    assert outcome.overall.prediction == pytest.approx((0.09078053526, 0.8179735655))


def test_damico_import_audit_and_risk_of_bias(tmp_path):
    folder = import_file(DAMICO, tmp_path / "damico").folders[0]
    trials = load_trials(folder)
    schema = trials.attrs["schema"]
    assert (schema.tau2, schema.hksj) == ("REML", True)
    assert {"rob_allocation_concealment", "rob_blinding_of_participants_and_personnel",
            "rob_overall"} <= set(schema.covariates)
    # Low risk in both domains: allocation concealment adequate and double-blind, the
    # dat.damico2009 rows with conceal = 1 and blind = 1.
    low = trials.loc[trials["rob_overall"] == "low", "study"].tolist()
    assert low == ["Sanchez-Garcia 1992", "Krueger 2002"]
    titles = [a["title"] for a in schema.frequentist]
    assert titles == ["Overall (as published)", "By subgroup (as published)",
                      "Sensitivity: studies at low risk of bias only"]
    assert dict(schema.frequentist[2]["where"]) == {"rob_overall": "low"}
    variant = load_trials(folder, "low_risk_of_bias")
    assert variant["study"].tolist() == low
    result = audit(folder)
    assert result.counts == {"reproduced": len(result), "differs": 0, "not_recomputable": 0}
    stats = {r.statistic for r in result}
    assert {"tau2", "tau2_ci", "prediction_interval", "z", "subgroup_chi2"} <= stats
    t_row = next(r for r in result if r.id == "total_z")
    assert t_row.reported == "t = 7.24"  # HKSJ: a t test on 15 df


def test_report_tables_include_the_sensitivity_analysis(tmp_path):
    from rebayes.report.frequentist import analyses_of, frequentist_tables

    folder = import_file(DAMICO, tmp_path / "damico").folders[0]
    trials = load_trials(folder)
    tables = frequentist_tables({"published": trials}, analyses_of(trials.attrs["schema"]),
                                method="IV")
    sensitivity = tables[2]
    assert sensitivity.title == "Sensitivity: studies at low risk of bias only"
    assert sensitivity.rows[-1][1] == 2  # k


# --- untrusted zips ------------------------------------------------------------------------


def _package(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _fleiss_members() -> dict[str, bytes]:
    with zipfile.ZipFile(FLEISS_ZIP) as outer:
        inner = next(n for n in outer.namelist() if n.endswith("-data.zip"))
        with zipfile.ZipFile(io.BytesIO(outer.read(inner))) as data:
            return {n: data.read(n) for n in data.namelist() if n.endswith(".csv")}


def test_member_names_never_become_paths(tmp_path):
    """Zip slip: members named ../../x are read as data, nothing is written but DIR/1.1."""
    members = {f"../../../evil/{name.rsplit('/', 1)[-1]}": data
               for name, data in _fleiss_members().items()}
    zpath = tmp_path / "slip.zip"
    zpath.write_bytes(_package(members))
    out = tmp_path / "out"
    import_file(zpath, out)
    assert sorted(p.name for p in out.iterdir()) == ["1.1"]
    assert not (tmp_path.parent / "evil").exists() and not (tmp_path / "evil").exists()


def test_caps_duplicates_and_numbers(tmp_path, monkeypatch):
    members = _fleiss_members()
    settings = next(k for k in members if k.endswith("settings.csv"))
    # Two copies of one table.
    twice = {**members, "copy/x-data-rows.csv": members[next(
        k for k in members if k.endswith("data-rows.csv"))]}
    (tmp_path / "twice.zip").write_bytes(_package(twice))
    with pytest.raises(RevManError, match="two data-rows files"):
        read_package(tmp_path / "twice.zip")
    # An analysis number that is not digits.
    bad = dict(members)
    assert members[settings].count(b"1,1,Aspirin") == 1
    bad[settings] = members[settings].replace(b"1,1,Aspirin", b"1,../x,Aspirin")
    (tmp_path / "number.zip").write_bytes(_package(bad))
    with pytest.raises(RevManError, match="is not two whole numbers"):
        read_package(tmp_path / "number.zip")
    # Too many bytes, too many members (the caps, lowered to what these zips exceed).
    monkeypatch.setattr(cochrane_package, "MAX_TOTAL_BYTES", 4000)
    with pytest.raises(RevManError, match="refusing a zip bomb"):
        read_package(FLEISS_ZIP)
    monkeypatch.setattr(cochrane_package, "MAX_TOTAL_BYTES", 2**30)
    monkeypatch.setattr(cochrane_package, "MAX_MEMBERS", 5)
    with pytest.raises(RevManError, match="more than 5 files"):
        read_package(FLEISS_ZIP)


def test_a_real_zip_bomb_is_refused_before_it_is_inflated(tmp_path):
    """257 MB of zeros compress to a few hundred kB; the declared size stops it unread."""
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("x-data-rows.csv", "w") as member:
            chunk = b"\0" * 2**20
            for _ in range(257):
                member.write(chunk)
    assert path.stat().st_size < 2**20
    with pytest.raises(RevManError, match="more than 256 MB"):
        read_package(path)


def test_import_writes_nothing_when_a_package_is_bad(tmp_path, capsys):
    (tmp_path / "fake.zip").write_bytes(b"not a zip at all")
    code = main(["import", str(tmp_path / "fake.zip"), str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and "not a zip file" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_v1_analysis_rows_keep_their_years_and_the_imported_table_is_valid(tmp_path):
    folder = import_file(FLEISS_ZIP, tmp_path / "f").folders[0]
    table = pd.read_csv(folder / "trials.csv")
    assert list(table.columns) == [*COUNTS[:5], "year"]
    assert dict(zip(table["study"], table["year"], strict=True))["ISIS-2"] == 1988


@pytest.mark.parametrize(("measure", "method", "expected"), [
    ("Risk Ratio", "MH", ("RR", "MH")),
    ("Risk Difference", "IV", ("RD", "IV")),
    ("Peto Odds Ratio", "Peto", ("PETO_OR", "PETO")),
    ("Odds Ratio", "IV", ("OR", "IV")),
])
def test_every_declared_measure_is_read(measure, method, expected, tmp_path):
    members = _fleiss_members()
    settings = next(k for k in members if k.endswith("settings.csv"))
    members[settings] = members[settings].replace(b"MH,Odds Ratio", f"{method},{measure}".encode())
    path = tmp_path / "m.zip"
    path.write_bytes(_package(members))
    outcome = read_package(path).outcomes[0]
    assert (outcome.measure, outcome.method) == expected


def test_swapped_events_are_counted_as_non_events(tmp_path):
    members = _fleiss_members()
    settings = next(k for k in members if k.endswith("settings.csv"))
    text = members[settings].decode("utf-8-sig").splitlines()
    header = text[0].split(",")
    column = header.index("Swap event and non-event")
    row = text[1].split(",")
    assert row[column] == "false"
    row[column] = "true"
    members[settings] = "\n".join([text[0], ",".join(row), *text[2:]]).encode()
    path = tmp_path / "swap.zip"
    path.write_bytes(_package(members))
    outcome = read_package(path).outcomes[0]
    isis = next(r for r in outcome.rows if r.study == "ISIS-2")
    assert (isis.events_treat, isis.events_control) == (8587 - 1570, 8600 - 1720)
    assert outcome.overall.counts == (14186 - 2128, 14186, 13817 - 2286, 13817)


def test_standard_labels_say_a_direction_and_other_labels_none():
    from rebayes.data.direction import direction_from_labels

    # RevMan draws fewer events with the experimental arm on the left: its default pair says
    # fewer is better (as the issue asks: Fleiss 1993's deaths), the swapped pair more.
    for left, right in (("Favours [experimental]", "Favours [control]"),
                        ("Favours experimental", "Favours control")):
        default = direction_from_labels(left, right)
        assert default is not None and default.higher_is_better is False
    swapped = direction_from_labels("Favours control", "Favours intervention")
    assert swapped is not None and swapped.higher_is_better is True
    assert direction_from_labels("Favours aspirin", "Favours placebo") is None  # names: no


def test_two_analyses_with_one_number_stop_the_import(tmp_path):
    members = _fleiss_members()
    settings = next(k for k in members if k.endswith("settings.csv"))
    lines = members[settings].decode("utf-8-sig").splitlines()
    aspirin = next(line for line in lines if line.startswith("1,1,Aspirin"))
    members[settings] = "\n".join([*lines, aspirin]).encode()
    path = tmp_path / "twice.zip"
    path.write_bytes(_package(members))
    with pytest.raises(RevManError, match="analysis 1.1 appears twice"):
        import_file(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()
