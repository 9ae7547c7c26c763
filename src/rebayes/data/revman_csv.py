"""Read RevMan 5's analyses export (File > Export > Data and analyses, a CSV file).

One row per comparison, outcome, subgroup and study, told apart by three number columns
(``Comparison Number``, ``Outcome Number``, ``Subgroup Number``) that the export must include,
as R meta's ``read.rm5`` (versions before 4.9; Schwarzer) reads it:

- a comparison row: a new comparison number, outcome number 0, its name;
- an outcome row: a new outcome number, ``Data Type`` (``DIC`` for dichotomous), ``Statistical
  Method`` (MH, IV, PETO), ``Effect Measure`` (RR, OR, RD, PETO_OR), ``Analysis Model``
  (Fixed, Random), the group and graph labels, and the results RevMan stored: the totals in
  ``Events 1``/``Total 1``/``Events 2``/``Total 2``, ``Effect Estimate``, ``CI Start``,
  ``CI End``, ``Weight``, ``Q``, ``P(Q)``, ``I²(Q)``, ``Tau²``, ``Z``, ``P(Z)``, the test for
  subgroup differences as ``Qint``, ``P(Qint)``, ``I²(Qint)``, and ``df`` (of Q);
- a subgroup row: a new subgroup number with ``Data Type`` filled, its name and results;
- study rows: ``Data Type`` empty; counts, ``Effect Estimate``, ``SE`` (of the log ratio),
  ``CI Start``, ``CI End``, ``Weight``, ``Year of study``.

Numbers may carry thousands separators (``1,570``), which are dropped. Headers whose ``²``
an export garbled are matched by their position (the two columns after ``P(Q)``), as meta
does.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from rebayes.data.revman import (
    DichotomousOutcome,
    Review,
    RevManError,
    StoredResult,
    StudyRow,
)

__all__ = ["is_revman_csv", "read_revman_csv"]

MANDATORY = ("Comparison Number", "Outcome Number", "Subgroup Number")
MAX_BYTES = 64 * 2**20
_METHODS = {"MH": "MH", "IV": "IV", "PETO": "PETO", "EXP_O_E_VAR": "PETO"}
_MEASURES = {"RR": "RR", "OR": "OR", "RD": "RD", "PETO_OR": "PETO_OR"}
_KINDS = {"CON": "continuous", "GIV": "generic inverse variance", "IPD": "O - E and variance",
          "OE": "O - E and variance"}


def _text(path: Path) -> str:
    if path.stat().st_size > MAX_BYTES:
        raise RevManError(f"{path.name}: larger than {MAX_BYTES // 2**20} MB (not a RevMan "
                          "analyses export)")
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RevManError(f"{path.name}: not UTF-8 text ({exc.reason})") from None


def is_revman_csv(path: str | Path) -> bool:
    """Whether a CSV file's header is RevMan 5's analyses export (a cheap look, no parsing)."""
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as handle:
            first = handle.readline(4096)
    except OSError:
        return False
    return all(name in first for name in MANDATORY)


def _header(names: list[str]) -> list[str]:
    """Normalise the header: the ``²`` columns by name, or by position after ``P(Q)``."""
    out = [n.strip() for n in names]
    fixes = {"I2(Q)": "I²(Q)", "Tau2": "Tau²", "I2(Qint)": "I²(Qint)"}
    out = [fixes.get(n, n) for n in out]
    if "I²(Q)" not in out and "P(Q)" in out and "Z" in out:
        at = out.index("P(Q)")
        if out.index("Z") - at == 3:
            out[at + 1:at + 3] = ["I²(Q)", "Tau²"]
    if "I²(Qint)" not in out and "P(Qint)" in out and "df" in out:
        at = out.index("P(Qint)")
        if out.index("df") - at == 2:
            out[at + 1] = "I²(Qint)"
    return out


def _float(row: Mapping[str, str], name: str, where: str) -> float | None:
    text = row.get(name, "").strip().replace(",", "")
    if text in ("", "NA"):
        return None
    try:
        return float(text)
    except ValueError:
        raise RevManError(f"{where}: {name}={text!r} is not a number") from None


def _count(row: Mapping[str, str], name: str, where: str) -> int:
    text = row.get(name, "").strip().replace(",", "")
    if not re.fullmatch(r"\d{1,10}(\.0+)?", text):
        raise RevManError(f"{where}: {name}={text!r} is not a whole number")
    return int(float(text))


def _stored(row: Mapping[str, str], name: str, number: str, where: str) -> StoredResult:
    df = _float(row, "df", where)
    effect = _float(row, "Effect Estimate", where)
    return StoredResult(
        name=name,
        number=number,
        estimable=effect is not None,
        effect=effect,
        ci_low=_float(row, "CI Start", where),
        ci_high=_float(row, "CI End", where),
        z=_float(row, "Z", where),
        p=_float(row, "P(Z)", where),
        chi2=_float(row, "Q", where),
        df=None if df is None else int(df),
        p_chi2=_float(row, "P(Q)", where),
        i2=_float(row, "I²(Q)", where),
        tau2=_float(row, "Tau²", where),
        counts=tuple(  # type: ignore[arg-type]
            _count(row, key, where) if row.get(key, "").strip() else 0
            for key in ("Events 1", "Total 1", "Events 2", "Total 2")
        ),
        weight=_float(row, "Weight", where),
    )


@dataclass
class _Outcome:
    """An outcome's rows while reading (turned into a DichotomousOutcome at its end)."""

    number: str
    comparison: str
    header: Mapping[str, str]
    line: int
    subgroups: list[tuple[str, Mapping[str, str], int]] = field(default_factory=list)
    studies: list[tuple[str | None, Mapping[str, str], int]] = field(default_factory=list)


