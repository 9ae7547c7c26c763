"""Can the numbers of a fit be trusted? Convergence, predictive checks and PSIS-LOO.

Everything here is computed by arviz-stats; this module only chooses what to check and
against which threshold, and lays the results out for people:

- **Convergence** (:func:`diagnose`), for every posterior parameter *and* every reported
  quantity, computed per draw with the functions of :mod:`rebayes.effects` (pooled RR at the
  typical control risk, P(benefit) as the indicator 1[benefit] (1[RR > 1], or 1[RR < 1]
  when the dataset's lower is better), predictive RR, subgroup RRs
  and their ratios, trial-specific RRs): rank-normalised split R-hat <= 1.01, bulk and tail
  ESS >= 400 (Vehtari et al. 2021), no divergent transitions, E-BFMI >= 0.3 in every chain
  (Betancourt 2016). The MCSE of an indicator's mean is the Monte Carlo error of the
  probability, which is why P(benefit) is checked as an indicator.
- **Posterior predictive check** (:func:`ppc_table`): observed vs replicated event counts
  per row (trial or stratum) and arm. It is weak here: every row has its own baseline and
  every trial its own random effect, fitted to those very counts, so the replicated counts
  follow the observed ones almost whatever the model gets wrong.
- **Trial-level mixed predictive check** (:func:`trial_ppc_table`): each trial's observed log
  OR (log RR for the normal model) against that of a *new* trial like it -- same arm sizes
  and baselines, a fresh random effect drawn from the fitted heterogeneity (Marshall EC,
  Spiegelhalter DJ. Identifying outliers in Bayesian hierarchical models: a simulation-based
  approach. Bayesian Analysis 2007;2:409-444). A trial outside its interval is one whose
  effect the pooled effect and tau do not explain.
- **PSIS-LOO per trial** (:func:`loo_by_trial`): the pointwise log likelihood summed over a
  trial's arms and strata, so that a trial is one observation; Pareto k per trial, flagged
  above 0.7 (Vehtari et al. 2017, 2024). :func:`loo_compare` compares analyses of the same
  rows.

References
----------
Vehtari A, Gelman A, Simpson D, Carpenter B, Bürkner P-C. Rank-normalization, folding, and
localization: an improved R-hat for assessing convergence of MCMC. Bayesian Analysis.
2021;16:667-718. doi:10.1214/20-BA1221.
Betancourt M. Diagnosing suboptimal cotangent disintegrations in Hamiltonian Monte Carlo.
arXiv:1604.00695. 2016.
Vehtari A, Gelman A, Gabry J. Practical Bayesian model evaluation using leave-one-out
cross-validation and WAIC. Stat Comput. 2017;27:1413-1432. doi:10.1007/s11222-016-9696-4.
Vehtari A, Simpson D, Gelman A, Yao Y, Gabry J. Pareto smoothed importance sampling.
JMLR. 2024;25(72):1-58.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr
from scipy import special, stats

from rebayes import effects
from rebayes.direction import Direction
from rebayes.errors import RebayesError
from rebayes.gates import DEFAULT_THRESHOLDS, Thresholds
from rebayes.model import linear_predictor
from rebayes.priors import HalfCauchy, HalfNormal, LogNormalTau2, Normal, PriorSet

__all__ = [
    "DiagnosticReport",
    "LOOComparison",
    "TrialLOO",
    "diagnose",
    "loo_by_trial",
    "loo_compare",
    "marginal_log_likelihood",
    "ppc_table",
    "trial_ppc_table",
    "prior_from_tree",
    "reported_quantities",
    "shared_data_groups",
]

SAMPLE_DIMS = ("chain", "draw")
_FAMILIES = {cls.family: cls for cls in (Normal, HalfNormal, HalfCauchy, LogNormalTau2)}


class DiagnosticsError(RebayesError):
    """A tree lacks what a diagnostic needs, or analyses cannot be compared (one line)."""


def _finite(value: Any) -> Any:
    """JSON-safe value: numpy scalars become Python ones, NaN and infinities None."""
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    return value


def _plain(values: xr.DataArray) -> xr.DataArray:
    """Drop non-index coordinates (row_study, ...) so that quantities merge into one Dataset."""
    return values.drop_vars([c for c in values.coords if c not in values.dims])


def reported_quantities(tree: xr.DataTree) -> xr.Dataset:
    """Compute the quantities a fit reports, per posterior draw, with :mod:`rebayes.effects`.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit (:attr:`rebayes.Fit.tree`).

    Returns
    -------
    xarray.Dataset
        ``pooled_rr``, ``pooled_or`` (binomial model), ``predictive_rr``,
        ``risk_difference``, the indicators ``p_benefit`` = 1[benefit] (RR > 1, or RR < 1
        when lower is better: :class:`rebayes.direction.Direction`), ``p_benefit_beyond_1_1``
        = 1[benefit beyond RR 1.1] (RR > 1.1, or RR < 1/1.1) and ``p_rr_gt_1_1`` = 1[RR > 1.1]
        (their means are the reported probabilities, their MCSEs the Monte Carlo errors of
        those probabilities), ``subgroup_rr[subgroup]`` and
        ``p_subgroup_benefit[subgroup]`` (benefit indicator per subgroup),
        ``subgroup_ratio[ratio]`` with its indicator ``p_ratio_gt_1[ratio]`` where the analysis
        has subgroups, and ``trial_rr[row]``.
    """
    rr = effects.pooled_rr(tree)
    direction = Direction.of(tree)
    out: dict[str, xr.DataArray] = {
        "pooled_rr": rr,
        "p_benefit": direction.is_benefit(rr),
        "p_benefit_beyond_1_1": direction.is_benefit(rr, 1.1),
        "p_rr_gt_1_1": (rr > 1.1).astype(float),
        "predictive_rr": effects.predictive_rr(tree),
        "risk_difference": effects.risk_difference(tree),
    }
    odds = effects.pooled_or(tree)
    if odds is not None:
        out["pooled_or"] = odds
    subgroups = effects.subgroup_rrs(tree)
    if subgroups:
        out["subgroup_rr"] = xr.concat(
            [_plain(v) for v in subgroups.values()],
            dim=xr.Variable("subgroup", list(subgroups)),
        )
        # Each subgroup's benefit indicator: its mean is P(benefit | subgroup), whose MCSE the
        # flip rules of a meta-regression need.
        out["p_subgroup_benefit"] = direction.is_benefit(out["subgroup_rr"])
    ratios = effects.subgroup_ratios(tree)
    if ratios:
        out["subgroup_ratio"] = xr.concat(
            [_plain(v) for _, _, v in ratios.values()], dim=xr.Variable("ratio", list(ratios))
        )
        out["p_ratio_gt_1"] = (out["subgroup_ratio"] > 1.0).astype(float)
    out["trial_rr"] = effects.trial_rrs(tree)
    return xr.Dataset({name: _plain(value) for name, value in out.items()})


def _quantity_table(data: xr.Dataset, kind: str, thresholds: Thresholds) -> pd.DataFrame:
    """arviz-stats summary of each quantity, with the per-quantity gates."""
    with warnings.catch_warnings():
        # A constant quantity has no R-hat (0 / 0); it is handled below, not warned about.
        warnings.simplefilter("ignore", RuntimeWarning)
        table = azs.summary(
            data,
            kind="all",
            ci_kind="eti",
            ci_prob=0.95,
            sample_dims=list(SAMPLE_DIMS),
            round_to="none",
        )
    table = pd.DataFrame(table).rename(
        columns={"r_hat": "rhat", "eti95_lb": "ci_low", "eti95_ub": "ci_high"}
    )
    table.insert(0, "kind", kind)
    # A quantity that never varies (e.g. P(benefit) when every draw is a benefit) has no R-hat
    # or ESS; it cannot fail to converge, so it passes.
    constant = table["sd"].to_numpy(float) == 0
    table["constant"] = constant
    table["rhat_ok"] = (table["rhat"] <= thresholds.rhat_max) | constant
    table["ess_bulk_ok"] = (table["ess_bulk"] >= thresholds.ess_min) | constant
    table["ess_tail_ok"] = (table["ess_tail"] >= thresholds.ess_min) | constant
    table.index.name = "quantity"
    return table


@dataclass(frozen=True)
class DiagnosticReport:
    """Convergence of one fit: a per-quantity table and the pass/fail gates.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per scalar quantity (``d``, ``tau``, ``alpha[...]``, ``pooled_rr``,
        ``p_benefit``, ``trial_rr[...]``, ...): ``kind`` (parameter or derived), ``mean``,
        ``sd``, ``ci_low``, ``ci_high`` (95% equal-tailed), ``ess_bulk``, ``ess_tail``,
        ``rhat``, ``mcse_mean``, ``mcse_sd``, ``constant`` and the gates ``rhat_ok``,
        ``ess_bulk_ok``, ``ess_tail_ok``.
    divergences : int
        Divergent transitions after warm-up.
    n_draws : int
        Draws over all chains.
    ebfmi : tuple of float
        E-BFMI of each chain.
    treedepth_saturated : int
        Transitions that hit the maximum tree depth (reported, not gated: it costs speed,
        not validity).
    thresholds : Thresholds
    analysis, prior, variant : str
        Which fit this is (from the tree's attributes).
    """

    table: pd.DataFrame
    divergences: int
    n_draws: int
    ebfmi: tuple[float, ...]
    treedepth_saturated: int = 0
    thresholds: Thresholds = field(default=DEFAULT_THRESHOLDS)
    analysis: str = ""
    prior: str = ""
    variant: str = ""

    @property
    def gates(self) -> dict[str, bool]:
        """Gate name -> passed: ``rhat``, ``ess_bulk``, ``ess_tail``, ``divergences``, ``ebfmi``."""
        t = self.thresholds
        return {
            "rhat": bool(self.table["rhat_ok"].all()),
            "ess_bulk": bool(self.table["ess_bulk_ok"].all()),
            "ess_tail": bool(self.table["ess_tail_ok"].all()),
            "divergences": self.divergences <= t.divergences_max,
            "ebfmi": all(v >= t.ebfmi_min for v in self.ebfmi),
        }

    @property
    def ok(self) -> bool:
        """Whether every gate passes."""
        return all(self.gates.values())

    def gate_label(self, name: str) -> str:
        """Human wording of a gate (``"R-hat <= 1.01"``)."""
        return self.thresholds.label(name)

    def _worst(self, column: str, largest: bool) -> tuple[str, float]:
        values = self.table[column].where(~self.table["constant"])
        if values.isna().all():
            return "", math.nan
        name = values.idxmax() if largest else values.idxmin()
        return str(name), float(values[name])

    def gate_details(self) -> dict[str, str]:
        """Gate name -> the observed value behind it (``"max 1.004 (tau)"``)."""
        rhat_at, rhat = self._worst("rhat", largest=True)
        bulk_at, bulk = self._worst("ess_bulk", largest=False)
        tail_at, tail = self._worst("ess_tail", largest=False)
        ebfmi = f"min {min(self.ebfmi):.2f} over {len(self.ebfmi)} chains" if self.ebfmi else "n/a"
        return {
            "rhat": f"max {rhat:.3f} ({rhat_at})",
            "ess_bulk": f"min {bulk:.0f} ({bulk_at})",
            "ess_tail": f"min {tail:.0f} ({tail_at})",
            "divergences": f"{self.divergences} of {self.n_draws} transitions",
            "ebfmi": ebfmi,
        }

    @property
    def failures(self) -> tuple[str, ...]:
        """One sentence per failing gate, naming the quantities that fail it."""
        out = []
        details = self.gate_details()
        for name, passed in self.gates.items():
            if passed:
                continue
            text = f"{self.gate_label(name)} fails: {details[name]}"
            column = {"rhat": "rhat_ok", "ess_bulk": "ess_bulk_ok", "ess_tail": "ess_tail_ok"}.get(
                name
            )
            if column is not None:
                bad = list(self.table.index[~self.table[column]])
                shown = ", ".join(bad[:6]) + (f" and {len(bad) - 6} more" if len(bad) > 6 else "")
                text += f"; failing: {shown}"
            out.append(text)
        return tuple(out)

    def reported(self) -> pd.DataFrame:
        """Return the rows people read: top-level parameters and derived quantities.

        Baselines ``alpha``, random effects ``z`` and trial RRs are gated like everything
        else but left out of this short table.
        """
        index = self.table.index.to_series()
        hidden = index.str.match(r"^(alpha|z|trial_rr)\[")
        return self.table[~hidden.to_numpy()]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready record: ``ok``, ``gates``, ``failures``, sampler facts, per quantity."""
        columns = [
            "kind",
            "mean",
            "sd",
            "ci_low",
            "ci_high",
            "mcse_mean",
            "mcse_sd",
            "ess_bulk",
            "ess_tail",
            "rhat",
            "rhat_ok",
            "ess_bulk_ok",
            "ess_tail_ok",
        ]
        return {
            "analysis": self.analysis,
            "prior": self.prior,
            "variant": self.variant,
            "ok": self.ok,
            "gates": self.gates,
            "failures": list(self.failures),
            "thresholds": dict(self.thresholds.__dict__),
            "divergences": self.divergences,
            "n_draws": self.n_draws,
            "ebfmi": [_finite(v) for v in self.ebfmi],
            "treedepth_saturated": self.treedepth_saturated,
            "quantities": {
                str(name): {c: _finite(row[c]) for c in columns}
                for name, row in self.table.iterrows()
            },
        }

    def gate_rows(self) -> list[tuple[str, bool, str]]:
        """(label, passed, observed) per gate, in report order, e.g. for an HTML table."""
        details = self.gate_details()
        return [
            (self.gate_label(name), passed, details[name]) for name, passed in self.gates.items()
        ]

    def __str__(self) -> str:
        head = f"Diagnostics: {self.analysis}, prior {self.prior}, variant {self.variant}"
        lines = [head + (" -- all gates pass" if self.ok else " -- GATES FAIL")]
        for label, passed, detail in self.gate_rows():
            lines.append(f"  {label:<22}{'pass' if passed else 'FAIL':<6}{detail}")
        shown = self.reported()
        width = max(len(str(n)) for n in shown.index) + 2
        lines += [
            "",
            f"  {'quantity':<{width}}{'mean':>9}{'MCSE':>9}{'R-hat':>8}"
            f"{'ESS bulk':>10}{'ESS tail':>10}",
        ]
        for name, row in shown.iterrows():
            flag = "" if row["rhat_ok"] and row["ess_bulk_ok"] and row["ess_tail_ok"] else "  <--"
            lines.append(
                f"  {name!s:<{width}}{row['mean']:>9.3f}{row['mcse_mean']:>9.4f}"
                f"{row['rhat']:>8.3f}{row['ess_bulk']:>10.0f}{row['ess_tail']:>10.0f}{flag}"
            )
        hidden = len(self.table) - len(shown)
        if hidden:
            bad = int((~self.table[["rhat_ok", "ess_bulk_ok", "ess_tail_ok"]].all(axis=1)).sum())
            lines.append(
                f"  (+ {hidden} baselines, random effects and trial RRs: "
                + ("all pass)" if bad == 0 else f"{bad} fail)")
            )
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """Gates and reported quantities as markdown tables (failing gates in bold)."""
        lines = ["| Gate | Result | Observed |", "|---|---|---|"]
        for label, passed, detail in self.gate_rows():
            lines.append(f"| {label} | {'pass' if passed else '**FAIL**'} | {detail} |")
        lines += [
            "",
            "| Quantity | Mean | MCSE | R-hat | ESS bulk | ESS tail |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, row in self.reported().iterrows():
            lines.append(
                f"| {name} | {row['mean']:.3f} | {row['mcse_mean']:.4f} | {row['rhat']:.3f} "
                f"| {row['ess_bulk']:.0f} | {row['ess_tail']:.0f} |"
            )
        return "\n".join(lines)


def diagnose(tree: xr.DataTree, thresholds: Thresholds = DEFAULT_THRESHOLDS) -> DiagnosticReport:
    """Check a fit's convergence for every parameter and every reported quantity.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit: ``posterior``, ``sample_stats`` (``diverging``, ``energy``),
        ``constant_data`` (and ``observed_data``).
    thresholds : Thresholds
        The gates; default: Vehtari et al. (2021) and Betancourt (2016).

    Returns
    -------
    DiagnosticReport

    Examples
    --------
    >>> import rebayes as rb
    >>> from rebayes.diagnostics import diagnose
    >>> fit = rb.fit(rb.load_script("models/overall.py"))                 # doctest: +SKIP
    >>> report = diagnose(fit.tree)                                        # doctest: +SKIP
    >>> report.ok, report.gates["rhat"]                                    # doctest: +SKIP
    (True, True)
    """
    for group in ("posterior", "sample_stats"):
        if group not in tree.children:
            raise DiagnosticsError(f"the fit has no '{group}' group to diagnose")
    params = tree["posterior"].to_dataset()
    table = pd.concat(
        [
            _quantity_table(params, "parameter", thresholds),
            _quantity_table(reported_quantities(tree), "derived", thresholds),
        ]
    )
    stats = tree["sample_stats"].to_dataset()
    divergences = int(stats["diverging"].sum()) if "diverging" in stats else 0
    ebfmi: tuple[float, ...] = ()
    if "energy" in stats:
        ebfmi = tuple(float(v) for v in np.ravel(azs.bfmi(stats, group=None)["energy"].values))
    saturated = int(stats["maxdepth_reached"].sum()) if "maxdepth_reached" in stats else 0
    attrs = tree.attrs
    return DiagnosticReport(
        table=table,
        divergences=divergences,
        n_draws=int(np.prod([params.sizes[d] for d in SAMPLE_DIMS])),
        ebfmi=ebfmi,
        treedepth_saturated=saturated,
        thresholds=thresholds,
        analysis=str(attrs.get("analysis", "")),
        prior=str(attrs.get("prior", "")),
        variant=str(attrs.get("variant", "")),
    )


# --- posterior predictive check --------------------------------------------------------------


def ppc_table(tree: xr.DataTree, prob: float = 0.95, inner_prob: float = 0.5) -> pd.DataFrame:
    """Observed vs replicated data per row and arm, from the ``posterior_predictive`` group.

    Parameters
    ----------
    tree : xarray.DataTree
    prob : float
        Mass of the equal-tailed replication interval.
    inner_prob : float
        Mass of the inner interval (``rep_low_inner``, ``rep_high_inner``), for plots.

    Returns
    -------
    pandas.DataFrame
        One row per analysed row (trial or stratum) and arm: ``row``, ``arm`` (``control`` /
        ``treat``; ``log_rr`` for the normal model), ``observed``, ``n`` (participants; NaN for
        log RRs), ``rep_median``, ``rep_low``, ``rep_high`` (replicated events, or log RR),
        ``p_rep_ge_obs`` = P(y_rep >= y_obs), and ``within`` (observed inside the interval).
    """
    for group in ("posterior_predictive", "observed_data"):
        if group not in tree.children:
            raise DiagnosticsError(f"the fit has no '{group}' group for a predictive check")
    observed = tree["observed_data"].to_dataset()
    replicated = tree["posterior_predictive"].to_dataset()
    name = "events" if "events" in observed else "log_rr"
    obs = _plain(observed[name])
    rep = _plain(replicated[name])
    interval = azs.eti(rep, prob=prob, dim=list(SAMPLE_DIMS))
    inner = azs.eti(rep, prob=inner_prob, dim=list(SAMPLE_DIMS))
    frame = xr.Dataset(
        {
            "observed": obs,
            "rep_median": rep.median(list(SAMPLE_DIMS)),
            "rep_low": interval.isel(ci_bound=0, drop=True),
            "rep_high": interval.isel(ci_bound=1, drop=True),
            "rep_low_inner": inner.isel(ci_bound=0, drop=True),
            "rep_high_inner": inner.isel(ci_bound=1, drop=True),
            "p_rep_ge_obs": (rep >= obs).mean(list(SAMPLE_DIMS)),
        }
    )
    if name == "events":
        frame["n"] = _plain(tree["constant_data"].to_dataset()["n"])
    out = frame.to_dataframe().reset_index()
    if "arm" not in out:
        out["arm"] = "log_rr"
    if "n" not in out:
        out["n"] = np.nan
    out["within"] = (out["observed"] >= out["rep_low"]) & (out["observed"] <= out["rep_high"])
    columns = [
        "row",
        "arm",
        "observed",
        "n",
        "rep_median",
        "rep_low",
        "rep_high",
        "rep_low_inner",
        "rep_high_inner",
        "p_rep_ge_obs",
        "within",
    ]
    return out[columns]


# Stream of the fit's seed for the trial-level check's new random effects and data (the fit
# uses 1-3, :mod:`rebayes.effects` 4).
_TRIAL_PPC_STREAM = 5


def _log_or(events: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Log OR of each (..., arm) table, control arm first, as RevMan computes it.

    :func:`rebayes.frequentist.study_effects` on the flattened tables: 0.5 added to every cell
    of a table with a zero cell; NaN where RevMan has no OR (no events, or only events, in
    both arms).
    """
    from rebayes.frequentist import study_effects

    shape = events.shape[:-1]
    e, m = events.reshape(-1, 2), np.broadcast_to(n, events.shape).reshape(-1, 2)
    tables = pd.DataFrame({"study": np.arange(len(e)), "events_treat": e[:, 1],
                           "n_treat": m[:, 1], "events_control": e[:, 0],
                           "n_control": m[:, 0]})
    return study_effects(tables, "OR")["yi"].to_numpy(float).reshape(shape)


def _by_trial(values: np.ndarray, study_index: np.ndarray, n_studies: int) -> np.ndarray:
    """Sum the last-but-one (row) axis of ``values[..., row, arm]`` over each trial's rows."""
    out = np.zeros((*values.shape[:-2], n_studies, values.shape[-1]), dtype=values.dtype)
    for row, k in enumerate(study_index):
        out[..., k, :] += values[..., row, :]
    return out


def trial_ppc_table(tree: xr.DataTree, prob: float = 0.95) -> pd.DataFrame:
    """Trial-level mixed predictive check: observed vs a new similar trial's effect.

    Per posterior draw, each trial gets a fresh random effect ``z_new ~ N(0, 1)`` (so its
    effect is ``mu + tau * z_new``, not the one fitted to its own data), keeps its rows'
    baselines and arm sizes, and new data are drawn: binomial counts summed over the trial's
    rows, whose log OR is compared with the observed one (both with RevMan's 0.5 correction of
    a zero cell), or, for the normal model, log RRs ``N(theta_new, v)`` averaged over the
    trial's rows with inverse-variance weights as the observed ones are.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit (posterior, constant_data, observed_data).
    prob : float
        Mass of the equal-tailed replication interval.

    Returns
    -------
    pandas.DataFrame
        One row per trial: ``trial``, ``scale`` (``log OR`` or ``log RR``), ``observed``,
        ``rep_median``, ``rep_low``, ``rep_high``, ``p_value`` (two-sided mid-p:
        2 min(P(rep < obs) + P(rep = obs) / 2, its complement)) and ``within``. A trial with
        no OR (no events, or only events, in both arms) has NaN there and ``within`` True;
        replicated tables without an OR are left out of its distribution.
    """
    for group in ("posterior", "constant_data", "observed_data"):
        if group not in tree.children:
            raise DiagnosticsError(f"the fit has no '{group}' group for a predictive check")
    post = tree["posterior"].to_dataset()
    constant = tree["constant_data"].to_dataset()
    observed = tree["observed_data"].to_dataset()
    studies = [str(s) for s in post["z"]["study"].values]
    index = np.asarray(constant["study_index"].values, dtype=np.int64)
    rng = np.random.default_rng([int(tree.attrs.get("seed", 0)), _TRIAL_PPC_STREAM])
    fresh = post.assign(z=post["z"].copy(data=rng.standard_normal(post["z"].shape)))
    theta = linear_predictor(fresh, constant, random=True)  # (chain, draw, row)
    if "events" in observed:
        n = np.asarray(constant["n"].values, dtype=np.int64)
        logit_c = post["alpha"] - theta / 2
        logit_t = post["alpha"] + theta / 2
        p = special.expit(np.stack([logit_c.values, logit_t.values], axis=-1))
        events_rep = rng.binomial(np.broadcast_to(n, p.shape), p)
        rep = _log_or(_by_trial(events_rep, index, len(studies)),
                      _by_trial(n[None, None], index, len(studies)))
        obs = _log_or(_by_trial(np.asarray(observed["events"].values)[None], index, len(studies)),
                      _by_trial(n[None], index, len(studies)))[0]
        scale = "log OR"
    else:
        vi = np.asarray(constant["vi"].values, dtype=float)
        y_rep = rng.normal(theta.values, np.sqrt(vi))
        w = 1 / vi
        weights = np.zeros((len(studies), len(vi)))
        weights[index, np.arange(len(vi))] = w
        weights /= weights.sum(axis=1, keepdims=True)
        rep = y_rep @ weights.T
        obs = weights @ np.asarray(observed["log_rr"].values, dtype=float)
        scale = "log RR"
    flat = rep.reshape(-1, len(studies))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: not estimable
        low, median, high = np.nanquantile(flat, [(1 - prob) / 2, 0.5, (1 + prob) / 2], axis=0)
        defined = np.isfinite(flat)
        below = ((flat < obs) & defined).sum(0) + 0.5 * ((flat == obs) & defined).sum(0)
        below = below / defined.sum(0)
    p_value = np.where(np.isfinite(obs), np.minimum(1.0, 2 * np.minimum(below, 1 - below)),
                       np.nan)
    return pd.DataFrame({
        "trial": studies,
        "scale": scale,
        "observed": obs,
        "rep_median": median,
        "rep_low": low,
        "rep_high": high,
        "p_value": p_value,
        "within": ~np.isfinite(obs) | ((obs >= low) & (obs <= high)),
    })


# --- PSIS-LOO per trial ----------------------------------------------------------------------


@dataclass(frozen=True)
class TrialLOO:
    """PSIS-LOO with one observation per trial (all its arms and strata).

    Attributes
    ----------
    elpd, se, p : float
        Expected log predictive density, its standard error, effective number of parameters.
    table : pandas.DataFrame
        One row per trial (order of the analysis): ``elpd_i``, ``pareto_k``, ``high_k``.
    pareto_k_max : float
        The flag threshold.
    result : arviz_stats.utils.ELPDData
        arviz-stats' own result (pointwise), for :func:`arviz_stats.compare`.
    method : {"marginal", "conditional"}
        Whether each trial's own parameters (baselines, random effect) were integrated out of
        its likelihood (see :func:`loo_by_trial`).
    """

    elpd: float
    se: float
    p: float
    table: pd.DataFrame
    pareto_k_max: float
    result: Any = field(repr=False)
    method: str = "marginal"

    @property
    def high_k_trials(self) -> tuple[str, ...]:
        """Trials whose Pareto k exceeds the threshold (their LOO estimate is unreliable)."""
        return tuple(self.table.index[self.table["high_k"]])

    def to_dict(self) -> dict[str, Any]:
        """``{elpd, se, p, pareto_k_max, trials {name: {elpd_i, pareto_k, high_k}}}``."""
        return {
            "method": self.method,
            "elpd": _finite(self.elpd),
            "se": _finite(self.se),
            "p": _finite(self.p),
            "pareto_k_max": self.pareto_k_max,
            "high_k_trials": list(self.high_k_trials),
            "trials": {
                str(t): {k: _finite(v) for k, v in row.items()} for t, row in self.table.iterrows()
            },
        }

    def __str__(self) -> str:
        lines = [
            f"PSIS-LOO by trial ({self.method}): elpd {self.elpd:.2f} (SE {self.se:.2f}), "
            f"p_loo {self.p:.2f}",
        ]
        width = max(len(str(t)) for t in self.table.index) + 2
        for trial, row in self.table.iterrows():
            flag = f"  k > {self.pareto_k_max:g}" if row["high_k"] else ""
            lines.append(f"  {trial!s:<{width}}{row['elpd_i']:>8.2f}{row['pareto_k']:>7.2f}{flag}")
        if self.high_k_trials:
            lines.append(
                f"  {len(self.high_k_trials)} of {len(self.table)} trials have Pareto k > "
                f"{self.pareto_k_max:g}: their leave-one-trial-out estimate is unreliable"
                + (
                    " (leaving a trial out leaves its own baselines and random effect to the "
                    "prior; the marginal method integrates them out)."
                    if self.method == "conditional"
                    else "."
                )
            )
        return "\n".join(lines)


def _per_trial_log_likelihood(tree: xr.DataTree) -> xr.Dataset:
    """Sum the pointwise log likelihood over each trial's arms and strata (dim ``trial``)."""
    if "log_likelihood" not in tree.children:
        raise DiagnosticsError("the fit has no 'log_likelihood' group for PSIS-LOO")
    ll = tree["log_likelihood"].to_dataset()
    out = {}
    for name, values in ll.data_vars.items():
        if "row_study" not in values.coords:
            raise DiagnosticsError(f"log likelihood '{name}' has no row_study coordinate")
        extra = [d for d in values.dims if d not in (*SAMPLE_DIMS, "row")]
        per_row = values.sum(extra) if extra else values
        per_trial = per_row.groupby("row_study").sum()
        # groupby sorts the trials; keep the analysis' order (first appearance).
        order = list(dict.fromkeys(np.asarray(values["row_study"].values).astype(str)))
        out[name] = per_trial.sel(row_study=order).rename(row_study="trial")
    return xr.Dataset(out)


# Quadrature of a trial's own parameters. The random effect z ~ N(0, 1) is integrated on a
# fixed grid over +-7 SD (trapezoid rule: spectrally accurate for smooth, fast-decaying
# integrands); a row's baseline log odds on a grid of +-8 standard errors of its observed
# control log odds, where all but a negligible part of the integrand lies; the baseline integral
# is tabulated on a fine grid of treatment effects and interpolated.
Z_GRID = np.linspace(-7.0, 7.0, 281)
BASELINE_POINTS = 401
BASELINE_SPAN = 8.0
THETA_STEP = 0.02


def prior_from_tree(tree: xr.DataTree) -> PriorSet:
    """Rebuild the fit's prior set from the tree's ``prior_json`` attribute."""
    if "prior_json" not in tree.attrs:
        raise DiagnosticsError("the fit does not record its prior set (no prior_json attribute)")
    record = json.loads(tree.attrs["prior_json"])
    slots = {}
    for slot in ("effect", "tau", "baseline", "covariate"):
        entry = dict(record[slot])
        slots[slot] = _FAMILIES[entry.pop("family")](**entry)
    return PriorSet(record["name"], **slots)


def _baseline_integral(
    events: np.ndarray, n: np.ndarray, baseline: Normal, theta: np.ndarray
) -> np.ndarray:
    """Integrate a row's two arms over its baseline ``alpha`` (its prior), at each theta.

    Returns log of E_alpha[Bin(events_c | n_c, expit(alpha - theta / 2))
    Bin(events_t | n_t, expit(alpha + theta / 2))] (arms coded -+1/2,
    :func:`rebayes.model.arm_log_odds`). The integral runs over the control log odds
    ``c = alpha - theta / 2`` (unit Jacobian at fixed theta), which the control arm's data pin
    down whatever theta is; the baseline prior is then evaluated at ``c + theta / 2``.
    """
    (yc, yt), (nc, nt) = events, n
    # Centre the grid on the control arm's log odds (0.5 added so that 0 and n are finite).
    p = (yc + 0.5) / (nc + 1.0)
    se = 1.0 / math.sqrt(max(nc, 1) * p * (1 - p))
    c = special.logit(p) + np.linspace(-BASELINE_SPAN, BASELINE_SPAN, BASELINE_POINTS) * se
    log_c = stats.binom.logpmf(yc, nc, special.expit(c)) + np.log(c[1] - c[0])
    grid = np.arange(theta.min() - THETA_STEP, theta.max() + 2 * THETA_STEP, THETA_STEP)
    log_t = stats.binom.logpmf(yt, nt, special.expit(c[None, :] + grid[:, None]))
    log_prior = stats.norm.logpdf(c[None, :] + grid[:, None] / 2, baseline.mu, baseline.sigma)
    table = special.logsumexp(log_c[None, :] + log_prior + log_t, axis=1)
    return np.interp(theta, grid, table)


def marginal_log_likelihood(tree: xr.DataTree) -> xr.Dataset:
    """Each trial's log likelihood given the global parameters only, per posterior draw.

    ``log p(y_t | d, beta, tau) = log E_z[ prod_s p(y_s | mu_s + tau z) ]`` with, for the
    binomial model, ``p(y_s | theta) = E_a[Bin(control | a) Bin(treat | a + theta)]`` over the
    row's baseline prior: the trial's random effect ``z`` (shared by its strata) and its
    baselines ``a`` are integrated out by quadrature, because leaving a trial out leaves them
    to their priors. Trials are conditionally independent given (d, beta, tau), so PSIS-LOO on
    these terms estimates leave-one-trial-out predictive densities (Merkle, Furr &
    Rabe-Hesketh 2019, "Bayesian comparison of latent variable models: conditional versus
    marginal likelihoods", Psychometrika 84:802-829).

    Parameters
    ----------
    tree : xarray.DataTree
        A fit: ``posterior``, ``constant_data``, ``observed_data`` and, for the binomial model,
        the ``prior_json`` attribute (the baseline prior).

    Returns
    -------
    xarray.Dataset
        The observed variable's name (``events`` or ``log_rr``) with dims
        ``(chain, draw, trial)``.
    """
    posterior = tree["posterior"].to_dataset()
    constant = tree["constant_data"].to_dataset()
    observed = tree["observed_data"].to_dataset()
    mu = linear_predictor(posterior, constant, random=False).transpose(*SAMPLE_DIMS, "row")
    mu_values = mu.values
    tau = posterior["tau"].transpose(*SAMPLE_DIMS).values
    log_w = stats.norm.logpdf(Z_GRID)
    log_w -= special.logsumexp(log_w)
    binomial = "events" in observed
    baseline = prior_from_tree(tree).baseline if binomial else None
    studies = np.asarray(constant["row_study"].values).astype(str)
    trials = list(dict.fromkeys(studies))
    out = np.empty((*tau.shape, len(trials)))
    for j, trial in enumerate(trials):
        total = np.zeros((*tau.shape, Z_GRID.size))
        for s in np.flatnonzero(studies == trial):
            theta = mu_values[..., s, None] + tau[..., None] * Z_GRID
            if binomial:
                assert baseline is not None
                events = observed["events"].values[s]
                total += _baseline_integral(events, constant["n"].values[s], baseline, theta)
            else:
                y, vi = float(observed["log_rr"].values[s]), float(constant["vi"].values[s])
                total += stats.norm.logpdf(y, theta, math.sqrt(vi))
        out[..., j] = special.logsumexp(total + log_w, axis=-1)
    dims = (*SAMPLE_DIMS, "trial")
    coords = {d: posterior[d].values for d in SAMPLE_DIMS} | {"trial": trials}
    name = "events" if binomial else "log_rr"
    return xr.Dataset({name: xr.DataArray(out, dims=dims, coords=coords)})


def loo_by_trial(
    tree: xr.DataTree, thresholds: Thresholds = DEFAULT_THRESHOLDS, marginal: bool = True
) -> TrialLOO:
    """PSIS-LOO of a fit with each trial (all of its arms and strata) as one observation.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit with ``posterior`` and ``log_likelihood`` (dims ``row`` [, ``arm``], with the
        ``row_study`` coordinate), ``constant_data`` and ``observed_data``.
    thresholds : Thresholds
        ``pareto_k_max`` sets the flag.
    marginal : bool
        True (default): each trial's likelihood with its own baselines and random effect
        integrated out (:func:`marginal_log_likelihood`), importance-sampled over the global
        parameters (d, beta, tau). False: the fit's pointwise log likelihood summed over the
        trial's arms and strata; then the trial's own parameters jump from posterior to prior
        when it is left out, and PSIS is unreliable for most trials (Pareto k > 0.7 for 7 to 9
        of 10 trials in a small meta-analysis).

    Returns
    -------
    TrialLOO
    """
    posterior = tree["posterior"].to_dataset()
    if marginal:
        for group in ("log_likelihood", "constant_data", "observed_data"):
            if group not in tree.children:
                raise DiagnosticsError(f"the fit has no '{group}' group for PSIS-LOO")
        log_lik = marginal_log_likelihood(tree)
        # Relative efficiency from the parameters the weights depend on.
        posterior = posterior[[v for v in ("d", "beta", "tau") if v in posterior]]
    else:
        log_lik = _per_trial_log_likelihood(tree)
    loo_tree = xr.DataTree.from_dict({"posterior": posterior, "log_likelihood": log_lik})
    with warnings.catch_warnings():
        # arviz warns about k > 0.7; the table flags each such trial instead.
        warnings.simplefilter("ignore", UserWarning)
        result = azs.loo(loo_tree, pointwise=True)
    k = result.pareto_k.to_series()
    table = pd.DataFrame(
        {"elpd_i": result.elpd_i.to_series(), "pareto_k": k, "high_k": k > thresholds.pareto_k_max}
    )
    table.index.name = "trial"
    return TrialLOO(
        elpd=float(result.elpd),
        se=float(result.se),
        p=float(result.p),
        table=table,
        pareto_k_max=thresholds.pareto_k_max,
        result=result,
        method="marginal" if marginal else "conditional",
    )


@dataclass(frozen=True)
class LOOComparison:
    """PSIS-LOO (by trial) of analyses fitted to the same rows, compared by arviz-stats.

    Attributes
    ----------
    table : pandas.DataFrame
        :func:`arviz_stats.compare`'s table, best analysis first: ``rank``, ``elpd``,
        ``elpd_diff``, ``dse``, ``p``, ``weight`` (stacking), ...
    loos : dict of str to TrialLOO
    """

    table: pd.DataFrame
    loos: dict[str, TrialLOO]

    def to_dict(self) -> dict[str, Any]:
        """``{analyses {name: {rank, elpd, elpd_diff, dse, p, weight, high_k_trials}}}``."""
        out = {}
        for name, row in self.table.iterrows():
            record = {
                c: _finite(row[c])
                for c in ("rank", "elpd", "se", "elpd_diff", "dse", "p", "weight")
                if c in row
            }
            record["high_k_trials"] = list(self.loos[str(name)].high_k_trials)
            out[str(name)] = record
        return {"analyses": out}

    def __str__(self) -> str:
        width = max(len(str(n)) for n in self.table.index) + 2
        lines = [
            "PSIS-LOO by trial, compared (elpd_diff against the best; weights by stacking)",
            f"  {'analysis':<{width}}{'elpd':>9}{'elpd_diff':>11}{'dse':>8}{'weight':>8}  high k",
        ]
        for name, row in self.table.iterrows():
            high = len(self.loos[str(name)].high_k_trials)
            lines.append(
                f"  {name!s:<{width}}{row['elpd']:>9.2f}{row['elpd_diff']:>11.2f}"
                f"{row['dse']:>8.2f}{row['weight']:>8.2f}  {high}"
            )
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """Return the comparison as a markdown table."""
        lines = [
            "| Analysis | elpd (LOO) | elpd diff | SE diff | weight | trials with k > 0.7 |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for name, row in self.table.iterrows():
            loo = self.loos[str(name)]
            lines.append(
                f"| {name} | {row['elpd']:.2f} | {row['elpd_diff']:.2f} | {row['dse']:.2f} "
                f"| {row['weight']:.2f} | {len(loo.high_k_trials)} of {len(loo.table)} |"
            )
        return "\n".join(lines)


def _same_rows(a: xr.DataTree, b: xr.DataTree) -> bool:
    """Whether two fits observed the same data on the same rows."""
    da, db = a["observed_data"].to_dataset(), b["observed_data"].to_dataset()
    return set(da.data_vars) == set(db.data_vars) and all(
        da[v].dims == db[v].dims
        and list(da[v]["row"].values) == list(db[v]["row"].values)
        and np.array_equal(da[v].values, db[v].values)
        for v in da.data_vars
    )


def shared_data_groups(trees: Mapping[str, xr.DataTree]) -> list[list[str]]:
    """Group analyses fitted to the same rows and data (the ones LOO can compare).

    Parameters
    ----------
    trees : mapping of str to xarray.DataTree

    Returns
    -------
    list of list of str
        Groups of two or more analysis names, in the order first met; analyses whose data no
        other analysis shares are left out.

    Examples
    --------
    >>> groups = shared_data_groups({"overall": a, "timing": b, "by_dose": c})   # doctest: +SKIP
    >>> groups                                                                   # doctest: +SKIP
    [['overall', 'timing']]
    """
    groups: list[list[str]] = []
    for name, tree in trees.items():
        for group in groups:
            if _same_rows(trees[group[0]], tree):
                group.append(name)
                break
        else:
            groups.append([name])
    return [g for g in groups if len(g) > 1]


def loo_compare(
    trees: Mapping[str, xr.DataTree],
    thresholds: Thresholds = DEFAULT_THRESHOLDS,
    marginal: bool = True,
) -> LOOComparison:
    """Compare analyses of the same rows by PSIS-LOO with one observation per trial.

    Parameters
    ----------
    trees : mapping of str to xarray.DataTree
        Analysis name -> fit; at least two, all with the same observed data on the same rows
        (e.g. ``overall`` and a subgroup analysis that both sum a trial's strata).
    thresholds : Thresholds
    marginal : bool
        As for :func:`loo_by_trial`.

    Returns
    -------
    LOOComparison

    Raises
    ------
    DiagnosticsError
        Fewer than two analyses, or analyses fitted to different rows or data.
    """
    if len(trees) < 2:
        raise DiagnosticsError("LOO comparison needs at least two analyses")
    names = list(trees)
    first = trees[names[0]]
    for name in names[1:]:
        if not _same_rows(first, trees[name]):
            raise DiagnosticsError(
                f"analyses '{names[0]}' and '{name}' are not fitted to the same rows and data; "
                "LOO can only compare analyses of the same observations"
            )
    loos = {name: loo_by_trial(tree, thresholds, marginal) for name, tree in trees.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        table = azs.compare({name: loo.result for name, loo in loos.items()}, round_to="none")
    return LOOComparison(table=pd.DataFrame(table), loos=loos)
