"""Reader-facing names: no internal quantity names in report tables."""

from rebayes.report.html import is_indicator, readable, reader_label


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
