"""Read the monitor's latest look at each canary and live version of a queue, for display."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings

from deployments.models import Deployment, MonitorCheck
from deployments.monitor_rules import AGREEMENT, BREACH, CHECK_TITLES, DRIFT, LATENCY, OFF, OK
from inspections.models import Queue

VERDICT_LIGHT = {BREACH: "bad", OK: "good", OFF: "off"}
VERDICT_TEXT = {BREACH: "breach", OK: "ok", OFF: "off", "too_few": "too few to decide"}


@dataclass(frozen=True)
class CheckRow:
    """One check of a look, as the panel prints it: no figure is ever nan, a gap is words."""

    name: str
    title: str
    figure: str
    bound: str
    threshold: str
    sample: str
    verdict: str
    verdict_text: str
    light: str
    sentence: str


@dataclass(frozen=True)
class VersionLook:
    """A canary or live version and the monitor's latest look at it in its current role."""

    model: str
    role: str
    check: MonitorCheck | None
    rows: tuple[CheckRow, ...]
    waiting: str


@dataclass(frozen=True)
class MonitorPanel:
    """Every canary and live version's latest look, and the queue's last automatic rollback."""

    looks: tuple[VersionLook, ...]
    last_rollback: MonitorCheck | None
    interval_seconds: int


def _share(value: float) -> str:
    return f"{100 * value:.1f}%"


def _amount(name: str, value: float) -> str:
    return f"{value:.1f} ms" if name == LATENCY else _share(value)


def _limit(name: str, value: float) -> str:
    if name == LATENCY:
        return f"limit {value:g} ms"
    word = "floor" if name == AGREEMENT else "limit"
    return f"{word} {100 * value:g}%"


def check_row(entry: dict[str, Any]) -> CheckRow:
    """Return one stored check as printable cells."""
    name = str(entry["name"])
    value, bound, threshold = entry.get("value"), entry.get("bound"), entry.get("threshold")
    verdict = str(entry.get("verdict", ""))
    if bound is not None:
        side = "at most" if entry.get("bound_side") == "upper" else "at least"
        bound_text = f"{side} {_amount(name, bound)}"
    elif name == DRIFT and value is not None:
        bound_text = "each feature tested"
    else:
        bound_text = "—"
    minimum = int(entry.get("minimum") or 0)
    n = int(entry.get("n") or 0)
    return CheckRow(
        name=name,
        title=CHECK_TITLES.get(name, name),
        figure="—" if value is None else _amount(name, value),
        bound=bound_text,
        threshold="off" if threshold is None else _limit(name, threshold),
        sample=f"{n:,} ({minimum:,} needed)" if minimum else f"{n:,}",
        verdict=verdict,
        verdict_text=VERDICT_TEXT.get(verdict, verdict),
        light=VERDICT_LIGHT.get(verdict, "insufficient"),
        sentence=str(entry.get("sentence", "")),
    )


def _look(deployment: Deployment, interval: int) -> VersionLook:
    check = (
        MonitorCheck.objects.filter(
            model_version=deployment.model_version, created_at__gte=deployment.started_at
        )
        .order_by("-created_at", "-id")
        .first()
    )
    rows = tuple(
        check_row(entry)
        for entry in (check.checks if check is not None else [])
        if entry.get("name") in CHECK_TITLES
    )
    return VersionLook(
        model=deployment.model_version.key,
        role=deployment.role,
        check=check,
        rows=rows,
        waiting=f"Not looked at yet in this role: the monitor looks every {interval} s.",
    )


def monitor_panel(*, queue: Queue) -> MonitorPanel:
    """Return the latest look at the queue's canary and live versions and its last rollback."""
    interval = int(settings.SHADOWLAB["MONITOR_SECONDS"])
    deployments = sorted(
        Deployment.objects.filter(
            queue=queue, role__in=[Deployment.Role.LIVE, Deployment.Role.CANARY]
        ).select_related("model_version"),
        key=lambda deployment: deployment.role != Deployment.Role.LIVE,
    )
    last_rollback = (
        MonitorCheck.objects.filter(queue=queue, rolled_back=True)
        .select_related("model_version")
        .order_by("-created_at", "-id")
        .first()
    )
    return MonitorPanel(
        looks=tuple(_look(deployment, interval) for deployment in deployments),
        last_rollback=last_rollback,
        interval_seconds=interval,
    )
