"""The storage backend for model files in an S3-compatible bucket (django-storages).

No Django import: the settings build the backend from their environment with this, and the
tests build the same backend for a bucket of their own.
"""

from __future__ import annotations

from typing import Any


def bucket_storage(
    *,
    bucket: str,
    prefix: str = "shadowlab",
    endpoint_url: str | None = None,
    region: str | None = None,
    addressing_style: str | None = None,
) -> dict[str, Any]:
    """Return the STORAGES entry that keeps files under `prefix` in `bucket`.

    Credentials come the way boto3 finds them: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a
    profile, or the identity of the machine or pod.
    """
    from botocore.config import Config

    return {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": bucket,
            "location": prefix.strip("/"),
            "endpoint_url": endpoint_url or None,
            "region_name": region or None,
            # Registered files never change: a name that exists gets a new one, never overwritten.
            "file_overwrite": False,
            "default_acl": None,
            "querystring_auth": True,
            # A bucket that does not answer fails a registration or a batch in seconds (the
            # batch is tried again), not after botocore's minute. Addressing "path" suits MinIO
            # and most self-hosted stores; "virtual" or unset suits AWS.
            "client_config": Config(
                s3={"addressing_style": addressing_style or None},
                signature_version="s3v4",
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        },
    }
