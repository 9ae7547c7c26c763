"""Read a RevMan 5 review (``.rm5``) and write one dataset folder per dichotomous outcome.

A ``.rm5`` file is XML. Its ``ANALYSES_AND_DATA`` holds ``COMPARISON`` elements, each with
outcomes: ``DICH_OUTCOME`` (2x2 tables; the only kind imported), ``CONT_OUTCOME``,
``IV_OUTCOME`` (generic inverse variance), ``IPD_OUTCOME`` (O - E and variance). A
dichotomous outcome carries its analysis (``EFFECT_MEASURE`` RR/OR/RD/PETO_OR, ``METHOD``
MH/IV/PETO, ``RANDOM``, ``CI_TOTAL``), the results RevMan computed (``EFFECT_SIZE``,
``CI_START``/``CI_END``, ``Z``, ``P_Z``, ``CHI2``, ``DF``, ``P_CHI2``, ``I2``, ``TAU2``; the test
for subgroup differences as ``Q``, ``P_Q``, ``I2_Q``), its group and graph labels, and either
``DICH_DATA`` rows (one per study: ``STUDY_ID``, ``EVENTS_1``/``TOTAL_1`` experimental,
``EVENTS_2``/``TOTAL_2`` control) or ``DICH_SUBGROUP`` elements holding them, each with the
same result attributes. Study names and years come from the ``STUDY`` elements
(``ID``, ``NAME``, ``YEAR``). The layout follows R's meta package (``read.rm5``,
``metacr``; Schwarzer), which reads the same files.

:func:`import_rm5` writes, for outcome ``c.o``, the folder ``DIR/c.o/`` with ``trials.csv``,
``dataset.toml`` (see :mod:`rebayes.data.schema`), ``reported.csv`` (every figure RevMan stored,
for ``rebayes audit``) and a marker ``.rebayes-import`` so that a later import may replace
the folder and nothing else. Folder names come only from RevMan's numbers, checked to be
numbers (``COMPARISON NO="../x"`` is refused), so nothing in a file can place a folder outside
``DIR``; two dichotomous outcomes with the same number are refused, not merged. The classes
here are the one model of a review that every reader fills
(:mod:`rebayes.data.cochrane_package` for RevMan Web's data packages,
:mod:`rebayes.data.revman_csv` for RevMan 5's analyses export), and :func:`import_review`
writes any of them.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import re
import shutil
import tempfile
import textwrap
import tomllib
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from rebayes.atomic import write_text_atomic
from rebayes.data.counts import DataError, parse_count
from rebayes.data.direction import DirectionEvidence, direction_from_labels
from rebayes.data.multiarm import HANDBOOK, shared_controls
from rebayes.data.schema import DatasetSchema, SchemaError
from rebayes.errors import RebayesError
from rebayes.folders import (
    STAGING_OWNER,
    OutputDirectoryError,
    check_output_folder,
    staging_folder,
)

__all__ = [
    "MARKER",
    "DichotomousOutcome",
    "ExtraColumn",
    "ImportResult",
    "Review",
    "RevManError",
    "StoredResult",
    "StudyRow",
    "import_review",
    "import_rm5",
    "read_rm5",
]

#: File marking a folder as written by ``rebayes import`` (it may be replaced by another).
MARKER = ".rebayes-import"
#: Everything an import writes into an outcome's folder; a folder holding more is not replaced.
IMPORTED_FILES = ("trials.csv", "dataset.toml", "reported.csv", MARKER)
OUTCOME_KINDS = {
    "CONT_OUTCOME": "continuous",
    "IV_OUTCOME": "generic inverse variance",
    "IPD_OUTCOME": "O - E and variance",
    "OE_OUTCOME": "O - E and variance",
}


class RevManError(RebayesError):
    """A ``.rm5`` file that cannot be read (one line naming the file and the place)."""


@dataclass(frozen=True)
class StoredResult:
    """What RevMan stored for one total or subtotal (numbers as RevMan computed them)."""

    name: str
    number: str
    estimable: bool
    effect: float | None
    ci_low: float | None
    ci_high: float | None
    z: float | None
    p: float | None
    chi2: float | None
    df: int | None
    p_chi2: float | None
    i2: float | None
    tau2: float | None
    counts: tuple[int, int, int, int]
    weight: float | None = None
    tau2_ci: tuple[float, float] | None = None
    prediction: tuple[float, float] | None = None

    def swapped(self) -> StoredResult:
        """Return the same result with non-events counted (RevMan's "swap events")."""
        e1, n1, e2, n2 = self.counts
        return replace(self, counts=(n1 - e1, n1, n2 - e2, n2))


@dataclass(frozen=True)
class StudyRow:
    """One study row of an analysis: its 2x2 table in one (sub)group, and what was stored.

    ``effect``, ``ci``, ``se`` and ``weight`` are the per-study figures a RevMan export
    stored (None when the format has none); ``extra`` holds further columns for
    ``trials.csv`` (risk-of-bias judgements), as ``(column, value)`` pairs.
    """

    study: str
    year: str
    events_treat: int
    n_treat: int
    events_control: int
    n_control: int
    subgroup: str | None
    effect: float | None = None
    ci: tuple[float, float] | None = None
    se: float | None = None
    weight: float | None = None
    extra: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ExtraColumn:
    """A categorical column an import adds to ``trials.csv`` (a risk-of-bias domain)."""

    name: str
    label: str
    levels: tuple[str, ...]
    description: str = ""


@dataclass(frozen=True)
class DichotomousOutcome:
    """One dichotomous outcome (a RevMan analysis ``c.o``) with its data and stored results."""

    number: str
    comparison: str
    name: str
    measure: str
    method: str
    model: str
    ci_level: float
    treatment: str
    control: str
    graph_labels: tuple[str, str]
    swap_events: bool
    subgroups: tuple[str, ...]
    rows: tuple[StudyRow, ...]
    overall: StoredResult | None
    subtotals: tuple[StoredResult, ...]
    subgroup_test: tuple[float, float, float] | None
    dropped: tuple[str, ...] = ()
    tau2_method: str = "DL"
    hksj: bool = False
    extra_columns: tuple[ExtraColumn, ...] = ()
    #: (column, level) of the default sensitivity analysis (studies at low risk of bias).
    sensitivity: tuple[str, str] | None = None

    @property
    def direction(self) -> DirectionEvidence | None:
        """The direction RevMan's graph labels state, if they are standard ones, else None.

        RevMan draws effects below the null (fewer events with the experimental intervention)
        on the left, under ``GRAPH_LABEL_1``: "Favours experimental" there, its default, says
        that fewer events is better (:func:`rebayes.data.direction.direction_from_labels`).
        """
        left, right = self.graph_labels
        return direction_from_labels(left, right, treatment=self.treatment,
                                     control=self.control)

    @property
    def higher_is_better(self) -> bool | None:
        """Direction inferred from the graph labels, else None (undeclared)."""
        evidence = self.direction
        return None if evidence is None else evidence.higher_is_better


@dataclass(frozen=True)
class Review:
    """A RevMan 5 review's title, DOI, dichotomous outcomes and the outcomes skipped."""

    path: Path
    title: str
    doi: str
    software: str
    outcomes: tuple[DichotomousOutcome, ...]
    skipped: tuple[str, ...] = ()


@dataclass(frozen=True)
class ImportResult:
    """What :func:`import_rm5` wrote (folders) and said (notes for stderr)."""

    folders: tuple[Path, ...]
    notes: tuple[str, ...] = field(default=())


def _number(element: ET.Element, name: str, where: str) -> float | None:
    text = (element.get(name) or "").strip()
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise RevManError(f"{where}: {name}={text!r} is not a number") from None
    return value if math.isfinite(value) else None


def _count(element: ET.Element, name: str, where: str) -> int:
    # The CSV loader's rule, exactly (no float on the way; above 10^9 refused).
    text = (element.get(name) or "").strip()
    if not re.fullmatch(r"[0-9]+(\.0+)?", text):
        raise RevManError(f"{where}: {name}={text!r} is not a whole number")
    try:
        return parse_count(where, name, text.partition(".")[0])
    except DataError as exc:
        raise RevManError(str(exc)) from None


#: RevMan's numbers of comparisons, outcomes and subgroups (1, 2, ...): they name folders, so
#: nothing else is accepted (no separators, dots, "..", signs or other scripts' digits).
_NUMBER = re.compile(r"[0-9]{1,6}")


def _number_of(element: ET.Element, where: str, default: str | None = None) -> str:
    """Return an element's ``NO`` as a canonical number (``"01"`` -> ``"1"``), or refuse it."""
    text = element.get("NO")
    if text is None and default is not None:
        return default
    if text is None or not _NUMBER.fullmatch(text.strip()):
        raise RevManError(
            f"{where}: {element.tag} NO={text or ''!r} is not a number (RevMan numbers them "
            "1, 2, 3, ...)"
        )
    return str(int(text))


def _stored(element: ET.Element, name: str, number: str, where: str) -> StoredResult:
    df = _number(element, "DF", where)
    return StoredResult(
        name=name,
        number=number,
        estimable=element.get("ESTIMABLE", "YES") == "YES",
        effect=_number(element, "EFFECT_SIZE", where),
        ci_low=_number(element, "CI_START", where),
        ci_high=_number(element, "CI_END", where),
        z=_number(element, "Z", where),
        p=_number(element, "P_Z", where),
        chi2=_number(element, "CHI2", where),
        df=None if df is None else int(df),
        p_chi2=_number(element, "P_CHI2", where),
        i2=_number(element, "I2", where),
        tau2=_number(element, "TAU2", where),
        counts=tuple(  # type: ignore[arg-type]
            _count(element, key, where) if element.get(key) else 0
            for key in ("EVENTS_1", "TOTAL_1", "EVENTS_2", "TOTAL_2")
        ),
    )


def _text(element: ET.Element | None, tag: str) -> str:
    found = element.find(tag) if element is not None else None
    return " ".join((found.text or "").split()) if found is not None else ""


def read_rm5(path: str | Path) -> Review:
    """Read a RevMan 5 review file.

    Parameters
    ----------
    path : str or Path
        The ``.rm5`` file.

    Returns
    -------
    Review
        Its dichotomous outcomes; other outcome types are listed in ``skipped``.

    Raises
    ------
    RevManError
        One line naming the file (and the outcome and study where the fault is).
    """
    path = Path(path)
    label = path.name
    if not path.is_file():
        raise RevManError(f"{path}: no such file")
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise RevManError(f"{label}: not a RevMan 5 file (XML error: {exc})") from None
    if root.tag != "COCHRANE_REVIEW":
        raise RevManError(f"{label}: not a RevMan 5 file (root element <{root.tag}>)")
    names = {s.get("ID", ""): (str(s.get("NAME") or s.get("ID", "")), s.get("YEAR") or "")
             for s in root.iter("STUDY")}
    title = _text(root.find("COVER_SHEET"), "TITLE")
    software = "Review Manager " + (root.get("REVMAN_SUB_VERSION") or root.get(
        "REVMAN_VERSION") or "5")
    outcomes: list[DichotomousOutcome] = []
    skipped: list[str] = []
    analyses = root.find("ANALYSES_AND_DATA")
    for comparison in analyses.iter("COMPARISON") if analyses is not None else ():
        c_no = _number_of(comparison, label)
        c_name = _text(comparison, "NAME")
        for element in comparison:
            if not element.tag.endswith("_OUTCOME"):
                continue
            number = f"{c_no}.{_number_of(element, f'{label}: comparison {c_no}')}"
            name = _text(element, "NAME")
            if element.tag != "DICH_OUTCOME":
                kind = OUTCOME_KINDS.get(element.tag, element.tag.lower())
                skipped.append(
                    f"skipped outcome {number} '{name}' ({kind}; only dichotomous outcomes "
                    "are imported)"
                )
                continue
            if any(o.number == number for o in outcomes):
                raise RevManError(
                    f"{label}: two dichotomous outcomes are numbered {number} (RevMan numbers "
                    "each outcome of a comparison once)"
                )
            outcomes.append(_outcome(element, number, c_name, name, names, label))
    return Review(path, title, root.get("DOI") or "", software, tuple(outcomes),
                  tuple(skipped))


def _outcome(
    element: ET.Element,
    number: str,
    comparison: str,
    name: str,
    names: dict[str, tuple[str, str]],
    label: str,
) -> DichotomousOutcome:
    where = f"{label}: outcome {number}"
    measure = element.get("EFFECT_MEASURE") or _text(element, "EFFECT_MEASURE")
    method = element.get("METHOD") or "IV"
    if measure not in ("RR", "OR", "RD", "PETO_OR") or method not in ("MH", "IV", "PETO"):
        raise RevManError(f"{where}: unknown analysis {method} {measure}")
    swap = element.get("SWAP_EVENTS", "NO") == "YES"
    ci_level = (_number(element, "CI_TOTAL", where) or 95.0) / 100
    rows: list[StudyRow] = []
    dropped: list[str] = []
    subgroups: list[str] = []
    subtotals: list[StoredResult] = []

    def add_rows(parent: ET.Element, subgroup: str | None) -> None:
        for data in parent.findall("DICH_DATA"):
            study, year = names.get(data.get("STUDY_ID", ""), (data.get("STUDY_ID", "?"), ""))
            at = f"{where}, study {study!r}"
            e1, n1 = _count(data, "EVENTS_1", at), _count(data, "TOTAL_1", at)
            e2, n2 = _count(data, "EVENTS_2", at), _count(data, "TOTAL_2", at)
            if n1 == 0 or n2 == 0:
                dropped.append(study)  # RevMan shows it as "Not estimable"; no table to keep
                continue
            if e1 > n1 or e2 > n2:
                raise RevManError(f"{at}: more events than participants")
            if swap:
                e1, e2 = n1 - e1, n2 - e2
            rows.append(StudyRow(study, year.strip(), e1, n1, e2, n2, subgroup))

    has_subgroups = element.get("SUBGROUPS", "NO") == "YES"
    if has_subgroups:
        for j, sub in enumerate(element.findall("DICH_SUBGROUP"), start=1):
            sub_name = _text(sub, "NAME") or f"Subgroup {j}"
            sub_no = f"{number}.{_number_of(sub, where, default=str(j))}"
            subgroups.append(sub_name)
            add_rows(sub, sub_name)
            subtotals.append(_stored(sub, sub_name, sub_no, f"{where}, subgroup {sub_no}"))
    else:
        add_rows(element, None)
    totals = element.get("TOTALS", "YES")
    overall = _stored(element, "Total", number, where) if totals == "YES" else None
    test: tuple[float, float, float] | None = None
    if (
        has_subgroups
        and totals != "NO"
        and element.get("SUBGROUP_TEST", "NO") == "YES"
        and sum(s.estimable for s in subtotals) >= 2
    ):
        q, p, i2 = (_number(element, key, where) for key in ("Q", "P_Q", "I2_Q"))
        if q is not None and p is not None and i2 is not None:
            test = (q, p, i2)
    if swap:
        subtotals = [s.swapped() for s in subtotals]
        overall = overall.swapped() if overall is not None else None
    return DichotomousOutcome(
        number=number,
        comparison=comparison,
        name=name,
        measure=measure,
        method=method,
        # Peto's method has no random-effects form (RevMan ignores RANDOM for it).
        model=("random" if element.get("RANDOM", "NO") == "YES" and method != "PETO"
               and measure != "PETO_OR" else "fixed"),
        ci_level=ci_level,
        treatment=_text(element, "GROUP_LABEL_1") or "experimental",
        control=_text(element, "GROUP_LABEL_2") or "control",
        graph_labels=(_text(element, "GRAPH_LABEL_1"), _text(element, "GRAPH_LABEL_2")),
        swap_events=swap,
        subgroups=tuple(subgroups),
        rows=tuple(rows),
        overall=overall,
        subtotals=tuple(subtotals if totals != "NO" else ()),
        subgroup_test=test,
        dropped=tuple(dropped),
    )


# --- writing --------------------------------------------------------------------------------


def _toml_string(text: str) -> str:
    # A JSON string is a TOML basic string, except that TOML wants DEL escaped too.
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _num(value: float) -> str:
    """Four significant digits (at least four decimals): what the audit compares."""
    if value == 0:
        return "0.0000"
    decimals = min(10, max(4, 3 - math.floor(math.log10(abs(value)))))
    return f"{value:.{decimals}f}"


def trials_csv(outcome: DichotomousOutcome) -> str:
    """Return the outcome's ``trials.csv`` text."""
    years = [r.year for r in outcome.rows]
    columns = ["study", "events_treat", "n_treat", "events_control", "n_control"]
    if outcome.subgroups:
        columns.append("subgroup")
    if any(years):
        columns.append("year")
    extra = [c.name for c in outcome.extra_columns]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns + extra)
    for r in outcome.rows:
        values = [r.study, r.events_treat, r.n_treat, r.events_control, r.n_control]
        if outcome.subgroups:
            values.append(r.subgroup)
        if any(years):
            values.append(r.year)
        given = dict(r.extra)
        values += [given.get(name, "") for name in extra]
        writer.writerow(values)
    return buffer.getvalue()


