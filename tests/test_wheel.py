"""The built wheel works on its own: datasets (with their declared analyses) and templates ship.

Builds a wheel from a copy of the source tree (the build leaves nothing in the tree),
installs it with its dependencies into a fresh virtual environment (pip takes them from the
local wheel cache: about 35 s here), then runs ``rebayes report`` from an empty directory.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import IVIG_ANALYSES

ROOT = Path(__file__).resolve().parents[1]
# Written by tools while tests run, not by rebayes.
TOOL_FOLDERS = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis"}
# Suffixes of what a run writes besides the report: cached fits and temporary files.
OUTPUTS = {".nc", ".tmp"}


def source_files() -> set[Path]:
    out = set()
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if d not in TOOL_FOLDERS]
        out.update(Path(folder, f).relative_to(ROOT) for f in files)
    return out


def run(args, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{args[:4]} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.slow
def test_the_installed_wheel_writes_a_report_from_an_empty_directory(tmp_path):
    before = source_files()
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ]
    )
    (wheel,) = (tmp_path / "dist").glob("rebayes-*.whl")

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", str(venv)])  # the same base interpreter as .venv
    python, rebayes = venv / "bin" / "python", venv / "bin" / "rebayes"
    run([str(python), "-m", "pip", "install", "-q", str(wheel)])

    empty = tmp_path / "empty"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["REBAYES_CACHE"] = str(tmp_path / "cache")
    imported = run(
        [str(python), "-c", "import rebayes; print(rebayes.__file__)"], cwd=empty, env=env
    ).stdout.strip()
    assert Path(imported).is_relative_to(venv), imported  # the wheel's, not the source tree's

    run(
        [
            str(rebayes),
            "report",
            "--data",
            "ivig_rsa",
            "--output",
            "X",
            "--prior",
            "weakly_informative",
        ],
        cwd=empty,
        env=env,
        timeout=900,
    )
    assert (empty / "X" / "index.html").is_file()
    # Every analysis the shipped dataset.toml declares has its page.
    assert {p.name for p in (empty / "X").glob("*.html")} >= {f"{a}.html" for a in IVIG_ANALYSES}
    assert (empty / "X" / ".rebayes-report.json").is_file()
    assert [p.name for p in empty.iterdir()] == ["X"]
    assert any((tmp_path / "cache" / "fits").glob("*.nc"))  # fits went to REBAYES_CACHE
    # Nothing the run wrote (report files, fits, temporary files) landed in the source tree.
    # Other files may appear there meanwhile (people edit it while tests run): not compared.
    written = {p.name for p in (empty / "X").rglob("*") if p.is_file()}
    landed = {p for p in source_files() - before if p.name in written or p.suffix in OUTPUTS}
    assert landed == set()
