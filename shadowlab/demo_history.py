"""Three weeks of backdated history on the demo queue: items, judgments, predictions, rollups.

Items go through intake (``items_create_bulk``, one call per hour of arrivals) and
judgments through ``judgments_import``, which keeps their times; predictions are the models'
own outputs, computed here with the worker's ONNX Runtime session and stored with the
worker's insert, then dated a second or two after their items. Every step does only what is
missing, so a second run changes nothing.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import groupby

import numpy as np
from django.contrib.auth.models import User
from django.db.models import Exists, Min, OuterRef, QuerySet

from analytics.days import utc_today
from analytics.models import DailyRollup
from analytics.services import rollup_compute
from analytics.stats.counts import ROLLUP_FORMAT
from deployments.inference import outcomes_infer
from deployments.models import Deployment, ModelVersion, Prediction
from deployments.prediction_insert import predictions_insert
from deployments.scoring_cache import model_runner
from inspections.judgment_import import PastJudgment, judgments_import
from inspections.models import Item, Judgment, Queue
from inspections.services import items_create_bulk
from shadowlab import digits
from shadowlab.simulation import digit_drifted, inspector_user, label_simulated

PREFIX = "history-"
HISTORY_DAYS = 21
ITEMS_PER_DAY = 200
SEED = 7
# Days ago -> drift strength: an episode in the last week of noise, shifts and occlusions.
DRIFT_EPISODE = {6: 0.15, 5: 0.3, 4: 0.15}
# Six inspectors who get 3 to 5% of the digits wrong (more on degraded images).
INSPECTOR_ACCURACIES = (0.95, 0.955, 0.96, 0.96, 0.965, 0.97)
WORK_HOURS = range(7, 19)  # UTC


@dataclass(frozen=True)
class PlannedItem:
    """One backdated item: when it arrives, what it shows and what it truly is."""

    external_id: str
    days_ago: int
    hour: int
    truth: int
    strength: float
    features: list[float]


@dataclass(frozen=True)
class HistoryResult:
    first_day: date
    last_day: date
    items: int
    items_created: int
    judgments_recorded: int
    double_inspected: int
    predictions_stored: int
    rollups_computed: int


def history_plan(*, days: int, items_per_day: int = ITEMS_PER_DAY) -> list[PlannedItem]:
    """Return the same backdated items every time: held-out digits, drifting on episode days."""
    split = digits.digits_split()
    rng = np.random.default_rng(SEED)
    plan: list[PlannedItem] = []
    for days_ago in range(days, 0, -1):
        count = items_per_day + int(rng.integers(-20, 21))
        hours = np.sort(rng.choice(np.array(WORK_HOURS), size=count))
        strength = DRIFT_EPISODE.get(days_ago, 0.0)
        for hour in hours:
            pick = int(rng.integers(0, len(split.holdout_x)))
            features = digit_drifted(split.holdout_x[pick], strength=strength, rng=rng)
            plan.append(
                PlannedItem(
                    external_id=f"{PREFIX}{len(plan):05d}",
                    days_ago=days_ago,
                    hour=int(hour),
                    truth=int(split.holdout_y[pick]),
                    strength=strength,
                    features=[float(v) for v in features],
                )
            )
    return plan


def _history_items(queue: Queue) -> QuerySet[Item]:
    return Item.objects.filter(queue=queue, external_id__startswith=PREFIX)


def history_end(*, queue: Queue, days: int) -> date:
    """Return the day after the history: today, or where an earlier run put it."""
    first = _history_items(queue).aggregate(first=Min("received_at"))["first"]
    if first is None:
        return utc_today()
    # An earlier run with fewer days must not push this one's items into the future.
    return min(first.astimezone(UTC).date() + timedelta(days=days), utc_today())


def _slice_time(end: date, days_ago: int, hour: int) -> datetime:
    """Return when one hour's items arrive: a fixed minute of that hour, the same every run."""
    minute = random.Random(f"{SEED}-{days_ago}-{hour}").randrange(60)
    start = datetime.combine(end - timedelta(days=days_ago), datetime.min.time(), tzinfo=UTC)
    return start + timedelta(hours=hour, minutes=minute)


def history_items_create(*, queue: Queue, plan: list[PlannedItem], end: date) -> int:
    """Store the missing planned items through intake, one call per hour; return how many."""
    existing = set(_history_items(queue).values_list("external_id", flat=True))
    created = 0
    for (days_ago, hour), group in groupby(plan, key=lambda p: (p.days_ago, p.hour)):
        rows = [(p.external_id, p.features) for p in group if p.external_id not in existing]
        if not rows:
            continue
        result = items_create_bulk(
            queue=queue,
            rows=rows,
            received_at=_slice_time(end, days_ago, hour),
            rng=random.Random(f"{SEED}-route-{days_ago}-{hour}"),
        )
        if result.errors:
            raise ValueError("; ".join(result.errors[:3]))
        created += result.created
    return created