def _shared_controls(outcome: DichotomousOutcome) -> list:
    """Return the outcome's control arms shared by comparisons of one study (multi-arm)."""
    table = pd.DataFrame(
        [(r.study, r.events_control, r.n_control) for r in outcome.rows],
        columns=["study", "events_control", "n_control"],
    )
    return shared_controls(table)


def dataset_toml(outcome: DichotomousOutcome, review: Review) -> str:
    """Return the outcome's ``dataset.toml`` text (checked against :mod:`rebayes.data.schema`)."""
    q = _toml_string
    lines = [
        # The file's name as a quoted string: a name may hold a line break, which in a
        # comment would start a key of its own.
        f"# Written by `rebayes import` from {_toml_string(review.path.name)}, analysis "
        f"{outcome.number}.",
        f"title = {q(f'{outcome.comparison}: {outcome.name}')}",
        "# RevMan's outcome title; sentences quote it (\"a lower risk of the outcome '...'\").",
        "# A short noun for the event counted reads better: outcome = \"death\".",
        f"outcome_title = {q(outcome.name)}",
        f"treatment = {q(outcome.treatment)}",
        f"control = {q(outcome.control)}",
    ]
    evidence = outcome.direction
    left, right = outcome.graph_labels
    if evidence is None:
        lines += [
            f"# No direction of benefit: RevMan's graph labels ({left!r} | {right!r}) are not "
            "its standard",
            "# ones (\"Favours experimental\" | \"Favours control\", \"Favours [treatment]\", "
            "...), so every output",
            "# speaks of P(RR < 1) and P(RR > 1). Set higher_is_better = true if more events "
            "is better,",
            "# false if fewer.",
        ]
    else:
        reason = textwrap.wrap(f"Direction from RevMan's graph labels: {evidence.reason}.",
                               width=95)
        lines += [
            *(f"# {line}" for line in reason),
            f"higher_is_better = {'true' if evidence.higher_is_better else 'false'}",
            f"direction_evidence = {q(evidence.source)}",
        ]
    if outcome.swap_events:
        lines.append(
            "# RevMan analysed non-events for this outcome (swap events): the counts below "
            "are the non-events."
        )
    lines += [
        f"measure = {q(outcome.measure)}",
        f"method = {q(outcome.method)}",
        f"model = {q(outcome.model)}",
    ]
    if outcome.model == "random":
        lines += [f"tau2 = {q(outcome.tau2_method)}",
                  f"hksj = {'true' if outcome.hksj else 'false'}"]
    lines.append(f"ci_level = {outcome.ci_level:g}")
    notes = []
    if outcome.dropped:
        notes.append(
            "Left out (a group with no participants, not estimable in RevMan): "
            + ", ".join(outcome.dropped)
        )
    shared = _shared_controls(outcome)
    if shared:
        notes.append(
            "Multi-arm trials: " + ", ".join(f"{a.study} ({a.comparisons} comparisons)"
                                             for a in shared)
            + f" share one control arm between comparisons, entered as the review did; "
            f"the {HANDBOOK} split is the analysis 'Overall, shared control split'"
        )
    if notes:
        lines.append(f"notes = [{', '.join(q(n) for n in notes)}]")
    lines += ["", "[citation]", f"text = {q(review.title or review.path.stem)}"]
    if review.doi:
        lines.append(f"doi = {q(review.doi)}")
    lines.append(f"software = {q(review.software)}")
    if outcome.subgroups:
        lines += [
            "",
            "[covariates.subgroup]",
            'kind = "categorical"',
            'label = "subgroup"',
            'description = "RevMan\'s subgroups of this analysis, in its order"',
            f"levels = [{', '.join(q(s) for s in outcome.subgroups)}]",
        ]
    for column in outcome.extra_columns:
        lines += [
            "",
            f"[covariates.{column.name}]",
            'kind = "categorical"',
            f"label = {q(column.label)}",
            *([f"description = {q(column.description)}"] if column.description else []),
            f"levels = [{', '.join(q(level) for level in column.levels)}]",
        ]
    years = [r.year for r in outcome.rows if r.year]
    if years:
        kind = "continuous" if all(y.isdigit() for y in years) else "categorical"
        lines += ["", "[columns.year]", f'kind = "{kind}"', 'label = "year of publication"']
    lines += _frequentist_entries(outcome, bool(shared))
    text = "\n".join(lines) + "\n"
    try:
        DatasetSchema.from_dict(tomllib.loads(text), "dataset.toml")
    except (tomllib.TOMLDecodeError, SchemaError) as exc:  # a bug here, not the user's
        raise RevManError(f"{review.path.name}: outcome {outcome.number}: {exc}") from None
    return text


