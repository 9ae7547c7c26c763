"""Comparison across priors and variants: Bayes factors against the conjugate normal model,
power-scaling on known cases, flip sentences on hand-made tables, the CLI's exit codes and JSON."""

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy import stats

from conftest import ivig_spec, pipe_rows
from rebayes.bayes.settings import SamplerSettings
from rebayes.cli import main
from rebayes.data.direction import Direction
from rebayes.errors import RebayesError
from rebayes.sensitivity.comparison import Comparison, compare_posteriors
from rebayes.sensitivity.conclusions import Rule, assess, default_rules, find_flips
from rebayes.sensitivity.psense import prior_sensitivity

QUICK = SamplerSettings(draws=300, tune=300, chains=2, min_ess=0)
OVERALL = ["overall", "--data", "ivig_rsa"]  # the command's words for the IVIG overall analysis


# --- Savage-Dickey: the conjugate checks are in test_bayes_factor.py ----------------------


# --- power-scaling sensitivity --------------------------------------------------------------


def psense_tree(prior_sd, seed=0):
    """20 observations y ~ N(d, 1) with mean 1 and d ~ N(0, prior_sd), exact posterior draws."""
    rng = np.random.default_rng(seed)
    y = rng.normal(1.0, 1.0, 20)
    y = y - y.mean() + 1.0
    precision = 1 / prior_sd**2 + len(y)
    d = rng.normal(y.sum() / precision, precision**-0.5, (4, 1000))
    return xr.DataTree.from_dict(
        {
            "posterior": xr.Dataset({"d": (("chain", "draw"), d)}),
            "log_prior": xr.Dataset({"d": (("chain", "draw"), stats.norm.logpdf(d, 0, prior_sd))}),
            "log_likelihood": xr.Dataset(
                {"y": (("chain", "draw", "obs"), stats.norm.logpdf(y, d[..., None], 1.0))}
            ),
        }
    )


def test_psense_flags_a_dominant_prior_and_not_a_vague_one():
    # Prior sd 0.05 vs likelihood sd 1/sqrt(20) = 0.22: the prior decides the posterior.
    strong = prior_sensitivity(psense_tree(0.05))
    assert strong.table.loc["d", "prior"] > 0.05
    assert strong.prior_sensitive == ("d",)
    assert "prior" in strong.sentence()
    vague = prior_sensitivity(psense_tree(100.0))
    assert vague.table.loc["d", "prior"] < 0.01 < 0.05 < vague.table.loc["d", "likelihood"]
    assert vague.prior_sensitive == () and "No quantity is prior-sensitive" in vague.sentence()
    json.dumps(vague.to_dict(), allow_nan=False)


# --- flips on hand-made tables -----------------------------------------------------------------

P_BENEFIT = Rule("P(benefit) > 0.95", "p_benefit", 0.95)
HIGHER = Direction(higher_is_better=True)


def table(rows, columns=("prior", "variant", "p_benefit")):
    return pd.DataFrame(rows, columns=list(columns))


def test_flip_sentence_names_where_it_holds_and_where_not():
    t = table([("weakly_informative", "published", 0.961), ("skeptical", "published", 0.93)])
    assert find_flips(t, [P_BENEFIT]) == (
        "P(benefit) > 0.95 under weakly_informative (0.961) but not under skeptical (0.930).",
    )


def test_no_flip_gives_a_stable_sentence():
    t = table([("a", "published", 0.96), ("b", "published", 0.99)])
    assert find_flips(t, [P_BENEFIT]) == ()
    (conclusion,) = assess(t, [P_BENEFIT])
    assert conclusion.sentence() == "P(benefit) > 0.95 under every prior (0.960 to 0.990)."
    t = table([("a", "published", 0.90), ("b", "published", 0.91)])
    assert assess(t, [P_BENEFIT])[0].sentence().startswith("P(benefit) > 0.95 under no prior")


def test_flip_driven_by_the_data_variant():
    t = table([("a", "published", 0.94), ("b", "published", 0.93),
               ("a", "seed_fit", 0.97), ("b", "seed_fit", 0.96)])
    assert find_flips(t, [P_BENEFIT]) == (
        "P(benefit) > 0.95 with the seed_fit (0.960 to 0.970) data but not with the published "
        "(0.930 to 0.940) data, whichever the prior.",
    )


def test_flip_driven_by_the_prior_across_variants():
    t = table([("a", "published", 0.97), ("b", "published", 0.93),
               ("a", "seed_fit", 0.97), ("b", "seed_fit", 0.92)])
    assert find_flips(t, [P_BENEFIT]) == (
        "P(benefit) > 0.95 under a (0.970) but not under b (0.920 to 0.930), whichever the data "
        "variant.",
    )


def test_flip_driven_by_both_names_each_row():
    t = table([("a", "published", 0.97), ("b", "published", 0.93),
               ("a", "seed_fit", 0.94), ("b", "seed_fit", 0.96)])
    (sentence,) = find_flips(t, [P_BENEFIT])
    assert sentence == (
        "P(benefit) > 0.95 under a (published data) (0.970), b (seed_fit data) (0.960) but not "
        "under b (published data) (0.930), a (seed_fit data) (0.940)."
    )


