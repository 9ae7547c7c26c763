"""How much the answer depends on the prior and on the data variant.

:func:`compare_posteriors` fits one analysis under several prior sets and data variants (the
compiled model is reused: only the data and hyperparameters change) and returns a
:class:`Comparison`:

- ``table``: one row per prior x variant with the pooled RR (median, 95% interval),
  P(benefit), P(benefit beyond RR 1.1), P(RR > 1.1), tau, the predictive RR interval,
  subgroup ratios, the Savage-Dickey Bayes factor for ``d = 0`` and whether the convergence
  gates pass;
- ``psense``: power-scaling sensitivity (Kallioinen et al. 2024) of each fit, from its
  ``log_prior`` and ``log_likelihood`` groups: which quantities move when the prior, or the
  likelihood, is made slightly stronger or weaker;
- ``bayes_factor``: Savage-Dickey BF01 = p(d = 0 | y) / p(d = 0) (Wagenmakers et al. 2010),
  the prior density exact and the posterior density a kernel estimate with its Monte Carlo
  interval (:mod:`rebayes.bayes_factor`), and the same for each meta-regression coefficient
  (``beta = 0``: no subgroup difference); reported as BF01 only, and only among fits of one
  likelihood;
- ``flips``: plain sentences saying where a conclusion (P(benefit) > 0.95, ...) holds under
  some priors or variants and not others.

Benefit follows the dataset's direction (:class:`rebayes.direction.Direction`, stamped on
every fit): when fewer events is better, P(benefit) = P(RR < 1), the benefit beyond 1.1 is
RR < 1/1.1 and the interval rule asks for a pooled RR interval below 1.

References
----------
Kallioinen N, Paananen T, Bürkner P-C, Vehtari A. Detecting and diagnosing prior and
likelihood sensitivity with power-scaling. Stat Comput. 2024;34:57.
doi:10.1007/s11222-023-10366-5.
Wagenmakers E-J, Lodewyckx T, Kuriyal H, Grasman R. Bayesian hypothesis testing for
psychologists: a tutorial on the Savage-Dickey method. Cogn Psychol. 2010;60:158-189.
doi:10.1016/j.cogpsych.2009.12.001.
Lee MD, Wagenmakers E-J. Bayesian Cognitive Modeling. Cambridge University Press; 2013
(evidence categories of Bayes factors, after Jeffreys 1961).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import arviz_stats as azs
import pandas as pd
import xarray as xr

from rebayes import effects
from rebayes.bayes_factor import BayesFactor, check_one_likelihood, savage_dickey
from rebayes.diagnostics import DiagnosticReport, _finite, reported_quantities
from rebayes.direction import Direction
from rebayes.errors import RebayesError
from rebayes.priors import PriorSet
from rebayes.spec import AnalysisSpec

if TYPE_CHECKING:
    from rebayes.effects import FitSummary
    from rebayes.inference import Fit, SamplerSettings

__all__ = [
    "BayesFactor",
    "Comparison",
    "ComparedFit",
    "Conclusion",
    "PriorSensitivity",
    "Rule",
    "assess",
    "compare_fits",
    "compare_posteriors",
    "default_rules",
    "decision_table",
    "find_flips",
    "implied_prior_rr",
    "prior_sensitivity",
    "savage_dickey",
]

PSENSE_THRESHOLD = 0.05  # Kallioinen et al. (2024): CJS distance above 0.05 is sensitive


# --- power-scaling sensitivity -------------------------------------------------------------


@dataclass(frozen=True)
class PriorSensitivity:
    """Power-scaling sensitivity of one fit (arviz-stats ``psense_summary``).

    Attributes
    ----------
    table : pandas.DataFrame
        One row per quantity: ``prior`` and ``likelihood`` sensitivity (CJS distance per unit
        log power) and arviz-stats' ``diagnosis``.
    threshold : float
        Sensitivity above which a quantity counts as sensitive (0.05).
    """

    table: pd.DataFrame
    threshold: float = PSENSE_THRESHOLD

    @property
    def prior_sensitive(self) -> tuple[str, ...]:
        """Quantities that move when the prior is power-scaled."""
        return tuple(self.table.index[self.table["prior"] >= self.threshold])

    @property
    def likelihood_sensitive(self) -> tuple[str, ...]:
        """Quantities that move when the likelihood is power-scaled (the data inform them)."""
        return tuple(self.table.index[self.table["likelihood"] >= self.threshold])

    @property
    def weak_likelihood(self) -> tuple[str, ...]:
        """Prior-sensitive quantities that the data hardly inform (strong prior, weak data)."""
        return tuple(q for q in self.prior_sensitive if q not in self.likelihood_sensitive)

    @property
    def conflict(self) -> tuple[str, ...]:
        """Quantities sensitive to both: a possible prior-data conflict."""
        return tuple(q for q in self.prior_sensitive if q in self.likelihood_sensitive)

    def sentence(self) -> str:
        """Plain words on what the prior drives."""
        if not self.prior_sensitive:
            return (
                f"No quantity is prior-sensitive (power-scaling sensitivity < {self.threshold:g}): "
                "the data, not the prior, drive the posterior."
            )

        def listed(names: Iterable[str]) -> str:
            return ", ".join(f"{q} ({self.table.loc[q, 'prior']:.3f})" for q in names)

        parts = []
        if self.weak_likelihood:
            parts.append(
                f"prior-sensitive with a weak likelihood: {listed(self.weak_likelihood)} "
                "(the prior, not the data, shapes them)"
            )
        if self.conflict:
            parts.append(
                f"sensitive to both prior and likelihood: {listed(self.conflict)} "
                "(possible prior-data conflict)"
            )
        if len(self.prior_sensitive) < len(self.table):
            parts.append("the other quantities are not prior-sensitive")
        text = "; ".join(parts)
        return text[:1].upper() + text[1:] + "."

    def to_dict(self) -> dict[str, Any]:
        """``{threshold, quantities {name: {prior, likelihood, diagnosis}}, sentence}``."""
        return {
            "threshold": self.threshold,
            "quantities": {
                str(q): {
                    "prior": _finite(row["prior"]),
                    "likelihood": _finite(row["likelihood"]),
                    "diagnosis": str(row["diagnosis"]),
                }
                for q, row in self.table.iterrows()
            },
            "prior_sensitive": list(self.prior_sensitive),
            "likelihood_sensitive": list(self.likelihood_sensitive),
            "weak_likelihood": list(self.weak_likelihood),
            "conflict": list(self.conflict),
            "sentence": self.sentence(),
        }


@contextlib.contextmanager
def _quiet_psense() -> Iterator[None]:
    """Silence arviz-stats' logged advice: the sentence of PriorSensitivity says it instead."""
    logger = logging.getLogger("arviz_stats.psense")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def prior_sensitivity(tree: xr.DataTree, threshold: float = PSENSE_THRESHOLD) -> PriorSensitivity:
    """Power-scaling prior and likelihood sensitivity of the quantities people read.

    Parameters
    ----------
    tree : xarray.DataTree
        A fit with ``posterior``, ``log_prior`` and ``log_likelihood``.
    threshold : float

    Returns
    -------
    PriorSensitivity
        For ``d``, ``beta``, ``tau``, the pooled and predictive RR and any subgroup RRs and
        ratios. The prior is power-scaled as a whole (every slot of the prior set), as
        priorsense does by default.
    """
    for group in ("posterior", "log_prior", "log_likelihood"):
        if group not in tree.children:
            raise RebayesError(f"power-scaling sensitivity needs the fit's '{group}' group")
    posterior = tree["posterior"].to_dataset()
    # Derived RRs need a fit's constant data; a bare tree is checked on its parameters.
    derived = reported_quantities(tree) if "constant_data" in tree.children else xr.Dataset()
    keep = [v for v in ("d", "beta", "tau") if v in posterior]
    wanted = ("pooled_rr", "predictive_rr", "subgroup_rr", "subgroup_ratio")
    quantities = xr.merge(
        [posterior[keep], derived[[v for v in wanted if v in derived]]], compat="override"
    )
    psense_tree = xr.DataTree.from_dict(
        {
            "posterior": quantities,
            "log_prior": tree["log_prior"].to_dataset(),
            "log_likelihood": tree["log_likelihood"].to_dataset(),
        }
    )
    with _quiet_psense():
        table = azs.psense_summary(psense_tree, threshold=threshold, round_to=6)
    return PriorSensitivity(table=pd.DataFrame(table), threshold=threshold)


