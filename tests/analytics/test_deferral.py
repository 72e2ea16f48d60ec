"""What a deferral threshold buys, read off coverage bins, against the raw items."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analytics.stats.agreement import wilson_interval
from analytics.stats.calibration import coverage_bins, coverage_curve
from analytics.summaries.deferral import (
    deferral_summary,
    threshold_figures,
    threshold_suggestions,
)


def _items(seed: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    confidence = rng.uniform(0, 1, n).round(4)
    agree = rng.random(n) < confidence  # right more often when confident
    return confidence, agree


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(0, 400),
    step=st.integers(0, 99),
)
def test_figures_on_a_bin_edge_equal_the_raw_items_at_or_above_it(seed, n, step):
    confidence, agree = _items(seed, n)
    threshold = step / 100
    figures = threshold_figures(
        bins=coverage_bins(confidence, agree), threshold=threshold, min_items=50
    )
    covered = confidence >= threshold
    assert figures.exact and figures.read_at == pytest.approx(threshold)
    assert figures.n == n
    assert figures.covered == int(covered.sum())
    assert figures.agreed == int(agree[covered].sum())
    if figures.covered:
        assert figures.agreement == pytest.approx(agree[covered].mean())
        assert (figures.low, figures.high) == wilson_interval(figures.agreed, figures.covered)
        assert figures.share == pytest.approx(covered.mean())
        assert figures.too_few == (figures.covered < 50)
    else:
        assert figures.agreement is None and figures.low is None
    assert not re.search(r"\bnan\b", figures.sentence)


def test_a_threshold_between_edges_is_read_at_the_edge_below_and_says_so():
    confidence, agree = _items(1, 300)
    bins = coverage_bins(confidence, agree)
    figures = threshold_figures(bins=bins, threshold=0.955, min_items=50)
    at_edge = threshold_figures(bins=bins, threshold=0.95, min_items=50)
    assert not figures.exact and figures.read_at == pytest.approx(0.95)
    assert figures.covered == at_edge.covered
    # The exact count lies between the two edges' counts.
    assert at_edge.covered >= int((confidence >= 0.955).sum()) >= int((confidence >= 0.96).sum())
    assert "Read at 0.95: confidence is counted in bins 0.01 wide" in figures.sentence
    top = threshold_figures(bins=bins, threshold=1.0, min_items=50)
    assert top.read_at == pytest.approx(0.99) and not top.exact


def test_no_item_reads_as_a_sentence_and_too_few_items_say_so():
    empty = threshold_figures(bins=coverage_bins([], []), threshold=0.8, min_items=50)
    assert empty.n == 0 and empty.agreement is None
    assert empty.sentence.startswith("No scored item in this range has a complete")
    few = threshold_figures(
        bins=coverage_bins([0.9, 0.95, 0.97], [True, True, False]), threshold=0.9, min_items=50
    )
    assert few.too_few and few.covered == 3
    assert "under 50 items: too few to rely on" in few.sentence
    none = threshold_figures(
        bins=coverage_bins([0.1, 0.2], [True, False]), threshold=0.5, min_items=1
    )
    assert none.covered == 0 and none.share == 0.0
    assert "the model would decide none of them" in none.sentence


@pytest.mark.parametrize("bad", [-0.01, 1.01, math.nan, math.inf])
def test_a_threshold_outside_zero_to_one_is_refused(bad):
    with pytest.raises(ValueError, match="lies in"):
        threshold_figures(bins=coverage_bins([0.5], [True]), threshold=bad, min_items=1)


@pytest.mark.parametrize("seed", [2, 3, 4])
def test_each_suggestion_is_the_lowest_threshold_whose_lower_bound_reaches_its_level(seed):
    confidence, agree = _items(seed, 2000)
    bins = coverage_bins(confidence, agree)
    grid = np.arange(100) / 100
    curve = coverage_curve(confidence, agree, grid)
    targets = [0.8, 0.9, 0.95, 0.999]
    suggestions = threshold_suggestions(bins=bins, targets=targets, min_items=50)
    assert [s.target for s in suggestions] == targets
    for suggestion in suggestions:
        ready = (curve.covered >= 50) & (curve.low >= suggestion.target)
        if not ready.any():
            assert suggestion.figures is None
            assert suggestion.sentence.startswith(
                f"No threshold keeps agreement's 95% lower bound at or above "
                f"{suggestion.target:.2f}"
            )
            continue
        assert suggestion.figures is not None
        assert suggestion.figures.threshold == pytest.approx(grid[np.argmax(ready)])
        assert suggestion.figures.low >= suggestion.target
        assert suggestion.figures.covered == curve.covered[np.argmax(ready)]
    # Higher levels never suggest lower thresholds, and cover fewer items.
    found = [s.figures for s in suggestions if s.figures]
    assert [f.threshold for f in found] == sorted(f.threshold for f in found)
    assert found and suggestions[-1].figures is None


def test_the_summary_holds_the_threshold_in_force_and_says_why_the_audit_sample_is_partial():
    confidence, agree = _items(5, 500)
    bins = coverage_bins(confidence, agree)
    every = deferral_summary(bins=bins, threshold=0.7, min_items=50)
    assert every.current.threshold == 0.7
    assert every.current.covered == int((confidence >= 0.7).sum())
    assert every.caveat == "" and "at least 50 such items" in every.method
    audit = deferral_summary(bins=bins, threshold=0.7, min_items=50, audit=True)
    assert "cannot tell what a lower threshold would decide" in audit.caveat
