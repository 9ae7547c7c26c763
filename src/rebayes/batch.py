"""Many meta-analyses at once: the overall analysis of every input, one summary table.

Meta-research re-analyses hundreds to tens of thousands of meta-analyses. :func:`run_batch`
takes dataset folders, CSVs and RevMan 5 files (one task per dichotomous outcome,
``review.rm5:1.1``), fits each one's overall analysis under the requested priors, and writes

- ``DIR/results/<safe id>.json``: one record per meta-analysis (every FitSummary, the RevMan
  result, a hash of what produced it), written atomically as each task finishes;
- ``DIR/summary.csv`` and ``DIR/summary.parquet``: one row per (meta-analysis, prior)
  (:data:`SUMMARY_COLUMNS`), rebuilt from the JSONs at the end.

A failure of one input (a bad CSV, a single trial, only double-zero trials) is a ``failed``
row with its one-line message, never a stop. A rerun skips every task whose JSON holds the
same key (:func:`task_key`: the analysed rows and the dataset's declarations, the priors, the
seed, the sampler settings and the code that computes a record), so an interrupted run loses
at most the tasks in flight.

Each task's seed is derived from the batch seed and the task's rows (:func:`task_seed`), so
the numbers do not depend on the number of workers, their order, or the file's name. Tasks
run in a long-lived pool of local worker processes or on a Dask cluster; either way a worker
compiles each model structure once (:func:`rebayes.bayes.compilation.compiled_model`) and reuses it
for every later task.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from rebayes.atomic import atomic_path, write_text_atomic
from rebayes.bayes.fit_record import fit_record
from rebayes.bayes.mcse import line_note
from rebayes.bayes.settings import ENGINES
from rebayes.errors import RebayesError
from rebayes.folders import check_output_folder
from rebayes.store.keys import content_key, dumps, key_form, plain, stable_hash
from rebayes.tools.bias_batch import BATCH_COLUMNS, batch_columns, bias_record

__all__ = [
    "BATCH_FORMAT",
    "BATCH_MARKER",
    "SUMMARY_COLUMNS",
    "BatchError",
    "BatchResult",
    "BatchTask",
    "expand_inputs",
    "prepare_tasks",
    "run_batch",
    "run_task",
    "safe_name",
    "summary_table",
    "task_key",
    "task_seed",
]

#: Format tag of the per-task JSON and of the output directory's marker file.
BATCH_FORMAT = "rebayes-batch/1"
#: File marking a directory as a batch output (a rerun may write into it).
BATCH_MARKER = ".rebayes-batch.json"

#: Columns of ``summary.csv`` / ``summary.parquet``, one row per (meta-analysis, prior).
SUMMARY_COLUMNS: tuple[str, ...] = (
    "id",
    "prior",
    "status",
    "message",
    "k",
    "events_treat",
    "n_treat",
    "events_control",
    "n_control",
    "pooled_rr",
    "pooled_rr_low",
    "pooled_rr_high",
    "pooled_or",
    "pooled_or_low",
    "pooled_or_high",
    "p_benefit",
    "p_rr_lt_1",
    "p_rr_lt_1_mcse",  # also P(benefit)'s: 1 - P(RR < 1) or P(RR < 1) itself
    "at_the_line",  # the probabilities within 2 MCSE of their line (rebayes.bayes.mcse)
    "direction",
    "tau",
    "tau_low",
    "tau_high",
    "rhat_max",
    "ess_bulk_min",
    "ess_tail_min",
    "divergences",
    "gates_ok",
    "engine",  # what answered: nuts (draws, MCSE) or exact (quadrature)
    "revman_measure",
    "revman_method",
    "revman_model",
    "revman_estimate",
    "revman_ci_low",
    "revman_ci_high",
    "seed",
    "seconds",
    *BATCH_COLUMNS,  # "Is the evidence distorted?" (rebayes.tools.bias_batch)
)


class BatchError(RebayesError):
    """A batch cannot start: unknown input, output directory not ours (one line)."""


@dataclass(frozen=True)
class BatchTask:
    """One meta-analysis of a batch.

    Attributes
    ----------
    id : str
        The input as named: a folder or CSV path, or ``review.rm5:NUMBER`` (.zip, .csv too).
    source : str
        What :func:`rebayes.load_trials` reads (an absolute path, ``:NUMBER`` for RevMan).
    key : str
        :func:`task_key`; empty until computed.
    seed : int
        :func:`task_seed`; 0 for an input that does not load.
    error : str
        One-line message when the input itself cannot be read (the task fails without fitting).
    spec : AnalysisSpec, optional
        The input's overall analysis, resolved where the batch was started (where its model
        scripts' trust is decided, :mod:`rebayes.data.trust`); None until prepared.
    engine : {"nuts", "exact", "auto"}
        What answers (:mod:`rebayes.bayes.exact_fit`); part of the key.
    bias : bool
        Whether the record holds the bias analysis (``--no-bias``: not); part of the key.
    table : TrialTable, optional
        The rows, loaded once where the task was prepared (its key hashes them) and analysed
        by the task; None until prepared.
    """

    id: str
    source: str
    key: str = ""
    seed: int = 0
    error: str = ""
    spec: Any = None
    engine: str = "nuts"
    bias: bool = True
    table: Any = None

    @property
    def file_name(self) -> str:
        """Name of the task's JSON in ``DIR/results/``."""
        return safe_name(self.id) + ".json"