# --- prior-implied quantities ---------------------------------------------------------------


def _prior_as_posterior(tree: xr.DataTree) -> xr.DataTree:
    """Return a tree whose ``posterior`` is the prior group, for effects.* to evaluate."""
    groups = {"posterior": tree["prior"].to_dataset()}
    for name in ("constant_data", "observed_data"):
        if name in tree.children:
            groups[name] = tree[name].to_dataset()
    out = xr.DataTree.from_dict(groups)
    out.attrs = dict(tree.attrs)
    return out


def implied_prior_rr(tree: xr.DataTree) -> xr.DataArray:
    """Return the pooled RR implied by the prior, per prior draw, at the typical control risk.

    The same function of the draws as the posterior pooled RR
    (:func:`rebayes.effects.pooled_rr`), applied to the ``prior`` group: what the prior set
    says about the RR before seeing the data.
    """
    if "prior" not in tree.children:
        raise RebayesError("the fit has no 'prior' group")
    return effects.pooled_rr(_prior_as_posterior(tree))


# --- conclusions that flip -----------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A conclusion drawn from one column of the comparison table: ``column > threshold``.

    With ``sense="below"`` the conclusion is ``column < threshold`` instead.

    Attributes
    ----------
    label : str
        How the conclusion reads (``"P(benefit) > 0.95"``).
    column : str
        Table column.
    threshold : float
    mcse_column : str, optional
        Column holding the value's Monte Carlo standard error; a value within two MCSEs of
        the threshold is called out.
    digits : int
        Decimals when printing values.
    sense : {"above", "below"}
        Whether the conclusion holds above the threshold or below it.
    """

    label: str
    column: str
    threshold: float
    mcse_column: str | None = None
    digits: int = 3
    sense: Literal["above", "below"] = "above"

    def holds(self, value: float) -> bool:
        """Whether the conclusion holds for a value of the column."""
        return bool(value > self.threshold if self.sense == "above" else value < self.threshold)


def default_rules(table: pd.DataFrame, direction: Direction | None = None) -> tuple[Rule, ...]:
    """Return the conclusions a reader of a meta-analysis draws, for the table's columns.

    Parameters
    ----------
    table : pandas.DataFrame
        A comparison table (or any table with some of its columns).
    direction : Direction, optional
        Which side of RR = 1 is benefit; default ``table.attrs["direction"]``, else higher
        is better. It sets the rules on the benefit beyond RR 1.1 (column
        ``p_benefit_beyond_1_1``; a table without it falls back on ``p_rr_gt_1_1`` when
        higher is better) and on the pooled RR's interval (above 1, or below 1).

    A meta-regression with subgroups (columns ``p_subgroup_benefit[name]``) is judged by
    ``P(benefit in <subgroup>) > 0.95`` per subgroup and by its ratios, never by its row
    average.
    """
    direction = direction or table.attrs.get("direction") or Direction()
    beyond = "p_benefit_beyond_1_1"
    if beyond not in table.columns and direction.higher_is_better:
        beyond = "p_rr_gt_1_1"
    if direction.higher_is_better:
        interval = Rule("the 95% interval of the pooled RR lies above 1", "rr_low", 1.0, digits=2)
    else:
        interval = Rule(
            "the 95% interval of the pooled RR lies below 1",
            "rr_high",
            1.0,
            digits=2,
            sense="below",
        )
    rules = [
        Rule("P(benefit) > 0.95", "p_benefit", 0.95, "p_benefit_mcse"),
        Rule(f"P({direction.beyond(1.1)}) > 0.5", beyond, 0.5, f"{beyond}_mcse"),
        interval,
        Rule(
            "the Bayes factor favours an effect (BF01 for d = 0 below 1)",
            "bf01_d",
            1.0,
            "bf01_d_mcse",
            digits=2,
            sense="below",
        ),
    ]
    subgroups = [c[len("p_subgroup_benefit[") : -1] for c in table.columns
                 if c.startswith("p_subgroup_benefit[")]
    if subgroups:
        # A meta-regression's "pooled" RR is only a row average of its subgroups (weighted by
        # their numbers of rows), and its d the reference level's effect: its conclusions are
        # the subgroups' own.
        rules = [
            Rule(f"P(benefit in {name}) > 0.95", f"p_subgroup_benefit[{name}]", 0.95,
                 f"p_subgroup_benefit_mcse[{name}]")
            for name in subgroups
        ]
    for column in table.columns:
        if column.startswith("p_ratio_gt_1[") and column.endswith("]"):
            name = column[len("p_ratio_gt_1[") : -1]
            mcse = f"p_ratio_gt_1_mcse[{name}]"
            rules.append(Rule(f"P(RR ratio {name} > 1) > 0.95", column, 0.95, mcse))
    return tuple(r for r in rules if r.column in table.columns)


class Outcome(NamedTuple):
    """One row of the comparison table judged by one rule."""

    prior: str
    variant: str
    value: float
    holds: bool
    near: bool  # within two Monte Carlo standard errors of the threshold


@dataclass(frozen=True)
class Conclusion:
    """Whether one rule holds in each row of the comparison table.

    Attributes
    ----------
    rule : Rule
    rows : tuple of Outcome
        Per row: prior, variant, value, whether the rule holds, and whether the value is
        within two Monte Carlo standard errors of the threshold.
    """

    rule: Rule
    rows: tuple[Outcome, ...]

    @property
    def _valid(self) -> list[Outcome]:
        return [r for r in self.rows if not math.isnan(r.value)]

    @property
    def flips(self) -> bool:
        """Whether the conclusion holds in some rows and not in others."""
        return len({r.holds for r in self._valid}) > 1

    @property
    def dimension(self) -> str:
        """What varies between the rows: ``prior``, ``data variant``, or both."""
        priors = {r.prior for r in self.rows}
        variants = {r.variant for r in self.rows}
        if len(variants) <= 1:
            return "prior"
        if len(priors) <= 1:
            return "data variant"
        return "prior and data variant"

    def _label(self, row: Outcome) -> str:
        return {
            "prior": row.prior,
            "data variant": row.variant,
            "prior and data variant": f"{row.prior} ({row.variant} data)",
        }[self.dimension]

    def _span(self, rows: list[Outcome]) -> str:
        d = self.rule.digits
        low, high = min(r.value for r in rows), max(r.value for r in rows)
        same = f"{low:.{d}f}" == f"{high:.{d}f}"
        return f"{low:.{d}f}" if same else f"{low:.{d}f} to {high:.{d}f}"

    def _grouped(self, rows: list[Outcome], key: str | None) -> str:
        """``name (value)`` per group of rows, flagging values near the threshold."""
        groups: dict[str, list[Outcome]] = {}
        for r in rows:
            groups.setdefault(getattr(r, key) if key else self._label(r), []).append(r)
        return ", ".join(
            f"{name} ({self._span(members)}"
            + (", within Monte Carlo error" if any(m.near for m in members) else "")
            + ")"
            for name, members in groups.items()
        )

    def to_dataframe(self) -> pd.DataFrame:
        """Value per prior (rows) and data variant (columns), in the table's order."""
        frame = pd.DataFrame(self.rows)
        table = frame.pivot(index="prior", columns="variant", values="value")
        return table.loc[list(dict.fromkeys(frame["prior"])),
                         list(dict.fromkeys(frame["variant"]))]

    def sentence(self) -> str:
        """Plain words.

        E.g. ``"P(benefit) > 0.95 under weakly_informative (0.961) but not under skeptical
        (0.930)."``
        """
        label = self.rule.label[:1].upper() + self.rule.label[1:]
        rows = self._valid
        if not rows:
            return f"{label}: not available."
        yes = [r for r in rows if r.holds]
        no = [r for r in rows if not r.holds]
        if not (yes and no):
            which = "every" if yes else "no"
            near = [self._label(r) for r in rows if r.near]
            caveat = (
                f"; {', '.join(near)} within Monte Carlo error of {self.rule.threshold:g}"
                if near
                else ""
            )
            return f"{label} under {which} {self.dimension} ({self._span(rows)}{caveat})."
        if self.dimension == "prior and data variant":
            # Say which of the two drives the flip when one of them alone does.
            by_prior: dict[str, set[bool]] = {}
            by_variant: dict[str, set[bool]] = {}
            for r in rows:
                by_prior.setdefault(r.prior, set()).add(r.holds)
                by_variant.setdefault(r.variant, set()).add(r.holds)
            if all(len(v) == 1 for v in by_prior.values()):
                return (
                    f"{label} under {self._grouped(yes, 'prior')} but not under "
                    f"{self._grouped(no, 'prior')}, whichever the data variant."
                )
            if all(len(v) == 1 for v in by_variant.values()):
                return (
                    f"{label} with the {self._grouped(yes, 'variant')} data but not with the "
                    f"{self._grouped(no, 'variant')} data, whichever the prior."
                )
        return f"{label} under {self._grouped(yes, None)} but not under {self._grouped(no, None)}."

    def to_dict(self) -> dict[str, Any]:
        """``{rule, column, threshold, flips, sentence, rows [{prior, variant, value, ...}]}``."""
        return {
            "rule": self.rule.label,
            "column": self.rule.column,
            "threshold": self.rule.threshold,
            "flips": self.flips,
            "sentence": self.sentence(),
            "rows": [
                {
                    "prior": r.prior,
                    "variant": r.variant,
                    "value": None if math.isnan(r.value) else r.value,
                    "holds": r.holds,
                    "near_threshold": r.near,
                }
                for r in self.rows
            ],
        }


