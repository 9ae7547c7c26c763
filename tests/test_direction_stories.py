"""The story the outputs tell, on real meta-analyses, in each state of the direction of benefit.

- Fleiss1993.rm5 (R meta's RevMan 5.0 file: aspirin after myocardial infarction, deaths): its
  graph labels are RevMan's defaults, "Favours experimental" on the left, so fewer deaths is
  better. RevMan's stored total (M-H fixed OR 0.897, 0.841-0.957) has fewer deaths with aspirin:
  the fit must call that a benefit (before: "P(benefit) = 0.032 ... NNTH 71.5").
- The same file with labels that are not RevMan's ("Increased mortality" | "Decreased
  mortality"): no direction, neutral words everywhere.
- metafor's dat.bcg as a bare CSV: no direction unless --lower-is-better is given.
- metadat's dat.axfors2021 (tests/data/hcq): hydroxychloroquine raised mortality (published OR
  1.11, 1.02-1.20): the fit reads it as harm.
"""

import json
import re

import pytest

import rebayes as rb
from conftest import TEST_DATA
from rebayes.bayes.design import build_design
from rebayes.bayes.fit import fit
from rebayes.bayes.settings import SamplerSettings
from rebayes.cli import main
from rebayes.data.direction import HOW_TO_DECLARE
from rebayes.data.revman import import_rm5
from rebayes.report.frequentist import analyses_of, frequentist_markdown, frequentist_tables
from rebayes.sensitivity.comparison import compare_fits

QUICK = SamplerSettings(draws=300, tune=300, chains=2, min_ess=0)
TITLE = "Aspirin for Preventing Death after Myocardial Infarction"


def benefit_words(text: str) -> list[str]:
    """Words that take a side, outside the neutral phrases that name the missing direction.

    A Bayes factor that "favours an effect" (or "no effect") takes no side of RR = 1.
    """
    for neutral in ("direction of benefit", "called benefit", "favours an effect",
                    "favours no effect", "favours the point"):
        text = text.replace(neutral, "")
    return re.findall(r"\b(?:benefit|harm|favours|NNTB|NNTH)\b", text)


def quick_fit(folder, prior="weakly_informative"):
    trials = rb.load_trials(folder)
    spec = rb.resolve_spec("overall", folder)
    return fit(spec, prior, settings=QUICK, seed=5, design=build_design(spec, trials))


@pytest.fixture(scope="module")
def fleiss(tmp_path_factory):
    out = tmp_path_factory.mktemp("fleiss")
    import_rm5(TEST_DATA / "Fleiss1993.rm5", out)
    return out / "1.1"


@pytest.fixture(scope="module")
def fleiss_unlabelled(tmp_path_factory):
    text = (TEST_DATA / "Fleiss1993.rm5").read_text(encoding="utf-8")
    text = text.replace("Favours experimental", "Increased mortality", 1).replace(
        "Favours control", "Decreased mortality", 1)
    out = tmp_path_factory.mktemp("unlabelled")
    (out / "fleiss.rm5").write_text(text, encoding="utf-8")
    result = import_rm5(out / "fleiss.rm5", out / "imported")
    assert any("no direction of benefit" in note for note in result.notes)
    return out / "imported" / "1.1"


def test_fleiss_reads_fewer_deaths_as_the_benefit(fleiss):
    result = quick_fit(fleiss)
    s = result.summary()
    assert s.direction.higher_is_better is False and s.direction.declared
    assert s.p_benefit == s.p_rr_lt_1 > 0.9  # RevMan: OR 0.897 (0.841-0.957)
    assert s.nnt.kind == "benefit" and str(s.nnt).startswith("NNTB")
    text = str(s)
    assert (
        f"Benefit means a lower risk of the outcome '{TITLE}' with Aspirin than with Control "
        "(RR < 1); from RevMan graph labels: left 'Favours experimental', right 'Favours "
        "control'." in text
    )
    assert f"P(benefit) = P(RR < 1) = {s.p_rr_lt_1:.3f}" in text
    # The title is never read as a noun.
    assert f"risk of {TITLE}" not in text
    record = s.to_dict()
    assert record["direction"]["evidence"].startswith("RevMan graph labels")
    assert record["p_benefit"] == record["p_rr_lt_1"]


def test_unstandard_labels_leave_every_word_neutral(fleiss_unlabelled):
    schema = rb.load_trials(fleiss_unlabelled).attrs["schema"]
    assert schema.higher_is_better is None
    result = quick_fit(fleiss_unlabelled)
    s = result.summary()
    text = str(s)
    assert benefit_words(text) == [], benefit_words(text)
    assert f"P(RR < 1) = {s.p_rr_lt_1:.3f}" in text and f"P(RR > 1) = {1 - s.p_rr_lt_1:.3f}" in text
    assert "NNT: not given (direction undeclared); risk difference" in text
    assert HOW_TO_DECLARE in text
    record = json.loads(json.dumps(s.to_dict()))
    assert record["direction"] == {
        "higher_is_better": None, "declared": False, "benefit": None, "evidence": "",
        "outcome": f"the outcome '{TITLE}'", "treatment": "Aspirin", "control": "Control",
    }
    assert record["p_benefit"] is None and record["p_harm"] is None
    assert record["p_rr_lt_1"] == s.p_rr_lt_1 and record["nnt"]["kind"] is None
    # The comparison, its JSON table, the forest plot's axis and the RevMan page: neutral too.
    comparison = compare_fits([result])
    assert benefit_words(str(comparison)) == []
    assert "no direction of benefit declared" in str(comparison)
    assert "p_rr_lt_1" in comparison.to_dict()["table"][0]
    assert "p_benefit" not in comparison.to_dict()["table"][0]
    axis = next(ax for ax in result.plot().axes if ax.get_xscale() == "log")
    assert "lower risk with Aspirin" in axis.get_xlabel() and "favours" not in axis.get_xlabel()
    trials = rb.load_trials(fleiss_unlabelled)
    page = frequentist_markdown(frequentist_tables({"published": trials}, analyses_of(schema)),
                                schema)
    assert benefit_words(page) == [] and "OR below 1: a lower risk of the outcome" in page


def test_bare_csv_is_neutral_until_told(capsys):
    argv = ["fit", "--data", str(TEST_DATA / "bcg.csv"), "--prior", "weakly_informative",
            "--draws", "300"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert benefit_words(out) == [] and HOW_TO_DECLARE in out
    assert "P(RR < 1) = " in out
    assert main([*argv, "--lower-is-better"]) == 0
    out = capsys.readouterr().out
    assert "Benefit means a lower risk of the event with treatment than with control (RR < 1); " \
           "from --lower-is-better." in out
    assert "P(benefit) = P(RR < 1) = " in out and "NNTB" in out


def test_a_harmful_treatment_reads_as_harm():
    s = quick_fit(TEST_DATA / "hcq").summary()
    # Published: OR 1.11 (1.02-1.20) for mortality with hydroxychloroquine; fewer is better.
    assert s.direction.higher_is_better is False
    assert s.p_harm == pytest.approx(1 - s.p_rr_lt_1) and s.p_harm > 0.5
    assert s.nnt.kind == "harm" and str(s.nnt).startswith("NNTH")
    text = str(s)
    assert f"P(harm) = P(RR > 1) = {s.p_harm:.3f}" in text
    assert "Benefit means a lower risk of death with hydroxychloroquine or chloroquine" in text
