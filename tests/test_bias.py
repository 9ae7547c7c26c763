"""The bias analysis as a user meets it: stories on datasets other than the shipped one.

Magnesium after myocardial infarction (metadat's dat.egger2001) is the classic case the issue
describes: many small trials showing a large benefit, one mega-trial (ISIS-4) showing none,
fewer deaths being better, and three trials by one first author. Hydroxychloroquine for
COVID-19 (dat.axfors2021) is a harmful treatment. The numbers the frequentist parts must give
are metafor's (tests/test_small_study.py); here the tests check what the analysis says with
them, in which direction, and in which words.
"""

import json
import math

import numpy as np
import pandas as pd
import pytest

import rebayes as rb
from conftest import TEST_DATA
from rebayes.cli import main
from rebayes.errors import AnalysisError
from rebayes.tools.bias import bias_analysis
from rebayes.tools.bias_batch import BATCH_COLUMNS, batch_columns, bias_record

HEAD = "study,events_treat,n_treat,events_control,n_control"
# Five trials, small ones showing more benefit (more events is better here).
SMALL = [("A", 30, 40, 20, 40), ("B", 14, 20, 9, 20), ("C", 9, 12, 5, 12),
         ("D", 150, 300, 140, 300), ("E", 60, 100, 52, 100)]


@pytest.fixture(scope="module")
def magnesium():
    return bias_analysis(rb.load_trials(TEST_DATA / "magnesium"))


@pytest.fixture(scope="module")
def hcq():
    return bias_analysis(rb.load_trials(TEST_DATA / "hcq"))


