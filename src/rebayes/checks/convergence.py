"""Can the draws of a fit be trusted? The convergence gates of every quantity reported.

Computed by arviz-stats; this module chooses what to check and against which threshold
(:mod:`rebayes.checks.gates`) and lays the results out for people. :func:`diagnose` checks
every posterior parameter *and* every reported quantity, computed per draw with the functions
of :mod:`rebayes.bayes.quantities` (pooled RR at the control risk p0, P(benefit) as the
indicator 1[benefit] (1[RR > 1], or 1[RR < 1] when the dataset's lower is better), predictive
RR, subgroup RRs and their ratios, trial-specific RRs): rank-normalised split R-hat, bulk and
tail ESS, divergent transitions and E-BFMI per chain. The MCSE of an indicator's mean is the
Monte Carlo error of the probability, which is why P(benefit) is checked as an indicator.

References
----------
Vehtari A, Gelman A, Simpson D, Carpenter B, Bürkner P-C. Rank-normalization, folding, and
localization: an improved R-hat for assessing convergence of MCMC. Bayesian Analysis.
2021;16:667-718. doi:10.1214/20-BA1221.
Betancourt M. Diagnosing suboptimal cotangent disintegrations in Hamiltonian Monte Carlo.
arXiv:1604.00695. 2016.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Any

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr

from rebayes import tables
from rebayes.bayes import quantities
from rebayes.bayes.records import EXACT_WORDS
from rebayes.checks import batched
from rebayes.checks.gates import DEFAULT_THRESHOLDS, Thresholds
from rebayes.data.direction import Direction
from rebayes.errors import RebayesError
from rebayes.store.keys import plain

__all__ = [
    "DiagnosticReport",
    "diagnose",
    "no_chain",
    "reported_quantities",
    "stack_quantities",
    "without_extra_coords",
]

SAMPLE_DIMS = ("chain", "draw")


class DiagnosticsError(RebayesError):
    """A tree lacks what a diagnostic needs, or analyses cannot be compared (one line)."""


def without_extra_coords(values: xr.DataArray) -> xr.DataArray:
    """Drop non-index coordinates (row_study, ...) so that quantities merge into one Dataset."""
    return values.drop_vars([c for c in values.coords if c not in values.dims])


@quantities.per_tree
def reported_quantities(tree: xr.DataTree) -> xr.Dataset:
    """Compute the quantities a fit reports, per draw, with :mod:`rebayes.bayes.quantities`.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit (:attr:`rebayes.Fit.tree`).

    Returns
    -------
    xarray.Dataset
        ``pooled_rr``, ``pooled_or`` (binomial model), ``predictive_rr``,
        ``risk_difference``, the indicators ``p_benefit`` = 1[benefit] (RR > 1, or RR < 1
        when lower is better: :class:`rebayes.data.direction.Direction`), ``p_benefit_beyond_1_1``
        = 1[benefit beyond RR 1.1] (RR > 1.1, or RR < 1/1.1) and ``p_rr_gt_1_1`` = 1[RR > 1.1]
        (their means are the reported probabilities, their MCSEs the Monte Carlo errors of
        those probabilities), ``subgroup_rr[subgroup]`` and
        ``p_subgroup_benefit[subgroup]`` (benefit indicator per subgroup),
        ``subgroup_ratio[ratio]`` with its indicator ``p_ratio_gt_1[ratio]`` where the analysis
        has subgroups, and ``trial_rr[row]``. Computed once per tree
        (:func:`rebayes.bayes.quantities.per_tree`); treat it as read-only.
    """
    rr = quantities.pooled_rr(tree)
    direction = Direction.of(tree)
    out: dict[str, xr.DataArray] = {
        "pooled_rr": rr,
        "p_benefit": direction.is_benefit(rr),
        "p_benefit_beyond_1_1": direction.is_benefit(rr, 1.1),
        "p_rr_gt_1_1": (rr > 1.1).astype(float),
        "predictive_rr": quantities.predictive_rr(tree),
        "risk_difference": quantities.risk_difference(tree),
    }
    odds = quantities.pooled_or(tree)
    if odds is not None:
        out["pooled_or"] = odds
    subgroups = quantities.subgroup_rrs(tree)
    if subgroups:
        out["subgroup_rr"] = xr.concat(
            [without_extra_coords(v) for v in subgroups.values()],
            dim=xr.Variable("subgroup", list(subgroups)),
        )
        # Each subgroup's benefit indicator: its mean is P(benefit | subgroup), whose MCSE the
        # flip rules of a meta-regression need.
        out["p_subgroup_benefit"] = direction.is_benefit(out["subgroup_rr"])
    ratios = quantities.subgroup_ratios(tree)
    if ratios:
        out["subgroup_ratio"] = xr.concat(
            [without_extra_coords(v) for _, _, v in ratios.values()],
            dim=xr.Variable("ratio", list(ratios)),
        )
        out["p_ratio_gt_1"] = (out["subgroup_ratio"] > 1.0).astype(float)
    out["trial_rr"] = quantities.trial_rrs(tree)
    return xr.Dataset({name: without_extra_coords(value) for name, value in out.items()})


def stack_quantities(groups: dict[str, xr.Dataset]) -> tuple[xr.Dataset, list[str], list[str]]:
    """Every scalar quantity of ``groups`` as one (chain, draw, quantity) variable.

    Returns the dataset, arviz's label of each quantity (``alpha[Study A]``) and its kind
    (the group's name). One variable: arviz-stats' summary costs about the same per variable
    whatever its size (measured 0.21 s for 45 quantities in 17 variables, 0.12 s stacked,
    the same numbers).
    """
    values, labels, kinds = [], [], []
    for kind, data in groups.items():
        if data.data_vars:
            values.append(batched.draws_array(data))
        for name, var in data.data_vars.items():
            other = [d for d in var.dims if d not in SAMPLE_DIMS]
            cells = list(itertools.product(*(var[d].values for d in other)))
            labels += [f"{name}[{', '.join(str(c) for c in cell)}]" if other else str(name)
                       for cell in cells]
            kinds += [kind] * len(cells)
    stacked = xr.Dataset({"quantity": ((*SAMPLE_DIMS, "q"), np.concatenate(values, axis=2))})
    return stacked, labels, kinds


def _quantity_table(groups: dict[str, xr.Dataset], thresholds: Thresholds) -> pd.DataFrame:
    """arviz-stats summary of each quantity (``kind``: its group's name), with its gates.

    The mean, sd and interval come from :func:`arviz_stats.summary`; the diagnostics, the
    same estimators, from :func:`rebayes.checks.batched.diagnostics` (all quantities at once:
    arviz-stats' loop over quantities took half a cold report's diagnostics time).
    """
    data, labels, kinds = stack_quantities(groups)
    table = azs.summary(
        data,
        kind="stats",
        ci_kind="eti",
        ci_prob=0.95,
        sample_dims=list(SAMPLE_DIMS),
        round_to="none",
    )
    table = pd.DataFrame(table)
    for name, values in batched.diagnostics(data["quantity"].values).items():
        table[name] = values
    table = table.rename(
        columns={"r_hat": "rhat", "eti95_lb": "ci_low", "eti95_ub": "ci_high"}
    )
    table.index = pd.Index(labels, name="quantity")
    table.insert(0, "kind", kinds)
    # A quantity that never varies (e.g. P(benefit) when every draw is a benefit) has no R-hat
    # or ESS; it cannot fail to converge, so it passes.
    constant = table["sd"].to_numpy(float) == 0
    table["constant"] = constant
    table["rhat_ok"] = (table["rhat"] <= thresholds.rhat_max) | constant
    table["ess_bulk_ok"] = (table["ess_bulk"] >= thresholds.ess_min) | constant
    table["ess_tail_ok"] = (table["ess_tail"] >= thresholds.ess_min) | constant
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
    engine : str
        ``"nuts"``, or ``"exact"`` for a fit the exact engine answered (:func:`no_chain`):
        no Markov chain, so no gates, an empty table and every MCSE 0.
    method : str
        How an exact fit was integrated ("" for NUTS).
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
    engine: str = "nuts"
    method: str = ""

    @property
    def exact(self) -> bool:
        """Whether the exact engine answered: there is no chain to check."""
        return self.engine == "exact"

    def mcse(self, quantity: str) -> float:
        """Return a reported quantity's MCSE: 0 for an exact fit, NaN where none is computed."""
        if self.exact:
            return 0.0
        return float(self.table["mcse_mean"].get(quantity, math.nan))

    @property
    def gates(self) -> dict[str, bool]:
        """Gate name -> passed: ``rhat``, ``ess_bulk``, ``ess_tail``, ``divergences``, ``ebfmi``.

        None for an exact fit: there is no Markov chain to check.
        """
        if self.exact:
            return {}
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
            "ebfmi": [plain(v) for v in self.ebfmi],
            "treedepth_saturated": self.treedepth_saturated,
            # A NUTS record stays as it was; an exact one says what answered.
            **({"engine": self.engine, "method": self.method} if self.exact else {}),
            "quantities": {
                str(name): {c: plain(row[c]) for c in columns}
                for name, row in self.table.iterrows()
            },
        }

    def gate_rows(self) -> list[tuple[str, bool, str]]:
        """(label, passed, observed) per gate, in report order, e.g. for an HTML table."""
        details = self.gate_details()
        return [
            (self.gate_label(name), passed, details[name]) for name, passed in self.gates.items()
        ]

    def _gate_frame(self, fail: str) -> pd.DataFrame:
        """Return gate, result (``pass`` or ``fail``) and observed value, one row per gate."""
        return tables.frame(
            ["Gate", "Result", "Observed"],
            [(label, "pass" if passed else fail, detail)
             for label, passed, detail in self.gate_rows()],
        )

    def _quantity_frame(self) -> pd.DataFrame:
        """Return the reported quantities' mean, MCSE, R-hat and ESS, formatted."""
        shown = self.reported()
        return pd.DataFrame(
            {
                "Quantity": shown.index.astype(str),
                "Mean": [f"{v:.3f}" for v in shown["mean"]],
                "MCSE": [f"{v:.4f}" for v in shown["mcse_mean"]],
                "R-hat": [f"{v:.3f}" for v in shown["rhat"]],
                "ESS bulk": [f"{v:.0f}" for v in shown["ess_bulk"]],
                "ESS tail": [f"{v:.0f}" for v in shown["ess_tail"]],
            }
        )

    def __str__(self) -> str:
        head = f"Diagnostics: {self.analysis}, prior {self.prior}, variant {self.variant}"
        if self.exact:
            return f"{head} -- {EXACT_WORDS}: no Markov chain to check ({self.method})"
        lines = [head + (" -- all gates pass" if self.ok else " -- GATES FAIL")]
        lines.append(tables.text(self._gate_frame(fail="FAIL"), indent="  ", header=False))
        shown = self.reported()
        # The terminal table keeps its lower-case headers; markdown's are capitalised.
        table = self._quantity_frame().rename(columns={"Quantity": "quantity", "Mean": "mean"})
        ok = shown[["rhat_ok", "ess_bulk_ok", "ess_tail_ok"]].all(axis=1).to_numpy()
        table[""] = ["" if good else "<--" for good in ok]
        lines += ["", tables.text(table, align="lrrrrrl", indent="  ")]
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
        if self.exact:
            return f"{EXACT_WORDS}: no Markov chain to check ({self.method})."
        return "\n".join([
            tables.markdown(self._gate_frame(fail="**FAIL**")),
            "",
            tables.markdown(self._quantity_frame(), align="lrrrrr"),
        ])


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
    >>> from rebayes.checks import diagnose
    >>> fit = rb.fit(rb.load_script("models/overall.py"))                 # doctest: +SKIP
    >>> report = diagnose(fit.tree)                                        # doctest: +SKIP
    >>> report.ok, report.gates["rhat"]                                    # doctest: +SKIP
    (True, True)
    """
    for group in ("posterior", "sample_stats"):
        if group not in tree.children:
            raise DiagnosticsError(f"the fit has no '{group}' group to diagnose")
    params = tree["posterior"].to_dataset()
    table = _quantity_table({"parameter": params, "derived": reported_quantities(tree)},
                            thresholds)
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


def no_chain(tree: xr.DataTree) -> DiagnosticReport:
    """Return the diagnostics of a fit the exact engine answered: no Markov chain to check.

    Its draws (:func:`rebayes.bayes.exact_tree.exact_tree`) are independent inverse-CDF
    draws for figures, and every reported number is computed by quadrature, not from them:
    no R-hat, ESS, divergence or E-BFMI gate applies, none fails, and every MCSE is 0.
    """
    params = tree["posterior"].to_dataset()
    attrs = tree.attrs
    return DiagnosticReport(
        table=pd.DataFrame(
            {"kind": pd.Series(dtype=str),
             **{c: pd.Series(dtype=float) for c in ("mean", "sd", "ci_low", "ci_high",
                                                      "mcse_mean", "mcse_sd", "ess_bulk",
                                                      "ess_tail", "rhat")},
             **{c: pd.Series(dtype=bool) for c in ("constant", "rhat_ok", "ess_bulk_ok",
                                                     "ess_tail_ok")}},
            index=pd.Index([], name="quantity", dtype=str)),
        divergences=0,
        n_draws=int(np.prod([params.sizes[d] for d in SAMPLE_DIMS])),
        ebfmi=(),
        analysis=str(attrs.get("analysis", "")),
        prior=str(attrs.get("prior", "")),
        variant=str(attrs.get("variant", "")),
        engine="exact",
        method=str(attrs.get("method", "")),
    )
