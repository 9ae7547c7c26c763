"""Load and validate a binary-outcome trial table (one row per study, or per study x stratum).

The format is a CSV with at least ``study, events_treat, n_treat, events_control, n_control``;
any other column is kept as a covariate. metafor's (``ai, n1i, ci, n2i`` or ``ai, bi, ci,
di``) and meta's (``event.e, n.e, event.c, n.c``) names are read too, with a
:class:`~rebayes.errors.DataNote` saying how (:mod:`rebayes.data.column_names`). What the
columns mean comes from the dataset folder's ``dataset.toml`` (:mod:`rebayes.data.schema`):
which column names a trial's strata, which columns are categorical with which labels, which
must agree within a trial. A bare CSV gets the
defaults: every row is a study of its own (a repeated study name is a second row, as RevMan
treats a multi-arm trial's second comparison), no label checks. Every validation error is a
:class:`DataError` whose message is one line naming the file, the 1-based line number and the
field, e.g. ``trials.csv:7: events_treat=31 exceeds n_treat=29``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import tomllib
import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd

from rebayes.data.column_names import ColumnMapping, NeedsCounts, resolve_columns
from rebayes.data.counts import COUNT_COLUMNS, MAX_COUNT, DataError, parse_count
from rebayes.data.schema import DatasetSchema, SchemaError, schema_of
from rebayes.data.text import forbidden_field, forbidden_toml_text, separator_message
from rebayes.data.trial_table import TrialTable, table_hash
from rebayes.errors import DataNote, check_keys

__all__ = [
    "COUNT_COLUMNS",
    "DataError",
    "Dataset",
    "MAX_COUNT",
    "REQUIRED_COLUMNS",
    "data_root",
    "list_datasets",
    "load_dataset",
    "load_table",
    "load_trials",
    "parse_count",
    "row_labels",
    "table_hash",
    "trial_ids",
    "trial_totals",
    "variant_combinations",
]

REQUIRED_COLUMNS: tuple[str, ...] = ("study", *COUNT_COLUMNS)


@dataclass(frozen=True)
class Dataset:
    """A dataset: the table, its variants, its schema and what else its folder holds.

    Attributes
    ----------
    name : str
        Folder name (``bcg``) or the CSV's stem for a bare CSV path.
    trials_path : Path
        The trial table.
    variants_path : Path or None
        ``variants.toml`` beside the table, if any.
    schema : DatasetSchema
        ``dataset.toml`` parsed (defaults for a bare CSV).
    directory : Path or None
        The dataset folder (None for a bare CSV).
    source : Dataset or None
        The dataset whose rows this one takes by reference (``[source]`` in dataset.toml).
    meta : dict
        ``dataset.toml`` as loaded (empty for a bare CSV).
    origin : str or None
        What the user named when the folder is rebayes' import of a RevMan file's outcome
        (``review.rm5:1.1``; the folder itself lies in the cache). Messages name it.
    """

    name: str
    trials_path: Path
    variants_path: Path | None
    schema: DatasetSchema = field(default_factory=DatasetSchema.defaults)
    directory: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    source: Dataset | None = None
    origin: str | None = None

    @property
    def reference(self) -> str:
        """What :func:`load_dataset` takes to load this dataset again, as the user named it.

        A RevMan file's outcome stays ``review.rm5:1.1`` (not the folder in the cache), so
        that analyses built on it name the user's file in their messages.
        """
        return self.origin or str(self.directory or self.trials_path)

    def display(self, path: Path) -> str:
        """Name ``path`` for a message: as the user knows it (see :func:`_display`)."""
        return _display(path, self.directory, self.origin)

    @property
    def reported_path(self) -> Path | None:
        """``reported.csv`` (the published figures to audit), if the folder has one."""
        path = self.directory / "reported.csv" if self.directory else None
        return path if path is not None and path.is_file() else None

    @property
    def models_dir(self) -> Path | None:
        """The folder's ``models/`` (analysis scripts), if it has one with scripts.

        Its scripts run only when trusted (:mod:`rebayes.data.trust`).
        """
        path = self.directory / "models" if self.directory else None
        return path if path is not None and any(path.glob("*.py")) else None

    @property
    def declared_analyses(self) -> tuple[dict[str, Any], ...]:
        """The ``[[analyses]]`` tables of ``dataset.toml`` (keys checked on load)."""
        return tuple(self.meta.get("analyses", []))

    @property
    def default_analyses(self) -> bool:
        """Whether the dataset gets the default analyses (``default_analyses``, default true)."""
        return bool(self.meta.get("default_analyses", True))

    @property
    def toml_label(self) -> str:
        """``dataset.toml`` as messages name it (relative to the working directory)."""
        return _display(self.directory / "dataset.toml") if self.directory else "dataset.toml"

    def variants(self) -> dict[str, dict[str, Any]]:
        """Return the variant table (``published`` always exists).

        Raises
        ------
        DataError
            ``variants.toml`` is not valid TOML, holds a key no variant has (``set``,
            ``drop``, ``description``; ``source_variant`` where the rows come from a
            ``[source]``) or a control or bidirectional-override character (one line).
        """
        found: dict[str, dict[str, Any]] = {"published": {"description": "as published"}}
        if self.variants_path is not None:
            where = _display(self.variants_path)
            source = self.variants_path.read_text(encoding="utf-8")
            try:
                table = tomllib.loads(source)
            except tomllib.TOMLDecodeError as exc:
                raise DataError(f"{self.variants_path}: not valid TOML: {exc}") from None
            _check_toml_characters(table, source, where)
            _check_variant_keys(table, where, self.schema, with_source=self.source is not None)
            found.update(table)
        return found


#: Keys of one variant in ``variants.toml`` (``source_variant`` only where the dataset takes
#: its rows from a ``[source]``).
VARIANT_KEYS: tuple[str, ...] = ("description", "set", "drop")


def _check_variant_keys(
    table: Mapping[str, Any], where: str, schema: DatasetSchema, with_source: bool
) -> None:
    known = (*VARIANT_KEYS, *(("source_variant",) if with_source else ()))
    drop_keys = ("study", *((schema.strata,) if schema.strata else ()))
    for name, variant in table.items():
        if not isinstance(variant, dict):
            raise DataError(f"{where}: {name} must be a table ([{name}] with {', '.join(known)})")
        check_keys(variant, known, where, f"{name}.", DataError)
        for part in ("set", "drop"):
            entries = variant.get(part, [])
            if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
                raise DataError(
                    f"{where}: {name}.{part} must be a list of tables ([[{name}.{part}]])"
                )
        for i, entry in enumerate(variant.get("drop", []), start=1):
            check_keys(entry, drop_keys, where, f"{name}.drop[{i}].", DataError)


def _check_toml_characters(table: Any, source: str, label: str) -> None:
    problem = forbidden_toml_text(table, source)
    if problem:
        line, message = problem
        raise DataError(f"{label}{f':{line}' if line else ''}: {message}")


def _row_key(schema: DatasetSchema, entry: Mapping[str, Any]) -> tuple[Any, Any]:
    """(study, stratum) naming a row in a variant entry; stratum None when not declared."""
    return entry.get("study"), entry.get(schema.strata) if schema.strata else None


def variant_combinations(dataset: Dataset) -> list[str]:
    """Every variant and every composition of variants that override disjoint rows.

    Parameters
    ----------
    dataset : Dataset

    Returns
    -------
    list of str
        Names usable as ``variant=`` (``"published"`` first, compositions joined by ``+``);
        two variants that set the same row never compose.
    """
    from itertools import combinations

    specs = {k: v for k, v in dataset.variants().items() if k != "published"}
    source = dataset.source.variants() if dataset.source is not None else {}

    def rows_of(spec: Mapping[str, Any], schema: DatasetSchema) -> set[tuple[Any, Any]]:
        return {_row_key(schema, e) for e in (*spec.get("set", []), *spec.get("drop", []))}

    touched = {
        # A variant that picks a source variant touches that variant's rows too.
        name: rows_of(spec, dataset.schema)
        | (rows_of(source.get(spec["source_variant"], {}), dataset.source.schema)
           if dataset.source is not None and "source_variant" in spec else set())
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
    """Return the directory holding the shipped datasets (``rebayes/data/datasets``)."""
    # importlib.resources finds the folder in an editable and in a wheel install alike; the
    # package is never zipped (setuptools installs it as files), so a real path exists.
    return Path(str(resources.files("rebayes.data") / "datasets"))


def list_datasets() -> list[str]:
    """Names of the shipped datasets."""
    return sorted(p.parent.name for p in data_root().glob("*/dataset.toml"))


def load_dataset(path_or_name: str | Path | None) -> Dataset:
    """Resolve a shipped dataset's name, a dataset folder or a CSV path.

    Parameters
    ----------
    path_or_name : str or Path
        A shipped dataset's name (see :func:`list_datasets`), a folder holding ``trials.csv`` (and
        ``dataset.toml``), or a path to any CSV in the trial-table format.

    Returns
    -------
    Dataset

    Raises
    ------
    DataError
        No such file, folder or dataset; an invalid ``dataset.toml`` (one line).
    """
    if path_or_name is None or str(path_or_name) == "":
        known = ", ".join(list_datasets()) or "none"
        raise DataError(f"no dataset given: use --data NAME|DIR|CSV|RM5 (shipped: {known})")
    from rebayes.data.reviews import review_spec

    review = review_spec(str(path_or_name))
    if review is not None:
        return _load_dataset(*_review_folder(*review))
    return _load_dataset(path_or_name)


def _load_dataset(path_or_name: str | Path, origin: str | None = None) -> Dataset:
    candidate = Path(path_or_name)
    shipped = data_root() / str(path_or_name)
    if candidate.is_file():
        trials = candidate
        directory = candidate.parent if candidate.name == "trials.csv" else None
    elif candidate.is_dir():
        if not (candidate / "trials.csv").is_file() and (candidate / "dataset.toml").is_file():
            directory, trials = candidate, candidate / "trials.csv"  # rows from its [source]
        elif not (candidate / "trials.csv").is_file():
            raise DataError(
                f"{path_or_name}: a folder without trials.csv (a dataset folder holds "
                "trials.csv and dataset.toml)"
            )
        directory, trials = candidate, candidate / "trials.csv"
    elif "/" not in str(path_or_name) and (shipped / "dataset.toml").is_file():
        directory, trials = shipped, shipped / "trials.csv"
    else:
        known = ", ".join(list_datasets()) or "none"
        raise DataError(f"{path_or_name}: no such file or dataset (shipped datasets: {known})")
    name = directory.resolve().name if directory is not None else candidate.stem
    meta: dict[str, Any] = {}
    schema = DatasetSchema.defaults(title=name)
    toml_path = directory / "dataset.toml" if directory is not None else None
    if toml_path is not None and toml_path.is_file():
        where = _display(toml_path, directory, origin)
        try:
            text = toml_path.read_text(encoding="utf-8")
            meta = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise DataError(f"{where}: not valid TOML: {exc}") from None
        except UnicodeDecodeError as exc:
            raise DataError(f"{where}: not UTF-8 text ({exc.reason})") from None
        _check_toml_characters(meta, text, where)
        try:
            schema = DatasetSchema.from_dict(meta, where)
        except SchemaError as exc:
            raise DataError(str(exc)) from None
        if not schema.title:
            schema = replace(schema, title=name)
    variants = directory / "variants.toml" if directory is not None else None
    has_variants = variants is not None and variants.is_file()
    source = None
    if schema.source:
        assert directory is not None
        where = f"{_display(directory / 'dataset.toml', directory, origin)}: source"
        name_or_path = str(schema.source["dataset"])
        relative = directory / name_or_path
        source = load_dataset(relative if relative.is_dir() else name_or_path)
        if source.source is not None:
            raise DataError(f"{where}: {name_or_path} takes its rows from another dataset too")
        trials = source.trials_path
    elif not trials.is_file():
        raise DataError(f"{path_or_name}: a folder without trials.csv (a dataset folder holds "
                        "trials.csv and dataset.toml)")
    return Dataset(
        name, trials, variants if has_variants else None, schema, directory, meta, source,
        origin,
    )


def _review_folder(source: Path, outcome: str) -> tuple[Path, str]:
    """Import a review file once (into the cache); return one analysis' folder and its origin.

    A RevMan 5 file, a Cochrane data package or RevMan 5's CSV export
    (:mod:`rebayes.data.reviews`); the cache entry is keyed by the file's bytes under the one
    key rule (:func:`rebayes.store.keys.content_key`, kind ``"import"``: the readers' source
    and library versions). The origin (``review.rm5:1.1``, the file as the user named it)
    is what messages name instead of the folder in the cache.
    """
    from rebayes.data.reviews import read_review
    from rebayes.data.revman import import_review
    from rebayes.store.keys import content_key
    from rebayes.store.paths import cache_folder, make_folder

    path = str(source)
    if not source.is_file():
        raise DataError(f"{path}: no such file")
    review = read_review(source)
    numbers = [o.number for o in review.outcomes]
    if not outcome:
        if len(numbers) != 1:
            raise DataError(
                f"{path}: holds {len(numbers)} dichotomous outcomes; name one as "
                f"{path}:NUMBER ({', '.join(numbers) or 'none'}), or run rebayes import"
            )
        outcome = numbers[0]
    if outcome not in numbers:
        raise DataError(
            f"{path}: no dichotomous outcome {outcome} (outcomes: {', '.join(numbers)})"
        )
    key = content_key("import", {"file": hashlib.sha256(source.read_bytes()).hexdigest()})
    # checked, and created private, as the cache is
    folder = cache_folder("imports") / key
    if not (folder / outcome / "trials.csv").is_file():
        make_folder(folder.parent)
        import_review(review, folder)
    return folder / outcome, f"{_display(source)}:{outcome}"


def load_trials(
    path_or_name: str | Path | Dataset | None, variant: str | None = None
) -> pd.DataFrame:
    """Load a trial table as a DataFrame, its metadata in ``attrs`` (for notebooks).

    The analyses take the :class:`~rebayes.data.trial_table.TrialTable` of
    :func:`load_table`, which carries the schema as a field. This DataFrame form is
    :meth:`TrialTable.to_frame`: pandas drops ``attrs`` on ``merge``, ``concat`` and other
    operations, and a function given a frame whose schema is gone asks for it (``schema=``)
    rather than guess the direction of benefit.

    Parameters
    ----------
    path_or_name : str, Path or Dataset
        Shipped dataset name, dataset folder, or path to a CSV.
    variant : str, optional
        As for :func:`load_table`.

    Returns
    -------
    pandas.DataFrame
        One row per study (or study x stratum), counts as int64. ``attrs`` holds
        ``dataset``, ``path``, ``variant``, ``schema`` (a
        :class:`~rebayes.data.schema.DatasetSchema`),
        ``notes`` (one-line remarks, e.g. repeated study names), ``data_hash`` (SHA-256 of
        the table after the variant) and ``column_names`` (how another package's column
        names were read, e.g. metafor's ``ai``; empty for rebayes's own).

    Raises
    ------
    DataError
        With a one-line message naming file, line and field.

    Examples
    --------
    >>> import rebayes as rb
    >>> trials = rb.load_trials("tests/data/bcg.csv")          # doctest: +SKIP
    >>> int(trials["n_treat"].sum())                             # doctest: +SKIP
    191064
    """
    return load_table(path_or_name, variant).to_frame()


def load_table(
    path_or_name: str | Path | Dataset | None, variant: str | None = None
) -> TrialTable:
    """Load a trial table, apply a data variant and validate it: the rows an analysis uses.

    Parameters
    ----------
    path_or_name : str, Path or Dataset
        Shipped dataset name, dataset folder, or path to a CSV (see :func:`load_dataset`).
    variant : str, optional
        Name of a variant in the dataset's ``variants.toml``; several compose with ``+``
        (``"a+b"`` applies ``a`` then ``b``). Default: the dataset's ``default_variant``.

    Returns
    -------
    TrialTable
        The rows (one per study, or study x stratum, counts as int64) with the dataset's
        schema, name, variant, data hash (SHA-256 of the table after the variant), notes
        and how another package's column names were read.

    Raises
    ------
    DataError
        With a one-line message naming file, line and field.

    Examples
    --------
    >>> import rebayes as rb
    >>> table = rb.load_table("tests/data/bcg")                  # doctest: +SKIP
    >>> int(table.frame["n_treat"].sum())                        # doctest: +SKIP
    191064
    """
    dataset = path_or_name if isinstance(path_or_name, Dataset) else load_dataset(path_or_name)
    schema = dataset.schema
    variant = variant or schema.default_variant
    known = dataset.variants()
    names = variant.split("+")
    for name in names:
        if name not in known:
            raise DataError(
                f"unknown variant '{name}' for dataset {dataset.name} "
                f"(known: {', '.join(sorted(known))})"
            )
    renamed = ""
    if dataset.source is not None:
        # Rows by reference: the source's table under the source variants these variants
        # name, then only the listed studies.
        source_variant = "+".join(
            v for n in names if (v := known[n].get("source_variant"))
        ) or None
        base = load_table(dataset.source, source_variant).frame
        studies = list(schema.source.get("studies", [])) or list(dict.fromkeys(base["study"]))
        missing = [s for s in studies if s not in set(base["study"])]
        if missing:
            raise DataError(
                f"{dataset.display(dataset.directory / 'dataset.toml')}: source: no study "  # type: ignore[operator]
                f"{missing[0]!r} in {dataset.source.name}"
            )
        base = base[base["study"].isin(studies)]
        columns = [c for c in base.columns]
        label = f"{dataset.display(dataset.trials_path)} (via {dataset.name})"
        locs = [f"{label}: {s}" for s in base["study"]]
        rows = base.astype(object).where(base.notna(), None).to_dict(orient="records")
    else:
        label = dataset.display(dataset.trials_path)
        raw_rows, lines, columns, mapping = _read_csv(dataset.trials_path, label)
        if mapping is not None:
            renamed = mapping.note()
            warnings.warn(f"{label}: {renamed}", DataNote, stacklevel=2)
        locs = [f"{label}:{line}" for line in lines]
        rows = raw_rows
    _check_declared_columns(schema, columns, label)
    records = [_validate_row(loc, row, schema) for row, loc in zip(rows, locs, strict=True)]
    studies = [str(r["study"]) for r in records]
    for name in names:
        records, locs = _apply_variant(dataset, name, known[name], records, locs, columns)
    notes = _check_table(records, locs, schema)
    # After the rows' own checks: a bad row is named before a share naming no study.
    _check_shares(dataset, studies)
    frame = pd.DataFrame.from_records(records, columns=_output_columns(columns, schema))
    for col in COUNT_COLUMNS:
        frame[col] = frame[col].astype("int64")
    for cov in (*schema.covariates.values(), *schema.columns.values()):
        if cov.kind == "continuous" and cov.column in frame:
            frame[cov.column] = pd.to_numeric(frame[cov.column])
    return TrialTable(
        frame, schema, dataset.name, variant, table_hash(frame), str(dataset.trials_path),
        tuple(notes), renamed, dataset.reference,
    )


def row_labels(
    trials: pd.DataFrame | TrialTable, split: bool | None = None,
    schema: DatasetSchema | None = None,
) -> list[str]:
    """Return a unique label per row: the study, its stratum where split, its year if repeated.

    One notion of a row everywhere (fits, RevMan tables, the audit, cumulative steps): without
    a declared strata column every row is a trial of its own, and a study name shared by
    several rows (three trials by one first author, a multi-arm trial's comparisons) is told
    apart by the row's ``year`` when the table has one and it differs between those rows
    (``"Shechter (1991)"``), else by a number (``"Shechter #2"``, RevMan's multi-arm
    convention).

    Parameters
    ----------
    trials : TrialTable or pandas.DataFrame
    split : bool, optional
        Whether the rows are a trial's strata shown separately (default: whether the dataset
        declares a strata column and a study has several rows).
    schema : DatasetSchema, optional
        Which column names the strata; default the table's own (:func:`schema_of`).

    Returns
    -------
    list of str
        ``"Smith 2001"``; ``"Smith 2001 (b)"`` for its stratum ``b``; ``"Shechter (1991)"``
        or ``"Shechter #2"`` for a repeated study name.
    """
    strata = (schema or schema_of(trials)).strata
    if isinstance(trials, TrialTable):
        trials = trials.frame
    studies = trials["study"].astype(str).tolist()
    # Plain Python lookups: a pandas lookup per row took seconds on a 50,000-row table.
    counts = Counter(studies)
    years = _years(trials)
    years_of: dict[str, list[str]] = {}
    for study, year in zip(studies, years, strict=True):
        years_of.setdefault(study, []).append(year)
    labels: list[str] = []
    seen: dict[str, int] = {}
    use_strata = strata is not None and strata in trials and split is not False
    stratum = trials[strata].tolist() if use_strata else []
    for i, study in enumerate(studies):
        if use_strata and split is True:
            labels.append(f"{study} ({stratum[i]})")
            continue
        if counts[study] == 1:
            labels.append(study)
            continue
        if use_strata:
            labels.append(f"{study} ({stratum[i]})")
            continue
        seen[study] = seen.get(study, 0) + 1
        own = years_of[study]
        if years[i] and len(set(own)) == len(own):
            labels.append(f"{study} ({years[i]})")
        else:
            labels.append(study if seen[study] == 1 else f"{study} #{seen[study]}")
    return labels


def _years(trials: pd.DataFrame) -> list[str]:
    """Each row's ``year`` as text ('' where the table has none)."""
    if "year" not in trials.columns:
        return [""] * len(trials)
    out = []
    for value in trials["year"]:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out.append("")
        elif isinstance(value, float) and value.is_integer():
            out.append(str(int(value)))
        else:
            out.append(str(value).strip())
    return out