@dataclass(frozen=True)
class BatchResult:
    """What a batch run did.

    Attributes
    ----------
    output : Path
    tasks : tuple of BatchTask
    fitted, skipped, failed : int
        Tasks run now, tasks whose JSON was up to date, tasks whose record is ``failed``.
    seconds : float
        Wall time of the run.
    summary : pandas.DataFrame
        The table written to ``summary.csv``.
    """

    output: Path
    tasks: tuple[BatchTask, ...]
    fitted: int
    skipped: int
    failed: int
    seconds: float
    summary: pd.DataFrame

    def __repr__(self) -> str:
        return (
            f"BatchResult({len(self.tasks)} meta-analyses in {self.output}: {self.fitted} run, "
            f"{self.skipped} up to date, {self.failed} failed, {self.seconds:.1f} s)"
        )


def safe_name(task_id: str) -> str:
    """File-system-safe, collision-free name for a task id (its readable tail plus a hash)."""
    tail = re.sub(r"[^A-Za-z0-9._-]+", "_", task_id.replace(".rm5:", "_")).strip("._")[-60:]
    digest = hashlib.sha256(task_id.encode("utf-8")).hexdigest()[:10]
    return f"{tail or 'input'}-{digest}"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    message = text[0] if text else ""
    if isinstance(exc, RebayesError):
        return message or type(exc).__name__
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


# --- inputs --------------------------------------------------------------------------------


def expand_inputs(inputs: Iterable[str | Path]) -> list[BatchTask]:
    """One task per input; a review file gives one task per dichotomous analysis.

    A review file is a RevMan 5 file, a Cochrane data package (``.zip``) or RevMan 5's
    analyses export (``.csv``); ``file:1.2`` names one of its analyses. A folder that is not
    a dataset folder stands for its CSVs, review files and dataset folders (one level).

    Raises
    ------
    BatchError
        An input that does not exist (nothing has been run yet).
    """
    from rebayes.data.reviews import read_review, review_spec

    tasks: dict[str, BatchTask] = {}
    for raw in _expand_folders(inputs):
        text = os.path.normpath(str(raw))
        review = review_spec(text)
        path = review[0] if review else Path(text)
        if not path.exists():
            raise BatchError(f"{raw}: no such file or folder")
        if not (path.is_dir() or path.is_file()):
            raise BatchError(f"{raw}: not a file or folder")
        if review is None:
            tasks.setdefault(text, BatchTask(text, str(path.resolve())))
        elif review[1]:
            tasks.setdefault(text, BatchTask(text, f"{path.resolve()}:{review[1]}"))
        else:
            try:
                numbers = [o.number for o in read_review(path).outcomes]
            except RebayesError as exc:
                tasks.setdefault(text, BatchTask(text, str(path.resolve()), error=_one_line(exc)))
                continue
            if not numbers:
                tasks.setdefault(
                    text,
                    BatchTask(text, str(path.resolve()), error=f"{raw}: no dichotomous outcome"),
                )
            for n in numbers:
                tasks.setdefault(f"{text}:{n}", BatchTask(f"{text}:{n}", f"{path.resolve()}:{n}"))
    return list(tasks.values())


def _is_dataset_folder(path: Path) -> bool:
    return (path / "trials.csv").is_file() or (path / "dataset.toml").is_file()


