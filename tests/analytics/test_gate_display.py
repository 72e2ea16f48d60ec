"""The gate's page text from a stored snapshot: figures, thresholds, lights and needs."""

from __future__ import annotations

import pytest

from analytics.gate.display import figure_text, gate_display, needs_sentence


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [
        ("sample_size", 1234.0, "1,234"),
        ("error_rate", 0.0061, "0.61%"),
        ("latency_p95", 19.12, "19.1 ms"),
        ("noninferiority", -0.0273, "\u22120.027"),
        ("noninferiority", 0.01, "+0.010"),
        ("agreement_floor", 0.91234, "0.912"),
        ("agreement_floor", None, "no data"),
        ("agreement_floor", float("nan"), "no data"),
        ("kappa_floor", True, "no data"),
    ],
)
def test_each_figure_reads_in_its_own_unit_and_a_missing_one_as_words(name, value, text):
    assert figure_text(name, value) == text


def test_needs_name_overall_double_inspected_and_the_labels_most_short_first():
    sentence = needs_sentence(
        {"judged_items": 1200, "double_inspected": 80, "per_label": {"3": 5, "7": 40, "1": 0}}
    )
    assert sentence.startswith(
        "To decide, the gate needs about 1,200 more judged items, about 80 more"
        " double-inspected items, label 7 needs 40 more, label 3 needs 5 more;"
    )
    assert "label 1" not in sentence


def test_needs_beyond_the_horizon_say_the_rate_sits_on_the_line():
    sentence = needs_sentence({"judged_items": 1_000_000, "double_inspected": 0, "per_label": {}})
    assert "over a million more judged items" in sentence


def test_no_needs_read_as_enough():
    assert "large enough" in needs_sentence({"judged_items": 0, "per_label": {"a": 0}})
    assert "large enough" in needs_sentence(None)


def test_many_short_labels_are_capped_with_a_count_of_the_rest():
    sentence = needs_sentence({"per_label": {str(k): k + 1 for k in range(14)}})
    assert sentence.count("label ") == 10
    assert "and 4 more labels need more items" in sentence


def test_the_other_bound_sits_beside_the_one_used_and_off_criteria_read_off():
    snapshot = {
        "verdict": "insufficient",
        "bounds_used": "fixed_sample",
        "policy": {"version": 3, "confidence": 0.975},
        "window": {"since": "2026-11-01", "until": "2026-11-28", "days": 28},
        "criteria": [
            {
                "name": "agreement_floor",
                "verdict": "insufficient",
                "value": 0.9,
                "lower": 0.88,
                "upper": 0.92,
                "threshold": 0.9,
            },
            {
                "name": "latency_p95",
                "verdict": "pass",
                "value": 12.0,
                "lower": None,
                "upper": None,
                "threshold": 50.0,
            },
            {
                "name": "int8_parity",
                "verdict": "off",
                "value": None,
                "lower": None,
                "upper": None,
                "threshold": None,
            },
        ],
        "bounds": {
            "anytime_valid": [{"name": "agreement_floor", "lower": 0.85, "upper": 0.94}],
            "fixed_sample": [],
        },
        "needs": {},
    }

    display = gate_display(snapshot)

    agreement, latency, int8 = display.rows
    assert display.bounds_used_text == "fixed-sample interval"
    assert display.other_bounds_text == "anytime-valid confidence sequence"
    assert display.confidence_text == "97.5%"
    assert (display.policy_version, display.days) == (3, 28)
    assert display.headline == "Not enough evidence to decide yet on agreement."
    assert (agreement.light, agreement.other_interval) == ("none", "[0.850, 0.940]")
    assert agreement.threshold == "≥ 0.900"
    assert (latency.light, latency.lower, latency.threshold) == ("good", "no bound", "≤ 50.0 ms")
    assert (int8.light, int8.value, int8.threshold) == ("off", "off", "off")
