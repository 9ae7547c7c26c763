"""Analysis specs, model scripts and the design each builds from the trial table."""

from dataclasses import replace

import pytest

from conftest import ROOT, TEST_DATA
from rebayes.bayes.analyses import analysis_specs
from rebayes.bayes.design import build_design
from rebayes.bayes.spec import AnalysisSpec, SpecError, load_script

# Verbatim copies of the model scripts the shipped datasets had before their dataset.toml
# declared the same analyses as [[analyses]] tables.
SHIPPED_SCRIPTS = TEST_DATA / "shipped_scripts"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(covariates=("timing",)), "effect='common' takes no covariates"),
        (dict(subgroup="timing"), "a subgroup needs effect='contrast' or 'separate'"),
        (dict(effect="contrast"), "effect='contrast' needs at least one covariate"),
        (dict(effect="separate"), "effect='separate' needs a subgroup column"),
        (dict(mixed="share"), "mixed='share' sets a covariate's value: name it in covariates"),
        (
            dict(effect="contrast", covariates=("rsa_type:timing",), split_by_stratum=True),
            "interaction 'rsa_type:timing' needs its main effect 'rsa_type'",
        ),
        (dict(strata=()), "strata is empty"),
        (dict(likelihood="poisson"), "likelihood='poisson' is not one of binomial, normal"),
        (dict(effect="random"), "effect='random' is not one of common, contrast, separate"),
        (dict(mixed="guess"), "mixed='guess' is not one of exclude, share"),
        (dict(seed=-1), "seed=-1 must be a non-negative integer"),
        (dict(priors=("flat",)), "unknown prior set 'flat'"),
        (dict(priors=()), "priors is empty"),
        (dict(effect="contrast", covariates=("a:b:c", "a", "b")), "write a term as 'a' or 'a:b'"),
    ],
)
def test_spec_errors_are_one_line(kwargs, message):
    with pytest.raises(SpecError) as info:
        AnalysisSpec("bad", **kwargs)
    text = str(info.value)
    assert text.startswith("spec 'bad': ")
    assert message in text
    assert "\n" not in text


def test_spec_normalises_strings_to_tuples():
    spec = AnalysisSpec("t", effect="contrast", covariates="timing", subgroup="timing")
    assert spec.covariates == ("timing",) and spec.subgroup == ("timing",)
    assert spec.to_dict()["covariates"] == ["timing"]


@pytest.mark.parametrize("dataset", ["ivig_rsa", "ivig_secondary_review"])
def test_declared_analyses_are_the_specs_the_scripts_were(dataset):
    # Same to_dict() (it keys the fit cache), in the same order: the same fits, the same report.
    scripts = sorted((SHIPPED_SCRIPTS / dataset).glob("*.py"))
    declared = analysis_specs(dataset)
    data = declared[0].data
    assert data and all(spec.data == data for spec in declared)
    by_script = {p.stem: replace(load_script(p), data=data).to_dict() for p in scripts}
    assert {s.name: s.to_dict() for s in declared} == by_script
    order = {"ivig_rsa": ["overall", "rsa_type", "timing", "timing_within_type", "placebo",
                          "normal_approximation"],
             "ivig_secondary_review": ["secondary", "overall"]}[dataset]
    assert [s.name for s in declared] == order


def test_a_declaration_takes_exactly_the_specs_fields_a_dataset_may_set():
    from dataclasses import fields

    from rebayes.data.schema import ANALYSIS_KEYS

    command_only = {"data", "prior_file", "higher_is_better"}  # given by the command
    assert set(ANALYSIS_KEYS) == {f.name for f in fields(AnalysisSpec)} - command_only


def test_the_shipped_datasets_hold_no_code():
    datasets = ROOT / "src/rebayes/data/datasets"
    assert sorted(p.parent.name for p in datasets.glob("*/dataset.toml")) == [
        "ivig_rsa", "ivig_secondary_review"]
    assert not list(datasets.rglob("*.py"))


@pytest.mark.parametrize(
    "text, message",
    [
        ("x = 1\n", "defines no SPEC"),
        ("SPEC = 3\n", "SPEC is a int, not an rebayes.AnalysisSpec"),
        ("def broken(:\n", "syntax error"),
        ("raise RuntimeError('boom')\n", "RuntimeError: boom"),
        (
            "import rebayes as rb\nSPEC = rb.AnalysisSpec('s', effect='separate')\n",
            "spec 's': effect='separate' needs a subgroup column",
        ),
    ],
)
def test_bad_model_scripts(tmp_path, text, message):
    path = tmp_path / "script.py"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_script(path)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_relative_paths_in_a_script_resolve_next_to_it(tmp_path, monkeypatch):
    (tmp_path / "trials.csv").write_text(
        "study,events_treat,n_treat,events_control,n_control\nA,5,10,4,10\nB,3,9,2,9\n",
        encoding="utf-8",
    )
    (tmp_path / "p.toml").write_text('[x]\ntau = { family = "half_normal", sigma = 1 }\n')
    script = tmp_path / "s.py"
    script.write_text(
        "import rebayes as rb\n"
        "SPEC = rb.AnalysisSpec('s', data='trials.csv', prior_file='p.toml', priors=['x'])\n"
    )
    monkeypatch.chdir(ROOT)
    spec = load_script(script)
    assert spec.data == str(tmp_path / "trials.csv")
    assert spec.prior_file == str(tmp_path / "p.toml")
    assert build_design(spec).rows == ("A", "B")


def test_missing_model_script(tmp_path):
    with pytest.raises(SpecError, match="no such model script"):
        load_script(tmp_path / "nope.py")
