"""The scoring worker's per-process caches: model versions and their loaded ONNX runners."""

from __future__ import annotations

import logging

from django.conf import settings

from deployments.input_range import InputRange
from deployments.model_files import ModelFileUnavailable, model_file_local
from deployments.models import ModelVersion
from deployments.registry import reference_data
from deployments.runtime import ModelRunner, runner_get

log = logging.getLogger("shadowlab.scoring")


def model_runner(model_version: ModelVersion) -> ModelRunner:
    """Return this process's runner for a model version, loading and warming it once."""
    cfg = settings.SHADOWLAB
    return runner_get(
        lambda: model_file_local(model_version.onnx_file, sha256=model_version.sha256),
        sha256=model_version.sha256,
        input_name=model_version.input_name,
        probability_output=model_version.probability_output,
        input_width=model_version.input_width,
        intra_op_threads=cfg["ORT_INTRA_OP_THREADS"],
        providers=cfg["ORT_PROVIDERS"],
        warm_rows=lambda: reference_data(model_version),
    )


_ranges: dict[tuple[int, str, float], InputRange] = {}


def model_input_range(model_version: ModelVersion) -> InputRange:
    """Return the inputs this version may decide, from its reference data (once per process)."""
    margin = float(settings.SHADOWLAB["INPUT_RANGE_MARGIN"])
    key = (model_version.pk, model_version.sha256, margin)
    found = _ranges.get(key)
    if found is None:
        try:
            reference = reference_data(model_version)
        except ModelFileUnavailable:
            raise  # storage away for now: the batch is tried again, the range is not guessed
        except (OSError, ValueError) as exc:
            log.warning("reference data of %s unreadable: %s", model_version.key, exc)
            reference = None
        found = InputRange.around_reference(reference, margin=margin) or InputRange.unbounded(
            model_version.input_width
        )
        _ranges[key] = found
    return found


_versions: dict[int, ModelVersion] = {}


def _reference_profile_ensure(model_version: ModelVersion) -> None:
    """Build the version's reference profile on its first batch here, if registration did not."""
    # Imported here: analytics builds on deployments, not the other way round.
    from analytics.services import reference_profile_ensure

    try:
        reference_profile_ensure(model_version=model_version)
    except Exception:
        # Drift reports wait for the profile; scoring must not. The next rollup tries again.
        log.exception("reference profile of %s not built", model_version.key)


def model_version_cached(pk: int) -> ModelVersion | None:
    """Return a model version, from this process's cache: registered versions never change."""
    version = _versions.get(pk)
    if version is None:
        version = ModelVersion.objects.filter(pk=pk).first()
        if version is not None:
            _reference_profile_ensure(version)
            _versions[pk] = version
    return version


def model_versions_forget() -> None:
    """Empty the cache of model versions and their input ranges (tests reuse primary keys)."""
    _versions.clear()
    _ranges.clear()
