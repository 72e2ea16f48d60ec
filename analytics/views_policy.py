"""A queue's gate policy page: admins edit it into a new version; ml_leads read it."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from analytics.forms import POLICY_FIELD_TEXT, POLICY_GROUPS, GatePolicyForm
from analytics.gate.history import gate_policy_history, policy_value_text
from analytics.gate.policy import (
    GatePolicyConflict,
    GatePolicyInvalid,
    gate_policy_current,
    gate_policy_document,
    gate_policy_update,
)
from analytics.models import GatePolicy
from inspections.models import Queue
from shadowlab import roles
from shadowlab.http import AuthenticatedRequest

VIEW_GATE_POLICY = "analytics.view_gatepolicy"


def _policy_render(
    request: AuthenticatedRequest,
    queue: Queue,
    policy: GatePolicy,
    form: GatePolicyForm | None,
    status: int = 200,
) -> HttpResponse:
    sections = [
        (
            title,
            line,
            [
                (name, *POLICY_FIELD_TEXT[name], policy_value_text(getattr(policy, name)))
                for name in names
            ],
        )
        for title, line, names in POLICY_GROUPS
    ]
    context = {
        "queue": queue,
        "policy": policy,
        "sections": sections,
        "form": form,
        "history": gate_policy_history(queue=queue),
    }
    return render(request, "analytics/gate_policy.html", context, status=status)


@require_http_methods(["GET", "POST"])
@login_required
@permission_required(VIEW_GATE_POLICY, raise_exception=True)
def gate_policy_page(request: AuthenticatedRequest, slug: str) -> HttpResponse:
    """Show the queue's gate policy and its versions; on an admin's POST store an edit."""
    can_edit = roles.can_edit_gate_policy(request.user)
    if request.method == "POST" and not can_edit:
        raise PermissionDenied("editing a gate policy needs the admin role")
    queue = get_object_or_404(Queue, slug=slug)
    policy = gate_policy_current(queue=queue)
    if request.method != "POST":
        form = GatePolicyForm(initial=gate_policy_document(policy)) if can_edit else None
        return _policy_render(request, queue, policy, form)
    form = GatePolicyForm(request.POST)
    if not form.is_valid():
        return _policy_render(request, queue, policy, form, status=400)
    try:
        stored = gate_policy_update(queue=queue, values=form.values(), actor=request.user)
    except GatePolicyInvalid as exc:
        field = exc.field if exc.field in form.fields else None
        form.add_error(field, str(exc))
        return _policy_render(request, queue, policy, form, status=400)
    except GatePolicyConflict as exc:
        # Offer the same values again on the current version: saving then is a deliberate edit.
        data = request.POST.copy()
        data["version"] = str(policy.version)
        form = GatePolicyForm(data)
        form.is_valid()
        form.add_error(None, f"Not saved: {exc}. Your values are kept below; save to apply them.")
        return _policy_render(request, queue, policy, form, status=409)
    if stored.pk == policy.pk:
        messages.info(request, f"Nothing changed: the policy stays at version {policy.version}.")
    else:
        messages.success(
            request, f"Saved the gate policy of {queue.name} as version {stored.version}."
        )
    return redirect("gate:policy", slug=queue.slug)
