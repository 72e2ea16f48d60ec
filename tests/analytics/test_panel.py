"""A queue with a panel of three inspectors gets Fleiss' kappa, from raw rows and rollups."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import numpy as np
import pytest
from django.contrib.auth.models import Group, User
from statsmodels.stats.inter_rater import fleiss_kappa

from analytics.days import utc_today
from analytics.selectors import ReportScope, report_baseline
from analytics.services import rollups_refresh
from deployments.scoring import predictions_score
from inspections.models import Item, Queue
from inspections.services import item_assign_next, item_create, judgment_record
from shadowlab import roles

pytestmark = pytest.mark.django_db


def test_a_panel_of_three_gives_fleiss_kappa_equal_to_statsmodels(
    queue, shadow_model, digits_split, inspector, inspector2
):
    Queue.objects.filter(pk=queue.pk).update(double_inspection_rate=1.0, panel_size=3)
    queue.refresh_from_db()
    third = User.objects.create_user("inspector3")
    third.groups.add(Group.objects.get(name=roles.INSPECTOR))
    panel = [inspector, inspector2, third]
    rng = np.random.default_rng(3)
    labels = queue.labels
    table = []
    items = []
    for n, row in enumerate(digits_split.holdout_x[:40]):
        item = item_create(queue=queue, external_id=f"p{n}", features=row.tolist())
        items.append(item)
        truth = labels.index(str(digits_split.holdout_y[n]))
        counts = np.zeros(len(labels), np.int64)
        for who in panel:
            # Served through the inspect screen's own selection, then judged.
            assert item_assign_next(queue=queue, inspector=who) == item
            said = truth if rng.random() < 0.8 else int(rng.integers(0, len(labels)))
            judgment_record(item=item, inspector=who, label=labels[said], seconds_spent=2)
            counts[said] += 1
        table.append(counts)
    predictions_score(model_version_id=shadow_model.pk, item_ids=[i.pk for i in items])
    expected = fleiss_kappa(np.vstack(table), method="fleiss")

    today = utc_today()
    scope = ReportScope(queue=queue, model_version=shadow_model, since=today, until=today)
    (live,) = report_baseline(scope=scope).fleiss
    assert (live.raters, live.items) == (3, 40)
    assert live.kappa == pytest.approx(expected, abs=1e-12)

    # The same figure once the day is closed and rolled up.
    yesterday = today - timedelta(days=1)
    Item.objects.filter(queue=queue).update(
        received_at=datetime.combine(yesterday, time(12), tzinfo=UTC)
    )
    assert rollups_refresh(today=today) >= 1
    scope = ReportScope(queue=queue, model_version=shadow_model, since=yesterday, until=today)
    (rolled,) = report_baseline(scope=scope).fleiss
    assert (rolled.raters, rolled.items) == (3, 40)
    assert rolled.kappa == pytest.approx(expected, abs=1e-12)
