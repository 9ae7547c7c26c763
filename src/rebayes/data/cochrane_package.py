"""Read a Cochrane data package (RevMan Web's "Download data" zip of CSV files).

RevMan Web exports a review's analyses as a zip of CSV files (UTF-8 with a byte order mark),
in two versions (Cochrane's RevMan knowledge base, "Data package specification"; R meta's
``read.cdir`` reads both in its development branch):

- **version 1** (reviews exported until 23 September 2024): a folder ``<ID>/`` holding
  ``<ID>-files/<ID>-data.zip`` (an inner zip) and the forest plots as SVG files; the inner
  zip holds ``<ID>-analysis-data/`` and ``<ID>-study-data/``. The settings carry ``Study CI``
  and ``Estimate CI``; there are no graph labels (the SVG forest plot draws them).
- **version 2**: the same CSV files, with new settings columns: ``Heterogeneity estimator``,
  ``CI method`` (Hartung-Knapp-Sidik-Jonkman or Wald-type), ``Prediction interval``,
  ``CI/PI level``, ``Graph label (left)``, ``Graph label (right)``. Where the results of the
  new options (tau^2's CI, the prediction interval) are stored, they are read from
  ``Tau² CI start``/``Tau² CI end`` and ``PI start``/``PI end`` (names this reader assumes:
  Cochrane's public pages and meta's reader list only the settings).

From ``<ID>-analysis-data/``: ``-overall-estimates-and-settings.csv`` (one row per analysis:
its settings and the overall results RevMan computed), ``-data-rows.csv`` (one row per study
and analysis: counts, stored estimate, CI and weight), ``-subgroup-estimates.csv`` (one row
per subgroup: its results). From ``<ID>-study-data/``: ``-study-information.csv`` (study
years) and ``-risk-of-bias.csv`` (one ``Domain (judgement): NAME`` column per domain).

The zip is untrusted: members are read in memory (never extracted by name), the member count,
every member's size and the total are capped (a zip bomb stops with one line), an inner zip is
read one level deep only, and a folder is named by an analysis number only after it is
checked to be digits and dots.
"""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from rebayes.data.revman import (
    DichotomousOutcome,
    ExtraColumn,
    Review,
    RevManError,
    StoredResult,
    StudyRow,
)

__all__ = ["MAX_MEMBERS", "MAX_TOTAL_BYTES", "PackageFiles", "read_package"]

#: Most members a package (or its inner zip) may hold.
MAX_MEMBERS = 10_000
#: Most bytes all members may hold once uncompressed (the inner zip's included).
MAX_TOTAL_BYTES = 256 * 2**20
ANALYSIS_FILES = ("overall-estimates-and-settings", "data-rows", "subgroup-estimates")
STUDY_FILES = ("study-information", "risk-of-bias")
DICHOTOMOUS = "Dichotomous"
_METHODS = {"MH": "MH", "M-H": "MH", "MANTEL-HAENSZEL": "MH", "IV": "IV",
            "INVERSE VARIANCE": "IV", "PETO": "PETO", "EXP_O_E_VAR": "PETO"}
_MEASURES = {"odds ratio": "OR", "odds ratio (non-event)": "OR", "risk ratio": "RR",
             "risk ratio (non-event)": "RR", "risk difference": "RD",
             "peto odds ratio": "PETO_OR"}
_SVG = re.compile(r"-CMP-(\d+)\.(\d+)\.svg$", re.IGNORECASE)
_NUMBER = re.compile(r"\d{1,6}")


@dataclass(frozen=True)
class PackageFiles:
    """The CSV tables of a package (rows as dicts) and its forest plots (SVG bytes)."""

    tables: Mapping[str, list[dict[str, str]]]
    svgs: Mapping[str, bytes]
    version: int