def _expand_folders(inputs: Iterable[str | Path]) -> list[str]:
    """Replace a folder that is not a dataset folder by its CSVs, review files and datasets.

    ``rebayes import review.rm5 DIR`` writes one dataset folder per outcome into ``DIR``:
    ``rebayes batch DIR`` then runs them all (one level, sorted by name).
    """
    out: list[str] = []
    for raw in inputs:
        path = Path(str(raw))
        if not path.is_dir() or _is_dataset_folder(path):
            out.append(str(raw))
            continue
        children = sorted(
            p
            for p in path.iterdir()
            if not p.name.startswith(".")
            and (
                (p.is_file() and p.suffix.lower() in (".csv", ".rm5", ".zip"))
                or (p.is_dir() and _is_dataset_folder(p))
            )
        )
        if not children:
            raise BatchError(
                f"{raw}: a folder with no dataset, CSV, .rm5 or .zip file (a dataset folder holds "
                "trials.csv and dataset.toml)"
            )
        out.extend(str(p) for p in children)
    return out


def _rows_hash(table: Any) -> str:
    """Hash of the rows a task analyses and the dataset's declarations (not its name)."""
    payload = {"rows": table.data_hash, "schema": key_form(table.schema)}
    return stable_hash(payload, length=64)


def task_seed(seed: int, rows_hash: str) -> int:
    """Return the task's sampler seed: a stable hash of the batch seed and its rows."""
    digest = hashlib.sha256(f"{seed}:{rows_hash}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def task_key(
    rows_hash: str, priors: Sequence[Any], seed: int, settings: Any, spec: Any = None,
    engine: str = "nuts", bias: bool = True,
) -> str:
    """Hash of everything that changes a task's record: rows, priors, seed, settings, code.

    ``spec`` is the overall analysis fitted (a declaration or a trusted script may change
    it); its ``data`` path is left out, as the rows are keyed already. ``engine`` is what
    answers (a NUTS record is not an exact one); ``bias`` whether the record holds the bias
    analysis. The one key rule (:func:`rebayes.store.keys.content_key`, kind ``"batch"``)
    adds the libraries' versions and the source of the modules that compute a record.
    """
    payload = {
        "format": BATCH_FORMAT,
        "rows": rows_hash,
        "priors": [p.to_dict() for p in priors],
        "seed": seed,
        "settings": asdict(settings),
    }
    if spec is not None:
        payload["analysis"] = {k: v for k, v in spec.to_dict().items() if k != "data"}
    if engine != "nuts":  # NUTS records keep the keys they had
        payload["engine"] = engine
    if not bias:
        payload["bias"] = False
    return content_key("batch", payload)


def prepare_tasks(
    tasks: list[BatchTask],
    priors: Sequence[Any],
    seed: int,
    settings: Any,
    allow_scripts: bool = False,
    engine: str = "nuts",
    bias: bool = True,
) -> list[BatchTask]:
    """Give every task its key, seed and spec; an input that does not load keeps its message."""
    from rebayes.bayes.analyses import resolve_spec
    from rebayes.data.trials import load_table

    out = []
    for task in tasks:
        spec = table = None
        if task.error:
            rows = "error:" + task.error
        else:
            try:
                table = load_table(task.source)
                rows = _rows_hash(table)
                spec = resolve_spec(None, task.source, allow_scripts=allow_scripts)
            except Exception as exc:  # noqa: BLE001 - an unreadable input is a failed row
                task = BatchTask(task.id, task.source, error=_one_line(exc))
                rows = "error:" + task.error
        s = task_seed(seed, rows) if not task.error else 0
        key = task_key(rows, priors, seed, settings, spec, engine, bias)
        out.append(BatchTask(task.id, task.source, key, s, task.error, spec, engine, bias,
                             table if not task.error else None))
    return out


# --- one task -------------------------------------------------------------------------------


def _revman(trials: pd.DataFrame) -> dict[str, Any]:
    """RevMan's pooled estimate with the dataset's declared method, else MH RR."""
    from rebayes.errors import AnalysisError
    from rebayes.frequentist.pooling import analyze

    try:
        return analyze(trials).overall.to_dict()
    except AnalysisError:
        return analyze(trials, method="MH", measure="RR", model="fixed").overall.to_dict()


