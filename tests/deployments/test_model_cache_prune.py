"""The copies of bucket-held model files are kept within SHADOWLAB_MODEL_CACHE_MAX_BYTES."""

from __future__ import annotations

import os
import time
from pathlib import Path

from deployments.model_files import MODEL_CACHE_GRACE_SECONDS, model_cache_prune


def _copy(cache: Path, name: str, size: int, age: float) -> Path:
    path = cache / name
    path.write_bytes(b"x" * size)
    used = time.time() - age
    os.utime(path, (used, used))
    return path


def test_the_least_recently_used_copies_go_until_the_cache_is_within_its_budget(tmp_path, settings):
    settings.MODEL_CACHE_MAX_BYTES = 1000
    old = MODEL_CACHE_GRACE_SECONDS + 60
    oldest = _copy(tmp_path, "a.onnx", 400, age=3 * old)
    older = _copy(tmp_path, "b.onnx", 400, age=2 * old)
    old_copy = _copy(tmp_path, "c.onnx", 400, age=old)
    partial = _copy(tmp_path, ".download-x", 5000, age=3 * old)

    assert model_cache_prune(tmp_path) == [oldest]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".download-x", "b.onnx", "c.onnx"]

    settings.MODEL_CACHE_MAX_BYTES = 0
    assert model_cache_prune(tmp_path, keep=old_copy) == [older]
    assert old_copy.exists() and partial.exists(), "the kept copy and a download in progress stay"


def test_a_copy_used_within_the_grace_period_stays_even_over_the_budget(tmp_path, settings):
    settings.MODEL_CACHE_MAX_BYTES = 0
    recent = _copy(tmp_path, "recent.onnx", 400, age=MODEL_CACHE_GRACE_SECONDS / 2)
    stale = _copy(tmp_path, "stale.onnx", 400, age=MODEL_CACHE_GRACE_SECONDS * 2)
    assert model_cache_prune(tmp_path) == [stale]
    assert recent.exists()
