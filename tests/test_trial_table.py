"""TrialTable: the rows carry their schema, so a pandas operation cannot flip the direction of
benefit; and each table is read from its CSV once per report and once per batch task."""

import pathlib
from collections import Counter

import pandas as pd
import pytest

import rebayes as rb
import rebayes.workers
from conftest import TEST_DATA, ivig_spec
from rebayes.bayes.design import build_design
from rebayes.bayes.settings import SamplerSettings
from rebayes.data.direction import Direction
from rebayes.data.trial_table import TrialTable, as_table, table_hash

QUICK = SamplerSettings(draws=300, tune=300, chains=2, min_ess=0)


def _merged(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows with a column joined on: pandas's merge drops ``attrs``."""
    extra = pd.DataFrame({"study": frame["study"].unique(), "checked": True})
    merged = frame.merge(extra, on="study")
    assert merged.attrs == {}  # what made the old code fall back to the defaults
    return merged


def test_a_merged_frame_keeps_its_declared_direction_through_the_table():
    # IVIG declares higher_is_better = true (a live birth): benefit is RR > 1. With its schema
    # lost, the old build_design read the defaults (undeclared: P(RR < 1)), the other side.
    table = rb.load_table("ivig_rsa")
    assert table.schema.higher_is_better is True
    design = build_design(ivig_spec("overall"), table.with_rows(_merged(table.frame)))
    assert design.schema.higher_is_better is True
    assert Direction.from_schema(design.schema).benefit == "RR > 1"
    # The same rows as the table's (the joined column aside): 10 trials, as RevMan counts.
    assert len(design.studies) == 10 and design.variant == "published"


def test_a_frame_whose_schema_pandas_dropped_is_an_error_not_a_guess():
    frame = _merged(rb.load_trials("ivig_rsa"))
    with pytest.raises(rb.DataError, match="without its schema") as caught:
        build_design(ivig_spec("overall"), frame)
    assert "rebayes.load_table" in str(caught.value) and "schema=" in str(caught.value)
    # Given explicitly, the schema is used.
    schema = rb.load_table("ivig_rsa").schema
    design = build_design(ivig_spec("overall"), frame, schema=schema)
    assert design.schema.higher_is_better is True


def test_with_rows_rehashes_and_keeps_the_rest():
    table = rb.load_table(TEST_DATA / "bcg")
    fewer = table.with_rows(table.frame.iloc[:5].reset_index(drop=True))
    assert (fewer.schema, fewer.variant, fewer.dataset) == (table.schema, "published", "bcg")
    assert fewer.data_hash != table.data_hash and len(fewer.frame) == 5
    # The hash is SHA-256 of the rows' CSV text: a whole table's is the loader's.
    assert table_hash(table.frame) == table.data_hash
    assert len(table.data_hash) == 64


def test_load_trials_is_the_table_as_a_frame():
    table = rb.load_table("ivig_rsa", "seed_fit")
    frame = rb.load_trials("ivig_rsa", "seed_fit")
    pd.testing.assert_frame_equal(frame, table.frame)
    assert frame.attrs["schema"] == table.schema
    assert frame.attrs["data_hash"] == table.data_hash and frame.attrs["variant"] == "seed_fit"
    back = as_table(frame)
    assert isinstance(back, TrialTable) and back.data_hash == table.data_hash


@pytest.fixture
def csv_reads(monkeypatch):
    """Count reads of each trial CSV (the loader reads a table's file once per load)."""
    counts: Counter[str] = Counter()
    read_text = pathlib.Path.read_text

    def counting(self, *args, **kwargs):
        if self.suffix == ".csv" and self.name != "reported.csv":
            counts[self.name] += 1
        return read_text(self, *args, **kwargs)

    monkeypatch.setattr(pathlib.Path, "read_text", counting)
    return counts


def test_one_batch_task_reads_its_table_once(tmp_path, csv_reads, monkeypatch):
    # The tasks run in this process (the workers are processes of their own), so that every
    # read of the task is counted: preparing its key, its totals and RevMan, its design.
    def inline(function, tasks, workers, on_result, on_death, **_):
        for i, args in enumerate(tasks):
            on_result(i, function(*args))

    monkeypatch.setattr(rebayes.workers, "run_isolated", inline)
    from rebayes.batch import run_batch

    result = run_batch([TEST_DATA / "bcg.csv"], tmp_path / "b", workers=1, seed=7,
                       engine="exact")
    assert result.summary["status"].tolist() == ["ok"]
    assert csv_reads == {"bcg.csv": 1}  # before TrialTable: 3


@pytest.mark.slow
def test_a_report_reads_each_variant_once(tmp_path, csv_reads):
    from rebayes.report.build import build_report

    build_report(tmp_path / "r", TEST_DATA / "bcg", priors=["weakly_informative"],
                 settings=QUICK, progress=False, log=lambda _: None)
    # bcg reports one variant (published): before TrialTable the CSV was read 10 times.
    assert csv_reads == {"trials.csv": 1}


def test_direction_dependent_tools_ask_for_a_lost_direction():
    from rebayes.sensitivity.conflicts import evidence_conflicts
    from rebayes.tools.credibility import dataset_credibility

    frame = _merged(rb.load_trials("ivig_rsa"))
    for tool in (dataset_credibility, evidence_conflicts):
        with pytest.raises(rb.DataError, match="without its schema"):
            tool(frame)
    # Given the direction, they run: IVIG's declared one says benefit is RR > 1.
    declared = rb.load_table("ivig_rsa").schema.direction
    assert dataset_credibility(frame, declared).direction.benefit == "RR > 1"
