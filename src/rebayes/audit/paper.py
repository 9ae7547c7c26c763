"""The published figures, their recomputation, and a verdict for each (the audit).

The figures live in the dataset folder's ``reported.csv`` as data: where the paper prints
them, what statistic they are, the numbers as printed, and two recipes for recomputing them:

``statistic``
    ``count``, ``rate``, ``counts`` (``a/n vs c/m``), ``rr`` or ``effect`` (pooled effect
    and CI), ``z``, ``p`` (the effect's Z test, or t test under HKSJ), ``chi2``, ``df``,
    ``p_chi2``, ``i2``, ``tau2`` (heterogeneity), ``tau2_ci`` (its Q-profile interval),
    ``prediction_interval``, ``subgroup_chi2``, ``subgroup_df``, ``subgroup_p``,
    ``subgroup_i2`` (test for subgroup differences), ``i2_below_50``; per study
    ``study_effect`` (its estimate and CI), ``study_se`` (the standard error of its log ratio,
    or of its RD) and ``weight`` (percent of the analysis of every row: one study's, or the
    sum over the rows the filters select, e.g. a subgroup's).
``analysis``
    A query on the trial table: an optional leading kind (``n_trials``, ``n_women``,
    ``arm_rate``, ``overall``) followed by ``column=value`` filters, ``by=column``,
    ``row=LABEL`` (one row, labelled as :func:`rebayes.data.trials.row_labels` labels it:
    ``Smith 2001 #2`` for a repeated study name) and the analysis options ``measure=``,
    ``method=``, ``model=``, ``ci=``, ``tau2=``, ``hksj=`` (default: the dataset's); e.g.
    ``stratum=primary by=timing``. ``population=LEVEL`` selects trials whose every strata row
    has that level (datasets with a ``strata`` column).
``paper_basis``
    How to recompute from the paper's own stated figures: ``counts`` (a 2x2 table built from
    the row's ``counts``), ``sum:ID+ID`` (add the participants in other rows' counts),
    ``strata:ID+ID`` (Mantel-Haenszel over other rows' counts as strata), or ``ci:ID+ID``
    (test for subgroup differences from other rows' reported RRs and CIs).

A figure is *reproduced* when the recomputed numbers, rounded to the digits printed, equal the
printed ones (``exact``) or differ by one unit in the last printed digit (``last digit``).
What the trial table was built from and what the publication is called come from the dataset
(``trials_origin``, ``publication``, ``[citation] software`` in ``dataset.toml``).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, overload

import pandas as pd
from scipy import stats

from rebayes import tables
from rebayes.data.schema import DatasetSchema, schema_of
from rebayes.data.text import forbidden_field, separator_message
from rebayes.data.trial_table import TrialTable
from rebayes.data.trials import (
    load_dataset,
    load_table,
    row_labels,
    trial_ids,
    variant_combinations,
)
from rebayes.display import ResultDisplay
from rebayes.errors import AnalysisError, RebayesError
from rebayes.frequentist.effects import MEASURES, Z95, study_effects
from rebayes.frequentist.heterogeneity import TAU2_METHODS
from rebayes.frequentist.pooling import (
    METHODS,
    MODELS,
    SubgroupAnalysis,
    analyze,
    difference_test,
    meta_analysis,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "Audit",
    "AuditRow",
    "Recomputed",
    "ReportedFigure",
    "audit",
    "audit_intro",
    "audit_markdown",
    "load_reported",
]

NUMERIC_FIELDS = ("value", "ci_low", "ci_high", "p")
STATISTICS = (
    "count", "rate", "rr", "effect", "counts", "z", "p", "chi2", "df", "p_chi2", "i2", "tau2",
    "subgroup_chi2", "subgroup_df", "subgroup_p", "subgroup_i2", "i2_below_50", "significance",
    "tau2_ci", "prediction_interval", "study_effect", "study_se", "weight",
)
#: Per-row figures (a study's estimate, standard error, weight).
STUDY_STATISTICS = ("study_effect", "study_se", "weight")
#: Statistics whose recomputation carries a pooled estimate and CI (their range over the data
#: variants is worth stating).
ESTIMATES = ("rr", "effect")
#: Statistics that match only exactly (whole numbers).
WHOLE_NUMBERS = ("count", "df", "subgroup_df")
REQUIRED_FIELDS = ("id", "location", "statistic", "reported")
#: Keys of an ``analysis`` query that choose the analysis rather than filter rows.
OPTION_KEYS = ("measure", "method", "model", "ci", "event", "tau2", "hksj")
VERDICTS = ("reproduced", "differs", "not_recomputable")


@dataclass(frozen=True)
class ReportedFigure:
    """One figure as the paper prints it (a row of ``reported.csv``)."""

    id: str
    location: str
    statistic: str
    reported: str
    numbers: Mapping[str, str]  # field -> the printed digits, e.g. {"value": "0.88"}
    counts: str
    analysis: str
    paper_basis: str
    note: str

    def number(self, name: str) -> float | None:
        """Return the printed number of ``name`` as a float, or None when not printed."""
        text = self.numbers.get(name, "")
        return float(text) if text else None


@dataclass(frozen=True)
class Recomputed:
    """A recomputed figure: numbers, the counts behind them and what they were computed from."""

    basis: str
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p: float | None = None
    counts: str = ""
    measure: str = "RR"

    def text(self, statistic: str) -> str:
        """Render like the paper prints that statistic."""
        if statistic == "counts":
            return self.counts
        if statistic in ("tau2_ci", "prediction_interval"):
            if self.ci_low is None or self.ci_high is None:
                return "-"
            name = "Tau2 CI" if statistic == "tau2_ci" else "PI"
            return f"{name} [{self.ci_low:.4f}, {self.ci_high:.4f}]"
        if statistic in ("subgroup_p", "p", "p_chi2"):
            return f"P = {self.p:.4g}" if self.p is not None else "-"
        if statistic == "significance":
            if self.p is None:
                return "-"
            return f"P = {self.p:.3f} ({'' if self.p < 0.05 else 'not '}significant at 5%)"
        if self.value is None:
            return "-"
        if statistic in WHOLE_NUMBERS:
            return f"{self.value:.0f}"
        if statistic == "rate":
            return f"{self.value:.2f}%"
        if statistic in ("i2_below_50", "i2", "subgroup_i2"):
            return f"I2 = {self.value:.1f}%"
        if statistic == "weight":
            return f"Weight {self.value:.4f}%"
        if statistic == "study_se":
            return f"SE = {self.value:.6f}"
        if statistic in ("z", "chi2", "tau2", "subgroup_chi2"):
            name = {"z": "Z", "tau2": "Tau2"}.get(statistic, "Chi2")
            return f"{name} = {self.value:.4f}"
        digits = 4 if statistic in ("effect", "study_effect") else 3
        measure = "Peto OR" if self.measure == "PETO_OR" else self.measure
        out = (
            f"{measure} {self.value:.{digits}f} "
            f"({self.ci_low:.{digits}f}-{self.ci_high:.{digits}f})"
        )
        if self.p is not None:
            out += f", P = {self.p:.3f}"
        if self.counts:
            out += f" [{self.counts}]"
        return out


@dataclass(frozen=True)
class AuditRow:
    """The audit of one reported figure."""

    id: str
    location: str
    statistic: str
    reported: str
    recomputed: str
    verdict: str
    explanation: str
    from_paper: Recomputed | None = field(default=None, repr=False)
    from_trials: Recomputed | None = field(default=None, repr=False)
    variants_reproducing: tuple[str, ...] = ()
    trials_origin: str = field(default="the trial table", repr=False)

    @property
    def basis(self) -> str:
        """What a reproduced figure was reproduced from ('' unless reproduced).

        A figure that follows from the publication's own stated totals is only *consistent*
        with them; one rebuilt from the trial table is reproduced from what that table was
        built from (the dataset's ``trials_origin``: "the trial table" unless it says more).
        """
        if self.verdict != "reproduced":
            return ""
        if self.from_paper is not None:
            return "consistent with the publication's own totals"
        return f"reproduced from {self.trials_origin}"

    @property
    def verdict_text(self) -> str:
        """The verdict with its basis, for tables ("reproduced: consistent with ...")."""
        return f"{self.verdict}: {self.basis}" if self.basis else self.verdict

    def to_dict(self) -> dict[str, object]:
        """JSON layout: id, location, statistic, reported, recomputed, verdict, basis, ..."""
        out: dict[str, object] = {
            key: getattr(self, key)
            for key in (
                "id location statistic reported recomputed verdict basis explanation".split()
            )
        }
        out["from_paper"] = asdict(self.from_paper) if self.from_paper else None
        out["from_trials"] = asdict(self.from_trials) if self.from_trials else None
        out["variants_reproducing"] = list(self.variants_reproducing)
        return out


@dataclass(frozen=True, repr=False)
class Audit(ResultDisplay, Sequence[AuditRow]):
    """The audit of a paper: one :class:`AuditRow` per reported figure, in file order.

    A sequence of rows (``len``, indexing and iteration work as on a list); ``repr`` gives
    the counts of each verdict and :meth:`to_dataframe` the table of ``audit.md``.

    Attributes
    ----------
    rows : tuple of AuditRow
    dataset : str
        The dataset's name.
    variant : str
        The data variant the trial-table recomputation used.
    """

    rows: tuple[AuditRow, ...]
    dataset: str = ""
    variant: str = ""

    @overload
    def __getitem__(self, index: int) -> AuditRow: ...

    @overload
    def __getitem__(self, index: slice) -> tuple[AuditRow, ...]: ...

    def __getitem__(self, index: int | slice) -> AuditRow | tuple[AuditRow, ...]:
        return self.rows[index]

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def counts(self) -> dict[str, int]:
        """``{verdict: number of figures}`` for every verdict in :data:`VERDICTS`."""
        return {v: sum(r.verdict == v for r in self.rows) for v in VERDICTS}

    def _short(self) -> str:
        c = self.counts
        return (
            f"{self.dataset}, variant {self.variant}: {len(self.rows)} figures, "
            f"{c['reproduced']} reproduced, {c['differs']} differ, "
            f"{c['not_recomputable']} not recomputable"
        )

    def summary(self) -> str:
        """Return how many figures were reproduced, differ and are not recomputable."""
        return self._short()

    def to_dataframe(self) -> pd.DataFrame:
        """Return one row per figure, indexed by ``id``.

        Returns
        -------
        pandas.DataFrame
            Columns ``location``, ``statistic``, ``reported``, ``recomputed``, ``verdict``,
            ``basis``, ``variants_reproducing`` (comma-separated) and ``explanation``.
        """
        columns = ["id", "location", "statistic", "reported", "recomputed", "verdict", "basis",
                   "variants_reproducing", "explanation"]
        records = [
            {**{c: getattr(r, c) for c in columns if c != "variants_reproducing"},
             "variants_reproducing": ", ".join(r.variants_reproducing)}
            for r in self.rows
        ]
        return pd.DataFrame.from_records(records, columns=columns).set_index("id")

    def to_dict(self) -> dict[str, object]:
        """JSON record: ``{dataset, variant, counts, rows: [AuditRow.to_dict(), ...]}``."""
        return {"dataset": self.dataset, "variant": self.variant, "counts": self.counts,
                "rows": [r.to_dict() for r in self.rows]}

    def plot(self) -> Figure:
        """Draw how many figures were reproduced, differ or could not be recomputed."""
        from rebayes.plots.audit import verdict_plot

        return verdict_plot(self.counts, title=f"Audit of {self.dataset or 'the paper'}")


class AuditError(RebayesError):
    """``reported.csv`` is malformed or names an unknown figure, statistic or recipe."""


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def load_reported(path_or_name: str | Path) -> list[ReportedFigure]:
    """Read and validate ``reported.csv`` of a dataset.

    Parameters
    ----------
    path_or_name : str or Path
        A dataset name or folder, or the path of a ``reported.csv``.

    Returns
    -------
    list of ReportedFigure

    Raises
    ------
    AuditError
        One line naming the file, the line and the field; or saying there is nothing to
        audit (a bare CSV, or a folder without ``reported.csv``).
    """
    path = Path(path_or_name or "")
    label = _display(path)
    if path.name != "reported.csv":
        dataset = load_dataset(path_or_name)
        if dataset.directory is None:
            raise AuditError(
                f"{dataset.display(dataset.trials_path)}: nothing to audit (a bare CSV has no "
                "reported.csv; give a dataset folder that holds one)"
            )
        path = dataset.directory / "reported.csv"
        label = dataset.display(path)  # a RevMan file's outcome: named so, not by the cache
    if not path.is_file():
        raise AuditError(f"{label}: nothing to audit (no such file)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AuditError(f"{label}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    figures: list[ReportedFigure] = []
    seen: dict[str, int] = {}
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise AuditError(f"{label}: empty file (no header line)")
        separator = separator_message(header)
        if separator:
            raise AuditError(f"{label}:1: {separator}")
        columns = [h.strip() for h in header]
        problem = forbidden_field({f"column name {i}": c for i, c in enumerate(columns, 1)})
        if problem:
            raise AuditError(f"{label}:1: {problem}")
        for name in REQUIRED_FIELDS:
            if name not in columns:
                raise AuditError(f"{label}:1: missing required column '{name}'")
        line = reader.line_num + 1
        for values in reader:
            where, line = f"{label}:{line}", reader.line_num + 1
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(columns):
                raise AuditError(
                    f"{where}: expected {len(columns)} fields, found {len(values)}"
                )
            row = {c: v.strip() for c, v in zip(columns, values, strict=True)}
            problem = forbidden_field(row)
            if problem:
                raise AuditError(f"{where}: {problem}")
            figures.append(_figure(where, row, seen))
    except csv.Error as exc:
        raise AuditError(f"{label}:{reader.line_num}: malformed CSV ({exc})") from None
    if not figures:
        raise AuditError(f"{label}: nothing to audit (no data rows)")
    return figures


def _figure(where: str, row: Mapping[str, str], seen: dict[str, int]) -> ReportedFigure:
    """Check one row of ``reported.csv`` (``where`` is ``file:line``)."""
    if not row["id"]:
        raise AuditError(f"{where}: id is empty")
    if row["id"] in seen:
        raise AuditError(f"{where}: id={row['id']!r} repeats line {seen[row['id']]}")
    seen[row["id"]] = int(where.rpartition(":")[2])
    if row["statistic"] not in STATISTICS:
        raise AuditError(
            f"{where}: statistic={row['statistic']!r} is not one of {', '.join(STATISTICS)}"
        )
    for name in NUMERIC_FIELDS:
        text = row.get(name, "")
        if text and not re.fullmatch(r"-?\d+(\.\d+)?", text):
            raise AuditError(f"{where}: {name}={text!r} is not a number")
    if row.get("counts") and not _COUNTS.match(row["counts"]):
        raise AuditError(f"{where}: counts={row['counts']!r} is not 'a/n' or 'a/n vs c/m'")
    try:
        _parse_analysis(row.get("analysis", ""))
    except AuditError as exc:
        raise AuditError(f"{where}: analysis: {exc}") from None
    basis = row.get("paper_basis", "")
    if basis and basis.partition(":")[0] not in ("counts", "sum", "strata", "ci"):
        raise AuditError(
            f"{where}: paper_basis={basis!r} is not one of counts, sum:ID+ID, strata:ID+ID, "
            "ci:ID+ID"
        )
    return ReportedFigure(
        id=row["id"],
        location=row["location"],
        statistic=row["statistic"],
        reported=row["reported"],
        numbers={n: row.get(n, "") for n in NUMERIC_FIELDS},
        counts=row.get("counts", ""),
        analysis=row.get("analysis", ""),
        paper_basis=basis,
        note=row.get("note", ""),
    )


# --- recomputation from the paper's own figures -------------------------------------------

_COUNTS = re.compile(r"^\s*(\d+)/(\d+)(?:\s+vs\.?\s+(\d+)/(\d+))?\s*$")


def _parse_counts(text: str) -> tuple[int, ...]:
    match = _COUNTS.match(text)
    if not match:
        raise AuditError(f"counts {text!r} are not 'a/n' or 'a/n vs c/m'")
    return tuple(int(g) for g in match.groups() if g is not None)


def _two_by_two(rows: Iterable[tuple[str, tuple[int, ...]]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"study": name, "events_treat": c[0], "n_treat": c[1],
             "events_control": c[2], "n_control": c[3]}
            for name, c in rows
        ]
    )


def _rr_from_table(table: pd.DataFrame, basis: str, event: str = "events") -> Recomputed:
    res = meta_analysis(table, "MH", "RR", event)  # type: ignore[arg-type]
    counts = f"{res.events_treat}/{res.n_treat} vs {res.events_control}/{res.n_control}"
    return Recomputed(basis, res.estimate, res.ci_low, res.ci_high, res.p, counts)


def _log_ci(fig: ReportedFigure) -> tuple[float, float]:
    """Log RR and its SE recovered from a printed RR and 95% CI."""
    low, high = fig.number("ci_low"), fig.number("ci_high")
    value = fig.number("value")
    if low is None or high is None or value is None:
        raise AuditError(f"{fig.id}: no printed RR and CI to recover a standard error from")
    return math.log(value), (math.log(high) - math.log(low)) / (2 * Z95)


def _z_test_p(fig: ReportedFigure) -> float:
    log_rr, se = _log_ci(fig)
    return float(2 * stats.norm.sf(abs(log_rr / se)))


def _from_paper(
    fig: ReportedFigure, figures: Mapping[str, ReportedFigure], event: str = "events"
) -> Recomputed | None:
    basis = fig.paper_basis
    if not basis:
        return None
    kind, _, refs = basis.partition(":")
    others = [figures[r] for r in refs.split("+")] if refs else []
    if kind == "counts":
        counts = _parse_counts(fig.counts)
        if fig.statistic == "rate":
            return Recomputed(f"paper's counts {fig.counts}", 100 * counts[0] / counts[1])
        table = _two_by_two([("paper", counts)])
        return _rr_from_table(table, f"paper's totals {fig.counts} as one 2x2 table", event)
    if kind == "sum":
        total = sum(sum(_parse_counts(o.counts)[1::2]) for o in others)
        return Recomputed(f"women in {' + '.join(o.counts for o in others)}", float(total))
    if kind == "strata":
        table = _two_by_two([(o.id, _parse_counts(o.counts)) for o in others])
        label = " and ".join(o.counts for o in others)
        return _rr_from_table(table, f"MH over the paper's subgroup totals {label}", event)
    if kind == "ci":
        log_rrs, ses = zip(*(_log_ci(other) for other in others), strict=True)
        p = difference_test(log_rrs, ses).p
        label = " vs ".join(o.reported for o in others)
        return Recomputed(f"test for subgroup differences from the printed {label}", p=p)
    raise AuditError(f"{fig.id}: unknown paper_basis {basis!r}")


# --- recomputation from the trial table ---------------------------------------------------

_TOKEN = re.compile(r"(\w+)=(.+?)(?=\s+\w+=|$)")
_KINDS = ("n_trials", "n_women", "arm_rate", "overall")


def _parse_analysis(text: str) -> tuple[str, dict[str, str], str | None, dict[str, str]]:
    """Split a query into (kind, column filters, by column, analysis options)."""
    text = text.strip()
    kind = "overall"
    first = text.split(" ", 1)[0] if text else ""
    if first in _KINDS:
        kind, text = first, text[len(first):].strip()
    pairs = dict(_TOKEN.findall(text))
    if text and not pairs:
        raise AuditError(f"{text!r} is not KIND, COLUMN=VALUE, by=COLUMN or OPTION=VALUE")
    by = pairs.pop("by", None)
    options = {key: pairs.pop(key) for key in OPTION_KEYS if key in pairs}
    allowed = {"measure": MEASURES, "method": METHODS, "model": MODELS,
               "event": ("events", "non_events"), "tau2": TAU2_METHODS,
               "hksj": ("true", "false")}
    for key, value in options.items():
        if key == "ci":
            if not re.fullmatch(r"\d+(\.\d+)?", value) or not 50 <= float(value) < 100:
                raise AuditError(f"ci={value!r} is not a percentage in [50, 100)")
        elif value not in allowed[key]:
            raise AuditError(f"{key}={value!r} is not one of {', '.join(allowed[key])}")
    return kind, pairs, by, options


def _with_population(trials: pd.DataFrame, strata: str | None) -> pd.DataFrame:
    """Add ``population``: a trial's single strata level, or its covariate's pooled level."""
    if strata is None or strata not in trials.columns:
        return trials
    pooled = next(
        (c.pooled for c in schema_of(trials).covariates.values()
         if c.column == strata and c.pooled),
        "mixed",
    )
    levels = trials.groupby("study", sort=False)[strata].agg(lambda s: set(s))
    population = levels.map(lambda s: next(iter(s)) if len(s) == 1 else pooled)
    return trials.assign(population=trials["study"].map(population))


def _counts_text(rows: pd.DataFrame) -> str:
    sums = [int(rows[c].sum()) for c in ("events_treat", "n_treat", "events_control",
                                          "n_control")]
    return f"{sums[0]}/{sums[1]} vs {sums[2]}/{sums[3]}"


def _rows_key(table: pd.DataFrame) -> tuple[object, ...]:
    """Return what an analysis of ``table`` depends on: its columns, rows and schema."""
    hashed = pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes()
    return tuple(table.columns), hashed, id(schema_of(table))


def _from_trials(
    fig: ReportedFigure, trials: pd.DataFrame, variant: str, memo: dict | None = None
) -> Recomputed | None:
    """Return the figure recomputed from the trial table (None: the table cannot give it)."""
    if not fig.analysis:
        return None
    kind, where, by, options = _parse_analysis(fig.analysis)
    arm = where.pop("arm", None)
    row = where.pop("row", None)
    strata = schema_of(trials).strata
    memo = {} if memo is None else memo
    if ("population", id(trials)) not in memo:  # the tables live as long as the memo
        memo["population", id(trials)] = _with_population(trials, strata)
    table = _selected_rows(fig, memo["population", id(trials)], trials, where, row)
    if table is None or table.empty:
        return None
    label = f"trial table ({variant})"
    if fig.statistic in STUDY_STATISTICS:
        return _study_figure(fig.statistic, trials, table, label, options, memo)
    if kind in ("n_trials", "n_women", "arm_rate"):
        return _count_figure(kind, table, arm, label)
    base, keep = _pooling_rows(trials, table, strata, where)
    if fig.statistic == "counts":
        # Every study in scope, estimable or not, as RevMan's total rows count them.
        return Recomputed(label, counts=_counts_text(base))
    result = _shared_analysis(memo, base, by, keep, options)
    if result is None:
        return None
    return _pooled_figure(fig.statistic, result, label, keep)


def _selected_rows(
    fig: ReportedFigure,
    table: pd.DataFrame,
    trials: pd.DataFrame,
    where: Mapping[str, str],
    row: str | None,
) -> pd.DataFrame | None:
    """Return the rows the figure's filters (and ``row``) select; None: a variant lacks the row."""
    for column, value in where.items():
        if column not in table.columns:
            raise AuditError(f"{fig.id}: analysis filters on unknown column {column!r}")
        table = table[table[column].astype(str) == value]
    if row is not None:
        labels = row_labels(trials)
        if row not in labels:
            return None  # a variant without the row
        table = table[table.index == trials.index[labels.index(row)]]
    return table


def _count_figure(kind: str, table: pd.DataFrame, arm: str | None, label: str) -> Recomputed:
    """Return a count of the rows: trials, participants, or an arm's event rate (percent)."""
    if kind == "n_trials":
        # Trials as the dataset defines them: a trial's strata rows count once, and rows
        # that share a study name without declared strata are separate trials.
        return Recomputed(label, float(len(set(trial_ids(table)))))
    if kind == "n_women":
        return Recomputed(label, float(table["n_treat"].sum() + table["n_control"].sum()))
    events, n = table[f"events_{arm}"].sum(), table[f"n_{arm}"].sum()
    return Recomputed(label, 100 * events / n, counts=f"{events}/{n}")


def _pooling_rows(
    trials: pd.DataFrame, table: pd.DataFrame, strata: str | None, where: Mapping[str, str]
) -> tuple[pd.DataFrame, dict[str, str] | None]:
    """Return the trial rows to pool and the strata filter the analysis keeps (None: none)."""
    if strata is None:
        return trials.loc[table.index], None
    # Filters select whole trials; only a filter on the strata column selects rows.
    base = trials[trials["study"].isin(table["study"])]
    if strata in where:
        base = base[base[strata].astype(str) == where[strata]]
    return base, ({strata: where[strata]} if strata in where else None)


def _shared_analysis(
    memo: dict,
    base: pd.DataFrame,
    by: str | None,
    keep: dict[str, str] | None,
    options: Mapping[str, str],
) -> SubgroupAnalysis | None:
    """Return the analysis of ``base`` (None: no estimable study), pooled once per memo."""
    # Figures of one analysis, and variants that leave its rows alone, share one pooling (the
    # audit tries every variant on every figure: 351 poolings for the shipped dataset, 156
    # distinct).
    key = (by, tuple(sorted((keep or {}).items())), tuple(sorted(options.items())),
           _rows_key(base))
    if key not in memo:
        try:
            memo[key] = analyze(
                base, by=by, where=keep,
                measure=options.get("measure"),  # type: ignore[arg-type]
                method=options.get("method"),  # type: ignore[arg-type]
                model=options.get("model"),  # type: ignore[arg-type]
                ci_level=float(options["ci"]) / 100 if "ci" in options else None,
                event=options.get("event", "events"),  # type: ignore[arg-type]
                **_random_options(options),  # type: ignore[arg-type]
            )
        except AnalysisError as exc:
            if not str(exc).startswith("no estimable study"):
                raise
            memo[key] = None
    return memo[key]


def _pooled_figure(
    statistic: str, result: SubgroupAnalysis, label: str, keep: dict[str, str] | None
) -> Recomputed | None:
    """Return the figure ``statistic`` names from an analysis (None: it has no such test)."""
    total = result.overall
    if statistic.startswith("subgroup_"):
        test = result.test
        if test is None:
            return None
        name = f"{label}: {total.label} test for subgroup differences"
        return {
            "subgroup_chi2": Recomputed(name, test.q),
            "subgroup_df": Recomputed(name, float(test.df)),
            "subgroup_p": Recomputed(name, p=test.p),
            "subgroup_i2": Recomputed(name, test.i2),
        }[statistic]
    if statistic == "i2_below_50":
        return Recomputed(label, total.i2)
    note = f"{label}: {total.label} over {total.k} {'strata' if keep else 'studies'}"
    single = {
        "z": Recomputed(note, abs(total.z)),
        "p": Recomputed(note, p=total.p),
        "significance": Recomputed(note, p=total.p),
        "chi2": Recomputed(note, total.q),
        "df": Recomputed(note, float(total.df)),
        "p_chi2": Recomputed(note, p=total.p_q),
        "i2": Recomputed(note, total.i2),
        "tau2": Recomputed(note, total.tau2),
        "tau2_ci": Recomputed(note, ci_low=_defined(total.tau2_ci_low),
                              ci_high=_defined(total.tau2_ci_high)),
        "prediction_interval": Recomputed(note, ci_low=_defined(total.pi_low),
                                          ci_high=_defined(total.pi_high)),
    }
    if statistic in single:
        return single[statistic]
    counts = f"{total.events_treat}/{total.n_treat} vs {total.events_control}/{total.n_control}"
    return Recomputed(note, total.estimate, total.ci_low, total.ci_high, total.p, counts,
                      total.measure)


def _defined(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _random_options(options: Mapping[str, str]) -> dict[str, object]:
    """``tau2_method`` and ``hksj`` for :func:`analyze` from a query's ``tau2=``, ``hksj=``."""
    out: dict[str, object] = {}
    if "tau2" in options:
        out["tau2_method"] = options["tau2"]
    if "hksj" in options:
        out["hksj"] = options["hksj"] == "true"
    return out


def _study_figure(
    statistic: str,
    trials: pd.DataFrame,
    table: pd.DataFrame,
    label: str,
    options: Mapping[str, str],
    memo: dict,
) -> Recomputed | None:
    """Recompute a row's estimate, CI or standard error, or the weight of ``table``'s rows.

    Weights are those of the analysis of every row of ``trials`` (as RevMan prints a
    study's and a subgroup's weight in an analysis with subgroups), so a subgroup's weight
    is the sum of its studies'.
    """
    schema = schema_of(trials)
    if schema.strata is not None:
        return None  # a trial's strata are summed before pooling: no per-row weights
    event = options.get("event", "events")
    ci_level = float(options["ci"]) / 100 if "ci" in options else schema.ci_level
    key = ("weights", tuple(sorted(options.items())), _rows_key(trials))
    if key not in memo:
        try:
            overall = analyze(
                trials,
                measure=options.get("measure"),  # type: ignore[arg-type]
                method=options.get("method"),  # type: ignore[arg-type]
                model=options.get("model"),  # type: ignore[arg-type]
                ci_level=ci_level, event=event,  # type: ignore[arg-type]
                **_random_options(options),  # type: ignore[arg-type]
            ).overall
        except AnalysisError as exc:
            if not str(exc).startswith("no estimable study"):
                raise
            memo[key] = None
        else:
            eff = study_effects(trials, overall.measure, event, ci_level)  # type: ignore[arg-type]
            weights = pd.Series(0.0, index=trials.index)
            weights[eff["estimable"].to_numpy()] = overall.studies["weight"].to_numpy()
            memo[key] = (overall.measure, eff.set_axis(trials.index), weights)
    if memo[key] is None:
        return None
    measure, eff, weights = memo[key]
    if statistic == "weight":
        return Recomputed(f"{label}: weight in the analysis of every row",
                          float(weights.loc[table.index].sum()))
    if len(table) != 1 or not eff.loc[table.index[0], "estimable"]:
        return None
    study = eff.loc[table.index[0]]
    note = f"{label}: {study['study']}"
    if statistic == "study_se":
        return Recomputed(note, float(math.sqrt(study["vi"])))
    return Recomputed(note, float(study["effect"]), float(study["ci_low"]),
                      float(study["ci_high"]), measure=measure)


# --- comparison ---------------------------------------------------------------------------


def _decimals(text: str) -> int:
    return len(text.split(".")[1]) if "." in text else 0


def compare(fig: ReportedFigure, rec: Recomputed | None) -> str | None:
    """Return ``"exact"``, ``"last digit"`` or None (no match, or nothing to compare).

    ``"last digit"``: every printed number is within one unit of its last printed digit of
    the recomputed one (e.g. 1.02 for a printed 1.03). Counts of trials or women, and
    events/totals, match only exactly.

    Parameters
    ----------
    fig : ReportedFigure
    rec : Recomputed or None

    Returns
    -------
    str or None
    """
    if rec is None:
        return None
    if fig.statistic == "counts":
        return "exact" if rec.counts.replace(" ", "") == fig.counts.replace(" ", "") else None
    if fig.statistic == "i2_below_50":
        return "exact" if rec.value is not None and rec.value < 50 else None
    if fig.statistic == "significance":
        # The claim "(not) significant" is about the two-sided test at 5%.
        if rec.p is None:
            return None
        claims_significant = "not" not in fig.reported.lower()
        return "exact" if (rec.p < 0.05) == claims_significant else None
    worst = 0.0
    compared = 0
    for name in NUMERIC_FIELDS:
        printed = fig.numbers.get(name, "")
        got = getattr(rec, name)
        if not printed or got is None:
            continue
        unit = 10.0 ** -_decimals(printed)
        # Off by how many units of the last printed digit, after rounding as the paper does.
        off = abs(round(got / unit) - round(float(printed) / unit))
        worst = max(worst, off)
        compared += 1
    if compared == 0:
        return None
    if worst == 0:
        return "exact"
    return "last digit" if worst <= 1 and fig.statistic not in WHOLE_NUMBERS else None


def _fmt(rec: Recomputed | None, statistic: str) -> str:
    return rec.text(statistic) if rec is not None else "-"


def _explain(
    fig: ReportedFigure,
    figures: Mapping[str, ReportedFigure],
    paper: Recomputed | None,
    trials: Recomputed | None,
    paper_match: str | None,
    trials_match: str | None,
    reproducing: tuple[str, ...],
    variant: str,
    by_variant: Mapping[str, Recomputed | None],
    outcome: str = "event",
) -> str:
    parts: list[str] = []
    if paper is not None:
        status = f"matches ({paper_match})" if paper_match else "does not match"
        parts.append(f"From {paper.basis}: {_fmt(paper, fig.statistic)}, {status}.")
        if not paper_match and fig.statistic == "rr":
            flipped = _from_paper(fig, figures, event="non_events")
            if compare(fig, flipped):
                parts.append(
                    f"The printed value matches the RR of NO {outcome}: {_fmt(flipped, 'rr')}; "
                    f"the RR of {outcome} from the same totals is {paper.value:.2f}, pointing "
                    "the other way."
                )
    if fig.statistic == "subgroup_p":
        total = next(
            (
                o for o in figures.values()
                if o.statistic == "rr" and o.analysis == fig.analysis and o.number("ci_low")
            ),
            None,
        )
        if total is not None:
            parts.append(
                f"It is a test for subgroup differences, not the pooled effect's test: the "
                f"pooled {total.reported} has Z-test P = {_z_test_p(total):.2f}."
            )
    if trials is not None:
        status = f"matches ({trials_match})" if trials_match else "does not match"
        parts.append(f"From the {trials.basis}: {_fmt(trials, fig.statistic)}, {status}.")
    elif fig.analysis:
        parts.append(f"The trial table ({variant}) has no rows for this analysis.")
    estimates = [r for r in by_variant.values() if r is not None and r.value is not None]
    if fig.statistic in ESTIMATES and len(estimates) > 1:
        low = min(estimates, key=lambda r: r.value or 0.0)
        high = max(estimates, key=lambda r: r.value or 0.0)
        parts.append(
            f"Across the {len(estimates)} data variants the pooled estimate ranges from "
            f"{_fmt(low, fig.statistic)} to {_fmt(high, fig.statistic)}."
        )
    if reproducing and len(reproducing) == len(by_variant):
        parts.append(f"All {len(by_variant)} data variants reproduce it exactly.")
    elif reproducing:
        parts.append(f"Data variants that reproduce it exactly: {', '.join(reproducing)}.")
    elif fig.analysis:
        if trials is None or not trials_match:
            own = _fmt(trials, fig.statistic)
            shown: dict[str, str] = {}
            for name, rec in by_variant.items():
                text = _fmt(rec, fig.statistic)
                if rec is not None and text != own:
                    shown.setdefault(text, name)  # first (simplest) variant giving each value
            if shown:
                listed = "; ".join(f"{n}: {text}" for text, n in list(shown.items())[:4])
                parts.append(f"Other data variants give {listed}.")
        parts.append("No data variant reproduces it exactly.")
    if fig.note:
        parts.append(fig.note.rstrip(".") + ".")
    return " ".join(parts)


def audit(
    dataset: str | Path,
    variant: str | None = None,
    variants: Iterable[str] | None = None,
    tables: Mapping[str, TrialTable] | None = None,
) -> Audit:
    """Recompute every reported figure and give a verdict for each.

    Each figure is recomputed (a) from the paper's own stated aggregates where its
    ``paper_basis`` says how, and (b) from the trial table under ``variant``. It is
    *reproduced* when (a) matches, or when there is no (a) and (b) matches; *differs*
    otherwise; *not_recomputable* when neither can be computed. Every data variant of the
    dataset is tried as well, and those that reproduce the figure are listed.

    Parameters
    ----------
    dataset : str or Path
        Dataset name or directory (holding ``trials.csv`` and ``reported.csv``).
    variant : str, optional
        Data variant for the trial-table recomputation (default: the dataset's default).
    variants : iterable of str, optional
        Variants to try for ``variants_reproducing`` (default: every variant of the dataset
        and every composition of variants that override disjoint rows).
    tables : mapping of str to TrialTable, optional
        Tables of the dataset already loaded, by variant (a report's); the others are loaded.

    Returns
    -------
    Audit
        The rows in ``reported.csv``'s order (a sequence of :class:`AuditRow`).

    Examples
    --------
    >>> audit("tests/data/rosiglitazone")                               # doctest: +SKIP
    Audit(rosiglitazone, variant published: 3 figures, 3 reproduced, 0 differ, 0 not ...)
    """
    figures = load_reported(dataset)
    by_id = {f.id: f for f in figures}
    found = load_dataset(dataset)
    outcome = found.schema.outcome
    names = list(variants) if variants is not None else variant_combinations(found)
    loaded = dict(tables or {})

    def frame(name: str | None) -> pd.DataFrame:
        # The recomputations take a DataFrame (the schema in its attrs).
        if name is None or name not in loaded:
            return load_table(found, name).to_frame()
        return loaded[name].to_frame()

    others = {name: frame(name) for name in names}
    table = others[variant] if variant in others else frame(variant)
    variant = table.attrs["variant"]
    rows = []
    memo: dict = {}
    for fig in figures:
        for ref in re.findall(r"[A-Za-z_][\w]*", fig.paper_basis.partition(":")[2]):
            if ref not in by_id:
                raise AuditError(f"{fig.id}: paper_basis names unknown figure {ref!r}")
        paper = _from_paper(fig, by_id)
        trials = _from_trials(fig, table, variant, memo)
        paper_match, trials_match = compare(fig, paper), compare(fig, trials)
        by_variant = {name: _from_trials(fig, other, name, memo)
                      for name, other in others.items()}
        reproducing = tuple(n for n, r in by_variant.items() if compare(fig, r) == "exact")
        if paper is None and trials is None:
            verdict = "not_recomputable"
        # The paper's own aggregates are pooled as 2x2 tables, not trial by trial as RevMan
        # did, so a one-unit difference in the last digit is all that method can promise.
        elif paper_match or (paper is None and trials_match == "exact"):
            verdict = "reproduced"
        else:
            verdict = "differs"
        best = paper if paper is not None else trials
        explanation = _explain(
            fig, by_id, paper, trials, paper_match, trials_match, reproducing, variant,
            by_variant, outcome,
        )
        rows.append(
            AuditRow(
                id=fig.id,
                location=fig.location,
                statistic=fig.statistic,
                reported=fig.reported,
                recomputed=_fmt(best, fig.statistic),
                verdict=verdict,
                explanation=explanation,
                from_paper=paper,
                from_trials=trials,
                variants_reproducing=reproducing,
                trials_origin=found.schema.trials_origin,
            )
        )
    return Audit(tuple(rows), found.name, variant)


def _variant_list(names: tuple[str, ...], n_variants: int) -> str:
    if not names:
        return "none"
    if len(names) == n_variants:
        return "all"
    return ", ".join(names)


def audit_intro(
    schema: DatasetSchema, variant: str, rows: Sequence[AuditRow] = ()
) -> str:
    """Return the audit page's opening sentences.

    What each figure was recomputed from, with which formulas, and when a figure counts as
    reproduced.

    Parameters
    ----------
    schema : DatasetSchema
        The software the publication names (``[citation] software``: "Review Manager 5.4" is
        read "RevMan 5.4") and what the publication is called (``publication``).
    variant : str
        The data variant of the trial-table recomputation.
    rows : sequence of AuditRow
        The audit: whether any figure is recomputed from the publication's own totals.
    """
    software = schema.citation.get("software", "").replace("Review Manager", "RevMan").strip()
    formulas = f"{software}'s formulas" if software else "RevMan 5's formulas"
    totals = ("the publication's own stated totals and from "
              if any(r.from_paper is not None for r in rows) else "")
    return (
        f"Each figure recomputed from {totals}the trial table (variant `{variant}`) with "
        f"{formulas}; every data variant tried. A figure is reproduced when the recomputed "
        f"numbers, rounded as {schema.publication} rounds, equal the printed ones."
    )


def audit_markdown(
    rows: Sequence[AuditRow],
    variant: str,
    citation: str = "",
    n_variants: int = 0,
    schema: DatasetSchema | None = None,
) -> str:
    """Render the audit as a markdown document (``reports/audit.md``).

    Parameters
    ----------
    rows : sequence of AuditRow
        An :class:`Audit`, or any of its rows.
    variant : str
        The data variant the trial-table column used.
    citation : str
        The paper's citation, printed under the title.
    n_variants : int
        How many variants were tried (a figure every one reproduces is marked ``all``).
    schema : DatasetSchema, optional
        The dataset's schema: the published analysis the recomputation follows.

    Returns
    -------
    str
    """
    schema = schema or DatasetSchema.defaults()
    method = {"MH": "M-H", "IV": "IV", "PETO": "Peto"}[schema.method]
    measure = "Peto OR" if schema.measure == "PETO_OR" else schema.measure
    analysis = f"{method}, {schema.model.capitalize()} {measure}"
    if schema.model == "random" and (schema.tau2 != "DL" or schema.hksj):
        analysis += f" ({schema.tau2}{', HKSJ' if schema.hksj else ''}: RevMan Web's options)"
    counts = {v: sum(r.verdict == v for r in rows) for v in VERDICTS}
    out = [
        "# Audit of the published figures",
        "",
        citation,
        "",
        f"Recomputed with RevMan 5's formulas (the published analysis: {analysis}). "
        f"Trial table variant: `{variant}`. Verdicts: {counts['reproduced']} reproduced, "
        f"{counts['differs']} differ, {counts['not_recomputable']} not recomputable.",
        "",
        tables.markdown(tables.frame(
            ["id", "where", "reported", "recomputed", "from trials", "verdict",
             "variants reproducing"],
            [(r.id, r.location, r.reported, r.recomputed, _fmt(r.from_trials, r.statistic),
              f"**{r.verdict_text}**", _variant_list(r.variants_reproducing, n_variants))
             for r in rows],
        )),
        "",
        "## Explanations",
        "",
    ]
    out += [f"- **{r.id}** ({r.verdict}): {r.explanation}" for r in rows]
    return "\n".join(out) + "\n"
