"""Check that a version may go live in this process: it loads, answers in budget, reproduces.

The blue-green switch runs it first: the version loads through ``deployments.live`` (and
stays loaded, warm for the items it is about to decide), scores its reference rows one at
a time within the live budget, and gives again the outputs the shadow worker recorded for
it. A failed check refuses the switch with every reason and leaves an audit event.
"""

from __future__ import annotations

import logging

import numpy as np
from django.conf import settings
from django.contrib.auth.models import User

from deployments.audit import audit_record
from deployments.health_figures import (
    HealthReport,
    Reproduction,
    health_report_make,
    outputs_compare,
)
from deployments.live import live_scorer
from deployments.live_runtime import LiveScorer
from deployments.models import ModelVersion, Prediction
from deployments.registry import reference_data
from deployments.transitions import TransitionRefused

log = logging.getLogger("shadowlab.live")

# Rows scored of each kind: enough for a p95 and to catch a changed model, bounded work.
HEALTH_CHECK_ROWS_DEFAULT = 200


class LiveSwitchRefused(TransitionRefused):
    """The version failed its health check, so the live switch is refused; nothing changed."""

    def __init__(self, report: HealthReport) -> None:
        super().__init__(
            f"{report.model} failed its health check, so it does not go live: "
            + "; ".join(report.reasons)
        )
        self.report = report


def _rows_limit() -> int:
    return int(settings.SHADOWLAB.get("HEALTH_CHECK_ROWS", HEALTH_CHECK_ROWS_DEFAULT))


def _reference_scores(
    scorer: LiveScorer, model_version: ModelVersion, problems: list[str]
) -> tuple[list[float], list[str]]:
    """Score the version's reference rows at batch 1; return latencies and fallback reasons."""
    try:
        reference = reference_data(model_version)
    except Exception as exc:
        problems.append(f"its reference rows could not be read: {type(exc).__name__}: {exc}")
        return [], []
    if reference is None or not len(reference):
        problems.append("it has no reference rows to score, so its speed cannot be checked")
        return [], []
    latencies, fallbacks = [], []
    for row in reference[: _rows_limit()]:
        result = scorer.score(row.tolist())
        latencies.append(result.latency_ms)
        if result.is_fallback:
            fallbacks.append(result.fallback_reason)
    return latencies, fallbacks


def _reproduction(
    scorer: LiveScorer, model_version: ModelVersion, problems: list[str]
) -> Reproduction:
    """Score the items of the version's latest recorded predictions again, through the live path."""
    recorded = list(
        Prediction.objects.filter(model_version=model_version, status=Prediction.Status.OK)
        .order_by("-id")
        .values_list("item_id", "label", "probabilities", "item__features")[: _rows_limit()]
    )
    width = len(model_version.labels)
    usable = [
        row
        for row in recorded
        if isinstance(row[2], list) and len(row[2]) == width and isinstance(row[3], list)
    ]
    if not usable:
        problems.append(
            "it has no recorded prediction to reproduce: it has not scored items in shadow"
        )
        return Reproduction(0, 0, None, ())
    live_labels, live_probabilities = [], []
    for _, _, _, features in usable:
        result = scorer.score(features)
        live_labels.append(result.label if result.label is not None else "no answer")
        live_probabilities.append(
            result.probabilities if result.probabilities is not None else [np.nan] * width
        )
    return outputs_compare(
        item_ids=[row[0] for row in usable],
        recorded_labels=[row[1] for row in usable],
        recorded_probabilities=np.asarray([row[2] for row in usable], dtype=np.float64),
        live_labels=live_labels,
        # A row without an answer differs by infinity: never reproduced.
        live_probabilities=np.nan_to_num(
            np.asarray(live_probabilities, dtype=np.float64), nan=np.inf
        ),
    )


def live_health_check(*, model_version: ModelVersion) -> HealthReport:
    """Return whether the version loads here, answers within the live budget and reproduces.

    Bounded: at most SHADOWLAB["HEALTH_CHECK_ROWS"] (200) reference rows and as many
    recorded predictions, each scored once at batch 1.
    """
    budget_ms = float(settings.SHADOWLAB["LIVE_BUDGET_MS"])
    problems: list[str] = []
    try:
        scorer = live_scorer(model_version)
    except Exception as exc:
        problems.append(f"it could not be loaded in this process: {type(exc).__name__}: {exc}")
        return health_report_make(
            model=model_version.key,
            budget_ms=budget_ms,
            latencies=[],
            fallbacks=[],
            reproduction=Reproduction(0, 0, None, ()),
            problems=problems,
        )
    latencies, fallbacks = _reference_scores(scorer, model_version, problems)
    reproduction = _reproduction(scorer, model_version, problems)
    report = health_report_make(
        model=model_version.key,
        budget_ms=budget_ms,
        latencies=latencies,
        fallbacks=fallbacks,
        reproduction=reproduction,
        problems=problems,
    )
    log.info(
        "health check model=%s passed=%s rows=%d p95_ms=%s reproduced=%d/%d",
        model_version.key,
        report.passed,
        report.reference_rows,
        f"{report.p95_ms:.3f}" if report.p95_ms is not None else "none",
        reproduction.reproduced,
        reproduction.compared,
    )
    return report


def live_switch_health_require(
    *, model_version: ModelVersion, actor: User | None, evidence: str = ""
) -> HealthReport:
    """Run the health check before a live switch and audit it; raise LiveSwitchRefused if it fails.

    Call it outside the switch's transaction: the check is slow I/O, and its audit event
    must stay when the switch is refused.
    """
    report = live_health_check(model_version=model_version)
    audit_record(
        actor=actor,
        action="deployment.health_check",
        subject=model_version,
        after=report.as_dict(),
        queue=model_version.queue,
        evidence=evidence,
    )
    if not report.passed:
        raise LiveSwitchRefused(report)
    return report