def run_task(
    task: BatchTask, priors: Sequence[Any], settings: Any, batch_seed: int
) -> dict[str, Any]:
    """Analyse one meta-analysis and return its JSON record (never raises for bad data).

    Runs in a worker process: the compiled model stays in the process for the next task.
    """
    start = time.perf_counter()
    record = _failed_record(task, priors, settings, batch_seed)
    if task.error:
        return record
    try:
        record.update(_analyse(task, priors, settings))
        record["status"], record["message"] = "ok", ""
    except RebayesError as exc:
        record["message"] = _one_line(exc)
    except Exception as exc:  # noqa: BLE001 - one input's crash must not stop the batch
        # Not a data problem (memory, a bug): record it, and let the next run try again.
        record["message"], record["retry"] = _one_line(exc), True
    record["seconds"] = round(time.perf_counter() - start, 3)
    return plain(record)


def _failed_record(
    task: BatchTask, priors: Sequence[Any], settings: Any, batch_seed: int, retry: bool = False
) -> dict[str, Any]:
    """Return the record of a task that failed with ``task.error`` (before its analysis)."""
    return {
        "format": BATCH_FORMAT,
        "id": task.id,
        "source": task.source,
        "key": task.key,
        "batch_seed": batch_seed,
        "seed": task.seed,
        "priors": [p.name for p in priors],
        "settings": asdict(settings),
        "status": "failed",
        "message": task.error,
        "retry": retry,
        "totals": None,
        "revman": None,
        "fits": {},
        "engine": task.engine,
        "seconds": 0.0,
    }


def _analyse(task: BatchTask, priors: Sequence[Any], settings: Any) -> dict[str, Any]:
    from rebayes.bayes.analyses import resolve_spec
    from rebayes.data.trials import load_table, trial_totals

    table = task.table if task.table is not None else load_table(task.source)
    trials = table.to_frame()  # RevMan's pooling and the bias analysis take a DataFrame
    totals_table = trial_totals(table)
    totals = {"k": len(totals_table)}
    for column in ("events_treat", "n_treat", "events_control", "n_control"):
        totals[column] = int(totals_table[column].sum())
    out: dict[str, Any] = {"totals": totals, "fits": {}}
    # A table RevMan cannot pool (only double-zero trials) has no effect to estimate.
    out["revman"] = _revman(trials)
    out["bias"] = bias_record(trials) if task.bias else None
    spec = task.spec if task.spec is not None else resolve_spec(None, task.source)
    # A trusted script may fit other rows (its own data or variant): those it loads itself.
    if (spec.data not in (None, task.source, table.source)
            or spec.variant not in (None, table.variant)):
        table = None
    exact = _exact_fits(task, spec, priors, table)
    if exact is not None:
        out["fits"], out["engine"] = exact, "exact"
        return out
    from rebayes.bayes.coefficients import coefficients, pooled_or_probabilities
    from rebayes.bayes.fit import fit_priors

    out["engine"] = "nuts"
    fits = fit_priors(spec, list(priors), seed=task.seed, settings=settings, cache=False,
                      trials=table)
    for f in fits:
        out["fits"][f.prior.name] = fit_record(f.summary(), coefficients(f.tree),
                                               pooled_or_probabilities(f.tree),
                                               f.diagnostics().gates)
    return out


def _exact_fits(
    task: BatchTask, spec: Any, priors: Sequence[Any], table: Any
) -> dict[str, Any] | None:
    """Return the exact engine's records per prior, or None where NUTS answers (``auto``).

    Without the trials' shrunken effects (the summary table has no column for them, and
    they would cost more than the rest): ``"trials": {}``. No draws, so no gates to fail.
    """
    if task.engine == "nuts":
        return None
    from rebayes.bayes.design import build_design, prior_on_model_scale
    from rebayes.bayes.exact import exact_posterior
    from rebayes.bayes.exact_fit import (
        exact_answers,
        exact_coefficients,
        exact_or_probabilities,
        exact_summary,
    )

    design = build_design(spec, table)
    if not exact_answers(design, priors, task.engine):
        return None
    out = {}
    for prior in priors:
        post = exact_posterior(design, prior_on_model_scale(prior, design))
        out[prior.name] = fit_record(
            exact_summary(design, prior, trials=False, posterior=post),
            exact_coefficients(post, design), exact_or_probabilities(post), gates={})
    return out


# --- output ---------------------------------------------------------------------------------


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("format") == BATCH_FORMAT else None


def _up_to_date(path: Path, task: BatchTask) -> bool:
    record = _read_record(path)
    return record is not None and record.get("key") == task.key and not record.get("retry")