def _frequentist_entries(outcome: DichotomousOutcome, shared: bool) -> list[str]:
    """``[[frequentist]]`` tables: the analysis as published, then the sensitivity analyses.

    Written only when there is a sensitivity analysis to declare (risk of bias, a shared
    control arm); otherwise the report's defaults (overall, one per covariate) apply.
    """
    if outcome.sensitivity is None and not shared:
        return []
    q = _toml_string
    entries: list[tuple[str, list[str]]] = [("Overall (as published)", [])]
    if outcome.subgroups:
        entries.append(("By subgroup (as published)", ['by = "subgroup"']))
    if outcome.sensitivity is not None:
        column, level = outcome.sensitivity
        entries.append((
            "Sensitivity: studies at low risk of bias only",
            [f"where = {{ {column} = {q(level)} }}"],
        ))
    if shared:
        entries.append(("Overall, shared control split", ["split_shared_control = true"]))
    lines = ["", "# The RevMan tables of the report: the published analysis, then sensitivity "
             "analyses."]
    for title, body in entries:
        lines += ["", "[[frequentist]]", f"title = {q(title)}", *body]
    return lines


def variants_toml(outcome: DichotomousOutcome) -> str | None:
    """Return ``variants.toml`` (the low-risk-of-bias restriction as a data variant), or None."""
    if outcome.sensitivity is None:
        return None
    column, level = outcome.sensitivity
    drop = list(dict.fromkeys(r.study for r in outcome.rows if dict(r.extra).get(column) != level))
    if not drop or len(drop) == len({r.study for r in outcome.rows}):
        return None  # nothing to drop, or nothing would be left
    q = _toml_string
    lines = [
        "# Written by `rebayes import`: the default sensitivity analysis as a data variant.",
        "[low_risk_of_bias]",
        f"description = {q(f'studies whose {column} is {level} only')}",
        "drop = [",
        *(f"  {{ study = {q(study)} }}," for study in drop),
        "]",
    ]
    return "\n".join(lines) + "\n"


