"""Atomic writes: a failure leaves the previous version; a report never touches foreign files."""

import json
import os
import subprocess
import sys

import pytest

from rebayes.atomic import (
    MANIFEST_FORMAT,
    REPORT_MANIFEST,
    check_output_directory,
    staging_directory,
    write_text_atomic,
)
from rebayes.folders import OutputDirectoryError, check_writable


def build(target, files):
    """A fast fake report builder: write ``files`` ({relative path: text}) via staging."""
    with staging_directory(target) as staging:
        for relative, text in files.items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)


def tree(directory):
    """Every file under ``directory`` as {relative path: text}."""
    return {
        p.relative_to(directory).as_posix(): p.read_text()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def manifest(directory):
    return json.loads((directory / REPORT_MANIFEST).read_text())


def test_a_new_directory_gets_the_report_and_its_manifest(tmp_path):
    target = tmp_path / "a" / "reports"
    build(target, {"index.html": "new", "figures/f.png": "png"})
    assert manifest(target)["format"] == MANIFEST_FORMAT
    assert manifest(target)["files"] == ["figures/f.png", "index.html"]
    assert set(tree(target)) == {"index.html", "figures/f.png", REPORT_MANIFEST}


def test_user_files_survive_a_rebuild(tmp_path):
    target = tmp_path / "reports"
    build(target, {"index.html": "v1", "figures/f.png": "png1"})
    (target / "notes.txt").write_text("mine")
    (target / "calibration").mkdir()
    (target / "calibration" / "summary.md").write_text("sbc")
    (target / "figures" / "mine.png").write_text("my figure")
    build(target, {"index.html": "v2", "figures/f.png": "png2"})
    assert tree(target) == {
        "index.html": "v2",
        "figures/f.png": "png2",
        "figures/mine.png": "my figure",
        "notes.txt": "mine",
        "calibration/summary.md": "sbc",
        REPORT_MANIFEST: (target / REPORT_MANIFEST).read_text(),
    }
    assert [p.name for p in tmp_path.iterdir()] == ["reports"]  # no staging copy left


def test_a_non_empty_directory_without_manifest_is_refused_untouched(tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "thesis.tex").write_text("years of work")
    with pytest.raises(OutputDirectoryError, match="not empty and holds no rebayes report"):
        build(target, {"index.html": "new"})
    assert tree(target) == {"thesis.tex": "years of work"}
    assert [p.name for p in target.iterdir()] == ["thesis.tex"]


def test_files_dropped_from_the_report_are_removed_only_when_listed(tmp_path):
    target = tmp_path / "reports"
    build(target, {"index.html": "v1", "old.html": "old", "figures/gone.png": "g"})
    (target / "unlisted.html").write_text("user")
    build(target, {"index.html": "v2"})
    assert set(tree(target)) == {"index.html", "unlisted.html", REPORT_MANIFEST}
    assert not (target / "figures").exists()  # emptied folder of the old report removed
    assert manifest(target)["files"] == ["index.html"]


def test_a_failing_build_leaves_the_old_report_intact(tmp_path):
    target = tmp_path / "reports"
    build(target, {"index.html": "v1", "figures/f.png": "png1"})
    before = tree(target)
    with pytest.raises(RuntimeError), staging_directory(target) as staging:
        (staging / "index.html").write_text("half")
        raise RuntimeError("fit failed")
    assert tree(target) == before
    assert sorted(p.name for p in target.iterdir()) == [REPORT_MANIFEST, "figures", "index.html"]


def test_a_failing_build_into_a_new_directory_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), staging_directory(tmp_path / "new") as staging:
        (staging / "index.html").write_text("half")
        raise RuntimeError("fit failed")
    assert list(tmp_path.iterdir()) == []


def test_a_report_file_colliding_with_a_user_file_is_refused_before_any_change(tmp_path):
    target = tmp_path / "reports"
    build(target, {"index.html": "v1"})
    (target / "audit.html").write_text("the user's own")
    with pytest.raises(OutputDirectoryError, match="audit.html was not written by rebayes"):
        build(target, {"index.html": "v2", "audit.html": "report's"})
    assert tree(target)["index.html"] == "v1"
    assert tree(target)["audit.html"] == "the user's own"
    assert manifest(target)["files"] == ["index.html"]


