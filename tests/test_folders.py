"""Output folders: which may be written, and removal that never follows a symbolic link."""

import os

import pytest

from rebayes.folders import (
    STAGING_OWNER,
    OutputDirectoryError,
    check_output_folder,
    remove_dead_staging,
    staging_folder,
    symlink_in,
    unlink_inside,
    unsafe_file_name,
)


@pytest.fixture
def outside(tmp_path):
    """A folder beside the output folder holding a file that must survive."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "important.txt").write_text("keep")
    return folder


def test_unlink_inside_removes_the_file_and_its_emptied_folders_only(tmp_path):
    root = tmp_path / "out"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "f.png").write_text("x")
    (root / "a" / "mine.txt").write_text("user")
    unlink_inside(root, "a/b/f.png")
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == [
        "a", "a/mine.txt"]
    unlink_inside(root, "a/b/f.png")  # already gone: nothing to do


def test_unlink_inside_never_deletes_through_a_linked_folder(tmp_path, outside):
    root = tmp_path / "out"
    root.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(OutputDirectoryError) as raised:
        unlink_inside(root, "link/important.txt")
    assert str(raised.value) == (
        f"output directory {root}: link/important.txt is or lies behind a symbolic link; "
        "refusing to remove it"
    )
    assert (outside / "important.txt").read_text() == "keep"


def test_unlink_inside_refuses_a_link_itself_and_leaves_what_is_not_a_file(tmp_path, outside):
    root = tmp_path / "out"
    root.mkdir()
    (root / "index.html").symlink_to(outside / "important.txt")
    with pytest.raises(OutputDirectoryError, match="refusing to remove it"):
        unlink_inside(root, "index.html")
    assert os.readlink(root / "index.html") == str(outside / "important.txt")
    assert (outside / "important.txt").read_text() == "keep"
    # A folder where a listed file was, or a file where a listed folder was: left alone.
    (root / "figures").mkdir()
    (root / "notes").write_text("mine")
    unlink_inside(root, "figures")
    unlink_inside(root, "notes/f.png")
    assert (root / "figures").is_dir() and (root / "notes").read_text() == "mine"


def test_symlink_in_names_the_first_link_on_the_path(tmp_path, outside):
    root = tmp_path / "out"
    (root / "a").mkdir(parents=True)
    (root / "a" / "link").symlink_to(outside)
    assert symlink_in(root, "a/link/important.txt") == "a/link"
    assert symlink_in(root, "a/b/c.txt") is None  # missing parts are not links
    assert symlink_in(root, "a") is None


def test_check_output_folder(tmp_path):
    folder = tmp_path / "out"
    assert check_output_folder(folder, "init") is False  # missing: fine, and not created
    assert not folder.exists()
    folder.mkdir()
    assert check_output_folder(folder, "init") is False  # empty
    (folder / ".marker").write_text("")
    assert check_output_folder(folder, "batch", ".marker") is True
    with pytest.raises(OutputDirectoryError) as raised:
        check_output_folder(folder, "init")
    assert str(raised.value) == (
        f"output directory {folder} is not empty; refusing to write into it: give an empty or "
        "new directory (rebayes init never overwrites)"
    )
    with pytest.raises(OutputDirectoryError) as raised:
        check_output_folder(folder, "report", ".other")
    assert str(raised.value) == (
        f"output directory {folder} is not empty and holds no rebayes report (no .other); "
        "refusing to write into it: give an empty or new directory"
    )


def test_a_staging_folder_is_locked_while_its_run_lives(tmp_path):
    with staging_folder(tmp_path, ".s.") as staging:
        assert (staging / STAGING_OWNER).is_file()
        assert remove_dead_staging(tmp_path, ".s.") == []  # our own lock: alive
        assert staging.is_dir()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("overall", None),
        ("age (years)", None),
        ("timing_within_type", None),
        ("../x", "it holds a path separator"),
        ("a\\b", "it holds a path separator"),
        ("/etc/x", "it holds a path separator"),
        ("..", "it starts with '.'"),
        (".rebayes-report", "it starts with '.'"),
        ("", "it is empty"),
        (" ", "it is empty"),
        ("a\nb", "it holds a control character"),
        ("a\x00b", "it holds a control character"),
        ("x" * 101, "it is longer than 100 characters"),
    ],
)
def test_unsafe_file_name(name, why):
    assert unsafe_file_name(name) == why
