"""A downloaded dataset folder runs no code unasked: model scripts run only when trusted.

The folder below holds a model script that writes a marker file when imported: the marker
must never appear unless the user allowed the script (``--allow-scripts``), trusted the folder
with its current content (``rebayes trust DIR``), named the script on the command line, or the
folder is shipped with rebayes.
"""

import json
import shutil
import warnings

import pytest

import rebayes as rb
from conftest import TEST_DATA
from rebayes.bayes.analyses import UntrustedScriptsWarning, analysis_specs, resolve_spec
from rebayes.bayes.spec import SpecError
from rebayes.cli import main
from rebayes.data import trust

EVIL = """\
from pathlib import Path
import rebayes as rb

Path({marker!r}).write_text("ran")
SPEC = rb.AnalysisSpec("evil", title="A script that writes a file when imported")
"""


@pytest.fixture
def downloaded(tmp_path):
    """A copy of the BCG folder with models/evil.py, as if downloaded; and its marker path."""
    folder = tmp_path / "downloaded"
    shutil.copytree(TEST_DATA / "bcg", folder)
    (folder / "models").mkdir()
    marker = tmp_path / "marker"
    (folder / "models" / "evil.py").write_text(EVIL.format(marker=str(marker)), encoding="utf-8")
    return folder, marker


def _names(specs):
    return [s.name for s in specs]


def test_untrusted_scripts_are_never_imported_and_the_defaults_still_run(downloaded):
    folder, marker = downloaded
    with pytest.warns(UntrustedScriptsWarning) as notes:
        specs = analysis_specs(folder)
    assert _names(specs) == ["overall", "ablat", "alloc", "normal_approximation"]
    assert str(notes[0].message) == (
        f"not running 1 untrusted model script of {folder}: evil.py "
        f"(run with --allow-scripts, or trust the folder: rebayes trust {folder})"
    )
    # A default analysis by name runs; the untrusted script's analysis is refused.
    with pytest.warns(UntrustedScriptsWarning):
        assert resolve_spec("alloc", folder).subgroup == ("alloc",)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the refusal is the one line: no note beside it
        with pytest.raises(SpecError) as refused:
            resolve_spec("evil", folder)
    assert str(refused.value) == (
        f"evil: {folder}/models/evil.py is an untrusted model script; run with "
        f"--allow-scripts, or trust the folder: rebayes trust {folder}"
    )
    assert not marker.exists()


def test_allow_scripts_runs_them(downloaded):
    folder, marker = downloaded
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        specs = analysis_specs(folder, allow_scripts=True)
    assert marker.read_text() == "ran"
    assert _names(specs) == ["overall", "ablat", "alloc", "evil", "normal_approximation"]
    assert resolve_spec("evil", folder, allow_scripts=True).data == str(folder.resolve())


def test_a_script_named_on_the_command_line_runs(downloaded):
    folder, marker = downloaded
    spec = resolve_spec(str(folder / "models" / "evil.py"), folder)
    assert spec.name == "evil" and marker.exists()


