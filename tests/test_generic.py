"""Any binary meta-analysis: the code knows no paper, the dataset folder knows its own.

References: metafor's published dat.bcg results (Viechtbauer 2010, J Stat Softw 36(3),
section 3: DL random-effects RR 0.4896 (0.3449-0.6950); mixed-effects meta-regression on
absolute latitude, log RR slope -0.0291 per degree (95% CI -0.0437 to -0.0146));
Nissen & Wolski 2007 (N Engl J Med 356:2457) Table 4: 86 myocardial infarctions among 15,556
patients on rosiglitazone vs 72 among 12,277 controls.
"""

import json
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

import rebayes as rb
from conftest import ROOT, TEST_DATA
from rebayes.bayes.analyses import analysis_specs, resolve_spec
from rebayes.bayes.design import build_design
from rebayes.cli import main
from rebayes.data.scaffold import guess_columns, init_dataset
from rebayes.data.schema import DatasetSchema, SchemaError
from rebayes.data.trials import DataError, load_dataset

SRC = ROOT / "src" / "rebayes"
PAPER_WORDS = ("IVIG", "ivig_rsa", "live birth", "RSA", "seed_fit", "conception",
               "RevMan 5.3", "our reconstruction", "trial reports", "rounded as the paper")


def test_generic_code_names_no_paper():
    hits = []
    for path in SRC.rglob("*"):
        if not path.is_file() or "datasets" in path.relative_to(SRC).parts:
            continue
        if path.suffix not in (".py", ".html", ".j2", ".toml", ".md", ".txt", ".css"):
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            for word in PAPER_WORDS:
                if re.search(rf"(?<![A-Za-z]){re.escape(word)}(?![a-z])", line):
                    hits.append(f"{path.relative_to(ROOT)}:{n}: {word}")
    assert not hits, "\n".join(hits)


def test_library_code_never_switches_the_matplotlib_backend():
    # A notebook user's backend is theirs: only the command (cli/__init__) may choose one.
    hits = [
        str(p.relative_to(ROOT)) for p in SRC.rglob("*.py")
        if re.search(r"matplotlib\.use\(|\bmpl\.use\(", p.read_text(encoding="utf-8"))
    ]
    assert not hits, hits


# --- dataset.toml ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("higher_is_better = 'yes'", "dataset.toml: higher_is_better: must be true or false"),
        ("measure = 'HR'", "dataset.toml: measure: 'HR' is not one of RR, OR, RD, PETO_OR"),
        ("ci_level = 95", "dataset.toml: ci_level: 95 must be a number in [0.5, 1)"),
        ("[covariates.x]\nkind = 'ordinal'", "covariates.x: kind='ordinal' is not one of"),
        ("[covariates.x]\nlevels = ['a', 'b']\nreference = 'c'",
         "covariates.x: reference='c' is not one of its levels"),
        ("[covariates.x]\ncolour = 1",
         "dataset.toml: unknown key 'covariates.x.colour' (did you mean 'column'?)"),
    ],
)
def test_schema_errors_are_one_line(toml, message):
    with pytest.raises(SchemaError) as info:
        DatasetSchema.from_dict(tomllib.loads(toml))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_bare_csv_gets_defaults_and_says_so():
    schema = rb.load_trials(TEST_DATA / "bcg.csv").attrs["schema"]
    # No direction unless declared: neutral words, and how to declare one.
    assert schema.higher_is_better is None and not schema.direction_declared
    assert schema.strata is None
    assert "not declared" in schema.direction.sentence()
    assert "higher_is_better = true" in schema.direction.sentence()


# --- the loader on real, messy tables -------------------------------------------------------


def _csv(tmp_path, body, name="t.csv"):
    path = tmp_path / name
    path.write_text("study,events_treat,n_treat,events_control,n_control\n" + body)
    return path


def test_repeated_study_names_are_rows_with_a_note(tmp_path):
    # A multi-arm trial with a shared control, as a Cochrane review enters it.
    path = _csv(tmp_path, "Stovall 1995,101,107,44,49\nStovall 1995,93,104,44,49\nB,5,10,4,10\n")
    trials = rb.load_trials(path)
    assert len(trials) == 3
    assert "Stovall 1995" in trials.attrs["notes"][0]
    design = build_design(rb.AnalysisSpec("o"), trials)
    # Each row is a trial of its own for the random effect, with a distinct label.
    assert design.rows == ("Stovall 1995", "Stovall 1995 #2", "B")
    assert len(design.studies) == 3


