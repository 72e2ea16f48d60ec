"""Empty and degenerate windows: every report page and JSON says so in a sentence.

No queue state may give a 500, a nan, None or inf on a page, NaN in JSON, or a chart
with nothing in it and no word why.
"""

from __future__ import annotations

import json
import re
from html import unescape

import numpy as np
import pytest

from analytics.models import ReferenceProfile
from analytics.registry import REPORT_KINDS
from analytics.stats.binning import feature_histograms, reference_bins_with_range_by_feature
from deployments.models import ModelVersion, Prediction
from inspections.models import Queue
from inspections.services import item_create, judgment_record

pytestmark = pytest.mark.django_db

LABELS = ["a", "b", "c"]
WIDTH = 3


def _version(queue: Queue, reference: np.ndarray | None) -> ModelVersion:
    version = ModelVersion.objects.create(
        queue=queue,
        name="m",
        version="1",
        onnx_file="models/m.onnx",
        sha256="0" * 64,
        size_bytes=1,
        labels=LABELS,
        input_width=WIDTH,
        input_name="x",
        probability_output="p",
    )
    if reference is not None:
        bins = reference_bins_with_range_by_feature(reference)
        ReferenceProfile.objects.create(
            model_version=version,
            rows=reference.shape[0],
            fine_edges=[b.fine_edges[1:-1].tolist() for b in bins],
            coarse_edges=[b.coarse_edges[1:-1].tolist() for b in bins],
            feature_counts=[c.tolist() for c in feature_histograms(reference, bins)],
            prediction_counts=[400, 300, 300],
            format=ReferenceProfile.CURRENT_FORMAT,
            feature_minimum=[b.minimum for b in bins],
            feature_maximum=[b.maximum for b in bins],
            feature_categorical=[b.categorical for b in bins],
        )
    return version


@pytest.fixture
def parts(db) -> Queue:
    return Queue.objects.create(name="Parts", slug="parts", labels=LABELS, input_width=WIDTH)


@pytest.fixture
def normal_reference() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(1000, WIDTH))


def _items(
    queue: Queue,
    version: ModelVersion | None,
    inspector,
    rows: list[tuple[list[float], str | None, str | None]],
) -> None:
    """Create items: (features, human label or None, model label or None) each."""
    for n, (features, human, model) in enumerate(rows):
        item = item_create(queue=queue, external_id=f"i{n}", features=features)
        if human is not None:
            judgment_record(item=item, inspector=inspector, label=human, seconds_spent=1)
        if model is not None and version is not None:
            Prediction.objects.create(
                item=item,
                model_version=version,
                status="ok",
                label=model,
                confidence=0.9,
                latency_ms=2.0,
                backend="fp32",
            )


def _text(html: str) -> str:
    """Return what a reader sees: the page without tags and scripts."""
    html = re.sub(r"<script.*?</script>", " ", html, flags=re.S)
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _no_placeholders(text: str) -> None:
    for word in ("nan", "NaN", "None", "inf", "Infinity", "-inf"):
        found = re.search(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text)
        assert not found, (
            word,
            text[max(0, found.start() - 120) : found.end() + 60] if found else "",
        )


def _strict_json(body: bytes) -> dict:
    def refuse(constant: str) -> None:
        raise AssertionError(f"JSON holds {constant}")

    return json.loads(body, parse_constant=refuse)


def _every_report(client, queue: Queue, version: ModelVersion) -> dict[str, tuple[str, dict]]:
    """Return each report kind's page text and JSON, checking both are clean."""
    found = {}
    for kind in REPORT_KINDS:
        page = client.get(f"/overview/{queue.slug}/{kind}/?model={version.key}")
        assert page.status_code == 200, kind
        html = page.content.decode()
        assert 'data-chart=""' not in html
        assert html.count("data-chart=") == html.count('<script id="chart-'), kind
        text = _text(html)
        _no_placeholders(text)
        api = client.get(f"/api/v1/queues/{queue.slug}/reports/{kind}?model={version.key}")
        assert api.status_code == 200, kind
        found[kind] = (text, _strict_json(api.content)["report"])
    overview = client.get("/overview/")
    assert overview.status_code == 200
    _no_placeholders(_text(overview.content.decode()))
    found["overview"] = (_text(overview.content.decode()), {})
    return found


def test_a_queue_with_no_items_reads_as_sentences(client_for, ml_lead, parts, normal_reference):
    version = _version(parts, normal_reference)
    reports = _every_report(client_for(ml_lead), parts, version)
    assert "No item arrived in this range" in reports["agreement"][0]
    assert "0 compared judgments; lights need 50." in reports["agreement"][0]
    assert reports["agreement"][1]["agreement"]["rate"] is None
    assert (
        "Drift is not available: no item in this range has a successful prediction"
        in (reports["drift"][0])
    )
    assert reports["drift"][1]["drifted_share"] is None
    assert "nothing to calibrate against" in reports["confidence"][0]
    assert "made no prediction" in reports["operations"][0]
    assert "the baseline needs double-inspected items" in reports["baseline"][0]
    assert (
        "disagreements need items both an inspector and this version"
        in (reports["disagreements"][0])
    )
    assert (
        "No model version has scored an item received in this range yet" in (reports["overview"][0])
    )