def test_trust_records_hashes_and_a_changed_or_new_script_is_untrusted_again(downloaded,
                                                                               capsys):
    folder, marker = downloaded
    assert main(["trust", str(folder)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"trusted 1 model script of {folder}: evil.py (recorded in ")
    record = json.loads(trust.trust_file().read_text())
    script = folder / "models" / "evil.py"
    import hashlib

    assert record["folders"] == {
        str(folder.resolve()): {"evil.py": hashlib.sha256(script.read_bytes()).hexdigest()}
    }
    assert "evil" in _names(analysis_specs(folder))
    assert marker.read_text() == "ran"
    marker.unlink()

    # One byte more: the script is someone else's now.
    script.write_text(script.read_text() + "\n", encoding="utf-8")
    (folder / "models" / "later.py").write_text(EVIL.format(marker=str(marker)))
    with pytest.warns(UntrustedScriptsWarning) as notes:
        assert "evil" not in _names(analysis_specs(folder))
    assert "evil.py (changed since trusted), later.py (run with" in str(notes[0].message)
    with pytest.raises(SpecError, match=r"untrusted model script \(changed since trusted\)"):
        resolve_spec("evil", folder)
    assert not marker.exists()
    assert main(["trust", "--list"]) == 0
    assert capsys.readouterr().out == (
        f"{folder.resolve()}: evil.py (changed), later.py (new)\n"
    )

    assert main(["trust", "--revoke", str(folder)]) == 0
    capsys.readouterr()
    assert main(["trust", "--revoke", str(folder)]) == 2
    assert capsys.readouterr().err == (
        f"rebayes trust: error: {folder}: not trusted (nothing to revoke)\n"
    )


def test_an_unreadable_trust_file_trusts_nothing(downloaded):
    folder, marker = downloaded
    trust.trust_folder(folder)
    trust.trust_file().write_text("{not json")
    with pytest.warns(UntrustedScriptsWarning):
        analysis_specs(folder)
    assert not marker.exists()


def test_trust_needs_a_folder_with_scripts(tmp_path, capsys):
    assert main(["trust", str(TEST_DATA / "bcg")]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"rebayes trust: error: {TEST_DATA / 'bcg'}: no model scripts to trust "
        f"(none in {TEST_DATA / 'bcg' / 'models'})\n"
    )
    assert main(["trust", str(tmp_path / "nothing")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_shipped_folders_are_trusted(downloaded, monkeypatch):
    folder, marker = downloaded
    monkeypatch.setattr(trust, "data_root", lambda: folder.parent)  # as if shipped
    assert trust.script_trust(folder).trusted == (folder / "models" / "evil.py",)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "evil" in _names(analysis_specs(folder))
    assert marker.exists()


def test_commands_leave_untrusted_scripts_out_in_one_line(downloaded, capsys, monkeypatch):
    folder, marker = downloaded
    monkeypatch.chdir(folder.parent)
    # priormap resolves the dataset's overall analysis, then refuses the unknown prior
    # before any fit: the note comes first, then the error.
    argv = ["priormap", "--data", "downloaded", "--tau-priors", "nope"]
    assert main(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (
        "rebayes priormap: not running 1 untrusted model script of downloaded: evil.py "
        "(run with --allow-scripts, or trust the folder: rebayes trust downloaded)"
    )
    assert err[1].startswith("rebayes priormap: error: unknown prior set 'nope'")
    assert not marker.exists()
    assert main([*argv, "--allow-scripts"]) == 2
    assert capsys.readouterr().err.startswith("rebayes priormap: error: unknown prior set")
    assert marker.exists()


def test_fit_on_a_downloaded_folder_runs_the_default_analysis(downloaded, capsys,
                                                               monkeypatch):
    folder, marker = downloaded
    monkeypatch.chdir(folder.parent)
    code = main(["fit", "--data", "downloaded", "--prior", "weakly_informative", "--draws",
                 "300", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["analysis"] == "overall"
    assert err.startswith("rebayes fit: not running 1 untrusted model script of downloaded")
    assert not marker.exists()


def test_every_command_that_resolves_analyses_takes_allow_scripts():
    from rebayes.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001 - argparse's
    # credibility reads RevMan's interval only (no analysis, no script): not in the list.
    for name in ("fit", "compare", "report", "absolute", "cumulative", "plan",
                 "priormap", "batch"):
        options = {o for a in commands[name]._actions for o in a.option_strings}
        assert "--allow-scripts" in options, name


# --- declared analyses: no code ---------------------------------------------------------------


def _bcg_with(tmp_path, extra: str):
    folder = tmp_path / "bcg"
    shutil.copytree(TEST_DATA / "bcg", folder)
    toml = folder / "dataset.toml"
    toml.write_text(toml.read_text() + "\n" + extra, encoding="utf-8")
    return folder


def test_declared_analyses_join_the_defaults_and_replace_one_of_the_same_name(tmp_path):
    folder = _bcg_with(tmp_path, """
[[analyses]]
name = "alloc"
title = "One effect per allocation"
effect = "separate"
subgroup = ["alloc"]

[[analyses]]
name = "latitude_and_allocation"
covariates = ["ablat", "alloc"]
effect = "contrast"
priors = ["skeptical"]
seed = 7
""")
    specs = {s.name: s for s in analysis_specs(folder)}
    assert list(specs) == ["overall", "ablat", "alloc", "latitude_and_allocation",
                           "normal_approximation"]
    data = str(folder)
    assert specs["alloc"] == rb.AnalysisSpec("alloc", title="One effect per allocation",
                                             data=data, effect="separate", subgroup="alloc")
    assert specs["latitude_and_allocation"] == rb.AnalysisSpec(
        "latitude_and_allocation", data=data, covariates=("ablat", "alloc"),
        effect="contrast", priors=("skeptical",), seed=7)


def test_default_analyses_false_keeps_only_the_declared_ones(tmp_path):
    folder = _bcg_with(tmp_path, '[[analyses]]\nname = "overall"\n')
    toml = folder / "dataset.toml"
    toml.write_text("default_analyses = false\n" + toml.read_text(), encoding="utf-8")
    assert _names(analysis_specs(folder)) == ["overall"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[[analyses]]\nname = "a"\neffect = "separate"\n',
         "bcg/dataset.toml: analyses[1]: spec 'a': effect='separate' needs a subgroup column "
         "(one d per subgroup)"),
        ('[[analyses]]\nname = "a"\nseed = "one"\n',
         "bcg/dataset.toml: analyses[1]: spec 'a': seed='one' must be a non-negative integer"),
    ],
)
def test_a_bad_declaration_is_one_line_naming_the_file_and_entry(tmp_path, monkeypatch,
                                                                 extra, message):
    folder = _bcg_with(tmp_path, extra)
    monkeypatch.chdir(folder.parent)
    with pytest.raises(SpecError) as info:
        analysis_specs("bcg")
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[[analyses]]\nname = "a"\ncovarites = ["ablat"]\n',
         "unknown key 'analyses[1].covarites' (did you mean 'covariates'?)"),
        ('[[analyses]]\ntitle = "no name"\n', "analyses[1]: needs a name"),
        ('[[analyses]]\nname = "a"\n[[analyses]]\nname = "a"\n',
         "analyses[2]: name 'a' is declared twice"),
        ("default_analyses = 0\n", "default_analyses: must be true or false"),
    ],
)
def test_declarations_are_checked_on_load(tmp_path, extra, message):
    folder = tmp_path / "x"
    folder.mkdir()
    shutil.copy(TEST_DATA / "bcg" / "trials.csv", folder)
    (folder / "dataset.toml").write_text(extra, encoding="utf-8")
    with pytest.raises(rb.RebayesError) as info:
        rb.load_trials(folder)
    assert message in str(info.value) and "\n" not in str(info.value)


# --- batch: trust is decided where the batch starts ---------------------------------------------


def test_batch_resolves_the_overall_analysis_in_the_main_process(downloaded, tmp_path):
    from rebayes.batch import expand_inputs, prepare_tasks
    from rebayes.bayes.priors import resolve_priors
    from rebayes.bayes.settings import SamplerSettings

    folder, marker = downloaded
    overall = folder / "models" / "overall.py"
    overall.write_text(EVIL.format(marker=str(marker)).replace(
        'rb.AnalysisSpec("evil",', 'rb.AnalysisSpec("overall", likelihood="normal",'))
    priors, settings = resolve_priors(["weakly_informative"]), SamplerSettings()

    def prepared(allow):
        [task] = prepare_tasks(expand_inputs([folder]), priors, 0, settings, allow)
        return task

    with pytest.warns(UntrustedScriptsWarning):
        plain = prepared(False)
    assert plain.spec.likelihood == "binomial" and not marker.exists()  # the default overall
    scripted = prepared(True)
    assert not scripted.error, scripted.error
    assert marker.exists() and scripted.spec.likelihood == "normal"
    # The analysis is part of the rerun check; the seed is the rows' alone.
    assert scripted.key != plain.key and scripted.seed == plain.seed