def trial_ids(
    trials: pd.DataFrame | TrialTable, schema: DatasetSchema | None = None
) -> list[str]:
    """Return the trial each row belongs to, as the dataset defines trials.

    With a declared strata column (present in the table) a trial is a study name and its rows
    are its strata; without one every row is a trial of its own, named by
    :func:`row_labels` (``"Shechter (1991)"``). The audit counts these, the cumulative analysis
    adds them one at a time, the design gives each its random effect.

    Parameters
    ----------
    trials : TrialTable or pandas.DataFrame
    schema : DatasetSchema, optional
        Which column names the strata; default the table's own (:func:`schema_of`).

    Returns
    -------
    list of str
        One entry per row.
    """
    schema = schema or schema_of(trials)
    if isinstance(trials, TrialTable):
        trials = trials.frame
    strata = schema.strata
    if strata is not None and strata in trials:
        return trials["study"].astype(str).tolist()
    return row_labels(trials, split=False, schema=schema)


def trial_totals(
    trials: pd.DataFrame | TrialTable, schema: DatasetSchema | None = None
) -> pd.DataFrame:
    """Sum each trial's strata rows into one row per trial (as RevMan sees a trial).

    Only a dataset that declares a ``strata`` column has strata: without one, every row is a
    study of its own and the table is returned as it is. Columns other than the counts keep
    their value when all strata agree; the strata column becomes the single stratum when there
    is one, else the pooled level its covariate declares (``"all"`` if none).

    Parameters
    ----------
    trials : TrialTable or pandas.DataFrame
        A table from :func:`load_table` (or :func:`load_trials`).
    schema : DatasetSchema, optional
        Which column names the strata; default the table's own (:func:`schema_of`).

    Returns
    -------
    pandas.DataFrame
        One row per trial, in first-appearance order (a DataFrame's ``attrs`` kept).
    """
    schema = schema or schema_of(trials)
    if isinstance(trials, TrialTable):
        trials = trials.frame
    strata = schema.strata
    if strata is None or strata not in trials or not trials["study"].duplicated().any():
        out = trials.copy()
        out.attrs = dict(trials.attrs)
        return out
    pooled = next(
        (c.pooled for c in schema.covariates.values() if c.column == strata and c.pooled), "all"
    )
    grouped = trials.groupby("study", sort=False)
    totals = grouped[list(COUNT_COLUMNS)].sum()
    others = [c for c in trials.columns if c not in COUNT_COLUMNS and c != "study"]
    for col in others:
        first = grouped[col].first()
        agrees = grouped[col].nunique(dropna=False) <= 1
        if col == strata:
            totals[col] = first.where(agrees, pooled)
        elif agrees.all():
            totals[col] = first
        elif pd.api.types.is_numeric_dtype(trials[col]):
            totals[col] = first.where(agrees)
        else:
            # Text that differs between strata (sources, provenance labels): keep every value.
            totals[col] = grouped[col].agg(_join_unique)
    totals = totals.reset_index()[list(trials.columns)]
    totals.attrs = dict(trials.attrs)
    return totals


