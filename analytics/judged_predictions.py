"""Judgments beside one model version's prediction of their item, in a single join.

Every ``filter``, ``exclude`` and ``values`` over ``item__predictions__...`` adds its own
join over the predictions of every model version of the item, so an item an FP32 version
and its INT8 variant both scored was listed once per version, with the other version's
confidence. Here the prediction is one ``FilteredRelation`` restricted to the version,
read through annotations, so filters and values reuse that one join.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypedDict

from django.db.models import F, FilteredRelation, Q, QuerySet

from deployments.models import ModelVersion, Prediction
from inspections.models import Judgment


class VersionPrediction(TypedDict):
    """The annotations of a judgment: its item's prediction by one model version."""

    model_label: str
    model_confidence: float | None


if TYPE_CHECKING:  # WithAnnotations takes the TypedDict only for the type checker
    from django_stubs_ext import WithAnnotations

    JudgmentWithPrediction = WithAnnotations[Judgment, VersionPrediction]


def judgments_with_prediction(*, model_version: ModelVersion) -> QuerySet[JudgmentWithPrediction]:
    """Return judgments of items this version scored, annotated with its label and confidence.

    ``model_label`` and ``model_confidence`` are this version's successful prediction of
    the item; filter and order on them, never on ``item__predictions__...``.
    """
    return (
        Judgment.objects.annotate(
            version_prediction=FilteredRelation(
                "item__predictions",
                condition=Q(
                    item__predictions__model_version=model_version,
                    item__predictions__status=Prediction.Status.OK,
                ),
            ),
            model_label=F("version_prediction__label"),
            model_confidence=F("version_prediction__confidence"),
        )
        # (item, model version) is unique, so this keeps at most one row per judgment.
        .filter(model_label__isnull=False)
    )