def read_revman_csv(path: str | Path) -> Review:
    """Read RevMan 5's analyses export.

    Parameters
    ----------
    path : str or Path
        The CSV file (``Fleiss93_CR.csv``).

    Returns
    -------
    Review
        Its dichotomous outcomes with the stored results; other data types in ``skipped``.

    Raises
    ------
    RevManError
        Not such an export, or a malformed row (one line naming the file and line).
    """
    path = Path(path)
    label = path.name
    if not path.is_file():
        raise RevManError(f"{path}: no such file")
    reader = csv.reader(io.StringIO(_text(path), newline=""), strict=True)
    try:
        header = _header(next(reader, []))
        missing = [m for m in MANDATORY if m not in header]
        if missing:
            raise RevManError(
                f"{label}:1: not a RevMan 5 analyses export (no column '{missing[0]}'; "
                "export it with Comparison, Outcome and Subgroup Number)"
            )
        outcomes: list[_Outcome] = []
        comparison, current, last_group = "", None, None
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise RevManError(f"{label}:{line}: expected {len(header)} fields, found "
                                  f"{len(values)} (export without 'Risk of bias tables')")
            row = {h: v.strip() for h, v in zip(header, values, strict=True)}
            numbers = [row[m] for m in MANDATORY]
            if not all(re.fullmatch(r"\d{1,6}", n) for n in numbers):
                raise RevManError(f"{label}:{line}: comparison, outcome and subgroup numbers "
                                  f"must be whole numbers, not {'/'.join(numbers)}")
            c_no, o_no, g_no = (int(n) for n in numbers)
            if o_no == 0:
                comparison, current = row.get("Name", ""), None
                continue
            number = f"{c_no}.{o_no}"
            if current is None or current.number != number:
                current = _Outcome(number, comparison, row, line)
                outcomes.append(current)
                last_group = 0
                continue
            if row.get("Data Type", "") and g_no != last_group:
                current.subgroups.append((row.get("Name", ""), row, line))
                last_group = g_no
                continue
            subgroup = current.subgroups[-1][0] if current.subgroups and g_no else None
            current.studies.append((subgroup, row, line))
    except csv.Error as exc:
        raise RevManError(f"{label}:{reader.line_num}: malformed CSV ({exc})") from None
    done: list[DichotomousOutcome] = []
    skipped: list[str] = []
    for outcome in outcomes:
        kind = outcome.header.get("Data Type", "")
        if kind != "DIC":
            skipped.append(
                f"skipped outcome {outcome.number} '{outcome.header.get('Name', '')}' "
                f"({_KINDS.get(kind, kind.lower() or 'no data type')}; only dichotomous "
                "outcomes are imported)"
            )
            continue
        done.append(_dichotomous(outcome, label))
    return Review(path, "", "", "Review Manager 5 (analyses export)", tuple(done),
                  tuple(skipped))