@pytest.mark.parametrize(
    "payload",
    [
        "not json",
        json.dumps({"format": "something-else/1", "files": []}),
        json.dumps({"format": MANIFEST_FORMAT, "files": ["../outside.txt"]}),
        json.dumps({"format": MANIFEST_FORMAT, "files": ["/etc/passwd"]}),
        # Only normalised relative paths: no "a//b", "./a", "a/", NUL, Windows separators,
        # and nothing in a staging folder.
        json.dumps({"format": MANIFEST_FORMAT, "files": ["figures//f.png"]}),
        json.dumps({"format": MANIFEST_FORMAT, "files": ["./index.html"]}),
        json.dumps({"format": MANIFEST_FORMAT, "files": ["figures/"]}),
        json.dumps({"format": MANIFEST_FORMAT, "files": ["index.html\u0000.png"]}),
        json.dumps({"format": MANIFEST_FORMAT, "files": ["..\\outside.txt"]}),
        json.dumps({"format": MANIFEST_FORMAT, "files": [".rebayes-staging.x/f"]}),
        json.dumps({"format": MANIFEST_FORMAT, "files": [""]}),
    ],
)
def test_a_manifest_not_ours_is_refused(tmp_path, payload):
    target = tmp_path / "reports"
    target.mkdir()
    (target / REPORT_MANIFEST).write_text(payload)
    (tmp_path / "outside.txt").write_text("keep")
    with pytest.raises(OutputDirectoryError, match=REPORT_MANIFEST.replace(".", r"\.")):
        check_output_directory(target)
    assert (tmp_path / "outside.txt").read_text() == "keep"


def test_a_file_as_output_is_refused(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputDirectoryError) as raised:
        check_output_directory(tmp_path / "f")
    assert str(raised.value) == f"output {tmp_path / 'f'} is not a directory"


def test_an_empty_directory_or_a_leftover_staging_folder_is_fine(tmp_path):
    assert check_output_directory(tmp_path) == ()
    (tmp_path / ".rebayes-staging.abc123").mkdir()  # left by a killed run
    build(tmp_path, {"index.html": "new"})
    assert (tmp_path / "index.html").read_text() == "new"


def test_write_text_atomic_and_unwritable_places(tmp_path):
    path = tmp_path / "a" / "b.md"
    write_text_atomic(path, "x")
    assert path.read_text() == "x"
    assert [p.name for p in path.parent.iterdir()] == ["b.md"]
    blocker = tmp_path / "file"
    blocker.write_text("")
    # Not "File exists" (what mkdir says): the message names the file in the way.
    for target in (blocker / "out", blocker / "sub" / "out.md"):
        with pytest.raises(OutputDirectoryError) as raised:
            check_writable(target)
        assert str(raised.value) == f"cannot write output {target}: {blocker} is not a directory"
    with pytest.raises(OutputDirectoryError) as raised:
        check_output_directory(blocker / "sub")
    assert str(raised.value) == (
        f"cannot write output {blocker / 'sub'}: {blocker} is not a directory"
    )
    assert blocker.read_text() == "" and sorted(p.name for p in tmp_path.iterdir()) == ["a", "file"]


def test_checking_an_output_creates_nothing(tmp_path):
    # The check runs before minutes of fitting; a bad dataset found after it leaves no folder.
    assert check_output_directory(tmp_path / "new" / "deeper" / "report") == ()
    check_writable(tmp_path / "other" / "audit.md")
    assert list(tmp_path.iterdir()) == []


