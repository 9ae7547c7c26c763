"""``rebayes fit`` and model scripts run directly: JSON layout, text, one-line errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import IVIG_ANALYSES, TEST_DATA
from rebayes.cli import main

ROOT = Path(__file__).resolve().parents[1]
# A copy of the script that declared the IVIG timing analysis before dataset.toml did.
SCRIPT = TEST_DATA / "shipped_scripts" / "ivig_rsa" / "timing.py"
ESTIMATE_KEYS = {"median", "mean", "ci_low", "ci_high"}


def ivig(name):
    """The command's words for one of the shipped IVIG analyses."""
    return [name, "--data", "ivig_rsa"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REBAYES_CACHE", str(tmp_path / "cache"))


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_fit_json_layout(capsys):
    code, out, _ = run(
        capsys,
        "fit",
        *ivig("timing"),
        "--prior",
        "skeptical",
        "--json",
    )
    assert code == 0
    payload = json.loads(out)
    assert payload["analysis"] == "timing" and payload["variant"] == "published"
    record = payload["priors"]["skeptical"]
    for key in ("pooled_rr", "pooled_or", "predictive_rr", "tau"):
        assert ESTIMATE_KEYS <= set(record[key]), key
    for key in ("p_benefit", "p_rr_gt_1_1", "p_rr_gt_1_25"):
        assert 0 <= record[key] <= 1
    assert record["p_rr_gt_1_25"] <= record["p_rr_gt_1_1"] <= record["p_benefit"]
    assert set(record["subgroups"]) == {"post_conception", "pre_conception"}
    assert set(record["subgroups"]["pre_conception"]) == {"rr", "p_benefit", "predictive_rr",
                                                          "p_benefit_beyond_1_1"}
    assert set(record["diagnostics"]) == {"ok", "rhat_max", "ess_bulk_min", "ess_tail_min",
                                          "divergences", "ebfmi_min", "failures"}
    assert "pre_conception vs post_conception" in record["subgroup_ratios"]


def test_fit_text_compares_priors(capsys):
    code, out, _ = run(
        capsys,
        "fit",
        *ivig("overall"),
        "--prior",
        "vague",
        "skeptical",
    )
    assert code == 0
    assert "Sensitivity to the prior (overall" in out
    assert "P(RR > 1) =" in out and "* at a control risk of 53.5%, the median of the 10" in out
    assert out.count("Pooled RR*") == 2


def test_variant_and_seed_reach_the_fit(capsys):
    code, out, _ = run(
        capsys,
        "fit",
        *ivig("normal_approximation"),
        "--prior",
        "weakly_informative",
        "--variant",
        "seed_fit",
        "--seed",
        "11",
        "--json",
    )
    assert code == 0
    payload = json.loads(out)
    assert (payload["variant"], payload["seed"]) == ("seed_fit", 11)
    assert payload["priors"]["weakly_informative"]["pooled_or"] is None  # log RR model


def test_user_prior_file(capsys, tmp_path):
    priors = tmp_path / "mine.toml"
    priors.write_text('[tight]\ntau = { family = "half_normal", sigma = 0.1 }\n', encoding="utf-8")
    code, out, _ = run(
        capsys,
        "fit",
        *ivig("overall"),
        "--prior-file",
        str(priors),
        "--prior",
        "tight",
        "--json",
    )
    assert code == 0
    record = json.loads(out)["priors"]["tight"]
    assert "HalfNormal(0.1)" in record["prior_summary"]
    assert record["tau"]["ci_high"] < 0.3  # 97.5% of HalfNormal(0.1) is below 0.23


@pytest.mark.parametrize(
    "argv, message",
    [
        (["fit", "models/nope.py"], "models/nope.py: no such model script"),
        (["fit", "{tests}/test_cli_fit.py"], "defines no SPEC"),
        (["fit", *ivig("overall"), "--prior", "flat"], "unknown prior set 'flat'"),
        (["fit", *ivig("overall"), "--variant", "nope"], "unknown variant 'nope'"),
        (
            ["fit", *ivig("overall"), "--prior-file", "none.toml"],
            "none.toml: no such prior file",
        ),
        (["fit", *ivig("overall"), "--seed", "-3"], "--seed -3 must be a non-negative"),
    ],
)
def test_user_errors_exit_2_with_one_line(capsys, argv, message):
    argv = [a.format(tests=ROOT / "tests") for a in argv]
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("rebayes fit: error: ")
    assert message in err


def test_model_script_help_runs_without_sampling():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "--prior" in result.stdout and "timing" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("analysis", IVIG_ANALYSES)
def test_every_ivig_analysis_under_every_prior_meets_the_targets(capsys, analysis):
    code, out, _ = run(capsys, "fit", *ivig(analysis), "--all-priors", "--json")
    assert code == 0
    priors = json.loads(out)["priors"]
    assert len(priors) == 7
    for name, record in priors.items():
        diag = record["diagnostics"]
        assert diag["divergences"] == 0, name
        assert diag["rhat_max"] < 1.01, name
        assert diag["ess_bulk_min"] >= 1000, name


@pytest.mark.slow
def test_model_script_runs_as_a_program(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(SCRIPT),
            "--data",
            "ivig_rsa",
            "--prior",
            "skeptical",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**__import__("os").environ, "REBAYES_CACHE": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert "skeptical" in json.loads(result.stdout)["priors"]
