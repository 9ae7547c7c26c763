"""Assemble the re-analysis into ``reports/``: audit, frequentist tables, summary.

Everything is written into a staging directory that replaces ``reports/`` only when every
part succeeded (:func:`rebayes.atomic.staging_directory`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rebayes.atomic import staging_directory
from rebayes.data import load_dataset, load_trials, variant_combinations
from rebayes.paper import audit, audit_markdown
from rebayes.report_frequentist import frequentist_markdown

__all__ = ["build_report"]

DEFAULT_VARIANTS = ("published", "seed_fit")


def build_report(
    output: Path = Path("reports"),
    dataset: str = "ivig_rsa",
    variants: Sequence[str] = DEFAULT_VARIANTS,
) -> list[Path]:
    """Write the report files and return their paths (inside ``output``).

    Parameters
    ----------
    output : Path
        Directory to (re)create.
    dataset : str
        Dataset name or directory.
    variants : sequence of str
        Data variants for the frequentist tables; the first is the audit's.

    Returns
    -------
    list of Path
    """
    meta = load_dataset(dataset)
    citation = meta.meta.get("citation", {}).get("text", "")
    tables = {v: load_trials(dataset, v) for v in variants}
    rows = audit(dataset, variants[0])
    audit_md = audit_markdown(
        rows, variants[0], citation, n_variants=len(variant_combinations(meta))
    )
    files = {
        "audit.md": audit_md,
        "frequentist.md": frequentist_markdown(tables),
    }
    written = []
    with staging_directory(output) as staging:
        for name, text in files.items():
            (staging / name).write_text(text, encoding="utf-8")
            written.append(Path(output) / name)
    return written
