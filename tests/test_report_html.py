"""The report's building blocks: reader-facing names, and templates that escape what they show."""

import pandas as pd

from rebayes.report.html import (
    Cell,
    figure,
    is_indicator,
    readable,
    reader_label,
    render,
    render_page,
    table,
    tool_section,
)


def test_internal_names_become_reader_names():
    assert reader_label("pooled_rr") == "pooled RR"
    assert reader_label("subgroup_rr[post_conception]") == "RR in post conception"
    assert reader_label("ratio[b vs a]") == "RR ratio b vs a"
    assert reader_label("p_ratio_gt_1[b vs a]") == "P(RR ratio b vs a > 1) indicator"
    assert reader_label("Aronson 1948") == "Aronson 1948"  # not a quantity: unchanged
    assert readable("the prior drives subgroup_rr[x] and pooled_rr") == (
        "the prior drives RR in x and pooled RR"
    )


def test_indicators_are_recognised():
    assert is_indicator("p_benefit") and is_indicator("p_ratio_gt_1[b vs a]")
    assert not is_indicator("pooled_rr")


def test_table_cells_keep_their_class_and_are_escaped():
    t = table(("trial", "P<0.05"), [("<b>Smith</b> & co", Cell("0.01", "num pass")), ("x", 2.5)])
    html = str(render("macros.html", macro="table", args=(t,)))
    assert "<th>P&lt;0.05</th>" in html
    assert "<td>&lt;b&gt;Smith&lt;/b&gt; &amp; co</td>" in html
    assert '<td class="num pass">0.01</td>' in html
    assert '<td class="num">2.5</td>' in html  # numbers are right-aligned


def test_figure_has_its_caption_as_alt_text():
    html = str(render("macros.html", macro="figure", args=(figure("figures/a.png", "RR < 1"),)))
    assert html == ('<figure><img src="figures/a.png" alt="RR &lt; 1">'
                    "<figcaption>RR &lt; 1</figcaption></figure>")


def test_a_page_has_the_stylesheet_navigation_and_footer():
    html = render_page("audit.html", "rebayes: audit", [("Summary", "index.html")],
                       "Reproducibility: data hash abc", variant="published",
                       intro_before="Each figure recomputed from the trial table (variant ",
                       intro_after=").", audit=table(("id",), [("F1",)]))
    assert "(variant <code>published</code>)." in html
    assert html.startswith("<!DOCTYPE html>") and "<title>rebayes: audit</title>" in html
    assert "td.fail {" in html  # report.css inlined: no stylesheet to fetch
    assert '<nav><a href="index.html">Summary</a></nav>' in html
    assert "<small>Reproducibility: data hash abc</small>" in html
    assert "<script" not in html and "http" not in html


def test_tool_section_shows_the_frame_through_pandas():
    frame = pd.DataFrame({"n_per_arm": [50], "p_futile": [0.91234],
                          "sceptical_limit": [None], "significant": [False]})
    html = tool_section("P < 0.9 & more", frame, "figures/plan.png")
    assert "<p>P &lt; 0.9 &amp; more</p>" in html and "<td>0.912</td>" in html
    # Reader names for the columns, not the program's.
    assert "<th>n per arm</th>" in html and "<th>P(futility)</th>" in html
    assert "None" not in html and "<td>–</td>" in html  # a missing value is a dash
    assert '<img src="figures/plan.png" alt="P &lt; 0.9 &amp; more">' in html


def test_a_prior_note_reads_without_docstring_markup():
    from rebayes.report.build import prior_justification

    note = prior_justification(
        "One line.\n\nFor datasets declaring ``outcome_type = \"obstetric\"``; mapped with\n"
        ":meth:`PriorSet.on_scale` and :func:`~rebayes.x.y`.\n\nReferences\n----------\nA B. 2015."
    )
    assert note == ('For datasets declaring outcome_type = "obstetric"; mapped with '
                    "PriorSet.on_scale and rebayes.x.y. Sources: A B. 2015.")
