"""The report: every file and link exists, every page renders in headless Chromium (a
screenshot of each, kept for a person to look at), failures leave the previous report in place."""

import json
import os
import re
import shutil
import subprocess
from html import unescape
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from conftest import TEST_DATA
from rebayes.bayes.settings import SamplerSettings
from rebayes.errors import RebayesError
from rebayes.report.build import build_report

QUICK = SamplerSettings(draws=300, tune=300, chains=2, min_ess=0)


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "reports"
    # Model scripts given explicitly (as --models does): copies of the IVIG scripts. RSA type
    # is beyond the exact record (a trial's strata differ in their covariates), so the
    # report (engine auto) mixes an exact and a NUTS analysis.
    models = TEST_DATA / "shipped_scripts" / "ivig_rsa"
    build_report(
        out,
        "ivig_rsa",
        scripts=[models / "overall.py", models / "rsa_type.py"],
        priors=["weakly_informative", "skeptical"],
        settings=QUICK,
        progress=False,
        log=lambda _: None,
    )
    return out


@pytest.fixture(scope="module")
def bcg_report_dir(tmp_path_factory):
    """The whole report of metafor's BCG data: every default analysis, influence, tools."""
    out = tmp_path_factory.mktemp("bcg") / "report"
    build_report(
        out,
        TEST_DATA / "bcg",
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
        "rsa_type.html",
        "audit.html",
        "audit.md",
        "frequentist.html",
        "frequentist.md",
        "SUMMARY.md",
        "results.json",
        "figures/overall_forest.png",
        "figures/rsa_type_forest.png",
    ):
        assert (report_dir / name).is_file(), name
    results = json.loads((report_dir / "results.json").read_text())
    assert set(results["analyses"]) == {"overall", "rsa_type"}
    assert set(results["analyses"]["rsa_type"]["priors"]) == {"weakly_informative", "skeptical"}


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
    page = (report_dir / "rsa_type.html").read_text(encoding="utf-8")
    for item in ("seed", "data hash", "pymc", "nutpie", "arviz-stats", "Model", "Priors"):
        assert item in page
    index = (report_dir / "index.html").read_text(encoding="utf-8")
    assert "overall_rr" in index and "differs" in index
    summary = (report_dir / "SUMMARY.md").read_text(encoding="utf-8")
    assert "P(any benefit, RR > 1)" in summary


def test_index_leads_with_what_varies_and_states_the_control_risk(report_dir):
    index = unescape((report_dir / "index.html").read_text(encoding="utf-8"))
    summary = (report_dir / "SUMMARY.md").read_text(encoding="utf-8")
    # IVIG's trial reports: control arms 146/266 in all, median trial risk 0.5352 (its 10
    # trials' control risks, by hand from trials.csv); RSA type analyses the 7 trials with
    # primary or secondary strata (median 0.5455): one control risk per analysis, each named.
    said = ("stated per analysis: at a control risk of 53.5%, the median of the 10 trials' "
            "control arms (overall); at a control risk of 54.5%, the median of the 7 trials' "
            "control arms (rsa type)")
    assert said in index and said in summary
    # What varies comes before the results, and so does the multiplicity sentence.
    assert index.index("What varies") < index.index("What each analysis says")
    assert "Brok et al. 2008, J Clin Epidemiol 61:763-9" in index
    assert "Ioannidis & Trikalinos 2005" in index
    assert summary.index("## What varies") < summary.index("## What each analysis says")
    assert re.search(r"\d+ posterior probabilities \(across 2 analyses", summary)
    page = unescape((report_dir / "overall.html").read_text(encoding="utf-8"))
    assert "stated at a control risk of 53.5%, the median of the 10 trials' control" in page


@pytest.mark.slow
def test_bcg_report_flags_the_largest_trial(bcg_report_dir):
    index = (bcg_report_dir / "index.html").read_text(encoding="utf-8")
    page = (bcg_report_dir / "overall.html").read_text(encoding="utf-8")
    for text in (index, page):
        assert "Conflict in the evidence:" in text and "TPT Madras" in text
    assert "the largest trial, TPT Madras" in (bcg_report_dir / "SUMMARY.md").read_text(
        encoding="utf-8")


def test_decision_tools_follow_the_engine_of_the_overall_fit(report_dir):
    # The report's default engine (auto) answers IVIG's overall analysis exactly: its
    # cumulative steps and the next trial's updates are exact too, and the page says so.
    page = unescape((report_dir / "overall.html").read_text(encoding="utf-8"))
    for title in ("Absolute effects (GRADE summary of findings)",
                  "Cumulative meta-analysis by year", "Prior-space map"):
        assert f"{title} (exact engine: no Monte Carlo error)" in page, title
    # The plan simulates trials: each update is exact, the simulation is not.
    assert ("The next trial: what would it settle? (exact engine for each update; the "
            "simulated trials carry Monte Carlo error)") in page
    # One P(benefit) under the default prior on the page: the record's, the absolute
    # effects' and the prior map's (exact: 0.93646 for IVIG's overall analysis).
    assert "P(benefit) = 0.936." in page and "weakly informative 0.936" in page
    results = json.loads((report_dir / "results.json").read_text(encoding="utf-8"))
    assert results["analyses"]["overall"]["priors"]["weakly_informative"]["engine"] == "exact"
    assert results["analyses"]["rsa_type"]["priors"]["weakly_informative"]["engine"] == "nuts"


