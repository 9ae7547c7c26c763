"""The one random-effects model, as a PyMC graph and as its numpy companions.

For row s (a study, or a study x stratum) of a :class:`~rebayes.bayes.design.Design`::

    theta[s] = mu[s] + tau * z[study(s)],         z ~ Normal(0, 1)   (non-centred)
    mu[s]    = d[group(s)] + X[s] @ beta          (d scalar unless effect="separate")

    binomial:  events_control[s] ~ Binomial(n_control[s], logit^-1(alpha[s] - theta[s] / 2))
               events_treat[s]   ~ Binomial(n_treat[s],   logit^-1(alpha[s] + theta[s] / 2))
    normal:    log_rr[s] ~ Normal(theta[s], sqrt(vi[s]))     (bayesmeta's normal-normal model)

so the random effect is per trial and shared by its strata. The columns of ``X`` are centred at
their means over the analysed rows (:mod:`rebayes.bayes.design`), so ``d`` and its prior are the
average effect, not the effect at covariate values of 0 or at a reference level.

The arms are coded -1/2 and +1/2 (:func:`arm_log_odds`), not 0 and 1: ``alpha[s]`` is the
mean of the two arms' log odds, and swapping the arms' labels turns the posterior of the log
OR into its mirror image. With the 0/1 coding the control arm carries the baseline alone, so
the baseline prior pulls only the control risk towards 1/2, which with rare events makes the
arm called "treatment" look better whichever arm it is (seen on a review with 8/660 vs
1/660 events gave a pooled OR of 0.61 either way round). The +-1/2 coding is the one Jackson
et al. compare (Jackson D, Law M, Stijnen T, Viechtbauer W, White IR. A comparison of seven
random-effects models for meta-analyses that estimate the summary odds ratio. Stat Med
2018;37:1059-85; after Turner RM et al. 2000, Stat Med 19:3417-32), and the one that makes
the model symmetric in the arms.

The baseline prior ``alpha ~ N(0, 2)`` (:class:`rebayes.bayes.priors.PriorSet`) is kept: on the
mean log odds of the two arms it puts 95% of the average arm risk in 0.02-0.98. Below about 2%
it pulls both arms' risks up by the same amount on the log-odds scale, which leaves the log OR
unbiased in direction (it can only shrink it slightly towards 0 when an arm has no events).

For the normal likelihood, a trial whose data pin its effect down more tightly than the
expected heterogeneity gets a centred random effect (:func:`centred_studies`), the
standard remedy for the divergences of non-centred effects under very informative data
(Betancourt M, Girolami M. Hamiltonian Monte Carlo for hierarchical models. 2015; Papaspiliopoulos
O, Roberts GO, Skold M. Stat Sci 2007;22:59-73). The choice depends only on the data and the
prior, so a seed still gives the same draws, and ``z`` is reported as the standardised effect
in both forms.

Compile once, sample many times. Compiling the graph with numba takes ~3 s on this
project's 2-core machine (8 s the first time on a machine; once per structure and machine:
:mod:`rebayes.bayes.compilation` keeps it on disk); sampling it takes ~0.2 s. So:

- every data array and every prior hyperparameter enters as ``pm.Data``: one compiled model
  serves every prior set and every data variant (nutpie's ``with_data``);
- the four heterogeneity families (half-normal, half-Cauchy, log-normal on tau^2, inverse
  gamma on tau) share one graph: tau has a flat prior on (0, inf) plus a potential equal to
  the selected family's log density, picked by a one-hot ``tau_family`` vector;
- the two effect families (normal, Student-t) share it too: ``d`` keeps its normal prior and a
  potential adds ``t - normal`` log density times the one-hot ``effect_family``'s Student-t
  entry, which is exactly zero under the normal family, so a normal prior's fits are what they
  were;
- parameter vectors are padded to multiples of 16 rows/studies and 4 coefficients
  (:func:`structure_key`): padded rows hold no participants, padded design columns are zero, so
  padded parameters only carry their prior and are dropped from the output
  (:func:`unpad_posterior`). Every analysis of a small meta-analysis then shares one
  compilation per likelihood, instead of one per analysis and tau family.

The numpy functions at the end (:func:`linear_predictor`, :func:`pointwise_log_likelihood`,
...) evaluate the same formulas on posterior or prior draws, so a fit's derived groups need no
further compilation; tests check them against PyMC's own log density.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import xarray as xr
from scipy import special, stats

from rebayes.bayes.design import ARMS, Design
from rebayes.bayes.priors import (
    EffectPrior,
    HalfCauchy,
    HalfNormal,
    InverseGamma,
    LogNormalTau2,
    Normal,
    PriorSet,
    StudentT,
    TauPrior,
)

if TYPE_CHECKING:
    import pymc as pm

__all__ = [
    "arm_log_odds",
    "arm_risks",
    "build_model",
    "centred_studies",
    "linear_predictor",
    "log_prior",
    "model_data",
    "pointwise_log_likelihood",
    "predictive_draws",
    "prior_draws",
    "structure_key",
    "unpad_posterior",
]

# Order of the families in the one-hot ``tau_family`` and ``effect_family`` data vectors.
TAU_FAMILY_ORDER: tuple[type, ...] = (HalfNormal, HalfCauchy, LogNormalTau2, InverseGamma)
EFFECT_FAMILY_ORDER: tuple[type, ...] = (Normal, StudentT)


# Parameter vectors are padded to these multiples so that every analysis of a small
# meta-analysis shares one compiled graph per likelihood (see the module docstring).
ROW_STEP = 16
STUDY_STEP = 16
COEF_STEP = 4


def _capacity(n: int, step: int) -> int:
    return step * max(1, math.ceil(n / step))


@dataclass(frozen=True)
class Capacity:
    """Padded sizes of the graph's parameter vectors; equal capacities share a compilation."""

    likelihood: str
    rows: int
    studies: int
    groups: int
    coefs: int


