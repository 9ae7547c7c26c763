"""Tables as text: markdown pipe tables and terminal tables rendered by pandas."""

import math

import pandas as pd
import pytest

from conftest import pipe_rows
from rebayes.report.html import Cell, markdown_table
from rebayes.tables import MISSING, frame, markdown, text

HEADERS = ["analysis", "P(RR > 1)", "note"]
ROWS = [("timing | pre", "0.500", "a|b"), ("overall", "0.987", None)]


def test_markdown_escapes_pipes_and_keeps_digits():
    md = markdown(frame(HEADERS, ROWS))
    assert pipe_rows(md) == [
        ["analysis", "P(RR > 1)", "note"],
        [r"timing \| pre", "0.500", r"a\|b"],  # "0.500", not tabulate's 0.5
        ["overall", "0.987", MISSING],
    ]
    # Every line has the same number of unescaped borders: 3 columns, 4 pipes.
    assert {line.replace(r"\|", "").count("|") for line in md.splitlines()} == {4}


def test_markdown_alignment_row():
    lines = markdown(frame(HEADERS, ROWS), align="lrc").splitlines()
    assert len(lines) == 4
    cells = [c.strip() for c in lines[1].strip("|").split("|")]
    assert cells[0].startswith(":") and not cells[0].endswith(":")  # left
    assert cells[1].endswith(":") and not cells[1].startswith(":")  # right
    assert cells[2].startswith(":") and cells[2].endswith(":")  # centre
    assert all(set(c) <= {":", "-"} for c in cells)
    # Default: every column left.
    default = markdown(frame(HEADERS, ROWS)).splitlines()[1]
    assert [c.strip()[0] for c in default.strip("|").split("|")] == [":"] * 3


def test_markdown_rejects_an_align_of_the_wrong_length():
    with pytest.raises(ValueError, match="2 letters for 3 columns"):
        markdown(frame(HEADERS, ROWS), align="lr")


def test_missing_values_show_a_dash():
    table = pd.DataFrame({"a": ["x", None], "b": [1.5, math.nan], "c": [pd.NA, "y"]})
    assert pipe_rows(markdown(table))[1:] == [["x", "1.5", MISSING], [MISSING, MISSING, "y"]]
    assert MISSING in text(table) and "nan" not in text(table).lower()


def test_repeated_headers_are_kept():
    md = markdown(
        frame(
            ["coverage", "expected", "coverage", "expected"],
            [("0.51", "0.43-0.57", "0.90", "0.86-0.94")],
        )
    )
    assert pipe_rows(md)[0] == ["coverage", "expected", "coverage", "expected"]


def test_text_aligns_columns_without_borders():
    out = text(
        frame(["prior", "P"], [("vague", "0.981"), ("weakly_informative", "0.97")]),
        align="lr",
        indent="  ",
    )
    lines = out.splitlines()
    assert [line.split() for line in lines] == [
        ["prior", "P"],
        ["vague", "0.981"],
        ["weakly_informative", "0.97"],
    ]
    assert all(line.startswith("  ") and line == line.rstrip() for line in lines)
    # Left column starts in one place, right column ends in one place.
    assert {line.index(line.split()[0]) for line in lines} == {2}
    assert len({len(line) for line in lines}) == 1
    assert "|" not in out


def test_text_without_header():
    out = text(frame(["gate", "result"], [("R-hat <= 1.01", "pass")]), header=False)
    assert out.split() == ["R-hat", "<=", "1.01", "pass"]


def test_markdown_table_reads_cells_text_and_right_aligns_numbers():
    rows = [(Cell("a|b"), 0.25, Cell("0.49", "num fail")), ("c", 3, Cell("1.2", "num"))]
    md = markdown_table(("id", "value", "RR"), rows)
    assert pipe_rows(md) == [["id", "value", "RR"], [r"a\|b", "0.25", "0.49"], ["c", "3", "1.2"]]
    # Numbers (the HTML table's "num" cells) right, text left.
    alignment = md.splitlines()[1]
    assert [c.strip()[-1] for c in alignment.strip("|").split("|")] == ["-", ":", ":"]
