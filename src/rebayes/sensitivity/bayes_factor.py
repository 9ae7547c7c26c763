"""Savage-Dickey Bayes factors BF01 for a point hypothesis, with their Monte Carlo error.

For a point hypothesis ``theta = theta0`` nested in the model, and priors of the other
parameters that do not depend on ``theta``, the Bayes factor for the point against the
alternative is the ratio of the posterior to the prior density at the point (Dickey 1971;
Wagenmakers et al. 2010, eq. 3)::

    BF01 = p(theta0 | y) / p(theta0)

- the **prior density** is exact: the prior set's own distribution (scipy.stats), oriented as
  the model uses it (an effect prior's mean points towards benefit, see
  :func:`rebayes.bayes.model.model_data`), never a density estimate from prior draws;
- the **posterior density** is estimated from the draws with a fourth-order Gaussian kernel
  (Wand & Jones 1995, section 2.8) at Silverman's bandwidth. At a fixed bandwidth the estimate
  is the posterior mean of a kernel function, so its Monte Carlo standard error is the MCSE
  of a mean, with the autocorrelation of the chains accounted for (arviz-stats ``mcse``,
  Vehtari et al. 2021). The fourth-order kernel makes the smoothing bias O(h^4), small next to
  that MCSE (the tests check it against the exact conjugate answer);
- the **interval** is BF01 +- 2 MCSE / prior density (a normal approximation to a Markov chain
  average), and the verdict words (Lee & Wagenmakers 2013, after Jeffreys 1961) are given only
  when the whole interval falls in one band; otherwise the verdict is "inconclusive within
  Monte Carlo error".

Bayes factors are reported in one direction, BF01 (> 1 favours the point hypothesis), and a
Bayes factor belongs to its likelihood: the binomial model tests a log OR, the normal model a
log RR, under priors on different scales, so :func:`check_one_likelihood` refuses to put both
in one comparison.

References
----------
Dickey JM. The weighted likelihood ratio, linear hypotheses on normal location parameters.
Ann Math Stat. 1971;42:204-223. doi:10.1214/aoms/1177693507.
Wagenmakers E-J, Lodewyckx T, Kuriyal H, Grasman R. Bayesian hypothesis testing for
psychologists: a tutorial on the Savage-Dickey method. Cogn Psychol. 2010;60:158-189.
doi:10.1016/j.cogpsych.2009.12.001.
Wand MP, Jones MC. Kernel Smoothing. Chapman & Hall; 1995 (higher-order kernels, 2.8).
Vehtari A, Gelman A, Simpson D, Carpenter B, Bürkner P-C. Rank-normalization, folding, and
localization: an improved R-hat for assessing convergence of MCMC. Bayesian Anal.
2021;16:667-718. doi:10.1214/20-BA1221.
Lee MD, Wagenmakers E-J. Bayesian Cognitive Modeling. Cambridge University Press; 2013
(evidence categories of Bayes factors, after Jeffreys 1961).
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import arviz_stats as azs
import numpy as np
import xarray as xr

from rebayes.bayes.priors import PriorSet
from rebayes.errors import RebayesError

__all__ = [
    "BF01_BANDS",
    "BayesFactor",
    "check_one_likelihood",
    "hypothesis_meanings",
    "posterior_density_at",
    "prior_density_at",
    "savage_dickey",
]

#: Lee & Wagenmakers' (2013) bands on BF01: (upper edge, words). Below 1 the data favour
#: the alternative, above 1 the point hypothesis.
BF01_BANDS: tuple[tuple[float, str], ...] = (
    (1 / 100, "extreme evidence against"),
    (1 / 30, "very strong evidence against"),
    (1 / 10, "strong evidence against"),
    (1 / 3, "moderate evidence against"),
    (1.0, "anecdotal evidence against"),
    (3.0, "anecdotal evidence for"),
    (10.0, "moderate evidence for"),
    (30.0, "strong evidence for"),
    (100.0, "very strong evidence for"),
    (math.inf, "extreme evidence for"),
)
_EDGES = [edge for edge, _ in BF01_BANDS[:-1]]
INCONCLUSIVE = "inconclusive within Monte Carlo error"
# Which prior slot each tested parameter takes its prior from.
_SLOT = {"d": "effect", "beta": "covariate"}


def _band(bf01: float) -> int:
    return bisect.bisect_right(_EDGES, bf01)


@dataclass(frozen=True)
class BayesFactor:
    """Savage-Dickey BF01 for ``parameter = reference`` against ``parameter != reference``.

    Attributes
    ----------
    parameter : str
        ``d``, ``d[subgroup]`` or ``beta[coef]``.
    meaning : str
        What the point hypothesis says, in words.
    reference : float
    bf01 : float
        Posterior density / prior density at the reference (> 1 favours the point).
    bf01_low, bf01_high : float
        BF01 +- 2 Monte Carlo standard errors (the prior density is exact).
    posterior_density : float
        Kernel estimate of the posterior density at the reference.
    posterior_density_mcse : float
        Its Monte Carlo standard error.
    prior_density : float
        Exact prior density at the reference.
    likelihood, effect_scale : str
        The model the factor belongs to (``binomial``, ``log OR``; ``normal``, ``log RR``).
    note : str
        Why the number may be imprecise (reference outside the draws), or empty.
    engine : {"nuts", "exact"}
        What gave the posterior density: a kernel estimate from NUTS draws, or the exact
        engine's marginal (:mod:`rebayes.sensitivity.exact_bayes_factor`; MCSE 0).
    """

    parameter: str
    meaning: str
    reference: float
    bf01: float
    bf01_low: float
    bf01_high: float
    posterior_density: float
    posterior_density_mcse: float
    prior_density: float
    likelihood: str = ""
    effect_scale: str = ""
    note: str = ""
    engine: str = "nuts"

    @property
    def bf01_mcse(self) -> float:
        """Monte Carlo standard error of BF01."""
        return self.posterior_density_mcse / self.prior_density

    @property
    def bf10(self) -> float:
        """1 / BF01 (kept for callers; text and tables report BF01 only)."""
        return math.inf if self.bf01 == 0 else 1 / self.bf01

    @property
    def evidence(self) -> str:
        """Band words (``moderate evidence for``) or ``inconclusive within Monte Carlo error``.

        Words are given only when BF01's whole Monte Carlo interval lies in one band.
        """
        low, high = _band(self.bf01_low), _band(self.bf01_high)
        return BF01_BANDS[low][1] if low == high else INCONCLUSIVE

    @property
    def verdict(self) -> str:
        """Plain words: ``moderate evidence for no effect (d = 0, log OR) (BF01 = 4.1, ...)``."""
        numbers = (f"BF01 = {self.bf01:.3g}, exact" if self.engine == "exact" else
                   f"BF01 = {self.bf01:.3g}, MC interval {self.bf01_low:.3g} to "
                   f"{self.bf01_high:.3g}")
        if self.evidence == INCONCLUSIVE:
            return f"{INCONCLUSIVE} on {self.meaning} ({numbers})"
        return f"{self.evidence} {self.meaning} ({numbers})"

    def to_dict(self) -> dict[str, Any]:
        """All fields plus ``bf01_mcse``, ``evidence`` and ``verdict`` (no BF10)."""
        return {
            "parameter": self.parameter,
            "meaning": self.meaning,
            "reference": self.reference,
            "bf01": self.bf01,
            "bf01_mcse": self.bf01_mcse,
            "bf01_low": self.bf01_low,
            "bf01_high": self.bf01_high,
            "posterior_density": self.posterior_density,
            "posterior_density_mcse": self.posterior_density_mcse,
            "prior_density": self.prior_density,
            "likelihood": self.likelihood,
            "effect_scale": self.effect_scale,
            "evidence": self.evidence,
            "verdict": self.verdict,
            "note": self.note,
            "engine": self.engine,
        }

    def __str__(self) -> str:
        return f"{self.parameter} = {self.reference:g}: {self.verdict}" + (
            f" [{self.note}]" if self.note else ""
        )


def _kernel4(u: np.ndarray) -> np.ndarray:
    """Fourth-order Gaussian kernel (3 - u^2) / 2 * phi(u): zero second moment."""
    return 0.5 * (3.0 - u * u) * np.exp(-0.5 * u * u) / math.sqrt(2 * math.pi)


def posterior_density_at(draws: np.ndarray, reference: float) -> tuple[float, float]:
    """Kernel estimate of the density of ``draws`` at ``reference`` and its MCSE.

    Parameters
    ----------
    draws : ndarray, shape (chain, draw)
    reference : float

    Returns
    -------
    (density, mcse) : tuple of float
        ``density`` is clipped at 0 (the fourth-order kernel can go negative far in a tail).
    """
    x = np.asarray(draws, dtype=float)
    if x.ndim != 2:
        raise RebayesError("posterior_density_at needs draws shaped (chain, draw)")
    flat = x.ravel()
    sd = float(np.std(flat, ddof=1))
    iqr = float(np.subtract(*np.percentile(flat, [75, 25])))
    spread = min(sd, iqr / 1.349) if iqr > 0 else sd
    if not spread > 0:
        raise RebayesError("the posterior draws are constant: no density to estimate")
    h = 0.9 * spread * flat.size ** (-0.2)  # Silverman (1986), eq. 3.31
    values = _kernel4((x - reference) / h) / h
    density = float(values.mean())
    if np.ptp(values) == 0:
        return max(density, 0.0), 0.0
    return max(density, 0.0), float(azs.mcse(values, method="mean"))


def _prior_of(tree: xr.DataTree) -> PriorSet:
    raw = tree.attrs.get("prior_json")
    if not raw:
        raise RebayesError(
            "a Bayes factor needs the fit's prior set (tree.attrs['prior_json']) or prior="
        )
    return PriorSet.from_dict(json.loads(raw))


def prior_density_at(
    prior: PriorSet, name: str, reference: float = 0.0, *, higher_is_better: bool = True
) -> float:
    """Exact prior density of a parameter at ``reference``, oriented as the model uses it.

    Parameters
    ----------
    prior : PriorSet
        The fit's prior set (on the fit's scale).
    name : {"d", "beta"}
        ``d`` takes the ``effect`` prior, whose mean the model turns towards benefit (its
        sign flips where fewer events is better); ``beta`` the ``covariate`` prior as it is.
    reference : float
    higher_is_better : bool
        The dataset's direction (``rebayes.data.direction.Direction``).
    """
    if name not in _SLOT:
        raise RebayesError(f"no prior slot for parameter '{name}' (known: {', '.join(_SLOT)})")
    dist = getattr(prior.oriented(higher_is_better), _SLOT[name])
    return float(dist.frozen().pdf(reference))


def _meanings(tree: xr.DataTree) -> dict[str, str]:
    """Say in words what ``d = 0`` and ``beta = 0`` mean in this fit."""
    return hypothesis_meanings(str(tree.attrs.get("effect_scale", "log OR")),
                               str(tree.attrs.get("effect", "common")),
                               str(tree.attrs.get("intercept_at", "")))


def hypothesis_meanings(scale: str, effect: str = "common", at: str = "") -> dict[str, str]:
    """Say in words what ``d = 0`` and ``beta = 0`` mean in an analysis.

    Parameters
    ----------
    scale : {"log OR", "log RR"}
        The effect's scale (the likelihood's).
    effect : {"common", "contrast", "separate"}
        The analysis's effect structure.
    at : str
        Where a meta-regression's intercept is (its centred covariates), or empty.
    """
    if effect == "contrast" and at:
        # The design centres the covariates: d is the average effect over the rows.
        d = f"no effect {at} (d = 0, {scale})"
    elif effect == "contrast":
        d = f"no average effect over the analysed rows (d = 0, {scale})"
    else:
        d = f"no effect (d = 0, {scale})"
    ratio = "ORs" if scale == "log OR" else "RRs"
    return {"d": d, "beta": f"no difference between subgroups (beta = 0, log ratio of {ratio})"}


def savage_dickey(
    tree: xr.DataTree,
    var_names: Sequence[str] | None = None,
    reference: float = 0.0,
    *,
    prior: PriorSet | None = None,
) -> tuple[BayesFactor, ...]:
    """Savage-Dickey BF01 for each tested parameter of a fit, with its Monte Carlo interval.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit: its ``posterior`` group, and attrs ``prior_json``, ``likelihood``,
        ``effect_scale`` and the direction.
    var_names : sequence of str, optional
        Parameters to test; default ``d`` and, in a meta-regression, ``beta``. A parameter
        with a dimension (``d[subgroup]``, ``beta[coef]``) gives one factor per element.
    reference : float
        The point hypothesis (0: no effect / no difference).
    prior : PriorSet, optional
        The prior the fit used; default the one recorded in ``tree.attrs["prior_json"]``.

    Returns
    -------
    tuple of BayesFactor

    Examples
    --------
    >>> import numpy as np, xarray as xr
    >>> from rebayes.bayes.priors import PriorSet, HalfNormal
    >>> d = np.random.default_rng(1).normal(0.2, 0.3, (4, 2000))
    >>> tree = xr.DataTree.from_dict({"posterior": xr.Dataset({"d": (("chain", "draw"), d)})})
    >>> (bf,) = savage_dickey(tree, prior=PriorSet("p", Normal(0, 1), HalfNormal(0.5)))
    >>> round(bf.prior_density, 4)
    0.3989
    """
    if "posterior" not in tree.children:
        raise RebayesError("a Bayes factor needs the fit's 'posterior' group")
    from rebayes.data.direction import Direction

    prior_set = prior if prior is not None else _prior_of(tree)
    higher = Direction.of(tree).higher
    posterior = tree["posterior"].to_dataset()
    names = (
        list(var_names) if var_names is not None else [v for v in ("d", "beta") if v in posterior]
    )
    meanings = _meanings(tree)
    likelihood = str(tree.attrs.get("likelihood", ""))
    scale = str(tree.attrs.get("effect_scale", ""))
    out = []
    for name in names:
        var = posterior[name]
        extra = [d for d in var.dims if d not in ("chain", "draw")]
        stacked = var.stack(element=extra) if extra else var.expand_dims(element=[None])
        prior_density = prior_density_at(prior_set, name, reference, higher_is_better=higher)
        for i in range(stacked.sizes["element"]):
            if extra:
                key = stacked["element"].values[i]
                key = key if isinstance(key, tuple) else (key,)
                label = f"{name}[{', '.join(str(k) for k in key)}]"
            else:
                label = name
            draws = stacked.isel(element=i).transpose("chain", "draw").values
            density, mcse = posterior_density_at(draws, reference)
            note = ""
            if not draws.min() <= reference <= draws.max():
                note = (
                    f"{reference:g} is outside the posterior range of the draws "
                    f"({draws.min():.3g} to {draws.max():.3g}): BF01 is near 0 and imprecise"
                )
            out.append(
                BayesFactor(
                    parameter=label,
                    meaning=meanings.get(name, f"{name} = {reference:g}"),
                    reference=float(reference),
                    bf01=density / prior_density,
                    bf01_low=max(density - 2 * mcse, 0.0) / prior_density,
                    bf01_high=(density + 2 * mcse) / prior_density,
                    posterior_density=density,
                    posterior_density_mcse=mcse,
                    prior_density=prior_density,
                    likelihood=likelihood,
                    effect_scale=scale,
                    note=note,
                )
            )
    return tuple(out)


def check_one_likelihood(factors: Iterable[BayesFactor] | Mapping[Any, Any]) -> str:
    """Return the one likelihood of some Bayes factors; refuse a mixture.

    A BF01 from the binomial model (log OR, priors on the log OR) and one from the normal
    model (log RR) test different hypotheses under different priors: their sizes are not
    comparable, so they never share a table or a sentence.

    Raises
    ------
    RebayesError
        When the factors come from more than one likelihood.
    """
    items = factors.values() if isinstance(factors, Mapping) else factors
    found = sorted({f"{bf.likelihood} ({bf.effect_scale})" for bf in items if bf.likelihood})
    if len(found) > 1:
        raise RebayesError(
            "Bayes factors from different likelihoods are not comparable: "
            + " vs ".join(found)
            + "; compare one likelihood at a time"
        )
    return found[0] if found else ""