def _write_record(path: Path, record: dict[str, Any]) -> None:
    write_text_atomic(path, dumps(record, indent=1) + "\n")


def _rows_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Summary rows of one task's record: one per prior."""
    base: dict[str, Any] = {
        "id": record["id"],
        "seed": record.get("seed"),
        "seconds": record.get("seconds"),
    }
    base.update(record.get("totals") or {})
    revman = record.get("revman") or {}
    for key in ("measure", "method", "model"):
        base[f"revman_{key}"] = revman.get(key)
    base["revman_estimate"] = revman.get("estimate")
    base["revman_ci_low"] = revman.get("ci_low")
    base["revman_ci_high"] = revman.get("ci_high")
    base.update(batch_columns(record.get("bias")))
    rows = []
    fits = record.get("fits") or {}
    for prior in record.get("priors") or [""]:
        row = {
            **base,
            "prior": prior,
            "status": record["status"],
            "message": record.get("message") or "",
        }
        s = fits.get(prior)
        if s is not None:
            pooled_or = s.get("pooled_or") or {}
            direction = s.get("direction") or {}
            diag = s.get("diagnostics") or {}
            row.update(
                pooled_rr=s["pooled_rr"]["median"],
                pooled_rr_low=s["pooled_rr"]["ci_low"],
                pooled_rr_high=s["pooled_rr"]["ci_high"],
                pooled_or=pooled_or.get("median"),
                pooled_or_low=pooled_or.get("ci_low"),
                pooled_or_high=pooled_or.get("ci_high"),
                p_benefit=s.get("p_benefit"),  # None when no direction is declared
                p_rr_lt_1=s.get("p_rr_lt_1"),
                p_rr_lt_1_mcse=(s.get("mcse") or {}).get(
                    "p_benefit" if direction.get("declared") else "p_rr_lt_1"),
                at_the_line=", ".join(a["name"] for a in s.get("at_the_line") or ()),
                direction=_direction_name(direction),
                tau=s["tau"]["median"],
                tau_low=s["tau"]["ci_low"],
                tau_high=s["tau"]["ci_high"],
                rhat_max=diag.get("rhat_max"),
                ess_bulk_min=diag.get("ess_bulk_min"),
                ess_tail_min=diag.get("ess_tail_min"),
                divergences=diag.get("divergences"),
                gates_ok=s.get("gates_ok"),
                engine=s.get("engine", "nuts"),
            )
        rows.append(row)
    return rows


