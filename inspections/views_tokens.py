"""The API tokens page, for admins: every queue's tokens, issue one, revoke one."""

from __future__ import annotations

import re
from typing import Any, cast
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.auth.models import User
from django.http import Http404, HttpRequest, HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from inspections import api_tokens
from inspections.forms import ApiTokenIssueForm
from inspections.models import ApiToken, Queue
from shadowlab import roles

# Ids are 64-bit in the database; a larger number names nothing (and SQLite would refuse it).
MAX_ID = 2**63 - 1
_SLUG = re.compile(r"^[-a-zA-Z0-9_]{1,50}$")


def _filters(params: QueryDict) -> tuple[Queue | None, int]:
    """Return the queue and page asked for; raise ValueError naming a bad one."""
    slug = (params.get("queue") or "").strip()
    queue = None
    if slug:
        queue = Queue.objects.filter(slug=slug).first() if _SLUG.match(slug) else None
        if queue is None:
            raise ValueError(f"there is no queue {slug[:50]!r}")
    text = (params.get("page") or "").strip()
    try:
        page = int(text) if text else 1
    except ValueError:
        raise ValueError(f"page must be a whole number, got {text[:20]!r}") from None
    if not 1 <= page <= api_tokens.TOKENS_PAGE_MAX:
        raise ValueError(f"page must be between 1 and {api_tokens.TOKENS_PAGE_MAX:,}")
    return queue, page


def _page_context(request: HttpRequest, form: ApiTokenIssueForm) -> tuple[dict[str, Any], int]:
    context: dict[str, Any] = {
        "form": form,
        "queues": Queue.objects.order_by("name"),
        "params": request.GET,
        "can_revoke": roles.can_revoke_api_tokens(request.user),
        "default_days": api_tokens.api_token_days_default(),
    }
    try:
        queue, page_number = _filters(request.GET)
    except ValueError as exc:
        context["error"] = str(exc)
        return context, 400
    now = timezone.now()
    page = api_tokens.api_tokens_page(queue=queue, page=page_number)
    context.update(
        page=page,
        rows=[{"token": token, "state": token.state(now)} for token in page.object_list],
        page_query=urlencode({"queue": queue.slug} if queue else {}),
    )
    return context, 200


@never_cache
@require_http_methods(["GET", "POST"])
@login_required
@permission_required(roles.VIEW_API_TOKENS, raise_exception=True)
def api_tokens_page(request: HttpRequest) -> HttpResponse:
    """List the tokens by queue; on POST, issue one and show its secret this once."""
    if request.method != "POST":
        context, status = _page_context(request, ApiTokenIssueForm())
        return render(request, "inspections/api_tokens.html", context, status=status)
    if not roles.can_issue_api_tokens(request.user):
        return HttpResponse("issuing API tokens needs the admin role", status=403)
    form = ApiTokenIssueForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        never = data["expiry"] == "never"
        try:
            token, raw = api_tokens.api_token_create(
                queue=data["queue"],
                name=data["name"],
                created_by=cast(User, request.user),
                days=None if never else data["days"],
                never_expires=never,
            )
        except ValueError as exc:
            form.add_error(None, str(exc))
        else:
            # Rendered, not redirected: the secret must not pass through the session's
            # messages, and never_cache keeps it out of the browser's and proxies' caches.
            context, _ = _page_context(request, ApiTokenIssueForm())
            context.update(issued=token, secret=raw)
            return render(request, "inspections/api_tokens.html", context, status=201)
    context, _ = _page_context(request, form)
    return render(request, "inspections/api_tokens.html", context, status=400)


def _token(token_id: int) -> ApiToken:
    if token_id > MAX_ID:
        raise Http404("no such API token")
    return get_object_or_404(
        ApiToken.objects.select_related("queue", "created_by", "revoked_by"), pk=token_id
    )


@require_http_methods(["GET", "POST"])
@login_required
@permission_required(roles.REVOKE_API_TOKENS, raise_exception=True)
def api_token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    """Ask to confirm revoking a token; on POST, revoke it (it is refused at once)."""
    token = _token(token_id)
    if request.method != "POST":
        context = {"token": token, "state": token.state(timezone.now())}
        return render(request, "inspections/api_token_revoke.html", context)
    was_revoked = token.revoked_at is not None
    token = api_tokens.api_token_revoke(token=token, actor=cast(User, request.user))
    if was_revoked:
        messages.info(request, f"Token {token.prefix}… was already revoked.")
    else:
        messages.success(
            request,
            f"Token {token.prefix}… ({token.name or 'no name'}) of {token.queue.name} is "
            "revoked: the API refuses it from now on.",
        )
    return redirect(f"{reverse('tokens:list')}?{urlencode({'queue': token.queue.slug})}")
