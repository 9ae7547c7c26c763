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
the folder and nothing else.
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
from dataclasses import dataclass, field, replace
from pathlib import Path

from rebayes.atomic import check_writable, write_text_atomic
from rebayes.data.direction import DirectionEvidence, direction_from_labels
from rebayes.data.schema import DatasetSchema, SchemaError
from rebayes.errors import RebayesError

__all__ = [
    "MARKER",
    "DichotomousOutcome",
    "ImportResult",
    "Review",
    "RevManError",
    "StoredResult",
    "import_rm5",
    "read_rm5",
]

#: File marking a folder as written by ``rebayes import`` (it may be replaced by another).
MARKER = ".rebayes-import"
OUTCOME_KINDS = {
    "CONT_OUTCOME": "continuous",
    "IV_OUTCOME": "generic inverse variance",
    "IPD_OUTCOME": "O - E and variance",
    "OE_OUTCOME": "O - E and variance",
}


class RevManError(RebayesError):
    """A ``.rm5`` file that cannot be read, or an import that would overwrite foreign files."""


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


@dataclass(frozen=True)
class StudyRow:
    """One ``DICH_DATA`` row: a study's 2x2 table in one (sub)group."""

    study: str
    year: str
    events_treat: int
    n_treat: int
    events_control: int
    n_control: int
    subgroup: str | None


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
    text = (element.get(name) or "").strip()
    if not re.fullmatch(r"\d+(\.0+)?", text):
        raise RevManError(f"{where}: {name}={text!r} is not a whole number")
    return int(float(text))


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
        c_no = comparison.get("NO", "?")
        c_name = _text(comparison, "NAME")
        for element in comparison:
            if not element.tag.endswith("_OUTCOME"):
                continue
            number = f"{c_no}.{element.get('NO', '?')}"
            name = _text(element, "NAME")
            if element.tag != "DICH_OUTCOME":
                kind = OUTCOME_KINDS.get(element.tag, element.tag.lower())
                skipped.append(
                    f"skipped outcome {number} '{name}' ({kind}; only dichotomous outcomes "
                    "are imported)"
                )
                continue
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
            sub_no = f"{number}.{sub.get('NO', j)}"
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
        subtotals = [_swapped(s) for s in subtotals]
        overall = _swapped(overall) if overall is not None else None
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


def _swapped(result: StoredResult) -> StoredResult:
    e1, n1, e2, n2 = result.counts
    return replace(result, counts=(n1 - e1, n1, n2 - e2, n2))


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
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for r in outcome.rows:
        values = [r.study, r.events_treat, r.n_treat, r.events_control, r.n_control]
        if outcome.subgroups:
            values.append(r.subgroup)
        if any(years):
            values.append(r.year)
        writer.writerow(values)
    return buffer.getvalue()


def dataset_toml(outcome: DichotomousOutcome, review: Review) -> str:
    """Return the outcome's ``dataset.toml`` text (checked against :mod:`rebayes.data.schema`)."""
    q = _toml_string
    lines = [
        f"# Written by `rebayes import` from {review.path.name}, analysis {outcome.number}.",
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
        f"ci_level = {outcome.ci_level:g}",
    ]
    notes = []
    if outcome.dropped:
        notes.append(
            "Left out (a group with no participants, not estimable in RevMan): "
            + ", ".join(outcome.dropped)
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
    years = [r.year for r in outcome.rows if r.year]
    if years:
        kind = "continuous" if all(y.isdigit() for y in years) else "categorical"
        lines += ["", "[columns.year]", f'kind = "{kind}"', 'label = "year of publication"']
    text = "\n".join(lines) + "\n"
    try:
        DatasetSchema.from_dict(tomllib.loads(text), "dataset.toml")
    except (tomllib.TOMLDecodeError, SchemaError) as exc:  # a bug here, not the user's
        raise RevManError(f"{review.path.name}: outcome {outcome.number}: {exc}") from None
    return text


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
        yield {"id": f"{prefix}_z", "statistic": "z", "reported": f"Z = {result.z:.2f}",
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
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, REPORTED_COLUMNS, lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _check_target(folder: Path) -> None:
    if folder.exists() and not folder.is_dir():
        raise RevManError(f"{folder}: exists and is not a folder (refusing to overwrite)")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / MARKER).is_file():
        raise RevManError(
            f"{folder}: exists and was not written by rebayes import (refusing to overwrite)"
        )


def _write_folders(folders: dict[Path, dict[str, str]]) -> None:
    """Build every folder aside (hidden, beside it), then swap each in whole.

    A failure while building leaves every target as it was; the swap is two renames per
    folder (a previous import's folder aside, the new one in place), then the old copy goes.
    """
    staged: dict[Path, Path] = {}
    try:
        for target, files in folders.items():
            check_writable(target)
            staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.import."))
            staged[target] = staging
            staging.chmod(0o755)  # mkdtemp makes it private; a dataset folder is for reading
            for name, text in files.items():
                write_text_atomic(staging / name, text)
    except BaseException:
        for staging in staged.values():
            shutil.rmtree(staging, ignore_errors=True)
        raise
    for target, staging in staged.items():
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
    review = read_rm5(path)
    if not review.outcomes:
        raise RevManError(
            f"{review.path.name}: no dichotomous outcome to import"
            + (f" ({len(review.skipped)} of other types)" if review.skipped else "")
        )
    directory = Path(directory)
    targets = [directory / outcome.number for outcome in review.outcomes]
    for folder in targets:
        _check_target(folder)
    contents = []
    digest = hashlib.sha256(review.path.read_bytes()).hexdigest()
    for outcome in review.outcomes:
        marker = json.dumps({"source": review.path.name, "sha256": digest,
                             "analysis": outcome.number}, indent=2) + "\n"
        contents.append({
            "trials.csv": trials_csv(outcome),
            "dataset.toml": dataset_toml(outcome, review),
            "reported.csv": reported_csv(outcome),
            MARKER: marker,
        })
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
    return ImportResult(tuple(targets), tuple(notes))
