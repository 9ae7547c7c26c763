"""The model graph against independent computations, shared compilation, parameter recovery."""

import numpy as np
import pytest
import xarray as xr
from scipy import special, stats
from scipy.special import expit

from conftest import IVIG_ANALYSES, ivig_spec
from rebayes.bayes.design import build_design
from rebayes.bayes.fit import fit
from rebayes.bayes.model import (
    arm_risks,
    build_model,
    model_data,
    pointwise_log_likelihood,
    structure_key,
    unpad_posterior,
)
from rebayes.bayes.priors import (
    HalfCauchy,
    HalfNormal,
    InverseGamma,
    LogNormalTau2,
    Normal,
    StudentT,
    get_prior,
)
from rebayes.bayes.settings import SamplerSettings
from rebayes.bayes.spec import AnalysisSpec
from rebayes.bayes.trees import constant_data, observed_data


def test_all_analyses_share_one_compiled_structure_per_likelihood():
    keys = {}
    for spec in map(ivig_spec, IVIG_ANALYSES):
        for variant in ("published", "seed_fit", "seed_fit+itt"):
            keys.setdefault(spec.likelihood, set()).add(
                structure_key(build_design(spec, variant=variant))
            )
    assert {k: len(v) for k, v in keys.items()} == {"binomial": 1, "normal": 1}


def test_padding_adds_only_empty_rows_and_zero_columns():
    design = build_design(ivig_spec("timing"))
    data = model_data(design, get_prior("weakly_informative"))
    cap = structure_key(design)
    for arm in ("control", "treat"):
        assert data[f"n_{arm}"].shape == (cap.rows,) and cap.rows > design.n_rows
        assert (data[f"n_{arm}"][design.n_rows :] == 0).all()
    assert (data["X"][:, len(design.coefs) :] == 0).all()
    assert (data["X"][design.n_rows :] == 0).all()


def _random_point(model, rng):
    point = {}
    for var in model.value_vars:
        shape = model.initial_point()[var.name].shape
        point[var.name] = rng.normal(0, 0.7, shape)
    return point