REPORTED_COLUMNS = ("id", "location", "statistic", "reported", "value", "ci_low", "ci_high",
                    "p", "counts", "analysis", "paper_basis", "note")


def _figures(
    result: StoredResult, outcome: DichotomousOutcome, prefix: str, random: bool
) -> Iterable[dict[str, str]]:
    e1, n1, e2, n2 = result.counts
    counts = f"{e1}/{n1} vs {e2}/{n2}"
    yield {"id": f"{prefix}_counts", "statistic": "counts", "counts": counts,
           "reported": counts}
    if not result.estimable or result.effect is None:
        return
    m = outcome.measure.replace("PETO_OR", "Peto OR")
    digits = 3 if outcome.measure == "RD" else 2
    if result.ci_low is not None and result.ci_high is not None:
        yield {
            "id": f"{prefix}_effect", "statistic": "effect",
            "reported": f"{m} {result.effect:.{digits}f} [{result.ci_low:.{digits}f}, "
                        f"{result.ci_high:.{digits}f}]",
            "value": _num(result.effect), "ci_low": _num(result.ci_low),
            "ci_high": _num(result.ci_high),
        }
    if result.z is not None:
        name = "t" if random and outcome.hksj else "Z"
        yield {"id": f"{prefix}_z", "statistic": "z", "reported": f"{name} = {result.z:.2f}",
               "value": _num(result.z)}
    if result.p is not None:
        yield {"id": f"{prefix}_p", "statistic": "p", "reported": f"P = {result.p:.2g}",
               "p": _num(result.p)}
    if result.df is not None and result.df > 0:
        for key, stat, text in (
            ("chi2", result.chi2, "Chi2 = {:.2f}"),
            ("p_chi2", result.p_chi2, "P = {:.2g}"),
            ("i2", result.i2, "I2 = {:.0f}%"),
        ):
            if stat is not None:
                column = "p" if key == "p_chi2" else "value"
                yield {"id": f"{prefix}_{key}", "statistic": key,
                       "reported": text.format(stat), column: _num(stat)}
        yield {"id": f"{prefix}_df", "statistic": "df", "reported": f"df = {result.df}",
               "value": str(result.df)}
        if random and result.tau2 is not None:
            yield {"id": f"{prefix}_tau2", "statistic": "tau2",
                   "reported": f"Tau2 = {result.tau2:.2f}", "value": _num(result.tau2)}
        if random and result.tau2_ci is not None:
            low, high = result.tau2_ci
            yield {"id": f"{prefix}_tau2_ci", "statistic": "tau2_ci",
                   "reported": f"Tau2 CI [{low:.2f}, {high:.2f}]", "ci_low": _num(low),
                   "ci_high": _num(high)}
    if random and result.prediction is not None:
        low, high = result.prediction
        yield {"id": f"{prefix}_pi", "statistic": "prediction_interval",
               "reported": f"PI [{low:.{digits}f}, {high:.{digits}f}]", "ci_low": _num(low),
               "ci_high": _num(high)}
    if result.weight is not None:
        yield {"id": f"{prefix}_weight", "statistic": "weight",
               "reported": f"Weight {result.weight:.1f}%", "value": _num(result.weight)}


