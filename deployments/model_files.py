"""Model files as local paths: the stored file itself, or a checked copy of one in a bucket.

ONNX Runtime, the quantizer and the checks read files from a disk. With the default storage
(SHADOWLAB_MEDIA_ROOT, a shared volume when web and workers run on several machines) a
model's file is already one. With an S3-compatible bucket (SHADOWLAB_MODEL_BUCKET, through
django-storages) each process that needs a file downloads it once into
SHADOWLAB_MODEL_CACHE_DIR, under a name made of its content hash, checks the hash against
the one recorded at registration and moves it into place whole; later calls find it there.
The copies are kept within SHADOWLAB_MODEL_CACHE_MAX_BYTES: after each download the copies
used least recently go first, never one used in the last MODEL_CACHE_GRACE_SECONDS.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.db.models.fields.files import FieldFile

log = logging.getLogger("shadowlab.scoring")

_CHUNK = 1 << 20
_PARTIAL = ".download-"
# A copy found by one process may be about to be opened by it: the pruning of another
# process leaves every copy used this recently, whatever the budget says.
MODEL_CACHE_GRACE_SECONDS = 600


class ModelFileUnavailable(Exception):
    """The storage that holds a model file did not answer: worth another try later."""


class ModelFileInvalid(ValueError):
    """The stored file is missing, too large or not the one registered: trying again won't help."""


def _storage_errors() -> tuple[type[BaseException], ...]:
    """The errors of a storage that may go away when tried again (network, throttling)."""
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # only the local storage is configured
        return (OSError,)
    return (OSError, BotoCoreError, ClientError)


def _missing(exc: BaseException) -> bool:
    """Whether a storage error says the object is not there (not that storage is away)."""
    if isinstance(exc, FileNotFoundError):
        return True
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = str(response.get("Error", {}).get("Code", ""))
        return code in {"404", "NoSuchKey", "NotFound"}
    return False


def model_file_local(field_file: FieldFile, *, sha256: str | None = None) -> Path:
    """Return a path on this machine holding the stored file, downloading it once if need be.

    With sha256, a downloaded copy must have that hash (a file replaced in the bucket is
    refused, not run). Raises ModelFileUnavailable when storage does not answer and
    ModelFileInvalid when the file is missing, over SHADOWLAB["MODEL_MAX_BYTES"] or changed.
    """
    if not field_file:
        raise ModelFileInvalid("no file is stored")
    try:
        return Path(field_file.path)
    except NotImplementedError:  # Django's answer for a storage without local paths: a bucket
        return _local_copy(field_file, sha256)


def _local_copy(field_file: FieldFile, sha256: str | None) -> Path:
    """Return the checked copy of a bucket's file in the cache, downloading it if need be."""
    name = str(field_file.name)
    key = sha256 or hashlib.sha256(name.encode()).hexdigest()
    cache = Path(settings.MODEL_CACHE_DIR)
    target = cache / f"{key[:40]}{Path(name).suffix.lower()}"
    with contextlib.suppress(FileNotFoundError):  # not copied yet, or pruned: downloaded below
        os.utime(target)  # its time of last use, which pruning goes by
        return target
    cache.mkdir(parents=True, exist_ok=True)
    handle, partial = tempfile.mkstemp(dir=cache, prefix=_PARTIAL)
    try:
        actual, size = _download(field_file, name, handle)
        if sha256 is not None and actual != sha256:
            raise ModelFileInvalid(
                f"the stored file {name} changed since registration (sha256 {actual[:12]}…, "
                f"registered {sha256[:12]}…)"
            )
        os.replace(partial, target)  # whole or not at all, whichever process is first
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
    log.info("model file %s copied from storage (%d bytes) to %s", name, size, target)
    model_cache_prune(cache, keep=target)
    return target


def model_cache_prune(cache: Path, *, keep: Path | None = None) -> list[Path]:
    """Delete the least recently used copies until the cache is within its budget.

    The budget is settings.MODEL_CACHE_MAX_BYTES; `keep` and copies used within the last
    MODEL_CACHE_GRACE_SECONDS stay whatever it says, so the cache can be over it for a while.
    Deleting is safe for a process running a copy: ONNX Runtime and the quantizer read the
    whole file when they open it. Returns the deleted paths.
    """
    budget = int(settings.MODEL_CACHE_MAX_BYTES)
    copies = []
    for path in cache.iterdir():
        if path.name.startswith(_PARTIAL):
            continue
        with contextlib.suppress(FileNotFoundError):  # another process pruned it just now
            stat = path.stat()
            copies.append((stat.st_mtime, stat.st_size, path))
    total = sum(size for _, size, _ in copies)
    recent = time.time() - MODEL_CACHE_GRACE_SECONDS
    deleted = []
    for used, size, path in sorted(copies):
        if total <= budget:
            break
        if path == keep or used >= recent:
            continue
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            deleted.append(path)
        total -= size
    if deleted:
        log.info("model cache %s: %d copies used least recently deleted", cache, len(deleted))
    return deleted


def _download(field_file: FieldFile, name: str, handle: int) -> tuple[str, int]:
    """Copy the stored file into the open file `handle` in chunks; its sha256 and size."""
    limit = int(settings.SHADOWLAB["MODEL_MAX_BYTES"])
    digest = hashlib.sha256()
    size = 0
    with os.fdopen(handle, "wb") as out:
        try:
            with field_file.storage.open(name, "rb") as source:
                while chunk := source.read(_CHUNK):
                    size += len(chunk)
                    if size > limit:
                        raise ModelFileInvalid(
                            f"the stored file {name} is larger than {limit:,} bytes"
                        )
                    digest.update(chunk)
                    out.write(chunk)
        except ModelFileInvalid:
            raise
        except _storage_errors() as exc:
            if _missing(exc):
                raise ModelFileInvalid(f"the stored file {name} is missing") from exc
            raise ModelFileUnavailable(
                f"model storage did not give {name}: {type(exc).__name__}: {exc}"
            ) from exc
    return digest.hexdigest(), size


def stored_file_read(field_file: FieldFile) -> bytes:
    """Return a small stored file's bytes (reference data), with the same errors as above."""
    return model_file_local(field_file).read_bytes()