def assess(
    table: pd.DataFrame,
    rules: Sequence[Rule] | None = None,
    direction: Direction | None = None,
) -> tuple[Conclusion, ...]:
    """Evaluate each rule in each row of a comparison table.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows prior x variant with columns ``prior``, ``variant`` (optional) and the rules'
        columns.
    rules : sequence of Rule, optional
        Default :func:`default_rules` (for ``direction``).
    direction : Direction, optional
        Which side of RR = 1 is benefit, for the default rules.

    Returns
    -------
    tuple of Conclusion
    """
    rules = default_rules(table, direction) if rules is None else tuple(rules)
    out = []
    for rule in rules:
        rows = []
        for _, record in table.iterrows():
            value = float(record[rule.column])
            mcse = (
                float(record[rule.mcse_column])
                if rule.mcse_column is not None and rule.mcse_column in record
                else math.nan
            )
            rows.append(
                Outcome(
                    prior=str(record["prior"]),
                    variant=str(record.get("variant", "")),
                    value=value,
                    holds=rule.holds(value),
                    near=math.isfinite(mcse) and abs(value - rule.threshold) < 2 * mcse,
                )
            )
        out.append(Conclusion(rule, tuple(rows)))
    return tuple(out)


def decision_table(comparisons: Sequence[Comparison]) -> pd.DataFrame:
    """P(benefit) and P(benefit beyond RR 1.1) of every analysis, prior and data variant.

    Parameters
    ----------
    comparisons : sequence of Comparison
        One per analysis, in the order to show.

    Returns
    -------
    pandas.DataFrame
        ``label`` (the analysis's name; for a meta-regression or separate subgroup effects,
        one row per subgroup, ``"<name>: <subgroup>"``, never its row average), ``analysis``,
        ``variant``, ``prior``, ``p_benefit``, ``p_beyond``.
    """
    records = []
    for c in comparisons:
        title = c.analysis.replace("_", " ")
        t = c.table
        subgroups = [col[len("p_subgroup_benefit["):-1] for col in t.columns
                     if col.startswith("p_subgroup_benefit[")]
        for row in t.to_dict(orient="records"):
            if subgroups:
                for g in subgroups:
                    records.append({
                        "label": f"{title}: {g.replace('_', ' ')}", "analysis": c.analysis,
                        "variant": row["variant"], "prior": row["prior"],
                        "p_benefit": row[f"p_subgroup_benefit[{g}]"],
                        "p_beyond": row.get(f"p_subgroup_beyond_1_1[{g}]", math.nan),
                    })
            else:
                records.append({
                    "label": title, "analysis": c.analysis, "variant": row["variant"],
                    "prior": row["prior"], "p_benefit": row["p_benefit"],
                    "p_beyond": row["p_benefit_beyond_1_1"],
                })
    return pd.DataFrame.from_records(
        records, columns=["label", "analysis", "variant", "prior", "p_benefit", "p_beyond"])


