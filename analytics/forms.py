"""Forms of the gate pages: a queue's policy, a promotion request on an evaluation."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django import forms
from django.forms.boundfield import BoundField
from django.utils.datastructures import MultiValueDict

from analytics.gate.policy import FIELD_RULES, GatePolicyInvalid, gate_policy_values_check
from deployments.models import PromotionRequest

# Ids are 64-bit in the database; a larger number names nothing.
MAX_ID = 2**63 - 1
MAX_NOTE = 2000

# Label and help sentence of each policy field, in the document's order.
POLICY_FIELD_TEXT: dict[str, tuple[str, str]] = {
    "min_judged_items": ("Minimum judged items", "Judged items the window must hold."),
    "min_per_label": ("Minimum per label", "Judged items each label seen in the window needs."),
    "noninferiority_margin": (
        "Non-inferiority margin",
        "How far below the inspectors' agreement with each other the model's agreement with"
        " them may be, as a lower bound on double-inspected items (0.02 = two points).",
    ),
    "agreement_floor": ("Agreement floor", "Lower bound of model-vs-inspector agreement."),
    "kappa_floor": ("Kappa floor", "Lower bound of Cohen's kappa against the inspectors."),
    "recall_floor": ("Recall floor", "Lower bound of each label's recall."),
    "recall_min_items": (
        "Recall from items",
        "Labels with at least this many judged items are held to the recall floor.",
    ),
    "psi_major": ("Major drift PSI", "No feature may drift to this PSI or beyond."),
    "drifted_share_max": ("Drifted-feature share", "Largest share of features drifted at all."),
    "max_error_rate": ("Error rate", "Largest share of predictions that failed (0.005 = 0.5%)."),
    "latency_p95_budget_ms": ("Latency p95 budget (ms)", "The queue's live latency budget."),
    "int8_parity_floor": (
        "INT8 parity floor",
        "Top-1 agreement an INT8 variant keeps with its FP32 parent.",
    ),
    "confidence": ("Confidence", "Confidence of every bound, above 0.5 and below 1."),
    "anytime_valid": (
        "Anytime-valid bounds",
        "Decide on confidence sequences, valid however often the gate is evaluated."
        " Unticked, the gate decides on fixed-sample intervals, valid for one look only.",
    ),
    "window_days": ("Window (days)", "UTC days of evidence an evaluation reads, ending today."),
    "max_evaluation_age_hours": (
        "Evaluation valid for (hours)",
        "How old a passing evaluation may be when a promotion relies on it.",
    ),
    "canary_steps": (
        "Canary steps",
        "Shares of items a canary decides, step by step, separated by commas; each larger"
        " than the one before, the last 1 (the switch to live).",
    ),
    "auto_advance": (
        "Advance by itself",
        "After the soak time, move a healthy canary to its next step on a fresh passing"
        " evaluation of its own audit sample, without a promotion request.",
    ),
    "soak_minutes": ("Soak time (minutes)", "How long a canary stays at a step, 1 to 10080."),
    "rollback_window_minutes": (
        "Window (minutes)",
        "The sliding window the monitor reads, ending now, 1 to 10080.",
    ),
    "rollback_min_audited": (
        "Minimum judged audit items",
        "Judged audit items the window needs before agreement can roll a version back.",
    ),
    "rollback_min_decisions": (
        "Minimum decisions",
        "Model decisions the window needs before errors, latency or drift can roll a version back.",
    ),
    "rollback_max_error_rate": (
        "Error rate",
        "Roll back when the failed share of decisions is surely above this (0.05 = 5%).",
    ),
    "rollback_latency_p95_ms": (
        "Latency p95 (ms)",
        "Roll back when the p95 of decision latency is surely above this.",
    ),
    "rollback_drifted_share_max": (
        "Drifted-feature share",
        "Roll back when a larger share of the input features has drifted from the reference.",
    ),
}

# The page's sections: heading, one line on what the settings do, their fields.
POLICY_GROUPS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "Promotion gate",
        "What a model version's evidence must show before it may be promoted.",
        (
            "min_judged_items",
            "min_per_label",
            "noninferiority_margin",
            "agreement_floor",
            "kappa_floor",
            "recall_floor",
            "recall_min_items",
            "psi_major",
            "drifted_share_max",
            "max_error_rate",
            "latency_p95_budget_ms",
            "int8_parity_floor",
            "confidence",
            "anytime_valid",
            "window_days",
            "max_evaluation_age_hours",
        ),
    ),
    (
        "Canary",
        "How a promoted version takes over items: the share at each step and how long it stays.",
        ("canary_steps", "auto_advance", "soak_minutes"),
    ),
    (
        "Automatic rollback",
        "Every minute a monitor reads each canary and live version's recent window and rolls"
        " it back on a breach; agreement is held to the agreement floor above.",
        (
            "rollback_window_minutes",
            "rollback_min_audited",
            "rollback_min_decisions",
            "rollback_max_error_rate",
            "rollback_latency_p95_ms",
            "rollback_drifted_share_max",
        ),
    ),
)


class StepsInput(forms.TextInput):
    """A text box of comma-separated shares; a form sending the field once per step works too."""

    def format_value(self, value: Any) -> str | None:
        if isinstance(value, list | tuple):
            return ", ".join(f"{step:g}" if _is_share(step) else str(step) for step in value)
        return super().format_value(value)

    def value_from_datadict(self, data: Mapping[str, Any], files: Any, name: str) -> Any:
        if isinstance(data, MultiValueDict) and len(data.getlist(name)) > 1:
            return ", ".join(str(part) for part in data.getlist(name))
        return data.get(name)


def _is_share(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


class StepsField(forms.CharField):
    """Canary steps typed as "0.05, 0.25, 0.5, 1"; the policy rule then checks their order."""

    widget = StepsInput

    def to_python(self, value: Any) -> list[float] | None:  # type: ignore[override]
        text = super().to_python(value)
        if not text:
            return None
        parts = [part for part in text.replace(";", ",").replace(" ", ",").split(",") if part]
        try:
            return [float(part) for part in parts]
        except ValueError:
            raise forms.ValidationError(
                "Enter shares separated by commas, such as 0.05, 0.25, 0.5, 1."
            ) from None


def _policy_field(name: str) -> forms.Field:
    rule = FIELD_RULES[name]
    label, help_text = POLICY_FIELD_TEXT[name]
    if rule.kind is bool:
        return forms.BooleanField(label=label, help_text=help_text, required=False)
    if rule.kind is list:
        return StepsField(label=label, help_text=help_text, max_length=500)
    if rule.nullable:
        help_text += " Empty switches the criterion off."
    field_class = forms.IntegerField if rule.kind is int else forms.FloatField
    field = field_class(label=label, help_text=help_text, required=not rule.nullable)
    field.widget.attrs["step"] = "1" if rule.kind is int else "any"
    return field


class GatePolicyForm(forms.Form):
    """Every field of a queue's gate policy, each checked as the policy service checks it."""

    version = forms.IntegerField(widget=forms.HiddenInput, min_value=1, max_value=MAX_ID)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in FIELD_RULES:
            self.fields[name] = _policy_field(name)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # Each field on its own, so that every bad value gets its message at once.
        for name in FIELD_RULES:
            if name not in cleaned:
                continue
            try:
                gate_policy_values_check({name: cleaned[name]})
            except GatePolicyInvalid as exc:
                self.add_error(name, str(exc).removeprefix(f"{name}: "))
        return cleaned

    def values(self) -> dict[str, Any]:
        """Return the document to store: every policy field and the version it was edited on."""
        return {name: self.cleaned_data[name] for name in ("version", *FIELD_RULES)}

    def groups(self) -> list[tuple[str, str, list[BoundField]]]:
        """Return the page's sections, each with its heading, explanation and fields."""
        return [
            (title, line, [self[name] for name in names]) for title, line, names in POLICY_GROUPS
        ]


class PromotionRequestForm(forms.Form):
    """A request to promote a model version on one of its evaluations."""

    evaluation = forms.IntegerField(widget=forms.HiddenInput, min_value=1, max_value=MAX_ID)
    target = forms.ChoiceField(choices=PromotionRequest.Target.choices, label="Promote to")
    share = forms.FloatField(
        label="Share",
        min_value=0.0,
        max_value=1.0,
        initial=0.05,
        help_text="Share of items the model decides once approved, above 0 and at most 1.",
    )
    note = forms.CharField(
        label="Note",
        required=False,
        max_length=MAX_NOTE,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Why now: what the admin deciding should know.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["share"].widget.attrs["step"] = "any"

    def clean_share(self) -> float:
        share = float(self.cleaned_data["share"])
        if share <= 0:
            raise forms.ValidationError("The share must be above 0.")
        return share
