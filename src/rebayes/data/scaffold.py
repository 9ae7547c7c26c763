"""``rebayes init``: a dataset folder from a bare CSV, with a commented ``dataset.toml`` to edit.

The CSV is validated and copied as ``trials.csv``; ``dataset.toml`` says everything rebayes
assumed (direction of benefit, effect measure, labels) as settings to change, and guesses each
extra column's kind from its values: whole numbers in a column named like a year are a
continuous column that is not analysed, other numbers a continuous covariate, text with a few
repeated values a categorical covariate (levels in order of appearance, the first as
reference), other text a column that is kept but not analysed. ``models/`` gets one script per
default analysis, to edit or delete.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from rebayes.data.trials import COUNT_COLUMNS, DataError, load_trials

__all__ = ["ColumnGuess", "guess_columns", "init_dataset"]

_MAX_LEVELS = 8


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
        A table from :func:`rebayes.load_trials` (bare CSV: every extra column is text).

    Returns
    -------
    list of ColumnGuess
        One per column other than ``study`` and the counts, in table order.
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
        levels = tuple(dict.fromkeys(values))
        if 2 <= len(levels) <= _MAX_LEVELS and len(levels) < len(values):
            out.append(ColumnGuess(name, "categorical", levels, why="a few repeated labels"))
        else:
            out.append(ColumnGuess(name, "text", analyse=False, why="free text"))
    return out


def _toml_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dataset_toml(name: str, guesses: list[ColumnGuess], higher_is_better: bool | None) -> str:
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
    return "\n".join(lines)


_SCRIPT = '''"""{doc}"""

import rebayes as rb

SPEC = rb.AnalysisSpec(
{fields}
)

if __name__ == "__main__":
    rb.run_script(SPEC)
'''


def _script(doc: str, **fields: object) -> str:
    body = "\n".join(f"    {k}={v!r}," for k, v in fields.items())
    return _SCRIPT.format(doc=doc, fields=body)


def model_scripts(guesses: list[ColumnGuess]) -> dict[str, str]:
    """Return the scripts of the default analyses (file name -> text) for the guessed columns."""
    scripts = {
        "overall.py": _script(
            "Overall effect: binomial model with trial random effects.",
            name="overall", title="Overall effect",
        ),
        "normal_approximation.py": _script(
            "Normal approximation on each trial's log RR (bayesmeta's model): a sensitivity "
            "analysis.",
            name="normal_approximation", title="Normal approximation", likelihood="normal",
        ),
    }
    for g in guesses:
        if not g.analyse or g.kind == "text":
            continue
        fields: dict[str, object] = {
            "name": g.name, "title": f"Meta-regression on {g.name}",
            "covariates": (g.name,), "effect": "contrast",
        }
        if g.kind == "categorical":
            fields["subgroup"] = g.name
        scripts[f"{g.name}.py"] = _script(f"Does the effect depend on {g.name}?", **fields)
    return scripts


def init_dataset(csv: str | Path, directory: str | Path,
                 higher_is_better: bool | None = None) -> list[Path]:
    """Write a dataset folder for ``csv``: trials.csv, a commented dataset.toml, models/.

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
        Invalid CSV, or a non-empty target folder (one line).
    """
    target = Path(directory)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise DataError(f"{target}: exists and is not an empty folder (init never overwrites)")
    trials = load_trials(csv)
    guesses = guess_columns(trials)
    files = {
        "trials.csv": Path(csv).read_text(encoding="utf-8-sig"),
        "dataset.toml": dataset_toml(Path(csv).stem, guesses, higher_is_better),
        **{f"models/{k}": v for k, v in model_scripts(guesses).items()},
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
