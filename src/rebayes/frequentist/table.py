"""RevMan's analysis table of a frequentist result, as a DataFrame.

What RevMan prints under a forest plot: one row per study (events and totals per arm, weight,
effect and CI), a subtotal per subgroup and the total, with the heterogeneity and overall
effect statistics on the pooled rows. :meth:`MetaResult.to_dataframe` and
:meth:`SubgroupAnalysis.to_dataframe` return it; :func:`rebayes.plots.forest.revman_forest`
draws it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import pandas as pd

from rebayes.data.trials import COUNT_COLUMNS

if TYPE_CHECKING:
    # The results call this module (their to_dataframe()); it reads them without importing.
    from rebayes.frequentist.pooling import MetaResult, SubgroupAnalysis

__all__ = ["TABLE_COLUMNS", "analysis_table"]


def analysis_table(result: MetaResult | SubgroupAnalysis) -> pd.DataFrame:
    """Return RevMan's analysis table of a result.

    Parameters
    ----------
    result : MetaResult or SubgroupAnalysis

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TABLE_COLUMNS`: ``kind`` (``study``, ``not estimable``, ``subtotal`` or
        ``total``), ``study``, the four count columns (as analysed: complements under
        ``event="non_events"``), ``weight`` (percent), ``estimate``, ``ci_low``, ``ci_high``
        (natural scale), and on pooled rows ``z``, ``p``, ``i2`` (percent) and ``tau2``. A
        split analysis has a ``subgroup`` column first; its study weights are those of the
        overall analysis and a subtotal's weight is their sum, as RevMan prints them; a
        subgroup with no estimable study has a subtotal row without numbers.
    """
    if not hasattr(result, "subgroups"):  # one analysis, not a split one
        one = cast("MetaResult", result)
        return pd.concat(
            [_study_rows(one), *_not_estimable_rows(one), _pooled_row(one, "total", "Total")],
            ignore_index=True,
        ).reindex(columns=TABLE_COLUMNS)
    result = cast("SubgroupAnalysis", result)
    if result.by is None:
        return analysis_table(result.overall)
    weights = _weights_by_study(result.overall)
    parts = []
    for name, res in result.subgroups.items():
        studies = _study_rows(res, weights)
        block = pd.concat(
            [
                studies,
                *_not_estimable_rows(res),
                _pooled_row(res, "subtotal", f"Subtotal: {name}", studies["weight"].sum()),
            ],
            ignore_index=True,
        )
        parts.append(block.assign(subgroup=name))
    parts += [
        pd.DataFrame({"kind": ["subtotal"], "subgroup": [name],
                      "study": [f"Subtotal: {name} (not estimable)"]})
        for name in result.not_estimable
    ]
    parts.append(_pooled_row(result.overall, "total", "Total"))
    table = pd.concat(parts, ignore_index=True)
    return table.reindex(columns=["subgroup", *TABLE_COLUMNS])


#: Columns of RevMan's analysis table (:func:`analysis_table`).
TABLE_COLUMNS = (
    "kind", "study", *COUNT_COLUMNS, "weight", "estimate", "ci_low", "ci_high",
    "z", "p", "i2", "tau2",
)


def _weights_by_study(result: MetaResult) -> dict[tuple[Any, ...], float]:
    """Study weight (percent) keyed by name and counts: names alone may repeat."""
    s = result.studies
    keys = zip(s["study"], *(s[c] for c in COUNT_COLUMNS), strict=True)
    return dict(zip(keys, s["weight"], strict=True))


def _study_rows(
    result: MetaResult, weights: Mapping[tuple[Any, ...], float] | None = None
) -> pd.DataFrame:
    """Return the study rows of RevMan's table; ``weights``: another (overall) analysis'."""
    s = result.studies
    rows = pd.DataFrame({"kind": "study", "study": s["study"].astype(str)})
    for column in COUNT_COLUMNS:
        rows[column] = s[column].to_numpy()
    rows["weight"] = s["weight"].to_numpy(float)
    if weights is not None:
        keys = zip(s["study"], *(s[c] for c in COUNT_COLUMNS), strict=True)
        rows["weight"] = [weights[key] for key in keys]
    rows["estimate"] = s["effect"].to_numpy(float)
    rows["ci_low"] = s["ci_low"].to_numpy(float)
    rows["ci_high"] = s["ci_high"].to_numpy(float)
    return rows


def _not_estimable_rows(result: MetaResult) -> list[pd.DataFrame]:
    """Return RevMan's "Not estimable" rows (none: no frame, so concat keeps dtypes)."""
    if not result.excluded:
        return []
    return [pd.DataFrame({"kind": "not estimable", "study": list(result.excluded)})]


def _pooled_row(result: MetaResult, kind: str, label: str, weight: float = 100.0) -> pd.DataFrame:
    """Return a total or subtotal row of RevMan's table."""
    return pd.DataFrame(
        {
            "kind": [kind],
            "study": [label],
            **{c: [getattr(result, c)] for c in COUNT_COLUMNS},
            "weight": [float(weight)],
            "estimate": [result.estimate],
            "ci_low": [result.ci_low],
            "ci_high": [result.ci_high],
            "z": [result.z],
            "p": [result.p],
            "i2": [result.i2],
            "tau2": [result.tau2],
        }
    )
