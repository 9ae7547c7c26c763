"""``rebayes init``: the column guesses on real tables, and a folder that needs no code."""

import tomllib

import pytest

import rebayes as rb
from conftest import TEST_DATA
from rebayes.bayes.analyses import analysis_specs, resolve_spec
from rebayes.cli import main
from rebayes.data.scaffold import guess_columns, init_dataset


def _guesses(path):
    return {g.name: g for g in guess_columns(rb.load_trials(path))}


def test_a_text_column_of_repeated_labels_is_categorical_on_a_real_table():
    # metadat's dat.hartmannboyce2018 (nicotine replacement therapy, 136 trials): the product
    # column has 11 labels, 7 of them on several trials (gum 56, patch 51, ...; R:
    # table(dat.hartmannboyce2018$treatment)). The old rule (at most 8 labels) called it text.
    nrt = _guesses(TEST_DATA / "nrt.csv")
    assert nrt["treatment"].kind == "categorical" and nrt["treatment"].analyse
    assert len(nrt["treatment"].levels) == 11
    assert nrt["treatment"].levels[:3] == ("gum", "patch", "inhalator")  # first appearance
    assert "study" not in nrt  # the study name is never a covariate


def test_labels_that_mostly_name_one_row_are_free_text(tmp_path):
    # 12 labels over 40 rows, each on 3-4 rows: categorical. 12 labels on 13 rows (one
    # repeated): names, free text.
    rows = [f"S{i},{'abcdefghijkl'[i % 12]},{'x' * (i % 3 + 1)}{i},1,10,2,10" for i in range(40)]
    path = tmp_path / "t.csv"
    path.write_text("study,site,note,events_treat,n_treat,events_control,n_control\n"
                    + "\n".join(rows) + "\n", encoding="utf-8")
    guesses = _guesses(path)
    assert guesses["site"].kind == "categorical" and len(guesses["site"].levels) == 12
    assert guesses["note"].kind == "text" and not guesses["note"].analyse
    # 13 rows, 12 labels, one repeated: the first author's name, not a subgroup.
    path.write_text("study,author,events_treat,n_treat,events_control,n_control\n"
                    + "\n".join(f"S{i},A{min(i, 11)},1,10,2,10" for i in range(13)) + "\n",
                    encoding="utf-8")
    assert _guesses(path)["author"].kind == "text"


def test_bcg_guesses_are_unchanged():
    bcg = _guesses(TEST_DATA / "bcg.csv")
    assert bcg["alloc"].levels == ("random", "alternate", "systematic")
    assert bcg["ablat"].kind == "continuous" and bcg["year"].kind == "continuous"
    assert not bcg["year"].analyse


def test_init_writes_no_code_and_its_examples_are_valid_declarations(tmp_path):
    init_dataset(TEST_DATA / "bcg.csv", tmp_path / "bcg")
    assert not (tmp_path / "bcg" / "models").exists()
    toml = (tmp_path / "bcg" / "dataset.toml").read_text(encoding="utf-8")
    assert "# [[analyses]]" in toml
    # Uncommented, the examples are analyses rebayes accepts.
    start = toml.index("# [[analyses]]")
    body = "\n".join(line.removeprefix("# ").removeprefix("#")
                     for line in toml[start:].splitlines())
    (tmp_path / "bcg" / "dataset.toml").write_text(toml[:start] + body, encoding="utf-8")
    tomllib.loads(toml[:start] + body)
    specs = {s.name: s for s in analysis_specs(tmp_path / "bcg")}
    assert list(specs) == ["overall", "ablat", "alloc", "alloc_separate", "normal_approximation"]
    assert specs["overall"].priors == ("weakly_informative", "skeptical")
    assert specs["alloc_separate"].effect == "separate"


def test_a_covariate_declared_after_init_has_its_analysis(tmp_path, capsys):
    # Issue 23: init used to write one script per analysis; a covariate declared later then
    # had none ("no such analysis").
    folder = tmp_path / "bcg"
    assert main(["init", str(TEST_DATA / "bcg.csv"), str(folder)]) == 0
    capsys.readouterr()
    toml = folder / "dataset.toml"
    text = toml.read_text(encoding="utf-8").replace("[columns.year]", "[covariates.year]")
    toml.write_text(text.replace("analyse = false\n", "", 1), encoding="utf-8")
    assert "year" in [s.name for s in analysis_specs(folder)]
    assert resolve_spec("year", folder).covariates == ("year",)


@pytest.mark.parametrize("name", ["nrt.csv", "bcg.csv"])
def test_init_output_loads(tmp_path, name):
    init_dataset(TEST_DATA / name, tmp_path / "out")
    rb.load_trials(tmp_path / "out")
