import os
import re
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")  # headless, as the command sets it

ROOT = Path(__file__).resolve().parents[1]
TEST_DATA = Path(__file__).resolve().parent / "data"
#: The shipped IVIG dataset's analyses, declared in its dataset.toml.
IVIG_ANALYSES = (
    "overall", "rsa_type", "timing", "timing_within_type", "placebo", "normal_approximation",
)


def ivig_spec(name: str):
    """Return one of the shipped IVIG dataset's analyses (an AnalysisSpec)."""
    from rebayes.bayes.analyses import resolve_spec

    return resolve_spec(name, "ivig_rsa")


def pipe_rows(markdown: str) -> list[list[str]]:
    """The cells of every row of the pipe tables in ``markdown`` (alignment rows left out).

    Splits on unescaped ``|`` and strips the padding, so that tests read content, not layout.
    """
    rows = []
    for line in markdown.splitlines():
        line = line.strip()
        if not line.startswith("|"):
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if all(re.fullmatch(r":?-+:?", c) for c in cells):
            continue
        rows.append(cells)
    return rows


def without_progress(stderr: str) -> str:
    """``stderr`` without the progress lines of long phases (rebayes.progress).

    They come only when a phase outlasts 10 s, which on a loaded machine even a small
    table's compilation may: tests that read stderr exactly read it without them.
    """
    return "".join(line for line in stderr.splitlines(keepends=True)
                   if not re.match(r"rebayes \w+: \[\d+ s\] ", line))


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


@pytest.fixture(autouse=True)
def _private_config(tmp_path_factory, monkeypatch):
    """Keep trust records (rebayes trust) out of the user's config directory; none per test."""
    monkeypatch.setenv("REBAYES_CONFIG", str(tmp_path_factory.mktemp("config")))
