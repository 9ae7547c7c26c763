"""The RevMan tables page follows the declared (or chosen) measure, method and model.

References (R 4.2, metafor 3.8.1, metadat 1.2.0):

- dat.hine1989 (tests/data/lidocaine; the review pooled risk differences):
  ``rma(measure="RD", ai=ai, n1i=n1i, ci=ci, n2i=n2i, data=dat.hine1989, method="FE")``:
  RD 0.029444 [0.003831, 0.055058], p 0.024252; ``method="DL"``: the same (tau2 = 0);
  ``rma.mh(measure="RD", ...)``: RD 0.028083 [0.001948, 0.054218], p 0.035197. The review's
  abstract: "risk difference, 0.029; 95% confidence interval, +0.004 to +0.055".
- dat.collins1985a (tests/data/h2_bleeding, bleeding, Peto's method):
  ``rma.peto(ai=b.xti, n1i=nti, ci=b.xci, n2i=nci, data=dat)`` (the 25 trials with counts):
  OR 0.885543 [0.728644, 1.076227], Q 37.907621, I2 39.3262%.
- dat.egger2001 (tests/data/magnesium, M-H odds ratio): ``rma.mh(measure="OR", ...,
  add=c(1/2,1/2), to=c("only0","only0"))``: OR 1.006090 [0.947990, 1.067751].
- dat.axfors2021 (tests/data/hcq, M-H OR, random effects): RevMan's M-H random odds ratio.
- dat.hartmannboyce2018, tablets or lozenges (tests/data/nrt_lozenge, abstinence, more is
  better): ``rma.mh(measure="RR", ...)``: RR 1.516362 [1.322595, 1.738518], I2 71.3055%.
"""

import pytest
from numpy.testing import assert_allclose

import rebayes as rb
from conftest import TEST_DATA, pipe_rows
from rebayes.frequentist.pooling import analyze
from rebayes.report.frequentist import (
    analyses_of,
    frequentist_markdown,
    frequentist_page,
    frequentist_tables,
)


def page(folder, **options):
    trials = rb.load_trials(TEST_DATA / folder)
    schema = trials.attrs["schema"]
    results = frequentist_tables({"published": trials}, analyses_of(schema), **options)
    return frequentist_markdown(results, schema), results


def test_a_risk_difference_is_a_difference():
    md, results = page("lidocaine")
    header, total = pipe_rows(md)[0], pipe_rows(md)[-1]
    assert header == ["", "k", "lidocaine", "control", "RD [95% CI] (per 1000)", "P", "I²"]
    assert total[:4] == ["Total", "6", "37/557", "21/549"]
    # Inverse variance, fixed effect: metafor's FE risk difference (see the module docstring).
    assert total[4] == "0.029 [0.004, 0.055] (29 more)"
    assert total[5] == "0.024"
    overall = results[0].analysis
    assert (overall.measure, overall.method, overall.model) == ("RD", "IV", "fixed")
    intro = md.split("\n")[2]
    assert intro.startswith("Inverse-variance risk differences (treated minus control risk; "
                            "0.01 is 10 more per 1000) of death, lidocaine vs control (RD > 0 "
                            "favours control); fixed effect, inverse-variance weights")
    assert "RR" not in md and "ratio" not in md
    res = analyze(rb.load_trials(TEST_DATA / "lidocaine")).overall
    assert_allclose((res.estimate, res.ci_low, res.ci_high, res.p),
                    (0.029444, 0.003831, 0.055058, 0.024252), atol=2e-6)


def test_options_change_the_measure_method_and_model():
    # M-H risk difference: metafor's rma.mh(measure="RD").
    md, results = page("lidocaine", method="MH")
    assert pipe_rows(md)[-1][4] == "0.028 [0.002, 0.054] (28 more)"
    assert md.split("\n")[2].startswith("Mantel-Haenszel risk differences")
    assert "Greenland-Robins variance" in md
    # Random effects (DL): metafor's rma(method="DL"), tau2 = 0 here.
    md, _ = page("lidocaine", model="random")
    assert pipe_rows(md)[0][-1] == "τ²" and pipe_rows(md)[-1][-1] == "0.000"
    assert "random effects (DerSimonian-Laird" in md
    # The same data as risk ratios: the column says RR.
    md, _ = page("lidocaine", measure="RR", method="MH")
    assert pipe_rows(md)[0][4] == "RR [95% CI]" and "RR > 1 favours control" in md


