"""What every rebayes result offers: the :class:`Result` protocol.

metafor and bayesmeta give every result ``print``, ``summary`` and ``plot``; statsmodels'
``CombineResults`` gives a table (``summary_frame()``) and a figure (``plot_forest()``). A
rebayes result gives the same six things under the same names, whichever analysis made it:

- ``repr(result)``: one line (what a notebook shows, :func:`rebayes.display.short_repr`);
- ``result._repr_html_()``: that line over the table, for Jupyter;
- ``result.summary()``: what the result finds, in words;
- ``result.to_dataframe()``: the result as a table (numbers, not formatted text);
- ``result.to_dict()``: the JSON record (:func:`rebayes.store.keys.dumps` writes it);
- ``result.plot()``: its figure (a matplotlib ``Figure``; drawn by :mod:`rebayes.plots`).

``print(result)`` gives the whole result as text. One exception: :meth:`Fit.summary
<rebayes.bayes.fit.Fit.summary>` returns the fit's :class:`~rebayes.bayes.records.FitSummary`
record, whose ``str`` is that text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from rebayes.bayes.records import FitSummary

__all__ = ["Result"]


@runtime_checkable
class Result(Protocol):
    """A rebayes result: a line, a summary, a table, a JSON record and a figure.

    Implemented by :class:`~rebayes.bayes.fit.Fit`,
    :class:`~rebayes.frequentist.pooling.MetaResult`,
    :class:`~rebayes.frequentist.pooling.SubgroupAnalysis`,
    :class:`~rebayes.sensitivity.comparison.Comparison`,
    :class:`~rebayes.sensitivity.influence.Influence`, :class:`~rebayes.audit.paper.Audit`,
    :class:`~rebayes.tools.absolute.AbsoluteEffects`,
    :class:`~rebayes.tools.bias.BiasAnalysis`,
    :class:`~rebayes.tools.credibility.Credibility`,
    :class:`~rebayes.tools.cumulative.CumulativeAnalysis`,
    :class:`~rebayes.tools.planning.TrialPlan` and :class:`~rebayes.tools.priormap.PriorMap`.
    :class:`rebayes.display.ResultDisplay` gives the ``repr``, ``_repr_html_`` and a default
    ``summary`` from a result's one line.

    Examples
    --------
    >>> import rebayes as rb
    >>> from rebayes.results import Result
    >>> revman = rb.analyze(rb.load_trials("bcg"))  # doctest: +SKIP
    >>> isinstance(revman, Result)  # doctest: +SKIP
    True
    """

    def __repr__(self) -> str:
        """Return one line: the class name and what the result says."""
        ...

    def _repr_html_(self) -> str:
        """Return Jupyter's HTML: the one line over :meth:`to_dataframe`."""
        ...

    def summary(self) -> str | FitSummary:
        """Return what the result finds, in words (a Fit: its FitSummary record)."""
        ...

    def to_dataframe(self) -> pd.DataFrame:
        """Return the result as a table."""
        ...

    def to_dict(self) -> Any:
        """Return the JSON record (a dict, or a list of row records)."""
        ...

    def plot(self) -> Figure:
        """Return the result's figure."""
        ...
