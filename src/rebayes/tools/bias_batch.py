"""The bias analysis in ``rebayes batch``: one record per meta-analysis, flat columns.

:func:`bias_record` runs :func:`rebayes.tools.bias.bias_analysis` on a task's table and keeps
its JSON record (never raising for bad data); :func:`batch_columns` flattens a record into
:data:`BATCH_COLUMNS`, the columns ``summary.csv`` gains. ``rebayes.batch`` calls these two
and nothing else of the bias analysis.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rebayes.errors import AnalysisError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BATCH_COLUMNS", "batch_columns", "bias_record"]


#: Columns of ``rebayes batch``'s summary from the bias analysis (:func:`batch_columns`).
BATCH_COLUMNS: tuple[str, ...] = (
    "bias_measure", "egger_p", "egger_rma_p", "begg_p", "trimfill_k0", "trimfill_estimate",
    "selection_estimate", "bma_bf_effect", "bma_bf_heterogeneity", "bma_bf_bias",
    "bma_estimate", "bma_ci_low", "bma_ci_high",
)


def batch_columns(record: Mapping[str, Any] | None) -> dict[str, Any]:
    """Flatten a bias analysis' JSON record into :data:`BATCH_COLUMNS` (missing: None)."""
    out: dict[str, Any] = dict.fromkeys(BATCH_COLUMNS)
    if not record or "error" in record:
        return out

    def get(*keys: str) -> Any:
        value: Any = record
        for key in keys:
            if not isinstance(value, Mapping) or value.get(key) is None:
                return None
            value = value[key]
        return value

    out.update(
        bias_measure=record.get("measure"), egger_p=get("egger", "p"),
        egger_rma_p=get("egger_rma", "p"), begg_p=get("begg", "p"),
        trimfill_k0=get("trim_and_fill", "k0"),
        trimfill_estimate=get("trim_and_fill", "estimate"),
        selection_estimate=get("selection", "estimate"),
        bma_bf_effect=get("bma", "inclusion_bf", "effect"),
        bma_bf_heterogeneity=get("bma", "inclusion_bf", "heterogeneity"),
        bma_bf_bias=get("bma", "inclusion_bf", "bias"),
        bma_estimate=get("bma", "averaged", "estimate"),
        bma_ci_low=get("bma", "averaged", "ci_low"),
        bma_ci_high=get("bma", "averaged", "ci_high"),
    )
    return out


def bias_record(trials: pd.DataFrame) -> dict[str, Any]:
    """Return the bias analysis' JSON record for ``rebayes batch``; never raises for bad data.

    A table the analysis cannot take (fewer than 3 estimable studies) gives
    ``{"error": message}``; :func:`batch_columns` then leaves every column empty.
    """
    from rebayes.tools.bias import bias_analysis

    try:
        record = bias_analysis(trials).to_dict()
    except AnalysisError as exc:
        return {"error": str(exc)}
    record.pop("studies", None)  # the batch keeps the summary, not the table
    return record
