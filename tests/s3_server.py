"""An S3-compatible server for the tests: moto's standalone server, as a child process.

No MinIO build reaches this machine's package registries; moto's server speaks the S3 HTTP
API that boto3 and django-storages use, so the storage code runs over real HTTP unchanged.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "shadowlab-test",
    "AWS_SECRET_ACCESS_KEY": "shadowlab-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class S3Server:
    """One S3 server on a loopback port; stop() and start() keep the port (not the objects)."""

    BUCKET: ClassVar[str] = "shadowlab-models"
    PREFIX: ClassVar[str] = "team-a"

    folder: Path
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (self.folder / "s3-server.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **CREDENTIALS},
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while not self._answers():
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"S3 server exited: {(self.folder / 's3-server.log').read_text()}"
                )
            if time.monotonic() > deadline:
                raise RuntimeError("S3 server did not answer within 60 s")
            time.sleep(0.1)

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/", timeout=1) as answer:
                return answer.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )

    def keys(self, bucket: str) -> list[str]:
        listing = self.client().list_objects_v2(Bucket=bucket)
        return sorted(entry["Key"] for entry in listing.get("Contents", []))


@contextmanager
def s3_server_running(folder: Path, *, bucket: str) -> Iterator[S3Server]:
    """Start the server, make `bucket`, stop the server afterwards."""
    server = S3Server(folder=folder)
    server.start()
    try:
        server.client().create_bucket(Bucket=bucket)
        yield server
    finally:
        server.stop()


def bucket_storage_use(
    settings: Any, server: S3Server, *, bucket: str = S3Server.BUCKET, prefix: str = S3Server.PREFIX
) -> None:
    """Point Django's default storage (pytest-django's `settings`) at `bucket` on `server`."""
    from shadowlab.model_storage import bucket_storage

    settings.STORAGES = {
        **settings.STORAGES,
        "default": bucket_storage(
            bucket=bucket, prefix=prefix, endpoint_url=server.url, addressing_style="path"
        ),
    }