def test_report_cli_refuses_the_current_directory_when_it_holds_a_file(tmp_path):
    """`rebayes report --output .` in a directory with a user's file: one line, exit 2."""
    (tmp_path / "notes.txt").write_text("mine")
    env = {**os.environ, "REBAYES_CACHE": str(tmp_path / "cache")}
    env.pop("PYTHONPATH", None)
    result = subprocess.run(
        [sys.executable, "-m", "rebayes", "report", "--output", ".", "--prior", "skeptical"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1, result.stderr
    assert "not empty and holds no rebayes report" in result.stderr
    assert str(tmp_path.resolve()) in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]
    assert (tmp_path / "notes.txt").read_text() == "mine"


# --- symbolic links: a forged manifest never deletes elsewhere --------------------------------


def forged(tmp_path, files, link="link"):
    """A report folder whose manifest lists ``files``, with ``link`` -> a folder beside it."""
    other = tmp_path / "other"
    other.mkdir()
    (other / "important.txt").write_text("keep")
    target = tmp_path / "reports"
    target.mkdir()
    (target / link).symlink_to(other)
    (target / REPORT_MANIFEST).write_text(json.dumps({"format": MANIFEST_FORMAT,
                                                      "files": files}))
    return target


def everything(root):
    """Every path under ``root`` (links listed, not followed) with the target of each link."""
    return {
        p.relative_to(root).as_posix(): os.readlink(p) if p.is_symlink() else
        (p.read_text() if p.is_file() else "/")
        for p in sorted(root.rglob("*"))
    }


def test_a_manifest_entry_behind_a_symlink_is_refused_and_nothing_deleted(tmp_path):
    # Before: a rebuild deleted other/important.txt through reports/link.
    target = forged(tmp_path, ["link/important.txt"])
    before = everything(tmp_path)
    with pytest.raises(OutputDirectoryError) as raised:
        build(target, {"index.html": "new"})
    assert str(raised.value) == (
        f"output directory {target}: {REPORT_MANIFEST} lists link/important.txt, and link is "
        "a symbolic link (rebayes writes none); refusing to write into it"
    )
    assert everything(tmp_path) == before


def test_a_manifest_entry_that_is_a_symlink_is_refused(tmp_path):
    target = forged(tmp_path, ["index.html"], link="index.html")
    before = everything(tmp_path)
    with pytest.raises(OutputDirectoryError, match="and index.html is a symbolic link"):
        build(target, {"figures/f.png": "png"})
    assert everything(tmp_path) == before


def test_the_manifest_itself_may_not_be_a_symlink(tmp_path):
    other = tmp_path / "other"
    build(other, {"index.html": "theirs"})
    target = tmp_path / "reports"
    target.mkdir()
    (target / REPORT_MANIFEST).symlink_to(other / REPORT_MANIFEST)
    (target / "index.html").symlink_to(other / "index.html")
    before = everything(tmp_path)
    with pytest.raises(OutputDirectoryError) as raised:
        build(target, {"audit.html": "new"})
    assert str(raised.value) == (
        f"output directory {target}: {REPORT_MANIFEST} is a symbolic link (rebayes writes "
        "none); refusing to write into it"
    )
    assert everything(tmp_path) == before


def test_a_report_file_is_never_written_through_a_symlinked_folder(tmp_path):
    # figures/ replaced by a link to another folder of the same directory: before, the new
    # figure went through it (the link resolved inside the output folder).
    target = tmp_path / "reports"
    build(target, {"index.html": "v1", "figures/f.png": "png1"})
    (target / "figures" / "f.png").unlink()
    (target / "figures").rmdir()
    (target / "mine").mkdir()
    (target / "figures").symlink_to(target / "mine")
    before = everything(tmp_path)
    with pytest.raises(OutputDirectoryError, match="and figures is a symbolic link"):
        build(target, {"index.html": "v2", "figures/f.png": "png2"})
    assert everything(tmp_path) == before


def test_the_output_folder_itself_may_be_a_symlink(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "reports").symlink_to(real)
    build(tmp_path / "reports", {"index.html": "v1", "old.html": "x"})
    build(tmp_path / "reports", {"index.html": "v2"})
    assert tree(real) == {"index.html": "v2", REPORT_MANIFEST: (real / REPORT_MANIFEST).read_text()}


# --- staging folders of killed runs ----------------------------------------------------------

KILLED = """
import os, signal, sys
from pathlib import Path
from rebayes.atomic import staging_directory
with staging_directory(Path(sys.argv[1])) as staging:
    (staging / "index.html").write_text("half")
    os.kill(os.getpid(), signal.SIGKILL)
"""


def staging_folders(target):
    return sorted(p.name for p in target.iterdir() if p.name.startswith(".rebayes-staging."))


def test_a_killed_reports_staging_folder_is_removed_by_the_next_report(tmp_path):
    target = tmp_path / "reports"
    build(target, {"index.html": "v1"})
    killed = subprocess.run([sys.executable, "-c", KILLED, str(target)], timeout=120)
    assert killed.returncode == -9
    assert len(staging_folders(target)) == 1  # what SIGKILL leaves: no cleanup ran
    build(target, {"index.html": "v2"})
    assert staging_folders(target) == []
    assert tree(target) == {"index.html": "v2", REPORT_MANIFEST: tree(target)[REPORT_MANIFEST]}


LIVE = """
import sys
from pathlib import Path
from rebayes.atomic import staging_directory
with staging_directory(Path(sys.argv[1])) as staging:
    (staging / "index.html").write_text("busy")
    print(staging.name, flush=True)
    sys.stdin.readline()
"""


def test_a_running_reports_staging_folder_and_foreign_ones_are_left_alone(tmp_path):
    target = tmp_path / "reports"
    build(target, {"index.html": "v1"})
    (target / ".rebayes-staging.no-owner").mkdir()  # no lock file: not provably ours
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "keep.txt").write_text("keep")
    (target / ".rebayes-staging.link").symlink_to(tmp_path / "elsewhere")
    live = subprocess.Popen([sys.executable, "-c", LIVE, str(target)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        running = live.stdout.readline().strip()
        build(target, {"index.html": "v2"})
        assert staging_folders(target) == sorted(
            [".rebayes-staging.link", ".rebayes-staging.no-owner", running]
        )
        assert (tmp_path / "elsewhere" / "keep.txt").read_text() == "keep"
    finally:
        live.communicate("\n", timeout=60)
    assert live.returncode == 0
