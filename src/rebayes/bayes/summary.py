"""A fit's summary record (:class:`rebayes.bayes.quantities.FitSummary`) with its verdict.

Above :mod:`rebayes.checks.convergence`, which builds on the quantities the summary reports:
the one place both meet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rebayes.bayes.quantities import summary_of
from rebayes.bayes.records import FitSummary
from rebayes.checks.convergence import DiagnosticReport, diagnose

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["summarize"]


def summarize(tree: xr.DataTree, report: DiagnosticReport | None = None) -> FitSummary:
    """Summarise a fit (a DataTree from :func:`rebayes.fit`).

    Parameters
    ----------
    tree : xarray.DataTree
    report : DiagnosticReport, optional
        The fit's :func:`rebayes.checks.convergence.diagnose` result, if already computed
        (else it is computed here).

    Returns
    -------
    FitSummary
    """
    return summary_of(tree, report if report is not None else diagnose(tree))