def _row_labels(outcome: DichotomousOutcome) -> list[str]:
    """Return unique row labels, as :func:`rebayes.data.trials.row_labels` gives them."""
    counts: dict[str, int] = {}
    for r in outcome.rows:
        counts[r.study] = counts.get(r.study, 0) + 1
    seen: dict[str, int] = {}
    labels = []
    for r in outcome.rows:
        seen[r.study] = seen.get(r.study, 0) + 1
        labels.append(r.study if seen[r.study] == 1 else f"{r.study} #{seen[r.study]}")
    return labels


def _study_figures(outcome: DichotomousOutcome, where: str) -> list[dict[str, str]]:
    """Each study's stored estimate, CI, standard error and weight (where the format has them)."""
    m = outcome.measure.replace("PETO_OR", "Peto OR")
    digits = 3 if outcome.measure == "RD" else 2
    rows: list[dict[str, str]] = []
    for n, (label, r) in enumerate(zip(_row_labels(outcome), outcome.rows, strict=True), 1):
        loc = f"{where}, study {label}" + (f" ({r.subgroup})" if r.subgroup else "")
        query = f"overall row={label}"
        if r.effect is not None and r.ci is not None:
            rows.append({
                "id": f"study{n}_effect", "statistic": "study_effect", "location": loc,
                "reported": f"{m} {r.effect:.{digits}f} [{r.ci[0]:.{digits}f}, "
                            f"{r.ci[1]:.{digits}f}]",
                "value": _num(r.effect), "ci_low": _num(r.ci[0]), "ci_high": _num(r.ci[1]),
                "analysis": query,
            })
        if r.se is not None:
            rows.append({"id": f"study{n}_se", "statistic": "study_se", "location": loc,
                         "reported": f"SE = {r.se:.4f}", "value": _num(r.se),
                         "analysis": query})
        if r.weight is not None:
            rows.append({"id": f"study{n}_weight", "statistic": "weight", "location": loc,
                         "reported": f"Weight {r.weight:.1f}%", "value": _num(r.weight),
                         "analysis": query})
    return rows


