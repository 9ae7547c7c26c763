"""The rows being analysed, with what they mean: :class:`TrialTable`.

A trial table is loaded once (:func:`rebayes.data.trials.load_table`) and the object is passed
down to every analysis of a report, a batch task or a command: the design, the fits, the
influence refits and the decision tools. Its schema (the direction of benefit, the strata,
the covariates), data hash and variant travel with the rows as fields, not in
``DataFrame.attrs``, which pandas drops on ``merge``, ``concat`` and many other operations:
a table whose schema was lost would have been analysed with the default (undeclared)
direction, without an error.

A notebook may still pass a bare :class:`pandas.DataFrame` where the API takes a table:
:func:`as_table` then takes its schema from the caller (``schema=``), or from the ``attrs``
that :func:`rebayes.load_trials` attaches, and refuses a frame that has neither where the
direction matters.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from rebayes.data.counts import DataError
from rebayes.data.schema import DatasetSchema

__all__ = ["TrialTable", "as_table", "declared_schema", "table_hash"]


def table_hash(frame: pd.DataFrame) -> str:
    """SHA-256 of a trial table's contents."""
    import hashlib

    payload = frame.to_csv(index=False).encode("utf-8")
    return hashlib.sha256(payload).hexdigest()


@dataclass(frozen=True, eq=False)
class TrialTable:
    """One variant of a dataset's trial table: the rows and what they mean.

    Attributes
    ----------
    frame : pandas.DataFrame
        One row per study (or study x stratum), counts as int64. Treat it as read-only:
        :meth:`with_rows` makes a table of other rows.
    schema : DatasetSchema
        The dataset's ``dataset.toml`` (defaults for a bare CSV), with any command-line
        direction applied (:meth:`with_direction`).
    dataset : str
        The dataset's name (folder name, or the CSV's stem).
    variant : str
        The data variant applied (``"published"``, or composed ones as ``"a+b"``).
    data_hash : str
        SHA-256 of the rows (:func:`table_hash`); keys the caches.
    path : str
        The CSV the rows were read from (empty for a table made in memory).
    notes : tuple of str
        One-line remarks from loading (e.g. a repeated study name).
    column_names : str
        How another package's column names were read (metafor's ``ai``...); empty for
        rebayes's own.
    source : str
        What :func:`rebayes.load_dataset` takes to load the dataset again, as the user named
        it (:attr:`rebayes.data.trials.Dataset.reference`); empty for a table made in memory.

    Examples
    --------
    >>> import rebayes as rb
    >>> table = rb.load_table("tests/data/bcg")                       # doctest: +SKIP
    >>> table.schema.higher_is_better, table.variant, len(table.frame)  # doctest: +SKIP
    (False, 'published', 13)
    """

    frame: pd.DataFrame
    schema: DatasetSchema
    dataset: str = ""
    variant: str = "published"
    data_hash: str = ""
    path: str = ""
    notes: tuple[str, ...] = ()
    column_names: str = ""
    source: str = ""

    @classmethod
    def of(cls, frame: pd.DataFrame, schema: DatasetSchema, dataset: str = "",
           variant: str = "published") -> TrialTable:
        """Return a table of rows made in memory, with the schema given (hash computed).

        Parameters
        ----------
        frame : pandas.DataFrame
            Rows in the trial-table format (``study`` and the four count columns).
        schema : DatasetSchema
            What they mean: :meth:`DatasetSchema.defaults` for a bare table (undeclared
            direction: neutral words).
        dataset, variant : str
            Names for messages and records.
        """
        return cls(frame, schema, dataset, variant, table_hash(frame))

    def with_rows(self, frame: pd.DataFrame) -> TrialTable:
        """Return the same dataset's table with other rows (a leave-one-out, a cumulative step).

        The schema, dataset and variant are kept; the data hash is that of the new rows.
        """
        return replace(self, frame=frame, data_hash=table_hash(frame))

    def with_direction(self, higher_is_better: bool | None) -> TrialTable:
        """Return the table with a command-line direction applied to its schema.

        None, or the direction already declared: the table itself.
        """
        schema = self.schema.with_direction(higher_is_better)
        return self if schema is self.schema else replace(self, schema=schema)

    def to_frame(self) -> pd.DataFrame:
        """Return a copy of the rows with the metadata in ``attrs`` (:func:`rebayes.load_trials`).

        For notebooks and functions that take a DataFrame: ``attrs`` holds ``dataset``,
        ``path``, ``variant``, ``schema``, ``notes``, ``data_hash`` and ``column_names``.
        pandas drops ``attrs`` on ``merge``, ``concat`` and other operations; the analysis
        functions then ask for the schema instead of guessing it (:func:`as_table`).
        """
        frame = self.frame.copy()
        frame.attrs.update(
            dataset=self.dataset, path=self.path, variant=self.variant, schema=self.schema,
            notes=self.notes, data_hash=self.data_hash, column_names=self.column_names,
        )
        return frame

    def __repr__(self) -> str:
        return (f"TrialTable({self.dataset or 'table'}, variant={self.variant}, "
                f"{len(self.frame)} rows, hash {self.data_hash[:12]})")


def declared_schema(trials: TrialTable | pd.DataFrame, where: str = "the table") -> DatasetSchema:
    """Return a table's schema: a TrialTable's own, or the one in a DataFrame's ``attrs``.

    For a function whose result depends on the direction of benefit and that was given no
    direction: a DataFrame without a schema is an error, not the undeclared direction.

    Raises
    ------
    DataError
        A DataFrame without a schema in its ``attrs`` (see :func:`as_table`).
    """
    if isinstance(trials, TrialTable):
        return trials.schema
    schema = getattr(trials, "attrs", {}).get("schema")
    if not isinstance(schema, DatasetSchema):
        raise DataError(_no_schema(where))
    return schema


def _no_schema(where: str) -> str:
    return (
        f"{where}: a DataFrame without its schema (pandas drops DataFrame.attrs on merge, "
        "concat and other operations), so its direction of benefit is unknown: pass the "
        "TrialTable from rebayes.load_table, the direction, or schema= "
        "(DatasetSchema.defaults() for a bare table)"
    )


def as_table(trials: TrialTable | pd.DataFrame, schema: DatasetSchema | None = None,
             where: str = "the table") -> TrialTable:
    """Return ``trials`` as a :class:`TrialTable`, its schema explicit.

    Parameters
    ----------
    trials : TrialTable or pandas.DataFrame
        A table from :func:`rebayes.load_table`, or a DataFrame in the trial-table format.
    schema : DatasetSchema, optional
        What a DataFrame's rows mean (ignored for a TrialTable, which carries its own).
        Without it, the schema :func:`rebayes.load_trials` put in the frame's ``attrs``.
    where : str
        What asks, for the message.

    Raises
    ------
    DataError
        A DataFrame with neither ``schema=`` nor a schema in its ``attrs`` (lost to a pandas
        operation, or never there): its direction of benefit would be a guess.
    """
    if isinstance(trials, TrialTable):
        return trials
    attrs: dict[str, Any] = dict(getattr(trials, "attrs", {}))
    schema = schema or declared_schema(trials, where)
    # The hash of the rows as they are now (attrs survive a filter that changed them).
    return TrialTable(
        trials, schema, str(attrs.get("dataset", "")), str(attrs.get("variant", "published")),
        table_hash(trials), str(attrs.get("path", "")), tuple(attrs.get("notes", ())),
        str(attrs.get("column_names", "")),
    )
