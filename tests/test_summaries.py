"""What is computed from a cached fit is kept beside it, keyed by fit, names and code."""

from pathlib import Path

import numpy as np
import pytest

import rebayes as rb
from rebayes.bayes import quantities
from rebayes.bayes import summary as summary_module
from rebayes.bayes.settings import SamplerSettings
from rebayes.checks import convergence
from rebayes.store import derived, keys
from rebayes.store.fits import flush_cache
from rebayes.store.paths import cache_info, summaries_dir

BCG = Path(__file__).resolve().parent / "data" / "bcg.csv"
QUICK = SamplerSettings(draws=200, tune=300, chains=2, min_ess=0)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REBAYES_CACHE", str(tmp_path / "cache"))


def _fit(name="bcg", title=""):
    return rb.fit(rb.AnalysisSpec(name=name, title=title, data=str(BCG)), "vague",
                  settings=QUICK)


def _refuse(*_args, **_kwargs):
    raise AssertionError("recomputed although it was stored")


def test_a_later_process_reads_the_summary_instead_of_computing_it(monkeypatch):
    first = _fit()
    flush_cache()
    summary, report = first.summary(), first.diagnostics()
    assert cache_info().summaries == 1
    # The stored numbers are those of the fit's draws: P(RR < 1) counted by hand.
    rr = quantities.pooled_rr(first.tree).values
    assert summary.p_rr_lt_1 == pytest.approx(float(np.mean(rr < 1)), abs=1e-12)

    again = _fit()  # a new Fit object, read from the fit cache, as a new process would
    assert again.from_cache and "_derived" not in again.__dict__
    assert not again.draws_loaded  # the draws are not read: nothing here needs them
    monkeypatch.setattr(convergence, "diagnose", _refuse)
    monkeypatch.setattr(summary_module, "summarize", _refuse)
    assert again.summary() == summary
    assert again.diagnostics().table.equals(report.table)
    # A result asked for the first time is computed once and added to the same file.
    assert again.derived("answer", lambda: 42) == 42
    assert _fit().derived("answer", _refuse) == 42
    assert cache_info().summaries == 1
    assert not again.draws_loaded
    np.testing.assert_array_equal(again.tree["posterior"]["d"], first.tree["posterior"]["d"])


def test_another_name_or_other_code_gets_its_own_entry(monkeypatch):
    fit = _fit()
    flush_cache()
    fit.summary()
    renamed = _fit(name="renamed", title="Same rows")
    assert renamed.from_cache and renamed.key == fit.key
    assert renamed.summary().analysis == "renamed"  # not the stored summary of "bcg"
    assert cache_info().summaries == 2
    names = {"analysis": "bcg"}
    old = derived.derived_key(fit.key, names)
    monkeypatch.setattr(keys, "code_digest", lambda modules, root=None: "other summary code")
    assert derived.derived_key(fit.key, names) != old


def test_an_unreadable_entry_is_computed_again():
    fit = _fit()
    flush_cache()
    expected = fit.summary().pooled_rr
    (path,) = summaries_dir().iterdir()
    path.write_bytes(b"not a pickle")
    assert _fit().summary().pooled_rr == expected


def test_an_unreadable_fit_file_is_sampled_again():
    fit = _fit()
    flush_cache()
    fit.path.write_bytes(b"not a fit")
    again = _fit()
    assert not again.from_cache
    np.testing.assert_array_equal(again.tree["posterior"]["d"], fit.tree["posterior"]["d"])


def test_a_fit_without_the_cache_writes_nothing():
    spec = rb.AnalysisSpec(name="bcg", data=str(BCG))
    rb.fit(spec, "vague", settings=QUICK, cache=False).summary()
    assert not summaries_dir().exists()


def test_per_draw_quantities_are_computed_once_per_tree_and_never_served_stale():
    tree = _fit().tree
    effect = quantities.pooled_effect(tree)
    assert quantities.pooled_effect(tree) is effect
    # New draws under the same tree object: computed afresh, and by the formula.
    tree["posterior"]["d"] = tree["posterior"]["d"] + 1.0
    moved = quantities.pooled_effect(tree)
    assert moved is not effect
    np.testing.assert_allclose(moved, effect + 1.0)


def test_a_released_fit_reads_the_same_draws_again():
    fit = _fit()
    draws = fit.tree["posterior"]["tau"].values.copy()
    fit.release()  # waits for the background write, then lets the draws go
    assert not fit.draws_loaded
    np.testing.assert_array_equal(fit.tree["posterior"]["tau"].values, draws)
    uncached = rb.fit(rb.AnalysisSpec(name="bcg", data=str(BCG)), "vague", settings=QUICK,
                      cache=False)
    uncached.release()  # nothing on disk to read back: kept
    assert uncached.draws_loaded


def test_a_figure_is_drawn_once_per_fit_and_copied_after(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rebayes.report.analysis import figure_png, save_fit_figure

    calls = []

    def draw(label="tau"):
        calls.append(label)
        fig, ax = plt.subplots()
        ax.hist(fit.tree["posterior"]["tau"].values.ravel(), bins=20)
        ax.set_title(label)
        return fig

    fit = _fit()
    flush_cache()
    out = tmp_path / "figures"
    out.mkdir()
    assert save_fit_figure(fit, draw, out, "tau.png") == "tau.png"
    drawn = (out / "tau.png").read_bytes()
    # The kept PNG is the figure as drawn: the same bytes as rendering it directly.
    assert drawn == figure_png(draw()) and drawn.startswith(b"\x89PNG")
    # A new Fit object (as in a later process) copies the PNG without drawing or reading draws.
    again = _fit()
    (out / "tau.png").unlink()
    save_fit_figure(again, _refuse, out, "tau.png")
    assert (out / "tau.png").read_bytes() == drawn and not again.draws_loaded
    # Other inputs (e.g. other fits shown beside this one): drawn afresh.
    save_fit_figure(again, lambda: draw("other"), out, "tau.png", inputs=["another fit"])
    assert calls == ["tau", "tau", "other"]
    assert (out / "tau.png").read_bytes() != drawn


def test_a_copy_of_the_data_elsewhere_reuses_what_is_kept(tmp_path, monkeypatch):
    fit = _fit()
    flush_cache()
    expected = fit.summary()
    copy = tmp_path / "elsewhere" / "bcg.csv"
    copy.parent.mkdir()
    copy.write_bytes(BCG.read_bytes())
    moved = rb.fit(rb.AnalysisSpec(name="bcg", title="", data=str(copy)), "vague", settings=QUICK)
    assert moved.from_cache and moved.key == fit.key
    monkeypatch.setattr(summary_module, "summarize", _refuse)
    monkeypatch.setattr(convergence, "diagnose", _refuse)
    assert moved.summary() == expected
    assert cache_info().summaries == 1
    # The tree still names the data where it was read from this time.
    assert str(copy) in moved.tree.attrs["spec_json"]
