"""The package type-checks (it ships py.typed, so its annotations are part of its API)."""

import shutil
import subprocess
import sys

import pytest

from conftest import ROOT


def test_mypy_passes_on_src():
    if shutil.which("mypy") is None and not (ROOT / ".venv/bin/mypy").exists():
        pytest.skip("mypy is not installed (pip install -e '.[dev]')")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "src/rebayes"], cwd=ROOT, capture_output=True, text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert (ROOT / "src/rebayes/py.typed").is_file()
