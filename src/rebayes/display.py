"""How a result shows itself in a notebook: a one-line ``repr`` and an HTML table.

metafor and bayesmeta print a result as a few readable numbers; statsmodels'
``CombineResults`` gives the table behind them with ``summary_frame()``. Every rebayes result
(:class:`~rebayes.frequentist.pooling.SubgroupAnalysis`,
:class:`~rebayes.frequentist.pooling.MetaResult`, :class:`~rebayes.bayes.fit.Fit`,
:class:`~rebayes.sensitivity.comparison.Comparison`, :class:`~rebayes.audit.paper.Audit`,
:class:`~rebayes.sensitivity.influence.Influence`) supplies two things, its one line
(``_short``) and its table (``to_dataframe``); :class:`ResultDisplay` turns them into
``repr`` and Jupyter's ``_repr_html_``. The rest of what a result offers is the protocol
:class:`rebayes.results.Result`.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jinja2
    import pandas as pd

__all__ = ["ResultDisplay", "short_repr"]

#: Longest ``repr`` body before it is cut: one line of a notebook cell's output.
REPR_WIDTH = 160

# Autoescaped: study names, prior names and labels come from users' files.
_TEMPLATE = """\
<div class="rebayes-result">
<p><strong>{{ name }}</strong> {{ heading }}</p>
{{ table }}
</div>"""


def short_repr(name: str, text: str, width: int = REPR_WIDTH) -> str:
    """Return ``name(text)`` on one line, ``text`` cut with an ellipsis beyond ``width``.

    Parameters
    ----------
    name : str
        The class name.
    text : str
        What the result says in a line; newlines and runs of spaces become one space.
    width : int
        Longest body kept.

    Returns
    -------
    str

    Examples
    --------
    >>> short_repr("Fit", "overall,   pooled RR 0.49")
    'Fit(overall, pooled RR 0.49)'
    """
    body = " ".join(text.split())
    if len(body) > width:
        body = body[: width - 1] + "…"
    return f"{name}({body})"


@cache
def _template() -> jinja2.Template:
    # jinja2 loads only when a notebook asks for HTML: `import rebayes` stays light.
    import jinja2

    return jinja2.Environment(autoescape=True).from_string(_TEMPLATE)


def _number(value: float) -> str:
    # Four significant digits: enough for an RR, a probability or a weight in a glance table.
    return f"{value:.4g}"


class ResultDisplay:
    """Mixin: ``repr`` and ``_repr_html_`` from a result's ``_short()`` and ``to_dataframe()``.

    A dataclass using it is declared with ``repr=False``, so that the generated ``__repr__``
    (every field, the whole DataTree or table) does not replace the short one.
    """

    __slots__ = ()

    def _short(self) -> str:
        """Return what the result says in one line (subclasses)."""
        raise NotImplementedError

    def to_dataframe(self) -> pd.DataFrame:
        """Return the result as a table (subclasses)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return short_repr(type(self).__name__, self._short())

    def _repr_html_(self) -> str:
        """HTML for Jupyter: the one line as a heading over :meth:`to_dataframe`."""
        import markupsafe
        import pandas as pd

        frame = self.to_dataframe()
        table = frame.to_html(
            escape=True,
            na_rep="",
            float_format=_number,
            index=not isinstance(frame.index, pd.RangeIndex),
            border=0,
        )
        context: dict[str, Any] = {
            "name": type(self).__name__,
            "heading": " ".join(self._short().split()),
            # pandas escaped every cell and header above.
            "table": markupsafe.Markup(table),
        }
        return _template().render(**context)
