"""Atomic writes: a failure leaves the previous version, kept entries survive a rebuild."""

import pytest

from rebayes.atomic import check_writable, staging_directory, write_text_atomic


def test_staging_replaces_the_directory_and_keeps_named_entries(tmp_path):
    target = tmp_path / "reports"
    (target / "calibration").mkdir(parents=True)
    (target / "calibration" / "summary.md").write_text("sbc")
    (target / "old.html").write_text("old")
    with staging_directory(target, keep=("calibration",)) as staging:
        (staging / "index.html").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["calibration", "index.html"]
    assert (target / "calibration" / "summary.md").read_text() == "sbc"
    assert [p.name for p in tmp_path.iterdir()] == ["reports"]  # no staging or old copy left


def test_failure_inside_the_block_changes_nothing(tmp_path):
    target = tmp_path / "reports"
    target.mkdir()
    (target / "index.html").write_text("old")
    with pytest.raises(RuntimeError), staging_directory(target) as staging:
        (staging / "index.html").write_text("half")
        raise RuntimeError("fit failed")
    assert (target / "index.html").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["reports"]


def test_write_text_atomic_and_unwritable_places(tmp_path):
    path = tmp_path / "a" / "b.md"
    write_text_atomic(path, "x")
    assert path.read_text() == "x"
    assert [p.name for p in path.parent.iterdir()] == ["b.md"]
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError, match="cannot write output"):
        check_writable(blocker / "out")
