"""A damaged cache is a miss, and a cache that cannot be written costs only the reuse.

Each unreadable entry (damaged bytes, truncated, a folder in its place, a value changed
inside a file that still reads) is computed again with one note and replaced; a full disk
or a read-only cache prints the result and one warning line. The expected numbers are the
draws of the same fit before the damage (same seed, same draws) and the table's own counts.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import rebayes as rb
from conftest import without_progress
from rebayes.bayes.settings import SamplerSettings
from rebayes.cli import main
from rebayes.store import paths
from rebayes.store.fits import flush_cache, load_fit
from rebayes.store.paths import CacheNote, CacheWarning, read_entry, summaries_dir

DATA = Path(__file__).resolve().parent / "data"
BCG = DATA / "bcg.csv"
QUICK = SamplerSettings(draws=100, tune=200, chains=2, min_ess=0)
# `rebayes fit --draws 200`, prior vague: quick on these 13 trials (a few seconds).
FIT_COMMAND = ["fit", "--data", str(BCG), "--prior", "vague", "--draws", "200"]


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REBAYES_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(paths, "_WARNED", [])  # the once-per-process warning, per test


def _fit():
    return rb.fit(rb.AnalysisSpec(name="bcg", data=str(BCG)), "vague", settings=QUICK)


def _flip_middle(path: Path, count: int = 64) -> None:
    """Invert ``count`` bytes in the middle of a file; its size stays the same."""
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for i in range(middle, middle + count):
        data[i] ^= 0xFF
    size = len(data)
    path.write_bytes(bytes(data))
    assert path.stat().st_size == size


def _notes(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, CacheWarning)]


def _draws_after(path: Path, damage, expected: np.ndarray) -> list[str]:
    """Damage the fit file, read the fit again; return the notes. Checks draws and file."""
    damage(path)
    again = _fit()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        draws = again.tree["posterior"]["d"].values
    np.testing.assert_array_equal(draws, expected)  # sampled again: the same seed, same draws
    flush_cache()
    np.testing.assert_array_equal(load_fit(path)["posterior"]["d"].values, expected)  # replaced
    return _notes(record)


def test_a_fit_file_damaged_in_the_middle_is_sampled_again_with_one_note():
    """The issue's probe: same size, bytes flipped; it gave 'NetCDF: HDF error' every run."""
    first = _fit()
    flush_cache()
    expected = first.tree["posterior"]["d"].values
    notes = _draws_after(first.path, _flip_middle, expected)
    assert len(notes) == 1
    assert notes[0].startswith(f"cached fit {first.path} not used (")
    assert notes[0].endswith("); computing it again")


def test_a_truncated_fit_file_is_sampled_again_with_one_note():
    first = _fit()
    flush_cache()
    expected = first.tree["posterior"]["d"].values

    def truncate(path: Path) -> None:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])

    assert len(_draws_after(first.path, truncate, expected)) == 1


def test_a_value_changed_inside_a_fit_file_that_still_reads_is_found():
    """HDF5 reads such a file without complaint: only the checksum of its values finds it."""
    import netCDF4

    first = _fit()
    flush_cache()
    expected = first.tree["posterior"]["d"].values

    def change_a_count(path: Path) -> None:
        with netCDF4.Dataset(path, "a") as handle:
            handle["constant_data"]["n"][0, 0] = 999

    notes = _draws_after(first.path, change_a_count, expected)
    assert notes == [f"cached fit {first.path} not used (damaged: its checksum does not "
                     "match); computing it again"]
    # The counts are those of the table (Aronson 1948: 139 unvaccinated), not the changed one.
    n = load_fit(first.path)["constant_data"]["n"]
    assert int(n.sel(row="Aronson", arm="control")) == 139


def test_a_folder_in_the_place_of_a_fit_file_is_a_miss_and_is_replaced():
    first = _fit()
    flush_cache()
    expected = first.tree["posterior"]["d"].values
    first.path.unlink()
    first.path.mkdir()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        again = _fit()
    assert not again.from_cache
    assert _notes(record) == [f"cached fit {first.path} not used (a folder, not a file); "
                              "computing it again"]
    np.testing.assert_array_equal(again.tree["posterior"]["d"].values, expected)
    flush_cache()
    assert first.path.is_file()


@pytest.mark.parametrize("damage", ["flip", "truncate", "folder", "foreign"])
def test_a_damaged_summary_is_computed_again_with_one_note_and_replaced(damage):
    first = _fit()
    flush_cache()
    expected = first.summary()
    (path,) = summaries_dir().iterdir()
    if damage == "flip":
        _flip_middle(path)
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    elif damage == "folder":
        path.unlink()
        path.mkdir()
    else:  # a pickle that was not written by rebayes' cache: never unpickled
        import pickle

        path.write_bytes(pickle.dumps({"summary": "planted"}))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        summary = _fit().summary()
    assert summary == expected
    (note,) = _notes(record)
    assert note.startswith(f"cached fit summary {path} not used (")
    # Replaced: read back whole, without a note.
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert read_entry(path, "cached fit summary") is not None
    assert _notes(record) == []


