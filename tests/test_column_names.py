"""Tables in metafor's and meta's column names: read, noted, and refused when only effect sizes.

Fixtures (``tests/data/column_names``), written from metadat 1.2-0:

- ``lee2004.csv``: ``dat.lee2004`` as metafor ships it (``id, study, year, ai, n1i, ci, n2i``):
  16 trials of acupoint P6 stimulation against nausea (Lee & Done 2004, a Cochrane review;
  fewer is better; "Agarwal" names two trials);
- ``bcg_cells.csv``: ``dat.bcg`` with its four cells named ``ai, bi, ci, di`` (from ``tpos,
  tneg, cpos, cneg``) and no ``study`` column (``author`` is the label);
- ``fleiss93_meta.csv``: the aspirin trials of Fleiss93_CR.csv in meta's ``studlab, event.e,
  n.e, event.c, n.c`` (as meta's ``read.rm5`` names them);
- ``yi_vi.csv``: two BCG trials as log risk ratios and variances only.
"""

import warnings

import pytest

from conftest import TEST_DATA
from rebayes.cli import main
from rebayes.data.column_names import NeedsCounts, resolve_columns
from rebayes.data.trials import DataError, load_trials
from rebayes.errors import DataNote
from rebayes.frequentist.pooling import analyze

NAMES = TEST_DATA / "column_names"


def test_metafor_names_are_read_with_a_note():
    with pytest.warns(DataNote, match="ai -> events_treat, n1i -> n_treat, ci -> events_control"):
        trials = load_trials(NAMES / "lee2004.csv")
    assert trials.attrs["column_names"].startswith("metafor's column names")
    assert list(trials.columns[:5]) == ["study", "events_treat", "n_treat", "events_control",
                                        "n_control"]
    # metafor: rma.mh(measure="RR", ai=ai, n1i=n1i, ci=ci, n2i=n2i, data=dat.lee2004)
    # gives RR 0.7316783553 [0.6472311875, 0.8271437254], Q 30.9433714784 (df 15).
    res = analyze(trials, measure="RR").overall
    assert res.estimate == pytest.approx(0.7316783553, rel=1e-9)
    assert (res.ci_low, res.ci_high) == pytest.approx((0.6472311875, 0.8271437254), rel=1e-9)
    assert res.q == pytest.approx(30.9433714784, rel=1e-9)
    assert any("Agarwal" in note for note in trials.attrs["notes"])  # a repeated name


def test_four_cells_give_the_totals():
    with pytest.warns(DataNote, match=r"author -> study, .*ai \+ bi -> n_treat"):
        cells = load_trials(NAMES / "bcg_cells.csv")
    ours = load_trials(TEST_DATA / "bcg")
    assert cells["n_treat"].tolist() == ours["n_treat"].tolist()  # tpos + tneg
    assert cells["n_control"].tolist() == ours["n_control"].tolist()  # cpos + cneg
    # dat.bcg's author column is the label (the bcg folder dates two repeated authors).
    assert cells["study"].tolist()[:3] == ["Aronson", "Ferguson & Simes", "Rosenthal et al"]
    assert "trial" in cells.columns and "bi" not in cells.columns


def test_meta_names_match_the_revman_export():
    with pytest.warns(DataNote, match="studlab -> study, event.e -> events_treat"):
        trials = load_trials(NAMES / "fleiss93_meta.csv")
    # Fleiss93_CR.csv's stored M-H OR: 0.89686556 [0.8405144, 0.95699471].
    res = analyze(trials, measure="OR").overall
    assert (res.estimate, res.ci_low, res.ci_high) == pytest.approx(
        (0.89686556, 0.8405144, 0.95699471), abs=5e-9)


def test_effect_sizes_alone_are_refused_with_what_is_needed():
    with pytest.raises(DataError) as info:
        load_trials(NAMES / "yi_vi.csv")
    message = str(info.value)
    assert message.startswith("column_names/yi_vi.csv:1: a table of effect sizes (yi, vi)") or \
        message.split(": ", 1)[1].startswith("a table of effect sizes (yi, vi)")
    assert "rebayes needs 2x2 counts per arm" in message
    with pytest.raises(NeedsCounts):
        resolve_columns(["studlab", "TE", "seTE"])
    assert resolve_columns(["study", "events_treat", "n_treat", "events_control",
                            "n_control"]) is None


def test_a_bad_cell_is_named_in_the_files_own_column(write_csv):
    path = write_csv("study,ai,bi,ci,di\nA,4,x,11,128\n")
    with pytest.raises(DataError, match=r"t.csv:2: bi='x' is not a whole number"):
        load_trials(path)


def test_command_prints_the_note_once_and_init_writes_rebayes_names(tmp_path, capsys):
    code = main(["frequentist", "--data", str(NAMES / "lee2004.csv"), "--measure", "RR"])
    out, err = capsys.readouterr()
    assert code == 0 and "0.73 [0.65, 0.83]" in out
    notes = [line for line in err.splitlines() if line.startswith("rebayes frequentist: note:")]
    assert len(notes) == 1 and "ai -> events_treat" in notes[0]
    code = main(["init", str(NAMES / "bcg_cells.csv"), str(tmp_path / "bcg")])
    assert code == 0
    header = (tmp_path / "bcg" / "trials.csv").read_text().splitlines()[0]
    assert header.startswith("study,events_treat,n_treat,events_control,n_control")
    assert "# trials.csv: metafor's column names" in (tmp_path / "bcg" / "dataset.toml").read_text()
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataNote)  # the written folder needs no renaming
        assert len(load_trials(tmp_path / "bcg")) == 13
