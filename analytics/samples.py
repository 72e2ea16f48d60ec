"""Which items a report reads: every item, or one version's audit sample.

The audit sample of a model version is the items it decided at intake (its Decision's
outcome is "decided") that also went to inspectors, blind, for audit
(``Item.audit_sample``). On those, the model's figures come from the worker's
predictions of the same version, which keeps scoring canary and live versions on every
item, so the audit sample's figures are computed exactly as every item's are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, cast

from django.db.models import Q

from deployments.models import Decision, ModelVersion

Sample = Literal["all", "audit"]
SAMPLES: tuple[Sample, ...] = ("all", "audit")
SAMPLE_DEFAULT: Sample = "all"
SAMPLE_TITLES: dict[Sample, str] = {"all": "Every item", "audit": "Audit sample"}


def sample_parse(params: Mapping[str, Any]) -> Sample:
    """Return the sample a request asks for (all when left out); raise ValueError otherwise."""
    value = params.get("sample")
    if value in (None, ""):
        return SAMPLE_DEFAULT
    if value not in SAMPLES:
        shown = str(value)[:40]
        raise ValueError(
            f"sample must be 'all' (every item) or 'audit' (the items a model version decided "
            f"that also went to inspectors for audit), got {shown!r}"
        )
    return cast(Sample, value)


def audit_items_q(*, model_version: ModelVersion, prefix: str = "") -> Q:
    """Return the condition putting items (reached through prefix) in the version's audit sample."""
    return Q(
        **{
            f"{prefix}audit_sample": True,
            f"{prefix}decision__model_version": model_version,
            f"{prefix}decision__outcome": Decision.Outcome.DECIDED,
        }
    )


def sample_text(*, sample: Sample, model_version: ModelVersion) -> str:
    """Return what the sample holds, as a sentence for the pages."""
    if sample == "all":
        return (
            f"Every item received in the range; {model_version.key}'s figures come from its "
            "predictions of them."
        )
    return (
        f"The audit sample: items {model_version.key} decided at intake that also went to "
        "inspectors, blind, for audit; its figures come from its predictions of those items."
    )


def audit_empty_reason(*, model_version: ModelVersion, since: object, until: object) -> str:
    """Return why a version's audit sample over these days is empty, as a sentence."""
    return (
        f"No audit items yet: {model_version.key} decided no item received from {since} to "
        f"{until} that also went to inspectors for audit. The audit sample holds only items a "
        "canary or live version decided at intake and the queue's audit rate sent to "
        "inspectors as well; switch to every item for its shadow figures."
    )