def reported_csv(outcome: DichotomousOutcome) -> str:
    """Return the outcome's ``reported.csv``: every figure RevMan stored, with its query."""
    where = f"Analysis {outcome.number}"
    random = outcome.model == "random"
    rows: list[dict[str, str]] = []
    for j, sub in enumerate(outcome.subtotals, start=1):
        for fig in _figures(sub, outcome, f"subgroup{j}", random):
            rows.append({**fig, "location": f"{where}, subtotal {sub.number} ({sub.name})",
                         "analysis": f"subgroup={sub.name}"})
    if outcome.overall is not None:
        for fig in _figures(outcome.overall, outcome, "total", random):
            rows.append({**fig, "location": f"{where}, total", "analysis": "overall"})
    if outcome.subgroup_test is not None:
        q, p, i2 = outcome.subgroup_test
        loc = f"{where}, test for subgroup differences"
        for key, stat, text, column in (
            ("subgroup_chi2", q, f"Chi2 = {q:.2f}", "value"),
            ("subgroup_p", p, f"P = {p:.2g}", "p"),
            ("subgroup_i2", i2, f"I2 = {i2:.1f}%", "value"),
        ):
            rows.append({"id": key, "statistic": key, "reported": text, column: _num(stat),
                         "location": loc, "analysis": "by=subgroup"})
    rows += _study_figures(outcome, where)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, REPORTED_COLUMNS, lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _check_target(folder: Path) -> None:
    """Refuse to replace a folder that holds anything a previous import did not write."""
    if folder.is_symlink():
        raise OutputDirectoryError(
            f"output {folder} is a symbolic link (an import writes real folders); refusing "
            "to replace it"
        )
    if not check_output_folder(folder, "import", MARKER):
        return
    foreign = sorted(
        p.name for p in folder.iterdir()
        if p.name not in IMPORTED_FILES or p.is_symlink() or not p.is_file()
    )
    if foreign:
        shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3
                                           else "")
        raise OutputDirectoryError(
            f"output directory {folder} holds {shown}, which rebayes import did "
            "not write; refusing to replace it: move them away or import into a new directory"
        )