def test_values_within_monte_carlo_error_are_called_out():
    rule = Rule("P(benefit) > 0.95", "p_benefit", 0.95, "p_benefit_mcse")
    t = pd.DataFrame({"prior": ["a", "b"], "variant": ["v", "v"], "p_benefit": [0.952, 0.99],
                      "p_benefit_mcse": [0.003, 0.001]})
    assert assess(t, [rule])[0].sentence() == (
        "P(benefit) > 0.95 under every prior (0.952 to 0.990; a at the line: within 2 MCSE of "
        "0.95)."
    )
    t.loc[1, "p_benefit"] = 0.94
    assert ("a (0.952, at the line: within 2 MCSE of 0.95) but not under b (0.940)"
            in find_flips(t, [rule])[0])


def test_missing_values_do_not_count_as_flips():
    t = table([("a", "v", 0.97), ("b", "v", float("nan"))])
    assert find_flips(t, [P_BENEFIT]) == ()


def test_default_rules_follow_the_columns():
    t = pd.DataFrame({"prior": ["a"], "variant": ["v"], "p_benefit": [0.9],
                      "p_ratio_gt_1[pre vs post]": [0.97]})
    labels = [r.label for r in default_rules(t, HIGHER)]
    assert labels == ["P(benefit) > 0.95", "P(RR ratio pre vs post > 1) > 0.95"]
    # With no direction declared the rule names its side literally.
    assert [r.label for r in default_rules(t)][0] == "P(RR < 1) > 0.95"


def test_meta_regression_is_judged_by_its_subgroups_not_its_row_average():
    t = pd.DataFrame({"prior": ["a", "b"], "variant": ["v", "v"], "p_benefit": [0.96, 0.97],
                      "rr_low": [1.01, 1.02], "bf01_d": [0.5, 0.6],
                      "p_subgroup_benefit[pre]": [0.97, 0.93],
                      "p_subgroup_benefit[post]": [0.80, 0.81],
                      "p_ratio_gt_1[pre vs post]": [0.89, 0.90]})
    labels = [r.label for r in default_rules(t, HIGHER)]
    assert labels == ["P(benefit in pre) > 0.95", "P(benefit in post) > 0.95",
                      "P(RR ratio pre vs post > 1) > 0.95"]
    # The row average holds in both rows; the flip is the subgroup's.
    assert find_flips(t, default_rules(t, HIGHER)) == (
        "P(benefit in pre) > 0.95 under a (0.970) but not under b (0.930).",)


# --- the real analysis, sampled briefly ------------------------------------------------------


@pytest.fixture(scope="module")
def comparison():
    spec = ivig_spec("overall")
    return compare_posteriors(
        spec, ["weakly_informative", "vague"], ["published", "seed_fit"], settings=QUICK
    )


def test_comparison_rows_are_prior_by_variant(comparison):
    assert isinstance(comparison, Comparison)
    t = comparison.table
    assert list(zip(t["prior"], t["variant"], strict=True)) == [
        ("weakly_informative", "published"), ("vague", "published"),
        ("weakly_informative", "seed_fit"), ("vague", "seed_fit"),
    ]
    for column in ("rr_median", "rr_low", "rr_high", "p_benefit", "p_rr_gt_1_1", "tau_median",
                   "pred_low", "pred_high", "bf01_d", "bf01_d_mcse", "bf01_d_low",
                   "bf01_d_high", "diagnostics_ok"):
        assert column in t
    assert "bf10_d" not in t  # one direction, BF01, in every table
    assert (t["bf01_d_low"] <= t["bf01_d"]).all() and (t["bf01_d"] <= t["bf01_d_high"]).all()
    assert (t["rr_low"] < t["rr_median"]).all() and (t["rr_median"] < t["rr_high"]).all()
    # The predictive interval for a new trial is wider than the pooled interval.
    assert (t["pred_low"] < t["rr_low"]).all() and (t["pred_high"] > t["rr_high"]).all()
    assert set(comparison.psense) == set(comparison.bayes_factor) == {
        (p, v) for p in ("weakly_informative", "vague") for v in ("published", "seed_fit")
    }


def test_vaguer_prior_gives_larger_bf01(comparison):
    # Lindley: with similar posteriors, the N(0, 10) prior has 10x less density at d = 0 than
    # N(0, 1), so BF01 = posterior / prior density at 0 is about 10x larger.
    t = comparison.table.set_index(["prior", "variant"])
    for variant in ("published", "seed_fit"):
        ratio = t.loc[("vague", variant), "bf01_d"] / t.loc[("weakly_informative", variant),
                                                           "bf01_d"]
        assert 4 < ratio < 25


