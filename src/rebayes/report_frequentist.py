"""The frequentist (RevMan 5.3) tables of the re-analysis, as markdown."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pandas as pd

from rebayes.frequentist import MetaResult, SubgroupAnalysis, analyze

__all__ = ["STANDARD_ANALYSES", "FrequentistAnalysis", "frequentist_markdown"]


@dataclass(frozen=True)
class FrequentistAnalysis:
    """A named RevMan analysis: optional filters and an optional subgroup column."""

    title: str
    by: str | None = None
    where: Mapping[str, str] = field(default_factory=dict)


# The paper's analyses (figures 2-6), in its order.
STANDARD_ANALYSES: tuple[FrequentistAnalysis, ...] = (
    FrequentistAnalysis("Overall (Figure 2)"),
    FrequentistAnalysis("Primary vs secondary RSA (Figure 3)", by="stratum"),
    FrequentistAnalysis("Pre- vs post-conception (Figure 4)", by="timing"),
    FrequentistAnalysis(
        "Primary RSA: pre vs post (Figure 5)", by="timing", where={"stratum": "primary"}
    ),
    FrequentistAnalysis(
        "Secondary RSA: pre vs post (Figure 6)", by="timing", where={"stratum": "secondary"}
    ),
    FrequentistAnalysis("Placebo type (sensitivity)", by="placebo"),
)


def _row(label: str, res: MetaResult) -> str:
    return (
        f"| {label} | {res.k} | {res.events_treat}/{res.n_treat} | "
        f"{res.events_control}/{res.n_control} | {res.estimate:.2f} "
        f"[{res.ci_low:.2f}, {res.ci_high:.2f}] | {res.p:.3f} | {res.i2:.0f}% |"
    )


def _section(title: str, result: SubgroupAnalysis) -> list[str]:
    lines = [
        f"### {title}",
        "",
        "| | k | IVIG | placebo | RR [95% CI] | P | I² |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, res in result.subgroups.items():
        lines.append(_row(name, res))
    lines.append(_row("**Total**", result.overall))
    lines.append("")
    if result.test is not None:
        lines.append(f"{result.test}.")
    if result.left_out:
        lines.append(f"Left out (no published {result.by} split): {', '.join(result.left_out)}.")
    return [*lines, ""]


def frequentist_markdown(
    tables: Mapping[str, pd.DataFrame],
    analyses: Sequence[FrequentistAnalysis] = STANDARD_ANALYSES,
    method: str = "MH",
) -> str:
    """Render RevMan-style tables for several data variants.

    Parameters
    ----------
    tables : mapping of str to pandas.DataFrame
        Variant name -> trial table.
    analyses : sequence of FrequentistAnalysis
    method : str
        ``MH`` (the paper's method), ``IV`` or ``DL``.

    Returns
    -------
    str
    """
    out = [
        "# Frequentist re-analysis (RevMan 5.3 formulas)",
        "",
        f"{method} risk ratios of live birth, IVIG vs placebo (RR > 1 favours IVIG); "
        "fixed effect, Greenland-Robins variance, Q centred on the MH estimate. "
        "Trials are summed over strata unless the analysis splits by RSA type.",
        "",
    ]
    for variant, trials in tables.items():
        out += [f"## Data variant `{variant}`", ""]
        for analysis in analyses:
            result = analyze(trials, by=analysis.by, where=analysis.where, method=method)
            out += _section(analysis.title, result)
    return "\n".join(out)