def _join_unique(values: pd.Series) -> str:
    return " | ".join(dict.fromkeys(str(v) for v in values))


def _display(path: Path, directory: Path | None = None, origin: str | None = None) -> str:
    """Name ``path`` relative to the working directory (else in full) for a message.

    A file of a folder imported from a RevMan file is named after that file and outcome as
    ``review.rm5:1.1/trials.csv``, not by its place in the cache (``origin`` and ``directory``).
    """
    if origin is not None and directory is not None:
        try:
            return f"{origin}/{path.relative_to(directory).as_posix()}"
        except ValueError:
            pass
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _read_csv(
    path: Path, label: str,
) -> tuple[list[dict[str, Any]], list[int], list[str], ColumnMapping | None]:
    """Rows (rebayes's column names), their line numbers, the columns, and any renaming."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{label}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except IsADirectoryError:
        raise DataError(f"{label}: a folder, not a CSV file") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None or not any(h.strip() for h in header):
            raise DataError(f"{label}: empty file (no header line)")
        separator = separator_message(header)
        if separator:
            raise DataError(f"{label}:1: {separator}")
        columns = [h.strip() for h in header]
        problem = forbidden_field({f"column name {i}": c for i, c in enumerate(columns, 1)})
        if problem:
            raise DataError(f"{label}:1: {problem}")
        try:
            mapping = resolve_columns(columns)
        except NeedsCounts as exc:
            raise DataError(f"{label}:1: {exc}") from None
        if mapping is None:
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
            row = {c: v.strip() for c, v in zip(columns, values, strict=True)}
            problem = forbidden_field(row)
            if problem:
                raise DataError(f"{label}:{line}: {problem}")
            rows.append(row if mapping is None else _renamed(row, mapping, f"{label}:{line}"))
            lines.append(line)
    except csv.Error as exc:
        raise DataError(f"{label}:{reader.line_num}: malformed CSV ({exc})") from None
    if not rows:
        raise DataError(f"{label}: no data rows")
    if mapping is not None:
        columns = [*mapping.rename, *mapping.sums,
                   *(c for c in columns if c not in mapping.consumed)]
    return rows, lines, columns, mapping


def _renamed(row: dict[str, str], mapping: ColumnMapping, loc: str) -> dict[str, Any]:
    """Return a row under rebayes's names: counts renamed, totals summed from two cells."""
    out: dict[str, Any] = {ours: row[theirs] for ours, theirs in mapping.rename.items()}
    for ours, (a, b) in mapping.sums.items():
        out[ours] = parse_count(loc, a, row[a]) + parse_count(loc, b, row[b])
    out.update({c: v for c, v in row.items() if c not in mapping.consumed})
    return out


