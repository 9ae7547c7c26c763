"""Small, dependency-free HTML building blocks for the offline report (no CDN, no JS)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from html import escape

__all__ = [
    "Cell",
    "figure",
    "is_indicator",
    "markdown_table",
    "page",
    "reader_label",
    "readable",
    "table",
]

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, "Noto Sans CJK SC",
  "WenQuanYi Zen Hei", "Microsoft YaHei", "PingFang SC", sans-serif; margin: 0;
       color: #1d1d1f; line-height: 1.45; }
main { max-width: 1180px; margin: 0 auto; padding: 1.2rem 1.6rem 3rem; }
nav { background: #1f4e79; padding: 0.55rem 1.6rem; }
nav a { color: #fff; margin-right: 1.1rem; text-decoration: none; font-size: 0.92rem; }
nav a:hover { text-decoration: underline; }
h1 { font-size: 1.55rem; margin: 0.8rem 0 0.3rem; }
h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid #ddd; padding-bottom: 0.2rem; }
h3 { font-size: 1.02rem; margin-top: 1.4rem; }
table { border-collapse: collapse; margin: 0.6rem 0 1rem; font-size: 0.86rem; }
th, td { border: 1px solid #d0d0d0; padding: 0.25rem 0.5rem; text-align: left;
         vertical-align: top; }
th { background: #f2f4f7; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.pass { background: #e6f4ea; color: #1e6b34; font-weight: 600; }
td.fail { background: #fde2e1; color: #b3261e; font-weight: 700; }
td.differs { color: #b3261e; font-weight: 600; }
td.reproduced { color: #1e6b34; font-weight: 600; }
.key { background: #f5f8fc; border-left: 4px solid #1f4e79; padding: 0.6rem 0.9rem;
       margin: 0.8rem 0; }
.warn { background: #fff4e5; border-left: 4px solid #e8a33d; padding: 0.6rem 0.9rem; }
.failbox { background: #fde2e1; border-left: 4px solid #b3261e; padding: 0.6rem 0.9rem; }
figure { margin: 1rem 0 1.6rem; }
.headline { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
.headline figure { flex: 1 1 480px; margin: 0.4rem 0 1rem; }
figure img { max-width: 100%; border: 1px solid #e3e3e3; }
figcaption { font-size: 0.85rem; color: #555; margin-top: 0.3rem; }
code, .formula { font-family: "SFMono-Regular", Menlo, Consolas, monospace; font-size: 0.86rem; }
.formula { background: #f7f7f9; padding: 0.7rem 0.9rem; white-space: pre; overflow-x: auto;
           line-height: 1.6; }
small, .muted { color: #666; }
"""


class Cell:
    """A table cell with a CSS class (``num``, ``pass``, ``fail``...) and optional raw HTML."""

    def __init__(self, text: object, css: str = "", raw: bool = False) -> None:
        self.text = text
        self.css = css
        self.raw = raw

    def render(self) -> str:
        """Return the ``<td>`` element."""
        body = str(self.text) if self.raw else escape(str(self.text))
        css = f' class="{self.css}"' if self.css else ""
        return f"<td{css}>{body}</td>"


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Return an HTML table; plain values are escaped, :class:`Cell` values keep their class.

    Numbers (int/float) are right-aligned.
    """
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for value in row:
            if isinstance(value, Cell):
                cells.append(value.render())
            elif isinstance(value, int | float):
                cells.append(Cell(value, "num").render())
            else:
                cells.append(Cell(value).render())
        body.append(f"<tr>{''.join(cells)}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def figure(src: str, caption: str, alt: str = "") -> str:
    """Return a ``<figure>`` with an image (relative path) and a caption."""
    return (
        f'<figure><img src="{escape(src)}" alt="{escape(alt or caption)}">'
        f"<figcaption>{escape(caption)}</figcaption></figure>"
    )


def page(
    title: str, body: str, nav: Sequence[tuple[str, str]] = (), footer: str = ""
) -> str:
    """Return a complete HTML document with the report's stylesheet inline.

    ``footer`` (plain text) is printed small under the body: the report puts the package
    versions and the data hash on every page.
    """
    foot = ""
    if footer:
        foot = f'<footer><p class="muted"><small>{escape(footer)}</small></p></footer>'
    links = "".join(f'<a href="{escape(href)}">{escape(label)}</a>' for label, href in nav)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{escape(title)}</title><style>{CSS}</style></head>"
        f"<body><nav>{links}</nav><main>{body}{foot}</main></body></html>\n"
    )


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """Return a GitHub-flavoured markdown table (``|`` in cells escaped)."""

    def cell(value: object) -> str:
        text = value.text if isinstance(value, Cell) else value
        return str(text).replace("|", "\\|")

    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(out)


_LABELS = {
    "pooled_rr": "pooled RR",
    "pooled_or": "pooled OR",
    "predictive_rr": "predictive RR (new trial)",
    "risk_difference": "risk difference",
    "p_benefit": "P(benefit) indicator",
    "p_benefit_beyond_1_1": "P(benefit beyond RR 1.1) indicator",
    "p_benefit_beyond_1_25": "P(benefit beyond RR 1.25) indicator",
    "typical_control_risk": "typical control risk",
    "tau": "τ",
    "d": "d (pooled log effect)",
}
_INDEXED = {
    "subgroup_rr": "RR in {}",
    "p_subgroup_benefit": "P(benefit in {}) indicator",
    "subgroup_ratio": "RR ratio {}",
    "ratio": "RR ratio {}",
    "p_ratio_gt_1": "P(RR ratio {} > 1) indicator",
    "trial_rr": "RR in {}",
    "beta": "β[{}]",
    "d": "d[{}]",
}
_TOKEN = re.compile(r"\b([a-z_][a-z0-9_]*)(?:\[([^\]]+)\])?")


def reader_label(name: str) -> str:
    """Return the reader-facing name of a reported quantity (``subgroup_rr[a]`` -> ``RR in a``).

    Names that are not internal quantity names come back unchanged.
    """
    match = _TOKEN.fullmatch(name.strip())
    if not match:
        return name
    base, index = match.groups()
    if index is not None and base in _INDEXED:
        return _INDEXED[base].format(index.replace("_", " "))
    if index is None and base in _LABELS:
        return _LABELS[base]
    return name


def readable(text: str) -> str:
    """Replace the internal quantity names inside a sentence with reader-facing ones."""

    def swap(match: re.Match[str]) -> str:
        whole = match.group(0)
        label = reader_label(whole)
        # A bare word that merely looks like a name (e.g. "d" inside prose) stays unless indexed.
        if label == whole or (match.group(2) is None and match.group(1) in ("d", "tau")):
            return whole
        return label

    return _TOKEN.sub(swap, text)


def is_indicator(name: str) -> bool:
    """Whether a reported quantity is a 0/1 indicator (its interval says nothing)."""
    return name.startswith("p_")
