"""Load and validate a binary-outcome trial table (one row per study x stratum).

The format is a CSV with at least ``study, events_treat, n_treat, events_control, n_control``;
the IVIG-RSA table adds ``year, stratum, timing, placebo, confidence, source``. Any other
column is kept as a covariate. Every validation error is a :class:`DataError` whose message is
one line naming the file, the 1-based line number and the field, e.g.
``trials.csv:7: events_treat=31 exceeds n_treat=29``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import tomllib
from importlib import resources
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from rebayes.errors import RebayesError

__all__ = [
    "COUNT_COLUMNS",
    "DataError",
    "Dataset",
    "LABELS",
    "REQUIRED_COLUMNS",
    "data_root",
    "list_datasets",
    "load_dataset",
    "load_trials",
    "table_hash",
    "trial_totals",
    "variant_combinations",
]

COUNT_COLUMNS: tuple[str, ...] = ("events_treat", "n_treat", "events_control", "n_control")
REQUIRED_COLUMNS: tuple[str, ...] = ("study", *COUNT_COLUMNS)
# Columns describing the whole trial: every stratum row of one study must agree on them.
TRIAL_COLUMNS: tuple[str, ...] = ("year", "timing", "placebo")
LABELS: dict[str, tuple[str, ...]] = {
    "stratum": ("primary", "secondary", "mixed"),
    "timing": ("pre_conception", "post_conception"),
    "placebo": ("albumin", "saline", "multivitamin"),
    "confidence": ("verified", "derived", "uncertain"),
}
DEFAULT_DATASET = "ivig_rsa"


class DataError(RebayesError):
    """A trial table, a variant file or a dataset name is invalid (one-line message)."""


@dataclass(frozen=True)
class Dataset:
    """A named dataset directory: the table, its variants and its description.

    Attributes
    ----------
    name : str
        Directory name (``ivig_rsa``) or the CSV's stem for a bare CSV path.
    trials_path : Path
        The trial table.
    variants_path : Path or None
        ``variants.toml`` beside the table, if any.
    meta : dict
        Contents of ``dataset.toml`` (empty for a bare CSV).
    """

    name: str
    trials_path: Path
    variants_path: Path | None
    meta: dict[str, Any] = field(default_factory=dict)

    def variants(self) -> dict[str, dict[str, Any]]:
        """Return the variant table (``published`` always exists)."""
        found: dict[str, dict[str, Any]] = {"published": {"description": "as published"}}
        if self.variants_path is not None:
            try:
                found.update(tomllib.loads(self.variants_path.read_text(encoding="utf-8")))
            except tomllib.TOMLDecodeError as exc:
                raise DataError(f"{self.variants_path}: not valid TOML: {exc}") from None
        return found


def variant_combinations(dataset: Dataset) -> list[str]:
    """Every variant and every composition of variants that override disjoint rows.

    Parameters
    ----------
    dataset : Dataset

    Returns
    -------
    list of str
        Names usable as ``variant=`` (``"published"`` first, compositions joined by ``+``),
        e.g. ``seed_fit+itt``; two variants that set the same study x stratum row never
        compose.
    """
    from itertools import combinations

    specs = {k: v for k, v in dataset.variants().items() if k != "published"}
    touched = {
        name: {(e.get("study"), e.get("stratum", "mixed")) for e in (*spec.get("set", []),
                                                                    *spec.get("drop", []))}
        for name, spec in specs.items()
    }
    names = ["published"]
    for size in range(1, len(specs) + 1):
        for combo in combinations(specs, size):
            keys = [touched[n] for n in combo]
            if sum(map(len, keys)) == len(set().union(*keys)):
                names.append("+".join(combo))
    return names


def data_root() -> Path:
    """Return the directory holding the shipped datasets (``rebayes/datasets`` in the package)."""
    # importlib.resources finds the folder in an editable and in a wheel install alike; the
    # package is never zipped (setuptools installs it as files), so a real path exists.
    return Path(str(resources.files("rebayes") / "datasets"))


def list_datasets() -> list[str]:
    """Names of the datasets under :func:`data_root`."""
    return sorted(p.parent.name for p in data_root().glob("*/trials.csv"))


def load_dataset(path_or_name: str | Path = DEFAULT_DATASET) -> Dataset:
    """Resolve a dataset name, a dataset directory or a CSV path.

    Parameters
    ----------
    path_or_name : str or Path
        ``"ivig_rsa"`` (a directory under ``data/``), a directory holding ``trials.csv``,
        or a path to any CSV in the trial-table format.

    Returns
    -------
    Dataset
    """
    candidate = Path(path_or_name)
    if candidate.is_file():
        directory, trials = candidate.parent, candidate
        name = candidate.stem if candidate.name != "trials.csv" else directory.name
    elif candidate.is_dir() and (candidate / "trials.csv").is_file():
        directory, trials, name = candidate, candidate / "trials.csv", candidate.name
    elif (data_root() / str(path_or_name) / "trials.csv").is_file():
        directory = data_root() / str(path_or_name)
        trials, name = directory / "trials.csv", str(path_or_name)
    else:
        known = ", ".join(list_datasets()) or "none"
        raise DataError(f"{path_or_name}: no such file or dataset (shipped datasets: {known})")
    meta: dict[str, Any] = {}
    # Only a table named trials.csv owns the directory's description and variants; a bare CSV
    # elsewhere is read alone.
    if trials.name == "trials.csv" and (directory / "dataset.toml").is_file():
        try:
            meta = tomllib.loads((directory / "dataset.toml").read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise DataError(f"{directory / 'dataset.toml'}: not valid TOML: {exc}") from None
    variants = directory / "variants.toml"
    has_variants = trials.name == "trials.csv" and variants.is_file()
    return Dataset(name, trials, variants if has_variants else None, meta)


def load_trials(
    path_or_name: str | Path = DEFAULT_DATASET, variant: str | None = None
) -> pd.DataFrame:
    """Load a trial table, apply a data variant and validate it.

    Parameters
    ----------
    path_or_name : str or Path
        Dataset name (``"ivig_rsa"``), dataset directory, or path to a CSV.
    variant : str, optional
        Name of a variant in the dataset's ``variants.toml``; several compose with ``+``
        (``"seed_fit+itt"`` applies ``seed_fit`` then ``itt``). Default: the dataset's
        ``default_variant``, else ``"published"``.

    Returns
    -------
    pandas.DataFrame
        One row per study x stratum, counts as int64. ``attrs`` holds ``dataset``, ``path``,
        ``variant``, ``meta`` (the dataset description) and ``data_hash`` (SHA-256 of the
        table after the variant, so two loads that give the same numbers share a hash).

    Raises
    ------
    DataError
        With a one-line message naming file, line and field.

    Examples
    --------
    >>> import rebayes as rb
    >>> trials = rb.load_trials("ivig_rsa", variant="seed_fit")
    >>> int(trials.loc[trials.study == "Stephenson 2010", "n_control"].iloc[0])
    29
    """
    dataset = load_dataset(path_or_name)
    variant = variant or dataset.meta.get("default_variant", "published")
    rows, lines, columns = _read_csv(dataset.trials_path)
    label = _display(dataset.trials_path)
    locs = [f"{label}:{line}" for line in lines]
    records = [_validate_row(loc, row, columns) for row, loc in zip(rows, locs, strict=True)]
    known = dataset.variants()
    for name in variant.split("+"):
        if name not in known:
            raise DataError(
                f"unknown variant '{name}' for dataset {dataset.name} "
                f"(known: {', '.join(sorted(known))})"
            )
        records, locs = _apply_variant(dataset, name, known[name], records, locs, columns)
    _check_table(records, locs)
    frame = pd.DataFrame.from_records(records, columns=_output_columns(columns))
    for col in COUNT_COLUMNS:
        frame[col] = frame[col].astype("int64")
    if "year" in frame:
        frame["year"] = frame["year"].astype("Int64")
    frame.attrs.update(
        dataset=dataset.name,
        path=str(dataset.trials_path),
        variant=variant,
        meta=dataset.meta,
        data_hash=table_hash(frame),
    )
    return frame


def trial_totals(trials: pd.DataFrame) -> pd.DataFrame:
    """Sum each study's stratum rows into one row per study (as RevMan sees a trial).

    Columns other than the counts keep their value when all strata agree; ``stratum``
    becomes the single stratum when there is one, else ``"mixed"``.

    Parameters
    ----------
    trials : pandas.DataFrame
        A table from :func:`load_trials`.

    Returns
    -------
    pandas.DataFrame
        One row per study, in first-appearance order, with the same ``attrs``.
    """
    grouped = trials.groupby("study", sort=False)
    totals = grouped[list(COUNT_COLUMNS)].sum()
    others = [c for c in trials.columns if c not in COUNT_COLUMNS and c != "study"]
    for col in others:
        first = grouped[col].first()
        agrees = grouped[col].nunique(dropna=False) <= 1
        if col == "stratum":
            totals[col] = first.where(agrees, "mixed")
        elif col in ("source", "confidence"):
            totals[col] = grouped[col].agg(_join_unique)
        else:
            totals[col] = first.where(agrees)
    totals = totals.reset_index()[list(trials.columns)]
    totals.attrs = dict(trials.attrs)
    return totals


def _join_unique(values: pd.Series) -> str:
    if values.name == "confidence":
        # A trial is only as certain as its least certain stratum.
        order = {label: i for i, label in enumerate(LABELS["confidence"])}
        return max(values, key=lambda v: order.get(v, -1))
    return " | ".join(dict.fromkeys(str(v) for v in values))


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _read_csv(path: Path) -> tuple[list[dict[str, str]], list[int], list[str]]:
    label = _display(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{label}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise DataError(f"{label}: empty file (no header line)")
        columns = [h.strip() for h in header]
        for col in REQUIRED_COLUMNS:
            if col not in columns:
                raise DataError(f"{label}:1: missing required column '{col}'")
        dupes = {c for c in columns if columns.count(c) > 1}
        if dupes:
            raise DataError(f"{label}:1: column '{sorted(dupes)[0]}' appears twice")
        rows: list[dict[str, str]] = []
        lines: list[int] = []
        start = reader.line_num + 1
        for values in reader:
            line = start
            start = reader.line_num + 1
            if not values or all(not v.strip() for v in values):
                continue
            if len(values) != len(columns):
                raise DataError(
                    f"{label}:{line}: expected {len(columns)} fields, found {len(values)}"
                )
            rows.append({c: v.strip() for c, v in zip(columns, values, strict=True)})
            lines.append(line)
    except csv.Error as exc:
        raise DataError(f"{label}:{reader.line_num}: malformed CSV ({exc})") from None
    if not rows:
        raise DataError(f"{label}: no data rows")
    return rows, lines, columns


def _output_columns(columns: list[str]) -> list[str]:
    """Study and stratum first, counts next, then covariates, provenance last."""
    extra = [c for c in columns if c not in REQUIRED_COLUMNS and c != "stratum"]
    tail = [c for c in ("confidence", "source") if c in extra]
    middle = [c for c in extra if c not in tail]
    return ["study", "stratum", *COUNT_COLUMNS, *middle, *tail]


def _parse_count(loc: str, name: str, raw: Any) -> int:
    if isinstance(raw, bool):
        raise DataError(f"{loc}: {name}={raw!r} is not a whole number")
    if isinstance(raw, int):
        value = raw
    else:
        text = str(raw).strip()
        if text == "":
            raise DataError(f"{loc}: {name} is empty")
        try:
            value = int(text)
        except ValueError:
            raise DataError(f"{loc}: {name}={text!r} is not a whole number") from None
    if value < 0:
        raise DataError(f"{loc}: {name}={value} is negative")
    return value


def _validate_row(loc: str, row: Mapping[str, Any], columns: list[str]) -> dict[str, Any]:
    record: dict[str, Any] = dict(row)
    if not str(record.get("study", "")).strip():
        raise DataError(f"{loc}: study is empty")
    record["study"] = str(record["study"]).strip()
    record.setdefault("stratum", "mixed")
    if record["stratum"] in ("", None):
        record["stratum"] = "mixed"
    for name in COUNT_COLUMNS:
        record[name] = _parse_count(loc, name, record.get(name))
    for arm in ("treat", "control"):
        events, n = record[f"events_{arm}"], record[f"n_{arm}"]
        if n == 0:
            raise DataError(f"{loc}: n_{arm}=0 must be positive")
        if events > n:
            raise DataError(f"{loc}: events_{arm}={events} exceeds n_{arm}={n}")
    for name, allowed in LABELS.items():
        if name in record and name in (*columns, "stratum"):
            value = str(record[name]).strip()
            if value not in allowed:
                raise DataError(
                    f"{loc}: {name}={value!r} is not one of {', '.join(allowed)}"
                )
            record[name] = value
    if "year" in record and str(record["year"]).strip() != "":
        raw_year = str(record["year"]).strip()
        if not raw_year.isdigit():
            raise DataError(f"{loc}: year={raw_year!r} is not a whole number")
        record["year"] = int(raw_year)
    elif "year" in record:
        record["year"] = None
    return record


def _check_table(records: list[dict[str, Any]], locs: list[str]) -> None:
    seen: dict[tuple[str, str], str] = {}
    trial_values: dict[tuple[str, str], tuple[Any, str]] = {}
    for record, loc in zip(records, locs, strict=True):
        key = (record["study"], record["stratum"])
        if key in seen:
            raise DataError(
                f"{loc}: stratum={key[1]!r} repeats study {key[0]!r} "
                f"(first at {seen[key]})"
            )
        seen[key] = loc
        for col in TRIAL_COLUMNS:
            if col not in record:
                continue
            first = trial_values.setdefault((record["study"], col), (record[col], loc))
            if first[0] != record[col]:
                raise DataError(
                    f"{loc}: {col}={record[col]!r} differs from {first[0]!r} "
                    f"at {first[1]} for study {record['study']!r}"
                )


def _apply_variant(
    dataset: Dataset,
    name: str,
    spec: Mapping[str, Any],
    records: list[dict[str, Any]],
    locs: list[str],
    columns: list[str],
) -> tuple[list[dict[str, Any]], list[str]]:
    """Return the records with the variant's ``set`` and ``drop`` entries applied."""
    where = f"{_display(dataset.variants_path or dataset.trials_path)}: [{name}]"
    records = [dict(r) for r in records]
    locs = list(locs)
    for i, drop in enumerate(spec.get("drop", []), start=1):
        key = (drop.get("study"), drop.get("stratum", "mixed"))
        hits = [j for j, r in enumerate(records) if (r["study"], r["stratum"]) == key]
        if not hits:
            raise DataError(f"{where} drop #{i}: no row study={key[0]!r} stratum={key[1]!r}")
        del records[hits[0]], locs[hits[0]]
    for i, entry in enumerate(spec.get("set", []), start=1):
        entry_where = f"{where} set #{i}"
        unknown = set(entry) - set(columns) - {"stratum"}
        if unknown:
            raise DataError(f"{entry_where}: unknown field '{sorted(unknown)[0]}'")
        key = (entry.get("study"), entry.get("stratum", "mixed"))
        hits = [j for j, r in enumerate(records) if (r["study"], r["stratum"]) == key]
        if hits:
            merged = {**records[hits[0]], **entry}
            records[hits[0]] = _validate_row(entry_where, merged, columns)
            locs[hits[0]] = entry_where
            continue
        siblings = [r for r in records if r["study"] == key[0]]
        if not siblings:
            raise DataError(f"{entry_where}: no study {key[0]!r} in the table")
        missing = [c for c in COUNT_COLUMNS if c not in entry]
        if missing:
            raise DataError(
                f"{entry_where}: new row study={key[0]!r} stratum={key[1]!r} needs {missing[0]}"
            )
        new = {c: siblings[0].get(c) for c in columns}
        new.update({"confidence": "uncertain"} if "confidence" in columns else {})
        new.update(entry)
        # Insert after the study's last row so the table keeps studies together.
        at = max(j for j, r in enumerate(records) if r["study"] == key[0]) + 1
        records.insert(at, _validate_row(entry_where, new, columns))
        locs.insert(at, entry_where)
    return records, locs


def table_hash(frame: pd.DataFrame) -> str:
    """SHA-256 of a trial table's contents (what the fit cache keys a table by)."""
    payload = frame.to_csv(index=False).encode("utf-8")
    return hashlib.sha256(payload).hexdigest()