def _dichotomous(outcome: _Outcome, label: str) -> DichotomousOutcome:
    head = outcome.header
    where = f"{label}:{outcome.line}: outcome {outcome.number}"
    method = _METHODS.get(head.get("Statistical Method", "").upper())
    measure = _MEASURES.get(head.get("Effect Measure", "").upper())
    if method is None or measure is None:
        raise RevManError(f"{where}: unknown analysis {head.get('Statistical Method')!r} "
                          f"{head.get('Effect Measure')!r}")
    if measure == "PETO_OR":
        method = "PETO"
    swap = head.get("Swap event and non-event", "").upper() in ("YES", "TRUE")
    level = _float(head, "Total Confidence Interval", where) or 95.0
    rows: list[StudyRow] = []
    dropped: list[str] = []
    for subgroup, row, line in outcome.studies:
        at = f"{label}:{line}"
        study = row.get("Name", "") or f"row {line}"
        e1, n1 = _count(row, "Events 1", at), _count(row, "Total 1", at)
        e2, n2 = _count(row, "Events 2", at), _count(row, "Total 2", at)
        if n1 == 0 or n2 == 0:
            dropped.append(study)
            continue
        if e1 > n1 or e2 > n2:
            raise RevManError(f"{at}: more events than participants")
        if swap:
            e1, e2 = n1 - e1, n2 - e2
        effect = _float(row, "Effect Estimate", at)
        low, high = _float(row, "CI Start", at), _float(row, "CI End", at)
        rows.append(StudyRow(
            study, row.get("Year of study", ""), e1, n1, e2, n2, subgroup,
            effect=effect,
            ci=(low, high) if low is not None and high is not None else None,
            se=_float(row, "SE", at),
            weight=_float(row, "Weight", at),
        ))
    if not rows:
        raise RevManError(f"{where}: no study with participants in both arms")
    subtotals = tuple(
        _stored(r, name, f"{outcome.number}.{j}", f"{label}:{line}")
        for j, (name, r, line) in enumerate(outcome.subgroups, start=1)
    )
    overall = _stored(head, "Total", outcome.number, where)
    test = None
    if len(subtotals) > 1:
        q, p, i2 = (_float(head, key, where) for key in ("Qint", "P(Qint)", "I²(Qint)"))
        if q is not None and p is not None and i2 is not None:
            test = (q, p, i2)
    if swap:
        subtotals = tuple(s.swapped() for s in subtotals)
        overall = overall.swapped()
    return DichotomousOutcome(
        number=outcome.number,
        comparison=outcome.comparison,
        name=head.get("Name", ""),
        measure=measure,
        method=method,
        model="random" if head.get("Analysis Model", "").lower().startswith("random")
        else "fixed",
        ci_level=level / 100,
        treatment=head.get("Group Label 1", "") or "experimental",
        control=head.get("Group Label 2", "") or "control",
        graph_labels=(head.get("Left Graph Label", ""), head.get("Right Graph Label", "")),
        swap_events=swap,
        subgroups=tuple(name for name, _, _ in outcome.subgroups),
        rows=tuple(rows),
        overall=overall,
        subtotals=subtotals,
        subgroup_test=test,
        dropped=tuple(dropped),
    )