class _Budget:
    """Counts members and uncompressed bytes across the outer and the inner zip."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.members = 0
        self.bytes = 0

    def admit(self, archive: zipfile.ZipFile) -> list[zipfile.ZipInfo]:
        infos = archive.infolist()
        self.members += len(infos)
        self.bytes += sum(i.file_size for i in infos)
        if self.members > MAX_MEMBERS:
            raise RevManError(f"{self.label}: more than {MAX_MEMBERS} files in the package "
                              "(not a Cochrane data package?)")
        if self.bytes > MAX_TOTAL_BYTES:
            raise RevManError(f"{self.label}: the package unpacks to more than "
                              f"{MAX_TOTAL_BYTES // 2**20} MB (refusing a zip bomb)")
        return infos


def _kind(name: str) -> str | None:
    base = name.rsplit("/", 1)[-1]
    for kind in (*ANALYSIS_FILES, *STUDY_FILES):
        if base.lower().endswith(f"-{kind}.csv"):
            return kind
    return None


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, label: str) -> bytes:
    try:
        return archive.read(info)
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError) as exc:
        raise RevManError(f"{label}: cannot read {info.filename!r} ({exc})") from None


def _collect(
    archive: zipfile.ZipFile, budget: _Budget, raw: dict[str, tuple[str, bytes]],
    svgs: dict[str, bytes], nested: bool,
) -> None:
    label = budget.label
    for info in budget.admit(archive):
        if info.is_dir():
            continue
        name = info.filename
        if name.lower().endswith("-parameters.csv"):
            raise RevManError(f"{label}: a diagnostic test accuracy review (only intervention "
                              "reviews have 2x2 tables to import)")
        kind = _kind(name)
        if kind is not None:
            if kind in raw:
                raise RevManError(f"{label}: two {kind} files ({raw[kind][0]!r} and {name!r})")
            raw[kind] = (name, _read_member(archive, info, label))
        elif _SVG.search(name):
            match = _SVG.search(name)
            assert match is not None
            svgs[f"{int(match.group(1))}.{int(match.group(2))}"] = _read_member(
                archive, info, label)
        elif name.lower().endswith("-data.zip") and not nested:
            data = _read_member(archive, info, label)
            try:
                with zipfile.ZipFile(io.BytesIO(data)) as inner:
                    _collect(inner, budget, raw, svgs, nested=True)
            except zipfile.BadZipFile:
                raise RevManError(f"{label}: {name!r} is not a zip file") from None


def _rows(name: str, data: bytes, label: str) -> list[dict[str, str]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RevManError(f"{label}: {name}: not UTF-8 text ({exc.reason})") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = [h.strip() for h in next(reader, [])]
        rows = []
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                raise RevManError(f"{label}: {name}:{reader.line_num}: expected "
                                  f"{len(header)} fields, found {len(values)}")
            rows.append({h: v.strip() for h, v in zip(header, values, strict=True)})
    except csv.Error as exc:
        raise RevManError(f"{label}: {name}:{reader.line_num}: malformed CSV ({exc})") from None
    if not header or not any(header):
        raise RevManError(f"{label}: {name}: empty file (no header line)")
    return rows


def read_files(path: str | Path) -> PackageFiles:
    """Read a package's CSV tables and SVG forest plots, in memory, within the caps.

    Raises
    ------
    RevManError
        Not a zip, a zip bomb, missing or duplicated tables (one line naming the file).
    """
    path = Path(path)
    label = path.name
    if not path.is_file():
        raise RevManError(f"{path}: no such file")
    raw: dict[str, tuple[str, bytes]] = {}
    svgs: dict[str, bytes] = {}
    try:
        with zipfile.ZipFile(path) as archive:
            _collect(archive, _Budget(label), raw, svgs, nested=False)
    except zipfile.BadZipFile:
        raise RevManError(f"{label}: not a zip file (a Cochrane data package is a .zip)") from None
    for kind in ANALYSIS_FILES:
        if kind not in raw:
            raise RevManError(f"{label}: no *-{kind}.csv (not a Cochrane data package)")
    tables = {kind: _rows(name.rsplit("/", 1)[-1], data, label)
              for kind, (name, data) in raw.items()}
    header = set(tables["overall-estimates-and-settings"][0]) if tables[
        "overall-estimates-and-settings"] else set()
    version = 2 if "CI/PI level" in header else 1
    return PackageFiles(tables, svgs, version)


# --- values ---------------------------------------------------------------------------------


def _float(row: Mapping[str, str], *names: str, where: str) -> float | None:
    for name in names:
        text = row.get(name, "").strip().rstrip("%")
        if text in ("", "NA", "#N/A"):
            continue
        try:
            return float(text)
        except ValueError:
            raise RevManError(f"{where}: {name}={text!r} is not a number") from None
    return None


def _count(row: Mapping[str, str], name: str, where: str) -> int:
    text = row.get(name, "").strip()
    if not re.fullmatch(r"\d{1,10}(\.0+)?", text):
        raise RevManError(f"{where}: {name}={text!r} is not a whole number")
    return int(float(text))


def _flag(row: Mapping[str, str], name: str, default: bool) -> bool:
    text = row.get(name, "").strip().lower()
    return default if text == "" else text in ("true", "yes", "1")


def _number(row: Mapping[str, str], where: str) -> str:
    group, number = row.get("Analysis group", "").strip(), row.get("Analysis number", "").strip()
    if not (_NUMBER.fullmatch(group) and _NUMBER.fullmatch(number)):
        raise RevManError(f"{where}: analysis number {group!r}.{number!r} is not two whole "
                          "numbers")
    return f"{int(group)}.{int(number)}"


def _stored(row: Mapping[str, str], name: str, number: str, where: str) -> StoredResult:
    df = _float(row, "Heterogeneity df", where=where)
    low, high = (_float(row, "Tau² CI start", "Tau2 CI start", where=where),
                 _float(row, "Tau² CI end", "Tau2 CI end", where=where))
    pi_low, pi_high = (_float(row, "PI start", "Prediction interval start", where=where),
                       _float(row, "PI end", "Prediction interval end", where=where))
    effect = _float(row, "Mean", where=where)
    return StoredResult(
        name=name,
        number=number,
        estimable=effect is not None,
        effect=effect,
        ci_low=_float(row, "CI start", where=where),
        ci_high=_float(row, "CI end", where=where),
        z=_float(row, "Effect Z", "Effect t", "Effect Z/t", where=where),
        p=_float(row, "Effect P", where=where),
        chi2=_float(row, "Heterogeneity Chi²", "Heterogeneity Chi2", where=where),
        df=None if df is None else int(df),
        p_chi2=_float(row, "Heterogeneity P", where=where),
        i2=_float(row, "Heterogeneity I²", "Heterogeneity I2", where=where),
        tau2=_float(row, "Heterogeneity Tau²", "Heterogeneity Tau2", where=where),
        counts=tuple(  # type: ignore[arg-type]
            _count(row, key, where) if row.get(key, "").strip() else 0
            for key in ("Experimental cases", "Experimental N", "Control cases", "Control N")
        ),
        weight=_float(row, "Weight", where=where),
        tau2_ci=(low, high) if low is not None and high is not None else None,
        prediction=(pi_low, pi_high) if pi_low is not None and pi_high is not None else None,
    )


def _labels_from_svg(data: bytes) -> tuple[str, str]:
    """Return the forest plot's graph labels: the last two texts, right- then left-aligned."""
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return "", ""
    texts = [el for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "text"]
    if len(texts) < 2:
        return "", ""
    left, right = texts[-2], texts[-1]
    if left.get("text-anchor") != "end" or right.get("text-anchor") != "start":
        return "", ""
    return (" ".join("".join(left.itertext()).split()),
            " ".join("".join(right.itertext()).split()))


