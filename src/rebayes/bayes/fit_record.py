"""The JSON record of one fit under one prior set: the one builder every output uses.

``rebayes fit --json`` (per prior), the report's ``results.json`` (per analysis and prior) and
``rebayes batch``'s per-task JSON (its ``fits``) all hold this record, whichever engine
computed it (NUTS draws or the exact engine's quadrature). Batch adds the convergence gates
it summarises; the task's own fields (id, totals, RevMan's estimate) sit around the records.
Nothing here needs xarray or PyMC.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rebayes.bayes.coefficients import Coefficient
    from rebayes.bayes.records import FitSummary

__all__ = ["fit_record"]


def fit_record(
    summary: FitSummary,
    coefficients: Iterable[Coefficient],
    p_pooled_or_gt: Mapping[str, float],
    gates: Mapping[str, bool] | None = None,
) -> dict[str, Any]:
    """Return the JSON record of one fit.

    Parameters
    ----------
    summary : FitSummary
        The fit's record (:meth:`rebayes.bayes.fit.Fit.summary` or
        :func:`rebayes.bayes.exact_fit.exact_summary`); its fields come first.
    coefficients : iterable of Coefficient
        The meta-regression coefficients (:func:`rebayes.bayes.coefficients.coefficients`;
        none for the exact engine, whose analyses have no covariates).
    p_pooled_or_gt : mapping of str to float
        P(pooled OR > t) per threshold
        (:func:`rebayes.bayes.coefficients.pooled_or_probabilities`,
        :func:`rebayes.bayes.exact_fit.exact_or_probabilities`).
    gates : mapping of str to bool, optional
        Convergence gates (:attr:`rebayes.checks.convergence.DiagnosticReport.gates`; empty
        for the exact engine, which has no draws), added with ``gates_ok`` when given.

    Returns
    -------
    dict
        ``summary.to_dict()``, then ``coefficients`` (name -> record), ``p_pooled_or_gt`` and,
        with ``gates``, ``gates`` and ``gates_ok``.

    Examples
    --------
    >>> from rebayes.bayes.fit_record import fit_record
    >>> record = fit_record(summary, [], {"1": 0.98})  # doctest: +SKIP
    >>> record["p_pooled_or_gt"]  # doctest: +SKIP
    {'1': 0.98}
    """
    record = {
        **summary.to_dict(),
        "coefficients": {c.name: c.to_dict() for c in coefficients},
        "p_pooled_or_gt": dict(p_pooled_or_gt),
    }
    if gates is not None:
        record["gates"] = dict(gates)
        record["gates_ok"] = all(gates.values())
    return record
