from __future__ import annotations

from django import forms

from inspections.models import Queue


class ModelUploadForm(forms.Form):
    queue = forms.ModelChoiceField(queryset=Queue.objects.order_by("name"))
    name = forms.CharField(max_length=100)
    version = forms.CharField(max_length=50)
    labels = forms.CharField(
        required=False,
        help_text="Label of each probability column, comma-separated, in the model's output "
        "order. Leave empty if it is the queue's order.",
    )
    onnx_file = forms.FileField(label="ONNX file")
    reference_file = forms.FileField(
        required=False,
        help_text="Optional reference feature matrix (.npy or .csv), e.g. the training rows; "
        "used for the smoke test, INT8 calibration and drift.",
    )

    def clean_labels(self) -> list[str] | None:
        text = self.cleaned_data["labels"].strip()
        if not text:
            return None
        return [label.strip() for label in text.split(",")]