def _check_shares(dataset: Dataset, studies: list[str]) -> None:
    # A misspelt study in ``shares`` would be ignored: every key must be a study of the table.
    for part, declared in (("covariates", dataset.schema.covariates),
                           ("columns", dataset.schema.columns)):
        for cov in declared.values():
            check_keys(cov.shares, studies, dataset.toml_label, f"{part}.{cov.name}.shares.",
                       DataError)


def _check_declared_columns(schema: DatasetSchema, columns: list[str], label: str) -> None:
    declared = [c.column for c in (*schema.covariates.values(), *schema.columns.values())]
    if schema.strata:
        declared.append(schema.strata)
    for column in declared:
        if column not in columns:
            raise DataError(
                f"{label}:1: dataset.toml declares column '{column}', the table has none"
            )


def _output_columns(columns: list[str], schema: DatasetSchema) -> list[str]:
    """Study (and strata) first, counts next, then covariates, provenance last."""
    lead = ["study", *([schema.strata] if schema.strata else [])]
    extra = [c for c in columns if c not in REQUIRED_COLUMNS and c not in lead]
    tail = [c for c in ("confidence", "source") if c in extra]
    middle = [c for c in extra if c not in tail]
    return [*lead, *COUNT_COLUMNS, *middle, *tail]


def _validate_row(loc: str, row: Mapping[str, Any], schema: DatasetSchema) -> dict[str, Any]:
    record: dict[str, Any] = dict(row)
    if not str(record.get("study", "")).strip():
        raise DataError(f"{loc}: study is empty")
    record["study"] = str(record["study"]).strip()
    for name in COUNT_COLUMNS:
        record[name] = parse_count(loc, name, record.get(name))
    for arm in ("treat", "control"):
        events, n = record[f"events_{arm}"], record[f"n_{arm}"]
        if n == 0:
            raise DataError(f"{loc}: n_{arm}=0 must be positive")
        if events > n:
            raise DataError(f"{loc}: events_{arm}={events} exceeds n_{arm}={n}")
    if schema.strata and schema.strata in record:
        record[schema.strata] = str(record[schema.strata] or "").strip()
    for cov in schema.checked_columns():
        if cov.column not in record:
            continue
        value = str(record[cov.column] if record[cov.column] is not None else "").strip()
        if value == "" and cov.column != schema.strata:
            record[cov.column] = None
            continue
        if value not in cov.levels:
            raise DataError(f"{loc}: {cov.column}={value!r} is not one of {', '.join(cov.levels)}")
        record[cov.column] = value
    for cov in (*schema.covariates.values(), *schema.columns.values()):
        if cov.kind != "continuous" or cov.column not in record:
            continue
        raw = record[cov.column]
        text = "" if raw is None else str(raw).strip()
        if text == "":
            record[cov.column] = None
            continue
        try:
            number = float(text)
        except ValueError:
            number = math.nan
        if not math.isfinite(number):
            raise DataError(f"{loc}: {cov.column}={text!r} is not a number")
        record[cov.column] = int(number) if number.is_integer() and "." not in text else number
    return record


