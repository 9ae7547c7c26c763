"""From a trial table and an analysis spec to the arrays the model needs.

:func:`build_design` picks the rows (strata, pooled rows, summing a trial's strata), codes the
covariates as a design matrix, assigns rows to subgroups and, for the normal likelihood,
computes each row's observed log RR and its RevMan variance. Covariate coding, with the
reference level first:

- A categorical covariate declared in ``dataset.toml``: one indicator per non-reference level,
  named after the level. A row at the covariate's ``pooled`` level (a trial that did not
  report the split) is left out (``mixed="exclude"``) or, for a two-level covariate, coded with
  its known share of the other level (``mixed="share"``, from the covariate's ``shares``).
- A continuous covariate, or any undeclared column of numbers: its values (the slope is per
  unit).
- Any other undeclared column: indicators ``column[level]`` against its first level.
- ``"a:b"``: the products of a's and b's (centred) columns.

Every column is then centred at its mean over the analysed rows (:attr:`Design.centres`), so
that the effect prior acts on an effect someone means. ``d`` is then the average over the
analysed rows of each row's expected effect: for a continuous covariate the effect at its mean
(latitude 33.5 rather than latitude 0, outside the data), for a categorical one the average of
its levels' effects weighted by their shares of the rows (weighted effect coding: Te Grotenhuis
M et al. When size matters: advantages of weighted effect coding in observational studies. Int
J Public Health 2017;62:163-7). A centred indicator still has the same coefficient: the
difference between its level and the reference level, so the covariate prior keeps its meaning
(a prior on the difference between subgroups) whatever the subgroups' sizes. The rows, not the
trials, weigh the same, as in the row average the fit reports
(:func:`rebayes.bayes.quantities.pooled_effect`), which is then ``d`` itself.

A column that is constant, or collinear with the intercept and earlier columns in the analysed
rows, carries no information about its coefficient; it is left out and the design's ``notes``
say so.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from rebayes.bayes.priors import PriorSet, median_control_risk
from rebayes.bayes.spec import AnalysisSpec, SpecError
from rebayes.data.schema import Covariate, DatasetSchema
from rebayes.data.trial_table import TrialTable, as_table
from rebayes.data.trials import load_table, row_labels, trial_ids, trial_totals
from rebayes.frequentist.effects import study_effects

__all__ = ["ARMS", "Design", "build_design", "prior_on_model_scale"]

ARMS: tuple[str, ...] = ("control", "treat")


@dataclass(frozen=True, eq=False)
class Design:
    """The analysed rows of one spec as arrays (one row per study, or per study x stratum).

    Attributes
    ----------
    spec : AnalysisSpec
    variant, data_hash, dataset : str
        Where the rows come from (``data_hash`` identifies the table after the variant).
    rows : tuple of str
        Row labels: the study, ``"study (stratum)"`` when split by stratum, ``"study #2"``
        for a repeated study name.
    row_study, row_stratum : tuple of str
        Each row's study and stratum (the strata column's value; ``""`` without strata).
    studies : tuple of str
        Distinct trials in order of appearance; the random effect is per trial (a trial's
        declared strata share it; rows of a repeated study name without declared strata are
        trials of their own).
    study_index : ndarray of int, shape (row,)
        Position of each row's study in ``studies``.
    events, n : ndarray of int, shape (row, arm)
        Events and participants per arm, arms ordered as :data:`ARMS` (control, treat).
    yi, vi : ndarray, shape (row,), or None
        Observed log RR and its variance (RevMan's 0.5 correction); normal likelihood only.
    coefs : tuple of str
        Names of the design-matrix columns (a declared covariate's level, ``ablat``,
        ``alloc[systematic]``, ...).
    X : ndarray, shape (row, coef)
        The columns centred at their means over the analysed rows (each column's mean is 0).
    groups : tuple of str
        Subgroups with their own ``d`` (effect ``separate``); empty otherwise.
    group_index : ndarray of int, shape (row,)
        Each row's position in ``groups`` (zeros when there are none).
    row_subgroup : tuple of str
        Each row's reporting subgroup (``""`` for a row in none, e.g. a pooled row).
    subgroups : tuple of str
        Reported subgroups, reference level first.
    ratios : tuple of (name, numerator, denominator)
        Subgroup RR ratios to report: each level of the last subgroup column against its
        reference level, within each level of the other subgroup columns.
    notes : tuple of str
        Rows or columns left out, and why.
    schema : DatasetSchema
    centres : tuple of float
        What was subtracted from each column: its mean over the analysed rows before centring
        (a continuous covariate's mean value, an indicator's share of the rows). ``X +
        centres`` are the columns as coded (an interaction: the product of its centred main
        effects). Empty for a design built elsewhere with its columns as they are.
    intercept_at : str
        Where ``d`` sits, in words: "at ablat = 33.46 degree (the mean of the 13 analysed
        rows)", "averaged over allocation (random 0.54, alternate 0.15, systematic 0.31) with
        the levels' shares of the 13 analysed rows"; empty without covariates.
    """

    spec: AnalysisSpec
    dataset: str
    variant: str
    data_hash: str
    rows: tuple[str, ...]
    row_study: tuple[str, ...]
    row_stratum: tuple[str, ...]
    studies: tuple[str, ...]
    study_index: np.ndarray
    events: np.ndarray
    n: np.ndarray
    yi: np.ndarray | None
    vi: np.ndarray | None
    coefs: tuple[str, ...]
    X: np.ndarray
    groups: tuple[str, ...]
    group_index: np.ndarray
    row_subgroup: tuple[str, ...]
    subgroups: tuple[str, ...]
    ratios: tuple[tuple[str, str, str], ...]
    notes: tuple[str, ...]
    schema: DatasetSchema = DatasetSchema()
    centres: tuple[float, ...] = ()
    intercept_at: str = ""

    @property
    def likelihood(self) -> str:
        """``binomial`` or ``normal``."""
        return self.spec.likelihood

    @property
    def separate(self) -> bool:
        """Whether ``d`` has one value per subgroup."""
        return self.spec.effect == "separate"

    @property
    def n_rows(self) -> int:
        """Number of analysed rows."""
        return len(self.rows)

    def table(self) -> pd.DataFrame:
        """Return the analysed rows as a table (for printing and checking)."""
        out = pd.DataFrame(
            {
                "row": self.rows,
                "study": self.row_study,
                "stratum": self.row_stratum,
                "events_treat": self.events[:, 1],
                "n_treat": self.n[:, 1],
                "events_control": self.events[:, 0],
                "n_control": self.n[:, 0],
                "subgroup": self.row_subgroup,
            }
        )
        for j, name in enumerate(self.coefs):
            out[name] = self.X[:, j]
        if self.yi is not None and self.vi is not None:
            out["yi"], out["vi"] = self.yi, self.vi
        return out


def build_design(
    spec: AnalysisSpec,
    trials: TrialTable | pd.DataFrame | None = None,
    variant: str | None = None,
    *,
    schema: DatasetSchema | None = None,
) -> Design:
    """Turn a trial table into the arrays of one analysis.

    Parameters
    ----------
    spec : AnalysisSpec
    trials : TrialTable or pandas.DataFrame, optional
        The table from :func:`rebayes.load_table` (a DataFrame: see ``schema``); default:
        load ``spec.data``.
    variant : str, optional
        Data variant when loading (overrides ``spec.variant``).
    schema : DatasetSchema, optional
        What a DataFrame's rows mean, when it does not carry its schema in ``attrs``
        (:func:`rebayes.data.trial_table.as_table`).

    Returns
    -------
    Design

    Raises
    ------
    SpecError
        The spec asks for something the table cannot give (one line).
    DataError
        A DataFrame whose schema is unknown (neither ``schema=`` nor ``attrs``).
    """
    where = f"spec '{spec.name}'"
    if trials is None:
        if spec.data is None:
            raise SpecError(f"{where}: names no dataset (give --data, or data= in the spec)")
        table = load_table(spec.data, variant or spec.variant)
    else:
        table = as_table(trials, schema, where)
    table = table.with_direction(spec.higher_is_better)
    schema = table.schema
    notes: list[str] = []
    strata = schema.strata if schema.strata in table.frame else None

    frame = _stratum_rows(table.frame, spec, strata, where)
    frame, pooled_values = _pooled_rows(frame, spec, schema, strata, notes)
    if not spec.split_by_stratum:
        frame = trial_totals(frame, schema)
    labels = row_labels(frame, split=spec.split_by_stratum, schema=schema)
    frame = frame.reset_index(drop=True).assign(row=labels, trial=trial_ids(frame, schema))
    shares = {term: values.reindex(frame.index) for term, values in pooled_values.items()}

    yi = vi = None
    if spec.likelihood == "normal":
        frame, shares, yi, vi = _estimable_log_rr(frame, shares, notes, where)

    n_trials = frame["trial"].nunique()
    if n_trials < 2:
        # With one trial the between-trial SD is pure prior: not a meta-analysis.
        raise SpecError(
            f"{where}: a random-effects meta-analysis needs at least 2 trials, the analysed "
            f"rows hold {n_trials} (rebayes frequentist summarises a single trial)"
        )
    coefs, X, centres, intercept_at = _design_matrix(frame, spec, schema, shares, notes)
    row_subgroup, subgroups, ratios = _subgroups(frame, spec, schema)
    groups, group_index = _effect_groups(spec, subgroups, row_subgroup, len(frame))
    codes, studies = pd.factorize(frame["trial"])
    return Design(
        spec=spec,
        dataset=table.dataset or str(spec.data or ""),
        variant=table.variant,
        data_hash=table.data_hash,
        rows=tuple(frame["row"]),
        row_study=tuple(frame["trial"]),
        row_stratum=tuple(frame[strata].astype(str)) if strata else ("",) * len(frame),
        studies=tuple(studies),
        study_index=codes.astype(np.int64),
        events=frame[["events_control", "events_treat"]].to_numpy(np.int64),
        n=frame[["n_control", "n_treat"]].to_numpy(np.int64),
        yi=yi,
        vi=vi,
        coefs=coefs,
        X=X,
        groups=groups,
        group_index=group_index,
        row_subgroup=row_subgroup,
        subgroups=subgroups,
        ratios=ratios,
        notes=tuple(notes),
        schema=schema,
        centres=centres,
        intercept_at=intercept_at,
    )


def _stratum_rows(
    trials: pd.DataFrame, spec: AnalysisSpec, strata: str | None, where: str
) -> pd.DataFrame:
    """Return a copy of the rows in the spec's strata (every row when it names none)."""
    frame = trials.copy()
    if spec.strata is not None:
        if strata is None:
            raise SpecError(f"{where}: strata= needs a dataset that declares a strata column")
        frame = frame[frame[strata].isin(spec.strata)]
        if frame.empty:
            raise SpecError(f"{where}: the table has no rows in strata {', '.join(spec.strata)}")
    if spec.split_by_stratum and strata is None:
        raise SpecError(f"{where}: split_by_stratum needs a dataset that declares strata")
    return frame


def _pooled_rows(
    frame: pd.DataFrame,
    spec: AnalysisSpec,
    schema: DatasetSchema,
    strata: str | None,
    notes: list[str],
) -> tuple[pd.DataFrame, dict[str, pd.Series]]:
    """Return the rows once pooled levels are handled, and each such term's shares per row."""
    where = f"spec '{spec.name}'"
    pooled_values: dict[str, pd.Series] = {}
    for term in spec.terms:
        cov = schema.covariates.get(term)
        if cov is None or cov.pooled is None or cov.column not in frame:
            continue
        if cov.column == strata and not spec.split_by_stratum:
            raise SpecError(
                f"{where}: {term} varies within trials: set split_by_stratum=True to use it"
            )
        frame, pooled_values[term] = _handle_pooled(frame, spec, cov, notes)
        if frame.empty:
            raise SpecError(f"{where}: no rows left once rows pooling {term} are handled")
    return frame, pooled_values


def _estimable_log_rr(
    frame: pd.DataFrame, shares: dict[str, pd.Series], notes: list[str], where: str
) -> tuple[pd.DataFrame, dict[str, pd.Series], np.ndarray, np.ndarray]:
    """Return the rows with a log RR, their shares, and their log RRs and RevMan variances."""
    effects = study_effects(frame.assign(study=frame["row"]), "RR")
    keep = effects["estimable"].to_numpy(bool)
    if not keep.all():
        left = ", ".join(frame.loc[~keep, "row"])
        notes.append(f"no events in either arm, left out of the log RR model: {left}")
    frame = frame[keep].reset_index(drop=True)
    shares = {t: v[keep].reset_index(drop=True) for t, v in shares.items()}
    yi = effects.loc[keep, "yi"].to_numpy(float)
    vi = effects.loc[keep, "vi"].to_numpy(float)
    if frame.empty:
        raise SpecError(f"{where}: no row has an estimable log RR")
    return frame, shares, yi, vi


def _effect_groups(
    spec: AnalysisSpec, subgroups: tuple[str, ...], row_subgroup: tuple[str, ...], n: int
) -> tuple[tuple[str, ...], np.ndarray]:
    """Return the groups with an effect of their own, and each row's group (0: one effect)."""
    if spec.effect == "separate":
        return subgroups, np.array([subgroups.index(g) for g in row_subgroup], dtype=np.int64)
    return (), np.zeros(n, dtype=np.int64)


def _handle_pooled(
    frame: pd.DataFrame, spec: AnalysisSpec, cov: Covariate, notes: list[str]
) -> tuple[pd.DataFrame, pd.Series]:
    """Drop rows at the covariate's pooled level, or give them their known share.

    Returns the kept rows and, per kept row, the share of the non-reference level (NaN for a
    row at a real level).
    """
    pooled = frame[cov.column].astype(str) == cov.pooled
    share = pd.Series(np.nan, index=frame.index)
    if not pooled.any():
        return frame, share
    label = cov.title
    if spec.mixed == "exclude" or cov.name not in spec.covariates:
        notes.append(
            f"rows not split by {label} left out of the {label} analysis: "
            + ", ".join(frame.loc[pooled, "study"])
        )
        return frame[~pooled], share[~pooled]
    real = [lv for lv in cov.levels if lv != cov.pooled]
    if len(real) != 2:
        raise SpecError(
            f"spec '{spec.name}': mixed='share' needs a two-level covariate; {cov.name} has "
            f"{len(real)} levels"
        )
    share = frame["study"].map(lambda s: cov.shares.get(s, np.nan)).astype(float).where(pooled)
    known = pooled & share.between(0, 1)
    unknown = list(frame.loc[pooled & ~known, "study"])
    if known.any():
        notes.append(
            f"rows not split by {label} entered with their share of "
            f"{cov.level_title(_other_level(cov))}: "
            + ", ".join(
                f"{s} ({v:g})" for s, v in zip(frame.loc[known, "study"], share[known], strict=True)
            )
        )
    if unknown:
        notes.append(f"rows not split by {label} left out (share unknown): " + ", ".join(unknown))
    keep = ~pooled | known
    return frame[keep], share[keep]


def _other_level(cov: Covariate) -> str:
    real = [lv for lv in cov.levels if lv != cov.pooled]
    return next(lv for lv in real if lv != cov.reference_level)


def _levels(cov: Covariate | None, values: pd.Series) -> list[str]:
    """Levels present, reference first, then the declared order (else sorted)."""
    present = set(values)
    vocabulary = list(cov.levels) if cov is not None else []
    ordered = [v for v in vocabulary if v in present] + sorted(present - set(vocabulary))
    reference = cov.reference_level if cov is not None else None
    if reference in ordered:
        ordered.remove(reference)
        ordered.insert(0, reference)
    return ordered


def _main_effect(
    frame: pd.DataFrame,
    term: str,
    spec: AnalysisSpec,
    schema: DatasetSchema,
    shares: dict[str, pd.Series],
) -> tuple[dict[str, np.ndarray], str | None]:
    """Design columns of one main effect, by name, and the reference level (None: continuous)."""
    cov = schema.covariates.get(term)
    column = cov.column if cov is not None else term
    if column not in frame.columns:
        raise SpecError(f"spec '{spec.name}': covariate {term!r} is not a column of the table")
    values = frame[column]
    if values.isna().any():
        row = frame.loc[values.isna(), "row"].iloc[0]
        raise SpecError(f"spec '{spec.name}': covariate {term!r} is missing for {row}")
    numbers = pd.to_numeric(values, errors="coerce")
    continuous = cov.kind == "continuous" if cov is not None else not numbers.isna().any()
    if continuous and not pd.api.types.is_bool_dtype(values):
        if numbers.isna().any():
            row = frame.loc[numbers.isna(), "row"].iloc[0]
            raise SpecError(f"spec '{spec.name}': covariate {term!r} is not a number for {row}")
        return {term: numbers.to_numpy(float)}, None
    text = values.astype(str)
    if cov is not None and term in shares:
        # Rows at the pooled level carry their share of the non-reference level.
        other = _other_level(cov)
        share = shares[term].to_numpy(float)
        x = np.where(np.isnan(share), (text == other).to_numpy(float), share)
        return {other: x}, cov.reference_level or ""
    levels = _levels(cov, text)
    return {
        (level if cov is not None else f"{term}[{level}]"): (text == level).to_numpy(float)
        for level in levels[1:]
    }, levels[0]


def _design_matrix(
    frame: pd.DataFrame,
    spec: AnalysisSpec,
    schema: DatasetSchema,
    shares: dict[str, pd.Series],
    notes: list[str],
) -> tuple[tuple[str, ...], np.ndarray, tuple[float, ...], str]:
    """Names, centred columns, their centres and what ``d`` is the effect at."""
    mains = {
        t: _main_effect(frame, t, spec, schema, shares) for t in spec.covariates if ":" not in t
    }
    # An interaction multiplies centred main effects, so that each main effect's coefficient
    # is its effect at the other covariate's mean, not at its zero.
    centred = {t: {k: x - x.mean() for k, x in cols.items()} for t, (cols, _) in mains.items()}
    columns: dict[str, np.ndarray] = {}
    term_of: dict[str, str] = {}
    for term in spec.covariates:
        if ":" not in term:
            columns.update(mains[term][0])
            term_of.update(dict.fromkeys(mains[term][0], term))
            continue
        left, right = term.split(":")
        for (a, x), (b, y) in itertools.product(centred[left].items(), centred[right].items()):
            columns[f"{a}:{b}"] = x * y
            term_of[f"{a}:{b}"] = term
    # Keep a column only if it adds a dimension to the intercept (or subgroup indicators) and
    # the columns kept so far; otherwise its coefficient is informed by the prior alone.
    # Centring changes no rank: the base spans the constant column.
    n = len(frame)
    if spec.effect == "separate":
        row_subgroup, subgroups, _ = _subgroups(frame, spec, schema)
        base = np.array([[float(g == s) for s in subgroups] for g in row_subgroup])
    else:
        base = np.ones((n, 1))
    kept: dict[str, np.ndarray] = {}
    current = base
    for name, x in columns.items():
        trial = np.column_stack([current, x])
        if np.linalg.matrix_rank(trial) > np.linalg.matrix_rank(current):
            kept[name], current = x, trial
        else:
            notes.append(
                f"covariate column {name!r} is constant or collinear in the analysed rows; left out"
            )
    if not kept and spec.effect == "contrast":
        raise SpecError(
            f"spec '{spec.name}': no covariate varies in the analysed rows, nothing to contrast"
        )
    if not kept:
        return (), np.zeros((n, 0)), (), ""
    coded = np.column_stack(list(kept.values()))
    centres = coded.mean(axis=0)
    kept_terms = {term_of[name]: None for name in kept}
    at = _intercept_at(kept_terms, mains, schema, n)
    return tuple(kept), coded - centres, tuple(float(c) for c in centres), at


def _intercept_at(
    terms: dict[str, None],
    mains: dict[str, tuple[dict[str, np.ndarray], str | None]],
    schema: DatasetSchema,
    n: int,
) -> str:
    """Say what ``d`` is the effect at once every column is centred (see the module docstring).

    ``"at ablat = 33.46 degree (the mean of the 13 analysed rows)"``, ``"averaged over
    allocation (random 0.54, alternate 0.15, systematic 0.31) with the levels' shares of the 13
    analysed rows"``.
    """
    at: list[str] = []
    over: list[str] = []
    for term in terms:
        if term not in mains:
            continue
        cols, reference = mains[term]
        cov = schema.covariates.get(term)
        if reference is None:
            unit = f" {cov.unit}" if cov is not None and cov.unit else ""
            at.append(f"{term} = {cols[term].mean():.4g}{unit}")
            continue
        shares = {name: float(x.mean()) for name, x in cols.items()}
        levels = [f"{reference} {1 - sum(shares.values()):.2f}"]
        levels += [f"{name} {share:.2f}" for name, share in shares.items()]
        over.append(f"{cov.title if cov is not None else term} ({', '.join(levels)})")
    parts = []
    if at:
        mean = "mean" if len(at) == 1 else "means"
        parts.append(f"at {', '.join(at)} (the {mean} of the {n} analysed rows)")
    if over:
        parts.append(f"averaged over {' and '.join(over)} with the levels' shares of the {n} "
                     "analysed rows")
    if any(":" in term for term in terms):
        parts.append("interaction terms at their means over the rows")
    return "; ".join(parts)


def _subgroups(
    frame: pd.DataFrame, spec: AnalysisSpec, schema: DatasetSchema
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, str, str], ...]]:
    """Each row's subgroup label, the ordered subgroups, and the ratios to report."""
    if not spec.subgroup:
        return ("",) * len(frame), (), ()
    per_column: list[list[str]] = []
    levels: list[list[str]] = []
    for column in spec.subgroup:
        cov = schema.covariates.get(column)
        source = cov.column if cov is not None else column
        if source not in frame.columns:
            raise SpecError(
                f"spec '{spec.name}': subgroup column {column!r} is not a column of the table"
            )
        values = frame[source].astype(str).tolist()
        if cov is not None and cov.pooled is not None:
            # A row pooling several levels belongs to none of them.
            values = ["" if v == cov.pooled else v for v in values]
        per_column.append(values)
        levels.append(_levels(cov, pd.Series([v for v in values if v])))
    labels = tuple(
        "" if any(v == "" for v in combo) else "/".join(combo)
        for combo in zip(*per_column, strict=True)
    )
    present = set(labels)
    subgroups = tuple(
        name for name in ("/".join(c) for c in itertools.product(*levels)) if name in present
    )
    ratios: list[tuple[str, str, str]] = []
    for prefix in itertools.product(*levels[:-1]):
        reference = "/".join((*prefix, levels[-1][0]))
        for level in levels[-1][1:]:
            numerator = "/".join((*prefix, level))
            if numerator in present and reference in present:
                context = f"{'/'.join(prefix)}: " if prefix else ""
                ratios.append((f"{context}{level} vs {levels[-1][0]}", numerator, reference))
    return labels, subgroups, tuple(ratios)


def prior_on_model_scale(prior: PriorSet, design: Design) -> PriorSet:
    """Return the prior set as the model uses it: on the log RR for the normal likelihood.

    The built-in sets speak of log odds ratios; the normal model works on the log RR, where
    the same numbers would mean larger effects. They are mapped at the design's median
    observed control risk (:meth:`rebayes.bayes.priors.PriorSet.on_scale`).
    """
    if design.likelihood != "normal" or prior.scale != "log OR":
        return prior
    return prior.on_scale("log RR", median_control_risk(design.events[:, 0], design.n[:, 0]))
