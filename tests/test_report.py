"""The report: every file and link exists, the HTML renders in headless Chromium, failures
leave the previous report in place."""

import json
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import ROOT
from rebayes.bayes.sampling import SamplerSettings
from rebayes.errors import RebayesError
from rebayes.report.build import build_report

QUICK = SamplerSettings(draws=300, tune=300, chains=2, min_ess=0)


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "reports"
    models = ROOT / "src/rebayes/data/datasets/ivig_rsa/models"
    build_report(
        out,
        "ivig_rsa",
        scripts=[models / "overall.py", models / "timing.py"],
        priors=["weakly_informative", "skeptical"],
        settings=QUICK,
        progress=False,
        log=lambda _: None,
    )
    return out


def test_expected_files(report_dir):
    for name in (
        "index.html",
        "overall.html",
        "timing.html",
        "audit.html",
        "audit.md",
        "frequentist.html",
        "frequentist.md",
        "SUMMARY.md",
        "results.json",
        "figures/overall_forest.png",
        "figures/timing_forest.png",
    ):
        assert (report_dir / name).is_file(), name
    results = json.loads((report_dir / "results.json").read_text())
    assert set(results["analyses"]) == {"overall", "timing"}
    assert set(results["analyses"]["timing"]["priors"]) == {"weakly_informative", "skeptical"}


def test_every_link_and_figure_exists(report_dir):
    for html in report_dir.glob("*.html"):
        text = html.read_text(encoding="utf-8")
        for target in re.findall(r'(?:src|href)="([^"#]+)"', text):
            assert not target.startswith(("http:", "https:", "//")), f"{html.name}: {target}"
            assert (report_dir / target).is_file(), f"{html.name} links to missing {target}"


def test_every_page_records_versions_and_data_hash(report_dir):
    import rebayes as rb

    data_hash = rb.load_trials("ivig_rsa").attrs["data_hash"]
    for html in report_dir.glob("*.html"):
        text = html.read_text(encoding="utf-8")
        assert data_hash in text, html.name
        assert "pymc" in text and "nutpie" in text, html.name


def test_pages_carry_reproducibility_and_the_paper_findings(report_dir):
    page = (report_dir / "timing.html").read_text(encoding="utf-8")
    for item in ("seed", "data hash", "pymc", "nutpie", "arviz-stats", "Model", "Priors"):
        assert item in page
    index = (report_dir / "index.html").read_text(encoding="utf-8")
    assert "overall_rr" in index and "differs" in index
    summary = (report_dir / "SUMMARY.md").read_text(encoding="utf-8")
    assert "P(any benefit, RR > 1)" in summary


def test_failure_leaves_the_previous_report(report_dir, tmp_path):
    before = {p: p.read_bytes() for p in report_dir.rglob("*") if p.is_file()}
    bad = tmp_path / "broken.py"
    bad.write_text("SPEC = 3\n")
    with pytest.raises(RebayesError):
        build_report(
            report_dir,
            "ivig_rsa",
            scripts=[bad],
            priors=["weakly_informative"],
            settings=QUICK,
            progress=False,
            log=lambda _: None,
        )
    after = {p: p.read_bytes() for p in report_dir.rglob("*") if p.is_file()}
    assert after == before
    assert not [p for p in report_dir.parent.iterdir() if ".staging." in p.name]


APT_ENV = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/bin:/bin:/usr/sbin:/sbin"}


def _apt(*args: str) -> bool:
    try:
        subprocess.run(
            ["apt-get", *args], check=True, capture_output=True, timeout=900, env=APT_ENV
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return True


def _chromium() -> str | None:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    # The test set-up installs Debian's chromium when it can (root, registry reachable); a
    # fresh machine has no package lists yet, hence the update before the second try.
    if not _apt("install", "-y", "-qq", "chromium"):
        _apt("update", "-qq")
        _apt("install", "-y", "-qq", "chromium")
    return shutil.which("chromium")


def _cjk_font() -> bool:
    """Whether a font with Chinese glyphs is installed (Debian's WenQuanYi Zen Hei if not)."""

    def present() -> bool:
        try:
            out = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True,
                                 text=True, timeout=60).stdout
        except (OSError, subprocess.SubprocessError):
            return False
        return bool(out.strip())

    if present():
        return True
    if not _apt("install", "-y", "-qq", "fonts-wqy-zenhei"):
        _apt("update", "-qq")
        _apt("install", "-y", "-qq", "fonts-wqy-zenhei")
    return present()


@pytest.mark.browser
def test_cjk_citation_has_a_font_named_in_the_page(report_dir):
    # The citation holds the journal's Chinese name; without a CJK font it renders as boxes.
    if not _cjk_font():
        pytest.skip("no CJK font could be installed here")
    page = (report_dir / "index.html").read_text(encoding="utf-8")
    assert "临床医学进展" in page and "WenQuanYi Zen Hei" in page


@pytest.mark.browser
def test_html_renders_in_headless_chromium(report_dir, tmp_path):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("Debian's chromium is not installed and could not be installed here")
    _cjk_font()
    shot = tmp_path / "index.png"
    subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=1280,1600",
            f"--screenshot={shot}",
            (report_dir / "timing.html").as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[0] == 1600 and pixels.shape[1] == 1280
    # A rendered page is not blank: the navigation bar is dark blue, the body mostly white.
    assert pixels[..., :3].std() > 0.05
    nav = pixels[5, 5, :3]
    assert nav[2] > nav[0]  # blue bar on top: the stylesheet was applied
    # Kept for a person to look at (outside the source tree).
    keep = Path(os.environ.get("REBAYES_SCREENSHOTS", tempfile.gettempdir()))
    keep.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, keep / "rebayes_report_screenshot.png")
