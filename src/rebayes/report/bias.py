"""The report's section "Is the evidence distorted?" (the bias analysis), as one hook.

:func:`bias_section` is the builder's one call: it returns a :class:`BiasSection` whose
``html`` the index page includes (``section_bias.html``), whose ``markdown`` lines go into
``SUMMARY.md`` and whose ``record`` goes into ``results.json`` under ``bias``. The analysis
(:func:`rebayes.tools.bias.bias_analysis`, a few seconds of numpy) runs in the report's
background thread while the fits sample; its figure is drawn in the main thread when the
section is first read. Both are kept in the derived-results cache
(:mod:`rebayes.store.derived`, kind ``"bias"`` of the one key rule
:func:`rebayes.store.keys.content_key`) under a key of the analysed rows and the direction,
the versions of numpy, scipy, pandas and matplotlib and the source of the modules that
compute the section, so a report from cached fits reads them back instead.
"""

from __future__ import annotations

from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from markupsafe import Markup

from rebayes.errors import RebayesError
from rebayes.report.html import Cell, figure, render, table
from rebayes.store.derived import load_derived, store_derived
from rebayes.store.keys import stable_hash

if TYPE_CHECKING:
    import pandas as pd

    from rebayes.report.ahead import Ahead
    from rebayes.tools.bias import BiasAnalysis

__all__ = ["BiasSection", "bias_section"]

FIGURE = "funnel.png"
# What the section is kept under (rebayes.store.keys.KINDS).
_KIND = "bias"


def _key(trials: pd.DataFrame) -> str:
    """Everything the section depends on but the code and libraries (the cache keys those)."""
    from rebayes.data.schema import schema_of

    schema = schema_of(trials)
    return stable_hash({
        "rows": trials.attrs.get("data_hash", ""),
        "measure": schema.measure,
        "direction": [schema.higher_is_better, schema.direction_declared, schema.outcome,
                      schema.treatment, schema.control],
    })


def _safe_analysis(trials: pd.DataFrame) -> BiasAnalysis | str:
    """Return the analysis, or the one-line reason it cannot run (too few studies...)."""
    from rebayes.tools.bias import bias_analysis

    try:
        return bias_analysis(trials)
    except RebayesError as exc:
        return str(exc)


@dataclass
class BiasSection:
    """The section's parts; computed (or read from the cache) when first used.

    Attributes
    ----------
    html : markupsafe.Markup
        The section for the index page (empty when the analysis could not run).
    markdown : list of str
        Lines for ``SUMMARY.md``.
    record : dict or None
        ``results.json``'s ``bias`` entry.
    """

    figures: Path
    key: str
    names: dict[str, Any]
    job: Future[Any] | None = None
    background: Ahead | None = field(default=None, repr=False)
    stored: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def _parts(self) -> dict[str, Any]:
        if self.stored:
            parts = self.stored
        else:
            assert self.job is not None and self.background is not None
            analysis = self.background.take(self.job)
            parts = _render(analysis)
            store_derived(self.key, self.names, {"bias_section": parts}, _KIND)
        if parts.get("png"):
            (self.figures / FIGURE).write_bytes(parts["png"])
        return parts

    @property
    def html(self) -> Markup:
        """The section's HTML."""
        return Markup(self._parts["html"])

    @property
    def markdown(self) -> list[str]:
        """The section's lines for ``SUMMARY.md``."""
        return list(self._parts["markdown"])

    @property
    def record(self) -> dict[str, Any] | None:
        """The analysis' JSON record (None when it could not run)."""
        return self._parts["record"]

    def __bool__(self) -> bool:
        return bool(self._parts["html"])


def _png(fig: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=130)
    return buffer.getvalue()


def _render(analysis: BiasAnalysis | str) -> dict[str, Any]:
    """Return the section's HTML, markdown lines, record and figure bytes."""
    if isinstance(analysis, str):
        line = f"Not analysed: {analysis}."
        html = render("section_bias.html", skipped=line)
        return {"html": str(html), "markdown": ["## Is the evidence distorted?", "", line, ""],
                "record": None, "png": b""}
    frame = analysis.to_dataframe()
    m = analysis.measure

    def number(value: Any, digits: str) -> Any:
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        return Cell(format(value, digits), "num")

    rows = [
        (r["method"], number(r["statistic"], ".3g"), number(r["p"], ".3f"),
         "" if r[f"adjusted {m}"] is None or np.isnan(r[f"adjusted {m}"]) else
         Cell(f"{r[f'adjusted {m}']:.2f} ({r['ci_low']:.2f}-{r['ci_high']:.2f})", "num"),
         r["note"])
        for r in frame.to_dict("records")
    ]
    methods = table(("method", "statistic", "p", f"adjusted {m} (95%)", "note"), rows)
    models = None
    bfs = ""
    if analysis.bma is not None:
        b = analysis.bma
        models = table(
            ("model", "prior probability", "posterior probability", "log marginal likelihood",
             f"{m} (median)"),
            [(r["model"], r["prior_probability"], round(r["posterior_probability"], 3),
              round(r["log_marginal_likelihood"], 3), round(r["estimate"], 2))
             for r in b.models_table()])
        bfs = ", ".join(f"{c} {b.inclusion_bf(c):.3g}" for c in
                        ("effect", "heterogeneity", "bias", "PET", "PEESE", "selection"))
    html = render(
        "section_bias.html",
        skipped=None,
        heading=analysis.heading(),
        warnings=list(analysis.warnings),
        funnel=figure(f"figures/{FIGURE}",
                      "Contour-enhanced funnel plot: studies (filled), trim-and-fill's "
                      "imputed studies (open), the random-effects and trim-and-fill "
                      "estimates; shading: each study's own two-sided p value."),
        methods=methods,
        verdict=analysis.summary(),
        models=models,
        bfs=bfs,
        priors=analysis.bma.priors.source if analysis.bma else "",
        likelihood=analysis.bma.likelihood_note if analysis.bma else "",
    )
    markdown = analysis.markdown(figure=f"figures/{FIGURE}").replace(
        "# Is the evidence distorted?", "## Is the evidence distorted?", 1).replace(
        "\n## Robust Bayesian", "\n### Robust Bayesian")
    return {"html": str(html), "markdown": [*markdown.splitlines(), ""],
            "record": analysis.to_dict(), "png": _png(analysis.plot())}


def bias_section(trials: pd.DataFrame, figures: Path,
                 background: Ahead | None = None) -> BiasSection:
    """Start the report's bias section: read it from the cache, or compute it.

    Parameters
    ----------
    trials : pandas.DataFrame
        The report's analysed table (its first data variant).
    figures : Path
        The report's (staging) ``figures/`` folder; ``funnel.png`` is written there.
    background : Ahead, optional
        Where the analysis runs meanwhile (the report's refits thread); without it, it runs
        when the section is first read.

    Returns
    -------
    BiasSection
    """
    key = _key(trials)
    names = {"section": "bias", "dataset": str(trials.attrs.get("dataset", ""))}
    stored = load_derived(key, names, _KIND).get("bias_section")
    if isinstance(stored, dict) and {"html", "markdown", "record", "png"} <= set(stored):
        return BiasSection(figures, key, names, stored=stored)
    if background is None:
        parts = _render(_safe_analysis(trials))
        store_derived(key, names, {"bias_section": parts}, _KIND)
        return BiasSection(figures, key, names, stored=parts)
    job = background.submit(_safe_analysis, trials, slot=False)
    return BiasSection(figures, key, names, job=job, background=background)