def test_a_damaged_compiled_model_is_compiled_again_and_replaced():
    """Damaged machine code would crash the sampler: its checksum is checked first."""
    from rebayes.bayes import compilation
    from rebayes.bayes.design import build_design
    from rebayes.bayes.priors import get_prior

    design = build_design(rb.AnalysisSpec(name="bcg", data=str(BCG)))
    prior = get_prior("vague")
    compilation.load_or_compile(design, prior)
    path = paths.compiled_dir() / f"{compilation.compile_key(design)}.pkl"
    _flip_middle(path)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        compiled = compilation.load_or_compile(design, prior)
    assert _notes(record) == [f"compiled model {path} not used (damaged: its checksum does "
                              "not match); computing it again"]
    assert compiled.n_dim > 0
    assert compilation.read_compiled(path) is not None  # replaced by the new compilation


def test_the_command_prints_one_note_for_a_damaged_fit(capsys):
    assert main(FIT_COMMAND) == 0
    first = capsys.readouterr().out
    (path,) = paths.fits_dir().iterdir()
    _flip_middle(path)
    assert main(FIT_COMMAND) == 0
    out, err = capsys.readouterr()
    err = without_progress(err)
    assert out == first  # the same result: sampled again with the same seed
    assert err.count("\n") == 1
    assert err.startswith(f"rebayes fit: note: cached fit {path} not used (")
    assert err.endswith("); computing it again\n")


def test_a_cache_that_cannot_be_written_prints_the_result_and_one_warning(
        capsys, monkeypatch):
    """A full disk, as the C library sees it: every file the cache creates fails (ENOSPC)."""
    import errno
    import tempfile

    real = tempfile.mkstemp

    def full_disk(*args, **kwargs):
        if str(kwargs.get("dir", "")).startswith(str(paths.cache_dir())):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", full_disk)
    assert main(FIT_COMMAND) == 0
    out, err = capsys.readouterr()
    err = without_progress(err)
    assert "P(RR < 1)" in out  # the result, in the dataset's direction words
    assert err == (f"rebayes fit: warning: cannot write the cache {paths.cache_dir()} (the "
                   "disk is full); results are not kept for later runs\n")
    assert not list(paths.fits_dir().glob("*.nc"))


def _unshare() -> list[str]:
    """A command prefix giving a private mount namespace (for a tmpfs), or skip."""
    tool = shutil.which("unshare")
    probe = [tool or "unshare", "--user", "--map-root-user", "--mount", "true"]
    if tool is None or subprocess.run(probe, capture_output=True).returncode != 0:
        pytest.skip("needs unshare with user namespaces (a tmpfs to fill or make read-only)")
    return probe[:-1]


# Runs inside a private mount namespace: a 16 MB tmpfs over the cache; the first fit fills
# the cache (compiled model, fit, summary); then the disk is filled or made read-only, and
# a fit under another prior has nowhere to go.
TMPFS_SCRIPT = """
set -e
mount -t tmpfs -o size=16m tmpfs "$MNT"
"$PY" -m rebayes {command} > /dev/null 2>&1
{fault}
set +e
"$PY" -m rebayes {command2}
"""


@pytest.mark.slow  # two fits in fresh processes, the first compiling (~1 min)
@pytest.mark.parametrize(("fault", "reason"), [
    ('dd if=/dev/zero of="$MNT/filler" bs=4k 2>/dev/null || true', "the disk is full"),
    ('mount -o remount,ro "$MNT"', "read-only file system"),
])
def test_a_full_or_read_only_cache_disk_prints_the_result_and_one_warning(
        tmp_path, fault, reason):
    prefix = _unshare()
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    command = " ".join(FIT_COMMAND)
    script = TMPFS_SCRIPT.format(command=command, fault=fault,
                                 command2=command.replace("vague", "skeptical"))
    env = {**os.environ, "MNT": str(mnt), "PY": sys.executable,
           "REBAYES_CACHE": str(mnt / "cache")}
    done = subprocess.run([*prefix, "sh", "-c", script], capture_output=True, text=True,
                          env=env, timeout=1200)
    assert done.returncode == 0, done.stderr
    assert "prior skeptical" in done.stdout and "P(RR < 1)" in done.stdout
    assert without_progress(done.stderr) == (
        f"rebayes fit: warning: cannot write the cache {mnt / 'cache'} ({reason}); results "
        "are not kept for later runs\n")


def test_a_failed_write_is_a_warning_for_library_users_too():
    """Outside the command it is a Python warning they can filter (CacheWarning)."""
    with pytest.warns(CacheWarning, match="cannot write the cache"):
        paths.warn_unwritable(OSError(30, "Read-only file system"))
    assert not issubclass(CacheWarning, RuntimeWarning)  # silencing numerics keeps it
    assert issubclass(CacheNote, CacheWarning)
