"""Silent misconfiguration and unsafe text: a dataset's files say exactly what is wrong.

A misspelt key in ``dataset.toml``, ``variants.toml`` or a prior file used to be ignored, so
the intended setting silently never happened; a semicolon-separated CSV was reported as
missing its first column; control and bidirectional-override characters passed into names.
Each case is one line naming the file, the place and (for a key) the closest valid key.
"""

import shutil
import tomllib

import pytest

import rebayes as rb
from conftest import TEST_DATA
from rebayes.bayes.priors import load_prior_file
from rebayes.data.schema import DatasetSchema, SchemaError

HEAD = "study,events_treat,n_treat,events_control,n_control"
ROWS = "A,5,10,3,10\nB,4,9,2,8\n"


def _error(path) -> str:
    with pytest.raises(rb.RebayesError) as info:
        rb.load_trials(path)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- unknown keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('measur = "OR"', "unknown key 'measur' (did you mean 'measure'?)"),
        ('higher_is_beter = false', "unknown key 'higher_is_beter' (did you mean "
                                    "'higher_is_better'?)"),
        ('zzz = "red"', "unknown key 'zzz' (known: analyses, analysis_order, ci_level,"),
        ('[citation]\ntxt = "x"', "unknown key 'citation.txt' (did you mean 'text'?)"),
        ('[covariates.alloc]\nlevls = ["a"]',
         "unknown key 'covariates.alloc.levls' (did you mean 'levels'?)"),
        ('[columns.year]\nknd = "continuous"', "unknown key 'columns.year.knd' (did you mean "
                                               "'kind'?)"),
        ('[covariates.alloc]\nlevels = ["random", "systematic"]\n'
         'level_labels = { randm = "random allocation" }',
         "unknown key 'covariates.alloc.level_labels.randm' (did you mean 'random'?)"),
        ('[[frequentist]]\ntitle = "x"\nbyy = "alloc"',
         "unknown key 'frequentist[1].byy' (did you mean 'by'?)"),
        ('[source]\ndataset = "ivig_rsa"\nstudy = ["A"]',
         "unknown key 'source.study' (did you mean 'studies'?)"),
        ('[[links]]\ntext = "x"\nhref = "y"\nhreff = "z"',
         "unknown key 'links[1].hreff' (did you mean 'href'?)"),
        ('[[analyses]]\nname = "a"\nsubgroups = ["alloc"]',
         "unknown key 'analyses[1].subgroups' (did you mean 'subgroup'?)"),
    ],
)
def test_an_unknown_key_anywhere_in_dataset_toml_names_the_closest(toml, message):
    with pytest.raises(SchemaError) as info:
        DatasetSchema.from_dict(tomllib.loads(toml), "x/dataset.toml")
    assert str(info.value).startswith(f"x/dataset.toml: {message}")


def test_every_shipped_and_test_dataset_still_loads():
    from rebayes.data.trials import list_datasets

    for name in list_datasets():
        rb.load_trials(name)
    for folder in sorted(p.parent for p in TEST_DATA.glob("*/dataset.toml")):
        rb.load_trials(folder)


def _folder(tmp_path, variants: str):
    folder = tmp_path / "v"
    shutil.copytree(TEST_DATA / "bcg", folder)
    (folder / "variants.toml").write_text(variants, encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ('[v]\n[[v.sett]]\nstudy = "Aronson"\nn_treat = 200',
         "v/variants.toml: unknown key 'v.sett' (did you mean 'set'?)"),
        ('[v]\ndescripton = "x"', "v/variants.toml: unknown key 'v.descripton' (did you mean "
                                  "'description'?)"),
        ('[v]\nsource_variant = "x"', "v/variants.toml: unknown key 'v.source_variant' "
                                      "(known: description, drop, set)"),
        ('[v]\n[[v.drop]]\nstudy = "Aronson"\nyear = 1948',
         "v/variants.toml: unknown key 'v.drop[1].year' (known: study)"),
        ('[v]\n[[v.set]]\nstudy = "Aronson"\nn_tret = 200',
         "v/variants.toml: unknown key 'v.set[1].n_tret' (did you mean 'n_treat'?)"),
        ('description = "not a variant"', "v/variants.toml: description must be a table"),
    ],
)
def test_an_unknown_key_in_variants_toml_names_the_closest(tmp_path, monkeypatch, variants,
                                                           message):
    _folder(tmp_path, variants)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(rb.RebayesError) as info:
        rb.load_trials("v", "v" if "[v]" in variants else None)
    assert str(info.value).startswith(message)