def _check_table(
    records: list[dict[str, Any]], locs: list[str], schema: DatasetSchema
) -> list[str]:
    """Check strata and trial-level columns; return notes (repeated study names)."""
    notes: list[str] = []
    strata = schema.strata
    if strata is None:
        counts = Counter(r["study"] for r in records)
        repeated = sorted(study for study, count in counts.items() if count > 1)
        if repeated:
            notes.append(
                "study names that repeat are separate trials (as RevMan treats them), told "
                "apart by year where it differs, else numbered: " + ", ".join(repeated)
            )
        return notes
    seen: dict[tuple[str, str], str] = {}
    trial_values: dict[tuple[str, str], tuple[Any, str]] = {}
    trial_columns = schema.trial_columns()
    for record, loc in zip(records, locs, strict=True):
        key = (record["study"], record.get(strata, ""))
        if key in seen:
            raise DataError(
                f"{loc}: {strata}={key[1]!r} repeats study {key[0]!r} "
                f"(first at {seen[key]}); a trial's rows must differ in {strata}"
            )
        seen[key] = loc
        for col in trial_columns:
            if col not in record:
                continue
            first = trial_values.setdefault((record["study"], col), (record[col], loc))
            if first[0] != record[col]:
                raise DataError(
                    f"{loc}: {col}={record[col]!r} differs from {first[0]!r} "
                    f"at {first[1]} for study {record['study']!r}"
                )
    return notes


