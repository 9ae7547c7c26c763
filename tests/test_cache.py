"""The fit cache: keyed by the analysed rows (never a name), stored outside the source tree."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import rebayes as rb
from rebayes.bayes.design import build_design
from rebayes.bayes.fit import fit_key
from rebayes.bayes.priors import get_prior
from rebayes.bayes.settings import SamplerSettings
from rebayes.cli import main
from rebayes.store.fits import flush_cache
from rebayes.store.paths import cache_dir, cache_info, clear_cache, fits_dir

ROOT = Path(__file__).resolve().parents[1]
BCG = Path(__file__).resolve().parent / "data" / "bcg.csv"
QUICK = SamplerSettings(draws=100, tune=200, chains=2, min_ess=0)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REBAYES_CACHE", str(tmp_path / "cache"))


def bcg_spec(data=str(BCG), **kwargs):
    return rb.AnalysisSpec(name="bcg", data=data, **kwargs)


def tables():
    """The BCG table and a copy with one trial's counts changed, both without attrs."""
    first = rb.load_trials(BCG)
    second = first.copy()
    second.loc[0, "events_treat"] = 40
    first.attrs, second.attrs = {}, {}
    return first, second


def key_of(spec, trials=None, prior="vague", seed=1):
    # A frame without attrs is given its schema (else its direction would be a guess).
    schema = rb.load_table(BCG).schema if trials is not None else None
    return fit_key(build_design(spec, trials, schema=schema), get_prior(prior), seed, QUICK)


def test_the_key_covers_the_rows_and_the_model_not_the_names(tmp_path):
    first, second = tables()
    spec = bcg_spec()
    # Two tables passed through the API, neither with a name or a hash: different keys.
    assert key_of(spec, first) != key_of(spec, second)
    # The same rows under two dataset names and two spec names: one key.
    copy = tmp_path / "elsewhere" / "renamed.csv"
    copy.parent.mkdir()
    shutil.copy(BCG, copy)
    renamed = bcg_spec(str(copy)).__class__(name="other", title="Another title", data=str(copy))
    assert key_of(spec) == key_of(renamed) == key_of(spec, first)
    # What changes the numbers changes the key.
    assert key_of(spec) != key_of(bcg_spec(likelihood="normal"))
    assert key_of(spec) != key_of(spec, prior="skeptical")
    assert key_of(spec) != key_of(spec, seed=2)


def test_two_tables_through_the_api_get_their_own_posteriors():
    first, second = tables()
    spec = bcg_spec()
    fits = [
        rb.fit(spec, "vague", design=build_design(spec, t, schema=rb.load_table(BCG).schema),
               settings=QUICK)
        for t in (first, second)
    ]
    flush_cache()
    assert fits[0].key != fits[1].key
    assert not fits[1].from_cache
    d = [float(f.tree["posterior"]["d"].mean()) for f in fits]
    assert abs(d[0] - d[1]) > 0.05  # 4 -> 40 events in one arm moves the pooled effect
    assert cache_info().fits == 2


def test_the_same_rows_under_another_name_share_the_fit_and_are_named_as_asked(tmp_path):
    copy = tmp_path / "renamed.csv"
    shutil.copy(BCG, copy)
    first = rb.fit(bcg_spec(), "vague", settings=QUICK)
    flush_cache()
    again = rb.fit(
        rb.AnalysisSpec(name="renamed", title="Same rows", data=str(copy)),
        "vague",
        settings=QUICK,
    )
    assert again.from_cache and again.key == first.key
    np.testing.assert_array_equal(again.tree["posterior"]["d"], first.tree["posterior"]["d"])
    # Names are re-stamped on the cached tree: the report shows this run's names.
    assert again.tree.attrs["dataset"] == "renamed"
    assert again.tree.attrs["analysis"] == "renamed"
    assert again.tree.attrs["title"] == "Same rows"
    assert json.loads(again.tree.attrs["spec_json"])["data"] == str(copy)


def test_the_cache_lives_in_the_user_cache_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("REBAYES_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr("sys.platform", "linux")
    assert cache_dir() == tmp_path / "xdg" / "rebayes"
    assert not cache_dir().is_relative_to(ROOT)
    monkeypatch.setenv("REBAYES_CACHE", str(tmp_path / "mine"))
    assert fits_dir() == tmp_path / "mine" / "fits"


def fake_fits(folder, n=3, size=1000):
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"{i:032x}.nc").write_bytes(b"x" * size)
    # An interrupted write (rebayes.atomic's temporary name: ".<name>.<random>.tmp").
    (folder / f".{0:032x}.nc.k2x_9ab.tmp").write_bytes(b"x" * 10)


def _info_json(capsys):
    assert main(["cache", "info", "--json"]) == 0
    return capsys.readouterr().out


def test_cache_info_and_clear(capsys, tmp_path):
    assert main(["cache", "info"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"location: {tmp_path / 'cache' / 'fits'}",
        "fits: 0",
        "size: 0 B (0 bytes)",
        "compiled models: 0 (0 B)",
        "fit summaries: 0 (0 B)",
    ]
    fake_fits(fits_dir())
    (fits_dir() / "README.txt").write_text("not rebayes's")
    (fits_dir() / "ABCDEF.nc").write_text("not a fit name")
    (cache_dir() / "other.nc").write_text("outside the fits folder")
    compiled = cache_dir() / "compiled"
    compiled.mkdir()
    (compiled / f"{1:032x}.pkl").write_bytes(b"y" * 500)
    (compiled / f"{1:032x}.lock").write_bytes(b"")
    (compiled / "notes.txt").write_text("not rebayes's")
    summaries = cache_dir() / "summaries"
    summaries.mkdir()
    (summaries / f"{2:032x}.pkl").write_bytes(b"z" * 200)
    (summaries / "mine.pkl").write_text("not rebayes's")
    assert json.loads(_info_json(capsys)) == {
        "location": str(fits_dir()),
        "fits": 3,
        "size_bytes": 3010,
        "compiled_location": str(compiled),
        "compiled": 1,
        "compiled_bytes": 500,
        "summaries_location": str(summaries),
        "summaries": 1,
        "summaries_bytes": 200,
    }
    assert main(["cache", "clear"]) == 0
    assert capsys.readouterr().out == (
        f"removed 3 cached fits from {fits_dir()} and 1 compiled models and 1 fit summaries, "
        "freed 3.7 kB\n")
    assert sorted(p.name for p in compiled.iterdir()) == ["notes.txt"]
    assert sorted(p.name for p in summaries.iterdir()) == ["mine.pkl"]
    assert sorted(p.name for p in fits_dir().iterdir()) == ["ABCDEF.nc", "README.txt"]
    assert (cache_dir() / "other.nc").is_file()
    assert cache_info().fits == 0


def test_clear_removes_the_emptied_fits_folder_and_works_without_a_cache(tmp_path):
    fake_fits(fits_dir(), n=1)
    removed = clear_cache()
    assert (removed.fits, removed.size_bytes) == (1, 1010)
    assert not fits_dir().exists() and cache_dir().is_dir()
    assert clear_cache().fits == 0  # nothing there: nothing to do, no error