def test_an_unknown_key_in_a_prior_file_names_the_closest(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text('[narrow]\ntau = { family = "half_normal", sigam = 0.2 }\n')
    with pytest.raises(rb.RebayesError) as info:
        load_prior_file(path)
    assert str(info.value) == f"{path}: unknown key 'narrow.tau.sigam' (did you mean 'sigma'?)"


# --- CSVs that are not comma-separated ---------------------------------------------------------


@pytest.mark.parametrize(("separator", "name"), [(";", "semicolon"), ("\t", "tab")])
def test_a_csv_with_another_separator_says_so(tmp_path, separator, name):
    path = tmp_path / "t.csv"
    path.write_text(f"{HEAD}\n{ROWS}".replace(",", separator), encoding="utf-8")
    assert _error(path).endswith(
        f"t.csv:1: looks {name}-separated (rebayes reads comma-separated CSV)")


def test_a_reported_csv_with_semicolons_says_so(tmp_path):
    from rebayes.audit.paper import load_reported

    path = tmp_path / "reported.csv"
    path.write_text("id;location;statistic;reported;value\nx;p. 1;count;10 RCTs;10\n",
                    encoding="utf-8")
    with pytest.raises(rb.RebayesError, match=r"reported\.csv:1: looks semicolon-separated"):
        load_reported(path)


# --- characters that hide what a name is ---------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "found"),
    [
        ("A\x00", "a control character (U+0000)"),
        ("A\x1b[31m", "a control character (U+001B)"),
        ("A\x85B", "a control character (U+0085)"),  # C1: NEXT LINE
        ("A\t", None),  # stripped at the edge: harmless
        ("Smith\u202e1002", "U+202E RIGHT-TO-LEFT OVERRIDE (it reorders the text as displayed)"),
        ("\u2066Smith", "U+2066 LEFT-TO-RIGHT ISOLATE (it reorders the text as displayed)"),
        ("Müller 2001 – ß", None),  # other Unicode is welcome
    ],
)
def test_control_and_bidi_characters_in_a_csv_field(tmp_path, cell, found):
    path = tmp_path / "t.csv"
    path.write_text(f"{HEAD},setting\nB,4,9,2,8,x\n{cell},5,10,3,10,y\n", encoding="utf-8")
    if found is None:
        rb.load_trials(path)
        return
    assert _error(path).endswith(f"t.csv:3: study contains {found}")


def test_a_control_character_in_a_covariate_or_a_column_name(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(f"{HEAD},setting\nA,5,10,3,10,in\u202bpatient\n", encoding="utf-8")
    assert _error(path).endswith("t.csv:2: setting contains U+202B RIGHT-TO-LEFT EMBEDDING "
                                 "(it reorders the text as displayed)")
    path.write_text(f"{HEAD},sett\x07ing\nA,5,10,3,10,x\n", encoding="utf-8")
    assert _error(path).endswith("t.csv:1: column name 6 contains a control character (U+0007)")


def test_a_bidi_character_in_reported_csv(tmp_path):
    from rebayes.audit.paper import load_reported

    path = tmp_path / "reported.csv"
    path.write_text("id,location,statistic,reported,value\nx\u202e,p. 1,count,10 RCTs,10\n",
                    encoding="utf-8")
    with pytest.raises(rb.RebayesError) as info:
        load_reported(path)
    assert str(info.value).endswith("reported.csv:2: id contains U+202E RIGHT-TO-LEFT "
                                    "OVERRIDE (it reorders the text as displayed)")


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        # Written as the character itself, and as TOML escapes.
        ('title = "BCG"\ntreatment = "BCG \u202evaccine"\n',
         ":2: treatment contains U+202E RIGHT-TO-LEFT OVERRIDE"),
        ('title = "BCG"\n\n[covariates.alloc]\nlevel_labels = { random = "r\\u0000" }\n',
         ":4: covariates.alloc.level_labels.random contains a control character (U+0000)"),
        ('notes = ["x", "y\\U00002067"]\n', ":1: notes[2] contains U+2067 RIGHT-TO-LEFT "
                                            "ISOLATE"),
        ('notes = """two\nlines\tand a tab"""\n', None),  # layout is fine in TOML text
    ],
)
def test_control_and_bidi_characters_in_dataset_toml(tmp_path, monkeypatch, toml, message):
    folder = tmp_path / "x"
    folder.mkdir()
    shutil.copy(TEST_DATA / "bcg" / "trials.csv", folder)
    (folder / "dataset.toml").write_text(toml, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    if message is None:
        rb.load_trials("x")
        return
    assert _error("x").startswith(f"x/dataset.toml{message}")


def test_a_control_character_in_a_variant(tmp_path, monkeypatch):
    _folder(tmp_path, '[v]\n[[v.set]]\nstudy = "Aronson"\nalloc = "random\\u001b"\n')
    monkeypatch.chdir(tmp_path)
    with pytest.raises(rb.RebayesError) as info:
        rb.load_trials("v", "v")
    assert str(info.value) == "v/variants.toml:4: v.set[1].alloc contains a control character " \
                              "(U+001B)"


def test_a_share_for_a_study_the_table_does_not_have(tmp_path, monkeypatch):
    folder = tmp_path / "x"
    folder.mkdir()
    (folder / "trials.csv").write_text(
        "study,stratum,events_treat,n_treat,events_control,n_control\n"
        "Smith 1995,mixed,5,10,3,10\nJones 1999,primary,4,9,2,8\n", encoding="utf-8")
    (folder / "dataset.toml").write_text(
        'strata = "stratum"\n[covariates.type]\ncolumn = "stratum"\n'
        'levels = ["primary", "secondary", "mixed"]\npooled = "mixed"\n'
        'shares = { "Smith 1996" = 0.5 }\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert _error("x") == ("x/dataset.toml: unknown key 'covariates.type.shares.Smith 1996' "
                           "(did you mean 'Smith 1995'?)")
