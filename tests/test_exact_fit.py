"""``rebayes fit --engine exact|auto``: NUTS's record, computed by quadrature.

References: IVIG's overall analysis under the default prior, P(d > 0) = 0.93645787 and
log p(y) = -60.4297211 from two independent integrations (tests/exact_reference.py, recorded in
test_exact.py); the normal-normal model integrated here by scipy's adaptive quadrature over
tau (mu given tau is normal, Röver 2020, section 2), independently of the engine's grids.
"""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from scipy import integrate, special, stats

from conftest import TEST_DATA
from rebayes.bayes.analyses import resolve_spec
from rebayes.bayes.design import build_design, prior_on_model_scale
from rebayes.bayes.exact_fit import exact_reach, exact_summary
from rebayes.bayes.priors import get_prior
from rebayes.bayes.spec import AnalysisSpec
from rebayes.cli import main

HCQ = TEST_DATA / "hcq"  # deaths, fewer is better; the drugs raised mortality


def _json(capsys, *argv):
    code = main(["fit", *argv, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_ivig_record_is_the_exact_integral(capsys):
    record = _json(capsys, "--data", "ivig_rsa", "--engine", "exact",
                   "--prior", "weakly_informative")
    assert record["engine"] == "exact" and record["seed"] is None
    r = record["priors"]["weakly_informative"]
    # Live births: higher is better, P(benefit) = P(RR > 1) = P(d > 0).
    assert r["p_benefit"] == pytest.approx(0.93645787, abs=2e-6)
    assert r["p_rr_lt_1"] == pytest.approx(1 - 0.93645787, abs=2e-6)
    assert r["log_marginal_likelihood"] == pytest.approx(-60.4297211, abs=2e-5)
    assert r["mcse"]["p_benefit"] == 0.0 and r["at_the_line"] == []
    assert r["diagnostics"] is None and r["reliable"] is True
    # The pooled OR's median is exp of d's (0.3070045, test_exact.py); the RR at p0 is its
    # image, expit(logit p0 + d) / p0, p0 = 53.5% (the median control risk of the 10 trials).
    p0 = r["control_risk"]["value"]
    assert r["pooled_or"]["median"] == pytest.approx(math.exp(0.3070045), abs=1e-5)
    assert r["pooled_rr"]["median"] == pytest.approx(
        special.expit(special.logit(p0) + 0.3070045) / p0, abs=1e-5)
    # RD = p0 (RR - 1), NNT = 1 / RD at the medians (Altman 1998).
    rd = r["nnt"]["risk_difference"]["median"]
    assert rd == pytest.approx(p0 * (r["pooled_rr"]["median"] - 1), abs=1e-6)
    assert r["nnt"]["nnt"] == pytest.approx(1 / rd) and r["nnt"]["kind"] == "benefit"
    # P(pooled OR > 1) is P(d > 0) again; the keys are those of the NUTS record.
    assert r["p_pooled_or_gt"]["1"] == pytest.approx(0.93645787, abs=2e-6)
    assert list(r["p_pooled_or_gt"]) == ["1", "1.25", "1.5", "2"] and r["coefficients"] == {}
    # Ten trials, each its shrunken odds ratio (the baselines are integrated out).
    assert len(r["trials"]) == 10 and all("or" in t for t in r["trials"].values())


def _normal_normal_p_positive(y, v, mu_sd, tau_scale):
    """P(mu > 0) with mu ~ N(0, mu_sd), tau ~ HalfNormal(tau_scale), y_i ~ N(mu, v_i + tau^2)."""

    def conditional(tau):
        w = 1 / (v + tau**2)
        precision = w.sum() + 1 / mu_sd**2
        mean = (w * y).sum() / precision
        # log p(y | tau) up to a constant, mu integrated out
        log_evidence = (0.5 * np.log(w).sum() - 0.5 * np.log(precision * mu_sd**2)
                        - 0.5 * ((w * y**2).sum() - precision * mean**2))
        return mean, 1 / math.sqrt(precision), log_evidence

    peak = max(conditional(t)[2] for t in np.linspace(0, 3, 301))

    def weight(tau):
        return math.exp(conditional(tau)[2] - peak) * stats.halfnorm.pdf(tau, scale=tau_scale)

    def prob(tau):
        mean, sd, _ = conditional(tau)
        return weight(tau) * stats.norm.sf(0, mean, sd)

    top = 12 * tau_scale
    total = integrate.quad(weight, 0, top, epsabs=0, epsrel=1e-11, limit=200)[0]
    return integrate.quad(prob, 0, top, epsabs=0, epsrel=1e-11, limit=200)[0] / total


def test_normal_approximation_of_a_harmful_treatment_matches_quadrature():
    spec = resolve_spec("normal_approximation", str(HCQ), None, False)
    design = build_design(spec)
    prior = get_prior("weakly_informative")
    s = exact_summary(design, prior)
    scaled = prior_on_model_scale(prior, design)
    p_positive = _normal_normal_p_positive(np.asarray(design.yi), np.asarray(design.vi),
                                           scaled.effect.sigma, scaled.tau.sigma)
    # Deaths: fewer is better, so benefit is RR < 1 and the evidence leans to harm.
    assert s.p_harm == pytest.approx(p_positive, abs=1e-5)
    assert s.p_benefit == pytest.approx(1 - p_positive, abs=1e-5)
    assert s.leans_to_harm
    text = str(s)
    assert "P(harm) = P(RR > 1)" in text
    assert text.index("P(harm)") < text.index("P(benefit)")  # harm first
    assert "Trial-specific (shrunken) RR" in text  # log RR: exp(theta) is the RR


def test_an_undeclared_direction_is_worded_neutrally(tmp_path, capsys):
    folder = tmp_path / "hcq"
    folder.mkdir()
    (folder / "trials.csv").write_bytes((HCQ / "trials.csv").read_bytes())
    record = _json(capsys, "--data", str(folder), "--engine", "exact",
                   "--prior", "weakly_informative")["priors"]["weakly_informative"]
    assert record["p_benefit"] is None and record["nnt"]["nnt"] is None
    assert record["p_rr_gt_1"] + record["p_rr_lt_1"] == pytest.approx(1, abs=1e-12)
    main(["fit", "--data", str(folder), "--engine", "exact", "--prior", "weakly_informative"])
    text = capsys.readouterr().out
    assert "P(RR < 1) = 0." in text and "direction of benefit is not declared" in text
    assert "P(benefit" not in text and "NNTB" not in text and "NNTH" not in text


def test_an_analysis_beyond_the_record_is_refused_or_left_to_nuts(capsys):
    # Four coefficients (latitude and a three-level allocation) are beyond the grid.
    four = build_design(AnalysisSpec(name="both", data=str(TEST_DATA / "bcg"),
                                     covariates=("ablat", "alloc"), effect="contrast"))
    assert "4 coefficients" in exact_reach(four, get_prior("vague"))
    # A trial whose strata differ in their covariates has no exact shrunken effect.
    spec = resolve_spec("rsa_type", "ivig_rsa", None, False)
    assert "the strata of Jablonowska 1999 differ" in exact_reach(build_design(spec),
                                                                  get_prior("vague"))
    code = main(["fit", "rsa_type", "--data", "ivig_rsa", "--engine", "exact"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "--engine exact: the strata of Jablonowska 1999 differ" in err


def test_a_fresh_process_answers_without_pymc():
    code = (
        "import sys\n"
        "from rebayes.cli import main\n"
        "code = main(['fit', '--data', 'ivig_rsa', '--engine', 'exact', '--json'])\n"
        "heavy = [m for m in ('pymc', 'pytensor', 'nutpie', 'arviz', 'xarray', 'matplotlib')\n"
        "         if m in sys.modules]\n"
        "print(code, heavy, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.stderr.strip().endswith("0 []"), done.stderr
    record = json.loads(done.stdout)
    assert set(record["priors"]) >= {"weakly_informative", "skeptical", "enthusiastic"}


@pytest.mark.slow
def test_nuts_agrees_with_the_exact_record_on_ivig():
    from rebayes.bayes.fit import fit

    spec = resolve_spec("overall", "ivig_rsa", None, False)
    nuts = fit(spec, "weakly_informative").summary()
    exact = exact_summary(build_design(spec), get_prior("weakly_informative"))
    assert abs(nuts.p_benefit - exact.p_benefit) < 3 * nuts.mcse["p_benefit"]
    assert nuts.pooled_rr.median == pytest.approx(exact.pooled_rr.median, rel=0.01)
    assert nuts.predictive_rr.ci_high == pytest.approx(exact.predictive_rr.ci_high, rel=0.03)


def test_auto_leaves_a_meta_regression_beyond_reach_to_nuts_and_says_so(capsys):
    code = main(["fit", "rsa_type", "--data", "ivig_rsa", "--engine", "auto",
                 "--prior", "vague", "--draws", "200", "--json"])
    out, err = capsys.readouterr()
    assert code == 0
    assert "--engine auto: NUTS answers (the strata of Jablonowska 1999" in err
    record = json.loads(out)
    assert record["engine"] == "nuts" and record["priors"]["vague"]["diagnostics"] is not None