def test_bayes_factor_notes_say_how_each_was_computed(report_dir):
    overall = unescape((report_dir / "overall.html").read_text(encoding="utf-8"))
    nuts = unescape((report_dir / "rsa_type.html").read_text(encoding="utf-8"))
    # Exact fits: the posterior density at d = 0 is exact too, so no Monte Carlo interval.
    assert "none (exact)" in overall
    assert "the prior's and the posterior's densities at the null are both exact" in overall
    assert "a kernel estimate with its Monte Carlo interval" not in overall
    assert "the posterior's a kernel estimate with its Monte Carlo interval" in nuts
    assert "none (exact)" not in nuts


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


def _chromium() -> str | None:
    """Debian's chromium, which `.ci/run` installs (tests never install software)."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _cjk_font() -> bool:
    """Whether a font with Chinese glyphs is installed (`.ci/run` installs WenQuanYi Zen Hei)."""
    try:
        out = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True,
                             text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return False
    return bool(out.strip())


@pytest.mark.browser
def test_cjk_citation_has_a_font_named_in_the_page(report_dir):
    # The citation holds the journal's Chinese name; without a CJK font it renders as boxes.
    if not _cjk_font():
        pytest.skip("no CJK font installed (.ci/run installs fonts-wqy-zenhei)")
    page = (report_dir / "index.html").read_text(encoding="utf-8")
    assert "临床医学进展" in page and "WenQuanYi Zen Hei" in page


class _VisibleText(HTMLParser):
    """The text a reader sees (no style), and the image sources, of one page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []
        self.images: list[str] = []
        self._style = False

    def handle_starttag(self, tag, attrs):
        self._style = tag == "style"
        if tag == "img":
            self.images.append(dict(attrs)["src"])

    def handle_endtag(self, tag):
        self._style = False

    def handle_data(self, data):
        if not self._style:
            self.text.append(data)


SHOT_WIDTH, SHOT_HEIGHT = 1280, 32000  # taller than any page: one PNG holds the whole page


def _screenshot(chromium: str, page: Path, shot: Path, profile: Path) -> np.ndarray:
    """Screenshot a whole page; save it cropped at the page's end and return its pixels."""
    from matplotlib.image import imread, imsave

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
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={SHOT_WIDTH},{SHOT_HEIGHT}",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    pixels = imread(shot)[..., :3]
    assert pixels.shape == (SHOT_HEIGHT, SHOT_WIDTH, 3), page.name
    inked = np.nonzero((pixels < 0.98).any(axis=(1, 2)))[0]
    end = int(inked.max()) + 40
    assert end < SHOT_HEIGHT, f"{page.name} is longer than the {SHOT_HEIGHT} px window"
    imsave(shot, pixels[:end])
    return pixels[:end]


@pytest.mark.browser
@pytest.mark.parametrize(
    "report", [pytest.param("bcg_report_dir", marks=pytest.mark.slow, id="bcg"),
               pytest.param("report_dir", id="ivig_rsa")]
)
def test_every_page_renders_in_headless_chromium(report, request, tmp_path):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    _cjk_font()
    report_dir = request.getfixturevalue(report)
    pages = sorted(report_dir.glob("*.html"))
    assert {"index.html", "frequentist.html", "overall.html"} <= {p.name for p in pages}
    shots = tmp_path / "screenshots" / request.node.callspec.id
    shots.mkdir(parents=True)
    for page in pages:
        seen = _VisibleText()
        seen.feed(page.read_text(encoding="utf-8"))
        text = "".join(seen.text)
        # Escaped markup would show as literal tags or entities in the text a reader sees.
        assert not re.search(r"</?(?:p|td|tr|table|div|a|img|figure|h\d|ul|li|code)\b", text), (
            page.name)
        assert not re.search(r"&(?:lt|gt|amp|quot|#\d+);", text), page.name
        if page.name not in ("frequentist.html", "audit.html"):
            assert seen.images, f"{page.name} shows no figure"
        for src in seen.images:
            assert (report_dir / src).stat().st_size > 5000, f"{page.name}: {src}"
        shot = shots / f"{page.stem}.png"
        pixels = _screenshot(chromium, page, shot, tmp_path / "profile")
        assert shot.stat().st_size > 20_000, page.name
        # Not blank: a dark-blue navigation bar (the stylesheet applied) over text and tables.
        assert pixels.shape[0] > 600, page.name
        assert pixels.std() > 0.05, page.name
        nav = pixels[5, 5]
        assert nav[2] > nav[0] + 0.2, page.name
    # Kept for a person to look at: under pytest's tmp_path, and in $REBAYES_SCREENSHOTS.
    if keep := os.environ.get("REBAYES_SCREENSHOTS"):
        shots = Path(shutil.copytree(shots, Path(keep) / shots.name, dirs_exist_ok=True))
    print(f"screenshots of {len(pages)} pages: {shots}")


def test_ctrl_c_during_a_report_stops_at_once_and_leaves_no_output(tmp_path):
    """The fits sample in a background thread: Ctrl-C must not wait for it, and the
    directory being written must not stay half-written."""
    import signal
    import sys
    import time

    out = tmp_path / "report"
    process = subprocess.Popen(
        [sys.executable, "-m", "rebayes", "report", "--data", str(TEST_DATA / "bcg"),
         "--output", str(out)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "REBAYES_CACHE": str(tmp_path / "cache")},
        # A shell running this in the background would pass SIGINT on as ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert process.stderr is not None
    lines = []
    for line in process.stderr:  # the background thread is sampling once this is printed
        lines.append(line)
        if line.startswith("fit: overall"):
            break
    process.send_signal(signal.SIGINT)
    sent = time.monotonic()
    rest = process.stderr.read()
    code = process.wait(timeout=60)
    assert time.monotonic() - sent < 10
    assert code == 130
    assert rest.strip().splitlines()[-1] == "rebayes report: interrupted"
    assert "Traceback" not in rest
    assert not out.exists()