def _write_folders(folders: dict[Path, dict[str, str]]) -> None:
    """Build every folder aside (hidden, beside it), then swap each in whole.

    A failure while building leaves every target as it was; the swap is two renames per
    folder (a previous import's folder aside, the new one in place), then the old copy goes.
    A staging folder that a killed import left is removed by the next import of the same
    outcome (:func:`rebayes.folders.staging_folder`).
    """
    with ExitStack() as stack:
        staged: dict[Path, Path] = {}
        for target, files in folders.items():
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = stack.enter_context(
                staging_folder(target.parent, f".{target.name}.import.")
            )
            staged[target] = staging
            staging.chmod(0o755)  # mkdtemp makes it private; a dataset folder is for reading
            for name, text in files.items():
                write_text_atomic(staging / name, text)
        for target, staging in staged.items():
            (staging / STAGING_OWNER).unlink()  # the lock file is the staging's, not the data's
            old = None
            if target.exists():
                old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.old."))
                old.rmdir()
                target.rename(old)
            staging.rename(target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)


def import_rm5(path: str | Path, directory: str | Path) -> ImportResult:
    """Write one dataset folder per dichotomous outcome of a RevMan 5 file.

    :func:`import_review` of :func:`read_rm5`.

    Every folder is checked before any is written: a non-empty folder that a previous
    ``rebayes import`` did not write (no ``.rebayes-import`` marker) stops the import with
    nothing written. Every folder is built aside first, then each is swapped in whole.

    Parameters
    ----------
    path : str or Path
        The ``.rm5`` file.
    directory : str or Path
        Where to write ``<comparison>.<outcome>/`` folders.

    Returns
    -------
    ImportResult
        The folders written and one note per outcome skipped (for stderr).

    Examples
    --------
    >>> result = import_rm5("Fleiss1993.rm5", "fleiss")  # doctest: +SKIP
    >>> [f.name for f in result.folders]  # doctest: +SKIP
    ['1.1']
    """
    return import_review(read_rm5(path), directory)