def test_a_version_with_no_predictions_says_so(
    client_for, ml_lead, parts, inspector, normal_reference
):
    version = _version(parts, normal_reference)
    _items(parts, None, inspector, [([0.1, 0.2, 0.3], "a", None)] * 3)
    reports = _every_report(client_for(ml_lead), parts, version)
    assert "No item of the 3 in this range has a successful prediction" in (reports["agreement"][0])
    assert reports["operations"][1]["predictions"] == 0
    assert reports["operations"][1]["error_rate"] is None


def test_a_version_without_reference_data_has_no_drift_and_says_why(
    client_for, ml_lead, parts, inspector
):
    version = _version(parts, None)
    _items(parts, version, inspector, [([0.1, 0.2, 0.3], "a", "a")])
    text, body = _every_report(client_for(ml_lead), parts, version)["drift"]
    assert "has no reference data" in text
    assert body["available"] is False and body["drifted_light"]["light"] == "insufficient"


def test_one_item_reads_not_enough_data_everywhere(
    client_for, ml_lead, parts, inspector, normal_reference
):
    version = _version(parts, normal_reference)
    _items(parts, version, inspector, [([0.1, 0.2, 0.3], "a", "b")])
    reports = _every_report(client_for(ml_lead), parts, version)
    agreement = reports["agreement"][1]
    assert agreement["agreement_light"]["light"] == "insufficient"
    assert "1 compared judgment; lights need 50." in reports["agreement"][0]
    assert reports["drift"][1]["drifted_light"]["sentence"] == "1 scored item; lights need 30."
    assert reports["confidence"][1]["ece_light"]["light"] == "insufficient"
    assert len(reports["disagreements"][1]["rows"]) == 1


def test_a_window_of_one_label_has_no_kappa_light(
    client_for, ml_lead, parts, inspector, normal_reference
):
    version = _version(parts, normal_reference)
    rng = np.random.default_rng(1)
    _items(
        parts, version, inspector, [(rng.normal(size=WIDTH).tolist(), "c", "c") for _ in range(60)]
    )
    reports = _every_report(client_for(ml_lead), parts, version)
    text, body = reports["agreement"]
    assert body["agreement"]["rate"] == 1.0
    assert (body["kappa"]["low"], body["kappa"]["high"]) == (-1.0, 1.0)
    assert body["kappa_light"]["light"] == "insufficient"
    assert "kappa needs at least two labels" in text
    assert "The model agreed with all 60 compared judgments" in reports["disagreements"][0]
    assert "Chi-square" in reports["drift"][0]  # the predicted labels still get their test


def test_all_agreeing_judgments_turn_agreement_green_only_past_the_minimum(
    client_for, ml_lead, parts, inspector, normal_reference
):
    version = _version(parts, normal_reference)
    rng = np.random.default_rng(2)
    rows = [(rng.normal(size=WIDTH).tolist(), label, label) for label in ["a", "b"] * 50]
    _items(parts, version, inspector, rows)
    text, body = _every_report(client_for(ml_lead), parts, version)["agreement"]
    assert body["agreement_light"]["light"] == "green"
    assert body["kappa_light"]["light"] == "green"
    assert "lies at or above 0.950" in text


def test_all_constant_features_give_no_drift_and_no_nan(client_for, ml_lead, parts, inspector):
    version = _version(parts, np.zeros((500, WIDTH)))
    _items(parts, version, inspector, [([0.0] * WIDTH, "a", "a") for _ in range(40)])
    text, body = _every_report(client_for(ml_lead), parts, version)["drift"]
    assert body["available"] is True
    assert [f["level"] for f in body["features"]] == ["none"] * WIDTH
    assert body["drifted_share"] == 0.0
    assert body["drifted_light"]["light"] == "green"
    assert "Every scored value in this range lies within the reference's range." in text


def test_a_constant_feature_that_moves_past_the_reference_maximum_is_major(
    client_for, ml_lead, parts, inspector
):
    version = _version(parts, np.zeros((500, WIDTH)))
    _items(parts, version, inspector, [([5.0, 0.0, 0.0], "a", "a") for _ in range(40)])
    text, body = _every_report(client_for(ml_lead), parts, version)["drift"]
    assert [f["level"] for f in body["features"]] == ["major", "none", "none"]
    assert body["features"][0]["current_above"] == 1.0
    assert "f0: 100.0% above the reference maximum 0, up to 5." in text
    assert body["drifted_light"]["light"] == "red"  # a third of the features, past 0.2
