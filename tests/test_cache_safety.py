"""The cache holds code (compiled models, pickled summaries): only its owner may change it.

As ssh does for its keys: the cache and its folders are created private (0700), and a cache
folder that another user could write, or does not belong to the user, is refused in one
line before anything in it is read. The planted entry below shows what is at stake: in a
cache that passes the check, loading it runs its code.
"""

from __future__ import annotations

import os
import pickle
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import rebayes as rb
from rebayes.bayes.settings import SamplerSettings
from rebayes.store import paths
from rebayes.store.fits import flush_cache
from rebayes.store.paths import UnsafeCacheError, write_entry

DATA = Path(__file__).resolve().parent / "data"
BCG = DATA / "bcg.csv"
QUICK = SamplerSettings(draws=100, tune=200, chains=2, min_ess=0)
ROOT_ONLY = pytest.mark.skipif(os.getuid() != 0, reason="chown to another user needs root")


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REBAYES_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(paths, "_SAFE", set())  # each test checks as a new process would


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class _Planted:
    """A pickle that, when loaded, creates ``marker`` (stands for any code)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def _plant(tmp_path: Path) -> tuple[Path, Path]:
    """A compiled-model entry for BCG's structure that runs code; returns (entry, marker)."""
    from rebayes.bayes.compilation import compile_key
    from rebayes.bayes.design import build_design

    marker = tmp_path / "code-ran"
    design = build_design(rb.AnalysisSpec(name="bcg", data=str(BCG)))
    entry = paths.compiled_dir() / f"{compile_key(design)}.pkl"
    assert write_entry(entry, pickle.dumps(_Planted(marker)))
    return entry, marker


def test_the_cache_and_its_folders_are_created_private():
    rb.fit(rb.AnalysisSpec(name="bcg", data=str(BCG)), "vague", settings=QUICK).summary()
    flush_cache()
    root = paths.cache_dir()
    assert _mode(root) == 0o700
    for name in ("fits", "summaries"):
        assert _mode(root / name) == 0o700, name


def test_a_planted_entry_runs_in_a_cache_that_passes_and_is_never_read_in_one_that_fails(
        tmp_path):
    """The threat, then the refusal: a group-writable cache folder stops the command before
    it reads the planted compiled model (a fresh process: nothing compiled in memory)."""
    from rebayes.bayes import compilation

    entry, marker = _plant(tmp_path)
    # The control: the cache is private, the entry is whole, so loading it runs its code.
    with pytest.warns(paths.CacheNote):  # it ran, and then was no compiled model
        compilation.read_compiled(entry)
    assert marker.exists()
    marker.unlink()

    folder = paths.compiled_dir()
    folder.chmod(0o770)
    done = subprocess.run(
        [sys.executable, "-m", "rebayes", "fit", "--data", str(BCG), "--prior", "vague"],
        capture_output=True, text=True, timeout=600, env=dict(os.environ))
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        f"rebayes fit: error: cache folder {folder} is writable by its group; refusing to use "
        "it (it holds code rebayes runs): run 'chmod go-w "
        f"{folder}' or set REBAYES_CACHE to another folder\n")
    assert not marker.exists()


def test_rebayes_cache_pointing_at_a_folder_others_can_write_is_refused(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    monkeypatch.setenv("REBAYES_CACHE", str(shared))
    with pytest.raises(UnsafeCacheError) as error:
        paths.fits_dir()
    assert str(error.value) == (
        f"cache folder {shared} is writable by others; refusing to use it (it holds code "
        f"rebayes runs): run 'chmod go-w {shared}' or set REBAYES_CACHE to another folder")
    shared.chmod(0o755)  # readable by others is fine: only who may write matters
    assert paths.fits_dir() == shared / "fits"


@ROOT_ONLY
def test_a_cache_folder_owned_by_another_user_is_refused(tmp_path, monkeypatch):
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 12345, 12345)
    monkeypatch.setenv("REBAYES_CACHE", str(theirs))
    with pytest.raises(UnsafeCacheError, match=(
            r"cache folder .*theirs is owned by another user \(uid 12345\); refusing to use it "
            r"\(it holds code rebayes runs\): set REBAYES_CACHE to a folder of your own$")):
        paths.summaries_dir()


def test_a_folder_above_the_cache_that_others_can_write_is_refused_unless_sticky(
        tmp_path, monkeypatch):
    """Whoever can write a folder above the cache can replace the cache (ssh's rule);
    the sticky bit (/tmp) forbids renaming what is not one's own."""
    above = tmp_path / "above"
    above.mkdir()
    above.chmod(0o777)
    monkeypatch.setenv("REBAYES_CACHE", str(above / "cache"))
    with pytest.raises(UnsafeCacheError) as error:
        paths.make_folder(paths.cache_dir() / "fits")
    assert str(error.value) == (
        f"cache folder {above / 'cache'}: {above} is writable by others; refusing to use it "
        "(it holds code rebayes runs): set REBAYES_CACHE to a folder only you can change")
    above.chmod(0o1777)
    paths.make_folder(paths.cache_dir() / "fits")
    assert _mode(above / "cache" / "fits") == 0o700


def test_a_link_to_a_private_folder_is_followed(tmp_path, monkeypatch):
    real = tmp_path / "elsewhere"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    monkeypatch.setenv("REBAYES_CACHE", str(link))
    paths.make_folder(paths.fits_dir())
    assert (real / "fits").is_dir()
    real.chmod(0o777)
    monkeypatch.setattr(paths, "_SAFE", set())  # a later process
    with pytest.raises(UnsafeCacheError, match=f"cache folder {link} is writable by others"):
        paths.fits_dir()


@ROOT_ONLY
def test_an_entry_another_user_owns_is_not_loaded(tmp_path):
    from rebayes.bayes import compilation

    entry, marker = _plant(tmp_path)
    os.chown(entry, 12345, 12345)
    with pytest.warns(paths.CacheNote, match=r"not used \(it is owned by another user"):
        assert compilation.read_compiled(entry) is None
    assert not marker.exists()