def history_judge(*, queue: Queue, plan: list[PlannedItem]) -> int:
    """Have the simulated inspectors judge every history item still waiting; return judgments."""
    cast = [
        (inspector_user(number), accuracy)
        for number, accuracy in enumerate(INSPECTOR_ACCURACIES, start=1)
    ]
    planned = {p.external_id: p for p in plan}
    pending = list(
        _history_items(queue)
        .filter(human_status=Item.HumanStatus.PENDING)
        .order_by("received_at", "id")
    )
    judged: dict[int, set[int]] = {}
    for item_id, inspector_id in Judgment.objects.filter(item__in=pending).values_list(
        "item_id", "inspector_id"
    ):
        judged.setdefault(item_id, set()).add(inspector_id)
    recorded = 0
    for _, day_items in groupby(pending, key=lambda item: item.received_at.date()):
        rows = [
            row
            for item in day_items
            for row in _item_judgments(item, planned[item.external_id], cast)
            if row.inspector_id not in judged.get(item.pk, set())
        ]
        recorded += judgments_import(queue=queue, judgments=rows)
    return recorded


def _item_judgments(
    item: Item, planned: PlannedItem, cast: list[tuple[User, float]]
) -> list[PastJudgment]:
    """Return the item's judgments as the same inspectors make them on every run."""
    rng = random.Random(f"{SEED}-{item.external_id}")
    panel = rng.sample(cast, k=item.judgments_needed)
    moment = item.received_at
    made = []
    for user, accuracy in panel:
        # Noisy, shifted or occluded images are harder for people too.
        label = label_simulated(
            planned.truth, accuracy=accuracy * (1.0 - 0.15 * planned.strength), rng=rng
        )
        seconds = 2.5 * math.exp(rng.gauss(0.0, 0.35))
        moment += timedelta(minutes=rng.uniform(2.0, 40.0))
        made.append(PastJudgment(item.pk, user.pk, str(label), seconds, moment))
    return made


def history_score(*, queue: Queue, model_version: ModelVersion) -> int:
    """Score the history items this version has not scored, a day at a time; return stored."""
    missing = (
        _history_items(queue)
        .exclude(
            Exists(Prediction.objects.filter(item=OuterRef("pk"), model_version=model_version))
        )
        .order_by("received_at", "id")
        .values_list("id", "features", "received_at")
    )
    runner = model_runner(model_version)
    stored = 0
    for _, day in groupby(missing, key=lambda row: row[2].date()):
        rows = list(day)
        ids = [item_id for item_id, _, _ in rows]
        matrix = np.asarray([features for _, features, _ in rows], dtype=np.float32)
        outcomes, _ = outcomes_infer(runner, model_version.labels, ids, matrix)
        stored += predictions_insert(model_version=model_version, outcomes=outcomes, attempts={})
        for received_at, arrivals in groupby(rows, key=lambda row: row[2]):
            # The worker's lag behind intake: a second or two when it keeps up.
            lag = random.Random(f"{SEED}-{model_version.key}-{received_at.isoformat()}")
            Prediction.objects.filter(
                model_version=model_version, item_id__in=[item_id for item_id, _, _ in arrivals]
            ).update(created_at=received_at + timedelta(seconds=lag.uniform(0.3, 2.5)))
    return stored


def history_rollups(*, versions: list[ModelVersion], first_day: date, last_day: date) -> int:
    """Roll up every closed history day that has no current rollup; return how many."""
    computed = 0
    last = min(last_day + timedelta(days=1), utc_today())
    for version in versions:
        done = set(
            DailyRollup.objects.filter(
                model_version=version,
                day__gte=first_day,
                sample=DailyRollup.Sample.ALL,
                counts__format=ROLLUP_FORMAT,
            ).values_list("day", flat=True)
        )
        day = first_day
        while day < last:
            if day not in done:
                rollup_compute(model_version=version, day=day)
                computed += 1
            day += timedelta(days=1)
    return computed


def deployments_backdate(*, versions: list[ModelVersion], since: datetime) -> None:
    """Date the versions' shadow deployments from the history's start, as if they ran since."""
    Deployment.objects.filter(
        model_version__in=versions, role=Deployment.Role.SHADOW, started_at__gt=since
    ).update(started_at=since)


def history_build(
    *,
    queue: Queue,
    versions: list[ModelVersion],
    days: int = HISTORY_DAYS,
    log: Callable[[str], None] = print,
) -> HistoryResult:
    """Create the missing history items, judgments and predictions (not yet the rollups)."""
    plan = history_plan(days=days)
    end = history_end(queue=queue, days=days)
    first_day = end - timedelta(days=days)
    created = history_items_create(queue=queue, plan=plan, end=end)
    log(
        f"history 1/4: {len(plan):,} items received on {days} days from {first_day} "
        f"({created:,} new)"
    )
    recorded = history_judge(queue=queue, plan=plan)
    double = _history_items(queue).filter(judgments_needed__gte=2).count()
    log(
        f"history 2/4: {recorded:,} judgments recorded by {len(INSPECTOR_ACCURACIES)} simulated "
        f"inspectors; {double:,} items double-inspected by a panel"
    )
    stored = 0
    for version in versions:
        made = history_score(queue=queue, model_version=version)
        stored += made
        log(f"history 3/4: {made:,} predictions by {version.key}")
    return HistoryResult(
        first_day=first_day,
        last_day=end - timedelta(days=1),
        items=len(plan),
        items_created=created,
        judgments_recorded=recorded,
        double_inspected=double,
        predictions_stored=stored,
        rollups_computed=0,
    )