def structure_key(design: Design) -> Capacity:
    """Return the padded shape that fixes the compiled graph for this design.

    Two designs with the same key share a compiled model; only ``pm.Data`` values differ.
    """
    return Capacity(
        likelihood=design.likelihood,
        rows=_capacity(design.n_rows, ROW_STEP),
        studies=_capacity(len(design.studies), STUDY_STEP),
        groups=_capacity(max(1, len(design.groups)), COEF_STEP),
        coefs=_capacity(len(design.coefs), COEF_STEP),
    )


def _pad(values: np.ndarray, size: int, fill: float | int = 0) -> np.ndarray:
    """Append ``fill`` along the first axis up to ``size``."""
    extra = size - values.shape[0]
    return np.concatenate([values, np.full((extra, *values.shape[1:]), fill, values.dtype)])


def _tau_data(tau: TauPrior) -> tuple[np.ndarray, np.ndarray]:
    """One-hot family vector and ``[scale, lognormal mu, lognormal sigma, shape, IG scale]``."""
    family = np.zeros(len(TAU_FAMILY_ORDER))
    family[TAU_FAMILY_ORDER.index(type(tau))] = 1.0
    # Unused entries keep harmless values so every family's log density stays finite.
    if isinstance(tau, HalfNormal):
        params = [tau.sigma, 0.0, 1.0, 1.0, 1.0]
    elif isinstance(tau, HalfCauchy):
        params = [tau.scale, 0.0, 1.0, 1.0, 1.0]
    elif isinstance(tau, LogNormalTau2):
        params = [1.0, tau.mu, tau.sigma, 1.0, 1.0]
    else:
        params = [1.0, 0.0, 1.0, tau.shape, tau.scale]
    return family, np.asarray(params, dtype=float)


def _effect_data(effect: EffectPrior) -> tuple[np.ndarray, np.ndarray]:
    """One-hot effect family vector and the Student-t degrees of freedom (1 when unused)."""
    family = np.zeros(len(EFFECT_FAMILY_ORDER))
    family[EFFECT_FAMILY_ORDER.index(type(effect))] = 1.0
    nu = effect.nu if isinstance(effect, StudentT) else 1.0
    return family, np.asarray(nu, dtype=float)


#: A trial's random effect is centred when its data's standard error is below this share of
#: the expected heterogeneity (normal likelihood; see :func:`centred_studies`).
CENTRED_SE_SHARE = 0.5