# --- risk of bias --------------------------------------------------------------------------

_JUDGEMENTS = {"low": "low", "low risk": "low", "high": "high", "high risk": "high",
               "unclear": "unclear", "unclear risk": "unclear", "some concerns": "some_concerns"}
_JUDGEMENT_PREFIX = "Domain (judgement):"


def _slug(text: str) -> str:
    text = re.sub(r"\([^)]*\)", "", text.lower())
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")[:40] or "domain"


def _risk_of_bias(
    rows: list[dict[str, str]], label: str
) -> tuple[dict[str, dict[str, str]], list[ExtraColumn], list[str]]:
    """Per study, the judgement of each domain (``low``/``high``/``unclear``/...) and overall."""
    if not rows:
        return {}, [], []
    domains = [(c, c[len(_JUDGEMENT_PREFIX):].strip()) for c in rows[0]
               if c.startswith(_JUDGEMENT_PREFIX)]
    if not domains:
        return {}, [], []
    names: dict[str, str] = {}
    for column, domain in domains:
        name = f"rob_{_slug(domain.replace(': All outcomes', ''))}"
        while name in names.values():
            name += "_"
        names[column] = name
    by_study: dict[str, dict[str, str]] = {}
    notes: list[str] = []
    for row in rows:
        study = row.get("Study", "").strip()
        values = {names[c]: _JUDGEMENTS.get(row.get(c, "").strip().lower(), "")
                  for c, _ in domains}
        if study in by_study and by_study[study] != values:
            notes.append(f"{label}: study {study!r} has two different risk-of-bias rows; "
                         "its judgements are left empty")
            values = dict.fromkeys(values, "")
        by_study[study] = values
    overall_domain = next((names[c] for c, d in domains if d.lower().startswith("overall")),
                          None)
    for values in by_study.values():
        if overall_domain is None:
            judged = [v for v in values.values()]
            if not all(judged):
                values["rob_overall"] = ""
            elif all(v == "low" for v in judged):
                values["rob_overall"] = "low"
            elif any(v == "high" for v in judged):
                values["rob_overall"] = "high"
            else:
                values["rob_overall"] = "unclear" if "unclear" in judged else "some_concerns"
    columns = []
    for column, domain in domains:
        levels = sorted({v[names[column]] for v in by_study.values() if v[names[column]]},
                        key=["low", "some_concerns", "unclear", "high"].index)
        columns.append(ExtraColumn(names[column], f"risk of bias: {domain}", tuple(levels),
                                   "the review's judgement (Cochrane risk-of-bias tool)"))
    if overall_domain is None:
        levels = sorted({v["rob_overall"] for v in by_study.values() if v["rob_overall"]},
                        key=["low", "some_concerns", "unclear", "high"].index)
        columns.append(ExtraColumn(
            "rob_overall", "risk of bias: overall", tuple(levels),
            "low if every domain is low, high if any is high, else unclear (derived on import)",
        ))
    return by_study, columns, notes


