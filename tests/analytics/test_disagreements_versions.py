"""Disagreements of one model version, on items another version (its INT8 variant) scored too."""

from __future__ import annotations

import pytest

from analytics.adjudication import adjudication_outcome_counts
from analytics.days import day_bounds, utc_today
from analytics.disagreements import DisagreementFilters, report_disagreements
from analytics.models import Adjudication
from analytics.selectors import ReportScope
from deployments.models import ModelVersion, Prediction
from inspections.services import item_create, judgment_record

pytestmark = pytest.mark.django_db

# Per item: the inspector's label, then (label, confidence) of the FP32 and the INT8 version.
SCORES = {
    "both-differ": ("1", ("2", 0.61), ("3", 0.52)),
    "fp32-agrees": ("1", ("1", 0.93), ("2", 0.58)),
    "int8-agrees": ("4", ("5", 0.71), ("4", 0.66)),
    "both-agree": ("7", ("7", 0.99), ("7", 0.98)),
}


def _version(queue, version: str, *, parent: ModelVersion | None = None) -> ModelVersion:
    return ModelVersion.objects.create(
        queue=queue,
        name="digits-mlp",
        version=version,
        onnx_file=f"models/{version}.onnx",
        sha256="0" * 64,
        size_bytes=1,
        labels=queue.labels,
        input_width=queue.input_width,
        input_name="x",
        probability_output="p",
        variant="int8" if parent else "fp32",
        parent=parent,
    )


@pytest.fixture
def two_variants(queue, inspector):
    """An FP32 version and its INT8 variant scoring the same judged items differently."""
    fp32 = _version(queue, "1")
    int8 = _version(queue, "1-int8", parent=fp32)
    for external_id, (human, *scores) in SCORES.items():
        item = item_create(queue=queue, external_id=external_id, features=[0.0] * 64)
        judgment_record(item=item, inspector=inspector, label=human, seconds_spent=2)
        for version, (label, confidence) in zip((fp32, int8), scores, strict=True):
            Prediction.objects.create(
                item=item,
                model_version=version,
                status="ok",
                label=label,
                confidence=confidence,
                backend=version.variant,
            )
    return fp32, int8


def _expected(version_index: int) -> dict[str, tuple[str, float]]:
    """Return, per item the version disagrees on, its label and confidence."""
    return {
        external_id: scores[version_index]
        for external_id, (human, *scores) in SCORES.items()
        if scores[version_index][0] != human
    }


def _scope(queue, version) -> ReportScope:
    today = utc_today()
    return ReportScope(queue=queue, model_version=version, since=today, until=today)


@pytest.mark.parametrize("version_index", [0, 1])
@pytest.mark.parametrize(
    "filters",
    [
        DisagreementFilters(),
        DisagreementFilters(confidence_min=0.0),
        DisagreementFilters(inspector="inspector1"),
    ],
)
def test_each_item_is_listed_once_with_the_requested_versions_label_and_confidence(
    queue, two_variants, version_index, filters
):
    version = two_variants[version_index]
    page = report_disagreements(scope=_scope(queue, version), filters=filters)
    listed = {row.external_id: (row.model_label, row.confidence) for row in page.rows}
    assert len(page.rows) == len(listed)  # no item twice
    assert listed == _expected(version_index)
    assert page.total == len(listed)
    assert sum(pair.count for pair in page.class_pairs) == len(listed)


@pytest.mark.parametrize("version_index", [0, 1])
def test_label_and_confidence_filters_read_the_requested_versions_prediction(
    queue, two_variants, version_index
):
    version = two_variants[version_index]
    expected = _expected(version_index)
    for label, _ in expected.values():
        page = report_disagreements(
            scope=_scope(queue, version), filters=DisagreementFilters(model_label=label)
        )
        assert {row.model_label for row in page.rows} == {label}
    low = min(confidence for _, confidence in expected.values())
    above = report_disagreements(
        scope=_scope(queue, version), filters=DisagreementFilters(confidence_min=low + 1e-6)
    )
    assert {row.external_id for row in above.rows} == {
        external_id for external_id, (_, c) in expected.items() if c > low
    }


def test_the_api_lists_the_fp32_versions_disagreements_once_each(client_for, ml_lead, two_variants):
    body = client_for(ml_lead).get(
        "/api/v1/queues/digits/reports/disagreements?model=digits-mlp:1&confidence_min=0"
    )
    rows = body.json()["report"]["rows"]
    assert sorted((row["external_id"], row["confidence"]) for row in rows) == sorted(
        (external_id, confidence) for external_id, (_, confidence) in _expected(0).items()
    )


def test_adjudicated_outcomes_compare_with_the_requested_versions_label(
    queue, two_variants, admin_user
):
    fp32, int8 = two_variants
    item = fp32.predictions.get(item__external_id="both-differ").item
    Adjudication.objects.create(item=item, label="3", adjudicator=admin_user)
    start, _ = day_bounds(utc_today())
    _, end = day_bounds(utc_today())
    outcomes = {
        version.version: adjudication_outcome_counts(
            queue=queue, model_version=version, start=start, end=end, disagreeing_judgments=2
        )
        for version in (fp32, int8)
    }
    assert (outcomes["1"].comparisons, outcomes["1"].both_wrong) == (1, 1)
    assert (outcomes["1-int8"].comparisons, outcomes["1-int8"].model_right) == (1, 1)
