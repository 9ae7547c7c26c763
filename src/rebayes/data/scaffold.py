"""``rebayes init``: a dataset folder from a bare CSV, with a commented ``dataset.toml`` to edit.

The CSV is validated and copied as ``trials.csv`` (rewritten under rebayes's column names
when it uses metafor's or meta's, :mod:`rebayes.data.column_names`); ``dataset.toml`` says
everything rebayes assumed (direction of benefit, effect measure, labels) as settings to
change, and guesses each extra column's kind from its values (:func:`guess_columns`). The
analyses are the defaults (overall, one per declared covariate, normal approximation),
whatever is declared later; ``dataset.toml`` shows, commented out, how to declare more as
``[[analyses]]`` tables. No script is written: a folder needs no code to be analysed.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from rebayes.data.trials import COUNT_COLUMNS, load_table
from rebayes.folders import check_output_folder

__all__ = ["ColumnGuess", "analyses_example", "dataset_toml", "guess_columns", "init_dataset"]

# A text column is a categorical covariate when it has 2 to _MAX_LEVELS labels and at least
# half of them label two or more rows (RevMan's subgroups: the NRT table's 11 products over
# 136 trials); labels that mostly name a single row (authors, countries of one trial each,
# comments) are free text. Beyond _MAX_LEVELS subgroups no analysis is readable.
_MAX_LEVELS = 20


@dataclass(frozen=True)
class ColumnGuess:
    """What :func:`guess_columns` made of one extra column."""

    name: str
    kind: str  # "categorical", "continuous" or "text"
    levels: tuple[str, ...] = ()
    analyse: bool = True
    why: str = ""


def guess_columns(trials: pd.DataFrame) -> list[ColumnGuess]:
    """Guess each extra column's role from its values.

    Parameters
    ----------
    trials : pandas.DataFrame
        The rows of a table from :func:`rebayes.load_table` (bare CSV: every extra column is
        text).

    Returns
    -------
    list of ColumnGuess
        One per column other than ``study`` and the counts, in table order.

    Notes
    -----
    Numbers are a continuous covariate (whole numbers in a column named like a year: kept,
    not analysed). Text is a categorical covariate when it has 2 to 20 labels and at least
    half of them label two or more rows (levels in order of appearance, the first the
    reference), else free text (kept, not analysed).
    """
    out = []
    for name in trials.columns:
        if name == "study" or name in COUNT_COLUMNS:
            continue
        values = trials[name].dropna().astype(str).str.strip()
        values = values[values != ""]
        numbers = pd.to_numeric(values, errors="coerce")
        if len(values) and not numbers.isna().any():
            yearish = "year" in name.lower() and bool((numbers.between(1800, 2100)).all())
            out.append(
                ColumnGuess(
                    name,
                    "continuous",
                    analyse=not yearish,
                    why="years (kept, not analysed)" if yearish else "numbers",
                )
            )
            continue
        counts = values.value_counts(sort=False)
        levels = tuple(dict.fromkeys(values))
        repeated = int((counts > 1).sum())
        if 2 <= len(levels) <= _MAX_LEVELS and 2 * repeated >= len(levels):
            why = f"{len(levels)} labels, {repeated} of them on several rows"
            out.append(ColumnGuess(name, "categorical", levels, why=why))
        else:
            out.append(ColumnGuess(name, "text", analyse=False, why="free text"))
    return out


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dataset_toml(
    name: str, guesses: list[ColumnGuess], higher_is_better: bool | None, renamed: str = ""
) -> str:
    """Return the commented ``dataset.toml`` that :func:`init_dataset` writes."""
    # Without --lower-is-better/--higher-is-better the direction stays undeclared (neutral
    # words) until the user uncomments the line.
    direction = (
        "# higher_is_better = true   # CHECK: uncomment; true if more events is good (cures), "
        "false if fewer is (deaths); left out, the outputs name no side benefit"
        if higher_is_better is None
        else f"higher_is_better = {str(higher_is_better).lower()}"
    )
    lines = [
        "# What trials.csv measures. Written by `rebayes init`: check every line marked CHECK.",
        *([f"# trials.csv: {renamed}."] if renamed else []),
        f"title = {_toml_string(name)}   # CHECK: one line for the report's title",
        'outcome = "event"          # CHECK: the event counted in events_treat / events_control',
        'treatment = "treatment"    # CHECK: the experimental arm',
        'control = "control"        # CHECK: the comparator',
        direction,
        'measure = "RR"             # the published effect measure: RR | OR | RD | PETO_OR',
        'method = "MH"              # the published pooling: MH | IV | PETO',
        'model = "fixed"            # fixed | random (DerSimonian-Laird)',
        "# strata = \"stratum\"     # a column naming the strata (rows) of one trial, if any",
        "",
        "[citation]",
        'text = ""                  # the publication you re-analyse',
        "",
    ]
    for g in guesses:
        if g.kind == "text":
            lines += [f"# Column '{g.name}' looks like {g.why}: kept, not analysed.", ""]
            continue
        table = "covariates" if g.analyse else "columns"
        lines += [f"# '{g.name}': guessed {g.kind} from its values ({g.why}).",
                  f"[{table}.{g.name}]", f'kind = "{g.kind}"',
                  f"label = {_toml_string(g.name.replace('_', ' '))}"]
        if g.kind == "categorical":
            levels = ", ".join(_toml_string(v) for v in g.levels)
            lines += [f"levels = [{levels}]", f"reference = {_toml_string(g.levels[0])}"]
        else:
            lines += ['unit = ""                  # CHECK: the slope is reported per unit']
        if not g.analyse:
            lines.append("analyse = false")
        lines.append("")
    return "\n".join([*lines, *analyses_example(guesses)])


def analyses_example(guesses: list[ColumnGuess]) -> list[str]:
    """Return the commented ``[[analyses]]`` examples ending the ``dataset.toml`` of ``init``."""
    lines = [
        "# The analyses: the defaults (overall; one per covariate declared above, or declared",
        "# later; normal_approximation). Declare more, or replace a default by giving its name,",
        "# as [[analyses]] tables (rebayes.AnalysisSpec's fields; see docs/dataset-toml.md).",
        "# Uncomment to use:",
        "#",
        "# [[analyses]]",
        '# name = "overall"            # replaces the default overall analysis',
        '# title = "Overall effect (two priors)"',
        '# priors = ["weakly_informative", "skeptical"]',
        "# seed = 1",
    ]
    categorical = next((g for g in guesses if g.kind == "categorical" and g.analyse), None)
    if categorical is not None:
        lines += [
            "#",
            "# [[analyses]]",
            f"# name = {_toml_string(categorical.name + '_separate')}",
            "# title = "
            + _toml_string(f"One pooled effect per {categorical.name} (common heterogeneity)"),
            '# effect = "separate"',
            f"# subgroup = [{_toml_string(categorical.name)}]",
        ]
    return [*lines, ""]


def init_dataset(csv: str | Path, directory: str | Path,
                 higher_is_better: bool | None = None) -> list[Path]:
    """Write a dataset folder for ``csv``: trials.csv and a commented dataset.toml.

    Parameters
    ----------
    csv : str or Path
        A trial-table CSV (validated first).
    directory : str or Path
        The folder to create; it must not exist or be empty (nothing is overwritten).
    higher_is_better : bool, optional
        Direction of benefit, if known (otherwise the TOML marks it to check).

    Returns
    -------
    list of Path
        The files written.

    Raises
    ------
    DataError
        Invalid CSV (one line).
    rebayes.folders.OutputDirectoryError
        The target is not a folder, or not empty (one line).
    """
    target = Path(directory)
    check_output_folder(target, "init")  # missing or empty only: init never overwrites
    loaded = load_table(csv)
    trials = loaded.frame
    guesses = guess_columns(trials)
    renamed = loaded.column_names
    # Another package's column names: the table is written under rebayes's own.
    table = trials.to_csv(index=False) if renamed else Path(csv).read_text(encoding="utf-8-sig")
    files = {
        "trials.csv": table,
        "dataset.toml": dataset_toml(Path(csv).stem, guesses, higher_is_better, renamed),
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.init."))
    try:
        for rel, text in files.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        os.chmod(staging, 0o755)
        if target.exists():
            target.rmdir()  # empty, checked above
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return [target / rel for rel in files]