# --- analyses -------------------------------------------------------------------------------


def _outcome(
    settings: Mapping[str, str],
    files: PackageFiles,
    years: Mapping[str, str],
    rob: tuple[dict[str, dict[str, str]], list[ExtraColumn]],
    label: str,
) -> DichotomousOutcome:
    """Return one dichotomous analysis: its settings, study rows and stored results."""
    number = _number(settings, f"{label}: overall-estimates-and-settings")
    where = f"{label}: analysis {number}"
    method, measure, model, tau2_method, hksj = _analysis_options(settings, where)
    level = _float(settings, "Estimate CI", "CI/PI level", where=where) or 95.0
    swap = _flag(settings, "Swap event and non-event", False)
    group = (settings.get("Analysis group", ""), settings.get("Analysis number", ""))
    subgroup_rows = sorted(
        (r for r in files.tables.get("subgroup-estimates", []) if _in_analysis(r, group)),
        key=lambda r: _float(r, "Subgroup number", where=where) or 0.0,
    )
    by_study, extra_columns = rob
    rows, dropped, subgroup_names = _study_rows(
        (r for r in files.tables["data-rows"] if _in_analysis(r, group)), where, swap, years,
        by_study, [r.get("Subgroup", "").strip() for r in subgroup_rows],
    )
    if not rows:
        raise RevManError(f"{where}: no study with participants in both arms")
    subtotals = tuple(
        _stored(r, r.get("Subgroup", "").strip(), f"{number}.{j}", f"{where}, subgroup {j}")
        for j, r in enumerate(subgroup_rows, start=1)
    ) if _flag(settings, "Subgroup estimates", True) else ()
    overall = (_stored(settings, "Total", number, where)
               if _flag(settings, "Overall estimates", True) else None)
    test = _subgroup_test(settings, where, len(subgroup_names))
    labels = _graph_labels(settings, files, number)
    if swap:
        subtotals = tuple(s.swapped() for s in subtotals)
        overall = overall.swapped() if overall is not None else None
    used = [c for c in extra_columns if any(dict(r.extra).get(c.name) for r in rows)]
    return DichotomousOutcome(
        number=number,
        comparison=settings.get("Analysis group name", "").strip(),
        name=settings.get("Analysis name", "").strip(),
        measure=measure,
        method=method,
        model=model,
        ci_level=level / 100,
        treatment=settings.get("Experimental group label", "").strip() or "experimental",
        control=settings.get("Control group label", "").strip() or "control",
        graph_labels=labels,
        swap_events=swap,
        subgroups=tuple(subgroup_names) if any(r.subgroup for r in rows) else (),
        rows=tuple(rows),
        overall=overall,
        subtotals=subtotals,
        subgroup_test=test,
        dropped=tuple(dropped),
        tau2_method=tau2_method if model == "random" else "DL",
        hksj=hksj and model == "random",
        extra_columns=tuple(used),
        sensitivity=_low_risk_sensitivity(used),
    )


