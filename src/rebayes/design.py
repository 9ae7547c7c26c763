"""From a trial table and an analysis spec to the arrays the model needs.

:func:`build_design` picks the rows (strata, mixed-strata handling, summing a trial's strata),
codes the covariates as a design matrix, assigns rows to subgroups and, for the normal
likelihood, computes each row's observed log RR and its RevMan variance. Covariate coding,
with the reference level first:

- ``rsa_type``: 0 primary, 1 secondary; a ``mixed`` stratum is left out (``mixed="exclude"``)
  or coded with its known share of secondary RSA (``mixed="share"``, from the dataset's
  ``mixed_secondary_share`` table).
- ``timing``: 1 for pre-conception, 0 for post-conception IVIG.
- ``placebo``: indicators for saline and multivitamin; albumin is the reference.
- Any other column: numbers as they are, text as indicators against its first level.
- ``"a:b"``: the products of a's and b's columns.

A column that is constant, or collinear with the intercept and earlier columns in the analysed
rows, carries no information about its coefficient; it is left out and the design's ``notes``
say so.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from rebayes.data import LABELS, load_trials, trial_totals
from rebayes.frequentist import study_effects
from rebayes.spec import RSA_TYPE, AnalysisSpec, SpecError

__all__ = ["ARMS", "REFERENCE_LEVELS", "Design", "build_design"]

ARMS: tuple[str, ...] = ("control", "treat")
REFERENCE_LEVELS: dict[str, str] = {
    RSA_TYPE: "primary",
    "timing": "post_conception",
    "placebo": "albumin",
}


@dataclass(frozen=True, eq=False)
class Design:
    """The analysed rows of one spec as arrays (one row per study, or per study x stratum).

    Attributes
    ----------
    spec : AnalysisSpec
    variant, data_hash, dataset : str
        Where the rows come from (``data_hash`` identifies the table after the variant).
    rows : tuple of str
        Row labels: the study, or ``"study (stratum)"`` when split by stratum.
    row_study, row_stratum : tuple of str
        Each row's study and stratum (``mixed`` for a summed multi-stratum trial).
    studies : tuple of str
        Distinct studies in order of appearance; the random effect is per study.
    study_index : ndarray of int, shape (row,)
        Position of each row's study in ``studies``.
    events, n : ndarray of int, shape (row, arm)
        Live births and women per arm, arms ordered as :data:`ARMS` (control, treat).
    yi, vi : ndarray, shape (row,), or None
        Observed log RR and its variance (RevMan's 0.5 correction); normal likelihood only.
    coefs : tuple of str
        Names of the design-matrix columns (``secondary``, ``pre_conception``, ...).
    X : ndarray, shape (row, coef)
    groups : tuple of str
        Subgroups with their own ``d`` (effect ``separate``); empty otherwise.
    group_index : ndarray of int, shape (row,)
        Each row's position in ``groups`` (zeros when there are none).
    row_subgroup : tuple of str
        Each row's reporting subgroup (``""`` for a row in none, e.g. a mixed stratum).
    subgroups : tuple of str
        Reported subgroups, reference level first (``post_conception``, ``pre_conception``).
    ratios : tuple of (name, numerator, denominator)
        Subgroup RR ratios to report: each level of the last subgroup column against its
        reference level, within each level of the other subgroup columns.
    notes : tuple of str
        Rows or columns left out, and why.
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
    spec: AnalysisSpec, trials: pd.DataFrame | None = None, variant: str | None = None
) -> Design:
    """Turn a trial table into the arrays of one analysis.

    Parameters
    ----------
    spec : AnalysisSpec
    trials : pandas.DataFrame, optional
        A table from :func:`rebayes.load_trials`; default: load ``spec.data``.
    variant : str, optional
        Data variant when loading (overrides ``spec.variant``).

    Returns
    -------
    Design

    Raises
    ------
    SpecError
        The spec asks for something the table cannot give (one line).
    """
    if trials is None:
        trials = load_trials(spec.data, variant or spec.variant)
    attrs = dict(trials.attrs)
    meta: dict[str, Any] = attrs.get("meta", {}) or {}
    where = f"spec '{spec.name}'"
    notes: list[str] = []

    frame = trials[trials["stratum"].isin(spec.strata)].copy()
    if frame.empty:
        raise SpecError(f"{where}: the table has no rows in strata {', '.join(spec.strata)}")
    frame["secondary_share"] = frame["stratum"].map({"primary": 0.0, "secondary": 1.0})
    if spec.uses_rsa_type:
        frame = _handle_mixed(frame, spec, meta, notes)
        if frame.empty:
            raise SpecError(f"{where}: no rows left once mixed strata are handled")
    if not spec.split_by_stratum:
        frame = trial_totals(frame.drop(columns="secondary_share"))
        rows = frame["study"].tolist()
    else:
        rows = [f"{s} ({t})" for s, t in zip(frame["study"], frame["stratum"], strict=True)]
    frame = frame.reset_index(drop=True).assign(row=rows)

    yi = vi = None
    if spec.likelihood == "normal":
        effects = study_effects(frame.assign(study=frame["row"]), "RR")
        keep = effects["estimable"].to_numpy(bool)
        if not keep.all():
            left = ", ".join(frame.loc[~keep, "row"])
            notes.append(f"no live births in either arm, left out of the log RR model: {left}")
        frame = frame[keep].reset_index(drop=True)
        yi = effects.loc[keep, "yi"].to_numpy(float)
        vi = effects.loc[keep, "vi"].to_numpy(float)
        if frame.empty:
            raise SpecError(f"{where}: no row has an estimable log RR")

    n_trials = frame["study"].nunique()
    if n_trials < 2:
        # With one trial the between-trial SD is pure prior: not a meta-analysis.
        raise SpecError(
            f"{where}: a random-effects meta-analysis needs at least 2 trials, the analysed "
            f"rows hold {n_trials} (rebayes frequentist summarises a single trial)"
        )
    coefs, X = _design_matrix(frame, spec, notes)
    row_subgroup, subgroups, ratios = _subgroups(frame, spec)
    if spec.effect == "separate":
        groups = subgroups
        group_index = np.array([groups.index(g) for g in row_subgroup], dtype=np.int64)
    else:
        groups, group_index = (), np.zeros(len(frame), dtype=np.int64)
    codes, studies = pd.factorize(frame["study"])
    return Design(
        spec=spec,
        dataset=str(attrs.get("dataset", spec.data)),
        variant=str(attrs.get("variant", variant or spec.variant or "published")),
        data_hash=str(attrs.get("data_hash", "")),
        rows=tuple(frame["row"]),
        row_study=tuple(frame["study"]),
        row_stratum=tuple(frame["stratum"]),
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
    )