def tau_prior_scale(tau: TauPrior) -> float:
    """Return the heterogeneity prior's scale: sigma, the Cauchy scale, or tau's median.

    Log-normal and inverse-gamma priors give their median of tau.
    """
    if isinstance(tau, HalfNormal):
        return float(tau.sigma)
    if isinstance(tau, HalfCauchy):
        return float(tau.scale)
    if isinstance(tau, InverseGamma):
        # 1 / tau ~ Gamma(shape, rate = scale): median tau = scale / (Gamma's median).
        return float(tau.scale / special.gammaincinv(tau.shape, 0.5))
    return float(math.exp(tau.mu / 2))  # tau^2 ~ LogNormal(mu, s): median tau = exp(mu / 2)


def heterogeneity_estimate(yi: np.ndarray, vi: np.ndarray) -> float:
    """Return the DerSimonian-Laird tau of the rows (no covariates), 0 for a single row.

    Only a data-based yardstick for :func:`centred_studies`; the reported tau is the posterior's.
    """
    w = 1.0 / vi
    if len(w) < 2:
        return 0.0
    mean = (w * yi).sum() / w.sum()
    q = (w * (yi - mean) ** 2).sum()
    tau2 = (q - (len(w) - 1)) / (w.sum() - (w**2).sum() / w.sum())
    return float(math.sqrt(max(tau2, 0.0)))


def centred_studies(design: Design, prior: PriorSet) -> np.ndarray:
    """Which trials get a centred random effect (1.0) rather than a non-centred one (0.0).

    Normal likelihood only: a trial is centred when the standard error of its pooled log RR
    (``1 / sqrt(sum of 1 / vi)`` over its rows) is below :data:`CENTRED_SE_SHARE` times the
    expected heterogeneity, the smaller of the heterogeneity prior's scale
    (:func:`tau_prior_scale`) and the rows' DerSimonian-Laird tau
    (:func:`heterogeneity_estimate`). Such a trial's effect is fixed by its data, and a
    non-centred ``z = (theta - mu) / tau`` then forms a funnel with ``tau`` that NUTS cannot
    enter (divergences, intervals too narrow); when the data say little about a
    trial, or the trials agree (tau near 0), the non-centred form is the better one. The rule
    reads only the data and the prior, so a seed still gives the same draws. Binomial fits
    stay non-centred (all zeros).
    """
    out = np.zeros(len(design.studies))
    if design.likelihood != "normal" or design.vi is None or design.yi is None:
        return out
    vi, yi = np.asarray(design.vi, dtype=float), np.asarray(design.yi, dtype=float)
    precision = np.zeros(len(design.studies))
    np.add.at(precision, design.study_index, 1.0 / vi)
    se = 1.0 / np.sqrt(precision)
    scale = min(tau_prior_scale(prior.tau), heterogeneity_estimate(yi, vi))
    out[se < CENTRED_SE_SHARE * scale] = 1.0
    return out


def _study_means(design: Design, rows: int, studies: int) -> np.ndarray:
    """(studies x rows) matrix averaging a row vector over each trial's rows."""
    out = np.zeros((studies, rows))
    counts = np.bincount(design.study_index, minlength=len(design.studies))
    for s, k in enumerate(design.study_index):
        out[k, s] = 1.0 / counts[k]
    return out