def test_peto_odds_ratio_is_named_and_fixed_effect():
    md, results = page("h2_bleeding")
    assert pipe_rows(md)[0][4] == "Peto OR [95% CI]"
    total = pipe_rows(md)[-1]
    # 24 estimable trials (Colecchia, 0/14 vs 0/14, is left out): their sums by hand from
    # trials.csv.
    assert total[1:5] == ["24", "254/1201", "272/1178", "0.89 [0.73, 1.08]"]
    assert total[6] == "39%"
    assert md.split("\n")[2].startswith(
        "Peto odds ratios of bleeding, H2 antagonist vs control (Peto OR > 1 favours control); "
        "fixed effect (Peto's method has no other)")
    assert "Not estimable (left out, as RevMan leaves them out): Colecchia." in md
    overall = analyze(rb.load_trials(TEST_DATA / "h2_bleeding")).overall
    assert_allclose((overall.estimate, overall.ci_low, overall.ci_high, overall.q, overall.i2),
                    (0.885543, 0.728644, 1.076227, 37.907621, 39.3262), rtol=2e-6)


def test_mh_odds_ratio_fixed_and_random():
    md, _ = page("magnesium")
    assert pipe_rows(md)[0][4] == "OR [95% CI]" and "τ²" not in pipe_rows(md)[0]
    assert pipe_rows(md)[-1][4] == "1.01 [0.95, 1.07]"
    assert "Robins-Breslow-Greenland variance" in md and "(OR > 1 favours control)" in md
    md, _ = page("hcq")
    assert pipe_rows(md)[0][-1] == "τ²"
    assert md.split("\n")[2].startswith(
        "Mantel-Haenszel odds ratios of death, hydroxychloroquine or chloroquine vs standard "
        "of care or placebo (OR > 1 favours standard of care or placebo); random effects")
    # ARCHAIC and ChiCTR2000030054 compared both drugs with one control arm: two rows each,
    # named apart.
    assert "ChiCTR2000030054, ChiCTR2000030054 #2" in md


def test_undeclared_direction_is_neutral_and_says_how_to_declare(write_csv):
    csv = write_csv((TEST_DATA / "bcg.csv").read_text(encoding="utf-8"))
    trials = rb.load_trials(csv)
    schema = trials.attrs["schema"]
    assert not schema.direction_declared
    results = frequentist_tables({"published": trials}, analyses_of(schema))
    md = frequentist_markdown(results, schema)
    html = frequentist_page(results, schema)
    for text in (md, html):
        assert "favours" not in text and "benefit" not in text.replace(
            "direction of benefit", "").replace("called benefit", "")
        assert "RR below 1: a lower risk of the event with treatment" in text
        assert "higher_is_better = true" in text


def test_ivig_page_keeps_its_published_words():
    trials = rb.load_trials("ivig_rsa")
    schema = trials.attrs["schema"]
    results = frequentist_tables({"published": trials}, analyses_of(schema))
    intro = frequentist_markdown(results, schema).split("\n")[2]
    assert intro == (
        "Mantel-Haenszel risk ratios of live birth, IVIG vs placebo (RR > 1 favours IVIG); "
        "fixed effect, Greenland-Robins variance, Q centred on the MH estimate, as RevMan 5 "
        "computes them. A trial's strata are summed unless the analysis splits by them."
    )


@pytest.mark.parametrize("folder", ["magnesium", "hcq", "lidocaine", "h2_bleeding"])
def test_cli_frequentist_title_is_the_datasets_title(folder, capsys):
    from rebayes.cli import main

    assert main(["frequentist", "--data", str(TEST_DATA / folder)]) == 0
    out = capsys.readouterr().out
    title = rb.load_trials(TEST_DATA / folder).attrs["schema"].title
    assert out.startswith(f"{title} (published): ")


def test_more_is_better_favours_the_treatment_on_the_right():
    md, _ = page("nrt_lozenge")
    assert pipe_rows(md)[-1][1:5] == ["8", "488/2326", "273/2113", "1.52 [1.32, 1.74]"]
    assert pipe_rows(md)[-1][6] == "71%"
    assert "(RR > 1 favours nicotine tablet or lozenge)" in md
    # Shiffman 2002 compared two doses: two rows, named by their doses, two trials.
    trials = rb.load_trials(TEST_DATA / "nrt_lozenge")
    assert analyze(trials).overall.k == 8
    direction = trials.attrs["schema"].direction
    assert direction.sentence() == (
        "Benefit means a higher risk of abstinence with nicotine tablet or lozenge than with "
        "control (RR > 1).")
    assert direction.favours == ("favours control", "favours nicotine tablet or lozenge")