def _handle_mixed(
    frame: pd.DataFrame, spec: AnalysisSpec, meta: dict[str, Any], notes: list[str]
) -> pd.DataFrame:
    """Drop mixed strata, or give them their known share of secondary RSA."""
    mixed = frame["stratum"] == "mixed"
    if not mixed.any():
        return frame
    if spec.mixed == "exclude":
        notes.append(
            "mixed strata left out of the RSA-type analysis: "
            + ", ".join(frame.loc[mixed, "study"])
        )
        return frame[~mixed]
    shares = meta.get("mixed_secondary_share", {}) or {}
    share = frame["study"].map(lambda s: shares.get(s, np.nan)).astype(float)
    known = mixed & share.between(0, 1)
    bad = list(frame.loc[mixed & ~known, "study"])
    if known.any():
        notes.append(
            "mixed strata entered with their share of secondary RSA: "
            + ", ".join(
                f"{s} ({v:g})" for s, v in zip(frame.loc[known, "study"], share[known], strict=True)
            )
        )
    if bad:
        notes.append("mixed strata left out (share of secondary RSA unknown): " + ", ".join(bad))
    frame = frame.assign(secondary_share=frame["secondary_share"].where(~known, share))
    return frame[~mixed | known]


def _levels(column: str, values: pd.Series) -> list[str]:
    """Levels present, reference first, then the vocabulary's order (else sorted)."""
    present = set(values)
    vocabulary = list(LABELS.get("stratum" if column == RSA_TYPE else column, ()))
    ordered = [v for v in vocabulary if v in present] + sorted(present - set(vocabulary))
    reference = REFERENCE_LEVELS.get(column)
    if reference in ordered:
        ordered.remove(reference)
        ordered.insert(0, reference)
    return ordered


def _main_effect(frame: pd.DataFrame, term: str, spec: AnalysisSpec) -> dict[str, np.ndarray]:
    """Design columns of one main effect, by name."""
    if term == RSA_TYPE:
        return {"secondary": frame["secondary_share"].to_numpy(float)}
    if term not in frame.columns:
        raise SpecError(f"spec '{spec.name}': covariate {term!r} is not a column of the table")
    values = frame[term]
    if values.isna().any():
        row = frame.loc[values.isna(), "row"].iloc[0]
        raise SpecError(f"spec '{spec.name}': covariate {term!r} is missing for {row}")
    # The loader keeps extra columns as text: a column whose every value is a number is numeric.
    numbers = pd.to_numeric(values, errors="coerce")
    if not numbers.isna().any() and not pd.api.types.is_bool_dtype(values):
        return {term: numbers.to_numpy(float)}
    text = values.astype(str)
    levels = _levels(term, text)
    named = term in REFERENCE_LEVELS
    return {
        (level if named else f"{term}[{level}]"): (text == level).to_numpy(float)
        for level in levels[1:]
    }


def _design_matrix(
    frame: pd.DataFrame, spec: AnalysisSpec, notes: list[str]
) -> tuple[tuple[str, ...], np.ndarray]:
    columns: dict[str, np.ndarray] = {}
    mains = {t: _main_effect(frame, t, spec) for t in spec.covariates if ":" not in t}
    for term in spec.covariates:
        if ":" not in term:
            columns.update(mains[term])
            continue
        left, right = term.split(":")
        for (a, x), (b, y) in itertools.product(mains[left].items(), mains[right].items()):
            columns[f"{a}:{b}"] = x * y
    # Keep a column only if it adds a dimension to the intercept (or subgroup indicators) and
    # the columns kept so far; otherwise its coefficient is informed by the prior alone.
    n = len(frame)
    if spec.effect == "separate":
        row_subgroup, subgroups, _ = _subgroups(frame, spec)
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
    X = np.column_stack(list(kept.values())) if kept else np.zeros((n, 0))
    return tuple(kept), X


def _subgroups(
    frame: pd.DataFrame, spec: AnalysisSpec
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, str, str], ...]]:
    """Each row's subgroup label, the ordered subgroups, and the ratios to report."""
    if not spec.subgroup:
        return ("",) * len(frame), (), ()
    per_column: list[list[str]] = []
    levels: list[list[str]] = []
    for column in spec.subgroup:
        source = "stratum" if column == RSA_TYPE else column
        if source not in frame.columns:
            raise SpecError(
                f"spec '{spec.name}': subgroup column {column!r} is not a column of the table"
            )
        values = frame[source].astype(str).tolist()
        if column == RSA_TYPE:
            # A mixed stratum belongs to neither RSA type.
            values = ["" if v == "mixed" else v for v in values]
        per_column.append(values)
        levels.append(_levels(column, pd.Series([v for v in values if v])))
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