@pytest.mark.parametrize(
    "analysis", ["timing_within_type", "placebo", "normal_approximation"]
)
def test_numpy_log_likelihood_equals_the_models_up_to_its_constant(analysis):
    """The numpy companions (the saved log_likelihood) against the graph the sampler runs.

    The graph's likelihood potentials leave out the terms no parameter enters (the binomial
    coefficients; the normal's -log(sigma) - log(2 pi) / 2): at random points the two must
    differ by exactly those, computed here with scipy from the data alone.
    """
    design = build_design(ivig_spec(analysis))
    prior = get_prior("weakly_informative")
    model = build_model(design, prior)
    likelihood = [p for p in model.potentials if not p.name.endswith("_prior")]
    assert {p.name for p in likelihood} == (
        {"events_control", "events_treat"} if design.likelihood == "binomial" else {"log_rr"}
    )
    import pytensor

    outputs = model.replace_rvs_by_values([sum(likelihood), *model.deterministics])
    function = pytensor.function(model.value_vars, outputs, on_unused_input="ignore")
    if design.likelihood == "binomial":
        k, n = design.events, design.n
        constant = (special.gammaln(n + 1) - special.gammaln(k + 1)
                    - special.gammaln(n - k + 1)).sum()
    else:
        constant = stats.norm.logpdf(0.0, scale=np.sqrt(design.vi)).sum()
    rng = np.random.default_rng(3)
    for _ in range(3):
        point = _random_point(model, rng)
        value, *deterministics = function(*(point[v.name] for v in model.value_vars))
        # Deterministics (the normal model's z) as the sampler records them.
        point = {**point, **{v.name: x for v, x in zip(model.deterministics, deterministics,
                                                        strict=True)}}
        # The same point as a one-draw posterior, padding stripped.
        padded = xr.Dataset(
            {
                name.removesuffix("_log__"): (
                    ("chain", "draw",
                     *model.named_vars_to_dims.get(name.removesuffix("_log__"), ())),
                    (np.exp(v) if name.endswith("_log__") else v)[None, None],
                )
                for name, v in point.items()
            }
        )
        draws = unpad_posterior(padded, design)
        ours = pointwise_log_likelihood(draws, constant_data(design), observed_data(design))
        total = float(next(iter(ours.data_vars.values())).values[0, 0].sum())
        # Padded rows enter neither: no women, or a masked normal row with y = 0.
        assert float(value) == pytest.approx(total - constant, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize(
    "tau_prior", [HalfNormal(0.5), HalfCauchy(0.5), LogNormalTau2(-3.52, 1.74), HalfNormal(5.0),
                  InverseGamma(1.77, 0.55)]
)
def test_one_graph_gives_each_tau_family_its_scipy_density(tau_prior):
    """The one-hot potential reproduces each family's density (scipy as the reference)."""
    design = build_design(ivig_spec("overall"))
    base = get_prior("weakly_informative")
    model = build_model(design, base)
    import pymc as pm

    prior = type(base)(**{**base.__dict__, "tau": tau_prior})
    with model:
        pm.set_data({k: v for k, v in model_data(design, prior).items() if k.startswith("tau_")})
    potential = model.compile_logp(vars=[model["tau_prior"]], jacobian=False)
    point = model.initial_point()
    for tau in (0.01, 0.17, 0.6, 2.5):
        point["tau_log__"] = np.log(tau)
        assert float(potential(point)) == pytest.approx(tau_prior.frozen().logpdf(tau), rel=1e-7)


@pytest.mark.parametrize("effect", [Normal(0.0, 1.0), StudentT(0.0, 0.58, 4.0),
                                    StudentT(0.3, 0.2, 2.5)])
def test_one_graph_gives_each_effect_family_its_scipy_density(effect):
    """d's normal prior plus the effect potential is the selected family's density."""
    design = build_design(ivig_spec("overall"))
    base = get_prior("weakly_informative")
    model = build_model(design, base)
    import pymc as pm

    prior = type(base)(**{**base.__dict__, "effect": effect})
    with model:
        pm.set_data({k: v for k, v in model_data(design, prior).items()
                     if k.startswith(("d_", "effect_"))})
    density = model.compile_logp(vars=[model["d"], model["effect_prior"]], jacobian=False)
    point = model.initial_point()
    for d in ([0.0, 0.1, -0.2, 0.4], [1.5, -2.0, 0.05, 3.0]):
        point["d"] = np.array(d)
        # Every (padded) group's d carries the prior; the dataset declares more is better,
        # so the mean keeps its sign.
        assert float(density(point)) == pytest.approx(effect.frozen().logpdf(d).sum(),
                                                      rel=1e-9)


def test_parameter_recovery_with_large_trials(write_csv):
    """Simulated trials with 2000 women per arm: the posterior covers the true values."""
    rng = np.random.default_rng(2024)
    truth = {"d": 0.4, "beta": -0.3, "tau": 0.15}
    lines = ["study,events_treat,n_treat,events_control,n_control,timing"]
    z = rng.standard_normal(12)
    for i in range(12):
        pre = i % 2
        alpha = rng.normal(0.2, 0.4)
        theta = truth["d"] + truth["beta"] * pre + truth["tau"] * z[i]
        n = 2000
        et = rng.binomial(n, expit(alpha + theta))
        ec = rng.binomial(n, expit(alpha))
        timing = "pre_conception" if pre else "post_conception"
        lines.append(f"T{i},{et},{n},{ec},{n},{timing}")
    path = write_csv("\n".join(lines) + "\n")
    spec = AnalysisSpec(
        "recovery", data=str(path), effect="contrast", covariates="timing", subgroup="timing"
    )
    result = fit(spec, "vague", cache=False, settings=SamplerSettings(min_ess=0))
    post = result.tree["posterior"]
    for name, value in truth.items():
        draws = post[name].values.ravel()
        lo, hi = np.quantile(draws, [0.005, 0.995])
        assert lo < value < hi, (name, lo, hi)
    # Large trials pin d and beta down: posterior SDs well below the prior's 10 and 1.
    assert float(post["d"].std()) < 0.1
    assert float(post["beta"].std()) < 0.15
    # Each trial's control risk is recovered too.
    ctrl = result.design.events[:, 0] / result.design.n[:, 0]
    risks = arm_risks(post.to_dataset(), result.tree["constant_data"].to_dataset())
    np.testing.assert_allclose(risks.sel(arm="control").mean(("chain", "draw")), ctrl, atol=0.01)


def test_log_prior_is_the_prior_density():
    design = build_design(ivig_spec("timing"))
    prior = get_prior("turner_obstetric")
    draws = xr.Dataset(
        {
            "d": (("chain", "draw"), [[0.1, -0.2]]),
            "beta": (("chain", "draw", "coef"), [[[0.3], [0.0]]]),
            "tau": (("chain", "draw"), [[0.2, 0.05]]),
            "z": (("chain", "draw", "study"), np.zeros((1, 2, len(design.studies)))),
            "alpha": (("chain", "draw", "row"), np.zeros((1, 2, design.n_rows))),
        }
    )
    from rebayes.bayes.model import log_prior

    lp = log_prior(draws, prior)
    assert set(lp.data_vars) == {"d", "beta", "tau", "alpha"}  # z is structure, not prior
    np.testing.assert_allclose(lp["d"], stats.norm(0, 1).logpdf([[0.1, -0.2]]))
    tau2 = stats.lognorm(s=1.74, scale=np.exp(-3.52))
    # Density of tau = density of tau^2 times |d tau^2 / d tau| = 2 tau.
    expected = tau2.logpdf(np.array([[0.2, 0.05]]) ** 2) + np.log(2 * np.array([[0.2, 0.05]]))
    np.testing.assert_allclose(lp["tau"], expected)