def find_flips(table: pd.DataFrame, rules: Sequence[Rule] | None = None) -> tuple[str, ...]:
    """Sentences for the conclusions that hold under some rows of the table and not others.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.DataFrame({"prior": ["weakly_informative", "skeptical"],
    ...                   "variant": ["published", "published"], "p_benefit": [0.961, 0.93]})
    >>> find_flips(t, [Rule("P(benefit) > 0.95", "p_benefit", 0.95)])[0]
    'P(benefit) > 0.95 under weakly_informative (0.961) but not under skeptical (0.930).'
    """
    return tuple(c.sentence() for c in assess(table, rules) if c.flips)


# --- the comparison ------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ComparedFit:
    """One row of a comparison: a fit and everything computed from it.

    Attributes
    ----------
    prior, variant : str
    fit : rebayes.Fit
    summary : FitSummary
    diagnostics : DiagnosticReport
    sensitivity : PriorSensitivity
    bayes_factors : tuple of BayesFactor
    """

    prior: str
    variant: str
    fit: Fit = field(repr=False)
    summary: FitSummary = field(repr=False)
    diagnostics: DiagnosticReport = field(repr=False)
    sensitivity: PriorSensitivity = field(repr=False)
    bayes_factors: tuple[BayesFactor, ...] = ()

    @property
    def tree(self) -> xr.DataTree:
        """The fit's DataTree."""
        return self.fit.tree

    @property
    def prior_set(self) -> PriorSet:
        """The prior set of the fit."""
        return self.fit.prior

    def to_dict(self) -> dict[str, Any]:
        """Summary, diagnostics, sensitivity and Bayes factors of this fit."""
        return {
            "prior": self.prior,
            "variant": self.variant,
            "prior_summary": self.fit.prior.summary,
            "summary": self.summary.to_dict(),
            "diagnostics": self.diagnostics.to_dict(),
            "psense": self.sensitivity.to_dict(),
            "bayes_factors": [bf.to_dict() for bf in self.bayes_factors],
        }