def model_data(design: Design, prior: PriorSet) -> dict[str, np.ndarray]:
    """Values of every ``pm.Data`` of :func:`build_model` for this design and prior.

    Arrays are padded to the design's :func:`structure_key`: padded rows have no participants
    (binomial: ``n = 0``, a likelihood of 1) or a zero mask (normal), padded design columns
    are zero, so padded parameters keep their prior and touch nothing else.

    An effect prior's mean points towards benefit (an enthusiastic prior expects a benefit of
    OR 1.5): where the dataset declares fewer events better, its sign is turned so that the
    prior expects OR 1/1.5 (:meth:`rebayes.bayes.priors.PriorSet.oriented`). Priors centred
    on no effect are unchanged. With no direction declared the mean points towards the side
    the probabilities name, RR < 1 (:attr:`rebayes.data.direction.Direction.higher`).
    """
    cap = structure_key(design)
    prior = prior.oriented(design.schema.direction.higher)
    family, params = _tau_data(prior.tau)
    effect_family, nu = _effect_data(prior.effect)
    X = np.zeros((design.n_rows, cap.coefs))
    X[:, : len(design.coefs)] = design.X
    data: dict[str, np.ndarray] = {
        "study_index": _pad(design.study_index.astype(np.int64), cap.rows),
        "group_index": _pad(design.group_index.astype(np.int64), cap.rows),
        "X": _pad(X, cap.rows),
        "d_mu": np.asarray(prior.effect.mu, dtype=float),
        "d_sigma": np.asarray(prior.effect.sigma, dtype=float),
        "d_nu": nu,
        "effect_family": effect_family,
        "beta_mu": np.asarray(prior.covariate.mu, dtype=float),
        "beta_sigma": np.asarray(prior.covariate.sigma, dtype=float),
        "tau_family": family,
        "tau_params": params,
    }
    if design.likelihood == "binomial":
        for j, arm in enumerate(ARMS):
            data[f"observed_events_{arm}"] = _pad(design.events[:, j].astype(np.int64), cap.rows)
            data[f"n_{arm}"] = _pad(design.n[:, j].astype(np.int64), cap.rows)
        data["alpha_mu"] = np.asarray(prior.baseline.mu, dtype=float)
        data["alpha_sigma"] = np.asarray(prior.baseline.sigma, dtype=float)
    else:
        assert design.yi is not None and design.vi is not None
        data["observed_log_rr"] = _pad(design.yi.astype(float), cap.rows)
        data["vi"] = _pad(design.vi.astype(float), cap.rows, fill=1.0)
        data["row_mask"] = _pad(np.ones(design.n_rows), cap.rows)
        data["centred"] = _pad(centred_studies(design, prior), cap.studies)
        data["study_mean"] = _study_means(design, cap.rows, cap.studies)
    return data


def _tau_log_density(tau: Any, family: Any, params: Any) -> Any:
    """Log density of tau under the family picked by the one-hot ``family`` vector."""
    import pymc as pm
    import pytensor.tensor as pt

    half_normal = pm.logp(pm.HalfNormal.dist(sigma=params[0]), tau)
    half_cauchy = pm.logp(pm.HalfCauchy.dist(beta=params[0]), tau)
    # tau^2 ~ LogNormal(m, s)  <=>  tau ~ LogNormal(m / 2, s / 2).
    lognormal = pm.logp(pm.LogNormal.dist(mu=params[1] / 2, sigma=params[2] / 2), tau)
    # Evaluated at tau only when selected (1 otherwise): on tau itself its log(tau) and 1/tau
    # merge with the other families' terms in PyTensor's rewrites and change their rounding
    # (the fits under the other families were no longer bit for bit what they were; 2e-13
    # in the log density, measured), which the switch prevents.
    selected = pt.switch(pt.gt(family[3], 0), tau, 1.0)
    inverse_gamma = pm.logp(pm.InverseGamma.dist(alpha=params[3], beta=params[4]), selected)
    return (family[0] * half_normal + family[1] * half_cauchy + family[2] * lognormal
            + family[3] * inverse_gamma)


def _effect_correction(d: Any, family: Any, mu: Any, sigma: Any, nu: Any) -> Any:
    """Student-t minus normal log density of ``d``, times the Student-t entry of ``family``.

    ``d`` carries its normal prior in the graph; this potential turns it into the Student-t
    one when ``family`` selects it, and is exactly 0 (0 times a finite number) otherwise.
    """
    import pymc as pm

    student = pm.logp(pm.StudentT.dist(nu=nu, mu=mu, sigma=sigma), d)
    normal = pm.logp(pm.Normal.dist(mu=mu, sigma=sigma), d)
    return family[1] * (student - normal).sum()


def arm_log_odds(alpha: Any, theta: Any) -> tuple[Any, Any]:
    """Log odds of the event in the (control, treatment) arm: ``alpha -+ theta / 2``.

    The one place the arm coding lives (see the module docstring: Jackson et al. 2018's
    symmetric +-1/2 coding). Works on PyTensor tensors, numpy arrays and xarray objects.
    """
    return alpha - theta / 2, alpha + theta / 2


