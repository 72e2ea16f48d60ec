"""Hand new items to shadow scoring: one message per batch, features packed in it."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings

from deployments.batching import buffer_get
from deployments.models import Deployment
from deployments.scoring_message import features_pack
from deployments.selectors import SCORING_ROLES

log = logging.getLogger("shadowlab.scoring")


@dataclass(frozen=True)
class NewItem:
    """What intake hands to scoring: the committed item's id, arrival time and features."""

    item_id: int
    received_at: float  # seconds since the epoch
    features: list[float]


def shadow_enqueue(
    *, queue_id: int, items: list[NewItem], version_ids: Sequence[int] | None = None
) -> int:
    """Queue new items for every version deployed on their queue; return versions reached.

    Every version that is not retired scores every new item: shadow versions, and the
    canary, live and standby versions too, so that reports keep measuring each of them on
    all items (not only on those it decided) and a standby stays measured for a switch
    back. Called after commit. The message carries the features intake already validated, so a
    worker need not read the items back: it scores and writes. Items go through this
    process's scoring buffer, which sends full batches at once and the rest within
    SCORING_MAX_WAIT_MS. If the broker is down the items stay unscored and the sweeper
    queues them once it is back, so nothing here raises; after a failed send new items skip
    the broker for BROKER_PAUSE_SECONDS. version_ids, when intake knows
    them from its routing table, spare the query for the queue's deployed versions.
    """
    if not items:
        return 0
    if version_ids is None:
        version_ids = list(
            Deployment.objects.filter(queue_id=queue_id, role__in=SCORING_ROLES).values_list(
                "model_version_id", flat=True
            )
        )
    cfg = settings.SHADOWLAB
    buffer = buffer_get(
        _send_new, batch_size=cfg["SCORING_BATCH_SIZE"], max_wait=cfg["SCORING_MAX_WAIT_MS"] / 1000
    )
    for version_id in version_ids:
        buffer.add(version_id, items)
    return len(version_ids)


class _BrokerPause:
    """After a failed send, new items skip the broker for a while (the sweeper has them).

    A broker that is down costs each send its retries, and one that accepts connections but
    does not answer costs each send its socket timeout: paid by every request that sends,
    intake would slow to a crawl during an outage. One send in a pause period pays.
    """

    def __init__(self) -> None:
        self._until = 0.0
        self._lock = threading.Lock()

    def active(self) -> bool:
        return time.monotonic() < self._until

    def start(self, seconds: float) -> None:
        with self._lock:
            if not self.active():
                log.warning(
                    "broker unavailable: new items skip it for %.0f s, the sweeper queues them",
                    seconds,
                )
            self._until = time.monotonic() + seconds

    def clear(self) -> None:
        self._until = 0.0


broker_pause = _BrokerPause()


def _send_new(model_version_id: int, items: list[NewItem]) -> bool:
    if broker_pause.active():
        return False
    sent = score_items_send(
        model_version_id=model_version_id,
        item_ids=[item.item_id for item in items],
        features=features_pack([item.features for item in items]),
        received=[item.received_at for item in items],
    )
    if not sent:
        broker_pause.start(settings.SHADOWLAB["BROKER_PAUSE_SECONDS"])
    return sent


def score_items_send(
    *,
    model_version_id: int,
    item_ids: list[int],
    features: str | None = None,
    received: list[float] | None = None,
) -> bool:
    """Put one score_items message on the broker; return False, logged, if it is unreachable.

    Callers leave what was not sent for the sweeper, so a broker outage never raises here.
    """
    from deployments.tasks import score_items

    try:
        if features is None:
            # Re-queued items go by id alone; the worker reads their features back.
            score_items.delay(model_version_id, item_ids)
        else:
            score_items.delay(model_version_id, item_ids, features=features, received=received)
    except Exception as exc:  # kombu raises several types for an unreachable broker
        log.warning(
            "broker unavailable, %d items left for the sweeper: %s: %s",
            len(item_ids),
            type(exc).__name__,
            exc,
        )
        return False
    return True
