"""The overview page: per model version, the figures match counts made here from the rows."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, time, timedelta

import pytest
from statsmodels.stats.proportion import proportion_confint

from analytics.days import utc_today
from analytics.models import DailyRollup
from analytics.services import rollups_refresh
from deployments.models import Prediction
from deployments.registry import model_version_register
from deployments.scoring import predictions_score
from inspections.models import Item, Judgment
from inspections.services import item_create, judgment_record

pytestmark = pytest.mark.django_db


def _version_row(page: str, key: str) -> list[str]:
    """Return the texts of the numeric cells in the table row of one model version."""
    # The version's cell also links to its gate and its page.
    name = rf"<td><code>{re.escape(key)}</code>(?: <span class=\"version-links\">.*?</span>)?</td>"
    row = re.search(rf"<tr>\s*{name}(.*?)</tr>", page, re.S)
    assert row is not None, f"no row for {key}"
    cells = re.findall(r'<td class="num">(.*?)</td>', row.group(1), re.S)
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", cell)).split()) for cell in cells]


def _stat(page: str, name: str) -> str:
    found = re.search(
        rf'<span class="value">([^<]*)</span><span class="name">{re.escape(name)}</span>', page
    )
    assert found is not None, name
    return found.group(1)


@pytest.fixture
def evidence(queue, shadow_model, digits_onnx, digits_split, inspector, inspector2, admin_user):
    """Twenty scored and judged digits, one unscorable item, a second version on a few."""
    items = [
        item_create(queue=queue, external_id=f"d{n}", features=[float(v) for v in row])
        for n, row in enumerate(digits_split.holdout_x[:20])
    ]
    truth = [str(label) for label in digits_split.holdout_y[:20]]
    broken = item_create(queue=queue, external_id="broken", features=[0.0] * 64)
    # A row that went bad in storage: the model version records an error for it.
    Item.objects.filter(pk=broken.pk).update(features=[1.0, 2.0])
    predictions_score(
        model_version_id=shadow_model.pk, item_ids=[item.pk for item in [*items, broken]]
    )
    second = model_version_register(
        queue=queue, name="digits-mlp", version="2", onnx_path=digits_onnx, created_by=admin_user
    )
    predictions_score(model_version_id=second.pk, item_ids=[item.pk for item in items[:6]])

    # The first inspector is right on most items and wrong on every fourth; the first five
    # items get a second opinion, always the truth.
    Item.objects.filter(pk__in=[item.pk for item in items[:5]]).update(judgments_needed=2)
    for n, (item, label) in enumerate(zip(items, truth, strict=True)):
        wrong = queue.labels[(queue.labels.index(label) + 1) % 10]
        judgment_record(
            item=item, inspector=inspector, label=wrong if n % 4 == 0 else label, seconds_spent=3
        )
        if n < 5:
            judgment_record(item=item, inspector=inspector2, label=label, seconds_spent=4)
    return shadow_model, second


def _expected(model_version) -> dict[str, object]:
    predictions = Prediction.objects.filter(model_version=model_version)
    said = dict(predictions.filter(status="ok").values_list("item_id", "label"))
    judgments = [j for j in Judgment.objects.all() if j.item_id in said]
    agreed = sum(1 for j in judgments if j.label == said[j.item_id])
    return {
        "predictions": predictions.count(),
        "errors": predictions.filter(status="error").count(),
        "compared": len(judgments),
        "agreed": agreed,
    }


def test_the_overview_shows_each_versions_predictions_errors_and_agreement(
    client_for, ml_lead, evidence
):
    first, second = evidence
    response = client_for(ml_lead).get("/overview/")
    assert response.status_code == 200
    page = response.content.decode()

    for version, predictions, errors in ((first, 21, 1), (second, 6, 0)):
        expected = _expected(version)
        assert (expected["predictions"], expected["errors"]) == (predictions, errors)
        low, high = proportion_confint(
            expected["agreed"], expected["compared"], alpha=0.05, method="wilson"
        )
        rate = expected["agreed"] / expected["compared"]
        assert 0 < rate < 1  # disagreement exists, so the figure is not trivially 1
        shown_predictions, shown_errors, shown_compared, shown_agreement = _version_row(
            page, version.key
        )
        assert shown_predictions == str(predictions)
        assert shown_errors.split()[0] == str(errors)
        assert shown_compared == str(expected["compared"])
        assert shown_agreement == f"{rate:.3f} [{low:.3f}, {high:.3f}]"

    # The shadow version scored all twenty judged items: 25 judgments (five items twice).
    assert _expected(first)["compared"] == 25
    assert _version_row(page, first.key)[1] == "1 (5%)"
    assert _stat(page, "items") == "21"
    assert _stat(page, "judgments") == "25"
    assert _stat(page, "awaiting judgment") == "1"
    assert _stat(page, "double-inspected items") == "5"


def test_a_version_with_no_judged_items_shows_no_agreement_yet(
    client_for, ml_lead, queue, model_version
):
    item = item_create(queue=queue, external_id="lonely", features=[0.0] * 64)
    predictions_score(model_version_id=model_version.pk, item_ids=[item.pk])

    page = client_for(ml_lead).get("/overview/").content.decode()

    assert _version_row(page, model_version.key) == ["1", "0", "0", "no data yet"]


def _received(item_ids, when) -> None:
    Item.objects.filter(pk__in=item_ids).update(received_at=when)


def test_the_overview_covers_the_chosen_days_and_reads_closed_days_from_rollups(
    client_for, ml_lead, evidence
):
    first, _ = evidence
    today = utc_today()
    old_day = today - timedelta(days=5)
    # Move the five double-inspected items (and their ten judgments) to a closed day.
    moved = list(Item.objects.filter(judgments_needed=2).values_list("pk", flat=True))
    assert len(moved) == 5
    _received(moved, datetime.combine(old_day, time(9), tzinfo=UTC))
    assert rollups_refresh(today=today) >= 1
    rollup = DailyRollup.objects.get(model_version=first, day=old_day)
    assert (rollup.items, rollup.counts["judgments"], rollup.counts["multi_judged"]) == (5, 10, 5)

    client = client_for(ml_lead)
    on_old_day = client.get(f"/overview/?since={old_day}&until={old_day}").content.decode()
    assert _stat(on_old_day, "items") == "5"
    assert _stat(on_old_day, "judgments") == "10"
    assert _stat(on_old_day, "double-inspected items") == "5"
    assert _stat(on_old_day, "awaiting judgment") == "0"
    said = dict(
        Prediction.objects.filter(model_version=first, item__in=moved).values_list(
            "item_id", "label"
        )
    )
    judged = Judgment.objects.filter(item__in=moved)
    agreed = sum(1 for j in judged if j.label == said[j.item_id])
    assert _version_row(on_old_day, first.key)[:3] == ["5", "0", "10"]
    assert _version_row(on_old_day, first.key)[3].startswith(f"{agreed / 10:.3f} [")

    # The stored rollup is what the page reads for a closed day: change it and the page follows.
    DailyRollup.objects.filter(pk=rollup.pk).update(counts={**rollup.counts, "items": 7})
    again = client.get(f"/overview/?since={old_day}&until={old_day}").content.decode()
    assert _stat(again, "items") == "7"

    today_only = client.get(f"/overview/?since={today}&until={today}").content.decode()
    assert _stat(today_only, "items") == "16"
    assert _stat(today_only, "judgments") == "15"
    assert _stat(today_only, "double-inspected items") == "0"
    assert _stat(today_only, "awaiting judgment") == "1"
    assert _version_row(today_only, first.key)[:3] == ["16", "1 (6%)", "15"]


def test_a_queue_no_model_scores_still_shows_its_counts(client_for, ml_lead, queue, inspector):
    items = [item_create(queue=queue, external_id=f"u{n}", features=[0.0] * 64) for n in range(3)]
    judgment_record(item=items[0], inspector=inspector, label="3", seconds_spent=2)

    page = client_for(ml_lead).get("/overview/").content.decode()

    assert _stat(page, "items") == "3"
    assert _stat(page, "judgments") == "1"
    assert _stat(page, "awaiting judgment") == "2"
    assert "No model registered for this queue." in page
