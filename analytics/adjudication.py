"""Adjudication of disagreements: an ml_lead records an item's true label, blind to its source.

Services (writes) and selectors (reads) in one focused module; the outcome arithmetic is the
Django-free ``analytics.summaries.agreement.adjudication_outcomes``.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet, Subquery

from analytics.judged_predictions import judgments_with_prediction
from analytics.models import Adjudication
from analytics.samples import audit_items_q
from analytics.summaries.agreement import AdjudicationOutcomes, adjudication_outcomes
from deployments.audit import audit_record
from deployments.models import Deployment, ModelVersion, Prediction
from deployments.selectors import queue_model_version_find
from inspections.models import Item, Judgment, Queue

# Candidate order must not be predictable from anything on the page: the OS source, not a
# process-wide seed. Tests swap it for a seeded random.Random.
_CANDIDATE_RNG: random.Random = random.SystemRandom()


class AdjudicationRejected(Exception):
    """The adjudication cannot be recorded; the message says why, for the ml_lead."""


def adjudication_record(
    *, item: Item, adjudicator: User, label: str, note: str = ""
) -> Adjudication:
    """Record the true label of an item; refuse a label outside the queue or a second one.

    A recorded adjudication is never replaced here: an admin deletes it in the admin (which
    audits the deletion) and the item can then be adjudicated again.
    """
    labels = [str(choice) for choice in item.queue.labels]
    if label not in labels:
        raise AdjudicationRejected(
            f"{label!r} is not a label of queue '{item.queue.slug}'; expected one of "
            f"{', '.join(labels)}"
        )
    try:
        with transaction.atomic():
            adjudication = Adjudication.objects.create(
                item=item, adjudicator=adjudicator, label=label, note=note.strip()
            )
            audit_record(
                actor=adjudicator,
                action="adjudication.record",
                subject=adjudication,
                after={"item": item.pk, "label": label, "note": adjudication.note},
            )
    except IntegrityError as exc:
        # The unique constraint decides, so two leads submitting at once cannot both win.
        existing = Adjudication.objects.filter(item=item).select_related("adjudicator").first()
        if existing is None:
            raise
        raise AdjudicationRejected(
            f"item {item.external_id} was already adjudicated as {existing.label!r} by "
            f"{existing.adjudicator.get_username()}; an admin can delete that adjudication "
            "in the admin to record another"
        ) from exc
    return adjudication


def adjudication_delete(*, adjudication: Adjudication, actor: User) -> None:
    """Delete an adjudication and record who did it, so the item can be adjudicated again."""
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="adjudication.delete",
            subject=adjudication,
            before={
                "item": adjudication.item_id,
                "label": adjudication.label,
                "adjudicator": adjudication.adjudicator_id,
            },
        )
        adjudication.delete()


def adjudication_model_version(*, queue: Queue, key: str | None) -> ModelVersion | None:
    """Return the queue's model version named ``<name>:<version>``, else its first shadow one."""
    if key:
        return queue_model_version_find(queue=queue, key=key)
    deployment = (
        Deployment.objects.select_related("model_version")
        .filter(queue=queue, role=Deployment.Role.SHADOW)
        .order_by("started_at", "pk")
        .first()
    )
    return deployment.model_version if deployment else None


def disagreement_items(*, queue: Queue, model_version: ModelVersion) -> QuerySet[Item]:
    """Return the queue's items with a judgment whose label differs from the version's."""
    model_label = Prediction.objects.filter(
        item=OuterRef("pk"), model_version=model_version, status=Prediction.Status.OK
    ).values("label")[:1]
    return (
        Item.objects.filter(queue=queue)
        .annotate(model_label=Subquery(model_label))
        .filter(model_label__isnull=False)
        .filter(
            Exists(
                Judgment.objects.filter(item=OuterRef("pk")).exclude(label=OuterRef("model_label"))
            )
        )
    )


def adjudication_next(*, queue: Queue, model_version: ModelVersion) -> Item | None:
    """Return the newest disagreement of this version nobody has adjudicated yet."""
    return (
        disagreement_items(queue=queue, model_version=model_version)
        .filter(adjudications__isnull=True)
        .order_by("-received_at", "-pk")
        .first()
    )


@dataclass(frozen=True)
class AdjudicationCandidates:
    """Labels to offer: the ones given to the item (shuffled), then every other label."""

    candidates: list[tuple[str, str]]  # (label, key), in random order
    others: list[tuple[str, str]]  # (label, key), in queue order


def adjudication_candidates(
    *, item: Item, model_version: ModelVersion, rng: random.Random | None = None
) -> AdjudicationCandidates | None:
    """Return the candidate labels of a disagreement, or None if the item is not one.

    Candidates are the distinct labels of the judgments and of the prediction, with nothing
    that tells their source apart: no count, no confidence, no name, random order.
    """
    labels = [str(label) for label in item.queue.labels]
    predicted = (
        Prediction.objects.filter(
            item=item, model_version=model_version, status=Prediction.Status.OK
        )
        .values_list("label", flat=True)
        .first()
    )
    judged = set(Judgment.objects.filter(item=item).values_list("label", flat=True))
    if predicted is None or not judged - {predicted}:
        return None
    given = judged | {predicted}
    # Sort first, then shuffle: the order then depends on the random draw only, never on
    # which label was read from which table.
    position = {label: n for n, label in enumerate(labels)}
    shuffled = sorted(given, key=lambda label: (position.get(label, len(labels)), label))
    (rng or _CANDIDATE_RNG).shuffle(shuffled)
    keys = item.queue.label_keys()
    return AdjudicationCandidates(
        candidates=[(label, keys.get(label, "")) for label in shuffled],
        others=[(label, keys[label]) for label in labels if label not in given],
    )


def adjudication_outcome_counts(
    *,
    queue: Queue,
    model_version: ModelVersion,
    start: datetime,
    end: datetime,
    disagreeing_judgments: int,
    audit_only: bool = False,
) -> AdjudicationOutcomes:
    """Return who was right on the adjudicated disagreements of items received in [start, end).

    disagreeing_judgments is the period's count of judgments that differ from the model (from
    the rollups), so that what awaits adjudication needs no scan of the period's items.
    audit_only keeps the version's audit sample only (analytics.samples).
    """
    sample = audit_items_q(model_version=model_version, prefix="item__") if audit_only else Q()
    # The version's prediction is one join restricted to it: an item scored by several
    # versions is compared with this version's label only. The adjudications drive the join.
    rows = list(
        judgments_with_prediction(model_version=model_version)
        .filter(
            sample,
            item__queue=queue,
            item__received_at__gte=start,
            item__received_at__lt=end,
            item__adjudications__isnull=False,
        )
        .exclude(label=F("model_label"))
        .values("item_id", "label", "model_label", truth=F("item__adjudications__label"))
    )
    comparisons = Counter((row["label"], row["model_label"], row["truth"]) for row in rows)
    return adjudication_outcomes(
        comparisons=[(human, model, truth, n) for (human, model, truth), n in comparisons.items()],
        items_adjudicated=len({row["item_id"] for row in rows}),
        judgments_awaiting=max(0, disagreeing_judgments - len(rows)),
    )