def _standardised_effects(mu: Any, tau: Any, centred: Any, study_mean: Any) -> Any:
    """Each trial's standardised random effect ``z``, centred or not as ``centred`` says.

    The free variable ``w`` is, per trial, either ``z`` itself (non-centred, ``w ~ N(0, 1)``)
    or the trial's effect ``eta = mean of mu over its rows + tau z`` (centred,
    ``w ~ N(mean mu, tau)``). Both forms give ``z`` the same N(0, 1) prior; ``z`` is recorded
    as a deterministic, so the output has the same variables either way.
    """
    import pymc as pm

    w = pm.Flat("w", dims="study")
    mbar = (study_mean * mu).sum(axis=1)  # not pt.dot: see build_model
    log_density = centred * pm.logp(pm.Normal.dist(mbar, tau), w) + (1 - centred) * pm.logp(
        pm.Normal.dist(0.0, 1.0), w
    )
    pm.Potential("z_prior", log_density.sum())
    return pm.Deterministic("z", centred * (w - mbar) / tau + (1 - centred) * w, dims="study")


def build_model(design: Design, prior: PriorSet) -> pm.Model:
    """Build the (padded) PyMC model of a design, with the prior's hyperparameters as data.

    Parameters
    ----------
    design : Design
    prior : PriorSet
        Initial values of the hyperparameter data; swap them with :func:`model_data` and
        nutpie's ``with_data`` (or ``pm.set_data``).

    Returns
    -------
    pymc.Model
        Free variables ``d[group]``, ``beta[coef]``, ``tau``, ``z[study]`` and, for the
        binomial likelihood, ``alpha[row]`` (for the normal likelihood ``w[study]``, with
        ``z`` a deterministic: see :func:`_standardised_effects`), each padded to
        :func:`structure_key`; the likelihood as potentials ``events_control`` and
        ``events_treat``, or ``log_rr``: each a sum over rows of the log density without its
        constant (the binomial coefficient; the normal's ``-log(sigma) - log(2 pi) / 2``).
        :func:`unpad_posterior` strips the padding.
    """
    # PyMC loads here only: a process that reads its compiled model from the compile cache
    # (rebayes.bayes.compilation) and the numpy twins below never import it.
    import pymc as pm
    import pytensor.tensor as pt

    cap = structure_key(design)
    coords: dict[str, Any] = {
        "row": range(cap.rows),
        "study": range(cap.studies),
        "group": range(cap.groups),
        "coef": range(cap.coefs),
    }
    # check_bounds=False: no parameter assertions in the graph. Every parameter is valid by
    # construction (n >= 0 counts, sigmas > 0, probabilities from a logit); the checks only
    # cost compilation (~1.7 s the first time on a machine, measured). Draws are unchanged.
    with pm.Model(coords=coords, check_bounds=False) as model:
        # Static shapes: the compiled graph is fixed to them anyway (``with_data`` refuses
        # others), and without them PyTensor guards each observed array with a SpecifyShape,
        # whose numba error path alone takes ~3.5 s to compile the first time on a machine.
        data = {
            name: pm.Data(name, value, shape=np.shape(value))
            for name, value in model_data(design, prior).items()
        }
        d = pm.Normal("d", data["d_mu"], data["d_sigma"], dims="group")
        pm.Potential("effect_prior", _effect_correction(d, data["effect_family"], data["d_mu"],
                                                        data["d_sigma"], data["d_nu"]))
        beta = pm.Normal("beta", data["beta_mu"], data["beta_sigma"], dims="coef")
        tau = pm.HalfFlat("tau")
        pm.Potential("tau_prior", _tau_log_density(tau, data["tau_family"], data["tau_params"]))
        # Summed products, not pt.dot: numba compiles a BLAS dot and its gradient's in ~25 s
        # the first time on a machine (measured), and these matrices are tiny.
        mu = d[data["group_index"]] + (data["X"] * beta).sum(axis=1)
        if design.likelihood == "binomial":
            z = pm.Normal("z", 0.0, 1.0, dims="study")
        else:
            z = _standardised_effects(mu, tau, data["centred"], data["study_mean"])
        theta = mu + tau * z[data["study_index"]]
        if design.likelihood == "binomial":
            alpha = pm.Normal("alpha", data["alpha_mu"], data["alpha_sigma"], dims="row")
            # One likelihood term per arm, not a stacked (row, arm) array: the stack's join and
            # its gradient's split cost ~2.7 s of numba compilation the first time (measured).
            # Each term is the binomial kernel k * eta - n * log(1 + e^eta), the log density
            # up to the binomial coefficient, which no parameter enters: PyMC's Binomial
            # evaluated its six log-gamma functions per row, with its bounds switches, in
            # every gradient (2.9 -> 1.6 us per log density and gradient, measured). The saved
            # log likelihood is the full one (pointwise_log_likelihood).
            for arm, logit_p in zip(ARMS, arm_log_odds(alpha, theta), strict=True):
                events, n = data[f"observed_events_{arm}"], data[f"n_{arm}"]
                pm.Potential(f"events_{arm}", (events * logit_p - n * pt.softplus(logit_p)).sum())
        else:
            # The normal log density up to -log(sigma) - log(2 pi) / 2, which no parameter
            # enters (as for the binomial kernel above). Padded rows are y = 0, mask 0, vi 1.
            residual = data["observed_log_rr"] - data["row_mask"] * theta
            pm.Potential("log_rr", -0.5 * (residual**2 / data["vi"]).sum())
    return model


