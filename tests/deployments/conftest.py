"""Fixtures of the deployment tests."""

from __future__ import annotations

import pytest

from deployments.registry import model_version_register


@pytest.fixture
def second_version(queue, digits_onnx, digits_split, admin_user):
    """digits-mlp:2, registered from the same ONNX file as digits-mlp:1 (the model_version)."""
    return model_version_register(
        queue=queue,
        name="digits-mlp",
        version="2",
        onnx_path=digits_onnx,
        reference=digits_split.train_x,
        created_by=admin_user,
    )