def import_review(review: Review, directory: str | Path) -> ImportResult:
    """Write one dataset folder per dichotomous outcome of a review read from any format.

    Every folder is checked before any is written: a non-empty folder that a previous
    ``rebayes import`` did not write (no ``.rebayes-import`` marker) stops the import with
    nothing written. Every folder is built aside first, then each is swapped in whole.

    Parameters
    ----------
    review : Review
        From :func:`read_rm5`, :func:`rebayes.data.cochrane_package.read_package` or
        :func:`rebayes.data.revman_csv.read_revman_csv`.
    directory : str or Path
        Where to write ``<comparison>.<outcome>/`` folders.

    Returns
    -------
    ImportResult
    """
    if not review.outcomes:
        raise RevManError(
            f"{review.path.name}: no dichotomous outcome to import"
            + (f" ({len(review.skipped)} of other types)" if review.skipped else "")
        )
    directory = Path(directory)
    seen: set[str] = set()
    for outcome in review.outcomes:
        # The number names a folder: digits and dots only, never a path of the file's choosing.
        if not re.fullmatch(r"\d{1,6}(\.\d{1,6}){0,3}", outcome.number):
            raise RevManError(f"{review.path.name}: analysis number {outcome.number!r} is not "
                              "digits and dots (e.g. 1.2)")
        if outcome.number in seen:
            raise RevManError(f"{review.path.name}: analysis {outcome.number} appears twice")
        seen.add(outcome.number)
    targets = [directory / outcome.number for outcome in review.outcomes]
    for folder in targets:
        _check_target(folder)
    contents = []
    digest = hashlib.sha256(review.path.read_bytes()).hexdigest()
    for outcome in review.outcomes:
        marker = json.dumps({"source": review.path.name, "sha256": digest,
                             "analysis": outcome.number}, indent=2) + "\n"
        files = {
            "trials.csv": trials_csv(outcome),
            "dataset.toml": dataset_toml(outcome, review),
            "reported.csv": reported_csv(outcome),
            MARKER: marker,
        }
        variants = variants_toml(outcome)
        if variants is not None:
            files["variants.toml"] = variants
        contents.append(files)
    _write_folders(dict(zip(targets, contents, strict=True)))
    notes = list(review.skipped)
    for outcome in review.outcomes:
        left, right = outcome.graph_labels
        labels = f"graph labels {left!r} | {right!r}"
        if outcome.higher_is_better is None:
            notes.append(
                f"outcome {outcome.number}: no direction of benefit ({labels} are not "
                f"RevMan's standard ones): outputs stay neutral until higher_is_better is set "
                f"in {outcome.number}/dataset.toml"
            )
        else:
            better = "more" if outcome.higher_is_better else "fewer"
            notes.append(f"outcome {outcome.number}: {better} events is better ({labels})")
        if outcome.dropped:
            notes.append(
                f"outcome {outcome.number}: left out {', '.join(outcome.dropped)} (an arm "
                "with no participants)"
            )
        shared = _shared_controls(outcome)
        if shared:
            notes.append(
                f"outcome {outcome.number}: multi-arm "
                + ", ".join(f"{a.study} (control {a.events}/{a.total} in {a.comparisons} "
                            "comparisons)" for a in shared)
                + f"; the {HANDBOOK} split is declared as an analysis "
                "(rebayes frequentist --split-shared-control)"
            )
    return ImportResult(tuple(targets), tuple(notes))