def unpad_posterior(padded: xr.Dataset, design: Design) -> xr.Dataset:
    """Strip the padding from sampled draws and label them with the design's names.

    ``d`` becomes a scalar unless the effect is ``separate`` (then it has dim ``subgroup``);
    ``beta`` is dropped when there are no covariates.
    """
    out: dict[str, xr.DataArray] = {}
    if design.separate:
        d = padded["d"].isel(group=slice(0, len(design.groups)))
        out["d"] = d.rename(group="subgroup").assign_coords(subgroup=list(design.groups))
    else:
        out["d"] = padded["d"].isel(group=0, drop=True)
    if design.coefs:
        beta = padded["beta"].isel(coef=slice(0, len(design.coefs)))
        out["beta"] = beta.assign_coords(coef=list(design.coefs))
    out["tau"] = padded["tau"]
    out["z"] = (
        padded["z"]
        .isel(study=slice(0, len(design.studies)))
        .assign_coords(study=list(design.studies))
    )
    if "alpha" in padded:
        out["alpha"] = (
            padded["alpha"].isel(row=slice(0, design.n_rows)).assign_coords(row=list(design.rows))
        )
    return xr.Dataset(out)


# --- numpy companions: the same formulas on draws (posterior or prior) ----------------------


def linear_predictor(draws: xr.Dataset, constant: xr.Dataset, random: bool = True) -> xr.DataArray:
    """Each row's treatment effect per draw: ``mu[s]`` or, with ``random``, ``theta[s]``.

    Parameters
    ----------
    draws : xarray.Dataset
        ``d``, ``tau``, ``z`` and, with covariates, ``beta`` (posterior or prior group).
    constant : xarray.Dataset
        The fit's ``constant_data``: ``study_index``, and ``group_index`` / ``X`` if used.
    random : bool
        Add the trial's random effect ``tau * z[study(s)]`` (True) or not (the expected
        effect of a row with these covariates, False).

    Returns
    -------
    xarray.DataArray
        Dims ``(chain, draw, row)`` (or the draws' sample dims).
    """
    d = draws["d"]
    if "subgroup" in d.dims:
        mu = d.isel(subgroup=constant["group_index"]).drop_vars("subgroup", errors="ignore")
    else:
        mu = d.expand_dims(row=constant.sizes["row"]).transpose(*d.dims, "row")
    if "beta" in draws:
        mu = mu + xr.dot(constant["X"], draws["beta"], dim="coef")
    if random:
        z_row = draws["z"].isel(study=constant["study_index"]).drop_vars("study", errors="ignore")
        mu = mu + draws["tau"] * z_row
    return mu.assign_coords(row=constant["row"].values).transpose(..., "row")