def _row(compared: ComparedFit) -> dict[str, Any]:
    """Return the comparison-table row of one fit."""
    s, diag = compared.summary, compared.diagnostics
    mcse = diag.table["mcse_mean"]
    row: dict[str, Any] = {
        "prior": compared.prior,
        "variant": compared.variant,
        "rr_median": s.pooled_rr.median,
        "rr_low": s.pooled_rr.ci_low,
        "rr_high": s.pooled_rr.ci_high,
        "p_benefit": s.p_benefit,
        "p_benefit_mcse": float(mcse.get("p_benefit", math.nan)),
        "p_benefit_beyond_1_1": s.p_benefit_beyond_1_1,
        "p_benefit_beyond_1_1_mcse": float(mcse.get("p_benefit_beyond_1_1", math.nan)),
        "p_rr_gt_1_1": s.p_rr_gt_1_1,
        "p_rr_gt_1_1_mcse": float(mcse.get("p_rr_gt_1_1", math.nan)),
        "tau_median": s.tau.median,
        "pred_low": s.predictive_rr.ci_low,
        "pred_high": s.predictive_rr.ci_high,
    }
    for group in s.subgroups:
        row[f"p_subgroup_benefit[{group.name}]"] = group.p_benefit
        row[f"p_subgroup_beyond_1_1[{group.name}]"] = group.p_benefit_beyond_1_1
        row[f"p_subgroup_benefit_mcse[{group.name}]"] = float(
            mcse.get(f"p_subgroup_benefit[{group.name}]", math.nan)
        )
    for ratio in s.ratios:
        row[f"ratio_median[{ratio.name}]"] = ratio.ratio.median
        row[f"ratio_low[{ratio.name}]"] = ratio.ratio.ci_low
        row[f"ratio_high[{ratio.name}]"] = ratio.ratio.ci_high
        row[f"p_ratio_gt_1[{ratio.name}]"] = ratio.p_gt_1
        row[f"p_ratio_gt_1_mcse[{ratio.name}]"] = float(
            mcse.get(f"p_ratio_gt_1[{ratio.name}]", math.nan)
        )
    by_name = {bf.parameter: bf for bf in compared.bayes_factors}
    if "d" in by_name:
        bf = by_name["d"]
        row["bf01_d"] = bf.bf01
        row["bf01_d_mcse"] = bf.bf01_mcse
        row["bf01_d_low"] = bf.bf01_low
        row["bf01_d_high"] = bf.bf01_high
    row["diagnostics_ok"] = diag.ok
    return row


