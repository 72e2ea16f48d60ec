"""Forms of the inspections pages."""

from __future__ import annotations

from typing import Any

from django import forms

from inspections.api_tokens import API_TOKEN_MAX_DAYS, NAME_MAX_CHARS, api_token_days_default
from inspections.models import Queue


class ApiTokenIssueForm(forms.Form):
    queue = forms.ModelChoiceField(queryset=Queue.objects.order_by("name"))
    name = forms.CharField(
        max_length=NAME_MAX_CHARS,
        help_text="What the token is for, e.g. the client that holds it.",
    )
    expiry = forms.ChoiceField(
        label="Expiry",
        choices=[
            ("days", "Expires after the number of days below"),
            ("never", "Never expires: it works until it is revoked"),
        ],
        initial="days",
        widget=forms.RadioSelect,
    )
    days = forms.IntegerField(
        min_value=1,
        max_value=API_TOKEN_MAX_DAYS,
        required=False,
        help_text=f"1 to {API_TOKEN_MAX_DAYS:,}.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["days"].initial = api_token_days_default()

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("expiry") == "days" and data.get("days") is None and "days" not in self.errors:
            self.add_error("days", "Give the number of days, or choose that it never expires.")
        return data