def _logit_p(draws: xr.Dataset, constant: xr.Dataset) -> xr.DataArray:
    """Log odds of the event per draw, row and arm (:func:`arm_log_odds`)."""
    theta = linear_predictor(draws, constant)
    arms = arm_log_odds(draws["alpha"], theta)
    return xr.concat(arms, dim=xr.Variable("arm", list(ARMS))).transpose(..., "row", "arm")


def arm_risks(draws: xr.Dataset, constant: xr.Dataset) -> xr.DataArray:
    """Event risk per draw, row and arm, each row at its own effect ``theta[s]``."""
    return special.expit(_logit_p(draws, constant))


def pointwise_log_likelihood(
    draws: xr.Dataset, constant: xr.Dataset, observed: xr.Dataset
) -> xr.Dataset:
    """Log likelihood per draw and observation (``events[row, arm]`` or ``log_rr[row]``).

    Grouping the binomial terms by ``row_study`` gives per-trial terms for PSIS-LOO.
    """
    if "events" in observed:
        k, n = observed["events"], constant["n"]
        x = _logit_p(draws, constant)
        log_choose = special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)
        value = log_choose + k * special.log_expit(x) + (n - k) * special.log_expit(-x)
        return xr.Dataset({"events": value.transpose(..., "row", "arm")})
    theta = linear_predictor(draws, constant)
    sd = np.sqrt(constant["vi"])
    value = xr.apply_ufunc(stats.norm.logpdf, observed["log_rr"], theta, sd)
    return xr.Dataset({"log_rr": value.transpose(..., "row")})


def predictive_draws(
    draws: xr.Dataset, constant: xr.Dataset, rng: np.random.Generator
) -> xr.Dataset:
    """Replicated data per draw: events per row and arm, or observed log RR per row."""
    if "n" in constant and "alpha" in draws:
        x = _logit_p(draws, constant)
        n = constant["n"].broadcast_like(x)
        events = rng.binomial(n.values, special.expit(x.values))
        return xr.Dataset({"events": x.copy(data=events.astype(np.int64))})
    theta = linear_predictor(draws, constant)
    sd = np.sqrt(constant["vi"]).broadcast_like(theta)  # type: ignore[attr-defined]
    return xr.Dataset({"log_rr": theta.copy(data=rng.normal(theta.values, sd.values))})


def prior_draws(template: xr.Dataset, prior: PriorSet, rng: np.random.Generator) -> xr.Dataset:
    """Independent draws from the prior, shaped like ``template`` (the posterior group).

    Drawn with numpy/scipy rather than PyMC: tau has a flat base measure in the graph, so
    PyMC cannot sample it; the prior set itself knows its distributions. ``prior`` must be
    the set as the model used it, effect mean turned towards benefit
    (:meth:`~rebayes.bayes.priors.PriorSet.oriented`).
    """
    slots: dict[Any, Any] = {
        "d": prior.effect, "beta": prior.covariate, "alpha": prior.baseline, "tau": prior.tau,
    }
    out = {}
    for name, var in template.data_vars.items():
        if name == "z":
            values = rng.standard_normal(var.shape)
        else:
            values = slots[name].frozen().rvs(size=var.shape, random_state=rng)
        out[name] = var.copy(data=np.asarray(values, dtype=float))
    return xr.Dataset(out, coords=template.coords)


def log_prior(draws: xr.Dataset, prior: PriorSet) -> xr.Dataset:
    """Log prior density of each top-level parameter per draw (for power-scaling, psense).

    ``z`` is left out: its N(0, 1) is the structure of the hierarchical model, not a prior
    choice, as in priorsense's ``lprior`` for brms. ``prior`` as the model used it
    (:meth:`~rebayes.bayes.priors.PriorSet.oriented`).
    """
    slots = {"d": prior.effect, "beta": prior.covariate, "alpha": prior.baseline, "tau": prior.tau}
    out = {}
    for name, dist in slots.items():
        if name in draws:
            var = draws[name]
            out[name] = var.copy(data=dist.frozen().logpdf(var.values))
    return xr.Dataset(out)