@dataclass(frozen=True, eq=False)
class Comparison:
    """One analysis under several priors and data variants.

    Attributes
    ----------
    analysis, title : str
    priors, variants : tuple of str
        In the order fitted.
    table : pandas.DataFrame
        One row per prior x variant: ``prior``, ``variant``, ``rr_median``, ``rr_low``,
        ``rr_high`` (pooled RR at the typical control risk), ``p_benefit`` (P(benefit):
        P(RR > 1), or P(RR < 1) when lower is better) and its ``p_benefit_mcse``,
        ``p_benefit_beyond_1_1`` (P(RR > 1.1), or P(RR < 1/1.1)) and its MCSE,
        ``p_rr_gt_1_1`` (literally P(RR > 1.1); and MCSE), ``tau_median``, ``pred_low``,
        ``pred_high`` (95% predictive RR interval), per subgroup ratio
        ``ratio_median[name]``, ``ratio_low[name]``, ``ratio_high[name]``,
        ``p_ratio_gt_1[name]`` and its ``p_ratio_gt_1_mcse[name]``, then ``bf01_d``,
        ``bf01_d_mcse``, ``bf01_d_low``, ``bf01_d_high`` (Savage-Dickey BF01 for d = 0 and
        its Monte Carlo interval; only when d is a scalar) and ``diagnostics_ok``.
    fits : tuple of ComparedFit
        The rows' fits, in table order.
    conclusions : tuple of Conclusion
        Each rule evaluated in each row.
    direction : Direction
        Which side of RR = 1 is benefit, and the labels of outcome and arms.
    """

    analysis: str
    title: str
    priors: tuple[str, ...]
    variants: tuple[str, ...]
    table: pd.DataFrame
    fits: tuple[ComparedFit, ...]
    conclusions: tuple[Conclusion, ...]
    direction: Direction = field(default=Direction())

    @property
    def flips(self) -> tuple[str, ...]:
        """Sentences for conclusions that change with the prior or the data variant."""
        return tuple(c.sentence() for c in self.conclusions if c.flips)

    @property
    def stable(self) -> tuple[str, ...]:
        """Sentences for conclusions that hold (or fail) under every prior and variant."""
        return tuple(c.sentence() for c in self.conclusions if not c.flips)

    @property
    def psense(self) -> dict[tuple[str, str], PriorSensitivity]:
        """(prior, variant) -> power-scaling sensitivity of that fit."""
        return {(f.prior, f.variant): f.sensitivity for f in self.fits}

    @property
    def bayes_factor(self) -> dict[tuple[str, str], tuple[BayesFactor, ...]]:
        """(prior, variant) -> Savage-Dickey Bayes factors of that fit."""
        return {(f.prior, f.variant): f.bayes_factors for f in self.fits}

    @property
    def diagnostics_ok(self) -> bool:
        """Whether every fit passes every convergence gate."""
        return all(f.diagnostics.ok for f in self.fits)

    @property
    def diagnostic_failures(self) -> tuple[str, ...]:
        """``"prior / variant: gate fails: ..."`` for every failing gate of every fit."""
        return tuple(
            f"{f.prior} / {f.variant}: {failure}"
            for f in self.fits
            for failure in f.diagnostics.failures
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: table rows, flips, stable conclusions and each fit's details."""
        records = [
            {k: _finite(v) for k, v in row.items()} for row in self.table.to_dict(orient="records")
        ]
        return {
            "analysis": self.analysis,
            "title": self.title,
            "direction": self.direction.to_dict(),
            "priors": list(self.priors),
            "variants": list(self.variants),
            "table": records,
            "flips": list(self.flips),
            "stable": list(self.stable),
            "conclusions": [c.to_dict() for c in self.conclusions],
            "diagnostics_ok": self.diagnostics_ok,
            "diagnostic_failures": list(self.diagnostic_failures),
            "fits": [f.to_dict() for f in self.fits],
        }

    def _ratio_names(self) -> list[str]:
        prefix = "ratio_median["
        return [c[len(prefix) : -1] for c in self.table.columns if c.startswith(prefix)]

    def _cells(self, row: pd.Series) -> list[str]:
        """Format the cells of one table row (shared by __str__ and to_markdown)."""
        cells = [
            str(row["prior"]),
            str(row["variant"]),
            f"{row['rr_median']:.2f} ({row['rr_low']:.2f} to {row['rr_high']:.2f})",
            f"{row['p_benefit']:.3f}",
            f"{row[self._beyond_column]:.3f}",
            f"{row['tau_median']:.2f}",
            f"{row['pred_low']:.2f} to {row['pred_high']:.2f}",
        ]
        for name in self._ratio_names():
            cells.append(
                f"{row[f'ratio_median[{name}]']:.2f} ({row[f'ratio_low[{name}]']:.2f} to "
                f"{row[f'ratio_high[{name}]']:.2f}); P(>1) {row[f'p_ratio_gt_1[{name}]']:.3f}"
            )
        if "bf01_d" in self.table:
            cells.append(
                f"{row['bf01_d']:.2f} ({row['bf01_d_low']:.2f} to {row['bf01_d_high']:.2f})"
            )
        cells.append("ok" if row["diagnostics_ok"] else "FAIL")
        return cells

    @property
    def _beyond_column(self) -> str:
        """The column of P(benefit beyond RR 1.1) (older tables: ``p_rr_gt_1_1``)."""
        if "p_benefit_beyond_1_1" in self.table:
            return "p_benefit_beyond_1_1"
        return "p_rr_gt_1_1"

    def _headers(self) -> list[str]:
        d = self.direction
        return [
            "prior",
            "variant",
            "pooled RR (95% CrI)",
            f"P({d.benefit})".replace(" ", ""),
            f"P({d.beyond(1.1)})".replace(" ", ""),
            "tau",
            "predictive RR 95%",
            *[f"RR ratio {name}" for name in self._ratio_names()],
            *([f"BF01 (d=0, {self._effect_scale})"] if "bf01_d" in self.table else []),
            "diagnostics",
        ]

    @property
    def _effect_scale(self) -> str:
        """The one effect scale of the fits' Bayes factors (``log OR`` or ``log RR``)."""
        scales = {bf.effect_scale for f in self.fits for bf in f.bayes_factors}
        return next(iter(scales)) if len(scales) == 1 else "log OR"

    def _what(self) -> str:
        """``RR of tuberculosis, BCG over no vaccine (benefit: RR < 1)``."""
        d = self.direction
        return f"RR of {d.outcome}, {d.treatment} over {d.control} (benefit: {d.benefit})"

    def __str__(self) -> str:
        headers = self._headers()
        rows = [self._cells(r) for _, r in self.table.iterrows()]
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
        lines = [
            f"{self.analysis}" + (f": {self.title}" if self.title else ""),
            f"Posterior across priors and data variants ({self._what()}, at the typical "
            "control risk; tau on the model's effect scale)",
            self.direction.sentence(),
            "",
            "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip(),
        ]
        lines += [
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        ]
        lines += ["", "Conclusions:"]
        lines += [f"  - {s}" for s in (*self.flips, *self.stable)]
        lines += ["", "Prior sensitivity (power-scaling) and Bayes factors:"]
        for f in self.fits:
            lines.append(f"  {f.prior} / {f.variant}: {f.sensitivity.sentence()}")
            lines += [f"      {bf}" for bf in f.bayes_factors]
        if not self.diagnostics_ok:
            lines += ["", "Diagnostics FAIL:"] + [f"  - {x}" for x in self.diagnostic_failures]
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """Table, conclusions, sensitivity and Bayes factors as markdown."""
        headers = self._headers()
        lines = [
            "| " + " | ".join(headers) + " |",
            "|" + "|".join("---" if i < 2 else "---:" for i in range(len(headers))) + "|",
        ]
        for _, row in self.table.iterrows():
            cells = self._cells(row)
            if cells[-1] == "FAIL":
                cells[-1] = "**FAIL**"
            lines.append("| " + " | ".join(cells) + " |")
        lines += [
            "",
            f"RR: {self.direction.ratio_label} at the typical control risk; "
            f"{self.direction.sentence()} CrI: equal-tailed credible interval; BF01: "
            f"Savage-Dickey Bayes factor for d = 0 on the {self._effect_scale} scale (> 1 "
            "favours no effect), with its Monte Carlo interval (+- 2 MCSE); evidence words "
            "only when the whole interval lies in one band.",
            "",
        ]
        if self.flips:
            lines += ["**Conclusions that change with the prior or data variant:**", ""]
            lines += [f"- {s}" for s in self.flips]
            lines.append("")
        if self.stable:
            lines += ["**Conclusions that do not change:**", ""]
            lines += [f"- {s}" for s in self.stable]
            lines.append("")
        lines += [
            "**Prior sensitivity (power-scaling, Kallioinen et al. 2024) and Bayes factors:**",
            "",
        ]
        for f in self.fits:
            bfs = "; ".join(str(bf) for bf in f.bayes_factors)
            lines.append(f"- *{f.prior} / {f.variant}*: {f.sensitivity.sentence()} {bfs}")
        return "\n".join(lines)


def compare_fits(fits: Sequence[Fit], rules: Sequence[Rule] | None = None) -> Comparison:
    """Build a :class:`Comparison` from fits already made (one analysis, any priors/variants).

    Parameters
    ----------
    fits : sequence of rebayes.Fit
        Fits of the same analysis.
    rules : sequence of Rule, optional
        Conclusions to check; default :func:`default_rules`.

    Returns
    -------
    Comparison
    """
    if not fits:
        raise RebayesError("nothing to compare: no fits")
    names = {f.spec.name for f in fits}
    if len(names) > 1:
        raise RebayesError(f"compare one analysis at a time, not {', '.join(sorted(names))}")
    compared = []
    for f in fits:
        compared.append(
            ComparedFit(
                prior=f.prior.name,
                variant=f.design.variant,
                fit=f,
                summary=f.summary(),
                diagnostics=f.diagnostics(),
                sensitivity=prior_sensitivity(f.tree),
                bayes_factors=savage_dickey(f.tree),
            )
        )
    check_one_likelihood(bf for c in compared for bf in c.bayes_factors)
    directions = {Direction.of(f.tree) for f in fits}
    if len(directions) > 1:
        raise RebayesError(
            "the fits disagree on the direction of benefit or its labels: "
            + "; ".join(sorted(d.sentence() for d in directions))
        )
    (direction,) = directions
    table = pd.DataFrame([_row(c) for c in compared])
    table.attrs["direction"] = direction
    spec = fits[0].spec
    return Comparison(
        analysis=spec.name,
        title=spec.title,
        priors=tuple(dict.fromkeys(c.prior for c in compared)),
        variants=tuple(dict.fromkeys(c.variant for c in compared)),
        table=table,
        fits=tuple(compared),
        conclusions=assess(table, rules, direction),
        direction=direction,
    )


def compare_posteriors(
    spec: AnalysisSpec,
    priors: Iterable[str | PriorSet] | None = None,
    variants: Iterable[str | None] | None = None,
    *,
    seed: int | None = None,
    settings: SamplerSettings | None = None,
    cache: bool = True,
    progress: bool = False,
    rules: Sequence[Rule] | None = None,
) -> Comparison:
    """Fit one analysis under several priors and data variants and compare the posteriors.

    Parameters
    ----------
    spec : AnalysisSpec
    priors : iterable of str or PriorSet, optional
        Default: the spec's priors (every built-in set unless it names some).
    variants : iterable of str, optional
        Data variants (``published``, ``a``, ``a+b``, ...); default: the spec's own.
    seed : int, optional
        Default ``spec.seed``; the same seed for every fit.
    settings : rebayes.SamplerSettings, optional
    cache : bool
        Read and write the fit cache.
    progress : bool
        Show a progress bar per variant.
    rules : sequence of Rule, optional
        Conclusions to check for flips; default :func:`default_rules`.

    Returns
    -------
    Comparison

    Examples
    --------
    >>> import rebayes as rb
    >>> from rebayes.compare import compare_posteriors
    >>> spec = rb.load_script("models/timing.py")                              # doctest: +SKIP
    >>> cmp = compare_posteriors(spec, ["weakly_informative", "skeptical"])    # doctest: +SKIP
    >>> print(cmp.flips)                                                       # doctest: +SKIP
    """
    from rebayes.inference import fit_priors, flush_cache

    prior_list = list(priors) if priors is not None else spec.priors
    variant_list = list(variants) if variants is not None else [spec.variant]
    if not variant_list:
        raise RebayesError("no data variant to compare (give at least one)")
    fits: list[Fit] = []
    for variant in variant_list:
        fits += fit_priors(
            spec,
            prior_list,
            variant=variant,
            seed=seed,
            settings=settings,
            cache=cache,
            progress=progress,
        )
    if cache:
        flush_cache()
    return compare_fits(fits, rules)
