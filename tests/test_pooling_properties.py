"""Property-based tests (hypothesis) of the RevMan formulas: invariances any correct
implementation must have, checked on random 2x2 tables."""

import math

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from rebayes.frequentist.pooling import meta_analysis

METHODS = st.sampled_from(["MH", "IV", "DL"])
MEASURES = st.sampled_from(["RR", "OR"])


@st.composite
def study(draw, min_cell=0):
    n1 = draw(st.integers(2 + 2 * min_cell, 200))
    n2 = draw(st.integers(2 + 2 * min_cell, 200))
    a = draw(st.integers(min_cell, n1 - min_cell))
    c = draw(st.integers(min_cell, n2 - min_cell))
    return a, n1, c, n2


def tables(min_cell=0, min_size=1):
    return st.lists(study(min_cell), min_size=min_size, max_size=12).map(
        lambda rows: pd.DataFrame(
            [dict(study=f"s{i}", events_treat=a, n_treat=n1, events_control=c, n_control=n2)
             for i, (a, n1, c, n2) in enumerate(rows)]
        )
    ).filter(
        # Leave out draws where every study is non-estimable: a study needs an event and a
        # non-event somewhere (a double-zero study and an all-events one do not make a table).
        lambda t: (
            ((t.events_treat > 0) | (t.events_control > 0))
            & ((t.events_treat < t.n_treat) | (t.events_control < t.n_control))
        ).any()
    )


def swap_arms(t):
    return t.rename(columns={"events_treat": "events_control", "n_treat": "n_control",
                             "events_control": "events_treat", "n_control": "n_treat"})


@settings(max_examples=150, deadline=None)
@given(tables(), METHODS, MEASURES)
def test_swapping_arms_inverts_the_ratio(t, method, measure):
    res = meta_analysis(t, method, measure)
    swapped = meta_analysis(swap_arms(t), method, measure)
    assert_allclose(swapped.estimate, 1 / res.estimate, rtol=1e-9)
    assert_allclose((swapped.ci_low, swapped.ci_high), (1 / res.ci_high, 1 / res.ci_low),
                    rtol=1e-9)
    assert_allclose(swapped.i2, res.i2, atol=1e-9)


@settings(max_examples=150, deadline=None)
@given(tables(min_size=2), METHODS, MEASURES, st.randoms(use_true_random=False))
def test_row_order_does_not_matter(t, method, measure, rnd):
    order = list(range(len(t)))
    rnd.shuffle(order)
    a = meta_analysis(t, method, measure)
    b = meta_analysis(t.iloc[order].reset_index(drop=True), method, measure)
    assert_allclose((b.estimate, b.ci_low, b.ci_high, b.q), (a.estimate, a.ci_low, a.ci_high,
                                                             a.q), rtol=1e-9, atol=1e-12)


@settings(max_examples=150, deadline=None)
@given(tables(min_cell=1), st.sampled_from(["MH", "IV"]), MEASURES, st.integers(2, 10))
def test_scaling_all_counts_shrinks_the_interval(t, method, measure, k):
    base = meta_analysis(t, method, measure)
    scaled = meta_analysis(
        t.assign(**{c: t[c] * k for c in ["events_treat", "n_treat", "events_control",
                                          "n_control"]}),
        method, measure,
    )
    # Same point estimate (no continuity correction with every cell >= 1), SE / sqrt(k).
    assert_allclose(scaled.estimate, base.estimate, rtol=1e-9)
    assert_allclose(scaled.se, base.se / math.sqrt(k), rtol=1e-9)
    assert math.log(scaled.ci_high / scaled.ci_low) < math.log(base.ci_high / base.ci_low)


@settings(max_examples=150, deadline=None)
@given(study(), MEASURES)
def test_mh_equals_iv_for_one_study(row, measure):
    a, n1, c, n2 = row
    t = pd.DataFrame([dict(study="s", events_treat=a, n_treat=n1, events_control=c,
                           n_control=n2)])
    if (a == 0 and c == 0) or (measure == "OR" and a == n1 and c == n2):
        return
    mh, iv = meta_analysis(t, "MH", measure), meta_analysis(t, "IV", measure)
    assert_allclose((mh.estimate, mh.se), (iv.estimate, iv.se), rtol=1e-9)


@settings(max_examples=200, deadline=None)
@given(tables(), METHODS, MEASURES)
def test_heterogeneity_statistics_are_in_range(t, method, measure):
    res = meta_analysis(t, method, measure)
    assert 0.0 <= res.i2 <= 100.0
    assert res.q >= 0.0 and res.tau2 >= 0.0
    assert 0.0 <= res.p <= 1.0 and 0.0 <= res.p_q <= 1.0
    assert res.ci_low <= res.estimate <= res.ci_high
    assert np.isclose(res.studies.weight.sum(), 100.0)


@settings(max_examples=150, deadline=None)
@given(tables(), st.sampled_from(["MH", "IV"]), st.sampled_from(["fixed", "random"]))
def test_swapping_arms_negates_the_risk_difference(t, method, model):
    res = meta_analysis(t, method, "RD", model=model)
    swapped = meta_analysis(swap_arms(t), method, "RD", model=model)
    assert_allclose(swapped.estimate, -res.estimate, rtol=1e-9, atol=1e-12)
    assert_allclose((swapped.ci_low, swapped.ci_high), (-res.ci_high, -res.ci_low),
                    rtol=1e-9, atol=1e-12)


@settings(max_examples=150, deadline=None)
@given(tables())
def test_peto_swapping_arms_inverts_the_odds_ratio(t):
    res = meta_analysis(t, "PETO", "OR")
    swapped = meta_analysis(swap_arms(t), "PETO", "OR")
    assert_allclose(swapped.estimate, 1 / res.estimate, rtol=1e-9)
    assert_allclose(swapped.q, res.q, rtol=1e-9, atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(tables(), METHODS, MEASURES, st.sampled_from([0.9, 0.95, 0.99]))
def test_wider_level_wider_interval_same_estimate(t, method, measure, level):
    base = meta_analysis(t, method, measure, ci_level=level)
    wider = meta_analysis(t, method, measure, ci_level=0.999)
    assert_allclose(wider.estimate, base.estimate, rtol=1e-12)
    assert wider.ci_low < base.ci_low and wider.ci_high > base.ci_high