def summary_table(records: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """One row per (meta-analysis, prior), columns :data:`SUMMARY_COLUMNS`."""
    rows = [row for record in records for row in _rows_of(record)]
    frame = pd.DataFrame.from_records(rows, columns=list(SUMMARY_COLUMNS))
    for column in (
        "k",
        "events_treat",
        "n_treat",
        "events_control",
        "n_control",
        "divergences",
        "seed",
    ):
        frame[column] = frame[column].astype("Int64")
    frame["gates_ok"] = frame["gates_ok"].astype("boolean")
    for column in (
        "id",
        "prior",
        "status",
        "message",
        "direction",
        "revman_measure",
        "revman_method",
        "revman_model",
    ):
        frame[column] = frame[column].astype("string")
    return frame


def _write_summary(output: Path, tasks: Sequence[BatchTask]) -> pd.DataFrame:
    records = []
    for task in tasks:
        record = _read_record(output / "results" / task.file_name)
        if record is not None:
            records.append(record)
    frame = summary_table(records)
    write_text_atomic(output / "summary.csv", frame.to_csv(index=False))
    with atomic_path(output / "summary.parquet") as tmp:
        frame.to_parquet(tmp, index=False)
    return frame


# --- execution ------------------------------------------------------------------------------


def _direction_name(direction: dict[str, Any]) -> str:
    """``higher_is_better``, ``lower_is_better`` or ``undeclared`` (a fit's direction record)."""
    if not direction.get("declared", direction.get("higher_is_better") is not None):
        return "undeclared"
    return "higher_is_better" if direction.get("higher_is_better") else "lower_is_better"


def _line_words(summary: dict[str, Any]) -> str:
    """``" (at the line: ...)"`` when P(benefit) (or P(RR < 1)), or its complement, is."""
    near = {a["name"] for a in summary.get("at_the_line") or ()}
    if near & {"p_benefit", "p_rr_lt_1"}:
        return f" ({line_note(0.95)})"
    if near & {"p_harm", "p_rr_gt_1"}:
        return f" ({'P(harm)' if 'p_harm' in near else 'P(RR > 1)'} {line_note(0.95)})"
    return ""


def _progress_line(done: int, total: int, record: dict[str, Any]) -> str:
    head = f"[{done}/{total}] {record['id']}"
    if record["status"] != "ok":
        return f"{head}: failed: {record['message']}"
    parts = []
    for prior, s in record["fits"].items():
        rr = s["pooled_rr"]
        gates = "" if s.get("gates_ok") else ", CHECK diagnostics"
        line = _line_words(s)
        p = (f"P(benefit) {s['p_benefit']:.3f}{line}" if s.get("p_benefit") is not None
             else f"P(RR < 1) {s['p_rr_lt_1']:.3f}{line} (no direction declared)")
        parts.append(
            f"{prior} RR {rr['median']:.2f} ({rr['ci_low']:.2f} to {rr['ci_high']:.2f}), "
            f"{p}{gates}"
        )
    return f"{head}: {'; '.join(parts)} ({record['seconds']:.1f} s)"


def _run_local(
    todo: list[BatchTask],
    priors: Sequence[Any],
    settings: Any,
    seed: int,
    workers: int,
    on_record: Callable[[dict[str, Any]], None],
) -> None:
    """Run the tasks on local worker processes (:func:`rebayes.workers.run_isolated`).

    A worker keeps its compiled models for every task it receives. One that dies (a crash
    in a native library, the out-of-memory killer) fails no other task: its own is run once
    more, alone, and if its worker dies again the task is a failed row saying so.
    """
    import multiprocessing

    from rebayes.workers import WorkerDeath, run_isolated

    def on_death(index: int, death: WorkerDeath) -> None:
        task = todo[index]
        message = f"worker process died ({death}) while analysing {task.id}"
        # retry: a crash may be the machine's (memory), so the next run tries again.
        on_record(_failed_record(BatchTask(task.id, task.source, task.key, task.seed, message,
                                           engine=task.engine),
                                 priors, settings, seed, retry=True))

    counter = multiprocessing.get_context("spawn").Value("i", 0)
    run_isolated(
        run_task,
        [(task, priors, settings, seed) for task in todo],
        workers,
        lambda _index, record: on_record(record),
        on_death,
        initializer=_pin_worker,
        initargs=(counter, workers),
    )


def _pin_worker(counter: Any, workers: int) -> None:
    """Give each local worker its own share of the CPUs.

    nutpie runs a fit's chains on as many threads as the machine has CPUs (it reads
    ``os.cpu_count()``, not the affinity), so N workers would each start that many threads:
    pinned, the workers share the machine instead of contending for every core. A chain's
    draws do not depend on its thread, so the numbers stay the same.
    """
    if workers < 2 or not hasattr(os, "sched_setaffinity"):
        return
    with counter.get_lock():
        index = counter.value
        counter.value += 1
    cpus = sorted(os.sched_getaffinity(0))
    share = max(len(cpus) // workers, 1)
    start = (index * share) % len(cpus)
    try:
        os.sched_setaffinity(0, cpus[start : start + share])
    except OSError:
        pass  # not allowed here: the workers share every CPU


def _collect(
    future: Any, task: BatchTask, priors: Sequence[Any], settings: Any, seed: int
) -> dict[str, Any]:
    """Return a finished future's record (a dead worker: a failed, retryable record)."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - a dead worker fails its task, not the batch
        message = f"worker failed: {_one_line(exc)}"
        return _failed_record(BatchTask(task.id, task.source, task.key, task.seed, message,
                                           engine=task.engine),
                              priors, settings, seed, retry=True)


# Seconds to wait for a scheduler to answer (a refused connection fails at once).
_CONNECT_SECONDS = 5.0


def _connect(scheduler: str) -> Any:
    """Return a Dask client of the scheduler at ``scheduler``, or a one-line BatchError.

    The address is checked, and the scheduler asked to answer (:func:`_probe_scheduler`),
    before a client is made: a client that fails to connect stays half-made, and when it
    is collected it waits 40 s to close and prints a traceback (``Client.__del__``).
    """
    try:
        from dask.distributed import Client
    except ImportError:
        raise BatchError(
            "--scheduler needs dask.distributed: pip install 'dask[distributed]'"
        ) from None
    _probe_scheduler(scheduler)
    try:
        # Not the default client: a half-made one would leave dask (and xarray's NetCDF
        # locks) pointing at an unreachable scheduler after a failed connection.
        return Client(scheduler, timeout=f"{4 * _CONNECT_SECONDS}s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise BatchError(f"--scheduler {scheduler}: cannot connect ({_one_line(exc)})") from None


def _probe_scheduler(scheduler: str) -> None:
    """Raise a one-line BatchError unless a Dask scheduler answers at ``scheduler``.

    Within seconds: a malformed address or an unknown scheme at once, a closed port at once
    (a plain TCP connection; Dask's own retries it until its timeout), a host that does not
    answer, or something that is not a Dask scheduler, after :data:`_CONNECT_SECONDS`.
    """
    import asyncio
    import socket

    from distributed.comm import connect
    from distributed.comm.addressing import parse_address, parse_host_port
    from distributed.comm.registry import get_backend

    def refuse(why: str) -> BatchError:
        return BatchError(f"--scheduler {scheduler}: {why}")

    scheme, location = parse_address(scheduler)
    try:
        get_backend(scheme)
    except ValueError:
        raise refuse(f"unknown address scheme '{scheme}' (give tcp://HOST:PORT)") from None
    if scheme in ("tcp", "tls", "ws", "wss"):
        try:
            host, port = parse_host_port(location, default_port=8786)
        except ValueError:
            raise refuse(f"not a HOST:PORT address (give {scheme}://HOST:PORT)") from None
        if not host:
            raise refuse(f"no host (give {scheme}://HOST:PORT)")
        try:
            socket.create_connection((host, port), timeout=_CONNECT_SECONDS).close()
        except ConnectionRefusedError:
            raise refuse("cannot connect (connection refused)") from None
        except TimeoutError:
            raise refuse(f"cannot connect (no answer within {_CONNECT_SECONDS:.0f} s)") from None
        except OSError as exc:
            raise refuse(f"cannot connect ({exc.strerror or _one_line(exc)})") from None

    async def handshake() -> None:
        comm = await connect(scheduler, timeout=_CONNECT_SECONDS)
        await comm.close()

    try:
        asyncio.run(handshake())
    except Exception as exc:  # noqa: BLE001 - whatever answers there, it is no scheduler
        raise refuse(f"no Dask scheduler answers there ({_one_line(exc)})") from None


def _run_dask(
    todo: list[BatchTask],
    priors: Sequence[Any],
    settings: Any,
    seed: int,
    client: Any,
    on_record: Callable[[dict[str, Any]], None],
) -> None:
    from dask.distributed import as_completed

    futures = client.map(
        run_task,
        todo,
        priors=priors,
        settings=settings,
        batch_seed=seed,
        key=[f"rebayes-batch-{t.key}-{safe_name(t.id)}" for t in todo],
        pure=False,
    )
    by_key = {f.key: t for f, t in zip(futures, todo, strict=True)}
    try:
        # The client is not the default one (see _connect): as_completed gets its loop.
        for future in as_completed(futures, loop=client.loop):
            on_record(_collect(future, by_key[future.key], priors, settings, seed))
    except BaseException:
        client.cancel(futures)
        raise


def run_batch(
    inputs: Iterable[str | Path],
    output: str | Path,
    priors: Sequence[str] | None = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    seed: int = 0,
    settings: Any = None,
    progress: Callable[[str], None] | None = None,
    allow_scripts: bool = False,
    engine: str = "nuts",
    bias: bool = True,
) -> BatchResult:
    """Run the overall analysis of every input under each prior; write the table and JSONs.

    Parameters
    ----------
    inputs : iterable of str or Path
        Dataset folders, CSVs, RevMan 5 files (every dichotomous outcome) or ``file.rm5:N``.
    output : str or Path
        Output directory: new, empty, or a previous batch's.
    priors : sequence of str, optional
        Prior set names; default the default prior only.
    workers : int, optional
        Local worker processes (default ``os.cpu_count()``); ignored with ``scheduler``.
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``) to run the tasks on.
    seed : int
        Batch seed; each task's seed is derived from it and the task's rows.
    settings : SamplerSettings, optional
    progress : callable, optional
        Called with one line per finished task (e.g. ``print`` to stderr).
    allow_scripts : bool
        Run dataset folders' model scripts even when not trusted (``--allow-scripts``; see
        :mod:`rebayes.data.trust`); they run here, not on the workers.
    engine : {"nuts", "exact", "auto"}
        ``exact``: every record by quadrature (:mod:`rebayes.bayes.exact_fit`), no PyMC in
        the workers; an input beyond its reach is a failed row. ``auto``: exact where it
        can, NUTS elsewhere. The record and the summary row say which answered.
    bias : bool
        Run the bias analysis of each input (:mod:`rebayes.tools.bias_batch`; most of a task's
        time with the exact engine); False leaves its columns empty.

    Returns
    -------
    BatchResult

    Raises
    ------
    BatchError
        Unknown input, unknown prior, an output directory not ours, an unreachable
        scheduler; nothing is run or written.

    Notes
    -----
    Local workers are started with ``spawn`` (a clean interpreter each): a script that calls
    this function needs the ``if __name__ == "__main__":`` guard.

    Examples
    --------
    >>> from rebayes.batch import run_batch
    >>> result = run_batch(["reviews/a.rm5", "data/b.csv"], "batch-out")  # doctest: +SKIP
    >>> result.summary[["id", "pooled_rr", "p_benefit", "revman_estimate"]]  # doctest: +SKIP
    """
    from rebayes.bayes.priors import DEFAULT_PRIOR, resolve_priors
    from rebayes.bayes.settings import SamplerSettings

    start = time.perf_counter()
    settings = settings or SamplerSettings()
    if not isinstance(seed, int) or seed < 0:
        raise BatchError(f"--seed {seed} must be a non-negative integer")
    if workers is not None and workers < 1:
        raise BatchError(f"--workers {workers} must be at least 1")
    if engine not in ENGINES:
        raise BatchError(f"--engine {engine}: one of {', '.join(ENGINES)}")
    prior_sets = resolve_priors(list(priors) if priors else [DEFAULT_PRIOR])
    output = Path(output).resolve()
    tasks = expand_inputs(inputs)
    if not tasks:
        raise BatchError("no inputs given")
    check_output_folder(output, "batch", BATCH_MARKER)
    # Connect first: an unreachable scheduler is a user error, and nothing is written.
    client = _connect(scheduler) if scheduler else None
    try:
        return _run(tasks, output, prior_sets, settings, seed, workers, client, progress, start,
                    allow_scripts, engine, bias)
    finally:
        if client is not None:
            client.close()


def _run(
    tasks: list[BatchTask],
    output: Path,
    prior_sets: Sequence[Any],
    settings: Any,
    seed: int,
    workers: int | None,
    client: Any,
    progress: Callable[[str], None] | None,
    start: float,
    allow_scripts: bool = False,
    engine: str = "nuts",
    bias: bool = True,
) -> BatchResult:
    output.mkdir(parents=True, exist_ok=True)
    results = output / "results"
    results.mkdir(exist_ok=True)
    write_text_atomic(
        output / BATCH_MARKER,
        json.dumps(
            {
                "format": BATCH_FORMAT,
                "note": "Written by `rebayes batch`: summary.csv, "
                "summary.parquet and results/*.json; a rerun replaces only those.",
            },
            indent=1,
        )
        + "\n",
    )
    tasks = prepare_tasks(tasks, prior_sets, seed, settings, allow_scripts, engine, bias)
    todo = [t for t in tasks if not _up_to_date(results / t.file_name, t)]
    skipped = len(tasks) - len(todo)
    state = {"done": 0, "failed": 0}

    def on_record(record: dict[str, Any]) -> None:
        task_file = results / safe_name(record["id"])
        _write_record(task_file.with_name(task_file.name + ".json"), record)
        state["done"] += 1
        if progress is not None:
            progress(_progress_line(state["done"] + skipped, len(tasks), record))

    if progress is not None and skipped:
        progress(f"{skipped} of {len(tasks)} meta-analyses up to date in {results}")
    # Inputs that do not load fail here, without a worker.
    runnable = []
    for task in todo:
        if task.error:
            on_record(run_task(task, prior_sets, settings, seed))
        else:
            runnable.append(task)
    try:
        if runnable and client is not None:
            _run_dask(runnable, prior_sets, settings, seed, client, on_record)
        elif runnable:
            n = min(workers or os.cpu_count() or 1, len(runnable))
            _run_local(runnable, prior_sets, settings, seed, n, on_record)
    finally:
        summary = _write_summary(output, tasks)
    failed = int((summary.drop_duplicates("id")["status"] != "ok").sum())
    return BatchResult(
        output, tuple(tasks), state["done"], skipped, failed, time.perf_counter() - start, summary
    )
