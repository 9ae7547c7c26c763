import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")  # headless, as the command sets it

ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = Path(__file__).resolve().parent / "data"

HEADER = (
    "study,year,stratum,timing,placebo,events_treat,n_treat,events_control,n_control,"
    "confidence,source"
)


@pytest.fixture
def write_csv(tmp_path):
    """Write CSV text to tmp_path/trials.csv and return the path."""

    def _write(text: str, name: str = "t.csv") -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return _write


@pytest.fixture(scope="session", autouse=True)
def _private_fit_cache(tmp_path_factory):
    """Keep test fits out of the repository's .cache (and away from a developer's fits)."""
    import os

    old = os.environ.get("REBAYES_CACHE")
    os.environ["REBAYES_CACHE"] = str(tmp_path_factory.mktemp("fit-cache"))
    yield
    if old is None:
        os.environ.pop("REBAYES_CACHE", None)
    else:
        os.environ["REBAYES_CACHE"] = old