def _apply_variant(
    dataset: Dataset,
    name: str,
    spec: Mapping[str, Any],
    records: list[dict[str, Any]],
    locs: list[str],
    columns: list[str],
) -> tuple[list[dict[str, Any]], list[str]]:
    """Return the records with the variant's ``set`` and ``drop`` entries applied."""
    schema = dataset.schema
    strata = schema.strata
    label = dataset.display(dataset.variants_path or dataset.trials_path)
    where = f"{label}: [{name}]"
    records = [dict(r) for r in records]
    locs = list(locs)

    def find(key: tuple[Any, Any], entry_where: str, whole_study: bool = False) -> list[int]:
        hits = [
            j
            for j, r in enumerate(records)
            if r["study"] == key[0] and (key[1] is None or r.get(strata or "") == key[1])
        ]
        if len(hits) > 1 and key[1] is None and not whole_study:
            raise DataError(
                f"{entry_where}: study {key[0]!r} has {len(hits)} rows; name the row's "
                f"{strata or 'stratum column (declare strata in dataset.toml)'}"
            )
        return hits

    def describe(key: tuple[Any, Any]) -> str:
        return f"study={key[0]!r}" + (f" {strata}={key[1]!r}" if key[1] is not None else "")

    for i, drop in enumerate(spec.get("drop", []), start=1):
        key = _row_key(schema, drop)
        # Without strata, a repeated study name is one multi-arm trial's comparisons:
        # dropping the study drops them all (a sensitivity analysis excludes whole studies).
        hits = find(key, f"{where} drop #{i}", whole_study=strata is None)
        if not hits:
            raise DataError(f"{where} drop #{i}: no row {describe(key)}")
        for j in reversed(hits):
            del records[j], locs[j]
    for i, entry in enumerate(spec.get("set", []), start=1):
        entry_where = f"{where} set #{i}"
        check_keys(entry, columns, label, f"{name}.set[{i}].", DataError)
        key = _row_key(schema, entry)
        hits = find(key, entry_where)
        if hits:
            merged = {**records[hits[0]], **entry}
            records[hits[0]] = _validate_row(entry_where, merged, schema)
            locs[hits[0]] = entry_where
            continue
        siblings = [r for r in records if r["study"] == key[0]]
        if not siblings:
            raise DataError(f"{entry_where}: no study {key[0]!r} in the table")
        missing = [c for c in COUNT_COLUMNS if c not in entry]
        if missing:
            raise DataError(f"{entry_where}: new row {describe(key)} needs {missing[0]}")
        # A new stratum row inherits the trial-level columns only; the rest (provenance,
        # row-level covariates) it must give itself.
        inherited = set(schema.trial_columns())
        new = {c: siblings[0].get(c) if c in inherited else None for c in columns}
        new.update(entry)
        # Insert after the study's last row so the table keeps studies together.
        at = max(j for j, r in enumerate(records) if r["study"] == key[0]) + 1
        records.insert(at, _validate_row(entry_where, new, schema))
        locs.insert(at, entry_where)
    return records, locs