def table(rows, path, direction=None):
    path.mkdir(parents=True, exist_ok=True)
    (path / "trials.csv").write_text(
        HEAD + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n", encoding="utf-8")
    if direction is not None:
        (path / "dataset.toml").write_text(
            f'outcome = "recovery"\ntreatment = "new"\ncontrol = "old"\n'
            f'higher_is_better = {str(direction).lower()}\nmeasure = "RR"\n', encoding="utf-8")
    return rb.load_trials(path)


def test_the_classic_case_is_found_distorted(magnesium):
    r = magnesium
    assert r.k == 16 and r.measure == "OR"  # three Shechter trials are three studies
    assert r.egger.p < 0.001 and r.harbord.p < 0.001
    tf = r.trim_and_fill
    assert tf.k0 == 7 and r.side_meaning(tf.side) == "harm (OR > 1)"
    assert r.unadjusted["estimate"] < math.exp(tf.estimate) < 1
    b = r.bma
    assert b.inclusion_bf("bias") > 10  # strong evidence of publication bias
    assert b.inclusion_bf("PET") > b.inclusion_bf("PEESE")
    averaged = b.averaged()
    # The unadjusted pooled OR 0.48 (0.33-0.71) does not survive: the averaged OR's
    # interval reaches no effect and P(benefit) is far from 0.95.
    assert averaged["ci_high"] >= 1 and averaged["p_benefit"] < 0.5
    text = r.summary()
    assert "strong evidence for publication bias" in text and "P(benefit, OR < 1)" in text


def test_a_harmful_treatment_shows_no_distortion(hcq):
    r = hcq
    assert r.unadjusted["estimate"] > 1  # more deaths with hydroxychloroquine
    assert r.egger.p > 0.5
    assert r.bma.inclusion_bf("bias") < 1 / 3
    # No trial is significant in the direction of benefit: the selection weight is not
    # identified, and the output says so.
    assert r.selection.at_bound
    assert any("cannot estimate it" in w for w in r.warnings)
    assert any("zero cell" in w for w in r.warnings)
    assert r.excluded  # double-zero trials (no deaths in either arm) are left out


def test_issue_numbers_for_ivig():
    r = bias_analysis(rb.load_trials("ivig_rsa"), bayesian=False)
    assert r.k == 10 and r.measure == "RR"
    assert (round(r.egger.statistic, 2), round(r.egger.p, 3)) == (2.73, 0.026)
    assert not r.warnings  # ten trials: Sterne et al.'s minimum, so no "too weak" warning
    assert r.trim_and_fill.k0 == 3 and r.side_meaning("left") == "harm (RR < 1)"


def test_fewer_than_ten_studies_warn_and_fewer_than_three_refuse(tmp_path):
    r = bias_analysis(table(SMALL, tmp_path / "five", True), bayesian=False)
    assert any("Sterne" in w and "only 5 studies" in w for w in r.warnings)
    with pytest.raises(AnalysisError, match="at least 3 studies with an estimable RR, found 2"):
        bias_analysis(table(SMALL[:2], tmp_path / "two", True))


def test_undeclared_direction_gets_neutral_words(tmp_path):
    r = bias_analysis(table(SMALL, tmp_path / "bare"))
    assert not r.direction.declared
    text = r.summary() + r.to_dataframe()["note"].str.cat()
    assert "benefit" not in text and "harm" not in text
    # Undeclared: the literal side RR < 1 (averaged RR 1.15, so its probability is small).
    assert "P(RR < 1) = 0.01" in r.summary()
    assert any("not declared" in w for w in r.warnings)


def test_swapped_arms_mirror_the_analysis(tmp_path):
    forward = bias_analysis(table(SMALL, tmp_path / "forward", True))
    swapped_rows = [(s, c, n2, a, n1) for s, a, n1, c, n2 in SMALL]
    swapped = bias_analysis(table(swapped_rows, tmp_path / "swapped", False))
    assert swapped.egger.statistic == pytest.approx(-forward.egger.statistic, rel=1e-9)
    assert swapped.begg.p == pytest.approx(forward.begg.p, rel=1e-9)
    assert swapped.trim_and_fill.k0 == forward.trim_and_fill.k0
    assert {forward.trim_and_fill.side, swapped.trim_and_fill.side} == {"left", "right"}
    assert (swapped.side_meaning(swapped.trim_and_fill.side)
            .startswith(forward.side_meaning(forward.trim_and_fill.side).split()[0]))
    for c in ("effect", "heterogeneity", "bias"):
        assert swapped.bma.inclusion_bf(c) == pytest.approx(forward.bma.inclusion_bf(c),
                                                            rel=1e-6)
    assert swapped.bma.averaged()["estimate"] == pytest.approx(
        1 / forward.bma.averaged()["estimate"], rel=1e-6)


@pytest.mark.parametrize(("declared", "asked", "used"), [
    ("RR", None, "RR"), ("OR", None, "OR"), ("RD", None, "OR"), ("PETO_OR", None, "OR"),
    ("RD", "RR", "RR"),
])
def test_every_declared_measure_gets_a_log_ratio(tmp_path, declared, asked, used):
    folder = tmp_path / declared
    table(SMALL, folder, True)
    text = (folder / "dataset.toml").read_text().replace('measure = "RR"',
                                                          f'measure = "{declared}"')
    (folder / "dataset.toml").write_text(text + ('method = "PETO"\n' if declared == "PETO_OR"
                                                 else ""))
    r = bias_analysis(rb.load_trials(folder), asked, bayesian=False)
    assert r.measure == used
    with pytest.raises(AnalysisError, match="works on RR or OR"):
        bias_analysis(rb.load_trials(folder), "RD", bayesian=False)


def test_json_has_the_issue_keys(magnesium):
    d = json.loads(json.dumps(magnesium.to_dict(), allow_nan=False))  # standard JSON
    for key in ("statistic", "df", "p", "limit_estimate"):
        assert key in d["egger"]
    for name in ("egger_rma", "peters", "harbord"):
        assert {"statistic", "p"} <= set(d[name])
    assert {"tau", "p"} <= set(d["begg"])
    assert {"k0", "side", "estimate", "ci_low", "ci_high"} <= set(d["trim_and_fill"])
    assert d["trim_and_fill"]["estimate"] == pytest.approx(0.693874, rel=1e-5)  # exp(-0.36546)
    assert {"models", "inclusion_bf", "averaged"} <= set(d["bma"])
    assert {"effect", "heterogeneity", "bias"} <= set(d["bma"]["inclusion_bf"])
    assert len(d["bma"]["models"]) == 16
    assert d["selection"]["steps"] == [0.025, 1.0]
    # The Egger limit estimate is on the ratio scale, as every estimate of the record.
    assert d["egger"]["limit_estimate"] == pytest.approx(math.exp(0.09961714382), rel=1e-8)


def test_result_vocabulary(magnesium):
    r = magnesium
    assert repr(r).startswith("BiasAnalysis(OR, k=16: Egger p=0.000")
    assert "\n" not in repr(r)
    frame = r.to_dataframe()
    assert "trim-and-fill (L0)" in set(frame["method"])
    assert "<table" in r._repr_html_()
    text = str(r)
    assert text.startswith("Is the evidence distorted? magnesium: 16 studies, log OR")
    assert "Inclusion Bayes factors" in text
    md = r.markdown("funnel.png")
    assert md.startswith("# Is the evidence distorted?") and "![" in md
    fig = r.plot()
    ax = fig.axes[0]
    offsets = [c.get_offsets() for c in ax.collections if len(c.get_offsets())]
    assert sorted(len(o) for o in offsets)[-2:] == [7, 16]  # filled and observed studies


def test_batch_columns(magnesium, tmp_path):
    row = batch_columns(magnesium.to_dict())
    assert list(row) == list(BATCH_COLUMNS)
    assert row["trimfill_k0"] == 7 and row["egger_p"] == pytest.approx(magnesium.egger.p)
    assert row["bma_bf_bias"] == pytest.approx(magnesium.bma.inclusion_bf("bias"))
    failed = bias_record(table(SMALL[:2], tmp_path / "two", True))
    assert "at least 3 studies" in failed["error"]
    assert all(v is None for v in batch_columns(failed).values())


def test_van_zwet_effect_prior(tmp_path):
    r = bias_analysis(table(SMALL, tmp_path / "vz", True), effect_prior="van_zwet")
    se = float(np.median(r.studies["se"]))
    assert r.bma.priors.effect.sigmas[0] == pytest.approx(0.61 * se)
    assert "mixture" in r.bma.priors.source


# --- the command ----------------------------------------------------------------------------


def test_command_json_and_output(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REBAYES_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "bias"
    (out).mkdir()
    (out / "mine.txt").write_text("keep")
    code = main(["bias", "--data", str(TEST_DATA / "bcg"), "--no-bayes", "--json",
                 "--output", str(out)])
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert record["k"] == 13 and record["bma"] is None
    assert record["data"]["dataset"] == "bcg"
    assert sorted(p.name for p in out.iterdir()) == ["bias.md", "funnel.png", "mine.txt"]
    assert (out / "funnel.png").read_bytes().startswith(b"\x89PNG")
    assert "Egger (lm)" in (out / "bias.md").read_text()


def test_command_text(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REBAYES_CACHE", str(tmp_path / "cache"))
    code = main(["bias", "--data", str(TEST_DATA / "bcg"), "--no-bayes",
                 "--higher-is-better"])
    assert code == 0
    text = capsys.readouterr().out
    # Declared on the command line: benefit is now a larger RR (BCG "helps" tuberculosis).
    assert "higher risk of tuberculosis" in text and "side of harm (RR < 1)" not in text


def test_report_section_is_cached_and_keyed_by_direction(tmp_path, monkeypatch):
    from rebayes.report.bias import bias_section

    monkeypatch.setenv("REBAYES_CACHE", str(tmp_path / "cache"))
    trials = table(SMALL, tmp_path / "data", True)
    figures = tmp_path / "figures"
    figures.mkdir()
    first = bias_section(trials, figures)
    assert "Is the evidence distorted?" in first.html and (figures / "funnel.png").is_file()
    assert first.record["k"] == 5 and first.markdown[0] == "## Is the evidence distorted?"
    json.dumps(first.record, allow_nan=False)  # results.json is standard JSON
    again = bias_section(trials, figures)
    assert again.stored and str(again.html) == str(first.html)
    # Another direction is another section (the bias models assume the other side).
    other = bias_section(table(SMALL, tmp_path / "other", False), figures)
    assert other.record["direction"]["higher_is_better"] is False
    # An unreadable cache entry is a miss.
    for path in (tmp_path / "cache" / "summaries").glob("*.pkl"):
        path.write_bytes(b"not a pickle")
    recomputed = bias_section(trials, figures)
    assert str(recomputed.html) == str(first.html)


def test_report_section_of_a_table_too_small(tmp_path, monkeypatch):
    from rebayes.report.bias import bias_section

    monkeypatch.setenv("REBAYES_CACHE", str(tmp_path / "cache"))
    section = bias_section(table(SMALL[:2], tmp_path / "two", True), tmp_path)
    assert "Not analysed" in section.html and section.record is None


def test_studies_table_is_what_was_analysed():
    r = bias_analysis(rb.load_trials(TEST_DATA / "bcg"), bayesian=False)
    counts = pd.read_csv(TEST_DATA / "bcg" / "trials.csv")
    assert list(r.studies["study"]) == list(counts["study"])
    np.testing.assert_allclose(r.studies["n"], counts["n_treat"] + counts["n_control"])