def test_comparison_outputs(comparison):
    record = json.loads(json.dumps(comparison.to_dict(), allow_nan=False))
    assert {"table", "flips", "stable", "conclusions", "fits", "diagnostics_ok"} <= set(record)
    assert len(record["table"]) == len(record["fits"]) == 4
    assert all(isinstance(s, str) for s in (*comparison.flips, *comparison.stable))
    assert len(comparison.flips) + len(comparison.stable) == len(comparison.conclusions)
    text = str(comparison)
    assert "pooled RR (95% CrI)" in text and "vague" in text
    md = comparison.to_markdown()
    header, *rows = pipe_rows(md.split("\n\n")[0])
    assert header[:3] == ["prior", "variant", "pooled RR (95% CrI)"] and len(rows) == 4
    assert {r[0] for r in rows} == {"weakly_informative", "vague"}
    assert md.startswith("| prior") and "Savage-Dickey" in md


def test_compare_user_errors():
    spec = ivig_spec("overall")
    with pytest.raises(RebayesError, match="unknown prior set"):
        compare_posteriors(spec, ["no_such_prior"], settings=QUICK)
    with pytest.raises(RebayesError, match="variant"):
        compare_posteriors(spec, ["vague"], ["no_such_variant"], settings=QUICK)
    with pytest.raises(RebayesError, match="no data variant"):
        compare_posteriors(spec, ["vague"], [], settings=QUICK)


# --- CLI ---------------------------------------------------------------------------------------


@pytest.fixture
def quick_cli(monkeypatch):
    """`rebayes compare` with a short sampler (2 chains, 300 tuning steps, no extension)."""
    import rebayes.bayes.settings

    monkeypatch.setattr(
        rebayes.bayes.settings,
        "SamplerSettings",
        lambda draws: SamplerSettings(draws=draws, tune=300, chains=2, min_ess=0),
    )


def test_cli_json_layout_and_figures(quick_cli, capsys, tmp_path):
    out = tmp_path / "figs"
    code = main(["compare", *OVERALL, "--priors", "weakly_informative", "skeptical",
                 "--draws", "300", "--json", "--output", str(out), "--engine", "nuts"])
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    assert record["analysis"] == "overall"
    assert record["priors"] == ["weakly_informative", "skeptical"]
    assert record["variants"] == ["published"]
    assert [r["prior"] for r in record["table"]] == ["weakly_informative", "skeptical"]
    assert {"rr_median", "p_benefit", "tau_median", "pred_low", "bf01_d"} <= set(record["table"][0])
    fit = record["fits"][0]
    assert {"summary", "diagnostics", "psense", "bayes_factors"} <= set(fit)
    assert set(fit["diagnostics"]["gates"]) == {"rhat", "ess_bulk", "ess_tail", "divergences",
                                                "ebfmi"}
    assert sorted(p.name for p in out.iterdir()) == ["overall_posteriors.png",
                                                     "overall_sensitivity.png"]
    assert record["figures"] == [str(out / "overall_posteriors.png"),
                                 str(out / "overall_sensitivity.png")]
    for path in out.iterdir():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_compare_by_the_exact_engine(capsys):
    """``compare`` answers by quadrature where it can (auto, the default): IVIG's overall
    P(benefit) is the exact 0.93645787 (two independent integrations, test_exact.py), its BF01
    carries no Monte Carlo interval and the table says which engine answered."""
    code = main(["compare", *OVERALL, "--priors", "weakly_informative", "--json"])
    assert code == 0
    record = json.loads(capsys.readouterr().out)
    row = record["table"][0]
    assert row["p_benefit"] == pytest.approx(0.93645787, abs=2e-6)
    assert row["bf01_d_low"] == row["bf01_d"] == row["bf01_d_high"]
    fit = record["fits"][0]
    assert fit["summary"]["engine"] == "exact" and fit["diagnostics"]["engine"] == "exact"
    assert [bf["engine"] for bf in fit["bayes_factors"]] == ["exact"]
    assert main(["compare", *OVERALL, "--priors", "weakly_informative"]) == 0
    table = capsys.readouterr().out
    row = next(line for line in table.splitlines() if line.startswith("weakly_informative"))
    assert "0.936" in row and row.rstrip().endswith("exact")


def test_cli_strict_exits_3_when_a_gate_fails(quick_cli, capsys):
    # 2 chains x 40 draws cannot reach ESS 400.
    argv = ["compare", *OVERALL, "--priors", "vague", "--draws", "40", "--engine", "nuts"]
    assert main(argv) == 0
    capsys.readouterr()
    assert main([*argv, "--strict"]) == 3
    err = capsys.readouterr().err
    assert "diagnostic check failed" in err and "ESS" in err


@pytest.mark.parametrize(
    "argv,message",
    [
        (["compare", "models/nothing.py"], "no such model script"),
        (["compare", *OVERALL, "--priors", "nope"], "unknown prior set"),
        (["compare", *OVERALL, "--seed", "-1"], "--seed"),
    ],
)
def test_cli_user_errors_exit_2_with_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_output_must_be_a_directory(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["compare", *OVERALL, "--output", str(blocker)]) == 2
    err = capsys.readouterr().err
    assert err == f"rebayes compare: error: output {blocker} is not a directory\n"
    blocked = blocker / "figures"  # a folder that cannot be made: the file is named
    assert main(["compare", *OVERALL, "--output", str(blocked)]) == 2
    assert capsys.readouterr().err == (
        f"rebayes compare: error: cannot write output {blocked}: {blocker} is not a directory\n"
    )
