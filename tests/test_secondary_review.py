"""The earlier review as a second shipped dataset (rows taken from ivig_rsa by reference).

References: the review's abstract (../shared/paper/001): seven placebo-controlled trials, 343
patients, secondary RM pooled OR 1.69 (0.72-3.96), not significant. The reconstructions the
issue states: MH OR 2.02 (0.72-5.64) from the published secondary strata of Stephenson 1998,
Jablonowska 1999 and Christiansen 2002; 2.64 (1.11-6.29) adding the assumed Christiansen 1995
split (SOURCES.md section 4). Counts summed by hand in the comments.
"""

import json

import pytest

import rebayes as rb
from rebayes.audit.paper import audit
from rebayes.cli import main
from rebayes.data.trials import DataError, load_dataset, variant_combinations
from rebayes.frequentist.pooling import analyze

NAME = "ivig_secondary_review"


def test_rows_are_the_ivig_tables_rows_by_reference():
    review = rb.load_trials(NAME)
    source = rb.load_trials("ivig_rsa")
    assert review["study"].nunique() == 7
    assert not (load_dataset(NAME).directory / "trials.csv").exists()  # no copied table
    same = source[source["study"].isin(review["study"])].reset_index(drop=True)
    assert review.reset_index(drop=True)[same.columns].equals(same)
    secondary = review[review["stratum"] == "secondary"]
    # 7/10 + 8/11 + 6/12 = 21/33 vs 6/11 + 7/10 + 3/13 = 16/34
    assert tuple(secondary[["events_treat", "n_treat", "events_control", "n_control"]].sum()) == (
        21, 33, 16, 34,
    )


@pytest.mark.parametrize(
    ("variant", "expected"),
    [("published", (2.02, 0.72, 5.64)), ("christiansen1995_assumed", (2.64, 1.11, 6.29))],
)
def test_secondary_or_reconstructions(variant, expected):
    trials = rb.load_trials(NAME, variant)
    total = analyze(trials, where={"stratum": "secondary"}, measure="OR").overall
    assert (round(total.estimate, 2), round(total.ci_low, 2), round(total.ci_high, 2)) == expected


def test_assumed_1995_split_never_composes_with_another_2002_split():
    names = variant_combinations(load_dataset(NAME))
    assert "christiansen1995_assumed" in names and "christiansen2002_7_14+seed_fit" in names
    assert not any(
        "christiansen1995_assumed" in n and "christiansen2002_" in n.replace(
            "christiansen1995_assumed_7_14", "").replace("christiansen1995_assumed_8_16", "")
        for n in names
    )


def test_audit_verdicts_and_reasons():
    rows = {r.id: r for r in audit(NAME)}
    assert rows["n_trials"].verdict == "reproduced"
    assert rows["n_patients"].verdict == "differs" and rows["n_patients"].recomputed == "318"
    secondary = rows["secondary_or"]
    assert secondary.verdict == "differs" and not secondary.variants_reproducing
    assert "OR 2.0214 (0.7248-5.6376)" in secondary.recomputed
    assert "ranges from OR 2.0214" in secondary.explanation
    assert "christiansen1995_assumed: OR 2.6394 (1.1070-6.2931)" in secondary.explanation
    assert "Coulam 1995 and Perino 1997 never published" in secondary.explanation
    significance = rows["secondary_significance"]
    assert significance.verdict == "reproduced"  # P = 0.179 with the published strata
    assert "christiansen1995_assumed" not in significance.variants_reproducing  # P = 0.029


def test_a_source_study_that_does_not_exist_is_one_line(tmp_path):
    (tmp_path / "dataset.toml").write_text(
        'strata = "stratum"\n[source]\ndataset = "ivig_rsa"\nstudies = ["Nobody 2001"]\n'
    )
    with pytest.raises(DataError, match=r"source: no study 'Nobody 2001' in ivig_rsa$"):
        rb.load_trials(tmp_path)


def test_bayesian_secondary_question(capsys):
    assert main(["fit", "secondary", "--data", NAME, "--prior", "weakly_informative",
                 "--json"]) == 0
    fit = json.loads(capsys.readouterr().out)["priors"]["weakly_informative"]
    p = fit["p_pooled_or_gt"]
    # Three small strata (67 women): the posterior favours benefit without settling it.
    assert 0.7 < p["1"] < 0.99 and p["1.5"] < p["1"]
    assert fit["pooled_or"]["ci_low"] < 1 < fit["pooled_or"]["ci_high"]
    assert len(fit["trials"]) == 3
