"""Forms of the gate pages: a queue's policy, a promotion request on an evaluation."""

from __future__ import annotations

from typing import Any

from django import forms

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
        "Shares a canary decides, step by step, separated by commas, increasing and ending"
        " at 1 (the live switch), such as 0.05, 0.25, 0.5, 1.",
    ),
    "auto_advance": (
        "Advance canaries by themselves",
        "After the soak time, a canary takes its next step on a fresh passing evaluation of"
        " its own audit sample, with no request; the last step still passes the health check."
        " Unticked, every step is a request an admin approves.",
    ),
    "soak_minutes": (
        "Soak time (minutes)",
        "How long a canary stays at a step before it may advance by itself.",
    ),
}


class CanaryStepsField(forms.CharField):
    """Shares written as "0.05, 0.25, 0.5, 1"; the policy service checks the ladder."""

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return ", ".join(
                f"{step:g}" if isinstance(step, float) else str(step) for step in value
            )
        return value

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value)
        if isinstance(text, list):
            return text
        parts = [part for part in str(text).replace(";", ",").split(",") if part.strip()]
        try:
            return [float(part) for part in parts[:100]]
        except ValueError:
            raise forms.ValidationError(
                "Write the shares as numbers separated by commas, such as 0.05, 0.25, 0.5, 1."
            ) from None


def _policy_field(name: str) -> forms.Field:
    rule = FIELD_RULES[name]
    label, help_text = POLICY_FIELD_TEXT[name]
    if rule.kind is bool:
        return forms.BooleanField(label=label, help_text=help_text, required=False)
    if rule.kind is list:
        return CanaryStepsField(label=label, help_text=help_text, max_length=400)
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
