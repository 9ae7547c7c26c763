"""rebayes batch: many meta-analyses, one table; failures are rows; reruns skip; seeds fixed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from rebayes.batch import BATCH_MARKER, SUMMARY_COLUMNS, BatchError, run_batch, safe_name
from rebayes.bayes.settings import SamplerSettings
from rebayes.cli import main
from rebayes.data.trials import load_trials
from rebayes.frequentist.pooling import analyze

DATA = Path(__file__).resolve().parent / "data"
BCG_DIR, BCG_CSV, FLEISS = str(DATA / "bcg"), str(DATA / "bcg.csv"), str(DATA / "Fleiss1993.rm5")
# Short runs: these tests check the plumbing, not the posteriors' precision.
SMALL = SamplerSettings(draws=200, tune=200, min_ess=0)
NUMBERS = [
    "pooled_rr",
    "pooled_rr_low",
    "pooled_rr_high",
    "pooled_or",
    "p_rr_lt_1",
    "tau",
    "rhat_max",
    "ess_bulk_min",
]


@pytest.fixture(scope="module")
def bad_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("inputs") / "bad.csv"
    path.write_text("study,events_treat,n_treat\nA,3,50\n", encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def batch(tmp_path_factory, bad_csv):
    out = tmp_path_factory.mktemp("batch") / "out"
    lines: list[str] = []
    result = run_batch(
        [BCG_DIR, BCG_CSV, bad_csv, FLEISS],
        out,
        workers=2,
        seed=7,
        settings=SMALL,
        progress=lines.append,
    )
    return result, lines


def _row(summary: pd.DataFrame, suffix: str) -> pd.Series:
    rows = summary[summary["id"].str.endswith(suffix)]
    assert len(rows) == 1, summary["id"].tolist()
    return rows.iloc[0]


def test_summary_table_and_files(batch):
    result, lines = batch
    out = result.output
    csv = pd.read_csv(out / "summary.csv")
    parquet = pd.read_parquet(out / "summary.parquet")
    assert list(csv.columns) == list(SUMMARY_COLUMNS) == list(parquet.columns)
    assert len(parquet) == 4  # one row per (meta-analysis, prior): the default prior only
    assert set(parquet["prior"]) == {"weakly_informative"}
    assert sorted(p.name for p in (out / "results").iterdir()) == sorted(
        safe_name(t.id) + ".json" for t in result.tasks
    )
    assert (out / BATCH_MARKER).is_file()
    assert len(lines) == 4 and all(line.startswith("[") for line in lines)
    record = json.loads(next((out / "results").glob("*Fleiss*")).read_text())
    assert record["status"] == "ok" and record["key"] and record["revman"]["measure"] == "OR"
    assert set(record["fits"]) == {"weakly_informative"}


def test_bad_input_is_a_failed_row(batch, bad_csv):
    result, _ = batch
    row = _row(result.summary, "bad.csv")
    assert row["status"] == "failed"
    assert row["message"] == f"{bad_csv}:1: missing required column 'events_control'"
    assert pd.isna(row["pooled_rr"])
    assert result.failed == 1


def test_bcg_rows(batch):
    summary = batch[0].summary
    for suffix in ("bcg", "bcg.csv"):
        row = _row(summary, suffix)
        assert row["status"] == "ok" and row["k"] == 13
        assert row["revman_method"] == "MH" and row["revman_measure"] == "RR"
        expected = analyze(load_trials(DATA / suffix)).overall.estimate
        assert_allclose(row["revman_estimate"], expected, rtol=1e-12)
    # metafor's dat.bcg, rma.mh(measure="RR"): exp(-0.4537) = 0.6353 (fixed-effect MH).
    assert_allclose(_row(summary, "bcg.csv")["revman_estimate"], np.exp(-0.4537), atol=1e-4)
    # The folder declares that fewer tuberculosis cases is benefit.
    folder = _row(summary, "bcg")
    assert folder["direction"] == "lower_is_better"
    assert folder["p_benefit"] > 0.99
    assert folder["pooled_rr_high"] < 1
    assert folder["rhat_max"] < 1.05 and folder["divergences"] == 0


def test_direction_states_in_the_summary(batch):
    summary, lines = batch[0].summary, batch[1]
    # A bare CSV declares no direction: no P(benefit), the literal P(RR < 1) instead.
    bare = _row(summary, "bcg.csv")
    assert bare["direction"] == "undeclared"
    assert pd.isna(bare["p_benefit"]) and bare["p_rr_lt_1"] > 0.99
    line = next(x for x in lines if x.split(": ", 1)[0].endswith("bcg.csv"))
    assert "P(RR < 1)" in line and "no direction declared" in line and "benefit" not in line
    # RevMan's labels ("Favours experimental" on the left) say fewer deaths is better.
    fleiss = _row(summary, "Fleiss1993.rm5:1.1")
    assert fleiss["direction"] == "lower_is_better"
    assert fleiss["p_benefit"] == fleiss["p_rr_lt_1"]
    # The folder declares it: P(benefit) is P(RR < 1).
    folder = _row(summary, "bcg")
    assert folder["p_benefit"] == folder["p_rr_lt_1"]


def test_fleiss_revman_or(batch):
    row = _row(batch[0].summary, "Fleiss1993.rm5:1.1")
    assert row["status"] == "ok" and row["k"] == 7
    assert row["revman_measure"] == "OR" and row["revman_method"] == "MH"
    # RevMan's stored total in Fleiss1993.rm5 (MH OR 0.8969).
    assert_allclose(row["revman_estimate"], 0.8969, atol=5e-5)


def test_rerun_skips_every_task(batch, bad_csv):
    result, _ = batch
    results = result.output / "results"
    before = {p.name: p.stat().st_mtime_ns for p in results.iterdir()}
    time.sleep(0.01)
    again = run_batch(
        [BCG_DIR, BCG_CSV, bad_csv, FLEISS], result.output, workers=2, seed=7, settings=SMALL
    )
    assert again.fitted == 0 and again.skipped == 4
    assert {p.name: p.stat().st_mtime_ns for p in results.iterdir()} == before
    pd.testing.assert_frame_equal(again.summary, result.summary)


def test_one_worker_gives_the_same_numbers(batch, tmp_path):
    result, _ = batch
    # Other order, one worker: every task's seed comes from the batch seed and its rows.
    one = run_batch([FLEISS, BCG_DIR], tmp_path / "one", workers=1, seed=7, settings=SMALL)
    for suffix in ("Fleiss1993.rm5:1.1", "bcg"):
        a, b = _row(result.summary, suffix), _row(one.summary, suffix)
        assert a["seed"] == b["seed"]
        assert_allclose(a[NUMBERS].astype(float), b[NUMBERS].astype(float), rtol=0, atol=0)


def test_changed_settings_refit(batch, tmp_path):
    """A different seed changes the key: the JSON is rewritten, not skipped."""
    result, _ = batch
    out = tmp_path / "copy"
    out.mkdir()
    (out / BATCH_MARKER).write_text((result.output / BATCH_MARKER).read_text())
    (out / "results").mkdir()
    name = next(p.name for p in (result.output / "results").glob("*Fleiss*"))
    (out / "results" / name).write_text((result.output / "results" / name).read_text())
    skipped = run_batch([FLEISS], out, workers=1, seed=7, settings=SMALL)
    assert skipped.fitted == 0
    refit = run_batch([FLEISS], out, workers=1, seed=8, settings=SMALL)
    assert refit.fitted == 1
    assert json.loads((out / "results" / name).read_text())["batch_seed"] == 8


def test_user_errors_are_one_line(tmp_path, capsys, bad_csv):
    missing = tmp_path / "nope.csv"
    assert main(["batch", str(missing), "--output", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == f"rebayes batch: error: {missing}: no such file or folder\n"
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert main(["batch", bad_csv, "--output", str(foreign)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not empty and holds no rebayes batch" in err
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    assert main(["batch", bad_csv, "--output", str(tmp_path / "o"), "--priors", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope" in err
    assert main(["batch", bad_csv, "--output", str(tmp_path / "o"), "--scheduler", "bad://x"]) == 2
    assert capsys.readouterr().err == (
        "rebayes batch: error: --scheduler bad://x: unknown address scheme 'bad' (give "
        "tcp://HOST:PORT)\n"
    )
    with pytest.raises(BatchError, match="no such file"):
        run_batch([str(missing)], tmp_path / "o")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize(("address", "message"), [
    ("notaurl://", "unknown address scheme 'notaurl' (give tcp://HOST:PORT)"),
    ("tcp://127.0.0.1:1", "cannot connect (connection refused)"),
])
def test_a_bad_scheduler_address_is_one_line_within_seconds(tmp_path, bad_csv, address, message):
    """The issue's probe: 'notaurl://' took 44 s and ended with a Client.__del__ traceback.

    A process of its own: the traceback came when the half-made client was collected.
    """
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "rebayes", "batch", bad_csv, "--output", str(tmp_path / "o"),
         "--scheduler", address], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr == f"rebayes batch: error: --scheduler {address}: {message}\n"
    assert time.monotonic() - start < 30  # imports included, on a loaded machine
    assert not (tmp_path / "o").exists()


def test_cli_failed_inputs_only(tmp_path, capsys, bad_csv):
    """Failures are rows and exit status 0; no worker is started for inputs that do not load."""
    out = tmp_path / "out"
    assert main(["batch", bad_csv, "--output", str(out), "--draws", "100", "--tune", "100"]) == 0
    captured = capsys.readouterr()
    assert "1 meta-analyses: 1 run, 0 up to date, 1 failed" in captured.out
    assert "failed: " in captured.err
    table = pd.read_csv(out / "summary.csv")
    assert table["status"].tolist() == ["failed"]


@pytest.mark.slow  # ~65 s: each Dask worker process compiles the model once
def test_dask_scheduler(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        result = run_batch(
            [BCG_CSV, FLEISS],
            tmp_path / "dask",
            scheduler=cluster.scheduler_address,
            seed=7,
            settings=SMALL,
        )
    assert result.fitted == 2 and result.failed == 0
    assert_allclose(_row(result.summary, "bcg.csv")["revman_estimate"], np.exp(-0.4537), atol=1e-4)
    local = run_batch([BCG_CSV], tmp_path / "local", workers=1, seed=7, settings=SMALL)
    assert_allclose(
        _row(result.summary, "bcg.csv")[NUMBERS].astype(float),
        _row(local.summary, "bcg.csv")[NUMBERS].astype(float),
        rtol=0,
        atol=0,
    )


def test_folder_of_inputs_expands(tmp_path):
    from rebayes.batch import expand_inputs

    ids = [t.id for t in expand_inputs([str(DATA)])]
    assert f"{DATA / 'Fleiss1993.rm5'}:1.1" in ids  # every dichotomous outcome of a .rm5
    assert str(DATA / "bcg") in ids and str(DATA / "bcg.csv") in ids  # folders and CSVs
    assert ids == sorted(ids)
    # The same input twice is one task.
    assert [t.id for t in expand_inputs([BCG_CSV, BCG_CSV])] == [BCG_CSV]
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(BatchError, match="a folder with no dataset, CSV, .rm5 or .zip file"):
        expand_inputs([tmp_path])


def test_review_files_of_every_format_give_one_task_per_dichotomous_analysis(tmp_path):
    # R meta's Fleiss1993.zip (a data package: 1 dichotomous, 1 continuous analysis) and its
    # RevMan 5 CSV export; the folder holding them stands for both.
    from rebayes.batch import expand_inputs

    revman = Path(__file__).parent / "data" / "revman"
    folder = tmp_path / "reviews"
    folder.mkdir()
    for name in ("Fleiss1993.zip", "Fleiss93_CR.csv"):
        (folder / name).write_bytes((revman / name).read_bytes())
    ids = [t.id for t in expand_inputs([folder])]
    assert ids == [f"{folder}/Fleiss1993.zip:1.1", f"{folder}/Fleiss93_CR.csv:1.1"]
    one = expand_inputs([f"{folder}/Fleiss1993.zip:1.1"])
    assert [t.source for t in one] == [f"{(folder / 'Fleiss1993.zip').resolve()}:1.1"]


def test_the_exact_engine_answers_a_batch(tmp_path, bad_csv):
    out = tmp_path / "exact"
    result = run_batch([BCG_CSV, FLEISS, bad_csv], out, workers=1, seed=7, engine="exact")
    summary = result.summary
    bare = _row(summary, "bcg.csv")
    assert bare["status"] == "ok" and bare["engine"] == "exact"
    # tests/exact_reference.py, binomial_reference(events, n) of bcg.csv's 13 trials (brute
    # force: theta step 0.01, tau step 0.005, d ~ N(0, 1), tau ~ HalfNormal(0.5), the default
    # prior): P(d > 0) = 0.00041138007, so P(RR < 1) = 0.99958862.
    assert bare["p_rr_lt_1"] == pytest.approx(0.99958862, abs=2e-6)
    assert bare["p_rr_lt_1_mcse"] == 0 and bare["at_the_line"] == "" and bare["gates_ok"]
    assert _row(summary, "Fleiss1993.rm5:1.1")["engine"] == "exact"
    assert _row(summary, "bad.csv")["status"] == "failed"
    record = json.loads(next((out / "results").glob("*bcg.csv-*.json")).read_text())
    assert record["engine"] == "exact" and record["fits"]["weakly_informative"]["trials"] == {}
    # The same inputs again: every task is up to date (its key names the engine).
    again = run_batch([BCG_CSV, FLEISS, bad_csv], out, workers=1, seed=7, engine="exact")
    assert again.skipped == 3 and again.fitted == 0


def test_a_batch_fit_record_is_rebayes_fit_json_s_record_with_its_gates(tmp_path, capsys):
    # One builder (rebayes.bayes.fit_record): the same fields with the same values; batch
    # adds its gates and leaves out the trials' shrunken effects.
    assert main(["fit", "--data", BCG_CSV, "--engine", "exact", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)["priors"]["weakly_informative"]
    run_batch([BCG_CSV], tmp_path / "out", workers=1, seed=7, engine="exact")
    record = json.loads(next((tmp_path / "out" / "results").glob("*bcg.csv-*.json")).read_text())
    batch = record["fits"]["weakly_informative"]
    assert set(batch) - set(printed) == {"gates", "gates_ok"}
    assert set(printed) == set(batch) - {"gates", "gates_ok"}
    assert {k: v for k, v in batch.items() if k in printed and k != "trials"} == {
        k: v for k, v in printed.items() if k != "trials"}
    assert batch["trials"] == {} and len(printed["trials"]) == 13
    # P(pooled OR > 1) = P(d > 0) = 0.00041138007 by brute force (tests/exact_reference.py,
    # as in test_the_exact_engine_answers_a_batch).
    assert batch["p_pooled_or_gt"]["1"] == pytest.approx(0.00041138007, abs=2e-6)
    assert batch["gates"] == {} and batch["gates_ok"] is True


def test_the_engine_is_part_of_a_task_key():
    from rebayes.batch import task_key
    from rebayes.bayes.priors import get_prior

    args = ("rows", [get_prior("weakly_informative")], 7, SMALL)
    assert len({task_key(*args), task_key(*args, engine="exact"),
                task_key(*args, engine="auto")}) == 3
    assert task_key(*args) == task_key(*args, engine="nuts")


def test_no_bias_leaves_its_columns_empty_and_changes_the_key(tmp_path):
    from rebayes.batch import task_key
    from rebayes.bayes.priors import get_prior
    from rebayes.tools.bias_batch import BATCH_COLUMNS

    result = run_batch([BCG_CSV], tmp_path / "nb", workers=1, engine="exact", bias=False)
    row = _row(result.summary, "bcg.csv")
    assert row["status"] == "ok" and row["p_rr_lt_1"] == pytest.approx(0.99958862, abs=2e-6)
    assert all(pd.isna(row[c]) for c in BATCH_COLUMNS)
    args = ("rows", [get_prior("weakly_informative")], 7, SMALL)
    assert task_key(*args, bias=False) != task_key(*args)