def test_float_written_counts_are_accepted_and_huge_counts_refused(tmp_path):
    trials = rb.load_trials(_csv(tmp_path, "A,12.0,20.0,5,20\nB,3,10,4,10\n"))
    assert trials.loc[0, "events_treat"] == 12 and str(trials["events_treat"].dtype) == "int64"
    for raw, shown in [("1" + "0" * 29, "100000000000... (30 digits)"),
                       (str(2**63 - 1), str(2**63 - 1)), ("1e29", "1e29")]:
        with pytest.raises(DataError) as info:
            rb.load_trials(_csv(tmp_path, f"A,{raw},{raw},5,20\n", "big.csv"))
        assert str(info.value).endswith(
            f"big.csv:2: events_treat={shown} exceeds the largest count accepted (10^9)"
        )
    with pytest.raises(DataError, match=r"t2.csv:2: events_treat='12.5' is not a whole number"):
        rb.load_trials(_csv(tmp_path, "A,12.5,20,5,20\n", "t2.csv"))


def test_a_folder_without_trials_csv_is_named_as_such(tmp_path):
    with pytest.raises(DataError, match="a folder without trials.csv"):
        rb.load_trials(tmp_path)


def test_label_checks_apply_only_to_declared_columns(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("study,events_treat,n_treat,events_control,n_control,stratum,timing\n"
                    "A,1,2,1,2,tertiary,during\nB,1,3,1,3,x,y\n")
    trials = rb.load_trials(path)  # a bare CSV: these are plain covariate columns
    assert list(trials["stratum"]) == ["tertiary", "x"]


def test_declared_covariates_are_typed(tmp_path):
    trials = rb.load_trials(TEST_DATA / "bcg")
    assert trials["ablat"].dtype.kind in "if" and trials.loc[0, "ablat"] == 44
    assert not trials.attrs["schema"].higher_is_better


# --- default analyses ------------------------------------------------------------------------


def test_default_analyses_follow_the_declared_covariates():
    specs = analysis_specs(TEST_DATA / "bcg")
    assert [s.name for s in specs] == ["overall", "ablat", "alloc", "normal_approximation"]
    ablat = next(s for s in specs if s.name == "ablat")
    assert ablat.covariates == ("ablat",) and not ablat.subgroup  # continuous: a slope
    design = build_design(ablat)
    # metafor's dat.bcg latitudes: 44 55 42 52 13 44 19 13 27 42 18 33 33, sum 435, mean
    # 435 / 13 = 33.4615...: the design centres the slope's column there.
    assert design.coefs == ("ablat",) and design.centres == pytest.approx((435 / 13,))
    np.testing.assert_allclose(design.X[:3, 0], np.array([44, 55, 42]) - 435 / 13)
    assert design.intercept_at == "at ablat = 33.46 degree (the mean of the 13 analysed rows)"
    alloc = build_design(next(s for s in specs if s.name == "alloc"))
    # Reference level first (random), then the declared order.
    assert alloc.coefs == ("alternate", "systematic")
    assert alloc.subgroups == ("random", "alternate", "systematic")


def test_an_unknown_analysis_name_lists_the_known_ones():
    with pytest.raises(rb.RebayesError, match=r"nope: no such analysis of bcg \(analyses: "
                                              r"overall, ablat, alloc, normal_approximation\)"):
        resolve_spec("nope", TEST_DATA / "bcg")


def test_shipped_dataset_declares_its_analyses():
    names = [s.name for s in analysis_specs("ivig_rsa")]
    assert names[0] == "overall" and names[-1] == "normal_approximation" and len(names) == 6


# --- init ------------------------------------------------------------------------------------


def test_init_guesses_covariates_and_never_overwrites(tmp_path):
    guesses = {g.name: g for g in guess_columns(rb.load_trials(TEST_DATA / "bcg.csv"))}
    assert guesses["year"].kind == "continuous" and not guesses["year"].analyse
    assert guesses["ablat"].kind == "continuous" and guesses["ablat"].analyse
    assert guesses["alloc"].levels == ("random", "alternate", "systematic")
    files = init_dataset(TEST_DATA / "bcg.csv", tmp_path / "bcg")
    assert sorted(f.name for f in files) == ["dataset.toml", "trials.csv"]  # no code
    assert sorted(p.name for p in (tmp_path / "bcg").iterdir()) == ["dataset.toml", "trials.csv"]
    names = [s.name for s in analysis_specs(tmp_path / "bcg")]
    assert names == ["overall", "ablat", "alloc", "normal_approximation"]
    before = (tmp_path / "bcg" / "dataset.toml").read_text()
    code = main(["init", str(TEST_DATA / "bcg.csv"), str(tmp_path / "bcg")])
    assert code == 2 and (tmp_path / "bcg" / "dataset.toml").read_text() == before


# --- end to end on data that is not the shipped dataset ---------------------------------------


def _fit_json(capsys, *argv):
    assert main(["fit", *argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_fit_on_bcg_points_the_way_its_data_do(capsys):
    out = _fit_json(capsys, "--data", str(TEST_DATA / "bcg"), "--prior", "weakly_informative")
    fit = out["priors"]["weakly_informative"]
    # metafor DL: RR 0.4896 (0.3449-0.6950); the Bayesian RR at the typical risk is close.
    assert 0.40 < fit["pooled_rr"]["median"] < 0.60 and fit["pooled_rr"]["ci_high"] < 0.8
    assert fit["p_benefit"] > 0.99  # fewer TB cases with BCG: benefit
    assert fit["direction"]["higher_is_better"] is False


def test_meta_regression_slope_per_unit_on_bcg(capsys):
    out = _fit_json(capsys, "ablat", "--data", str(TEST_DATA / "bcg"),
                    "--prior", "weakly_informative")
    slope = out["priors"]["weakly_informative"]["coefficients"]["ablat"]
    # metafor: log RR slope -0.0291 per degree (CI -0.0437 to -0.0146): ratio 0.971 per degree.
    assert 0.95 < slope["median"] < 0.99 and slope["ci_high"] < 1
    assert slope["p_towards_benefit"] > 0.99  # further from the equator, larger protection


def test_bare_csv_with_lower_is_better(capsys):
    out = _fit_json(capsys, "--data", str(TEST_DATA / "bcg.csv"), "--prior",
                    "weakly_informative", "--lower-is-better")
    assert out["priors"]["weakly_informative"]["p_benefit"] > 0.99


def test_rare_events_table_runs_and_keeps_double_zero_trials(capsys):
    trials = rb.load_trials(TEST_DATA / "rosiglitazone")
    # Nissen & Wolski 2007, Table 4: 86/15,556 vs 72/12,277 myocardial infarctions.
    assert int(trials.events_treat.sum()) == 86 and int(trials.n_treat.sum()) == 15556
    assert int(trials.events_control.sum()) == 72 and int(trials.n_control.sum()) == 12277
    out = _fit_json(capsys, "--data", str(TEST_DATA / "rosiglitazone"),
                    "--prior", "weakly_informative")
    fit = out["priors"]["weakly_informative"]
    assert fit["direction"]["higher_is_better"] is False
    assert fit["diagnostics"]["divergences"] == 0
    assert len(fit["trials"]) == 42  # double-zero trials inform the baseline, kept


def test_report_on_bcg_names_no_paper(tmp_path):
    out = tmp_path / "rep"
    code = main(["report", "--data", str(TEST_DATA / "bcg"), "--output", str(out),
                 "--prior", "weakly_informative"])
    assert code in (0, 3)
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "BCG vaccine against tuberculosis" in index
    assert "lower risk of tuberculosis with BCG" in index
    assert not (out / "audit.html").exists()  # no reported.csv: no audit
    for page in out.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        for word in PAPER_WORDS:
            assert word not in text, f"{page.name}: {word}"
    assert (out / "ablat.html").is_file() and (out / "alloc.html").is_file()
    results = json.loads((out / "results.json").read_text())
    assert results["dataset"]["higher_is_better"] is False
    assert "ablat" in results["analyses"]["ablat"]["priors"]["weakly_informative"]["coefficients"]


def test_report_refuses_no_dataset(capsys):
    assert main(["report", "--output", "x"]) == 2
    assert "no dataset given: use --data" in capsys.readouterr().err


def test_shipped_dataset_loads_from_the_package():
    ds = load_dataset("ivig_rsa")
    assert ds.directory is not None and ds.directory.parent.name == "datasets"
    assert Path(rb.__file__).parent in ds.directory.parents


def test_audit_of_a_rare_event_meta_analysis_reproduces_the_published_peto_or(capsys):
    # Nissen & Wolski 2007 abstract: OR for myocardial infarction 1.43 (95% CI 1.03-1.98),
    # P = 0.03, 42 trials; the Peto method leaves out the 4 trials without any infarction.
    assert main(["audit", "--data", str(TEST_DATA / "rosiglitazone"), "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert {r["verdict"] for r in rows.values()} == {"reproduced"}
    assert "Peto OR 1.4283 (1.0309-1.9788), P = 0.032" in rows["mi_or"]["recomputed"]


def test_compare_on_bcg_states_the_direction(capsys):
    code = main(["compare", "--data", str(TEST_DATA / "bcg"), "--priors", "weakly_informative",
                 "skeptical", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["direction"]["higher_is_better"] is False
    p = [row["p_benefit"] for row in out["table"]]
    assert min(p) > 0.99  # both priors: BCG protects (metafor DL RR 0.49)


def test_an_enthusiastic_prior_expects_benefit_in_the_declared_direction():
    import math

    from rebayes.bayes.model import model_data
    from rebayes.bayes.priors import PRIOR_SETS

    enthusiastic = PRIOR_SETS["enthusiastic"]
    bcg = build_design(rb.AnalysisSpec("o", data=str(TEST_DATA / "bcg")))  # fewer is better
    ivig = build_design(rb.AnalysisSpec("o", data="ivig_rsa"))  # more is better
    assert float(model_data(bcg, enthusiastic)["d_mu"]) == pytest.approx(-math.log(1.5))
    assert float(model_data(ivig, enthusiastic)["d_mu"]) == pytest.approx(math.log(1.5))
    assert float(model_data(bcg, PRIOR_SETS["skeptical"])["d_mu"]) == 0.0


@pytest.mark.slow
@pytest.mark.parametrize("source", ["rosiglitazone", "Fleiss1993.rm5"])
def test_report_end_to_end_on_other_datasets(source, tmp_path, capsys):
    # A rare-event table (fewer infarctions is better, Peto OR published) and a RevMan file
    # imported into a folder: the full report, its audit, no word of the shipped paper.
    data = TEST_DATA / source
    if source.endswith(".rm5"):
        assert main(["import", str(data), str(tmp_path / "imported")]) == 0
        data = tmp_path / "imported" / "1.1"
    out = tmp_path / "rep"
    code = main(["report", "--data", str(data), "--output", str(out),
                 "--prior", "weakly_informative", "--allow-divergences"])
    assert code in (0, 3)
    audit_page = (out / "audit.html").read_text(encoding="utf-8")
    # Every figure RevMan (or the NEJM abstract) printed is reproduced: no "differs" verdict.
    assert 'class="reproduced"' in audit_page and 'class="differs"' not in audit_page
    for page in out.glob("*.html"):
        text = page.read_text(encoding="utf-8")
        for word in PAPER_WORDS:
            assert word not in text, f"{page.name}: {word}"


def test_init_without_a_direction_leaves_it_undeclared(tmp_path):
    init_dataset(TEST_DATA / "bcg.csv", tmp_path / "plain")
    text = (tmp_path / "plain" / "dataset.toml").read_text(encoding="utf-8")
    assert "# higher_is_better = true   # CHECK: uncomment" in text
    assert rb.load_trials(tmp_path / "plain").attrs["schema"].higher_is_better is None
    init_dataset(TEST_DATA / "bcg.csv", tmp_path / "lower", higher_is_better=False)
    assert rb.load_trials(tmp_path / "lower").attrs["schema"].higher_is_better is False
