"""Inspector screens. They render items and the inspector's own figures, never model output."""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from inspections import selectors, services
from inspections.models import Item, Queue
from shadowlab import roles
from shadowlab.http import AuthenticatedRequest


@login_required
def home(request: AuthenticatedRequest) -> HttpResponse:
    """Send each role to where its work is: admins to the rollout, pending approvals first."""
    if roles.can_decide_promotion(request.user):
        return redirect("rollout:index")
    if roles.can_view_reports(request.user):
        return redirect("analytics:overview")
    if roles.is_inspector(request.user):
        return redirect("inspections:queues")
    return render(request, "no_role.html", status=403)


@require_GET
@login_required
@permission_required(roles.JUDGE_ITEMS, raise_exception=True)
def queues(request: AuthenticatedRequest) -> HttpResponse:
    open_queues = list(selectors.queues_open())
    if len(open_queues) == 1:
        return redirect("inspections:inspect", slug=open_queues[0].slug)
    return render(request, "inspections/queues.html", {"queues": open_queues})


def _panel(
    request: AuthenticatedRequest, queue: Queue, item: Item | None, message: str = ""
) -> dict[str, object]:
    undoable = selectors.undoable_judgment(inspector=request.user, queue=queue)
    keys = queue.label_keys()
    return {
        "queue": queue,
        "item": item,
        "image": selectors.item_image_svg(item) if item is not None and queue.shows_image else None,
        "buttons": [(label, keys[label]) for label in queue.labels],
        "day": selectors.inspector_day(inspector=request.user),
        "undoable": undoable,
        "message": message,
    }


def _render_panel(
    request: AuthenticatedRequest,
    queue: Queue,
    item: Item | None,
    message: str = "",
    status: int = 200,
) -> HttpResponse:
    context = _panel(request, queue, item, message)
    template = "inspections/_panel.html" if request.htmx else "inspections/inspect.html"
    return render(request, template, context, status=status)


@require_GET
@login_required
@permission_required(roles.JUDGE_ITEMS, raise_exception=True)
def inspect(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    queue = get_object_or_404(Queue, slug=slug)
    item = services.item_assign_next(queue=queue, inspector=request.user)
    return _render_panel(request, queue, item)


# Ids are positive bigints: at most 18 digits always fits, and ASCII digits only (str.isdigit
# would take "²" or Arabic-Indic digits, which int() then reads or refuses).
_ITEM_ID = re.compile(r"[0-9]{1,18}")


def _item_id(raw: str | None) -> int | None:
    """Return the posted item id, or None unless it is a plain positive whole number."""
    if raw is None or not _ITEM_ID.fullmatch(raw):
        return None
    return int(raw) or None


def _refused(
    request: AuthenticatedRequest, queue: Queue, message: str, status: int
) -> HttpResponse:
    """Answer a refused decision with the reason and the item to judge next, never a stale one."""
    item = services.item_assign_next(queue=queue, inspector=request.user)
    return _render_panel(request, queue, item, f"{message}.", status=status)


@require_POST
@login_required
@permission_required(roles.JUDGE_ITEMS, raise_exception=True)
def judge(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    """Record a decision on the item on the inspector's screen; 400 or 409 with the reason."""
    queue = get_object_or_404(Queue, slug=slug)
    item_id = _item_id(request.POST.get("item_id"))
    if item_id is None:
        return _refused(
            request, queue, "Refused: item_id must be the number of the item on your screen", 400
        )
    try:
        services.judgment_submit(
            queue=queue,
            item_id=item_id,
            inspector=request.user,
            label=request.POST.get("label", ""),
        )
    except services.JudgmentRefused as exc:
        return _refused(request, queue, f"Refused: {exc}", 409)
    except services.JudgmentRejected as exc:
        return _refused(request, queue, f"Refused: {exc}", 400)
    if not request.htmx:
        return redirect("inspections:inspect", slug=queue.slug)
    following = services.item_assign_next(queue=queue, inspector=request.user)
    return _render_panel(request, queue, following)


@require_POST
@login_required
@permission_required(roles.JUDGE_ITEMS, raise_exception=True)
def undo(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    """Withdraw the inspector's latest judgment in this queue while it may still be undone."""
    queue = get_object_or_404(Queue, slug=slug)
    item = services.judgment_undo(queue=queue, inspector=request.user)
    if item is None:
        seconds = settings.SHADOWLAB["UNDO_SECONDS"]
        return _refused(
            request, queue, f"Nothing to undo: judgments can be undone for {seconds} s", 409
        )
    if not request.htmx:
        return redirect("inspections:inspect", slug=queue.slug)
    return _render_panel(request, queue, item, "Judgment withdrawn; decide this item again.")


@require_GET
@login_required
@permission_required(roles.JUDGE_ITEMS, raise_exception=True)
def history(request: AuthenticatedRequest) -> HttpResponse:
    return render(
        request,
        "inspections/history.html",
        {
            "judgments": selectors.judgments_recent(inspector=request.user),
            "day": selectors.inspector_day(inspector=request.user),
        },
    )