def _analysis_options(
    settings: Mapping[str, str], where: str
) -> tuple[str, str, str, str, bool]:
    """Return the analysis' method, measure, model, tau^2 estimator and whether HKSJ."""
    method = _METHODS.get(settings.get("Statistical method", "").strip().upper())
    measure = _MEASURES.get(settings.get("Effect measure", "").strip().lower())
    if method is None or measure is None:
        raise RevManError(f"{where}: unknown analysis {settings.get('Statistical method')!r} "
                          f"{settings.get('Effect measure')!r}")
    if measure == "PETO_OR":
        method = "PETO"
    model = "random" if settings.get("Analysis model", "").lower().startswith("random") else "fixed"
    estimator = settings.get("Heterogeneity estimator", "").lower()
    tau2_method = ("REML" if "reml" in estimator or "restricted" in estimator
                   else "PM" if "paule" in estimator else "DL")
    hksj = any(w in settings.get("CI method", "").lower() for w in ("hartung", "hksj", "knapp"))
    return method, measure, model, tau2_method, hksj


def _in_analysis(row: Mapping[str, str], group: tuple[str, str]) -> bool:
    """Return whether a row belongs to the analysis numbered ``group`` (group, number)."""
    return (row.get("Analysis group", ""), row.get("Analysis number", "")) == group


def _study_rows(
    data_rows: Iterable[Mapping[str, str]],
    where: str,
    swap: bool,
    years: Mapping[str, str],
    by_study: Mapping[str, Mapping[str, str]],
    subgroup_names: list[str],
) -> tuple[list[StudyRow], list[str], list[str]]:
    """Return the studies with both arms, those without, and the subgroups (stored ones first).

    A study with no participants in an arm is dropped; with ``swap`` the non-events are
    counted.
    """
    subgroup_names = list(subgroup_names)
    rows: list[StudyRow] = []
    dropped: list[str] = []
    for i, row in enumerate(data_rows, start=1):
        study = row.get("Study", "").strip() or f"study {i}"
        at = f"{where}, study {study!r}"
        e1, n1 = _count(row, "Experimental cases", at), _count(row, "Experimental N", at)
        e2, n2 = _count(row, "Control cases", at), _count(row, "Control N", at)
        if n1 == 0 or n2 == 0:
            dropped.append(study)  # RevMan shows it as "Not estimable"; no table to keep
            continue
        if e1 > n1 or e2 > n2:
            raise RevManError(f"{at}: more events than participants")
        if swap:
            e1, e2 = n1 - e1, n2 - e2
        subgroup = row.get("Subgroup", "").strip() or None
        if subgroup is not None and subgroup not in subgroup_names:
            subgroup_names.append(subgroup)
        effect = _float(row, "Mean", where=at)
        low, high = _float(row, "CI start", where=at), _float(row, "CI end", where=at)
        estimable = effect is not None and not (effect == 0 and low == 0 and high == 0)
        year = row.get("Study year", "").strip() or years.get(study, "")
        rows.append(StudyRow(
            study, year, e1, n1, e2, n2, subgroup if subgroup_names else None,
            effect=effect if estimable else None,
            ci=(low, high) if estimable and low is not None and high is not None else None,
            weight=_float(row, "Weight", where=at),
            extra=tuple(sorted(by_study.get(study, {}).items())),
        ))
    return rows, dropped, subgroup_names


def _subgroup_test(
    settings: Mapping[str, str], where: str, n_subgroups: int
) -> tuple[float, float, float] | None:
    """Return the stored test for subgroup differences (Chi², P, I²), if shown and complete."""
    if not (_flag(settings, "Test for subgroup differences", True) and n_subgroups > 1):
        return None
    q, p, i2 = (_float(settings, key, where=where) for key in
                ("Subgroup Chi²", "Subgroup P", "Subgroup I²"))
    if q is not None and p is not None and i2 is not None:
        return (q, p, i2)
    return None


def _graph_labels(
    settings: Mapping[str, str], files: PackageFiles, number: str
) -> tuple[str, str]:
    """Return the forest plot's (left, right) labels: the settings', else the SVG's."""
    labels = (settings.get("Graph label (left)", "").strip(),
              settings.get("Graph label (right)", "").strip())
    if not any(labels) and number in files.svgs:
        labels = _labels_from_svg(files.svgs[number])
    return labels


def _low_risk_sensitivity(used: list[ExtraColumn]) -> tuple[str, str] | None:
    """Return (column, "low") of the overall risk-of-bias judgement, if it has a low level."""
    overall_rob = next((c for c in used if c.name == "rob_overall"
                        or c.label.lower().startswith("risk of bias: overall")), None)
    if overall_rob is not None and "low" in overall_rob.levels:
        return (overall_rob.name, "low")
    return None


def read_package(path: str | Path) -> Review:
    """Read a Cochrane data package's dichotomous analyses.

    Parameters
    ----------
    path : str or Path
        The ``.zip`` RevMan Web exports (version 1 or 2).

    Returns
    -------
    Review
        Its dichotomous analyses, with the stored results; other data types are listed in
        ``skipped``, as are study notes (conflicting risk-of-bias rows).

    Raises
    ------
    RevManError
        One line naming the file (and the analysis, study and field where the fault is).

    Examples
    --------
    >>> review = read_package("tests/data/revman/Fleiss1993.zip")  # doctest: +SKIP
    >>> [o.number for o in review.outcomes], review.skipped  # doctest: +SKIP
    (['1.1'], ("skipped analysis 1.2 'Mental Health ...' (continuous; ...)",))
    """
    path = Path(path)
    label = path.name
    files = read_files(path)
    years = {r.get("Study", "").strip(): r.get("Year", "").strip()
             for r in files.tables.get("study-information", [])}
    by_study, columns, notes = _risk_of_bias(files.tables.get("risk-of-bias", []), label)
    outcomes: list[DichotomousOutcome] = []
    skipped: list[str] = list(notes)
    for settings in files.tables["overall-estimates-and-settings"]:
        kind = settings.get("Data type", "").strip()
        if kind != DICHOTOMOUS:
            number = _number(settings, f"{label}: overall-estimates-and-settings")
            skipped.append(
                f"skipped analysis {number} '{settings.get('Analysis name', '').strip()}' "
                f"({kind.lower() or 'no data type'}; only dichotomous analyses are imported)"
            )
            continue
        outcomes.append(_outcome(settings, files, years, (by_study, columns), label))
    version = f"data package version {files.version}"
    return Review(path, "", "", f"RevMan Web ({version})",
                  tuple(outcomes), tuple(skipped))
